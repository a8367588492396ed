//! The contract of Tunduk's `smartcity-service` (`wsdl/smartcity-service.wsdl`), which
//! kozomol provides: its operations, reading a call's `request` element by the
//! schema's field list, and writing each `{operation}Response` in the schema's order
//! and types. What the answers say is the caller's business; this module only keeps
//! the shape.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use roxmltree::Node;

use crate::xml::{self, child, Element, VEHICLES_NS};
use crate::{XRoadClient, XRoadService};

/// The service's target namespace; `vehicles-service` shares it.
pub const SMARTCITY_NS: &str = VEHICLES_NS;

/// An operation of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    SmartcityGetViolations,
    VehicleOwnerSearch,
    VehicleOwnerList,
    Protocol,
    GetViolationsByPlate,
    SubscribeViolations,
    UnsubscribeViolations,
    SetPaymentLegal,
    ResolutionDeliveryStatus,
    GetEvents,
    GetEventPhoto,
    ProtocolInfo,
}

impl Operation {
    pub const ALL: [Operation; 12] = [
        Operation::SmartcityGetViolations,
        Operation::VehicleOwnerSearch,
        Operation::VehicleOwnerList,
        Operation::Protocol,
        Operation::GetViolationsByPlate,
        Operation::SubscribeViolations,
        Operation::UnsubscribeViolations,
        Operation::SetPaymentLegal,
        Operation::ResolutionDeliveryStatus,
        Operation::GetEvents,
        Operation::GetEventPhoto,
        Operation::ProtocolInfo,
    ];

    /// The operation's name: its body element and its X-Road service code.
    pub fn name(self) -> &'static str {
        match self {
            Operation::SmartcityGetViolations => "smartcityGetViolations",
            Operation::VehicleOwnerSearch => "vehicleOwnerSearch",
            Operation::VehicleOwnerList => "vehicleOwnerList",
            Operation::Protocol => "protocol",
            Operation::GetViolationsByPlate => "getViolationsByPlate",
            Operation::SubscribeViolations => "subscribeViolations",
            Operation::UnsubscribeViolations => "unsubscribeViolations",
            Operation::SetPaymentLegal => "setPaymentLegal",
            Operation::ResolutionDeliveryStatus => "resolutionDeliveryStatus",
            Operation::GetEvents => "getEvents",
            Operation::GetEventPhoto => "getEventPhoto",
            Operation::ProtocolInfo => "protocolInfo",
        }
    }

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The fields of the operation's `request`, in the schema's order, each with
    /// whether it is nillable.
    fn request_fields(self) -> &'static [(&'static str, bool)] {
        match self {
            Operation::SmartcityGetViolations => {
                &[("pin", false), ("plate", false), ("image", true)]
            }
            Operation::VehicleOwnerSearch => &[
                ("type", false),
                ("carPlate", false),
                ("carBrand", false),
                ("carModel", false),
                ("carYear", false),
                ("name", false),
                ("phone", false),
                ("email", false),
                ("note", false),
            ],
            Operation::VehicleOwnerList => &[
                ("type", false),
                ("perPage", false),
                ("page", false),
                ("name", true),
                ("plate", true),
            ],
            Operation::Protocol => &[("protocolNumber", false)],
            Operation::GetViolationsByPlate => &[("plate", false)],
            Operation::SubscribeViolations | Operation::UnsubscribeViolations => {
                &[("pin", false), ("plate", false), ("uniqueNumber", false)]
            }
            Operation::SetPaymentLegal => &[
                ("status", false),
                ("sum", false),
                ("paymentNumber", false),
                ("paymentDate", false),
            ],
            Operation::ResolutionDeliveryStatus => &[
                ("protocol", false),
                ("deliveryStatus", false),
                ("deliveryDate", false),
                ("note", false),
            ],
            Operation::GetEvents => &[
                ("plateNumber", false),
                ("fromDate", false),
                ("toDate", false),
            ],
            Operation::GetEventPhoto => &[("eventId", false), ("eventDate", false)],
            Operation::ProtocolInfo => &[("protocol", false)],
        }
    }
}

/// Who may call the service kozomol provides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// kozomol's subsystem as the security server publishes the service:
    /// `instance/class/member/subsystem`. A request for another provider is refused.
    pub provider: XRoadClient,
    /// The city's security server(s): the only addresses the endpoint answers.
    pub security_servers: Vec<std::net::IpAddr>,
    /// The X-Road clients allowed to call each operation (by its name); an operation
    /// not listed is open to no one.
    #[serde(default)]
    pub clients: std::collections::BTreeMap<String, Vec<XRoadClient>>,
    /// The members of the notification service: the systems that may subscribe to an
    /// owner's violations (`subscribeViolations`), each with the service its notices
    /// are sent to. Another client allowed to call `subscribeViolations` is answered 405.
    #[serde(default)]
    pub subscribers: Vec<Subscriber>,
}

/// A system that takes notices of new violations: its client and its service
/// `violationNotification` (`instance/class/member/subsystem/violationNotification[/version]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    pub client: XRoadClient,
    pub service: XRoadService,
}

/// The service code of a subscriber's notice service.
pub const NOTIFICATION_SERVICE: &str = "violationNotification";

impl ProviderSettings {
    /// Every operation named in `clients` is one of the service's; each subscriber is
    /// named once, with a `violationNotification` service.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = self
            .clients
            .keys()
            .find(|name| Operation::from_name(name).is_none())
        {
            return Err(format!(
                "clients names `{name}`, which is not an operation of smartcity-service"
            ));
        }
        for (i, subscriber) in self.subscribers.iter().enumerate() {
            if subscriber.service.service_code() != NOTIFICATION_SERVICE {
                return Err(format!(
                    "subscribers: {} is not a {NOTIFICATION_SERVICE} service",
                    subscriber.service
                ));
            }
            if self.subscribers[..i]
                .iter()
                .any(|s| s.client == subscriber.client)
            {
                return Err(format!("subscribers: {} is named twice", subscriber.client));
            }
        }
        Ok(())
    }

    /// The notice service of `client`, when it is a member of the notification service.
    pub fn subscriber(&self, client: &XRoadClient) -> Option<&Subscriber> {
        self.subscribers.iter().find(|s| s.client == *client)
    }

    /// Whether `client` may call `operation`.
    pub fn allows(&self, operation: Operation, client: &XRoadClient) -> bool {
        self.clients
            .get(operation.name())
            .is_some_and(|clients| clients.contains(client))
    }
}

/// A call that does not follow the schema: which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}/request/{field}: {reason}")]
pub struct InvalidCall {
    pub operation: &'static str,
    pub field: &'static str,
    pub reason: String,
}

/// One call: the operation and its request's fields as sent (`None` for nil).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: Operation,
    fields: Vec<(&'static str, Option<String>)>,
}

impl Call {
    /// Reads the body element of a request: `{SMARTCITY_NS}operation` holding
    /// `request` with every field the schema requires. `Err(None)` when the element is
    /// not an operation of this service.
    pub fn read(payload: Node<'_, '_>) -> Result<Call, Option<InvalidCall>> {
        let operation = (payload.tag_name().namespace() == Some(SMARTCITY_NS))
            .then(|| Operation::from_name(payload.tag_name().name()))
            .flatten()
            .ok_or(None)?;
        let invalid = |field: &'static str, reason: &str| {
            Some(InvalidCall {
                operation: operation.name(),
                field,
                reason: reason.to_owned(),
            })
        };
        let request =
            child(payload, SMARTCITY_NS, "request").ok_or_else(|| invalid("", "missing"))?;
        let mut fields = Vec::new();
        for &(name, nillable) in operation.request_fields() {
            let value = match child(request, SMARTCITY_NS, name) {
                None => return Err(invalid(name, "missing")),
                Some(node) if xml::is_nil(node) => {
                    if !nillable {
                        return Err(invalid(name, "may not be nil"));
                    }
                    None
                }
                Some(node) => Some(xml::text(node).trim().to_owned()),
            };
            fields.push((name, value));
        }
        Ok(Call { operation, fields })
    }

    /// This call's `field` is wrong for `reason`: what a check the schema cannot
    /// express (a status the contract does not know, a date in the future) reports.
    pub fn invalid(&self, field: &'static str, reason: impl Into<String>) -> InvalidCall {
        InvalidCall {
            operation: self.operation.name(),
            field,
            reason: reason.into(),
        }
    }

    fn field(&self, name: &'static str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// A field's text (empty if nil).
    pub fn text(&self, name: &'static str) -> &str {
        self.field(name).unwrap_or_default()
    }

    /// A field's text, `None` if nil or empty.
    pub fn optional(&self, name: &'static str) -> Option<&str> {
        self.field(name).filter(|v| !v.is_empty())
    }

    /// A field's text, which must not be empty.
    pub fn required(&self, name: &'static str) -> Result<&str, InvalidCall> {
        self.optional(name)
            .ok_or_else(|| self.invalid(name, "is empty"))
    }

    /// An `xsd:long` or `xsd:integer` field that fits 64 bits.
    pub fn integer(&self, name: &'static str) -> Result<i64, InvalidCall> {
        let raw = self.required(name)?;
        raw.strip_prefix('+')
            .unwrap_or(raw)
            .parse()
            .map_err(|_| self.invalid(name, format!("`{raw}` is not an integer")))
    }

    /// An `xsd:boolean` field; `None` if nil or empty.
    pub fn boolean(&self, name: &'static str) -> Result<Option<bool>, InvalidCall> {
        match self.optional(name) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(raw) => Err(self.invalid(name, format!("`{raw}` is not a boolean"))),
        }
    }

    /// An `xsd:dateTime` field. One without a zone is local time at `local_offset`
    /// (the city's), as a bank's or a portal's clock writes it.
    pub fn date_time(
        &self,
        name: &'static str,
        local_offset: FixedOffset,
    ) -> Result<DateTime<Utc>, InvalidCall> {
        let raw = self.required(name)?;
        parse_date_time(raw, local_offset)
            .ok_or_else(|| self.invalid(name, format!("`{raw}` is not an xsd:dateTime")))
    }

    /// The `{operation}Response` element: the request echoed as it came (each field in
    /// the schema's order, nil where it was nil), then `response`.
    pub fn reply(&self, response: Element) -> Element {
        let mut echo = Element::new("request");
        for (name, value) in &self.fields {
            echo = echo.child(Element::optional(name, value.as_deref()));
        }
        Element::new(&format!("{}Response", self.operation.name()))
            .in_namespace(SMARTCITY_NS)
            .child(echo)
            .child(response)
    }
}

/// Reads an `xsd:dateTime`: RFC 3339 with a zone, or without one at `local_offset`.
pub fn parse_date_time(raw: &str, local_offset: FixedOffset) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    naive
        .and_local_timezone(local_offset)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

/// Writes an `xsd:dateTime` at `offset` (the city's), to the second.
pub fn write_date_time(at: DateTime<Utc>, offset: FixedOffset) -> String {
    at.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// `<response><code/><message/>…</response>`: the answer most operations give; add
/// the operation's own fields with [`Element::child`].
pub fn coded_response(code: u16, message: &str) -> Element {
    Element::new("response")
        .child(Element::text("code", &code.to_string()))
        .child(Element::text("message", message))
}

/// `setPaymentLegal`'s answer: a status and the cost (an `xsd:decimal`).
pub fn payment_response(status: u16, cost: &str) -> Element {
    Element::new("response")
        .child(Element::text("status", &status.to_string()))
        .child(Element::text("cost", cost))
}

/// A fine as `getViolationsByPlate` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlateFine {
    /// The payment code (18 digits, an `xsd:long`).
    pub payment_number: String,
    /// What is due now, in the currency's units (`2500.00`).
    pub amount: String,
}

impl PlateFine {
    pub fn element(&self) -> Element {
        Element::new("protocols")
            .child(Element::text("paymentNumber", &self.payment_number))
            .child(Element::text("violationAmmount", &self.amount))
    }
}

/// A fine as `smartcityGetViolations` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerFine {
    pub lastname: String,
    pub firstname: Option<String>,
    pub patronymic: Option<String>,
    /// `xsd:dateTime`, written.
    pub birthdate: Option<String>,
    pub address: String,
    pub car_brand: String,
    pub car_model: String,
    pub payment_number: String,
    pub paid: bool,
    pub plate_number: String,
    /// An `xsd:long`: the case's numeric id.
    pub protocol_number: i64,
    pub violation_type: String,
    pub amount: String,
    pub violation_date: String,
    pub article: String,
    pub place: String,
    /// Base64 of the evidence photo, when asked for.
    pub image: Option<String>,
    pub cert_expire: String,
    pub delivery_date: Option<String>,
}

impl OwnerFine {
    pub fn element(&self) -> Element {
        let (status, status_name) = if self.paid {
            ("1", "Оплачено")
        } else {
            ("0", "Не оплачено")
        };
        Element::new("protocols")
            .child(Element::text("lastname", &self.lastname))
            .child(Element::optional("firstname", self.firstname.as_deref()))
            .child(Element::optional("patronymic", self.patronymic.as_deref()))
            .child(Element::optional("birthdate", self.birthdate.as_deref()))
            .child(Element::text("address", &self.address))
            .child(Element::text("carBrand", &self.car_brand))
            .child(Element::text("carModel", &self.car_model))
            .child(Element::text("paymentNumber", &self.payment_number))
            .child(Element::text("paymentStatus", status))
            .child(Element::text("paymentStatusName", status_name))
            .child(Element::text("plateNumber", &self.plate_number))
            .child(Element::text(
                "protocolNumber",
                &self.protocol_number.to_string(),
            ))
            .child(Element::text("violationType", &self.violation_type))
            .child(Element::text("violationAmmount", &self.amount))
            .child(Element::text("violationDate", &self.violation_date))
            .child(Element::text("violationArticle", &self.article))
            .child(Element::text("violationPlace", &self.place))
            .child(Element::optional("violationImage", self.image.as_deref()))
            .child(Element::text("certEcpExpire", &self.cert_expire))
            .child(Element::optional(
                "deliveryDate",
                self.delivery_date.as_deref(),
            ))
    }
}

/// What `smartcityGetViolations` writes as `certEcpExpire` (required there): kozomol's
/// resolution signing keys have no expiry date.
pub const SIGNATURE_NEVER_EXPIRES: &str = "9999-12-31T23:59:59Z";

/// `protocolInfo`'s data: how a resolution stands with payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInfo {
    /// 1 when paid in full (with or without the discount), else 0.
    pub paid: bool,
    pub message: String,
    /// What was paid so far (`0.00` when nothing).
    pub paid_sum: String,
    /// The last payment's time; the schema requires a date, so with no payment it is
    /// [`NO_DATE`].
    pub payment_date: String,
}

/// The date written where the schema requires one and there is none (nothing paid yet,
/// a birth date the registry did not give): the schema has no nil there.
pub const NO_DATE: &str = "0001-01-01T00:00:00Z";

impl PaymentInfo {
    pub fn element(&self) -> Element {
        Element::new("data")
            .child(Element::text(
                "paymentStatus",
                if self.paid { "1" } else { "0" },
            ))
            .child(Element::text("paymentMessage", &self.message))
            .child(Element::text("paidSum", &self.paid_sum))
            .child(Element::text("paymentDate", &self.payment_date))
    }
}

/// `protocol`'s data: the whole resolution as the contract spells it. Dates are
/// written `xsd:dateTime`s; amounts `xsd:decimal`s; `None` is written nil (only where
/// the schema allows it: the rest are never `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtocolRecord {
    /// The case's numeric id (`id` and `protocolNumber`).
    pub id: i64,
    pub plate_number: String,
    pub violation_date: String,
    /// The camera's id and serial; empty for an officer's report.
    pub device_name: String,
    pub device_serial: String,
    pub car_brand: String,
    pub car_model: String,
    pub car_color: String,
    /// An `xsd:gYear`.
    pub car_year: String,
    pub pin: String,
    pub lastname: String,
    pub firstname: String,
    pub patronymic: String,
    pub birthdate: String,
    pub address: String,
    /// The registry's address parts.
    pub obl: Option<String>,
    pub raion: Option<String>,
    pub aymak: Option<String>,
    pub village: Option<String>,
    pub street: Option<String>,
    pub house: String,
    pub building: Option<String>,
    pub flat: Option<String>,
    pub payment_number: String,
    /// 1 when paid in full, else 0.
    pub paid: bool,
    pub payment_date: Option<String>,
    pub payment_sum: Option<String>,
    pub violation_name: String,
    pub violation_amount: String,
    pub violation_article: String,
    pub violation_article_part: String,
    pub violation_category: String,
    pub violation_place: String,
    /// 1 when delivery is proven, else 0.
    pub delivered: bool,
    pub delivery_date: Option<String>,
    pub delivery_note: Option<String>,
    pub judgement_status: Option<String>,
    pub judgement_reason: Option<String>,
    pub judgement_status_date: Option<String>,
    pub vendor: String,
    pub protocol_date: String,
    pub sign_date: String,
    /// SHA-256 of the signed PDF, hex; the signature over it, base64.
    pub protocol_hash: String,
    pub signed_hash: String,
    pub gps_y: String,
    pub gps_x: String,
    /// The calibration certificate covering the capture, and its date.
    pub certificate: String,
    pub certificate_date: String,
    /// The signing key's id; its issue and expiry dates.
    pub cert_ecp: String,
    pub cert_ecp_issue: String,
    pub cert_ecp_expire: String,
    pub violation_image: String,
    pub operator_fio: String,
    pub manager_rank: String,
    pub manager_fio: String,
    pub complex_type: String,
    pub ern_send_date: String,
}

impl ProtocolRecord {
    pub fn element(&self) -> Element {
        let text = Element::text;
        let optional =
            |name: &str, value: &Option<String>| Element::optional(name, value.as_deref());
        let nil = Element::nil;
        let id = self.id.to_string();
        Element::new("data")
            .child(text("id", &id))
            .child(text("protocolNumber", &id))
            .child(text("plateNumber", &self.plate_number))
            .child(text("violationDate", &self.violation_date))
            .child(text("deviceName", &self.device_name))
            .child(text("deviceSerial", &self.device_serial))
            .child(text("carBrand", &self.car_brand))
            .child(text("carModel", &self.car_model))
            .child(text("carColor", &self.car_color))
            .child(text("carYear", &self.car_year))
            .child(text("pin", &self.pin))
            .child(text("lastname", &self.lastname))
            .child(text("firstname", &self.firstname))
            .child(text("patronymic", &self.patronymic))
            .child(text("birthdate", &self.birthdate))
            .child(text("address", &self.address))
            .child(optional("obl", &self.obl))
            .child(optional("raion", &self.raion))
            .child(optional("aymak", &self.aymak))
            .child(optional("village", &self.village))
            .child(optional("street", &self.street))
            .child(text("house", &self.house))
            .child(optional("building", &self.building))
            .child(optional("flat", &self.flat))
            // kozomol keeps no ids of the address classifier.
            .child(nil("oblId"))
            .child(nil("raionId"))
            .child(nil("aymakId"))
            .child(nil("villageId"))
            .child(nil("streetId"))
            .child(text("paymentNumber", &self.payment_number))
            .child(text("paymentStatus", if self.paid { "1" } else { "0" }))
            .child(optional("paymentDate", &self.payment_date))
            .child(optional("paymentSum", &self.payment_sum))
            .child(text("violationName", &self.violation_name))
            .child(text("violationAmmount", &self.violation_amount))
            .child(text("violationArticle", &self.violation_article))
            .child(text("violationArticlePart", &self.violation_article_part))
            .child(text("violationCategory", &self.violation_category))
            .child(text("violationPlace", &self.violation_place))
            .child(text(
                "deliveryStatus",
                if self.delivered { "1" } else { "0" },
            ))
            .child(optional("deliveryDate", &self.delivery_date))
            .child(optional("deliveryNote", &self.delivery_note))
            .child(optional("deliveryUpdateDate", &self.delivery_date))
            .child(optional("judgementStatus", &self.judgement_status))
            .child(optional("judgementReason", &self.judgement_reason))
            .child(optional("judgementStatusDate", &self.judgement_status_date))
            .child(text("vendor", &self.vendor))
            .child(text("protocolDate", &self.protocol_date))
            .child(text("signDate", &self.sign_date))
            .child(text("protocolHash", &self.protocol_hash))
            .child(text("signedHash", &self.signed_hash))
            .child(text("gpsY", &self.gps_y))
            .child(text("gpsX", &self.gps_x))
            .child(text("certificate", &self.certificate))
            .child(text("certificateDate", &self.certificate_date))
            .child(text("certEcp", &self.cert_ecp))
            .child(text("certEcpIssue", &self.cert_ecp_issue))
            .child(text("certEcpExpire", &self.cert_ecp_expire))
            .child(text("violationImage", &self.violation_image))
            .child(text("operatorFio", &self.operator_fio))
            .child(text("managerRank", &self.manager_rank))
            .child(text("managerFio", &self.manager_fio))
            .child(text("complexType", &self.complex_type))
            .child(nil("pddType"))
            .child(text("ernSendDate", &self.ern_send_date))
    }
}

/// A passage `getEvents` lists: a case's capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// The case's numeric id.
    pub id: i64,
    pub crossroad: String,
    pub plate_number: String,
    pub event_date: String,
    /// Latitude and longitude, as decimal degrees.
    pub gps_y: String,
    pub gps_x: String,
}

impl Passage {
    pub fn element(&self) -> Element {
        Element::new("data")
            .child(Element::text("id", &self.id.to_string()))
            .child(Element::text("crossroad", &self.crossroad))
            .child(Element::text("plateNumber", &self.plate_number))
            .child(Element::text("eventDate", &self.event_date))
            .child(Element::text("gpsY", &self.gps_y))
            .child(Element::text("gpsX", &self.gps_x))
    }
}

/// `getEventPhoto`'s data: the case's evidence photo.
pub fn event_photo(id: i64, event_date: &str, image_base64: &str) -> Element {
    Element::new("data")
        .child(Element::text("id", &id.to_string()))
        .child(Element::text("eventDate", event_date))
        .child(Element::text("image", image_base64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bishkek() -> FixedOffset {
        FixedOffset::east_opt(6 * 3600).expect("+06:00")
    }

    fn call(xml_text: &str) -> Result<Call, Option<InvalidCall>> {
        let doc = xml::parse(xml_text).expect("well-formed");
        Call::read(doc.root_element())
    }

    #[test]
    fn every_operation_is_named_as_in_the_wsdl() {
        let wsdl = include_str!("../wsdl/smartcity-service.wsdl");
        for op in Operation::ALL {
            assert!(
                wsdl.contains(&format!("<wsdl:operation name=\"{}\">", op.name())),
                "{}",
                op.name()
            );
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        let operations = wsdl.matches("<wsdl:operation name=").count();
        assert_eq!(
            operations,
            2 * Operation::ALL.len(),
            "port type and binding"
        );
    }

    #[test]
    fn reads_fields_by_namespace_and_echoes_them() {
        let payment = call(&format!(
            r#"<b:setPaymentLegal xmlns:b="{SMARTCITY_NS}"><b:request><b:status>1</b:status><b:sum>2500.00</b:sum><b:paymentNumber>123</b:paymentNumber><b:paymentDate>2026-12-01T10:00:00</b:paymentDate></b:request></b:setPaymentLegal>"#
        ))
        .expect("a call");
        assert_eq!(payment.operation, Operation::SetPaymentLegal);
        assert_eq!(payment.integer("status"), Ok(1));
        assert_eq!(payment.text("sum"), "2500.00");
        assert_eq!(
            payment
                .date_time("paymentDate", bishkek())
                .expect("a date")
                .to_rfc3339(),
            "2026-12-01T04:00:00+00:00",
            "no zone: the city's time"
        );
        let reply = payment.reply(payment_response(200, "2500.00")).to_xml();
        assert_eq!(
            reply,
            format!(
                "<setPaymentLegalResponse xmlns=\"{SMARTCITY_NS}\"><request><status>1</status><sum>2500.00</sum><paymentNumber>123</paymentNumber><paymentDate>2026-12-01T10:00:00</paymentDate></request><response><status>200</status><cost>2500.00</cost></response></setPaymentLegalResponse>"
            )
        );
    }

    #[test]
    fn refuses_what_the_schema_does_not_allow() {
        let cases = [
            (
                r#"<setPaymentLegal xmlns="urn:other"><request/></setPaymentLegal>"#,
                None,
            ),
            (
                &*format!(r#"<unknownOp xmlns="{SMARTCITY_NS}"><request/></unknownOp>"#),
                None,
            ),
            (
                &*format!(r#"<protocolInfo xmlns="{SMARTCITY_NS}"/>"#),
                Some(""),
            ),
            (
                &*format!(r#"<protocolInfo xmlns="{SMARTCITY_NS}"><request/></protocolInfo>"#),
                Some("protocol"),
            ),
            (
                &*format!(
                    r#"<protocolInfo xmlns="{SMARTCITY_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><request><protocol xsi:nil="true"/></request></protocolInfo>"#
                ),
                Some("protocol"),
            ),
        ];
        for (text, field) in cases {
            let got = call(text).expect_err(text);
            assert_eq!(got.map(|e| e.field), field, "{text}");
        }
        let nil_image = call(&format!(
            r#"<smartcityGetViolations xmlns="{SMARTCITY_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><request><pin>1</pin><plate>01KG123ABC</plate><image xsi:nil="true"/></request></smartcityGetViolations>"#
        ))
        .expect("image is nillable");
        assert_eq!(nil_image.boolean("image"), Ok(None));
        assert!(nil_image
            .reply(coded_response(404, "none"))
            .to_xml()
            .contains(
                "<image xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\"/>"
            ));
    }

    #[test]
    fn typed_fields_refuse_bad_text() {
        let events = call(&format!(
            r#"<getEventPhoto xmlns="{SMARTCITY_NS}"><request><eventId>x1</eventId><eventDate>yesterday</eventDate></request></getEventPhoto>"#
        ))
        .expect("a call");
        assert_eq!(
            events.integer("eventId").map_err(|e| e.field),
            Err("eventId")
        );
        assert_eq!(
            events
                .date_time("eventDate", bishkek())
                .map_err(|e| e.field),
            Err("eventDate")
        );
    }

    #[test]
    fn date_times_round_trip_at_the_city_offset() {
        let at = parse_date_time("2026-12-01T04:00:00Z", bishkek()).expect("a date");
        assert_eq!(write_date_time(at, bishkek()), "2026-12-01T10:00:00+06:00");
        assert_eq!(
            parse_date_time("2026-12-01T10:00:00.5", bishkek())
                .map(|a| a.timestamp_millis() % 1000),
            Some(500)
        );
        assert_eq!(parse_date_time("2026-12-01", bishkek()), None);
    }
}
