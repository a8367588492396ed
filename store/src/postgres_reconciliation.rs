//! Bank statements reconciled on PostgreSQL: a credit naming one fine is taken under
//! that fine's case lock (`standing`), the lock every payment takes, so a credit and
//! the bank's own report of the same money, arriving at once, are taken one after the
//! other and the second finds the first. A queued credit's row is locked while finance
//! resolves it.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::Money;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::audit::now_millis;
use crate::payments::{PaymentPosted, PaymentRecord, PaymentRefusal, Standing};
use crate::postgres::{finish_unchanged, PgStore};
use crate::postgres_payments::{
    channel_payments, payment_by_id, payments_paid, post_locked, standing,
};
use crate::reconciliation::{
    self, LineReconciled, LineResolution, LineResolved, LineStatus, NewStatementLine,
    StatementLineRecord,
};
use crate::{Reconciliation, StoreError};

/// A line's columns. A macro because `query()` takes only `&'static str`.
macro_rules! line_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, account, statement_id, bank_reference, booked_on, paid_on, \
             amount_minor, currency, remittance, payer, status, payment_id, detail, \
             imported_at, imported_by, resolved_at, resolved_by FROM statement_lines ",
            $rest
        )
    };
}

fn line_from_row(row: &PgRow) -> Result<StatementLineRecord, StoreError> {
    let currency: String = row.try_get("currency")?;
    Ok(StatementLineRecord {
        id: row.try_get("id")?,
        account: row.try_get("account")?,
        statement_id: row.try_get("statement_id")?,
        bank_reference: row.try_get("bank_reference")?,
        booked_on: row.try_get("booked_on")?,
        paid_on: row.try_get("paid_on")?,
        amount: Money::new(
            row.try_get("amount_minor")?,
            currency
                .parse()
                .map_err(|_| crate::error::corrupt(format!("currency `{currency}`")))?,
        ),
        remittance: row.try_get("remittance")?,
        payer: row.try_get("payer")?,
        codes: Vec::new(),
        status: LineStatus::parse(&row.try_get::<String, _>("status")?)?,
        payment_id: row.try_get("payment_id")?,
        detail: row.try_get("detail")?,
        imported_at: row.try_get("imported_at")?,
        imported_by: row.try_get("imported_by")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolved_by")?,
    })
}

/// `lines` with the codes each names.
async fn with_codes(
    conn: &mut PgConnection,
    mut lines: Vec<StatementLineRecord>,
) -> Result<Vec<StatementLineRecord>, StoreError> {
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return Ok(lines);
    };
    let (low, high) = (first.id.min(last.id), first.id.max(last.id));
    let mut codes: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for row in sqlx::query(
        "SELECT line_id, payment_code FROM statement_line_codes \
         WHERE line_id >= $1 AND line_id <= $2 ORDER BY line_id, payment_code",
    )
    .bind(low)
    .bind(high)
    .fetch_all(&mut *conn)
    .await?
    {
        codes
            .entry(row.try_get("line_id")?)
            .or_default()
            .push(row.try_get("payment_code")?);
    }
    for line in &mut lines {
        line.codes = codes.remove(&line.id).unwrap_or_default();
    }
    Ok(lines)
}

async fn line_where(
    conn: &mut PgConnection,
    line: Option<PgRow>,
) -> Result<Option<StatementLineRecord>, StoreError> {
    let Some(row) = line else {
        return Ok(None);
    };
    let line = line_from_row(&row)?;
    Ok(with_codes(conn, vec![line]).await?.pop())
}

async fn line_by_reference(
    conn: &mut PgConnection,
    account: &str,
    reference: &str,
) -> Result<Option<StatementLineRecord>, StoreError> {
    let row = sqlx::query(line_select!("WHERE account = $1 AND bank_reference = $2"))
        .bind(account)
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await?;
    line_where(conn, row).await
}

/// The earlier report (over SOAP or the API) of the money `credit` brings, matched to
/// no credit yet.
async fn reported_twin(
    conn: &mut PgConnection,
    standing: &Standing,
    credit: &reconciliation::CreditPayment<'_>,
) -> Result<Option<PaymentRecord>, StoreError> {
    if !crate::reconciliation::REPORTING
        .iter()
        .any(|c| standing.channels.contains(c))
    {
        return Ok(None);
    }
    let reported = channel_payments(&mut *conn, &standing.resolution_number, false).await?;
    let linked: HashSet<i64> = sqlx::query_scalar(
        "SELECT l.payment_id FROM statement_lines l JOIN payments p ON p.id = l.payment_id \
         WHERE p.resolution_number = $1",
    )
    .bind(&standing.resolution_number)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    Ok(reconciliation::twin(
        &reported,
        &linked,
        standing.jurisdiction,
        credit.amount,
        reconciliation::Seen::BookedOn {
            booked: credit.booked_on,
            paid: credit.paid_on,
        },
    )
    .cloned())
}

/// Takes a credit's money for the fine `standing` describes: matched to its earlier
/// report, or posted as a payment of the statement channel.
async fn take_credit(
    conn: &mut PgConnection,
    standing: &Standing,
    credit: &reconciliation::CreditPayment<'_>,
) -> Result<Result<(LineStatus, PaymentRecord), PaymentRefusal>, StoreError> {
    if let Some(twin) = reported_twin(&mut *conn, standing, credit).await? {
        return Ok(Ok((LineStatus::Matched, twin)));
    }
    let payment = credit.payment(standing);
    match post_locked(&mut *conn, standing, &payment).await? {
        Some(PaymentPosted::Applied(record)) | Some(PaymentPosted::AlreadyPosted(record)) => {
            Ok(Ok((LineStatus::Applied, record)))
        }
        Some(PaymentPosted::Refused(refusal)) => Ok(Err(refusal)),
        None => Err(StoreError::Conflict {
            what: format!(
                "a payment of account {} with reference {}",
                credit.account, credit.bank_reference
            ),
        }),
    }
}

#[async_trait]
impl Reconciliation for PgStore {
    async fn reconcile_credit(
        &self,
        line: &NewStatementLine,
    ) -> Result<LineReconciled, StoreError> {
        reconciliation::check_line(line)?;
        let mut tx = self.pool.begin().await?;
        let queued = reconciliation::queue_reason(&line.codes);
        // The fine's case row first, as every payment of it takes it.
        let standing = match (&queued, line.codes.first()) {
            (None, Some(code)) => standing(&mut tx, code).await?,
            _ => None,
        };
        if let Some(existing) =
            line_by_reference(&mut tx, &line.account, &line.bank_reference).await?
        {
            reconciliation::same_credit(&existing, line)?;
            let payment = match existing.payment_id {
                Some(id) => payment_by_id(&mut tx, id).await?,
                None => None,
            };
            return Ok(LineReconciled {
                line: existing,
                payment,
                repeat: true,
            });
        }
        let (status, payment, detail) = match (queued, &standing) {
            (Some((status, detail)), _) => (status, None, detail),
            (None, None) => {
                let refusal = PaymentRefusal::UnknownCode;
                (
                    reconciliation::refusal_status(&refusal),
                    None,
                    reconciliation::refusal_detail(&refusal),
                )
            }
            (None, Some(standing)) => {
                let code = line.codes.first().map(String::as_str).unwrap_or_default();
                match take_credit(
                    &mut tx,
                    standing,
                    &reconciliation::CreditPayment::of(line, code),
                )
                .await?
                {
                    Ok((status, payment)) => {
                        let detail = reconciliation::taken_detail(status, &payment);
                        (status, Some(payment), detail)
                    }
                    Err(refusal) => (
                        reconciliation::refusal_status(&refusal),
                        None,
                        reconciliation::refusal_detail(&refusal),
                    ),
                }
            }
        };
        let now = now_millis();
        let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO statement_lines (account, bank_reference, statement_id, booked_on, \
             amount_minor, currency, remittance, payer, status, payment_id, detail, \
             imported_at, imported_by, paid_on) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(&line.account)
        .bind(&line.bank_reference)
        .bind(&line.statement_id)
        .bind(line.booked_on)
        .bind(line.amount.minor)
        .bind(line.amount.currency.code())
        .bind(&line.remittance)
        .bind(&line.payer)
        .bind(status.as_str())
        .bind(payment.as_ref().map(|p| p.id))
        .bind(&detail)
        .bind(now)
        .bind(&line.imported_by)
        .bind(line.paid_on)
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => id,
            // A credit of this reference imported at this moment by another request (a
            // queued one: no fine's lock orders the two): that one's, if it is the same.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                tx.rollback().await?;
                let mut conn = self.pool.acquire().await?;
                let existing = line_by_reference(&mut conn, &line.account, &line.bank_reference)
                    .await?
                    .ok_or_else(|| {
                        crate::error::corrupt("a statement line's reference is taken by no row")
                    })?;
                // Another credit under the same reference is refused, as the check
                // before the insert refuses it where no other import raced this one.
                reconciliation::same_credit(&existing, line)?;
                let payment = match existing.payment_id {
                    Some(id) => payment_by_id(&mut conn, id).await?,
                    None => None,
                };
                return Ok(LineReconciled {
                    line: existing,
                    payment,
                    repeat: true,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut codes = line.codes.clone();
        codes.sort();
        codes.dedup();
        for code in &codes {
            sqlx::query("INSERT INTO statement_line_codes (line_id, payment_code) VALUES ($1, $2)")
                .bind(id)
                .bind(code)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(LineReconciled {
            line: reconciliation::record_of(line, id, codes, status, payment.as_ref(), detail, now),
            payment,
            repeat: false,
        })
    }

    async fn resolve_statement_line(
        &self,
        id: i64,
        resolution: &LineResolution,
        by: &str,
        note: &str,
    ) -> Result<Option<LineResolved>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(line_select!("WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(line) = line_where(&mut tx, row).await? else {
            return finish_unchanged(tx, Ok(None)).await;
        };
        if !line.status.queued() {
            return finish_unchanged(tx, Ok(Some(LineResolved::NotQueued(line)))).await;
        }
        let now = now_millis();
        let (status, payment, code) = match resolution {
            LineResolution::Dismiss => (LineStatus::Resolved, None, None),
            LineResolution::Apply { payment_code } => {
                let Some(standing) = standing(&mut tx, payment_code).await? else {
                    let refused = LineResolved::Refused(PaymentRefusal::UnknownCode);
                    return finish_unchanged(tx, Ok(Some(refused))).await;
                };
                match take_credit(
                    &mut tx,
                    &standing,
                    &reconciliation::CreditPayment::resolving(&line, payment_code, by),
                )
                .await?
                {
                    Ok((status, payment)) => (status, Some(payment), Some(payment_code)),
                    Err(refusal) => {
                        let refused = LineResolved::Refused(refusal);
                        return finish_unchanged(tx, Ok(Some(refused))).await;
                    }
                }
            }
        };
        sqlx::query(
            "UPDATE statement_lines SET status = $2, payment_id = $3, detail = $4, \
             resolved_at = $5, resolved_by = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(payment.as_ref().map(|p| p.id))
        .bind(note)
        .bind(now)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        if let Some(code) = code {
            sqlx::query(
                "INSERT INTO statement_line_codes (line_id, payment_code) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(code)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(line_select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let line = line_where(&mut tx, row)
            .await?
            .ok_or_else(|| crate::error::corrupt(format!("statement line {id} vanished")))?;
        tx.commit().await?;
        Ok(Some(LineResolved::Resolved(LineReconciled {
            line,
            payment,
            repeat: false,
        })))
    }

    async fn statement_lines(
        &self,
        queued_only: bool,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StatementLineRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let lines = sqlx::query(line_select!(
            "WHERE id > $1 AND (NOT $2 OR status IN ('unmatched', 'ambiguous', 'refused')) \
             ORDER BY id LIMIT $3"
        ))
        .bind(after_id)
        .bind(queued_only)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        with_codes(&mut conn, lines).await
    }

    async fn credits_naming(
        &self,
        account: &str,
        payment_code: &str,
        amount: Money,
    ) -> Result<Vec<(StatementLineRecord, Option<PaymentRecord>)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let lines = sqlx::query(line_select!(
            "WHERE account = $1 AND amount_minor = $2 AND currency = $3 \
             AND id IN (SELECT line_id FROM statement_line_codes WHERE payment_code = $4) \
             ORDER BY id"
        ))
        .bind(account)
        .bind(amount.minor)
        .bind(amount.currency.code())
        .bind(payment_code)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let lines = with_codes(&mut conn, lines).await?;
        let mut credits = Vec::with_capacity(lines.len());
        for line in lines {
            let payment = match line.payment_id {
                Some(id) => payment_by_id(&mut conn, id).await?,
                None => None,
            };
            credits.push((line, payment));
        }
        Ok(credits)
    }

    async fn statement_lines_booked(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatementLineRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let lines = sqlx::query(line_select!(
            "WHERE booked_on >= $1 AND booked_on <= $2 ORDER BY id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        with_codes(&mut conn, lines).await
    }

    async fn payments_paid(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        payments_paid(&mut *self.pool.acquire().await?, from, to).await
    }
}
