//! Evidence in an S3-compatible bucket, against moto's server with signatures
//! checked (`kozomol_testkit::s3`): the store the settings make writes batches as
//! objects and reads frames back by range, refuses what does not match its hash,
//! overwrites a destroyed frame in its object, and fails clearly on a wrong key, a stopped store or an untrusted certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::io;
use std::sync::Arc;

use kozomol_server::settings::Settings;
use kozomol_store::evidence::S3Bucket;
use kozomol_store::{EvidenceStore, FrameLocation, StoreError};
use kozomol_testkit::s3::S3StandIn;
use kozomol_testkit::{TestCertificate, TlsFront};
use sha2::{Digest, Sha256};

fn bucket_of(s3: &S3StandIn) -> S3Bucket {
    S3Bucket {
        endpoint: s3.endpoint(),
        bucket: s3.bucket.clone(),
        region: "us-east-1".into(),
        prefix: "city/evidence/".into(),
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: s3.secret_access_key.clone(),
        ca_file: None,
    }
}

fn store_on(bucket: S3Bucket, writer: &str) -> EvidenceStore {
    let settings = Settings {
        evidence_bucket: Some(bucket),
        ..Settings::default()
    };
    settings.validate().expect("valid settings");
    settings.evidence_store(writer).expect("evidence store")
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn frame(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

#[test]
fn batches_become_objects_and_frames_read_back_by_range() {
    let s3 = S3StandIn::start("kozomol-evidence").expect("S3 stand-in");
    let store = store_on(bucket_of(&s3), "ingest-a");

    let first = [frame(1, 300_000), frame(2, 10), frame(3, 0)];
    let second = [frame(4, 70_000)];
    let mut written = Vec::new();
    for batch in [&first[..], &second[..]] {
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let locations = store.append_batch(&refs).expect("batch stored");
        written.extend(batch.iter().cloned().zip(locations));
    }
    // One object per batch: an object is never appended to.
    assert_eq!(written[0].1.segment, written[2].1.segment);
    assert_ne!(written[0].1.segment, written[3].1.segment);

    // Another process (another writer id) reads what this one wrote.
    let reader = store_on(bucket_of(&s3), "api");
    for (bytes, loc) in &written {
        assert_eq!(&reader.read(loc, &sha(bytes)).expect("frame"), bytes);
    }

    // A wrong hash, a location past the object's end and one inside another
    // record are corrupt evidence, never wrong bytes.
    let (bytes, loc) = &written[0];
    assert!(matches!(
        reader.read(loc, &sha(b"another frame")),
        Err(StoreError::EvidenceCorrupt { .. })
    ));
    let beyond = FrameLocation {
        offset: loc.offset + 10_000_000,
        ..loc.clone()
    };
    assert!(matches!(
        reader.read(&beyond, &sha(bytes)),
        Err(StoreError::EvidenceCorrupt { .. })
    ));
    let shifted = FrameLocation {
        offset: loc.offset + 7,
        ..loc.clone()
    };
    assert!(matches!(
        reader.read(&shifted, &sha(bytes)),
        Err(StoreError::EvidenceCorrupt { .. })
    ));
    // A segment that is not there is an i/o error naming it; a name that is not a
    // segment's is never sent to the store.
    let missing = FrameLocation {
        segment: "seg-nobody-0000000001.kzs".into(),
        ..loc.clone()
    };
    match reader.read(&missing, &sha(bytes)) {
        Err(StoreError::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            assert!(e.to_string().contains("seg-nobody"), "{e}");
        }
        other => panic!("a missing segment read as {other:?}"),
    }
    let escape = FrameLocation {
        segment: "../other-bucket/seg-a-1.kzs".into(),
        ..loc.clone()
    };
    assert!(matches!(
        reader.read(&escape, &sha(bytes)),
        Err(StoreError::Corrupt(_))
    ));
}

/// Destroying a frame rewrites its object with the record zeroed in place: the other
/// frames of the object read as before, the destroyed one answers that it was erased.
#[test]
fn an_erased_frame_is_overwritten_in_its_object() {
    let s3 = S3StandIn::start("kozomol-evidence").expect("S3 stand-in");
    let store = store_on(bucket_of(&s3), "ingest-a");
    let frames = [frame(1, 40_000), frame(2, 5_000), frame(3, 20_000)];
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let locs = store.append_batch(&refs).expect("batch stored");

    let archive = store_on(bucket_of(&s3), "fines-1");
    let segment = locs[0].segment.clone();
    assert_eq!(
        archive
            .erase(&segment, &[(locs[1].clone(), sha(b"another frame"))])
            .expect("read"),
        [0],
        "not the frame named: left as it is"
    );
    let record = |i: usize| (locs[i].clone(), sha(&frames[i]));
    archive.erase(&segment, &[record(1)]).expect("erased");
    archive
        .erase(&segment, &[record(1)])
        .expect("erasing again changes nothing");
    assert!(matches!(
        store.read(&locs[1], &sha(&frames[1])),
        Err(StoreError::EvidenceErased { .. })
    ));
    for i in [0, 2] {
        assert_eq!(
            store.read(&locs[i], &sha(&frames[i])).expect("kept"),
            frames[i]
        );
    }
    // What a sweep reads: the segment objects under the prefix, whoever wrote them,
    // and the live frames of each (the erased one left out).
    let other = store_on(bucket_of(&s3), "recognizer-1")
        .append_batch(&[&frame(9, 100)])
        .expect("batch stored")
        .remove(0);
    let listed = archive.segments().expect("listed");
    let mut names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let mut want = [segment.as_str(), other.segment.as_str()];
    want.sort_unstable();
    assert_eq!(names, want);
    let age = chrono::Utc::now() - listed[0].written_at;
    assert!((-60..600).contains(&age.num_seconds()), "{listed:?}");
    let first = listed.iter().find(|s| s.name == segment).expect("listed");
    assert_eq!(
        archive.written_at(&segment).expect("head"),
        first.written_at
    );
    let scan = archive.scan(&segment).expect("read");
    assert_eq!(scan.frames, [record(0), record(2)]);
    assert_eq!(scan.erased, [locs[1].clone()]);
}

/// Listing pages: more segment objects than one page holds are all listed (moto
/// pages at the `max-keys` it is given; kozomol asks for its default of 1,000, so
/// this writes past it only through many small batches).
#[test]
fn every_segment_is_listed_across_pages() {
    let s3 = S3StandIn::start("kozomol-evidence").expect("S3 stand-in");
    let store = store_on(bucket_of(&s3), "ingest-a");
    let mut written = Vec::new();
    for i in 0..1_005u32 {
        let loc = store
            .append_batch(&[&i.to_le_bytes()])
            .expect("batch stored")
            .remove(0);
        written.push(loc.segment);
    }
    let mut listed: Vec<String> = store
        .segments()
        .expect("listed")
        .into_iter()
        .map(|s| s.name)
        .collect();
    listed.sort_unstable();
    written.sort_unstable();
    assert_eq!(listed, written);
}

#[test]
fn a_wrong_key_or_a_stopped_store_is_a_clear_error() {
    let s3 = S3StandIn::start("kozomol-evidence").expect("S3 stand-in");
    let wrong = store_on(
        S3Bucket {
            secret_access_key: "not-the-secret".into(),
            ..bucket_of(&s3)
        },
        "ingest-a",
    );
    let err = wrong
        .append_batch(&[b"frame"])
        .expect_err("a wrong key is refused");
    assert!(
        err.to_string().contains("HTTP 403 SignatureDoesNotMatch"),
        "{err}"
    );

    let store = store_on(bucket_of(&s3), "ingest-a");
    let loc = store.append_batch(&[b"frame"]).expect("stored").remove(0);
    drop(s3);
    assert!(matches!(
        store.append_batch(&[b"frame"]),
        Err(StoreError::Io(_))
    ));
    assert!(matches!(
        store.read(&loc, &sha(b"frame")),
        Err(StoreError::Io(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_is_trusted_by_the_named_authority_only() {
    let s3 = tokio::task::spawn_blocking(|| S3StandIn::start("kozomol-evidence"))
        .await
        .expect("join")
        .expect("S3 stand-in");
    let certificate = TestCertificate::new();
    let front = TlsFront::start(s3.addr, certificate.acceptor()).await;
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &certificate.pem).expect("ca file");
    let https = S3Bucket {
        endpoint: format!("https://127.0.0.1:{}", front.port()),
        ..bucket_of(&s3)
    };

    let trusting = Arc::new(store_on(
        S3Bucket {
            ca_file: Some(ca_file),
            ..https.clone()
        },
        "ingest-a",
    ));
    let store = Arc::clone(&trusting);
    let read = tokio::task::spawn_blocking(move || {
        let loc = store.append_batch(&[b"over TLS"])?.remove(0);
        store.read(&loc, &sha(b"over TLS"))
    })
    .await
    .expect("join")
    .expect("stored and read over TLS");
    assert_eq!(read, b"over TLS");
    assert!(front.handshakes() >= 1);

    // The public roots do not know a city's own authority.
    let public_roots = store_on(https, "ingest-b");
    let refused = tokio::task::spawn_blocking(move || public_roots.append_batch(&[b"frame"]))
        .await
        .expect("join");
    assert!(matches!(refused, Err(StoreError::Io(_))), "{refused:?}");
    tokio::task::spawn_blocking(move || drop(s3))
        .await
        .expect("join");
}
