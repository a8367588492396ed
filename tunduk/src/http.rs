//! What the SOAP and REST clients share about HTTP: the exchange's span and its
//! `traceparent`, reading a bounded body and naming reqwest's errors.

use std::error::Error as _;
use std::time::Duration;

use tracing::Span;

use crate::{TundukError, XRoadService};

/// The span of one exchange over the bus; the request made inside it carries its
/// `traceparent` (see [`traced`]).
pub(crate) fn exchange_span(id: &str, service: &XRoadService, protocol: &'static str) -> Span {
    tracing::info_span!(
        "tunduk",
        otel.kind = "client",
        service = %service,
        protocol,
        x_road_id = id,
    )
}

/// `request` with the current span's `traceparent`, where spans are exported.
pub(crate) fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match kozomol_telemetry::header_value(&Span::current()) {
        Some(value) => request.header(kozomol_telemetry::TRACEPARENT, value),
        None => request,
    }
}

/// Reads the body, refusing one longer than `limit` bytes.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, TundukError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(e, timeout))?
    {
        if body.len() + chunk.len() > limit {
            return Err(TundukError::MalformedReply(format!(
                "reply is longer than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A time-out as `Timeout`, anything else as `Transport` with its causes.
pub(crate) fn transport_error(error: reqwest::Error, timeout: Duration) -> TundukError {
    if error.is_timeout() {
        return TundukError::Timeout(timeout);
    }
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    TundukError::Transport(message)
}

/// UTF-8 text of a body (X-Road's default charset), without a BOM.
pub(crate) fn body_text(body: Vec<u8>) -> Result<String, TundukError> {
    let text = String::from_utf8(body)
        .map_err(|_| TundukError::MalformedReply("reply is not utf-8".to_owned()))?;
    Ok(match text.strip_prefix('\u{FEFF}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}
