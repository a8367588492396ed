//! kozomol-recognizer: reads licence plates in camera frames.
//!
//! It owns the models manifest (`models/<name>/model.toml`), ONNX Runtime through `ort`
//! (the library is loaded at run time from a path; sessions are built once and shared),
//! plate and text detection with their post-processing, cropping and deskewing, reading with
//! per-character probabilities, and the plate formats of the countries whose cars
//! the cameras see, which turn reads into ranked candidates with a country guess.
//! Reading itself does no I/O beyond loading the models: callers hand it JPEG bytes or
//! images. [`plates`] is pure and usable on its own. [`worker`] is the pipeline stage
//! around it: recognition jobs from the store, the dual-read rule, and the outcome
//! (with the plate crop as evidence) back to the store.

mod assemble;
mod detect;
mod error;
pub mod evaluation;
mod geometry;
pub mod model;
pub mod plates;
mod read;
mod runtime;
pub mod worker;

use std::path::PathBuf;
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};

pub use error::RecognizerError;
pub use plates::{Candidate, CharRead, Country};

use detect::Detector;
use model::{Alphabet, ModelManifest};
use read::{LineRead, Reader};
use runtime::Model;

/// A plate's surroundings are detected again with their shorter side scaled to this
/// many detector pixels: a region code stacked over "KG", a few frame pixels high,
/// becomes legible, and a plate crop's separate blocks become separate boxes.
const REGION_SIDE: u32 = 192;
/// The longer side of that second look's detector input, at most.
const REGION_MAX_SIDE: u32 = 2560;
/// The surroundings: the plate's box grown by this many of its heights on the left and
/// right (where region blocks are printed) and above and below.
const REGION_GROW_X: f32 = 1.2;
const REGION_GROW_Y: f32 = 0.4;
/// The plate reader sees each plate twice, and the better read counts: cut out with
/// a margin of these fractions of its width and height, and with the surroundings of
/// the second look (grown that much, a Kyrgyz number's box takes in the region field
/// that the lines missed).
const WHOLE_MARGIN_X: f32 = 0.06;
const WHOLE_MARGIN_Y: f32 = 0.2;
/// A plate the plate detector finds is read from its box grown by this many of its
/// heights on every side: the box's edges may cut a glyph.
const PLATE_MARGIN: f32 = 0.15;
/// Such a plate is detected at this many detector pixels high, margin included: the
/// second look's scale, at which a stacked region code becomes legible (at 140, a
/// fifth fewer camera-sim plates were read confidently enough to be accepted).
const PLATE_SIDE: u32 = 192;
/// A frame's further plates are read only where the plate detector scores them this
/// high: most weaker boxes are signs and lettering, each costing a text detection.
const FURTHER_PLATE_SCORE: f32 = 0.3;

/// How to build a [`Recognizer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecognizerConfig {
    /// The folder holding `model.toml`.
    pub models_dir: PathBuf,
    /// `libonnxruntime.so`. The library reads no environment: binaries fill this from
    /// their settings or `ORT_DYLIB_PATH`, which `scripts/lib.sh`'s
    /// `ensure_onnxruntime` sets.
    pub onnxruntime: Option<PathBuf>,
    /// Intra-op threads per model; 0 lets ONNX Runtime choose.
    pub threads: usize,
    /// Run on CUDA when this build has the `cuda` feature and the library has the
    /// CUDA execution provider; otherwise a warning, and the CPU.
    pub cuda: bool,
    /// Plates reported per frame.
    pub max_plates: usize,
    /// Candidates reported per plate.
    pub candidates: usize,
}

impl Default for RecognizerConfig {
    fn default() -> Self {
        RecognizerConfig {
            models_dir: PathBuf::from("models/kozomol-reader"),
            onnxruntime: None,
            threads: 2,
            cuda: false,
            max_plates: 4,
            candidates: 5,
        }
    }
}

/// An axis-aligned rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PixelBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// How a frame shows its plate, which decides the scale text is looked for at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A scene (an overview, a photo): plates may be a few pixels high, so a small
    /// frame is scaled up to the detector's `min_side` before text is looked for.
    Scene,
    /// A plate close-up, the plate across much of the frame: the plate detector is
    /// skipped and text is looked for at the detector's `close_up_min_side`.
    CloseUp,
}

/// What a frame shows.
#[derive(Debug, Clone, Serialize)]
pub struct Recognition {
    pub width: u32,
    pub height: u32,
    /// Best first.
    pub plates: Vec<PlateReading>,
    /// JPEG decoding (0 for [`Recognizer::recognize_image`]).
    pub decode_ms: f64,
    pub detect_ms: f64,
    /// Cropping, reading and plate assembly.
    pub read_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlateReading {
    pub bbox: PixelBox,
    /// Top-left, top-right, bottom-right, bottom-left.
    pub corners: [(f32, f32); 4],
    pub detection_score: f32,
    pub text: PlateText,
    /// The plate as read, upright: evidence for a reviewer.
    #[serde(skip)]
    pub crop: RgbImage,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlateText {
    /// The best candidate, canonical (upper-case Latin letters and digits).
    pub text: String,
    /// What the reader saw, unnormalised (several boxes joined by a space).
    pub raw: String,
    /// The product of `char_confidences`: see [`plates`] for why.
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    /// Which look gave this text.
    pub look: Look,
    /// The country of the best candidate's format.
    pub country: Option<Country>,
    /// Best first; the first is `text`.
    pub candidates: Vec<Candidate>,
}

impl PlateText {
    /// Whether this read, confident enough, may decide a case with no camera read
    /// beside it: it fits a country's format, read from the first look's lines, or
    /// from the second look's and the plate reader agrees. A second look joins text
    /// around the plate, and a sticker's or a frame's digits beside a US number make
    /// it fit a Kazakh or Kyrgyz format as readily as a real region code does; the
    /// plate reader has seen only synthetic plates.
    pub fn may_decide_alone(&self) -> bool {
        self.country.is_some() && matches!(self.look, Look::Lines | Look::Agreed)
    }

    fn from_scored(look: Look, raw: String, scored: Vec<plates::Scored>) -> PlateText {
        let best = scored.first();
        PlateText {
            text: best.map(|s| s.candidate.text.clone()).unwrap_or_default(),
            raw,
            confidence: best.map_or(0.0, |s| s.candidate.confidence),
            char_confidences: best.map(|s| s.char_confidences.clone()).unwrap_or_default(),
            look,
            country: best.and_then(|s| s.candidate.country),
            candidates: scored.into_iter().map(|s| s.candidate).collect(),
        }
    }
}

/// Which look at a plate gave its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Look {
    /// The text lines the detector found in the frame (or a crop read as one line),
    /// joined into a plate.
    Lines,
    /// The lines found on a second, closer look at the plate's surroundings (see
    /// [`REGION_SIDE`]), or in a plate the plate detector found.
    SecondLook,
    /// The plate reader, on the plate cut out whole (see [`WHOLE_MARGIN_X`]).
    WholePlate,
    /// The second look's lines, and the plate reader says the same.
    Agreed,
}

/// What one reader made of a plate: its raw text and its candidates.
type Read = (String, Vec<plates::Scored>);

/// A plate's text from its line reads (`look`) and, where there is one, the plate
/// reader's read of it whole. The first look's lines, where they fit a country's
/// format, stand as they are: the plate reader has seen only synthetic type and on
/// unfamiliar type it is confidently wrong more often than the line reader (in the
/// synthetic test set's fonts it reads a flat-topped 3 as 5). Lines that fit only on
/// the second look are confirmed where the plate reader's best read is the same
/// ([`plates::agreed`]), which lets them decide a case alone. Lines that fit no
/// format give way to a plate reader's read that fits one: a Kyrgyz number whose
/// region code the lines missed.
fn combine(look: Look, lines: Read, whole: Option<Read>) -> PlateText {
    let (raw, mut scored) = lines;
    let whole = whole.filter(|w| fits_a_country(&w.1));
    match (whole, fits_a_country(&scored)) {
        (Some((_, w)), true) if look == Look::SecondLook => {
            match plates::agreed(&scored[0], &w[0]) {
                Some(both) => {
                    scored[0] = both;
                    PlateText::from_scored(Look::Agreed, raw, scored)
                }
                None => PlateText::from_scored(look, raw, scored),
            }
        }
        (Some((whole_raw, w)), false) => PlateText::from_scored(Look::WholePlate, whole_raw, w),
        _ => PlateText::from_scored(look, raw, scored),
    }
}

/// Detector and reader, loaded once; share it between threads (`Send + Sync`; each
/// model runs one call at a time, so two threads overlap detection and reading).
/// Every call is CPU-bound for hundreds of milliseconds: async callers run it on
/// `spawn_blocking` or a pool of their own.
pub struct Recognizer {
    name: String,
    detector: Detector,
    reader: Reader,
    plate_reader: Option<Reader>,
    plate_detector: Option<Detector>,
    max_plates: usize,
    candidates: usize,
}

impl Recognizer {
    /// Loads ONNX Runtime (once per process), the manifest, the alphabet and both
    /// models.
    pub fn load(cfg: &RecognizerConfig) -> Result<Self, RecognizerError> {
        let env = runtime::environment(cfg.onnxruntime.as_deref())?;
        let dir = &cfg.models_dir;
        let manifest = ModelManifest::load(dir)?;
        let load_model = |file: &std::path::Path, input_name: &str| {
            Model::load(&env, &dir.join(file), input_name, cfg.threads, cfg.cuda)
        };
        let load_detector = |d: &model::DetectorSpec| -> Result<Detector, RecognizerError> {
            Ok(Detector {
                model: load_model(&d.file, &d.input_name)?,
                spec: d.clone(),
            })
        };
        let detector = load_detector(&manifest.detector)?;
        let plate_detector = manifest
            .plate_detector
            .as_ref()
            .map(load_detector)
            .transpose()?;
        let load_reader = |r: &model::ReaderSpec| -> Result<Reader, RecognizerError> {
            Ok(Reader {
                model: load_model(&r.file, &r.input_name)?,
                spec: r.clone(),
                alphabet: Alphabet::load(&dir.join(&r.alphabet))?,
            })
        };
        let reader = load_reader(&manifest.reader)?;
        let plate_reader = manifest
            .plate_reader
            .as_ref()
            .map(load_reader)
            .transpose()?;
        tracing::info!(model = %manifest.name, dir = %dir.display(), "recognizer loaded");
        Ok(Recognizer {
            name: manifest.name,
            detector,
            reader,
            plate_reader,
            plate_detector,
            max_plates: cfg.max_plates,
            candidates: cfg.candidates.max(1),
        })
    }

    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// Decodes a JPEG frame and reads its plates; anything but a decodable JPEG is an
    /// error.
    pub fn recognize_jpeg(&self, jpeg: &[u8], view: View) -> Result<Recognition, RecognizerError> {
        let start = Instant::now();
        let img = decode_jpeg(jpeg)?;
        let decode_ms = ms(start);
        let mut recognition = self.recognize_image(&img, view)?;
        recognition.decode_ms = decode_ms;
        Ok(recognition)
    }

    pub fn recognize_image(
        &self,
        img: &RgbImage,
        view: View,
    ) -> Result<Recognition, RecognizerError> {
        if img.width() < 8 || img.height() < 8 {
            return Err(RecognizerError::ImageTooSmall {
                width: img.width(),
                height: img.height(),
            });
        }
        let start = Instant::now();
        // The plate detector finds plates in scenes; a close-up is a plate already.
        if let Some(plate_detector) = self.plate_detector.as_ref().filter(|_| view == View::Scene) {
            let found = plate_detector.detect(img)?;
            let (detect_ms, reading) = (ms(start), Instant::now());
            if let Some(plates) = self.read_detected_plates(img, &found)? {
                return self.finish(img, plates, Vec::new(), Vec::new(), detect_ms, reading);
            }
        }
        let boxes = match view {
            View::Scene => self.detector.detect(img)?,
            View::CloseUp => self.detector.detect_scaled(
                img,
                self.detector.spec.max_side,
                self.detector
                    .spec
                    .close_up_min_side
                    .or(self.detector.spec.min_side)
                    .unwrap_or(0),
            )?,
        };
        let detect_ms = ms(start);
        let start = Instant::now();
        let (reads, crop_of) = self.read_boxes(img, &boxes)?;
        let groups = assemble::plates(&boxes, &reads, self.candidates, self.max_plates);
        let looked = groups
            .into_iter()
            .enumerate()
            // the best plate only: the one a case is decided on, and one extra
            // detection per frame at most
            .map(|(i, g)| match i {
                0 => self.look_again(img, g),
                _ => Ok((g, false)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.finish(img, looked, boxes, crop_of, detect_ms, start)
    }

    /// The long side close-ups are scaled to for their quick read
    /// ([`Recognizer::read_close_up_whole`]), where the models name one.
    pub fn quick_close_up_side(&self) -> Option<u32> {
        self.plate_reader
            .as_ref()
            .and(self.detector.spec.close_up_quick_side)
    }

    /// A quick read of a plate close-up: text looked for with the frame's long side
    /// scaled to at most `max_side` (a close-up's plate is large), the strongest line taken as the plate, cut out and read whole
    /// by the plate reader. `None` without a plate reader or where no text is found.
    /// Such a read never decides a case alone (`Look::WholePlate`): only a camera read
    /// that agrees with it lets it decide.
    pub fn read_close_up_whole(
        &self,
        img: &RgbImage,
        max_side: u32,
    ) -> Result<Option<PlateReading>, RecognizerError> {
        if self.plate_reader.is_none() || img.width() < 8 || img.height() < 8 {
            return Ok(None);
        }
        let boxes = self.detector.detect_scaled(img, max_side, 0)?;
        // The strongest line: its area weighed by its score; a plate is the largest
        // text in its close-up.
        let weight = |b: &detect::TextBox| {
            let [x0, y0, x1, y1] = assemble::bounds(&b.corners);
            (x1 - x0) * (y1 - y0) * b.score
        };
        let Some(line) = boxes
            .iter()
            .filter(|b| weight(b).is_finite())
            .max_by(|a, b| weight(a).total_cmp(&weight(b)))
        else {
            return Ok(None);
        };
        // With the lines beside it on its row (a region code or a flag field is a line
        // of its own): boxes whose centre lies within the line's height, each joined
        // once it is near the row as far as it reaches, until none is left to join.
        let own = assemble::bounds(&line.corners);
        let height = own[3] - own[1];
        let mut bounds = own;
        let mut joined = 1;
        let mut left: Vec<assemble::Bounds> = boxes
            .iter()
            .filter(|b| !std::ptr::eq(*b, line))
            .map(|b| assemble::bounds(&b.corners))
            .filter(|[_, y0, _, y1]| {
                let centre = (y0 + y1) / 2.0;
                centre > own[1] && centre < own[3]
            })
            .collect();
        while let Some(i) = left
            .iter()
            .position(|[x0, _, x1, _]| (x0 - bounds[2]).max(bounds[0] - x1) < 1.5 * height)
        {
            let [x0, y0, x1, y1] = left.swap_remove(i);
            bounds = [
                bounds[0].min(x0),
                bounds[1].min(y0),
                bounds[2].max(x1),
                bounds[3].max(y1),
            ];
            joined += 1;
        }
        let cut_out = whole_plate_regions(img, bounds)
            .into_iter()
            .map(|[x, y, w, h]| (0, image::imageops::crop_imm(img, x, y, w, h).to_image()))
            .collect();
        let Some(Some((raw, scored))) = self.read_whole(cut_out, 1)?.into_iter().next() else {
            return Ok(None);
        };
        let [x0, y0, x1, y1] = bounds;
        let bbox = PixelBox {
            x: x0.max(0.0).floor() as u32,
            y: y0.max(0.0).floor() as u32,
            width: ((x1.min(img.width() as f32) - x0.max(0.0)).ceil() as u32).max(1),
            height: ((y1.min(img.height() as f32) - y0.max(0.0)).ceil() as u32).max(1),
        };
        Ok(Some(PlateReading {
            crop: image::imageops::crop_imm(img, bbox.x, bbox.y, bbox.width, bbox.height)
                .to_image(),
            bbox,
            corners: if joined == 1 {
                line.corners
            } else {
                [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            },
            detection_score: line.score,
            text: PlateText::from_scored(Look::WholePlate, raw, scored),
        }))
    }

    /// The plates the plate detector found (`found`, best first), each read from the
    /// text boxes found in it (the best one looked at again, as in a frame, where it
    /// fits no format); `None` where none of them reads in a country's format.
    fn read_detected_plates(
        &self,
        img: &RgbImage,
        found: &[detect::TextBox],
    ) -> Result<Option<Vec<(assemble::Group, bool)>>, RecognizerError> {
        let mut groups: Vec<assemble::Group> = Vec::new();
        for found in found.iter().take(self.max_plates) {
            if found.score < FURTHER_PLATE_SCORE
                && groups.iter().any(|g| fits_a_country(&g.candidates))
            {
                break;
            }
            let plate = assemble::bounds(&found.corners);
            let h = plate[3] - plate[1];
            let Some([rx, ry, rw, rh]) = grown(img, plate, PLATE_MARGIN * h, PLATE_MARGIN * h)
            else {
                continue;
            };
            let cut = image::imageops::crop_imm(img, rx, ry, rw, rh).to_image();
            if let Some(g) = self.read_region(&cut, PLATE_SIDE)? {
                groups.push(g.in_detected_plate(plate, found.score));
            }
        }
        // A plate in no country's format may be a sign the detector took for one, or a
        // plate cut short; the frame detected whole finds what the detector missed.
        if !groups.iter().any(|g| fits_a_country(&g.candidates)) {
            return Ok(None);
        }
        assemble::rank(&mut groups);
        let mut groups = groups.into_iter();
        // Read at a second look's scale, these are second-look reads: a box around a US
        // plate takes in its sticker's digits as readily, so only the plate reader's
        // agreement lets one decide a case alone.
        let best = groups.next().map(|g| self.look_again(img, g)).transpose()?;
        Ok(Some(
            best.map(|(g, _)| g)
                .into_iter()
                .chain(groups)
                .map(|g| (g, true))
                .collect(),
        ))
    }

    /// Plates read from lines (`looked`: each group, and whether the second look
    /// gave it) completed by the plate reader, with their crops: a group of one of
    /// `boxes` keeps that box's upright crop (`crop_of`), any other is cut out.
    fn finish(
        &self,
        img: &RgbImage,
        looked: Vec<(assemble::Group, bool)>,
        boxes: Vec<detect::TextBox>,
        mut crop_of: Vec<Option<RgbImage>>,
        detect_ms: f64,
        start: Instant,
    ) -> Result<Recognition, RecognizerError> {
        let cut_out = looked
            .iter()
            .enumerate()
            .filter(|(_, (g, refined))| *refined || !fits_a_country(&g.candidates))
            .flat_map(|(i, (g, _))| {
                whole_plate_regions(img, g.bounds)
                    .into_iter()
                    .map(move |[x, y, w, h]| {
                        (i, image::imageops::crop_imm(img, x, y, w, h).to_image())
                    })
            })
            .collect();
        let whole = self.read_whole(cut_out, looked.len())?;
        let plates = looked
            .into_iter()
            .zip(whole)
            .map(|((g, refined), whole)| {
                // a single box's upright crop, unless the parts are the second look's
                let own_crop = (!refined && g.parts.len() == 1)
                    .then(|| crop_of.get_mut(g.parts[0]).and_then(Option::take))
                    .flatten();
                let [x0, y0, x1, y1] = g.bounds;
                let bbox = PixelBox {
                    x: x0.max(0.0).floor() as u32,
                    y: y0.max(0.0).floor() as u32,
                    width: ((x1.min(img.width() as f32) - x0.max(0.0)).ceil() as u32).max(1),
                    height: ((y1.min(img.height() as f32) - y0.max(0.0)).ceil() as u32).max(1),
                };
                let (corners, crop) = if let Some(crop) = own_crop {
                    (boxes[g.parts[0]].corners, crop)
                } else {
                    let crop =
                        image::imageops::crop_imm(img, bbox.x, bbox.y, bbox.width, bbox.height)
                            .to_image();
                    ([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], crop)
                };
                PlateReading {
                    bbox,
                    corners,
                    detection_score: g.detection_score,
                    text: combine(
                        if refined {
                            Look::SecondLook
                        } else {
                            Look::Lines
                        },
                        (g.raw, g.candidates),
                        whole,
                    ),
                    crop,
                }
            })
            .collect();
        Ok(Recognition {
            width: img.width(),
            height: img.height(),
            plates,
            decode_ms: 0.0,
            detect_ms,
            read_ms: ms(start),
        })
    }

    /// Reads each crop as one text line, in batches: what the reader model says
    /// (country marks set aside as in a frame), with no detection. One result per crop, in order.
    pub fn read_lines(&self, crops: &[RgbImage]) -> Result<Vec<PlateText>, RecognizerError> {
        Ok(self
            .line_reads(crops)?
            .into_iter()
            .map(|(raw, scored)| PlateText::from_scored(Look::Lines, raw, scored))
            .collect())
    }

    fn line_reads(&self, crops: &[RgbImage]) -> Result<Vec<Read>, RecognizerError> {
        if let Some(c) = crops.iter().find(|c| c.width() == 0 || c.height() == 0) {
            return Err(RecognizerError::ImageTooSmall {
                width: c.width(),
                height: c.height(),
            });
        }
        let reads = self.reader.read(crops)?;
        Ok(reads
            .into_iter()
            .map(|LineRead { raw, chars }| {
                let scored = assemble::line_candidates(&chars, self.candidates);
                (raw, scored)
            })
            .collect())
    }

    /// Reads plate crops, one result per crop, in order: each crop as one line
    /// ([`Recognizer::read_lines`]), and a read that fits no country's format again
    /// with the text boxes found in the crop, which splits off a stacked region code,
    /// and whole by the plate reader (see `combine`).
    pub fn read_crops(&self, crops: &[RgbImage]) -> Result<Vec<PlateText>, RecognizerError> {
        let lines = self.line_reads(crops)?;
        let unfit = lines
            .iter()
            .zip(crops)
            .enumerate()
            .filter(|(_, (line, _))| !fits_a_country(&line.1))
            .map(|(i, (_, crop))| (i, crop.clone()))
            .collect();
        let whole = self.read_whole(unfit, crops.len())?;
        lines
            .into_iter()
            .zip(crops)
            .zip(whole)
            .map(|((line, crop), whole)| {
                let (look, line) = match fits_a_country(&line.1) {
                    true => (Look::Lines, line),
                    false => match self.read_region(crop, REGION_SIDE)? {
                        Some(g) if best_score(&g.candidates) > best_score(&line.1) => {
                            (Look::SecondLook, (g.raw, g.candidates))
                        }
                        _ => (Look::Lines, line),
                    },
                };
                Ok(combine(look, line, whole))
            })
            .collect()
    }

    /// Each crop read whole by the plate reader, one result per crop, in order; all
    /// `None` when the models have no plate reader.
    pub fn read_whole_plates(
        &self,
        crops: &[RgbImage],
    ) -> Result<Vec<Option<PlateText>>, RecognizerError> {
        let reads = self.read_whole(crops.iter().cloned().enumerate().collect(), crops.len())?;
        Ok(reads
            .into_iter()
            .map(|r| r.map(|(raw, scored)| PlateText::from_scored(Look::WholePlate, raw, scored)))
            .collect())
    }

    /// Each of `plates` plates read whole by the plate reader from its cut-outs
    /// (`(plate, image)`, in one batch), the best-scoring read kept; `None` for a
    /// plate with no cut-out, and for every plate when the models have no plate reader.
    fn read_whole(
        &self,
        cut_out: Vec<(usize, RgbImage)>,
        plates: usize,
    ) -> Result<Vec<Option<Read>>, RecognizerError> {
        let mut best: Vec<Option<Read>> = vec![None; plates];
        let Some(reader) = &self.plate_reader else {
            return Ok(best);
        };
        let (owners, crops): (Vec<usize>, Vec<RgbImage>) = cut_out.into_iter().unzip();
        for (i, read) in owners.into_iter().zip(reader.read(&crops)?) {
            let scored = plates::candidates(&read.chars, self.candidates);
            if best[i]
                .as_ref()
                .is_none_or(|b| best_score(&scored) > best_score(&b.1))
            {
                best[i] = Some((read.raw, scored));
            }
        }
        Ok(best)
    }

    /// Cuts out and reads the boxes that may hold a plate line; the others stay
    /// unread (an empty read, no crop). One read and one crop per box.
    fn read_boxes(
        &self,
        img: &RgbImage,
        boxes: &[detect::TextBox],
    ) -> Result<(Vec<LineRead>, Vec<Option<RgbImage>>), RecognizerError> {
        let worth: Vec<usize> = (0..boxes.len())
            .filter(|&i| assemble::worth_reading(&boxes[i]))
            .collect();
        let crops: Vec<RgbImage> = worth
            .iter()
            .map(|&i| geometry::warp_crop(img, &boxes[i].corners))
            .collect();
        let mut reads = vec![LineRead::default(); boxes.len()];
        let mut crop_of = vec![None; boxes.len()];
        for ((&i, read), crop) in worth.iter().zip(self.reader.read(&crops)?).zip(crops) {
            reads[i] = read;
            crop_of[i] = Some(crop);
        }
        Ok((reads, crop_of))
    }

    /// The best plate read in a frame, if it fits no country's format, gets a second look at
    /// its surroundings, scaled up (see [`REGION_SIDE`]); the better reading is kept,
    /// in the frame's pixels. `true` when the second look won.
    fn look_again(
        &self,
        img: &RgbImage,
        g: assemble::Group,
    ) -> Result<(assemble::Group, bool), RecognizerError> {
        if fits_a_country(&g.candidates) {
            return Ok((g, false));
        }
        let h = g.bounds[3] - g.bounds[1];
        let Some([rx0, ry0, rw, rh]) = grown(img, g.bounds, REGION_GROW_X * h, REGION_GROW_Y * h)
        else {
            return Ok((g, false));
        };
        let region = image::imageops::crop_imm(img, rx0, ry0, rw, rh).to_image();
        match self.read_region(&region, REGION_SIDE)? {
            Some(mut better) if best_score(&better.candidates) > best_score(&g.candidates) => {
                let [bx0, by0, bx1, by1] = better.bounds;
                let (dx, dy) = (rx0 as f32, ry0 as f32);
                better.bounds = [bx0 + dx, by0 + dy, bx1 + dx, by1 + dy];
                Ok((better, true))
            }
            _ => Ok((g, false)),
        }
    }

    /// The best plate among the text boxes of a plate-sized image (in its pixels),
    /// detected with a margin around it and its shorter side at `side` detector pixels.
    fn read_region(
        &self,
        region: &RgbImage,
        side: u32,
    ) -> Result<Option<assemble::Group>, RecognizerError> {
        if region.width() < 8 || region.height() < 8 {
            return Ok(None);
        }
        let margin = region.height() / 2;
        let padded = geometry::pad_edges(region, margin);
        // the scale is the region's own, margins aside
        let side = side * padded.height() / region.height();
        let region = &padded;
        let boxes = self.detector.detect_scaled(region, REGION_MAX_SIDE, side)?;
        let (reads, _) = self.read_boxes(region, &boxes)?;
        let shift = margin as f32;
        Ok(assemble::plates(&boxes, &reads, self.candidates, 1)
            .into_iter()
            .next()
            .map(|mut g| {
                let [x0, y0, x1, y1] = g.bounds;
                g.bounds = [x0 - shift, y0 - shift, x1 - shift, y1 - shift];
                g
            }))
    }
}

/// `bounds` grown by `dx` left and right and `dy` above and below, clipped to `img`:
/// `[x, y, width, height]`, or `None` when under 8 pixels either way.
fn grown(img: &RgbImage, [x0, y0, x1, y1]: [f32; 4], dx: f32, dy: f32) -> Option<[u32; 4]> {
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let (rx0, ry0) = (clamp(x0 - dx, img.width()), clamp(y0 - dy, img.height()));
    let (rx1, ry1) = (clamp(x1 + dx, img.width()), clamp(y1 + dy, img.height()));
    (rx1 >= rx0 + 8 && ry1 >= ry0 + 8).then_some([rx0, ry0, rx1 - rx0, ry1 - ry0])
}

/// Where the plate reader looks for a plate found at `bounds`: with a small margin,
/// and with the second look's surroundings.
fn whole_plate_regions(img: &RgbImage, bounds: [f32; 4]) -> Vec<[u32; 4]> {
    let (w, h) = (bounds[2] - bounds[0], bounds[3] - bounds[1]);
    [
        (WHOLE_MARGIN_X * w, WHOLE_MARGIN_Y * h),
        (REGION_GROW_X * h, REGION_GROW_Y * h),
    ]
    .into_iter()
    .filter_map(|(dx, dy)| grown(img, bounds, dx, dy))
    .collect()
}

/// An RGB image from JPEG bytes; anything else is a `Decode` error.
pub fn decode_jpeg(jpeg: &[u8]) -> Result<RgbImage, RecognizerError> {
    Ok(
        image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
            .map_err(|e| RecognizerError::Decode(e.to_string()))?
            .into_rgb8(),
    )
}

/// Whether the best candidate is in a country's plate format.
fn fits_a_country(candidates: &[plates::Scored]) -> bool {
    candidates
        .first()
        .is_some_and(|c| c.candidate.country.is_some())
}

fn best_score(candidates: &[plates::Scored]) -> f32 {
    candidates.first().map_or(0.0, |c| c.score)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizer_is_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Recognizer>();
    }

    #[test]
    fn a_missing_onnx_runtime_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = RecognizerConfig {
            onnxruntime: Some(dir.path().join("libonnxruntime.so")),
            ..RecognizerConfig::default()
        };
        let not_configured = RecognizerConfig::default();
        let junk = dir.path().join("junk.so");
        std::fs::write(&junk, b"not a library").expect("write");
        let unloadable = RecognizerConfig {
            onnxruntime: Some(junk),
            ..RecognizerConfig::default()
        };
        for (cfg, says) in [
            (missing, "does not exist"),
            (not_configured, "no onnx runtime library configured"),
            (unloadable, "failed to load"),
        ] {
            let err = match Recognizer::load(&cfg) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{cfg:?} should not load"),
            };
            for part in [says, "ORT_DYLIB_PATH", "scripts/lib.sh"] {
                assert!(err.contains(part), "{err:?} should say {part:?}");
            }
        }
    }
}
