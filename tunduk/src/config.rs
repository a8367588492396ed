//! Every knob of the vehicle-registry consumer, with defaults, in one struct.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{TundukError, XRoadClient, XRoadService};

/// `transportCurrentInfo` v1 of the vehicle registry (member GOV/70000005, Infocom).
/// The subsystem code `vehicles-service` follows the service's WSDL name; check it
/// against the security server's service list.
pub const DEFAULT_SERVICE: &str =
    "central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v1";

/// Which of X-Road's two message protocols to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusProtocol {
    /// The message protocol v4.0 (SOAP), which the registry's WSDL describes.
    #[default]
    Soap,
    /// The message protocol for REST, r1.
    Rest,
}

/// How to reach the vehicle registry and how hard to try. Everything but the security
/// server's URL and kozomol's client subsystem has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The city's security server: SOAP requests are posted to this URL, REST ones go
    /// under `{url}/r1/`.
    pub security_server_url: String,
    /// kozomol's client subsystem, e.g. `central-server/GOV/<member code>/kozomol`.
    pub client: XRoadClient,
    #[serde(default = "defaults::service")]
    pub service: XRoadService,
    #[serde(default)]
    pub protocol: BusProtocol,
    /// Limit on one attempt, from sending to the last byte of the reply.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Attempts per lookup, the first included; only unavailability is retried.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// The first pause between attempts; it doubles up to `backoff_max_ms`, with jitter.
    #[serde(default = "defaults::backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "defaults::backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Consecutive failed attempts that open the circuit breaker.
    #[serde(default = "defaults::breaker_failure_threshold")]
    pub breaker_failure_threshold: u32,
    /// How long the open breaker refuses before it lets one probe through.
    #[serde(default = "defaults::breaker_cool_down_ms")]
    pub breaker_cool_down_ms: u64,
    /// How long an answer is reused for the same plate; 0 turns the cache off.
    #[serde(default = "defaults::cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    #[serde(default = "defaults::cache_max_entries")]
    pub cache_max_entries: usize,
    /// A longer reply is refused as malformed.
    #[serde(default = "defaults::max_response_bytes")]
    pub max_response_bytes: usize,
    /// PEM certificates trusted for an `https://` security server besides the public
    /// roots: a security server's internal TLS certificate signs itself and is exported
    /// from its console.
    #[serde(default)]
    pub security_server_ca_file: Option<PathBuf>,
    /// kozomol's TLS identity where the security server authenticates its information
    /// systems by certificate (connection type HTTPS): the certificate registered there
    /// and its private key, both PEM.
    #[serde(default)]
    pub client_certificate_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

mod defaults {
    use super::*;

    pub fn service() -> XRoadService {
        XRoadService::parse(DEFAULT_SERVICE).expect("the default service id should parse")
    }
    pub fn request_timeout_ms() -> u64 {
        10_000
    }
    pub fn connect_timeout_ms() -> u64 {
        3_000
    }
    pub fn max_attempts() -> u32 {
        3
    }
    pub fn backoff_base_ms() -> u64 {
        200
    }
    pub fn backoff_max_ms() -> u64 {
        2_000
    }
    pub fn breaker_failure_threshold() -> u32 {
        5
    }
    pub fn breaker_cool_down_ms() -> u64 {
        30_000
    }
    pub fn cache_ttl_secs() -> u64 {
        300
    }
    pub fn cache_max_entries() -> usize {
        10_000
    }
    pub fn max_response_bytes() -> usize {
        1024 * 1024
    }
}

impl RegistryConfig {
    /// The defaults, for this security server and client.
    pub fn new(security_server_url: impl Into<String>, client: XRoadClient) -> Self {
        RegistryConfig {
            security_server_url: security_server_url.into(),
            client,
            service: defaults::service(),
            protocol: BusProtocol::default(),
            request_timeout_ms: defaults::request_timeout_ms(),
            connect_timeout_ms: defaults::connect_timeout_ms(),
            max_attempts: defaults::max_attempts(),
            backoff_base_ms: defaults::backoff_base_ms(),
            backoff_max_ms: defaults::backoff_max_ms(),
            breaker_failure_threshold: defaults::breaker_failure_threshold(),
            breaker_cool_down_ms: defaults::breaker_cool_down_ms(),
            cache_ttl_secs: defaults::cache_ttl_secs(),
            cache_max_entries: defaults::cache_max_entries(),
            max_response_bytes: defaults::max_response_bytes(),
            security_server_ca_file: None,
            client_certificate_file: None,
            client_key_file: None,
        }
    }

    /// The longest one lookup may take with every retry: each attempt its time-out
    /// (connecting included), each pause between them at most `backoff_max_ms`.
    pub fn longest_lookup(&self) -> Duration {
        let attempts = u64::from(self.max_attempts.max(1));
        Duration::from_millis(
            attempts
                .saturating_mul(
                    self.request_timeout_ms
                        .saturating_add(self.connect_timeout_ms),
                )
                .saturating_add((attempts - 1).saturating_mul(self.backoff_max_ms)),
        )
    }

    /// Checks every field and reports all problems at once.
    pub fn validate(&self) -> Result<(), TundukError> {
        let mut problems = Vec::new();
        if self.client_certificate_file.is_some() != self.client_key_file.is_some() {
            problems.push("client_certificate_file and client_key_file go together".to_owned());
        }
        let tls_files =
            self.security_server_ca_file.is_some() || self.client_certificate_file.is_some();
        match reqwest::Url::parse(&self.security_server_url) {
            Ok(url) if tls_files && url.scheme() != "https" => problems.push(format!(
                "security_server_url `{}` is not https, but TLS files are given",
                self.security_server_url
            )),
            Ok(url) if !matches!(url.scheme(), "http" | "https") => problems.push(format!(
                "security_server_url `{}` is not http or https",
                self.security_server_url
            )),
            Ok(url) if url.cannot_be_a_base() => problems.push(format!(
                "security_server_url `{}` cannot be a base url",
                self.security_server_url
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "security_server_url `{}` is not a url: {e}",
                self.security_server_url
            )),
        }
        if self.request_timeout_ms == 0 {
            problems.push("request_timeout_ms must be above 0".to_owned());
        }
        if self.connect_timeout_ms == 0 {
            problems.push("connect_timeout_ms must be above 0".to_owned());
        }
        if !(1..=10).contains(&self.max_attempts) {
            problems.push(format!("max_attempts {} is not 1-10", self.max_attempts));
        }
        if self.backoff_base_ms > self.backoff_max_ms {
            problems.push(format!(
                "backoff_base_ms {} is above backoff_max_ms {}",
                self.backoff_base_ms, self.backoff_max_ms
            ));
        }
        if self.breaker_failure_threshold == 0 {
            problems.push("breaker_failure_threshold must be above 0".to_owned());
        }
        if self.max_response_bytes < 1024 {
            problems.push(format!(
                "max_response_bytes {} is below 1024",
                self.max_response_bytes
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TundukError::Config(problems))
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn backoff_base(&self) -> Duration {
        Duration::from_millis(self.backoff_base_ms)
    }

    pub fn backoff_max(&self) -> Duration {
        Duration::from_millis(self.backoff_max_ms)
    }

    pub fn breaker_cool_down(&self) -> Duration {
        Duration::from_millis(self.breaker_cool_down_ms)
    }

    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_is_left_out() {
        let config: RegistryConfig = serde_json::from_str(
            r#"{"security_server_url": "http://10.0.0.1/", "client": "central-server/GOV/70000099/kozomol"}"#,
        )
        .expect("minimal config");
        assert_eq!(
            config,
            RegistryConfig::new(
                "http://10.0.0.1/",
                XRoadClient::parse("central-server/GOV/70000099/kozomol").expect("valid")
            )
        );
        assert_eq!(config.service.to_string(), DEFAULT_SERVICE);
        assert_eq!(config.protocol, BusProtocol::Soap);
        assert_eq!(config.cache_ttl(), Duration::from_secs(300));
        config.validate().expect("defaults are valid");
        let slow = RegistryConfig {
            request_timeout_ms: 1_000,
            connect_timeout_ms: 500,
            max_attempts: 3,
            backoff_max_ms: 2_000,
            ..config
        };
        // Three attempts of 1.5 s, two pauses of at most 2 s.
        assert_eq!(slow.longest_lookup(), Duration::from_millis(8_500));
    }

    #[test]
    fn unknown_fields_and_bad_ids_are_refused() {
        let unknown = serde_json::from_str::<RegistryConfig>(
            r#"{"security_server_url": "http://x/", "client": "central-server/GOV/1/k", "retries": 3}"#,
        );
        assert!(unknown.is_err());
        let bad_client = serde_json::from_str::<RegistryConfig>(
            r#"{"security_server_url": "http://x/", "client": "central-server/GOV/1"}"#,
        );
        assert!(bad_client.is_err());
    }

    #[test]
    fn every_problem_is_reported() {
        let mut config = RegistryConfig::new(
            "ftp://x/",
            XRoadClient::parse("central-server/GOV/1/k").expect("valid"),
        );
        config.max_attempts = 0;
        config.backoff_base_ms = 10_000;
        config.request_timeout_ms = 0;
        match config.validate() {
            Err(TundukError::Config(problems)) => assert_eq!(problems.len(), 4, "{problems:?}"),
            other => panic!("expected config errors, got {other:?}"),
        }
    }
}
