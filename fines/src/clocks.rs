//! A delivered case's clocks, as two stages.
//!
//! Dating: a case whose delivery is proven (`delivered`, no clock yet) gets the dates
//! the catalogue's rules give from its delivery day — discount, due, appeal window,
//! enforcement, lapse — and a case whose appeal was rejected (`appeal_rejected`) gets
//! them again from the decision day, with no discount for money paid after the filing
//! (it was forgone by appealing; the old window stays for the money paid before), and
//! goes back to where the appeal found it: `delivered`, `partially_paid`, or its
//! paid state — or, where a payment was taken back meanwhile, where the money left
//! puts it. A case paid before its delivery was proven is dated too when the proof
//! comes, staying paid (its appeal window must end). Claimed under a lease, like the
//! stages before.
//!
//! The deadlines scheduler: each pass takes the clocks whose wake-up day has come and
//! applies the one move `deadlines::due_moves` gives (discount ended, overdue,
//! enforcement, lapsed), each a compare-and-set on the case's state and the clock's
//! wake-up, so several schedulers never move a case twice; a case with several moves
//! due gets them one pass after another, in the order the rules give.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction};
use kozomol_payments::{Due, PaidSoFar, Settlement};
use kozomol_store::{
    AppealState, CompleteResult, DeadlineWrite, DueClock, Store, StoreError, StoredClock,
};
use tracing::{info, warn};

use crate::calendar::Calendars;
use crate::catalogue::Catalogue;
use crate::deadlines::{due_moves, next_wakeup, CaseClock};
use crate::issuing::offence_of;
use crate::quote::{quote, Pricing};

/// How the dating stage runs; one jurisdiction's catalogue.
#[derive(Clone, Debug)]
pub struct DatingStage {
    pub worker: String,
    pub batch: u32,
    pub lease: Duration,
    pub jurisdiction: Jurisdiction,
}

/// What became of one case the dating stage claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dated {
    /// Dated; the case is in this state now.
    Clock(CaseState),
    /// The catalogue cannot date it (or its record does not say enough): left where
    /// it is, tried again when its lease ends (a paid one five times in all); the
    /// reason is logged.
    LeftUndated(String),
    LeaseLost,
}

/// Claims one batch of cases whose clocks need dating and dates each.
pub async fn run_dating(
    stage: &DatingStage,
    catalogue: &Catalogue,
    calendars: &Calendars,
    store: &dyn Store,
) -> Result<Vec<(CaseId, Dated)>, StoreError> {
    let claimed = store
        .claim_undated(&stage.worker, stage.batch, stage.lease)
        .await?;
    let mut results = Vec::with_capacity(claimed.len());
    for case_id in claimed {
        let outcome = match date_case(stage, catalogue, calendars, store, case_id).await? {
            Ok((from, to, clock, detail)) => {
                match store
                    .record_clock(&stage.worker, from, to, &clock, &detail)
                    .await?
                {
                    CompleteResult::Completed => {
                        info!(case_id = %case_id, state = to.as_str(), "clocks dated");
                        Dated::Clock(to)
                    }
                    CompleteResult::LeaseLost => Dated::LeaseLost,
                }
            }
            // An issued case is never handed back to review (a decision there could
            // reject or re-plate a resolution that stands): it stays where it is and is
            // tried again when its lease ends, the reason logged, until the catalogue
            // or its record is mended.
            Err(reason) => {
                warn!(case_id = %case_id, reason = %reason, "clocks not dated; tried again when the lease ends");
                Dated::LeftUndated(reason)
            }
        };
        results.push((case_id, outcome));
    }
    Ok(results)
}

/// Where a case whose appeal was rejected goes once dated: back where the appeal found
/// it (`paused`) — unless a payment was reversed after the appeal was filed
/// (`reversed_since_filed`), when the money left (`paid` towards `due`, by the ledger's
/// rule) decides: paid at the discount, in full, in part, or not at all (the appeal
/// never held the money).
fn state_after_rejection(
    paused: CaseState,
    reversed_since_filed: bool,
    due: &Due,
    paid: PaidSoFar,
) -> CaseState {
    match paused {
        CaseState::Paid | CaseState::PaidDiscounted | CaseState::PartiallyPaid
            if !reversed_since_filed =>
        {
            paused
        }
        CaseState::Paid | CaseState::PaidDiscounted | CaseState::PartiallyPaid => {
            match due.settlement(paid) {
                Settlement::PaidDiscounted { .. } => CaseState::PaidDiscounted,
                Settlement::Paid { .. } => CaseState::Paid,
                Settlement::PartiallyPaid { .. } if paid.total > 0 => CaseState::PartiallyPaid,
                Settlement::PartiallyPaid { .. } => CaseState::Delivered,
            }
        }
        _ => CaseState::Delivered,
    }
}

/// The discount's window a dating gives.
enum Window {
    /// Dated from the delivery: the catalogue's window, reaching at least to the last
    /// payment taken before the clocks were dated.
    FromDelivery { last_paid: Option<NaiveDate> },
    /// Dated after a rejected appeal: the discount forfeited, the window the appeal
    /// found kept for the money paid before it.
    Forfeited { kept_until: Option<NaiveDate> },
}

/// Dated (from, to, the clock, the audit detail), or why not.
type Dating = Result<(CaseState, CaseState, StoredClock, String), String>;

async fn date_case(
    stage: &DatingStage,
    catalogue: &Catalogue,
    calendars: &Calendars,
    store: &dyn Store,
    case_id: CaseId,
) -> Result<Dating, StoreError> {
    let Some(case) = store.case(case_id).await? else {
        return Err(StoreError::Invalid(format!("case {case_id} vanished")));
    };
    let from = case.state;
    let event = match crate::officer::case_facts(&case) {
        Ok(facts) => facts,
        Err(reason) => return Ok(Err(reason)),
    };
    // Where the periods run from, where the case goes once dated, and its discount.
    let (runs_from_instant, to, window) = if from == CaseState::AppealRejected {
        let appeals = store.appeals_of_case(case_id).await?;
        let Some(first_filed) = appeals.iter().map(|a| a.filed_at).min() else {
            return Ok(Err("no rejected appeal is recorded".into()));
        };
        let rejected = appeals
            .iter()
            .rev()
            .find(|a| a.state == AppealState::Rejected);
        let Some((decided_at, filed_at, paused)) =
            rejected.and_then(|a| a.decided_at.map(|d| (d, a.filed_at, a.from_state)))
        else {
            return Ok(Err("no rejected appeal is recorded".into()));
        };
        let Some(resolution) = store.resolution_of_case(case_id).await? else {
            return Ok(Err("no resolution is recorded".into()));
        };
        // The window the appeal found stays the clock's: the ledger reads it for the
        // money paid before the filing, which keeps its discount. Undated then, every
        // payment before the filing was at the discount (the periods had not started).
        let kept_until = match store.clock(case_id).await? {
            Some(clock) => clock.discount_until,
            None => Some(stage.jurisdiction.local_date(first_filed)),
        };
        let due = Due {
            amount: resolution.amount,
            discounted: resolution.discounted,
            discount_until: kept_until,
            forfeited_from: Some(first_filed),
        };
        let payments = store.payments(&resolution.number).await?;
        let reversed_since_filed = payments
            .iter()
            .any(|p| p.reversed_at.is_some_and(|at| at >= filed_at));
        let paid = due.paid_by(
            payments
                .iter()
                .filter(|p| p.reversed_at.is_none())
                .map(|p| {
                    (
                        p.amount.minor,
                        p.paid_at,
                        stage.jurisdiction.local_date(p.paid_at),
                    )
                }),
        );
        (
            decided_at,
            state_after_rejection(paused, reversed_since_filed, &due, paid),
            Window::Forfeited { kept_until },
        )
    } else {
        let Some(resolution) = store.resolution_of_case(case_id).await? else {
            return Ok(Err("no resolution is recorded".into()));
        };
        let Some(delivered_at) = resolution.delivered_at else {
            return Ok(Err("no proven delivery is recorded".into()));
        };
        let paid_on: Vec<NaiveDate> = store
            .payments(&resolution.number)
            .await?
            .iter()
            .filter(|p| p.reversed_at.is_none())
            .map(|p| stage.jurisdiction.local_date(p.paid_at))
            .collect();
        // Paid before the proof came: dated where it is (its appeal window ends);
        // otherwise it is delivered now (also one a reversal took back to `issued`).
        let to = match from {
            CaseState::Paid | CaseState::PaidDiscounted => from,
            _ => CaseState::Delivered,
        };
        (
            delivered_at,
            to,
            Window::FromDelivery {
                last_paid: paid_on.into_iter().max(),
            },
        )
    };
    let runs_from = stage.jurisdiction.local_date(runs_from_instant);
    let offence = offence_of(stage.jurisdiction, &case, &event, Some(runs_from));
    let priced = match quote(catalogue, calendars, &offence) {
        Ok(Pricing::Fine(q)) => q,
        Ok(Pricing::NoFine(none)) => return Ok(Err(none.reason)),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut clock = CaseClock::from_quote(to, &priced);
    match window {
        Window::Forfeited { kept_until } => {
            clock.discount_open = false;
            clock.discount_until = kept_until;
        }
        // Until dated, the discount was offered whatever the day (the periods had not
        // started): a payment taken at it before the proof came keeps it, even where
        // the proof dates the delivery so early that the window ends before it.
        Window::FromDelivery { last_paid } => {
            if let (Some(until), Some(last_paid)) = (clock.discount_until, last_paid) {
                if last_paid > until {
                    clock.discount_until = Some(last_paid);
                }
            }
        }
    }
    let stored = stored_clock(case_id, runs_from, &clock, priced.appeal_until);
    let detail = serde_json::json!({
        "runs_from": runs_from,
        "from": if from == CaseState::AppealRejected { "appeal_rejected" } else { "delivery" },
        "discount_until": stored.discount_until.filter(|_| stored.discount_open),
        "due": stored.due,
        "appeal_until": stored.appeal_until,
        "lapses": stored.lapses,
        "unconfirmed": priced.unconfirmed,
    })
    .to_string();
    Ok(Ok((from, to, stored, detail)))
}

fn stored_clock(
    case_id: CaseId,
    runs_from: NaiveDate,
    clock: &CaseClock,
    appeal_until: Option<NaiveDate>,
) -> StoredClock {
    StoredClock {
        case_id,
        jurisdiction: clock.jurisdiction,
        runs_from,
        discount_until: clock.discount_until,
        due: clock.due,
        appeal_until,
        enforcement_by: clock.enforcement_by,
        lapses: clock.lapses,
        discount_open: clock.discount_open,
        next_wakeup: next_wakeup(clock),
    }
}

fn case_clock(due: &DueClock) -> CaseClock {
    clock_in(&due.clock, due.state, due.clock.discount_open)
}

fn clock_in(c: &StoredClock, state: CaseState, discount_open: bool) -> CaseClock {
    CaseClock {
        jurisdiction: c.jurisdiction,
        state,
        discount_until: c.discount_until,
        due: c.due,
        enforcement_by: c.enforcement_by,
        lapses: c.lapses,
        discount_open,
    }
}

/// The clock of a case a reversed payment sends back to `state`
/// ([`kozomol_store::ClockRestart`]): the discount open while it is `offered` (no
/// appeal forfeited it) and its last day has not passed, and the next wake-up by the
/// deadlines rules — a day already past is due at the scheduler's next pass, which then
/// makes the moves missed while it was paid.
pub fn restart_clock(
    clock: &StoredClock,
    state: CaseState,
    offered: bool,
    now: DateTime<Utc>,
) -> (bool, Option<NaiveDate>) {
    let today = clock.jurisdiction.local_date(now);
    let discount_open = offered && clock.discount_until.is_some_and(|until| today <= until);
    (
        discount_open,
        next_wakeup(&clock_in(clock, state, discount_open)),
    )
}

/// The moves one scheduler pass made, per case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadlinePass {
    pub moved: Vec<(CaseId, &'static str)>,
    /// Moves another scheduler (or a payment) got to first.
    pub raced: usize,
}

/// Applies the moves due on `now`'s local day in each clock's jurisdiction to up to
/// `limit` clocks; run again while it moves anything.
pub async fn run_deadlines(
    store: &dyn Store,
    actor: &str,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<DeadlinePass, StoreError> {
    // The latest local day anywhere (UTC+6 is ahead of both countries' zones being
    // read): each clock is then checked against its own jurisdiction's day.
    let latest = [Jurisdiction::Kg, Jurisdiction::Kz]
        .into_iter()
        .map(|j| j.local_date(now))
        .max()
        .unwrap_or_else(|| now.date_naive());
    let mut pass = DeadlinePass::default();
    for due in store.due_clocks(latest, limit).await? {
        let today = due.clock.jurisdiction.local_date(now);
        let mut clock = case_clock(&due);
        let Some(mv) = due_moves(&clock, today) else {
            // Asleep until a later day in its own zone, or its state stopped the
            // clock (paid, appealed): nothing is due, so it stops waking.
            if !crate::deadlines::clocks_run(due.state) {
                stop_waking(store, &due, actor).await?;
            }
            continue;
        };
        clock.apply(&mv);
        let detail = serde_json::json!({
            "move": mv.as_str(),
            "deadline": mv.rule().deadline,
            "rule": mv.rule().text,
        })
        .to_string();
        let write = DeadlineWrite {
            case_id: due.clock.case_id,
            from: due.state,
            to: mv.to(),
            expected_wakeup: due.clock.next_wakeup,
            discount_open: clock.discount_open,
            next_wakeup: next_wakeup(&clock),
            detail: &detail,
            actor,
        };
        if store.apply_deadline(&write).await? {
            info!(case_id = %due.clock.case_id, r#move = mv.as_str(), "deadline passed");
            pass.moved.push((due.clock.case_id, mv.as_str()));
        } else {
            pass.raced += 1;
        }
    }
    Ok(pass)
}

/// A clock whose case left the running states (paid, appealed, closed) wakes no more;
/// cleared without a state move, so the index only holds live clocks.
async fn stop_waking(store: &dyn Store, due: &DueClock, actor: &str) -> Result<(), StoreError> {
    let write = DeadlineWrite {
        case_id: due.clock.case_id,
        from: due.state,
        to: None,
        expected_wakeup: due.clock.next_wakeup,
        discount_open: false,
        next_wakeup: None,
        detail: r#"{"move":"clock_stopped","reason":"the case's state runs no clock"}"#,
        actor,
    };
    store.apply_deadline(&write).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use kozomol_core::{Currency, Money};

    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    #[test]
    fn a_rejected_appeal_returns_the_case_where_its_money_says() {
        use CaseState::*;
        let due = Due {
            amount: Money::new(1000, Currency::KGS),
            discounted: Some(Money::new(500, Currency::KGS)),
            discount_until: Some(day("2026-03-15")),
            forfeited_from: Some(
                day("2026-03-05")
                    .and_hms_opt(6, 0, 0)
                    .expect("time")
                    .and_utc(),
            ),
        };
        // Money standing: paid before the appeal within the window, and in all.
        let money = |within_window, total| PaidSoFar {
            total,
            within_window,
        };
        // (where the appeal found it, a reversal since the filing, money left, want)
        let table = [
            (Delivered, false, money(0, 0), Delivered),
            (Overdue, false, money(0, 0), Delivered),
            (Paid, false, money(0, 1000), Paid),
            (PaidDiscounted, false, money(500, 500), PaidDiscounted),
            (PartiallyPaid, false, money(300, 300), PartiallyPaid),
            // A chargeback while it was appealed: the money left decides.
            (Paid, true, money(0, 0), Delivered),
            (Paid, true, money(0, 400), PartiallyPaid),
            (Paid, true, money(0, 1200), Paid),
            // The discounted amount paid before the appeal still settles it.
            (PaidDiscounted, true, money(500, 500), PaidDiscounted),
            (PaidDiscounted, true, money(400, 500), PartiallyPaid),
            (PaidDiscounted, true, money(0, 0), Delivered),
            (PartiallyPaid, true, money(0, 0), Delivered),
            (Delivered, true, money(0, 0), Delivered),
        ];
        for (paused, reversed, paid, want) in table {
            assert_eq!(
                state_after_rejection(paused, reversed, &due, paid),
                want,
                "{paused:?} reversed {reversed} {paid:?}"
            );
        }
    }

    #[test]
    fn a_clock_restarts_where_the_rules_say() {
        let clock = StoredClock {
            case_id: CaseId(1),
            jurisdiction: Jurisdiction::Kg,
            runs_from: day("2026-03-01"),
            discount_until: Some(day("2026-03-15")),
            due: Some(day("2026-03-30")),
            appeal_until: Some(day("2026-03-10")),
            enforcement_by: Some(day("2026-06-30")),
            lapses: Some(day("2027-03-01")),
            discount_open: false,
            next_wakeup: None,
        };
        // Noon in Bishkek on `d`.
        let at = |d: &str| day(d).and_hms_opt(6, 0, 0).expect("time").and_utc();
        let table = [
            (
                CaseState::Delivered,
                true,
                "2026-03-10",
                (true, Some(day("2026-03-16"))),
            ),
            (
                CaseState::Delivered,
                true,
                "2026-03-15",
                (true, Some(day("2026-03-16"))),
            ),
            (
                CaseState::PartiallyPaid,
                true,
                "2026-03-20",
                (false, Some(day("2026-03-31"))),
            ),
            // Due passed while it was paid: the next pass makes the case overdue.
            (
                CaseState::Delivered,
                true,
                "2026-04-20",
                (false, Some(day("2026-03-31"))),
            ),
            (
                CaseState::Overdue,
                true,
                "2026-04-20",
                (false, Some(day("2026-07-01"))),
            ),
            (CaseState::Issued, true, "2026-03-10", (true, None)),
            (CaseState::Paid, true, "2026-03-10", (true, None)),
            // An appeal forfeited the discount: nothing wakes for its end.
            (
                CaseState::Delivered,
                false,
                "2026-03-10",
                (false, Some(day("2026-03-31"))),
            ),
        ];
        for (state, offered, now, want) in table {
            assert_eq!(
                restart_clock(&clock, state, offered, at(now)),
                want,
                "{state:?} offered {offered} on {now}"
            );
        }
    }
}
