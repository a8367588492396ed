//! Turning stored column values back into domain types. A value that does not parse
//! is `StoreError::Corrupt`: this code never writes one.

use chrono::{DateTime, Utc};
use kozomol_core::{CameraId, CaseState, DeadLetterReason, FrameRole, Role, ViolationKind};

use crate::error::corrupt;
use crate::{CountedSite, StoreError};

pub(crate) fn camera_id(raw: &str) -> Result<CameraId, StoreError> {
    CameraId::parse(raw).map_err(|e| corrupt(format!("camera id: {e}")))
}

/// A case's camera; none for a case an officer filed.
pub(crate) fn opt_camera_id(raw: Option<&str>) -> Result<Option<CameraId>, StoreError> {
    raw.map(camera_id).transpose()
}

pub(crate) fn state(raw: &str) -> Result<CaseState, StoreError> {
    raw.parse().map_err(|e| corrupt(format!("case state: {e}")))
}

pub(crate) fn opt_state(raw: Option<String>) -> Result<Option<CaseState>, StoreError> {
    raw.as_deref().map(state).transpose()
}

pub(crate) fn kind(raw: &str) -> Result<ViolationKind, StoreError> {
    raw.parse()
        .map_err(|e| corrupt(format!("violation kind: {e}")))
}

pub(crate) fn role(raw: &str) -> Result<Role, StoreError> {
    raw.parse().map_err(|e| corrupt(format!("role: {e}")))
}

pub(crate) fn frame_role(raw: &str) -> Result<FrameRole, StoreError> {
    match raw {
        "overview" => Ok(FrameRole::Overview),
        "plate" => Ok(FrameRole::Plate),
        other => Err(corrupt(format!("frame role `{other}`"))),
    }
}

pub(crate) fn reason(raw: &str) -> Result<DeadLetterReason, StoreError> {
    DeadLetterReason::parse(raw).ok_or_else(|| corrupt(format!("dead-letter reason `{raw}`")))
}

pub(crate) fn hash32(raw: &[u8], what: &str) -> Result<[u8; 32], StoreError> {
    raw.try_into()
        .map_err(|_| corrupt(format!("{what} has {} bytes, not 32", raw.len())))
}

/// A case's stored trace; an unreadable one is only a lost parent for the next span,
/// never a reason to stop work on the case.
pub(crate) fn trace_parent(
    case: kozomol_core::CaseId,
    raw: &str,
) -> Option<kozomol_core::TraceParent> {
    raw.parse()
        .map_err(|e| tracing::warn!(case_id = %case, error = %e, "unreadable case trace ignored"))
        .ok()
}

pub(crate) fn uuid(raw: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(raw).map_err(|e| corrupt(format!("uuid `{raw}`: {e}")))
}

/// SQLite keeps instants as unix milliseconds.
pub(crate) fn millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt(format!("instant {ms} ms")))
}

pub(crate) fn opt_millis(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(millis).transpose()
}

pub(crate) fn u32_of(raw: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(raw).map_err(|_| corrupt(format!("{what} {raw} out of range")))
}

pub(crate) fn u8_of(raw: i64, what: &str) -> Result<u8, StoreError> {
    u8::try_from(raw).map_err(|_| corrupt(format!("{what} {raw} out of range")))
}

pub(crate) fn u16_of(raw: i64, what: &str) -> Result<u16, StoreError> {
    u16::try_from(raw).map_err(|_| corrupt(format!("{what} {raw} out of range")))
}

/// A counted site from its parts as the events name them (`HourlyCount::site`); none
/// where the events name no site (an officer's cases).
pub(crate) fn counted_site(
    id: Option<String>,
    address: Option<String>,
    lat_e6: Option<i64>,
    lon_e6: Option<i64>,
) -> Result<Option<CountedSite>, StoreError> {
    let Some(id) = id else {
        return Ok(None);
    };
    let coordinate = |raw: Option<i64>, what: &str| {
        raw.and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| corrupt(format!("site {id}: {what} {raw:?}")))
    };
    Ok(Some(CountedSite {
        address: address.ok_or_else(|| corrupt(format!("site {id}: no address")))?,
        lat_e6: coordinate(lat_e6, "latitude")?,
        lon_e6: coordinate(lon_e6, "longitude")?,
        id,
    }))
}
