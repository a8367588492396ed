//! `run_simulation` against stand-ins: a stub of the camera-registration route, a
//! Mosquitto of its own on a free port, and a fake ingest that verifies each envelope
//! with the registered key and answers with receipts.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use kozomol_camera_sim::KgPlate;
use kozomol_core::envelope::parse_public_key;
use kozomol_core::messages::{Receipt, ReceiptStatus};
use kozomol_core::topics::{self, TopicKind};
use kozomol_core::{DecodedEnvelope, FrameRole};
use kozomol_server::simulate::{run_simulation, SimulateError, SimulationOptions};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "admin-test-token";

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Mosquitto of this test's own, killed when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(kozomol_testkit::mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto should be installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the registration stub was sent: camera id → (public key hex, body).
type Registered = Arc<Mutex<HashMap<String, serde_json::Value>>>;

async fn register_stub(
    State(registered): State<Registered>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> StatusCode {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return StatusCode::UNAUTHORIZED;
    }
    let Some(id) = body["camera_id"].as_str() else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    registered
        .lock()
        .expect("stub lock")
        .insert(id.to_owned(), body.clone());
    StatusCode::CREATED
}

async fn start_api() -> (String, Registered) {
    let registered = Registered::default();
    let app = Router::new()
        .route("/api/v1/cameras", post(register_stub))
        .with_state(registered.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind api stub");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, registered)
}

/// What the fake ingest saw.
#[derive(Default)]
struct Seen {
    events: HashSet<String>,
    overview_hashes: HashSet<Vec<u8>>,
    plates: Vec<String>,
    problems: Vec<String>,
    jpegs_checked: usize,
}

/// Subscribes to violations, verifies each with the registered key, and answers
/// `accepted` (first time) or `duplicate`.
async fn start_fake_ingest(port: u16, registered: Registered) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut options = MqttOptions::new("fake-ingest", "127.0.0.1", port);
    options.set_max_packet_size(4 * 1024 * 1024, 64 * 1024);
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    client
        .subscribe(topics::VIOLATIONS_FILTER, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let state = seen.clone();
    tokio::spawn(async move {
        while let Some((topic, payload)) = rx.recv().await {
            let Some((camera, TopicKind::Violations)) = topics::parse(&topic) else {
                continue;
            };
            let receipt = check_event(&camera, &payload, &registered, &state);
            let json = serde_json::to_vec(&receipt).expect("receipt json");
            let receipts = topics::topic(&camera, TopicKind::Receipts);
            client
                .publish(receipts, QoS::AtLeastOnce, false, json)
                .await
                .expect("publish receipt");
        }
    });
    seen
}

fn check_event(
    camera: &kozomol_core::CameraId,
    payload: &[u8],
    registered: &Registered,
    seen: &Mutex<Seen>,
) -> Receipt {
    let mut seen = seen.lock().expect("seen lock");
    let rejected = |seen: &mut Seen, why: String| {
        seen.problems.push(why);
        Receipt {
            event_id: None,
            status: ReceiptStatus::Rejected,
            reason: None,
            detail: None,
            case_id: None,
        }
    };
    let envelope = match DecodedEnvelope::decode(payload) {
        Ok(e) => e,
        Err(e) => return rejected(&mut seen, format!("decode: {e}")),
    };
    let key_hex = registered
        .lock()
        .expect("stub lock")
        .get(camera.as_str())
        .and_then(|body| body["public_key"].as_str().map(str::to_owned));
    let Some(key) = key_hex.and_then(|k| parse_public_key(&k).ok()) else {
        return rejected(&mut seen, format!("unregistered camera {camera}"));
    };
    if let Err(e) = envelope.verify(&key) {
        return rejected(&mut seen, format!("verify: {e}"));
    }
    let event = &envelope.event;
    let event_id = event.event_id.to_string();
    let first = seen.events.insert(event_id.clone());
    if first {
        match &event.plate_read {
            Some(read) if read.text.parse::<KgPlate>().is_ok() => {
                seen.plates.push(read.text.clone())
            }
            other => seen.problems.push(format!("bad plate read {other:?}")),
        }
        let overview = event
            .frames
            .iter()
            .position(|f| f.role == FrameRole::Overview);
        match overview {
            Some(i) => {
                seen.overview_hashes.insert(event.frames[i].sha256.clone());
                if seen.jpegs_checked < 2 {
                    seen.jpegs_checked += 1;
                    match image::load_from_memory(&envelope.frames[i]) {
                        Ok(img) if img.width() == 1920 && img.height() == 1080 => {}
                        Ok(img) => seen.problems.push(format!(
                            "overview is {}x{}",
                            img.width(),
                            img.height()
                        )),
                        Err(e) => seen.problems.push(format!("overview jpeg: {e}")),
                    }
                }
            }
            None => seen.problems.push("no overview frame".into()),
        }
        if envelope
            .frames
            .iter()
            .any(|f| !(20_000..=400_000).contains(&f.len()))
        {
            seen.problems.push(format!(
                "frame sizes {:?}",
                envelope.frames.iter().map(Vec::len).collect::<Vec<_>>()
            ));
        }
    }
    Receipt {
        event_id: Some(event_id),
        status: if first {
            ReceiptStatus::Accepted
        } else {
            ReceiptStatus::Duplicate
        },
        reason: None,
        detail: None,
        case_id: None,
    }
}

fn options(api: String, broker_port: u16, work_dir: &std::path::Path) -> SimulationOptions {
    SimulationOptions {
        cameras: 3,
        events: Some(12),
        rate: 24.0,
        broker: format!("127.0.0.1:{broker_port}"),
        broker_login: None,
        api,
        token: TOKEN.into(),
        work_dir: work_dir.to_path_buf(),
        receipt_timeout: Duration::from_secs(30),
        small_frames: false,
        scene_seed: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_signed_receipted_and_counted() {
    let broker = Mosquitto::start();
    let (api, registered) = start_api().await;
    let seen = start_fake_ingest(broker.port, registered.clone()).await;
    let work = tempfile::tempdir().expect("tempdir");

    let report = run_simulation(
        options(api, broker.port, work.path()),
        CancellationToken::new(),
    )
    .await
    .expect("simulation succeeds");

    assert_eq!(report.submitted, 12);
    assert_eq!(report.accepted, 12, "{report:?}");
    assert_eq!(report.rejected, 0);
    assert!(report.all_accepted());
    assert!(report.rate_achieved > 5.0, "{report:?}");
    let registered = registered.lock().expect("lock").clone();
    assert_eq!(registered.len(), 3);
    for (i, id) in report.camera_ids.iter().enumerate() {
        assert_eq!(id.as_str(), format!("sim-{}-{:02}", report.run_id, i + 1));
        let body = &registered[id.as_str()];
        assert_eq!(body["public_key"].as_str().map(str::len), Some(64));
        assert!(body["site"]["address"]
            .as_str()
            .is_some_and(|a| a.contains("Бишкек")));
        assert!(body["certificate"]["valid_until"].as_str().is_some());
    }
    let seen = seen.lock().expect("lock");
    assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    assert_eq!(seen.events.len(), 12);
    // pooled frames carry a per-event comment, so every overview is distinct evidence
    assert_eq!(seen.overview_hashes.len(), 12);
    assert_eq!(seen.plates.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scene_seed_repeats_the_plates() {
    let mut runs = Vec::new();
    for seed in [Some(7), Some(7), Some(8)] {
        let broker = Mosquitto::start();
        let (api, registered) = start_api().await;
        let seen = start_fake_ingest(broker.port, registered).await;
        let work = tempfile::tempdir().expect("tempdir");
        let mut opts = options(api, broker.port, work.path());
        opts.cameras = 2;
        opts.events = Some(4);
        opts.scene_seed = seed;
        let report = run_simulation(opts, CancellationToken::new())
            .await
            .expect("simulation succeeds");
        assert!(report.all_accepted(), "{report:?}");
        let mut plates = seen.lock().expect("lock").plates.clone();
        plates.sort();
        assert_eq!(plates.len(), 4);
        runs.push(plates);
    }
    assert_eq!(runs[0], runs[1], "one seed, one set of plates");
    assert_ne!(runs[0], runs[2], "another seed, other plates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_receipts_fail_after_the_timeout() {
    let broker = Mosquitto::start();
    let (api, _registered) = start_api().await;
    let work = tempfile::tempdir().expect("tempdir");
    let mut opts = options(api, broker.port, work.path());
    opts.cameras = 2;
    opts.events = Some(4);
    opts.receipt_timeout = Duration::from_secs(2);

    let started = Instant::now();
    let result = run_simulation(opts, CancellationToken::new()).await;
    match result {
        Err(SimulateError::ReceiptTimeout {
            missing, submitted, ..
        }) => {
            assert_eq!((missing, submitted), (4, 4));
        }
        other => panic!("expected a receipt timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_stops_the_run() {
    let (api, registered) = start_api().await;
    let work = tempfile::tempdir().expect("tempdir");
    let mut opts = options(api, free_port(), work.path());
    opts.token = "not-the-admin".into();
    let result = run_simulation(opts, CancellationToken::new()).await;
    match result {
        Err(SimulateError::Register { detail, .. }) => assert!(detail.contains("401"), "{detail}"),
        other => panic!("expected a registration error, got {other:?}"),
    }
    assert!(registered.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_endless_run_returns_what_was_receipted() {
    let broker = Mosquitto::start();
    let (api, registered) = start_api().await;
    let seen = start_fake_ingest(broker.port, registered).await;
    let work = tempfile::tempdir().expect("tempdir");
    let mut opts = options(api, broker.port, work.path());
    opts.events = None;
    opts.rate = 10.0;
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    let watched = seen.clone();
    // cancel once events flow (rendering first may take a while on a busy machine)
    tokio::spawn(async move {
        while watched.lock().expect("lock").events.len() < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stopper.cancel();
    });
    let report = run_simulation(opts, cancel)
        .await
        .expect("simulation succeeds");
    assert!(report.submitted >= 3, "{report:?}");
    assert_eq!(report.accepted, report.submitted, "{report:?}");
    assert_eq!(
        seen.lock().expect("lock").events.len() as u64,
        report.submitted
    );
}
