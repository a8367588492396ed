//! What the benchmarks share: speeding cases taken to `owner_found` through the store
//! as the stages would leave them (camera, frames, an approving officer in the
//! register, an owner of record), noise JPEGs that compress like street scenes, and
//! the process's CPU time. See docs/performance.md.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, ClockSource, EventId, FrameRef, FrameRole,
    Measurement, MeasuringDevice, OwnerKind, OwnerOfRecord, OwnerOutcome, ReviewDecision,
    ReviewTier, Role, Site, ViolationEvent, ViolationKind,
};
use kozomol_store::{
    CameraRegistration, CaseWrite, EvidenceStore, NewAccount, NewCase, NewFrame, NewReview,
    OfficerIdentity, OwnerLookupRecord, Store,
};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// The officer who approves every bench case, as the register names him.
pub const OFFICER_NAME: &str = "Исаков Нурлан Бекович";
pub const OFFICER_BADGE: &str = "KG-0417";

/// CPU time the process has used (user and system), from `/proc/self/stat`; zero
/// where there is none, as the figures that need it then say.
pub fn process_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields 14 and 15 (utime, stime) in clock ticks, counted after the command
    // name's closing parenthesis, which may itself hold spaces.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return Duration::ZERO;
    };
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    // Linux's USER_HZ is 100 on every architecture it exports to user space.
    Duration::from_millis(ticks * 10)
}

pub fn cpu_ms(cpu: Duration, n: usize) -> f64 {
    (cpu.as_secs_f64() * 1000.0 / n.max(1) as f64 * 100.0).round() / 100.0
}

/// A JPEG of noise, which compresses about as badly as a street scene.
pub fn noise_jpeg(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let base = ((x / 8 + y / 8) % 200) as u8;
        image::Rgb([base.wrapping_add(rng.gen_range(0..24)), base, base / 2])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg encodes");
    out.into_inner()
}

pub fn site() -> Site {
    Site {
        id: "site-chuy-manas".into(),
        lat_e6: 42_876_000,
        lon_e6: 74_604_000,
        address: "проспект Чуй / проспект Манаса, Бишкек".into(),
        direction: "eastbound".into(),
        lane: 2,
    }
}

pub fn device() -> MeasuringDevice {
    MeasuringDevice {
        serial: "KRIS-P-12345".into(),
        certificate: CalibrationCertificate {
            number: "KG-CSM-2026-0042".into(),
            valid_from: "2026-01-15".parse().expect("date"),
            valid_until: "2027-01-14".parse().expect("date"),
        },
    }
}

/// `n` speeding cases whose owner was found, with the same two frames each, addressed
/// to `owners` people in turn.
pub async fn owner_found_cases(
    store: &dyn Store,
    evidence: &EvidenceStore,
    n: usize,
    owners: usize,
    overview: &[u8],
    plate: &[u8],
) -> Result<Vec<CaseId>> {
    let camera = CameraId::parse("cam-1")?;
    store
        .register_camera(&CameraRegistration {
            camera_id: camera.clone(),
            public_key: [1; 32],
            device_serial: device().serial,
            certificate: device().certificate,
            site: site(),
        })
        .await?;
    let frames = [(FrameRole::Overview, overview), (FrameRole::Plate, plate)];
    let locations = evidence.append_batch(&[overview, plate])?;
    let captured_at = Utc
        .with_ymd_and_hms(2026, 3, 10, 8, 30, 0)
        .single()
        .context("instant")?;
    let mut cases = Vec::with_capacity(n);
    for i in 0..n {
        let event = ViolationEvent {
            event_id: EventId::new_v7(),
            camera_id: camera.clone(),
            captured_at_ms: captured_at.timestamp_millis() + i as i64,
            clock_source: ClockSource::Gnss,
            clock_offset_ms: None,
            site: site(),
            kind: ViolationKind::Speeding,
            measurement: Measurement {
                speed_kmh: Some(105),
                limit_kmh: Some(60),
                red_elapsed_ms: None,
            },
            device: device(),
            plate_read: None,
            frames: frames
                .iter()
                .map(|(role, b)| FrameRef {
                    role: *role,
                    sha256: Sha256::digest(b).to_vec(),
                    len: b.len() as u32,
                })
                .collect(),
        };
        cases.push(NewCase {
            event_id: event.event_id,
            camera_id: camera.clone(),
            captured_at,
            kind: ViolationKind::Speeding,
            fingerprint: Sha256::digest(event.event_id.0.as_bytes()).into(),
            event: serde_json::to_value(&event)?,
            camera_plate: None,
            enforceable: true,
            enforceability_note: None,
            frames: frames
                .iter()
                .zip(&locations)
                .map(|((role, b), location)| NewFrame {
                    role: *role,
                    sha256: Sha256::digest(b).into(),
                    location: location.clone(),
                })
                .collect(),
        });
    }
    let mut ids = Vec::with_capacity(n);
    for chunk in cases.chunks(256) {
        for write in store.record_cases(chunk, "bench").await? {
            match write {
                CaseWrite::Created(id) => ids.push(id),
                other => bail!("case not created: {other:?}"),
            }
        }
    }
    // The document names the approving officer from the officers' register.
    store
        .create_account(&NewAccount {
            login: "officer-1".into(),
            role: Role::Reviewer,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bench".into(),
            officer: Some(OfficerIdentity {
                full_name: OFFICER_NAME.into(),
                badge: OFFICER_BADGE.into(),
            }),
            created_by: "bench".into(),
        })
        .await?;
    for (i, id) in ids.iter().enumerate() {
        store
            .record_review(&NewReview {
                case_id: *id,
                tier: ReviewTier::First,
                reviewer: "officer-1".into(),
                decision: ReviewDecision::Approve,
                reason: None,
                plate: Some(format!("01KG{:03}ABC", i % 1000)),
                note: None,
                from_state: CaseState::Received,
                to_state: CaseState::Approved,
            })
            .await?;
    }
    let claimed = store
        .claim_stage(
            CaseState::Approved,
            "bench",
            n as u32,
            Duration::from_secs(600),
        )
        .await?;
    for (i, id) in claimed.into_iter().enumerate() {
        store
            .record_owner_lookup(
                "bench",
                &OwnerLookupRecord {
                    case_id: id,
                    outcome: OwnerOutcome::Found,
                    owner: Some(OwnerOfRecord {
                        kind: OwnerKind::Person,
                        id: format!("2121219{:07}", i % owners),
                        name: "Асанов Бакыт Токтогулович".into(),
                        address: Some("Бишкек, ул. Киевская 96".into()),
                    }),
                    vehicle: serde_json::json!({"make": "Toyota", "model": "Camry"}),
                    reason: None,
                    exchange_id: None,
                    looked_up_at: Utc::now(),
                },
            )
            .await?;
    }
    Ok(ids)
}
