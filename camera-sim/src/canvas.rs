//! A few drawing primitives on an RGB image: enough to paint a road scene.
//! Shapes are clipped to the image; coordinates are in pixels, floats allowed.

use image::{Rgb, RgbImage};

pub type Color = [u8; 3];

/// Blends `color` into the pixel at (x, y) with coverage `alpha` (0-1).
pub fn blend(img: &mut RgbImage, x: i64, y: i64, color: Color, alpha: f32) {
    if x < 0 || y < 0 || x >= i64::from(img.width()) || y >= i64::from(img.height()) {
        return;
    }
    let alpha = alpha.clamp(0.0, 1.0);
    let Rgb(px) = img.get_pixel_mut(x as u32, y as u32);
    for (channel, target) in px.iter_mut().zip(color) {
        let mixed = f32::from(*channel) * (1.0 - alpha) + f32::from(target) * alpha;
        *channel = mixed.round() as u8;
    }
}

fn row_range(img: &RgbImage, y0: f32, y1: f32) -> std::ops::Range<i64> {
    let top = y0.floor().max(0.0) as i64;
    let bottom = (y1.ceil() as i64).min(i64::from(img.height()));
    top..bottom.max(top)
}

fn fill_span(img: &mut RgbImage, y: i64, x0: f32, x1: f32, color: Color, alpha: f32) {
    let left = x0.round().max(0.0) as i64;
    let right = (x1.round() as i64).min(i64::from(img.width()));
    if alpha >= 1.0 && y >= 0 && y < i64::from(img.height()) && left < right {
        // opaque: write the row directly (most of a scene is opaque fills)
        let (left, right, y) = (left as u32, right as u32, y as u32);
        for x in left..right {
            img.put_pixel(x, y, image::Rgb(color));
        }
        return;
    }
    for x in left..right {
        blend(img, x, y, color, alpha);
    }
}

/// Fills every row from `y0` to `y1` with a vertical gradient from `top` to `bottom`.
pub fn vertical_gradient(img: &mut RgbImage, y0: f32, y1: f32, top: Color, bottom: Color) {
    let width = img.width() as f32;
    for y in row_range(img, y0, y1) {
        let t = ((y as f32 - y0) / (y1 - y0).max(1.0)).clamp(0.0, 1.0);
        fill_span(img, y, 0.0, width, lerp_color(top, bottom, t), 1.0);
    }
}

pub fn lerp_color(a: Color, b: Color, t: f32) -> Color {
    let mix = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * t).round() as u8;
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

/// Scales a colour's brightness (1.0 keeps it).
pub fn shade(color: Color, factor: f32) -> Color {
    color.map(|c| (f32::from(c) * factor).clamp(0.0, 255.0) as u8)
}

pub fn fill_rect(img: &mut RgbImage, x: f32, y: f32, w: f32, h: f32, color: Color) {
    for row in row_range(img, y, y + h) {
        fill_span(img, row, x, x + w, color, 1.0);
    }
}

/// A rectangle with rounded corners of radius `r`, blended with `alpha`.
pub fn fill_rounded_rect(
    img: &mut RgbImage,
    (x, y, w, h): (f32, f32, f32, f32),
    r: f32,
    color: Color,
    alpha: f32,
) {
    let r = r.min(w / 2.0).min(h / 2.0).max(0.0);
    for row in row_range(img, y, y + h) {
        let cy = row as f32 + 0.5;
        // distance into the corner band, measured from the nearer horizontal edge
        let dy = if cy < y + r {
            y + r - cy
        } else if cy > y + h - r {
            cy - (y + h - r)
        } else {
            0.0
        };
        let inset = if dy > 0.0 {
            r - (r * r - dy * dy).max(0.0).sqrt()
        } else {
            0.0
        };
        fill_span(img, row, x + inset, x + w - inset, color, alpha);
    }
}

/// A convex polygon (points in order, either winding).
pub fn fill_convex(img: &mut RgbImage, points: &[(f32, f32)], color: Color, alpha: f32) {
    if points.len() < 3 {
        return;
    }
    let y_min = points.iter().map(|p| p.1).fold(f32::INFINITY, f32::min);
    let y_max = points.iter().map(|p| p.1).fold(f32::NEG_INFINITY, f32::max);
    for row in row_range(img, y_min, y_max) {
        let cy = row as f32 + 0.5;
        let mut left = f32::INFINITY;
        let mut right = f32::NEG_INFINITY;
        for (i, &(x0, y0)) in points.iter().enumerate() {
            let (x1, y1) = points[(i + 1) % points.len()];
            if (y0 <= cy && cy < y1) || (y1 <= cy && cy < y0) {
                let x = x0 + (cy - y0) / (y1 - y0) * (x1 - x0);
                left = left.min(x);
                right = right.max(x);
            }
        }
        if left < right {
            fill_span(img, row, left, right, color, alpha);
        }
    }
}

/// An axis-aligned ellipse centred at (cx, cy).
pub fn fill_ellipse(
    img: &mut RgbImage,
    (cx, cy): (f32, f32),
    (rx, ry): (f32, f32),
    color: Color,
    alpha: f32,
) {
    for row in row_range(img, cy - ry, cy + ry) {
        let dy = (row as f32 + 0.5 - cy) / ry;
        if dy.abs() <= 1.0 {
            let half = rx * (1.0 - dy * dy).sqrt();
            fill_span(img, row, cx - half, cx + half, color, alpha);
        }
    }
}

/// A small, fast generator for per-pixel sensor noise (xorshift64*); seeded from the
/// scene's RNG so the noise is deterministic too.
pub struct NoiseSource(u64);

impl NoiseSource {
    pub fn new(seed: u64) -> Self {
        NoiseSource(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Adds noise of up to ±`amplitude` to every channel of every pixel, luminance and
    /// a little chroma, as a small sensor in daylight produces.
    pub fn apply(&mut self, img: &mut RgbImage, amplitude: i16) {
        let span = (2 * amplitude + 1) as u64;
        for px in img.pixels_mut() {
            let bits = self.next();
            let luma = (bits % span) as i16 - amplitude;
            let chroma = ((bits >> 32) % 5) as i16 - 2;
            for (i, channel) in px.0.iter_mut().enumerate() {
                let delta = if i == 1 { luma } else { luma + chroma };
                *channel = (i16::from(*channel) + delta).clamp(0, 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_clipped_and_filled() {
        let mut img = RgbImage::new(20, 10);
        fill_rect(&mut img, -5.0, -5.0, 100.0, 100.0, [10, 20, 30]);
        assert!(img.pixels().all(|p| p.0 == [10, 20, 30]));
        fill_convex(
            &mut img,
            &[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)],
            [255; 3],
            1.0,
        );
        assert_eq!(img.get_pixel(5, 5).0, [255; 3]);
        assert_eq!(img.get_pixel(15, 5).0, [10, 20, 30]);
        fill_ellipse(&mut img, (15.0, 5.0), (3.0, 3.0), [0; 3], 0.5);
        assert_eq!(img.get_pixel(15, 5).0, [5, 10, 15]);
    }
}
