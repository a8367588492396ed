//! Bank statements reconciled with the ledger, shared by both backends. Each credit of
//! an imported statement is taken once per account and bank reference, under the lock
//! of the fine its remittance names:
//!
//! - the money a bank or provider already reported (over SOAP or the REST API: the same
//!   fine and amount, paid on the booking day or up to `BOOKING_LAG_DAYS` before, and
//!   matched to no credit yet) is **matched** to that payment: one payment seen twice
//!   counts once;
//! - otherwise it is **applied** as a payment of its own (channel `statement`);
//! - a credit naming no code, several codes, a code no resolution has, or money the fine
//!   cannot take (paid, closed, under appeal) is **queued** for finance, who apply it to
//!   a fine or resolve it otherwise (a refund to the payer). While a queued credit names
//!   a fine, the fine's clocks wait (the deadlines engine skips it, and no move to
//!   overdue or enforcement is applied): the money may be its payment.
//!
//! The other way round, a SOAP or API report of money a statement already booked (the
//! statement came first) is recorded as a second report of that payment
//! (`payment_reports`), so that it too counts once.

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CaseState, Jurisdiction, Money};
use serde::Serialize;

use crate::payments::{NewPayment, PaymentChannel, PaymentRecord, PaymentRefusal, Standing};
use crate::StoreError;

/// Action of the audit row written when finance resolves a queued credit.
pub const STATEMENT_LINE_RESOLVED: &str = "case.statement_credit_applied";

/// A statement's credit as imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStatementLine {
    pub account: String,
    pub statement_id: String,
    /// The bank's own id of the credit, unique within the account.
    pub bank_reference: String,
    pub booked_on: NaiveDate,
    pub amount: Money,
    pub remittance: String,
    pub payer: Option<String>,
    /// The valid payment codes the remittance names, in order.
    pub codes: Vec<String>,
    pub imported_by: String,
}

/// What became of a credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Posted as a payment of its own.
    Applied,
    /// The money of a payment reported earlier over SOAP or the API.
    Matched,
    /// Queued: no code, or a code no resolution has.
    Unmatched,
    /// Queued: several codes.
    Ambiguous,
    /// Queued: the fine it names cannot take the money.
    Refused,
    /// Taken off the queue by finance without a payment (returned to the payer).
    Resolved,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Applied => "applied",
            LineStatus::Matched => "matched",
            LineStatus::Unmatched => "unmatched",
            LineStatus::Ambiguous => "ambiguous",
            LineStatus::Refused => "refused",
            LineStatus::Resolved => "resolved",
        }
    }

    pub(crate) fn parse(raw: &str) -> Result<Self, StoreError> {
        [
            LineStatus::Applied,
            LineStatus::Matched,
            LineStatus::Unmatched,
            LineStatus::Ambiguous,
            LineStatus::Refused,
            LineStatus::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| crate::error::corrupt(format!("statement line status `{raw}`")))
    }

    /// Whether the credit waits for finance.
    pub fn queued(self) -> bool {
        matches!(
            self,
            LineStatus::Unmatched | LineStatus::Ambiguous | LineStatus::Refused
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementLineRecord {
    pub id: i64,
    pub account: String,
    pub statement_id: String,
    pub bank_reference: String,
    pub booked_on: NaiveDate,
    pub amount: Money,
    pub remittance: String,
    pub payer: Option<String>,
    pub codes: Vec<String>,
    pub status: LineStatus,
    pub payment_id: Option<i64>,
    /// Why it was queued, or how finance resolved it.
    pub detail: String,
    pub imported_at: DateTime<Utc>,
    pub imported_by: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

/// What reconciling a credit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineReconciled {
    pub line: StatementLineRecord,
    /// The payment it was applied as or matched to.
    pub payment: Option<PaymentRecord>,
    /// Imported before: nothing changed.
    pub repeat: bool,
}

/// How finance takes a credit off the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineResolution {
    /// The money pays the fine with this code (the payer wrote it wrong).
    Apply { payment_code: String },
    /// The money is not a fine's (returned to the payer, or booked elsewhere).
    Dismiss,
}

/// What resolving a queued credit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineResolved {
    Resolved(LineReconciled),
    /// The credit is not queued (applied, matched or resolved before).
    NotQueued(StatementLineRecord),
    /// The fine cannot take the money.
    Refused(PaymentRefusal),
}

/// Why a credit is queued, or `None` when it names exactly one code.
pub(crate) fn queue_reason(codes: &[String]) -> Option<(LineStatus, String)> {
    match codes {
        [] => Some((
            LineStatus::Unmatched,
            "the remittance names no payment code".to_owned(),
        )),
        [_] => None,
        several => Some((
            LineStatus::Ambiguous,
            format!(
                "the remittance names {} payment codes: {}",
                several.len(),
                several.join(", ")
            ),
        )),
    }
}

/// Why a credit whose fine refused it is queued.
pub(crate) fn refusal_detail(refusal: &PaymentRefusal) -> String {
    match refusal {
        PaymentRefusal::UnknownCode => "no resolution has the payment code".to_owned(),
        PaymentRefusal::Closed(state) => format!("the case is {state}: refund the payer"),
        PaymentRefusal::AlreadyPaid => "the fine is paid: refund the payer".to_owned(),
        PaymentRefusal::NotPayable(state) => {
            format!("the case is {state} and takes no payment now")
        }
        PaymentRefusal::IdReused(earlier) => format!(
            "the reference was used for payment {} of resolution {}",
            earlier.id, earlier.resolution_number
        ),
        other => format!("refused: {other:?}"),
    }
}

/// The status a credit is queued with when its fine refuses it.
pub(crate) fn refusal_status(refusal: &PaymentRefusal) -> LineStatus {
    match refusal {
        PaymentRefusal::UnknownCode => LineStatus::Unmatched,
        _ => LineStatus::Refused,
    }
}

pub(crate) fn check_line(line: &NewStatementLine) -> Result<(), StoreError> {
    for (what, value) in [
        ("account", &line.account),
        ("bank reference", &line.bank_reference),
        ("statement id", &line.statement_id),
        ("importer", &line.imported_by),
    ] {
        if value.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "a statement credit needs its {what}"
            )));
        }
    }
    if line.amount.minor <= 0 {
        return Err(StoreError::Invalid(format!(
            "a statement credit must be above zero, not {}",
            line.amount.minor
        )));
    }
    Ok(())
}

/// A credit's money as a payment of the statement channel: reported by the account,
/// under the bank's reference.
pub(crate) struct CreditPayment<'a> {
    pub payment_code: &'a str,
    pub account: &'a str,
    pub bank_reference: &'a str,
    pub amount: Money,
    pub booked_on: NaiveDate,
    pub posted_by: &'a str,
}

impl<'a> CreditPayment<'a> {
    pub(crate) fn of(line: &'a NewStatementLine, payment_code: &'a str) -> Self {
        CreditPayment {
            payment_code,
            account: &line.account,
            bank_reference: &line.bank_reference,
            amount: line.amount,
            booked_on: line.booked_on,
            posted_by: &line.imported_by,
        }
    }

    /// A queued credit finance applies.
    pub(crate) fn resolving(
        line: &'a StatementLineRecord,
        payment_code: &'a str,
        by: &'a str,
    ) -> Self {
        CreditPayment {
            payment_code,
            account: &line.account,
            bank_reference: &line.bank_reference,
            amount: line.amount,
            booked_on: line.booked_on,
            posted_by: by,
        }
    }

    pub(crate) fn payment(&self, standing: &Standing) -> NewPayment {
        NewPayment {
            payment_code: self.payment_code.to_owned(),
            channel: PaymentChannel::Statement,
            source: self.account.to_owned(),
            external_id: self.bank_reference.to_owned(),
            amount: self.amount,
            paid_at: booked_instant(standing.jurisdiction, self.booked_on),
            exact_only: false,
            intent: None,
            posted_by: self.posted_by.to_owned(),
        }
    }
}

/// What a taken credit's detail says.
pub(crate) fn taken_detail(status: LineStatus, payment: &PaymentRecord) -> String {
    match status {
        LineStatus::Matched => format!(
            "the money of payment {} reported by {} ({})",
            payment.id,
            payment.source,
            payment.channel.as_str()
        ),
        _ => format!("applied as payment {}", payment.id),
    }
}

/// The record of a credit just written.
pub(crate) fn record_of(
    line: &NewStatementLine,
    id: i64,
    codes: Vec<String>,
    status: LineStatus,
    payment: Option<&PaymentRecord>,
    detail: String,
    imported_at: DateTime<Utc>,
) -> StatementLineRecord {
    StatementLineRecord {
        id,
        account: line.account.clone(),
        statement_id: line.statement_id.clone(),
        bank_reference: line.bank_reference.clone(),
        booked_on: line.booked_on,
        amount: line.amount,
        remittance: line.remittance.clone(),
        payer: line.payer.clone(),
        codes,
        status,
        payment_id: payment.map(|p| p.id),
        detail,
        imported_at,
        imported_by: line.imported_by.clone(),
        resolved_at: None,
        resolved_by: None,
    }
}

/// When a statement's payer is taken to have paid: noon of the booking day on the
/// jurisdiction's clock (the bank books on the day paid or later, so the discount is
/// never taken from a payer by the booking).
pub(crate) fn booked_instant(jurisdiction: Jurisdiction, booked_on: NaiveDate) -> DateTime<Utc> {
    let noon = booked_on
        .and_hms_opt(12, 0, 0)
        .unwrap_or_default()
        .and_utc();
    noon - chrono::Duration::seconds(i64::from(jurisdiction.utc_offset_seconds()))
}

/// The earlier report of the same money, among `candidates` (the fine's standing
/// payments of the other channels, oldest first, with whether each already has a report
/// of `channel`): the first of the same amount paid within the booking lag.
pub(crate) fn twin(
    candidates: &[(PaymentRecord, bool)],
    jurisdiction: Jurisdiction,
    amount: Money,
    paid_on_or_booked_on: (Option<NaiveDate>, Option<NaiveDate>),
) -> Option<&PaymentRecord> {
    candidates
        .iter()
        .filter(|(payment, reported)| {
            !reported && payment.reversed_at.is_none() && payment.amount == amount
        })
        .map(|(payment, _)| payment)
        .find(|payment| {
            let day = jurisdiction.local_date(payment.paid_at);
            match paid_on_or_booked_on {
                // A statement's credit booked on `booked`: the payment paid before it.
                (None, Some(booked)) => kozomol_payments::books_the_payment(day, booked),
                // A bank's report of money paid on `paid`: the credit booked after it.
                (Some(paid), None) => kozomol_payments::books_the_payment(paid, day),
                _ => false,
            }
        })
}

/// The channels whose reports a credit of a statement may be the money of.
pub(crate) const REPORTING: [PaymentChannel; 2] = [PaymentChannel::Soap, PaymentChannel::Api];

/// A day's money by channel, and the day's credits by what became of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DayTotals {
    pub day: Option<NaiveDate>,
    /// Standing payments paid that day, by channel: (count, minor units).
    pub soap: (u64, i64),
    pub api: (u64, i64),
    pub statement: (u64, i64),
    /// Of the SOAP and API payments, those no statement credit has matched yet.
    pub awaiting_statement: (u64, i64),
    /// Credits booked that day: all, applied, matched, queued, resolved.
    pub credits: (u64, i64),
    pub credits_applied: (u64, i64),
    pub credits_matched: (u64, i64),
    pub credits_queued: (u64, i64),
    pub credits_resolved: (u64, i64),
}

impl DayTotals {
    /// Whether the day's credits are all accounted for: applied, matched, queued or
    /// resolved add up to what was booked, and the money applied from statements is the
    /// ledger's statement channel.
    pub fn balanced(&self) -> bool {
        let add = |a: (u64, i64), b: (u64, i64)| (a.0 + b.0, a.1 + b.1);
        add(
            add(self.credits_applied, self.credits_matched),
            add(self.credits_queued, self.credits_resolved),
        ) == self.credits
    }
}

fn add(total: &mut (u64, i64), minor: i64) {
    total.0 += 1;
    total.1 += minor;
}

/// Totals per day (of `jurisdiction`'s calendar) of the `payments` paid and the
/// `lines` booked, with `matched` the ids of payments a credit is the money of.
pub fn daily_totals(
    jurisdiction: Jurisdiction,
    payments: &[PaymentRecord],
    lines: &[StatementLineRecord],
) -> Vec<DayTotals> {
    let mut days: std::collections::BTreeMap<NaiveDate, DayTotals> = Default::default();
    let linked: std::collections::HashSet<i64> =
        lines.iter().filter_map(|l| l.payment_id).collect();
    for payment in payments.iter().filter(|p| p.reversed_at.is_none()) {
        let day = jurisdiction.local_date(payment.paid_at);
        let totals = days.entry(day).or_default();
        let minor = payment.amount.minor;
        match payment.channel {
            PaymentChannel::Soap => add(&mut totals.soap, minor),
            PaymentChannel::Api => add(&mut totals.api, minor),
            PaymentChannel::Statement => add(&mut totals.statement, minor),
        }
        if payment.channel != PaymentChannel::Statement && !linked.contains(&payment.id) {
            add(&mut totals.awaiting_statement, minor);
        }
    }
    for line in lines {
        let totals = days.entry(line.booked_on).or_default();
        let minor = line.amount.minor;
        add(&mut totals.credits, minor);
        match line.status {
            LineStatus::Applied => add(&mut totals.credits_applied, minor),
            LineStatus::Matched => add(&mut totals.credits_matched, minor),
            LineStatus::Resolved => add(&mut totals.credits_resolved, minor),
            _ => add(&mut totals.credits_queued, minor),
        }
    }
    days.into_iter()
        .map(|(day, totals)| DayTotals {
            day: Some(day),
            ..totals
        })
        .collect()
}

/// Whether a deadline's move to `to` escalates the fine (and so waits for a queued
/// credit naming it).
pub(crate) fn escalation(to: Option<CaseState>) -> bool {
    matches!(to, Some(CaseState::Overdue | CaseState::Enforcement))
}
