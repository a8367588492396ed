//! The console and the portal in a real browser: headless Chromium (Debian's) driven
//! by npm's playwright-core through `tests/browser/flows.cjs`, against a server seeded
//! with cases to review and fines to find, pay and appeal. `scripts/test.sh` installs
//! both (`ensure_browser` in scripts/lib.sh); screenshots of every page are saved in
//! `target/browser-screenshots/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kozomol_core::{CaseState, PlateRead};
use kozomol_ingest::IngestMetrics;
use kozomol_server::api::{router, AppState};
use kozomol_server::auth::create_demo_accounts;
use kozomol_server::settings::PaymentProvider;
use kozomol_store::{EvidenceStore, RecognitionDecision, RecognitionOutcome, Store};
use kozomol_testkit::fines::{issued_fines, noise_jpeg, received_cases};
use serde_json::json;

const PROVIDER_SECRET: &str = "browser-test-bank-secret-0001";

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, or \
             `source scripts/lib.sh && ensure_browser` first"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_review_and_citizens_find_pay_and_appeal_in_the_browser() {
    let chromium = required_env("KOZOMOL_CHROMIUM");
    let playwright = required_env("KOZOMOL_PLAYWRIGHT");

    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> =
        kozomol_store::connect(&format!("sqlite://{}", dir.path().join("k.db").display()))
            .await
            .expect("store");
    let evidence =
        Arc::new(EvidenceStore::open(&dir.path().join("evidence"), "browser").expect("evidence"));

    // Two fines issued to their owners (plates 01KG000ABC and 01KG001ABC).
    let (first, codes) = issued_fines(store.as_ref(), &evidence, 2)
        .await
        .expect("fines");
    let fine = store
        .resolution_of_case(first)
        .await
        .expect("read")
        .expect("first fine");
    let second = kozomol_core::CaseId(first.0 + 1);
    let appealed = store
        .resolution_of_case(second)
        .await
        .expect("read")
        .expect("second fine");
    let due = store
        .payment_quote(&codes[0], chrono::Utc::now())
        .await
        .expect("quote")
        .expect("payable");

    // Two cases the machine read but could not decide alone.
    let review_cases = received_cases(
        store.as_ref(),
        &evidence,
        2,
        &noise_jpeg(640, 360, 11),
        &noise_jpeg(160, 40, 12),
    )
    .await
    .expect("cases");
    let jobs = store
        .claim_recognition("browser", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    for job in jobs {
        let read = PlateRead {
            text: "01KG555XYZ".to_owned(),
            confidence_milli: 950,
            country: Some("KG".to_owned()),
        };
        store
            .complete_recognition(
                "browser",
                &RecognitionOutcome {
                    case_id: job.case_id,
                    decision: RecognitionDecision::NeedsReview,
                    plate: Some(read.clone()),
                    char_confidences_milli: vec![],
                    candidates: vec![read],
                    plate_box: None,
                    crop: None,
                    model: "test".to_owned(),
                    agreement: None,
                },
            )
            .await
            .expect("recognised");
    }
    let creds = create_demo_accounts(store.as_ref(), dir.path())
        .await
        .expect("accounts");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut state = AppState::new(
        store.clone(),
        evidence.clone(),
        Arc::new(IngestMetrics::default()),
        base.clone(),
        Arc::new(SigningKey::from_bytes(&[7; 32])),
    );
    state.payment_providers = Arc::new(vec![PaymentProvider {
        id: "bank".to_owned(),
        secrets: vec![PROVIDER_SECRET.to_owned()],
    }]);
    state.merchant = Some(Arc::new(
        kozomol_payments::MerchantAccount::new("kozomol.bishkek.fines", "GUVD Bishkek")
            .expect("merchant"),
    ));
    state.ready.store(true, Ordering::Release);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let screenshots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    std::fs::create_dir_all(&screenshots).expect("screenshot folder");
    let world = json!({
        "reviewer": creds.reviewer,
        "supervisor": creds.supervisor,
        "review_cases": review_cases.iter().map(|c| c.0).collect::<Vec<_>>(),
        "corrected_plate": "01KG556XYZ",
        "plate": "01 KG 000 ABC",
        "certificate": "kg01 000000",
        "number": fine.number,
        "payment_code": codes[0],
        "due_minor": due.outstanding.minor,
        "provider": "bank",
        "provider_secret": PROVIDER_SECRET,
        "appeal_number": appealed.number,
        "appeal_case": second.0,
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/flows.cjs");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .env("BASE_URL", &base)
            .env("WORLD", world.to_string())
            .env("SCREENSHOTS", &screenshots)
            .env("KOZOMOL_CHROMIUM", chromium)
            .env("KOZOMOL_PLAYWRIGHT", playwright)
            .output()
    })
    .await
    .expect("join")
    .expect("node runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the browser flows failed:\n{log}");
    println!("{log}");

    // What the browser did is what the store holds.
    let corrected = store
        .case(review_cases[0])
        .await
        .expect("read")
        .expect("case");
    assert_eq!(corrected.state, CaseState::Approved);
    assert_eq!(
        store.decided_plate(review_cases[0]).await.expect("plate"),
        Some("01KG556XYZ".to_owned())
    );
    let approved = store
        .case(review_cases[1])
        .await
        .expect("read")
        .expect("case");
    assert_eq!(approved.state, CaseState::Approved);
    let paid = store.case(first).await.expect("read").expect("case");
    assert!(
        matches!(paid.state, CaseState::Paid | CaseState::PaidDiscounted),
        "{:?}",
        paid.state
    );
    let annulled = store.case(second).await.expect("read").expect("case");
    assert_eq!(annulled.state, CaseState::Annulled);
}
