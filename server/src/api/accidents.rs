//! Road-accident reports: an officer registers the place, time, vehicles, participants,
//! photos and the scheme; the investigation then moves `registered →
//! under_investigation → closed` (rules in `kozomol_fines::accidents`), each move a
//! compare-and-set with its audit row. Violations found in it are filed through
//! `POST /api/v1/officer-violations` with its `accident_id`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use kozomol_core::ReportedPlace;
use kozomol_fines::accidents::check_move;
use kozomol_fines::appeals::MAX_ATTACHMENTS;
use kozomol_fines::review::normalise_plate;
use kozomol_store::{
    AccidentFileRole, AccidentMove, AccidentMoved, AccidentOutcome, AccidentParticipant,
    AccidentQuery, AccidentRecord, AccidentRegistered, AccidentState, AccidentSummary,
    AccidentVehicle, Injury, NewAccident, NewAccidentFile, ParticipantRole,
};
use serde::{Deserialize, Serialize};

use super::access::{Authorized, CaseReaders, DeskOfficers};
use super::appeals::{decode_uploads, file_with_uploads, serve_file, AttachmentUpload};
use super::officer_violations::check_photos;
use super::{json_body, text_field, ApiError, ApiState, FieldProblem};

pub(crate) const MAX_TEXT_CHARS: usize = 4000;
const MAX_VEHICLES: usize = 50;
const MAX_PARTICIPANTS: usize = 200;
/// How far ahead of the server's clock a reported time may be (device clocks drift).
const CLOCK_SKEW_MINUTES: i64 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceRequest {
    address: Option<String>,
    lat_e6: Option<i32>,
    lon_e6: Option<i32>,
}

/// The place of a report: an address, and coordinates both or neither, in range.
pub(crate) fn place_field(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    place: Option<PlaceRequest>,
) -> Option<ReportedPlace> {
    let Some(place) = place else {
        problems.push(FieldProblem::new(field, "required"));
        return None;
    };
    let address = text_field(
        problems,
        &format!("{field}.address"),
        place.address,
        500,
        Some("required"),
    );
    let coordinates_ok = match (place.lat_e6, place.lon_e6) {
        (None, None) => true,
        (Some(lat), Some(lon)) => {
            (-90_000_000..=90_000_000).contains(&lat) && (-180_000_000..=180_000_000).contains(&lon)
        }
        _ => false,
    };
    if !coordinates_ok {
        problems.push(FieldProblem::new(
            format!("{field}.lat_e6"),
            "lat_e6 and lon_e6 together, in micro-degrees within range, or neither",
        ));
    }
    Some(ReportedPlace {
        address: address?,
        lat_e6: place.lat_e6,
        lon_e6: place.lon_e6,
    })
    .filter(|_| coordinates_ok)
}

/// When it happened: required, and not after `now` (beyond a little clock skew).
pub(crate) fn check_occurred_at(
    problems: &mut Vec<FieldProblem>,
    occurred_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match occurred_at {
        None => problems.push(FieldProblem::new("occurred_at", "required (RFC 3339)")),
        Some(at) if at > now + Duration::minutes(CLOCK_SKEW_MINUTES) => {
            problems.push(FieldProblem::new("occurred_at", "lies in the future"))
        }
        Some(at) => return Some(at),
    }
    None
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleRequest {
    plate: Option<String>,
    make: Option<String>,
    model: Option<String>,
    damage: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantRequest {
    name: Option<String>,
    role: Option<String>,
    vehicle: Option<u32>,
    pin: Option<String>,
    injuries: Option<String>,
}

/// A participant's rules: a driver drove one of the listed vehicles, a pedestrian
/// and a witness were in none; a PIN is 12 (Kazakhstan's IIN) or 14 (Kyrgyzstan's
/// PIN) digits.
pub(crate) fn participant(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    request: ParticipantRequest,
    vehicles: usize,
) -> Option<AccidentParticipant> {
    let before = problems.len();
    let name = text_field(
        problems,
        &format!("{field}.name"),
        request.name,
        200,
        Some("required"),
    );
    let role = request.role.as_deref().and_then(ParticipantRole::parse);
    if role.is_none() {
        problems.push(FieldProblem::new(
            format!("{field}.role"),
            "driver, passenger, pedestrian or witness",
        ));
    }
    let injury = match request.injuries.as_deref() {
        None => Some(Injury::None),
        Some(raw) => Injury::parse(raw),
    };
    if injury.is_none() {
        problems.push(FieldProblem::new(
            format!("{field}.injuries"),
            "none, light, serious or fatal",
        ));
    }
    match (role, request.vehicle) {
        (_, Some(v)) if v as usize >= vehicles => problems.push(FieldProblem::new(
            format!("{field}.vehicle"),
            format!("an index into the {vehicles} vehicles listed"),
        )),
        (Some(ParticipantRole::Driver), None) => problems.push(FieldProblem::new(
            format!("{field}.vehicle"),
            "a driver names the vehicle he drove",
        )),
        (Some(ParticipantRole::Pedestrian | ParticipantRole::Witness), Some(_)) => {
            problems.push(FieldProblem::new(
                format!("{field}.vehicle"),
                "only drivers and passengers sit in a vehicle",
            ))
        }
        _ => {}
    }
    let pin = request
        .pin
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    if let Some(pin) = &pin {
        if !matches!(pin.len(), 12 | 14) || !pin.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(FieldProblem::new(format!("{field}.pin"), "12 or 14 digits"));
        }
    }
    (problems.len() == before).then_some(AccidentParticipant {
        name: name?,
        role: role?,
        vehicle: request.vehicle,
        pin,
        injury: injury?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccidentRequest {
    /// The client's id of this report; a retry with the same id registers nothing new.
    report_id: Option<uuid::Uuid>,
    occurred_at: Option<DateTime<Utc>>,
    place: Option<PlaceRequest>,
    description: Option<String>,
    #[serde(default)]
    vehicles: Vec<VehicleRequest>,
    #[serde(default)]
    participants: Vec<ParticipantRequest>,
    /// JPEG.
    #[serde(default)]
    photos: Vec<AttachmentUpload>,
    /// The scheme of the accident: JPEG, PNG or PDF.
    scheme: Option<AttachmentUpload>,
}

#[derive(Serialize)]
pub struct FileView {
    position: u32,
    role: AccidentFileRole,
    url: String,
}

#[derive(Serialize)]
pub struct AccidentView {
    #[serde(flatten)]
    accident: AccidentRecord,
    file_urls: Vec<FileView>,
    case_hrefs: Vec<String>,
}

fn view(state: &ApiState, accident: AccidentRecord) -> AccidentView {
    let file_urls = accident
        .files
        .iter()
        .map(|f| FileView {
            position: f.file.position,
            role: f.role,
            url: state.app.link(&format!(
                "/api/v1/accidents/{}/files/{}",
                accident.id, f.file.position
            )),
        })
        .collect();
    let case_hrefs = accident
        .cases
        .iter()
        .map(|id| state.app.link(&format!("/api/v1/cases/{id}")))
        .collect();
    AccidentView {
        accident,
        file_urls,
        case_hrefs,
    }
}

/// `POST /api/v1/accidents`.
pub async fn register(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    body: Result<Json<AccidentRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<AccidentView>), ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let occurred_at = check_occurred_at(&mut problems, request.occurred_at, Utc::now());
    let place = place_field(&mut problems, "place", request.place);
    let description = text_field(
        &mut problems,
        "description",
        request.description,
        MAX_TEXT_CHARS,
        Some("required"),
    );
    if request.vehicles.is_empty() || request.vehicles.len() > MAX_VEHICLES {
        problems.push(FieldProblem::new(
            "vehicles",
            format!("1 to {MAX_VEHICLES}"),
        ));
    }
    if request.participants.is_empty() || request.participants.len() > MAX_PARTICIPANTS {
        problems.push(FieldProblem::new(
            "participants",
            format!("1 to {MAX_PARTICIPANTS}"),
        ));
    }
    let vehicle_count = request.vehicles.len();
    let mut vehicles = Vec::new();
    for (i, v) in request.vehicles.into_iter().enumerate() {
        let field = format!("vehicles[{i}]");
        let plate = v.plate.as_deref().and_then(normalise_plate);
        if plate.is_none() {
            problems.push(FieldProblem::new(
                format!("{field}.plate"),
                "2 to 12 letters and digits",
            ));
        }
        let make = text_field(&mut problems, &format!("{field}.make"), v.make, 100, None);
        let model = text_field(&mut problems, &format!("{field}.model"), v.model, 100, None);
        let damage = text_field(
            &mut problems,
            &format!("{field}.damage"),
            v.damage,
            MAX_TEXT_CHARS,
            Some("required (`none` when there is none)"),
        );
        if let (Some(plate), Some(damage)) = (plate, damage) {
            vehicles.push(AccidentVehicle {
                plate,
                make,
                model,
                damage,
            });
        }
    }
    let participants: Vec<AccidentParticipant> = request
        .participants
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| {
            participant(
                &mut problems,
                &format!("participants[{i}]"),
                p,
                vehicle_count,
            )
        })
        .collect();
    if request.photos.len() + usize::from(request.scheme.is_some()) > MAX_ATTACHMENTS {
        problems.push(FieldProblem::new(
            "photos",
            format!("at most {MAX_ATTACHMENTS} files with the scheme"),
        ));
    }
    let photos = decode_uploads(&mut problems, "photos", &request.photos);
    check_photos(&mut problems, "photos", &photos);
    let scheme = decode_uploads(&mut problems, "scheme", request.scheme.as_slice());
    let (Some(occurred_at), Some(place), Some(description), true) =
        (occurred_at, place, description, problems.is_empty())
    else {
        return Err(ApiError::Validation(problems));
    };

    let mut roles = vec![AccidentFileRole::Photo; photos.len()];
    roles.extend(scheme.iter().map(|_| AccidentFileRole::Scheme));
    let report_id = request.report_id.unwrap_or_else(uuid::Uuid::now_v7);
    let registered_by = caller.account.login.clone();
    let registered = file_with_uploads(
        &state,
        photos.into_iter().chain(scheme).collect(),
        "an accident not registered",
        move |state, files| async move {
            let accident = NewAccident {
                report_id,
                occurred_at,
                place,
                description,
                vehicles,
                participants,
                files: files
                    .into_iter()
                    .zip(roles)
                    .map(|(file, role)| NewAccidentFile { role, file })
                    .collect(),
                registered_by,
            };
            state.app.store.register_accident(&accident).await
        },
        |registered| matches!(registered, AccidentRegistered::Registered(_)),
    )
    .await?;
    let store = &state.app.store;
    let (status, record) = match registered? {
        AccidentRegistered::Registered(record) => {
            tracing::info!(accident_id = record.id, officer = %caller.account.login, "accident registered");
            (StatusCode::CREATED, *record)
        }
        AccidentRegistered::Duplicate(id) => (
            StatusCode::OK,
            store
                .accident(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("accident {id}")))?,
        ),
    };
    Ok((status, Json(view(&state, record))))
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct AccidentPage {
    items: Vec<AccidentSummary>,
    /// Pass as `after` for the next page; absent on the last.
    next: Option<i64>,
}

/// `GET /api/v1/accidents?state=S&after=ID&limit=N`.
pub async fn list(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<AccidentPage>, ApiError> {
    let mut problems = Vec::new();
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        problems.push(FieldProblem::new("limit", "1 to 1000"));
    }
    let filter = match query.state.as_deref() {
        None => None,
        Some(raw) => {
            let parsed = AccidentState::parse(raw);
            if parsed.is_none() {
                problems.push(FieldProblem::new(
                    "state",
                    "registered, under_investigation or closed",
                ));
            }
            parsed
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::InvalidQuery(problems));
    }
    let items = state
        .app
        .store
        .accidents(&AccidentQuery {
            state: filter,
            after: query.after,
            limit,
        })
        .await?;
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(|a| a.id))
        .flatten();
    Ok(Json(AccidentPage { items, next }))
}

async fn find_accident(state: &ApiState, raw: &str) -> Result<AccidentRecord, ApiError> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::BadRequest("an accident id is a whole number".into()))?;
    state
        .app
        .store
        .accident(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("accident {id}")))
}

/// `GET /api/v1/accidents/{id}`.
pub async fn show(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<AccidentView>, ApiError> {
    let accident = find_accident(&state, &id).await?;
    Ok(Json(view(&state, accident)))
}

/// `GET /api/v1/accidents/{id}/files/{n}`: a photo or the scheme, served only while
/// it matches its hash.
pub async fn file(
    _caller: Authorized<CaseReaders>,
    State(state): State<ApiState>,
    Path((id, n)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let accident = find_accident(&state, &id).await?;
    if accident.evidence_destroyed_at.is_some() {
        return Err(ApiError::EvidenceDestroyed);
    }
    let owner = format!("accident {}", accident.id);
    serve_file(&state, &owner, &n, accident.files.iter().map(|f| &f.file)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The state the caller saw; the move applies only while the accident is still there.
    from: Option<String>,
    to: Option<String>,
    outcome: Option<String>,
    note: Option<String>,
}

/// `POST /api/v1/accidents/{id}/moves`.
pub async fn move_on(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<MoveRequest>, JsonRejection>,
) -> Result<Json<AccidentView>, ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let parse_state = |problems: &mut Vec<FieldProblem>, field: &str, raw: Option<&str>| {
        let parsed = raw.and_then(AccidentState::parse);
        if raw.is_some() && parsed.is_none() {
            problems.push(FieldProblem::new(
                field,
                "registered, under_investigation or closed",
            ));
        }
        parsed
    };
    let from = parse_state(&mut problems, "from", request.from.as_deref());
    let to = parse_state(&mut problems, "to", request.to.as_deref());
    if request.to.is_none() {
        problems.push(FieldProblem::new("to", "required"));
    }
    let outcome = request.outcome.as_deref().map(AccidentOutcome::parse);
    if let Some(None) = outcome {
        problems.push(FieldProblem::new(
            "outcome",
            "violations_filed, no_violation or referred_to_court",
        ));
    }
    let note = text_field(&mut problems, "note", request.note, MAX_TEXT_CHARS, None);
    let (Some(to), true) = (to, problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let outcome = outcome.flatten();
    let accident = find_accident(&state, &id).await?;
    let from = from.unwrap_or(accident.state);
    if from != accident.state {
        return Err(ApiError::Conflict(format!(
            "accident {} is `{}`, not `{from}`",
            accident.id, accident.state
        )));
    }
    check_move(&accident, to, outcome).map_err(|e| ApiError::Conflict(e.to_string()))?;
    let step = AccidentMove {
        accident_id: accident.id,
        from,
        to,
        outcome,
        actor: caller.account.login.clone(),
        note,
    };
    match state.app.store.move_accident(&step).await? {
        AccidentMoved::Moved(record) => {
            tracing::info!(accident_id = record.id, from = %from, to = %to, "accident moved");
            Ok(Json(view(&state, *record)))
        }
        AccidentMoved::StateChanged(now) => Err(ApiError::Conflict(format!(
            "accident {} moved on meanwhile: it is `{now}`",
            accident.id
        ))),
        AccidentMoved::NotFound => Err(ApiError::NotFound(format!("accident {}", accident.id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(
        role: &str,
        vehicle: Option<u32>,
        pin: Option<&str>,
        injuries: Option<&str>,
    ) -> ParticipantRequest {
        ParticipantRequest {
            name: Some("Асанов Б.".into()),
            role: Some(role.into()),
            vehicle,
            pin: pin.map(str::to_owned),
            injuries: injuries.map(str::to_owned),
        }
    }

    #[test]
    fn participant_rules() {
        let table = [
            (person("driver", Some(0), None, None), true),
            (person("driver", None, None, None), false),
            (person("driver", Some(2), None, None), false),
            (person("passenger", Some(1), None, Some("light")), true),
            (person("passenger", None, None, None), true),
            (
                person("pedestrian", None, Some("12345678901234"), Some("serious")),
                true,
            ),
            (person("pedestrian", Some(0), None, None), false),
            (person("witness", None, Some("123456789012"), None), true),
            (person("witness", None, Some("1234"), None), false),
            (person("driver", Some(0), None, Some("dead")), false),
            (person("bystander", None, None, None), false),
        ];
        for (i, (request, ok)) in table.into_iter().enumerate() {
            let mut problems = Vec::new();
            let got = participant(&mut problems, "p", request, 2);
            assert_eq!(got.is_some(), ok, "row {i}: {problems:?}");
            assert_eq!(problems.is_empty(), ok, "row {i}");
        }
    }

    #[test]
    fn place_rules() {
        let place = |address: Option<&str>, lat: Option<i32>, lon: Option<i32>| PlaceRequest {
            address: address.map(str::to_owned),
            lat_e6: lat,
            lon_e6: lon,
        };
        let table = [
            (Some(place(Some("Бишкек, пр. Чуй 1"), None, None)), true),
            (
                Some(place(Some("Бишкек"), Some(42_874_620), Some(74_612_345))),
                true,
            ),
            (Some(place(Some("Бишкек"), Some(42_874_620), None)), false),
            (
                Some(place(Some("Бишкек"), Some(95_000_000), Some(0))),
                false,
            ),
            (Some(place(Some("  "), None, None)), false),
            (None, false),
        ];
        for (i, (request, ok)) in table.into_iter().enumerate() {
            let mut problems = Vec::new();
            let got = place_field(&mut problems, "place", request);
            assert_eq!(got.is_some(), ok, "row {i}: {problems:?}");
            assert_eq!(problems.is_empty(), ok, "row {i}");
        }
    }

    #[test]
    fn occurred_at_is_required_and_not_ahead() {
        let now = Utc::now();
        let table = [
            (None, false),
            (Some(now - Duration::days(3)), true),
            (Some(now + Duration::minutes(2)), true),
            (Some(now + Duration::hours(1)), false),
        ];
        for (at, ok) in table {
            let mut problems = Vec::new();
            assert_eq!(
                check_occurred_at(&mut problems, at, now).is_some(),
                ok,
                "{at:?}"
            );
        }
    }
}
