//! kozomol-telemetry: what the binaries tell operators besides `/metrics` — logs on
//! stderr (text, or JSON a line) and, where a collector is configured, traces sent over
//! OTLP/HTTP — and how a trace crosses a boundary: W3C `traceparent` in and out of HTTP
//! headers, camera envelopes and the cases the pipeline's stages claim.
//!
//! Traces follow OpenTelemetry's own environment variables, so an operator configures
//! kozomol as every other service: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns them on; `OTEL_EXPORTER_OTLP_PROTOCOL`
//! (`http/protobuf`, the default, or `http/json`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and `OTEL_BSP_*` tune them;
//! `OTEL_SDK_DISABLED=true` turns them off.

use std::time::Duration;

use kozomol_core::TraceParent;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::Context;
use opentelemetry_otlp::WithHttpConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The HTTP header (and envelope label) of a W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("KOZOMOL_LOG_FORMAT is `text` or `json`, not `{0}`")]
    LogFormat(String),
    #[error("the OTLP trace exporter: {0}")]
    Exporter(String),
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// Installed logs and traces; [`Telemetry::shutdown`] sends the spans still buffered.
#[must_use = "dropping it without shutdown loses the last spans"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn tracing(&self) -> bool {
        self.traces.is_some()
    }

    /// Exports what is buffered and stops the exporter (at most a few seconds).
    pub fn shutdown(self) {
        if let Some(traces) = self.traces {
            if let Err(e) = traces.shutdown_with_timeout(Duration::from_secs(5)) {
                tracing::warn!(error = %e, "sending the last spans failed");
            }
        }
    }
}

/// Installs the process's logger (`RUST_LOG` or `default_filter`; `KOZOMOL_LOG_FORMAT`
/// `text` or `json`: one JSON object a line with the spans an event happened in) and,
/// where the environment names a collector, the trace exporter for kozomol's own
/// info-level spans, as `service` (unless `OTEL_SERVICE_NAME` names it).
pub fn install(service: &str, default_filter: &str) -> Result<Telemetry, TelemetryError> {
    install_from(service, default_filter, |name| std::env::var(name).ok())
}

fn install_from(
    service: &str,
    default_filter: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Telemetry, TelemetryError> {
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = match env("KOZOMOL_LOG_FORMAT").as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => return Err(TelemetryError::LogFormat(other.to_owned())),
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed()
    } else {
        logs.boxed()
    };
    let traces = traces_wanted(&env)
        .then(|| exporter(service, &env))
        .transpose()?;
    // kozomol's own spans, whatever RUST_LOG keeps of the logs: quieter logs must not
    // cut a trace in two.
    let spans = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("kozomol"))
            .with_filter(EnvFilter::new("kozomol=info"))
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter()))
        .with(spans)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { traces })
}

fn traces_wanted(env: &impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

fn exporter(
    service: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpHttp::new())
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let mut resource = Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The exporter's HTTP client: the workspace's blocking one, which the batch processor's
/// own thread may block on (no async runtime to share with the service).
#[derive(Debug)]
struct OtlpHttp {
    agent: ureq::Agent,
}

impl OtlpHttp {
    fn new() -> Self {
        let timeout = std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT")
            .ok()
            .and_then(|ms| ms.trim().parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // A collector's 4xx/5xx is an answer to pass on, not a transport error.
            .http_status_as_error(false)
            .build()
            .new_agent();
        OtlpHttp { agent }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpHttp {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, body.to_vec());
        let response = self.agent.run(request)?;
        let (parts, mut body) = response.into_parts();
        // A collector's answer is small: more than 1 MiB is an error.
        let bytes = body.with_config().limit(1 << 20).read_to_vec()?;
        Ok(http::Response::from_parts(parts, bytes.into()))
    }
}

/// The trace context of the current span, where spans are being exported; a stage
/// stores it so that the next stage's span joins the same trace.
pub fn current() -> Option<TraceParent> {
    context_of(&tracing::Span::current())
}

/// The trace context of `span`, where spans are being exported.
pub fn context_of(span: &tracing::Span) -> Option<TraceParent> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| TraceParent {
        trace_id: span_context.trace_id().to_bytes(),
        span_id: span_context.span_id().to_bytes(),
        flags: span_context.trace_flags().to_u8(),
    })
}

/// Makes `span` a child of the remote span `parent` (a camera's capture, an HTTP
/// caller, the stage before). Without a parent, or without an exporter, nothing changes.
pub fn follow(span: &tracing::Span, parent: Option<TraceParent>) {
    let Some(parent) = parent else { return };
    let remote = SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    );
    // Fails only where the span is disabled or already started its trace.
    let _ = span.set_parent(Context::new().with_remote_span_context(remote));
}

/// The `traceparent` header of a request, if it holds a valid one (an invalid one
/// starts a new trace, as the recommendation says).
pub fn from_headers(headers: &http::HeaderMap) -> Option<TraceParent> {
    headers.get(TRACEPARENT)?.to_str().ok()?.parse().ok()
}

/// The `traceparent` header to send with an outgoing request made in `span`.
pub fn header_value(span: &tracing::Span) -> Option<http::HeaderValue> {
    http::HeaderValue::from_str(&context_of(span)?.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_wanted_where_a_collector_is_named_and_not_disabled() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")],
                true,
            ),
            (
                &[(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://c:4318/v1/traces",
                )],
                true,
            ),
            (&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")], false),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                    ("OTEL_SDK_DISABLED", "TRUE"),
                ],
                false,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                    ("OTEL_SDK_DISABLED", "false"),
                ],
                true,
            ),
        ];
        for (vars, wanted) in cases {
            let env = |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            assert_eq!(traces_wanted(&env), *wanted, "{vars:?}");
        }
    }

    #[test]
    fn an_unknown_log_format_is_refused() {
        let env = |name: &str| (name == "KOZOMOL_LOG_FORMAT").then(|| "xml".to_owned());
        assert!(matches!(
            install_from("kozomol", "info", env),
            Err(TelemetryError::LogFormat(f)) if f == "xml"
        ));
    }

    #[test]
    fn without_an_exporter_spans_carry_no_context_and_parents_are_ignored() {
        let span = tracing::info_span!("stage");
        let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .expect("traceparent");
        follow(&span, Some(parent));
        assert_eq!(context_of(&span), None);
    }

    #[test]
    fn a_request_header_is_read_when_it_is_valid() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(from_headers(&headers), None);
        headers.insert(TRACEPARENT, http::HeaderValue::from_static("garbage"));
        assert_eq!(from_headers(&headers), None);
        headers.insert(
            TRACEPARENT,
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        assert!(from_headers(&headers).is_some());
    }
}
