//! Owner liability at the desk (KZ art. 31): the owner of record answers for a camera
//! offence unless they name who drove or show that the car was stolen. An officer
//! takes the owner's statement against a resolution while it is open and within the
//! appeal period: a named driver gets the offence re-issued to them (a new case the
//! issuing stage picks up, a new resolution number), a theft closes the case and puts
//! the plate on the hot list. Either annuls the owner's resolution, refunding what was
//! paid. The rules are the store's (one compare-and-set with its audit rows).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use kozomol_fines::appeals::appeal_in_time;
use kozomol_store::{Claim, NewNomination, NominatedDriver, NominationRecord, NominationRecorded};
use serde::{Deserialize, Serialize};

use super::access::{Authorized, CaseReaders, DeskOfficers};
use super::resolutions::find;
use super::{json_body, text_field, ApiError, ApiState, FieldProblem};

const MAX_TEXT_CHARS: usize = 4000;
const MAX_NAME_CHARS: usize = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverRequest {
    pin: Option<String>,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NominationRequest {
    kind: Option<String>,
    driver: Option<DriverRequest>,
    police_report: Option<String>,
    reported_at: Option<DateTime<Utc>>,
    statement: Option<String>,
}

#[derive(Serialize)]
pub struct NominationView {
    #[serde(flatten)]
    nomination: NominationRecord,
    /// The refund request the annulment of a paid resolution queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_request: Option<i64>,
    /// The hot-list entry a theft added.
    #[serde(skip_serializing_if = "Option::is_none")]
    hot_list_entry: Option<i64>,
    case_href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reissued_case_href: Option<String>,
}

impl NominationView {
    fn new(
        state: &ApiState,
        nomination: NominationRecord,
        refund_request: Option<i64>,
        hot_list_entry: Option<i64>,
    ) -> Self {
        NominationView {
            case_href: state
                .app
                .link(&format!("/api/v1/cases/{}", nomination.case_id)),
            reissued_case_href: nomination
                .reissued_case_id
                .map(|id| state.app.link(&format!("/api/v1/cases/{id}"))),
            nomination,
            refund_request,
            hot_list_entry,
        }
    }
}

/// A PIN (KG, 14 digits) or IIN (KZ, 12 digits).
fn valid_pin(pin: &str) -> bool {
    (12..=14).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

/// Every problem of a request at once, or the claim it makes.
fn claim_of(request: NominationRequest, now: DateTime<Utc>) -> Result<(Claim, String), ApiError> {
    let mut problems = Vec::new();
    let statement = text_field(
        &mut problems,
        "statement",
        request.statement,
        MAX_TEXT_CHARS,
        Some("required: the owner's statement as taken down"),
    );
    let claim = match request.kind.as_deref() {
        Some("driver") => {
            let driver = request.driver.unwrap_or(DriverRequest {
                pin: None,
                name: None,
                address: None,
            });
            let pin = text_field(
                &mut problems,
                "driver.pin",
                driver.pin,
                MAX_NAME_CHARS,
                Some("required"),
            );
            if pin.as_deref().is_some_and(|pin| !valid_pin(pin)) {
                problems.push(FieldProblem::new("driver.pin", "12 to 14 digits"));
            }
            let name = text_field(
                &mut problems,
                "driver.name",
                driver.name,
                MAX_NAME_CHARS,
                Some("required"),
            );
            let address = text_field(
                &mut problems,
                "driver.address",
                driver.address,
                MAX_TEXT_CHARS,
                None,
            );
            if request.police_report.is_some() || request.reported_at.is_some() {
                problems.push(FieldProblem::new(
                    "police_report",
                    "only a stolen report names a police report",
                ));
            }
            pin.zip(name).map(|(pin, name)| Claim::Driver {
                driver: NominatedDriver { pin, name, address },
            })
        }
        Some("stolen") => {
            let police_report = text_field(
                &mut problems,
                "police_report",
                request.police_report,
                MAX_NAME_CHARS,
                Some("required: the police report's number"),
            );
            match request.reported_at {
                None => problems.push(FieldProblem::new("reported_at", "required")),
                Some(at) if at > now => {
                    problems.push(FieldProblem::new("reported_at", "in the future"))
                }
                Some(_) => {}
            }
            if request.driver.is_some() {
                problems.push(FieldProblem::new(
                    "driver",
                    "only a driver nomination names a driver",
                ));
            }
            police_report
                .zip(request.reported_at)
                .map(|(police_report, reported_at)| Claim::Stolen {
                    police_report,
                    reported_at,
                })
        }
        _ => {
            problems.push(FieldProblem::new("kind", "`driver` or `stolen`"));
            None
        }
    };
    match (claim, statement, problems.is_empty()) {
        (Some(claim), Some(statement), true) => Ok((claim, statement)),
        _ => Err(ApiError::Validation(problems)),
    }
}

/// `POST /api/v1/resolutions/{number}/nominations`.
pub async fn record(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    Path(number): Path<String>,
    body: Result<Json<NominationRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<NominationView>), ApiError> {
    let request = json_body(body)?;
    let now = Utc::now();
    let (claim, statement) = claim_of(request, now)?;
    let resolution = find(&state, &number).await?;
    let store = &state.app.store;
    let case = store
        .case(resolution.case_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("resolution {number}")))?;
    super::appeals::refuse_purged(case.personal_data_purged_at)?;
    // The statement contests the resolution: it is taken within the appeal period.
    if let Some(clock) = store.clock(resolution.case_id).await? {
        appeal_in_time(Some(&clock), clock.jurisdiction.local_date(now))
            .map_err(|e| ApiError::Conflict(e.to_string()))?;
    }
    let nomination = NewNomination {
        resolution_number: resolution.number.clone(),
        claim,
        statement,
        recorded_by: caller.account.login.clone(),
    };
    match store.record_nomination(&nomination).await? {
        NominationRecorded::Recorded {
            nomination,
            refund_request,
            hot_list_entry,
        } => {
            tracing::info!(
                case_id = %nomination.case_id,
                nomination_id = nomination.id,
                kind = nomination.claim.kind(),
                "owner's statement recorded"
            );
            Ok((
                StatusCode::CREATED,
                Json(NominationView::new(
                    &state,
                    *nomination,
                    refund_request,
                    hot_list_entry,
                )),
            ))
        }
        NominationRecorded::NotOpen(current) => Err(ApiError::Conflict(format!(
            "resolution {} is `{current}`: no owner's statement is taken in that state",
            resolution.number
        ))),
        NominationRecorded::AlreadyRecorded(id) => Err(ApiError::Conflict(format!(
            "statement {id} against resolution {} was recorded already",
            resolution.number
        ))),
        NominationRecorded::NotFound => Err(ApiError::NotFound(format!(
            "resolution {}",
            resolution.number
        ))),
        NominationRecorded::Purged(at) => Err(super::appeals::purged(at)),
    }
}

/// `GET /api/v1/resolutions/{number}/nominations`: the owner's statement, if any.
pub async fn show(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(number): Path<String>,
) -> Result<Json<NominationView>, ApiError> {
    let resolution = find(&state, &number).await?;
    let nomination = state
        .app
        .store
        .nomination(&resolution.number)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "an owner's statement against {}",
                resolution.number
            ))
        })?;
    Ok(Json(NominationView::new(&state, nomination, None, None)))
}
