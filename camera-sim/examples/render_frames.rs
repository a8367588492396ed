//! Writes rendered violations to a folder, to look at them:
//! `cargo run -p kozomol-camera-sim --example render_frames -- OUT_DIR [SEED...]`

use std::time::Instant;

use kozomol_camera_sim::{render_frames, FrameSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: render_frames OUT_DIR [SEED...]")?,
    );
    let mut seeds: Vec<u64> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
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
        println!(
            "seed {seed}: {} {:?} overview {} KB, close-up {} KB, plate at {:?}, {:?}",
            spec.plate,
            spec.kind,
            frames.overview.len() / 1024,
            frames.plate_close_up.len() / 1024,
            frames.plate_box,
            started.elapsed()
        );
        std::fs::write(out.join(format!("{seed}-overview.jpg")), &frames.overview)?;
        std::fs::write(
            out.join(format!("{seed}-plate.jpg")),
            &frames.plate_close_up,
        )?;
    }
    Ok(())
}
