//! Backing off between attempts, and a circuit breaker that stops asking a bus that
//! keeps failing. Time is passed in, so the state machine is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pause before attempt `attempt + 1` (`attempt` counts from 1): `base · 2^(attempt−1)`
/// capped at `max`, then scaled into its upper half by `jitter` ∈ [0, 1], so that
/// clients that failed together do not retry together.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exponent).min(max);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe may go; others wait for its result.
    HalfOpen {
        probing: bool,
    },
}

/// Opens after `threshold` consecutive failed attempts, answers "open" for
/// `cool_down`, then lets one probe through: its success closes the breaker, its
/// failure opens it again. Only unavailability counts as failure; a definite answer,
/// even a refusal, shows that the bus works.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

/// Leave to send one attempt. A probe's permit dropped without a result (the caller's
/// future was cancelled) frees the probe slot.
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    pub fn succeeded(mut self) {
        self.settled = true;
        self.breaker.set(State::Closed { failures: 0 });
    }

    /// Records a failed attempt; true when that opened the breaker.
    pub fn failed(mut self, now: Instant) -> bool {
        self.settled = true;
        let breaker = self.breaker;
        let mut state = breaker.lock();
        let was_open = matches!(*state, State::Open { .. });
        *state = match *state {
            State::Closed { failures } if failures + 1 < breaker.threshold => State::Closed {
                failures: failures + 1,
            },
            State::Open { until } if !self.probe => State::Open { until },
            _ => State::Open {
                until: now + breaker.cool_down,
            },
        };
        !was_open && matches!(*state, State::Open { .. })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            let mut state = self.breaker.lock();
            if *state == (State::HalfOpen { probing: true }) {
                *state = State::HalfOpen { probing: false };
            }
        }
    }
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cool_down,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// A permit, or how long until the breaker lets a probe through (zero while a
    /// probe is under way).
    pub fn try_acquire(&self, now: Instant) -> Result<Permit<'_>, Duration> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => return Err(Duration::ZERO),
        };
        Ok(Permit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    /// Whether requests are refused now.
    pub fn is_open(&self, now: Instant) -> bool {
        match *self.lock() {
            State::Closed { .. } => false,
            State::Open { until } => now < until,
            State::HalfOpen { probing } => probing,
        }
    }

    fn set(&self, state: State) {
        *self.lock() = state;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        let cases = [
            (1, 1.0, 100),
            (2, 1.0, 200),
            (3, 1.0, 400),
            (5, 1.0, 1000),
            (40, 1.0, 1000),
            (1, 0.0, 50),
            (3, 0.0, 200),
            (3, 0.5, 300),
        ];
        for (attempt, jitter, ms) in cases {
            assert_eq!(
                backoff_delay(attempt, base, max, jitter),
                Duration::from_millis(ms),
                "attempt {attempt} jitter {jitter}"
            );
        }
    }

    #[test]
    fn opens_half_opens_and_closes() {
        let cool = Duration::from_secs(10);
        let breaker = CircuitBreaker::new(3, cool);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(!breaker.try_acquire(t0).expect("closed").failed(t0));
        }
        assert!(!breaker.is_open(t0));
        assert!(breaker.try_acquire(t0).expect("closed").failed(t0));
        assert!(breaker.is_open(t0));
        assert_eq!(
            breaker.try_acquire(t0 + Duration::from_secs(4)).err(),
            Some(Duration::from_secs(6))
        );

        // After the cool-down one probe goes; a second caller waits.
        let later = t0 + cool;
        let probe = breaker.try_acquire(later).expect("probe");
        assert_eq!(breaker.try_acquire(later).err(), Some(Duration::ZERO));
        probe.failed(later);
        assert!(breaker.is_open(later + Duration::from_secs(9)));

        let again = later + cool;
        breaker.try_acquire(again).expect("probe").succeeded();
        assert!(!breaker.is_open(again));
        breaker.try_acquire(again).expect("closed").succeeded();
    }

    #[test]
    fn success_resets_the_count() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(1));
        let now = Instant::now();
        breaker.try_acquire(now).expect("closed").failed(now);
        breaker.try_acquire(now).expect("closed").succeeded();
        breaker.try_acquire(now).expect("closed").failed(now);
        assert!(!breaker.is_open(now));
    }

    #[test]
    fn a_dropped_probe_frees_the_slot() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(1));
        let t0 = Instant::now();
        breaker.try_acquire(t0).expect("closed").failed(t0);
        let later = t0 + Duration::from_secs(1);
        drop(breaker.try_acquire(later).expect("probe"));
        breaker.try_acquire(later).expect("a new probe").succeeded();
        assert!(!breaker.is_open(later));
    }
}
