//! The checks before issuing: the exemption list and the hot list (supervisors and
//! admins keep them, whoever reads cases reads them) and the alerts a hot-list hit
//! raises (supervisors acknowledge them). The rules are `kozomol_fines::checks`; every
//! change is audited by the store in the transaction that makes it, and a removed entry
//! keeps its row.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use kozomol_fines::checks::PlatePattern;
use kozomol_fines::review::normalise_plate;
use kozomol_store::checks::{EXEMPTION_CATEGORIES, HOT_LIST_REASONS};
use kozomol_store::{
    AlertAcknowledged, AlertQuery, AlertRecord, ExemptionRecord, HotListRecord, NewExemption,
    NewHotListEntry,
};
use serde::{Deserialize, Serialize};

use super::access::{Authorized, CaseReaders, ListKeepers, Supervisors};
use super::paging::{page, parse_paging, CursorKind, Page};
use super::{json_body, text_field, ApiError, ApiState, FieldProblem};

const MAX_NOTE_CHARS: usize = 2000;

#[derive(Serialize)]
pub struct Items<T> {
    items: Vec<T>,
}

/// A note: required or not, trimmed, at most `MAX_NOTE_CHARS`.
fn note_field(problems: &mut Vec<FieldProblem>, value: Option<String>, required: bool) -> String {
    let missing = required.then_some("required: what the entry rests on (a decree, a letter)");
    text_field(problems, "note", value, MAX_NOTE_CHARS, missing).unwrap_or_default()
}

/// One of `names`, or a problem listing them.
fn name_field(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    value: Option<String>,
    names: &[&str],
) -> String {
    match value {
        Some(v) if names.contains(&v.as_str()) => v,
        _ => {
            problems.push(FieldProblem::new(
                field,
                format!("must be one of {}", names.join(", ")),
            ));
            String::new()
        }
    }
}

fn date_field(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    value: Option<String>,
) -> Option<NaiveDate> {
    let raw = value?;
    match raw.parse() {
        Ok(date) => Some(date),
        Err(_) => {
            problems.push(FieldProblem::new(field, "must be a date, YYYY-MM-DD"));
            None
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemptionRequest {
    pattern: Option<String>,
    category: Option<String>,
    note: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
}

/// `GET /api/v1/exemptions`: the entries in force, in the order they were added.
pub async fn exemptions(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
) -> Result<Json<Items<ExemptionRecord>>, ApiError> {
    let items = state.app.store.exemptions().await?;
    Ok(Json(Items { items }))
}

/// `POST /api/v1/exemptions`.
pub async fn add_exemption(
    caller: Authorized<ListKeepers>,
    State(state): State<ApiState>,
    body: Result<Json<ExemptionRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ExemptionRecord>), ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let pattern = match request.pattern.as_deref().map(PlatePattern::parse) {
        Some(Ok(pattern)) => Some(pattern),
        Some(Err(e)) => {
            problems.push(FieldProblem::new("pattern", e.to_string()));
            None
        }
        None => {
            problems.push(FieldProblem::new(
                "pattern",
                "required: a plate, or a series with `*` and `?`",
            ));
            None
        }
    };
    let category = name_field(
        &mut problems,
        "category",
        request.category,
        &EXEMPTION_CATEGORIES,
    );
    let note = note_field(&mut problems, request.note, true);
    let valid_from = date_field(&mut problems, "valid_from", request.valid_from);
    let valid_until = date_field(&mut problems, "valid_until", request.valid_until);
    if let (Some(from), Some(until)) = (valid_from, valid_until) {
        if from > until {
            problems.push(FieldProblem::new(
                "valid_until",
                "must not be before valid_from",
            ));
        }
    }
    let Some(pattern) = pattern.filter(|_| problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let record = state
        .app
        .store
        .add_exemption(&NewExemption {
            pattern: pattern.as_str().to_owned(),
            category,
            note,
            valid_from,
            valid_until,
            added_by: caller.account.login.clone(),
        })
        .await?;
    tracing::info!(exemption_id = record.id, pattern = %record.pattern, category = %record.category, by = %record.added_by, "exemption added");
    Ok((StatusCode::CREATED, Json(record)))
}

/// `DELETE /api/v1/exemptions/{id}`: the entry stops exempting; its row stays.
pub async fn remove_exemption(
    caller: Authorized<ListKeepers>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ExemptionRecord>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("an exemption id is a whole number".into()))?;
    let removed = state
        .app
        .store
        .remove_exemption(id, &caller.account.login)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("exemption {id} in force")))?;
    tracing::info!(exemption_id = id, by = %caller.account.login, "exemption removed");
    Ok(Json(removed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotListRequest {
    plate: Option<String>,
    reason: Option<String>,
    note: Option<String>,
}

/// `GET /api/v1/hot-list`: the listed plates, in the order they were listed.
pub async fn hot_list(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
) -> Result<Json<Items<HotListRecord>>, ApiError> {
    let items = state.app.store.hot_list().await?;
    Ok(Json(Items { items }))
}

/// `POST /api/v1/hot-list`.
pub async fn add_hot_list_entry(
    caller: Authorized<ListKeepers>,
    State(state): State<ApiState>,
    body: Result<Json<HotListRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<HotListRecord>), ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let plate = request.plate.as_deref().and_then(normalise_plate);
    if plate.is_none() {
        problems.push(FieldProblem::new(
            "plate",
            "required: 2-12 letters and digits (spaces and hyphens are dropped)",
        ));
    }
    let reason = name_field(&mut problems, "reason", request.reason, &HOT_LIST_REASONS);
    let note = note_field(&mut problems, request.note, false);
    let Some(plate) = plate.filter(|_| problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    // The checks meet a plate under any spelling: so does the list.
    if let Some(listed) = listed_as(&state, &plate).await?.first() {
        return Err(ApiError::Conflict(format!(
            "the plate is on the hot list already, as {}",
            listed.plate
        )));
    }
    let record = state
        .app
        .store
        .add_hot_list_entry(&NewHotListEntry {
            plate,
            reason,
            note,
            listed_by: caller.account.login.clone(),
        })
        .await?;
    tracing::info!(plate = %record.plate, reason = %record.reason, by = %record.listed_by, "plate put on the hot list");
    Ok((StatusCode::CREATED, Json(record)))
}

/// The entries in force for `plate` under any of its spellings
/// (`kozomol_tunduk::same_plate`), in the order listed.
async fn listed_as(state: &ApiState, plate: &str) -> Result<Vec<HotListRecord>, ApiError> {
    Ok(state
        .app
        .store
        .hot_list()
        .await?
        .into_iter()
        .filter(|entry| kozomol_tunduk::same_plate(&entry.plate, plate))
        .collect())
}

/// `DELETE /api/v1/hot-list/{plate}`: the plate is no longer listed; its row stays.
pub async fn remove_hot_list_entry(
    caller: Authorized<ListKeepers>,
    State(state): State<ApiState>,
    Path(plate): Path<String>,
) -> Result<Json<HotListRecord>, ApiError> {
    let plate = normalise_plate(&plate)
        .ok_or_else(|| ApiError::BadRequest("a plate is 2-12 letters and digits".into()))?;
    // Named in any spelling: `01123ABC` takes `01KG123ABC` off, and every entry of the
    // plate goes (a theft reported against a resolution lists the plate as decided).
    let mut removed = None;
    for listed in listed_as(&state, &plate).await? {
        let taken_off = state
            .app
            .store
            .remove_hot_list_entry(&listed.plate, &caller.account.login)
            .await?;
        removed = removed.or(taken_off);
    }
    let removed =
        removed.ok_or_else(|| ApiError::NotFound(format!("hot-list entry for {plate}")))?;
    tracing::info!(plate = %plate, by = %caller.account.login, "plate taken off the hot list");
    Ok(Json(removed))
}

#[derive(Deserialize)]
pub struct AlertParams {
    open: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub struct AlertItem {
    #[serde(flatten)]
    alert: AlertRecord,
    case_href: String,
}

fn alert_item(state: &ApiState, alert: AlertRecord) -> AlertItem {
    AlertItem {
        case_href: state.app.link(&format!("/api/v1/cases/{}", alert.case_id)),
        alert,
    }
}

/// `GET /api/v1/alerts`: by ascending id; `open=true` for those nobody acknowledged.
pub async fn alerts(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    params: Result<Query<AlertParams>, QueryRejection>,
) -> Result<Json<Page<AlertItem>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut problems = Vec::new();
    let open_only = match params.open.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            problems.push(FieldProblem::new("open", "must be true or false"));
            false
        }
    };
    let (limit, after) = parse_paging(
        params.limit.as_deref(),
        params.cursor.as_deref(),
        CursorKind::Alerts,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(ApiError::InvalidQuery(problems));
    }
    // One row beyond the page says whether there is a next one.
    let rows = state
        .app
        .store
        .alerts(&AlertQuery {
            open_only,
            case_id: None,
            after,
            limit: limit + 1,
        })
        .await?;
    Ok(Json(page(
        rows,
        limit,
        CursorKind::Alerts,
        |a| a.id,
        |alert| alert_item(&state, alert),
    )))
}

/// `POST /api/v1/alerts/{id}/acknowledge`: a supervisor has seen to it.
pub async fn acknowledge(
    caller: Authorized<Supervisors>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<AlertItem>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("an alert id is a whole number".into()))?;
    match state
        .app
        .store
        .acknowledge_alert(id, &caller.account.login)
        .await?
    {
        AlertAcknowledged::Acknowledged(alert) => {
            tracing::info!(alert_id = id, case_id = %alert.case_id, by = %caller.account.login, "alert acknowledged");
            Ok(Json(alert_item(&state, alert)))
        }
        AlertAcknowledged::Already(alert) => Err(ApiError::Conflict(format!(
            "alert {id} was acknowledged by {} already",
            alert.acknowledged_by.as_deref().unwrap_or("someone")
        ))),
        AlertAcknowledged::NotFound => Err(ApiError::NotFound(format!("alert {id}"))),
    }
}
