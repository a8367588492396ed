//! A batch whose dead letters cannot be stored after its cases committed: the retry
//! answers the cases it created as accepted, not as duplicates of themselves.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::FixedOffset;
use ed25519_dalek::SigningKey;
use kozomol_core::envelope::encode_signed;
use kozomol_core::{CameraId, DeadLetterReason};
use kozomol_ingest::{BatchOutcome, BatchWriter, IngestMetrics};
use kozomol_store::{CameraRegistration, EvidenceStore};
use kozomol_testkit::fines::{device, noise_jpeg, site, speeding_event};

const REFUSE_DEAD_LETTERS: &str =
    "CREATE TRIGGER refuse_dead_letters BEFORE INSERT ON dead_letters \
     BEGIN SELECT RAISE(ABORT, 'disk full'); END";

#[tokio::test]
async fn a_batch_retried_after_its_dead_letters_failed_answers_its_cases_as_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("k.db");
    let store = kozomol_store::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("store");
    let evidence =
        Arc::new(EvidenceStore::open(&dir.path().join("evidence"), "t").expect("evidence"));
    let key = SigningKey::from_bytes(&[7; 32]);
    let camera = CameraId::parse("cam-batch").expect("camera id");
    store
        .register_camera(&CameraRegistration {
            camera_id: camera.clone(),
            public_key: key.verifying_key().to_bytes(),
            device_serial: device().serial,
            certificate: device().certificate,
            site: site(),
        })
        .await
        .expect("register");

    let frames = vec![noise_jpeg(64, 48, 1), noise_jpeg(32, 16, 2)];
    let captured = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").expect("time");
    let event = speeding_event(&camera, captured.timestamp_millis(), &frames);
    let topic = "kozomol/v1/cameras/cam-batch/violations".to_owned();
    let batch = vec![
        (
            topic.clone(),
            encode_signed(&event, &frames, &key, None).expect("encode"),
        ),
        (topic, b"not an envelope".to_vec()),
    ];

    let metrics = Arc::new(IngestMetrics::default());
    let writer = BatchWriter::new(
        Arc::clone(&store),
        evidence,
        Arc::clone(&metrics),
        "ingest:test".into(),
        FixedOffset::east_opt(6 * 3600).expect("offset"),
    );
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("a second connection");
    sqlx::query(REFUSE_DEAD_LETTERS)
        .execute(&raw)
        .await
        .expect("trigger");

    let failed = writer.write(&batch).await;
    assert!(failed.is_err(), "dead letters refused: {failed:?}");
    assert_eq!(metrics.accepted.load(Ordering::Relaxed), 0);

    sqlx::query("DROP TRIGGER refuse_dead_letters")
        .execute(&raw)
        .await
        .expect("drop trigger");
    let outcomes = writer.write(&batch).await.expect("the retry commits");
    let case_id = match &outcomes[0] {
        BatchOutcome::Accepted {
            event_id, case_id, ..
        } => {
            assert_eq!(event_id, &event.event_id.to_string());
            *case_id
        }
        other => panic!("the retried batch's event: {other:?}"),
    };
    assert!(matches!(
        &outcomes[1],
        BatchOutcome::Rejected {
            reason: DeadLetterReason::Malformed,
            ..
        }
    ));
    assert_eq!(metrics.accepted.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.duplicates.load(Ordering::Relaxed), 0);
    assert_eq!(
        store
            .dead_letters(10, None)
            .await
            .expect("dead letters")
            .len(),
        1
    );

    // Answered once: the same event again is a duplicate, as any redelivery is.
    let again = writer.write(&batch[..1]).await.expect("redelivery");
    assert_eq!(
        again[0],
        BatchOutcome::Duplicate {
            camera,
            event_id: event.event_id.to_string(),
            case_id,
        }
    );
    assert_eq!(metrics.duplicates.load(Ordering::Relaxed), 1);
}
