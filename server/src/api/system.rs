//! Operator routes (liveness, readiness, metrics), the OpenAPI document, and the
//! problem answer for unknown paths.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kozomol_core::stage_metrics::StageMetrics;
use kozomol_ingest::IngestMetrics;
use kozomol_store::{CaseQuery, Store};
use serde_json::json;

use super::access::{AnyStaff, Authorized};
use super::{ApiError, ApiState};
use crate::metrics::{render, CameraCounts, HttpMetrics, MetricsPage};
use crate::openapi;

/// What a process shows its operators, API or not: whether it is ready, and its
/// counts.
#[derive(Clone)]
pub struct ProcessProbes {
    pub store: Arc<dyn Store>,
    /// Set once the process's parts have started.
    pub ready: Arc<AtomicBool>,
    pub ingest_metrics: Arc<IngestMetrics>,
    pub stage_metrics: Arc<StageMetrics>,
    /// Not ready while its ingest has no broker connection: a process that serves
    /// no API, whose only work then is waiting (an API stays ready for its users).
    pub needs_broker: bool,
}

impl ProcessProbes {
    /// Ready: the parts have started, the database answers and, where
    /// `needs_broker`, ingest holds its broker connection.
    async fn ready(&self) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return false;
        }
        if self.needs_broker && self.ingest_metrics.broker_connected() == Some(false) {
            return false;
        }
        // A point lookup by login is the cheapest read every backend has.
        match self.store.account_by_login("").await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "readiness check: store does not answer");
                false
            }
        }
    }

    async fn metrics_page(&self, http: Option<&HttpMetrics>) -> Result<Response, ApiError> {
        let cameras = self.store.cameras().await?;
        let backlog = self.store.backlog().await?;
        let undeliverable = self
            .store
            .count_cases(&CaseQuery {
                undeliverable: true,
                ..CaseQuery::default()
            })
            .await?;
        let now = chrono::Utc::now();
        let text = render(&MetricsPage {
            ingest: &self.ingest_metrics,
            stages: &self.stage_metrics,
            backlog: &backlog,
            now,
            undeliverable,
            cameras: CameraCounts {
                registered: cameras.len() as u64,
                online: cameras.iter().filter(|c| c.online_at(now)).count() as u64,
            },
            http,
        });
        let mut response = text.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        Ok(response)
    }
}

/// The operator routes alone, for a process that runs no API (ingest, recognizer,
/// fines): its orchestrator probes it and Prometheus scrapes it there.
pub fn probes_router(probes: ProcessProbes) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/readyz",
            get(|State(p): State<ProcessProbes>| async move {
                if p.ready().await {
                    Ok(Json(json!({ "status": "ready" })))
                } else {
                    Err(ApiError::NotReady)
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(p): State<ProcessProbes>| async move { p.metrics_page(None).await }),
        )
        .fallback(not_found)
        .with_state(probes)
}

/// `GET /healthz`: the process is alive and answering.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the parts have started and the database answers.
pub async fn readyz(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.app.probes().ready().await {
        return Err(ApiError::NotReady);
    }
    Ok(Json(json!({ "status": "ready" })))
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    state
        .app
        .probes()
        .metrics_page(Some(&state.http_metrics))
        .await
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi(
    _caller: Authorized<AnyStaff>,
    State(state): State<ApiState>,
) -> Json<serde_json::Value> {
    Json(openapi::document(&state.app.public_base_url))
}

/// Any path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route".into())
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
