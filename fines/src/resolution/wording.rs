//! The document's Russian wording: labels, per-country names, and how dates, times,
//! amounts and coordinates are written (`05.03.2026`, `7 500,00 сом`).

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{Jurisdiction, Money, ViolationKind};

/// No-break space: keeps `7 500,00 сом` and `50 %` on one line.
const NBSP: char = '\u{a0}';

pub struct CountryWording {
    pub country: &'static str,
    /// The code the article belongs to, in the genitive ("ст. 592.2 Кодекса ...").
    pub code: &'static str,
    pub currency: &'static str,
    pub zone: &'static str,
}

pub fn country(jurisdiction: Jurisdiction) -> CountryWording {
    match jurisdiction {
        Jurisdiction::Kg => CountryWording {
            country: "КЫРГЫЗСКАЯ РЕСПУБЛИКА",
            code: "Кодекса Кыргызской Республики о правонарушениях",
            currency: "сом",
            zone: "UTC+6",
        },
        Jurisdiction::Kz => CountryWording {
            country: "РЕСПУБЛИКА КАЗАХСТАН",
            code: "Кодекса Республики Казахстан об административных правонарушениях",
            currency: "тенге",
            zone: "UTC+5",
        },
    }
}

pub fn violation(kind: ViolationKind) -> &'static str {
    match kind {
        ViolationKind::Speeding => "Превышение установленной скорости движения",
        ViolationKind::RedLight => "Проезд на запрещающий сигнал светофора",
        ViolationKind::StopLine => {
            "Невыполнение требования об остановке перед стоп-линией при запрещающем сигнале светофора"
        }
        ViolationKind::WrongLane => {
            "Нарушение правил расположения транспортного средства на проезжей части"
        }
        ViolationKind::BusLane => "Движение по полосе для маршрутных транспортных средств",
        ViolationKind::OncomingLane => "Выезд на полосу, предназначенную для встречного движения",
        ViolationKind::SeatBelt => {
            "Управление транспортным средством водителем, не пристегнутым ремнем безопасности"
        }
        ViolationKind::Phone => {
            "Пользование водителем во время движения телефоном без устройства «свободные руки»"
        }
    }
}

pub fn date(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// A deadline in words: "до 26.03.2026 включительно", or "в течение 7 рабочих дней со
/// дня вручения" while the clocks have not started.
pub fn term(term: super::Term) -> String {
    match term {
        super::Term::Until(d) => format!("до {} включительно", date(d)),
        super::Term::FromDelivery { days, working_days } => format!(
            "в течение {days}{NBSP}{} со{NBSP}дня вручения",
            days_word(days, working_days)
        ),
        super::Term::FromEffect { days } => format!(
            "в течение {days}{NBSP}{} со{NBSP}дня вступления постановления в{NBSP}силу",
            days_word(days, false)
        ),
    }
}

/// "дня", "дней", "рабочих дней" after a number, by Russian plural rules.
fn days_word(n: u32, working: bool) -> &'static str {
    let (one, few, many) = if working {
        ("рабочего дня", "рабочих дней", "рабочих дней")
    } else {
        ("дня", "дней", "дней")
    };
    // "в течение" takes the genitive: 1 дня, 2 дней, 5 дней, 21 дня.
    match (n % 10, n % 100) {
        (1, r) if r != 11 => one,
        (2..=4, r) if !(12..=14).contains(&r) => few,
        _ => many,
    }
}

/// `01.03.2026 14:32:05` in the jurisdiction's local time.
pub fn local_date_time(jurisdiction: Jurisdiction, instant: DateTime<Utc>) -> String {
    jurisdiction
        .local_time(instant)
        .format("%d.%m.%Y %H:%M:%S")
        .to_string()
}

/// `7 500,00 сом`: thousands grouped by no-break spaces, a decimal comma.
pub fn money(amount: Money, jurisdiction: Jurisdiction) -> String {
    let sign = if amount.minor < 0 { "-" } else { "" };
    let abs = amount.minor.unsigned_abs();
    let major = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in major.chars().enumerate() {
        if i > 0 && (major.len() - i).is_multiple_of(3) {
            grouped.push(NBSP);
        }
        grouped.push(c);
    }
    format!(
        "{sign}{grouped},{:02}{NBSP}{}",
        abs % 100,
        country(jurisdiction).currency
    )
}

pub fn percent(p: u32) -> String {
    format!("{p}{NBSP}%")
}

#[cfg(test)]
mod tests {

    #[test]
    fn days_take_the_genitive_plural() {
        let table = [
            (1, false, "дня"),
            (2, false, "дней"),
            (7, true, "рабочих дней"),
            (10, false, "дней"),
            (11, false, "дней"),
            (15, false, "дней"),
            (21, false, "дня"),
            (21, true, "рабочего дня"),
            (30, false, "дней"),
        ];
        for (n, working, want) in table {
            assert_eq!(days_word(n, working), want, "{n}");
        }
        assert_eq!(
            term(super::super::Term::FromDelivery {
                days: 15,
                working_days: false
            }),
            "в течение 15\u{a0}дней со\u{a0}дня вручения"
        );
    }

    use super::*;
    use kozomol_core::Currency;

    #[test]
    fn amounts_dates_and_coordinates() {
        let table = [
            (750_000, "7\u{a0}500,00\u{a0}сом"),
            (5, "0,05\u{a0}сом"),
            (123_456_789, "1\u{a0}234\u{a0}567,89\u{a0}сом"),
            (100_000, "1\u{a0}000,00\u{a0}сом"),
            (99_900, "999,00\u{a0}сом"),
        ];
        for (minor, want) in table {
            assert_eq!(
                money(Money::new(minor, Currency::KGS), Jurisdiction::Kg),
                want
            );
        }
        assert_eq!(
            money(Money::major(4325, Currency::KZT), Jurisdiction::Kz),
            "4\u{a0}325,00\u{a0}тенге"
        );
        let d: NaiveDate = "2026-03-05".parse().expect("date");
        assert_eq!(date(d), "05.03.2026");
        let t: DateTime<Utc> = "2026-03-01T18:30:05Z".parse().expect("instant");
        assert_eq!(local_date_time(Jurisdiction::Kg, t), "02.03.2026 00:30:05");
        assert_eq!(local_date_time(Jurisdiction::Kz, t), "01.03.2026 23:30:05");
    }
}
