//! The checks before issuing inside the owner-lookup stage, against both stores and a
//! stand-in security server: exempt plates, duplicates from several cameras (also
//! checked by two workers at once), cloned plates and their clearing by a supervisor,
//! and hot-list alerts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, EventId, FrameRole, Jurisdiction,
    ReviewDecision, ReviewTier, Site, ViolationKind,
};
use kozomol_fines::checks::{ChecksConfig, Verdict};
use kozomol_fines::lookup::{run_lookups, LookupStage};
use kozomol_fines::pre_issue::{check_case, CheckLists, CheckRun, Checked};
use kozomol_store::audit::CASE_SET_ASIDE;
use kozomol_store::{
    AlertKind, AlertQuery, CameraRegistration, CaseWrite, FrameLocation, NewCase, NewExemption,
    NewFrame, NewHotListEntry, NewReview, ReviewWrite, Store,
};
use kozomol_tunduk::standin::{RegistryEntry, StandIn, StandInConfig};
use kozomol_tunduk::{RegistryConfig, VehicleRegistry, XRoadClient};
use sha2::{Digest, Sha256};
use support::{Backend, Db};

mod support;

fn client() -> XRoadClient {
    XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("client id")
}

/// A place cameras watch.
struct Place {
    id: &'static str,
    lat_e6: i32,
    lon_e6: i32,
}

/// Chuy / Manas in Bishkek, and a junction in Osh, some 300 km away.
const CHUY: Place = Place {
    id: "site-chuy-manas",
    lat_e6: 42_876_000,
    lon_e6: 74_604_000,
};
const OSH: Place = Place {
    id: "site-osh-kurmanjan",
    lat_e6: 40_528_300,
    lon_e6: 72_798_500,
};

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 8, 0, 0)
        .single()
        .expect("instant")
        + TimeDelta::minutes(minutes)
}

/// A store with cameras `cam-1` and `cam-2`, and a stand-in registry that knows
/// `plates`.
struct World {
    _db: Db,
    store: Arc<dyn Store>,
    standin: StandIn,
}

impl World {
    async fn new(backend: Backend, plates: &[&str]) -> World {
        let db = Db::with_camera(backend).await;
        let store = Arc::clone(&db.store);
        store
            .register_camera(&CameraRegistration {
                camera_id: CameraId::parse("cam-2").expect("id"),
                public_key: [2; 32],
                device_serial: "SN-2".into(),
                certificate: CalibrationCertificate {
                    number: "KG-2".into(),
                    valid_from: "2026-01-01".parse().expect("date"),
                    valid_until: "2027-01-01".parse().expect("date"),
                },
                site: Site {
                    id: CHUY.id.into(),
                    lat_e6: CHUY.lat_e6,
                    lon_e6: CHUY.lon_e6,
                    address: "Бишкек".into(),
                    direction: "west".into(),
                    lane: 1,
                },
            })
            .await
            .expect("camera");
        let standin = StandIn::start(StandInConfig::new(vec![client()]))
            .await
            .expect("stand-in");
        for plate in plates {
            standin.set_entry(
                plate,
                RegistryEntry::person(plate, "21212198000123", "Асанов", "Бакыт", "Токтогулович"),
            );
        }
        World {
            _db: db,
            store,
            standin,
        }
    }

    fn registry(&self) -> VehicleRegistry {
        let mut config = RegistryConfig::new(self.standin.url(), client());
        config.request_timeout_ms = 2_000;
        config.backoff_base_ms = 5;
        config.backoff_max_ms = 20;
        config.cache_ttl_secs = 0;
        VehicleRegistry::new(config).expect("registry")
    }

    /// Runs one lookup pass as `worker`; where each case went.
    async fn lookups(&self, worker: &str) -> Vec<(CaseId, Option<CaseState>)> {
        run_lookups(
            &LookupStage::new(worker),
            self.store.as_ref(),
            &self.registry(),
        )
        .await
        .expect("lookup stage runs")
    }

    async fn state(&self, id: CaseId) -> CaseState {
        self.store
            .case(id)
            .await
            .expect("read")
            .expect("case")
            .state
    }

    /// The reason the checks gave when they set the case aside.
    async fn set_aside_reason(&self, id: CaseId) -> String {
        self.store
            .case_audit(id)
            .await
            .expect("audit")
            .iter()
            .rev()
            .find(|a| a.action == CASE_SET_ASIDE)
            .and_then(|a| a.detail.clone())
            .unwrap_or_else(|| panic!("case {id} was not set aside"))
    }

    /// A red-light case of `plate` from `camera` at `place`, approved by a supervisor
    /// (who decided the plate).
    async fn approved(
        &self,
        camera: &str,
        plate: &str,
        place: &Place,
        captured_at: DateTime<Utc>,
    ) -> CaseId {
        let event_id = EventId::new_v7();
        let hash = |what: &str| -> [u8; 32] { Sha256::digest(format!("{what} {event_id}")).into() };
        let case = NewCase {
            event_id,
            camera_id: CameraId::parse(camera).expect("id"),
            captured_at,
            kind: ViolationKind::RedLight,
            fingerprint: hash("payload"),
            event: serde_json::json!({
                "event_id": event_id.to_string(),
                "camera_id": camera,
                "site": {
                    "id": place.id, "lat_e6": place.lat_e6, "lon_e6": place.lon_e6,
                    "address": "-", "direction": "east", "lane": 1
                },
            }),
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
        let id = match self
            .store
            .record_cases(&[case], "test")
            .await
            .expect("case")
            .as_slice()
        {
            [CaseWrite::Created(id)] => *id,
            other => panic!("{other:?}"),
        };
        self.review(id, CaseState::Received, Some(plate)).await;
        id
    }

    /// A supervisor approves the case from `from`.
    async fn review(&self, id: CaseId, from: CaseState, plate: Option<&str>) {
        let review = NewReview {
            case_id: id,
            tier: ReviewTier::Supervisor,
            reviewer: "supervisor-1".into(),
            decision: if plate.is_some() {
                ReviewDecision::CorrectPlate
            } else {
                ReviewDecision::Approve
            },
            reason: None,
            plate: plate.map(str::to_owned),
            note: None,
            from_state: from,
            to_state: CaseState::Approved,
            seen_move: None,
        };
        assert_eq!(
            self.store.record_review(&review).await.expect("review"),
            ReviewWrite::Recorded
        );
    }
}

fn exemption(pattern: &str, category: &str) -> NewExemption {
    NewExemption {
        pattern: pattern.into(),
        category: category.into(),
        note: "Постановление № 12 от 2026-01-05".into(),
        valid_from: None,
        valid_until: None,
        added_by: "admin".into(),
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    an_exempt_plate_is_set_aside_without_asking_the_bus,
    two_cameras_catching_one_act_make_one_fine,
    one_act_read_under_two_spellings_makes_one_fine,
    two_workers_checking_one_act_at_once_agree,
    an_earlier_case_defers_to_a_later_one_already_let_through,
    a_plate_at_two_far_sites_minutes_apart_goes_to_a_supervisor,
    a_hot_list_hit_raises_an_alert_and_the_case_proceeds,
);

async fn an_exempt_plate_is_set_aside_without_asking_the_bus(backend: Backend) {
    let w = World::new(backend, &["01KG777GOV", "01D123AAA"]).await;
    let listed = w
        .store
        .add_exemption(&exemption("01KG777GOV", "government"))
        .await
        .expect("exemption");
    w.store
        .add_exemption(&exemption("01D*", "diplomatic"))
        .await
        .expect("series");
    let government = w.approved("cam-1", "01KG777GOV", &CHUY, at(0)).await;
    let diplomat = w.approved("cam-1", "01D123AAA", &CHUY, at(0)).await;

    let moved = w.lookups("lookup-1").await;
    assert_eq!(
        moved,
        vec![
            (government, Some(CaseState::Exempt)),
            (diplomat, Some(CaseState::Exempt))
        ]
    );
    assert_eq!(w.standin.request_count(), 0, "the bus was not asked");
    assert_eq!(w.state(government).await, CaseState::Exempt);
    assert!(w
        .store
        .owner_lookup(government)
        .await
        .expect("read")
        .is_none());
    assert_eq!(
        w.set_aside_reason(government).await,
        "plate 01KG777GOV is exempt on 2026-03-10: government (listed): Постановление № 12 от 2026-01-05"
    );
    assert!(w
        .set_aside_reason(diplomat)
        .await
        .contains("diplomatic (series 01D*)"));

    // A removed exemption no longer exempts: the next capture of the plate (an hour
    // later, another act) goes on to the owner lookup.
    w.store
        .remove_exemption(listed.id, "supervisor")
        .await
        .expect("removed")
        .expect("was in force");
    let later = w.approved("cam-1", "01KG777GOV", &CHUY, at(60)).await;
    assert_eq!(
        w.lookups("lookup-1").await,
        vec![(later, Some(CaseState::OwnerFound))]
    );
    assert_eq!(w.standin.request_count(), 1);
}

async fn two_cameras_catching_one_act_make_one_fine(backend: Backend) {
    let w = World::new(backend, &["01KG123ABC"]).await;
    // The second camera delivered first: its case has the lower id, but was captured
    // 40 s after the first camera's.
    let second_camera = w
        .approved("cam-2", "01KG123ABC", &CHUY, at(0) + TimeDelta::seconds(40))
        .await;
    let first_camera = w.approved("cam-1", "01KG123ABC", &CHUY, at(0)).await;
    let moved = w.lookups("lookup-1").await;
    assert_eq!(
        moved,
        vec![
            (second_camera, Some(CaseState::Duplicate)),
            (first_camera, Some(CaseState::OwnerFound))
        ]
    );
    assert_eq!(w.standin.request_count(), 1, "one lookup for one act");
    assert_eq!(
        w.set_aside_reason(second_camera).await,
        format!(
            "duplicate of case {first_camera}: red_light by plate 01KG123ABC at site site-chuy-manas, captured 40 s before this one (window 300 s)"
        )
    );

    // A capture past the window is another act; one inside it defers to the case that
    // is already past its checks.
    let another_act = w
        .approved(
            "cam-1",
            "01KG123ABC",
            &CHUY,
            at(0) + TimeDelta::seconds(341),
        )
        .await;
    let late_delivery = w
        .approved(
            "cam-2",
            "01KG123ABC",
            &CHUY,
            at(0) - TimeDelta::seconds(100),
        )
        .await;
    let moved = w.lookups("lookup-1").await;
    assert_eq!(
        moved,
        vec![
            (another_act, Some(CaseState::OwnerFound)),
            (late_delivery, Some(CaseState::Duplicate))
        ]
    );
    assert!(w
        .set_aside_reason(late_delivery)
        .await
        .starts_with(&format!("duplicate of case {first_camera}:")));
}

/// A camera writes the plate with its `KG`, the recognizer without: one plate, one act.
async fn one_act_read_under_two_spellings_makes_one_fine(backend: Backend) {
    let w = World::new(backend, &["01KG123ABC"]).await;
    let camera_read = w.approved("cam-1", "01KG123ABC", &CHUY, at(0)).await;
    let machine_read = w
        .approved("cam-2", "01123ABC", &CHUY, at(0) + TimeDelta::seconds(12))
        .await;
    assert_eq!(
        w.lookups("lookup-1").await,
        vec![
            (camera_read, Some(CaseState::OwnerFound)),
            (machine_read, Some(CaseState::Duplicate))
        ]
    );
    assert_eq!(w.standin.request_count(), 1, "one lookup for one act");
    assert!(w
        .set_aside_reason(machine_read)
        .await
        .starts_with(&format!("duplicate of case {camera_read}:")));
}

async fn two_workers_checking_one_act_at_once_agree(backend: Backend) {
    let plates = ["01KG100AAA", "01KG200AAA", "01KG300AAA", "01KG400AAA"];
    let w = World::new(backend, &plates).await;
    // Each lookup takes a while, so both workers check while the other's case is still
    // `approved`.
    w.standin.set_delay(Duration::from_millis(150));
    for (i, plate) in plates.iter().enumerate() {
        // Odd acts: the later capture has the lower id.
        let (a, b) = (at(0), at(0) + TimeDelta::seconds(5 + i as i64));
        let (first, second) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let one = w.approved("cam-1", plate, &CHUY, first).await;
        let two = w.approved("cam-2", plate, &CHUY, second).await;

        let registry = w.registry();
        let (one_stage, two_stage) = {
            let mut one_stage = LookupStage::new("lookup-1");
            one_stage.batch = 1;
            let mut two_stage = LookupStage::new("lookup-2");
            two_stage.batch = 1;
            (one_stage, two_stage)
        };
        let (left, right) = tokio::join!(
            run_lookups(&one_stage, w.store.as_ref(), &registry),
            run_lookups(&two_stage, w.store.as_ref(), &registry),
        );
        let mut moved = left.expect("worker 1");
        moved.extend(right.expect("worker 2"));
        moved.sort_by_key(|(id, _)| *id);
        let earlier = if a == first { one } else { two };
        let later = if earlier == one { two } else { one };
        let mut want = vec![
            (earlier, Some(CaseState::OwnerFound)),
            (later, Some(CaseState::Duplicate)),
        ];
        want.sort_by_key(|(id, _)| *id);
        assert_eq!(moved, want, "{plate}");
        assert!(w
            .set_aside_reason(later)
            .await
            .starts_with(&format!("duplicate of case {earlier}:")));
    }
    assert_eq!(
        w.standin.request_count(),
        plates.len(),
        "one lookup per act"
    );
}

async fn an_earlier_case_defers_to_a_later_one_already_let_through(backend: Backend) {
    let plate = "01KG123ABC";
    let w = World::new(backend, &[plate]).await;
    let (config, lists) = (ChecksConfig::default(), CheckLists::default());
    let run = |worker| CheckRun {
        worker,
        config: &config,
        jurisdiction: Jurisdiction::Kg,
        lists: &lists,
    };
    let check = |worker: &'static str, id: CaseId| {
        let store = Arc::clone(&w.store);
        let run = run(worker);
        async move {
            let claimed = store
                .claim_stage(CaseState::Approved, worker, 10, Duration::from_secs(600))
                .await
                .expect("claim");
            assert_eq!(claimed, [id]);
            let record = store.case(id).await.expect("read").expect("case");
            check_case(&run, store.as_ref(), &record, plate)
                .await
                .expect("checks run")
        }
    };
    // The later capture is approved and checked while the earlier one is still in
    // review (here: not yet delivered at all): nothing stands before it.
    let later = w
        .approved("cam-2", plate, &CHUY, at(0) + TimeDelta::seconds(40))
        .await;
    assert!(matches!(
        check("lookup-2", later).await,
        Checked::Proceed(_)
    ));
    // Its owner lookup is under way: it is still `approved` when the earlier one is
    // approved and checked. Without the mark the earlier one would see a later case
    // waiting for its checks, and both would be fined.
    let earlier = w.approved("cam-1", plate, &CHUY, at(0)).await;
    match check("lookup-1", earlier).await {
        Checked::SetAside(outcome) => {
            assert_eq!(outcome.verdict, Verdict::Duplicate { of: later });
            assert_eq!(outcome.to, Some(CaseState::Duplicate));
        }
        other => panic!("the earlier case is the duplicate: {other:?}"),
    }
    assert_eq!(w.state(earlier).await, CaseState::Duplicate);
    assert_eq!(w.state(later).await, CaseState::Approved);
    assert_eq!(
        w.set_aside_reason(earlier).await,
        format!(
            "duplicate of case {later}: red_light by plate {plate} at site site-chuy-manas, captured 40 s after this one (window 300 s)"
        )
    );
}

async fn a_plate_at_two_far_sites_minutes_apart_goes_to_a_supervisor(backend: Backend) {
    let w = World::new(backend, &["01KG123ABC"]).await;
    let bishkek = w.approved("cam-1", "01KG123ABC", &CHUY, at(0)).await;
    let osh = w.approved("cam-1", "01KG123ABC", &OSH, at(10)).await;
    let moved = w.lookups("lookup-1").await;
    assert_eq!(
        moved,
        vec![
            (bishkek, Some(CaseState::SupervisorReview)),
            (osh, Some(CaseState::SupervisorReview))
        ]
    );
    assert_eq!(w.standin.request_count(), 0, "review, not a fine");
    let reason = w.set_aside_reason(bishkek).await;
    assert!(
        reason.starts_with("possible cloned plate 01KG123ABC: seen faster than 200 km/h allows"),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("case {osh} at site site-osh-kurmanjan")),
        "{reason}"
    );
    assert!(reason.ends_with("review, not a fine"), "{reason}");

    // The supervisor weighs the Osh sighting and approves the Bishkek case: it is not
    // sent back for what they saw.
    w.review(bishkek, CaseState::SupervisorReview, None).await;
    assert_eq!(
        w.lookups("lookup-1").await,
        vec![(bishkek, Some(CaseState::OwnerFound))]
    );

    // The Osh case, approved as well, goes on; but a sighting recorded after the
    // approval was not weighed, and sends it back.
    w.review(osh, CaseState::SupervisorReview, None).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let bishkek_again = w.approved("cam-2", "01KG123ABC", &CHUY, at(12)).await;
    let moved = w.lookups("lookup-1").await;
    assert_eq!(
        moved,
        vec![
            (osh, Some(CaseState::SupervisorReview)),
            (bishkek_again, Some(CaseState::SupervisorReview))
        ]
    );
    let reason = w.set_aside_reason(osh).await;
    assert!(
        reason.contains(&format!("case {bishkek_again} at site")),
        "{reason}"
    );
    assert!(
        !reason.contains(&format!("case {bishkek} at site")),
        "the weighed sighting is not named again: {reason}"
    );
    assert_eq!(w.standin.request_count(), 1);
}

async fn a_hot_list_hit_raises_an_alert_and_the_case_proceeds(backend: Backend) {
    let w = World::new(backend, &["01KG666XYZ", "01KG777GOV"]).await;
    w.store
        .add_hot_list_entry(&NewHotListEntry {
            plate: "01KG666XYZ".into(),
            reason: "stolen".into(),
            note: "угон, КУСП 1234".into(),
            listed_by: "supervisor".into(),
        })
        .await
        .expect("listed");
    w.store
        .add_hot_list_entry(&NewHotListEntry {
            plate: "01KG777GOV".into(),
            reason: "wanted".into(),
            note: String::new(),
            listed_by: "supervisor".into(),
        })
        .await
        .expect("listed");
    w.store
        .add_exemption(&exemption("01KG777GOV", "government"))
        .await
        .expect("exemption");
    let stolen = w.approved("cam-1", "01KG666XYZ", &CHUY, at(0)).await;
    let exempt = w.approved("cam-1", "01KG777GOV", &CHUY, at(0)).await;
    let moved = w.lookups("lookup-1").await;
    assert_eq!(
        moved,
        vec![
            (stolen, Some(CaseState::OwnerFound)),
            (exempt, Some(CaseState::Exempt))
        ]
    );
    assert_eq!(w.standin.request_count(), 1);

    // An alert whatever the verdict, one per case.
    let alerts = w
        .store
        .alerts(&AlertQuery {
            open_only: true,
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .expect("alerts");
    assert_eq!(
        alerts.iter().map(|a| a.case_id).collect::<Vec<_>>(),
        vec![stolen, exempt]
    );
    let alert = &alerts[0];
    assert_eq!(alert.kind, AlertKind::HotList);
    assert_eq!(alert.detail["plate"], "01KG666XYZ");
    assert_eq!(alert.detail["reason"], "stolen");
    assert_eq!(alert.detail["note"], "угон, КУСП 1234");
    assert_eq!(alert.detail["site_id"], "site-chuy-manas");
    assert!(alert.detail["checks"]
        .as_str()
        .unwrap_or("")
        .contains("plate on the hot list (stolen"));
    assert!(alerts[1].detail["checks"]
        .as_str()
        .unwrap_or("")
        .starts_with("plate 01KG777GOV is exempt"));
    let audit = w.store.case_audit(stolen).await.expect("audit");
    let raised: Vec<_> = audit
        .iter()
        .filter(|a| a.action == kozomol_store::checks::ALERT_RAISED)
        .collect();
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].actor, "fines:lookup-1");
}
