//! How many refused messages of one topic are kept as dead letters: a camera's login
//! taken from a box at the roadside can publish thousands of messages a second on its
//! topic, and each refused one kept (up to 64 KiB) would fill the database's disk. Of
//! each minute's, an ingest process keeps the first few with their bytes and some more
//! with a prefix of them; the rest are counted by reason and stand as one `flood`
//! letter when their minute has ended (or ingest stops). Every one is still answered
//! with a `rejected` receipt and counted in the metrics.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kozomol_core::DeadLetterReason;
use kozomol_store::NewDeadLetter;

/// Refused messages of one topic kept in a minute by one ingest process.
pub const KEPT_PER_MINUTE: u32 = 60;

/// Of those, the first kept with their bytes (up to 64 KiB); the rest keep the first
/// [`PREFIX_BYTES`], enough to see what they were: a stolen login then adds at most
/// about 0.45 MiB a minute per process.
pub const WHOLE_PER_MINUTE: u32 = 6;
pub const PREFIX_BYTES: usize = 1024;

/// One topic's window: what it kept, and what it only counted.
#[derive(Clone, Debug)]
struct Window {
    started: DateTime<Utc>,
    kept: u32,
    camera_id: Option<String>,
    unkept: BTreeMap<&'static str, u32>,
    first_unkept: Option<DateTime<Utc>>,
    last_unkept: Option<DateTime<Utc>>,
}

impl Window {
    fn new(started: DateTime<Utc>) -> Window {
        Window {
            started,
            kept: 0,
            camera_id: None,
            unkept: BTreeMap::new(),
            first_unkept: None,
            last_unkept: None,
        }
    }

    /// The letter standing for the messages counted and not kept, if any.
    fn summary(&self, topic: &str, per_window: u32) -> Option<NewDeadLetter> {
        let (first, last) = (self.first_unkept?, self.last_unkept?);
        let total: u32 = self.unkept.values().sum();
        let by_reason: Vec<String> = self
            .unkept
            .iter()
            .map(|(reason, n)| format!("{reason} ×{n}"))
            .collect();
        Some(NewDeadLetter {
            received_at: last,
            topic: topic.to_owned(),
            camera_id: self.camera_id.clone(),
            event_id: None,
            reason: DeadLetterReason::Flood,
            detail: format!(
                "{total} more messages refused on this topic from {} to {} were not kept, \
                 beyond the {per_window} kept from {}: {}",
                first.to_rfc3339(),
                last.to_rfc3339(),
                self.started.to_rfc3339(),
                by_reason.join(", ")
            ),
            raw: Vec::new(),
            keep_bytes: None,
        })
    }
}

/// The refused messages kept per topic and window. Cloned before a write that may
/// fail, and put back when it does, so that a batch written again is not counted twice.
#[derive(Clone, Debug)]
pub struct DeadLetterAllowance {
    per_window: u32,
    whole_per_window: u32,
    window: Duration,
    windows: HashMap<String, Window>,
}

impl DeadLetterAllowance {
    pub fn new(per_window: u32, whole_per_window: u32, window: Duration) -> DeadLetterAllowance {
        DeadLetterAllowance {
            per_window,
            whole_per_window,
            window,
            windows: HashMap::new(),
        }
    }

    /// Whether `letter` is kept (beyond the window's first few, with a prefix of its
    /// bytes only); where it is not, it is counted in its topic's window. Letters of
    /// events kozomol failed to store (`unstorable`) are always kept whole.
    pub fn admit(&mut self, letter: &mut NewDeadLetter) -> bool {
        if letter.reason == DeadLetterReason::Unstorable {
            return true;
        }
        let window = self.window;
        let at = letter.received_at;
        let open = self
            .windows
            .entry(letter.topic.clone())
            .or_insert_with(|| Window::new(at));
        if ended(open.started, at, window) && open.first_unkept.is_none() {
            *open = Window::new(at);
        }
        if open.camera_id.is_none() {
            open.camera_id = letter.camera_id.clone();
        }
        if open.kept < self.per_window && open.first_unkept.is_none() {
            open.kept += 1;
            if open.kept > self.whole_per_window {
                letter.keep_bytes = Some(PREFIX_BYTES);
            }
            return true;
        }
        *open.unkept.entry(letter.reason.as_str()).or_insert(0) += 1;
        open.first_unkept.get_or_insert(at);
        open.last_unkept = Some(at);
        false
    }

    /// The `flood` letters of the windows ended by `now`, each window then closed; and
    /// the windows that kept all they saw forgotten.
    pub fn ended(&mut self, now: DateTime<Utc>) -> Vec<NewDeadLetter> {
        let window = self.window;
        self.close(|open| ended(open.started, now, window))
    }

    /// The `flood` letters of every window that counted messages, ended or not (ingest
    /// stopping: the counts would go with the process).
    pub fn counted(&mut self) -> Vec<NewDeadLetter> {
        self.close(|open| open.first_unkept.is_some())
    }

    fn close(&mut self, closing: impl Fn(&Window) -> bool) -> Vec<NewDeadLetter> {
        let per_window = self.per_window;
        let mut letters = Vec::new();
        self.windows.retain(|topic, open| {
            if !closing(open) {
                return true;
            }
            letters.extend(open.summary(topic, per_window));
            false
        });
        letters
    }
}

impl Default for DeadLetterAllowance {
    fn default() -> DeadLetterAllowance {
        DeadLetterAllowance::new(KEPT_PER_MINUTE, WHOLE_PER_MINUTE, Duration::from_secs(60))
    }
}

/// Whether a window opened at `started` is over at `at`.
fn ended(started: DateTime<Utc>, at: DateTime<Utc>, window: Duration) -> bool {
    (at - started).to_std().is_ok_and(|since| since >= window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(topic: &str, reason: DeadLetterReason, at_s: i64) -> NewDeadLetter {
        NewDeadLetter {
            received_at: DateTime::from_timestamp(1_795_000_000 + at_s, 0).expect("time"),
            topic: topic.into(),
            camera_id: Some("cam-1".into()),
            event_id: None,
            reason,
            detail: "refused".into(),
            raw: vec![1, 2, 3],
            keep_bytes: None,
        }
    }

    #[test]
    fn a_topic_keeps_its_allowance_a_window_and_counts_the_rest() {
        let mut allowance = DeadLetterAllowance::new(3, 2, Duration::from_secs(60));
        let a = "kozomol/v1/cameras/cam-1/violations";
        let b = "kozomol/v1/cameras/cam-2/violations";
        let kept: Vec<(bool, Option<usize>)> = [
            (a, DeadLetterReason::Malformed, 0),
            (a, DeadLetterReason::Malformed, 1),
            (b, DeadLetterReason::BadSignature, 1),
            (a, DeadLetterReason::BadSignature, 2),
            (a, DeadLetterReason::Malformed, 3),
            (a, DeadLetterReason::Unstorable, 4),
            (a, DeadLetterReason::BadSignature, 5),
            (a, DeadLetterReason::Malformed, 6),
        ]
        .into_iter()
        .map(|(topic, reason, at)| {
            let mut letter = letter(topic, reason, at);
            let kept = allowance.admit(&mut letter);
            (kept, letter.keep_bytes)
        })
        .collect();
        let prefix = Some(PREFIX_BYTES);
        assert_eq!(
            kept,
            [
                (true, None),
                (true, None),
                (true, None),
                (true, prefix),
                (false, None),
                (true, None),
                (false, None),
                (false, None)
            ],
            "three of a's (the third with a prefix of its bytes), b's one, and an \
             unstorable event whole whatever the count"
        );
        // Nothing has ended yet.
        assert!(allowance
            .ended(letter(a, DeadLetterReason::Malformed, 59).received_at)
            .is_empty());
        // A window that counted nothing it did not keep ends without a letter.
        let ended = allowance.ended(letter(a, DeadLetterReason::Malformed, 61).received_at);
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert_eq!(ended[0].reason, DeadLetterReason::Flood);
        assert_eq!(ended[0].topic, a);
        assert_eq!(ended[0].camera_id.as_deref(), Some("cam-1"));
        assert!(ended[0].raw.is_empty());
        assert_eq!(
            ended[0].received_at,
            letter(a, DeadLetterReason::Malformed, 6).received_at
        );
        assert!(
            ended[0].detail.contains("3 more messages")
                && ended[0].detail.contains("bad_signature ×1, malformed ×2"),
            "{}",
            ended[0].detail
        );
        // The next window keeps its allowance anew.
        assert!(allowance.admit(&mut letter(a, DeadLetterReason::Malformed, 62)));
    }

    #[test]
    fn a_window_with_letters_counted_stays_open_until_it_is_reported() {
        let mut allowance = DeadLetterAllowance::new(1, 1, Duration::from_secs(60));
        let a = "kozomol/v1/cameras/cam-1/violations";
        let mut admit = |at| allowance.admit(&mut letter(a, DeadLetterReason::Malformed, at));
        assert!(admit(0));
        assert!(!admit(10));
        // Past the minute but not yet reported: counted in the same window, not kept.
        assert!(!admit(70));
        let ended = allowance.ended(letter(a, DeadLetterReason::Malformed, 71).received_at);
        assert!(ended[0].detail.contains("2 more messages"), "{ended:?}");
        assert!(allowance.admit(&mut letter(a, DeadLetterReason::Malformed, 72)));
    }

    #[test]
    fn a_stopping_ingest_reports_what_its_open_windows_counted() {
        let mut allowance = DeadLetterAllowance::new(1, 1, Duration::from_secs(60));
        let (a, b) = ("cameras/cam-1", "cameras/cam-2");
        assert!(allowance.admit(&mut letter(a, DeadLetterReason::Malformed, 0)));
        assert!(!allowance.admit(&mut letter(a, DeadLetterReason::Malformed, 1)));
        assert!(allowance.admit(&mut letter(b, DeadLetterReason::Malformed, 1)));
        let counted = allowance.counted();
        assert_eq!(counted.len(), 1, "{counted:?}");
        assert_eq!(counted[0].topic, a);
        assert!(allowance.counted().is_empty(), "reported once");
    }
}
