//! Amounts as Tunduk's `smartcity-service` carries them: `xsd:decimal` text in major
//! units (`7500.00` som). Read exactly into minor units — a value finer than a tyiyn is
//! refused, never rounded, so no bank's sum is silently changed — and written back with
//! two decimals.

use kozomol_core::{Currency, Money};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("`{0}` is not a decimal number")]
    NotDecimal(String),
    #[error("`{0}` has more than two decimals: amounts are exact to the tyiyn")]
    TooFine(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Reads `text` (`xsd:decimal`: an optional sign, digits, an optional point and
/// digits; surrounding whitespace collapsed) as an amount of `currency`. Decimals past
/// the second must be zeros.
pub fn parse_decimal(text: &str, currency: Currency) -> Result<Money, DecimalError> {
    let trimmed = text.trim();
    let shown = || trimmed.chars().take(40).collect::<String>();
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(DecimalError::NotDecimal(shown()));
    }
    if fraction.len() > 2 && fraction[2..].bytes().any(|b| b != b'0') {
        return Err(DecimalError::TooFine(shown()));
    }
    let mut cents = [b'0'; 2];
    for (slot, digit) in cents.iter_mut().zip(fraction.bytes()) {
        *slot = digit;
    }
    let whole = whole.trim_start_matches('0');
    // 17 digits of major units times 100 still fits an i64; more is no fine's sum.
    if whole.len() > 16 {
        return Err(DecimalError::TooLarge(shown()));
    }
    let number = |s: &[u8]| -> i64 {
        s.iter()
            .fold(0i64, |n, digit| n * 10 + i64::from(digit - b'0'))
    };
    let minor = number(whole.as_bytes()) * 100 + number(&cents);
    Ok(Money::new(if negative { -minor } else { minor }, currency))
}

/// `amount` as `xsd:decimal` in major units with two decimals: `7500.00`, `-0.05`.
pub fn format_decimal(amount: Money) -> String {
    let sign = if amount.minor < 0 { "-" } else { "" };
    let minor = amount.minor.unsigned_abs();
    format!("{sign}{}.{:02}", minor / 100, minor % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_read_exactly_or_not_at_all() {
        let som = |minor| Ok(Money::new(minor, Currency::KGS));
        for (text, want) in [
            ("7500.00", som(750_000)),
            ("7500", som(750_000)),
            ("7500.5", som(750_050)),
            ("0.01", som(1)),
            (".5", som(50)),
            ("5.", som(500)),
            ("+12.34", som(1_234)),
            ("-12.34", som(-1_234)),
            (" 2500.00\n", som(250_000)),
            ("0002500.000", som(250_000)),
            ("2500.10000", som(250_010)),
            ("9999999999999999.99", som(999_999_999_999_999_999)),
            ("2500.001", Err(DecimalError::TooFine("2500.001".into()))),
            ("0.005", Err(DecimalError::TooFine("0.005".into()))),
            (
                "99999999999999999",
                Err(DecimalError::TooLarge("99999999999999999".into())),
            ),
            ("", Err(DecimalError::NotDecimal("".into()))),
            (".", Err(DecimalError::NotDecimal(".".into()))),
            ("-", Err(DecimalError::NotDecimal("-".into()))),
            ("7 500", Err(DecimalError::NotDecimal("7 500".into()))),
            ("7500,00", Err(DecimalError::NotDecimal("7500,00".into()))),
            ("1e3", Err(DecimalError::NotDecimal("1e3".into()))),
            ("--5", Err(DecimalError::NotDecimal("--5".into()))),
            ("١٢", Err(DecimalError::NotDecimal("١٢".into()))),
        ] {
            assert_eq!(parse_decimal(text, Currency::KGS), want, "{text:?}");
        }
    }

    #[test]
    fn amounts_write_with_two_decimals_and_read_back() {
        for minor in [0, 1, 50, 99, 100, 250_000, 750_005, -5, -250_000] {
            let amount = Money::new(minor, Currency::KGS);
            let text = format_decimal(amount);
            assert_eq!(parse_decimal(&text, Currency::KGS), Ok(amount), "{text}");
        }
        assert_eq!(
            format_decimal(Money::new(750_000, Currency::KGS)),
            "7500.00"
        );
        assert_eq!(format_decimal(Money::new(-5, Currency::KGS)), "-0.05");
    }
}
