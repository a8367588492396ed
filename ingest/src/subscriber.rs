//! The MQTT side of ingest: one connection, a task that drives it, and a loop that
//! takes messages in batches, commits them, and only then acks (in arrival order)
//! and publishes receipts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use kozomol_core::messages::{CameraLinkState, CameraStatus, Receipt, ReceiptStatus};
use kozomol_core::topics::{self, BrokerLogin, TopicKind};
use kozomol_store::{CameraStatusUpdate, EvidenceStore, Store, StoreError};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::batch::{Arrival, BatchOutcome, BatchWriter};
use crate::{IngestError, IngestMetrics};

/// The largest MQTT packet ingest accepts: well above what the brokers pass on (4 MiB
/// of payload: the embedded broker, deploy/mosquitto.conf), so that any message they
/// deliver reaches the envelope check (2 MiB) and is dead-lettered if too large. A
/// packet over this would drop ingest's connection, and the broker would deliver it
/// again first on every reconnect.
pub const MAX_PACKET_BYTES: usize = 8 * 1024 * 1024;

/// The most payload bytes one batch holds: a batch is copied a few times on its way
/// to the store, and 512 messages of 2 MiB would be gigabytes.
pub const BATCH_MAX_BYTES: usize = 64 * 1024 * 1024;

/// A message as the broker delivered it, and when: a capture is judged against its
/// arrival, however long its batch then waits for the store.
type Received = (Publish, DateTime<Utc>);

/// Whether a batch of `len` messages and `bytes` payload bytes takes no more.
fn batch_full(len: usize, bytes: usize, batch_max: usize) -> bool {
    len >= batch_max || bytes >= BATCH_MAX_BYTES
}

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub broker_host: String,
    pub broker_port: u16,
    /// Stable per process: the broker keeps this session's unacked messages.
    pub client_id: String,
    /// Join the `$share/ingest/...` group (external brokers with several ingests).
    pub shared_subscription: bool,
    pub batch_max: usize,
    /// How long a batch waits for more messages once it has one.
    pub batch_linger: Duration,
    /// Written into audit rows, e.g. `ingest:host-1`.
    pub actor: String,
    /// The jurisdiction's offset from UTC, for calibration dates.
    pub local_utc_offset_minutes: i32,
    /// `None`: the broker takes anonymous clients.
    pub login: Option<BrokerLogin>,
}

impl IngestConfig {
    pub fn new(
        broker_host: impl Into<String>,
        broker_port: u16,
        client_id: impl Into<String>,
    ) -> Self {
        let client_id = client_id.into();
        IngestConfig {
            broker_host: broker_host.into(),
            broker_port,
            actor: format!("ingest:{client_id}"),
            client_id,
            shared_subscription: false,
            batch_max: 512,
            batch_linger: Duration::from_millis(3),
            local_utc_offset_minutes: 6 * 60,
            login: None,
        }
    }
}

/// Runs ingest until `cancel` fires. Messages taken but not committed are not acked,
/// so the broker delivers them again.
pub async fn run(
    config: IngestConfig,
    store: Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
    metrics: Arc<IngestMetrics>,
    cancel: CancellationToken,
) -> Result<(), IngestError> {
    let offset = FixedOffset::east_opt(config.local_utc_offset_minutes * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset is valid"));
    let writer = BatchWriter::new(
        Arc::clone(&store),
        evidence,
        Arc::clone(&metrics),
        config.actor.clone(),
        offset,
    );
    let mut options = MqttOptions::new(&config.client_id, &config.broker_host, config.broker_port);
    options
        .set_keep_alive(Duration::from_secs(15))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
        .set_inflight(1000);
    if let Some(login) = &config.login {
        options.set_credentials(&login.username, &login.password);
    }
    let (client, eventloop) = AsyncClient::new(options, 50_000);
    // Unbounded, so the driver never stops polling the event loop: the committer's
    // acks and receipts go through the client's request channel, which only that
    // polling drains, and a driver blocked on a full hand-over channel while the
    // committer waits on a full request channel is a deadlock (50,000 events in a
    // burst did it). What waits here is bounded anyway: acks are manual and sent
    // after the commit, so the broker holds back all but its in-flight window
    // (1,000 messages: deploy/mosquitto.conf, and the embedded broker's settings).
    let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
    // Its own token, not a child of `cancel`: on stopping, the driver must go on
    // polling until the acks and receipts of the last commit are written.
    let driver_cancel = CancellationToken::new();
    let driver = tokio::spawn(drive(
        eventloop,
        client.clone(),
        config.clone(),
        Arc::clone(&metrics),
        tx,
        driver_cancel.clone(),
    ));
    tracing::info!(broker = %format!("{}:{}", config.broker_host, config.broker_port), client_id = %config.client_id, "ingest started");

    let mut batch: Vec<Received> = Vec::with_capacity(config.batch_max);
    loop {
        batch.clear();
        let first = tokio::select! {
            _ = cancel.cancelled() => break,
            next = rx.recv() => match next { Some(p) => p, None => break },
        };
        let mut bytes = first.0.payload.len();
        batch.push(first);
        let linger = tokio::time::sleep(config.batch_linger);
        tokio::pin!(linger);
        while !batch_full(batch.len(), bytes, config.batch_max) {
            let next = match rx.try_recv() {
                Ok(p) => p,
                Err(_) => {
                    tokio::select! {
                        _ = &mut linger => break,
                        next = rx.recv() => match next { Some(p) => p, None => break },
                    }
                }
            };
            bytes = bytes.saturating_add(next.0.payload.len());
            batch.push(next);
        }
        if !commit_batch(&writer, &store, &client, &metrics, &batch, &cancel).await {
            break;
        }
    }
    writer.record_floods_on_stop().await;
    // Stop taking messages; what was not committed stays unacked at the broker. The
    // disconnect goes out after every ack and receipt queued before it (the client
    // sends its requests in order), so the driver polls until it is written; a broker
    // that does not take it within five seconds is left.
    let _ = client.try_disconnect();
    let mut driver = driver;
    if tokio::time::timeout(Duration::from_secs(5), &mut driver)
        .await
        .is_err()
    {
        tracing::warn!("the broker did not take ingest's last acks in time; it will deliver those messages again");
        driver_cancel.cancel();
        let _ = driver.await;
    }
    tracing::info!("ingest stopped");
    Ok(())
}

/// Commits one batch, retrying while the store is unavailable; then acks and sends
/// receipts. Returns false when cancelled before the commit.
async fn commit_batch(
    writer: &BatchWriter,
    store: &Arc<dyn Store>,
    client: &AsyncClient,
    metrics: &IngestMetrics,
    batch: &[Received],
    cancel: &CancellationToken,
) -> bool {
    let mut violations: Vec<Arrival> = Vec::new();
    let mut statuses = Vec::new();
    for (p, received_at) in batch {
        match topics::parse(&p.topic) {
            Some((camera, TopicKind::Status)) => {
                statuses.push((camera, p.payload.clone(), *received_at))
            }
            _ => violations.push(Arrival {
                topic: p.topic.clone(),
                payload: p.payload.to_vec(),
                received_at: *received_at,
            }),
        }
    }
    // A status is acked with the batch, so it is stored before it: one the store cannot
    // take now waits for it (stored again after a cancel, harmless: the newest wins),
    // and it comes first so that a cancel while it waits leaves no committed batch
    // unacked. A status the store refuses for its own content is dropped: statuses are
    // only shown, and the camera sends the next one soon.
    for (camera, payload, received_at) in statuses {
        let Some(update) = status_update(&camera, &payload, received_at) else {
            continue;
        };
        let what = format!("status of camera {camera}");
        let attempt = || store.record_camera_status(&camera, &update);
        match until_stored(cancel, &what, StoreError::is_transient, attempt).await {
            None => return false,
            Some(Ok(())) => {
                metrics.status_updates.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(e)) => {
                tracing::warn!(camera = %camera, error = %e, "camera status not recorded; dropped");
            }
        }
    }
    let what = format!("batch of {} violation messages", violations.len());
    // Nothing of a batch is dropped: it waits until the store takes it.
    let outcomes = match until_stored(cancel, &what, |_| true, || writer.write(&violations)).await {
        Some(Ok(outcomes)) => outcomes,
        Some(Err(e)) => {
            tracing::error!(error = %e, "batch not committed; ingest stops");
            writer.queue_uncommitted_on_stop().await;
            return false;
        }
        None => {
            writer.queue_uncommitted_on_stop().await;
            return false;
        }
    };
    // Acks go out in arrival order, as the broker expects.
    for (p, _) in batch {
        if let Err(e) = client.ack(p).await {
            tracing::warn!(error = %e, "ack not queued");
        }
    }
    for outcome in outcomes {
        let (camera, receipt) = receipt_for(outcome);
        let Some(camera) = camera else { continue };
        let Ok(body) = serde_json::to_vec(&receipt) else {
            continue;
        };
        let topic = topics::topic(&camera, TopicKind::Receipts);
        match client.publish(topic, QoS::AtLeastOnce, false, body).await {
            Ok(()) => {
                metrics.receipts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, camera = %camera, "receipt not queued"),
        }
    }
    true
}

fn receipt_for(outcome: BatchOutcome) -> (Option<kozomol_core::CameraId>, Receipt) {
    match outcome {
        BatchOutcome::Accepted {
            camera,
            event_id,
            case_id,
        } => (
            Some(camera),
            Receipt {
                event_id: Some(event_id),
                status: ReceiptStatus::Accepted,
                reason: None,
                detail: None,
                case_id: Some(case_id.0),
            },
        ),
        BatchOutcome::Duplicate {
            camera,
            event_id,
            case_id,
        } => (
            Some(camera),
            Receipt {
                event_id: Some(event_id),
                status: ReceiptStatus::Duplicate,
                reason: None,
                detail: None,
                case_id: Some(case_id.0),
            },
        ),
        BatchOutcome::Rejected {
            camera,
            event_id,
            reason,
            detail,
        } => (
            camera.and_then(|c| kozomol_core::CameraId::parse(&c).ok()),
            Receipt {
                event_id,
                status: ReceiptStatus::Rejected,
                reason: Some(reason),
                detail: Some(detail),
                case_id: None,
            },
        ),
    }
}

/// Runs `attempt` until it succeeds, waiting 200 ms doubling to 5 s between tries while
/// the error is one `retry` takes as passing (nothing is acked meanwhile, so nothing is
/// lost); `Some(Err)` with an error it does not, `None` when cancelled first.
async fn until_stored<T, E, F, Fut>(
    cancel: &CancellationToken,
    what: &str,
    retry: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(done) => return Some(Ok(done)),
            Err(e) if retry(&e) => {
                tracing::error!(error = %e, what, retry_in_ms = backoff.as_millis() as u64, "not committed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// The update a camera's status message asks for at `now`; `None` (logged) for one
/// that is not valid JSON: statuses are unsigned and only shown, so it is dropped, not
/// dead-lettered.
fn status_update(
    camera: &kozomol_core::CameraId,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Option<CameraStatusUpdate> {
    let status: CameraStatus = match serde_json::from_slice(payload) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(camera = %camera, error = %e, "camera status is not valid JSON; ignored");
            return None;
        }
    };
    Some(CameraStatusUpdate {
        online: status.state == CameraLinkState::Online,
        outbox_depth: status.outbox_depth.and_then(|d| i64::try_from(d).ok()),
        clock_offset_ms: status.clock_offset_ms,
        at: camera_time(status.at_ms, now),
        received_at: now,
    })
}

/// The camera's own time of a status, unless it has none or one no working clock
/// gives (before 2020, or more than an hour ahead of `now`): such a status is taken
/// as of its arrival (`CameraStatusUpdate::at`). The newest stored status wins, so a
/// time far ahead would hide every later status; one out of a database's range would
/// fail.
fn camera_time(at_ms: Option<i64>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let earliest = DateTime::from_timestamp(1_577_836_800, 0)?; // 2020-01-01
    at_ms
        .and_then(DateTime::from_timestamp_millis)
        .filter(|at| *at >= earliest && *at <= now + chrono::Duration::hours(1))
}

/// Drives the MQTT connection: reconnects with backoff, (re)subscribes on every
/// connect, and hands publishes to the batch loop.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    config: IngestConfig,
    metrics: Arc<IngestMetrics>,
    tx: mpsc::UnboundedSender<Received>,
    cancel: CancellationToken,
) {
    metrics.set_broker_connected(false);
    let violations = if config.shared_subscription {
        topics::shared_violations_filter()
    } else {
        topics::VIOLATIONS_FILTER.to_owned()
    };
    let status = format!("{}/+/status", topics::PREFIX);
    let mut backoff = Duration::from_millis(100);
    let mut disconnecting = false;
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(100);
                metrics.set_broker_connected(true);
                tracing::info!("connected to broker");
                // try_: the request channel is drained by this very loop.
                for filter in [&violations, &status] {
                    if let Err(e) = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                        tracing::error!(error = %e, filter = %filter, "subscribe not queued");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                // Once ingest stops taking messages, what still comes is left unacked.
                let _ = tx.send((p, Utc::now()));
            }
            // Written after everything queued before it: ingest is stopping. The
            // broker closes the connection once it has read it; closing first, with
            // its answers unread, would reset the connection and could lose the acks.
            Ok(Event::Outgoing(Outgoing::Disconnect)) => disconnecting = true,
            Ok(_) => {}
            Err(_) if disconnecting => return,
            Err(e) => {
                metrics.set_broker_connected(false);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "broker connection lost");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use tokio_util::sync::CancellationToken;

    use super::{batch_full, camera_time, until_stored, BATCH_MAX_BYTES};

    #[test]
    fn a_batch_ends_at_its_count_or_its_bytes() {
        let mib = 1024 * 1024;
        for (len, bytes, want) in [
            (1, 300 * 1024, false),
            (511, 100 * mib / 2, false),
            (512, 1, true),
            // Thirty-two envelopes of 2 MiB fill it long before 512.
            (31, 31 * 2 * mib, false),
            (32, 32 * 2 * mib, true),
            (1, BATCH_MAX_BYTES, true),
        ] {
            assert_eq!(batch_full(len, bytes, 512), want, "{len} {bytes}");
        }
    }

    #[tokio::test]
    async fn a_write_the_store_refuses_for_a_while_is_tried_again_until_it_is_taken() {
        let tries = AtomicU32::new(0);
        let cancel = CancellationToken::new();
        let stored = until_stored(
            &cancel,
            "test",
            |_| true,
            || async {
                match tries.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err("database unavailable"),
                    n => Ok(n),
                }
            },
        )
        .await;
        assert_eq!(stored, Some(Ok(2)));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_write_refused_for_its_own_content_is_given_up_at_once() {
        let tries = AtomicU32::new(0);
        let stored: Option<Result<(), &str>> = until_stored(
            &CancellationToken::new(),
            "test",
            |e: &&str| *e == "database unavailable",
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err("value out of range")
            },
        )
        .await;
        assert_eq!(stored, Some(Err("value out of range")));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn cancelling_while_the_store_is_away_gives_up_without_a_result() {
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stopper.cancel();
        });
        let stored: Option<Result<(), &str>> = until_stored(
            &cancel,
            "test",
            |_| true,
            || async { Err("database unavailable") },
        )
        .await;
        assert_eq!(stored, None);
    }

    #[test]
    fn a_status_is_dated_by_the_camera_unless_no_working_clock_gives_that_time() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .expect("time")
                .with_timezone(&Utc)
        };
        let now = at("2026-12-06T12:00:00Z");
        let ms = |text: &str| at(text).timestamp_millis();
        for (at_ms, taken) in [
            (
                Some(ms("2026-12-06T11:59:58Z")),
                Some("2026-12-06T11:59:58Z"),
            ),
            (
                Some(ms("2026-12-06T12:59:00Z")),
                Some("2026-12-06T12:59:00Z"),
            ),
            (
                Some(ms("2020-01-01T00:00:00Z")),
                Some("2020-01-01T00:00:00Z"),
            ),
            (None, None),
            (Some(ms("2026-12-06T13:00:01Z")), None),
            (Some(ms("2099-01-01T00:00:00Z")), None),
            (Some(0), None),
            (Some(-8_000_000_000_000_000), None),
            (Some(i64::MAX), None),
        ] {
            assert_eq!(camera_time(at_ms, now), taken.map(at), "{at_ms:?}");
        }
    }
}
