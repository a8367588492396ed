//! Plate-format knowledge, pure: countries and their formats as patterns,
//! Cyrillic/Latin homoglyph normalisation, canonical text, and candidate plates built
//! from a reader's per-character probabilities.
//!
//! Scoring is a noisy channel: a candidate's **confidence** is the reader's evidence
//! for it, the product of its per-character probabilities (the probability that every
//! character is right if the reader's errors are independent, which is what "this read
//! is exact" means; a minimum would hide several doubtful characters behind one, and
//! could not rank candidates that differ in one place). Candidates are **ranked** by
//! confidence × the prior of the format they fit, so a format is a prior, not a
//! filter: a read that fits no format stays a candidate, with a small prior.
//!
//! Pattern letters: `D` a digit, `N` a digit 1–9, `L` a Latin letter, `R` one of the
//! twelve letters Russian plates share with Latin (ABEKMHOPCTYX), `A` a letter or
//! digit; a digit stands for itself; a lower-case letter is printed on the plate (as
//! "KG" beside the flag) and read, but is not part of the number.

use std::collections::HashMap;

use serde::Serialize;

/// Countries the formats know; `EU` and `US` stand for common layouts there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Country {
    #[serde(rename = "KG")]
    Kg,
    #[serde(rename = "KZ")]
    Kz,
    #[serde(rename = "RU")]
    Ru,
    #[serde(rename = "BR")]
    Br,
    #[serde(rename = "EU")]
    Eu,
    #[serde(rename = "US")]
    Us,
}

impl Country {
    pub fn code(self) -> &'static str {
        match self {
            Country::Kg => "KG",
            Country::Kz => "KZ",
            Country::Ru => "RU",
            Country::Br => "BR",
            Country::Eu => "EU",
            Country::Us => "US",
        }
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A plate layout: the patterns its canonical text (plus printed extras) can take.
#[derive(Debug)]
pub struct PlateFormat {
    pub name: &'static str,
    /// `None` for the generic fallback.
    pub country: Option<Country>,
    pub patterns: &'static [&'static str],
    /// Relative weight: how likely a plate seen by the city's cameras has this format.
    pub prior: f32,
    /// The generic fallback wants at least one letter and one digit.
    pub letter_and_digit: bool,
}

/// The prior of a read that fits no format.
pub const UNKNOWN_PRIOR: f32 = 0.02;
/// Plates print capitals: a character read in lower case is likely a small glyph
/// beside the number (a sticker, a state name) and keeps this share of its
/// probability.
pub const LOWER_CASE_LIKELIHOOD: f32 = 0.3;

pub static FORMATS: &[PlateFormat] = &[
    PlateFormat {
        name: "KG 2016",
        country: Some(Country::Kg),
        // region 01–09, then three digits and three letters; "KG" is printed under the region
        patterns: &["0NDDDLLL", "0NkgDDDLLL"],
        prior: 1.0,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "KZ 2012",
        country: Some(Country::Kz),
        // three digits, three letters, region 01–20; "KZ" is printed beside the flag
        patterns: &[
            "DDDLLL0N",
            "DDDLLL1D",
            "DDDLLL20",
            "kzDDDLLL0N",
            "kzDDDLLL1D",
            "kzDDDLLL20",
        ],
        prior: 0.8,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "RU",
        country: Some(Country::Ru),
        // letter, three digits, two letters, region of two or three digits, "RUS"
        patterns: &["RDDDRRDD", "RDDDRRNDD", "RDDDRRDDrus", "RDDDRRNDDrus"],
        prior: 0.6,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "KG old",
        country: Some(Country::Kg),
        patterns: &["LDDDDLL"],
        prior: 0.5,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "BR Mercosul",
        country: Some(Country::Br),
        patterns: &["LLLDLDD"],
        prior: 0.3,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "US",
        country: Some(Country::Us),
        // California's 1ABC234 and the many states' ABC1234
        patterns: &["DLLLDDD", "LLLDDDD"],
        prior: 0.3,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "EU",
        country: Some(Country::Eu),
        // France and Italy's AB123CD, Britain's AB12CDE
        patterns: &["LLDDDLL", "LLDDLLL"],
        prior: 0.3,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "BR old",
        country: Some(Country::Br),
        patterns: &["LLLDDDD"],
        prior: 0.25,
        letter_and_digit: false,
    },
    PlateFormat {
        name: "generic",
        country: None,
        patterns: &["AAAAA", "AAAAAA", "AAAAAAA", "AAAAAAAA"],
        prior: 0.1,
        letter_and_digit: true,
    },
];

const RU_LETTERS: &str = "ABEKMHOPCTYX";

/// Look-alike pairs an OCR confuses (letter, digit), and how much of the read
/// character's probability the other keeps when the reader did not rank it higher
/// itself: roughly P(read `O` | plate shows `0`) / P(read `O` | plate shows `O`).
/// The closer the glyphs, the higher; so a `0` in a letter's place becomes `O`
/// rather than `D` or `Q`.
/// Plate fonts draw `O` and `0` alike (a letter's place is the only tell), and the
/// reader takes one for the other on most plates that print them.
const CONFUSIONS: &[(char, char, f32)] = &[
    ('O', '0', 0.8),
    ('I', '1', 0.3),
    ('B', '8', 0.2),
    ('S', '5', 0.2),
    ('Z', '2', 0.2),
    ('G', '6', 0.2),
    ('D', '0', 0.1),
    ('Q', '0', 0.1),
    ('A', '4', 0.1),
    ('T', '7', 0.1),
];

/// How much a look-alike of `read` keeps for being `other` (0 if they are not).
fn confusion(read: char, other: char) -> f32 {
    CONFUSIONS
        .iter()
        .find(|&&(l, d, _)| (l, d) == (read, other) || (d, l) == (read, other))
        .map_or(0.0, |c| c.2)
}

/// One character as the reader saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CharRead {
    pub ch: char,
    pub prob: f32,
    /// Runner-up characters at the same place, best first.
    pub alternatives: Vec<(char, f32)>,
}

/// A possible plate text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Canonical: upper-case Latin letters and digits.
    pub text: String,
    /// The reader's evidence for this text (product of per-character probabilities).
    pub confidence: f32,
    pub country: Option<Country>,
}

/// A scored candidate, as [`candidates`] builds it.
#[derive(Debug, Clone)]
pub struct Scored {
    pub candidate: Candidate,
    /// Per-character probabilities of `candidate.text`.
    pub char_confidences: Vec<f32>,
    /// confidence × format prior: what candidates are ranked by.
    pub score: f32,
    pub format: Option<&'static PlateFormat>,
}

/// A read character as it counts on a plate: homoglyphs to Latin, upper case;
/// `None` for separators and for anything else that is not a Latin letter or a
/// digit (plates in these formats carry nothing else; a Chinese-trained reader may
/// add a province character that is not there).
pub fn normalise_char(c: char) -> Option<char> {
    let c = kozomol_core::latin_lookalike(c).to_ascii_uppercase();
    c.is_ascii_alphanumeric().then_some(c)
}

/// Canonical plate text: homoglyphs to Latin, upper case, only Latin letters and
/// digits (`"01 kg 123-АВС"` → `"01KG123ABC"`).
pub fn canonicalise(raw: &str) -> String {
    raw.chars().filter_map(normalise_char).collect()
}

fn token_accepts(token: u8, c: char) -> bool {
    match token {
        b'D' => c.is_ascii_digit(),
        b'N' => ('1'..='9').contains(&c),
        b'L' => c.is_ascii_uppercase(),
        b'R' => RU_LETTERS.contains(c),
        b'A' => c.is_ascii_alphanumeric(),
        b'0'..=b'9' => c == token as char,
        b'a'..=b'z' => c == token.to_ascii_uppercase() as char,
        _ => false,
    }
}

/// The number a plate's text names: its canonical form with the marks printed beside
/// the number dropped where the text fits a format with them (`"01 KG 123 ABC"` →
/// `"01123ABC"`, `"A123BC77RUS"` → `"A123BC77"`), as our reads are written; other text
/// as it is. A camera that reports the printed "KG" reads the same plate as we do.
pub fn number_of(text: &str) -> String {
    let text = canonicalise(text);
    for format in FORMATS {
        for pattern in format.patterns {
            if pattern.bytes().any(|b| b.is_ascii_lowercase()) && matches(pattern, &text) {
                return pattern
                    .bytes()
                    .zip(text.chars())
                    .filter(|(t, _)| !t.is_ascii_lowercase())
                    .map(|(_, c)| c)
                    .collect();
            }
        }
    }
    text
}

/// Whether the text fits the pattern exactly, printed extras included.
pub fn matches(pattern: &str, text: &str) -> bool {
    pattern.len() == text.chars().count()
        && pattern
            .bytes()
            .zip(text.chars())
            .all(|(t, c)| token_accepts(t, c))
}

/// The best-prior format whose patterns the canonical form of `text` fits exactly
/// (a pattern's printed extras left out).
pub fn classify(text: &str) -> Option<&'static PlateFormat> {
    let text = canonicalise(text);
    FORMATS.iter().find(|f| {
        f.patterns.iter().any(|p| {
            let number: String = p
                .bytes()
                .filter(|b| !b.is_ascii_lowercase())
                .map(char::from)
                .collect();
            matches(&number, &text) && (!f.letter_and_digit || letter_and_digit(&text))
        })
    })
}

fn letter_and_digit(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit()) && text.chars().any(|c| c.is_ascii_alphabetic())
}

/// A normalised reader slot: the read character and every other it might be.
struct Slot {
    ch: char,
    prob: f32,
    alternatives: Vec<(char, f32)>,
    /// Read in lower case: may be left out even where the read fits no format.
    small: bool,
}

impl Slot {
    fn from_read(r: &CharRead) -> Option<Slot> {
        let ch = normalise_char(r.ch)?;
        let mut alternatives: Vec<(char, f32)> = Vec::new();
        for &(a, p) in &r.alternatives {
            match normalise_char(a) {
                Some(a) if a != ch => match alternatives.iter_mut().find(|(b, _)| *b == a) {
                    Some(known) => known.1 = known.1.max(p),
                    None => alternatives.push((a, p)),
                },
                _ => {}
            }
        }
        let small = r.ch.is_lowercase();
        Some(Slot {
            ch,
            prob: if small {
                r.prob * LOWER_CASE_LIKELIHOOD
            } else {
                r.prob
            },
            alternatives,
            small,
        })
    }

    /// The evidence that this slot shows `c`.
    fn likelihood(&self, c: char) -> f32 {
        if c == self.ch {
            return self.prob;
        }
        let ranked = self
            .alternatives
            .iter()
            .find(|a| a.0 == c)
            .map_or(0.0, |a| a.1);
        ranked.max(self.prob * confusion(self.ch, c))
    }

    /// Characters this slot may stand for under `token`, best first.
    fn options(&self, token: u8) -> Vec<(char, f32)> {
        let confusions = CONFUSIONS.iter().filter_map(|&(l, d, _)| {
            (l == self.ch)
                .then_some(d)
                .or_else(|| (d == self.ch).then_some(l))
        });
        let mut options: Vec<(char, f32)> = std::iter::once(self.ch)
            .chain(self.alternatives.iter().map(|a| a.0))
            .chain(confusions)
            .filter(|&c| token_accepts(token, c))
            .map(|c| (c, self.likelihood(c)))
            .filter(|o| o.1 > 0.0)
            .collect();
        options.sort_by(|a, b| b.1.total_cmp(&a.1));
        options.dedup_by_key(|o| o.0);
        options
    }
}

/// The best reading of `slots` under `pattern`, and the runner-up at each place.
fn fit(slots: &[&Slot], pattern: &[u8]) -> Option<Vec<Vec<(char, f32)>>> {
    if slots.len() != pattern.len() {
        return None;
    }
    slots
        .iter()
        .zip(pattern)
        .map(|(s, &t)| {
            let o = s.options(t);
            (!o.is_empty()).then_some(o)
        })
        .collect()
}

/// Turns per-place choices into a candidate (printed extras dropped).
fn scored(
    pattern: &[u8],
    chosen: &[(char, f32)],
    factor: f32,
    format: &'static PlateFormat,
) -> Scored {
    let mut text = String::new();
    let mut probs = Vec::new();
    let mut confidence = factor;
    for (&t, &(c, p)) in pattern.iter().zip(chosen) {
        confidence *= p;
        if !t.is_ascii_lowercase() {
            text.push(c);
            probs.push(p);
        }
    }
    Scored {
        candidate: Candidate {
            text,
            confidence,
            country: format.country,
        },
        char_confidences: probs,
        score: confidence * format.prior,
        format: Some(format),
    }
}

/// Candidates for one read, best first, at most `limit`: the read itself (under the
/// generic fallback if it fits), and for each specific format the best text its
/// look-alikes and runner-ups allow (also with one read character left out, at the
/// cost of the reader's confidence in it), plus one-character variants of those.
pub fn candidates(read: &[CharRead], limit: usize) -> Vec<Scored> {
    let slots: Vec<Slot> = read.iter().filter_map(Slot::from_read).collect();
    if slots.is_empty() || limit == 0 {
        return Vec::new();
    }
    let raw_text: String = slots.iter().map(|s| s.ch).collect();
    let raw_confidence: f32 = slots.iter().map(|s| s.prob).product();
    let raw = Scored {
        candidate: Candidate {
            text: raw_text,
            confidence: raw_confidence,
            country: None,
        },
        char_confidences: slots.iter().map(|s| s.prob).collect(),
        score: raw_confidence * UNKNOWN_PRIOR,
        format: None,
    };
    let mut all = vec![raw];
    // the read as it is, and with each one character left out (for the generic
    // fallback only a character read in lower case: it takes any read as it is)
    let mut variants: Vec<(Vec<&Slot>, f32, bool)> = vec![(slots.iter().collect(), 1.0, true)];
    if slots.len() > 4 {
        for (skip, left_out) in slots.iter().enumerate() {
            let kept = slots
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, s)| s)
                .collect();
            variants.push((kept, 1.0 - left_out.prob, left_out.small));
        }
    }
    for (kept, factor, _) in variants.iter().filter(|v| v.2) {
        let text: String = kept.iter().map(|s| s.ch).collect();
        let generic = FORMATS.iter().find(|f| {
            f.letter_and_digit
                && letter_and_digit(&text)
                && f.patterns.iter().any(|p| matches(p, &text))
        });
        if let Some(format) = generic {
            let probs: Vec<f32> = kept.iter().map(|s| s.prob).collect();
            let confidence = factor * probs.iter().product::<f32>();
            all.push(Scored {
                candidate: Candidate {
                    text,
                    confidence,
                    country: None,
                },
                char_confidences: probs,
                score: confidence * format.prior,
                format: Some(format),
            });
        }
    }
    for format in FORMATS.iter().filter(|f| !f.letter_and_digit) {
        for pattern in format.patterns.iter().map(|p| p.as_bytes()) {
            for (kept, factor, _) in &variants {
                if kept.len() != pattern.len() {
                    continue;
                }
                let Some(options) = fit(kept, pattern) else {
                    continue;
                };
                let best: Vec<(char, f32)> = options.iter().map(|o| o[0]).collect();
                all.push(scored(pattern, &best, *factor, format));
                for (i, o) in options.iter().enumerate().filter(|(_, o)| o.len() > 1) {
                    let mut alt = best.clone();
                    alt[i] = o[1];
                    all.push(scored(pattern, &alt, *factor, format));
                }
            }
        }
    }
    // one entry per text, its best score
    let mut best_by_text: HashMap<String, Scored> = HashMap::new();
    for s in all {
        match best_by_text.get(&s.candidate.text) {
            Some(known) if known.score >= s.score => {}
            _ => {
                best_by_text.insert(s.candidate.text.clone(), s);
            }
        }
    }
    let mut ranked: Vec<Scored> = best_by_text.into_values().collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.candidate.text.cmp(&b.candidate.text))
    });
    ranked.truncate(limit);
    ranked
}

/// Two readers' best candidates for one plate, where they are the same text: that
/// text with the noisy-or of their confidences, per character and whole (two readers
/// that saw the plate differently and agree are more often right than either),
/// scored by that × its format's prior. `None` where they differ.
pub fn agreed(first: &Scored, second: &Scored) -> Option<Scored> {
    if first.candidate.text != second.candidate.text {
        return None;
    }
    let either = |a: f32, b: f32| 1.0 - (1.0 - a) * (1.0 - b);
    let mut m = first.clone();
    m.candidate.confidence = either(first.candidate.confidence, second.candidate.confidence);
    m.char_confidences = first
        .char_confidences
        .iter()
        .zip(&second.char_confidences)
        .map(|(&a, &b)| either(a, b))
        .collect();
    m.score = m.candidate.confidence * m.format.map_or(UNKNOWN_PRIOR, |f| f.prior);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Place, probability and runner-ups of a doubtful character.
    type Doubt<'a> = (usize, f32, &'a [(char, f32)]);

    /// A read where every character has probability `p`, except those given.
    fn read(text: &str, p: f32, doubts: &[Doubt]) -> Vec<CharRead> {
        text.chars()
            .enumerate()
            .map(|(i, ch)| match doubts.iter().find(|d| d.0 == i) {
                Some(&(_, prob, alts)) => CharRead {
                    ch,
                    prob,
                    alternatives: alts.to_vec(),
                },
                None => CharRead {
                    ch,
                    prob: p,
                    alternatives: vec![],
                },
            })
            .collect()
    }

    #[test]
    fn printed_marks_are_not_part_of_the_number() {
        for (text, number) in [
            ("01 KG 123 ABC", "01123ABC"),
            ("01KG123ABC", "01123ABC"),
            ("01123ABC", "01123ABC"),
            ("KZ 123 ABC 02", "123ABC02"),
            ("А123ВС77RUS", "A123BC77"),
            ("A123BC777", "A123BC777"),
            // not a format with marks: kept whole
            ("KG1234", "KG1234"),
            ("", ""),
        ] {
            assert_eq!(number_of(text), number, "{text}");
        }
    }

    #[test]
    fn formats_accept_and_reject() {
        let cases: &[(&str, Option<&str>)] = &[
            ("01123ABC", Some("KG 2016")),
            ("09 000 XYZ", Some("KG 2016")),
            // as canonical text, "KG" counts: only a read may carry it as a printed extra
            ("01 KG 123 ABC", None),
            ("10123ABC", Some("generic")), // no region 10 in Kyrgyzstan...
            ("00123ABC", Some("generic")), // ...nor 00
            ("B1234AB", Some("KG old")),
            ("123ABC02", Some("KZ 2012")),
            ("123ABC20", Some("KZ 2012")),
            ("123ABC21", Some("generic")),
            ("A123BC77", Some("RU")),
            ("а123вс777", Some("RU")), // Cyrillic, lower case
            ("F123BC77", Some("generic")),
            ("ABC1D23", Some("BR Mercosul")),
            ("ABC1234", Some("US")),
            ("7ABC123", Some("US")),
            ("AB-123-CD", Some("EU")),
            ("AB12CDE", Some("EU")),
            ("YG9X2G", Some("generic")),
            ("ABCDEF", None),
            ("1234", None),
            ("", None),
        ];
        for &(text, expected) in cases {
            assert_eq!(classify(text).map(|f| f.name), expected, "{text}");
        }
    }

    #[test]
    fn homoglyphs_become_latin() {
        let cases = [
            ("АВЕКМНОРСТУХ", "ABEKMHOPCTYX"),
            ("авекмнорстух", "ABEKMHOPCTYX"),
            ("01 kg 123-а.в.с", "01KG123ABC"),
            ("Ｂ１２３", "B123"),
            ("Д12", "12"), // a Cyrillic letter without a Latin twin is no plate character
            ("鄂FGJ235", "FGJ235"), // nor a Chinese province
        ];
        for (raw, canonical) in cases {
            assert_eq!(canonicalise(raw), canonical, "{raw}");
        }
    }

    #[test]
    fn candidates_rerank_by_format() {
        struct Case {
            read: Vec<CharRead>,
            best: &'static str,
            country: Option<Country>,
            also: &'static str,
        }
        let cases = [
            // O read for 0 in the region: the KG reading wins, the raw read stays
            Case {
                read: read("O1123ABC", 0.95, &[(0, 0.9, &[])]),
                best: "01123ABC",
                country: Some(Country::Kg),
                also: "O1123ABC",
            },
            // the reader's own runner-up decides the letter
            Case {
                read: read("011238BC", 0.95, &[(5, 0.6, &[('B', 0.35)])]),
                best: "01123BBC",
                country: Some(Country::Kg),
                also: "011238BC",
            },
            // a 0 in a letter's place is an O, even where the reader ranks D a little higher
            Case {
                read: read("01960C0B", 0.95, &[(6, 0.9, &[('D', 0.04), ('O', 0.03)])]),
                best: "01960COB",
                country: Some(Country::Kg),
                also: "01960C0B",
            },
            // "KG" printed beside the flag is read but is not part of the number
            Case {
                read: read("01KG123ABC", 0.95, &[]),
                best: "01123ABC",
                country: Some(Country::Kg),
                also: "01KG123ABC",
            },
            // Cyrillic read of a Russian plate
            Case {
                read: read("А123ВС77", 0.95, &[]),
                best: "A123BC77",
                country: Some(Country::Ru),
                also: "",
            },
            // a sure read fitting no format is not forced into one
            Case {
                read: read("ABCDEFGH", 0.99, &[]),
                best: "ABCDEFGH",
                country: None,
                also: "",
            },
            // a US vanity-style read stays as read
            Case {
                read: read("YG9X2G", 0.97, &[]),
                best: "YG9X2G",
                country: None,
                also: "",
            },
            // an unsure character is not dropped just to fit the generic fallback
            Case {
                read: read("267WJE", 0.95, &[(3, 0.3, &[])]),
                best: "267WJE",
                country: None,
                also: "",
            },
            // a small glyph read in lower case is left out
            Case {
                read: read("520mMRK", 0.95, &[]),
                best: "520MRK",
                country: None,
                also: "520MMRK",
            },
            // a sticker character in front of a KZ plate is dropped
            Case {
                read: read("7123ABC02", 0.97, &[(0, 0.5, &[])]),
                best: "123ABC02",
                country: Some(Country::Kz),
                also: "7123ABC02",
            },
        ];
        for case in cases {
            let ranked = candidates(&case.read, 5);
            let texts: Vec<&str> = ranked.iter().map(|s| s.candidate.text.as_str()).collect();
            assert_eq!(texts[0], case.best, "{texts:?}");
            assert_eq!(ranked[0].candidate.country, case.country, "{texts:?}");
            assert_eq!(ranked[0].char_confidences.len(), case.best.len());
            if !case.also.is_empty() {
                assert!(
                    texts.contains(&case.also),
                    "{texts:?} should keep {}",
                    case.also
                );
            }
            assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }

    #[test]
    fn confidence_is_the_product_of_character_probabilities() {
        let ranked = candidates(&read("01123ABC", 0.9, &[(7, 0.5, &[])]), 3);
        assert_eq!(ranked[0].candidate.text, "01123ABC");
        let expected = 0.9f32.powi(7) * 0.5;
        assert!((ranked[0].candidate.confidence - expected).abs() < 1e-6);
        // a substituted look-alike costs confidence
        let fixed = candidates(&read("O1123ABC", 0.9, &[]), 3);
        assert_eq!(fixed[0].candidate.text, "01123ABC");
        assert!(fixed[0].candidate.confidence < 0.9f32.powi(8));
    }

    #[test]
    fn agreement_is_the_same_best_text() {
        let both = |a: f32, b: f32| 1.0 - (1.0 - a) * (1.0 - b);
        // (first read, second read, agreed confidence)
        let cases: &[(&str, &str, Option<f32>)] = &[
            (
                "01123ABC",
                "01123ABC",
                Some(both(0.9f32.powi(8), 0.8f32.powi(8))),
            ),
            // a separator or a look-alike read differently is still the same plate
            (
                "01 123 ABC",
                "O1123ABC",
                Some(both(0.9f32.powi(8), 0.8f32.powi(8))),
            ),
            ("01123ABC", "02123ABC", None),
            ("123ABC", "01123ABC", None),
        ];
        for &(a, b, want) in cases {
            let (a_best, b_best) = (
                candidates(&read(a, 0.9, &[]), 5).remove(0),
                candidates(&read(b, 0.8, &[]), 5).remove(0),
            );
            let got = agreed(&a_best, &b_best);
            match (got, want) {
                (Some(m), Some(c)) => {
                    assert!(
                        (m.candidate.confidence - c).abs() < 0.02,
                        "{a} + {b}: {m:?}"
                    );
                    assert!(m.candidate.confidence > a_best.candidate.confidence);
                    assert!(m.score > a_best.score && m.score > b_best.score);
                    assert_eq!(m.char_confidences.len(), m.candidate.text.len());
                }
                (None, None) => {}
                (got, _) => panic!("{a} + {b}: {got:?}"),
            }
        }
    }

    #[test]
    fn separators_and_empty_reads() {
        assert!(candidates(&read(" -.", 0.9, &[]), 5).is_empty());
        let ranked = candidates(&read("01 123 ABC", 0.9, &[]), 5);
        assert_eq!(ranked[0].candidate.text, "01123ABC");
    }
}
