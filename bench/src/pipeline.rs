//! `pipeline-bench`: the load report's figures. Runs kozomol split into processes as
//! production does (`kozomol run PART`: the API, `--ingest` ingest processes,
//! `--recognizers` recognizers, a fines worker; PostgreSQL on this machine, a private
//! Mosquitto wanting logins, the stand-in Tunduk), streams `--events` simulated
//! violations at `--rate` per second, waits until every case has left the automatic
//! stages, and reads from the database: events per second through every stage to an
//! issued resolution, capture → issued latency (p50/p95/p99) and each stage's share of
//! it, capture → settled latency over every case, and the database's size per million
//! cases. One JSON line. See
//! docs/performance.md.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use kozomol_tests::split::{Split, SplitOptions};
use kozomol_tests::{metric_value, psql_value, simulation_report, Simulation};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Events per second and capture → issued latency through the split parts")]
struct Args {
    #[arg(long, default_value_t = 300)]
    events: u64,
    /// Events per second, all cameras together.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    #[arg(long, default_value_t = 10)]
    cameras: u32,
    #[arg(long, default_value_t = 1)]
    ingest: u32,
    #[arg(long, default_value_t = 1)]
    recognizers: u32,
    /// ONNX Runtime threads per recognizer model.
    #[arg(long, default_value_t = 1)]
    recognizer_threads: u32,
    /// Send each event's 1920×1080 overview frames too, not only the plate close-up.
    #[arg(long)]
    full_frames: bool,
    /// Give up when cases still wait this long after the stream ended.
    #[arg(long, default_value_t = 3600)]
    settle_timeout_s: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut split = Split::prepare(SplitOptions {
        recognizer_threads: args.recognizer_threads,
        ..SplitOptions::default()
    })?;
    split.start_part("api", "api", &[])?;
    for n in 1..=args.ingest {
        split.start_part(&format!("ingest-{n}"), "ingest", &[])?;
    }
    for n in 1..=args.recognizers {
        split.start_part(&format!("recognizer-{n}"), "recognizer", &[])?;
    }
    split.start_part("fines", "fines", &[])?;
    let url = split.db.url();
    let query = |sql: &str| -> Result<f64> {
        let text = psql_value(&url, sql)?;
        if text.is_empty() {
            return Ok(f64::NAN);
        }
        text.parse()
            .with_context(|| format!("`{sql}` answered `{text}`"))
    };
    let empty_bytes = query("SELECT pg_database_size(current_database())")?;

    let started = Instant::now();
    let extra: &[&str] = if args.full_frames {
        &[]
    } else {
        &["--small-frames"]
    };
    let sim = split.spawn_simulate(
        Simulation {
            cameras: args.cameras,
            events: args.events,
            rate: args.rate,
        },
        extra,
    )?;
    let report = simulation_report(sim)?;
    let streamed_s = started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(args.settle_timeout_s);
    loop {
        let waiting = query(
            "SELECT count(*) FROM cases \
             WHERE state IN ('received', 'recognized', 'approved', 'owner_found')",
        )?;
        let cases = query("SELECT count(*) FROM cases")?;
        if waiting == 0.0 && cases >= args.events as f64 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{waiting} cases still waiting; {cases} of {} in",
                args.events
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let settled_s = started.elapsed().as_secs_f64();

    let issued = query("SELECT count(*) FROM resolutions")?;
    let latency = |p: f64| {
        query(&format!(
            "SELECT percentile_cont({p}) WITHIN GROUP \
             (ORDER BY extract(epoch FROM r.issued_at - c.captured_at)) \
             FROM resolutions r JOIN cases c ON c.id = r.case_id"
        ))
    };
    // Each stage's median on the issued cases: capture → committed, committed →
    // read, read → owner found, owner found → issued.
    let stage = |from: &str, to: &str| {
        query(&format!(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM {to} - {from})) \
             FROM resolutions r JOIN cases c ON c.id = r.case_id \
             JOIN LATERAL (SELECT max(at) FILTER (WHERE to_state IN ('recognized', 'needs_review')) AS read_at, \
                                  max(at) FILTER (WHERE to_state = 'owner_found') AS owner_at \
                           FROM audit_log a WHERE a.case_id = c.id) s ON true"
        ))
    };
    // Every case, issued or not: capture → its last automatic move (issued, or handed
    // to a person, or set aside by the checks).
    let settled = |p: f64| {
        query(&format!(
            "SELECT percentile_cont({p}) WITHIN GROUP (ORDER BY extract(epoch FROM s.last_at - c.captured_at)) \
             FROM cases c JOIN LATERAL (SELECT max(at) AS last_at FROM audit_log a WHERE a.case_id = c.id) s ON true"
        ))
    };
    let first_capture = query("SELECT extract(epoch FROM min(captured_at)) FROM cases")?;
    let last_issue = query("SELECT extract(epoch FROM max(issued_at)) FROM resolutions")?;
    let cases = query("SELECT count(*) FROM cases")?;
    let full_bytes = query("SELECT pg_database_size(current_database())")?;
    let recognizer_ms: Vec<f64> = (1..=args.recognizers)
        .map(|n| {
            let page = split
                .metrics(&format!("recognizer-{n}"))
                .unwrap_or_default();
            1000.0
                * metric_value(
                    &page,
                    "kozomol_stage_pass_seconds_sum{stage=\"recognition\"}",
                )
                / metric_value(
                    &page,
                    "kozomol_stage_pass_seconds_count{stage=\"recognition\"}",
                )
                .max(1.0)
        })
        .collect();
    println!(
        "{}",
        json!({
            "events": args.events,
            "rate": args.rate,
            "cameras": args.cameras,
            "ingest_processes": args.ingest,
            "recognizer_processes": args.recognizers,
            "recognizer_threads": args.recognizer_threads,
            "frames": if args.full_frames { "full" } else { "plate close-up" },
            "accepted": report["accepted"],
            "cases": cases,
            "issued": issued,
            "streamed_s": streamed_s,
            "settled_s": settled_s,
            "issued_per_s": issued / (last_issue - first_capture),
            "cases_per_s_through_every_stage": cases / settled_s,
            "capture_to_issued_s": {
                "p50": latency(0.5)?, "p95": latency(0.95)?, "p99": latency(0.99)?,
            },
            "capture_to_settled_s": {
                "p50": settled(0.5)?, "p95": settled(0.95)?, "p99": settled(0.99)?,
            },
            "stage_medians_s": {
                "capture_to_committed": stage("c.captured_at", "c.received_at")?,
                "committed_to_read": stage("c.received_at", "s.read_at")?,
                "read_to_owner_found": stage("s.read_at", "s.owner_at")?,
                "owner_found_to_issued": stage("s.owner_at", "r.issued_at")?,
            },
            "recognizer_ms_per_case": recognizer_ms,
            "database_bytes_per_million_cases": (full_bytes - empty_bytes) / cases * 1e6,
        })
    );
    Ok(())
}
