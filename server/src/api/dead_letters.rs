//! Messages ingest refused: the paged list (without their bytes) and the raw bytes of one.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kozomol_store::DeadLetter;
use serde::{Deserialize, Serialize};

use super::access::{Authorized, DeadLetterReaders};
use super::paging::{page, parse_paging, CursorKind, Page};
use super::{ApiError, ApiState};

#[derive(Deserialize)]
pub struct DeadLetterParams {
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub struct DeadLetterItem {
    #[serde(flatten)]
    letter: DeadLetter,
    raw_url: String,
}

/// `GET /api/v1/dead-letters`.
pub async fn list(
    _caller: Authorized<DeadLetterReaders>,
    State(state): State<ApiState>,
    params: Result<Query<DeadLetterParams>, QueryRejection>,
) -> Result<Json<Page<DeadLetterItem>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut problems = Vec::new();
    let (limit, after) = parse_paging(
        params.limit.as_deref(),
        params.cursor.as_deref(),
        CursorKind::DeadLetters,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(ApiError::InvalidQuery(problems));
    }
    // One row beyond the page says whether there is a next one.
    let rows = state.app.store.dead_letters(limit + 1, after).await?;
    Ok(Json(page(
        rows,
        limit,
        CursorKind::DeadLetters,
        |l| l.id,
        |letter| DeadLetterItem {
            raw_url: state
                .app
                .link(&format!("/api/v1/dead-letters/{}/raw", letter.id)),
            letter,
        },
    )))
}

/// `GET /api/v1/dead-letters/{id}/raw`: the bytes kept of the message (the first
/// 64 KiB, or all of an `unstorable` event), until the retention purge drops them.
pub async fn raw(
    _caller: Authorized<DeadLetterReaders>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("a dead letter id is a whole number".into()))?;
    let not_found = || ApiError::NotFound(format!("dead letter {id}"));
    let (raw_len, raw) = state
        .app
        .store
        .dead_letter_raw(id)
        .await?
        .ok_or_else(not_found)?;
    // Dropped by the retention purge: gone, as destroyed evidence is.
    if raw.is_empty() && raw_len > 0 {
        return Err(ApiError::EvidenceDestroyed);
    }
    let mut response = raw.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"dead-letter-{id}.bin\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // Photos and a plate as the camera sent them: no browser keeps them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
