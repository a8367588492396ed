//! Keeps `docs/test-vectors/envelope-v1.json` true to the code. Regenerate it with
//! `KOZOMOL_WRITE_VECTORS=1 cargo test -p kozomol-core --test test_vectors`.

use ed25519_dalek::SigningKey;
use kozomol_core::cose::to_canonical_cbor;
use kozomol_core::envelope::{encode_signed, FrameRef};
use kozomol_core::{
    CalibrationCertificate, CameraId, ClockSource, DecodedEnvelope, FrameRole, Measurement,
    MeasuringDevice, PlateRead, Site, ViolationEvent, ViolationKind,
};

const VECTOR_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/test-vectors/envelope-v1.json"
);

fn vector() -> serde_json::Value {
    let secret = [0x5a_u8; 32];
    let key = SigningKey::from_bytes(&secret);
    // Tiny but well-formed JPEG markers stand in for real frames.
    let frames = vec![
        vec![
            0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0xff, 0xd9,
        ],
        vec![0xff, 0xd8, 0xff, 0xdb, 0x00, 0x02, 0xff, 0xd9],
    ];
    let event = ViolationEvent {
        event_id: "01936f0e-1c2a-7b3d-8e4f-5a6b7c8d9e0f"
            .parse()
            .expect("uuid"),
        camera_id: CameraId::parse("bishkek-chuy-001").expect("camera id"),
        captured_at_ms: 1_795_000_000_123,
        clock_source: ClockSource::Gnss,
        clock_offset_ms: Some(-3),
        site: Site {
            id: "site-chuy-manas".into(),
            lat_e6: 42_876_000,
            lon_e6: 74_604_000,
            address: "проспект Чуй / проспект Манаса, Бишкек".into(),
            direction: "eastbound".into(),
            lane: 2,
        },
        kind: ViolationKind::Speeding,
        measurement: Measurement {
            speed_kmh: Some(97),
            limit_kmh: Some(60),
            red_elapsed_ms: None,
        },
        device: MeasuringDevice {
            serial: "KRIS-P-12345".into(),
            certificate: CalibrationCertificate {
                number: "KG-CSM-2026-0042".into(),
                valid_from: "2026-01-15".parse().expect("date"),
                valid_until: "2027-01-14".parse().expect("date"),
            },
        },
        plate_read: Some(PlateRead {
            text: "01123ABC".into(),
            confidence_milli: 930,
            country: Some("KG".into()),
        }),
        frames: vec![
            FrameRef::of(FrameRole::Overview, &frames[0]),
            FrameRef::of(FrameRole::Plate, &frames[1]),
        ],
    };
    let payload = to_canonical_cbor(&event).expect("payload");
    let envelope = encode_signed(&event, &frames, &key, None).expect("envelope");
    let decoded = DecodedEnvelope::decode(&envelope).expect("decodes");
    decoded.verify(&key.verifying_key()).expect("verifies");
    assert_eq!(decoded.sign1.payload, payload);
    let mut sig_structure = Vec::new();
    ciborium::into_writer(
        &ciborium::Value::Array(vec![
            ciborium::Value::Text("Signature1".into()),
            ciborium::Value::Bytes(decoded.sign1.protected.clone()),
            ciborium::Value::Bytes(Vec::new()),
            ciborium::Value::Bytes(payload.clone()),
        ]),
        &mut sig_structure,
    )
    .expect("sig structure");
    serde_json::json!({
        "description": "kozomol camera wire protocol v1: one signed violation envelope (see docs/protocol.md)",
        "ed25519_secret_key": hex::encode(secret),
        "ed25519_public_key": hex::encode(key.verifying_key().to_bytes()),
        "frames": frames.iter().map(hex::encode).collect::<Vec<_>>(),
        "event_diagnostic": {
            "event_id": event.event_id.to_string(),
            "camera_id": event.camera_id.as_str(),
            "captured_at_ms": event.captured_at_ms,
            "kind": event.kind.as_str(),
        },
        "protected_header": hex::encode(&decoded.sign1.protected),
        "payload": hex::encode(&payload),
        "sig_structure": hex::encode(&sig_structure),
        "signature": hex::encode(decoded.sign1.signature),
        "envelope": hex::encode(&envelope),
        "fingerprint_sha256_of_payload": hex::encode(decoded.fingerprint()),
    })
}

#[test]
fn test_vectors_match_the_code() {
    let generated = serde_json::to_string_pretty(&vector()).expect("json") + "\n";
    if std::env::var_os("KOZOMOL_WRITE_VECTORS").is_some() {
        std::fs::write(VECTOR_PATH, &generated).expect("write vectors");
    }
    let on_disk =
        std::fs::read_to_string(VECTOR_PATH).expect("docs/test-vectors/envelope-v1.json exists");
    assert_eq!(
        on_disk, generated,
        "test vectors are stale: regenerate them (see the file's doc comment)"
    );
}
