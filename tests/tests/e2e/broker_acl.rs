//! deploy/mosquitto.acl on a real Mosquitto: a camera's login reaches its own topics
//! and no other camera's, and only kozomol's login reads violations and publishes
//! receipts — so one camera's stolen password cannot take other cameras' events from
//! ingest or tell those cameras their events were accepted.

use std::path::Path;
use std::time::Duration;

use kozomol_tests::Mosquitto;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;

const KOZOMOL: (&str, &str) = ("kozomol", "kozomol-secret");
const CAM_1: (&str, &str) = ("cam-1", "cam-1-secret");
const CAM_2: (&str, &str) = ("cam-2", "cam-2-secret");

fn topic(camera: &str, kind: &str) -> String {
    format!("kozomol/v1/cameras/{camera}/{kind}")
}

/// A logged-in client, what it receives, and its subscriptions' answers.
struct Client {
    mqtt: AsyncClient,
    received: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    subacks: mpsc::UnboundedReceiver<Vec<SubscribeReasonCode>>,
    pubacks: mpsc::UnboundedReceiver<()>,
}

impl Client {
    async fn connect(port: u16, (user, password): (&str, &str)) -> Client {
        let mut options = MqttOptions::new(format!("acl-test-{user}"), "127.0.0.1", port);
        options.set_credentials(user, password);
        let (mqtt, mut eventloop) = AsyncClient::new(options, 100);
        let (received_tx, received) = mpsc::unbounded_channel();
        let (subacks_tx, subacks) = mpsc::unbounded_channel();
        let (pubacks_tx, pubacks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                match event {
                    Event::Incoming(Packet::Publish(p)) => {
                        let _ = received_tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Event::Incoming(Packet::SubAck(ack)) => {
                        let _ = subacks_tx.send(ack.return_codes);
                    }
                    Event::Incoming(Packet::PubAck(_)) => {
                        let _ = pubacks_tx.send(());
                    }
                    _ => {}
                }
            }
        });
        Client {
            mqtt,
            received,
            subacks,
            pubacks,
        }
    }

    /// Subscribes and says whether the broker granted it.
    async fn subscribe(&mut self, filter: &str) -> bool {
        self.mqtt
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        let codes = tokio::time::timeout(Duration::from_secs(10), self.subacks.recv())
            .await
            .expect("a SUBACK")
            .expect("connected");
        codes
            .iter()
            .all(|c| matches!(c, SubscribeReasonCode::Success(_)))
    }

    /// Publishes and waits for the broker's PUBACK: it has then dealt with the
    /// message (a denied one is acknowledged and dropped), so what is published after
    /// it is handled after it.
    async fn publish(&mut self, topic: &str, payload: &str) {
        self.mqtt
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .expect("publish queued");
        tokio::time::timeout(Duration::from_secs(10), self.pubacks.recv())
            .await
            .expect("a PUBACK")
            .expect("connected");
    }

    /// Every message received until `last` (a payload that must come), in order.
    async fn until(&mut self, last: &str) -> Vec<(String, String)> {
        let mut got = Vec::new();
        loop {
            let (topic, payload) =
                tokio::time::timeout(Duration::from_secs(10), self.received.recv())
                    .await
                    .unwrap_or_else(|_| panic!("`{last}` never came; got {got:?}"))
                    .expect("connected");
            let payload = String::from_utf8_lossy(&payload).into_owned();
            let done = payload == last;
            got.push((topic, payload));
            if done {
                return got;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_login_reaches_its_own_topics_only() {
    let acl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mosquitto.acl");
    let broker = Mosquitto::start_with_rules(&[KOZOMOL, CAM_1, CAM_2], Some(&acl))
        .expect("mosquitto with the deploy acl");
    let port = broker.port;
    let mut kozomol = Client::connect(port, KOZOMOL).await;
    let mut cam_1 = Client::connect(port, CAM_1).await;
    let mut cam_2 = Client::connect(port, CAM_2).await;

    // Ingest's subscription; a camera may ask for others' topics (Mosquitto's acl_file
    // grants every subscription and checks each message as it delivers it), but
    // nothing of them ever reaches it. (A camera joining ingest's shared subscription
    // would take a share of the messages, which then reach no one: the camera hears
    // no receipt and sends the event again, so it is late, not lost — receipts cannot
    // be forged. docs/operations.md says so.)
    assert!(
        kozomol
            .subscribe("$share/ingest/kozomol/v1/cameras/+/violations")
            .await
    );
    for filter in [
        "kozomol/v1/cameras/+/violations".to_owned(),
        topic("cam-2", "receipts"),
        topic("cam-1", "receipts"),
    ] {
        cam_1.subscribe(&filter).await;
    }
    assert!(cam_2.subscribe(&topic("cam-2", "receipts")).await);
    assert!(cam_2.subscribe(&topic("cam-2", "config")).await);

    // A camera publishes its own violations, never another's; kozomol reads them.
    cam_1
        .publish(&topic("cam-2", "violations"), "forged by cam-1")
        .await;
    for i in 0..4 {
        cam_2
            .publish(&topic("cam-2", "violations"), &format!("cam-2's own {i}"))
            .await;
    }
    assert_eq!(
        kozomol.until("cam-2's own 3").await,
        (0..4)
            .map(|i| (topic("cam-2", "violations"), format!("cam-2's own {i}")))
            .collect::<Vec<_>>()
    );

    // Receipts and config come from kozomol alone.
    cam_1
        .publish(&topic("cam-2", "receipts"), "accepted, says cam-1")
        .await;
    cam_2
        .publish(&topic("cam-2", "config"), "config, says cam-2")
        .await;
    kozomol
        .publish(&topic("cam-2", "receipts"), "accepted, says kozomol")
        .await;
    assert_eq!(
        cam_2.until("accepted, says kozomol").await,
        [(
            topic("cam-2", "receipts"),
            "accepted, says kozomol".to_owned()
        )]
    );

    // cam-1 saw none of it: the first thing it gets is its own receipt.
    kozomol
        .publish(&topic("cam-1", "receipts"), "cam-1's receipt")
        .await;
    assert_eq!(
        cam_1.until("cam-1's receipt").await,
        [(topic("cam-1", "receipts"), "cam-1's receipt".to_owned())]
    );
}
