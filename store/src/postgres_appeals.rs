//! Clocks, appeals, bulk voids and refund requests on PostgreSQL: every state move is
//! a compare-and-set on the case's state, written with its audit row in one
//! transaction; claims take `FOR UPDATE SKIP LOCKED`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CaseId, CaseState, Money};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::appeals::{
    self, check_settlement, pays_back_withdrawn_excess, refund_columns, settlement_detail,
    takes_settlement, AppealDecided, AppealFiled, AppealRecord, AppealState, AttachmentRecord,
    BulkVoidRequest, BulkVoidResult, DeadlineWrite, DueClock, NewAppeal, RefundColumns,
    RefundRequestRecord, RefundSettled, RefundSettlement, StoredClock, APPEALABLE, APPEAL_DECIDED,
    APPEAL_FILED, CASE_VOIDED, CLOCKS_DATED, DEADLINE_PASSED, REFUND_REPRICED, REFUND_REQUESTED,
    REFUND_SETTLED,
};
use crate::payments::PaymentRecord;
use crate::postgres::{location_from_row, PgStore};
use crate::postgres_recognition::{insert_audit, insert_blobs};
use crate::recognition::{audit_row, delay_millis};
use crate::{decode, Appeals, CaseClocks, CompleteResult, StoreError};

/// A clock's columns. A macro because `query()` takes only `&'static str`.
macro_rules! clock_select {
    ($rest:literal) => {
        concat!(
            "SELECT c.case_id, c.jurisdiction, c.runs_from, c.discount_until, c.due, \
             c.appeal_until, c.enforcement_by, c.lapses, c.discount_open, c.next_wakeup, \
             s.state FROM case_clocks c JOIN cases s ON s.id = c.case_id ",
            $rest
        )
    };
}

macro_rules! appeal_select {
    ($where:literal) => {
        concat!(
            "SELECT id, case_id, resolution_number, appellant, contact, grounds, filed_at, \
             filed_by, from_state, state, decided_by, decided_at, decision_note FROM appeals ",
            $where,
            " ORDER BY id"
        )
    };
}

fn clock_from_row(row: &PgRow) -> Result<StoredClock, StoreError> {
    let jurisdiction: String = row.try_get("jurisdiction")?;
    Ok(StoredClock {
        case_id: CaseId(row.try_get("case_id")?),
        jurisdiction: jurisdiction
            .parse()
            .map_err(|_| crate::error::corrupt(format!("jurisdiction `{jurisdiction}`")))?,
        runs_from: row.try_get("runs_from")?,
        discount_until: row.try_get("discount_until")?,
        due: row.try_get("due")?,
        appeal_until: row.try_get("appeal_until")?,
        enforcement_by: row.try_get("enforcement_by")?,
        lapses: row.try_get("lapses")?,
        discount_open: row.try_get::<bool, _>("discount_open")?,
        next_wakeup: row.try_get("next_wakeup")?,
    })
}

/// Moves a case from `from` to `to` only if it is still in `from`.
pub(crate) async fn move_case(
    tx: &mut PgConnection,
    case_id: CaseId,
    from: CaseState,
    to: CaseState,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE cases SET state = $1, stage_worker = NULL, stage_lease_until = NULL \
         WHERE id = $2 AND state = $3",
    )
    .bind(to.as_str())
    .bind(case_id.0)
    .bind(from.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// The case's clock, if its delivery dated it.
pub(crate) async fn clock_of(
    tx: &mut PgConnection,
    case_id: CaseId,
) -> Result<Option<StoredClock>, StoreError> {
    sqlx::query(clock_select!("WHERE c.case_id = $1"))
        .bind(case_id.0)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(clock_from_row)
        .transpose()
}

/// Sets the clock of a case that runs again (a payment reversed).
pub(crate) async fn restart_clock(
    tx: &mut PgConnection,
    case_id: CaseId,
    discount_open: bool,
    next_wakeup: Option<chrono::NaiveDate>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE case_clocks SET discount_open = $1, next_wakeup = $2 WHERE case_id = $3")
        .bind(discount_open)
        .bind(next_wakeup)
        .bind(case_id.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Stops the case's clocks: nothing more is due on a closed or paused case.
pub(crate) async fn stop_clock(tx: &mut PgConnection, case_id: CaseId) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE case_clocks SET next_wakeup = NULL, discount_open = FALSE WHERE case_id = $1",
    )
    .bind(case_id.0)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Queues the refund of a case whose money was taken — what its payments not reversed
/// took, less the excess owed apart (every excess request but those a reversal
/// withdrew, paid back or not) — and returns its id; `None` when that is nothing or the
/// case has its refund already.
pub(crate) async fn request_refund(
    tx: &mut PgConnection,
    case_id: CaseId,
    cause: &str,
    detail: &str,
    actor: &str,
) -> Result<Option<i64>, StoreError> {
    let now = Utc::now();
    let id: Option<i64> = sqlx::query_scalar(concat!(
        "INSERT INTO refund_requests (case_id, resolution_number, cause, detail, requested_at, \
         requested_by, state, amount_minor, currency) \
         SELECT * FROM (SELECT $1::bigint, r.number, $2, $3, $4::timestamptz, $5, 'queued', ",
        appeals::refund_owed!("r.case_id", "::bigint"),
        " AS amount_minor, r.currency FROM resolutions r WHERE r.case_id = $1) AS refund \
         WHERE amount_minor > 0 \
         ON CONFLICT (case_id) WHERE cause <> 'excess' DO NOTHING RETURNING id"
    ))
    .bind(case_id.0)
    .bind(cause)
    .bind(detail)
    .bind(now)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    if id.is_some() {
        insert_audit(
            tx,
            &audit_row(case_id, REFUND_REQUESTED, None, None, actor, detail, now),
        )
        .await?;
    }
    Ok(id)
}

/// Queues the refund of the excess `payment` brought beyond its fine.
pub(crate) async fn request_excess_refund(
    tx: &mut PgConnection,
    payment: &PaymentRecord,
    excess: Money,
    detail: &str,
    actor: &str,
) -> Result<(), StoreError> {
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO refund_requests (case_id, resolution_number, cause, detail, requested_at, \
         requested_by, state, payment_id, amount_minor, currency) \
         VALUES ($1, $2, 'excess', $3, $4, $5, 'queued', $6, $7, $8)",
    )
    .bind(payment.case_id.0)
    .bind(&payment.resolution_number)
    .bind(detail)
    .bind(now)
    .bind(actor)
    .bind(payment.id)
    .bind(excess.minor)
    .bind(excess.currency.code())
    .execute(&mut *tx)
    .await?;
    insert_audit(
        tx,
        &audit_row(
            payment.case_id,
            REFUND_REQUESTED,
            None,
            None,
            actor,
            detail,
            now,
        ),
    )
    .await
}

/// Whether an excess of the case was paid back already: a payment of it is then not
/// reversed automatically (the money has left; finance settles it by hand).
pub(crate) async fn excess_refunded(
    tx: &mut PgConnection,
    case_id: CaseId,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT id FROM refund_requests WHERE case_id = $1 AND cause = 'excess' \
         AND state = 'refunded' LIMIT 1",
    )
    .bind(case_id.0)
    .fetch_optional(&mut *tx)
    .await?
    .is_some())
}

/// Withdraws the case's queued excess when one of its payments is reversed: what the
/// rest of its money brings beyond the fine is worked out again.
pub(crate) async fn withdraw_excess(
    tx: &mut PgConnection,
    case_id: CaseId,
    reversed_payment: i64,
    by: &str,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let note = format!("payment {reversed_payment} was reversed");
    let withdrawn: Vec<(i64, i64)> = sqlx::query_as(
        "UPDATE refund_requests SET state = 'withdrawn', settled_at = $1, settled_by = $2, \
         note = $3 WHERE case_id = $4 AND cause = 'excess' AND state = 'queued' \
         RETURNING id, amount_minor",
    )
    .bind(now)
    .bind(by)
    .bind(&note)
    .bind(case_id.0)
    .fetch_all(&mut *tx)
    .await?;
    for (id, was) in withdrawn {
        let detail = appeals::repriced_detail(id, was, 0, &note);
        insert_audit(
            tx,
            &audit_row(case_id, REFUND_REPRICED, None, None, by, &detail, now),
        )
        .await?;
    }
    Ok(())
}

/// After a payment of a closed case (annulled, voided, lapsed) was reversed: the
/// refund queued for its money asks for what its payments not reversed still bring,
/// less the excess owed apart, and is withdrawn when that is nothing — the chargeback
/// already gave the payer the money back.
pub(crate) async fn reprice_refund(
    tx: &mut PgConnection,
    case_id: CaseId,
    reversed_payment: i64,
    by: &str,
) -> Result<(), StoreError> {
    let queued: Option<(i64, i64)> = sqlx::query_as(
        "SELECT id, amount_minor FROM refund_requests \
         WHERE case_id = $1 AND cause <> 'excess' AND state = 'queued'",
    )
    .bind(case_id.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, amount)) = queued else {
        return Ok(());
    };
    let owed: i64 = sqlx::query_scalar(concat!("SELECT ", appeals::refund_owed!("$1", "::bigint")))
        .bind(case_id.0)
        .fetch_one(&mut *tx)
        .await?;
    if owed == amount {
        return Ok(());
    }
    let now = Utc::now();
    let note = format!("payment {reversed_payment} was reversed");
    if owed > 0 {
        sqlx::query("UPDATE refund_requests SET amount_minor = $1, note = $2 WHERE id = $3")
            .bind(owed)
            .bind(&note)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query(
            "UPDATE refund_requests SET state = 'withdrawn', settled_at = $1, \
             settled_by = $2, note = $3 WHERE id = $4",
        )
        .bind(now)
        .bind(by)
        .bind(&note)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    let detail = appeals::repriced_detail(id, amount, owed, &note);
    insert_audit(
        tx,
        &audit_row(case_id, REFUND_REPRICED, None, None, by, &detail, now),
    )
    .await
}

/// What a refund recorded on an excess a reversal withdrew (`paid_back`) covers of the
/// case's queued excess, newest first: those it covers whole are withdrawn, the one it
/// covers in part keeps the rest. The reversal only took money away, so whatever was
/// queued since is owed less what already left.
async fn cover_queued_excess(
    tx: &mut PgConnection,
    paid_back: &RefundRequestRecord,
    by: &str,
) -> Result<(), StoreError> {
    let queued: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, amount_minor FROM refund_requests \
         WHERE case_id = $1 AND cause = 'excess' AND state = 'queued' ORDER BY id DESC",
    )
    .bind(paid_back.case_id.0)
    .fetch_all(&mut *tx)
    .await?;
    let note = format!(
        "excess refund request {} was paid back before the reversal that withdrew it",
        paid_back.id
    );
    let now = Utc::now();
    for (id, amount) in appeals::covered_excess(&queued, paid_back.amount.minor) {
        let was = queued
            .iter()
            .find(|(queued_id, _)| *queued_id == id)
            .map_or(0, |(_, was)| *was);
        let detail = appeals::repriced_detail(id, was, amount, &note);
        insert_audit(
            tx,
            &audit_row(
                paid_back.case_id,
                REFUND_REPRICED,
                None,
                None,
                by,
                &detail,
                now,
            ),
        )
        .await?;
        let query = if amount == 0 {
            sqlx::query(
                "UPDATE refund_requests SET state = 'withdrawn', settled_at = $1, \
                 settled_by = $2, note = $3 WHERE id = $4",
            )
            .bind(now)
            .bind(by)
        } else {
            sqlx::query(
                "UPDATE refund_requests SET amount_minor = $1, \
                 detail = detail || ' (less ' || $2 || ')', note = $3 WHERE id = $4",
            )
            .bind(amount)
            .bind(paid_back.amount.to_string())
        };
        query.bind(&note).bind(id).execute(&mut *tx).await?;
    }
    Ok(())
}

/// After a reversal: queues what the case's standing money still brings beyond the
/// fine (`excess`, as the ledger settles it), less the excess finance cancelled, on
/// `latest`, the newest payment still standing.
pub(crate) async fn requeue_excess(
    tx: &mut PgConnection,
    latest: &PaymentRecord,
    excess: Money,
    reversed_payment: i64,
    actor: &str,
) -> Result<(), StoreError> {
    let cancelled: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(amount_minor), 0)::bigint FROM refund_requests \
         WHERE case_id = $1 AND cause = 'excess' AND state = 'cancelled' \
         AND EXISTS (SELECT 1 FROM payments x \
         WHERE x.id = refund_requests.payment_id AND x.reversed_at IS NULL)",
    )
    .bind(latest.case_id.0)
    .fetch_one(&mut *tx)
    .await?;
    let owed = Money::new(excess.minor - cancelled, excess.currency);
    if owed.minor <= 0 {
        return Ok(());
    }
    let detail = format!(
        "after payment {reversed_payment} was reversed, the fine's payments bring {owed} more than it"
    );
    request_excess_refund(tx, latest, owed, &detail, actor).await
}

fn refund_from_row(row: &PgRow) -> Result<RefundRequestRecord, StoreError> {
    RefundColumns {
        id: row.try_get("id")?,
        case_id: row.try_get("case_id")?,
        resolution_number: row.try_get("resolution_number")?,
        cause: row.try_get("cause")?,
        payment_id: row.try_get("payment_id")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        detail: row.try_get("detail")?,
        requested_at: row.try_get("requested_at")?,
        requested_by: row.try_get("requested_by")?,
        state: row.try_get("state")?,
        settled_at: row.try_get("settled_at")?,
        settled_by: row.try_get("settled_by")?,
        reference: row.try_get("reference")?,
        note: row.try_get("note")?,
    }
    .record()
}

async fn attachments(
    conn: &mut PgConnection,
    appeal_id: i64,
) -> Result<Vec<AttachmentRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.position, a.name, a.content_type, a.sha256, b.segment, b.byte_offset, \
         b.byte_len FROM appeal_attachments a JOIN evidence_blobs b ON b.sha256 = a.sha256 \
         WHERE a.appeal_id = $1 ORDER BY a.position",
    )
    .bind(appeal_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AttachmentRecord {
                position: decode::u32_of(row.try_get("position")?, "attachment position")?,
                name: row.try_get("name")?,
                content_type: row.try_get("content_type")?,
                sha256: decode::hash32(&row.try_get::<Vec<u8>, _>("sha256")?, "attachment")?,
                location: location_from_row(row)?,
            })
        })
        .collect()
}

/// Appeals by their id (`by_case` false) or by their case's id.
async fn appeal_by(
    conn: &mut PgConnection,
    by_case: bool,
    key: i64,
) -> Result<Vec<AppealRecord>, StoreError> {
    let sql = if by_case {
        appeal_select!("WHERE case_id = $1")
    } else {
        appeal_select!("WHERE id = $1")
    };
    let rows = sqlx::query(sql).bind(key).fetch_all(&mut *conn).await?;
    let mut appeals = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        appeals.push(AppealRecord {
            id,
            case_id: CaseId(row.try_get("case_id")?),
            resolution_number: row.try_get("resolution_number")?,
            appellant: row.try_get("appellant")?,
            contact: row.try_get("contact")?,
            grounds: row.try_get("grounds")?,
            filed_at: row.try_get("filed_at")?,
            filed_by: row.try_get("filed_by")?,
            from_state: decode::state(&row.try_get::<String, _>("from_state")?)?,
            state: appeals::decode_appeal_state(&row.try_get::<String, _>("state")?)?,
            decided_by: row.try_get("decided_by")?,
            decided_at: row.try_get("decided_at")?,
            decision_note: row.try_get("decision_note")?,
            attachments: attachments(conn, id).await?,
        });
    }
    Ok(appeals)
}

#[async_trait]
impl CaseClocks for PgStore {
    async fn claim_undated(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<CaseId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let mut ids: Vec<CaseId> = sqlx::query_scalar(
            "UPDATE cases SET stage_worker = $1, \
             stage_lease_until = now() + $2::double precision * interval '1 millisecond', \
             stage_attempts = stage_attempts + 1 \
             WHERE id = ANY (ARRAY (SELECT id FROM cases WHERE \
             ((state = 'delivered' AND NOT EXISTS \
               (SELECT 1 FROM case_clocks k WHERE k.case_id = cases.id)) \
              OR state = 'appeal_rejected' \
              OR (state IN ('issued', 'paid', 'paid_discounted') AND stage_attempts < 5 \
                  AND id IN (SELECT case_id FROM undated_deliveries) \
                  AND NOT EXISTS (SELECT 1 FROM case_clocks k WHERE k.case_id = cases.id))) \
             AND (stage_lease_until IS NULL OR stage_lease_until <= now()) \
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)) \
             RETURNING id",
        )
        .bind(worker)
        // Exact: leases are capped at a year, some 3.2e10 milliseconds.
        .bind(delay_millis(lease) as f64)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(CaseId)
        .collect();
        tx.commit().await?;
        ids.sort();
        Ok(ids)
    }

    async fn record_clock(
        &self,
        worker: &str,
        from: CaseState,
        to: CaseState,
        clock: &StoredClock,
        detail: &str,
    ) -> Result<CompleteResult, StoreError> {
        let now = Utc::now();
        let actor = crate::stages::actor(worker);
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query(
            "UPDATE cases SET state = $1, stage_worker = NULL, stage_lease_until = NULL, \
             stage_attempts = 0, stage_error = NULL \
             WHERE id = $2 AND state = $3 AND stage_worker = $4",
        )
        .bind(to.as_str())
        .bind(clock.case_id.0)
        .bind(from.as_str())
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if held == 0 {
            return Ok(CompleteResult::LeaseLost);
        }
        sqlx::query(
            "INSERT INTO case_clocks (case_id, jurisdiction, runs_from, discount_until, due, \
             appeal_until, enforcement_by, lapses, discount_open, next_wakeup, dated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (case_id) DO UPDATE SET jurisdiction = excluded.jurisdiction, \
             runs_from = excluded.runs_from, discount_until = excluded.discount_until, \
             due = excluded.due, appeal_until = excluded.appeal_until, \
             enforcement_by = excluded.enforcement_by, lapses = excluded.lapses, \
             discount_open = excluded.discount_open, next_wakeup = excluded.next_wakeup, \
             dated_at = excluded.dated_at",
        )
        .bind(clock.case_id.0)
        .bind(clock.jurisdiction.as_str())
        .bind(clock.runs_from)
        .bind(clock.discount_until)
        .bind(clock.due)
        .bind(clock.appeal_until)
        .bind(clock.enforcement_by)
        .bind(clock.lapses)
        .bind(clock.discount_open)
        .bind(clock.next_wakeup)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM undated_deliveries WHERE case_id = $1")
            .bind(clock.case_id.0)
            .execute(&mut *tx)
            .await?;
        insert_audit(
            &mut tx,
            &audit_row(
                clock.case_id,
                CLOCKS_DATED,
                Some(from),
                Some(to),
                &actor,
                detail,
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(CompleteResult::Completed)
    }

    async fn clock(&self, case_id: CaseId) -> Result<Option<StoredClock>, StoreError> {
        sqlx::query(clock_select!("WHERE c.case_id = $1"))
            .bind(case_id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(clock_from_row)
            .transpose()
    }

    async fn due_clocks(&self, today: NaiveDate, limit: u32) -> Result<Vec<DueClock>, StoreError> {
        let rows = sqlx::query(clock_select!(
            "WHERE c.next_wakeup IS NOT NULL AND c.next_wakeup <= $1 \
             AND NOT EXISTS (SELECT 1 FROM resolutions r \
                 JOIN statement_line_codes q ON q.payment_code = r.payment_code \
                 JOIN statement_lines l ON l.id = q.line_id \
                 WHERE r.case_id = c.case_id AND l.status IN ('unmatched', 'ambiguous', 'refused')) \
             ORDER BY c.next_wakeup, c.case_id LIMIT $2"
        ))
            .bind(today)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DueClock {
                    clock: clock_from_row(row)?,
                    state: decode::state(&row.try_get::<String, _>("state")?)?,
                })
            })
            .collect()
    }

    async fn apply_deadline(&self, write: &DeadlineWrite<'_>) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        // The case row first, as payments and their reversals lock it before the
        // clock: the same order everywhere, so the two never deadlock.
        sqlx::query("SELECT 1 FROM cases WHERE id = $1 FOR UPDATE")
            .bind(write.case_id.0)
            .execute(&mut *tx)
            .await?;
        let clock_moved = sqlx::query(
            "UPDATE case_clocks SET discount_open = $1, next_wakeup = $2 \
             WHERE case_id = $3 AND next_wakeup IS NOT DISTINCT FROM $4 \
             AND EXISTS (SELECT 1 FROM cases WHERE id = $5 AND state = $6)",
        )
        .bind(write.discount_open)
        .bind(write.next_wakeup)
        .bind(write.case_id.0)
        .bind(write.expected_wakeup)
        .bind(write.case_id.0)
        .bind(write.from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if clock_moved == 0 {
            return Ok(false);
        }
        // A credit waiting for finance that names the fine may be its payment: no
        // escalation until finance has placed it.
        if crate::reconciliation::escalation(write.to) {
            let held: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM resolutions r \
                 JOIN statement_line_codes q ON q.payment_code = r.payment_code \
                 JOIN statement_lines l ON l.id = q.line_id \
                 WHERE r.case_id = $1 AND l.status IN ('unmatched', 'ambiguous', 'refused'))",
            )
            .bind(write.case_id.0)
            .fetch_one(&mut *tx)
            .await?;
            if held {
                return Ok(false);
            }
        }
        if let Some(to) = write.to {
            if !move_case(&mut tx, write.case_id, write.from, to).await? {
                return Ok(false);
            }
        }
        insert_audit(
            &mut tx,
            &audit_row(
                write.case_id,
                DEADLINE_PASSED,
                Some(write.from),
                write.to,
                write.actor,
                write.detail,
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl Appeals for PgStore {
    async fn file_appeal(&self, appeal: &NewAppeal) -> Result<AppealFiled, StoreError> {
        appeals::check_appeal(appeal)?;
        // In whole milliseconds, as SQLite keeps it and as payments keep their times:
        // the ledger compares a payment's time with the filing's.
        let now = crate::audit::whole_millis(Utc::now());
        let mut tx = self.pool.begin().await?;
        // Locked: a payment committing between this read and the move would leave a
        // paid case with an open appeal (READ COMMITTED; SQLite's writers are serial).
        let row = sqlx::query(
            "SELECT s.state, r.number, s.personal_data_purged_at FROM cases s \
             LEFT JOIN resolutions r ON r.case_id = s.id WHERE s.id = $1 FOR UPDATE OF s",
        )
        .bind(appeal.case_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return crate::postgres::finish_unchanged(tx, Ok(AppealFiled::NoResolution)).await;
        };
        // The API refuses a purged case before storing the uploads; a purge that
        // committed while this waited for the lock is seen here.
        if let Some(at) = row.try_get::<Option<DateTime<Utc>>, _>("personal_data_purged_at")? {
            return crate::postgres::finish_unchanged(tx, Ok(AppealFiled::Purged(at))).await;
        }
        let state = decode::state(&row.try_get::<String, _>("state")?)?;
        let Some(number) = row.try_get::<Option<String>, _>("number")? else {
            return crate::postgres::finish_unchanged(tx, Ok(AppealFiled::NoResolution)).await;
        };
        if state == CaseState::Appealed {
            let open: i64 =
                sqlx::query_scalar("SELECT id FROM appeals WHERE case_id = $1 AND state = 'filed'")
                    .bind(appeal.case_id.0)
                    .fetch_one(&mut *tx)
                    .await?;
            return crate::postgres::finish_unchanged(tx, Ok(AppealFiled::AlreadyOpen(open))).await;
        }
        if !APPEALABLE.contains(&state) {
            return crate::postgres::finish_unchanged(tx, Ok(AppealFiled::NotAppealable(state)))
                .await;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO appeals (case_id, resolution_number, appellant, contact, grounds, \
             filed_at, filed_by, from_state, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'filed') \
             RETURNING id",
        )
        .bind(appeal.case_id.0)
        .bind(&number)
        .bind(&appeal.appellant)
        .bind(appeal.contact.as_deref())
        .bind(&appeal.grounds)
        .bind(now)
        .bind(&appeal.filed_by)
        .bind(state.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let files: Vec<_> = appeal
            .attachments
            .iter()
            .map(|f| (&f.evidence.sha256, &f.evidence.location))
            .collect();
        insert_blobs(&mut tx, &files).await?;
        for (position, file) in appeal.attachments.iter().enumerate() {
            sqlx::query(
                "INSERT INTO appeal_attachments (appeal_id, position, name, content_type, \
                 sha256) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(&file.name)
            .bind(&file.content_type)
            .bind(&file.evidence.sha256[..])
            .execute(&mut *tx)
            .await?;
        }
        move_case(&mut tx, appeal.case_id, state, CaseState::Appealed).await?;
        // An appeal pauses the clocks; a rejection dates them again.
        stop_clock(&mut tx, appeal.case_id).await?;
        let detail =
            serde_json::json!({ "appeal_id": id, "filed_by": appeals::audited_filer(&appeal.filed_by) })
                .to_string();
        insert_audit(
            &mut tx,
            &audit_row(
                appeal.case_id,
                APPEAL_FILED,
                Some(state),
                Some(CaseState::Appealed),
                appeals::audited_filer(&appeal.filed_by),
                &detail,
                now,
            ),
        )
        .await?;
        let mut filed = appeal_by(&mut tx, false, id).await?;
        tx.commit().await?;
        filed
            .pop()
            .map(|a| AppealFiled::Filed(Box::new(a)))
            .ok_or_else(|| crate::error::corrupt("the appeal just filed is missing"))
    }

    async fn appeal(&self, id: i64) -> Result<Option<AppealRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(appeal_by(&mut conn, false, id).await?.pop())
    }

    async fn appeals_of_case(&self, case_id: CaseId) -> Result<Vec<AppealRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        appeal_by(&mut conn, true, case_id.0).await
    }

    async fn decide_appeal(
        &self,
        id: i64,
        decision: AppealState,
        decided_by: &str,
        note: &str,
    ) -> Result<AppealDecided, StoreError> {
        let to = match decision {
            AppealState::Rejected => CaseState::AppealRejected,
            AppealState::Annulled => CaseState::Annulled,
            AppealState::Filed => {
                return Err(StoreError::Invalid(
                    "an appeal is decided `rejected` or `annulled`".into(),
                ))
            }
        };
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        // The case row first, as a bulk void or a payment takes it (two writers taking
        // the appeal and its case in opposite orders deadlock); the appeal is read under
        // that lock.
        sqlx::query(
            "SELECT id FROM cases WHERE id = (SELECT case_id FROM appeals WHERE id = $1) \
             FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(appeal) = appeal_by(&mut tx, false, id).await?.pop() else {
            return crate::postgres::finish_unchanged(tx, Ok(AppealDecided::NotFound)).await;
        };
        if appeal.state != AppealState::Filed {
            return crate::postgres::finish_unchanged(tx, Ok(AppealDecided::NotOpen(appeal.state)))
                .await;
        }
        sqlx::query(
            "UPDATE appeals SET state = $1, decided_by = $2, decided_at = $3, decision_note = $4 \
             WHERE id = $5 AND state = 'filed'",
        )
        .bind(decision.as_str())
        .bind(decided_by)
        .bind(now)
        .bind(note)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if !move_case(&mut tx, appeal.case_id, CaseState::Appealed, to).await? {
            return Err(crate::error::corrupt(format!(
                "case {} has an open appeal but is not `appealed`",
                appeal.case_id
            )));
        }
        let detail = serde_json::json!({
            "appeal_id": id, "decision": decision.as_str(), "note": note,
        })
        .to_string();
        insert_audit(
            &mut tx,
            &audit_row(
                appeal.case_id,
                APPEAL_DECIDED,
                Some(CaseState::Appealed),
                Some(to),
                decided_by,
                &detail,
                now,
            ),
        )
        .await?;
        // Whatever the state, the money it took (if any) goes back.
        let refund_request = if decision == AppealState::Annulled {
            let why = format!("appeal {id} annulled the resolution");
            request_refund(&mut tx, appeal.case_id, "annulled", &why, decided_by).await?
        } else {
            None
        };
        tx.commit().await?;
        Ok(AppealDecided::Decided {
            case_state: to,
            refund_request,
        })
    }

    async fn bulk_void(&self, request: &BulkVoidRequest) -> Result<BulkVoidResult, StoreError> {
        appeals::check_void(request)?;
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, event FROM cases WHERE captured_at >= $1 AND captured_at < $2 \
             ORDER BY id",
        )
        .bind(request.captured_from)
        .bind(request.captured_until)
        .fetch_all(&mut *tx)
        .await?;
        let mut candidates: Vec<i64> = Vec::new();
        for row in &rows {
            let event: serde_json::Value = row.try_get("event")?;
            if appeals::event_device_serial(&event) == Some(request.device_serial.as_str()) {
                candidates.push(row.try_get("id")?);
            }
        }
        // The device's cases locked (in id order) and their states read again under the
        // lock: a payment or a deadline moving one meanwhile would otherwise leave it
        // paid with a refund queued, or overdue, while the void says it is voided.
        let mut affected = Vec::new();
        for row in sqlx::query(
            "SELECT id, state, personal_data_purged_at IS NOT NULL AS purged FROM cases \
                 WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&candidates)
        .fetch_all(&mut *tx)
        .await?
        {
            let state = decode::state(&row.try_get::<String, _>("state")?)?;
            if appeals::voidable(state, row.try_get("purged")?) {
                affected.push((CaseId(row.try_get("id")?), state));
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO bulk_voids (device_serial, captured_from, captured_until, reason, \
             requested_by, requested_at, voided, refunds) VALUES ($1, $2, $3, $4, $5, $6, 0, 0) \
             RETURNING id",
        )
        .bind(&request.device_serial)
        .bind(request.captured_from)
        .bind(request.captured_until)
        .bind(&request.reason)
        .bind(&request.requested_by)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "bulk_void": id, "device_serial": request.device_serial, "reason": request.reason,
        })
        .to_string();
        let mut voided = Vec::with_capacity(affected.len());
        let mut refunds = 0u32;
        for (case_id, state) in affected {
            move_case(&mut tx, case_id, state, CaseState::Voided).await?;
            stop_clock(&mut tx, case_id).await?;
            // An open appeal has nothing left to decide.
            sqlx::query(
                "UPDATE appeals SET state = 'annulled', decided_by = $1, decided_at = $2, \
                 decision_note = $3 WHERE case_id = $4 AND state = 'filed'",
            )
            .bind(&request.requested_by)
            .bind(now)
            .bind(format!("bulk void {id}: {}", request.reason))
            .bind(case_id.0)
            .execute(&mut *tx)
            .await?;
            insert_audit(
                &mut tx,
                &audit_row(
                    case_id,
                    CASE_VOIDED,
                    Some(state),
                    Some(CaseState::Voided),
                    &request.requested_by,
                    &detail,
                    now,
                ),
            )
            .await?;
            // Whatever the state, the money it took (if any) goes back.
            let why = format!("bulk void {id}: {}", request.reason);
            if request_refund(&mut tx, case_id, "voided", &why, &request.requested_by)
                .await?
                .is_some()
            {
                refunds += 1;
            }
            voided.push(case_id);
        }
        sqlx::query("UPDATE bulk_voids SET voided = $1, refunds = $2 WHERE id = $3")
            .bind(voided.len() as i64)
            .bind(i64::from(refunds))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(BulkVoidResult {
            id,
            voided,
            refund_requests: refunds,
        })
    }

    async fn refund_requests(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<RefundRequestRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refund_requests WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(refund_from_row)
        .collect()
    }

    async fn settle_refund(
        &self,
        settlement: &RefundSettlement,
    ) -> Result<RefundSettled, StoreError> {
        check_settlement(settlement)?;
        let mut tx = self.pool.begin().await?;
        // The case row first, as payments and reversals take it: the excess they queue
        // is then all there for `cover_queued_excess` to see.
        sqlx::query(
            "SELECT id FROM cases WHERE id = \
             (SELECT case_id FROM refund_requests WHERE id = $1) FOR UPDATE",
        )
        .bind(settlement.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = sqlx::query(concat!(
            "SELECT ",
            refund_columns!(),
            " FROM refund_requests WHERE id = $1 FOR UPDATE"
        ))
        .bind(settlement.id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return crate::postgres::finish_unchanged(tx, Ok(RefundSettled::NotFound)).await;
        };
        let before = refund_from_row(&row)?;
        if !takes_settlement(&before.state, settlement.outcome) {
            return crate::postgres::finish_unchanged(
                tx,
                Ok(RefundSettled::AlreadySettled(before)),
            )
            .await;
        }
        let now = crate::audit::now_millis();
        let row = sqlx::query(concat!(
            "UPDATE refund_requests SET state = $1, settled_at = $2, settled_by = $3, \
             reference = $4, note = $5 WHERE id = $6 RETURNING ",
            refund_columns!()
        ))
        .bind(settlement.outcome.as_str())
        .bind(now)
        .bind(&settlement.settled_by)
        .bind(settlement.reference.as_deref().map(str::trim))
        .bind(settlement.note.as_deref().map(str::trim))
        .bind(settlement.id)
        .fetch_one(&mut *tx)
        .await?;
        let record = refund_from_row(&row)?;
        if pays_back_withdrawn_excess(&before) {
            cover_queued_excess(&mut tx, &record, &settlement.settled_by).await?;
        }
        // The money an annulment or a void owed went back: the case ends `refunded`.
        let mut moved_from = None;
        if appeals::closes_as_refunded(&record, settlement.outcome) {
            for from in [CaseState::Annulled, CaseState::Voided] {
                if move_case(&mut tx, record.case_id, from, CaseState::Refunded).await? {
                    moved_from = Some(from);
                    break;
                }
            }
        }
        insert_audit(
            &mut tx,
            &audit_row(
                record.case_id,
                REFUND_SETTLED,
                moved_from,
                moved_from.map(|_| CaseState::Refunded),
                &settlement.settled_by,
                &settlement_detail(&record, &before.state),
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(RefundSettled::Settled(record))
    }
}
