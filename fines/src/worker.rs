//! The fines worker: the stages after recognition (approval, owner lookup, issuing,
//! delivery, dating delivered cases' clocks, the deadlines scheduler, the retention
//! purge, destroying case files at the end of their archive period) run side by side in one process, each claiming its own batches under leases,
//! so several workers (processes or machines) share the queues without doing a case
//! twice. A stage that finds nothing to do waits `idle_poll` before it looks again.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kozomol_core::stage_metrics::StageMetrics;
use kozomol_store::{EvidenceStore, Store, StoreError};
use kozomol_tunduk::VehicleRegistry;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use chrono::Utc;

use crate::approval::{run_approvals, ApprovalStage};
use crate::archive::{destroy_case_files, sweep_unnamed_evidence};
use crate::clocks::{run_dating, run_deadlines, DatingStage};
use crate::delivery::DeliveryWorker;
use crate::issuing::{run_issuing, Issuer, IssuingError, IssuingStage};
use crate::lookup::{run_lookups, LookupStage};

/// The stages this worker runs. A stage left out (`None`) is run by another process,
/// or waits until configured (owner lookups without a bus connection).
pub struct FinesWorker {
    pub approval: Option<ApprovalStage>,
    pub lookup: Option<(LookupStage, Arc<VehicleRegistry>)>,
    pub issuing: Option<(IssuingStage, Arc<Issuer>)>,
    /// Issuing loops run side by side (at least one), the first under the stage's
    /// worker name, the others under `{worker}-2`, `{worker}-3`, ...: while one waits on
    /// its commits and its evidence fsync, another renders.
    pub issuing_loops: usize,
    /// Dates delivered cases' clocks with the issuer's catalogue and calendars.
    pub dating: Option<(DatingStage, Arc<Issuer>)>,
    /// Moves cases whose deadlines passed; its audit rows name `actor`.
    pub deadlines: Option<DeadlineSchedule>,
    /// Sends issued resolutions from the outbox and checks their proofs.
    pub delivery: Option<Arc<DeliveryWorker>>,
    /// Purges the personal data of cases settled and quiet for the retention period.
    pub purge: Option<PurgeSchedule>,
    /// Destroys the files of cases at the end of their archive period, and overwrites
    /// the evidence queued for it.
    pub archive: Option<ArchiveSchedule>,
    pub idle_poll: Duration,
    /// The pause after a stage's pass failed (the database is down, say).
    pub error_backoff: Duration,
    /// Each stage's passes, items and failures, under the stage's name.
    pub metrics: Arc<StageMetrics>,
}

/// How the deadlines scheduler runs. Deadlines are days, so a pass a minute is ample;
/// every scheduler may run it, the store's compare-and-set keeps moves single.
#[derive(Clone, Debug)]
pub struct DeadlineSchedule {
    pub actor: String,
    pub every: Duration,
    pub batch: u32,
}

/// How the retention purge runs: a pass of `batch` cases at a time while it finds
/// some, then again after `every`. Every worker may run it; the store never gives two
/// the same case.
#[derive(Clone, Debug)]
pub struct PurgeSchedule {
    pub actor: String,
    /// How long a settled case stays untouched before its personal data go.
    pub keep: chrono::Duration,
    pub every: Duration,
    pub batch: u32,
}

/// How case files are destroyed at the end of their archive period: a pass of `batch`
/// cases at a time while it finds some, then again after `every`. Every worker may run
/// it; the store never gives two the same case. Each pass also overwrites the bytes
/// queued for it, destruction or not.
#[derive(Clone)]
pub struct ArchiveSchedule {
    pub actor: String,
    /// How long a purged case stays without a move before its file is destroyed; none:
    /// no file is.
    pub keep: Option<chrono::Duration>,
    pub every: Duration,
    pub batch: u32,
    pub evidence: Arc<EvidenceStore>,
    /// How long a segment stays unwritten before it is swept for bytes no row names
    /// (`archive::sweep_unnamed_evidence`); none (the default): no sweep.
    pub sweep_after: Option<chrono::Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("a fines stage task stopped: {0}")]
    Task(String),
}

/// Runs every configured stage until `cancel` fires. A stage's failed pass is logged
/// and tried again after `error_backoff`: the leases keep its cases safe meanwhile (the
/// owner lookup takes up the rest of its batch on the next pass).
pub async fn run(
    worker: FinesWorker,
    store: Arc<dyn Store>,
    cancel: CancellationToken,
) -> Result<(), WorkerError> {
    let idle = worker.idle_poll;
    let mut stages = Stages {
        tasks: tokio::task::JoinSet::new(),
        store,
        metrics: Arc::clone(&worker.metrics),
        backoff: worker.error_backoff,
        cancel,
    };
    if let Some(stage) = worker.approval {
        stages.spawn("approval", idle, move |store| {
            let stage = stage.clone();
            async move {
                run_approvals(&stage, store.as_ref())
                    .await
                    .map(|done| done.len())
                    .map_err(|e: StoreError| e.to_string())
            }
        });
    }
    if let Some((stage, registry)) = worker.lookup {
        stages.spawn("owner_lookup", idle, move |store| {
            let (stage, registry) = (stage.clone(), Arc::clone(&registry));
            async move {
                run_lookups(&stage, store.as_ref(), &registry)
                    .await
                    .map(|done| done.len())
                    .map_err(|e| e.to_string())
            }
        });
    }
    if let Some((first, issuer)) = worker.issuing {
        for n in 1..=worker.issuing_loops.max(1) {
            let mut stage = first.clone();
            if n > 1 {
                stage.worker = format!("{}-{n}", first.worker);
            }
            let issuer = Arc::clone(&issuer);
            stages.spawn("issuing", idle, move |store| {
                let (stage, issuer) = (stage.clone(), Arc::clone(&issuer));
                async move {
                    run_issuing(&stage, &issuer, store.as_ref())
                        .await
                        .map(|done| done.len())
                        .map_err(|e: IssuingError| e.to_string())
                }
            });
        }
    }
    if let Some((stage, issuer)) = worker.dating {
        stages.spawn("clock_dating", idle, move |store| {
            let (stage, issuer) = (stage.clone(), Arc::clone(&issuer));
            async move {
                run_dating(&stage, &issuer.catalogue, &issuer.calendars, store.as_ref())
                    .await
                    .map(|done| done.len())
                    .map_err(|e| e.to_string())
            }
        });
    }
    if let Some(schedule) = worker.deadlines {
        let every = schedule.every;
        stages.spawn("deadlines", every, move |store| {
            let schedule = schedule.clone();
            async move {
                run_deadlines(store.as_ref(), &schedule.actor, Utc::now(), schedule.batch)
                    .await
                    .map(|pass| pass.moved.len())
                    .map_err(|e| e.to_string())
            }
        });
    }
    if let Some(schedule) = worker.purge {
        let every = schedule.every;
        stages.spawn("retention", every, move |store| {
            let schedule = schedule.clone();
            async move {
                let quiet_since = Utc::now() - schedule.keep;
                let report = store
                    .purge_personal_data(quiet_since, schedule.batch, &schedule.actor)
                    .await
                    .map_err(|e| e.to_string())?;
                if report.purged() > 0 {
                    info!(
                        cases = report.cases.len(),
                        accidents = report.accidents.len(),
                        contacts = report.contacts,
                        dead_letters = report.dead_letters,
                        "personal data purged"
                    );
                }
                Ok(report.purged())
            }
        });
    }
    if let Some(schedule) = worker.archive {
        let every = schedule.every;
        let metrics = Arc::clone(&stages.metrics);
        stages.spawn("archive", every, move |store| {
            let (schedule, metrics) = (schedule.clone(), Arc::clone(&metrics));
            async move {
                let quiet_before = schedule.keep.map(|keep| Utc::now() - keep);
                let pass = destroy_case_files(
                    store.as_ref(),
                    &schedule.evidence,
                    quiet_before,
                    schedule.batch,
                    &schedule.actor,
                )
                .await
                .map_err(|e| e.to_string())?;
                // A segment not rewritten is logged and put off an hour by the pass;
                // it counts as a failure here while the pass's work still counts as done.
                let (items, failed) = pass.stage_outcome();
                if items > 0 {
                    info!(
                        cases = pass.cases.len(),
                        accidents = pass.accidents.len(),
                        blobs_erased = pass.blobs_erased,
                        records_overwritten = pass.records_overwritten,
                        "archive pass: case files destroyed, queued bytes overwritten"
                    );
                }
                // The sweep after the pass, in the same task: the two take turns at the
                // archive lease instead of one holding it whenever the other wakes.
                let (mut swept, mut sweep_failed) = (0, false);
                if let Some(after) = schedule.sweep_after {
                    // A sweep that fails (a bucket that will not list) is logged and
                    // counted; the pass's work still counts, and the stage keeps its pace.
                    match sweep_unnamed_evidence(
                        store.as_ref(),
                        &schedule.evidence,
                        Utc::now() - after,
                        &schedule.actor,
                    )
                    .await
                    {
                        Ok(sweep) => {
                            if sweep.segments > 0 {
                                info!(
                                    segments = sweep.segments,
                                    frames = sweep.frames,
                                    "evidence swept: bytes no row names queued for overwriting"
                                );
                            }
                            (swept, sweep_failed) = (sweep.segments, sweep.failures > 0);
                        }
                        Err(e) => {
                            warn!(error = %e, "evidence sweep failed; tried again next pass");
                            sweep_failed = true;
                        }
                    }
                }
                if failed || sweep_failed {
                    metrics.record_failure("archive");
                }
                Ok(items + swept)
            }
        });
    }
    if let Some(delivery) = worker.delivery {
        stages.spawn("delivery", idle, move |store| {
            let delivery = Arc::clone(&delivery);
            async move {
                delivery
                    .run_once(store.as_ref())
                    .await
                    .map(|report| usize::from(!report.is_idle()))
                    .map_err(|e| e.to_string())
            }
        });
    }
    while let Some(joined) = stages.tasks.join_next().await {
        joined.map_err(|e| WorkerError::Task(e.to_string()))?;
    }
    Ok(())
}

/// What every stage's loop shares.
struct Stages {
    tasks: tokio::task::JoinSet<()>,
    store: Arc<dyn Store>,
    metrics: Arc<StageMetrics>,
    backoff: Duration,
    cancel: CancellationToken,
}

impl Stages {
    /// Runs `pass` (given the store) in a loop of its own under `name`, `pause` after
    /// a pass that found nothing (see [`repeat`]).
    fn spawn<F, Fut>(&mut self, name: &'static str, pause: Duration, pass: F)
    where
        F: Fn(Arc<dyn Store>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<usize, String>> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        self.tasks.spawn(repeat(
            Arc::clone(&self.metrics),
            name,
            pause,
            self.backoff,
            self.cancel.clone(),
            move || pass(Arc::clone(&store)),
        ));
    }
}

/// Runs `pass` until cancelled: again at once while it finds work, after `idle` when
/// it finds none, after `backoff` when it fails.
async fn repeat<F, Fut>(
    metrics: Arc<StageMetrics>,
    name: &'static str,
    idle: Duration,
    backoff: Duration,
    cancel: CancellationToken,
    pass: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<usize, String>>,
{
    info!(stage = name, "fines stage started");
    while !cancel.is_cancelled() {
        let started = Instant::now();
        let result = pass().await;
        let pause = match result {
            Ok(0) => idle,
            Ok(n) => {
                metrics.record_pass(name, n, started.elapsed());
                continue;
            }
            Err(e) => {
                metrics.record_failure(name);
                warn!(stage = name, error = %e, "fines stage pass failed; trying again");
                backoff
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    info!(stage = name, "fines stage stopped");
}
