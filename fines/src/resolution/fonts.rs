//! The bundled fonts (DejaVu Sans and DejaVu Sans Bold, from Debian's
//! `fonts-dejavu-core` 2.37; licence in `fines/fonts/LICENSE-DejaVu.txt`), parsed once
//! per process, and text measurement for line wrapping.

use std::sync::OnceLock;

use printpdf::{FontId, ParsedFont, PdfFontHandle};

const REGULAR_TTF: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// Fixed resource names: printpdf would draw random ones, and the PDF must be the same
/// bytes for the same resolution. The first six letters are the subset tag.
pub const REGULAR_ID: &str = "DJVREG";
pub const BOLD_ID: &str = "DJVBLD";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

pub struct Fonts {
    pub regular: ParsedFont,
    pub bold: ParsedFont,
}

/// The parsed bundled fonts (parsing takes milliseconds; done once).
pub fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| Fonts {
        regular: ParsedFont::from_bytes(REGULAR_TTF, 0, &mut Vec::new())
            .expect("bundled DejaVu Sans should parse"),
        bold: ParsedFont::from_bytes(BOLD_TTF, 0, &mut Vec::new())
            .expect("bundled DejaVu Sans Bold should parse"),
    })
}

impl Fonts {
    pub fn face(&self, weight: Weight) -> &ParsedFont {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// Width of `text` set at `size` points, as printpdf writes it (glyph advances, no
    /// kerning); characters the font lacks count as its `.notdef` glyph.
    pub fn width(&self, weight: Weight, size: f32, text: &str) -> f32 {
        let face = self.face(weight);
        let units_per_em = f32::from(face.pdf_font_metrics.units_per_em.max(1));
        let advance: u32 = text
            .chars()
            .map(|c| {
                let gid = face.lookup_glyph_index(u32::from(c)).unwrap_or(0);
                u32::from(face.get_horizontal_advance(gid))
            })
            .sum();
        advance as f32 * size / units_per_em
    }

    /// Breaks `text` into lines no wider than `max_width`: at spaces, and inside a word
    /// only when the word alone is too wide. A `\n` starts a new line.
    pub fn wrap(&self, weight: Weight, size: f32, text: &str, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if self.width(weight, size, &candidate) <= max_width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word alone: split it if it is still too wide.
                for c in word.chars() {
                    line.push(c);
                    if self.width(weight, size, &line) > max_width && line.chars().count() > 1 {
                        line.pop();
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    }
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
    fn bundled_fonts_cover_russian_kyrgyz_and_kazakh() {
        let f = fonts();
        for c in "АБВЯабвяЁёңөүәғқұһі№€₸0123456789«»–—".chars() {
            for w in [Weight::Regular, Weight::Bold] {
                assert!(
                    f.face(w).lookup_glyph_index(u32::from(c)).is_some(),
                    "{c} in {w:?}"
                );
            }
        }
    }

    #[test]
    fn wraps_at_spaces_within_width() {
        let f = fonts();
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
