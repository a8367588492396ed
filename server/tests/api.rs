//! The HTTP API against a real SQLite store and evidence folder in a temporary
//! directory, called in-process through `tower::ServiceExt::oneshot`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::SigningKey;
use kozomol_core::messages::{CameraConfig, LaneSpeedLimit};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseState, DeadLetterReason, EventId, FrameRole, Role, Site,
    ViolationKind,
};
use kozomol_ingest::IngestMetrics;
use kozomol_server::api::{router, AppState, CameraConfigPublisher};
use kozomol_server::auth::{create_demo_accounts, DemoCredentials};
use kozomol_store::{
    CameraRegistration, EvidenceStore, FrameLocation, NewCase, NewDeadLetter, NewFrame, Store,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tower::ServiceExt;

const BASE: &str = "https://kozomol.test.kg/";

/// Captures what the API hands to the broker.
#[derive(Default)]
struct RecordingPublisher {
    published: Mutex<Vec<(CameraId, Vec<u8>)>>,
}

#[async_trait]
impl CameraConfigPublisher for RecordingPublisher {
    async fn publish_config(&self, camera: &CameraId, signed: Vec<u8>) -> Result<(), String> {
        self.published
            .lock()
            .expect("publisher lock")
            .push((camera.clone(), signed));
        Ok(())
    }
}

struct Harness {
    dir: TempDir,
    app: Router,
    store: Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
    state: AppState,
    creds: DemoCredentials,
    publisher: Arc<RecordingPublisher>,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("kozomol.db");
        let store = kozomol_store::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("sqlite store opens");
        let evidence = Arc::new(open_evidence(&dir.path().join("evidence")));
        let publisher = Arc::new(RecordingPublisher::default());
        let state = AppState::new(
            store.clone(),
            evidence.clone(),
            Arc::new(IngestMetrics::default()),
            BASE,
            Arc::new(SigningKey::from_bytes(&[7; 32])),
        )
        .with_config_publisher(publisher.clone());
        state.ready.store(true, Ordering::Release);
        let creds = create_demo_accounts(store.as_ref(), dir.path())
            .await
            .expect("demo accounts");
        Harness {
            app: router(state.clone()),
            dir,
            store,
            evidence,
            state,
            creds,
            publisher,
        }
    }

    fn token(&self, role: Role) -> &str {
        &self.creds.for_role(role).token
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let headers: Vec<(header::HeaderName, String)> = token
            .map(|token| (header::AUTHORIZATION, format!("Bearer {token}")))
            .into_iter()
            .collect();
        self.call_with(method, uri, &headers, body).await
    }

    /// A request with `headers` of the caller's choosing (cookies, anti-forgery tokens).
    async fn call_with(
        &self,
        method: Method,
        uri: &str,
        headers: &[(header::HeaderName, String)],
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request builds");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body reads");
        Answer {
            status,
            headers,
            bytes: bytes.to_vec(),
        }
    }

    /// `POST /api/v1/auth/token` with a login and password.
    async fn log_in(&self, login: &str, password: String) -> Answer {
        self.call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"login": login, "password": password})),
        )
        .await
    }

    async fn get(&self, uri: &str, role: Role) -> Answer {
        self.call(Method::GET, uri, Some(self.token(role)), None)
            .await
    }

    async fn register_camera(&self, n: u8) -> CameraId {
        let id = CameraId::parse(&format!("cam-{n:03}")).expect("camera id");
        self.store
            .register_camera(&registration(&id, n))
            .await
            .expect("camera registers");
        id
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "{} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem answer with this status and code.
    fn problem(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(self.content_type(), "application/problem+json");
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status.as_u16());
        assert!(
            body["title"].is_string() && body["detail"].is_string() && body["type"].is_string()
        );
        body
    }
}

fn open_evidence(dir: &Path) -> EvidenceStore {
    EvidenceStore::open(dir, "api-test").expect("evidence folder opens")
}

/// Writes frames durably and returns where they lie.
fn store_frames(evidence: &EvidenceStore, frames: &[Vec<u8>]) -> Vec<FrameLocation> {
    let batch: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    evidence.append_batch(&batch).expect("frames append")
}

fn camera_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The `n` of a camera `Harness::register_camera(n)` registered (`cam-00n`).
fn camera_number(id: &CameraId) -> u8 {
    id.to_string()
        .trim_start_matches("cam-")
        .parse()
        .expect("a harness camera")
}

fn registration(id: &CameraId, n: u8) -> CameraRegistration {
    CameraRegistration {
        camera_id: id.clone(),
        public_key: camera_key(n).verifying_key().to_bytes(),
        device_serial: format!("KRIS-P-{n:05}"),
        certificate: CalibrationCertificate {
            number: format!("KG-CSM-2026-{n:04}"),
            valid_from: "2026-01-01".parse().expect("date"),
            valid_until: "2027-01-01".parse().expect("date"),
        },
        site: Site {
            id: format!("site-{n}"),
            lat_e6: 42_876_000,
            lon_e6: 74_604_000,
            address: "проспект Чуй, Бишкек".into(),
            direction: "eastbound".into(),
            lane: 2,
        },
    }
}

fn registration_json(id: &str, n: u8, certificate: &str) -> Value {
    json!({
        "camera_id": id,
        "public_key": hex::encode(camera_key(n).verifying_key().to_bytes()),
        "device_serial": format!("KRIS-P-{n:05}"),
        "certificate": {"number": certificate, "valid_from": "2026-01-01", "valid_until": "2027-01-01"},
        "site": {"id": "site-chuy", "lat_e6": 42876000, "lon_e6": 74604000,
                 "address": "проспект Чуй, Бишкек", "direction": "eastbound", "lane": 2}
    })
}

/// A JPEG-looking frame unique to (case, role).
fn frame_bytes(seed: u32, role: u8) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xd8];
    bytes.extend((0..2048u32).map(|i| (i.wrapping_mul(31) ^ seed ^ u32::from(role)) as u8));
    bytes.extend([role, 0xff, 0xd9]);
    bytes
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0)
        .single()
        .expect("valid time")
        + chrono::Duration::minutes(i64::from(minute))
}

/// Records one case with two frames; returns its frames' bytes.
async fn record_case(
    h: &Harness,
    camera: &CameraId,
    seed: u32,
    plate: &str,
    captured_at: DateTime<Utc>,
) -> (kozomol_core::CaseId, Vec<Vec<u8>>) {
    record_case_flagged(h, camera, seed, plate, captured_at, None).await
}

/// [`record_case`], flagged not enforceable for `why` where it is given.
async fn record_case_flagged(
    h: &Harness,
    camera: &CameraId,
    seed: u32,
    plate: &str,
    captured_at: DateTime<Utc>,
    not_enforceable: Option<&str>,
) -> (kozomol_core::CaseId, Vec<Vec<u8>>) {
    let frames = vec![frame_bytes(seed, 0), frame_bytes(seed, 1)];
    let locations = store_frames(&h.evidence, &frames);
    let event_id = EventId::new_v7();
    let case = NewCase {
        event_id,
        camera_id: camera.clone(),
        captured_at,
        kind: ViolationKind::Speeding,
        fingerprint: Sha256::digest(format!("event {event_id}")).into(),
        // The site the camera stood at, as a signed event names it.
        event: json!({"event_id": event_id.to_string(), "kind": "speeding", "speed_kmh": 97,
                      "site": registration(camera, camera_number(camera)).site}),
        camera_plate: Some(plate.to_owned()),
        enforceable: not_enforceable.is_none(),
        enforceability_note: not_enforceable.map(str::to_owned),
        trace_parent: None,
        frames: [FrameRole::Overview, FrameRole::Plate]
            .into_iter()
            .zip(frames.iter().zip(locations))
            .map(|(role, (bytes, location))| NewFrame {
                role,
                sha256: Sha256::digest(bytes).into(),
                location,
            })
            .collect(),
    };
    let written = h
        .store
        .record_cases(&[case], "test")
        .await
        .expect("case records");
    match written.as_slice() {
        [kozomol_store::CaseWrite::Created(id)] => (*id, frames),
        other => panic!("expected one created case, got {other:?}"),
    }
}

/// Every route, with the roles allowed on it; `{id}`-style paths are templates as the
/// OpenAPI document spells them, `uri` a concrete request.
struct RouteCase {
    method: Method,
    template: &'static str,
    uri: &'static str,
    roles: &'static [Role],
    body: Option<fn() -> Value>,
}

const ALL: &[Role] = &Role::ALL;
const CASES: &[Role] = &[Role::Reviewer, Role::Supervisor, Role::Admin, Role::Auditor];
const DEAD: &[Role] = &[Role::Supervisor, Role::Admin, Role::Auditor];
const ACCOUNT_READ: &[Role] = &[Role::Admin, Role::Auditor];
const ADMIN: &[Role] = &[Role::Admin];
const REVIEW: &[Role] = &[Role::Reviewer, Role::Supervisor];
const DESK_OFFICERS: &[Role] = &[Role::Reviewer, Role::Supervisor, Role::Admin];
const LIST_KEEPERS: &[Role] = &[Role::Supervisor, Role::Admin];

fn secured_routes() -> Vec<RouteCase> {
    fn r(
        method: Method,
        template: &'static str,
        uri: &'static str,
        roles: &'static [Role],
    ) -> RouteCase {
        RouteCase {
            method,
            template,
            uri,
            roles,
            body: None,
        }
    }
    vec![
        r(
            Method::GET,
            "/api/v1/openapi.json",
            "/api/v1/openapi.json",
            ALL,
        ),
        r(
            Method::GET,
            "/api/v1/accounts",
            "/api/v1/accounts",
            ACCOUNT_READ,
        ),
        RouteCase {
            body: Some(|| json!({"login": "x", "role": "nope", "password": "short"})),
            ..r(Method::POST, "/api/v1/accounts", "/api/v1/accounts", ADMIN)
        },
        RouteCase {
            body: Some(|| json!({"full_name": "", "badge": ""})),
            ..r(
                Method::PUT,
                "/api/v1/accounts/{login}/officer",
                "/api/v1/accounts/nobody/officer",
                ADMIN,
            )
        },
        RouteCase {
            body: Some(|| json!({"role": "nope"})),
            ..r(
                Method::PATCH,
                "/api/v1/accounts/{login}",
                "/api/v1/accounts/nobody",
                ADMIN,
            )
        },
        RouteCase {
            body: Some(|| json!({"current_password": "x", "new_password": "short"})),
            ..r(
                Method::PUT,
                "/api/v1/auth/password",
                "/api/v1/auth/password",
                ALL,
            )
        },
        r(Method::GET, "/api/v1/server-key", "/api/v1/server-key", ALL),
        r(Method::GET, "/api/v1/dashboard", "/api/v1/dashboard", ALL),
        r(Method::GET, "/api/v1/cameras", "/api/v1/cameras", ALL),
        RouteCase {
            body: Some(|| registration_json("cam-matrix", 9, "KG-9")),
            ..r(Method::POST, "/api/v1/cameras", "/api/v1/cameras", ADMIN)
        },
        r(
            Method::GET,
            "/api/v1/cameras/{id}",
            "/api/v1/cameras/cam-001",
            ALL,
        ),
        RouteCase {
            body: Some(|| json!({"version": 1, "issued_at_ms": 0, "speed_limits": []})),
            ..r(
                Method::PUT,
                "/api/v1/cameras/{id}/config",
                "/api/v1/cameras/cam-001/config",
                ADMIN,
            )
        },
        r(Method::GET, "/api/v1/cases", "/api/v1/cases", CASES),
        r(Method::GET, "/api/v1/cases/{id}", "/api/v1/cases/1", CASES),
        r(
            Method::GET,
            "/api/v1/cases/{id}/frames/{n}",
            "/api/v1/cases/1/frames/0",
            CASES,
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/plate-crop",
            "/api/v1/cases/1/plate-crop",
            CASES,
        ),
        RouteCase {
            body: Some(|| json!({"decision": "approve"})),
            ..r(
                Method::POST,
                "/api/v1/cases/{id}/review",
                "/api/v1/cases/1/review",
                REVIEW,
            )
        },
        r(
            Method::GET,
            "/api/v1/cases/{id}/reviews",
            "/api/v1/cases/1/reviews",
            CASES,
        ),
        r(
            Method::GET,
            "/api/v1/cases/{id}/appeals",
            "/api/v1/cases/1/appeals",
            CASES,
        ),
        RouteCase {
            body: Some(|| json!({"appellant": "А. Асанов", "grounds": "не мой автомобиль"})),
            ..r(
                Method::POST,
                "/api/v1/cases/{id}/appeals",
                "/api/v1/cases/1/appeals",
                DESK_OFFICERS,
            )
        },
        RouteCase {
            body: Some(|| json!({"decision": "rejected", "note": "без оснований"})),
            ..r(
                Method::POST,
                "/api/v1/appeals/{id}/decision",
                "/api/v1/appeals/1/decision",
                &[Role::Supervisor],
            )
        },
        r(
            Method::GET,
            "/api/v1/appeals/{id}/attachments/{n}",
            "/api/v1/appeals/1/attachments/0",
            CASES,
        ),
        RouteCase {
            body: Some(|| {
                json!({"device_serial": "KRIS-P-1", "captured_from": "2026-01-01T00:00:00Z",
                       "captured_until": "2026-01-02T00:00:00Z", "reason": "поверка истекла"})
            }),
            ..r(
                Method::POST,
                "/api/v1/bulk-voids",
                "/api/v1/bulk-voids",
                &[Role::Supervisor, Role::Admin],
            )
        },
        r(
            Method::GET,
            "/api/v1/refund-requests",
            "/api/v1/refund-requests",
            &[Role::Finance, Role::Admin, Role::Auditor],
        ),
        RouteCase {
            body: Some(|| json!({"outcome": "refunded", "reference": "TR-1"})),
            ..r(
                Method::POST,
                "/api/v1/refund-requests/{id}/settlement",
                "/api/v1/refund-requests/1/settlement",
                &[Role::Finance],
            )
        },
        r(
            Method::GET,
            "/api/v1/payment-callbacks",
            "/api/v1/payment-callbacks",
            &[Role::Finance, Role::Admin, Role::Auditor],
        ),
        r(
            Method::POST,
            "/api/v1/statements",
            "/api/v1/statements?format=csv&account=KG1",
            &[Role::Finance],
        ),
        r(
            Method::GET,
            "/api/v1/statement-lines",
            "/api/v1/statement-lines",
            &[Role::Finance, Role::Admin, Role::Auditor],
        ),
        RouteCase {
            body: Some(|| json!({"action": "dismiss", "note": "x"})),
            ..r(
                Method::POST,
                "/api/v1/statement-lines/{id}/resolution",
                "/api/v1/statement-lines/1/resolution",
                &[Role::Finance],
            )
        },
        r(
            Method::GET,
            "/api/v1/payment-totals",
            "/api/v1/payment-totals?from=2026-03-01&to=2026-03-02",
            &[Role::Finance, Role::Admin, Role::Auditor],
        ),
        r(
            Method::GET,
            "/api/v1/resolutions/{number}",
            "/api/v1/resolutions/KG-BSK-2026-0000001",
            CASES,
        ),
        r(
            Method::GET,
            "/api/v1/resolutions/{number}/deliveries",
            "/api/v1/resolutions/KG-BSK-2026-0000001/deliveries",
            CASES,
        ),
        RouteCase {
            body: Some(
                || json!({"kind": "return_receipt", "delivered_at": "2026-03-12T10:00:00Z"}),
            ),
            ..r(
                Method::POST,
                "/api/v1/resolutions/{number}/deliveries",
                "/api/v1/resolutions/KG-BSK-2026-0000001/deliveries",
                DESK_OFFICERS,
            )
        },
        RouteCase {
            body: Some(|| json!({"channel": "sms", "address": "+996555123456"})),
            ..r(
                Method::POST,
                "/api/v1/owners/{owner_id}/contacts",
                "/api/v1/owners/21212198000123/contacts",
                DESK_OFFICERS,
            )
        },
        r(
            Method::GET,
            "/api/v1/resolutions/{number}/pdf",
            "/api/v1/resolutions/KG-BSK-2026-0000001/pdf",
            CASES,
        ),
        r(
            Method::GET,
            "/api/v1/resolutions/{number}/nominations",
            "/api/v1/resolutions/KG-BSK-2026-0000001/nominations",
            CASES,
        ),
        RouteCase {
            body: Some(|| {
                json!({"kind": "stolen", "police_report": "КУСП-1",
                       "reported_at": "2026-01-04T09:00:00Z", "statement": "угнан"})
            }),
            ..r(
                Method::POST,
                "/api/v1/resolutions/{number}/nominations",
                "/api/v1/resolutions/KG-BSK-2026-0000001/nominations",
                DESK_OFFICERS,
            )
        },
        r(
            Method::GET,
            "/api/v1/dead-letters",
            "/api/v1/dead-letters",
            DEAD,
        ),
        r(
            Method::GET,
            "/api/v1/dead-letters/{id}/raw",
            "/api/v1/dead-letters/1/raw",
            DEAD,
        ),
        r(
            Method::GET,
            "/api/v1/print-batches",
            "/api/v1/print-batches",
            DESK_OFFICERS,
        ),
        r(
            Method::GET,
            "/api/v1/print-batches/{id}/pdf",
            "/api/v1/print-batches/1/pdf",
            DESK_OFFICERS,
        ),
        r(
            Method::POST,
            "/api/v1/print-batches/{id}/printed",
            "/api/v1/print-batches/1/printed",
            DESK_OFFICERS,
        ),
        r(
            Method::GET,
            "/api/v1/exemptions",
            "/api/v1/exemptions",
            CASES,
        ),
        RouteCase {
            body: Some(
                || json!({"pattern": "CMD*", "category": "diplomatic", "note": "нота МИД 12/2026"}),
            ),
            ..r(
                Method::POST,
                "/api/v1/exemptions",
                "/api/v1/exemptions",
                LIST_KEEPERS,
            )
        },
        r(
            Method::DELETE,
            "/api/v1/exemptions/{id}",
            "/api/v1/exemptions/1",
            LIST_KEEPERS,
        ),
        r(Method::GET, "/api/v1/hot-list", "/api/v1/hot-list", CASES),
        RouteCase {
            body: Some(|| json!({"plate": "01KG666XYZ", "reason": "stolen"})),
            ..r(
                Method::POST,
                "/api/v1/hot-list",
                "/api/v1/hot-list",
                LIST_KEEPERS,
            )
        },
        r(
            Method::DELETE,
            "/api/v1/hot-list/{plate}",
            "/api/v1/hot-list/01KG666XYZ",
            LIST_KEEPERS,
        ),
        r(Method::GET, "/api/v1/alerts", "/api/v1/alerts", CASES),
        r(
            Method::POST,
            "/api/v1/officer-violations",
            "/api/v1/officer-violations",
            DESK_OFFICERS,
        ),
        r(Method::GET, "/api/v1/accidents", "/api/v1/accidents", CASES),
        r(
            Method::POST,
            "/api/v1/accidents",
            "/api/v1/accidents",
            DESK_OFFICERS,
        ),
        r(
            Method::GET,
            "/api/v1/accidents/{id}",
            "/api/v1/accidents/1",
            CASES,
        ),
        r(
            Method::GET,
            "/api/v1/accidents/{id}/files/{n}",
            "/api/v1/accidents/1/files/0",
            CASES,
        ),
        r(
            Method::POST,
            "/api/v1/accidents/{id}/moves",
            "/api/v1/accidents/1/moves",
            DESK_OFFICERS,
        ),
        r(
            Method::POST,
            "/api/v1/alerts/{id}/acknowledge",
            "/api/v1/alerts/1/acknowledge",
            &[Role::Supervisor],
        ),
    ]
}

/// Routes anyone may call: method, template, a URI.
fn public_routes() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (Method::GET, "/healthz", "/healthz"),
        (Method::GET, "/readyz", "/readyz"),
        (Method::GET, "/metrics", "/metrics"),
        (Method::POST, "/api/v1/auth/token", "/api/v1/auth/token"),
        (
            Method::POST,
            "/api/v1/resolutions/{number}/verify",
            "/api/v1/resolutions/KG-BSK-2026-0000001/verify",
        ),
        (
            Method::GET,
            "/api/v1/resolution-keys",
            "/api/v1/resolution-keys",
        ),
        (Method::POST, "/api/v1/auth/session", "/api/v1/auth/session"),
        (
            Method::POST,
            "/api/v1/public/lookups",
            "/api/v1/public/lookups",
        ),
        (
            Method::GET,
            "/api/v1/public/fines/{number}",
            "/api/v1/public/fines/KG-BSK-2026-0000001?grant=1.00",
        ),
        (
            Method::GET,
            "/api/v1/public/fines/{number}/frames/{n}",
            "/api/v1/public/fines/KG-BSK-2026-0000001/frames/0?grant=1.00",
        ),
        (
            Method::GET,
            "/api/v1/public/fines/{number}/pdf",
            "/api/v1/public/fines/KG-BSK-2026-0000001/pdf?grant=1.00",
        ),
        (
            Method::GET,
            "/api/v1/public/fines/{number}/qr.svg",
            "/api/v1/public/fines/KG-BSK-2026-0000001/qr.svg?grant=1.00",
        ),
        (
            Method::POST,
            "/api/v1/public/fines/{number}/contacts",
            "/api/v1/public/fines/KG-BSK-2026-0000001/contacts?grant=1.o.00",
        ),
        (
            Method::POST,
            "/api/v1/public/fines/{number}/contacts/{handle}",
            "/api/v1/public/fines/KG-BSK-2026-0000001/contacts/ab12?grant=1.o.00",
        ),
        (
            Method::POST,
            "/api/v1/public/fines/{number}/appeals",
            "/api/v1/public/fines/KG-BSK-2026-0000001/appeals?grant=1.00",
        ),
        (
            Method::GET,
            "/api/v1/open-data/violations",
            "/api/v1/open-data/violations",
        ),
        (Method::GET, "/open-data", "/open-data"),
        (Method::GET, "/", "/"),
        (Method::GET, "/v/{number}", "/v/KG-BSK-2026-0000001"),
        (Method::GET, "/console", "/console"),
        (Method::GET, "/console/login", "/console/login"),
        (Method::GET, "/console/oidc/login", "/console/oidc/login"),
        (
            Method::GET,
            "/console/oidc/callback",
            "/console/oidc/callback?code=x&state=y",
        ),
        (Method::GET, "/assets/{file}", "/assets/portal.js"),
        (Method::POST, "/xroad/soap", "/xroad/soap"),
    ]
}

/// Routes of a console session (its cookie): method, template, a URI.
fn session_routes() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (Method::GET, "/api/v1/auth/session", "/api/v1/auth/session"),
        (
            Method::DELETE,
            "/api/v1/auth/session",
            "/api/v1/auth/session",
        ),
        (Method::GET, "/console/queue", "/console/queue"),
        (Method::GET, "/console/cameras", "/console/cameras"),
        (
            Method::GET,
            "/console/dead-letters",
            "/console/dead-letters",
        ),
        (Method::GET, "/console/accounts", "/console/accounts"),
        (Method::GET, "/console/dashboard", "/console/dashboard"),
        (Method::GET, "/console/finance", "/console/finance"),
        (Method::GET, "/console/reports", "/console/reports"),
    ]
}

/// Routes of payment providers, signed with their secret instead of a bearer token:
/// method, template, a URI.
fn provider_routes() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (
            Method::POST,
            "/api/v1/providers/{provider}/payment-intents",
            "/api/v1/providers/bank/payment-intents",
        ),
        (
            Method::GET,
            "/api/v1/providers/{provider}/payment-intents/{id}",
            "/api/v1/providers/bank/payment-intents/pi_1",
        ),
        (
            Method::POST,
            "/api/v1/providers/{provider}/payment-intents/{id}/cancel",
            "/api/v1/providers/bank/payment-intents/pi_1/cancel",
        ),
        (
            Method::POST,
            "/api/v1/providers/{provider}/callbacks",
            "/api/v1/providers/bank/callbacks",
        ),
    ]
}

#[tokio::test]
async fn every_route_refuses_missing_unknown_and_wrong_role_tokens() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    record_case(&h, &camera, 1, "01123ABC", at(0)).await;
    let unknown = kozomol_server::auth::ApiToken::generate()
        .expect("token")
        .reveal();

    for route in secured_routes() {
        let body = route.body.map(|b| b());
        let what = format!("{} {}", route.method, route.uri);

        let none = h
            .call(route.method.clone(), route.uri, None, body.clone())
            .await;
        none.problem(StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(
            none.headers
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..]),
            "{what}"
        );
        h.call(
            route.method.clone(),
            route.uri,
            Some(&unknown),
            body.clone(),
        )
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");
        h.call(
            route.method.clone(),
            route.uri,
            Some("not-a-token"),
            body.clone(),
        )
        .await
        .problem(StatusCode::UNAUTHORIZED, "unauthenticated");

        for role in Role::ALL {
            let answer = h
                .call(
                    route.method.clone(),
                    route.uri,
                    Some(h.token(role)),
                    body.clone(),
                )
                .await;
            if route.roles.contains(&role) {
                assert!(
                    answer.status != StatusCode::UNAUTHORIZED
                        && answer.status != StatusCode::FORBIDDEN,
                    "{what} as {role}: {} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.bytes)
                );
                if answer.status == StatusCode::NOT_FOUND {
                    assert_ne!(
                        answer.json()["detail"],
                        "route not found",
                        "{what} is routed"
                    );
                }
            } else {
                let problem = answer.problem(StatusCode::FORBIDDEN, "forbidden");
                assert!(
                    problem["detail"]
                        .as_str()
                        .unwrap_or("")
                        .contains(role.as_str()),
                    "{what}"
                );
            }
        }
    }

    // A provider's route takes no bearer token, staff's or any: only its signature.
    for (method, _, path) in provider_routes() {
        let body = (method == Method::POST).then(|| json!({}));
        let answer = h
            .call(method.clone(), path, Some(h.token(Role::Admin)), body)
            .await;
        answer.problem(StatusCode::UNAUTHORIZED, "signature_invalid");
    }

    for (method, _, path) in public_routes() {
        let body = (method == Method::POST).then(|| json!({"login": "nobody", "password": "x"}));
        let answer = h.call(method.clone(), path, None, body).await;
        // Public, but a fine's portal routes want its lookup's grant, and the bus's
        // endpoint its security server's address.
        let refusal_of_its_own = path.starts_with("/api/v1/public/fines/")
            && answer.json()["code"] == "grant_required"
            || path == "/xroad/soap";
        assert!(
            refusal_of_its_own
                || answer.status != StatusCode::FORBIDDEN
                    && (answer.status != StatusCode::UNAUTHORIZED
                        || answer.json()["code"] == "invalid_credentials"),
            "{method} {path}: {}",
            answer.status
        );
    }
}

#[tokio::test]
async fn openapi_describes_every_route_with_its_roles() {
    let h = Harness::new().await;
    let doc = h.get("/api/v1/openapi.json", Role::Reviewer).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], BASE.trim_end_matches('/'));
    let paths = doc["paths"].as_object().expect("paths");

    let mut routed = BTreeSet::new();
    for route in secured_routes() {
        let method = route.method.as_str().to_lowercase();
        let op = &paths
            .get(route.template)
            .unwrap_or_else(|| panic!("{} missing from openapi", route.template))[&method];
        assert!(
            op.is_object(),
            "{method} {} missing from openapi",
            route.template
        );
        assert_eq!(
            op["security"],
            json!([{"bearer": []}]),
            "{}",
            route.template
        );
        let roles: Vec<&str> = route.roles.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            op["x-kozomol-roles"],
            json!(roles),
            "{method} {}",
            route.template
        );
        for status in ["401", "403"] {
            assert!(
                op["responses"][status].is_object(),
                "{method} {} {status}",
                route.template
            );
        }
        routed.insert((method, route.template.to_owned()));
    }
    for (method, path, _) in public_routes() {
        let method = method.as_str().to_lowercase();
        let op = &paths[path][&method];
        assert!(op.is_object(), "{method} {path} missing from openapi");
        assert_eq!(op["security"], json!([]), "{path} is public");
        routed.insert((method, path.to_owned()));
    }
    for (method, path, _) in session_routes() {
        let method = method.as_str().to_lowercase();
        let op = &paths[path][&method];
        assert!(op.is_object(), "{method} {path} missing from openapi");
        assert_eq!(op["security"], json!([{"session": []}]), "{path}");
        routed.insert((method, path.to_owned()));
    }
    for (method, path, _) in provider_routes() {
        let method = method.as_str().to_lowercase();
        let op = &paths[path][&method];
        assert!(op.is_object(), "{method} {path} missing from openapi");
        assert_eq!(
            op["security"],
            json!([{"providerSignature": []}]),
            "{path} is signed"
        );
        assert!(op["responses"]["401"].is_object(), "{method} {path} 401");
        routed.insert((method, path.to_owned()));
    }

    // Every path the router serves is described (read from the router's own source;
    // `{*file}` is OpenAPI's `{file}`).
    let router_source = include_str!("../src/api/mod.rs");
    for piece in router_source.split(".route(").skip(1) {
        let path = piece
            .split('"')
            .nth(1)
            .expect("a route's path")
            .replace("{*", "{");
        assert!(
            paths.contains_key(&path),
            "{path} is routed but not in openapi"
        );
    }

    // And nothing in the document that is not routed (every entry is exercised above).
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(documented, routed);

    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().expect("ref name");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test]
async fn cameras_register_validate_update_and_list() {
    let h = Harness::new().await;

    let created = h
        .call(
            Method::POST,
            "/api/v1/cameras",
            Some(h.token(Role::Admin)),
            Some(registration_json("bishkek-chuy-001", 3, "KG-CSM-1")),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.bytes)
    );
    assert_eq!(
        created
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("https://kozomol.test.kg/api/v1/cameras/bishkek-chuy-001")
    );
    let body = created.json();
    assert_eq!(
        body["public_key"],
        hex::encode(camera_key(3).verifying_key().to_bytes())
    );

    // The same camera again, with a renewed certificate: updated, not duplicated.
    let mut renewed = registration_json("bishkek-chuy-001", 3, "KG-CSM-2");
    renewed["certificate"]["valid_from"] = json!("2027-01-02");
    renewed["certificate"]["valid_until"] = json!("2028-01-01");
    let again = h
        .call(
            Method::POST,
            "/api/v1/cameras",
            Some(h.token(Role::Admin)),
            Some(renewed),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);

    let list = h.get("/api/v1/cameras", Role::Finance).await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    let camera = &items[0];
    assert_eq!(camera["camera_id"], "bishkek-chuy-001");
    let numbers: Vec<&str> = camera["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .map(|c| c["number"].as_str().expect("number"))
        .collect();
    assert_eq!(numbers, ["KG-CSM-1", "KG-CSM-2"]);
    assert_eq!(camera["site"]["lane"], 2);
    assert_eq!(camera["online"], false);
    assert!(camera["last_seen"].is_null());
    for field in ["outbox_depth", "clock_offset_ms"] {
        assert!(camera.get(field).is_some(), "{field} listed");
    }
    assert_eq!(
        camera["href"],
        "https://kozomol.test.kg/api/v1/cameras/bishkek-chuy-001"
    );

    let one = h
        .get("/api/v1/cameras/bishkek-chuy-001", Role::Reviewer)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["device_serial"], "KRIS-P-00003");
    h.get("/api/v1/cameras/nope", Role::Reviewer)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");

    // An online status gone stale (the broker lost the will that would have said the
    // camera went) reads offline, with when it arrived; a fresh one online; and one of
    // a camera whose clock runs 40 minutes ahead, arrived 10 minutes ago, is stale
    // whatever its own time says.
    let id = CameraId::parse("bishkek-chuy-001").expect("id");
    let minutes = |n: i64| Utc::now() + chrono::Duration::minutes(n);
    for (own_time, arrived, online) in [
        (minutes(-10), minutes(-10), false),
        (minutes(-1), minutes(-1), true),
        (minutes(40), minutes(-10), false),
    ] {
        h.store
            .record_camera_status(
                &id,
                &kozomol_store::CameraStatusUpdate {
                    online: true,
                    outbox_depth: Some(0),
                    clock_offset_ms: Some(3),
                    at: Some(own_time),
                    received_at: arrived,
                },
            )
            .await
            .expect("status");
        let camera = h
            .get("/api/v1/cameras/bishkek-chuy-001", Role::Reviewer)
            .await
            .json();
        assert_eq!(camera["online"], online, "{own_time} {arrived}: {camera}");
        let heard: DateTime<Utc> = camera["heard_at"]
            .as_str()
            .expect("heard from")
            .parse()
            .expect("an instant");
        assert_eq!(heard.timestamp_millis(), arrived.timestamp_millis());
    }

    // Every problem at once.
    let bad = json!({
        "camera_id": "a/b",
        "public_key": "abcd",
        "certificate": {"number": "", "valid_from": "2027-01-01", "valid_until": "2026-01-01"},
        "site": {"id": "s", "lat_e6": 95000000, "lon_e6": 0, "address": "x", "direction": "n", "lane": 0}
    });
    let refused = h
        .call(
            Method::POST,
            "/api/v1/cameras",
            Some(h.token(Role::Admin)),
            Some(bad),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: BTreeSet<&str> = refused["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    let expected: BTreeSet<&str> = [
        "camera_id",
        "public_key",
        "device_serial",
        "certificate.number",
        "certificate.valid_until",
        "site.lat_e6",
        "site.lane",
    ]
    .into_iter()
    .collect();
    assert_eq!(fields, expected);

    let not_json = h
        .call(
            Method::POST,
            "/api/v1/cameras",
            Some(h.token(Role::Admin)),
            None,
        )
        .await;
    assert_eq!(not_json.content_type(), "application/problem+json");
    assert!(not_json.status.is_client_error());
    assert_eq!(
        h.get("/api/v1/cameras", Role::Admin).await.json()["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn cases_filter_and_page_with_a_cursor() {
    let h = Harness::new().await;
    let east = h.register_camera(1).await;
    let west = h.register_camera(2).await;
    let mut ids = Vec::new();
    for i in 0..7u32 {
        let (camera, plate) = if i % 2 == 0 {
            (&east, "01123ABC")
        } else {
            (&west, "08KG777XYZ")
        };
        ids.push(record_case(&h, camera, i, plate, at(i * 10)).await.0);
    }

    // Paging by 3 visits every case once, in id order.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/cases?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = h.get(&uri, Role::Reviewer).await;
        assert_eq!(page.status, StatusCode::OK);
        let page = page.json();
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|c| c["id"].as_i64().expect("id")));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/v1/cases?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids.iter().map(|id| id.0).collect::<Vec<_>>());

    let count = |answer: Answer| {
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&answer.bytes)
        );
        answer.json()["items"].as_array().expect("items").len()
    };
    assert_eq!(
        count(h.get("/api/v1/cases?camera=cam-001", Role::Auditor).await),
        4
    );
    assert_eq!(
        count(h.get("/api/v1/cases?camera=cam-002", Role::Auditor).await),
        3
    );
    assert_eq!(
        count(
            h.get("/api/v1/cases?plate=08kg%20777xyz", Role::Auditor)
                .await
        ),
        3
    );
    assert_eq!(
        count(h.get("/api/v1/cases?state=received", Role::Auditor).await),
        7
    );
    assert_eq!(
        count(h.get("/api/v1/cases?state=paid", Role::Auditor).await),
        0
    );
    // None is issued, so none waits for a person to deliver it.
    assert_eq!(
        count(
            h.get("/api/v1/cases?undeliverable=true", Role::Auditor)
                .await
        ),
        0
    );
    assert_eq!(
        count(
            h.get("/api/v1/cases?undeliverable=false", Role::Auditor)
                .await
        ),
        7
    );
    // [08:10, 08:40): captures at 08:10, 08:20, 08:30.
    assert_eq!(
        count(
            h.get(
                "/api/v1/cases?from=2026-03-01T08:10:00Z&to=2026-03-01T08:40:00Z",
                Role::Auditor
            )
            .await
        ),
        3
    );
    // The same instant in Bishkek time.
    assert_eq!(
        count(
            h.get(
                "/api/v1/cases?from=2026-03-01T14:10:00%2B06:00&camera=cam-001",
                Role::Auditor
            )
            .await
        ),
        3
    );
    let first = h
        .get("/api/v1/cases?camera=cam-002&limit=1", Role::Supervisor)
        .await
        .json();
    assert_eq!(first["items"][0]["plate"], "08KG777XYZ");
    assert_eq!(
        first["items"][0]["href"],
        format!("https://kozomol.test.kg/api/v1/cases/{}", ids[1])
    );
    assert!(first["next"].is_string());

    let bad = h
        .get(
            "/api/v1/cases?state=lost&from=yesterday&limit=5000&cursor=zzz&camera=a%2Fb&undeliverable=maybe",
            Role::Reviewer,
        )
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    let fields: BTreeSet<&str> = bad["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        [
            "camera",
            "cursor",
            "from",
            "limit",
            "state",
            "undeliverable"
        ]
        .into_iter()
        .collect()
    );
}

#[tokio::test]
async fn case_detail_frames_and_corrupt_evidence() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let (id, frames) = record_case(&h, &camera, 42, "01123ABC", at(5)).await;

    let detail = h.get(&format!("/api/v1/cases/{id}"), Role::Reviewer).await;
    assert_eq!(detail.status, StatusCode::OK);
    let detail = detail.json();
    assert_eq!(detail["id"], id.0);
    assert_eq!(detail["state"], CaseState::Received.as_str());
    assert_eq!(detail["enforceable"], true);
    assert_eq!(detail["event"]["speed_kmh"], 97);
    let listed = detail["frames"].as_array().expect("frames");
    assert_eq!(listed.len(), 2);
    for (n, frame) in listed.iter().enumerate() {
        assert_eq!(frame["index"], n);
        assert_eq!(frame["sha256"], hex::encode(Sha256::digest(&frames[n])));
        assert_eq!(frame["len"], frames[n].len());
        assert_eq!(
            frame["url"],
            format!("https://kozomol.test.kg/api/v1/cases/{id}/frames/{n}")
        );
    }
    assert_eq!(listed[1]["role"], "plate");
    let audit = detail["audit"].as_array().expect("audit");
    assert!(!audit.is_empty(), "the recording left an audit row");
    assert_eq!(audit[0]["actor"], "test");

    for (n, bytes) in frames.iter().enumerate() {
        let served = h
            .get(&format!("/api/v1/cases/{id}/frames/{n}"), Role::Auditor)
            .await;
        assert_eq!(served.status, StatusCode::OK);
        assert_eq!(served.content_type(), "image/jpeg");
        assert_eq!(&served.bytes, bytes);
        // Personal data: no browser keeps it.
        assert_eq!(served.headers[header::CACHE_CONTROL], "no-store");
    }
    h.get(&format!("/api/v1/cases/{id}/frames/2"), Role::Auditor)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    h.get("/api/v1/cases/999999", Role::Auditor)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    h.get("/api/v1/cases/abc", Role::Auditor)
        .await
        .problem(StatusCode::BAD_REQUEST, "bad_request");

    // Flip one byte of the plate frame where it lies in its segment.
    let record = h
        .store
        .case(id)
        .await
        .expect("case reads")
        .expect("case exists");
    let location = record.frames[1].location.clone();
    let segment = find_file(&h.dir.path().join("evidence"), &location.segment);
    let mut bytes = std::fs::read(&segment).expect("segment reads");
    let target = location.offset as usize + 10;
    bytes[target] ^= 0x55;
    std::fs::write(&segment, &bytes).expect("segment writes");

    let corrupt = h
        .get(&format!("/api/v1/cases/{id}/frames/1"), Role::Reviewer)
        .await;
    corrupt.problem(StatusCode::INTERNAL_SERVER_ERROR, "evidence_corrupt");
    let tampered =
        &bytes[location.offset as usize..location.offset as usize + location.len as usize];
    assert!(
        !corrupt
            .bytes
            .windows(16)
            .any(|w| tampered.windows(16).any(|t| t == w)),
        "no frame bytes in the answer"
    );
    // The untouched frame is still served.
    assert_eq!(
        h.get(&format!("/api/v1/cases/{id}/frames/0"), Role::Reviewer)
            .await
            .status,
        StatusCode::OK
    );
    // Destroyed at the end of the archive period: gone, and said so.
    let overview = &record.frames[0];
    h.evidence
        .erase(
            &overview.location.segment,
            &[(overview.location.clone(), overview.sha256)],
        )
        .expect("erased");
    h.get(&format!("/api/v1/cases/{id}/frames/0"), Role::Reviewer)
        .await
        .problem(StatusCode::GONE, "evidence_destroyed");
}

/// The file named `name` somewhere under `dir`.
fn find_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let direct = dir.join(name);
    if direct.is_file() {
        return direct;
    }
    for entry in std::fs::read_dir(dir).expect("dir reads") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            let found = find_file(&path, name);
            if found.is_file() {
                return found;
            }
        }
    }
    dir.join(name)
}

#[tokio::test]
async fn dead_letters_page_without_bytes_and_serve_them_raw() {
    let h = Harness::new().await;
    let letters: Vec<NewDeadLetter> = (0..3u8)
        .map(|i| NewDeadLetter {
            received_at: at(u32::from(i)),
            topic: "kozomol/v1/cameras/cam-x/violations".into(),
            camera_id: Some("cam-x".into()),
            event_id: None,
            reason: DeadLetterReason::UnknownCamera,
            detail: format!("camera cam-x is not registered ({i})"),
            raw: vec![0xA0 + i; 100 + usize::from(i)],
            keep_bytes: None,
        })
        .collect();
    h.store
        .record_dead_letters(&letters)
        .await
        .expect("dead letters record");

    let first = h
        .get("/api/v1/dead-letters?limit=2", Role::Supervisor)
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    let items = first["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert!(items[0].get("raw").is_none(), "no bytes in the list");
    assert_eq!(items[0]["reason"], "unknown_camera");
    assert_eq!(items[0]["raw_len"], 100);
    let next = first["next"].as_str().expect("a second page");
    let second = h
        .get(
            &format!("/api/v1/dead-letters?limit=2&cursor={next}"),
            Role::Auditor,
        )
        .await
        .json();
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert!(second["next"].is_null());
    // A case cursor is not a dead-letter cursor.
    let camera = h.register_camera(1).await;
    record_case(&h, &camera, 1, "01123ABC", at(0)).await;
    record_case(&h, &camera, 2, "01123ABC", at(1)).await;
    let cases = h.get("/api/v1/cases?limit=1", Role::Admin).await.json();
    let case_cursor = cases["next"].as_str().expect("a case cursor");
    h.get(
        &format!("/api/v1/dead-letters?cursor={case_cursor}"),
        Role::Admin,
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "invalid_query");

    let last = &second["items"][0];
    let raw_url = last["raw_url"].as_str().expect("raw_url");
    let path = raw_url
        .strip_prefix(BASE.trim_end_matches('/'))
        .expect("link from base url");
    let raw = h.get(path, Role::Admin).await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.content_type(), "application/octet-stream");
    assert_eq!(raw.bytes, vec![0xA2; 102]);
    assert_eq!(raw.headers[header::CACHE_CONTROL], "no-store");
    h.get("/api/v1/dead-letters/987654/raw", Role::Admin)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");

    // Past the retention period the bytes go: the list says so, the download is gone.
    let purged = h
        .store
        .purge_personal_data(at(3), 100, "retention")
        .await
        .expect("purge");
    assert_eq!(purged.dead_letters, 3);
    let listed = h.get("/api/v1/dead-letters", Role::Admin).await.json();
    assert_eq!(listed["items"][2]["raw_kept"], 0);
    assert_eq!(listed["items"][2]["raw_len"], 102);
    h.get(path, Role::Admin)
        .await
        .problem(StatusCode::GONE, "evidence_destroyed");
}

#[tokio::test]
async fn demo_credentials_file_has_one_working_account_per_role() {
    let h = Harness::new().await;
    let path = h.dir.path().join("demo-credentials.json");
    let file: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("file written")).expect("json");
    let roles: BTreeSet<&str> = file
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(roles, Role::ALL.iter().map(|r| r.as_str()).collect());
    for role in Role::ALL {
        let entry = file[role.as_str()].as_object().expect("entry");
        let keys: BTreeSet<&str> = entry.keys().map(String::as_str).collect();
        assert_eq!(keys, ["login", "password", "token"].into_iter().collect());
        assert_eq!(entry["login"], role.as_str());
        assert!(entry["password"].as_str().expect("password").len() >= 16);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Tokens work, and the passwords log in.
    let account = h.get("/api/v1/accounts", Role::Admin).await.json();
    assert_eq!(account["items"].as_array().map(Vec::len), Some(5));
    let login = h
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"login": "auditor", "password": file["auditor"]["password"]})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let login = login.json();
    assert_eq!(login["role"], "auditor");
    let token = login["token"].as_str().expect("token");
    assert_ne!(token, h.token(Role::Auditor), "a fresh token");
    let with_new = h
        .call(Method::GET, "/api/v1/cases", Some(token), None)
        .await;
    assert_eq!(with_new.status, StatusCode::OK);

    // Idempotent: a second run reuses the same accounts and tokens.
    let again = create_demo_accounts(h.store.as_ref(), h.dir.path())
        .await
        .expect("second run");
    assert_eq!(again, h.creds);
    assert_eq!(h.store.accounts().await.expect("accounts").len(), 5);

    // A demo account an admin disabled stops the demo with a plain word of why.
    let disable = kozomol_store::AccountChange {
        disabled: Some(true),
        ..Default::default()
    };
    h.store
        .change_account("auditor", &disable, "admin")
        .await
        .expect("disabled");
    let refused = create_demo_accounts(h.store.as_ref(), h.dir.path())
        .await
        .expect_err("a disabled demo account");
    assert!(
        refused.to_string().contains("`auditor` is disabled"),
        "{refused}"
    );
}

#[tokio::test]
async fn demo_accounts_are_recreated_in_a_fresh_database_from_the_file() {
    let h = Harness::new().await;
    let fresh = kozomol_store::connect(&format!(
        "sqlite://{}",
        h.dir.path().join("other.db").display()
    ))
    .await
    .expect("second store");
    let again = create_demo_accounts(fresh.as_ref(), h.dir.path())
        .await
        .expect("recreated");
    for role in Role::ALL {
        assert_eq!(
            again.for_role(role).password,
            h.creds.for_role(role).password
        );
        let account = fresh
            .account_by_login(role.as_str())
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(account.role, role);
    }
}

#[tokio::test]
async fn login_failures_are_limited_per_login() {
    let h = Harness::new().await;
    let password = h.creds.reviewer.password.clone();
    let attempt = |login: &'static str, password: String| h.log_in(login, password);
    for _ in 0..5 {
        attempt("reviewer", "wrong password".into())
            .await
            .problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let limited = attempt("reviewer", password.clone()).await;
    limited.problem(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let retry: u64 = limited
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry));
    // Other logins are not affected; unknown logins fail like wrong passwords.
    attempt("nobody", "whatever".into())
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let supervisor = attempt("supervisor", h.creds.supervisor.password.clone()).await;
    assert_eq!(supervisor.status, StatusCode::OK);
    attempt("supervisor", String::new())
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

/// An admin disables an account (its token stops working, its login fails as a wrong
/// password does), enables it again, changes its role or sets a new password (its old
/// tokens end); the last admin in use is neither demoted nor disabled. Each holder
/// changes their own password, given the current one, and logs in again.
#[tokio::test]
async fn admins_change_and_disable_accounts_and_holders_change_their_password() {
    let h = Harness::new().await;
    let admin = h.token(Role::Admin).to_owned();
    let patch = |login: &'static str, body: Value| {
        let (h, admin) = (&h, admin.clone());
        async move {
            h.call(
                Method::PATCH,
                &format!("/api/v1/accounts/{login}"),
                Some(&admin),
                Some(body),
            )
            .await
        }
    };
    let login = |login: &'static str, password: String| h.log_in(login, password);
    let reviewer_token = h.token(Role::Reviewer).to_owned();
    let reviewer_password = h.creds.reviewer.password.clone();
    let cases = |token: String| {
        let h = &h;
        async move {
            h.call(Method::GET, "/api/v1/cases", Some(&token), None)
                .await
                .status
        }
    };
    assert_eq!(cases(reviewer_token.clone()).await, StatusCode::OK);

    let disabled = patch("reviewer", json!({"disabled": true})).await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(disabled.json()["disabled"], true);
    assert_eq!(
        cases(reviewer_token.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    login("reviewer", reviewer_password.clone())
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let enabled = patch("reviewer", json!({"disabled": false})).await;
    assert_eq!(enabled.json()["disabled"], false);
    // Disabling ended its tokens: the old one stays dead; a new login works.
    assert_eq!(cases(reviewer_token).await, StatusCode::UNAUTHORIZED);
    let fresh = login("reviewer", reviewer_password.clone()).await;
    assert_eq!(fresh.status, StatusCode::OK);
    let fresh_token = fresh.json()["token"].as_str().expect("token").to_owned();

    // A new password from the admin ends the old tokens too.
    let reset = patch("reviewer", json!({"password": "a brand new secret"})).await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(cases(fresh_token).await, StatusCode::UNAUTHORIZED);
    login("reviewer", reviewer_password)
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    let after_reset = login("reviewer", "a brand new secret".into()).await;
    assert_eq!(after_reset.status, StatusCode::OK);
    let own_token = after_reset.json()["token"]
        .as_str()
        .expect("token")
        .to_owned();

    // The holder's own change needs the current password.
    let own = |current: &'static str, new: &'static str| {
        let (h, token) = (&h, own_token.clone());
        async move {
            h.call(
                Method::PUT,
                "/api/v1/auth/password",
                Some(&token),
                Some(json!({"current_password": current, "new_password": new})),
            )
            .await
        }
    };
    own("not the password", "another new secret")
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        own("a brand new secret", "another new secret").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(cases(own_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login("reviewer", "another new secret".into()).await.status,
        StatusCode::OK
    );

    // Roles change; the last admin in use stays one. A reviewer needs his entry in
    // the officers' register first.
    let unregistered = patch("auditor", json!({"role": "reviewer"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(unregistered["errors"][0]["field"], "role", "{unregistered}");
    let promoted = patch("auditor", json!({"role": "admin"})).await;
    assert_eq!(promoted.json()["role"], "admin");
    let demoted = patch("auditor", json!({"role": "auditor"})).await;
    assert_eq!(demoted.json()["role"], "auditor");
    patch("admin", json!({"role": "finance"}))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    patch("admin", json!({"disabled": true}))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    patch("nobody", json!({"disabled": true}))
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    let empty = patch("reviewer", json!({}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(empty["errors"][0]["field"], "body", "{empty}");
    let audited = h.store.audit_rows(0, 10_000).await.expect("audit");
    assert!(
        audited
            .iter()
            .filter(|row| row.action == kozomol_store::ACCOUNT_CHANGED)
            .count()
            >= 6,
        "{audited:?}"
    );
}

/// Password checks from one address are counted whatever login they name (each is an
/// Argon2 hash; names ever new would each meet a fresh per-login budget).
#[tokio::test]
async fn password_checks_from_one_address_are_limited() {
    let h = Harness::new().await;
    for i in 0..kozomol_server::auth::ADDRESS_PASSWORD_CHECKS {
        h.log_in(&format!("guess-{i}"), "whatever".into())
            .await
            .problem(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    h.log_in("guess-last", "whatever".into())
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}

#[tokio::test]
async fn admins_create_accounts_once() {
    let h = Harness::new().await;
    let create = |body: Value| {
        h.call(
            Method::POST,
            "/api/v1/accounts",
            Some(h.token(Role::Admin)),
            Some(body),
        )
    };
    // A reviewer confirms violations: resolutions name him from the officers' register.
    let nameless = create(
        json!({"login": "aigul.officer", "role": "reviewer", "password": "long enough secret"}),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(nameless["errors"][0]["field"], "full_name", "{nameless}");
    let created = create(json!({
        "login": "aigul.officer", "role": "reviewer", "password": "long enough secret",
        "full_name": " Бекова Айгуль Маратовна ", "badge": "kg-0420"
    }))
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json()["role"], "reviewer");
    assert_eq!(
        created.json()["officer"],
        json!({"full_name": "Бекова Айгуль Маратовна", "badge": "KG-0420"})
    );
    assert!(created.json().get("password_hash").is_none());
    create(json!({"login": "aigul.officer", "role": "auditor", "password": "another long secret"}))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let refused = create(json!({"login": "Bad Login", "role": "chief", "password": "short"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(refused["errors"].as_array().map(Vec::len), Some(3));
    let malformed = create(json!({
        "login": "x", "role": "supervisor", "password": "long enough secret",
        "full_name": "<script>", "badge": "no spaces please"
    }))
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(malformed["errors"].as_array().map(Vec::len), Some(2));
    // An auditor needs no entry; a badge is one officer's.
    let auditor = create(
        json!({"login": "auditor.two", "role": "auditor", "password": "long enough secret"}),
    )
    .await;
    assert_eq!(auditor.status, StatusCode::CREATED);
    assert_eq!(auditor.json()["officer"], Value::Null);
    create(json!({
        "login": "twin", "role": "supervisor", "password": "long enough secret",
        "full_name": "Другой Офицер", "badge": "KG-0420"
    }))
    .await
    .problem(StatusCode::CONFLICT, "conflict");

    // The register is kept for accounts made before it, and names change.
    let register = |login: &'static str, body: Value| {
        let uri = format!("/api/v1/accounts/{login}/officer");
        let h = &h;
        async move {
            h.call(Method::PUT, &uri, Some(h.token(Role::Admin)), Some(body))
                .await
        }
    };
    let entry = json!({"full_name": "Токтогулов Эрлан", "badge": "KG-0500"});
    let registered = register("auditor.two", entry.clone()).await;
    assert_eq!(registered.status, StatusCode::OK);
    assert_eq!(registered.json()["officer"], entry);
    register("nobody", entry.clone())
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    register(
        "auditor.two",
        json!({"full_name": "Токтогулов Эрлан", "badge": "KG-0420"}),
    )
    .await
    .problem(StatusCode::CONFLICT, "conflict");
    let half = register("auditor.two", json!({"full_name": "Токтогулов Эрлан"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(half["errors"][0]["field"], "badge", "{half}");

    let list = h.get("/api/v1/accounts", Role::Auditor).await.json();
    let logins: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["login"].as_str().expect("login"))
        .collect();
    assert!(logins.contains(&"aigul.officer"));
    assert!(!list.to_string().contains("argon2"), "no hashes listed");

    let login = h
        .call(
            Method::POST,
            "/api/v1/auth/token",
            None,
            Some(json!({"login": "aigul.officer", "password": "long enough secret"})),
        )
        .await;
    assert_eq!(login.json()["role"], "reviewer");
}

#[tokio::test]
async fn camera_config_is_signed_with_the_server_key_and_published() {
    let h = Harness::new().await;
    let camera = h.register_camera(4).await;
    let config = CameraConfig {
        version: 3,
        issued_at_ms: 1_790_000_000_000,
        speed_limits: vec![LaneSpeedLimit {
            lane: 1,
            limit_kmh: 60,
            from: "22:00".into(),
            until: "06:00".into(),
        }],
    };
    let answer = h
        .call(
            Method::PUT,
            &format!("/api/v1/cameras/{camera}/config"),
            Some(h.token(Role::Admin)),
            Some(serde_json::to_value(&config).expect("config json")),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    assert_eq!(answer.json()["topic"], "kozomol/v1/cameras/cam-004/config");

    let key = h.get("/api/v1/server-key", Role::Finance).await.json();
    let public = kozomol_core::envelope::parse_public_key(key["public_key"].as_str().expect("key"))
        .expect("valid key");
    assert_eq!(public, h.state.server_key.verifying_key());

    let published = h.publisher.published.lock().expect("lock").clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, camera);
    assert_eq!(
        CameraConfig::verify(&published[0].1, &public, &camera).expect("verifies"),
        config
    );
    assert_eq!(
        answer.json()["signed_config_sha256"],
        hex::encode(Sha256::digest(&published[0].1))
    );

    let bad = h
        .call(
            Method::PUT,
            &format!("/api/v1/cameras/{camera}/config"),
            Some(h.token(Role::Admin)),
            Some(json!({"version": 0, "issued_at_ms": 0,
                        "speed_limits": [{"lane": 0, "limit_kmh": 0, "from": "25:00", "until": "6"}]})),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad["errors"].as_array().map(Vec::len), Some(5));
    h.call(
        Method::PUT,
        "/api/v1/cameras/cam-404/config",
        Some(h.token(Role::Admin)),
        Some(serde_json::to_value(&config).expect("config json")),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(h.publisher.published.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn health_readiness_metrics_and_unknown_routes() {
    let h = Harness::new().await;
    assert_eq!(
        h.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.call(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    h.state.ready.store(false, Ordering::Release);
    h.call(Method::GET, "/readyz", None, None)
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE, "not_ready");

    h.register_camera(1).await;
    h.state
        .ingest_metrics
        .accepted
        .fetch_add(12, Ordering::Relaxed);
    h.state
        .ingest_metrics
        .count_dead_letter(DeadLetterReason::FrameHashMismatch);
    h.call(Method::GET, "/nowhere", None, None)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    h.call(Method::DELETE, "/api/v1/cases", None, None)
        .await
        .problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let metrics = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.content_type().starts_with("text/plain"));
    let text = String::from_utf8(metrics.bytes).expect("utf-8");
    for line in [
        "kozomol_ingest_accepted_total 12",
        "kozomol_ingest_dead_letters_total{reason=\"frame_hash_mismatch\"} 1",
        "kozomol_cameras_registered 1",
        "kozomol_cameras_online 0",
        "kozomol_http_responses_total{class=\"2xx\"} 2",
        "kozomol_http_responses_total{class=\"4xx\"} 2",
        "kozomol_http_responses_total{class=\"5xx\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
}

/// Puts a case through recognition with our read `plate` at `confidence_milli`.
async fn recognised(h: &Harness, case: kozomol_core::CaseId, plate: &str, confidence_milli: u16) {
    let jobs = h
        .store
        .claim_recognition("api-test", 10, std::time::Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(jobs.iter().any(|j| j.case_id == case));
    for job in jobs {
        let read = kozomol_core::PlateRead {
            text: plate.to_owned(),
            confidence_milli,
            country: Some("KG".to_owned()),
        };
        let outcome = kozomol_store::RecognitionOutcome {
            case_id: job.case_id,
            decision: kozomol_store::RecognitionDecision::NeedsReview,
            plate: Some(read.clone()),
            char_confidences_milli: vec![],
            candidates: vec![read],
            plate_box: None,
            crop: None,
            model: "test".to_owned(),
            agreement: Some(false),
        };
        h.store
            .complete_recognition("api-test", &outcome)
            .await
            .expect("complete");
    }
}

/// A case whose stored read no longer decodes is still shown and decided (without
/// the read: a supervisor settles it), not answered 500 to everyone for ever.
#[tokio::test]
async fn a_case_whose_read_does_not_decode_is_shown_and_decided() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let (case, _) = record_case(&h, &camera, 1, "01KG123ABC", at(0)).await;
    recognised(&h, case, "01KG123ABC", 950).await;
    let raw = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        h.dir.path().join("kozomol.db").display()
    ))
    .await
    .expect("connect");
    sqlx::query("UPDATE recognitions SET candidates = 'not json' WHERE case_id = ?")
        .bind(case.0)
        .execute(&raw)
        .await
        .expect("spoiled");
    assert!(
        h.store.recognition(case).await.is_err(),
        "the read is spoiled"
    );

    let detail = h
        .get(&format!("/api/v1/cases/{case}"), Role::Reviewer)
        .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.json()["recognition"].is_null(), "{}", detail.json());
    let uri = format!("/api/v1/cases/{case}/review");
    let decide = |role: Role, body: Value| {
        let (uri, token) = (uri.clone(), h.token(role).to_owned());
        let h = &h;
        async move {
            let answer = h.call(Method::POST, &uri, Some(&token), Some(body)).await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&answer.bytes)
            );
            answer.json()["state"].clone()
        }
    };
    let proposed = json!({"decision": "correct_plate", "plate": "01KG123ABC"});
    assert_eq!(decide(Role::Reviewer, proposed).await, "supervisor_review");
    let rejected = json!({"decision": "reject", "reason": "plate_unreadable"});
    assert_eq!(decide(Role::Supervisor, rejected).await, "rejected");
}

/// A supervisor's decision from a screen shown before the case left and came back to
/// the same state (approved by another supervisor, then set aside again by the checks
/// before issuing) is refused: it would settle a question no one looked at.
#[tokio::test]
async fn a_decision_on_a_case_that_moved_again_meanwhile_is_refused() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let (case, _) = record_case(&h, &camera, 1, "01KG123ABC", at(0)).await;
    recognised(&h, case, "01KG123ABC", 950).await;
    let h = &h;
    let uri = format!("/api/v1/cases/{case}/review");
    let review = |role: Role, body: Value| {
        let (uri, token) = (uri.clone(), h.token(role).to_owned());
        async move { h.call(Method::POST, &uri, Some(&token), Some(body)).await }
    };
    let shown_move = || async move {
        let detail = h
            .get(&format!("/api/v1/cases/{case}"), Role::Supervisor)
            .await
            .json();
        detail["audit"]
            .as_array()
            .expect("audit")
            .iter()
            .rev()
            .find(|row| !row["to_state"].is_null())
            .and_then(|row| row["id"].as_i64())
            .expect("a move")
    };
    let corrected = json!({"decision": "correct_plate", "plate": "01KG128ABC"});
    assert_eq!(
        review(Role::Reviewer, corrected).await.json()["state"],
        "supervisor_review"
    );
    let first_screen = shown_move().await;
    let approve = |seen_move: i64| json!({"decision": "approve", "seen_state": "supervisor_review", "seen_move": seen_move});
    assert_eq!(
        review(Role::Supervisor, approve(first_screen)).await.json()["state"],
        "approved"
    );
    // The checks before issuing set it aside again, as a possible cloned plate.
    let claimed = h
        .store
        .claim_stage(
            CaseState::Approved,
            "lookup-1",
            10,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("claim");
    assert_eq!(claimed, vec![case]);
    h.store
        .set_aside(
            "lookup-1",
            case,
            CaseState::Approved,
            CaseState::SupervisorReview,
            "possible cloned plate",
        )
        .await
        .expect("set aside");
    review(Role::Supervisor, approve(first_screen))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let answer = review(Role::Supervisor, approve(shown_move().await)).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
}

/// A case whose owner the registry did not give is a supervisor's: a misread plate is
/// corrected and the case asked about again; one that cannot be fined is rejected.
#[tokio::test]
async fn a_supervisor_settles_a_case_whose_owner_is_unknown() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let mut unknown = Vec::new();
    for seed in 1..=2 {
        let (case, _) = record_case(&h, &camera, seed, "01KG123ABC", at(seed)).await;
        recognised(&h, case, "01KG123ABC", 950).await;
        let approved = h
            .call(
                Method::POST,
                &format!("/api/v1/cases/{case}/review"),
                Some(h.token(Role::Reviewer)),
                Some(json!({"decision": "approve"})),
            )
            .await;
        assert_eq!(approved.json()["state"], "approved");
        unknown.push(case);
    }
    let claimed = h
        .store
        .claim_stage(
            CaseState::Approved,
            "lookup-test",
            10,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("claim");
    assert_eq!(claimed, unknown);
    for &case_id in &unknown {
        let lookup = kozomol_store::OwnerLookupRecord {
            case_id,
            outcome: kozomol_core::OwnerOutcome::NoData,
            owner: None,
            vehicle: Value::Null,
            registry_owner: Value::Null,
            reason: Some("the registry has no vehicle with this plate".into()),
            exchange_id: None,
            looked_up_at: Utc::now(),
        };
        h.store
            .record_owner_lookup("lookup-test", &lookup)
            .await
            .expect("lookup recorded");
    }
    let review = |case: kozomol_core::CaseId, role: Role, body: Value| {
        let uri = format!("/api/v1/cases/{case}/review");
        let token = h.token(role).to_owned();
        let h = &h;
        async move { h.call(Method::POST, &uri, Some(&token), Some(body)).await }
    };
    let corrected =
        json!({"decision": "correct_plate", "plate": "01KG128ABC", "seen_state": "owner_unknown"});
    // Not a reviewer's to decide.
    review(unknown[0], Role::Reviewer, corrected.clone())
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let answer = review(unknown[0], Role::Supervisor, corrected).await;
    assert_eq!(
        (
            answer.json()["state"].clone(),
            answer.json()["plate"].clone()
        ),
        (json!("approved"), json!("01KG128ABC")),
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    assert_eq!(
        h.store
            .decided_plate(unknown[0])
            .await
            .expect("read")
            .as_deref(),
        Some("01KG128ABC")
    );
    let answer = review(
        unknown[1],
        Role::Supervisor,
        json!({"decision": "reject", "reason": "other", "note": "a foreign car"}),
    )
    .await;
    assert_eq!(answer.json()["state"], "rejected");
}

#[tokio::test]
async fn reviewers_decide_and_supervisors_settle() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let (agreed, _) = record_case(&h, &camera, 1, "01KG123ABC", at(0)).await;
    recognised(&h, agreed, "01KG123ABC", 950).await;
    let (disputed, _) = record_case(&h, &camera, 2, "01KG123ABC", at(1)).await;
    recognised(&h, disputed, "01KG123ABC", 950).await;
    let (rejected, _) = record_case(&h, &camera, 3, "01KG123ABC", at(2)).await;
    recognised(&h, rejected, "01KG123ABC", 950).await;
    let h = &h;
    let review = |case: kozomol_core::CaseId, role: Role, body: Value| {
        let uri = format!("/api/v1/cases/{case}/review");
        let token = h.token(role).to_owned();
        async move { h.call(Method::POST, &uri, Some(&token), Some(body)).await }
    };

    // The reviewer agrees with a strong read: approved at once.
    let answer = review(agreed, Role::Reviewer, json!({"decision": "approve"})).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    assert_eq!(answer.json()["state"], "approved");
    assert_eq!(answer.json()["plate"], "01KG123ABC");

    // The reviewer reads another plate: a supervisor decides.
    let answer = review(
        disputed,
        Role::Reviewer,
        json!({"decision": "correct_plate", "plate": "01 KG 128 ABC", "note": "8, not 3"}),
    )
    .await;
    assert_eq!(answer.json()["state"], "supervisor_review");
    assert_eq!(answer.json()["plate"], "01KG128ABC");
    // The reviewer cannot settle it a second time; the supervisor approves the proposal.
    review(disputed, Role::Reviewer, json!({"decision": "approve"}))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let answer = review(disputed, Role::Supervisor, json!({"decision": "approve"})).await;
    assert_eq!(answer.json()["state"], "approved");
    assert_eq!(answer.json()["plate"], "01KG128ABC");
    let history = h
        .get(&format!("/api/v1/cases/{disputed}/reviews"), Role::Auditor)
        .await
        .json();
    let tiers: Vec<&str> = history
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["tier"].as_str())
        .collect();
    assert_eq!(tiers, ["first", "supervisor"]);
    assert_eq!(
        history[0]["reviewer"],
        h.creds.for_role(Role::Reviewer).login.as_str()
    );
    assert_eq!(history[0]["note"], "8, not 3");
    // The case's audit trail names the decisions.
    let detail = h
        .get(&format!("/api/v1/cases/{disputed}"), Role::Auditor)
        .await
        .json();
    let reviewed = detail["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|a| a["action"] == "case.reviewed")
        .count();
    assert_eq!(reviewed, 2);

    // Bad submissions change nothing.
    for body in [
        json!({"decision": "reject"}),
        json!({"decision": "reject", "reason": "because"}),
        json!({"decision": "maybe"}),
        json!({"decision": "correct_plate"}),
        json!({"decision": "correct_plate", "plate": "01KG/1"}),
        json!({"decision": "approve", "reason": "other"}),
    ] {
        review(rejected, Role::Reviewer, body.clone())
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    review(
        rejected,
        Role::Reviewer,
        json!({"decision": "approve", "extra": 1}),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let answer = review(
        rejected,
        Role::Reviewer,
        json!({"decision": "reject", "reason": "no_violation"}),
    )
    .await;
    assert_eq!(answer.json()["state"], "rejected");
    let history = h
        .get(&format!("/api/v1/cases/{rejected}/reviews"), Role::Reviewer)
        .await
        .json();
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(history[0]["reason"], "no_violation");
    review(
        kozomol_core::CaseId(424_242),
        Role::Reviewer,
        json!({"decision": "approve"}),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");

    // Decided on what was shown: a case that moved on meanwhile answers 409.
    let (moved, _) = record_case(h, &camera, 5, "01KG123ABC", at(4)).await;
    recognised(h, moved, "01KG123ABC", 950).await;
    let shown_as = json!({"decision": "approve", "seen_state": "supervisor_review"});
    let stale = review(moved, Role::Supervisor, shown_as.clone())
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    assert!(stale.to_string().contains("reload"), "{stale}");
    review(
        moved,
        Role::Supervisor,
        json!({"decision": "approve", "seen_state": "no such state"}),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // A case whose evidence cannot carry a fine is only ever rejected, by either tier.
    let why = "certificate KG-1 ended on 2026-01-01, the capture date";
    let (flagged, _) = record_case_flagged(h, &camera, 4, "01KG123ABC", at(3), Some(why)).await;
    recognised(h, flagged, "01KG123ABC", 950).await;
    for (role, body) in [
        (Role::Reviewer, json!({"decision": "approve"})),
        (Role::Supervisor, json!({"decision": "approve"})),
        (
            Role::Supervisor,
            json!({"decision": "correct_plate", "plate": "01KG999ZZZ"}),
        ),
    ] {
        let refused = review(flagged, role, body)
            .await
            .problem(StatusCode::CONFLICT, "conflict");
        assert!(refused.to_string().contains(why), "{refused}");
    }
    let answer = review(
        flagged,
        Role::Reviewer,
        json!({"decision": "reject", "reason": "calibration_invalid"}),
    )
    .await;
    assert_eq!(answer.json()["state"], "rejected", "{}", answer.json());
}

#[tokio::test]
async fn appeals_and_voids_check_their_input_before_anything_moves() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let (case, _) = record_case(&h, &camera, 1, "01KG123ABC", at(0)).await;
    let clerk = h.token(Role::Reviewer).to_owned();
    let uri = format!("/api/v1/cases/{case}/appeals");
    let file = |body: Value| {
        let (uri, clerk) = (uri.clone(), clerk.clone());
        let h = &h;
        async move { h.call(Method::POST, &uri, Some(&clerk), Some(body)).await }
    };

    // Every problem at once, nothing filed.
    let answer = file(json!({
        "grounds": "",
        "attachments": [
            {"name": "a.html", "content_type": "text/html", "data": "PGh0bWw+"},
            {"name": "b.jpg", "content_type": "image/jpeg", "data": "JVBERi0="},
            {"name": "c.pdf", "content_type": "application/pdf", "data": "***"}
        ]
    }))
    .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "appellant",
            "grounds",
            "attachments[0]",
            "attachments[1]",
            "attachments[2].data"
        ],
        "{problem}"
    );

    // A valid appeal of a case with no resolution is refused with the reason.
    let answer = file(json!({
        "appellant": "Асанов Бакыт",
        "grounds": "не мой автомобиль",
        "attachments": [{"name": "scan.pdf", "content_type": "application/pdf", "data": "JVBERi0xLjc="}]
    }))
    .await;
    let problem = answer.problem(StatusCode::CONFLICT, "conflict");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("no resolution"),
        "{problem}"
    );
    let listed = h.get(&uri, Role::Auditor).await;
    assert_eq!(listed.json(), json!([]));

    // A void with its range backwards voids nothing.
    let supervisor = h.token(Role::Supervisor).to_owned();
    let answer = h
        .call(
            Method::POST,
            "/api/v1/bulk-voids",
            Some(&supervisor),
            Some(
                json!({"device_serial": "KRIS-P-1", "captured_from": "2026-01-02T00:00:00Z",
                        "captured_until": "2026-01-01T00:00:00Z", "reason": "поверка"}),
            ),
        )
        .await;
    answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let decided = h
        .call(
            Method::POST,
            "/api/v1/appeals/77/decision",
            Some(&supervisor),
            Some(json!({"decision": "upheld", "note": "x"})),
        )
        .await;
    decided.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let refunds = h.get("/api/v1/refund-requests", Role::Finance).await;
    assert_eq!(refunds.json()["items"], json!([]));
}

#[tokio::test]
async fn owner_statements_check_their_input_before_anything_moves() {
    let h = Harness::new().await;
    let clerk = h.token(Role::Reviewer).to_owned();
    let uri = "/api/v1/resolutions/KG-BSK-2026-0000001/nominations";
    let state = |body: Value| {
        let clerk = clerk.clone();
        let h = &h;
        async move { h.call(Method::POST, uri, Some(&clerk), Some(body)).await }
    };

    // Every problem at once.
    let answer = state(
        json!({"kind": "driver", "driver": {"pin": "12-34", "name": " "},
                              "police_report": "КУСП-1"}),
    )
    .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        problem_fields(&problem),
        ["statement", "driver.pin", "driver.name", "police_report"],
        "{problem}"
    );
    let answer = state(
        json!({"kind": "stolen", "reported_at": "2999-01-01T00:00:00Z",
                              "statement": "угнан"}),
    )
    .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        problem_fields(&problem),
        ["police_report", "reported_at"],
        "{problem}"
    );
    let answer = state(json!({"kind": "lent", "statement": "x"})).await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(problem_fields(&problem), ["kind"], "{problem}");

    // A valid statement against no resolution, and a number that cannot be one.
    let valid = json!({"kind": "driver", "driver": {"pin": "12345678901234", "name": "Токтосунов Н."},
                       "statement": "за рулём был Токтосунов Н."});
    state(valid.clone())
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    h.call(
        Method::POST,
        "/api/v1/resolutions/nonsense/nominations",
        Some(&clerk),
        Some(valid),
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "bad_request");
    h.get(uri, Role::Auditor)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
}

/// The fields named in a `validation_failed` answer, in order.
fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_checks_lists_and_alerts_are_validated_audited_and_acknowledged() {
    use kozomol_store::{AlertKind, AlertRaised, NewAlert};
    let h = Harness::new().await;
    let admin = h.token(Role::Admin).to_owned();
    let supervisor = h.token(Role::Supervisor).to_owned();

    // Exemptions: every problem at once, nothing added.
    let answer = h
        .call(
            Method::POST,
            "/api/v1/exemptions",
            Some(&admin),
            Some(json!({"pattern": "**", "category": "friends", "note": " ",
                        "valid_from": "2026-13-01", "valid_until": "soon"})),
        )
        .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        problem_fields(&problem),
        ["pattern", "category", "note", "valid_from", "valid_until"],
        "{problem}"
    );
    let answer = h
        .call(
            Method::POST,
            "/api/v1/exemptions",
            Some(&admin),
            Some(json!({"category": "other", "note": "x",
                        "valid_from": "2026-06-01", "valid_until": "2026-05-31"})),
        )
        .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(problem_fields(&problem), ["pattern", "valid_until"]);
    h.call(
        Method::POST,
        "/api/v1/exemptions",
        Some(&admin),
        Some(json!({"pattern": "D*", "category": "other", "note": "x", "colour": "red"})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        h.get("/api/v1/exemptions", Role::Auditor).await.json(),
        json!({"items": []})
    );

    let added = h
        .call(
            Method::POST,
            "/api/v1/exemptions",
            Some(&admin),
            Some(json!({"pattern": "cmd *", "category": "diplomatic",
                        "note": "нота МИД 12/2026", "valid_until": "2026-12-31"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.json());
    let added = added.json();
    assert_eq!(added["pattern"], "CMD*");
    assert_eq!(added["category"], "diplomatic");
    assert_eq!(added["valid_from"], Value::Null);
    assert_eq!(added["valid_until"], "2026-12-31");
    assert_eq!(added["added_by"], "admin");
    let listed = h.get("/api/v1/exemptions", Role::Reviewer).await.json();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["items"][0]["id"], added["id"]);
    h.get("/api/v1/exemptions", Role::Finance)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");

    let uri = format!("/api/v1/exemptions/{}", added["id"]);
    let removed = h.call(Method::DELETE, &uri, Some(&supervisor), None).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(removed.json()["removed_by"], "supervisor");
    h.call(Method::DELETE, &uri, Some(&supervisor), None)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    h.call(Method::DELETE, "/api/v1/exemptions/x", Some(&admin), None)
        .await
        .problem(StatusCode::BAD_REQUEST, "bad_request");
    assert_eq!(
        h.get("/api/v1/exemptions", Role::Auditor).await.json(),
        json!({"items": []})
    );

    // The hot list: one entry per plate.
    let answer = h
        .call(
            Method::POST,
            "/api/v1/hot-list",
            Some(&supervisor),
            Some(json!({"plate": "!", "reason": "lost", "note": "x".repeat(2001)})),
        )
        .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(problem_fields(&problem), ["plate", "reason", "note"]);
    let listed = h
        .call(
            Method::POST,
            "/api/v1/hot-list",
            Some(&supervisor),
            Some(json!({"plate": "01 kg 666-xyz", "reason": "stolen", "note": "угон"})),
        )
        .await;
    assert_eq!(listed.status, StatusCode::CREATED);
    assert_eq!(listed.json()["plate"], "01KG666XYZ");
    assert_eq!(listed.json()["listed_by"], "supervisor");
    h.call(
        Method::POST,
        "/api/v1/hot-list",
        Some(&admin),
        Some(json!({"plate": "01KG666XYZ", "reason": "wanted"})),
    )
    .await
    .problem(StatusCode::CONFLICT, "conflict");
    // Nor under the spelling the recognizer writes (without KG).
    h.call(
        Method::POST,
        "/api/v1/hot-list",
        Some(&admin),
        Some(json!({"plate": "01666XYZ", "reason": "wanted"})),
    )
    .await
    .problem(StatusCode::CONFLICT, "conflict");
    let list = h.get("/api/v1/hot-list", Role::Reviewer).await.json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["reason"], "stolen");
    h.call(
        Method::POST,
        "/api/v1/hot-list",
        Some(h.token(Role::Reviewer)),
        Some(json!({"plate": "01KG555AAA", "reason": "stolen"})),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    let removed = h
        .call(
            Method::DELETE,
            "/api/v1/hot-list/01666xyz",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        removed.status,
        StatusCode::OK,
        "taken off under its other spelling"
    );
    assert_eq!(removed.json()["plate"], "01KG666XYZ");
    assert_eq!(removed.json()["removed_by"], "admin");
    h.call(
        Method::DELETE,
        "/api/v1/hot-list/01KG666XYZ",
        Some(&admin),
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");

    // Alerts: raised by the checks, read by case readers, acknowledged once by a
    // supervisor.
    let camera = h.register_camera(1).await;
    let (case, _) = record_case(&h, &camera, 1, "01KG666XYZ", at(0)).await;
    let raised = h
        .store
        .raise_alert(&NewAlert {
            case_id: case,
            kind: AlertKind::HotList,
            detail: json!({"plate": "01KG666XYZ", "reason": "stolen"}),
            raised_by: "fines:lookup-1".into(),
        })
        .await
        .expect("alert");
    let AlertRaised::Raised(alert_id) = raised else {
        panic!("{raised:?}")
    };
    let page = h
        .get("/api/v1/alerts?open=true", Role::Auditor)
        .await
        .json();
    assert_eq!(page["items"][0]["id"], alert_id);
    assert_eq!(page["items"][0]["kind"], "hot_list");
    assert_eq!(page["items"][0]["detail"]["plate"], "01KG666XYZ");
    assert_eq!(
        page["items"][0]["case_href"],
        format!("https://kozomol.test.kg/api/v1/cases/{case}")
    );
    assert_eq!(page["next"], Value::Null);
    let problem = h
        .get("/api/v1/alerts?open=maybe&limit=0", Role::Reviewer)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(problem_fields(&problem), ["open", "limit"]);

    let uri = format!("/api/v1/alerts/{alert_id}/acknowledge");
    h.call(Method::POST, &uri, Some(h.token(Role::Reviewer)), None)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    let acked = h.call(Method::POST, &uri, Some(&supervisor), None).await;
    assert_eq!(acked.status, StatusCode::OK);
    assert_eq!(acked.json()["acknowledged_by"], "supervisor");
    h.call(Method::POST, &uri, Some(&supervisor), None)
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    h.call(
        Method::POST,
        "/api/v1/alerts/999/acknowledge",
        Some(&supervisor),
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");
    let open = h
        .get("/api/v1/alerts?open=true", Role::Reviewer)
        .await
        .json();
    assert_eq!(open["items"], json!([]));
    let all = h.get("/api/v1/alerts", Role::Reviewer).await.json();
    assert_eq!(all["items"][0]["acknowledged_by"], "supervisor");

    // The case's trail shows the alert and who acknowledged it.
    let audit = h.store.case_audit(case).await.expect("audit");
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    assert!(actions.contains(&("case.alert_raised", "fines:lookup-1")));
    assert!(actions.contains(&("case.alert_acknowledged", "supervisor")));
}

/// A real JPEG (the resolution embeds officers' photos unchanged), as an upload.
fn jpeg_upload(name: &str, seed: u8) -> Value {
    use base64::Engine;
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 ^ seed, y as u8, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg encodes");
    json!({
        "name": name,
        "content_type": "image/jpeg",
        "data": base64::engine::general_purpose::STANDARD.encode(out.into_inner()),
    })
}

#[tokio::test]
async fn officers_file_violations_and_accidents_whose_investigation_moves_on() {
    use base64::Engine;
    let h = Harness::new().await;
    let officer = h.token(Role::Reviewer).to_owned();
    let post = |uri: &'static str, body: Value| {
        let (h, officer) = (&h, officer.clone());
        async move { h.call(Method::POST, uri, Some(&officer), Some(body)).await }
    };

    // Every problem at once, nothing filed.
    let answer = post(
        "/api/v1/officer-violations",
        json!({
            "plate": "?",
            "kind": "jaywalking",
            "occurred_at": "2999-01-01T00:00:00Z",
            "place": {"address": "Бишкек", "lat_e6": 42_874_620},
            "photos": [{"name": "a.png", "content_type": "image/png", "data": "iVBORw0KGgo="}],
        }),
    )
    .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        problem_fields(&problem),
        ["plate", "kind", "occurred_at", "place.lat_e6", "photos[0]"],
        "{problem}"
    );
    let answer = post(
        "/api/v1/officer-violations",
        json!({
            "plate": "01KG123ABC", "kind": "speeding", "occurred_at": "2026-03-01T08:00:00Z",
            "place": {"address": "Бишкек"}, "photos": [],
        }),
    )
    .await;
    let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        problem_fields(&problem),
        ["speed_kmh", "device", "photos"],
        "{problem}"
    );
    // A speed gun on anything but speeding, and one with its certificate's dates
    // backwards, are refused.
    let gun = |from: &str, until: &str| {
        json!({"serial": "4471", "certificate":
            {"number": "KG-CSM-2026-0117", "valid_from": from, "valid_until": until}})
    };
    for (kind, device) in [
        ("seat_belt", gun("2026-01-10", "2027-01-09")),
        ("speeding", gun("2027-01-10", "2026-01-09")),
        // Lapsed before the offence's day.
        ("speeding", gun("2025-01-10", "2026-01-09")),
    ] {
        let answer = post(
            "/api/v1/officer-violations",
            json!({
                "plate": "01KG123ABC", "kind": kind, "occurred_at": "2026-03-01T08:00:00Z",
                "place": {"address": "Бишкек"}, "speed_kmh": 95, "limit_kmh": 60,
                "device": device, "photos": [jpeg_upload("scene.jpg", 1)],
            }),
        )
        .await;
        let problem = answer.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let fields = problem_fields(&problem);
        assert!(fields.contains(&"device".to_owned()), "{kind}: {problem}");
    }
    // The witness must be in the officers' register: the demo admin is not.
    let unregistered = h
        .call(
            Method::POST,
            "/api/v1/officer-violations",
            Some(h.token(Role::Admin)),
            Some(json!({
                "plate": "01KG123ABC", "kind": "seat_belt", "occurred_at": "2026-03-01T08:00:00Z",
                "place": {"address": "Бишкек"}, "photos": [jpeg_upload("scene.jpg", 1)],
            })),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(problem_fields(&unregistered), ["officer"], "{unregistered}");
    let cases = h.store.count_cases(&Default::default()).await;
    assert_eq!(cases.expect("count"), 0);

    // An accident with a driver, a hurt pedestrian, a photo and a scheme.
    let scheme = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 scheme");
    let report_id = uuid::Uuid::now_v7();
    let accident_body = json!({
        "report_id": report_id,
        "occurred_at": "2026-03-01T07:40:00Z",
        "place": {"address": "г. Бишкек, пр. Чуй — ул. Панфилова", "lat_e6": 42_876_000, "lon_e6": 74_604_000},
        "description": "наезд на пешехода на регулируемом переходе",
        "vehicles": [{"plate": "01 kg 123 abc", "make": "Toyota", "damage": "капот"}],
        "participants": [
            {"name": "Асанов Б.", "role": "driver", "vehicle": 0, "pin": "21212198000123"},
            {"name": "Петрова Е.", "role": "pedestrian", "injuries": "light"}
        ],
        "photos": [jpeg_upload("scene.jpg", 1)],
        "scheme": {"name": "scheme.pdf", "content_type": "application/pdf", "data": scheme},
    });
    let created = post("/api/v1/accidents", accident_body.clone()).await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.bytes)
    );
    let accident = created.json();
    let id = accident["id"].as_i64().expect("id");
    assert_eq!(accident["state"], "registered");
    assert_eq!(accident["vehicles"][0]["plate"], "01KG123ABC");
    assert_eq!(accident["registered_by"], "reviewer");
    let again = post("/api/v1/accidents", accident_body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], id);
    let scheme_url = accident["file_urls"][1]["url"].as_str().expect("url");
    let file = h
        .get(
            scheme_url
                .strip_prefix(BASE.trim_end_matches('/'))
                .expect("ours"),
            Role::Auditor,
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.bytes, b"%PDF-1.7 scheme");
    assert_eq!(file.headers[header::CONTENT_TYPE], "application/pdf");

    // A violation found in it: a case in `approved` with no camera, linked both ways.
    let violation = json!({
        "report_id": uuid::Uuid::now_v7(),
        "plate": "01KG123ABC",
        "kind": "red_light",
        "occurred_at": "2026-03-01T07:40:00Z",
        "place": {"address": "г. Бишкек, пр. Чуй — ул. Панфилова"},
        "notes": "проезд на красный, наезд на пешехода",
        "accident_id": id,
        "photos": [jpeg_upload("scene.jpg", 1)],
        "plate_photo": jpeg_upload("plate.jpg", 2),
    });
    let filed = post("/api/v1/officer-violations", violation.clone()).await;
    assert_eq!(
        filed.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&filed.bytes)
    );
    let case_id = filed.json()["case_id"].as_i64().expect("case id");
    assert_eq!(filed.json()["state"], "approved");
    let repeat = post("/api/v1/officer-violations", violation.clone()).await;
    assert_eq!(
        (repeat.status, repeat.json()["created"].clone()),
        (StatusCode::OK, json!(false))
    );
    // The report id again for another report: refused, and its photo, stored before
    // the store said so and named by no row, is queued for overwriting.
    let other_photo = jpeg_upload("other.jpg", 9);
    let conflicting = post(
        "/api/v1/officer-violations",
        json!({
            "report_id": violation["report_id"], "plate": "01KG555QQQ", "kind": "red_light",
            "occurred_at": "2026-03-01T07:40:00Z", "place": {"address": "Бишкек"},
            "photos": [other_photo.clone()],
        }),
    )
    .await;
    conflicting.problem(StatusCode::CONFLICT, "conflict");
    let other_sha: [u8; 32] = {
        use base64::Engine;
        use sha2::Digest;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(other_photo["data"].as_str().expect("data"))
            .expect("base64");
        sha2::Sha256::digest(&bytes).into()
    };
    let queued = h.store.erasures_due(100).await.expect("erasures");
    assert!(
        queued.iter().any(|e| e.sha256 == other_sha),
        "the refused report's photo is queued: {queued:?}"
    );
    let case = h
        .get(&format!("/api/v1/cases/{case_id}"), Role::Auditor)
        .await
        .json();
    assert_eq!(case["camera_id"], Value::Null);
    assert_eq!(case["camera_href"], Value::Null);
    assert_eq!(case["event"]["officer"], "reviewer");
    assert_eq!(case["frames"][1]["role"], "plate");
    // Speeding, measured with a speed gun the report keeps.
    let speeding = post(
        "/api/v1/officer-violations",
        json!({
            "plate": "01KG777XYZ", "kind": "speeding", "occurred_at": "2026-03-01T08:10:00Z",
            "place": {"address": "г. Бишкек, ул. Ахунбаева"}, "speed_kmh": 95, "limit_kmh": 60,
            "device": {"serial": "ИСКРА-ВИДЕО-2 №4471", "certificate":
                {"number": "KG-CSM-2026-0117", "valid_from": "2026-01-10", "valid_until": "2027-01-09"}},
            "photos": [jpeg_upload("gun.jpg", 3)],
        }),
    )
    .await;
    assert_eq!(
        speeding.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&speeding.bytes)
    );
    let speeding_id = speeding.json()["case_id"].as_i64().expect("case id");
    let speeding_case = h
        .get(&format!("/api/v1/cases/{speeding_id}"), Role::Auditor)
        .await
        .json();
    assert_eq!(
        speeding_case["event"]["device"]["certificate"]["number"],
        "KG-CSM-2026-0117"
    );
    assert_eq!(case["audit"][0]["action"], "case.officer_filed");
    let shown = h
        .get(&format!("/api/v1/accidents/{id}"), Role::Auditor)
        .await
        .json();
    assert_eq!(shown["cases"], json!([case_id]));

    // The investigation: rules first, then the compare-and-set.
    let moves = format!("/api/v1/accidents/{id}/moves");
    let step = |body: Value| {
        let (h, officer, moves) = (&h, officer.clone(), moves.clone());
        async move {
            h.call(Method::POST, &moves, Some(&officer), Some(body))
                .await
        }
    };
    step(json!({"to": "closed", "outcome": "no_violation"}))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let started = step(json!({"from": "registered", "to": "under_investigation"})).await;
    assert_eq!(started.status, StatusCode::OK);
    step(json!({"from": "registered", "to": "under_investigation"}))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    step(json!({"to": "closed", "outcome": "no_violation"}))
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    step(json!({"to": "closed", "outcome": "sideways"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let closed =
        step(json!({"to": "closed", "outcome": "violations_filed", "note": "материал собран"}))
            .await;
    assert_eq!(closed.status, StatusCode::OK);
    let closed = closed.json();
    assert_eq!(
        (closed["state"].clone(), closed["outcome"].clone()),
        (json!("closed"), json!("violations_filed"))
    );
    assert_eq!(closed["moves"].as_array().map(Vec::len), Some(3));

    // Nothing more is filed under a closed accident.
    let late = post(
        "/api/v1/officer-violations",
        json!({
            "plate": "01KG123ABC", "kind": "seat_belt", "occurred_at": "2026-03-01T07:40:00Z",
            "place": {"address": "Бишкек"}, "accident_id": id,
            "photos": [jpeg_upload("scene.jpg", 3)],
        }),
    )
    .await;
    late.problem(StatusCode::CONFLICT, "conflict");

    let listed = h
        .get("/api/v1/accidents?state=closed", Role::Auditor)
        .await
        .json();
    assert_eq!(listed["items"][0]["id"], id);
    let none = h
        .get("/api/v1/accidents?state=registered", Role::Auditor)
        .await
        .json();
    assert_eq!(none["items"], json!([]));
    h.get("/api/v1/accidents?state=lost", Role::Auditor)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");

    // A minor one closed with no violation: once purged and past its archive period its
    // file is destroyed, and its photo answers 410 even before the bytes are overwritten.
    let minor = post(
        "/api/v1/accidents",
        json!({
            "occurred_at": "2026-03-02T09:00:00Z", "place": {"address": "г. Бишкек, ул. Ахунбаева"},
            "description": "касание зеркалами",
            "vehicles": [{"plate": "01KG555MMM", "damage": "зеркало"}],
            "participants": [{"name": "Осмонов Т.", "role": "driver", "vehicle": 0}],
            "photos": [jpeg_upload("mirror.jpg", 9)],
        }),
    )
    .await;
    assert_eq!(minor.status, StatusCode::CREATED);
    let minor = minor.json()["id"].as_i64().expect("id");
    for body in [
        json!({"to": "under_investigation"}),
        json!({"to": "closed", "outcome": "no_violation"}),
    ] {
        let moved = h
            .call(
                Method::POST,
                &format!("/api/v1/accidents/{minor}/moves"),
                Some(&officer),
                Some(body),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK);
    }
    let photo = format!("/api/v1/accidents/{minor}/files/0");
    let served = h.get(&photo, Role::Auditor).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.headers[header::CACHE_CONTROL], "no-store");
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    let purged = h.store.purge_personal_data(later, 100, "retention").await;
    assert_eq!(purged.expect("purged").accidents, vec![minor]);
    let destroyed = h.store.destroy_case_files(later, 100, "archive").await;
    assert_eq!(destroyed.expect("destroyed").accidents, vec![minor]);
    h.get(&photo, Role::Auditor)
        .await
        .problem(StatusCode::GONE, "evidence_destroyed");
    let shown = h
        .get(&format!("/api/v1/accidents/{minor}"), Role::Auditor)
        .await
        .json();
    assert!(shown["evidence_destroyed_at"].is_string(), "{shown}");
    assert!(
        shown["files"][0]["sha256"].is_string(),
        "the file's row stays"
    );
}

/// Logs `role`'s demo account in for a console session: its cookie and its token.
async fn console_session(h: &Harness, role: Role) -> (String, String) {
    let account = h.creds.for_role(role);
    let answer = h
        .call(
            Method::POST,
            "/api/v1/auth/session",
            None,
            Some(json!({"login": account.login, "password": account.password})),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    let set_cookie = answer.headers[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    (
        cookie,
        answer.json()["csrf_token"]
            .as_str()
            .expect("token")
            .to_owned(),
    )
}

#[tokio::test]
async fn console_sessions_change_nothing_without_their_anti_forgery_token() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let (case, _) = record_case(&h, &camera, 1, "01KG123ABC", at(0)).await;
    recognised(&h, case, "01KG123ABC", 950).await;
    let (cookie, csrf) = console_session(&h, Role::Reviewer).await;
    let review = format!("/api/v1/cases/{case}/review");
    let approve = json!({"decision": "approve"});

    let shown = h
        .call_with(
            Method::GET,
            "/api/v1/auth/session",
            &[(header::COOKIE, cookie.clone())],
            None,
        )
        .await;
    assert_eq!(shown.json()["csrf_token"], csrf.as_str());
    assert_eq!(shown.json()["role"], "reviewer");
    // A session reads with its cookie alone.
    let read = h
        .call_with(
            Method::GET,
            &format!("/api/v1/cases/{case}"),
            &[(header::COOKIE, cookie.clone())],
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    // A change without the token, or with another session's, is refused and changes nothing.
    for csrf_header in [None, Some("0".repeat(64)), Some(csrf.to_uppercase())] {
        let mut headers = vec![(header::COOKIE, cookie.clone())];
        headers.extend(csrf_header.map(|t| (header::HeaderName::from_static("x-csrf-token"), t)));
        let refused = h
            .call_with(Method::POST, &review, &headers, Some(approve.clone()))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.json()["code"], "csrf_rejected");
    }
    assert_eq!(
        h.store.case(case).await.expect("read").expect("case").state,
        CaseState::NeedsReview
    );
    let decided = h
        .call_with(
            Method::POST,
            &review,
            &[
                (header::COOKIE, cookie.clone()),
                (
                    header::HeaderName::from_static("x-csrf-token"),
                    csrf.clone(),
                ),
            ],
            Some(approve),
        )
        .await;
    assert_eq!(
        decided.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&decided.bytes)
    );

    // Pages: a stranger is sent to log in, a role the page is not for is refused.
    let anonymous = h.call(Method::GET, "/console/queue", None, None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers[header::LOCATION],
        "/console/login?next=/console/queue"
    );
    let (finance, _) = console_session(&h, Role::Finance).await;
    for (path, finance_may) in [
        ("/console/queue", false),
        ("/console/cameras", true),
        ("/console/dead-letters", false),
        ("/console/accounts", false),
        ("/console/finance", true),
        ("/console/reports", false),
    ] {
        let answer = h
            .call_with(
                Method::GET,
                path,
                &[(header::COOKIE, finance.clone())],
                None,
            )
            .await;
        let expected = if finance_may {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(answer.status, expected, "{path} as finance");
    }
    // A reviewer works the queue but does not read dead letters.
    let refused = h
        .call_with(
            Method::GET,
            "/console/dead-letters",
            &[(header::COOKIE, cookie.clone())],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Said in the page's language (Russian, where the browser names none).
    let said = String::from_utf8_lossy(&refused.bytes);
    assert!(
        said.contains("Роли «инспектор» эта страница недоступна."),
        "{said}"
    );
    let page = h
        .call_with(
            Method::GET,
            "/console/queue",
            &[(header::COOKIE, cookie.clone())],
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .contains("default-src 'self'"));

    // Logging out needs the token too, and ends the session everywhere.
    let refused = h
        .call_with(
            Method::DELETE,
            "/api/v1/auth/session",
            &[(header::COOKIE, cookie.clone())],
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = h
        .call_with(
            Method::DELETE,
            "/api/v1/auth/session",
            &[
                (header::COOKIE, cookie.clone()),
                (header::HeaderName::from_static("x-csrf-token"), csrf),
            ],
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let gone = h
        .call_with(
            Method::GET,
            &format!("/api/v1/cases/{case}"),
            &[(header::COOKIE, cookie.clone())],
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    // Logging out of a session already ended (expired, or ended by a new password)
    // clears its cookie all the same.
    let again = h
        .call_with(
            Method::DELETE,
            "/api/v1/auth/session",
            &[(header::COOKIE, cookie)],
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let cleared = again.headers[header::SET_COOKIE].to_str().expect("ascii");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn a_body_larger_than_its_route_takes_is_refused_as_too_large() {
    let h = Harness::new().await;
    // Three MiB of JSON to a route that takes the default two.
    let body = json!({ "resolution": "x".repeat(3 << 20) });
    let answer = h
        .call(Method::POST, "/api/v1/public/lookups", None, Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["code"], "too_large");
}

/// Lookups of one plate meet one budget, whichever addresses they come from (here the
/// address limit switched off, as for a load test) and however the plate is spelled;
/// sent all at once, no more than the budget gets through.
#[tokio::test]
async fn lookups_of_one_plate_are_throttled_across_addresses() {
    let h = Harness::new().await;
    let mut state = h.state.clone();
    state.lookup_limit = kozomol_server::api::LookupLimit {
        lookups: 0,
        window: std::time::Duration::from_secs(600),
    };
    let app = router(state);
    let lookup = |plate: &str, certificate: String| {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/public/lookups")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({ "plate": plate, "certificate": certificate }).to_string(),
            ))
            .expect("request builds");
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body reads");
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    // Thirty guesses at once, one plate spelled three ways (the recognizer's form
    // without `KG`, and Cyrillic look-alikes).
    let started = std::time::Instant::now();
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..30 {
        let plate = ["01KG123ABC", "01123ABC", "01 KG 123 АВС"][i % 3];
        guesses.spawn(lookup(plate, format!("KG0{i:07}")));
    }
    let (mut missed, mut refused) = (0, 0);
    while let Some(answer) = guesses.join_next().await {
        let (status, body) = answer.expect("lookup");
        match status {
            StatusCode::NOT_FOUND => missed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(body.contains("too_many_lookups"), "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((missed, refused), (20, 10));
    // A lookup that ran answered no sooner than the floor.
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    // Another plate is not held up by it; a text no plate is that long is refused.
    let (status, body) = lookup("01KG124ABC", "KG01000000".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = lookup(&"7".repeat(40), "KG01000000".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// Two API processes behind a load balancer give an address one allowance between
/// them, not one each.
#[tokio::test]
async fn an_address_has_one_allowance_across_api_processes() {
    let h = Harness::new().await;
    let replicas = [router(h.state.clone()), router(h.state.clone())];
    let lookup = |replica: usize, i: usize| {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/public/lookups")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({ "resolution": format!("KG-BSK-2026-{i:07}") }).to_string(),
            ))
            .expect("request builds");
        replicas[replica].clone().oneshot(request)
    };
    // The default allowance, 30, spent half on each replica.
    for i in 0..30 {
        let answer = lookup(i % 2, i).await.expect("infallible");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "lookup {i}");
    }
    for replica in 0..2 {
        let answer = lookup(replica, 99).await.expect("infallible");
        assert_eq!(
            answer.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "replica {replica}"
        );
    }
}

#[tokio::test]
async fn portal_lookups_are_throttled_and_fines_open_only_with_a_grant() {
    let h = Harness::new().await;
    // Nothing to find: every miss still counts against the address.
    for i in 0..30 {
        let miss = h
            .call(
                Method::POST,
                "/api/v1/public/lookups",
                None,
                Some(json!({"resolution": format!("KG-BSK-2026-{i:07}")})),
            )
            .await;
        assert_eq!(
            miss.status,
            StatusCode::NOT_FOUND,
            "{}",
            String::from_utf8_lossy(&miss.bytes)
        );
    }
    let throttled = h
        .call(
            Method::POST,
            "/api/v1/public/lookups",
            None,
            Some(json!({"payment_code": "112600100000000023"})),
        )
        .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.json()["code"], "too_many_lookups");
    assert!(throttled.headers.contains_key(header::RETRY_AFTER));

    // A fine's routes want a lookup's grant, signed for that fine and not expired.
    for grant in ["", "?grant=1", "?grant=99999999999.00", "?grant=abc"] {
        for route in ["", "/pdf", "/frames/0", "/qr.svg"] {
            let refused = h
                .call(
                    Method::GET,
                    &format!("/api/v1/public/fines/KG-BSK-2026-0000001{route}{grant}"),
                    None,
                    None,
                )
                .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{route}{grant}");
            assert_eq!(refused.json()["code"], "grant_required");
        }
    }
}

#[tokio::test]
async fn open_data_counts_violations_per_site_hour_and_kind_without_plates() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    // Six speeders in one hour at one site, none fined yet: published.
    for seed in 1..=6 {
        record_case(&h, &camera, seed, "01KG123ABC", at(seed)).await;
    }
    let day = at(0)
        .with_timezone(&chrono::FixedOffset::east_opt(6 * 3600).expect("offset"))
        .date_naive();
    let uri = format!("/api/v1/open-data/violations?from={day}&to={day}");

    let answer = h.call(Method::GET, &uri, None, None).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.bytes)
    );
    let rows = answer.json()["rows"].as_array().expect("rows").clone();
    let recorded: i64 = rows
        .iter()
        .map(|r| r["recorded"].as_i64().expect("count"))
        .sum();
    assert_eq!(recorded, 6);
    assert!(rows
        .iter()
        .all(|r| r["site_id"].is_string() && r["fined"] == 0));
    let text = String::from_utf8_lossy(&answer.bytes).to_string();
    assert!(
        !text.contains("01KG") && !text.contains("123ABC"),
        "no plate: {text}"
    );

    let csv = h
        .call(Method::GET, &format!("{uri}&format=csv"), None, None)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let csv = String::from_utf8_lossy(&csv.bytes).to_string();
    assert!(csv.starts_with("day,hour,site_id,site,latitude,longitude,kind,recorded,fined\r\n"));
    assert_eq!(csv.lines().count(), rows.len() + 1);

    for bad in [
        "from=2026-03-10&to=2026-03-01",
        "from=2026-01-01&to=2026-06-01",
        "from=yesterday",
        "format=xml",
        // Years chrono parses but no day arithmetic survives.
        "to=%2B262142-12-31",
        "from=-262143-01-01&to=2026-01-01",
    ] {
        let refused = h
            .call(
                Method::GET,
                &format!("/api/v1/open-data/violations?{bad}"),
                None,
                None,
            )
            .await;
        refused.problem(StatusCode::BAD_REQUEST, "invalid_query");
    }
}

#[tokio::test]
async fn the_dashboard_counts_violations_backlog_and_decisions() {
    let h = Harness::new().await;
    let camera = h.register_camera(1).await;
    let (agreed, _) = record_case(&h, &camera, 1, "01KG123ABC", at(0)).await;
    recognised(&h, agreed, "01KG123ABC", 950).await;
    let (waiting, _) = record_case(&h, &camera, 2, "01KG777XYZ", at(1)).await;
    recognised(&h, waiting, "01KG777XYZ", 950).await;
    let review = h
        .call(
            Method::POST,
            &format!("/api/v1/cases/{agreed}/review"),
            Some(h.token(Role::Reviewer)),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(review.status, StatusCode::OK);
    let day = at(0)
        .with_timezone(&chrono::FixedOffset::east_opt(6 * 3600).expect("offset"))
        .date_naive();
    let today = Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(6 * 3600).expect("offset"))
        .date_naive();
    // Captured on `day`, reviewed today.
    let captured = h
        .get(
            &format!("/api/v1/dashboard?from={day}&to={day}"),
            Role::Finance,
        )
        .await;
    assert_eq!(
        captured.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&captured.bytes)
    );
    let captured = captured.json();
    let recorded: i64 = captured["violations"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["recorded"].as_i64().expect("count"))
        .sum();
    assert_eq!(recorded, 2);
    assert_eq!(captured["backlog"]["needs_review"], 1);
    assert_eq!(captured["currency"], "KGS");
    let reviewed = h
        .get(
            &format!("/api/v1/dashboard?from={today}&to={today}"),
            Role::Auditor,
        )
        .await
        .json();
    assert_eq!(reviewed["decisions"]["first"], 1, "{reviewed}");
    assert_eq!(reviewed["automatic_share"], 0.0);
    assert!(reviewed["mean_seconds_to_decision"].as_f64().expect("mean") > 0.0);
    assert_eq!(reviewed["issued"], 0);
    assert!(reviewed["collection_rate"].is_null());
}

/// The print room: a batch the delivery worker merged waits unprinted, its PDF is
/// served byte for byte with a view audited on each case it serves, and it is recorded
/// printed once.
#[tokio::test]
async fn the_print_room_downloads_a_batch_and_records_it_printed_once() {
    use kozomol_store::{EvidenceRef, NewPrintBatch, PrintBatchWrite};
    let h = Harness::new().await;
    let (first, _) = kozomol_testkit::fines::issued_fines(h.store.as_ref(), &h.evidence, 2)
        .await
        .expect("fines issued");
    let jobs = h
        .store
        .claim_deliveries(
            kozomol_core::DeliveryChannel::Post,
            "post-worker",
            10,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("letters claimed");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let merged = b"%PDF-1.7 merged letters".to_vec();
    let location = h
        .evidence
        .append_batch(&[&merged])
        .expect("stored")
        .remove(0);
    let batch = NewPrintBatch {
        pdf: EvidenceRef {
            sha256: Sha256::digest(&merged).into(),
            location,
        },
        pages: 2,
        letters: jobs
            .iter()
            .zip(1..)
            .map(|(job, page)| (job.id, page))
            .collect(),
    };
    let PrintBatchWrite::Recorded(id) = h
        .store
        .record_print_batch("post-worker", &batch)
        .await
        .expect("batch recorded")
    else {
        panic!("batch not recorded")
    };
    let officer = h.token(Role::Reviewer).to_owned();
    let list = |query: &'static str| {
        let (h, officer) = (&h, officer.clone());
        async move {
            let answer = h
                .call(
                    Method::GET,
                    &format!("/api/v1/print-batches{query}"),
                    Some(&officer),
                    None,
                )
                .await;
            assert_eq!(answer.status, StatusCode::OK);
            answer.json()
        }
    };
    let waiting = list("?printed=false").await;
    assert_eq!(waiting["items"][0]["id"], id.0, "{waiting}");
    assert_eq!(waiting["items"][0]["letters"], 2);
    assert_eq!(waiting["items"][0]["printed_at"], Value::Null);
    let href = waiting["items"][0]["pdf_href"].as_str().expect("href");
    assert_eq!(href, format!("{BASE}api/v1/print-batches/{id}/pdf"));

    let pdf = h
        .call(
            Method::GET,
            &format!("/api/v1/print-batches/{id}/pdf"),
            Some(&officer),
            None,
        )
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.bytes, merged);
    assert_eq!(pdf.headers[header::CONTENT_TYPE], "application/pdf");
    let viewed = h.store.case_audit(first).await.expect("audit");
    assert!(
        viewed
            .iter()
            .any(|e| e.action == kozomol_store::audit::OWNER_DATA_VIEWED
                && e.actor == "reviewer"
                && e.detail.as_deref() == Some(format!("print batch {id}").as_str())),
        "{viewed:?}"
    );

    let printed = |token: String| {
        let h = &h;
        async move {
            h.call(
                Method::POST,
                &format!("/api/v1/print-batches/{id}/printed"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let first_record = printed(officer.clone()).await;
    assert_eq!(first_record.status, StatusCode::OK);
    let first_record = first_record.json();
    assert_eq!(
        (
            first_record["recorded"].clone(),
            first_record["printed_by"].clone()
        ),
        (json!("first"), json!("reviewer"))
    );
    let again = printed(h.token(Role::Supervisor).to_owned()).await.json();
    assert_eq!(
        (
            again["recorded"].clone(),
            again["printed_by"].clone(),
            again["printed_at"].clone()
        ),
        (
            json!("already_recorded"),
            json!("reviewer"),
            first_record["printed_at"].clone()
        )
    );
    assert_eq!(list("?printed=false").await["items"], json!([]));
    assert_eq!(
        list("?printed=true").await["items"][0]["printed_by"],
        "reviewer"
    );
    h.call(
        Method::POST,
        "/api/v1/print-batches/999/printed",
        Some(&officer),
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");
    h.call(
        Method::GET,
        "/api/v1/print-batches/x/pdf",
        Some(&officer),
        None,
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "bad_request");
}
