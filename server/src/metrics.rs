//! Prometheus text exposition (format 0.0.4) of what the process counts: ingest's
//! counters, each pipeline stage's passes and their durations, the queues (cases
//! waiting per state and the age of the oldest), the cameras it knows, and HTTP
//! responses by status class.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use kozomol_core::stage_metrics::{StageMetrics, PASS_SECONDS_BUCKETS};
use kozomol_core::DeadLetterReason;
use kozomol_ingest::IngestMetrics;
use kozomol_store::Backlog;

/// HTTP responses by status class (1xx to 5xx).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    by_class: [AtomicU64; 5],
}

impl HttpMetrics {
    pub fn count(&self, status: StatusCode) {
        let class = (status.as_u16() / 100) as usize;
        if let Some(counter) = class.checked_sub(1).and_then(|i| self.by_class.get(i)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Responses of class `class` (1 to 5).
    pub fn responses(&self, class: usize) -> u64 {
        class
            .checked_sub(1)
            .and_then(|i| self.by_class.get(i))
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

/// Cameras in the device register, and how many are online (`CameraRecord::online_at`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CameraCounts {
    pub registered: u64,
    pub online: u64,
}

/// Everything one `/metrics` page shows.
pub struct MetricsPage<'a> {
    pub ingest: &'a IngestMetrics,
    pub stages: &'a StageMetrics,
    /// The shared queues, read from the store at scrape time.
    pub backlog: &'a [Backlog],
    pub now: DateTime<Utc>,
    pub cameras: CameraCounts,
    /// Resolutions waiting for a person: no delivery of them is under way or proven.
    pub undeliverable: u64,
    /// `None` in a process that serves no API.
    pub http: Option<&'a HttpMetrics>,
}

/// The whole `/metrics` page.
pub fn render(page: &MetricsPage<'_>) -> String {
    let MetricsPage {
        ingest,
        cameras,
        http,
        ..
    } = *page;
    let mut out = String::with_capacity(8192);
    let counters: [(&str, &str, &AtomicU64); 7] = [
        (
            "kozomol_ingest_messages_total",
            "Violation messages taken from the broker.",
            &ingest.messages,
        ),
        (
            "kozomol_ingest_accepted_total",
            "New cases committed.",
            &ingest.accepted,
        ),
        (
            "kozomol_ingest_duplicates_total",
            "Events received again after their case was committed.",
            &ingest.duplicates,
        ),
        (
            "kozomol_ingest_batches_total",
            "Ingest batches committed.",
            &ingest.batches,
        ),
        (
            "kozomol_ingest_evidence_bytes_total",
            "Frame bytes written to evidence segments.",
            &ingest.evidence_bytes,
        ),
        (
            "kozomol_ingest_receipts_total",
            "Receipts published to cameras.",
            &ingest.receipts,
        ),
        (
            "kozomol_ingest_status_updates_total",
            "Camera status messages recorded.",
            &ingest.status_updates,
        ),
    ];
    for (name, help, counter) in counters {
        header(&mut out, name, help, "counter");
        let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
    }
    let name = "kozomol_ingest_dead_letters_total";
    header(&mut out, name, "Refused messages, by reason.", "counter");
    // A `flood` letter stands for messages counted under their own reasons.
    for reason in DeadLetterReason::ALL
        .into_iter()
        .filter(|r| *r != DeadLetterReason::Flood)
    {
        let _ = writeln!(
            out,
            "{name}{{reason=\"{reason}\"}} {}",
            ingest.dead_letter_count(reason)
        );
    }

    header(
        &mut out,
        "kozomol_cameras_registered",
        "Cameras in the device register.",
        "gauge",
    );
    let _ = writeln!(out, "kozomol_cameras_registered {}", cameras.registered);
    header(
        &mut out,
        "kozomol_cameras_online",
        "Registered cameras whose last status said online, heard from in the last 3 minutes.",
        "gauge",
    );
    let _ = writeln!(out, "kozomol_cameras_online {}", cameras.online);

    render_broker(&mut out, ingest);
    render_stages(&mut out, page.stages);
    render_backlog(&mut out, page.backlog, page.now);
    let name = "kozomol_resolutions_undeliverable";
    header(
        &mut out,
        name,
        "Issued resolutions not proven delivered with no delivery queued, being sent or sent (every one failed for good, or there was none): each waits for a person.",
        "gauge",
    );
    let _ = writeln!(out, "{name} {}", page.undeliverable);

    if let Some(http) = http {
        let name = "kozomol_http_responses_total";
        header(
            &mut out,
            name,
            "HTTP responses, by status class.",
            "counter",
        );
        for class in 1..=5 {
            let _ = writeln!(
                out,
                "{name}{{class=\"{class}xx\"}} {}",
                http.responses(class)
            );
        }
    }
    out
}

/// Where ingest runs: whether it holds its broker connection now.
fn render_broker(out: &mut String, ingest: &IngestMetrics) {
    if let Some(connected) = ingest.broker_connected() {
        let name = "kozomol_ingest_broker_connected";
        header(
            out,
            name,
            "1 while this process's ingest holds its broker connection.",
            "gauge",
        );
        let _ = writeln!(out, "{name} {}", u8::from(connected));
    }
}

fn render_stages(out: &mut String, stages: &StageMetrics) {
    let stages = stages.snapshot();
    let name = "kozomol_stage_items_total";
    header(
        out,
        name,
        "Items (cases, resolutions, deliveries) stages handled, by stage.",
        "counter",
    );
    for (stage, c) in &stages {
        let _ = writeln!(out, "{name}{{stage=\"{stage}\"}} {}", c.items);
    }
    let name = "kozomol_stage_failures_total";
    header(out, name, "Stage passes that failed, by stage.", "counter");
    for (stage, c) in &stages {
        let _ = writeln!(out, "{name}{{stage=\"{stage}\"}} {}", c.failures);
    }
    let name = "kozomol_stage_pass_seconds";
    header(
        out,
        name,
        "How long stage passes that found work took (the recognizer's is one case).",
        "histogram",
    );
    for (stage, c) in &stages {
        let mut cumulative = 0;
        for (bound, n) in PASS_SECONDS_BUCKETS.iter().zip(&c.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{stage=\"{stage}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}",
            c.passes
        );
        let _ = writeln!(out, "{name}_sum{{stage=\"{stage}\"}} {}", c.seconds);
        let _ = writeln!(out, "{name}_count{{stage=\"{stage}\"}} {}", c.passes);
    }
}

fn render_backlog(out: &mut String, backlog: &[Backlog], now: DateTime<Utc>) {
    let name = "kozomol_cases_waiting";
    header(
        out,
        name,
        "Cases waiting for the pipeline or an officer, by state.",
        "gauge",
    );
    for b in backlog {
        let _ = writeln!(out, "{name}{{state=\"{}\"}} {}", b.state.as_str(), b.cases);
    }
    let name = "kozomol_cases_oldest_waiting_seconds";
    header(
        out,
        name,
        "Seconds since the longest-waiting case of each state was received (0: none waits).",
        "gauge",
    );
    for b in backlog {
        let age = b
            .oldest_received_at
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        let _ = writeln!(out, "{name}{{state=\"{}\"}} {age}", b.state.as_str());
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_and_reason() {
        let ingest = IngestMetrics::default();
        ingest.accepted.fetch_add(7, Ordering::Relaxed);
        ingest.count_dead_letter(DeadLetterReason::BadSignature);
        ingest.count_dead_letter(DeadLetterReason::BadSignature);
        let http = HttpMetrics::default();
        http.count(StatusCode::OK);
        http.count(StatusCode::NOT_FOUND);
        http.count(StatusCode::FORBIDDEN);
        let stages = StageMetrics::default();
        stages.record_pass("recognition", 1, std::time::Duration::from_millis(180));
        stages.record_pass("recognition", 1, std::time::Duration::from_millis(40));
        stages.record_failure("issuing");
        let now = Utc::now();
        let backlog = [
            Backlog {
                state: kozomol_core::CaseState::Received,
                cases: 4,
                oldest_received_at: Some(now - chrono::Duration::milliseconds(2500)),
            },
            Backlog {
                state: kozomol_core::CaseState::NeedsReview,
                cases: 0,
                oldest_received_at: None,
            },
        ];
        let text = render(&MetricsPage {
            ingest: &ingest,
            stages: &stages,
            backlog: &backlog,
            now,
            undeliverable: 5,
            cameras: CameraCounts {
                registered: 3,
                online: 2,
            },
            http: Some(&http),
        });
        for line in [
            "kozomol_ingest_accepted_total 7",
            "kozomol_ingest_messages_total 0",
            "kozomol_ingest_dead_letters_total{reason=\"bad_signature\"} 2",
            "kozomol_ingest_dead_letters_total{reason=\"oversize\"} 0",
            "kozomol_cameras_registered 3",
            "kozomol_cameras_online 2",
            "kozomol_http_responses_total{class=\"2xx\"} 1",
            "kozomol_http_responses_total{class=\"4xx\"} 2",
            "kozomol_stage_items_total{stage=\"recognition\"} 2",
            "kozomol_stage_failures_total{stage=\"issuing\"} 1",
            "kozomol_stage_pass_seconds_bucket{stage=\"recognition\",le=\"0.05\"} 1",
            "kozomol_stage_pass_seconds_bucket{stage=\"recognition\",le=\"0.25\"} 2",
            "kozomol_stage_pass_seconds_bucket{stage=\"recognition\",le=\"+Inf\"} 2",
            "kozomol_stage_pass_seconds_count{stage=\"recognition\"} 2",
            "kozomol_cases_waiting{state=\"received\"} 4",
            "kozomol_cases_waiting{state=\"needs_review\"} 0",
            "kozomol_cases_oldest_waiting_seconds{state=\"received\"} 2.5",
            "kozomol_cases_oldest_waiting_seconds{state=\"needs_review\"} 0",
            "kozomol_resolutions_undeliverable 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        let reasons = text
            .lines()
            .filter(|l| l.starts_with("kozomol_ingest_dead_letters_total{"))
            .count();
        // Every reason a message is refused for; `flood` stands for some of them.
        assert_eq!(reasons, DeadLetterReason::ALL.len() - 1);
        assert!(!text.contains("reason=\"flood\""));
    }

    #[test]
    fn the_broker_gauge_shows_where_ingest_runs() {
        let ingest = IngestMetrics::default();
        let stages = StageMetrics::default();
        let page = |ingest: &IngestMetrics| {
            render(&MetricsPage {
                ingest,
                stages: &stages,
                backlog: &[],
                now: Utc::now(),
                undeliverable: 0,
                cameras: CameraCounts {
                    registered: 0,
                    online: 0,
                },
                http: None,
            })
        };
        let gauge = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("kozomol_ingest_broker_connected "))
                .map(str::to_owned)
        };
        assert_eq!(gauge(&page(&ingest)), None, "no ingest here");
        ingest.set_broker_connected(false);
        assert_eq!(
            gauge(&page(&ingest)).as_deref(),
            Some("kozomol_ingest_broker_connected 0")
        );
        ingest.set_broker_connected(true);
        assert_eq!(
            gauge(&page(&ingest)).as_deref(),
            Some("kozomol_ingest_broker_connected 1")
        );
    }

    /// Every metric the Grafana dashboard in deploy/ queries is one this page exports.
    #[test]
    fn the_dashboard_asks_only_for_metrics_that_exist() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/kozomol.json");
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard"))
                .expect("dashboard JSON");
        let page = render(&MetricsPage {
            ingest: &IngestMetrics::default(),
            stages: &StageMetrics::default(),
            backlog: &[],
            now: Utc::now(),
            undeliverable: 0,
            cameras: CameraCounts::default(),
            http: Some(&HttpMetrics::default()),
        });
        let exported: Vec<(&str, &str)> = page
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        let panels = dashboard["panels"].as_array().expect("panels");
        assert!(panels.len() >= 8);
        let mut asked = 0;
        for panel in panels {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if !word.starts_with("kozomol_") {
                        continue;
                    }
                    asked += 1;
                    let known = exported.iter().any(|(name, kind)| {
                        *name == word
                            || (*kind == "histogram"
                                && ["_bucket", "_sum", "_count"]
                                    .iter()
                                    .any(|suffix| word.strip_suffix(suffix) == Some(*name)))
                    });
                    assert!(
                        known,
                        "{} asks for {word}, which /metrics lacks",
                        panel["title"]
                    );
                }
            }
        }
        assert!(asked >= 12);
    }
}
