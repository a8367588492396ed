//! The MQTT link: connecting with backoff, re-subscribing and re-sending on every
//! connect, and handling what the server sends (receipts, config).

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use kozomol_core::messages::{CameraLinkState, Receipt, ReceiptStatus};
use kozomol_core::EventId;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, Request,
    Subscribe, SubscribeFilter,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::agent::{AgentConfig, FileOp, Inner};
use crate::speed_limits::{self, AppliedConfig};

/// Envelopes are at most 2 MiB; leave room both ways.
const MAX_PACKET_BYTES: usize = 4 * 1024 * 1024;
/// Publishes in flight without their PUBACK; the broker acks in order.
const INFLIGHT: u16 = 200;
const REQUEST_CAPACITY: usize = 256;
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Makes the MQTT client: a stable client id and a kept session per camera, so the
/// broker holds receipts while the camera is briefly away; a retained last will says
/// `offline`.
pub(crate) fn client(
    config: &AgentConfig,
    host: String,
    port: u16,
    status_topic: &str,
) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(format!("kozomol-cam-{}", config.camera_id), host, port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(15))
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
        .set_inflight(INFLIGHT)
        .set_last_will(LastWill::new(
            status_topic,
            r#"{"state":"offline"}"#,
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(login) = &config.broker_login {
        options.set_credentials(&login.username, &login.password);
    }
    AsyncClient::new(options, REQUEST_CAPACITY)
}

pub(crate) struct Link {
    pub inner: Arc<Inner>,
    pub eventloop: EventLoop,
    pub cancel: CancellationToken,
    pub config_tx: mpsc::Sender<Vec<u8>>,
}

impl Link {
    pub async fn run(mut self) {
        let camera = self.inner.config.camera_id.clone();
        let mut backoff = BACKOFF_MIN;
        loop {
            let event = tokio::select! {
                _ = self.cancel.cancelled() => break,
                event = self.eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = BACKOFF_MIN;
                    info!(%camera, session_present = ack.session_present, "connected to the broker");
                    self.on_connect();
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.on_publish(publish).await,
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    if self.inner.shutting_down.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let was_connected = self.inner.connected.swap(false, Ordering::Relaxed);
                    if self.inner.shutting_down.load(Ordering::Relaxed) {
                        break;
                    }
                    if was_connected {
                        warn!(%camera, error = %e, "lost the broker connection; reconnecting");
                    } else {
                        debug!(%camera, error = %e, retry_in_ms = backoff.as_millis() as u64, "broker not reachable");
                    }
                    self.inner.status_changed.notify_one();
                    tokio::select! {
                        _ = self.cancel.cancelled() => break,
                        _ = tokio::time::sleep(jitter(backoff)) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        self.inner.connected.store(false, Ordering::Relaxed);
    }

    /// On every connect: subscribe, say online, and re-send the whole outbox (what was
    /// in flight may be lost, and the session may be new).
    fn on_connect(&mut self) {
        let inner = &self.inner;
        // The outbox re-sends every unreceipted event itself; rumqttc's own
        // retransmissions of the last session would only double them.
        self.eventloop
            .pending
            .retain(|r| !matches!(r, Request::Publish(_)));
        let subscribe = Subscribe::new_many([
            SubscribeFilter::new(inner.receipts_topic.clone(), QoS::AtLeastOnce),
            SubscribeFilter::new(inner.config_topic.clone(), QoS::AtLeastOnce),
        ]);
        let online = serde_json::to_vec(&inner.status(CameraLinkState::Online))
            .expect("a camera status always serializes");
        let mut status = Publish::new(&inner.status_topic, QoS::AtLeastOnce, online);
        status.retain = true;
        // Straight into the event loop's queue: the request channel may be full of
        // publishes, and this task is the one that drains it.
        self.eventloop.pending.push_front(Request::Publish(status));
        self.eventloop
            .pending
            .push_front(Request::Subscribe(subscribe));
        inner.outbox.reset_for_resend();
        inner.epoch.fetch_add(1, Ordering::Relaxed);
        inner.connected.store(true, Ordering::Relaxed);
        inner.wake_publisher.notify_one();
    }

    async fn on_publish(&mut self, publish: Publish) {
        let inner = &self.inner;
        if publish.topic == inner.receipts_topic {
            handle_receipt(inner, &publish.payload);
        } else if publish.topic == inner.config_topic {
            if publish.payload.is_empty() {
                return; // a cleared retained config
            }
            // Bounded queue; configs are rare, so waiting here is brief.
            let _ = self.config_tx.send(publish.payload.to_vec()).await;
        } else {
            debug!(topic = %publish.topic, "ignoring a message on an unexpected topic");
        }
    }
}

/// Settles the outbox entry a receipt names: `accepted`/`duplicate` delete it,
/// `rejected` moves it aside with the receipt.
fn handle_receipt(inner: &Inner, payload: &[u8]) {
    let camera = &inner.config.camera_id;
    let receipt: Receipt = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            warn!(%camera, error = %e, "ignoring a receipt that is not valid JSON");
            return;
        }
    };
    let Some(id) = receipt
        .event_id
        .as_deref()
        .and_then(|s| s.parse::<EventId>().ok())
    else {
        warn!(%camera, status = ?receipt.status, detail = ?receipt.detail, "receipt without a usable event id");
        return;
    };
    let Some(settled) = inner.outbox.settle(id) else {
        debug!(%camera, event_id = %id, "receipt for an event no longer in the outbox");
        return;
    };
    let counters = &inner.counters;
    match receipt.status {
        ReceiptStatus::Accepted => {
            counters.accepted.fetch_add(1, Ordering::Relaxed);
            debug!(%camera, event_id = %id, case_id = ?receipt.case_id, "event accepted");
            let _ = inner.file_ops.send(FileOp::Delete(id));
        }
        ReceiptStatus::Duplicate => {
            counters.duplicates.fetch_add(1, Ordering::Relaxed);
            debug!(%camera, event_id = %id, sends = settled.sends, "event was already recorded");
            let _ = inner.file_ops.send(FileOp::Delete(id));
        }
        ReceiptStatus::Rejected => {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            warn!(
                %camera,
                event_id = %id,
                reason = ?receipt.reason,
                detail = ?receipt.detail,
                "event rejected by ingest; kept in rejected/"
            );
            let _ = inner.file_ops.send(FileOp::Reject(id, payload.to_vec()));
        }
    }
    inner.depth_changed();
}

/// Applies verified configs with a higher version, persisting them first.
pub(crate) async fn apply_configs(
    inner: Arc<Inner>,
    mut configs: mpsc::Receiver<Vec<u8>>,
    cancel: CancellationToken,
) {
    let camera = inner.config.camera_id.clone();
    loop {
        let signed = tokio::select! {
            _ = cancel.cancelled() => break,
            signed = configs.recv() => match signed { Some(s) => s, None => break },
        };
        let key = inner.config.server_public_key;
        let for_camera = camera.clone();
        let verified = tokio::task::spawn_blocking(move || {
            AppliedConfig::verify(&signed, key.as_ref(), &for_camera)
        })
        .await;
        let config = match verified {
            Ok(Ok(config)) => config,
            Ok(Err(refusal)) => {
                warn!(%camera, %refusal, "ignoring a camera config");
                continue;
            }
            Err(e) => {
                error!(%camera, error = %e, "config verification task failed");
                continue;
            }
        };
        let current = inner.config_version();
        if current.is_some_and(|v| config.version <= v) {
            debug!(%camera, version = config.version, ?current, "config not newer than the one applied");
            continue;
        }
        let data_dir = inner.config.data_dir.clone();
        let to_store = config.clone();
        match tokio::task::spawn_blocking(move || speed_limits::persist(&data_dir, &to_store)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                error!(%camera, error = %e, "could not persist the camera config; not applied");
                continue;
            }
            Err(e) => {
                error!(%camera, error = %e, "config persistence task failed");
                continue;
            }
        }
        let version = config.version;
        *inner.applied.lock().unwrap_or_else(PoisonError::into_inner) = Some(config);
        info!(%camera, version, ?current, "camera config applied");
        inner.status_changed.notify_one();
    }
}

/// Deletes and moves outbox files after receipts and evictions, off the event loop;
/// on cancel it finishes what is queued.
pub(crate) async fn run_file_ops(
    inner: Arc<Inner>,
    mut ops: mpsc::UnboundedReceiver<FileOp>,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(256);
    loop {
        let stopping = tokio::select! {
            _ = cancel.cancelled() => true,
            n = ops.recv_many(&mut batch, 256) => n == 0,
        };
        if stopping {
            while let Ok(op) = ops.try_recv() {
                batch.push(op);
            }
        }
        if !batch.is_empty() {
            let work = std::mem::take(&mut batch);
            let worker = inner.clone();
            let done = tokio::task::spawn_blocking(move || {
                for op in work {
                    let (id, result) = match &op {
                        FileOp::Delete(id) => (*id, worker.outbox.delete(*id)),
                        FileOp::Reject(id, receipt) => (*id, worker.outbox.reject(*id, receipt)),
                    };
                    if let Err(e) = result {
                        error!(camera = %worker.config.camera_id, event_id = %id, error = %e, "outbox file operation failed");
                    }
                }
            })
            .await;
            if let Err(e) = done {
                error!(error = %e, "outbox file task failed");
            }
        }
        if stopping {
            break;
        }
    }
}

/// Spreads reconnects of many cameras over time (±25 %).
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(factor)
}
