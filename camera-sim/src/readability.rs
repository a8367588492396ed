//! A check that rendered plates can be read back: a small template-matching reader
//! (segment glyphs by dark columns, compare each with the font's glyphs) run on the
//! decoded overview JPEG, where the plate is smallest.

use ab_glyph::PxScale;
use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, RgbImage};

use crate::font::draw_text;
use crate::{PixelBox, PLATE_LETTERS};

/// Columns of dark runs in a region: (x0, x1) half-open, in region coordinates.
fn glyph_columns(region: &GrayImage, dark: u8) -> Vec<(u32, u32)> {
    let mut runs = Vec::new();
    let mut start = None;
    for x in 0..=region.width() {
        let inked =
            x < region.width() && (0..region.height()).any(|y| region.get_pixel(x, y).0[0] < dark);
        match (inked, start) {
            (true, None) => start = Some(x),
            (false, Some(s)) => {
                runs.push((s, x));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// Crops a glyph's ink box (rows that hold dark pixels within its columns).
fn glyph(region: &GrayImage, (x0, x1): (u32, u32), dark: u8) -> GrayImage {
    let rows: Vec<u32> = (0..region.height())
        .filter(|&y| (x0..x1).any(|x| region.get_pixel(x, y).0[0] < dark))
        .collect();
    let (top, bottom) = (rows[0], rows[rows.len() - 1] + 1);
    imageops::crop_imm(region, x0, top, x1 - x0, bottom - top).to_image()
}

fn template(ch: char, size: (u32, u32)) -> GrayImage {
    let mut canvas = RgbImage::from_pixel(120, 120, image::Rgb([255; 3]));
    draw_text(
        &mut canvas,
        &ch.to_string(),
        PxScale::from(90.0),
        (10.0, 100.0),
        [0; 3],
    );
    let gray = imageops::grayscale(&canvas);
    let all = GrayImage::from_fn(1, 1, |_, _| Luma([0]));
    let cols = glyph_columns(&gray, 128);
    let (Some(first), Some(last)) = (cols.first(), cols.last()) else {
        return all;
    };
    let ink = glyph(&gray, (first.0, last.1), 128);
    imageops::resize(&ink, size.0, size.1, FilterType::Triangle)
}

/// Sum of squared differences after stretching both to the full range.
fn distance(a: &GrayImage, b: &GrayImage) -> f64 {
    let stretch = |img: &GrayImage| {
        let lo = img.pixels().map(|p| p.0[0]).min().unwrap_or(0) as f64;
        let hi = img.pixels().map(|p| p.0[0]).max().unwrap_or(255) as f64;
        img.pixels()
            .map(|p| (p.0[0] as f64 - lo) / (hi - lo).max(1.0))
            .collect::<Vec<_>>()
    };
    stretch(a)
        .iter()
        .zip(stretch(b))
        .map(|(x, y)| (x - y) * (x - y))
        .sum()
}

fn read_field(region: &GrayImage, alphabets: &[&[u8]]) -> Option<String> {
    let dark = 110;
    let columns: Vec<_> = glyph_columns(region, dark)
        .into_iter()
        .filter(|(a, b)| b - a >= 2)
        .collect();
    if columns.len() != alphabets.len() {
        return None;
    }
    let mut text = String::new();
    for (cols, alphabet) in columns.into_iter().zip(alphabets) {
        let seen = glyph(region, cols, dark);
        let best = alphabet
            .iter()
            .map(|&c| {
                (
                    c as char,
                    distance(&seen, &template(c as char, seen.dimensions())),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        text.push(best.0);
    }
    Some(text)
}

/// Reads the canonical plate text (`01123ABC`) from the plate at `plate` in `img`.
pub fn read_plate(img: &RgbImage, plate: PixelBox) -> Option<String> {
    let gray = imageops::grayscale(img);
    let (w, h) = (plate.width as f32, plate.height as f32);
    let part = |x0: f32, x1: f32, y0: f32, y1: f32| {
        let (x, y) = (plate.x + (w * x0) as u32, plate.y + (h * y0) as u32);
        imageops::crop_imm(&gray, x, y, (w * (x1 - x0)) as u32, (h * (y1 - y0)) as u32).to_image()
    };
    const DIGITS: &[u8] = b"0123456789";
    // mm of the 520 × 110 plate: region code 13-95 × 9-52, number field 112-510 × 10-100
    let region = read_field(&part(0.03, 0.19, 0.09, 0.50), &[DIGITS, DIGITS])?;
    let number = read_field(
        &part(0.215, 0.98, 0.1, 0.9),
        &[
            DIGITS,
            DIGITS,
            DIGITS,
            PLATE_LETTERS,
            PLATE_LETTERS,
            PLATE_LETTERS,
        ],
    )?;
    Some(region + &number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{render_frames, FrameSpec};

    #[test]
    fn plates_read_back_from_the_overview_jpeg() {
        let mut misread = Vec::new();
        for seed in 200..224 {
            let spec = FrameSpec::random(
                seed,
                "sim-read-01",
                "улица Киевская, Бишкек",
                chrono::Utc::now(),
            );
            let frames = render_frames(&spec).expect("render");
            let img = image::load_from_memory(&frames.overview)
                .expect("decode")
                .into_rgb8();
            let read = read_plate(&img, frames.plate_box);
            if read.as_deref() != Some(spec.plate.canonical().as_str()) {
                misread.push(format!("{} read as {read:?}", spec.plate.canonical()));
            }
        }
        assert!(misread.is_empty(), "{misread:?}");
    }
}
