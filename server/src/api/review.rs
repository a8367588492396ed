//! Review: a reviewer approves, corrects the plate or rejects with a reason code; a
//! supervisor settles what the reviewer and the machine disagree on or what was read
//! weakly. The rules are `kozomol_fines::review`; every decision is stored with its
//! audit row by the store, in one transaction with the case's move.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use kozomol_core::{CaseState, RejectReason, ReviewDecision, ReviewTier, Role};
use kozomol_fines::review::{route, MachineRead, ReviewError, Submitted};
use kozomol_store::{NewReview, ReviewRecord, ReviewWrite};
use serde::{Deserialize, Serialize};

use super::access::{Authorized, CaseReaders, Reviewers};
use super::cases::find_case;
use super::{json_body, ApiError, ApiState, FieldProblem};

const MAX_NOTE_CHARS: usize = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    decision: Option<String>,
    plate: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    /// The case's state as the reviewer saw it: a case that moved on meanwhile (a
    /// reviewer's correction sent it to a supervisor with another plate) is not
    /// decided on what was on their screen.
    seen_state: Option<String>,
    /// The id of the case's latest audit row that moved it, as the reviewer saw it: a
    /// case that left and came back to the same state meanwhile (approved, then set
    /// aside again as a possible clone) is not decided on what was on their screen.
    seen_move: Option<i64>,
}

#[derive(Serialize)]
pub struct ReviewResult {
    case_id: i64,
    state: CaseState,
    /// The plate the fine will name (approved) or a supervisor must confirm.
    plate: Option<String>,
    href: String,
}

/// `POST /api/v1/cases/{id}/review`.
pub async fn decide(
    caller: Authorized<Reviewers>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<ReviewRequest>, JsonRejection>,
) -> Result<Json<ReviewResult>, ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let decision = match request
        .decision
        .as_deref()
        .map(str::parse::<ReviewDecision>)
    {
        Some(Ok(d)) => Some(d),
        _ => {
            problems.push(FieldProblem::new(
                "decision",
                "must be one of approve, correct_plate, reject",
            ));
            None
        }
    };
    let reason = match request.reason.as_deref().map(str::parse::<RejectReason>) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            let codes: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
            problems.push(FieldProblem::new(
                "reason",
                format!("must be one of {}", codes.join(", ")),
            ));
            None
        }
    };
    if request
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        problems.push(FieldProblem::new(
            "note",
            format!("at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    let seen_state = match request.seen_state.as_deref().map(str::parse::<CaseState>) {
        None => None,
        Some(Ok(seen)) => Some(seen),
        Some(Err(_)) => {
            problems.push(FieldProblem::new("seen_state", "must be a case state"));
            None
        }
    };
    let Some(decision) = decision.filter(|_| problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };

    let case = find_case(&state, &id).await?;
    if let Some(seen) = seen_state.filter(|seen| *seen != case.state) {
        return Err(ApiError::Conflict(format!(
            "case {} is `{}` now, not `{seen}` as it was shown; reload it",
            case.id, case.state
        )));
    }
    let store = &state.app.store;
    let recognition = super::cases::readable_recognition(&state, case.id).await?;
    let machine = MachineRead::of(recognition.as_ref());
    // The plate a review decided before: a supervisor's approval keeps it.
    let proposed = match case.state {
        CaseState::SupervisorReview | CaseState::OwnerUnknown => {
            store.decided_plate(case.id).await?
        }
        _ => None,
    };
    let tier = match caller.account.role {
        Role::Supervisor => ReviewTier::Supervisor,
        _ => ReviewTier::First,
    };
    let submitted = Submitted {
        tier,
        decision,
        plate: request.plate,
        reason,
    };
    let routed = route(
        case.state,
        case.enforceable,
        &machine,
        proposed.as_deref(),
        &submitted,
        state.app.weak_read_below_milli,
    )
    .map_err(|e| match e {
        ReviewError::NotReviewable { .. } | ReviewError::NotEnforceable => {
            ApiError::Conflict(match &case.enforceability_note {
                Some(why) => format!("{e} ({why})"),
                None => e.to_string(),
            })
        }
        ReviewError::ReasonMissing | ReviewError::ReasonNotExpected => {
            ApiError::Validation(vec![FieldProblem::new("reason", e.to_string())])
        }
        ReviewError::PlateMissing | ReviewError::NothingToApprove => {
            ApiError::Validation(vec![FieldProblem::new("plate", e.to_string())])
        }
        ReviewError::AutoByHand => ApiError::Internal(e.to_string()),
    })?;
    let review = NewReview {
        case_id: case.id,
        tier,
        reviewer: caller.account.login.clone(),
        decision,
        reason,
        plate: routed.plate.clone(),
        note: request.note,
        from_state: case.state,
        to_state: routed.to,
        seen_move: request.seen_move,
    };
    match store.record_review(&review).await? {
        ReviewWrite::Recorded => {}
        ReviewWrite::StateChanged(Some(now)) => {
            return Err(ApiError::Conflict(format!(
                "case {} moved to `{now}` meanwhile; reload it",
                case.id
            )))
        }
        ReviewWrite::StateChanged(None) => {
            return Err(ApiError::NotFound(format!("case {}", case.id)))
        }
        ReviewWrite::MovedSince(latest) => {
            return Err(ApiError::Conflict(format!(
                "case {} moved again since it was shown (its latest move is audit row {}, \
                 not {}); reload it",
                case.id,
                latest.map_or_else(|| "none".to_owned(), |id| id.to_string()),
                request.seen_move.unwrap_or_default()
            )))
        }
    }
    tracing::info!(
        case_id = %case.id,
        reviewer = %review.reviewer,
        tier = %tier,
        decision = %decision,
        to = %routed.to,
        "case reviewed"
    );
    Ok(Json(ReviewResult {
        case_id: case.id.0,
        state: routed.to,
        plate: routed.plate,
        href: state.app.link(&format!("/api/v1/cases/{}", case.id)),
    }))
}

/// `GET /api/v1/cases/{id}/reviews`: the decisions on a case, oldest first.
pub async fn list(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ReviewRecord>>, ApiError> {
    let case = find_case(&state, &id).await?;
    Ok(Json(state.app.store.reviews(case.id).await?))
}
