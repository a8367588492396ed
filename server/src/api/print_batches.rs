//! The print room's side of postal delivery: the batches the delivery worker merged
//! (its letters are `sent` from then on), listed, downloaded — each download audited as
//! a view of every owner the batch names — and recorded printed once, so that no batch
//! is printed never or twice.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use kozomol_store::{PrintBatchId, PrintBatchPrinted, PrintBatchRecord, PrintBatchSummary};
use serde::{Deserialize, Serialize};

use super::access::{Authorized, DeskOfficers};
use super::cases::read_evidence_of;
use super::paging::{after_page, AfterPage, AfterQuery};
use super::resolutions::record_case_owner_view;
use super::{ApiError, ApiState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintBatchQuery {
    /// `false`: those waiting for the print room; `true`: those it printed.
    printed: Option<bool>,
    after: Option<i64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct PrintBatchItem {
    #[serde(flatten)]
    batch: PrintBatchSummary,
    pdf_href: String,
}

/// `GET /api/v1/print-batches?printed=false&after=ID&limit=N`: oldest first.
pub async fn list(
    _caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    query: Result<Query<PrintBatchQuery>, QueryRejection>,
) -> Result<Json<AfterPage<PrintBatchItem>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (after, limit) = AfterQuery {
        after: query.after,
        limit: query.limit,
    }
    .bounds()?;
    let batches = state
        .app
        .store
        .print_batches(query.printed, Some(PrintBatchId(after)), limit)
        .await?;
    let page = after_page(batches, limit, |b| b.id.0);
    Ok(Json(AfterPage {
        items: page
            .items
            .into_iter()
            .map(|batch| PrintBatchItem {
                pdf_href: state
                    .app
                    .link(&format!("/api/v1/print-batches/{}/pdf", batch.id)),
                batch,
            })
            .collect(),
        next: page.next,
    }))
}

/// `GET /api/v1/print-batches/{id}/pdf`: the merged letters, byte for byte as stored.
/// They name every addressee: each download is audited for each case the batch serves.
pub async fn pdf(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let batch = find(&state, &id).await?;
    // Its blob stays while any case it serves is kept, but it names every owner.
    if batch.case_file_destroyed {
        return Err(ApiError::EvidenceDestroyed);
    }
    for case_id in &batch.cases {
        let (actor, detail) = (
            caller.account.login.clone(),
            format!("print batch {}", batch.id),
        );
        record_case_owner_view(&state, *case_id, actor, detail).await?;
    }
    let bytes = read_evidence_of(
        &state,
        &format!("print batch {}", batch.id),
        "print batch PDF",
        batch.pdf_location.clone(),
        batch.pdf_sha256,
    )
    .await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"print-batch-{}.pdf\"",
        batch.id
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Serialize)]
pub struct PrintedAnswer {
    id: PrintBatchId,
    /// `first`, or `already_recorded` (by whom and when it says).
    recorded: &'static str,
    printed_at: DateTime<Utc>,
    printed_by: String,
}

/// `POST /api/v1/print-batches/{id}/printed`: the print room printed and posted the
/// batch; recorded once, audited. The proof of each delivery is still its return
/// receipt.
pub async fn printed(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<PrintedAnswer>, ApiError> {
    let id = parse_id(&id)?;
    let login = caller.account.login.clone();
    let answer = match state
        .app
        .store
        .record_print_batch_printed(id, &login)
        .await?
    {
        None => return Err(ApiError::NotFound(format!("print batch {id}"))),
        Some(PrintBatchPrinted::Recorded(at)) => PrintedAnswer {
            id,
            recorded: "first",
            printed_at: at,
            printed_by: login,
        },
        Some(PrintBatchPrinted::AlreadyRecorded { at, by }) => PrintedAnswer {
            id,
            recorded: "already_recorded",
            printed_at: at,
            printed_by: by,
        },
    };
    Ok(Json(answer))
}

fn parse_id(raw: &str) -> Result<PrintBatchId, ApiError> {
    raw.parse()
        .map(PrintBatchId)
        .map_err(|_| ApiError::BadRequest("a print batch id is a whole number".into()))
}

async fn find(state: &ApiState, raw: &str) -> Result<PrintBatchRecord, ApiError> {
    let id = parse_id(raw)?;
    state
        .app
        .store
        .print_batch(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("print batch {id}")))
}
