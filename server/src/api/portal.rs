//! The citizens' side of the API, no account needed: finding one's fines (by plate and
//! vehicle registration certificate, by resolution number, by payment code), then
//! seeing, downloading, paying and appealing each through a short-lived grant the
//! lookup hands out. Lookups are counted per address so nobody can walk through
//! other people's fines; the grant keeps the photos and the PDF behind a lookup.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use ipnet::IpNet;
use kozomol_core::{decimal_degrees, CaseId, CaseState, ViolationKind};
use kozomol_fines::delivery::{confirmation, DeliveryError, SendError};
use kozomol_payments::PaymentCode;
use kozomol_store::{
    Allowance, AppealGist, AppealState, CaseRecord, ContactConfirmed, PayerView, ResolutionRecord,
    CONFIRMATION_TRIES,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use super::access::constant_time_eq;
use super::appeals::{file_appeal_for, AppealRequest};
use super::cases::serve_evidence;
use super::resolutions::{
    contact_answer, contact_problem, pdf_response, record_owner_view, ContactRequest, ContactResult,
};
use super::{json_body, ApiError, ApiState, FieldProblem};

/// How many lookups one address may make in a window.
#[derive(Clone, Copy, Debug)]
pub struct LookupLimit {
    /// 0 lets every lookup through (a load test behind one address).
    pub lookups: usize,
    pub window: Duration,
}

impl Default for LookupLimit {
    /// Thirty lookups in ten minutes: a family's cars several times over, far too few
    /// to walk through plates or numbers.
    fn default() -> Self {
        LookupLimit {
            lookups: 30,
            window: Duration::from_secs(600),
        }
    }
}

/// How long the photos, PDF and payment of a fine stay open after a lookup.
const GRANT_LIFETIME_S: i64 = 2 * 3600;

/// At most this many fines answer one plate lookup, the newest.
const PLATE_LOOKUP_LIMIT: usize = 50;
/// A plate's cases are read this many at a time, at most this many pages (2,000 cases).
const PLATE_LOOKUP_PAGE: u32 = 200;
const PLATE_LOOKUP_PAGES: usize = 10;

/// Lookups by one plate (and some certificate) an hour, from all addresses together:
/// guessing a certificate (ten characters) from many addresses at once still gets
/// nowhere. The owner, refused meanwhile, finds the fine by the resolution number or
/// payment code the resolution carries.
const LOOKUPS_PER_PLATE: u32 = 20;
const PLATE_LOOKUP_WINDOW: Duration = Duration::from_secs(3600);
/// The longest plate key taken (the longest plates of the formats read are 10).
const PLATE_KEY_LONGEST: usize = 16;
/// A lookup by plate answers no sooner than this: reading a plate's recorded cases
/// takes longer the more there are, and the time would tell how often a plate was
/// recorded to someone who does not hold its certificate.
const PLATE_LOOKUP_FLOOR: Duration = Duration::from_millis(300);

/// The budget of lookups per plate, shared by every API process.
const PLATE_ALLOWANCE: Allowance = Allowance {
    max: LOOKUPS_PER_PLATE,
    window: PLATE_LOOKUP_WINDOW,
};

/// One of three ways to name one's fines.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    plate: Option<String>,
    /// The vehicle registration certificate (свидетельство о регистрации ТС) number,
    /// with the plate.
    certificate: Option<String>,
    resolution: Option<String>,
    payment_code: Option<String>,
}

#[derive(Serialize)]
pub struct LookupAnswer {
    fines: Vec<PublicFine>,
}

/// A fine as its payer sees it: no personal data beyond what the lookup named.
#[derive(Serialize)]
pub struct PublicFine {
    number: String,
    payment_code: String,
    /// Opens this fine's other routes (`?grant=`) until `grant_expires_at`.
    grant: String,
    grant_expires_at: DateTime<Utc>,
    status: FineStatus,
    case_state: CaseState,
    kind: ViolationKind,
    /// The violation as the resolution words it (Russian, the document's language).
    violation: &'static str,
    article: String,
    /// The day of the violation, in the jurisdiction's calendar.
    captured_on: NaiveDate,
    /// The moment, the whole plate and the place only for the owner (a lookup by plate
    /// and certificate): numbers and payment codes run in sequence, and walking through
    /// them must not tell where and when each car was. Anyone else sees the plate's
    /// first two and last two characters ([`plate_hint`]), enough to know the fine.
    captured_at: Option<DateTime<Utc>>,
    plate: Option<String>,
    place: Option<Place>,
    /// The day the resolution was issued, in the jurisdiction's calendar.
    issued_on: NaiveDate,
    /// The moment, only for the owner: a case approved by the machine is issued
    /// minutes after the violation, so this would tell its moment too.
    issued_at: Option<DateTime<Utc>>,
    currency: &'static str,
    amount_minor: i64,
    /// The reduced sum while the discount lasts.
    discounted_minor: Option<i64>,
    discount_until: Option<NaiveDate>,
    due: Option<NaiveDate>,
    appeal_until: Option<NaiveDate>,
    /// What paying today takes; 0 when nothing more is owed.
    outstanding_minor: i64,
    paid_minor: i64,
    /// The payment QR for what is due today (banking apps scan it); none when nothing is.
    qr_payload: Option<String>,
    /// The card payment provider's checkout for what is due today, returning to the
    /// portal; none when nothing is due or no provider is configured.
    card_payment_url: Option<String>,
    /// Where the owner leaves a phone number or e-mail address for notices of this
    /// vehicle's resolutions; only for a fine found by plate and certificate, and only
    /// where some channel sends the code.
    contacts_url: Option<String>,
    /// The channels (`sms`, `email`) `contacts_url` takes; empty with no `contacts_url`.
    contact_channels: Vec<&'static str>,
    /// Whether this grant is an owner's (a lookup by plate and certificate): only then
    /// the photos, the PDF, appeals and notices.
    owner_view: bool,
    frames: Vec<String>,
    pdf_url: Option<String>,
    qr_svg_url: Option<String>,
    appeal: Option<PublicAppeal>,
}

/// Where the fine stands for its payer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FineStatus {
    Unpaid,
    PartiallyPaid,
    Paid,
    /// Under appeal: nothing runs until it is decided.
    Appealed,
    /// Annulled, voided or refunded: nothing is owed.
    Cancelled,
    /// Past its due date and sent for enforcement (to the bailiffs): still payable.
    Enforcement,
    /// Lapsed: it can no longer be enforced.
    Closed,
}

impl FineStatus {
    /// The status of a fine in `state` with `paid_minor` standing and
    /// `outstanding_minor` left to pay.
    fn of(state: CaseState, paid_minor: i64, outstanding_minor: i64) -> Self {
        use CaseState::*;
        match state {
            // A rejected appeal leaves the case where its money puts it once its periods
            // are dated again; until then the money says (a paid fine is not "unpaid").
            AppealRejected if paid_minor > 0 && outstanding_minor == 0 => FineStatus::Paid,
            AppealRejected if paid_minor > 0 => FineStatus::PartiallyPaid,
            Paid | PaidDiscounted => FineStatus::Paid,
            PartiallyPaid => FineStatus::PartiallyPaid,
            Appealed => FineStatus::Appealed,
            Annulled | Voided | Refunded => FineStatus::Cancelled,
            Enforcement => FineStatus::Enforcement,
            Lapsed => FineStatus::Closed,
            _ => FineStatus::Unpaid,
        }
    }
}

#[derive(Serialize)]
pub struct Place {
    address: String,
    /// None where an officer's report gave no coordinates.
    latitude: Option<String>,
    longitude: Option<String>,
    /// The spot on OpenStreetMap.
    map_url: Option<String>,
}

#[derive(Serialize)]
pub struct PublicAppeal {
    id: i64,
    state: AppealState,
    filed_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decision_note: Option<String>,
}

impl PublicAppeal {
    /// The appeal as `scope` may see it: the decision's reasons, which may repeat the
    /// appellant's circumstances, only for the owner (a resolution number or payment
    /// code is no proof of being the appellant).
    fn seen_with(appeal: AppealGist, scope: GrantScope) -> Self {
        PublicAppeal {
            id: appeal.id,
            state: appeal.state,
            filed_at: appeal.filed_at,
            decided_at: appeal.decided_at,
            decision_note: appeal.decision_note.filter(|_| scope == GrantScope::Owner),
        }
    }
}

#[derive(Deserialize)]
pub struct GrantQuery {
    grant: Option<String>,
}

/// `POST /api/v1/public/lookups`.
pub async fn lookup(
    State(state): State<ApiState>,
    parts: Parts,
    body: Result<Json<LookupRequest>, JsonRejection>,
) -> Result<Json<LookupAnswer>, ApiError> {
    // Every lookup counts, found or not: a hit is as telling as a miss.
    count_against_address(&state, &parts).await?;
    let request = json_body(body)?;
    let (numbers, scope) = match (
        filled(request.plate),
        filled(request.certificate),
        filled(request.resolution),
        filled(request.payment_code),
    ) {
        (Some(plate), Some(certificate), None, None) => (
            guarded_plate_lookup(&state, &plate, &certificate).await?,
            GrantScope::Owner,
        ),
        (None, None, Some(number), None) => (by_number(&number), GrantScope::Fine),
        (None, None, None, Some(code)) => (by_payment_code(&state, &code).await?, GrantScope::Fine),
        (Some(_), None, None, None) => {
            return Err(ApiError::Validation(vec![FieldProblem::new(
                "certificate",
                "required with the plate",
            )]))
        }
        (None, Some(_), None, None) => {
            return Err(ApiError::Validation(vec![FieldProblem::new(
                "plate",
                "required with the certificate",
            )]))
        }
        _ => {
            return Err(ApiError::Validation(vec![FieldProblem::new(
                "body",
                "give the plate with the certificate, or a resolution number, or a payment code",
            )]))
        }
    };
    // Every grant a lookup gives ends this long after it; showing the fine again with
    // one hands on the same end, never a later one.
    let grant_expires = Utc::now().timestamp() + GRANT_LIFETIME_S;
    let mut fines = Vec::with_capacity(numbers.len());
    for number in numbers {
        if let Some(view) = state.app.store.payer_view(&number, Utc::now()).await? {
            fines.push(public_fine(&state, view, scope, grant_expires));
        }
    }
    if fines.is_empty() {
        return Err(ApiError::NotFound("a fine matching this lookup".into()));
    }
    Ok(Json(LookupAnswer { fines }))
}

/// `GET /api/v1/public/fines/{number}?grant=`: the fine as it stands now.
pub async fn show(
    State(state): State<ApiState>,
    Path(number): Path<String>,
    Query(query): Query<GrantQuery>,
) -> Result<Json<PublicFine>, ApiError> {
    let (view, scope, expires) = granted_view(&state, &number, query.grant.as_deref()).await?;
    Ok(Json(public_fine(&state, view, scope, expires)))
}

/// `GET /api/v1/public/fines/{number}/frames/{n}?grant=`.
pub async fn frame(
    State(state): State<ApiState>,
    Path((number, n)): Path<(String, String)>,
    Query(query): Query<GrantQuery>,
) -> Result<Response, ApiError> {
    let (case, _) = owner_granted(&state, &number, query.grant.as_deref()).await?;
    let frame = n
        .parse::<u32>()
        .ok()
        .and_then(|index| case.frames.iter().find(|f| f.index == index))
        .ok_or_else(|| ApiError::NotFound(format!("photo {n} of resolution {number}")))?;
    serve_evidence(
        &state,
        case.id,
        &format!("frame {}", frame.index),
        frame.location.clone(),
        frame.sha256,
    )
    .await
    .map(kept_by_no_cache)
}

/// A portal answer that shows the owner's data is kept in no cache: the browser may be a
/// shared one, and the grant that opened it ends in hours.
fn kept_by_no_cache(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/v1/public/fines/{number}/pdf?grant=`: the signed resolution. It names the
/// owner: each download is audited with the address it went to.
pub async fn pdf(
    State(state): State<ApiState>,
    Path(number): Path<String>,
    Query(query): Query<GrantQuery>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let (_, resolution) = owner_granted(&state, &number, query.grant.as_deref()).await?;
    count_against_address(&state, &parts).await?;
    record_owner_view(
        &state,
        &resolution,
        portal_actor(&state, &parts),
        "resolution PDF",
    )
    .await?;
    pdf_response(&state, &resolution)
        .await
        .map(kept_by_no_cache)
}

/// `GET /api/v1/public/fines/{number}/qr.svg?grant=`: the payment QR for what is due
/// today, drawn for the screen.
pub async fn qr_svg(
    State(state): State<ApiState>,
    Path(number): Path<String>,
    Query(query): Query<GrantQuery>,
) -> Result<Response, ApiError> {
    let (view, scope, expires) = granted_view(&state, &number, query.grant.as_deref()).await?;
    let fine = public_fine(&state, view, scope, expires);
    let payload = fine
        .qr_payload
        .ok_or_else(|| ApiError::NotFound(format!("a payment due on resolution {number}")))?;
    let matrix = kozomol_fines::resolution::QrMatrix::encode(&payload, "payment QR")
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = matrix.svg().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /api/v1/public/fines/{number}/appeals?grant=`: the citizen's own appeal.
pub async fn appeal(
    State(state): State<ApiState>,
    Path(number): Path<String>,
    Query(query): Query<GrantQuery>,
    parts: Parts,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<PublicAppeal>), ApiError> {
    let (case, _) = owner_granted(&state, &number, query.grant.as_deref()).await?;
    count_against_address(&state, &parts).await?;
    // Read only now: a body of up to 20 MiB is no one's to send without a grant.
    let body = Json::<AppealRequest>::from_request(request, &state).await;
    let appeal = json_body(body)?;
    // Who filed it, as the portal's other acts are audited: by the client's address.
    let filed_by = portal_actor(&state, &parts);
    let record = file_appeal_for(&state, &case, appeal, filed_by).await?;
    Ok((
        StatusCode::CREATED,
        Json(PublicAppeal::seen_with(
            AppealGist::from(&record),
            GrantScope::Owner,
        )),
    ))
}

/// `POST /api/v1/public/fines/{number}/contacts?grant=`: the owner asks for notices to
/// a phone number or e-mail address; a code goes there (202 with the request's handle),
/// and only the code typed back stores the contact ([`confirm_contact`]). A delivery to
/// a contact proves the resolution delivered, so the address must be the citizen's own;
/// and it serves this fine's vehicle alone: the certificate shown proves that vehicle,
/// not who its owner is. Only with a grant from a lookup by plate and registration
/// certificate: a resolution number alone does not make one the owner.
pub async fn leave_contact(
    State(state): State<ApiState>,
    Path(number): Path<String>,
    Query(query): Query<GrantQuery>,
    parts: Parts,
    body: Result<Json<ContactRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ContactConfirmationAnswer>), ApiError> {
    let (case, resolution) = owner_granted(&state, &number, query.grant.as_deref()).await?;
    // Each code sent costs the city a message: counted as lookups are.
    count_against_address(&state, &parts).await?;
    let (channel, address) = json_body(body)?.channel_and_address()?;
    let sender = state
        .app
        .contact_channels
        .iter()
        .find(|sender| sender.channel() == channel)
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldProblem::new(
                "channel",
                format!("notices by {channel} are not sent here"),
            )])
        })?;
    let owner = state
        .app
        .store
        .owner_lookup(case.id)
        .await?
        .and_then(|lookup| lookup.owner)
        .ok_or_else(|| {
            ApiError::Conflict(format!("resolution {} names no owner", resolution.number))
        })?;
    let plate = state
        .app
        .store
        .decided_plate(case.id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("issued case {} has no plate", case.id)))?;
    let requested_by = portal_actor(&state, &parts);
    let requested = confirmation::request_confirmation(
        state.app.store.as_ref(),
        sender.as_ref(),
        confirmation::ContactRequest {
            resolution_number: &resolution.number,
            owner_id: &owner.id,
            plate_key: &kozomol_tunduk::plate_key(&plate),
            channel,
            address: &address,
            requested_by: &requested_by,
        },
    )
    .await
    .map_err(|e| match e {
        // The gateway or mail server refused the address itself: not worth repeating.
        DeliveryError::CodeNotSent(SendError::Permanent(why)) => {
            ApiError::Validation(vec![FieldProblem::new(
                "address",
                format!("the {channel} channel refused this address: {why}"),
            )])
        }
        DeliveryError::CodeNotSent(why) => {
            tracing::warn!(error = %why, %channel, "a contact's confirmation code was not sent");
            ApiError::CodeNotSent
        }
        DeliveryError::AddressBusy => ApiError::TooManyCodes,
        other => contact_problem(other),
    })?;
    let grant = query.grant.as_deref().unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        Json(ContactConfirmationAnswer {
            confirm_url: state.app.link(&format!(
                "/api/v1/public/fines/{}/contacts/{}?grant={grant}",
                resolution.number, requested.handle
            )),
            handle: requested.handle,
            expires_at: requested.expires_at,
            tries: CONFIRMATION_TRIES,
        }),
    ))
}

/// A contact waiting for its code.
#[derive(Serialize)]
pub struct ContactConfirmationAnswer {
    handle: String,
    /// Where the code is posted (`{"code": "123456"}`).
    confirm_url: String,
    expires_at: DateTime<Utc>,
    /// How many codes may be typed.
    tries: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactCode {
    code: Option<String>,
}

/// `POST /api/v1/public/fines/{number}/contacts/{handle}?grant=`: the code sent to the
/// address: 201 stores the contact (200 when known already); a wrong code is 422 with
/// the tries left; one expired, used or out of tries 409; an unknown handle 404.
pub async fn confirm_contact(
    State(state): State<ApiState>,
    Path((number, handle)): Path<(String, String)>,
    Query(query): Query<GrantQuery>,
    parts: Parts,
    body: Result<Json<ContactCode>, JsonRejection>,
) -> Result<(StatusCode, Json<ContactResult>), ApiError> {
    let (_, resolution) = owner_granted(&state, &number, query.grant.as_deref()).await?;
    count_against_address(&state, &parts).await?;
    let typed = json_body(body)?.code.unwrap_or_default();
    let by = portal_actor(&state, &parts);
    let judged = confirmation::confirm(
        state.app.store.as_ref(),
        &resolution.number,
        &handle,
        &typed,
        &by,
    )
    .await
    .map_err(contact_problem)?;
    match judged {
        ContactConfirmed::Confirmed(added) => Ok(contact_answer(added)),
        ContactConfirmed::WrongCode { tries_left } => {
            Err(ApiError::Validation(vec![FieldProblem::new(
                "code",
                format!("wrong code; {tries_left} tries left"),
            )]))
        }
        ContactConfirmed::Lapsed => Err(ApiError::Conflict(
            "this code has expired, was used or was mistyped too often: ask for a new one".into(),
        )),
        ContactConfirmed::Unknown => Err(ApiError::NotFound(format!(
            "contact request {handle} of resolution {}",
            resolution.number
        ))),
    }
}

/// The fine, if `grant` is an owner's (from a lookup by plate and certificate): the
/// photos, the PDF (which names the owner), appeals and notices are theirs alone; a
/// resolution number or payment code is easy to come by and only shows and pays.
async fn owner_granted(
    state: &ApiState,
    number: &str,
    grant: Option<&str>,
) -> Result<(CaseRecord, ResolutionRecord), ApiError> {
    if grant_for(state, number, grant)?.0 != GrantScope::Owner {
        return Err(ApiError::GrantRequired);
    }
    let number = number.to_uppercase();
    let resolution = state
        .app
        .store
        .resolution(&number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("resolution {number}")))?;
    // A case whose personal data were purged is no longer shown, as `payer_view` says.
    let case = state
        .app
        .store
        .case(resolution.case_id)
        .await?
        .filter(|case| case.personal_data_purged_at.is_none())
        .ok_or_else(|| ApiError::NotFound(format!("resolution {number}")))?;
    Ok((case, resolution))
}

/// Counts a lookup, or a public request that writes (an appeal, a PDF download's audit
/// row), against the caller's address; refused once the address has used its allowance.
/// Counted first in this process's memory, so that a flood is turned away without a
/// write, then in the database every API process shares: behind a load balancer an
/// address has one allowance, not one per replica.
async fn count_against_address(state: &ApiState, parts: &Parts) -> Result<(), ApiError> {
    let limit = state.app.lookup_limit;
    if limit.lookups == 0 {
        return Ok(());
    }
    let client = client_address(parts, &state.app.trusted_proxies);
    let counted = match state.lookups.try_acquire(&client) {
        Err(wait) => Err(wait),
        Ok(()) => {
            let allowance = Allowance {
                max: u32::try_from(limit.lookups).unwrap_or(u32::MAX),
                window: limit.window,
            };
            state
                .app
                .store
                .take_allowance(&format!("address:{client}"), allowance)
                .await?
        }
    };
    if let Err(wait) = counted {
        info!(client = %client, "portal request refused: too many from this address");
        return Err(ApiError::TooManyLookups {
            retry_after_s: wait.as_secs().max(1),
        });
    }
    Ok(())
}

/// Who the audit names for what citizens do through the portal.
const PORTAL_ACTOR: &str = "portal";

/// Who acts through the portal, as audit rows name it: `portal:{client}`.
fn portal_actor(state: &ApiState, parts: &Parts) -> String {
    format!(
        "{PORTAL_ACTOR}:{}",
        client_address(parts, &state.app.trusted_proxies)
    )
}

/// The address a request came from (the limiter's key): an IPv6 client by its /64,
/// the block one subscriber gets, so it cannot take a fresh allowance per address.
/// Behind `trusted` proxies, the client they name.
pub(crate) fn client_address(parts: &Parts, trusted: &[IpNet]) -> String {
    match parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| forwarded_client(addr.ip(), &parts.headers, trusted))
    {
        Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        Some(ip) => ip.to_string(),
        None => "unknown".to_owned(),
    }
}

/// The client a request from `peer` was made for: `peer` itself, unless it is one of
/// the `trusted` proxies; then `X-Forwarded-For` read from the right, past each hop a
/// trusted proxy added, to the first address that is not a proxy's. What lies further
/// left the client wrote itself and is never read.
fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // A server listening on `[::]` sees IPv4 peers as `::ffff:a.b.c.d`: compared, and
    // counted, as the IPv4 addresses they are.
    let peer = peer.to_canonical();
    let is_proxy = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_proxy(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            break;
        };
        client = ip;
        if !is_proxy(&ip) {
            break;
        }
    }
    client
}

fn filled(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A certificate number as people type it: letters and digits only, upper case.
fn certificate_key(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .map(kozomol_core::latin_lookalike)
        .collect()
}

/// [`by_plate_and_certificate`] within the plate's budget of lookups, answered no
/// sooner than [`PLATE_LOOKUP_FLOOR`].
async fn guarded_plate_lookup(
    state: &ApiState,
    plate: &str,
    certificate: &str,
) -> Result<Vec<String>, ApiError> {
    let started = tokio::time::Instant::now();
    let key = kozomol_tunduk::plate_key(plate);
    // No plate is longer: a longer text is no plate, and no key of the budget.
    if key.is_empty() || key.chars().count() > PLATE_KEY_LONGEST {
        return Err(ApiError::Validation(vec![FieldProblem::new(
            "plate",
            format!("a plate of 1 to {PLATE_KEY_LONGEST} letters and digits"),
        )]));
    }
    // Counted before the lookup, in the database every replica shares: guesses sent
    // together (or to several replicas) cannot all pass before the first is counted.
    // A lookup that finds the fines counts too. Always: it guards the certificate, and
    // an address limit switched off (a load test behind one address) must not open it.
    let counted = state
        .app
        .store
        .take_allowance(&format!("plate:{key}"), PLATE_ALLOWANCE)
        .await?;
    if let Err(wait) = counted {
        info!(plate = %key, "lookup by plate refused: too many for this plate");
        return Err(ApiError::TooManyLookups {
            retry_after_s: wait.as_secs().max(1),
        });
    }
    let found = by_plate_and_certificate(state, plate, certificate).await;
    tokio::time::sleep_until(started + PLATE_LOOKUP_FLOOR).await;
    found
}

async fn by_plate_and_certificate(
    state: &ApiState,
    plate: &str,
    certificate: &str,
) -> Result<Vec<String>, ApiError> {
    let plate = kozomol_tunduk::normalize_plate(plate);
    let wanted = certificate_key(certificate);
    if plate.is_empty() || wanted.is_empty() {
        return Ok(Vec::new());
    }
    let store = &state.app.store;
    let mut found = Vec::new();
    let mut after = None;
    // A plate's cases oldest first, page by page: a bus with hundreds of recorded
    // cases (rejected ones too) still finds its newest fines.
    for _ in 0..PLATE_LOOKUP_PAGES {
        let page = store
            .cases(&kozomol_store::CaseQuery {
                sighted_plates: kozomol_tunduk::plate_spellings(&plate),
                // A fine re-issued to a driver the owner named is the driver's: the
                // vehicle's papers give no rights over it (its letter's number still
                // finds it).
                owner_from_registry: true,
                limit: PLATE_LOOKUP_PAGE,
                after,
                ..kozomol_store::CaseQuery::default()
            })
            .await?;
        after = page.last().map(|c| c.id);
        let last_page = page.len() < PLATE_LOOKUP_PAGE as usize;
        // A page's lookups and resolutions in two queries, not two per case: the time a
        // lookup takes must not tell how many cases a plate has.
        let ids: Vec<CaseId> = page.iter().map(|c| c.id).collect();
        let shown: Vec<CaseId> = store
            .owner_lookups(&ids)
            .await?
            .into_iter()
            .filter(|lookup| {
                let registered = lookup
                    .vehicle
                    .get("registration_certificate")
                    .and_then(|v| v.as_str())
                    .map(certificate_key);
                registered.as_deref() == Some(wanted.as_str())
            })
            .map(|lookup| lookup.case_id)
            .collect();
        let mut resolutions = store.resolutions_of_cases(&shown).await?;
        resolutions.sort_by_key(|r| r.case_id);
        found.extend(resolutions.into_iter().map(|r| r.number));
        if last_page {
            break;
        }
    }
    // Newest first, as a payer reads them.
    found.reverse();
    found.truncate(PLATE_LOOKUP_LIMIT);
    Ok(found)
}

/// A resolution number as people type it, if it is one.
fn by_number(number: &str) -> Vec<String> {
    let number = number.trim().to_uppercase();
    if kozomol_fines::resolution::ResolutionNumber::parse(&number).is_err() {
        return Vec::new();
    }
    vec![number]
}

/// A payment code names its case by its sequence; the resolution must carry the code.
async fn by_payment_code(state: &ApiState, code: &str) -> Result<Vec<String>, ApiError> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(parsed) = PaymentCode::parse(&digits) else {
        return Ok(Vec::new());
    };
    let Ok(case_id) = i64::try_from(parsed.sequence()) else {
        return Ok(Vec::new());
    };
    Ok(state
        .app
        .store
        .resolution_of_case(CaseId(case_id))
        .await?
        .filter(|resolution| resolution.payment_code == parsed.to_string())
        .map(|resolution| resolution.number)
        .into_iter()
        .collect())
}

/// What a grant lets its holder do: every grant opens the fine; only a lookup by plate
/// and registration certificate (which only the vehicle's keeper holds) also lets
/// them leave a contact for the owner's notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantScope {
    Fine,
    Owner,
}

impl GrantScope {
    fn letter(self) -> char {
        match self {
            GrantScope::Fine => 'f',
            GrantScope::Owner => 'o',
        }
    }

    fn of_letter(letter: &str) -> Option<Self> {
        match letter {
            "f" => Some(GrantScope::Fine),
            "o" => Some(GrantScope::Owner),
            _ => None,
        }
    }
}

/// What `grant` allows on the fine `number`, if it opens it, and when it ends.
fn grant_for(
    state: &ApiState,
    number: &str,
    grant: Option<&str>,
) -> Result<(GrantScope, i64), ApiError> {
    let grant = grant.ok_or(ApiError::GrantRequired)?;
    grant_scope(state, number, grant, Utc::now().timestamp()).ok_or(ApiError::GrantRequired)
}

/// The fine `number` names as its payer sees it, what `grant` allows on it, and when
/// the grant ends.
async fn granted_view(
    state: &ApiState,
    number: &str,
    grant: Option<&str>,
) -> Result<(PayerView, GrantScope, i64), ApiError> {
    let (scope, expires) = grant_for(state, number, grant)?;
    let view = state
        .app
        .store
        .payer_view(&number.to_uppercase(), Utc::now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("resolution {number}")))?;
    Ok((view, scope, expires))
}

/// The key grants are signed with: derived from the server's own signing key, so
/// every process of one installation accepts the others' grants.
fn grant_key(state: &ApiState) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(b"kozomol portal grant v1\0");
    digest.update(state.app.server_key.to_bytes());
    digest.finalize().into()
}

/// `{expires}.{scope letter}.{HMAC-SHA256 of the number, scope and expiry, hex}`.
fn make_grant(state: &ApiState, number: &str, scope: GrantScope, expires: i64) -> String {
    let signed = format!("{number}\0{}", scope.letter());
    let header = kozomol_payments::signature_header(&grant_key(state), expires, signed.as_bytes());
    let mac = header.rsplit_once("v1=").map_or("", |(_, mac)| mac);
    format!("{expires}.{}.{mac}", scope.letter())
}

/// The scope of a grant for `number` still valid at `now`, and when it ends.
fn grant_scope(state: &ApiState, number: &str, grant: &str, now: i64) -> Option<(GrantScope, i64)> {
    let mut parts = grant.splitn(3, '.');
    let expires = parts.next()?.parse::<i64>().ok()?;
    let scope = GrantScope::of_letter(parts.next()?)?;
    let expected = make_grant(state, number, scope, expires);
    (expires > now && constant_time_eq(expected.as_bytes(), grant.as_bytes()))
        .then_some((scope, expires))
}

/// Whether the fine still offers its discount on `today`: its clock says the window is
/// open and its last day (once delivery dated it) has not passed. The flag alone stays
/// open past that day while a bank credit waits for finance (the scheduler holds such a
/// fine's clock), and a payer must not be shown a sum the fine no longer takes.
fn discount_shown(open: bool, until: Option<NaiveDate>, today: NaiveDate) -> bool {
    open && until.is_none_or(|last| today <= last)
}

/// A plate as shown to whoever found its fine by number or payment code: the first two
/// and last two characters, the rest masked (all of a plate shorter than six).
fn plate_hint(plate: &str) -> String {
    let characters: Vec<char> = plate.chars().collect();
    let kept = if characters.len() >= 6 { 2 } else { 0 };
    characters
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i < kept || i + kept >= characters.len() {
                c
            } else {
                '•'
            }
        })
        .collect()
}

/// The fine as a citizen sees it, its links carrying a grant of `scope` that ends at
/// `expires` (a lookup's: a fine shown again never lengthens its grant).
fn public_fine(state: &ApiState, view: PayerView, scope: GrantScope, expires: i64) -> PublicFine {
    let resolution = view.resolution;
    let now = Utc::now();
    let number = resolution.number.clone();
    let grant = make_grant(state, &number, scope, expires);
    let owner = scope == GrantScope::Owner;
    // Notices are the owner's, and only where some channel sends the code.
    let notices = owner && !state.app.contact_channels.is_empty();
    let link = |path: &str| {
        state.app.link(&format!(
            "/api/v1/public/fines/{number}{path}?grant={grant}"
        ))
    };
    let outstanding = view.outstanding;
    let qr_payload = match (&state.app.merchant, outstanding) {
        (Some(merchant), Some(amount)) if amount.minor > 0 => {
            PaymentCode::parse(&resolution.payment_code)
                .ok()
                .and_then(|code| kozomol_payments::payment_payload(merchant, &code, amount).ok())
        }
        _ => None,
    };
    let card_payment_url = match (&state.app.card_checkout_url, outstanding) {
        (Some(checkout), Some(amount)) if amount.minor > 0 => reqwest::Url::parse_with_params(
            checkout,
            [
                ("payment_code", resolution.payment_code.as_str()),
                ("return_url", &state.app.link(&format!("/v/{number}"))),
            ],
        )
        .ok()
        .map(String::from),
        _ => None,
    };
    let place = view.site.map(|site| {
        let position = site
            .lat_e6
            .zip(site.lon_e6)
            .map(|(lat, lon)| (decimal_degrees(lat), decimal_degrees(lon)));
        Place {
            address: site.address,
            map_url: position.as_ref().map(|(lat, lon)| {
                format!("https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}")
            }),
            latitude: position.as_ref().map(|(lat, _)| lat.clone()),
            longitude: position.map(|(_, lon)| lon),
        }
    });
    PublicFine {
        owner_view: owner,
        frames: if owner {
            view.frames
                .iter()
                .map(|index| link(&format!("/frames/{index}")))
                .collect()
        } else {
            Vec::new()
        },
        pdf_url: owner.then(|| link("/pdf")),
        qr_svg_url: qr_payload.as_ref().map(|_| link("/qr.svg")),
        status: FineStatus::of(
            view.state,
            view.paid_minor,
            outstanding.map_or(0, |m| m.minor),
        ),
        case_state: view.state,
        kind: view.kind,
        violation: kozomol_fines::resolution::violation_wording(view.kind),
        article: resolution.article,
        captured_on: resolution.jurisdiction.local_date(view.captured_at),
        captured_at: owner.then_some(view.captured_at),
        plate: if owner {
            view.plate
        } else {
            view.plate.as_deref().map(plate_hint)
        },
        place: place.filter(|_| owner),
        issued_on: resolution.jurisdiction.local_date(resolution.issued_at),
        issued_at: owner.then_some(resolution.issued_at),
        currency: resolution.amount.currency.code(),
        amount_minor: resolution.amount.minor,
        discounted_minor: discount_shown(
            view.discount_open,
            view.discount_until,
            resolution.jurisdiction.local_date(now),
        )
        .then_some(resolution.discounted)
        .flatten()
        .map(|m| m.minor),
        discount_until: view.discount_until,
        due: view.due,
        appeal_until: view.appeal_until,
        outstanding_minor: outstanding.map_or(0, |m| m.minor),
        paid_minor: view.paid_minor,
        qr_payload,
        card_payment_url,
        contacts_url: notices.then(|| link("/contacts")),
        contact_channels: if notices {
            state
                .app
                .contact_channels
                .iter()
                .map(|sender| sender.channel().as_str())
                .collect()
        } else {
            Vec::new()
        },
        appeal: view
            .latest_appeal
            .map(|appeal| PublicAppeal::seen_with(appeal, scope)),
        payment_code: resolution.payment_code,
        grant_expires_at: DateTime::from_timestamp(expires, 0).unwrap_or(now),
        grant,
        number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_compare_as_typed_loosely() {
        for (typed, key) in [
            ("KG 01 123456", "KG01123456"),
            ("kg-01-123456", "KG01123456"),
            ("АВ 123456", "AB123456"),
            ("  ", ""),
        ] {
            assert_eq!(certificate_key(typed), key, "{typed}");
        }
    }

    #[test]
    fn addresses_are_counted_by_host_and_ipv6_by_its_64() {
        for (peer, key) in [
            ("203.0.113.7:5000", "203.0.113.7"),
            ("[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"),
            ("[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"),
            ("[::ffff:198.51.100.4]:80", "198.51.100.4"),
        ] {
            let (mut parts, _) = axum::http::Request::new(()).into_parts();
            let addr: SocketAddr = peer.parse().expect("address");
            parts.extensions.insert(ConnectInfo(addr));
            assert_eq!(client_address(&parts, &[]), key, "{peer}");
        }
        let (parts, _) = axum::http::Request::new(()).into_parts();
        assert_eq!(client_address(&parts, &[]), "unknown");
    }

    #[test]
    fn behind_trusted_proxies_the_client_they_name_is_counted() {
        let trusted: Vec<IpNet> = ["10.0.0.0/8", "192.0.2.1/32"]
            .iter()
            .map(|net| net.parse().expect("net"))
            .collect();
        for (peer, forwarded, client) in [
            // Not a proxy: its header is the client's own say.
            ("203.0.113.7", Some("198.51.100.1"), "203.0.113.7"),
            ("10.1.1.1", Some("198.51.100.1"), "198.51.100.1"),
            // What the client wrote left of the proxies' entries is not read.
            ("10.1.1.1", Some("1.1.1.1, 198.51.100.1"), "198.51.100.1"),
            (
                "192.0.2.1",
                Some("1.1.1.1, 198.51.100.1, 10.2.2.2"),
                "198.51.100.1",
            ),
            ("10.1.1.1", Some("garbage, 198.51.100.1"), "198.51.100.1"),
            ("10.1.1.1", None, "10.1.1.1"),
            ("10.1.1.1", Some("not-an-address"), "10.1.1.1"),
            ("10.1.1.1", Some("2001:db8:1:2::7"), "2001:db8:1:2::/64"),
            // A server on `[::]` sees IPv4 peers mapped into IPv6.
            ("::ffff:10.1.1.1", Some("198.51.100.1"), "198.51.100.1"),
            ("::ffff:203.0.113.7", None, "203.0.113.7"),
            ("10.1.1.1", Some("::ffff:198.51.100.1"), "198.51.100.1"),
        ] {
            let (mut parts, _) = axum::http::Request::new(()).into_parts();
            let addr = SocketAddr::new(peer.parse().expect("peer"), 40000);
            parts.extensions.insert(ConnectInfo(addr));
            if let Some(forwarded) = forwarded {
                parts
                    .headers
                    .insert("x-forwarded-for", forwarded.parse().expect("header"));
            }
            assert_eq!(
                client_address(&parts, &trusted),
                client,
                "{peer} {forwarded:?}"
            );
        }
    }

    #[test]
    fn a_plate_hint_keeps_two_characters_at_each_end() {
        for (plate, hint) in [
            ("01KG123ABC", "01••••••BC"),
            ("123ABC02", "12••••02"),
            ("A123BC", "A1••BC"),
            ("AB123", "•••••"),
            ("", ""),
            ("01КГ123АВС", "01••••••ВС"),
        ] {
            assert_eq!(plate_hint(plate), hint, "{plate}");
        }
    }

    #[test]
    fn statuses_of_states() {
        use CaseState::*;
        for (state, status) in [
            (Issued, FineStatus::Unpaid),
            (Delivered, FineStatus::Unpaid),
            (Overdue, FineStatus::Unpaid),
            (PartiallyPaid, FineStatus::PartiallyPaid),
            (Paid, FineStatus::Paid),
            (PaidDiscounted, FineStatus::Paid),
            (Appealed, FineStatus::Appealed),
            (AppealRejected, FineStatus::Unpaid),
            (Annulled, FineStatus::Cancelled),
            (Voided, FineStatus::Cancelled),
            (Refunded, FineStatus::Cancelled),
            // Still payable: never shown as closed.
            (Enforcement, FineStatus::Enforcement),
            (Lapsed, FineStatus::Closed),
        ] {
            assert_eq!(FineStatus::of(state, 0, 5_000), status, "{state}");
        }
        // A rejected appeal, before its periods are dated again: the money says.
        for ((paid, outstanding), status) in [
            ((0, 500_000), FineStatus::Unpaid),
            ((250_000, 250_000), FineStatus::PartiallyPaid),
            ((500_000, 0), FineStatus::Paid),
        ] {
            let got = FineStatus::of(CaseState::AppealRejected, paid, outstanding);
            assert_eq!(got, status, "{paid} paid, {outstanding} outstanding");
        }
    }

    #[test]
    fn the_discount_is_shown_while_its_window_is_open_and_its_day_not_past() {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("day");
        let last = Some(day("2026-03-25"));
        for (open, until, today, shown) in [
            (true, last, "2026-03-20", true),
            (true, last, "2026-03-25", true),
            // Past its last day, though the clock (held for a queued credit) says open.
            (true, last, "2026-03-26", false),
            (false, last, "2026-03-20", false),
            // Not delivered yet: no window dated, the discount stands.
            (true, None, "2026-03-26", true),
            (false, None, "2026-03-26", false),
        ] {
            assert_eq!(
                discount_shown(open, until, day(today)),
                shown,
                "{open} {until:?} {today}"
            );
        }
    }
}
