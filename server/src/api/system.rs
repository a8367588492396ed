//! Operator routes (liveness, readiness, metrics), the OpenAPI document, and the
//! problem answer for unknown paths.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::access::{AnyStaff, Authorized};
use super::{ApiError, ApiState};
use crate::metrics::{render, CameraCounts};
use crate::openapi;

/// `GET /healthz`: the process is alive and answering.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the parts have started and the database answers.
pub async fn readyz(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.app.ready.load(Ordering::Acquire) {
        return Err(ApiError::NotReady);
    }
    // A point lookup by login is the cheapest read every backend has.
    if let Err(e) = state.app.store.account_by_login("").await {
        tracing::warn!(error = %e, "readiness check: store does not answer");
        return Err(ApiError::NotReady);
    }
    Ok(Json(json!({ "status": "ready" })))
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let cameras = state.app.store.cameras().await?;
    let counts = CameraCounts {
        registered: cameras.len() as u64,
        online: cameras.iter().filter(|c| c.online).count() as u64,
    };
    let text = render(&state.app.ingest_metrics, &state.http_metrics, counts);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
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
