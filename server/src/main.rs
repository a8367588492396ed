//! `kozomol`: the whole system in one binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kozomol_server::serve::{self, Part, Plan};
use kozomol_server::settings::{Settings, SettingsError};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "kozomol",
    version,
    about = "Traffic-camera enforcement: cameras to cases, fines and payments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum AuditAction {
    Verify {
        /// Settings file (TOML): its database is checked.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Database URL, instead of the settings' [default: SQLite in the data folder].
        #[arg(long)]
        database_url: Option<String>,
        /// A seal recorded outside the database from an earlier run's `last_seal`
        /// (`ID:HASH`; may be given again): the log must still hold it, as it was.
        #[arg(long = "expect-seal", value_name = "ID:HASH")]
        expect_seal: Vec<kozomol_store::audit::SealMark>,
    },
}

#[derive(Subcommand)]
enum AdminAction {
    /// Makes an administrator's account and prints its login, password and API token
    /// as one line of JSON (shown once; only hashes are stored).
    Create {
        #[arg(long)]
        login: String,
        /// Settings file (TOML): its database gets the account.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run every part in one process: embedded MQTT broker, ingest, recognizer, fines,
    /// HTTP API (SQLite, evidence on the local disk).
    Serve {
        /// Settings file (TOML); `KOZOMOL_*` variables and these flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data folder [default: ./kozomol-data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HTTP listen address [default: 127.0.0.1:8080].
        #[arg(long)]
        http: Option<SocketAddr>,
        /// Embedded MQTT broker address [default: 127.0.0.1:1884].
        #[arg(long)]
        mqtt: Option<SocketAddr>,
        /// Database URL (sqlite://PATH or postgres://...) [default: SQLite in the data folder].
        #[arg(long)]
        database_url: Option<String>,
        /// Use this external broker (host:port) instead of the embedded one.
        #[arg(long, conflicts_with = "mqtt")]
        external_broker: Option<String>,
        /// Create demo accounts (written to DATA_DIR/demo-credentials.json), start
        /// simulated cameras, and (without a `[tunduk]` section) a stand-in bus whose
        /// registry knows every plate.
        #[arg(long)]
        demo: bool,
        /// How many simulated cameras `--demo` starts.
        #[arg(long, default_value_t = 3, requires = "demo")]
        demo_cameras: u32,
    },
    /// Run one part alone, against PostgreSQL and an external MQTT broker.
    Run {
        #[arg(value_enum)]
        part: Part,
        /// Settings file (TOML); `KOZOMOL_*` variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Simulated cameras: register N cameras through the API and send M events at R
    /// per second in total; exits 0 once every event has its receipt.
    Simulate {
        #[arg(long, default_value_t = 3)]
        cameras: u32,
        #[arg(long, default_value_t = 100)]
        events: u64,
        /// Events per second, all cameras together.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value = "127.0.0.1:1884")]
        broker: String,
        /// The broker user the simulated cameras log in as (with
        /// KOZOMOL_SIMULATE_BROKER_PASSWORD); anonymous without it. One login for
        /// every simulated camera: a broker under deploy/mosquitto.acl, where each
        /// login reaches its own camera's topics only, is no place to simulate.
        #[arg(long, env = "KOZOMOL_SIMULATE_BROKER_USERNAME")]
        broker_username: Option<String>,
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// Admin bearer token [default: the admin token in DATA_DIR/demo-credentials.json].
        #[arg(long, env = "KOZOMOL_TOKEN")]
        token: Option<String>,
        /// Where `kozomol serve` keeps its data (for the demo credentials).
        #[arg(long, default_value = "./kozomol-data")]
        data_dir: PathBuf,
        /// Give up when receipts are still missing after this many seconds.
        #[arg(long, default_value_t = 120)]
        receipt_timeout: u64,
        /// Send only the plate close-up with each event (a load test's small events).
        #[arg(long)]
        small_frames: bool,
        /// Draw the violations from this seed, to repeat a run's plates and scenes.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// A container health check: GET the URL (for example
    /// `http://127.0.0.1:8080/readyz`); exits 0 on a 2xx answer within 3 seconds, 1
    /// otherwise. Images without curl use it.
    Probe { url: String },
    /// Read the plates in JPEG files or folders of them.
    Recognize {
        /// Files, or folders whose `.jpg` files are read.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// One JSON object per image: boxes, text, confidence, candidates, country.
        #[arg(long)]
        json: bool,
        /// The images are plate close-ups (as cameras send beside their overviews):
        /// text is looked for at their own scale.
        #[arg(long)]
        close_up: bool,
        /// Settings file (TOML): its `[recognizer]` section names the models and the library.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Score the recognizer on labelled images; prints the figures as JSON on the last line.
    EvalAlpr {
        /// A folder of `NAME.jpg` + `NAME.txt` (`file x y w h plate`, tab-separated),
        /// or with `--crops` of plate crops with `groundtruth.csv` (`file,state,plate`).
        dir: PathBuf,
        #[arg(long)]
        crops: bool,
        /// Settings file (TOML), as for `recognize`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The audit log: `verify` checks every row's hash chain and every seal, prints
    /// what it checked as one line of JSON, and exits 1 naming the first break.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Purge personal data now, as the fines workers do every hour: from every case
    /// settled and untouched for `[retention] personal_data_days`, every accident closed
    /// as long, and contacts no remaining case needs; where `case_file_days` is set,
    /// destroy the files of cases at the end of that archive period too. Prints what it
    /// did as one line of JSON.
    PurgePersonalData {
        /// Settings file (TOML): its database and `[retention]` section.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// A stand-in for a system that cannot run here, for tests and demos only: `tunduk`
    /// is a security server whose vehicle registry knows every plate (the demo's). It
    /// prints `{"url": ..., "client": ...}` on its first line and serves until stopped.
    #[command(hide = true)]
    Standin {
        #[arg(value_parser = ["tunduk"])]
        system: String,
        /// Every request waits this long first.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Every N-th request fails with HTTP 500 (0: none).
        #[arg(long, default_value_t = 0)]
        fail_every: usize,
    },
    /// The first administrator of a new installation; the admin makes every other
    /// account in the console.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Price and date one offence from the catalogue: one line of JSON. Exits 2 when no
    /// fine applies (below the lowest band, or a sanction that is not a fine).
    Quote {
        #[arg(long)]
        jurisdiction: kozomol_core::Jurisdiction,
        /// The wire protocol's violation kind (speeding, red_light, stop_line, ...).
        #[arg(long)]
        kind: kozomol_core::ViolationKind,
        /// Measured speed, km/h (speeding).
        #[arg(long, requires = "limit")]
        measured: Option<u16>,
        /// Speed limit, km/h (speeding).
        #[arg(long, requires = "measured")]
        limit: Option<u16>,
        /// The offence's date (YYYY-MM-DD, the jurisdiction's calendar).
        #[arg(long)]
        date: chrono::NaiveDate,
        /// The date of proven delivery; the discount, appeal and payment clocks start there.
        #[arg(long)]
        delivered: Option<chrono::NaiveDate>,
        /// Again within a year of a penalty for the same offence.
        #[arg(long)]
        repeat: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Usage errors exit 64 (EX_USAGE), not clap's 2, which `quote` gives to "no fine".
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 64 } else { 0 });
    });
    let service = match &cli.command {
        Command::Serve { .. } => "kozomol".to_owned(),
        Command::Run { part, .. } => format!("kozomol-{}", part.name()),
        _ => "kozomol-cli".to_owned(),
    };
    let telemetry = kozomol_telemetry::install(
        &service,
        "info,rumqttd=warn,rumqttc=warn,sqlx=warn,ort=warn",
    )?;
    let outcome = run(cli).await;
    telemetry.shutdown();
    outcome
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cancel = shutdown_on_signals();
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            http,
            mqtt,
            database_url,
            external_broker,
            demo,
            demo_cameras,
        } => {
            let mut settings = Settings::load(config.as_deref(), |k| std::env::var(k).ok())?;
            if let Some(d) = data_dir {
                settings.data_dir = d;
            }
            if let Some(h) = http {
                settings.http.listen = h.to_string();
            }
            if let Some(m) = mqtt {
                settings.mqtt.broker = m.to_string();
            }
            if let Some(url) = database_url {
                settings.database_url = Some(url);
            }
            if let Some(b) = external_broker {
                settings.mqtt.broker = b;
                settings.mqtt.embedded = false;
            }
            let mut parts = vec![Part::Ingest, Part::Api];
            if settings.recognizer.enabled {
                parts.push(Part::Recognizer);
            }
            if settings.fines.enabled {
                parts.push(Part::Fines);
            }
            let plan = Plan {
                parts,
                embedded_broker: settings.mqtt.embedded,
                demo,
                demo_cameras,
            };
            serve::run(settings, plan, cancel).await?;
        }
        Command::Run { part, config } => {
            let mut settings = Settings::load(config.as_deref(), |k| std::env::var(k).ok())?;
            settings.mqtt.embedded = false;
            let plan = Plan {
                parts: vec![part],
                embedded_broker: false,
                demo: false,
                demo_cameras: 0,
            };
            serve::run(settings, plan, cancel).await?;
        }
        Command::Probe { url } => {
            let answer = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(3))
                .build()?
                .get(&url)
                .send()
                .await?;
            let status = answer.status();
            if !status.is_success() {
                anyhow::bail!("{url} answered {status}");
            }
        }
        Command::Recognize {
            paths,
            json,
            close_up,
            config,
        } => {
            let (recognizer, _) = load_recognizer(config.as_deref()).await?;
            let view = if close_up {
                kozomol_recognizer::View::CloseUp
            } else {
                kozomol_recognizer::View::Scene
            };
            let failed = tokio::task::spawn_blocking(move || {
                kozomol_server::plate_reading::recognize(&recognizer, &paths, view, json)
            })
            .await??;
            if failed > 0 {
                anyhow::bail!("{failed} files could not be read");
            }
        }
        Command::EvalAlpr { dir, crops, config } => {
            let (recognizer, thresholds) = load_recognizer(config.as_deref()).await?;
            let summary = tokio::task::spawn_blocking(move || {
                kozomol_server::plate_reading::evaluate(&recognizer, &dir, crops, &thresholds)
            })
            .await??;
            println!("{}", serde_json::to_string(&summary)?);
        }
        Command::Audit {
            action:
                AuditAction::Verify {
                    config,
                    database_url,
                    expect_seal,
                },
        } => {
            let settings = Settings::load(config.as_deref(), |k| std::env::var(k).ok())?;
            let url = database_url.unwrap_or_else(|| settings.database_url());
            let store = kozomol_store::connect_existing(&url).await?;
            match kozomol_store::audit::verify(store.as_ref(), &expect_seal).await? {
                Ok(verified) => {
                    // The API process seals each minute: rows an hour old unsealed say
                    // it stopped (or never ran), and they are not yet tamper-evident.
                    if let Some(oldest) = verified.oldest_unsealed_at {
                        if chrono::Utc::now() - oldest > chrono::Duration::hours(1) {
                            eprintln!(
                                "warning: {} audit rows are not sealed, the oldest written {oldest}: is `kozomol run api` sealing?",
                                verified.unsealed_rows
                            );
                        }
                    }
                    println!("{}", serde_json::to_string(&verified)?);
                }
                Err(broken) => anyhow::bail!("the audit log is broken: {broken}"),
            }
        }
        Command::PurgePersonalData { config } => {
            let settings = Settings::load(config.as_deref(), |k| std::env::var(k).ok())?;
            // The retention settings only: a one-off purge needs no broker or bus.
            let problems = settings.retention.problems();
            if !problems.is_empty() {
                return Err(SettingsError::Invalid(problems).into());
            }
            let store = kozomol_store::connect_existing(&settings.database_url()).await?;
            let quiet_since = chrono::Utc::now() - settings.retention.keep();
            let (mut cases, mut accidents, mut contacts, mut dead_letters) = (0, 0, 0, 0);
            loop {
                let pass = store
                    .purge_personal_data(quiet_since, 500, "cli:purge-personal-data")
                    .await?;
                if pass.purged() == 0 {
                    break;
                }
                cases += pass.cases.len();
                accidents += pass.accidents.len();
                contacts += pass.contacts;
                dead_letters += pass.dead_letters;
            }
            let mut report = serde_json::json!({
                "quiet_since": quiet_since,
                "cases": cases,
                "accidents": accidents,
                "contacts": contacts,
                "dead_letters": dead_letters,
            });
            if let Some(keep) = settings.retention.keep_case_file() {
                let evidence = Arc::new(settings.evidence_store("cli-purge")?);
                let quiet_before = Some(chrono::Utc::now() - keep);
                let mut total = kozomol_fines::archive::ArchivePass::default();
                loop {
                    let pass = kozomol_fines::archive::destroy_case_files(
                        store.as_ref(),
                        &evidence,
                        quiet_before,
                        500,
                        "cli:purge-personal-data",
                    )
                    .await?;
                    if pass.busy {
                        println!("{report}");
                        anyhow::bail!(
                            "another process is destroying case files now (the archive lease); run it again later"
                        );
                    }
                    // A record that failed is put off, so it is counted once.
                    total.overwrite_failures += pass.overwrite_failures;
                    if !pass.did_work() {
                        break;
                    }
                    total.cases.extend(pass.cases);
                    total.accidents.extend(pass.accidents);
                    total.blobs_erased += pass.blobs_erased;
                    total.records_overwritten += pass.records_overwritten;
                }
                report["case_files"] = serde_json::json!({
                    "quiet_before": quiet_before,
                    "cases": total.cases.len(),
                    "accidents": total.accidents.len(),
                    "blobs_erased": total.blobs_erased,
                    "records_overwritten": total.records_overwritten,
                    "overwrite_failures": total.overwrite_failures,
                });
                if total.overwrite_failures > 0 {
                    println!("{report}");
                    anyhow::bail!(
                        "{} destroyed records could not be overwritten (see the log); run it again",
                        total.overwrite_failures
                    );
                }
            }
            println!("{report}");
        }
        Command::Standin {
            system: _,
            delay_ms,
            fail_every,
        } => {
            let (bus, config) = kozomol_server::demo_bus::start().await?;
            bus.set_delay(Duration::from_millis(delay_ms));
            bus.fail_every(fail_every);
            println!(
                "{}",
                serde_json::json!({ "url": bus.url(), "client": config.client.to_string() })
            );
            cancel.cancelled().await;
            bus.shutdown().await;
        }
        Command::Admin {
            action: AdminAction::Create { login, config },
        } => {
            let settings = Settings::load(config.as_deref(), |k| std::env::var(k).ok())?;
            std::fs::create_dir_all(&settings.data_dir)?;
            let store = kozomol_store::connect(&settings.database_url()).await?;
            let account =
                kozomol_server::auth::create_admin_account(store.as_ref(), &login, "cli").await?;
            println!("{}", serde_json::to_string(&account)?);
        }
        Command::Quote {
            jurisdiction,
            kind,
            measured,
            limit,
            date,
            delivered,
            repeat,
        } => {
            use kozomol_fines::quote::{quote, Offence, Pricing, Speed};
            let offence = Offence {
                jurisdiction,
                kind,
                speed: measured.zip(limit).map(|(measured_kmh, limit_kmh)| Speed {
                    measured_kmh,
                    limit_kmh,
                }),
                date,
                delivered,
                repeat,
            };
            let catalogue = kozomol_fines::catalogue::Catalogue::bundled(jurisdiction);
            let calendars = kozomol_fines::calendar::Calendars::bundled();
            match quote(&catalogue, &calendars, &offence)? {
                Pricing::Fine(q) => println!("{}", serde_json::to_string(&q)?),
                Pricing::NoFine(none) => {
                    println!("{}", serde_json::to_string(&none)?);
                    std::process::exit(2);
                }
            }
        }
        Command::Simulate {
            cameras,
            events,
            rate,
            broker,
            broker_username,
            api,
            token,
            data_dir,
            receipt_timeout,
            small_frames,
            seed,
        } => {
            let token = match token {
                Some(t) => t,
                None => kozomol_server::simulate::admin_token_from_demo_credentials(&data_dir)
                    .context("no --token given and no demo credentials to take one from")?,
            };
            let options = kozomol_server::simulate::SimulationOptions {
                cameras,
                events: Some(events),
                rate,
                broker,
                broker_login: broker_username.map(|username| kozomol_core::topics::BrokerLogin {
                    username,
                    password: std::env::var("KOZOMOL_SIMULATE_BROKER_PASSWORD").unwrap_or_default(),
                }),
                api,
                token,
                work_dir: std::env::temp_dir()
                    .join(format!("kozomol-simulate-{}", std::process::id())),
                receipt_timeout: Duration::from_secs(receipt_timeout),
                small_frames,
                scene_seed: seed,
            };
            let work_dir = options.work_dir.clone();
            let report = kozomol_server::simulate::run_simulation(options, cancel).await;
            let _ = std::fs::remove_dir_all(&work_dir);
            let report = report?;
            println!(
                "{}",
                serde_json::json!({
                    "run_id": report.run_id,
                    "cameras": report.camera_ids.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    "submitted": report.submitted,
                    "accepted": report.accepted,
                    "duplicates": report.duplicates,
                    "rejected": report.rejected,
                    "resent": report.resent,
                    "elapsed_s": report.elapsed.as_secs_f64(),
                    "rate_achieved": report.rate_achieved,
                })
            );
            if !report.all_accepted() {
                anyhow::bail!("{} events were rejected", report.rejected);
            }
        }
    }
    Ok(())
}

/// The recognizer the settings describe, and when a read decides a case alone.
async fn load_recognizer(
    config: Option<&std::path::Path>,
) -> anyhow::Result<(
    kozomol_recognizer::Recognizer,
    kozomol_recognizer::worker::Thresholds,
)> {
    let settings = Settings::load(config, |k| std::env::var(k).ok())?;
    // The recognizer's settings only: reading plates needs no broker or database.
    let problems = settings.recognizer.problems();
    if !problems.is_empty() {
        return Err(SettingsError::Invalid(problems).into());
    }
    let recognizer_config = settings.recognizer.recognizer_config();
    let recognizer = tokio::task::spawn_blocking(move || {
        kozomol_recognizer::Recognizer::load(&recognizer_config)
    })
    .await??;
    Ok((recognizer, settings.recognizer.thresholds()))
}

/// The first Ctrl-C or SIGTERM cancels every part; a second one exits at once.
fn shutdown_on_signals() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        for round in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if round == 0 {
                tracing::info!("shutting down (again to force)");
                token.cancel();
            } else {
                tracing::warn!("forced exit");
                std::process::exit(130);
            }
        }
    });
    cancel
}
