//! The device register: cameras with their keys, measuring devices, certificates and
//! sites; their last-known status; and the signed config pushed to them.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::NaiveDate;
use kozomol_core::envelope::parse_public_key;
use kozomol_core::messages::{CameraConfig, SERVER_KID};
use kozomol_core::topics::{topic, TopicKind};
use kozomol_core::{CalibrationCertificate, CameraId, Site};
use kozomol_store::{CameraRecord, CameraRegistration};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use super::access::{Admins, AnyStaff, Authorized};
use super::{json_body, ApiError, ApiState, FieldProblem};

#[derive(Serialize)]
pub struct CameraView {
    /// `online` is whether it is online now: its last status said so and it was
    /// heard from lately (`CameraRecord::online_at`).
    #[serde(flatten)]
    record: CameraRecord,
    /// Its newest event or online status.
    heard_at: Option<chrono::DateTime<chrono::Utc>>,
    href: String,
}

fn view(state: &ApiState, mut record: CameraRecord) -> CameraView {
    let href = state
        .app
        .link(&format!("/api/v1/cameras/{}", record.camera_id));
    let heard_at = record.heard_at();
    record.online = record.online_at(chrono::Utc::now());
    CameraView {
        heard_at,
        record,
        href,
    }
}

#[derive(Serialize)]
pub struct CameraList {
    items: Vec<CameraView>,
}

/// `GET /api/v1/cameras`.
pub async fn list(
    _caller: Authorized<AnyStaff>,
    State(state): State<ApiState>,
) -> Result<Json<CameraList>, ApiError> {
    let cameras = state.app.store.cameras().await?;
    Ok(Json(CameraList {
        items: cameras.into_iter().map(|c| view(&state, c)).collect(),
    }))
}

/// `GET /api/v1/cameras/{id}`.
pub async fn show(
    _caller: Authorized<AnyStaff>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<CameraView>, ApiError> {
    let record = find_camera(&state, &id).await?;
    Ok(Json(view(&state, record)))
}

async fn find_camera(state: &ApiState, raw_id: &str) -> Result<CameraRecord, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "camera `{}`",
            raw_id.chars().take(64).collect::<String>()
        ))
    };
    let id = CameraId::parse(raw_id).map_err(|_| not_found())?;
    state.app.store.camera(&id).await?.ok_or_else(not_found)
}

/// A registration as sent: every field optional so that all problems are reported.
#[derive(Deserialize)]
pub struct RegistrationRequest {
    camera_id: Option<String>,
    public_key: Option<String>,
    device_serial: Option<String>,
    certificate: Option<CertificateRequest>,
    site: Option<SiteRequest>,
}

#[derive(Deserialize)]
pub struct CertificateRequest {
    number: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
}

#[derive(Deserialize)]
pub struct SiteRequest {
    id: Option<String>,
    lat_e6: Option<i64>,
    lon_e6: Option<i64>,
    address: Option<String>,
    direction: Option<String>,
    lane: Option<i64>,
}

const MAX_TEXT: usize = 256;

/// `POST /api/v1/cameras`: adds a camera to the device register, or updates it.
pub async fn register(
    caller: Authorized<Admins>,
    State(state): State<ApiState>,
    body: Result<Json<RegistrationRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let registration = validate_registration(json_body(body)?)?;
    state.app.store.register_camera(&registration).await?;
    let record = state
        .app
        .store
        .camera(&registration.camera_id)
        .await?
        .ok_or_else(|| ApiError::Internal("registered camera is not readable".into()))?;
    info!(
        camera = %registration.camera_id,
        device = %registration.device_serial,
        certificate = %registration.certificate.number,
        by = %caller.account.login,
        "camera registered"
    );
    let view = view(&state, record);
    let location = view.href.clone();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    ))
}

/// Checks every field and reports every problem at once.
fn validate_registration(request: RegistrationRequest) -> Result<CameraRegistration, ApiError> {
    let mut problems = Vec::new();
    let camera_id = match request.camera_id.as_deref().map(CameraId::parse) {
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => {
            problems.push(FieldProblem::new("camera_id", e.to_string()));
            None
        }
        None => {
            problems.push(FieldProblem::new("camera_id", "is required"));
            None
        }
    };
    let public_key = match request.public_key.as_deref() {
        Some(hex_key) if hex_key.len() == 64 => match parse_public_key(hex_key) {
            Ok(key) => Some(key.to_bytes()),
            Err(e) => {
                problems.push(FieldProblem::new("public_key", e.to_string()));
                None
            }
        },
        Some(_) => {
            problems.push(FieldProblem::new(
                "public_key",
                "must be 64 hex characters (an Ed25519 public key)",
            ));
            None
        }
        None => {
            problems.push(FieldProblem::new("public_key", "is required"));
            None
        }
    };
    let device_serial = text(request.device_serial, "device_serial", &mut problems);

    let certificate = match request.certificate {
        None => {
            problems.push(FieldProblem::new("certificate", "is required"));
            None
        }
        Some(cert) => {
            let number = text(cert.number, "certificate.number", &mut problems);
            let from = date(cert.valid_from, "certificate.valid_from", &mut problems);
            let until = date(cert.valid_until, "certificate.valid_until", &mut problems);
            if let (Some(from), Some(until)) = (from, until) {
                if until < from {
                    problems.push(FieldProblem::new(
                        "certificate.valid_until",
                        "must not be before valid_from",
                    ));
                }
            }
            match (number, from, until) {
                (Some(number), Some(valid_from), Some(valid_until)) => {
                    Some(CalibrationCertificate {
                        number,
                        valid_from,
                        valid_until,
                    })
                }
                _ => None,
            }
        }
    };

    let site = match request.site {
        None => {
            problems.push(FieldProblem::new("site", "is required"));
            None
        }
        Some(site) => {
            let id = text(site.id, "site.id", &mut problems);
            let lat = ranged(
                site.lat_e6,
                "site.lat_e6",
                -90_000_000,
                90_000_000,
                &mut problems,
            );
            let lon = ranged(
                site.lon_e6,
                "site.lon_e6",
                -180_000_000,
                180_000_000,
                &mut problems,
            );
            let address = text(site.address, "site.address", &mut problems);
            let direction = text(site.direction, "site.direction", &mut problems);
            let lane = ranged(site.lane, "site.lane", 1, 255, &mut problems);
            match (id, lat, lon, address, direction, lane) {
                (Some(id), Some(lat), Some(lon), Some(address), Some(direction), Some(lane)) => {
                    Some(Site {
                        id,
                        lat_e6: i32::try_from(lat).expect("latitude was range-checked"),
                        lon_e6: i32::try_from(lon).expect("longitude was range-checked"),
                        address,
                        direction,
                        lane: u8::try_from(lane).expect("lane was range-checked"),
                    })
                }
                _ => None,
            }
        }
    };

    match (camera_id, public_key, device_serial, certificate, site) {
        (Some(camera_id), Some(public_key), Some(device_serial), Some(certificate), Some(site))
            if problems.is_empty() =>
        {
            Ok(CameraRegistration {
                camera_id,
                public_key,
                device_serial,
                certificate,
                site,
            })
        }
        _ => Err(ApiError::Validation(problems)),
    }
}

fn text(value: Option<String>, field: &str, problems: &mut Vec<FieldProblem>) -> Option<String> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() && v.chars().count() <= MAX_TEXT => Some(v),
        Some(_) => {
            problems.push(FieldProblem::new(
                field,
                format!("must be 1-{MAX_TEXT} characters"),
            ));
            None
        }
        None => {
            problems.push(FieldProblem::new(field, "is required"));
            None
        }
    }
}

fn date(value: Option<String>, field: &str, problems: &mut Vec<FieldProblem>) -> Option<NaiveDate> {
    match value.as_deref().map(str::parse::<NaiveDate>) {
        Some(Ok(date)) => Some(date),
        Some(Err(_)) => {
            problems.push(FieldProblem::new(field, "must be a date YYYY-MM-DD"));
            None
        }
        None => {
            problems.push(FieldProblem::new(field, "is required"));
            None
        }
    }
}

fn ranged(
    value: Option<i64>,
    field: &str,
    min: i64,
    max: i64,
    problems: &mut Vec<FieldProblem>,
) -> Option<i64> {
    match value {
        Some(v) if (min..=max).contains(&v) => Some(v),
        Some(_) => {
            problems.push(FieldProblem::new(
                field,
                format!("must be from {min} to {max}"),
            ));
            None
        }
        None => {
            problems.push(FieldProblem::new(field, "is required"));
            None
        }
    }
}

#[derive(Serialize)]
pub struct ConfigPublished {
    camera_id: CameraId,
    version: u64,
    topic: String,
    /// SHA-256 of the signed COSE_Sign1 bytes, hex.
    signed_config_sha256: String,
}

/// `PUT /api/v1/cameras/{id}/config`: signs the config with the server key and hands
/// it to the broker as the camera's retained config.
pub async fn put_config(
    caller: Authorized<Admins>,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<CameraConfig>, JsonRejection>,
) -> Result<Json<ConfigPublished>, ApiError> {
    let config = json_body(body)?;
    let camera = find_camera(&state, &id).await?;
    validate_config(&config)?;
    let publisher = state
        .app
        .config_publisher
        .clone()
        .ok_or(ApiError::ConfigUnavailable)?;
    // One Ed25519 signature over a few hundred bytes: microseconds, fine inline.
    let signed = config
        .sign(&camera.camera_id, &state.app.server_key)
        .map_err(|e| ApiError::Internal(format!("signing camera config: {e}")))?;
    let digest = hex::encode(Sha256::digest(&signed));
    publisher
        .publish_config(&camera.camera_id, signed)
        .await
        .map_err(ApiError::ConfigPublish)?;
    info!(
        camera = %camera.camera_id,
        version = config.version,
        by = %caller.account.login,
        "camera config published"
    );
    Ok(Json(ConfigPublished {
        topic: topic(&camera.camera_id, TopicKind::Config),
        camera_id: camera.camera_id,
        version: config.version,
        signed_config_sha256: digest,
    }))
}

fn validate_config(config: &CameraConfig) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    if config.version == 0 {
        problems.push(FieldProblem::new("version", "must be at least 1"));
    }
    for (i, limit) in config.speed_limits.iter().enumerate() {
        if limit.lane == 0 {
            problems.push(FieldProblem::new(
                format!("speed_limits[{i}].lane"),
                "must be at least 1",
            ));
        }
        if !(1..=300).contains(&limit.limit_kmh) {
            problems.push(FieldProblem::new(
                format!("speed_limits[{i}].limit_kmh"),
                "must be from 1 to 300",
            ));
        }
        for (name, value) in [("from", &limit.from), ("until", &limit.until)] {
            if chrono::NaiveTime::parse_from_str(value, "%H:%M").is_err() {
                problems.push(FieldProblem::new(
                    format!("speed_limits[{i}].{name}"),
                    "must be a time HH:MM",
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(problems))
    }
}

#[derive(Serialize)]
pub struct ServerKey {
    /// Key id in the COSE header of signed config.
    kid: &'static str,
    algorithm: &'static str,
    /// Ed25519 public key, 64 hex characters.
    public_key: String,
}

/// `GET /api/v1/server-key`: the public key cameras verify config with.
pub async fn server_key(
    _caller: Authorized<AnyStaff>,
    State(state): State<ApiState>,
) -> Json<ServerKey> {
    Json(ServerKey {
        kid: SERVER_KID,
        algorithm: "EdDSA",
        public_key: hex::encode(state.app.server_key.verifying_key().to_bytes()),
    })
}
