//! Wiring: the parts of kozomol started in one process (`kozomol serve`) or one part
//! per process (`kozomol run PART`), with one cancellation token for all of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use ed25519_dalek::SigningKey;
use kozomol_core::stage_metrics::StageMetrics;
use kozomol_core::topics::{self, BrokerLogin, TopicKind};
use kozomol_core::CameraId;
use kozomol_ingest::{IngestConfig, IngestMetrics};
use kozomol_store::EvidenceStore;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use kozomol_fines::approval::ApprovalStage;
use kozomol_fines::calendar::Calendars;
use kozomol_fines::catalogue::Catalogue;
use kozomol_fines::clocks::DatingStage;
use kozomol_fines::delivery::standin::StandInGateway;
use kozomol_fines::delivery::{
    DeliveryConfig, DeliveryWorker, MessageSender, SmsGateway, SmsGatewayConfig, SmtpMailer,
    SubscriberNotifier,
};
use kozomol_fines::issuing::{Issuer, IssuingStage};
use kozomol_fines::lookup::LookupStage;
use kozomol_fines::resolution::{Ed25519Signer, Officer, SignerIdentity, VerifyingKeys};
use kozomol_fines::worker::{ArchiveSchedule, DeadlineSchedule, FinesWorker, PurgeSchedule};

use crate::api::{self, AppState, CameraConfigPublisher};
use crate::settings::{KeyFile, PaymentProvider, Settings};

/// The demo's card acquirer's id among the payment providers.
const DEMO_CARD_PROVIDER: &str = "demo-card";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Store(#[from] kozomol_store::StoreError),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error("signing key {path}: {message}")]
    SigningKey { path: String, message: String },
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("recognizer: {0}")]
    Recognizer(#[from] kozomol_recognizer::RecognizerError),
    #[error("fines: {0}")]
    Fines(String),
    #[error("tunduk: {0}")]
    Tunduk(#[from] kozomol_tunduk::TundukError),
    #[error("a part stopped with an error: {0}")]
    Part(String),
}

/// A part that can run in its own process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// MQTT → verified, committed cases.
    Ingest,
    /// The HTTP API.
    Api,
    /// Plate recognition on received cases.
    Recognizer,
    /// Auto-approval, owner lookup over Tunduk and issuing signed resolutions.
    Fines,
}

impl Part {
    /// The part's name on the command line (`kozomol run NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Part::Ingest => "ingest",
            Part::Api => "api",
            Part::Recognizer => "recognizer",
            Part::Fines => "fines",
        }
    }
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Plan {
    pub parts: Vec<Part>,
    /// Run the embedded broker (`serve` on the embedded default).
    pub embedded_broker: bool,
    /// Demo accounts and simulated cameras.
    pub demo: bool,
    /// How many simulated cameras the demo starts (0: accounts only).
    pub demo_cameras: u32,
}

/// Runs the plan until `cancel` fires or a part fails.
pub async fn run(
    settings: Settings,
    plan: Plan,
    cancel: CancellationToken,
) -> Result<(), ServeError> {
    settings.validate()?;
    create_dir(&settings.data_dir)?;
    let store = kozomol_store::connect(&settings.database_url()).await?;
    let instance = instance_id();
    let evidence = Arc::new(settings.evidence_store(&instance)?);
    let metrics = Arc::new(IngestMetrics::default());
    let stage_metrics = Arc::new(StageMetrics::default());
    let server_key = Arc::new(load_or_create_key(&settings.server_key_file())?);
    let resolution_keys = ResolutionKeys::load(&settings)?;
    let (broker_host, broker_port) = settings.broker_host_port().ok_or_else(|| {
        crate::settings::SettingsError::Invalid(vec!["mqtt.broker is not host:port".into()])
    })?;

    if plan.embedded_broker {
        let listen: SocketAddr = settings.mqtt.broker.parse().map_err(|_| {
            crate::settings::SettingsError::Invalid(vec!["mqtt.broker must be ip:port".into()])
        })?;
        tokio::task::spawn_blocking(move || crate::broker::start(listen))
            .await
            .map_err(|e| ServeError::Part(e.to_string()))??;
    }

    let mut tasks: JoinSet<Result<(), ServeError>> = JoinSet::new();
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));

    if plan.parts.contains(&Part::Ingest) {
        let mut config = IngestConfig::new(
            broker_host.clone(),
            broker_port,
            settings.ingest.client_id.clone(),
        );
        config.shared_subscription = settings.ingest.shared_subscription;
        config.batch_max = settings.ingest.batch_max;
        config.batch_linger = Duration::from_millis(settings.ingest.batch_linger_ms);
        config.local_utc_offset_minutes = settings.utc_offset_minutes;
        config.actor = format!("ingest:{}", settings.ingest.client_id);
        config.login = settings.mqtt.login();
        let (store, evidence, metrics, cancel) = (
            Arc::clone(&store),
            Arc::clone(&evidence),
            Arc::clone(&metrics),
            cancel.clone(),
        );
        tasks.spawn(async move {
            kozomol_ingest::run(config, store, evidence, metrics, cancel)
                .await
                .map_err(|e| ServeError::Part(format!("ingest: {e}")))
        });
    }

    if plan.parts.contains(&Part::Recognizer) {
        // Loaded before anything is announced as running: a missing library or model
        // stops start-up with the reason, instead of a worker failing later.
        let recognizer_config = settings.recognizer.recognizer_config();
        let recognizer = tokio::task::spawn_blocking(move || {
            kozomol_recognizer::Recognizer::load(&recognizer_config)
        })
        .await
        .map_err(|e| ServeError::Part(e.to_string()))??;
        let r = &settings.recognizer;
        let mut config =
            kozomol_recognizer::worker::WorkerConfig::new(format!("recognizer-{instance}"));
        config.batch = r.batch;
        config.lease = Duration::from_secs(r.lease_s);
        config.max_attempts = r.max_attempts;
        config.thresholds = r.thresholds();
        config.metrics = Arc::clone(&stage_metrics);
        let (store, evidence, cancel) = (Arc::clone(&store), Arc::clone(&evidence), cancel.clone());
        tasks.spawn(async move {
            kozomol_recognizer::worker::run(config, Arc::new(recognizer), store, evidence, cancel)
                .await
                .map_err(|e| ServeError::Part(format!("recognizer: {e}")))
        });
    }

    // The demo's bus: a stand-in security server whose registry knows every plate
    // (Kyrgyz ones: Tunduk is Kyrgyzstan's, as validate insists).
    let mut registry_config = settings.tunduk.clone();
    let mut _demo_bus = None;
    if plan.demo
        && registry_config.is_none()
        && plan.parts.contains(&Part::Fines)
        && settings.fines.jurisdiction == kozomol_core::Jurisdiction::Kg
    {
        let (bus, config) = crate::demo_bus::start().await?;
        tracing::info!(url = %bus.url(), "demo Tunduk stand-in answering owner lookups");
        registry_config = Some(config);
        _demo_bus = Some(bus);
    }
    // And its SMS gateway, for contacts citizens leave in the demo.
    let d = &settings.delivery;
    let mut sms = d
        .sms_gateway()
        .map_err(|e| ServeError::Fines(e.to_string()))?;
    let mut _demo_sms = None;
    if plan.demo && sms.is_none() && d.enabled && plan.parts.contains(&Part::Fines) {
        const DEMO_TOKEN: &str = "demo-sms-gateway";
        let gateway = StandInGateway::start(DEMO_TOKEN)
            .await
            .map_err(|source| ServeError::Io {
                what: "demo SMS gateway stand-in".into(),
                source,
            })?;
        tracing::info!(url = %gateway.url(), "demo SMS gateway stand-in delivering texts");
        sms = Some(SmsGatewayConfig::new(gateway.url(), DEMO_TOKEN));
        _demo_sms = Some(gateway);
    }

    // The channels' senders, shared by the delivery worker and the portal's contact
    // confirmations.
    let senders =
        if d.enabled && (plan.parts.contains(&Part::Fines) || plan.parts.contains(&Part::Api)) {
            message_senders(&settings, sms)?
        } else {
            Vec::new()
        };
    if plan.parts.contains(&Part::Api) && senders.is_empty() {
        tracing::warn!(
            "no SMS gateway or mail server is configured in [delivery]: the portal takes no contacts for notices"
        );
    }

    if plan.parts.contains(&Part::Fines) {
        let mut worker = fines_worker(
            &settings,
            &instance,
            registry_config,
            senders.clone(),
            &resolution_keys,
            Arc::clone(&evidence),
        )?;
        worker.metrics = Arc::clone(&stage_metrics);
        let (store, cancel) = (Arc::clone(&store), cancel.clone());
        tasks.spawn(async move {
            kozomol_fines::worker::run(worker, store, cancel)
                .await
                .map_err(|e| ServeError::Part(format!("fines: {e}")))
        });
    }

    let mut http_addr = None;
    let mut _demo_acquirer = None;
    let mut _demo_identity_provider = None;
    // Made before the API starts: the demo's identity provider knows the same people.
    let demo_credentials = if plan.demo {
        let credentials =
            crate::auth::create_demo_accounts(store.as_ref(), &settings.data_dir).await?;
        tracing::info!(
            file = %settings.data_dir.join("demo-credentials.json").display(),
            "demo accounts ready"
        );
        Some(credentials)
    } else {
        None
    };
    if plan.parts.contains(&Part::Api) {
        let publisher = MqttConfigPublisher::connect(
            &broker_host,
            broker_port,
            settings.mqtt.login(),
            &instance,
            cancel.clone(),
        );
        let mut state = AppState::new(
            Arc::clone(&store),
            Arc::clone(&evidence),
            Arc::clone(&metrics),
            settings.public_base_url(),
            Arc::clone(&server_key),
        )
        .with_config_publisher(Arc::new(publisher));
        state.ready = Arc::clone(&ready);
        state.stage_metrics = Arc::clone(&stage_metrics);
        state.resolution_keys = Arc::new(resolution_keys.verifying.clone());
        // The confidence at which a read may decide alone is where it stops being weak.
        state.weak_read_below_milli = (settings.recognizer.auto_accept * 1000.0).round() as u16;
        state.jurisdiction = settings.fines.jurisdiction;
        let mut providers = settings.payment_providers.clone();
        state.card_checkout_url = settings.portal.card_checkout_url.clone();
        // Checked by `Settings::validate` before serving.
        state.trusted_proxies = Arc::new(settings.http.proxies().unwrap_or_default());
        state.contact_channels = Arc::new(senders.clone());
        state.oidc = settings
            .oidc
            .clone()
            .map(|oidc| Arc::new(api::OidcClient::new(oidc)));
        // The demo's city identity provider: a stand-in that knows the demo accounts by
        // their logins and passwords.
        if let (Some(credentials), None) = (demo_credentials.as_ref(), state.oidc.as_ref()) {
            let secret = crate::auth::random_password();
            let users = [
                &credentials.reviewer,
                &credentials.supervisor,
                &credentials.finance,
                &credentials.admin,
                &credentials.auditor,
            ]
            .map(|a| (a.login.clone(), a.password.clone()))
            .to_vec();
            let provider = crate::oidc_standin::IdentityProvider::start(
                crate::oidc_standin::IdentityProviderConfig {
                    client_id: "kozomol-demo".to_owned(),
                    client_secret: secret.clone(),
                    redirect_uri: format!(
                        "{}{}",
                        settings.public_base_url().trim_end_matches('/'),
                        api::OIDC_CALLBACK_PATH
                    ),
                    users,
                },
            )
            .await
            .map_err(|source| ServeError::Io {
                what: "demo identity provider stand-in".into(),
                source,
            })?;
            tracing::info!(issuer = %provider.issuer(), "demo identity provider stand-in taking console logins");
            state.oidc = Some(Arc::new(api::OidcClient::new(
                crate::settings::OidcSettings {
                    issuer: provider.issuer(),
                    client_id: "kozomol-demo".to_owned(),
                    client_secret: secret,
                    display_name: "City ID (demo stand-in)".to_owned(),
                    login_claim: "sub".to_owned(),
                },
            )));
            _demo_identity_provider = Some(provider);
        }
        // The demo's card payments: a stand-in acquirer, a provider like any other.
        if plan.demo && state.card_checkout_url.is_none() {
            let secret = crate::auth::random_password();
            let acquirer =
                crate::card_standin::CardAcquirer::start(crate::card_standin::CardAcquirerConfig {
                    kozomol_base_url: settings.public_base_url(),
                    provider: DEMO_CARD_PROVIDER.to_owned(),
                    secret: secret.clone(),
                })
                .await
                .map_err(|source| ServeError::Io {
                    what: "demo card acquirer stand-in".into(),
                    source,
                })?;
            tracing::info!(url = %acquirer.checkout_url(), "demo card acquirer stand-in taking card payments");
            state.card_checkout_url = Some(acquirer.checkout_url());
            providers.push(PaymentProvider {
                id: DEMO_CARD_PROVIDER.to_owned(),
                secrets: vec![secret],
            });
            _demo_acquirer = Some(acquirer);
        }
        state.payment_providers = Arc::new(providers);
        state.lookup_limit = api::LookupLimit {
            lookups: settings.portal.lookups_per_window,
            window: Duration::from_secs(settings.portal.lookup_window_s),
        };
        state.merchant = Some(Arc::new(
            settings.fines.merchant().map_err(ServeError::Fines)?,
        ));
        state.smartcity = settings.smartcity.clone().map(|provider| {
            Arc::new(api::SmartcityService {
                settings: provider,
                offset: settings.utc_offset(),
            })
        });
        let listener = bind_http(&settings.http.listen).await?;
        let addr = listener.local_addr().map_err(|source| ServeError::Io {
            what: "http listener address".into(),
            source,
        })?;
        http_addr = Some(addr);
        // Every API process seals the audit log; seals are numbered, so two processes
        // never write the same one.
        let (sealing, stop) = (Arc::clone(&store), cancel.clone());
        tasks.spawn(async move {
            seal_audit_log(sealing.as_ref(), stop).await;
            Ok(())
        });
        let router = api::router(state);
        let shutdown = cancel.clone();
        tasks.spawn(async move {
            // The peer's address: `/xroad/soap` answers only the security server.
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| ServeError::Io {
                what: "http server".into(),
                source,
            })
        });
        tracing::info!(listen = %addr, public_base_url = %settings.public_base_url(), "HTTP API listening");
    } else {
        // A process without the API still answers its probes and its scrapes.
        let probes = api::ProcessProbes {
            store: Arc::clone(&store),
            ready: Arc::clone(&ready),
            ingest_metrics: Arc::clone(&metrics),
            stage_metrics: Arc::clone(&stage_metrics),
            needs_broker: true,
        };
        let listener = bind_http(&settings.http.listen).await?;
        let shutdown = cancel.clone();
        tracing::info!(listen = %settings.http.listen, "health and metrics listening");
        tasks.spawn(async move {
            axum::serve(listener, api::probes_router(probes))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
                .map_err(|source| ServeError::Io {
                    what: "health and metrics listener".into(),
                    source,
                })
        });
    }

    if let Some(credentials) = demo_credentials.as_ref() {
        if let (Some(addr), true) = (http_addr, plan.demo_cameras > 0) {
            let options = crate::simulate::SimulationOptions {
                cameras: plan.demo_cameras,
                events: None,
                rate: 0.5,
                broker: settings.mqtt.broker.clone(),
                // The demo's cameras share kozomol's own login to the broker.
                broker_login: settings.mqtt.login(),
                api: format!("http://{addr}"),
                token: credentials.admin.token.clone(),
                work_dir: settings.data_dir.join("simulated-cameras"),
                receipt_timeout: Duration::from_secs(60),
                small_frames: false,
                scene_seed: None,
            };
            let cancel = cancel.clone();
            tasks.spawn(async move {
                // The API must answer before cameras register through it.
                tokio::time::sleep(Duration::from_millis(200)).await;
                match crate::simulate::run_simulation(options, cancel).await {
                    Ok(report) => tracing::info!(?report, "simulated cameras stopped"),
                    Err(e) => tracing::warn!(error = %e, "simulated cameras stopped"),
                }
                Ok(())
            });
        }
    }

    ready.store(true, Ordering::SeqCst);
    tracing::info!(parts = ?plan.parts, instance = %instance, "kozomol running");

    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined
            .map_err(|e| ServeError::Part(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = outcome {
            tracing::error!(error = %e, "a part failed; stopping");
            cancel.cancel();
            if result.is_ok() {
                result = Err(e);
            }
        } else if !cancel.is_cancelled() && tasks.is_empty() {
            break;
        }
    }
    result
}

async fn bind_http(listen: &str) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::HttpBind {
            addr: listen.to_owned(),
            source,
        })
}

fn create_dir(dir: &Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(dir).map_err(|source| ServeError::Io {
        what: format!("create {}", dir.display()),
        source,
    })
}

/// A name for this process, unique enough to keep evidence segment files apart.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        // 31 + `-` + 32 hex digits: the 64 an evidence writer id may have.
        .take(31)
        .collect();
    format!(
        "{}-{}",
        if host.is_empty() { "kozomol" } else { &host },
        uuid::Uuid::now_v7().simple()
    )
}

/// The key that signs resolutions and every key their signatures verify with.
struct ResolutionKeys {
    seed: [u8; 32],
    verifying: VerifyingKeys,
}

impl ResolutionKeys {
    fn load(settings: &Settings) -> Result<Self, ServeError> {
        let key = load_or_create_key(&settings.signing_key_file())?;
        let mut verifying: VerifyingKeys = [key.verifying_key()].into_iter().collect();
        for hex_key in &settings.fines.retired_public_keys {
            // Checked by Settings::validate.
            if let Some(key) = parse_public_key(hex_key) {
                verifying.insert(key);
            }
        }
        Ok(ResolutionKeys {
            seed: key.to_bytes(),
            verifying,
        })
    }
}

/// An Ed25519 public key from its 32 bytes in hex.
pub fn parse_public_key(hex_key: &str) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim()).ok()?.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

/// The SMS gateway (`sms`, the demo's stand-in where the settings name none) and the
/// mail server the settings name.
fn message_senders(
    settings: &Settings,
    sms: Option<SmsGatewayConfig>,
) -> Result<Vec<Arc<dyn MessageSender>>, ServeError> {
    let fail = |e: kozomol_fines::delivery::DeliveryError| ServeError::Fines(e.to_string());
    let mut senders: Vec<Arc<dyn MessageSender>> = Vec::new();
    if let Some(sms) = sms {
        senders.push(Arc::new(SmsGateway::new(sms).map_err(fail)?));
    }
    if let Some(smtp) = settings.delivery.smtp().map_err(fail)? {
        senders.push(Arc::new(SmtpMailer::new(smtp).map_err(fail)?));
    }
    Ok(senders)
}

/// The fines stages as the settings describe them.
fn fines_worker(
    settings: &Settings,
    instance: &str,
    registry: Option<kozomol_tunduk::RegistryConfig>,
    senders: Vec<Arc<dyn MessageSender>>,
    keys: &ResolutionKeys,
    evidence: Arc<EvidenceStore>,
) -> Result<FinesWorker, ServeError> {
    let f = &settings.fines;
    let worker = |stage: &str| format!("{stage}-{instance}");
    let lease = Duration::from_secs(f.lease_s);
    let mut approval = ApprovalStage::new(
        worker("approval"),
        // The confidence at which a read may decide alone, as the review API uses it.
        (settings.recognizer.auto_accept * 1000.0).round() as u16,
    );
    approval.batch = f.batch;
    approval.lease = lease;
    // Notices to the systems subscribed to owners' violations leave through the same
    // security server.
    let notifier = match (&settings.smartcity, &registry) {
        (Some(smartcity), Some(config)) if !smartcity.subscribers.is_empty() => {
            Some(Arc::new(SubscriberNotifier::new(
                kozomol_tunduk::registry::soap_client(config)?,
                smartcity.subscribers.clone(),
                config.request_timeout(),
            )))
        }
        (Some(smartcity), None) if !smartcity.subscribers.is_empty() => {
            return Err(ServeError::Fines(
                "[smartcity] subscribers are sent their notices through the [tunduk] security server, which is not configured".into(),
            ))
        }
        _ => None,
    };
    let lookup = match registry {
        Some(config) => {
            let mut stage = LookupStage::new(worker("lookup"));
            stage.batch = f.batch;
            stage.lease =
                kozomol_fines::lookup::lease_covering(f.batch, config.longest_lookup(), lease);
            stage.checks = f.checks;
            stage.jurisdiction = f.jurisdiction;
            Some((
                stage,
                Arc::new(kozomol_tunduk::VehicleRegistry::new(config)?),
            ))
        }
        None => {
            tracing::warn!("no [tunduk] security server is configured: approved cases wait for an owner lookup");
            None
        }
    };
    let merchant = f.merchant().map_err(ServeError::Fines)?;
    let stage = IssuingStage {
        worker: worker("issuing"),
        batch: f.issue_batch,
        lease,
        jurisdiction: f.jurisdiction,
        issuer: f.issuer.clone(),
        issuer_code: f.issuer_code,
        authority: f.authority.clone(),
        appeal_rights: f.appeal_rights.clone(),
        verification_base_url: settings.public_base_url(),
        merchant,
        duty_officer: Officer {
            name: f.duty_officer_name.clone(),
            badge: f.duty_officer_badge.clone(),
        },
    };
    let signer = Ed25519Signer::from_seed(
        &keys.seed,
        SignerIdentity::Issuer {
            name: format!("{}-{}", f.jurisdiction.as_str().to_uppercase(), f.issuer),
        },
    );
    let issuer = Arc::new(Issuer {
        catalogue: Catalogue::bundled(f.jurisdiction),
        calendars: Calendars::bundled(),
        signer: Arc::new(signer),
        evidence: Arc::clone(&evidence),
    });
    let delivery = if settings.delivery.enabled {
        let fail = |e: kozomol_fines::delivery::DeliveryError| ServeError::Fines(e.to_string());
        let config = DeliveryConfig::new(worker("delivery"), settings.public_base_url());
        let mut delivery = DeliveryWorker::new(config, Arc::clone(&evidence)).map_err(fail)?;
        for sender in senders {
            delivery = delivery.with_sender(sender);
        }
        let d = &settings.delivery;
        if d.post {
            delivery = delivery.with_post();
        }
        if let Some(notifier) = notifier {
            delivery = delivery.with_sender(notifier);
        }
        Some(Arc::new(delivery))
    } else {
        None
    };
    let dating = DatingStage {
        worker: worker("dating"),
        batch: f.batch,
        lease,
        jurisdiction: f.jurisdiction,
    };
    Ok(FinesWorker {
        approval: Some(approval),
        lookup,
        issuing: Some((stage, Arc::clone(&issuer))),
        issuing_loops: f.issue_workers,
        dating: Some((dating, issuer)),
        deadlines: Some(DeadlineSchedule {
            actor: format!("fines:{}", worker("deadlines")),
            every: Duration::from_secs(60),
            batch: 500,
        }),
        delivery,
        purge: settings.retention.purge.then(|| PurgeSchedule {
            actor: format!("fines:{}", worker("retention")),
            keep: settings.retention.keep(),
            every: Duration::from_secs(60 * 60),
            batch: 200,
        }),
        // Destruction follows the purge: off with it, overwriting too (an operator's
        // stop). Without an archive period the pass only overwrites what is queued:
        // bytes stored that no row will read.
        archive: settings.retention.purge.then(|| ArchiveSchedule {
            actor: format!("fines:{}", worker("archive")),
            keep: settings.retention.keep_case_file(),
            every: Duration::from_secs(60 * 60),
            batch: 200,
            evidence: Arc::clone(&evidence),
            sweep_after: settings.retention.sweep_evidence_after(),
        }),
        idle_poll: Duration::from_millis(f.idle_poll_ms),
        error_backoff: Duration::from_secs(2),
        metrics: Arc::default(),
    })
}

/// Reads an Ed25519 signing key (its seed in hex); one in the data folder by default is
/// made on first start (by whichever process comes first: the others read it).
pub fn load_or_create_key(file: &KeyFile) -> Result<SigningKey, ServeError> {
    let path = file.path();
    let err = |message: String| ServeError::SigningKey {
        path: path.display().to_string(),
        message,
    };
    // A default key cut short is a first start that stopped while writing it (where
    // the filesystem has no hard links): said so, with the way out.
    let torn = match file {
        KeyFile::Default(_) => {
            "; where it is a key made on first start and cut short (a start stopped while \
             writing it), nothing was signed with it: delete the file to have a new one made"
        }
        KeyFile::Configured(_) => "",
    };
    let read = |text: String| -> Result<SigningKey, ServeError> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .map_err(|e| err(format!("{e}{torn}")))?
            .try_into()
            .map_err(|_| err(format!("an Ed25519 secret key is 32 bytes of hex{torn}")))?;
        Ok(SigningKey::from_bytes(&bytes))
    };
    // Only a default key is written by another process, and may be caught half written.
    let found = match file {
        KeyFile::Default(_) => read_whole_key(path),
        KeyFile::Configured(_) => std::fs::read_to_string(path),
    };
    match found {
        Ok(text) => read(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let KeyFile::Configured(_) = file {
                return Err(err(
                    "the settings name this key file and it does not exist: put the key there \
                     (its 32-byte seed as 64 hex characters), or leave the setting out to have \
                     one made in the data folder"
                        .into(),
                ));
            }
            let mut secret = [0u8; 32];
            getrandom::getrandom(&mut secret).map_err(|e| err(e.to_string()))?;
            if let Some(parent) = path.parent() {
                create_dir(parent)?;
            }
            match write_secret(path, &hex::encode(secret)) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "created a signing key");
                    Ok(SigningKey::from_bytes(&secret))
                }
                // Another process of this installation made it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    read(read_whole_key(path).map_err(|e| err(e.to_string()))?)
                }
                Err(e) => Err(err(e.to_string())),
            }
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// The text of the key file at `path`. A file shorter than a key may be one another
/// process is still writing in place (a filesystem without hard links): it is read
/// again for up to two seconds before it is taken as it is (and refused as no key).
fn read_whole_key(path: &Path) -> std::io::Result<String> {
    let mut text = std::fs::read_to_string(path)?;
    for _ in 0..40 {
        if text.trim().len() >= 64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        text = std::fs::read_to_string(path)?;
    }
    Ok(text)
}

/// Writes `text` (mode 0600) to a file of its own beside `path`, then links it there:
/// `path` appears whole or not at all (another process never reads it half written,
/// and a crash leaves no empty key), and `AlreadyExists` where another process's is
/// there first. On a filesystem without hard links (some network and FUSE ones) the
/// file is created in place, still only where none is (readers wait for it whole,
/// [`read_whole_key`]). The folder is synced after, so the key a process went on with
/// is the one found after a power cut.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    // EOPNOTSUPP on Linux, which the standard library leaves uncategorised.
    #[cfg(target_os = "linux")]
    const NOT_SUPPORTED: Option<i32> = Some(95);
    #[cfg(not(target_os = "linux"))]
    const NOT_SUPPORTED: Option<i32> = None;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.new", uuid::Uuid::now_v7().simple()));
    let fresh = PathBuf::from(name);
    let linked = write_new(&fresh, text).and_then(|()| std::fs::hard_link(&fresh, path));
    // The name of its own goes either way; `path` keeps the bytes where linked.
    let _ = std::fs::remove_file(&fresh);
    match linked {
        Err(e)
            if e.kind() == std::io::ErrorKind::Unsupported
                || e.kind() == std::io::ErrorKind::PermissionDenied
                || (NOT_SUPPORTED.is_some() && e.raw_os_error() == NOT_SUPPORTED) =>
        {
            tracing::warn!(path = %path.display(), error = %e, "no hard links here: the key is written in place");
            write_new(path, text)?;
        }
        other => other?,
    }
    // The key is in place: a folder that cannot be synced (some mounts refuse it) is
    // said, not a reason to stop.
    if let Err(e) = sync_folder_of(path) {
        tracing::warn!(path = %path.display(), error = %e, "the key's folder could not be synced");
    }
    Ok(())
}

/// Creates `path` (mode 0600; `AlreadyExists` where it is) with `text`, synced.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Syncs the folder `path` lies in, so that its new name survives a crash.
fn sync_folder_of(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(folder) = path.parent() {
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// Publishes signed camera config, retained, over its own MQTT connection.
pub struct MqttConfigPublisher {
    client: AsyncClient,
}

impl MqttConfigPublisher {
    pub fn connect(
        host: &str,
        port: u16,
        login: Option<BrokerLogin>,
        instance: &str,
        cancel: CancellationToken,
    ) -> Self {
        let mut options = MqttOptions::new(format!("kozomol-config-{instance}"), host, port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(1024 * 1024, 1024 * 1024);
        if let Some(login) = login {
            options.set_credentials(login.username, login.password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    event = eventloop.poll() => if let Err(e) = event {
                        tracing::debug!(error = %e, "config publisher disconnected; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        MqttConfigPublisher { client }
    }
}

#[async_trait]
impl CameraConfigPublisher for MqttConfigPublisher {
    async fn publish_config(
        &self,
        camera: &CameraId,
        signed_config: Vec<u8>,
    ) -> Result<(), String> {
        let topic = topics::topic(camera, TopicKind::Config);
        self.client
            .publish(topic, QoS::AtLeastOnce, true, signed_config)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(camera = %camera, at = %Utc::now(), "camera config published");
        Ok(())
    }
}

/// How long after its writing an audit row is sealed: longer than any transaction of
/// kozomol's lasts, so no row commits under an id already sealed.
const AUDIT_SETTLE: Duration = Duration::from_secs(60);

/// Seals the audit log once a minute until cancelled; a failure is logged and tried
/// again the next minute.
async fn seal_audit_log(store: &dyn kozomol_store::Store, cancel: CancellationToken) {
    loop {
        let settled = chrono::Utc::now()
            - chrono::Duration::from_std(AUDIT_SETTLE).unwrap_or(chrono::Duration::zero());
        loop {
            match store.seal_audit(settled, 100_000).await {
                // At info, with its hash: logs shipped off the machine keep a record
                // of each seal that `audit verify --expect-seal` can hold the log to.
                Ok(Some(seal)) => {
                    tracing::info!(
                        seal = seal.id,
                        up_to = seal.up_to_id,
                        rows = seal.rows,
                        hash = %seal.hash,
                        "audit log sealed"
                    )
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "sealing the audit log failed; trying again in a minute");
                    break;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(AUDIT_SETTLE) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_only_where_no_setting_names_its_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let default = KeyFile::Default(dir.path().join("keys/server.key"));
        let made = load_or_create_key(&default).expect("made on first start");
        let again = load_or_create_key(&default).expect("read on the next");
        assert_eq!(made.to_bytes(), again.to_bytes());

        let named = KeyFile::Configured(dir.path().join("secrets/signing.key"));
        let refused = load_or_create_key(&named).expect_err("a named key that is missing");
        assert!(refused.to_string().contains("does not exist"), "{refused}");
        assert!(!named.path().exists(), "nothing was made in its place");
        std::fs::create_dir_all(dir.path().join("secrets")).expect("folder");
        std::fs::write(named.path(), hex::encode([7u8; 32])).expect("key put in place");
        let read = load_or_create_key(&named).expect("the key put there");
        assert_eq!(read.to_bytes(), [7u8; 32]);
        std::fs::write(named.path(), "not a key").expect("garbage");
        assert!(load_or_create_key(&named).is_err());

        // Processes starting together make one key between them, and read it whole.
        let shared = KeyFile::Default(dir.path().join("shared/server.key"));
        let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_create_key(&shared).map(|k| k.to_bytes())))
                .collect();
            starts
                .into_iter()
                .map(|s| s.join().expect("joins").expect("a key"))
                .collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "one key for all");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("shared"))
            .expect("folder")
            .collect();
        assert_eq!(left.len(), 1, "no file of a start is left beside it");
    }

    /// Where another process writes the key in place (no hard links), a start that
    /// finds it half written waits for the rest.
    #[test]
    fn a_key_still_being_written_is_read_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = KeyFile::Default(dir.path().join("server.key"));
        let whole = hex::encode([9u8; 32]);
        std::fs::write(file.path(), &whole[..10]).expect("a start");
        let key = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                std::fs::write(file.path(), &whole).expect("the rest");
            });
            let key = load_or_create_key(&file).map(|k| k.to_bytes());
            writer.join().expect("joins");
            key
        });
        assert_eq!(key.expect("read whole"), [9u8; 32]);
    }
}
