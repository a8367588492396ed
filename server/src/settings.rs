//! The `kozomol` binary's settings: defaults, then a TOML file, then `KOZOMOL_*`
//! environment variables, then command-line flags; validated once at start-up with
//! every problem reported together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kozomol_core::topics::BrokerLogin;
use kozomol_fines::delivery::{
    DeliveryError, SmsGateway, SmsGatewayConfig, SmtpConfig, SmtpCredentials, SmtpMailer,
    SmtpSecurity, TrustedCertificates,
};
use kozomol_store::evidence::S3Segments;
use kozomol_store::{EvidenceStore, StoreError};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid settings:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Where a signing key is kept, and whether it may be made there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFile {
    /// In the data folder, by default: made (mode 0600) on first start.
    Default(PathBuf),
    /// Named by the settings: the key must be there. One made in its place would sign
    /// what cameras or citizens check with the key they hold, and fail them all.
    Configured(PathBuf),
}

impl KeyFile {
    pub fn path(&self) -> &Path {
        match self {
            KeyFile::Default(path) | KeyFile::Configured(path) => path,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where SQLite, evidence, keys and demo credentials live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// The address people and systems use to reach kozomol; used in every link.
    pub public_base_url: Option<String>,
    pub http: HttpSettings,
    pub mqtt: MqttSettings,
    pub ingest: IngestSettings,
    pub recognizer: RecognizerSettings,
    pub fines: FinesSettings,
    pub delivery: DeliverySettings,
    /// The city's security server of Tunduk (X-Road), for owner lookups; without it
    /// approved cases wait for an owner (`serve --demo` starts a stand-in instead).
    pub tunduk: Option<kozomol_tunduk::RegistryConfig>,
    /// Tunduk's `smartcity-service`, which kozomol provides at `/xroad/soap`: the
    /// security server's addresses and the clients allowed per operation. Without it
    /// the endpoint answers that the service is not provided here.
    pub smartcity: Option<kozomol_tunduk::smartcity::ProviderSettings>,
    /// Payment providers allowed on the REST payment API, each with the secrets its
    /// requests and callbacks are signed with (docs/payments.md).
    pub payment_providers: Vec<PaymentProvider>,
    pub portal: PortalSettings,
    pub retention: RetentionSettings,
    /// The city's identity provider (OpenID Connect) for console logins, where it
    /// runs one; officers still need a kozomol account of the same login.
    pub oidc: Option<OidcSettings>,
    /// The jurisdiction's offset from UTC in minutes (Kyrgyzstan: 360, Kazakhstan:
    /// 300); validate refuses any other than `fines.jurisdiction`'s.
    pub utc_offset_minutes: i32,
    /// Ed25519 key that signs camera config; default `DATA_DIR/server.key`.
    pub server_key_file: Option<PathBuf>,
    /// Evidence folder; default `DATA_DIR/evidence`.
    pub evidence_dir: Option<PathBuf>,
    /// An S3-compatible bucket for evidence instead of the folder (docs/operations.md);
    /// its secret key comes from `KOZOMOL_EVIDENCE_SECRET_ACCESS_KEY`.
    pub evidence_bucket: Option<kozomol_store::evidence::S3Bucket>,
}

/// The citizens' portal (docs/web.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSettings {
    /// A card payment provider's checkout page: the portal's "pay by card" sends the
    /// payer there with `?payment_code=...&return_url=...`; the provider opens an
    /// intent on the REST payment API, takes the card and calls back. None: no card
    /// payments (`serve --demo` starts a stand-in acquirer).
    pub card_checkout_url: Option<String>,
    /// Fine lookups one address may make in `lookup_window_s`; 0 lets every one
    /// through (a load test), but never more than 20 an hour of one plate.
    pub lookups_per_window: usize,
    pub lookup_window_s: u64,
}

/// How long personal data stay after a case is settled (docs/operations.md).
impl RetentionSettings {
    /// What is wrong with these settings (every problem, each a sentence).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        // A century is "keep"; more overflowed the date arithmetic (the fines part
        // stopped at every start).
        for (name, days) in [
            ("personal_data_days", Some(self.personal_data_days)),
            ("case_file_days", self.case_file_days),
            ("evidence_sweep_days", self.evidence_sweep_days),
        ] {
            if let Some(days) = days.filter(|&d| d > MAX_RETENTION_DAYS) {
                problems.push(format!(
                    "retention.{name} {days} is over {MAX_RETENTION_DAYS} days (a century)"
                ));
            }
        }
        if self.personal_data_days < MIN_PERSONAL_DATA_DAYS {
            problems.push(format!(
                "retention.personal_data_days {} is below the {MIN_PERSONAL_DATA_DAYS} days repeat offences look back over",
                self.personal_data_days
            ));
        }
        if let Some(days) = self
            .case_file_days
            .filter(|&days| days <= self.personal_data_days)
        {
            problems.push(format!(
                "retention.case_file_days {days} must be more than personal_data_days {}: a case file is destroyed after its personal data are purged",
                self.personal_data_days
            ));
        }
        if let Some(days) = self
            .evidence_sweep_days
            .filter(|&days| days < MIN_EVIDENCE_SWEEP_DAYS)
        {
            problems.push(format!(
                "retention.evidence_sweep_days {days} is below {MIN_EVIDENCE_SWEEP_DAYS}: a segment written more recently may hold bytes whose row is still to come"
            ));
        }
        problems
    }
}

impl RecognizerSettings {
    /// What is wrong with these settings (every problem, each a sentence).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let r = self;
        for (name, value) in [
            ("recognizer.auto_accept", r.auto_accept),
            ("recognizer.agreement_accept", r.agreement_accept),
        ] {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!("{name} must be between 0 and 1"));
            }
        }
        if r.batch == 0 || r.lease_s == 0 || r.max_attempts == 0 {
            problems.push("recognizer.batch, lease_s and max_attempts must be at least 1".into());
        }
        problems
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days a settled case stays untouched (no payment, appeal, refund or other move)
    /// before the fines workers purge its personal data; at least
    /// `MIN_PERSONAL_DATA_DAYS`.
    pub personal_data_days: u32,
    /// Whether the fines workers purge at all; `kozomol purge-personal-data` runs a
    /// purge by hand either way.
    pub purge: bool,
    /// The archive period: days a settled case stays untouched before its file (photos,
    /// signed PDF, appeal files) is destroyed; more than `personal_data_days`. None
    /// (the default): case files are kept. `purge = false` stops this too.
    pub case_file_days: Option<u32>,
    /// Days an evidence segment stays unwritten before the fines workers sweep it for
    /// bytes no row names (queued and overwritten); at least `MIN_EVIDENCE_SWEEP_DAYS`.
    /// None (the default): no sweep. Only for a database that is this evidence's own
    /// and whole (docs/operations.md); `purge = false` stops this too.
    pub evidence_sweep_days: Option<u32>,
}

/// A week: far longer than any write waits for its row.
pub const MIN_EVIDENCE_SWEEP_DAYS: u32 = 7;

/// Two years: a repeat offence looks back a year from its own issuing, which may come
/// months after its capture, for the earlier offender's identity; nothing shorter is
/// accepted.
pub const MIN_PERSONAL_DATA_DAYS: u32 = 730;

/// The longest any retention period may be set to.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

impl RetentionSettings {
    pub fn keep(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.personal_data_days))
    }

    /// How long a purged case stays without a move before its file is destroyed; None
    /// where case files are kept.
    pub fn keep_case_file(&self) -> Option<chrono::Duration> {
        self.case_file_days
            .map(|days| chrono::Duration::days(i64::from(days)))
    }

    /// How long a segment stays unwritten before it is swept; None: no sweep.
    pub fn sweep_evidence_after(&self) -> Option<chrono::Duration> {
        self.evidence_sweep_days
            .map(|days| chrono::Duration::days(i64::from(days)))
    }
}

impl Default for RetentionSettings {
    /// Three years: the general limitation period of both civil codes, within which a
    /// citizen may still claim money back.
    fn default() -> Self {
        RetentionSettings {
            personal_data_days: 3 * 365,
            purge: true,
            case_file_days: None,
            evidence_sweep_days: None,
        }
    }
}

/// kozomol as a client of the city's OpenID Connect provider (docs/web.md).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer, exactly as its ID tokens name it; its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Better given as `KOZOMOL_OIDC_CLIENT_SECRET` (a secret, not a setting).
    #[serde(default)]
    pub client_secret: String,
    /// What the login page calls the provider, e.g. "Tunduk ID".
    #[serde(default = "default_oidc_name")]
    pub display_name: String,
    /// The ID token's claim holding the kozomol login: by default `sub`, the
    /// provider's stable id of the person. `preferred_username` only where people
    /// cannot change their own username at the provider; `email` is taken only when
    /// the provider marks it verified.
    #[serde(default = "default_login_claim")]
    pub login_claim: String,
}

impl std::fmt::Debug for OidcSettings {
    // Settings are logged: the client's secret never is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("display_name", &self.display_name)
            .field("login_claim", &self.login_claim)
            .finish()
    }
}

fn default_oidc_name() -> String {
    "OpenID Connect".to_owned()
}

fn default_login_claim() -> String {
    "sub".to_owned()
}

impl Default for PortalSettings {
    fn default() -> Self {
        let limit = crate::api::LookupLimit::default();
        PortalSettings {
            card_checkout_url: None,
            lookups_per_window: limit.lookups,
            lookup_window_s: limit.window.as_secs(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: String,
    /// Reverse proxies in front of kozomol (addresses or networks, e.g. `10.0.0.0/8`):
    /// the portal counts lookups per client by the `X-Forwarded-For` they add. Only
    /// proxies: a client inside these networks could name any address.
    pub trusted_proxies: Vec<String>,
}

impl HttpSettings {
    /// `trusted_proxies` read; the ones that are no address or network, as problems.
    pub fn proxies(&self) -> Result<Vec<ipnet::IpNet>, Vec<String>> {
        let mut problems = Vec::new();
        let mut nets = Vec::new();
        for text in &self.trusted_proxies {
            match text.parse::<ipnet::IpNet>() {
                Ok(net) => nets.push(net),
                Err(_) => match text.parse::<std::net::IpAddr>() {
                    Ok(ip) => nets.push(ipnet::IpNet::from(ip)),
                    Err(_) => problems.push(format!(
                        "http.trusted_proxies `{text}` is no address or network"
                    )),
                },
            }
        }
        if problems.is_empty() {
            Ok(nets)
        } else {
            Err(problems)
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// The broker's `host:port`.
    pub broker: String,
    /// Run the embedded broker on `broker` (serve only).
    pub embedded: bool,
    /// The user the broker knows kozomol's parts by; `None`: connect anonymously.
    pub username: Option<String>,
    /// Its password: only from `KOZOMOL_MQTT_PASSWORD`, never the settings file.
    #[serde(skip)]
    pub password: Option<String>,
}

impl std::fmt::Debug for MqttSettings {
    // Settings are logged: the password never is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("broker", &self.broker)
            .field("embedded", &self.embedded)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl MqttSettings {
    /// The login to present at connect, when a user is configured.
    pub fn login(&self) -> Option<BrokerLogin> {
        Some(BrokerLogin {
            username: self.username.clone()?,
            password: self.password.clone().unwrap_or_default(),
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Stable per ingest process; the broker keeps its unacked messages.
    pub client_id: String,
    /// Join `$share/ingest/...` so several ingest processes split the stream.
    pub shared_subscription: bool,
    pub batch_max: usize,
    pub batch_linger_ms: u64,
}

impl FinesSettings {
    /// The payee the payment QR names, from `merchant_*`.
    pub fn merchant(&self) -> Result<kozomol_payments::MerchantAccount, String> {
        let mut merchant =
            kozomol_payments::MerchantAccount::new(&self.merchant_guid, &self.merchant_name)
                .map_err(|e| e.to_string())?;
        for (tag, value) in &self.merchant_sub_fields {
            let number: u8 = tag
                .parse()
                .map_err(|_| format!("merchant sub-field tag `{tag}` is not 01-99"))?;
            merchant = merchant
                .with_sub_field(number, value)
                .map_err(|e| e.to_string())?;
        }
        if let Some(city) = &self.merchant_city {
            merchant = merchant.with_city(city).map_err(|e| e.to_string())?;
        }
        Ok(merchant)
    }
}

impl Settings {
    /// The jurisdiction's offset from UTC (`utc_offset_minutes`, checked by validate;
    /// UTC if out of range).
    pub fn utc_offset(&self) -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(self.utc_offset_minutes * 60)
            .unwrap_or_else(|| chrono::Offset::fix(&chrono::Utc))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./kozomol-data"),
            database_url: None,
            public_base_url: None,
            http: HttpSettings::default(),
            mqtt: MqttSettings::default(),
            ingest: IngestSettings::default(),
            recognizer: RecognizerSettings::default(),
            fines: FinesSettings::default(),
            delivery: DeliverySettings::default(),
            tunduk: None,
            smartcity: None,
            payment_providers: Vec::new(),
            portal: PortalSettings::default(),
            retention: RetentionSettings::default(),
            oidc: None,
            utc_offset_minutes: 6 * 60,
            server_key_file: None,
            evidence_dir: None,
            evidence_bucket: None,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            broker: "127.0.0.1:1884".into(),
            embedded: true,
            username: None,
            password: None,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            client_id: "kozomol-ingest".into(),
            shared_subscription: false,
            batch_max: 512,
            batch_linger_ms: 3,
        }
    }
}

/// Plate recognition: the models, ONNX Runtime, and when a read decides a case alone.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecognizerSettings {
    /// Whether `serve` runs the recognizer (`run recognizer` always does).
    pub enabled: bool,
    /// The folder holding the models' `model.toml`.
    pub models_dir: PathBuf,
    /// `libonnxruntime.so`; default: the `ORT_DYLIB_PATH` variable, which
    /// `scripts/lib.sh` sets after fetching the library.
    pub onnxruntime: Option<PathBuf>,
    /// Threads ONNX Runtime uses per model.
    pub threads: usize,
    /// Run the models on CUDA where the build and the library allow it.
    pub cuda: bool,
    /// Cases claimed at a time.
    pub batch: u32,
    /// Seconds a claim holds before another recognizer may take the case.
    pub lease_s: u64,
    /// Tries before a case whose frames cannot be read goes to review.
    pub max_attempts: u32,
    /// With no camera read, our read alone decides at or above this confidence (0-1).
    pub auto_accept: f32,
    /// With a camera read that agrees, our read decides at or above this confidence.
    pub agreement_accept: f32,
}

impl Default for RecognizerSettings {
    fn default() -> Self {
        let thresholds = kozomol_recognizer::worker::Thresholds::default();
        RecognizerSettings {
            enabled: true,
            models_dir: PathBuf::from("models/kozomol-reader"),
            onnxruntime: None,
            threads: 2,
            cuda: false,
            batch: 8,
            lease_s: 120,
            max_attempts: 3,
            auto_accept: thresholds.auto_accept,
            agreement_accept: thresholds.agreement_accept,
        }
    }
}

/// Issuing resolutions: who issues them, with which key, and how the stages run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinesSettings {
    /// Whether `serve` runs approval, owner lookup and issuing (`run fines` always does).
    pub enabled: bool,
    pub jurisdiction: kozomol_core::Jurisdiction,
    /// The issuer's code in resolution numbers, 2-6 upper-case letters.
    pub issuer: String,
    /// The issuer's number in payment codes (0-999).
    pub issuer_code: u16,
    /// The issuing body, as printed on the resolution.
    pub authority: String,
    pub appeal_rights: String,
    /// Ed25519 seed (hex) that signs resolutions; default
    /// `DATA_DIR/resolution-signing.key`, made on first start.
    pub signing_key_file: Option<PathBuf>,
    /// Public keys (hex) of earlier signing keys: resolutions they signed still verify.
    pub retired_public_keys: Vec<String>,
    /// The payee in the payment QR: the payment system's merchant GUID and name.
    pub merchant_guid: String,
    pub merchant_name: String,
    /// The account template's further sub-fields, by tag (`"01"`–`"99"`), as the
    /// acquiring bank assigns them (the account number, for one).
    pub merchant_sub_fields: std::collections::BTreeMap<String, String>,
    /// The merchant city (QR field 60): required in Kazakhstan's EMVCo form.
    pub merchant_city: Option<String>,
    /// Named as confirming officer where the machine approved a case.
    pub duty_officer_name: String,
    pub duty_officer_badge: String,
    /// Cases claimed at a time by the approval and owner-lookup stages.
    pub batch: u32,
    /// Cases the issuing stage claims at a time: each batch pays for four commits and
    /// an evidence fsync, so it is larger (on 2 cores with 2 loops, batches of 16
    /// issued about 750/s, of 64 about 900/s; docs/performance.md).
    pub issue_batch: u32,
    /// Issuing loops in this process: more than cores keeps them busy while a loop
    /// waits on its commits and fsync (on 2 cores, 4 loops issued 764–1,098/s, 2 loops
    /// 864–910/s, 1 loop 762–783/s; docs/performance.md).
    pub issue_workers: usize,
    /// Seconds a stage's claim holds before another worker may take the case.
    pub lease_s: u64,
    /// How long an idle stage waits before it looks for work again.
    pub idle_poll_ms: u64,
    /// The checks before issuing (`[fines.checks]`: duplicate window, fastest
    /// plausible speed between sites, clock-skew allowance).
    pub checks: kozomol_fines::checks::ChecksConfig,
}

impl Default for FinesSettings {
    fn default() -> Self {
        FinesSettings {
            enabled: true,
            jurisdiction: kozomol_core::Jurisdiction::Kg,
            issuer: "BSK".into(),
            issuer_code: 1,
            authority: "Управление патрульной милиции ГУВД г. Бишкек".into(),
            appeal_rights: "Постановление может быть обжаловано в течение 10 дней со дня \
                            вручения его копии в вышестоящий орган или в суд."
                .into(),
            signing_key_file: None,
            retired_public_keys: Vec::new(),
            merchant_guid: "qr.kozomol.kg".into(),
            merchant_name: "KOZOMOL".into(),
            merchant_sub_fields: std::collections::BTreeMap::new(),
            merchant_city: None,
            duty_officer_name: "Дежурный инспектор".into(),
            duty_officer_badge: "0001".into(),
            batch: 16,
            issue_batch: 64,
            issue_workers: 4,
            lease_s: 300,
            idle_poll_ms: 500,
            checks: kozomol_fines::checks::ChecksConfig::default(),
        }
    }
}

/// A payment provider of the REST payment API. Its secrets may come from
/// `KOZOMOL_PAYMENT_PROVIDER_SECRETS_<ID>` (the id upper-cased, other characters as `_`;
/// secrets comma-separated) instead of the file. `Debug` hides them.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentProvider {
    /// How the provider is named in paths and in the ledger: `[a-z0-9_-]`, 1 to 40.
    pub id: String,
    /// The HMAC-SHA256 secrets in force: one, or the old and the new during a rotation.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// A secret shorter than this is refused: it could be guessed.
const MIN_PROVIDER_SECRET_BYTES: usize = 16;

impl PaymentProvider {
    /// The environment variable that may hold the provider's secrets.
    pub fn secrets_variable(&self) -> String {
        let id: String = self
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("KOZOMOL_PAYMENT_PROVIDER_SECRETS_{id}")
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let valid_id = (1..=40).contains(&self.id.len())
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_id {
            problems.push(format!(
                "payment_providers: id `{}` must be 1 to 40 of a-z, 0-9, - and _",
                self.id
            ));
        }
        if self.secrets.is_empty() {
            problems.push(format!(
                "payment_providers.{}: no secret (set secrets or {})",
                self.id,
                self.secrets_variable()
            ));
        }
        if self
            .secrets
            .iter()
            .any(|s| s.len() < MIN_PROVIDER_SECRET_BYTES)
        {
            problems.push(format!(
                "payment_providers.{}: every secret needs at least {MIN_PROVIDER_SECRET_BYTES} bytes",
                self.id
            ));
        }
        problems
    }
}

impl std::fmt::Debug for PaymentProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentProvider")
            .field("id", &self.id)
            .field("secrets", &format!("{} hidden", self.secrets.len()))
            .finish()
    }
}

/// Delivering issued resolutions: which channels this process serves and how to reach
/// them. A channel left unconfigured keeps its deliveries queued for a process that
/// serves it. `Debug` hides the token and the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Whether the fines part runs the outbox.
    pub enabled: bool,
    /// The SMS gateway's base URL and bearer token (docs/fines.md, "Delivery"); the
    /// token may come from `KOZOMOL_SMS_GATEWAY_TOKEN` instead. `serve --demo` without
    /// a gateway starts the stand-in one.
    pub sms_gateway_url: Option<String>,
    pub sms_gateway_token: Option<String>,
    /// PEM certificates trusted for the gateway besides the public roots.
    pub sms_gateway_ca_file: Option<PathBuf>,
    /// The mail server resolutions are e-mailed through.
    pub smtp_host: Option<String>,
    /// Defaults to the security's port: 587 (starttls), 465 (tls), 25 (none).
    pub smtp_port: Option<u16>,
    pub smtp_from: Option<String>,
    /// `starttls` (required), `tls` (from the first byte) or `none` (a local relay).
    pub smtp_security: SmtpSecurity,
    /// PEM certificates trusted for the relay besides the public roots.
    pub smtp_ca_file: Option<PathBuf>,
    /// The account to submit as; the password may come from `KOZOMOL_SMTP_PASSWORD`.
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// Print letters for post in batches.
    pub post: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            enabled: true,
            sms_gateway_url: None,
            sms_gateway_token: None,
            sms_gateway_ca_file: None,
            smtp_host: None,
            smtp_port: None,
            smtp_from: None,
            smtp_security: SmtpSecurity::default(),
            smtp_ca_file: None,
            smtp_username: None,
            smtp_password: None,
            post: true,
        }
    }
}

impl std::fmt::Debug for DeliverySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "***");
        f.debug_struct("DeliverySettings")
            .field("enabled", &self.enabled)
            .field("sms_gateway_url", &self.sms_gateway_url)
            .field("sms_gateway_token", &hidden(&self.sms_gateway_token))
            .field("sms_gateway_ca_file", &self.sms_gateway_ca_file)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_from", &self.smtp_from)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_ca_file", &self.smtp_ca_file)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &hidden(&self.smtp_password))
            .field("post", &self.post)
            .finish()
    }
}

impl DeliverySettings {
    /// The SMS gateway's client settings, its certificates read; `None` without a
    /// gateway.
    pub fn sms_gateway(&self) -> Result<Option<SmsGatewayConfig>, DeliveryError> {
        let (Some(url), Some(token)) = (&self.sms_gateway_url, &self.sms_gateway_token) else {
            return Ok(None);
        };
        let mut config = SmsGatewayConfig::new(url.clone(), token.clone());
        config.trusted = self
            .sms_gateway_ca_file
            .as_deref()
            .map(TrustedCertificates::read)
            .transpose()?;
        Ok(Some(config))
    }

    /// The relay's client settings, its certificates read; `None` without a relay.
    pub fn smtp(&self) -> Result<Option<SmtpConfig>, DeliveryError> {
        let (Some(host), Some(from)) = (&self.smtp_host, &self.smtp_from) else {
            return Ok(None);
        };
        let port = self.smtp_port.unwrap_or(match self.smtp_security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        });
        let mut config = SmtpConfig::new(host.clone(), port, from.clone());
        config.security = self.smtp_security;
        config.trusted = self
            .smtp_ca_file
            .as_deref()
            .map(TrustedCertificates::read)
            .transpose()?;
        config.credentials = match (&self.smtp_username, &self.smtp_password) {
            (Some(username), Some(password)) => Some(SmtpCredentials {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        };
        Ok(Some(config))
    }
}

impl RecognizerSettings {
    pub fn recognizer_config(&self) -> kozomol_recognizer::RecognizerConfig {
        kozomol_recognizer::RecognizerConfig {
            models_dir: self.models_dir.clone(),
            onnxruntime: self.onnxruntime.clone(),
            threads: self.threads,
            cuda: self.cuda,
            ..Default::default()
        }
    }

    pub fn thresholds(&self) -> kozomol_recognizer::worker::Thresholds {
        kozomol_recognizer::worker::Thresholds {
            auto_accept: self.auto_accept,
            agreement_accept: self.agreement_accept,
        }
    }
}

impl Settings {
    /// Defaults, then `file` if given, then the environment.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| SettingsError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => Settings::default(),
        };
        let mut problems = Vec::new();
        if let Some(v) = env("KOZOMOL_DATA_DIR") {
            settings.data_dir = v.into();
        }
        if let Some(v) = env("KOZOMOL_DATABASE_URL") {
            settings.database_url = Some(v);
        }
        if let Some(v) = env("KOZOMOL_PUBLIC_BASE_URL") {
            settings.public_base_url = Some(v);
        }
        if let Some(v) = env("KOZOMOL_HTTP_LISTEN") {
            settings.http.listen = v;
        }
        if let Some(v) = env("KOZOMOL_MQTT_BROKER") {
            settings.mqtt.broker = v;
        }
        if let Some(v) = env("KOZOMOL_SERVER_KEY_FILE") {
            settings.server_key_file = Some(v.into());
        }
        if let Some(v) = env("KOZOMOL_SIGNING_KEY_FILE") {
            settings.fines.signing_key_file = Some(v.into());
        }
        if let Some(v) = env("KOZOMOL_EVIDENCE_DIR") {
            settings.evidence_dir = Some(v.into());
        }
        if let Some(v) = env("KOZOMOL_MQTT_USERNAME") {
            settings.mqtt.username = Some(v);
        }
        for (name, target) in [
            ("KOZOMOL_MQTT_EMBEDDED", &mut settings.mqtt.embedded),
            (
                "KOZOMOL_INGEST_SHARED_SUBSCRIPTION",
                &mut settings.ingest.shared_subscription,
            ),
            (
                "KOZOMOL_RECOGNIZER_ENABLED",
                &mut settings.recognizer.enabled,
            ),
            ("KOZOMOL_FINES_ENABLED", &mut settings.fines.enabled),
        ] {
            if let Some(v) = env(name) {
                match v.parse() {
                    Ok(b) => *target = b,
                    Err(_) => problems.push(format!("{name} must be true or false, not `{v}`")),
                }
            }
        }
        // Secrets kept out of the settings file.
        if let Some(v) = env("KOZOMOL_MQTT_PASSWORD") {
            settings.mqtt.password = Some(v);
        }
        if let Some(bucket) = &mut settings.evidence_bucket {
            if let Some(v) = env("KOZOMOL_EVIDENCE_SECRET_ACCESS_KEY") {
                bucket.secret_access_key = v;
            }
        }
        if let Some(v) = env("KOZOMOL_SMS_GATEWAY_TOKEN") {
            settings.delivery.sms_gateway_token = Some(v);
        }
        if let Some(v) = env("KOZOMOL_SMTP_PASSWORD") {
            settings.delivery.smtp_password = Some(v);
        }
        if let (Some(oidc), Some(v)) = (&mut settings.oidc, env("KOZOMOL_OIDC_CLIENT_SECRET")) {
            oidc.client_secret = v;
        }
        for provider in &mut settings.payment_providers {
            if let Some(v) = env(&provider.secrets_variable()) {
                provider.secrets = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
        }
        if let Some(v) = env("KOZOMOL_INGEST_CLIENT_ID") {
            settings.ingest.client_id = v;
        }
        if let Some(v) = env("KOZOMOL_RECOGNIZER_MODELS_DIR") {
            settings.recognizer.models_dir = v.into();
        }
        if settings.recognizer.onnxruntime.is_none() {
            settings.recognizer.onnxruntime = env("ORT_DYLIB_PATH").map(PathBuf::from);
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError::Invalid(problems))
        }
    }

    /// Checks everything at once; call after command-line flags are applied.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        match self.http.listen.parse::<SocketAddr>() {
            Err(_) => problems.push(format!(
                "http.listen `{}` is not an address like 127.0.0.1:8080",
                self.http.listen
            )),
            // Links without public_base_url name the listen address: every signed
            // PDF's QR and every notice would send citizens to http://0.0.0.0:….
            Ok(listen) if listen.ip().is_unspecified() && self.public_base_url.is_none() => {
                problems.push(format!(
                    "http.listen `{listen}` listens on every address: set public_base_url, \
                     the address citizens reach kozomol at (the links in signed PDFs and \
                     notices name it)"
                ));
            }
            Ok(_) => {}
        }
        if split_host_port(&self.mqtt.broker).is_none() {
            problems.push(format!(
                "mqtt.broker `{}` is not host:port",
                self.mqtt.broker
            ));
        }
        if self.mqtt.username.is_some() && self.mqtt.password.is_none() {
            problems.push("mqtt.username is set but KOZOMOL_MQTT_PASSWORD is not".into());
        }
        if let Some(bucket) = &self.evidence_bucket {
            problems.extend(bucket.problems());
        }
        if self.mqtt.embedded && self.mqtt.broker.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "mqtt.broker `{}` must be an IP address and port for the embedded broker",
                self.mqtt.broker
            ));
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                problems.push("database_url must start with sqlite:// or postgres://".into());
            }
        }
        if let Some(url) = &self.public_base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!(
                    "public_base_url `{url}` must start with http:// or https://"
                ));
            }
        }
        if let Some(url) = &self.portal.card_checkout_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!(
                    "portal.card_checkout_url `{url}` must start with http:// or https://"
                ));
            }
        }
        problems.extend(self.retention.problems());
        if let Err(found) = self.http.proxies() {
            problems.extend(found);
        }
        if let Some(oidc) = &self.oidc {
            if !oidc.issuer.starts_with("https://") && !oidc.issuer.starts_with("http://") {
                problems.push(format!(
                    "oidc.issuer `{}` must start with https:// (or http:// on a test bench)",
                    oidc.issuer
                ));
            }
            if oidc.client_id.is_empty() || oidc.client_secret.is_empty() {
                problems.push("oidc.client_id and oidc.client_secret are required".into());
            }
        }
        if self.portal.lookup_window_s == 0 {
            problems.push("portal.lookup_window_s must be above 0".into());
        }
        // The ledger and the clocks date by the jurisdiction's own offset; a bank's
        // zoneless dates and calibration days read at another would move a payment or
        // a capture across midnight (a discount granted or lost by a day).
        let jurisdiction = self.fines.jurisdiction;
        if i64::from(self.utc_offset_minutes) * 60 != i64::from(jurisdiction.utc_offset_seconds()) {
            problems.push(format!(
                "utc_offset_minutes is {}, but fines.jurisdiction `{}` dates fines at {}",
                self.utc_offset_minutes,
                jurisdiction.as_str(),
                jurisdiction.utc_offset_seconds() / 60
            ));
        }
        if self.ingest.batch_max == 0 || self.ingest.batch_max > 10_000 {
            problems.push("ingest.batch_max must be 1..=10000".into());
        }
        if self.ingest.client_id.is_empty() {
            problems.push("ingest.client_id must not be empty".into());
        }
        problems.extend(self.recognizer.problems());
        let f = &self.fines;
        if !(2..=6).contains(&f.issuer.len()) || !f.issuer.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push("fines.issuer must be 2-6 upper-case Latin letters".into());
        }
        if f.issuer_code > 999 {
            problems.push("fines.issuer_code must be 0-999".into());
        }
        for (name, value) in [
            ("fines.authority", &f.authority),
            ("fines.appeal_rights", &f.appeal_rights),
            ("fines.duty_officer_name", &f.duty_officer_name),
            ("fines.duty_officer_badge", &f.duty_officer_badge),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{name} must not be empty"));
            }
        }
        if let Err(e) = f.merchant() {
            problems.push(format!("fines.merchant_*: {e}"));
        }
        if f.jurisdiction == kozomol_core::Jurisdiction::Kz && f.merchant_city.is_none() {
            // Without it every Kazakh fine's QR fails, and every case is set aside.
            problems.push("fines.merchant_city is required for Kazakhstan (QR field 60)".into());
        }
        for key in &f.retired_public_keys {
            if crate::serve::parse_public_key(key).is_none() {
                problems.push(format!(
                    "fines.retired_public_keys: `{key}` is not a 32-byte Ed25519 key in hex"
                ));
            }
        }
        if f.batch == 0
            || f.issue_batch == 0
            || f.issue_workers == 0
            || f.lease_s == 0
            || f.idle_poll_ms == 0
        {
            problems.push(
                "fines.batch, issue_batch, issue_workers, lease_s and idle_poll_ms must be at \
                 least 1"
                    .into(),
            );
        }
        if let Err(e) = f.checks.validate() {
            problems.push(format!("fines.checks: {e}"));
        }
        let d = &self.delivery;
        if d.sms_gateway_url.is_some() != d.sms_gateway_token.is_some() {
            problems.push("delivery.sms_gateway_url and sms_gateway_token go together".into());
        }
        if d.smtp_host.is_some() != d.smtp_from.is_some() {
            problems.push("delivery.smtp_host and smtp_from go together".into());
        }
        if d.smtp_username.is_some() != d.smtp_password.is_some() {
            problems.push("delivery.smtp_username and smtp_password go together".into());
        }
        if d.sms_gateway_url.is_none() && d.sms_gateway_ca_file.is_some() {
            problems.push("delivery.sms_gateway_ca_file without sms_gateway_url".into());
        }
        if d.smtp_host.is_none()
            && (d.smtp_ca_file.is_some() || d.smtp_username.is_some() || d.smtp_port.is_some())
        {
            problems.push("delivery.smtp_* settings without smtp_host".into());
        }
        // Certificate files read, and both channels' settings checked, here already.
        match d.sms_gateway() {
            Ok(Some(sms)) => {
                if let Err(e) = SmsGateway::new(sms) {
                    problems.push(format!("delivery.sms_gateway: {e}"));
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(format!("delivery.sms_gateway: {e}")),
        }
        match d.smtp() {
            Ok(Some(smtp)) => {
                if let Err(e) = SmtpMailer::new(smtp) {
                    problems.push(format!("delivery.smtp: {e}"));
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(format!("delivery.smtp: {e}")),
        }
        if let Some(tunduk) = &self.tunduk {
            if let Err(e) = tunduk.validate() {
                problems.push(format!("tunduk: {e}"));
            }
        }
        // Tunduk is Kyrgyzstan's bus: its registry knows Kyrgyz plates only, so a Kazakh
        // deployment would take every Kazakh plate for a foreign one and fine no one.
        if self.fines.jurisdiction != kozomol_core::Jurisdiction::Kg {
            for (section, present) in [
                ("tunduk", self.tunduk.is_some()),
                ("smartcity", self.smartcity.is_some()),
            ] {
                if present {
                    problems.push(format!(
                        "{section}: Tunduk is Kyrgyzstan's exchange bus, but fines.jurisdiction \
                         is `{}`: leave [{section}] out",
                        self.fines.jurisdiction.as_str()
                    ));
                }
            }
        }
        if let Some(smartcity) = &self.smartcity {
            if let Err(e) = smartcity.validate() {
                problems.push(format!("smartcity: {e}"));
            }
        }
        let mut provider_ids = std::collections::BTreeSet::new();
        for provider in &self.payment_providers {
            problems.extend(provider.problems());
            if !provider_ids.insert(provider.id.as_str()) {
                problems.push(format!("payment_providers: `{}` twice", provider.id));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid(problems))
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("kozomol.db").display()))
    }

    /// The evidence store for the writer `writer_id`: the bucket where one is set,
    /// else the folder.
    pub fn evidence_store(&self, writer_id: &str) -> Result<EvidenceStore, StoreError> {
        match &self.evidence_bucket {
            Some(bucket) => Ok(EvidenceStore::on(S3Segments::open(
                bucket.clone(),
                writer_id,
            )?)),
            None => EvidenceStore::open(&self.evidence_dir(), writer_id),
        }
    }

    pub fn evidence_dir(&self) -> PathBuf {
        self.evidence_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("evidence"))
    }

    /// Where the key that signs camera config is kept.
    pub fn server_key_file(&self) -> KeyFile {
        match &self.server_key_file {
            Some(path) => KeyFile::Configured(path.clone()),
            None => KeyFile::Default(self.data_dir.join("server.key")),
        }
    }

    /// Where the key that signs resolutions is kept.
    pub fn signing_key_file(&self) -> KeyFile {
        match &self.fines.signing_key_file {
            Some(path) => KeyFile::Configured(path.clone()),
            None => KeyFile::Default(self.data_dir.join("resolution-signing.key")),
        }
    }

    pub fn public_base_url(&self) -> String {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The broker's host and port.
    pub fn broker_host_port(&self) -> Option<(String, u16)> {
        split_host_port(&self.mqtt.broker)
    }
}

fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse().ok()?;
    (!host.is_empty()).then(|| (host.trim_matches(['[', ']']).to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings the deploy files carry: the example file and the Kubernetes
    /// ConfigMap's copy, as a part started from them reads them.
    #[test]
    fn the_deploy_files_settings_load_and_validate() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let configmap =
            std::fs::read_to_string(deploy.join("kubernetes/config.yaml")).expect("the ConfigMap");
        // Its `kozomol.toml: |` block, indented four spaces.
        let (_, block) = configmap
            .split_once("kozomol.toml: |\n")
            .expect("a kozomol.toml block");
        let toml_text: String = block
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().expect("tempdir");
        let from_configmap = dir.path().join("kozomol.toml");
        std::fs::write(&from_configmap, toml_text).expect("write");
        let env = |k: &str| match k {
            "KOZOMOL_MQTT_PASSWORD" => Some("secret".to_owned()),
            _ => None,
        };
        for file in [deploy.join("kozomol.toml"), from_configmap] {
            let settings = Settings::load(Some(&file), env)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            settings
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        let k8s = Settings::load(Some(&dir.path().join("kozomol.toml")), env).expect("loads");
        assert_eq!(
            k8s.mqtt.login(),
            Some(BrokerLogin {
                username: "kozomol".into(),
                password: "secret".into()
            })
        );
        assert!(k8s.ingest.shared_subscription);
    }

    #[test]
    fn a_broker_user_without_its_password_is_refused() {
        let mut s = Settings::default();
        s.mqtt.username = Some("kozomol".into());
        let problems = s.validate().expect_err("no password").to_string();
        assert!(problems.contains("KOZOMOL_MQTT_PASSWORD"), "{problems}");
        s.mqtt.password = Some("secret".into());
        s.validate().expect("with its password");
        assert!(!format!("{:?}", s.mqtt.login()).contains("secret"));
    }

    #[test]
    fn retention_is_read_and_shorter_than_two_years_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k.toml");
        let defaults = Settings::default().retention;
        assert_eq!(
            (
                defaults.personal_data_days,
                defaults.purge,
                defaults.case_file_days
            ),
            (1095, true, None)
        );
        assert_eq!(defaults.keep_case_file(), None);
        assert_eq!(defaults.sweep_evidence_after(), None);
        for (text, days, case_file, refused) in [
            ("[retention]\npersonal_data_days = 1825\n", 1825, None, None),
            (
                "[retention]\npersonal_data_days = 730\npurge = false\n",
                730,
                None,
                None,
            ),
            (
                "[retention]\npersonal_data_days = 365\n",
                365,
                None,
                Some("retention.personal_data_days"),
            ),
            (
                "[retention]\ncase_file_days = 1825\n",
                1095,
                Some(1825),
                None,
            ),
            (
                "[retention]\ncase_file_days = 1095\n",
                1095,
                Some(1095),
                Some("retention.case_file_days"),
            ),
            (
                "[retention]\nevidence_sweep_days = 6\n",
                1095,
                None,
                Some("retention.evidence_sweep_days"),
            ),
            ("[retention]\nevidence_sweep_days = 7\n", 1095, None, None),
        ] {
            std::fs::write(&file, text).expect("write");
            let settings = Settings::load(Some(&file), |_| None).expect(text);
            assert_eq!(settings.retention.personal_data_days, days);
            assert_eq!(
                settings.retention.keep(),
                chrono::Duration::days(days.into())
            );
            assert_eq!(
                settings.retention.keep_case_file(),
                case_file.map(chrono::Duration::days)
            );
            match (settings.validate(), refused) {
                (Err(e), Some(named)) => assert!(e.to_string().contains(named), "{e}"),
                (Err(e), None) => panic!("{text} refused: {e}"),
                (Ok(()), Some(_)) => panic!("{text} accepted"),
                (Ok(()), None) => {}
            }
            // What `purge-personal-data` checks: the retention alone.
            assert_eq!(
                settings.retention.problems().is_empty(),
                refused.is_none(),
                "{text}"
            );
        }
        // A purge needs no broker: a broker login without its password stops the
        // server, not the purge.
        let mut broker_half_set = Settings::default();
        broker_half_set.mqtt.username = Some("kozomol".into());
        assert!(broker_half_set.validate().is_err());
        assert!(broker_half_set.retention.problems().is_empty());
        assert!(broker_half_set.recognizer.problems().is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut s = Settings::default();
        s.http.listen = "nowhere".into();
        s.mqtt.broker = "no-port".into();
        s.ingest.batch_max = 0;
        s.http.trusted_proxies = vec![
            "10.0.0.0/8".into(),
            "192.0.2.1".into(),
            "proxy.local".into(),
        ];
        assert_eq!(s.http.proxies().map_err(|p| p.len()), Err(1));
        let Err(SettingsError::Invalid(problems)) = s.validate() else {
            panic!("expected invalid settings");
        };
        assert!(problems.len() >= 4, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("`proxy.local`")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_payee_is_read_and_kazakhstan_needs_a_city() {
        let problems = |s: &Settings| match s.validate() {
            Ok(()) => Vec::new(),
            Err(SettingsError::Invalid(problems)) => problems,
            Err(e) => panic!("{e}"),
        };
        let merchant_problems = |s: &Settings| {
            problems(s)
                .into_iter()
                .filter(|p| p.contains("merchant"))
                .collect::<Vec<_>>()
        };
        let mut s = Settings::default();
        s.fines
            .merchant_sub_fields
            .insert("01".into(), "1180000112345678".into());
        assert_eq!(merchant_problems(&s), Vec::<String>::new());
        s.fines.merchant_sub_fields.insert("x1".into(), "1".into());
        assert_eq!(merchant_problems(&s).len(), 1, "{:?}", problems(&s));
        let mut kz = Settings::default();
        kz.fines.jurisdiction = kozomol_core::Jurisdiction::Kz;
        kz.utc_offset_minutes = 300;
        assert!(
            merchant_problems(&kz)
                .iter()
                .any(|p| p.contains("merchant_city")),
            "{:?}",
            problems(&kz)
        );
        kz.fines.merchant_city = Some("ALMATY".into());
        assert_eq!(merchant_problems(&kz), Vec::<String>::new());
    }

    #[test]
    fn listening_everywhere_needs_the_public_address() {
        let mut s = Settings::default();
        s.http.listen = "0.0.0.0:8080".into();
        let Err(SettingsError::Invalid(problems)) = s.validate() else {
            panic!("expected invalid settings");
        };
        assert!(
            problems.iter().any(|p| p.contains("public_base_url")),
            "{problems:?}"
        );
        s.public_base_url = Some("https://kozomol.example.kg".into());
        s.validate().expect("valid");
        s.public_base_url = None;
        s.http.listen = "127.0.0.1:8080".into();
        s.validate().expect("valid");
    }

    #[test]
    fn retention_periods_are_at_most_a_century() {
        let mut s = Settings::default();
        s.retention.personal_data_days = MAX_RETENTION_DAYS;
        s.retention.case_file_days = Some(MAX_RETENTION_DAYS + 1);
        s.retention.evidence_sweep_days = Some(99_999_999);
        let Err(SettingsError::Invalid(problems)) = s.validate() else {
            panic!("expected invalid settings");
        };
        let over: Vec<&String> = problems
            .iter()
            .filter(|p| p.contains("a century"))
            .collect();
        assert_eq!(over.len(), 2, "{problems:?}");
        assert!(over[0].contains("case_file_days") && over[1].contains("evidence_sweep_days"));
    }

    #[test]
    fn tunduk_serves_a_kyrgyz_deployment_only() {
        let problems = |s: &Settings| match s.validate() {
            Ok(()) => Vec::new(),
            Err(SettingsError::Invalid(problems)) => problems,
            Err(e) => panic!("{e}"),
        };
        let registry = kozomol_tunduk::RegistryConfig::new(
            "http://127.0.0.1:8443".to_owned(),
            kozomol_tunduk::XRoadClient::parse("central-server/GOV/70000001/kozomol")
                .expect("a client"),
        );
        let kg = Settings {
            tunduk: Some(registry),
            ..Settings::default()
        };
        assert!(
            !problems(&kg).iter().any(|p| p.contains("exchange bus")),
            "{:?}",
            problems(&kg)
        );
        let mut kz = kg.clone();
        kz.fines.jurisdiction = kozomol_core::Jurisdiction::Kz;
        kz.utc_offset_minutes = 300;
        kz.fines.merchant_city = Some("ALMATY".into());
        assert!(
            problems(&kz)
                .iter()
                .any(|p| p.starts_with("tunduk:") && p.contains("`kz`")),
            "{:?}",
            problems(&kz)
        );
    }

    #[test]
    fn the_offset_is_the_jurisdictions() {
        use kozomol_core::Jurisdiction::{Kg, Kz};
        for (jurisdiction, minutes, fine) in [
            (Kg, 360, true),
            (Kz, 300, true),
            (Kz, 360, false),
            (Kg, 300, false),
            (Kg, i32::MAX, false),
        ] {
            let mut s = Settings::default();
            s.fines.jurisdiction = jurisdiction;
            s.utc_offset_minutes = minutes;
            let problems = match s.validate() {
                Ok(()) => Vec::new(),
                Err(SettingsError::Invalid(problems)) => problems,
                Err(e) => panic!("{e}"),
            };
            let refused = problems.iter().any(|p| p.contains("utc_offset_minutes"));
            assert_eq!(refused, !fine, "{jurisdiction:?} {minutes}: {problems:?}");
        }
    }

    #[test]
    fn the_identity_provider_is_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k.toml");
        for (text, problem) in [
            (
                "[oidc]\nissuer = \"https://id.example.kg/realms/city\"\nclient_id = \"kozomol\"\nclient_secret = \"s\"\n",
                None,
            ),
            (
                "[oidc]\nissuer = \"id.example.kg\"\nclient_id = \"kozomol\"\nclient_secret = \"s\"\n",
                Some("oidc.issuer"),
            ),
            (
                "[oidc]\nissuer = \"https://id.example.kg\"\nclient_id = \"kozomol\"\nclient_secret = \"\"\n",
                Some("oidc.client_id and oidc.client_secret"),
            ),
        ] {
            std::fs::write(&file, text).expect("write");
            let s = Settings::load(Some(&file), |_| None).expect("loads");
            let oidc = s.oidc.as_ref().expect("oidc");
            assert_eq!(oidc.login_claim, "sub");
            match (s.validate(), problem) {
                (Ok(()), None) => {}
                (Err(SettingsError::Invalid(problems)), Some(problem)) => {
                    assert!(problems.iter().any(|p| p.contains(problem)), "{problems:?}")
                }
                (other, _) => panic!("{text}: {other:?}"),
            }
        }
        // The secret from the environment, the file holding none; never in a log.
        std::fs::write(
            &file,
            "[oidc]\nissuer = \"https://id.example.kg\"\nclient_id = \"kozomol\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), |k| {
            (k == "KOZOMOL_OIDC_CLIENT_SECRET").then(|| "from-the-vault".to_owned())
        })
        .expect("loads");
        s.validate().expect("valid");
        let oidc = s.oidc.as_ref().expect("oidc");
        assert_eq!(oidc.client_secret, "from-the-vault");
        assert!(!format!("{oidc:?}").contains("from-the-vault"));
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "data_dir = \"/a\"\n[mqtt]\nbroker = \"10.0.0.1:1883\"\nembedded = false\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), |k| {
            (k == "KOZOMOL_DATA_DIR").then(|| "/b".to_owned())
        })
        .expect("loads");
        assert_eq!(s.data_dir, PathBuf::from("/b"));
        assert_eq!(s.mqtt.broker, "10.0.0.1:1883");
        assert!(!s.mqtt.embedded);
        s.validate().expect("valid");
    }

    #[test]
    fn the_checks_before_issuing_are_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "[fines.checks]\nduplicate_window_s = 120\nmax_plausible_kmh = 0\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), |_| None).expect("loads");
        assert_eq!(s.fines.checks.duplicate_window_s, 120);
        assert_eq!(
            s.fines.checks.clock_skew_s, 2,
            "the rest keep their defaults"
        );
        let Err(SettingsError::Invalid(problems)) = s.validate() else {
            panic!("a zero speed is refused");
        };
        assert!(
            problems.iter().any(|p| p.starts_with("fines.checks: ")),
            "{problems:?}"
        );
    }

    #[test]
    fn delivery_channels_are_read_with_their_security() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k.toml");
        let table = |extra: &str| {
            format!(
                "[delivery]\nsmtp_host = \"mail.city.kg\"\nsmtp_from = \"kozomol@city.kg\"\n{extra}"
            )
        };
        // (settings, the port, the security) — the port follows the security.
        for (extra, port, security) in [
            ("", 587, SmtpSecurity::StartTls),
            ("smtp_security = \"tls\"\n", 465, SmtpSecurity::Tls),
            ("smtp_security = \"none\"\n", 25, SmtpSecurity::None),
            (
                "smtp_security = \"none\"\nsmtp_port = 2525\n",
                2525,
                SmtpSecurity::None,
            ),
        ] {
            std::fs::write(&file, table(extra)).expect("write");
            let s = Settings::load(Some(&file), |_| None).expect("loads");
            s.validate().expect("valid");
            let smtp = s.delivery.smtp().expect("read").expect("a relay");
            assert_eq!((smtp.port, smtp.security), (port, security), "{extra}");
        }

        // Secrets from the environment.
        std::fs::write(
            &file,
            table("smtp_username = \"kozomol\"\nsms_gateway_url = \"https://sms.city.kg\"\n"),
        )
        .expect("write");
        let s = Settings::load(Some(&file), |k| match k {
            "KOZOMOL_SMTP_PASSWORD" => Some("from-env".to_owned()),
            "KOZOMOL_SMS_GATEWAY_TOKEN" => Some("token-from-env".to_owned()),
            "KOZOMOL_MQTT_USERNAME" => Some("kozomol".to_owned()),
            "KOZOMOL_MQTT_PASSWORD" => Some("mqtt-from-env".to_owned()),
            _ => None,
        })
        .expect("loads");
        s.validate().expect("valid");
        let smtp = s.delivery.smtp().expect("read").expect("a relay");
        assert_eq!(smtp.credentials.expect("an account").password, "from-env");
        let sms = s.delivery.sms_gateway().expect("read").expect("a gateway");
        assert_eq!(sms.token, "token-from-env");
        let shown = format!("{s:?}");
        assert!(!shown.contains("from-env"), "a secret in Debug: {shown}");
        assert_eq!(s.mqtt.login().expect("a login").password, "mqtt-from-env");

        // A certificate file that is not one, and a password sent in clear.
        std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").expect("write");
        std::fs::write(
            &file,
            table(&format!(
                "smtp_ca_file = \"{}\"\nsmtp_security = \"tls\"\n",
                dir.path().join("ca.pem").display()
            )),
        )
        .expect("write");
        let s = Settings::load(Some(&file), |_| None).expect("loads");
        let Err(SettingsError::Invalid(problems)) = s.validate() else {
            panic!("a file without certificates is refused");
        };
        assert!(
            problems.iter().any(|p| p.contains("ca.pem")),
            "{problems:?}"
        );
        std::fs::write(
            &file,
            table("smtp_security = \"none\"\nsmtp_username = \"k\"\nsmtp_password = \"p\"\n"),
        )
        .expect("write");
        let s = Settings::load(Some(&file), |_| None).expect("loads");
        let Err(SettingsError::Invalid(problems)) = s.validate() else {
            panic!("credentials over plain SMTP are refused");
        };
        assert!(
            problems.iter().any(|p| p.contains("in clear")),
            "{problems:?}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "data_dri = \"/a\"\n").expect("write");
        assert!(matches!(
            Settings::load(Some(&file), |_| None),
            Err(SettingsError::Parse { .. })
        ));
    }
}
