//! Appeals, bulk voids and refund requests: an officer takes in an appeal (with the
//! appellant's files) and a supervisor decides it; a supervisor or admin voids every
//! case of a device over a time range (a lapsed calibration, say); finance reads the
//! refunds both leave behind. The rules are `kozomol_fines::appeals` and the store's
//! (every move a compare-and-set with its audit row).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use kozomol_fines::appeals::{
    another_appeal, appeal_in_time, check_attachment, AppealRefusal, MAX_ATTACHMENTS,
};
use kozomol_store::{
    AppealDecided, AppealFiled, AppealRecord, AppealState, AttachmentRecord, BulkVoidRequest,
    BulkVoidResult, CaseRecord, EvidenceRef, NewAppeal, NewAttachment, RefundOutcome,
    RefundRequestRecord, RefundSettled, RefundSettlement, StoreError,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::{
    Authorized, CaseReaders, DeskOfficers, Finance, FinanceReaders, Supervisors, Voiders,
};
use super::cases::{find_case, read_evidence_of};
use super::paging::{after_page, AfterPage, AfterQuery};
use super::resolutions::record_case_owner_view;
use super::{json_body, text_field, ApiError, ApiState, FieldProblem};

const MAX_TEXT_CHARS: usize = 4000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentUpload {
    name: String,
    content_type: String,
    /// The file's bytes, base64 (standard alphabet, padded).
    data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppealRequest {
    appellant: Option<String>,
    contact: Option<String>,
    grounds: Option<String>,
    #[serde(default)]
    attachments: Vec<AttachmentUpload>,
}

/// `POST /api/v1/cases/{id}/appeals`.
pub async fn file(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<AppealRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<AppealRecord>), ApiError> {
    let request = json_body(body)?;
    let case = find_case(&state, &id).await?;
    let record = file_appeal_for(&state, &case, request, caller.account.login.clone()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Files an appeal against `case`'s resolution in the appellant's words, by `filed_by`
/// (an officer's login, or `portal` for a citizen's own).
pub(crate) async fn file_appeal_for(
    state: &ApiState,
    case: &CaseRecord,
    request: AppealRequest,
    filed_by: String,
) -> Result<AppealRecord, ApiError> {
    let mut problems = Vec::new();
    let appellant = text_field(
        &mut problems,
        "appellant",
        request.appellant,
        MAX_TEXT_CHARS,
        Some("required"),
    );
    let contact = text_field(
        &mut problems,
        "contact",
        request.contact,
        MAX_TEXT_CHARS,
        None,
    );
    let grounds = text_field(
        &mut problems,
        "grounds",
        request.grounds,
        MAX_TEXT_CHARS,
        Some("required"),
    );
    if request.attachments.len() > MAX_ATTACHMENTS {
        problems.push(FieldProblem::new(
            "attachments",
            AppealRefusal::TooManyAttachments.to_string(),
        ));
    }
    let files = decode_uploads(&mut problems, "attachments", &request.attachments);
    let (Some(appellant), Some(grounds), true) = (appellant, grounds, problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };

    let store = &state.app.store;
    refuse_purged(case.personal_data_purged_at)?;
    let clock = store.clock(case.id).await?;
    if let Some(clock) = &clock {
        appeal_in_time(Some(clock), clock.jurisdiction.local_date(Utc::now()))
            .map_err(|e| ApiError::Conflict(e.to_string()))?;
    }
    // What the store would refuse is refused before any file is stored: a refused
    // filing must not leave its uploads behind.
    if store.resolution_of_case(case.id).await?.is_none() {
        return Err(ApiError::Conflict(format!(
            "case {} has no resolution to appeal",
            case.id
        )));
    }
    if !kozomol_store::appeals::APPEALABLE.contains(&case.state) {
        return Err(ApiError::Conflict(format!(
            "case {} is `{}`: no appeal is taken in that state",
            case.id, case.state
        )));
    }
    another_appeal(&store.appeals_of_case(case.id).await?)
        .map_err(|e| ApiError::Conflict(format!("case {}: {e}", case.id)))?;
    let case_id = case.id;
    let filed = file_with_uploads(
        state,
        files,
        "an appeal not filed",
        move |state, attachments| async move {
            let appeal = NewAppeal {
                case_id,
                appellant,
                contact,
                grounds,
                filed_by,
                attachments,
            };
            state.app.store.file_appeal(&appeal).await
        },
        |filed| matches!(filed, AppealFiled::Filed(_)),
    )
    .await?;
    match filed? {
        AppealFiled::Filed(record) => {
            tracing::info!(case_id = %case.id, appeal_id = record.id, "appeal filed");
            Ok(*record)
        }
        AppealFiled::NotAppealable(now) => Err(ApiError::Conflict(format!(
            "case {} is `{now}`: no appeal is taken in that state",
            case.id
        ))),
        AppealFiled::AlreadyOpen(open) => Err(ApiError::Conflict(format!(
            "appeal {open} of case {} is still open",
            case.id
        ))),
        AppealFiled::NoResolution => Err(ApiError::Conflict(format!(
            "case {} has no resolution to appeal",
            case.id
        ))),
        AppealFiled::Purged(at) => Err(purged(at)),
    }
}

/// An uploaded file that passed its checks.
pub(crate) struct Upload {
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) bytes: Vec<u8>,
}

/// Decodes and checks uploaded files (name, base64, type, size, content), putting
/// what is wrong with each under `field[i]`; returns those that passed.
pub(crate) fn decode_uploads(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    uploads: &[AttachmentUpload],
) -> Vec<Upload> {
    let mut files = Vec::new();
    for (i, upload) in uploads.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let name = upload.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            problems.push(FieldProblem::new(
                format!("{field}.name"),
                "1 to 200 characters",
            ));
            continue;
        }
        let bytes = match base64::engine::general_purpose::STANDARD.decode(&upload.data) {
            Ok(bytes) => bytes,
            Err(_) => {
                problems.push(FieldProblem::new(format!("{field}.data"), "not base64"));
                continue;
            }
        };
        if let Err(e) = check_attachment(name, &upload.content_type, &bytes) {
            problems.push(FieldProblem::new(field, e.to_string()));
            continue;
        }
        files.push(Upload {
            name: name.to_owned(),
            content_type: upload.content_type.clone(),
            bytes,
        });
    }
    files
}

/// Writes checked files to the evidence store. The files go there before the record
/// that names them: a filing that then fails leaves bytes to queue for overwriting,
/// never a reference to missing ones.
async fn store_uploads(
    state: &ApiState,
    files: Vec<Upload>,
) -> Result<Vec<NewAttachment>, ApiError> {
    let evidence = state.app.evidence.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let slices: Vec<&[u8]> = files.iter().map(|f| f.bytes.as_slice()).collect();
        evidence.append_batch(&slices).map(|locations| {
            files
                .into_iter()
                .zip(locations)
                .map(|(file, location)| NewAttachment {
                    evidence: EvidenceRef {
                        sha256: Sha256::digest(&file.bytes).into(),
                        location,
                    },
                    name: file.name,
                    content_type: file.content_type,
                })
                .collect::<Vec<_>>()
        })
    })
    .await??)
}

/// Stores `files` and records what `filing` makes of them, in a task of its own: axum
/// drops the handler of a client that hangs up, and one dropped between storing and
/// recording would leave bytes that no row names. Uploads of a filing that `named`
/// says no row names (refused, or a repeat of one recorded before, whose own copies
/// are kept) are queued for overwriting: an appellant's documents or an officer's
/// photos must not outlive the rules that erase the rest.
pub(crate) async fn file_with_uploads<T, F, Fut>(
    state: &ApiState,
    files: Vec<Upload>,
    filing_name: &'static str,
    filing: F,
    named: fn(&T) -> bool,
) -> Result<Result<T, StoreError>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(ApiState, Vec<NewAttachment>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, StoreError>> + Send,
{
    let state = state.clone();
    tokio::spawn(async move {
        let stored = store_uploads(&state, files).await?;
        let unkept: Vec<EvidenceRef> = stored.iter().map(|a| a.evidence.clone()).collect();
        let filed = filing(state.clone(), stored).await;
        if !matches!(&filed, Ok(done) if named(done)) {
            if let Err(e) = state.app.store.queue_unkept(&unkept).await {
                tracing::error!(files = unkept.len(), error = %e, "the uploads of {filing_name} are in no overwrite queue");
            }
        }
        Ok(filed)
    })
    .await?
}

/// `GET /api/v1/cases/{id}/appeals`: the case's appeals, oldest first. They name the
/// appellant (the owner, mostly) and how to reach them: each view is audited.
pub async fn list(
    caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<AppealRecord>>, ApiError> {
    let case = find_case(&state, &id).await?;
    let appeals = state.app.store.appeals_of_case(case.id).await?;
    if !appeals.is_empty() {
        let detail = format!("appeals of case {}", case.id);
        record_case_owner_view(&state, case.id, caller.account.login.clone(), detail).await?;
    }
    Ok(Json(appeals))
}

async fn find_appeal(state: &ApiState, raw: &str) -> Result<AppealRecord, ApiError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::BadRequest("an appeal id is a whole number".into()))?;
    state
        .app
        .store
        .appeal(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("appeal {id}")))
}

/// `GET /api/v1/appeals/{id}/attachments/{n}`: one of the appellant's files, served
/// only while it matches its hash.
pub async fn attachment(
    caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let appeal = find_appeal(&state, &id).await?;
    super::cases::refuse_destroyed_case(&state, appeal.case_id).await?;
    let detail = format!("file {n} of appeal {}", appeal.id);
    record_case_owner_view(&state, appeal.case_id, caller.account.login.clone(), detail).await?;
    serve_file(
        &state,
        &format!("appeal {} of case {}", appeal.id, appeal.case_id),
        &n,
        &appeal.attachments,
    )
    .await
}

/// File `n` of `owner`'s files (an appeal's, an accident's), with its type, served only
/// while it matches its hash.
pub(crate) async fn serve_file<'a>(
    state: &ApiState,
    owner: &str,
    n: &str,
    files: impl IntoIterator<Item = &'a AttachmentRecord>,
) -> Result<Response, ApiError> {
    let position: u32 = n
        .parse()
        .map_err(|_| ApiError::BadRequest("a file number is a whole number".into()))?;
    let file = files
        .into_iter()
        .find(|a| a.position == position)
        .ok_or_else(|| ApiError::NotFound(format!("file {position} of {owner}")))?;
    let bytes = read_evidence_of(state, owner, "file", file.location.clone(), file.sha256).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&file.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    // A citizen's upload, checked only by its first bytes: saved, never rendered in
    // the console's origin.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    // An appellant's papers, an accident's participants: no browser keeps them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    decision: Option<String>,
    note: Option<String>,
}

#[derive(Serialize)]
pub struct DecisionResult {
    appeal_id: i64,
    case_id: i64,
    state: kozomol_core::CaseState,
    refund_request: Option<i64>,
}

/// `POST /api/v1/appeals/{id}/decision`.
pub async fn decide(
    caller: Authorized<Supervisors>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<DecisionResult>, ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let decision = match request.decision.as_deref() {
        Some("rejected") => Some(AppealState::Rejected),
        Some("annulled") => Some(AppealState::Annulled),
        _ => {
            problems.push(FieldProblem::new(
                "decision",
                "must be `rejected` (the resolution stands) or `annulled`",
            ));
            None
        }
    };
    let note = text_field(
        &mut problems,
        "note",
        request.note,
        MAX_TEXT_CHARS,
        Some("required"),
    );
    let (Some(decision), Some(note), true) = (decision, note, problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let appeal = find_appeal(&state, &id).await?;
    match state
        .app
        .store
        .decide_appeal(appeal.id, decision, &caller.account.login, &note)
        .await?
    {
        AppealDecided::Decided {
            case_state,
            refund_request,
        } => {
            tracing::info!(appeal_id = appeal.id, case_id = %appeal.case_id, decision = decision.as_str(), "appeal decided");
            Ok(Json(DecisionResult {
                appeal_id: appeal.id,
                case_id: appeal.case_id.0,
                state: case_state,
                refund_request,
            }))
        }
        AppealDecided::NotOpen(was) => Err(ApiError::Conflict(format!(
            "appeal {} was decided already ({})",
            appeal.id,
            was.as_str()
        ))),
        AppealDecided::NotFound => Err(ApiError::NotFound(format!("appeal {}", appeal.id))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    device_serial: Option<String>,
    captured_from: Option<DateTime<Utc>>,
    captured_until: Option<DateTime<Utc>>,
    reason: Option<String>,
}

/// `POST /api/v1/bulk-voids`: voids every open case of a device captured in
/// `[captured_from, captured_until)`.
pub async fn bulk_void(
    caller: Authorized<Voiders>,
    State(state): State<ApiState>,
    body: Result<Json<VoidRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<BulkVoidResult>), ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let serial = text_field(
        &mut problems,
        "device_serial",
        request.device_serial,
        MAX_TEXT_CHARS,
        Some("required"),
    );
    let reason = text_field(
        &mut problems,
        "reason",
        request.reason,
        MAX_TEXT_CHARS,
        Some("required"),
    );
    match (request.captured_from, request.captured_until) {
        (Some(from), Some(until)) if from < until => {}
        (Some(_), Some(_)) => problems.push(FieldProblem::new(
            "captured_until",
            "must be after captured_from",
        )),
        _ => problems.push(FieldProblem::new(
            "captured_from",
            "captured_from and captured_until are required (RFC 3339)",
        )),
    }
    let (Some(device_serial), Some(reason), Some(from), Some(until), true) = (
        serial,
        reason,
        request.captured_from,
        request.captured_until,
        problems.is_empty(),
    ) else {
        return Err(ApiError::Validation(problems));
    };
    let result = state
        .app
        .store
        .bulk_void(&BulkVoidRequest {
            device_serial,
            captured_from: from,
            captured_until: until,
            reason,
            requested_by: caller.account.login.clone(),
        })
        .await?;
    tracing::warn!(
        bulk_void = result.id,
        voided = result.voided.len(),
        refunds = result.refund_requests,
        "cases voided in bulk"
    );
    Ok((StatusCode::CREATED, Json(result)))
}

/// `GET /api/v1/refund-requests?after=ID&limit=N`.
pub async fn refunds(
    _caller: Authorized<FinanceReaders>,
    State(state): State<ApiState>,
    Query(query): Query<AfterQuery>,
) -> Result<Json<AfterPage<RefundRequestRecord>>, ApiError> {
    let (after, limit) = query.bounds()?;
    let items = state.app.store.refund_requests(after, limit).await?;
    Ok(Json(after_page(items, limit, |r| r.id)))
}

#[derive(Debug, Deserialize)]
pub struct SettlementBody {
    /// `refunded` (with `reference`) or `cancelled` (with `note`).
    outcome: String,
    /// The transfer's reference at the bank or payment provider.
    reference: Option<String>,
    note: Option<String>,
}

/// `POST /api/v1/refund-requests/{id}/settlement`: finance records the money paid
/// back (`refunded`, with the transfer's reference) or why it is not (`cancelled`);
/// once: a settled request answers 409.
pub async fn settle_refund(
    caller: Authorized<Finance>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    body: Result<Json<SettlementBody>, JsonRejection>,
) -> Result<Json<RefundRequestRecord>, ApiError> {
    let body = json_body(body)?;
    let mut problems = Vec::new();
    let outcome = match body.outcome.as_str() {
        "refunded" => Some(RefundOutcome::Refunded),
        "cancelled" => Some(RefundOutcome::Cancelled),
        other => {
            problems.push(FieldProblem::new(
                "outcome",
                format!("`{other}`: refunded or cancelled"),
            ));
            None
        }
    };
    let reference = text_field(
        &mut problems,
        "reference",
        body.reference,
        200,
        (outcome == Some(RefundOutcome::Refunded)).then_some("the transfer's reference"),
    );
    let note = text_field(
        &mut problems,
        "note",
        body.note,
        200,
        (outcome == Some(RefundOutcome::Cancelled)).then_some("say why it is not paid back"),
    );
    let (Some(outcome), true) = (outcome, problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let settlement = RefundSettlement {
        id,
        outcome,
        reference,
        note,
        settled_by: caller.account.login.clone(),
    };
    let settled = state.app.store.settle_refund(&settlement).await?;
    match settled {
        RefundSettled::Settled(record) => {
            tracing::info!(
                refund_request = record.id,
                state = %record.state,
                by = %caller.account.login,
                "refund settled"
            );
            Ok(Json(record))
        }
        // The same settlement again (a retry after a lost answer) is answered as it
        // stands.
        RefundSettled::AlreadySettled(record)
            if record.state == outcome.as_str()
                && record.reference == settlement.reference
                && record.note == settlement.note =>
        {
            Ok(Json(record))
        }
        RefundSettled::AlreadySettled(record) => Err(ApiError::Conflict(format!(
            "refund request {id} is {} already",
            record.state
        ))),
        RefundSettled::NotFound => Err(ApiError::NotFound(format!("refund request {id}"))),
    }
}

/// A case whose personal data were purged takes no new statement about it: it was
/// settled and quiet for the whole retention period.
pub(crate) fn refuse_purged(purged_at: Option<chrono::DateTime<Utc>>) -> Result<(), ApiError> {
    purged_at.map_or(Ok(()), |at| Err(purged(at)))
}

/// A case whose personal data were purged (at `at`) takes no appeal or statement.
pub(crate) fn purged(at: chrono::DateTime<Utc>) -> ApiError {
    ApiError::Conflict(format!(
        "the case was settled and its personal data purged on {}: it takes no appeal or statement",
        at.format("%Y-%m-%d")
    ))
}
