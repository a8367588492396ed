//! `lookup-bench`: citizens' fine lookups per second and their p99 latency through
//! kozomol's HTTP stack (`POST /api/v1/public/lookups` by resolution number, the whole
//! answer a citizen gets: amounts, deadlines, photos' links, QR payload, grant) with
//! `--fines` fines in a fresh PostgreSQL database, driven by wrk (Debian's `wrk`) from
//! its own process; beside it, in the same run, a plain axum + sqlx point lookup of the
//! same resolutions (one indexed SELECT, its row as JSON) as the baseline. The lookup
//! limiter is off (every request comes from one address). See docs/performance.md.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use ed25519_dalek::SigningKey;
use kozomol_ingest::IngestMetrics;
use kozomol_payments::{CodeKind, PaymentCode};
use kozomol_server::api::{router, AppState, LookupLimit};
use kozomol_store::EvidenceStore;
use kozomol_testkit::fines::issued_fines;
use kozomol_testkit::postgres::ScratchPostgres;
use serde_json::{json, Value};
use sqlx::{AssertSqlSafe, PgPool, Row};

#[derive(Parser)]
#[command(about = "Citizens' fine lookups per second beside a plain axum + sqlx lookup")]
struct Args {
    /// Fines in the database (issued through the store, then copied in SQL).
    #[arg(long, default_value_t = 1_000_000)]
    fines: usize,
    /// Fines issued through the store, the pattern the rest are copied from.
    #[arg(long, default_value_t = 1000)]
    pattern: usize,
    /// wrk's connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Seconds of load per side.
    #[arg(long, default_value_t = 15)]
    seconds: u32,
    #[arg(
        long,
        env = "KOZOMOL_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let database = ScratchPostgres::create(&args.postgres, "kozomol_lookups").await?;
    let outcome = run(&args, &database.url).await;
    database.drop_now().await?;
    println!("{}", outcome?);
    Ok(())
}

async fn run(args: &Args, url: &str) -> Result<Value> {
    let dir = tempfile::tempdir()?;
    let store = kozomol_store::connect(url).await?;
    let evidence = Arc::new(EvidenceStore::open(&dir.path().join("evidence"), "bench")?);
    let started = Instant::now();
    issued_fines(store.as_ref(), &evidence, args.pattern).await?;
    let pool = PgPool::connect(url).await?;
    copy_fines(&pool, args.pattern, args.fines).await?;
    let seeded_s = started.elapsed().as_secs_f64();
    let numbers: Vec<String> = sqlx::query("SELECT number FROM resolutions ORDER BY case_id")
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("number"))
        .collect::<Result<_, _>>()?;
    if numbers.len() != args.fines {
        bail!("{} fines seeded, not {}", numbers.len(), args.fines);
    }
    // wrk's script picks numbers from a sample spread over the whole table.
    let step = (numbers.len() / 10_000).max(1);
    let sample: Vec<&String> = numbers.iter().step_by(step).collect();
    let script = dir.path().join("lookup.lua");
    std::fs::write(&script, wrk_script(&sample))?;

    // kozomol: the API's router as `kozomol serve` builds it, the limiter off.
    let mut state = AppState::new(
        store.clone(),
        evidence.clone(),
        Arc::new(IngestMetrics::default()),
        "http://127.0.0.1",
        Arc::new(SigningKey::from_bytes(&[7; 32])),
    );
    state.lookup_limit = LookupLimit {
        lookups: 0,
        window: LookupLimit::default().window,
    };
    state.merchant = Some(Arc::new(kozomol_payments::MerchantAccount::new(
        "kozomol.bishkek.fines",
        "GUVD Bishkek",
    )?));
    state.ready.store(true, Ordering::Release);
    let kozomol = serve(router(state)).await?;
    // Baseline: one indexed SELECT and its row as JSON.
    let baseline = serve(
        Router::new()
            .route("/lookup", post(plain_lookup))
            .with_state(pool.clone()),
    )
    .await?;

    // Both answer the same fine before the load.
    check(
        &format!("http://{kozomol}/api/v1/public/lookups"),
        &numbers[0],
    )
    .await?;
    check(&format!("http://{baseline}/lookup"), &numbers[0]).await?;

    let ours = wrk(
        args,
        &script,
        &format!("http://{kozomol}/api/v1/public/lookups"),
    )?;
    let plain = wrk(args, &script, &format!("http://{baseline}/lookup"))?;
    Ok(json!({
        "fines": args.fines,
        "seeded_s": (seeded_s * 10.0).round() / 10.0,
        "connections": args.connections,
        "seconds": args.seconds,
        "kozomol": ours,
        "axum_sqlx_baseline": plain,
        "ratio": ratio(&ours, &plain),
    }))
}

fn ratio(ours: &Value, plain: &Value) -> Value {
    match (
        ours["requests_per_s"].as_f64(),
        plain["requests_per_s"].as_f64(),
    ) {
        (Some(a), Some(b)) if b > 0.0 => json!((a / b * 100.0).round() / 100.0),
        _ => Value::Null,
    }
}

/// Copies the `pattern` fines (cases, frames, owner lookups, resolutions) until there
/// are `total`, each copy under new case ids, event ids, resolution numbers and valid
/// payment codes.
async fn copy_fines(pool: &PgPool, pattern: usize, total: usize) -> Result<()> {
    if !total.is_multiple_of(pattern) {
        bail!("--fines must be a multiple of --pattern");
    }
    let stride: i64 = sqlx::query("SELECT max(id) AS top FROM cases")
        .fetch_one(pool)
        .await?
        .try_get::<Option<i64>, _>("top")?
        .context("no pattern cases")?;
    let copies = (total / pattern - 1) as i64;
    if copies == 0 {
        return Ok(());
    }
    for (table, transforms) in [
        (
            "cases",
            vec![("id", "id + g * $1"), ("event_id", "gen_random_uuid()")],
        ),
        ("case_frames", vec![("case_id", "case_id + g * $1")]),
        ("owner_lookups", vec![("case_id", "case_id + g * $1")]),
        (
            "resolution_numbers",
            vec![
                ("case_id", "case_id + g * $1"),
                ("sequence", "case_id + g * $1"),
            ],
        ),
        (
            "resolutions",
            vec![
                ("case_id", "case_id + g * $1"),
                (
                    "number",
                    "regexp_replace(number, '[0-9]+$', '') || lpad((case_id + g * $1)::text, 7, '0')",
                ),
                ("payment_code", "'pending-' || (case_id + g * $1)::text"),
            ],
        ),
    ] {
        let columns: Vec<String> = sqlx::query(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_name = $1 AND table_schema = current_schema() \
             AND is_generated = 'NEVER' ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("column_name"))
        .collect::<Result<_, _>>()?;
        let select: Vec<String> = columns
            .iter()
            .map(|c| {
                transforms
                    .iter()
                    .find(|(name, _)| name == c)
                    .map_or_else(|| c.clone(), |(_, expr)| (*expr).to_owned())
            })
            .collect();
        let overriding = if table == "cases" {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO {table} ({}){overriding} SELECT {} FROM {table}, generate_series(1, $2) AS g \
             WHERE {} <= $1",
            columns.join(", "),
            select.join(", "),
            if table == "cases" { "id" } else { "case_id" },
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(stride)
            .bind(copies)
            .execute(pool)
            .await
            .map_err(|e| anyhow::anyhow!("copying {table}: {e}"))?;
    }
    // Valid payment codes (the portal parses them for the QR): made here, as issuing does.
    let template: String =
        sqlx::query("SELECT payment_code FROM resolutions ORDER BY case_id LIMIT 1")
            .fetch_one(pool)
            .await?
            .try_get("payment_code")?;
    let template = PaymentCode::parse(&template)?;
    let pending: Vec<i64> = sqlx::query(
        "SELECT case_id FROM resolutions WHERE payment_code LIKE 'pending-%' ORDER BY case_id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| row.try_get::<i64, _>("case_id"))
    .collect::<Result<_, _>>()?;
    for chunk in pending.chunks(50_000) {
        let codes: Vec<String> = chunk
            .iter()
            .map(|&id| {
                PaymentCode::new(
                    CodeKind::Fine,
                    template.jurisdiction(),
                    template.year(),
                    template.issuer(),
                    id as u64,
                )
                .map(|code| code.to_string())
            })
            .collect::<Result<_, _>>()?;
        sqlx::query(
            "UPDATE resolutions r SET payment_code = u.code \
             FROM UNNEST($1::bigint[], $2::text[]) AS u(case_id, code) WHERE r.case_id = u.case_id",
        )
        .bind(chunk)
        .bind(&codes)
        .execute(pool)
        .await?;
    }
    // The copies and the code update leave a million dead row versions and rows whose
    // hint bits were never set: settled here, so that neither side's run pays for them
    // (or for autovacuum or a checkpoint starting meanwhile) and the first run is not
    // the one that does.
    sqlx::raw_sql("VACUUM (FREEZE, ANALYZE)")
        .execute(pool)
        .await?;
    sqlx::raw_sql("CHECKPOINT").execute(pool).await?;
    Ok(())
}

async fn serve(app: Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Ok(addr)
}

#[derive(serde::Deserialize)]
struct PlainRequest {
    resolution: String,
}

/// The baseline: what a plain axum + sqlx service does for one point lookup.
async fn plain_lookup(
    State(pool): State<PgPool>,
    Json(request): Json<PlainRequest>,
) -> Result<Json<Value>, axum::http::StatusCode> {
    let row = sqlx::query(
        "SELECT number, payment_code, case_id, article, amount_minor, currency, issued_at \
         FROM resolutions WHERE number = $1",
    )
    .bind(&request.resolution)
    .fetch_optional(&pool)
    .await
    .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?
    .ok_or(axum::http::StatusCode::NOT_FOUND)?;
    let get = |name: &str| row.try_get::<String, _>(name).unwrap_or_default();
    Ok(Json(json!({
        "number": get("number"),
        "payment_code": get("payment_code"),
        "article": get("article"),
        "currency": get("currency"),
        "case_id": row.try_get::<i64, _>("case_id").unwrap_or_default(),
        "amount_minor": row.try_get::<i64, _>("amount_minor").unwrap_or_default(),
    })))
}

async fn check(url: &str, number: &str) -> Result<()> {
    let answer = reqwest::Client::new()
        .post(url)
        .json(&json!({ "resolution": number }))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("{url} answered {} for {number}", answer.status());
    }
    Ok(())
}

fn wrk_script(numbers: &[&String]) -> String {
    let list: Vec<String> = numbers.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "local numbers = {{{}}}\n\
         local i = 0\n\
         wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         request = function()\n\
           i = i + 1\n\
           local n = numbers[(i % #numbers) + 1]\n\
           return wrk.format(nil, nil, nil, '{{\"resolution\":\"' .. n .. '\"}}')\n\
         end\n\
         done = function(summary, latency, requests)\n\
           io.write(string.format(\"RESULT %d %d %d %d %d %d\\n\", summary.requests, summary.duration, \
             summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, \
             latency:percentile(50), latency:percentile(99), latency.max))\n\
         end\n",
        list.join(",")
    )
}

/// Runs wrk against `url`; requests per second and latency percentiles (ms).
fn wrk(args: &Args, script: &std::path::Path, url: &str) -> Result<Value> {
    let output = std::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", args.connections),
            &format!("-d{}s", args.seconds),
            "-s",
            script.to_str().context("utf-8 path")?,
            url,
        ])
        .output()
        .context("wrk runs (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("wrk printed no result:\n{text}"))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse::<f64>())
        .collect::<Result<_, _>>()?;
    let [requests, duration_us, errors, p50_us, p99_us, max_us] = v[..] else {
        bail!("wrk's result line: {line}");
    };
    Ok(json!({
        "requests": requests,
        "errors": errors,
        "requests_per_s": (requests / (duration_us / 1e6)).round(),
        "p50_ms": (p50_us / 100.0).round() / 10.0,
        "p99_ms": (p99_us / 100.0).round() / 10.0,
        "max_ms": (max_us / 100.0).round() / 10.0,
    }))
}
