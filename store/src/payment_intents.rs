//! What the REST payment API of payment providers keeps: payment intents (a provider's
//! offer to pay one fine a set amount, checked against the payment its callback
//! reports, in the ledger's transaction), idempotency keys (the first response to a
//! request, replayed when the request comes again), and the log of every callback
//! received, refused ones included.

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, Money};
use serde::Serialize;

use crate::StoreError;

/// How long an idempotency key holds its response; after that the key is new again.
pub const IDEMPOTENCY_KEY_HOURS: i64 = 24;

/// How long a key's first request may go unanswered before the key may be claimed
/// again (the process answering it stopped, or could not keep its answer).
pub const IDEMPOTENCY_IN_FLIGHT_SECONDS: i64 = 60;

/// Where an intent is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for the provider's payment.
    RequiresPayment,
    /// Paid by the payment in `payment_id`.
    Succeeded,
    /// Cancelled by the provider: no payment is taken for it.
    Cancelled,
    /// Its payment was reversed: no payment is taken for it any more.
    Reversed,
}

impl IntentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::RequiresPayment => "requires_payment",
            IntentStatus::Succeeded => "succeeded",
            IntentStatus::Cancelled => "cancelled",
            IntentStatus::Reversed => "reversed",
        }
    }

    pub(crate) fn parse(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "requires_payment" => Ok(IntentStatus::RequiresPayment),
            "succeeded" => Ok(IntentStatus::Succeeded),
            "cancelled" => Ok(IntentStatus::Cancelled),
            "reversed" => Ok(IntentStatus::Reversed),
            other => Err(crate::error::corrupt(format!("intent status `{other}`"))),
        }
    }
}

/// An intent to record; the fine is the one `payment_code` names now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPaymentIntent {
    pub id: String,
    pub provider: String,
    pub payment_code: String,
    pub resolution_number: String,
    pub case_id: CaseId,
    pub amount: Money,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub provider: String,
    pub payment_code: String,
    pub resolution_number: String,
    pub case_id: CaseId,
    pub amount: Money,
    pub status: IntentStatus,
    /// The ledger's payment that paid it.
    pub payment_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What cancelling an intent did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentCancelled {
    Cancelled(PaymentIntent),
    /// Cancelled before: nothing changed.
    AlreadyCancelled(PaymentIntent),
    /// Paid: a paid intent is not cancelled (its payment is reversed instead).
    Succeeded(PaymentIntent),
}

/// Why a payment reported against an intent was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentRefusal {
    /// The provider has no intent with this id.
    Unknown,
    /// The intent is for another fine.
    OtherFine { payment_code: String },
    /// The payment's amount is not the intent's.
    AmountDiffers { intent: Money },
    /// The provider cancelled the intent.
    Cancelled,
    /// Another payment paid the intent.
    PaidBy(i64),
}

/// The response kept for an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// One request's hold on an idempotency key: the key and the instant it was claimed.
/// A key whose request went unanswered for
/// [`IDEMPOTENCY_IN_FLIGHT_SECONDS`] is claimed again at a later instant, so the slow
/// first request, finishing after all, can neither keep its response over the retry's
/// nor free the retry's claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub scope: String,
    pub key: String,
    /// Whole milliseconds, as stored.
    pub claimed_at: DateTime<Utc>,
}

/// What an idempotency key says about a request that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotentStart {
    /// The key is new: the request is answered, and its response kept under this
    /// claim ([`crate::PaymentIntents::finish_idempotent`]).
    Fresh(IdempotencyClaim),
    /// The same request was answered before: this is its response.
    Replay(StoredResponse),
    /// The key was used for another request (other parameters).
    OtherRequest,
    /// The first request with the key is still being answered.
    InFlight,
}

/// What became of a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// It changed the ledger.
    Applied,
    /// It reported what the ledger already held.
    Repeat,
    /// It was not taken: unsigned, stale, malformed, or the payment was refused.
    Refused,
}

impl CallbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackOutcome::Applied => "applied",
            CallbackOutcome::Repeat => "repeat",
            CallbackOutcome::Refused => "refused",
        }
    }

    pub(crate) fn parse(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "applied" => Ok(CallbackOutcome::Applied),
            "repeat" => Ok(CallbackOutcome::Repeat),
            "refused" => Ok(CallbackOutcome::Refused),
            other => Err(crate::error::corrupt(format!("callback outcome `{other}`"))),
        }
    }
}

/// How much of a callback's body and signature header is kept.
pub const CALLBACK_BODY_LIMIT: usize = 16 * 1024;
const SIGNATURE_LIMIT: usize = 1024;

/// A callback as received and answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCallback {
    pub provider: String,
    pub received_at: DateTime<Utc>,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// The signature header as sent (empty when there was none).
    pub signature: String,
    pub body: Vec<u8>,
    pub outcome: CallbackOutcome,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// Why, in words.
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallbackRecord {
    pub id: i64,
    pub provider: String,
    pub received_at: DateTime<Utc>,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub signature: String,
    /// The body as text (bytes that are not UTF-8 replaced), at most
    /// [`CALLBACK_BODY_LIMIT`] bytes of it.
    pub body: String,
    pub outcome: CallbackOutcome,
    pub status: u16,
    pub detail: String,
}

/// The body and signature of `callback` as kept: clipped, on a character boundary.
pub(crate) fn kept_text(callback: &NewCallback) -> (String, String) {
    (
        clip(
            &String::from_utf8_lossy(&callback.body),
            CALLBACK_BODY_LIMIT,
        ),
        clip(&callback.signature, SIGNATURE_LIMIT),
    )
}

fn clip(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

pub(crate) fn check_intent(intent: &NewPaymentIntent) -> Result<(), StoreError> {
    if intent.id.trim().is_empty() || intent.provider.trim().is_empty() {
        return Err(StoreError::Invalid(
            "an intent needs its id and provider".into(),
        ));
    }
    if intent.amount.minor <= 0 {
        return Err(StoreError::Invalid(format!(
            "an intent's amount must be above zero, not {}",
            intent.amount.minor
        )));
    }
    Ok(())
}

/// Whether a payment of `amount` for `payment_code` may pay `intent`.
pub(crate) fn intent_takes(
    intent: &PaymentIntent,
    payment_code: &str,
    amount: Money,
) -> Result<(), IntentRefusal> {
    if intent.payment_code != payment_code {
        return Err(IntentRefusal::OtherFine {
            payment_code: intent.payment_code.clone(),
        });
    }
    match intent.status {
        IntentStatus::Cancelled => return Err(IntentRefusal::Cancelled),
        IntentStatus::Succeeded | IntentStatus::Reversed => {
            return Err(IntentRefusal::PaidBy(intent.payment_id.unwrap_or_default()))
        }
        IntentStatus::RequiresPayment => {}
    }
    if intent.amount != amount {
        return Err(IntentRefusal::AmountDiffers {
            intent: intent.amount,
        });
    }
    Ok(())
}

/// A row of `payment_intents` as both backends read it.
pub(crate) struct IntentRow {
    pub id: String,
    pub provider: String,
    pub payment_code: String,
    pub resolution_number: String,
    pub case_id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub payment_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl IntentRow {
    pub(crate) fn into_intent(self) -> Result<PaymentIntent, StoreError> {
        let currency = self
            .currency
            .parse()
            .map_err(|_| crate::error::corrupt(format!("currency `{}`", self.currency)))?;
        Ok(PaymentIntent {
            id: self.id,
            provider: self.provider,
            payment_code: self.payment_code,
            resolution_number: self.resolution_number,
            case_id: CaseId(self.case_id),
            amount: Money::new(self.amount_minor, currency),
            status: IntentStatus::parse(&self.status)?,
            payment_id: self.payment_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// What a key already held says about a request with `fingerprint`.
pub(crate) fn idempotent_start(
    fingerprint: &str,
    held: String,
    status: Option<i64>,
    body: Option<String>,
) -> Result<IdempotentStart, StoreError> {
    if held != fingerprint {
        return Ok(IdempotentStart::OtherRequest);
    }
    Ok(match (status, body) {
        (Some(status), Some(body)) => IdempotentStart::Replay(StoredResponse {
            status: crate::decode::u16_of(status, "status")?,
            body,
        }),
        _ => IdempotentStart::InFlight,
    })
}

#[cfg(test)]
mod tests {
    use kozomol_core::Currency;

    use super::*;

    fn intent(status: IntentStatus) -> PaymentIntent {
        PaymentIntent {
            id: "pi_1".into(),
            provider: "bank".into(),
            payment_code: "111".into(),
            resolution_number: "R1".into(),
            case_id: CaseId(1),
            amount: Money::new(250_000, Currency::KGS),
            status,
            payment_id: (status == IntentStatus::Succeeded).then_some(9),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_intent_takes_only_its_own_payment() {
        let som = |minor| Money::new(minor, Currency::KGS);
        let cases = [
            (IntentStatus::RequiresPayment, "111", som(250_000), Ok(())),
            (
                IntentStatus::RequiresPayment,
                "222",
                som(250_000),
                Err(IntentRefusal::OtherFine {
                    payment_code: "111".into(),
                }),
            ),
            (
                IntentStatus::RequiresPayment,
                "111",
                som(249_999),
                Err(IntentRefusal::AmountDiffers {
                    intent: som(250_000),
                }),
            ),
            (
                IntentStatus::RequiresPayment,
                "111",
                Money::new(250_000, Currency::KZT),
                Err(IntentRefusal::AmountDiffers {
                    intent: som(250_000),
                }),
            ),
            (
                IntentStatus::Cancelled,
                "111",
                som(250_000),
                Err(IntentRefusal::Cancelled),
            ),
            (
                IntentStatus::Succeeded,
                "111",
                som(250_000),
                Err(IntentRefusal::PaidBy(9)),
            ),
        ];
        for (status, code, amount, want) in cases {
            assert_eq!(
                intent_takes(&intent(status), code, amount),
                want,
                "{status:?} {code} {amount:?}"
            );
        }
    }

    #[test]
    fn kept_text_is_clipped_on_a_character_boundary() {
        let callback = NewCallback {
            provider: "bank".into(),
            received_at: DateTime::UNIX_EPOCH,
            event_id: None,
            event_type: None,
            signature: "t=1,v1=".to_owned() + &"a".repeat(2000),
            body: "ж".repeat(CALLBACK_BODY_LIMIT).into_bytes(),
            outcome: CallbackOutcome::Refused,
            status: 401,
            detail: String::new(),
        };
        let (body, signature) = kept_text(&callback);
        assert_eq!(body.len(), CALLBACK_BODY_LIMIT);
        assert!(body.chars().all(|c| c == 'ж'));
        assert_eq!(signature.len(), SIGNATURE_LIMIT);
    }
}
