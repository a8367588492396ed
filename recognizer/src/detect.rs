//! Text detection: the frame is resized and normalised into the detector's input,
//! and its output becomes boxes in the frame's own pixels.
//!
//! `db` (PaddleOCR's differentiable binarisation): the text probability map is
//! thresholded, each 8-connected component becomes its minimum-area rotated
//! rectangle, scored by the mean probability inside it, and grown ("unclipped") by
//! area × ratio / perimeter, as PaddleOCR's post-processing does.
//! `boxes`: letterboxed input, `[1,K,5]` boxes, non-maximum suppression.

use image::RgbImage;

use crate::geometry::{convex_hull, min_area_rect, resize_into_nchw, Point, RotatedRect};
use crate::model::{DetectorFormat, DetectorSpec};
use crate::runtime::Model;
use crate::RecognizerError;

/// At most this many components of the probability map become boxes.
const MAX_CANDIDATES: usize = 1000;
/// Boxes narrower than this (map pixels, before growing) are noise, by default.
const MIN_SIDE: f32 = 3.0;
/// Grey that pads a letterboxed input, as YOLO-style detectors are trained with.
const LETTERBOX_GREY: f32 = 114.0;

/// A text box in the frame's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBox {
    /// Top-left, top-right, bottom-right, bottom-left along the text line.
    pub corners: [Point; 4],
    pub score: f32,
}

pub(crate) struct Detector {
    pub(crate) model: Model,
    pub(crate) spec: DetectorSpec,
}

impl Detector {
    pub(crate) fn detect(&self, img: &RgbImage) -> Result<Vec<TextBox>, RecognizerError> {
        self.detect_scaled(img, self.spec.max_side, self.spec.min_side.unwrap_or(0))
    }

    /// As [`Detector::detect`], with the `db` input's sides bounded by these rather
    /// than the manifest's (a `boxes` detector always letterboxes to its square).
    pub(crate) fn detect_scaled(
        &self,
        img: &RgbImage,
        max_side: u32,
        min_side: u32,
    ) -> Result<Vec<TextBox>, RecognizerError> {
        let mut boxes = match self.spec.format {
            DetectorFormat::Db => self.detect_db(img, max_side, min_side)?,
            DetectorFormat::Boxes => self.detect_boxes(img)?,
        };
        boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(boxes)
    }

    fn detect_db(
        &self,
        img: &RgbImage,
        max_side: u32,
        min_side: u32,
    ) -> Result<Vec<TextBox>, RecognizerError> {
        let (w, h) = db_input_size(
            img.dimensions(),
            max_side,
            Some(min_side).filter(|&m| m > 0),
        );
        let mut input = vec![0.0; 3 * (w * h) as usize];
        resize_into_nchw(img, (w, h), &self.spec.normalise(), &mut input, w as usize);
        let params = DbParams {
            bin_threshold: self.spec.bin_threshold.unwrap_or(0.3),
            box_threshold: self.spec.box_threshold,
            unclip_ratio: self.spec.unclip_ratio.unwrap_or(1.5),
            dilation: self.spec.dilation,
            min_side: self.spec.min_box_side.unwrap_or(MIN_SIDE),
        };
        let rects =
            self.model
                .run([1, 3, h as usize, w as usize], &input, |shape, probs| {
                    match *shape {
                        [1, 1, mh, mw] if mh as u32 == h && mw as u32 == w => {}
                        _ => {
                            return Err(self
                                .mismatch(format!("expected a [1,1,{h},{w}] map, got {shape:?}")))
                        }
                    }
                    Ok(db_rects(probs, (w as usize, h as usize), &params))
                })?;
        let (sx, sy) = (
            img.width() as f32 / w as f32,
            img.height() as f32 / h as f32,
        );
        let (fw, fh) = (img.width() as f32, img.height() as f32);
        Ok(rects
            .into_iter()
            .map(|(rect, score)| TextBox {
                corners: rect
                    .corners()
                    .map(|(x, y)| ((x * sx).clamp(0.0, fw), (y * sy).clamp(0.0, fh))),
                score,
            })
            .filter(|b| {
                crate::geometry::dist(b.corners[0], b.corners[1]) > 3.0
                    && crate::geometry::dist(b.corners[0], b.corners[3]) > 3.0
            })
            .collect())
    }

    fn detect_boxes(&self, img: &RgbImage) -> Result<Vec<TextBox>, RecognizerError> {
        let side = round_to_32(self.spec.max_side as f32);
        let scale = side as f32 / img.width().max(img.height()) as f32;
        let (w, h) = (
            ((img.width() as f32 * scale).round() as u32).clamp(1, side),
            ((img.height() as f32 * scale).round() as u32).clamp(1, side),
        );
        let plane = (side * side) as usize;
        let mut input = vec![0.0; 3 * plane];
        for (c, &(_, mul, add)) in self.spec.normalise().affine().iter().enumerate() {
            input[c * plane..(c + 1) * plane].fill(LETTERBOX_GREY * mul + add);
        }
        resize_into_nchw(
            img,
            (w, h),
            &self.spec.normalise(),
            &mut input,
            side as usize,
        );
        let side = side as usize;
        let raw = self
            .model
            .run([1, 3, side, side], &input, |shape, values| match *shape {
                [1, _, 5] | [_, 5] => Ok(values.to_vec()),
                _ => Err(self.mismatch(format!("expected [1,K,5] boxes, got {shape:?}"))),
            })?;
        let (fw, fh) = (img.width() as f32, img.height() as f32);
        let candidates = raw
            .chunks_exact(5)
            .filter(|b| b[4] >= self.spec.box_threshold)
            .map(|b| {
                let c = |v: f32, max: f32| (v / scale).clamp(0.0, max);
                ([c(b[0], fw), c(b[1], fh), c(b[2], fw), c(b[3], fh)], b[4])
            })
            .filter(|(b, _)| b[2] - b[0] > 3.0 && b[3] - b[1] > 3.0)
            .collect();
        Ok(nms(candidates, self.spec.nms_iou.unwrap_or(0.45))
            .into_iter()
            .map(|([x1, y1, x2, y2], score)| TextBox {
                corners: [(x1, y1), (x2, y1), (x2, y2), (x1, y2)],
                score,
            })
            .collect())
    }

    fn mismatch(&self, reason: String) -> RecognizerError {
        RecognizerError::ModelMismatch {
            model: self.model.name.clone(),
            reason,
        }
    }
}

/// The nearest multiple of 32 (ties to even, as Python's `round`), at least 32.
fn round_to_32(v: f32) -> u32 {
    ((v as f64 / 32.0).round_ties_even() as u32).max(1) * 32
}

/// The db input: a longer side above `max_side` scaled down to it, then a shorter
/// side below `min_side` scaled up to it (each step truncating to whole pixels),
/// then both sides rounded to multiples of 32.
pub(crate) fn db_input_size(
    (w, h): (u32, u32),
    max_side: u32,
    min_side: Option<u32>,
) -> (u32, u32) {
    let (mut w, mut h) = (w as f64, h as f64);
    if w.max(h) > max_side as f64 {
        let r = max_side as f64 / w.max(h);
        (w, h) = ((w * r).trunc(), (h * r).trunc());
    }
    if let Some(min_side) = min_side.filter(|&m| w.min(h) < m as f64) {
        let r = min_side as f64 / w.min(h);
        (w, h) = ((w * r).trunc(), (h * r).trunc());
    }
    (round_to_32(w as f32), round_to_32(h as f32))
}

pub(crate) struct DbParams {
    pub bin_threshold: f32,
    pub box_threshold: f32,
    pub unclip_ratio: f32,
    pub dilation: bool,
    pub min_side: f32,
}

/// Boxes in map pixels from a `w` × `h` probability map, with their scores.
pub(crate) fn db_rects(
    probs: &[f32],
    (w, h): (usize, usize),
    p: &DbParams,
) -> Vec<(RotatedRect, f32)> {
    let mut text: Vec<bool> = probs.iter().map(|&v| v > p.bin_threshold).collect();
    if p.dilation {
        // OpenCV's 2×2 dilation: a pixel is set when it or its left, upper or
        // upper-left neighbour is (bottom-up, so every test sees the original map)
        for y in (0..h).rev() {
            for x in (0..w).rev() {
                let i = y * w + x;
                text[i] = text[i]
                    || (x > 0 && text[i - 1])
                    || (y > 0 && text[i - w])
                    || (x > 0 && y > 0 && text[i - w - 1]);
            }
        }
    }
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut pixels: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for start in 0..w * h {
        if seen[start] || !text[start] {
            continue;
        }
        // flood fill one 8-connected component
        pixels.clear();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            pixels.push(i);
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if !seen[j] && text[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if pixels.len() < 4 {
            continue;
        }
        let Some(rect) = min_area_rect(&convex_hull(row_extremes(&pixels, w))) else {
            continue;
        };
        if rect.width.min(rect.height) < p.min_side {
            continue;
        }
        let score = mean_inside(probs, (w, h), &rect);
        if score < p.box_threshold {
            continue;
        }
        let (rw, rh) = (rect.width, rect.height);
        let grown = rect.grown(rw * rh * p.unclip_ratio / (2.0 * (rw + rh)));
        if grown.width.min(grown.height) < p.min_side + 2.0 {
            continue;
        }
        out.push((grown, score));
        if out.len() == MAX_CANDIDATES {
            break;
        }
    }
    out
}

/// The outer corners of each row's leftmost and rightmost pixel: all a convex hull
/// of the component needs.
fn row_extremes(pixels: &[usize], w: usize) -> Vec<Point> {
    let y0 = pixels.iter().map(|i| i / w).min().unwrap_or(0);
    let y1 = pixels.iter().map(|i| i / w).max().unwrap_or(0);
    let mut rows = vec![(usize::MAX, 0usize); y1 - y0 + 1];
    for &i in pixels {
        let (x, y) = (i % w, i / w);
        let r = &mut rows[y - y0];
        *r = (r.0.min(x), r.1.max(x));
    }
    let mut points = Vec::with_capacity(rows.len() * 4);
    for (dy, &(lo, hi)) in rows.iter().enumerate() {
        if lo == usize::MAX {
            continue;
        }
        let (y, lo, hi) = ((y0 + dy) as f32, lo as f32, hi as f32 + 1.0);
        points.extend([(lo, y), (hi, y), (lo, y + 1.0), (hi, y + 1.0)]);
    }
    points
}

/// Mean probability of the map pixels whose centres lie inside `rect`.
fn mean_inside(probs: &[f32], (w, h): (usize, usize), rect: &RotatedRect) -> f32 {
    let corners = rect.corners();
    let lo = |f: fn(&Point) -> f32, max: usize| {
        (corners
            .iter()
            .map(f)
            .fold(f32::MAX, f32::min)
            .floor()
            .max(0.0) as usize)
            .min(max - 1)
    };
    let hi = |f: fn(&Point) -> f32, max: usize| {
        (corners
            .iter()
            .map(f)
            .fold(f32::MIN, f32::max)
            .ceil()
            .max(0.0) as usize)
            .min(max - 1)
    };
    let (x0, x1, y0, y1) = (
        lo(|p| p.0, w),
        hi(|p| p.0, w),
        lo(|p| p.1, h),
        hi(|p| p.1, h),
    );
    let (u, c) = (rect.u, rect.centre);
    let (hw, hh) = (rect.width / 2.0, rect.height / 2.0);
    let (mut sum, mut n) = (0.0f32, 0u32);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
            let (s, t) = (dx * u.0 + dy * u.1, -dx * u.1 + dy * u.0);
            if s.abs() <= hw && t.abs() <= hh {
                sum += probs[y * w + x];
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f32
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter).max(f32::EPSILON)
}

/// Greedy non-maximum suppression: the strongest box wins, those overlapping it by
/// more than `max_iou` go.
pub(crate) fn nms(mut boxes: Vec<([f32; 4], f32)>, max_iou: f32) -> Vec<([f32; 4], f32)> {
    boxes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept: Vec<([f32; 4], f32)> = Vec::new();
    for b in boxes {
        if kept.iter().all(|k| iou(&k.0, &b.0) <= max_iou) {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DbParams {
        DbParams {
            bin_threshold: 0.3,
            box_threshold: 0.6,
            unclip_ratio: 1.5,
            dilation: false,
            min_side: 3.0,
        }
    }

    #[test]
    fn two_blobs_become_two_boxes() {
        let (w, h) = (64, 32);
        let mut map = vec![0.05f32; w * h];
        let mut blob = |x0: usize, y0: usize, bw: usize, bh: usize, p: f32| {
            for y in y0..y0 + bh {
                for x in x0..x0 + bw {
                    map[y * w + x] = p;
                }
            }
        };
        blob(4, 4, 20, 6, 0.9); // 20 × 6 at (4, 4)
        blob(30, 20, 30, 8, 0.8); // 30 × 8 at (30, 20)
        blob(50, 2, 5, 5, 0.4); // above the binary threshold, below the box threshold
        blob(2, 28, 2, 2, 0.9); // too small
        let mut rects = db_rects(&map, (w, h), &params());
        rects.sort_by(|a, b| a.0.centre.0.total_cmp(&b.0.centre.0));
        assert_eq!(rects.len(), 2, "{rects:?}");
        for ((rect, score), (cx, cy, bw, bh, p)) in rects
            .iter()
            .zip([(14.0, 7.0, 20.0, 6.0, 0.9), (45.0, 24.0, 30.0, 8.0, 0.8)])
        {
            let d = bw * bh * 1.5 / (2.0 * (bw + bh));
            assert!(
                (rect.centre.0 - cx).abs() < 1e-3 && (rect.centre.1 - cy).abs() < 1e-3,
                "{rect:?}"
            );
            assert!((rect.width - (bw + 2.0 * d)).abs() < 1e-3, "{rect:?}");
            assert!((rect.height - (bh + 2.0 * d)).abs() < 1e-3, "{rect:?}");
            assert!((score - p).abs() < 1e-4, "{score}");
        }
    }

    #[test]
    fn a_tilted_line_gives_a_rotated_box() {
        let (w, h) = (80, 60);
        let mut map = vec![0.0f32; w * h];
        // a 4 px thick line from (10, 10) going right-down at slope 1/2
        for x in 10..70 {
            let y = 10 + (x - 10) / 2;
            for dy in 0..4 {
                map[(y + dy) * w + x] = 0.95;
            }
        }
        let rects = db_rects(&map, (w, h), &params());
        assert_eq!(rects.len(), 1);
        let r = rects[0].0;
        let angle = r.u.1.atan2(r.u.0).to_degrees();
        assert!((angle - 26.57).abs() < 3.0, "{angle} {r:?}");
        assert!(r.width > 60.0 && r.height < 15.0, "{r:?}");
    }

    #[test]
    fn input_size_keeps_the_aspect_in_multiples_of_32() {
        assert_eq!(db_input_size((1920, 1080), 960, None), (960, 544));
        assert_eq!(db_input_size((640, 480), 960, None), (640, 480));
        assert_eq!(db_input_size((10, 10), 960, None), (32, 32));
        // RapidOCR's defaults: at most 2000, at least 736 on the shorter side
        assert_eq!(db_input_size((1920, 1080), 2000, Some(736)), (1920, 1088));
        assert_eq!(db_input_size((640, 480), 2000, Some(736)), (992, 736));
        assert_eq!(db_input_size((4000, 3000), 2000, Some(736)), (1984, 1504));
        assert_eq!(db_input_size((528, 400), 2000, Some(400)), (512, 384)); // 16.5 → 16, ties to even
    }

    #[test]
    fn dilation_joins_diagonal_neighbours_and_grows_right_and_down() {
        let (w, h) = (40, 20);
        let mut map = vec![0.0f32; w * h];
        for y in 5..12 {
            for x in 5..15 {
                map[y * w + x] = 0.9;
            }
        }
        let plain = db_rects(&map, (w, h), &params());
        let dilated = db_rects(
            &map,
            (w, h),
            &DbParams {
                dilation: true,
                ..params()
            },
        );
        assert_eq!((plain.len(), dilated.len()), (1, 1));
        assert!((dilated[0].0.centre.0 - plain[0].0.centre.0 - 0.5).abs() < 1e-3);
        assert!(dilated[0].0.width > plain[0].0.width);
    }

    #[test]
    fn nms_keeps_the_strongest_of_overlapping_boxes() {
        let kept = nms(
            vec![
                ([0.0, 0.0, 10.0, 10.0], 0.8),
                ([1.0, 1.0, 11.0, 11.0], 0.9),
                ([20.0, 0.0, 30.0, 10.0], 0.5),
            ],
            0.45,
        );
        assert_eq!(
            kept,
            vec![
                ([1.0, 1.0, 11.0, 11.0], 0.9),
                ([20.0, 0.0, 30.0, 10.0], 0.5)
            ]
        );
    }
}
