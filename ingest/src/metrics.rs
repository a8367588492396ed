//! Counters that ingest keeps and the server exposes at `/metrics`.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use kozomol_core::DeadLetterReason;

#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Messages taken from the broker.
    pub messages: AtomicU64,
    /// New cases committed.
    pub accepted: AtomicU64,
    /// Events seen before (receipt `duplicate`).
    pub duplicates: AtomicU64,
    /// Dead letters, by reason (index of `DeadLetterReason::ALL`).
    pub dead_letters: [AtomicU64; DeadLetterReason::ALL.len()],
    /// Batches committed.
    pub batches: AtomicU64,
    /// Frame bytes written to evidence segments.
    pub evidence_bytes: AtomicU64,
    /// Receipts published.
    pub receipts: AtomicU64,
    /// Status messages recorded.
    pub status_updates: AtomicU64,
    /// The broker connection: 0 where no ingest runs, 1 disconnected, 2 connected.
    broker: AtomicU8,
}

impl IngestMetrics {
    pub fn count_dead_letter(&self, reason: DeadLetterReason) {
        if let Some(i) = DeadLetterReason::ALL.iter().position(|r| *r == reason) {
            self.dead_letters[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether ingest holds its broker connection now; `None` where no ingest runs.
    pub fn broker_connected(&self) -> Option<bool> {
        match self.broker.load(Ordering::Acquire) {
            0 => None,
            state => Some(state == 2),
        }
    }

    pub fn set_broker_connected(&self, connected: bool) {
        self.broker
            .store(if connected { 2 } else { 1 }, Ordering::Release);
    }

    pub fn dead_letter_count(&self, reason: DeadLetterReason) -> u64 {
        DeadLetterReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map(|i| self.dead_letters[i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}
