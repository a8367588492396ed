//! A violation an officer saw and filed himself (the second module of the city's
//! system): no camera and no measuring device stand behind it, the officer is the
//! witness. Its report is what the case stores where a camera case stores its signed
//! event, so every reader can tell the two apart by `source`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CoreError, Measurement, ViolationKind};

/// The `source` of an officer's report.
pub const OFFICER_SOURCE: &str = "officer";

/// Where the officer saw the violation. Coordinates are WGS 84 in millionths of a
/// degree, present together or not at all (an officer on foot may have none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedPlace {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat_e6: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon_e6: Option<i32>,
}

/// The filed report, as the case keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerReport {
    /// Always [`OFFICER_SOURCE`].
    pub source: String,
    /// The client's id of the filing; a repeat with the same id is the same report.
    pub report_id: uuid::Uuid,
    pub kind: ViolationKind,
    pub occurred_at: DateTime<Utc>,
    /// Upper case, letters and digits only.
    pub plate: String,
    #[serde(default)]
    pub measurement: Measurement,
    pub place: ReportedPlace,
    /// The filing officer's login: the witness who confirms the violation.
    pub officer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The road accident the violation was found in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accident_id: Option<i64>,
}

impl OfficerReport {
    /// What an officer must state for the kind. Unlike a camera, an officer times no
    /// red phase, so only speeding needs numbers (read off a speed gun he names in the
    /// notes): a speed above a positive limit.
    pub fn check_measurement(kind: ViolationKind, m: &Measurement) -> Result<(), CoreError> {
        match kind {
            ViolationKind::Speeding => m.check(kind),
            _ if m.speed_kmh.is_some() || m.limit_kmh.is_some() => Err(CoreError::InvalidEvent(
                format!("{kind} takes no measured speed or limit"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_rules() {
        let m = |speed, limit| Measurement {
            speed_kmh: speed,
            limit_kmh: limit,
            red_elapsed_ms: None,
        };
        let table = [
            (ViolationKind::Speeding, m(Some(95), Some(60)), true),
            (ViolationKind::Speeding, m(Some(60), Some(60)), false),
            (ViolationKind::Speeding, m(None, None), false),
            (ViolationKind::RedLight, m(None, None), true),
            (ViolationKind::SeatBelt, m(None, None), true),
            (ViolationKind::Phone, m(Some(80), Some(60)), false),
        ];
        for (kind, measurement, ok) in table {
            assert_eq!(
                OfficerReport::check_measurement(kind, &measurement).is_ok(),
                ok,
                "{kind} {measurement:?}"
            );
        }
    }
}
