//! kozomol-ingest: from the violations topic to committed cases.
//!
//! It owns the MQTT subscriber (rumqttc, manual acks, shared subscription on an
//! external broker), verification of each envelope against the device register,
//! batched durable writes (evidence segments, then cases and audit in one
//! transaction), acknowledgement after commit, receipts to cameras, and dead letters.

pub mod metrics;

pub use metrics::IngestMetrics;
