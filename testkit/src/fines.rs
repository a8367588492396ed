//! Fines as the stages leave them, written through the store: speeding cases taken to
//! `owner_found` (camera, frames, an approving officer in the register, an owner of
//! record) and fines issued with real payment codes; noise JPEGs that compress like
//! street scenes. Shared by the benchmarks and the tests.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, ClockSource, Currency, EventId, FrameRef,
    FrameRole, Jurisdiction, Measurement, MeasuringDevice, Money, OwnerKind, OwnerOfRecord,
    OwnerOutcome, ReviewDecision, ReviewTier, Role, Site, ViolationEvent, ViolationKind,
};
use kozomol_payments::{CodeKind, PaymentCode};
use kozomol_store::{
    CameraRegistration, CaseWrite, EvidenceRef, EvidenceStore, NewAccount, NewCase, NewFrame,
    NewResolution, NewReview, OfficerIdentity, OwnerLookupRecord, Store,
};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// The officer who approves every bench case, as the register names him.
pub const OFFICER_NAME: &str = "Исаков Нурлан Бекович";
pub const OFFICER_BADGE: &str = "KG-0417";

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

/// A camera's speeding event (95 in a 60 zone, GNSS time, the kit's site and device,
/// no plate read) carrying `frames`: the first the overview, the rest plate close-ups.
pub fn speeding_event(
    camera: &CameraId,
    captured_at_ms: i64,
    frames: &[Vec<u8>],
) -> ViolationEvent {
    ViolationEvent {
        event_id: EventId::new_v7(),
        camera_id: camera.clone(),
        captured_at_ms,
        clock_source: ClockSource::Gnss,
        clock_offset_ms: None,
        site: site(),
        kind: ViolationKind::Speeding,
        measurement: Measurement {
            speed_kmh: Some(95),
            limit_kmh: Some(60),
            red_elapsed_ms: None,
        },
        device: device(),
        plate_read: None,
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let role = if i == 0 {
                    FrameRole::Overview
                } else {
                    FrameRole::Plate
                };
                FrameRef::of(role, f)
            })
            .collect(),
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
    let ids = received_cases(store, evidence, n, overview, plate).await?;
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
                seen_move: None,
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
                    vehicle: serde_json::json!({
                        "make": "Toyota", "model": "Camry", "colour": "белый", "year": 2015,
                        "registration_certificate": format!("KG01{:06}", i % owners)
                    }),
                    // As the registry answers it (kozomol_tunduk::Owner).
                    registry_owner: serde_json::json!({
                        "kind": "person",
                        "pin": format!("2121219{:07}", i % owners),
                        "surname": "Асанов", "name": "Бакыт", "patronymic": "Токтогулович",
                        "birth_date": "1980-12-21",
                        "address": {
                            "region": "Чуйская", "district": "Аламединский",
                            "village": "Бишкек", "street": "ул. Киевская", "house": "96",
                            "flat": "12", "full": "Бишкек, ул. Киевская 96"
                        }
                    }),
                    reason: None,
                    exchange_id: None,
                    looked_up_at: Utc::now(),
                },
            )
            .await?;
    }
    Ok(ids)
}

/// `n` speeding cases just received from camera `cam-1` (registered on first use),
/// with the same two frames each.
pub async fn received_cases(
    store: &dyn Store,
    evidence: &EvidenceStore,
    n: usize,
    overview: &[u8],
    plate: &[u8],
) -> Result<Vec<CaseId>> {
    let camera = CameraId::parse("cam-1")?;
    if store.camera(&camera).await?.is_none() {
        store
            .register_camera(&CameraRegistration {
                camera_id: camera.clone(),
                public_key: [1; 32],
                device_serial: device().serial,
                certificate: device().certificate,
                site: site(),
            })
            .await?;
    }
    let frames = [(FrameRole::Overview, overview), (FrameRole::Plate, plate)];
    let frame_bytes = [overview.to_vec(), plate.to_vec()];
    let locations = evidence.append_batch(&[overview, plate])?;
    let captured_at = Utc
        .with_ymd_and_hms(2026, 3, 10, 8, 30, 0)
        .single()
        .context("instant")?;
    let mut cases = Vec::with_capacity(n);
    for i in 0..n {
        let mut event = speeding_event(
            &camera,
            captured_at.timestamp_millis() + i as i64,
            &frame_bytes,
        );
        event.measurement.speed_kmh = Some(105);
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
            trace_parent: None,
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
    Ok(ids)
}

/// `n` fines of 5,000 som (2,500 with the discount) issued to their owners, with real
/// payment codes; the PDF is a stand-in blob (payments never read it).
/// Returns the first fine's case and every fine's payment code.
pub async fn issued_fines(
    store: &dyn Store,
    evidence: &EvidenceStore,
    n: usize,
) -> Result<(CaseId, Vec<String>)> {
    let (overview, plate) = (noise_jpeg(64, 36, 1), noise_jpeg(32, 8, 2));
    let ids = owner_found_cases(store, evidence, n, n, &overview, &plate).await?;
    let first = *ids.first().context("no fines to pay")?;
    store
        .claim_stage(
            CaseState::OwnerFound,
            "bench",
            n as u32,
            Duration::from_secs(600),
        )
        .await?;
    let pdf = b"%PDF-1.7 bench stand-in".to_vec();
    let location = evidence.append_batch(&[&pdf])?.remove(0);
    let sha256: [u8; 32] = Sha256::digest(&pdf).into();
    let mut codes = Vec::with_capacity(n);
    for chunk in ids.chunks(256) {
        let numbers = store.reserve_resolution_numbers(chunk, "BSK", 2026).await?;
        let mut resolutions = Vec::with_capacity(chunk.len());
        for (case, number) in chunk.iter().zip(numbers) {
            let code = PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2026, 1, number)?;
            codes.push(code.to_string());
            resolutions.push(NewResolution {
                number: format!("KG-BSK-2026-{number:07}"),
                case_id: *case,
                payment_code: code.to_string(),
                jurisdiction: Jurisdiction::Kg,
                article: "Ст. 148 ч. 3".into(),
                units: 50,
                amount: Money::new(500_000, Currency::KGS),
                discounted: Some(Money::new(250_000, Currency::KGS)),
                issued_at: Utc::now(),
                pdf: EvidenceRef {
                    sha256,
                    location: location.clone(),
                },
                signature: vec![7; 64],
                signature_key_id: "bench".into(),
                signer: "issuer:KG-BSK".into(),
                repeat_of: None,
            });
        }
        store.record_resolutions("bench", &resolutions).await?;
    }
    Ok((first, codes))
}
