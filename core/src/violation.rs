//! What a camera saw: the kind of violation, its measurement, where and how the time
//! was known, and the camera's own plate read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    Speeding,
    RedLight,
    StopLine,
    WrongLane,
    BusLane,
    OncomingLane,
    SeatBelt,
    Phone,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 8] = [
        ViolationKind::Speeding,
        ViolationKind::RedLight,
        ViolationKind::StopLine,
        ViolationKind::WrongLane,
        ViolationKind::BusLane,
        ViolationKind::OncomingLane,
        ViolationKind::SeatBelt,
        ViolationKind::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::Speeding => "speeding",
            ViolationKind::RedLight => "red_light",
            ViolationKind::StopLine => "stop_line",
            ViolationKind::WrongLane => "wrong_lane",
            ViolationKind::BusLane => "bus_lane",
            ViolationKind::OncomingLane => "oncoming_lane",
            ViolationKind::SeatBelt => "seat_belt",
            ViolationKind::Phone => "phone",
        }
    }
}

impl FromStr for ViolationKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ViolationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CoreError::UnknownViolationKind(s.chars().take(40).collect()))
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The measured facts of a violation. Which fields must be present depends on the
/// kind (see [`Measurement::check`]); integers only, so the signed encoding is exact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Measured speed, km/h (speeding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<u16>,
    /// The limit in force on that lane at that time, km/h (speeding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_kmh: Option<u16>,
    /// Milliseconds since the signal turned red when the stop line was crossed
    /// (red_light).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_elapsed_ms: Option<u32>,
}

impl Measurement {
    /// Checks that the measurement carries what its kind needs.
    pub fn check(&self, kind: ViolationKind) -> Result<(), CoreError> {
        match kind {
            ViolationKind::Speeding => match (self.speed_kmh, self.limit_kmh) {
                (Some(speed), Some(limit)) if speed > limit && limit > 0 => Ok(()),
                (Some(_), Some(_)) => Err(CoreError::InvalidEvent(
                    "speeding needs a measured speed above a positive limit".into(),
                )),
                _ => Err(CoreError::InvalidEvent(
                    "speeding needs speed_kmh and limit_kmh".into(),
                )),
            },
            ViolationKind::RedLight if self.red_elapsed_ms.is_none() => Err(
                CoreError::InvalidEvent("red_light needs red_elapsed_ms".into()),
            ),
            _ => Ok(()),
        }
    }
}

/// Where the violation happened. Coordinates are WGS 84 in millionths of a degree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The site's id in the device register.
    pub id: String,
    pub lat_e6: i32,
    pub lon_e6: i32,
    pub address: String,
    /// Direction of travel, as the register names it (e.g. "northbound").
    pub direction: String,
    /// Lane number counted from the kerb, 1-based.
    pub lane: u8,
}

/// Millionths of a degree (`Site::lat_e6`, `lon_e6`) as decimal degrees, exactly:
/// `42.874620`.
pub fn decimal_degrees(e6: i32) -> String {
    let sign = if e6 < 0 { "-" } else { "" };
    let abs = e6.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// How the camera knew the time of capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    Gnss,
    Ptp,
    Ntp,
    Rtc,
}

/// The camera's own plate read, if it made one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlateRead {
    /// Plate text as read, upper case, without spaces.
    pub text: String,
    /// Confidence in thousandths (0-1000).
    pub confidence_milli: u16,
    /// ISO 3166-1 alpha-2 country guess, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A character of a plate as the recognizer, the registry and people's typing all write
/// it: a Cyrillic letter that looks like a Latin one (either case), the Kazakh and
/// Ukrainian dotted І, and a full-width form (as some readers emit) become that Latin
/// letter or digit; anything else stays as it is.
pub fn latin_lookalike(c: char) -> char {
    match c {
        'А' | 'а' => 'A',
        'В' | 'в' => 'B',
        'Е' | 'е' => 'E',
        'К' | 'к' => 'K',
        'М' | 'м' => 'M',
        'Н' | 'н' => 'H',
        'О' | 'о' => 'O',
        'Р' | 'р' => 'P',
        'С' | 'с' => 'C',
        'Т' | 'т' => 'T',
        'У' | 'у' => 'Y',
        'Х' | 'х' => 'X',
        'І' | 'і' => 'I',
        '\u{FF10}'..='\u{FF5A}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalikes_are_written_in_latin() {
        for (c, want) in [
            ('А', 'A'),
            ('в', 'B'),
            ('К', 'K'),
            ('У', 'Y'),
            ('і', 'I'),
            ('\u{FF11}', '1'),
            ('\u{FF21}', 'A'),
            ('Ж', 'Ж'),
            ('7', '7'),
            ('Z', 'Z'),
        ] {
            assert_eq!(latin_lookalike(c), want, "{c}");
        }
    }

    #[test]
    fn degrees_are_written_exactly() {
        for (e6, text) in [
            (42_874_620, "42.874620"),
            (-500_000, "-0.500000"),
            (-74_000_001, "-74.000001"),
            (5, "0.000005"),
            (0, "0.000000"),
        ] {
            assert_eq!(decimal_degrees(e6), text);
        }
    }

    #[test]
    fn kinds_round_trip() {
        for kind in ViolationKind::ALL {
            assert_eq!(kind.as_str().parse::<ViolationKind>(), Ok(kind));
        }
        assert!("jaywalking".parse::<ViolationKind>().is_err());
    }

    #[test]
    fn measurement_requirements() {
        let speed = |s, l| Measurement {
            speed_kmh: Some(s),
            limit_kmh: Some(l),
            ..Default::default()
        };
        let table: [(ViolationKind, Measurement, bool); 6] = [
            (ViolationKind::Speeding, speed(95, 60), true),
            (ViolationKind::Speeding, speed(60, 60), false),
            (ViolationKind::Speeding, Measurement::default(), false),
            (ViolationKind::RedLight, Measurement::default(), false),
            (
                ViolationKind::RedLight,
                Measurement {
                    red_elapsed_ms: Some(1200),
                    ..Default::default()
                },
                true,
            ),
            (ViolationKind::SeatBelt, Measurement::default(), true),
        ];
        for (kind, m, ok) in table {
            assert_eq!(m.check(kind).is_ok(), ok, "{kind} {m:?}");
        }
    }
}
