//! A stand-in OpenTelemetry collector: OTLP/HTTP with JSON bodies (`POST /v1/traces`,
//! answered `{}` as the protocol's success), keeping every span it is sent, so that a
//! test can follow one violation's trace across kozomol's processes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

/// One span as a collector received it.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a trace's root.
    pub parent_span_id: String,
    /// String, integer and boolean attributes, as text.
    pub attributes: HashMap<String, String>,
    /// How many events (log lines) the span carried.
    pub events: usize,
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

/// A running collector; stopped on drop.
pub struct TraceCollector {
    pub addr: SocketAddr,
    spans: Received,
    _runtime: tokio::runtime::Runtime,
}

impl TraceCollector {
    pub fn start() -> Result<TraceCollector> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let spans = Received::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("binding the collector")?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move { axum::serve(listener, app).await });
        Ok(TraceCollector {
            addr,
            spans,
            _runtime: runtime,
        })
    }

    /// What a process exporting here is given: OpenTelemetry's own variables, with
    /// batches sent every 200 ms rather than every 5 s.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", self.addr),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ]
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn receive(
    State(spans): State<Received>,
    Json(request): Json<Value>,
) -> (StatusCode, Json<Value>) {
    match read_spans(&request) {
        Some(read) => {
            spans
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(read);
            (StatusCode::OK, Json(serde_json::json!({})))
        }
        None => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"code": 3, "message": "not an ExportTraceServiceRequest"})),
        ),
    }
}

/// The spans of an `ExportTraceServiceRequest` in its JSON mapping.
fn read_spans(request: &Value) -> Option<Vec<ReceivedSpan>> {
    let mut out = Vec::new();
    for resource_spans in request["resourceSpans"].as_array()? {
        let resource = attributes(&resource_spans["resource"]["attributes"]);
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans["scopeSpans"].as_array()? {
            for span in scope_spans["spans"].as_array()? {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    name: span["name"].as_str()?.to_owned(),
                    trace_id: span["traceId"].as_str()?.to_owned(),
                    span_id: span["spanId"].as_str()?.to_owned(),
                    parent_span_id: span["parentSpanId"].as_str().unwrap_or("").to_owned(),
                    attributes: attributes(&span["attributes"]),
                    events: span["events"].as_array().map_or(0, Vec::len),
                });
            }
        }
    }
    Some(out)
}

fn attributes(list: &Value) -> HashMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let value = &kv["value"];
            let text = value["stringValue"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| value["intValue"].as_str().map(str::to_owned))
                .or_else(|| value["intValue"].as_i64().map(|v| v.to_string()))
                .or_else(|| value["boolValue"].as_bool().map(|v| v.to_string()))?;
            Some((kv["key"].as_str()?.to_owned(), text))
        })
        .collect()
}
