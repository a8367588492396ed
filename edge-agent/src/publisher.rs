//! Sends what the outbox says is due: new events at once, unreceipted ones again after
//! `resend_after` (doubling per re-send), everything after a reconnect. It never waits
//! for a PUBACK before the next publish; rumqttc keeps many in flight.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kozomol_core::EventId;
use rumqttc::QoS;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::agent::Inner;

const BATCH: usize = 64;
/// Upper bound on a sleep, so a missed wake-up costs at most this.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub(crate) async fn run(inner: Arc<Inner>, cancel: CancellationToken) {
    loop {
        let idle = if inner.connected.load(Ordering::Relaxed) {
            inner
                .outbox
                .next_resend_at()
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(MAX_IDLE)
                .min(MAX_IDLE)
        } else {
            MAX_IDLE
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = inner.wake_publisher.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
        if !inner.connected.load(Ordering::Relaxed) {
            continue; // the link wakes us on connect
        }
        if !send_due(&inner, &cancel).await {
            break;
        }
    }
}

/// Publishes every due envelope; `false` when the agent is stopping.
async fn send_due(inner: &Arc<Inner>, cancel: &CancellationToken) -> bool {
    let epoch = inner.epoch.load(Ordering::Relaxed);
    loop {
        let due = inner
            .outbox
            .take_due(Instant::now(), inner.config.resend_after, BATCH);
        if due.is_empty() {
            return true;
        }
        let reader = inner.clone();
        // Re-sends (and envelopes beyond the memory cache) are read back from disk.
        let loaded = tokio::task::spawn_blocking(move || {
            due.into_iter()
                .filter_map(|d| {
                    let bytes = match d.bytes {
                        Some(bytes) => Some(bytes),
                        None => match reader.outbox.read(d.id) {
                            Ok(Some(bytes)) => Some(bytes),
                            Ok(None) => {
                                // Settled or evicted while queued.
                                reader.outbox.forget(d.id);
                                None
                            }
                            Err(e) => {
                                error!(event_id = %d.id, error = %e, "cannot read an outbox entry");
                                None
                            }
                        },
                    };
                    bytes.map(|b| (d.id, d.resend, b))
                })
                .collect::<Vec<_>>()
        })
        .await;
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                error!(error = %e, "outbox read task failed");
                return true;
            }
        };
        let mut loaded = loaded.into_iter();
        while let Some((id, resend, bytes)) = loaded.next() {
            if inner.epoch.load(Ordering::Relaxed) != epoch
                || !inner.connected.load(Ordering::Relaxed)
            {
                // The connection changed and the link queued everything again — maybe
                // before these were taken: they go back, not waiting out a resend.
                let unsent: Vec<EventId> = std::iter::once(id)
                    .chain(loaded.map(|(id, _, _)| id))
                    .collect();
                inner.outbox.put_back(&unsent);
                return true;
            }
            let publish =
                inner
                    .client
                    .publish(&inner.violations_topic, QoS::AtLeastOnce, false, bytes);
            let sent = tokio::select! {
                _ = cancel.cancelled() => return false,
                sent = publish => sent,
            };
            if sent.is_err() {
                return false; // the event loop is gone
            }
            let counter = if resend {
                &inner.counters.resent
            } else {
                &inner.counters.published
            };
            counter.fetch_add(1, Ordering::Relaxed);
            debug!(event_id = %id, resend, "event published");
        }
    }
}
