//! A violation an officer saw and filed himself (the second module of the city's
//! system): no camera stands behind it, the officer is the witness, and a speed he
//! reports rests on the speed gun he names with its calibration certificate. Its report is what the case stores where a camera case stores its signed
//! event, so every reader can tell the two apart by `source`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CoreError, Measurement, MeasuringDevice, ViolationKind};

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
    /// The speed gun a reported speed was measured with; speeding only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<MeasuringDevice>,
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
    /// red phase, so only speeding needs numbers: a speed above a positive limit.
    pub fn check_measurement(kind: ViolationKind, m: &Measurement) -> Result<(), CoreError> {
        match kind {
            ViolationKind::Speeding => m.check(kind),
            _ if m.speed_kmh.is_some() || m.limit_kmh.is_some() => Err(CoreError::InvalidEvent(
                format!("{kind} takes no measured speed or limit"),
            )),
            _ => Ok(()),
        }
    }

    /// A measured speed is evidence only from a calibrated device: speeding names the
    /// speed gun (serial and certificate, its dates in order); no other kind names one.
    /// Whether the certificate covers the day is the issuing stage's check, which knows
    /// the jurisdiction's calendar day.
    pub fn check_device(
        kind: ViolationKind,
        device: Option<&MeasuringDevice>,
    ) -> Result<(), CoreError> {
        let invalid = |why: String| Err(CoreError::InvalidEvent(why));
        match (kind, device) {
            (ViolationKind::Speeding, None) => invalid(
                "speeding needs the speed gun: its serial and calibration certificate".into(),
            ),
            (ViolationKind::Speeding, Some(d)) => {
                let c = &d.certificate;
                if d.serial.trim().is_empty() || d.serial.chars().count() > 64 {
                    invalid("the speed gun's serial must be 1-64 characters".into())
                } else if c.number.trim().is_empty() || c.number.chars().count() > 64 {
                    invalid("the certificate number must be 1-64 characters".into())
                } else if c.valid_until < c.valid_from {
                    invalid(format!(
                        "certificate {} ends ({}) before it starts ({})",
                        c.number, c.valid_until, c.valid_from
                    ))
                } else {
                    Ok(())
                }
            }
            (_, Some(_)) => invalid(format!("{kind} takes no measuring device")),
            (_, None) => Ok(()),
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

    #[test]
    fn device_rules() {
        let gun = |serial: &str, number: &str, from: &str, until: &str| MeasuringDevice {
            serial: serial.into(),
            certificate: crate::CalibrationCertificate {
                number: number.into(),
                valid_from: from.parse().expect("date"),
                valid_until: until.parse().expect("date"),
            },
        };
        let good = gun(
            "ИСКРА-1 №4471",
            "KG-CSM-2026-0117",
            "2026-01-10",
            "2027-01-09",
        );
        let table = [
            (ViolationKind::Speeding, Some(good.clone()), true),
            (ViolationKind::Speeding, None, false),
            (
                ViolationKind::Speeding,
                Some(gun(" ", "KG-CSM-2026-0117", "2026-01-10", "2027-01-09")),
                false,
            ),
            (
                ViolationKind::Speeding,
                Some(gun("4471", "", "2026-01-10", "2027-01-09")),
                false,
            ),
            (
                ViolationKind::Speeding,
                Some(gun("4471", "C-1", "2027-01-10", "2026-01-09")),
                false,
            ),
            // A one-day certificate is in order.
            (
                ViolationKind::Speeding,
                Some(gun("4471", "C-1", "2026-01-10", "2026-01-10")),
                true,
            ),
            (ViolationKind::RedLight, Some(good), false),
            (ViolationKind::RedLight, None, true),
        ];
        for (kind, device, ok) in table {
            assert_eq!(
                OfficerReport::check_device(kind, device.as_ref()).is_ok(),
                ok,
                "{kind} {device:?}"
            );
        }
    }
}
