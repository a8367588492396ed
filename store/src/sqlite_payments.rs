//! The payments ledger on SQLite: a payment is decided and written with the case's move
//! and its audit row in one `BEGIN IMMEDIATE` transaction, which also serializes two
//! reports of one fine.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, Money};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::audit::{now_millis, whole_millis};
use crate::payments::{
    self, AppealGist, NewPayment, PayerView, PayerViewRows, PaymentChannel, PaymentPosted,
    PaymentQuote, PaymentRecord, PaymentRefusal, PaymentReversal, PaymentReversed, Standing,
    StandingRow, ViewPayment, PAYMENT_POSTED, PAYMENT_REVERSED,
};
use crate::recognition::audit_row;
use crate::sqlite::{ms, SqliteStore};
use crate::sqlite_appeals::{clock_of, move_case, restart_clock};
use crate::sqlite_recognition::insert_audit;
use crate::sqlite_stages::resolution_from_row;
use crate::{appeals, reconciliation};
use crate::{decode, PaymentLedger, StoreError};

/// A payment's columns. A macro because `query()` takes only `&'static str`.
macro_rules! payment_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, resolution_number, case_id, channel, source, external_id, amount_minor, \
             currency, paid_at, posted_at, posted_by, from_state, to_state, excess_minor, \
             reversed_at FROM payments ",
            $rest
        )
    };
}

pub(crate) fn payment_from_row(row: &SqliteRow) -> Result<PaymentRecord, StoreError> {
    let currency: String = row.try_get("currency")?;
    Ok(PaymentRecord {
        id: row.try_get("id")?,
        resolution_number: row.try_get("resolution_number")?,
        case_id: CaseId(row.try_get("case_id")?),
        channel: PaymentChannel::parse(&row.try_get::<String, _>("channel")?)?,
        source: row.try_get("source")?,
        external_id: row.try_get("external_id")?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            currency
                .parse()
                .map_err(|_| crate::error::corrupt(format!("currency `{currency}`")))?,
        ),
        paid_at: decode::millis(row.try_get("paid_at")?)?,
        posted_at: decode::millis(row.try_get("posted_at")?)?,
        posted_by: row.try_get("posted_by")?,
        from_state: decode::state(&row.try_get::<String, _>("from_state")?)?,
        to_state: decode::state(&row.try_get::<String, _>("to_state")?)?,
        excess_minor: row.try_get("excess_minor")?,
        reversed_at: decode::opt_millis(row.try_get("reversed_at")?)?,
    })
}

/// The fine with `code` as it stands, or `None` if no resolution has the code.
pub(crate) async fn standing(
    tx: &mut SqliteConnection,
    code: &str,
) -> Result<Option<Standing>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT r.number, r.case_id, r.jurisdiction, r.amount_minor, r.discounted_minor, \
         r.currency, s.state, c.discount_until, c.case_id IS NOT NULL AS dated, \
         (SELECT MIN(a.filed_at) FROM appeals a WHERE a.case_id = r.case_id) AS appealed_at \
         FROM resolutions r JOIN cases s ON s.id = r.case_id \
         LEFT JOIN case_clocks c ON c.case_id = r.case_id WHERE r.payment_code = ?",
    )
    .bind(code)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let row = standing_row(&row)?;
    let paid = sqlx::query(
        "SELECT amount_minor, paid_at, channel FROM payments \
             WHERE resolution_number = ? AND reversed_at IS NULL",
    )
    .bind(&row.resolution_number)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| {
        Ok::<_, StoreError>((
            row.try_get::<i64, _>("amount_minor")?,
            decode::millis(row.try_get("paid_at")?)?,
            PaymentChannel::parse(&row.try_get::<String, _>("channel")?)?,
        ))
    })
    .collect::<Result<Vec<_>, _>>()?;
    payments::standing_of(row, &paid).map(Some)
}

/// A fine's standing columns (`number` … `appealed_at`, as `standing` selects them).
fn standing_row(row: &SqliteRow) -> Result<StandingRow, StoreError> {
    Ok(StandingRow {
        resolution_number: row.try_get("number")?,
        case_id: CaseId(row.try_get("case_id")?),
        jurisdiction: row.try_get("jurisdiction")?,
        state: row.try_get("state")?,
        amount_minor: row.try_get("amount_minor")?,
        discounted_minor: row.try_get("discounted_minor")?,
        currency: row.try_get("currency")?,
        discount_until: row.try_get("discount_until")?,
        dated: row.try_get::<i64, _>("dated")? != 0,
        appealed_at: decode::opt_millis(row.try_get("appealed_at")?)?,
    })
}

/// Posts `payment` to the fine `standing` describes, in the caller's `BEGIN IMMEDIATE`
/// transaction (which the caller commits).
pub(crate) async fn post_locked(
    tx: &mut SqliteConnection,
    standing: &Standing,
    payment: &NewPayment,
) -> Result<PaymentPosted, StoreError> {
    if let Some(earlier) = earlier_report(&mut *tx, payment).await? {
        let paid_intent =
            crate::sqlite_payment_intents::intent_paid_by(&mut *tx, earlier.id, payment).await?;
        return Ok(payments::repeat(
            earlier,
            paid_intent,
            payment,
            &standing.resolution_number,
        ));
    }
    if let Some(intent) = &payment.intent {
        if let Err(refusal) =
            crate::sqlite_payment_intents::take_intent(&mut *tx, payment, intent).await?
        {
            return Ok(PaymentPosted::Refused(PaymentRefusal::Intent(refusal)));
        }
    }
    // Money a statement booked before the bank reported it: that payment.
    if reconciliation::REPORTING.contains(&payment.channel) {
        if let Some(booked) = booked_twin(&mut *tx, standing, payment).await? {
            let now = now_millis();
            sqlx::query(
                "INSERT INTO payment_reports (payment_id, channel, source, external_id, \
                 reported_at, paid_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(booked.id)
            .bind(payment.channel.as_str())
            .bind(&payment.source)
            .bind(&payment.external_id)
            .bind(ms(now))
            .bind(ms(whole_millis(payment.paid_at)))
            .execute(&mut *tx)
            .await?;
            if let Some(intent) = &payment.intent {
                crate::sqlite_payment_intents::mark_intent_paid(
                    &mut *tx,
                    &payment.source,
                    intent,
                    booked.id,
                    now,
                )
                .await?;
            }
            return Ok(PaymentPosted::AlreadyPosted(booked));
        }
    }
    let decided = match payments::decide(standing, payment) {
        Ok(decided) => decided,
        Err(refusal) => return Ok(PaymentPosted::Refused(refusal)),
    };
    let now = now_millis();
    let paid_at = whole_millis(payment.paid_at);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO payments (resolution_number, case_id, channel, source, external_id, \
         amount_minor, currency, paid_at, posted_at, posted_by, from_state, to_state, \
         excess_minor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&standing.resolution_number)
    .bind(standing.case_id.0)
    .bind(payment.channel.as_str())
    .bind(&payment.source)
    .bind(&payment.external_id)
    .bind(payment.amount.minor)
    .bind(payment.amount.currency.code())
    .bind(ms(paid_at))
    .bind(ms(now))
    .bind(&payment.posted_by)
    .bind(standing.state.as_str())
    .bind(decided.to_state.as_str())
    .bind(decided.excess_minor)
    .fetch_one(&mut *tx)
    .await?;
    if decided.to_state != standing.state
        && !move_case(&mut *tx, standing.case_id, standing.state, decided.to_state).await?
    {
        // The transaction holds the only writer: the state read above stands.
        return Err(crate::error::corrupt(format!(
            "case {} left {} while its payment was posted",
            standing.case_id, standing.state
        )));
    }
    if decided.to_state != standing.state && !standing.dated {
        // Settled while its delivery is proven but its clocks could not be dated yet
        // (the catalogue failing it): dating still owes it its appeal window, as for
        // a fine paid before its proof came — tried afresh from here.
        let listed = sqlx::query(
            "INSERT INTO undated_deliveries (case_id) SELECT c.id FROM cases c \
             JOIN resolutions r ON r.case_id = c.id \
             WHERE c.id = ? AND c.state IN ('paid', 'paid_discounted') \
             AND r.delivered_at IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM case_clocks k WHERE k.case_id = c.id) \
             ON CONFLICT (case_id) DO NOTHING",
        )
        .bind(standing.case_id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if listed > 0 {
            sqlx::query("UPDATE cases SET stage_attempts = 0 WHERE id = ?")
                .bind(standing.case_id.0)
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(intent) = &payment.intent {
        crate::sqlite_payment_intents::mark_intent_paid(&mut *tx, &payment.source, intent, id, now)
            .await?;
    }
    let record = payments::record(standing, payment, id, paid_at, now, &decided);
    if record.excess_minor > 0 {
        crate::sqlite_appeals::request_excess_refund(
            &mut *tx,
            &record,
            Money::new(record.excess_minor, record.amount.currency),
            &payments::excess_detail(&record),
            &record.posted_by,
        )
        .await?;
    }
    let detail = payments::audit_detail(&record);
    insert_audit(
        &mut *tx,
        &audit_row(
            standing.case_id,
            PAYMENT_POSTED,
            Some(standing.state),
            Some(decided.to_state),
            &payment.posted_by,
            &detail,
            now,
        ),
    )
    .await?;
    Ok(PaymentPosted::Applied(record))
}

/// The payment reported before under the same reporter's id, if any: its own, or the
/// one it was recognised as when it came over a second channel (`payment_reports`).
async fn earlier_report(
    conn: &mut SqliteConnection,
    payment: &NewPayment,
) -> Result<Option<PaymentRecord>, StoreError> {
    sqlx::query(payment_select!(
        "WHERE channel = ?1 AND source = ?2 AND external_id = ?3 \
         UNION ALL SELECT p.id, p.resolution_number, p.case_id, p.channel, p.source, p.external_id, p.amount_minor, \
             p.currency, p.paid_at, p.posted_at, p.posted_by, p.from_state, p.to_state, p.excess_minor, \
             p.reversed_at \
         FROM payment_reports r JOIN payments p ON p.id = r.payment_id \
         WHERE r.channel = ?1 AND r.source = ?2 AND r.external_id = ?3 LIMIT 1"
    ))
    .bind(payment.channel.as_str())
    .bind(&payment.source)
    .bind(&payment.external_id)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(payment_from_row)
    .transpose()
}

/// The statement payment of the fine that is the money `payment` reports: the same
/// amount, booked on the day paid or within the booking lag after, not yet reported
/// over SOAP or the API.
async fn booked_twin(
    conn: &mut SqliteConnection,
    standing: &Standing,
    payment: &NewPayment,
) -> Result<Option<PaymentRecord>, StoreError> {
    if !standing.channels.contains(&PaymentChannel::Statement) {
        return Ok(None);
    }
    let booked = channel_payments(&mut *conn, &standing.resolution_number, true).await?;
    let reported: std::collections::HashSet<i64> = sqlx::query_scalar(
        "SELECT r.payment_id FROM payment_reports r JOIN payments p ON p.id = r.payment_id \
         WHERE p.resolution_number = ? AND r.channel IN ('soap', 'api')",
    )
    .bind(&standing.resolution_number)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    // Each statement payment's credit: the payment is dated by its payer's day where
    // the statement said so, and the booking day decides the twin.
    let credits: std::collections::HashMap<i64, reconciliation::CreditDays> =
        sqlx::query_as::<_, (i64, chrono::NaiveDate, Option<chrono::NaiveDate>)>(
            "SELECT l.payment_id, l.booked_on, l.paid_on FROM statement_lines l \
             JOIN payments p ON p.id = l.payment_id \
             WHERE p.resolution_number = ? AND p.channel = 'statement'",
        )
        .bind(&standing.resolution_number)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, booked, paid)| (id, reconciliation::CreditDays { booked, paid }))
        .collect();
    let paid_on = standing.jurisdiction.local_date(payment.paid_at);
    Ok(reconciliation::twin(
        &booked,
        &reported,
        standing.jurisdiction,
        payment.amount,
        reconciliation::Seen::PaidOn {
            paid: paid_on,
            credits: &credits,
        },
    )
    .cloned())
}

/// The fine's standing payments of the statement channel (`statement`) or of the
/// others, oldest first.
pub(crate) async fn channel_payments(
    conn: &mut SqliteConnection,
    resolution_number: &str,
    statement: bool,
) -> Result<Vec<PaymentRecord>, StoreError> {
    sqlx::query(payment_select!(
        "WHERE resolution_number = ? AND (channel = 'statement') = ? \
         AND reversed_at IS NULL ORDER BY id"
    ))
    .bind(resolution_number)
    .bind(statement)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(payment_from_row)
    .collect()
}

/// The payment with `id`.
pub(crate) async fn payment_by_id(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<PaymentRecord>, StoreError> {
    sqlx::query(payment_select!("WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(payment_from_row)
        .transpose()
}

/// Standing payments paid in `[from, to)`, in id order.
pub(crate) async fn payments_paid(
    conn: &mut SqliteConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<PaymentRecord>, StoreError> {
    sqlx::query(payment_select!(
        "WHERE paid_at >= ? AND paid_at < ? AND reversed_at IS NULL ORDER BY id"
    ))
    .bind(ms(from))
    .bind(ms(to))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(payment_from_row)
    .collect()
}

#[async_trait]
impl PaymentLedger for SqliteStore {
    async fn post_payment(&self, payment: &NewPayment) -> Result<PaymentPosted, StoreError> {
        payments::check(payment)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(standing) = standing(&mut tx, &payment.payment_code).await? else {
            return Ok(PaymentPosted::Refused(PaymentRefusal::UnknownCode));
        };
        let posted = post_locked(&mut tx, &standing, payment).await?;
        tx.commit().await?;
        Ok(posted)
    }

    async fn reverse_payment(
        &self,
        reversal: &PaymentReversal,
    ) -> Result<PaymentReversed, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // The fine's standing first: BEGIN IMMEDIATE already serializes writers.
        let Some(before) = standing(&mut tx, &reversal.payment_code).await? else {
            return Ok(PaymentReversed::UnknownCode);
        };
        // A case whose personal data were purged is closed for good: its money is
        // refunded through finance, never taken back into an open fine.
        let purged: bool = sqlx::query_scalar(
            "SELECT personal_data_purged_at IS NOT NULL FROM cases WHERE id = ?",
        )
        .bind(before.case_id.0)
        .fetch_one(&mut *tx)
        .await?;
        if purged || !payments::reversible(before.state) {
            return Ok(PaymentReversed::NotReversible(before.state));
        }
        let number = before.resolution_number.clone();
        let row = match &reversal.external_id {
            Some(external_id) => {
                // The amount named must be the payment's: a reversal of part of it is
                // not this one, and never takes back the whole. A report matched to
                // money a statement had booked is that payment: its cancel takes it back.
                sqlx::query(payment_select!(
                    "WHERE ((channel = ?1 AND source = ?2 AND external_id = ?3) \
                      OR id IN (SELECT payment_id FROM payment_reports \
                        WHERE channel = ?1 AND source = ?2 AND external_id = ?3)) \
                     AND resolution_number = ?4 AND (?5 IS NULL OR amount_minor = ?5)"
                ))
                .bind(reversal.channel.as_str())
                .bind(&reversal.source)
                .bind(external_id)
                .bind(&number)
                .bind(reversal.amount.map(|a| a.minor))
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                // Its own payment by sum and time; or, where a statement had booked
                // the money before the report came, the payment the report was matched
                // to, by the report's time (the payment's is the statement's); a
                // report stored before its time was kept, by the sum alone.
                sqlx::query(payment_select!(
                    "WHERE ((channel = ?1 AND source = ?2 AND (?5 IS NULL OR paid_at = ?5)) \
                        OR id IN (SELECT payment_id FROM payment_reports \
                          WHERE channel = ?1 AND source = ?2 \
                            AND (?5 IS NULL OR paid_at IS NULL OR paid_at = ?5))) \
                     AND resolution_number = ?3 AND (?4 IS NULL OR amount_minor = ?4) \
                     ORDER BY COALESCE(reversal_id = ?6, 0) DESC, \
                     reversed_at IS NULL DESC, id DESC LIMIT 1"
                ))
                .bind(reversal.channel.as_str())
                .bind(&reversal.source)
                .bind(&number)
                .bind(reversal.amount.map(|a| a.minor))
                .bind(reversal.paid_at.map(|at| ms(whole_millis(at))))
                .bind(reversal.reversal_id.as_deref())
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(row) = row else {
            return Ok(PaymentReversed::NoPayment);
        };
        let mut record = payment_from_row(&row)?;
        if record.reversed_at.is_some() {
            return Ok(PaymentReversed::AlreadyReversed(record));
        }
        if crate::sqlite_appeals::excess_refunded(&mut tx, before.case_id).await? {
            return Ok(PaymentReversed::NotReversible(before.state));
        }
        let now = now_millis();
        sqlx::query(
            "UPDATE payments SET reversed_at = ?, reversed_by = ?, reversal_reason = ?, \
             reversal_id = ? WHERE id = ?",
        )
        .bind(ms(now))
        .bind(&reversal.reversed_by)
        .bind(&reversal.reason)
        .bind(reversal.reversal_id.as_deref())
        .bind(record.id)
        .execute(&mut *tx)
        .await?;
        // A statement credit that was this money goes back to finance's queue: the
        // account did receive it, and the fine it names is not escalated meanwhile;
        // unless the bank took it back, when it is closed.
        if reversal.money_left {
            sqlx::query(
                "UPDATE statement_lines SET status = 'resolved', detail = ?, \
                 resolved_at = ?, resolved_by = ? \
                 WHERE payment_id = ? AND status IN ('applied', 'matched')",
            )
            .bind(reconciliation::taken_back_detail(
                record.id,
                &reversal.reason,
            ))
            .bind(ms(now))
            .bind(&reversal.reversed_by)
            .bind(record.id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE statement_lines SET status = 'unmatched', detail = ? \
                 WHERE payment_id = ? AND status IN ('applied', 'matched')",
            )
            .bind(reconciliation::requeued_detail(record.id, &reversal.reason))
            .bind(record.id)
            .execute(&mut *tx)
            .await?;
        }
        record.reversed_at = Some(now);
        crate::sqlite_appeals::withdraw_excess(
            &mut tx,
            before.case_id,
            record.id,
            &reversal.reversed_by,
        )
        .await?;
        sqlx::query(
            "UPDATE payment_intents SET status = 'reversed', updated_at = ? WHERE payment_id = ?",
        )
        .bind(ms(now))
        .bind(record.id)
        .execute(&mut *tx)
        .await?;
        let after = standing(&mut tx, &reversal.payment_code)
            .await?
            .ok_or_else(|| crate::error::corrupt(format!("resolution {number} vanished")))?;
        let moved: Vec<PaymentRecord> = sqlx::query(payment_select!(
            "WHERE resolution_number = ? AND (reversed_at IS NULL OR id = ?) ORDER BY id"
        ))
        .bind(&number)
        .bind(record.id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(payment_from_row)
        .collect::<Result<_, _>>()?;
        let unpaid_state = payments::moved_from(before.state, &moved).unwrap_or(before.state);
        let to_state = payments::state_after_reversal(&after, unpaid_state);
        if to_state != before.state {
            if !move_case(&mut tx, before.case_id, before.state, to_state).await? {
                return Err(crate::error::corrupt(format!(
                    "case {} left {} while a payment was reversed",
                    before.case_id, before.state
                )));
            }
            if let Some(clock) = clock_of(&mut tx, before.case_id).await? {
                let (discount_open, next_wakeup) =
                    (reversal.restart_clock)(&clock, to_state, after.due.offers_discount(), now);
                restart_clock(&mut tx, before.case_id, discount_open, next_wakeup).await?;
            }
        }
        if let Some(latest) = moved.iter().rev().find(|p| p.reversed_at.is_none()) {
            crate::sqlite_appeals::requeue_excess(
                &mut tx,
                latest,
                payments::excess_of(&after),
                record.id,
                &reversal.reversed_by,
            )
            .await?;
        }
        crate::sqlite_appeals::reprice_refund(
            &mut tx,
            before.case_id,
            record.id,
            &reversal.reversed_by,
        )
        .await?;
        let detail = payments::reversal_detail(&record, reversal);
        insert_audit(
            &mut tx,
            &audit_row(
                before.case_id,
                PAYMENT_REVERSED,
                Some(before.state),
                Some(to_state),
                &reversal.reversed_by,
                &detail,
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(PaymentReversed::Reversed {
            payment: record,
            from_state: before.state,
            to_state,
        })
    }

    async fn payment_quote(
        &self,
        payment_code: &str,
        at: DateTime<Utc>,
    ) -> Result<Result<PaymentQuote, PaymentRefusal>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        Ok(match standing(&mut conn, payment_code).await? {
            Some(standing) => payments::quote(&standing, at),
            None => Err(PaymentRefusal::UnknownCode),
        })
    }

    async fn payments(&self, resolution_number: &str) -> Result<Vec<PaymentRecord>, StoreError> {
        sqlx::query(payment_select!("WHERE resolution_number = ? ORDER BY id"))
            .bind(resolution_number)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(payment_from_row)
            .collect()
    }

    async fn payer_view(
        &self,
        number: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<PayerView>, StoreError> {
        // One read transaction: every statement reads the same snapshot.
        let mut tx = self.reader.begin().await?;
        let Some(row) = sqlx::query(concat!(
            "SELECT r.number, r.case_id, r.payment_code, r.jurisdiction, \
             r.article, r.units, r.amount_minor, r.discounted_minor, r.currency, r.issued_at, \
             r.pdf_sha256, b.segment, b.byte_offset, b.byte_len, r.signature, \
             r.signature_key_id, r.signer, r.delivered_at, r.delivered_via, r.repeat_of, \
             s.state, s.kind, s.captured_at, s.plate, s.decided_plate, \
             c.discount_until, c.due, c.appeal_until, c.discount_open, \
             c.case_id IS NOT NULL AS dated, \
             (SELECT MIN(a.filed_at) FROM appeals a WHERE a.case_id = r.case_id) AS appealed_at, ",
            crate::model::sqlite_place_columns!(),
            " FROM resolutions r JOIN evidence_blobs b ON b.sha256 = r.pdf_sha256 \
             JOIN cases s ON s.id = r.case_id \
             LEFT JOIN case_clocks c ON c.case_id = r.case_id \
             WHERE r.number = ? AND s.personal_data_purged_at IS NULL"
        ))
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let case_id: i64 = row.try_get("case_id")?;
        let frames =
            sqlx::query_scalar("SELECT idx FROM case_frames WHERE case_id = ? ORDER BY idx")
                .bind(case_id)
                .fetch_all(&mut *tx)
                .await?;
        let payments = sqlx::query(
            "SELECT amount_minor, excess_minor, paid_at, channel FROM payments \
             WHERE resolution_number = ? AND reversed_at IS NULL ORDER BY id",
        )
        .bind(number)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok::<_, StoreError>(ViewPayment {
                amount_minor: row.try_get("amount_minor")?,
                excess_minor: row.try_get("excess_minor")?,
                paid_at: decode::millis(row.try_get("paid_at")?)?,
                channel: PaymentChannel::parse(&row.try_get::<String, _>("channel")?)?,
            })
        })
        .collect::<Result<_, _>>()?;
        let latest_appeal = sqlx::query(
            "SELECT id, state, filed_at, decided_at, decision_note FROM appeals \
             WHERE case_id = ? ORDER BY filed_at DESC, id DESC LIMIT 1",
        )
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| {
            Ok::<_, StoreError>(AppealGist {
                id: row.try_get("id")?,
                state: appeals::decode_appeal_state(&row.try_get::<String, _>("state")?)?,
                filed_at: decode::millis(row.try_get("filed_at")?)?,
                decided_at: decode::opt_millis(row.try_get("decided_at")?)?,
                decision_note: row.try_get("decision_note")?,
            })
        })
        .transpose()?;
        tx.rollback().await?;
        let site = crate::sqlite::case_place(&row)?;
        let rows = PayerViewRows {
            resolution: resolution_from_row(&row)?,
            standing: standing_row(&row)?,
            kind: row.try_get("kind")?,
            captured_at: decode::millis(row.try_get("captured_at")?)?,
            plate: row.try_get("plate")?,
            decided_plate: row.try_get("decided_plate")?,
            frames,
            site,
            due: row.try_get("due")?,
            appeal_until: row.try_get("appeal_until")?,
            discount_open: row
                .try_get::<Option<i64>, _>("discount_open")?
                .map(|open| open != 0),
            payments,
            latest_appeal,
        };
        payments::payer_view(rows, at).map(Some)
    }
}
