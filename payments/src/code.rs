//! Payment codes: the number a citizen or a bank quotes to pay a fine, with a check digit.
//!
//! The code travels as the Tunduk `smartcity-service` field `paymentNumber`, an
//! `xsd:long`, so it is a number of at most 18 digits whose first digit is 1-9: 18 is the
//! longest fixed length whose every value fits a signed 64-bit integer (19-digit values
//! reach past 9223372036854775807), and a non-zero first digit means the number and its
//! text are the same 18 characters, so a lost leading zero can never change a code.
//!
//! Layout (positions counted from the left, 1-based):
//!
//! | positions | digits | meaning |
//! |---|---|---|
//! | 1 | 1 | kind: 1 = one fine, 2 = one receipt paying several fines |
//! | 2 | 1 | jurisdiction: 1 = Kyrgyzstan, 2 = Kazakhstan |
//! | 3-4 | 2 | year of issue, 2000-2099 as 00-99 |
//! | 5-7 | 3 | issuer: the issuing unit (000-999) |
//! | 8-17 | 10 | sequence within kind, jurisdiction, year and issuer |
//! | 18 | 1 | check digit over positions 1-17 |
//!
//! The kind comes first so the leading digit is never 0. Ten sequence digits give each
//! issuer ten billion codes a year, far above Bishkek's roughly 800,000 camera fines a
//! year, at no cost: the field is a 64-bit number either way.
//!
//! The check digit is the mod-11 scheme of Russia's УИН (the unique accrual identifier):
//! weights 1, 2, ..., 10, 1, 2, ... over the digits from the left; the remainder of the
//! weighted sum divided by 11 is the check digit; if that remainder is 10 the sum is
//! taken again with weights starting at 3 (3, 4, ..., 10, 1, 2, ...); if the remainder
//! is 10 again the check digit is 0. See [`check_digit`] for what it detects.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use kozomol_core::Jurisdiction;
use serde::{Deserialize, Serialize};

use crate::error::PaymentCodeError;

/// Number of digits of every payment code.
pub const PAYMENT_CODE_LEN: usize = 18;
/// Digits covered by the check digit.
const DATA_LEN: usize = PAYMENT_CODE_LEN - 1;
const MAX_ISSUER: u16 = 999;
const MAX_SEQUENCE: u64 = 9_999_999_999;
const FIRST_YEAR: u16 = 2000;
const LAST_YEAR: u16 = 2099;

/// What a payment code pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    /// One fine (one resolution).
    Fine,
    /// One receipt paying several fines of one jurisdiction at once.
    Receipt,
}

impl CodeKind {
    pub const ALL: [CodeKind; 2] = [CodeKind::Fine, CodeKind::Receipt];

    /// The digit in position 1 of a code.
    pub fn digit(self) -> u8 {
        match self {
            CodeKind::Fine => 1,
            CodeKind::Receipt => 2,
        }
    }

    pub fn from_digit(digit: u8) -> Option<CodeKind> {
        CodeKind::ALL.into_iter().find(|k| k.digit() == digit)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Fine => "fine",
            CodeKind::Receipt => "receipt",
        }
    }
}

impl fmt::Display for CodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The digit in position 2 of a code.
pub fn jurisdiction_digit(jurisdiction: Jurisdiction) -> u8 {
    match jurisdiction {
        Jurisdiction::Kg => 1,
        Jurisdiction::Kz => 2,
    }
}

fn jurisdiction_from_digit(digit: u8) -> Option<Jurisdiction> {
    Jurisdiction::ALL
        .into_iter()
        .find(|j| jurisdiction_digit(*j) == digit)
}

/// Remainder mod 11 of the digits weighted cyclically 1..=10, starting at `first_weight`.
fn weighted_remainder(digits: &[u8], first_weight: u32) -> u32 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            // `i` counts at most a code's digits, far below u32::MAX.
            let weight = (first_weight - 1 + i as u32) % 10 + 1;
            weight * u32::from(d)
        })
        .sum();
    sum % 11
}

/// The УИН mod-11 check digit of `digits` (each 0-9), as described in the module docs.
///
/// What it detects. Changing one data digit by `d` (non-zero, -9..=9) at weight `w`
/// moves the weighted sum by `w * d`; swapping unequal neighbours `a`, `b` moves it by
/// `a - b` (weights `w`, `w + 1`) or `9 * (b - a)` (weights 10 then 1). None of these is
/// a multiple of the prime 11, so the first-pass remainder always changes. While both
/// the old and the new remainder are below 10 they are the check digits, so the error
/// is caught. It can be missed only when one side's remainder is 10: that side's check
/// digit comes from the second pass (or is 0) and may equal the other side's remainder.
/// So a single-digit change or an adjacent transposition is missed exactly when the
/// first-pass remainder of the original or of the altered 17 data digits is 10 and that
/// side's fallback digit equals the other side's remainder: about 1.5 % of such errors
/// in the tests (2/11 of errors meet a remainder of 10, and 1 in 10 of those collide).
/// A change of the check digit alone is always caught. Swapping the last data digit
/// (weight 7) with the check digit `c` is caught under the same condition: with both
/// remainders below 10 the new check digit is `c + 7 * (c - d17)` mod 11, which equals
/// `d17` only if `c == d17`.
pub fn check_digit(digits: &[u8]) -> u8 {
    let first = weighted_remainder(digits, 1);
    let digit = if first != 10 {
        first
    } else {
        match weighted_remainder(digits, 3) {
            10 => 0,
            second => second,
        }
    };
    u8::try_from(digit).expect("a remainder mod 11 other than 10 is a single digit")
}

/// A payment code: 18 digits, first digit 1-9, last digit the check digit.
///
/// Serialised as its 18-digit string; [`PaymentCode::as_u64`] gives the `xsd:long` form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentCode {
    /// Always 18 digits with a valid check digit, kind and jurisdiction.
    value: u64,
}

impl PaymentCode {
    /// Builds the code for the given fields and computes its check digit.
    ///
    /// `year` is the full year (2000-2099), `issuer` 0-999, `sequence` 0-9999999999.
    pub fn new(
        kind: CodeKind,
        jurisdiction: Jurisdiction,
        year: u16,
        issuer: u16,
        sequence: u64,
    ) -> Result<PaymentCode, PaymentCodeError> {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
            return Err(PaymentCodeError::YearOutOfRange(year));
        }
        if issuer > MAX_ISSUER {
            return Err(PaymentCodeError::IssuerOutOfRange(issuer));
        }
        if sequence > MAX_SEQUENCE {
            return Err(PaymentCodeError::SequenceOutOfRange(sequence));
        }
        let data = format!(
            "{}{}{:02}{:03}{:010}",
            kind.digit(),
            jurisdiction_digit(jurisdiction),
            year - FIRST_YEAR,
            issuer,
            sequence
        );
        let digits: Vec<u8> = data.bytes().map(|b| b - b'0').collect();
        debug_assert_eq!(digits.len(), DATA_LEN);
        let value = digits
            .iter()
            .chain(std::iter::once(&check_digit(&digits)))
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d));
        Ok(PaymentCode { value })
    }

    /// The valid payment codes written in free text, as a bank statement's remittance
    /// line carries them (`Штраф, код 1126 0010 0000 1234 54`): runs of digits, which
    /// may be grouped by single spaces or hyphens, of 18 digits in all, each kept only
    /// if it parses (the check digit rules out most other numbers). A longer run of
    /// digits holds no code. In the order written, each once.
    pub fn find_in(text: &str) -> Vec<PaymentCode> {
        let mut found: Vec<PaymentCode> = Vec::new();
        let mut push = |digits: &str| {
            if let Ok(code) = PaymentCode::parse(digits) {
                if !found.contains(&code) {
                    found.push(code);
                }
            }
        };
        // A grouped run: digits, with one space or hyphen allowed between two digits.
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let mut digits = String::new();
            let mut j = i;
            while j < chars.len() {
                if chars[j].is_ascii_digit() {
                    digits.push(chars[j]);
                    j += 1;
                } else if matches!(chars[j], ' ' | '-')
                    && chars.get(j + 1).is_some_and(char::is_ascii_digit)
                {
                    j += 1;
                } else {
                    break;
                }
            }
            if digits.len() == PAYMENT_CODE_LEN {
                push(&digits);
            } else if digits.len() > PAYMENT_CODE_LEN {
                // Grouping may have joined a code to a neighbouring number ("1126 0010
                // 0000 1234 54 500 сом"): every run of whole groups that makes 18
                // digits is tried (the check digit keeps out what is no code).
                let groups: Vec<String> = chars[i..j]
                    .split(|c| !c.is_ascii_digit())
                    .map(|run| run.iter().collect::<String>())
                    .collect();
                for first in 0..groups.len() {
                    let mut joined = String::new();
                    for group in &groups[first..] {
                        joined.push_str(group);
                        if joined.len() >= PAYMENT_CODE_LEN {
                            break;
                        }
                    }
                    if joined.len() == PAYMENT_CODE_LEN {
                        push(&joined);
                    }
                }
            }
            i = j.max(i + 1);
        }
        found
    }

    /// Parses the 18-digit text form. Checks, in order: only digits, 18 of them, no
    /// leading zero, the check digit, a known kind and a known jurisdiction.
    pub fn parse(text: &str) -> Result<PaymentCode, PaymentCodeError> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PaymentCodeError::NotDigits);
        }
        // Only ASCII digits from here, so bytes are characters.
        let digits: Vec<u8> = text.bytes().map(|b| b - b'0').collect();
        if digits.len() != PAYMENT_CODE_LEN {
            return Err(PaymentCodeError::WrongLength { len: digits.len() });
        }
        if digits[0] == 0 {
            return Err(PaymentCodeError::LeadingZero);
        }
        let found = digits[DATA_LEN];
        if check_digit(&digits[..DATA_LEN]) != found {
            return Err(PaymentCodeError::BadCheckDigit { found });
        }
        if CodeKind::from_digit(digits[0]).is_none() {
            return Err(PaymentCodeError::UnknownKind(digits[0]));
        }
        if jurisdiction_from_digit(digits[1]).is_none() {
            return Err(PaymentCodeError::UnknownJurisdiction(digits[1]));
        }
        let value = digits.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d));
        Ok(PaymentCode { value })
    }

    /// The code from its `xsd:long` form; the same checks as [`PaymentCode::parse`] (a
    /// number below 10^17 has lost digits and fails as too short).
    pub fn from_u64(value: u64) -> Result<PaymentCode, PaymentCodeError> {
        PaymentCode::parse(&value.to_string())
    }

    /// The `xsd:long` form (`paymentNumber`).
    pub fn as_u64(self) -> u64 {
        self.value
    }

    /// The same number as a signed 64-bit integer, as `xsd:long` and SQL `BIGINT` hold it.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.value).expect("an 18-digit code is below i64::MAX")
    }

    /// The `count` decimal digits starting at 1-based `position` from the left.
    fn digits_at(self, position: u32, count: u32) -> u64 {
        let shift = PAYMENT_CODE_LEN as u32 - (position + count - 1);
        (self.value / 10u64.pow(shift)) % 10u64.pow(count)
    }

    fn small_digits_at(self, position: u32, count: u32) -> u16 {
        u16::try_from(self.digits_at(position, count)).expect("at most three digits fit a u16")
    }

    fn digit_at(self, position: u32) -> u8 {
        u8::try_from(self.digits_at(position, 1)).expect("one decimal digit fits a u8")
    }

    pub fn kind(self) -> CodeKind {
        CodeKind::from_digit(self.digit_at(1)).expect("a constructed code has a known kind")
    }

    pub fn jurisdiction(self) -> Jurisdiction {
        jurisdiction_from_digit(self.digit_at(2))
            .expect("a constructed code has a known jurisdiction")
    }

    /// The full year of issue, 2000-2099.
    pub fn year(self) -> u16 {
        FIRST_YEAR + self.small_digits_at(3, 2)
    }

    pub fn issuer(self) -> u16 {
        self.small_digits_at(5, 3)
    }

    pub fn sequence(self) -> u64 {
        self.digits_at(8, 10)
    }

    pub fn check_digit(self) -> u8 {
        self.digit_at(18)
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first digit is 1-9, so the plain number is always the 18 digits.
        write!(f, "{}", self.value)
    }
}

impl FromStr for PaymentCode {
    type Err = PaymentCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PaymentCode::parse(s)
    }
}

impl TryFrom<String> for PaymentCode {
    type Error = PaymentCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PaymentCode::parse(&s)
    }
}

impl From<PaymentCode> for String {
    fn from(code: PaymentCode) -> String {
        code.to_string()
    }
}

/// A receipt code with the fine codes it pays: one payment settles them all.
///
/// Holds: the code is of kind [`CodeKind::Receipt`]; at least two fines, each of kind
/// [`CodeKind::Fine`], none twice, all of the receipt code's jurisdiction. The fines keep
/// the order they were given in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    code: PaymentCode,
    fines: Vec<PaymentCode>,
}

impl Receipt {
    pub fn new(code: PaymentCode, fines: Vec<PaymentCode>) -> Result<Receipt, PaymentCodeError> {
        if code.kind() != CodeKind::Receipt {
            return Err(PaymentCodeError::NotReceiptCode(code));
        }
        if fines.len() < 2 {
            return Err(PaymentCodeError::TooFewFines { count: fines.len() });
        }
        let mut seen = HashSet::with_capacity(fines.len());
        for &fine in &fines {
            if fine.kind() != CodeKind::Fine {
                return Err(PaymentCodeError::NotFineCode(fine));
            }
            if fine.jurisdiction() != code.jurisdiction() {
                return Err(PaymentCodeError::MixedJurisdictions {
                    code: fine,
                    expected: code.jurisdiction(),
                    found: fine.jurisdiction(),
                });
            }
            if !seen.insert(fine) {
                return Err(PaymentCodeError::DuplicateFine(fine));
            }
        }
        Ok(Receipt { code, fines })
    }

    pub fn code(&self) -> PaymentCode {
        self.code
    }

    pub fn fines(&self) -> &[PaymentCode] {
        &self.fines
    }

    pub fn jurisdiction(&self) -> Jurisdiction {
        self.code.jurisdiction()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> Vec<u8> {
        text.bytes().map(|b| b - b'0').collect()
    }

    fn code(text: &str) -> PaymentCode {
        PaymentCode::parse(text).expect("test code should be valid")
    }

    #[test]
    fn codes_are_found_in_remittance_text() {
        let a = "112600100000123454";
        let b = code(a);
        let other = PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2026, 1, 7)
            .expect("a code")
            .to_string();
        for (text, want) in [
            (format!("Штраф, код {a}"), vec![a.to_owned()]),
            (
                "Штраф, код 1126 0010 0000 1234 54".to_owned(),
                vec![a.to_owned()],
            ),
            (
                "1126-0010-0000-1234-54 оплата".to_owned(),
                vec![a.to_owned()],
            ),
            (
                format!("{a};{other} {a}"),
                vec![a.to_owned(), other.clone()],
            ),
            // The check digit wrong, a digit missing, a longer number: no code.
            ("Штраф 112600100000123455".to_owned(), vec![]),
            ("Штраф 11260010000012345".to_owned(), vec![]),
            (format!("счёт 4{a}"), vec![]),
            // Two spaces or a point do not group digits.
            ("1126  0010 0000 1234 54".to_owned(), vec![]),
            ("1126.0010.0000.1234.54".to_owned(), vec![]),
            // A code next to a grouped number is still found on its own.
            (format!("12 {a}"), vec![a.to_owned()]),
            // ... grouped itself, with a sum or a number beside it.
            (
                "код 1126 0010 0000 1234 54 500 сом".to_owned(),
                vec![a.to_owned()],
            ),
            ("№ 12 1126-0010-0000-1234-54".to_owned(), vec![a.to_owned()]),
            (String::new(), vec![]),
        ] {
            let found: Vec<String> = PaymentCode::find_in(&text)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(found, want, "{text:?}");
        }
        assert_eq!(PaymentCode::find_in(a), vec![b]);
    }

    #[test]
    fn check_digits_computed_by_hand() {
        // Weights by position: 1 2 3 4 5 6 7 8 9 10 | 1 2 3 4 5 6 7 (first pass),
        //                      3 4 5 6 7 8 9 10 1 2 | 3 4 5 6 7 8 9 (second pass).
        let table: [(&str, u8); 5] = [
            // 1 1 26 001 0000012345: 1*1 + 2*1 + 3*2 + 4*6 + 7*1 + 3*1 + 4*2 + 5*3 + 6*4
            // + 7*5 = 125 = 11*11 + 4 -> 4.
            ("11260010000012345", 4),
            // 1 2 26 042 0000000007: 1*1 + 2*2 + 3*2 + 4*6 + 6*4 + 7*2 + 7*7 = 122
            // = 11*11 + 1 -> 1.
            ("12260420000000007", 1),
            // 2 1 26 001 0000000001: 1*2 + 2*1 + 3*2 + 4*6 + 7*1 + 7*1 = 48 = 11*4 + 4 -> 4.
            ("21260010000000001", 4),
            // 1 1 26 001 0000000002: first pass 1*1 + 2*1 + 3*2 + 4*6 + 7*1 + 7*2 = 54
            // = 11*4 + 10 -> 10, so again from 3: 3*1 + 4*1 + 5*2 + 6*6 + 9*1 + 9*2 = 80
            // = 11*7 + 3 -> 3.
            ("11260010000000002", 3),
            // 1 1 26 001 0000000083: first pass 1*1 + 2*1 + 3*2 + 4*6 + 7*1 + 6*8 + 7*3
            // = 109 = 11*9 + 10 -> 10; second 3*1 + 4*1 + 5*2 + 6*6 + 9*1 + 8*8 + 9*3
            // = 153 = 11*13 + 10 -> 10 again, so 0.
            ("11260010000000083", 0),
        ];
        for (data, want) in table {
            assert_eq!(check_digit(&digits(data)), want, "{data}");
            let full = format!("{data}{want}");
            assert_eq!(code(&full).to_string(), full);
        }
        assert_eq!(weighted_remainder(&digits("11260010000000002"), 1), 10);
        assert_eq!(weighted_remainder(&digits("11260010000000083"), 3), 10);
    }

    #[test]
    fn new_lays_out_the_fields() {
        let c = PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2026, 1, 12_345)
            .expect("valid fields");
        assert_eq!(c.to_string(), "112600100000123454");
        assert_eq!(c.kind(), CodeKind::Fine);
        assert_eq!(c.jurisdiction(), Jurisdiction::Kg);
        assert_eq!(c.year(), 2026);
        assert_eq!(c.issuer(), 1);
        assert_eq!(c.sequence(), 12_345);
        assert_eq!(c.check_digit(), 4);

        let r = PaymentCode::new(
            CodeKind::Receipt,
            Jurisdiction::Kz,
            2099,
            999,
            9_999_999_999,
        )
        .expect("largest fields");
        assert_eq!(r.kind(), CodeKind::Receipt);
        assert_eq!(r.jurisdiction(), Jurisdiction::Kz);
        assert_eq!(r.year(), 2099);
        assert_eq!(r.issuer(), 999);
        assert_eq!(r.sequence(), 9_999_999_999);
        assert!(r.to_string().starts_with("2299999"));

        let smallest = PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2000, 0, 0)
            .expect("smallest fields");
        assert_eq!(smallest.to_string().len(), PAYMENT_CODE_LEN);
        assert_eq!(smallest.year(), 2000);
    }

    #[test]
    fn new_rejects_fields_out_of_range() {
        let table = [
            (1999, 1, 1, PaymentCodeError::YearOutOfRange(1999)),
            (2100, 1, 1, PaymentCodeError::YearOutOfRange(2100)),
            (2026, 1000, 1, PaymentCodeError::IssuerOutOfRange(1000)),
            (
                2026,
                1,
                10_000_000_000,
                PaymentCodeError::SequenceOutOfRange(10_000_000_000),
            ),
        ];
        for (year, issuer, sequence, want) in table {
            assert_eq!(
                PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, year, issuer, sequence),
                Err(want)
            );
        }
    }

    #[test]
    fn parse_rejects_each_fault() {
        let table: [(&str, PaymentCodeError, &str); 10] = [
            (
                "",
                PaymentCodeError::WrongLength { len: 0 },
                "payment code has 0 digits, it must have 18",
            ),
            (
                "11260010000012345",
                PaymentCodeError::WrongLength { len: 17 },
                "payment code has 17 digits, it must have 18",
            ),
            (
                "1126001000001234540",
                PaymentCodeError::WrongLength { len: 19 },
                "payment code has 19 digits, it must have 18",
            ),
            (
                "11260010000012345x",
                PaymentCodeError::NotDigits,
                "payment code must contain only the digits 0-9",
            ),
            (
                " 112600100000123454",
                PaymentCodeError::NotDigits,
                "payment code must contain only the digits 0-9",
            ),
            (
                "-12600100000123454",
                PaymentCodeError::NotDigits,
                "payment code must contain only the digits 0-9",
            ),
            (
                "１12600100000123454",
                PaymentCodeError::NotDigits,
                "payment code must contain only the digits 0-9",
            ),
            // 0 1 26 001 0000012345: 1*0 + 2*1 + ... = 124 -> 3; the leading zero is
            // reported first.
            (
                "012600100000123453",
                PaymentCodeError::LeadingZero,
                "payment code must not start with 0",
            ),
            (
                "112600100000123455",
                PaymentCodeError::BadCheckDigit { found: 5 },
                "payment code check digit 5 does not match the other digits",
            ),
            // 3 1 26 001 0000012345: 125 + 1*2 = 127 = 11*11 + 6 -> 6, check digit right.
            (
                "312600100000123456",
                PaymentCodeError::UnknownKind(3),
                "unknown payment code kind 3: 1 (fine) or 2 (receipt)",
            ),
        ];
        for (text, want, message) in table {
            let err = PaymentCode::parse(text).expect_err(text);
            assert_eq!(err, want, "{text}");
            assert_eq!(err.to_string(), message, "{text}");
        }
        // 1 3 26 001 0000012345: 125 + 2*2 = 129 = 11*11 + 8 -> 8.
        assert_eq!(
            PaymentCode::parse("132600100000123458"),
            Err(PaymentCodeError::UnknownJurisdiction(3))
        );
        assert_eq!(
            PaymentCodeError::UnknownJurisdiction(3).to_string(),
            "unknown payment code jurisdiction 3: 1 (kg) or 2 (kz)"
        );
        // The same digits with jurisdiction 0.
        assert_eq!(
            PaymentCode::parse(&format!(
                "10260010000012345{}",
                check_digit(&digits("10260010000012345"))
            )),
            Err(PaymentCodeError::UnknownJurisdiction(0))
        );
    }

    #[test]
    fn round_trips() {
        for kind in CodeKind::ALL {
            for jurisdiction in Jurisdiction::ALL {
                for (year, issuer, sequence) in [
                    (2000, 0, 0),
                    (2026, 17, 123_456),
                    (2099, 999, 9_999_999_999),
                ] {
                    let c = PaymentCode::new(kind, jurisdiction, year, issuer, sequence)
                        .expect("valid fields");
                    let text = c.to_string();
                    assert_eq!(text.len(), PAYMENT_CODE_LEN);
                    assert_eq!(PaymentCode::parse(&text), Ok(c));
                    assert_eq!(text.parse::<PaymentCode>(), Ok(c));
                    assert_eq!(PaymentCode::from_u64(c.as_u64()), Ok(c));
                    assert_eq!(u64::try_from(c.as_i64()).ok(), Some(c.as_u64()));
                    assert_eq!(
                        (
                            c.kind(),
                            c.jurisdiction(),
                            c.year(),
                            c.issuer(),
                            c.sequence()
                        ),
                        (kind, jurisdiction, year, issuer, sequence)
                    );
                    let json = serde_json::to_string(&c).expect("serialises");
                    assert_eq!(json, format!("\"{text}\""));
                    assert_eq!(serde_json::from_str::<PaymentCode>(&json).ok(), Some(c));
                }
            }
        }
    }

    #[test]
    fn xsd_long_and_serde_reject_bad_codes() {
        // A 17-digit number is a code that lost a digit.
        assert_eq!(
            PaymentCode::from_u64(12_600_100_000_123_454),
            Err(PaymentCodeError::WrongLength { len: 17 })
        );
        assert_eq!(
            PaymentCode::from_u64(112_600_100_000_123_455),
            Err(PaymentCodeError::BadCheckDigit { found: 5 })
        );
        assert!(serde_json::from_str::<PaymentCode>("\"112600100000123455\"").is_err());
        // Serde takes the string form only, not the number.
        assert!(serde_json::from_str::<PaymentCode>("112600100000123454").is_err());
    }

    /// Every code reachable from `text` by changing one digit or by swapping two unequal
    /// neighbours.
    fn single_errors(text: &str) -> Vec<String> {
        let original: Vec<u8> = text.bytes().collect();
        let mut out = Vec::new();
        for i in 0..original.len() {
            for d in b'0'..=b'9' {
                if d != original[i] {
                    let mut altered = original.clone();
                    altered[i] = d;
                    out.push(String::from_utf8(altered).expect("ascii digits"));
                }
            }
            if i + 1 < original.len() && original[i] != original[i + 1] {
                let mut swapped = original.clone();
                swapped.swap(i, i + 1);
                out.push(String::from_utf8(swapped).expect("ascii digits"));
            }
        }
        out
    }

    #[test]
    fn single_digit_changes_and_transpositions_are_detected_except_the_known_class() {
        let mut checked = 0usize;
        let mut missed = 0usize;
        for i in 0..400u64 {
            // Spread the sequence over all ten digits.
            let sequence = (i * 7_919_113_457) % 10_000_000_000;
            for kind in CodeKind::ALL {
                for jurisdiction in Jurisdiction::ALL {
                    let year = 2000 + u16::try_from(i % 100).expect("below 100");
                    let issuer = u16::try_from((i * 37) % 1000).expect("below 1000");
                    let valid = PaymentCode::new(kind, jurisdiction, year, issuer, sequence)
                        .expect("valid fields")
                        .to_string();
                    let original_remainder = weighted_remainder(&digits(&valid[..DATA_LEN]), 1);
                    for altered in single_errors(&valid) {
                        checked += 1;
                        if PaymentCode::parse(&altered).is_err() {
                            continue;
                        }
                        missed += 1;
                        // Missed: exactly the class the docs of `check_digit` name.
                        let altered_remainder =
                            weighted_remainder(&digits(&altered[..DATA_LEN]), 1);
                        assert_ne!(
                            original_remainder, altered_remainder,
                            "{valid} -> {altered}: the first-pass remainder always changes"
                        );
                        assert!(
                            original_remainder == 10 || altered_remainder == 10,
                            "{valid} -> {altered} missed without a remainder of 10"
                        );
                    }
                }
            }
        }
        assert!(
            missed > 0,
            "the undetectable class is real, see `check_digit`"
        );
        // About 1.5 % (see `check_digit`): well below 3 %.
        assert!(missed * 100 < checked * 3, "{missed} of {checked} missed");
    }

    #[test]
    fn a_known_undetected_change() {
        // 1 1 26 001 0000000002 has first-pass remainder 10 (sum 54) and check digit 3
        // from the second pass. Changing its last data digit (weight 7) from 2 to 1
        // takes 7 from the first-pass sum: 47 = 11*4 + 3 -> 3, the same check digit, so
        // the mistyped code is valid too.
        assert_eq!(check_digit(&digits("11260010000000001")), 3);
        assert!(PaymentCode::parse("112600100000000013").is_ok());
        assert!(PaymentCode::parse("112600100000000023").is_ok());
    }

    #[test]
    fn receipts_validate_their_fines() {
        let fine = |seq| {
            PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2026, 1, seq).expect("fine code")
        };
        let receipt = PaymentCode::new(CodeKind::Receipt, Jurisdiction::Kg, 2026, 1, 1)
            .expect("receipt code");
        let kz_fine =
            PaymentCode::new(CodeKind::Fine, Jurisdiction::Kz, 2026, 1, 3).expect("kz code");

        let ok = Receipt::new(receipt, vec![fine(1), fine(2), fine(3)]).expect("valid receipt");
        assert_eq!(ok.code(), receipt);
        assert_eq!(ok.fines(), &[fine(1), fine(2), fine(3)]);
        assert_eq!(ok.jurisdiction(), Jurisdiction::Kg);

        let table = [
            (
                fine(9),
                vec![fine(1), fine(2)],
                PaymentCodeError::NotReceiptCode(fine(9)),
            ),
            (receipt, vec![], PaymentCodeError::TooFewFines { count: 0 }),
            (
                receipt,
                vec![fine(1)],
                PaymentCodeError::TooFewFines { count: 1 },
            ),
            (
                receipt,
                vec![fine(1), receipt],
                PaymentCodeError::NotFineCode(receipt),
            ),
            (
                receipt,
                vec![fine(1), fine(2), fine(1)],
                PaymentCodeError::DuplicateFine(fine(1)),
            ),
            (
                receipt,
                vec![fine(1), kz_fine],
                PaymentCodeError::MixedJurisdictions {
                    code: kz_fine,
                    expected: Jurisdiction::Kg,
                    found: Jurisdiction::Kz,
                },
            ),
        ];
        for (code, fines, want) in table {
            assert_eq!(Receipt::new(code, fines), Err(want));
        }
        assert_eq!(
            PaymentCodeError::NotReceiptCode(fine(9)).to_string(),
            format!(
                "code {} is a fine code, a receipt needs a receipt code",
                fine(9)
            )
        );
        assert_eq!(
            PaymentCodeError::MixedJurisdictions {
                code: kz_fine,
                expected: Jurisdiction::Kg,
                found: Jurisdiction::Kz
            }
            .to_string(),
            format!("fine {kz_fine} is for kz, the receipt is for kg")
        );
    }
}
