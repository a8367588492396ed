//! Money as integer minor units with its currency, never floating point, and the
//! jurisdictions kozomol issues fines in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// ISO 4217 currencies kozomol handles; the minor unit is 1/100 for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    /// Kyrgyz som (tyiyn); numeric code 417.
    KGS,
    /// Kazakh tenge (tiyn); numeric code 398.
    KZT,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::KGS => "KGS",
            Currency::KZT => "KZT",
        }
    }

    /// ISO 4217 numeric code, as payment QR payloads carry it.
    pub fn numeric(self) -> &'static str {
        match self {
            Currency::KGS => "417",
            Currency::KZT => "398",
        }
    }
}

impl FromStr for Currency {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "KGS" => Ok(Currency::KGS),
            "KZT" => Ok(Currency::KZT),
            other => Err(CoreError::UnknownCurrency(other.chars().take(8).collect())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units (tyiyn, tiyn) of a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// Whole major units (som, tenge).
    pub fn major(major: i64, currency: Currency) -> Self {
        Money::new(major * 100, currency)
    }

    /// `percent` % of this amount, rounded half up to the minor unit.
    pub fn percent(self, percent: u32) -> Self {
        let scaled = i128::from(self.minor) * i128::from(percent);
        let rounded = (scaled + 50).div_euclid(100);
        Money::new(rounded as i64, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

/// A country whose law kozomol applies: its currency, fine unit and time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Jurisdiction {
    Kg,
    Kz,
}

impl Jurisdiction {
    pub const ALL: [Jurisdiction; 2] = [Jurisdiction::Kg, Jurisdiction::Kz];

    pub fn as_str(self) -> &'static str {
        match self {
            Jurisdiction::Kg => "kg",
            Jurisdiction::Kz => "kz",
        }
    }

    pub fn currency(self) -> Currency {
        match self {
            Jurisdiction::Kg => Currency::KGS,
            Jurisdiction::Kz => Currency::KZT,
        }
    }

    /// Offset from UTC in seconds of the country's one time zone (Bishkek UTC+6; all of
    /// Kazakhstan UTC+5 since 1 March 2024). Deadlines are calendar dates there.
    pub fn utc_offset_seconds(self) -> i32 {
        match self {
            Jurisdiction::Kg => 6 * 3600,
            Jurisdiction::Kz => 5 * 3600,
        }
    }

    /// `instant` on this jurisdiction's clock.
    pub fn local_time(
        self,
        instant: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::FixedOffset> {
        let offset = chrono::FixedOffset::east_opt(self.utc_offset_seconds())
            .expect("a whole-hour offset below a day is valid");
        instant.with_timezone(&offset)
    }

    /// The calendar date of `instant` in this jurisdiction.
    pub fn local_date(self, instant: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        self.local_time(instant).date_naive()
    }
}

impl FromStr for Jurisdiction {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Jurisdiction::ALL
            .into_iter()
            .find(|j| j.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| CoreError::UnknownJurisdiction(s.chars().take(8).collect()))
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_half_up() {
        let table = [
            (500_000, 50, 250_000),
            (1, 50, 1),
            (3, 50, 2),
            (199, 50, 100),
        ];
        for (minor, pct, want) in table {
            assert_eq!(
                Money::new(minor, Currency::KGS).percent(pct).minor,
                want,
                "{minor}"
            );
        }
    }

    #[test]
    fn display_and_parse() {
        assert_eq!(
            Money::new(432_500, Currency::KZT).to_string(),
            "4325.00 KZT"
        );
        assert_eq!(Money::new(-5, Currency::KGS).to_string(), "-0.05 KGS");
        assert_eq!("KG".parse::<Jurisdiction>(), Ok(Jurisdiction::Kg));
        assert!("ru".parse::<Jurisdiction>().is_err());
        assert!("USD".parse::<Currency>().is_err());
    }

    #[test]
    fn local_dates_follow_the_country_zone() {
        let instant: chrono::DateTime<chrono::Utc> =
            "2026-03-01T18:30:00Z".parse().expect("test instant");
        assert_eq!(
            Jurisdiction::Kg.local_date(instant).to_string(),
            "2026-03-02"
        );
        assert_eq!(
            Jurisdiction::Kz.local_date(instant).to_string(),
            "2026-03-01"
        );
    }
}
