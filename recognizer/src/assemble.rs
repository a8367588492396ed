//! From text boxes to plates. A plate may be one text box or several: the 2016
//! Kyrgyz plate prints its region code over "KG" left of the number, Russian and
//! Kazakh plates print the region right of it, and a detector may split "123 ABC" at
//! the gap. So each box, taken as a plate's main line, is tried alone and with its
//! neighbours on the same line (boxes no taller than it, within one text height), and
//! keeps the reading whose best candidate scores highest. Plates then rank by how
//! plate-like they are, and each box serves one plate.

use crate::detect::TextBox;
use crate::plates::{self, CharRead, Scored};
use crate::read::LineRead;

/// A neighbour is at most this much taller than the main line.
const NEIGHBOUR_HEIGHT: f32 = 1.1;
/// How far a neighbour may be from the main line, in main-line heights.
const NEIGHBOUR_GAP: f32 = 1.0;
/// A neighbour may overlap the line by this many line heights: detector boxes of one
/// plate often share a glyph.
const NEIGHBOUR_OVERLAP: f32 = 0.6;
/// Overlapping boxes that both read the same character at their seam, by at least
/// this many heights, read it once.
const SEAM_OVERLAP: f32 = 0.25;
/// At most this many neighbours on each side.
const MAX_NEIGHBOURS: usize = 3;
/// Width / height of a plate's text line.
const PLATE_ASPECT: std::ops::RangeInclusive<f32> = 1.5..=8.0;
/// Alphanumerics a plate has.
const PLATE_LENGTH: std::ops::RangeInclusive<usize> = 4..=10;
/// Boxes longer than this for their height (an overlay line, a banner) are not read.
const MAX_READ_ASPECT: f32 = 12.0;
/// Nor are boxes lower than this many pixels: too small to read.
const MIN_READ_HEIGHT: f32 = 6.0;

/// Whether a text box may hold (part of) a plate and is worth reading.
pub(crate) fn worth_reading(b: &TextBox) -> bool {
    let width = crate::geometry::dist(b.corners[0], b.corners[1]);
    let height = crate::geometry::dist(b.corners[0], b.corners[3]);
    height >= MIN_READ_HEIGHT && width <= MAX_READ_ASPECT * height
}

/// Axis-aligned bounds: x0, y0, x1, y1.
pub(crate) type Bounds = [f32; 4];

pub(crate) fn bounds(corners: &[(f32, f32); 4]) -> Bounds {
    corners
        .iter()
        .fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, &(x, y)| {
            [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)]
        })
}

fn union(a: Bounds, b: Bounds) -> Bounds {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// One plate made of one or more text boxes.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Indices of its boxes, in reading order.
    pub parts: Vec<usize>,
    pub bounds: Bounds,
    pub raw: String,
    pub candidates: Vec<Scored>,
    pub detection_score: f32,
    /// 0 ranks first.
    tier: u8,
    rank: f32,
}

/// Plates from boxes and their reads (same order), best first, at most `max_plates`,
/// each with up to `limit` candidates.
pub(crate) fn plates(
    boxes: &[TextBox],
    reads: &[LineRead],
    limit: usize,
    max_plates: usize,
) -> Vec<Group> {
    let all_bounds: Vec<Bounds> = boxes.iter().map(|b| bounds(&b.corners)).collect();
    let read: Vec<bool> = reads.iter().map(|r| !r.chars.is_empty()).collect();
    let mut groups: Vec<Group> = (0..boxes.len())
        .filter(|&main| read[main])
        .filter_map(|main| {
            let (left, right) = neighbours(&all_bounds, &read, main);
            let mut layouts = vec![vec![main]];
            if !left.is_empty() {
                layouts.push([left.as_slice(), &[main]].concat());
            }
            if !right.is_empty() {
                layouts.push([&[main][..], right.as_slice()].concat());
            }
            if !left.is_empty() && !right.is_empty() {
                layouts.push([left.as_slice(), &[main], right.as_slice()].concat());
            }
            layouts
                .into_iter()
                .map(|parts| group(parts, boxes, &all_bounds, reads, limit))
                .max_by(|a, b| best_score(a).total_cmp(&best_score(b)))
        })
        .collect();
    rank(&mut groups);
    let mut used = vec![false; boxes.len()];
    let mut kept = Vec::new();
    for g in groups {
        if kept.len() == max_plates {
            break;
        }
        if g.parts.iter().any(|&p| used[p]) || g.raw.is_empty() {
            continue;
        }
        g.parts.iter().for_each(|&p| used[p] = true);
        kept.push(g);
    }
    kept
}

/// Best first: by tier (a country's format first), then by read score times detection
/// score.
pub(crate) fn rank(groups: &mut [Group]) {
    groups.sort_by(|a, b| a.tier.cmp(&b.tier).then(b.rank.total_cmp(&a.rank)));
}

impl Group {
    /// This group, read in a plate the plate detector found at `plate` (frame pixels)
    /// with `score`: the plate's box is the group's, and the score ranks it.
    pub(crate) fn in_detected_plate(mut self, plate: Bounds, score: f32) -> Group {
        self.bounds = plate;
        self.rank = best_score(&self) * score;
        self.detection_score = score;
        self
    }
}

fn best_score(g: &Group) -> f32 {
    g.candidates.first().map_or(0.0, |c| c.score)
}

/// Boxes beside `main` on its line, nearest first, chained: each within one text
/// height of the group so far.
fn neighbours(all: &[Bounds], read: &[bool], main: usize) -> (Vec<usize>, Vec<usize>) {
    let m = all[main];
    let height = m[3] - m[1];
    let on_line = |b: &Bounds| {
        let cy = (b[1] + b[3]) / 2.0;
        b[3] - b[1] <= NEIGHBOUR_HEIGHT * height
            && cy >= m[1] - 0.25 * height
            && cy <= m[3] + 0.25 * height
    };
    let chain = |leftwards: bool| {
        let mut edge = if leftwards { m[0] } else { m[2] };
        let mut found: Vec<usize> = Vec::new();
        loop {
            let next: Vec<usize> = (0..all.len())
                .filter(|&j| j != main && read[j] && !found.contains(&j) && on_line(&all[j]))
                .filter(|&j| {
                    let b = all[j];
                    if leftwards {
                        b[0] < m[0]
                            && b[2] <= edge + NEIGHBOUR_OVERLAP * height
                            && b[2] >= edge - NEIGHBOUR_GAP * height
                    } else {
                        b[2] > m[2]
                            && b[0] >= edge - NEIGHBOUR_OVERLAP * height
                            && b[0] <= edge + NEIGHBOUR_GAP * height
                    }
                })
                .collect();
            if next.is_empty() || found.len() + next.len() > MAX_NEIGHBOURS {
                break;
            }
            for &j in &next {
                edge = if leftwards {
                    edge.min(all[j][0])
                } else {
                    edge.max(all[j][2])
                };
            }
            found.extend(next);
        }
        found
    };
    (chain(true), chain(false))
}

/// Reading order: columns left to right (boxes overlapping horizontally by half the
/// narrower share a column, as a region code stacked over "KG"), top to bottom
/// within a column.
fn reading_order(mut parts: Vec<usize>, all: &[Bounds]) -> Vec<usize> {
    parts.sort_by(|&a, &b| all[a][0].total_cmp(&all[b][0]));
    let mut columns: Vec<(Bounds, Vec<usize>)> = Vec::new();
    for p in parts {
        let b = all[p];
        match columns.last_mut() {
            Some((c, members))
                if {
                    let overlap = c[2].min(b[2]) - c[0].max(b[0]);
                    overlap >= 0.5 * (c[2] - c[0]).min(b[2] - b[0])
                } =>
            {
                *c = union(*c, b);
                members.push(p);
            }
            _ => columns.push((b, vec![p])),
        }
    }
    columns
        .into_iter()
        .flat_map(|(_, mut members)| {
            members.sort_by(|&a, &b| all[a][1].total_cmp(&all[b][1]));
            members
        })
        .collect()
}

fn group(
    parts: Vec<usize>,
    boxes: &[TextBox],
    all: &[Bounds],
    reads: &[LineRead],
    limit: usize,
) -> Group {
    let parts = reading_order(parts, all);
    let seams = doubled_at_seams(&parts, all, reads);
    let joined = |marks: bool| -> Vec<CharRead> {
        parts
            .iter()
            .flat_map(|&p| {
                let chars = if marks {
                    reads[p].chars.clone()
                } else {
                    without_marks(&reads[p].chars)
                };
                let doubled = seams
                    .contains(&p)
                    .then(|| chars.iter().position(|c| c.ch.is_alphanumeric()))
                    .flatten();
                chars
                    .into_iter()
                    .enumerate()
                    .filter(move |(i, _)| Some(*i) != doubled)
                    .map(|(_, c)| c)
            })
            .collect()
    };
    let chars = joined(true);
    let unmarked = joined(false);
    let raw: String = parts
        .iter()
        .map(|&p| reads[p].raw.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let candidates = ranked(&unmarked, &chars, limit);
    let b = parts.iter().map(|&p| all[p]).fold(all[parts[0]], union);
    let detection_score = parts.iter().map(|&p| boxes[p].score).sum::<f32>() / parts.len() as f32;
    let length = unmarked
        .iter()
        .filter(|c| plates::normalise_char(c.ch).is_some())
        .count();
    let aspect = (b[2] - b[0]) / (b[3] - b[1]).max(1.0);
    let plate_like = PLATE_ASPECT.contains(&aspect);
    let format = candidates.first().and_then(|c| c.format);
    let specific = format.is_some_and(|f| f.country.is_some());
    let tier = match (
        PLATE_LENGTH.contains(&length),
        specific,
        format.is_some(),
        plate_like,
    ) {
        (false, ..) => 4,
        (true, true, _, true) => 0,
        (true, false, true, true) => 1,
        (true, _, true, false) | (true, _, false, true) => 2,
        (true, _, false, false) => 3,
    };
    Group {
        parts,
        bounds: b,
        raw,
        rank: candidates.first().map_or(0.0, |c| c.score) * detection_score,
        candidates,
        detection_score,
        tier,
    }
}

/// Parts whose first character repeats the last of the part before it, where the two
/// boxes overlap: the detector drew the boxes over the same glyph ("01 KG 656H" beside
/// "HPX"), so it is read once. Boxes that only touch keep both characters.
fn doubled_at_seams(parts: &[usize], all: &[Bounds], reads: &[LineRead]) -> Vec<usize> {
    parts
        .windows(2)
        .filter(|w| {
            let (a, b) = (all[w[0]], all[w[1]]);
            let height = (a[3] - a[1]).min(b[3] - b[1]);
            let overlap = a[2] - b[0];
            let last = reads[w[0]]
                .chars
                .iter()
                .rev()
                .find(|c| c.ch.is_alphanumeric());
            let first = reads[w[1]].chars.iter().find(|c| c.ch.is_alphanumeric());
            b[0] > a[0]
                && overlap >= SEAM_OVERLAP * height
                && last.zip(first).is_some_and(|(l, f)| l.ch == f.ch)
        })
        .map(|w| w[1])
        .collect()
}

/// Candidates for one line's read (see [`ranked`]).
pub(crate) fn line_candidates(chars: &[CharRead], limit: usize) -> Vec<Scored> {
    ranked(&without_marks(chars), chars, limit)
}

/// Candidates for a read without its country marks and with them: a pattern may
/// print them, and a mark's letters may after all belong to the number, but far less
/// often than a mark is a mark ("KZ933CL" is KZ's 933 CL, not a European plate).
fn ranked(unmarked: &[CharRead], chars: &[CharRead], limit: usize) -> Vec<Scored> {
    let limit = limit.max(1);
    if unmarked.len() == chars.len() {
        return plates::candidates(chars, limit);
    }
    let mut marked = plates::candidates(chars, limit);
    marked.iter_mut().for_each(|s| s.score *= MARK_AS_TEXT);
    best_of(plates::candidates(unmarked, limit), marked, limit)
}

/// How much of its score a candidate keeps when it reads a country mark as part of
/// the number.
const MARK_AS_TEXT: f32 = 0.3;

/// Country marks printed beside a plate's number ("KG" under the region, "KZ" by
/// the flag, "RUS" after the region): read, never part of the canonical text.
const COUNTRY_MARKS: &[&str] = &["KG", "KZ", "RUS"];

/// A box's read without its country marks: a mark standing alone or glued to digits
/// ("01KG228" → "01228"; not the letters of "123AKG"). Separators stay.
fn without_marks(chars: &[CharRead]) -> Vec<CharRead> {
    // plate characters with their places in `chars`
    let plate: Vec<(usize, char)> = chars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| plates::normalise_char(c.ch).map(|n| (i, n)))
        .collect();
    let mut dropped = vec![false; chars.len()];
    let mut at = 0;
    while at < plate.len() {
        let mark = COUNTRY_MARKS.iter().find(|m| {
            let end = at + m.len();
            end <= plate.len()
                && plate[at..end].iter().map(|p| p.1).eq(m.chars())
                && (at == 0 || plate[at - 1].1.is_ascii_digit())
                && (end == plate.len() || plate[end].1.is_ascii_digit())
        });
        match mark {
            Some(m) => {
                plate[at..at + m.len()]
                    .iter()
                    .for_each(|p| dropped[p.0] = true);
                at += m.len();
            }
            None => at += 1,
        }
    }
    chars
        .iter()
        .zip(dropped)
        .filter(|(_, d)| !d)
        .map(|(c, _)| c.clone())
        .collect()
}

/// Two candidate lists as one: each text once with its best score, best first.
fn best_of(a: Vec<Scored>, b: Vec<Scored>, limit: usize) -> Vec<Scored> {
    let mut all: Vec<Scored> = Vec::new();
    for s in a.into_iter().chain(b) {
        match all
            .iter_mut()
            .find(|k| k.candidate.text == s.candidate.text)
        {
            Some(known) if known.score >= s.score => {}
            Some(known) => *known = s,
            None => all.push(s),
        }
    }
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.candidate.text.cmp(&b.candidate.text))
    });
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_box(x0: f32, y0: f32, x1: f32, y1: f32) -> TextBox {
        TextBox {
            corners: [(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
            score: 0.9,
        }
    }

    fn line(text: &str) -> LineRead {
        LineRead {
            raw: text.to_owned(),
            chars: text
                .chars()
                .map(|ch| CharRead {
                    ch,
                    prob: 0.95,
                    alternatives: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn a_kyrgyz_plate_joins_its_region_block() {
        // a 2016 plate in three boxes: "01" over "KG" left of "123ABC", plus an
        // overlay line and a stray sign elsewhere
        let boxes = [
            text_box(100.0, 500.0, 220.0, 530.0), // 123ABC, main line
            text_box(60.0, 498.0, 85.0, 512.0),   // 01
            text_box(62.0, 516.0, 84.0, 528.0),   // KG
            text_box(10.0, 10.0, 600.0, 40.0),    // overlay
            text_box(700.0, 300.0, 760.0, 330.0), // sign
        ];
        let reads = [
            line("123ABC"),
            line("01"),
            line("KG"),
            line("2026-11-14 12:00:01 CAM-7 Chui avenue"),
            line("STOP"),
        ];
        let found = plates(&boxes, &reads, 5, 3);
        assert_eq!(found[0].candidates[0].candidate.text, "01123ABC");
        assert_eq!(found[0].parts, vec![1, 2, 0]);
        assert_eq!(found[0].bounds, [60.0, 498.0, 220.0, 530.0]);
        // the parts serve one plate; the overlay ranks after the sign
        assert!(found
            .iter()
            .skip(1)
            .all(|g| g.parts.iter().all(|p| ![0, 1, 2].contains(p))));
        assert_eq!(found.last().map(|g| g.parts.clone()), Some(vec![3]));
    }

    #[test]
    fn country_marks_are_dropped_from_reads() {
        let text = |chars: Vec<CharRead>| chars.iter().map(|c| c.ch).collect::<String>();
        let cases = [
            ("01KG228", "01228"),
            ("KG", ""),
            ("01 KG", "01 "),
            ("KZ123ABC02", "123ABC02"),
            ("A123BC777RUS", "A123BC777"),
            ("01kg123", "01123"),
            // letters of the number stay
            ("123AKG", "123AKG"),
            ("KGB", "KGB"),
            ("01KGB", "01KGB"),
        ];
        for (read, expected) in cases {
            assert_eq!(text(without_marks(&line(read).chars)), expected, "{read}");
        }
    }

    #[test]
    fn a_merged_region_box_drops_its_mark_and_joins_its_neighbour() {
        // the detector merged "01 KG 228" into one box; "EEX" is its neighbour
        let boxes = [
            text_box(60.0, 498.0, 180.0, 530.0),
            text_box(192.0, 500.0, 250.0, 530.0),
        ];
        let found = plates(&boxes, &[line("01KG228"), line("EEX")], 5, 2);
        assert_eq!(found[0].candidates[0].candidate.text, "01228EEX");
        assert_eq!(found[0].parts, vec![0, 1]);
    }

    #[test]
    fn overlapping_boxes_read_their_shared_glyph_once() {
        // "01 KG 656H" and "HPX" both hold the H
        let merged = text_box(213.0, 134.0, 460.0, 196.0);
        let neighbour = text_box(433.0, 148.0, 567.0, 196.0);
        for right in [line("HPX"), line(" HPX")] {
            let reads = [line("01KG656H"), right];
            let found = plates(&[merged.clone(), neighbour.clone()], &reads, 5, 1);
            assert_eq!(found[0].parts, vec![0, 1]);
            assert_eq!(found[0].candidates[0].candidate.text, "01656HPX");
        }
        // boxes that only touch, or overlap on different characters, keep both
        let touching = text_box(458.0, 148.0, 567.0, 196.0);
        let all = [bounds(&merged.corners), bounds(&touching.corners)];
        assert!(doubled_at_seams(&[0, 1], &all, &[line("01KG656H"), line("HPX")]).is_empty());
        let all = [bounds(&merged.corners), bounds(&neighbour.corners)];
        assert_eq!(
            doubled_at_seams(&[0, 1], &all, &[line("01KG656H"), line("HPX")]),
            vec![1]
        );
        assert!(doubled_at_seams(&[0, 1], &all, &[line("01KG656"), line("HPX")]).is_empty());
    }

    #[test]
    fn a_stacked_region_fixes_a_letter_read_as_a_digit() {
        // "01" stacked over "KG" left of "766XKO", whose O was read as 0
        let boxes = [
            text_box(100.0, 500.0, 220.0, 530.0),
            text_box(60.0, 496.0, 85.0, 511.0),
            text_box(62.0, 516.0, 84.0, 528.0),
        ];
        let found = plates(&boxes, &[line("766XK0"), line("01"), line("KG")], 5, 2);
        assert_eq!(found[0].candidates[0].candidate.text, "01766XKO");
        assert_eq!(found[0].parts, vec![1, 2, 0]);
    }

    #[test]
    fn a_plate_like_read_outranks_other_text() {
        let boxes = [
            text_box(0.0, 0.0, 400.0, 30.0),
            text_box(100.0, 200.0, 220.0, 230.0),
        ];
        let reads = [line("SPEED LIMIT 60 KM/H"), line("123ABC02")];
        let found = plates(&boxes, &reads, 3, 1);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].candidates[0].candidate.text, "123ABC02");
    }
}
