//! The REST payment API of payment providers over a real HTTP server: callbacks sent
//! ten times at once applied once (on PostgreSQL), refused callbacks answered and
//! recorded, intents paid in part and over, cancelled and reversed, and idempotency
//! keys replaying their first answer.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use kozomol_core::Role;
use kozomol_core::{CaseId, CaseState, Jurisdiction};
use kozomol_ingest::IngestMetrics;
use kozomol_payments::{signature_header, CodeKind, PaymentCode};
use kozomol_server::api::{
    request_signing_payload, router, AppState, IDEMPOTENCY_HEADER, REPLAYED_HEADER,
    SIGNATURE_HEADER,
};
use kozomol_server::auth::create_demo_accounts;
use kozomol_server::settings::PaymentProvider;
use kozomol_store::{CallbackOutcome, EvidenceStore, Store};
use kozomol_testkit::fines::issued_fines;
use kozomol_testkit::postgres::{server_url, ScratchPostgres};
use serde_json::{json, Value};

const BANK: &str = "bank";
/// The bank's secrets during a rotation: kozomol holds both.
const OLD_SECRET: &str = "whsec_bank_2025_old_0001";
const NEW_SECRET: &str = "whsec_bank_2026_new_0002";

struct Api {
    dir: tempfile::TempDir,
    /// `http://host:port`.
    root: String,
    scratch: Option<ScratchPostgres>,
    store: Arc<dyn Store>,
    base: String,
    http: reqwest::Client,
    codes: Vec<String>,
    first_case: CaseId,
}

/// What an answer said.
struct Answer {
    status: u16,
    replayed: bool,
    body: Value,
}

impl Api {
    async fn start(postgres: bool, fines: usize) -> Api {
        let dir = tempfile::tempdir().expect("temp dir");
        let (scratch, url) = if postgres {
            let scratch = ScratchPostgres::create(&server_url(), "kozomol_payapi")
                .await
                .expect("a scratch database (set KOZOMOL_TEST_POSTGRES_URL)");
            let url = scratch.url.clone();
            (Some(scratch), url)
        } else {
            (
                None,
                format!("sqlite://{}", dir.path().join("kozomol.db").display()),
            )
        };
        let store = kozomol_store::connect(&url).await.expect("store opens");
        let evidence = Arc::new(
            EvidenceStore::open(&dir.path().join("evidence"), "payment-api-test")
                .expect("evidence"),
        );
        let (first_case, codes) = issued_fines(store.as_ref(), &evidence, fines)
            .await
            .expect("fines issued");
        let mut state = AppState::new(
            store.clone(),
            evidence,
            Arc::new(IngestMetrics::default()),
            "http://kozomol.test",
            Arc::new(SigningKey::from_bytes(&[7; 32])),
        );
        state.payment_providers = Arc::new(vec![PaymentProvider {
            id: BANK.into(),
            secrets: vec![OLD_SECRET.into(), NEW_SECRET.into()],
        }]);
        state.ready.store(true, Ordering::Release);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Api {
            dir,
            root: format!("http://{addr}"),
            scratch,
            store,
            base: format!("http://{addr}/api/v1/providers/{BANK}"),
            http: reqwest::Client::new(),
            codes,
            first_case,
        }
    }

    async fn finish(self) {
        if let Some(scratch) = self.scratch {
            scratch.drop_now().await.expect("scratch database dropped");
        }
    }

    /// Sends `body` to `path` signed with `secret` at `t`.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &str,
        signature: Option<String>,
        key: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key(REPLAYED_HEADER);
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"))
        };
        Answer {
            status,
            replayed,
            body,
        }
    }

    /// A POST signed as the provider signs: a callback its body, a request its
    /// method, path, key and body.
    async fn signed(&self, path: &str, body: &Value, key: Option<&str>) -> Answer {
        let body = body.to_string();
        let signature = if path == "/callbacks" {
            signature_header(
                NEW_SECRET.as_bytes(),
                Utc::now().timestamp(),
                body.as_bytes(),
            )
        } else {
            request_signature(NEW_SECRET, "POST", path, key, body.as_bytes())
        };
        self.send(reqwest::Method::POST, path, &body, Some(signature), key)
            .await
    }

    async fn intent(&self, key: &str, request: Value) -> Answer {
        self.signed("/payment-intents", &request, Some(key)).await
    }

    async fn callback(&self, event: &Value) -> Answer {
        self.signed("/callbacks", event, None).await
    }

    async fn state(&self, i: usize) -> CaseState {
        self.store
            .case(CaseId(self.first_case.0 + i as i64))
            .await
            .expect("read")
            .expect("case")
            .state
    }

    async fn payments(&self, i: usize) -> Vec<kozomol_store::PaymentRecord> {
        let number = self
            .store
            .resolution_of_case(CaseId(self.first_case.0 + i as i64))
            .await
            .expect("read")
            .expect("issued")
            .number;
        self.store.payments(&number).await.expect("payments")
    }
}

fn paid(
    event: &str,
    kind: &str,
    payment_id: &str,
    code: &str,
    minor: i64,
    intent: Option<&str>,
) -> Value {
    let mut data = json!({
        "payment_id": payment_id,
        "payment_code": code,
        "amount_minor": minor,
        "currency": "KGS",
        "paid_at": (Utc::now() - Duration::minutes(1)).to_rfc3339(),
    });
    if let Some(intent) = intent {
        data["intent"] = json!(intent);
    }
    json!({ "id": event, "type": kind, "data": data })
}

/// The signature of a request to the provider route `path` (below the provider's base).
fn request_signature(
    secret: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> String {
    let payload = request_signing_payload(
        method,
        &format!("/api/v1/providers/{BANK}{path}"),
        key,
        body,
    );
    signature_header(secret.as_bytes(), Utc::now().timestamp(), &payload)
}

fn problem_code(answer: &Answer) -> &str {
    answer.body["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_same_callback_sent_ten_times_at_once_is_applied_once_on_postgres() {
    let api = Arc::new(Api::start(true, 2).await);
    let made = api
        .intent("k-1", json!({ "payment_code": api.codes[0] }))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    // Within the discount's window the intent asks for the discounted amount.
    assert_eq!(made.body["amount_minor"], 250_000);
    let intent = made.body["id"].as_str().expect("an id").to_owned();
    let event = paid(
        "evt-1",
        "payment.succeeded",
        "pay-1",
        &api.codes[0],
        250_000,
        Some(&intent),
    );

    // Ten times at once with an intent, and ten times at once without one for the other
    // fine: each payment applied once.
    let plain = paid(
        "evt-2",
        "payment.succeeded",
        "pay-2",
        &api.codes[1],
        500_000,
        None,
    );
    let mut sent = Vec::new();
    for _ in 0..10 {
        for event in [event.clone(), plain.clone()] {
            let api = Arc::clone(&api);
            sent.push(tokio::spawn(async move { api.callback(&event).await }));
        }
    }
    let mut outcomes = std::collections::BTreeMap::<(String, String), usize>::new();
    for answer in sent {
        let answer = answer.await.expect("a task");
        assert_eq!(answer.status, 200, "{}", answer.body);
        let payment = answer.body["payment"]["external_id"]
            .as_str()
            .expect("id")
            .to_owned();
        let outcome = answer.body["outcome"].as_str().expect("outcome").to_owned();
        *outcomes.entry((payment, outcome)).or_default() += 1;
    }
    let want: std::collections::BTreeMap<(String, String), usize> = [
        (("pay-1".to_owned(), "applied".to_owned()), 1),
        (("pay-1".to_owned(), "repeat".to_owned()), 9),
        (("pay-2".to_owned(), "applied".to_owned()), 1),
        (("pay-2".to_owned(), "repeat".to_owned()), 9),
    ]
    .into();
    assert_eq!(outcomes, want);
    assert_eq!(api.payments(0).await.len(), 1);
    assert_eq!(api.payments(1).await.len(), 1);
    assert_eq!(api.state(0).await, CaseState::PaidDiscounted);
    // 5,000 som within the window: the discounted 2,500 settle it, 2,500 to refund.
    assert_eq!(api.payments(1).await[0].excess_minor, 250_000);
    assert_eq!(api.state(1).await, CaseState::PaidDiscounted);

    let shown = api
        .send(
            reqwest::Method::GET,
            &format!("/payment-intents/{intent}"),
            "",
            Some(request_signature(
                NEW_SECRET,
                "GET",
                &format!("/payment-intents/{intent}"),
                None,
                b"",
            )),
            None,
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["status"], "succeeded");
    assert_eq!(shown.body["outstanding_minor"], 0);

    let log = api.store.callbacks(false, 0, 100).await.expect("callbacks");
    assert_eq!(log.len(), 20);
    assert_eq!(
        log.iter()
            .filter(|c| c.outcome == CallbackOutcome::Applied)
            .count(),
        2
    );
    assert!(log
        .iter()
        .all(|c| c.status == 200 && c.outcome != CallbackOutcome::Refused));
    match Arc::try_unwrap(api) {
        Ok(api) => api.finish().await,
        Err(_) => panic!("the tasks are done"),
    }
}

#[tokio::test]
async fn refused_callbacks_are_answered_and_recorded_on_postgres() {
    let api = Api::start(true, 1).await;
    let code = api.codes[0].clone();
    let event = paid("evt-1", "payment.succeeded", "pay-1", &code, 250_000, None).to_string();
    let now = Utc::now().timestamp();
    let forged = signature_header(b"whsec_someone_else_entirely", now, event.as_bytes());
    // Well beyond the 300 s tolerance either way: a loaded machine may take a minute to
    // send the requests, which must not carry an early signature inside it.
    let stale = signature_header(NEW_SECRET.as_bytes(), now - 900, event.as_bytes());
    let early = signature_header(NEW_SECRET.as_bytes(), now + 900, event.as_bytes());
    // The body changed after signing: the amount raised.
    let tampered = signature_header(NEW_SECRET.as_bytes(), now, event.as_bytes());
    let raised = event.replace("250000", "250001");
    let post = reqwest::Method::POST;
    for (body, signature, status, want) in [
        (event.clone(), Some(forged), 401, "signature_invalid"),
        (event.clone(), None, 401, "signature_invalid"),
        (event.clone(), Some(stale), 401, "signature_stale"),
        (event.clone(), Some(early), 401, "signature_stale"),
        (raised, Some(tampered), 401, "signature_invalid"),
    ] {
        let answer = api
            .send(post.clone(), "/callbacks", &body, signature, None)
            .await;
        assert_eq!(
            (answer.status, problem_code(&answer)),
            (status, want),
            "{}",
            answer.body
        );
    }
    // An old secret still in force during the rotation is taken.
    let by_old = api
        .send(
            post.clone(),
            "/payment-intents",
            &json!({ "payment_code": code, "amount_minor": 100_000 }).to_string(),
            Some(request_signature(
                OLD_SECRET,
                "POST",
                "/payment-intents",
                Some("k-old"),
                json!({ "payment_code": code, "amount_minor": 100_000 })
                    .to_string()
                    .as_bytes(),
            )),
            Some("k-old"),
        )
        .await;
    assert_eq!(by_old.status, 201, "{}", by_old.body);
    let intent = by_old.body["id"].as_str().expect("an id").to_owned();

    // A request's signature is good for its route, key and body only: not to cancel,
    // not under another key, not for another provider.
    let shown = request_signature(
        NEW_SECRET,
        "GET",
        &format!("/payment-intents/{intent}"),
        None,
        b"",
    );
    let cancel = api
        .send(
            post.clone(),
            &format!("/payment-intents/{intent}/cancel"),
            "",
            Some(shown),
            None,
        )
        .await;
    assert_eq!(
        (cancel.status, problem_code(&cancel)),
        (401, "signature_invalid")
    );
    let made = json!({ "payment_code": code }).to_string();
    let for_k1 = request_signature(
        NEW_SECRET,
        "POST",
        "/payment-intents",
        Some("k-1"),
        made.as_bytes(),
    );
    let other_key = api
        .send(
            post.clone(),
            "/payment-intents",
            &made,
            Some(for_k1.clone()),
            Some("k-2"),
        )
        .await;
    assert_eq!(
        (other_key.status, problem_code(&other_key)),
        (401, "signature_invalid")
    );
    let elsewhere = api
        .http
        .post(format!(
            "{}/api/v1/providers/nobody/payment-intents",
            api.root
        ))
        .header(SIGNATURE_HEADER, for_k1)
        .header(IDEMPOTENCY_HEADER, "k-1")
        .body(made)
        .send()
        .await
        .expect("an answer");
    assert_eq!(elsewhere.status().as_u16(), 401);
    assert_eq!(
        api.store
            .payment_intent(BANK, &intent)
            .await
            .expect("read")
            .map(|i| i.status),
        Some(kozomol_store::IntentStatus::RequiresPayment)
    );

    let unknown = PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2026, 1, 9_999_999)
        .expect("a code")
        .to_string();
    let checked_wrong = {
        let mut c: Vec<u8> = code.clone().into_bytes();
        let last = c.len() - 1;
        c[last] = if c[last] == b'9' { b'0' } else { c[last] + 1 };
        String::from_utf8(c).expect("digits")
    };
    for (event, status, want) in [
        // The intent is for 1,000 som.
        (
            paid(
                "e2",
                "payment.succeeded",
                "pay-2",
                &code,
                250_000,
                Some(&intent),
            ),
            422,
            "amount_mismatch",
        ),
        (
            paid("e3", "payment.succeeded", "pay-3", &unknown, 250_000, None),
            404,
            "unknown_payment_code",
        ),
        (
            paid(
                "e4",
                "payment.succeeded",
                "pay-4",
                &checked_wrong,
                250_000,
                None,
            ),
            422,
            "validation_failed",
        ),
        (
            paid(
                "e5",
                "payment.succeeded",
                "pay-5",
                &code,
                250_000,
                Some("pi_nobody"),
            ),
            404,
            "unknown_intent",
        ),
        (
            paid("e6", "payment.succeeded", "pay-6", &code, 0, None),
            422,
            "validation_failed",
        ),
        (
            paid("e7", "payment.refunded", "pay-7", &code, 250_000, None),
            422,
            "unknown_event_type",
        ),
        (
            paid("e8", "payment.reversed", "pay-8", &code, 250_000, None),
            404,
            "unknown_payment",
        ),
        (
            json!({ "id": "e9", "type": "payment.succeeded" }),
            422,
            "validation_failed",
        ),
    ] {
        let answer = api.callback(&event).await;
        assert_eq!(
            (answer.status, problem_code(&answer)),
            (status, want),
            "{event}: {}",
            answer.body
        );
    }
    let not_json = api.signed_raw("/callbacks", "{not json").await;
    assert_eq!(
        (not_json.status, problem_code(&not_json)),
        (400, "bad_request")
    );
    // A payment in the future is refused.
    let mut future = paid("e10", "payment.succeeded", "pay-10", &code, 250_000, None);
    future["data"]["paid_at"] = json!((Utc::now() + Duration::hours(1)).to_rfc3339());
    let answer = api.callback(&future).await;
    assert_eq!(
        (answer.status, problem_code(&answer)),
        (422, "validation_failed")
    );

    // Nothing was paid; every refusal is on record with its answer and what was sent.
    assert!(api.payments(0).await.is_empty());
    assert_eq!(api.state(0).await, CaseState::Issued);
    let refused = api.store.callbacks(true, 0, 100).await.expect("callbacks");
    let statuses: Vec<(u16, Option<String>)> = refused
        .iter()
        .map(|c| (c.status, c.event_id.clone()))
        .collect();
    assert_eq!(refused.len(), 15, "{statuses:?}");
    assert!(refused
        .iter()
        .all(|c| c.outcome == CallbackOutcome::Refused && !c.detail.is_empty()));
    assert_eq!(refused[0].body, event);
    assert_eq!(refused[0].event_id, None, "a forged body is not read");
    assert!(
        refused[2].detail.contains("more than 300 s"),
        "{}",
        refused[2].detail
    );
    assert_eq!(refused[5].event_id.as_deref(), Some("e2"));
    assert_eq!(refused[5].status, 422);
    assert!(
        refused[5].detail.contains("100000"),
        "{}",
        refused[5].detail
    );
    api.finish().await;
}

impl Api {
    async fn signed_raw(&self, path: &str, body: &str) -> Answer {
        let signature = signature_header(
            NEW_SECRET.as_bytes(),
            Utc::now().timestamp(),
            body.as_bytes(),
        );
        self.send(reqwest::Method::POST, path, body, Some(signature), None)
            .await
    }
}

#[tokio::test]
async fn intents_take_part_and_over_payments_are_cancelled_and_reversed() {
    let api = Api::start(false, 3).await;
    let (a, b, c) = (
        api.codes[0].clone(),
        api.codes[1].clone(),
        api.codes[2].clone(),
    );

    // A part payment: 1,000 of the 2,500 due within the window.
    let part = api
        .intent(
            "k-a1",
            json!({ "payment_code": a, "amount_minor": 100_000 }),
        )
        .await;
    assert_eq!(part.status, 201, "{}", part.body);
    assert_eq!(part.body["outstanding_minor"], 250_000);
    let part_id = part.body["id"].as_str().expect("id").to_owned();
    let answer = api
        .callback(&paid(
            "e1",
            "payment.succeeded",
            "p-a1",
            &a,
            100_000,
            Some(&part_id),
        ))
        .await;
    assert_eq!(
        (answer.status, answer.body["outcome"].clone()),
        (200, json!("applied"))
    );
    // Issued, not yet delivered: a part payment moves nothing.
    assert_eq!(api.state(0).await, CaseState::Issued);
    // The rest, by default what is still due.
    let rest = api.intent("k-a2", json!({ "payment_code": a })).await;
    assert_eq!(rest.body["amount_minor"], 150_000, "{}", rest.body);
    let rest_id = rest.body["id"].as_str().expect("id").to_owned();
    let answer = api
        .callback(&paid(
            "e2",
            "payment.succeeded",
            "p-a2",
            &a,
            150_000,
            Some(&rest_id),
        ))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(api.state(0).await, CaseState::PaidDiscounted);
    // The same payment reported again under another intent is not that payment.
    let other_intent = api
        .callback(&paid(
            "e2b",
            "payment.succeeded",
            "p-a2",
            &a,
            150_000,
            Some(&part_id),
        ))
        .await;
    assert_eq!(
        (other_intent.status, problem_code(&other_intent)),
        (409, "payment_id_reused"),
        "{}",
        other_intent.body
    );
    // Paid: no intent is made for it any more, and another payment is refused.
    let more = api.intent("k-a3", json!({ "payment_code": a })).await;
    assert_eq!((more.status, problem_code(&more)), (409, "already_paid"));
    let more = api
        .callback(&paid("e3", "payment.succeeded", "p-a3", &a, 10_000, None))
        .await;
    assert_eq!((more.status, problem_code(&more)), (409, "already_paid"));
    // An intent paid cannot be paid by another payment, nor cancelled.
    let again = api
        .callback(&paid(
            "e4",
            "payment.succeeded",
            "p-a4",
            &a,
            150_000,
            Some(&rest_id),
        ))
        .await;
    assert_eq!(
        (again.status, problem_code(&again)),
        (409, "intent_paid"),
        "{}",
        again.body
    );
    let cancel = api
        .signed(
            &format!("/payment-intents/{rest_id}/cancel"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!((cancel.status, problem_code(&cancel)), (409, "intent_paid"));

    // An overpayment: the full 5,000 within the window, 2,500 to refund.
    let over = api
        .callback(&paid("e5", "payment.succeeded", "p-b1", &b, 500_000, None))
        .await;
    assert_eq!(over.status, 200, "{}", over.body);
    assert_eq!(over.body["payment"]["excess_minor"], 250_000);
    assert_eq!(api.state(1).await, CaseState::PaidDiscounted);
    // A reversal of part of it names no payment: 1.00 taken back never takes the whole.
    let part = api
        .callback(&paid("e6a", "payment.reversed", "p-b1", &b, 100, None))
        .await;
    assert_eq!(
        (part.status, part.body["code"].clone()),
        (404, json!("unknown_payment")),
        "{}",
        part.body
    );
    assert_eq!(api.state(1).await, CaseState::PaidDiscounted);
    assert!(api.payments(1).await[0].reversed_at.is_none());
    // Reversed: the fine is unpaid again; the same reversal again changes nothing.
    let reversal = paid("e6", "payment.reversed", "p-b1", &b, 500_000, None);
    let answer = api.callback(&reversal).await;
    assert_eq!(
        (answer.status, answer.body["outcome"].clone()),
        (200, json!("applied")),
        "{}",
        answer.body
    );
    assert_eq!(api.state(1).await, CaseState::Issued);
    let answer = api.callback(&reversal).await;
    assert_eq!(
        (answer.status, answer.body["outcome"].clone()),
        (200, json!("repeat"))
    );
    assert!(api.payments(1).await[0].reversed_at.is_some());

    // A cancelled intent takes no payment; cancelling again answers the same.
    let made = api.intent("k-c1", json!({ "payment_code": c })).await;
    let id = made.body["id"].as_str().expect("id").to_owned();
    for _ in 0..2 {
        let cancel = api
            .signed(&format!("/payment-intents/{id}/cancel"), &json!({}), None)
            .await;
        assert_eq!(
            (cancel.status, cancel.body["status"].clone()),
            (200, json!("cancelled"))
        );
    }
    let late = api
        .callback(&paid(
            "e7",
            "payment.succeeded",
            "p-c1",
            &c,
            250_000,
            Some(&id),
        ))
        .await;
    assert_eq!(
        (late.status, problem_code(&late)),
        (409, "intent_cancelled")
    );
    assert_eq!(api.state(2).await, CaseState::Issued);
    // Another fine's intent does not pay this one.
    let other = api
        .callback(&paid(
            "e8",
            "payment.succeeded",
            "p-c2",
            &c,
            100_000,
            Some(&part_id),
        ))
        .await;
    assert_eq!(
        (other.status, problem_code(&other)),
        (422, "intent_for_other_fine")
    );
    // A paid intent whose payment is reversed takes no payment any more.
    let back = api
        .callback(&paid("e9", "payment.reversed", "p-a2", &a, 150_000, None))
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    let reversed = api
        .store
        .payment_intent(BANK, &rest_id)
        .await
        .expect("read")
        .expect("the intent");
    assert_eq!(reversed.status, kozomol_store::IntentStatus::Reversed);
    let after = api
        .callback(&paid(
            "e10",
            "payment.succeeded",
            "p-a5",
            &a,
            150_000,
            Some(&rest_id),
        ))
        .await;
    assert_eq!((after.status, problem_code(&after)), (409, "intent_paid"));
    api.finish().await;
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer() {
    let api = Api::start(false, 2).await;
    let request = json!({ "payment_code": api.codes[0], "amount_minor": 120_000 });
    let first = api.intent("key-1", request.clone()).await;
    assert_eq!(
        (first.status, first.replayed),
        (201, false),
        "{}",
        first.body
    );
    let again = api.intent("key-1", request.clone()).await;
    assert_eq!((again.status, again.replayed), (201, true));
    assert_eq!(again.body, first.body, "the same intent, not a second one");
    // The key with other parameters is refused; another key makes another intent.
    let other = api
        .intent(
            "key-1",
            json!({ "payment_code": api.codes[0], "amount_minor": 130_000 }),
        )
        .await;
    assert_eq!(
        (other.status, problem_code(&other)),
        (422, "idempotency_key_reused")
    );
    let second = api.intent("key-2", request.clone()).await;
    assert_eq!(second.status, 201);
    assert_ne!(second.body["id"], first.body["id"]);
    // A refusal is an answer too: kept and replayed.
    let unknown = PaymentCode::new(CodeKind::Fine, Jurisdiction::Kg, 2026, 1, 9_999_999)
        .expect("a code")
        .to_string();
    for replayed in [false, true] {
        let answer = api
            .intent("key-3", json!({ "payment_code": unknown }))
            .await;
        assert_eq!(
            (answer.status, problem_code(&answer), answer.replayed),
            (404, "unknown_payment_code", replayed)
        );
    }
    // Without a key no intent is made; a bad key is refused.
    let body = request.to_string();
    let keyless = api
        .send(
            reqwest::Method::POST,
            "/payment-intents",
            &body,
            Some(request_signature(
                NEW_SECRET,
                "POST",
                "/payment-intents",
                None,
                body.as_bytes(),
            )),
            None,
        )
        .await;
    assert_eq!(
        (keyless.status, problem_code(&keyless)),
        (400, "bad_request")
    );
    let bad = api
        .send(
            reqwest::Method::POST,
            "/payment-intents",
            &body,
            Some(request_signature(
                NEW_SECRET,
                "POST",
                "/payment-intents",
                Some("a key"),
                body.as_bytes(),
            )),
            Some("a key"),
        )
        .await;
    assert_eq!((bad.status, problem_code(&bad)), (400, "bad_request"));
    // A key is the provider's own: kept per provider, and expired after a day.
    let kept = api
        .store
        .begin_idempotent(BANK, "key-1", "other", Utc::now())
        .await
        .expect("read");
    assert_eq!(kept, kozomol_store::IdempotentStart::OtherRequest);
    let later: DateTime<Utc> = Utc::now() + Duration::hours(25);
    let expired = api
        .store
        .begin_idempotent(BANK, "key-1", "other", later)
        .await
        .expect("claim");
    assert!(
        matches!(expired, kozomol_store::IdempotentStart::Fresh(_)),
        "{expired:?}"
    );
    let elsewhere = api
        .store
        .begin_idempotent("another-bank", "key-2", "x", Utc::now())
        .await
        .expect("claim");
    assert!(
        matches!(elsewhere, kozomol_store::IdempotentStart::Fresh(_)),
        "{elsewhere:?}"
    );
    api.finish().await;
}

/// A statement of today's credits on account KG-CITY in camt.053.001.02.
fn camt(entries: &[(&str, &str, &str, &str)]) -> String {
    let today = Jurisdiction::Kg.local_date(Utc::now());
    let entries: String = entries
        .iter()
        .map(|(reference, amount, direction, remittance)| {
            // `RVSL`: a credit the bank took back, a debit marked as a reversal.
            let direction = match *direction {
                "RVSL" => "<CdtDbtInd>DBIT</CdtDbtInd><RvslInd>true</RvslInd>".to_owned(),
                other => format!("<CdtDbtInd>{other}</CdtDbtInd>"),
            };
            format!(
                "<Ntry><Amt Ccy=\"KGS\">{amount}</Amt>{direction}<Sts>BOOK</Sts>\
                 <BookgDt><Dt>{today}</Dt></BookgDt><AcctSvcrRef>{reference}</AcctSvcrRef>\
                 <NtryDtls><TxDtls><RmtInf><Ustrd>{remittance}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\">\
         <BkToCstmrStmt><Stmt><Id>STMT-{today}</Id><Acct><Id><IBAN>KG-CITY</IBAN></Id></Acct>\
         {entries}</Stmt></BkToCstmrStmt></Document>"
    )
}

impl Api {
    async fn staff(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: String,
    ) -> Answer {
        let response = self
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        Answer {
            status,
            replayed: false,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }
}

#[tokio::test]
async fn statements_are_imported_matched_queued_and_totalled() {
    let api = Api::start(false, 3).await;
    let creds = create_demo_accounts(api.store.as_ref(), api.dir.path())
        .await
        .expect("accounts");
    let finance = creds.for_role(Role::Finance).token.clone();
    let reviewer = creds.for_role(Role::Reviewer).token.clone();
    let (a, b, c) = (
        api.codes[0].clone(),
        api.codes[1].clone(),
        api.codes[2].clone(),
    );
    let post = reqwest::Method::POST;

    // A provider reported A's payment; the bank's statement lists the same money.
    let paid_a = api
        .callback(&paid("e1", "payment.succeeded", "p-a", &a, 250_000, None))
        .await;
    assert_eq!(paid_a.status, 200, "{}", paid_a.body);
    let grouped = format!(
        "{} {} {} {} {}",
        &a[0..4],
        &a[4..8],
        &a[8..12],
        &a[12..16],
        &a[16..]
    );
    let statement = camt(&[
        ("E-1", "2500.00", "CRDT", &format!("Штраф, код {grouped}")),
        ("E-2", "5000.00", "CRDT", &format!("fine {b}")),
        ("E-3", "2500.00", "CRDT", "штраф за скорость"),
        ("E-4", "100.00", "DBIT", "commission"),
    ]);
    // A camt.053 statement imported by finance.
    let import_camt = |statement: String| {
        api.staff(
            reqwest::Method::POST,
            "/api/v1/statements",
            &finance,
            "application/xml",
            statement,
        )
    };
    let imported = import_camt(statement.clone()).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    let counts = |body: &Value| {
        [
            "credits", "skipped", "applied", "matched", "queued", "repeats",
        ]
        .map(|k| body[k].as_u64().unwrap_or(99))
    };
    assert_eq!(counts(&imported.body), [3, 1, 1, 1, 1, 0]);
    assert_eq!(imported.body["account"], "KG-CITY");
    assert_eq!(imported.body["lines"][0]["status"], "matched");
    assert_eq!(
        imported.body["lines"][0]["payment_id"],
        paid_a.body["payment"]["id"]
    );
    assert_eq!(imported.body["lines"][1]["status"], "applied");
    assert_eq!(imported.body["lines"][2]["status"], "unmatched");
    assert_eq!(
        api.payments(0).await.len(),
        1,
        "one payment seen twice counts once"
    );
    // B was paid 5,000 within the window: 2,500 to refund.
    assert_eq!(api.payments(1).await[0].excess_minor, 250_000);
    // The excess waits for finance, who pays it back once.
    let json_body = |body: Value| body.to_string();
    let refunds = api
        .staff(
            reqwest::Method::GET,
            "/api/v1/refund-requests",
            &finance,
            "application/json",
            String::new(),
        )
        .await;
    let excess = &refunds.body["items"][0];
    assert_eq!(
        (
            excess["cause"].clone(),
            excess["amount"]["minor"].clone(),
            excess["state"].clone()
        ),
        (json!("excess"), json!(250_000), json!("queued")),
        "{}",
        refunds.body
    );
    let settle = format!("/api/v1/refund-requests/{}/settlement", excess["id"]);
    let unnamed = api
        .staff(
            post.clone(),
            &settle,
            &finance,
            "application/json",
            json_body(json!({"outcome": "refunded"})),
        )
        .await;
    assert_eq!(
        (unnamed.status, unnamed.body["code"].clone()),
        (422, json!("validation_failed"))
    );
    let paid_back = json_body(json!({"outcome": "refunded", "reference": "KICB-2026-0042"}));
    let settled = api
        .staff(
            post.clone(),
            &settle,
            &finance,
            "application/json",
            paid_back.clone(),
        )
        .await;
    assert_eq!(
        (settled.status, settled.body["state"].clone()),
        (200, json!("refunded")),
        "{}",
        settled.body
    );
    assert_eq!(settled.body["reference"], "KICB-2026-0042");
    // The same settlement again (an answer lost on the way) is answered as it stands;
    // another is refused.
    let again = api
        .staff(
            post.clone(),
            &settle,
            &finance,
            "application/json",
            paid_back,
        )
        .await;
    assert_eq!(
        (again.status, again.body["id"].clone()),
        (200, excess["id"].clone())
    );
    let other = json_body(json!({"outcome": "cancelled", "note": "twice"}));
    let twice = api
        .staff(post.clone(), &settle, &finance, "application/json", other)
        .await;
    assert_eq!(twice.status, 409);
    // The same statement again changes nothing.
    let again = import_camt(statement).await;
    assert_eq!(counts(&again.body), [3, 1, 0, 0, 0, 3]);

    // A CSV statement names its account; without it, or broken, it is refused whole.
    let csv = format!(
        "booking_date;amount;currency;reference;remittance\n{};2500,00;KGS;C-1;{c}\n",
        Jurisdiction::Kg.local_date(Utc::now())
    );
    let no_account = api
        .staff(
            post.clone(),
            "/api/v1/statements?format=csv",
            &finance,
            "text/csv",
            csv.clone(),
        )
        .await;
    assert_eq!(
        (no_account.status, no_account.body["code"].clone()),
        (422, json!("validation_failed"))
    );
    let broken = api
        .staff(
            post.clone(),
            "/api/v1/statements?format=csv&account=KG-CITY",
            &finance,
            "text/csv",
            csv.replace("2500,00", "25,001"),
        )
        .await;
    assert_eq!(broken.status, 422);
    assert!(
        broken.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("line 2"),
        "{}",
        broken.body
    );
    let by_csv = api
        .staff(
            post.clone(),
            "/api/v1/statements?format=csv&account=KG-CITY",
            &finance,
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(counts(&by_csv.body), [1, 0, 1, 0, 0, 0], "{}", by_csv.body);
    assert_eq!(api.state(2).await, CaseState::PaidDiscounted);
    let unformatted = api
        .staff(
            post.clone(),
            "/api/v1/statements",
            &finance,
            "application/octet-stream",
            "x".into(),
        )
        .await;
    assert_eq!(unformatted.status, 400);
    let not_camt = import_camt("<Document/>".into()).await;
    assert_eq!(not_camt.status, 422);
    let forbidden = api
        .staff(
            post.clone(),
            "/api/v1/statements?format=csv&account=K",
            &reviewer,
            "text/csv",
            String::new(),
        )
        .await;
    assert_eq!(forbidden.status, 403);

    // The queue: the credit with no code; finance sends it back to the payer.
    // The credits waiting in finance's queue.
    let queued_lines = || {
        api.staff(
            reqwest::Method::GET,
            "/api/v1/statement-lines?queued=true",
            &finance,
            "application/json",
            String::new(),
        )
    };
    let queue = queued_lines().await;
    let items = queue.body["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1, "{}", queue.body);
    assert_eq!(items[0]["bank_reference"], "E-3");
    let id = items[0]["id"].as_i64().expect("id");
    let path = format!("/api/v1/statement-lines/{id}/resolution");
    let to_paid = api
        .staff(
            post.clone(),
            &path,
            &finance,
            "application/json",
            json!({"action": "apply", "payment_code": a, "note": "the plate"}).to_string(),
        )
        .await;
    assert_eq!(
        (to_paid.status, to_paid.body["code"].clone()),
        (409, json!("already_paid"))
    );
    let no_note = api
        .staff(
            post.clone(),
            &path,
            &finance,
            "application/json",
            json!({"action": "dismiss"}).to_string(),
        )
        .await;
    assert_eq!(no_note.status, 422);
    let dismissed = api
        .staff(
            post.clone(),
            &path,
            &finance,
            "application/json",
            json!({"action": "dismiss", "note": "returned to the payer"}).to_string(),
        )
        .await;
    assert_eq!(
        (dismissed.status, dismissed.body["status"].clone()),
        (200, json!("resolved")),
        "{}",
        dismissed.body
    );
    let twice = api
        .staff(
            post.clone(),
            &path,
            &finance,
            "application/json",
            json!({"action": "dismiss", "note": "again"}).to_string(),
        )
        .await;
    assert_eq!(twice.status, 409);

    // The day's totals reconcile: A over the API and matched, B and C from statements.
    let today = Jurisdiction::Kg.local_date(Utc::now());
    let yesterday = today.pred_opt().expect("a day");
    let totals = api
        .staff(
            reqwest::Method::GET,
            &format!("/api/v1/payment-totals?from={yesterday}&to={today}"),
            &finance,
            "application/json",
            String::new(),
        )
        .await;
    assert_eq!(totals.status, 200, "{}", totals.body);
    assert_eq!(totals.body["balanced"], true);
    let day = totals.body["days"]
        .as_array()
        .expect("days")
        .iter()
        .find(|d| d["day"] == json!(today.to_string()))
        .expect("today")
        .clone();
    assert_eq!(day["api"], json!([1, 250_000]));
    assert_eq!(day["statement"], json!([2, 750_000]));
    assert_eq!(day["awaiting_statement"], json!([0, 0]));
    assert_eq!(day["credits"], json!([4, 1_250_000]));
    assert_eq!(day["credits_resolved"], json!([1, 250_000]));
    let too_long = api
        .staff(
            reqwest::Method::GET,
            "/api/v1/payment-totals?from=2026-01-01&to=2026-06-01",
            &finance,
            "application/json",
            String::new(),
        )
        .await;
    assert_eq!(
        (too_long.status, too_long.body["code"].clone()),
        (400, json!("invalid_query"))
    );
    // Days chrono reads but no instant of theirs fits: refused, not a dropped answer.
    for range in [
        "from=-262143-01-01&to=-262143-01-01",
        "from=1900-01-01&to=1900-01-02",
    ] {
        let absurd = api
            .staff(
                reqwest::Method::GET,
                &format!("/api/v1/payment-totals?{range}"),
                &finance,
                "application/json",
                String::new(),
            )
            .await;
        assert_eq!(
            (absurd.status, absurd.body["code"].clone()),
            (400, json!("invalid_query")),
            "{range}"
        );
    }

    // The bank takes credits back: C's own statement payment and A's provider payment
    // its credit was matched to are reversed and the credits closed; one naming no
    // code, one of a sum no credit to B had, and B's whose excess was paid back are
    // left to finance.
    let taken_back = camt(&[
        ("R-1", "2500.00", "RVSL", &format!("возврат {c}")),
        ("R-2", "2500.00", "RVSL", &format!("return {a}")),
        ("R-3", "100.00", "RVSL", "возврат"),
        ("R-4", "1.00", "RVSL", &b),
        ("R-5", "5000.00", "RVSL", &b),
    ]);
    let outcomes = |body: &Value| -> Vec<String> {
        body["reversals"]
            .as_array()
            .expect("reversals")
            .iter()
            .map(|r| r["outcome"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let reversed = import_camt(taken_back.clone()).await;
    assert_eq!(reversed.status, 200, "{}", reversed.body);
    assert_eq!(
        outcomes(&reversed.body),
        [
            "reversed",
            "reversed",
            "no_credit",
            "no_credit",
            "not_reversible"
        ],
        "{}",
        reversed.body
    );
    assert_eq!(counts(&reversed.body), [0, 0, 0, 0, 0, 0]);
    for fine in [0, 2] {
        let payments = api.payments(fine).await;
        assert!(
            payments.iter().all(|p| p.reversed_at.is_some()),
            "{payments:?}"
        );
        let state = api.state(fine).await;
        assert!(
            !matches!(state, CaseState::Paid | CaseState::PaidDiscounted),
            "fine {fine} is {state}"
        );
    }
    assert_eq!(api.payments(1).await[0].reversed_at, None);
    // The credits taken back are closed: no one can apply money that is gone.
    let queue = queued_lines().await;
    assert_eq!(queue.body["items"], json!([]), "{}", queue.body);
    // Imported again: nothing more is reversed.
    let again = import_camt(taken_back).await;
    assert_eq!(
        outcomes(&again.body),
        [
            "already_reversed",
            "already_reversed",
            "no_credit",
            "no_credit",
            "not_reversible"
        ],
        "{}",
        again.body
    );
    api.finish().await;
}
