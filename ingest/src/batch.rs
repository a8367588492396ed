//! One batch of violation messages made durable: frames appended to evidence segments
//! with one fsync, then cases, audit rows and dead letters committed; the caller acks
//! and sends receipts only after [`BatchWriter::write`] returns.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use kozomol_core::{CameraId, CaseId, DeadLetterReason};
use kozomol_store::{
    CameraRecord, CaseWrite, EvidenceRef, EvidenceStore, FrameLocation, NewCase, NewDeadLetter,
    NewFrame, Store, StoreError,
};

use crate::allowance::DeadLetterAllowance;
use crate::verify::{self, AcceptedEvent, Refusal, Verdict};
use crate::{IngestError, IngestMetrics};

/// How long a camera's register record is reused before it is read again.
const CAMERA_CACHE_TTL: Duration = Duration::from_secs(10);

/// What became of one message, in the order the messages were given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    Accepted {
        camera: CameraId,
        event_id: String,
        case_id: CaseId,
    },
    Duplicate {
        camera: CameraId,
        event_id: String,
        case_id: CaseId,
    },
    Rejected {
        camera: Option<String>,
        event_id: Option<String>,
        reason: DeadLetterReason,
        detail: String,
    },
}

/// How long a stopping ingest waits for the store to queue its uncommitted frames, or
/// to record what its dead-letter allowance counted.
const STOP_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A violation message as the broker delivered it, stamped when it arrived: a capture
/// is judged against its arrival (a camera clock running ahead), not against when a
/// batch that waited for the store was verified at last.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub topic: String,
    pub payload: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

impl Arrival {
    /// A message arriving now.
    pub fn now(topic: impl Into<String>, payload: Vec<u8>) -> Arrival {
        Arrival {
            topic: topic.into(),
            payload,
            received_at: Utc::now(),
        }
    }
}

/// Writes one ingest loop's batches of violation messages. A batch that fails is
/// written again as it is before any other (the loop retries it until it commits), and
/// the writer remembers what the failed attempt left for that retry: so each loop has
/// a writer of its own, never shared.
pub struct BatchWriter {
    store: Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
    metrics: Arc<IngestMetrics>,
    actor: String,
    local_offset: FixedOffset,
    cameras: Mutex<HashMap<CameraId, (Instant, CameraRecord)>>,
    /// Cases created by an attempt whose dead letters then could not be stored: the
    /// retry meets them as duplicates of itself and answers them as accepted still, so
    /// receipts and counters say once what happened. Emptied when a write succeeds.
    created_unanswered: Mutex<HashSet<CaseId>>,
    /// Frames appended by an attempt whose cases then did not commit, where they lie:
    /// the retry points its cases at these bytes instead of appending them again, so
    /// no copy is left that no row records (and destruction would never overwrite);
    /// those the retry no longer takes (its event now refused) are queued for
    /// overwriting. Emptied when cases commit.
    appended_uncommitted: Mutex<HashMap<[u8; 32], FrameLocation>>,
    /// For each event (by fingerprint) the store refused for its content in a batch of
    /// which it took nothing, since when and how often, attempt after attempt. Emptied
    /// when a write succeeds.
    refusal_runs: Mutex<HashMap<[u8; 32], RefusalRun>>,
    /// How long the events of a batch the store takes nothing of must go on being
    /// refused before they are given up ([`REFUSAL_SPAN`] unless a test says
    /// otherwise).
    refusal_span: Duration,
    /// The refused messages kept per topic and minute.
    allowance: Mutex<DeadLetterAllowance>,
}

/// An event refused attempt after attempt.
struct RefusalRun {
    since: Instant,
    attempts: u32,
}

/// A case written, or the store's refusal of it alone.
type CaseWritten = Result<CaseWrite, StoreError>;

/// Attempts running, and for how long, in which the store refuses the events of a batch
/// it takes nothing of before they are given up as `unstorable`: a row refused for what
/// it holds fails each time, a passing conflict with another writer does not; and
/// ingest waits that long (taking nothing else) before it gives up events on what might
/// be a store refusing every row.
const REFUSALS_TO_GIVE_UP: u32 = 3;
const REFUSAL_SPAN: Duration = Duration::from_secs(300);

enum Slot {
    Refused(Refusal),
    Verified(Box<AcceptedEvent>),
}

impl Slot {
    /// The camera the message came from, where known.
    fn camera(&self) -> Option<CameraId> {
        match self {
            Slot::Verified(accepted) => Some(accepted.envelope.event.camera_id.clone()),
            Slot::Refused(r) => CameraId::parse(r.camera_id.as_deref()?).ok(),
        }
    }
}

impl BatchWriter {
    pub fn new(
        store: Arc<dyn Store>,
        evidence: Arc<EvidenceStore>,
        metrics: Arc<IngestMetrics>,
        actor: String,
        local_offset: FixedOffset,
    ) -> Self {
        BatchWriter {
            store,
            evidence,
            metrics,
            actor,
            local_offset,
            cameras: Mutex::new(HashMap::new()),
            created_unanswered: Mutex::new(HashSet::new()),
            appended_uncommitted: Mutex::new(HashMap::new()),
            refusal_runs: Mutex::new(HashMap::new()),
            refusal_span: REFUSAL_SPAN,
            allowance: Mutex::new(DeadLetterAllowance::default()),
        }
    }

    /// This writer, keeping `per_window` refused messages of a topic each `window`, the
    /// first `whole` of them with their bytes (60 a minute, six
    /// whole, by default).
    pub fn keeping_dead_letters(mut self, per_window: u32, whole: u32, window: Duration) -> Self {
        self.allowance = Mutex::new(DeadLetterAllowance::new(per_window, whole, window));
        self
    }

    /// This writer, giving up the events of a batch the store takes nothing of after
    /// `span` of refusals (five minutes by default).
    pub fn giving_up_refusals_after(mut self, span: Duration) -> Self {
        self.refusal_span = span;
        self
    }

    /// Verifies and commits `messages`. On error nothing of the batch may be
    /// acknowledged; retrying the same batch is safe (dedupe by event id).
    pub async fn write(&self, messages: &[Arrival]) -> Result<Vec<BatchOutcome>, IngestError> {
        let started = Instant::now();
        let mut slots = self.verify(messages).await?;
        // A refusal by the register may come from a record cached before the camera
        // was registered anew (a new key, a new certificate): those cameras are read
        // again, and their messages checked once more against the fresh record, before
        // anything is refused for good.
        let refused_by: Vec<CameraId> = slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Refused(r)
                    if matches!(
                        r.reason,
                        DeadLetterReason::BadSignature | DeadLetterReason::RegisterMismatch
                    ) =>
                {
                    slot.camera()
                }
                _ => None,
            })
            .collect();
        if self.forget_cameras(&refused_by) {
            let of_them: Vec<usize> = (0..slots.len())
                .filter(|&at| slots[at].camera().is_some_and(|c| refused_by.contains(&c)))
                .collect();
            let again: Vec<Arrival> = of_them.iter().map(|&at| messages[at].clone()).collect();
            for (at, slot) in of_them.into_iter().zip(self.verify(&again).await?) {
                slots[at] = slot;
            }
        }

        let accepted: Vec<&AcceptedEvent> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Verified(a) => Some(a.as_ref()),
                Slot::Refused(_) => None,
            })
            .collect();
        // One span an event, from after its verification to the batch's commit,
        // following the camera's capture; the case keeps it for the stages after.
        let spans: Vec<tracing::Span> = accepted
            .iter()
            .map(|a| {
                let span = tracing::info_span!(
                    "ingest",
                    camera_id = %a.envelope.event.camera_id,
                    event_id = %a.envelope.event.event_id,
                    case_id = tracing::field::Empty,
                    outcome = tracing::field::Empty,
                );
                kozomol_telemetry::follow(&span, a.envelope.sign1.trace_parent);
                span
            })
            .collect();
        let locations = self.store_frames(&accepted).await?;
        let new_cases: Vec<NewCase> = accepted
            .iter()
            .zip(&spans)
            .map(|(a, span)| {
                // Where this process exports no spans, the camera's trace goes on as is.
                let trace = kozomol_telemetry::context_of(span).or(a.envelope.sign1.trace_parent);
                new_case(a, &locations, trace)
            })
            .collect::<Result<_, _>>()?;
        let (writes, failure) = if new_cases.is_empty() {
            (Vec::new(), None)
        } else {
            match self.store.record_cases(&new_cases, &self.actor).await {
                Ok(writes) => (writes.into_iter().map(Ok).collect(), None),
                Err(e) if e.is_refusal_of_content() => self.record_each(&new_cases, e).await,
                Err(e) => (Vec::new(), Some(e)),
            }
        };
        let writes = self.created_earlier(writes);
        // The frames the cases stored (or found stored) name; those only refused events
        // name are bytes no row will keep.
        let taken: HashMap<[u8; 32], FrameLocation> = new_cases
            .iter()
            .zip(&writes)
            .filter(|(_, write)| write.is_ok())
            .flat_map(|(case, _)| &case.frames)
            .filter_map(|f| Some((f.sha256, locations.get(&f.sha256)?.clone())))
            .collect();
        {
            let mut appended = self.lock_appended_uncommitted();
            appended.extend(locations);
            appended.retain(|sha256, _| !taken.contains_key(sha256));
        }
        let created = created_ids(&writes);
        if let Some(e) = failure {
            self.lock_created_unanswered().extend(created);
            return Err(e.into());
        }
        self.queue_appended_untaken(&taken).await;

        let mut writes = writes.into_iter();
        let mut spans = spans.into_iter();
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut dead_letters = Vec::new();
        for (slot, message) in slots.iter().zip(messages) {
            let outcome = match slot {
                Slot::Refused(r) => {
                    dead_letters.push(dead_letter(message, r.clone()));
                    rejected(r.clone())
                }
                Slot::Verified(a) => {
                    let camera = a.envelope.event.camera_id.clone();
                    let event_id = a.envelope.event.event_id.to_string();
                    let write = writes.next();
                    if let (Some(span), Some(write)) = (spans.next(), &write) {
                        let outcome = match write {
                            Ok(CaseWrite::Created(id) | CaseWrite::Duplicate(id)) => {
                                span.record("case_id", tracing::field::display(id));
                                if matches!(write, Ok(CaseWrite::Created(_))) {
                                    "created"
                                } else {
                                    "duplicate"
                                }
                            }
                            // Its id is the other event's case, not this one's.
                            Ok(CaseWrite::Conflict(_)) => "conflicting duplicate",
                            Err(_) => "unstorable",
                        };
                        span.record("outcome", outcome);
                    }
                    match write {
                        Some(Ok(CaseWrite::Created(case_id))) => BatchOutcome::Accepted {
                            camera,
                            event_id,
                            case_id,
                        },
                        Some(Ok(CaseWrite::Duplicate(case_id))) => BatchOutcome::Duplicate {
                            camera,
                            event_id,
                            case_id,
                        },
                        Some(Ok(CaseWrite::Conflict(case_id))) => {
                            let refusal = Refusal {
                                reason: DeadLetterReason::ConflictingDuplicate,
                                detail: format!(
                                    "event id already recorded as case {case_id} with other content"
                                ),
                                camera_id: Some(camera.to_string()),
                                event_id: Some(event_id),
                            };
                            dead_letters.push(dead_letter(message, refusal.clone()));
                            rejected(refusal)
                        }
                        Some(Err(e)) => {
                            let refusal = Refusal {
                                reason: DeadLetterReason::Unstorable,
                                detail: format!("the store refused the event: {e}"),
                                camera_id: Some(camera.to_string()),
                                event_id: Some(event_id),
                            };
                            dead_letters.push(dead_letter(message, refusal.clone()));
                            rejected(refusal)
                        }
                        None => {
                            return Err(IngestError::Store(kozomol_store::StoreError::Corrupt(
                                "record_cases returned fewer results than cases".into(),
                            )))
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        // A flood of refused messages on one topic is kept in part; the state is put
        // back where the letters are not stored, so that the retry counts them once.
        let (kept, before) = {
            let mut allowance = self.lock_allowance();
            let before = allowance.clone();
            let mut kept = allowance.ended(Utc::now());
            for mut letter in dead_letters {
                if allowance.admit(&mut letter) {
                    tracing::warn!(
                        reason = %letter.reason,
                        camera = letter.camera_id.as_deref().unwrap_or("-"),
                        detail = %letter.detail,
                        "message dead-lettered"
                    );
                    kept.push(letter);
                } else {
                    tracing::debug!(reason = %letter.reason, topic = %letter.topic, "message refused beyond its topic's allowance; counted, not kept");
                }
            }
            (kept, before)
        };
        if !kept.is_empty() {
            if let Err(e) = self.store.record_dead_letters(&kept).await {
                *self.lock_allowance() = before;
                self.lock_created_unanswered().extend(created);
                return Err(e.into());
            }
        }
        self.lock_created_unanswered().clear();
        self.lock_refusal_runs().clear();
        self.count(&outcomes);
        tracing::debug!(
            messages = messages.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch committed"
        );
        Ok(outcomes)
    }

    /// `writes` with each duplicate of a case a failed attempt before created answered
    /// as created.
    fn created_earlier(&self, writes: Vec<CaseWritten>) -> Vec<CaseWritten> {
        let unanswered = self.lock_created_unanswered();
        if unanswered.is_empty() {
            return writes;
        }
        writes
            .into_iter()
            .map(|w| match w {
                Ok(CaseWrite::Duplicate(id)) if unanswered.contains(&id) => {
                    Ok(CaseWrite::Created(id))
                }
                other => other,
            })
            .collect()
    }

    /// The batch's cases written one at a time, after the store refused them together
    /// for what one of them holds; with the failure that ends the attempt, if any. A
    /// case the store refuses alone for its content, where another case of the batch
    /// was stored (or found stored), is given up: dead-lettered whole as `unstorable`,
    /// not retried for ever with its batch. Where the store takes no case of the batch,
    /// that may be the store's fault and not the events' (a migration the running code
    /// does not know, a wrong constraint): the batch waits, and is given up whole only
    /// once each of its cases has been refused so on [`REFUSALS_TO_GIVE_UP`] attempts over
    /// `refusal_span` — so that bad events cannot stop ingest for good, and a store
    /// refusing every row sets aside, whole, one batch a span. Any other failure fails
    /// the attempt, and its retry answers the cases stored meanwhile as created.
    async fn record_each(
        &self,
        cases: &[NewCase],
        together: StoreError,
    ) -> (Vec<CaseWritten>, Option<StoreError>) {
        tracing::warn!(error = %together, cases = cases.len(), "the store refused a batch's cases together; writing them one at a time");
        let mut writes: Vec<CaseWritten> = Vec::with_capacity(cases.len());
        for case in cases {
            match self
                .store
                .record_cases(std::slice::from_ref(case), &self.actor)
                .await
            {
                Ok(mut one) if one.len() == 1 => writes.push(Ok(one.remove(0))),
                Ok(_) => {
                    let miscount = "record_cases returned another count of results than cases";
                    return (writes, Some(StoreError::Corrupt(miscount.into())));
                }
                Err(e) if e.is_refusal_of_content() => writes.push(Err(e)),
                Err(e) => return (writes, Some(e)),
            }
        }
        if writes.iter().any(Result::is_ok) {
            return (writes, None);
        }
        let given_up = {
            let mut runs = self.lock_refusal_runs();
            let mut given_up = true;
            for case in cases {
                let run = runs.entry(case.fingerprint).or_insert_with(|| RefusalRun {
                    since: Instant::now(),
                    attempts: 0,
                });
                run.attempts += 1;
                given_up &=
                    run.attempts >= REFUSALS_TO_GIVE_UP && run.since.elapsed() >= self.refusal_span;
            }
            given_up
        };
        if given_up {
            (writes, None)
        } else {
            (writes, Some(together))
        }
    }

    /// Once the attempt's cases (if it had any) committed: the frames the failed
    /// attempt before appended that they did not name (`taken`) are bytes no row will
    /// keep, queued for overwriting; remembered still where the store cannot queue them
    /// now, for the next write to try again.
    async fn queue_appended_untaken(&self, taken: &HashMap<[u8; 32], FrameLocation>) {
        let untaken: Vec<EvidenceRef> = {
            let mut appended = self.lock_appended_uncommitted();
            appended
                .drain()
                .filter(|(hash, _)| !taken.contains_key(hash))
                .map(|(sha256, location)| EvidenceRef { sha256, location })
                .collect()
        };
        if untaken.is_empty() {
            return;
        }
        if let Err(e) = self.store.queue_unkept(&untaken).await {
            tracing::warn!(error = %e, frames = untaken.len(), "frames appended for a batch that did not commit not queued for overwriting; tried again with the next batch");
            self.lock_appended_uncommitted()
                .extend(untaken.into_iter().map(|e| (e.sha256, e.location)));
        }
    }

    /// Before ingest stops with a batch uncommitted (cancelled, or a write the store
    /// refuses): the frames its attempts appended are queued for overwriting, since the
    /// broker hands the unacked messages to the next process, which appends them anew.
    /// One try; where the store cannot take them now, each location is logged for an
    /// operator to overwrite.
    pub async fn queue_uncommitted_on_stop(&self) {
        let appended = self.appended_snapshot();
        if appended.is_empty() {
            return;
        }
        // The store is often what the batch was waiting for: the stop waits on it a
        // few seconds at most.
        let queued = tokio::time::timeout(
            STOP_QUEUE_WAIT,
            self.queue_appended_untaken(&HashMap::new()),
        )
        .await;
        // Not taken (left for a next batch that will not come), or not answered in time.
        let unqueued = match queued {
            Ok(()) => self.appended_snapshot(),
            Err(_) => appended,
        };
        for (sha256, location) in unqueued {
            tracing::error!(
                sha256 = %hex::encode(sha256),
                segment = %location.segment,
                offset = location.offset,
                "a frame appended for a batch that never committed is in no overwrite queue"
            );
        }
    }

    /// Before ingest stops: the refused messages counted and not kept are stored as
    /// their `flood` letters, whether or not their minute has ended (the counts would go
    /// with the process). One try, a few seconds at most; what the store does not take
    /// is logged.
    pub async fn record_floods_on_stop(&self) {
        let letters = self.lock_allowance().counted();
        if letters.is_empty() {
            return;
        }
        let recorded =
            tokio::time::timeout(STOP_QUEUE_WAIT, self.store.record_dead_letters(&letters)).await;
        if !matches!(recorded, Ok(Ok(()))) {
            for letter in &letters {
                tracing::error!(topic = %letter.topic, detail = %letter.detail, "refused messages counted and not kept were not recorded before ingest stopped");
            }
        }
    }

    fn appended_snapshot(&self) -> Vec<([u8; 32], FrameLocation)> {
        self.lock_appended_uncommitted()
            .iter()
            .map(|(sha256, location)| (*sha256, location.clone()))
            .collect()
    }

    // Sets of ids and locations stay whole whatever panicked while they were held.
    fn lock_created_unanswered(&self) -> MutexGuard<'_, HashSet<CaseId>> {
        self.created_unanswered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_allowance(&self) -> MutexGuard<'_, DeadLetterAllowance> {
        self.allowance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_refusal_runs(&self) -> MutexGuard<'_, HashMap<[u8; 32], RefusalRun>> {
        self.refusal_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_appended_uncommitted(&self) -> MutexGuard<'_, HashMap<[u8; 32], FrameLocation>> {
        self.appended_uncommitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends the frames not already stored, one fsync for the batch; returns where
    /// each frame the store did not know lies (appended now, or by a failed attempt).
    async fn store_frames(
        &self,
        accepted: &[&AcceptedEvent],
    ) -> Result<HashMap<[u8; 32], FrameLocation>, IngestError> {
        let mut hashes: Vec<[u8; 32]> = Vec::new();
        let mut seen = HashSet::new();
        for a in accepted {
            for f in &a.envelope.event.frames {
                if let Ok(h) = <[u8; 32]>::try_from(f.sha256.as_slice()) {
                    if seen.insert(h) {
                        hashes.push(h);
                    }
                }
            }
        }
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let known = self.store.known_frames(&hashes).await?;
        let mut appended_before = HashMap::new();
        let mut to_write: Vec<([u8; 32], Vec<u8>)> = Vec::new();
        {
            let appended = self.lock_appended_uncommitted();
            let mut queued = HashSet::new();
            for a in accepted {
                for (f, bytes) in a.envelope.event.frames.iter().zip(&a.envelope.frames) {
                    let Ok(h) = <[u8; 32]>::try_from(f.sha256.as_slice()) else {
                        continue;
                    };
                    if !queued.insert(h) {
                        continue;
                    }
                    // Bytes a failed attempt appended are named even where the store
                    // knows their blob by now (stored since by another process): the
                    // store records them as a copy, overwritten with the case file.
                    match appended.get(&h) {
                        Some(location) => {
                            appended_before.insert(h, location.clone());
                        }
                        None if !known.contains(&h) => to_write.push((h, bytes.clone())),
                        None => {}
                    }
                }
            }
        }
        if to_write.is_empty() {
            return Ok(appended_before);
        }
        let evidence = Arc::clone(&self.evidence);
        let bytes_total: usize = to_write.iter().map(|(_, b)| b.len()).sum();
        let written = tokio::task::spawn_blocking(move || {
            let frames: Vec<&[u8]> = to_write.iter().map(|(_, b)| b.as_slice()).collect();
            evidence.append_batch(&frames).map(|locs| {
                to_write
                    .iter()
                    .map(|(h, _)| *h)
                    .zip(locs)
                    .collect::<HashMap<_, _>>()
            })
        })
        .await??;
        self.metrics
            .evidence_bytes
            .fetch_add(bytes_total as u64, Ordering::Relaxed);
        Ok(written.into_iter().chain(appended_before).collect())
    }

    /// Decodes `messages` and checks each against its camera's register record.
    async fn verify(&self, messages: &[Arrival]) -> Result<Vec<Slot>, IngestError> {
        let decoded = {
            let messages = messages.to_vec();
            tokio::task::spawn_blocking(move || {
                messages
                    .iter()
                    .map(|m| verify::decode(&m.topic, &m.payload))
                    .collect::<Vec<_>>()
            })
            .await?
        };
        let arrivals: Vec<DateTime<Utc>> = messages.iter().map(|m| m.received_at).collect();
        let mut cameras: HashMap<CameraId, Option<CameraRecord>> = HashMap::new();
        for (camera, _) in decoded.iter().flatten() {
            if !cameras.contains_key(camera) {
                let record = self.camera(camera).await?;
                cameras.insert(camera.clone(), record);
            }
        }
        let offset = self.local_offset;
        Ok(tokio::task::spawn_blocking(move || {
            decoded
                .into_iter()
                .zip(arrivals)
                .map(|(d, received_at)| match d {
                    Err(refusal) => Slot::Refused(refusal),
                    Ok((camera, envelope)) => {
                        let record = cameras.get(&camera).and_then(Option::as_ref);
                        match verify::check_event(envelope, record, offset, received_at) {
                            Verdict::Accept(accepted) => Slot::Verified(accepted),
                            Verdict::Refuse(refusal) => Slot::Refused(refusal),
                        }
                    }
                })
                .collect()
        })
        .await?)
    }

    /// Drops `ids` from the register cache; whether any was there.
    fn forget_cameras(&self, ids: &[CameraId]) -> bool {
        let Ok(mut cache) = self.cameras.lock() else {
            return false;
        };
        let mut forgot = false;
        for id in ids {
            forgot |= cache.remove(id).is_some();
        }
        forgot
    }

    async fn camera(&self, id: &CameraId) -> Result<Option<CameraRecord>, IngestError> {
        if let Ok(cache) = self.cameras.lock() {
            if let Some((at, record)) = cache.get(id) {
                if at.elapsed() < CAMERA_CACHE_TTL {
                    return Ok(Some(record.clone()));
                }
            }
        }
        let record = self.store.camera(id).await?;
        if let (Some(record), Ok(mut cache)) = (&record, self.cameras.lock()) {
            cache.insert(id.clone(), (Instant::now(), record.clone()));
        }
        Ok(record)
    }

    fn count(&self, outcomes: &[BatchOutcome]) {
        let m = &self.metrics;
        m.batches.fetch_add(1, Ordering::Relaxed);
        m.messages
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        for outcome in outcomes {
            match outcome {
                BatchOutcome::Accepted { .. } => {
                    m.accepted.fetch_add(1, Ordering::Relaxed);
                }
                BatchOutcome::Duplicate { .. } => {
                    m.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                BatchOutcome::Rejected { reason, .. } => m.count_dead_letter(*reason),
            }
        }
    }
}

/// The cases `writes` created.
fn created_ids(writes: &[CaseWritten]) -> Vec<CaseId> {
    writes
        .iter()
        .filter_map(|w| match w {
            Ok(CaseWrite::Created(id)) => Some(*id),
            _ => None,
        })
        .collect()
}

fn rejected(r: Refusal) -> BatchOutcome {
    BatchOutcome::Rejected {
        camera: r.camera_id,
        event_id: r.event_id,
        reason: r.reason,
        detail: r.detail,
    }
}

fn dead_letter(message: &Arrival, r: Refusal) -> NewDeadLetter {
    NewDeadLetter {
        received_at: message.received_at,
        topic: printable(&message.topic).chars().take(512).collect(),
        camera_id: r.camera_id,
        event_id: r.event_id,
        reason: r.reason,
        detail: printable(&r.detail),
        raw: message.payload.clone(),
        keep_bytes: None,
    }
}

/// `text` with its control characters escaped (`\u{0}`, `\n`): a dead letter's topic
/// and detail may quote what a sender wrote, and a NUL would make PostgreSQL refuse the
/// row — and with it the batch, which waits until it is stored.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn new_case(
    a: &AcceptedEvent,
    locations: &HashMap<[u8; 32], FrameLocation>,
    trace_parent: Option<kozomol_core::TraceParent>,
) -> Result<NewCase, IngestError> {
    let event = &a.envelope.event;
    let frames = event
        .frames
        .iter()
        .map(|f| {
            let sha256 = <[u8; 32]>::try_from(f.sha256.as_slice()).unwrap_or([0; 32]);
            NewFrame {
                role: f.role,
                sha256,
                // Frames already stored keep their first location; the store ignores this one.
                location: locations.get(&sha256).cloned().unwrap_or(FrameLocation {
                    segment: String::new(),
                    offset: 0,
                    len: f.len,
                }),
            }
        })
        .collect();
    Ok(NewCase {
        event_id: event.event_id,
        camera_id: event.camera_id.clone(),
        captured_at: event.captured_at().unwrap_or_else(Utc::now),
        kind: event.kind,
        fingerprint: a.envelope.fingerprint(),
        event: event_json(event),
        camera_plate: event.plate_read.as_ref().map(|p| p.text.clone()),
        enforceable: a.enforceable,
        enforceability_note: a.enforceability_note.clone(),
        frames,
        trace_parent,
    })
}

/// The signed event as JSON for readers, with frame hashes in hex.
fn event_json(event: &kozomol_core::ViolationEvent) -> serde_json::Value {
    let mut value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    if let Some(frames) = value.get_mut("frames").and_then(|f| f.as_array_mut()) {
        for (json, frame) in frames.iter_mut().zip(&event.frames) {
            json["sha256"] = serde_json::Value::String(hex::encode(&frame.sha256));
        }
    }
    value
}
