//! Cases: the filtered, paged list, one case with its frames and audit trail, and the
//! frame bytes themselves, re-verified against their SHA-256 before they are served.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use kozomol_core::{CameraId, CaseId, CaseState, FrameRole};
use kozomol_store::{
    AuditEntry, CaseQuery, CaseRecord, CaseSummary, FrameLocation, RecognitionRecord,
};
use serde::{Deserialize, Serialize};
use tracing::error;

use super::access::{Authorized, CaseReaders};
use super::paging::{page, parse_paging, CursorKind, Page};
use super::{ApiError, ApiState, FieldProblem};

#[derive(Deserialize)]
pub struct CaseParams {
    state: Option<String>,
    camera: Option<String>,
    plate: Option<String>,
    from: Option<String>,
    to: Option<String>,
    undeliverable: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub struct CaseItem {
    #[serde(flatten)]
    summary: CaseSummary,
    href: String,
}

/// `GET /api/v1/cases`.
pub async fn list(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    params: Result<Query<CaseParams>, QueryRejection>,
) -> Result<Json<Page<CaseItem>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut query = parse_case_query(params)?;
    let limit = query.limit;
    // One row beyond the page says whether there is a next one.
    query.limit = limit + 1;
    let rows = state.app.store.cases(&query).await?;
    Ok(Json(page(
        rows,
        limit,
        CursorKind::Cases,
        |c| c.id.0,
        |summary| CaseItem {
            href: state.app.link(&format!("/api/v1/cases/{}", summary.id)),
            summary,
        },
    )))
}

fn parse_case_query(params: CaseParams) -> Result<CaseQuery, ApiError> {
    let mut problems = Vec::new();
    let state = params
        .state
        .as_deref()
        .and_then(|raw| match raw.parse::<CaseState>() {
            Ok(state) => Some(state),
            Err(_) => {
                problems.push(FieldProblem::new("state", "is not a case state"));
                None
            }
        });
    let camera = params
        .camera
        .as_deref()
        .and_then(|raw| match CameraId::parse(raw) {
            Ok(id) => Some(id),
            Err(e) => {
                problems.push(FieldProblem::new("camera", e.to_string()));
                None
            }
        });
    let plate = params
        .plate
        .as_deref()
        .map(kozomol_fines::review::plate_as_typed);
    if plate
        .as_deref()
        .is_some_and(|p| p.is_empty() || p.len() > 32)
    {
        problems.push(FieldProblem::new("plate", "must be 1-32 characters"));
    }
    let from = instant(params.from.as_deref(), "from", &mut problems);
    let to = instant(params.to.as_deref(), "to", &mut problems);
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            problems.push(FieldProblem::new("to", "must not be before from"));
        }
    }
    let undeliverable = match params.undeliverable.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            problems.push(FieldProblem::new("undeliverable", "must be true or false"));
            false
        }
    };
    let (limit, after) = parse_paging(
        params.limit.as_deref(),
        params.cursor.as_deref(),
        CursorKind::Cases,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(ApiError::InvalidQuery(problems));
    }
    Ok(CaseQuery {
        state,
        camera,
        plate,
        sighted_plates: Vec::new(),
        from,
        to,
        limit,
        after: after.map(CaseId),
        undeliverable,
        owner_from_registry: false,
    })
}

/// Plates are stored upper case without spaces; accept them as people type them.
fn instant(
    raw: Option<&str>,
    field: &str,
    problems: &mut Vec<FieldProblem>,
) -> Option<DateTime<Utc>> {
    raw.and_then(|raw| match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            problems.push(FieldProblem::new(
                field,
                "must be an RFC 3339 instant, e.g. 2026-03-01T00:00:00Z",
            ));
            None
        }
    })
}

#[derive(Serialize)]
pub struct FrameView {
    index: u32,
    role: FrameRole,
    sha256: String,
    len: u32,
    url: String,
}

#[derive(Serialize)]
pub struct CaseDetail {
    id: CaseId,
    event_id: kozomol_core::EventId,
    /// Null for a case an officer filed himself.
    camera_id: Option<CameraId>,
    captured_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    kind: kozomol_core::ViolationKind,
    state: CaseState,
    plate: Option<String>,
    enforceable: bool,
    enforceability_note: Option<String>,
    /// SHA-256 of the signed payload, hex.
    fingerprint: String,
    /// The event as the camera signed it.
    event: serde_json::Value,
    /// When the retention purge took the personal data out of the case.
    personal_data_purged_at: Option<DateTime<Utc>>,
    /// When its file (photos, signed PDF, appeal files) was destroyed at the end of
    /// the archive period: its frames answer 410 since.
    evidence_destroyed_at: Option<DateTime<Utc>>,
    frames: Vec<FrameView>,
    /// The recognizer's read, once it has decided.
    recognition: Option<RecognitionRecord>,
    /// The plate as the recognizer cut it out, when it read one.
    plate_crop_url: Option<String>,
    /// The issued resolution's number and where to read it, once issued.
    resolution: Option<String>,
    resolution_href: Option<String>,
    audit: Vec<AuditEntry>,
    camera_href: Option<String>,
}

/// `GET /api/v1/cases/{id}`.
pub async fn show(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CaseDetail>, ApiError> {
    let case = find_case(&state, &id).await?;
    let audit = state.app.store.case_audit(case.id).await?;
    let recognition = readable_recognition(&state, case.id).await?;
    let resolution = state
        .app
        .store
        .resolution_of_case(case.id)
        .await?
        .map(|r| r.number);
    let resolution_href = resolution
        .as_ref()
        .map(|n| state.app.link(&format!("/api/v1/resolutions/{n}")));
    let plate_crop_url = recognition.as_ref().and_then(|r| r.crop.as_ref()).map(|_| {
        state
            .app
            .link(&format!("/api/v1/cases/{}/plate-crop", case.id))
    });
    let frames = case
        .frames
        .iter()
        .map(|f| FrameView {
            index: f.index,
            role: f.role,
            sha256: hex::encode(f.sha256),
            len: f.location.len,
            url: state
                .app
                .link(&format!("/api/v1/cases/{}/frames/{}", case.id, f.index)),
        })
        .collect();
    Ok(Json(CaseDetail {
        camera_href: case
            .camera_id
            .as_ref()
            .map(|camera| state.app.link(&format!("/api/v1/cameras/{camera}"))),
        id: case.id,
        event_id: case.event_id,
        camera_id: case.camera_id,
        captured_at: case.captured_at,
        received_at: case.received_at,
        kind: case.kind,
        state: case.state,
        plate: case.plate,
        enforceable: case.enforceable,
        enforceability_note: case.enforceability_note,
        fingerprint: hex::encode(case.fingerprint),
        event: case.event,
        personal_data_purged_at: case.personal_data_purged_at,
        evidence_destroyed_at: case.evidence_destroyed_at,
        frames,
        recognition,
        plate_crop_url,
        resolution,
        resolution_href,
        audit,
    }))
}

/// The case's stored machine read, or none where it does not decode (logged): a
/// damaged read must not keep the case from being shown or decided — without it a
/// supervisor decides, as for a case the machine could not read.
pub(crate) async fn readable_recognition(
    state: &ApiState,
    case_id: CaseId,
) -> Result<Option<RecognitionRecord>, ApiError> {
    match state.app.store.recognition(case_id).await {
        Ok(read) => Ok(read),
        Err(e @ kozomol_store::StoreError::Corrupt(_)) => {
            error!(case_id = %case_id, error = %e, "the case's stored read does not decode; shown and decided without it");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn find_case(state: &ApiState, raw_id: &str) -> Result<CaseRecord, ApiError> {
    let id = raw_id
        .parse::<i64>()
        .map(CaseId)
        .map_err(|_| ApiError::BadRequest("a case id is a whole number".into()))?;
    state
        .app
        .store
        .case(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("case {id}")))
}

/// `GET /api/v1/cases/{id}/frames/{n}`: the JPEG bytes, only if they still hash to
/// the SHA-256 the camera signed.
pub async fn frame(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let case = find_case(&state, &id).await?;
    refuse_destroyed(&case)?;
    let index: u32 = n
        .parse()
        .map_err(|_| ApiError::BadRequest("a frame number is a whole number from 0".into()))?;
    let frame = case
        .frames
        .iter()
        .find(|f| f.index == index)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("frame {index} of case {}", case.id)))?;
    serve_evidence(
        &state,
        case.id,
        &format!("frame {index}"),
        frame.location,
        frame.sha256,
    )
    .await
}

/// `GET /api/v1/cases/{id}/plate-crop`: the plate the recognizer read, as it cut it
/// out of the frame, only if it still hashes to the SHA-256 recorded with the read.
pub async fn plate_crop(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let case = find_case(&state, &id).await?;
    refuse_destroyed(&case)?;
    let crop = readable_recognition(&state, case.id)
        .await?
        .and_then(|r| r.crop)
        .ok_or_else(|| ApiError::NotFound(format!("plate crop of case {}", case.id)))?;
    serve_evidence(&state, case.id, "plate crop", crop.location, crop.sha256).await
}

/// Nothing of a case file destroyed at the end of its archive period is served,
/// whatever its segments still hold (a photo a kept case shares, bytes not overwritten
/// yet).
pub(crate) fn refuse_destroyed(case: &CaseRecord) -> Result<(), ApiError> {
    match case.evidence_destroyed_at {
        Some(_) => Err(ApiError::EvidenceDestroyed),
        None => Ok(()),
    }
}

/// [`refuse_destroyed`] for a case known by its id.
pub(crate) async fn refuse_destroyed_case(
    state: &ApiState,
    case_id: CaseId,
) -> Result<(), ApiError> {
    match state.app.store.case(case_id).await? {
        Some(case) => refuse_destroyed(&case),
        None => Err(ApiError::NotFound(format!("case {case_id}"))),
    }
}

/// Evidence bytes as a JPEG response, re-verified against their hash.
pub(crate) async fn serve_evidence(
    state: &ApiState,
    case_id: CaseId,
    what: &str,
    location: FrameLocation,
    sha256: [u8; 32],
) -> Result<Response, ApiError> {
    let bytes = read_evidence(state, case_id, what, location, sha256).await?;
    let etag = format!("\"{}\"", hex::encode(sha256));
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    // A plate, a face, a car at a place and time: personal data, which a browser (a
    // shared computer at a station) must not keep after it is shown, nor past the
    // purge or destruction that takes it from here.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    Ok(response)
}

/// A case's evidence bytes, only if they still hash to `sha256`; a mismatch is logged
/// as corruption and never served.
pub(crate) async fn read_evidence(
    state: &ApiState,
    case_id: CaseId,
    what: &str,
    location: FrameLocation,
    sha256: [u8; 32],
) -> Result<Vec<u8>, ApiError> {
    read_evidence_of(state, &format!("case {case_id}"), what, location, sha256).await
}

/// Reads evidence bytes that belong to `owner` (a case, an accident), re-checking
/// their hash; a mismatch is logged for an operator and never served.
pub(crate) async fn read_evidence_of(
    state: &ApiState,
    owner: &str,
    what: &str,
    location: FrameLocation,
    sha256: [u8; 32],
) -> Result<Vec<u8>, ApiError> {
    let evidence = state.app.evidence.clone();
    let segment = location.segment.clone();
    // Reading and hashing up to a few hundred KB is blocking work.
    let bytes = tokio::task::spawn_blocking(move || evidence.read(&location, &sha256))
        .await?
        .map_err(|e| {
            let e = ApiError::from(e);
            if matches!(e, ApiError::EvidenceCorrupt { .. }) {
                error!(
                    owner,
                    what,
                    sha256 = %hex::encode(sha256),
                    segment = %segment,
                    "evidence does not match its hash; not served"
                );
            }
            e
        })?;
    Ok(bytes)
}
