//! MQTT topic names of the camera wire protocol, and the login a broker may ask of
//! its clients.

use crate::CameraId;

/// A user name and password the broker checks at connect (Mosquitto's
/// `password_file`); the messages themselves are signed either way.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BrokerLogin {
    // Logged settings never show the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerLogin")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

pub const PREFIX: &str = "kozomol/v1/cameras";
/// What ingest subscribes to (as `$share/ingest/...` on an external broker).
pub const VIOLATIONS_FILTER: &str = "kozomol/v1/cameras/+/violations";
/// The shared-subscription group ingest processes join.
pub const SHARED_GROUP: &str = "ingest";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind {
    Violations,
    Receipts,
    Status,
    Config,
}

impl TopicKind {
    fn suffix(self) -> &'static str {
        match self {
            TopicKind::Violations => "violations",
            TopicKind::Receipts => "receipts",
            TopicKind::Status => "status",
            TopicKind::Config => "config",
        }
    }
}

pub fn topic(camera: &CameraId, kind: TopicKind) -> String {
    format!("{PREFIX}/{camera}/{}", kind.suffix())
}

/// The filter for a shared subscription to violations.
pub fn shared_violations_filter() -> String {
    format!("$share/{SHARED_GROUP}/{VIOLATIONS_FILTER}")
}

/// Splits `kozomol/v1/cameras/{camera}/{kind}`.
pub fn parse(topic: &str) -> Option<(CameraId, TopicKind)> {
    let rest = topic.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let (camera, suffix) = rest.split_once('/')?;
    let kind = [
        TopicKind::Violations,
        TopicKind::Receipts,
        TopicKind::Status,
        TopicKind::Config,
    ]
    .into_iter()
    .find(|k| k.suffix() == suffix)?;
    Some((CameraId::parse(camera).ok()?, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let cam = CameraId::parse("cam-7").expect("id");
        for kind in [
            TopicKind::Violations,
            TopicKind::Receipts,
            TopicKind::Status,
            TopicKind::Config,
        ] {
            assert_eq!(parse(&topic(&cam, kind)), Some((cam.clone(), kind)));
        }
        assert_eq!(parse("kozomol/v1/cameras/cam-7/other"), None);
        assert_eq!(parse("kozomol/v2/cameras/cam-7/violations"), None);
        assert_eq!(parse("kozomol/v1/cameras/a/b/violations"), None);
    }
}
