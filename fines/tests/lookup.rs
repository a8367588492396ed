//! The owner-lookup stage against a stand-in security server: each approved case goes
//! to owner_found or to owner_unknown with its reason, for every way the registry and
//! the bus answer.

use std::sync::Arc;

use chrono::Utc;
use kozomol_core::{
    CameraId, CaseId, CaseState, EventId, FrameRole, OwnerKind, OwnerOutcome, ReviewDecision,
    ReviewTier, ViolationKind,
};
use kozomol_fines::lookup::{run_lookups, LookupStage};
use kozomol_store::{CaseWrite, FrameLocation, NewCase, NewFrame, NewReview, ReviewWrite, Store};
use kozomol_tunduk::standin::{EntryOwner, Failure, RegistryEntry, StandIn, StandInConfig};
use kozomol_tunduk::{RegistryConfig, VehicleRegistry, XRoadClient};
use sha2::{Digest, Sha256};
use support::{Backend, Db};

mod support;

fn client() -> XRoadClient {
    XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("client id")
}

async fn store(backend: Backend) -> (Db, Arc<dyn Store>) {
    let db = Db::with_camera(backend).await;
    let store = Arc::clone(&db.store);
    (db, store)
}

/// An approved case whose decided plate is `plate` (or none).
async fn approved(store: &dyn Store, plate: Option<&str>) -> CaseId {
    let event_id = EventId::new_v7();
    let hash = |what: &str| -> [u8; 32] { Sha256::digest(format!("{what} {event_id}")).into() };
    let case = NewCase {
        event_id,
        camera_id: CameraId::parse("cam-1").expect("id"),
        captured_at: Utc::now(),
        kind: ViolationKind::RedLight,
        fingerprint: hash("payload"),
        event: serde_json::json!({"event_id": event_id.to_string()}),
        camera_plate: None,
        enforceable: true,
        enforceability_note: None,
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
    let review = NewReview {
        case_id: id,
        tier: ReviewTier::Supervisor,
        reviewer: "supervisor-1".into(),
        decision: ReviewDecision::CorrectPlate,
        reason: None,
        plate: plate.map(str::to_owned),
        note: None,
        from_state: CaseState::Received,
        to_state: CaseState::Approved,
        seen_move: None,
    };
    assert_eq!(
        store.record_review(&review).await.expect("review"),
        ReviewWrite::Recorded
    );
    id
}

/// A security server whose registry knows one car, 01KG123ABC, and its owner.
async fn standin_knowing_01kg123abc() -> StandIn {
    let standin = StandIn::start(StandInConfig::new(vec![client()]))
        .await
        .expect("stand-in");
    standin.set_entry(
        "01KG123ABC",
        RegistryEntry::person(
            "01KG123ABC",
            "21212198000123",
            "Асанов",
            "Бакыт",
            "Токтогулович",
        ),
    );
    standin
}

fn registry(standin: &StandIn) -> VehicleRegistry {
    let mut config = RegistryConfig::new(standin.url(), client());
    config.request_timeout_ms = 2_000;
    config.backoff_base_ms = 5;
    config.backoff_max_ms = 20;
    config.cache_ttl_secs = 0;
    VehicleRegistry::new(config).expect("registry")
}

#[tokio::test]
async fn every_answer_lands_the_case_where_it_belongs_on_sqlite() {
    every_answer_lands_the_case_where_it_belongs(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_answer_lands_the_case_where_it_belongs_on_postgres() {
    every_answer_lands_the_case_where_it_belongs(Backend::Postgres).await;
}

async fn every_answer_lands_the_case_where_it_belongs(backend: Backend) {
    let (_db, store) = store(backend).await;
    let standin = standin_knowing_01kg123abc().await;
    standin.set_entry(
        "01KG777AAA",
        RegistryEntry::company("01KG777AAA", "02212199810123", "ОсОО Жол Курулуш"),
    );
    standin.set_entry(
        "01KG555BBB",
        RegistryEntry::person(
            "01KG555BBB",
            "21212198000123",
            "Асанов",
            "Бакыт",
            "Токтогулович",
        )
        .with_owner(EntryOwner {
            pin: Some("11111198000999".to_owned()),
            surname: "Исаева".to_owned(),
            name: "Айгуль".to_owned(),
            ..EntryOwner::default()
        }),
    );

    // (plate decided, expected state, outcome, words in the reason)
    let table: Vec<(Option<&str>, CaseState, OwnerOutcome, &str)> = vec![
        (
            Some("01KG123ABC"),
            CaseState::OwnerFound,
            OwnerOutcome::Found,
            "",
        ),
        (
            Some("01KG777AAA"),
            CaseState::OwnerFound,
            OwnerOutcome::Found,
            "",
        ),
        (
            Some("01KG555BBB"),
            CaseState::OwnerUnknown,
            OwnerOutcome::SeveralOwners,
            "2 owners",
        ),
        (
            Some("01KG999ZZZ"),
            CaseState::OwnerUnknown,
            OwnerOutcome::NoData,
            "no vehicle",
        ),
        (
            Some("A123BC77"),
            CaseState::OwnerUnknown,
            OwnerOutcome::ForeignPlate,
            "not a Kyrgyz plate",
        ),
        (
            None,
            CaseState::OwnerUnknown,
            OwnerOutcome::NoData,
            "no plate",
        ),
    ];
    let mut ids = Vec::new();
    for (plate, ..) in &table {
        ids.push(approved(store.as_ref(), *plate).await);
    }
    let stage = LookupStage::new("lookup-1");
    let moved = run_lookups(&stage, store.as_ref(), &registry(&standin))
        .await
        .expect("stage runs");
    assert_eq!(moved.len(), table.len());
    for (id, (plate, state, outcome, words)) in ids.iter().zip(&table) {
        let case = store.case(*id).await.expect("read").expect("case");
        assert_eq!(case.state, *state, "{plate:?}");
        let lookup = store
            .owner_lookup(*id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(lookup.outcome, *outcome, "{plate:?}");
        assert!(
            lookup.reason.as_deref().unwrap_or("").contains(words),
            "{plate:?}: {:?}",
            lookup.reason
        );
        // What the bus answered is traceable in its logs; what it was not asked is not.
        let asked = plate.is_some() && *outcome != OwnerOutcome::ForeignPlate;
        assert_eq!(
            lookup.exchange_id.is_some(),
            asked,
            "{plate:?}: {:?}",
            lookup.exchange_id
        );
    }
    let person = store
        .owner_lookup(ids[0])
        .await
        .expect("read")
        .expect("stored");
    let owner = person.owner.expect("owner");
    assert_eq!(
        (owner.kind, owner.id.as_str()),
        (OwnerKind::Person, "21212198000123")
    );
    assert!(owner.name.contains("Асанов"));
    let company = store
        .owner_lookup(ids[1])
        .await
        .expect("read")
        .expect("stored")
        .owner
        .expect("owner");
    assert_eq!(company.kind, OwnerKind::Company);
    // Nothing is left to look up: every case was moved once.
    assert!(run_lookups(&stage, store.as_ref(), &registry(&standin))
        .await
        .expect("runs")
        .is_empty());
}

#[tokio::test]
async fn bus_failures_leave_the_case_approved_to_ask_again_on_sqlite() {
    bus_failures_leave_the_case_approved_to_ask_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn bus_failures_leave_the_case_approved_to_ask_again_on_postgres() {
    bus_failures_leave_the_case_approved_to_ask_again(Backend::Postgres).await;
}

async fn bus_failures_leave_the_case_approved_to_ask_again(backend: Backend) {
    let (_db, store) = store(backend).await;
    let standin = standin_knowing_01kg123abc().await;
    // A failure the retries ride out: found.
    let first = approved(store.as_ref(), Some("01KG123ABC")).await;
    standin.fail_next(1, Failure::Http500);
    let stage = LookupStage::new("lookup-1");
    run_lookups(&stage, store.as_ref(), &registry(&standin))
        .await
        .expect("runs");
    assert_eq!(
        store.case(first).await.expect("read").expect("case").state,
        CaseState::OwnerFound
    );

    // Failures past every retry: the bus's failure, not the case's; it stays approved,
    // nothing recorded, and is asked about again once its lease runs out.
    let second = approved(store.as_ref(), Some("01KG123ABC")).await;
    standin.fail_next(3, Failure::Http500);
    let mut short = LookupStage::new("lookup-1");
    short.lease = std::time::Duration::from_millis(300);
    let moved = run_lookups(&short, store.as_ref(), &registry(&standin))
        .await
        .expect("runs");
    assert_eq!(moved, vec![(second, Some(CaseState::Approved))]);
    assert_eq!(
        store.case(second).await.expect("read").expect("case").state,
        CaseState::Approved
    );
    assert!(store.owner_lookup(second).await.expect("read").is_none());
    assert!(
        run_lookups(&short, store.as_ref(), &registry(&standin))
            .await
            .expect("runs")
            .is_empty(),
        "claimed until its lease ends"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    run_lookups(&short, store.as_ref(), &registry(&standin))
        .await
        .expect("runs");
    assert_eq!(
        store.case(second).await.expect("read").expect("case").state,
        CaseState::OwnerFound
    );

    // A fault of the service itself about this plate, every time: asked again four
    // times, then a supervisor is asked to look.
    let third = approved(store.as_ref(), Some("01KG123ABC")).await;
    standin.fail_next(
        100,
        Failure::Fault {
            code: "Client.BadPlateValue".into(),
            message: "plate rejected".into(),
        },
    );
    for attempt in 1..=kozomol_fines::lookup::MAX_AMISS_LOOKUPS {
        let moved = run_lookups(&short, store.as_ref(), &registry(&standin))
            .await
            .expect("runs");
        let want = if attempt < kozomol_fines::lookup::MAX_AMISS_LOOKUPS {
            CaseState::Approved
        } else {
            CaseState::SupervisorReview
        };
        assert_eq!(moved, vec![(third, Some(want))], "attempt {attempt}");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    assert!(store.owner_lookup(third).await.expect("read").is_none());
}

#[tokio::test]
async fn a_pass_cut_short_by_the_store_is_taken_up_again_on_sqlite() {
    a_pass_cut_short_by_the_store_is_taken_up_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_pass_cut_short_by_the_store_is_taken_up_again_on_postgres() {
    a_pass_cut_short_by_the_store_is_taken_up_again(Backend::Postgres).await;
}

/// The database failing mid-pass (a restart) leaves the batch claimed by this worker
/// under a lease of minutes: its next pass finishes them, not the lease's end.
async fn a_pass_cut_short_by_the_store_is_taken_up_again(backend: Backend) {
    let db = Db::with_camera(backend).await;
    let store = Arc::clone(&db.store);
    let standin = standin_knowing_01kg123abc().await;
    let cases = [
        approved(store.as_ref(), Some("01KG123ABC")).await,
        approved(store.as_ref(), Some("01KG123ABC")).await,
    ];
    let stage = LookupStage::new("lookup-1");
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    db.execute(
        rename("owner_lookups", "owner_lookups_away"),
        rename("owner_lookups", "owner_lookups_away"),
    )
    .await;
    assert!(run_lookups(&stage, store.as_ref(), &registry(&standin))
        .await
        .is_err());
    db.execute(
        rename("owner_lookups_away", "owner_lookups"),
        rename("owner_lookups_away", "owner_lookups"),
    )
    .await;
    let moved = run_lookups(&stage, store.as_ref(), &registry(&standin))
        .await
        .expect("runs");
    assert_eq!(
        moved,
        cases
            .iter()
            .map(|&id| (id, Some(CaseState::OwnerFound)))
            .collect::<Vec<_>>()
    );
    // Each was done once: nothing is left for a later pass.
    assert!(run_lookups(&stage, store.as_ref(), &registry(&standin))
        .await
        .expect("runs")
        .is_empty());

    // A store error that comes back on the taken-up pass: the case is not taken up
    // again and again (the registry asked each time), it waits for its lease.
    let mut short = LookupStage::new("lookup-2");
    short.lease = std::time::Duration::from_secs(3);
    let waiting = approved(store.as_ref(), Some("01KG123ABC")).await;
    db.execute(
        rename("owner_lookups", "owner_lookups_away"),
        rename("owner_lookups", "owner_lookups_away"),
    )
    .await;
    for pass in ["claimed", "taken up"] {
        assert!(
            run_lookups(&short, store.as_ref(), &registry(&standin))
                .await
                .is_err(),
            "{pass}"
        );
    }
    assert!(run_lookups(&short, store.as_ref(), &registry(&standin))
        .await
        .expect("nothing claimable meanwhile")
        .is_empty());
    db.execute(
        rename("owner_lookups_away", "owner_lookups"),
        rename("owner_lookups_away", "owner_lookups"),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        run_lookups(&short, store.as_ref(), &registry(&standin))
            .await
            .expect("runs"),
        [(waiting, Some(CaseState::OwnerFound))]
    );
}
