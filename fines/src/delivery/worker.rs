//! The outbox worker: one pass claims each channel's due deliveries under a lease,
//! hands them to the channel, and records every attempt; for channels that report
//! delivery it first asks about the messages sent before, and records the proofs; for
//! post it merges the claimed letters into one print batch stored as evidence.
//!
//! Failures retry with exponential backoff (base × 2^(attempt−1), capped, spread a
//! little per delivery so a gateway outage does not end in one burst) until the
//! attempts are used up. A worker name must be unique among live workers.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kozomol_core::{CaseState, DeliveryChannel};
use kozomol_store::noticed_subscription;
use kozomol_store::{
    AttemptOutcome, AttemptResult, CompleteResult, DeliveryId, DeliveryJob, DeliveryRecorded,
    DeliveryTarget, EvidenceRef, EvidenceStore, NewPrintBatch, PrintBatchId, PrintBatchWrite,
    ProvenDelivery, ResolutionRecord, Store, StoreError, SubscriptionRecord,
};
use sha2::{Digest, Sha256};
use tracing::{debug, error, info, warn};

use super::message::{self, Notice};
use super::post::{merge_pdfs, PrintError};
use super::sender::{MessageSender, SendError, Status};
use super::DeliveryError;

/// How the worker runs. [`DeliveryConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Unique among the workers sharing the store.
    pub worker: String,
    /// Joined with `/v/{number}` for the verification link in every notice.
    pub public_base_url: String,
    /// Deliveries claimed per channel and pass (status checks: as many again).
    pub batch: u32,
    /// Longer than one pass takes with every time-out.
    pub lease: Duration,
    /// Sending attempts before a delivery fails for good.
    pub max_attempts: u32,
    /// The delay after the first failure; doubled after each further one.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// When to ask the channel first about a message it took.
    pub first_check: Duration,
    /// The longest wait between two status checks.
    pub max_check_interval: Duration,
    /// After this long without a delivery report the worker stops asking; the
    /// delivery stays `sent` (unproven) for a proof from elsewhere.
    pub proof_window: Duration,
    /// Letters per print batch.
    pub print_batch_max: u32,
}

impl DeliveryConfig {
    pub fn new(worker: impl Into<String>, public_base_url: impl Into<String>) -> Self {
        DeliveryConfig {
            worker: worker.into(),
            public_base_url: public_base_url.into(),
            batch: 32,
            lease: Duration::from_secs(300),
            max_attempts: 6,
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(6 * 3600),
            first_check: Duration::from_secs(30),
            max_check_interval: Duration::from_secs(1800),
            proof_window: Duration::from_secs(72 * 3600),
            print_batch_max: 200,
        }
    }

    /// Every problem at once, so a bad configuration is fixed in one go.
    pub fn validate(&self) -> Result<(), DeliveryError> {
        let mut problems = Vec::new();
        if self.worker.trim().is_empty() {
            problems.push("worker name is empty".to_owned());
        }
        let base = self.public_base_url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            problems.push(format!("public base url `{base}` is not http(s)://"));
        }
        if self.batch == 0 {
            problems.push("batch is 0".to_owned());
        }
        if self.max_attempts == 0 {
            problems.push("max_attempts is 0".to_owned());
        }
        if self.lease.is_zero() {
            problems.push("lease is 0".to_owned());
        }
        if self.retry_base > self.retry_max {
            problems.push("retry_base is above retry_max".to_owned());
        }
        if self.first_check > self.max_check_interval {
            problems.push("first_check is above max_check_interval".to_owned());
        }
        if self.print_batch_max == 0 {
            problems.push("print_batch_max is 0".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DeliveryError::Config(problems.join("; ")))
        }
    }

    /// The wait after the `attempt`-th failed attempt of delivery `id`: the base
    /// doubled per earlier attempt, capped, plus up to a tenth spread by the id.
    pub fn retry_delay(&self, attempt: u32, id: DeliveryId) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let delay = self
            .retry_base
            .saturating_mul(1u32 << doublings)
            .min(self.retry_max);
        let spread = delay / 10 * u32::try_from(id.0.rem_euclid(11)).unwrap_or(0) / 10;
        delay.saturating_add(spread)
    }

    /// The wait before the next status check of a message sent `since_sent` ago: half
    /// its age, within [`first_check`, `max_check_interval`].
    fn next_check(&self, since_sent: Duration) -> Duration {
        (since_sent / 2).clamp(self.first_check, self.max_check_interval)
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Handed to a channel (SMS, e-mail).
    pub sent: u32,
    /// Failed, to be tried again.
    pub retrying: u32,
    /// Failed for good.
    pub failed: u32,
    /// Not sent any more, its case closed or its subscription ended: recorded failed,
    /// but nothing failed and no one has to act.
    pub withdrawn: u32,
    /// Proven delivered by a status check.
    pub delivered: u32,
    /// Checked, nothing proven yet.
    pub pending: u32,
    /// Given up waiting for a delivery report.
    pub unconfirmed: u32,
    /// Letters put into print batches.
    pub letters: u32,
    pub print_batches: Vec<PrintBatchId>,
    /// Taken over by another worker meanwhile: nothing recorded.
    pub lease_lost: u32,
    /// Not tried, the channel being unavailable: due again, no attempt counted.
    pub deferred: u32,
}

impl PassReport {
    pub fn is_idle(&self) -> bool {
        *self == PassReport::default()
    }

    fn count(&mut self, result: AttemptResult) {
        match result {
            AttemptResult::Sent => self.sent += 1,
            AttemptResult::WillRetry { .. } => self.retrying += 1,
            AttemptResult::GaveUp { .. } => self.failed += 1,
            AttemptResult::LeaseLost => self.lease_lost += 1,
            AttemptResult::Deferred { .. } => self.deferred += 1,
        }
    }
}

/// The outbox worker: its configuration, the evidence store the PDFs are read from
/// and print batches written to, and the channels it serves.
pub struct DeliveryWorker {
    config: DeliveryConfig,
    evidence: Arc<EvidenceStore>,
    senders: Vec<Arc<dyn MessageSender>>,
    post: bool,
}

impl DeliveryWorker {
    /// A worker serving no channel yet; add them with [`Self::with_sender`] and
    /// [`Self::with_post`].
    pub fn new(
        config: DeliveryConfig,
        evidence: Arc<EvidenceStore>,
    ) -> Result<Self, DeliveryError> {
        config.validate()?;
        Ok(DeliveryWorker {
            config,
            evidence,
            senders: Vec::new(),
            post: false,
        })
    }

    /// Serves the sender's channel (one sender per channel: a second replaces it).
    pub fn with_sender(mut self, sender: Arc<dyn MessageSender>) -> Self {
        self.senders.retain(|s| s.channel() != sender.channel());
        self.senders.push(sender);
        self
    }

    /// Serves post: claimed letters become print batches.
    pub fn with_post(mut self) -> Self {
        self.post = true;
        self
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// One pass over every channel served. Errors of one delivery (it no longer reads)
    /// are logged and the pass goes on; a store that fails ends the pass.
    pub async fn run_once(&self, store: &dyn Store) -> Result<PassReport, DeliveryError> {
        let mut report = PassReport::default();
        for sender in &self.senders {
            if sender.reports_delivery() {
                self.check_pass(store, sender.as_ref(), &mut report).await?;
            }
            self.send_pass(store, sender.as_ref(), &mut report).await?;
        }
        if self.post {
            self.print_pass(store, &mut report).await?;
        }
        if !report.is_idle() {
            info!(
                worker = %self.config.worker,
                sent = report.sent,
                delivered = report.delivered,
                retrying = report.retrying,
                failed = report.failed,
                withdrawn = report.withdrawn,
                letters = report.letters,
                "delivery pass"
            );
        }
        Ok(report)
    }

    fn actor(&self) -> String {
        format!("fines:{}", self.config.worker)
    }

    async fn send_pass(
        &self,
        store: &dyn Store,
        sender: &dyn MessageSender,
        report: &mut PassReport,
    ) -> Result<(), DeliveryError> {
        let jobs = store
            .claim_deliveries(
                sender.channel(),
                &self.config.worker,
                self.config.batch,
                self.config.lease,
            )
            .await?;
        // Once the channel proves unavailable, the rest of the batch waits untried.
        let mut unavailable: Option<String> = None;
        for job in jobs {
            if let Some(outcome) = self.spent(&job) {
                self.record(store, &job, &outcome, false, report).await?;
                continue;
            }
            let sendable = self.sendable(store, &job).await?;
            let withdrawn = matches!(
                sendable,
                Err(Unsendable {
                    withdrawn: true,
                    ..
                })
            );
            let outcome = match (&unavailable, sendable) {
                (_, Err(unsendable)) => AttemptOutcome::Failed {
                    error: unsendable.reason,
                    retry_after: None,
                },
                (Some(error), Ok(_)) => AttemptOutcome::Deferred {
                    error: error.clone(),
                    retry_after: self.config.retry_base,
                },
                (None, Ok((resolution, subscription))) => {
                    // The sends before may have run long: a full lease again, or, where
                    // it ran out (another worker may hold the row now), no send at all.
                    if !store
                        .renew_delivery_lease(&self.config.worker, job.id, self.config.lease)
                        .await?
                    {
                        warn!(worker = %self.config.worker, delivery_id = %job.id, "delivery not sent: its lease ran out before its turn");
                        // Untried: the claim does not count (unless another worker
                        // holds the row now).
                        store
                            .release_deliveries(&self.config.worker, &[job.id])
                            .await?;
                        report.lease_lost += 1;
                        continue;
                    }
                    self.send_one(sender, &job, &resolution, subscription)
                        .await?
                }
            };
            if let AttemptOutcome::Deferred { error, .. } = &outcome {
                if unavailable.is_none() {
                    warn!(worker = %self.config.worker, channel = %job.channel, error = %error, "delivery channel unavailable; its deliveries wait");
                    unavailable = Some(error.clone());
                }
            }
            self.record(store, &job, &outcome, withdrawn, report)
                .await?;
        }
        Ok(())
    }

    /// A claim beyond the last attempt: the one before it ended with no outcome (its
    /// worker stopped or failed mid-send, and the lease ran out). It fails for good
    /// rather than being sent: a delivery that stops every worker that takes it would
    /// otherwise be taken for ever.
    fn spent(&self, job: &DeliveryJob) -> Option<AttemptOutcome> {
        let max = self.config.max_attempts;
        (job.attempt > max).then(|| AttemptOutcome::Failed {
            error: format!(
                "given up: claim {} is past the {max} attempts allowed (a claim before it ended with no outcome recorded, its worker stopped mid-send, or the limit was lowered)",
                job.attempt
            ),
            retry_after: None,
        })
    }

    async fn record(
        &self,
        store: &dyn Store,
        job: &DeliveryJob,
        outcome: &AttemptOutcome,
        withdrawn: bool,
        report: &mut PassReport,
    ) -> Result<(), DeliveryError> {
        let result = store
            .record_attempt(
                &self.config.worker,
                job.id,
                outcome,
                self.config.max_attempts,
            )
            .await?;
        match (withdrawn, result, outcome) {
            (true, AttemptResult::GaveUp { .. }, AttemptOutcome::Failed { error, .. }) => {
                info!(case_id = %job.case_id, delivery_id = %job.id, channel = %job.channel, reason = %error, "delivery withdrawn");
                report.withdrawn += 1;
            }
            _ => {
                log_attempt(job, outcome, result);
                report.count(result);
            }
        }
        Ok(())
    }

    /// The resolution a claimed delivery carries (and, for a notice to a subscribed
    /// system, the subscription), or why it must not go out.
    async fn sendable(
        &self,
        store: &dyn Store,
        job: &DeliveryJob,
    ) -> Result<Result<(ResolutionRecord, Option<SubscriptionRecord>), Unsendable>, DeliveryError>
    {
        let Some(resolution) = store.resolution(&job.resolution_number).await? else {
            return Ok(Err(Unsendable::broken(format!(
                "resolution {} does not exist",
                job.resolution_number
            ))));
        };
        // A voided or annulled resolution is no longer the state's word: never send it.
        let state = store.case(job.case_id).await?.map(|c| c.state);
        if let Some(state @ (CaseState::Voided | CaseState::Annulled | CaseState::Refunded)) = state
        {
            return Ok(Err(Unsendable::withdrawn(format!(
                "not sent: the case is {state}"
            ))));
        }
        if job.channel != DeliveryChannel::Portal {
            return Ok(Ok((resolution, None)));
        }
        let Some(id) = noticed_subscription(&job.address) else {
            return Ok(Err(Unsendable::broken(format!(
                "not sent: `{}` names no subscription",
                job.address
            ))));
        };
        Ok(match store.subscription(id).await? {
            Some(subscription) => Ok((resolution, Some(subscription))),
            None => Err(Unsendable::withdrawn(
                "not sent: the subscription has ended".to_owned(),
            )),
        })
    }

    async fn send_one(
        &self,
        sender: &dyn MessageSender,
        job: &DeliveryJob,
        resolution: &ResolutionRecord,
        subscription: Option<SubscriptionRecord>,
    ) -> Result<AttemptOutcome, DeliveryError> {
        let retry = || Some(self.config.retry_delay(job.attempt, job.id));
        let pdf = if sender.attaches_pdf() {
            match self.read_pdf(resolution).await? {
                Ok(pdf) => Some(pdf),
                Err(reason) => {
                    return Ok(AttemptOutcome::Failed {
                        error: reason,
                        retry_after: retry(),
                    })
                }
            }
        } else {
            None
        };
        let base = &self.config.public_base_url;
        let notice = Notice {
            to: job.address.clone(),
            number: resolution.number.clone(),
            text: match job.channel {
                DeliveryChannel::Sms => message::sms_text(resolution, base),
                _ => message::email_body(resolution, base),
            },
            subject: message::email_subject(resolution),
            reference: message::delivery_reference(job.id, job.external_id.as_deref()),
            pdf,
            subscription,
        };
        Ok(match sender.send(&notice).await {
            Ok(handover) => AttemptOutcome::Sent {
                external_id: handover.external_id,
                proof: handover.proof,
                check_after: sender.reports_delivery().then_some(self.config.first_check),
            },
            Err(SendError::Temporary(error)) => AttemptOutcome::Failed {
                error,
                retry_after: retry(),
            },
            Err(SendError::Permanent(error)) => AttemptOutcome::Failed {
                error,
                retry_after: None,
            },
            Err(SendError::Unavailable(error)) => AttemptOutcome::Deferred {
                error,
                retry_after: self.config.retry_base,
            },
        })
    }

    /// The resolution's PDF, its hash re-checked (off the async executor).
    async fn read_pdf(
        &self,
        resolution: &ResolutionRecord,
    ) -> Result<Result<Vec<u8>, String>, DeliveryError> {
        let evidence = Arc::clone(&self.evidence);
        let location = resolution.pdf_location.clone();
        let sha = resolution.pdf_sha256;
        tokio::task::spawn_blocking(move || evidence.read(&location, &sha))
            .await
            .map_err(|e| DeliveryError::Task(e.to_string()))
            .map(|read| read.map_err(|e| format!("resolution pdf: {e}")))
    }

    async fn check_pass(
        &self,
        store: &dyn Store,
        sender: &dyn MessageSender,
        report: &mut PassReport,
    ) -> Result<(), DeliveryError> {
        let jobs = store
            .claim_unconfirmed(
                sender.channel(),
                &self.config.worker,
                self.config.batch,
                self.config.lease,
            )
            .await?;
        let worker = &self.config.worker;
        for job in jobs {
            let now = Utc::now();
            let since_sent = job
                .sent_at
                .and_then(|sent| (now - sent).to_std().ok())
                .unwrap_or_default();
            let status = match job.external_id.as_deref() {
                Some(id) => sender.status(id).await,
                None => Ok(Status::Failed {
                    reason: "no message id to ask the channel about".into(),
                }),
            };
            match status {
                Ok(Status::Delivered { at, proof }) => {
                    match self.prove(store, &job, at, proof).await {
                        Ok(_) => report.delivered += 1,
                        // The proof does not fit this resolution (a clock far off):
                        // stop asking and let a person look.
                        Err(StoreError::Invalid(reason)) => {
                            error!(case_id = %job.case_id, delivery_id = %job.id, number = %job.resolution_number, reason = %reason, "delivery report refused");
                            store.check_later(worker, job.id, None, &reason).await?;
                            report.unconfirmed += 1;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(Status::Failed { reason }) | Err(SendError::Permanent(reason)) => {
                    let outcome = AttemptOutcome::Failed {
                        error: reason,
                        retry_after: Some(self.config.retry_delay(job.attempt, job.id)),
                    };
                    self.record(store, &job, &outcome, false, report).await?;
                }
                Ok(Status::Pending)
                | Err(SendError::Temporary(_))
                | Err(SendError::Unavailable(_)) => {
                    if let Err(SendError::Temporary(e) | SendError::Unavailable(e)) = &status {
                        warn!(case_id = %job.case_id, delivery_id = %job.id, error = %e, "delivery status not read; asked again later");
                    }
                    let (next, note) = if since_sent >= self.config.proof_window {
                        let hours = self.config.proof_window.as_secs() / 3600;
                        (None, format!("no delivery report within {hours} h"))
                    } else {
                        (Some(self.config.next_check(since_sent)), String::new())
                    };
                    match store.check_later(worker, job.id, next, &note).await? {
                        CompleteResult::LeaseLost => report.lease_lost += 1,
                        CompleteResult::Completed if next.is_none() => {
                            warn!(case_id = %job.case_id, delivery_id = %job.id, number = %job.resolution_number, "no delivery report came; the delivery stays unproven");
                            report.unconfirmed += 1;
                        }
                        CompleteResult::Completed => report.pending += 1,
                    }
                }
            }
        }
        Ok(())
    }

    /// Records the channel's delivery report as the proof. The channel's own time is
    /// kept in the proof; the instant recorded is held within [sent, now], since a
    /// gateway's clock can stray and the store refuses an instant outside it.
    async fn prove(
        &self,
        store: &dyn Store,
        job: &DeliveryJob,
        at: chrono::DateTime<Utc>,
        proof: serde_json::Value,
    ) -> Result<DeliveryRecorded, StoreError> {
        let issued = store
            .resolution(&job.resolution_number)
            .await?
            .map(|r| r.issued_at)
            .unwrap_or(at);
        // Nothing arrives before it was sent: a report dated earlier (a gateway's
        // clock off, a stale report) would start the appeal and discount windows early.
        let sent = job.sent_at.unwrap_or(issued).max(issued);
        let now = kozomol_now();
        let delivered_at = at.max(sent).min(now);
        let recorded = store
            .record_delivery(&ProvenDelivery {
                resolution_number: job.resolution_number.clone(),
                target: DeliveryTarget::Outbox(job.id),
                delivered_at,
                proof,
                reported_by: self.actor(),
            })
            .await?;
        if let DeliveryRecorded::First { delivered_at, .. } = recorded {
            info!(case_id = %job.case_id, delivery_id = %job.id, number = %job.resolution_number, channel = %job.channel, %delivered_at, "resolution delivered; its clocks start");
        }
        Ok(recorded)
    }

    async fn print_pass(
        &self,
        store: &dyn Store,
        report: &mut PassReport,
    ) -> Result<(), DeliveryError> {
        let worker = &self.config.worker;
        let jobs = store
            .claim_deliveries(
                DeliveryChannel::Post,
                worker,
                self.config.print_batch_max,
                self.config.lease,
            )
            .await?;
        let mut letters: Vec<(DeliveryJob, Vec<u8>)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(outcome) = self.spent(&job) {
                self.record(store, &job, &outcome, false, report).await?;
                continue;
            }
            let sendable = self.sendable(store, &job).await?;
            let withdrawn = matches!(
                sendable,
                Err(Unsendable {
                    withdrawn: true,
                    ..
                })
            );
            let outcome = match sendable {
                Ok((resolution, _)) => match self.read_pdf(&resolution).await? {
                    Ok(pdf) => {
                        letters.push((job, pdf));
                        continue;
                    }
                    Err(error) => AttemptOutcome::Failed {
                        error,
                        retry_after: Some(self.config.retry_delay(job.attempt, job.id)),
                    },
                },
                Err(unsendable) => AttemptOutcome::Failed {
                    error: unsendable.reason,
                    retry_after: None,
                },
            };
            self.record(store, &job, &outcome, withdrawn, report)
                .await?;
        }
        if letters.is_empty() {
            return Ok(());
        }
        let evidence = Arc::clone(&self.evidence);
        let pdfs: Vec<Vec<u8>> = letters.iter().map(|(_, pdf)| pdf.clone()).collect();
        let built = tokio::task::spawn_blocking(move || -> Result<_, PrintFailure> {
            let refs: Vec<&[u8]> = pdfs.iter().map(Vec::as_slice).collect();
            let merged = merge_pdfs(&refs).map_err(|e| match e {
                PrintError::NoneReadable(reasons) => PrintFailure::NoLetterReads(reasons),
                e => PrintFailure::Batch(e.to_string()),
            })?;
            let location = evidence
                .append_batch(&[&merged.bytes])
                .map_err(|e| PrintFailure::Batch(format!("print batch not stored: {e}")))?
                .pop()
                .ok_or_else(|| PrintFailure::Batch("print batch not stored".to_owned()))?;
            let sha256: [u8; 32] = Sha256::digest(&merged.bytes).into();
            Ok((
                merged.pages,
                merged.letters,
                EvidenceRef { sha256, location },
            ))
        })
        .await
        .map_err(|e| DeliveryError::Task(e.to_string()))?;
        let (pages, placed, pdf) = match built {
            Ok(parts) => parts,
            Err(failure) => {
                // A letter that does not read will not read next time either: it fails
                // for good, for a person to look at; anything else is retried.
                let reasons: Vec<(String, bool)> = match failure {
                    PrintFailure::NoLetterReads(reasons) => {
                        reasons.into_iter().map(|r| (r, false)).collect()
                    }
                    PrintFailure::Batch(reason) => {
                        error!(worker = %worker, letters = letters.len(), error = %reason, "print batch not made; its letters are retried");
                        vec![(reason, true); letters.len()]
                    }
                };
                for ((job, _), (reason, retry)) in letters.iter().zip(reasons) {
                    let outcome = AttemptOutcome::Failed {
                        error: reason,
                        retry_after: retry.then(|| self.config.retry_delay(job.attempt, job.id)),
                    };
                    self.record(store, job, &outcome, false, report).await?;
                }
                return Ok(());
            }
        };
        let mut batched = Vec::with_capacity(letters.len());
        for ((job, _), place) in letters.iter().zip(placed) {
            match place {
                Ok(first_page) => batched.push((job.id, first_page)),
                Err(reason) => {
                    let outcome = AttemptOutcome::Failed {
                        error: reason,
                        retry_after: None,
                    };
                    self.record(store, job, &outcome, false, report).await?;
                }
            }
        }
        let batch = NewPrintBatch {
            pdf,
            pages,
            letters: batched,
        };
        let count = u32::try_from(batch.letters.len()).unwrap_or(u32::MAX);
        let recorded = store.record_print_batch(worker, &batch).await;
        if !matches!(recorded, Ok(PrintBatchWrite::Recorded(_))) {
            // A later pass merges a new PDF; this one, every addressee's name and
            // address, would otherwise lie in its segment, named by no row.
            if let Err(e) = &recorded {
                error!(worker = %worker, letters = count, error = %e, "print batch not recorded");
            }
            if let Err(queue_err) = store.queue_unkept(std::slice::from_ref(&batch.pdf)).await {
                error!(
                    sha256 = %hex::encode(batch.pdf.sha256),
                    segment = %batch.pdf.location.segment,
                    offset = batch.pdf.location.offset,
                    error = %queue_err,
                    "an unrecorded print batch's PDF is in no overwrite queue"
                );
            }
        }
        match recorded? {
            PrintBatchWrite::Recorded(id) => {
                info!(print_batch = %id, letters = count, pages, "print batch ready");
                report.print_batches.push(id);
                report.letters += count;
            }
            // The letters' claims count: a batch that always outlasts the lease fails
            // after max_attempts instead of being merged again for ever.
            PrintBatchWrite::LeaseLost => {
                warn!(worker = %worker, letters = count, "print batch not recorded: a letter's lease was lost");
                report.lease_lost += count;
            }
        }
        Ok(())
    }
}

/// Why a print batch was not made.
enum PrintFailure {
    /// None of its letters' PDFs reads (why, for each, in order): each fails for good.
    NoLetterReads(Vec<String>),
    /// The batch itself (writing or storing it): its letters are tried again.
    Batch(String),
}

/// The store's precision, so the instant recorded reads back equal.
fn kozomol_now() -> chrono::DateTime<Utc> {
    let now = Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Why a claimed delivery is not sent.
#[derive(Debug)]
struct Unsendable {
    reason: String,
    /// It must not go out any more (its case closed, its subscription ended): nothing
    /// failed, and no operator has to act.
    withdrawn: bool,
}

impl Unsendable {
    fn withdrawn(reason: String) -> Self {
        Unsendable {
            reason,
            withdrawn: true,
        }
    }

    fn broken(reason: String) -> Self {
        Unsendable {
            reason,
            withdrawn: false,
        }
    }
}

fn log_attempt(job: &DeliveryJob, outcome: &AttemptOutcome, result: AttemptResult) {
    let error = match outcome {
        AttemptOutcome::Failed { error, .. } => error.as_str(),
        AttemptOutcome::Deferred { error, .. } => error.as_str(),
        AttemptOutcome::Sent { .. } => "",
    };
    match result {
        AttemptResult::Sent => {
            debug!(case_id = %job.case_id, delivery_id = %job.id, number = %job.resolution_number, channel = %job.channel, "notice sent");
        }
        AttemptResult::WillRetry { attempts } => {
            warn!(case_id = %job.case_id, delivery_id = %job.id, channel = %job.channel, attempts, error = %error, "delivery failed; retried later");
        }
        // An operator must act: the addressee is not reached by this channel.
        AttemptResult::GaveUp { attempts } => {
            error!(case_id = %job.case_id, delivery_id = %job.id, number = %job.resolution_number, channel = %job.channel, attempts, error = %error, "delivery failed for good");
        }
        // Logged once per pass by the caller.
        AttemptResult::Deferred { .. } => {
            debug!(case_id = %job.case_id, delivery_id = %job.id, channel = %job.channel, error = %error, "delivery deferred");
        }
        AttemptResult::LeaseLost => {
            warn!(case_id = %job.case_id, delivery_id = %job.id, "delivery taken over by another worker; nothing recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_a_small_spread() {
        let mut config = DeliveryConfig::new("w", "https://k.kg");
        config.retry_base = Duration::from_secs(60);
        config.retry_max = Duration::from_secs(600);
        let d = |attempt, id| config.retry_delay(attempt, DeliveryId(id)).as_secs();
        assert_eq!(
            [d(1, 0), d(2, 0), d(3, 0), d(4, 0), d(5, 0)],
            [60, 120, 240, 480, 600]
        );
        assert_eq!(d(40, 0), 600);
        // The spread stays under a tenth.
        assert!((60..=66).contains(&d(1, 7)) && d(1, 7) > 60);
    }

    #[test]
    fn status_checks_slow_down_as_a_message_ages() {
        let config = DeliveryConfig::new("w", "https://k.kg");
        assert_eq!(config.next_check(Duration::ZERO), Duration::from_secs(30));
        assert_eq!(
            config.next_check(Duration::from_secs(600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            config.next_check(Duration::from_secs(86_400)),
            Duration::from_secs(1800)
        );
    }

    #[test]
    fn a_bad_config_names_every_problem() {
        let mut config = DeliveryConfig::new("", "ftp://x");
        config.batch = 0;
        config.max_attempts = 0;
        let Err(DeliveryError::Config(text)) = config.validate() else {
            panic!("accepted")
        };
        for want in ["worker", "public base url", "batch", "max_attempts"] {
            assert!(text.contains(want), "{want}: {text}");
        }
        assert!(DeliveryConfig::new("w", "https://k.kg").validate().is_ok());
    }
}
