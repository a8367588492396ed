//! `ingest-bench`: ingest throughput from publish to committed case, on the embedded
//! default (rumqttd + SQLite) and on Mosquitto + PostgreSQL, next to this disk's
//! fsync'd write bandwidth measured in the same run. See docs/performance.md.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use ed25519_dalek::SigningKey;
use kozomol_core::envelope::encode_signed;
use kozomol_core::{
    CalibrationCertificate, CameraId, ClockSource, MeasuringDevice, PlateRead, Site,
};
use kozomol_ingest::{IngestConfig, IngestMetrics};
use kozomol_store::{CameraRegistration, EvidenceStore, Store};
use kozomol_testkit::fines::speeding_event;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Ingest throughput: publish → committed case, against the disk's fsync bound")]
struct Args {
    /// Number of 300 KB two-frame events per backend.
    #[arg(long, default_value_t = 2000)]
    large_events: usize,
    /// Number of 1 KB events per backend.
    #[arg(long, default_value_t = 20_000)]
    small_events: usize,
    /// Cameras the events come from.
    #[arg(long, default_value_t = 20)]
    cameras: usize,
    /// Skip the Mosquitto + PostgreSQL runs.
    #[arg(long)]
    embedded_only: bool,
    /// PostgreSQL server to create a scratch database in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
    /// Folder on the disk to measure (default: a temporary folder).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let tmp = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let disk = disk_bandwidth(tmp.path())?;
    println!(
        "disk: fsync'd sequential write {:.1} MB/s (4 MiB writes, fdatasync each)",
        disk / 1e6
    );

    let cameras = make_cameras(args.cameras);
    let large = make_events(&cameras, args.large_events, 150_000)?;
    let small = make_events(&cameras, args.small_events, 600)?;
    let mut results = Vec::new();

    let mut backends: Vec<&str> = vec!["embedded (rumqttd + SQLite)"];
    if !args.embedded_only {
        backends.push("Mosquitto + PostgreSQL");
    }
    for backend in backends {
        for (label, events) in [("300KB", &large), ("1KB", &small)] {
            let run_dir = tempfile::tempdir_in(tmp.path())?;
            let env = Environment::start(backend, run_dir.path(), &args.postgres).await?;
            let r = run(&env, &cameras, events).await?;
            env.stop().await;
            let bytes_per_s = r.bytes as f64 / r.seconds;
            let line = json!({
                "backend": backend,
                "events": label,
                "count": events.len(),
                "seconds": (r.seconds * 1000.0).round() / 1000.0,
                "events_per_s": (events.len() as f64 / r.seconds).round(),
                "mb_per_s": (bytes_per_s / 1e4).round() / 100.0,
                "ratio_to_disk_bound": ((bytes_per_s / disk) * 1000.0).round() / 1000.0,
            });
            println!("{line}");
            results.push(line);
        }
    }
    println!(
        "{}",
        json!({"disk_mb_per_s": (disk / 1e4).round() / 100.0, "results": results})
    );
    Ok(())
}

/// Bytes per second for 4 MiB writes each followed by fdatasync, over 256 MiB.
fn disk_bandwidth(dir: &Path) -> Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let chunk = vec![0x5au8; 4 << 20];
    let total = 64;
    let started = Instant::now();
    for _ in 0..total {
        file.write_all(&chunk)?;
        file.sync_data()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok((total * chunk.len()) as f64 / seconds)
}

struct Camera {
    id: CameraId,
    key: SigningKey,
}

fn make_cameras(n: usize) -> Vec<Camera> {
    (0..n)
        .map(|i| Camera {
            id: CameraId::parse(&format!("bench-{i:03}")).expect("valid id"),
            key: SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]),
        })
        .collect()
}

fn site() -> Site {
    Site {
        id: "bench-site".into(),
        lat_e6: 42_870_000,
        lon_e6: 74_600_000,
        address: "проспект Чуй, Бишкек".into(),
        direction: "eastbound".into(),
        lane: 1,
    }
}

fn device() -> MeasuringDevice {
    MeasuringDevice {
        serial: "BENCH-1".into(),
        certificate: CalibrationCertificate {
            number: "BENCH-CERT".into(),
            valid_from: "2020-01-01".parse().expect("date"),
            valid_until: "2099-12-31".parse().expect("date"),
        },
    }
}

/// Signed envelopes with distinct random frames of about `frame_bytes` each (two frames
/// for large events, one for small).
fn make_events(cameras: &[Camera], n: usize, frame_bytes: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let frames_per_event = if frame_bytes > 10_000 { 2 } else { 1 };
    (0..n)
        .map(|i| {
            let camera = &cameras[i % cameras.len()];
            let frames: Vec<Vec<u8>> = (0..frames_per_event)
                .map(|_| {
                    let mut f = vec![0u8; frame_bytes];
                    rng.fill(&mut f[..]);
                    f[0] = 0xff;
                    f[1] = 0xd8;
                    f
                })
                .collect();
            let mut event =
                speeding_event(&camera.id, chrono::Utc::now().timestamp_millis(), &frames);
            // Its own device, certified for decades: the bench takes the time from the clock.
            event.site = site();
            event.device = device();
            event.clock_source = ClockSource::Ntp;
            event.plate_read = Some(PlateRead {
                text: "01123ABC".into(),
                confidence_milli: 950,
                country: Some("KG".into()),
            });
            let bytes = encode_signed(&event, &frames, &camera.key, None)?;
            Ok((
                format!("kozomol/v1/cameras/{}/violations", camera.id),
                bytes,
            ))
        })
        .collect()
}

struct Environment {
    store: Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
    broker: (String, u16),
    shared: bool,
    mosquitto: Option<Child>,
    scratch_db: Option<(String, String)>,
}

impl Environment {
    async fn start(backend: &str, dir: &Path, postgres: &str) -> Result<Environment> {
        let port = free_port()?;
        let evidence = Arc::new(EvidenceStore::open(&dir.join("evidence"), "bench")?);
        if backend.starts_with("embedded") {
            let addr = format!("127.0.0.1:{port}").parse()?;
            tokio::task::spawn_blocking(move || kozomol_server::broker::start(addr)).await??;
            let store =
                kozomol_store::connect(&format!("sqlite://{}", dir.join("kozomol.db").display()))
                    .await?;
            Ok(Environment {
                store,
                evidence,
                broker: ("127.0.0.1".into(), port),
                shared: false,
                mosquitto: None,
                scratch_db: None,
            })
        } else {
            let conf = dir.join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\nmessage_size_limit 4194304\nmax_inflight_messages 1000\nmax_queued_messages 1000000\nmax_queued_bytes 0\n"
                ),
            )?;
            let mosquitto = Command::new("/usr/sbin/mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("start mosquitto")?;
            wait_port(port).await?;
            let name = format!("kozomol_bench_{}", std::process::id());
            let admin = sqlx::PgPool::connect(postgres).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await?;
            admin.close().await;
            let url = match postgres.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => bail!("postgres url has no database"),
            };
            let store = kozomol_store::connect(&url).await?;
            Ok(Environment {
                store,
                evidence,
                broker: ("127.0.0.1".into(), port),
                shared: true,
                mosquitto: Some(mosquitto),
                scratch_db: Some((postgres.to_owned(), name)),
            })
        }
    }

    async fn stop(mut self) {
        if let Some(mut m) = self.mosquitto.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
        if let Some((admin_url, name)) = self.scratch_db.take() {
            drop(self.store);
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await;
            }
        }
    }
}

struct RunResult {
    seconds: f64,
    bytes: u64,
}

async fn run(
    env: &Environment,
    cameras: &[Camera],
    events: &[(String, Vec<u8>)],
) -> Result<RunResult> {
    for camera in cameras {
        env.store
            .register_camera(&CameraRegistration {
                camera_id: camera.id.clone(),
                public_key: camera.key.verifying_key().to_bytes(),
                device_serial: device().serial,
                certificate: device().certificate,
                site: site(),
            })
            .await?;
    }
    let metrics = Arc::new(IngestMetrics::default());
    let cancel = CancellationToken::new();
    let mut config = IngestConfig::new(env.broker.0.clone(), env.broker.1, "bench-ingest");
    config.shared_subscription = env.shared;
    let ingest = tokio::spawn(kozomol_ingest::run(
        config,
        Arc::clone(&env.store),
        Arc::clone(&env.evidence),
        Arc::clone(&metrics),
        cancel.clone(),
    ));
    // Give ingest its subscription before anything is published.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let bytes: u64 = events.iter().map(|(_, b)| b.len() as u64).sum();
    let publishers = 4;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let slice: Vec<(String, Vec<u8>)> =
            events.iter().skip(p).step_by(publishers).cloned().collect();
        let (host, port) = env.broker.clone();
        tasks.push(tokio::spawn(async move {
            publish_all(host, port, p, slice).await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done =
            metrics.accepted.load(Ordering::Relaxed) + metrics.duplicates.load(Ordering::Relaxed);
        if done >= events.len() as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {done} of {} events committed in 600 s", events.len());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await??;
    }
    cancel.cancel();
    let _ = ingest.await;
    if metrics.accepted.load(Ordering::Relaxed) != events.len() as u64 {
        bail!(
            "accepted {} of {}",
            metrics.accepted.load(Ordering::Relaxed),
            events.len()
        );
    }
    Ok(RunResult { seconds, bytes })
}

async fn publish_all(
    host: String,
    port: u16,
    n: usize,
    events: Vec<(String, Vec<u8>)>,
) -> Result<()> {
    let mut options = MqttOptions::new(format!("bench-pub-{n}"), host, port);
    options
        .set_max_packet_size(4 << 20, 4 << 20)
        .set_inflight(500)
        .set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let total = events.len();
    let sender = tokio::spawn(async move {
        for (topic, payload) in events {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await?;
        }
        Ok::<_, rumqttc::ClientError>(client)
    });
    let mut acked = 0;
    while acked < total {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => bail!("publisher {n}: {e}"),
        }
    }
    let client = sender.await??;
    let _ = client.disconnect().await;
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_port(port: u16) -> Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("port {port} never opened")
}
