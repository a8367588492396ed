//! Which plates the Kyrgyz registry can know, and one spelling for each plate.

use serde::{Deserialize, Serialize};

/// Who decides whether a plate is Kyrgyz: the caller (from the recognizer's country or
/// an officer's word), or `is_domestic_plate` when the caller leaves it open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateOrigin {
    /// Decide with [`is_domestic_plate`].
    #[default]
    Auto,
    Domestic,
    /// Answered `ForeignPlate` without asking the bus.
    Foreign,
}

/// Upper case, without spaces, hyphens or dots, with the letters that look like Latin
/// ones written in Latin (`kozomol_core::latin_lookalike`).
pub fn normalize_plate(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '_'))
        .flat_map(char::to_uppercase)
        .map(kozomol_core::latin_lookalike)
        .collect()
}

/// Whether a plate is in a Kyrgyz format this crate knows, after [`normalize_plate`]:
/// - 2016 format: region `01`–`09`, `KG`, three digits, three letters —
///   `01KG123ABC`; also without `KG` (`01123ABC`), as the recognizer writes it;
/// - the older format: a region letter, four digits, two letters — `B1234AB`.
///
/// Other Kyrgyz plates (diplomatic, military, trailers, motorcycles, transit) are not
/// recognised: a caller that knows better passes [`PlateOrigin::Domestic`].
pub fn is_domestic_plate(raw: &str) -> bool {
    let plate: Vec<char> = normalize_plate(raw).chars().collect();
    let digit = |c: &char| c.is_ascii_digit();
    let letter = |c: &char| c.is_ascii_uppercase();
    let region = |p: &[char]| p[0] == '0' && ('1'..='9').contains(&p[1]);
    match plate.len() {
        10 => {
            region(&plate)
                && plate[2..4] == ['K', 'G']
                && plate[4..7].iter().all(digit)
                && plate[7..10].iter().all(letter)
        }
        8 => region(&plate) && plate[2..5].iter().all(digit) && plate[5..8].iter().all(letter),
        7 => letter(&plate[0]) && plate[1..5].iter().all(digit) && plate[5..7].iter().all(letter),
        _ => false,
    }
}

/// The key under which two spellings of one plate meet: normalised, with the `KG` of
/// the 2016 format dropped.
pub fn plate_key(raw: &str) -> String {
    let plate = normalize_plate(raw);
    let chars: Vec<char> = plate.chars().collect();
    if chars.len() == 10 && chars[2..4] == ['K', 'G'] && chars[..2].iter().all(char::is_ascii_digit)
    {
        chars[..2].iter().chain(&chars[4..]).collect()
    } else {
        plate
    }
}

/// What every spelling of one plate comes to: normalised, and a 2016-format plate (two
/// digits, `KG`, three digits, three letters) without its `KG`. Narrower than
/// [`plate_key`] (kept as stored keys and SQL have it): only the 2016 shape loses a
/// `KG`, so `12KG3ABC02` stays another plate than `123ABC02`.
pub fn plate_identity(raw: &str) -> String {
    let plate = normalize_plate(raw);
    let chars: Vec<char> = plate.chars().collect();
    let without_kg = (chars.len() == 10 && chars[2..4] == ['K', 'G'])
        .then(|| {
            chars[..2]
                .iter()
                .chain(&chars[4..])
                .copied()
                .collect::<Vec<_>>()
        })
        .filter(|key| kg_2016_without_kg(key));
    match without_kg {
        Some(key) => key.into_iter().collect(),
        None => plate,
    }
}

/// Whether `chars` are a 2016-format plate written without its `KG`: two digits, three
/// digits, three letters.
fn kg_2016_without_kg(chars: &[char]) -> bool {
    chars.len() == 8
        && chars[..5].iter().all(char::is_ascii_digit)
        && chars[5..].iter().all(char::is_ascii_uppercase)
}

/// Every spelling under which a plate may be stored, normalised: a 2016-format plate
/// with and without its `KG` (the recognizer drops it, an officer may type it), any
/// other as it is. A plate typed as printed finds the cases of either spelling. Only
/// the 2016 shape gets a `KG` spelling ([`plate_identity`]): no other plate is written
/// with one, and a series such as `01KG*` must not take in a foreign `01A123BC`.
pub fn plate_spellings(raw: &str) -> Vec<String> {
    let plate = normalize_plate(raw);
    let identity = plate_identity(&plate);
    let chars: Vec<char> = identity.chars().collect();
    let with_kg = kg_2016_without_kg(&chars).then(|| {
        chars[..2]
            .iter()
            .chain(['K', 'G'].iter())
            .chain(&chars[2..])
            .collect::<String>()
    });
    let mut spellings = vec![identity];
    spellings.extend(with_kg);
    if !spellings.contains(&plate) {
        spellings.push(plate);
    }
    spellings
}

/// Whether two plates are one: the same once normalised, or a 2016-format plate with
/// and without its `KG` (a camera writes `01KG123ABC`, the recognizer `01123ABC`).
pub fn same_plate(a: &str, b: &str) -> bool {
    plate_identity(a) == plate_identity(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plate_is_found_under_each_of_its_spellings() {
        for (typed, want) in [
            ("01 KG 123 ABC", vec!["01123ABC", "01KG123ABC"]),
            ("01123abc", vec!["01123ABC", "01KG123ABC"]),
            ("B 1234 AB", vec!["B1234AB"]),
            ("KZ777AAA02", vec!["KZ777AAA02"]),
            // Only the 2016 shape is also written with KG: not Uzbek or Kazakh plates.
            ("01A123BC", vec!["01A123BC"]),
            ("012ABC02", vec!["012ABC02"]),
        ] {
            assert_eq!(plate_spellings(typed), want, "{typed}");
            for spelling in plate_spellings(typed) {
                assert_eq!(
                    plate_identity(&spelling),
                    plate_identity(typed),
                    "{typed}: {spelling}"
                );
            }
        }
    }

    #[test]
    fn domestic_plates() {
        let cases = [
            ("01KG123ABC", true),
            ("01 KG 123 ABC", true),
            ("01kg123abc", true),
            ("01123ABC", true),
            ("09KG999XYZ", true),
            ("00KG123ABC", false),
            ("10KG123ABC", false),
            ("01KZ123ABC", false),
            ("01KG12ABC", false),
            ("B1234AB", true),
            ("B 1234 AB", true),
            ("В1234АВ", true), // Cyrillic homoglyphs
            ("1234AB", false),
            ("123ABC01", false), // Kazakh 2012
            ("A123BC77", false), // Russian
            ("", false),
            ("01KG123АВС", true),
        ];
        for (plate, domestic) in cases {
            assert_eq!(is_domestic_plate(plate), domestic, "{plate}");
        }
    }

    #[test]
    fn one_plate_whatever_its_spelling() {
        for (a, b, same) in [
            ("01KG123ABC", "01123ABC", true),
            ("01123abc", "01 KG 123 ABC", true),
            ("01KG123АВС", "01123ABC", true),
            ("B 1234 AB", "B1234AB", true),
            ("01KG123ABC", "02123ABC", false),
            ("01KG123ABC", "01KG123ABD", false),
            // A KG written into a foreign plate makes another plate.
            ("123ABC02", "12KG3ABC02", false),
            ("01A123BC", "01KGA123BC", false),
        ] {
            assert_eq!(same_plate(a, b), same, "{a} vs {b}");
            assert_eq!(same_plate(b, a), same, "{b} vs {a}");
        }
    }

    #[test]
    fn spellings_meet() {
        assert_eq!(plate_key("01 KG 123 ABC"), plate_key("01123abc"));
        assert_eq!(plate_key("В 1234 АВ"), "B1234AB");
        assert_ne!(plate_key("01KG123ABC"), plate_key("02KG123ABC"));
    }
}
