//! Every way a request can fail, mapped once to an HTTP status, a stable code and a
//! title, and rendered as `application/problem+json` (RFC 9457).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kozomol_store::StoreError;
use serde::Serialize;
use tracing::error;

use crate::auth::AuthError;

/// One problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthenticated,
    #[error("role `{role}` may not use this route")]
    Forbidden { role: kozomol_core::Role },
    #[error("login or password is wrong")]
    InvalidCredentials,
    #[error("too many failed attempts for this login; retry in {retry_after_s} s")]
    TooManyAttempts { retry_after_s: u64 },
    /// A console session's change without its anti-forgery token (`X-CSRF-Token`).
    #[error("this session's X-CSRF-Token header is missing or wrong")]
    CsrfRejected,
    /// A portal route of one fine without a valid grant from a lookup.
    #[error("look the fine up again: this link has expired or is not valid")]
    GrantRequired,
    /// Too many public lookups from one address.
    #[error("too many lookups from this address; retry in {retry_after_s} s")]
    TooManyLookups { retry_after_s: u64 },
    #[error("{0} not found")]
    NotFound(String),
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than this route takes")]
    TooLarge,
    #[error("invalid query parameters")]
    InvalidQuery(Vec<FieldProblem>),
    #[error("the request body is not valid")]
    Validation(Vec<FieldProblem>),
    #[error("{0}")]
    Conflict(String),
    /// A provider's request or callback whose signature is not taken.
    #[error("{0}")]
    Signature(kozomol_payments::SignatureError),
    #[error("this Idempotency-Key was used for another request")]
    IdempotencyKeyReused,
    #[error("the first request with this Idempotency-Key is still being answered")]
    IdempotencyKeyInUse,
    /// A payment, an intent or a callback refused by the ledger's rules.
    #[error("{detail}")]
    Payment {
        problem: super::payment_api::PaymentProblem,
        detail: String,
    },
    #[error("stored evidence does not match its hash")]
    EvidenceCorrupt { sha256: String },
    #[error("this evidence was destroyed with its case file at the end of the archive period")]
    EvidenceDestroyed,
    #[error("the service is not ready")]
    NotReady,
    /// A contact's confirmation code the channel (SMS gateway, mail server) did not take.
    #[error("the confirmation code could not be sent just now; try again later")]
    CodeNotSent,
    /// The address was sent as many confirmation codes as it may be in an hour.
    #[error("this address was sent several codes in the last hour; try again in an hour")]
    TooManyCodes,
    #[error("this process does not publish camera config")]
    ConfigUnavailable,
    #[error("camera config could not be published")]
    ConfigPublish(String),
    /// Anything the client cannot act on; the message is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The one table: status, stable code, title.
    fn meta(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not allowed for this role",
            ),
            InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
            ),
            TooManyAttempts { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Too many failed attempts",
            ),
            CsrfRejected => (
                StatusCode::FORBIDDEN,
                "csrf_rejected",
                "Anti-forgery token missing or wrong",
            ),
            GrantRequired => (
                StatusCode::FORBIDDEN,
                "grant_required",
                "A lookup's grant is required",
            ),
            TooManyLookups { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_lookups",
                "Too many lookups",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", "Bad request"),
            TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "Request body too large",
            ),
            InvalidQuery(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "Invalid query parameters",
            ),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Signature(kozomol_payments::SignatureError::Stale { .. }) => (
                StatusCode::UNAUTHORIZED,
                "signature_stale",
                "Signature too old or too new",
            ),
            Signature(_) => (
                StatusCode::UNAUTHORIZED,
                "signature_invalid",
                "Signature refused",
            ),
            IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            IdempotencyKeyInUse => (
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "Idempotency key in use",
            ),
            Payment { problem, .. } => problem.meta(),
            EvidenceCorrupt { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "evidence_corrupt",
                "Evidence is corrupt",
            ),
            EvidenceDestroyed => (StatusCode::GONE, "evidence_destroyed", "Evidence destroyed"),
            NotReady => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "Service not ready",
            ),
            TooManyCodes => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_codes",
                "Too many codes to this address",
            ),
            CodeNotSent => (
                StatusCode::SERVICE_UNAVAILABLE,
                "code_not_sent",
                "Confirmation code not sent",
            ),
            ConfigUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "config_unavailable",
                "Camera config publishing unavailable",
            ),
            ConfigPublish(_) => (
                StatusCode::BAD_GATEWAY,
                "config_publish_failed",
                "Camera config publish failed",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        self.meta().1
    }

    pub fn status(&self) -> StatusCode {
        self.meta().0
    }
}

/// Every problem code the API answers with, for the documentation test.
pub const PROBLEM_CODES: &[&str] = &[
    "unauthenticated",
    "forbidden",
    "invalid_credentials",
    "too_many_attempts",
    "csrf_rejected",
    "too_many_lookups",
    "grant_required",
    "not_found",
    "method_not_allowed",
    "bad_request",
    "invalid_query",
    "validation_failed",
    "conflict",
    "signature_invalid",
    "signature_stale",
    "idempotency_key_reused",
    "idempotency_key_in_use",
    "unknown_payment_code",
    "case_closed",
    "already_paid",
    "not_payable",
    "payment_id_reused",
    "invalid_money",
    "unknown_intent",
    "intent_for_other_fine",
    "amount_mismatch",
    "intent_cancelled",
    "intent_paid",
    "unknown_payment",
    "not_reversible",
    "unknown_event_type",
    "evidence_corrupt",
    "evidence_destroyed",
    "not_ready",
    "config_unavailable",
    "config_publish_failed",
    "internal",
];

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldProblem]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.meta();
        match &self {
            ApiError::Internal(cause) => error!(error = %cause, "request failed"),
            ApiError::ConfigPublish(cause) => {
                error!(error = %cause, "camera config publish failed")
            }
            _ => {}
        }
        let errors = match &self {
            ApiError::InvalidQuery(problems) | ApiError::Validation(problems) => {
                Some(problems.as_slice())
            }
            _ => None,
        };
        let problem = Problem {
            kind: format!("urn:kozomol:problem:{code}"),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            code,
            errors,
        };
        let body = serde_json::to_vec(&problem)
            .expect("a problem of strings and numbers always serializes");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unauthenticated | ApiError::InvalidCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyAttempts { retry_after_s }
            | ApiError::TooManyLookups { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { what } => ApiError::Conflict(format!("{what} already exists")),
            StoreError::EvidenceCorrupt { sha256 } => ApiError::EvidenceCorrupt { sha256 },
            StoreError::EvidenceErased { .. } => ApiError::EvidenceDestroyed,
            StoreError::NotFound { what } => ApiError::NotFound(what),
            StoreError::Invalid(why) => ApiError::Validation(vec![FieldProblem::new("body", why)]),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(store) => store.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(format!("blocking task failed: {e}"))
    }
}
