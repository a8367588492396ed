//! Violations an officer saw and files himself, with his photos: each becomes a case
//! in `approved` (the officer is the witness, so no machine reading and no review),
//! which the fines worker takes up like any approved case. A filing may name the road
//! accident it came from.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use kozomol_core::{
    CaseId, CaseState, FrameRole, Measurement, MeasuringDevice, OfficerReport, ViolationKind,
    OFFICER_SOURCE,
};
use kozomol_fines::appeals::MAX_ATTACHMENTS;
use kozomol_fines::review::normalise_plate;
use kozomol_store::{NewFrame, NewOfficerViolation, OfficerFiled};
use serde::{Deserialize, Serialize};

use super::access::{Authorized, DeskOfficers};
use super::accidents::{check_occurred_at, place_field, PlaceRequest, MAX_TEXT_CHARS};
use super::appeals::{decode_uploads, file_with_uploads, AttachmentUpload, Upload};
use super::{json_body, text_field, ApiError, ApiState, FieldProblem};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerViolationRequest {
    /// The client's id of this filing; a retry with the same id files nothing new.
    report_id: Option<uuid::Uuid>,
    plate: Option<String>,
    kind: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    place: Option<PlaceRequest>,
    speed_kmh: Option<u16>,
    limit_kmh: Option<u16>,
    /// The speed gun a speeding report's speed was measured with.
    device: Option<MeasuringDevice>,
    notes: Option<String>,
    accident_id: Option<i64>,
    /// Scene photos, JPEG; the first is the resolution's overview.
    #[serde(default)]
    photos: Vec<AttachmentUpload>,
    /// A close-up of the plate, JPEG.
    plate_photo: Option<AttachmentUpload>,
}

#[derive(Serialize)]
pub struct OfficerViolationFiled {
    case_id: CaseId,
    state: CaseState,
    /// False when the same report had been filed before (nothing new was written).
    created: bool,
    case_href: String,
}

/// Checks that every photo is a JPEG the resolution can embed unchanged: the PDF
/// carries the officer's own bytes, whose hash stays the evidence.
pub(crate) fn check_photos(problems: &mut Vec<FieldProblem>, field: &str, photos: &[Upload]) {
    for (i, photo) in photos.iter().enumerate() {
        let bad = if photo.content_type != "image/jpeg" {
            Some("a photo is image/jpeg".to_owned())
        } else {
            kozomol_fines::resolution::embeddable_photo(&photo.bytes)
                .err()
                .map(|e| format!("not a usable JPEG: {e}"))
        };
        if let Some(message) = bad {
            problems.push(FieldProblem::new(format!("{field}[{i}]"), message));
        }
    }
}

/// `POST /api/v1/officer-violations`.
pub async fn file(
    caller: Authorized<DeskOfficers>,
    State(state): State<ApiState>,
    body: Result<Json<OfficerViolationRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<OfficerViolationFiled>), ApiError> {
    let request = json_body(body)?;
    // The filing officer is the witness the resolution names.
    if caller.account.officer.is_none() {
        return Err(ApiError::Validation(vec![FieldProblem::new(
            "officer",
            format!(
                "account `{}` has no entry in the officers' register (full name and badge), \
                 which a resolution names its witness by; an admin sets it",
                caller.account.login
            ),
        )]));
    }
    let mut problems = Vec::new();
    let plate = match request.plate.as_deref().map(normalise_plate) {
        Some(Some(plate)) => Some(plate),
        Some(None) => {
            problems.push(FieldProblem::new("plate", "2 to 12 letters and digits"));
            None
        }
        None => {
            problems.push(FieldProblem::new("plate", "required"));
            None
        }
    };
    let kind = match request.kind.as_deref().map(str::parse::<ViolationKind>) {
        Some(Ok(kind)) => Some(kind),
        _ => {
            let kinds: Vec<&str> = ViolationKind::ALL.iter().map(|k| k.as_str()).collect();
            problems.push(FieldProblem::new(
                "kind",
                format!("one of {}", kinds.join(", ")),
            ));
            None
        }
    };
    let measurement = Measurement {
        speed_kmh: request.speed_kmh,
        limit_kmh: request.limit_kmh,
        red_elapsed_ms: None,
    };
    if let Some(kind) = kind {
        if let Err(e) = OfficerReport::check_measurement(kind, &measurement) {
            problems.push(FieldProblem::new("speed_kmh", e.to_string()));
        }
        if let Err(e) = OfficerReport::check_device(kind, request.device.as_ref()) {
            problems.push(FieldProblem::new("device", e.to_string()));
        }
    }
    let occurred_at = check_occurred_at(&mut problems, request.occurred_at, Utc::now());
    // Issuing checks it again; here the officer learns it while he can still correct it.
    if let (Some(device), Some(at)) = (&request.device, occurred_at) {
        let c = &device.certificate;
        // Dates out of order are `check_device`'s problem, reported once.
        let uncovered = (c.valid_from <= c.valid_until)
            .then(|| c.not_covering(state.app.jurisdiction.local_date(at)))
            .flatten();
        if let Some(why) = uncovered {
            problems.push(FieldProblem::new("device", why));
        }
    }
    let place = place_field(&mut problems, "place", request.place);
    let notes = text_field(&mut problems, "notes", request.notes, MAX_TEXT_CHARS, None);
    let uploads_count = request.photos.len() + usize::from(request.plate_photo.is_some());
    if request.photos.is_empty() {
        problems.push(FieldProblem::new(
            "photos",
            "at least one photo of the scene",
        ));
    } else if uploads_count > MAX_ATTACHMENTS {
        problems.push(FieldProblem::new(
            "photos",
            format!("at most {MAX_ATTACHMENTS} photos in all"),
        ));
    }
    let mut photos = decode_uploads(&mut problems, "photos", &request.photos);
    check_photos(&mut problems, "photos", &photos);
    let plate_photo = decode_uploads(&mut problems, "plate_photo", request.plate_photo.as_slice());
    check_photos(&mut problems, "plate_photo", &plate_photo);
    let (Some(plate), Some(kind), Some(occurred_at), Some(place), true) =
        (plate, kind, occurred_at, place, problems.is_empty())
    else {
        return Err(ApiError::Validation(problems));
    };

    // An accident that does not exist is refused before any photo is stored: no report
    // under it was ever filed. A closed one is the store's to judge, after the report
    // id: a report filed before the accident closed, sent again, is that report.
    if let Some(accident) = request.accident_id {
        if state.app.store.accident(accident).await?.is_none() {
            return Err(ApiError::Validation(vec![FieldProblem::new(
                "accident_id",
                "no such accident",
            )]));
        }
    }
    let mut roles = vec![FrameRole::Overview; photos.len()];
    roles.extend(plate_photo.iter().map(|_| FrameRole::Plate));
    photos.extend(plate_photo);
    let report = OfficerReport {
        source: OFFICER_SOURCE.to_owned(),
        report_id: request.report_id.unwrap_or_else(uuid::Uuid::now_v7),
        kind,
        occurred_at,
        plate,
        measurement,
        device: request.device,
        place,
        officer: caller.account.login.clone(),
        notes,
        accident_id: request.accident_id,
    };
    let (report_id, accident_id) = (report.report_id, report.accident_id);
    let filed = file_with_uploads(
        &state,
        photos,
        "an officer's report not filed",
        move |state, stored| async move {
            let filing = NewOfficerViolation {
                report,
                photos: stored
                    .into_iter()
                    .zip(roles)
                    .map(|(file, role)| NewFrame {
                        role,
                        sha256: file.evidence.sha256,
                        location: file.evidence.location,
                    })
                    .collect(),
            };
            state.app.store.file_officer_violation(&filing).await
        },
        |filed| matches!(filed, OfficerFiled::Filed(_)),
    )
    .await?;
    let (status, case_id) = match filed? {
        OfficerFiled::Filed(id) => {
            tracing::info!(case_id = %id, officer = %caller.account.login, kind = %kind, "officer filed a violation");
            (StatusCode::CREATED, id)
        }
        OfficerFiled::Duplicate(id) => (StatusCode::OK, id),
        OfficerFiled::Conflict(id) => {
            return Err(ApiError::Conflict(format!(
                "report id {report_id} was used for another report (case {id})"
            )))
        }
        OfficerFiled::AccidentNotFound => {
            return Err(ApiError::Validation(vec![FieldProblem::new(
                "accident_id",
                "no such accident",
            )]))
        }
        OfficerFiled::AccidentClosed => {
            return Err(ApiError::Conflict(format!(
                "accident {} is closed: nothing more is filed under it",
                accident_id.unwrap_or_default()
            )))
        }
    };
    let case = state
        .app
        .store
        .case(case_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("case {case_id}")))?;
    Ok((
        status,
        Json(OfficerViolationFiled {
            case_id,
            state: case.state,
            created: status == StatusCode::CREATED,
            case_href: state.app.link(&format!("/api/v1/cases/{case_id}")),
        }),
    ))
}
