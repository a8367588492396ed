//! Scoring the recognizer against labelled plates: the folder formats `eval-alpr`
//! reads, the matching rules (box IoU, exact and lenient text) and the summary. The
//! rules are pure; reading the folders is the only I/O here.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::plates::canonicalise;
use crate::worker::{decide, OurRead, Thresholds};
use crate::PixelBox;
use kozomol_store::RecognitionDecision;

/// One labelled plate in a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPlate {
    pub bbox: PixelBox,
    pub text: String,
}

/// A photo and the plates on it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPhoto {
    pub image: PathBuf,
    pub plates: Vec<LabelledPlate>,
}

/// A plate crop and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledCrop {
    pub image: PathBuf,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` line {line}: {reason}")]
    Label {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("`{0}` holds no labelled images")]
    Empty(PathBuf),
}

fn read(path: &Path) -> Result<String, EvaluationError> {
    std::fs::read_to_string(path).map_err(|source| EvaluationError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A photos folder: each `NAME.jpg` with `NAME.txt` beside it, one plate per line,
/// tab-separated `file x y w h plate`. Photos without a label file are skipped.
pub fn load_photos(dir: &Path) -> Result<Vec<LabelledPhoto>, EvaluationError> {
    let entries = std::fs::read_dir(dir).map_err(|source| EvaluationError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut labels: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    labels.sort();
    let mut photos = Vec::new();
    for label in labels {
        let image = label.with_extension("jpg");
        if !image.exists() {
            continue;
        }
        let plates = parse_photo_labels(&read(&label)?).map_err(|(line, reason)| {
            EvaluationError::Label {
                path: label.clone(),
                line,
                reason,
            }
        })?;
        photos.push(LabelledPhoto { image, plates });
    }
    if photos.is_empty() {
        return Err(EvaluationError::Empty(dir.to_owned()));
    }
    Ok(photos)
}

/// Parses a photo's label lines; errors carry the 1-based line number.
pub fn parse_photo_labels(text: &str) -> Result<Vec<LabelledPlate>, (usize, String)> {
    let mut plates = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 6 {
            return Err((
                n + 1,
                format!("expected 6 tab-separated fields, found {}", fields.len()),
            ));
        }
        let number = |i: usize| {
            fields[i].trim().parse::<u32>().map_err(|_| {
                (
                    n + 1,
                    format!("field {} `{}` is not a whole number", i + 1, fields[i]),
                )
            })
        };
        plates.push(LabelledPlate {
            bbox: PixelBox {
                x: number(1)?,
                y: number(2)?,
                width: number(3)?,
                height: number(4)?,
            },
            text: canonicalise(fields[5]),
        });
    }
    Ok(plates)
}

/// A crops folder: `groundtruth.csv` with `file,state,plate` lines.
pub fn load_crops(dir: &Path) -> Result<Vec<LabelledCrop>, EvaluationError> {
    let path = dir.join("groundtruth.csv");
    let text = read(&path)?;
    let mut crops = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.trim().split(',').collect();
        if line.trim().is_empty() || (n == 0 && fields.first() == Some(&"file")) {
            continue;
        }
        if fields.len() != 3 {
            return Err(EvaluationError::Label {
                path,
                line: n + 1,
                reason: format!("expected `file,state,plate`, found {} fields", fields.len()),
            });
        }
        crops.push(LabelledCrop {
            image: dir.join(fields[0]),
            text: canonicalise(fields[2]),
        });
    }
    if crops.is_empty() {
        return Err(EvaluationError::Empty(dir.to_owned()));
    }
    Ok(crops)
}

/// Intersection over union of two boxes.
pub fn iou(a: &PixelBox, b: &PixelBox) -> f64 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.width).min(b.x + b.width);
    let y1 = (a.y + a.height).min(b.y + b.height);
    let inter = f64::from(x1.saturating_sub(x0)) * f64::from(y1.saturating_sub(y0));
    let union =
        f64::from(a.width) * f64::from(a.height) + f64::from(b.width) * f64::from(b.height) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Equal once O/0 and I/1 confusions are ignored.
pub fn lenient_eq(a: &str, b: &str) -> bool {
    let fold = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                'O' => '0',
                'I' => '1',
                c => c,
            })
            .collect()
    };
    fold(a) == fold(b)
}

/// The value below which `q` (0–1) of `sorted` lies (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// How one labelled plate came out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlateScore {
    /// The labelled text and what was read ("" when nothing was).
    pub truth: String,
    pub read: String,
    /// `None` for crops, where nothing is detected.
    pub detected: Option<bool>,
    pub exact: bool,
    pub lenient: bool,
    /// With no camera read, the read would decide the case without a person.
    pub accepted: bool,
}

/// Scores a photo's reads against its labels: each labelled plate is judged on the
/// read whose box overlaps it most (IoU ≥ 0.5 counts as detected; a read that
/// overlaps less still counts for the text).
pub fn score_photo(
    labels: &[LabelledPlate],
    reads: &[(PixelBox, String, f32, bool)],
    thresholds: &Thresholds,
) -> Vec<PlateScore> {
    labels
        .iter()
        .map(|label| {
            let best = reads
                .iter()
                .map(|r| (iou(&label.bbox, &r.0), r))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let detected = best.is_some_and(|(overlap, _)| overlap >= 0.5);
            let read = best.filter(|(overlap, _)| *overlap > 0.0).map(|(_, r)| r);
            let read = read.map(|r| OurRead {
                text: &r.1,
                confidence: r.2,
                may_decide_alone: r.3,
            });
            score_text(&label.text, read, thresholds, Some(detected))
        })
        .collect()
}

/// Scores one read against the right text; `accepted` is the worker's own rule for a
/// read with no camera read beside it.
pub fn score_text(
    truth: &str,
    read: Option<OurRead<'_>>,
    thresholds: &Thresholds,
    detected: Option<bool>,
) -> PlateScore {
    let text = read.map_or("", |r| r.text);
    PlateScore {
        truth: truth.to_owned(),
        read: text.to_owned(),
        detected,
        exact: !text.is_empty() && text == truth,
        lenient: !text.is_empty() && lenient_eq(text, truth),
        accepted: decide(None, read, thresholds).0 == RecognitionDecision::Recognized,
    }
}

/// The figures `eval-alpr` prints; rates are fractions 0–1 per labelled plate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationSummary {
    pub images: usize,
    pub plates: usize,
    pub detection_rate: Option<f64>,
    pub exact_rate: f64,
    pub lenient_rate: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    /// The confidence at or above which a read is accepted without a person.
    pub accept_threshold: f32,
    /// Share of plates whose read was accepted at the threshold...
    pub accepted_rate: f64,
    /// ...and the share of those accepted reads that were exact.
    pub accepted_exact_rate: Option<f64>,
}

pub fn summarise(
    images: usize,
    scores: &[PlateScore],
    mut ms: Vec<f64>,
    accept_threshold: f32,
) -> EvaluationSummary {
    let plates = scores.len();
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let count = |f: &dyn Fn(&PlateScore) -> bool| scores.iter().filter(|s| f(s)).count();
    ms.sort_by(f64::total_cmp);
    let accepted = count(&|s| s.accepted);
    let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
    EvaluationSummary {
        images,
        plates,
        detection_rate: scores
            .iter()
            .all(|s| s.detected.is_some())
            .then(|| round(share(count(&|s| s.detected == Some(true)), plates))),
        exact_rate: round(share(count(&|s| s.exact), plates)),
        lenient_rate: round(share(count(&|s| s.lenient), plates)),
        median_ms: round(percentile(&ms, 0.5)),
        p95_ms: round(percentile(&ms, 0.95)),
        accept_threshold,
        accepted_rate: round(share(accepted, plates)),
        accepted_exact_rate: (accepted > 0)
            .then(|| round(share(count(&|s| s.accepted && s.exact), accepted))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: u32, y: u32, width: u32, height: u32) -> PixelBox {
        PixelBox {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn iou_table() {
        let table = [
            (b(0, 0, 10, 10), b(0, 0, 10, 10), 1.0),
            (b(0, 0, 10, 10), b(5, 0, 10, 10), 50.0 / 150.0),
            (b(0, 0, 10, 10), b(20, 20, 5, 5), 0.0),
            (b(0, 0, 10, 10), b(2, 2, 5, 5), 25.0 / 100.0),
            (b(0, 0, 0, 0), b(0, 0, 0, 0), 0.0),
        ];
        for (a, c, expected) in table {
            assert!((iou(&a, &c) - expected).abs() < 1e-9, "{a:?} {c:?}");
        }
    }

    #[test]
    fn lenient_ignores_only_o0_and_i1() {
        let table = [
            ("01123ABC", "O1123ABC", true),
            ("1ABC", "IABC", true),
            ("8ABC", "BABC", false),
            ("ABC", "ABCD", false),
        ];
        for (a, c, expected) in table {
            assert_eq!(lenient_eq(a, c), expected, "{a} {c}");
        }
    }

    #[test]
    fn photo_labels_parse_and_refuse() {
        let ok = "a.jpg\t935\t362\t99\t49\tYG9X2G\n\nb.jpg\t1\t2\t3\t4\t01 123 abc\n";
        let plates = parse_photo_labels(ok).expect("parses");
        assert_eq!(plates.len(), 2);
        assert_eq!(plates[0].bbox, b(935, 362, 99, 49));
        assert_eq!(plates[1].text, "01123ABC");
        let bad = [
            ("a.jpg\t1\t2\t3\tPLATE", 1, "6 tab-separated"),
            (
                "a.jpg\t1\t2\t3\t4\tP\nb.jpg\tx\t2\t3\t4\tP",
                2,
                "not a whole number",
            ),
        ];
        for (text, line, reason) in bad {
            let (l, r) = parse_photo_labels(text).expect_err(text);
            assert_eq!(l, line);
            assert!(r.contains(reason), "{r}");
        }
    }

    #[test]
    fn photos_score_per_labelled_plate() {
        let labels = [
            LabelledPlate {
                bbox: b(100, 100, 100, 50),
                text: "ABC123".into(),
            },
            LabelledPlate {
                bbox: b(500, 500, 100, 50),
                text: "XYZ780".into(),
            },
            LabelledPlate {
                bbox: b(900, 100, 100, 50),
                text: "QQQ111".into(),
            },
        ];
        let reads = [
            (b(102, 101, 98, 48), "ABC123".to_owned(), 0.97, true),
            (b(540, 500, 100, 50), "XYZ78O".to_owned(), 0.60, true), // IoU 0.43: read, not detected
        ];
        let scores = score_photo(&labels, &reads, &Thresholds::default());
        assert_eq!(
            scores,
            vec![
                PlateScore {
                    truth: "ABC123".into(),
                    read: "ABC123".into(),
                    detected: Some(true),
                    exact: true,
                    lenient: true,
                    accepted: true
                },
                PlateScore {
                    truth: "XYZ780".into(),
                    read: "XYZ78O".into(),
                    detected: Some(false),
                    exact: false,
                    lenient: true,
                    accepted: false
                },
                PlateScore {
                    truth: "QQQ111".into(),
                    read: String::new(),
                    detected: Some(false),
                    exact: false,
                    lenient: false,
                    accepted: false
                },
            ]
        );
        let summary = summarise(1, &scores, vec![30.0, 10.0, 20.0], 0.9);
        assert_eq!(summary.detection_rate, Some(0.3333));
        assert_eq!(summary.exact_rate, 0.3333);
        assert_eq!(summary.lenient_rate, 0.6667);
        assert_eq!(summary.median_ms, 20.0);
        assert_eq!(summary.p95_ms, 30.0);
        assert_eq!(summary.accepted_exact_rate, Some(1.0));
    }

    #[test]
    fn crops_have_no_detection_rate() {
        let read = OurRead {
            text: "ABC",
            confidence: 0.95,
            may_decide_alone: false,
        };
        // confident, but in no known format: not accepted alone
        let scores = [score_text("ABC", Some(read), &Thresholds::default(), None)];
        let summary = summarise(1, &scores, vec![5.0], 0.9);
        assert_eq!(summary.detection_rate, None);
        assert_eq!(summary.accepted_exact_rate, None);
    }
}
