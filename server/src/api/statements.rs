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
    PaymentReversal, PaymentReversed, StatementLineRecord,
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
    /// The payment the credit became was reversed (the fine is owed again as its money
    /// left decides), and the credit closed.
    Reversed,
    /// The payment the credit became was reversed before (this statement imported
    /// again, or a reversal reported otherwise).
    AlreadyReversed,
    /// The credit had paid no fine (it waited in finance's queue): closed.
    Dismissed,
    /// The credit was taken off the queue before.
    AlreadySettled,
    /// No credit to the account of this sum named the one payment code the reversal
    /// names (or it names none, or several): finance finds the credit.
    NoCredit,
    /// Several credits of this sum named the code: finance decides which went back.
    Ambiguous,
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

/// A credit the bank took back, found by what finance can trust: the one credit to the
/// same account of the same sum that named the payment code the reversal names. The
/// payment it became (its own, or the report it was matched to, for whichever fine
/// finance applied it) is reversed, audited, and the fine owed again as the money left
/// decides; the credit is closed, so no one applies money that is gone. No such
/// credit, or several, is finance's to settle, named in the answer.
async fn take_back(
    state: &ApiState,
    statement: &Statement,
    reversal: &StatementCredit,
    by: &str,
) -> Result<ReversalOutcome, ApiError> {
    let answer = |outcome, payment_id, detail: String| {
        if !matches!(
            outcome,
            TakenBack::Reversed
                | TakenBack::AlreadyReversed
                | TakenBack::Dismissed
                | TakenBack::AlreadySettled
        ) {
            warn!(statement = %statement.id, reference = %reversal.bank_reference, "a credit the bank took back is left to finance: {detail}");
        }
        ReversalOutcome {
            bank_reference: reversal.bank_reference.clone(),
            amount_minor: reversal.amount.minor,
            currency: reversal.amount.currency.code(),
            outcome,
            payment_id,
            detail,
        }
    };
    let sum = kozomol_payments::format_decimal(reversal.amount);
    let codes = PaymentCode::find_in(&reversal.remittance);
    let [code] = codes.as_slice() else {
        return Ok(answer(
            TakenBack::NoCredit,
            None,
            format!("it names {} payment codes, not one", codes.len()),
        ));
    };
    let store = &state.app.store;
    let credits = store
        .credits_naming(&statement.account, &code.to_string(), reversal.amount)
        .await?;
    let (line, payment) = match credits.as_slice() {
        [] => {
            return Ok(answer(
                TakenBack::NoCredit,
                None,
                format!(
                    "no credit of {sum} to {} named code {code}",
                    statement.account
                ),
            ))
        }
        [one] => one,
        several => {
            let lines: Vec<String> = several.iter().map(|(l, _)| l.id.to_string()).collect();
            return Ok(answer(
                TakenBack::Ambiguous,
                None,
                format!(
                    "credits {} of {sum} all named code {code}",
                    lines.join(", ")
                ),
            ));
        }
    };
    let note = format!(
        "the bank took the credit back (statement {}, entry {})",
        statement.id, reversal.bank_reference
    );
    // A credit still queued (one that paid no fine, or whose payment a reversal
    // reported otherwise put back) is closed: its money is gone, and no one may apply
    // it to a fine. One taken off the queue meanwhile is left as it is.
    let close = || async {
        match store
            .resolve_statement_line(line.id, &LineResolution::Dismiss, by, &note)
            .await?
        {
            None => Err(ApiError::Internal(format!(
                "credit {} is not stored",
                line.id
            ))),
            // Applied to a fine meanwhile (a payment other than the one it names here).
            Some(LineResolved::NotQueued(now))
                if now.payment_id.is_some() && now.payment_id != line.payment_id =>
            {
                Err(ApiError::Conflict(format!(
                    "credit {} was applied to a fine meanwhile: import the statement again",
                    line.id
                )))
            }
            Some(_) => Ok(()),
        }
    };
    let outcome = match payment {
        None if line.status == LineStatus::Resolved => (
            TakenBack::AlreadySettled,
            None,
            format!("credit {} was taken off the queue before", line.id),
        ),
        None => {
            close().await?;
            (
                TakenBack::Dismissed,
                None,
                format!("credit {} closed", line.id),
            )
        }
        Some(payment) if payment.reversed_at.is_some() => {
            close().await?;
            (
                TakenBack::AlreadyReversed,
                Some(payment.id),
                format!("payment {} was reversed before", payment.id),
            )
        }
        Some(payment) => {
            let Some(fine) = store.resolution(&payment.resolution_number).await? else {
                return Err(ApiError::Internal(format!(
                    "payment {} names resolution {}, which is not stored",
                    payment.id, payment.resolution_number
                )));
            };
            let reversed = store
                .reverse_payment(&PaymentReversal {
                    payment_code: fine.payment_code,
                    channel: payment.channel,
                    source: payment.source.clone(),
                    external_id: Some(payment.external_id.clone()),
                    amount: Some(payment.amount),
                    paid_at: None,
                    reversal_id: Some(reversal.bank_reference.clone()),
                    reason: note.clone(),
                    reversed_by: by.to_owned(),
                    restart_clock: kozomol_fines::clocks::restart_clock,
                    // Its credit is closed in the same transaction.
                    money_left: true,
                })
                .await?;
            match reversed {
                PaymentReversed::Reversed { to_state, .. } => {
                    info!(statement = %statement.id, reference = %reversal.bank_reference, payment = payment.id, case_state = %to_state, "{note}");
                    (
                        TakenBack::Reversed,
                        Some(payment.id),
                        format!(
                            "payment {} of {} reversed; the case is {to_state}",
                            payment.id, payment.resolution_number
                        ),
                    )
                }
                PaymentReversed::AlreadyReversed(_) => {
                    close().await?;
                    (
                        TakenBack::AlreadyReversed,
                        Some(payment.id),
                        format!("payment {} was reversed before", payment.id),
                    )
                }
                PaymentReversed::NotReversible(case_state) => (
                    TakenBack::NotReversible,
                    Some(payment.id),
                    format!(
                        "payment {} of {}: the case is {case_state}, its money went back already; recover this by hand",
                        payment.id, payment.resolution_number
                    ),
                ),
                PaymentReversed::UnknownCode | PaymentReversed::NoPayment => {
                    return Err(ApiError::Internal(format!(
                        "payment {} of credit {} was not found to reverse",
                        payment.id, line.id
                    )))
                }
            }
        }
    };
    let (outcome, payment_id, detail) = outcome;
    Ok(answer(outcome, payment_id, detail))
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
