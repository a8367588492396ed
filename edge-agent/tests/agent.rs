//! The edge agent against a real Mosquitto and a fake ingest.

// Tests may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kozomol_core::messages::{CameraConfig, CameraLinkState, CameraStatus, LaneSpeedLimit};
use kozomol_core::topics::{topic, TopicKind};
use kozomol_core::{CameraId, EventId, Measurement};
use kozomol_edge_agent::{Agent, EdgeError, Spool, SpoolReport};
use rumqttc::{Event, Packet, QoS};
use tokio_util::sync::CancellationToken;

use support::*;

const WAIT: Duration = Duration::from_secs(20);

fn camera(name: &str) -> CameraId {
    CameraId::parse(name).unwrap()
}

#[tokio::test]
async fn events_arrive_signed_and_leave_the_outbox_on_receipt() {
    let broker = Broker::start();
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-a"), camera_key(1).verifying_key())],
        |_, _| Answer::Accept,
    )
    .await;
    let (observer, mut observer_loop) = observer(&broker).await;
    observer
        .subscribe(topic(&camera("cam-a"), TopicKind::Status), QoS::AtLeastOnce)
        .await
        .unwrap();
    let statuses = Arc::new(std::sync::Mutex::new(Vec::<CameraStatus>::new()));
    let seen = statuses.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(event) = observer_loop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                if let Ok(status) = serde_json::from_slice(&p.payload) {
                    seen.lock().unwrap().push(status);
                }
            }
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(
        agent_config("cam-a", 1, broker.addr(), dir.path()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(agent.submit(speeding(n, 20_000)).await.unwrap());
    }
    assert!(agent.wait_until_empty(WAIT).await, "{:?}", agent.stats());
    assert_eq!(ingest.failures(), Vec::<String>::new());
    assert_eq!(ingest.distinct_events(), 20);
    let events = ingest.events.lock().unwrap().clone();
    for id in &ids {
        let event = events
            .iter()
            .find(|e| e.event_id == *id)
            .expect("event arrived");
        assert_eq!(event.event_id.0.get_version_num(), 7);
        assert_eq!(event.camera_id, camera("cam-a"));
        assert_eq!(event.device, device());
        assert_eq!(event.frames.len(), 2);
    }
    let stats = agent.stats();
    assert_eq!(
        (stats.published, stats.accepted, stats.outbox_depth),
        (20, 20, 0)
    );
    let outbox = dir.path().join("outbox");
    assert!(eventually(WAIT, || files_in(&outbox).is_empty()).await);
    assert!(
        eventually(WAIT, || statuses.lock().unwrap().iter().any(|s| s.state
            == CameraLinkState::Online
            && s.clock_offset_ms == Some(-3)))
        .await
    );
    agent.shutdown().await;
    assert!(
        eventually(WAIT, || statuses
            .lock()
            .unwrap()
            .last()
            .is_some_and(|s| s.state == CameraLinkState::Offline))
        .await
    );
    watcher.abort();
}

#[tokio::test]
async fn unreceipted_events_stay_and_are_sent_again() {
    let broker = Broker::start();
    // The first delivery of every event gets no receipt, as if it were lost.
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-b"), camera_key(2).verifying_key())],
        |_, n| {
            if n == 1 {
                Answer::Silent
            } else {
                Answer::Accept
            }
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config("cam-b", 2, broker.addr(), dir.path());
    config.resend_after = Duration::from_secs(2);
    let agent = Agent::start(config, CancellationToken::new())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(agent.submit(speeding(n, 5_000)).await.unwrap());
    }
    assert!(eventually(WAIT, || ingest.distinct_events() == 3).await);
    // The broker has them (PUBACK), yet nothing leaves the outbox without a receipt.
    let stats = agent.stats();
    assert_eq!((stats.outbox_depth, stats.accepted), (3, 0));
    assert_eq!(files_in(&dir.path().join("outbox")).len(), 3);
    assert!(agent.wait_until_empty(WAIT).await, "{:?}", agent.stats());
    for id in ids {
        // Twice, or more if a receipt was slower than `resend_after` on a busy machine.
        assert!(ingest.delivery_count(id) >= 2, "{id}");
    }
    let stats = agent.stats();
    assert_eq!((stats.published, stats.accepted), (3, 3));
    assert!(stats.resent >= 3, "{stats:?}");
    agent.shutdown().await;
}

#[tokio::test]
async fn rejected_events_are_kept_aside_and_never_resent() {
    let broker = Broker::start();
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-c"), camera_key(3).verifying_key())],
        |_, _| Answer::Reject,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config("cam-c", 3, broker.addr(), dir.path());
    config.resend_after = Duration::from_millis(300);
    let agent = Agent::start(config, CancellationToken::new())
        .await
        .unwrap();
    let a = agent.submit(speeding(1, 3_000)).await.unwrap();
    let b = agent.submit(speeding(2, 3_000)).await.unwrap();
    assert!(agent.wait_until_empty(WAIT).await);
    let rejected = dir.path().join("rejected");
    let expected = {
        let mut v = vec![
            format!("{a}.env"),
            format!("{a}.receipt.json"),
            format!("{b}.env"),
            format!("{b}.receipt.json"),
        ];
        v.sort();
        v
    };
    assert!(
        eventually(WAIT, || files_in(&rejected) == expected).await,
        "{:?}",
        files_in(&rejected)
    );
    let receipt = std::fs::read_to_string(rejected.join(format!("{a}.receipt.json"))).unwrap();
    assert!(receipt.contains("register_mismatch"), "{receipt}");
    // Once rejected, never sent again (however often it was sent before the receipt).
    let counts = (ingest.delivery_count(a), ingest.delivery_count(b));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!((ingest.delivery_count(a), ingest.delivery_count(b)), counts);
    assert_eq!(agent.stats().rejected, 2);
    assert!(files_in(&dir.path().join("outbox")).is_empty());
    agent.shutdown().await;
}

#[tokio::test]
async fn a_restarted_agent_resends_its_outbox() {
    let broker = Broker::start();
    let answering = Arc::new(AtomicBool::new(false));
    let answer = answering.clone();
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-d"), camera_key(4).verifying_key())],
        move |_, _| {
            if answer.load(Ordering::SeqCst) {
                Answer::Accept
            } else {
                Answer::Silent
            }
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let first = Agent::start(
        agent_config("cam-d", 4, broker.addr(), dir.path()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(first.submit(speeding(n, 4_000)).await.unwrap());
    }
    assert!(eventually(WAIT, || ingest.distinct_events() == 4).await);
    first.shutdown().await;
    answering.store(true, Ordering::SeqCst);

    let second = Agent::start(
        agent_config("cam-d", 4, broker.addr(), dir.path()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(second.stats().outbox_depth, 4);
    assert!(second.wait_until_empty(WAIT).await, "{:?}", second.stats());
    for id in ids {
        assert!(ingest.delivery_count(id) >= 2, "{id}");
    }
    let stats = second.stats();
    assert_eq!(stats.published, 0);
    assert!(stats.resent >= 4, "{stats:?}");
    assert_eq!(stats.accepted + stats.duplicates, 4);
    second.shutdown().await;
}

#[tokio::test]
async fn the_broker_may_come_up_after_the_agent() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config("cam-e", 5, format!("127.0.0.1:{port}"), dir.path());
    // The agent may publish before the fake ingest subscribes; a re-send covers that.
    config.resend_after = Duration::from_secs(2);
    let agent = Agent::start(config, CancellationToken::new())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(agent.submit(speeding(n, 4_000)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!agent.stats().connected);
    assert_eq!(agent.stats().outbox_depth, 3);

    let broker = Broker::start_on(port);
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-e"), camera_key(5).verifying_key())],
        |_, _| Answer::Accept,
    )
    .await;
    assert!(
        agent.wait_until_empty(Duration::from_secs(30)).await,
        "{:?}",
        agent.stats()
    );
    for id in ids {
        assert!(ingest.delivery_count(id) >= 1);
    }
    agent.shutdown().await;
}

#[tokio::test]
async fn a_killed_broker_is_reconnected_and_the_outbox_resent() {
    let broker = Broker::start();
    let port = broker.port;
    let keys = vec![(camera("cam-k"), camera_key(12).verifying_key())];
    let ingest = FakeIngest::start(&broker, keys.clone(), |_, _| Answer::Accept).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config("cam-k", 12, broker.addr(), dir.path());
    config.resend_after = Duration::from_secs(2);
    let agent = Agent::start(config, CancellationToken::new())
        .await
        .unwrap();
    for n in 0..5 {
        agent.submit(speeding(n, 4_000)).await.unwrap();
    }
    assert!(agent.wait_until_empty(WAIT).await);
    drop(ingest);
    drop(broker); // SIGKILL
    assert!(eventually(WAIT, || !agent.stats().connected).await);
    let mut ids = Vec::new();
    for n in 5..10 {
        ids.push(agent.submit(speeding(n, 4_000)).await.unwrap());
    }
    let broker = Broker::start_on(port);
    let ingest = FakeIngest::start(&broker, keys, |_, _| Answer::Accept).await;
    assert!(
        agent.wait_until_empty(Duration::from_secs(40)).await,
        "{:?}",
        agent.stats()
    );
    for id in ids {
        assert!(ingest.delivery_count(id) >= 1, "{id}");
    }
    assert_eq!(agent.stats().accepted + agent.stats().duplicates, 10);
    agent.shutdown().await;
}

/// An agent with no broker to reach (everything stays in its outbox) whose outbox
/// holds two of [`speeding`]'s envelopes (about 13 KB each) and not three.
async fn offline_with_room_for_two(camera: &str, dir: &std::path::Path) -> Agent {
    let dead = format!("127.0.0.1:{}", free_port());
    let mut config = agent_config(camera, 6, dead, dir);
    config.max_outbox_bytes = 30_000;
    Agent::start(config, CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_outbox_drops_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let agent = offline_with_room_for_two("cam-f", dir.path()).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(agent.submit(speeding(n, 10_000)).await.unwrap());
    }
    let stats = agent.stats();
    assert_eq!(
        (stats.outbox_depth, stats.dropped_for_space),
        (2, 3),
        "{stats:?}"
    );
    assert!(stats.outbox_bytes <= 30_000);
    let expected = {
        let mut v = vec![format!("{}.env", ids[3]), format!("{}.env", ids[4])];
        v.sort();
        v
    };
    let outbox = dir.path().join("outbox");
    assert!(
        eventually(WAIT, || files_in(&outbox) == expected).await,
        "{:?}",
        files_in(&outbox)
    );
    let huge = agent.submit(speeding(9, 40_000)).await;
    assert!(
        matches!(huge, Err(EdgeError::TooLargeForOutbox { .. })),
        "{huge:?}"
    );
    agent.shutdown().await;
}

/// A write that fails for another cause than a full card gives up no entry: the
/// oldest go only once the new envelope is on the card.
#[tokio::test]
async fn a_write_that_fails_evicts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = offline_with_room_for_two("cam-w", dir.path()).await;
    let mut ids = Vec::new();
    for n in 0..2 {
        ids.push(agent.submit(speeding(n, 10_000)).await.unwrap());
    }
    // The third envelope's temporary file cannot be made: a folder holds its name.
    let third = EventId::new_v7();
    let outbox = dir.path().join("outbox");
    let blocker = outbox.join(format!("{third}.env.tmp"));
    std::fs::create_dir(&blocker).unwrap();
    let failed = agent.submit_as(third, speeding(2, 10_000)).await;
    assert!(matches!(failed, Err(EdgeError::Io { .. })), "{failed:?}");
    let stats = agent.stats();
    assert_eq!(
        (stats.outbox_depth, stats.dropped_for_space),
        (2, 0),
        "{stats:?}"
    );
    assert!(ids
        .iter()
        .all(|id| outbox.join(format!("{id}.env")).exists()));
    // Written once the way is clear: then the oldest gives way.
    std::fs::remove_dir(&blocker).unwrap();
    agent.submit_as(third, speeding(2, 10_000)).await.unwrap();
    let stats = agent.stats();
    assert_eq!(
        (stats.outbox_depth, stats.dropped_for_space),
        (2, 1),
        "{stats:?}"
    );
    assert!(stats.outbox_bytes <= 30_000);
    let mut expected = vec![format!("{}.env", ids[1]), format!("{third}.env")];
    expected.sort();
    assert!(
        eventually(WAIT, || files_in(&outbox) == expected).await,
        "{:?}",
        files_in(&outbox)
    );
    agent.shutdown().await;
}

fn limits(version: u64, limit_kmh: u16) -> CameraConfig {
    CameraConfig {
        version,
        issued_at_ms: 1_795_000_000_000,
        speed_limits: vec![LaneSpeedLimit {
            lane: 1,
            limit_kmh,
            from: "00:00".into(),
            until: "00:00".into(),
        }],
    }
}

#[tokio::test]
async fn only_server_signed_newer_config_is_applied() {
    let broker = Broker::start();
    let server = camera_key(100);
    let impostor = camera_key(101);
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-g"), camera_key(7).verifying_key())],
        |_, _| Answer::Accept,
    )
    .await;
    let (admin, mut admin_loop) = observer(&broker).await;
    tokio::spawn(async move { while admin_loop.poll().await.is_ok() {} });
    let config_topic = topic(&camera("cam-g"), TopicKind::Config);
    let publish = |config: CameraConfig, key: &ed25519_dalek::SigningKey| {
        let signed = config.sign(&camera("cam-g"), key).unwrap();
        let admin = admin.clone();
        let config_topic = config_topic.clone();
        async move {
            admin
                .publish(config_topic, QoS::AtLeastOnce, true, signed)
                .await
                .unwrap()
        }
    };
    // Retained before the camera connects: it arrives on subscribe.
    publish(limits(3, 60), &server).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config("cam-g", 7, broker.addr(), dir.path());
    config.server_public_key = Some(server.verifying_key());
    let agent = Agent::start(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert!(eventually(WAIT, || agent.stats().config_version == Some(3)).await);

    let mut capture = speeding(1, 3_000);
    capture.measurement = Measurement {
        speed_kmh: Some(97),
        ..Default::default()
    };
    let id = agent.submit(capture.clone()).await.unwrap();
    capture.measurement.speed_kmh = Some(55);
    assert!(matches!(
        agent.submit(capture.clone()).await,
        Err(EdgeError::BelowLimit {
            speed_kmh: 55,
            limit_kmh: 60
        })
    ));
    assert_eq!(agent.stats().discarded_below_limit, 1);
    assert!(agent.wait_until_empty(WAIT).await);
    let event = ingest
        .events
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.event_id == id)
        .cloned()
        .expect("event arrived");
    assert_eq!(event.measurement.limit_kmh, Some(60));

    publish(limits(4, 30), &impostor).await;
    publish(limits(2, 30), &server).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(agent.stats().config_version, Some(3));
    publish(limits(5, 90), &server).await;
    assert!(eventually(WAIT, || agent.stats().config_version == Some(5)).await);
    capture.measurement.speed_kmh = Some(80);
    assert!(matches!(
        agent.submit(capture.clone()).await,
        Err(EdgeError::BelowLimit { limit_kmh: 90, .. })
    ));
    agent.shutdown().await;

    // Persisted: a restart without any broker still knows version 5.
    config.broker = format!("127.0.0.1:{}", free_port());
    let again = Agent::start(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.stats().config_version, Some(5));
    again.shutdown().await;
    // Without the server key, the stored config is not trusted either.
    config.server_public_key = None;
    let keyless = Agent::start(config, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(keyless.stats().config_version, None);
    capture.measurement.speed_kmh = Some(97);
    assert!(matches!(
        keyless.submit(capture).await,
        Err(EdgeError::NoSpeedLimit { lane: 1, .. })
    ));
    keyless.shutdown().await;
}

#[tokio::test]
async fn a_camera_without_the_server_key_ignores_config() {
    let broker = Broker::start();
    let (admin, mut admin_loop) = observer(&broker).await;
    tokio::spawn(async move { while admin_loop.poll().await.is_ok() {} });
    let signed = limits(1, 60)
        .sign(&camera("cam-h"), &camera_key(100))
        .unwrap();
    admin
        .publish(
            topic(&camera("cam-h"), TopicKind::Config),
            QoS::AtLeastOnce,
            true,
            signed,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(
        agent_config("cam-h", 8, broker.addr(), dir.path()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(eventually(WAIT, || agent.stats().connected).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(agent.stats().config_version, None);
    assert!(!dir.path().join("state/config.cose").exists());
    agent.shutdown().await;
}

fn write_capture(spool: &std::path::Path, name: &str, n: u64, sidecar_extra: &str) {
    std::fs::write(spool.join(format!("{name}-o.jpg")), jpeg(n, 3_000)).unwrap();
    std::fs::write(spool.join(format!("{name}-p.jpg")), jpeg(n + 1000, 800)).unwrap();
    let json = format!(
        r#"{{"captured_at":"2026-05-01T08:30:00.250+06:00","clock_source":"gnss","clock_offset_ms":-3,
        "kind":"red_light","measurement":{{"red_elapsed_ms":1200}},"lane":2{sidecar_extra},
        "plate_read":{{"text":"01123ABC","confidence_milli":930}},
        "frames":[{{"file":"{name}-o.jpg","role":"overview"}},{{"file":"{name}-p.jpg","role":"plate"}}]}}"#
    );
    // As firmware does: write under a temporary name, then rename into place.
    let tmp = spool.join(format!("{name}.json.tmp"));
    std::fs::write(&tmp, json).unwrap();
    std::fs::rename(tmp, spool.join(format!("{name}.json"))).unwrap();
}

/// Dates the file at `path` `secs` seconds back, as one written that long ago.
fn date_back(path: impl AsRef<std::path::Path>, secs: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

#[tokio::test]
async fn the_spool_submits_complete_captures_and_sets_bad_ones_aside() {
    let broker = Broker::start();
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-s"), camera_key(9).verifying_key())],
        |_, _| Answer::Accept,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let agent = Agent::start(
        agent_config("cam-s", 9, broker.addr(), &dir.path().join("data")),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut spool = Spool::open(&spool_dir, u64::MAX).unwrap();
    write_capture(&spool_dir, "0001", 1, "");
    write_capture(&spool_dir, "0002", 2, r#","colour":"red""#);
    // Cut short, and quiet for a minute: the firmware is done with it.
    std::fs::write(spool_dir.join("0003.json"), b"{\"captured_at\":").unwrap();
    date_back(spool_dir.join("0003.json"), 60);
    // Unreadable but just written in place: the firmware may still be writing it.
    std::fs::write(spool_dir.join("0009.json"), b"{\"captured_at\":").unwrap();
    write_capture(&spool_dir, "0004", 4, "");
    std::fs::remove_file(spool_dir.join("0004-p.jpg")).unwrap();
    // A capture claimed before a crash keeps its event id.
    let claimed_id = EventId::new_v7();
    write_capture(&spool_dir, "0005", 5, "");
    std::fs::rename(
        spool_dir.join("0005.json"),
        spool_dir.join(format!("0005.{claimed_id}.claim")),
    )
    .unwrap();
    // A claim whose frames are gone was not submitted (that marks it done first): a
    // frame another capture named too, or one deleted by hand. Set aside, not dropped.
    std::fs::write(
        spool_dir.join(format!("0006.{}.claim", EventId::new_v7())),
        br#"{"captured_at":"2026-05-01T08:30:00Z","clock_source":"ntp","kind":"phone","frames":[{"file":"0006-o.jpg","role":"overview"}]}"#,
    )
    .unwrap();
    // A capture submitted before a crash whose frames were still being removed; the
    // firmware has since written a new frame under one of its names, which stays.
    write_capture(&spool_dir, "0008", 8, "");
    let marker = spool_dir.join(format!("0008.{}.done", EventId::new_v7()));
    std::fs::rename(spool_dir.join("0008.json"), &marker).unwrap();
    date_back(&marker, 60);
    date_back(spool_dir.join("0008-o.jpg"), 90);
    // Not a marker: a firmware's own flag file.
    std::fs::write(spool_dir.join("ready.done"), b"").unwrap();
    // Still being written by the firmware: not touched.
    std::fs::write(spool_dir.join("0007.json.tmp"), b"{").unwrap();

    let report = spool.scan_once(&agent).await.unwrap();
    assert_eq!(
        report,
        SpoolReport {
            submitted: 2,
            discarded: 0,
            bad: 4,
            deferred: 0
        }
    );
    assert_eq!(
        files_in(&spool_dir),
        vec![
            "0007.json.tmp".to_string(),
            "0008-p.jpg".to_string(),
            "0009.json".to_string(),
            "ready.done".to_string()
        ]
    );
    let bad = files_in(&spool_dir.join("bad"));
    for name in [
        "0002.json",
        "0002.json.error",
        "0002-o.jpg",
        "0002-p.jpg",
        "0003.json",
        "0003.json.error",
        "0004.json",
        "0004.json.error",
        "0004-o.jpg",
    ] {
        assert!(bad.contains(&name.to_string()), "{name} not in {bad:?}");
    }
    let why = std::fs::read_to_string(spool_dir.join("bad/0004.json.error")).unwrap();
    assert!(why.contains("0004-p.jpg"), "{why}");
    let why = std::fs::read_to_string(spool_dir.join("bad/0006.json.error")).unwrap();
    assert!(
        why.contains("0006-o.jpg") && why.contains("not submitted"),
        "{why}"
    );

    assert!(agent.wait_until_empty(WAIT).await);
    assert_eq!(ingest.distinct_events(), 2);
    assert_eq!(ingest.delivery_count(claimed_id), 1);
    let events = ingest.events.lock().unwrap().clone();
    assert!(events.iter().all(|e| e.site.lane == 2
        && e.measurement.red_elapsed_ms == Some(1200)
        && e.captured_at_ms == 1_777_602_600_250));
    // Finished by the firmware: read on a later pass.
    write_capture(&spool_dir, "0009", 9, "");
    assert_eq!(
        spool.scan_once(&agent).await.unwrap(),
        SpoolReport {
            submitted: 1,
            ..SpoolReport::default()
        }
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn the_binary_makes_keys_and_runs_the_spool_until_sigterm() {
    let exe = env!("CARGO_BIN_EXE_edge-agent");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = std::process::Command::new(exe)
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public_hex = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        std::fs::read_to_string(keys.join("camera.pub"))
            .unwrap()
            .trim(),
        public_hex
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(keys.join("camera.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = std::process::Command::new(exe)
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(!again.status.success(), "keygen must not overwrite a key");
    let camera_public = kozomol_core::envelope::parse_public_key(&public_hex).unwrap();

    let broker = Broker::start();
    let ingest = FakeIngest::start(&broker, vec![(camera("cam-bin"), camera_public)], |_, _| {
        Answer::Accept
    })
    .await;
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    write_capture(&spool_dir, "0001", 1, "");
    let settings = dir.path().join("edge.toml");
    std::fs::write(
        &settings,
        format!(
            r#"camera_id = "cam-bin"
key_file = "{key}"
broker = "127.0.0.1:1"
data_dir = "/overridden/by/env"
spool_dir = "{spool}"
spool_poll_ms = 100

[site]
id = "site-chuy-manas"
latitude = 42.876
longitude = 74.604
address = "проспект Чуй / проспект Манаса"
direction = "eastbound"
lane = 1

[device]
serial = "KRIS-P-12345"
certificate = "KG-CSM-2026-0042"
valid_from = "2026-01-15"
valid_until = "2027-01-14"
"#,
            key = keys.join("camera.key").display(),
            spool = spool_dir.display(),
        ),
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let mut child = tokio::process::Command::new(exe)
        .args(["run", "--config"])
        .arg(&settings)
        .env("KOZOMOL_EDGE_BROKER", broker.addr())
        .env("KOZOMOL_EDGE_DATA_DIR", &data_dir)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(eventually(WAIT, || ingest.distinct_events() == 1).await);
    write_capture(&spool_dir, "0002", 2, "");
    std::fs::write(spool_dir.join("0003.json"), b"[]").unwrap();
    assert!(eventually(WAIT, || ingest.distinct_events() == 2).await);
    assert!(
        eventually(WAIT, || files_in(&spool_dir).is_empty()).await,
        "{:?}",
        files_in(&spool_dir)
    );
    assert!(files_in(&spool_dir.join("bad")).contains(&"0003.json.error".to_string()));
    assert!(eventually(WAIT, || files_in(&data_dir.join("outbox")).is_empty()).await);
    assert_eq!(ingest.failures(), Vec::<String>::new());

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    // Every validation problem is reported at once, and the exit code says so.
    std::fs::write(&settings, "camera_id = \"bad/id\"\n").unwrap();
    let out = std::process::Command::new(exe)
        .args(["run", "--config"])
        .arg(&settings)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let help = std::process::Command::new(exe)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--config"));
}

/// Throughput probe, not a check: `cargo test -p kozomol-edge-agent --release --test agent
/// -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let broker = Broker::start();
    let ingest = FakeIngest::start(
        &broker,
        vec![(camera("cam-t"), camera_key(11).verifying_key())],
        |_, _| Answer::Accept,
    )
    .await;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let agent = Arc::new(
        Agent::start(
            agent_config("cam-t", 11, broker.addr(), dir.path()),
            CancellationToken::new(),
        )
        .await
        .unwrap(),
    );
    for (frame_len, events, concurrency) in [
        (1_000, 2_000u64, 1u64),
        (1_000, 4_000, 16),
        (200_000, 400, 4),
    ] {
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for c in 0..concurrency {
            let agent = agent.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..events / concurrency {
                    agent
                        .submit(speeding(c * 1_000_000 + n, frame_len))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let submitted = started.elapsed();
        assert!(agent.wait_until_empty(Duration::from_secs(120)).await);
        let done = started.elapsed();
        println!(
            "frame {frame_len} B, {events} events, {concurrency} submitters: submit {:.0}/s, receipted {:.0}/s",
            events as f64 / submitted.as_secs_f64(),
            events as f64 / done.as_secs_f64()
        );
    }
    assert!(ingest.failures().is_empty());
}
