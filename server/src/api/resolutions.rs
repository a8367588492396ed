//! Resolutions: staff read an issued resolution and its PDF; anyone may check whether
//! a PDF is a genuine one (`verify`) with the published public keys, so that a citizen,
//! a bank or a court can trust a copy without asking who sent it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kozomol_fines::resolution::{
    verify, DetachedSignature, ResolutionNumber, SignatureAlgorithm, SignerIdentity, Verdict,
};
use kozomol_store::ResolutionRecord;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::access::{Authorized, CaseReaders};
use super::cases::read_evidence;
use super::{ApiError, ApiState};

/// A PDF larger than this is no resolution of ours (they are a few hundred KB).
pub const MAX_PDF_BYTES: usize = 16 * 1024 * 1024;

async fn find(state: &ApiState, number: &str) -> Result<ResolutionRecord, ApiError> {
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
pub async fn pdf(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    let record = find(&state, &number).await?;
    let bytes = read_evidence(
        &state,
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
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
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
