//! The models manifest `models/<name>/model.toml`: which ONNX files make the detector
//! and the reader, and how their inputs and outputs are to be read.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::RecognizerError;

pub const MANIFEST_FILE: &str = "model.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub name: String,
    pub licence: String,
    pub detector: DetectorSpec,
    /// Reads each text line the detector finds.
    pub reader: ReaderSpec,
    /// Reads a whole plate, cut out around the lines assembled into it: a model that
    /// knows plate layouts (a region code stacked over a country mark) and only the
    /// plate alphabet. Optional: without it the line reads alone make the plate.
    #[serde(default)]
    pub plate_reader: Option<ReaderSpec>,
    /// Finds whole plates in a frame (format `boxes`), so that only their
    /// surroundings go through text detection; a frame where none of its plates reads
    /// in a country's format is detected whole. Optional: without it every frame is.
    #[serde(default)]
    pub plate_detector: Option<DetectorSpec>,
}

/// What the detector's output means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorFormat {
    /// Differentiable binarisation (PaddleOCR): a text probability map `[1,1,H,W]`.
    Db,
    /// Boxes `[1,K,5]`: x1, y1, x2, y2, score in input pixels, before NMS; the input
    /// is letterboxed into a `max_side` square.
    Boxes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReaderFormat {
    /// `[N,T,C]` softmax probabilities; class 0 is the CTC blank, alphabet line i is
    /// class i+1.
    Ctc,
}

/// Channel order of the tensor the model wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    Rgb,
    Bgr,
    /// One channel, ITU-R 601 luma of the resized RGB (Pillow's "L"), normalised with
    /// `mean[0]` and `std[0]`.
    Grey,
}

impl Channels {
    /// Planes of the tensor.
    pub fn planes(self) -> usize {
        match self {
            Channels::Grey => 1,
            Channels::Rgb | Channels::Bgr => 3,
        }
    }
}

/// How an image is resized before it becomes a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeFilter {
    /// Bilinear sampling at pixel centres, no widening when shrinking (OpenCV's
    /// `INTER_LINEAR`, as PaddleOCR preprocesses).
    #[default]
    Linear,
    /// A separable triangle filter, widened when shrinking (Pillow's `BILINEAR`,
    /// `image`'s `FilterType::Triangle`).
    Triangle,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    pub file: PathBuf,
    pub format: DetectorFormat,
    pub input_name: String,
    /// db: a longer side above this is scaled down to it, then a shorter side below
    /// `min_side` is scaled up to that, then both sides are rounded to the nearest
    /// multiple of 32. boxes: the side of the square the frame is letterboxed into.
    pub max_side: u32,
    pub min_side: Option<u32>,
    /// db: `min_side` for a plate close-up, whose text is large already (none: the
    /// same as for a scene).
    pub close_up_min_side: Option<u32>,
    /// db: the long side a plate close-up is scaled to for its quick read (the plate
    /// reader on its strongest line), tried first where the camera's read can confirm
    /// it (none: no quick read).
    pub close_up_quick_side: Option<u32>,
    #[serde(default)]
    pub resize_filter: ResizeFilter,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub scale: f32,
    pub channels: Channels,
    /// db: the probability above which a map pixel is text.
    pub bin_threshold: Option<f32>,
    /// db: dilate the binary map with a 2×2 kernel before finding components.
    #[serde(default)]
    pub dilation: bool,
    /// db: a box whose shorter side (map pixels) is below this before growing, or
    /// below this + 2 after, is dropped (default 3).
    pub min_box_side: Option<f32>,
    /// db: the least mean probability of a kept box; boxes: the least score.
    pub box_threshold: f32,
    /// db: how far a box grows, as area × ratio / perimeter.
    pub unclip_ratio: Option<f32>,
    /// boxes: IoU above which the weaker of two boxes is dropped (default 0.45).
    pub nms_iou: Option<f32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSpec {
    pub file: PathBuf,
    pub format: ReaderFormat,
    pub input_name: String,
    pub height: u32,
    /// Crops are resized to `height` keeping their aspect, at most this wide (wider
    /// ones are squeezed), and the tensor is padded right with 0.0 (after
    /// normalisation) to the widest crop of the batch and at least `min_width`.
    pub max_width: u32,
    pub min_width: Option<u32>,
    /// Every crop is stretched to `max_width` × `height`, whatever its shape.
    #[serde(default)]
    pub stretch: bool,
    #[serde(default)]
    pub resize_filter: ResizeFilter,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub scale: f32,
    pub channels: Channels,
    /// One character per line; line i is class i+1.
    pub alphabet: PathBuf,
}

/// How pixels become tensor values: `(pixel / scale - mean[c]) / std[c]`, where `c`
/// counts tensor channels (in the model's channel order).
#[derive(Debug, Clone, Copy)]
pub struct Normalise {
    pub filter: ResizeFilter,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub scale: f32,
    pub channels: Channels,
}

impl Normalise {
    /// Per tensor channel: the source RGB channel, multiplier and offset. Grey has
    /// one plane: its entry 0 normalises the luma (the others are unused).
    pub(crate) fn affine(&self) -> [(usize, f32, f32); 3] {
        let order = match self.channels {
            Channels::Rgb | Channels::Grey => [0, 1, 2],
            Channels::Bgr => [2, 1, 0],
        };
        std::array::from_fn(|c| {
            let mul = 1.0 / (self.scale * self.std[c]);
            (order[c], mul, -self.mean[c] / self.std[c])
        })
    }
}

impl DetectorSpec {
    pub fn normalise(&self) -> Normalise {
        Normalise {
            filter: self.resize_filter,
            mean: self.mean,
            std: self.std,
            scale: self.scale,
            channels: self.channels,
        }
    }
}

impl ReaderSpec {
    pub fn normalise(&self) -> Normalise {
        Normalise {
            filter: self.resize_filter,
            mean: self.mean,
            std: self.std,
            scale: self.scale,
            channels: self.channels,
        }
    }
}

impl ModelManifest {
    /// Reads and checks `dir/model.toml`; file names in it stay relative to `dir`.
    pub fn load(dir: &Path) -> Result<Self, RecognizerError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| RecognizerError::ModelFile {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| RecognizerError::Manifest { path, reason })
    }

    /// Parses a manifest and reports every inconsistency at once.
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: ModelManifest = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!(
                "line {}: {}",
                text[..span.start].matches('\n').count() + 1,
                e.message()
            ),
            None => e.message().to_owned(),
        })?;
        let mut problems = Vec::new();
        let detectors: Vec<(&str, &DetectorSpec)> =
            std::iter::once(("detector", &manifest.detector))
                .chain(
                    manifest
                        .plate_detector
                        .as_ref()
                        .map(|p| ("plate_detector", p)),
                )
                .collect();
        for &(what, d) in &detectors {
            if d.max_side < 32 {
                problems.push(format!("{what}.max_side must be at least 32"));
            }
            if d.format == DetectorFormat::Db {
                if d.bin_threshold.is_none() {
                    problems.push(format!("{what}.bin_threshold is required by format \"db\""));
                }
                if d.unclip_ratio.is_none() {
                    problems.push(format!("{what}.unclip_ratio is required by format \"db\""));
                }
            }
            if d.channels == Channels::Grey {
                problems.push(format!("{what}.channels must be \"rgb\" or \"bgr\""));
            }
        }
        // The quick close-up read scales a close-up for text detection: a db
        // detector's, of a useful size.
        let d = &manifest.detector;
        if d.close_up_quick_side
            .is_some_and(|side| side < 32 || d.format != DetectorFormat::Db)
        {
            problems.push(
                "detector.close_up_quick_side must be at least 32, on a \"db\" detector".to_owned(),
            );
        }
        if manifest
            .plate_detector
            .as_ref()
            .is_some_and(|p| p.close_up_quick_side.is_some())
        {
            problems
                .push("plate_detector.close_up_quick_side is the text detector's alone".to_owned());
        }
        if manifest
            .plate_detector
            .as_ref()
            .is_some_and(|p| p.format != DetectorFormat::Boxes)
        {
            problems.push("plate_detector.format must be \"boxes\"".to_owned());
        }
        let readers: Vec<(&str, &ReaderSpec)> = std::iter::once(("reader", &manifest.reader))
            .chain(manifest.plate_reader.as_ref().map(|r| ("plate_reader", r)))
            .collect();
        for &(what, r) in &readers {
            if r.height < 8 || r.max_width < r.height {
                problems.push(format!(
                    "{what}.height must be at least 8 and {what}.max_width at least the height"
                ));
            }
        }
        let normalisers = detectors
            .iter()
            .map(|&(what, d)| (what, d.normalise()))
            .chain(readers.iter().map(|&(what, r)| (what, r.normalise())));
        for (what, n) in normalisers {
            if n.scale <= 0.0 || n.std.iter().any(|s| *s <= 0.0) {
                problems.push(format!("{what}.scale and {what}.std must be positive"));
            }
        }
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The reader's characters: `chars[i]` is class i+1 (class 0 is the CTC blank).
#[derive(Debug, Clone)]
pub struct Alphabet {
    pub chars: Vec<char>,
}

impl Alphabet {
    pub fn load(path: &Path) -> Result<Self, RecognizerError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecognizerError::ModelFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| RecognizerError::Manifest {
            path: path.to_owned(),
            reason,
        })
    }

    /// One character per line; a line holding a single space is the space class, so
    /// lines are not trimmed (only their line ending is removed).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let mut chars = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let mut it = line.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars.push(c),
                _ => {
                    return Err(format!(
                        "alphabet line {} must hold exactly one character, not {line:?}",
                        i + 1
                    ))
                }
            }
        }
        if chars.is_empty() {
            return Err("the alphabet is empty".to_owned());
        }
        Ok(Alphabet { chars })
    }

    /// Classes the reader outputs: the blank plus one per character.
    pub fn classes(&self) -> usize {
        self.chars.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PPOCR: &str = r#"
name = "ppocr-v4"
licence = "Apache-2.0"

[detector]
file = "det.onnx"
format = "db"
input_name = "x"
max_side = 2000
min_side = 736
resize_filter = "triangle"
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
scale = 255.0
channels = "bgr"
bin_threshold = 0.3
dilation = true
min_box_side = 3
box_threshold = 0.6
unclip_ratio = 1.5

[reader]
file = "rec.onnx"
format = "ctc"
input_name = "x"
height = 48
min_width = 320
max_width = 1280
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]
scale = 255.0
channels = "bgr"
alphabet = "rec_alphabet.txt"
"#;

    #[test]
    fn parses_the_ppocr_manifest() {
        let m = ModelManifest::parse(PPOCR).expect("manifest parses");
        assert_eq!(m.name, "ppocr-v4");
        assert_eq!(m.detector.format, DetectorFormat::Db);
        assert_eq!(m.reader.format, ReaderFormat::Ctc);
        assert_eq!(m.detector.channels, Channels::Bgr);
        assert_eq!(m.reader.alphabet, PathBuf::from("rec_alphabet.txt"));
        assert_eq!(m.detector.resize_filter, ResizeFilter::Triangle);
        assert_eq!(m.reader.resize_filter, ResizeFilter::Linear);
        assert!(m.detector.dilation);
        assert_eq!(
            (m.detector.min_side, m.reader.min_width),
            (Some(736), Some(320))
        );
        // bgr: tensor channel 0 is blue, normalised with mean[0]
        let a = m.detector.normalise().affine();
        assert_eq!(a[0].0, 2);
        assert!((a[0].1 - 1.0 / (255.0 * 0.229)).abs() < 1e-9);
    }

    #[test]
    fn manifest_errors_are_clear() {
        let cases = [
            (
                PPOCR.replace("format = \"db\"", "format = \"yolo\""),
                "unknown variant `yolo`",
            ),
            (
                PPOCR.replace("channels = \"bgr\"", "channels = \"bgra\""),
                "unknown variant `bgra`",
            ),
            (
                PPOCR.replace("licence", "license"),
                "line 3: unknown field `license`",
            ),
            (
                PPOCR.replace("input_name = \"x\"\nmax_side", "max_side"),
                "missing field `input_name`",
            ),
            (
                PPOCR.replace("mean = [0.5, 0.5, 0.5]", "mean = [0.5, 0.5]"),
                "expected an array of length 3",
            ),
            (
                PPOCR.replace("bin_threshold = 0.3\n", ""),
                "bin_threshold is required",
            ),
            (
                PPOCR.replace(
                    "max_side = 2000",
                    "max_side = 2000\nclose_up_quick_side = 16",
                ),
                "close_up_quick_side must be at least 32",
            ),
            (
                PPOCR.replace("std = [0.5, 0.5, 0.5]", "std = [0.5, 0.0, 0.5]"),
                "reader.scale and reader.std must be positive",
            ),
            (
                // a plate detector must give boxes: a text map has no plates in it
                format!(
                    "{PPOCR}\n[plate_detector]\nfile = \"p.onnx\"\nformat = \"db\"\n\
                     input_name = \"image\"\nmax_side = 640\nmean = [0.0, 0.0, 0.0]\n\
                     std = [1.0, 1.0, 1.0]\nscale = 255.0\nchannels = \"rgb\"\n\
                     box_threshold = 0.2\n"
                ),
                "plate_detector.format must be \"boxes\"",
            ),
        ];
        for (text, expected) in cases {
            let err = ModelManifest::parse(&text).expect_err(expected);
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn the_bundled_manifests_parse() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let load = |name: &str| {
            let dir = models.join(name);
            let m = ModelManifest::load(&dir).expect("the bundled manifest parses");
            for r in std::iter::once(&m.reader).chain(&m.plate_reader) {
                let alphabet = Alphabet::load(&dir.join(&r.alphabet)).expect("its alphabet parses");
                assert!(alphabet.chars.contains(&'A') && alphabet.chars.contains(&'0'));
            }
            m
        };
        let ppocr = load("ppocr-v4");
        let ours = load("kozomol-reader");
        assert!(ours
            .plate_reader
            .as_ref()
            .is_some_and(|r| r.stretch && r.channels == Channels::Grey));
        assert!(ours
            .plate_detector
            .as_ref()
            .is_some_and(|p| p.format == DetectorFormat::Boxes
                && models.join("kozomol-reader").join(&p.file).is_file()));
        // the copied sections say what ppocr-v4's say, files and kozomol's own scales
        // for close-ups aside
        let shared = |m: &ModelManifest| {
            let (mut d, mut r) = (m.detector.clone(), m.reader.clone());
            d.close_up_min_side = None;
            d.close_up_quick_side = None;
            for f in [&mut d.file, &mut r.file, &mut r.alphabet] {
                *f = PathBuf::from(f.file_name().expect("a file name"));
            }
            format!("{d:?} {r:?}")
        };
        assert_eq!(shared(&ours), shared(&ppocr));
    }

    #[test]
    fn a_missing_manifest_names_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = ModelManifest::load(dir.path()).expect_err("no manifest");
        assert!(err.to_string().contains("model.toml"), "{err}");
    }

    #[test]
    fn alphabet_keeps_the_space_line() {
        let a = Alphabet::parse("0\n1\nA\n \n").expect("parses");
        assert_eq!(a.chars, vec!['0', '1', 'A', ' ']);
        assert_eq!(a.classes(), 5);
        assert_eq!(
            Alphabet::parse("0\r\nA\r\n").expect("crlf").chars,
            vec!['0', 'A']
        );
        assert!(Alphabet::parse("0\n\nA\n")
            .expect_err("empty line")
            .contains("line 2"));
        assert!(Alphabet::parse("0\nAB\n")
            .expect_err("two chars")
            .contains("line 2"));
    }
}
