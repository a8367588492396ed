//! The camera's retained status: online with outbox depth, clock offset and config
//! version, every `status_interval` and when something changes (at most once a second).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kozomol_core::messages::CameraLinkState;
use rumqttc::QoS;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::agent::Inner;

const MIN_GAP: Duration = Duration::from_secs(1);

pub(crate) async fn run(inner: Arc<Inner>, cancel: CancellationToken) {
    let interval = inner.config.status_interval.max(MIN_GAP);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = inner.status_changed.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
        if !inner.connected.load(Ordering::Relaxed) || inner.shutting_down.load(Ordering::Relaxed) {
            continue;
        }
        let status = serde_json::to_vec(&inner.status(CameraLinkState::Online))
            .expect("a camera status always serializes");
        let publish = inner
            .client
            .publish(&inner.status_topic, QoS::AtLeastOnce, true, status);
        tokio::select! {
            _ = cancel.cancelled() => break,
            sent = publish => if sent.is_err() { break },
        }
        debug!(camera = %inner.config.camera_id, "status published");
        // Under load the outbox changes with every event; one status a second is plenty.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(MIN_GAP) => {}
        }
    }
}
