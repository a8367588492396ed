//! The X-Road message protocol v4.0 over SOAP 1.1, as a consumer: the envelope with
//! its header, the post to the security server, and the checks on the reply (fault,
//! header echo, the `fooResponse` wrapper).

use std::time::{Duration, Instant};

use roxmltree::Node;
use uuid::Uuid;

use tracing::Instrument;

use crate::exchange::{log_exchange, Exchanged};
use crate::http::{body_text, exchange_span, read_body, traced, transport_error};
use crate::xml::{self, child, escape, is, Element, IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS};
use crate::{ExchangeContext, TundukError, XRoadClient, XRoadFault, XRoadService};

/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: &str = "4.0";

/// The header fields of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub client: XRoadClient,
    pub service: XRoadService,
    /// Unique per request; kozomol uses a UUID.
    pub id: String,
    pub user_id: String,
    pub issue: String,
}

impl RequestHeader {
    pub fn new(client: XRoadClient, service: XRoadService, context: &ExchangeContext) -> Self {
        RequestHeader {
            client,
            service,
            id: Uuid::now_v7().to_string(),
            user_id: context.user_id.clone(),
            issue: context.issue.clone(),
        }
    }
}

/// The whole request envelope, every value escaped.
pub fn build_envelope(header: &RequestHeader, payload: &Element) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(&format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV_NS}" xmlns:xrd="{XROAD_NS}" xmlns:id="{IDENTIFIERS_NS}">"#
    ));
    out.push_str("<SOAP-ENV:Header>");
    out.push_str(r#"<xrd:client id:objectType="SUBSYSTEM">"#);
    write_parts(&mut out, &header.client, None);
    out.push_str("</xrd:client>");
    out.push_str(r#"<xrd:service id:objectType="SERVICE">"#);
    write_parts(&mut out, header.service.provider(), Some(&header.service));
    out.push_str("</xrd:service>");
    for (name, value) in [
        ("id", header.id.as_str()),
        ("userId", &header.user_id),
        ("issue", &header.issue),
        ("protocolVersion", PROTOCOL_VERSION),
    ] {
        out.push_str(&format!("<xrd:{name}>{}</xrd:{name}>", escape(value)));
    }
    out.push_str("</SOAP-ENV:Header><SOAP-ENV:Body>");
    payload.write(&mut out);
    out.push_str("</SOAP-ENV:Body></SOAP-ENV:Envelope>");
    out
}

fn write_parts(out: &mut String, owner: &XRoadClient, service: Option<&XRoadService>) {
    let mut parts = vec![
        ("xRoadInstance", owner.instance()),
        ("memberClass", owner.member_class()),
        ("memberCode", owner.member_code()),
        ("subsystemCode", owner.subsystem_code()),
    ];
    if let Some(service) = service {
        parts.push(("serviceCode", service.service_code()));
        if let Some(version) = service.service_version() {
            parts.push(("serviceVersion", version));
        }
    }
    for (name, value) in parts {
        out.push_str(&format!("<id:{name}>{}</id:{name}>", escape(value)));
    }
}

/// Reads a client or service identifier element: its parts joined with `/`, in the
/// order the schema gives them.
pub fn identifier_path(node: Node<'_, '_>) -> String {
    [
        "xRoadInstance",
        "memberClass",
        "memberCode",
        "subsystemCode",
        "serviceCode",
        "serviceVersion",
    ]
    .iter()
    .filter_map(|name| child(node, IDENTIFIERS_NS, name))
    .map(|n| xml::text(n).trim().to_owned())
    .collect::<Vec<_>>()
    .join("/")
}

/// Reads a SOAP `Fault` element: `faultcode`, `faultstring` and `detail` (unqualified
/// in SOAP 1.1; qualified ones are accepted too).
pub fn read_fault(fault: Node<'_, '_>) -> XRoadFault {
    let field = |name: &str| {
        fault
            .children()
            .find(|n| {
                n.is_element()
                    && n.tag_name().name() == name
                    && matches!(n.tag_name().namespace(), None | Some(SOAP_ENV_NS))
            })
            .map(|n| xml::text(n).trim().to_owned())
    };
    let detail = field("detail").filter(|d| !d.is_empty());
    XRoadFault::new(
        field("faultcode").unwrap_or_default(),
        field("faultstring").unwrap_or_default(),
        detail,
    )
}

/// Interprets a reply to the request `sent`: a SOAP fault becomes `Fault` whatever the
/// HTTP status; other non-2xx statuses become `HttpStatus`; a success must echo the
/// request's `id`, `client` and `service` and wrap its body in
/// `{serviceCode}Response`, which `parse` then reads.
pub fn interpret_reply<T>(
    status: u16,
    body: &str,
    sent: &RequestHeader,
    parse: impl FnOnce(Node<'_, '_>) -> Result<T, TundukError>,
) -> Result<T, TundukError> {
    let success = (200..300).contains(&status);
    let not_soap = |reason: String| {
        if success {
            TundukError::MalformedReply(reason)
        } else {
            TundukError::HttpStatus { status }
        }
    };
    let doc = xml::parse(body).map_err(|e| not_soap(format!("not xml: {e}")))?;
    let envelope = doc.root_element();
    if !is(envelope, SOAP_ENV_NS, "Envelope") {
        return Err(not_soap("the root is not a SOAP 1.1 envelope".to_owned()));
    }
    let soap_body = child(envelope, SOAP_ENV_NS, "Body")
        .ok_or_else(|| not_soap("the envelope has no body".to_owned()))?;
    let payload = soap_body
        .children()
        .find(|n| n.is_element())
        .ok_or_else(|| not_soap("the body is empty".to_owned()))?;
    if is(payload, SOAP_ENV_NS, "Fault") {
        return Err(TundukError::Fault(read_fault(payload)));
    }
    if !success {
        return Err(TundukError::HttpStatus { status });
    }
    check_echo(envelope, sent)?;
    let expected = format!("{}Response", sent.service.service_code());
    if payload.tag_name().name() != expected {
        return Err(TundukError::MalformedReply(format!(
            "the body holds `{}`, not `{expected}`",
            payload.tag_name().name()
        )));
    }
    parse(payload)
}

fn check_echo(envelope: Node<'_, '_>, sent: &RequestHeader) -> Result<(), TundukError> {
    let header = child(envelope, SOAP_ENV_NS, "Header");
    let field = |name: &str| header.and_then(|h| child(h, XROAD_NS, name));
    let mismatch =
        |field: &'static str, sent: String, got: Option<String>| TundukError::HeaderMismatch {
            field,
            sent,
            got: got.unwrap_or_else(|| "(missing)".to_owned()),
        };
    let id = field("id").map(|n| xml::text(n).trim().to_owned());
    if id.as_deref() != Some(sent.id.as_str()) {
        return Err(mismatch("id", sent.id.clone(), id));
    }
    let client = field("client").map(identifier_path);
    if client.as_deref() != Some(sent.client.to_string().as_str()) {
        return Err(mismatch("client", sent.client.to_string(), client));
    }
    let service = field("service").map(identifier_path);
    if service.as_deref() != Some(sent.service.to_string().as_str()) {
        return Err(mismatch("service", sent.service.to_string(), service));
    }
    Ok(())
}

/// Sends X-Road SOAP requests to one security server as one client subsystem. Each
/// call is one attempt; retries belong to the caller.
#[derive(Debug, Clone)]
pub struct SoapClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    client: XRoadClient,
    max_response_bytes: usize,
}

impl SoapClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: reqwest::Url,
        client: XRoadClient,
        max_response_bytes: usize,
    ) -> Self {
        SoapClient {
            http,
            endpoint,
            client,
            max_response_bytes,
        }
    }

    /// Posts `payload` (whose element name must be the service code) to `service`,
    /// and hands the reply's `{serviceCode}Response` element to `parse`. Logs the
    /// exchange; its message id comes back with what `parse` read.
    pub async fn call<T>(
        &self,
        service: &XRoadService,
        payload: &Element,
        context: &ExchangeContext,
        timeout: Duration,
        parse: impl FnOnce(Node<'_, '_>) -> Result<T, TundukError>,
    ) -> Result<Exchanged<T>, TundukError> {
        if payload.name() != service.service_code() {
            return Err(TundukError::InvalidInput(format!(
                "the body element `{}` must be named after the service code `{}`",
                payload.name(),
                service.service_code()
            )));
        }
        let header = RequestHeader::new(self.client.clone(), service.clone(), context);
        let envelope = build_envelope(&header, payload);
        let started = Instant::now();
        let result = self
            .exchange(envelope, &header, timeout, parse)
            .instrument(exchange_span(&header.id, service, "soap"))
            .await;
        log_exchange(
            &header.id,
            context,
            service,
            "soap",
            &result,
            started.elapsed(),
        );
        result.map(|value| Exchanged {
            id: header.id,
            value,
        })
    }

    async fn exchange<T>(
        &self,
        envelope: String,
        header: &RequestHeader,
        timeout: Duration,
        parse: impl FnOnce(Node<'_, '_>) -> Result<T, TundukError>,
    ) -> Result<T, TundukError> {
        let response = traced(self.http.post(self.endpoint.clone()))
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .timeout(timeout)
            .body(envelope)
            .send()
            .await
            .map_err(|e| transport_error(e, timeout))?;
        let status = response.status().as_u16();
        let body = body_text(read_body(response, self.max_response_bytes, timeout).await?)?;
        interpret_reply(status, &body, header, parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RequestHeader {
        RequestHeader {
            client: XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("valid"),
            service: XRoadService::parse(
                "central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v1",
            )
            .expect("valid"),
            id: "4894e35d-bf0f-44a6-867a-8e51f1daa7e0".to_owned(),
            user_id: "officer <&> \"1\"".to_owned(),
            issue: "42".to_owned(),
        }
    }

    fn payload() -> Element {
        Element::new("transportCurrentInfo")
            .in_namespace(xml::VEHICLES_NS)
            .child(Element::new("request").child(Element::text("govPlate", "01KG123ABC")))
    }

    /// A reply as a security server would send it: the request's header copied.
    fn reply_to(envelope: &str, body: &str) -> String {
        let start = envelope.find("<SOAP-ENV:Header>").expect("header");
        let end = envelope.find("</SOAP-ENV:Header>").expect("header end");
        let head = &envelope[..start];
        format!(
            "{head}{}</SOAP-ENV:Header><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>",
            &envelope[start..end]
        )
    }

    #[test]
    fn envelope_reads_back_by_namespace() {
        let header = header();
        let envelope = build_envelope(&header, &payload());
        let doc = xml::parse(&envelope).expect("well-formed");
        let root = doc.root_element();
        let head = child(root, SOAP_ENV_NS, "Header").expect("header");
        let client = child(head, XROAD_NS, "client").expect("client");
        assert_eq!(
            client.attribute((IDENTIFIERS_NS, "objectType")),
            Some("SUBSYSTEM")
        );
        assert_eq!(
            identifier_path(client),
            "central-server/GOV/70000099/kozomol"
        );
        let service = child(head, XROAD_NS, "service").expect("service");
        assert_eq!(
            service.attribute((IDENTIFIERS_NS, "objectType")),
            Some("SERVICE")
        );
        assert_eq!(identifier_path(service), header.service.to_string());
        let user = child(head, XROAD_NS, "userId").expect("userId");
        assert_eq!(xml::text(user), "officer <&> \"1\"");
        let version = child(head, XROAD_NS, "protocolVersion").expect("version");
        assert_eq!(xml::text(version), "4.0");
        let body = child(root, SOAP_ENV_NS, "Body").expect("body");
        assert!(child(body, xml::VEHICLES_NS, "transportCurrentInfo").is_some());
    }

    #[test]
    fn reply_echo_and_wrapper_are_checked() {
        let header = header();
        let envelope = build_envelope(&header, &payload());
        let good = reply_to(
            &envelope,
            &format!(
                "<transportCurrentInfoResponse xmlns=\"{}\"/>",
                xml::VEHICLES_NS
            ),
        );
        let parsed = interpret_reply(200, &good, &header, |n| Ok(n.tag_name().name().to_owned()));
        assert_eq!(parsed, Ok("transportCurrentInfoResponse".to_owned()));

        let other_id = good.replace(&header.id, "00000000-0000-0000-0000-000000000000");
        let err = interpret_reply(200, &other_id, &header, |_| Ok(())).expect_err("mismatch");
        assert!(
            matches!(err, TundukError::HeaderMismatch { field: "id", .. }),
            "{err}"
        );

        let other_client = good.replace("70000099", "70000098");
        let err = interpret_reply(200, &other_client, &header, |_| Ok(())).expect_err("mismatch");
        assert!(
            matches!(
                err,
                TundukError::HeaderMismatch {
                    field: "client",
                    ..
                }
            ),
            "{err}"
        );

        let other_service = good.replace(">v1<", ">v2<");
        let err = interpret_reply(200, &other_service, &header, |_| Ok(())).expect_err("mismatch");
        assert!(
            matches!(
                err,
                TundukError::HeaderMismatch {
                    field: "service",
                    ..
                }
            ),
            "{err}"
        );

        let wrong_wrapper = reply_to(&envelope, "<somethingElse/>");
        let err = interpret_reply(200, &wrong_wrapper, &header, |_| Ok(())).expect_err("wrapper");
        assert!(matches!(err, TundukError::MalformedReply(_)), "{err}");
    }

    #[test]
    fn faults_win_over_http_status() {
        let header = header();
        let fault = format!(
            r#"<?xml version="1.0"?><S:Envelope xmlns:S="{SOAP_ENV_NS}"><S:Body><S:Fault><faultcode>server.serverproxy.access_denied</faultcode><faultstring>Request is not allowed</faultstring><detail><faultDetail xmlns="">abc</faultDetail></detail></S:Fault></S:Body></S:Envelope>"#
        );
        for status in [200, 500] {
            match interpret_reply(status, &fault, &header, |_| Ok(())) {
                Err(TundukError::Fault(f)) => {
                    assert_eq!(f.kind, crate::FaultKind::AccessDenied);
                    assert_eq!(f.code, "server.serverproxy.access_denied");
                    assert_eq!(f.message, "Request is not allowed");
                    assert_eq!(f.detail.as_deref(), Some("abc"));
                }
                other => panic!("expected a fault, got {other:?}"),
            }
        }
        let cases = [
            (
                500,
                "Internal Server Error",
                TundukError::HttpStatus { status: 500 },
            ),
            (502, "", TundukError::HttpStatus { status: 502 }),
            (
                200,
                "<html/>",
                TundukError::MalformedReply("the root is not a SOAP 1.1 envelope".to_owned()),
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                interpret_reply(status, body, &header, |_| Ok(())),
                Err(expected),
                "{status} {body}"
            );
        }
    }
}
