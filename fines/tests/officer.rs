//! A violation an officer filed himself goes the same way as a camera's: the owner
//! lookup and issuing take it from `approved`, and its resolution names the officer who
//! saw it, and for speeding the speed gun he measured with.

use kozomol_core::{
    CalibrationCertificate, CaseId, CaseState, FrameRole, Measurement, MeasuringDevice,
    OfficerReport, ReportedPlace, ViolationKind, OFFICER_SOURCE,
};
use kozomol_fines::issuing::Issued;
use kozomol_store::accidents::OFFICER_FILED;
use kozomol_store::audit::{OWNER_LOOKED_UP, RESOLUTION_ISSUED};
use kozomol_store::checks::CHECKS_PASSED;
use kozomol_store::{NewFrame, NewOfficerViolation, OfficerFiled};
use sha2::{Digest, Sha256};
use support::issued::{
    audit_actions, issue_all, jpeg, officer_name, pdf_text, register_officer, resolution_text,
    state, world, World, PLATE,
};
use support::Backend;

mod support;

#[tokio::test]
async fn an_officer_filed_case_is_issued_on_sqlite() {
    an_officer_filed_case_is_issued(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_officer_filed_case_is_issued_on_postgres() {
    an_officer_filed_case_is_issued(Backend::Postgres).await;
}

/// Files a report by `officer`, `hours_ago`: running a red light, or with a speed gun
/// 112 km/h where 60 is allowed; its case id.
async fn file(
    w: &World,
    officer: &str,
    hours_ago: i64,
    photos: &[Vec<u8>; 2],
    speed_gun: Option<MeasuringDevice>,
) -> CaseId {
    let slices: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
    let locations = w.evidence.append_batch(&slices).expect("photos stored");
    let report = OfficerReport {
        source: OFFICER_SOURCE.to_owned(),
        report_id: uuid::Uuid::now_v7(),
        kind: if speed_gun.is_some() {
            ViolationKind::Speeding
        } else {
            ViolationKind::RedLight
        },
        occurred_at: chrono::Utc::now() - chrono::Duration::hours(hours_ago),
        plate: PLATE.to_owned(),
        measurement: match speed_gun {
            Some(_) => Measurement {
                speed_kmh: Some(112),
                limit_kmh: Some(60),
                red_elapsed_ms: None,
            },
            None => Measurement::default(),
        },
        device: speed_gun,
        place: ReportedPlace {
            address: "г. Бишкек, пр. Манаса — ул. Боконбаева".to_owned(),
            lat_e6: None,
            lon_e6: None,
        },
        officer: officer.to_owned(),
        notes: None,
        accident_id: None,
    };
    let filing = NewOfficerViolation {
        report,
        photos: photos
            .iter()
            .zip(locations)
            .zip([FrameRole::Overview, FrameRole::Plate])
            .map(|((bytes, location), role)| NewFrame {
                role,
                sha256: Sha256::digest(bytes).into(),
                location,
            })
            .collect(),
    };
    let OfficerFiled::Filed(id) = w
        .store
        .file_officer_violation(&filing)
        .await
        .expect("filed")
    else {
        panic!("not filed");
    };
    id
}

async fn an_officer_filed_case_is_issued(backend: Backend) {
    let w = world(backend).await;
    let photos = [jpeg(3, 640, 360), jpeg(5, 240, 60)];
    register_officer(&w, "officer-12").await;
    let id = file(&w, "officer-12", 2, &photos, None).await;
    // The witness is who the resolution names: one the register lacks is not issued.
    let unnamed = file(
        &w,
        "officer-13",
        30,
        &[jpeg(4, 640, 360), jpeg(6, 240, 60)],
        None,
    )
    .await;

    let issued = issue_all(&w).await;
    let Some((_, Issued::Resolution(number))) = issued.iter().find(|(case, _)| *case == id) else {
        panic!("case {id} not issued: {issued:?}");
    };
    assert!(
        issued.iter().any(|(case, result)| *case == unnamed
            && matches!(result, Issued::SetAside(reason) if reason.contains("`officer-13`"))),
        "{issued:?}"
    );
    assert_eq!(
        state(w.store.as_ref(), unnamed).await,
        CaseState::SupervisorReview
    );
    assert_eq!(state(w.store.as_ref(), id).await, CaseState::Issued);
    assert_eq!(
        audit_actions(w.store.as_ref(), id).await,
        [
            OFFICER_FILED,
            CHECKS_PASSED,
            OWNER_LOOKED_UP,
            RESOLUTION_ISSUED
        ]
    );
    let stored = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("stored");
    // KG: running a red light is 50 РП, 5,000 som.
    assert_eq!(stored.amount.minor, 500_000);
    let pdf = w
        .evidence
        .read(&stored.pdf_location, &stored.pdf_sha256)
        .expect("pdf reads");
    assert!(pdf.starts_with(b"%PDF-"));
    // The officer's own photo is embedded unchanged.
    assert!(
        pdf.windows(photos[0].len())
            .any(|w| w == photos[0].as_slice()),
        "the overview photo is in the PDF byte for byte"
    );
    let text = pdf_text(&pdf);
    assert!(text.contains(&officer_name("officer-12")), "{text}");
    assert!(text.contains("B-OFFICER-12"), "{text}");
    // An officer saw it: the title says so, not a camera in automatic mode.
    assert!(text.contains("выявленное сотрудником милиции"), "{text}");
    assert!(!text.contains("автоматическом режиме"), "{text}");
}

#[tokio::test]
async fn an_officers_speeding_report_cites_his_speed_gun_on_sqlite() {
    an_officers_speeding_report_cites_his_speed_gun(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_officers_speeding_report_cites_his_speed_gun_on_postgres() {
    an_officers_speeding_report_cites_his_speed_gun(Backend::Postgres).await;
}

/// A speed an officer measured rests on his speed gun: the resolution cites its serial
/// and certificate, and a certificate that does not cover the day is not fined on.
async fn an_officers_speeding_report_cites_his_speed_gun(backend: Backend) {
    let w = world(backend).await;
    register_officer(&w, "officer-12").await;
    let today = chrono::Utc::now().date_naive();
    let gun = |number: &str, from, until| MeasuringDevice {
        serial: "ИСКРА-ВИДЕО-2 №4471".into(),
        certificate: CalibrationCertificate {
            number: number.into(),
            valid_from: from,
            valid_until: until,
        },
    };
    let calibrated = gun(
        "KG-CSM-2026-0117",
        today - chrono::Days::new(100),
        today + chrono::Days::new(200),
    );
    let lapsed = gun(
        "KG-CSM-2025-0033",
        today - chrono::Days::new(400),
        today - chrono::Days::new(35),
    );
    let photos = [jpeg(7, 640, 360), jpeg(8, 240, 60)];
    let measured = file(&w, "officer-12", 2, &photos, Some(calibrated)).await;
    let unproven = file(
        &w,
        "officer-12",
        30,
        &[jpeg(9, 640, 360), jpeg(10, 240, 60)],
        Some(lapsed),
    )
    .await;

    let issued = issue_all(&w).await;
    let Some((_, Issued::Resolution(number))) = issued.iter().find(|(c, _)| *c == measured) else {
        panic!("case {measured} not issued: {issued:?}");
    };
    assert!(
        issued.iter().any(|(case, result)| *case == unproven
            && matches!(result, Issued::SetAside(reason)
                if reason.contains("KG-CSM-2025-0033") && reason.contains("does not cover"))),
        "{issued:?}"
    );
    let text = resolution_text(&w, number).await;
    for want in [
        "4471",
        "KG-CSM-2026-0117",
        "112 км/ч",
        "выявленное сотрудником милиции",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
}
