//! The console's dashboard figures, drawn into charts by the page: violations per day,
//! hour, kind and camera site; the review backlog, the share decided automatically and
//! the time to a decision; resolutions issued against money kept, and the collection
//! rate.

use axum::extract::{Query, State};
use axum::Json;
use kozomol_core::CaseState;
use kozomol_store::CaseQuery;
use serde::{Deserialize, Serialize};

use super::access::{AnyStaff, Authorized};
use super::open_data::{by_site, DayRange, OpenDataRow};
use super::{ApiError, ApiState};

#[derive(Deserialize)]
pub struct DashboardQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize)]
pub struct Dashboard {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    /// Per local day, hour, site and kind, as the open data gives them.
    violations: Vec<OpenDataRow>,
    /// Cases waiting for a reviewer, and for a supervisor, now.
    backlog: Backlog,
    /// Review decisions in the range by tier (`auto`, `first`, `supervisor`).
    decisions: std::collections::BTreeMap<String, i64>,
    /// Share of the range's decisions the machine made alone (0-1).
    automatic_share: Option<f64>,
    mean_seconds_to_decision: Option<f64>,
    currency: &'static str,
    issued: i64,
    issued_minor: i64,
    paid_minor: i64,
    /// Money kept over the amounts issued in the range (0-1; payments of earlier
    /// resolutions count too).
    collection_rate: Option<f64>,
}

#[derive(Serialize)]
pub struct Backlog {
    needs_review: u64,
    supervisor_review: u64,
}

/// `GET /api/v1/dashboard?from=&to=`.
pub async fn show(
    _caller: Authorized<AnyStaff>,
    State(state): State<ApiState>,
    Query(query): Query<DashboardQuery>,
) -> Result<Json<Dashboard>, ApiError> {
    let jurisdiction = state.app.jurisdiction;
    let mut problems = Vec::new();
    let Some(range) = DayRange::parse(jurisdiction, query.from, query.to, &mut problems) else {
        return Err(ApiError::InvalidQuery(problems));
    };
    if !problems.is_empty() {
        return Err(ApiError::InvalidQuery(problems));
    }
    let store = &state.app.store;
    let counts = store.hourly_counts(range.start, range.end).await?;
    let waiting = |state: CaseState| CaseQuery {
        state: Some(state),
        ..CaseQuery::default()
    };
    let backlog = Backlog {
        needs_review: store.count_cases(&waiting(CaseState::NeedsReview)).await?,
        supervisor_review: store
            .count_cases(&waiting(CaseState::SupervisorReview))
            .await?,
    };
    let work = store.work_summary(range.start, range.end).await?;
    let decided: i64 = work.decisions_by_tier.iter().map(|(_, n)| n).sum();
    let automatic: i64 = work
        .decisions_by_tier
        .iter()
        .filter(|(tier, _)| tier == kozomol_core::ReviewTier::Auto.as_str())
        .map(|(_, n)| n)
        .sum();
    Ok(Json(Dashboard {
        from: range.from,
        to: range.to,
        violations: by_site(jurisdiction, &counts),
        backlog,
        decisions: work.decisions_by_tier.into_iter().collect(),
        automatic_share: (decided > 0).then(|| automatic as f64 / decided as f64),
        mean_seconds_to_decision: work.mean_seconds_to_decision,
        currency: jurisdiction.currency().code(),
        issued: work.issued,
        issued_minor: work.issued_minor,
        paid_minor: work.paid_minor,
        collection_rate: (work.issued_minor > 0)
            .then(|| work.paid_minor as f64 / work.issued_minor as f64),
    }))
}
