//! Paints a 2016-standard Kyrgyz plate (520 × 110 mm, black on white, black border):
//! region code over a small flag and "KG" on the left, then the digits and letters.
//! Dimensions below are in millimetres of the real plate, scaled to pixels.

use ab_glyph::PxScale;
use image::RgbImage;

use crate::canvas::{fill_ellipse, fill_rect, fill_rounded_rect, Color};
use crate::font::{draw_text, draw_text_centered, ink_bounds};
use crate::KgPlate;

pub const PLATE_MM: (f32, f32) = (520.0, 110.0);
/// Cap height of DejaVu Sans Bold, as a fraction of the em size.
const CAP_HEIGHT_EM: f32 = 0.729;
const INK: Color = [18, 18, 20];
const FLAG_RED: Color = [230, 22, 40];
const SUN_YELLOW: Color = [255, 210, 0];

/// Draws `plate` with its top-left corner at (x, y), `width` pixels wide; `paper`
/// is the plate's white (slightly dimmed or warmed by light and dirt).
pub fn draw_plate(
    img: &mut RgbImage,
    plate: &KgPlate,
    (x, y): (f32, f32),
    width: f32,
    paper: Color,
) {
    let s = width / PLATE_MM.0;
    let mm = |v: f32| v * s;
    let height = mm(PLATE_MM.1);

    fill_rounded_rect(img, (x, y, width, height), mm(6.0), INK, 1.0);
    fill_rounded_rect(
        img,
        (x + mm(3.5), y + mm(3.5), width - mm(7.0), height - mm(7.0)),
        mm(4.0),
        paper,
        1.0,
    );
    // separator between the region field and the number
    fill_rect(
        img,
        x + mm(104.0),
        y + mm(9.0),
        mm(2.2).max(1.0),
        mm(92.0),
        INK,
    );

    let cap = |h_mm: f32, condense: f32| {
        let em = mm(h_mm) / CAP_HEIGHT_EM;
        PxScale {
            x: em * condense,
            y: em,
        }
    };
    draw_text_centered(
        img,
        plate.region().code(),
        cap(36.0, 0.95),
        (x + mm(54.0), y + mm(33.0)),
        INK,
    );

    // flag: red field with a yellow sun, beside the country code
    let (fx, fy, fw, fh) = (x + mm(13.0), y + mm(63.0), mm(36.0), mm(22.0));
    fill_rect(img, fx, fy, fw, fh, FLAG_RED);
    fill_ellipse(
        img,
        (fx + fw / 2.0, fy + fh / 2.0),
        (mm(6.0), mm(6.0)),
        SUN_YELLOW,
        1.0,
    );
    fill_ellipse(
        img,
        (fx + fw / 2.0, fy + fh / 2.0),
        (mm(3.2), mm(3.2)),
        FLAG_RED,
        0.6,
    );
    draw_text_centered(img, "KG", cap(17.0, 1.0), (x + mm(76.0), y + mm(74.0)), INK);

    // main field: "123 ABC" in fixed cells, as plate dies stamp them, so glyphs
    // never touch: 55 mm per character, 25 mm between the digits and the letters
    let scale = cap(62.0, 0.95);
    let baseline = y + mm(86.0);
    let text: Vec<char> = plate
        .digits()
        .chars()
        .chain(plate.letters().chars())
        .collect();
    for (i, ch) in text.into_iter().enumerate() {
        let gap = if i >= 3 { 25.0 } else { 0.0 };
        let centre = x + mm(133.5 + 27.5 + 55.0 * i as f32 + gap);
        let mut glyph_scale = scale;
        let (l, _, r, _) = ink_bounds(&ch.to_string(), glyph_scale);
        let room = mm(50.0);
        if r - l > room {
            glyph_scale.x *= room / (r - l);
        }
        let (l, _, r, _) = ink_bounds(&ch.to_string(), glyph_scale);
        draw_text(
            img,
            &ch.to_string(),
            glyph_scale,
            (centre - (l + r) / 2.0, baseline),
            INK,
        );
    }
}
