//! The auto-approval stage: `recognized` cases are claimed under a lease; where the
//! dual read agrees, strongly, on a device calibrated at capture (`review::auto_approves`)
//! the machine approves the case as a review of the `auto` tier; otherwise the case
//! goes to `needs_review` with the reason, for a person.

use std::time::Duration;

use kozomol_core::{CaseId, CaseState, ReviewDecision, ReviewTier};
use kozomol_store::{CompleteResult, NewReview, ReviewWrite, Store, StoreError};
use tracing::{error, info, info_span, Instrument};

use crate::review::{auto_approves, MachineRead};

/// The reviewer name auto-approvals are recorded under.
pub const AUTO_REVIEWER: &str = "auto-approval";

#[derive(Clone, Debug)]
pub struct ApprovalStage {
    pub worker: String,
    pub batch: u32,
    pub lease: Duration,
    /// Our read's confidence, in thousandths, at which the machine may approve.
    pub threshold_milli: u16,
}

impl ApprovalStage {
    pub fn new(worker: impl Into<String>, threshold_milli: u16) -> Self {
        ApprovalStage {
            worker: worker.into(),
            batch: 32,
            lease: Duration::from_secs(60),
            threshold_milli,
        }
    }
}

/// Claims one batch of `recognized` cases and decides each: `approved` or
/// `needs_review` (`None`: another worker or a reviewer got there first).
pub async fn run_approvals(
    stage: &ApprovalStage,
    store: &dyn Store,
) -> Result<Vec<(CaseId, Option<CaseState>)>, StoreError> {
    let claimed = store
        .claim_stage(
            CaseState::Recognized,
            &stage.worker,
            stage.batch,
            stage.lease,
        )
        .await?;
    let traces = kozomol_telemetry::parents_of(store.trace_parents(&claimed)).await;
    let mut decided = Vec::with_capacity(claimed.len());
    for case_id in claimed {
        let span = info_span!("approve", case_id = %case_id);
        kozomol_telemetry::follow(&span, traces.get(&case_id).copied());
        let state = match approve(stage, store, case_id).instrument(span).await {
            Ok(Some(state)) => state,
            Ok(None) => continue,
            // The database away: the whole stage waits and tries again.
            Err(e) if e.is_transient() => return Err(e),
            // This case's own trouble (a stored read that does not decode): a person
            // decides it, and the rest of the batch goes on.
            Err(e) => {
                error!(case_id = %case_id, error = %e, "case not decided automatically; set aside");
                let reason = format!("it could not be decided automatically: {e}");
                let to = CaseState::NeedsReview;
                match store
                    .set_aside(&stage.worker, case_id, CaseState::Recognized, to, &reason)
                    .await?
                {
                    CompleteResult::Completed => Some(to),
                    CompleteResult::LeaseLost => None,
                }
            }
        };
        if let Some(state) = state {
            info!(case_id = %case_id, to = %state, "auto-approval decided");
        }
        decided.push((case_id, state));
    }
    Ok(decided)
}

/// Decides one claimed case: `None` where the case is gone, `Some(None)` where another
/// worker or a reviewer got there first.
async fn approve(
    stage: &ApprovalStage,
    store: &dyn Store,
    case_id: CaseId,
) -> Result<Option<Option<CaseState>>, StoreError> {
    let Some(case) = store.case(case_id).await? else {
        return Ok(None);
    };
    let recognition = store.recognition(case_id).await?;
    let machine = MachineRead::of(recognition.as_ref());
    let state = if auto_approves(&machine, stage.threshold_milli, case.enforceable) {
        let review = NewReview {
            case_id,
            tier: ReviewTier::Auto,
            reviewer: AUTO_REVIEWER.to_owned(),
            decision: ReviewDecision::Approve,
            reason: None,
            plate: machine.plate.clone(),
            note: None,
            from_state: CaseState::Recognized,
            to_state: CaseState::Approved,
            seen_move: None,
        };
        match store.record_review(&review).await? {
            ReviewWrite::Recorded => Some(CaseState::Approved),
            ReviewWrite::StateChanged(_) | ReviewWrite::MovedSince(_) => None,
        }
    } else {
        let reason = why_not(&machine, stage.threshold_milli, case.enforceable);
        match store
            .set_aside(
                &stage.worker,
                case_id,
                CaseState::Recognized,
                CaseState::NeedsReview,
                &reason,
            )
            .await?
        {
            CompleteResult::Completed => Some(CaseState::NeedsReview),
            CompleteResult::LeaseLost => None,
        }
    };
    Ok(Some(state))
}

fn why_not(machine: &MachineRead, threshold_milli: u16, calibrated: bool) -> String {
    if !calibrated {
        "the measuring device's calibration did not cover the capture date".into()
    } else if machine.plate.is_none() {
        "no plate was read".into()
    } else if machine.camera_agrees != Some(true) {
        "the camera's read does not confirm ours".into()
    } else {
        format!("our read's confidence is below {threshold_milli}‰")
    }
}
