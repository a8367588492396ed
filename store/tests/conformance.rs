//! One behavioural suite for every store backend: each behaviour is written once as
//! an `async fn` and run against SQLite (a temporary folder) and PostgreSQL (a fresh
//! database per test on the server at `KOZOMOL_TEST_POSTGRES_URL`, by default
//! postgres://postgres@127.0.0.1:5432/test).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, DeadLetterReason, EventId, FrameRole,
    PlateRead, Role, Site, ViolationKind,
};
use kozomol_core::{ContactAddress, DeliveryChannel, DeliveryState};
use kozomol_core::{RejectReason, ReviewDecision, ReviewTier};
use kozomol_store::audit::{
    chain_start, row_hash, AuditRow, CASE_RECEIVED, CASE_REVIEWED, RECOGNITION_COMPLETED,
    RECOGNITION_FAILED, RESOLUTION_DELIVERED,
};
use kozomol_store::NewReview;
use kozomol_store::{
    connect, AuditEntry, Backend, CameraPlateRead, CameraRegistration, CameraStatusUpdate,
    CaseQuery, CaseWrite, CompleteResult, EvidenceRef, FailResult, FrameLocation, NewAccount,
    NewCase, NewDeadLetter, NewFrame, PlateBox, RecognitionDecision, RecognitionJob,
    RecognitionOutcome, ReviewWrite, Store, StoreError, DEAD_LETTER_RAW_LIMIT,
};
use kozomol_store::{
    AttemptKind, AttemptOutcome, AttemptResult, CodeRequest, ContactAdded, ContactConfirmed,
    DeliveryId, DeliveryRecord, DeliveryRecorded, DeliveryTarget, NewContact,
    NewContactConfirmation, NewPrintBatch, PrintBatchId, PrintBatchWrite, ProvenDelivery,
};
use kozomol_store::{OfficerIdentity, ACCOUNT_CREATED, OFFICER_REGISTERED};
use sha2::{Digest, Sha256};
use uuid::Uuid;

// ---- harness -----------------------------------------------------------------------

struct SqliteDb {
    _dir: tempfile::TempDir,
    url: String,
}

impl SqliteDb {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("kozomol.db").display());
        SqliteDb { _dir: dir, url }
    }
}

/// A database of its own on the shared PostgreSQL server, dropped when the test ends
/// (also when it fails).
struct PgDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDb {
    async fn new() -> Self {
        let admin_url = std::env::var("KOZOMOL_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("kozomol_t_{}", Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("PostgreSQL for tests (set KOZOMOL_TEST_POSTGRES_URL)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let url = match base.rfind('/') {
            Some(slash) if slash > "postgres://".len() => format!("{}/{name}", &base[..slash]),
            _ => format!("{base}/{name}"),
        };
        PgDb {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async code; a small runtime of its own does the work.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping the test database");
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(&admin_url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await?;
                admin.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop test database {}: {err}", self.name);
        }
    }
}

/// Runs each behaviour on both backends. The first list takes the store, the second
/// the database url (for behaviours about connecting).
macro_rules! conformance {
    (store: [$($store_test:ident),* $(,)?], url: [$($url_test:ident),* $(,)?]) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $store_test() {
                    let db = super::SqliteDb::new();
                    let store = kozomol_store::connect(&db.url).await.expect("sqlite store");
                    assert_eq!(store.backend(), kozomol_store::Backend::Sqlite);
                    super::$store_test(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $url_test() {
                    let db = super::SqliteDb::new();
                    super::$url_test(db.url.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $store_test() {
                    let db = super::PgDb::new().await;
                    let store = kozomol_store::connect(&db.url).await.expect("postgres store");
                    assert_eq!(store.backend(), kozomol_store::Backend::Postgres);
                    super::$store_test(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $url_test() {
                    let db = super::PgDb::new().await;
                    super::$url_test(db.url.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    store: [
        cameras_are_registered_listed_and_updated,
        camera_status_keeps_the_newest,
        new_cases_are_created_with_their_frames,
        repeats_are_duplicates_or_conflicts_and_change_nothing,
        repeats_inside_one_batch_behave_like_repeats_across_batches,
        case_ids_are_numeric_and_increase,
        a_case_keeps_the_trace_it_was_recorded_in,
        cases_are_counted_per_hour_site_and_kind,
        the_work_summary_counts_decisions_by_tier_and_money,
        the_backlog_counts_waiting_cases_per_state,
        every_case_filter_narrows_and_the_cursor_pages,
        each_created_case_gets_one_chained_audit_row,
        recording_cases_updates_last_seen,
        a_case_from_an_unregistered_camera_is_refused,
        known_frames_keep_their_first_location,
        dead_letters_keep_bounded_raw_bytes,
        accounts_and_tokens,
        budgets_of_attempts_are_shared_and_given_back,
        large_batches_are_written_in_one_call,
        concurrent_overlapping_batches_create_each_case_once,
        recognition_claims_the_oldest_free_cases_up_to_the_limit,
        an_expired_lease_is_claimed_again,
        a_lost_lease_can_neither_complete_nor_fail,
        completing_moves_the_case_and_audits_it,
        failures_retry_after_a_delay_then_go_to_review,
        recognitions_round_trip,
        reviews_move_the_case_and_are_audited,
        a_stale_review_writes_nothing,
        owner_lookups_move_approved_cases_once,
        resolution_numbers_are_reserved_once_and_issued,
        offenders_count_by_pin_or_inn_and_owners_state_once,
        deliveries_are_planned_with_the_resolution_and_claimed_once,
        portal_contacts_wait_for_their_code_and_serve_one_vehicle,
        subscriptions_queue_a_notice_of_each_new_resolution,
        failed_attempts_retry_after_a_delay_then_give_up,
        proofs_start_the_clocks_once_and_are_idempotent,
        print_batches_send_the_claimed_letters,
        exemptions_are_listed_in_order_and_removal_keeps_the_row,
        the_hot_list_holds_one_entry_per_plate,
        alerts_are_raised_once_per_case_and_acknowledged_once,
        plate_sightings_read_the_decided_plate_and_the_events_site,
        passing_the_checks_marks_the_case_under_its_lease,
        checks_of_one_plate_pass_one_at_a_time,
        officer_violations_enter_the_fine_flow_once,
        payments_are_applied_once_and_move_the_case,
        the_discount_follows_the_payers_days,
        a_quote_says_what_a_payment_would_take,
        a_payers_view_reads_the_fine_at_once,
        a_reversed_payment_no_longer_counts,
        money_to_give_back_is_queued_and_settled_once,
        an_excess_paid_back_before_its_reversal_withdraws_the_excess_queued_after,
        an_excess_cancelled_on_a_reversed_payment_takes_nothing_from_a_refund,
        an_excess_paid_back_on_a_reversed_payment_still_counts_against_a_refund,
        an_appeal_forfeits_the_discount,
        exact_payments_take_only_what_is_outstanding,
        payments_no_fine_can_take_are_refused,
        callbacks_are_kept_with_their_answer,
        statement_credits_are_matched_applied_or_queued,
        equal_credits_are_each_matched_to_their_own_report,
        a_reversal_reaches_the_statement_money_it_was,
        credits_are_found_by_the_code_they_named,
        a_queued_credit_holds_the_fines_clocks,
        retention_purges_settled_quiet_cases_and_nothing_else,
        case_files_are_destroyed_after_the_purge_and_shared_evidence_stays,
        accident_files_are_destroyed_after_the_purge_and_shared_evidence_stays,
        second_copies_of_evidence_are_destroyed_with_the_first,
        a_conflicting_duplicates_own_photos_are_queued_for_overwriting,
        an_accident_file_waits_for_the_violations_filed_under_it,
    ],
    url: [
        the_audit_log_is_sealed_and_verify_names_the_first_break,
        migrations_are_idempotent,
        concurrent_first_connects_migrate_once,
        concurrent_claimers_never_share_a_case,
        concurrent_delivery_claimers_never_share_a_row,
        list_changes_are_audited_without_a_case,
        officers_register,
        accidents_move_by_compare_and_set_and_link_their_violations,
        one_payment_reported_ten_times_at_once_is_applied_once,
        an_intent_is_either_paid_once_or_cancelled,
        an_idempotency_key_is_claimed_once,
        a_bank_payment_over_soap_and_in_a_statement_counts_once,
        concurrent_purgers_never_purge_a_case_twice,
        bytes_no_row_keeps_are_queued_for_overwriting_and_kept_bytes_are_not,
    ]
);

// ---- fixtures ----------------------------------------------------------------------

fn cam(id: &str) -> CameraId {
    CameraId::parse(id).expect("test camera id")
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn registration(id: &str, serial: &str, certificate: &str) -> CameraRegistration {
    CameraRegistration {
        camera_id: cam(id),
        public_key: Sha256::digest(id.as_bytes()).into(),
        device_serial: serial.to_owned(),
        certificate: CalibrationCertificate {
            number: certificate.to_owned(),
            valid_from: date("2026-01-10"),
            valid_until: date("2027-01-09"),
        },
        site: site_of(id),
    }
}

/// Where camera `id` stands, as its registration and its events say.
fn site_of(id: &str) -> Site {
    Site {
        id: format!("site-{id}"),
        lat_e6: 42_874_621,
        lon_e6: 74_569_762,
        address: "Бишкек, пр. Чуй / ул. Советская".to_owned(),
        direction: "eastbound".to_owned(),
        lane: 2,
    }
}

async fn register(store: &dyn Store, ids: &[&str]) {
    for id in ids {
        store
            .register_camera(&registration(id, &format!("dev-{id}"), "KG-1"))
            .await
            .expect("register camera");
    }
}

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0)
        .single()
        .expect("valid instant")
        + Duration::minutes(minutes)
}

fn sha(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn location(segment_offset: u64) -> FrameLocation {
    FrameLocation {
        segment: "seg-test-0000000001.kzs".to_owned(),
        offset: segment_offset,
        len: 1000,
    }
}

fn new_case(camera: &str, plate: Option<&str>, captured_at: DateTime<Utc>) -> NewCase {
    let event_id = EventId::new_v7();
    NewCase {
        event_id,
        camera_id: cam(camera),
        captured_at,
        kind: ViolationKind::Speeding,
        fingerprint: sha(&format!("payload {event_id}")),
        event: serde_json::json!({
            "event_id": event_id.to_string(),
            "camera_id": camera,
            "site": site_of(camera),
            "device": {"serial": format!("dev-{camera}")},
            "measurement": {"speed_kmh": 97, "limit_kmh": 60},
        }),
        camera_plate: plate.map(str::to_owned),
        enforceable: true,
        enforceability_note: None,
        trace_parent: None,
        frames: vec![
            NewFrame {
                role: FrameRole::Overview,
                sha256: sha(&format!("overview {event_id}")),
                location: location(40),
            },
            NewFrame {
                role: FrameRole::Plate,
                sha256: sha(&format!("plate {event_id}")),
                location: location(1080),
            },
        ],
    }
}

/// The same event with other signed bytes.
fn altered(case: &NewCase) -> NewCase {
    let mut other = case.clone();
    other.fingerprint = sha(&format!("altered {}", case.event_id));
    other.camera_plate = Some("01KG999ZZZ".to_owned());
    other
}

/// Records `batch` as `actor`, every event of it a new case.
async fn created_cases(store: &dyn Store, batch: &[NewCase], actor: &str) -> Vec<CaseId> {
    store
        .record_cases(batch, actor)
        .await
        .unwrap()
        .into_iter()
        .map(created)
        .collect()
}

/// The erasures due now (at most 100), by hash.
async fn erasures_queued(store: &dyn Store) -> Vec<([u8; 32], FrameLocation)> {
    let mut due: Vec<([u8; 32], FrameLocation)> = store
        .erasures_due(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.sha256, e.location))
        .collect();
    due.sort_by_key(|(sha, _)| *sha);
    due
}

fn created(write: CaseWrite) -> CaseId {
    match write {
        CaseWrite::Created(id) => id,
        other => panic!("expected a created case, got {other:?}"),
    }
}

fn all() -> CaseQuery {
    CaseQuery {
        limit: 1000,
        ..CaseQuery::default()
    }
}

// ---- behaviours --------------------------------------------------------------------

async fn cameras_are_registered_listed_and_updated(store: Arc<dyn Store>) {
    assert!(store.cameras().await.unwrap().is_empty());
    assert_eq!(store.camera(&cam("cam-b")).await.unwrap(), None);

    let b = registration("cam-b", "dev-1", "KG-2026-0001");
    let a = registration("cam-a", "dev-2", "KG-2026-0002");
    store.register_camera(&b).await.unwrap();
    store.register_camera(&a).await.unwrap();

    let listed = store.cameras().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.camera_id.as_str()).collect();
    assert_eq!(ids, ["cam-a", "cam-b"]);
    let got = store
        .camera(&cam("cam-b"))
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(got.public_key, b.public_key);
    assert_eq!(got.device_serial, "dev-1");
    assert_eq!(got.site, b.site);
    assert_eq!(got.certificates, vec![b.certificate.clone()]);
    assert_eq!(got.last_seen, None);
    assert!(!got.online);
    assert!((Utc::now() - got.registered_at).num_seconds().abs() < 60);

    // Re-registering with a renewed certificate and a moved site: the certificate is
    // added to the device's list, the site replaced, the registration time kept.
    let mut renewed = b.clone();
    renewed.certificate = CalibrationCertificate {
        number: "KG-2027-0007".to_owned(),
        valid_from: date("2027-01-10"),
        valid_until: date("2028-01-09"),
    };
    renewed.site.lane = 3;
    renewed.public_key = sha("new key");
    store.register_camera(&renewed).await.unwrap();
    let got2 = store
        .camera(&cam("cam-b"))
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(
        got2.certificates,
        vec![b.certificate.clone(), renewed.certificate.clone()]
    );
    assert_eq!(got2.site.lane, 3);
    assert_eq!(got2.public_key, sha("new key"));
    assert_eq!(got2.registered_at, got.registered_at);

    // Registering the same certificate again does not duplicate it.
    store.register_camera(&renewed).await.unwrap();
    let listed = store.cameras().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].certificates.len(), 2);
    assert_eq!(listed[0].certificates, vec![a.certificate]);
}

async fn camera_status_keeps_the_newest(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let status = |online, depth, minutes| CameraStatusUpdate {
        online,
        outbox_depth: Some(depth),
        clock_offset_ms: Some(-12),
        at: Some(t(minutes)),
        received_at: t(minutes),
    };
    store
        .record_camera_status(&cam("cam-1"), &status(true, 5, 10))
        .await
        .unwrap();
    let got = store.camera(&cam("cam-1")).await.unwrap().unwrap();
    assert!(got.online);
    assert_eq!(got.outbox_depth, Some(5));
    assert_eq!(got.clock_offset_ms, Some(-12));
    assert_eq!(got.status_at, Some(t(10)));

    // An older retained status arriving late changes nothing.
    store
        .record_camera_status(&cam("cam-1"), &status(false, 99, 5))
        .await
        .unwrap();
    let got = store.camera(&cam("cam-1")).await.unwrap().unwrap();
    assert!(got.online);
    assert_eq!(got.outbox_depth, Some(5));

    store
        .record_camera_status(&cam("cam-1"), &status(false, 0, 11))
        .await
        .unwrap();
    let got = store.camera(&cam("cam-1")).await.unwrap().unwrap();
    assert!(!got.online);
    assert_eq!(got.outbox_depth, Some(0));

    // Back online by a clock 30 minutes ahead; then it drops off, and the broker's last
    // will (no time of its own) arrives at minute 20: it applies, and is dated just
    // after the camera's last status, so that status, handled again, does not undo it.
    store
        .record_camera_status(&cam("cam-1"), &status(true, 2, 45))
        .await
        .unwrap();
    let will = CameraStatusUpdate {
        online: false,
        outbox_depth: None,
        clock_offset_ms: None,
        at: None,
        received_at: t(20),
    };
    store
        .record_camera_status(&cam("cam-1"), &will)
        .await
        .unwrap();
    let got = store.camera(&cam("cam-1")).await.unwrap().unwrap();
    assert!(!got.online, "the last will applies");
    assert_eq!(got.status_at, Some(t(45) + Duration::milliseconds(1)));
    store
        .record_camera_status(&cam("cam-1"), &status(true, 2, 45))
        .await
        .unwrap();
    assert!(!store.camera(&cam("cam-1")).await.unwrap().unwrap().online);
    // The retained will delivered again when ingest reconnects changes nothing: the
    // camera is offline since it first came.
    let again = CameraStatusUpdate {
        received_at: t(50),
        ..will.clone()
    };
    store
        .record_camera_status(&cam("cam-1"), &again)
        .await
        .unwrap();
    let got = store.camera(&cam("cam-1")).await.unwrap().unwrap();
    assert_eq!(got.status_at, Some(t(45) + Duration::milliseconds(1)));
    // Back by a status with no time, then a will after it: dated on arrival.
    let back = CameraStatusUpdate {
        online: true,
        received_at: t(48),
        ..will.clone()
    };
    store
        .record_camera_status(&cam("cam-1"), &back)
        .await
        .unwrap();
    let later = CameraStatusUpdate {
        received_at: t(50),
        ..will
    };
    store
        .record_camera_status(&cam("cam-1"), &later)
        .await
        .unwrap();
    let got = store.camera(&cam("cam-1")).await.unwrap().unwrap();
    assert_eq!(got.status_at, Some(t(50)));
    // The camera back, by its clock: a status newer than the will's date applies.
    store
        .record_camera_status(&cam("cam-1"), &status(true, 0, 51))
        .await
        .unwrap();
    assert!(store.camera(&cam("cam-1")).await.unwrap().unwrap().online);

    // A status for a camera nobody registered is ignored.
    store
        .record_camera_status(&cam("ghost"), &status(true, 1, 12))
        .await
        .unwrap();
    assert_eq!(store.camera(&cam("ghost")).await.unwrap(), None);
}

async fn new_cases_are_created_with_their_frames(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let mut lapsed = new_case("cam-1", None, t(2));
    lapsed.enforceable = false;
    lapsed.enforceability_note = Some("certificate KG-1 expired 2026-01-09".to_owned());
    lapsed.kind = ViolationKind::RedLight;
    let batch = vec![new_case("cam-1", Some("01KG123ABC"), t(1)), lapsed];
    let before = Utc::now() - Duration::seconds(5);
    let ids = created_cases(store.as_ref(), &batch, "ingest-test").await;

    for (input, id) in batch.iter().zip(&ids) {
        let case = store.case(*id).await.unwrap().expect("created case");
        assert_eq!(case.id, *id);
        assert_eq!(case.event_id, input.event_id);
        assert_eq!(case.camera_id.as_ref(), Some(&input.camera_id));
        assert_eq!(case.captured_at, input.captured_at);
        assert!(case.received_at >= before && case.received_at <= Utc::now());
        assert_eq!(case.kind, input.kind);
        assert_eq!(case.state, CaseState::Received);
        assert_eq!(case.plate, input.camera_plate);
        assert_eq!(case.enforceable, input.enforceable);
        assert_eq!(case.enforceability_note, input.enforceability_note);
        assert_eq!(case.fingerprint, input.fingerprint);
        assert_eq!(case.event, input.event);
        assert_eq!(case.frames.len(), 2);
        for (n, (frame, sent)) in case.frames.iter().zip(&input.frames).enumerate() {
            assert_eq!(frame.index as usize, n);
            assert_eq!(frame.role, sent.role);
            assert_eq!(frame.sha256, sent.sha256);
            assert_eq!(frame.location, sent.location);
        }
    }
    assert_eq!(store.case(CaseId(ids[1].0 + 1000)).await.unwrap(), None);
    assert!(store
        .record_cases(&[], "ingest-test")
        .await
        .unwrap()
        .is_empty());
}

async fn repeats_are_duplicates_or_conflicts_and_change_nothing(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let batch: Vec<NewCase> = (0..3)
        .map(|i| new_case("cam-1", Some("01KG123ABC"), t(i)))
        .collect();
    let ids = created_cases(store.as_ref(), &batch, "ingest").await;
    let before = store.case(ids[1]).await.unwrap();

    let again = store.record_cases(&batch, "ingest").await.unwrap();
    assert_eq!(
        again,
        ids.iter()
            .map(|id| CaseWrite::Duplicate(*id))
            .collect::<Vec<_>>()
    );

    // One repeat with other bytes, one new case, one plain repeat.
    let fresh = new_case("cam-1", None, t(9));
    let mixed = vec![altered(&batch[1]), fresh.clone(), batch[2].clone()];
    let writes = store.record_cases(&mixed, "ingest").await.unwrap();
    assert_eq!(writes[0], CaseWrite::Conflict(ids[1]));
    let fresh_id = created(writes[1]);
    assert_eq!(writes[2], CaseWrite::Duplicate(ids[2]));

    assert_eq!(
        store.case(ids[1]).await.unwrap(),
        before,
        "conflict left it alone"
    );
    assert_eq!(store.count_cases(&all()).await.unwrap(), 4);
    assert_eq!(store.case_audit(ids[1]).await.unwrap().len(), 1);
    assert_eq!(store.case_audit(fresh_id).await.unwrap().len(), 1);

    // The same event id from another camera is another case.
    register(&*store, &["cam-2"]).await;
    let mut elsewhere = batch[0].clone();
    elsewhere.camera_id = cam("cam-2");
    created(store.record_cases(&[elsewhere], "ingest").await.unwrap()[0]);
}

async fn repeats_inside_one_batch_behave_like_repeats_across_batches(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let a = new_case("cam-1", Some("01KG001AAA"), t(1));
    let b = new_case("cam-1", Some("01KG002BBB"), t(2));
    let batch = vec![a.clone(), a.clone(), altered(&a), b.clone(), b.clone()];
    let writes = store.record_cases(&batch, "ingest").await.unwrap();
    let a_id = created(writes[0]);
    let b_id = created(writes[3]);
    assert_eq!(
        writes,
        vec![
            CaseWrite::Created(a_id),
            CaseWrite::Duplicate(a_id),
            CaseWrite::Conflict(a_id),
            CaseWrite::Created(b_id),
            CaseWrite::Duplicate(b_id),
        ]
    );
    // The conflicting twin's frames are its original's, stored once for both.
    assert!(erasures_queued(store.as_ref()).await.is_empty());
    assert_eq!(store.count_cases(&all()).await.unwrap(), 2);
    let stored = store.case(a_id).await.unwrap().unwrap();
    assert_eq!(
        stored.fingerprint, a.fingerprint,
        "the first occurrence wins"
    );
    assert_eq!(stored.plate.as_deref(), Some("01KG001AAA"));
    assert_eq!(store.case_audit(a_id).await.unwrap().len(), 1);
    assert_eq!(store.case_audit(b_id).await.unwrap().len(), 1);

    // A batch whose first row repeats an old case and whose later row alters it.
    let writes = store
        .record_cases(&[b.clone(), altered(&b)], "ingest")
        .await
        .unwrap();
    assert_eq!(
        writes,
        vec![CaseWrite::Duplicate(b_id), CaseWrite::Conflict(b_id)]
    );
}

async fn case_ids_are_numeric_and_increase(store: Arc<dyn Store>) {
    register(&*store, &["cam-1", "cam-2"]).await;
    let mut last = CaseId(0);
    for round in 0..3 {
        let batch: Vec<NewCase> = (0..4)
            .map(|i| new_case(if i % 2 == 0 { "cam-1" } else { "cam-2" }, None, t(round)))
            .collect();
        let mut ids = created_cases(store.as_ref(), &batch, "ingest").await;
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4, "ids are distinct");
        assert!(ids[0] > last, "later batches get larger ids");
        assert!(ids[0].0 > 0);
        last = ids[3];
    }
}

async fn a_case_keeps_the_trace_it_was_recorded_in(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let trace: kozomol_core::TraceParent =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap();
    let mut traced = new_case("cam-1", None, t(0));
    traced.trace_parent = Some(trace);
    let untraced = new_case("cam-1", None, t(1));
    let ids = created_cases(store.as_ref(), &[traced.clone(), untraced], "ingest").await;
    let traces = store.trace_parents(&ids).await.unwrap();
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(traces.get(&ids[0]), Some(&trace));
    // A repeat of the event in another trace (a camera's resend) keeps the first.
    let mut again = traced;
    again.trace_parent = Some(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .unwrap(),
    );
    assert_eq!(
        store.record_cases(&[again], "ingest").await.unwrap(),
        vec![CaseWrite::Duplicate(ids[0])]
    );
    assert_eq!(
        store.trace_parents(&ids).await.unwrap().get(&ids[0]),
        Some(&trace)
    );
    assert!(store.trace_parents(&[]).await.unwrap().is_empty());
    assert!(store
        .trace_parents(&[CaseId(ids[1].0 + 1000)])
        .await
        .unwrap()
        .is_empty());
}

async fn cases_are_counted_per_hour_site_and_kind(store: Arc<dyn Store>) {
    register(&*store, &["cam-1", "cam-2"]).await;
    // t(m) is 08:00 UTC plus m minutes: 08:00, 08:30 and 09:10 on cam-1, 08:05 on cam-2.
    let batch = vec![
        new_case("cam-1", None, t(0)),
        new_case("cam-1", None, t(30)),
        new_case("cam-1", None, t(70)),
        new_case("cam-2", None, t(5)),
    ];
    store.record_cases(&batch, "ingest").await.unwrap();
    let counts = store.hourly_counts(t(0), t(120)).await.unwrap();
    let seen: Vec<(String, String, i64, i64)> = counts
        .iter()
        .map(|c| {
            (
                c.hour.format("%H:%M").to_string(),
                c.site.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
                c.recorded,
                c.fined,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("08:00".into(), "site-cam-1".into(), 2, 0),
            ("08:00".into(), "site-cam-2".into(), 1, 0),
            ("09:00".into(), "site-cam-1".into(), 1, 0),
        ]
    );
    let site = counts[0].site.clone().expect("a site");
    assert_eq!(
        (site.address.as_str(), site.lat_e6, site.lon_e6),
        ("Бишкек, пр. Чуй / ул. Советская", 42_874_621, 74_569_762)
    );
    // A camera that moves counts its earlier cases where they were seen.
    let mut moved = registration("cam-1", "dev-cam-1", "KG-1");
    moved.site.id = "site-elsewhere".to_owned();
    store.register_camera(&moved).await.unwrap();
    let again = store.hourly_counts(t(0), t(120)).await.unwrap();
    assert_eq!(again, counts);
    // The range is half-open.
    assert!(store.hourly_counts(t(0), t(0)).await.unwrap().is_empty());
}

async fn every_case_filter_narrows_and_the_cursor_pages(store: Arc<dyn Store>) {
    register(&*store, &["cam-1", "cam-2"]).await;
    // 10 cases: cameras alternate, plates cycle over three values (one missing),
    // captured a minute apart.
    let plates = [Some("01KG111AAA"), Some("01KG222BBB"), None];
    let batch: Vec<NewCase> = (0..10)
        .map(|i| {
            new_case(
                if i % 2 == 0 { "cam-1" } else { "cam-2" },
                plates[i % 3],
                t(i as i64),
            )
        })
        .collect();
    let ids = created_cases(store.as_ref(), &batch, "ingest").await;
    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<CaseId> {
        let mut want: Vec<CaseId> = (0..10).filter(|&i| pred(i)).map(|i| ids[i]).collect();
        want.sort();
        want
    };
    let run = |query: CaseQuery| {
        let store = Arc::clone(&store);
        async move {
            let got: Vec<CaseId> = store
                .cases(&query)
                .await
                .unwrap()
                .iter()
                .map(|c| c.id)
                .collect();
            let n = store.count_cases(&query).await.unwrap();
            (got, n)
        }
    };

    let (got, n) = run(all()).await;
    assert_eq!(got, expect(&|_| true));
    assert_eq!(n, 10);

    let (got, n) = run(CaseQuery {
        camera: Some(cam("cam-2")),
        ..all()
    })
    .await;
    assert_eq!(got, expect(&|i| i % 2 == 1));
    assert_eq!(n, 5);

    let (got, _) = run(CaseQuery {
        plate: Some("01KG222BBB".to_owned()),
        ..all()
    })
    .await;
    assert_eq!(got, expect(&|i| i % 3 == 1));
    let (got, _) = run(CaseQuery {
        sighted_plates: vec!["01KG222BBB".to_owned()],
        ..all()
    })
    .await;
    assert_eq!(
        got,
        expect(&|i| i % 3 == 1),
        "no review decided another plate"
    );

    let (got, n) = run(CaseQuery {
        from: Some(t(3)),
        to: Some(t(7)),
        ..all()
    })
    .await;
    assert_eq!(
        got,
        expect(&|i| (3..7).contains(&i)),
        "from inclusive, to exclusive"
    );
    assert_eq!(n, 4);

    let (got, _) = run(CaseQuery {
        state: Some(CaseState::Received),
        ..all()
    })
    .await;
    assert_eq!(got.len(), 10);
    let (got, n) = run(CaseQuery {
        state: Some(CaseState::Approved),
        ..all()
    })
    .await;
    assert!(got.is_empty());
    assert_eq!(n, 0);

    let (got, n) = run(CaseQuery {
        camera: Some(cam("cam-1")),
        plate: Some("01KG111AAA".to_owned()),
        from: Some(t(1)),
        ..all()
    })
    .await;
    // cam-1 is even i; plate 111 is i % 3 == 0; from t(1): i = 6.
    assert_eq!(got, expect(&|i| i == 6));
    assert_eq!(n, 1);

    // Paging: limit 3 with the cursor walks every case once, in id order; the count
    // ignores the cursor and the limit.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let query = CaseQuery {
            limit: 3,
            after,
            ..CaseQuery::default()
        };
        let page = store.cases(&query).await.unwrap();
        assert!(page.len() <= 3);
        assert_eq!(store.count_cases(&query).await.unwrap(), 10);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|c| c.id));
    }
    assert_eq!(seen, expect(&|_| true));

    // Summaries carry what the list shows.
    let page = store
        .cases(&CaseQuery {
            limit: 1,
            ..CaseQuery::default()
        })
        .await
        .unwrap();
    let first = batch
        .iter()
        .zip(&ids)
        .find(|(_, id)| **id == page[0].id)
        .map(|(case, _)| case)
        .unwrap();
    assert_eq!(page[0].event_id, first.event_id);
    assert_eq!(page[0].camera_id.as_ref(), Some(&first.camera_id));
    assert_eq!(page[0].plate, first.camera_plate);
    assert_eq!(page[0].kind, ViolationKind::Speeding);
    assert_eq!(page[0].state, CaseState::Received);
    assert!(page[0].enforceable);
}

async fn each_created_case_gets_one_chained_audit_row(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let batch: Vec<NewCase> = (0..3).map(|i| new_case("cam-1", None, t(i))).collect();
    let mut ids = created_cases(store.as_ref(), &batch, "ingest-7").await;
    ids.sort();

    let mut rows = Vec::new();
    for id in &ids {
        let audit = store.case_audit(*id).await.unwrap();
        assert_eq!(audit.len(), 1);
        rows.push(audit.into_iter().next().unwrap());
    }
    let batch_id = rows[0].batch_id;
    let mut prev = chain_start(batch_id);
    for (row, id) in rows.iter().zip(&ids) {
        assert_eq!(row.case_id, Some(*id));
        assert_eq!(row.actor, "ingest-7");
        assert_eq!(row.action, CASE_RECEIVED);
        assert_eq!(row.from_state, None);
        assert_eq!(row.to_state, Some(CaseState::Received));
        assert_eq!(row.batch_id, batch_id, "one chain per batch");
        assert_eq!(row.prev_hash, hex::encode(prev));
        let recomputed = row_hash(
            &prev,
            &AuditRow {
                batch_id: row.batch_id,
                case_id: row.case_id,
                at: row.at,
                actor: &row.actor,
                action: &row.action,
                from_state: row.from_state,
                to_state: row.to_state,
                detail: row.detail.as_deref(),
            },
        );
        assert_eq!(
            row.hash,
            hex::encode(recomputed),
            "hash recomputes from the stored row"
        );
        prev = recomputed;
    }

    // A second batch starts a chain of its own; duplicates add no audit rows.
    let next = new_case("cam-1", None, t(5));
    let mut second = batch.clone();
    second.push(next);
    let writes = store.record_cases(&second, "ingest-7").await.unwrap();
    let next_id = created(writes[3]);
    let audit = store.case_audit(next_id).await.unwrap();
    assert_ne!(audit[0].batch_id, batch_id);
    assert_eq!(
        audit[0].prev_hash,
        hex::encode(chain_start(audit[0].batch_id))
    );
    for id in &ids {
        assert_eq!(store.case_audit(*id).await.unwrap().len(), 1);
    }
}

async fn recording_cases_updates_last_seen(store: Arc<dyn Store>) {
    register(&*store, &["cam-1", "cam-2"]).await;
    let before = Utc::now() - Duration::seconds(5);
    let case = new_case("cam-1", None, t(0));
    store
        .record_cases(std::slice::from_ref(&case), "ingest")
        .await
        .unwrap();
    let seen = store
        .camera(&cam("cam-1"))
        .await
        .unwrap()
        .unwrap()
        .last_seen;
    assert!(seen.is_some_and(|at| at >= before && at <= Utc::now()));
    assert_eq!(
        store
            .camera(&cam("cam-2"))
            .await
            .unwrap()
            .unwrap()
            .last_seen,
        None
    );
    // A repeat still shows the camera is alive.
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.record_cases(&[case], "ingest").await.unwrap();
    let again = store
        .camera(&cam("cam-1"))
        .await
        .unwrap()
        .unwrap()
        .last_seen;
    assert!(again > seen);
}

async fn a_case_from_an_unregistered_camera_is_refused(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let batch = vec![new_case("cam-1", None, t(0)), new_case("ghost", None, t(0))];
    match store.record_cases(&batch, "ingest").await {
        Err(StoreError::UnknownCamera(id)) => assert_eq!(id, "ghost"),
        other => panic!("a case from an unregistered camera gave {other:?}"),
    }
    assert_eq!(
        store.count_cases(&all()).await.unwrap(),
        0,
        "the batch is one transaction"
    );
    let frames: Vec<[u8; 32]> = batch[0].frames.iter().map(|f| f.sha256).collect();
    assert!(store.known_frames(&frames).await.unwrap().is_empty());
}

async fn known_frames_keep_their_first_location(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let first = new_case("cam-1", None, t(0));
    let shared = first.frames[0].sha256;
    assert!(store.known_frames(&[shared]).await.unwrap().is_empty());
    assert!(store.known_frames(&[]).await.unwrap().is_empty());

    // A second case showing the same overview frame, written elsewhere; and a third
    // in the same batch as the first.
    let mut second = new_case("cam-1", None, t(1));
    second.frames[0] = NewFrame {
        role: FrameRole::Overview,
        sha256: shared,
        location: location(999_000),
    };
    let mut third = new_case("cam-1", None, t(2));
    third.frames[0] = NewFrame {
        role: FrameRole::Overview,
        sha256: shared,
        location: location(555_000),
    };
    let writes = store
        .record_cases(&[first.clone(), third], "ingest")
        .await
        .unwrap();
    let first_id = created(writes[0]);
    let third_id = created(writes[1]);
    let second_id = created(store.record_cases(&[second], "ingest").await.unwrap()[0]);

    let unknown = sha("never stored");
    let known = store
        .known_frames(&[shared, first.frames[1].sha256, unknown])
        .await
        .unwrap();
    assert_eq!(known.len(), 2);
    assert!(known.contains(&shared) && !known.contains(&unknown));

    for id in [first_id, second_id, third_id] {
        let case = store.case(id).await.unwrap().unwrap();
        assert_eq!(case.frames[0].sha256, shared);
        assert_eq!(case.frames[0].location, location(40), "first location wins");
    }
}

async fn dead_letters_keep_bounded_raw_bytes(store: Arc<dyn Store>) {
    assert!(store.dead_letters(10, None).await.unwrap().is_empty());
    store.record_dead_letters(&[]).await.unwrap();
    let huge: Vec<u8> = (0..DEAD_LETTER_RAW_LIMIT + 5000).map(|i| i as u8).collect();
    let letters: Vec<NewDeadLetter> = DeadLetterReason::ALL
        .iter()
        .enumerate()
        .map(|(i, reason)| NewDeadLetter {
            received_at: t(i as i64),
            topic: format!("kozomol/v1/cameras/cam-{i}/violations"),
            camera_id: (i % 2 == 0).then(|| format!("cam-{i}")),
            event_id: (i % 3 == 0).then(|| Uuid::now_v7().to_string()),
            reason: *reason,
            detail: format!("detail {i}"),
            raw: if i == 0 || *reason == DeadLetterReason::Unstorable {
                huge.clone()
            } else {
                vec![i as u8; 10]
            },
            // One of a flood's letters beyond its first few: a prefix only.
            keep_bytes: (i == 2).then_some(4),
        })
        .collect();
    store.record_dead_letters(&letters).await.unwrap();

    let stored = store.dead_letters(100, None).await.unwrap();
    assert_eq!(stored.len(), letters.len());
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
    for (got, sent) in stored.iter().zip(&letters) {
        assert_eq!(got.received_at, sent.received_at);
        assert_eq!(got.topic, sent.topic);
        assert_eq!(got.camera_id, sent.camera_id);
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.reason, sent.reason);
        assert_eq!(got.detail, sent.detail);
        assert_eq!(got.raw_len as usize, sent.raw.len());
    }
    let raw = |id: i64| {
        let store = Arc::clone(&store);
        async move {
            let (raw_len, kept) = store.dead_letter_raw(id).await.unwrap().expect("letter");
            (raw_len as usize, kept)
        }
    };
    assert_eq!(stored[0].raw_kept as usize, DEAD_LETTER_RAW_LIMIT);
    assert_eq!(
        raw(stored[0].id).await,
        (huge.len(), huge[..DEAD_LETTER_RAW_LIMIT].to_vec())
    );
    assert_eq!(raw(stored[1].id).await, (10, vec![1u8; 10]));
    assert_eq!(raw(stored[2].id).await, (10, vec![2u8; 4]));
    // A verified event the store refused is kept whole, to be sent again.
    let unstorable = stored
        .iter()
        .find(|d| d.reason == DeadLetterReason::Unstorable)
        .expect("the unstorable letter");
    assert_eq!(unstorable.raw_kept as usize, huge.len());
    assert_eq!(raw(unstorable.id).await.1, huge);
    assert_eq!(store.dead_letter_raw(i64::MAX).await.unwrap(), None);

    let page = store.dead_letters(2, Some(stored[3].id)).await.unwrap();
    assert_eq!(
        page.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![stored[4].id, stored[5].id]
    );

    // The retention purge drops the kept bytes of those received before its cut-off,
    // and keeps the rest of each row.
    use kozomol_store::retention::DEAD_LETTERS_PURGED;
    for expected in [1, 1] {
        let purged = store
            .purge_personal_data(t(2), 1, "retention")
            .await
            .unwrap();
        assert_eq!(
            purged.dead_letters, expected,
            "one a pass at a limit of one"
        );
        assert_eq!(purged.purged(), 1);
    }
    let after = store.dead_letters(100, None).await.unwrap();
    let kept: Vec<i64> = after.iter().map(|d| d.raw_kept).collect();
    assert_eq!(kept[..2], [0, 0]);
    assert!(raw(after[0].id).await.1.is_empty());
    for (later, before) in after[2..].iter().zip(&stored[2..]) {
        assert_eq!(
            later.raw_kept, before.raw_kept,
            "letters after the cut-off keep their bytes"
        );
    }
    assert_eq!(
        after[0].raw_len as usize,
        huge.len(),
        "the length received stays"
    );
    assert_eq!(
        (after[1].reason, after[1].detail.as_str()),
        (letters[1].reason, "detail 1")
    );
    let again = store
        .purge_personal_data(t(2), 100, "retention")
        .await
        .unwrap();
    assert_eq!(again.dead_letters, 0, "purged once");
    let rows = store.audit_rows(0, 10_000).await.unwrap();
    let audited: Vec<&str> = rows
        .iter()
        .filter(|row| row.action == DEAD_LETTERS_PURGED)
        .filter_map(|row| row.detail.as_deref())
        .collect();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited[0].contains("\"dead_letters\":1"), "{audited:?}");
}

/// A budget is the database's, not a process's: takes at once (as from several API
/// replicas) never grant more than it; a reset gives it back; keys are apart.
async fn budgets_of_attempts_are_shared_and_given_back(store: Arc<dyn Store>) {
    let three = kozomol_store::Allowance {
        max: 3,
        window: std::time::Duration::from_secs(3600),
    };
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_allowance("plate:01KG123ABC", three).await })
        })
        .collect();
    let mut takes = Vec::new();
    for task in tasks {
        takes.push(task.await.unwrap());
    }
    let granted = takes.iter().filter(|t| matches!(t, Ok(Ok(())))).count();
    assert_eq!(granted, 3, "{takes:?}");
    for take in &takes {
        if let Ok(Err(wait)) = take {
            // Until the first attempt leaves the hour.
            assert!(*wait <= std::time::Duration::from_secs(3600), "{wait:?}");
            assert!(*wait >= std::time::Duration::from_secs(3500), "{wait:?}");
        }
    }
    assert!(store
        .take_allowance("plate:01KG456DEF", three)
        .await
        .unwrap()
        .is_ok());
    store.reset_allowance("plate:01KG123ABC").await.unwrap();
    assert!(store
        .take_allowance("plate:01KG123ABC", three)
        .await
        .unwrap()
        .is_ok());
}

async fn accounts_and_tokens(store: Arc<dyn Store>) {
    let account = |login: &str, role| NewAccount {
        login: login.to_owned(),
        role,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${login}"),
        officer: None,
        created_by: "admin".into(),
    };
    let officer = store
        .create_account(&account("officer", Role::Reviewer))
        .await
        .unwrap();
    let admin = store
        .create_account(&account("admin", Role::Admin))
        .await
        .unwrap();
    assert_ne!(officer, admin);

    match store
        .create_account(&account("officer", Role::Auditor))
        .await
    {
        Err(StoreError::Conflict { what }) => assert!(what.contains("officer"), "{what}"),
        other => panic!("a second `officer` was {other:?}"),
    }

    let got = store.account_by_login("officer").await.unwrap().unwrap();
    assert_eq!(got.id, officer);
    assert_eq!(got.role, Role::Reviewer);
    assert_eq!(
        got.password_hash,
        account("officer", Role::Reviewer).password_hash
    );
    assert_eq!(store.account_by_login("nobody").await.unwrap(), None);

    use kozomol_store::{CheckedAccount, CredentialStored};
    let officer_hash = account("officer", Role::Reviewer).password_hash;
    let as_checked = CheckedAccount {
        id: officer,
        password_hash: &officer_hash,
    };
    let admin_hash = account("admin", Role::Admin).password_hash;
    let token = sha("secret token");
    assert_eq!(
        store.store_token(as_checked, &token, "cli").await.unwrap(),
        CredentialStored::Stored
    );
    assert!(matches!(
        store
            .store_token(
                CheckedAccount {
                    id: admin,
                    password_hash: &admin_hash
                },
                &token,
                "again"
            )
            .await,
        Err(StoreError::Conflict { .. })
    ));
    // A password other than the account's (checked before a new one was set): nothing.
    let stale = CheckedAccount {
        id: officer,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$salt$old",
    };
    let later = sha("a token on the old password");
    assert_eq!(
        store.store_token(stale, &later, "login").await.unwrap(),
        CredentialStored::AccountChanged
    );
    assert_eq!(store.account_by_token(&later).await.unwrap(), None);
    let in_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(
        store
            .open_web_session(stale, &sha("a session on the old password"), in_hour)
            .await
            .unwrap(),
        CredentialStored::AccountChanged
    );
    assert_eq!(store.account_by_token(&token).await.unwrap(), Some(got));
    assert_eq!(store.account_by_token(&sha("other")).await.unwrap(), None);

    let logins: Vec<String> = store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.login)
        .collect();
    assert_eq!(logins, ["admin", "officer"]);

    // Disabling ends the account's tokens and sessions; enabling brings none back.
    let session = sha("a session");
    assert_eq!(
        store
            .open_web_session(as_checked, &session, in_hour)
            .await
            .unwrap(),
        CredentialStored::Stored
    );
    let disable = |disabled| kozomol_store::AccountChange {
        disabled: Some(disabled),
        ..Default::default()
    };
    match store
        .change_account("officer", &disable(true), "admin")
        .await
        .unwrap()
    {
        kozomol_store::AccountChanged::Changed(account) => assert!(account.disabled),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.account_by_token(&token).await.unwrap(), None);
    assert_eq!(
        store
            .account_by_web_session(&session, chrono::Utc::now())
            .await
            .unwrap(),
        None
    );
    // Disabled: nothing new is stored for it, whatever password was checked.
    assert_eq!(
        store
            .store_token(as_checked, &sha("while disabled"), "login")
            .await
            .unwrap(),
        CredentialStored::AccountChanged
    );
    assert!(
        store
            .account_by_login("officer")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    store
        .change_account("officer", &disable(false), "admin")
        .await
        .unwrap();
    assert_eq!(store.account_by_token(&token).await.unwrap(), None);

    // Two admins demoting each other at once: one of them stays an admin.
    store
        .create_account(&account("second", Role::Admin))
        .await
        .unwrap();
    let demote = kozomol_store::AccountChange {
        role: Some(Role::Auditor),
        ..Default::default()
    };
    let (a, b) = tokio::join!(
        store.change_account("admin", &demote, "second"),
        store.change_account("second", &demote, "admin")
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == kozomol_store::AccountChanged::LastAdmin)
            .count(),
        1,
        "{outcomes:?}"
    );
    let admins = store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.role == Role::Admin && !a.disabled)
        .count();
    assert_eq!(admins, 1);
    // A holder's own change over a password an admin has reset meanwhile: refused.
    let own_change = kozomol_store::AccountChange {
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$salt$holders".into()),
        password_was: Some(officer_hash.clone()),
        ..Default::default()
    };
    let reset = kozomol_store::AccountChange {
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$salt$reset".into()),
        ..Default::default()
    };
    assert!(matches!(
        store
            .change_account("officer", &reset, "admin")
            .await
            .unwrap(),
        kozomol_store::AccountChanged::Changed(_)
    ));
    assert_eq!(
        store
            .change_account("officer", &own_change, "officer")
            .await
            .unwrap(),
        kozomol_store::AccountChanged::PasswordChangedMeanwhile
    );
    assert_eq!(
        store
            .account_by_login("officer")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$v=19$m=19456,t=2,p=1$salt$reset"
    );
    // Nor over the current password of an account disabled meanwhile.
    store
        .change_account("officer", &disable(true), "admin")
        .await
        .unwrap();
    let over_reset = kozomol_store::AccountChange {
        password_was: Some("$argon2id$v=19$m=19456,t=2,p=1$salt$reset".into()),
        ..own_change.clone()
    };
    assert_eq!(
        store
            .change_account("officer", &over_reset, "officer")
            .await
            .unwrap(),
        kozomol_store::AccountChanged::PasswordChangedMeanwhile
    );
    assert_eq!(
        store
            .change_account("nobody", &disable(true), "admin")
            .await
            .unwrap(),
        kozomol_store::AccountChanged::NoAccount
    );
}

/// The officers' register: an entry made with the account or set later, audited, a
/// badge one officer's, read back for issuing by login.
async fn officers_register(url: String) {
    let store = connect(&url).await.unwrap();
    let asanov = OfficerIdentity {
        full_name: "Асанов Бакыт Орозбекович".into(),
        badge: "KG-0417".into(),
    };
    let account = |login: &str, officer: Option<&OfficerIdentity>| NewAccount {
        login: login.to_owned(),
        role: Role::Reviewer,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt${login}"),
        officer: officer.cloned(),
        created_by: "admin".into(),
    };
    store
        .create_account(&account("asanov", Some(&asanov)))
        .await
        .unwrap();
    store
        .create_account(&account("before", None))
        .await
        .unwrap();
    let got = store.account_by_login("asanov").await.unwrap().unwrap();
    assert_eq!(got.officer.as_ref(), Some(&asanov));
    assert_eq!(
        store
            .account_by_login("before")
            .await
            .unwrap()
            .unwrap()
            .officer,
        None
    );

    // A badge is one officer's, at creation and later; nothing is written either time.
    assert!(matches!(
        store.create_account(&account("twin", Some(&asanov))).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.account_by_login("twin").await.unwrap(), None);
    assert!(matches!(
        store.register_officer("before", &asanov, "admin").await,
        Err(StoreError::Conflict { .. })
    ));
    // Half an entry is refused.
    let nameless = OfficerIdentity {
        full_name: " ".into(),
        badge: "KG-0001".into(),
    };
    assert!(matches!(
        store.register_officer("before", &nameless, "admin").await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store
            .register_officer("nobody", &asanov, "admin")
            .await
            .unwrap(),
        None
    );

    let bekova = OfficerIdentity {
        full_name: "Бекова Айгуль".into(),
        badge: "KG-0420".into(),
    };
    let registered = store
        .register_officer("before", &bekova, "supervisor")
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(registered.officer.as_ref(), Some(&bekova));

    let found = store
        .officers(&["asanov", "before", "nobody", "asanov"])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found["asanov"], asanov);
    assert_eq!(found["before"], bekova);
    assert!(store.officers(&[]).await.unwrap().is_empty());

    let rows = audit_without_case(&url).await;
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|(action, actor, _)| (action.as_str(), actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (ACCOUNT_CREATED, "admin"),
            (ACCOUNT_CREATED, "admin"),
            (OFFICER_REGISTERED, "supervisor"),
        ]
    );
    let detail = &rows[2].2;
    assert!(
        detail.contains("KG-0420") && detail.contains("before"),
        "{detail}"
    );
}

/// Also prints how long 1,000 small cases take (ingest needs well under 100 ms).
async fn large_batches_are_written_in_one_call(store: Arc<dyn Store>) {
    let cameras: Vec<String> = (0..10).map(|i| format!("cam-{i}")).collect();
    let names: Vec<&str> = cameras.iter().map(String::as_str).collect();
    register(&*store, &names).await;
    let make = |n: usize| -> Vec<NewCase> {
        (0..n)
            .map(|i| new_case(names[i % names.len()], Some("01KG123ABC"), t(i as i64)))
            .collect()
    };

    // The fastest of a few rounds: the machine is shared, the minimum is the signal.
    let mut fastest = std::time::Duration::MAX;
    for _ in 0..4 {
        let batch = make(1000);
        let started = Instant::now();
        let writes = store.record_cases(&batch, "bench").await.unwrap();
        fastest = fastest.min(started.elapsed());
        assert!(writes.iter().all(|w| matches!(w, CaseWrite::Created(_))));
    }
    let backend = match store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    println!("{backend}: record_cases of 1000 small cases took {fastest:?} (fastest of 4)");

    // Beyond one statement's rows: 2,500 cases, half of them repeats.
    let mut big = make(1250);
    big.extend(big.clone());
    let writes = store.record_cases(&big, "bench").await.unwrap();
    assert_eq!(
        writes
            .iter()
            .filter(|w| matches!(w, CaseWrite::Created(_)))
            .count(),
        1250
    );
    assert_eq!(
        writes[1250..],
        writes[..1250]
            .iter()
            .map(|w| match w {
                CaseWrite::Created(id) => CaseWrite::Duplicate(*id),
                other => *other,
            })
            .collect::<Vec<_>>()[..]
    );
    assert_eq!(store.count_cases(&all()).await.unwrap(), 5250);
    let page = store
        .cases(&CaseQuery {
            camera: Some(cam("cam-3")),
            limit: 10_000,
            ..CaseQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 525);
}

/// Two ingest workers handed the same redelivered events in different orders: every
/// case is created once, the other worker hears `Duplicate`, and nobody deadlocks.
async fn concurrent_overlapping_batches_create_each_case_once(store: Arc<dyn Store>) {
    register(&*store, &["cam-1", "cam-2", "cam-3"]).await;
    let events: Vec<NewCase> = (0..300)
        .map(|i| new_case(["cam-1", "cam-2", "cam-3"][i % 3], None, t(i as i64)))
        .collect();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let store = Arc::clone(&store);
        let mut mine = events.clone();
        if worker % 2 == 1 {
            mine.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mut writes = Vec::new();
            for batch in mine.chunks(50) {
                writes.extend(store.record_cases(batch, "ingest").await.unwrap());
            }
            (worker, writes)
        }));
    }
    let mut ids_per_worker = Vec::new();
    let mut created_total = 0;
    for task in tasks {
        let (worker, mut writes) = task.await.unwrap();
        if worker % 2 == 1 {
            writes.reverse();
        }
        created_total += writes
            .iter()
            .filter(|w| matches!(w, CaseWrite::Created(_)))
            .count();
        let ids: Vec<CaseId> = writes
            .iter()
            .map(|w| match w {
                CaseWrite::Created(id) | CaseWrite::Duplicate(id) => *id,
                CaseWrite::Conflict(id) => panic!("same bytes reported as a conflict: {id}"),
            })
            .collect();
        ids_per_worker.push(ids);
    }
    assert_eq!(created_total, 300, "each case created exactly once");
    assert!(
        ids_per_worker.windows(2).all(|w| w[0] == w[1]),
        "all agree on the ids"
    );
    assert_eq!(store.count_cases(&all()).await.unwrap(), 300);
}

async fn migrations_are_idempotent(url: String) {
    let store = connect(&url).await.unwrap();
    register(&*store, &["cam-1"]).await;
    let id = created(
        store
            .record_cases(&[new_case("cam-1", None, t(0))], "ingest")
            .await
            .unwrap()[0],
    );
    drop(store);
    let again = connect(&url).await.unwrap();
    assert!(again.case(id).await.unwrap().is_some(), "data survives");
    let third = connect(&url).await.unwrap();
    assert_eq!(third.cameras().await.unwrap().len(), 1);
}

async fn concurrent_first_connects_migrate_once(url: String) {
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { connect(&url).await })
        })
        .collect();
    for handle in connects {
        handle.await.expect("task").expect("every process starts");
    }
    let store = connect(&url).await.unwrap();
    register(&*store, &["cam-1"]).await;
    assert_eq!(store.cameras().await.unwrap().len(), 1);
}

// ---- recognition -------------------------------------------------------------------

const LONG_LEASE: std::time::Duration = std::time::Duration::from_secs(600);
/// Short enough to wait out in a test, long enough that a claim made right after it
/// was taken still sees it live on a loaded machine.
const SHORT_LEASE: std::time::Duration = std::time::Duration::from_millis(400);

async fn outlast(lease: std::time::Duration) {
    tokio::time::sleep(lease + std::time::Duration::from_millis(300)).await;
}

/// A case whose event carries the camera's own read, as ingest stores one.
fn new_case_read(camera: &str, plate: &str, confidence_milli: u16) -> NewCase {
    let mut case = new_case(camera, Some(plate), t(0));
    case.event["plate_read"] = serde_json::json!({
        "text": plate,
        "confidence_milli": confidence_milli,
        "country": "KG",
    });
    case
}

/// Records `n` cases on cam-1 (registered here), one a minute; their ids ascending.
async fn queued(store: &dyn Store, n: usize) -> Vec<CaseId> {
    register(store, &["cam-1"]).await;
    let batch: Vec<NewCase> = (0..n)
        .map(|i| new_case_read("cam-1", &format!("01KG{i:03}ABC"), 900))
        .collect();
    let mut ids = created_cases(store, &batch, "ingest").await;
    ids.sort();
    ids
}

fn job_ids(jobs: &[RecognitionJob]) -> Vec<CaseId> {
    jobs.iter().map(|j| j.case_id).collect()
}

fn read(text: &str, confidence_milli: u16, country: Option<&str>) -> PlateRead {
    PlateRead {
        text: text.to_owned(),
        confidence_milli,
        country: country.map(str::to_owned),
    }
}

/// A plain successful read of `case_id`.
fn outcome(case_id: CaseId) -> RecognitionOutcome {
    RecognitionOutcome {
        case_id,
        decision: RecognitionDecision::Recognized,
        plate: Some(read("01KG123ABC", 930, Some("KG"))),
        char_confidences_milli: vec![990, 980, 970, 960, 950, 940, 930, 920, 910, 900],
        candidates: vec![read("01KG123ABC", 930, Some("KG"))],
        plate_box: None,
        crop: None,
        model: "lpr-test-1".to_owned(),
        agreement: Some(true),
    }
}

/// Recomputes the hash of a decision's audit row, which is a chain of its own.
fn assert_chained_alone(row: &AuditEntry) {
    let prev = chain_start(row.batch_id);
    assert_eq!(row.prev_hash, hex::encode(prev));
    let recomputed = row_hash(
        &prev,
        &AuditRow {
            batch_id: row.batch_id,
            case_id: row.case_id,
            at: row.at,
            actor: &row.actor,
            action: &row.action,
            from_state: row.from_state,
            to_state: row.to_state,
            detail: row.detail.as_deref(),
        },
    );
    assert_eq!(row.hash, hex::encode(recomputed));
}

async fn recognition_claims_the_oldest_free_cases_up_to_the_limit(store: Arc<dyn Store>) {
    let ids = queued(&*store, 5).await;
    let mut silent = new_case("cam-1", None, t(1));
    silent.frames.truncate(1);
    let silent_id = created(store.record_cases(&[silent], "ingest").await.unwrap()[0]);

    assert!(store
        .claim_recognition("w1", 0, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
    let before = Utc::now() + Duration::seconds(LONG_LEASE.as_secs() as i64 - 60);
    let first = store.claim_recognition("w1", 2, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&first), ids[..2]);
    let second = store.claim_recognition("w2", 2, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&second), ids[2..4], "leased cases are skipped");
    let rest = store.claim_recognition("w1", 10, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&rest), vec![ids[4], silent_id]);
    assert!(store
        .claim_recognition("w3", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());

    for job in first.iter().chain(&second).chain(&rest) {
        let case = store.case(job.case_id).await.unwrap().unwrap();
        assert_eq!(Some(&job.camera_id), case.camera_id.as_ref());
        assert_eq!(job.frames, case.frames, "frames with their locations");
        assert_eq!(job.attempt, 1);
        assert_eq!(job.last_error, None);
        assert!(job.leased_until > before, "{:?}", job.leased_until);
        assert_eq!(
            case.state,
            CaseState::Received,
            "a claim leaves the state alone"
        );
        if job.case_id == silent_id {
            assert_eq!(job.camera_read, None);
            assert_eq!(job.frames.len(), 1);
        } else {
            assert_eq!(
                job.camera_read,
                Some(CameraPlateRead {
                    text: case.plate.clone().unwrap(),
                    confidence_milli: Some(900),
                    country: Some("KG".to_owned()),
                })
            );
        }
    }
}

async fn an_expired_lease_is_claimed_again(store: Arc<dyn Store>) {
    let ids = queued(&*store, 2).await;
    let crashed = store.claim_recognition("w1", 1, SHORT_LEASE).await.unwrap();
    assert_eq!(job_ids(&crashed), ids[..1]);
    // While the lease lives, the next claim passes over it.
    let other = store.claim_recognition("w2", 1, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&other), ids[1..]);
    assert!(store
        .claim_recognition("w2", 5, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());

    outlast(SHORT_LEASE).await;
    let again = store.claim_recognition("w2", 5, LONG_LEASE).await.unwrap();
    assert_eq!(
        job_ids(&again),
        ids[..1],
        "the crashed worker's case comes back"
    );
    assert_eq!(again[0].attempt, 2);
    assert!(again[0].leased_until > crashed[0].leased_until);
    assert_eq!(again[0].frames, crashed[0].frames);
}

async fn a_lost_lease_can_neither_complete_nor_fail(store: Arc<dyn Store>) {
    let ids = queued(&*store, 3).await;
    let never_claimed = ids[2];
    assert_eq!(
        store
            .complete_recognition("w1", &outcome(never_claimed))
            .await
            .unwrap(),
        CompleteResult::LeaseLost
    );

    let slow = store.claim_recognition("w1", 1, SHORT_LEASE).await.unwrap();
    let id = slow[0].case_id;
    assert_eq!(id, ids[0]);
    // Someone else's lease is not ours.
    assert_eq!(
        store
            .complete_recognition("w2", &outcome(id))
            .await
            .unwrap(),
        CompleteResult::LeaseLost
    );
    outlast(SHORT_LEASE).await;
    let taken = store.claim_recognition("w2", 1, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&taken), vec![id]);
    assert_eq!(taken[0].attempt, 2);

    let audit_before = store.case_audit(id).await.unwrap();
    let case_before = store.case(id).await.unwrap().unwrap();
    let mut late = outcome(id);
    late.crop = Some(EvidenceRef {
        sha256: sha("late crop"),
        location: location(77_000),
    });
    assert_eq!(
        store.complete_recognition("w1", &late).await.unwrap(),
        CompleteResult::LeaseLost
    );
    assert_eq!(
        store
            .fail_recognition("w1", id, "timed out", std::time::Duration::ZERO, Some(1))
            .await
            .unwrap(),
        FailResult::LeaseLost
    );
    assert_eq!(store.case(id).await.unwrap().unwrap(), case_before);
    assert_eq!(store.case_audit(id).await.unwrap(), audit_before);
    assert_eq!(store.recognition(id).await.unwrap(), None);
    assert!(
        store
            .known_frames(&[sha("late crop")])
            .await
            .unwrap()
            .is_empty(),
        "a refused completion stores no crop"
    );
    assert_eq!(
        erasures_queued(store.as_ref()).await,
        vec![(sha("late crop"), location(77_000))],
        "its bytes, stored already, are overwritten"
    );
    // w2 still holds it: another claim takes only what is free.
    let unlucky = store.claim_recognition("w3", 5, SHORT_LEASE).await.unwrap();
    assert_eq!(job_ids(&unlucky), ids[1..]);

    // The new holder completes; after that nobody can.
    assert_eq!(
        store
            .complete_recognition("w2", &outcome(id))
            .await
            .unwrap(),
        CompleteResult::Completed
    );
    assert_eq!(
        store
            .complete_recognition("w2", &outcome(id))
            .await
            .unwrap(),
        CompleteResult::LeaseLost
    );

    // A lease that ran out but that nobody took over still completes: nobody else
    // is working on the case.
    outlast(SHORT_LEASE).await;
    for job in &unlucky {
        assert_eq!(
            store
                .complete_recognition("w3", &outcome(job.case_id))
                .await
                .unwrap(),
            CompleteResult::Completed
        );
    }
}

async fn completing_moves_the_case_and_audits_it(store: Arc<dyn Store>) {
    let ids = queued(&*store, 2).await;
    let jobs = store.claim_recognition("w1", 2, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&jobs), ids);

    let before = Utc::now() - Duration::seconds(5);
    assert_eq!(
        store
            .complete_recognition("w1", &outcome(ids[0]))
            .await
            .unwrap(),
        CompleteResult::Completed
    );
    let mut unsure = outcome(ids[1]);
    unsure.decision = RecognitionDecision::NeedsReview;
    unsure.plate = None;
    unsure.char_confidences_milli.clear();
    unsure.candidates.clear();
    unsure.agreement = None;
    assert_eq!(
        store.complete_recognition("w1", &unsure).await.unwrap(),
        CompleteResult::Completed
    );

    for (id, state) in [
        (ids[0], CaseState::Recognized),
        (ids[1], CaseState::NeedsReview),
    ] {
        let case = store.case(id).await.unwrap().unwrap();
        assert_eq!(case.state, state);
        let audit = store.case_audit(id).await.unwrap();
        assert_eq!(audit.len(), 2, "received, then the decision");
        let row = &audit[1];
        assert_eq!(row.actor, "recognizer:w1");
        assert_eq!(row.action, RECOGNITION_COMPLETED);
        assert_eq!(row.from_state, Some(CaseState::Received));
        assert_eq!(row.to_state, Some(state));
        assert!(row.at >= before && row.at <= Utc::now());
        assert!(row.detail.as_deref().unwrap().contains("lpr-test-1"));
        assert_chained_alone(row);

        let stored = store.recognition(id).await.unwrap().unwrap();
        assert_eq!(stored.decided_at, row.at);
        assert_eq!(stored.worker, "w1");
        assert_eq!(stored.attempts, 1);
    }
    assert!(store.case_audit(ids[0]).await.unwrap()[1]
        .detail
        .as_deref()
        .unwrap()
        .contains("01KG123ABC"));
    assert_eq!(
        store
            .count_cases(&CaseQuery {
                state: Some(CaseState::Received),
                ..all()
            })
            .await
            .unwrap(),
        0
    );
    assert!(store
        .claim_recognition("w2", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
}

async fn failures_retry_after_a_delay_then_go_to_review(store: Arc<dyn Store>) {
    let ids = queued(&*store, 1).await;
    let id = ids[0];
    let retry = std::time::Duration::from_millis(400);
    store.claim_recognition("w1", 1, LONG_LEASE).await.unwrap();
    assert_eq!(
        store
            .fail_recognition("w2", id, "not mine", retry, Some(2))
            .await
            .unwrap(),
        FailResult::LeaseLost
    );
    assert_eq!(
        store
            .fail_recognition("w1", id, "frame 0: not a JPEG", retry, Some(2))
            .await
            .unwrap(),
        FailResult::WillRetry { attempts: 1 }
    );
    assert_eq!(
        store
            .complete_recognition("w1", &outcome(id))
            .await
            .unwrap(),
        CompleteResult::LeaseLost,
        "a failed attempt gives up its lease"
    );
    assert!(
        store
            .claim_recognition("w1", 1, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "not before retry_after"
    );
    assert_eq!(
        store.case(id).await.unwrap().unwrap().state,
        CaseState::Received
    );
    assert_eq!(
        store.case_audit(id).await.unwrap().len(),
        1,
        "no state change"
    );

    outlast(retry).await;
    let again = store.claim_recognition("w2", 1, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&again), vec![id]);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("frame 0: not a JPEG"));
    // An outage (a full disk) is no attempt of the case's: the claim is given back.
    assert_eq!(
        store
            .fail_recognition("w2", id, "disk full", std::time::Duration::ZERO, None)
            .await
            .unwrap(),
        FailResult::WillRetry { attempts: 1 }
    );
    let again = store.claim_recognition("w2", 1, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&again), vec![id]);
    assert_eq!(again[0].attempt, 2);

    let error = "frame 0: not a JPEG (again)";
    assert_eq!(
        store
            .fail_recognition("w2", id, error, retry, Some(2))
            .await
            .unwrap(),
        FailResult::SentToReview { attempts: 2 }
    );
    assert_eq!(
        store.case(id).await.unwrap().unwrap().state,
        CaseState::NeedsReview
    );
    let stored = store.recognition(id).await.unwrap().unwrap();
    assert_eq!(stored.decision, RecognitionDecision::NeedsReview);
    assert_eq!(stored.error.as_deref(), Some(error));
    assert_eq!(stored.worker, "w2");
    assert_eq!(stored.attempts, 2);
    assert_eq!(stored.plate, None);
    assert_eq!(stored.model, None);
    assert!(stored.candidates.is_empty() && stored.char_confidences_milli.is_empty());
    assert_eq!(
        stored.camera_read.map(|r| r.text),
        store.case(id).await.unwrap().unwrap().plate
    );
    let audit = store.case_audit(id).await.unwrap();
    assert_eq!(audit.len(), 2);
    let row = &audit[1];
    assert_eq!(row.actor, "recognizer:w2");
    assert_eq!(row.action, RECOGNITION_FAILED);
    assert_eq!(row.from_state, Some(CaseState::Received));
    assert_eq!(row.to_state, Some(CaseState::NeedsReview));
    assert_eq!(row.detail.as_deref(), Some(error));
    assert_eq!(row.at, stored.decided_at);
    assert_chained_alone(row);

    outlast(retry).await;
    assert!(
        store
            .claim_recognition("w1", 1, LONG_LEASE)
            .await
            .unwrap()
            .is_empty(),
        "a case in review is out of the queue"
    );
    assert_eq!(
        store
            .fail_recognition("w2", id, error, retry, Some(2))
            .await
            .unwrap(),
        FailResult::LeaseLost
    );
}

async fn recognitions_round_trip(store: Arc<dyn Store>) {
    let ids = queued(&*store, 2).await;
    assert_eq!(store.recognition(ids[0]).await.unwrap(), None);
    let jobs = store.claim_recognition("w1", 2, LONG_LEASE).await.unwrap();
    assert_eq!(job_ids(&jobs), ids);

    let crop = EvidenceRef {
        sha256: sha("crop of case 0"),
        location: FrameLocation {
            segment: "seg-rec-0000000001.kzs".to_owned(),
            offset: 4_000_000_123,
            len: 5321,
        },
    };
    let full = RecognitionOutcome {
        case_id: ids[0],
        decision: RecognitionDecision::NeedsReview,
        plate: Some(read("01KG123ABO", 612, None)),
        char_confidences_milli: vec![1000, 999, 0, 500, 612, 700, 800, 900, 950, 123],
        candidates: vec![
            read("01KG123ABO", 612, None),
            read("01KG123AB0", 598, Some("KG")),
            read("O1KG123ABO", 12, Some("KZ")),
        ],
        plate_box: Some(PlateBox {
            frame_index: 1,
            x: 1812,
            y: 960,
            w: 240,
            h: 52,
        }),
        crop: Some(crop.clone()),
        model: "lpr-v3.2 (fp16)".to_owned(),
        agreement: Some(false),
    };
    assert_eq!(
        store.complete_recognition("w1", &full).await.unwrap(),
        CompleteResult::Completed
    );
    let got = store.recognition(ids[0]).await.unwrap().unwrap();
    assert_eq!(got.case_id, ids[0]);
    assert_eq!(got.decision, full.decision);
    assert_eq!(got.plate, full.plate);
    assert_eq!(got.char_confidences_milli, full.char_confidences_milli);
    assert_eq!(got.candidates, full.candidates);
    assert_eq!(got.plate_box, full.plate_box);
    assert_eq!(got.crop, Some(crop.clone()));
    assert_eq!(got.model.as_deref(), Some("lpr-v3.2 (fp16)"));
    assert_eq!(got.agreement, Some(false));
    assert_eq!(got.error, None);
    assert_eq!(
        got.camera_read, jobs[0].camera_read,
        "the camera's read is copied"
    );
    assert!(
        store
            .known_frames(&[crop.sha256])
            .await
            .unwrap()
            .contains(&crop.sha256),
        "the crop's location is stored with the frames'"
    );

    // Nothing read: empty lists and no box, crop or agreement.
    let mut nothing = outcome(ids[1]);
    nothing.plate = None;
    nothing.char_confidences_milli.clear();
    nothing.candidates.clear();
    nothing.agreement = None;
    store.complete_recognition("w1", &nothing).await.unwrap();
    let got = store.recognition(ids[1]).await.unwrap().unwrap();
    assert_eq!(got.plate, None);
    assert!(got.char_confidences_milli.is_empty() && got.candidates.is_empty());
    assert_eq!((got.plate_box, got.crop, got.agreement), (None, None, None));
    assert_eq!(got.decision, RecognitionDecision::Recognized);
}

/// Four recognizer processes (a store each, so separate connections and pools)
/// claiming and completing in a loop: no case is handed out twice, none is missed.
async fn concurrent_claimers_never_share_a_case(url: String) {
    let store = connect(&url).await.unwrap();
    let ids = queued(&*store, 200).await;
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let store = connect(&url).await.unwrap();
            let name = format!("w{worker}");
            let mut mine = Vec::new();
            loop {
                let jobs = store.claim_recognition(&name, 7, LONG_LEASE).await.unwrap();
                if jobs.is_empty() {
                    break;
                }
                for job in jobs {
                    assert_eq!(job.attempt, 1, "{name} got a case someone else held");
                    let done = store
                        .complete_recognition(&name, &outcome(job.case_id))
                        .await
                        .unwrap();
                    assert_eq!(done, CompleteResult::Completed);
                    mine.push(job.case_id);
                }
            }
            mine
        }));
    }
    let mut all_claimed = Vec::new();
    for task in tasks {
        all_claimed.extend(task.await.unwrap());
    }
    let claimed_count = all_claimed.len();
    all_claimed.sort();
    all_claimed.dedup();
    assert_eq!(claimed_count, all_claimed.len(), "a case was claimed twice");
    assert_eq!(all_claimed, ids, "every case was claimed");
    assert_eq!(
        store
            .count_cases(&CaseQuery {
                state: Some(CaseState::Recognized),
                ..all()
            })
            .await
            .unwrap(),
        200
    );
}

// ---- review -----------------------------------------------------------------------

/// Cases already read: the first `recognized`, the rest `needs_review`.
async fn reviewable(store: &dyn Store, n: usize) -> Vec<CaseId> {
    let ids = queued(store, n).await;
    store
        .claim_recognition("w1", n as u32, LONG_LEASE)
        .await
        .unwrap();
    for (i, id) in ids.iter().enumerate() {
        let mut read = outcome(*id);
        if i > 0 {
            read.decision = RecognitionDecision::NeedsReview;
        }
        assert_eq!(
            store.complete_recognition("w1", &read).await.unwrap(),
            CompleteResult::Completed
        );
    }
    ids
}

async fn the_backlog_counts_waiting_cases_per_state(store: Arc<dyn Store>) {
    let empty = store.backlog().await.unwrap();
    let states: Vec<CaseState> = empty.iter().map(|b| b.state).collect();
    assert_eq!(
        states,
        CaseState::WAITING.to_vec(),
        "every waiting state, in order"
    );
    assert!(empty
        .iter()
        .all(|b| b.cases == 0 && b.oldest_received_at.is_none()));

    let before = Utc::now() - Duration::seconds(1);
    // One recognized, two waiting for review, one not yet recognized.
    reviewable(&*store, 3).await;
    queued(&*store, 1).await;
    let after = Utc::now() + Duration::seconds(1);
    let backlog = store.backlog().await.unwrap();
    let of = |state: CaseState| backlog.iter().find(|b| b.state == state).unwrap();
    assert_eq!(of(CaseState::Received).cases, 1);
    assert_eq!(of(CaseState::Recognized).cases, 1);
    assert_eq!(of(CaseState::NeedsReview).cases, 2);
    assert_eq!(of(CaseState::Approved).cases, 0);
    assert_eq!(of(CaseState::Approved).oldest_received_at, None);
    let oldest = of(CaseState::NeedsReview).oldest_received_at.unwrap();
    assert!(before <= oldest && oldest <= after, "{oldest}");
}

fn review(case_id: CaseId, tier: ReviewTier, from: CaseState, to: CaseState) -> NewReview {
    NewReview {
        case_id,
        tier,
        reviewer: "officer-1".to_owned(),
        decision: ReviewDecision::Approve,
        reason: None,
        plate: Some("01KG123ABC".to_owned()),
        note: None,
        from_state: from,
        to_state: to,
        seen_move: None,
    }
}

/// A first-tier rejection from `from`: the plate unreadable.
fn rejection(case_id: CaseId, from: CaseState) -> NewReview {
    NewReview {
        decision: ReviewDecision::Reject,
        reason: Some(RejectReason::PlateUnreadable),
        plate: None,
        ..review(case_id, ReviewTier::First, from, CaseState::Rejected)
    }
}

async fn the_work_summary_counts_decisions_by_tier_and_money(store: Arc<dyn Store>) {
    let (from, to) = (
        Utc::now() - Duration::hours(1),
        Utc::now() + Duration::hours(1),
    );
    let empty = store.work_summary(from, to).await.unwrap();
    assert_eq!(empty.decisions_by_tier, vec![]);
    assert_eq!(empty.mean_seconds_to_decision, None);
    assert_eq!(
        (empty.issued, empty.issued_minor, empty.paid_minor),
        (0, 0, 0)
    );

    let ids = reviewable(&*store, 2).await;
    let mut auto = review(
        ids[0],
        ReviewTier::Auto,
        CaseState::Recognized,
        CaseState::Approved,
    );
    auto.reviewer = "auto-approval".to_owned();
    store.record_review(&auto).await.unwrap();
    let first = review(
        ids[1],
        ReviewTier::First,
        CaseState::NeedsReview,
        CaseState::Approved,
    );
    store.record_review(&first).await.unwrap();
    let summary = store.work_summary(from, to).await.unwrap();
    assert_eq!(
        summary.decisions_by_tier,
        vec![("auto".to_owned(), 1), ("first".to_owned(), 1)]
    );
    assert!(summary.mean_seconds_to_decision.is_some());
    // Outside the range: nothing.
    let later = store
        .work_summary(to, to + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(later.decisions_by_tier, vec![]);
}

async fn reviews_move_the_case_and_are_audited(store: Arc<dyn Store>) {
    let ids = reviewable(&*store, 3).await;
    let (auto, corrected, rejected) = (ids[0], ids[1], ids[2]);

    let mut approve = review(
        auto,
        ReviewTier::Auto,
        CaseState::Recognized,
        CaseState::Approved,
    );
    approve.reviewer = "auto-approval".to_owned();
    assert_eq!(
        store.record_review(&approve).await.unwrap(),
        ReviewWrite::Recorded
    );

    // A reviewer proposes another plate, a supervisor confirms it.
    let mut first = review(
        corrected,
        ReviewTier::First,
        CaseState::NeedsReview,
        CaseState::SupervisorReview,
    );
    first.decision = ReviewDecision::CorrectPlate;
    first.plate = Some("01KG128ABC".to_owned());
    first.note = Some("8, not 3: the bolt hides the stroke".to_owned());
    assert_eq!(
        store.record_review(&first).await.unwrap(),
        ReviewWrite::Recorded
    );
    assert_eq!(
        store.decided_plate(corrected).await.unwrap().as_deref(),
        Some("01KG128ABC")
    );
    let mut second = review(
        corrected,
        ReviewTier::Supervisor,
        CaseState::SupervisorReview,
        CaseState::Approved,
    );
    second.reviewer = "supervisor-1".to_owned();
    second.plate = None;
    assert_eq!(
        store.record_review(&second).await.unwrap(),
        ReviewWrite::Recorded
    );

    let reject = rejection(rejected, CaseState::NeedsReview);
    assert_eq!(
        store.record_review(&reject).await.unwrap(),
        ReviewWrite::Recorded
    );

    for (id, state, plate) in [
        (auto, CaseState::Approved, Some("01KG123ABC")),
        // The supervisor named no plate: the proposed one stays decided.
        (corrected, CaseState::Approved, Some("01KG128ABC")),
        (rejected, CaseState::Rejected, None),
    ] {
        let case = store.case(id).await.unwrap().unwrap();
        assert_eq!(case.state, state, "case {id}");
        assert_eq!(
            store.decided_plate(id).await.unwrap().as_deref(),
            plate,
            "case {id}"
        );
    }

    let history = store.reviews(corrected).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0].tier,
            history[0].decision,
            history[0].plate.as_deref(),
            history[0].note.as_deref()
        ),
        (
            ReviewTier::First,
            ReviewDecision::CorrectPlate,
            Some("01KG128ABC"),
            first.note.as_deref()
        )
    );
    assert_eq!(
        (
            history[1].tier,
            history[1].reviewer.as_str(),
            history[1].from_state,
            history[1].to_state
        ),
        (
            ReviewTier::Supervisor,
            "supervisor-1",
            CaseState::SupervisorReview,
            CaseState::Approved
        )
    );
    assert!(history[0].decided_at <= history[1].decided_at);
    let reasons: Vec<_> = store
        .reviews(rejected)
        .await
        .unwrap()
        .iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(reasons, [Some(RejectReason::PlateUnreadable)]);

    // Each decision is audited with who and when, chained on its own.
    let audit = store.case_audit(corrected).await.unwrap();
    let reviewed: Vec<&AuditEntry> = audit.iter().filter(|a| a.action == CASE_REVIEWED).collect();
    assert_eq!(reviewed.len(), 2);
    assert_eq!(reviewed[0].actor, "officer-1");
    assert_eq!(reviewed[1].actor, "supervisor-1");
    assert_eq!(reviewed[1].to_state, Some(CaseState::Approved));
    assert!(reviewed[0]
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("01KG128ABC")));
    for row in reviewed {
        assert_chained_alone(row);
    }
}

async fn a_stale_review_writes_nothing(store: Arc<dyn Store>) {
    let ids = reviewable(&*store, 2).await;
    let case = ids[1];
    // Two reviewers decide the same case at once: exactly one is recorded.
    let a = review(
        case,
        ReviewTier::First,
        CaseState::NeedsReview,
        CaseState::Approved,
    );
    let mut b = a.clone();
    b.reviewer = "officer-2".to_owned();
    b.to_state = CaseState::SupervisorReview;
    let (ra, rb) = tokio::join!(store.record_review(&a), store.record_review(&b));
    let mut results = [ra.unwrap(), rb.unwrap()];
    results.sort_by_key(|r| matches!(r, ReviewWrite::Recorded));
    assert!(
        matches!(results[0], ReviewWrite::StateChanged(Some(_))),
        "{results:?}"
    );
    assert_eq!(results[1], ReviewWrite::Recorded);
    assert_eq!(store.reviews(case).await.unwrap().len(), 1);

    // From a state the case is not in, and for a case that does not exist.
    let stale = review(
        ids[0],
        ReviewTier::First,
        CaseState::NeedsReview,
        CaseState::Approved,
    );
    assert_eq!(
        store.record_review(&stale).await.unwrap(),
        ReviewWrite::StateChanged(Some(CaseState::Recognized))
    );
    let missing = review(
        CaseId(9_999_999),
        ReviewTier::First,
        CaseState::NeedsReview,
        CaseState::Approved,
    );
    assert_eq!(
        store.record_review(&missing).await.unwrap(),
        ReviewWrite::StateChanged(None)
    );

    // A rejection without its reason breaks a constraint and leaves the case as it was.
    let mut bare = review(
        ids[0],
        ReviewTier::First,
        CaseState::Recognized,
        CaseState::Rejected,
    );
    bare.decision = ReviewDecision::Reject;
    assert!(store.record_review(&bare).await.is_err());
    assert_eq!(
        store.case(ids[0]).await.unwrap().unwrap().state,
        CaseState::Recognized
    );
    assert!(store.reviews(ids[0]).await.unwrap().is_empty());
    let audit = store.case_audit(ids[0]).await.unwrap();
    assert!(audit.iter().all(|a| a.action != CASE_REVIEWED));

    // Decided on a move that is no longer the case's latest (it moved since, if only
    // back to the same state): nothing is written; on the latest, the review is.
    let case = ids[0];
    let latest = store
        .case_audit(case)
        .await
        .unwrap()
        .iter()
        .rev()
        .find(|a| a.to_state.is_some())
        .map(|a| a.id)
        .expect("the recognition moved the case");
    let mut on_older = review(
        case,
        ReviewTier::First,
        CaseState::Recognized,
        CaseState::Approved,
    );
    on_older.seen_move = Some(latest - 1);
    assert_eq!(
        store.record_review(&on_older).await.unwrap(),
        ReviewWrite::MovedSince(Some(latest))
    );
    assert_eq!(
        store.case(case).await.unwrap().unwrap().state,
        CaseState::Recognized
    );
    assert!(store.reviews(case).await.unwrap().is_empty());
    on_older.seen_move = Some(latest);
    assert_eq!(
        store.record_review(&on_older).await.unwrap(),
        ReviewWrite::Recorded
    );
}

// ---- the stages after review --------------------------------------------------------

/// Cases already approved by the machine, oldest first.
async fn approved(store: &dyn Store, n: usize) -> Vec<CaseId> {
    let ids = reviewable(store, n).await;
    for (i, id) in ids.iter().enumerate() {
        let from = if i == 0 {
            CaseState::Recognized
        } else {
            CaseState::NeedsReview
        };
        let decision = review(*id, ReviewTier::First, from, CaseState::Approved);
        assert_eq!(
            store.record_review(&decision).await.unwrap(),
            ReviewWrite::Recorded
        );
    }
    ids
}

fn person() -> kozomol_core::OwnerOfRecord {
    kozomol_core::OwnerOfRecord {
        kind: kozomol_core::OwnerKind::Person,
        id: "21212198000123".to_owned(),
        name: "Асанов Бакыт Токтогулович".to_owned(),
        address: Some("Бишкек, ул. Киевская 96".to_owned()),
    }
}

fn lookup(
    case_id: CaseId,
    outcome: kozomol_core::OwnerOutcome,
) -> kozomol_store::OwnerLookupRecord {
    let found = outcome == kozomol_core::OwnerOutcome::Found;
    kozomol_store::OwnerLookupRecord {
        case_id,
        outcome,
        owner: found.then(person),
        vehicle: serde_json::json!({"make": "Toyota", "model": "Camry", "colour": "белый"}),
        registry_owner: if found {
            serde_json::json!({"kind": "person", "birth_date": "1980-12-21"})
        } else {
            serde_json::Value::Null
        },
        reason: (!found).then(|| format!("registry: {}", outcome.as_str())),
        exchange_id: Some(Uuid::now_v7().to_string()),
        looked_up_at: at_millis(Utc::now()),
    }
}

fn at_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

async fn owner_lookups_move_approved_cases_once(store: Arc<dyn Store>) {
    use kozomol_core::OwnerOutcome;
    let ids = approved(&*store, 3).await;
    let claimed = store
        .claim_stage(CaseState::Approved, "f1", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(claimed, ids);
    // Held: nobody else takes them; nothing waits in the next stage yet.
    assert!(store
        .claim_stage(CaseState::Approved, "f2", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_stage(CaseState::OwnerFound, "f2", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());

    let found = lookup(ids[0], OwnerOutcome::Found);
    assert_eq!(
        store.record_owner_lookup("f2", &found).await.unwrap(),
        CompleteResult::LeaseLost
    );
    assert_eq!(
        store.record_owner_lookup("f1", &found).await.unwrap(),
        CompleteResult::Completed
    );
    // Done once: the same completion again finds no lease.
    assert_eq!(
        store.record_owner_lookup("f1", &found).await.unwrap(),
        CompleteResult::LeaseLost
    );
    let unknown = lookup(ids[1], OwnerOutcome::SeveralOwners);
    assert_eq!(
        store.record_owner_lookup("f1", &unknown).await.unwrap(),
        CompleteResult::Completed
    );
    // A found outcome without an owner is refused before anything is written.
    let mut broken = lookup(ids[2], OwnerOutcome::Found);
    broken.owner = None;
    assert!(store.record_owner_lookup("f1", &broken).await.is_err());
    assert_eq!(
        store.case(ids[2]).await.unwrap().unwrap().state,
        CaseState::Approved
    );

    assert_eq!(
        store.case(ids[0]).await.unwrap().unwrap().state,
        CaseState::OwnerFound
    );
    assert_eq!(
        store.case(ids[1]).await.unwrap().unwrap().state,
        CaseState::OwnerUnknown
    );
    assert_eq!(
        store.owner_lookup(ids[0]).await.unwrap().as_ref(),
        Some(&found)
    );
    assert_eq!(
        store.owner_lookup(ids[1]).await.unwrap().as_ref(),
        Some(&unknown)
    );
    assert_eq!(store.owner_lookup(ids[2]).await.unwrap(), None);
    // A page of cases in one read: those without a lookup are left out.
    let mut batch = store.owner_lookups(&ids).await.unwrap();
    batch.sort_by_key(|l| l.case_id);
    assert_eq!(batch, vec![found.clone(), unknown.clone()]);
    assert!(store.owner_lookups(&[]).await.unwrap().is_empty());
    assert_eq!(
        store
            .claim_stage(CaseState::OwnerFound, "f2", 10, LONG_LEASE)
            .await
            .unwrap(),
        [ids[0]]
    );

    // Audited without the owner's personal data.
    let audit = store.case_audit(ids[0]).await.unwrap();
    let row = audit
        .iter()
        .find(|a| a.action == "case.owner_looked_up")
        .expect("audited");
    assert_eq!(
        (row.from_state, row.to_state),
        (Some(CaseState::Approved), Some(CaseState::OwnerFound))
    );
    assert_eq!(row.actor, "fines:f1");
    assert!(!row.detail.as_deref().unwrap_or("").contains("Асанов"));
    assert_chained_alone(row);

    // A case the stage cannot finish is handed to a person, with the reason.
    let reason = "article 596.3 imposes a licence suspension, not a fine";
    let aside = |worker| {
        store.set_aside(
            worker,
            ids[2],
            CaseState::Approved,
            CaseState::SupervisorReview,
            reason,
        )
    };
    assert_eq!(aside("f2").await.unwrap(), CompleteResult::LeaseLost);
    assert_eq!(aside("f1").await.unwrap(), CompleteResult::Completed);
    assert_eq!(aside("f1").await.unwrap(), CompleteResult::LeaseLost);
    assert_eq!(
        store.case(ids[2]).await.unwrap().unwrap().state,
        CaseState::SupervisorReview
    );
    let audit = store.case_audit(ids[2]).await.unwrap();
    let row = audit
        .iter()
        .find(|a| a.action == "case.set_aside")
        .expect("audited");
    assert_eq!(row.detail.as_deref(), Some(reason));
    assert_chained_alone(row);
}

async fn resolution_numbers_are_reserved_once_and_issued(store: Arc<dyn Store>) {
    use kozomol_core::{Currency, Jurisdiction, Money, OwnerOutcome};
    let ids = approved(&*store, 3).await;
    store
        .claim_stage(CaseState::Approved, "f1", 10, LONG_LEASE)
        .await
        .unwrap();
    for id in &ids {
        let found = lookup(*id, OwnerOutcome::Found);
        assert_eq!(
            store.record_owner_lookup("f1", &found).await.unwrap(),
            CompleteResult::Completed
        );
    }

    // Numbers per issuer and year from 1; a case keeps its own.
    let a = store
        .reserve_resolution_number(ids[0], "BSK", 2026)
        .await
        .unwrap();
    let b = store
        .reserve_resolution_number(ids[1], "BSK", 2026)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 2));
    assert_eq!(
        store
            .reserve_resolution_number(ids[0], "BSK", 2026)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .reserve_resolution_number(ids[2], "OSH", 2026)
            .await
            .unwrap(),
        1
    );
    // Concurrent reservations never share a number.
    let more = approved(&*store, 4).await;
    let (x, y) = tokio::join!(
        store.reserve_resolution_number(more[1], "BSK", 2026),
        store.reserve_resolution_number(more[2], "BSK", 2026)
    );
    let mut got = [x.unwrap(), y.unwrap()];
    got.sort();
    assert_eq!(got, [3, 4]);
    // A batch reserves in its own order and keeps what a case already has.
    let batch = store
        .reserve_resolution_numbers(&[more[0], more[1], more[3]], "BSK", 2026)
        .await
        .unwrap();
    let kept = store
        .reserve_resolution_number(more[1], "BSK", 2026)
        .await
        .unwrap();
    assert_eq!(batch, vec![5, kept, 6]);
    // Not issued by the new year: the case takes a number of the year it is issued in
    // (the old one is given up), and keeps that one.
    for _ in 0..2 {
        assert_eq!(
            store
                .reserve_resolution_numbers(&[more[3]], "BSK", 2027)
                .await
                .unwrap(),
            vec![1]
        );
    }

    let claimed = store
        .claim_stage(CaseState::OwnerFound, "f1", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(claimed, ids);
    let resolution = |case: CaseId, number: &str, code: &str| kozomol_store::NewResolution {
        number: number.to_owned(),
        case_id: case,
        payment_code: code.to_owned(),
        jurisdiction: Jurisdiction::Kg,
        article: "red light".to_owned(),
        units: 50,
        amount: Money::new(500_000, Currency::KGS),
        discounted: Some(Money::new(250_000, Currency::KGS)),
        issued_at: at_millis(Utc::now()),
        pdf: EvidenceRef {
            sha256: sha(number),
            location: FrameLocation {
                segment: "seg-res-0000000001.kzs".to_owned(),
                // Each PDF its own place, as each is stored anew.
                offset: u64::from(u32::from_le_bytes(sha(number)[..4].try_into().unwrap()))
                    * 100_000,
                len: 61_234,
            },
        },
        signature: vec![7; 64],
        signature_key_id: "0011223344556677".to_owned(),
        signer: "issuer:KG-BSK".to_owned(),
        repeat_of: None,
    };
    let first = resolution(ids[0], "KG-BSK-2026-0000001", "111260010000000014");
    assert_eq!(
        store.record_resolution("f2", &first).await.unwrap(),
        CompleteResult::LeaseLost
    );
    assert_eq!(
        store.record_resolution("f1", &first).await.unwrap(),
        CompleteResult::Completed
    );
    assert_eq!(
        store.case(ids[0]).await.unwrap().unwrap().state,
        CaseState::Issued
    );
    // A payment code is never given twice; the refused case stays where it was.
    let clash = resolution(ids[1], "KG-BSK-2026-0000002", "111260010000000014");
    assert!(matches!(
        store.record_resolution("f1", &clash).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store.case(ids[1]).await.unwrap().unwrap().state,
        CaseState::OwnerFound
    );
    // A batch is one transaction: a clash anywhere in it writes none of it; a case
    // the worker no longer holds is skipped and the rest are written.
    let second = resolution(ids[1], "KG-BSK-2026-0000002", "111260010000000022");
    let third = resolution(ids[2], "KG-OSH-2026-0000001", "111260020000000030");
    let clashing_third = resolution(ids[2], "KG-OSH-2026-0000001", "111260010000000014");
    assert!(matches!(
        store
            .record_resolutions("f1", &[second.clone(), clashing_third])
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store.case(ids[1]).await.unwrap().unwrap().state,
        CaseState::OwnerFound
    );
    let gone = resolution(ids[0], "KG-BSK-2026-0000099", "111260010000000099");
    let unkept_pdf = gone.pdf.location.clone();
    assert_eq!(
        store
            .record_resolutions("f1", &[second.clone(), gone, third, second])
            .await
            .unwrap(),
        // A case given twice is recorded once, as one at a time would.
        vec![
            CompleteResult::Completed,
            CompleteResult::LeaseLost,
            CompleteResult::Completed,
            CompleteResult::LeaseLost
        ]
    );
    for id in [ids[1], ids[2]] {
        assert_eq!(
            store.case(id).await.unwrap().unwrap().state,
            CaseState::Issued
        );
    }
    assert_eq!(store.resolution("KG-BSK-2026-0000099").await.unwrap(), None);
    // The PDF of a resolution whose case was no longer f1's is queued for overwriting;
    // the first one, given up by f2 and then recorded by f1, is its resolution's and
    // stays.
    assert_eq!(
        erasures_queued(store.as_ref()).await,
        vec![(sha("KG-BSK-2026-0000099"), unkept_pdf)]
    );

    let stored = store
        .resolution("KG-BSK-2026-0000001")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (
            stored.case_id,
            stored.payment_code.as_str(),
            stored.units,
            stored.amount,
            stored.discounted
        ),
        (
            ids[0],
            "111260010000000014",
            50,
            first.amount,
            first.discounted
        )
    );
    assert_eq!(
        (stored.pdf_sha256, &stored.pdf_location),
        (first.pdf.sha256, &first.pdf.location)
    );
    assert_eq!(
        (stored.signature.as_slice(), stored.signer.as_str()),
        (&[7u8; 64][..], "issuer:KG-BSK")
    );
    assert_eq!(stored.issued_at, first.issued_at);
    assert_eq!(
        store.resolution_of_case(ids[0]).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store
            .resolutions_of_cases(&[ids[0], CaseId(987_654)])
            .await
            .unwrap(),
        vec![stored]
    );
    assert_eq!(store.resolution("KG-BSK-2026-0000009").await.unwrap(), None);
    assert!(store
        .known_frames(&[first.pdf.sha256])
        .await
        .unwrap()
        .contains(&first.pdf.sha256));

    let audit = store.case_audit(ids[0]).await.unwrap();
    let row = audit
        .iter()
        .find(|a| a.action == "case.resolution_issued")
        .expect("audited");
    assert_eq!(row.to_state, Some(CaseState::Issued));
    assert!(row
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("KG-BSK-2026-0000001")));
    assert_chained_alone(row);
}

// ---- the delivery outbox -------------------------------------------------------------

fn owner(id: &str, address: Option<&str>) -> kozomol_core::OwnerOfRecord {
    kozomol_core::OwnerOfRecord {
        id: id.to_owned(),
        address: address.map(str::to_owned),
        ..person()
    }
}

fn contact(owner_id: &str, channel: DeliveryChannel, raw: &str) -> NewContact {
    NewContact {
        owner_id: owner_id.to_owned(),
        address: ContactAddress::parse(channel, raw).unwrap(),
        added_by: "clerk-1".to_owned(),
        plate_key: None,
    }
}

fn new_resolution(case: CaseId) -> kozomol_store::NewResolution {
    use kozomol_core::{Currency, Jurisdiction, Money};
    let number = format!("KG-BSK-2026-{:07}", case.0);
    kozomol_store::NewResolution {
        number: number.clone(),
        case_id: case,
        payment_code: format!("{:018}", 111_260_010_000_000_000 + case.0),
        jurisdiction: Jurisdiction::Kg,
        article: "speeding".to_owned(),
        units: 50,
        amount: Money::new(500_000, Currency::KGS),
        discounted: Some(Money::new(250_000, Currency::KGS)),
        issued_at: at_millis(Utc::now()),
        pdf: EvidenceRef {
            sha256: sha(&number),
            location: FrameLocation {
                segment: "seg-res-0000000001.kzs".to_owned(),
                offset: 40 + 100_000 * case.0 as u64,
                len: 61_234,
            },
        },
        signature: vec![7; 64],
        signature_key_id: "0011223344556677".to_owned(),
        signer: "issuer:KG-BSK".to_owned(),
        repeat_of: None,
    }
}

/// `n` cases of `owner` taken through the owner lookup and issued; their resolution
/// numbers, oldest first.
async fn issued(store: &dyn Store, n: usize, owner: &kozomol_core::OwnerOfRecord) -> Vec<String> {
    let ids = approved(store, n).await;
    store
        .claim_stage(CaseState::Approved, "f1", n as u32, LONG_LEASE)
        .await
        .unwrap();
    for id in &ids {
        let mut found = lookup(*id, kozomol_core::OwnerOutcome::Found);
        found.owner = Some(owner.clone());
        assert_eq!(
            store.record_owner_lookup("f1", &found).await.unwrap(),
            CompleteResult::Completed
        );
    }
    store
        .claim_stage(CaseState::OwnerFound, "f1", n as u32, LONG_LEASE)
        .await
        .unwrap();
    let mut numbers = Vec::new();
    for id in &ids {
        store
            .reserve_resolution_number(*id, "BSK", 2026)
            .await
            .unwrap();
        let resolution = new_resolution(*id);
        assert_eq!(
            store.record_resolution("f1", &resolution).await.unwrap(),
            CompleteResult::Completed
        );
        numbers.push(resolution.number);
    }
    numbers
}

fn by_channel(deliveries: &[DeliveryRecord], channel: DeliveryChannel) -> &DeliveryRecord {
    deliveries
        .iter()
        .find(|d| d.channel == channel)
        .unwrap_or_else(|| panic!("no {channel} delivery in {deliveries:?}"))
}

fn sent(external_id: &str, check_after: Option<std::time::Duration>) -> AttemptOutcome {
    AttemptOutcome::Sent {
        external_id: Some(external_id.to_owned()),
        proof: serde_json::json!({"gateway": "accepted", "id": external_id}),
        check_after,
    }
}

fn failed(retry_after: Option<std::time::Duration>) -> AttemptOutcome {
    AttemptOutcome::Failed {
        error: "gateway: 503 service unavailable".to_owned(),
        retry_after,
    }
}

async fn subscriptions_queue_a_notice_of_each_new_resolution(store: Arc<dyn Store>) {
    use kozomol_store::{notice_address, NewSubscription, Subscribed, Unsubscribed};
    let portal = "central-server/GOV/70000001/portal";
    let bank = "central-server/COM/10000001/payments";
    let asanov = owner("21212198000123", None);
    // The reviews in these tests decide 01KG123ABC; its key drops the KG.
    let subscription = |client: &str, pin: &str, plate: &str, number: &str| NewSubscription {
        client: client.to_owned(),
        pin: pin.to_owned(),
        plate: plate.to_owned(),
        plate_key: plate.replace("KG", ""),
        unique_number: number.to_owned(),
        xroad_id: format!("msg-{number}"),
    };
    let Subscribed::Created(created) = store
        .subscribe(&subscription(portal, &asanov.id, "01123ABC", "sub-1"))
        .await
        .unwrap()
    else {
        panic!("a new subscription is created");
    };
    assert_eq!(
        (created.client.as_str(), created.unique_number.as_str()),
        (portal, "sub-1")
    );
    // The same client, owner and plate (spelt with its KG) again, under any number:
    // the one it has.
    assert_eq!(
        store
            .subscribe(&subscription(portal, &asanov.id, "01KG123ABC", "sub-2"))
            .await
            .unwrap(),
        Subscribed::Exists(created.clone())
    );
    // Another owner's and another plate of the owner's get no notice; another system
    // subscribed to the same owner and plate does.
    for (client, pin, plate, number) in [
        (portal, "10101199900011", "01KG123ABC", "sub-3"),
        (portal, asanov.id.as_str(), "01KG999ZZZ", "sub-4"),
        (bank, asanov.id.as_str(), "01KG123ABC", "b-1"),
    ] {
        store
            .subscribe(&subscription(client, pin, plate, number))
            .await
            .unwrap();
    }
    let bank_id = match store
        .subscribe(&subscription(bank, &asanov.id, "01KG123ABC", "b-1"))
        .await
        .unwrap()
    {
        Subscribed::Exists(record) => record.id,
        other => panic!("{other:?}"),
    };

    // Each subscribed system gets a notice of the owner's resolution, in the outbox,
    // addressed by its subscription.
    let numbers = issued(&*store, 1, &asanov).await;
    let planned = store.deliveries(&numbers[0]).await.unwrap();
    let mut notices: Vec<(String, DeliveryState)> = planned
        .iter()
        .filter(|d| d.channel == DeliveryChannel::Portal)
        .map(|d| (d.address.clone(), d.state))
        .collect();
    notices.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (notice_address(created.id), DeliveryState::Queued),
        (notice_address(bank_id), DeliveryState::Queued),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(notices, expected, "{planned:?}");
    assert_eq!(
        store.subscription(created.id).await.unwrap(),
        Some(created.clone())
    );

    // Unsubscribing needs the number it was made under; then its notice has no
    // subscription to go to.
    let unsubscribe = |number: &'static str| {
        let store = Arc::clone(&store);
        let pin = asanov.id.clone();
        async move {
            store
                .unsubscribe(portal, &pin, "01123ABC", number)
                .await
                .unwrap()
        }
    };
    assert_eq!(unsubscribe("sub-2").await, Unsubscribed::NotFound);
    assert_eq!(
        unsubscribe("sub-1").await,
        Unsubscribed::Ended(created.clone())
    );
    assert_eq!(unsubscribe("sub-1").await, Unsubscribed::NotFound);
    assert_eq!(store.subscription(created.id).await.unwrap(), None);
    // A later resolution of the owner goes to the system still subscribed alone.
    let later = issued(&*store, 1, &asanov).await;
    let notices: Vec<String> = store
        .deliveries(&later[0])
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.channel == DeliveryChannel::Portal)
        .map(|d| d.address)
        .collect();
    assert_eq!(notices, [notice_address(bank_id)]);

    // The newest subscription ends and another begins: it never takes the ended one's
    // id, which that resolution's queued notice is addressed to.
    assert!(matches!(
        store
            .unsubscribe(bank, &asanov.id, "01123ABC", "b-1")
            .await
            .unwrap(),
        Unsubscribed::Ended(_)
    ));
    let Subscribed::Created(next) = store
        .subscribe(&subscription(
            portal,
            "30303199700033",
            "01KG555XYZ",
            "sub-5",
        ))
        .await
        .unwrap()
    else {
        panic!("a new subscription is created");
    };
    assert!(next.id > bank_id, "{} after {bank_id}", next.id);
    assert_eq!(store.subscription(bank_id).await.unwrap(), None);
}

async fn portal_contacts_wait_for_their_code_and_serve_one_vehicle(store: Arc<dyn Store>) {
    let asanov = owner("21212198000123", Some("Бишкек, ул. Киевская 96"));
    // The issued cases' plate is 01KG123ABC: its key 01123ABC.
    let first = issued(&*store, 1, &asanov).await;
    let request =
        |handle: &str, plate_key: Option<&str>, phone: &str, minutes: i64| NewContactConfirmation {
            handle: handle.to_owned(),
            resolution_number: first[0].clone(),
            contact: NewContact {
                plate_key: plate_key.map(str::to_owned),
                added_by: "portal".to_owned(),
                ..contact(&asanov.id, DeliveryChannel::Sms, phone)
            },
            code_sha256: format!("right-{handle}"),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(minutes),
        };
    let sms_to = |deliveries: Vec<DeliveryRecord>| -> Vec<String> {
        deliveries
            .into_iter()
            .filter(|d| d.channel == DeliveryChannel::Sms)
            .map(|d| d.address)
            .collect()
    };
    assert_eq!(
        store
            .confirm_contact(&first[0], "h1", "right-h1", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Unknown
    );
    store
        .request_contact_confirmation(&request("h1", Some("01123ABC"), "+996555000111", 15))
        .await
        .unwrap();
    // Nothing is stored before the code comes back.
    assert!(store.contacts(&asanov.id).await.unwrap().is_empty());
    // Only under the fine it was asked for.
    assert_eq!(
        store
            .confirm_contact("KG-BSK-2026-9999999", "h1", "right-h1", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Unknown
    );
    assert_eq!(
        store
            .confirm_contact(&first[0], "h1", "wrong", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::WrongCode { tries_left: 4 }
    );
    assert!(matches!(
        store
            .confirm_contact(&first[0], "h1", "right-h1", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Confirmed(ContactAdded::Added { planned: 1, .. })
    ));
    // Used once: a second use is refused.
    assert_eq!(
        store
            .confirm_contact(&first[0], "h1", "right-h1", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Lapsed
    );
    let contacts = store.contacts(&asanov.id).await.unwrap();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(
        (
            contacts[0].plate_key.as_deref(),
            contacts[0].added_by.as_str()
        ),
        (Some("01123ABC"), "portal")
    );
    // The undelivered resolution of that vehicle goes to it at once.
    assert_eq!(
        sms_to(store.deliveries(&first[0]).await.unwrap()),
        ["+996555000111"]
    );
    // A contact confirmed for another vehicle of the owner gets none of this one's.
    store
        .request_contact_confirmation(&request("h2", Some("02999XYZ"), "+996555000222", 15))
        .await
        .unwrap();
    assert!(matches!(
        store
            .confirm_contact(&first[0], "h2", "right-h2", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Confirmed(ContactAdded::Added { planned: 0, .. })
    ));
    // Out of tries: the right code no longer helps.
    store
        .request_contact_confirmation(&request("h3", Some("01123ABC"), "+996555000333", 15))
        .await
        .unwrap();
    for left in (0..5).rev() {
        assert_eq!(
            store
                .confirm_contact(&first[0], "h3", "wrong", "portal:10.0.0.9")
                .await
                .unwrap(),
            ContactConfirmed::WrongCode { tries_left: left }
        );
    }
    assert_eq!(
        store
            .confirm_contact(&first[0], "h3", "right-h3", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Lapsed
    );
    // Expired: the same.
    store
        .request_contact_confirmation(&request("h4", Some("01123ABC"), "+996555000444", -1))
        .await
        .unwrap();
    assert_eq!(
        store
            .confirm_contact(&first[0], "h4", "right-h4", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Lapsed
    );
    // A portal contact names its vehicle.
    assert!(matches!(
        store
            .request_contact_confirmation(&request("h5", None, "+996555000555", 15))
            .await,
        Err(StoreError::Invalid(_))
    ));
    // An address is sent three codes an hour, whoever asks.
    for (n, kept) in [
        CodeRequest::Kept,
        CodeRequest::Kept,
        CodeRequest::Kept,
        CodeRequest::AddressBusy,
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            store
                .request_contact_confirmation(&request(
                    &format!("busy-{n}"),
                    Some("01123ABC"),
                    "+996555000666",
                    15
                ))
                .await
                .unwrap(),
            kept
        );
    }
    assert_eq!(
        store
            .confirm_contact(&first[0], "busy-3", "right-busy-3", "portal:10.0.0.9")
            .await
            .unwrap(),
        ContactConfirmed::Unknown
    );
    // Each confirmation is audited: who, which fine, which channel; never the address.
    let confirmed: Vec<_> = store
        .audit_rows(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.action == kozomol_store::audit::CONTACT_CONFIRMED)
        .collect();
    assert_eq!(confirmed.len(), 2, "{confirmed:?}");
    assert!(confirmed.iter().all(|row| row.actor == "portal:10.0.0.9"
        && !row.detail.as_deref().unwrap_or_default().contains("+996")));
    // A desk officer takes the same number for every vehicle of the owner: the next
    // resolution sends it one text, not two.
    store
        .add_contact(&contact(&asanov.id, DeliveryChannel::Sms, "+996555000111"))
        .await
        .unwrap();
    assert_eq!(store.contacts(&asanov.id).await.unwrap().len(), 3);
    let later = issued(&*store, 1, &asanov).await;
    assert_eq!(
        sms_to(store.deliveries(&later[0]).await.unwrap()),
        ["+996555000111"]
    );
}

async fn deliveries_are_planned_with_the_resolution_and_claimed_once(store: Arc<dyn Store>) {
    let asanov = owner("21212198000123", Some("  Бишкек, ул. Киевская 96  "));
    let phone = contact(&asanov.id, DeliveryChannel::Sms, "+996 555 123 456");
    assert!(matches!(
        store.add_contact(&phone).await.unwrap(),
        ContactAdded::Added { planned: 0, .. }
    ));
    store
        .add_contact(&contact(
            &asanov.id,
            DeliveryChannel::Email,
            "Asanov@Mail.KG",
        ))
        .await
        .unwrap();
    // The same contact twice is one contact.
    assert!(matches!(
        store.add_contact(&phone).await.unwrap(),
        ContactAdded::AlreadyKnown { .. }
    ));
    let contacts = store.contacts(&asanov.id).await.unwrap();
    assert_eq!(
        contacts
            .iter()
            .map(|c| (c.channel, c.address.as_str(), c.added_by.as_str()))
            .collect::<Vec<_>>(),
        [
            (DeliveryChannel::Sms, "+996555123456", "clerk-1"),
            (DeliveryChannel::Email, "asanov@mail.kg", "clerk-1"),
        ]
    );
    assert!(store.contacts("nobody").await.unwrap().is_empty());

    // Issuing plans a letter to the lookup's address and a message per contact.
    let numbers = issued(&*store, 1, &asanov).await;
    let planned = store.deliveries(&numbers[0]).await.unwrap();
    assert_eq!(planned.len(), 3, "{planned:?}");
    assert_eq!(
        by_channel(&planned, DeliveryChannel::Post).address,
        "Бишкек, ул. Киевская 96"
    );
    assert_eq!(
        by_channel(&planned, DeliveryChannel::Sms).address,
        "+996555123456"
    );
    for d in &planned {
        assert_eq!(
            (d.state, d.attempts, d.delivered_at),
            (DeliveryState::Queued, 0, None)
        );
        assert!(d.next_attempt_at.is_some());
    }
    // An owner without an address on file gets no letter.
    let nomad = owner("10101199900011", None);
    let other = issued(&*store, 1, &nomad).await;
    assert!(store.deliveries(&other[0]).await.unwrap().is_empty());

    // One claim takes a row; nobody else gets it while the lease lives.
    let jobs = store
        .claim_deliveries(DeliveryChannel::Sms, "d1", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        (
            job.resolution_number.as_str(),
            job.address.as_str(),
            job.attempt
        ),
        (numbers[0].as_str(), "+996555123456", 1)
    );
    assert!(store
        .claim_deliveries(DeliveryChannel::Sms, "d2", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .claim_deliveries(DeliveryChannel::Post, "d2", 10, LONG_LEASE)
            .await
            .unwrap()
            .len(),
        1
    );

    // Only the holder renews its lease before a send.
    assert!(store
        .renew_delivery_lease("d1", job.id, LONG_LEASE)
        .await
        .unwrap());
    assert!(!store
        .renew_delivery_lease("d2", job.id, LONG_LEASE)
        .await
        .unwrap());

    // Only the holder records the attempt.
    let check = std::time::Duration::ZERO;
    assert_eq!(
        store
            .record_attempt("d2", job.id, &sent("m-1", Some(check)), 5)
            .await
            .unwrap(),
        AttemptResult::LeaseLost
    );
    assert_eq!(
        store
            .record_attempt("d1", job.id, &sent("m-1", Some(check)), 5)
            .await
            .unwrap(),
        AttemptResult::Sent
    );
    let row = store.delivery(job.id).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.external_id.as_deref()),
        (DeliveryState::Sent, Some("m-1"))
    );
    assert!(row.sent_at.is_some());
    // Sent: no lease is left to renew.
    assert!(!store
        .renew_delivery_lease("d1", job.id, LONG_LEASE)
        .await
        .unwrap());
    assert_eq!(row.proof.as_ref().unwrap()["gateway"], "accepted");

    // A sent message waits for its status check, then for the next one.
    let checks = store
        .claim_unconfirmed(DeliveryChannel::Sms, "d1", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].external_id.as_deref(), Some("m-1"));
    assert_eq!(checks[0].attempt, 1, "a status check is not an attempt");
    // Held: a second checker gets nothing, and the row cannot be sent twice.
    assert!(store
        .claim_unconfirmed(DeliveryChannel::Sms, "d2", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store
            .record_attempt("d1", job.id, &sent("m-2", None), 5)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store
            .check_later("d2", job.id, Some(LONG_LEASE), "")
            .await
            .unwrap(),
        CompleteResult::LeaseLost
    );
    assert_eq!(
        store
            .check_later("d1", job.id, Some(LONG_LEASE), "")
            .await
            .unwrap(),
        CompleteResult::Completed
    );
    assert!(store
        .claim_unconfirmed(DeliveryChannel::Sms, "d1", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());

    // A contact added after issuing is planned for the undelivered resolution.
    assert!(matches!(
        store
            .add_contact(&contact(&asanov.id, DeliveryChannel::Sms, "+996700000001"))
            .await
            .unwrap(),
        ContactAdded::Added { planned: 1, .. }
    ));
    assert_eq!(store.deliveries(&numbers[0]).await.unwrap().len(), 4);
    let attempts = store.delivery_attempts(job.id).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.outcome, a.attempt, a.actor.as_str()))
            .collect::<Vec<_>>(),
        [(AttemptKind::Sent, 1, "fines:d1")]
    );
}

async fn failed_attempts_retry_after_a_delay_then_give_up(store: Arc<dyn Store>) {
    let asanov = owner("21212198000123", None);
    store
        .add_contact(&contact(&asanov.id, DeliveryChannel::Sms, "+996555123456"))
        .await
        .unwrap();
    store
        .add_contact(&contact(&asanov.id, DeliveryChannel::Email, "a@mail.kg"))
        .await
        .unwrap();
    let numbers = issued(&*store, 1, &asanov).await;
    let deliveries = store.deliveries(&numbers[0]).await.unwrap();
    let sms = by_channel(&deliveries, DeliveryChannel::Sms).id;

    let mut last_due = None;
    for attempt in 1..=3u32 {
        let jobs = store
            .claim_deliveries(DeliveryChannel::Sms, "d1", 10, LONG_LEASE)
            .await
            .unwrap();
        assert_eq!(
            jobs.iter().map(|j| (j.id, j.attempt)).collect::<Vec<_>>(),
            [(sms, attempt)]
        );
        if attempt > 1 {
            assert_eq!(
                jobs[0].last_error.as_deref(),
                Some("gateway: 503 service unavailable")
            );
        }
        let result = store
            .record_attempt("d1", sms, &failed(Some(SHORT_LEASE)), 3)
            .await
            .unwrap();
        let row = store.delivery(sms).await.unwrap().unwrap();
        if attempt < 3 {
            assert_eq!(result, AttemptResult::WillRetry { attempts: attempt });
            assert_eq!(row.state, DeliveryState::Queued);
            let due = row.next_attempt_at.unwrap();
            assert!(last_due.is_none_or(|before| due > before));
            last_due = Some(due);
            // Not due before its delay has passed.
            assert!(store
                .claim_deliveries(DeliveryChannel::Sms, "d1", 10, LONG_LEASE)
                .await
                .unwrap()
                .is_empty());
            outlast(SHORT_LEASE).await;
        } else {
            assert_eq!(result, AttemptResult::GaveUp { attempts: 3 });
            assert_eq!(
                (row.state, row.next_attempt_at),
                (DeliveryState::Failed, None)
            );
        }
    }
    assert!(store
        .claim_deliveries(DeliveryChannel::Sms, "d1", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
    let attempts = store.delivery_attempts(sms).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.outcome))
            .collect::<Vec<_>>(),
        [
            (1, AttemptKind::Failed),
            (2, AttemptKind::Failed),
            (3, AttemptKind::Failed)
        ]
    );

    // The e-mail was untouched. Its channel down, an attempt is recorded but not
    // counted, and the delivery waits for its delay.
    let email = store
        .claim_deliveries(DeliveryChannel::Email, "d1", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(email.len(), 1);
    let deferred = AttemptOutcome::Deferred {
        error: "smtp: connection refused".to_owned(),
        retry_after: SHORT_LEASE,
    };
    assert_eq!(
        store
            .record_attempt("d1", email[0].id, &deferred, 1)
            .await
            .unwrap(),
        AttemptResult::Deferred { attempts: 0 }
    );
    let row = store.delivery(email[0].id).await.unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (DeliveryState::Queued, 0));
    assert_eq!(row.last_error.as_deref(), Some("smtp: connection refused"));
    assert_eq!(
        store
            .delivery_attempts(email[0].id)
            .await
            .unwrap()
            .iter()
            .map(|a| (a.attempt, a.outcome))
            .collect::<Vec<_>>(),
        [(1, AttemptKind::Failed)]
    );
    assert!(store
        .claim_deliveries(DeliveryChannel::Email, "d1", 10, SHORT_LEASE)
        .await
        .unwrap()
        .is_empty());
    outlast(SHORT_LEASE).await;

    // Refused for good, it gives up at the first counted attempt.
    let email = store
        .claim_deliveries(DeliveryChannel::Email, "d1", 10, SHORT_LEASE)
        .await
        .unwrap();
    assert_eq!(email.len(), 1);
    assert_eq!(email[0].attempt, 1);
    // A lease that ran out is taken over; the first worker can no longer record.
    outlast(SHORT_LEASE).await;
    let again = store
        .claim_deliveries(DeliveryChannel::Email, "d2", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|j| (j.id, j.attempt)).collect::<Vec<_>>(),
        [(email[0].id, 2)]
    );
    assert_eq!(
        store
            .record_attempt("d1", email[0].id, &failed(None), 5)
            .await
            .unwrap(),
        AttemptResult::LeaseLost
    );
    assert_eq!(
        store
            .record_attempt("d2", email[0].id, &failed(None), 5)
            .await
            .unwrap(),
        AttemptResult::GaveUp { attempts: 2 }
    );
}

async fn proofs_start_the_clocks_once_and_are_idempotent(store: Arc<dyn Store>) {
    let asanov = owner("21212198000123", Some("Бишкек, ул. Киевская 96"));
    store
        .add_contact(&contact(&asanov.id, DeliveryChannel::Sms, "+996555123456"))
        .await
        .unwrap();
    let numbers = issued(&*store, 2, &asanov).await;
    let number = numbers[0].as_str();
    let resolution = store.resolution(number).await.unwrap().unwrap();
    assert_eq!(
        (resolution.delivered_at, resolution.delivered_via),
        (None, None)
    );
    let deliveries = store.deliveries(number).await.unwrap();
    let sms = by_channel(&deliveries, DeliveryChannel::Sms).id;
    let post = by_channel(&deliveries, DeliveryChannel::Post).id;
    let case_id = resolution.case_id;

    let delivered_at = at_millis(Utc::now());
    let proof = |target: DeliveryTarget, by: &str| ProvenDelivery {
        resolution_number: number.to_owned(),
        target,
        delivered_at,
        proof: serde_json::json!({"status": "delivered", "by": by}),
        reported_by: by.to_owned(),
    };
    let first = store
        .record_delivery(&proof(DeliveryTarget::Outbox(sms), "fines:d1"))
        .await
        .unwrap();
    assert_eq!(
        first,
        DeliveryRecorded::First {
            delivery_id: sms,
            delivered_at
        }
    );
    let resolution = store.resolution(number).await.unwrap().unwrap();
    assert_eq!(
        (resolution.delivered_at, resolution.delivered_via),
        (Some(delivered_at), Some(DeliveryChannel::Sms))
    );
    assert_eq!(
        store.case(case_id).await.unwrap().unwrap().state,
        CaseState::Delivered
    );
    let row = store.delivery(sms).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.delivered_at),
        (DeliveryState::Delivered, Some(delivered_at))
    );
    assert_eq!(row.proof.as_ref().unwrap()["status"], "delivered");

    // The same report again changes nothing and says so.
    assert_eq!(
        store
            .record_delivery(&proof(DeliveryTarget::Outbox(sms), "fines:d1"))
            .await
            .unwrap(),
        DeliveryRecorded::AlreadyRecorded { delivery_id: sms }
    );
    // The portal's report is kept; the clocks still run from the first proof.
    let portal = DeliveryTarget::Reported {
        channel: DeliveryChannel::Portal,
        source: "egov.kg".to_owned(),
    };
    let later = store
        .record_delivery(&proof(portal.clone(), "portal:egov"))
        .await
        .unwrap();
    let DeliveryRecorded::Additional {
        delivery_id: portal_id,
        resolution_delivered_at,
    } = later
    else {
        panic!("{later:?}")
    };
    assert_eq!(resolution_delivered_at, delivered_at);
    assert_eq!(
        store
            .record_delivery(&proof(portal, "portal:egov"))
            .await
            .unwrap(),
        DeliveryRecorded::AlreadyRecorded {
            delivery_id: portal_id
        }
    );
    let rows = store.deliveries(number).await.unwrap();
    let portal_row = by_channel(&rows, DeliveryChannel::Portal);
    assert_eq!(
        (portal_row.address.as_str(), portal_row.state),
        ("egov.kg", DeliveryState::Delivered)
    );
    // A return receipt for the letter: recorded, the clocks stand.
    assert!(matches!(
        store
            .record_delivery(&proof(DeliveryTarget::Outbox(post), "post:kyrgyzpochtasy"))
            .await
            .unwrap(),
        DeliveryRecorded::Additional { .. }
    ));
    assert_eq!(
        store
            .resolution(number)
            .await
            .unwrap()
            .unwrap()
            .delivered_via,
        Some(DeliveryChannel::Sms)
    );

    // One audit row per recorded proof; the first moved the case.
    let audit = store.case_audit(case_id).await.unwrap();
    let rows: Vec<&AuditEntry> = audit
        .iter()
        .filter(|a| a.action == RESOLUTION_DELIVERED)
        .collect();
    assert_eq!(rows.len(), 3, "{audit:?}");
    assert_eq!(
        (rows[0].from_state, rows[0].to_state, rows[0].actor.as_str()),
        (
            Some(CaseState::Issued),
            Some(CaseState::Delivered),
            "fines:d1"
        )
    );
    assert!(rows[0]
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("\"first\":true"));
    assert_eq!((rows[1].from_state, rows[1].to_state), (None, None));
    for row in &rows {
        assert_chained_alone(row);
    }

    // What is refused, and writes nothing.
    let mut unknown = proof(DeliveryTarget::Outbox(sms), "x");
    unknown.resolution_number = "KG-BSK-2026-9999999".to_owned();
    assert!(matches!(
        store.record_delivery(&unknown).await,
        Err(StoreError::NotFound { .. })
    ));
    let mut stranger = proof(DeliveryTarget::Outbox(sms), "x");
    stranger.resolution_number = numbers[1].clone();
    assert!(matches!(
        store.record_delivery(&stranger).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .record_delivery(&proof(DeliveryTarget::Outbox(DeliveryId(999_999)), "x"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let mut early = proof(DeliveryTarget::Outbox(post), "x");
    early.resolution_number = numbers[1].clone();
    early.target = DeliveryTarget::Reported {
        channel: DeliveryChannel::Portal,
        source: "egov.kg".to_owned(),
    };
    early.delivered_at = resolution.issued_at - Duration::days(1);
    assert!(matches!(
        store.record_delivery(&early).await,
        Err(StoreError::Invalid(_))
    ));
    early.delivered_at = Utc::now() + Duration::days(1);
    assert!(matches!(
        store.record_delivery(&early).await,
        Err(StoreError::Invalid(_))
    ));
    early.delivered_at = at_millis(Utc::now());
    early.target = DeliveryTarget::Reported {
        channel: DeliveryChannel::Sms,
        source: "someone".to_owned(),
    };
    assert!(matches!(
        store.record_delivery(&early).await,
        Err(StoreError::Invalid(_))
    ));
    let untouched = store.resolution(&numbers[1]).await.unwrap().unwrap();
    assert_eq!(untouched.delivered_at, None);
    assert!(store
        .deliveries(&numbers[1])
        .await
        .unwrap()
        .iter()
        .all(|d| d.channel != DeliveryChannel::Portal));
}

async fn print_batches_send_the_claimed_letters(store: Arc<dyn Store>) {
    let asanov = owner("21212198000123", Some("Бишкек, ул. Киевская 96"));
    let numbers = issued(&*store, 3, &asanov).await;
    let letters = store
        .claim_deliveries(DeliveryChannel::Post, "p1", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(letters.len(), 3);
    let pdf = EvidenceRef {
        sha256: sha("batch pdf"),
        location: FrameLocation {
            segment: "seg-print-0000000001.kzs".to_owned(),
            offset: 40,
            len: 180_000,
        },
    };
    let batch = NewPrintBatch {
        pdf: pdf.clone(),
        pages: 3,
        letters: letters
            .iter()
            .enumerate()
            .map(|(i, j)| (j.id, i as u32 + 1))
            .collect(),
    };
    // p2 holds none of the letters: its PDF, stored already, is queued for overwriting.
    let mut theirs = batch.clone();
    theirs.pdf = EvidenceRef {
        sha256: sha("p2's batch pdf"),
        location: FrameLocation {
            offset: 200_000,
            ..pdf.location.clone()
        },
    };
    assert_eq!(
        store.record_print_batch("p2", &theirs).await.unwrap(),
        PrintBatchWrite::LeaseLost
    );
    // A page outside the batch, or a letter twice, is refused.
    let mut bad = batch.clone();
    bad.letters[0].1 = 4;
    assert!(store.record_print_batch("p1", &bad).await.is_err());
    bad.letters[0] = bad.letters[1];
    assert!(store.record_print_batch("p1", &bad).await.is_err());

    let PrintBatchWrite::Recorded(batch_id) = store.record_print_batch("p1", &batch).await.unwrap()
    else {
        panic!("batch not recorded")
    };
    let stored = store.print_batch(batch_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.pages, stored.created_by.as_str(), stored.pdf_sha256),
        (3, "p1", pdf.sha256)
    );
    assert_eq!(stored.pdf_location, pdf.location);
    assert_eq!(stored.letters, batch.letters);
    assert!(store
        .known_frames(&[pdf.sha256])
        .await
        .unwrap()
        .contains(&pdf.sha256));
    for (number, (id, page)) in numbers.iter().zip(&batch.letters) {
        let row = store.delivery(*id).await.unwrap().unwrap();
        assert_eq!(&row.resolution_number, number);
        assert_eq!(
            (row.state, row.batch_id, row.batch_page, row.next_attempt_at),
            (DeliveryState::Sent, Some(batch_id), Some(*page), None)
        );
        assert_eq!(row.proof.as_ref().unwrap()["first_page"], *page);
        // Sent is not delivered: no clock runs yet.
        assert_eq!(
            store
                .resolution(number)
                .await
                .unwrap()
                .unwrap()
                .delivered_at,
            None
        );
    }
    // Recorded once: the same batch again finds no lease, and its PDF stays.
    assert_eq!(
        store.record_print_batch("p1", &batch).await.unwrap(),
        PrintBatchWrite::LeaseLost
    );
    assert_eq!(
        erasures_queued(store.as_ref()).await,
        vec![(theirs.pdf.sha256, theirs.pdf.location.clone())]
    );
    // Letters wait for a return receipt, not for a status check.
    assert!(store
        .claim_unconfirmed(DeliveryChannel::Post, "p1", 10, LONG_LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .print_batch(PrintBatchId(batch_id.0 + 1))
            .await
            .unwrap(),
        None
    );

    // The print room: the batch waits unprinted, names its letters' cases, and is
    // recorded printed once, audited.
    let mut cases = Vec::new();
    for (id, _) in &batch.letters {
        cases.push(store.delivery(*id).await.unwrap().unwrap().case_id);
    }
    cases.sort();
    assert_eq!(stored.cases, cases);
    assert!(!stored.case_file_destroyed);
    assert_eq!((stored.printed_at, stored.printed_by), (None, None));
    let listed = |printed| {
        let store = Arc::clone(&store);
        async move {
            store
                .print_batches(printed, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|b| (b.id, b.letters, b.pages, b.printed_by))
                .collect::<Vec<_>>()
        }
    };
    let waiting = (batch_id, batch.letters.len() as u32, 3, None);
    assert_eq!(listed(Some(false)).await, vec![waiting.clone()]);
    assert_eq!(listed(None).await, vec![waiting]);
    assert!(listed(Some(true)).await.is_empty());
    assert!(store
        .print_batches(None, Some(batch_id), 10)
        .await
        .unwrap()
        .is_empty());
    let Some(kozomol_store::PrintBatchPrinted::Recorded(at)) = store
        .record_print_batch_printed(batch_id, "print-room")
        .await
        .unwrap()
    else {
        panic!("batch not recorded printed")
    };
    assert_eq!(
        store
            .record_print_batch_printed(batch_id, "someone-else")
            .await
            .unwrap(),
        Some(kozomol_store::PrintBatchPrinted::AlreadyRecorded {
            at,
            by: "print-room".to_owned()
        })
    );
    assert_eq!(
        store
            .record_print_batch_printed(PrintBatchId(batch_id.0 + 1), "print-room")
            .await
            .unwrap(),
        None
    );
    assert!(listed(Some(false)).await.is_empty());
    assert_eq!(
        listed(Some(true)).await,
        vec![(
            batch_id,
            batch.letters.len() as u32,
            3,
            Some("print-room".to_owned())
        )]
    );
    let printed = store.print_batch(batch_id).await.unwrap().unwrap();
    assert_eq!(printed.printed_at, Some(at));
    let audited: Vec<_> = store
        .audit_rows(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == kozomol_store::audit::PRINT_BATCH_PRINTED)
        .map(|r| r.actor)
        .collect();
    assert_eq!(audited, ["print-room"]);
}

/// Three outbox workers (a store each, so separate connections and pools) claiming
/// and sending in a loop: no delivery is handed out twice, none is missed.
async fn concurrent_delivery_claimers_never_share_a_row(url: String) {
    let store = connect(&url).await.unwrap();
    let asanov = owner("21212198000123", None);
    store
        .add_contact(&contact(&asanov.id, DeliveryChannel::Sms, "+996555123456"))
        .await
        .unwrap();
    let numbers = issued(&*store, 24, &asanov).await;
    let mut tasks = Vec::new();
    for worker in 0..3 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let store = connect(&url).await.unwrap();
            let name = format!("d{worker}");
            let mut mine = Vec::new();
            loop {
                let jobs = store
                    .claim_deliveries(DeliveryChannel::Sms, &name, 3, LONG_LEASE)
                    .await
                    .unwrap();
                if jobs.is_empty() {
                    break;
                }
                for job in jobs {
                    assert_eq!(job.attempt, 1, "{name} got a delivery someone else held");
                    let done = store
                        .record_attempt(&name, job.id, &sent(&format!("m-{}", job.id), None), 5)
                        .await
                        .unwrap();
                    assert_eq!(done, AttemptResult::Sent);
                    mine.push(job.resolution_number);
                }
            }
            mine
        }));
    }
    let mut all_sent = Vec::new();
    for task in tasks {
        all_sent.extend(task.await.unwrap());
    }
    let count = all_sent.len();
    all_sent.sort();
    all_sent.dedup();
    assert_eq!(count, all_sent.len(), "a delivery was sent twice");
    let mut want = numbers;
    want.sort();
    assert_eq!(all_sent, want, "every delivery was sent");
}

// ---- the checks before issuing --------------------------------------------------------

fn exemption(pattern: &str, category: &str) -> kozomol_store::NewExemption {
    kozomol_store::NewExemption {
        pattern: pattern.to_owned(),
        category: category.to_owned(),
        note: format!("{pattern}: decree 12/2026"),
        valid_from: Some(date("2026-01-01")),
        valid_until: Some(date("2026-12-31")),
        added_by: "admin".to_owned(),
    }
}

fn hot(plate: &str) -> kozomol_store::NewHotListEntry {
    kozomol_store::NewHotListEntry {
        plate: plate.to_owned(),
        reason: "stolen".to_owned(),
        note: "reported 2026-03-01".to_owned(),
        listed_by: "supervisor".to_owned(),
    }
}

/// A case of `camera` whose signed event names a site (or none).
fn sighted_case(
    camera: &str,
    plate: &str,
    captured_at: DateTime<Utc>,
    site: Option<(&str, i32, i32)>,
) -> NewCase {
    let mut case = new_case(camera, Some(plate), captured_at);
    match site {
        Some((id, lat_e6, lon_e6)) => {
            case.event["site"] = serde_json::json!({
                "id": id, "lat_e6": lat_e6, "lon_e6": lon_e6,
                "address": "Бишкек", "direction": "east", "lane": 1
            });
        }
        None => {
            if let Some(event) = case.event.as_object_mut() {
                event.remove("site");
            }
        }
    }
    case
}

async fn exemptions_are_listed_in_order_and_removal_keeps_the_row(store: Arc<dyn Store>) {
    assert!(store.exemptions().await.unwrap().is_empty());
    let first = store
        .add_exemption(&exemption("D*", "diplomatic"))
        .await
        .unwrap();
    let second = store
        .add_exemption(&kozomol_store::NewExemption {
            valid_from: None,
            valid_until: None,
            ..exemption("01KG001AAA", "emergency")
        })
        .await
        .unwrap();
    assert!(second.id > first.id);
    assert_eq!(
        (
            first.pattern.as_str(),
            first.category.as_str(),
            first.note.as_str()
        ),
        ("D*", "diplomatic", "D*: decree 12/2026")
    );
    assert_eq!(
        (first.valid_from, first.valid_until),
        (Some(date("2026-01-01")), Some(date("2026-12-31")))
    );
    assert_eq!((second.valid_from, second.valid_until), (None, None));
    assert_eq!(first.added_by, "admin");
    assert!((Utc::now() - first.added_at).num_seconds().abs() < 60);
    assert_eq!(
        (first.removed_at, first.removed_by.as_deref()),
        (None, None)
    );
    assert_eq!(
        store.exemptions().await.unwrap(),
        vec![first.clone(), second.clone()]
    );

    // What the store cannot keep is refused, and nothing is written.
    for bad in [
        exemption("D*", "friends"),
        exemption("", "other"),
        kozomol_store::NewExemption {
            valid_from: Some(date("2026-06-01")),
            valid_until: Some(date("2026-05-31")),
            ..exemption("G*", "government")
        },
    ] {
        assert!(
            matches!(store.add_exemption(&bad).await, Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
    assert_eq!(store.exemptions().await.unwrap().len(), 2);

    let removed = store
        .remove_exemption(first.id, "supervisor")
        .await
        .unwrap()
        .expect("the entry was in force");
    assert_eq!(removed.id, first.id);
    assert_eq!(removed.removed_by.as_deref(), Some("supervisor"));
    assert!(removed.removed_at.is_some());
    assert_eq!(store.exemptions().await.unwrap(), vec![second.clone()]);
    // Removing it again, or an id that never was, changes nothing.
    assert_eq!(
        store
            .remove_exemption(first.id, "supervisor")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.remove_exemption(9_999, "admin").await.unwrap(), None);
    assert_eq!(store.exemptions().await.unwrap(), vec![second]);
}

async fn the_hot_list_holds_one_entry_per_plate(store: Arc<dyn Store>) {
    let listed = store.add_hot_list_entry(&hot("01KG123ABC")).await.unwrap();
    assert_eq!(
        (
            listed.plate.as_str(),
            listed.reason.as_str(),
            listed.listed_by.as_str()
        ),
        ("01KG123ABC", "stolen", "supervisor")
    );
    assert!(matches!(
        store.add_hot_list_entry(&hot("01KG123ABC")).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .add_hot_list_entry(&kozomol_store::NewHotListEntry {
                reason: "lost".to_owned(),
                ..hot("01KG555XYZ")
            })
            .await,
        Err(StoreError::Invalid(_))
    ));
    let wanted = store
        .add_hot_list_entry(&kozomol_store::NewHotListEntry {
            reason: "wanted".to_owned(),
            ..hot("01KG777BBB")
        })
        .await
        .unwrap();
    assert_eq!(
        store.hot_list().await.unwrap(),
        vec![listed.clone(), wanted.clone()]
    );

    let removed = store
        .remove_hot_list_entry("01KG123ABC", "admin")
        .await
        .unwrap()
        .expect("listed");
    assert_eq!(
        (removed.id, removed.removed_by.as_deref()),
        (listed.id, Some("admin"))
    );
    assert_eq!(
        store
            .remove_hot_list_entry("01KG123ABC", "admin")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.hot_list().await.unwrap(), vec![wanted.clone()]);
    // Once off the list, the plate may be listed again: a new entry, the old row kept.
    let again = store.add_hot_list_entry(&hot("01KG123ABC")).await.unwrap();
    assert!(again.id > wanted.id);
    assert_eq!(store.hot_list().await.unwrap(), vec![wanted, again]);
}

async fn alerts_are_raised_once_per_case_and_acknowledged_once(store: Arc<dyn Store>) {
    use kozomol_store::checks::{ALERT_ACKNOWLEDGED, ALERT_RAISED};
    use kozomol_store::{AlertAcknowledged, AlertKind, AlertQuery, AlertRaised, NewAlert};
    register(&*store, &["cam-1"]).await;
    let writes = store
        .record_cases(
            &[
                new_case("cam-1", Some("01KG123ABC"), t(0)),
                new_case("cam-1", Some("01KG777BBB"), t(1)),
            ],
            "ingest",
        )
        .await
        .unwrap();
    let (one, two) = (created(writes[0]), created(writes[1]));
    let alert = |case_id| NewAlert {
        case_id,
        kind: AlertKind::HotList,
        detail: serde_json::json!({"plate": "01KG123ABC", "reason": "stolen"}),
        raised_by: "fines:lookup-1".to_owned(),
    };

    // Workers checking the same case at once raise one alert between them.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, alert) = (Arc::clone(&store), alert(one));
        tasks.push(tokio::spawn(async move {
            store.raise_alert(&alert).await.unwrap()
        }));
    }
    let mut raised = Vec::new();
    for task in tasks {
        raised.push(task.await.unwrap());
    }
    let first = raised
        .iter()
        .find_map(|r| match r {
            AlertRaised::Raised(id) => Some(*id),
            AlertRaised::AlreadyRaised(_) => None,
        })
        .expect("one raised it");
    assert_eq!(
        raised
            .iter()
            .filter(|r| matches!(r, AlertRaised::Raised(_)))
            .count(),
        1,
        "{raised:?}"
    );
    assert!(raised.iter().all(
        |r| matches!(r, AlertRaised::Raised(id) | AlertRaised::AlreadyRaised(id) if *id == first)
    ));
    let AlertRaised::Raised(second) = store.raise_alert(&alert(two)).await.unwrap() else {
        panic!("another case gets its own alert");
    };

    let open = AlertQuery {
        open_only: true,
        limit: 10,
        ..AlertQuery::default()
    };
    let listed = store.alerts(&open).await.unwrap();
    assert_eq!(
        listed.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![first, second]
    );
    assert_eq!(listed[0].case_id, one);
    assert_eq!(listed[0].kind, AlertKind::HotList);
    assert_eq!(listed[0].detail["reason"], "stolen");
    assert_eq!(listed[0].acknowledged_by, None);
    assert_eq!(store.alert(first).await.unwrap().as_ref(), Some(&listed[0]));
    assert_eq!(store.alert(9_999).await.unwrap(), None);
    // Filters and the cursor.
    let of_two = AlertQuery {
        case_id: Some(two),
        ..open.clone()
    };
    assert_eq!(store.alerts(&of_two).await.unwrap().len(), 1);
    let after_first = AlertQuery {
        after: Some(first),
        ..open.clone()
    };
    assert_eq!(store.alerts(&after_first).await.unwrap()[0].id, second);
    let one_page = AlertQuery {
        limit: 1,
        ..open.clone()
    };
    assert_eq!(store.alerts(&one_page).await.unwrap().len(), 1);

    let AlertAcknowledged::Acknowledged(acked) =
        store.acknowledge_alert(first, "supervisor").await.unwrap()
    else {
        panic!("the first acknowledgement is recorded");
    };
    assert_eq!(acked.acknowledged_by.as_deref(), Some("supervisor"));
    assert!(acked.acknowledged_at.is_some());
    match store.acknowledge_alert(first, "other").await.unwrap() {
        AlertAcknowledged::Already(record) => assert_eq!(record, acked),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.acknowledge_alert(9_999, "supervisor").await.unwrap(),
        AlertAcknowledged::NotFound
    );
    assert_eq!(
        store
            .alerts(&open)
            .await
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        vec![second]
    );
    let everything = AlertQuery {
        open_only: false,
        ..open
    };
    assert_eq!(store.alerts(&everything).await.unwrap()[0], acked);

    // One audit row for the raise, one for the acknowledgement, each chained alone.
    let audit = store.case_audit(one).await.unwrap();
    let raised_rows: Vec<_> = audit.iter().filter(|a| a.action == ALERT_RAISED).collect();
    let acked_rows: Vec<_> = audit
        .iter()
        .filter(|a| a.action == ALERT_ACKNOWLEDGED)
        .collect();
    assert_eq!((raised_rows.len(), acked_rows.len()), (1, 1));
    assert_eq!(raised_rows[0].actor, "fines:lookup-1");
    assert!(raised_rows[0]
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("stolen"));
    assert_eq!(acked_rows[0].actor, "supervisor");
    assert_chained_alone(raised_rows[0]);
    assert_chained_alone(acked_rows[0]);
}

async fn plate_sightings_read_the_decided_plate_and_the_events_site(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let at = |seconds: i64| t(0) + Duration::seconds(seconds);
    let plate = "01KG123ABC";
    let cases = [
        // 0: the plate, read by the camera, at a site.
        sighted_case("cam-1", plate, at(0), Some(("S1", 42_874_600, 74_569_800))),
        // 1: read as another plate, corrected to this one by review.
        sighted_case(
            "cam-1",
            "01KG128ABC",
            at(30),
            Some(("S2", 42_883_600, 74_569_800)),
        ),
        // 2: read as this plate, corrected to another by review: not a sighting.
        sighted_case("cam-1", plate, at(20), Some(("S1", 42_874_600, 74_569_800))),
        // 3: exactly at the end of the range (included), an event without a site.
        sighted_case("cam-1", plate, at(600), None),
        // 4: a second after the range.
        sighted_case(
            "cam-1",
            plate,
            at(601),
            Some(("S1", 42_874_600, 74_569_800)),
        ),
        // 5: another plate altogether.
        sighted_case(
            "cam-1",
            "01KG777BBB",
            at(10),
            Some(("S1", 42_874_600, 74_569_800)),
        ),
        // 6: exactly at the start of the range, at the same instant as 7 (by id).
        sighted_case(
            "cam-1",
            plate,
            at(-60),
            Some(("S3", -33_868_800, 151_209_300)),
        ),
        sighted_case(
            "cam-1",
            plate,
            at(-60),
            Some(("S3", -33_868_800, 151_209_300)),
        ),
        // 8: the plate without its KG, as the recognizer writes it.
        sighted_case(
            "cam-1",
            "01123ABC",
            at(40),
            Some(("S1", 42_874_600, 74_569_800)),
        ),
    ];
    let ids = created_cases(store.as_ref(), &cases, "ingest").await;
    for (case, decided) in [(ids[1], plate), (ids[2], "01KG999ZZZ")] {
        let mut decision = review(
            case,
            ReviewTier::Supervisor,
            CaseState::Received,
            CaseState::Approved,
        );
        decision.decision = ReviewDecision::CorrectPlate;
        decision.plate = Some(decided.to_owned());
        assert_eq!(
            store.record_review(&decision).await.unwrap(),
            ReviewWrite::Recorded
        );
    }

    let spellings = ["01123ABC".to_owned(), plate.to_owned()];
    let sightings = store
        .plate_sightings(&within(&spellings, at(-60), at(600)))
        .await
        .unwrap();
    assert_eq!(
        sightings.iter().map(|s| s.case_id).collect::<Vec<_>>(),
        vec![ids[6], ids[7], ids[0], ids[1], ids[8], ids[3]]
    );
    // Each spelling finds only the cases stored under it.
    let as_spelled = store
        .plate_sightings(&within(&spellings[1..], at(-60), at(600)))
        .await
        .unwrap();
    assert_eq!(
        as_spelled.iter().map(|s| s.case_id).collect::<Vec<_>>(),
        vec![ids[6], ids[7], ids[0], ids[1], ids[3]]
    );
    assert!(store
        .plate_sightings(&within(&[], at(-60), at(600)))
        .await
        .unwrap()
        .is_empty());
    let by_id = |id: CaseId| sightings.iter().find(|s| s.case_id == id).unwrap();
    let corrected = by_id(ids[1]);
    assert_eq!(corrected.plate, plate);
    assert_eq!(corrected.state, CaseState::Approved);
    assert_eq!(corrected.kind, ViolationKind::Speeding);
    assert_eq!(corrected.captured_at, at(30));
    assert!((Utc::now() - corrected.received_at).num_seconds().abs() < 60);
    assert_eq!(
        corrected.site,
        Some(kozomol_store::SightingSite {
            id: "S2".to_owned(),
            lat_e6: 42_883_600,
            lon_e6: 74_569_800,
        })
    );
    assert_eq!(by_id(ids[0]).state, CaseState::Received);
    assert_eq!(
        by_id(ids[6]).site.as_ref().map(|s| s.lat_e6),
        Some(-33_868_800)
    );
    assert_eq!(by_id(ids[3]).site, None);
    // The corrected-away read is the other plate's sighting.
    let other = store
        .plate_sightings(&within(&["01KG999ZZZ".to_owned()], at(-60), at(600)))
        .await
        .unwrap();
    assert_eq!(
        other.iter().map(|s| s.case_id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    assert!(store
        .plate_sightings(&within(&["01KG000AAA".to_owned()], at(-60), at(600)))
        .await
        .unwrap()
        .is_empty());
}

/// The sightings of a plate under `spellings` captured in `from..=until`.
fn within(
    spellings: &[String],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> kozomol_store::SightingsQuery<'_> {
    kozomol_store::SightingsQuery {
        spellings,
        from,
        until,
    }
}

/// Cases of `plate` at one site, `seconds` after t(0), approved by a supervisor who
/// decided the plate, and claimed for the owner lookup by `worker`.
async fn approved_sightings(
    store: &dyn Store,
    plate: &str,
    seconds: &[i64],
    worker: &str,
) -> Vec<CaseId> {
    let site = Some(("S1", 42_874_600, 74_569_800));
    let cases: Vec<NewCase> = seconds
        .iter()
        .map(|s| sighted_case("cam-1", plate, t(0) + Duration::seconds(*s), site))
        .collect();
    let ids = created_cases(store, &cases, "ingest").await;
    for id in &ids {
        let mut decision = review(
            *id,
            ReviewTier::Supervisor,
            CaseState::Received,
            CaseState::Approved,
        );
        decision.decision = ReviewDecision::CorrectPlate;
        decision.plate = Some(plate.to_owned());
        assert_eq!(
            store.record_review(&decision).await.unwrap(),
            ReviewWrite::Recorded
        );
    }
    let claimed = store
        .claim_stage(CaseState::Approved, worker, 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(claimed, ids);
    ids
}

fn marks(sightings: &[kozomol_store::PlateSighting]) -> Vec<(CaseId, bool)> {
    sightings
        .iter()
        .map(|s| (s.case_id, s.checks_passed))
        .collect()
}

async fn passing_the_checks_marks_the_case_under_its_lease(store: Arc<dyn Store>) {
    use kozomol_store::checks::CHECKS_PASSED;
    use kozomol_store::{ChecksPassed, PlateSighting};
    register(&*store, &["cam-1"]).await;
    let plate = "01KG123ABC";
    let ids = approved_sightings(&*store, plate, &[0, 40], "f1").await;
    let spellings = [plate.to_owned()];
    let query = within(&spellings, t(-10), t(10));
    let sightings = || store.plate_sightings(&query);
    assert_eq!(
        marks(&sightings().await.unwrap()),
        [(ids[0], false), (ids[1], false)]
    );

    // A conflict writes nothing; the closure saw the plate's sightings.
    let seen = std::sync::Mutex::new(Vec::new());
    let conflict = |s: &[PlateSighting]| -> Option<String> {
        *seen.lock().unwrap() = marks(s);
        Some("duplicate of case 7".to_owned())
    };
    assert_eq!(
        store
            .pass_checks("f1", ids[0], plate, &query, &conflict)
            .await
            .unwrap(),
        ChecksPassed::Conflict("duplicate of case 7".to_owned())
    );
    assert_eq!(*seen.lock().unwrap(), [(ids[0], false), (ids[1], false)]);
    assert_eq!(
        marks(&sightings().await.unwrap()),
        [(ids[0], false), (ids[1], false)]
    );

    // A plate in no spelling is refused: it would be checked under no lock.
    assert!(matches!(
        store
            .pass_checks("f1", ids[0], plate, &within(&[], t(-10), t(10)), &conflict)
            .await,
        Err(StoreError::Invalid(_))
    ));

    // Another worker's lease marks nothing.
    let clear = |_: &[PlateSighting]| -> Option<String> { None };
    assert_eq!(
        store
            .pass_checks("f2", ids[0], plate, &query, &clear)
            .await
            .unwrap(),
        ChecksPassed::LeaseLost
    );
    assert_eq!(
        marks(&sightings().await.unwrap()),
        [(ids[0], false), (ids[1], false)]
    );

    // The holder's: marked, audited, and the case stays approved for its lookup.
    assert_eq!(
        store
            .pass_checks("f1", ids[0], plate, &query, &clear)
            .await
            .unwrap(),
        ChecksPassed::Passed
    );
    assert_eq!(
        marks(&sightings().await.unwrap()),
        [(ids[0], true), (ids[1], false)]
    );
    assert_eq!(
        store.case(ids[0]).await.unwrap().unwrap().state,
        CaseState::Approved
    );
    let audit = store.case_audit(ids[0]).await.unwrap();
    let rows: Vec<_> = audit.iter().filter(|a| a.action == CHECKS_PASSED).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor, "fines:f1");
    assert_chained_alone(rows[0]);
    assert!(store
        .case_audit(ids[1])
        .await
        .unwrap()
        .iter()
        .all(|a| a.action != CHECKS_PASSED));

    // A case that left `approved` is not marked.
    assert_eq!(
        store
            .set_aside(
                "f1",
                ids[1],
                CaseState::Approved,
                CaseState::Duplicate,
                "duplicate"
            )
            .await
            .unwrap(),
        CompleteResult::Completed
    );
    assert_eq!(
        store
            .pass_checks("f1", ids[1], plate, &query, &clear)
            .await
            .unwrap(),
        ChecksPassed::LeaseLost
    );
    assert_eq!(
        marks(&sightings().await.unwrap()),
        [(ids[0], true), (ids[1], false)]
    );
}

/// Two checks of one plate at once, each case holding another spelling of it: each lets
/// its case through only if no other case is marked; under the plate's lock (taken on
/// all its spellings) exactly one of them passes.
async fn checks_of_one_plate_pass_one_at_a_time(store: Arc<dyn Store>) {
    use kozomol_store::{ChecksPassed, PlateSighting};
    register(&*store, &["cam-1"]).await;
    let (plate, recognized) = ("01KG456DEF", "01456DEF");
    let mut ids = approved_sightings(&*store, plate, &[0], "f1").await;
    ids.extend(approved_sightings(&*store, recognized, &[5], "f1").await);
    let spellings = [recognized.to_owned(), plate.to_owned()];
    let query = within(&spellings, t(-10), t(10));
    let alone = |me: CaseId| {
        move |s: &[PlateSighting]| -> Option<String> {
            s.iter()
                .find(|o| o.case_id != me && o.checks_passed)
                .map(|o| format!("duplicate of case {}", o.case_id))
        }
    };
    let (first, second) = (alone(ids[0]), alone(ids[1]));
    // Two connections open beforehand, so that neither check waits for one while the
    // other runs to its end.
    let (warm_a, warm_b) =
        tokio::join!(store.plate_sightings(&query), store.plate_sightings(&query),);
    assert_eq!(warm_a.unwrap().len() + warm_b.unwrap().len(), 4);
    let (a, b) = tokio::join!(
        store.pass_checks("f1", ids[0], plate, &query, &first),
        store.pass_checks("f1", ids[1], recognized, &query, &second),
    );
    let mut results = [a.unwrap(), b.unwrap()];
    results.sort_by_key(|r| matches!(r, ChecksPassed::Passed));
    match &results {
        [ChecksPassed::Conflict(reason), ChecksPassed::Passed] => {
            assert!(reason.starts_with("duplicate of case"), "{reason}")
        }
        other => panic!("one passes, one conflicts: {other:?}"),
    }
    let marked = marks(&store.plate_sightings(&query).await.unwrap());
    assert_eq!(marked.iter().filter(|(_, m)| *m).count(), 1, "{marked:?}");
}

/// Runs one statement on the database behind the store, as someone with its password
/// could.
async fn tamper(url: &str, sql: &'static str) {
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

async fn the_audit_log_is_sealed_and_verify_names_the_first_break(url: String) {
    use kozomol_store::audit::{verify, AuditBreak, SealMark};
    use kozomol_store::NewAuditEntry;
    let store = kozomol_store::connect(&url).await.unwrap();
    let view = |n: i64| NewAuditEntry {
        case_id: None,
        actor: format!("officer-{n}"),
        action: kozomol_store::audit::OWNER_DATA_VIEWED.to_owned(),
        detail: Some(format!("resolution PDF of resolution KG-BSK-2026-{n:07}")),
    };
    for n in 1..=4 {
        store.record_audit(&view(n)).await.unwrap();
    }
    let verified = verify(store.as_ref(), &[]).await.unwrap().expect("intact");
    assert_eq!((verified.rows, verified.seals), (4, 0));
    assert_eq!((verified.unsealed_rows, verified.last_seal), (4, None));
    assert!(verified.oldest_unsealed_at.is_some());

    // Nothing settled yet: nothing sealed. Then everything up to now.
    let past = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(store.seal_audit(past, 100).await.unwrap(), None);
    let soon = Utc::now() + chrono::Duration::seconds(1);
    let seal = store.seal_audit(soon, 100).await.unwrap().expect("sealed");
    assert_eq!((seal.id, seal.rows), (1, 4));
    assert_eq!(
        store.seal_audit(soon, 100).await.unwrap(),
        None,
        "nothing new"
    );
    store.record_audit(&view(5)).await.unwrap();
    let recorded = SealMark {
        id: seal.id,
        hash: seal.hash.clone(),
    };
    let verified = verify(store.as_ref(), std::slice::from_ref(&recorded))
        .await
        .unwrap()
        .expect("intact");
    assert_eq!(
        (verified.rows, verified.seals, verified.sealed_up_to),
        (5, 1, seal.up_to_id)
    );
    assert_eq!(verified.last_seal.as_ref(), Some(&recorded));
    // Printed as --expect-seal takes it back.
    let printed = serde_json::to_value(&verified).unwrap();
    assert_eq!(
        printed["last_seal"].as_str().map(str::parse::<SealMark>),
        Some(Ok(recorded.clone()))
    );
    assert_eq!(verified.unsealed_rows, 1);
    // A seal recorded outside the log that it no longer holds, or holds otherwise: the
    // log was cut back or rewritten, which its own chains cannot show.
    for mark in [
        SealMark {
            id: 2,
            hash: seal.hash.clone(),
        },
        format!("1:{}", "0".repeat(64)).parse().unwrap(),
    ] {
        let broken = verify(store.as_ref(), std::slice::from_ref(&mark))
            .await
            .unwrap()
            .expect_err("not as recorded");
        assert_eq!(broken, AuditBreak::SealNotAsRecorded { id: mark.id });
    }
    for bad in ["1", "x:ab", &format!("1:{}", "g".repeat(64))] {
        assert!(bad.parse::<SealMark>().is_err(), "{bad}");
    }

    // A snapshot reads the log as it was when it was taken.
    let snapshot = store.audit_snapshot().await.unwrap();
    assert_eq!(snapshot.rows(0, 10).await.unwrap().len(), 5);
    store.record_audit(&view(6)).await.unwrap();
    assert_eq!(snapshot.rows(0, 10).await.unwrap().len(), 5);
    assert_eq!(snapshot.seals(0, 10).await.unwrap().len(), 1);
    drop(snapshot);
    tamper(&url, "DELETE FROM audit_log WHERE actor = 'officer-6'").await;
    let rows = store.audit_rows(0, 10).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));

    // A row of its own taken out: its chain cannot tell, the seal does.
    tamper(&url, "DELETE FROM audit_log WHERE actor = 'officer-3'").await;
    let broken = verify(store.as_ref(), &[])
        .await
        .unwrap()
        .expect_err("broken");
    assert_eq!(
        broken,
        AuditBreak::SealBroken {
            id: 1,
            after_row: 0,
            up_to_row: seal.up_to_id
        }
    );
    // A row changed: named by its id, before any seal is looked at.
    tamper(
        &url,
        "UPDATE audit_log SET detail = 'nothing to see' WHERE actor = 'officer-5'",
    )
    .await;
    let broken = verify(store.as_ref(), &[])
        .await
        .unwrap()
        .expect_err("broken");
    assert_eq!(broken, AuditBreak::RowChanged { id: rows[4].id });
    assert!(broken.to_string().contains(&rows[4].id.to_string()));
}

/// The audit rows that name no case: `(action, actor, detail)`, oldest first.
async fn audit_without_case(url: &str) -> Vec<(String, String, String)> {
    const SQL: &str =
        "SELECT action, actor, detail FROM audit_log WHERE case_id IS NULL ORDER BY id";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rows = sqlx::query_as(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

async fn list_changes_are_audited_without_a_case(url: String) {
    use kozomol_store::checks::{
        EXEMPTION_ADDED, EXEMPTION_REMOVED, HOT_LIST_ADDED, HOT_LIST_REMOVED,
    };
    let store = connect(&url).await.unwrap();
    let entry = store
        .add_exemption(&exemption("CMD*", "diplomatic"))
        .await
        .unwrap();
    store
        .remove_exemption(entry.id, "supervisor")
        .await
        .unwrap();
    store.add_hot_list_entry(&hot("01KG123ABC")).await.unwrap();
    store
        .remove_hot_list_entry("01KG123ABC", "admin")
        .await
        .unwrap();
    // Refused and repeated changes leave no row.
    assert!(store
        .add_exemption(&exemption("CMD*", "friends"))
        .await
        .is_err());
    store
        .remove_exemption(entry.id, "supervisor")
        .await
        .unwrap();

    let rows = audit_without_case(&url).await;
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .map(|(action, actor, _)| (action.as_str(), actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            (EXEMPTION_ADDED, "admin"),
            (EXEMPTION_REMOVED, "supervisor"),
            (HOT_LIST_ADDED, "supervisor"),
            (HOT_LIST_REMOVED, "admin"),
        ]
    );
    let detail: serde_json::Value = serde_json::from_str(&rows[0].2).unwrap();
    assert_eq!(detail["pattern"], "CMD*");
    assert_eq!(detail["category"], "diplomatic");
    assert_eq!(detail["valid_until"], "2026-12-31");
    let detail: serde_json::Value = serde_json::from_str(&rows[3].2).unwrap();
    assert_eq!(detail["plate"], "01KG123ABC");
}

// ---- officers' filings ---------------------------------------------------------------

fn officer_report(plate: &str, accident_id: Option<i64>) -> kozomol_core::OfficerReport {
    kozomol_core::OfficerReport {
        source: kozomol_core::OFFICER_SOURCE.to_owned(),
        report_id: Uuid::now_v7(),
        kind: ViolationKind::SeatBelt,
        occurred_at: at_millis(t(-30)),
        plate: plate.to_owned(),
        measurement: Default::default(),
        device: None,
        place: kozomol_core::ReportedPlace {
            address: "г. Бишкек, пр. Чуй — ул. Советская".to_owned(),
            lat_e6: None,
            lon_e6: None,
        },
        officer: "officer-7".to_owned(),
        notes: Some("не пристегнут, остановлен".to_owned()),
        accident_id,
    }
}

fn officer_filing(report: kozomol_core::OfficerReport) -> kozomol_store::NewOfficerViolation {
    let id = report.report_id;
    kozomol_store::NewOfficerViolation {
        report,
        photos: vec![
            NewFrame {
                role: FrameRole::Overview,
                sha256: sha(&format!("officer overview {id}")),
                location: location(10),
            },
            NewFrame {
                role: FrameRole::Plate,
                sha256: sha(&format!("officer plate {id}")),
                location: location(2010),
            },
        ],
    }
}

async fn officer_violations_enter_the_fine_flow_once(store: Arc<dyn Store>) {
    use kozomol_store::accidents::OFFICER_FILED;
    use kozomol_store::OfficerFiled;

    let filing = officer_filing(officer_report("01KG777AAA", None));
    let OfficerFiled::Filed(id) = store.file_officer_violation(&filing).await.unwrap() else {
        panic!("not filed");
    };
    let case = store.case(id).await.unwrap().unwrap();
    assert_eq!(case.camera_id, None, "no camera saw it");
    assert_eq!(case.state, CaseState::Approved);
    assert_eq!(case.kind, ViolationKind::SeatBelt);
    assert_eq!(case.captured_at, filing.report.occurred_at);
    assert_eq!(case.plate.as_deref(), Some("01KG777AAA"));
    assert_eq!(case.event_id.0, filing.report.report_id);
    let stored: kozomol_core::OfficerReport = serde_json::from_value(case.event.clone()).unwrap();
    assert_eq!(stored, filing.report);
    let roles: Vec<FrameRole> = case.frames.iter().map(|f| f.role).collect();
    assert_eq!(roles, [FrameRole::Overview, FrameRole::Plate]);
    assert_eq!(case.frames[1].location, filing.photos[1].location);
    // Its place is the one the officer gave, here without coordinates.
    assert_eq!(
        store.case_places(&[id]).await.unwrap().get(&id),
        Some(&kozomol_store::CasePlace {
            address: "г. Бишкек, пр. Чуй — ул. Советская".to_owned(),
            lat_e6: None,
            lon_e6: None,
        })
    );
    assert_eq!(
        store.decided_plate(id).await.unwrap().as_deref(),
        Some("01KG777AAA")
    );
    let audit = store.case_audit(id).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, OFFICER_FILED);
    assert_eq!(audit[0].actor, "officer-7");
    assert_eq!(audit[0].from_state, None);
    assert_eq!(audit[0].to_state, Some(CaseState::Approved));
    assert_chained_alone(&audit[0]);

    // A retry is the same case; another report under the same id is refused.
    assert_eq!(
        store.file_officer_violation(&filing).await.unwrap(),
        OfficerFiled::Duplicate(id)
    );
    let mut other = filing.clone();
    other.report.plate = "01KG888BBB".to_owned();
    assert_eq!(
        store.file_officer_violation(&other).await.unwrap(),
        OfficerFiled::Conflict(id)
    );
    let orphan = officer_filing(officer_report("01KG777AAA", Some(424242)));
    assert_eq!(
        store.file_officer_violation(&orphan).await.unwrap(),
        OfficerFiled::AccidentNotFound
    );
    let mut bare = officer_filing(officer_report("01KG777AAA", None));
    bare.photos.clear();
    assert!(matches!(
        store.file_officer_violation(&bare).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.case_audit(id).await.unwrap().len(), 1);

    // It waits for the owner lookup like any approved case.
    let claimed = store
        .claim_stage(
            CaseState::Approved,
            "fines-1",
            10,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(claimed, vec![id]);
}

async fn accidents_move_by_compare_and_set_and_link_their_violations(url: String) {
    use kozomol_store::accidents::{ACCIDENT_MOVED, ACCIDENT_REGISTERED};
    use kozomol_store::{
        AccidentFileRole, AccidentMove, AccidentMoved, AccidentOutcome, AccidentParticipant,
        AccidentQuery, AccidentRegistered, AccidentState, AccidentVehicle, Injury, NewAccident,
        NewAccidentFile, NewAttachment, OfficerFiled, ParticipantRole,
    };

    let store = connect(&url).await.unwrap();
    let file = |role, name: &str, content_type: &str, offset| NewAccidentFile {
        role,
        file: NewAttachment {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            evidence: EvidenceRef {
                sha256: sha(name),
                location: location(offset),
            },
        },
    };
    let accident = NewAccident {
        report_id: Uuid::now_v7(),
        occurred_at: at_millis(t(-90)),
        place: kozomol_core::ReportedPlace {
            address: "г. Бишкек, ул. Киевская — ул. Тоголок Молдо".to_owned(),
            lat_e6: Some(42_876_000),
            lon_e6: Some(74_590_000),
        },
        description: "столкновение при повороте налево".to_owned(),
        vehicles: vec![
            AccidentVehicle {
                plate: "01KG111AAA".to_owned(),
                make: Some("Toyota".to_owned()),
                model: Some("Camry".to_owned()),
                damage: "передний бампер".to_owned(),
            },
            AccidentVehicle {
                plate: "01KG222BBB".to_owned(),
                make: None,
                model: None,
                damage: "левая дверь".to_owned(),
            },
        ],
        participants: vec![
            AccidentParticipant {
                name: "Асанов Б.".to_owned(),
                role: ParticipantRole::Driver,
                vehicle: Some(0),
                pin: Some("21234567890123".to_owned()),
                injury: Injury::None,
            },
            AccidentParticipant {
                name: "Иванова А.".to_owned(),
                role: ParticipantRole::Witness,
                vehicle: None,
                pin: None,
                injury: Injury::Light,
            },
        ],
        files: vec![
            file(AccidentFileRole::Photo, "photo-1.jpg", "image/jpeg", 100),
            file(
                AccidentFileRole::Scheme,
                "scheme.pdf",
                "application/pdf",
                5000,
            ),
        ],
        registered_by: "officer-7".to_owned(),
    };
    let AccidentRegistered::Registered(record) = store.register_accident(&accident).await.unwrap()
    else {
        panic!("not registered");
    };
    assert_eq!(record.state, AccidentState::Registered);
    assert_eq!(record.outcome, None);
    assert_eq!(record.place, accident.place);
    assert_eq!(record.vehicles, accident.vehicles);
    assert_eq!(record.participants, accident.participants);
    assert_eq!(record.worst_injury(), Injury::Light);
    assert_eq!(record.files.len(), 2);
    assert_eq!(record.files[1].role, AccidentFileRole::Scheme);
    assert_eq!(record.files[1].file.location, location(5000));
    assert_eq!(record.moves.len(), 1);
    assert_eq!(record.moves[0].from_state, None);
    assert_eq!(record.occurred_at, accident.occurred_at);
    assert_eq!(
        store.register_accident(&accident).await.unwrap(),
        AccidentRegistered::Duplicate(record.id)
    );
    let mut bad = accident.clone();
    bad.report_id = Uuid::now_v7();
    bad.participants[0].vehicle = Some(7);
    assert!(matches!(
        store.register_accident(&bad).await,
        Err(StoreError::Invalid(_))
    ));

    // Violations found in it are linked both ways.
    let filing = officer_filing(officer_report("01KG111AAA", Some(record.id)));
    let OfficerFiled::Filed(case_id) = store.file_officer_violation(&filing).await.unwrap() else {
        panic!("not filed");
    };
    let step = |from, to, outcome| AccidentMove {
        accident_id: record.id,
        from,
        to,
        outcome,
        actor: "supervisor-1".to_owned(),
        note: Some("осмотр проведён".to_owned()),
    };
    let AccidentMoved::Moved(moved) = store
        .move_accident(&step(
            AccidentState::Registered,
            AccidentState::UnderInvestigation,
            None,
        ))
        .await
        .unwrap()
    else {
        panic!("not moved");
    };
    assert_eq!(moved.state, AccidentState::UnderInvestigation);
    assert_eq!(moved.cases, vec![case_id]);
    // A second officer acting on what he saw before writes nothing.
    assert_eq!(
        store
            .move_accident(&step(
                AccidentState::Registered,
                AccidentState::UnderInvestigation,
                None
            ))
            .await
            .unwrap(),
        AccidentMoved::StateChanged(AccidentState::UnderInvestigation)
    );
    let closing = step(
        AccidentState::UnderInvestigation,
        AccidentState::Closed,
        Some(AccidentOutcome::ViolationsFiled),
    );
    let AccidentMoved::Moved(closed) = store.move_accident(&closing).await.unwrap() else {
        panic!("not closed");
    };
    assert_eq!(closed.outcome, Some(AccidentOutcome::ViolationsFiled));
    assert_eq!(closed.moves.len(), 3);
    assert_eq!(closed.moves[2].actor, "supervisor-1");
    assert_eq!(
        store
            .file_officer_violation(&officer_filing(officer_report(
                "01KG222BBB",
                Some(record.id)
            )))
            .await
            .unwrap(),
        OfficerFiled::AccidentClosed
    );
    let mut missing = closing.clone();
    missing.accident_id = 987_654;
    assert_eq!(
        store.move_accident(&missing).await.unwrap(),
        AccidentMoved::NotFound
    );

    // Listing filters by state and pages by id.
    let mut second = accident.clone();
    second.report_id = Uuid::now_v7();
    store.register_accident(&second).await.unwrap();
    let query = |state, after, limit| AccidentQuery {
        state,
        after,
        limit,
    };
    let all = store.accidents(&query(None, None, 10)).await.unwrap();
    assert_eq!(all.len(), 2);
    let open = store
        .accidents(&query(Some(AccidentState::Registered), None, 10))
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_ne!(open[0].id, record.id);
    let page = store
        .accidents(&query(None, Some(record.id), 10))
        .await
        .unwrap();
    assert_eq!(page.len(), 1);

    // The moves are in the audit log, chained, with no case to name.
    let rows = audit_without_case(&url).await;
    let actions: Vec<&str> = rows.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            ACCIDENT_REGISTERED,
            ACCIDENT_MOVED,
            ACCIDENT_MOVED,
            ACCIDENT_REGISTERED
        ]
    );
    assert!(rows[2].2.contains("violations_filed"), "{}", rows[2].2);
    assert_eq!(rows[1].1, "supervisor-1");
}

// ---- owner liability ----------------------------------------------------------------

async fn offenders_count_by_pin_or_inn_and_owners_state_once(store: Arc<dyn Store>) {
    use kozomol_core::OwnerKind;
    use kozomol_store::{Claim, NewNomination, NominatedDriver, NominationRecorded};
    let holder = person();
    let numbers = issued(store.as_ref(), 2, &holder).await;
    let later = Utc::now() + Duration::minutes(1);
    let history = store
        .offender_resolutions(OwnerKind::Person, &holder.id, later)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|r| r.number.clone()).collect::<Vec<_>>(),
        numbers
    );
    assert!(history.iter().all(|r| r.state == CaseState::Issued));
    for (kind, id) in [
        (OwnerKind::Company, holder.id.as_str()),
        (OwnerKind::Person, "00000000000000"),
    ] {
        assert!(store
            .offender_resolutions(kind, id, later)
            .await
            .unwrap()
            .is_empty());
    }

    // The owner names the driver: annulled, and a case of the driver's own to issue.
    let named = NewNomination {
        resolution_number: numbers[0].clone(),
        claim: Claim::Driver {
            driver: NominatedDriver {
                pin: "12345678901234".to_owned(),
                name: "Токтосунов Нурлан".to_owned(),
                address: None,
            },
        },
        statement: "за рулём был Токтосунов Н.".to_owned(),
        recorded_by: "desk-1".to_owned(),
    };
    let NominationRecorded::Recorded {
        nomination,
        refund_request,
        hot_list_entry,
    } = store.record_nomination(&named).await.unwrap()
    else {
        panic!("statement not recorded");
    };
    assert_eq!((refund_request, hot_list_entry), (None, None));
    let reissued = nomination.reissued_case_id.expect("re-issued");
    let state = |id: CaseId| {
        let store = Arc::clone(&store);
        async move { store.case(id).await.unwrap().unwrap().state }
    };
    assert_eq!(state(nomination.case_id).await, CaseState::Annulled);
    assert_eq!(state(reissued).await, CaseState::OwnerFound);
    let addressee = store.owner_lookup(reissued).await.unwrap().unwrap().owner;
    assert_eq!(addressee.map(|o| o.id), Some("12345678901234".to_owned()));
    assert_eq!(
        store.reissued_from(reissued).await.unwrap(),
        Some(nomination.case_id)
    );
    // One violation, counted once by the open data: the re-issued case is the same
    // event, addressed to another.
    let original_case = store.case(nomination.case_id).await.unwrap().unwrap();
    let hour = original_case.captured_at;
    let counted: i64 = store
        .hourly_counts(hour - Duration::hours(1), hour + Duration::hours(1))
        .await
        .unwrap()
        .iter()
        .map(|c| c.recorded)
        .sum();
    let cases_then = store
        .count_cases(&kozomol_store::CaseQuery {
            from: Some(hour - Duration::hours(1)),
            to: Some(hour + Duration::hours(1)),
            ..kozomol_store::CaseQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        counted,
        cases_then as i64 - 1,
        "the re-issued case is not counted"
    );
    // The issuing stage's batched reads say what the single reads say; a re-issued
    // case's crop and reviews are its original's.
    let original = nomination.case_id;
    let reads = store
        .issuing_reads(&[reissued, original, CaseId(i64::MAX), reissued])
        .await
        .unwrap();
    assert_eq!(reads.len(), 4);
    assert!(reads[2].is_none());
    for (read, id, evidence) in [
        (&reads[0], reissued, original),
        (&reads[1], original, original),
        (&reads[3], reissued, original),
    ] {
        let read = read.as_ref().expect("the case is read");
        assert_eq!(read.case, store.case(id).await.unwrap().unwrap());
        assert_eq!(read.decided_plate, store.decided_plate(id).await.unwrap());
        assert_eq!(read.lookup, store.owner_lookup(id).await.unwrap());
        assert_eq!(read.reissued_from, store.reissued_from(id).await.unwrap());
        assert_eq!(
            read.crop,
            store
                .recognition(evidence)
                .await
                .unwrap()
                .and_then(|r| r.crop)
        );
        assert_eq!(read.reviews, store.reviews(evidence).await.unwrap());
        assert!(!read.reviews.is_empty());
    }
    assert_eq!(reads[0].as_ref().unwrap().reissued_from, Some(original));
    // Several offenders at once, each with its own list, in the order asked.
    let lists = store
        .offenders_resolutions(
            &[
                (OwnerKind::Person, holder.id.as_str()),
                (OwnerKind::Person, "12345678901234"),
                (OwnerKind::Company, holder.id.as_str()),
                (OwnerKind::Person, holder.id.as_str()),
            ],
            later,
        )
        .await
        .unwrap();
    let numbers_of = |list: &Vec<kozomol_store::nominations::OffenderResolution>| {
        list.iter().map(|r| r.number.clone()).collect::<Vec<_>>()
    };
    assert_eq!(numbers_of(&lists[0]), numbers);
    assert!(lists[1].is_empty() && lists[2].is_empty());
    assert_eq!(numbers_of(&lists[3]), numbers);
    // As many offenders as a large batch has, the one with resolutions last.
    let strangers: Vec<String> = (0..1_200).map(|n| format!("9{n:013}")).collect();
    let mut many: Vec<(OwnerKind, &str)> = strangers
        .iter()
        .map(|id| (OwnerKind::Person, id.as_str()))
        .collect();
    many.push((OwnerKind::Person, holder.id.as_str()));
    let lists = store.offenders_resolutions(&many, later).await.unwrap();
    assert_eq!(lists.len(), many.len());
    assert!(lists[..1_200].iter().all(Vec::is_empty));
    assert_eq!(numbers_of(&lists[1_200]), numbers);
    assert_eq!(
        store
            .claim_stage(CaseState::OwnerFound, "f2", 10, LONG_LEASE)
            .await
            .unwrap(),
        vec![reissued]
    );
    assert_eq!(
        store.record_nomination(&named).await.unwrap(),
        NominationRecorded::AlreadyRecorded(nomination.id)
    );

    // The car was stolen: closed, and on the hot list.
    let stolen = NewNomination {
        resolution_number: numbers[1].clone(),
        claim: Claim::Stolen {
            police_report: "КУСП-7".to_owned(),
            reported_at: at_millis(Utc::now()),
        },
        statement: "автомобиль угнан".to_owned(),
        recorded_by: "desk-1".to_owned(),
    };
    let NominationRecorded::Recorded {
        nomination,
        hot_list_entry,
        ..
    } = store.record_nomination(&stolen).await.unwrap()
    else {
        panic!("statement not recorded");
    };
    assert!(hot_list_entry.is_some());
    assert_eq!(nomination.reissued_case_id, None);
    assert_eq!(state(nomination.case_id).await, CaseState::Annulled);
    assert_eq!(
        store.nomination(&numbers[1]).await.unwrap(),
        Some(*nomination)
    );
    assert!(store
        .hot_list()
        .await
        .unwrap()
        .iter()
        .any(|e| e.reason == "stolen"));
    let unknown = NewNomination {
        resolution_number: "KG-BSK-2026-9999999".to_owned(),
        ..stolen
    };
    assert_eq!(
        store.record_nomination(&unknown).await.unwrap(),
        NominationRecorded::NotFound
    );
}

// ---- the payments ledger -----------------------------------------------------------

fn som(minor: i64) -> kozomol_core::Money {
    kozomol_core::Money::new(minor, kozomol_core::Currency::KGS)
}

/// A payment of `minor` tyiyn for the resolution `number` (see `new_resolution`: 5,000
/// som, 2,500 with the discount), reported through the REST API as `external_id`.
async fn payment_for(
    store: &dyn Store,
    number: &str,
    external_id: &str,
    minor: i64,
) -> kozomol_store::NewPayment {
    let resolution = store.resolution(number).await.unwrap().unwrap();
    kozomol_store::NewPayment {
        payment_code: resolution.payment_code,
        channel: kozomol_store::PaymentChannel::Api,
        source: "provider-1".to_owned(),
        external_id: external_id.to_owned(),
        amount: som(minor),
        paid_at: Utc::now(),
        exact_only: false,
        intent: None,
        posted_by: "payments-api".to_owned(),
    }
}

fn applied(posted: kozomol_store::PaymentPosted) -> kozomol_store::PaymentRecord {
    match posted {
        kozomol_store::PaymentPosted::Applied(record) => record,
        other => panic!("expected the payment applied, got {other:?}"),
    }
}

fn refused(posted: kozomol_store::PaymentPosted) -> kozomol_store::PaymentRefusal {
    match posted {
        kozomol_store::PaymentPosted::Refused(why) => why,
        other => panic!("expected the payment refused, got {other:?}"),
    }
}

async fn state_of(store: &dyn Store, number: &str) -> CaseState {
    let resolution = store.resolution(number).await.unwrap().unwrap();
    store.case(resolution.case_id).await.unwrap().unwrap().state
}

/// The resolution's delivery proven through the state portal today and its clocks
/// dated: the discount's window ends on `discount_until`.
async fn delivered_and_dated(store: &dyn Store, number: &str, discount_until: NaiveDate) {
    let resolution = store.resolution(number).await.unwrap().unwrap();
    store
        .record_delivery(&ProvenDelivery {
            resolution_number: number.to_owned(),
            target: DeliveryTarget::Reported {
                channel: DeliveryChannel::Portal,
                source: "portal:egov".to_owned(),
            },
            delivered_at: at_millis(Utc::now()),
            proof: serde_json::json!({"status": "delivered"}),
            reported_by: "portal:egov".to_owned(),
        })
        .await
        .unwrap();
    let claimed = store.claim_undated("d1", 100, LONG_LEASE).await.unwrap();
    assert!(claimed.contains(&resolution.case_id));
    let clock = kozomol_store::StoredClock {
        case_id: resolution.case_id,
        jurisdiction: kozomol_core::Jurisdiction::Kg,
        runs_from: discount_until - chrono::Days::new(15),
        discount_until: Some(discount_until),
        due: Some(discount_until + chrono::Days::new(15)),
        appeal_until: Some(discount_until - chrono::Days::new(5)),
        enforcement_by: None,
        lapses: Some(discount_until + chrono::Days::new(365)),
        discount_open: true,
        next_wakeup: Some(discount_until + chrono::Days::new(1)),
    };
    assert_eq!(
        store
            .record_clock(
                "d1",
                CaseState::Delivered,
                CaseState::Delivered,
                &clock,
                "{}"
            )
            .await
            .unwrap(),
        CompleteResult::Completed
    );
}

/// Noon in Bishkek on `day`.
fn bishkek_noon(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(6, 0, 0).unwrap().and_utc()
}

async fn payments_are_applied_once_and_move_the_case(store: Arc<dyn Store>) {
    let numbers = issued(store.as_ref(), 2, &person()).await;
    let (number, undelivered) = (&numbers[0], &numbers[1]);
    let until = date("2026-03-15");
    delivered_and_dated(store.as_ref(), number, until).await;

    // A part of the discounted amount moves the delivered case to partially_paid.
    let mut first = payment_for(store.as_ref(), number, "pay-1", 100_000).await;
    first.paid_at = bishkek_noon(date("2026-03-10"));
    let part = applied(store.post_payment(&first).await.unwrap());
    assert_eq!(
        (part.from_state, part.to_state, part.excess_minor),
        (CaseState::Delivered, CaseState::PartiallyPaid, 0)
    );
    assert_eq!(
        state_of(store.as_ref(), number).await,
        CaseState::PartiallyPaid
    );

    // The same report again is that payment; the same id for other money, or for
    // another fine, is refused.
    match store.post_payment(&first).await.unwrap() {
        kozomol_store::PaymentPosted::AlreadyPosted(again) => assert_eq!(again, part),
        other => panic!("expected the earlier payment, got {other:?}"),
    }
    let mut other_money = first.clone();
    other_money.amount = som(100_001);
    let mut other_fine = first.clone();
    other_fine.payment_code = store
        .resolution(undelivered)
        .await
        .unwrap()
        .unwrap()
        .payment_code;
    for reused in [other_money, other_fine] {
        assert!(matches!(
            refused(store.post_payment(&reused).await.unwrap()),
            kozomol_store::PaymentRefusal::IdReused(earlier) if earlier.id == part.id
        ));
    }

    // The rest of the discounted amount, paid on the window's last day and reported
    // days later, settles it at the discount; the tyiyn beyond is kept as excess.
    let mut rest = payment_for(store.as_ref(), number, "pay-2", 150_100).await;
    rest.paid_at = bishkek_noon(until);
    let rest = applied(store.post_payment(&rest).await.unwrap());
    assert_eq!(
        (rest.from_state, rest.to_state, rest.excess_minor),
        (CaseState::PartiallyPaid, CaseState::PaidDiscounted, 100)
    );
    assert_eq!(
        state_of(store.as_ref(), number).await,
        CaseState::PaidDiscounted
    );
    assert_eq!(
        refused(
            store
                .post_payment(&payment_for(store.as_ref(), number, "pay-3", 500_000).await)
                .await
                .unwrap()
        ),
        kozomol_store::PaymentRefusal::AlreadyPaid
    );

    let ledger = store.payments(number).await.unwrap();
    assert_eq!(ledger, vec![part.clone(), rest.clone()]);
    let audit: Vec<_> = store
        .case_audit(part.case_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.action == kozomol_store::PAYMENT_POSTED)
        .map(|row| (row.from_state, row.to_state, row.actor))
        .collect();
    assert_eq!(
        audit,
        vec![
            (
                Some(CaseState::Delivered),
                Some(CaseState::PartiallyPaid),
                "payments-api".to_owned()
            ),
            (
                Some(CaseState::PartiallyPaid),
                Some(CaseState::PaidDiscounted),
                "payments-api".to_owned()
            ),
        ]
    );

    // A part payment before delivery moves nothing: the case keeps its place in the
    // delivery and dating queues.
    let early = applied(
        store
            .post_payment(&payment_for(store.as_ref(), undelivered, "pay-4", 100_000).await)
            .await
            .unwrap(),
    );
    assert_eq!(
        (early.from_state, early.to_state),
        (CaseState::Issued, CaseState::Issued)
    );
    assert_eq!(
        state_of(store.as_ref(), undelivered).await,
        CaseState::Issued
    );
}

/// The discount belongs to money paid on days within the window, whatever order the
/// reports come in; after the window only the full amount settles.
async fn the_discount_follows_the_payers_days(store: Arc<dyn Store>) {
    let numbers = issued(store.as_ref(), 2, &person()).await;
    let until = date("2026-03-15");
    for number in &numbers {
        delivered_and_dated(store.as_ref(), number, until).await;
    }
    let paid_on = |number: &String, id: &'static str, minor: i64, day: &str| {
        let store = Arc::clone(&store);
        let (number, day) = (number.clone(), date(day));
        async move {
            let mut payment = payment_for(store.as_ref(), &number, id, minor).await;
            payment.paid_at = bishkek_noon(day);
            applied(store.post_payment(&payment).await.unwrap())
        }
    };
    // Late money reported first does not earn the discount for money paid in time...
    let late = paid_on(&numbers[0], "a-1", 100_000, "2026-03-20").await;
    assert_eq!(late.to_state, CaseState::PartiallyPaid);
    let in_time = paid_on(&numbers[0], "a-2", 150_000, "2026-03-10").await;
    assert_eq!(in_time.to_state, CaseState::PartiallyPaid);
    // ... which the rest of the full amount settles.
    let rest = paid_on(&numbers[0], "a-3", 250_000, "2026-03-21").await;
    assert_eq!((rest.to_state, rest.excess_minor), (CaseState::Paid, 0));

    // Money paid in time and reported after later money is still taken: the whole
    // discounted amount paid within the window settles the fine at the discount, and
    // the late money is excess to refund.
    let late = paid_on(&numbers[1], "b-1", 250_000, "2026-03-16").await;
    assert_eq!(late.to_state, CaseState::PartiallyPaid);
    let in_time = paid_on(&numbers[1], "b-2", 250_000, "2026-03-14").await;
    assert_eq!(
        (in_time.to_state, in_time.excess_minor),
        (CaseState::PaidDiscounted, 250_000)
    );
}

/// A bank's check before it pays: what is outstanding on the payer's day, or why
/// nothing is taken; a quote changes nothing.
async fn a_quote_says_what_a_payment_would_take(store: Arc<dyn Store>) {
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    let code = store
        .resolution(number)
        .await
        .unwrap()
        .unwrap()
        .payment_code;
    let outstanding = |day: &'static str| {
        let (store, code) = (Arc::clone(&store), code.clone());
        async move {
            match store
                .payment_quote(&code, bishkek_noon(date(day)))
                .await
                .unwrap()
            {
                Ok(quote) => {
                    assert_eq!(&quote.resolution_number, number);
                    quote.outstanding.minor
                }
                Err(refusal) => panic!("expected a quote, got {refusal:?}"),
            }
        }
    };
    // Before delivery every day is within the window.
    assert_eq!(outstanding("2026-09-01").await, 250_000);
    delivered_and_dated(store.as_ref(), number, date("2026-03-15")).await;
    assert_eq!(outstanding("2026-03-15").await, 250_000);
    assert_eq!(outstanding("2026-03-16").await, 500_000);
    let mut part = payment_for(store.as_ref(), number, "q-1", 100_000).await;
    part.paid_at = bishkek_noon(date("2026-03-10"));
    applied(store.post_payment(&part).await.unwrap());
    assert_eq!(outstanding("2026-03-11").await, 150_000);
    assert_eq!(outstanding("2026-03-16").await, 400_000);
    assert_eq!(
        state_of(store.as_ref(), number).await,
        CaseState::PartiallyPaid
    );

    let mut rest = payment_for(store.as_ref(), number, "q-2", 150_000).await;
    rest.paid_at = bishkek_noon(date("2026-03-11"));
    applied(store.post_payment(&rest).await.unwrap());
    assert_eq!(
        store.payment_quote(&code, Utc::now()).await.unwrap(),
        Err(kozomol_store::PaymentRefusal::AlreadyPaid)
    );
    assert_eq!(
        store
            .payment_quote("100000000000000009", Utc::now())
            .await
            .unwrap(),
        Err(kozomol_store::PaymentRefusal::UnknownCode)
    );
}

/// The clock rule a reversal is given in these tests: the discount open, waking on
/// 2026-03-16.
fn restart_on_the_16th(
    _clock: &kozomol_store::StoredClock,
    _state: CaseState,
    offered: bool,
    _now: DateTime<Utc>,
) -> (bool, Option<NaiveDate>) {
    (offered, Some(date("2026-03-16")))
}

fn reversal_of(code: &str, external_id: Option<&str>) -> kozomol_store::PaymentReversal {
    kozomol_store::PaymentReversal {
        payment_code: code.to_owned(),
        channel: kozomol_store::PaymentChannel::Api,
        source: "provider-1".to_owned(),
        external_id: external_id.map(str::to_owned),
        amount: None,
        paid_at: None,
        reversal_id: None,
        reason: "the payer's bank recalled it".to_owned(),
        reversed_by: "payments-api".to_owned(),
        restart_clock: restart_on_the_16th,
        money_left: false,
    }
}

/// A payment its reporter takes back stays in the ledger, reversed: it no longer
/// counts, the case goes back as the remaining money decides, its clock runs again,
/// and a second reversal changes nothing.
async fn a_reversed_payment_no_longer_counts(store: Arc<dyn Store>) {
    use kozomol_store::PaymentReversed;
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    let code = store
        .resolution(number)
        .await
        .unwrap()
        .unwrap()
        .payment_code;
    delivered_and_dated(store.as_ref(), number, date("2026-03-15")).await;
    let case_id = store.resolution(number).await.unwrap().unwrap().case_id;
    let paid_on = |id: &'static str, minor: i64| {
        let store = Arc::clone(&store);
        async move {
            let mut payment = payment_for(store.as_ref(), number, id, minor).await;
            payment.paid_at = bishkek_noon(date("2026-03-10"));
            applied(store.post_payment(&payment).await.unwrap())
        }
    };
    let part = paid_on("r-1", 100_000).await;
    let rest = paid_on("r-2", 150_000).await;
    assert_eq!(rest.to_state, CaseState::PaidDiscounted);
    // A paid case's clock is stopped by the deadlines scheduler.
    let clock = store.clock(case_id).await.unwrap().unwrap();
    assert!(store
        .apply_deadline(&kozomol_store::DeadlineWrite {
            case_id,
            from: CaseState::PaidDiscounted,
            to: None,
            expected_wakeup: clock.next_wakeup,
            discount_open: false,
            next_wakeup: None,
            detail: r#"{"move":"clock_stopped"}"#,
            actor: "deadlines",
        })
        .await
        .unwrap());
    assert_eq!(
        store.clock(case_id).await.unwrap().unwrap().next_wakeup,
        None
    );

    // The latest payment reversed: part of the fine stays paid.
    match store
        .reverse_payment(&reversal_of(&code, None))
        .await
        .unwrap()
    {
        PaymentReversed::Reversed {
            payment,
            from_state,
            to_state,
        } => {
            assert_eq!(payment.id, rest.id);
            assert!(payment.reversed_at.is_some());
            assert_eq!(
                (from_state, to_state),
                (CaseState::PaidDiscounted, CaseState::PartiallyPaid)
            );
        }
        other => panic!("expected the payment reversed, got {other:?}"),
    }
    assert_eq!(
        state_of(store.as_ref(), number).await,
        CaseState::PartiallyPaid
    );
    assert_eq!(
        store.clock(case_id).await.unwrap().unwrap().next_wakeup,
        Some(date("2026-03-16")),
        "the clock runs again"
    );
    let outstanding = store
        .payment_quote(&code, bishkek_noon(date("2026-03-11")))
        .await
        .unwrap()
        .expect("a quote");
    assert_eq!(
        outstanding.outstanding.minor, 150_000,
        "the reversed money no longer counts"
    );

    // Again: nothing changes.
    assert!(matches!(
        store.reverse_payment(&reversal_of(&code, Some("r-2"))).await.unwrap(),
        PaymentReversed::AlreadyReversed(p) if p.id == rest.id
    ));
    // A reversal naming another amount than the payment's is not of that payment: 1.00
    // taken back never takes back the whole.
    let mut partial = reversal_of(&code, Some("r-1"));
    partial.amount = Some(kozomol_core::Money::new(
        part.amount.minor - 100,
        part.amount.currency,
    ));
    assert!(matches!(
        store.reverse_payment(&partial).await.unwrap(),
        PaymentReversed::NoPayment
    ));
    // The first payment too: the case is as if never paid.
    assert!(matches!(
        store.reverse_payment(&reversal_of(&code, Some("r-1"))).await.unwrap(),
        PaymentReversed::Reversed { payment, to_state: CaseState::Delivered, .. } if payment.id == part.id
    ));
    assert_eq!(state_of(store.as_ref(), number).await, CaseState::Delivered);
    // A cancel naming sum and time takes back the latest standing payment of them; the
    // same cancel sent again (by its id) finds the payment it took back, never one the
    // reporter sent after it with the same sum and time.
    let first = paid_on("r-3", 100_000).await;
    let mut cancel = reversal_of(&code, None);
    cancel.amount = Some(first.amount);
    cancel.paid_at = Some(first.paid_at);
    cancel.reversal_id = Some("cancel-3".to_owned());
    assert!(matches!(
        store.reverse_payment(&cancel).await.unwrap(),
        PaymentReversed::Reversed { payment, .. } if payment.id == first.id
    ));
    let corrected = paid_on("r-4", 100_000).await;
    assert_eq!(corrected.paid_at, first.paid_at);
    assert!(matches!(
        store.reverse_payment(&cancel).await.unwrap(),
        PaymentReversed::AlreadyReversed(p) if p.id == first.id
    ));
    assert_eq!(
        state_of(store.as_ref(), number).await,
        CaseState::PartiallyPaid,
        "the corrected payment stands"
    );
    // Another cancel of that sum and time is of the payment still standing.
    let mut another = cancel.clone();
    another.reversal_id = Some("cancel-4".to_owned());
    assert!(matches!(
        store.reverse_payment(&another).await.unwrap(),
        PaymentReversed::Reversed { payment, .. } if payment.id == corrected.id
    ));
    assert_eq!(state_of(store.as_ref(), number).await, CaseState::Delivered);
    assert!(matches!(
        store
            .reverse_payment(&reversal_of(&code, Some("r-9")))
            .await
            .unwrap(),
        PaymentReversed::NoPayment
    ));
    assert!(matches!(
        store
            .reverse_payment(&reversal_of("100000000000000009", None))
            .await
            .unwrap(),
        PaymentReversed::UnknownCode
    ));
    let ledger = store.payments(number).await.unwrap();
    assert_eq!(ledger.len(), 4);
    assert!(ledger.iter().all(|p| p.reversed_at.is_some()));
    let actions: Vec<String> = store
        .case_audit(case_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("case.payment"))
        .collect();
    assert_eq!(
        actions,
        [
            "case.payment_posted",
            "case.payment_posted",
            "case.payment_reversed",
            "case.payment_reversed",
            "case.payment_posted",
            "case.payment_reversed",
            "case.payment_posted",
            "case.payment_reversed"
        ]
    );
}

/// Excess is queued for refund with its payment; a reversal withdraws the case's queued
/// excess and queues what the rest still brings; an annulled fine's money less its
/// excess is queued apart, whatever state it was in; finance settles each once.
async fn money_to_give_back_is_queued_and_settled_once(store: Arc<dyn Store>) {
    use kozomol_store::{PaymentReversed, RefundOutcome, RefundSettled, RefundSettlement};
    let numbers = issued(store.as_ref(), 3, &person()).await;
    let (a, b, c) = (&numbers[0], &numbers[1], &numbers[2]);
    let refunds = || {
        let store = Arc::clone(&store);
        async move {
            store
                .refund_requests(0, 20)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.cause, r.payment_id, r.amount.minor, r.state))
                .collect::<Vec<_>>()
        }
    };
    let row = |cause: &str, payment: Option<i64>, minor: i64, state: &str| {
        (cause.to_owned(), payment, minor, state.to_owned())
    };
    let settle = |id: i64, outcome: RefundOutcome, reference: Option<&str>, note: Option<&str>| {
        RefundSettlement {
            id,
            outcome,
            reference: reference.map(str::to_owned),
            note: note.map(str::to_owned),
            settled_by: "finance-1".to_owned(),
        }
    };
    let annul = |number: &String| {
        let store = Arc::clone(&store);
        let number = number.clone();
        async move {
            let case_id = store.resolution(&number).await.unwrap().unwrap().case_id;
            let kozomol_store::AppealFiled::Filed(appeal) = store
                .file_appeal(&kozomol_store::NewAppeal {
                    case_id,
                    appellant: "Асанов Бакыт Токтогулович".to_owned(),
                    contact: None,
                    grounds: "Камера не поверена".to_owned(),
                    filed_by: "portal".to_owned(),
                    attachments: vec![],
                })
                .await
                .unwrap()
            else {
                panic!("not filed");
            };
            store
                .decide_appeal(
                    appeal.id,
                    kozomol_store::AppealState::Annulled,
                    "supervisor-1",
                    "",
                )
                .await
                .unwrap()
        }
    };

    // A: 3,000 within the window settles the discounted 2,500; 500 to give back.
    delivered_and_dated(store.as_ref(), a, date("2026-03-15")).await;
    let mut over = payment_for(store.as_ref(), a, "x-1", 300_000).await;
    over.paid_at = bishkek_noon(date("2026-03-10"));
    let over = applied(store.post_payment(&over).await.unwrap());
    assert_eq!(
        (over.to_state, over.excess_minor),
        (CaseState::PaidDiscounted, 50_000)
    );
    // B, not delivered yet: 1,000 then 3,000 against the discounted 2,500.
    let b1 = applied(
        store
            .post_payment(&payment_for(store.as_ref(), b, "x-2", 100_000).await)
            .await
            .unwrap(),
    );
    let b2 = applied(
        store
            .post_payment(&payment_for(store.as_ref(), b, "x-3", 300_000).await)
            .await
            .unwrap(),
    );
    assert_eq!(b2.excess_minor, 150_000);
    assert_eq!(
        refunds().await,
        [
            row("excess", Some(over.id), 50_000, "queued"),
            row("excess", Some(b2.id), 150_000, "queued"),
        ]
    );
    // The 1,000 is taken back: the 3,000 left brings 500 beyond the 2,500, not 1,500.
    let code_b = store.resolution(b).await.unwrap().unwrap().payment_code;
    assert!(matches!(
        store
            .reverse_payment(&reversal_of(&code_b, Some("x-2")))
            .await
            .unwrap(),
        PaymentReversed::Reversed { .. }
    ));
    assert_eq!(
        refunds().await[1..],
        [
            row("excess", Some(b2.id), 150_000, "withdrawn"),
            row("excess", Some(b2.id), 50_000, "queued"),
        ]
    );
    let requests = store.refund_requests(0, 20).await.unwrap();
    let (a_excess, b_withdrawn, b_excess) = (requests[0].id, requests[1].id, requests[2].id);
    // Money once paid back stops automatic reversals of the fine's payments.
    assert!(matches!(
        store
            .settle_refund(&settle(
                b_excess,
                RefundOutcome::Refunded,
                Some("TR-B"),
                None
            ))
            .await
            .unwrap(),
        RefundSettled::Settled(_)
    ));
    assert!(matches!(
        store
            .reverse_payment(&reversal_of(&code_b, Some("x-3")))
            .await
            .unwrap(),
        PaymentReversed::NotReversible(CaseState::PaidDiscounted)
    ));
    assert!(b1.id < b2.id);

    // A's excess is kept by the payer's wish; then A is annulled: the 2,500 it took for
    // the fine goes back, not the 500 again.
    assert!(matches!(
        store
            .settle_refund(&settle(
                a_excess,
                RefundOutcome::Cancelled,
                None,
                Some("paid in cash at the office")
            ))
            .await
            .unwrap(),
        RefundSettled::Settled(_)
    ));
    annul(a).await;
    // C took 1,000 while issued (no state says it): annulled, that goes back.
    applied(
        store
            .post_payment(&payment_for(store.as_ref(), c, "x-4", 100_000).await)
            .await
            .unwrap(),
    );
    annul(c).await;
    let requests = store.refund_requests(0, 20).await.unwrap();
    assert_eq!(
        requests[3..]
            .iter()
            .map(|r| (r.cause.as_str(), r.payment_id, r.amount.minor))
            .collect::<Vec<_>>(),
        [("annulled", None, 250_000), ("annulled", None, 100_000)]
    );
    let annulled = requests[3].id;

    // Money paid back names its transfer; a cancellation says why.
    for refused in [
        settle(annulled, RefundOutcome::Refunded, None, Some("paid")),
        settle(annulled, RefundOutcome::Refunded, Some("  "), None),
        settle(annulled, RefundOutcome::Cancelled, Some("TR-1"), None),
    ] {
        assert!(matches!(
            store.settle_refund(&refused).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let RefundSettled::Settled(paid) = store
        .settle_refund(&settle(
            annulled,
            RefundOutcome::Refunded,
            Some("TR-77"),
            None,
        ))
        .await
        .unwrap()
    else {
        panic!("settled");
    };
    assert_eq!(
        (
            paid.state.as_str(),
            paid.reference.as_deref(),
            paid.settled_by.as_deref()
        ),
        ("refunded", Some("TR-77"), Some("finance-1"))
    );
    assert!(paid.settled_at.is_some());
    // The annulment's money went back: A ends refunded, and its audit says so. An
    // excess paid back (B's above) leaves its standing fine where it was.
    assert_eq!(state_of(store.as_ref(), a).await, CaseState::Refunded);
    assert_eq!(state_of(store.as_ref(), b).await, CaseState::PaidDiscounted);
    let settled = store
        .case_audit(paid.case_id)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|row| row.action == kozomol_store::appeals::REFUND_SETTLED)
        .expect("audited");
    assert_eq!(
        (settled.from_state, settled.to_state),
        (Some(CaseState::Annulled), Some(CaseState::Refunded))
    );
    // Settled once: a second settlement, either way, changes nothing.
    assert_eq!(
        store
            .settle_refund(&settle(
                annulled,
                RefundOutcome::Cancelled,
                None,
                Some("twice")
            ))
            .await
            .unwrap(),
        RefundSettled::AlreadySettled(paid)
    );
    // A withdrawn excess takes a refund finance made before the reversal, nothing else.
    assert!(matches!(
        store
            .settle_refund(&settle(
                b_withdrawn,
                RefundOutcome::Cancelled,
                None,
                Some("no")
            ))
            .await
            .unwrap(),
        RefundSettled::AlreadySettled(_)
    ));
    assert!(matches!(
        store
            .settle_refund(&settle(
                b_withdrawn,
                RefundOutcome::Refunded,
                Some("TR-0"),
                None
            ))
            .await
            .unwrap(),
        RefundSettled::Settled(_)
    ));
    assert_eq!(
        store
            .settle_refund(&settle(9_999, RefundOutcome::Refunded, Some("TR-9"), None))
            .await
            .unwrap(),
        RefundSettled::NotFound
    );
    let case_a = store.resolution(a).await.unwrap().unwrap().case_id;
    let audit = store.case_audit(case_a).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|row| row.action == "case.refund_settled")
            .count(),
        2
    );
}

/// Finance paid back an excess, then a reversal withdrew it before that was recorded
/// and queued the smaller excess the rest brings: recording the refund withdraws that
/// one, or the payer would get both (the reversal only took money away).
async fn an_excess_paid_back_before_its_reversal_withdraws_the_excess_queued_after(
    store: Arc<dyn Store>,
) {
    use kozomol_store::{PaymentReversed, RefundOutcome, RefundSettled, RefundSettlement};
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    // 1,000 then 3,000 against the discounted 2,500: 1,500 to give back.
    applied(
        store
            .post_payment(&payment_for(store.as_ref(), number, "y-1", 100_000).await)
            .await
            .unwrap(),
    );
    let second = applied(
        store
            .post_payment(&payment_for(store.as_ref(), number, "y-2", 300_000).await)
            .await
            .unwrap(),
    );
    assert_eq!(second.excess_minor, 150_000);
    // Finance transfers the 1,500; before it records that, the 1,000 is reversed.
    let code = store
        .resolution(number)
        .await
        .unwrap()
        .unwrap()
        .payment_code;
    assert!(matches!(
        store
            .reverse_payment(&reversal_of(&code, Some("y-1")))
            .await
            .unwrap(),
        PaymentReversed::Reversed { .. }
    ));
    let requests = store.refund_requests(0, 20).await.unwrap();
    let states: Vec<(i64, &str)> = requests
        .iter()
        .map(|r| (r.amount.minor, r.state.as_str()))
        .collect();
    assert_eq!(states, [(150_000, "withdrawn"), (50_000, "queued")]);
    let settled = store
        .settle_refund(&RefundSettlement {
            id: requests[0].id,
            outcome: RefundOutcome::Refunded,
            reference: Some("TR-1".to_owned()),
            note: None,
            settled_by: "finance-1".to_owned(),
        })
        .await
        .unwrap();
    assert!(matches!(settled, RefundSettled::Settled(_)), "{settled:?}");
    let after: Vec<(i64, String)> = store
        .refund_requests(0, 20)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.amount.minor, r.state))
        .collect();
    assert_eq!(
        after,
        [
            (150_000, "refunded".to_owned()),
            (50_000, "withdrawn".to_owned())
        ]
    );
}

/// Finance cancelled the excess of a payment later charged back: that decision was
/// about money now gone, so an annulment still returns all that the standing payment
/// brought (less its own excess, owed apart).
async fn an_excess_cancelled_on_a_reversed_payment_takes_nothing_from_a_refund(
    store: Arc<dyn Store>,
) {
    use kozomol_store::{
        AppealDecided, AppealState, PaymentReversed, RefundOutcome, RefundSettled, RefundSettlement,
    };
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    let code = store
        .resolution(number)
        .await
        .unwrap()
        .unwrap()
        .payment_code;
    // 3,000 against the discounted 2,500; finance keeps the 500 (cancels its refund).
    applied(
        store
            .post_payment(&payment_for(store.as_ref(), number, "z-1", 300_000).await)
            .await
            .unwrap(),
    );
    let excess = store.refund_requests(0, 20).await.unwrap();
    assert_eq!(excess.len(), 1, "{excess:?}");
    assert!(matches!(
        store
            .settle_refund(&RefundSettlement {
                id: excess[0].id,
                outcome: RefundOutcome::Cancelled,
                reference: None,
                note: Some("the payer asked to keep it".to_owned()),
                settled_by: "finance-1".to_owned(),
            })
            .await
            .unwrap(),
        RefundSettled::Settled(_)
    ));
    // The 3,000 is charged back; the payer pays 3,000 again, 500 beyond the fine.
    assert!(matches!(
        store
            .reverse_payment(&reversal_of(&code, Some("z-1")))
            .await
            .unwrap(),
        PaymentReversed::Reversed { .. }
    ));
    let again = applied(
        store
            .post_payment(&payment_for(store.as_ref(), number, "z-2", 300_000).await)
            .await
            .unwrap(),
    );
    assert_eq!(again.excess_minor, 50_000);
    let case_id = store.resolution(number).await.unwrap().unwrap().case_id;
    let appeal = owners_appeal(store.as_ref(), case_id).await;
    let decided = store
        .decide_appeal(appeal.id, AppealState::Annulled, "supervisor-1", "отменено")
        .await
        .unwrap();
    assert!(
        matches!(
            decided,
            AppealDecided::Decided {
                refund_request: Some(_),
                ..
            }
        ),
        "{decided:?}"
    );
    let owed: Vec<(String, i64, String)> = store
        .refund_requests(0, 20)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.cause, r.amount.minor, r.state))
        .collect();
    assert_eq!(
        owed,
        [
            ("excess".to_owned(), 50_000, "cancelled".to_owned()),
            ("excess".to_owned(), 50_000, "queued".to_owned()),
            ("annulled".to_owned(), 250_000, "queued".to_owned()),
        ]
    );
}

/// An excess finance had paid back when its payment was charged back still went to
/// the payer: an annulment afterwards owes only what the money left brings beyond it
/// (here nothing: 1,000 stands, 1,500 went back).
async fn an_excess_paid_back_on_a_reversed_payment_still_counts_against_a_refund(
    store: Arc<dyn Store>,
) {
    use kozomol_store::{
        AppealDecided, AppealState, PaymentReversed, RefundOutcome, RefundSettled, RefundSettlement,
    };
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    let resolution = store.resolution(number).await.unwrap().unwrap();
    for (id, minor) in [("w-1", 100_000), ("w-2", 300_000)] {
        applied(
            store
                .post_payment(&payment_for(store.as_ref(), number, id, minor).await)
                .await
                .unwrap(),
        );
    }
    assert!(matches!(
        store
            .reverse_payment(&reversal_of(&resolution.payment_code, Some("w-2")))
            .await
            .unwrap(),
        PaymentReversed::Reversed { .. }
    ));
    // Finance had sent the 1,500 before the chargeback; it records that now.
    let withdrawn = store.refund_requests(0, 20).await.unwrap();
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    assert!(matches!(
        store
            .settle_refund(&RefundSettlement {
                id: withdrawn[0].id,
                outcome: RefundOutcome::Refunded,
                reference: Some("TR-9".to_owned()),
                note: None,
                settled_by: "finance-1".to_owned(),
            })
            .await
            .unwrap(),
        RefundSettled::Settled(_)
    ));
    let appeal = owners_appeal(store.as_ref(), resolution.case_id).await;
    let decided = store
        .decide_appeal(appeal.id, AppealState::Annulled, "supervisor-1", "отменено")
        .await
        .unwrap();
    assert_eq!(
        decided,
        AppealDecided::Decided {
            case_state: CaseState::Annulled,
            refund_request: None
        }
    );
}

/// The owner's appeal of `case_id`, filed through the portal.
async fn owners_appeal(store: &dyn Store, case_id: CaseId) -> kozomol_store::AppealRecord {
    let filed = store
        .file_appeal(&kozomol_store::NewAppeal {
            case_id,
            appellant: "Асанов Бакыт Токтогулович".to_owned(),
            contact: None,
            grounds: "Я не управлял автомобилем".to_owned(),
            filed_by: "portal:203.0.113.7".to_owned(),
            attachments: vec![],
        })
        .await
        .unwrap();
    match filed {
        kozomol_store::AppealFiled::Filed(appeal) => *appeal,
        other => panic!("not filed: {other:?}"),
    }
}

/// The portal's one read of a fine says what the separate reads say: the case, its
/// photos and place, the clock, what the standing payments took (a reversed one no
/// longer), what paying on a day takes, and the latest appeal.
async fn a_payers_view_reads_the_fine_at_once(store: Arc<dyn Store>) {
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    let resolution = store.resolution(number).await.unwrap().unwrap();
    let case = store.case(resolution.case_id).await.unwrap().unwrap();
    let view = |day: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .payer_view(number, bishkek_noon(date(day)))
                .await
                .unwrap()
                .expect("a view")
        }
    };

    let fresh = view("2026-09-01").await;
    assert_eq!(fresh.resolution, resolution);
    assert_eq!(
        (fresh.state, fresh.kind, fresh.captured_at),
        (CaseState::Issued, case.kind, case.captured_at)
    );
    let decided = store.decided_plate(case.id).await.unwrap();
    assert_eq!(fresh.plate, decided.or(case.plate.clone()));
    assert_eq!(
        fresh.frames,
        case.frames.iter().map(|f| f.index).collect::<Vec<_>>()
    );
    let site = fresh.site.expect("the camera's site");
    assert_eq!(site.address, "Бишкек, пр. Чуй / ул. Советская");
    assert_eq!(site.lat_e6, Some(42_874_621));

    // The camera moves to another site: the fine stays where it was seen.
    let camera_id = case.camera_id.clone().expect("a camera's case");
    let mut moved = store.camera(&camera_id).await.unwrap().expect("registered");
    moved.site.address = "Бишкек, ул. Ахунбаева / ул. Манаса".to_owned();
    moved.site.lat_e6 = 42_845_000;
    store
        .register_camera(&kozomol_store::CameraRegistration {
            camera_id: moved.camera_id.clone(),
            public_key: moved.public_key,
            device_serial: moved.device_serial.clone(),
            certificate: moved.certificates[0].clone(),
            site: moved.site.clone(),
        })
        .await
        .unwrap();
    assert_eq!(view("2026-09-01").await.site, Some(site.clone()));
    // The bus's listings read the same place for many cases at once.
    let places = store
        .case_places(&[case.id, CaseId(case.id.0 + 10_000)])
        .await
        .unwrap();
    assert_eq!(places.len(), 1, "{places:?}");
    assert_eq!(places[&case.id], site);
    assert!(fresh.discount_open && fresh.discount_until.is_none());
    assert_eq!(
        (fresh.paid_minor, fresh.outstanding),
        (0, Some(som(250_000)))
    );
    assert!(fresh.latest_appeal.is_none());

    delivered_and_dated(store.as_ref(), number, date("2026-03-15")).await;
    let mut part = payment_for(store.as_ref(), number, "v-1", 100_000).await;
    part.paid_at = bishkek_noon(date("2026-03-10"));
    applied(store.post_payment(&part).await.unwrap());
    let clock = store.clock(case.id).await.unwrap().unwrap();
    for day in ["2026-03-11", "2026-03-16"] {
        let seen = view(day).await;
        let quote = store
            .payment_quote(&resolution.payment_code, bishkek_noon(date(day)))
            .await
            .unwrap()
            .expect("a quote");
        assert_eq!(seen.outstanding, Some(quote.outstanding), "{day}");
        assert_eq!(seen.state, CaseState::PartiallyPaid);
        assert_eq!(seen.paid_minor, 100_000);
        assert_eq!(
            (
                seen.discount_until,
                seen.due,
                seen.appeal_until,
                seen.discount_open
            ),
            (
                clock.discount_until,
                clock.due,
                clock.appeal_until,
                clock.discount_open
            )
        );
    }
    assert_eq!(view("2026-03-16").await.outstanding, Some(som(400_000)));

    store
        .reverse_payment(&reversal_of(&resolution.payment_code, Some("v-1")))
        .await
        .unwrap();
    let reversed = view("2026-03-11").await;
    assert_eq!(
        reversed.paid_minor, 0,
        "a reversed payment no longer counts"
    );
    assert_eq!(reversed.outstanding, Some(som(250_000)));

    let appeal = owners_appeal(store.as_ref(), case.id).await;
    let appealed = view("2026-03-11").await;
    assert_eq!(appealed.state, CaseState::Appealed);
    assert_eq!(
        appealed.outstanding, None,
        "an open appeal takes no payment"
    );
    assert_eq!(
        appealed.latest_appeal,
        Some(kozomol_store::AppealGist::from(&appeal))
    );

    assert!(store
        .payer_view("KG-BSK-2026-9999999", Utc::now())
        .await
        .unwrap()
        .is_none());
}

/// An appeal takes no payment while it is open and forfeits the discount for money paid
/// from its filing on; money paid before it (reported late, by the bank's date) keeps
/// the discount.
async fn an_appeal_forfeits_the_discount(store: Arc<dyn Store>) {
    let numbers = issued(store.as_ref(), 3, &person()).await;
    let today = kozomol_core::Jurisdiction::Kg.local_date(Utc::now());
    let until = today + chrono::Days::new(10);
    let mut filed_at = Vec::new();
    for number in &numbers {
        delivered_and_dated(store.as_ref(), number, until).await;
        let case_id = store.resolution(number).await.unwrap().unwrap().case_id;
        let appeal = owners_appeal(store.as_ref(), case_id).await;
        let payment = payment_for(store.as_ref(), number, "c-0", 250_000).await;
        assert_eq!(
            refused(store.post_payment(&payment).await.unwrap()),
            kozomol_store::PaymentRefusal::NotPayable(CaseState::Appealed)
        );
        store
            .decide_appeal(
                appeal.id,
                kozomol_store::AppealState::Rejected,
                "supervisor-1",
                "",
            )
            .await
            .unwrap();
        filed_at.push(appeal.filed_at);
    }
    let (after, before, exact) = (&numbers[0], &numbers[1], &numbers[2]);
    // The discounted amount paid after the filing, within the window: a part of the
    // full amount.
    let mut payment = payment_for(store.as_ref(), after, "c-1", 250_000).await;
    payment.paid_at = filed_at[0];
    let part = applied(store.post_payment(&payment).await.unwrap());
    assert_eq!(
        (part.from_state, part.to_state),
        (CaseState::AppealRejected, CaseState::AppealRejected)
    );
    let mut rest = payment_for(store.as_ref(), after, "c-2", 250_000).await;
    rest.paid_at = Utc::now();
    let rest = applied(store.post_payment(&rest).await.unwrap());
    assert_eq!((rest.to_state, rest.excess_minor), (CaseState::Paid, 0));
    // Taken back: the clock runs again, with no discount to open.
    let code = store.resolution(after).await.unwrap().unwrap().payment_code;
    store
        .reverse_payment(&reversal_of(&code, Some("c-2")))
        .await
        .unwrap();
    let case_id = store.resolution(after).await.unwrap().unwrap().case_id;
    let clock = store.clock(case_id).await.unwrap().unwrap();
    assert!(!clock.discount_open, "{clock:?}");
    // Paid a second before the filing, reported after the rejection: it settles the
    // fine at the discount.
    let mut early = payment_for(store.as_ref(), before, "c-3", 250_000).await;
    early.paid_at = filed_at[1] - chrono::Duration::seconds(1);
    let early = applied(store.post_payment(&early).await.unwrap());
    assert_eq!(
        (early.to_state, early.excess_minor),
        (CaseState::PaidDiscounted, 0)
    );
    // The same through a bank that pays only the exact sum: the sum it is quoted, and
    // takes, is the discounted one for a payment made before the filing, the full one
    // after.
    let code = store.resolution(exact).await.unwrap().unwrap().payment_code;
    let second = chrono::Duration::seconds(1);
    for (at, want) in [(filed_at[2] - second, 250_000), (filed_at[2], 500_000)] {
        let quote = store.payment_quote(&code, at).await.unwrap().unwrap();
        assert_eq!(quote.outstanding, som(want), "paid at {at}");
    }
    let mut exactly = payment_for(store.as_ref(), exact, "c-4", 250_000).await;
    exactly.paid_at = filed_at[2] - second;
    exactly.exact_only = true;
    let exactly = applied(store.post_payment(&exactly).await.unwrap());
    assert_eq!(
        (exactly.to_state, exactly.excess_minor),
        (CaseState::PaidDiscounted, 0)
    );
}

async fn exact_payments_take_only_what_is_outstanding(store: Arc<dyn Store>) {
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    let exact = |id: &'static str, minor: i64| {
        let store = Arc::clone(&store);
        let number = number.clone();
        async move {
            let mut payment = payment_for(store.as_ref(), &number, id, minor).await;
            payment.channel = kozomol_store::PaymentChannel::Soap;
            payment.source = "central-server/COM/12345678/bank".to_owned();
            payment.exact_only = true;
            store.post_payment(&payment).await.unwrap()
        }
    };
    assert_eq!(
        refused(exact("soap-1", 249_999).await),
        kozomol_store::PaymentRefusal::Underpaid {
            outstanding: som(250_000)
        }
    );
    assert_eq!(
        refused(exact("soap-2", 250_001).await),
        kozomol_store::PaymentRefusal::Overpaid {
            outstanding: som(250_000)
        }
    );
    assert!(
        store.payments(number).await.unwrap().is_empty(),
        "refusals are not recorded"
    );
    let paid = applied(exact("soap-3", 250_000).await);
    assert_eq!(paid.to_state, CaseState::PaidDiscounted);
    assert_eq!(
        refused(exact("soap-4", 250_000).await),
        kozomol_store::PaymentRefusal::AlreadyPaid
    );
}

async fn payments_no_fine_can_take_are_refused(store: Arc<dyn Store>) {
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let number = &numbers[0];
    let mut unknown = payment_for(store.as_ref(), number, "x-1", 250_000).await;
    unknown.payment_code = "112600100000000009".to_owned();
    assert_eq!(
        refused(store.post_payment(&unknown).await.unwrap()),
        kozomol_store::PaymentRefusal::UnknownCode
    );
    let mut tenge = payment_for(store.as_ref(), number, "x-2", 250_000).await;
    tenge.amount = kozomol_core::Money::new(250_000, kozomol_core::Currency::KZT);
    assert!(matches!(
        refused(store.post_payment(&tenge).await.unwrap()),
        kozomol_store::PaymentRefusal::Invalid(why) if why.contains("KZT")
    ));
    let mut nobody = payment_for(store.as_ref(), number, "x-3", 250_000).await;
    nobody.source = " ".to_owned();
    assert!(matches!(
        store.post_payment(&nobody).await,
        Err(StoreError::Invalid(why)) if why.contains("source")
    ));
    assert!(store.payments(number).await.unwrap().is_empty());
    assert_eq!(state_of(store.as_ref(), number).await, CaseState::Issued);
}

/// Ten reports of one payment at once (a callback retried by an impatient provider),
/// then ten different banks paying one fine at once: each fine is paid once.
async fn one_payment_reported_ten_times_at_once_is_applied_once(url: String) {
    let store = kozomol_store::connect(&url).await.unwrap();
    let numbers = issued(store.as_ref(), 2, &person()).await;

    let payment = payment_for(store.as_ref(), &numbers[0], "callback-1", 250_000).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, payment) = (kozomol_store::connect(&url).await.unwrap(), payment.clone());
        tasks.spawn(async move { store.post_payment(&payment).await.unwrap() });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done.unwrap());
    }
    let applied_ids: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            kozomol_store::PaymentPosted::Applied(r) => Some(r.id),
            _ => None,
        })
        .collect();
    assert_eq!(applied_ids.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| match o {
        kozomol_store::PaymentPosted::Applied(_) => true,
        kozomol_store::PaymentPosted::AlreadyPosted(r) => r.id == applied_ids[0],
        _ => false,
    }));
    assert_eq!(store.payments(&numbers[0]).await.unwrap().len(), 1);

    let mut tasks = tokio::task::JoinSet::new();
    for bank in 0..10 {
        let store = kozomol_store::connect(&url).await.unwrap();
        let mut payment = payment_for(
            store.as_ref(),
            &numbers[1],
            &format!("bank-{bank}"),
            250_000,
        )
        .await;
        payment.channel = kozomol_store::PaymentChannel::Soap;
        payment.source = format!("central-server/COM/1000000{bank}/bank");
        payment.exact_only = true;
        tasks.spawn(async move { store.post_payment(&payment).await.unwrap() });
    }
    let mut applied = 0;
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            kozomol_store::PaymentPosted::Applied(_) => applied += 1,
            kozomol_store::PaymentPosted::Refused(kozomol_store::PaymentRefusal::AlreadyPaid) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(store.payments(&numbers[1]).await.unwrap().len(), 1);
    assert_eq!(
        state_of(store.as_ref(), &numbers[1]).await,
        CaseState::PaidDiscounted
    );
}

// ---- the REST payment API: intents, idempotency keys, callbacks ---------------------

async fn intent_for(
    store: &dyn Store,
    number: &str,
    id: &str,
    minor: i64,
) -> kozomol_store::PaymentIntent {
    let resolution = store.resolution(number).await.unwrap().unwrap();
    store
        .create_intent(&kozomol_store::NewPaymentIntent {
            id: id.to_owned(),
            provider: "provider-1".to_owned(),
            payment_code: resolution.payment_code,
            resolution_number: number.to_owned(),
            case_id: resolution.case_id,
            amount: som(minor),
            created_at: Utc::now(),
        })
        .await
        .unwrap()
}

/// Payments naming an intent and cancellations of it, all at once: the intent ends
/// paid by exactly one payment (every cancel after it refused), or cancelled with no
/// payment taken.
async fn an_intent_is_either_paid_once_or_cancelled(url: String) {
    use kozomol_store::{
        IntentCancelled, IntentRefusal, IntentStatus, PaymentPosted, PaymentRefusal,
    };
    let store = kozomol_store::connect(&url).await.unwrap();
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let intent = intent_for(store.as_ref(), &numbers[0], "pi_race", 250_000).await;
    assert_eq!(intent.status, IntentStatus::RequiresPayment);
    // Its id is the provider's own: taken twice, it conflicts.
    let again = store
        .create_intent(&kozomol_store::NewPaymentIntent {
            id: "pi_race".to_owned(),
            provider: "provider-1".to_owned(),
            payment_code: intent.payment_code.clone(),
            resolution_number: numbers[0].clone(),
            case_id: intent.case_id,
            amount: som(1),
            created_at: Utc::now(),
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );

    let mut payments = tokio::task::JoinSet::new();
    let mut cancels = tokio::task::JoinSet::new();
    for i in 0..5 {
        let store = kozomol_store::connect(&url).await.unwrap();
        let mut payment =
            payment_for(store.as_ref(), &numbers[0], &format!("pay-{i}"), 250_000).await;
        payment.intent = Some("pi_race".to_owned());
        payments.spawn(async move { store.post_payment(&payment).await.unwrap() });
        let store = kozomol_store::connect(&url).await.unwrap();
        cancels.spawn(async move {
            store
                .cancel_intent("provider-1", "pi_race", Utc::now())
                .await
                .unwrap()
                .unwrap()
        });
    }
    let mut applied = 0;
    while let Some(done) = payments.join_next().await {
        match done.unwrap() {
            PaymentPosted::Applied(_) => applied += 1,
            PaymentPosted::Refused(PaymentRefusal::Intent(
                IntentRefusal::Cancelled | IntentRefusal::PaidBy(_),
            )) => {}
            other => panic!("{other:?}"),
        }
    }
    let mut cancelled = 0;
    while let Some(done) = cancels.join_next().await {
        match done.unwrap() {
            IntentCancelled::Cancelled(_) => cancelled += 1,
            IntentCancelled::AlreadyCancelled(_) | IntentCancelled::Succeeded(_) => {}
        }
    }
    let after = store
        .payment_intent("provider-1", "pi_race")
        .await
        .unwrap()
        .unwrap();
    let paid = store.payments(&numbers[0]).await.unwrap();
    match after.status {
        IntentStatus::Succeeded => {
            assert_eq!((applied, cancelled, paid.len()), (1, 0, 1));
            assert_eq!(after.payment_id, Some(paid[0].id));
            assert_eq!(
                state_of(store.as_ref(), &numbers[0]).await,
                CaseState::PaidDiscounted
            );
        }
        IntentStatus::Cancelled => {
            assert_eq!((applied, cancelled, paid.len()), (0, 1, 0));
            assert_eq!(
                state_of(store.as_ref(), &numbers[0]).await,
                CaseState::Issued
            );
        }
        IntentStatus::RequiresPayment | IntentStatus::Reversed => {
            panic!("neither paid nor cancelled: {after:?}")
        }
    }
    // Another provider's intent of the same id is not this one.
    assert_eq!(
        store.payment_intent("provider-2", "pi_race").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .cancel_intent("provider-2", "pi_race", Utc::now())
            .await
            .unwrap(),
        None
    );
}

/// Ten requests with one key at once: one is answered, the others wait for its answer;
/// then it is replayed, and refused for other parameters.
async fn an_idempotency_key_is_claimed_once(url: String) {
    use kozomol_store::{IdempotentStart, StoredResponse};
    let store = kozomol_store::connect(&url).await.unwrap();
    let now = Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = kozomol_store::connect(&url).await.unwrap();
        tasks.spawn(async move {
            store
                .begin_idempotent("bank", "k1", "fp-1", now)
                .await
                .unwrap()
        });
    }
    let mut claims = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            IdempotentStart::Fresh(claim) => claims.push(claim),
            IdempotentStart::InFlight => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(claims.len(), 1);
    let first = claims.remove(0);
    assert_eq!(
        store
            .begin_idempotent("bank", "k1", "fp-2", now)
            .await
            .unwrap(),
        IdempotentStart::OtherRequest
    );
    let kept = StoredResponse {
        status: 201,
        body: "{\"id\":\"pi_1\"}".to_owned(),
    };
    assert!(store.finish_idempotent(&first, &kept).await.unwrap());
    // Abandoning an answered key changes nothing: its answer stays.
    store.abandon_idempotent(&first).await.unwrap();
    assert_eq!(
        store
            .begin_idempotent("bank", "k1", "fp-1", now)
            .await
            .unwrap(),
        IdempotentStart::Replay(kept.clone())
    );
    let fresh = |start: IdempotentStart| match start {
        IdempotentStart::Fresh(claim) => claim,
        other => panic!("{other:?}"),
    };
    // A key abandoned while in flight (a server error) is free again.
    let k2 = fresh(
        store
            .begin_idempotent("bank", "k2", "fp", now)
            .await
            .unwrap(),
    );
    store.abandon_idempotent(&k2).await.unwrap();
    fresh(
        store
            .begin_idempotent("bank", "k2", "fp", now)
            .await
            .unwrap(),
    );
    // A first request unanswered for over a minute (its process stopped) frees its key.
    let slow = fresh(
        store
            .begin_idempotent("bank", "k3", "fp", now)
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .begin_idempotent("bank", "k3", "fp", now + chrono::Duration::seconds(30))
            .await
            .unwrap(),
        IdempotentStart::InFlight
    );
    let retry = fresh(
        store
            .begin_idempotent("bank", "k3", "fp", now + chrono::Duration::seconds(61))
            .await
            .unwrap(),
    );
    // The slow first request, answered after all, neither keeps its answer over the
    // retry's nor frees the retry's claim.
    assert!(!store.finish_idempotent(&slow, &kept).await.unwrap());
    store.abandon_idempotent(&slow).await.unwrap();
    assert_eq!(
        store
            .begin_idempotent("bank", "k3", "fp", now + chrono::Duration::seconds(62))
            .await
            .unwrap(),
        IdempotentStart::InFlight
    );
    let answered = StoredResponse {
        status: 200,
        body: "{}".to_owned(),
    };
    assert!(store.finish_idempotent(&retry, &answered).await.unwrap());
    assert_eq!(
        store
            .begin_idempotent("bank", "k3", "fp", now + chrono::Duration::seconds(63))
            .await
            .unwrap(),
        IdempotentStart::Replay(answered)
    );
    // After a day a key is new.
    let tomorrow = now + chrono::Duration::hours(24) + chrono::Duration::seconds(1);
    fresh(
        store
            .begin_idempotent("bank", "k1", "fp-3", tomorrow)
            .await
            .unwrap(),
    );
}

async fn callbacks_are_kept_with_their_answer(store: Arc<dyn Store>) {
    use kozomol_store::{CallbackOutcome, NewCallback};
    let at = Utc::now();
    let refused = NewCallback {
        provider: "bank".to_owned(),
        received_at: at,
        event_id: None,
        event_type: None,
        signature: "t=1,v1=00".to_owned(),
        body: b"{\"forged\": true}".to_vec(),
        outcome: CallbackOutcome::Refused,
        status: 401,
        detail: "no signature matches a secret in force".to_owned(),
    };
    let applied = NewCallback {
        event_id: Some("evt-1".to_owned()),
        event_type: Some("payment.succeeded".to_owned()),
        body: vec![0xff, b'{', b'}'],
        outcome: CallbackOutcome::Applied,
        status: 200,
        detail: String::new(),
        ..refused.clone()
    };
    let first = store.record_callback(&refused).await.unwrap();
    let second = store.record_callback(&applied).await.unwrap();
    assert!(second > first);
    let all = store.callbacks(false, 0, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (
            all[0].status,
            all[0].outcome,
            all[0].body.as_str(),
            all[0].detail.as_str()
        ),
        (
            401,
            CallbackOutcome::Refused,
            "{\"forged\": true}",
            "no signature matches a secret in force"
        )
    );
    assert_eq!(
        Some(all[0].received_at),
        DateTime::from_timestamp_millis(at.timestamp_millis())
    );
    // Bytes that are not UTF-8 are kept as text.
    assert_eq!(all[1].body, "\u{fffd}{}");
    assert_eq!(all[1].event_type.as_deref(), Some("payment.succeeded"));
    let refused_only = store.callbacks(true, 0, 10).await.unwrap();
    assert_eq!(
        refused_only.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![first]
    );
    assert!(store.callbacks(false, second, 10).await.unwrap().is_empty());
}

// ---- bank statements reconciled ----------------------------------------------------

/// A credit of 2,500 som booked on `booked_on` on account KG1, naming `codes`.
fn credit(
    reference: &str,
    booked_on: &str,
    minor: i64,
    codes: &[&str],
) -> kozomol_store::NewStatementLine {
    kozomol_store::NewStatementLine {
        account: "KG1".to_owned(),
        statement_id: "STMT-1".to_owned(),
        bank_reference: reference.to_owned(),
        booked_on: date(booked_on),
        paid_on: None,
        amount: som(minor),
        remittance: format!("Штраф {}", codes.join(" ")),
        payer: Some("Асанов Б.".to_owned()),
        codes: codes.iter().map(|c| c.to_string()).collect(),
        imported_by: "finance-1".to_owned(),
    }
}

async fn code_of(store: &dyn Store, number: &str) -> String {
    store
        .resolution(number)
        .await
        .unwrap()
        .unwrap()
        .payment_code
}

/// A bank's payment over SOAP of `minor` for `number`, paid at noon on `day`.
async fn soap_payment(
    store: &dyn Store,
    number: &str,
    id: &str,
    minor: i64,
    day: &str,
) -> kozomol_store::NewPayment {
    let mut payment = payment_for(store, number, id, minor).await;
    payment.channel = kozomol_store::PaymentChannel::Soap;
    payment.source = "central-server/COM/10000001/bank".to_owned();
    payment.exact_only = true;
    payment.paid_at = bishkek_noon(date(day));
    payment
}

/// A bank's report over SOAP of 2,500 som paid on 10 March for the fine `number`
/// (payment code `code`), and the statement credit `BR-1` of that money a day later,
/// matched to it.
async fn reported_then_matched(
    store: &dyn Store,
    number: &str,
    code: &str,
) -> (kozomol_store::PaymentRecord, kozomol_store::LineReconciled) {
    let soap = applied(
        store
            .post_payment(&soap_payment(store, number, "msg-a", 250_000, "2026-03-10").await)
            .await
            .unwrap(),
    );
    let matched = store
        .reconcile_credit(&credit("BR-1", "2026-03-11", 250_000, &[code]))
        .await
        .unwrap();
    assert_eq!(matched.line.status, kozomol_store::LineStatus::Matched);
    (soap, matched)
}

/// A bank's cancel of its report reaches the payment the report was matched to (money
/// a statement booked first), and a reversed payment's statement credit goes back to
/// finance's queue (the account holds that money).
async fn a_reversal_reaches_the_statement_money_it_was(store: Arc<dyn Store>) {
    use kozomol_store::{LineStatus, PaymentChannel, PaymentPosted, PaymentReversed};
    let numbers = issued(store.as_ref(), 3, &person()).await;
    let (a, b) = (
        code_of(store.as_ref(), &numbers[0]).await,
        code_of(store.as_ref(), &numbers[1]).await,
    );
    let bank_cancel = |code: &str, id: &str| kozomol_store::PaymentReversal {
        channel: PaymentChannel::Soap,
        source: "central-server/COM/10000001/bank".to_owned(),
        ..reversal_of(code, Some(id))
    };
    let queued = |line_id: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .statement_lines(true, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .find(|l| l.id == line_id)
        }
    };

    // A: the bank's report first, its money matched on the statement, then cancelled.
    let (soap, matched) = reported_then_matched(store.as_ref(), &numbers[0], &a).await;
    match store
        .reverse_payment(&bank_cancel(&a, "msg-a"))
        .await
        .unwrap()
    {
        PaymentReversed::Reversed { payment, .. } => assert_eq!(payment.id, soap.id),
        other => panic!("{other:?}"),
    }
    let requeued = queued(matched.line.id).await.expect("queued again");
    assert_eq!(requeued.status, LineStatus::Unmatched);
    assert!(requeued.detail.contains("reversed"), "{}", requeued.detail);

    // B: the statement's money first, the bank's report matched to it, then the bank
    // cancels its report: the statement's payment is taken back.
    let booked = store
        .reconcile_credit(&credit("BR-3", "2026-03-10", 250_000, &[&b]))
        .await
        .unwrap();
    assert_eq!(booked.line.status, LineStatus::Applied);
    let statement_payment = booked.payment.expect("a payment");
    let report = soap_payment(store.as_ref(), &numbers[1], "msg-b", 250_000, "2026-03-10").await;
    match store.post_payment(&report).await.unwrap() {
        PaymentPosted::AlreadyPosted(record) => assert_eq!(record.id, statement_payment.id),
        other => panic!("{other:?}"),
    }
    match store
        .reverse_payment(&bank_cancel(&b, "msg-b"))
        .await
        .unwrap()
    {
        PaymentReversed::Reversed { payment, .. } => {
            assert_eq!(payment.id, statement_payment.id)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state_of(store.as_ref(), &numbers[1]).await,
        CaseState::Issued
    );
    let requeued = queued(booked.line.id).await.expect("queued again");
    assert_eq!(requeued.status, LineStatus::Unmatched);
    // Sent again: the same payment, already reversed.
    assert!(matches!(
        store
            .reverse_payment(&bank_cancel(&b, "msg-b"))
            .await
            .unwrap(),
        PaymentReversed::AlreadyReversed(_)
    ));
    // Finance applies the money again: a payment of its own, and the fine is paid.
    match store
        .resolve_statement_line(
            booked.line.id,
            &kozomol_store::LineResolution::Apply {
                payment_code: b.clone(),
            },
            "finance-1",
            "the account holds it",
        )
        .await
        .unwrap()
    {
        Some(kozomol_store::LineResolved::Resolved(done)) => {
            assert_eq!(done.line.status, LineStatus::Applied);
            let payment = done.payment.expect("a payment");
            assert_ne!(payment.id, statement_payment.id);
            assert_eq!(payment.reversed_at, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state_of(store.as_ref(), &numbers[1]).await,
        CaseState::PaidDiscounted
    );

    // C: as B, but cancelled as a bank's SOAP cancel names it, by sum and time (no id):
    // the report's time is not the statement's, yet its payment is found by the
    // report's time and sum.
    let c = code_of(store.as_ref(), &numbers[2]).await;
    let booked = store
        .reconcile_credit(&credit("BR-4", "2026-03-10", 250_000, &[&c]))
        .await
        .unwrap();
    let statement_payment = booked.payment.expect("a payment");
    let report = soap_payment(store.as_ref(), &numbers[2], "msg-c", 250_000, "2026-03-10").await;
    let reported_at = report.paid_at;
    assert!(matches!(
        store.post_payment(&report).await.unwrap(),
        PaymentPosted::AlreadyPosted(_)
    ));
    let soap_cancel = kozomol_store::PaymentReversal {
        amount: Some(kozomol_core::Money::new(
            250_000,
            kozomol_core::Currency::KGS,
        )),
        paid_at: Some(reported_at),
        reversal_id: Some("cancel-c".to_owned()),
        ..bank_cancel(&c, "unused")
    };
    let soap_cancel = kozomol_store::PaymentReversal {
        external_id: None,
        ..soap_cancel
    };
    // A cancel of the same sum at another time is of another payment, not this one.
    let other_time = kozomol_store::PaymentReversal {
        paid_at: Some(reported_at + chrono::Duration::hours(1)),
        ..soap_cancel.clone()
    };
    assert!(matches!(
        store.reverse_payment(&other_time).await.unwrap(),
        PaymentReversed::NoPayment
    ));
    match store.reverse_payment(&soap_cancel).await.unwrap() {
        PaymentReversed::Reversed { payment, .. } => {
            assert_eq!(payment.id, statement_payment.id)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state_of(store.as_ref(), &numbers[2]).await,
        CaseState::Issued
    );
}

/// The credits that named a code, of one sum to one account, each with the payment it
/// became: the report it was matched to, its own, none while it waits in the queue, or
/// another fine's where finance applied it there — where a credit the bank took back
/// finds the credit it was.
async fn credits_are_found_by_the_code_they_named(store: Arc<dyn Store>) {
    use kozomol_store::{LineResolution, LineResolved, LineStatus};
    let numbers = issued(store.as_ref(), 3, &person()).await;
    let (a, b, c) = (
        code_of(store.as_ref(), &numbers[0]).await,
        code_of(store.as_ref(), &numbers[1]).await,
        code_of(store.as_ref(), &numbers[2]).await,
    );
    let (soap, _) = reported_then_matched(store.as_ref(), &numbers[0], &a).await;
    let own = store
        .reconcile_credit(&credit("BR-2", "2026-03-11", 250_000, &[&b]))
        .await
        .unwrap()
        .payment
        .expect("a payment");
    // A paid already: a second credit naming it waits; finance applies it to C.
    let second = store
        .reconcile_credit(&credit("BR-3", "2026-03-11", 250_000, &[&a]))
        .await
        .unwrap()
        .line;
    assert_eq!(second.status, LineStatus::Refused);
    let found = |code: String, minor: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .credits_naming("KG1", &code, som(minor))
                .await
                .unwrap()
                .into_iter()
                .map(|(line, payment)| (line.bank_reference, payment.map(|p| p.id)))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found(a.clone(), 250_000).await,
        [
            ("BR-1".to_owned(), Some(soap.id)),
            ("BR-3".to_owned(), None)
        ]
    );
    assert_eq!(
        found(b.clone(), 250_000).await,
        [("BR-2".to_owned(), Some(own.id))]
    );
    let Some(LineResolved::Resolved(applied)) = store
        .resolve_statement_line(
            second.id,
            &LineResolution::Apply {
                payment_code: c.clone(),
            },
            "finance-1",
            "meant for C",
        )
        .await
        .unwrap()
    else {
        panic!("applied to C");
    };
    let to_c = applied.payment.expect("C's payment");
    assert_eq!(to_c.resolution_number, numbers[2]);
    assert_eq!(
        found(a.clone(), 250_000).await,
        [
            ("BR-1".to_owned(), Some(soap.id)),
            ("BR-3".to_owned(), Some(to_c.id))
        ]
    );
    // The code finance named is the credit's too.
    assert_eq!(
        found(c, 250_000).await,
        [("BR-3".to_owned(), Some(to_c.id))]
    );
    // Another sum, another account: none.
    assert!(found(b.clone(), 100_000).await.is_empty());
    // Its money taken back by the bank: the payment reversed and the credit closed in
    // one, still naming the payment it was.
    let taken_back = kozomol_store::PaymentReversal {
        channel: own.channel,
        source: own.source.clone(),
        amount: Some(som(250_000)),
        reversal_id: Some("RV-2".to_owned()),
        money_left: true,
        ..reversal_of(&b, Some(&own.external_id))
    };
    assert!(matches!(
        store.reverse_payment(&taken_back).await.unwrap(),
        kozomol_store::PaymentReversed::Reversed { .. }
    ));
    let closed = store.credits_naming("KG1", &b, som(250_000)).await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].0.status, LineStatus::Resolved);
    assert_eq!(closed[0].0.payment_id, Some(own.id));
    assert!(closed[0]
        .1
        .as_ref()
        .is_some_and(|p| p.reversed_at.is_some()));
    assert!(store
        .credits_naming("KG2", &b, som(250_000))
        .await
        .unwrap()
        .is_empty());
}

/// Two equal credits of one fine booked the same day, their statement giving each its
/// payer's day: a bank's report is matched to the credit paid on the report's day,
/// though the other was recorded first, and the other report to the other credit.
async fn equal_credits_are_each_matched_to_their_own_report(store: Arc<dyn Store>) {
    use kozomol_store::{LineStatus, PaymentPosted};
    let numbers = issued(store.as_ref(), 1, &person()).await;
    let code = code_of(store.as_ref(), &numbers[0]).await;
    let mut credited = Vec::new();
    for (reference, paid) in [("BR-1", "2026-03-09"), ("BR-2", "2026-03-10")] {
        let taken = store
            .reconcile_credit(&kozomol_store::NewStatementLine {
                paid_on: Some(date(paid)),
                ..credit(reference, "2026-03-10", 100_000, &[&code])
            })
            .await
            .unwrap();
        assert_eq!(taken.line.status, LineStatus::Applied);
        credited.push(taken.payment.expect("a payment").id);
    }
    for (message, day, twin) in [
        ("msg-10", "2026-03-10", credited[1]),
        ("msg-9", "2026-03-09", credited[0]),
    ] {
        let report = soap_payment(store.as_ref(), &numbers[0], message, 100_000, day).await;
        match store.post_payment(&report).await.unwrap() {
            PaymentPosted::AlreadyPosted(record) => assert_eq!(record.id, twin, "{message}"),
            other => panic!("{message}: {other:?}"),
        }
    }
    assert_eq!(store.payments(&numbers[0]).await.unwrap().len(), 2);
}

async fn statement_credits_are_matched_applied_or_queued(store: Arc<dyn Store>) {
    use kozomol_store::{LineResolution, LineResolved, LineStatus, PaymentChannel, PaymentPosted};
    let numbers = issued(store.as_ref(), 3, &person()).await;
    let mut codes = Vec::new();
    for number in &numbers {
        codes.push(code_of(store.as_ref(), number).await);
    }
    let (a, b, c) = (codes[0].as_str(), codes[1].as_str(), codes[2].as_str());

    // A bank reported A's payment over SOAP; its money is booked the next day: matched.
    let soap = applied(
        store
            .post_payment(
                &soap_payment(store.as_ref(), &numbers[0], "msg-a", 250_000, "2026-03-10").await,
            )
            .await
            .unwrap(),
    );
    let matched = store
        .reconcile_credit(&credit("BR-1", "2026-03-11", 250_000, &[a]))
        .await
        .unwrap();
    assert_eq!(
        (matched.line.status, matched.repeat),
        (LineStatus::Matched, false)
    );
    assert_eq!(matched.payment.as_ref().map(|p| p.id), Some(soap.id));
    assert_eq!(store.payments(&numbers[0]).await.unwrap().len(), 1);
    // Imported again: nothing changes.
    let again = store
        .reconcile_credit(&credit("BR-1", "2026-03-11", 250_000, &[a]))
        .await
        .unwrap();
    assert_eq!(
        (again.line.id, again.line.status, again.repeat),
        (matched.line.id, LineStatus::Matched, true)
    );
    // Another credit under the same reference (the bank reused it, another day or sum)
    // is no repeat: refused, its money not silently dropped.
    for other in [
        credit("BR-1", "2026-03-12", 250_000, &[a]),
        credit("BR-1", "2026-03-11", 100_000, &[a]),
    ] {
        let refused = store.reconcile_credit(&other).await;
        assert!(
            matches!(&refused, Err(kozomol_store::StoreError::Invalid(why)) if why.contains("reused")),
            "{refused:?}"
        );
    }
    // More money for A, now paid: queued for finance (a refund).
    let more = store
        .reconcile_credit(&credit("BR-2", "2026-03-11", 250_000, &[a]))
        .await
        .unwrap();
    assert_eq!(more.line.status, LineStatus::Refused);
    assert!(more.line.detail.contains("paid"), "{}", more.line.detail);

    // B's money is booked before the bank reports it: applied, and the bank's report
    // then is that payment, as is the same report sent again.
    // The statement says the payer paid the day before: the payment is dated then.
    let booked = store
        .reconcile_credit(&kozomol_store::NewStatementLine {
            paid_on: Some(date("2026-03-09")),
            ..credit("BR-3", "2026-03-10", 250_000, &[b])
        })
        .await
        .unwrap();
    assert_eq!(booked.line.status, LineStatus::Applied);
    assert_eq!(booked.line.paid_on, Some(date("2026-03-09")));
    let booked_payment = booked.payment.expect("a payment");
    assert_eq!(booked_payment.channel, PaymentChannel::Statement);
    assert_eq!(booked_payment.paid_at, bishkek_noon(date("2026-03-09")));
    let stored = store
        .statement_lines_booked(date("2026-03-10"), date("2026-03-10"))
        .await
        .unwrap();
    let stored = stored
        .iter()
        .find(|l| l.bank_reference == "BR-3")
        .expect("the line");
    assert_eq!(stored.paid_on, Some(date("2026-03-09")));
    // A payer's day after the booking, or before the booking lag, is refused.
    for paid_on in ["2026-03-11", "2026-03-01"] {
        let refused = store
            .reconcile_credit(&kozomol_store::NewStatementLine {
                paid_on: Some(date(paid_on)),
                ..credit("BR-X", "2026-03-10", 250_000, &[b])
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
    }
    assert_eq!(
        state_of(store.as_ref(), &numbers[1]).await,
        CaseState::PaidDiscounted
    );
    let report = soap_payment(store.as_ref(), &numbers[1], "msg-b", 250_000, "2026-03-10").await;
    for _ in 0..2 {
        match store.post_payment(&report).await.unwrap() {
            PaymentPosted::AlreadyPosted(record) => assert_eq!(record.id, booked_payment.id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(store.payments(&numbers[1]).await.unwrap().len(), 1);
    // A report of money paid after the booking is another payment (and B is paid).
    let later = soap_payment(store.as_ref(), &numbers[1], "msg-b2", 250_000, "2026-03-12").await;
    assert_eq!(
        refused(store.post_payment(&later).await.unwrap()),
        kozomol_store::PaymentRefusal::AlreadyPaid
    );

    // No code, two codes, a code no fine has: queued.
    let unknown = kozomol_payments::PaymentCode::new(
        kozomol_payments::CodeKind::Fine,
        kozomol_core::Jurisdiction::Kg,
        2026,
        1,
        9_999_999,
    )
    .unwrap()
    .to_string();
    let none = store
        .reconcile_credit(&credit("BR-4", "2026-03-11", 250_000, &[]))
        .await
        .unwrap();
    let two = store
        .reconcile_credit(&credit("BR-5", "2026-03-11", 500_000, &[b, c]))
        .await
        .unwrap();
    let nobody = store
        .reconcile_credit(&credit("BR-6", "2026-03-11", 250_000, &[&unknown]))
        .await
        .unwrap();
    assert_eq!(
        (none.line.status, two.line.status, nobody.line.status),
        (
            LineStatus::Unmatched,
            LineStatus::Ambiguous,
            LineStatus::Unmatched
        )
    );
    let mut both = vec![b.to_owned(), c.to_owned()];
    both.sort();
    assert_eq!(two.line.codes, both);
    let queue = store.statement_lines(true, 0, 100).await.unwrap();
    assert_eq!(
        queue
            .iter()
            .map(|l| l.bank_reference.as_str())
            .collect::<Vec<_>>(),
        vec!["BR-2", "BR-4", "BR-5", "BR-6"]
    );
    assert_eq!(queue[2].codes, both);
    assert_eq!(store.statement_lines(false, 0, 100).await.unwrap().len(), 6);

    // Finance applies the code-less credit to C, and dismisses the others.
    match store
        .resolve_statement_line(
            none.line.id,
            &LineResolution::Apply {
                payment_code: c.to_owned(),
            },
            "finance-1",
            "the payer wrote the plate",
        )
        .await
        .unwrap()
    {
        Some(LineResolved::Resolved(done)) => {
            assert_eq!(done.line.status, LineStatus::Applied);
            assert_eq!(done.line.codes, vec![c.to_owned()]);
            assert_eq!(done.line.resolved_by.as_deref(), Some("finance-1"));
            assert_eq!(done.line.detail, "the payer wrote the plate");
            assert_eq!(
                done.payment.map(|p| p.channel),
                Some(PaymentChannel::Statement)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state_of(store.as_ref(), &numbers[2]).await,
        CaseState::PaidDiscounted
    );
    // Applying the unknown-code credit to a paid fine is refused, and it stays queued.
    match store
        .resolve_statement_line(
            nobody.line.id,
            &LineResolution::Apply {
                payment_code: a.to_owned(),
            },
            "finance-1",
            "x",
        )
        .await
        .unwrap()
    {
        Some(LineResolved::Refused(kozomol_store::PaymentRefusal::AlreadyPaid)) => {}
        other => panic!("{other:?}"),
    }
    match store
        .resolve_statement_line(
            nobody.line.id,
            &LineResolution::Apply {
                payment_code: unknown.clone(),
            },
            "finance-1",
            "x",
        )
        .await
        .unwrap()
    {
        Some(LineResolved::Refused(kozomol_store::PaymentRefusal::UnknownCode)) => {}
        other => panic!("{other:?}"),
    }
    for line in [&two.line, &nobody.line, &more.line] {
        match store
            .resolve_statement_line(
                line.id,
                &LineResolution::Dismiss,
                "finance-1",
                "returned to the payer",
            )
            .await
            .unwrap()
        {
            Some(LineResolved::Resolved(done)) => {
                assert_eq!(done.line.status, LineStatus::Resolved)
            }
            other => panic!("{other:?}"),
        }
    }
    match store
        .resolve_statement_line(two.line.id, &LineResolution::Dismiss, "finance-1", "again")
        .await
        .unwrap()
    {
        Some(LineResolved::NotQueued(line)) => assert_eq!(line.status, LineStatus::Resolved),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .resolve_statement_line(999_999, &LineResolution::Dismiss, "f", "x")
            .await
            .unwrap(),
        None
    );
    assert!(store
        .statement_lines(true, 0, 100)
        .await
        .unwrap()
        .is_empty());

    // The days reconcile: every credit accounted for, B's and C's money from statements,
    // A's over SOAP and matched.
    let lines = store
        .statement_lines_booked(date("2026-03-09"), date("2026-03-12"))
        .await
        .unwrap();
    assert_eq!(lines.len(), 6);
    let paid = store
        .payments_paid(
            bishkek_noon(date("2026-03-09")),
            bishkek_noon(date("2026-03-13")),
        )
        .await
        .unwrap();
    assert_eq!(paid.len(), 3);
    let days = kozomol_store::daily_totals(
        kozomol_core::Jurisdiction::Kg,
        (date("2026-03-09"), date("2026-03-12")),
        &paid,
        &lines,
    );
    assert!(days.iter().all(|d| d.balanced()), "{days:?}");
    let tenth = days
        .iter()
        .find(|d| d.day == Some(date("2026-03-10")))
        .unwrap();
    assert_eq!(
        (tenth.soap, tenth.statement, tenth.awaiting_statement),
        ((1, 250_000), (1, 250_000), (0, 0))
    );
    assert_eq!(
        (tenth.credits, tenth.credits_applied),
        ((1, 250_000), (1, 250_000))
    );
    let eleventh = days
        .iter()
        .find(|d| d.day == Some(date("2026-03-11")))
        .unwrap();
    assert_eq!(eleventh.credits, (5, 1_500_000));
    assert_eq!(eleventh.credits_matched, (1, 250_000));
    assert_eq!(eleventh.credits_resolved, (3, 1_000_000));
}

async fn a_queued_credit_holds_the_fines_clocks(store: Arc<dyn Store>) {
    use kozomol_store::{LineResolution, LineStatus};
    let numbers = issued(store.as_ref(), 2, &person()).await;
    delivered_and_dated(store.as_ref(), &numbers[0], date("2026-03-15")).await;
    let resolution = store.resolution(&numbers[0]).await.unwrap().unwrap();
    let case_id = resolution.case_id;
    let due_day = date("2026-04-20");
    let due =
        |clocks: Vec<kozomol_store::DueClock>| clocks.iter().any(|c| c.clock.case_id == case_id);
    assert!(due(store.due_clocks(due_day, 100).await.unwrap()));

    // Money naming this fine and another waits for finance: the fine's clocks wait too.
    let other = code_of(store.as_ref(), &numbers[1]).await;
    let queued = store
        .reconcile_credit(&credit(
            "BR-H",
            "2026-03-20",
            250_000,
            &[&resolution.payment_code, &other],
        ))
        .await
        .unwrap();
    assert_eq!(queued.line.status, LineStatus::Ambiguous);
    assert!(!due(store.due_clocks(due_day, 100).await.unwrap()));
    let clock = store.clock(case_id).await.unwrap().unwrap();
    let overdue = kozomol_store::DeadlineWrite {
        case_id,
        from: CaseState::Delivered,
        to: Some(CaseState::Overdue),
        expected_wakeup: clock.next_wakeup,
        discount_open: false,
        next_wakeup: None,
        detail: r#"{"move":"overdue"}"#,
        actor: "deadlines",
    };
    assert!(!store.apply_deadline(&overdue).await.unwrap());
    assert_eq!(
        state_of(store.as_ref(), &numbers[0]).await,
        CaseState::Delivered
    );

    // Placed elsewhere by finance: the clocks run again.
    store
        .resolve_statement_line(
            queued.line.id,
            &LineResolution::Dismiss,
            "finance-1",
            "another city's fine",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(due(store.due_clocks(due_day, 100).await.unwrap()));
    assert!(store.apply_deadline(&overdue).await.unwrap());
    assert_eq!(
        state_of(store.as_ref(), &numbers[0]).await,
        CaseState::Overdue
    );
}

/// Each fine's money reported over SOAP and listed on a statement at the same moment:
/// whichever comes first, the other finds it, and each fine has one payment.
async fn a_bank_payment_over_soap_and_in_a_statement_counts_once(url: String) {
    use kozomol_store::{LineStatus, PaymentChannel, PaymentPosted};
    let store = kozomol_store::connect(&url).await.unwrap();
    let numbers = issued(store.as_ref(), 8, &person()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, number) in numbers.iter().enumerate() {
        let code = code_of(store.as_ref(), number).await;
        let report = soap_payment(
            store.as_ref(),
            number,
            &format!("msg-{i}"),
            250_000,
            "2026-03-10",
        )
        .await;
        let line = credit(&format!("BR-{i}"), "2026-03-10", 250_000, &[&code]);
        let (soap_store, line_store) = (
            kozomol_store::connect(&url).await.unwrap(),
            kozomol_store::connect(&url).await.unwrap(),
        );
        tasks.spawn(async move {
            let (posted, reconciled) = tokio::join!(
                soap_store.post_payment(&report),
                line_store.reconcile_credit(&line)
            );
            (i, posted.unwrap(), reconciled.unwrap())
        });
    }
    let (mut soap_first, mut statement_first) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (i, posted, reconciled) = done.unwrap();
        let paid = store.payments(&numbers[i]).await.unwrap();
        assert_eq!(paid.len(), 1, "fine {i}: {paid:?}");
        let payment_id = reconciled.payment.as_ref().map(|p| p.id);
        assert_eq!(payment_id, Some(paid[0].id), "fine {i}");
        match (posted, reconciled.line.status) {
            (PaymentPosted::Applied(record), LineStatus::Matched) => {
                assert_eq!(record.channel, PaymentChannel::Soap);
                soap_first += 1;
            }
            (PaymentPosted::AlreadyPosted(record), LineStatus::Applied) => {
                assert_eq!(record.channel, PaymentChannel::Statement);
                statement_first += 1;
            }
            other => panic!("fine {i}: {other:?}"),
        }
        assert_eq!(
            state_of(store.as_ref(), &numbers[i]).await,
            CaseState::PaidDiscounted
        );
    }
    assert_eq!(soap_first + statement_first, 8);
}

// ---- retention of personal data --------------------------------------------------------

/// A closed accident with a named driver and a witness; its id.
async fn closed_accident(store: &dyn Store) -> i64 {
    accident_with_files(store, Vec::new(), true).await
}

/// An accident with a named pedestrian and a witness and `files`, closed (no violation)
/// if `close`; its id.
async fn accident_with_files(
    store: &dyn Store,
    files: Vec<kozomol_store::NewAccidentFile>,
    close: bool,
) -> i64 {
    use kozomol_store::{
        AccidentOutcome, AccidentParticipant, AccidentRegistered, Injury, NewAccident,
        ParticipantRole,
    };
    let accident = NewAccident {
        report_id: Uuid::now_v7(),
        occurred_at: at_millis(t(-90)),
        place: kozomol_core::ReportedPlace {
            address: "г. Бишкек, ул. Киевская — ул. Тоголок Молдо".to_owned(),
            lat_e6: None,
            lon_e6: None,
        },
        description: "наезд на ограждение".to_owned(),
        vehicles: vec![],
        participants: vec![
            AccidentParticipant {
                name: "Асанов Б.".to_owned(),
                role: ParticipantRole::Pedestrian,
                vehicle: None,
                pin: Some("21234567890123".to_owned()),
                injury: Injury::Light,
            },
            AccidentParticipant {
                name: "Иванова А.".to_owned(),
                role: ParticipantRole::Witness,
                vehicle: None,
                pin: None,
                injury: Injury::None,
            },
        ],
        files,
        registered_by: "officer-7".to_owned(),
    };
    let AccidentRegistered::Registered(record) = store.register_accident(&accident).await.unwrap()
    else {
        panic!("not registered");
    };
    if close {
        close_accident(store, record.id, AccidentOutcome::NoViolation).await;
    }
    record.id
}

/// Closes the accident `id` with `outcome`, through the investigation.
async fn close_accident(store: &dyn Store, id: i64, outcome: kozomol_store::AccidentOutcome) {
    use kozomol_store::{AccidentMove, AccidentMoved, AccidentState};
    for (from, to, outcome) in [
        (
            AccidentState::Registered,
            AccidentState::UnderInvestigation,
            None,
        ),
        (
            AccidentState::UnderInvestigation,
            AccidentState::Closed,
            Some(outcome),
        ),
    ] {
        let moved = store
            .move_accident(&AccidentMove {
                accident_id: id,
                from,
                to,
                outcome,
                actor: "supervisor-1".to_owned(),
                note: None,
            })
            .await
            .unwrap();
        assert!(matches!(moved, AccidentMoved::Moved(_)), "{moved:?}");
    }
}

async fn retention_purges_settled_quiet_cases_and_nothing_else(store: Arc<dyn Store>) {
    use kozomol_store::retention::{CASE_PURGED, CONTACTS_PURGED, PURGED};
    use kozomol_store::AppealState;

    // Y's two fines end settled: A paid with the discount, B annulled on appeal. X's
    // fine C stands issued. Y's letters are posted (sent, no receipt ever comes back).
    let y = owner("21010199000111", Some("Бишкек, ул. Киевская 96"));
    let x = owner("21010199000222", None);
    let numbers = issued(store.as_ref(), 2, &y).await;
    let (a, b) = (&numbers[0], &numbers[1]);
    let c = &issued(store.as_ref(), 1, &x).await[0];
    let case_of = |number: &str| {
        let store = Arc::clone(&store);
        let number = number.to_owned();
        async move { store.resolution(&number).await.unwrap().unwrap().case_id }
    };
    let (case_a, case_b, case_c) = (case_of(a).await, case_of(b).await, case_of(c).await);
    delivered_and_dated(store.as_ref(), a, date("2026-03-15")).await;
    let mut paid = payment_for(store.as_ref(), a, "r-1", 250_000).await;
    paid.paid_at = bishkek_noon(date("2026-03-10"));
    assert_eq!(
        applied(store.post_payment(&paid).await.unwrap()).to_state,
        CaseState::PaidDiscounted
    );
    delivered_and_dated(store.as_ref(), b, date("2026-03-15")).await;
    let appeal = owners_appeal(store.as_ref(), case_b).await;
    store
        .decide_appeal(
            appeal.id,
            AppealState::Annulled,
            "supervisor-1",
            "доводы приняты",
        )
        .await
        .unwrap();
    assert_eq!(state_of(store.as_ref(), b).await, CaseState::Annulled);
    for (owner_id, raw) in [(&y.id, "+996700111222"), (&x.id, "+996700333444")] {
        store
            .add_contact(&contact(owner_id, DeliveryChannel::Sms, raw))
            .await
            .unwrap();
    }
    let accident = closed_accident(store.as_ref()).await;
    // A letter still waiting to be posted holds its case back; once posted, it does not.
    let quiet_since = Utc::now() + Duration::minutes(1);
    let waiting = store
        .purge_personal_data(quiet_since, 100, "retention")
        .await
        .unwrap();
    assert!(waiting.cases.is_empty(), "{waiting:?}");
    assert_eq!(
        waiting.accidents,
        vec![accident],
        "the accident waits for no letter"
    );
    let letters = store
        .claim_deliveries(DeliveryChannel::Post, "post-1", 10, LONG_LEASE)
        .await
        .unwrap();
    assert_eq!(letters.len(), 2, "a letter for each of Y's fines");
    for letter in letters {
        store
            .record_attempt(
                "post-1",
                letter.id,
                &sent(&format!("RR{}", letter.id.0), None),
                3,
            )
            .await
            .unwrap();
    }

    // Everything else happened just now: a year's quiet finds nothing.
    let report = store
        .purge_personal_data(Utc::now() - Duration::days(365), 100, "retention")
        .await
        .unwrap();
    assert_eq!(report.purged(), 0, "{report:?}");
    assert!(store
        .owner_lookup(case_a)
        .await
        .unwrap()
        .unwrap()
        .owner
        .is_some_and(|o| o.id == y.id));

    // Quiet since a minute from now: both settled cases, the accident and Y's contact
    // go; the issued case and X's contact stay. A limit of one takes the oldest case.
    let first = store
        .purge_personal_data(quiet_since, 1, "retention")
        .await
        .unwrap();
    assert_eq!(first.cases, vec![case_a]);
    assert!(first.accidents.is_empty());
    assert_eq!(first.contacts, 0, "B still names Y");
    let second = store
        .purge_personal_data(quiet_since, 100, "retention")
        .await
        .unwrap();
    assert_eq!(
        (
            second.cases.clone(),
            second.accidents.clone(),
            second.contacts
        ),
        (vec![case_b], vec![], 1)
    );
    let again = store
        .purge_personal_data(quiet_since, 100, "retention")
        .await
        .unwrap();
    assert_eq!(again.purged(), 0, "a purged case is purged once: {again:?}");
    // A paid case can still be appealed, but not once purged: an appellant or named
    // driver written now would be kept for good, since no purge comes again.
    let late = store
        .file_appeal(&kozomol_store::NewAppeal {
            case_id: case_a,
            appellant: "Асанов Бакыт Токтогулович".to_owned(),
            contact: None,
            grounds: "Я не управлял автомобилем".to_owned(),
            filed_by: "portal:203.0.113.7".to_owned(),
            attachments: vec![],
        })
        .await
        .unwrap();
    assert!(
        matches!(late, kozomol_store::AppealFiled::Purged(_)),
        "{late:?}"
    );
    let statement = store
        .record_nomination(&kozomol_store::NewNomination {
            resolution_number: a.clone(),
            claim: kozomol_store::Claim::Driver {
                driver: kozomol_store::NominatedDriver {
                    pin: "12345678901234".to_owned(),
                    name: "Токтосунов Нурлан".to_owned(),
                    address: None,
                },
            },
            statement: "за рулём был Токтосунов Н.".to_owned(),
            recorded_by: "desk-1".to_owned(),
        })
        .await
        .unwrap();
    assert!(
        matches!(statement, kozomol_store::NominationRecorded::Purged(_)),
        "{statement:?}"
    );

    for case in [case_a, case_b] {
        let record = store.case(case).await.unwrap().unwrap();
        assert!(record.personal_data_purged_at.is_some());
        assert!(!record.frames.is_empty(), "the evidence stays");
        let lookup = store.owner_lookup(case).await.unwrap().unwrap();
        let owner = lookup
            .owner
            .expect("the lookup still says an owner was found");
        assert_eq!(
            (owner.id.as_str(), owner.name.as_str(), owner.address),
            (PURGED, "", None)
        );
        assert_eq!(lookup.registry_owner, serde_json::Value::Null);
        assert_eq!(lookup.vehicle["make"], "Toyota", "the vehicle stays");
        let resolution = store.resolution_of_case(case).await.unwrap().unwrap();
        let deliveries = store.deliveries(&resolution.number).await.unwrap();
        assert_eq!(deliveries.len(), 2, "the letter and the portal's delivery");
        for delivery in &deliveries {
            assert_eq!(delivery.address, format!("[purged {}]", delivery.id.0));
            assert_eq!(delivery.proof, None);
        }
        let audit = store.case_audit(case).await.unwrap();
        let last = audit.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.actor.as_str()),
            (CASE_PURGED, "retention")
        );
        let detail: serde_json::Value =
            serde_json::from_str(last.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["rows"]["owner_lookups"], 1);
    }
    assert_eq!(
        store.payments(a).await.unwrap().len(),
        1,
        "the ledger stays"
    );
    let code = store.resolution(a).await.unwrap().unwrap().payment_code;
    assert_eq!(
        store
            .reverse_payment(&reversal_of(&code, Some("r-1")))
            .await
            .unwrap(),
        kozomol_store::PaymentReversed::NotReversible(CaseState::PaidDiscounted),
        "a purged case is never reopened"
    );
    assert!(
        store.payer_view(a, Utc::now()).await.unwrap().is_none(),
        "payers are no longer shown a purged fine"
    );
    assert!(store.payer_view(c, Utc::now()).await.unwrap().is_some());
    let appeal = store.appeal(appeal.id).await.unwrap().unwrap();
    assert_eq!(
        (
            appeal.appellant.as_str(),
            appeal.grounds.as_str(),
            appeal.contact,
            appeal.decision_note
        ),
        (PURGED, PURGED, None, None)
    );
    assert_eq!(appeal.filed_by, "portal", "the filer's address goes too");
    // The audit log, never purged, never had it.
    let filed = store
        .case_audit(case_b)
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.action == kozomol_store::appeals::APPEAL_FILED)
        .expect("the filing audited");
    assert_eq!(filed.actor, "portal");
    assert!(
        !filed.detail.unwrap_or_default().contains("203.0.113"),
        "no address in the audit"
    );
    assert_eq!(appeal.state, AppealState::Annulled);

    // The standing fine and its owner are untouched.
    let standing = store.case(case_c).await.unwrap().unwrap();
    assert_eq!(standing.personal_data_purged_at, None);
    assert_eq!(
        store
            .owner_lookup(case_c)
            .await
            .unwrap()
            .unwrap()
            .owner
            .unwrap()
            .name,
        x.name
    );
    assert!(store.contacts(&y.id).await.unwrap().is_empty());
    assert_eq!(store.contacts(&x.id).await.unwrap().len(), 1);

    let accident = store.accident(accident).await.unwrap().unwrap();
    for participant in &accident.participants {
        assert_eq!(
            (participant.name.as_str(), participant.pin.as_deref()),
            (PURGED, None)
        );
    }
    let rows = store.audit_rows(0, 10_000).await.unwrap();
    let contacts_row = rows
        .iter()
        .find(|row| row.action == CONTACTS_PURGED)
        .expect("the contacts' purge is audited");
    assert_eq!(contacts_row.case_id, None);
    assert!(
        !contacts_row.detail.as_deref().unwrap().contains("+996"),
        "the audit names no address"
    );
    // A purged case takes no bulk void of its camera either: no one is left to refund, and the
    // refund would hold its file from destruction for ever. The open case C is voided.
    let record_a = store.case(case_a).await.unwrap().unwrap();
    let voided = store
        .bulk_void(&kozomol_store::BulkVoidRequest {
            device_serial: format!("dev-{}", record_a.camera_id.expect("a camera's case")),
            captured_from: record_a.captured_at - Duration::days(1),
            captured_until: Utc::now() + Duration::days(1),
            reason: "поверка прибора недействительна".to_owned(),
            requested_by: "supervisor-1".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(voided.voided, vec![case_c]);
    assert_eq!(state_of(store.as_ref(), a).await, CaseState::PaidDiscounted);
}

/// Two rejected cases (settled) are purged, then destroyed once the archive period
/// since the purge has passed: each case's blobs are marked erased and queued for
/// overwriting, except the frame one of them shares with a case still open. One
/// holder at a time has the archive lease. An erased frame that comes back is stored
/// again, never pointed at.
async fn case_files_are_destroyed_after_the_purge_and_shared_evidence_stays(store: Arc<dyn Store>) {
    use kozomol_store::destruction::CASE_FILE_DESTROYED;
    let hour = std::time::Duration::from_secs(3600);
    assert!(store.claim_archive("fines-a", hour).await.unwrap());
    assert!(
        store.claim_archive("fines-a", hour).await.unwrap(),
        "its own again"
    );
    assert!(!store.claim_archive("fines-b", hour).await.unwrap());
    store.release_archive("fines-b").await.unwrap();
    assert!(
        !store.claim_archive("fines-b", hour).await.unwrap(),
        "not b's to give back"
    );
    store.release_archive("fines-a").await.unwrap();
    assert!(store
        .claim_archive("fines-b", std::time::Duration::ZERO)
        .await
        .unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(
        store.claim_archive("fines-a", hour).await.unwrap(),
        "an expired lease is free"
    );

    let ids = reviewable(&*store, 3).await;
    let (p, q, open) = (ids[0], ids[1], ids[2]);
    for (id, from) in [(p, CaseState::Recognized), (q, CaseState::NeedsReview)] {
        let rejected = rejection(id, from);
        assert_eq!(
            store.record_review(&rejected).await.unwrap(),
            ReviewWrite::Recorded
        );
    }
    // A case still open showing the same overview as Q.
    let q_case = store.case(q).await.unwrap().unwrap();
    let shared = q_case.frames[0].sha256;
    let mut sharing = new_case("cam-1", None, t(5));
    sharing.frames[0].sha256 = shared;
    let sharing = created(store.record_cases(&[sharing], "ingest").await.unwrap()[0]);

    // Nothing is destroyed before its personal data are purged.
    let far_ahead = Utc::now() + Duration::days(1);
    let none = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert!(none.cases.is_empty(), "{none:?}");
    let purged = store
        .purge_personal_data(Utc::now() + Duration::minutes(1), 100, "retention")
        .await
        .unwrap();
    assert_eq!(purged.cases, vec![p, q]);
    // The period counts from the purge's cut-off (a minute ahead here), not from the
    // purge: quiet since before half a minute ahead finds nothing.
    let early = store
        .destroy_case_files(Utc::now() + Duration::seconds(30), 100, "archive")
        .await
        .unwrap();
    assert!(early.cases.is_empty(), "{early:?}");

    let first = store
        .destroy_case_files(far_ahead, 1, "archive")
        .await
        .unwrap();
    assert_eq!((first.cases.clone(), first.blobs_erased), (vec![p], 2));
    let second = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert_eq!(
        (second.cases.clone(), second.blobs_erased),
        (vec![q], 1),
        "the overview the open case shares stays"
    );
    let again = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert!(
        again.cases.is_empty(),
        "a file is destroyed once: {again:?}"
    );

    let p_case = store.case(p).await.unwrap().unwrap();
    assert!(p_case.evidence_destroyed_at.is_some());
    for kept in [open, sharing] {
        assert_eq!(
            store
                .case(kept)
                .await
                .unwrap()
                .unwrap()
                .evidence_destroyed_at,
            None
        );
    }
    let mut expected: Vec<([u8; 32], FrameLocation)> = p_case
        .frames
        .iter()
        .chain(&q_case.frames[1..])
        .map(|f| (f.sha256, f.location.clone()))
        .collect();
    expected.sort_by_key(|(sha, _)| *sha);
    let erased = erasures_queued(store.as_ref()).await;
    assert_eq!(erased, expected);
    assert!(!erased.iter().any(|(sha, _)| *sha == shared));

    // Overwritten, or put off: either way no longer due now.
    let erasure = |i: usize| kozomol_store::Erasure {
        sha256: erased[i].0,
        location: erased[i].1.clone(),
    };
    store.erasures_overwritten(&[erasure(0)]).await.unwrap();
    store
        .erasures_put_off(&[erasure(1)], Utc::now() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        erasures_queued(store.as_ref()).await,
        vec![erased[2].clone()]
    );
    assert_eq!(store.erasures_due(0).await.unwrap().len(), 0);
    store
        .erasures_put_off(&[erasure(1)], Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        erasures_queued(store.as_ref()).await.len(),
        2,
        "a put-off erasure comes back"
    );

    let audit = store.case_audit(q).await.unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        (CASE_FILE_DESTROYED, "archive")
    );
    let detail: serde_json::Value = serde_json::from_str(last.detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["blobs_erased"], 1);

    // The same photo comes back in a new case. Ingest, finding it stored before it was
    // erased, names no location: refused, nothing recorded. It is not known now, so
    // ingest stores its bytes again and the new location takes the erased one's place;
    // the old copy stays queued for overwriting.
    let back = erased[0].0;
    let mut pointing = new_case("cam-1", None, t(6));
    pointing.frames[0].sha256 = back;
    pointing.frames[0].location = FrameLocation {
        segment: String::new(),
        offset: 0,
        len: 1000,
    };
    assert!(matches!(
        store.record_cases(&[pointing.clone()], "ingest").await,
        Err(kozomol_store::StoreError::EvidenceErased { .. })
    ));
    let known = store.known_frames(&[back, shared]).await.unwrap();
    assert!(
        known.contains(&shared) && !known.contains(&back),
        "{known:?}"
    );
    pointing.frames[0].location = location(777_000);
    let returning = created(store.record_cases(&[pointing], "ingest").await.unwrap()[0]);
    let frame = store.case(returning).await.unwrap().unwrap().frames[0].clone();
    assert_eq!((frame.sha256, frame.location), (back, location(777_000)));
    assert!(store.known_frames(&[back]).await.unwrap().contains(&back));
    let still = erasures_queued(store.as_ref()).await;
    assert!(
        still.iter().all(|(_, l)| *l != location(777_000)),
        "the new copy is kept: {still:?}"
    );
}

/// Four purgers at once over forty settled cases: each case is purged, and audited,
/// by exactly one of them.
async fn concurrent_purgers_never_purge_a_case_twice(url: String) {
    use kozomol_store::retention::CASE_PURGED;
    let store = connect(&url).await.unwrap();
    let ids = reviewable(&*store, 40).await;
    for (i, id) in ids.iter().enumerate() {
        let from = if i == 0 {
            CaseState::Recognized
        } else {
            CaseState::NeedsReview
        };
        let rejected = rejection(*id, from);
        assert_eq!(
            store.record_review(&rejected).await.unwrap(),
            ReviewWrite::Recorded
        );
    }
    let quiet_since = Utc::now() + Duration::minutes(1);
    let mut tasks = Vec::new();
    for purger in 0..4 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let store = connect(&url).await.unwrap();
            let mut mine = Vec::new();
            loop {
                let pass = store
                    .purge_personal_data(quiet_since, 3, &format!("retention-{purger}"))
                    .await
                    .unwrap();
                if pass.cases.is_empty() {
                    break;
                }
                mine.extend(pass.cases);
            }
            mine
        }));
    }
    let mut purged = Vec::new();
    for task in tasks {
        purged.extend(task.await.unwrap());
    }
    let count = purged.len();
    purged.sort();
    purged.dedup();
    assert_eq!(count, purged.len(), "a case was purged twice");
    assert_eq!(purged, ids, "every case was purged");
    let audited = store
        .audit_rows(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.action == CASE_PURGED)
        .count();
    assert_eq!(audited, ids.len());
}

/// A closed accident, once purged and quiet for the archive period, has its photos and
/// scheme destroyed, except the photo a case still open shares; an open accident holds
/// the photo a destroyed case shared with it.
async fn accident_files_are_destroyed_after_the_purge_and_shared_evidence_stays(
    store: Arc<dyn Store>,
) {
    use kozomol_store::destruction::{DestructionReport, ACCIDENT_FILE_DESTROYED};
    use kozomol_store::{AccidentFileRole, AccidentOutcome, NewAccidentFile, NewAttachment};
    let file = |role, name: &str, sha256: [u8; 32], offset| NewAccidentFile {
        role,
        file: NewAttachment {
            name: name.to_owned(),
            content_type: "image/jpeg".to_owned(),
            evidence: EvidenceRef {
                sha256,
                location: location(offset),
            },
        },
    };
    // A rejected case (settled) whose overview an open accident holds as well; reviewable
    // registers cam-1 too.
    let rejected = reviewable(&*store, 1).await[0];
    assert_eq!(
        store
            .record_review(&rejection(rejected, CaseState::Recognized))
            .await
            .unwrap(),
        ReviewWrite::Recorded
    );
    // A case still open shows the scene photo the accident has too.
    let open = created(
        store
            .record_cases(&[new_case("cam-1", None, t(5))], "ingest")
            .await
            .unwrap()[0],
    );
    let shared = store.case(open).await.unwrap().unwrap().frames[0].clone();
    let accident = accident_with_files(
        store.as_ref(),
        vec![
            file(AccidentFileRole::Photo, "scene.jpg", shared.sha256, 0),
            file(
                AccidentFileRole::Photo,
                "close-up.jpg",
                sha("close-up"),
                7_000,
            ),
            file(AccidentFileRole::Scheme, "scheme.jpg", sha("scheme"), 9_000),
        ],
        true,
    )
    .await;
    let overview = store.case(rejected).await.unwrap().unwrap().frames[0].clone();
    let holding = accident_with_files(
        store.as_ref(),
        vec![file(
            AccidentFileRole::Photo,
            "overview.jpg",
            overview.sha256,
            11_000,
        )],
        false,
    )
    .await;

    let far_ahead = Utc::now() + Duration::days(1);
    let unpurged = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert_eq!(unpurged, DestructionReport::default(), "nothing purged yet");
    let purged = store
        .purge_personal_data(Utc::now() + Duration::minutes(1), 100, "retention")
        .await
        .unwrap();
    assert_eq!(
        (purged.cases, purged.accidents),
        (vec![rejected], vec![accident])
    );
    // Its moves are recent: quiet since before an hour ago finds nothing.
    let early = store
        .destroy_case_files(Utc::now() - Duration::hours(1), 100, "archive")
        .await
        .unwrap();
    assert_eq!(early, DestructionReport::default());

    let pass = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert_eq!(pass.cases, vec![rejected]);
    assert_eq!(pass.accidents, vec![accident]);
    let again = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert_eq!(
        again,
        DestructionReport::default(),
        "a file is destroyed once"
    );

    let destroyed = store.accident(accident).await.unwrap().unwrap();
    assert!(destroyed.evidence_destroyed_at.is_some());
    assert_eq!(destroyed.files.len(), 3, "the rows naming the files stay");
    let kept = store.accident(holding).await.unwrap().unwrap();
    assert_eq!(kept.evidence_destroyed_at, None);
    let erased: Vec<[u8; 32]> = erasures_queued(store.as_ref())
        .await
        .into_iter()
        .map(|(sha, _)| sha)
        .collect();
    assert!(erased.contains(&sha("close-up")) && erased.contains(&sha("scheme")));
    assert!(
        !erased.contains(&shared.sha256),
        "the photo the open case shows stays"
    );
    assert!(
        !erased.contains(&overview.sha256),
        "the photo the open accident holds stays"
    );
    let rejected_blobs = store.case(rejected).await.unwrap().unwrap().frames.len() as u64;
    assert_eq!(pass.blobs_erased, 2 + rejected_blobs - 1, "{erased:?}");

    let rows = store.audit_rows(0, 10_000).await.unwrap();
    let row = rows
        .iter()
        .find(|row| row.action == ACCIDENT_FILE_DESTROYED)
        .expect("the destruction is audited");
    assert_eq!((row.case_id, row.actor.as_str()), (None, "archive"));
    let detail: serde_json::Value = serde_json::from_str(row.detail.as_deref().unwrap()).unwrap();
    assert_eq!(
        (
            detail["accident_id"].as_i64(),
            detail["blobs_erased"].as_u64()
        ),
        (Some(accident), Some(2))
    );

    // Once the accident holding the overview goes too, so does the overview.
    close_accident(store.as_ref(), holding, AccidentOutcome::NoViolation).await;
    let purged = store
        .purge_personal_data(Utc::now() + Duration::minutes(1), 100, "retention")
        .await
        .unwrap();
    assert_eq!(purged.accidents, vec![holding]);
    let last = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert_eq!((last.accidents, last.blobs_erased), (vec![holding], 1));
    assert!(store
        .erasures_due(100)
        .await
        .unwrap()
        .iter()
        .any(|e| e.sha256 == overview.sha256 && e.location == overview.location));
}

/// The photos of an event that came back a conflicting duplicate, in a later batch or
/// in its own, are queued for overwriting where no case shows them.
async fn a_conflicting_duplicates_own_photos_are_queued_for_overwriting(store: Arc<dyn Store>) {
    register(&*store, &["cam-1"]).await;
    let original = new_case("cam-1", Some("01KG123ABC"), t(1));
    let id = created_cases(store.as_ref(), std::slice::from_ref(&original), "ingest").await[0];
    // Other bytes under the same event id: an overview of its own, and the original's
    // close-up, stored again.
    let mut conflicting = altered(&original);
    conflicting.frames[0].sha256 = sha("an overview no case shows");
    conflicting.frames[0].location = location(400_000);
    conflicting.frames[1].location = location(410_000);
    assert_eq!(
        store
            .record_cases(std::slice::from_ref(&conflicting), "ingest")
            .await
            .unwrap(),
        vec![CaseWrite::Conflict(id)]
    );
    // The close-up's copy waits for the case's file, which still reads the first one.
    assert_eq!(
        erasures_queued(store.as_ref()).await,
        vec![(conflicting.frames[0].sha256, location(400_000))]
    );
    assert_eq!(
        store.case(id).await.unwrap().unwrap().frames[1].location,
        original.frames[1].location
    );

    // A new event and its conflicting twin in one batch: the first makes the case.
    let fresh = new_case("cam-1", None, t(2));
    let mut twin = altered(&fresh);
    twin.frames[0].sha256 = sha("the twin's own overview");
    twin.frames[0].location = location(420_000);
    let writes = store
        .record_cases(&[fresh, twin.clone()], "ingest")
        .await
        .unwrap();
    let fresh_id = created(writes[0]);
    assert_eq!(writes[1], CaseWrite::Conflict(fresh_id));
    let mut expected = vec![
        (conflicting.frames[0].sha256, location(400_000)),
        (twin.frames[0].sha256, location(420_000)),
    ];
    expected.sort_by_key(|(sha, _)| *sha);
    assert_eq!(erasures_queued(store.as_ref()).await, expected);
}

/// The same bytes stored again while the first copy was kept (two ingest batches, two
/// events of one batch, two accidents' files) are recorded where they lie, and
/// destruction queues every copy with the first.
async fn second_copies_of_evidence_are_destroyed_with_the_first(store: Arc<dyn Store>) {
    use kozomol_store::{AccidentFileRole, NewAccidentFile, NewAttachment};
    let first = reviewable(&*store, 1).await[0];
    let overview = store.case(first).await.unwrap().unwrap().frames[0].clone();
    // Two more events showing the same overview, stored again in one batch, and a
    // third whose ingest found it stored (a location with no segment: no copy).
    let found_stored = FrameLocation {
        segment: String::new(),
        offset: 0,
        len: 1000,
    };
    let twin_events: Vec<NewCase> = [location(500_000), location(600_000), found_stored]
        .into_iter()
        .enumerate()
        .map(|(i, at)| {
            let mut twin = new_case("cam-1", None, t(6 + i as i64));
            twin.frames[0].sha256 = overview.sha256;
            twin.frames[0].location = at;
            twin
        })
        .collect();
    let twins = created_cases(store.as_ref(), &twin_events, "ingest").await;
    assert_eq!(
        store.case(twins[1]).await.unwrap().unwrap().frames[0].location,
        overview.location,
        "the first copy is the one read"
    );
    store.claim_recognition("w1", 3, LONG_LEASE).await.unwrap();
    for &id in &twins {
        assert_eq!(
            store
                .complete_recognition("w1", &outcome(id))
                .await
                .unwrap(),
            CompleteResult::Completed
        );
    }
    for &id in std::iter::once(&first).chain(&twins) {
        assert_eq!(
            store
                .record_review(&rejection(id, CaseState::Recognized))
                .await
                .unwrap(),
            ReviewWrite::Recorded
        );
    }
    let scene = sha("scene shown twice");
    let file = |offset| NewAccidentFile {
        role: AccidentFileRole::Photo,
        file: NewAttachment {
            name: "scene.jpg".to_owned(),
            content_type: "image/jpeg".to_owned(),
            evidence: EvidenceRef {
                sha256: scene,
                location: location(offset),
            },
        },
    };
    let mut accidents = Vec::new();
    for offset in [700_000, 800_000] {
        accidents.push(accident_with_files(store.as_ref(), vec![file(offset)], true).await);
    }

    // The first twin sent again while the overview is kept: a duplicate whose bytes
    // ingest stored again, a copy to overwrite later, not now.
    let mut resent = twin_events[0].clone();
    resent.frames[0].location = location(550_000);
    assert!(matches!(
        store.record_cases(&[resent], "ingest").await.unwrap()[0],
        CaseWrite::Duplicate(_)
    ));
    assert!(store.erasures_due(100).await.unwrap().is_empty());

    let purged = store
        .purge_personal_data(Utc::now() + Duration::minutes(1), 100, "retention")
        .await
        .unwrap();
    assert_eq!(purged.cases.len(), 4, "{purged:?}");
    assert_eq!(purged.accidents, accidents);
    let pass = store
        .destroy_case_files(Utc::now() + Duration::days(1), 100, "archive")
        .await
        .unwrap();
    assert_eq!((pass.cases.len(), pass.accidents.len()), (4, 2), "{pass:?}");
    let due = store.erasures_due(100).await.unwrap();
    let offsets_of = |hash: [u8; 32]| {
        let mut offsets: Vec<u64> = due
            .iter()
            .filter(|e| e.sha256 == hash)
            .map(|e| e.location.offset)
            .collect();
        offsets.sort();
        offsets
    };
    assert_eq!(
        offsets_of(overview.sha256),
        vec![overview.location.offset, 500_000, 550_000, 600_000]
    );
    assert_eq!(offsets_of(scene), vec![700_000, 800_000]);
    assert!(
        due.iter().all(|e| !e.location.segment.is_empty()),
        "bytes found stored were never stored again"
    );

    // The first event sent again, long after: its overview stored again, the event a
    // duplicate. The bytes of a destroyed file are queued for overwriting at once.
    let mut again = twin_events[0].clone();
    again.frames[0].location = location(950_000);
    assert!(matches!(
        store.record_cases(&[again], "ingest").await.unwrap()[0],
        CaseWrite::Duplicate(_)
    ));
    let due = store.erasures_due(100).await.unwrap();
    assert!(due
        .iter()
        .any(|e| e.sha256 == overview.sha256 && e.location == location(950_000)));

    // Sent again beside a new event showing the same photo: ingest stored it once, for
    // both; the new case brings the blob back there, so nothing of it is queued.
    let mut resent = twin_events[1].clone();
    resent.frames[0].location = location(990_000);
    let mut fresh = new_case("cam-1", None, t(20));
    fresh.frames[0].sha256 = overview.sha256;
    fresh.frames[0].location = location(990_000);
    let writes = store
        .record_cases(&[resent, fresh], "ingest")
        .await
        .unwrap();
    assert!(matches!(writes[0], CaseWrite::Duplicate(_)), "{writes:?}");
    let fresh = created(writes[1]);
    assert_eq!(
        store.case(fresh).await.unwrap().unwrap().frames[0].location,
        location(990_000)
    );
    assert!(!store
        .erasures_due(100)
        .await
        .unwrap()
        .iter()
        .any(|e| e.location == location(990_000)));
}

/// `queue_unkept`: bytes no blob holds are queued at once; a blob's own bytes at its own
/// place are left alone (a record whose commit only seemed to fail); its bytes
/// elsewhere become a copy, overwritten with its file, not before. Read in the tables
/// themselves: `erasures_due` would hide a queued row at a kept blob's own place.
async fn bytes_no_row_keeps_are_queued_for_overwriting_and_kept_bytes_are_not(url: String) {
    let store = kozomol_store::connect(&url).await.unwrap();
    let case = reviewable(&*store, 1).await[0];
    let overview = store.case(case).await.unwrap().unwrap().frames[0].clone();
    store.queue_unkept(&[]).await.unwrap();
    let refused = EvidenceRef {
        sha256: sha("the PDF of a refused resolution"),
        location: location(400_000),
    };
    let kept = EvidenceRef {
        sha256: overview.sha256,
        location: overview.location.clone(),
    };
    let copy = EvidenceRef {
        sha256: overview.sha256,
        location: location(410_000),
    };
    store
        .queue_unkept(&[refused.clone(), kept, copy])
        .await
        .unwrap();
    assert_eq!(offsets_in(&url, "evidence_erasures").await, vec![400_000]);
    assert_eq!(offsets_in(&url, "evidence_copies").await, vec![410_000]);
    assert_eq!(
        erasures_queued(&*store).await,
        vec![(refused.sha256, refused.location)]
    );
    let back = store.case(case).await.unwrap().unwrap().frames[0].clone();
    assert_eq!(back.location, overview.location, "the kept bytes are read");
}

/// The byte offsets recorded in `table` (`evidence_erasures`, `evidence_copies`),
/// smallest first.
async fn offsets_in(url: &str, table: &str) -> Vec<i64> {
    let sql = format!("SELECT byte_offset FROM {table} ORDER BY byte_offset");
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let rows = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rows = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    }
}

/// A violation an officer filed under an accident is its evidence too: once both are
/// purged, the violation's file goes in one pass and the accident's in the next.
async fn an_accident_file_waits_for_the_violations_filed_under_it(store: Arc<dyn Store>) {
    use kozomol_store::{
        AccidentFileRole, AccidentOutcome, BulkVoidRequest, NewAccidentFile, NewAttachment,
        OfficerFiled,
    };
    let scheme = NewAccidentFile {
        role: AccidentFileRole::Scheme,
        file: NewAttachment {
            name: "scheme.jpg".to_owned(),
            content_type: "image/jpeg".to_owned(),
            evidence: EvidenceRef {
                sha256: sha("the accident's scheme"),
                location: location(900_000),
            },
        },
    };
    let accident = accident_with_files(store.as_ref(), vec![scheme], false).await;
    // Speeding measured with a speed gun, filed under it, then voided with the gun's
    // other cases: settled.
    let mut report = officer_report("01KG123ABC", Some(accident));
    report.kind = ViolationKind::Speeding;
    report.measurement.speed_kmh = Some(97);
    report.measurement.limit_kmh = Some(60);
    report.device = Some(kozomol_core::MeasuringDevice {
        serial: "ИСКРА-ВИДЕО-2 №4471".to_owned(),
        certificate: CalibrationCertificate {
            number: "KG-CSM-2026-0117".to_owned(),
            valid_from: date("2026-01-10"),
            valid_until: date("2027-01-09"),
        },
    });
    let OfficerFiled::Filed(case) = store
        .file_officer_violation(&officer_filing(report))
        .await
        .unwrap()
    else {
        panic!("not filed");
    };
    let voided = store
        .bulk_void(&BulkVoidRequest {
            device_serial: "ИСКРА-ВИДЕО-2 №4471".to_owned(),
            captured_from: t(-60),
            captured_until: t(60),
            reason: "поверка прибора недействительна".to_owned(),
            requested_by: "supervisor-1".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(voided.voided, vec![case]);
    close_accident(store.as_ref(), accident, AccidentOutcome::ViolationsFiled).await;
    let purged = store
        .purge_personal_data(Utc::now() + Duration::minutes(1), 100, "retention")
        .await
        .unwrap();
    assert_eq!(
        (purged.cases, purged.accidents),
        (vec![case], vec![accident])
    );

    let far_ahead = Utc::now() + Duration::days(1);
    let first = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert_eq!(
        (first.cases, first.accidents),
        (vec![case], vec![]),
        "the accident waits for its violation"
    );
    let second = store
        .destroy_case_files(far_ahead, 100, "archive")
        .await
        .unwrap();
    assert_eq!((second.cases, second.accidents), (vec![], vec![accident]));
}
