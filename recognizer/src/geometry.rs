//! Pixels and shapes: bilinear resizing into normalised NCHW tensors, warping a
//! rotated rectangle to an upright crop, convex hulls and minimum-area rectangles.
//!
//! Coordinates are continuous: pixel (i, j) covers [i, i+1) × [j, j+1).

use image::RgbImage;

use crate::model::{Channels, Normalise, ResizeFilter};

pub type Point = (f32, f32);

/// For each destination index along one axis: the two source indices and the weight
/// of the second, sampling at pixel centres as OpenCV's `INTER_LINEAR` does (the
/// preprocessing the PaddleOCR models were trained with).
fn linear_taps(src: u32, dst: u32) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    let last = src.saturating_sub(1) as usize;
    (0..dst)
        .map(|d| {
            let s = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (s as usize).min(last);
            (i0, (i0 + 1).min(last), (s - i0 as f32).clamp(0.0, 1.0))
        })
        .collect()
}

/// How one resized pixel becomes its tensor values, one per plane.
struct PixelValues {
    affine: [(usize, f32, f32); 3],
    grey: bool,
    planes: usize,
}

impl PixelValues {
    fn new(norm: &Normalise) -> Self {
        PixelValues {
            affine: norm.affine(),
            grey: norm.channels == Channels::Grey,
            planes: norm.channels.planes(),
        }
    }

    /// From RGB values 0–255; only the first `planes` entries are meant.
    #[inline]
    fn values(&self, rgb: [f32; 3]) -> [f32; 3] {
        if self.grey {
            let (_, mul, add) = self.affine[0];
            let luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            [luma * mul + add, 0.0, 0.0]
        } else {
            self.affine.map(|(ch, mul, add)| rgb[ch] * mul + add)
        }
    }
}

/// Resizes `img` to `width` × `height` with the filter `norm` names and writes it
/// normalised into `dst`, laid out as its channels' planes (three, or one for grey)
/// of `height` rows of `stride` values (`stride ≥ width`; what lies right of `width`
/// is left as it is).
pub fn resize_into_nchw(
    img: &RgbImage,
    size: (u32, u32),
    norm: &Normalise,
    dst: &mut [f32],
    stride: usize,
) {
    match norm.filter {
        ResizeFilter::Triangle if img.dimensions() != size => {
            triangle_into_nchw(img, size, norm, dst, stride)
        }
        // at the same size, sampling is an exact copy
        _ => sample_into_nchw(img, size, norm, dst, stride),
    }
}

/// Pillow's `BILINEAR` resampling: per destination index along one axis, the first
/// source index and the normalised weights of a triangle filter widened by the
/// downscaling factor.
fn triangle_taps(src: u32, dst: u32) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support is 1
    (0..dst)
        .map(|d| {
            let centre = (d as f64 + 0.5) * scale;
            let lo = ((centre - support + 0.5) as i64).max(0) as usize;
            let hi = ((centre + support + 0.5) as i64).min(src as i64) as usize;
            let mut weights: Vec<f32> = (lo..hi)
                .map(|i| (1.0 - ((i as f64 - centre + 0.5) / filter_scale).abs()).max(0.0) as f32)
                .collect();
            let sum: f32 = weights.iter().sum();
            if sum > 0.0 {
                weights.iter_mut().for_each(|w| *w /= sum);
            }
            (lo, weights)
        })
        .collect()
}

/// Separable triangle resampling, rows first, skipping an axis whose size stays.
fn triangle_into_nchw(
    img: &RgbImage,
    (width, height): (u32, u32),
    norm: &Normalise,
    dst: &mut [f32],
    stride: usize,
) {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    // horizontal pass into f32 rows of `width` pixels
    let w = width as usize;
    let mut rows = vec![0f32; sh * w * 3];
    if img.width() == width {
        rows.iter_mut().zip(src).for_each(|(r, &s)| *r = s as f32);
    } else {
        let taps = triangle_taps(img.width(), width);
        for y in 0..sh {
            let line = &src[y * sw * 3..(y + 1) * sw * 3];
            let out = &mut rows[y * w * 3..(y + 1) * w * 3];
            for (x, (lo, weights)) in taps.iter().enumerate() {
                let mut acc = [0f32; 3];
                for (k, &wt) in weights.iter().enumerate() {
                    let p = &line[(lo + k) * 3..(lo + k) * 3 + 3];
                    acc[0] += wt * p[0] as f32;
                    acc[1] += wt * p[1] as f32;
                    acc[2] += wt * p[2] as f32;
                }
                out[x * 3..x * 3 + 3].copy_from_slice(&acc);
            }
        }
    }
    // vertical pass, normalised into the planes
    let plane = stride * height as usize;
    let pixel = PixelValues::new(norm);
    let taps = if img.height() == height {
        (0..sh).map(|y| (y, vec![1.0])).collect()
    } else {
        triangle_taps(img.height(), height)
    };
    let mut acc = vec![0f32; w * 3];
    for (y, (lo, weights)) in taps.iter().enumerate() {
        acc.fill(0.0);
        for (k, &wt) in weights.iter().enumerate() {
            let row = &rows[(lo + k) * w * 3..(lo + k + 1) * w * 3];
            acc.iter_mut().zip(row).for_each(|(a, &r)| *a += wt * r);
        }
        for x in 0..w {
            let rgb = [0, 1, 2].map(|ch| acc[x * 3 + ch].clamp(0.0, 255.0));
            let values = pixel.values(rgb);
            for (c, v) in values.iter().take(pixel.planes).enumerate() {
                dst[c * plane + y * stride + x] = *v;
            }
        }
    }
}

/// Bilinear sampling (`INTER_LINEAR`) into normalised planes.
fn sample_into_nchw(
    img: &RgbImage,
    (width, height): (u32, u32),
    norm: &Normalise,
    dst: &mut [f32],
    stride: usize,
) {
    let plane = stride * height as usize;
    let pixel = PixelValues::new(norm);
    debug_assert!(dst.len() >= pixel.planes * plane && stride >= width as usize);
    let src = img.as_raw();
    let src_stride = img.width() as usize * 3;
    let xs = linear_taps(img.width(), width);
    for (y, &(y0, y1, wy)) in linear_taps(img.height(), height).iter().enumerate() {
        let (r0, r1) = (&src[y0 * src_stride..], &src[y1 * src_stride..]);
        for (x, &(x0, x1, wx)) in xs.iter().enumerate() {
            let px = |ch: usize| {
                let top = r0[x0 * 3 + ch] as f32 * (1.0 - wx) + r0[x1 * 3 + ch] as f32 * wx;
                let bottom = r1[x0 * 3 + ch] as f32 * (1.0 - wx) + r1[x1 * 3 + ch] as f32 * wx;
                top * (1.0 - wy) + bottom * wy
            };
            let values = pixel.values([px(0), px(1), px(2)]);
            for (c, v) in values.iter().take(pixel.planes).enumerate() {
                dst[c * plane + y * stride + x] = *v;
            }
        }
    }
}

/// Bilinear sample at a continuous position, clamped to the image (border replicate).
fn sample(img: &RgbImage, (x, y): Point) -> [u8; 3] {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let sx = (x - 0.5).clamp(0.0, w - 1.0);
    let sy = (y - 0.5).clamp(0.0, h - 1.0);
    let (x0, y0) = (sx as u32, sy as u32);
    let (x1, y1) = (
        (x0 + 1).min(img.width() - 1),
        (y0 + 1).min(img.height() - 1),
    );
    let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
    let (a, b) = (img.get_pixel(x0, y0).0, img.get_pixel(x1, y0).0);
    let (c, d) = (img.get_pixel(x0, y1).0, img.get_pixel(x1, y1).0);
    std::array::from_fn(|i| {
        let top = a[i] as f32 * (1.0 - fx) + b[i] as f32 * fx;
        let bottom = c[i] as f32 * (1.0 - fx) + d[i] as f32 * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    })
}

/// Warps the parallelogram `corners` (top-left, top-right, bottom-right, bottom-left)
/// to an upright image as wide as its top edge and as tall as its left edge; crops
/// at least 1.5 times taller than wide are turned a quarter left, as vertical text.
pub fn warp_crop(img: &RgbImage, corners: &[Point; 4]) -> RgbImage {
    let [tl, tr, _, bl] = *corners;
    let width = dist(tl, tr).round().max(1.0) as u32;
    let height = dist(tl, bl).round().max(1.0) as u32;
    let ex = ((tr.0 - tl.0) / width as f32, (tr.1 - tl.1) / width as f32);
    let ey = ((bl.0 - tl.0) / height as f32, (bl.1 - tl.1) / height as f32);
    let crop = RgbImage::from_fn(width, height, |u, v| {
        let (fu, fv) = (u as f32 + 0.5, v as f32 + 0.5);
        image::Rgb(sample(
            img,
            (tl.0 + ex.0 * fu + ey.0 * fv, tl.1 + ex.1 * fu + ey.1 * fv),
        ))
    });
    if height as f32 >= 1.5 * width as f32 {
        image::imageops::rotate270(&crop)
    } else {
        crop
    }
}

/// `img` inside a border `margin` pixels wide that repeats its edge pixels: a
/// text detector finds text that touches the image's edge poorly.
pub fn pad_edges(img: &RgbImage, margin: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w + 2 * margin, h + 2 * margin, |x, y| {
        let sx = x.saturating_sub(margin).min(w - 1);
        let sy = y.saturating_sub(margin).min(h - 1);
        *img.get_pixel(sx, sy)
    })
}

pub fn dist(a: Point, b: Point) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

fn cross(o: Point, a: Point, b: Point) -> f32 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Convex hull by Andrew's monotone chain, without collinear points.
pub fn convex_hull(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    fn half(points: impl Iterator<Item = Point>) -> Vec<Point> {
        let mut chain: Vec<Point> = Vec::new();
        for p in points {
            while chain.len() >= 2
                && cross(chain[chain.len() - 2], chain[chain.len() - 1], p) <= 0.0
            {
                chain.pop();
            }
            chain.push(p);
        }
        chain.pop();
        chain
    }
    let mut hull = half(points.iter().copied());
    hull.extend(half(points.iter().rev().copied()));
    hull
}

/// A rectangle of any rotation: `u` is the unit vector of its more horizontal axis,
/// pointing right; `width` runs along `u`, `height` across it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    pub centre: Point,
    pub u: Point,
    pub width: f32,
    pub height: f32,
}

impl RotatedRect {
    /// Top-left, top-right, bottom-right, bottom-left (y grows downwards).
    pub fn corners(&self) -> [Point; 4] {
        let (c, u) = (self.centre, self.u);
        let v = (-u.1, u.0); // u turned a quarter clockwise on screen: points down
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        let at = |a: f32, b: f32| (c.0 + u.0 * a + v.0 * b, c.1 + u.1 * a + v.1 * b);
        [at(-hw, -hh), at(hw, -hh), at(hw, hh), at(-hw, hh)]
    }

    /// Grown by `d` on every side.
    pub fn grown(&self, d: f32) -> Self {
        RotatedRect {
            width: self.width + 2.0 * d,
            height: self.height + 2.0 * d,
            ..*self
        }
    }
}

/// The minimum-area rectangle around a convex hull (rotating calipers: one side of
/// the best rectangle lies on a hull edge).
pub fn min_area_rect(hull: &[Point]) -> Option<RotatedRect> {
    let n = hull.len();
    if n < 3 {
        return None;
    }
    let mut best: Option<(f32, RotatedRect)> = None;
    for i in 0..n {
        let (a, b) = (hull[i], hull[(i + 1) % n]);
        let len = dist(a, b);
        if len == 0.0 {
            continue;
        }
        let e = ((b.0 - a.0) / len, (b.1 - a.1) / len);
        let (mut lo, mut hi) = ((f32::MAX, f32::MAX), (f32::MIN, f32::MIN));
        for &p in hull {
            let (s, t) = (p.0 * e.0 + p.1 * e.1, -p.0 * e.1 + p.1 * e.0);
            lo = (lo.0.min(s), lo.1.min(t));
            hi = (hi.0.max(s), hi.1.max(t));
        }
        let (w, h) = (hi.0 - lo.0, hi.1 - lo.1);
        if best.as_ref().is_some_and(|(area, _)| *area <= w * h) {
            continue;
        }
        let (ms, mt) = ((lo.0 + hi.0) / 2.0, (lo.1 + hi.1) / 2.0);
        let centre = (ms * e.0 - mt * e.1, ms * e.1 + mt * e.0);
        best = Some((w * h, upright(centre, e, w, h)));
    }
    best.map(|(_, r)| r)
}

/// Chooses which axis of a rectangle is `u`: the more horizontal one, pointing right.
fn upright(centre: Point, e: Point, w: f32, h: f32) -> RotatedRect {
    let (mut u, mut width, mut height) = (e, w, h);
    if u.1.abs() > u.0.abs() {
        u = (-u.1, u.0);
        std::mem::swap(&mut width, &mut height);
    }
    if u.0 < 0.0 {
        u = (-u.0, -u.1);
    }
    RotatedRect {
        centre,
        u,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Channels;

    fn close(a: Point, b: Point) -> bool {
        (a.0 - b.0).abs() < 1e-3 && (a.1 - b.1).abs() < 1e-3
    }

    #[test]
    fn hull_and_rect_of_an_axis_aligned_block() {
        let mut pts = Vec::new();
        for y in 0..=4 {
            for x in 0..=10 {
                pts.push((x as f32 + 2.0, y as f32 + 3.0));
            }
        }
        let hull = convex_hull(pts);
        assert_eq!(hull.len(), 4);
        let r = min_area_rect(&hull).expect("rect");
        assert!(close(r.centre, (7.0, 5.0)), "{r:?}");
        assert!(
            (r.width - 10.0).abs() < 1e-3 && (r.height - 4.0).abs() < 1e-3,
            "{r:?}"
        );
        let c = r.corners();
        assert!(close(c[0], (2.0, 3.0)) && close(c[2], (12.0, 7.0)), "{c:?}");
    }

    #[test]
    fn rect_of_a_rotated_block() {
        // a 20 × 4 rectangle turned 30° clockwise on screen
        let (s, c) = (30f32.to_radians().sin(), 30f32.to_radians().cos());
        let pts: Vec<Point> = [
            (-10.0, -2.0),
            (10.0, -2.0),
            (10.0, 2.0),
            (-10.0, 2.0),
            (0.0, 0.0),
        ]
        .iter()
        .map(|&(x, y)| (50.0 + x * c - y * s, 40.0 + x * s + y * c))
        .collect();
        let r = min_area_rect(&convex_hull(pts)).expect("rect");
        assert!(
            (r.width - 20.0).abs() < 1e-3 && (r.height - 4.0).abs() < 1e-3,
            "{r:?}"
        );
        assert!(close(r.u, (c, s)), "{r:?}");
        let corners = r.corners();
        assert!(
            close(
                corners[0],
                (50.0 - 10.0 * c + 2.0 * s, 40.0 - 10.0 * s - 2.0 * c)
            ),
            "{corners:?}"
        );
    }

    #[test]
    fn warp_of_an_axis_aligned_box_is_a_plain_crop() {
        let img = RgbImage::from_fn(20, 10, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let crop = warp_crop(&img, &[(4.0, 2.0), (12.0, 2.0), (12.0, 5.0), (4.0, 5.0)]);
        assert_eq!(crop.dimensions(), (8, 3));
        assert_eq!(crop.get_pixel(0, 0).0, [40, 40, 7]);
        assert_eq!(crop.get_pixel(7, 2).0, [110, 80, 7]);
        // taller than wide: turned to read left to right
        let tall = warp_crop(&img, &[(4.0, 0.0), (6.0, 0.0), (6.0, 8.0), (4.0, 8.0)]);
        assert_eq!(tall.dimensions(), (8, 2));
    }

    #[test]
    fn resize_normalises_into_planes() {
        let img = RgbImage::from_pixel(4, 4, image::Rgb([255, 0, 51]));
        let norm = Normalise {
            filter: ResizeFilter::Linear,
            mean: [0.5; 3],
            std: [0.5; 3],
            scale: 255.0,
            channels: Channels::Bgr,
        };
        let mut dst = vec![9.0; 3 * 2 * 3];
        resize_into_nchw(&img, (2, 2), &norm, &mut dst, 3);
        // blue plane first: 51/255 → (0.2 - 0.5) / 0.5 = -0.6; padding column untouched
        assert!((dst[0] + 0.6).abs() < 1e-5 && dst[2] == 9.0);
        assert!((dst[6] + 1.0).abs() < 1e-5 && (dst[12] - 1.0).abs() < 1e-5);
        let triangle = Normalise {
            filter: ResizeFilter::Triangle,
            ..norm
        };
        let mut dst2 = vec![9.0; 3 * 2 * 3];
        resize_into_nchw(&img, (2, 2), &triangle, &mut dst2, 3);
        assert_eq!(
            dst, dst2,
            "a flat image looks the same through either filter"
        );
        // grey: one plane of luma, 0.299 × 255 + 0.114 × 51 = 82.059
        for filter in [ResizeFilter::Linear, ResizeFilter::Triangle] {
            let grey = Normalise {
                filter,
                channels: Channels::Grey,
                ..norm
            };
            let mut dst = vec![9.0; 2 * 3 + 1];
            resize_into_nchw(&img, (2, 2), &grey, &mut dst, 3);
            let want = (82.059 / 255.0 - 0.5) / 0.5;
            for i in [0, 1, 3, 4] {
                assert!((dst[i] - want).abs() < 1e-5, "{filter:?}: {dst:?}");
            }
            assert_eq!((dst[2], dst[6]), (9.0, 9.0), "one plane, padding untouched");
        }
    }

    #[test]
    fn triangle_matches_the_image_crate() {
        let img = RgbImage::from_fn(97, 41, |x, y| {
            image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, ((x ^ y) * 4) as u8])
        });
        let norm = Normalise {
            filter: ResizeFilter::Triangle,
            mean: [0.0; 3],
            std: [1.0; 3],
            scale: 1.0,
            channels: Channels::Rgb,
        };
        for (w, h) in [(40, 17), (97, 48), (200, 41), (31, 90)] {
            let reference =
                image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
            let mut dst = vec![0.0; 3 * (w * h) as usize];
            resize_into_nchw(&img, (w, h), &norm, &mut dst, w as usize);
            let plane = (w * h) as usize;
            let worst = reference
                .enumerate_pixels()
                .flat_map(|(x, y, p)| (0..3).map(move |c| (x, y, c, p.0[c])))
                .map(|(x, y, c, v)| (dst[c * plane + (y * w + x) as usize] - v as f32).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1.0, "{w}x{h}: off by {worst}");
        }
    }

    #[test]
    fn padding_repeats_the_edges() {
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let padded = pad_edges(&img, 2);
        assert_eq!(padded.dimensions(), (7, 6));
        assert_eq!(padded.get_pixel(0, 0), img.get_pixel(0, 0));
        assert_eq!(padded.get_pixel(6, 5), img.get_pixel(2, 1));
        assert_eq!(padded.get_pixel(3, 3), img.get_pixel(1, 1));
        assert_eq!(padded.get_pixel(4, 0), img.get_pixel(2, 0));
    }
}
