//! Resolutions: staff read an issued resolution, its PDF and its deliveries, record a
//! proof of delivery that came back on paper or from another system, and take the
//! contacts citizens leave; anyone may check whether a PDF is a genuine one (`verify`)
//! with the published public keys, so that a citizen, a bank or a court can trust a
//! copy without asking who sent it.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use kozomol_core::DeliveryChannel;
use kozomol_fines::delivery::{self, DeliveryError};
use kozomol_fines::resolution::{
    verify, DetachedSignature, ResolutionNumber, SignatureAlgorithm, SignerIdentity, Verdict,
};
use kozomol_store::{ContactAdded, DeliveryRecord, DeliveryRecorded, ResolutionRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::{Authorized, CaseReaders, DeskOfficers};
use super::cases::read_evidence;
use super::{json_body, ApiError, ApiState, FieldProblem};

/// A PDF larger than this is no resolution of ours (they are a few hundred KB).
pub const MAX_PDF_BYTES: usize = 16 * 1024 * 1024;

pub(super) async fn find(state: &ApiState, number: &str) -> Result<ResolutionRecord, ApiError> {
    // A number that cannot be one is a client error, not a miss.
    ResolutionNumber::parse(number).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    state
        .app
        .store
        .resolution(number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("resolution {number}")))
}

#[derive(Serialize)]
pub struct ResolutionView {
    #[serde(flatten)]
    record: ResolutionRecord,
    pdf_href: String,
    verify_href: String,
    case_href: String,
}

/// `GET /api/v1/resolutions/{number}`.
pub async fn show(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(number): Path<String>,
) -> Result<Json<ResolutionView>, ApiError> {
    let record = find(&state, &number).await?;
    Ok(Json(ResolutionView {
        pdf_href: state
            .app
            .link(&format!("/api/v1/resolutions/{}/pdf", record.number)),
        verify_href: state
            .app
            .link(&format!("/api/v1/resolutions/{}/verify", record.number)),
        case_href: state.app.link(&format!("/api/v1/cases/{}", record.case_id)),
        record,
    }))
}

/// `GET /api/v1/resolutions/{number}/pdf`: the stored PDF, byte for byte as signed.
/// It names the owner: each download is audited.
pub async fn pdf(
    caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    let record = find(&state, &number).await?;
    record_owner_view(
        &state,
        &record,
        caller.account.login.clone(),
        "resolution PDF",
    )
    .await?;
    pdf_response(&state, &record).await
}

/// Audits that `actor` was shown the personal data of the owner a resolution names
/// (`owner.viewed`); nothing is shown unless this is written.
pub(crate) async fn record_owner_view(
    state: &ApiState,
    record: &ResolutionRecord,
    actor: String,
    what: &str,
) -> Result<(), ApiError> {
    let detail = format!("{what} of resolution {}", record.number);
    record_case_owner_view(state, record.case_id, actor, detail).await
}

/// Audits that `actor` was shown the personal data of `case_id`'s owner
/// (`owner.viewed`), with what they were shown.
pub(crate) async fn record_case_owner_view(
    state: &ApiState,
    case_id: kozomol_core::CaseId,
    actor: String,
    detail: String,
) -> Result<(), ApiError> {
    state
        .app
        .store
        .record_audit(&kozomol_store::NewAuditEntry {
            case_id: Some(case_id),
            actor,
            action: kozomol_store::audit::OWNER_DATA_VIEWED.to_owned(),
            detail: Some(detail),
        })
        .await?;
    Ok(())
}

/// The resolution's PDF as stored, byte for byte as signed, with its hash as ETag.
pub(crate) async fn pdf_response(
    state: &ApiState,
    record: &ResolutionRecord,
) -> Result<Response, ApiError> {
    super::cases::refuse_destroyed_case(state, record.case_id).await?;
    let bytes = read_evidence(
        state,
        record.case_id,
        "resolution PDF",
        record.pdf_location.clone(),
        record.pdf_sha256,
    )
    .await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{}.pdf\"", record.number))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(record.pdf_sha256))) {
        headers.insert(header::ETAG, value);
    }
    // It names the owner: no browser keeps it (see `cases::serve_evidence`).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Serialize)]
pub struct Verification {
    valid: bool,
    /// `valid`, `hash_mismatch` (not the signed file), `bad_signature`, `unknown_key`.
    verdict: &'static str,
    number: String,
    /// SHA-256 of the bytes sent.
    sha256: String,
    /// SHA-256 of the PDF as issued.
    signed_sha256: String,
    key_id: String,
    signer: String,
    algorithm: &'static str,
    issued_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/v1/resolutions/{number}/verify` with a PDF's bytes as the body: whether
/// they are the resolution as issued, signed by a key kozomol trusts. No token needed.
pub async fn check(
    State(state): State<ApiState>,
    Path(number): Path<String>,
    body: Bytes,
) -> Result<Json<Verification>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "send the PDF's bytes as the request body".into(),
        ));
    }
    let record = find(&state, &number).await?;
    let signer: SignerIdentity = record
        .signer
        .parse()
        .map_err(|e| ApiError::Internal(format!("resolution {number}'s stored signer: {e}")))?;
    let signature = DetachedSignature {
        algorithm: SignatureAlgorithm::Ed25519,
        key_id: record.signature_key_id.clone(),
        signer,
        signature: record.signature.clone(),
        document_sha256: record.pdf_sha256,
    };
    let keys = state.app.resolution_keys.clone();
    let (verdict, sha256) = tokio::task::spawn_blocking(move || {
        let sha256: [u8; 32] = Sha256::digest(&body).into();
        (verify(&body, &signature, &keys), sha256)
    })
    .await?;
    Ok(Json(Verification {
        valid: verdict == Verdict::Valid,
        verdict: verdict.as_str(),
        number: record.number,
        sha256: hex::encode(sha256),
        signed_sha256: hex::encode(record.pdf_sha256),
        key_id: record.signature_key_id,
        signer: record.signer,
        algorithm: SignatureAlgorithm::Ed25519.as_str(),
        issued_at: record.issued_at,
    }))
}

#[derive(Serialize)]
pub struct PublishedKey {
    key_id: String,
    algorithm: &'static str,
    /// The 32-byte Ed25519 public key, hex.
    public_key: String,
}

#[derive(Serialize)]
pub struct PublishedKeys {
    /// What a signature signs: see docs/fines.md ("Signature").
    keys: Vec<PublishedKey>,
}

/// `GET /api/v1/resolution-keys`: every public key resolutions are verified with.
pub async fn keys(State(state): State<ApiState>) -> Json<PublishedKeys> {
    Json(PublishedKeys {
        keys: state
            .app
            .resolution_keys
            .iter()
            .map(|(id, key)| PublishedKey {
                key_id: id.to_owned(),
                algorithm: SignatureAlgorithm::Ed25519.as_str(),
                public_key: hex::encode(key.as_bytes()),
            })
            .collect(),
    })
}

/// `GET /api/v1/resolutions/{number}/deliveries`: the outbox rows of a resolution —
/// channel, address, state, attempts, proof — oldest first.
pub async fn deliveries(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(number): Path<String>,
) -> Result<Json<Vec<DeliveryRecord>>, ApiError> {
    let record = find(&state, &number).await?;
    Ok(Json(state.app.store.deliveries(&record.number).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// `return_receipt` (the posted letter's receipt came back) or `portal` (another
    /// system, named in `source`, delivered it).
    kind: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    source: Option<String>,
    /// What the proof says (receipt number, the portal's message id), as given.
    #[serde(default)]
    proof: serde_json::Value,
}

#[derive(Serialize)]
pub struct ProofResult {
    delivery_id: i64,
    /// `first` (the clocks start at `delivered_at`), `additional`, `already_recorded`.
    recorded: &'static str,
    /// When the resolution counts as delivered.
    delivered_at: DateTime<Utc>,
}

/// `POST /api/v1/resolutions/{number}/deliveries`: records a proof of delivery that
/// came back outside the outbox's own channels.
pub async fn record_proof(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    Path(number): Path<String>,
    body: Result<Json<ProofRequest>, JsonRejection>,
) -> Result<Json<ProofResult>, ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let kind = request.kind.as_deref();
    if !matches!(kind, Some("return_receipt" | "portal")) {
        problems.push(FieldProblem::new(
            "kind",
            "must be `return_receipt` or `portal`",
        ));
    }
    let source = request
        .source
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if kind == Some("portal") && source.is_none() {
        problems.push(FieldProblem::new(
            "source",
            "a portal report names the system that delivered",
        ));
    }
    let Some(delivered_at) = request.delivered_at.filter(|_| problems.is_empty()) else {
        if request.delivered_at.is_none() {
            problems.push(FieldProblem::new("delivered_at", "required (RFC 3339)"));
        }
        return Err(ApiError::Validation(problems));
    };
    let record = find(&state, &number).await?;
    let store = state.app.store.as_ref();
    let who = &caller.account.login;
    let recorded = match (kind, source) {
        (Some("portal"), Some(source)) => {
            delivery::record_portal_delivery(
                store,
                &record.number,
                source,
                delivered_at,
                request.proof,
                who,
            )
            .await
        }
        _ => {
            delivery::record_return_receipt(store, &record.number, delivered_at, request.proof, who)
                .await
        }
    }
    .map_err(|e| match e {
        DeliveryError::Store(store) => ApiError::from(store),
        DeliveryError::NoLetter(_) => ApiError::Conflict(e.to_string()),
        other => ApiError::Internal(other.to_string()),
    })?;
    let (id, word, at) = match recorded {
        DeliveryRecorded::First {
            delivery_id,
            delivered_at,
        } => (delivery_id, "first", delivered_at),
        DeliveryRecorded::Additional {
            delivery_id,
            resolution_delivered_at,
        } => (delivery_id, "additional", resolution_delivered_at),
        // Proven before this request: the resolution as read above says when.
        DeliveryRecorded::AlreadyRecorded { delivery_id } => (
            delivery_id,
            "already_recorded",
            record.delivered_at.unwrap_or(delivered_at),
        ),
    };
    Ok(Json(ProofResult {
        delivery_id: id.0,
        recorded: word,
        delivered_at: at,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactRequest {
    channel: Option<String>,
    address: Option<String>,
}

#[derive(Serialize)]
pub struct ContactResult {
    id: i64,
    /// Deliveries queued to it for the owner's resolutions not yet delivered.
    planned: u32,
    already_known: bool,
}

/// `POST /api/v1/owners/{owner_id}/contacts`: a phone number or e-mail address a
/// citizen leaves for notices; the owner's undelivered resolutions go to it at once.
pub async fn add_contact(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    Path(owner_id): Path<String>,
    body: Result<Json<ContactRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ContactResult>), ApiError> {
    add_contact_for(&state, &owner_id, json_body(body)?, &caller.account.login).await
}

/// Stores a contact of `owner_id` left by `by` and queues the owner's undelivered
/// resolutions to it: 201 when new, 200 when it was known.
pub(crate) async fn add_contact_for(
    state: &ApiState,
    owner_id: &str,
    request: ContactRequest,
    by: &str,
) -> Result<(StatusCode, Json<ContactResult>), ApiError> {
    let (channel, address) = request.channel_and_address()?;
    let added = delivery::add_contact(state.app.store.as_ref(), owner_id, channel, &address, by)
        .await
        .map_err(contact_problem)?;
    Ok(contact_answer(added))
}

impl ContactRequest {
    /// The channel (`sms` or `email`) and the address as given.
    pub(crate) fn channel_and_address(self) -> Result<(DeliveryChannel, String), ApiError> {
        let channel = match self.channel.as_deref() {
            Some("sms") => Some(DeliveryChannel::Sms),
            Some("email") => Some(DeliveryChannel::Email),
            _ => None,
        };
        match (channel, self.address) {
            (Some(channel), Some(address)) => Ok((channel, address)),
            _ => Err(ApiError::Validation(vec![FieldProblem::new(
                "channel",
                "`sms` or `email`, with the `address`",
            )])),
        }
    }
}

/// A contact's refusal as the API answers it.
pub(crate) fn contact_problem(e: DeliveryError) -> ApiError {
    match e {
        DeliveryError::Store(store) => ApiError::from(store),
        DeliveryError::Contact(_) => {
            ApiError::Validation(vec![FieldProblem::new("address", e.to_string())])
        }
        DeliveryError::NoOwner => {
            ApiError::Validation(vec![FieldProblem::new("owner_id", e.to_string())])
        }
        DeliveryError::CodeMalformed => {
            ApiError::Validation(vec![FieldProblem::new("code", e.to_string())])
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// 201 with a new contact, 200 with one known already.
pub(crate) fn contact_answer(added: ContactAdded) -> (StatusCode, Json<ContactResult>) {
    match added {
        ContactAdded::Added { id, planned } => (
            StatusCode::CREATED,
            Json(ContactResult {
                id,
                planned,
                already_known: false,
            }),
        ),
        ContactAdded::AlreadyKnown { id } => (
            StatusCode::OK,
            Json(ContactResult {
                id,
                planned: 0,
                already_known: true,
            }),
        ),
    }
}
