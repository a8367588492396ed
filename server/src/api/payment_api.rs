//! The REST payment API of payment providers, under `/api/v1/providers/{provider}/`.
//! Every request is signed as the provider's callbacks are (`Kozomol-Signature:
//! t=<unix>,v1=<hex>`, HMAC-SHA256 over `"{t}.{body}"` with a secret the city shares with
//! the provider, two during a rotation; 300 s either way); a POST that makes something
//! takes Stripe's `Idempotency-Key`, whose first response is kept and replayed.
//!
//! A provider makes a payment intent for a fine's payment code (by default the amount
//! due today, the discounted one within its window; or a part of it, or more), takes the
//! payer's money, and reports it by callback: `payment.succeeded`, or
//! `payment.reversed` when it takes it back. The ledger keys a payment by the
//! provider's payment id, so a callback sent again, or ten times at once, is applied
//! once; every callback is recorded with its answer, refused ones too.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use kozomol_core::{Currency, Money};
use kozomol_payments::{verify_signature, PaymentCode, SignatureError, DEFAULT_TOLERANCE_S};
use kozomol_store::{
    CallbackOutcome, CallbackRecord, IdempotentStart, IntentCancelled, IntentRefusal, NewCallback,
    NewPayment, NewPaymentIntent, PaymentChannel, PaymentIntent, PaymentPosted, PaymentRecord,
    PaymentRefusal, PaymentReversal, PaymentReversed, StoredResponse,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::{Authorized, FinanceReaders};
use super::paging::{after_page, AfterPage, AfterQuery};
use super::{ApiError, ApiState, FieldProblem};
use crate::settings::PaymentProvider;

/// The header every provider request and callback is signed in.
pub const SIGNATURE_HEADER: &str = "kozomol-signature";
/// Stripe's header: the same key again gets the first response.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Set on a response replayed for an idempotency key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Why a payment or an intent was refused: each with its status and stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentProblem {
    UnknownPaymentCode,
    CaseClosed,
    AlreadyPaid,
    NotPayable,
    PaymentIdReused,
    InvalidMoney,
    UnknownIntent,
    IntentForOtherFine,
    AmountMismatch,
    IntentCancelled,
    IntentPaid,
    UnknownPayment,
    NotReversible,
    UnknownEventType,
}

impl PaymentProblem {
    pub const ALL: [PaymentProblem; 14] = [
        PaymentProblem::UnknownPaymentCode,
        PaymentProblem::CaseClosed,
        PaymentProblem::AlreadyPaid,
        PaymentProblem::NotPayable,
        PaymentProblem::PaymentIdReused,
        PaymentProblem::InvalidMoney,
        PaymentProblem::UnknownIntent,
        PaymentProblem::IntentForOtherFine,
        PaymentProblem::AmountMismatch,
        PaymentProblem::IntentCancelled,
        PaymentProblem::IntentPaid,
        PaymentProblem::UnknownPayment,
        PaymentProblem::NotReversible,
        PaymentProblem::UnknownEventType,
    ];

    pub(crate) fn meta(self) -> (StatusCode, &'static str, &'static str) {
        use PaymentProblem::*;
        match self {
            UnknownPaymentCode => (
                StatusCode::NOT_FOUND,
                "unknown_payment_code",
                "No resolution has this payment code",
            ),
            CaseClosed => (
                StatusCode::CONFLICT,
                "case_closed",
                "The resolution no longer stands",
            ),
            AlreadyPaid => (StatusCode::CONFLICT, "already_paid", "The fine is paid"),
            NotPayable => (
                StatusCode::CONFLICT,
                "not_payable",
                "The fine takes no payment now",
            ),
            PaymentIdReused => (
                StatusCode::CONFLICT,
                "payment_id_reused",
                "The payment id was used for another payment",
            ),
            InvalidMoney => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_money",
                "The money cannot pay this fine",
            ),
            UnknownIntent => (
                StatusCode::NOT_FOUND,
                "unknown_intent",
                "No such payment intent",
            ),
            IntentForOtherFine => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "intent_for_other_fine",
                "The intent is for another fine",
            ),
            AmountMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "amount_mismatch",
                "The amount is not the intent's",
            ),
            IntentCancelled => (
                StatusCode::CONFLICT,
                "intent_cancelled",
                "The intent was cancelled",
            ),
            IntentPaid => (StatusCode::CONFLICT, "intent_paid", "The intent was paid"),
            UnknownPayment => (
                StatusCode::NOT_FOUND,
                "unknown_payment",
                "The provider has no such payment of this fine",
            ),
            NotReversible => (
                StatusCode::CONFLICT,
                "not_reversible",
                "The payment cannot be taken back now",
            ),
            UnknownEventType => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_event_type",
                "Not an event type kozomol takes",
            ),
        }
    }
}

impl From<PaymentRefusal> for ApiError {
    fn from(refusal: PaymentRefusal) -> Self {
        let (problem, detail) = match refusal {
            PaymentRefusal::UnknownCode => (
                PaymentProblem::UnknownPaymentCode,
                "no resolution has this payment code".to_owned(),
            ),
            PaymentRefusal::Closed(state) => (
                PaymentProblem::CaseClosed,
                format!("the case is {state}: its resolution no longer stands; refund the payer"),
            ),
            // Refused, not recorded: money the provider took for it is the payer's.
            PaymentRefusal::AlreadyPaid => (
                PaymentProblem::AlreadyPaid,
                "the fine is paid: nothing is owed; refund the payer".to_owned(),
            ),
            PaymentRefusal::NotPayable(state) => (
                PaymentProblem::NotPayable,
                format!("the case is {state} and takes no payment now; refund the payer"),
            ),
            // The API takes part and over payments: these come only from exact channels.
            PaymentRefusal::Overpaid { outstanding }
            | PaymentRefusal::Underpaid { outstanding } => (
                PaymentProblem::InvalidMoney,
                format!("exactly {} minor units are due", outstanding.minor),
            ),
            PaymentRefusal::IdReused(earlier) => (
                PaymentProblem::PaymentIdReused,
                format!(
                    "payment id `{}` was used for {} minor units of resolution {}",
                    earlier.external_id, earlier.amount.minor, earlier.resolution_number
                ),
            ),
            PaymentRefusal::Invalid(why) => (PaymentProblem::InvalidMoney, why),
            PaymentRefusal::Intent(refusal) => match refusal {
                IntentRefusal::Unknown => (
                    PaymentProblem::UnknownIntent,
                    "the provider has no intent with this id".to_owned(),
                ),
                IntentRefusal::OtherFine { payment_code } => (
                    PaymentProblem::IntentForOtherFine,
                    format!("the intent is for payment code {payment_code}"),
                ),
                IntentRefusal::AmountDiffers { intent } => (
                    PaymentProblem::AmountMismatch,
                    format!(
                        "the intent is for {} {}",
                        intent.minor,
                        intent.currency.code()
                    ),
                ),
                IntentRefusal::Cancelled => (
                    PaymentProblem::IntentCancelled,
                    "the intent was cancelled; refund the payer".to_owned(),
                ),
                IntentRefusal::PaidBy(id) => (
                    PaymentProblem::IntentPaid,
                    format!("the intent was paid by payment {id}"),
                ),
            },
        };
        ApiError::Payment { problem, detail }
    }
}

/// What a provider's request signs besides its time: its method, path with query,
/// idempotency key and body, one per line but the body, so that a signature made for one
/// request is good for no other route, key or body. (A callback signs its body alone.)
pub fn request_signing_payload(
    method: &str,
    path_and_query: &str,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut payload = format!(
        "{method} {path_and_query}\n{}\n",
        idempotency_key.unwrap_or("")
    )
    .into_bytes();
    payload.extend_from_slice(body);
    payload
}

/// A provider's request, as its signature covers it.
fn request_payload(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok());
    request_signing_payload(method.as_str(), path, key, body)
}

/// The provider `id`, if `signed` (what the signature covers) is signed by one of its
/// secrets now.
fn signed_by<'a>(
    providers: &'a [PaymentProvider],
    id: &str,
    headers: &HeaderMap,
    signed: &[u8],
    now: DateTime<Utc>,
) -> Result<&'a PaymentProvider, ApiError> {
    // An unknown provider is answered as a wrong signature: no list of providers leaks.
    let provider = providers
        .iter()
        .find(|p| p.id == id)
        .ok_or(ApiError::Signature(SignatureError::NoMatch))?;
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Signature(SignatureError::Malformed(
                "no Kozomol-Signature header".into(),
            ))
        })?;
    let secrets: Vec<&[u8]> = provider.secrets.iter().map(|s| s.as_bytes()).collect();
    verify_signature(
        header,
        signed,
        &secrets,
        now.timestamp(),
        DEFAULT_TOLERANCE_S,
    )
    .map_err(ApiError::Signature)?;
    Ok(provider)
}

/// A response as JSON with its status, as kept for an idempotency key.
struct Answer {
    status: StatusCode,
    body: String,
}

impl Answer {
    fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Answer, ApiError> {
        Ok(Answer {
            status,
            body: serde_json::to_string(value)
                .map_err(|e| ApiError::Internal(format!("a response does not serialize: {e}")))?,
        })
    }

    fn into_response(self, replayed: bool) -> Response {
        let content_type = if self.status.is_success() {
            "application/json"
        } else {
            "application/problem+json"
        };
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if replayed {
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

/// An error as the answer kept for an idempotency key: the problem document it renders.
async fn answer_of_error(error: ApiError) -> Answer {
    let response = error.into_response();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Answer { status, body }
}

/// The idempotency key of a request, if it has a valid one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
        })?;
    Ok(Some(key.to_owned()))
}

/// Answers a provider's request once per idempotency key: the first answer (anything
/// but a server error) is kept, the same request with the key again gets it back, the
/// key with other parameters or while the first is still being answered is refused.
async fn once_per_key<F>(
    state: &ApiState,
    provider: &PaymentProvider,
    key: Option<String>,
    route: &str,
    body: &[u8],
    answer: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<Answer, ApiError>>,
{
    let Some(key) = key else {
        return Ok(answer.await?.into_response(false));
    };
    let fingerprint = {
        let mut hash = Sha256::new();
        hash.update(route.as_bytes());
        hash.update(b"\n");
        hash.update(body);
        hex::encode(hash.finalize())
    };
    let store = &state.app.store;
    let claim = match store
        .begin_idempotent(&provider.id, &key, &fingerprint, Utc::now())
        .await?
    {
        IdempotentStart::Fresh(claim) => claim,
        IdempotentStart::Replay(kept) => {
            let status = StatusCode::from_u16(kept.status)
                .map_err(|_| ApiError::Internal(format!("kept status {}", kept.status)))?;
            return Ok(Answer {
                status,
                body: kept.body,
            }
            .into_response(true));
        }
        IdempotentStart::OtherRequest => return Err(ApiError::IdempotencyKeyReused),
        IdempotentStart::InFlight => return Err(ApiError::IdempotencyKeyInUse),
    };
    let answered = match answer.await {
        Ok(answered) => answered,
        Err(error) => answer_of_error(error).await,
    };
    if answered.status.is_server_error() {
        // Not kept: the provider may send the request again.
        store.abandon_idempotent(&claim).await?;
    } else {
        let kept = store
            .finish_idempotent(
                &claim,
                &StoredResponse {
                    status: answered.status.as_u16(),
                    body: answered.body.clone(),
                },
            )
            .await?;
        if !kept {
            // Answered after the in-flight time: a retry holds the key now, and its
            // response is the one kept.
            tracing::warn!(provider = %provider.id, key = %key, "a slow request's response was not kept: its key was claimed again");
        }
    }
    Ok(answered.into_response(false))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentRequest {
    payment_code: String,
    /// Default: what is due today (the discounted amount within its window).
    amount_minor: Option<i64>,
    currency: Option<String>,
}

/// An intent as the API shows it.
#[derive(Debug, Serialize)]
pub struct IntentView {
    id: String,
    status: kozomol_store::IntentStatus,
    payment_code: String,
    resolution_number: String,
    amount_minor: i64,
    currency: &'static str,
    payment_id: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// What the fine still asks for today, when the intent was made or shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    outstanding_minor: Option<i64>,
}

impl IntentView {
    fn of(intent: PaymentIntent, outstanding: Option<Money>) -> IntentView {
        IntentView {
            id: intent.id,
            status: intent.status,
            payment_code: intent.payment_code,
            resolution_number: intent.resolution_number,
            amount_minor: intent.amount.minor,
            currency: intent.amount.currency.code(),
            payment_id: intent.payment_id,
            created_at: intent.created_at,
            updated_at: intent.updated_at,
            outstanding_minor: outstanding.map(|m| m.minor),
        }
    }
}

fn payment_code_of(text: &str) -> Result<PaymentCode, ApiError> {
    PaymentCode::parse(text.trim())
        .map_err(|e| ApiError::Validation(vec![FieldProblem::new("payment_code", e.to_string())]))
}

fn currency_of(field: &str, text: &str) -> Result<Currency, ApiError> {
    text.parse().map_err(|_| {
        ApiError::Validation(vec![FieldProblem::new(
            field,
            format!("`{text}` is not a currency kozomol takes"),
        )])
    })
}

fn json_of<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::Validation(vec![FieldProblem::new("body", e.to_string())])
        } else {
            ApiError::BadRequest(format!("the body is not JSON: {e}"))
        }
    })
}

/// `POST /api/v1/providers/{provider}/payment-intents` (an `Idempotency-Key` required).
pub async fn create_intent(
    State(state): State<ApiState>,
    Path(provider): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let provider = signed_by(
        &state.app.payment_providers,
        &provider,
        &headers,
        &request_payload(&method, &uri, &headers, &body),
        now,
    )?;
    let key = idempotency_key(&headers)?.ok_or_else(|| {
        ApiError::BadRequest("a payment intent is made with an Idempotency-Key".into())
    })?;
    once_per_key(
        &state,
        provider,
        Some(key),
        "POST payment-intents",
        &body,
        async {
            let request: IntentRequest = json_of(&body)?;
            let code = payment_code_of(&request.payment_code)?;
            let quote = state
                .app
                .store
                .payment_quote(&code.to_string(), now)
                .await??;
            let currency = quote.outstanding.currency;
            if let Some(given) = &request.currency {
                let given = currency_of("currency", given)?;
                if given != currency {
                    return Err(PaymentRefusal::Invalid(format!(
                        "the fine is in {}, not {}",
                        currency.code(),
                        given.code()
                    ))
                    .into());
                }
            }
            let amount = Money::new(
                request.amount_minor.unwrap_or(quote.outstanding.minor),
                currency,
            );
            if amount.minor <= 0 || amount.minor > kozomol_payments::MAX_PAYMENT_MINOR {
                return Err(ApiError::Validation(vec![FieldProblem::new(
                    "amount_minor",
                    format!(
                        "must be above zero and at most {}",
                        kozomol_payments::MAX_PAYMENT_MINOR
                    ),
                )]));
            }
            let intent = state
                .app
                .store
                .create_intent(&NewPaymentIntent {
                    id: format!("pi_{}", uuid::Uuid::now_v7().simple()),
                    provider: provider.id.clone(),
                    payment_code: code.to_string(),
                    resolution_number: quote.resolution_number.clone(),
                    case_id: quote.case_id,
                    amount,
                    created_at: now,
                })
                .await?;
            Answer::json(
                StatusCode::CREATED,
                &IntentView::of(intent, Some(quote.outstanding)),
            )
        },
    )
    .await
}

/// `GET /api/v1/providers/{provider}/payment-intents/{id}`.
pub async fn show_intent(
    State(state): State<ApiState>,
    Path((provider, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IntentView>, ApiError> {
    let now = Utc::now();
    let provider = signed_by(
        &state.app.payment_providers,
        &provider,
        &headers,
        &request_payload(&method, &uri, &headers, &body),
        now,
    )?;
    let intent = state
        .app
        .store
        .payment_intent(&provider.id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("payment intent {id}")))?;
    let outstanding = match state
        .app
        .store
        .payment_quote(&intent.payment_code, now)
        .await?
    {
        Ok(quote) => Some(quote.outstanding),
        Err(PaymentRefusal::AlreadyPaid) => Some(Money::new(0, intent.amount.currency)),
        // Closed or under appeal: it asks for nothing now, but is not settled either.
        Err(_) => None,
    };
    Ok(Json(IntentView::of(intent, outstanding)))
}

/// `POST /api/v1/providers/{provider}/payment-intents/{id}/cancel` (an
/// `Idempotency-Key` taken).
pub async fn cancel_intent(
    State(state): State<ApiState>,
    Path((provider, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let provider = signed_by(
        &state.app.payment_providers,
        &provider,
        &headers,
        &request_payload(&method, &uri, &headers, &body),
        now,
    )?;
    let key = idempotency_key(&headers)?;
    let route = format!("POST payment-intents/{id}/cancel");
    once_per_key(&state, provider, key, &route, &body, async {
        match state
            .app
            .store
            .cancel_intent(&provider.id, &id, now)
            .await?
        {
            None => Err(ApiError::NotFound(format!("payment intent {id}"))),
            Some(IntentCancelled::Cancelled(intent))
            | Some(IntentCancelled::AlreadyCancelled(intent)) => {
                Answer::json(StatusCode::OK, &IntentView::of(intent, None))
            }
            Some(IntentCancelled::Succeeded(intent)) => Err(ApiError::Payment {
                problem: PaymentProblem::IntentPaid,
                detail: format!(
                    "the intent was paid by payment {}; reverse the payment instead",
                    intent.payment_id.unwrap_or_default()
                ),
            }),
        }
    })
    .await
}

/// A provider's callback.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Callback {
    /// The provider's id of the event.
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: CallbackPayment,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackPayment {
    /// The provider's id of the payment: the same id again is the same payment.
    payment_id: String,
    payment_code: String,
    intent: Option<String>,
    amount_minor: i64,
    currency: String,
    /// When the payer paid: it decides the discount.
    paid_at: DateTime<Utc>,
    /// Why a payment is taken back.
    reason: Option<String>,
}

/// How much of a callback no provider signed is kept in the log.
const UNSIGNED_BODY_KEPT: usize = 1024;

/// What a callback did.
#[derive(Debug, Serialize)]
struct CallbackAnswer {
    outcome: CallbackOutcome,
    payment: PaymentRecord,
}

/// How far in the future a payer's time may be (clocks differ); beyond, it is refused.
const PAID_AT_LEEWAY_S: i64 = DEFAULT_TOLERANCE_S;

/// `POST /api/v1/providers/{provider}/callbacks`: `payment.succeeded` and
/// `payment.reversed`. Every callback is recorded with its answer.
pub async fn callback(
    State(state): State<ApiState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at = Utc::now();
    let mut event_id = None;
    let mut event_type = None;
    let mut signed = false;
    let answered = async {
        let provider = signed_by(
            &state.app.payment_providers,
            &provider,
            &headers,
            &body,
            received_at,
        )?;
        signed = true;
        let callback: Callback = json_of(&body)?;
        event_id = Some(callback.id.clone());
        event_type = Some(callback.kind.clone());
        apply_callback(&state, provider, callback, received_at).await
    }
    .await;
    let (outcome, answer) = match answered {
        Ok((outcome, answer)) => (outcome, answer),
        Err(error) => (CallbackOutcome::Refused, answer_of_error(error).await),
    };
    let detail = if answer.status.is_success() {
        String::new()
    } else {
        serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|p| p["detail"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let recorded = state
        .app
        .store
        .record_callback(&NewCallback {
            provider,
            received_at,
            event_id,
            event_type,
            signature,
            // What no provider signed is kept short: anyone can send it.
            body: if signed {
                body.to_vec()
            } else {
                body[..body.len().min(UNSIGNED_BODY_KEPT)].to_vec()
            },
            outcome,
            status: answer.status.as_u16(),
            detail,
        })
        .await;
    match recorded {
        Ok(_) => answer.into_response(false),
        // Answered as a failure, so the provider sends it again; a payment it applied is
        // then found and recorded as a repeat.
        Err(e) => {
            ApiError::Internal(format!("a callback could not be recorded: {e}")).into_response()
        }
    }
}

async fn apply_callback(
    state: &ApiState,
    provider: &PaymentProvider,
    callback: Callback,
    received_at: DateTime<Utc>,
) -> Result<(CallbackOutcome, Answer), ApiError> {
    let payment = callback.data;
    let code = payment_code_of(&payment.payment_code)?;
    let amount = Money::new(
        payment.amount_minor,
        currency_of("data.currency", &payment.currency)?,
    );
    let mut problems = Vec::new();
    if payment.payment_id.trim().is_empty() || payment.payment_id.len() > 200 {
        problems.push(FieldProblem::new("data.payment_id", "1 to 200 characters"));
    }
    if amount.minor <= 0 || amount.minor > kozomol_payments::MAX_PAYMENT_MINOR {
        problems.push(FieldProblem::new(
            "data.amount_minor",
            format!(
                "must be above zero and at most {}",
                kozomol_payments::MAX_PAYMENT_MINOR
            ),
        ));
    }
    if (payment.paid_at - received_at).num_seconds() > PAID_AT_LEEWAY_S {
        problems.push(FieldProblem::new(
            "data.paid_at",
            "is in the future: a payment is reported after it is made",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let by = format!("provider:{}", provider.id);
    match callback.kind.as_str() {
        "payment.succeeded" => {
            let posted = state
                .app
                .store
                .post_payment(&NewPayment {
                    payment_code: code.to_string(),
                    channel: PaymentChannel::Api,
                    source: provider.id.clone(),
                    external_id: payment.payment_id,
                    amount,
                    paid_at: payment.paid_at,
                    exact_only: false,
                    intent: payment.intent,
                    posted_by: by,
                })
                .await?;
            let (outcome, record) = match posted {
                PaymentPosted::Applied(record) => (CallbackOutcome::Applied, record),
                PaymentPosted::AlreadyPosted(record) => (CallbackOutcome::Repeat, record),
                PaymentPosted::Refused(refusal) => return Err(refusal.into()),
            };
            Ok((
                outcome,
                Answer::json(
                    StatusCode::OK,
                    &CallbackAnswer {
                        outcome,
                        payment: record,
                    },
                )?,
            ))
        }
        "payment.reversed" => {
            let reversed = state
                .app
                .store
                .reverse_payment(&PaymentReversal {
                    payment_code: code.to_string(),
                    channel: PaymentChannel::Api,
                    source: provider.id.clone(),
                    external_id: Some(payment.payment_id),
                    amount: Some(amount),
                    paid_at: None,
                    // The provider's payment id names the payment itself.
                    reversal_id: None,
                    reason: payment
                        .reason
                        .filter(|r| !r.trim().is_empty())
                        .unwrap_or_else(|| format!("reversed by {}", provider.id)),
                    reversed_by: by,
                    restart_clock: kozomol_fines::clocks::restart_clock,
                    money_left: false,
                })
                .await?;
            let (outcome, record) = match reversed {
                PaymentReversed::Reversed { payment, .. } => (CallbackOutcome::Applied, payment),
                PaymentReversed::AlreadyReversed(payment) => (CallbackOutcome::Repeat, payment),
                PaymentReversed::UnknownCode => return Err(PaymentRefusal::UnknownCode.into()),
                PaymentReversed::NoPayment => {
                    return Err(ApiError::Payment {
                        problem: PaymentProblem::UnknownPayment,
                        detail: "no payment of this fine by the provider has this id and amount"
                            .into(),
                    })
                }
                PaymentReversed::NotReversible(state) => {
                    return Err(ApiError::Payment {
                        problem: PaymentProblem::NotReversible,
                        detail: format!(
                            "the case is {state}: its money is returned by a refund, not a reversal"
                        ),
                    })
                }
            };
            Ok((
                outcome,
                Answer::json(
                    StatusCode::OK,
                    &CallbackAnswer {
                        outcome,
                        payment: record,
                    },
                )?,
            ))
        }
        other => Err(ApiError::Payment {
            problem: PaymentProblem::UnknownEventType,
            detail: format!("`{other}`: kozomol takes payment.succeeded and payment.reversed"),
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    /// Only the refused ones.
    refused: Option<bool>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/payment-callbacks?refused=true&after=ID&limit=N`: what providers sent.
pub async fn callbacks(
    _caller: Authorized<FinanceReaders>,
    State(state): State<ApiState>,
    Query(query): Query<CallbackQuery>,
) -> Result<Json<AfterPage<CallbackRecord>>, ApiError> {
    let (after, limit) = AfterQuery {
        after: query.after,
        limit: query.limit,
    }
    .bounds()?;
    let items = state
        .app
        .store
        .callbacks(query.refused.unwrap_or(false), after, limit)
        .await?;
    Ok(Json(after_page(items, limit, |c| c.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payment_problem_is_a_documented_code() {
        for problem in PaymentProblem::ALL {
            let (status, code, _) = problem.meta();
            assert!(super::super::PROBLEM_CODES.contains(&code), "{code}");
            assert!(status.is_client_error(), "{code}");
        }
    }
}
