//! Owner liability on SQLite and PostgreSQL: repeats count per offender (the owner's
//! PIN or the company's INN, or the driver the owner named), never per plate; a named
//! driver gets the offence re-issued by the issuing stage under a new number, the
//! owner's resolution annulled (refunded when paid); a stolen car's case is closed and
//! its plate goes on the hot list; a second statement is refused.

use chrono::{DateTime, TimeZone, Utc};
use kozomol_core::{
    CaseId, CaseState, Measurement, OwnerKind, OwnerOfRecord, OwnerOutcome, ViolationKind,
};
use kozomol_fines::issuing::{run_issuing, Issued};
use kozomol_store::{
    CaseQuery, Claim, CompleteResult, NewNomination, NominatedDriver, NominationRecorded,
    OwnerLookupRecord,
};
use support::issued::{
    approved_plate, audit_actions, issued_speeding, issuer, paid_in_full, stage, state, world,
    World, PLATE,
};
use support::Backend;

mod support;

fn speeding() -> Measurement {
    Measurement {
        speed_kmh: Some(112),
        limit_kmh: Some(60),
        red_elapsed_ms: None,
    }
}

fn person(pin: &str, name: &str) -> OwnerOfRecord {
    OwnerOfRecord {
        kind: OwnerKind::Person,
        id: pin.to_owned(),
        name: name.to_owned(),
        address: Some("Бишкек, ул. Киевская 96".to_owned()),
    }
}

fn company() -> OwnerOfRecord {
    OwnerOfRecord {
        kind: OwnerKind::Company,
        id: "02202201910123".to_owned(),
        name: "ОсОО «Камаз Транс»".to_owned(),
        address: Some("Бишкек, ул. Льва Толстого 17".to_owned()),
    }
}

/// Before every offence the tests issue (all captured on 10 March 2026).
fn long_ago() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .expect("instant")
}

/// Runs the issuing stage and returns the resolution number of `case`.
async fn issue(w: &World, case: CaseId) -> String {
    let issued = run_issuing(&stage(), &issuer(w), w.store.as_ref())
        .await
        .expect("issuing");
    match issued.iter().find(|(id, _)| *id == case) {
        Some((_, Issued::Resolution(number))) => number.clone(),
        other => panic!("case {case} not issued: {other:?}"),
    }
}

/// A speeding case of `plate` whose owner lookup names `owner`, issued, its penalty
/// dated back before the offences that follow; its resolution number.
async fn issued_to(w: &World, plate: &str, owner: &OwnerOfRecord) -> String {
    let case = approved_plate(w, ViolationKind::Speeding, speeding(), "officer-7", plate).await;
    assert_eq!(
        w.store
            .claim_stage(
                CaseState::Approved,
                "lookup-t",
                8,
                std::time::Duration::from_secs(60)
            )
            .await
            .expect("claim"),
        vec![case]
    );
    let lookup = OwnerLookupRecord {
        case_id: case,
        outcome: OwnerOutcome::Found,
        owner: Some(owner.clone()),
        vehicle: serde_json::json!({"make": "Toyota", "model": "Camry"}),
        registry_owner: serde_json::Value::Null,
        reason: None,
        exchange_id: None,
        looked_up_at: Utc::now(),
    };
    assert_eq!(
        w.store
            .record_owner_lookup("lookup-t", &lookup)
            .await
            .expect("lookup"),
        CompleteResult::Completed
    );
    let number = issue(w, case).await;
    w.db.force_issued_at(&number, long_ago()).await;
    number
}

async fn repeat_of(w: &World, number: &str) -> Option<String> {
    w.store
        .resolution(number)
        .await
        .expect("read")
        .expect("resolution")
        .repeat_of
}

#[tokio::test]
async fn repeats_count_per_offender_never_per_plate_on_sqlite() {
    repeats_count_per_offender_never_per_plate(Backend::Sqlite).await;
}

#[tokio::test]
async fn repeats_count_per_offender_never_per_plate_on_postgres() {
    repeats_count_per_offender_never_per_plate(Backend::Postgres).await;
}

async fn repeats_count_per_offender_never_per_plate(backend: Backend) {
    let w = world(backend).await;
    let owner = person("21212198000123", "Асанов Бакыт Токтогулович");
    let first = issued_to(&w, PLATE, &owner).await;
    assert_eq!(repeat_of(&w, &first).await, None, "a first offence");
    // The same plate, now a company's: its first offence.
    let company_first = issued_to(&w, PLATE, &company()).await;
    assert_eq!(
        repeat_of(&w, &company_first).await,
        None,
        "same plate, other owner"
    );
    // Another plate of the same person: a repeat of the person's penalty.
    let again = issued_to(&w, "01KG777AAA", &owner).await;
    assert_eq!(
        repeat_of(&w, &again).await,
        Some(first.clone()),
        "same owner, other plate"
    );
    // Companies count per INN.
    let company_again = issued_to(&w, "01KG888BBB", &company()).await;
    assert_eq!(
        repeat_of(&w, &company_again).await,
        Some(company_first.clone())
    );

    let history = w
        .store
        .offender_resolutions(OwnerKind::Person, &owner.id, Utc::now())
        .await
        .expect("history");
    let numbers: Vec<&str> = history.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(numbers, [first.as_str(), again.as_str()]);
    // The same digits as another kind of offender are someone else.
    let as_company = w
        .store
        .offender_resolutions(OwnerKind::Company, &owner.id, Utc::now())
        .await
        .expect("history");
    assert!(as_company.is_empty());
    // Only penalties imposed before the instant count.
    let before = w
        .store
        .offender_resolutions(OwnerKind::Person, &owner.id, long_ago())
        .await
        .expect("history");
    assert!(before.is_empty());
}

#[tokio::test]
async fn a_named_driver_gets_a_new_resolution_on_sqlite() {
    a_named_driver_gets_a_new_resolution(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_named_driver_gets_a_new_resolution_on_postgres() {
    a_named_driver_gets_a_new_resolution(Backend::Postgres).await;
}

async fn a_named_driver_gets_a_new_resolution(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (case, number) = issued_speeding(&w).await;
    let original = store
        .resolution(&number)
        .await
        .expect("read")
        .expect("issued");
    // The driver was penalised for speeding before, in another car.
    let driver = NominatedDriver {
        pin: "12345678901234".to_owned(),
        name: "Токтосунов Нурлан".to_owned(),
        address: Some("Бишкек, ул. Ахунбаева 1".to_owned()),
    };
    let drivers_earlier = issued_to(&w, "01KG555DDD", &person(&driver.pin, &driver.name)).await;
    paid_in_full(&w, &number).await;

    let nomination = NewNomination {
        resolution_number: number.clone(),
        claim: Claim::Driver {
            driver: driver.clone(),
        },
        statement: "за рулём был Токтосунов Н., доверенность от 01.03.2026".to_owned(),
        recorded_by: "desk-1".to_owned(),
    };
    let NominationRecorded::Recorded {
        nomination: recorded,
        refund_request,
        hot_list_entry,
    } = store.record_nomination(&nomination).await.expect("record")
    else {
        panic!("statement not recorded");
    };
    assert!(refund_request.is_some(), "the owner had paid");
    assert_eq!(hot_list_entry, None);
    assert_eq!(recorded.from_state, CaseState::PaidDiscounted);
    let reissued = recorded.reissued_case_id.expect("a case for the driver");
    assert_ne!(reissued, case);
    assert_eq!(state(store, case).await, CaseState::Annulled);
    assert_eq!(state(store, reissued).await, CaseState::OwnerFound);
    assert_eq!(
        store.reissued_from(reissued).await.expect("link"),
        Some(case)
    );
    assert_eq!(store.reissued_from(case).await.expect("link"), None);
    // Submitted twice: the first statement stands.
    assert_eq!(
        store.record_nomination(&nomination).await.expect("again"),
        NominationRecorded::AlreadyRecorded(recorded.id)
    );
    assert_eq!(
        store.nomination(&number).await.expect("read"),
        Some((*recorded).clone())
    );
    let refunds = store.refund_requests(0, 10).await.expect("refunds");
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        (refunds[0].case_id, refunds[0].cause.as_str()),
        (case, "annulled")
    );

    // The issuing stage addresses the offence to the driver, under a new number, as a
    // repeat of the driver's own penalty.
    let renumbered = issue(&w, reissued).await;
    assert_ne!(renumbered, number);
    let record = store
        .resolution(&renumbered)
        .await
        .expect("read")
        .expect("issued");
    assert_eq!(record.case_id, reissued);
    assert_ne!(record.payment_code, original.payment_code);
    assert_eq!(record.repeat_of, Some(drivers_earlier));
    // The document addresses the driver as the driver.
    let pdf = w
        .evidence
        .read(&record.pdf_location, &record.pdf_sha256)
        .expect("the pdf is stored");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &pdf).expect("writes the pdf");
    let text = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(file.path())
        .arg("-")
        .output()
        .expect("pdftotext runs (apt-get install poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Водитель (указан собственником)"), "{text}");
    assert!(text.contains("Адрес водителя"), "{text}");
    assert!(!text.contains("Адрес собственника"), "{text}");
    assert!(text.contains(driver.name.as_str()), "{text}");
    let addressed = store
        .owner_lookup(reissued)
        .await
        .expect("read")
        .expect("lookup");
    let addressee = addressed.owner.expect("driver");
    assert_eq!(
        (addressee.kind, addressee.id.as_str()),
        (OwnerKind::Person, driver.pin.as_str())
    );
    assert_eq!(addressee.name, driver.name);
    // The owner of record stays recorded on the original case.
    let owner = store
        .owner_lookup(case)
        .await
        .expect("read")
        .expect("lookup");
    assert_eq!(owner.owner.expect("owner").id, "21212198000123");
    // The vehicle's papers find the owner's case, not the driver's (the portal's
    // lookup by plate and certificate gives its finder the owner's rights).
    let sighted_plate = store.decided_plate(case).await.expect("read");
    let plate = sighted_plate
        .or(store.case(case).await.expect("read").expect("case").plate)
        .expect("a plate");
    let sighted = |owner_from_registry| {
        let query = CaseQuery {
            sighted_plates: vec![plate.clone()],
            owner_from_registry,
            limit: 10,
            ..CaseQuery::default()
        };
        async move {
            let found = store.cases(&query).await.expect("cases");
            found.iter().map(|c| c.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(sighted(false).await, vec![case, reissued]);
    assert_eq!(sighted(true).await, vec![case]);
    assert_eq!(
        store
            .case(reissued)
            .await
            .expect("read")
            .expect("case")
            .frames
            .len(),
        store
            .case(case)
            .await
            .expect("read")
            .expect("case")
            .frames
            .len()
    );
    assert!(audit_actions(store, case)
        .await
        .contains(&"case.driver_named".to_owned()));
    let actions = audit_actions(store, reissued).await;
    assert_eq!(actions.first().map(String::as_str), Some("case.reissued"));
    assert!(actions.contains(&"case.resolution_issued".to_owned()));
}

#[tokio::test]
async fn a_stolen_car_closes_the_case_on_sqlite() {
    a_stolen_car_closes_the_case(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_stolen_car_closes_the_case_on_postgres() {
    a_stolen_car_closes_the_case(Backend::Postgres).await;
}

async fn a_stolen_car_closes_the_case(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (case, number) = issued_speeding(&w).await;
    let stolen = |number: &str| NewNomination {
        resolution_number: number.to_owned(),
        claim: Claim::Stolen {
            police_report: "КУСП-2026-1187".to_owned(),
            reported_at: long_ago(),
        },
        statement: "автомобиль угнан 4 января".to_owned(),
        recorded_by: "desk-1".to_owned(),
    };
    let NominationRecorded::Recorded {
        nomination,
        refund_request,
        hot_list_entry,
    } = store
        .record_nomination(&stolen(&number))
        .await
        .expect("record")
    else {
        panic!("statement not recorded");
    };
    assert_eq!(nomination.reissued_case_id, None);
    assert_eq!(refund_request, None, "nothing was paid");
    assert!(hot_list_entry.is_some());
    assert_eq!(state(store, case).await, CaseState::Annulled);
    let listed = store.hot_list().await.expect("hot list");
    assert!(listed
        .iter()
        .any(|e| e.plate == PLATE && e.reason == "stolen"));
    assert!(audit_actions(store, case)
        .await
        .contains(&"case.reported_stolen".to_owned()));
    assert_eq!(
        store
            .record_nomination(&stolen(&number))
            .await
            .expect("again"),
        NominationRecorded::AlreadyRecorded(nomination.id)
    );

    // An appeal decides first; an unknown number is no resolution.
    let (other, other_number) = issued_speeding(&w).await;
    w.db.force_state(other, CaseState::Appealed).await;
    assert_eq!(
        store
            .record_nomination(&stolen(&other_number))
            .await
            .expect("refused"),
        NominationRecorded::NotOpen(CaseState::Appealed)
    );
    assert_eq!(state(store, other).await, CaseState::Appealed);
    assert_eq!(
        store
            .record_nomination(&stolen("KG-BSK-2026-9999999"))
            .await
            .expect("refused"),
        NominationRecorded::NotFound
    );
}
