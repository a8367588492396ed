//! `resolution-bench`: resolutions issued per second on the embedded default (SQLite,
//! evidence on the local disk) through the issuing stage — pricing, numbering, payment
//! code and QR, the PDF with the camera's two JPEGs, its signature, storing the PDF
//! and the case's move to `issued` — next to rendering and signing alone, measured in
//! the same run. See docs/performance.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use clap::Parser;
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, ClockSource, EventId, FrameRef, FrameRole,
    Jurisdiction, Measurement, MeasuringDevice, OwnerKind, OwnerOfRecord, OwnerOutcome,
    ReviewDecision, ReviewTier, Role, Site, ViolationEvent, ViolationKind,
};
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::issuing::{run_issuing, Issued, Issuer, IssuingStage};
use kozomol_fines::resolution::{Ed25519Signer, Officer, SignerIdentity};
use kozomol_payments::MerchantAccount;
use kozomol_store::{
    CameraRegistration, CaseWrite, EvidenceStore, NewAccount, NewCase, NewFrame, NewReview,
    OfficerIdentity, OwnerLookupRecord, Store,
};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// The officer who approves every bench case, as the register names him.
const OFFICER_NAME: &str = "Исаков Нурлан Бекович";
const OFFICER_BADGE: &str = "KG-0417";

#[derive(Parser)]
#[command(about = "Resolutions issued per second, PDF and signature included")]
struct Args {
    /// Cases to issue.
    #[arg(long, default_value_t = 1600)]
    cases: usize,
    /// Issuing loops running at once (`fines.issue_workers`, whose default this is).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Cases each worker claims at once (`fines.issue_batch`, whose default this is).
    #[arg(long, default_value_t = 64)]
    batch: u32,
    /// Distinct owners the cases are addressed to, in turn: by default each case its
    /// own, as in a city's stream; `--owners 1` is a fleet owner, whose earlier
    /// resolutions every case of the run reads.
    #[arg(long)]
    owners: Option<usize>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let store =
        kozomol_store::connect(&format!("sqlite://{}", dir.path().join("k.db").display())).await?;
    let evidence = Arc::new(EvidenceStore::open(&dir.path().join("evidence"), "bench")?);
    let overview = noise_jpeg(1920, 1080, 1);
    let plate = noise_jpeg(240, 60, 2);
    let owners = args.owners.unwrap_or(args.cases).max(1);
    let ids = owner_found_cases(
        store.as_ref(),
        &evidence,
        args.cases,
        owners,
        &overview,
        &plate,
    )
    .await?;

    let signer = Ed25519Signer::from_seed(
        &[9; 32],
        SignerIdentity::Issuer {
            name: "KG-BSK".into(),
        },
    );
    let issuer = Arc::new(Issuer {
        catalogue: Catalogue::bundled(Jurisdiction::Kg),
        calendars: Calendars::bundled(),
        signer: Arc::new(signer),
        evidence: Arc::clone(&evidence),
    });

    // The whole stage, with the store.
    let started = Instant::now();
    let cpu_started = process_cpu();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.workers {
        let (store, issuer) = (Arc::clone(&store), Arc::clone(&issuer));
        workers.spawn(async move {
            let stage = stage(&format!("issuer-{w}"), args.batch);
            let mut issued = 0usize;
            loop {
                let done = run_issuing(&stage, &issuer, store.as_ref()).await?;
                if done.is_empty() {
                    return Ok::<_, anyhow::Error>(issued);
                }
                for (case, result) in done {
                    match result {
                        Issued::Resolution(_) => issued += 1,
                        other => bail!("case {case} was not issued: {other:?}"),
                    }
                }
            }
        });
    }
    let mut issued = 0;
    while let Some(joined) = workers.join_next().await {
        issued += joined??;
    }
    let stage_elapsed = started.elapsed();
    let stage_cpu = process_cpu().saturating_sub(cpu_started);
    if issued != ids.len() {
        bail!("{issued} of {} cases issued", ids.len());
    }
    let record = store
        .resolution_of_case(ids[0])
        .await?
        .context("the first case has a resolution")?;
    let pdf = evidence.read(&record.pdf_location, &record.pdf_sha256)?;
    if let Ok(path) = std::env::var("DUMP_PDF") {
        std::fs::write(path, &pdf)?;
    }

    // Rendering and signing alone, as many documents on as many threads.
    let document = sample_document(&overview, &plate)?;
    let document = Arc::new(document);
    let started = Instant::now();
    let cpu_started = process_cpu();
    let mut threads = Vec::new();
    for w in 0..args.workers {
        let (document, issuer) = (Arc::clone(&document), Arc::clone(&issuer));
        let n = args.cases / args.workers + usize::from(w < args.cases % args.workers);
        threads.push(std::thread::spawn(move || -> Result<()> {
            for _ in 0..n {
                kozomol_fines::resolution::issue(&document, issuer.signer.as_ref())?;
            }
            Ok(())
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("render thread panicked"))??;
    }
    let render_elapsed = started.elapsed();
    let render_cpu = process_cpu().saturating_sub(cpu_started);

    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "cases": issued,
            "workers": args.workers,
            "batch": args.batch,
            "owners": owners,
            "overview_jpeg_bytes": overview.len(),
            "pdf_bytes": pdf.len(),
            "issued_per_s": (per_s(issued, stage_elapsed) * 10.0).round() / 10.0,
            "render_and_sign_per_s": (per_s(args.cases, render_elapsed) * 10.0).round() / 10.0,
            "stage_ms_per_resolution": (stage_elapsed.as_secs_f64() * 1000.0 / issued as f64 * 100.0).round() / 100.0,
            "stage_cpu_ms_per_resolution": cpu_ms(stage_cpu, issued),
            "render_cpu_ms_per_resolution": cpu_ms(render_cpu, args.cases),
        })
    );
    Ok(())
}

/// CPU time the process has used (user and system), from `/proc/self/stat`; zero
/// where there is none, as the figures that need it then say.
fn process_cpu() -> Duration {
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

fn cpu_ms(cpu: Duration, n: usize) -> f64 {
    (cpu.as_secs_f64() * 1000.0 / n.max(1) as f64 * 100.0).round() / 100.0
}

fn stage(worker: &str, batch: u32) -> IssuingStage {
    IssuingStage {
        worker: worker.into(),
        batch,
        lease: Duration::from_secs(300),
        jurisdiction: Jurisdiction::Kg,
        issuer: "BSK".into(),
        issuer_code: 1,
        authority: "Управление патрульной милиции ГУВД г. Бишкек".into(),
        appeal_rights: "Постановление может быть обжаловано в течение 10 дней со дня вручения."
            .into(),
        verification_base_url: "https://kozomol.example.kg".into(),
        merchant: MerchantAccount::new("qr.kozomol.kg", "KOZOMOL").expect("valid merchant"),
        duty_officer: Officer {
            name: "Дежурный инспектор".into(),
            badge: "0001".into(),
        },
    }
}

/// A JPEG of noise, which compresses about as badly as a street scene.
fn noise_jpeg(w: u32, h: u32, seed: u64) -> Vec<u8> {
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

fn site() -> Site {
    Site {
        id: "site-chuy-manas".into(),
        lat_e6: 42_876_000,
        lon_e6: 74_604_000,
        address: "проспект Чуй / проспект Манаса, Бишкек".into(),
        direction: "eastbound".into(),
        lane: 2,
    }
}

fn device() -> MeasuringDevice {
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
async fn owner_found_cases(
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

/// One resolution as the stage builds it, for timing rendering and signing alone.
fn sample_document(overview: &[u8], plate: &[u8]) -> Result<kozomol_fines::resolution::Resolution> {
    use kozomol_core::{Currency, Money};
    use kozomol_fines::resolution::*;
    let number = ResolutionNumber::new(Jurisdiction::Kg, "BSK", 2026, 1)?;
    Ok(Resolution {
        number,
        jurisdiction: Jurisdiction::Kg,
        authority: "Управление патрульной милиции ГУВД г. Бишкек".into(),
        issued_at: Utc::now(),
        offence_at: Utc::now(),
        place: Place {
            address: site().address,
            lat_e6: Some(site().lat_e6),
            lon_e6: Some(site().lon_e6),
        },
        plate: "01KG123ABC".into(),
        vehicle: Vehicle {
            make: Some("Toyota".into()),
            model: Some("Camry".into()),
        },
        owner: Owner {
            name: "Асанов Бакыт Токтогулович".into(),
            address: "Бишкек, ул. Киевская 96".into(),
            liable_as: Liability::Owner,
        },
        article: Article {
            number: "speeding 40–60".into(),
            title: "Превышение скорости движения на 40–60 км/ч".into(),
        },
        violation: ViolationKind::Speeding,
        measurement: "105 км/ч при разрешенной скорости 60 км/ч (превышение на 45 км/ч)".into(),
        device: Some(device()),
        officer: Officer {
            name: OFFICER_NAME.into(),
            badge: OFFICER_BADGE.into(),
        },
        amount: Money::new(750_000, Currency::KGS),
        discount: Some(Discount {
            percent: 50,
            amount: Money::new(375_000, Currency::KGS),
            until: Term::FromDelivery {
                days: 15,
                working_days: false,
            },
        }),
        due: Term::FromEffect { days: 30 },
        appeal_until: Term::FromDelivery {
            days: 10,
            working_days: false,
        },
        appeal_rights: "Постановление может быть обжаловано в течение 10 дней со дня вручения."
            .into(),
        payment_code: "111260010000000019".into(),
        payment_qr: "000201".into(),
        verification_url: "https://kozomol.example.kg/v/KG-BSK-2026-0000001".into(),
        photos: Photos {
            overview: overview.to_vec(),
            plate: plate.to_vec(),
        },
    })
}
