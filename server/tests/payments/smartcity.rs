//! `smartcity-service` at `/xroad/soap`, called by a stock SOAP client built from the
//! WSDL (Python's `zeep`, `tests/payments/stock_client.py`) against a real HTTP
//! server over fines issued through the store. `scripts/test.sh` installs zeep and
//! names its Python in `KOZOMOL_STOCK_SOAP_PYTHON`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::FixedOffset;
use ed25519_dalek::SigningKey;
use kozomol_core::CaseState;
use kozomol_ingest::IngestMetrics;
use kozomol_server::api::{router, AppState, SmartcityService};
use kozomol_store::{EvidenceStore, NewAppeal, Store};
use kozomol_testkit::fines::issued_fines;
use kozomol_tunduk::smartcity::{ProviderSettings, Subscriber};
use kozomol_tunduk::{XRoadClient, XRoadService};
use serde_json::{json, Value};

const PROVIDER: &str = "central-server/GOV/70000001/smartcity";
const BANK: &str = "central-server/COM/10000001/payments";
const PORTAL: &str = "central-server/GOV/70000002/portal";
const POLICE: &str = "central-server/GOV/70000003/police";

/// The portal takes notices of new violations at its `violationNotification`.
fn portal_subscriber() -> Subscriber {
    Subscriber {
        client: XRoadClient::parse(PORTAL).expect("client"),
        service: XRoadService::parse(&format!("{PORTAL}/violationNotification/v1"))
            .expect("service"),
    }
}

fn clients(names: &[&str]) -> Vec<XRoadClient> {
    names
        .iter()
        .map(|n| XRoadClient::parse(n).expect("client"))
        .collect()
}

struct Provider {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    url: String,
    codes: Vec<String>,
    first_case: i64,
}

/// A store and an evidence store in a temporary folder (kept while the folder lives).
async fn sqlite_store() -> (tempfile::TempDir, Arc<dyn Store>, Arc<EvidenceStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = kozomol_store::connect(&format!(
        "sqlite://{}",
        dir.path().join("kozomol.db").display()
    ))
    .await
    .expect("sqlite store opens");
    let evidence = Arc::new(
        EvidenceStore::open(&dir.path().join("evidence"), "smartcity-test").expect("evidence"),
    );
    (dir, store, evidence)
}

impl Provider {
    async fn start(security_servers: Vec<std::net::IpAddr>) -> Provider {
        let (dir, store, evidence) = sqlite_store().await;
        let (first, codes) = issued_fines(store.as_ref(), &evidence, 3)
            .await
            .expect("fines issued");
        let mut allowed = BTreeMap::new();
        allowed.insert("setPaymentLegal".to_owned(), clients(&[BANK]));
        allowed.insert("getViolationsByPlate".to_owned(), clients(&[BANK, PORTAL]));
        allowed.insert("smartcityGetViolations".to_owned(), clients(&[PORTAL]));
        allowed.insert("protocolInfo".to_owned(), clients(&[BANK, PORTAL]));
        allowed.insert("protocol".to_owned(), clients(&[PORTAL]));
        allowed.insert("subscribeViolations".to_owned(), clients(&[BANK, PORTAL]));
        allowed.insert("unsubscribeViolations".to_owned(), clients(&[BANK, PORTAL]));
        allowed.insert("vehicleOwnerSearch".to_owned(), clients(&[PORTAL]));
        allowed.insert("vehicleOwnerList".to_owned(), clients(&[PORTAL]));
        allowed.insert("resolutionDeliveryStatus".to_owned(), clients(&[PORTAL]));
        allowed.insert("getEvents".to_owned(), clients(&[POLICE]));
        allowed.insert("getEventPhoto".to_owned(), clients(&[POLICE]));
        let mut state = AppState::new(
            store.clone(),
            evidence,
            Arc::new(IngestMetrics::default()),
            "http://kozomol.test",
            Arc::new(SigningKey::from_bytes(&[7; 32])),
        );
        state.smartcity = Some(Arc::new(SmartcityService {
            settings: ProviderSettings {
                provider: XRoadClient::parse(PROVIDER).expect("provider"),
                security_servers,
                clients: allowed,
                subscribers: vec![portal_subscriber()],
            },
            offset: FixedOffset::east_opt(6 * 3600).expect("+06:00"),
        }));
        state.ready.store(true, Ordering::Release);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Provider {
            _dir: dir,
            store,
            url: format!("http://{addr}/xroad/soap"),
            codes,
            first_case: first.0,
        }
    }

    async fn number(&self, i: usize) -> String {
        self.store
            .resolution_of_case(kozomol_core::CaseId(self.first_case + i as i64))
            .await
            .expect("read")
            .expect("issued")
            .number
    }

    /// Files the owner's appeal of the `i`-th fine; its id.
    async fn appeal(&self, i: usize) -> i64 {
        let filed = self
            .store
            .file_appeal(&NewAppeal {
                case_id: kozomol_core::CaseId(self.first_case + i as i64),
                appellant: "Асанов Бакыт".into(),
                contact: None,
                grounds: "Я не превышал скорость".into(),
                filed_by: "portal".into(),
                attachments: vec![],
            })
            .await
            .expect("appeal filed");
        match filed {
            kozomol_store::AppealFiled::Filed(appeal) => appeal.id,
            other => panic!("not filed: {other:?}"),
        }
    }

    async fn state(&self, i: usize) -> CaseState {
        self.store
            .case(kozomol_core::CaseId(self.first_case + i as i64))
            .await
            .expect("read")
            .expect("case")
            .state
    }
}

fn wsdl() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tunduk/wsdl/smartcity-service.wsdl")
}

/// The Python that has zeep: `KOZOMOL_STOCK_SOAP_PYTHON`, else `python3` if it has it.
fn python() -> String {
    if let Ok(python) = std::env::var("KOZOMOL_STOCK_SOAP_PYTHON") {
        return python;
    }
    let has_zeep = Command::new("python3")
        .args(["-c", "import zeep"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_zeep,
        "the stock SOAP client needs Python's zeep: run scripts/test.sh, or set \
         KOZOMOL_STOCK_SOAP_PYTHON to a Python that has it"
    );
    "python3".to_owned()
}

/// One call for the stock client: `client` calls `operation` with `request`.
fn call(client: &str, operation: &str, id: &str, request: Value) -> Value {
    json!({"client": client, "provider": PROVIDER, "operation": operation, "id": id, "request": request})
}

/// Runs the stock client over `calls`, in order, and returns its answers.
async fn stock_client(url: &str, calls: Vec<Value>) -> Vec<Value> {
    let job = json!({"wsdl": wsdl(), "url": url, "calls": calls}).to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/payments/stock_client.py");
    let python = python();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(job.as_bytes())
            .expect("job written");
        child.wait_with_output().expect("python ends")
    })
    .await
    .expect("joined");
    assert!(
        output.status.success(),
        "stock client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("answers are JSON")
}

fn response(answer: &Value) -> &Value {
    &answer["body"]["response"]
}

fn fault_code(answer: &Value) -> &str {
    answer["fault"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a fault, got {answer}"))
}

fn pay(status: u8, code: &str, sum: &str, id: &str) -> Value {
    pay_at(status, code, sum, id, "2026-03-12T15:30:00+06:00")
}

/// `setPaymentLegal` from the bank, paid at `date`.
fn pay_at(status: u8, code: &str, sum: &str, id: &str, date: &str) -> Value {
    call(
        BANK,
        "setPaymentLegal",
        id,
        json!({"status": status, "sum": sum, "paymentNumber": code.parse::<i64>().unwrap_or(1), "paymentDate": date}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banks_check_and_pay_exactly_once_through_the_stock_client() {
    let provider = Provider::start(vec!["127.0.0.1".parse().expect("ip")]).await;
    let codes = &provider.codes;
    // The third fine is under appeal: it takes no payment.
    provider.appeal(2).await;
    // A valid code no resolution has.
    let stranger = kozomol_payments::PaymentCode::new(
        kozomol_payments::CodeKind::Fine,
        kozomol_core::Jurisdiction::Kg,
        2026,
        1,
        9_999_999,
    )
    .expect("code")
    .to_string();

    let answers = stock_client(
        &provider.url,
        vec![
            pay(0, &codes[0], "0", "check-1"),
            pay(1, &codes[0], "3000.00", "over-1"),
            pay(1, &codes[0], "2000", "under-1"),
            pay(1, &codes[0], "2500.00", "pay-1"),
            pay(1, &codes[0], "2500.00", "pay-2"),
            pay(1, &codes[0], "2500.00", "pay-1"),
            pay(0, &codes[0], "0", "check-2"),
            pay(0, &stranger, "0", "check-3"),
            pay(1, &codes[2], "2500.00", "pay-3"),
            pay(1, &codes[1], "2500.005", "pay-4"),
            pay(7, &codes[1], "2500.00", "pay-5"),
            call(
                PORTAL,
                "setPaymentLegal",
                "pay-6",
                pay(1, &codes[1], "2500.00", "x")["request"].clone(),
            ),
            pay(2, &codes[0], "2500.00", "cancel-1"),
            pay(2, &codes[0], "2500.00", "cancel-2"),
            pay(0, &codes[0], "0", "check-4"),
            pay_at(
                1,
                &codes[0],
                "2500.00",
                "pay-7",
                "2026-03-13T10:00:00+06:00",
            ),
            pay(2, &codes[1], "2500.00", "cancel-3"),
            // The first cancel sent again: it names pay-1's time, so pay-7 stands.
            pay(2, &codes[0], "2500.00", "cancel-4"),
            // pay-1's message again, after its payment was cancelled.
            pay(1, &codes[0], "2500.00", "pay-1"),
            pay_at(
                1,
                &codes[0],
                "2500.00",
                "pay-8",
                "2099-01-01T00:00:00+06:00",
            ),
        ],
    )
    .await;
    let status_cost = |i: usize| {
        let r = response(&answers[i]);
        (
            r["status"].as_i64().unwrap_or(-1),
            r["cost"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(
        status_cost(0),
        (200, "2500.00".into()),
        "the discounted sum: {}",
        answers[0]
    );
    assert_eq!(status_cost(1), (408, "2500.00".into()), "overpaid");
    assert_eq!(status_cost(2), (409, "2500.00".into()), "underpaid");
    assert_eq!(status_cost(3), (200, "2500.00".into()), "paid");
    assert_eq!(status_cost(4).0, 406, "a second payment of the code");
    assert_eq!(
        status_cost(5),
        (200, "2500.00".into()),
        "the same message again is that payment"
    );
    assert_eq!(status_cost(6).0, 406, "nothing is left to check");
    assert_eq!(status_cost(7).0, 404, "no resolution has the code");
    assert_eq!(status_cost(8).0, 405, "under appeal");
    assert_eq!(
        fault_code(&answers[9]),
        "Client.InvalidRequest",
        "three decimals are never rounded"
    );
    assert_eq!(
        fault_code(&answers[10]),
        "Client.InvalidRequest",
        "status 7"
    );
    assert_eq!(
        fault_code(&answers[11]),
        "Server.ServerProxy.AccessDenied",
        "the portal may not pay"
    );
    assert_eq!(
        status_cost(12),
        (200, "2500.00".into()),
        "the bank cancels its payment"
    );
    assert_eq!(status_cost(13).0, 407, "cancelled already");
    assert_eq!(
        status_cost(14),
        (200, "2500.00".into()),
        "the fine takes money again"
    );
    assert_eq!(status_cost(15), (200, "2500.00".into()), "paid again");
    assert_eq!(
        status_cost(16).0,
        404,
        "the bank paid nothing for this code"
    );
    // The request is echoed as sent.
    assert_eq!(answers[3]["body"]["request"]["sum"], "2500.00");
    assert_eq!(
        answers[3]["body"]["request"]["paymentNumber"]
            .as_i64()
            .map(|n| n.to_string()),
        Some(codes[0].clone())
    );

    // One payment cancelled, one standing, at the discount (paid before delivery).
    let number = provider.number(0).await;
    let payments = provider.store.payments(&number).await.expect("payments");
    assert_eq!(payments.len(), 2, "{payments:?}");
    assert_eq!(payments[0].amount.minor, 250_000);
    assert_eq!(payments[0].source, BANK);
    assert_eq!(payments[0].external_id, "pay-1");
    assert!(
        payments[0].reversed_at.is_some(),
        "the cancelled payment stays, reversed"
    );
    assert_eq!(
        (payments[1].external_id.as_str(), payments[1].reversed_at),
        ("pay-7", None)
    );
    assert_eq!(provider.state(0).await, CaseState::PaidDiscounted);
    assert_eq!(
        provider.state(1).await,
        CaseState::Issued,
        "refused payments change nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fines_deliveries_events_and_photos_through_the_stock_client() {
    let provider = Provider::start(vec!["127.0.0.1".parse().expect("ip")]).await;
    let codes = &provider.codes;
    let (paid, unpaid) = (provider.number(0).await, provider.number(1).await);
    let plate_of_1 = provider
        .store
        .decided_plate(kozomol_core::CaseId(provider.first_case + 1))
        .await
        .expect("read")
        .expect("a decided plate");
    let case_1 = provider.first_case + 1;
    // Fines are issued now: the portal delivers just after (to the second, within the
    // clock skew a delivery date may have).
    let delivered = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .with_timezone(&FixedOffset::east_opt(6 * 3600).expect("+06:00"))
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    // Cases were captured on 2026-03-10 at 08:30 UTC (14:30 in Bishkek).
    let answers = stock_client(
        &provider.url,
        vec![
            pay(1, &codes[0], "2500.00", "pay-1"),
            call(PORTAL, "getViolationsByPlate", "p-1", json!({"plate": plate_of_1})),
            call(PORTAL, "getViolationsByPlate", "p-2", json!({"plate": "01KG999ZZZ"})),
            call(BANK, "protocolInfo", "i-1", json!({"protocol": paid})),
            call(BANK, "protocolInfo", "i-2", json!({"protocol": unpaid})),
            call(BANK, "protocolInfo", "i-3", json!({"protocol": "KG-BSK-2026-9999999"})),
            call(PORTAL, "resolutionDeliveryStatus", "d-1", json!({"protocol": unpaid, "deliveryStatus": 1, "deliveryDate": delivered, "note": "прочитано в личном кабинете"})),
            call(PORTAL, "resolutionDeliveryStatus", "d-2", json!({"protocol": unpaid, "deliveryStatus": 1, "deliveryDate": delivered, "note": "повтор"})),
            call(PORTAL, "resolutionDeliveryStatus", "d-3", json!({"protocol": "KG-BSK-2026-9999999", "deliveryStatus": 1, "deliveryDate": delivered, "note": ""})),
            call(PORTAL, "resolutionDeliveryStatus", "d-4", json!({"protocol": paid, "deliveryStatus": 1, "deliveryDate": "2026-03-11T09:00:00+06:00", "note": "before the fine"})),
            call(POLICE, "getEvents", "e-1", json!({"plateNumber": plate_of_1, "fromDate": "2026-03-10T00:00:00+06:00", "toDate": "2026-03-10T23:59:59+06:00"})),
            call(POLICE, "getEvents", "e-2", json!({"plateNumber": plate_of_1, "fromDate": "2026-03-09T00:00:00+06:00", "toDate": "2026-03-10T23:59:59+06:00"})),
            call(POLICE, "getEvents", "e-3", json!({"plateNumber": plate_of_1, "fromDate": "2026-02-28T12:00:00+06:00", "toDate": "2026-03-01T10:00:00+06:00"})),
            call(POLICE, "getEvents", "e-4", json!({"plateNumber": plate_of_1, "fromDate": "2026-03-11T00:00:00+06:00", "toDate": "2026-03-11T23:00:00+06:00"})),
            call(POLICE, "getEventPhoto", "f-1", json!({"eventId": case_1, "eventDate": "2026-03-10T14:30:00+06:00"})),
            call(POLICE, "getEventPhoto", "f-2", json!({"eventId": case_1, "eventDate": "2026-03-10T14:31:00+06:00"})),
            call(BANK, "getEvents", "e-5", json!({"plateNumber": plate_of_1, "fromDate": "2026-03-10T00:00:00+06:00", "toDate": "2026-03-10T23:59:59+06:00"})),
            // The fixtures' owners: the PIN 2121219 and the case's place, 7 digits.
            call(PORTAL, "smartcityGetViolations", "v-1", json!({"pin": "21212190000001", "plate": plate_of_1, "image": false})),
            call(PORTAL, "smartcityGetViolations", "v-2", json!({"pin": "21212190000001", "plate": plate_of_1})),
            call(PORTAL, "smartcityGetViolations", "v-3", json!({"pin": "21212190000000", "plate": plate_of_1, "image": false})),
            call(PORTAL, "protocol", "r-1", json!({"protocolNumber": unpaid})),
            call(PORTAL, "protocol", "r-2", json!({"protocolNumber": provider.first_case.to_string()})),
            call(PORTAL, "protocol", "r-3", json!({"protocolNumber": "KG-BSK-2026-9999999"})),
            call(BANK, "protocol", "r-4", json!({"protocolNumber": unpaid})),
        ],
    )
    .await;
    let code = |i: usize| response(&answers[i])["code"].as_i64().unwrap_or(-1);

    assert_eq!(code(1), 200, "{}", answers[1]);
    let listed = &response(&answers[1])["protocols"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(
        listed[0]["paymentNumber"].as_i64().map(|n| n.to_string()),
        Some(codes[1].clone())
    );
    assert_eq!(listed[0]["violationAmmount"].as_f64(), Some(2500.0));
    assert_eq!(code(2), 404);

    assert_eq!(code(3), 200);
    let info = &response(&answers[3])["data"];
    assert_eq!(
        (info["paymentStatus"].as_i64(), info["paidSum"].as_f64()),
        (Some(1), Some(2500.0)),
        "{info}"
    );
    assert!(
        info["paymentDate"]
            .as_str()
            .is_some_and(|d| d.starts_with("2026-03-12T15:30:00")),
        "{info}"
    );
    let info = &response(&answers[4])["data"];
    assert_eq!(
        (
            info["paymentStatus"].as_i64(),
            info["paymentMessage"].as_str()
        ),
        (Some(0), Some("Не оплачено"))
    );
    assert_eq!(code(5), 404);
    // zeep reads the nil `data` as an element with no values.
    assert!(
        response(&answers[5])["data"]["paymentStatus"].is_null(),
        "{}",
        answers[5]
    );

    assert_eq!(
        (code(6), code(7), code(8)),
        (200, 402, 404),
        "delivered, again, unknown: {} {}",
        answers[6],
        answers[7]
    );
    let resolution = provider
        .store
        .resolution(&unpaid)
        .await
        .expect("read")
        .expect("issued");
    assert_eq!(
        resolution.delivered_at.map(|at| at.timestamp()),
        chrono::DateTime::parse_from_rfc3339(&delivered)
            .ok()
            .map(|at| at.timestamp()),
        "the portal's delivery starts the clocks"
    );
    assert_eq!(provider.state(1).await, CaseState::Delivered);
    assert_eq!(
        fault_code(&answers[9]),
        "Client.InvalidRequest",
        "delivered before it was issued"
    );

    assert_eq!(code(10), 200, "{}", answers[10]);
    let events = &response(&answers[10])["data"];
    assert_eq!(events.as_array().map(Vec::len), Some(1), "{events}");
    assert_eq!(events[0]["id"].as_i64(), Some(case_1));
    assert_eq!(events[0]["plateNumber"].as_str(), Some(plate_of_1.as_str()));
    assert_eq!(
        (events[0]["gpsY"].as_str(), events[0]["gpsX"].as_str()),
        (Some("42.876000"), Some("74.604000"))
    );
    assert!(events[0]["eventDate"]
        .as_str()
        .is_some_and(|d| d.starts_with("2026-03-10T14:30:00")));
    assert_eq!(code(11), 400, "more than 24 hours");
    assert_eq!(code(12), 400, "two months");
    assert_eq!(code(13), 404, "no passage that day");

    assert_eq!(code(14), 200);
    let photo = &response(&answers[14])["data"];
    assert_eq!(photo["id"].as_i64(), Some(case_1));
    assert!(
        photo["image"]["bytes"].as_u64().is_some_and(|n| n > 100),
        "{photo}"
    );
    assert_eq!(code(15), 404, "another time is another event");
    assert_eq!(
        fault_code(&answers[16]),
        "Server.ServerProxy.AccessDenied",
        "banks see no passages"
    );

    assert_eq!(code(17), 200, "{}", answers[17]);
    let fines = &response(&answers[17])["protocols"];
    assert_eq!(fines.as_array().map(Vec::len), Some(1), "{fines}");
    let fine = &fines[0];
    assert_eq!(fine["protocolNumber"].as_i64(), Some(case_1));
    assert_eq!(
        fine["paymentNumber"].as_i64().map(|n| n.to_string()),
        Some(codes[1].clone())
    );
    assert_eq!(
        (fine["lastname"].as_str(), fine["firstname"].as_str()),
        (Some("Асанов"), Some("Бакыт"))
    );
    assert_eq!(
        (fine["paymentStatus"].as_i64(), fine["carBrand"].as_str()),
        (Some(0), Some("Toyota"))
    );
    assert_eq!(
        fine["violationAmmount"].as_f64(),
        Some(2500.0),
        "within the discount's window"
    );
    assert!(fine["violationImage"].is_null(), "no photo asked for");
    assert!(
        fine["deliveryDate"].as_str().is_some(),
        "the portal delivered it"
    );
    let with_photo = &response(&answers[18])["protocols"][0];
    assert!(with_photo["violationImage"]
        .as_str()
        .is_some_and(|b| b.len() > 100));
    assert_eq!(code(19), 404, "another owner's PIN");
    assert!(
        fine["birthdate"]
            .as_str()
            .is_some_and(|d| d.starts_with("1980-12-21T00:00:00")),
        "{fine}"
    );

    assert_eq!(code(20), 200, "{}", answers[20]);
    let protocol = &response(&answers[20])["data"];
    let text = |field: &str| protocol[field].as_str().map(str::to_owned);
    assert_eq!(protocol["id"].as_i64(), Some(case_1));
    assert_eq!(text("plateNumber"), Some(plate_of_1.clone()));
    assert_eq!(
        (text("pin"), text("lastname"), text("patronymic")),
        (
            Some("21212190000001".to_owned()),
            Some("Асанов".to_owned()),
            Some("Токтогулович".to_owned())
        )
    );
    assert!(text("birthdate").is_some_and(|d| d.starts_with("1980-12-21T00:00:00")));
    assert_eq!(
        (text("obl"), text("street"), text("house"), text("flat")),
        (
            Some("Чуйская".to_owned()),
            Some("ул. Киевская".to_owned()),
            Some("96".to_owned()),
            Some("12".to_owned())
        )
    );
    assert!(protocol["aymak"].is_null() && protocol["oblId"].is_null());
    assert_eq!(
        // zeep reads an xsd:gYear as (year, zone).
        (
            text("carBrand"),
            text("carColor"),
            protocol["carYear"][0].as_i64()
        ),
        (
            Some("Toyota".to_owned()),
            Some("белый".to_owned()),
            Some(2015)
        ),
        "{protocol}"
    );
    assert_eq!(
        protocol["paymentNumber"].as_str().map(str::to_owned),
        Some(codes[1].clone())
    );
    assert_eq!(protocol["paymentStatus"].as_str(), Some("0"));
    assert!(protocol["paymentDate"].is_null() && protocol["paymentSum"].is_null());
    assert_eq!(protocol["violationAmmount"].as_f64(), Some(5000.0));
    assert_eq!(
        (text("violationArticle"), text("violationArticlePart")),
        (Some("Ст. 148".to_owned()), Some("3".to_owned()))
    );
    assert_eq!(
        protocol["deliveryStatus"].as_str(),
        Some("1"),
        "d-1 delivered it"
    );
    assert_eq!(
        (text("gpsY"), text("gpsX")),
        (Some("42.876000".to_owned()), Some("74.604000".to_owned()))
    );
    assert_eq!(
        text("protocolHash"),
        Some(hex::encode(resolution.pdf_sha256))
    );
    assert_eq!(text("certEcp"), Some(resolution.signature_key_id.clone()));
    assert!(
        text("certificate").is_some_and(|c| !c.is_empty()),
        "{protocol}"
    );
    assert_eq!(
        text("operatorFio").as_deref(),
        Some(kozomol_testkit::fines::OFFICER_NAME)
    );
    assert!(text("violationImage").is_some_and(|b| b.len() > 100));

    assert_eq!(code(21), 200, "{}", answers[21]);
    let paid = &response(&answers[21])["data"];
    assert_eq!(
        (paid["paymentStatus"].as_str(), paid["paymentSum"].as_f64()),
        (Some("1"), Some(2500.0)),
        "{paid}"
    );
    assert_eq!(code(22), 404);
    assert_eq!(
        fault_code(&answers[23]),
        "Server.ServerProxy.AccessDenied",
        "a bank reads no owner's data"
    );
}

/// A fine paid at the discount whose appeal was rejected is settled by its money before
/// the dating puts it back to its paid state: `protocolInfo` says paid, and the owner's
/// listing shows it paid with what it was paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_fine_whose_appeal_was_rejected_reads_paid() {
    let provider = Provider::start(vec!["127.0.0.1".parse().expect("ip")]).await;
    let store = provider.store.as_ref();
    let case_id = kozomol_core::CaseId(provider.first_case + 2);
    let number = provider.number(2).await;
    let plate = store
        .decided_plate(case_id)
        .await
        .expect("read")
        .expect("a decided plate");
    let posted = store
        .post_payment(&kozomol_store::NewPayment {
            payment_code: provider.codes[2].clone(),
            channel: kozomol_store::PaymentChannel::Api,
            source: "provider-1".into(),
            external_id: "early".into(),
            amount: kozomol_core::Money::new(250_000, kozomol_core::Currency::KGS),
            paid_at: chrono::Utc::now() - chrono::Duration::seconds(1),
            exact_only: false,
            intent: None,
            posted_by: "payments-api".into(),
        })
        .await
        .expect("post");
    assert!(
        matches!(&posted, kozomol_store::PaymentPosted::Applied(p) if p.to_state == CaseState::PaidDiscounted),
        "{posted:?}"
    );
    let appeal = provider.appeal(2).await;
    store
        .decide_appeal(
            appeal,
            kozomol_store::AppealState::Rejected,
            "supervisor-1",
            "",
        )
        .await
        .expect("decided");
    assert_eq!(provider.state(2).await, CaseState::AppealRejected);

    let answers = stock_client(
        &provider.url,
        vec![
            call(BANK, "protocolInfo", "i-1", json!({"protocol": number})),
            call(
                PORTAL,
                "smartcityGetViolations",
                "v-1",
                json!({"pin": "21212190000002", "plate": plate, "image": false}),
            ),
        ],
    )
    .await;
    let info = &response(&answers[0])["data"];
    assert_eq!(
        (info["paymentStatus"].as_i64(), info["paidSum"].as_f64()),
        (Some(1), Some(2500.0)),
        "{info}"
    );
    let fines = &response(&answers[1])["protocols"];
    assert_eq!(fines.as_array().map(Vec::len), Some(1), "{fines}");
    assert_eq!(
        (
            fines[0]["paymentStatus"].as_i64(),
            fines[0]["violationAmmount"].as_f64()
        ),
        (Some(1), Some(2500.0)),
        "{fines}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_through_the_stock_client() {
    let provider = Provider::start(vec!["127.0.0.1".parse().expect("ip")]).await;
    let (pin, plate) = ("21212190000001", "01 kg 001 abc");
    let (subscribe, unsubscribe) = ("subscribeViolations", "unsubscribeViolations");
    let (taken, exists, absent) = (
        "Подписка успешно создана",
        "Указанная подписка уже имеется",
        "Указанная подписка отсутствует",
    );
    let no_member = "Подсистема не является участником сервиса уведомлений";
    // Client, operation, PIN, plate, unique number; the code and message answered.
    let table = [
        (PORTAL, subscribe, pin, plate, "u-1", 200, taken),
        // The same owner and plate (written another way) again.
        (PORTAL, subscribe, pin, "01KG001ABC", "u-2", 406, exists),
        (
            PORTAL,
            subscribe,
            pin,
            plate,
            " ",
            401,
            "uniqueNumber не указан",
        ),
        (
            PORTAL,
            subscribe,
            "",
            plate,
            "u-1",
            401,
            "ПИН является обязательным полем",
        ),
        (
            PORTAL,
            subscribe,
            pin,
            "",
            "u-1",
            401,
            "Гос номер является обязательным полем",
        ),
        (BANK, subscribe, pin, plate, "u-1", 405, no_member),
        (PORTAL, unsubscribe, pin, plate, "u-2", 406, absent),
        (BANK, unsubscribe, pin, plate, "u-1", 405, no_member),
        (
            PORTAL,
            unsubscribe,
            pin,
            plate,
            "u-1",
            200,
            "Подписка успешно удалена",
        ),
        (PORTAL, unsubscribe, pin, plate, "u-1", 406, absent),
        // Not allowed to call at all.
        (POLICE, subscribe, pin, plate, "u-1", 0, ""),
    ];
    let mut calls: Vec<Value> = table
        .iter()
        .enumerate()
        .map(|(i, (client, operation, pin, plate, number, ..))| {
            let request = json!({"pin": pin, "plate": plate, "uniqueNumber": number});
            call(client, operation, &format!("s-{i}"), request)
        })
        .collect();
    // The vehicle registry's owner searches are not kozomol's to answer.
    calls.push(call(
        PORTAL,
        "vehicleOwnerSearch",
        "o-1",
        json!({"type": 1, "carPlate": "01KG001ABC", "carBrand": "Toyota", "carModel": "Camry",
               "carYear": {"gYear": 2015}, "name": "Асанов Бакыт", "phone": "+996555123456",
               "email": "asanov@example.kg", "note": ""}),
    ));
    calls.push(call(
        PORTAL,
        "vehicleOwnerList",
        "o-2",
        json!({"type": 1, "perPage": 10, "page": 1, "name": null, "plate": "01KG001ABC"}),
    ));
    let answers = stock_client(&provider.url, calls).await;
    for answer in &answers[table.len()..] {
        assert_eq!(fault_code(answer), "Server.UnknownOperation", "{answer}");
    }
    for (i, (.., code, message)) in table.iter().enumerate() {
        if *code == 0 {
            assert_eq!(fault_code(&answers[i]), "Server.ServerProxy.AccessDenied");
            continue;
        }
        let response = response(&answers[i]);
        assert_eq!(
            (response["code"].as_i64(), response["message"].as_str()),
            (Some(*code), Some(*message)),
            "call {i}: {}",
            answers[i]
        );
    }
    // The request is echoed as sent.
    assert_eq!(
        answers[0]["body"]["request"]["plate"].as_str(),
        Some(plate),
        "{}",
        answers[0]
    );
}

/// A stand-in of the portal's security server: takes each notice (its body kept) and
/// answers it as the portal's `violationNotification` would.
async fn stand_in_subscriber() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::{header, HeaderMap};
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let request = kozomol_tunduk::provider::XRoadRequest::read(content_type, &body)
                    .expect("an X-Road request");
                kept.lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&body).into_owned());
                (
                    [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                    request.reply(&format!(
                        r#"<violationNotificationResponse xmlns="{}"><request/><response><code>200</code><message>принято</message></response></violationNotificationResponse>"#,
                        kozomol_tunduk::smartcity::SMARTCITY_NS
                    )),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), received)
}

#[tokio::test]
async fn subscribed_systems_get_a_notice_of_each_new_resolution() {
    use kozomol_fines::delivery::{DeliveryConfig, DeliveryWorker, SubscriberNotifier};
    use kozomol_store::{NewSubscription, Subscribed};
    let (_dir, store, evidence) = sqlite_store().await;
    // The fixtures' first fine: its owner's PIN and its plate (decided 01KG000ABC),
    // spelt as the recognizer writes it.
    let subscribed = store
        .subscribe(&NewSubscription {
            client: PORTAL.to_owned(),
            pin: "21212190000000".to_owned(),
            plate: "01000ABC".to_owned(),
            plate_key: kozomol_tunduk::plate_key("01000ABC"),
            unique_number: "portal-sub-7".to_owned(),
            xroad_id: "m-1".to_owned(),
        })
        .await
        .expect("subscribed");
    let Subscribed::Created(subscription) = subscribed else {
        panic!("subscribed: {subscribed:?}");
    };
    let (first, _) = issued_fines(store.as_ref(), &evidence, 2)
        .await
        .expect("fines issued");
    let number = |case: i64| {
        let store = Arc::clone(&store);
        async move {
            store
                .resolution_of_case(kozomol_core::CaseId(case))
                .await
                .expect("read")
                .expect("issued")
                .number
        }
    };
    let (notified, other) = (number(first.0).await, number(first.0 + 1).await);
    // The portal reports the fine delivered before its notice went out: the report is
    // a row of its own, and the notice still goes.
    kozomol_fines::delivery::record_portal_delivery(
        store.as_ref(),
        &notified,
        PORTAL,
        chrono::Utc::now(),
        json!({"note": "read in the citizen's cabinet"}),
        "test",
    )
    .await
    .expect("recorded");

    let (url, received) = stand_in_subscriber().await;
    let soap = kozomol_tunduk::soap::SoapClient::new(
        reqwest::Client::new(),
        url.parse().expect("url"),
        XRoadClient::parse(PROVIDER).expect("client"),
        1 << 20,
    );
    let worker = DeliveryWorker::new(
        DeliveryConfig::new("notices", "http://kozomol.test"),
        Arc::clone(&evidence),
    )
    .expect("worker")
    .with_sender(Arc::new(SubscriberNotifier::new(
        soap,
        vec![portal_subscriber()],
        std::time::Duration::from_secs(5),
    )));
    let report = worker.run_once(store.as_ref()).await.expect("a pass");
    assert_eq!((report.sent, report.failed), (1, 0), "{report:?}");

    let bodies = received.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1);
    for part in [
        "<uniqueNumber>portal-sub-7</uniqueNumber>",
        "<pin>21212190000000</pin>",
        "<plate>01000ABC</plate>",
        &format!("<protocolNumber>{notified}</protocolNumber>"),
        "<id:serviceCode>violationNotification</id:serviceCode>",
    ] {
        assert!(bodies[0].contains(part), "{part} in {}", bodies[0]);
    }
    let portal = |deliveries: Vec<kozomol_store::DeliveryRecord>| {
        deliveries
            .into_iter()
            .filter(|d| d.channel == kozomol_core::DeliveryChannel::Portal)
            .collect::<Vec<_>>()
    };
    let mut rows: Vec<(String, kozomol_core::DeliveryState)> =
        portal(store.deliveries(&notified).await.expect("read"))
            .into_iter()
            .map(|d| (d.address, d.state))
            .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rows,
        [
            (PORTAL.to_owned(), kozomol_core::DeliveryState::Delivered),
            (
                kozomol_store::notice_address(subscription.id),
                kozomol_core::DeliveryState::Sent
            ),
        ]
    );
    assert!(
        portal(store.deliveries(&other).await.expect("read")).is_empty(),
        "another owner's fine is no notice"
    );
}

/// Requests written by hand: any prefixes (namespaces are read by URI), and what the
/// endpoint refuses before any operation runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_reads_by_namespace_and_answers_only_the_security_server() {
    let provider = Provider::start(vec!["127.0.0.1".parse().expect("ip")]).await;
    let http = reqwest::Client::new();
    let number = provider.number(1).await;
    let envelope = |service_code: &str, body: &str| {
        format!(
            r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="http://x-road.eu/xsd/xroad.xsd" xmlns:k="http://x-road.eu/xsd/identifiers" xmlns:z="http://tunduk-seccurity-infocom.x-road.fi/producer"><e:Header><h:client k:objectType="SUBSYSTEM"><k:xRoadInstance>central-server</k:xRoadInstance><k:memberClass>COM</k:memberClass><k:memberCode>10000001</k:memberCode><k:subsystemCode>payments</k:subsystemCode></h:client><h:service k:objectType="SERVICE"><k:xRoadInstance>central-server</k:xRoadInstance><k:memberClass>GOV</k:memberClass><k:memberCode>70000001</k:memberCode><k:subsystemCode>smartcity</k:subsystemCode><k:serviceCode>{service_code}</k:serviceCode><k:serviceVersion>v1</k:serviceVersion></h:service><h:id>raw-1</h:id><h:protocolVersion>4.0</h:protocolVersion></e:Header><e:Body>{body}</e:Body></e:Envelope>"#
        )
    };
    let post = |text: String| {
        http.post(&provider.url)
            .header("content-type", "text/xml; charset=utf-8")
            .body(text)
            .send()
    };
    let reply = post(envelope(
        "protocolInfo",
        &format!("<z:protocolInfo><z:request><z:protocol>{number}</z:protocol></z:request></z:protocolInfo>"),
    ))
    .await
    .expect("sent");
    assert_eq!(reply.status(), 200);
    let text = reply.text().await.expect("body");
    assert!(
        text.contains("<h:id>raw-1</h:id>"),
        "the header is echoed: {text}"
    );
    assert!(
        text.contains("<paymentMessage>Не оплачено</paymentMessage>"),
        "{text}"
    );

    // `paymentNumber` is an `xsd:long`: a plus sign or a leading zero names the same
    // code, not an unknown one.
    let code = &provider.codes[1];
    for written in [format!("+{code}"), format!("0{code}")] {
        let reply = post(envelope(
            "setPaymentLegal",
            &format!("<z:setPaymentLegal><z:request><z:status>0</z:status><z:sum>2500.00</z:sum><z:paymentNumber>{written}</z:paymentNumber><z:paymentDate>2026-03-12T15:30:00</z:paymentDate></z:request></z:setPaymentLegal>"),
        ))
        .await
        .expect("sent");
        let text = reply.text().await.expect("body");
        assert!(
            text.contains("<response><status>200</status>"),
            "{written}: {text}"
        );
    }

    for (body, service_code, expected) in [
        (
            "<z:protocolInfo><z:request/></z:protocolInfo>",
            "protocolInfo",
            "Client.InvalidRequest",
        ),
        (
            "<protocolInfo><request><protocol>1</protocol></request></protocolInfo>",
            "protocolInfo",
            "Client.InvalidBody",
        ),
        (
            "<z:protocolInfo><z:request><z:protocol>1</z:protocol></z:request></z:protocolInfo>",
            "getViolationsByPlate",
            "Client.InvalidBody",
        ),
        (
            "<z:x/>",
            "noSuchOperation",
            "Server.ServerProxy.UnknownService",
        ),
    ] {
        let reply = post(envelope(service_code, body)).await.expect("sent");
        assert_eq!(reply.status(), 500);
        let text = reply.text().await.expect("body");
        assert!(
            text.contains(&format!("<faultcode>{expected}</faultcode>")),
            "{body}: {text}"
        );
    }

    // Another address than the security server's gets nothing.
    let elsewhere = Provider::start(vec!["10.0.0.1".parse().expect("ip")]).await;
    let reply = http
        .post(&elsewhere.url)
        .header("content-type", "text/xml; charset=utf-8")
        .body(envelope("protocolInfo", "<z:protocolInfo/>"))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), 403);
    assert!(reply
        .text()
        .await
        .expect("body")
        .contains("Client.AccessDenied"));
}
