//! The camera config in force: speed limits per lane and daily time window, taken only
//! from server-signed config messages and kept in `data_dir/state/` across restarts.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, Utc};
use ed25519_dalek::VerifyingKey;
use kozomol_core::messages::CameraConfig;
use kozomol_core::{CameraId, CoreError};

use crate::outbox::sync_dir;

/// One lane's limit in a window of local time; `until` is exclusive and the window
/// wraps past midnight when `until <= from` (`from == until` is the whole day).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Window {
    lane: u8,
    limit_kmh: u16,
    from: NaiveTime,
    until: NaiveTime,
}

impl Window {
    fn covers(&self, t: NaiveTime) -> bool {
        if self.from < self.until {
            self.from <= t && t < self.until
        } else {
            t >= self.from || t < self.until
        }
    }
}

/// A verified config with its windows parsed.
#[derive(Clone, Debug)]
pub(crate) struct AppliedConfig {
    pub version: u64,
    windows: Vec<Window>,
    /// The signed bytes, as persisted.
    signed: Vec<u8>,
}

/// Why a config message was not applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigRefusal {
    #[error("no server public key is configured")]
    NoServerKey,
    #[error(transparent)]
    Signature(#[from] CoreError),
    #[error("time window `{0}` is not HH:MM")]
    BadTime(String),
    #[error("lane 0 does not exist (lanes count from 1)")]
    BadLane,
}

impl AppliedConfig {
    /// Verifies a signed config with the server's key, checks it is addressed to
    /// `camera`, and parses its windows.
    pub fn verify(
        signed: &[u8],
        key: Option<&VerifyingKey>,
        camera: &CameraId,
    ) -> Result<Self, ConfigRefusal> {
        let key = key.ok_or(ConfigRefusal::NoServerKey)?;
        let config = CameraConfig::verify(signed, key, camera)?;
        let parse = |s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| ConfigRefusal::BadTime(s.into()))
        };
        let mut windows = Vec::with_capacity(config.speed_limits.len());
        for limit in &config.speed_limits {
            if limit.lane == 0 {
                return Err(ConfigRefusal::BadLane);
            }
            windows.push(Window {
                lane: limit.lane,
                limit_kmh: limit.limit_kmh,
                from: parse(&limit.from)?,
                until: parse(&limit.until)?,
            });
        }
        Ok(AppliedConfig {
            version: config.version,
            windows,
            signed: signed.to_vec(),
        })
    }

    /// The limit for `lane` at the capture instant, in local time at `utc_offset_minutes`;
    /// the first window listed that covers it wins.
    pub fn limit_for(&self, lane: u8, at: DateTime<Utc>, utc_offset_minutes: i32) -> Option<u16> {
        let local = local_time(at, utc_offset_minutes);
        self.windows
            .iter()
            .find(|w| w.lane == lane && w.covers(local))
            .map(|w| w.limit_kmh)
    }
}

/// The wall-clock time at `utc_offset_minutes` east of UTC.
pub(crate) fn local_time(at: DateTime<Utc>, utc_offset_minutes: i32) -> NaiveTime {
    (at + ChronoDuration::minutes(i64::from(utc_offset_minutes))).time()
}

/// Where the applied config is kept.
pub(crate) fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state").join("config.cose")
}

/// Loads the persisted config, re-verified (a key change invalidates it). Blocking.
pub(crate) fn load(
    data_dir: &Path,
    key: Option<&VerifyingKey>,
    camera: &CameraId,
) -> io::Result<Option<Result<AppliedConfig, ConfigRefusal>>> {
    match fs::read(state_path(data_dir)) {
        Ok(bytes) => Ok(Some(AppliedConfig::verify(&bytes, key, camera))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Persists an applied config durably. Blocking.
pub(crate) fn persist(data_dir: &Path, config: &AppliedConfig) -> io::Result<()> {
    let path = state_path(data_dir);
    let dir = path.parent().unwrap_or(data_dir);
    fs::create_dir_all(dir)?;
    let tmp = dir.join("config.cose.tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&config.signed)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use kozomol_core::messages::LaneSpeedLimit;

    fn limit(lane: u8, limit_kmh: u16, from: &str, until: &str) -> LaneSpeedLimit {
        LaneSpeedLimit {
            lane,
            limit_kmh,
            from: from.into(),
            until: until.into(),
        }
    }

    #[test]
    fn windows_in_local_time() {
        let server = SigningKey::from_bytes(&[5; 32]);
        let config = CameraConfig {
            version: 2,
            issued_at_ms: 0,
            speed_limits: vec![
                limit(1, 40, "07:00", "20:00"),
                limit(1, 60, "20:00", "07:00"),
                limit(2, 70, "00:00", "00:00"),
            ],
        };
        let camera = CameraId::parse("cam-01").expect("id");
        let signed = config.sign(&camera, &server).expect("sign");
        let applied =
            AppliedConfig::verify(&signed, Some(&server.verifying_key()), &camera).expect("verify");
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("instant");
        // 02:30 UTC is 08:30 in Bishkek (UTC+6).
        let table = [
            (1, "2026-05-01T02:30:00Z", Some(40)),
            (1, "2026-05-01T13:59:59Z", Some(40)),
            (1, "2026-05-01T14:00:00Z", Some(60)),
            (1, "2026-05-01T20:00:00Z", Some(60)),
            (2, "2026-05-01T11:11:00Z", Some(70)),
            (3, "2026-05-01T11:11:00Z", None),
        ];
        for (lane, instant, expected) in table {
            assert_eq!(
                applied.limit_for(lane, at(instant), 360),
                expected,
                "{lane} {instant}"
            );
        }
        assert!(matches!(
            AppliedConfig::verify(&signed, None, &camera),
            Err(ConfigRefusal::NoServerKey)
        ));
        let bad = CameraConfig {
            speed_limits: vec![limit(1, 40, "7am", "20:00")],
            ..config
        };
        let bad = bad.sign(&camera, &server).expect("sign");
        assert!(matches!(
            AppliedConfig::verify(&bad, Some(&server.verifying_key()), &camera),
            Err(ConfigRefusal::BadTime(_))
        ));
        let elsewhere = CameraId::parse("cam-02").expect("id");
        assert!(matches!(
            AppliedConfig::verify(&signed, Some(&server.verifying_key()), &elsewhere),
            Err(ConfigRefusal::Signature(
                CoreError::ConfigForOtherCamera { .. }
            ))
        ));
    }
}
