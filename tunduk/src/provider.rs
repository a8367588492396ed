//! The provider's side of X-Road message protocol v4.0 over SOAP: reading a request a
//! security server passes on (envelope, header fields, identifiers, one body element)
//! and writing the reply (the request's header fields echoed verbatim) or a SOAP fault.
//! Shared by kozomol's own `smartcity-service` endpoint and the stand-in security server.

use std::ops::Range;

use roxmltree::Node;

use crate::soap::{identifier_path, PROTOCOL_VERSION};
use crate::xml::{self, child, children, escape, is, IDENTIFIERS_NS, SOAP_ENV_NS, XROAD_NS};
use crate::{XRoadClient, XRoadService};

/// Why a request was not read: a fault code in two parts (`prefix` like `Client`,
/// `name` like `InvalidSoap`) and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFault {
    pub prefix: &'static str,
    pub name: &'static str,
    pub message: String,
}

impl RequestFault {
    pub fn client(name: &'static str, message: impl Into<String>) -> Self {
        RequestFault {
            prefix: "Client",
            name,
            message: message.into(),
        }
    }

    /// `Client.InvalidSoap`: the code as written when no other spelling is asked for.
    pub fn code(&self) -> String {
        format!("{}.{}", self.prefix, self.name)
    }
}

/// A well-formed X-Road request, its header fields read and checked.
#[derive(Debug, Clone)]
pub struct XRoadRequest {
    text: String,
    pub client: XRoadClient,
    pub service: XRoadService,
    pub id: String,
    pub user_id: Option<String>,
    pub issue: Option<String>,
    /// `soapenv:` or empty: the envelope's prefix, reused by the reply.
    envelope_prefix: String,
    /// The namespace declarations in scope at the header, for the reply's envelope.
    declarations: String,
    /// The header's children, echoed verbatim.
    header_fields: Range<usize>,
}

/// Whether `content_type` is `text/xml` with no charset but UTF-8.
pub fn is_soap_content_type(content_type: &str) -> bool {
    let value = content_type.to_ascii_lowercase();
    let mut parts = value.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    let charset_ok = parts
        .filter_map(|p| p.strip_prefix("charset="))
        .all(|c| c.trim_matches('"') == "utf-8");
    media == "text/xml" && charset_ok
}

impl XRoadRequest {
    /// Reads a request: `text/xml` in UTF-8, a SOAP 1.1 envelope whose header holds
    /// `client` (a SUBSYSTEM), `service` (a SERVICE), a non-empty `id` and
    /// `protocolVersion` 4.0 exactly once and `userId`, `issue` at most once, and a body
    /// of one element.
    pub fn read(content_type: &str, body: &[u8]) -> Result<Self, RequestFault> {
        if !is_soap_content_type(content_type) {
            return Err(RequestFault::client(
                "InvalidContentType",
                format!("invalid content type `{content_type}`, expected text/xml; charset=utf-8"),
            ));
        }
        let text = std::str::from_utf8(body).map_err(|_| {
            RequestFault::client("InvalidSoap", "malformed SOAP message: not utf-8")
        })?;
        // X-Road allows a BOM; dropped here, so the text kept and the parsed ranges
        // (the header echoed back) count from the same byte.
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let doc = xml::parse(text).map_err(|e| {
            RequestFault::client("InvalidSoap", format!("malformed SOAP message: {e}"))
        })?;
        let envelope = doc.root_element();
        if !is(envelope, SOAP_ENV_NS, "Envelope") {
            return Err(RequestFault::client(
                "InvalidSoap",
                "malformed SOAP message: no SOAP 1.1 envelope",
            ));
        }
        let head = child(envelope, SOAP_ENV_NS, "Header").ok_or_else(|| {
            RequestFault::client("MissingHeader", "malformed SOAP message: header missing")
        })?;
        for (name, required) in [
            ("client", true),
            ("service", true),
            ("id", true),
            ("protocolVersion", true),
            ("userId", false),
            ("issue", false),
        ] {
            match children(head, XROAD_NS, name).count() {
                0 if required => {
                    return Err(RequestFault::client(
                        "MissingHeaderField",
                        format!("required field '{name}' is missing"),
                    ))
                }
                0 | 1 => {}
                _ => {
                    return Err(RequestFault::client(
                        "DuplicateHeaderField",
                        format!("field '{name}' appears more than once"),
                    ))
                }
            }
        }
        let field =
            |name: &str| child(head, XROAD_NS, name).map(|n| xml::text(n).trim().to_owned());
        if field("protocolVersion").as_deref() != Some(PROTOCOL_VERSION) {
            return Err(RequestFault::client(
                "InvalidProtocolVersion",
                format!("invalid protocol version, expected {PROTOCOL_VERSION}"),
            ));
        }
        let id = field("id").unwrap_or_default();
        if id.is_empty() {
            return Err(RequestFault::client(
                "MissingHeaderField",
                "field 'id' is empty",
            ));
        }
        let client = child(head, XROAD_NS, "client")
            .filter(|n| n.attribute((IDENTIFIERS_NS, "objectType")) == Some("SUBSYSTEM"))
            .and_then(|n| XRoadClient::parse(&identifier_path(n)).ok())
            .ok_or_else(|| {
                RequestFault::client("InvalidClientIdentifier", "invalid client identifier")
            })?;
        let service = child(head, XROAD_NS, "service")
            .filter(|n| n.attribute((IDENTIFIERS_NS, "objectType")) == Some("SERVICE"))
            .and_then(|n| XRoadService::parse(&identifier_path(n)).ok())
            .ok_or_else(|| {
                RequestFault::client("InvalidServiceIdentifier", "invalid service identifier")
            })?;
        payload_of(envelope)?;

        let qname: String = text[envelope.range().start + 1..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
            .collect();
        let envelope_prefix = qname
            .rsplit_once(':')
            .map(|(p, _)| format!("{p}:"))
            .unwrap_or_default();
        let mut seen: Vec<Option<&str>> = Vec::new();
        let mut declarations = String::new();
        for node in head.ancestors().filter(|n| n.is_element()) {
            for ns in node.namespaces() {
                if ns.name() == Some("xml") || seen.contains(&ns.name()) {
                    continue;
                }
                seen.push(ns.name());
                match ns.name() {
                    Some(name) => {
                        declarations.push_str(&format!(" xmlns:{name}=\"{}\"", escape(ns.uri())))
                    }
                    None => declarations.push_str(&format!(" xmlns=\"{}\"", escape(ns.uri()))),
                }
            }
        }
        let header_fields = match (head.first_child(), head.last_child()) {
            (Some(first), Some(last)) => first.range().start..last.range().end,
            _ => 0..0,
        };
        let user_id = field("userId");
        let issue = field("issue");
        Ok(XRoadRequest {
            text: text.to_owned(),
            client,
            service,
            id,
            user_id,
            issue,
            envelope_prefix,
            declarations,
            header_fields,
        })
    }

    /// The request as received.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Reads the body's one element with `read`.
    pub fn with_payload<R>(&self, read: impl FnOnce(Node<'_, '_>) -> R) -> R {
        let doc = xml::parse(&self.text).expect("read() parsed this text");
        let payload = payload_of(doc.root_element()).expect("read() found one body element");
        read(payload)
    }

    /// The header's fields exactly as the request wrote them.
    pub fn header_fields(&self) -> &str {
        &self.text[self.header_fields.clone()]
    }

    /// The header's fields with the text of `field` (or of its identifier part
    /// `part`) replaced: how a stand-in spoils its echo. `None` if there is no such text.
    #[cfg(feature = "standin")]
    pub fn header_fields_spoiled(
        &self,
        field: &str,
        part: Option<&str>,
        replacement: &str,
    ) -> Option<String> {
        let doc = xml::parse(&self.text).ok()?;
        let head = child(doc.root_element(), SOAP_ENV_NS, "Header")?;
        let mut node = child(head, XROAD_NS, field)?;
        if let Some(part) = part {
            node = child(node, IDENTIFIERS_NS, part)?;
        }
        let spot = node.children().find(|n| n.is_text())?.range();
        let fields = &self.header_fields;
        Some(format!(
            "{}{replacement}{}",
            &self.text[fields.start..spot.start],
            &self.text[spot.end..fields.end]
        ))
    }

    /// The reply envelope: the request's envelope prefix and namespace declarations,
    /// `header` (the request's fields, [`Self::header_fields`], unless a stand-in
    /// spoils them, plus whatever a security server adds) and `payload` in the body.
    pub fn reply_with_header(&self, header: &str, payload: &str) -> String {
        let prefix = &self.envelope_prefix;
        let decls = &self.declarations;
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><{prefix}Envelope{decls}><{prefix}Header>{header}</{prefix}Header><{prefix}Body>{payload}</{prefix}Body></{prefix}Envelope>"#
        )
    }

    /// The reply a provider sends: the header fields echoed, `payload` in the body.
    pub fn reply(&self, payload: &str) -> String {
        self.reply_with_header(self.header_fields(), payload)
    }
}

fn payload_of<'a, 'input>(envelope: Node<'a, 'input>) -> Result<Node<'a, 'input>, RequestFault> {
    let body = child(envelope, SOAP_ENV_NS, "Body").ok_or_else(|| {
        RequestFault::client("MissingBody", "malformed SOAP message: body missing")
    })?;
    let mut payloads = body.children().filter(|n| n.is_element());
    match (payloads.next(), payloads.next()) {
        (Some(payload), None) => Ok(payload),
        _ => Err(RequestFault::client(
            "InvalidBody",
            "malformed SOAP message: the body must hold one element",
        )),
    }
}

/// A SOAP 1.1 fault envelope; `detail` is a fresh id the caller can quote.
pub fn fault_envelope(code: &str, message: &str, detail: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV_NS}"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring><faultactor></faultactor><detail><faultDetail xmlns="">{}</faultDetail></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        escape(code),
        escape(message),
        escape(detail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: &str, body: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="{SOAP_ENV_NS}" xmlns:x="{XROAD_NS}" xmlns:i="{IDENTIFIERS_NS}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#
        )
    }

    const HEADER: &str = r#"<x:client i:objectType="SUBSYSTEM"><i:xRoadInstance>central-server</i:xRoadInstance><i:memberClass>COM</i:memberClass><i:memberCode>123</i:memberCode><i:subsystemCode>bank</i:subsystemCode></x:client><x:service i:objectType="SERVICE"><i:xRoadInstance>central-server</i:xRoadInstance><i:memberClass>GOV</i:memberClass><i:memberCode>700</i:memberCode><i:subsystemCode>smartcity</i:subsystemCode><i:serviceCode>protocolInfo</i:serviceCode><i:serviceVersion>v1</i:serviceVersion></x:service><x:id>m-1</x:id><x:userId>kg-1</x:userId><x:protocolVersion>4.0</x:protocolVersion>"#;

    #[test]
    fn reads_headers_and_echoes_them_verbatim() {
        let text = request(HEADER, "<p xmlns=\"urn:p\"><a>1</a></p>");
        let request = XRoadRequest::read("text/xml; charset=UTF-8", text.as_bytes()).expect("read");
        assert_eq!(request.client.to_string(), "central-server/COM/123/bank");
        assert_eq!(request.service.service_code(), "protocolInfo");
        assert_eq!(request.id, "m-1");
        assert_eq!(request.user_id.as_deref(), Some("kg-1"));
        assert_eq!(request.issue, None);
        assert_eq!(
            request.with_payload(xml::text),
            "1",
            "the payload is the body's element"
        );
        let reply = request.reply("<r/>");
        assert!(
            reply.contains(&format!("<s:Header>{HEADER}</s:Header>")),
            "{reply}"
        );
        assert!(reply.contains("<s:Body><r/></s:Body>"), "{reply}");
        let doc = xml::parse(&reply).expect("the reply is well-formed");
        assert!(is(doc.root_element(), SOAP_ENV_NS, "Envelope"));
    }

    #[test]
    fn a_request_with_a_byte_order_mark_is_echoed_whole() {
        for prolog in [
            "\u{FEFF}",
            "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        ] {
            let text = format!("{prolog}{}", request(HEADER, "<p/>"));
            let request =
                XRoadRequest::read("text/xml; charset=utf-8", text.as_bytes()).expect("read");
            assert_eq!(request.header_fields(), HEADER, "{prolog:?}");
            let reply = request.reply("<r/>");
            assert!(
                reply.contains(&format!("<s:Header>{HEADER}</s:Header>")),
                "{reply}"
            );
            let doc = xml::parse(&reply).expect("the reply is well-formed");
            assert!(is(doc.root_element(), SOAP_ENV_NS, "Envelope"));
        }
    }

    #[test]
    fn refuses_what_a_security_server_would() {
        let cases: [(&str, String, &str); 7] = [
            (
                "application/json",
                request(HEADER, "<p/>"),
                "InvalidContentType",
            ),
            ("text/xml", "<a/>".to_owned(), "InvalidSoap"),
            ("text/xml", "<a".to_owned(), "InvalidSoap"),
            (
                "text/xml",
                request(&HEADER.replace("<x:id>m-1</x:id>", ""), "<p/>"),
                "MissingHeaderField",
            ),
            (
                "text/xml",
                request(&format!("{HEADER}<x:id>m-2</x:id>"), "<p/>"),
                "DuplicateHeaderField",
            ),
            (
                "text/xml",
                request(&HEADER.replace(">4.0<", ">5.0<"), "<p/>"),
                "InvalidProtocolVersion",
            ),
            ("text/xml", request(HEADER, "<p/><q/>"), "InvalidBody"),
        ];
        for (content_type, text, name) in cases {
            let fault = XRoadRequest::read(content_type, text.as_bytes()).expect_err(name);
            assert_eq!(fault.name, name, "{text}: {}", fault.message);
        }
        let wrong_kind = HEADER.replacen("SUBSYSTEM", "MEMBER", 1);
        let fault = XRoadRequest::read("text/xml", request(&wrong_kind, "<p/>").as_bytes())
            .expect_err("a member is not a client subsystem");
        assert_eq!(fault.code(), "Client.InvalidClientIdentifier");
    }
}
