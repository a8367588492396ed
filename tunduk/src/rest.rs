//! The X-Road message protocol for REST (r1), as a consumer:
//! `GET {base}/r1/{instance}/{class}/{member}/{subsystem}/{serviceCode}/{path…}` with
//! `X-Road-Client` (exactly once), `X-Road-Id`, `X-Road-UserId` and `X-Road-Issue`;
//! error bodies `{"type","message","detail"}` become the same faults as SOAP's.

use std::time::{Duration, Instant};

use serde::Deserialize;

use tracing::Instrument;

use crate::exchange::{log_exchange, Exchanged};
use crate::http::{exchange_span, read_body, traced, transport_error};
use crate::soap::RequestHeader;
use crate::{ExchangeContext, TundukError, XRoadClient, XRoadFault, XRoadService};

pub const PROTOCOL_VERSION: &str = "r1";

/// Percent-encodes one identifier part (RFC 3986 unreserved characters stay).
pub fn encode_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes one percent-encoded part; `None` when an escape is broken or the bytes are
/// not UTF-8.
pub fn decode_part(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `instance/class/member/subsystem`, each part encoded: the `X-Road-Client` value.
pub fn client_header(client: &XRoadClient) -> String {
    client.parts().map(encode_part).join("/")
}

/// Decodes a `/`-separated identifier whose parts are percent-encoded.
pub fn decode_path(value: &str) -> Option<String> {
    value
        .split('/')
        .map(decode_part)
        .collect::<Option<Vec<_>>>()
        .map(|parts| parts.join("/"))
}

/// The X-Road headers of a reply that the client checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyHeaders {
    pub id: Option<String>,
    pub client: Option<String>,
    pub service: Option<String>,
    /// `X-Road-Error`: set only by a security server, on an error of its own.
    pub error: Option<String>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
    detail: Option<serde_json::Value>,
}

/// Interprets a REST reply to `sent`: a non-2xx reply with `X-Road-Error` (a security
/// server's own error) becomes `Fault`, its body's `type`, `message` and `detail` read
/// where it has them; any other non-2xx status becomes `HttpStatus`, whatever its body
/// (a provider's `{"type": ...}` problem is the provider's); a success must echo the
/// request's `X-Road-Id` (and its client and service when the reply names them), and
/// its JSON body goes to `parse`.
pub fn interpret_reply<T>(
    status: u16,
    headers: &ReplyHeaders,
    body: &[u8],
    sent: &RequestHeader,
    parse: impl FnOnce(serde_json::Value) -> Result<T, TundukError>,
) -> Result<T, TundukError> {
    if !(200..300).contains(&status) {
        let Some(error) = headers
            .error
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Err(TundukError::HttpStatus { status });
        };
        let ErrorBody {
            kind,
            message,
            detail,
        } = serde_json::from_slice::<ErrorBody>(body).unwrap_or_default();
        let kind = kind.filter(|k| !k.trim().is_empty());
        let detail = detail.map(|d| match d {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        return Err(TundukError::Fault(XRoadFault::new(
            kind.as_deref().unwrap_or(error).trim(),
            message.unwrap_or_default(),
            detail,
        )));
    }
    if headers.id.as_deref().map(str::trim) != Some(sent.id.as_str()) {
        return Err(TundukError::HeaderMismatch {
            field: "id",
            sent: sent.id.clone(),
            got: headers.id.clone().unwrap_or_else(|| "(missing)".to_owned()),
        });
    }
    if let Some(client) = &headers.client {
        let got = decode_path(client.trim());
        if got.as_deref() != Some(sent.client.to_string().as_str()) {
            return Err(TundukError::HeaderMismatch {
                field: "client",
                sent: sent.client.to_string(),
                got: client.clone(),
            });
        }
    }
    if let Some(service) = &headers.service {
        let got = decode_path(service.trim());
        if got.as_deref() != Some(sent.service.rest_id().as_str()) {
            return Err(TundukError::HeaderMismatch {
                field: "service",
                sent: sent.service.rest_id(),
                got: service.clone(),
            });
        }
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| TundukError::MalformedReply(format!("not json: {e}")))?;
    parse(value)
}

/// Sends X-Road REST requests to one security server as one client subsystem. Each
/// call is one attempt; retries belong to the caller.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: reqwest::Url,
    client: XRoadClient,
    max_response_bytes: usize,
}

impl RestClient {
    pub fn new(
        http: reqwest::Client,
        base: reqwest::Url,
        client: XRoadClient,
        max_response_bytes: usize,
    ) -> Self {
        RestClient {
            http,
            base,
            client,
            max_response_bytes,
        }
    }

    /// `{base}/r1/{service rest id}/{path…}`, every part percent-encoded on its own.
    pub fn url(&self, service: &XRoadService, path: &[&str]) -> Result<reqwest::Url, TundukError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                TundukError::InvalidInput(format!("`{}` cannot be a base url", self.base))
            })?;
            segments.pop_if_empty().push(PROTOCOL_VERSION);
            segments.extend(service.provider().parts());
            segments.push(service.service_code());
            segments.extend(path);
        }
        Ok(url)
    }

    /// `GET`s `path` under `service` and hands the JSON reply to `parse`. Logs the
    /// exchange; its message id comes back with what `parse` read.
    pub async fn get<T>(
        &self,
        service: &XRoadService,
        path: &[&str],
        context: &ExchangeContext,
        timeout: Duration,
        parse: impl FnOnce(serde_json::Value) -> Result<T, TundukError>,
    ) -> Result<Exchanged<T>, TundukError> {
        let header = RequestHeader::new(self.client.clone(), service.clone(), context);
        let started = Instant::now();
        let result = match self.url(service, path) {
            Ok(url) => {
                self.exchange(url, &header, timeout, parse)
                    .instrument(exchange_span(&header.id, service, "rest"))
                    .await
            }
            Err(e) => Err(e),
        };
        log_exchange(
            &header.id,
            context,
            service,
            "rest",
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
        url: reqwest::Url,
        header: &RequestHeader,
        timeout: Duration,
        parse: impl FnOnce(serde_json::Value) -> Result<T, TundukError>,
    ) -> Result<T, TundukError> {
        let response = traced(self.http.get(url))
            .header("X-Road-Client", client_header(&header.client))
            .header("X-Road-Id", &header.id)
            .header("X-Road-UserId", encode_header_value(&header.user_id))
            .header("X-Road-Issue", encode_header_value(&header.issue))
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport_error(e, timeout))?;
        let status = response.status().as_u16();
        let text_header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let headers = ReplyHeaders {
            id: text_header("x-road-id"),
            client: text_header("x-road-client"),
            service: text_header("x-road-service"),
            error: text_header("x-road-error"),
        };
        let body = read_body(response, self.max_response_bytes, timeout).await?;
        interpret_reply(status, &headers, &body, header, parse)
    }
}

/// HTTP header values are ASCII without controls: other characters are
/// percent-encoded, like identifier parts.
fn encode_header_value(value: &str) -> String {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'%')
    {
        value.to_owned()
    } else {
        encode_part(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> RequestHeader {
        RequestHeader {
            client: XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("valid"),
            service: XRoadService::parse(
                "central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v1",
            )
            .expect("valid"),
            id: "id-1".to_owned(),
            user_id: "kozomol".to_owned(),
            issue: "42".to_owned(),
        }
    }

    #[test]
    fn encoding_round_trips() {
        for part in ["central-server", "a'(+),-.=?", "Бишкек", "a/b", "50%"] {
            assert_eq!(decode_part(&encode_part(part)).as_deref(), Some(part));
        }
        assert_eq!(encode_part("a?b"), "a%3Fb");
        assert_eq!(decode_part("%4"), None);
        assert_eq!(decode_part("%zz"), None);
    }

    #[test]
    fn url_has_every_part() {
        let client = RestClient::new(
            reqwest::Client::new(),
            reqwest::Url::parse("http://127.0.0.1:8080/").expect("url"),
            sent().client,
            1024,
        );
        let url = client
            .url(&sent().service, &["v1", "01KG 123/ABC"])
            .expect("url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/r1/central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v1/01KG%20123%2FABC"
        );
    }

    #[test]
    fn replies() {
        let ok_headers = ReplyHeaders {
            id: Some("id-1".to_owned()),
            client: Some("central-server/GOV/70000099/kozomol".to_owned()),
            service: Some(
                "central-server/GOV/70000005/vehicles-service/transportCurrentInfo".to_owned(),
            ),
            error: None,
        };
        let parse = |v: serde_json::Value| Ok(v["a"].as_i64());
        assert_eq!(
            interpret_reply(200, &ok_headers, br#"{"a":1}"#, &sent(), parse),
            Ok(Some(1))
        );

        let denied = br#"{"type":"Server.ServerProxy.AccessDenied","message":"Request is not allowed","detail":"x"}"#;
        let from_x_road = ReplyHeaders {
            error: Some("Server.ServerProxy.AccessDenied".to_owned()),
            ..ReplyHeaders::default()
        };
        match interpret_reply(500, &from_x_road, denied, &sent(), parse) {
            Err(TundukError::Fault(f)) => {
                assert_eq!(f.kind, crate::FaultKind::AccessDenied);
                assert_eq!(f.detail.as_deref(), Some("x"));
            }
            other => panic!("expected a fault, got {other:?}"),
        }
        assert_eq!(
            interpret_reply(503, &ReplyHeaders::default(), b"busy", &sent(), parse),
            Err(TundukError::HttpStatus { status: 503 })
        );
        // The provider's own problem details, without X-Road-Error: its status, which
        // a retry may pass, not a fault of X-Road's.
        let problem = br#"{"type":"about:blank","title":"Service Unavailable","status":503}"#;
        assert_eq!(
            interpret_reply(503, &ReplyHeaders::default(), problem, &sent(), parse),
            Err(TundukError::HttpStatus { status: 503 })
        );
        // X-Road's error with a body that is not its JSON: the header names it.
        let timed_out = ReplyHeaders {
            error: Some("Server.ServerProxy.NetworkError".to_owned()),
            ..ReplyHeaders::default()
        };
        match interpret_reply(500, &timed_out, b"<html>", &sent(), parse) {
            Err(TundukError::Fault(f)) => assert_eq!(f.code, "Server.ServerProxy.NetworkError"),
            other => panic!("expected a fault, got {other:?}"),
        }

        let cases = [
            (
                ReplyHeaders {
                    id: Some("id-2".to_owned()),
                    ..ok_headers.clone()
                },
                "id",
            ),
            (
                ReplyHeaders {
                    id: None,
                    ..ok_headers.clone()
                },
                "id",
            ),
            (
                ReplyHeaders {
                    client: Some("central-server/GOV/1/kozomol".to_owned()),
                    ..ok_headers.clone()
                },
                "client",
            ),
            (
                ReplyHeaders {
                    service: Some("central-server/GOV/70000005/vehicles-service/x".to_owned()),
                    ..ok_headers.clone()
                },
                "service",
            ),
        ];
        for (headers, expected) in cases {
            match interpret_reply(200, &headers, br#"{"a":1}"#, &sent(), parse) {
                Err(TundukError::HeaderMismatch { field, .. }) => assert_eq!(field, expected),
                other => panic!("expected a {expected} mismatch, got {other:?}"),
            }
        }
    }
}
