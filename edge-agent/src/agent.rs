//! The running agent: its configuration, the state its tasks share, `submit` (build,
//! sign, write durably, queue) and graceful shutdown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use kozomol_core::envelope::{encode_signed, FrameRef};
use kozomol_core::messages::{CameraLinkState, CameraStatus};
use kozomol_core::topics::{topic, BrokerLogin, TopicKind};
use kozomol_core::{
    CameraId, ClockSource, EventId, FrameRole, Measurement, MeasuringDevice, PlateRead, Site,
    TraceParent, ViolationEvent, ViolationKind,
};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::link::{self, Link};
use crate::outbox::Outbox;
use crate::speed_limits::{self, local_time, AppliedConfig};
use crate::{publisher, status, EdgeError};

/// How one agent runs: its identity, where it talks to, where it keeps its state.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub camera_id: CameraId,
    pub signing_key: SigningKey,
    /// The MQTT broker, `host:port`.
    pub broker: String,
    /// `None`: the broker takes anonymous clients.
    pub broker_login: Option<BrokerLogin>,
    /// Holds `outbox/`, `rejected/` and `state/` (the applied config).
    pub data_dir: PathBuf,
    /// The server's key; camera config is ignored without it.
    pub server_public_key: Option<VerifyingKey>,
    pub site: Site,
    pub device: MeasuringDevice,
    /// Unreceipted events are re-sent after this.
    pub resend_after: Duration,
    /// Beyond this the oldest outbox entries are dropped (with a warning and a counter);
    /// `rejected/` keeps as much at most, its oldest files deleted first.
    pub max_outbox_bytes: u64,
    pub status_interval: Duration,
    /// Offset of local time from UTC, for the config's time windows (Bishkek: +360).
    pub utc_offset_minutes: i32,
}

impl AgentConfig {
    /// A config with the defaults: re-send after 30 s, a 1 GiB outbox, status every
    /// 30 s, Bishkek time (UTC+6), no server key.
    pub fn new(
        camera_id: CameraId,
        signing_key: SigningKey,
        broker: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        site: Site,
        device: MeasuringDevice,
    ) -> Self {
        AgentConfig {
            camera_id,
            signing_key,
            broker: broker.into(),
            broker_login: None,
            data_dir: data_dir.into(),
            server_public_key: None,
            site,
            device,
            resend_after: Duration::from_secs(30),
            max_outbox_bytes: 1024 * 1024 * 1024,
            status_interval: Duration::from_secs(30),
            utc_offset_minutes: 360,
        }
    }
}

/// What camera firmware hands over for one violation.
#[derive(Clone, Debug)]
pub struct Capture {
    pub captured_at: DateTime<Utc>,
    pub clock_source: ClockSource,
    pub clock_offset_ms: Option<i64>,
    pub kind: ViolationKind,
    /// For speeding without `limit_kmh`, the limit comes from the applied config.
    pub measurement: Measurement,
    /// The lane, when it differs from the site's.
    pub lane: Option<u8>,
    pub plate_read: Option<PlateRead>,
    /// JPEG bytes with their role; at least one overview.
    pub frames: Vec<(FrameRole, Vec<u8>)>,
}

/// A snapshot of the agent's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Events in the outbox awaiting their receipt.
    pub outbox_depth: u64,
    pub outbox_bytes: u64,
    /// First publishes.
    pub published: u64,
    /// Re-sends (overdue receipt, reconnect, restart).
    pub resent: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub dropped_for_space: u64,
    /// Speeding captures not above the limit in force, discarded.
    pub discarded_below_limit: u64,
    pub config_version: Option<u64>,
    /// Whether the agent is connected to the broker now.
    pub connected: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub resent: AtomicU64,
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped_for_space: AtomicU64,
    pub discarded_below_limit: AtomicU64,
}

/// Disk work on outbox files that follows a receipt or an eviction.
#[derive(Debug)]
pub(crate) enum FileOp {
    Delete(EventId),
    Reject(EventId, Vec<u8>),
}

/// What the agent's tasks share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub config: AgentConfig,
    pub violations_topic: String,
    pub receipts_topic: String,
    pub status_topic: String,
    pub config_topic: String,
    pub client: AsyncClient,
    pub outbox: Outbox,
    pub counters: Counters,
    pub applied: Mutex<Option<AppliedConfig>>,
    pub connected: AtomicBool,
    /// Bumped on every connect; a publisher batch from an older connection stops.
    pub epoch: AtomicU64,
    /// Milliseconds; `i64::MIN` while unknown.
    pub clock_offset_ms: AtomicI64,
    pub wake_publisher: Notify,
    pub status_changed: Notify,
    pub depth: watch::Sender<u64>,
    pub file_ops: mpsc::UnboundedSender<FileOp>,
    pub shutting_down: AtomicBool,
}

impl Inner {
    pub fn config_version(&self) -> Option<u64> {
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|c| c.version)
    }

    /// Publishes the outbox depth to waiters and marks the status as changed.
    pub fn depth_changed(&self) {
        let (depth, _) = self.outbox.depth();
        self.depth.send_replace(depth);
        self.status_changed.notify_one();
    }

    pub fn status(&self, state: CameraLinkState) -> CameraStatus {
        let offset = self.clock_offset_ms.load(Ordering::Relaxed);
        CameraStatus {
            state,
            at_ms: Some(Utc::now().timestamp_millis()),
            outbox_depth: Some(self.outbox.depth().0),
            clock_offset_ms: (offset != i64::MIN).then_some(offset),
            config_version: self.config_version(),
        }
    }

    /// Drops outbox entries to make room; counted and logged once per eviction.
    pub fn evict(&self, evicted: Vec<kozomol_core::EventId>) {
        self.note_evicted(&evicted);
        for id in evicted {
            let _ = self.file_ops.send(FileOp::Delete(id));
        }
    }

    /// Counts and logs entries evicted for space.
    fn note_evicted(&self, evicted: &[kozomol_core::EventId]) {
        if evicted.is_empty() {
            return;
        }
        self.counters
            .dropped_for_space
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        warn!(
            camera = %self.config.camera_id,
            dropped = evicted.len(),
            oldest = %evicted[0],
            limit_bytes = self.config.max_outbox_bytes,
            "outbox full: dropped the oldest unreceipted events"
        );
    }
}

/// A running edge agent for one camera.
#[derive(Debug)]
pub struct Agent {
    inner: Arc<Inner>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    link: Option<JoinHandle<()>>,
}

impl Agent {
    /// Loads the outbox and the applied config from disk, then starts connecting (with
    /// backoff: the broker may be down) and re-sends what the outbox holds.
    pub async fn start(config: AgentConfig, cancel: CancellationToken) -> Result<Agent, EdgeError> {
        let (host, port) = parse_broker(&config.broker)?;
        let data_dir = config.data_dir.clone();
        let server_key = config.server_public_key;
        let camera = config.camera_id.clone();
        let rejected_limit = config.max_outbox_bytes;
        let (outbox, applied) = tokio::task::spawn_blocking(move || {
            let outbox = Outbox::open(&data_dir, rejected_limit)?;
            let applied = speed_limits::load(&data_dir, server_key.as_ref(), &camera)
                .map_err(EdgeError::io("reading the applied config"))?;
            Ok::<_, EdgeError>((outbox, applied))
        })
        .await??;
        let applied = match applied {
            Some(Ok(applied)) => Some(applied),
            Some(Err(refusal)) => {
                warn!(camera = %config.camera_id, %refusal, "ignoring the stored camera config");
                None
            }
            None => None,
        };
        let camera = &config.camera_id;
        let status_topic = topic(camera, TopicKind::Status);
        let (client, eventloop) = link::client(&config, host, port, &status_topic);
        let (file_ops, file_ops_rx) = mpsc::unbounded_channel();
        let (depth, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            violations_topic: topic(camera, TopicKind::Violations),
            receipts_topic: topic(camera, TopicKind::Receipts),
            config_topic: topic(camera, TopicKind::Config),
            status_topic,
            client,
            outbox,
            counters: Counters::default(),
            applied: Mutex::new(applied),
            connected: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            clock_offset_ms: AtomicI64::new(i64::MIN),
            wake_publisher: Notify::new(),
            status_changed: Notify::new(),
            depth,
            file_ops,
            shutting_down: AtomicBool::new(false),
            config,
        });
        inner.depth_changed();
        let (depth, bytes) = inner.outbox.depth();
        info!(
            camera = %inner.config.camera_id,
            broker = %inner.config.broker,
            outbox_depth = depth,
            outbox_bytes = bytes,
            config_version = ?inner.config_version(),
            "edge agent starting"
        );
        let cancel = cancel.child_token();
        let (config_tx, config_rx) = mpsc::channel(8);
        let link = Link {
            inner: inner.clone(),
            eventloop,
            cancel: cancel.clone(),
            config_tx,
        };
        let tasks = vec![
            tokio::spawn(publisher::run(inner.clone(), cancel.clone())),
            tokio::spawn(status::run(inner.clone(), cancel.clone())),
            tokio::spawn(link::apply_configs(
                inner.clone(),
                config_rx,
                cancel.clone(),
            )),
            tokio::spawn(link::run_file_ops(
                inner.clone(),
                file_ops_rx,
                cancel.clone(),
            )),
        ];
        Ok(Agent {
            link: Some(tokio::spawn(link.run())),
            inner,
            cancel,
            tasks,
        })
    }

    /// Builds and signs the envelope for `capture` under a fresh UUIDv7, writes it to
    /// the outbox durably and queues its publish. When this returns `Ok`, the event
    /// survives a crash.
    pub async fn submit(&self, capture: Capture) -> Result<EventId, EdgeError> {
        self.submit_as(EventId::new_v7(), capture).await
    }

    /// Like [`Agent::submit`] under an id chosen before (the spool claims a capture's
    /// id before submitting it, so a capture submitted twice across a crash is one
    /// event). An id already in the outbox is left as it is.
    pub async fn submit_as(
        &self,
        event_id: EventId,
        capture: Capture,
    ) -> Result<EventId, EdgeError> {
        // The capture starts the event's trace; its context travels in the envelope.
        let span = tracing::info_span!(
            "capture",
            camera_id = %self.inner.config.camera_id,
            event_id = %event_id,
        );
        let trace = kozomol_telemetry::context_of(&span);
        self.write_event(event_id, capture, trace)
            .instrument(span)
            .await
    }

    async fn write_event(
        &self,
        event_id: EventId,
        capture: Capture,
        trace: Option<TraceParent>,
    ) -> Result<EventId, EdgeError> {
        let inner = &self.inner;
        if self.cancel.is_cancelled() || inner.shutting_down.load(Ordering::Relaxed) {
            return Err(EdgeError::ShuttingDown);
        }
        if inner.outbox.contains(event_id) {
            return Ok(event_id);
        }
        let event = self.build_event(event_id, &capture)?;
        let key = inner.config.signing_key.clone();
        let frames: Vec<Vec<u8>> = capture.frames.into_iter().map(|(_, jpeg)| jpeg).collect();
        // Hashing the frames and signing is CPU work.
        let bytes =
            tokio::task::spawn_blocking(move || encode_signed(&event, &frames, &key, trace))
                .await??;
        let len = bytes.len() as u64;
        let limit = inner.config.max_outbox_bytes;
        inner.outbox.reserve(len, limit)?;
        let writer = self.inner.clone();
        let written = tokio::task::spawn_blocking(move || {
            let (evicted, result) = writer.outbox.write_reserved(event_id, &bytes, limit);
            // Their files are gone already.
            writer.note_evicted(&evicted);
            if !evicted.is_empty() {
                writer.depth_changed();
            }
            result.map(|()| bytes)
        })
        .await;
        let bytes = match written {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                inner.outbox.unreserve(len);
                return Err(EdgeError::Io {
                    context: format!("writing event {event_id} to the outbox"),
                    source: e,
                });
            }
            Err(e) => {
                inner.outbox.unreserve(len);
                return Err(e.into());
            }
        };
        inner.outbox.insert(event_id, bytes);
        inner.evict(inner.outbox.evict_over(limit, event_id, 0));
        if let Some(offset) = capture.clock_offset_ms {
            inner.clock_offset_ms.store(offset, Ordering::Relaxed);
        }
        inner.depth_changed();
        inner.wake_publisher.notify_one();
        Ok(event_id)
    }

    fn build_event(
        &self,
        event_id: EventId,
        capture: &Capture,
    ) -> Result<ViolationEvent, EdgeError> {
        let config = &self.inner.config;
        let mut site = config.site.clone();
        if let Some(lane) = capture.lane {
            site.lane = lane;
        }
        let mut measurement = capture.measurement.clone();
        if capture.kind == ViolationKind::Speeding && measurement.limit_kmh.is_none() {
            let speed_kmh = measurement
                .speed_kmh
                .ok_or_else(|| EdgeError::InvalidCapture("speeding needs speed_kmh".into()))?;
            let limit = self
                .inner
                .applied
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .and_then(|c| {
                    c.limit_for(site.lane, capture.captured_at, config.utc_offset_minutes)
                });
            let Some(limit_kmh) = limit else {
                return Err(EdgeError::NoSpeedLimit {
                    lane: site.lane,
                    local_time: local_time(capture.captured_at, config.utc_offset_minutes),
                });
            };
            if speed_kmh <= limit_kmh {
                self.inner
                    .counters
                    .discarded_below_limit
                    .fetch_add(1, Ordering::Relaxed);
                info!(
                    camera = %config.camera_id,
                    lane = site.lane,
                    speed_kmh,
                    limit_kmh,
                    "capture discarded: speed not above the limit in force"
                );
                return Err(EdgeError::BelowLimit {
                    speed_kmh,
                    limit_kmh,
                });
            }
            measurement.limit_kmh = Some(limit_kmh);
        }
        Ok(ViolationEvent {
            event_id,
            camera_id: config.camera_id.clone(),
            captured_at_ms: capture.captured_at.timestamp_millis(),
            clock_source: capture.clock_source,
            clock_offset_ms: capture.clock_offset_ms,
            site,
            kind: capture.kind,
            measurement,
            device: config.device.clone(),
            plate_read: capture.plate_read.clone(),
            frames: capture
                .frames
                .iter()
                .map(|(role, jpeg)| FrameRef::of(*role, jpeg))
                .collect(),
        })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AgentStats {
        let c = &self.inner.counters;
        let (outbox_depth, outbox_bytes) = self.inner.outbox.depth();
        AgentStats {
            outbox_depth,
            outbox_bytes,
            published: c.published.load(Ordering::Relaxed),
            resent: c.resent.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            dropped_for_space: c.dropped_for_space.load(Ordering::Relaxed),
            discarded_below_limit: c.discarded_below_limit.load(Ordering::Relaxed),
            config_version: self.inner.config_version(),
            connected: self.inner.connected.load(Ordering::Relaxed),
        }
    }

    /// The camera this agent speaks for.
    pub fn camera_id(&self) -> &CameraId {
        &self.inner.config.camera_id
    }

    /// Waits until every submitted event has its receipt (the outbox is empty);
    /// `false` if `timeout` passed first.
    pub async fn wait_until_empty(&self, timeout: Duration) -> bool {
        let mut depth = self.inner.depth.subscribe();
        tokio::time::timeout(timeout, depth.wait_for(|d| *d == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops gracefully: publishes the offline status, disconnects, and finishes the
    /// pending file work. What is unreceipted stays in the outbox for the next start.
    pub async fn shutdown(mut self) {
        let inner = self.inner.clone();
        inner.shutting_down.store(true, Ordering::Relaxed);
        if inner.connected.load(Ordering::Relaxed) {
            let offline = serde_json::to_vec(&inner.status(CameraLinkState::Offline))
                .expect("a camera status always serializes");
            let said = async {
                inner
                    .client
                    .publish(&inner.status_topic, QoS::AtLeastOnce, true, offline)
                    .await?;
                inner.client.disconnect().await
            };
            if let Err(e) = tokio::time::timeout(Duration::from_secs(2), said)
                .await
                .unwrap_or(Ok(()))
            {
                warn!(camera = %inner.config.camera_id, error = %e, "could not say goodbye to the broker");
            }
            // The link task ends once the disconnect has gone out.
            if let Some(link) = self.link.take() {
                let mut link = link;
                if tokio::time::timeout(Duration::from_secs(3), &mut link)
                    .await
                    .is_err()
                {
                    link.abort();
                }
            }
        }
        self.cancel.cancel();
        if let Some(link) = self.link.take() {
            let _ = link.await;
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        info!(camera = %inner.config.camera_id, outbox_depth = inner.outbox.depth().0, "edge agent stopped");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Without a graceful shutdown the tasks still stop; the broker sends the will.
        self.cancel.cancel();
    }
}

fn parse_broker(broker: &str) -> Result<(String, u16), EdgeError> {
    let invalid = || EdgeError::InvalidBroker(broker.to_owned());
    let (host, port) = broker.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(invalid());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses() {
        assert_eq!(
            parse_broker("127.0.0.1:1883").ok(),
            Some(("127.0.0.1".into(), 1883))
        );
        assert_eq!(parse_broker("[::1]:1884").ok(), Some(("::1".into(), 1884)));
        for bad in ["localhost", ":1883", "host:0", "host:x"] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }
}
