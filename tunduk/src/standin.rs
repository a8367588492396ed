//! A stand-in for the city's X-Road security server in front of the vehicle registry,
//! for tests and the demo (feature `standin`). It binds 127.0.0.1:0 and enforces the
//! protocol as a security server would:
//!
//! - SOAP (`POST /`, `text/xml`): a well-formed SOAP 1.1 envelope; the header fields
//!   `client` (objectType SUBSYSTEM), `service` (SERVICE), `id` and `protocolVersion`
//!   4.0 exactly once, `userId` and `issue` at most once; the service it provides; a
//!   client on its allow-list; a body element named after the service code. Anything
//!   else is answered with an X-Road SOAP fault, spelled the old way
//!   (`Server.ServerProxy.AccessDenied`) or the new (`server.serverproxy.access_denied`).
//!   A reply copies the request's header fields verbatim and adds `requestHash`.
//! - REST r1 (`/r1/{service id}/{version}/{plate}`): `X-Road-Client` exactly once,
//!   a known service, an allowed client, `GET`; errors as `{"type","message","detail"}`
//!   with `X-Road-Error`.
//!
//! It answers `transportCurrentInfo` from an in-memory registry, with bodies shaped
//! like the WSDL's `transportCurrentInfoResponse` (an entry with several owners repeats
//! `person`, which that schema does not allow; real replies with co-owners are not
//! documented). It can be slowed down, made to fail the next requests, made to spoil
//! its header echo, and it counts requests.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::plate::plate_key;
use crate::provider::{fault_envelope, XRoadRequest};
use crate::rest::{decode_part, decode_path};
use crate::xml::{self, child, is, Element, VEHICLES_NS, XROAD_NS};
use crate::{XRoadClient, XRoadService, DEFAULT_SERVICE};

pub const REQUEST_HASH_ALGORITHM: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// How the stand-in spells the X-Road error codes it raises itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultStyle {
    /// Before X-Road 7.8: `Server.ServerProxy.AccessDenied`.
    #[default]
    Legacy,
    /// X-Road 7.8 on: `server.serverproxy.access_denied`.
    Modern,
}

impl FaultStyle {
    /// `prefix` like `Server.ServerProxy`, `name` like `AccessDenied`.
    pub fn code(self, prefix: &str, name: &str) -> String {
        match self {
            FaultStyle::Legacy => format!("{prefix}.{name}"),
            FaultStyle::Modern => {
                let mut snake = String::new();
                for (i, c) in name.chars().enumerate() {
                    if c.is_uppercase() && i > 0 {
                        snake.push('_');
                    }
                    snake.extend(c.to_lowercase());
                }
                format!("{}.{snake}", prefix.to_lowercase())
            }
        }
    }
}

/// A failure to serve instead of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500 with a plain-text body, as a crashed proxy would send.
    Http500,
    /// HTTP 500 with this fault code (sent verbatim) and message.
    Fault { code: String, message: String },
}

/// Which echoed header field the stand-in spoils.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoTamper {
    Id,
    Client,
    Service,
}

/// The provided service, the clients allowed to call it, and the fault spelling.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    pub service: XRoadService,
    pub allowed_clients: Vec<XRoadClient>,
    pub fault_style: FaultStyle,
}

impl StandInConfig {
    /// Provides [`DEFAULT_SERVICE`] to `allowed_clients`, legacy fault spelling.
    pub fn new(allowed_clients: Vec<XRoadClient>) -> Self {
        StandInConfig {
            service: XRoadService::parse(DEFAULT_SERVICE)
                .expect("the default service id should parse"),
            allowed_clients,
            fault_style: FaultStyle::Legacy,
        }
    }
}

/// A registry record as the registry prints it: raw text, so tests can put odd values
/// in (`None` is `xsi:nil`/`null`). The defaults are valid against the WSDL's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub address: Option<EntryAddress>,
    pub owners: Vec<EntryOwner>,
    pub car: EntryCar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryOwner {
    pub pin: Option<String>,
    pub surname: String,
    pub name: String,
    pub patronymic: String,
    /// `xsd:date`, not nillable: "no date" is `0001-01-01`.
    pub birthdate: String,
    pub passport_no: String,
    pub passport_date: String,
    pub passport_organ: String,
}

impl Default for EntryOwner {
    fn default() -> Self {
        EntryOwner {
            pin: None,
            surname: String::new(),
            name: String::new(),
            patronymic: String::new(),
            birthdate: "0001-01-01".to_owned(),
            passport_no: String::new(),
            passport_date: "0001-01-01".to_owned(),
            passport_organ: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryAddress {
    pub obl: Option<String>,
    pub raion: Option<String>,
    pub aymak: Option<String>,
    pub village: Option<String>,
    pub street: Option<String>,
    /// `xsd:byte` in the WSDL.
    pub house: Option<String>,
    pub building: Option<String>,
    /// `xsd:byte` in the WSDL.
    pub flat: Option<String>,
    pub full_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryCar {
    pub vid: String,
    pub gov_plate: String,
    pub gov_plate_type: String,
    pub steering: Option<String>,
    /// `xsd:short`.
    pub year: String,
    pub engine_no: String,
    pub motor_type: String,
    pub chassis_no: String,
    pub body_no: String,
    pub pts_number: String,
    pub brand: String,
    pub model: String,
    pub max_load: String,
    pub color: String,
    /// `xsd:byte`.
    pub car_type_code: String,
    pub car_type_name: String,
    pub full_number: String,
    pub tech_number: String,
    pub tech_seria: String,
    pub body_type: String,
    /// `xsd:short`.
    pub engine_volume: String,
    pub weight: String,
}

impl Default for EntryCar {
    fn default() -> Self {
        EntryCar {
            vid: String::new(),
            gov_plate: String::new(),
            gov_plate_type: String::new(),
            steering: None,
            year: "0".to_owned(),
            engine_no: String::new(),
            motor_type: String::new(),
            chassis_no: String::new(),
            body_no: String::new(),
            pts_number: String::new(),
            brand: String::new(),
            model: String::new(),
            max_load: String::new(),
            color: String::new(),
            car_type_code: "0".to_owned(),
            car_type_name: String::new(),
            full_number: String::new(),
            tech_number: String::new(),
            tech_seria: String::new(),
            body_type: String::new(),
            engine_volume: "0".to_owned(),
            weight: String::new(),
        }
    }
}

impl RegistryEntry {
    /// A person's car: a 2015 white Toyota Camry in Bishkek.
    pub fn person(plate: &str, pin: &str, surname: &str, name: &str, patronymic: &str) -> Self {
        RegistryEntry {
            address: Some(EntryAddress {
                obl: Some("г. Бишкек".to_owned()),
                raion: Some("Первомайский район".to_owned()),
                street: Some("ул. Киевская".to_owned()),
                house: Some("96".to_owned()),
                flat: Some("12".to_owned()),
                full_address: Some("г. Бишкек, ул. Киевская, д. 96, кв. 12".to_owned()),
                ..EntryAddress::default()
            }),
            owners: vec![EntryOwner {
                pin: Some(pin.to_owned()),
                surname: surname.to_owned(),
                name: name.to_owned(),
                patronymic: patronymic.to_owned(),
                birthdate: "1985-07-03".to_owned(),
                passport_no: "AN1234567".to_owned(),
                passport_date: "2015-02-10".to_owned(),
                passport_organ: "МКК 211011".to_owned(),
            }],
            car: EntryCar {
                vid: "Легковой".to_owned(),
                gov_plate: plate.to_owned(),
                gov_plate_type: "Стандартный".to_owned(),
                steering: Some("Левый".to_owned()),
                year: "2015".to_owned(),
                engine_no: "2AR1234567".to_owned(),
                motor_type: "Бензин".to_owned(),
                body_no: "JTNBE46K173012345".to_owned(),
                pts_number: "KG123456".to_owned(),
                brand: "TOYOTA".to_owned(),
                model: "CAMRY".to_owned(),
                color: "Белый".to_owned(),
                car_type_code: "1".to_owned(),
                car_type_name: "Легковой седан".to_owned(),
                tech_number: "0123456".to_owned(),
                tech_seria: "KG".to_owned(),
                body_type: "Седан".to_owned(),
                engine_volume: "2494".to_owned(),
                weight: "1480".to_owned(),
                ..EntryCar::default()
            },
        }
    }

    /// A company's car: the company's INN in `pin`, its name in `surname`, no
    /// birthdate or passport — the only way `transportCurrentInfoResponse` can carry
    /// a company.
    pub fn company(plate: &str, inn: &str, name: &str) -> Self {
        let mut entry = RegistryEntry::person(plate, inn, name, "", "");
        entry.owners = vec![EntryOwner {
            pin: Some(inn.to_owned()),
            surname: name.to_owned(),
            ..EntryOwner::default()
        }];
        if let Some(address) = &mut entry.address {
            address.flat = None;
            address.full_address = Some("г. Бишкек, ул. Киевская, д. 96".to_owned());
        }
        entry
    }

    /// Adds a co-owner.
    pub fn with_owner(mut self, owner: EntryOwner) -> Self {
        self.owners.push(owner);
        self
    }
}

/// What the stand-in answers for a plate.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Entry(Box<RegistryEntry>),
    /// The SOAP body element, written as given (for replies no entry can express).
    RawSoapPayload(String),
    /// The REST body, as given.
    RawJson(serde_json::Value),
}

struct Shared {
    service: XRoadService,
    allowed: Mutex<Vec<XRoadClient>>,
    style: Mutex<FaultStyle>,
    answers: Mutex<HashMap<String, Answer>>,
    delay: Mutex<Duration>,
    failures: Mutex<VecDeque<Failure>>,
    tamper: Mutex<Option<EchoTamper>>,
    fallback: Mutex<Option<Fallback>>,
    requests: AtomicUsize,
    /// Every this-many-th request fails with HTTP 500 (0: none).
    fail_every: AtomicUsize,
}

/// Makes the registry's record for a plate that has no answer set.
pub type Fallback = Arc<dyn Fn(&str) -> RegistryEntry + Send + Sync>;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("service", &self.service)
            .field("answers", &lock(&self.answers).len())
            .field("requests", &self.requests.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every write here is a single assignment: a poisoned value is still whole.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Counts the request, waits the set delay, and takes the next planned failure.
    async fn arrive(&self) -> Option<Failure> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = *lock(&self.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let planned = lock(&self.failures).pop_front();
        let every = self.fail_every.load(Ordering::SeqCst);
        planned.or_else(|| (every > 0 && n.is_multiple_of(every)).then_some(Failure::Http500))
    }

    fn answer(&self, plate: &str) -> Option<Answer> {
        if let Some(answer) = lock(&self.answers).get(&plate_key(plate)) {
            return Some(answer.clone());
        }
        let fallback = lock(&self.fallback).clone();
        fallback.map(|make| Answer::Entry(Box::new(make(plate))))
    }
}

/// A running stand-in. Dropping it stops the server.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Binds 127.0.0.1 on a free port and serves until shut down or dropped.
    pub async fn start(config: StandInConfig) -> std::io::Result<StandIn> {
        let shared = Arc::new(Shared {
            service: config.service,
            allowed: Mutex::new(config.allowed_clients),
            style: Mutex::new(config.fault_style),
            answers: Mutex::new(HashMap::new()),
            delay: Mutex::new(Duration::ZERO),
            failures: Mutex::new(VecDeque::new()),
            tamper: Mutex::new(None),
            fallback: Mutex::new(None),
            requests: AtomicUsize::new(0),
            fail_every: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let router = Router::new()
            .route("/", any(soap_endpoint))
            .route("/r1/{*rest}", any(rest_endpoint))
            .with_state(shared.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(error = %error, "stand-in security server stopped");
            }
        });
        Ok(StandIn {
            addr,
            shared,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The security server's URL: the SOAP endpoint, and the base of `/r1/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn set_entry(&self, plate: &str, entry: RegistryEntry) {
        self.set_answer(plate, Answer::Entry(Box::new(entry)));
    }

    pub fn set_answer(&self, plate: &str, answer: Answer) {
        lock(&self.shared.answers).insert(plate_key(plate), answer);
    }

    /// Every plate without its own answer gets `make(plate)`: a registry that knows
    /// every car, for the demo and end-to-end tests.
    pub fn set_fallback(&self, make: Option<Fallback>) {
        *lock(&self.shared.fallback) = make;
    }

    pub fn remove(&self, plate: &str) {
        lock(&self.shared.answers).remove(&plate_key(plate));
    }

    /// Every request waits this long before it is handled.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    /// The next `n` requests, of either protocol, get `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        lock(&self.shared.failures).extend(std::iter::repeat_n(failure, n));
    }

    /// From now on every `n`-th request (counted from the start) fails with HTTP 500;
    /// 0 stops it.
    pub fn fail_every(&self, n: usize) {
        self.shared.fail_every.store(n, Ordering::SeqCst);
    }

    pub fn set_fault_style(&self, style: FaultStyle) {
        *lock(&self.shared.style) = style;
    }

    pub fn set_allowed_clients(&self, clients: Vec<XRoadClient>) {
        *lock(&self.shared.allowed) = clients;
    }

    pub fn set_echo_tamper(&self, tamper: Option<EchoTamper>) {
        *lock(&self.shared.tamper) = tamper;
    }

    /// Requests received so far, rejected ones included.
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Stops accepting, lets running requests finish for up to a second.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An X-Road error the stand-in raises: `prefix` like `Server.ServerProxy`, `name`
/// like `AccessDenied`.
struct Rejection {
    status: StatusCode,
    prefix: &'static str,
    name: &'static str,
    message: String,
}

fn reject(prefix: &'static str, name: &'static str, message: impl Into<String>) -> Rejection {
    Rejection {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        prefix,
        name,
        message: message.into(),
    }
}

fn soap_fault(status: StatusCode, code: &str, message: &str) -> Response {
    let body = fault_envelope(code, message, &Uuid::now_v7().to_string());
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn plain_500() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "internal server error",
    )
        .into_response()
}

async fn soap_endpoint(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shared.arrive().await {
        Some(Failure::Http500) => return plain_500(),
        Some(Failure::Fault { code, message }) => {
            return soap_fault(StatusCode::INTERNAL_SERVER_ERROR, &code, &message)
        }
        None => {}
    }
    match handle_soap(&shared, &method, &headers, &body) {
        Ok(response) => response,
        Err(rejection) => {
            let style = *lock(&shared.style);
            soap_fault(
                rejection.status,
                &style.code(rejection.prefix, rejection.name),
                &rejection.message,
            )
        }
    }
}

fn handle_soap(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Rejection> {
    if method != Method::POST {
        return Err(Rejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            ..reject(
                "Client",
                "InvalidHttpMethod",
                format!("http method {method} is not allowed"),
            )
        });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request = XRoadRequest::read(content_type, body).map_err(|fault| Rejection {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        prefix: fault.prefix,
        name: fault.name,
        message: fault.message,
    })?;
    let service = &request.service;
    if *service != shared.service {
        return Err(reject(
            "Server.ServerProxy",
            "UnknownService",
            format!("Unknown service: SERVICE:{service}"),
        ));
    }
    if !lock(&shared.allowed).contains(&request.client) {
        return Err(reject(
            "Server.ServerProxy",
            "AccessDenied",
            format!("Request is not allowed: SERVICE:{service}"),
        ));
    }
    let plate = request.with_payload(|payload| {
        is(payload, VEHICLES_NS, service.service_code()).then(|| {
            child(payload, VEHICLES_NS, "request")
                .and_then(|r| child(r, VEHICLES_NS, "govPlate"))
                .map(|n| xml::text(n).trim().to_owned())
                .unwrap_or_default()
        })
    });
    let plate = plate.ok_or_else(|| {
        reject(
            "Client",
            "InvalidBody",
            format!(
                "the body element must be {{{VEHICLES_NS}}}{}",
                service.service_code()
            ),
        )
    })?;
    let reply_payload = match shared.answer(&plate) {
        Some(Answer::RawSoapPayload(raw)) => raw,
        Some(Answer::Entry(entry)) => soap_payload(service, &plate, Some(&*entry)),
        Some(Answer::RawJson(_)) | None => soap_payload(service, &plate, None),
    };
    let tamper = *lock(&shared.tamper);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        reply_envelope(&request, &reply_payload, tamper),
    )
        .into_response())
}

/// The reply envelope a security server passes back: the provider's reply (the
/// request's header fields, one spoiled if asked) with `requestHash` added.
fn reply_envelope(request: &XRoadRequest, payload: &str, tamper: Option<EchoTamper>) -> String {
    let spoiled = tamper.and_then(|tamper| {
        let (field, part, replacement) = match tamper {
            EchoTamper::Id => ("id", None, "00000000-0000-0000-0000-000000000000"),
            EchoTamper::Client => ("client", Some("memberCode"), "00000000"),
            EchoTamper::Service => ("service", Some("serviceCode"), "tamperedService"),
        };
        request.header_fields_spoiled(field, part, replacement)
    });
    let fields = spoiled.unwrap_or_else(|| request.header_fields().to_owned());
    let hash =
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(request.text().as_bytes()));
    let header = format!(
        r#"{fields}<xrd:requestHash xmlns:xrd="{XROAD_NS}" algorithmId="{REQUEST_HASH_ALGORITHM}">{hash}</xrd:requestHash>"#
    );
    request.reply_with_header(&header, payload)
}

/// `transportCurrentInfoResponse` for `entry`, or the "not found" reply (status 203,
/// every required element present and empty) when there is none.
fn soap_payload(service: &XRoadService, plate: &str, entry: Option<&RegistryEntry>) -> String {
    let request = Element::new("request")
        .child(Element::text("govPlate", plate))
        .child(Element::text("bodyNo", ""))
        .child(Element::text("engineNo", ""))
        .child(Element::text("chassisNo", ""));
    let blank_owner = [EntryOwner::default()];
    let blank_car = EntryCar::default();
    let (status, address, owners, car) = match entry {
        Some(entry) => ("200", entry.address.as_ref(), &entry.owners[..], &entry.car),
        None => ("203", None, &blank_owner[..], &blank_car),
    };
    let mut response = Element::new("response").child(Element::text("status", status));
    response = response.child(match address {
        Some(a) => [
            ("obl", &a.obl),
            ("raion", &a.raion),
            ("aymak", &a.aymak),
            ("village", &a.village),
            ("street", &a.street),
            ("house", &a.house),
            ("building", &a.building),
            ("flat", &a.flat),
            ("fullAddress", &a.full_address),
        ]
        .into_iter()
        .fold(Element::new("address"), |e, (name, value)| {
            e.child(Element::optional(name, value.as_deref()))
        }),
        None => Element::nil("address"),
    });
    for owner in owners {
        response = response.child(
            Element::new("person")
                .child(Element::optional("pin", owner.pin.as_deref()))
                .child(Element::text("surname", &owner.surname))
                .child(Element::text("name", &owner.name))
                .child(Element::text("patronymic", &owner.patronymic))
                .child(Element::text("birthdate", &owner.birthdate))
                .child(Element::text("passportNo", &owner.passport_no))
                .child(Element::text("passportDate", &owner.passport_date))
                .child(Element::text("passportOrgan", &owner.passport_organ)),
        );
    }
    let mut car_element = Element::new("car");
    for (name, value) in car_fields(car) {
        car_element = car_element.child(match value {
            Some(value) => Element::text(name, value),
            None => Element::nil(name),
        });
    }
    let root = Element::new(&format!("{}Response", service.service_code()))
        .in_namespace(VEHICLES_NS)
        .child(request)
        .child(response.child(car_element));
    root.to_xml()
}

fn car_fields(car: &EntryCar) -> [(&'static str, Option<&str>); 22] {
    [
        ("vid", Some(&car.vid)),
        ("govPlate", Some(&car.gov_plate)),
        ("govPlateType", Some(&car.gov_plate_type)),
        ("steering", car.steering.as_ref()),
        ("year", Some(&car.year)),
        ("engineNo", Some(&car.engine_no)),
        ("motorType", Some(&car.motor_type)),
        ("chassisNo", Some(&car.chassis_no)),
        ("bodyNo", Some(&car.body_no)),
        ("ptsNumber", Some(&car.pts_number)),
        ("brand", Some(&car.brand)),
        ("model", Some(&car.model)),
        ("maxLoad", Some(&car.max_load)),
        ("color", Some(&car.color)),
        ("carTypeCode", Some(&car.car_type_code)),
        ("carTypeName", Some(&car.car_type_name)),
        ("fullNumber", Some(&car.full_number)),
        ("techNumber", Some(&car.tech_number)),
        ("techSeria", Some(&car.tech_seria)),
        ("bodyType", Some(&car.body_type)),
        ("engineVolume", Some(&car.engine_volume)),
        ("weight", Some(&car.weight)),
    ]
    .map(|(name, value)| (name, value.map(String::as_str)))
}

/// The REST body: the SOAP reply's structure in JSON; integers as numbers.
fn json_payload(plate: &str, entry: Option<&RegistryEntry>) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let value = |raw: Option<&str>| match raw {
        None => Value::Null,
        Some(raw) => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(raw)),
    };
    let text = |raw: Option<&str>| raw.map_or(Value::Null, Value::from);
    let blank_owner = [EntryOwner::default()];
    let blank_car = EntryCar::default();
    let (status, address, owners, car) = match entry {
        Some(entry) => (200, entry.address.as_ref(), &entry.owners[..], &entry.car),
        None => (203, None, &blank_owner[..], &blank_car),
    };
    let address = address.map_or(Value::Null, |a| {
        json!({
            "obl": text(a.obl.as_deref()),
            "raion": text(a.raion.as_deref()),
            "aymak": text(a.aymak.as_deref()),
            "village": text(a.village.as_deref()),
            "street": text(a.street.as_deref()),
            "house": value(a.house.as_deref()),
            "building": text(a.building.as_deref()),
            "flat": value(a.flat.as_deref()),
            "fullAddress": text(a.full_address.as_deref()),
        })
    });
    let persons: Vec<Value> = owners
        .iter()
        .map(|o| {
            json!({
                "pin": text(o.pin.as_deref()),
                "surname": o.surname,
                "name": o.name,
                "patronymic": o.patronymic,
                "birthdate": o.birthdate,
                "passportNo": o.passport_no,
                "passportDate": o.passport_date,
                "passportOrgan": o.passport_organ,
            })
        })
        .collect();
    let numeric = ["year", "carTypeCode", "engineVolume"];
    let car: Map<String, Value> = car_fields(car)
        .into_iter()
        .map(|(name, raw)| {
            let v = if numeric.contains(&name) {
                value(raw)
            } else {
                text(raw)
            };
            (name.to_owned(), v)
        })
        .collect();
    let person = match persons.len() {
        1 => persons.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(persons),
    };
    json!({
        "request": {"govPlate": plate, "bodyNo": "", "engineNo": "", "chassisNo": ""},
        "response": {"status": status, "address": address, "person": person, "car": car},
    })
}

struct RestError {
    status: StatusCode,
    code: String,
    message: String,
    /// X-Road's own errors carry `X-Road-Error`; a provider's do not.
    from_xroad: bool,
}

fn rest_error(response: RestError) -> Response {
    let body = serde_json::json!({
        "type": response.code,
        "message": response.message,
        "detail": Uuid::now_v7().to_string(),
    });
    let mut http = (
        response.status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    if response.from_xroad {
        if let Ok(value) = HeaderValue::from_str(&response.code) {
            http.headers_mut().insert("x-road-error", value);
        }
    }
    http
}

async fn rest_endpoint(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match shared.arrive().await {
        Some(Failure::Http500) => return plain_500(),
        Some(Failure::Fault { code, message }) => {
            return rest_error(RestError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code,
                message,
                from_xroad: true,
            })
        }
        None => {}
    }
    let style = *lock(&shared.style);
    let xroad = |status: StatusCode, prefix: &str, name: &str, message: String| RestError {
        status,
        code: style.code(prefix, name),
        message,
        from_xroad: true,
    };
    handle_rest(&shared, &method, &uri, &headers, xroad).unwrap_or_else(rest_error)
}

fn handle_rest(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    xroad: impl Fn(StatusCode, &str, &str, String) -> RestError,
) -> Result<Response, RestError> {
    let bad_request = |message: &str| {
        xroad(
            StatusCode::BAD_REQUEST,
            "Client",
            "BadRequest",
            message.to_owned(),
        )
    };
    let client_headers: Vec<&HeaderValue> = headers.get_all("x-road-client").iter().collect();
    let [client_header] = client_headers.as_slice() else {
        return Err(bad_request("X-Road-Client must appear exactly once"));
    };
    let client = client_header
        .to_str()
        .ok()
        .and_then(decode_path)
        .and_then(|path| XRoadClient::parse(&path).ok())
        .ok_or_else(|| bad_request("invalid X-Road-Client"))?;
    let parts: Vec<String> = uri
        .path()
        .strip_prefix("/r1/")
        .unwrap_or_default()
        .split('/')
        .map(decode_part)
        .collect::<Option<_>>()
        .ok_or_else(|| bad_request("invalid percent-encoding in the path"))?;
    if parts.len() < 5 {
        return Err(bad_request("the path must name a service"));
    }
    let service_id = parts[..5].join("/");
    if service_id != shared.service.rest_id() {
        return Err(xroad(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.ServerProxy",
            "UnknownService",
            format!("Unknown service: SERVICE:{service_id}"),
        ));
    }
    if !lock(&shared.allowed).contains(&client) {
        return Err(xroad(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.ServerProxy",
            "AccessDenied",
            format!("Request is not allowed: SERVICE:{service_id}"),
        ));
    }
    // From here on the provider answers, not X-Road.
    let provider = |status: StatusCode, message: &str| RestError {
        status,
        code: status.as_u16().to_string(),
        message: message.to_owned(),
        from_xroad: false,
    };
    if method != Method::GET {
        return Err(provider(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served",
        ));
    }
    let rest: Vec<&str> = parts[5..].iter().map(String::as_str).collect();
    let plate = match (shared.service.service_version(), rest.as_slice()) {
        (Some(version), [v, plate]) if v == &version => *plate,
        (None, [plate]) => *plate,
        _ => return Err(provider(StatusCode::NOT_FOUND, "no such resource")),
    };
    let body = match shared.answer(plate) {
        Some(Answer::RawJson(value)) => value,
        Some(Answer::Entry(entry)) => json_payload(plate, Some(&*entry)),
        Some(Answer::RawSoapPayload(_)) | None => json_payload(plate, None),
    };
    let tamper = *lock(&shared.tamper);
    let id = match (
        tamper,
        headers.get("x-road-id").and_then(|v| v.to_str().ok()),
    ) {
        (Some(EchoTamper::Id), _) | (_, None) => Uuid::now_v7().to_string(),
        (_, Some(id)) => id.to_owned(),
    };
    let client_echo = match tamper {
        Some(EchoTamper::Client) => "central-server/GOV/00000000/tampered".to_owned(),
        _ => client_header.to_str().unwrap_or_default().to_owned(),
    };
    let service_echo = match tamper {
        Some(EchoTamper::Service) => format!("{}/tampered", shared.service.provider()),
        _ => shared.service.rest_id(),
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    for (name, value) in [
        ("x-road-id", id),
        ("x-road-client", client_echo),
        ("x-road-service", service_echo),
        ("x-road-request-id", Uuid::now_v7().to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_spellings() {
        let cases = [
            (
                "Server.ServerProxy",
                "AccessDenied",
                "Server.ServerProxy.AccessDenied",
                "server.serverproxy.access_denied",
            ),
            (
                "Client",
                "InvalidSoap",
                "Client.InvalidSoap",
                "client.invalid_soap",
            ),
            (
                "Client",
                "MissingHeaderField",
                "Client.MissingHeaderField",
                "client.missing_header_field",
            ),
        ];
        for (prefix, name, legacy, modern) in cases {
            assert_eq!(FaultStyle::Legacy.code(prefix, name), legacy);
            assert_eq!(FaultStyle::Modern.code(prefix, name), modern);
        }
    }
}
