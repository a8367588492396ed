//! `edge-agent`: the kozomol program on camera hardware.

mod settings;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ed25519_dalek::SigningKey;
use kozomol_edge_agent::{Agent, Spool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::settings::{Settings, SettingsFile};

/// kozomol edge agent: signs camera captures and delivers them to ingest over MQTT.
#[derive(Debug, Parser)]
#[command(name = "edge-agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new camera key pair (`camera.key`, mode 0600, and `camera.pub`) and print
    /// the public key to register with kozomol.
    Keygen {
        /// Folder to write the key files to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Run the agent: watch the spool folder, keep the outbox, talk to the broker.
    Run {
        /// The TOML settings file; KOZOMOL_EDGE_BROKER, KOZOMOL_EDGE_DATA_DIR,
        /// KOZOMOL_EDGE_SPOOL_DIR, KOZOMOL_EDGE_KEY_FILE, KOZOMOL_EDGE_CAMERA_ID and
        /// KOZOMOL_EDGE_SERVER_PUBLIC_KEY override it.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Move the envelopes ingest rejected (`rejected/`) back into the outbox, to be sent
    /// again at the agent's next start: once the server mended what refused them (the
    /// device register, an event its database refused). Run it with the agent stopped.
    Requeue {
        /// The agent's TOML settings file (for its data folder).
        #[arg(long, short)]
        config: PathBuf,
        /// Only those whose receipt gave this reason (`register_mismatch`,
        /// `unknown_camera`, `unstorable`, ...).
        #[arg(long)]
        reason: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { out, force } => keygen(&out, force),
        Command::Requeue { config, reason } => {
            let settings = settings(&config)?;
            let moved =
                kozomol_edge_agent::requeue_rejected(&settings.agent.data_dir, reason.as_deref())?;
            println!("{moved} rejected events moved back to the outbox");
            Ok(())
        }
        Command::Run { config } => {
            let telemetry = kozomol_telemetry::install("kozomol-edge-agent", "info")?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let outcome = runtime.block_on(run(&config));
            telemetry.shutdown();
            outcome
        }
    }
}

fn keygen(out: &Path, force: bool) -> anyhow::Result<()> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let key_path = out.join("camera.key");
    let pub_path = out.join("camera.pub");
    if !force && (key_path.exists() || pub_path.exists()) {
        bail!(
            "{} already holds a key; pass --force to replace it",
            out.display()
        );
    }
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret)
        .map_err(|e| anyhow::anyhow!("reading the system's random source: {e}"))?;
    let key = SigningKey::from_bytes(&secret);
    let public_hex = hex::encode(key.verifying_key().as_bytes());
    let _ = fs::remove_file(&key_path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .with_context(|| format!("creating {}", key_path.display()))?;
    writeln!(file, "{}", hex::encode(key.to_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", key_path.display()))?;
    fs::write(&pub_path, format!("{public_hex}\n"))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!("{public_hex}");
    Ok(())
}

/// The settings in `config_path`, with the environment's overrides, checked.
fn settings(config_path: &Path) -> anyhow::Result<Settings> {
    let text = fs::read_to_string(config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    SettingsFile::parse(&text)
        .and_then(|mut file| {
            file.apply_env(|var| std::env::var(var).ok());
            file.validate()
        })
        .map_err(|errors| {
            anyhow::anyhow!(
                "{} is not valid:\n  - {}",
                config_path.display(),
                errors.join("\n  - ")
            )
        })
}

async fn run(config_path: &Path) -> anyhow::Result<()> {
    let settings = settings(config_path)?;
    warn_if_key_is_readable_by_others(&settings.agent_key_file);
    // The agent's own token is cancelled only after its graceful shutdown was tried.
    let stop = CancellationToken::new();
    let agent_cancel = CancellationToken::new();
    tokio::spawn(watch_signals(stop.clone()));
    let spool = Spool::open(&settings.spool_dir, settings.agent.max_outbox_bytes)?;
    let agent = Agent::start(settings.agent, agent_cancel.clone()).await?;
    info!(spool = %settings.spool_dir.display(), "watching the spool");
    spool.run(&agent, settings.spool_poll, stop).await;
    info!("stopping");
    if tokio::time::timeout(Duration::from_secs(10), agent.shutdown())
        .await
        .is_err()
    {
        warn!("graceful shutdown timed out");
    }
    agent_cancel.cancel();
    Ok(())
}

fn warn_if_key_is_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            warn!(key_file = %path.display(), mode = format!("{:o}", mode & 0o777), "the camera key is readable by others; chmod 600 it");
        }
    }
}

/// The first SIGINT or SIGTERM stops gracefully; a second one exits at once.
async fn watch_signals(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot listen for signals");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    info!("signal received; stopping (again to force)");
    stop.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("second signal: exiting now");
    std::process::exit(130);
}
