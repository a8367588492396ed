//! The catalogue and the pricing rules, table by table: every article and band, the
//! band edges, the unit value on either side of a new year, and the deadlines across
//! weekends, holidays and the year's end.

use chrono::NaiveDate;
use kozomol_core::{Currency, Jurisdiction, Money, ViolationKind};
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::quote::{quote, Offence, Pricing, Quote, Speed};
use kozomol_fines::FinesError;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn offence(j: Jurisdiction, kind: ViolationKind, excess: Option<u16>, date: &str) -> Offence {
    Offence {
        jurisdiction: j,
        kind,
        speed: excess.map(|over| Speed {
            measured_kmh: 60 + over,
            limit_kmh: 60,
        }),
        date: d(date),
        delivered: None,
        repeat: false,
    }
}

fn price(o: &Offence) -> Result<Pricing, FinesError> {
    quote(
        &Catalogue::bundled(o.jurisdiction),
        &Calendars::bundled(),
        o,
    )
}

fn fine(o: &Offence) -> Quote {
    match price(o) {
        Ok(Pricing::Fine(q)) => q,
        other => panic!("{o:?} should be a fine, got {other:?}"),
    }
}

use ViolationKind::*;

#[test]
fn kazakhstan_articles_and_bands() {
    let kz = Jurisdiction::Kz;
    // (kind, excess km/h, repeat, date, article, units, amount in tiyn)
    // (kind, excess km/h, repeat, date, article, units, amount in tiyn)
    type Row = (
        ViolationKind,
        Option<u16>,
        bool,
        &'static str,
        &'static str,
        u32,
        i64,
    );
    let table: &[Row] = &[
        (
            Speeding,
            Some(10),
            false,
            "2026-03-10",
            "592.1",
            5,
            2_162_500,
        ),
        (
            Speeding,
            Some(15),
            false,
            "2026-03-10",
            "592.1",
            5,
            2_162_500,
        ),
        // Shared edges go to the milder band.
        (
            Speeding,
            Some(20),
            false,
            "2026-03-10",
            "592.1",
            5,
            2_162_500,
        ),
        (
            Speeding,
            Some(21),
            false,
            "2026-03-10",
            "592.2",
            10,
            4_325_000,
        ),
        (
            Speeding,
            Some(40),
            false,
            "2026-03-10",
            "592.2",
            10,
            4_325_000,
        ),
        (
            Speeding,
            Some(41),
            false,
            "2026-03-10",
            "592.3",
            20,
            8_650_000,
        ),
        (
            Speeding,
            Some(59),
            false,
            "2026-03-10",
            "592.3",
            20,
            8_650_000,
        ),
        // "На шестьдесят и более": 60 itself is the top band.
        (
            Speeding,
            Some(60),
            false,
            "2026-03-10",
            "592.3-1",
            40,
            17_300_000,
        ),
        (
            Speeding,
            Some(120),
            false,
            "2026-03-10",
            "592.3-1",
            40,
            17_300_000,
        ),
        // Repeats: parts 4 and 5; part 1 has no repeat part.
        (
            Speeding,
            Some(15),
            true,
            "2026-03-10",
            "592.1",
            5,
            2_162_500,
        ),
        (
            Speeding,
            Some(30),
            true,
            "2026-03-10",
            "592.4",
            30,
            12_975_000,
        ),
        (
            Speeding,
            Some(50),
            true,
            "2026-03-10",
            "592.4",
            30,
            12_975_000,
        ),
        (
            Speeding,
            Some(70),
            true,
            "2026-03-10",
            "592.5",
            60,
            25_950_000,
        ),
        // Before part 3-1 (Law of 03.10.2024, in force 04.12.2024) part 3 was the top
        // band: signing it changed nothing.
        (
            Speeding,
            Some(70),
            false,
            "2024-10-03",
            "592.3",
            20,
            7_384_000,
        ),
        (
            Speeding,
            Some(70),
            false,
            "2024-12-03",
            "592.3",
            20,
            7_384_000,
        ),
        (
            Speeding,
            Some(70),
            false,
            "2024-12-04",
            "592.3-1",
            40,
            14_768_000,
        ),
        (RedLight, None, false, "2026-03-10", "599.1", 10, 4_325_000),
        (RedLight, None, true, "2026-03-10", "599.2", 15, 6_487_500),
        (StopLine, None, false, "2026-03-10", "601.1", 3, 1_297_500),
        (StopLine, None, true, "2026-03-10", "601.2", 10, 4_325_000),
        (BusLane, None, false, "2026-03-10", "601.1", 3, 1_297_500),
        (WrongLane, None, false, "2026-03-10", "596.2", 15, 6_487_500),
        (WrongLane, None, true, "2026-03-10", "596.4", 30, 12_975_000),
        (SeatBelt, None, false, "2026-03-10", "593.2", 5, 2_162_500),
        (SeatBelt, None, true, "2026-03-10", "593.3", 10, 4_325_000),
        (Phone, None, false, "2026-03-10", "591.1", 5, 2_162_500),
        (Phone, None, true, "2026-03-10", "591.2", 10, 4_325_000),
        // The МРП in force on the offence date: 3,932 tenge in 2025, 4,325 in 2026.
        (RedLight, None, false, "2025-12-31", "599.1", 10, 3_932_000),
        (RedLight, None, false, "2026-01-01", "599.1", 10, 4_325_000),
    ];
    for &(kind, excess, repeat, date, article, units, minor) in table {
        let mut o = offence(kz, kind, excess, date);
        o.repeat = repeat;
        let q = fine(&o);
        let case = format!("{kind} {excess:?} repeat={repeat} {date}");
        assert_eq!(q.article, article, "{case}");
        assert_eq!(q.units, units, "{case}");
        assert_eq!(q.amount, Money::new(minor, Currency::KZT), "{case}");
        assert_eq!(
            q.discounted_amount,
            Some(Money::new(minor / 2, Currency::KZT)),
            "{case}"
        );
        assert!(q.unconfirmed.is_empty(), "{case}: {:?}", q.unconfirmed);
    }
}

#[test]
fn kyrgyzstan_articles_and_bands() {
    let kg = Jurisdiction::Kg;
    // (kind, excess, date, units, amount in tyiyn); 1 РП = 100 som.
    let table: &[(ViolationKind, Option<u16>, &str, u32, i64)] = &[
        (Speeding, Some(41), "2026-03-10", 75, 750_000),
        (Speeding, Some(59), "2026-03-10", 75, 750_000),
        (Speeding, Some(60), "2026-03-10", 150, 1_500_000),
        (RedLight, None, "2026-03-10", 50, 500_000),
        (OncomingLane, None, "2023-03-08", 150, 1_500_000),
        (StopLine, None, "2026-03-10", 10, 100_000),
        (SeatBelt, None, "2025-10-01", 10, 100_000),
    ];
    for &(kind, excess, date, units, minor) in table {
        let q = fine(&offence(kg, kind, excess, date));
        assert_eq!(
            (q.units, q.amount),
            (units, Money::new(minor, Currency::KGS)),
            "{kind} {date}"
        );
        assert_eq!(
            q.discounted_amount,
            Some(Money::new(minor / 2, Currency::KGS))
        );
        // No article number is confirmed, nor the procedure periods.
        assert!(q.unconfirmed.contains(&"article".to_owned()), "{kind}");
        assert!(q.unconfirmed.contains(&"discount".to_owned()), "{kind}");
    }
    let mut repeat = offence(kg, RedLight, None, "2026-03-10");
    repeat.repeat = true;
    let q = fine(&repeat);
    assert_eq!(q.units, 50);
    assert!(q.unconfirmed.contains(&"repeat".to_owned()));
}

#[test]
fn no_fine_and_refusals() {
    use Jurisdiction::*;
    // Below the lowest band, and a sanction that is not a fine: no fine.
    for o in [
        offence(Kz, Speeding, Some(9), "2026-03-10"),
        offence(Kz, Speeding, Some(1), "2026-03-10"),
        offence(Kz, OncomingLane, None, "2026-03-10"),
    ] {
        assert!(matches!(price(&o), Ok(Pricing::NoFine(_))), "{o:?}");
    }
    // Errors: amounts never found, articles not yet in force, no unit value, no speed.
    type Expect = fn(&FinesError) -> bool;
    let table: Vec<(Offence, Expect)> = vec![
        (offence(Kg, Speeding, Some(15), "2026-03-10"), |e| {
            matches!(e, FinesError::UnknownAmount { .. })
        }),
        (offence(Kg, Speeding, Some(30), "2026-03-10"), |e| {
            matches!(e, FinesError::UnknownAmount { .. })
        }),
        (offence(Kg, Phone, None, "2026-03-10"), |e| {
            matches!(e, FinesError::UnknownAmount { .. })
        }),
        (offence(Kg, BusLane, None, "2026-03-10"), |e| {
            matches!(e, FinesError::UnknownAmount { .. })
        }),
        (offence(Kg, OncomingLane, None, "2023-03-07"), |e| {
            matches!(e, FinesError::NoArticle { .. })
        }),
        (offence(Kg, SeatBelt, None, "2025-09-30"), |e| {
            matches!(e, FinesError::NoArticle { .. })
        }),
        (offence(Kz, RedLight, None, "2023-12-31"), |e| {
            matches!(e, FinesError::NoUnitValue { .. })
        }),
        (offence(Kz, Speeding, None, "2026-03-10"), |e| {
            *e == FinesError::SpeedMissing
        }),
        (offence(Kz, Speeding, Some(0), "2026-03-10"), |e| {
            *e == FinesError::SpeedMissing
        }),
    ];
    for (o, expected) in table {
        match price(&o) {
            Err(e) => assert!(expected(&e), "{o:?}: {e}"),
            other => panic!("{o:?} should fail, got {other:?}"),
        }
    }
    let mut early = offence(Kz, RedLight, None, "2026-03-10");
    early.delivered = Some(d("2026-03-09"));
    assert!(matches!(
        price(&early),
        Err(FinesError::DeliveryBeforeOffence { .. })
    ));
}

#[test]
fn deadlines_run_from_delivery() {
    // (jurisdiction, offence, delivered, discount_until, appeal_until, effective, due,
    //  enforcement_by, lapses)
    let table = [
        // KZ: 7 working days (Nauryz 21-25 March in the way), appeal 10 days, decided
        // after 15, due 30 after that, enforcement within 10, lapse a year after effect.
        (
            Jurisdiction::Kz,
            "2026-03-10",
            "2026-03-12",
            "2026-03-26",
            "2026-03-22",
            "2026-03-27",
            "2026-04-26",
            "2026-05-06",
            "2027-03-27",
        ),
        // Delivered on a Friday before an ordinary weekend.
        (
            Jurisdiction::Kz,
            "2026-06-01",
            "2026-06-05",
            "2026-06-16",
            "2026-06-15",
            "2026-06-20",
            "2026-07-20",
            "2026-07-30",
            "2027-06-20",
        ),
        // Across the year's end: 1-2 January, the weekend, 4 January (moved) and
        // 7 January are not counted.
        (
            Jurisdiction::Kz,
            "2026-12-20",
            "2026-12-28",
            "2027-01-11",
            "2027-01-07",
            "2027-01-12",
            "2027-02-11",
            "2027-02-21",
            "2028-01-12",
        ),
        // KG: 15 calendar days.
        (
            Jurisdiction::Kg,
            "2026-03-10",
            "2026-03-12",
            "2026-03-27",
            "2026-03-22",
            "2026-03-22",
            "2026-04-21",
            "2026-05-01",
            "2027-03-22",
        ),
        // The delivery day itself is not counted; a leap day is.
        (
            Jurisdiction::Kg,
            "2027-12-01",
            "2028-02-20",
            "2028-03-06",
            "2028-03-01",
            "2028-03-01",
            "2028-03-31",
            "2028-04-10",
            "2029-03-01",
        ),
    ];
    for (j, date, delivered, discount, appeal, effective, due, enforcement, lapses) in table {
        let mut o = offence(j, RedLight, None, date);
        o.delivered = Some(d(delivered));
        let q = fine(&o);
        let case = format!("{j} delivered {delivered}");
        assert_eq!(q.discount_until, Some(d(discount)), "{case}");
        assert_eq!(q.appeal_until, Some(d(appeal)), "{case}");
        assert_eq!(q.effective, Some(d(effective)), "{case}");
        assert_eq!(q.due, Some(d(due)), "{case}");
        assert_eq!(q.enforcement_by, Some(d(enforcement)), "{case}");
        assert_eq!(q.lapses, Some(d(lapses)), "{case}");
    }
    // Without delivery, no clock has started.
    let q = fine(&offence(Jurisdiction::Kz, RedLight, None, "2026-03-10"));
    assert_eq!(
        (q.discount_until, q.due, q.appeal_until, q.lapses),
        (None, None, None, None)
    );
}

#[test]
fn working_day_counts_name_their_unconfirmed_calendars() {
    let mut o = offence(Jurisdiction::Kz, RedLight, None, "2026-12-20");
    o.delivered = Some(d("2026-12-28"));
    assert_eq!(
        fine(&o).unconfirmed,
        ["calendar kz 2026", "calendar kz 2027"]
    );
    // A count that needs a year with no calendar file is refused.
    o.date = d("2027-12-20");
    o.delivered = Some(d("2027-12-28"));
    assert_eq!(
        price(&o),
        Err(FinesError::NoCalendar {
            jurisdiction: Jurisdiction::Kz,
            year: 2028
        })
    );
}

#[test]
fn quote_json_has_the_documented_shape() {
    let mut o = offence(Jurisdiction::Kz, Speeding, Some(25), "2026-03-10");
    o.delivered = Some(d("2026-03-12"));
    let json = serde_json::to_value(fine(&o)).expect("quote serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "jurisdiction": "kz", "kind": "speeding", "article": "592.2",
            "unit": "MRP", "units": 10,
            "amount": {"minor": 4_325_000, "currency": "KZT"},
            "discounted_amount": {"minor": 2_162_500, "currency": "KZT"},
            "discount_until": "2026-03-26", "due": "2026-04-26",
            "appeal_until": "2026-03-22", "lapses": "2027-03-27",
            "unconfirmed": ["calendar kz 2026"],
        })
    );
}

#[test]
fn catalogue_files_are_checked() {
    let head = "jurisdiction = \"kz\"\nunit = \"MRP\"\n\
        [[unit_values]]\nfrom = \"2026-01-01\"\nvalue = 4325\n\
        [[procedure]]\nfrom = \"2026-01-01\"\ndiscount_percent = 50\ndiscount_days = 7\n\
        discount_working_days = true\nappeal_days = 10\neffective_days = 15\ndue_days = 30\n\
        enforcement_days = 10\nlapse_months = 12\n";
    let band = |from: u16, below: Option<u16>| {
        let below = below
            .map(|b| format!("over_below = {b}\n"))
            .unwrap_or_default();
        format!(
            "[[articles]]\nkind = \"speeding\"\narticle = \"a{from}\"\ntitle = \"t\"\n\
             over_from = {from}\n{below}units = 5\nfrom = \"2026-01-01\"\n"
        )
    };
    let table = [
        (format!("{}{}", band(10, Some(20)), band(20, None)), true),
        // Overlap, gap, closed top band.
        (format!("{}{}", band(10, Some(21)), band(20, None)), false),
        (format!("{}{}", band(10, Some(20)), band(25, None)), false),
        (format!("{}{}", band(10, Some(20)), band(20, Some(30))), false),
        (band(20, Some(10)), false),
        // A fine without units; units on a suspension.
        ("[[articles]]\nkind = \"red_light\"\narticle = \"x\"\ntitle = \"t\"\nfrom = \"2026-01-01\"\n".into(), false),
        ("[[articles]]\nkind = \"red_light\"\narticle = \"x\"\ntitle = \"t\"\nsanction = \"licence_suspension\"\nunits = 3\nfrom = \"2026-01-01\"\n".into(), false),
        ("[[articles]]\nkind = \"jaywalking\"\narticle = \"x\"\ntitle = \"t\"\nunits = 3\nfrom = \"2026-01-01\"\n".into(), false),
    ];
    for (articles, ok) in table {
        let text = format!("{head}{articles}");
        assert_eq!(
            Catalogue::parse("test.toml", &text).is_ok(),
            ok,
            "{articles}"
        );
    }
    // The wrong unit for the country.
    assert!(Catalogue::parse("x", &head.replace("\"MRP\"", "\"RP\"")).is_err());
}

#[test]
fn bundled_data_loads() {
    for j in Jurisdiction::ALL {
        assert!(!Catalogue::bundled(j).articles().is_empty());
    }
    let calendars = Calendars::bundled();
    for j in Jurisdiction::ALL {
        for year in 2025..=2027 {
            assert!(calendars.year(j, year).is_ok(), "{j} {year}");
        }
    }
}
