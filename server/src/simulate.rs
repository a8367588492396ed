//! `kozomol simulate`: registers simulated cameras through the HTTP API, runs one edge
//! agent per camera in this process, and feeds them rendered violations at a steady
//! total rate until every event has its receipt.
//!
//! Frames come from a [`FramePool`] per camera (a few rendered up front); each event's
//! frames get a JPEG comment naming the event, so their bytes and hashes differ and
//! ingest stores every frame as it would a real camera's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{FixedOffset, Utc};
use ed25519_dalek::SigningKey;
use kozomol_camera_sim::{
    bishkek_sites, simulated_device, with_comment, FramePool, FrameSpec, SimError,
};
use kozomol_core::{CameraId, ClockSource, EventId, FrameRole, MeasuringDevice, PlateRead, Site};
use kozomol_edge_agent::{Agent, AgentConfig, AgentStats, Capture, EdgeError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::DemoCredentials;

/// What `kozomol simulate` was asked to do.
#[derive(Clone, Debug)]
pub struct SimulationOptions {
    pub cameras: u32,
    /// Events in total; `None` runs until cancelled.
    pub events: Option<u64>,
    /// Events per second, all cameras together.
    pub rate: f64,
    /// The MQTT broker, `host:port`.
    pub broker: String,
    /// The login every simulated camera presents; `None`: anonymous.
    pub broker_login: Option<kozomol_core::topics::BrokerLogin>,
    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:8080`.
    pub api: String,
    /// An admin's bearer token (cameras are registered with it).
    pub token: String,
    /// The agents' outboxes go under `work_dir/{camera_id}`.
    pub work_dir: PathBuf,
    /// How long to wait, once submitting ends, for the last receipts.
    pub receipt_timeout: Duration,
    /// Scale the overview down to 320 pixels across (events of a few tens of
    /// kilobytes): for load tests where the event count matters, not the evidence size.
    pub small_frames: bool,
    /// Draw the violations (plates, kinds, scenes) from this seed, so a run can be
    /// repeated; `None` draws fresh ones each run.
    pub scene_seed: Option<u64>,
}

/// How a simulation went.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulationReport {
    /// The run's tag: camera ids are `sim-{run_id}-NN`.
    pub run_id: String,
    pub camera_ids: Vec<CameraId>,
    /// Events made durable in the agents' outboxes.
    pub submitted: u64,
    /// Receipts by status (a re-sent event may collect a `duplicate` after its
    /// `accepted`, so these can add up to more than `submitted`).
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Re-sends the agents made (overdue receipts, reconnects).
    pub resent: u64,
    /// From the first submit to the last receipt.
    pub elapsed: Duration,
    /// Events submitted per second while submitting.
    pub rate_achieved: f64,
}

impl SimulationReport {
    /// Every event was accepted or was already there; none was refused.
    pub fn all_accepted(&self) -> bool {
        self.rejected == 0 && self.accepted + self.duplicates >= self.submitted
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("invalid simulation options: {0}")]
    InvalidOptions(String),
    #[error("cannot read demo credentials at {path}: {source}")]
    Credentials {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("demo credentials at {path} are not valid json: {source}")]
    CredentialsFormat {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("registering camera `{camera}` at {url} failed: {detail}")]
    Register {
        camera: String,
        url: String,
        detail: String,
    },
    #[error("rendering frames failed: {0}")]
    Frames(#[from] SimError),
    #[error("edge agent of camera `{camera}` failed: {source}")]
    Agent { camera: String, source: EdgeError },
    #[error("{missing} of {submitted} events had no receipt {timeout:?} after the last submit")]
    ReceiptTimeout {
        missing: u64,
        submitted: u64,
        timeout: Duration,
    },
    #[error("a simulation task failed: {0}")]
    Task(String),
}

/// The admin's token from `DATA_DIR/demo-credentials.json`, as `kozomol serve --demo`
/// writes it.
pub fn admin_token_from_demo_credentials(data_dir: &Path) -> Result<String, SimulateError> {
    let path = data_dir.join(DemoCredentials::FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|source| SimulateError::Credentials {
        path: path.clone(),
        source,
    })?;
    let credentials: DemoCredentials = serde_json::from_str(&text)
        .map_err(|source| SimulateError::CredentialsFormat { path, source })?;
    Ok(credentials.admin.token)
}

/// Frames rendered per camera: enough variety for a demo, few enough to start fast.
const FRAMES_PER_CAMERA: u64 = 4;
/// With many cameras each gets fewer frames (at least one): rendering one takes
/// 0.1-0.5 s of CPU.
const MAX_FRAMES_RENDERED: u64 = 48;
/// Camera agents re-send what has no receipt after this long.
const RESEND_AFTER: Duration = Duration::from_secs(10);
const BISHKEK_UTC_OFFSET_S: i32 = 6 * 3600;
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One simulated camera before its agent starts.
struct SimCamera {
    id: CameraId,
    key: SigningKey,
    site: Site,
    device: MeasuringDevice,
}

/// Runs the simulation described by `opts`. Returns once every submitted event has its
/// receipt; with `events: None` it submits until `cancel` fires, then waits for the
/// receipts. Fails if receipts are missing `receipt_timeout` after the last submit.
pub async fn run_simulation(
    opts: SimulationOptions,
    cancel: CancellationToken,
) -> Result<SimulationReport, SimulateError> {
    check_options(&opts)?;
    let run_id = new_run_id();
    let cameras = make_cameras(&run_id, opts.cameras)?;
    info!(run_id = %run_id, cameras = cameras.len(), api = %opts.api, "registering simulated cameras");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| SimulateError::Task(format!("http client: {e}")))?;
    for camera in &cameras {
        register(&http, &opts, camera).await?;
    }

    let per_camera = opts
        .events
        .map_or(FRAMES_PER_CAMERA, |m| m.div_ceil(u64::from(opts.cameras)))
        .min(MAX_FRAMES_RENDERED / u64::from(opts.cameras))
        .clamp(1, FRAMES_PER_CAMERA);
    let pools = render_pools(&cameras, per_camera, opts.small_frames, opts.scene_seed).await?;

    // The agents outlive `cancel`: once submitting stops they still have receipts to
    // take. They stop when this function returns, whichever way it does.
    let agents_cancel = CancellationToken::new();
    let _stop_agents = agents_cancel.clone().drop_guard();
    let mut agents = Vec::with_capacity(cameras.len());
    for camera in cameras {
        let mut config = AgentConfig::new(
            camera.id.clone(),
            camera.key,
            opts.broker.clone(),
            opts.work_dir.join(camera.id.as_str()),
            camera.site,
            camera.device,
        );
        config.resend_after = RESEND_AFTER;
        config.broker_login = opts.broker_login.clone();
        let agent = Agent::start(config, agents_cancel.child_token())
            .await
            .map_err(|source| SimulateError::Agent {
                camera: camera.id.to_string(),
                source,
            })?;
        agents.push(Arc::new(agent));
    }
    let camera_ids: Vec<CameraId> = agents.iter().map(|a| a.camera_id().clone()).collect();
    info!(run_id = %run_id, events = ?opts.events, rate = opts.rate, "simulation submitting");

    let outcome = drive(&opts, &agents, pools, &cancel).await;
    let stats: Vec<AgentStats> = agents.iter().map(|a| a.stats()).collect();
    for agent in agents {
        // every task holding a clone has finished by now
        if let Ok(agent) = Arc::try_unwrap(agent) {
            agent.shutdown().await;
        }
    }
    let (submitted, submit_elapsed, elapsed) = outcome?;
    let sum = |f: fn(&AgentStats) -> u64| stats.iter().map(f).sum::<u64>();
    let report = SimulationReport {
        run_id,
        camera_ids,
        submitted,
        accepted: sum(|s| s.accepted),
        duplicates: sum(|s| s.duplicates),
        rejected: sum(|s| s.rejected),
        resent: sum(|s| s.resent),
        elapsed,
        rate_achieved: submitted as f64 / submit_elapsed.as_secs_f64().max(1e-9),
    };
    info!(
        submitted = report.submitted,
        accepted = report.accepted,
        duplicates = report.duplicates,
        rejected = report.rejected,
        elapsed_ms = report.elapsed.as_millis() as u64,
        rate = report.rate_achieved,
        "simulation done"
    );
    Ok(report)
}

fn check_options(opts: &SimulationOptions) -> Result<(), SimulateError> {
    let mut problems = Vec::new();
    if !(1..=999).contains(&opts.cameras) {
        problems.push("cameras must be 1 to 999");
    }
    // Below one event a day per camera the submit period overflows a Duration.
    if !(opts.rate.is_finite() && (0.001..=100_000.0).contains(&opts.rate)) {
        problems.push("rate must be 0.001 to 100000 events per second");
    }
    if opts.broker.trim().is_empty() {
        problems.push("broker is required");
    }
    if !(opts.api.starts_with("http://") || opts.api.starts_with("https://")) {
        problems.push("api must be an http:// or https:// url");
    }
    if opts.token.trim().is_empty() {
        problems.push("token is required");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SimulateError::InvalidOptions(problems.join("; ")))
    }
}

/// Six hex digits: enough that reruns against one server do not clash.
fn new_run_id() -> String {
    format!("{:06x}", rand::thread_rng().gen_range(0..0x100_0000))
}

fn make_cameras(run_id: &str, count: u32) -> Result<Vec<SimCamera>, SimulateError> {
    let sites = bishkek_sites();
    let today = Utc::now()
        .with_timezone(
            &FixedOffset::east_opt(BISHKEK_UTC_OFFSET_S).expect("UTC+6 is a valid offset"),
        )
        .date_naive();
    let mut rng = StdRng::from_entropy();
    let width = if count > 99 { 3 } else { 2 };
    (0..count)
        .map(|i| {
            let tag = format!("{run_id}-{:0width$}", i + 1);
            let id = CameraId::parse(&format!("sim-{tag}"))
                .map_err(|e| SimulateError::Task(format!("camera id: {e}")))?;
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed)
                .map_err(|e| SimulateError::Task(format!("no randomness for a camera key: {e}")))?;
            let mut site = sites[i as usize % sites.len()].clone();
            // cameras beyond the list of sites watch further lanes of the same ones
            site.lane = 1 + (i as usize / sites.len() % 3) as u8;
            Ok(SimCamera {
                id,
                key: SigningKey::from_bytes(&seed),
                site,
                device: simulated_device(&tag, today, &mut rng),
            })
        })
        .collect()
}

async fn register(
    http: &reqwest::Client,
    opts: &SimulationOptions,
    camera: &SimCamera,
) -> Result<(), SimulateError> {
    let url = format!("{}/api/v1/cameras", opts.api.trim_end_matches('/'));
    let cert = &camera.device.certificate;
    let body = json!({
        "camera_id": camera.id,
        "public_key": hex::encode(camera.key.verifying_key().as_bytes()),
        "device_serial": camera.device.serial,
        "certificate": {
            "number": cert.number,
            "valid_from": cert.valid_from.to_string(),
            "valid_until": cert.valid_until.to_string(),
        },
        "site": camera.site,
    });
    let failed = |detail: String| SimulateError::Register {
        camera: camera.id.to_string(),
        url: url.clone(),
        detail,
    };
    let response = http
        .post(&url)
        .bearer_auth(&opts.token)
        .json(&body)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(failed(format!(
            "{status}: {}",
            text.chars().take(500).collect::<String>()
        )));
    }
    Ok(())
}

/// Overview width with `small_frames`: an event of a few tens of kilobytes.
const SMALL_OVERVIEW_WIDTH: u32 = 320;

/// Renders `per_camera` violations for each camera (its id and address burned in).
async fn render_pools(
    cameras: &[SimCamera],
    per_camera: u64,
    small_frames: bool,
    scene_seed: Option<u64>,
) -> Result<Vec<Arc<FramePool>>, SimulateError> {
    let started = Instant::now();
    let mut seeds = scene_seed.map_or_else(StdRng::from_entropy, StdRng::seed_from_u64);
    let now = Utc::now();
    let spec_sets: Vec<Vec<FrameSpec>> = cameras
        .iter()
        .map(|camera| {
            (0..per_camera)
                .map(|_| {
                    FrameSpec::random(seeds.gen(), camera.id.as_str(), &camera.site.address, now)
                })
                .collect()
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pools = tokio::task::spawn_blocking(move || {
        spec_sets
            .into_iter()
            .map(|specs| {
                let pool = FramePool::render(specs, threads)?;
                let pool = if small_frames {
                    pool.with_small_overviews(SMALL_OVERVIEW_WIDTH)?
                } else {
                    pool
                };
                Ok::<_, SimError>(Arc::new(pool))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| SimulateError::Task(format!("frame rendering: {e}")))??;
    info!(
        frames = pools.iter().map(|p| p.len()).sum::<usize>(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulated frames rendered"
    );
    Ok(pools)
}

/// Submits on every camera at its share of the rate, then waits for the receipts.
/// Returns (submitted, time spent submitting, time until the last receipt).
async fn drive(
    opts: &SimulationOptions,
    agents: &[Arc<Agent>],
    pools: Vec<Arc<FramePool>>,
    cancel: &CancellationToken,
) -> Result<(u64, Duration, Duration), SimulateError> {
    let cameras = agents.len() as u64;
    let submitted = Arc::new(AtomicU64::new(0));
    let stop = cancel.child_token();
    let progress_done = CancellationToken::new();
    let progress = tokio::spawn(report_progress(
        agents.to_vec(),
        submitted.clone(),
        opts.events,
        progress_done.clone(),
    ));
    let started = tokio::time::Instant::now();
    let mut submitters = JoinSet::new();
    for (index, (agent, pool)) in agents.iter().zip(pools).enumerate() {
        let index = index as u64;
        // camera i takes events i, i+N, i+2N, ...: its share of M, evenly spaced
        let quota = opts
            .events
            .map(|m| m / cameras + u64::from(index < m % cameras));
        let period = Duration::from_secs_f64(cameras as f64 / opts.rate);
        let first = started + Duration::from_secs_f64(index as f64 / opts.rate);
        submitters.spawn(submit_loop(
            agent.clone(),
            pool,
            quota,
            (first, period),
            submitted.clone(),
            stop.clone(),
        ));
    }
    let mut failure = None;
    while let Some(joined) = submitters.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(SimulateError::Task(e.to_string())));
        if let Err(e) = result {
            warn!(error = %e, "simulated camera stopped submitting");
            stop.cancel();
            failure.get_or_insert(e);
        }
    }
    let submit_elapsed = started.elapsed();
    if let Some(e) = failure {
        progress_done.cancel();
        let _ = progress.await;
        return Err(e);
    }

    let waits = agents
        .iter()
        .map(|agent| agent.wait_until_empty(opts.receipt_timeout));
    let all_receipted = futures::future::join_all(waits)
        .await
        .into_iter()
        .all(|ok| ok);
    let elapsed = started.elapsed();
    progress_done.cancel();
    let _ = progress.await;
    let submitted = submitted.load(Ordering::Relaxed);
    if !all_receipted {
        let missing = agents.iter().map(|a| a.stats().outbox_depth).sum();
        return Err(SimulateError::ReceiptTimeout {
            missing,
            submitted,
            timeout: opts.receipt_timeout,
        });
    }
    Ok((submitted, submit_elapsed, elapsed))
}

async fn submit_loop(
    agent: Arc<Agent>,
    pool: Arc<FramePool>,
    quota: Option<u64>,
    (first, period): (tokio::time::Instant, Duration),
    submitted: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<(), SimulateError> {
    let mut rng = StdRng::from_entropy();
    let mut k: u32 = 0;
    while quota.is_none_or(|q| u64::from(k) < q) {
        // a camera that falls behind its schedule catches up without sleeping
        let due = first + period * k;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        let frames = pool.next();
        let event_id = EventId::new_v7();
        let tag = format!("kozomol-sim event {event_id}");
        let capture = Capture {
            captured_at: Utc::now(),
            clock_source: ClockSource::Ntp,
            clock_offset_ms: Some(rng.gen_range(-20..=20)),
            kind: frames.spec.kind,
            measurement: frames.spec.measurement.clone(),
            lane: None,
            plate_read: Some(PlateRead {
                text: frames.spec.plate.canonical(),
                confidence_milli: rng.gen_range(900..=990),
                country: Some("KG".into()),
            }),
            frames: vec![
                (FrameRole::Overview, with_comment(&frames.overview, &tag)?),
                (
                    FrameRole::Plate,
                    with_comment(&frames.plate_close_up, &tag)?,
                ),
            ],
        };
        agent
            .submit_as(event_id, capture)
            .await
            .map_err(|source| SimulateError::Agent {
                camera: agent.camera_id().to_string(),
                source,
            })?;
        submitted.fetch_add(1, Ordering::Relaxed);
        k += 1;
    }
    Ok(())
}

/// One line to stderr per second while the run lasts.
async fn report_progress(
    agents: Vec<Arc<Agent>>,
    submitted: Arc<AtomicU64>,
    total: Option<u64>,
    stop: CancellationToken,
) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let stats: Vec<AgentStats> = agents.iter().map(|a| a.stats()).collect();
        let sum = |f: fn(&AgentStats) -> u64| stats.iter().map(f).sum::<u64>();
        let done = submitted.load(Ordering::Relaxed);
        let of = total.map_or(String::new(), |t| format!("/{t}"));
        eprintln!(
            "simulate: {:>5.1}s submitted {done}{of} ({:.0}/s), receipts: {} accepted, {} duplicate, {} rejected; awaiting {}; {}/{} cameras connected",
            started.elapsed().as_secs_f64(),
            done as f64 / started.elapsed().as_secs_f64().max(1e-9),
            sum(|s| s.accepted),
            sum(|s| s.duplicates),
            sum(|s| s.rejected),
            sum(|s| s.outbox_depth),
            stats.iter().filter(|s| s.connected).count(),
            stats.len(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SimulationOptions {
        SimulationOptions {
            cameras: 3,
            events: Some(10),
            rate: 5.0,
            broker: "127.0.0.1:1884".into(),
            broker_login: None,
            api: "http://127.0.0.1:8080".into(),
            token: "t".into(),
            work_dir: PathBuf::from("/tmp"),
            receipt_timeout: Duration::from_secs(5),
            small_frames: false,
            scene_seed: None,
        }
    }

    #[test]
    fn options_are_checked_all_at_once() {
        check_options(&options()).expect("valid");
        let bad = SimulationOptions {
            cameras: 0,
            rate: f64::NAN,
            api: "127.0.0.1:8080".into(),
            ..options()
        };
        let Err(SimulateError::InvalidOptions(text)) = check_options(&bad) else {
            panic!("invalid options accepted");
        };
        assert!(
            text.contains("cameras") && text.contains("rate") && text.contains("api"),
            "{text}"
        );
        for rate in [1e-19, 0.0, -1.0, f64::INFINITY, 1e9] {
            let refused = SimulationOptions { rate, ..options() };
            assert!(check_options(&refused).is_err(), "{rate}");
        }
        for rate in [0.001, 100_000.0] {
            let taken = SimulationOptions { rate, ..options() };
            check_options(&taken).expect("in range");
        }
    }

    #[test]
    fn cameras_are_named_by_run_and_valid_today() {
        let cameras = make_cameras("abc123", 12).expect("cameras");
        assert_eq!(cameras[0].id.as_str(), "sim-abc123-01");
        assert_eq!(cameras[11].id.as_str(), "sim-abc123-12");
        let today = Utc::now().date_naive();
        for camera in &cameras {
            assert!(camera.device.certificate.covers(today));
            assert!(camera.device.serial.ends_with(&camera.id.as_str()[4..]));
        }
        assert_ne!(cameras[0].key.to_bytes(), cameras[1].key.to_bytes());
        assert_eq!(cameras[9].site.id, cameras[0].site.id);
        assert_ne!(cameras[9].site.lane, cameras[0].site.lane);
    }

    #[test]
    fn admin_token_comes_from_the_demo_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let account =
            |login: &str| json!({"login": login, "password": "p", "token": format!("tok-{login}")});
        let file = json!({
            "reviewer": account("reviewer"), "supervisor": account("supervisor"),
            "finance": account("finance"), "admin": account("admin"), "auditor": account("auditor"),
        });
        std::fs::write(dir.path().join("demo-credentials.json"), file.to_string()).expect("write");
        assert_eq!(
            admin_token_from_demo_credentials(dir.path()).expect("token"),
            "tok-admin"
        );
        let missing = admin_token_from_demo_credentials(&dir.path().join("nowhere"));
        assert!(matches!(missing, Err(SimulateError::Credentials { .. })));
    }
}
