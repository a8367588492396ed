//! Writes rendered violations to a folder, to look at them or to score the
//! recognizer on them:
//! `cargo run -p kozomol-camera-sim --example render_frames -- OUT_DIR [SEED | FIRST..LAST]...`
//!
//! Each seed gives `SEED-overview.jpg` with `SEED-overview.txt` (the plate's box and
//! text in the label format of `kozomol eval-alpr`) and `SEED-plate.jpg`, the
//! close-up.

use std::time::Instant;

use kozomol_camera_sim::{render_frames, FrameSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: render_frames OUT_DIR [SEED | FIRST..LAST]...")?,
    );
    let mut seeds: Vec<u64> = Vec::new();
    for arg in args {
        match arg.split_once("..") {
            Some((first, last)) => seeds.extend(first.parse::<u64>()?..last.parse::<u64>()?),
            None => seeds.push(arg.parse()?),
        }
    }
    if seeds.is_empty() {
        seeds = vec![1, 2, 3];
    }
    std::fs::create_dir_all(&out)?;
    for seed in seeds {
        let spec = FrameSpec::random(
            seed,
            "sim-demo-01",
            "проспект Чуй / проспект Манаса, Бишкек",
            chrono::Utc::now(),
        );
        let started = Instant::now();
        let frames = render_frames(&spec)?;
        let b = frames.plate_box;
        println!(
            "seed {seed}: {} {:?} overview {} KB, close-up {} KB, plate at {b:?}, {:?}",
            spec.plate,
            spec.kind,
            frames.overview.len() / 1024,
            frames.plate_close_up.len() / 1024,
            started.elapsed()
        );
        let overview = format!("{seed}-overview.jpg");
        std::fs::write(out.join(&overview), &frames.overview)?;
        std::fs::write(
            out.join(format!("{seed}-overview.txt")),
            format!(
                "{overview}\t{}\t{}\t{}\t{}\t{}\n",
                b.x,
                b.y,
                b.width,
                b.height,
                spec.plate.canonical()
            ),
        )?;
        std::fs::write(
            out.join(format!("{seed}-plate.jpg")),
            &frames.plate_close_up,
        )?;
    }
    Ok(())
}
