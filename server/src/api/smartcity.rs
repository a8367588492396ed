//! `POST /xroad/soap`: Tunduk's `smartcity-service`, provided to the bus through the
//! city's security server. Only that server's addresses are answered; each operation
//! has its own allow-list of X-Road clients; every exchange is logged with its X-Road
//! `id`, `userId` and `issue`. Answers follow `tunduk/wsdl/smartcity-service.wsdl`:
//! the request echoed, then the operation's codes (docs/payments.md maps them).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Datelike, FixedOffset, Utc};
use kozomol_core::{decimal_degrees, CaseId, FrameRole, Money};
use kozomol_fines::delivery;
use kozomol_payments::{format_decimal, parse_decimal, PaymentCode};
use kozomol_store::{
    CaseQuery, DeliveryRecorded, NewPayment, NewSubscription, PaymentChannel, PaymentPosted,
    PaymentRefusal, PaymentReversal, PaymentReversed, ResolutionRecord, Subscribed, Unsubscribed,
};
use kozomol_tunduk::provider::{fault_envelope, RequestFault, XRoadRequest};
use kozomol_tunduk::smartcity::{
    coded_response, event_photo, payment_response, write_date_time, Call, InvalidCall, Operation,
    OwnerFine, Passage, PaymentInfo, PlateFine, ProtocolRecord, ProviderSettings, NO_DATE,
    SIGNATURE_NEVER_EXPIRES, SMARTCITY_NS,
};
use kozomol_tunduk::xml::Element;
use uuid::Uuid;

use super::ApiState;

/// The service as configured for this process, with the city's UTC offset (dates
/// without a zone are the city's time).
#[derive(Debug, Clone)]
pub struct SmartcityService {
    pub settings: ProviderSettings,
    pub offset: FixedOffset,
}

/// Most passages one `getEvents` answer lists (a day of one plate is far fewer).
const EVENTS_LIMIT: u32 = 1000;
/// Most fines one plate's answer lists.
const PLATE_FINES_LIMIT: u32 = 200;

/// A SOAP fault to answer with.
struct Fault {
    status: StatusCode,
    code: String,
    message: String,
}

impl Fault {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Fault {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn invalid(e: InvalidCall) -> Self {
        Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Client.InvalidRequest",
            e.to_string(),
        )
    }

    fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "smartcity-service failed");
        Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.InternalError",
            "internal error; the exchange id is logged",
        )
    }

    fn response(&self) -> Response {
        let detail = Uuid::now_v7().to_string();
        (
            self.status,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            fault_envelope(&self.code, &self.message, &detail),
        )
            .into_response()
    }
}

impl From<RequestFault> for Fault {
    fn from(fault: RequestFault) -> Self {
        Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            &fault.code(),
            fault.message,
        )
    }
}

impl From<kozomol_store::StoreError> for Fault {
    fn from(e: kozomol_store::StoreError) -> Self {
        Fault::internal(e)
    }
}

/// `POST /xroad/soap`.
pub async fn endpoint(State(state): State<ApiState>, request: axum::extract::Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        // A server on `[::]` sees an IPv4 security server as `::ffff:a.b.c.d`.
        .map(|ConnectInfo(addr)| addr.ip().to_canonical());
    let headers: HeaderMap = request.headers().clone();
    let body = match axum::body::to_bytes(request.into_body(), BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => {
            return Fault::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Client.InvalidSoap",
                format!("a request is at most {BODY_LIMIT} bytes"),
            )
            .response()
        }
    };
    let Some(service) = state.app.smartcity.clone() else {
        return Fault::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server.ServiceUnavailable",
            "this kozomol provides no smartcity-service ([smartcity] is not configured)",
        )
        .response();
    };
    if !peer.is_some_and(|ip| service.settings.security_servers.contains(&ip)) {
        tracing::warn!(peer = ?peer, "smartcity-service called from outside the security server");
        return Fault::new(
            StatusCode::FORBIDDEN,
            "Client.AccessDenied",
            "only the city's security server may call this service",
        )
        .response();
    }
    match answer(&state, &service, &headers, &body).await {
        Ok(reply) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            reply,
        )
            .into_response(),
        Err(fault) => fault.response(),
    }
}

/// A request's whole body; the largest call is a few hundred bytes.
const BODY_LIMIT: usize = 64 * 1024;

async fn answer(
    state: &ApiState,
    service: &SmartcityService,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<String, Fault> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request = XRoadRequest::read(content_type, body).map_err(|fault| {
        tracing::warn!(code = %fault.code(), reason = %fault.message, "smartcity-service request refused");
        Fault::from(fault)
    })?;
    let operation = Operation::from_name(request.service.service_code())
        .filter(|_| *request.service.provider() == service.settings.provider)
        .ok_or_else(|| {
            Fault::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server.ServerProxy.UnknownService",
                format!("Unknown service: SERVICE:{}", request.service),
            )
        })
        .inspect_err(|fault| {
            tracing::warn!(
                xroad_id = %request.id, client = %request.client, reason = %fault.message,
                "smartcity-service refused"
            )
        })?;
    let log = ExchangeLog::new(&request, operation);
    if !service.settings.allows(operation, &request.client) {
        log.refused("client not allowed");
        return Err(Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.ServerProxy.AccessDenied",
            format!("Request is not allowed: SERVICE:{}", request.service),
        ));
    }
    let call = request
        .with_payload(|payload| {
            Call::read(payload).map_err(|e| match e {
                Some(e) => Fault::invalid(e),
                None => Fault::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Client.InvalidBody",
                    format!(
                        "the body element must be {{{SMARTCITY_NS}}}{}",
                        operation.name()
                    ),
                ),
            })
        })
        .and_then(|call| {
            if call.operation == operation {
                Ok(call)
            } else {
                Err(Fault::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Client.InvalidBody",
                    format!(
                        "the service is {} but the body calls {}",
                        operation.name(),
                        call.operation.name()
                    ),
                ))
            }
        });
    let call = match call {
        Ok(call) => call,
        Err(fault) => {
            log.refused(&fault.message);
            return Err(fault);
        }
    };
    let exchange = Exchange {
        state,
        offset: service.offset,
        request: &request,
        call: &call,
    };
    let answered = match operation {
        Operation::SetPaymentLegal => exchange.set_payment().await,
        Operation::GetViolationsByPlate => exchange.fines_by_plate().await,
        Operation::SmartcityGetViolations => exchange.owner_fines().await,
        Operation::ProtocolInfo => exchange.protocol_info().await,
        Operation::Protocol => exchange.protocol().await,
        Operation::SubscribeViolations => exchange.subscribe(service).await,
        Operation::UnsubscribeViolations => exchange.unsubscribe(service).await,
        // Searches of the vehicle registry's owners: kozomol is not that registry, and
        // answering them from the owners of fined vehicles would hand out personal
        // data no fine needs.
        Operation::VehicleOwnerSearch | Operation::VehicleOwnerList => Err(Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server.UnknownOperation",
            format!("kozomol does not provide {}", operation.name()),
        )),
        Operation::ResolutionDeliveryStatus => exchange.delivery_status().await,
        Operation::GetEvents => exchange.events().await,
        Operation::GetEventPhoto => exchange.event_photo().await,
    };
    match answered {
        Ok((code, response)) => {
            log.answered(code);
            Ok(request.reply(&call.reply(response).to_xml()))
        }
        Err(fault) => {
            log.refused(&fault.message);
            Err(fault)
        }
    }
}

/// The log line of one exchange as provider.
struct ExchangeLog {
    id: String,
    user_id: String,
    issue: String,
    client: String,
    operation: &'static str,
}

impl ExchangeLog {
    fn new(request: &XRoadRequest, operation: Operation) -> Self {
        ExchangeLog {
            id: request.id.clone(),
            user_id: request.user_id.clone().unwrap_or_default(),
            issue: request.issue.clone().unwrap_or_default(),
            client: request.client.to_string(),
            operation: operation.name(),
        }
    }

    fn answered(&self, code: u16) {
        tracing::info!(
            xroad_id = %self.id, user_id = %self.user_id, issue = %self.issue,
            client = %self.client, operation = self.operation, code,
            "smartcity-service answered"
        );
    }

    fn refused(&self, reason: &str) {
        tracing::warn!(
            xroad_id = %self.id, user_id = %self.user_id, issue = %self.issue,
            client = %self.client, operation = self.operation, reason,
            "smartcity-service refused"
        );
    }
}

/// One call being answered: each operation returns its code (for the log) and its
/// `response` element.
struct Exchange<'a> {
    state: &'a ApiState,
    offset: FixedOffset,
    request: &'a XRoadRequest,
    call: &'a Call,
}

type Answered = Result<(u16, Element), Fault>;

/// `setPaymentLegal`'s answer code for a payment the ledger would not take.
fn refusal_status(refusal: &PaymentRefusal) -> Option<u16> {
    match refusal {
        PaymentRefusal::UnknownCode => Some(404),
        // A case under appeal takes no payment now; the contract has no closer code.
        PaymentRefusal::Closed(_) | PaymentRefusal::NotPayable(_) => Some(405),
        PaymentRefusal::AlreadyPaid => Some(406),
        PaymentRefusal::Overpaid { .. } => Some(408),
        PaymentRefusal::Underpaid { .. } => Some(409),
        PaymentRefusal::IdReused(_) | PaymentRefusal::Invalid(_) | PaymentRefusal::Intent(_) => {
            None
        }
    }
}

impl Exchange<'_> {
    fn store(&self) -> &dyn kozomol_store::Store {
        self.state.app.store.as_ref()
    }

    fn date(&self, at: DateTime<Utc>) -> String {
        write_date_time(at, self.offset)
    }

    /// A calendar day as an `xsd:dateTime`: its midnight, the city's.
    fn day(&self, day: chrono::NaiveDate) -> String {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        write_date_time(midnight.and_utc() - self.offset, self.offset)
    }

    /// A resolution named by its number (`KG-BSK-2026-0000123`) or by its case's
    /// numeric id, as `smartcityGetViolations` writes `protocolNumber`.
    /// A resolution by its number or its case's id; none once its case's personal data
    /// were purged (settled years ago: the bus is told of it no more than the portal).
    async fn resolution(&self, protocol: &str) -> Result<Option<ResolutionRecord>, Fault> {
        let resolution = match protocol.parse::<i64>() {
            Ok(id) => self.store().resolution_of_case(CaseId(id)).await?,
            Err(_) => self.store().resolution(protocol).await?,
        };
        let Some(resolution) = resolution else {
            return Ok(None);
        };
        let purged = self
            .store()
            .case(resolution.case_id)
            .await?
            .is_none_or(|case| case.personal_data_purged_at.is_some());
        Ok((!purged).then_some(resolution))
    }

    /// `setPaymentLegal`: 0 checks what the fine takes on the payment day, 1 pays
    /// exactly that (once: a second payment answers 406), 2 cancels.
    async fn set_payment(&self) -> Answered {
        let call = self.call;
        let status = call.integer("status").map_err(Fault::invalid)?;
        // An `xsd:long`: `+112600…` and `0112600…` are the same number as `112600…`.
        let raw_code = call.integer("paymentNumber").map_err(Fault::invalid)?;
        let paid_at = call
            .date_time("paymentDate", self.offset)
            .map_err(Fault::invalid)?;
        if paid_at > Utc::now() + chrono::Duration::minutes(5) {
            return Err(Fault::invalid(
                call.invalid("paymentDate", "lies in the future"),
            ));
        }
        // The fine's currency is the code's jurisdiction's; an unknown code is 404.
        let Ok(code) = u64::try_from(raw_code)
            .map_err(|_| ())
            .and_then(|value| PaymentCode::from_u64(value).map_err(|_| ()))
        else {
            return Ok((404, payment_response(404, "0.00")));
        };
        let currency = code.jurisdiction().currency();
        let sum = parse_decimal(call.text("sum"), currency)
            .map_err(|e| Fault::invalid(call.invalid("sum", e.to_string())))?;
        let refused = |refusal: PaymentRefusal| -> Answered {
            let cost = match &refusal {
                PaymentRefusal::Overpaid { outstanding }
                | PaymentRefusal::Underpaid { outstanding } => format_decimal(*outstanding),
                _ => format_decimal(Money::new(0, currency)),
            };
            match refusal_status(&refusal) {
                Some(status) => Ok((status, payment_response(status, &cost))),
                None => Err(Fault::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Client.InvalidRequest",
                    match refusal {
                        PaymentRefusal::IdReused(_) => {
                            "this X-Road message id was used for another payment".to_owned()
                        }
                        PaymentRefusal::Invalid(reason) => reason,
                        _ => "refused".to_owned(),
                    },
                )),
            }
        };
        match status {
            0 => match self
                .store()
                .payment_quote(&code.to_string(), paid_at)
                .await?
            {
                Ok(quote) => Ok((
                    200,
                    payment_response(200, &format_decimal(quote.outstanding)),
                )),
                Err(refusal) => refused(refusal),
            },
            1 => {
                let client = self.request.client.to_string();
                let posted = self
                    .store()
                    .post_payment(&NewPayment {
                        payment_code: code.to_string(),
                        channel: PaymentChannel::Soap,
                        source: client.clone(),
                        // The message id: the same message again is the same payment.
                        external_id: self.request.id.clone(),
                        amount: sum,
                        paid_at,
                        exact_only: true,
                        intent: None,
                        posted_by: format!("xroad:{client}"),
                    })
                    .await?;
                match posted {
                    // The same message again, but its payment was cancelled since.
                    PaymentPosted::AlreadyPosted(record) if record.reversed_at.is_some() => {
                        Ok((407, payment_response(407, &format_decimal(record.amount))))
                    }
                    PaymentPosted::Applied(record) | PaymentPosted::AlreadyPosted(record) => {
                        Ok((200, payment_response(200, &format_decimal(record.amount))))
                    }
                    PaymentPosted::Refused(refusal) => refused(refusal),
                }
            }
            2 => {
                let client = self.request.client.to_string();
                let reversed = self
                    .store()
                    .reverse_payment(&PaymentReversal {
                        payment_code: code.to_string(),
                        channel: PaymentChannel::Soap,
                        source: client.clone(),
                        // The bank's payment of the code with this sum and time; the
                        // message id: this cancel sent again finds the payment it took
                        // back, never a later one of the same sum and time.
                        external_id: None,
                        amount: Some(sum),
                        paid_at: Some(paid_at),
                        reversal_id: Some(self.request.id.clone()),
                        reason: format!("cancelled over Tunduk (message {})", self.request.id),
                        reversed_by: format!("xroad:{client}"),
                        restart_clock: kozomol_fines::clocks::restart_clock,
                        money_left: false,
                    })
                    .await?;
                Ok(match reversed {
                    PaymentReversed::Reversed { payment, .. } => {
                        (200, payment_response(200, &format_decimal(payment.amount)))
                    }
                    PaymentReversed::AlreadyReversed(payment) => {
                        (407, payment_response(407, &format_decimal(payment.amount)))
                    }
                    PaymentReversed::NotReversible(_) => (
                        405,
                        payment_response(405, &format_decimal(Money::new(0, currency))),
                    ),
                    PaymentReversed::UnknownCode | PaymentReversed::NoPayment => (
                        404,
                        payment_response(404, &format_decimal(Money::new(0, currency))),
                    ),
                })
            }
            other => Err(Fault::invalid(call.invalid(
                "status",
                format!("{other} is not 0 (check), 1 (pay) or 2 (cancel)"),
            ))),
        }
    }

    /// The cases of a plate as the fines name it (at most [`PLATE_FINES_LIMIT`]).
    async fn plate_cases(&self, plate: &str) -> Result<Vec<kozomol_store::CaseSummary>, Fault> {
        Ok(self
            .store()
            .cases(&CaseQuery {
                sighted_plates: kozomol_tunduk::plate_spellings(plate),
                limit: PLATE_FINES_LIMIT,
                ..CaseQuery::default()
            })
            .await?)
    }

    /// `getViolationsByPlate`: the plate's fines that still take money, with what each
    /// takes today.
    async fn fines_by_plate(&self) -> Answered {
        let plate = kozomol_tunduk::normalize_plate(self.call.text("plate"));
        if plate.is_empty() {
            return Ok((400, coded_response(400, "Bad Request: plate is empty")));
        }
        let cases = self.plate_cases(&plate).await?;
        let now = Utc::now();
        let mut fines = Vec::new();
        for case in cases {
            let Some(resolution) = self.store().resolution_of_case(case.id).await? else {
                continue;
            };
            if let Ok(quote) = self
                .store()
                .payment_quote(&resolution.payment_code, now)
                .await?
            {
                fines.push(PlateFine {
                    payment_number: resolution.payment_code,
                    amount: format_decimal(quote.outstanding),
                });
            }
        }
        if fines.is_empty() {
            return Ok((
                404,
                coded_response(404, "По данному гос.номеру нарушений не найдено"),
            ));
        }
        Ok((
            200,
            listing("Успешно", fines.iter().map(|item| item.element())),
        ))
    }

    /// `smartcityGetViolations`: the fines of the owner with this PIN for this plate
    /// (paid or not; not those annulled or voided), with the evidence photo unless
    /// `image` is false.
    async fn owner_fines(&self) -> Answered {
        let call = self.call;
        let pin = call.text("pin").trim();
        let plate = kozomol_tunduk::normalize_plate(call.text("plate"));
        let with_image = call
            .boolean("image")
            .map_err(Fault::invalid)?
            .unwrap_or(true);
        if pin.is_empty() || plate.is_empty() {
            return Ok((400, coded_response(400, "Bad Request")));
        }
        let cases = self.plate_cases(&plate).await?;
        let now = Utc::now();
        let places = self
            .store()
            .case_places(&cases.iter().map(|c| c.id).collect::<Vec<_>>())
            .await?;
        let mut fines = Vec::new();
        for summary in cases {
            let Some(lookup) = self.store().owner_lookup(summary.id).await? else {
                continue;
            };
            // A purged lookup's owner id is `[purged]`, never a PIN that proves anything.
            let Some(owner) = lookup
                .owner
                .as_ref()
                .filter(|owner| owner.id == pin && owner.id != kozomol_store::retention::PURGED)
            else {
                continue;
            };
            let Some(resolution) = self.store().resolution_of_case(summary.id).await? else {
                continue;
            };
            let (paid, amount) = match self
                .store()
                .payment_quote(&resolution.payment_code, now)
                .await?
            {
                Ok(quote) => (false, quote.outstanding),
                // What settled it, by its money (a case whose appeal was rejected is
                // settled before it is dated back to its paid state).
                Err(PaymentRefusal::AlreadyPaid) => (true, self.paid_net(&resolution).await?),
                Err(PaymentRefusal::NotPayable(_)) => (false, resolution.amount),
                // Annulled, voided, lapsed or refunded: no longer a fine to pay.
                Err(_) => continue,
            };
            let (lastname, firstname, patronymic) = match owner.kind {
                kozomol_core::OwnerKind::Person => split_name(&owner.name),
                _ => (owner.name.clone(), None, None),
            };
            let vehicle = |key: &str| {
                lookup
                    .vehicle
                    .get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let case = match with_image {
                true => self.store().case(summary.id).await?,
                false => None,
            };
            let image = match &case {
                Some(case) => self.overview_if_readable(case).await,
                None => None,
            };
            fines.push(OwnerFine {
                lastname,
                firstname,
                patronymic,
                birthdate: registry_owner(&lookup)?
                    .as_ref()
                    .and_then(birth_date)
                    .map(|day| self.day(day)),
                address: owner.address.clone().unwrap_or_default(),
                car_brand: vehicle("make"),
                car_model: vehicle("model"),
                payment_number: resolution.payment_code.clone(),
                paid,
                plate_number: plate.clone(),
                protocol_number: summary.id.0,
                violation_type: kozomol_fines::resolution::violation_wording(summary.kind)
                    .to_owned(),
                amount: format_decimal(amount),
                violation_date: self.date(summary.captured_at),
                article: resolution.article.clone(),
                place: places
                    .get(&summary.id)
                    .map(|p| p.address.clone())
                    .unwrap_or_default(),
                image,
                cert_expire: SIGNATURE_NEVER_EXPIRES.to_owned(),
                delivery_date: resolution.delivered_at.map(|at| self.date(at)),
            });
        }
        if fines.is_empty() {
            return Ok((
                404,
                coded_response(404, "По данному гос.номеру и пин нарушений не найдено"),
            ));
        }
        Ok((
            200,
            listing("Успешно", fines.iter().map(|item| item.element())),
        ))
    }

    /// [`Self::overview_base64`] where the photo is one part of a larger answer: a
    /// photo that cannot be read (damaged, destroyed, its bucket away) is logged and
    /// left out, so one case does not fail a citizen's whole list of fines.
    async fn overview_if_readable(&self, case: &kozomol_store::CaseRecord) -> Option<String> {
        match self.overview_base64(case).await {
            Ok(image) => image,
            Err(fault) => {
                tracing::warn!(case_id = %case.id, error = %fault.message, "evidence photo left out of a bus answer");
                None
            }
        }
    }

    /// The case's overview frame (or its first), base64; `None` if it has no frame.
    async fn overview_base64(
        &self,
        case: &kozomol_store::CaseRecord,
    ) -> Result<Option<String>, Fault> {
        let Some(frame) = case
            .frames
            .iter()
            .find(|f| f.role == FrameRole::Overview)
            .or_else(|| case.frames.first())
        else {
            return Ok(None);
        };
        let bytes = super::cases::read_evidence(
            self.state,
            case.id,
            "evidence photo",
            frame.location.clone(),
            frame.sha256,
        )
        .await
        .map_err(Fault::internal)?;
        Ok(Some(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ))
    }

    /// `protocolInfo`: how the resolution stands with payment.
    async fn protocol_info(&self) -> Answered {
        let protocol = self.call.text("protocol");
        let Some(resolution) = self.resolution(protocol).await? else {
            return Ok((
                404,
                coded_response(404, "Не найдено").child(Element::nil("data")),
            ));
        };
        let standing = self.payment_standing(&resolution).await?;
        let message = match (standing.paid, standing.paid_sum.minor) {
            (true, _) => "Оплачено",
            (false, 0) => "Не оплачено",
            (false, _) => "Оплачено частично",
        };
        let info = PaymentInfo {
            paid: standing.paid,
            message: message.to_owned(),
            paid_sum: format_decimal(standing.paid_sum),
            payment_date: standing
                .last_paid_at
                .map(|at| self.date(at))
                .unwrap_or_else(|| NO_DATE.to_owned()),
        };
        Ok((200, coded_response(200, "Успешно").child(info.element())))
    }

    /// What the payments standing towards a resolution brought to it, excesses (to be
    /// refunded) left out.
    async fn paid_net(&self, resolution: &ResolutionRecord) -> Result<Money, Fault> {
        let payments = self.store().payments(&resolution.number).await?;
        Ok(Money::new(
            payments
                .iter()
                .filter(|p| p.reversed_at.is_none())
                .map(|p| p.amount.minor - p.excess_minor)
                .sum(),
            resolution.amount.currency,
        ))
    }

    /// What was paid towards a resolution (reversed payments left out), and whether
    /// that settled it — by the ledger, not the case's state: a paid case whose appeal
    /// was rejected is settled before its clocks put it back to its paid state.
    async fn payment_standing(
        &self,
        resolution: &ResolutionRecord,
    ) -> Result<PaymentStanding, Fault> {
        let settled = matches!(
            self.store()
                .payment_quote(&resolution.payment_code, Utc::now())
                .await?,
            Err(PaymentRefusal::AlreadyPaid)
        );
        let payments: Vec<_> = self
            .store()
            .payments(&resolution.number)
            .await?
            .into_iter()
            .filter(|p| p.reversed_at.is_none())
            .collect();
        Ok(PaymentStanding {
            paid: settled,
            paid_sum: Money::new(
                payments.iter().map(|p| p.amount.minor).sum(),
                resolution.amount.currency,
            ),
            last_paid_at: payments.iter().map(|p| p.paid_at).max(),
        })
    }

    /// `protocol`: the whole resolution: the case and its camera, the owner and the
    /// vehicle as the registry gave them, payment, delivery, appeal and signature.
    async fn protocol(&self) -> Answered {
        let Some(resolution) = self
            .resolution(self.call.text("protocolNumber").trim())
            .await?
        else {
            return Ok((
                404,
                coded_response(404, "Номер постановления отсутствует").child(Element::nil("data")),
            ));
        };
        let store = self.store();
        let case = store
            .case(resolution.case_id)
            .await?
            .ok_or_else(|| Fault::internal(format!("the case of {} is gone", resolution.number)))?;
        // Where and with what it was measured, as the signed event (or the officer's
        // report) says: the camera may have moved, or been re-certified, since.
        let facts = kozomol_fines::officer::case_facts(&case).map_err(Fault::internal)?;
        let lookup = store.owner_lookup(case.id).await?;
        if lookup.as_ref().is_some_and(|l| l.owner.is_some()) {
            // The protocol names the owner, born when and living where: audited.
            store
                .record_audit(&kozomol_store::NewAuditEntry {
                    case_id: Some(case.id),
                    actor: format!("xroad:{}", self.request.client),
                    action: kozomol_store::audit::OWNER_DATA_VIEWED.to_owned(),
                    detail: Some(format!("protocol of resolution {}", resolution.number)),
                })
                .await?;
        }
        let owner = lookup.as_ref().and_then(|l| l.owner.clone());
        let registry_owner = lookup.as_ref().map(registry_owner).transpose()?.flatten();
        let vehicle = |key: &str| -> String {
            match lookup.as_ref().and_then(|l| l.vehicle.get(key)) {
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            }
        };
        let (lastname, firstname, patronymic) = match (&registry_owner, &owner) {
            (Some(kozomol_tunduk::Owner::Person(p)), _) => (
                p.surname.clone().unwrap_or_default(),
                p.name.clone(),
                p.patronymic.clone(),
            ),
            (_, Some(o)) if o.kind == kozomol_core::OwnerKind::Person => split_name(&o.name),
            (_, Some(o)) => (o.name.clone(), None, None),
            (_, None) => (String::new(), None, None),
        };
        let birth_date = registry_owner.as_ref().and_then(birth_date);
        let address = registry_owner
            .as_ref()
            .and_then(|o| o.address().cloned())
            .unwrap_or_default();
        let plate = store
            .decided_plate(case.id)
            .await?
            .or_else(|| case.plate.clone())
            .unwrap_or_default();
        let standing = self.payment_standing(&resolution).await?;
        let appeal = store
            .appeals_of_case(case.id)
            .await?
            .into_iter()
            .max_by_key(|a| a.filed_at);
        // A case re-issued to a named driver cites the reviews of the case it came from.
        let reviewed = store.reissued_from(case.id).await?.unwrap_or(case.id);
        let approvals: Vec<String> = store
            .reviews(reviewed)
            .await?
            .into_iter()
            .filter(|r| r.decision != kozomol_core::ReviewDecision::Reject)
            .map(|r| r.reviewer)
            .collect();
        let logins: Vec<&str> = approvals.iter().map(String::as_str).collect();
        let officers = store.officers(&logins).await?;
        let officer_name = |login: Option<&String>| {
            login
                .map(|l| officers.get(l).map_or(l.clone(), |o| o.full_name.clone()))
                .unwrap_or_default()
        };
        let certificate = facts.device.as_ref().map(|d| &d.certificate);
        let place = &facts.place;
        let (article, part) = article_and_part(&resolution.article);
        let record = ProtocolRecord {
            id: case.id.0,
            plate_number: plate,
            violation_date: self.date(case.captured_at),
            device_name: case
                .camera_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            device_serial: facts
                .device
                .as_ref()
                .map(|d| d.serial.clone())
                .unwrap_or_default(),
            car_brand: vehicle("make"),
            car_model: vehicle("model"),
            car_color: vehicle("colour"),
            car_year: gyear(&vehicle("year")),
            pin: owner.as_ref().map(|o| o.id.clone()).unwrap_or_default(),
            lastname,
            firstname: firstname.unwrap_or_default(),
            patronymic: patronymic.unwrap_or_default(),
            birthdate: birth_date
                .map(|day| self.day(day))
                .unwrap_or_else(|| NO_DATE.to_owned()),
            address: owner
                .as_ref()
                .and_then(|o| o.address.clone())
                .unwrap_or_default(),
            obl: address.region,
            raion: address.district,
            aymak: address.aymak,
            village: address.village,
            street: address.street,
            house: address.house.unwrap_or_default(),
            building: address.building,
            flat: address.flat,
            payment_number: resolution.payment_code.clone(),
            paid: standing.paid,
            payment_date: standing.last_paid_at.map(|at| self.date(at)),
            payment_sum: (standing.paid_sum.minor > 0).then(|| format_decimal(standing.paid_sum)),
            violation_name: kozomol_fines::resolution::violation_wording(case.kind).to_owned(),
            violation_amount: format_decimal(resolution.amount),
            violation_article: article.to_owned(),
            violation_article_part: part.unwrap_or_default().to_owned(),
            violation_category: case.kind.as_str().to_owned(),
            violation_place: place.address.clone(),
            delivered: resolution.delivered_at.is_some(),
            delivery_date: resolution.delivered_at.map(|at| self.date(at)),
            delivery_note: resolution.delivered_via.map(|via| via.as_str().to_owned()),
            judgement_status: appeal.as_ref().map(|a| a.state.as_str().to_owned()),
            judgement_reason: appeal.as_ref().and_then(|a| a.decision_note.clone()),
            judgement_status_date: appeal
                .as_ref()
                .map(|a| self.date(a.decided_at.unwrap_or(a.filed_at))),
            vendor: "kozomol".to_owned(),
            protocol_date: self.date(resolution.issued_at),
            sign_date: self.date(resolution.issued_at),
            protocol_hash: hex::encode(resolution.pdf_sha256),
            signed_hash: base64::engine::general_purpose::STANDARD.encode(&resolution.signature),
            gps_y: place.lat_e6.map(decimal_degrees).unwrap_or_default(),
            gps_x: place.lon_e6.map(decimal_degrees).unwrap_or_default(),
            certificate: certificate.map(|c| c.number.clone()).unwrap_or_default(),
            certificate_date: certificate
                .map(|c| self.day(c.valid_from))
                .unwrap_or_else(|| NO_DATE.to_owned()),
            cert_ecp: resolution.signature_key_id.clone(),
            cert_ecp_issue: NO_DATE.to_owned(),
            cert_ecp_expire: SIGNATURE_NEVER_EXPIRES.to_owned(),
            violation_image: self.overview_if_readable(&case).await.unwrap_or_default(),
            operator_fio: officer_name(approvals.first()),
            // kozomol keeps no ranks.
            manager_rank: String::new(),
            manager_fio: officer_name(approvals.last()),
            complex_type: if case.camera_id.is_some() {
                "camera"
            } else {
                "officer"
            }
            .to_owned(),
            // kozomol reports to no register of offences (ЕРН).
            ern_send_date: NO_DATE.to_owned(),
        };
        Ok((200, coded_response(200, "Ok").child(record.element())))
    }

    /// The owner, plate and number a (un)subscription names, or the 401 answer for
    /// the first one missing, or 405 when the caller takes no notices.
    fn subscription_fields(
        &self,
        service: &SmartcityService,
    ) -> Result<(String, String, String), (u16, Element)> {
        let call = self.call;
        let unique_number = call.text("uniqueNumber").trim();
        let pin = call.text("pin").trim();
        let plate = kozomol_tunduk::normalize_plate(call.text("plate"));
        let missing = [
            (unique_number.is_empty(), "uniqueNumber не указан"),
            (pin.is_empty(), "ПИН является обязательным полем"),
            (plate.is_empty(), "Гос номер является обязательным полем"),
        ]
        .into_iter()
        .find_map(|(missing, message)| missing.then_some(message));
        if let Some(message) = missing {
            return Err((401, coded_response(401, message)));
        }
        if service.settings.subscriber(&self.request.client).is_none() {
            return Err((
                405,
                coded_response(405, "Подсистема не является участником сервиса уведомлений"),
            ));
        }
        Ok((pin.to_owned(), plate, unique_number.to_owned()))
    }

    /// `subscribeViolations`: a member of the notification service takes a notice of
    /// each resolution issued from now on to the owner with this PIN (or INN) for this
    /// plate (sent by the delivery outbox to its `violationNotification` service).
    async fn subscribe(&self, service: &SmartcityService) -> Answered {
        let (pin, plate, unique_number) = match self.subscription_fields(service) {
            Ok(fields) => fields,
            Err(answer) => return Ok(answer),
        };
        let subscribed = self
            .store()
            .subscribe(&NewSubscription {
                client: self.request.client.to_string(),
                pin,
                plate_key: kozomol_tunduk::plate_key(&plate),
                plate,
                unique_number,
                xroad_id: self.request.id.clone(),
            })
            .await?;
        Ok(match subscribed {
            Subscribed::Created(_) => (200, coded_response(200, "Подписка успешно создана")),
            Subscribed::Exists(_) => (406, coded_response(406, "Указанная подписка уже имеется")),
        })
    }

    /// `unsubscribeViolations`: ends the caller's subscription for this owner and plate
    /// made under this unique number; notices of it still queued are not sent.
    async fn unsubscribe(&self, service: &SmartcityService) -> Answered {
        let (pin, plate, unique_number) = match self.subscription_fields(service) {
            Ok(fields) => fields,
            Err(answer) => return Ok(answer),
        };
        let client = self.request.client.to_string();
        Ok(
            match self
                .store()
                .unsubscribe(
                    &client,
                    &pin,
                    &kozomol_tunduk::plate_key(&plate),
                    &unique_number,
                )
                .await?
            {
                Unsubscribed::Ended(_) => (200, coded_response(200, "Подписка успешно удалена")),
                Unsubscribed::NotFound => {
                    (406, coded_response(406, "Указанная подписка отсутствует"))
                }
            },
        )
    }

    /// `resolutionDeliveryStatus`: the state portal reports that it delivered the
    /// resolution (`deliveryStatus` 1); its clocks start from `deliveryDate`.
    async fn delivery_status(&self) -> Answered {
        let call = self.call;
        let status = call.integer("deliveryStatus").map_err(Fault::invalid)?;
        if status != 1 {
            return Err(Fault::invalid(call.invalid(
                "deliveryStatus",
                format!("{status} is not 1 (delivered), the only status kozomol records"),
            )));
        }
        let delivered_at = call
            .date_time("deliveryDate", self.offset)
            .map_err(Fault::invalid)?;
        let Some(resolution) = self.resolution(call.text("protocol")).await? else {
            return Ok((404, coded_response(404, "Номер протокола не найден.")));
        };
        let client = self.request.client.to_string();
        let recorded = delivery::record_portal_delivery(
            self.store(),
            &resolution.number,
            &client,
            delivered_at,
            serde_json::json!({
                "xroad_id": self.request.id,
                "user_id": self.request.user_id,
                "delivery_status": status,
                "delivery_date": call.text("deliveryDate"),
                "note": call.text("note"),
            }),
            &format!("xroad:{client}"),
        )
        .await
        .map_err(|e| match e {
            // A date before the resolution was issued, or in the future.
            delivery::DeliveryError::Store(kozomol_store::StoreError::Invalid(reason)) => {
                Fault::invalid(call.invalid("deliveryDate", reason))
            }
            other => Fault::internal(other),
        })?;
        Ok(match recorded {
            DeliveryRecorded::AlreadyRecorded { .. } => {
                (402, coded_response(402, "Статус уже установлен."))
            }
            DeliveryRecorded::First { .. } | DeliveryRecorded::Additional { .. } => {
                (200, coded_response(200, "Успешно"))
            }
        })
    }

    /// `getEvents`: the plate's passages (cases) in a period of at most 24 hours
    /// within one month.
    async fn events(&self) -> Answered {
        let call = self.call;
        let plate = kozomol_tunduk::normalize_plate(call.text("plateNumber"));
        let (Ok(from), Ok(to)) = (
            call.date_time("fromDate", self.offset),
            call.date_time("toDate", self.offset),
        ) else {
            return Ok((400, coded_response(400, "Bad request")));
        };
        if plate.is_empty() || to < from {
            return Ok((400, coded_response(400, "Bad request")));
        }
        if to - from > chrono::Duration::hours(24) {
            return Ok((
                400,
                coded_response(400, "The period range is more then 24 hours"),
            ));
        }
        let (first, last) = (
            from.with_timezone(&self.offset),
            to.with_timezone(&self.offset),
        );
        if (first.year(), first.month()) != (last.year(), last.month()) {
            return Ok((
                400,
                coded_response(
                    400,
                    "The period covers 2 months. It can only be within one month",
                ),
            ));
        }
        let cases = self
            .store()
            .cases(&CaseQuery {
                sighted_plates: kozomol_tunduk::plate_spellings(&plate),
                from: Some(from),
                // `toDate` is inclusive; the query's end is not.
                to: Some(to + chrono::Duration::milliseconds(1)),
                limit: EVENTS_LIMIT,
                ..CaseQuery::default()
            })
            .await?;
        let places = self
            .store()
            .case_places(&cases.iter().map(|c| c.id).collect::<Vec<_>>())
            .await?;
        let mut passages = Vec::new();
        for case in cases {
            let site = places.get(&case.id);
            passages.push(Passage {
                id: case.id.0,
                crossroad: site.map(|s| s.address.clone()).unwrap_or_default(),
                plate_number: plate.clone(),
                event_date: self.date(case.captured_at),
                gps_y: site
                    .and_then(|s| s.lat_e6)
                    .map(decimal_degrees)
                    .unwrap_or_default(),
                gps_x: site
                    .and_then(|s| s.lon_e6)
                    .map(decimal_degrees)
                    .unwrap_or_default(),
            });
        }
        if passages.is_empty() {
            return Ok((
                404,
                coded_response(404, "There are no events for the specified parameters"),
            ));
        }
        Ok((
            200,
            listing("Success", passages.iter().map(|item| item.element())),
        ))
    }

    /// `getEventPhoto`: the overview frame of the case with this id captured at this
    /// time (to the second).
    async fn event_photo(&self) -> Answered {
        let call = self.call;
        let (Ok(id), Ok(at)) = (
            call.integer("eventId"),
            call.date_time("eventDate", self.offset),
        ) else {
            return Ok((
                400,
                coded_response(400, "Bad request").child(Element::nil("data")),
            ));
        };
        let not_found = || {
            Ok((
                404,
                coded_response(404, "There is no event for the specified parameters")
                    .child(Element::nil("data")),
            ))
        };
        let Some(case) = self.store().case(CaseId(id)).await? else {
            return not_found();
        };
        // A file destroyed at the end of its archive period has no photo to give.
        if case.captured_at.timestamp() != at.timestamp() || case.evidence_destroyed_at.is_some() {
            return not_found();
        }
        let Some(image) = self.overview_base64(&case).await? else {
            return not_found();
        };
        Ok((
            200,
            coded_response(200, "Success").child(event_photo(
                case.id.0,
                &self.date(case.captured_at),
                &image,
            )),
        ))
    }
}

/// The owner as the registry gave it (`None` where the registry was not the source).
fn registry_owner(
    lookup: &kozomol_store::OwnerLookupRecord,
) -> Result<Option<kozomol_tunduk::Owner>, Fault> {
    if lookup.registry_owner.is_null() {
        return Ok(None);
    }
    serde_json::from_value(lookup.registry_owner.clone())
        .map(Some)
        .map_err(|e| Fault::internal(format!("case {}: registry owner: {e}", lookup.case_id)))
}

fn birth_date(owner: &kozomol_tunduk::Owner) -> Option<chrono::NaiveDate> {
    match owner {
        kozomol_tunduk::Owner::Person(person) => person.birth_date,
        kozomol_tunduk::Owner::Company(_) => None,
    }
}

/// "Ст. 148 ч. 3" as the contract splits it: the article ("Ст. 148") and its part
/// ("3"); an article named without a part is whole.
fn article_and_part(article: &str) -> (&str, Option<&str>) {
    match article.rsplit_once(" ч. ") {
        Some((whole, part)) if !whole.trim().is_empty() && !part.trim().is_empty() => {
            (whole.trim(), Some(part.trim()))
        }
        _ => (article.trim(), None),
    }
}

/// What was paid towards one resolution.
struct PaymentStanding {
    /// Settled in full (with or without the discount).
    paid: bool,
    paid_sum: Money,
    last_paid_at: Option<DateTime<Utc>>,
}

/// `protocol`'s `carYear`, an `xsd:gYear` the schema requires: the registry's year in
/// four digits, or `0001` when it gave none that is a year.
fn gyear(raw: &str) -> String {
    match raw.trim().parse::<u16>() {
        Ok(year) if year > 0 => format!("{year:04}"),
        _ => "0001".to_owned(),
    }
}

/// A 200 `response` with `items` after its code and message.
fn listing(message: &str, items: impl Iterator<Item = Element>) -> Element {
    items.fold(coded_response(200, message), Element::child)
}

/// A person's name as registries write it, "Surname Name Patronymic": the surname, then
/// the name and the rest (a patronymic may have several words, e.g. "Токтогул уулу").
fn split_name(full: &str) -> (String, Option<String>, Option<String>) {
    let mut words = full.split_whitespace();
    let lastname = words.next().unwrap_or_default().to_owned();
    let firstname = words.next().map(str::to_owned);
    let rest: Vec<&str> = words.collect();
    let patronymic = (!rest.is_empty()).then(|| rest.join(" "));
    (lastname, firstname, patronymic)
}

#[cfg(test)]
mod tests {
    use kozomol_core::{CaseState, Currency};

    use super::*;

    #[test]
    fn names_split_as_registries_write_them() {
        let owned = |s: &str| Some(s.to_owned());
        for (full, want) in [
            (
                "Асанов Бакыт Токтогулович",
                ("Асанов".to_owned(), owned("Бакыт"), owned("Токтогулович")),
            ),
            (
                "Асанов  Бакыт Токтогул уулу",
                ("Асанов".to_owned(), owned("Бакыт"), owned("Токтогул уулу")),
            ),
            ("Асанов Бакыт", ("Асанов".to_owned(), owned("Бакыт"), None)),
            ("Асанов", ("Асанов".to_owned(), None, None)),
            ("", (String::new(), None, None)),
        ] {
            assert_eq!(split_name(full), want, "{full}");
        }
    }

    #[test]
    fn vehicle_years_are_written_as_xsd_years() {
        for (raw, want) in [
            ("2015", "2015"),
            (" 998 ", "0998"),
            ("0", "0001"),
            ("", "0001"),
            ("около 2010", "0001"),
            ("70000", "0001"),
        ] {
            assert_eq!(gyear(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn articles_split_into_article_and_part() {
        for (article, want) in [
            ("Ст. 148 ч. 3", ("Ст. 148", Some("3"))),
            ("Ст. 148 ч. 12", ("Ст. 148", Some("12"))),
            ("Ст. 150", ("Ст. 150", None)),
            ("speeding 10–20", ("speeding 10–20", None)),
            (" ч. 3", (" ч. 3".trim(), None)),
            ("Ст. 148 ч. ", ("Ст. 148 ч.", None)),
        ] {
            assert_eq!(article_and_part(article), want, "{article}");
        }
    }

    #[test]
    fn every_refusal_has_its_answer() {
        let outstanding = Money::new(250_000, Currency::KGS);
        for (refusal, status) in [
            (PaymentRefusal::UnknownCode, Some(404)),
            (PaymentRefusal::Closed(CaseState::Annulled), Some(405)),
            (PaymentRefusal::NotPayable(CaseState::Appealed), Some(405)),
            (PaymentRefusal::AlreadyPaid, Some(406)),
            (PaymentRefusal::Overpaid { outstanding }, Some(408)),
            (PaymentRefusal::Underpaid { outstanding }, Some(409)),
            (PaymentRefusal::Invalid("another currency".into()), None),
        ] {
            assert_eq!(refusal_status(&refusal), status, "{refusal:?}");
        }
    }
}
