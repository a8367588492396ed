//! Crafted bad messages: each dead-letter reason is produced, answered with a
//! `rejected` receipt, and the good events around them are unaffected.

use std::collections::HashMap;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kozomol_core::envelope::{encode_signed, FrameRef};
use kozomol_core::messages::Receipt;
use kozomol_core::{
    CalibrationCertificate, CameraId, ClockSource, EventId, FrameRole, Measurement,
    MeasuringDevice, Site, ViolationEvent, ViolationKind,
};
use kozomol_tests::Kozomol;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

const DEVICE: &str = "KRIS-P-777";
const CERT: &str = "KG-CSM-2026-0777";

fn site() -> Site {
    Site {
        id: "site-test".into(),
        lat_e6: 42_870_000,
        lon_e6: 74_590_000,
        address: "проспект Чуй 1, Бишкек".into(),
        direction: "westbound".into(),
        lane: 1,
    }
}

fn register(server: &Kozomol, camera: &str, key: &SigningKey) {
    let body = json!({
        "camera_id": camera,
        "public_key": hex::encode(key.verifying_key().to_bytes()),
        "device_serial": DEVICE,
        "certificate": {"number": CERT, "valid_from": "2026-01-01", "valid_until": "2026-12-31"},
        "site": {"id": "site-test", "lat_e6": 42870000, "lon_e6": 74590000,
                 "address": "проспект Чуй 1, Бишкек", "direction": "westbound", "lane": 1},
    });
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/cameras", server.api()))
        .bearer_auth(server.token("admin").expect("admin token"))
        .json(&body)
        .send()
        .expect("register camera");
    assert!(
        response.status().is_success(),
        "register {camera}: {}",
        response.status()
    );
}

fn event(camera: &str, captured: &str, speed: u16, frames: &[Vec<u8>]) -> ViolationEvent {
    ViolationEvent {
        event_id: EventId::new_v7(),
        camera_id: CameraId::parse(camera).expect("camera id"),
        captured_at_ms: chrono::DateTime::parse_from_rfc3339(captured)
            .expect("time")
            .timestamp_millis(),
        clock_source: ClockSource::Gnss,
        clock_offset_ms: None,
        site: site(),
        kind: ViolationKind::Speeding,
        measurement: Measurement {
            speed_kmh: Some(speed),
            limit_kmh: Some(60),
            red_elapsed_ms: None,
        },
        device: MeasuringDevice {
            serial: DEVICE.into(),
            certificate: CalibrationCertificate {
                number: CERT.into(),
                valid_from: "2026-01-01".parse().expect("date"),
                valid_until: "2026-12-31".parse().expect("date"),
            },
        },
        plate_read: None,
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                FrameRef::of(
                    if i == 0 {
                        FrameRole::Overview
                    } else {
                        FrameRole::Plate
                    },
                    f,
                )
            })
            .collect(),
    }
}

fn frames(tag: u8) -> Vec<Vec<u8>> {
    vec![
        [&[0xff, 0xd8][..], &vec![tag; 5000], &[0xff, 0xd9]].concat(),
        [
            &[0xff, 0xd8][..],
            &vec![tag.wrapping_add(1); 900],
            &[0xff, 0xd9],
        ]
        .concat(),
    ]
}

#[test]
fn each_bad_message_is_dead_lettered_and_the_stream_goes_on() {
    let server = Kozomol::start().expect("kozomol starts");
    let key = SigningKey::from_bytes(&[11; 32]);
    let other_key = SigningKey::from_bytes(&[12; 32]);
    register(&server, "cam-bad", &key);
    register(&server, "cam-other", &other_key);

    let ok = "2026-11-20T08:00:00Z";
    let f = frames(1);
    let good_a = event("cam-bad", ok, 90, &f);
    let good_a_bytes = encode_signed(&good_a, &f, &key, None).expect("encode");
    let mut conflicting = event("cam-bad", ok, 99, &f);
    conflicting.event_id = good_a.event_id;
    let ghost = event("cam-ghost", ok, 90, &f);
    let bad_sig = event("cam-bad", ok, 91, &f);
    let hash_mismatch = event("cam-bad", ok, 92, &f);
    let mut hash_bytes = encode_signed(&hash_mismatch, &f, &key, None).expect("encode");
    let n = hash_bytes.len();
    hash_bytes[n - 10] ^= 0xff; // inside the last frame
    let mut wrong_device = event("cam-bad", ok, 93, &f);
    wrong_device.device.serial = "SOMEONE-ELSE".into();
    let lapsed = event("cam-bad", "2027-02-01T08:00:00Z", 94, &f);
    let v2_event = event("cam-bad", ok, 95, &f);
    let mut v2 = encode_signed(&v2_event, &f, &key, None).expect("encode");
    v2[1] = 0x02;
    let good_b = event("cam-bad", ok, 96, &f);

    let topic = |cam: &str| format!("kozomol/v1/cameras/{cam}/violations");
    let messages: Vec<(&str, String, Vec<u8>)> = vec![
        ("good_a", topic("cam-bad"), good_a_bytes.clone()),
        (
            "unknown_camera",
            topic("cam-ghost"),
            encode_signed(&ghost, &f, &key, None).expect("encode"),
        ),
        (
            "bad_signature",
            topic("cam-bad"),
            encode_signed(&bad_sig, &f, &other_key, None).expect("encode"),
        ),
        ("frame_hash_mismatch", topic("cam-bad"), hash_bytes),
        (
            "malformed",
            topic("cam-bad"),
            good_a_bytes[..good_a_bytes.len() / 2].to_vec(),
        ),
        (
            "oversize",
            topic("cam-bad"),
            vec![0u8; 2 * 1024 * 1024 + 10],
        ),
        ("unsupported_version", topic("cam-bad"), v2),
        (
            "conflicting_duplicate",
            topic("cam-bad"),
            encode_signed(&conflicting, &f, &key, None).expect("encode"),
        ),
        (
            "topic_mismatch",
            topic("cam-other"),
            encode_signed(&event("cam-bad", ok, 97, &f), &f, &key, None).expect("encode"),
        ),
        (
            "register_mismatch",
            topic("cam-bad"),
            encode_signed(&wrong_device, &f, &key, None).expect("encode"),
        ),
        ("duplicate", topic("cam-bad"), good_a_bytes.clone()),
        (
            "lapsed",
            topic("cam-bad"),
            encode_signed(&lapsed, &f, &key, None).expect("encode"),
        ),
        (
            "good_b",
            topic("cam-bad"),
            encode_signed(&good_b, &f, &key, None).expect("encode"),
        ),
    ];

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let receipts: Vec<Receipt> = runtime.block_on(async {
        let mut options = MqttOptions::new("bad-input-test", "127.0.0.1", server.mqtt.port());
        options.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        client
            .subscribe("kozomol/v1/cameras/+/receipts", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let mut receipts = Vec::new();
        let mut sent = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while receipts.len() < messages.len() && tokio::time::Instant::now() < deadline {
            let event = tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await;
            match event {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) if !sent => {
                    sent = true;
                    // One at a time, in order, so the stream's order is the test's.
                    for (_, topic, payload) in &messages {
                        client
                            .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                            .await
                            .expect("publish");
                    }
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    receipts.push(serde_json::from_slice(&p.payload).expect("receipt JSON"));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("mqtt: {e}"),
                Err(_) => {}
            }
        }
        receipts
    });
    assert_eq!(
        receipts.len(),
        messages.len(),
        "one receipt per message: {receipts:?}"
    );

    let by_status = |status: &str| {
        receipts
            .iter()
            .filter(|r| serde_json::to_value(r.status).expect("status") == status)
            .count()
    };
    assert_eq!(
        by_status("accepted"),
        3,
        "good_a, lapsed, good_b: {receipts:?}"
    );
    assert_eq!(by_status("duplicate"), 1, "{receipts:?}");
    assert_eq!(by_status("rejected"), 9, "{receipts:?}");
    // An envelope of a version this side does not speak still names its event, so the
    // camera hears it was refused and stops sending it.
    let v2_id = v2_event.event_id.to_string();
    assert!(
        receipts
            .iter()
            .any(|r| r.event_id.as_deref() == Some(v2_id.as_str())),
        "{receipts:?}"
    );

    let letters = server
        .get_json("/api/v1/dead-letters?limit=100", "auditor")
        .expect("dead letters");
    let reasons: HashMap<String, usize> =
        letters["items"]
            .as_array()
            .expect("items")
            .iter()
            .fold(HashMap::new(), |mut m, l| {
                *m.entry(l["reason"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
                m
            });
    for (name, _, _) in &messages {
        if !["good_a", "good_b", "duplicate", "lapsed"].contains(name) {
            assert_eq!(
                reasons.get(*name),
                Some(&1),
                "dead letter `{name}` in {reasons:?}"
            );
        }
    }

    let cases = server.all_cases().expect("cases");
    assert_eq!(cases.len(), 3, "{cases:?}");
    let lapsed_case = cases
        .iter()
        .find(|c| c["event_id"] == lapsed.event_id.to_string())
        .expect("lapsed case kept");
    assert_eq!(lapsed_case["enforceable"], false);
    for good in [&good_a, &good_b] {
        let case = cases
            .iter()
            .find(|c| c["event_id"] == good.event_id.to_string())
            .expect("good case");
        assert_eq!(case["enforceable"], true);
    }
    let metrics = reqwest::blocking::get(format!("{}/metrics", server.api()))
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains("bad_signature"),
        "metrics count dead letters by reason"
    );
}
