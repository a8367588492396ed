//! kozomol as production runs it: each part its own process (`kozomol run PART`), on
//! one PostgreSQL database and one Mosquitto that wants logins, with the stand-in
//! Tunduk security server as its own process too, so a test can kill, slow or restart
//! any of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kozomol_testkit::s3::S3StandIn;
use serde_json::Value;

use crate::otlp::TraceCollector;
use crate::{
    bin, free_port, last_json_line, models_dir, onnxruntime, simulate_command, simulation_report,
    starting_again_on_lost_ports, tail, Mosquitto, PgCluster, Process, ScratchDatabase, Simulation,
};

/// The broker users: kozomol's parts, and the simulated cameras.
const KOZOMOL_USER: (&str, &str) = ("kozomol", "parts-secret");
const CAMERAS_USER: (&str, &str) = ("cameras", "cameras-secret");

/// One running part.
pub struct PartProcess {
    /// Unique in the split, e.g. `ingest-b`.
    pub name: String,
    /// What `kozomol run` runs: api, ingest, recognizer or fines.
    pub part: String,
    /// Its health, readiness and metrics (the API's whole HTTP for `api`).
    pub http: SocketAddr,
    pub process: Process,
    env: Vec<(String, String)>,
}

pub struct Split {
    pub mosquitto: Mosquitto,
    pub db: SplitDatabase,
    pub bus: Process,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub parts: Vec<PartProcess>,
    pub admin_token: String,
    /// The S3 stand-in holding the evidence, where the options asked for one.
    pub evidence_bucket: Option<S3StandIn>,
    /// The collector the parts send their spans to, where the options asked for one.
    pub trace_collector: Option<TraceCollector>,
}

/// The database the parts share.
pub enum SplitDatabase {
    /// A fresh database on the machine's PostgreSQL.
    Scratch(ScratchDatabase),
    /// A cluster of the test's own, which it may kill and restart.
    Private(PgCluster),
}

impl SplitDatabase {
    pub fn url(&self) -> String {
        match self {
            SplitDatabase::Scratch(db) => db.url.clone(),
            SplitDatabase::Private(cluster) => cluster.url(),
        }
    }

    /// The private cluster, for a test that kills it.
    pub fn cluster(&self) -> Result<&PgCluster> {
        match self {
            SplitDatabase::Private(cluster) => Ok(cluster),
            SplitDatabase::Scratch(_) => bail!("the split runs on a scratch database"),
        }
    }
}

/// What the split runs on.
#[derive(Clone, Debug, Default)]
pub struct SplitOptions {
    pub bus: BusFaults,
    /// A PostgreSQL cluster of its own instead of a scratch database.
    pub private_postgres: bool,
    /// Evidence somewhere else than the data folder (a small file system, say).
    pub evidence_dir: Option<PathBuf>,
    /// ONNX Runtime threads per recognizer model (0: one).
    pub recognizer_threads: u32,
    /// Evidence in an S3-compatible bucket (the stand-in) instead of a folder.
    pub evidence_bucket: bool,
    /// Every part and the simulated cameras export their spans to a stand-in collector.
    pub trace_collector: bool,
}

/// How the stand-in bus behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct BusFaults {
    pub delay_ms: u64,
    /// Every N-th request fails with HTTP 500 (0: none).
    pub fail_every: usize,
}

impl Split {
    /// The infrastructure and the first administrator; no part runs yet.
    pub fn prepare(options: SplitOptions) -> Result<Split> {
        let mosquitto = Mosquitto::start_with_logins(&[KOZOMOL_USER, CAMERAS_USER])?;
        let db = if options.private_postgres {
            SplitDatabase::Private(PgCluster::start()?)
        } else {
            SplitDatabase::Scratch(ScratchDatabase::create()?)
        };
        let dir = tempfile::tempdir()?;
        let bus = start_bus(&dir.path().join("logs"), options.bus)?;
        let bus_line = wait_for_json_line(&bus, Duration::from_secs(30))?;
        let url = bus_line["url"].as_str().context("bus url")?;
        let client = bus_line["client"].as_str().context("bus client")?;
        let evidence_bucket = if options.evidence_bucket {
            Some(S3StandIn::start("kozomol-evidence")?)
        } else {
            None
        };
        let bucket_table = evidence_bucket.as_ref().map_or(String::new(), |s3| {
            format!(
                "\n[evidence_bucket]\nendpoint = \"{}\"\nbucket = \"{}\"\nprefix = \"city/\"\naccess_key_id = \"{}\"\n",
                s3.endpoint(),
                s3.bucket,
                s3.access_key_id
            )
        });
        let config = dir.path().join("kozomol.toml");
        std::fs::write(
            &config,
            format!(
                r#"data_dir = "{data}"
database_url = "{db}"
evidence_dir = "{evidence}"
public_base_url = "http://127.0.0.1"

[mqtt]
broker = "{broker}"
embedded = false
username = "{user}"

[ingest]
shared_subscription = true

[recognizer]
models_dir = "{models}"
onnxruntime = "{ort}"
threads = {threads}
# A killed recognizer's cases come back after the lease: short, so the fault suite
# does not wait minutes for them (a batch of two takes about 2.5 s here).
batch = 2
lease_s = 15

[fines]
idle_poll_ms = 200
lease_s = 30

[tunduk]
security_server_url = "{url}"
client = "{client}"
{bucket_table}"#,
                data = dir.path().join("data").display(),
                db = db.url(),
                evidence = options
                    .evidence_dir
                    .unwrap_or_else(|| dir.path().join("data/evidence"))
                    .display(),
                broker = mosquitto.addr(),
                user = KOZOMOL_USER.0,
                models = models_dir().display(),
                ort = onnxruntime(),
                threads = options.recognizer_threads.max(1),
            ),
        )?;
        let mut admin = Command::new(bin("kozomol"));
        admin
            .args(["admin", "create", "--login", "chief", "--config"])
            .arg(&config);
        let out = admin.output().context("kozomol admin create")?;
        if !out.status.success() {
            bail!("admin create: {}", String::from_utf8_lossy(&out.stderr));
        }
        let account: Value = serde_json::from_slice(&out.stdout).context("admin JSON")?;
        let admin_token = account["token"].as_str().context("token")?.to_owned();
        Ok(Split {
            mosquitto,
            db,
            bus,
            dir,
            config,
            parts: Vec::new(),
            admin_token,
            evidence_bucket,
            trace_collector: options
                .trace_collector
                .then(TraceCollector::start)
                .transpose()?,
        })
    }

    /// The infrastructure and every part: the API, two ingest processes, a recognizer
    /// and a fines worker.
    pub fn start(options: SplitOptions) -> Result<Split> {
        let mut split = Split::prepare(options)?;
        // The API first: the first process makes the server's keys in the shared folder.
        split.start_part("api", "api", &[])?;
        for name in ["ingest-a", "ingest-b"] {
            split.start_part(name, "ingest", &[])?;
        }
        split.start_part("recognizer", "recognizer", &[])?;
        split.start_part("fines", "fines", &[])?;
        Ok(split)
    }

    /// Starts `kozomol run PART` as `name` and waits until it is ready.
    pub fn start_part(&mut self, name: &str, part: &str, env: &[(&str, &str)]) -> Result<()> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let started = starting_again_on_lost_ports(|| {
            let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
            let process = self.spawn_part(name, part, http, &env)?;
            let mut p = PartProcess {
                name: name.to_owned(),
                part: part.to_owned(),
                http,
                process,
                env: env.clone(),
            };
            wait_ready(&mut p).map(|()| p)
        })?;
        self.parts.retain(|q| q.name != name);
        self.parts.push(started);
        Ok(())
    }

    fn spawn_part(
        &self,
        name: &str,
        part: &str,
        http: SocketAddr,
        env: &[(String, String)],
    ) -> Result<Process> {
        let mut command = Command::new(bin("kozomol"));
        command
            .args(["run", part, "--config"])
            .arg(&self.config)
            .env("KOZOMOL_HTTP_LISTEN", http.to_string())
            .env("KOZOMOL_MQTT_PASSWORD", KOZOMOL_USER.1)
            .env("KOZOMOL_INGEST_CLIENT_ID", name)
            .env(
                "KOZOMOL_EVIDENCE_SECRET_ACCESS_KEY",
                self.evidence_bucket
                    .as_ref()
                    .map_or("", |s3| s3.secret_access_key.as_str()),
            )
            .env("RUST_LOG", "info,rumqttc=warn,sqlx=warn,ort=warn")
            // As a log collector would take them.
            .env("KOZOMOL_LOG_FORMAT", "json")
            .envs(self.trace_collector.iter().flat_map(TraceCollector::env))
            .envs(env.iter().map(|(k, v)| (k, v)));
        Process::spawn(name, command, &self.dir.path().join("logs"))
    }

    pub fn part(&mut self, name: &str) -> Result<&mut PartProcess> {
        self.parts
            .iter_mut()
            .find(|p| p.name == name)
            .with_context(|| format!("no part named {name}"))
    }

    /// SIGKILL: no graceful stop.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        self.part(name)?.process.kill();
        Ok(())
    }

    /// Starts a killed part again, on the same settings.
    pub fn restart(&mut self, name: &str) -> Result<()> {
        let (part, env) = {
            let p = self.part(name)?;
            p.process.kill();
            (p.part.clone(), p.env.clone())
        };
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.start_part(name, &part, &env)
    }

    pub fn api(&self) -> Result<String> {
        let api = self
            .parts
            .iter()
            .find(|p| p.part == "api")
            .context("no api part")?;
        Ok(format!("http://{}", api.http))
    }

    pub fn get_json(&self, path: &str) -> Result<Value> {
        Ok(self.get(path)?.json()?)
    }

    /// GET bytes from the API as the administrator.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        Ok(self.get(path)?.bytes()?.to_vec())
    }

    fn get(&self, path: &str) -> Result<reqwest::blocking::Response> {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.api()?))
            .bearer_auth(&self.admin_token)
            .send()?;
        if !response.status().is_success() {
            bail!("GET {path}: {}", response.status());
        }
        Ok(response)
    }

    /// `/metrics` of one part.
    pub fn metrics(&mut self, name: &str) -> Result<String> {
        let http = self.part(name)?.http;
        Ok(reqwest::blocking::get(format!("http://{http}/metrics"))?.text()?)
    }

    /// Every case, following the cursor.
    pub fn all_cases(&self) -> Result<Vec<Value>> {
        crate::all_cases(|path| self.get_json(path))
    }

    /// `kozomol simulate` against the split, its cameras logging in to the broker.
    pub fn spawn_simulate(&self, sim: Simulation, extra: &[&str]) -> Result<Process> {
        let mut command =
            simulate_command(sim, &self.mosquitto.addr(), &self.api()?, &self.admin_token);
        command
            .args(["--broker-username", CAMERAS_USER.0])
            .env("KOZOMOL_SIMULATE_BROKER_PASSWORD", CAMERAS_USER.1)
            .args(extra);
        if let Some(collector) = &self.trace_collector {
            // The cameras' capture spans are info-level.
            command
                .envs(collector.env())
                .env("RUST_LOG", "warn,kozomol_edge_agent=info");
        }
        Process::spawn("simulate", command, &self.dir.path().join("logs"))
    }

    /// Runs the simulation to its end; its JSON report.
    pub fn simulate(&self, sim: Simulation, extra: &[&str]) -> Result<Value> {
        simulation_report(self.spawn_simulate(sim, extra)?)
    }

    /// Every part's log tail, for a failure message.
    pub fn logs(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("--- {}:\n{}", p.name, tail(&p.process.log_text(), 1500)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn start_bus(log_dir: &std::path::Path, faults: BusFaults) -> Result<Process> {
    let mut command = Command::new(bin("kozomol"));
    command
        .args(["standin", "tunduk"])
        .args(["--delay-ms", &faults.delay_ms.to_string()])
        .args(["--fail-every", &faults.fail_every.to_string()])
        .env("RUST_LOG", "warn");
    Process::spawn("tunduk-standin", command, log_dir)
}

fn wait_for_json_line(process: &Process, timeout: Duration) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(line) = last_json_line(&process.log_text()) {
            return Ok(line);
        }
        if Instant::now() > deadline {
            bail!(
                "{} printed no JSON line: {}",
                process.name,
                process.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_ready(p: &mut PartProcess) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://{}/readyz", p.http);
    loop {
        if !p.process.is_running() {
            bail!(
                "{} stopped at start: {}",
                p.name,
                crate::exit_report(&p.process.log_text())
            );
        }
        if let Ok(r) = reqwest::blocking::get(&url) {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} not ready in 60 s: {}",
                p.name,
                tail(&p.process.log_text(), 3000)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
