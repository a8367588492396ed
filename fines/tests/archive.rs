//! Destroying case files at the end of their archive period, with the evidence store on
//! disk: a destroyed case's frames are overwritten unless a kept case shows the same
//! bytes, the same bytes stored twice are overwritten in both places, and a pass that
//! died between marking and overwriting is finished by the next.

use std::sync::Arc;

use chrono::{Duration, Utc};
use kozomol_core::{CaseId, CaseState};
use kozomol_fines::archive::{destroy_case_files, sweep_unnamed_evidence, SweepPass};
use kozomol_store::{CaseFrame, EvidenceStore, Store, StoreError};
use kozomol_testkit::fines::{noise_jpeg, received_cases};
use sha2::{Digest, Sha256};
use support::{Backend, Db};

mod support;

#[tokio::test]
async fn destroyed_files_are_overwritten_and_shared_frames_kept_on_sqlite() {
    destroyed_files_are_overwritten_and_shared_frames_kept(Backend::Sqlite).await;
}

#[tokio::test]
async fn destroyed_files_are_overwritten_and_shared_frames_kept_on_postgres() {
    destroyed_files_are_overwritten_and_shared_frames_kept(Backend::Postgres).await;
}

#[tokio::test]
async fn second_copies_are_overwritten_with_the_first_on_sqlite() {
    second_copies_are_overwritten_with_the_first(Backend::Sqlite).await;
}

#[tokio::test]
async fn second_copies_are_overwritten_with_the_first_on_postgres() {
    second_copies_are_overwritten_with_the_first(Backend::Postgres).await;
}

#[tokio::test]
async fn bytes_no_row_names_are_swept_and_overwritten_on_sqlite() {
    bytes_no_row_names_are_swept_and_overwritten(Backend::Sqlite).await;
}

#[tokio::test]
async fn bytes_no_row_names_are_swept_and_overwritten_on_postgres() {
    bytes_no_row_names_are_swept_and_overwritten(Backend::Postgres).await;
}

async fn frames(store: &dyn Store, case: CaseId) -> Vec<CaseFrame> {
    store.case(case).await.expect("read").expect("case").frames
}

fn readable(evidence: &EvidenceStore, frames: &[CaseFrame]) -> Vec<bool> {
    frames
        .iter()
        .map(|f| match evidence.read(&f.location, &f.sha256) {
            Ok(_) => true,
            Err(StoreError::EvidenceErased { .. }) => false,
            Err(e) => panic!("frame {} neither read nor erased: {e}", f.index),
        })
        .collect()
}

async fn destroyed_files_are_overwritten_and_shared_frames_kept(backend: Backend) {
    let db = Db::new(backend).await;
    let store = db.store.as_ref();
    let evidence =
        Arc::new(EvidenceStore::open(&db.dir.path().join("evidence"), "test").expect("evidence"));
    // A and B show the same two frames; C has its own.
    let (overview, plate) = (noise_jpeg(64, 36, 1), noise_jpeg(32, 8, 2));
    let ab = received_cases(store, &evidence, 2, &overview, &plate)
        .await
        .expect("A and B");
    let (a, b) = (ab[0], ab[1]);
    let (overview_c, plate_c) = (noise_jpeg(64, 36, 3), noise_jpeg(32, 8, 4));
    let c = received_cases(store, &evidence, 1, &overview_c, &plate_c)
        .await
        .expect("C")[0];
    for case in [a, c] {
        db.force_state(case, CaseState::Rejected).await;
    }
    let soon = Utc::now() + Duration::minutes(1);
    let purged = store
        .purge_personal_data(soon, 100, "retention")
        .await
        .expect("purge");
    assert_eq!(purged.cases, vec![a, c]);
    // The archive period counts from the purge's cut-off: just past it.
    let due = soon + Duration::minutes(1);

    // A's file goes, but B (open) still shows its frames: nothing to erase.
    let first = destroy_case_files(store, &evidence, Some(due), 1, "archive")
        .await
        .expect("pass");
    assert_eq!(
        (
            first.cases.clone(),
            first.blobs_erased,
            first.records_overwritten
        ),
        (vec![a], 0, 0)
    );
    assert_eq!(readable(&evidence, &frames(store, a).await), [true, true]);

    // C's file goes with its frames.
    let second = destroy_case_files(store, &evidence, Some(due), 100, "archive")
        .await
        .expect("pass");
    assert_eq!(
        (
            second.cases.clone(),
            second.blobs_erased,
            second.records_overwritten,
            second.overwrite_failures
        ),
        (vec![c], 2, 2, 0)
    );
    assert_eq!(readable(&evidence, &frames(store, c).await), [false, false]);
    assert_eq!(readable(&evidence, &frames(store, b).await), [true, true]);

    // B settles and is purged; its file is marked destroyed, then the process dies
    // before overwriting: the next pass, with no case due, overwrites.
    db.force_state(b, CaseState::Rejected).await;
    let soon = Utc::now() + Duration::minutes(1);
    let due = soon + Duration::minutes(1);
    assert_eq!(
        store
            .purge_personal_data(soon, 100, "retention")
            .await
            .expect("purge")
            .cases,
        vec![b]
    );
    let marked = store
        .destroy_case_files(due, 100, "archive")
        .await
        .expect("marked");
    assert_eq!((marked.cases.clone(), marked.blobs_erased), (vec![b], 2));
    assert_eq!(readable(&evidence, &frames(store, b).await), [true, true]);
    // Finished by the next pass, even one that destroys no file (no archive period).
    let finished = destroy_case_files(store, &evidence, None, 100, "archive")
        .await
        .expect("pass");
    assert_eq!(
        (finished.cases.clone(), finished.records_overwritten),
        (vec![], 2)
    );
    for case in [a, b] {
        assert_eq!(
            readable(&evidence, &frames(store, case).await),
            [false, false]
        );
    }
    let idle = destroy_case_files(store, &evidence, Some(due), 100, "archive")
        .await
        .expect("pass");
    assert!(!idle.did_work(), "{idle:?}");
}

/// Bytes appended that no row names (an append whose sync failed after writing, a
/// stored PUT whose answer was lost) are found by the sweep once their segment has
/// been left long enough, and overwritten by the next archive pass; the case's frames
/// and a second copy of one of them (recorded as its copy) stay.
async fn bytes_no_row_names_are_swept_and_overwritten(backend: Backend) {
    let db = Db::new(backend).await;
    let store = db.store.as_ref();
    let evidence =
        Arc::new(EvidenceStore::open(&db.dir.path().join("evidence"), "test").expect("evidence"));
    let (overview, plate) = (noise_jpeg(64, 36, 7), noise_jpeg(32, 8, 8));
    let case = received_cases(store, &evidence, 1, &overview, &plate)
        .await
        .expect("case")[0];
    let orphan = noise_jpeg(48, 24, 9);
    let damaged = noise_jpeg(40, 20, 10);
    let stray = evidence
        .append_batch(&[&orphan, &overview, &damaged])
        .expect("appended");
    // A byte of the last one flipped on disk: its header's hash no longer fits it.
    let path = db.dir.path().join("evidence").join(&stray[2].segment);
    let mut bytes = std::fs::read(&path).expect("segment");
    let at = usize::try_from(stray[2].offset).expect("offset") + 5;
    bytes[at] ^= 0xff;
    std::fs::write(&path, bytes).expect("segment written");
    let orphan_sha: [u8; 32] = Sha256::digest(&orphan).into();
    let overview_sha: [u8; 32] = Sha256::digest(&overview).into();

    // A segment written within the grace is left alone.
    let early = sweep_unnamed_evidence(store, &evidence, Utc::now() - Duration::days(1), "archive")
        .await
        .expect("sweep");
    assert_eq!(early, SweepPass::default());
    let later = Utc::now() + Duration::minutes(1);
    let swept = sweep_unnamed_evidence(store, &evidence, later, "archive")
        .await
        .expect("sweep");
    assert_eq!(
        (swept.segments, swept.frames, swept.corrupt, swept.failures),
        (1, 4, 1, 0)
    );
    // Swept as of its last write: not read again until it changes.
    let again = sweep_unnamed_evidence(store, &evidence, later, "archive")
        .await
        .expect("sweep");
    assert_eq!(again, SweepPass::default());

    let pass = destroy_case_files(store, &evidence, None, 100, "archive")
        .await
        .expect("pass");
    assert_eq!((pass.records_overwritten, pass.overwrite_failures), (1, 0));
    assert!(matches!(
        evidence.read(&stray[0], &orphan_sha),
        Err(StoreError::EvidenceErased { .. })
    ));
    assert!(
        evidence.read(&stray[1], &overview_sha).is_ok(),
        "a kept blob's copy stays"
    );
    // A damaged record is never queued: a person must look at it.
    let damaged_sha: [u8; 32] = Sha256::digest(&damaged).into();
    assert!(matches!(
        evidence.read(&stray[2], &damaged_sha),
        Err(StoreError::EvidenceCorrupt { .. })
    ));
    assert_eq!(
        readable(&evidence, &frames(store, case).await),
        [true, true]
    );
}

/// Every record still holding bytes in the segments under `dir`.
fn frames_left(dir: &std::path::Path) -> usize {
    let mut left = 0;
    for entry in std::fs::read_dir(dir).expect("evidence folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            left += frames_left(&path);
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            left += kozomol_store::scan_segment(dir, name)
                .expect("scan")
                .frames
                .len();
        }
    }
    left
}

async fn second_copies_are_overwritten_with_the_first(backend: Backend) {
    let db = Db::new(backend).await;
    let store = db.store.as_ref();
    let folder = db.dir.path().join("evidence");
    let evidence = Arc::new(EvidenceStore::open(&folder, "test").expect("evidence"));
    // The same two frames stored twice, once for each case (two ingest processes).
    let (overview, plate) = (noise_jpeg(64, 36, 5), noise_jpeg(32, 8, 6));
    let mut cases = Vec::new();
    for _ in 0..2 {
        let case = received_cases(store, &evidence, 1, &overview, &plate)
            .await
            .expect("case")[0];
        db.force_state(case, CaseState::Rejected).await;
        cases.push(case);
    }
    assert_eq!(frames_left(&folder), 4);
    let soon = Utc::now() + Duration::minutes(1);
    let purged = store
        .purge_personal_data(soon, 100, "retention")
        .await
        .expect("purge");
    assert_eq!(purged.cases, cases);
    let pass = destroy_case_files(
        store,
        &evidence,
        Some(soon + Duration::minutes(1)),
        100,
        "archive",
    )
    .await
    .expect("pass");
    assert_eq!(
        (
            pass.blobs_erased,
            pass.records_overwritten,
            pass.overwrite_failures
        ),
        (2, 4, 0),
        "{pass:?}"
    );
    assert_eq!(frames_left(&folder), 0, "no copy left behind");
}

/// A record the segment holds otherwise than the database says (bit rot, a restore
/// gone wrong) is left for an operator, and the case's other frames in that segment
/// are overwritten all the same: one bad record held every destroyed file's bytes in
/// its segment readable past their term.
#[tokio::test]
async fn a_damaged_record_holds_back_only_itself() {
    let db = Db::new(Backend::Sqlite).await;
    let store = db.store.as_ref();
    let folder = db.dir.path().join("evidence");
    let evidence = Arc::new(EvidenceStore::open(&folder, "test").expect("evidence"));
    let (overview, plate) = (noise_jpeg(64, 36, 7), noise_jpeg(32, 8, 8));
    let case = received_cases(store, &evidence, 1, &overview, &plate)
        .await
        .expect("case")[0];
    db.force_state(case, CaseState::Rejected).await;
    let soon = Utc::now() + Duration::minutes(1);
    let purged = store
        .purge_personal_data(soon, 100, "retention")
        .await
        .expect("purge");
    assert_eq!(purged.cases, vec![case]);
    // The plate's record header no longer names its bytes.
    let shown = frames(store, case).await;
    let damaged = &shown[1].location;
    let path = folder.join(&damaged.segment);
    let mut bytes = std::fs::read(&path).expect("segment");
    let first_hash_byte = (damaged.offset - 32) as usize;
    bytes[first_hash_byte] ^= 0xff;
    std::fs::write(&path, bytes).expect("damaged");

    let pass = destroy_case_files(
        store,
        &evidence,
        Some(soon + Duration::minutes(1)),
        100,
        "archive",
    )
    .await
    .expect("pass");
    assert_eq!(
        (pass.records_overwritten, pass.overwrite_failures),
        (1, 1),
        "{pass:?}"
    );
    assert!(matches!(
        evidence.read(&shown[0].location, &shown[0].sha256),
        Err(StoreError::EvidenceErased { .. })
    ));
    assert!(matches!(
        evidence.read(damaged, &shown[1].sha256),
        Err(StoreError::EvidenceCorrupt { .. })
    ));
}
