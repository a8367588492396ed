//! A private Mosquitto per test and a fake ingest that verifies envelopes and answers
//! with receipts by a policy the test chooses.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use ed25519_dalek::{SigningKey, VerifyingKey};
use kozomol_core::messages::{Receipt, ReceiptStatus};
use kozomol_core::topics::{self, TopicKind};
use kozomol_core::{
    CalibrationCertificate, CameraId, ClockSource, DecodedEnvelope, EventId, FrameRole,
    Measurement, MeasuringDevice, PlateRead, Site, ViolationEvent, ViolationKind,
};
use kozomol_edge_agent::{AgentConfig, Capture};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A Mosquitto of our own on a free port, killed on drop.
pub struct Broker {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n"
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not open port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the fake ingest answers one delivery of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
    /// No receipt (as if ingest or the broker lost it).
    Silent,
}

/// A stand-in for ingest: verifies every envelope with the camera keys it knows and
/// answers per `policy(event_id, delivery number from 1)`.
pub struct FakeIngest {
    pub deliveries: Arc<Mutex<HashMap<EventId, usize>>>,
    pub events: Arc<Mutex<Vec<ViolationEvent>>>,
    pub failures: Arc<Mutex<Vec<String>>>,
    client: AsyncClient,
    task: JoinHandle<()>,
}

type Policy = Box<dyn Fn(EventId, usize) -> Answer + Send + Sync>;

impl FakeIngest {
    pub async fn start(
        broker: &Broker,
        keys: Vec<(CameraId, VerifyingKey)>,
        policy: impl Fn(EventId, usize) -> Answer + Send + Sync + 'static,
    ) -> FakeIngest {
        let policy: Policy = Box::new(policy);
        let mut options = MqttOptions::new(
            format!("fake-ingest-{}", free_port()),
            "127.0.0.1",
            broker.port,
        );
        options.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        client
            .subscribe(topics::VIOLATIONS_FILTER, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), eventloop.poll())
                .await
                .expect("fake ingest connects in time")
                .expect("fake ingest connects");
            if matches!(event, Event::Incoming(Packet::SubAck(_))) {
                break;
            }
        }
        let deliveries = Arc::new(Mutex::new(HashMap::new()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let keys: HashMap<CameraId, VerifyingKey> = keys.into_iter().collect();
        let task = {
            let (deliveries, events, failures) =
                (deliveries.clone(), events.clone(), failures.clone());
            let client = client.clone();
            tokio::spawn(async move {
                let mut accepted: HashSet<EventId> = HashSet::new();
                loop {
                    let publish = match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => p,
                        Ok(_) => continue,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let Some((camera, TopicKind::Violations)) = topics::parse(&publish.topic)
                    else {
                        continue;
                    };
                    let decoded = match DecodedEnvelope::decode(&publish.payload) {
                        Ok(d) => d,
                        Err(e) => {
                            failures.lock().unwrap().push(format!("decode: {e}"));
                            continue;
                        }
                    };
                    let Some(key) = keys.get(&camera) else {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("unknown camera {camera}"));
                        continue;
                    };
                    if let Err(e) = decoded.verify(key) {
                        failures.lock().unwrap().push(format!("verify: {e}"));
                        continue;
                    }
                    let id = decoded.event.event_id;
                    let n = {
                        let mut d = deliveries.lock().unwrap();
                        let n = d.entry(id).or_insert(0);
                        *n += 1;
                        *n
                    };
                    if n == 1 {
                        events.lock().unwrap().push(decoded.event.clone());
                    }
                    let status = if accepted.contains(&id) {
                        ReceiptStatus::Duplicate
                    } else {
                        match policy(id, n) {
                            Answer::Accept => {
                                accepted.insert(id);
                                ReceiptStatus::Accepted
                            }
                            Answer::Reject => ReceiptStatus::Rejected,
                            Answer::Silent => continue,
                        }
                    };
                    let receipt = Receipt {
                        event_id: Some(id.to_string()),
                        status,
                        reason: (status == ReceiptStatus::Rejected)
                            .then_some(kozomol_core::DeadLetterReason::RegisterMismatch),
                        detail: None,
                        case_id: (status == ReceiptStatus::Accepted).then_some(n as i64),
                    };
                    let json = serde_json::to_vec(&receipt).unwrap();
                    let _ = client
                        .publish(
                            topics::topic(&camera, TopicKind::Receipts),
                            QoS::AtLeastOnce,
                            false,
                            json,
                        )
                        .await;
                }
            })
        };
        FakeIngest {
            deliveries,
            events,
            failures,
            client,
            task,
        }
    }

    pub fn delivery_count(&self, id: EventId) -> usize {
        self.deliveries
            .lock()
            .unwrap()
            .get(&id)
            .copied()
            .unwrap_or(0)
    }

    pub fn distinct_events(&self) -> usize {
        self.deliveries.lock().unwrap().len()
    }

    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    pub fn client(&self) -> &AsyncClient {
        &self.client
    }
}

impl Drop for FakeIngest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A plain MQTT client for publishing config and watching status.
pub async fn observer(broker: &Broker) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(
        format!("observer-{}", free_port()),
        "127.0.0.1",
        broker.port,
    );
    options.set_max_packet_size(4 << 20, 4 << 20);
    AsyncClient::new(options, 64)
}

pub fn camera_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn site() -> Site {
    Site {
        id: "site-chuy-manas".into(),
        lat_e6: 42_876_000,
        lon_e6: 74_604_000,
        address: "проспект Чуй / проспект Манаса, Бишкек".into(),
        direction: "eastbound".into(),
        lane: 1,
    }
}

pub fn device() -> MeasuringDevice {
    MeasuringDevice {
        serial: "KRIS-P-12345".into(),
        certificate: CalibrationCertificate {
            number: "KG-CSM-2026-0042".into(),
            valid_from: "2026-01-15".parse().unwrap(),
            valid_until: "2027-01-14".parse().unwrap(),
        },
    }
}

pub fn agent_config(camera: &str, seed: u8, broker: String, data_dir: &Path) -> AgentConfig {
    let mut config = AgentConfig::new(
        CameraId::parse(camera).unwrap(),
        camera_key(seed),
        broker,
        data_dir,
        site(),
        device(),
    );
    config.resend_after = Duration::from_secs(30);
    config.status_interval = Duration::from_secs(5);
    config
}

/// Fake JPEG bytes of about `len` bytes, distinct per `n`.
pub fn jpeg(n: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xd8];
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while bytes.len() < len - 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(x as u8);
    }
    bytes.extend([0xff, 0xd9]);
    bytes
}

pub fn speeding(n: u64, frame_len: usize) -> Capture {
    Capture {
        captured_at: Utc::now(),
        clock_source: ClockSource::Gnss,
        clock_offset_ms: Some(-3),
        kind: ViolationKind::Speeding,
        measurement: Measurement {
            speed_kmh: Some(97),
            limit_kmh: Some(60),
            red_elapsed_ms: None,
        },
        lane: None,
        plate_read: Some(PlateRead {
            text: "01123ABC".into(),
            confidence_milli: 930,
            country: Some("KG".into()),
        }),
        frames: vec![
            (FrameRole::Overview, jpeg(n * 2, frame_len)),
            (FrameRole::Plate, jpeg(n * 2 + 1, frame_len / 4)),
        ],
    }
}

/// Files in a folder, by name.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
