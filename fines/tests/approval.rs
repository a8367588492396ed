//! The auto-approval stage: the machine approves only what the dual read confirms,
//! strongly, on a calibrated device; everything else waits for a person, with the reason.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kozomol_core::{
    CameraId, CaseId, CaseState, EventId, FrameRole, PlateRead, ReviewTier, ViolationKind,
};
use kozomol_fines::approval::{run_approvals, ApprovalStage, AUTO_REVIEWER};
use kozomol_store::{
    CaseWrite, FrameLocation, NewCase, NewFrame, RecognitionDecision, RecognitionOutcome, Store,
};
use sha2::{Digest, Sha256};
use support::{Backend, Db};

mod support;

async fn store(backend: Backend) -> (Db, Arc<dyn Store>) {
    let db = Db::with_camera(backend).await;
    let store = Arc::clone(&db.store);
    (db, store)
}

/// A recognised case: our read at `confidence`, the camera agreeing or not.
async fn recognised(
    store: &dyn Store,
    enforceable: bool,
    confidence: u16,
    agrees: Option<bool>,
) -> CaseId {
    let event_id = EventId::new_v7();
    let hash = |what: &str| -> [u8; 32] { Sha256::digest(format!("{what} {event_id}")).into() };
    let case = NewCase {
        event_id,
        camera_id: CameraId::parse("cam-1").expect("id"),
        captured_at: Utc::now(),
        kind: ViolationKind::RedLight,
        fingerprint: hash("payload"),
        event: serde_json::json!({"event_id": event_id.to_string()}),
        camera_plate: Some("01KG123ABC".into()),
        enforceable,
        enforceability_note: (!enforceable).then(|| "certificate expired".to_owned()),
        trace_parent: None,
        frames: vec![NewFrame {
            role: FrameRole::Overview,
            sha256: hash("overview"),
            location: FrameLocation {
                segment: "seg-1.kzs".into(),
                offset: 0,
                len: 10,
            },
        }],
    };
    let id = match store
        .record_cases(&[case], "test")
        .await
        .expect("case")
        .as_slice()
    {
        [CaseWrite::Created(id)] => *id,
        other => panic!("{other:?}"),
    };
    let jobs = store
        .claim_recognition("r1", 1, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1);
    let read = PlateRead {
        text: "01KG123ABC".into(),
        confidence_milli: confidence,
        country: Some("KG".into()),
    };
    let outcome = RecognitionOutcome {
        case_id: id,
        decision: RecognitionDecision::Recognized,
        plate: Some(read.clone()),
        char_confidences_milli: vec![],
        candidates: vec![read],
        plate_box: None,
        crop: None,
        model: "test".into(),
        agreement: agrees,
    };
    store
        .complete_recognition("r1", &outcome)
        .await
        .expect("complete");
    id
}

#[tokio::test]
async fn only_confirmed_strong_reads_are_approved_on_sqlite() {
    only_confirmed_strong_reads_on_calibrated_devices_are_approved(Backend::Sqlite).await;
}

#[tokio::test]
async fn only_confirmed_strong_reads_are_approved_on_postgres() {
    only_confirmed_strong_reads_on_calibrated_devices_are_approved(Backend::Postgres).await;
}

async fn only_confirmed_strong_reads_on_calibrated_devices_are_approved(backend: Backend) {
    let (_db, store) = store(backend).await;
    // (calibrated, confidence, camera agrees, expected, words in the reason)
    let table = [
        (true, 950, Some(true), CaseState::Approved, ""),
        (true, 900, Some(true), CaseState::Approved, ""),
        (true, 899, Some(true), CaseState::NeedsReview, "below 900"),
        (
            true,
            990,
            Some(false),
            CaseState::NeedsReview,
            "does not confirm",
        ),
        (true, 990, None, CaseState::NeedsReview, "does not confirm"),
        (
            false,
            990,
            Some(true),
            CaseState::NeedsReview,
            "calibration",
        ),
    ];
    let mut ids = Vec::new();
    for (calibrated, confidence, agrees, ..) in table {
        ids.push(recognised(store.as_ref(), calibrated, confidence, agrees).await);
    }
    let stage = ApprovalStage::new("approval-1", 900);
    let decided = run_approvals(&stage, store.as_ref()).await.expect("runs");
    assert_eq!(decided.len(), table.len());
    for (id, (calibrated, confidence, agrees, state, words)) in ids.iter().zip(table) {
        let case = store.case(*id).await.expect("read").expect("case");
        assert_eq!(case.state, state, "{calibrated} {confidence} {agrees:?}");
        let audit = store.case_audit(*id).await.expect("audit");
        let last = audit.last().expect("audited");
        if state == CaseState::Approved {
            let reviews = store.reviews(*id).await.expect("reviews");
            assert_eq!(reviews.len(), 1);
            assert_eq!(
                (reviews[0].tier, reviews[0].reviewer.as_str()),
                (ReviewTier::Auto, AUTO_REVIEWER)
            );
            assert_eq!(
                store.decided_plate(*id).await.expect("read").as_deref(),
                Some("01KG123ABC")
            );
        } else {
            assert_eq!(last.action, "case.set_aside");
            assert!(
                last.detail.as_deref().unwrap_or("").contains(words),
                "{:?}",
                last.detail
            );
        }
    }
    // Decided once: nothing is left, and the approved cases are free for the next stage.
    assert!(run_approvals(&stage, store.as_ref())
        .await
        .expect("runs")
        .is_empty());
    let next = store
        .claim_stage(CaseState::Approved, "lookup-1", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(next, ids[..2]);
}

/// A case whose stored read does not decode goes to a person; the rest of its batch is
/// decided as ever (it failed the whole batch, again on every lease).
#[tokio::test]
async fn a_case_that_cannot_be_decided_goes_to_a_person_and_the_batch_goes_on() {
    let (db, store) = store(Backend::Sqlite).await;
    let broken = recognised(store.as_ref(), true, 990, Some(true)).await;
    let sound = recognised(store.as_ref(), true, 990, Some(true)).await;
    let raw = sqlx::SqlitePool::connect(&db.url).await.expect("connect");
    sqlx::query("UPDATE recognitions SET candidates = 'not json' WHERE case_id = ?")
        .bind(broken.0)
        .execute(&raw)
        .await
        .expect("spoiled");
    let stage = ApprovalStage {
        worker: "approval-1".into(),
        batch: 10,
        lease: Duration::from_secs(60),
        threshold_milli: 900,
    };
    let decided = run_approvals(&stage, store.as_ref()).await.expect("runs");
    assert_eq!(
        decided,
        vec![
            (broken, Some(CaseState::NeedsReview)),
            (sound, Some(CaseState::Approved))
        ]
    );
    let case = store.case(broken).await.expect("read").expect("case");
    assert_eq!(case.state, CaseState::NeedsReview);
}
