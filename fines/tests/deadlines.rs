//! The deadlines engine's rules, table by table: every state on the deadline day and
//! the day after, lapse winning, paused and closed states, idempotence, the next wake-up,
//! and a Kazakh and a Kyrgyz case dated by `quote` walked day by day from delivery to
//! lapse.

use chrono::{Days, NaiveDate};
use kozomol_core::{CaseState, Jurisdiction, ViolationKind};
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::deadlines::{
    catch_up, clocks_run, due_moves, next_wakeup, CaseClock, DeadlineMove,
};
use kozomol_fines::quote::{quote, Offence, Pricing, Speed};

use CaseState::*;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

/// A Kazakh clock with the dates `kozomol quote` prints for an offence on 2026-03-10
/// delivered on 2026-03-12.
fn clock(state: CaseState, discount_open: bool) -> CaseClock {
    CaseClock {
        jurisdiction: Jurisdiction::Kz,
        state,
        discount_until: Some(d("2026-03-26")),
        due: Some(d("2026-04-26")),
        enforcement_by: Some(d("2026-05-06")),
        lapses: Some(d("2027-03-27")),
        discount_open,
    }
}

fn summary(mv: &Option<DeadlineMove>) -> Option<(&'static str, NaiveDate)> {
    mv.as_ref().map(|m| (m.as_str(), m.rule().deadline))
}

#[test]
fn states_around_each_edge() {
    // (state, discount open, today, expected move and the deadline that made it)
    type Expected = Option<(&'static str, &'static str)>;
    let table: &[(CaseState, bool, &str, Expected)] = &[
        (Delivered, true, "2026-03-12", None),
        (Delivered, true, "2026-03-26", None),
        (
            Delivered,
            true,
            "2026-03-27",
            Some(("discount_ended", "2026-03-26")),
        ),
        (Delivered, false, "2026-03-27", None),
        (Delivered, false, "2026-04-26", None),
        (
            Delivered,
            false,
            "2026-04-27",
            Some(("overdue", "2026-04-26")),
        ),
        (PartiallyPaid, false, "2026-04-26", None),
        (
            PartiallyPaid,
            false,
            "2026-04-27",
            Some(("overdue", "2026-04-26")),
        ),
        (
            PartiallyPaid,
            true,
            "2026-03-27",
            Some(("discount_ended", "2026-03-26")),
        ),
        // The earliest deadline moves first when several passed.
        (
            Delivered,
            true,
            "2026-05-10",
            Some(("discount_ended", "2026-03-26")),
        ),
        (Overdue, false, "2026-04-27", None),
        (Overdue, false, "2026-05-06", None),
        (
            Overdue,
            false,
            "2026-05-07",
            Some(("enforcement", "2026-05-06")),
        ),
        (Enforcement, false, "2026-05-07", None),
        (Enforcement, false, "2027-03-27", None),
        (
            Enforcement,
            false,
            "2027-03-28",
            Some(("lapsed", "2027-03-27")),
        ),
        // Lapse wins over everything else due on the same day.
        (
            Overdue,
            false,
            "2027-03-27",
            Some(("enforcement", "2026-05-06")),
        ),
        (Overdue, false, "2027-03-28", Some(("lapsed", "2027-03-27"))),
        (
            Delivered,
            false,
            "2027-03-28",
            Some(("lapsed", "2027-03-27")),
        ),
        (
            Delivered,
            true,
            "2027-03-28",
            Some(("lapsed", "2027-03-27")),
        ),
        (
            PartiallyPaid,
            true,
            "2027-03-28",
            Some(("lapsed", "2027-03-27")),
        ),
        // Before delivery, closed, paused: no move, however late.
        (Issued, true, "2027-03-28", None),
        (Paid, false, "2027-03-28", None),
        (PaidDiscounted, false, "2027-03-28", None),
        (Appealed, true, "2026-03-27", None),
        (Appealed, false, "2027-03-28", None),
        (AppealRejected, false, "2027-03-28", None),
        (Annulled, false, "2027-03-28", None),
        (Refunded, false, "2027-03-28", None),
        (Voided, false, "2027-03-28", None),
        (Lapsed, false, "2028-01-01", None),
    ];
    for &(state, open, today, want) in table {
        let got = due_moves(&clock(state, open), d(today));
        assert_eq!(
            summary(&got),
            want.map(|(name, date)| (name, d(date))),
            "{state} (discount open: {open}) on {today}"
        );
        if let Some(mv) = &got {
            assert_eq!(
                mv.to(),
                match mv.as_str() {
                    "discount_ended" => None,
                    "overdue" => Some(Overdue),
                    "enforcement" => Some(Enforcement),
                    _ => Some(Lapsed),
                }
            );
        }
    }
}

#[test]
fn clocks_run_only_in_unpaid_states_after_delivery() {
    let far = d("2030-01-01");
    for state in CaseState::ALL {
        let runs = matches!(state, Delivered | PartiallyPaid | Overdue | Enforcement);
        assert_eq!(clocks_run(state), runs, "{state}");
        assert_eq!(
            due_moves(&clock(state, true), far).is_some(),
            runs,
            "{state}"
        );
        assert_eq!(next_wakeup(&clock(state, true)).is_some(), runs, "{state}");
    }
}

#[test]
fn no_dates_no_moves() {
    let undated = CaseClock {
        jurisdiction: Jurisdiction::Kz,
        state: Delivered,
        discount_until: None,
        due: None,
        enforcement_by: None,
        lapses: None,
        discount_open: true,
    };
    assert_eq!(due_moves(&undated, d("2030-01-01")), None);
    assert_eq!(next_wakeup(&undated), None);
}

#[test]
fn rules_cite_the_law() {
    let table: &[(CaseState, bool, &str, Jurisdiction, &str)] = &[
        (
            Delivered,
            true,
            "2026-03-27",
            Jurisdiction::Kz,
            "discount until 2026-03-26 passed (КоАП РК art. 811 part 1)",
        ),
        (
            Delivered,
            false,
            "2026-04-27",
            Jurisdiction::Kz,
            "due 2026-04-26 passed (КоАП РК art. 893)",
        ),
        (
            Overdue,
            false,
            "2026-05-07",
            Jurisdiction::Kz,
            "enforcement by 2026-05-06 passed (КоАП РК art. 896)",
        ),
        (
            Enforcement,
            false,
            "2027-03-28",
            Jurisdiction::Kz,
            "lapses 2027-03-27 passed (КоАП РК art. 890)",
        ),
        (
            Delivered,
            false,
            "2026-04-27",
            Jurisdiction::Kg,
            "due 2026-04-26 passed (Кодекс о правонарушениях КР, article unconfirmed)",
        ),
    ];
    for &(state, open, today, jurisdiction, text) in table {
        let c = CaseClock {
            jurisdiction,
            ..clock(state, open)
        };
        let mv = due_moves(&c, d(today)).expect("a move");
        assert_eq!(mv.rule().text, text);
    }
}

#[test]
fn applying_a_move_makes_it_not_due_again() {
    let days = [
        "2026-03-27",
        "2026-04-27",
        "2026-05-07",
        "2026-06-01",
        "2027-03-28",
    ];
    for state in [Delivered, PartiallyPaid, Overdue, Enforcement] {
        for open in [true, false] {
            for today in days {
                let mut c = clock(state, open);
                let Some(first) = due_moves(&c, d(today)) else {
                    continue;
                };
                c.apply(&first);
                assert!(!c.discount_open, "{state} on {today}");
                if let Some(to) = first.to() {
                    assert_eq!(c.state, to);
                }
                let again = due_moves(&c, d(today));
                assert_ne!(
                    summary(&again).map(|s| s.0),
                    Some(first.as_str()),
                    "{state} (open: {open}) on {today}: {first:?} twice"
                );
                // Everything due applied, nothing is due any more that day.
                for mv in catch_up(&c, d(today)) {
                    c.apply(&mv);
                }
                assert_eq!(due_moves(&c, d(today)), None, "{state} on {today}");
            }
        }
    }
}

#[test]
fn catch_up_walks_the_state_machine_in_order() {
    let table: &[(CaseState, bool, &str, &[&str])] = &[
        (Delivered, true, "2026-03-26", &[]),
        (Delivered, true, "2026-03-27", &["discount_ended"]),
        (
            Delivered,
            true,
            "2026-05-07",
            &["discount_ended", "overdue", "enforcement"],
        ),
        (
            PartiallyPaid,
            false,
            "2026-05-07",
            &["overdue", "enforcement"],
        ),
        (Delivered, true, "2027-03-28", &["lapsed"]),
        (Appealed, true, "2027-03-28", &[]),
    ];
    for &(state, open, today, want) in table {
        let moves = catch_up(&clock(state, open), d(today));
        let names: Vec<&str> = moves.iter().map(DeadlineMove::as_str).collect();
        assert_eq!(names, want, "{state} on {today}");
    }
}

#[test]
fn next_wakeup_is_the_first_day_a_move_is_due() {
    let table: &[(CaseState, bool, Option<&str>)] = &[
        (Delivered, true, Some("2026-03-27")),
        (Delivered, false, Some("2026-04-27")),
        (PartiallyPaid, false, Some("2026-04-27")),
        (Overdue, false, Some("2026-05-07")),
        (Enforcement, false, Some("2027-03-28")),
        (Appealed, true, None),
        (Paid, false, None),
    ];
    for &(state, open, want) in table {
        let c = clock(state, open);
        let wake = next_wakeup(&c);
        assert_eq!(wake, want.map(d), "{state}");
        // due_moves gives a move exactly from the wake-up day on.
        let mut day = d("2026-03-12");
        while day <= d("2027-04-30") {
            assert_eq!(
                due_moves(&c, day).is_some(),
                wake.is_some_and(|w| day >= w),
                "{state} on {day}"
            );
            day = day + Days::new(1);
        }
    }
}

#[test]
fn moves_serialize_with_their_rule() {
    let mv = due_moves(&clock(Delivered, false), d("2026-04-27")).expect("overdue");
    let json = serde_json::to_value(&mv).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "move": "overdue",
            "deadline": "2026-04-26",
            "text": "due 2026-04-26 passed (КоАП РК art. 893)"
        })
    );
    let back: DeadlineMove = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, mv);
}

/// Walks a case dated by `quote` from delivery until well past its lapse, applying every
/// move the day it is due, and returns (day, move, deadline).
fn walk(
    jurisdiction: Jurisdiction,
    date: &str,
    delivered: &str,
) -> Vec<(NaiveDate, String, NaiveDate)> {
    let offence = Offence {
        jurisdiction,
        kind: ViolationKind::Speeding,
        speed: Some(Speed {
            measured_kmh: 125,
            limit_kmh: 60,
        }),
        date: d(date),
        delivered: Some(d(delivered)),
        repeat: false,
    };
    let priced = quote(
        &Catalogue::bundled(jurisdiction),
        &Calendars::bundled(),
        &offence,
    )
    .expect("prices");
    let Pricing::Fine(q) = priced else {
        panic!("{offence:?} should be a fine");
    };
    let mut c = CaseClock::from_quote(Delivered, &q);
    assert!(c.discount_open);
    let mut seen = Vec::new();
    let mut day = d(delivered);
    let end = q.lapses.expect("dated") + Days::new(30);
    while day <= end {
        if let Some(mv) = due_moves(&c, day) {
            assert_eq!(next_wakeup(&c), Some(day), "{mv:?}");
            c.apply(&mv);
            assert_eq!(due_moves(&c, day), None, "a second move on {day}");
            seen.push((day, mv.as_str().to_owned(), mv.rule().deadline));
        }
        day = day + Days::new(1);
    }
    assert_eq!(c.state, Lapsed);
    assert_eq!(next_wakeup(&c), None);
    seen
}

#[test]
fn a_kazakh_case_from_delivery_to_lapse() {
    // 65 km/h over on 10 March 2026, delivered 12 March: discount until the 7th working
    // day (26 March: weekends, Nauryz and the days off it moves are not counted),
    // effective 27 March, due 26 April, enforcement by 6 May, lapses 27 March 2027.
    let seen = walk(Jurisdiction::Kz, "2026-03-10", "2026-03-12");
    let want = [
        ("2026-03-27", "discount_ended", "2026-03-26"),
        ("2026-04-27", "overdue", "2026-04-26"),
        ("2026-05-07", "enforcement", "2026-05-06"),
        ("2027-03-28", "lapsed", "2027-03-27"),
    ];
    let want: Vec<(NaiveDate, String, NaiveDate)> = want
        .iter()
        .map(|&(day, mv, deadline)| (d(day), mv.to_owned(), d(deadline)))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn a_kyrgyz_case_from_delivery_to_lapse() {
    // Calendar days: discount 15 days (27 March), effective 10 days (22 March), due 30
    // days later (21 April), enforcement by 10 days after (1 May), lapses 22 March 2027.
    let seen = walk(Jurisdiction::Kg, "2026-03-10", "2026-03-12");
    let want = [
        ("2026-03-28", "discount_ended", "2026-03-27"),
        ("2026-04-22", "overdue", "2026-04-21"),
        ("2026-05-02", "enforcement", "2026-05-01"),
        ("2027-03-23", "lapsed", "2027-03-22"),
    ];
    let want: Vec<(NaiveDate, String, NaiveDate)> = want
        .iter()
        .map(|&(day, mv, deadline)| (d(day), mv.to_owned(), d(deadline)))
        .collect();
    assert_eq!(seen, want);
}
