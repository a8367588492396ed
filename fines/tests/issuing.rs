//! The issuing stage end to end on SQLite: an approved case with real JPEG frames, its
//! owner found through the stand-in security server, priced, numbered, rendered,
//! signed, stored once and moved to `issued`; a case the catalogue cannot price is set
//! aside for a supervisor.

use std::process::Command;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, ClockSource, EventId, FrameRef, FrameRole,
    Jurisdiction, Measurement, MeasuringDevice, ReviewDecision, ReviewTier, Site, ViolationEvent,
    ViolationKind,
};
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::issuing::{run_issuing, Issued, Issuer, IssuingStage};
use kozomol_fines::lookup::{run_lookups, LookupStage};
use kozomol_fines::resolution::{
    verify, DetachedSignature, Ed25519Signer, Officer, SignatureAlgorithm, SignerIdentity, Verdict,
    VerifyingKeys,
};
use kozomol_payments::MerchantAccount;
use kozomol_store::{CaseWrite, EvidenceStore, NewCase, NewFrame, NewReview, ReviewWrite, Store};
use kozomol_tunduk::standin::{RegistryEntry, StandIn, StandInConfig};
use kozomol_tunduk::{RegistryConfig, VehicleRegistry, XRoadClient};
use sha2::{Digest, Sha256};
use support::{Backend, Db};

mod support;

const PLATE: &str = "01KG123ABC";

fn client() -> XRoadClient {
    XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("client id")
}

fn jpeg(seed: u8, w: u32, h: u32) -> Vec<u8> {
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

fn site() -> Site {
    Site {
        id: "site-chuy-manas".into(),
        lat_e6: 42_876_000,
        lon_e6: 74_604_000,
        address: "проспект Чуй / проспект Манаса, Бишкек".into(),
        direction: "eastbound".into(),
        lane: 2,
    }
}

fn certificate() -> CalibrationCertificate {
    CalibrationCertificate {
        number: "KG-CSM-2026-0042".into(),
        valid_from: "2026-01-15".parse().expect("date"),
        valid_until: "2027-01-14".parse().expect("date"),
    }
}

struct World {
    _db: Db,
    store: Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
}

async fn world(backend: Backend) -> World {
    // The document names the device and site from the signed event, not the register.
    let db = Db::with_camera(backend).await;
    let store = Arc::clone(&db.store);
    let evidence =
        Arc::new(EvidenceStore::open(&db.dir.path().join("evidence"), "t").expect("evidence"));
    World {
        _db: db,
        store,
        evidence,
    }
}

/// An approved case with real frames, approved by `reviewer`.
async fn approved(
    w: &World,
    kind: ViolationKind,
    measurement: Measurement,
    reviewer: &str,
) -> CaseId {
    let frames = [
        (FrameRole::Overview, jpeg(1, 640, 360)),
        (FrameRole::Plate, jpeg(2, 160, 48)),
    ];
    let bytes: Vec<&[u8]> = frames.iter().map(|(_, b)| b.as_slice()).collect();
    let locations = w.evidence.append_batch(&bytes).expect("frames stored");
    let captured_at = Utc
        .with_ymd_and_hms(2026, 3, 10, 8, 30, 0)
        .single()
        .expect("instant");
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
        plate: Some(PLATE.into()),
        note: None,
        from_state: CaseState::Received,
        to_state: CaseState::Approved,
    };
    assert_eq!(
        w.store.record_review(&review).await.expect("review"),
        ReviewWrite::Recorded
    );
    id
}

fn stage() -> IssuingStage {
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

#[tokio::test]
async fn an_approved_case_becomes_a_signed_resolution_on_sqlite() {
    an_approved_case_becomes_a_signed_resolution(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_approved_case_becomes_a_signed_resolution_on_postgres() {
    an_approved_case_becomes_a_signed_resolution(Backend::Postgres).await;
}

async fn an_approved_case_becomes_a_signed_resolution(backend: Backend) {
    let w = world(backend).await;
    let speeding = approved(
        &w,
        ViolationKind::Speeding,
        Measurement {
            speed_kmh: Some(112),
            limit_kmh: Some(60),
            red_elapsed_ms: None,
        },
        "officer-7",
    )
    .await;
    let unpriced = approved(
        &w,
        ViolationKind::Phone,
        Measurement::default(),
        "officer-7",
    )
    .await;

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

    let signer = Ed25519Signer::from_seed(
        &[9; 32],
        SignerIdentity::Issuer {
            name: "KG-BSK".into(),
        },
    );
    let keys: VerifyingKeys = [signer.verifying_key()].into_iter().collect();
    let issuer = Arc::new(Issuer {
        catalogue: Catalogue::bundled(Jurisdiction::Kg),
        calendars: Calendars::bundled(),
        signer: Arc::new(signer),
        evidence: Arc::clone(&w.evidence),
    });
    let results = run_issuing(&stage(), &issuer, w.store.as_ref())
        .await
        .expect("issuing");
    assert_eq!(results.len(), 2);
    let year = Utc::now().format("%Y").to_string();
    let number = format!("KG-BSK-{year}-0000001");
    assert_eq!(results[0], (speeding, Issued::Resolution(number.clone())));
    assert!(
        matches!(&results[1], (id, Issued::SetAside(reason)) if *id == unpriced && reason.contains("no amount")),
        "{results:?}"
    );

    assert_eq!(
        w.store
            .case(speeding)
            .await
            .expect("read")
            .expect("case")
            .state,
        CaseState::Issued
    );
    assert_eq!(
        w.store
            .case(unpriced)
            .await
            .expect("read")
            .expect("case")
            .state,
        CaseState::SupervisorReview
    );
    let stored = w
        .store
        .resolution(&number)
        .await
        .expect("read")
        .expect("stored");
    // KG: speeding by 52 km/h is 75 РП, 7,500 som; half within the discount window.
    assert_eq!(
        (
            stored.units,
            stored.amount.minor,
            stored.discounted.map(|d| d.minor)
        ),
        (75, 750_000, Some(375_000))
    );
    assert_eq!(stored.payment_code.len(), 18);
    assert_eq!(stored.signer, "issuer:KG-BSK");

    // The PDF is kept once in the evidence store, and it is what was signed.
    let pdf = w
        .evidence
        .read(&stored.pdf_location, &stored.pdf_sha256)
        .expect("pdf reads");
    let signature = DetachedSignature {
        algorithm: SignatureAlgorithm::Ed25519,
        key_id: stored.signature_key_id.clone(),
        signer: SignerIdentity::Issuer {
            name: "KG-BSK".into(),
        },
        signature: stored.signature.clone(),
        document_sha256: stored.pdf_sha256,
    };
    assert_eq!(verify(&pdf, &signature, &keys), Verdict::Valid);
    let mut tampered = pdf.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    assert_eq!(verify(&tampered, &signature, &keys), Verdict::HashMismatch);

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, &pdf).expect("pdf written");
    let qpdf = Command::new("qpdf")
        .arg("--check")
        .arg(&path)
        .output()
        .expect("qpdf runs (apt-get install qpdf)");
    assert!(
        qpdf.status.success(),
        "{}",
        String::from_utf8_lossy(&qpdf.stdout)
    );
    let text = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    let text = String::from_utf8_lossy(&text.stdout).replace('\u{a0}', " ");
    for want in [
        "ПОСТАНОВЛЕНИЕ",
        PLATE,
        &number,
        "Асанов",
        "112 км/ч",
        "officer-7",
        &stored.payment_code,
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }

    // Nothing is left to issue, and the case is issued once.
    assert!(run_issuing(&stage(), &issuer, w.store.as_ref())
        .await
        .expect("issuing")
        .is_empty());
}
