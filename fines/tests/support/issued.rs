//! A world with issued resolutions: an approved case with real JPEG frames, its owner
//! found through the stand-in security server, and the issuing stage run on it.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, ClockSource, DeliveryChannel, EventId,
    FrameRef, FrameRole, Jurisdiction, Measurement, MeasuringDevice, ReviewDecision, ReviewTier,
    Role, Site, ViolationEvent, ViolationKind,
};
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::issuing::{run_issuing, Issued, Issuer, IssuingStage};
use kozomol_fines::lookup::{run_lookups, LookupStage};
use kozomol_fines::resolution::{Ed25519Signer, Officer, SignerIdentity};
use kozomol_payments::MerchantAccount;
use kozomol_store::{
    CaseWrite, DeliveryRecorded, DeliveryTarget, EvidenceStore, NewAccount, NewCase, NewFrame,
    NewPayment, NewReview, OfficerIdentity, PaymentChannel, PaymentPosted, ProvenDelivery,
    ReviewWrite, Store,
};
use kozomol_tunduk::standin::{RegistryEntry, StandIn, StandInConfig};
use kozomol_tunduk::{RegistryConfig, VehicleRegistry, XRoadClient};
use sha2::{Digest, Sha256};

use super::{Backend, Db};

pub const PLATE: &str = "01KG123ABC";

pub fn client() -> XRoadClient {
    XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("client id")
}

pub fn jpeg(seed: u8, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x as u8).wrapping_add(seed),
            (y as u8).wrapping_mul(3),
            seed,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg encodes");
    out.into_inner()
}

pub fn site() -> Site {
    Site {
        id: "site-chuy-manas".into(),
        lat_e6: 42_876_000,
        lon_e6: 74_604_000,
        address: "проспект Чуй / проспект Манаса, Бишкек".into(),
        direction: "eastbound".into(),
        lane: 2,
    }
}

pub fn certificate() -> CalibrationCertificate {
    CalibrationCertificate {
        number: "KG-CSM-2026-0042".into(),
        valid_from: "2026-01-15".parse().expect("date"),
        valid_until: "2027-01-14".parse().expect("date"),
    }
}

pub struct World {
    pub db: Db,
    pub store: Arc<dyn Store>,
    pub evidence: Arc<EvidenceStore>,
}

pub async fn world(backend: Backend) -> World {
    // The document names the device and site from the signed event, not the register.
    let db = Db::with_camera(backend).await;
    let store = Arc::clone(&db.store);
    let evidence =
        Arc::new(EvidenceStore::open(&db.dir.path().join("evidence"), "t").expect("evidence"));
    World {
        db,
        store,
        evidence,
    }
}

/// An approved case of [`PLATE`] with real frames, approved by `reviewer`.
pub async fn approved(
    w: &World,
    kind: ViolationKind,
    measurement: Measurement,
    reviewer: &str,
) -> CaseId {
    approved_plate(w, kind, measurement, reviewer, PLATE).await
}

/// An approved case of `plate` with real frames, approved by `reviewer`, who is in the
/// officers' register.
pub async fn approved_plate(
    w: &World,
    kind: ViolationKind,
    measurement: Measurement,
    reviewer: &str,
    plate: &str,
) -> CaseId {
    register_officer(w, reviewer).await;
    approved_by_anyone(w, kind, measurement, reviewer, plate).await
}

/// An approved case of `plate` with real frames, approved by `reviewer`, whether the
/// register has him or not.
pub async fn approved_by_anyone(
    w: &World,
    kind: ViolationKind,
    measurement: Measurement,
    reviewer: &str,
    plate: &str,
) -> CaseId {
    let frames = [
        (FrameRole::Overview, jpeg(1, 640, 360)),
        (FrameRole::Plate, jpeg(2, 160, 48)),
    ];
    let bytes: Vec<&[u8]> = frames.iter().map(|(_, b)| b.as_slice()).collect();
    let locations = w.evidence.append_batch(&bytes).expect("frames stored");
    // Each case is another act: 08:30 UTC, then 6 minutes later for each case before it
    // (the checks before issuing make one act of a plate's captures at one site within
    // 5 minutes).
    let earlier = w
        .store
        .count_cases(&kozomol_store::CaseQuery::default())
        .await
        .expect("count");
    let captured_at = Utc
        .with_ymd_and_hms(2026, 3, 10, 8, 30, 0)
        .single()
        .expect("instant")
        + chrono::TimeDelta::minutes(6 * earlier as i64);
    let event = ViolationEvent {
        event_id: EventId::new_v7(),
        camera_id: CameraId::parse("cam-1").expect("id"),
        captured_at_ms: captured_at.timestamp_millis(),
        clock_source: ClockSource::Gnss,
        clock_offset_ms: None,
        site: site(),
        kind,
        measurement,
        device: MeasuringDevice {
            serial: "KRIS-P-12345".into(),
            certificate: certificate(),
        },
        plate_read: None,
        frames: frames
            .iter()
            .map(|(role, b)| FrameRef {
                role: *role,
                sha256: Sha256::digest(b).to_vec(),
                len: b.len() as u32,
            })
            .collect(),
    };
    let case = NewCase {
        event_id: event.event_id,
        camera_id: event.camera_id.clone(),
        captured_at,
        kind,
        fingerprint: Sha256::digest(event.event_id.0.as_bytes()).into(),
        event: serde_json::to_value(&event).expect("event json"),
        camera_plate: None,
        enforceable: true,
        enforceability_note: None,
        trace_parent: None,
        frames: frames
            .iter()
            .zip(locations)
            .map(|((role, b), location)| NewFrame {
                role: *role,
                sha256: Sha256::digest(b).into(),
                location,
            })
            .collect(),
    };
    let id = match w
        .store
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
        reviewer: reviewer.into(),
        decision: ReviewDecision::CorrectPlate,
        reason: None,
        plate: Some(plate.into()),
        note: None,
        from_state: CaseState::Received,
        to_state: CaseState::Approved,
        seen_move: None,
    };
    assert_eq!(
        w.store.record_review(&review).await.expect("review"),
        ReviewWrite::Recorded
    );
    id
}

/// The text of resolution `number`'s stored PDF.
pub async fn resolution_text(w: &World, number: &str) -> String {
    let stored = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("stored");
    let pdf = w
        .evidence
        .read(&stored.pdf_location, &stored.pdf_sha256)
        .expect("pdf reads");
    pdf_text(&pdf)
}

/// The text of a PDF, by `pdftotext` (poppler-utils), non-breaking spaces as spaces.
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, pdf).expect("pdf written");
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs (apt-get install poppler-utils)");
    String::from_utf8_lossy(&out.stdout).replace('\u{a0}', " ")
}

/// The full name the officers' register gives `login` (see [`register_officer`]).
pub fn officer_name(login: &str) -> String {
    format!("Инспектор {login}")
}

/// An account for `login` with an entry in the officers' register, unless it has one:
/// a resolution names the officer who approved its case.
pub async fn register_officer(w: &World, login: &str) {
    if w.store
        .account_by_login(login)
        .await
        .expect("account read")
        .is_some()
    {
        return;
    }
    w.store
        .create_account(&NewAccount {
            login: login.into(),
            role: Role::Supervisor,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$test".into(),
            officer: Some(OfficerIdentity {
                full_name: officer_name(login),
                badge: format!("B-{login}").to_uppercase(),
            }),
            created_by: "test".into(),
        })
        .await
        .expect("officer's account");
}

pub fn stage() -> IssuingStage {
    IssuingStage {
        worker: "issuer-1".into(),
        batch: 8,
        lease: std::time::Duration::from_secs(60),
        jurisdiction: Jurisdiction::Kg,
        issuer: "BSK".into(),
        issuer_code: 1,
        authority: "Управление патрульной милиции ГУВД г. Бишкек".into(),
        appeal_rights: "Постановление может быть обжаловано в течение 10 дней со дня вручения."
            .into(),
        verification_base_url: "https://kozomol.example.kg".into(),
        merchant: MerchantAccount::new("qr.kozomol.kg", "KOZOMOL").expect("merchant"),
        duty_officer: Officer {
            name: "Дежурный инспектор".into(),
            badge: "0001".into(),
        },
    }
}

/// Looks up the owner of every approved case through the stand-in security server
/// (which knows [`PLATE`]).
pub async fn look_up_owners(w: &World) {
    let standin = StandIn::start(StandInConfig::new(vec![client()]))
        .await
        .expect("stand-in");
    standin.set_entry(
        PLATE,
        RegistryEntry::person(PLATE, "21212198000123", "Асанов", "Бакыт", "Токтогулович"),
    );
    let mut config = RegistryConfig::new(standin.url(), client());
    config.cache_ttl_secs = 0;
    let registry = VehicleRegistry::new(config).expect("registry");
    run_lookups(&LookupStage::new("lookup-1"), w.store.as_ref(), &registry)
        .await
        .expect("lookups");
}

/// Looks up the owner of every approved case and issues their resolutions; returns
/// what became of each case.
pub async fn issue_all(w: &World) -> Vec<(CaseId, Issued)> {
    look_up_owners(w).await;
    run_issuing(&stage(), &issuer(w), w.store.as_ref())
        .await
        .expect("issuing")
}

/// The issuer the tests sign with (seed 9s).
pub fn issuer(w: &World) -> Arc<Issuer> {
    let signer = Ed25519Signer::from_seed(
        &[9; 32],
        SignerIdentity::Issuer {
            name: "KG-BSK".into(),
        },
    );
    Arc::new(Issuer {
        catalogue: Catalogue::bundled(Jurisdiction::Kg),
        calendars: Calendars::bundled(),
        signer: Arc::new(signer),
        evidence: Arc::clone(&w.evidence),
    })
}

/// A speeding case (52 km/h over) approved by `officer-7`.
pub async fn approved_speeding(w: &World) -> CaseId {
    approved(
        w,
        ViolationKind::Speeding,
        Measurement {
            speed_kmh: Some(112),
            limit_kmh: Some(60),
            red_elapsed_ms: None,
        },
        "officer-7",
    )
    .await
}

/// An issued speeding case (52 km/h over): its id and resolution number.
pub async fn issued_speeding(w: &World) -> (CaseId, String) {
    let id = approved_speeding(w).await;
    let issued = issue_all(w).await;
    match issued.iter().find(|(case, _)| *case == id) {
        Some((_, Issued::Resolution(number))) => (id, number.clone()),
        other => panic!("case {id} not issued: {other:?}"),
    }
}

/// Records the state portal's report that the resolution was delivered at `at`.
pub async fn deliver(w: &World, number: &str, at: DateTime<Utc>) {
    let recorded = w
        .store
        .record_delivery(&ProvenDelivery {
            resolution_number: number.to_owned(),
            target: DeliveryTarget::Reported {
                channel: DeliveryChannel::Portal,
                source: "egov".into(),
            },
            delivered_at: at,
            proof: serde_json::json!({ "portal": "egov", "status": "delivered" }),
            reported_by: "portal:egov".into(),
        })
        .await
        .expect("delivery recorded");
    assert!(
        matches!(recorded, DeliveryRecorded::First { .. }),
        "{recorded:?}"
    );
}

/// Pays what the fine takes today, as a provider would (its id `pay-{number}`); what
/// was paid.
pub async fn paid_in_full(w: &World, number: &str) -> kozomol_core::Money {
    paid_in_full_at(w, number, Utc::now()).await
}

/// Pays what the fine takes at `now`, as [`paid_in_full`].
pub async fn paid_in_full_at(w: &World, number: &str, now: DateTime<Utc>) -> kozomol_core::Money {
    let code = payment_code(w.store.as_ref(), number).await;
    let due = w
        .store
        .payment_quote(&code, now)
        .await
        .expect("read")
        .expect("payable")
        .outstanding;
    let posted = pay(w, number, &format!("pay-{number}"), due, now, true).await;
    assert!(matches!(posted, PaymentPosted::Applied(_)), "{posted:?}");
    due
}

/// Pays `amount` towards the fine at `now`, as a provider would (its id `id`; only
/// the amount outstanding then where `exact_only`); what the ledger answered.
pub async fn pay(
    w: &World,
    number: &str,
    id: &str,
    amount: kozomol_core::Money,
    now: DateTime<Utc>,
    exact_only: bool,
) -> PaymentPosted {
    w.store
        .post_payment(&NewPayment {
            payment_code: payment_code(w.store.as_ref(), number).await,
            channel: PaymentChannel::Api,
            source: "provider-1".into(),
            external_id: id.to_owned(),
            amount,
            paid_at: now,
            exact_only,
            intent: None,
            posted_by: "payments-api".into(),
        })
        .await
        .expect("post")
}

/// The fine's payment code.
pub async fn payment_code(store: &dyn Store, number: &str) -> String {
    store
        .resolution(number)
        .await
        .expect("read")
        .expect("issued")
        .payment_code
}

/// The case's state now.
pub async fn state(store: &dyn Store, id: CaseId) -> CaseState {
    store.case(id).await.expect("read").expect("case").state
}

/// The actions of the case's audit rows, oldest first.
pub async fn audit_actions(store: &dyn Store, id: CaseId) -> Vec<String> {
    store
        .case_audit(id)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.action)
        .collect()
}
