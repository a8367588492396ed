//! The recognition worker against a real store (SQLite and PostgreSQL), real evidence
//! segments and the bundled models: state moves, dual-read routing, the plate crop as
//! evidence, and a corrupt frame that is recorded without stopping the queue.
//! Needs the ONNX Runtime library (`source scripts/lib.sh && ensure_onnxruntime`):
//! without it the test fails and says so, since it could prove nothing.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_camera_sim::{render_frames, FrameSpec};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, EventId, FrameRole, Site, ViolationKind,
};
use kozomol_recognizer::worker::{run_once, JobResult, WorkerConfig, WorkerError};
use kozomol_recognizer::{Recognizer, RecognizerConfig};
use kozomol_store::{
    connect, CameraRegistration, CaseWrite, EvidenceStore, FailResult, NewCase, NewFrame,
    RecognitionDecision, Store,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn recognizer() -> Arc<Recognizer> {
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .expect(
        "ORT_DYLIB_PATH: run `source scripts/lib.sh && ensure_onnxruntime` (scripts/test.sh does)",
    );
    Arc::new(
        Recognizer::load(&RecognizerConfig {
            models_dir: repo().join("models/kozomol-reader"),
            onnxruntime: Some(library),
            threads: 2,
            ..RecognizerConfig::default()
        })
        .expect("recognizer loads"),
    )
}

struct PgDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDb {
    async fn new() -> PgDb {
        let admin_url = std::env::var("KOZOMOL_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("kozomol_r_{}", uuid::Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("PostgreSQL for tests");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        PgDb {
            admin_url,
            name,
            url,
        }
    }

    async fn drop_database(self) {
        let admin = sqlx::PgPool::connect(&self.admin_url).await.unwrap();
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&admin)
            .await;
    }
}

fn camera() -> CameraId {
    CameraId::parse("cam-rec-1").unwrap()
}

async fn register(store: &dyn Store) {
    store
        .register_camera(&CameraRegistration {
            camera_id: camera(),
            public_key: [7; 32],
            device_serial: "DEV-1".into(),
            certificate: CalibrationCertificate {
                number: "KG-1".into(),
                valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                valid_until: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            },
            site: Site {
                id: "site-1".into(),
                lat_e6: 42_870_000,
                lon_e6: 74_600_000,
                address: "проспект Чуй, Бишкек".into(),
                direction: "east".into(),
                lane: 1,
            },
        })
        .await
        .unwrap();
}

/// A case whose frames are `frames` (role, bytes), stored in `evidence`, with the
/// camera's read `camera_plate`.
async fn record(
    store: &dyn Store,
    evidence: &EvidenceStore,
    frames: &[(FrameRole, Vec<u8>)],
    camera_plate: Option<&str>,
) -> CaseId {
    let bytes: Vec<&[u8]> = frames.iter().map(|(_, b)| b.as_slice()).collect();
    let locations = evidence.append_batch(&bytes).unwrap();
    let event_id = EventId::new_v7();
    let plate_read = camera_plate
        .map(|p| serde_json::json!({"text": p, "confidence_milli": 930, "country": "KG"}));
    let case = NewCase {
        event_id,
        camera_id: camera(),
        captured_at: Utc::now(),
        kind: ViolationKind::Speeding,
        fingerprint: Sha256::digest(event_id.to_string()).into(),
        event: serde_json::json!({"event_id": event_id.to_string(), "plate_read": plate_read}),
        camera_plate: camera_plate.map(str::to_owned),
        enforceable: true,
        enforceability_note: None,
        trace_parent: None,
        frames: frames
            .iter()
            .zip(locations)
            .map(|((role, bytes), location)| NewFrame {
                role: *role,
                sha256: Sha256::digest(bytes).into(),
                location,
            })
            .collect(),
    };
    match store.record_cases(&[case], "test").await.unwrap().remove(0) {
        CaseWrite::Created(id) => id,
        other => panic!("not created: {other:?}"),
    }
}

/// A grey close-up with nothing on it.
fn blank_jpeg() -> Vec<u8> {
    let grey = image::RgbImage::from_pixel(400, 176, image::Rgb([128, 128, 128]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&grey)
        .unwrap();
    out
}

async fn worker_routes_reads(store: Arc<dyn Store>) {
    let recognizer = recognizer();
    let dir = tempfile::tempdir().unwrap();
    let evidence = Arc::new(EvidenceStore::open(&dir.path().join("evidence"), "t").unwrap());
    register(&*store).await;
    let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let scene = |seed| {
        let f = render_frames(&FrameSpec::random(
            seed,
            "cam-rec-1",
            "проспект Чуй, Бишкек",
            at,
        ))
        .unwrap();
        let plate = f.spec.plate.canonical();
        (
            vec![
                (FrameRole::Overview, f.overview),
                (FrameRole::Plate, f.plate_close_up),
            ],
            plate,
        )
    };
    let (frames_a, plate_a) = scene(1);
    let (frames_b, plate_b) = scene(2);
    let (frames_c, plate_c) = scene(3);
    let agreeing = record(&*store, &evidence, &frames_a, Some(&plate_a)).await;
    let disagreeing = record(&*store, &evidence, &frames_b, Some("01999XXX")).await;
    let corrupt = record(
        &*store,
        &evidence,
        &[(FrameRole::Overview, b"\xff\xd8 not really a JPEG".to_vec())],
        Some("01123ABC"),
    )
    .await;
    let no_camera_read = record(&*store, &evidence, &frames_c, None).await;
    // A close-up whose read decides the case ends the job: the overview behind it,
    // unreadable here, is never read. One whose read does not (a blank close-up) leaves
    // the overview to be read.
    let (frames_d, plate_d) = scene(4);
    let decided_by_close_up = record(
        &*store,
        &evidence,
        &[
            (FrameRole::Overview, b"\xff\xd8 not read".to_vec()),
            frames_d[1].clone(),
        ],
        Some(&plate_d),
    )
    .await;
    let (frames_e, plate_e) = scene(5);
    let blank_close_up = record(
        &*store,
        &evidence,
        &[frames_e[0].clone(), (FrameRole::Plate, blank_jpeg())],
        Some(&plate_e),
    )
    .await;

    let config = WorkerConfig::new("worker-test");
    let mut results = run_once(
        &config,
        &recognizer,
        &store,
        &evidence,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    results.sort_by_key(|(id, _)| id.0);
    let result = |id: CaseId| results.iter().find(|(c, _)| *c == id).map(|(_, r)| *r);

    // Agreement: recognized, with the crop kept as evidence that still verifies.
    assert_eq!(
        result(agreeing),
        Some(JobResult::Decided(RecognitionDecision::Recognized))
    );
    let read = store.recognition(agreeing).await.unwrap().unwrap();
    assert_eq!(read.plate.as_ref().unwrap().text, plate_a);
    assert_eq!(read.agreement, Some(true));
    assert_eq!(read.model.as_deref(), Some("kozomol-reader-v2"));
    let crop = read.crop.unwrap();
    let crop_bytes = evidence.read(&crop.location, &crop.sha256).unwrap();
    assert_eq!(&crop_bytes[..2], &[0xff, 0xd8]);
    assert!(read.plate_box.is_some());
    assert_eq!(
        store.case(agreeing).await.unwrap().unwrap().state,
        CaseState::Recognized
    );

    // Disagreement: a person decides, with both reads on record.
    assert_eq!(
        result(disagreeing),
        Some(JobResult::Decided(RecognitionDecision::NeedsReview))
    );
    let read = store.recognition(disagreeing).await.unwrap().unwrap();
    assert_eq!(read.plate.unwrap().text, plate_b);
    assert_eq!(read.camera_read.unwrap().text, "01999XXX");
    assert_eq!(read.agreement, Some(false));

    // Bad bytes: recorded on the case, sent to review at once, and the others went on.
    assert_eq!(
        result(corrupt),
        Some(JobResult::Failed(FailResult::SentToReview { attempts: 1 }))
    );
    let read = store.recognition(corrupt).await.unwrap().unwrap();
    assert!(
        read.error.as_deref().unwrap().contains("JPEG"),
        "{:?}",
        read.error
    );
    assert_eq!(
        store.case(corrupt).await.unwrap().unwrap().state,
        CaseState::NeedsReview
    );

    assert_eq!(
        result(decided_by_close_up),
        Some(JobResult::Decided(RecognitionDecision::Recognized))
    );
    let read = store
        .recognition(decided_by_close_up)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.plate.unwrap().text, plate_d);
    assert_eq!(
        read.plate_box.unwrap().frame_index,
        1,
        "read on the close-up"
    );
    assert_eq!(
        result(blank_close_up),
        Some(JobResult::Decided(RecognitionDecision::Recognized))
    );
    let read = store.recognition(blank_close_up).await.unwrap().unwrap();
    assert_eq!(read.plate.unwrap().text, plate_e);
    assert_eq!(
        read.plate_box.unwrap().frame_index,
        0,
        "read on the overview"
    );

    // No camera read: our read alone, correct whichever way the threshold sends it.
    let read = store.recognition(no_camera_read).await.unwrap().unwrap();
    assert_eq!(read.plate.unwrap().text, plate_c);
    assert_eq!(read.agreement, None);

    // Nothing is left to take.
    assert!(run_once(
        &config,
        &recognizer,
        &store,
        &evidence,
        &CancellationToken::new()
    )
    .await
    .unwrap()
    .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&format!("sqlite://{}", dir.path().join("k.db").display()))
        .await
        .unwrap();
    worker_routes_reads(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_on_postgres() {
    let db = PgDb::new().await;
    let store = connect(&db.url).await.unwrap();
    worker_routes_reads(store).await;
    db.drop_database().await;
}

/// One case, with a camera read, on a fresh PostgreSQL database whose `recognitions`
/// table refuses rows with SQLSTATE `errcode` until `take_again`.
struct RefusingStore {
    db: PgDb,
    store: Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
    evidence_dir: PathBuf,
    _dir: tempfile::TempDir,
    case: CaseId,
    raw: sqlx::PgPool,
}

impl RefusingStore {
    async fn new(errcode: &str) -> RefusingStore {
        let db = PgDb::new().await;
        let store = connect(&db.url).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let evidence_dir = dir.path().join("evidence");
        let evidence = Arc::new(EvidenceStore::open(&evidence_dir, "t").unwrap());
        register(&*store).await;
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let f = render_frames(&FrameSpec::random(
            11,
            "cam-rec-1",
            "проспект Чуй, Бишкек",
            at,
        ))
        .unwrap();
        let plate = f.spec.plate.canonical();
        let case = record(
            &*store,
            &evidence,
            &[
                (FrameRole::Overview, f.overview),
                (FrameRole::Plate, f.plate_close_up),
            ],
            Some(&plate),
        )
        .await;
        let raw = sqlx::PgPool::connect(&db.url).await.unwrap();
        let refuse = format!(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '{errcode}'; END $$; \
             CREATE TRIGGER refuse_recognitions BEFORE INSERT ON recognitions \
             FOR EACH ROW EXECUTE FUNCTION refuse();"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(refuse))
            .execute(&raw)
            .await
            .unwrap();
        RefusingStore {
            db,
            store,
            evidence,
            evidence_dir,
            _dir: dir,
            case,
            raw,
        }
    }

    async fn run_once(&self) -> Result<Vec<(CaseId, JobResult)>, WorkerError> {
        let config = WorkerConfig::new("worker-test");
        run_once(
            &config,
            &recognizer(),
            &self.store,
            &self.evidence,
            &CancellationToken::new(),
        )
        .await
    }

    async fn drop_database(self) {
        self.raw.close().await;
        drop(self.store);
        self.db.drop_database().await;
    }
}

/// A read the store cannot record at first (PostgreSQL out of disk space; its plate
/// crop is stored already) is recorded once the store takes writes again, within the
/// lease: not read again later with an attempt used, and its crop not left out of
/// the overwrite queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_the_store_refuses_for_a_while_is_recorded_when_it_comes_back() {
    let s = RefusingStore::new("53100").await;
    // The disk is freed once the worker has stored the crop, and so has tried to
    // record its read, which the store refused.
    let segments_before = evidence_bytes(&s.evidence_dir);
    let (evidence_dir, raw) = (s.evidence_dir.clone(), s.raw.clone());
    let disk_freed = tokio::spawn(async move {
        let crop_stored = async {
            while evidence_bytes(&evidence_dir) == segments_before {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), crop_stored)
            .await
            .expect("the worker stores a crop");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::raw_sql("DROP TRIGGER refuse_recognitions ON recognitions")
            .execute(&raw)
            .await
            .unwrap();
    });
    let results = s.run_once().await.unwrap();
    disk_freed.await.unwrap();
    assert_eq!(results.len(), 1);
    assert!(
        matches!(results[0], (id, JobResult::Decided(_)) if id == s.case),
        "{results:?}"
    );
    let read = s
        .store
        .recognition(s.case)
        .await
        .unwrap()
        .expect("recorded");
    assert!(read.crop.is_some(), "the crop is recorded with the read");
    assert_eq!(read.attempts, 1, "read once");
    let stored = s.store.case(s.case).await.unwrap().unwrap();
    assert_ne!(stored.state, CaseState::Received);
    s.drop_database().await;
}

/// A read the store refuses for its content is not tried again: the job fails, and
/// the plate crop stored for it, which no row will name, is queued for overwriting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crop_of_a_read_the_store_refuses_for_good_is_queued_for_overwriting() {
    let s = RefusingStore::new("23514").await;
    let segments_before = evidence_bytes(&s.evidence_dir);
    let failed = s.run_once().await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(
        evidence_bytes(&s.evidence_dir) > segments_before,
        "a crop was stored"
    );
    let queued = s.store.erasures_due(10).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    let crop = s
        .evidence
        .read(&queued[0].location, &queued[0].sha256)
        .expect("the queued bytes are there");
    assert!(crop.starts_with(&[0xff, 0xd8]), "a JPEG: the plate crop");
    assert!(s.store.recognition(s.case).await.unwrap().is_none());
    s.drop_database().await;
}

/// The bytes in an evidence folder's segments.
fn evidence_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A case whose claims keep ending without an outcome (a crash inside the reader kills
/// each worker that takes it) goes to a person once claimed more often than a case may
/// fail, unread; other cases go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_that_stops_every_worker_goes_to_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&format!("sqlite://{}", dir.path().join("k.db").display()))
        .await
        .unwrap();
    let evidence = Arc::new(EvidenceStore::open(&dir.path().join("evidence"), "t").unwrap());
    register(&*store).await;
    let case = record(
        &*store,
        &evidence,
        &[(FrameRole::Overview, blank_jpeg())],
        Some("01123ABC"),
    )
    .await;
    let config = WorkerConfig::new("worker-test");
    // Claims that end with no outcome: each worker died while reading.
    for _ in 0..config.max_attempts {
        let claimed = store
            .claim_recognition("doomed", 1, std::time::Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
    }
    let results = run_once(
        &config,
        &recognizer(),
        &store,
        &evidence,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    let stored = store.case(case).await.unwrap().unwrap();
    assert_eq!(stored.state, CaseState::NeedsReview);
    let read = store.recognition(case).await.unwrap().expect("recorded");
    assert!(
        read.error
            .as_deref()
            .is_some_and(|e| e.contains("without an outcome")),
        "{read:?}"
    );
}
