//! The overview frame: a road scene with a car whose plate is readable, sensor noise,
//! and the text overlay cameras burn in; plus the plate close-up cut from it.

use ab_glyph::PxScale;
use chrono::{DateTime, FixedOffset, Utc};
use image::imageops::{self, FilterType};
use image::RgbImage;
use kozomol_core::{Measurement, ViolationKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::canvas::{
    fill_convex, fill_ellipse, fill_rect, fill_rounded_rect, lerp_color, shade, vertical_gradient,
    Color, NoiseSource,
};
use crate::font::draw_text;
use crate::plate_render::{draw_plate, PLATE_MM};
use crate::{jpeg, KgPlate, SimError};

pub const OVERVIEW_WIDTH: u32 = 1920;
pub const OVERVIEW_HEIGHT: u32 = 1080;
/// Tuned so that overviews land at 100-300 KB and close-ups at 30-80 KB.
const OVERVIEW_QUALITY: u8 = 84;
const CLOSE_UP_QUALITY: u8 = 93;
const NOISE_AMPLITUDE: i16 = 2;
/// Bishkek's offset from UTC, for the burned-in time (cameras show local time).
const BISHKEK_UTC_OFFSET_S: i32 = 6 * 3600;

/// Everything a rendered violation depends on; the same spec renders the same bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameSpec {
    pub seed: u64,
    pub plate: KgPlate,
    /// Burned into the overlay.
    pub camera_id: String,
    pub captured_at: DateTime<Utc>,
    pub kind: ViolationKind,
    pub measurement: Measurement,
    /// Burned into the overlay (the site's address).
    pub location: String,
}

impl FrameSpec {
    /// A violation drawn from `seed`: plate, kind (with the weights of
    /// [`random_kind`](crate::random_kind)) and measurement.
    pub fn random(seed: u64, camera_id: &str, location: &str, captured_at: DateTime<Utc>) -> Self {
        // a stream apart from the scene's own, so the plate does not echo the scene
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6b67_706c_6174_6521);
        let kind = crate::random_kind(&mut rng);
        FrameSpec {
            seed,
            plate: crate::random_plate(&mut rng),
            camera_id: camera_id.to_owned(),
            captured_at,
            kind,
            measurement: crate::random_measurement(kind, &mut rng),
            location: location.to_owned(),
        }
    }
}

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The two frames of one violation.
#[derive(Clone, Debug)]
pub struct RenderedFrames {
    pub spec: FrameSpec,
    /// 1920×1080 JPEG.
    pub overview: Vec<u8>,
    /// JPEG of the plate and its surroundings, upscaled 2×.
    pub plate_close_up: Vec<u8>,
    /// Where the plate is in the overview.
    pub plate_box: PixelBox,
}

/// Renders and encodes both frames. CPU-bound (tens to hundreds of milliseconds):
/// async callers run it on a blocking thread.
pub fn render_frames(spec: &FrameSpec) -> Result<RenderedFrames, SimError> {
    let (overview, plate_box) = paint_overview(spec);
    let close_up = close_up(&overview, plate_box);
    Ok(RenderedFrames {
        spec: spec.clone(),
        overview: jpeg::encode(&overview, OVERVIEW_QUALITY)?,
        plate_close_up: jpeg::encode(&close_up, CLOSE_UP_QUALITY)?,
        plate_box,
    })
}

/// A simple perspective for the road: a ground point `X` metres right of the camera
/// axis, seen at `u` pixels per metre (u = focal / distance), lands at
/// (`vanish_x + u·X`, `horizon + u·eye_height`).
struct Road {
    vanish_x: f32,
    horizon: f32,
    eye_height: f32,
    /// focal length in pixels: turns distances in metres into `u`.
    focal: f32,
}

impl Road {
    fn at(&self, lateral_m: f32, distance_m: f32) -> (f32, f32) {
        let u = self.focal / distance_m;
        (
            self.vanish_x + u * lateral_m,
            self.horizon + u * self.eye_height,
        )
    }

    /// The distance at which the ground meets the bottom of the frame.
    fn nearest_visible(&self) -> f32 {
        self.focal * self.eye_height / (OVERVIEW_HEIGHT as f32 - self.horizon)
    }

    /// A flat strip on the road, `lateral` metres wide, from `near` to `far` metres.
    fn strip(&self, (left, right): (f32, f32), (near, far): (f32, f32)) -> [(f32, f32); 4] {
        [
            self.at(left, near),
            self.at(right, near),
            self.at(right, far),
            self.at(left, far),
        ]
    }
}

const CAR_COLOURS: [Color; 9] = [
    [236, 236, 234],
    [190, 193, 198],
    [128, 131, 137],
    [28, 29, 33],
    [150, 24, 30],
    [32, 62, 128],
    [30, 72, 50],
    [205, 190, 160],
    [95, 60, 40],
];
const CAR_WIDTH_MM: f32 = 1780.0;
const LANE_WIDTH_M: f32 = 3.5;
/// The car stands this far from the camera; it fixes the road's focal length.
const CAR_DISTANCE_M: f32 = 12.0;

fn paint_overview(spec: &FrameSpec) -> (RgbImage, PixelBox) {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut img = RgbImage::new(OVERVIEW_WIDTH, OVERVIEW_HEIGHT);

    // the car fixes the scale: its plate is 180-260 px wide, as on real overviews
    let plate_width: f32 = rng.gen_range(190.0..250.0);
    let px_per_mm = plate_width / PLATE_MM.0;
    let car_width = CAR_WIDTH_MM * px_per_mm;
    let car_ground: f32 = rng.gen_range(950.0..1030.0);
    let car_x: f32 = rng.gen_range(760.0..1160.0);
    let horizon: f32 = rng.gen_range(250.0..330.0);
    let lane_offset = if rng.gen_bool(0.5) { -0.5 } else { 0.5 } * LANE_WIDTH_M;
    let u_car = car_width / (CAR_WIDTH_MM / 1000.0);
    let road = Road {
        vanish_x: car_x - u_car * lane_offset,
        horizon,
        eye_height: (car_ground - horizon) / u_car,
        focal: u_car * CAR_DISTANCE_M,
    };

    paint_sky(&mut img, &mut rng, horizon);
    paint_skyline(&mut img, &mut rng, horizon);
    paint_road(&mut img, &mut rng, &road, spec.kind);
    let plate_box = paint_car(&mut img, &mut rng, spec, (car_x, car_ground), px_per_mm);
    NoiseSource::new(rng.gen()).apply(&mut img, NOISE_AMPLITUDE);
    paint_overlay(&mut img, spec);
    if matches!(spec.kind, ViolationKind::RedLight | ViolationKind::StopLine) {
        paint_signal_inset(&mut img, true);
    }
    (img, plate_box)
}

fn paint_sky(img: &mut RgbImage, rng: &mut StdRng, horizon: f32) {
    let top: Color = [
        rng.gen_range(70..110),
        rng.gen_range(120..155),
        rng.gen_range(185..220),
    ];
    let bottom: Color = [
        rng.gen_range(185..215),
        rng.gen_range(205..225),
        rng.gen_range(225..240),
    ];
    vertical_gradient(img, 0.0, horizon, top, bottom);
    for _ in 0..rng.gen_range(3..8) {
        let (cx, cy) = (
            rng.gen_range(0.0..1920.0),
            rng.gen_range(20.0..horizon * 0.6),
        );
        for _ in 0..rng.gen_range(4..9) {
            let centre = (
                cx + rng.gen_range(-120.0..120.0),
                cy + rng.gen_range(-25.0..25.0),
            );
            let radii = (rng.gen_range(50.0..130.0), rng.gen_range(18.0..40.0));
            fill_ellipse(
                img,
                centre,
                radii,
                [246, 247, 250],
                rng.gen_range(0.15..0.4),
            );
        }
    }
}

/// Buildings with windows and a row of trees along the horizon.
fn paint_skyline(img: &mut RgbImage, rng: &mut StdRng, horizon: f32) {
    let mut x = -40.0;
    while x < 1960.0 {
        let width: f32 = rng.gen_range(90.0..280.0);
        let height: f32 = rng.gen_range(50.0..horizon * 0.8);
        let wall: Color = lerp_color([150, 145, 135], [215, 205, 185], rng.gen());
        let top = horizon - height;
        fill_rect(img, x, top, width, height + 2.0, wall);
        let glass: Color = [
            rng.gen_range(60..90),
            rng.gen_range(80..110),
            rng.gen_range(100..130),
        ];
        let mut wy = top + 10.0;
        while wy + 12.0 < horizon - 8.0 {
            let mut wx = x + 8.0;
            while wx + 12.0 < x + width - 6.0 {
                let lit = rng.gen_range(0.7..1.25);
                fill_rect(img, wx, wy, 11.0, 12.0, shade(glass, lit));
                wx += 21.0;
            }
            wy += 22.0;
        }
        x += width + rng.gen_range(0.0..30.0);
    }
    for _ in 0..rng.gen_range(12..24) {
        let centre = (
            rng.gen_range(-50.0..1970.0),
            horizon - rng.gen_range(10.0..45.0),
        );
        let radius = rng.gen_range(25.0..70.0);
        let green: Color = [
            rng.gen_range(40..75),
            rng.gen_range(80..120),
            rng.gen_range(35..60),
        ];
        fill_rect(
            img,
            centre.0 - 4.0,
            centre.1,
            8.0,
            horizon - centre.1,
            [70, 55, 40],
        );
        fill_ellipse(img, centre, (radius, radius * 0.9), green, 0.95);
    }
}

fn paint_road(img: &mut RgbImage, rng: &mut StdRng, road: &Road, kind: ViolationKind) {
    let near_asphalt: Color = [
        rng.gen_range(58..72),
        rng.gen_range(58..72),
        rng.gen_range(62..76),
    ];
    vertical_gradient(
        img,
        road.horizon,
        OVERVIEW_HEIGHT as f32,
        [112, 112, 116],
        near_asphalt,
    );

    let near = road.nearest_visible() * 0.9;
    let far = road.focal * 40.0;
    let half_road = 3.0 * LANE_WIDTH_M;
    // pavements and kerbs on both sides
    let pavement: Color = [
        rng.gen_range(150..170),
        rng.gen_range(145..160),
        rng.gen_range(130..145),
    ];
    fill_convex(
        img,
        &road.strip((-half_road - 40.0, -half_road - 0.3), (near, far)),
        pavement,
        1.0,
    );
    fill_convex(
        img,
        &road.strip((half_road + 0.3, half_road + 40.0), (near, far)),
        pavement,
        1.0,
    );
    fill_convex(
        img,
        &road.strip((-half_road - 0.3, -half_road), (near, far)),
        [200, 200, 195],
        1.0,
    );
    fill_convex(
        img,
        &road.strip((half_road, half_road + 0.3), (near, far)),
        [200, 200, 195],
        1.0,
    );

    // patches and wear on the asphalt
    for _ in 0..rng.gen_range(20..40) {
        let lateral = rng.gen_range(-half_road..half_road);
        let distance = rng.gen_range(near..near * 6.0);
        let (x, y) = road.at(lateral, distance);
        let u = road.focal / distance;
        let tone = if rng.gen_bool(0.6) {
            [40, 40, 44]
        } else {
            [120, 120, 122]
        };
        fill_ellipse(
            img,
            (x, y),
            (u * rng.gen_range(0.2..0.9), u * rng.gen_range(0.03..0.15)),
            tone,
            0.18,
        );
    }

    // lane markings: dashed between lanes, solid at the edges
    let line = 0.12;
    let paint: Color = [232, 232, 226];
    for edge in [-half_road + 0.2, half_road - 0.2] {
        fill_convex(
            img,
            &road.strip((edge - line / 2.0, edge + line / 2.0), (near, far)),
            paint,
            0.9,
        );
    }
    let phase: f32 = rng.gen_range(0.0..9.0);
    for lane_line in [-2.0, -1.0, 0.0, 1.0, 2.0].map(|n| n * LANE_WIDTH_M) {
        let mut start = near - phase;
        while start < 150.0 {
            let span = (start.max(near * 0.5), start + 3.0);
            fill_convex(
                img,
                &road.strip((lane_line - line / 2.0, lane_line + line / 2.0), span),
                paint,
                0.9,
            );
            start += 9.0;
        }
    }

    if matches!(kind, ViolationKind::RedLight | ViolationKind::StopLine) {
        // the car has crossed the stop line, which now lies behind it
        let stop = CAR_DISTANCE_M + rng.gen_range(2.5..6.0);
        fill_convex(
            img,
            &road.strip((-half_road, half_road), (stop, stop + 0.4)),
            paint,
            0.95,
        );
    }
}

/// The signal head's state, inset in the top-right corner as red-light cameras
/// compose it (the signal itself is outside the plate camera's narrow view).
fn paint_signal_inset(img: &mut RgbImage, red: bool) {
    let (x, y, w, h) = (OVERVIEW_WIDTH as f32 - 110.0, 20.0, 80.0, 210.0);
    fill_rect(img, x - 6.0, y - 6.0, w + 12.0, h + 12.0, [0, 0, 0]);
    fill_rounded_rect(img, (x, y, w, h), 12.0, [30, 31, 34], 1.0);
    let lamps: [(Color, bool); 3] = [
        ([235, 35, 30], red),
        ([240, 190, 20], false),
        ([40, 220, 90], !red),
    ];
    for (i, (colour, lit)) in lamps.into_iter().enumerate() {
        let centre = (x + w / 2.0, y + 38.0 + 67.0 * i as f32);
        let colour = if lit { colour } else { shade(colour, 0.22) };
        fill_ellipse(img, centre, (27.0, 27.0), colour, 1.0);
    }
}

/// A car seen from the front, its plate on the bumper; returns the plate's box.
fn paint_car(
    img: &mut RgbImage,
    rng: &mut StdRng,
    spec: &FrameSpec,
    (cx, ground): (f32, f32),
    s: f32,
) -> PixelBox {
    let w = CAR_WIDTH_MM * s;
    let mm = |v: f32| v * s;
    let body = CAR_COLOURS[rng.gen_range(0..CAR_COLOURS.len())];

    fill_ellipse(
        img,
        (cx, ground - mm(10.0)),
        (w * 0.6, mm(110.0)),
        [15, 15, 18],
        0.55,
    );
    for side in [-1.0, 1.0] {
        let wheel = (
            cx + side * w * 0.36 - w * 0.065,
            ground - mm(330.0),
            w * 0.13,
            mm(330.0),
        );
        fill_rounded_rect(img, wheel, mm(40.0), [22, 22, 24], 1.0);
    }
    // cabin and windscreen
    let cabin = [
        (cx - w * 0.33, ground - mm(1450.0)),
        (cx + w * 0.33, ground - mm(1450.0)),
        (cx + w * 0.47, ground - mm(760.0)),
        (cx - w * 0.47, ground - mm(760.0)),
    ];
    fill_convex(img, &cabin, shade(body, 0.92), 1.0);
    let glass = [
        (cx - w * 0.29, ground - mm(1400.0)),
        (cx + w * 0.29, ground - mm(1400.0)),
        (cx + w * 0.42, ground - mm(810.0)),
        (cx - w * 0.42, ground - mm(810.0)),
    ];
    fill_convex(img, &glass, [38, 46, 56], 1.0);
    let glare = [
        (cx - w * 0.05, ground - mm(1400.0)),
        (cx + w * 0.12, ground - mm(1400.0)),
        (cx - w * 0.08, ground - mm(810.0)),
        (cx - w * 0.28, ground - mm(810.0)),
    ];
    fill_convex(img, &glare, [200, 210, 220], 0.18);
    // a driver's silhouette behind the glass
    fill_ellipse(
        img,
        (cx - w * 0.17, ground - mm(1130.0)),
        (mm(110.0), mm(140.0)),
        [20, 22, 26],
        0.7,
    );
    fill_rounded_rect(
        img,
        (cx - w * 0.27, ground - mm(1010.0), w * 0.2, mm(200.0)),
        mm(60.0),
        [20, 22, 26],
        0.7,
    );
    for side in [-1.0, 1.0] {
        let mirror = (
            cx + side * w * 0.5 - mm(60.0),
            ground - mm(900.0),
            mm(120.0),
            mm(85.0),
        );
        fill_rounded_rect(img, mirror, mm(25.0), shade(body, 0.8), 1.0);
    }

    // front: bonnet edge, lights, grille, bumper, intake
    fill_rounded_rect(
        img,
        (cx - w / 2.0, ground - mm(780.0), w, mm(640.0)),
        mm(100.0),
        body,
        1.0,
    );
    fill_rect(
        img,
        cx - w * 0.46,
        ground - mm(770.0),
        w * 0.92,
        mm(10.0).max(1.0),
        shade(body, 0.7),
    );
    for side in [-1.0, 1.0] {
        let lamp = (
            cx + side * w * 0.34 - w * 0.1,
            ground - mm(690.0),
            w * 0.2,
            mm(120.0),
        );
        fill_rounded_rect(img, lamp, mm(40.0), [214, 220, 226], 1.0);
        let inner = (
            lamp.0 + lamp.2 * 0.15,
            lamp.1 + lamp.3 * 0.25,
            lamp.2 * 0.7,
            lamp.3 * 0.5,
        );
        fill_rounded_rect(img, inner, mm(20.0), [250, 250, 244], 1.0);
        let fog = (cx + side * w * 0.36, ground - mm(260.0));
        fill_ellipse(img, fog, (mm(55.0), mm(35.0)), [200, 205, 210], 1.0);
    }
    let grille = (cx - w * 0.18, ground - mm(690.0), w * 0.36, mm(150.0));
    fill_rounded_rect(img, grille, mm(30.0), [28, 29, 32], 1.0);
    for slat in 1..4 {
        let y = grille.1 + grille.3 * slat as f32 / 4.0;
        fill_rect(
            img,
            grille.0 + mm(20.0),
            y,
            grille.2 - mm(40.0),
            mm(8.0).max(1.0),
            [70, 72, 76],
        );
    }
    fill_rounded_rect(
        img,
        (cx - w * 0.25, ground - mm(310.0), w * 0.5, mm(110.0)),
        mm(30.0),
        [32, 33, 36],
        1.0,
    );
    fill_rect(
        img,
        cx - w * 0.48,
        ground - mm(150.0),
        w * 0.96,
        mm(12.0).max(1.0),
        shade(body, 0.75),
    );

    // the plate: centred on the bumper, its middle about 420 mm above the road
    let plate_w = PLATE_MM.0 * s;
    let plate_h = PLATE_MM.1 * s;
    let (px, py) = ((cx - plate_w / 2.0).round(), (ground - mm(475.0)).round());
    let paper: Color = [
        rng.gen_range(236..250),
        rng.gen_range(236..250),
        rng.gen_range(228..244),
    ];
    fill_rect(
        img,
        px - mm(8.0),
        py - mm(8.0),
        plate_w + mm(16.0),
        plate_h + mm(16.0),
        [30, 30, 32],
    );
    draw_plate(img, &spec.plate, (px, py), plate_w, paper);
    PixelBox {
        x: px as u32,
        y: py as u32,
        width: plate_w.round() as u32,
        height: plate_h.round() as u32,
    }
}

/// The burned-in block: camera, local time, place and what was measured.
fn paint_overlay(img: &mut RgbImage, spec: &FrameSpec) {
    let bishkek = FixedOffset::east_opt(BISHKEK_UTC_OFFSET_S).expect("UTC+6 is a valid offset");
    let local = spec.captured_at.with_timezone(&bishkek);
    let measured = match (spec.kind, &spec.measurement) {
        (ViolationKind::Speeding, m) => format!(
            "SPEED {} km/h  LIMIT {} km/h",
            m.speed_kmh.unwrap_or_default(),
            m.limit_kmh.unwrap_or_default()
        ),
        (ViolationKind::RedLight, m) => format!(
            "RED LIGHT  +{:.2} s",
            f64::from(m.red_elapsed_ms.unwrap_or_default()) / 1000.0
        ),
        (kind, _) => kind.as_str().replace('_', " ").to_uppercase(),
    };
    let location: String = spec.location.chars().take(60).collect();
    let lines = [
        format!(
            "{}   {}",
            spec.camera_id,
            local.format("%Y-%m-%d %H:%M:%S%.3f UTC+6")
        ),
        location,
        measured,
    ];
    let scale = PxScale::from(26.0);
    let (x, mut y) = (24.0, 24.0);
    fill_rect(
        img,
        x - 10.0,
        y - 8.0,
        860.0,
        34.0 * lines.len() as f32 + 12.0,
        [0, 0, 0],
    );
    for line in &lines {
        y += 28.0;
        draw_text(img, line, scale, (x, y), [250, 250, 250]);
        y += 6.0;
    }
}

/// Cuts the plate with a margin of bumper around it and upscales it 2×.
fn close_up(overview: &RgbImage, plate: PixelBox) -> RgbImage {
    let margin_x = plate.width / 2;
    let margin_y = plate.height * 3 / 2;
    let x = plate.x.saturating_sub(margin_x);
    let y = plate.y.saturating_sub(margin_y);
    let width = (plate.width + 2 * margin_x).min(overview.width() - x);
    let height = (plate.height + 2 * margin_y).min(overview.height() - y);
    let crop = imageops::crop_imm(overview, x, y, width, height).to_image();
    imageops::resize(&crop, width * 2, height * 2, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random_plate;
    use std::time::Instant;

    pub(crate) fn spec(seed: u64, kind: ViolationKind) -> FrameSpec {
        let mut rng = StdRng::seed_from_u64(seed);
        FrameSpec {
            seed,
            plate: random_plate(&mut rng),
            camera_id: "sim-test-01".into(),
            captured_at: DateTime::from_timestamp_millis(1_795_000_000_123).expect("time"),
            kind,
            measurement: crate::random_measurement(kind, &mut rng),
            location: "проспект Чуй / улица Абдрахманова, Бишкек".into(),
        }
    }

    fn kb(bytes: &[u8]) -> usize {
        bytes.len() / 1024
    }

    #[test]
    fn frames_decode_and_land_in_size() {
        for (seed, kind) in [
            (1, ViolationKind::Speeding),
            (2, ViolationKind::RedLight),
            (3, ViolationKind::SeatBelt),
        ] {
            let started = Instant::now();
            let frames = render_frames(&spec(seed, kind)).expect("render");
            eprintln!(
                "seed {seed}: overview {} KB, close-up {} KB, plate {:?}, {:?}",
                kb(&frames.overview),
                kb(&frames.plate_close_up),
                frames.plate_box,
                started.elapsed()
            );
            assert!(
                (100..=300).contains(&kb(&frames.overview)),
                "overview {} KB",
                kb(&frames.overview)
            );
            assert!(
                (30..=80).contains(&kb(&frames.plate_close_up)),
                "close-up {} KB",
                kb(&frames.plate_close_up)
            );
            let overview = image::load_from_memory(&frames.overview)
                .expect("decode")
                .into_rgb8();
            assert_eq!(overview.dimensions(), (OVERVIEW_WIDTH, OVERVIEW_HEIGHT));
            let close_up = image::load_from_memory(&frames.plate_close_up)
                .expect("decode")
                .into_rgb8();
            assert!(close_up.width() > 2 * frames.plate_box.width);
            assert!(
                (180..=260).contains(&frames.plate_box.width),
                "{:?}",
                frames.plate_box
            );
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = render_frames(&spec(11, ViolationKind::Speeding)).expect("render");
        let b = render_frames(&spec(11, ViolationKind::Speeding)).expect("render");
        assert_eq!(a.overview, b.overview);
        assert_eq!(a.plate_close_up, b.plate_close_up);
        let c = render_frames(&spec(12, ViolationKind::Speeding)).expect("render");
        assert_ne!(a.overview, c.overview);
    }

    /// The plate reads as a plate: bright paper with dark glyphs, framed by a dark
    /// border, in a place the rest of the car does not look like.
    #[test]
    fn plate_is_visible_in_the_overview() {
        for seed in 20..24 {
            let frames = render_frames(&spec(seed, ViolationKind::Speeding)).expect("render");
            let img = image::load_from_memory(&frames.overview)
                .expect("decode")
                .into_rgb8();
            let b = frames.plate_box;
            let luma = |x: u32, y: u32| {
                let p = img.get_pixel(x, y).0;
                (u32::from(p[0]) * 3 + u32::from(p[1]) * 6 + u32::from(p[2])) / 10
            };
            // inside the border: the number field, right of the region separator
            let (x0, x1) = (b.x + b.width * 22 / 100, b.x + b.width * 97 / 100);
            let (y0, y1) = (b.y + b.height / 6, b.y + b.height * 5 / 6);
            let (mut bright, mut dark, mut total) = (0, 0, 0);
            for y in y0..y1 {
                for x in x0..x1 {
                    let l = luma(x, y);
                    bright += u32::from(l > 170);
                    dark += u32::from(l < 90);
                    total += 1;
                }
            }
            let (bright, dark) = (bright as f32 / total as f32, dark as f32 / total as f32);
            assert!(bright > 0.5, "seed {seed}: paper only {bright:.2} bright");
            assert!(
                (0.12..0.45).contains(&dark),
                "seed {seed}: glyph ink {dark:.2}"
            );
            // the border: a dark ring just inside the box edge, on the left side
            let border = (b.y + b.height / 4..b.y + b.height * 3 / 4)
                .filter(|&y| (b.x..b.x + 3).map(|x| luma(x, y)).min() < Some(90))
                .count() as u32;
            assert!(border * 2 > b.height / 2, "seed {seed}: no dark border");
        }
    }
}
