//! `resolution-bench`: resolutions issued per second on the embedded default (SQLite,
//! evidence on the local disk) through the issuing stage — pricing, numbering, payment
//! code and QR, the PDF with the camera's two JPEGs, its signature, storing the PDF
//! and the case's move to `issued` — next to rendering and signing alone, measured in
//! the same run. See docs/performance.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Parser;
use kozomol_bench::{cpu_ms, process_cpu};
use kozomol_core::{Jurisdiction, ViolationKind};
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::issuing::{run_issuing, Issued, Issuer, IssuingStage};
use kozomol_fines::resolution::{Ed25519Signer, Officer, SignerIdentity};
use kozomol_payments::MerchantAccount;
use kozomol_store::EvidenceStore;
use kozomol_testkit::fines::{
    device, noise_jpeg, owner_found_cases, site, OFFICER_BADGE, OFFICER_NAME,
};

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
        detection: kozomol_fines::resolution::Detection::AutomaticCamera,
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
