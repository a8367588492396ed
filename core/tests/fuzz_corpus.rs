//! Replays the fuzz corpus (`core/fuzz/corpus/`) on stable Rust, through the same calls
//! as the cargo-fuzz targets, and checks properties of the envelope decoder that need
//! no fuzzer: every strict prefix of an envelope is refused, and no single bit flip
//! yields an envelope that verifies with other signed content.
//!
//! A seed's file name states what must happen to it: `ok-*` decodes and verifies,
//! `unverified-*` decodes but fails `verify`, `refused-*` fails to decode, `config-ok-*`
//! passes `CameraConfig::verify`; any other name (the fuzzer's finds, `flip-*`, `odd-*`)
//! only has to come back without a panic. The seeds are written by this file's
//! generator: `KOZOMOL_WRITE_FUZZ_SEEDS=1 cargo test -p kozomol-core --test fuzz_corpus`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ciborium::Value;
use ed25519_dalek::SigningKey;
use kozomol_core::cose::{to_canonical_cbor, Sign1};
use kozomol_core::envelope::{encode_signed, FrameRef, MAX_FRAMES};
use kozomol_core::messages::{CameraConfig, LaneSpeedLimit};
use kozomol_core::{
    CalibrationCertificate, CameraId, ClockSource, CoreError, DecodedEnvelope, FrameRole,
    Measurement, MeasuringDevice, PlateRead, Site, ViolationEvent, ViolationKind,
};

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use fuzz::{exercise_envelope, exercise_receipt, seed_key, seed_public_key, EnvelopeOutcome};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");
const VECTOR_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/test-vectors/envelope-v1.json"
);

/// The largest single allocation any input may cause. The biggest seed is a few
/// kilobytes; a decoder that trusts a declared length (2^60 bytes) would ask for far
/// more than this.
const ALLOCATION_LIMIT: usize = 16 * 1024 * 1024;

/// Records the largest allocation made by this test binary.
struct LargestAllocation;

static LARGEST_ALLOCATION: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

fn corpus_files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(CORPUS).join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus folder {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("corpus file names are UTF-8")
                .to_owned();
            let bytes = std::fs::read(&path).expect("corpus file is readable");
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn envelope_corpus_replays_without_panic_and_seeds_keep_their_outcome() {
    let files = corpus_files("envelope");
    assert!(
        files.len() >= 50,
        "the envelope corpus has only {} files",
        files.len()
    );
    let key = seed_public_key();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, bytes) in &files {
        let outcome = exercise_envelope(bytes, &key);
        let expected = if name.starts_with("ok-") {
            Some(EnvelopeOutcome::Verified)
        } else if name.starts_with("unverified-") {
            Some(EnvelopeOutcome::Decoded)
        } else if name.starts_with("refused-") || name.starts_with("config-ok-") {
            Some(EnvelopeOutcome::Refused)
        } else {
            None
        };
        if let Some(expected) = expected {
            assert_eq!(outcome, expected, "corpus file {name}");
        }
        if name.starts_with("config-ok-") {
            let config = CameraConfig::verify(bytes, &key, &fuzz::seed_camera());
            assert!(config.is_ok(), "corpus file {name}: {config:?}");
        }
        let category = name.split('-').next().unwrap_or_default();
        *counts.entry(category).or_default() += 1;
    }
    for category in ["ok", "unverified", "refused", "config", "flip"] {
        assert!(
            counts.get(category).copied().unwrap_or(0) > 0,
            "no `{category}-*` seed in the envelope corpus: {counts:?}"
        );
    }
    let largest = LARGEST_ALLOCATION.load(Ordering::Relaxed);
    assert!(
        largest < ALLOCATION_LIMIT,
        "an allocation of {largest} bytes happened while replaying the corpus"
    );
}

#[test]
fn receipt_corpus_replays_without_panic() {
    let files = corpus_files("receipt");
    assert!(!files.is_empty(), "the receipt corpus is empty");
    for (name, bytes) in &files {
        let parsed = exercise_receipt(bytes);
        if name.starts_with("ok-") {
            assert!(parsed, "corpus file {name} should parse");
        } else if name.starts_with("refused-") {
            assert!(!parsed, "corpus file {name} should not parse");
        }
    }
}

#[test]
fn every_strict_prefix_of_an_envelope_is_refused() {
    let seeds: Vec<(String, Vec<u8>)> = corpus_files("envelope")
        .into_iter()
        .filter(|(name, _)| name.starts_with("ok-"))
        .collect();
    assert!(seeds.len() >= 9, "only {} valid seeds", seeds.len());
    for (name, bytes) in &seeds {
        for len in 0..bytes.len() {
            match DecodedEnvelope::decode(&bytes[..len]) {
                Err(CoreError::Malformed(_)) => {}
                other => panic!(
                    "{name}: prefix of {len} of {} bytes gave {:?}",
                    bytes.len(),
                    other.map(|_| "an envelope")
                ),
            }
        }
    }
}

#[test]
fn no_bit_flip_verifies_with_other_signed_content() {
    let original = test_vector_envelope();
    let reference = DecodedEnvelope::decode(&original).expect("the test vector decodes");
    let key = seed_public_key();
    let mut verified_flips = 0;
    for offset in 0..original.len() {
        for bit in 0..8 {
            let mut flipped = original.clone();
            flipped[offset] ^= 1 << bit;
            let Ok(envelope) = DecodedEnvelope::decode(&flipped) else {
                continue;
            };
            if envelope.verify(&key).is_err() {
                continue;
            }
            // Only the unsigned parts of the message may differ.
            verified_flips += 1;
            assert_eq!(envelope.sign1, reference.sign1, "flip {offset}/{bit}");
            assert_eq!(envelope.event, reference.event, "flip {offset}/{bit}");
            assert_eq!(envelope.frames, reference.frames, "flip {offset}/{bit}");
        }
    }
    // The unprotected header (`a0`, unsigned) is the only place a flip can land
    // unnoticed; the decoder does not insist that it is a map.
    assert!(verified_flips <= 8, "{verified_flips} flips still verify");
}

#[test]
fn seed_corpus_matches_its_generator() {
    let write = std::env::var_os("KOZOMOL_WRITE_FUZZ_SEEDS").is_some();
    let mut stale = Vec::new();
    for (target, seeds) in [("envelope", envelope_seeds()), ("receipt", receipt_seeds())] {
        let dir = Path::new(CORPUS).join(target);
        let mut names = std::collections::HashSet::new();
        for (name, bytes) in seeds {
            assert!(names.insert(name.clone()), "seed name {name} used twice");
            let path: PathBuf = dir.join(&name);
            if write {
                std::fs::create_dir_all(&dir).expect("create corpus folder");
                std::fs::write(&path, &bytes).expect("write seed");
            } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                stale.push(format!("{target}/{name}"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "seeds differ from their generator (regenerate with KOZOMOL_WRITE_FUZZ_SEEDS=1): {stale:?}"
    );
}

// ---- the seed generator ----

fn test_vector_envelope() -> Vec<u8> {
    let text = std::fs::read_to_string(VECTOR_PATH).expect("test vector file");
    let vector: serde_json::Value = serde_json::from_str(&text).expect("test vector JSON");
    hex::decode(vector["envelope"].as_str().expect("envelope hex")).expect("hex")
}

/// Stand-in JPEG bytes of `len` bytes (at least the SOI and EOI markers).
fn jpeg(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xd8];
    bytes.extend((0..len.saturating_sub(4)).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    bytes.extend([0xff, 0xd9]);
    bytes
}

fn event(n: u8, kind: ViolationKind, frames: &[(FrameRole, &[u8])]) -> ViolationEvent {
    let measurement = match kind {
        ViolationKind::Speeding => Measurement {
            speed_kmh: Some(60 + u16::from(n)),
            limit_kmh: Some(50),
            red_elapsed_ms: None,
        },
        ViolationKind::RedLight => Measurement {
            red_elapsed_ms: Some(1_200 + u32::from(n)),
            ..Measurement::default()
        },
        _ => Measurement::default(),
    };
    let clock_sources = [
        ClockSource::Gnss,
        ClockSource::Ptp,
        ClockSource::Ntp,
        ClockSource::Rtc,
    ];
    ViolationEvent {
        event_id: format!("01936f0e-1c2a-7b3d-8e4f-5a6b7c8d9e{n:02x}")
            .parse()
            .expect("uuid"),
        camera_id: CameraId::parse("bishkek-fuzz-001").expect("camera id"),
        captured_at_ms: 1_795_000_000_000 + i64::from(n),
        clock_source: clock_sources[usize::from(n) % clock_sources.len()],
        clock_offset_ms: n.is_multiple_of(2).then_some(-i64::from(n)),
        site: Site {
            id: "site-fuzz".into(),
            lat_e6: 42_876_000,
            lon_e6: 74_604_000,
            address: "проспект Чуй, Бишкек".into(),
            direction: "eastbound".into(),
            lane: 1 + n % 4,
        },
        kind,
        measurement,
        device: MeasuringDevice {
            serial: "KRIS-P-00001".into(),
            certificate: CalibrationCertificate {
                number: "KG-CSM-2026-0001".into(),
                valid_from: "2026-01-15".parse().expect("date"),
                valid_until: "2027-01-14".parse().expect("date"),
            },
        },
        plate_read: (n % 3 != 1).then(|| PlateRead {
            text: "01KG123ABC".into(),
            confidence_milli: 900,
            country: n.is_multiple_of(3).then(|| "KG".into()),
        }),
        frames: frames
            .iter()
            .map(|(role, bytes)| FrameRef::of(*role, bytes))
            .collect(),
    }
}

fn two_frames() -> Vec<Vec<u8>> {
    vec![jpeg(40, 1), jpeg(24, 2)]
}

fn speeding(frames: &[Vec<u8>]) -> ViolationEvent {
    event(
        0x40,
        ViolationKind::Speeding,
        &[
            (FrameRole::Overview, &frames[0]),
            (FrameRole::Plate, &frames[1]),
        ],
    )
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("encode CBOR");
    out
}

fn bytes_value(frames: &[Vec<u8>]) -> Value {
    Value::Array(frames.iter().cloned().map(Value::Bytes).collect())
}

/// `[version, sign1, frames]`, encoded without any check.
fn assemble(version: Value, sign1: Value, frames: Value) -> Vec<u8> {
    cbor(&Value::Array(vec![version, sign1, frames]))
}

/// Signs any payload with the seed key, as a camera would, but without the event check.
fn sign(payload: Vec<u8>) -> Sign1 {
    Sign1::sign(payload, "bishkek-fuzz-001", &seed_key()).expect("sign")
}

/// An envelope around `event` as a CBOR value, edited by `edit` before signing.
fn signed_edited(
    event: &ViolationEvent,
    frames: &[Vec<u8>],
    edit: impl FnOnce(&mut Vec<(Value, Value)>),
) -> Vec<u8> {
    let mut value = Value::serialized(event).expect("event as CBOR value");
    let Value::Map(entries) = &mut value else {
        panic!("an event serialises to a map");
    };
    edit(entries);
    let payload = to_canonical_cbor(&value).expect("canonical CBOR");
    assemble(
        Value::Integer(1.into()),
        sign(payload).to_value(),
        bytes_value(frames),
    )
}

fn signed_unchecked(event: &ViolationEvent, frames: &[Vec<u8>]) -> Vec<u8> {
    signed_edited(event, frames, |_| {})
}

fn set_field(entries: &mut [(Value, Value)], field: &str, value: Value) {
    let entry = entries
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some(field))
        .unwrap_or_else(|| panic!("event has a field {field}"));
    entry.1 = value;
}

fn huge_length(major: u8) -> Vec<u8> {
    // Additional information 27: an 8-byte length follows; this one is 2^60.
    let mut bytes = vec![(major << 5) | 27];
    bytes.extend((1u64 << 60).to_be_bytes());
    bytes
}

fn envelope_seeds() -> Vec<(String, Vec<u8>)> {
    let key = seed_key();
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| seeds.push((name.to_owned(), bytes));

    // Valid envelopes: the published test vector, one per violation kind, the limits.
    let vector = test_vector_envelope();
    add("ok-test-vector", vector.clone());
    for (n, kind) in ViolationKind::ALL.into_iter().enumerate() {
        let n = u8::try_from(n).expect("eight kinds");
        let frames = if n % 2 == 0 {
            vec![jpeg(32 + usize::from(n) * 16, n), jpeg(20, n + 100)]
        } else {
            vec![jpeg(48, n)]
        };
        let roles = [FrameRole::Overview, FrameRole::Plate];
        let listed: Vec<(FrameRole, &[u8])> =
            frames.iter().zip(roles).map(|(f, r)| (r, &f[..])).collect();
        let bytes = encode_signed(&event(n, kind, &listed), &frames, &key, None).expect("encode");
        add(&format!("ok-{}", kind.as_str().replace('_', "-")), bytes);
    }
    let many: Vec<Vec<u8>> = (0..MAX_FRAMES)
        .map(|i| jpeg(8 + i, u8::try_from(i).expect("few frames")))
        .collect();
    let listed: Vec<(FrameRole, &[u8])> =
        many.iter().map(|f| (FrameRole::Overview, &f[..])).collect();
    let most = event(0x20, ViolationKind::Phone, &listed);
    add(
        "ok-max-frames",
        encode_signed(&most, &many, &key, None).expect("encode"),
    );
    let empty_frame = vec![Vec::new()];
    let bare = event(
        0x21,
        ViolationKind::SeatBelt,
        &[(FrameRole::Overview, &empty_frame[0][..])],
    );
    add(
        "ok-empty-frame",
        encode_signed(&bare, &empty_frame, &key, None).expect("encode"),
    );
    let frames = two_frames();
    let good = speeding(&frames);
    let good_bytes = encode_signed(&good, &frames, &key, None).expect("encode");
    let decoded = DecodedEnvelope::decode(&good_bytes).expect("decodes");
    let sign1 = decoded.sign1.clone();
    let Value::Tag(_, untagged) = sign1.to_value() else {
        panic!("Sign1::to_value is tagged");
    };
    add(
        "ok-untagged-sign1",
        assemble(Value::Integer(1.into()), *untagged, bytes_value(&frames)),
    );

    // Decodes, but must not verify.
    let mut tampered = good_bytes.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x10;
    add("unverified-tampered-frame", tampered);
    let mut longer = frames.clone();
    longer[1].push(0);
    add(
        "unverified-frame-longer-than-listed",
        assemble(
            Value::Integer(1.into()),
            sign1.to_value(),
            bytes_value(&longer),
        ),
    );
    let other = SigningKey::from_bytes(&[0x11; 32]);
    add(
        "unverified-other-key",
        encode_signed(&good, &frames, &other, None).expect("encode"),
    );
    let mut zero_signature = sign1.clone();
    zero_signature.signature = [0; 64];
    add(
        "unverified-zero-signature",
        assemble(
            Value::Integer(1.into()),
            zero_signature.to_value(),
            bytes_value(&frames),
        ),
    );
    let mut es256 = sign1.clone();
    // {1: -7} names ES256; the signature is Ed25519 over the new header anyway.
    es256.protected = vec![0xa1, 0x01, 0x26];
    add(
        "unverified-alg-es256",
        assemble(
            Value::Integer(1.into()),
            es256.to_value(),
            bytes_value(&frames),
        ),
    );
    let mut header_not_map = sign1.clone();
    header_not_map.protected = vec![0x01];
    add(
        "unverified-protected-not-map",
        assemble(
            Value::Integer(1.into()),
            header_not_map.to_value(),
            bytes_value(&frames),
        ),
    );
    let mut header_garbage = sign1.clone();
    header_garbage.protected = huge_length(2);
    add(
        "unverified-protected-huge-length",
        assemble(
            Value::Integer(1.into()),
            header_garbage.to_value(),
            bytes_value(&frames),
        ),
    );

    // Refused: empty, truncated, oversize claims, wrong versions and types.
    add("refused-empty", Vec::new());
    for len in [1, 2, 3, 8, 40, vector.len() / 2, vector.len() - 1] {
        add(&format!("refused-truncated-{len}"), vector[..len].to_vec());
    }
    let sign1_value = sign1.to_value();
    let frames_value = bytes_value(&frames);
    let versions = [
        ("0", Value::Integer(0.into())),
        ("2", Value::Integer(2.into())),
        ("negative", Value::Integer((-1).into())),
        ("u64-max", Value::Integer(u64::MAX.into())),
        ("text", Value::Text("1".into())),
        ("float", Value::Float(1.0)),
        ("null", Value::Null),
        ("bytes", Value::Bytes(vec![1])),
    ];
    for (name, version) in versions {
        add(
            &format!("refused-version-{name}"),
            assemble(version, sign1_value.clone(), frames_value.clone()),
        );
    }
    let one = || Value::Integer(1.into());
    add(
        "refused-envelope-map",
        cbor(&Value::Map(vec![(one(), sign1_value.clone())])),
    );
    add(
        "refused-envelope-text",
        cbor(&Value::Text("envelope".into())),
    );
    add("refused-envelope-null", vec![0xf6]);
    add(
        "refused-envelope-two-items",
        cbor(&Value::Array(vec![one(), sign1_value.clone()])),
    );
    add(
        "refused-envelope-four-items",
        cbor(&Value::Array(vec![
            one(),
            sign1_value.clone(),
            frames_value.clone(),
            Value::Null,
        ])),
    );
    add(
        "refused-frames-text",
        assemble(one(), sign1_value.clone(), Value::Text("frames".into())),
    );
    add(
        "refused-frames-map",
        assemble(one(), sign1_value.clone(), Value::Map(Vec::new())),
    );
    add(
        "refused-frame-item-text",
        assemble(
            one(),
            sign1_value.clone(),
            Value::Array(vec![
                Value::Bytes(frames[0].clone()),
                Value::Text("x".into()),
            ]),
        ),
    );
    add(
        "refused-frame-count-mismatch",
        assemble(one(), sign1_value.clone(), bytes_value(&frames[..1])),
    );
    let Value::Tag(_, inner) = sign1_value.clone() else {
        panic!("Sign1::to_value is tagged");
    };
    add(
        "refused-sign1-tag-98",
        assemble(one(), Value::Tag(98, inner.clone()), frames_value.clone()),
    );
    let Value::Array(parts) = *inner else {
        panic!("COSE_Sign1 is an array");
    };
    add(
        "refused-sign1-three-items",
        assemble(
            one(),
            Value::Tag(18, Box::new(Value::Array(parts[..3].to_vec()))),
            frames_value.clone(),
        ),
    );
    add(
        "refused-sign1-map",
        assemble(one(), Value::Map(Vec::new()), frames_value.clone()),
    );
    let mut payload_text = parts.clone();
    payload_text[2] = Value::Text("payload".into());
    add(
        "refused-sign1-payload-text",
        assemble(
            one(),
            Value::Tag(18, Box::new(Value::Array(payload_text))),
            frames_value.clone(),
        ),
    );
    let mut short_signature = parts.clone();
    short_signature[3] = Value::Bytes(vec![7; 63]);
    add(
        "refused-sign1-signature-63-bytes",
        assemble(
            one(),
            Value::Tag(18, Box::new(Value::Array(short_signature))),
            frames_value.clone(),
        ),
    );
    add(
        "refused-payload-not-cbor",
        assemble(
            one(),
            sign(b"\xff not CBOR".to_vec()).to_value(),
            frames_value.clone(),
        ),
    );
    add(
        "refused-payload-array",
        assemble(
            one(),
            sign(cbor(&Value::Array(vec![one(), one()]))).to_value(),
            frames_value.clone(),
        ),
    );

    // Refused: events that are signed but break the event's own rules.
    let mut v4 = good.clone();
    v4.event_id = "9b2c1f7e-3a4d-4e5f-8a6b-7c8d9e0f1a2b"
        .parse()
        .expect("uuid");
    add("refused-event-uuid-v4", signed_unchecked(&v4, &frames));
    let mut no_overview = good.clone();
    no_overview.frames[0].role = FrameRole::Plate;
    add(
        "refused-event-no-overview",
        signed_unchecked(&no_overview, &frames),
    );
    let mut nine = most.clone();
    nine.frames.push(nine.frames[0].clone());
    let mut nine_frames = many.clone();
    nine_frames.push(many[0].clone());
    add(
        "refused-event-nine-frames",
        signed_unchecked(&nine, &nine_frames),
    );
    let mut no_frames = good.clone();
    no_frames.frames.clear();
    add("refused-event-no-frames", signed_unchecked(&no_frames, &[]));
    let mut short_sha = good.clone();
    short_sha.frames[1].sha256.pop();
    add(
        "refused-event-short-sha256",
        signed_unchecked(&short_sha, &frames),
    );
    let mut slow = good.clone();
    slow.measurement.speed_kmh = Some(40);
    add(
        "refused-event-speed-below-limit",
        signed_unchecked(&slow, &frames),
    );
    let mut red = good.clone();
    red.kind = ViolationKind::RedLight;
    add(
        "refused-event-red-light-without-elapsed",
        signed_unchecked(&red, &frames),
    );
    let mut long_address = good.clone();
    long_address.site.address = "я".repeat(129);
    add(
        "refused-event-long-address",
        signed_unchecked(&long_address, &frames),
    );
    let mut long_plate = good.clone();
    long_plate.plate_read = Some(PlateRead {
        text: "A".repeat(17),
        confidence_milli: 900,
        country: None,
    });
    add(
        "refused-event-long-plate",
        signed_unchecked(&long_plate, &frames),
    );
    add(
        "refused-event-bad-camera-id",
        signed_edited(&good, &frames, |e| {
            set_field(e, "camera_id", Value::Text("bishkek/../001".into()))
        }),
    );
    add(
        "refused-event-unknown-kind",
        signed_edited(&good, &frames, |e| {
            set_field(e, "kind", Value::Text("jaywalking".into()))
        }),
    );
    add(
        "refused-event-lane-300",
        signed_edited(&good, &frames, |e| {
            let Some((_, Value::Map(site))) =
                e.iter_mut().find(|(k, _)| k.as_text() == Some("site"))
            else {
                panic!("event has a site map");
            };
            set_field(site, "lane", Value::Integer(300.into()));
        }),
    );
    add(
        "refused-event-time-text",
        signed_edited(&good, &frames, |e| {
            set_field(e, "captured_at_ms", Value::Text("yesterday".into()))
        }),
    );
    add(
        "refused-event-missing-device",
        signed_edited(&good, &frames, |e| {
            e.retain(|(k, _)| k.as_text() != Some("device"))
        }),
    );

    // Refused: declared lengths far beyond the input, and nesting beyond any limit.
    for (major, name) in [(2, "bytes"), (3, "text"), (4, "array"), (5, "map")] {
        add(&format!("refused-huge-{name}"), huge_length(major));
    }
    add(
        "refused-u64-max-bytes",
        [vec![0x5b], u64::MAX.to_be_bytes().to_vec()].concat(),
    );
    let mut huge_frame = vec![0x83, 0x01];
    huge_frame.extend(cbor(&sign1_value));
    huge_frame.push(0x81);
    huge_frame.extend(huge_length(2));
    huge_frame.extend(&frames[0]);
    add("refused-huge-frame", huge_frame);
    let mut huge_frames_array = vec![0x83, 0x01];
    huge_frames_array.extend(cbor(&sign1_value));
    huge_frames_array.extend(huge_length(4));
    add("refused-huge-frames-array", huge_frames_array);
    let mut huge_payload = vec![0x83, 0x01, 0xd2, 0x84];
    huge_payload.extend(cbor(&Value::Bytes(sign1.protected.clone())));
    huge_payload.push(0xa0);
    huge_payload.extend(huge_length(2));
    huge_payload.extend(&sign1.payload);
    add("refused-huge-payload", huge_payload);
    let mut huge_event_text = sign1.payload.clone();
    // The payload opens with a map header then the first key; claim a vast first key.
    huge_event_text.truncate(1);
    huge_event_text.extend(huge_length(3));
    huge_event_text.extend(b"event_id");
    add(
        "refused-huge-event-key",
        assemble(
            one(),
            sign(huge_event_text).to_value(),
            frames_value.clone(),
        ),
    );
    add(
        "refused-nested-arrays",
        [vec![0x81; 5_000], vec![0x00]].concat(),
    );
    add("refused-nested-indefinite-arrays", vec![0x9f; 5_000]);
    add("refused-nested-maps", [0xa1_u8, 0x00].repeat(2_500));
    add(
        "refused-nested-tags",
        [vec![0xd2; 5_000], vec![0x00]].concat(),
    );
    let mut nested_in_envelope = vec![0x83, 0x01];
    nested_in_envelope.extend(vec![0x81; 1_000]);
    add("refused-nested-sign1", nested_in_envelope);
    let mut nested_unprotected = vec![0x83, 0x01, 0xd2, 0x84];
    nested_unprotected.extend(cbor(&Value::Bytes(sign1.protected.clone())));
    nested_unprotected.extend(vec![0x81; 300]);
    nested_unprotected.push(0xa0);
    nested_unprotected.extend(cbor(&Value::Bytes(sign1.payload.clone())));
    nested_unprotected.extend(cbor(&Value::Bytes(sign1.signature.to_vec())));
    nested_unprotected.extend(cbor(&frames_value));
    add("refused-nested-unprotected", nested_unprotected);
    add(
        "refused-indefinite-bytes-bad-chunk",
        vec![0x5f, 0x41, 0x00, 0x01, 0xff],
    );
    add("refused-break-alone", vec![0xff]);
    add("refused-reserved-info", vec![0x1c]);

    // No expectation beyond "no panic": legal oddities the decoder tolerates today.
    let mut trailing = good_bytes.clone();
    trailing.extend([0x00, 0xff]);
    add("odd-trailing-bytes", trailing);
    let mut unprotected = parts.clone();
    unprotected[1] = Value::Array(vec![Value::Text("unsigned".into())]);
    add(
        "odd-unprotected-not-map",
        assemble(
            one(),
            Value::Tag(18, Box::new(Value::Array(unprotected))),
            frames_value.clone(),
        ),
    );
    let mut indefinite = vec![0x83, 0x01];
    indefinite.extend(cbor(&sign1_value));
    indefinite.push(0x9f);
    for frame in &frames {
        // Each frame as an indefinite byte string of two chunks.
        let (a, b) = frame.split_at(frame.len() / 2);
        indefinite.push(0x5f);
        indefinite.extend(cbor(&Value::Bytes(a.to_vec())));
        indefinite.extend(cbor(&Value::Bytes(b.to_vec())));
        indefinite.push(0xff);
    }
    indefinite.push(0xff);
    add("odd-indefinite-frames", indefinite);
    add(
        "odd-version-bignum",
        assemble(
            Value::Tag(2, Box::new(Value::Bytes(vec![0x01]))),
            sign1_value.clone(),
            frames_value.clone(),
        ),
    );

    // Bit flips spread over the test vector.
    for offset in (0..vector.len()).step_by(17) {
        let bit = offset % 8;
        let mut flipped = vector.clone();
        flipped[offset] ^= 1 << bit;
        add(&format!("flip-{offset:04}-{bit}"), flipped);
    }

    // A signed camera config: Sign1::from_bytes and CameraConfig::verify accept it.
    let config = CameraConfig {
        version: 7,
        issued_at_ms: 1_795_000_000_000,
        speed_limits: vec![
            LaneSpeedLimit {
                lane: 1,
                limit_kmh: 60,
                from: "07:00".into(),
                until: "22:00".into(),
            },
            LaneSpeedLimit {
                lane: 2,
                limit_kmh: 40,
                from: "22:00".into(),
                until: "07:00".into(),
            },
        ],
    };
    add(
        "config-ok-speed-limits",
        config
            .sign(&fuzz::seed_camera(), &key)
            .expect("sign config"),
    );
    seeds
}

fn receipt_seeds() -> Vec<(String, Vec<u8>)> {
    let seeds: [(&str, &str); 13] = [
        (
            "ok-receipt-accepted",
            r#"{"event_id":"01936f0e-1c2a-7b3d-8e4f-5a6b7c8d9e0f","status":"accepted","case_id":42}"#,
        ),
        (
            "ok-receipt-duplicate",
            r#"{"event_id":"e","status":"duplicate","case_id":1}"#,
        ),
        (
            "ok-receipt-rejected",
            r#"{"event_id":null,"status":"rejected","reason":"bad_signature","detail":"signature does not verify"}"#,
        ),
        (
            "ok-status-online",
            r#"{"state":"online","at_ms":1795000000000,"outbox_depth":3,"clock_offset_ms":-2,"config_version":7}"#,
        ),
        ("ok-status-offline", r#"{"state":"offline"}"#),
        ("refused-empty", ""),
        ("refused-not-json", "accepted"),
        (
            "refused-unknown-status",
            r#"{"event_id":"e","status":"lost"}"#,
        ),
        (
            "refused-case-id-text",
            r#"{"event_id":"e","status":"accepted","case_id":"42"}"#,
        ),
        (
            "refused-case-id-overflow",
            r#"{"event_id":"e","status":"accepted","case_id":99999999999999999999}"#,
        ),
        // A later kozomol's reason reads as none: the refusal still settles the event.
        (
            "ok-unknown-reason",
            r#"{"event_id":"e","status":"rejected","reason":"moon"}"#,
        ),
        ("refused-truncated", r#"{"event_id":"e","sta"#),
        ("refused-array", r#"["accepted"]"#),
    ];
    let mut seeds: Vec<(String, Vec<u8>)> = seeds
        .iter()
        .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
        .collect();
    let mut bad_utf8 = br#"{"event_id":""#.to_vec();
    bad_utf8.extend([0xc3, 0x28]);
    bad_utf8.extend(br#"","status":"accepted"}"#);
    seeds.push(("refused-invalid-utf8".into(), bad_utf8));
    seeds.push((
        "refused-deep-nesting".into(),
        "[".repeat(10_000).into_bytes(),
    ));
    seeds.push((
        "refused-deep-detail".into(),
        format!(
            r#"{{"event_id":"e","status":"rejected","detail":{}1{}}}"#,
            "[".repeat(1_000),
            "]".repeat(1_000)
        )
        .into_bytes(),
    ));
    seeds
}
