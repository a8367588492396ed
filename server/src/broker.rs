//! The embedded MQTT broker (rumqttd) of `kozomol serve`: MQTT 3.1.1 on one address,
//! messages in memory only, which is why cameras keep their own outbox.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Largest packet the embedded broker accepts (the envelope limit is 2 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("broker configuration: {0}")]
    Config(String),
    #[error("broker did not start listening on {0} within 10 s")]
    NotListening(SocketAddr),
}

/// Starts the broker on its own thread (rumqttd's `start` blocks) and returns once it
/// accepts connections.
pub fn start(listen: SocketAddr) -> Result<(), BrokerError> {
    // Fail early and clearly when the port is taken; rumqttd would only log it.
    TcpListener::bind(listen).map_err(|source| BrokerError::Bind {
        addr: listen,
        source,
    })?;
    let config = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 1000
max_segment_size = 268435456
max_segment_count = 4

[v4.1]
name = "v4-1"
listen = "{listen}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = {MAX_PAYLOAD_BYTES}
    max_inflight_count = 1000
    dynamic_filters = true
"#
    );
    let config: rumqttd::Config =
        toml::from_str(&config).map_err(|e| BrokerError::Config(e.to_string()))?;
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| BrokerError::Config(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
            tracing::info!(listen = %listen, "embedded MQTT broker listening");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(BrokerError::NotListening(listen))
}
