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
    /// The day the payer paid, where the statement says
    /// (`kozomol_payments::statement::paid_day`).
    pub paid_on: Option<NaiveDate>,
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

/// A line imported again must be the credit imported before under its reference: a
/// bank that reuses a reference (an entry number unique only within one statement)
/// would otherwise have a new credit taken as a repeat, and its money never counted.
pub(crate) fn same_credit(
    existing: &StatementLineRecord,
    line: &NewStatementLine,
) -> Result<(), StoreError> {
    if existing.amount == line.amount && existing.booked_on == line.booked_on {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "reference `{}` of account {} was imported before (line {}, {} booked on {}); \
         this credit is {} booked on {}: the bank reused the reference, so this credit \
         is not taken as a repeat, and must be booked by hand",
        line.bank_reference,
        line.account,
        existing.id,
        existing.amount,
        existing.booked_on,
        line.amount,
        line.booked_on
    )))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementLineRecord {
    pub id: i64,
    pub account: String,
    pub statement_id: String,
    pub bank_reference: String,
    pub booked_on: NaiveDate,
    pub paid_on: Option<NaiveDate>,
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
    // A payment is dated by it: never after the booking, nor before the booking lag.
    if let Some(paid_on) = line.paid_on {
        if !kozomol_payments::books_the_payment(paid_on, line.booked_on) {
            return Err(StoreError::Invalid(format!(
                "a credit booked on {} cannot have been paid on {paid_on}",
                line.booked_on
            )));
        }
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
    /// When the bank booked it: a report paid then or up to the lag before is its twin.
    pub booked_on: NaiveDate,
    /// The day the payer paid, where the statement says.
    pub paid_on: Option<NaiveDate>,
    pub posted_by: &'a str,
    /// The payment this credit's money was before it was reversed (a queued line
    /// finance applies again): the new payment gets a reference of its own, since the
    /// old one stays in the ledger, reversed, under the bank's.
    pub retaken_from: Option<i64>,
}

impl<'a> CreditPayment<'a> {
    pub(crate) fn of(line: &'a NewStatementLine, payment_code: &'a str) -> Self {
        CreditPayment {
            payment_code,
            account: &line.account,
            bank_reference: &line.bank_reference,
            amount: line.amount,
            booked_on: line.booked_on,
            paid_on: line.paid_on,
            posted_by: &line.imported_by,
            retaken_from: None,
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
            paid_on: line.paid_on,
            posted_by: by,
            retaken_from: line.payment_id,
        }
    }

    pub(crate) fn payment(&self, standing: &Standing) -> NewPayment {
        NewPayment {
            payment_code: self.payment_code.to_owned(),
            channel: PaymentChannel::Statement,
            source: self.account.to_owned(),
            external_id: match self.retaken_from {
                Some(reversed) => {
                    format!("{} (again after payment {reversed})", self.bank_reference)
                }
                None => self.bank_reference.to_owned(),
            },
            amount: self.amount,
            paid_at: noon_of(
                standing.jurisdiction,
                self.paid_on.unwrap_or(self.booked_on),
            ),
            exact_only: false,
            intent: None,
            posted_by: self.posted_by.to_owned(),
        }
    }
}

/// Why a credit taken as (or matched to) a payment later reversed is queued again.
pub(crate) fn requeued_detail(payment_id: i64, reason: &str) -> String {
    format!("its payment {payment_id} was reversed ({reason}): the account holds the money")
}

/// What a closed credit whose money the bank took back says.
pub(crate) fn taken_back_detail(payment_id: i64, reason: &str) -> String {
    format!("its payment {payment_id} was reversed: {reason}")
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
        paid_on: line.paid_on,
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

/// When a statement's payer is taken to have paid: noon of the day the statement says
/// they paid, else of the booking day, on the jurisdiction's clock. A statement without
/// the payer's day says when the bank booked the money, which may be days after:
/// where the bank reported the payment before the statement came (over SOAP), that
/// report is the payment and keeps the payer's day; a report after the statement is
/// matched to the statement's payment, whose day stands.
pub(crate) fn noon_of(jurisdiction: Jurisdiction, day: NaiveDate) -> DateTime<Utc> {
    let noon = day.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    noon - chrono::Duration::seconds(i64::from(jurisdiction.utc_offset_seconds()))
}

/// How the money being matched was seen.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seen<'a> {
    /// A statement's credit booked on `booked`, paid on `paid` where the statement
    /// says: its twin is a report of money paid then or before.
    BookedOn {
        booked: NaiveDate,
        paid: Option<NaiveDate>,
    },
    /// A bank's or provider's report of money paid that day: its twin is a credit booked
    /// then or after. `credits`: each statement payment's credit by payment id (such a
    /// payment is dated the day its payer paid where the statement said so; the booking
    /// day decides the twin); one not there was dated by its booking.
    PaidOn {
        paid: NaiveDate,
        credits: &'a std::collections::HashMap<i64, CreditDays>,
    },
}

/// A statement credit's days: booked, and paid where the statement says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CreditDays {
    pub booked: NaiveDate,
    pub paid: Option<NaiveDate>,
}

/// How well a credit's payer's day (where its statement says) agrees with a report's
/// day, best first: the same day, not said, another day. A prior among credits the
/// lag allows, not a filter: a bank may date a payment a day off.
fn payer_day_rank(credit_paid: Option<NaiveDate>, reported: NaiveDate) -> u8 {
    match credit_paid {
        Some(day) if day == reported => 0,
        None => 1,
        Some(_) => 2,
    }
}

/// The other sighting of the same money among `candidates` (the fine's standing
/// payments of the other kind; those in `twinned` have theirs already): the same amount,
/// within the booking lag; of those first the one whose payer's day the statement gives
/// as the report's, then the closest in time — so two equal payments of one fine are
/// each matched to their own credit.
pub(crate) fn twin<'a>(
    candidates: &'a [PaymentRecord],
    twinned: &std::collections::HashSet<i64>,
    jurisdiction: Jurisdiction,
    amount: Money,
    seen: Seen<'_>,
) -> Option<&'a PaymentRecord> {
    candidates
        .iter()
        .filter(|payment| {
            !twinned.contains(&payment.id)
                && payment.reversed_at.is_none()
                && payment.amount == amount
        })
        .filter_map(|payment| {
            let day = jurisdiction.local_date(payment.paid_at);
            let (paid, booked, rank) = match seen {
                Seen::BookedOn { booked, paid } => (day, booked, payer_day_rank(paid, day)),
                Seen::PaidOn { paid, credits } => match credits.get(&payment.id) {
                    Some(credit) => (paid, credit.booked, payer_day_rank(credit.paid, paid)),
                    None => (paid, day, payer_day_rank(None, paid)),
                },
            };
            kozomol_payments::books_the_payment(paid, booked)
                .then(|| ((rank, (booked - paid).num_days()), payment))
        })
        .min_by_key(|(order, payment)| (*order, payment.id))
        .map(|(_, payment)| payment)
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
    /// Whether the day reconciles: every credit booked is applied, matched, queued or
    /// resolved, and the money the statements applied is what the ledger's statement
    /// channel holds for the day (a statement payment reversed, or a credit applied
    /// twice, shows here).
    pub fn balanced(&self) -> bool {
        let add = |a: (u64, i64), b: (u64, i64)| (a.0 + b.0, a.1 + b.1);
        add(
            add(self.credits_applied, self.credits_matched),
            add(self.credits_queued, self.credits_resolved),
        ) == self.credits
            && self.credits_applied == self.statement
    }
}

fn add(total: &mut (u64, i64), minor: i64) {
    total.0 += 1;
    total.1 += minor;
}

/// Totals per day from `from` to `to` (of `jurisdiction`'s calendar) of the `payments`
/// paid and the `lines` booked. `lines` may reach past `to` (by the booking lag): those
/// count only as the credits that matched a payment of the range. A statement payment
/// counts on its credit's booking day (it is dated by its payer's day where the
/// statement said so), so `payments` should reach back by the booking lag before `from`.
pub fn daily_totals(
    jurisdiction: Jurisdiction,
    (from, to): (NaiveDate, NaiveDate),
    payments: &[PaymentRecord],
    lines: &[StatementLineRecord],
) -> Vec<DayTotals> {
    let mut days: std::collections::BTreeMap<NaiveDate, DayTotals> = Default::default();
    let linked: std::collections::HashSet<i64> =
        lines.iter().filter_map(|l| l.payment_id).collect();
    // A statement payment is dated by its payer's day where the statement said so: it
    // counts on the day its credit was booked, beside that credit.
    let booked: std::collections::HashMap<i64, NaiveDate> = lines
        .iter()
        .filter(|l| l.status == LineStatus::Applied)
        .filter_map(|l| l.payment_id.map(|id| (id, l.booked_on)))
        .collect();
    let in_range = |day: &NaiveDate| (from..=to).contains(day);
    for payment in payments.iter().filter(|p| p.reversed_at.is_none()) {
        let paid_on = jurisdiction.local_date(payment.paid_at);
        let day = match payment.channel {
            PaymentChannel::Statement => booked.get(&payment.id).copied().unwrap_or(paid_on),
            _ => paid_on,
        };
        if !in_range(&day) {
            continue;
        }
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
    for line in lines.iter().filter(|l| in_range(&l.booked_on)) {
        let totals = days.entry(line.booked_on).or_default();
        let minor = line.amount.minor;
        add(&mut totals.credits, minor);
        match line.status {
            LineStatus::Applied => add(&mut totals.credits_applied, minor),
            LineStatus::Matched => add(&mut totals.credits_matched, minor),
            LineStatus::Resolved => add(&mut totals.credits_resolved, minor),
            LineStatus::Unmatched | LineStatus::Ambiguous | LineStatus::Refused => {
                add(&mut totals.credits_queued, minor)
            }
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

#[cfg(test)]
mod tests {
    use kozomol_core::{CaseId, Currency};

    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a day")
    }

    fn payment(id: i64, channel: PaymentChannel, minor: i64, paid: &str) -> PaymentRecord {
        PaymentRecord {
            id,
            resolution_number: format!("R{id}"),
            case_id: CaseId(id),
            channel,
            source: "bank".into(),
            external_id: format!("x{id}"),
            amount: Money::new(minor, Currency::KGS),
            paid_at: noon_of(Jurisdiction::Kg, day(paid)),
            posted_at: DateTime::UNIX_EPOCH,
            posted_by: "t".into(),
            from_state: CaseState::Issued,
            to_state: CaseState::Paid,
            excess_minor: 0,
            reversed_at: None,
        }
    }

    fn line(
        id: i64,
        status: LineStatus,
        minor: i64,
        booked: &str,
        payment_id: Option<i64>,
    ) -> StatementLineRecord {
        StatementLineRecord {
            id,
            account: "KG1".into(),
            statement_id: "S".into(),
            bank_reference: format!("B{id}"),
            booked_on: day(booked),
            paid_on: None,
            amount: Money::new(minor, Currency::KGS),
            remittance: String::new(),
            payer: None,
            codes: Vec::new(),
            status,
            payment_id,
            detail: String::new(),
            imported_at: DateTime::UNIX_EPOCH,
            imported_by: "f".into(),
            resolved_at: None,
            resolved_by: None,
        }
    }

    #[test]
    fn days_balance_only_when_the_statements_money_is_the_ledgers() {
        let range = (day("2026-03-10"), day("2026-03-11"));
        let payments = vec![
            payment(1, PaymentChannel::Soap, 250_000, "2026-03-10"),
            payment(2, PaymentChannel::Statement, 500_000, "2026-03-10"),
            payment(3, PaymentChannel::Api, 100_000, "2026-03-11"),
            // Dated by its payer's day, the 9th; booked on the 10th.
            payment(4, PaymentChannel::Statement, 300_000, "2026-03-09"),
        ];
        let lines = vec![
            line(1, LineStatus::Applied, 500_000, "2026-03-10", Some(2)),
            line(4, LineStatus::Applied, 300_000, "2026-03-10", Some(4)),
            line(2, LineStatus::Unmatched, 7_000, "2026-03-10", None),
            // Booked after the range: it only says payment 1's money came.
            line(3, LineStatus::Matched, 250_000, "2026-03-12", Some(1)),
        ];
        let days = daily_totals(Jurisdiction::Kg, range, &payments, &lines);
        assert_eq!(days.len(), 2);
        let tenth = &days[0];
        assert_eq!(
            (tenth.soap, tenth.statement, tenth.awaiting_statement),
            ((1, 250_000), (2, 800_000), (0, 0))
        );
        assert_eq!(
            (tenth.credits, tenth.credits_applied, tenth.credits_queued),
            ((3, 807_000), (2, 800_000), (1, 7_000))
        );
        assert!(tenth.balanced());
        // The API payment of the 11th has no credit yet.
        assert_eq!(days[1].awaiting_statement, (1, 100_000));
        assert!(days[1].balanced());

        // The statement's payment reversed, its credit still applied: the day is off.
        let mut reversed = payments.clone();
        reversed[1].reversed_at = Some(DateTime::UNIX_EPOCH);
        let days = daily_totals(Jurisdiction::Kg, range, &reversed, &lines);
        assert!(!days[0].balanced());
    }

    #[test]
    fn the_closest_payment_in_time_is_the_twin() {
        let candidates = vec![
            payment(1, PaymentChannel::Soap, 250_000, "2026-03-01"),
            payment(2, PaymentChannel::Soap, 250_000, "2026-03-05"),
            payment(3, PaymentChannel::Soap, 250_000, "2026-03-06"),
            payment(4, PaymentChannel::Soap, 100_000, "2026-03-06"),
        ];
        let twinned = std::collections::HashSet::from([3]);
        let twin_of = |seen| {
            twin(
                &candidates,
                &twinned,
                Jurisdiction::Kg,
                Money::new(250_000, Currency::KGS),
                seen,
            )
            .map(|p| p.id)
        };
        let booked_on = |booked: &str, paid: Option<&str>| Seen::BookedOn {
            booked: day(booked),
            paid: paid.map(day),
        };
        // (credit booked, its payer's day, the report that is its twin)
        let credits = [
            // The payment of the 5th, not the 1st (also within the lag), nor the 6th's
            // (matched already) or another amount.
            ("2026-03-06", None, Some(2)),
            ("2026-03-02", None, Some(1)),
            ("2026-02-28", None, None),
            ("2026-03-12", None, None),
            // The statement says the 1st: that report, though the 5th's is closer.
            ("2026-03-06", Some("2026-03-01"), Some(1)),
            // A payer's day no report has is no filter: the closest still.
            ("2026-03-06", Some("2026-03-03"), Some(2)),
        ];
        for (booked, paid, expected) in credits {
            assert_eq!(
                twin_of(booked_on(booked, paid)),
                expected,
                "{booked} {paid:?}"
            );
        }
        // Paid on the 1st: the credit booked closest after.
        let dated_by_booking = std::collections::HashMap::new();
        let paid_on = |paid: &str| Seen::PaidOn {
            paid: day(paid),
            credits: &dated_by_booking,
        };
        assert_eq!(twin_of(paid_on("2026-03-01")), Some(1));
        assert_eq!(twin_of(paid_on("2026-03-04")), Some(2));
        // A credit dated by its payer's day (the 5th) but booked on the 8th is the twin
        // of a report of money paid on the 7th: the booking day decides.
        let credits = std::collections::HashMap::from([(
            2,
            CreditDays {
                booked: day("2026-03-08"),
                paid: Some(day("2026-03-05")),
            },
        )]);
        let seen = Seen::PaidOn {
            paid: day("2026-03-07"),
            credits: &credits,
        };
        assert_eq!(twin_of(seen), Some(2));
        assert_eq!(twin_of(paid_on("2026-03-07")), None);
    }

    #[test]
    fn equal_credits_booked_together_go_to_the_report_of_their_payers_day() {
        // Two equal credits of one fine booked on the 10th, the statement saying one
        // was paid on the 9th and one on the 10th, each dated by its payer's day.
        let candidates = vec![
            payment(1, PaymentChannel::Statement, 250_000, "2026-03-09"),
            payment(2, PaymentChannel::Statement, 250_000, "2026-03-10"),
        ];
        let days = |paid: Option<&str>| CreditDays {
            booked: day("2026-03-10"),
            paid: paid.map(day),
        };
        let said = std::collections::HashMap::from([
            (1, days(Some("2026-03-09"))),
            (2, days(Some("2026-03-10"))),
        ]);
        let unsaid = std::collections::HashMap::from([(1, days(None)), (2, days(None))]);
        let one_said = std::collections::HashMap::from([
            (1, days(None)),
            (
                2,
                CreditDays {
                    booked: day("2026-03-11"),
                    paid: Some(day("2026-03-10")),
                },
            ),
        ]);
        // (credits, twinned already, the report's day, its twin)
        let table = [
            (&said, vec![], "2026-03-10", Some(2)),
            (&said, vec![], "2026-03-09", Some(1)),
            (&said, vec![2], "2026-03-10", Some(1)),
            // The other taken: the payer's day is a prior, not a filter.
            (&said, vec![1], "2026-03-09", Some(2)),
            // Neither says: the lower id, as before.
            (&unsaid, vec![], "2026-03-10", Some(1)),
            // The credit whose payer's day is the report's, though booked a day later.
            (&one_said, vec![], "2026-03-10", Some(2)),
        ];
        for (credits, twinned, paid, expected) in table {
            let twinned: std::collections::HashSet<i64> = twinned.into_iter().collect();
            let found = twin(
                &candidates,
                &twinned,
                Jurisdiction::Kg,
                Money::new(250_000, Currency::KGS),
                Seen::PaidOn {
                    paid: day(paid),
                    credits,
                },
            )
            .map(|p| p.id);
            assert_eq!(found, expected, "{paid} twinned {twinned:?}");
        }
    }
}
