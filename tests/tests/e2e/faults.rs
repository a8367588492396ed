//! Fault tests: processes and brokers die mid-stream; afterwards every event is a case
//! exactly once, with its frames intact. Brokers and databases that get killed are
//! private ones on free ports, never the machine's shared services.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use kozomol_tests::link::CuttableLink;
use kozomol_tests::{bin, free_port, tail, Kozomol, Mosquitto, Process};
use serde_json::json;

use crate::backbone::assert_cases_with_frames;

/// Waits until the server lists `n` cases (or fails after `timeout`).
fn wait_for_cases(server: &Kozomol, n: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    while Instant::now() < deadline {
        if let Ok(cases) = server.all_cases() {
            seen = cases.len();
            if seen >= n {
                return seen;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    seen
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn finish_simulation(mut sim: Process) -> serde_json::Value {
    let code = sim
        .wait(Duration::from_secs(300))
        .expect("simulate finishes");
    let log = sim.log_text();
    assert_eq!(code, 0, "simulate failed:\n{}", tail(&log, 4000));
    kozomol_tests::last_json_line(&log).expect("simulate report")
}

#[test]
fn server_with_embedded_broker_killed_mid_stream_and_restarted() {
    let mut server = Kozomol::start().expect("kozomol starts");
    let sim = server.spawn_simulate(4, 400, 80.0, &[]).expect("simulate");
    wait_until("the first cases", Duration::from_secs(60), || {
        server.all_cases().map(|c| c.len() >= 60).unwrap_or(false)
    });
    server.kill();
    std::thread::sleep(Duration::from_secs(1));
    server.restart().expect("kozomol restarts");
    let report = finish_simulation(sim);
    assert_eq!(report["submitted"], 400, "{report}");
    assert_cases_with_frames(&server, 400);
}

#[test]
fn external_broker_killed_mid_stream_and_restarted() {
    let mut mosquitto = Mosquitto::start().expect("mosquitto starts");
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Kozomol::start_in(&tmp.path().join("data"), Some(mosquitto.addr()), None)
        .expect("kozomol starts");
    let sim = server.spawn_simulate(4, 400, 80.0, &[]).expect("simulate");
    wait_until("the first cases", Duration::from_secs(60), || {
        server.all_cases().map(|c| c.len() >= 60).unwrap_or(false)
    });
    mosquitto.kill();
    std::thread::sleep(Duration::from_secs(2));
    mosquitto.restart().expect("mosquitto restarts");
    let report = finish_simulation(sim);
    assert_eq!(report["submitted"], 400, "{report}");
    assert_cases_with_frames(&server, 400);
}

/// Registers a camera for the edge agent and writes its config and key.
fn edge_agent_setup(server: &Kozomol, dir: &Path, camera: &str, broker: &str) -> PathBuf {
    let key = SigningKey::from_bytes(&[77; 32]);
    std::fs::create_dir_all(dir.join("spool")).expect("spool dir");
    std::fs::write(dir.join("camera.key"), hex::encode(key.to_bytes())).expect("key");
    let body = json!({
        "camera_id": camera,
        "public_key": hex::encode(key.verifying_key().to_bytes()),
        "device_serial": "EDGE-DEV-1",
        "certificate": {"number": "EDGE-CERT-1", "valid_from": "2020-01-01", "valid_until": "2099-12-31"},
        "site": {"id": "edge-site", "lat_e6": 42870000, "lon_e6": 74600000,
                 "address": "улица Киевская 1, Бишкек", "direction": "northbound", "lane": 1},
    });
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/cameras", server.api()))
        .bearer_auth(server.token("admin").expect("token"))
        .json(&body)
        .send()
        .expect("register");
    assert!(response.status().is_success(), "{}", response.status());
    let config = dir.join("edge.toml");
    std::fs::write(
        &config,
        format!(
            r#"camera_id = "{camera}"
key_file = "{key}"
broker = "{broker}"
data_dir = "{data}"
spool_dir = "{spool}"
resend_after_secs = 5
status_interval_secs = 2
spool_poll_ms = 100

[site]
id = "edge-site"
latitude = 42.87
longitude = 74.6
address = "улица Киевская 1, Бишкек"
direction = "northbound"
lane = 1

[device]
serial = "EDGE-DEV-1"
certificate = "EDGE-CERT-1"
valid_from = "2020-01-01"
valid_until = "2099-12-31"
"#,
            key = dir.join("camera.key").display(),
            data = dir.join("agent-data").display(),
            spool = dir.join("spool").display(),
        ),
    )
    .expect("config");
    config
}

/// Drops `n` captures (two distinct JPEG-framed frames each) in the spool folder, all
/// captured at one instant.
fn fill_spool(spool: &Path, n: usize) {
    fill_spool_over(spool, n, 0);
}

/// Drops `n` captures `spacing_s` seconds of capture time apart.
fn fill_spool_over(spool: &Path, n: usize, spacing_s: i64) {
    let first =
        chrono::DateTime::parse_from_rfc3339("2026-11-20T09:00:00+06:00").expect("a capture time");
    for i in 0..n {
        let name = format!("cap-{i:05}");
        for (role, size) in [("overview", 40_000usize), ("plate", 6_000)] {
            let mut bytes = vec![0xff, 0xd8];
            bytes.extend((0..size).map(|j| ((i * 31 + j * 7) % 251) as u8));
            bytes.extend([0xff, 0xd9]);
            std::fs::write(spool.join(format!("{name}-{role}.jpg")), bytes).expect("frame");
        }
        let sidecar = json!({
            "captured_at": (first + chrono::Duration::seconds(spacing_s * i as i64)).to_rfc3339(),
            "clock_source": "gnss",
            "kind": "speeding",
            "measurement": {"speed_kmh": 70 + (i % 50), "limit_kmh": 60},
            "plate_read": {"text": format!("01{:03}ABC", i % 1000), "confidence_milli": 950, "country": "KG"},
            "frames": [
                {"file": format!("{name}-overview.jpg"), "role": "overview"},
                {"file": format!("{name}-plate.jpg"), "role": "plate"},
            ],
        });
        std::fs::write(spool.join(format!("{name}.json")), sidecar.to_string()).expect("sidecar");
    }
}

fn start_agent(config: &Path, dir: &Path) -> Process {
    let mut command = Command::new(bin("edge-agent"));
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info,rumqttc=warn");
    Process::spawn("edge-agent", command, &dir.join("logs")).expect("edge-agent starts")
}

#[test]
fn broker_down_when_the_edge_agent_starts_and_up_later() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let broker = format!("127.0.0.1:{port}");
    // kozomol's ingest keeps retrying the broker, which is not there yet.
    let server = Kozomol::start_in(&tmp.path().join("data"), Some(broker.clone()), None)
        .expect("kozomol starts");
    let dir = tmp.path().join("camera");
    let config = edge_agent_setup(&server, &dir, "edge-late-broker", &broker);
    fill_spool(&dir.join("spool"), 50);
    let _agent = start_agent(&config, &dir);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        server.all_cases().expect("cases").len(),
        0,
        "no broker, no cases yet"
    );
    let _mosquitto = Mosquitto::start_on(port).expect("mosquitto comes up");
    assert_eq!(wait_for_cases(&server, 50, Duration::from_secs(90)), 50);
    std::thread::sleep(Duration::from_secs(2));
    assert_cases_with_frames(&server, 50);
}

#[test]
fn edge_agent_killed_mid_publish_and_restarted() {
    let server = Kozomol::start().expect("kozomol starts");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("camera");
    let config = edge_agent_setup(&server, &dir, "edge-killed", &server.broker());
    fill_spool(&dir.join("spool"), 300);
    let mut agent = start_agent(&config, &dir);
    wait_until(
        "the agent to start publishing",
        Duration::from_secs(60),
        || server.all_cases().map(|c| !c.is_empty()).unwrap_or(false),
    );
    agent.kill();
    let before = server.all_cases().expect("cases").len();
    assert!(
        before < 300,
        "killed mid-stream ({before} of 300 were already in)"
    );
    let _agent = start_agent(&config, &dir);
    assert_eq!(wait_for_cases(&server, 300, Duration::from_secs(120)), 300);
    // Late re-sends must still be absorbed as duplicates.
    std::thread::sleep(Duration::from_secs(6));
    assert_cases_with_frames(&server, 300);
}

#[test]
fn two_ingest_processes_share_one_mosquitto_subscription() {
    let mosquitto = Mosquitto::start().expect("mosquitto starts");
    let db = kozomol_tests::ScratchDatabase::create().expect("scratch database");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // serve: API + ingest "a" (shared subscription), on PostgreSQL.
    let server = Kozomol::start_with_env(
        &data,
        Some(mosquitto.addr()),
        Some(db.url.clone()),
        &[
            ("KOZOMOL_INGEST_SHARED_SUBSCRIPTION", "true"),
            ("KOZOMOL_INGEST_CLIENT_ID", "ingest-a"),
        ],
    )
    .expect("kozomol starts");
    // A second ingest process joins the same group.
    let mut command = Command::new(bin("kozomol"));
    command
        .args(["run", "ingest"])
        .env("KOZOMOL_DATA_DIR", &data)
        .env("KOZOMOL_DATABASE_URL", &db.url)
        .env("KOZOMOL_MQTT_BROKER", mosquitto.addr())
        .env("KOZOMOL_INGEST_SHARED_SUBSCRIPTION", "true")
        .env("KOZOMOL_INGEST_CLIENT_ID", "ingest-b")
        .env("KOZOMOL_HTTP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("RUST_LOG", "info,rumqttc=warn,sqlx=warn");
    let second =
        Process::spawn("ingest-b", command, &tmp.path().join("logs")).expect("ingest-b starts");
    std::thread::sleep(Duration::from_secs(2));
    let report = server
        .simulate(10, 10_000, 2_000.0, &["--small-frames"])
        .expect("simulate");
    assert_eq!(report["submitted"], 10_000, "{report}");
    let cases = server.all_cases().expect("cases");
    assert_eq!(cases.len(), 10_000);
    let unique: std::collections::HashSet<_> =
        cases.iter().map(|c| c["event_id"].to_string()).collect();
    assert_eq!(unique.len(), 10_000, "no event stored twice");
    // Both processes took a share: the API process's own ingest committed some, not all.
    let metrics = reqwest::blocking::get(format!("{}/metrics", server.api()))
        .expect("metrics")
        .text()
        .expect("text");
    let mine = metrics
        .lines()
        .find(|l| l.starts_with("kozomol_ingest_accepted_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("accepted counter");
    assert!(
        mine > 0.0 && mine < 10_000.0,
        "ingest-a committed {mine} of 10000; log of ingest-b:\n{}",
        tail(&second.log_text(), 2000)
    );
    drop(second);
}

#[test]
fn an_edge_agent_cut_off_for_an_hour_drains_its_outbox_in_order() {
    let mosquitto = Mosquitto::start().expect("mosquitto starts");
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Kozomol::start_in(&tmp.path().join("data"), Some(mosquitto.addr()), None)
        .expect("kozomol starts");
    // The camera reaches the broker through a link the test cuts.
    let link = CuttableLink::start(mosquitto.addr().parse().expect("address")).expect("link");
    let dir = tmp.path().join("camera");
    let config = edge_agent_setup(&server, &dir, "edge-cut-off", &link.addr.to_string());
    let _agent = start_agent(&config, &dir);
    wait_until("the camera online", Duration::from_secs(30), || {
        agent_online(&server, "edge-cut-off")
    });
    link.cut();
    // An hour of captures, one every 10 s, while the camera cannot reach the broker;
    // the other cameras go on.
    let captures = 360;
    fill_spool_over(&dir.join("spool"), captures, 10);
    let others = server
        .spawn_simulate(3, 150, 30.0, &["--small-frames"])
        .expect("simulate");
    let outbox = dir.join("agent-data/outbox");
    wait_until(
        "the outbox to hold the hour",
        Duration::from_secs(120),
        || {
            std::fs::read_dir(&outbox)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.path().extension().is_some_and(|x| x == "env"))
                        .count()
                        >= captures
                })
                .unwrap_or(false)
        },
    );
    let report = finish_simulation(others);
    assert_eq!(report["submitted"], 150, "{report}");
    let mine = |server: &Kozomol| -> Vec<serde_json::Value> {
        server
            .all_cases()
            .expect("cases")
            .into_iter()
            .filter(|c| c["camera_id"] == "edge-cut-off")
            .collect()
    };
    assert!(mine(&server).is_empty(), "nothing got through the cut link");

    link.mend();
    wait_until("the outbox to drain", Duration::from_secs(180), || {
        mine(&server).len() >= captures
    });
    // Late re-sends must still be absorbed as duplicates.
    std::thread::sleep(Duration::from_secs(6));
    let cases = mine(&server);
    assert_eq!(cases.len(), captures, "every capture once");
    // Cases are numbered as ingest commits them: the hour arrived in capture order.
    let captured: Vec<String> = cases
        .iter()
        .map(|c| c["captured_at"].as_str().expect("captured_at").to_owned())
        .collect();
    let mut sorted = captured.clone();
    sorted.sort();
    assert_eq!(captured, sorted, "drained in capture order");
    assert_cases_with_frames(&server, captures + 150);
}

fn agent_online(server: &Kozomol, camera: &str) -> bool {
    server
        .get_json("/api/v1/cameras", "admin")
        .ok()
        .and_then(|list| list["items"].as_array().or(list.as_array()).cloned())
        .is_some_and(|cameras| {
            cameras
                .iter()
                .any(|c| c["camera_id"] == camera && c["online"] == true)
        })
}
