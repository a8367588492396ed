//! The measuring device in a camera complex and the certificate that says it was
//! calibrated (поверка): a fine rests on a device whose calibration was valid at capture.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A calibration certificate with the calendar dates of its validity (inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationCertificate {
    pub number: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
}

impl CalibrationCertificate {
    /// Whether the certificate covers `date` (the capture's calendar date).
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && date <= self.valid_until
    }

    /// Why the certificate does not cover `date`, in words; `None` when it does.
    pub fn not_covering(&self, date: NaiveDate) -> Option<String> {
        (!self.covers(date)).then(|| {
            format!(
                "calibration certificate {} is valid {}..{} and does not cover {date}",
                self.number, self.valid_from, self.valid_until
            )
        })
    }
}

/// A measuring device as the camera reports it in each event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuringDevice {
    pub serial: String,
    pub certificate: CalibrationCertificate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("test date")
    }

    #[test]
    fn certificate_validity_is_inclusive() {
        let cert = CalibrationCertificate {
            number: "KG-2026-0001".into(),
            valid_from: d("2026-01-10"),
            valid_until: d("2027-01-09"),
        };
        let table = [
            ("2026-01-09", false),
            ("2026-01-10", true),
            ("2026-06-01", true),
            ("2027-01-09", true),
            ("2027-01-10", false),
        ];
        for (date, covered) in table {
            assert_eq!(cert.covers(d(date)), covered, "{date}");
            assert_eq!(cert.not_covering(d(date)).is_none(), covered, "{date}");
        }
        assert_eq!(
            cert.not_covering(d("2027-01-10")).as_deref(),
            Some(
                "calibration certificate KG-2026-0001 is valid 2026-01-10..2027-01-09 and \
                 does not cover 2027-01-10"
            )
        );
    }
}
