//! After delivery, shared by both backends: a case's clocks (the dates its delivery
//! set, and the deadline moves the scheduler applies), appeals and their decisions,
//! bulk voids, and the refund requests both leave for the payments side.

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction};
use serde::Serialize;

use crate::{EvidenceRef, FrameLocation, StoreError};

/// Action of the audit row written when a case's clocks are dated (at delivery, and
/// again after a rejected appeal).
pub const CLOCKS_DATED: &str = "case.clocks_dated";
/// Action of the audit row written for every deadline move (the discount's end too).
pub const DEADLINE_PASSED: &str = "case.deadline_passed";
pub const APPEAL_FILED: &str = "case.appeal_filed";
pub const APPEAL_DECIDED: &str = "case.appeal_decided";
pub const CASE_VOIDED: &str = "case.voided";
pub const REFUND_REQUESTED: &str = "case.refund_requested";
pub const REFUND_SETTLED: &str = "case.refund_settled";
/// Action of the audit row written when a reversal changes a queued refund's amount.
pub const REFUND_REPRICED: &str = "case.refund_repriced";

/// The states an appeal may be filed from: a resolution that stands, paid or not, and
/// has not gone to enforcement or lapsed.
pub const APPEALABLE: [CaseState; 6] = [
    CaseState::Issued,
    CaseState::Delivered,
    CaseState::PartiallyPaid,
    CaseState::Overdue,
    CaseState::Paid,
    CaseState::PaidDiscounted,
];

/// States in which nothing stands against anyone any more: a bulk void leaves them
/// alone, and the payments ledger refuses money for them.
pub const CLOSED: [CaseState; 7] = [
    CaseState::Rejected,
    CaseState::Duplicate,
    CaseState::Exempt,
    CaseState::Annulled,
    CaseState::Refunded,
    CaseState::Voided,
    CaseState::Lapsed,
];

/// Who filed an appeal, as the audit log keeps it: a portal appeal's `portal:{address}`
/// is `portal` there. The audit log is never purged, and the address is personal data
/// the appeal's own row keeps only until the case's purge.
pub(crate) fn audited_filer(filed_by: &str) -> &str {
    if filed_by.starts_with("portal:") {
        "portal"
    } else {
        filed_by
    }
}

/// Whether settling `request` with `outcome` ends its case as `refunded`: the money
/// an annulment or a void owed the payer went back (an excess refund leaves a fine
/// that stands where it is).
pub(crate) fn closes_as_refunded(request: &RefundRequestRecord, outcome: RefundOutcome) -> bool {
    outcome == RefundOutcome::Refunded && matches!(request.cause.as_str(), "annulled" | "voided")
}

/// Whether a bulk void takes a case: not closed, and its personal data not purged. A
/// purged case was settled and quiet for the whole retention period, past which no one
/// claims its money back, and its payer's and owner's data are gone; voiding it would
/// queue a refund to no one and hold its file from destruction for ever.
pub(crate) fn voidable(state: CaseState, purged: bool) -> bool {
    !purged && !CLOSED.contains(&state)
}

/// A case's clocks as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredClock {
    pub case_id: CaseId,
    pub jurisdiction: Jurisdiction,
    /// The day the periods run from: proven delivery, or an appeal's rejection.
    pub runs_from: NaiveDate,
    pub discount_until: Option<NaiveDate>,
    pub due: Option<NaiveDate>,
    pub appeal_until: Option<NaiveDate>,
    pub enforcement_by: Option<NaiveDate>,
    pub lapses: Option<NaiveDate>,
    pub discount_open: bool,
    /// The first day a deadline move is due; none once nothing more is.
    pub next_wakeup: Option<NaiveDate>,
}

/// A clock whose wake-up has come, with its case's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueClock {
    pub clock: StoredClock,
    pub state: CaseState,
}

/// One deadline move, applied only if the case is still in `from` and its clock still
/// wakes at `expected_wakeup`: two schedulers never apply one move twice.
#[derive(Clone, Debug)]
pub struct DeadlineWrite<'a> {
    pub case_id: CaseId,
    pub from: CaseState,
    /// None: the state stays (the discount's end).
    pub to: Option<CaseState>,
    pub expected_wakeup: Option<NaiveDate>,
    pub discount_open: bool,
    pub next_wakeup: Option<NaiveDate>,
    /// What passed and the rule, for the audit.
    pub detail: &'a str,
    pub actor: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppealState {
    /// Waiting for an officer's decision; the case's clocks are paused.
    Filed,
    /// The resolution stands; its clocks run again from the decision.
    Rejected,
    /// The resolution is annulled.
    Annulled,
}

impl AppealState {
    pub fn as_str(self) -> &'static str {
        match self {
            AppealState::Filed => "filed",
            AppealState::Rejected => "rejected",
            AppealState::Annulled => "annulled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            AppealState::Filed,
            AppealState::Rejected,
            AppealState::Annulled,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// A file the appellant sent, already in the evidence store.
#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub name: String,
    pub content_type: String,
    pub evidence: EvidenceRef,
}

#[derive(Clone, Debug)]
pub struct NewAppeal {
    pub case_id: CaseId,
    pub appellant: String,
    pub contact: Option<String>,
    pub grounds: String,
    /// Who took it in: an account's login, or `portal` for a citizen's own filing.
    pub filed_by: String,
    pub attachments: Vec<NewAttachment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentRecord {
    pub position: u32,
    pub name: String,
    pub content_type: String,
    #[serde(serialize_with = "crate::model::hex_key")]
    pub sha256: [u8; 32],
    #[serde(skip)]
    pub location: FrameLocation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppealRecord {
    pub id: i64,
    pub case_id: CaseId,
    pub resolution_number: String,
    pub appellant: String,
    pub contact: Option<String>,
    pub grounds: String,
    pub filed_at: DateTime<Utc>,
    pub filed_by: String,
    /// The state the appeal paused.
    pub from_state: CaseState,
    pub state: AppealState,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub attachments: Vec<AttachmentRecord>,
}

/// The answer to `file_appeal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppealFiled {
    /// Filed; the case moved to `appealed`.
    Filed(Box<AppealRecord>),
    /// The case is in a state no appeal is taken in (nothing written).
    NotAppealable(CaseState),
    /// An appeal of the case is open already (its id).
    AlreadyOpen(i64),
    /// The case has no resolution to appeal.
    NoResolution,
    /// The case's personal data were purged (when): it takes no appeal, whose
    /// appellant and grounds no later purge would reach (nothing written).
    Purged(DateTime<Utc>),
}

/// The answer to `decide_appeal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppealDecided {
    Decided {
        case_state: CaseState,
        /// The refund request an annulment of a paid case queued.
        refund_request: Option<i64>,
    },
    /// Decided before (its state); nothing changed.
    NotOpen(AppealState),
    NotFound,
}

/// Every case of a device whose capture falls in `[captured_from, captured_until)`.
#[derive(Clone, Debug)]
pub struct BulkVoidRequest {
    pub device_serial: String,
    pub captured_from: DateTime<Utc>,
    pub captured_until: DateTime<Utc>,
    pub reason: String,
    pub requested_by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BulkVoidResult {
    pub id: i64,
    pub voided: Vec<CaseId>,
    pub refund_requests: u32,
}

/// Money to pay back, and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundRequestRecord {
    pub id: i64,
    pub case_id: CaseId,
    pub resolution_number: String,
    /// `annulled` or `voided` (the money the case took, less its excess owed apart), or
    /// `excess` (what the case's payments brought beyond the fine, on the payment that
    /// brought it).
    pub cause: String,
    /// The payment whose excess this is (`excess` only).
    pub payment_id: Option<i64>,
    pub amount: kozomol_core::Money,
    pub detail: String,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
    /// `queued`, `refunded`, `cancelled` (by finance), or `withdrawn` (an excess a
    /// reversal no longer leaves; the rest is queued again as it stands).
    pub state: String,
    pub settled_at: Option<DateTime<Utc>>,
    pub settled_by: Option<String>,
    /// The bank's or provider's reference of the money sent back.
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// How finance settles a queued refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundOutcome {
    /// The money went back: the reference of the transfer is required.
    Refunded,
    /// Not to be paid back (the payer took the money another way, a duplicate): the
    /// note says why.
    Cancelled,
}

impl RefundOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundOutcome::Refunded => "refunded",
            RefundOutcome::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundSettlement {
    pub id: i64,
    pub outcome: RefundOutcome,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub settled_by: String,
}

/// The answer to `settle_refund`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundSettled {
    Settled(RefundRequestRecord),
    /// Settled before (nothing written): as it stands.
    AlreadySettled(RefundRequestRecord),
    NotFound,
}

/// A refund paid needs the transfer's reference, a cancelled one its reason; each at
/// most 200 characters.
pub(crate) fn check_settlement(settlement: &RefundSettlement) -> Result<(), StoreError> {
    let given = |field: &Option<String>| field.as_deref().is_some_and(|v| !v.trim().is_empty());
    let problem = match settlement.outcome {
        RefundOutcome::Refunded if !given(&settlement.reference) => {
            Some("a refund paid names the transfer's reference")
        }
        RefundOutcome::Cancelled if !given(&settlement.note) => {
            Some("a cancelled refund says why in its note")
        }
        _ => None,
    };
    let too_long = [&settlement.reference, &settlement.note]
        .into_iter()
        .flatten()
        .any(|v| v.chars().count() > 200);
    match (problem, too_long) {
        (Some(problem), _) => Err(StoreError::Invalid(problem.into())),
        (None, true) => Err(StoreError::Invalid(
            "a reference or note is at most 200 characters".into(),
        )),
        (None, false) => Ok(()),
    }
}

/// Whether a request in `state` takes `outcome`: a queued one either; one a reversal
/// withdrew only `refunded` (the transfer went before the reversal: it is recorded, so
/// the money that left is known and can be recovered).
pub(crate) fn takes_settlement(state: &str, outcome: RefundOutcome) -> bool {
    state == "queued" || (state == "withdrawn" && outcome == RefundOutcome::Refunded)
}

/// Whether settling `before` (taken by [`takes_settlement`]) pays back an excess a
/// reversal withdrew: the transfer went before the reversal, so what left covers the
/// excess queued since ([`covered_excess`]); finance recovers any difference.
pub(crate) fn pays_back_withdrawn_excess(before: &RefundRequestRecord) -> bool {
    before.state == "withdrawn" && before.cause == "excess"
}

/// Which of the queued excess requests `queued` (id, amount; newest first) a refund
/// of `paid_back` already made covers, and what each is left at: 0 withdraws it.
/// Table-tested.
pub(crate) fn covered_excess(queued: &[(i64, i64)], paid_back: i64) -> Vec<(i64, i64)> {
    let mut left = paid_back;
    let mut covered = Vec::new();
    for &(id, amount) in queued {
        if left <= 0 {
            break;
        }
        let taken = amount.min(left);
        covered.push((id, amount - taken));
        left -= taken;
    }
    covered
}

/// The audit detail of a queued refund request whose amount a reversal changed, from
/// `was` to `amount` (0: withdrawn), and why.
pub(crate) fn repriced_detail(request: i64, was: i64, amount: i64, why: &str) -> String {
    serde_json::json!({
        "refund_request": request,
        "was_minor": was,
        "amount_minor": amount.max(0),
        "state": if amount > 0 { "queued" } else { "withdrawn" },
        "why": why,
    })
    .to_string()
}

/// The audit detail of a settlement of a request that was `before`.
pub(crate) fn settlement_detail(record: &RefundRequestRecord, before: &str) -> String {
    serde_json::json!({
        "refund_request": record.id,
        "was": before,
        "cause": record.cause,
        "amount_minor": record.amount.minor,
        "currency": record.amount.currency.code(),
        "state": record.state,
        "reference": record.reference,
        "note": record.note,
    })
    .to_string()
}

/// What a case's annulment or void owes its payer, in SQL both backends speak, for the
/// case id `$case` (a column or a placeholder): what its payments not reversed took,
/// less every excess of it not withdrawn — one paid back counts even where its payment
/// was charged back since, a cancelled one only where its payment stands. `$cast` is
/// PostgreSQL's `::bigint` (its sums are numeric), empty for SQLite. A macro because
/// `query()` takes only `&'static str`.
macro_rules! refund_owed {
    ($case:literal, $cast:literal) => {
        concat!(
            "((SELECT coalesce(sum(p.amount_minor), 0) FROM payments p WHERE p.case_id = ",
            $case,
            " AND p.reversed_at IS NULL)",
            $cast,
            " - (SELECT coalesce(sum(q.amount_minor), 0) FROM refund_requests q \
             WHERE q.case_id = ",
            $case,
            " AND q.cause = 'excess' AND q.state <> 'withdrawn' \
             AND (q.state <> 'cancelled' OR EXISTS (SELECT 1 FROM payments x \
             WHERE x.id = q.payment_id AND x.reversed_at IS NULL)))",
            $cast,
            ")"
        )
    };
}
pub(crate) use refund_owed;

/// A refund request's columns, in the order the backends read them. A macro because
/// `query()` takes only `&'static str`.
macro_rules! refund_columns {
    () => {
        "id, case_id, resolution_number, cause, payment_id, amount_minor, currency, detail, \
         requested_at, requested_by, state, settled_at, settled_by, reference, note"
    };
}
pub(crate) use refund_columns;

/// A refund request's columns as read.
pub(crate) struct RefundColumns {
    pub id: i64,
    pub case_id: i64,
    pub resolution_number: String,
    pub cause: String,
    pub payment_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: String,
    pub detail: String,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
    pub state: String,
    pub settled_at: Option<DateTime<Utc>>,
    pub settled_by: Option<String>,
    pub reference: Option<String>,
    pub note: Option<String>,
}

impl RefundColumns {
    pub(crate) fn record(self) -> Result<RefundRequestRecord, StoreError> {
        let currency: kozomol_core::Currency = self
            .currency
            .parse()
            .map_err(|_| crate::error::corrupt(format!("currency `{}`", self.currency)))?;
        Ok(RefundRequestRecord {
            id: self.id,
            case_id: CaseId(self.case_id),
            resolution_number: self.resolution_number,
            cause: self.cause,
            payment_id: self.payment_id,
            amount: kozomol_core::Money::new(self.amount_minor, currency),
            detail: self.detail,
            requested_at: self.requested_at,
            requested_by: self.requested_by,
            state: self.state,
            settled_at: self.settled_at,
            settled_by: self.settled_by,
            reference: self.reference,
            note: self.note,
        })
    }
}

/// The device serial of a stored event (its `device.serial`).
pub(crate) fn event_device_serial(event: &serde_json::Value) -> Option<&str> {
    event.get("device")?.get("serial")?.as_str()
}

pub(crate) fn check_appeal(appeal: &NewAppeal) -> Result<(), StoreError> {
    if appeal.appellant.trim().is_empty() || appeal.grounds.trim().is_empty() {
        return Err(StoreError::Invalid(
            "an appeal names its appellant and its grounds".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_void(request: &BulkVoidRequest) -> Result<(), StoreError> {
    if request.captured_from >= request.captured_until {
        return Err(StoreError::Invalid(
            "a bulk void's time range must end after it starts".into(),
        ));
    }
    if request.device_serial.trim().is_empty() || request.reason.trim().is_empty() {
        return Err(StoreError::Invalid(
            "a bulk void names the device and the reason".into(),
        ));
    }
    Ok(())
}

pub(crate) fn decode_appeal_state(raw: &str) -> Result<AppealState, StoreError> {
    AppealState::parse(raw).ok_or_else(|| crate::error::corrupt(format!("appeal state `{raw}`")))
}

#[cfg(test)]
mod settlement_tests {
    use super::*;

    #[test]
    fn settled_requests_take_no_second_settlement() {
        use RefundOutcome::{Cancelled, Refunded};
        for (state, outcome, takes) in [
            ("queued", Refunded, true),
            ("queued", Cancelled, true),
            ("withdrawn", Refunded, true),
            ("withdrawn", Cancelled, false),
            ("refunded", Refunded, false),
            ("refunded", Cancelled, false),
            ("cancelled", Refunded, false),
        ] {
            assert_eq!(
                takes_settlement(state, outcome),
                takes,
                "{state} {outcome:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::covered_excess;

    #[test]
    fn a_refund_made_covers_the_newest_queued_excess_first() {
        for (queued, paid_back, covered) in [
            // The reversal queued 500 again after 1,500 had left: withdrawn.
            (vec![(2, 50_000)], 150_000, vec![(2, 0)]),
            // Paid again since: 3,500 queued, 1,500 of it left already.
            (vec![(3, 350_000)], 150_000, vec![(3, 200_000)]),
            // Two queued, newest first: the newest withdrawn, the older cut.
            (
                vec![(5, 40_000), (4, 100_000)],
                100_000,
                vec![(5, 0), (4, 40_000)],
            ),
            (vec![(6, 10_000)], 10_000, vec![(6, 0)]),
            (vec![], 150_000, vec![]),
            (vec![(7, 10_000)], 0, vec![]),
        ] {
            assert_eq!(
                covered_excess(&queued, paid_back),
                covered,
                "{queued:?} {paid_back}"
            );
        }
    }
}
