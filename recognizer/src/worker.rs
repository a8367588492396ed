//! The recognition worker: takes leased jobs from the store, reads the plate on each
//! case's frames, keeps the plate crop as evidence and moves the case to `recognized`
//! or `needs_review` by the dual-read rule ([`decide`]). Several workers, in one
//! process or many, share the queue: the store's leases keep them off each other's
//! cases, and a crashed worker's cases come back when its lease ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use kozomol_core::stage_metrics::StageMetrics;
use kozomol_core::{CaseId, FrameRole, PlateRead};
use kozomol_store::{
    CameraPlateRead, CompleteResult, EvidenceRef, EvidenceStore, FailResult, PlateBox,
    RecognitionDecision, RecognitionJob, RecognitionOutcome, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument, Span};

use crate::plates::{canonicalise, number_of};
use crate::{PlateReading, Recognizer, RecognizerError, View};

/// When a read may decide a case without a person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// With no camera read, our read alone decides at or above this confidence (0–1).
    pub auto_accept: f32,
    /// With a camera read that says the same, our read decides at or above this
    /// confidence: two independent reads agreeing are strong evidence.
    pub agreement_accept: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            auto_accept: 0.90,
            agreement_accept: 0.50,
        }
    }
}

/// Our read of a case: the text, its confidence, and whether it may decide the case
/// alone ([`crate::PlateText::may_decide_alone`]: a read in no known format is often a
/// plate line cut short).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OurRead<'a> {
    pub text: &'a str,
    pub confidence: f32,
    pub may_decide_alone: bool,
}

/// The dual-read rule. Returns where the case goes and whether the two reads agree
/// (`None` when there is no camera read or no read of ours to compare).
pub fn decide(
    camera: Option<&str>,
    ours: Option<OurRead<'_>>,
    thresholds: &Thresholds,
) -> (RecognitionDecision, Option<bool>) {
    use RecognitionDecision::{NeedsReview, Recognized};
    let Some(OurRead {
        text,
        confidence,
        may_decide_alone,
    }) = ours.filter(|r| !r.text.is_empty())
    else {
        return (NeedsReview, None);
    };
    // The camera's read as a number: a camera may report the printed "KG" ours leaves out.
    let camera = camera.map(number_of).filter(|c| !c.is_empty());
    match camera {
        Some(camera) => {
            let agree = camera == text;
            let decision = if agree && confidence >= thresholds.agreement_accept {
                Recognized
            } else {
                NeedsReview
            };
            (decision, Some(agree))
        }
        // Alone, a read decides only where it may (a known format, a look that can be
        // trusted): no second read vouches for it.
        None if may_decide_alone && confidence >= thresholds.auto_accept => (Recognized, None),
        None => (NeedsReview, None),
    }
}

/// The stage name the worker's counts go under.
const STAGE: &str = "recognition";

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique among the workers sharing the store (for example `host-pid`).
    pub worker: String,
    /// Jobs claimed at a time.
    pub batch: u32,
    /// How long a claim is ours; longer than the slowest batch takes.
    pub lease: Duration,
    /// How long to wait before looking again when the queue is empty.
    pub idle_poll: Duration,
    /// The pause after a pass failed (the database is down, say).
    pub error_backoff: Duration,
    /// A case whose frames could not be read is tried again after this...
    pub retry_after: Duration,
    /// ...at most this many times, then it goes to review with the error.
    pub max_attempts: u32,
    pub thresholds: Thresholds,
    /// Counts each case read (stage `recognition`): its time is the recognizer's
    /// latency, frames from evidence to the best plate.
    pub metrics: Arc<StageMetrics>,
}

impl WorkerConfig {
    pub fn new(worker: impl Into<String>) -> Self {
        WorkerConfig {
            worker: worker.into(),
            batch: 8,
            lease: Duration::from_secs(120),
            idle_poll: Duration::from_millis(500),
            error_backoff: Duration::from_secs(2),
            retry_after: Duration::from_secs(30),
            max_attempts: 3,
            thresholds: Thresholds::default(),
            metrics: Arc::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("a recognition task stopped: {0}")]
    Task(String),
}

/// What happened to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    Decided(RecognitionDecision),
    /// The frames could not be read; the case is retried later or sent to review.
    Failed(FailResult),
    /// Another worker holds the case now; nothing was written.
    LeaseLost,
}

/// Runs until `cancel` fires: claim, recognise, record, repeat.
pub async fn run(
    config: WorkerConfig,
    recognizer: Arc<Recognizer>,
    store: Arc<dyn Store>,
    evidence: Arc<EvidenceStore>,
    cancel: CancellationToken,
) -> Result<(), WorkerError> {
    info!(worker = %config.worker, model = recognizer.model_name(), "recognizer worker started");
    while !cancel.is_cancelled() {
        // A database that is down stops nothing: the leases keep the claimed cases,
        // and the worker looks again after a pause.
        let pause = match run_once(&config, &recognizer, &store, &evidence, &cancel).await {
            Ok(done) if done.is_empty() => config.idle_poll,
            Ok(_) => continue,
            Err(e) => {
                config.metrics.record_failure(STAGE);
                warn!(worker = %config.worker, error = %e, "recognition pass failed; trying again");
                config.error_backoff
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    info!(worker = %config.worker, "recognizer worker stopped");
    Ok(())
}

/// Claims one batch and handles every job in it; returns what became of each.
/// `cancel` ends the waits for a store that could not record a read.
pub async fn run_once(
    config: &WorkerConfig,
    recognizer: &Arc<Recognizer>,
    store: &Arc<dyn Store>,
    evidence: &Arc<EvidenceStore>,
    cancel: &CancellationToken,
) -> Result<Vec<(CaseId, JobResult)>, WorkerError> {
    // The lease as this process's monotonic clock sees it (PostgreSQL dates leases by
    // its own clock): how long a read the store fails may be tried again.
    let lease_ends = Instant::now() + config.lease;
    let jobs = store
        .claim_recognition(&config.worker, config.batch, config.lease)
        .await?;
    let ids: Vec<CaseId> = jobs.iter().map(|job| job.case_id).collect();
    let traces = kozomol_telemetry::parents_of(store.trace_parents(&ids)).await;
    let mut results = Vec::with_capacity(jobs.len());
    let mut first_error = None;
    for job in jobs {
        // A worker stopping reads no more: the rest are given back uncounted (their
        // claims are no attempt of theirs), or come back when their lease ends.
        if cancel.is_cancelled() {
            let given_back = store
                .fail_recognition(
                    &config.worker,
                    job.case_id,
                    "the worker stopped before reading it",
                    Duration::ZERO,
                    None,
                )
                .await;
            if let Err(e) = given_back {
                warn!(case_id = %job.case_id, error = %e, "case not given back; it returns when its lease ends");
            }
            continue;
        }
        let case_id = job.case_id;
        // One job's error (a task that panicked, the store failing on its write) does
        // not abandon the rest of the batch; its own case returns after the lease.
        // Every line logged while the job is handled names its case; the span joins
        // the case's trace.
        let span = info_span!("case", otel.name = "recognize", case_id = %case_id);
        kozomol_telemetry::follow(&span, traces.get(&case_id).copied());
        match handle(config, recognizer, store, evidence, job, lease_ends, cancel)
            .instrument(span)
            .await
        {
            Ok(result) => {
                info!(case_id = %case_id, ?result, "recognition job done");
                results.push((case_id, result));
            }
            Err(e) => {
                warn!(case_id = %case_id, error = %e, "recognition job not finished");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if results.is_empty() => Err(e),
        _ => Ok(results),
    }
}

/// A read of one frame: the best plate on it.
struct FrameRead {
    frame_index: u32,
    plate: PlateReading,
}

/// Why a job's frames gave no result. `permanent` errors (bad JPEG bytes) will not
/// change on a retry, so the case goes to review at once; an `outage` (the evidence
/// store cannot take the crop: a full disk) is no fault of the case, which is tried
/// again without using up its attempts.
struct JobFailure {
    message: String,
    permanent: bool,
    outage: bool,
}

async fn handle(
    config: &WorkerConfig,
    recognizer: &Arc<Recognizer>,
    store: &Arc<dyn Store>,
    evidence: &Arc<EvidenceStore>,
    job: RecognitionJob,
    lease_ends: Instant,
    cancel: &CancellationToken,
) -> Result<JobResult, WorkerError> {
    let started = Instant::now();
    // Claimed more often than a case may fail, though outages are not counted: its
    // earlier claims ended without an outcome — a worker stopped while reading it (a
    // crash inside the reader kills the process, and would again every time).
    let read = if job.attempt > config.max_attempts {
        Err(JobFailure {
            message: format!(
                "claimed {} times without an outcome: a worker stopped while reading it",
                job.attempt - 1
            ),
            permanent: true,
            outage: false,
        })
    } else {
        let (recognizer, evidence, job, thresholds) = (
            Arc::clone(recognizer),
            Arc::clone(evidence),
            job.clone(),
            config.thresholds,
        );
        let span = Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| read_job(&recognizer, &evidence, &job, &thresholds))
        })
        .await
        // A reader that panics on a case is a failed attempt like any other, so the
        // case reaches review after `max_attempts` rather than returning for ever.
        .unwrap_or_else(|e| {
            Err(JobFailure {
                message: format!("the reader stopped: {e}"),
                permanent: false,
                outage: false,
            })
        })
    };
    // The plate crop is evidence: a read whose crop cannot be stored (a full disk)
    // fails like an unreadable frame, and the case is tried again later.
    let stored = match read {
        Ok(best) => store_crop(evidence, best).await?,
        Err(failure) => Err(failure),
    };
    let (best, crop) = match stored {
        Ok(read) => {
            config.metrics.record_pass(STAGE, 1, started.elapsed());
            read
        }
        Err(failure) => {
            config.metrics.record_failure(STAGE);
            warn!(case_id = %job.case_id, attempt = job.attempt, error = %failure.message, "recognition failed");
            let max_attempts = if failure.permanent {
                Some(job.attempt)
            } else if failure.outage {
                // Not the case's fault: the claim is given back.
                None
            } else {
                Some(config.max_attempts)
            };
            let result = store
                .fail_recognition(
                    &config.worker,
                    job.case_id,
                    &failure.message,
                    config.retry_after,
                    max_attempts,
                )
                .await?;
            return Ok(match result {
                FailResult::LeaseLost => JobResult::LeaseLost,
                other => JobResult::Failed(other),
            });
        }
    };

    let outcome = outcome(
        &job,
        best.as_ref(),
        crop,
        recognizer.model_name(),
        &config.thresholds,
    );
    let decision = outcome.decision;
    Ok(
        match record_outcome(config, store, &outcome, lease_ends, cancel).await? {
            CompleteResult::Completed => JobResult::Decided(decision),
            CompleteResult::LeaseLost => JobResult::LeaseLost,
        },
    )
}

/// Records a read. Its plate crop is in an evidence segment already, and only a
/// recorded outcome (or a lost lease's) keeps track of those bytes, to be overwritten
/// with the case file: so a write the store fails for a passing reason (a restarted
/// PostgreSQL fails one statement on each pooled connection) is tried again, 200 ms
/// doubling to 5 s, until `lease_ends` and once more then. A write refused for good,
/// or still failing then (or when the worker stops), queues the crop for overwriting,
/// and where even that fails the log names where it lies.
async fn record_outcome(
    config: &WorkerConfig,
    store: &Arc<dyn Store>,
    outcome: &RecognitionOutcome,
    lease_ends: Instant,
    cancel: &CancellationToken,
) -> Result<CompleteResult, WorkerError> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let err = match store.complete_recognition(&config.worker, outcome).await {
            Ok(result) => return Ok(result),
            Err(e) => e,
        };
        let left = lease_ends.saturating_duration_since(Instant::now());
        if err.is_transient() && !left.is_zero() && !cancel.is_cancelled() {
            let pause = backoff.min(left);
            warn!(case_id = %outcome.case_id, error = %err, retry_in_ms = pause.as_millis() as u64, "recognition not recorded; trying again");
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        if let Some(crop) = &outcome.crop {
            // The next attempt stores its own crop.
            if let Err(queue_err) = store.queue_unkept(std::slice::from_ref(crop)).await {
                tracing::error!(
                    case_id = %outcome.case_id,
                    sha256 = %hex::encode(crop.sha256),
                    segment = %crop.location.segment,
                    offset = crop.location.offset,
                    len = crop.location.len,
                    error = %queue_err,
                    "a plate crop was stored but not recorded: it is in no overwrite queue"
                );
            }
        }
        return Err(err.into());
    }
}

/// Keeps the best read's plate crop as evidence; a failure to store it is the job's.
async fn store_crop(
    evidence: &Arc<EvidenceStore>,
    best: Option<FrameRead>,
) -> Result<Result<(Option<FrameRead>, Option<EvidenceRef>), JobFailure>, WorkerError> {
    let Some(read) = best else {
        return Ok(Ok((None, None)));
    };
    let jpeg = encode_crop(&read.plate.crop);
    let evidence = Arc::clone(evidence);
    let stored = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let jpeg = jpeg?;
        let location = evidence.append_batch(&[&jpeg])?.remove(0);
        Ok(EvidenceRef {
            sha256: sha256(&jpeg),
            location,
        })
    })
    .await
    .map_err(|e| WorkerError::Task(e.to_string()))?;
    Ok(match stored {
        Ok(crop) => Ok((Some(read), Some(crop))),
        Err(e) => Err(JobFailure {
            message: format!("storing the plate crop: {e}"),
            permanent: false,
            outage: true,
        }),
    })
}

/// Reads the job's frames, the close-up first, until a read decides the case (the
/// dual-read rule would accept it): the rest could only offer a read the case no
/// longer needs, and each overview costs as much as the close-up or more. Without a
/// deciding read every frame is read and the best plate kept: one in a known format
/// first, then the most confident. Blocking.
fn read_job(
    recognizer: &Recognizer,
    evidence: &EvidenceStore,
    job: &RecognitionJob,
    thresholds: &Thresholds,
) -> Result<Option<FrameRead>, JobFailure> {
    let mut best: Option<FrameRead> = None;
    // The close-up shows the plate largest: read it first, so that on a tie it wins.
    let mut frames: Vec<_> = job.frames.iter().collect();
    frames.sort_by_key(|f| (f.role != FrameRole::Plate, f.index));
    for frame in frames {
        let bytes = evidence
            .read(&frame.location, &frame.sha256)
            .map_err(|e| JobFailure {
                message: format!("frame {}: {e}", frame.index),
                // Bytes that do not match their hash stay so, and destroyed ones gone;
                // an evidence store that does not answer (a network, a bucket) is no
                // fault of the case and uses none of its attempts; a segment that is
                // not there does.
                permanent: matches!(
                    e,
                    StoreError::EvidenceCorrupt { .. }
                        | StoreError::EvidenceErased { .. }
                        | StoreError::Corrupt(_)
                ),
                outage: matches!(&e, StoreError::Io(io) if io.kind() != std::io::ErrorKind::NotFound),
            })?;
        let view = match frame.role {
            FrameRole::Plate => View::CloseUp,
            _ => View::Scene,
        };
        let failed = |e: RecognizerError| JobFailure {
            permanent: matches!(
                e,
                RecognizerError::Decode(_) | RecognizerError::ImageTooSmall { .. }
            ),
            message: format!("frame {}: {e}", frame.index),
            outage: false,
        };
        let img = crate::decode_jpeg(&bytes).map_err(failed)?;
        // A close-up the camera read: the plate reader on its strongest line first (a
        // tenth of the full read's time); a read the camera's agrees with decides, any
        // other is read again the full way.
        let camera_read = camera_text(job).is_some_and(|c| !canonicalise(c).is_empty());
        if let (View::CloseUp, Some(side), true) =
            (view, recognizer.quick_close_up_side(), camera_read)
        {
            // A shortcut only: where it fails, the full read still runs.
            match recognizer.read_close_up_whole(&img, side) {
                Ok(Some(plate)) => {
                    let quick = FrameRead {
                        frame_index: frame.index,
                        plate,
                    };
                    if decide(camera_text(job), Some(our_read(&quick)), thresholds).0
                        == RecognitionDecision::Recognized
                    {
                        return Ok(Some(quick));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(frame = frame.index, error = %e, "quick close-up read failed; reading it the full way")
                }
            }
        }
        let recognition = recognizer.recognize_image(&img, view).map_err(failed)?;
        if let Some(plate) = recognition.plates.into_iter().next() {
            // A read in a known plate format beats one in none, however confident:
            // the latter is often a plate line cut short or joined with its marks.
            let rank = |p: &PlateReading| (p.text.country.is_some(), p.text.confidence);
            let better = best.as_ref().is_none_or(|b| rank(&plate) > rank(&b.plate));
            if better {
                best = Some(FrameRead {
                    frame_index: frame.index,
                    plate,
                });
            }
        }
        let decided = best.as_ref().is_some_and(|b| {
            decide(camera_text(job), Some(our_read(b)), thresholds).0
                == RecognitionDecision::Recognized
        });
        if decided {
            break;
        }
    }
    Ok(best)
}

fn camera_text(job: &RecognitionJob) -> Option<&str> {
    job.camera_read
        .as_ref()
        .map(|c: &CameraPlateRead| c.text.as_str())
}

fn our_read(read: &FrameRead) -> OurRead<'_> {
    OurRead {
        text: &read.plate.text.text,
        confidence: read.plate.text.confidence,
        may_decide_alone: read.plate.text.may_decide_alone(),
    }
}

fn outcome(
    job: &RecognitionJob,
    best: Option<&FrameRead>,
    crop: Option<EvidenceRef>,
    model: &str,
    thresholds: &Thresholds,
) -> RecognitionOutcome {
    let (decision, agreement) = decide(camera_text(job), best.map(our_read), thresholds);
    let text = best.map(|b| &b.plate.text).filter(|t| !t.text.is_empty());
    RecognitionOutcome {
        case_id: job.case_id,
        decision,
        plate: text.map(|t| PlateRead {
            text: t.text.clone(),
            confidence_milli: milli(t.confidence),
            country: t.country.map(|c| c.code().to_owned()),
        }),
        char_confidences_milli: text
            .map(|t| t.char_confidences.iter().map(|&c| milli(c)).collect())
            .unwrap_or_default(),
        candidates: text
            .map(|t| {
                t.candidates
                    .iter()
                    .map(|c| PlateRead {
                        text: c.text.clone(),
                        confidence_milli: milli(c.confidence),
                        country: c.country.map(|c| c.code().to_owned()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        plate_box: best.map(|b| PlateBox {
            frame_index: b.frame_index,
            x: b.plate.bbox.x,
            y: b.plate.bbox.y,
            w: b.plate.bbox.width,
            h: b.plate.bbox.height,
        }),
        crop,
        model: model.to_owned(),
        agreement,
    }
}

/// Thousandths, rounded down: thresholds are compared with what is stored, and a read
/// just under one (0.8996 against 0.900) must stay under it.
fn milli(p: f32) -> u16 {
    (p.clamp(0.0, 1.0) * 1000.0).floor() as u16
}

fn encode_crop(crop: &image::RgbImage) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(crop)
        .map_err(|e| StoreError::Io(std::io::Error::other(format!("plate crop JPEG: {e}"))))?;
    Ok(out)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use RecognitionDecision::{NeedsReview, Recognized};

    /// Camera read; our read, confidence and whether it fits a known format; and what
    /// `decide` must answer.
    type Row = (
        Option<&'static str>,
        Option<(&'static str, f32, bool)>,
        (RecognitionDecision, Option<bool>),
    );

    #[test]
    fn dual_read_routing() {
        let t = Thresholds::default();
        let table: [Row; 12] = [
            // camera and we agree: the lower threshold applies
            (
                Some("01123ABC"),
                Some(("01123ABC", 0.97, true)),
                (Recognized, Some(true)),
            ),
            (
                Some("01123ABC"),
                Some(("01123ABC", 0.60, true)),
                (Recognized, Some(true)),
            ),
            (
                Some("01123ABC"),
                Some(("01123ABC", 0.30, true)),
                (NeedsReview, Some(true)),
            ),
            // two reads agreeing vouch for each other, whatever the format
            (
                Some("YG9X2G"),
                Some(("YG9X2G", 0.90, false)),
                (Recognized, Some(true)),
            ),
            // the camera's read is canonicalised first (spaces, Cyrillic look-alikes)
            (
                Some("01 123 АВС"),
                Some(("01123ABC", 0.97, true)),
                (Recognized, Some(true)),
            ),
            // ... and read as a number: the "KG" printed under the region is no part of it
            (
                Some("01KG123ABC"),
                Some(("01123ABC", 0.97, true)),
                (Recognized, Some(true)),
            ),
            // disagreement always goes to a person, however confident we are
            (
                Some("01123ABD"),
                Some(("01123ABC", 0.99, true)),
                (NeedsReview, Some(false)),
            ),
            // no camera read: our read alone, at the higher threshold, in a known format
            (None, Some(("01123ABC", 0.95, true)), (Recognized, None)),
            (None, Some(("01123ABC", 0.80, true)), (NeedsReview, None)),
            (None, Some(("123ABC", 0.99, false)), (NeedsReview, None)),
            // nothing read
            (Some("01123ABC"), None, (NeedsReview, None)),
            (None, Some(("", 0.99, true)), (NeedsReview, None)),
        ];
        for (camera, ours, expected) in table {
            let ours = ours.map(|(text, confidence, may_decide_alone)| OurRead {
                text,
                confidence,
                may_decide_alone,
            });
            assert_eq!(decide(camera, ours, &t), expected, "{camera:?} {ours:?}");
        }
    }
}
