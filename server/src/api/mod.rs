//! The HTTP API: health and metrics for operators, JSON under `/api/v1` for staff,
//! every route but health, metrics, login and the public resolution checks (verify a
//! PDF, the signing keys) behind a bearer token of an allowed role.

mod access;
mod accidents;
mod accounts;
mod appeals;
mod cameras;
mod cases;
mod checks;
mod dashboard;
mod dead_letters;
mod error;
mod nominations;
mod officer_violations;
mod oidc;
mod open_data;
mod pages;
mod paging;
mod payment_api;
mod portal;
mod print_batches;
mod resolutions;
mod review;
mod sessions;
mod smartcity;
mod statements;
mod system;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::rejection::JsonRejection;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use kozomol_core::stage_metrics::StageMetrics;
use kozomol_core::CameraId;
use kozomol_ingest::IngestMetrics;
use kozomol_store::{EvidenceStore, Store};
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use access::{
    AccountReaders, Admins, AnyStaff, CaseReaders, DeadLetterReaders, DeskOfficers, Finance,
    FinanceReaders, ListKeepers, Policy, Reviewers, Supervisors, Voiders,
};
pub use error::{ApiError, FieldProblem, PROBLEM_CODES};
pub use oidc::{OidcClient, CALLBACK_PATH as OIDC_CALLBACK_PATH};
pub use pages::escape_html;
pub use payment_api::{
    request_signing_payload, PaymentProblem, IDEMPOTENCY_HEADER, REPLAYED_HEADER, SIGNATURE_HEADER,
};
pub use portal::LookupLimit;
pub use smartcity::SmartcityService;
pub use system::{probes_router, ProcessProbes};

use crate::auth::AttemptLimiter;
use crate::metrics::HttpMetrics;

/// Hands a signed camera config to the cameras (over MQTT: a retained publish on
/// `kozomol/v1/cameras/{id}/config`).
#[async_trait]
pub trait CameraConfigPublisher: Send + Sync {
    async fn publish_config(&self, camera: &CameraId, signed_config: Vec<u8>)
        -> Result<(), String>;
}

/// What the API needs from the rest of the process.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub evidence: Arc<EvidenceStore>,
    pub ingest_metrics: Arc<IngestMetrics>,
    /// The process's pipeline stages (recognizer, fines), shown on `/metrics`.
    pub stage_metrics: Arc<StageMetrics>,
    /// Base of every link the API prints, e.g. `https://kozomol.example.kg`.
    pub public_base_url: String,
    /// Set once the process's parts have started; `/readyz` answers 503 until then.
    pub ready: Arc<AtomicBool>,
    /// Signs camera config; cameras hold its public half.
    pub server_key: Arc<ed25519_dalek::SigningKey>,
    /// `None` in a process that has no broker connection.
    pub config_publisher: Option<Arc<dyn CameraConfigPublisher>>,
    /// A machine read below this confidence (thousandths) is weak: a reviewer's
    /// approval of it goes to a supervisor.
    pub weak_read_below_milli: u16,
    /// The public keys resolution signatures are verified with (published).
    pub resolution_keys: Arc<kozomol_fines::resolution::VerifyingKeys>,
    /// Whose calendar days the API judges dates by (a speed gun's certificate).
    pub jurisdiction: kozomol_core::Jurisdiction,
    /// Tunduk's `smartcity-service` at `/xroad/soap`; `None` answers that it is not
    /// provided here.
    pub smartcity: Option<Arc<SmartcityService>>,
    /// The payment providers of the REST payment API, with their secrets.
    pub payment_providers: Arc<Vec<crate::settings::PaymentProvider>>,
    /// The account fines are paid to, for the portal's payment QR; `None` shows none.
    pub merchant: Option<Arc<kozomol_payments::MerchantAccount>>,
    /// How many fine lookups the portal takes from one address.
    pub lookup_limit: LookupLimit,
    /// A card payment provider's checkout page the portal sends payers to; `None`
    /// offers no card payment.
    pub card_checkout_url: Option<String>,
    /// The city's identity provider for console logins; `None`: passwords only.
    pub oidc: Option<Arc<OidcClient>>,
    /// Reverse proxies whose `X-Forwarded-For` names the client the portal's limiter
    /// counts; empty: the peer is the client.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The channels (SMS, e-mail) a portal contact's confirmation code goes by: the
    /// delivery worker's own senders; a channel not here takes no contacts on the portal.
    pub contact_channels: Arc<Vec<Arc<dyn kozomol_fines::delivery::MessageSender>>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        evidence: Arc<EvidenceStore>,
        ingest_metrics: Arc<IngestMetrics>,
        public_base_url: impl Into<String>,
        server_key: Arc<ed25519_dalek::SigningKey>,
    ) -> Self {
        AppState {
            store,
            evidence,
            ingest_metrics,
            stage_metrics: Arc::default(),
            public_base_url: public_base_url.into(),
            ready: Arc::new(AtomicBool::new(false)),
            server_key,
            config_publisher: None,
            weak_read_below_milli: 900,
            resolution_keys: Arc::default(),
            jurisdiction: kozomol_core::Jurisdiction::Kg,
            smartcity: None,
            payment_providers: Arc::default(),
            merchant: None,
            lookup_limit: LookupLimit::default(),
            card_checkout_url: None,
            oidc: None,
            trusted_proxies: Arc::default(),
            contact_channels: Arc::default(),
        }
    }

    pub fn with_config_publisher(mut self, publisher: Arc<dyn CameraConfigPublisher>) -> Self {
        self.config_publisher = Some(publisher);
        self
    }

    /// What `/readyz` and `/metrics` read.
    pub fn probes(&self) -> ProcessProbes {
        ProcessProbes {
            store: Arc::clone(&self.store),
            ready: Arc::clone(&self.ready),
            ingest_metrics: Arc::clone(&self.ingest_metrics),
            stage_metrics: Arc::clone(&self.stage_metrics),
            needs_broker: false,
        }
    }

    /// `public_base_url` joined with an absolute `path`.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_base_url.trim_end_matches('/'))
    }
}

/// The router's own state, shared: every handler and middleware takes a clone of it a
/// request, so a clone is one reference count, not a copy of every field.
#[derive(Clone)]
pub(crate) struct ApiState(Arc<RouterState>);

/// The caller's `AppState` plus what lives as long as the router.
pub(crate) struct RouterState {
    pub(crate) app: AppState,
    pub(crate) http_metrics: HttpMetrics,
    /// Portal requests per address (a flood guard, per process; the budgets that guard
    /// secrets are the database's: `auth::LOGIN_ALLOWANCE`, the plate lookups').
    pub(crate) lookups: AttemptLimiter,
    /// Password checks per address (a flood guard, per process: each is an Argon2
    /// hash; `auth::ADDRESS_PASSWORD_CHECKS`).
    pub(crate) password_checks: AttemptLimiter,
}

impl std::ops::Deref for ApiState {
    type Target = RouterState;

    fn deref(&self) -> &RouterState {
        &self.0
    }
}

/// Ten attachments of 10 MiB, base64 (4/3), and the text around them.
const APPEAL_BODY_LIMIT: usize = 10 * 14 * 1024 * 1024 + 64 * 1024;
/// A citizen's appeal through the portal: about 15 MiB of photos and documents, as a
/// phone sends them; anything larger goes through an officer's desk.
const PUBLIC_APPEAL_BODY_LIMIT: usize = 20 * 1024 * 1024 + 64 * 1024;

/// Every route of the API; each handler names its role policy in its signature.
pub fn router(state: AppState) -> Router {
    let lookup_limit = state.lookup_limit;
    let state = ApiState(Arc::new(RouterState {
        app: state,
        http_metrics: HttpMetrics::default(),
        lookups: AttemptLimiter::new(lookup_limit.lookups, lookup_limit.window),
        password_checks: AttemptLimiter::new(
            crate::auth::ADDRESS_PASSWORD_CHECKS,
            crate::auth::ADDRESS_PASSWORD_WINDOW,
        ),
    }));
    Router::new()
        .route("/", get(pages::portal))
        .route("/v/{number}", get(pages::portal))
        .route("/console", get(pages::console))
        .route("/console/login", get(pages::login))
        .route("/console/oidc/login", get(oidc::start))
        .route("/console/oidc/callback", get(oidc::callback))
        .route("/console/queue", get(pages::queue))
        .route("/console/cameras", get(pages::cameras))
        .route("/console/dead-letters", get(pages::dead_letters))
        .route("/console/accounts", get(pages::accounts))
        .route("/console/finance", get(pages::finance))
        .route("/console/reports", get(pages::reports))
        .route("/assets/{*file}", get(pages::asset))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/openapi.json", get(system::openapi))
        // Its own access rules: the security server's address, then X-Road clients.
        .route("/xroad/soap", post(smartcity::endpoint))
        // Signed by the provider (HMAC), not a bearer token.
        .route(
            "/api/v1/providers/{provider}/payment-intents",
            post(payment_api::create_intent),
        )
        .route(
            "/api/v1/providers/{provider}/payment-intents/{id}",
            get(payment_api::show_intent),
        )
        .route(
            "/api/v1/providers/{provider}/payment-intents/{id}/cancel",
            post(payment_api::cancel_intent),
        )
        .route(
            "/api/v1/providers/{provider}/callbacks",
            post(payment_api::callback),
        )
        .route("/api/v1/payment-callbacks", get(payment_api::callbacks))
        .route(
            "/api/v1/statements",
            post(statements::import).layer(DefaultBodyLimit::max(statements::MAX_STATEMENT_BYTES)),
        )
        .route("/api/v1/statement-lines", get(statements::lines))
        .route(
            "/api/v1/statement-lines/{id}/resolution",
            post(statements::resolve),
        )
        .route("/api/v1/payment-totals", get(statements::totals))
        .route("/api/v1/open-data/violations", get(open_data::violations))
        .route("/api/v1/dashboard", get(dashboard::show))
        .route("/console/dashboard", get(pages::dashboard))
        .route("/open-data", get(pages::open_data))
        .route("/api/v1/public/lookups", post(portal::lookup))
        .route("/api/v1/public/fines/{number}", get(portal::show))
        .route(
            "/api/v1/public/fines/{number}/frames/{n}",
            get(portal::frame),
        )
        .route("/api/v1/public/fines/{number}/pdf", get(portal::pdf))
        .route("/api/v1/public/fines/{number}/qr.svg", get(portal::qr_svg))
        .route(
            "/api/v1/public/fines/{number}/contacts",
            post(portal::leave_contact),
        )
        .route(
            "/api/v1/public/fines/{number}/contacts/{handle}",
            post(portal::confirm_contact),
        )
        .route(
            "/api/v1/public/fines/{number}/appeals",
            post(portal::appeal).layer(DefaultBodyLimit::max(PUBLIC_APPEAL_BODY_LIMIT)),
        )
        .route("/api/v1/auth/token", post(accounts::login))
        .route(
            "/api/v1/auth/session",
            get(sessions::show)
                .post(sessions::open)
                .delete(sessions::close),
        )
        .route("/api/v1/auth/password", put(accounts::change_password))
        .route(
            "/api/v1/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route("/api/v1/accounts/{login}", patch(accounts::change))
        .route(
            "/api/v1/accounts/{login}/officer",
            put(accounts::register_officer),
        )
        .route("/api/v1/server-key", get(cameras::server_key))
        .route(
            "/api/v1/cameras",
            get(cameras::list).post(cameras::register),
        )
        .route("/api/v1/cameras/{id}", get(cameras::show))
        .route("/api/v1/cameras/{id}/config", put(cameras::put_config))
        .route("/api/v1/cases", get(cases::list))
        .route("/api/v1/cases/{id}", get(cases::show))
        .route("/api/v1/cases/{id}/frames/{n}", get(cases::frame))
        .route("/api/v1/cases/{id}/plate-crop", get(cases::plate_crop))
        .route("/api/v1/cases/{id}/review", post(review::decide))
        .route("/api/v1/cases/{id}/reviews", get(review::list))
        .route(
            "/api/v1/cases/{id}/appeals",
            get(appeals::list)
                .post(appeals::file)
                .layer(DefaultBodyLimit::max(APPEAL_BODY_LIMIT)),
        )
        .route("/api/v1/appeals/{id}/decision", post(appeals::decide))
        .route(
            "/api/v1/appeals/{id}/attachments/{n}",
            get(appeals::attachment),
        )
        .route(
            "/api/v1/officer-violations",
            post(officer_violations::file).layer(DefaultBodyLimit::max(APPEAL_BODY_LIMIT)),
        )
        .route(
            "/api/v1/accidents",
            get(accidents::list)
                .post(accidents::register)
                .layer(DefaultBodyLimit::max(APPEAL_BODY_LIMIT)),
        )
        .route("/api/v1/accidents/{id}", get(accidents::show))
        .route("/api/v1/accidents/{id}/files/{n}", get(accidents::file))
        .route("/api/v1/accidents/{id}/moves", post(accidents::move_on))
        .route("/api/v1/bulk-voids", post(appeals::bulk_void))
        .route("/api/v1/refund-requests", get(appeals::refunds))
        .route(
            "/api/v1/refund-requests/{id}/settlement",
            post(appeals::settle_refund),
        )
        .route(
            "/api/v1/exemptions",
            get(checks::exemptions).post(checks::add_exemption),
        )
        .route("/api/v1/exemptions/{id}", delete(checks::remove_exemption))
        .route(
            "/api/v1/hot-list",
            get(checks::hot_list).post(checks::add_hot_list_entry),
        )
        .route(
            "/api/v1/hot-list/{plate}",
            delete(checks::remove_hot_list_entry),
        )
        .route("/api/v1/alerts", get(checks::alerts))
        .route("/api/v1/alerts/{id}/acknowledge", post(checks::acknowledge))
        .route("/api/v1/resolutions/{number}", get(resolutions::show))
        .route("/api/v1/resolutions/{number}/pdf", get(resolutions::pdf))
        .route(
            "/api/v1/resolutions/{number}/nominations",
            get(nominations::show).post(nominations::record),
        )
        .route(
            "/api/v1/resolutions/{number}/deliveries",
            get(resolutions::deliveries).post(resolutions::record_proof),
        )
        .route(
            "/api/v1/owners/{owner_id}/contacts",
            post(resolutions::add_contact),
        )
        .route(
            "/api/v1/resolutions/{number}/verify",
            post(resolutions::check).layer(DefaultBodyLimit::max(resolutions::MAX_PDF_BYTES)),
        )
        .route("/api/v1/resolution-keys", get(resolutions::keys))
        .route("/api/v1/print-batches", get(print_batches::list))
        .route("/api/v1/print-batches/{id}/pdf", get(print_batches::pdf))
        .route(
            "/api/v1/print-batches/{id}/printed",
            post(print_batches::printed),
        )
        .route("/api/v1/dead-letters", get(dead_letters::list))
        .route("/api/v1/dead-letters/{id}/raw", get(dead_letters::raw))
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(|response: &Response, latency: Duration, span: &Span| {
                    span.record("http.response.status_code", response.status().as_u16());
                    tracing::debug!(
                        status = response.status().as_u16(),
                        latency_ms = latency.as_millis() as u64,
                        "finished processing request"
                    );
                }),
        )
        .with_state(state)
}

/// One span a request, named after its route (never the path: it holds plates and
/// numbers), following the caller's `traceparent` where it sent one.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "http",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    // Only an exported span needs its name spelled out (a string a request).
    if kozomol_telemetry::exporting() {
        span.record("otel.name", format!("{} {route}", request.method()));
        kozomol_telemetry::follow(&span, kozomol_telemetry::from_headers(request.headers()));
    }
    span
}

/// Counts every response by status class for `/metrics`.
async fn count_responses(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.http_metrics.count(response.status());
    response
}

/// A free-text field, trimmed: empty counts as absent; a problem when it is missing and
/// `required` (the message to give) or longer than `max_chars`.
pub(crate) fn text_field(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    value: Option<String>,
    max_chars: usize,
    required: Option<&str>,
) -> Option<String> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    match (&value, required) {
        (None, Some(message)) => problems.push(FieldProblem::new(field, message)),
        (Some(v), _) if v.chars().count() > max_chars => problems.push(FieldProblem::new(
            field,
            format!("at most {max_chars} characters"),
        )),
        _ => {}
    }
    value
}

/// The body of a JSON request: wrong shape is 422, not JSON at all is 400.
pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(value)) => Ok(value),
        Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation(vec![FieldProblem::new(
            "body",
            e.body_text(),
        )])),
        Err(other) if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::TooLarge)
        }
        Err(other) => Err(ApiError::BadRequest(other.body_text())),
    }
}
