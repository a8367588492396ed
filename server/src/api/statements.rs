//! Reconciliation for finance: bank statements of the city's account imported
//! (camt.053 or CSV) and matched to fines by the payment code in each credit's
//! remittance; the queue of credits no fine took; and the daily totals per channel
//! that reconcile the statements to the ledger.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::{Datelike, Days, NaiveDate};
use kozomol_payments::statement::StatementCredit;
use kozomol_payments::statement::BOOKING_LAG_DAYS;
use kozomol_payments::{parse_camt053, parse_csv, PaymentCode, Statement, StatementError};
use kozomol_store::{
    daily_totals, DayTotals, LineResolution, LineResolved, LineStatus, NewStatementLine,
    PaymentChannel, PaymentReversal, PaymentReversed, StatementLineRecord,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::access::{Authorized, Finance, FinanceReaders};
use super::paging::{after_page, AfterPage, AfterQuery};
use super::{json_body, text_field, ApiError, ApiState, FieldProblem};

/// A statement's file may be this large (a month of a busy account in camt.053).
pub const MAX_STATEMENT_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    /// `camt053` or `csv`; by default from the content type.
    format: Option<String>,
    /// The account a CSV statement is of (camt.053 names its own).
    account: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LineOutcome {
    id: i64,
    bank_reference: String,
    status: LineStatus,
    payment_id: Option<i64>,
    detail: String,
    /// Imported before: nothing changed.
    repeat: bool,
}

#[derive(Debug, Serialize)]
pub struct Imported {
    account: String,
    statement_id: String,
    credits: usize,
    /// Debits, reversed debits and entries not booked, left out.
    skipped: usize,
    applied: usize,
    matched: usize,
    queued: usize,
    repeats: usize,
    lines: Vec<LineOutcome>,
    /// The credits the bank took back, and what each did to the fine it names.
    reversals: Vec<ReversalOutcome>,
}

/// What a credit the bank took back did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TakenBack {
    /// The fine's payment of this sum from the account was reversed: the fine is owed
    /// again as its money left decides, and the credit is back in finance's queue.
    Reversed,
    /// The payment it names was reversed before (this statement imported again, or a
    /// reversal reported otherwise).
    AlreadyReversed,
    /// No payment code, several, or one no resolution has: finance finds the credit.
    NoFine,
    /// The fine has no payment of this sum from the account (its credit was queued):
    /// finance takes the queued credit off the queue.
    NoPayment,
    /// The fine's money went back already (refunded): finance recovers it by hand.
    NotReversible,
}

#[derive(Debug, Serialize)]
pub struct ReversalOutcome {
    bank_reference: String,
    amount_minor: i64,
    currency: &'static str,
    outcome: TakenBack,
    payment_id: Option<i64>,
    detail: String,
}

fn statement_of(
    headers: &HeaderMap,
    query: &ImportQuery,
    body: &[u8],
    jurisdiction: kozomol_core::Jurisdiction,
) -> Result<Statement, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let format = match query.format.as_deref() {
        Some(format) => format.to_owned(),
        None if content_type.contains("xml") => "camt053".to_owned(),
        None if content_type.contains("csv") => "csv".to_owned(),
        None => {
            return Err(ApiError::BadRequest(
                "say the statement's format: ?format=camt053 or csv, or its content type".into(),
            ))
        }
    };
    let parsed = match format.as_str() {
        "camt053" => parse_camt053(body, jurisdiction),
        "csv" => {
            let account = query.account.as_deref().unwrap_or("");
            let id = hex::encode(Sha256::digest(body));
            parse_csv(body, account, &id)
        }
        other => {
            return Err(ApiError::InvalidQuery(vec![FieldProblem::new(
                "format",
                format!("`{other}`: camt053 or csv"),
            )]))
        }
    };
    parsed.map_err(|e| match e {
        StatementError::Problems(problems) => ApiError::Validation(
            problems
                .into_iter()
                .map(|p| FieldProblem::new("statement", p))
                .collect(),
        ),
        other => ApiError::Validation(vec![FieldProblem::new("statement", other.to_string())]),
    })
}

/// `POST /api/v1/statements?format=camt053|csv&account=…`: the statement's credits,
/// each applied, matched to a payment reported earlier, or queued. Importing a
/// statement again changes nothing.
pub async fn import(
    caller: Authorized<Finance>,
    State(state): State<ApiState>,
    Query(query): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    let statement = statement_of(&headers, &query, &body, state.app.jurisdiction)?;
    let mut imported = Imported {
        account: statement.account.clone(),
        statement_id: statement.id.clone(),
        credits: statement.credits.len(),
        skipped: statement.skipped,
        applied: 0,
        matched: 0,
        queued: 0,
        repeats: 0,
        lines: Vec::with_capacity(statement.credits.len()),
        reversals: Vec::with_capacity(statement.reversals.len()),
    };
    let by = caller.account.login.clone();
    for credit in &statement.credits {
        let codes = PaymentCode::find_in(&credit.remittance)
            .into_iter()
            .map(|c| c.to_string())
            .collect();
        let reconciled = state
            .app
            .store
            .reconcile_credit(&NewStatementLine {
                account: statement.account.clone(),
                statement_id: statement.id.clone(),
                bank_reference: credit.bank_reference.clone(),
                booked_on: credit.booked_on,
                paid_on: credit.paid_on(state.app.jurisdiction),
                amount: credit.amount,
                remittance: credit.remittance.clone(),
                payer: credit.payer.clone(),
                codes,
                imported_by: by.clone(),
            })
            .await?;
        let line = reconciled.line;
        if reconciled.repeat {
            imported.repeats += 1;
        } else {
            match line.status {
                LineStatus::Applied => imported.applied += 1,
                LineStatus::Matched => imported.matched += 1,
                _ => imported.queued += 1,
            }
        }
        imported.lines.push(LineOutcome {
            id: line.id,
            bank_reference: line.bank_reference,
            status: line.status,
            payment_id: line.payment_id,
            detail: line.detail,
            repeat: reconciled.repeat,
        });
    }
    // After the credits: a statement may list a credit and, later the same day, its
    // reversal.
    for reversal in &statement.reversals {
        let outcome = take_back(&state, &statement, reversal, &by).await?;
        imported.reversals.push(outcome);
    }
    Ok((StatusCode::OK, Json(imported)))
}

/// A credit the bank took back: the fine's payment of that sum from the account (its
/// own, or the reported payment the credit was matched to) is reversed, audited, and
/// the fine is owed again as the money left decides. What cannot be tied to one
/// payment is left to finance, named in the answer.
async fn take_back(
    state: &ApiState,
    statement: &Statement,
    reversal: &StatementCredit,
    by: &str,
) -> Result<ReversalOutcome, ApiError> {
    let answer = |outcome, payment_id, detail: String| ReversalOutcome {
        bank_reference: reversal.bank_reference.clone(),
        amount_minor: reversal.amount.minor,
        currency: reversal.amount.currency.code(),
        outcome,
        payment_id,
        detail,
    };
    let codes = PaymentCode::find_in(&reversal.remittance);
    let [code] = codes.as_slice() else {
        let detail = format!(
            "the bank took back {} ({}) naming {} payment codes: finance finds the credit it reverses",
            kozomol_payments::format_decimal(reversal.amount),
            reversal.bank_reference,
            codes.len()
        );
        warn!(statement = %statement.id, reference = %reversal.bank_reference, "{detail}");
        return Ok(answer(TakenBack::NoFine, None, detail));
    };
    let reason = format!(
        "the bank took the credit back (statement {}, entry {})",
        statement.id, reversal.bank_reference
    );
    let reversed = state
        .app
        .store
        .reverse_payment(&PaymentReversal {
            payment_code: code.to_string(),
            channel: PaymentChannel::Statement,
            source: statement.account.clone(),
            // The account's latest payment of this sum to the fine: a statement names
            // no payment of its own, and the entry's reference finds the one it took
            // back when the statement is imported again.
            external_id: None,
            amount: Some(reversal.amount),
            paid_at: None,
            reversal_id: Some(reversal.bank_reference.clone()),
            reason: reason.clone(),
            reversed_by: by.to_owned(),
            restart_clock: kozomol_fines::clocks::restart_clock,
        })
        .await?;
    Ok(match reversed {
        PaymentReversed::Reversed {
            payment, to_state, ..
        } => {
            info!(statement = %statement.id, reference = %reversal.bank_reference, payment = payment.id, case_state = %to_state, "{reason}");
            answer(
                TakenBack::Reversed,
                Some(payment.id),
                format!(
                    "payment {} of {} reversed; the case is {to_state}",
                    payment.id, payment.resolution_number
                ),
            )
        }
        PaymentReversed::AlreadyReversed(payment) => answer(
            TakenBack::AlreadyReversed,
            Some(payment.id),
            format!("payment {} was reversed before", payment.id),
        ),
        PaymentReversed::UnknownCode => {
            let detail = format!("no resolution has the payment code {code}");
            warn!(statement = %statement.id, reference = %reversal.bank_reference, "the bank took a credit back: {detail}");
            answer(TakenBack::NoFine, None, detail)
        }
        PaymentReversed::NoPayment => {
            let detail = format!(
                "the fine with code {code} has no payment of {} from this account: take its queued credit off the queue",
                kozomol_payments::format_decimal(reversal.amount)
            );
            warn!(statement = %statement.id, reference = %reversal.bank_reference, "the bank took a credit back: {detail}");
            answer(TakenBack::NoPayment, None, detail)
        }
        PaymentReversed::NotReversible(case_state) => {
            let detail = format!(
                "the case of code {code} is {case_state}: its money went back already, recover this by hand"
            );
            warn!(statement = %statement.id, reference = %reversal.bank_reference, "the bank took a credit back: {detail}");
            answer(TakenBack::NotReversible, None, detail)
        }
    })
}

#[derive(Debug, Deserialize)]
pub struct LineQuery {
    /// Only the credits waiting for finance.
    queued: Option<bool>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/statement-lines?queued=true&after=ID&limit=N`.
pub async fn lines(
    _caller: Authorized<FinanceReaders>,
    State(state): State<ApiState>,
    Query(query): Query<LineQuery>,
) -> Result<Json<AfterPage<StatementLineRecord>>, ApiError> {
    let (after, limit) = AfterQuery {
        after: query.after,
        limit: query.limit,
    }
    .bounds()?;
    let items = state
        .app
        .store
        .statement_lines(query.queued.unwrap_or(false), after, limit)
        .await?;
    Ok(Json(after_page(items, limit, |l| l.id)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    /// `apply` (with `payment_code`) or `dismiss`.
    action: String,
    payment_code: Option<String>,
    /// Why: required.
    note: Option<String>,
}

/// `POST /api/v1/statement-lines/{id}/resolution`: finance applies a queued credit to
/// the fine it was meant for, or takes it off the queue (returned to the payer).
pub async fn resolve(
    caller: Authorized<Finance>,
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    body: Result<Json<ResolutionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<StatementLineRecord>, ApiError> {
    let body = json_body(body)?;
    let mut problems = Vec::new();
    let note = text_field(&mut problems, "note", body.note, 2000, Some("say why"));
    let resolution = match body.action.as_str() {
        "apply" => match body.payment_code.as_deref().map(str::trim) {
            Some(code) => match PaymentCode::parse(code) {
                Ok(code) => Some(LineResolution::Apply {
                    payment_code: code.to_string(),
                }),
                Err(e) => {
                    problems.push(FieldProblem::new("payment_code", e.to_string()));
                    None
                }
            },
            None => {
                problems.push(FieldProblem::new(
                    "payment_code",
                    "the fine to apply the credit to",
                ));
                None
            }
        },
        "dismiss" => Some(LineResolution::Dismiss),
        other => {
            problems.push(FieldProblem::new(
                "action",
                format!("`{other}`: apply or dismiss"),
            ));
            None
        }
    };
    let (Some(note), Some(resolution), true) = (note, resolution, problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let by = caller.account.login.clone();
    match state
        .app
        .store
        .resolve_statement_line(id, &resolution, &by, &note)
        .await?
    {
        None => Err(ApiError::NotFound(format!("statement line {id}"))),
        Some(LineResolved::Resolved(done)) => Ok(Json(done.line)),
        Some(LineResolved::NotQueued(line)) => Err(ApiError::Conflict(format!(
            "statement line {id} is {}, not queued",
            line.status.as_str()
        ))),
        Some(LineResolved::Refused(refusal)) => Err(refusal.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct TotalsQuery {
    from: NaiveDate,
    to: NaiveDate,
}

/// The longest range one totals request covers.
const MAX_TOTALS_DAYS: u64 = 62;

#[derive(Debug, Serialize)]
pub struct Totals {
    /// The currency of every sum (the jurisdiction's).
    currency: &'static str,
    days: Vec<DayTotals>,
    /// Whether every day's credits are accounted for.
    balanced: bool,
}

/// `GET /api/v1/payment-totals?from=YYYY-MM-DD&to=YYYY-MM-DD`: per day of the
/// jurisdiction's calendar, the money of each channel and the credits booked.
pub async fn totals(
    _caller: Authorized<FinanceReaders>,
    State(state): State<ApiState>,
    Query(query): Query<TotalsQuery>,
) -> Result<Json<Totals>, ApiError> {
    // Days kozomol could have taken money on: far outside, the instants below (less the
    // offset and the booking lag) would leave chrono's range.
    let plausible = |day: NaiveDate| (2000..2200).contains(&day.year());
    if !plausible(query.from) || !plausible(query.to) {
        return Err(ApiError::InvalidQuery(vec![FieldProblem::new(
            "from",
            "`from` and `to` are days between the years 2000 and 2199",
        )]));
    }
    let last = query.from.checked_add_days(Days::new(MAX_TOTALS_DAYS - 1));
    if query.to < query.from || last.is_some_and(|last| query.to > last) {
        return Err(ApiError::InvalidQuery(vec![FieldProblem::new(
            "to",
            format!("on or after `from`, at most {MAX_TOTALS_DAYS} days in all"),
        )]));
    }
    let jurisdiction = state.app.jurisdiction;
    let offset = chrono::Duration::seconds(i64::from(jurisdiction.utc_offset_seconds()));
    let start = query
        .from
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        - offset;
    let end = query
        .to
        .checked_add_days(Days::new(1))
        .unwrap_or(query.to)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        - offset;
    let store = &state.app.store;
    // From the booking lag before the range: a statement payment dated by its payer's
    // day counts on its credit's booking day, up to the lag later.
    let lag = chrono::Duration::days(BOOKING_LAG_DAYS as i64);
    let payments = store.payments_paid(start - lag, end).await?;
    // Credits booked up to the booking lag after the range may be the money of its
    // payments.
    let lag_end = query
        .to
        .checked_add_days(Days::new(BOOKING_LAG_DAYS))
        .unwrap_or(query.to);
    let lines = store.statement_lines_booked(query.from, lag_end).await?;
    let days = daily_totals(jurisdiction, (query.from, query.to), &payments, &lines);
    let balanced = days.iter().all(DayTotals::balanced);
    Ok(Json(Totals {
        currency: jurisdiction.currency().code(),
        days,
        balanced,
    }))
}
