//! Resolution numbers: human-readable, unique per issuer and year, e.g.
//! `KG-BSK-2026-0000123` (jurisdiction, issuer code, year, 7-digit sequence).

use std::fmt;
use std::str::FromStr;

use kozomol_core::Jurisdiction;
use serde::{Deserialize, Serialize};

use super::ResolutionError;

/// The largest sequence number a 7-digit field holds.
pub const MAX_SEQUENCE: u32 = 9_999_999;

/// A resolution number: `{JURISDICTION}-{ISSUER}-{YEAR}-{SEQUENCE}`.
///
/// The jurisdiction is written in upper case (`KG`, `KZ`), the issuer code is 2–6
/// upper-case ASCII letters, the year has 4 digits and the sequence 7 digits with
/// leading zeros, starting at 1. Parsing accepts exactly what [`fmt::Display`] writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResolutionNumber {
    jurisdiction: Jurisdiction,
    issuer: String,
    year: u16,
    sequence: u32,
}

impl ResolutionNumber {
    /// Builds a number from its parts, checking each.
    pub fn new(
        jurisdiction: Jurisdiction,
        issuer: &str,
        year: u16,
        sequence: u32,
    ) -> Result<Self, ResolutionError> {
        let invalid = |reason| ResolutionError::InvalidNumber {
            raw: format!("{}-{issuer}-{year}-{sequence}", upper(jurisdiction)),
            reason,
        };
        if !(2..=6).contains(&issuer.len()) || !issuer.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "the issuer code must be 2 to 6 upper-case latin letters",
            ));
        }
        if !(1000..=9999).contains(&year) {
            return Err(invalid("the year must have 4 digits"));
        }
        if !(1..=MAX_SEQUENCE).contains(&sequence) {
            return Err(invalid("the sequence must be 1 to 9999999"));
        }
        Ok(ResolutionNumber {
            jurisdiction,
            issuer: issuer.to_owned(),
            year,
            sequence,
        })
    }

    /// Parses `KG-BSK-2026-0000123`.
    pub fn parse(raw: &str) -> Result<Self, ResolutionError> {
        let invalid = |reason| ResolutionError::InvalidNumber {
            raw: raw.chars().take(40).collect(),
            reason,
        };
        let parts: Vec<&str> = raw.split('-').collect();
        let [jurisdiction, issuer, year, sequence] = parts[..] else {
            return Err(invalid("expected four parts separated by `-`"));
        };
        let jurisdiction = Jurisdiction::ALL
            .into_iter()
            .find(|j| upper(*j) == jurisdiction)
            .ok_or_else(|| invalid("unknown jurisdiction (expected `KG` or `KZ`)"))?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the year must have 4 digits"));
        }
        if sequence.len() != 7 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the sequence must have 7 digits"));
        }
        let year = year
            .parse()
            .map_err(|_| invalid("the year must have 4 digits"))?;
        let sequence = sequence
            .parse()
            .map_err(|_| invalid("the sequence must have 7 digits"))?;
        ResolutionNumber::new(jurisdiction, issuer, year, sequence).map_err(|e| match e {
            ResolutionError::InvalidNumber { reason, .. } => invalid(reason),
            other => other,
        })
    }

    pub fn jurisdiction(&self) -> Jurisdiction {
        self.jurisdiction
    }

    /// The issuing unit's code, e.g. `BSK`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

fn upper(jurisdiction: Jurisdiction) -> &'static str {
    match jurisdiction {
        Jurisdiction::Kg => "KG",
        Jurisdiction::Kz => "KZ",
    }
}

impl fmt::Display for ResolutionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{:04}-{:07}",
            upper(self.jurisdiction),
            self.issuer,
            self.year,
            self.sequence
        )
    }
}

impl FromStr for ResolutionNumber {
    type Err = ResolutionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResolutionNumber::parse(s)
    }
}

impl TryFrom<String> for ResolutionNumber {
    type Error = ResolutionError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        ResolutionNumber::parse(&raw)
    }
}

impl From<ResolutionNumber> for String {
    fn from(number: ResolutionNumber) -> Self {
        number.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (jurisdiction, issuer, year, sequence) of a valid number.
    type Parts = (Jurisdiction, &'static str, u16, u32);

    #[test]
    fn parse_and_format_table() {
        let table: [(&str, Option<Parts>); 20] = [
            (
                "KG-BSK-2026-0000123",
                Some((Jurisdiction::Kg, "BSK", 2026, 123)),
            ),
            (
                "KZ-ALA-2027-9999999",
                Some((Jurisdiction::Kz, "ALA", 2027, 9_999_999)),
            ),
            (
                "KG-OS-2026-0000001",
                Some((Jurisdiction::Kg, "OS", 2026, 1)),
            ),
            (
                "KZ-ASTANA-2026-0000042",
                Some((Jurisdiction::Kz, "ASTANA", 2026, 42)),
            ),
            ("KG-BSK-2026-0000000", None),     // sequence starts at 1
            ("KG-B-2026-0000123", None),       // issuer too short
            ("KG-BISHKEK-2026-0000123", None), // issuer too long
            ("KG-bsk-2026-0000123", None),     // lower-case issuer
            ("kg-BSK-2026-0000123", None),     // lower-case jurisdiction
            ("RU-BSK-2026-0000123", None),     // unknown jurisdiction
            ("KG-BSK-26-0000123", None),       // 2-digit year
            ("KG-BSK-0999-0000123", None),     // year below 1000
            ("KG-BSK-2026-123", None),         // sequence not zero-padded
            ("KG-BSK-2026-00001234", None),    // 8-digit sequence
            ("KG-BSK-2026-+000123", None),     // sign
            ("KG-BS1-2026-0000123", None),     // digit in issuer
            ("KG-BSK-2026", None),             // missing part
            ("KG-BSK-2026-0000123-1", None),   // extra part
            (" KG-BSK-2026-0000123", None),    // whitespace
            ("", None),
        ];
        for (raw, want) in table {
            let got = ResolutionNumber::parse(raw);
            match want {
                Some((jurisdiction, issuer, year, sequence)) => {
                    let n = got.unwrap_or_else(|e| panic!("{raw}: {e}"));
                    assert_eq!(n.jurisdiction(), jurisdiction, "{raw}");
                    assert_eq!(n.issuer(), issuer, "{raw}");
                    assert_eq!(n.year(), year, "{raw}");
                    assert_eq!(n.sequence(), sequence, "{raw}");
                    assert_eq!(n.to_string(), raw, "formats back");
                }
                None => assert!(
                    matches!(got, Err(ResolutionError::InvalidNumber { .. })),
                    "{raw:?} should not parse: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn new_pads_and_checks() {
        let n = ResolutionNumber::new(Jurisdiction::Kg, "BSK", 2026, 123).expect("valid parts");
        assert_eq!(n.to_string(), "KG-BSK-2026-0000123");
        assert!(ResolutionNumber::new(Jurisdiction::Kg, "BSK", 2026, 10_000_000).is_err());
        assert!(ResolutionNumber::new(Jurisdiction::Kz, "ÄBC", 2026, 1).is_err());
    }

    #[test]
    fn serde_is_the_string_form() {
        let n = ResolutionNumber::parse("KZ-ALA-2026-0000007").expect("valid");
        let json = serde_json::to_string(&n).expect("serializes");
        assert_eq!(json, "\"KZ-ALA-2026-0000007\"");
        let back: ResolutionNumber = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, n);
        assert!(serde_json::from_str::<ResolutionNumber>("\"KZ-ALA-26-7\"").is_err());
    }
}
