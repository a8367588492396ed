//! `payment-bench`: payment postings per second through the payments ledger, exactly
//! once, on PostgreSQL (a fresh database of its own on the server at `--postgres`,
//! dropped at the end) or, with `--sqlite`, on the embedded default. Each fine is paid
//! by one bank with the exact amount due (Tunduk's `setPaymentLegal` contract); then
//! every payment is reported again, which must change nothing. See docs/performance.md.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Parser;
use kozomol_bench::{cpu_ms, process_cpu};
use kozomol_core::{CaseState, Currency, Money};
use kozomol_store::{EvidenceStore, NewPayment, PaymentChannel, PaymentPosted, Store};
use kozomol_testkit::fines::issued_fines;
use kozomol_testkit::postgres::ScratchPostgres;

#[derive(Parser)]
#[command(about = "Payment postings per second, exactly once")]
struct Args {
    /// Fines to pay (one payment each).
    #[arg(long, default_value_t = 4000)]
    fines: usize,
    /// Payments posted at once (banks calling in parallel).
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// The PostgreSQL server to make the bench's database on.
    #[arg(
        long,
        env = "KOZOMOL_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Run on the embedded default (SQLite) instead.
    #[arg(long)]
    sqlite: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let (database, url) = if args.sqlite {
        (
            None,
            format!("sqlite://{}", dir.path().join("k.db").display()),
        )
    } else {
        let database = ScratchPostgres::create(&args.postgres, "kozomol_bench").await?;
        let url = database.url.clone();
        (Some(database), url)
    };
    let outcome = run(&args, &url, &dir).await;
    if let Some(database) = database {
        database.drop_now().await?;
    }
    let figures = outcome?;
    println!("{figures}");
    Ok(())
}

async fn run(args: &Args, url: &str, dir: &tempfile::TempDir) -> Result<serde_json::Value> {
    let store = kozomol_store::connect(url).await?;
    let evidence = EvidenceStore::open(&dir.path().join("evidence"), "bench")?;
    let (first_case, codes) = issued_fines(store.as_ref(), &evidence, args.fines).await?;
    let payments: Arc<Vec<NewPayment>> = Arc::new(
        codes
            .iter()
            .enumerate()
            .map(|(i, code)| NewPayment {
                payment_code: code.clone(),
                channel: PaymentChannel::Soap,
                source: format!("central-server/COM/1000000{}/bank", i % 5),
                external_id: format!("bank-payment-{i}"),
                amount: Money::new(250_000, Currency::KGS),
                paid_at: Utc::now(),
                exact_only: true,
                intent: None,
                posted_by: "bench".into(),
            })
            .collect(),
    );

    let (first, first_elapsed, first_cpu) = post_all(&store, &payments, args.tasks).await?;
    let (again, again_elapsed, _) = post_all(&store, &payments, args.tasks).await?;
    // Exactly once: every payment applied in the first pass, none in the second, one
    // ledger row per fine and every fine paid.
    if first.applied != payments.len() || again.applied != 0 || again.repeated != payments.len() {
        bail!("not exactly once: first {first:?}, again {again:?}");
    }
    let sample = store
        .resolution_of_case(first_case)
        .await?
        .context("the first case's resolution")?;
    let ledger = store.payments(&sample.number).await?;
    let state = store
        .case(sample.case_id)
        .await?
        .context("the first case")?
        .state;
    if ledger.len() != 1 || state != CaseState::PaidDiscounted {
        bail!(
            "the first fine holds {} payments and is {state}",
            ledger.len()
        );
    }
    let per_s = |n: usize, d: Duration| (n as f64 / d.as_secs_f64() * 10.0).round() / 10.0;
    Ok(serde_json::json!({
        "backend": if args.sqlite { "sqlite" } else { "postgres" },
        "fines": payments.len(),
        "tasks": args.tasks,
        "postings_per_s": per_s(first.applied, first_elapsed),
        "repeats_per_s": per_s(again.repeated, again_elapsed),
        "cpu_ms_per_posting": cpu_ms(first_cpu, first.applied),
    }))
}

#[derive(Debug, Default)]
struct Pass {
    applied: usize,
    repeated: usize,
}

/// Posts every payment once, `tasks` at a time.
async fn post_all(
    store: &Arc<dyn Store>,
    payments: &Arc<Vec<NewPayment>>,
    tasks: usize,
) -> Result<(Pass, Duration, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let cpu_started = process_cpu();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        let (store, payments, next) = (Arc::clone(store), Arc::clone(payments), Arc::clone(&next));
        running.spawn(async move {
            let mut pass = Pass::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(payment) = payments.get(i) else {
                    return Ok::<_, anyhow::Error>(pass);
                };
                match store.post_payment(payment).await? {
                    PaymentPosted::Applied(_) => pass.applied += 1,
                    PaymentPosted::AlreadyPosted(_) => pass.repeated += 1,
                    PaymentPosted::Refused(why) => bail!("payment {i} refused: {why:?}"),
                }
            }
        });
    }
    let mut total = Pass::default();
    while let Some(done) = running.join_next().await {
        let pass = done??;
        total.applied += pass.applied;
        total.repeated += pass.repeated;
    }
    Ok((
        total,
        started.elapsed(),
        process_cpu().saturating_sub(cpu_started),
    ))
}
