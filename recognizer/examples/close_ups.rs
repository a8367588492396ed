//! Benchmark: reads camera-sim plate close-ups (seeds FROM..TO) the quick way
//! (`Recognizer::read_close_up_whole`, the close-up scaled to each LONG_SIDE) and the
//! full way (`View::CloseUp`) on one thread, and prints per way a JSON line: exact
//! reads, exact reads with confidence >= 0.5, median and p95 ms (decoding included).
//!
//! ```sh
//! source scripts/lib.sh && ensure_onnxruntime
//! cargo run --release -p kozomol-recognizer --example close_ups -- FROM TO LONG_SIDE...
//! ```

use std::path::PathBuf;
use std::time::Instant;

use chrono::DateTime;
use kozomol_camera_sim::{render_frames, FrameSpec};
use kozomol_recognizer::{Recognizer, RecognizerConfig, View};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (from, to) = (
        args.first().copied().unwrap_or(1000),
        args.get(1).copied().unwrap_or(1100),
    );
    let scales: Vec<u32> = args.iter().skip(2).map(|&s| s as u32).collect();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = RecognizerConfig {
        models_dir: repo.join("models/kozomol-reader"),
        onnxruntime: std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
        threads: 1,
        ..RecognizerConfig::default()
    };
    let recognizer = Recognizer::load(&cfg)?;
    let mut close_ups = Vec::new();
    for seed in from..to {
        let at = DateTime::from_timestamp(1_795_000_000 + seed as i64 * 61, 0).ok_or("time")?;
        let f = render_frames(&FrameSpec::random(
            seed,
            "sim-bishkek-01",
            "проспект Чуй, Бишкек",
            at,
        ))?;
        close_ups.push((f.spec.plate.canonical(), f.plate_close_up));
    }
    let report = |name: String, mut ms: Vec<f64>, exact: usize, confident: usize| {
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        println!(
            "{{\"way\":\"{name}\",\"close_ups\":{},\"exact\":{exact},\"confident_0_5_exact\":{confident},\"median_ms\":{:.1},\"p95_ms\":{:.1}}}",
            ms.len(),
            pick(0.5),
            pick(0.95)
        );
    };
    for &side in &scales {
        let (mut ms, mut exact, mut confident) = (Vec::new(), 0, 0);
        for (truth, jpeg) in &close_ups {
            let start = Instant::now();
            let img = image::load_from_memory(jpeg)?.into_rgb8();
            let read = recognizer.read_close_up_whole(&img, side)?;
            ms.push(start.elapsed().as_secs_f64() * 1000.0);
            let text = read.as_ref().map_or("", |r| r.text.text.as_str());
            exact += usize::from(text == truth);
            confident +=
                usize::from(text == truth && read.is_some_and(|r| r.text.confidence >= 0.5));
        }
        report(format!("whole plate at {side}"), ms, exact, confident);
    }
    let (mut ms, mut exact, mut confident) = (Vec::new(), 0, 0);
    for (truth, jpeg) in &close_ups {
        let start = Instant::now();
        let r = recognizer.recognize_jpeg(jpeg, View::CloseUp)?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let best = r.plates.first();
        let text = best.map_or("", |p| p.text.text.as_str());
        exact += usize::from(text == truth);
        confident += usize::from(text == truth && best.is_some_and(|p| p.text.confidence >= 0.5));
    }
    report("close-up".into(), ms, exact, confident);
    Ok(())
}
