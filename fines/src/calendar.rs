//! Working-day calendars per country and year (`fines/calendar/{kg,kz}/YEAR.toml`):
//! which weekdays are days off and which weekend days are worked. Deadlines that count
//! working days use them; a year with no file is an error, never a guess.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use kozomol_core::Jurisdiction;
use serde::Deserialize;

use crate::FinesError;

/// The bundled calendar files, so the binary needs nothing beside it.
const BUNDLED: &[(Jurisdiction, i32, &str)] = &[
    (
        Jurisdiction::Kg,
        2025,
        include_str!("../calendar/kg/2025.toml"),
    ),
    (
        Jurisdiction::Kg,
        2026,
        include_str!("../calendar/kg/2026.toml"),
    ),
    (
        Jurisdiction::Kg,
        2027,
        include_str!("../calendar/kg/2027.toml"),
    ),
    (
        Jurisdiction::Kz,
        2025,
        include_str!("../calendar/kz/2025.toml"),
    ),
    (
        Jurisdiction::Kz,
        2026,
        include_str!("../calendar/kz/2026.toml"),
    ),
    (
        Jurisdiction::Kz,
        2027,
        include_str!("../calendar/kz/2027.toml"),
    ),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    confirmed: bool,
    #[serde(default)]
    note: String,
    days_off: Vec<NaiveDate>,
    working_days: Vec<NaiveDate>,
}

/// One country's year: its days off among weekdays and its worked weekend days.
#[derive(Clone, Debug)]
pub struct CalendarYear {
    pub confirmed: bool,
    pub note: String,
    days_off: BTreeSet<NaiveDate>,
    working_days: BTreeSet<NaiveDate>,
}

/// Working-day calendars for every country and year loaded.
#[derive(Clone, Debug, Default)]
pub struct Calendars {
    years: BTreeMap<(Jurisdiction, i32), CalendarYear>,
}

impl Calendars {
    /// The calendars shipped in `fines/calendar/`.
    pub fn bundled() -> Self {
        let mut calendars = Calendars::default();
        for (jurisdiction, year, text) in BUNDLED {
            calendars
                .add(*jurisdiction, *year, text)
                .expect("bundled calendar files parse (a test checks them)");
        }
        calendars
    }

    /// Adds one year's file; its dates must all lie in that year.
    pub fn add(
        &mut self,
        jurisdiction: Jurisdiction,
        year: i32,
        text: &str,
    ) -> Result<(), FinesError> {
        let file = format!("{jurisdiction}/{year}.toml");
        let bad = |reason: String| FinesError::Calendar {
            file: file.clone(),
            reason,
        };
        let parsed: YearFile = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
        for date in parsed.days_off.iter().chain(&parsed.working_days) {
            if date.year() != year {
                return Err(bad(format!("{date} is not in {year}")));
            }
        }
        if let Some(date) = parsed.days_off.iter().find(|d| is_weekend(**d)) {
            return Err(bad(format!(
                "{date} is a weekend day; days_off lists weekdays"
            )));
        }
        if let Some(date) = parsed.working_days.iter().find(|d| !is_weekend(**d)) {
            return Err(bad(format!(
                "{date} is a weekday; working_days lists weekend days"
            )));
        }
        self.years.insert(
            (jurisdiction, year),
            CalendarYear {
                confirmed: parsed.confirmed,
                note: parsed.note,
                days_off: parsed.days_off.into_iter().collect(),
                working_days: parsed.working_days.into_iter().collect(),
            },
        );
        Ok(())
    }

    pub fn year(&self, jurisdiction: Jurisdiction, year: i32) -> Result<&CalendarYear, FinesError> {
        self.years
            .get(&(jurisdiction, year))
            .ok_or(FinesError::NoCalendar { jurisdiction, year })
    }

    pub fn is_working_day(
        &self,
        jurisdiction: Jurisdiction,
        date: NaiveDate,
    ) -> Result<bool, FinesError> {
        let year = self.year(jurisdiction, date.year())?;
        Ok(if is_weekend(date) {
            year.working_days.contains(&date)
        } else {
            !year.days_off.contains(&date)
        })
    }

    /// The `n`th working day after `start` (`start` itself not counted).
    pub fn add_working_days(
        &self,
        jurisdiction: Jurisdiction,
        start: NaiveDate,
        n: u32,
    ) -> Result<NaiveDate, FinesError> {
        let mut date = start;
        let mut counted = 0;
        while counted < n {
            date = date
                .checked_add_days(Days::new(1))
                .ok_or(FinesError::DateOverflow)?;
            if self.is_working_day(jurisdiction, date)? {
                counted += 1;
            }
        }
        Ok(date)
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("test date")
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let calendars = Calendars::bundled();
        // (jurisdiction, start, n, expected)
        let table = [
            // Thu 12 March 2026: Fri 13, Mon 16..Fri 20, then the Nauryz weekend and
            // 23-25 March off, so the 7th is Thu 26.
            (Jurisdiction::Kz, "2026-03-12", 7, "2026-03-26"),
            (Jurisdiction::Kz, "2026-03-20", 1, "2026-03-26"),
            // Across the year end: 31 Dec 2026, then 1-2 Jan off, Sat-Sun, Mon 4 Jan 2027
            // is off (2 January fell on a Saturday), 5 Jan is the first.
            (Jurisdiction::Kz, "2026-12-31", 1, "2027-01-05"),
            (Jurisdiction::Kz, "2026-12-15", 1, "2026-12-17"),
            // No holiday in the way: five working days is one week.
            (Jurisdiction::Kz, "2026-06-01", 5, "2026-06-08"),
            (Jurisdiction::Kg, "2026-03-19", 1, "2026-03-24"),
            (Jurisdiction::Kg, "2026-11-06", 1, "2026-11-11"),
            // Zero days is the start itself.
            (Jurisdiction::Kg, "2026-11-07", 0, "2026-11-07"),
        ];
        for (jurisdiction, start, n, want) in table {
            assert_eq!(
                calendars.add_working_days(jurisdiction, d(start), n),
                Ok(d(want)),
                "{jurisdiction} {start} + {n}"
            );
        }
    }

    #[test]
    fn a_year_without_a_file_is_an_error() {
        let calendars = Calendars::bundled();
        assert_eq!(
            calendars.add_working_days(Jurisdiction::Kz, d("2027-12-30"), 2),
            Err(FinesError::NoCalendar {
                jurisdiction: Jurisdiction::Kz,
                year: 2028
            })
        );
        assert!(calendars
            .is_working_day(Jurisdiction::Kg, d("2024-05-01"))
            .is_err());
    }

    #[test]
    fn files_are_checked_when_added() {
        let mut calendars = Calendars::default();
        let table = [
            (
                "confirmed = true\ndays_off = [\"2026-01-01\"]\nworking_days = []",
                true,
            ),
            (
                "confirmed = true\ndays_off = [\"2025-01-01\"]\nworking_days = []",
                false,
            ),
            (
                "confirmed = true\ndays_off = [\"2026-01-03\"]\nworking_days = []",
                false,
            ),
            (
                "confirmed = true\ndays_off = []\nworking_days = [\"2026-01-05\"]",
                false,
            ),
            (
                "confirmed = true\ndays_off = []\nworking_days = [\"2026-01-03\"]",
                true,
            ),
            ("confirmed = true\ndays_off = []", false),
            (
                "confirmed = true\ndays_off = []\nworking_days = []\nextra = 1",
                false,
            ),
        ];
        for (text, ok) in table {
            assert_eq!(
                calendars.add(Jurisdiction::Kg, 2026, text).is_ok(),
                ok,
                "{text}"
            );
        }
        // The last good file made Saturday 3 January a working day.
        assert_eq!(
            calendars.is_working_day(Jurisdiction::Kg, d("2026-01-03")),
            Ok(true)
        );
    }
}
