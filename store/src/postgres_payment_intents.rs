//! Payment intents, idempotency keys and the callback log on PostgreSQL. An intent's
//! row is locked (`FOR UPDATE`) by the payment that pays it, after the case's row, and
//! by its cancellation, so the two are taken one after the other.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::audit::whole_millis;
use crate::error::db_error;
use crate::payment_intents::{
    self, CallbackOutcome, CallbackRecord, IdempotencyClaim, IdempotentStart, IntentCancelled,
    IntentRefusal, IntentRow, IntentStatus, NewCallback, NewPaymentIntent, PaymentIntent,
    StoredResponse, IDEMPOTENCY_IN_FLIGHT_SECONDS, IDEMPOTENCY_KEY_HOURS,
};
use crate::payments::NewPayment;
use crate::postgres::PgStore;
use crate::{PaymentIntents, StoreError};

/// An intent's columns. A macro because `query()` takes only `&'static str`.
macro_rules! intent_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, provider, payment_code, resolution_number, case_id, amount_minor, \
             currency, status, payment_id, created_at, updated_at FROM payment_intents \
             WHERE provider = $1 AND id = $2",
            $rest
        )
    };
}

fn intent_from_row(row: &PgRow) -> Result<PaymentIntent, StoreError> {
    IntentRow {
        id: row.try_get("id")?,
        provider: row.try_get("provider")?,
        payment_code: row.try_get("payment_code")?,
        resolution_number: row.try_get("resolution_number")?,
        case_id: row.try_get("case_id")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        status: row.try_get("status")?,
        payment_id: row.try_get("payment_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    }
    .into_intent()
}

async fn locked_intent(
    conn: &mut PgConnection,
    provider: &str,
    id: &str,
) -> Result<Option<PaymentIntent>, StoreError> {
    sqlx::query(intent_select!(" FOR UPDATE"))
        .bind(provider)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(intent_from_row)
        .transpose()
}

/// Whether `payment` may pay the intent it names (its reporter's), locking the intent.
pub(crate) async fn take_intent(
    conn: &mut PgConnection,
    payment: &NewPayment,
    id: &str,
) -> Result<Result<(), IntentRefusal>, StoreError> {
    Ok(match locked_intent(conn, &payment.source, id).await? {
        None => Err(IntentRefusal::Unknown),
        Some(intent) => {
            payment_intents::intent_takes(&intent, &payment.payment_code, payment.amount)
        }
    })
}

/// The intent the ledger's payment `payment_id` paid, read only when `repeat` (a report
/// of that payment again) names an intent: nothing else asks.
pub(crate) async fn intent_paid_by(
    conn: &mut PgConnection,
    payment_id: i64,
    repeat: &NewPayment,
) -> Result<Option<String>, StoreError> {
    if repeat.intent.is_none() {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT id FROM payment_intents WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Marks the intent paid by the ledger's payment `payment_id`.
pub(crate) async fn mark_intent_paid(
    conn: &mut PgConnection,
    provider: &str,
    id: &str,
    payment_id: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE payment_intents SET status = 'succeeded', payment_id = $3, updated_at = $4 \
         WHERE provider = $1 AND id = $2",
    )
    .bind(provider)
    .bind(id)
    .bind(payment_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn callback_from_row(row: &PgRow) -> Result<CallbackRecord, StoreError> {
    Ok(CallbackRecord {
        id: row.try_get("id")?,
        provider: row.try_get("provider")?,
        received_at: row.try_get("received_at")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        signature: row.try_get("signature")?,
        body: row.try_get("body")?,
        outcome: CallbackOutcome::parse(&row.try_get::<String, _>("outcome")?)?,
        status: crate::decode::u16_of(row.try_get::<i32, _>("status")?.into(), "status")?,
        detail: row.try_get("detail")?,
    })
}

#[async_trait]
impl PaymentIntents for PgStore {
    async fn create_intent(&self, intent: &NewPaymentIntent) -> Result<PaymentIntent, StoreError> {
        payment_intents::check_intent(intent)?;
        let at = whole_millis(intent.created_at);
        sqlx::query(
            "INSERT INTO payment_intents (id, provider, payment_code, resolution_number, \
             case_id, amount_minor, currency, status, payment_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'requires_payment', NULL, $8, $8)",
        )
        .bind(&intent.id)
        .bind(&intent.provider)
        .bind(&intent.payment_code)
        .bind(&intent.resolution_number)
        .bind(intent.case_id.0)
        .bind(intent.amount.minor)
        .bind(intent.amount.currency.code())
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, || format!("payment intent {}", intent.id)))?;
        Ok(PaymentIntent {
            id: intent.id.clone(),
            provider: intent.provider.clone(),
            payment_code: intent.payment_code.clone(),
            resolution_number: intent.resolution_number.clone(),
            case_id: intent.case_id,
            amount: intent.amount,
            status: IntentStatus::RequiresPayment,
            payment_id: None,
            created_at: at,
            updated_at: at,
        })
    }

    async fn payment_intent(
        &self,
        provider: &str,
        id: &str,
    ) -> Result<Option<PaymentIntent>, StoreError> {
        sqlx::query(intent_select!(""))
            .bind(provider)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(intent_from_row)
            .transpose()
    }

    async fn cancel_intent(
        &self,
        provider: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<IntentCancelled>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(intent) = locked_intent(&mut tx, provider, id).await? else {
            return Ok(None);
        };
        let outcome = match intent.status {
            IntentStatus::Cancelled => IntentCancelled::AlreadyCancelled(intent),
            IntentStatus::Succeeded => IntentCancelled::Succeeded(intent),
            // Its payment was reversed: nothing will pay it, as if cancelled.
            IntentStatus::Reversed => IntentCancelled::AlreadyCancelled(intent),
            IntentStatus::RequiresPayment => {
                let at = whole_millis(at);
                sqlx::query(
                    "UPDATE payment_intents SET status = 'cancelled', updated_at = $3 \
                     WHERE provider = $1 AND id = $2",
                )
                .bind(provider)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                IntentCancelled::Cancelled(PaymentIntent {
                    status: IntentStatus::Cancelled,
                    updated_at: at,
                    ..intent
                })
            }
        };
        tx.commit().await?;
        Ok(Some(outcome))
    }

    async fn begin_idempotent(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<IdempotentStart, StoreError> {
        let at = whole_millis(at);
        // A key past its time is claimed again in the same statement, so two requests
        // cannot both take it.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, created_at) \
             VALUES ($1, $2, $3, NULL, NULL, $4) \
             ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
             status = NULL, body = NULL, created_at = EXCLUDED.created_at \
             WHERE idempotency_keys.created_at < $5 \
             OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < $6)",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(at)
        .bind(at - Duration::hours(IDEMPOTENCY_KEY_HOURS))
        .bind(at - Duration::seconds(IDEMPOTENCY_IN_FLIGHT_SECONDS))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if claimed == 1 {
            return Ok(IdempotentStart::Fresh(IdempotencyClaim {
                scope: scope.to_owned(),
                key: key.to_owned(),
                claimed_at: at,
            }));
        }
        let row = sqlx::query(
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // Abandoned between the two statements: the caller may send it again.
            return Ok(IdempotentStart::InFlight);
        };
        payment_intents::idempotent_start(
            fingerprint,
            row.try_get("fingerprint")?,
            row.try_get::<Option<i32>, _>("status")?.map(i64::from),
            row.try_get("body")?,
        )
    }

    async fn finish_idempotent(
        &self,
        claim: &IdempotencyClaim,
        response: &StoredResponse,
    ) -> Result<bool, StoreError> {
        let kept = sqlx::query(
            "UPDATE idempotency_keys SET status = $3, body = $4 WHERE scope = $1 AND key = $2 \
             AND created_at = $5 AND status IS NULL",
        )
        .bind(&claim.scope)
        .bind(&claim.key)
        .bind(i32::from(response.status))
        .bind(&response.body)
        .bind(claim.claimed_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(kept == 1)
    }

    async fn abandon_idempotent(&self, claim: &IdempotencyClaim) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at = $3 \
             AND status IS NULL",
        )
        .bind(&claim.scope)
        .bind(&claim.key)
        .bind(claim.claimed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_callback(&self, callback: &NewCallback) -> Result<i64, StoreError> {
        let (body, signature) = payment_intents::kept_text(callback);
        Ok(sqlx::query_scalar(
            "INSERT INTO payment_callbacks (provider, received_at, event_id, event_type, \
             signature, body, outcome, status, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&callback.provider)
        .bind(whole_millis(callback.received_at))
        .bind(&callback.event_id)
        .bind(&callback.event_type)
        .bind(signature)
        .bind(body)
        .bind(callback.outcome.as_str())
        .bind(i32::from(callback.status))
        .bind(&callback.detail)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn callbacks(
        &self,
        refused_only: bool,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<CallbackRecord>, StoreError> {
        sqlx::query(
            "SELECT id, provider, received_at, event_id, event_type, signature, body, outcome, \
             status, detail FROM payment_callbacks \
             WHERE id > $1 AND (NOT $2 OR outcome = 'refused') ORDER BY id LIMIT $3",
        )
        .bind(after_id)
        .bind(refused_only)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(callback_from_row)
        .collect()
    }
}
