//! The bundled font (DejaVu Sans Bold, Bitstream Vera licence, see
//! `assets/DejaVuSans-Bold.LICENSE`) and text drawing with anti-aliased glyphs.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::RgbImage;

use crate::canvas::{blend, Color};

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

pub fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).expect("bundled font should parse"))
}

/// The ink extent of `text` laid out from x = 0 on baseline y = 0:
/// (left, top, right, bottom) in pixels.
pub fn ink_bounds(text: &str, scale: PxScale) -> (f32, f32, f32, f32) {
    let mut bounds = (
        f32::INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
    );
    layout(text, scale, (0.0, 0.0), |glyph| {
        if let Some(outline) = font().outline_glyph(glyph) {
            let b = outline.px_bounds();
            bounds = (
                bounds.0.min(b.min.x),
                bounds.1.min(b.min.y),
                bounds.2.max(b.max.x),
                bounds.3.max(b.max.y),
            );
        }
    });
    if bounds.0 > bounds.2 {
        (0.0, 0.0, 0.0, 0.0)
    } else {
        bounds
    }
}

/// Draws `text` with its baseline starting at `origin`.
pub fn draw_text(img: &mut RgbImage, text: &str, scale: PxScale, origin: (f32, f32), color: Color) {
    layout(text, scale, origin, |glyph| {
        if let Some(outline) = font().outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let x = b.min.x as i64 + i64::from(gx);
                let y = b.min.y as i64 + i64::from(gy);
                blend(img, x, y, color, coverage);
            });
        }
    });
}

/// Draws `text` so that its ink is centred on `center`.
pub fn draw_text_centered(
    img: &mut RgbImage,
    text: &str,
    scale: PxScale,
    center: (f32, f32),
    color: Color,
) {
    let (l, t, r, b) = ink_bounds(text, scale);
    let origin = (center.0 - (l + r) / 2.0, center.1 - (t + b) / 2.0);
    draw_text(img, text, scale, origin, color);
}

fn layout(text: &str, scale: PxScale, origin: (f32, f32), mut each: impl FnMut(ab_glyph::Glyph)) {
    let scaled = font().as_scaled(scale);
    let mut x = origin.0;
    let mut previous = None;
    for ch in text.chars() {
        let id = scaled.glyph_id(ch);
        if let Some(prev) = previous {
            x += scaled.kern(prev, id);
        }
        each(id.with_scale_and_position(scale, ab_glyph::point(x, origin.1)));
        x += scaled.h_advance(id);
        previous = Some(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_leaves_ink_where_measured() {
        let mut img = RgbImage::from_pixel(200, 60, image::Rgb([255; 3]));
        let scale = PxScale::from(40.0);
        draw_text_centered(&mut img, "01 KG", scale, (100.0, 30.0), [0; 3]);
        let dark = img.pixels().filter(|p| p.0[0] < 100).count();
        assert!(dark > 300, "only {dark} dark pixels");
        let (l, t, r, b) = ink_bounds("01 KG", scale);
        assert!(r - l > 60.0 && b - t > 20.0, "{l} {t} {r} {b}");
    }
}
