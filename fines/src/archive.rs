//! The end of a case file's archive period: under the archive lease (one process at a
//! time), the store marks the files of cases (and road accidents) purged long enough
//! ago destroyed, the evidence only they held erased, and queues where those bytes
//! lie; then the queued records are overwritten in the evidence store, a segment at a
//! time, and that is recorded. The overwrite works from the queue, so a pass that died
//! between the two is finished by the next; a segment that cannot be rewritten is put
//! off an hour. Where no file is destroyed, the queue is still worked: bytes stored that
//! no row will read (a conflicting duplicate's photos; the crop, resolution PDF or print
//! batch of work whose lease was lost) are queued whenever they are stored; what escapes
//! that (a process that died between append and commit, a write that failed part-way)
//! is found by the sweep of segments long unwritten ([`sweep_unnamed_evidence`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kozomol_core::CaseId;
use kozomol_store::{
    DestructionReport, Erasure, EvidenceRef, EvidenceStore, FrameLocation, SegmentInfo, Store,
    StoreError,
};
use serde::Serialize;
use tracing::{error, info};

/// Erased records overwritten per pass, at most.
const OVERWRITES_PER_PASS: u32 = 2_000;
/// How long a pass may hold the archive lease: short enough that a process that died
/// holding it does not stop destruction for long.
const LEASE: Duration = Duration::from_secs(60 * 60);
/// A pass starts no segment's rewrite after this long (what is left stays queued for
/// the next): it ends well inside its lease, so no other process starts meanwhile.
const OVERWRITING_FOR: Duration = Duration::from_secs(20 * 60);
/// How long a segment that could not be rewritten is put off.
const RETRY_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArchivePass {
    /// Another process held the archive lease: this pass did nothing.
    pub busy: bool,
    /// Cases whose files were destroyed.
    pub cases: Vec<CaseId>,
    /// Accidents whose photos and scheme were destroyed.
    pub accidents: Vec<i64>,
    /// Blobs marked erased (evidence only those cases and accidents held).
    pub blobs_erased: u64,
    /// Records overwritten in their segments (this pass's and any an earlier pass
    /// left).
    pub records_overwritten: usize,
    /// Records whose segment could not be rewritten; each is logged and put off.
    pub overwrite_failures: usize,
}

impl ArchivePass {
    /// Whether the pass did anything (failures are not work done).
    pub fn did_work(&self) -> bool {
        self.stage_outcome().0 > 0
    }

    /// What the workers' stage loop counts: the items done (files destroyed, records
    /// overwritten), and whether the pass also failed, leaving queued bytes readable,
    /// so that `kozomol_stage_failures_total{stage="archive"}` shows them beside the
    /// work the same pass did.
    pub fn stage_outcome(&self) -> (usize, bool) {
        (
            self.cases.len() + self.accidents.len() + self.records_overwritten,
            self.overwrite_failures > 0,
        )
    }
}

/// One pass, if the archive lease is free: destroys the files of at most `limit` purged
/// cases and `limit` purged accidents with no move since before `quiet_before` (none
/// without it), then overwrites the erased records queued. `actor` names the pass in
/// the audit log; the lease is held under `actor` and an id of the pass's own.
pub async fn destroy_case_files(
    store: &dyn Store,
    evidence: &Arc<EvidenceStore>,
    quiet_before: Option<DateTime<Utc>>,
    limit: u32,
    actor: &str,
) -> Result<ArchivePass, StoreError> {
    let work = under_lease(store, evidence, quiet_before, limit, actor);
    Ok(with_archive_lease(store, actor, work)
        .await?
        .unwrap_or(ArchivePass {
            busy: true,
            ..ArchivePass::default()
        }))
}

/// Runs `work` holding the archive lease, under `actor` and an id of the run's own;
/// `None` (nothing run) while another process holds it.
async fn with_archive_lease<T>(
    store: &dyn Store,
    actor: &str,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<Option<T>, StoreError> {
    let holder = format!("{actor}:{}", uuid::Uuid::now_v7().simple());
    if !store.claim_archive(&holder, LEASE).await? {
        return Ok(None);
    }
    let done = work.await;
    let released = store.release_archive(&holder).await;
    let done = done?;
    released?;
    Ok(Some(done))
}

async fn under_lease(
    store: &dyn Store,
    evidence: &Arc<EvidenceStore>,
    quiet_before: Option<DateTime<Utc>>,
    limit: u32,
    actor: &str,
) -> Result<ArchivePass, StoreError> {
    let report = match quiet_before {
        Some(quiet_before) => store.destroy_case_files(quiet_before, limit, actor).await?,
        None => DestructionReport::default(),
    };
    let mut segments: BTreeMap<String, Vec<Erasure>> = BTreeMap::new();
    for erasure in store.erasures_due(OVERWRITES_PER_PASS).await? {
        segments
            .entry(erasure.location.segment.clone())
            .or_default()
            .push(erasure);
    }
    let evidence = Arc::clone(evidence);
    // Reading and rewriting segments is blocking work.
    let outcomes = blocking(move || {
        let started = std::time::Instant::now();
        Ok(segments
            .into_iter()
            .take_while(|_| started.elapsed() < OVERWRITING_FOR)
            .map(|(segment, erasures)| {
                let records: Vec<(FrameLocation, [u8; 32])> = erasures
                    .iter()
                    .map(|e| (e.location.clone(), e.sha256))
                    .collect();
                let outcome = evidence.erase(&segment, &records);
                (segment, erasures, outcome)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let (mut overwritten, mut failed) = (Vec::new(), Vec::new());
    for (segment, erasures, outcome) in outcomes {
        match outcome {
            Ok(refused) => {
                for (index, erasure) in erasures.into_iter().enumerate() {
                    if refused.contains(&index) {
                        error!(
                            segment = %segment,
                            offset = erasure.location.offset,
                            sha256 = %hex::encode(erasure.sha256),
                            "queued evidence not overwritten: the segment holds another record there (database and segment disagree); put off an hour"
                        );
                        failed.push(erasure);
                    } else {
                        overwritten.push(erasure);
                    }
                }
            }
            Err(e) => {
                error!(
                    segment = %segment,
                    error = %e,
                    "queued evidence not overwritten; put off an hour"
                );
                failed.extend(erasures);
            }
        }
    }
    if !overwritten.is_empty() {
        store.erasures_overwritten(&overwritten).await?;
    }
    if !failed.is_empty() {
        store
            .erasures_put_off(&failed, Utc::now() + RETRY_AFTER)
            .await?;
    }
    Ok(ArchivePass {
        busy: false,
        cases: report.cases,
        accidents: report.accidents,
        blobs_erased: report.blobs_erased,
        records_overwritten: overwritten.len(),
        overwrite_failures: failed.len(),
    })
}

/// A sweep reads no further segment after this long.
const SWEEPING_FOR: Duration = Duration::from_secs(20 * 60);

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepPass {
    /// Another process held the archive lease: this sweep did nothing.
    pub busy: bool,
    /// Segments read and recorded swept.
    pub segments: usize,
    /// The whole frames those segments hold (named by a row or not).
    pub frames: usize,
    /// Records whose bytes do not match their header's hash: never queued, logged.
    pub corrupt: usize,
    /// Segments written while they were read: read again next time.
    pub changed: usize,
    /// Segments that could not be read; each is logged and read again next time.
    pub failures: usize,
}

/// Sweeps the evidence for bytes no row names, under the archive lease (one process
/// at a time): each segment last written before `written_before` and not swept since
/// its last write is read whole, every record re-hashed, and its whole frames are given
/// to the store as bytes stored and not kept
/// ([`kozomol_store::CaseFileDestruction::sweep_segment`]): those no row names are
/// queued and overwritten by the next archive pass. A record whose bytes do not match
/// its hash is never queued. A segment written while it was read (a quiet writer's
/// open segment taking a batch) is left for the next sweep, so nothing appended after
/// the listing is ever taken. This closes what failures leave behind: an append whose
/// sync failed after its records were written, an S3 PUT stored whose answer was lost,
/// a queueing that failed. Bytes whose row was committed later than `written_before`,
/// or lost (a database restored from an old backup, or one that is not this evidence's),
/// would be overwritten: the sweep is an operator's choice (docs/operations.md).
pub async fn sweep_unnamed_evidence(
    store: &dyn Store,
    evidence: &Arc<EvidenceStore>,
    written_before: DateTime<Utc>,
    actor: &str,
) -> Result<SweepPass, StoreError> {
    let work = sweep_under_lease(store, evidence, written_before);
    Ok(with_archive_lease(store, actor, work)
        .await?
        .unwrap_or(SweepPass {
            busy: true,
            ..SweepPass::default()
        }))
}

async fn sweep_under_lease(
    store: &dyn Store,
    evidence: &Arc<EvidenceStore>,
    written_before: DateTime<Utc>,
) -> Result<SweepPass, StoreError> {
    let listed = Arc::clone(evidence);
    let segments = blocking(move || listed.segments()).await?;
    let swept = store.swept_segments().await?;
    let due: Vec<SegmentInfo> = segments
        .into_iter()
        .filter(|s| s.written_at < written_before)
        .filter(|s| swept.get(&s.name).is_none_or(|at| *at < s.written_at))
        .collect();
    let started = std::time::Instant::now();
    let mut pass = SweepPass::default();
    for segment in due {
        if started.elapsed() >= SWEEPING_FOR {
            break;
        }
        let reader = Arc::clone(evidence);
        let name = segment.name.clone();
        // The scan, then the segment's last write again: unchanged, so every record
        // read was there when it was listed, older than `written_before`.
        let read = blocking(move || {
            let scan = reader.scan(&name)?;
            Ok((scan, reader.written_at(&name)?))
        })
        .await;
        let scan = match read {
            Ok((scan, written_at)) if written_at == segment.written_at => scan,
            Ok(_) => {
                info!(segment = %segment.name, "evidence segment written while swept; read again next time");
                pass.changed += 1;
                continue;
            }
            Err(e) => {
                error!(segment = %segment.name, error = %e, "evidence segment not swept; read again next time");
                pass.failures += 1;
                continue;
            }
        };
        if !scan.corrupt.is_empty() {
            error!(segment = %segment.name, records = scan.corrupt.len(), first_offset = scan.corrupt[0].offset, "evidence records whose bytes do not match their hash; left as they are");
            pass.corrupt += scan.corrupt.len();
        }
        let frames: Vec<EvidenceRef> = scan
            .frames
            .into_iter()
            .map(|(location, sha256)| EvidenceRef { sha256, location })
            .collect();
        store
            .sweep_segment(&segment.name, segment.written_at, &frames)
            .await?;
        pass.segments += 1;
        pass.frames += frames.len();
    }
    Ok(pass)
}

/// Blocking evidence work, off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_that_left_bytes_readable_counts_as_failed() {
        let pass = |cases: Vec<CaseId>, accidents: Vec<i64>, overwritten, failures| ArchivePass {
            cases,
            accidents,
            records_overwritten: overwritten,
            overwrite_failures: failures,
            ..ArchivePass::default()
        };
        let table = [
            (pass(vec![], vec![], 0, 0), (0, false)),
            (pass(vec![CaseId(1)], vec![7], 3, 0), (5, false)),
            (pass(vec![], vec![], 4, 0), (4, false)),
            (pass(vec![], vec![], 0, 2), (0, true)),
            (pass(vec![CaseId(1)], vec![], 3, 1), (4, true)),
        ];
        for (pass, expected) in table {
            assert_eq!(pass.stage_outcome(), expected, "{pass:?}");
        }
    }
}
