//! Identifiers: cameras (topic-safe names), events (UUIDv7 from the camera) and
//! cases (numeric, because the Tunduk contract carries event ids as `xsd:long`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::CoreError;

/// A camera's registered name; it is one level of an MQTT topic, so no `/`, `+` or `#`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CameraId(String);

impl CameraId {
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(CameraId(raw.to_owned()))
        } else {
            Err(CoreError::InvalidCameraId(raw.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CameraId {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CameraId::parse(&value)
    }
}

impl From<CameraId> for String {
    fn from(value: CameraId) -> Self {
        value.0
    }
}

impl FromStr for CameraId {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CameraId::parse(s)
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A camera's id for one violation event: a UUIDv7 made on the camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh UUIDv7 (time-ordered), as a camera makes one.
    pub fn new_v7() -> Self {
        EventId(Uuid::now_v7())
    }
}

impl FromStr for EventId {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(EventId)
            .map_err(|e| CoreError::InvalidEventId(e.to_string()))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// kozomol's numeric case id, unique across the whole system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseId(pub i64);

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids() {
        let cases = [
            ("cam-001", true),
            ("BISHKEK_12", true),
            ("", false),
            ("a/b", false),
            ("a+b", false),
            ("#", false),
            ("камера", false),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
        ];
        for (raw, ok) in cases {
            assert_eq!(CameraId::parse(raw).is_ok(), ok, "{raw}");
        }
    }
}
