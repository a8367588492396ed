//! The issuing stage end to end on SQLite: an approved case with real JPEG frames, its
//! owner found through the stand-in security server, priced, numbered, rendered,
//! signed, stored once and moved to `issued`; a case the catalogue cannot price is set
//! aside for a supervisor, and so is one whose confirming officer the officers'
//! register does not name.

use std::process::Command;
use std::sync::Arc;

use chrono::{Datelike, Utc};
use kozomol_core::{
    CaseState, Jurisdiction, Measurement, ReviewDecision, ReviewTier, ViolationKind,
};
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::issuing::{run_issuing, Issued, Issuer};
use kozomol_fines::resolution::{
    verify, DetachedSignature, Ed25519Signer, SignatureAlgorithm, SignerIdentity, Verdict,
    VerifyingKeys,
};
use support::issued::{
    approved, approved_by_anyone, approved_speeding, issuer, look_up_owners, officer_name,
    pdf_text, register_officer, resolution_text, stage, world, PLATE,
};
use support::Backend;

mod support;

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
    let speeding = approved_speeding(&w).await;
    let unpriced = approved(
        &w,
        ViolationKind::Phone,
        Measurement::default(),
        "officer-7",
    )
    .await;

    look_up_owners(&w).await;

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
    let text = pdf_text(&pdf);
    for want in [
        "ПОСТАНОВЛЕНИЕ",
        PLATE,
        &number,
        "Асанов",
        "112 км/ч",
        &officer_name("officer-7"),
        "B-OFFICER-7",
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

#[tokio::test]
async fn an_officer_missing_from_the_register_sets_the_case_aside_on_sqlite() {
    an_officer_missing_from_the_register_sets_the_case_aside(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_officer_missing_from_the_register_sets_the_case_aside_on_postgres() {
    an_officer_missing_from_the_register_sets_the_case_aside(Backend::Postgres).await;
}

/// A resolution names its confirming officer by full name and badge: a case approved by
/// an account the register lacks waits for a supervisor, whose approval names him.
async fn an_officer_missing_from_the_register_sets_the_case_aside(backend: Backend) {
    let w = world(backend).await;
    let speeding = Measurement {
        speed_kmh: Some(112),
        limit_kmh: Some(60),
        red_elapsed_ms: None,
    };
    let case =
        approved_by_anyone(&w, ViolationKind::Speeding, speeding, "old-account", PLATE).await;
    look_up_owners(&w).await;
    let issuer = issuer(&w);
    let results = run_issuing(&stage(), &issuer, w.store.as_ref())
        .await
        .expect("issuing");
    assert!(
        matches!(&results[..], [(id, Issued::SetAside(reason))]
            if *id == case && reason.contains("`old-account`") && reason.contains("register")),
        "{results:?}"
    );
    let stored = w.store.case(case).await.expect("read").expect("case");
    assert_eq!(stored.state, CaseState::SupervisorReview);

    // The supervisor who approves it again is the confirming officer.
    register_officer(&w, "supervisor-2").await;
    let review = kozomol_store::NewReview {
        case_id: case,
        tier: ReviewTier::Supervisor,
        reviewer: "supervisor-2".into(),
        decision: ReviewDecision::Approve,
        reason: None,
        plate: None,
        note: None,
        from_state: CaseState::SupervisorReview,
        to_state: CaseState::Approved,
        seen_move: None,
    };
    w.store.record_review(&review).await.expect("review");
    look_up_owners(&w).await;
    let results = run_issuing(&stage(), &issuer, w.store.as_ref())
        .await
        .expect("issuing");
    let [(id, Issued::Resolution(number))] = &results[..] else {
        panic!("{results:?}")
    };
    assert_eq!(*id, case);
    let text = resolution_text(&w, number).await;
    assert!(text.contains(&officer_name("supervisor-2")), "{text}");
    assert!(text.contains("автоматическом режиме"), "{text}");
    assert!(!text.contains("old-account"), "{text}");
}

/// A case whose photo no longer reads (its bytes damaged on disk) is tried again when
/// its lease ends, and after five attempts handed to a supervisor with the reason,
/// not tried every lease for ever with no one told.
#[tokio::test]
async fn a_case_whose_photo_does_not_read_goes_to_a_supervisor_after_five_attempts() {
    let w = world(Backend::Sqlite).await;
    let case = approved_speeding(&w).await;
    look_up_owners(&w).await;
    let frame = w
        .store
        .case(case)
        .await
        .expect("read")
        .expect("case")
        .frames[0]
        .location
        .clone();
    let segment = w.db.dir.path().join("evidence").join(&frame.segment);
    let mut bytes = std::fs::read(&segment).expect("segment");
    let at = usize::try_from(frame.offset).expect("offset") + 10;
    bytes[at] ^= 0xff;
    std::fs::write(&segment, bytes).expect("damaged");

    let mut quick = stage();
    quick.lease = std::time::Duration::from_millis(100);
    let issuer = issuer(&w);
    for attempt in 1..=kozomol_fines::issuing::MAX_ISSUE_ATTEMPTS {
        let results = run_issuing(&quick, &issuer, w.store.as_ref())
            .await
            .expect("issuing");
        match &results[..] {
            [(id, Issued::Failed(_))] if *id == case && attempt < 5 => {}
            [(id, Issued::SetAside(reason))] if *id == case && attempt == 5 => {
                assert!(
                    reason.starts_with("not issued after 5 attempts"),
                    "{reason}"
                );
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert_eq!(
        w.store.case(case).await.expect("read").expect("case").state,
        CaseState::SupervisorReview
    );
}

/// A resolution the store refuses to record (here a trigger; in life a constraint or a
/// store that stays away) leaves its PDF in an evidence segment, where no row names
/// it: it is queued for overwriting at once, and the case is issued again later.
#[tokio::test]
async fn the_pdf_of_a_resolution_the_store_refuses_is_queued_for_overwriting() {
    let w = world(Backend::Sqlite).await;
    let case = approved_speeding(&w).await;
    look_up_owners(&w).await;
    let raw = sqlx::SqlitePool::connect(&w.db.url).await.expect("connect");
    sqlx::raw_sql(
        "CREATE TRIGGER refuse_resolutions BEFORE INSERT ON resolutions \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&raw)
    .await
    .expect("trigger");

    let results = run_issuing(&stage(), &issuer(&w), w.store.as_ref())
        .await
        .expect("issuing");
    assert!(
        matches!(&results[..], [(id, Issued::Failed(_))] if *id == case),
        "{results:?}"
    );
    let queued = w.store.erasures_due(10).await.expect("erasures");
    assert_eq!(queued.len(), 1, "{queued:?}");
    let pdf = w
        .evidence
        .read(&queued[0].location, &queued[0].sha256)
        .expect("the queued bytes are there");
    assert!(pdf.starts_with(b"%PDF"), "the resolution's PDF is queued");
}

/// A document that can never render (here an owner's address too long for the page)
/// goes to a supervisor with the reason; it was retried on every lease, unseen.
#[tokio::test]
async fn a_resolution_that_never_renders_is_set_aside() {
    let w = world(Backend::Sqlite).await;
    let case = approved_speeding(&w).await;
    let claimed = w
        .store
        .claim_stage(
            CaseState::Approved,
            "lookup-t",
            8,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("claim");
    assert_eq!(claimed, vec![case]);
    let lookup = kozomol_store::OwnerLookupRecord {
        case_id: case,
        outcome: kozomol_core::OwnerOutcome::Found,
        owner: Some(kozomol_core::OwnerOfRecord {
            kind: kozomol_core::OwnerKind::Person,
            id: "21212198000123".into(),
            name: "Асанов Бакыт".into(),
            address: Some("улица Длинная, дом 1, ".repeat(400)),
        }),
        vehicle: serde_json::json!({"make": "Toyota"}),
        registry_owner: serde_json::Value::Null,
        reason: None,
        exchange_id: None,
        looked_up_at: Utc::now(),
    };
    w.store
        .record_owner_lookup("lookup-t", &lookup)
        .await
        .expect("lookup");
    let results = run_issuing(&stage(), &issuer(&w), w.store.as_ref())
        .await
        .expect("issuing");
    assert!(
        matches!(&results[..], [(id, Issued::SetAside(reason))]
            if *id == case && reason.contains("does not render")),
        "{results:?}"
    );
    let stored = w.store.case(case).await.expect("read").expect("case");
    assert_eq!(stored.state, CaseState::SupervisorReview);
}

/// A case that waited past its jurisdiction's limitation period (here two months, as
/// КоАП РК art. 62 sets; the case was captured on 2026-03-10) is no one's fine: it is
/// closed unfined (`rejected`) with the day the period ended, not handed to a
/// supervisor whose approval would only bring it back. Within the period it is issued.
#[tokio::test]
async fn a_case_past_the_limitation_period_is_closed_unfined() {
    let w = world(Backend::Sqlite).await;
    let case = approved_speeding(&w).await;
    look_up_owners(&w).await;
    let bundled =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogue/kg.toml"))
            .expect("the Kyrgyz catalogue");
    let with_limitation = |months: u32| {
        let text = bundled.replacen(
            "lapse_months = 12\n",
            &format!("lapse_months = 12\nlimitation_months = {months}\n"),
            1,
        );
        assert_ne!(text, bundled, "the procedure takes the period");
        let base = issuer(&w);
        Arc::new(Issuer {
            catalogue: Catalogue::parse("kg.toml", &text).expect("catalogue"),
            calendars: Calendars::bundled(),
            signer: Arc::clone(&base.signer),
            evidence: Arc::clone(&base.evidence),
        })
    };
    let months_since = {
        let today = Jurisdiction::Kg.local_date(Utc::now());
        let captured = chrono::NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
        u32::try_from((today.year() - captured.year()) * 12).expect("months") + today.month()
            - captured.month()
    };

    let results = run_issuing(&stage(), &with_limitation(2), w.store.as_ref())
        .await
        .expect("issuing");
    assert!(
        matches!(&results[..], [(id, Issued::TimeBarred(reason))]
            if *id == case && reason.contains("limitation period ended on 2026-05-10")),
        "{results:?}"
    );
    assert_eq!(
        w.store.case(case).await.expect("read").expect("case").state,
        CaseState::Rejected
    );

    let again = approved_speeding(&w).await;
    look_up_owners(&w).await;
    let results = run_issuing(
        &stage(),
        &with_limitation(months_since + 2),
        w.store.as_ref(),
    )
    .await
    .expect("issuing");
    assert!(
        matches!(&results[..], [(id, Issued::Resolution(_))] if *id == again),
        "{results:?}"
    );
}
