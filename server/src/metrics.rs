//! Prometheus text exposition (format 0.0.4) of what the process counts: ingest's
//! counters, the cameras it knows, and HTTP responses by status class.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use kozomol_core::DeadLetterReason;
use kozomol_ingest::IngestMetrics;

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

/// Cameras in the device register, and how many say they are online.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CameraCounts {
    pub registered: u64,
    pub online: u64,
}

/// The whole `/metrics` page.
pub fn render(ingest: &IngestMetrics, http: &HttpMetrics, cameras: CameraCounts) -> String {
    let mut out = String::with_capacity(4096);
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
    for reason in DeadLetterReason::ALL {
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
        "Registered cameras whose last status said online.",
        "gauge",
    );
    let _ = writeln!(out, "kozomol_cameras_online {}", cameras.online);

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
    out
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
        let text = render(
            &ingest,
            &http,
            CameraCounts {
                registered: 3,
                online: 2,
            },
        );
        for line in [
            "kozomol_ingest_accepted_total 7",
            "kozomol_ingest_messages_total 0",
            "kozomol_ingest_dead_letters_total{reason=\"bad_signature\"} 2",
            "kozomol_ingest_dead_letters_total{reason=\"oversize\"} 0",
            "kozomol_cameras_registered 3",
            "kozomol_cameras_online 2",
            "kozomol_http_responses_total{class=\"2xx\"} 1",
            "kozomol_http_responses_total{class=\"4xx\"} 2",
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
        assert_eq!(reasons, DeadLetterReason::ALL.len());
    }
}
