//! kozomol-ingest: from the violations topic to committed cases.
//!
//! It owns the MQTT subscriber (rumqttc, manual acks, shared subscription on an
//! external broker), verification of each envelope against the device register,
//! batched durable writes (evidence segments with one fsync per batch, then cases and
//! audit rows in one transaction), acknowledgement only after commit, receipts to
//! cameras, dead letters, and camera status.

mod allowance;
mod batch;
mod error;
pub mod metrics;
mod subscriber;
mod verify;

pub use batch::{Arrival, BatchOutcome, BatchWriter};
pub use error::IngestError;
pub use metrics::IngestMetrics;
pub use subscriber::{run, IngestConfig};
pub use verify::{check_event, Verdict};
