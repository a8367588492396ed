//! What the pipeline's stages count, for the operators' `/metrics` page: items done,
//! failed passes, and how long each pass took (a histogram), per stage.
//!
//! A stage is a loop of passes (claim a batch, work it, commit): the recognizer per
//! case, each fines stage per batch. Recorded once per pass, so a lock is no cost.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds (seconds) of the pass-duration buckets; the last bucket is +Inf.
pub const PASS_SECONDS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One stage's counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageCounts {
    /// Passes that found work and finished.
    pub passes: u64,
    /// Items (cases, resolutions, messages) those passes handled.
    pub items: u64,
    /// Passes that failed (the database was down, the bus answered with an error).
    pub failures: u64,
    /// Passes per bucket of [`PASS_SECONDS_BUCKETS`], not cumulative; the last is +Inf.
    pub buckets: [u64; PASS_SECONDS_BUCKETS.len() + 1],
    /// Seconds of every pass counted in `buckets`, added up.
    pub seconds: f64,
}

/// Every stage's counts in one process, by stage name.
#[derive(Debug, Default)]
pub struct StageMetrics {
    stages: Mutex<BTreeMap<&'static str, StageCounts>>,
}

impl StageMetrics {
    /// A pass of `stage` that handled `items` in `took`. Passes that found nothing to
    /// do are not recorded: they would bury the work's latency under idle polls.
    pub fn record_pass(&self, stage: &'static str, items: usize, took: Duration) {
        if items == 0 {
            return;
        }
        let secs = took.as_secs_f64();
        let bucket = PASS_SECONDS_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(PASS_SECONDS_BUCKETS.len());
        self.with(stage, |c| {
            c.passes += 1;
            c.items += items as u64;
            c.buckets[bucket] += 1;
            c.seconds += secs;
        });
    }

    /// A pass of `stage` that failed.
    pub fn record_failure(&self, stage: &'static str) {
        self.with(stage, |c| c.failures += 1);
    }

    /// Every stage seen so far, by name.
    pub fn snapshot(&self) -> Vec<(&'static str, StageCounts)> {
        let stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        stages.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    fn with(&self, stage: &'static str, f: impl FnOnce(&mut StageCounts)) {
        // A panic elsewhere while holding the lock leaves counts, not broken state.
        let mut stages = self.stages.lock().unwrap_or_else(PoisonError::into_inner);
        f(stages.entry(stage).or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_fall_into_their_buckets() {
        let m = StageMetrics::default();
        let cases: [(u64, usize); 5] = [(1, 0), (7, 1), (50, 3), (2_000, 8), (60_000, 12)];
        for (ms, bucket) in cases {
            let before = m
                .snapshot()
                .first()
                .map(|(_, c)| c.buckets[bucket])
                .unwrap_or(0);
            m.record_pass("recognition", 2, Duration::from_millis(ms));
            let after = m.snapshot()[0].1.buckets[bucket];
            assert_eq!(after, before + 1, "{ms} ms belongs in bucket {bucket}");
        }
        let (name, counts) = &m.snapshot()[0];
        assert_eq!(*name, "recognition");
        assert_eq!((counts.passes, counts.items), (5, 10));
        assert!((counts.seconds - 62.058).abs() < 1e-9);
    }

    #[test]
    fn idle_passes_are_not_counted_and_failures_are() {
        let m = StageMetrics::default();
        m.record_pass("issuing", 0, Duration::from_millis(5));
        assert!(m.snapshot().is_empty());
        m.record_failure("issuing");
        m.record_failure("issuing");
        assert_eq!(m.snapshot()[0].1.failures, 2);
        assert_eq!(m.snapshot()[0].1.passes, 0);
    }
}
