//! Batches the store fails part-way, against a real SQLite store whose triggers refuse
//! one table's rows: a retry after the dead letters failed answers the cases its first
//! attempt created as accepted, not as duplicates of themselves; a retry after the cases
//! failed points them at the frames the first attempt appended, not at a second copy;
//! and, on a real Mosquitto, an ingest stopped right after a commit still acknowledges it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::FixedOffset;
use ed25519_dalek::SigningKey;
use kozomol_core::envelope::encode_signed;
use kozomol_core::{CameraId, DeadLetterReason, ViolationEvent};
use kozomol_ingest::{Arrival, BatchOutcome, BatchWriter, IngestMetrics};
use kozomol_store::{CameraRegistration, EvidenceStore, Store};
use kozomol_testkit::fines::{device, noise_jpeg, site, speeding_event};
use tempfile::TempDir;

/// A camera registered on `store` as `id`, and the key it signs with.
async fn registered(store: &dyn Store, id: &str) -> (CameraId, SigningKey) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let camera = CameraId::parse(id).expect("camera id");
    register(store, &camera, &key).await;
    (camera, key)
}

/// Registers `camera` (anew, where it is already) with `key`, the kit's device and site.
async fn register(store: &dyn Store, camera: &CameraId, key: &SigningKey) {
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
}

/// A store at `url` and an evidence folder in `dir`.
async fn opened(url: &str, dir: &Path) -> (Arc<dyn Store>, Arc<EvidenceStore>) {
    let store = kozomol_store::connect(url).await.expect("store");
    let evidence = Arc::new(EvidenceStore::open(&dir.join("evidence"), "t").expect("evidence"));
    (store, evidence)
}

/// A batch writer on `store`, dating calibrations in Bishkek.
fn writer_on(
    store: &Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
    metrics: Arc<IngestMetrics>,
) -> BatchWriter {
    BatchWriter::new(
        Arc::clone(store),
        evidence,
        metrics,
        "ingest:test".into(),
        FixedOffset::east_opt(6 * 3600).expect("offset"),
    )
}

/// A speeding event of `camera` captured at `at_ms`, signed with `key`, its two frames
/// made from `seed`.
fn signed(camera: &CameraId, key: &SigningKey, at_ms: i64, seed: u64) -> Vec<u8> {
    let frames = vec![noise_jpeg(64, 48, seed), noise_jpeg(32, 16, seed + 1)];
    let event = speeding_event(camera, at_ms, &frames);
    encode_signed(&event, &frames, key, None).expect("encode")
}

/// A writer on a fresh SQLite store, a raw connection to that database for triggers,
/// and a batch of one signed event and one message that is not an envelope.
struct Fixture {
    dir: TempDir,
    store: Arc<dyn Store>,
    raw: sqlx::SqlitePool,
    metrics: Arc<IngestMetrics>,
    writer: BatchWriter,
    camera: CameraId,
    event: ViolationEvent,
    batch: Vec<Arrival>,
}

impl Fixture {
    /// The hashes of the bytes queued for overwriting, sorted.
    async fn queued_for_overwriting(&self) -> Vec<[u8; 32]> {
        queued_for_overwriting(self.store.as_ref()).await
    }

    /// The hashes of the event's frames, sorted.
    fn event_frames(&self) -> Vec<[u8; 32]> {
        frame_hashes(&self.event)
    }

    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let (store, evidence) = opened(&url, dir.path()).await;
        let (camera, key) = registered(store.as_ref(), "cam-batch").await;
        let frames = vec![noise_jpeg(64, 48, 1), noise_jpeg(32, 16, 2)];
        let captured = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").expect("time");
        let event = speeding_event(&camera, captured.timestamp_millis(), &frames);
        let topic = "kozomol/v1/cameras/cam-batch/violations".to_owned();
        let batch = vec![
            Arrival::now(
                topic.clone(),
                encode_signed(&event, &frames, &key, None).expect("encode"),
            ),
            Arrival::now(topic, b"not an envelope".to_vec()),
        ];
        let metrics = Arc::new(IngestMetrics::default());
        let writer = writer_on(&store, evidence, Arc::clone(&metrics));
        let raw = sqlx::SqlitePool::connect(&url)
            .await
            .expect("a second connection");
        Fixture {
            dir,
            store,
            raw,
            metrics,
            writer,
            camera,
            event,
            batch,
        }
    }

    async fn refuse(&self, table: &str) {
        let sql = format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.raw)
            .await
            .expect("trigger");
    }

    async fn take_again(&self, table: &str) {
        let sql = format!("DROP TRIGGER refuse_{table}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.raw)
            .await
            .expect("drop trigger");
    }

    /// The retried batch: its event accepted, its bad message dead-lettered.
    fn accepted_case(&self, outcomes: &[BatchOutcome]) -> kozomol_core::CaseId {
        assert!(matches!(
            &outcomes[1],
            BatchOutcome::Rejected {
                reason: DeadLetterReason::Malformed,
                ..
            }
        ));
        match &outcomes[0] {
            BatchOutcome::Accepted {
                event_id, case_id, ..
            } => {
                assert_eq!(event_id, &self.event.event_id.to_string());
                *case_id
            }
            other => panic!("the retried batch's event: {other:?}"),
        }
    }

    fn evidence_bytes(&self) -> u64 {
        evidence_bytes(self.dir.path())
    }
}

/// The bytes in the evidence folder under `dir`.
fn evidence_bytes(dir: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .expect("evidence folder")
            .map(|entry| {
                let entry = entry.expect("entry");
                let meta = entry.metadata().expect("metadata");
                if meta.is_dir() {
                    walk(&entry.path())
                } else {
                    meta.len()
                }
            })
            .sum()
    }
    walk(&dir.join("evidence"))
}

#[tokio::test]
async fn a_batch_retried_after_its_dead_letters_failed_answers_its_cases_as_accepted() {
    let f = Fixture::new().await;
    f.refuse("dead_letters").await;
    let failed = f.writer.write(&f.batch).await;
    assert!(failed.is_err(), "dead letters refused: {failed:?}");
    assert_eq!(f.metrics.accepted.load(Ordering::Relaxed), 0);

    f.take_again("dead_letters").await;
    let outcomes = f.writer.write(&f.batch).await.expect("the retry commits");
    let case_id = f.accepted_case(&outcomes);
    assert_eq!(f.metrics.accepted.load(Ordering::Relaxed), 1);
    assert_eq!(f.metrics.duplicates.load(Ordering::Relaxed), 0);
    let letters = f.store.dead_letters(10, None).await.expect("dead letters");
    assert_eq!(letters.len(), 1);

    // Answered once: the same event again is a duplicate, as any redelivery is.
    let again = f.writer.write(&f.batch[..1]).await.expect("redelivery");
    assert_eq!(
        again[0],
        BatchOutcome::Duplicate {
            camera: f.camera.clone(),
            event_id: f.event.event_id.to_string(),
            case_id,
        }
    );
    assert_eq!(f.metrics.duplicates.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_batch_retried_after_its_cases_failed_keeps_the_frames_it_appended_once() {
    let f = Fixture::new().await;
    f.refuse("cases").await;
    let failed = f.writer.write(&f.batch).await;
    assert!(failed.is_err(), "cases refused: {failed:?}");
    let appended = f.evidence_bytes();
    assert!(appended > 0, "the frames were appended before the cases");

    f.take_again("cases").await;
    let outcomes = f.writer.write(&f.batch).await.expect("the retry commits");
    let case_id = f.accepted_case(&outcomes);
    assert_eq!(
        f.evidence_bytes(),
        appended,
        "the retry appended no second copy"
    );
    let case = f.store.case(case_id).await.expect("case").expect("stored");
    assert_eq!(case.frames.len(), 2);
}

/// Frames a failed attempt appended that its retry no longer takes (the event refused
/// on the second look: a camera's key replaced meanwhile, say; here the retry simply
/// lacks it) are bytes no row will keep: queued for overwriting once the retry commits.
#[tokio::test]
async fn frames_a_failed_attempt_appended_and_its_retry_left_are_queued_for_overwriting() {
    let f = Fixture::new().await;
    f.refuse("cases").await;
    assert!(f.writer.write(&f.batch).await.is_err());
    f.take_again("cases").await;
    assert!(f.store.erasures_due(10).await.expect("due").is_empty());

    let outcomes = f.writer.write(&f.batch[1..]).await.expect("commits");
    assert!(matches!(&outcomes[..], [BatchOutcome::Rejected { .. }]));
    let (queued, frames) = (f.queued_for_overwriting().await, f.event_frames());
    assert_eq!(queued, frames, "both frames the first attempt appended");
}

/// Ingest stopping with a batch uncommitted (its messages unacked, so the broker hands
/// them to the next process, which appends the frames anew): the frames the failed
/// attempt appended are queued for overwriting before it stops.
#[tokio::test]
async fn frames_of_a_batch_left_uncommitted_at_a_stop_are_queued_for_overwriting() {
    let f = Fixture::new().await;
    f.refuse("cases").await;
    assert!(f.writer.write(&f.batch).await.is_err());
    f.take_again("cases").await;
    assert!(f.store.erasures_due(10).await.expect("due").is_empty());

    f.writer.queue_uncommitted_on_stop().await;
    let (queued, frames) = (f.queued_for_overwriting().await, f.event_frames());
    assert_eq!(queued, frames, "both frames the attempt appended");
}

/// `check` on a fresh SQLite store, with an evidence folder of its own.
async fn on_sqlite(check: impl AsyncFnOnce(&str, &Path)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    check(&url, dir.path()).await;
}

/// `check` on a scratch PostgreSQL database named after `name`, dropped after it.
async fn on_postgres(name: &str, check: impl AsyncFnOnce(&str, &Path)) {
    let scratch = kozomol_testkit::postgres::ScratchPostgres::create(
        &kozomol_testkit::postgres::server_url(),
        name,
    )
    .await
    .expect("scratch database");
    let dir = tempfile::tempdir().expect("tempdir");
    check(&scratch.url, dir.path()).await;
    scratch.drop_now().await.expect("drop");
}

#[tokio::test]
async fn what_a_sender_writes_never_stops_a_batch_on_sqlite() {
    on_sqlite(what_a_sender_writes_never_stops_a_batch).await;
}

#[tokio::test]
async fn what_a_sender_writes_never_stops_a_batch_on_postgres() {
    on_postgres("ingest_nul", what_a_sender_writes_never_stops_a_batch).await;
}

/// A NUL in a topic, or in a signed event's text (PostgreSQL refuses it in text and
/// JSON), is dead-lettered with the NUL escaped; the batch commits, its good event
/// with it, on its first attempt: no row of the batch is refused for its content.
async fn what_a_sender_writes_never_stops_a_batch(url: &str, dir: &Path) {
    let (store, evidence) = opened(url, dir).await;
    let (camera, key) = registered(store.as_ref(), "cam-nul").await;
    let captured = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").expect("time");
    let signed = |n: u8| {
        let at = captured.timestamp_millis() + i64::from(n);
        signed(&camera, &key, at, u64::from(n))
    };
    // The site's direction with a NUL in it: the signature no longer fits either, but
    // the event's own check refuses it first.
    let mut spoiled = signed(1);
    let at = spoiled
        .windows(b"eastbound".len())
        .position(|w| w == b"eastbound")
        .expect("the direction is in the envelope");
    spoiled[at + 4] = 0;
    let topic = "kozomol/v1/cameras/cam-nul/violations".to_owned();
    let batch = vec![
        Arrival::now("kozomol/v1/cameras/cam\0nul/violations", signed(3)),
        Arrival::now(topic.clone(), spoiled),
        Arrival::now(topic, signed(5)),
    ];
    let writer = writer_on(&store, evidence, Arc::new(IngestMetrics::default()));
    let outcomes = writer.write(&batch).await.expect("the batch commits");
    assert!(
        matches!(outcomes[2], BatchOutcome::Accepted { .. }),
        "{outcomes:?}"
    );
    let letters = store.dead_letters(10, None).await.expect("dead letters");
    assert_eq!(letters.len(), 2, "{letters:?}");
    let topics: Vec<&str> = letters.iter().map(|l| l.topic.as_str()).collect();
    assert!(
        topics.contains(&"kozomol/v1/cameras/cam\\u{0}nul/violations"),
        "{topics:?}"
    );
    let spoiled = letters
        .iter()
        .find(|l| l.topic == "kozomol/v1/cameras/cam-nul/violations")
        .expect("the spoiled event's letter");
    assert_eq!(spoiled.reason, DeadLetterReason::Malformed, "{spoiled:?}");
    assert!(spoiled.detail.contains("control characters"), "{spoiled:?}");
    assert!(letters.iter().all(|l| !l.detail.contains('\0')));
}

/// A store refusing case rows for their content (a check the rows fail), as a trigger
/// on the database at `url`: the rows of `events`, or every row where `events` is
/// empty. On PostgreSQL, the rows of `failing` fail with a refused permission instead,
/// a fault of the store and not of a row's content. Replaces the trigger set before.
async fn refuse_cases(url: &str, events: &[&ViolationEvent], failing: &[&ViolationEvent]) {
    let ids = |events: &[&ViolationEvent]| {
        let ids: Vec<String> = events.iter().map(|e| format!("'{}'", e.event_id)).collect();
        ids.join(", ")
    };
    let refused = if events.is_empty() {
        "TRUE".to_owned()
    } else {
        format!("NEW.event_id IN ({})", ids(events))
    };
    if url.starts_with("sqlite:") {
        assert!(
            failing.is_empty(),
            "SQLite's triggers refuse as constraints only"
        );
        let raw = sqlx::SqlitePool::connect(url).await.expect("connect");
        let sql = format!(
            "DROP TRIGGER IF EXISTS refuse_some; \
             CREATE TRIGGER refuse_some BEFORE INSERT ON cases WHEN {refused} \
             BEGIN SELECT RAISE(ABORT, 'the row fails a check'); END"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&raw)
            .await
            .expect("trigger");
    } else {
        let failed = if failing.is_empty() {
            "FALSE".to_owned()
        } else {
            format!("NEW.event_id IN ({})", ids(failing))
        };
        let raw = sqlx::PgPool::connect(url).await.expect("connect");
        let sql = format!(
            "CREATE OR REPLACE FUNCTION refuse_some() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
             IF {refused} THEN RAISE EXCEPTION 'the row fails a check' \
             USING ERRCODE = 'check_violation'; END IF; \
             IF {failed} THEN RAISE EXCEPTION 'permission denied' \
             USING ERRCODE = 'insufficient_privilege'; END IF; \
             RETURN NEW; END $$; \
             DROP TRIGGER IF EXISTS refuse_some ON cases; \
             CREATE TRIGGER refuse_some BEFORE INSERT ON cases FOR EACH ROW \
             EXECUTE FUNCTION refuse_some();"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&raw)
            .await
            .expect("trigger");
    }
}

/// An event of `camera` whose overview frame alone is larger than what a dead letter
/// keeps of a sender's mistake, and its envelope.
fn large_event(camera: &CameraId, key: &SigningKey, at_ms: i64) -> (ViolationEvent, Vec<u8>) {
    let seed = at_ms as u64;
    let frames = vec![noise_jpeg(1280, 960, seed), noise_jpeg(32, 16, seed + 1)];
    let event = speeding_event(camera, at_ms, &frames);
    let envelope = encode_signed(&event, &frames, key, None).expect("encode");
    assert!(envelope.len() > kozomol_store::DEAD_LETTER_RAW_LIMIT);
    (event, envelope)
}

fn frame_hashes(event: &ViolationEvent) -> Vec<[u8; 32]> {
    let mut hashes: Vec<[u8; 32]> = event
        .frames
        .iter()
        .map(|f| <[u8; 32]>::try_from(f.sha256.as_slice()).expect("hash"))
        .collect();
    hashes.sort();
    hashes
}

async fn queued_for_overwriting(store: &dyn Store) -> Vec<[u8; 32]> {
    let mut queued: Vec<[u8; 32]> = store
        .erasures_due(10)
        .await
        .expect("due")
        .into_iter()
        .map(|e| e.sha256)
        .collect();
    queued.sort();
    queued
}

/// 08:00 on a day the kit's calibration covers, in ms.
fn morning() -> i64 {
    chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
        .expect("time")
        .timestamp_millis()
}

#[tokio::test]
async fn an_event_the_store_refuses_never_holds_up_its_batch_on_sqlite() {
    on_sqlite(an_event_the_store_refuses_never_holds_up_its_batch).await;
}

#[tokio::test]
async fn an_event_the_store_refuses_never_holds_up_its_batch_on_postgres() {
    on_postgres(
        "ingest_unstorable",
        an_event_the_store_refuses_never_holds_up_its_batch,
    )
    .await;
}

/// A verified event whose case row the store refuses for what it holds fails the same
/// way for ever: in a batch with others, the others are stored and it is dead-lettered
/// as `unstorable`, whole (to be sent again once the store takes it), its frames queued
/// for overwriting; alone in its batch, it is given up once refused on three attempts
/// over the writer's span, not before.
async fn an_event_the_store_refuses_never_holds_up_its_batch(url: &str, dir: &Path) {
    let (store, evidence) = opened(url, dir).await;
    let (camera, key) = registered(store.as_ref(), "cam-poison").await;
    let at = morning();
    let (poison, poison_bytes) = large_event(&camera, &key, at);
    let (lone, lone_bytes) = large_event(&camera, &key, at + 3);
    refuse_cases(url, &[&poison, &lone], &[]).await;
    let topic = "kozomol/v1/cameras/cam-poison/violations".to_owned();
    let batch = vec![
        Arrival::now(topic.clone(), signed(&camera, &key, at + 1, 1)),
        Arrival::now(topic.clone(), poison_bytes.clone()),
        Arrival::now(topic.clone(), signed(&camera, &key, at + 2, 3)),
    ];
    let metrics = Arc::new(IngestMetrics::default());
    let span = std::time::Duration::from_secs(2);
    let writer = writer_on(&store, evidence, Arc::clone(&metrics)).giving_up_refusals_after(span);
    let outcomes = writer.write(&batch).await.expect("the batch commits");
    for at in [0, 2] {
        let BatchOutcome::Accepted { case_id, .. } = &outcomes[at] else {
            panic!("{outcomes:?}");
        };
        let case = store.case(*case_id).await.expect("read").expect("stored");
        assert_eq!(case.frames.len(), 2);
    }
    let BatchOutcome::Rejected {
        reason, event_id, ..
    } = &outcomes[1]
    else {
        panic!("{outcomes:?}");
    };
    assert_eq!(*reason, DeadLetterReason::Unstorable);
    assert_eq!(
        event_id.as_deref(),
        Some(poison.event_id.to_string().as_str())
    );
    assert_eq!(metrics.dead_letter_count(DeadLetterReason::Unstorable), 1);
    let letters = store.dead_letters(10, None).await.expect("dead letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].reason, DeadLetterReason::Unstorable);
    assert!(
        letters[0].detail.contains("the row fails a check"),
        "{letters:?}"
    );
    let (_, kept) = store
        .dead_letter_raw(letters[0].id)
        .await
        .expect("read")
        .expect("letter");
    assert_eq!(kept, poison_bytes, "kept whole");
    assert_eq!(
        queued_for_overwriting(store.as_ref()).await,
        frame_hashes(&poison),
        "the refused event's frames only"
    );

    // Alone in its batch: refused attempt after attempt until the span has passed.
    let alone = vec![Arrival::now(topic, lone_bytes)];
    let started = std::time::Instant::now();
    for attempt in 1..=3 {
        let failed = writer.write(&alone).await;
        assert!(failed.is_err(), "attempt {attempt}: {failed:?}");
    }
    assert!(
        started.elapsed() < span,
        "three attempts take less than the span"
    );
    tokio::time::sleep(span).await;
    let outcomes = writer.write(&alone).await.expect("given up after the span");
    assert!(
        matches!(
            &outcomes[..],
            [BatchOutcome::Rejected {
                reason: DeadLetterReason::Unstorable,
                ..
            }]
        ),
        "{outcomes:?}"
    );
    let letters = store.dead_letters(10, None).await.expect("letters");
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[1].event_id, Some(lone.event_id.to_string()));
}

#[tokio::test]
async fn a_batch_the_store_refuses_whole_waits_before_it_is_set_aside_on_sqlite() {
    on_sqlite(a_batch_the_store_refuses_whole_waits_before_it_is_set_aside).await;
}

#[tokio::test]
async fn a_batch_the_store_refuses_whole_waits_before_it_is_set_aside_on_postgres() {
    on_postgres(
        "ingest_refusing_all",
        a_batch_the_store_refuses_whole_waits_before_it_is_set_aside,
    )
    .await;
}

/// A store refusing every case row for its content (a migration the running code does
/// not know, a wrong constraint) may be at fault, not the events: a batch it takes
/// nothing of waits, and is stored once the store is mended within the span; only
/// after three attempts over the span is it set aside, whole.
async fn a_batch_the_store_refuses_whole_waits_before_it_is_set_aside(url: &str, dir: &Path) {
    let (store, evidence) = opened(url, dir).await;
    let (camera, key) = registered(store.as_ref(), "cam-refused").await;
    refuse_cases(url, &[], &[]).await;
    let topic = "kozomol/v1/cameras/cam-refused/violations".to_owned();
    let batch = |seed: u64| {
        vec![
            Arrival::now(
                topic.clone(),
                signed(&camera, &key, morning() + seed as i64, seed),
            ),
            Arrival::now(
                topic.clone(),
                signed(&camera, &key, morning() + seed as i64 + 1, seed + 1),
            ),
        ]
    };
    let metrics = Arc::new(IngestMetrics::default());
    let span = std::time::Duration::from_secs(60);
    let waiting = writer_on(&store, Arc::clone(&evidence), Arc::clone(&metrics))
        .giving_up_refusals_after(span);
    let first = batch(1);
    for attempt in 1..=5 {
        let failed = waiting.write(&first).await;
        assert!(failed.is_err(), "attempt {attempt}: {failed:?}");
    }
    assert!(store
        .dead_letters(10, None)
        .await
        .expect("letters")
        .is_empty());
    drop_refusals(url).await;
    let outcomes = waiting.write(&first).await.expect("the store takes it");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, BatchOutcome::Accepted { .. })),
        "{outcomes:?}"
    );

    // Refused on: after the third attempt over the span (here none), set aside whole.
    refuse_cases(url, &[], &[]).await;
    let setting_aside =
        writer_on(&store, evidence, metrics).giving_up_refusals_after(std::time::Duration::ZERO);
    let second = batch(5);
    for attempt in 1..=2 {
        let failed = setting_aside.write(&second).await;
        assert!(failed.is_err(), "attempt {attempt}: {failed:?}");
    }
    let outcomes = setting_aside.write(&second).await.expect("set aside");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            BatchOutcome::Rejected {
                reason: DeadLetterReason::Unstorable,
                ..
            }
        )),
        "{outcomes:?}"
    );
    let letters = store.dead_letters(10, None).await.expect("letters");
    assert_eq!(letters.len(), 2);
    assert!(letters
        .iter()
        .all(|l| l.raw_kept as usize == l.raw_len as usize));
}

/// Drops the trigger [`refuse_cases`] set.
async fn drop_refusals(url: &str) {
    if url.starts_with("sqlite:") {
        let raw = sqlx::SqlitePool::connect(url).await.expect("connect");
        let sql = "DROP TRIGGER refuse_some";
        sqlx::raw_sql(sql).execute(&raw).await.expect("drop");
    } else {
        let raw = sqlx::PgPool::connect(url).await.expect("connect");
        let sql = "DROP TRIGGER refuse_some ON cases";
        sqlx::raw_sql(sql).execute(&raw).await.expect("drop");
    }
}

/// A store failing every case row alike for another cause than a row's content (here
/// a table it lacks, as a broken schema would) is not split at all: even a batch of
/// one waits.
#[tokio::test]
async fn a_store_failing_every_case_keeps_even_a_batch_of_one_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let (store, evidence) = opened(&url, dir.path()).await;
    let (camera, key) = registered(store.as_ref(), "cam-broken").await;
    let raw = sqlx::SqlitePool::connect(&url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE TRIGGER refuse_all BEFORE INSERT ON cases \
         BEGIN SELECT 1 FROM a_table_the_store_lacks; END",
    )
    .execute(&raw)
    .await
    .expect("trigger");
    let topic = "kozomol/v1/cameras/cam-broken/violations".to_owned();
    let alone = vec![Arrival::now(topic, signed(&camera, &key, morning(), 1))];
    let writer = writer_on(&store, evidence, Arc::new(IngestMetrics::default()))
        .giving_up_refusals_after(std::time::Duration::ZERO);
    for attempt in 1..=5 {
        let failed = writer.write(&alone).await;
        assert!(failed.is_err(), "attempt {attempt}: {failed:?}");
    }
    assert!(store
        .dead_letters(10, None)
        .await
        .expect("letters")
        .is_empty());
}

/// A batch split after a refusal that stores one case and then meets a fault of the
/// store (not of a row) fails as a whole; its retry answers the case stored meanwhile
/// as accepted, once, appends none of the frames again, and queues for overwriting the
/// refused event's frames only.
#[tokio::test]
async fn a_split_cut_short_answers_what_it_stored_on_the_retry() {
    on_postgres("ingest_split_cut", split_cut_short_answers_what_it_stored).await;
}

async fn split_cut_short_answers_what_it_stored(url: &str, dir: &Path) {
    let (store, evidence) = opened(url, dir).await;
    let (camera, key) = registered(store.as_ref(), "cam-split").await;
    let at = morning();
    let (good, good_bytes) = large_event(&camera, &key, at);
    let (poison, poison_bytes) = large_event(&camera, &key, at + 3);
    let (failing, failing_bytes) = large_event(&camera, &key, at + 6);
    refuse_cases(url, &[&poison], &[&failing]).await;
    let topic = "kozomol/v1/cameras/cam-split/violations".to_owned();
    let batch: Vec<Arrival> = [good_bytes, poison_bytes, failing_bytes]
        .into_iter()
        .map(|bytes| Arrival::now(topic.clone(), bytes))
        .collect();
    let metrics = Arc::new(IngestMetrics::default());
    let writer = writer_on(&store, evidence, Arc::clone(&metrics));
    let failed = writer.write(&batch).await;
    assert!(failed.is_err(), "{failed:?}");
    let appended = evidence_bytes(dir);
    assert!(queued_for_overwriting(store.as_ref()).await.is_empty());

    refuse_cases(url, &[&poison], &[]).await;
    let outcomes = writer.write(&batch).await.expect("the retry commits");
    let BatchOutcome::Accepted {
        case_id, event_id, ..
    } = &outcomes[0]
    else {
        panic!("the case stored by the cut split: {outcomes:?}");
    };
    assert_eq!(event_id, &good.event_id.to_string());
    assert!(
        matches!(
            &outcomes[1],
            BatchOutcome::Rejected {
                reason: DeadLetterReason::Unstorable,
                ..
            }
        ),
        "{outcomes:?}"
    );
    let BatchOutcome::Accepted { event_id, .. } = &outcomes[2] else {
        panic!("{outcomes:?}");
    };
    assert_eq!(event_id, &failing.event_id.to_string());
    assert_eq!(metrics.accepted.load(Ordering::Relaxed), 2);
    assert_eq!(metrics.duplicates.load(Ordering::Relaxed), 0);
    assert_eq!(evidence_bytes(dir), appended, "nothing appended again");
    assert_eq!(
        queued_for_overwriting(store.as_ref()).await,
        frame_hashes(&poison)
    );
    let case = store.case(*case_id).await.expect("read").expect("stored");
    let mut named: Vec<[u8; 32]> = case.frames.iter().map(|f| f.sha256).collect();
    named.sort();
    assert_eq!(named, frame_hashes(&good));
}

/// A capture dated after its own arrival (a camera clock running ahead) is kept, not
/// enforceable, with the reason — judged against when it arrived, not when its batch
/// was verified at last; one dated a moment ago is not marked so.
#[tokio::test]
async fn a_capture_dated_after_its_arrival_is_kept_but_not_enforceable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let (store, evidence) = opened(&url, dir.path()).await;
    let (camera, key) = registered(store.as_ref(), "cam-clock").await;
    let now = chrono::Utc::now().timestamp_millis();
    let topic = "kozomol/v1/cameras/cam-clock/violations".to_owned();
    // The third waited eleven minutes for the store: dated five minutes after it
    // arrived, its camera's clock runs ahead, though it is in the past when verified.
    let minute = 60_000;
    let batch: Vec<Arrival> = [
        (now - 1_000, 1, 0),
        (now + 60 * minute, 3, 0),
        (now - 6 * minute, 5, 11 * minute),
    ]
    .into_iter()
    .map(|(at, seed, waited_ms)| Arrival {
        received_at: chrono::Utc::now() - chrono::Duration::milliseconds(waited_ms),
        ..Arrival::now(topic.clone(), signed(&camera, &key, at, seed))
    })
    .collect();
    let writer = writer_on(&store, evidence, Arc::new(IngestMetrics::default()));
    let outcomes = writer.write(&batch).await.expect("the batch commits");
    let mut notes = Vec::new();
    for outcome in &outcomes {
        let BatchOutcome::Accepted { case_id, .. } = outcome else {
            panic!("{outcomes:?}");
        };
        let case = store.case(*case_id).await.expect("read").expect("case");
        notes.push((case.enforceable, case.enforceability_note));
    }
    let ahead = |note: &Option<String>| note.as_deref().is_some_and(|n| n.contains("runs ahead"));
    assert!(!ahead(&notes[0].1), "{notes:?}");
    assert!(!notes[1].0 && ahead(&notes[1].1), "{notes:?}");
    assert!(!notes[2].0 && ahead(&notes[2].1), "{notes:?}");
}

/// A camera registered anew (a new key) is heard at once: a refusal by the register
/// reads it again before anything is refused for good (the writer keeps records ten
/// seconds).
#[tokio::test]
async fn a_camera_registered_anew_is_checked_against_its_new_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let (store, evidence) = opened(&url, dir.path()).await;
    let (camera, old_key) = registered(store.as_ref(), "cam-rekey").await;
    let writer = writer_on(&store, evidence, Arc::new(IngestMetrics::default()));
    let topic = "kozomol/v1/cameras/cam-rekey/violations".to_owned();
    let captured = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").expect("time");
    let signed = |key: &SigningKey, seed: u64| {
        let at = captured.timestamp_millis() + seed as i64;
        Arrival::now(topic.clone(), signed(&camera, key, at, seed))
    };
    let first = writer.write(&[signed(&old_key, 1)]).await.expect("commit");
    assert!(
        matches!(first[0], BatchOutcome::Accepted { .. }),
        "{first:?}"
    );

    let new_key = SigningKey::from_bytes(&[9; 32]);
    register(store.as_ref(), &camera, &new_key).await;
    let outcomes = writer
        .write(&[signed(&new_key, 3), signed(&old_key, 5)])
        .await
        .expect("commit");
    assert!(
        matches!(outcomes[0], BatchOutcome::Accepted { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            &outcomes[1],
            BatchOutcome::Rejected { reason, .. } if *reason == DeadLetterReason::BadSignature
        ),
        "the old key is refused once the record is read again: {outcomes:?}"
    );
}

/// A Mosquitto of its own on a free port, stopped when dropped.
struct Broker {
    process: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\n"
            ),
        )
        .expect("config");
        let process = std::process::Command::new(kozomol_testkit::mosquitto_bin())
            .arg("-c")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "mosquitto listens");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Broker {
            process,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Waits (up to 20 s) until `done`.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Ingest stopped right after committing a batch still acknowledges it: started again
/// under the same client id, it is delivered nothing it had already stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_ingest_acknowledges_what_it_committed() {
    use std::time::Duration;
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let (store, evidence) = opened(&url, dir.path()).await;
    let (camera, key) = registered(store.as_ref(), "cam-stop").await;
    let config = kozomol_ingest::IngestConfig::new("127.0.0.1", broker.port, "ingest-stop");
    let start = |metrics: Arc<IngestMetrics>| {
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(kozomol_ingest::run(
            config.clone(),
            Arc::clone(&store),
            Arc::clone(&evidence),
            metrics,
            cancel.clone(),
        ));
        (cancel, task)
    };

    let first = Arc::new(IngestMetrics::default());
    let (cancel, task) = start(Arc::clone(&first));
    wait_for("ingest connects", || first.broker_connected() == Some(true)).await;
    let (camera_client, mut events) = rumqttc::AsyncClient::new(
        rumqttc::MqttOptions::new("cam-stop", "127.0.0.1", broker.port),
        100,
    );
    let poller = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let topic = format!("kozomol/v1/cameras/{camera}/violations");
    let captured = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").expect("time");
    let events = 20;
    for seed in 0..events {
        let at = captured.timestamp_millis() + i64::try_from(seed).expect("seed");
        camera_client
            .publish(
                topic.clone(),
                rumqttc::QoS::AtLeastOnce,
                false,
                signed(&camera, &key, at, seed),
            )
            .await
            .expect("publish");
    }
    // Stopped the moment the last case is stored, its acks still to be written.
    wait_for("every event stored", || {
        first.accepted.load(Ordering::Relaxed) == events
    })
    .await;
    cancel.cancel();
    task.await.expect("joins").expect("stops cleanly");

    let second = Arc::new(IngestMetrics::default());
    let (cancel, task) = start(Arc::clone(&second));
    wait_for("ingest connects again", || {
        second.broker_connected() == Some(true)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        second.messages.load(Ordering::Relaxed),
        0,
        "nothing delivered again"
    );
    cancel.cancel();
    task.await.expect("joins").expect("stops cleanly");
    poller.abort();
}

/// A flood of refused messages on one topic (a camera's login taken from the roadside
/// and used to publish rubbish) is kept in part: the topic's allowance of each window
/// whole, the rest counted by reason in one `flood` letter once the window has ended;
/// every message still answered and counted. A write that fails to store its letters
/// uses none of the allowance, so its retry keeps what the first attempt would have.
#[tokio::test]
async fn a_flood_of_refused_messages_is_kept_in_part_and_counted() {
    let f = Fixture::new().await;
    let window = std::time::Duration::from_millis(500);
    // A second writer on the fixture's store, with an evidence writer of its own.
    let evidence =
        Arc::new(EvidenceStore::open(&f.dir.path().join("evidence"), "t2").expect("evidence"));
    let writer =
        writer_on(&f.store, evidence, Arc::clone(&f.metrics)).keeping_dead_letters(4, 2, window);
    let flooded = "kozomol/v1/cameras/cam-batch/violations";
    let other = "kozomol/v1/cameras/cam-other/violations";
    let rubbish = |topic: &str, n: usize| -> Vec<Arrival> {
        (0..n)
            .map(|i| Arrival::now(topic, format!("rubbish {i}").into_bytes()))
            .collect()
    };
    let batch: Vec<Arrival> = [rubbish(flooded, 10), rubbish(other, 2)].concat();

    f.refuse("dead_letters").await;
    assert!(writer.write(&batch).await.is_err());
    f.take_again("dead_letters").await;
    let outcomes = writer.write(&batch).await.expect("the retry commits");
    assert_eq!(outcomes.len(), 12);
    assert!(outcomes.iter().all(|o| matches!(
        o,
        BatchOutcome::Rejected {
            reason: DeadLetterReason::Malformed,
            ..
        }
    )));
    assert_eq!(f.metrics.dead_letter_count(DeadLetterReason::Malformed), 12);
    let letters = f.store.dead_letters(100, None).await.expect("letters");
    let on = |topic: &str| letters.iter().filter(|l| l.topic == topic).count();
    assert_eq!((on(flooded), on(other)), (4, 2), "{letters:?}");

    tokio::time::sleep(window).await;
    writer.write(&[]).await.expect("a batch after the window");
    let letters = f.store.dead_letters(100, None).await.expect("letters");
    let floods: Vec<_> = letters
        .iter()
        .filter(|l| l.reason == DeadLetterReason::Flood)
        .collect();
    assert_eq!(floods.len(), 1, "{letters:?}");
    assert_eq!(floods[0].topic, flooded);
    assert!(
        floods[0].detail.contains("6 more messages") && floods[0].detail.contains("malformed ×6"),
        "{}",
        floods[0].detail
    );
    assert_eq!(floods[0].raw_kept, 0);
    // The next window keeps its allowance anew.
    writer.write(&rubbish(flooded, 1)).await.expect("commits");
    let letters = f.store.dead_letters(100, None).await.expect("letters");
    assert_eq!(letters.len(), 8);

    // Stopping before the window ends: what it counted is recorded all the same.
    writer.write(&rubbish(flooded, 5)).await.expect("commits");
    assert_eq!(
        f.store
            .dead_letters(100, None)
            .await
            .expect("letters")
            .len(),
        11
    );
    writer.record_floods_on_stop().await;
    let letters = f.store.dead_letters(100, None).await.expect("letters");
    let last = letters.last().expect("a letter");
    assert_eq!(letters.len(), 12);
    assert_eq!(last.reason, DeadLetterReason::Flood);
    assert!(last.detail.contains("2 more messages"), "{}", last.detail);
}
