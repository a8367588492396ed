//! The deadlines engine's rules: which move a delivered case's clocks make on a given
//! day. A scheduler runs [`due_moves`] for the cases whose [`next_wakeup`] has come,
//! applies the move (a state change with an audit row citing [`Rule::text`]) and runs
//! it again until nothing is due; these functions decide, they store nothing.
//!
//! The rules, from the dates a [`Quote`] computed at delivery (KZ articles cited; the
//! Kyrgyz periods are unconfirmed, see `docs/fines.md`):
//!
//! - the early-payment discount ends after `discount_until` (art. 811 part 1): no state
//!   change, the clock records it once ([`DeadlineMove::DiscountEnded`]);
//! - `delivered` or `partially_paid` after `due` becomes `overdue` (art. 893);
//! - `overdue` after `enforcement_by` becomes `enforcement` (art. 896);
//! - any unpaid state (`delivered`, `partially_paid`, `overdue`, `enforcement`) after
//!   `lapses` becomes `lapsed` (art. 890).
//!
//! "After" is the day after the date: the deadline day itself is still within time,
//! because a period ends at the end of its last day. Clocks run from proven delivery,
//! so `issued` makes no move; paid, annulled, voided and refunded cases are closed; an
//! appeal (`appealed`) pauses the clocks, and a rejected appeal makes no move here
//! either: its dates run again from the appeal decision and the case is re-dated.
//!
//! One move a call. Lapse wins over everything due on the same day (a lapsed decision
//! is no longer executed, so nothing else matters); otherwise the earliest deadline
//! moves first, so a case a scheduler missed for weeks still passes `overdue` before
//! `enforcement`, as the state machine requires. Applying a move makes it no longer
//! due, so running the engine again the same day gives the next move or nothing
//! (idempotent).

use chrono::{Days, NaiveDate};
use kozomol_core::{CaseState, Jurisdiction};
use serde::{Deserialize, Serialize};

use crate::quote::Quote;

/// What a case's clocks need: its state and the dates its delivery set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseClock {
    pub jurisdiction: Jurisdiction,
    pub state: CaseState,
    /// The last day of the early-payment discount.
    pub discount_until: Option<NaiveDate>,
    /// The last day to pay.
    pub due: Option<NaiveDate>,
    /// The last day before an unpaid fine goes to enforcement.
    pub enforcement_by: Option<NaiveDate>,
    /// The last day the decision may be executed.
    pub lapses: Option<NaiveDate>,
    /// Whether the discount can still be had; false once it ended (or if there is none).
    pub discount_open: bool,
}

impl CaseClock {
    /// The clock of a case in `state` whose delivery `quote` dated.
    pub fn from_quote(state: CaseState, quote: &Quote) -> Self {
        CaseClock {
            jurisdiction: quote.jurisdiction,
            state,
            discount_until: quote.discount_until,
            due: quote.due,
            enforcement_by: quote.enforcement_by,
            lapses: quote.lapses,
            discount_open: quote.discounted_amount.is_some() && quote.discount_until.is_some(),
        }
    }

    /// Records a move: its new state, if any; every move also closes the discount
    /// (a state move only comes after the discount ended, or, for a lapse, ends it).
    pub fn apply(&mut self, mv: &DeadlineMove) {
        self.discount_open = false;
        if let Some(to) = mv.to() {
            self.state = to;
        }
    }
}

/// The deadline that passed and the rule that says what follows, for the audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub deadline: NaiveDate,
    /// E.g. "due 2026-04-26 passed (КоАП РК art. 893)".
    pub text: String,
}

/// A move the clocks make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "move", rename_all = "snake_case")]
pub enum DeadlineMove {
    /// The discount ended; the state stays.
    DiscountEnded(Rule),
    /// To `overdue`.
    Overdue(Rule),
    /// To `enforcement`.
    Enforcement(Rule),
    /// To `lapsed`.
    Lapsed(Rule),
}

impl DeadlineMove {
    /// The state the move sends the case to; `None` for the discount's end.
    pub fn to(&self) -> Option<CaseState> {
        match self {
            DeadlineMove::DiscountEnded(_) => None,
            DeadlineMove::Overdue(_) => Some(CaseState::Overdue),
            DeadlineMove::Enforcement(_) => Some(CaseState::Enforcement),
            DeadlineMove::Lapsed(_) => Some(CaseState::Lapsed),
        }
    }

    pub fn rule(&self) -> &Rule {
        match self {
            DeadlineMove::DiscountEnded(rule)
            | DeadlineMove::Overdue(rule)
            | DeadlineMove::Enforcement(rule)
            | DeadlineMove::Lapsed(rule) => rule,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            DeadlineMove::DiscountEnded(_) => "discount_ended",
            DeadlineMove::Overdue(_) => "overdue",
            DeadlineMove::Enforcement(_) => "enforcement",
            DeadlineMove::Lapsed(_) => "lapsed",
        }
    }
}

/// Whether the clocks run in `state`: the unpaid states after delivery.
pub fn clocks_run(state: CaseState) -> bool {
    matches!(
        state,
        CaseState::Delivered
            | CaseState::PartiallyPaid
            | CaseState::Overdue
            | CaseState::Enforcement
    )
}

#[derive(Clone, Copy)]
enum Which {
    Discount,
    Due,
    Enforcement,
    Lapse,
}

/// Where the rule is written. The Kyrgyz articles were not confirmed.
fn citation(jurisdiction: Jurisdiction, which: Which) -> &'static str {
    match (jurisdiction, which) {
        (Jurisdiction::Kz, Which::Discount) => "КоАП РК art. 811 part 1",
        (Jurisdiction::Kz, Which::Due) => "КоАП РК art. 893",
        (Jurisdiction::Kz, Which::Enforcement) => "КоАП РК art. 896",
        (Jurisdiction::Kz, Which::Lapse) => "КоАП РК art. 890",
        (Jurisdiction::Kg, _) => "Кодекс о правонарушениях КР, article unconfirmed",
    }
}

fn rule(jurisdiction: Jurisdiction, which: Which, deadline: NaiveDate) -> Rule {
    let name = match which {
        Which::Discount => "discount until",
        Which::Due => "due",
        Which::Enforcement => "enforcement by",
        Which::Lapse => "lapses",
    };
    Rule {
        deadline,
        text: format!(
            "{name} {deadline} passed ({})",
            citation(jurisdiction, which)
        ),
    }
}

/// The deadlines that can still move `case`, in the order they are tried.
fn pending(case: &CaseClock) -> [(Which, Option<NaiveDate>); 3] {
    let state_deadline = match case.state {
        CaseState::Delivered | CaseState::PartiallyPaid => (Which::Due, case.due),
        CaseState::Overdue => (Which::Enforcement, case.enforcement_by),
        _ => (Which::Due, None),
    };
    [
        (Which::Lapse, case.lapses),
        (
            Which::Discount,
            case.discount_until.filter(|_| case.discount_open),
        ),
        state_deadline,
    ]
}

/// The move `case`'s clocks make on `today`, if any: the first passed deadline among
/// lapse, discount, then the state's own (due, or enforcement by).
pub fn due_moves(case: &CaseClock, today: NaiveDate) -> Option<DeadlineMove> {
    if !clocks_run(case.state) {
        return None;
    }
    let (which, deadline) = pending(case)
        .into_iter()
        .find_map(|(which, date)| date.filter(|d| today > *d).map(|d| (which, d)))?;
    let rule = rule(case.jurisdiction, which, deadline);
    Some(match which {
        Which::Discount => DeadlineMove::DiscountEnded(rule),
        Which::Due => DeadlineMove::Overdue(rule),
        Which::Enforcement => DeadlineMove::Enforcement(rule),
        Which::Lapse => DeadlineMove::Lapsed(rule),
    })
}

/// The first day on which [`due_moves`] gives a move (it may already be past: the
/// move is then due now); `None` when the clocks do not run or no date is set.
/// `due_moves(case, day)` is `Some` exactly when `day >= next_wakeup(case)`.
pub fn next_wakeup(case: &CaseClock) -> Option<NaiveDate> {
    if !clocks_run(case.state) {
        return None;
    }
    pending(case)
        .into_iter()
        .filter_map(|(_, date)| date?.checked_add_days(Days::new(1)))
        .min()
}

/// Every move due on `today`, in order, as a scheduler applies them one by one (the
/// clock is not changed; apply each to it). At most four.
pub fn catch_up(case: &CaseClock, today: NaiveDate) -> Vec<DeadlineMove> {
    let mut clock = case.clone();
    let mut moves = Vec::new();
    while let Some(mv) = due_moves(&clock, today) {
        clock.apply(&mv);
        moves.push(mv);
    }
    moves
}
