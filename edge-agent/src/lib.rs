//! kozomol-edge-agent: the program on camera hardware.
//!
//! It owns the camera's side of the wire protocol: captures (from the firmware's spool
//! folder or handed over in-process) become signed envelopes in a durable disk outbox,
//! published with QoS 1 and deleted only when ingest's receipt arrives; status with a
//! last will; speed-limit config applied only under the server's signature.

mod agent;
mod error;
mod link;
mod outbox;
mod publisher;
mod speed_limits;
pub mod spool;
mod status;

pub use agent::{Agent, AgentConfig, AgentStats, Capture};
pub use error::EdgeError;
pub use outbox::requeue_rejected;
pub use spool::{Sidecar, Spool, SpoolReport};
