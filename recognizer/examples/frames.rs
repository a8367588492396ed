//! Benchmark: renders camera-sim violation frames (1920×1080 JPEG) and reads them end
//! to end (decode, detect, read), then reads the plates cut from the close-ups in one
//! batch. Prints one line per frame and a JSON summary last.
//!
//! ```sh
//! source scripts/lib.sh && ensure_onnxruntime
//! cargo run --release -p kozomol-recognizer --example frames -- [FRAMES] [MODELS_DIR] [THREADS]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use chrono::DateTime;
use kozomol_camera_sim::{render_frames, FrameSpec};
use kozomol_recognizer::{Recognizer, RecognizerConfig, View};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let frames: u64 = args.first().map_or(Ok(20), |a| a.parse())?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = RecognizerConfig {
        models_dir: args
            .get(1)
            .map_or_else(|| repo.join("models/kozomol-reader"), PathBuf::from),
        onnxruntime: std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
        threads: args.get(2).map_or(Ok(2), |a| a.parse())?,
        ..RecognizerConfig::default()
    };
    let recognizer = Recognizer::load(&cfg)?;
    let (mut exact, mut ms, mut crops, mut truths) = (0, Vec::new(), Vec::new(), Vec::new());
    for seed in 0..frames {
        let at = DateTime::from_timestamp(1_795_000_000 + seed as i64 * 61, 0).ok_or("time")?;
        let f = render_frames(&FrameSpec::random(
            seed,
            "sim-bishkek-01",
            "проспект Чуй, Бишкек",
            at,
        ))?;
        let truth = f.spec.plate.canonical();
        let start = Instant::now();
        let r = recognizer.recognize_jpeg(&f.overview, View::Scene)?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let read = r.plates.first().map_or("", |p| p.text.text.as_str());
        exact += usize::from(read == truth);
        println!(
            "{seed}\t{truth}\t{read}\t{:.3}\tdecode {:.0} detect {:.0} read {:.0} ms",
            r.plates.first().map_or(0.0, |p| p.text.confidence),
            r.decode_ms,
            r.detect_ms,
            r.read_ms
        );
        let close = image::load_from_memory(&f.plate_close_up)?.into_rgb8();
        let b = f.plate_box;
        let (x, y) = (b.x.min(b.width / 2) * 2, b.y.min(b.height * 3 / 2) * 2);
        crops.push(image::imageops::crop_imm(&close, x, y, b.width * 2, b.height * 2).to_image());
        truths.push(truth);
    }
    let start = Instant::now();
    let texts = recognizer.read_crops(&crops)?;
    let crop_s = start.elapsed().as_secs_f64();
    let main_line = texts
        .iter()
        .zip(&truths)
        .filter(|(t, truth)| truth.ends_with(&t.text) && t.text.len() >= 6)
        .count();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "{{\"frames\":{frames},\"exact_rate\":{:.3},\"median_ms\":{:.1},\"p95_ms\":{:.1},\"threads\":{},\
         \"plate_crops_per_s\":{:.1},\"plate_crop_main_line_rate\":{:.3}}}",
        exact as f64 / frames as f64,
        pick(0.5),
        pick(0.95),
        cfg.threads,
        crops.len() as f64 / crop_s,
        main_line as f64 / frames as f64,
    );
    Ok(())
}
