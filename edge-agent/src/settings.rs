//! The `edge-agent run` settings: a TOML file, then `KOZOMOL_EDGE_*` environment
//! overrides, validated at start-up with every problem reported at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use ed25519_dalek::{SigningKey, VerifyingKey};
use kozomol_core::envelope::parse_public_key;
use kozomol_core::topics::BrokerLogin;
use kozomol_core::{CalibrationCertificate, CameraId, MeasuringDevice, Site};
use kozomol_edge_agent::AgentConfig;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    pub camera_id: String,
    /// File with the camera's Ed25519 secret key, hex (from `edge-agent keygen`).
    pub key_file: PathBuf,
    #[serde(default = "default_broker")]
    pub broker: String,
    /// The user the broker knows this camera by; `None`: connect anonymously.
    #[serde(default)]
    pub broker_username: Option<String>,
    /// File holding that user's password (mode 0600), needed with `broker_username`.
    #[serde(default)]
    pub broker_password_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub spool_dir: PathBuf,
    /// The server's config-signing public key, hex; without it config is ignored.
    #[serde(default)]
    pub server_public_key: Option<String>,
    #[serde(default = "default_resend_after_secs")]
    pub resend_after_secs: u64,
    #[serde(default = "default_max_outbox_mb")]
    pub max_outbox_mb: u64,
    #[serde(default = "default_status_interval_secs")]
    pub status_interval_secs: u64,
    #[serde(default = "default_utc_offset_minutes")]
    pub utc_offset_minutes: i32,
    #[serde(default = "default_spool_poll_ms")]
    pub spool_poll_ms: u64,
    pub site: SiteSettings,
    pub device: DeviceSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    pub id: String,
    /// WGS 84 degrees.
    pub latitude: f64,
    pub longitude: f64,
    pub address: String,
    pub direction: String,
    pub lane: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSettings {
    pub serial: String,
    pub certificate: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
}

fn default_broker() -> String {
    "127.0.0.1:1884".into()
}
fn default_resend_after_secs() -> u64 {
    30
}
fn default_max_outbox_mb() -> u64 {
    1024
}
fn default_status_interval_secs() -> u64 {
    30
}
fn default_utc_offset_minutes() -> i32 {
    360
}
fn default_spool_poll_ms() -> u64 {
    500
}

/// Everything `run` needs, validated.
pub struct Settings {
    pub agent: AgentConfig,
    /// Where the key was read from (to check its permissions).
    pub agent_key_file: PathBuf,
    pub spool_dir: PathBuf,
    pub spool_poll: Duration,
}

/// The environment variables that override the file, by setting name.
pub const ENV_OVERRIDES: [(&str, &str); 8] = [
    ("KOZOMOL_EDGE_CAMERA_ID", "camera_id"),
    ("KOZOMOL_EDGE_KEY_FILE", "key_file"),
    ("KOZOMOL_EDGE_BROKER", "broker"),
    ("KOZOMOL_EDGE_BROKER_USERNAME", "broker_username"),
    ("KOZOMOL_EDGE_BROKER_PASSWORD_FILE", "broker_password_file"),
    ("KOZOMOL_EDGE_DATA_DIR", "data_dir"),
    ("KOZOMOL_EDGE_SPOOL_DIR", "spool_dir"),
    ("KOZOMOL_EDGE_SERVER_PUBLIC_KEY", "server_public_key"),
];

impl SettingsFile {
    pub fn parse(toml_text: &str) -> Result<Self, Vec<String>> {
        toml::from_str(toml_text).map_err(|e| vec![e.to_string()])
    }

    /// Applies `KOZOMOL_EDGE_*` overrides from `env` (a lookup, so tests need no
    /// process environment).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        for (var, _) in ENV_OVERRIDES {
            let Some(value) = env(var) else { continue };
            match var {
                "KOZOMOL_EDGE_CAMERA_ID" => self.camera_id = value,
                "KOZOMOL_EDGE_KEY_FILE" => self.key_file = value.into(),
                "KOZOMOL_EDGE_BROKER" => self.broker = value,
                "KOZOMOL_EDGE_BROKER_USERNAME" => self.broker_username = Some(value),
                "KOZOMOL_EDGE_BROKER_PASSWORD_FILE" => {
                    self.broker_password_file = Some(value.into())
                }
                "KOZOMOL_EDGE_DATA_DIR" => self.data_dir = value.into(),
                "KOZOMOL_EDGE_SPOOL_DIR" => self.spool_dir = value.into(),
                "KOZOMOL_EDGE_SERVER_PUBLIC_KEY" => self.server_public_key = Some(value),
                _ => {}
            }
        }
    }

    /// Checks everything and builds the agent's config; all problems at once.
    pub fn validate(self) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let camera_id = CameraId::parse(&self.camera_id)
            .map_err(|e| errors.push(format!("camera_id: {e}")))
            .ok();
        let signing_key = read_signing_key(&self.key_file)
            .map_err(|e| errors.push(format!("key_file {}: {e}", self.key_file.display())))
            .ok();
        let server_public_key: Option<VerifyingKey> = match &self.server_public_key {
            Some(hex_key) => parse_public_key(hex_key)
                .map_err(|e| errors.push(format!("server_public_key: {e}")))
                .ok(),
            None => None,
        };
        let broker_ok = self.broker.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !broker_ok {
            errors.push(format!("broker `{}`: expected host:port", self.broker));
        }
        let broker_login = match (&self.broker_username, &self.broker_password_file) {
            (Some(username), Some(file)) => match std::fs::read_to_string(file) {
                Ok(password) => Some(BrokerLogin {
                    username: username.clone(),
                    password: password.trim_end_matches(['\r', '\n']).to_owned(),
                }),
                Err(e) => {
                    errors.push(format!("broker_password_file {}: {e}", file.display()));
                    None
                }
            },
            (Some(_), None) => {
                errors.push("broker_username needs broker_password_file".into());
                None
            }
            (None, Some(_)) => {
                errors.push("broker_password_file needs broker_username".into());
                None
            }
            (None, None) => None,
        };
        for (name, value) in [
            ("resend_after_secs", self.resend_after_secs),
            ("max_outbox_mb", self.max_outbox_mb),
            ("status_interval_secs", self.status_interval_secs),
            ("spool_poll_ms", self.spool_poll_ms),
        ] {
            if value == 0 {
                errors.push(format!("{name} must be above 0"));
            }
        }
        // A resend interval beyond a day serves no camera, and a huge one overflowed the
        // clock arithmetic of the task that publishes (it died; the camera looked online).
        if self.resend_after_secs > 86_400 {
            errors.push(format!(
                "resend_after_secs {} is over a day (86400)",
                self.resend_after_secs
            ));
        }
        // The server takes a camera it has not heard from for 3 minutes for offline.
        if self.status_interval_secs > 60 {
            errors.push(format!(
                "status_interval_secs {} is over 60: the server takes a camera silent for 3 minutes for offline",
                self.status_interval_secs
            ));
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            errors.push(format!(
                "utc_offset_minutes {} is outside -840..=840",
                self.utc_offset_minutes
            ));
        }
        if self.data_dir == self.spool_dir {
            errors.push("data_dir and spool_dir must be different folders".into());
        }
        let site = &self.site;
        if !(-90.0..=90.0).contains(&site.latitude) || !(-180.0..=180.0).contains(&site.longitude) {
            errors.push("site: latitude is -90..90 and longitude -180..180 degrees".into());
        }
        if site.lane == 0 {
            errors.push("site.lane counts from 1".into());
        }
        for (name, value) in [
            ("site.id", &site.id),
            ("site.address", &site.address),
            ("site.direction", &site.direction),
            ("device.serial", &self.device.serial),
            ("device.certificate", &self.device.certificate),
        ] {
            if value.trim().is_empty() {
                errors.push(format!("{name} must not be empty"));
            }
        }
        if self.device.valid_from > self.device.valid_until {
            errors.push("device: valid_from is after valid_until".into());
        }
        let (Some(camera_id), Some(signing_key), true) =
            (camera_id, signing_key, errors.is_empty())
        else {
            return Err(errors);
        };
        let site = Site {
            id: self.site.id,
            lat_e6: (self.site.latitude * 1e6).round() as i32,
            lon_e6: (self.site.longitude * 1e6).round() as i32,
            address: self.site.address,
            direction: self.site.direction,
            lane: self.site.lane,
        };
        let device = MeasuringDevice {
            serial: self.device.serial,
            certificate: CalibrationCertificate {
                number: self.device.certificate,
                valid_from: self.device.valid_from,
                valid_until: self.device.valid_until,
            },
        };
        let mut agent = AgentConfig::new(
            camera_id,
            signing_key,
            self.broker,
            self.data_dir,
            site,
            device,
        );
        agent.server_public_key = server_public_key;
        agent.broker_login = broker_login;
        agent.resend_after = Duration::from_secs(self.resend_after_secs);
        agent.max_outbox_bytes = self.max_outbox_mb.saturating_mul(1024 * 1024);
        agent.status_interval = Duration::from_secs(self.status_interval_secs);
        agent.utc_offset_minutes = self.utc_offset_minutes;
        Ok(Settings {
            agent,
            agent_key_file: self.key_file,
            spool_dir: self.spool_dir,
            spool_poll: Duration::from_millis(self.spool_poll_ms),
        })
    }
}

/// Reads a hex Ed25519 secret key as `edge-agent keygen` writes it.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .map_err(|e| format!("not hex: {e}"))?
        .try_into()
        .map_err(|_| "an Ed25519 secret key is 32 bytes (64 hex characters)".to_string())?;
    Ok(SigningKey::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
camera_id = "bishkek-chuy-001"
key_file = "/nonexistent/camera.key"
broker = "nohost"
data_dir = "/var/lib/kozomol-edge"
spool_dir = "/var/lib/kozomol-edge"
resend_after_secs = 0

[site]
id = "site-chuy-manas"
latitude = 42.876
longitude = 74.604
address = "проспект Чуй / проспект Манаса"
direction = "eastbound"
lane = 0

[device]
serial = "KRIS-P-12345"
certificate = "KG-CSM-2026-0042"
valid_from = "2026-01-15"
valid_until = "2027-01-14"
"#;

    #[test]
    fn every_problem_is_reported_at_once() {
        let file = SettingsFile::parse(FILE).expect("parses");
        let errors = file.validate().err().expect("invalid");
        let text = errors.join("\n");
        for expected in [
            "key_file",
            "broker",
            "resend_after_secs",
            "spool_dir",
            "lane",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
        assert_eq!(errors.len(), 5, "{text}");
    }

    #[test]
    fn intervals_have_an_upper_bound() {
        for (line, refused) in [
            ("resend_after_secs = 86400", false),
            ("resend_after_secs = 86401", true),
            ("resend_after_secs = 1000000000000", true),
            ("status_interval_secs = 60", false),
            ("status_interval_secs = 61", true),
        ] {
            let text = FILE
                .replace("resend_after_secs = 0", line)
                .replace("lane = 0", "lane = 1")
                .replace(
                    "spool_dir = \"/var/lib/kozomol-edge\"",
                    "spool_dir = \"/var/spool/kozomol-edge\"",
                );
            let errors = SettingsFile::parse(&text)
                .expect("parses")
                .validate()
                .err()
                .unwrap_or_default();
            let name = line.split(' ').next().unwrap_or_default();
            assert_eq!(
                errors
                    .iter()
                    .any(|e| e.starts_with(name) && e.contains(" is over ")),
                refused,
                "{line}: {errors:?}"
            );
        }
    }

    #[test]
    fn env_overrides_and_unknown_fields() {
        let mut file = SettingsFile::parse(FILE).expect("parses");
        file.apply_env(|var| (var == "KOZOMOL_EDGE_BROKER").then(|| "10.0.0.1:1883".into()));
        assert_eq!(file.broker, "10.0.0.1:1883");
        let unknown = format!("colour = \"red\"\n{FILE}");
        let errors = SettingsFile::parse(&unknown).expect_err("unknown field");
        assert!(errors[0].contains("colour"), "{errors:?}");
    }

    #[test]
    fn the_example_in_deploy_is_valid_but_for_its_key() {
        let example = include_str!("../../deploy/edge-agent.toml");
        let file = SettingsFile::parse(example).expect("example parses");
        let errors = file.validate().err().expect("no key file here");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("key_file"), "{errors:?}");
    }
}
