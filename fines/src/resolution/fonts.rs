//! The bundled fonts (DejaVu Sans and DejaVu Sans Bold, from Debian's
//! `fonts-dejavu-core` 2.37; licence in `fines/fonts/LICENSE-DejaVu.txt`), parsed once
//! per process, and text measurement for line wrapping.
//!
//! Two sets: [`prepared`] holds the faces cut down once per process to the characters
//! resolutions are written in (Latin and Cyrillic with their punctuation), with their
//! programs already compressed and their PDF font objects built once
//! (`pdf::attach_prepared_fonts`), so a resolution embeds them as they are and shows
//! its text as their glyph ids ([`Fonts::glyph_codes`]); [`full`] holds
//! the whole faces, subset for each document, for the rare text outside that repertoire
//! (a foreign owner's name in Greek, say). Subsetting and compressing a font program for
//! every document cost most of the time a resolution took to render.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use printpdf::{FontId, ParsedFont, PdfFontHandle};

const REGULAR_TTF: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// Fixed resource names: printpdf would draw random ones, and the PDF must be the same
/// bytes for the same resolution. The first six letters are the subset tag.
pub const REGULAR_ID: &str = "DJVREG";
pub const BOLD_ID: &str = "DJVBLD";

/// What the prepared faces keep: Basic Latin, Latin-1 and Latin Extended-A (names from
/// all over Europe), the modifier letters of Uzbek Latin, the Cyrillic alphabets of the
/// region (Russian, Ukrainian, Belarusian, and the Kyrgyz, Kazakh, Uzbek and Tajik
/// letters), general punctuation, №, and the euro, tenge and rouble signs. Every glyph
/// kept adds to every resolution (the prepared programs go in whole, ≈ 82 KB deflated
/// for both faces), so rarer scripts take the per-document path instead.
const REPERTOIRE: [RangeInclusive<u32>; 13] = [
    0x20..=0x7E,
    0xA0..=0x17F,
    0x2BB..=0x2BC,
    0x400..=0x45F,
    0x490..=0x4BB,
    0x4D8..=0x4D9,
    0x4E2..=0x4E3,
    0x4E8..=0x4E9,
    0x4EE..=0x4EF,
    0x2010..=0x203A,
    0x2116..=0x2116,
    0x20AC..=0x20AC,
    0x20B8..=0x20BD,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

impl Weight {
    pub const BOTH: [Weight; 2] = [Weight::Regular, Weight::Bold];
}

/// A prepared face's font program: the bytes printpdf embeds, and the same bytes
/// deflated once, which the document carries instead.
pub struct Program {
    pub raw: Vec<u8>,
    pub deflated: Vec<u8>,
}

pub struct Fonts {
    pub regular: ParsedFont,
    pub bold: ParsedFont,
    /// For the prepared set, the programs (regular, bold) embedded whole; `None` for the
    /// full faces, which printpdf subsets per document.
    pub programs: Option<[Program; 2]>,
    /// Glyph advances (regular, bold) of the code points below [`ADVANCE_TABLE_END`],
    /// looked up once: finding a glyph through the font's tables for every character
    /// measured was a tenth of a resolution's rendering.
    advances: [Vec<u16>; 2],
    /// The glyph ids (regular, bold) of the same code points, for the text the
    /// prepared faces show.
    glyphs: [Vec<u16>; 2],
}

/// Latin and Cyrillic, where nearly every character a resolution measures lies.
const ADVANCE_TABLE_END: u32 = 0x500;

fn advance_of(face: &ParsedFont, c: u32) -> u16 {
    face.get_horizontal_advance(face.lookup_glyph_index(c).unwrap_or(0))
}

fn advance_table(face: &ParsedFont) -> Vec<u16> {
    (0..ADVANCE_TABLE_END)
        .map(|c| advance_of(face, c))
        .collect()
}

fn glyph_table(face: &ParsedFont) -> Vec<u16> {
    (0..ADVANCE_TABLE_END)
        .map(|c| face.lookup_glyph_index(c).unwrap_or(0))
        .collect()
}

impl Fonts {
    fn new(regular: ParsedFont, bold: ParsedFont, programs: Option<[Program; 2]>) -> Self {
        let advances = [advance_table(&regular), advance_table(&bold)];
        let glyphs = [glyph_table(&regular), glyph_table(&bold)];
        Fonts {
            regular,
            bold,
            programs,
            advances,
            glyphs,
        }
    }
}

/// Every character of the repertoire that the prepared `weight` face has a glyph for.
pub fn repertoire_text(weight: Weight) -> String {
    let face = prepared().face(weight);
    REPERTOIRE
        .iter()
        .flat_map(|range| range.clone())
        .filter(|&code| face.lookup_glyph_index(code).is_some_and(|gid| gid != 0))
        .filter_map(char::from_u32)
        .collect()
}

/// The whole bundled faces (parsing takes milliseconds; done once).
pub fn full() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        Fonts::new(
            parse(REGULAR_TTF, "DejaVu Sans"),
            parse(BOLD_TTF, "DejaVu Sans Bold"),
            None,
        )
    })
}

/// The faces cut down to [`REPERTOIRE`], made once per process.
pub fn prepared() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let full = full();
        let [(regular, regular_program), (bold, bold_program)] =
            Weight::BOTH.map(|weight| cut_down(full.face(weight)));
        Fonts::new(regular, bold, Some([regular_program, bold_program]))
    })
}

fn parse(bytes: &[u8], name: &str) -> ParsedFont {
    ParsedFont::from_bytes(bytes, 0, &mut Vec::new())
        .unwrap_or_else(|| panic!("bundled {name} should parse"))
}

/// `face` subset to the repertoire (allsorts keeps a Unicode cmap, so layout looks
/// characters up in the cut-down face itself), and its program deflated.
fn cut_down(face: &ParsedFont) -> (ParsedFont, Program) {
    let glyphs: BTreeMap<u16, String> = REPERTOIRE
        .iter()
        .flat_map(|range| range.clone())
        .filter_map(|code| {
            let c = char::from_u32(code)?;
            let gid = face.lookup_glyph_index(code)?;
            Some((gid, c.to_string()))
        })
        .collect();
    let subset = printpdf::font::subset_font(face, &glyphs)
        .expect("the bundled fonts should subset to the repertoire");
    let parsed = parse(&subset.bytes, "DejaVu subset");
    let deflated = super::pdf::deflate(&subset.bytes, flate2::Compression::best());
    (
        parsed,
        Program {
            raw: subset.bytes,
            deflated,
        },
    )
}

impl Fonts {
    pub fn face(&self, weight: Weight) -> &ParsedFont {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// Whether every character of `text` has a glyph in this set's `weight` face.
    pub fn covers(&self, weight: Weight, text: &str) -> bool {
        let face = self.face(weight);
        text.chars().all(|c| {
            face.lookup_glyph_index(u32::from(c))
                .is_some_and(|gid| gid != 0)
        })
    }

    /// Width of `text` set at `size` points, as printpdf writes it (glyph advances, no
    /// kerning); characters the font lacks count as its `.notdef` glyph.
    pub fn width(&self, weight: Weight, size: f32, text: &str) -> f32 {
        self.points(weight, size, self.units(weight, text))
    }

    /// The advances of `text`'s glyphs, in font units: a sum, so a line's width is its
    /// words' and spaces' added up.
    fn units(&self, weight: Weight, text: &str) -> u32 {
        let face = self.face(weight);
        let table = match weight {
            Weight::Regular => &self.advances[0],
            Weight::Bold => &self.advances[1],
        };
        text.chars()
            .map(|c| {
                let code = u32::from(c);
                u32::from(match table.get(code as usize) {
                    Some(&advance) => advance,
                    None => advance_of(face, code),
                })
            })
            .sum()
    }

    /// `text` as this set's `weight` face's glyph ids, two bytes each, big-endian: the
    /// string a `Tj` shows in a font encoded `Identity-H` over the face's own glyph ids.
    /// A character the face lacks shows its `.notdef` glyph (0).
    pub fn glyph_codes(&self, weight: Weight, text: &str) -> Vec<u8> {
        let face = self.face(weight);
        let table = match weight {
            Weight::Regular => &self.glyphs[0],
            Weight::Bold => &self.glyphs[1],
        };
        let mut codes = Vec::with_capacity(2 * text.len());
        for c in text.chars() {
            let code = u32::from(c);
            let gid = match table.get(code as usize) {
                Some(&gid) => gid,
                None => face.lookup_glyph_index(code).unwrap_or(0),
            };
            codes.extend_from_slice(&gid.to_be_bytes());
        }
        codes
    }

    fn points(&self, weight: Weight, size: f32, units: u32) -> f32 {
        let units_per_em = f32::from(self.face(weight).pdf_font_metrics.units_per_em.max(1));
        units as f32 * size / units_per_em
    }

    /// Breaks `text` into lines no wider than `max_width`: at spaces, and inside a word
    /// only when the word alone is too wide. A `\n` starts a new line. Each word is
    /// measured once and added to its line's width, not the line measured again.
    pub fn wrap(&self, weight: Weight, size: f32, text: &str, max_width: f32) -> Vec<String> {
        let fits = |units: u32| self.points(weight, size, units) <= max_width;
        let space = self.units(weight, " ");
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            let mut line_units = 0;
            for word in paragraph.split_whitespace() {
                let word_units = self.units(weight, word);
                let candidate = if line.is_empty() {
                    word_units
                } else {
                    line_units + space + word_units
                };
                if fits(candidate) {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(word);
                    line_units = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word alone: split it if it is still too wide.
                line_units = 0;
                let mut buf = [0u8; 4];
                for c in word.chars() {
                    let c_units = self.units(weight, c.encode_utf8(&mut buf));
                    if !line.is_empty() && !fits(line_units + c_units) {
                        lines.push(std::mem::take(&mut line));
                        line_units = 0;
                    }
                    line.push(c);
                    line_units += c_units;
                }
            }
            lines.push(line);
        }
        lines
    }
}

pub fn handle(weight: Weight) -> PdfFontHandle {
    PdfFontHandle::External(font_id(weight))
}

pub fn font_id(weight: Weight) -> FontId {
    match weight {
        Weight::Regular => FontId(REGULAR_ID.to_owned()),
        Weight::Bold => FontId(BOLD_ID.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sets_cover_russian_kyrgyz_and_kazakh() {
        let text = "АБВЯабвяЁёЄєЎўңөүәғқұһіҳҷӣӯ№€₸0123456789«»–—ÄÖÜßçłʻ";
        for set in [full(), prepared()] {
            for w in Weight::BOTH {
                assert!(set.covers(w, text), "{w:?}");
            }
        }
        // Greek is in DejaVu but not in the repertoire: only the full faces have it.
        assert!(full().covers(Weight::Regular, "Ωμέγα"));
        assert!(!prepared().covers(Weight::Regular, "Ωμέγα"));
    }

    #[test]
    fn prepared_faces_measure_as_the_full_ones() {
        let text = "Постановление № 01 KG 123 ABC — 1 500,00 сом";
        for w in Weight::BOTH {
            assert_eq!(full().width(w, 10.0, text), prepared().width(w, 10.0, text));
        }
        let programs = prepared().programs.as_ref().expect("prepared programs");
        for program in programs {
            assert!(program.raw.len() < 200_000, "{} bytes", program.raw.len());
            assert!(program.deflated.len() < program.raw.len());
        }
    }

    #[test]
    fn glyph_codes_are_the_faces_own_glyph_ids() {
        let f = prepared();
        // Inside the looked-up table (Cyrillic) and past it (№, the tenge sign).
        let text = "Аж1 №₸";
        for w in Weight::BOTH {
            let codes = f.glyph_codes(w, text);
            let expected: Vec<u8> = text
                .chars()
                .flat_map(|c| {
                    let gid = f.face(w).lookup_glyph_index(u32::from(c)).expect("glyph");
                    gid.to_be_bytes()
                })
                .collect();
            assert_eq!(codes, expected, "{w:?}");
            assert!(codes.chunks(2).all(|gid| gid != [0, 0]), "{w:?}");
        }
        // A character the face lacks is its .notdef glyph.
        assert_eq!(f.glyph_codes(Weight::Regular, "Ω"), [0, 0]);
        for w in Weight::BOTH {
            let repertoire = repertoire_text(w);
            assert!(repertoire.chars().count() > 500, "{w:?}");
            assert!(f.covers(w, &repertoire), "{w:?}");
        }
    }

    #[test]
    fn wraps_at_spaces_within_width() {
        let f = prepared();
        let text = "Постановление может быть обжаловано в течение десяти дней со дня вручения";
        let lines = f.wrap(Weight::Regular, 10.0, text, 150.0);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(f.width(Weight::Regular, 10.0, line) <= 150.0, "{line}");
        }
        assert_eq!(lines.join(" "), text);
        let long_word = "А".repeat(100);
        let lines = f.wrap(Weight::Bold, 10.0, &long_word, 50.0);
        assert!(lines.len() > 5);
        assert_eq!(lines.concat(), long_word);
        assert_eq!(
            f.wrap(Weight::Regular, 10.0, "a\n\nb", 100.0),
            ["a", "", "b"]
        );
    }
}
