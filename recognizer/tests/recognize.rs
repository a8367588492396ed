//! The recognizer on the bundled models and a real ONNX Runtime, reading plates the
//! camera simulator renders. Skips (saying why) where the library or the models are
//! absent; `source scripts/lib.sh && ensure_onnxruntime` provides the library.

use std::path::PathBuf;
use std::time::Instant;

use chrono::DateTime;
use image::RgbImage;
use kozomol_camera_sim::{render_frames, FrameSpec, RenderedFrames};
use kozomol_recognizer::{Look, Recognizer, RecognizerConfig, RecognizerError, View};

const SEEDS: u64 = 10;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The library (ORT_DYLIB_PATH, or where scripts/lib.sh unpacks it) and the models.
fn config() -> Option<RecognizerConfig> {
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .or_else(|| {
            let dir = repo().join(".cache/onnxruntime/lib");
            std::fs::read_dir(dir)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so"))
                })
        })
        .filter(|p| p.is_file());
    let models_dir = repo().join("models/kozomol-reader");
    match library {
        None => println!(
            "skipped: no onnx runtime library (source scripts/lib.sh && ensure_onnxruntime)"
        ),
        Some(_) if !models_dir.join("model.toml").is_file() => {
            println!("skipped: no models in {}", models_dir.display())
        }
        Some(library) => {
            return Some(RecognizerConfig {
                models_dir,
                onnxruntime: Some(library),
                threads: 2,
                ..RecognizerConfig::default()
            })
        }
    }
    None
}

fn frames(seed: u64) -> RenderedFrames {
    let at = DateTime::from_timestamp(1_795_000_000 + seed as i64 * 61, 0).expect("time");
    let spec = FrameSpec::random(
        seed,
        "sim-bishkek-01",
        "проспект Чуй / улица Абдрахманова, Бишкек",
        at,
    );
    render_frames(&spec).expect("frames render")
}

fn decode(jpeg: &[u8]) -> RgbImage {
    image::load_from_memory(jpeg)
        .expect("rendered JPEG decodes")
        .into_rgb8()
}

#[test]
fn reads_rendered_plates() {
    let Some(cfg) = config() else { return };
    let recognizer = Recognizer::load(&cfg).expect("recognizer loads");
    assert_eq!(recognizer.model_name(), "kozomol-reader-v2");
    let (mut scene_hits, mut close_hits, mut tight_hits, mut quick_hits) = (0, 0, 0, 0);
    let quick_side = recognizer
        .quick_close_up_side()
        .expect("the models read close-ups quickly");
    let mut frame_ms = Vec::new();
    let mut crops = Vec::new();
    let mut truths = Vec::new();
    for seed in 0..SEEDS {
        let f = frames(seed);
        let truth = f.spec.plate.canonical();
        let start = Instant::now();
        let r = recognizer
            .recognize_jpeg(&f.overview, View::Scene)
            .expect("overview reads");
        frame_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!((r.width, r.height), (1920, 1080));
        let best = r.plates.first();
        let read = best.map_or("", |p| p.text.text.as_str());
        scene_hits += usize::from(read == truth);
        println!(
            "seed {seed}: {truth} read {read:?} (raw {:?}, conf {:.3}, country {:?}) at {:?}; \
             decode {:.0} + detect {:.0} + read {:.0} ms",
            best.map_or("", |p| p.text.raw.as_str()),
            best.map_or(0.0, |p| p.text.confidence),
            best.and_then(|p| p.text.country),
            best.map(|p| p.bbox),
            r.decode_ms,
            r.detect_ms,
            r.read_ms,
        );
        if let Some(p) = best.filter(|_| read == truth) {
            // the box lies on the rendered plate
            let b = f.plate_box;
            let (cx, cy) = (p.bbox.x + p.bbox.width / 2, p.bbox.y + p.bbox.height / 2);
            assert!(
                cx >= b.x && cx <= b.x + b.width && cy >= b.y && cy <= b.y + b.height,
                "{p:?} vs {b:?}"
            );
            assert_eq!(p.text.candidates[0].text, truth);
            assert_eq!(p.text.char_confidences.len(), truth.len());
        }
        // the close-up shows the plate with its surroundings (2×): detect and read it
        let close = recognizer
            .recognize_jpeg(&f.plate_close_up, View::CloseUp)
            .expect("close-up reads");
        let close_read = close.plates.first().map_or("", |p| p.text.text.as_str());
        close_hits += usize::from(close_read == truth);
        // read quickly: the plate reader on its strongest line, which never decides
        // alone (only an agreeing camera read lets it)
        let close = decode(&f.plate_close_up);
        let quick = recognizer
            .read_close_up_whole(&close, quick_side)
            .expect("quick read");
        let quick_read = quick.as_ref().map_or("", |p| p.text.text.as_str());
        quick_hits += usize::from(quick_read == truth);
        assert!(quick.as_ref().is_none_or(|p| !p.text.may_decide_alone()));
        println!("  quick close-up read {quick_read:?}");
        // and the plate alone, cut from the close-up (margins as camera-sim's close_up)
        let (mx, my) = (f.plate_box.width / 2, f.plate_box.height * 3 / 2);
        let (px, py) = (f.plate_box.x.min(mx) * 2, f.plate_box.y.min(my) * 2);
        crops.push(
            image::imageops::crop_imm(
                &close,
                px,
                py,
                f.plate_box.width * 2,
                f.plate_box.height * 2,
            )
            .to_image(),
        );
        println!("  close-up read {close_read:?}");
        truths.push(truth);
    }
    let start = Instant::now();
    let texts = recognizer.read_crops(&crops).expect("crops read");
    let crops_ms = start.elapsed().as_secs_f64() * 1000.0;
    for (truth, tight) in truths.iter().zip(&texts) {
        // read as one line, the number comes without the region code stacked over
        // "KG"; the second look at the crop's text boxes joins it
        tight_hits += usize::from(&tight.text == truth);
        println!(
            "plate crop: {truth} read {:?} (raw {:?}, conf {:.3})",
            tight.text, tight.raw, tight.confidence
        );
    }
    frame_ms.sort_by(f64::total_cmp);
    println!(
        "1920x1080 frames end to end: median {:.0} ms, max {:.0} ms ({} threads); \
         {} crops read in {crops_ms:.0} ms ({:.1} ms per crop)",
        frame_ms[frame_ms.len() / 2],
        frame_ms[frame_ms.len() - 1],
        cfg.threads,
        crops.len(),
        crops_ms / crops.len() as f64,
    );
    println!(
        "exact: scenes {scene_hits}/{SEEDS}, close-ups {close_hits}/{SEEDS} (quickly \
         {quick_hits}/{SEEDS}), plate crops {tight_hits}/{SEEDS}"
    );
    let most = |hits: usize| hits * 10 >= SEEDS as usize * 7;
    assert!(most(scene_hits), "scenes read {scene_hits}/{SEEDS}");
    assert!(most(close_hits), "close-ups read {close_hits}/{SEEDS}");
    assert!(
        most(quick_hits),
        "close-ups read quickly {quick_hits}/{SEEDS}"
    );
    assert!(most(tight_hits), "plate crops read {tight_hits}/{SEEDS}");
}

/// Where the plate detector finds nothing (here: its threshold is out of reach), the
/// frame is detected whole and its plate read as well; where it finds the plate, the
/// text comes from its box, read as a second look (never as a frame's first-look lines).
#[test]
fn a_plate_the_plate_detector_misses_is_found_in_the_whole_frame() {
    let Some(cfg) = config() else { return };
    let models = cfg.models_dir.canonicalize().expect("models folder");
    let manifest = std::fs::read_to_string(models.join("model.toml")).expect("manifest");
    let at = |key: &str| format!("{key} = \"{}/", models.display());
    let blind_manifest = manifest
        .replace("file = \"", &at("file"))
        .replace("alphabet = \"", &at("alphabet"))
        .replace("box_threshold = 0.2 ", "box_threshold = 1.01 ");
    assert!(blind_manifest.contains("box_threshold = 1.01 "));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("model.toml"), blind_manifest).expect("write manifest");
    let sighted = Recognizer::load(&cfg).expect("recognizer loads");
    let blind = Recognizer::load(&RecognizerConfig {
        models_dir: dir.path().to_owned(),
        ..cfg.clone()
    })
    .expect("the blind recognizer loads");
    for seed in 0..3 {
        let f = frames(seed);
        let truth = f.spec.plate.canonical();
        let best = |r: &Recognizer| {
            let read = r
                .recognize_jpeg(&f.overview, View::Scene)
                .expect("overview reads");
            read.plates.into_iter().next().expect("a plate").text
        };
        let (seen, whole) = (best(&sighted), best(&blind));
        println!(
            "seed {seed}: {truth} read {:?} ({:?}), whole frame {:?} ({:?})",
            seen.text, seen.look, whole.text, whole.look
        );
        assert_eq!(seen.text, truth);
        assert_ne!(seen.look, Look::Lines);
        assert_eq!(
            (whole.text.as_str(), whole.look),
            (truth.as_str(), Look::Lines)
        );
    }
}

#[test]
fn bad_frames_are_errors() {
    let Some(cfg) = config() else { return };
    let recognizer = Recognizer::load(&cfg).expect("recognizer loads");
    let jpeg = frames(1).overview;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0";
    let cases: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("text", b"this is not a picture"),
        ("png", png),
        ("truncated jpeg", &jpeg[..600]),
    ];
    for (what, bytes) in cases {
        match recognizer.recognize_jpeg(bytes, View::Scene) {
            Err(RecognizerError::Decode(e)) => println!("{what}: {e}"),
            other => panic!("{what} should not decode: {other:?}"),
        }
    }
    assert!(matches!(
        recognizer.recognize_image(&RgbImage::new(4, 4), View::Scene),
        Err(RecognizerError::ImageTooSmall { .. })
    ));
    // the same recognizer serves several threads at once
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| recognizer.recognize_jpeg(&jpeg, View::Scene)))
            .collect();
        for h in handles {
            let r = h.join().expect("thread").expect("reads");
            let json = serde_json::to_value(&r).expect("serialises");
            assert!(json["plates"].is_array() && json["plates"][0].get("crop").is_none());
        }
    });
}

/// The line reader (one line per crop) and the plate reader (each crop whole) give the
/// texts that each model's Python reference (models/ppocr-v4/eval_reference.py,
/// models/plate_reader/evaluate.py: Pillow, onnxruntime) wrote to its reference.json
/// for the first alpr-dev crops.
#[test]
fn reads_like_the_python_reference() {
    let Some(cfg) = config() else { return };
    let crops_dir = repo().join("../shared/data/alpr-dev/crops");
    if !crops_dir.is_dir() {
        println!("skipped: needs {}", crops_dir.display());
        return;
    }
    let recognizer = Recognizer::load(&cfg).expect("recognizer loads");
    type Read = fn(&Recognizer, &[RgbImage]) -> Vec<String>;
    let lines: Read = |r, crops| {
        let reads = r.read_lines(crops).expect("crops read");
        reads.into_iter().map(|t| t.raw).collect()
    };
    let whole: Read = |r, crops| {
        let reads = r.read_whole_plates(crops).expect("crops read");
        reads
            .into_iter()
            .map(|t| t.expect("the models have a plate reader").raw)
            .collect()
    };
    for (reference, read) in [
        (repo().join("models/ppocr-v4/reference.json"), lines),
        (cfg.models_dir.join("reference.json"), whole),
    ] {
        let text = std::fs::read_to_string(&reference).expect("reference.json is bundled");
        let reference: serde_json::Value =
            serde_json::from_str(&text).expect("reference.json parses");
        let entries = reference["crops"].as_array().expect("a list of crops");
        let crops: Vec<RgbImage> = entries
            .iter()
            .map(|e| {
                let file = e["file"].as_str().expect("file name");
                image::open(crops_dir.join(file))
                    .expect("crop decodes")
                    .into_rgb8()
            })
            .collect();
        let reads = read(&recognizer, &crops);
        let mut same = 0;
        for (e, read) in entries.iter().zip(&reads) {
            let want = e["text"].as_str().expect("text");
            same += usize::from(read == want);
            println!("{}: python {want:?}, rust {read:?}", e["file"]);
        }
        println!(
            "same text as the python reference: {same}/{}",
            entries.len()
        );
        // JPEG decoders may differ by a level here and there
        assert!(
            same + 1 >= entries.len(),
            "{same}/{} texts as the reference",
            entries.len()
        );
    }
}
