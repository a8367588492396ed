//! kozomol-telemetry: what the binaries tell operators besides `/metrics` — logs on
//! stderr (text, or JSON a line) and, where a collector is configured, traces sent over
//! OTLP/HTTP — and how a trace crosses a boundary: W3C `traceparent` in and out of HTTP
//! headers, camera envelopes and the cases the pipeline's stages claim.
//!
//! Traces follow OpenTelemetry's own environment variables, so an operator configures
//! kozomol as every other service: `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns them on; `OTEL_EXPORTER_OTLP_PROTOCOL`
//! (`http/protobuf`, the default, or `http/json`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and
//! `OTEL_BSP_*` tune them; `OTEL_SDK_DISABLED=true` turns them off.

use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kozomol_core::TraceParent;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The HTTP header (and envelope label) of a W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// Installed logs and traces; [`Telemetry::shutdown`] sends the spans still buffered.
#[must_use = "dropping it without shutdown loses the last spans"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    /// One export's time-out, as the exporter was given it.
    export_timeout: Duration,
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter, waiting at most one export's
    /// time-out.
    pub fn shutdown(self) {
        if let Some(traces) = self.traces {
            let wait = self.export_timeout + Duration::from_secs(1);
            if let Err(e) = traces.shutdown_with_timeout(wait) {
                tracing::warn!(error = %e, "sending the last spans failed");
            }
        }
    }
}

/// Whether this process exports spans: without an exporter, nothing reads the traces
/// stored with cases.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Installs the process's logger (`RUST_LOG` or `default_filter`; `KOZOMOL_LOG_FORMAT`
/// `text` or `json`: one JSON object a line with the spans an event happened in) and,
/// where the environment names a collector, the trace exporter for kozomol's own spans
/// (info level: `RUST_LOG` must keep kozomol's crates at `info` or finer; log lines,
/// which may name plates and people, are not sent), as `service` (unless the
/// environment names the service). Telemetry never
/// stops a process: a setting it cannot use is logged and left out.
pub fn install(service: &str, default_filter: &str) -> Result<Telemetry, TelemetryError> {
    install_from(service, default_filter, |name| std::env::var(name).ok())
}

fn install_from(
    service: &str,
    default_filter: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let format = env("KOZOMOL_LOG_FORMAT");
    let (json, unknown_format) = match format.as_deref().map(str::trim) {
        None | Some("" | "text") => (false, None),
        Some("json") => (true, None),
        Some(other) => (false, Some(other.to_owned())),
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
    let (traces, exporter_problem) = match traces_wanted(&env).then(|| exporter(service, &env)) {
        None => (None, None),
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(problem)) => (None, Some(problem)),
    };
    let spans = traces.as_ref().map(|provider| {
        SpansOnly(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("kozomol"))
                // Parents come from tracing's own spans, never from a thread's
                // OpenTelemetry context, which async tasks moving between threads leave
                // stale.
                .with_context_activation(false),
        )
    });
    // One filter for both: per-layer filters lost spans here (a span created on a
    // thread where both layers had just turned an event down reached neither).
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    if let Some(format) = unknown_format {
        tracing::warn!(value = %format, "KOZOMOL_LOG_FORMAT is `text` or `json`; logging text");
    }
    if let Some(problem) = exporter_problem {
        tracing::warn!(error = %problem, "traces are not exported");
    }
    EXPORTING.store(traces.is_some(), Ordering::Relaxed);
    Ok(Telemetry {
        traces,
        export_timeout: export_timeout(&env),
    })
}

fn traces_wanted(env: &impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` (ms), else 10 s.
fn export_timeout(env: &impl Fn(&str) -> Option<String>) -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| env(name)?.trim().parse().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

fn exporter(
    service: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SdkTracerProvider, String> {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpHttp::new(export_timeout(env)));
    // OTLP's default is protobuf; the library's, with JSON built in too, would be JSON.
    // A value the library cannot use (`grpc`, a typo) would leave it at its own
    // default too.
    let protocol_set = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .iter()
    .any(|name| env(name).is_some_and(|v| matches!(v.trim(), "http/protobuf" | "http/json")));
    if !protocol_set {
        builder = builder.with_protocol(Protocol::HttpBinary);
    }
    let exporter = builder.build().map_err(|e| e.to_string())?;
    let mut resource = Resource::builder();
    let named = env("OTEL_SERVICE_NAME").is_some()
        || env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="));
    if !named {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// kozomol's own spans and nothing else: no spans of the libraries underneath, and no
/// events, since a log line may name a plate or a login.
struct SpansOnly<L>(L);

fn ours(meta: Option<&Metadata<'_>>) -> bool {
    meta.is_some_and(|meta| meta.target().starts_with("kozomol"))
}

impl<S, L> Layer<S> for SpansOnly<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if !ours(Some(attrs.metadata())) {
            return;
        }
        // A library's span between this one and its nearest kozomol ancestor is not
        // exported: the span hangs from that ancestor instead (or starts a trace).
        // `None`: its parent is fine as it is.
        let hang_from: Option<Option<Id>> = {
            let parent = match attrs.parent() {
                Some(parent) => ctx.span(parent),
                None if attrs.is_contextual() => ctx.lookup_current(),
                None => None,
            };
            parent
                .filter(|parent| !ours(Some(parent.metadata())))
                .map(|parent| {
                    parent
                        .scope()
                        .find(|span| ours(Some(span.metadata())))
                        .map(|span| span.id())
                })
        };
        match hang_from {
            None => self.0.on_new_span(attrs, id, ctx),
            Some(Some(ancestor)) => self.0.on_new_span(
                &Attributes::child_of(ancestor, attrs.metadata(), attrs.values()),
                id,
                ctx,
            ),
            Some(None) => self.0.on_new_span(
                &Attributes::new_root(attrs.metadata(), attrs.values()),
                id,
                ctx,
            ),
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        if ours(ctx.metadata(id)) {
            self.0.on_record(id, values, ctx);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        if ours(ctx.metadata(id)) {
            self.0.on_follows_from(id, follows, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if ours(ctx.metadata(id)) {
            self.0.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if ours(ctx.metadata(id)) {
            self.0.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        if ours(ctx.metadata(&id)) {
            self.0.on_close(id, ctx);
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: LayerContext<'_, S>) {
        self.0.on_id_change(old, new, ctx);
    }

    // `OpenTelemetrySpanExt` finds the layer underneath by downcasting.
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            // SAFETY: passed on as asked, to the layer that answers for its own types.
            unsafe { self.0.downcast_raw(id) }
        }
    }
}

/// The exporter's HTTP client: the workspace's blocking one, which the batch processor's
/// own thread may block on (no async runtime to share with the service).
#[derive(Debug)]
struct OtlpHttp {
    agent: ureq::Agent,
}

impl OtlpHttp {
    fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // A collector's 4xx/5xx is an answer to pass on, not a transport error.
            .http_status_as_error(false)
            // A connection per export, seconds apart, rather than one the collector may
            // have closed meanwhile.
            .max_idle_connections_per_host(0)
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

/// Whether this process exports spans (an exporter was installed).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The traces `read` finds (those of the cases a stage claimed), read only where this
/// process exports spans: a failed read costs the spans their parents, never the stage
/// its work.
pub async fn parents_of<K, E: std::fmt::Display>(
    read: impl Future<Output = Result<HashMap<K, TraceParent>, E>>,
) -> HashMap<K, TraceParent> {
    if !exporting() {
        return HashMap::new();
    }
    read.await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "reading the cases' traces failed; their spans start new ones");
        HashMap::new()
    })
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
    fn the_export_time_out_is_the_traces_own_then_the_general_one() {
        let cases: &[(&[(&str, &str)], u64)] = &[
            (&[], 10_000),
            (&[("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")], 2_500),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", " 700 "),
                ],
                700,
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
                ],
                2_500,
            ),
        ];
        for (vars, ms) in cases {
            let env = |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            assert_eq!(export_timeout(&env), Duration::from_millis(*ms), "{vars:?}");
        }
    }

    #[test]
    fn without_an_exporter_no_trace_is_read() {
        // Installing nothing: this process exports no spans.
        let read_at_all = std::cell::Cell::new(false);
        let read = async {
            read_at_all.set(true);
            Ok::<_, String>(HashMap::from([(1_u8, trace())]))
        };
        let parents = std::pin::pin!(parents_of(read));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match parents.poll(&mut context) {
            std::task::Poll::Ready(parents) => assert!(parents.is_empty()),
            std::task::Poll::Pending => panic!("answered at once"),
        }
        assert!(!read_at_all.get());
        let span = tracing::info_span!("stage");
        follow(&span, Some(trace()));
        assert_eq!(context_of(&span), None);
    }

    fn trace() -> TraceParent {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .expect("traceparent")
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
