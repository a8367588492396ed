//! The recognizer from the command line: `kozomol recognize PATH...` reads plates in
//! JPEG files and folders, `kozomol eval-alpr DIR` scores it on a labelled folder.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kozomol_recognizer::evaluation::{
    load_crops, load_photos, score_photo, score_text, summarise, EvaluationError,
    EvaluationSummary, PlateScore,
};
use kozomol_recognizer::worker::{OurRead, Thresholds};
use kozomol_recognizer::{Recognition, Recognizer, RecognizerError, View};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum PlateReadingError {
    #[error(transparent)]
    Recognizer(#[from] RecognizerError),
    #[error(transparent)]
    Evaluation(#[from] EvaluationError),
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no JPEG files in {0:?}")]
    NoImages(Vec<PathBuf>),
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
struct Progress {
    total: usize,
    done: usize,
    draw: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            done: 0,
            draw: std::io::stderr().is_terminal(),
        }
    }

    fn step(&mut self, label: &str) {
        self.done += 1;
        if self.draw {
            let width = 30;
            let filled = width * self.done / self.total.max(1);
            let label: String = label.chars().take(40).collect();
            eprint!(
                "\r[{}{}] {}/{} {label:<40}",
                "#".repeat(filled),
                " ".repeat(width - filled),
                self.done,
                self.total
            );
            if self.done == self.total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}

/// JPEG files among `paths`, folders expanded (one level, sorted).
pub fn jpeg_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PlateReadingError> {
    let is_jpeg = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
    };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| PlateReadingError::Read {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_jpeg(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            // A named file is read whatever its extension: the recognizer says if it
            // is not a JPEG.
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(PlateReadingError::NoImages(paths.to_vec()));
    }
    Ok(files)
}

fn read_file(path: &Path) -> Result<Vec<u8>, PlateReadingError> {
    std::fs::read(path).map_err(|source| PlateReadingError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads every file and prints one result per file: a JSON object per line with
/// `json`, else a line of text. A file that cannot be read is reported and skipped.
/// Returns how many files failed.
pub fn recognize(
    recognizer: &Recognizer,
    paths: &[PathBuf],
    view: View,
    json: bool,
) -> Result<usize, PlateReadingError> {
    let files = jpeg_files(paths)?;
    let mut progress = Progress::new(files.len());
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for file in &files {
        let result = read_file(file).and_then(|bytes| Ok(recognizer.recognize_jpeg(&bytes, view)?));
        progress.step(&file.display().to_string());
        let line = match result {
            Ok(recognition) if json => json!({
                "file": file.display().to_string(),
                "width": recognition.width,
                "height": recognition.height,
                "plates": recognition.plates,
                "ms": total_ms(&recognition),
            })
            .to_string(),
            Ok(recognition) => describe(file, &recognition),
            Err(e) => {
                failed += 1;
                if json {
                    json!({"file": file.display().to_string(), "error": e.to_string()}).to_string()
                } else {
                    format!("{}: error: {e}", file.display())
                }
            }
        };
        let _ = writeln!(out, "{line}");
    }
    Ok(failed)
}

fn total_ms(r: &Recognition) -> f64 {
    r.decode_ms + r.detect_ms + r.read_ms
}

fn describe(file: &Path, r: &Recognition) -> String {
    if r.plates.is_empty() {
        return format!("{}: no plate ({:.0} ms)", file.display(), total_ms(r));
    }
    let plates: Vec<String> = r
        .plates
        .iter()
        .map(|p| {
            format!(
                "{} {} {:.0}% at {},{} {}x{}",
                if p.text.text.is_empty() {
                    "?"
                } else {
                    &p.text.text
                },
                p.text.country.map_or("--", |c| c.code()),
                p.text.confidence * 100.0,
                p.bbox.x,
                p.bbox.y,
                p.bbox.width,
                p.bbox.height
            )
        })
        .collect();
    format!(
        "{}: {} ({:.0} ms)",
        file.display(),
        plates.join("; "),
        total_ms(r)
    )
}

/// Scores the recognizer on a photos folder (`crops = false`) or a crops folder.
/// Unreadable images count as plates not found and not read.
pub fn evaluate(
    recognizer: &Recognizer,
    dir: &Path,
    crops: bool,
    thresholds: &Thresholds,
) -> Result<EvaluationSummary, PlateReadingError> {
    let mut scores = Vec::new();
    let mut ms = Vec::new();
    if crops {
        let labelled = load_crops(dir)?;
        let mut progress = Progress::new(labelled.len());
        for crop in &labelled {
            let started = Instant::now();
            let read = read_file(&crop.image).and_then(|bytes| {
                let img = image::load_from_memory(&bytes)
                    .map_err(|e| RecognizerError::Decode(e.to_string()))?
                    .to_rgb8();
                Ok(recognizer.read_crops(std::slice::from_ref(&img))?)
            });
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            let read = match read {
                Ok(mut texts) => texts.pop(),
                Err(e) => {
                    tracing::warn!(file = %crop.image.display(), error = %e, "crop not read");
                    None
                }
            };
            let read = read.as_ref().map(|t| OurRead {
                text: &t.text,
                confidence: t.confidence,
                may_decide_alone: t.may_decide_alone(),
            });
            let score = score_text(&crop.text, read, thresholds, None);
            log_misread(&crop.image, &score);
            scores.push(score);
            progress.step(&crop.image.display().to_string());
        }
        Ok(summarise(
            labelled.len(),
            &scores,
            ms,
            thresholds.auto_accept,
        ))
    } else {
        let photos = load_photos(dir)?;
        let mut progress = Progress::new(photos.len());
        for photo in &photos {
            let started = Instant::now();
            let recognition = read_file(&photo.image)
                .and_then(|bytes| Ok(recognizer.recognize_jpeg(&bytes, View::Scene)?));
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            let reads: Vec<_> = match recognition {
                Ok(r) => r
                    .plates
                    .into_iter()
                    .map(|p| {
                        let alone = p.text.may_decide_alone();
                        (p.bbox, p.text.text, p.text.confidence, alone)
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(file = %photo.image.display(), error = %e, "photo not read");
                    Vec::new()
                }
            };
            let photo_scores = score_photo(&photo.plates, &reads, thresholds);
            photo_scores
                .iter()
                .for_each(|score| log_misread(&photo.image, score));
            scores.extend(photo_scores);
            progress.step(&photo.image.display().to_string());
        }
        Ok(summarise(photos.len(), &scores, ms, thresholds.auto_accept))
    }
}

/// Each plate not read exactly goes to the log, so a figure can be looked into.
fn log_misread(image: &Path, score: &PlateScore) {
    if !score.exact {
        tracing::info!(
            file = %image.display(),
            truth = %score.truth,
            read = %score.read,
            detected = ?score.detected,
            accepted = score.accepted,
            "misread"
        );
    }
}
