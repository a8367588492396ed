//! The payments ledger, shared by both backends: a payment reported for a resolution
//! (by its payment code) is recorded once per the reporter's own id of it, applied to
//! the fine by `kozomol_payments`' settlement rule in the same transaction that moves
//! the case and writes its audit row. The case's row is locked first, so two reports of
//! one fine are applied one after the other, each seeing what the other paid; a report
//! repeated finds its row and changes nothing.
//!
//! A payment that settles the fine moves the case to `paid` or `paid_discounted`. A
//! part payment moves a delivered case whose clocks are dated to `partially_paid`
//! (which the deadlines engine runs like `delivered`); in any other state it moves
//! nothing, so a case still waiting for delivery or dating keeps its place in those
//! queues, and an overdue case or one in enforcement is not sent round those moves
//! again. An appeal forfeits the discount for every payment paid at or after its filing.

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CaseId, CaseState, Money};
use kozomol_payments::{check_payment, Due, PaidSoFar, Settlement};
use serde::Serialize;

use crate::appeals::{StoredClock, CLOSED};
use crate::StoreError;

/// Action of the audit row written when a payment is applied.
pub const PAYMENT_POSTED: &str = "case.payment_posted";
/// Action of the audit row written when a payment is reversed.
pub const PAYMENT_REVERSED: &str = "case.payment_reversed";

/// The states a payment is taken in: the resolution stands and is unpaid.
pub const PAYABLE: [CaseState; 6] = [
    CaseState::Issued,
    CaseState::Delivered,
    CaseState::PartiallyPaid,
    CaseState::Overdue,
    CaseState::Enforcement,
    CaseState::AppealRejected,
];

/// How a payment reached kozomol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentChannel {
    /// A bank over Tunduk (`setPaymentLegal`).
    Soap,
    /// A payment provider over the REST payment API.
    Api,
    /// A line of an imported bank statement.
    Statement,
}

impl PaymentChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentChannel::Soap => "soap",
            PaymentChannel::Api => "api",
            PaymentChannel::Statement => "statement",
        }
    }

    pub(crate) fn parse(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "soap" => Ok(PaymentChannel::Soap),
            "api" => Ok(PaymentChannel::Api),
            "statement" => Ok(PaymentChannel::Statement),
            other => Err(crate::error::corrupt(format!("payment channel `{other}`"))),
        }
    }
}

/// A payment as its reporter gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPayment {
    pub payment_code: String,
    pub channel: PaymentChannel,
    /// Who reports it: the bank's X-Road client, the provider's id, the statement's
    /// account.
    pub source: String,
    /// The reporter's own id of this payment; the same id again is the same payment.
    pub external_id: String,
    pub amount: Money,
    /// When the payer paid (the bank's time); it decides the discount.
    pub paid_at: DateTime<Utc>,
    /// Take only the exact amount outstanding (Tunduk's contract): more or less is
    /// refused, not applied.
    pub exact_only: bool,
    /// The provider's payment intent it pays (the REST payment API): the payment must
    /// be for the intent's fine and amount, and marks it succeeded.
    pub intent: Option<String>,
    pub posted_by: String,
}

/// A payment as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PaymentRecord {
    pub id: i64,
    pub resolution_number: String,
    pub case_id: CaseId,
    pub channel: PaymentChannel,
    pub source: String,
    pub external_id: String,
    pub amount: Money,
    pub paid_at: DateTime<Utc>,
    pub posted_at: DateTime<Utc>,
    pub posted_by: String,
    pub from_state: CaseState,
    pub to_state: CaseState,
    /// Paid beyond what was due, in the payment's currency: to be refunded.
    pub excess_minor: i64,
    /// When its reporter took it back; a reversed payment no longer counts.
    pub reversed_at: Option<DateTime<Utc>>,
}

/// What posting a payment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentPosted {
    /// Recorded and applied; the case is now in `payment.to_state`.
    Applied(PaymentRecord),
    /// The same reporter's same id was posted before, with the same amount: nothing
    /// changed, this is that payment.
    AlreadyPosted(PaymentRecord),
    /// Not recorded.
    Refused(PaymentRefusal),
}

/// The deadlines engine's rule for a clock that runs again (the store keeps no rule of
/// its own): for the case's clock, the state it returns to and whether the fine still
/// offers a discount (no appeal forfeited it), whether the discount is still open and
/// the clock's next wake-up, judged at the given time.
pub type ClockRestart =
    fn(&StoredClock, CaseState, bool, DateTime<Utc>) -> (bool, Option<NaiveDate>);

/// A payment its reporter takes back (a bank's cancellation, a provider's reversal).
#[derive(Clone, Debug)]
pub struct PaymentReversal {
    pub payment_code: String,
    pub channel: PaymentChannel,
    pub source: String,
    /// The reporter's id of the payment; `None`: its latest payment of the code that
    /// has `amount` and `paid_at` where these are given.
    pub external_id: Option<String>,
    pub amount: Option<Money>,
    pub paid_at: Option<DateTime<Utc>>,
    /// The reporter's id of this cancel, where it has one: the same cancel sent again
    /// finds the payment it took back, never a later one of the same sum and time.
    pub reversal_id: Option<String>,
    pub reason: String,
    pub reversed_by: String,
    pub restart_clock: ClockRestart,
    /// The money left the city's account (the bank took a statement's credit back): the
    /// credit that was it is closed, in the same transaction, rather than queued again
    /// for finance as money the account still holds.
    pub money_left: bool,
}

/// What reversing a payment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentReversed {
    /// Marked reversed; the case is now in `to_state` (its clocks running again where
    /// that state runs them).
    Reversed {
        payment: PaymentRecord,
        from_state: CaseState,
        to_state: CaseState,
    },
    /// It was reversed before: nothing changed.
    AlreadyReversed(PaymentRecord),
    /// No resolution has the payment code.
    UnknownCode,
    /// The reporter has no such payment of this fine.
    NoPayment,
    /// The money went back already (the case was refunded, or an excess of it was):
    /// finance settles the chargeback by hand.
    NotReversible(CaseState),
}

/// The states a payment is reversed in: every state a case with money stands in but
/// `refunded`. A chargeback is the bank's fact, not a request: under appeal it leaves
/// the decision less money to return or to keep; annulled or voided, it leaves the
/// queued refund less to pay. Once refunded, the payer has the money twice over, which
/// finance recovers by hand.
pub(crate) fn reversible(state: CaseState) -> bool {
    matches!(
        state,
        CaseState::Paid
            | CaseState::PaidDiscounted
            | CaseState::PartiallyPaid
            | CaseState::Appealed
            | CaseState::Annulled
            | CaseState::Voided
            | CaseState::Lapsed
    ) || PAYABLE.contains(&state)
}

/// Where payments moved the case from, for a case now in `state`: the `from_state` of
/// the latest payment (of `payments`, oldest first, those that stand and the one being
/// reversed) that moved it into `state`; through `partially_paid` to where the part
/// payments found it. `None` when no payment moved it.
pub(crate) fn moved_from(state: CaseState, payments: &[PaymentRecord]) -> Option<CaseState> {
    let from = |into: CaseState| {
        payments
            .iter()
            .rev()
            .find(|p| p.to_state == into && p.from_state != into)
            .map(|p| p.from_state)
    };
    match from(state)? {
        CaseState::PartiallyPaid => from(CaseState::PartiallyPaid).or(Some(CaseState::Delivered)),
        found => Some(found),
    }
}

/// Where a case goes once a payment is reversed: `standing` is read without it, and
/// `unpaid_state` is where payments moved it from ([`moved_from`]). A case that no
/// payment moved stays where it is; one the remaining money still settles stays paid
/// (at the discount or not, as that money decides); otherwise it goes back, to
/// `partially_paid` if money remains and it was delivered and dated.
pub(crate) fn state_after_reversal(standing: &Standing, unpaid_state: CaseState) -> CaseState {
    // Paid while `issued`, dated once the delivery was proven: it is delivered now.
    let unpaid_state = match unpaid_state {
        CaseState::Issued if standing.dated => CaseState::Delivered,
        state => state,
    };
    if !matches!(
        standing.state,
        CaseState::Paid | CaseState::PaidDiscounted | CaseState::PartiallyPaid
    ) {
        return standing.state;
    }
    match standing.due.settlement(standing.paid) {
        Settlement::Paid { .. } => CaseState::Paid,
        Settlement::PaidDiscounted { .. } => CaseState::PaidDiscounted,
        Settlement::PartiallyPaid { .. }
            if standing.paid.total > 0
                && unpaid_state == CaseState::Delivered
                && standing.dated =>
        {
            CaseState::PartiallyPaid
        }
        Settlement::PartiallyPaid { .. } => unpaid_state,
    }
}

/// What the fine's standing payments bring beyond what settles it (after a reversal).
pub(crate) fn excess_of(standing: &Standing) -> Money {
    let excess = match standing.due.settlement(standing.paid) {
        Settlement::Paid { excess } | Settlement::PaidDiscounted { excess } => excess,
        Settlement::PartiallyPaid { .. } => 0,
    };
    Money::new(excess, standing.due.amount.currency)
}

/// The refund request's words for the excess a payment brought.
pub(crate) fn excess_detail(payment: &PaymentRecord) -> String {
    format!(
        "payment {} paid {} more than the fine",
        payment.id,
        Money::new(payment.excess_minor, payment.amount.currency)
    )
}

pub(crate) fn reversal_detail(record: &PaymentRecord, reversal: &PaymentReversal) -> String {
    payment_detail(record, serde_json::json!({ "reason": reversal.reason }))
}

/// What a fine would take now ([`crate::PaymentLedger::payment_quote`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentQuote {
    pub resolution_number: String,
    pub case_id: CaseId,
    pub state: CaseState,
    /// What is left to pay on the payer's day (the discounted sum within its window).
    pub outstanding: Money,
}

/// Why a payment was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentRefusal {
    /// No resolution has this payment code.
    UnknownCode,
    /// The resolution no longer stands (annulled, voided, lapsed, refunded).
    Closed(CaseState),
    /// Nothing is owed: the fine is paid.
    AlreadyPaid,
    /// The case takes no payment now (under appeal).
    NotPayable(CaseState),
    /// Exact payments only: more than `outstanding` was offered.
    Overpaid { outstanding: Money },
    /// Exact payments only: less than `outstanding` was offered.
    Underpaid { outstanding: Money },
    /// The reporter's id was used before for another amount or another fine.
    IdReused(Box<PaymentRecord>),
    /// The money cannot pay this fine (another currency).
    Invalid(String),
    /// The payment does not fit the intent it names.
    Intent(crate::IntentRefusal),
}

/// What the ledger reads under the case's lock before deciding.
#[derive(Clone, Debug)]
pub(crate) struct Standing {
    pub resolution_number: String,
    pub jurisdiction: kozomol_core::Jurisdiction,
    pub case_id: CaseId,
    pub state: CaseState,
    /// The discount is gone for money paid after an appeal was filed.
    pub due: Due,
    pub paid: PaidSoFar,
    /// Whether the case's clocks are dated (its delivery is proven and the periods
    /// run).
    pub dated: bool,
    /// The channels of its standing payments (reconciliation looks for a twin only
    /// where one can be).
    pub channels: Vec<PaymentChannel>,
}

/// The payment to record, once decided.
pub(crate) struct Decided {
    pub to_state: CaseState,
    pub excess_minor: i64,
}

/// Whether and how `payment` applies to the fine `standing` describes, on the day the
/// payer paid (in the fine's jurisdiction).
pub(crate) fn decide(standing: &Standing, payment: &NewPayment) -> Result<Decided, PaymentRefusal> {
    takes_payment(standing.state)?;
    let due = &standing.due;
    // Money already standing settles the fine (a paid case between states: a rejected
    // appeal not yet dated back to paid): more is not taken. Taken, its excess would
    // be reckoned on all the money and an earlier excess refunded twice.
    if !matches!(
        due.settlement(standing.paid),
        Settlement::PartiallyPaid { .. }
    ) {
        return Err(PaymentRefusal::AlreadyPaid);
    }
    check_payment(due, payment.amount).map_err(|e| PaymentRefusal::Invalid(e.to_string()))?;
    let day: NaiveDate = standing.jurisdiction.local_date(payment.paid_at);
    // As it is recorded, and as the appeal's filing is: in whole milliseconds.
    let paid_at = crate::audit::whole_millis(payment.paid_at);
    if payment.exact_only {
        let outstanding = Money::new(
            due.outstanding(standing.paid, paid_at, day),
            due.amount.currency,
        );
        if outstanding.minor == 0 {
            return Err(PaymentRefusal::AlreadyPaid);
        }
        if payment.amount.minor > outstanding.minor {
            return Err(PaymentRefusal::Overpaid { outstanding });
        }
        if payment.amount.minor < outstanding.minor {
            return Err(PaymentRefusal::Underpaid { outstanding });
        }
    }
    let after = due.with_payment(standing.paid, payment.amount.minor, paid_at, day);
    Ok(match due.settlement(after) {
        Settlement::Paid { excess } => Decided {
            to_state: CaseState::Paid,
            excess_minor: excess,
        },
        Settlement::PaidDiscounted { excess } => Decided {
            to_state: CaseState::PaidDiscounted,
            excess_minor: excess,
        },
        Settlement::PartiallyPaid { .. } => Decided {
            to_state: if standing.state == CaseState::Delivered && standing.dated {
                CaseState::PartiallyPaid
            } else {
                standing.state
            },
            excess_minor: 0,
        },
    })
}

/// Whether a case in `state` takes a payment at all.
fn takes_payment(state: CaseState) -> Result<(), PaymentRefusal> {
    match state {
        CaseState::Paid | CaseState::PaidDiscounted => Err(PaymentRefusal::AlreadyPaid),
        state if CLOSED.contains(&state) => Err(PaymentRefusal::Closed(state)),
        state if !PAYABLE.contains(&state) => Err(PaymentRefusal::NotPayable(state)),
        _ => Ok(()),
    }
}

/// What the fine `standing` describes would take from a payer paying at `at`: the
/// amount outstanding on that day, or why it takes nothing.
pub(crate) fn quote(
    standing: &Standing,
    at: DateTime<Utc>,
) -> Result<PaymentQuote, PaymentRefusal> {
    takes_payment(standing.state)?;
    let due = &standing.due;
    let day = standing.jurisdiction.local_date(at);
    let outstanding = Money::new(due.outstanding(standing.paid, at, day), due.amount.currency);
    if outstanding.minor == 0 {
        return Err(PaymentRefusal::AlreadyPaid);
    }
    Ok(PaymentQuote {
        resolution_number: standing.resolution_number.clone(),
        case_id: standing.case_id,
        state: standing.state,
        outstanding,
    })
}

/// A repeat of an earlier report: the same payment if it names the same fine and
/// amount (and, naming an intent, the intent that payment paid: `paid_intent`), else
/// refused.
pub(crate) fn repeat(
    earlier: PaymentRecord,
    paid_intent: Option<String>,
    payment: &NewPayment,
    resolution_number: &str,
) -> PaymentPosted {
    let same_intent = payment.intent.is_none() || payment.intent == paid_intent;
    if earlier.resolution_number == resolution_number
        && earlier.amount == payment.amount
        && same_intent
    {
        PaymentPosted::AlreadyPosted(earlier)
    } else {
        PaymentPosted::Refused(PaymentRefusal::IdReused(Box::new(earlier)))
    }
}

/// A fine's row as both backends read it under the case's lock.
pub(crate) struct StandingRow {
    pub resolution_number: String,
    pub case_id: CaseId,
    pub jurisdiction: String,
    pub state: String,
    pub amount_minor: i64,
    pub discounted_minor: Option<i64>,
    pub currency: String,
    pub discount_until: Option<NaiveDate>,
    pub dated: bool,
    /// When its first appeal was filed, if ever.
    pub appealed_at: Option<DateTime<Utc>>,
}

/// The standing of `row`, with the standing payments recorded so far as (amount, paid
/// at, channel).
pub(crate) fn standing_of(
    row: StandingRow,
    payments: &[(i64, DateTime<Utc>, PaymentChannel)],
) -> Result<Standing, StoreError> {
    let currency: kozomol_core::Currency = row
        .currency
        .parse()
        .map_err(|_| crate::error::corrupt(format!("currency `{}`", row.currency)))?;
    let jurisdiction: kozomol_core::Jurisdiction = row
        .jurisdiction
        .parse()
        .map_err(|_| crate::error::corrupt(format!("jurisdiction `{}`", row.jurisdiction)))?;
    let due = Due {
        amount: Money::new(row.amount_minor, currency),
        discounted: row
            .discounted_minor
            .map(|minor| Money::new(minor, currency)),
        discount_until: row.discount_until,
        forfeited_from: row.appealed_at,
    };
    let paid = due.paid_by(
        payments
            .iter()
            .map(|(minor, at, _)| (*minor, *at, jurisdiction.local_date(*at))),
    );
    let mut channels: Vec<PaymentChannel> = payments.iter().map(|(_, _, c)| *c).collect();
    channels.sort_by_key(|c| c.as_str());
    channels.dedup();
    Ok(Standing {
        resolution_number: row.resolution_number,
        jurisdiction,
        case_id: row.case_id,
        state: crate::decode::state(&row.state)?,
        due,
        paid,
        dated: row.dated,
        channels,
    })
}

/// The record of a payment just written.
pub(crate) fn record(
    standing: &Standing,
    payment: &NewPayment,
    id: i64,
    paid_at: DateTime<Utc>,
    posted_at: DateTime<Utc>,
    decided: &Decided,
) -> PaymentRecord {
    PaymentRecord {
        id,
        resolution_number: standing.resolution_number.clone(),
        case_id: standing.case_id,
        channel: payment.channel,
        source: payment.source.clone(),
        external_id: payment.external_id.clone(),
        amount: payment.amount,
        paid_at,
        posted_at,
        posted_by: payment.posted_by.clone(),
        from_state: standing.state,
        to_state: decided.to_state,
        excess_minor: decided.excess_minor,
        reversed_at: None,
    }
}

pub(crate) fn check(payment: &NewPayment) -> Result<(), StoreError> {
    for (what, value) in [
        ("payment code", &payment.payment_code),
        ("source", &payment.source),
        ("external id", &payment.external_id),
        ("posted by", &payment.posted_by),
    ] {
        if value.trim().is_empty() {
            return Err(StoreError::Invalid(format!("a payment needs its {what}")));
        }
    }
    Ok(())
}

pub(crate) fn audit_detail(record: &PaymentRecord) -> String {
    payment_detail(
        record,
        serde_json::json!({
            "paid_at": record.paid_at,
            "to_state": record.to_state,
            "excess_minor": record.excess_minor,
        }),
    )
}

/// An audit row's detail about `record`: which payment, from whom, how much, and `more`.
fn payment_detail(record: &PaymentRecord, more: serde_json::Value) -> String {
    let mut detail = serde_json::json!({
        "payment_id": record.id,
        "resolution": record.resolution_number,
        "channel": record.channel,
        "source": record.source,
        "external_id": record.external_id,
        "amount": record.amount,
    });
    if let (Some(detail), serde_json::Value::Object(more)) = (detail.as_object_mut(), more) {
        detail.extend(more);
    }
    detail.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kozomol_core::Currency;

    fn moved(id: i64, from: CaseState, to: CaseState) -> PaymentRecord {
        PaymentRecord {
            id,
            resolution_number: "KG-BSK-2026-0000001".into(),
            case_id: CaseId(1),
            channel: PaymentChannel::Soap,
            source: "bank".into(),
            external_id: format!("p-{id}"),
            amount: Money::new(100, Currency::KGS),
            paid_at: DateTime::<Utc>::UNIX_EPOCH,
            posted_at: DateTime::<Utc>::UNIX_EPOCH,
            posted_by: "bank".into(),
            from_state: from,
            to_state: to,
            excess_minor: 0,
            reversed_at: None,
        }
    }

    #[test]
    fn a_fine_the_money_standing_settles_takes_no_more() {
        use CaseState::*;
        let currency = Currency::KGS;
        let standing = |state, paid_total: i64| Standing {
            resolution_number: "KG-BSK-2026-0000001".into(),
            jurisdiction: kozomol_core::Jurisdiction::Kg,
            case_id: CaseId(1),
            state,
            due: Due {
                amount: Money::new(500_000, currency),
                discounted: None,
                discount_until: None,
                forfeited_from: None,
            },
            paid: PaidSoFar {
                total: paid_total,
                within_window: paid_total,
            },
            dated: true,
            channels: Vec::new(),
        };
        let payment = |minor| NewPayment {
            payment_code: "0".into(),
            channel: PaymentChannel::Statement,
            source: "account".into(),
            external_id: "BR-1".into(),
            amount: Money::new(minor, currency),
            paid_at: DateTime::<Utc>::UNIX_EPOCH,
            exact_only: false,
            intent: None,
            posted_by: "finance".into(),
        };
        // (state, paid so far, payment) → (state after, excess), or refused as paid
        type Row = (CaseState, i64, i64, Option<(CaseState, i64)>);
        let table: [Row; 6] = [
            (Delivered, 0, 500_000, Some((Paid, 0))),
            (Delivered, 0, 550_000, Some((Paid, 50_000))),
            (PartiallyPaid, 200_000, 400_000, Some((Paid, 100_000))),
            // A rejected appeal: an overpaid fine (a refund of 50,000 queued) paid again.
            (AppealRejected, 550_000, 500_000, None),
            (AppealRejected, 500_000, 100, None),
            // The discount forfeited by the appeal: the money short of the full fine.
            (AppealRejected, 250_000, 250_000, Some((Paid, 0))),
        ];
        for (i, (state, paid, minor, want)) in table.into_iter().enumerate() {
            let got = decide(&standing(state, paid), &payment(minor));
            match (got, want) {
                (Ok(d), Some((to, excess))) => {
                    assert_eq!((d.to_state, d.excess_minor), (to, excess), "row {i}")
                }
                (Err(PaymentRefusal::AlreadyPaid), None) => {}
                (got, want) => panic!(
                    "row {i}: {:?} against {want:?}",
                    got.map(|d| (d.to_state, d.excess_minor))
                ),
            }
        }
    }

    #[test]
    fn a_reversal_goes_back_to_where_the_payments_found_the_case() {
        use CaseState::*;
        // (the payments' moves, the state now, where a reversal goes back to)
        type Row = (
            &'static [(CaseState, CaseState)],
            CaseState,
            Option<CaseState>,
        );
        let table: [Row; 6] = [
            (&[(Delivered, Paid)], Paid, Some(Delivered)),
            // Paid, cancelled, overdue meanwhile, paid again: back to overdue.
            (&[(Delivered, Paid), (Overdue, Paid)], Paid, Some(Overdue)),
            // A part payment, then overdue by the deadlines, then paid in full.
            (
                &[(Delivered, PartiallyPaid), (Overdue, Paid)],
                Paid,
                Some(Overdue),
            ),
            // Two part payments that settled it: back through partially_paid.
            (
                &[(Delivered, PartiallyPaid), (PartiallyPaid, PaidDiscounted)],
                PaidDiscounted,
                Some(Delivered),
            ),
            (&[(Issued, Issued)], Issued, None),
            (&[], Delivered, None),
        ];
        for (moves, state, want) in table {
            let payments: Vec<PaymentRecord> = moves
                .iter()
                .enumerate()
                .map(|(i, (from, to))| moved(i as i64, *from, *to))
                .collect();
            assert_eq!(
                moved_from(state, &payments),
                want,
                "{moves:?} now {state:?}"
            );
        }
    }

    #[test]
    fn a_reversal_leaves_the_case_where_its_remaining_money_and_delivery_put_it() {
        use CaseState::*;
        let due = Due {
            amount: Money::new(1000, Currency::KGS),
            discounted: None,
            discount_until: None,
            forfeited_from: None,
        };
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
        let at = day.and_hms_opt(6, 0, 0).expect("time").and_utc();
        // (state now, money left standing, where payments moved it from, dated, want)
        let table = [
            (Paid, 0, Issued, false, Issued),
            // Paid before delivery, dated when the proof came: delivered now.
            (Paid, 0, Issued, true, Delivered),
            (Paid, 500, Issued, true, PartiallyPaid),
            (Paid, 500, Issued, false, Issued),
            (Paid, 500, Delivered, true, PartiallyPaid),
            (Paid, 500, Overdue, true, Overdue),
            (Paid, 1000, Delivered, true, Paid),
            (PartiallyPaid, 0, Delivered, true, Delivered),
            // No payment moved it: it stays.
            (Overdue, 0, Issued, true, Overdue),
        ];
        for (state, left, unpaid_state, dated, want) in table {
            let paid = if left > 0 {
                due.with_payment(PaidSoFar::default(), left, at, day)
            } else {
                PaidSoFar::default()
            };
            let standing = Standing {
                resolution_number: "KG-BSK-2026-0000001".into(),
                jurisdiction: kozomol_core::Jurisdiction::Kg,
                case_id: CaseId(1),
                state,
                due,
                paid,
                dated,
                channels: Vec::new(),
            };
            assert_eq!(
                state_after_reversal(&standing, unpaid_state),
                want,
                "{state:?} with {left} left, from {unpaid_state:?}, dated {dated}"
            );
        }
    }

    #[test]
    fn payments_are_reversed_only_where_money_stands() {
        use CaseState::*;
        for (state, want) in [
            (Paid, true),
            (PaidDiscounted, true),
            (PartiallyPaid, true),
            (Delivered, true),
            (Overdue, true),
            (Appealed, true),
            (AppealRejected, true),
            (Annulled, true),
            (Voided, true),
            (Lapsed, true),
            (Refunded, false),
            (Issued, true),
        ] {
            assert_eq!(reversible(state), want, "{state:?}");
        }
    }
}

/// A fine as its payer sees it (the citizens' portal), read in one snapshot: the
/// resolution, where the case stands, its photos, place and deadlines, what was paid
/// and what paying now takes, and the latest appeal.
#[derive(Clone, Debug)]
pub struct PayerView {
    pub resolution: crate::ResolutionRecord,
    pub state: CaseState,
    pub kind: kozomol_core::ViolationKind,
    pub captured_at: DateTime<Utc>,
    /// The plate the case was decided on, else the camera's read.
    pub plate: Option<String>,
    /// The indexes of the case's frames, in order.
    pub frames: Vec<u32>,
    pub site: Option<crate::CasePlace>,
    pub discount_until: Option<NaiveDate>,
    pub due: Option<NaiveDate>,
    pub appeal_until: Option<NaiveDate>,
    /// Whether the reduced sum is still offered (true until the clocks are dated).
    pub discount_open: bool,
    /// What the standing payments took, less what they paid over.
    pub paid_minor: i64,
    /// What paying at the moment asked for takes; none when the fine takes nothing.
    pub outstanding: Option<Money>,
    pub latest_appeal: Option<AppealGist>,
}

/// What a payer is told of an appeal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppealGist {
    pub id: i64,
    pub state: crate::AppealState,
    pub filed_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
}

impl From<&crate::AppealRecord> for AppealGist {
    fn from(appeal: &crate::AppealRecord) -> Self {
        AppealGist {
            id: appeal.id,
            state: appeal.state,
            filed_at: appeal.filed_at,
            decided_at: appeal.decided_at,
            decision_note: appeal.decision_note.clone(),
        }
    }
}

/// A standing payment as the payer's view counts it.
pub(crate) struct ViewPayment {
    pub amount_minor: i64,
    pub excess_minor: i64,
    pub paid_at: DateTime<Utc>,
    pub channel: PaymentChannel,
}

/// What both backends read for a payer's view.
pub(crate) struct PayerViewRows {
    pub resolution: crate::ResolutionRecord,
    /// The same fine's row as a payment reads it.
    pub standing: StandingRow,
    pub kind: String,
    pub captured_at: DateTime<Utc>,
    pub plate: Option<String>,
    pub decided_plate: Option<String>,
    pub frames: Vec<i64>,
    pub site: Option<crate::CasePlace>,
    pub due: Option<NaiveDate>,
    pub appeal_until: Option<NaiveDate>,
    pub discount_open: Option<bool>,
    pub payments: Vec<ViewPayment>,
    pub latest_appeal: Option<AppealGist>,
}

/// The payer's view of `rows` at `at`: the outstanding sum is the one a payment's
/// quote gives.
pub(crate) fn payer_view(rows: PayerViewRows, at: DateTime<Utc>) -> Result<PayerView, StoreError> {
    let paid: Vec<(i64, DateTime<Utc>, PaymentChannel)> = rows
        .payments
        .iter()
        .map(|p| (p.amount_minor, p.paid_at, p.channel))
        .collect();
    let paid_minor = rows
        .payments
        .iter()
        .map(|p| p.amount_minor - p.excess_minor)
        .sum();
    let discount_until = rows.standing.discount_until;
    let standing = standing_of(rows.standing, &paid)?;
    let outstanding = quote(&standing, at).ok().map(|q| q.outstanding);
    Ok(PayerView {
        resolution: rows.resolution,
        state: standing.state,
        kind: crate::decode::kind(&rows.kind)?,
        captured_at: rows.captured_at,
        plate: rows.decided_plate.or(rows.plate),
        frames: rows
            .frames
            .into_iter()
            .map(|i| crate::decode::u32_of(i, "frame index"))
            .collect::<Result<_, _>>()?,
        site: rows.site,
        discount_until,
        due: rows.due,
        appeal_until: rows.appeal_until,
        discount_open: rows.discount_open.unwrap_or(true),
        paid_minor,
        outstanding,
        latest_appeal: rows.latest_appeal,
    })
}
