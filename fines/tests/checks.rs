//! The checks before issuing, table by table: plate patterns, exemption validity and
//! precedence, the hot list, the duplicate window on both sides of its edge, great-circle
//! distances, the cloned-plate speed edge with and without the clock-skew allowance, and
//! the order that combines them.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction, ViolationKind};
use kozomol_fines::checks::{
    clone_conflicts, distance_m, duplicate_of, exemption, hot_list_hit, pre_issue_checks,
    CaseFacts, CheckInput, CheckOutcome, ChecksConfig, ChecksError, Coordinates, Exemption,
    ExemptionCategory, HotListEntry, HotListReason, PlatePattern, Verdict, EARTH_RADIUS_M,
};

use CaseState::*;
use ViolationKind::*;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

const T0: &str = "2026-03-10T08:00:00Z";

fn after(ms: i64) -> DateTime<Utc> {
    t(T0) + TimeDelta::milliseconds(ms)
}

const BISHKEK: Coordinates = Coordinates {
    lat_e6: 42_874_600,
    lon_e6: 74_569_800,
};
const OSH: Coordinates = Coordinates {
    lat_e6: 40_528_300,
    lon_e6: 72_798_500,
};
/// About 1 km north of BISHKEK.
const NORTH_1KM: Coordinates = Coordinates {
    lat_e6: 42_883_600,
    lon_e6: 74_569_800,
};

fn case(id: i64, site: &str, at: Coordinates, ms: i64, state: CaseState) -> CaseFacts {
    CaseFacts {
        case_id: CaseId(id),
        plate: "01KG123ABC".into(),
        kind: RedLight,
        site_id: site.into(),
        position: at,
        captured_at: after(ms),
        state,
        checks_passed: false,
    }
}

/// The case with the store's mark: it passed its checks while still `approved`.
fn passed(case: CaseFacts) -> CaseFacts {
    CaseFacts {
        checks_passed: true,
        ..case
    }
}

fn pattern(raw: &str) -> PlatePattern {
    PlatePattern::parse(raw).expect("test pattern")
}

fn exempt(
    plate: &str,
    category: ExemptionCategory,
    from: Option<&str>,
    until: Option<&str>,
) -> Exemption {
    Exemption {
        plate: pattern(plate),
        category,
        note: format!("{plate} note"),
        valid_from: from.map(d),
        valid_until: until.map(d),
    }
}

fn stolen(plate: &str) -> HotListEntry {
    HotListEntry {
        plate: plate.into(),
        reason: HotListReason::Stolen,
        note: "reported 2026-03-01".into(),
        listed_at: t("2026-03-01T10:00:00Z"),
    }
}

#[test]
fn plate_patterns_parse_normalised() {
    let table: &[(&str, Option<&str>, bool)] = &[
        // (raw, normalised or refused, exact)
        ("01KG123ABC", Some("01KG123ABC"), true),
        ("01 kg 123-abc", Some("01KG123ABC"), true),
        // Typed on a Cyrillic keyboard: the look-alike letters are the Latin ones.
        ("01 КG 123 АВС", Some("01KG123ABC"), true),
        ("D*", Some("D*"), false),
        ("cmd*", Some("CMD*"), false),
        ("??D???", Some("??D???"), false),
        ("*", None, false),
        ("?*?", None, false),
        ("", None, false),
        ("D.1*", None, false),
        ("D/1", None, false),
        ("ABCDEFGHIJKLMNOP", Some("ABCDEFGHIJKLMNOP"), true),
        ("ABCDEFGHIJKLMNOPQ", None, false),
    ];
    for &(raw, want, exact) in table {
        match (PlatePattern::parse(raw), want) {
            (Ok(p), Some(want)) => {
                assert_eq!(p.as_str(), want, "{raw}");
                assert_eq!(p.is_exact(), exact, "{raw}");
            }
            (Err(ChecksError::InvalidPattern { .. }), None) => {}
            (got, want) => panic!("{raw}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn plate_patterns_match() {
    let table: &[(&str, &str, bool)] = &[
        ("D*", "D1234", true),
        ("D*", "D", true),
        ("D*", "d 12 34", true),
        ("D*", "AD1234", false),
        ("CMD*", "CMD001", true),
        ("CMD*", "CM001", false),
        ("T*", "T01234", true),
        ("*D", "123D", true),
        ("*D", "123DA", false),
        ("*D*", "12D34", true),
        ("??D???", "01D123", true),
        ("??D???", "01D1234", false),
        ("??D???", "0D1234", false),
        ("D*1?", "D00019", true),
        ("D*1?", "D0001", false),
        ("01KG123ABC", "01KG123ABC", true),
        ("01KG123ABC", "01kg 123abc", true),
        ("01KG123ABC", "01KG123АВС", true),
        ("В1234*", "B1234AB", true),
        ("01KG123ABC", "01KG123AB", false),
        ("01KG123ABC", "01KG123ABCD", false),
        // A 2016-format plate is one plate with or without its KG.
        ("01KG123ABC", "01123ABC", true),
        ("01123ABC", "01KG123ABC", true),
        ("01KG*", "01123ABC", true),
        ("01KG123ABC", "02123ABC", false),
        ("01KG*", "01123AB", false),
        // Only the 2016 shape is read with KG: not an Uzbek or a Kazakh plate.
        ("01KG*", "01A123BC", false),
        ("01KG*", "012ABC02", false),
    ];
    for &(p, plate, want) in table {
        assert_eq!(pattern(p).matches(plate), want, "{p} vs {plate}");
    }
}

#[test]
fn exemption_validity_dates_are_inclusive() {
    use ExemptionCategory::*;
    let bounded = [exempt(
        "01KG123ABC",
        Government,
        Some("2026-01-01"),
        Some("2026-12-31"),
    )];
    let open_start = [exempt("01KG123ABC", Government, None, Some("2026-12-31"))];
    let open_end = [exempt("01KG123ABC", Government, Some("2026-01-01"), None)];
    let open = [exempt("01KG123ABC", Emergency, None, None)];
    let table: &[(&[Exemption], &str, bool)] = &[
        (&bounded, "2025-12-31", false),
        (&bounded, "2026-01-01", true),
        (&bounded, "2026-06-15", true),
        (&bounded, "2026-12-31", true),
        (&bounded, "2027-01-01", false),
        (&open_start, "1990-01-01", true),
        (&open_start, "2026-12-31", true),
        (&open_start, "2027-01-01", false),
        (&open_end, "2025-12-31", false),
        (&open_end, "2026-01-01", true),
        (&open_end, "2099-12-31", true),
        (&open, "2026-03-10", true),
    ];
    for &(list, date, want) in table {
        assert_eq!(
            exemption(list, "01KG123ABC", d(date)).is_some(),
            want,
            "{:?} on {date}",
            list[0]
        );
        assert!(exemption(list, "01KG123ABD", d(date)).is_none());
    }
}

#[test]
fn exemption_precedence() {
    use ExemptionCategory::*;
    let list = [
        exempt("D*", Diplomatic, None, None),
        exempt("CMD*", Diplomatic, None, None),
        exempt("D*", Other, None, None),
        exempt("D777", Government, None, None),
        exempt("CMD001", Government, None, Some("2025-12-31")),
        exempt("01KG999AAA", Emergency, Some("2026-03-10"), None),
    ];
    // (plate, date, expected entry index)
    let table: &[(&str, &str, Option<usize>)] = &[
        ("D123", "2026-03-10", Some(0)),   // first of two matching series
        ("D777", "2026-03-10", Some(3)),   // an exact plate wins over a series
        ("CMD001", "2026-03-10", Some(1)), // the expired exact entry falls back to the series
        ("CMD001", "2025-12-31", Some(4)),
        ("01KG999AAA", "2026-03-10", Some(5)),
        ("01KG999AAA", "2026-03-09", None),
        ("01KG123ABC", "2026-03-10", None),
    ];
    for &(plate, date, want) in table {
        let got = exemption(&list, plate, d(date));
        assert_eq!(got, want.map(|i| &list[i]), "{plate} on {date}");
    }
}

#[test]
fn exemptions_deserialize_with_patterns_checked() {
    let json = r#"[{"plate":"cmd *","category":"diplomatic","valid_until":"2026-12-31"}]"#;
    let list: Vec<Exemption> = serde_json::from_str(json).expect("exemption list");
    assert_eq!(list[0].plate.as_str(), "CMD*");
    assert_eq!(list[0].valid_from, None);
    assert_eq!(list[0].note, "");
    let everything = r#"[{"plate":"*","category":"other"}]"#;
    assert!(serde_json::from_str::<Vec<Exemption>>(everything).is_err());
    let back = serde_json::to_string(&list[0]).expect("serializes");
    assert!(back.contains(r#""plate":"CMD*""#), "{back}");
}

#[test]
fn hot_list() {
    let list = [
        stolen("01KG123ABC"),
        HotListEntry {
            reason: HotListReason::Wanted,
            ..stolen("B777XYZ")
        },
    ];
    let table: &[(&str, Option<HotListReason>)] = &[
        ("01KG123ABC", Some(HotListReason::Stolen)),
        ("01 kg 123 abc", Some(HotListReason::Stolen)),
        ("01123ABC", Some(HotListReason::Stolen)),
        ("02123ABC", None),
        ("B777XYZ", Some(HotListReason::Wanted)),
        ("01KG123ABD", None),
        ("01KG123AB", None),
    ];
    for &(plate, want) in table {
        assert_eq!(
            hot_list_hit(&list, plate).map(|e| e.reason),
            want,
            "{plate}"
        );
    }
}

#[test]
fn duplicate_window_and_candidates() {
    let config = ChecksConfig::default();
    assert_eq!(config.duplicate_window_s, 300);
    let this = case(1, "S1", BISHKEK, 0, Approved);
    let other = |ms: i64| case(2, "S1", BISHKEK, ms, Issued);
    // (description, earlier cases, expected duplicate of)
    let table: Vec<(&str, Vec<CaseFacts>, Option<i64>)> = vec![
        ("nothing else", vec![], None),
        ("itself", vec![case(1, "S1", BISHKEK, 0, Approved)], None),
        ("same instant", vec![other(0)], Some(2)),
        ("12 s before", vec![other(-12_000)], Some(2)),
        ("12 s after", vec![other(12_000)], Some(2)),
        ("window edge before", vec![other(-300_000)], Some(2)),
        ("window edge after", vec![other(300_000)], Some(2)),
        ("1 ms outside before", vec![other(-300_001)], None),
        ("1 ms outside after", vec![other(300_001)], None),
        (
            "another kind",
            vec![CaseFacts {
                kind: StopLine,
                ..other(1_000)
            }],
            None,
        ),
        (
            "another site",
            vec![CaseFacts {
                site_id: "S2".into(),
                ..other(1_000)
            }],
            None,
        ),
        (
            "another plate",
            vec![CaseFacts {
                plate: "01KG123ABD".into(),
                ..other(1_000)
            }],
            None,
        ),
        (
            "the plate spelled with spaces",
            vec![CaseFacts {
                plate: "01 KG 123 ABC".into(),
                ..other(1_000)
            }],
            Some(2),
        ),
        (
            "the plate without its KG, as the recognizer writes it",
            vec![CaseFacts {
                plate: "01123ABC".into(),
                ..other(1_000)
            }],
            Some(2),
        ),
        (
            "the earliest standing one",
            vec![
                case(5, "S1", BISHKEK, 20_000, Delivered),
                case(4, "S1", BISHKEK, -20_000, Rejected),
                case(3, "S1", BISHKEK, -10_000, Approved),
                case(2, "S1", BISHKEK, -10_000, Issued),
            ],
            Some(2),
        ),
        (
            "an approved case captured earlier",
            vec![case(2, "S1", BISHKEK, -12_000, Approved)],
            Some(2),
        ),
        (
            "an approved case captured later is left to its own checks",
            vec![case(2, "S1", BISHKEK, 12_000, Approved)],
            None,
        ),
        (
            "an approved case at the same instant with a higher id",
            vec![case(2, "S1", BISHKEK, 0, Approved)],
            None,
        ),
        (
            "an approved case at the same instant with a lower id",
            vec![case(0, "S1", BISHKEK, 0, Approved)],
            Some(0),
        ),
        (
            "a later case already past the checks",
            vec![case(2, "S1", BISHKEK, 12_000, OwnerFound)],
            Some(2),
        ),
        (
            "the earliest of an earlier approved and a later issued one",
            vec![
                case(3, "S1", BISHKEK, 12_000, Issued),
                case(2, "S1", BISHKEK, -12_000, Approved),
            ],
            Some(2),
        ),
        (
            "a later approved case that passed its checks",
            vec![passed(case(2, "S1", BISHKEK, 12_000, Approved))],
            Some(2),
        ),
        (
            "an approved case at the same instant with a higher id that passed",
            vec![passed(case(2, "S1", BISHKEK, 0, Approved))],
            Some(2),
        ),
        (
            "an earlier approved case that passed",
            vec![passed(case(2, "S1", BISHKEK, -12_000, Approved))],
            Some(2),
        ),
        (
            "a later passed case outside the window",
            vec![passed(case(2, "S1", BISHKEK, 300_001, Approved))],
            None,
        ),
        (
            "a passed case at another site",
            vec![CaseFacts {
                site_id: "S2".into(),
                ..passed(case(2, "S1", BISHKEK, 12_000, Approved))
            }],
            None,
        ),
        (
            "the mark on a case that no longer stands",
            vec![passed(case(2, "S1", BISHKEK, -12_000, Duplicate))],
            None,
        ),
        (
            "the earliest of a later passed and a later unmarked approved one",
            vec![
                case(2, "S1", BISHKEK, 5_000, Approved),
                passed(case(3, "S1", BISHKEK, 12_000, Approved)),
            ],
            Some(3),
        ),
    ];
    for (what, others, want) in table {
        let got = duplicate_of(&config, &this, &others).map(|c| c.case_id);
        assert_eq!(got, want.map(CaseId), "{what}");
    }
    let narrow = ChecksConfig {
        duplicate_window_s: 10,
        ..config
    };
    assert!(duplicate_of(&narrow, &this, &[other(10_000)]).is_some());
    assert!(duplicate_of(&narrow, &this, &[other(10_001)]).is_none());
}

#[test]
fn duplicate_defers_only_to_a_case_that_stands() {
    let config = ChecksConfig::default();
    let this = case(1, "S1", BISHKEK, 0, Approved);
    for state in CaseState::ALL {
        let stands = !matches!(
            state,
            Received | Recognized | NeedsReview | SupervisorReview | Rejected | Duplicate | Voided
        );
        let earlier = [case(2, "S1", BISHKEK, -5_000, state)];
        assert_eq!(
            duplicate_of(&config, &this, &earlier).is_some(),
            stands,
            "earlier, {state}"
        );
        // A later case is deferred to only once it is past the checks.
        let later = [case(2, "S1", BISHKEK, 5_000, state)];
        assert_eq!(
            duplicate_of(&config, &this, &later).is_some(),
            stands && state != Approved,
            "later, {state}"
        );
        // The store's mark makes an approved case past the checks.
        let later_passed = [passed(case(2, "S1", BISHKEK, 5_000, state))];
        assert_eq!(
            duplicate_of(&config, &this, &later_passed).is_some(),
            stands,
            "later with the mark, {state}"
        );
    }
}

#[test]
fn two_cases_of_one_act_checked_at_once_agree() {
    let config = ChecksConfig::default();
    // (description, first case, second case): both approved, each checked while the
    // other is still approved, as two workers would.
    let table = [
        (
            "captured apart",
            case(7, "S1", BISHKEK, 3_000, Approved),
            case(8, "S1", BISHKEK, 0, Approved),
        ),
        (
            "the same instant",
            case(7, "S1", BISHKEK, 0, Approved),
            case(8, "S1", BISHKEK, 0, Approved),
        ),
    ];
    for (what, a, b) in table {
        let a_of = duplicate_of(&config, &a, std::slice::from_ref(&b)).map(|c| c.case_id);
        let b_of = duplicate_of(&config, &b, std::slice::from_ref(&a)).map(|c| c.case_id);
        // Exactly one is the duplicate, of the other: the later in (capture, id) order.
        let (first, second) = if (a.captured_at, a.case_id) < (b.captured_at, b.case_id) {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let (first_of, second_of) = if first.case_id == a.case_id {
            (a_of, b_of)
        } else {
            (b_of, a_of)
        };
        assert_eq!(first_of, None, "{what}");
        assert_eq!(second_of, Some(first.case_id), "{what}");
        // Whichever finishes first, the other's check still agrees.
        let moved_on = CaseFacts {
            state: OwnerFound,
            ..first.clone()
        };
        assert_eq!(
            duplicate_of(&config, second, &[moved_on]).map(|c| c.case_id),
            Some(first.case_id),
            "{what}"
        );
        let set_aside = CaseFacts {
            state: Duplicate,
            ..second.clone()
        };
        assert_eq!(duplicate_of(&config, first, &[set_aside]), None, "{what}");
        // The later one let through while the earlier one was still in review carries
        // the mark: the earlier one, checked now, is its duplicate.
        assert_eq!(
            duplicate_of(&config, first, &[passed(second.clone())]).map(|c| c.case_id),
            Some(second.case_id),
            "{what}"
        );
    }
}

#[test]
fn great_circle_distances() {
    let antipode = Coordinates {
        lat_e6: -BISHKEK.lat_e6,
        lon_e6: BISHKEK.lon_e6 - 180_000_000,
    };
    let pole = |lat_e6| Coordinates { lat_e6, lon_e6: 0 };
    let east_0_001 = Coordinates {
        lon_e6: BISHKEK.lon_e6 + 1_000,
        ..BISHKEK
    };
    let half_circumference = std::f64::consts::PI * EARTH_RADIUS_M;
    // (from, to, expected metres, tolerance metres)
    let table: &[(Coordinates, Coordinates, f64, f64)] = &[
        (BISHKEK, BISHKEK, 0.0, 0.0),
        (BISHKEK, OSH, 299_468.3, 1.0),
        (OSH, BISHKEK, 299_468.3, 1.0),
        (BISHKEK, NORTH_1KM, 1_000.76, 0.01),
        (BISHKEK, east_0_001, 81.49, 0.01),
        (BISHKEK, antipode, half_circumference, 1e-3),
        (
            pole(90_000_000),
            pole(-90_000_000),
            half_circumference,
            1e-3,
        ),
        (
            Coordinates {
                lat_e6: 0,
                lon_e6: 0,
            },
            Coordinates {
                lat_e6: 0,
                lon_e6: 180_000_000,
            },
            half_circumference,
            1e-3,
        ),
    ];
    for &(a, b, want, tolerance) in table {
        let got = distance_m(a, b);
        assert!(
            (got - want).abs() <= tolerance,
            "{a:?} to {b:?}: {got} m, want {want}"
        );
    }
    assert!((half_circumference - 20_015_114.44).abs() < 0.01);
}

#[test]
fn cloned_plate_speed_edges() {
    let config = ChecksConfig::default();
    assert_eq!((config.max_plausible_kmh, config.clock_skew_s), (200, 2));
    let skew_ms = 2_000;
    let km1 = distance_m(BISHKEK, NORTH_1KM).round() as i64;
    assert_eq!(km1, 1_001);
    // At 200 km/h a car covers `km1` metres in 18 ms per metre.
    let at_max = km1 * 18;
    let far = distance_m(BISHKEK, OSH).round() as i64;
    let this = case(1, "S1", BISHKEK, 0, Approved);
    let same_point = Coordinates { ..BISHKEK };
    // (description, sighting, expected (implied km/h) or no conflict)
    let table: Vec<(&str, CaseFacts, Option<Option<u64>>)> = vec![
        (
            "exactly the max speed after the skew",
            case(2, "S2", NORTH_1KM, at_max + skew_ms, Issued),
            None,
        ),
        (
            "1 ms faster",
            case(2, "S2", NORTH_1KM, at_max + skew_ms - 1, Issued),
            Some(Some(200)),
        ),
        (
            "exactly the max speed, earlier sighting",
            case(2, "S2", NORTH_1KM, -(at_max + skew_ms), Issued),
            None,
        ),
        (
            "1 ms faster, earlier sighting",
            case(2, "S2", NORTH_1KM, -(at_max + skew_ms - 1), Issued),
            Some(Some(200)),
        ),
        (
            "the skew alone would have been plausible",
            case(2, "S2", NORTH_1KM, at_max + 1_000, Issued),
            Some(Some(212)),
        ),
        (
            "within the skew: zero interval",
            case(2, "S2", NORTH_1KM, 1_500, Issued),
            Some(None),
        ),
        (
            "the same instant at another site",
            case(2, "S2", NORTH_1KM, 0, Issued),
            Some(None),
        ),
        (
            "the same site, same instant",
            case(2, "S1", BISHKEK, 0, Issued),
            None,
        ),
        (
            "the same site id even with other coordinates",
            case(2, "S1", OSH, 0, Issued),
            None,
        ),
        (
            "another site id at the same point",
            case(2, "S1-west", same_point, 0, Issued),
            None,
        ),
        (
            "Osh an hour later",
            case(2, "OSH-1", OSH, 3_600_000, Delivered),
            Some(Some(300)),
        ),
        (
            "Osh an hour later, the plate read without its KG",
            CaseFacts {
                plate: "01123ABC".into(),
                ..case(2, "OSH-1", OSH, 3_600_000, Delivered)
            },
            Some(Some(300)),
        ),
        (
            "Osh an hour later, another plate",
            CaseFacts {
                plate: "01124ABC".into(),
                ..case(2, "OSH-1", OSH, 3_600_000, Delivered)
            },
            None,
        ),
        (
            "Osh two hours later",
            case(2, "OSH-1", OSH, 7_200_000, Delivered),
            None,
        ),
        (
            "Osh exactly at 200 km/h",
            case(2, "OSH-1", OSH, far * 18 + skew_ms, Delivered),
            None,
        ),
        (
            "a rejected sighting",
            case(2, "OSH-1", OSH, 60_000, Rejected),
            None,
        ),
        (
            "a sighting still in review",
            case(2, "OSH-1", OSH, 60_000, NeedsReview),
            Some(Some(18_588)),
        ),
        (
            "another plate",
            CaseFacts {
                plate: "01KG123ABD".into(),
                ..case(2, "OSH-1", OSH, 60_000, Issued)
            },
            None,
        ),
        ("itself", case(1, "OSH-1", OSH, 60_000, Approved), None),
    ];
    for (what, sighting, want) in table {
        let got = clone_conflicts(&config, &this, std::slice::from_ref(&sighting), &[]);
        match want {
            None => assert!(got.is_empty(), "{what}: {got:?}"),
            Some(kmh) => {
                assert_eq!(got.len(), 1, "{what}: {got:?}");
                assert_eq!(got[0].implied_kmh, kmh, "{what}: {got:?}");
                assert_eq!(got[0].case_id, sighting.case_id, "{what}");
                let apart = (sighting.captured_at - this.captured_at)
                    .num_milliseconds()
                    .unsigned_abs();
                assert_eq!(got[0].interval_ms, apart.saturating_sub(2_000), "{what}");
            }
        }
    }
}

#[test]
fn cloned_plate_without_skew_and_cleared() {
    let no_skew = ChecksConfig {
        clock_skew_s: 0,
        ..ChecksConfig::default()
    };
    let this = case(1, "S1", BISHKEK, 0, Approved);
    let at_max = 1_001 * 18;
    let edge = [case(2, "S2", NORTH_1KM, at_max, Issued)];
    assert!(clone_conflicts(&no_skew, &this, &edge, &[]).is_empty());
    let inside = [case(2, "S2", NORTH_1KM, at_max - 1, Issued)];
    assert_eq!(clone_conflicts(&no_skew, &this, &inside, &[]).len(), 1);
    let slower = ChecksConfig {
        max_plausible_kmh: 100,
        ..no_skew
    };
    assert_eq!(clone_conflicts(&slower, &this, &edge, &[]).len(), 1);
    // Several conflicts come back in capture order; a cleared one is left out.
    let others = [
        case(7, "OSH-1", OSH, 120_000, Issued),
        case(6, "OSH-2", OSH, -60_000, Issued),
        case(5, "S2", NORTH_1KM, 0, Issued),
    ];
    let all = clone_conflicts(&no_skew, &this, &others, &[]);
    let ids: Vec<i64> = all.iter().map(|c| c.case_id.0).collect();
    assert_eq!(ids, [6, 5, 7]);
    assert_eq!(all[0].distance_m, 299_468);
    let cleared = clone_conflicts(&no_skew, &this, &others, &[CaseId(6), CaseId(7)]);
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0].case_id, CaseId(5));
}

fn check(
    case: &CaseFacts,
    exemptions: &[Exemption],
    hot_list: &[HotListEntry],
    others: &[CaseFacts],
) -> CheckOutcome {
    pre_issue_checks(
        &ChecksConfig::default(),
        &CheckInput {
            jurisdiction: Jurisdiction::Kg,
            case,
            exemptions,
            hot_list,
            others,
            clone_cleared: &[],
        },
    )
}

#[test]
fn combination_order() {
    use ExemptionCategory::*;
    let this = case(1, "S1", BISHKEK, 0, Approved);
    let listed = [exempt("01KG*", Government, None, None)];
    let duplicate = case(2, "S1", BISHKEK, -5_000, Issued);
    let clone = case(3, "OSH-1", OSH, 60_000, Issued);
    let hot = [stolen("01KG123ABC")];
    // (description, exemptions, others, expected verdict name, target state)
    type Row<'a> = (
        &'a str,
        &'a [Exemption],
        Vec<CaseFacts>,
        &'a str,
        Option<CaseState>,
    );
    let table: Vec<Row> = vec![
        (
            "exempt beats duplicate and clone",
            &listed,
            vec![duplicate.clone(), clone.clone()],
            "exempt",
            Some(Exempt),
        ),
        (
            "duplicate beats clone",
            &[],
            vec![clone.clone(), duplicate.clone()],
            "duplicate",
            Some(Duplicate),
        ),
        (
            "clone alone",
            &[],
            vec![clone.clone()],
            "supervisor_review",
            Some(SupervisorReview),
        ),
        ("nothing", &[], vec![], "proceed", None),
    ];
    for (what, exemptions, others, verdict, to) in table {
        for hot_list in [&[][..], &hot[..]] {
            let out = check(&this, exemptions, hot_list, &others);
            let name = match &out.verdict {
                Verdict::Exempt { .. } => "exempt",
                Verdict::Duplicate { .. } => "duplicate",
                Verdict::SupervisorReview { .. } => "supervisor_review",
                Verdict::Proceed => "proceed",
            };
            assert_eq!((name, out.to), (verdict, to), "{what}");
            assert_eq!(out.hot_list.is_some(), !hot_list.is_empty(), "{what}");
            assert_eq!(
                out.reason.contains("hot list (stolen, listed 2026-03-01)"),
                !hot_list.is_empty(),
                "{what}: {}",
                out.reason
            );
        }
    }
}

#[test]
fn outcome_details_and_reasons() {
    use ExemptionCategory::*;
    let this = case(1, "S1", BISHKEK, 0, Approved);

    let listed = [exempt("CMD*", Diplomatic, None, Some("2026-03-10"))];
    let diplomat = CaseFacts {
        plate: "CMD001".into(),
        ..this.clone()
    };
    let out = check(&diplomat, &listed, &[], &[]);
    assert_eq!(
        out.verdict,
        Verdict::Exempt {
            exemption: listed[0].clone()
        }
    );
    assert_eq!(
        out.reason,
        "plate CMD001 is exempt on 2026-03-10: diplomatic (series CMD*): CMD* note"
    );
    // The validity date is read in the jurisdiction's time zone: 20:00 UTC on 10 March is
    // already 11 March in Bishkek (UTC+6), after the entry's last day.
    let late = CaseFacts {
        captured_at: t("2026-03-10T20:00:00Z"),
        ..diplomat.clone()
    };
    assert_eq!(check(&late, &listed, &[], &[]).verdict, Verdict::Proceed);

    let out = check(&this, &[], &[], &[case(2, "S1", BISHKEK, -12_500, Issued)]);
    assert_eq!(out.verdict, Verdict::Duplicate { of: CaseId(2) });
    assert_eq!(
        out.reason,
        "duplicate of case 2: red_light by plate 01KG123ABC at site S1, captured 12.5 s before this one (window 300 s)"
    );

    let out = check(&this, &[], &[], &[case(3, "OSH-1", OSH, 3_600_000, Issued)]);
    match &out.verdict {
        Verdict::SupervisorReview { conflicts } => {
            assert_eq!(conflicts.len(), 1);
            assert_eq!(conflicts[0].distance_m, 299_468);
            assert_eq!(conflicts[0].interval_ms, 3_598_000);
            assert_eq!(conflicts[0].implied_kmh, Some(300));
        }
        other => panic!("expected a supervisor review, got {other:?}"),
    }
    assert_eq!(
        out.reason,
        "possible cloned plate 01KG123ABC: seen faster than 200 km/h allows (clock skew 2 s): case 3 at site OSH-1 299.5 km away (300 km/h); review, not a fine"
    );

    // A supervisor who weighed that sighting is not asked again.
    let others = [case(3, "OSH-1", OSH, 3_600_000, Issued)];
    let out = pre_issue_checks(
        &ChecksConfig::default(),
        &CheckInput {
            jurisdiction: Jurisdiction::Kg,
            case: &this,
            exemptions: &[],
            hot_list: &[],
            others: &others,
            clone_cleared: &[CaseId(3)],
        },
    );
    assert_eq!((out.verdict, out.to), (Verdict::Proceed, None));

    let json = serde_json::to_value(check(&this, &[], &[stolen("01KG123ABC")], &others))
        .expect("outcome serializes");
    assert_eq!(json["verdict"], "supervisor_review");
    assert_eq!(json["to"], "supervisor_review");
    assert_eq!(json["conflicts"][0]["case_id"], 3);
    assert_eq!(json["hot_list"]["reason"], "stolen");
    let back: CheckOutcome = serde_json::from_value(json).expect("outcome deserializes");
    assert!(matches!(back.verdict, Verdict::SupervisorReview { .. }));
}

#[test]
fn config_defaults_and_validation() {
    let empty: ChecksConfig = toml::from_str("").expect("empty table");
    assert_eq!(empty, ChecksConfig::default());
    let partial: ChecksConfig = toml::from_str("duplicate_window_s = 60").expect("one field");
    assert_eq!(
        partial,
        ChecksConfig {
            duplicate_window_s: 60,
            ..ChecksConfig::default()
        }
    );
    assert!(toml::from_str::<ChecksConfig>("window = 60").is_err());
    assert_eq!(ChecksConfig::default().validate(), Ok(()));
    let zero = ChecksConfig {
        max_plausible_kmh: 0,
        ..ChecksConfig::default()
    };
    assert_eq!(zero.validate(), Err(ChecksError::ZeroMaxSpeed));
}
