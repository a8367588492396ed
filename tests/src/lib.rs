//! kozomol-tests: the harness for end-to-end tests that cross crates and processes.
//!
//! It starts the real `kozomol` and `edge-agent` binaries (built by `cargo build
//! --workspace --bins`), and, for fault tests, private Mosquitto brokers and
//! PostgreSQL clusters on free ports, so the machine's shared services are never
//! disturbed. Everything it starts is killed when its handle drops.

pub mod link;
pub mod otlp;
pub mod split;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Runs `start` again, at most three times in all, while it fails because another
/// test's process took a free port before the started one bound it.
pub fn starting_again_on_lost_ports<T>(mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match start() {
            Err(e) if attempt < 3 && e.to_string().contains("Address already in use") => {}
            other => return other,
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port is available")
}

/// The folder holding the workspace's built binaries: `KOZOMOL_BIN_DIR` (a benchmark
/// points it at `target/release`), else the test binary's own profile folder.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KOZOMOL_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/e2e-HASH → target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/PROFILE/deps")
        .to_owned()
}

/// The ONNX Runtime library `scripts/test.sh` fetches; without it a test of the
/// recognizer cannot say anything, so it fails with the way to get it rather than
/// passing.
pub fn onnxruntime() -> String {
    std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| {
        panic!("ORT_DYLIB_PATH is not set: run the tests through scripts/test.sh, or `source scripts/lib.sh && ensure_onnxruntime` first")
    })
}

/// The committed plate models the recognizer loads.
pub fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/kozomol-reader")
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on {addr} after {timeout:?}")
}

/// A child process killed (SIGKILL) on drop, its output kept in a log file.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Process {
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Result<Process> {
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("{name}-{}.log", uuid::Uuid::now_v7().simple()));
        let file = std::fs::File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Process {
            child,
            log,
            name: name.to_owned(),
        })
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for exit and returns the status code.
    pub fn wait(&mut self, timeout: Duration) -> Result<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "{} did not finish within {timeout:?}; log:\n{}",
                    self.name,
                    tail(&self.log_text(), 4000)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn tail(text: &str, chars: usize) -> String {
    let skip = text.chars().count().saturating_sub(chars);
    text.chars().skip(skip).collect()
}

/// What a process that stopped said: its error (the `Error:` paragraph, before any
/// backtrace, which would push it out of a tail) and the log's last lines.
pub fn exit_report(log: &str) -> String {
    let error: String = log
        .lines()
        .skip_while(|line| !line.starts_with("Error:"))
        .take_while(|line| !line.starts_with("Stack backtrace"))
        .take(20)
        .collect::<Vec<_>>()
        .join("\n");
    format!("{error}\n--- last lines ---\n{}", tail(log, 2000))
}

/// `kozomol serve` on free ports with its own data folder.
pub struct Kozomol {
    pub process: Process,
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    pub data_dir: PathBuf,
    pub external_broker: Option<String>,
    pub database_url: Option<String>,
    pub env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Kozomol {
    /// Embedded defaults (SQLite, embedded broker), demo accounts, no simulated cameras.
    pub fn start() -> Result<Kozomol> {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("data");
        let mut k = Kozomol::start_in(&data_dir, None, None)?;
        k._tmp = Some(tmp);
        Ok(k)
    }

    pub fn start_in(
        data_dir: &Path,
        external_broker: Option<String>,
        database_url: Option<String>,
    ) -> Result<Kozomol> {
        Kozomol::start_with_env(data_dir, external_broker, database_url, &[])
    }

    /// Like [`Kozomol::start_in`], with extra environment variables for the server.
    pub fn start_with_env(
        data_dir: &Path,
        external_broker: Option<String>,
        database_url: Option<String>,
        env: &[(&str, &str)],
    ) -> Result<Kozomol> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        starting_again_on_lost_ports(|| {
            Kozomol::start_once(data_dir, &external_broker, &database_url, &env)
        })
    }

    fn start_once(
        data_dir: &Path,
        external_broker: &Option<String>,
        database_url: &Option<String>,
        env: &[(String, String)],
    ) -> Result<Kozomol> {
        let (external_broker, database_url, env) =
            (external_broker.clone(), database_url.clone(), env.to_vec());
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
        let mqtt: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
        let mut k = Kozomol {
            process: Kozomol::spawn(
                data_dir,
                http,
                mqtt,
                external_broker.as_deref(),
                database_url.as_deref(),
                &env,
            )?,
            http,
            mqtt,
            data_dir: data_dir.to_owned(),
            external_broker,
            database_url,
            env,
            _tmp: None,
        };
        k.wait_ready()?;
        Ok(k)
    }

    fn spawn(
        data_dir: &Path,
        http: SocketAddr,
        mqtt: SocketAddr,
        external_broker: Option<&str>,
        database_url: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Process> {
        let mut command = Command::new(bin("kozomol"));
        // The recognizer is off unless a test turns it on: most tests look at cases
        // as ingest leaves them.
        command
            .env("KOZOMOL_RECOGNIZER_ENABLED", "false")
            .env("KOZOMOL_RECOGNIZER_MODELS_DIR", models_dir());
        command.envs(env.iter().map(|(k, v)| (k, v)));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http")
            .arg(http.to_string())
            .arg("--demo")
            .arg("--demo-cameras")
            .arg("0")
            .env("RUST_LOG", "info,rumqttd=warn,rumqttc=warn,sqlx=warn");
        match external_broker {
            Some(b) => command.arg("--external-broker").arg(b),
            None => command.arg("--mqtt").arg(mqtt.to_string()),
        };
        if let Some(url) = database_url {
            command.arg("--database-url").arg(url);
        }
        Process::spawn("kozomol", command, &data_dir.with_extension("logs"))
    }

    pub fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{}/readyz", self.http);
        while Instant::now() < deadline {
            if !self.process.is_running() {
                bail!(
                    "kozomol exited; log:\n{}",
                    exit_report(&self.process.log_text())
                );
            }
            if let Ok(r) = reqwest::blocking::get(&url) {
                if r.status().is_success() && self.data_dir.join("demo-credentials.json").exists() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "kozomol not ready; log:\n{}",
            tail(&self.process.log_text(), 4000)
        )
    }

    /// SIGKILL the server (and its embedded broker).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) -> Result<()> {
        self.process.kill();
        self.process = Kozomol::spawn(
            &self.data_dir,
            self.http,
            self.mqtt,
            self.external_broker.as_deref(),
            self.database_url.as_deref(),
            &self.env,
        )?;
        self.wait_ready()
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn broker(&self) -> String {
        self.external_broker
            .clone()
            .unwrap_or_else(|| self.mqtt.to_string())
    }

    pub fn token(&self, role: &str) -> Result<String> {
        let creds: Value = serde_json::from_str(&std::fs::read_to_string(
            self.data_dir.join("demo-credentials.json"),
        )?)?;
        creds[role]["token"]
            .as_str()
            .map(str::to_owned)
            .context("demo credentials have a token per role")
    }

    pub fn get_json(&self, path: &str, role: &str) -> Result<Value> {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.api()))
            .bearer_auth(self.token(role)?)
            .send()?;
        let status = response.status();
        let body = response.text()?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    pub fn get_bytes(&self, path: &str, role: &str) -> Result<Vec<u8>> {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.api()))
            .bearer_auth(self.token(role)?)
            .send()?;
        if !response.status().is_success() {
            bail!("GET {path}: {}", response.status());
        }
        Ok(response.bytes()?.to_vec())
    }

    /// Every case, following the cursor.
    pub fn all_cases(&self) -> Result<Vec<Value>> {
        all_cases(|path| self.get_json(path, "auditor"))
    }

    /// Runs `kozomol simulate` against this server; returns its JSON report.
    pub fn simulate(&self, cameras: u32, events: u64, rate: f64, extra: &[&str]) -> Result<Value> {
        simulation_report(self.spawn_simulate(cameras, events, rate, extra)?)
    }

    pub fn spawn_simulate(
        &self,
        cameras: u32,
        events: u64,
        rate: f64,
        extra: &[&str],
    ) -> Result<Process> {
        let mut command = simulate_command(
            Simulation {
                cameras,
                events,
                rate,
            },
            &self.broker(),
            &self.api(),
            &self.token("admin")?,
        );
        command.args(extra);
        Process::spawn("simulate", command, &self.data_dir.with_extension("logs"))
    }
}

/// How many simulated cameras send how many events at what rate (all together).
#[derive(Clone, Copy, Debug)]
pub struct Simulation {
    pub cameras: u32,
    pub events: u64,
    pub rate: f64,
}

/// `kozomol simulate` against a broker and an API, registering cameras with `token`.
pub fn simulate_command(sim: Simulation, broker: &str, api: &str, token: &str) -> Command {
    let mut command = Command::new(bin("kozomol"));
    command
        .arg("simulate")
        .args(["--cameras", &sim.cameras.to_string()])
        .args(["--events", &sim.events.to_string()])
        .args(["--rate", &sim.rate.to_string()])
        .args(["--broker", broker])
        .args(["--api", api])
        .arg(format!("--token={token}"))
        .env("RUST_LOG", "warn");
    command
}

/// Waits for a simulation to end; its JSON report, or its log's tail when it failed.
pub fn simulation_report(mut sim: Process) -> Result<Value> {
    let code = sim.wait(Duration::from_secs(900))?;
    let log = sim.log_text();
    if code != 0 {
        bail!("simulate exited {code}; log:\n{}", tail(&log, 4000));
    }
    last_json_line(&log)
}

/// Every case, following the cursor, read with `get_json`.
pub fn all_cases(get_json: impl Fn(&str) -> Result<Value>) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut path = "/api/v1/cases?limit=1000".to_owned();
    loop {
        let page = get_json(&path)?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(c) => path = format!("/api/v1/cases?limit=1000&cursor={c}"),
            None => return Ok(items),
        }
    }
}

/// A series' value on a Prometheus metrics page (0 when absent), the series named
/// with its labels, e.g. `kozomol_stage_items_total{stage="recognition"}`.
pub fn metric_value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// The last line of `log` that parses as a JSON object.
pub fn last_json_line(log: &str) -> Result<Value> {
    BufReader::new(log.as_bytes())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(Value::is_object)
        .last()
        .context("no JSON line in output")
}

/// A private Mosquitto on a free port, persisting to its own folder.
pub struct Mosquitto {
    pub process: Process,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Result<Mosquitto> {
        Mosquitto::start_on(free_port())
    }

    /// One that refuses anonymous clients and knows these users and passwords
    /// (a password file made by `mosquitto_passwd`, as in production).
    pub fn start_with_logins(logins: &[(&str, &str)]) -> Result<Mosquitto> {
        Mosquitto::start_with_rules(logins, None)
    }

    /// As [`Mosquitto::start_with_logins`], with the topic rules of `acl` (a Mosquitto
    /// `acl_file`, e.g. deploy/mosquitto.acl).
    pub fn start_with_rules(logins: &[(&str, &str)], acl: Option<&Path>) -> Result<Mosquitto> {
        let dir = tempfile::tempdir()?;
        if let Some(acl) = acl {
            std::fs::copy(acl, dir.path().join("acl")).context("copy the acl file")?;
        }
        let passwd = dir.path().join("passwd");
        for (i, (user, password)) in logins.iter().enumerate() {
            let mut command = Command::new("mosquitto_passwd");
            if i == 0 {
                command.arg("-c");
            }
            let status = command
                .arg("-b")
                .arg(&passwd)
                .args([user, password])
                .status()
                .context("run mosquitto_passwd")?;
            if !status.success() {
                bail!("mosquitto_passwd failed for {user}: {status}");
            }
        }
        Mosquitto::start_in(dir, free_port())
    }

    /// On a given port (e.g. one a client was already told to use).
    pub fn start_on(port: u16) -> Result<Mosquitto> {
        Mosquitto::start_in(tempfile::tempdir()?, port)
    }

    fn start_in(dir: tempfile::TempDir, port: u16) -> Result<Mosquitto> {
        let mut m = Mosquitto {
            process: Mosquitto::spawn(dir.path(), port)?,
            port,
            dir,
        };
        m.wait()?;
        Ok(m)
    }

    fn spawn(dir: &Path, port: u16) -> Result<Process> {
        let config = dir.join("mosquitto.conf");
        let passwd = dir.join("passwd");
        let mut access = if passwd.exists() {
            format!("allow_anonymous false\npassword_file {}", passwd.display())
        } else {
            "allow_anonymous true".to_owned()
        };
        let acl = dir.join("acl");
        if acl.exists() {
            access.push_str(&format!("\nacl_file {}", acl.display()));
        }
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\n{access}\npersistence true\npersistence_location {}/\nautosave_interval 1\nmax_inflight_messages 1000\nmax_queued_messages 1000000\nmax_queued_bytes 0\nmessage_size_limit 4194304\n",
                dir.display()
            ),
        )?;
        let mut command = Command::new(kozomol_testkit::mosquitto_bin());
        command.arg("-c").arg(&config);
        Process::spawn("mosquitto", command, &dir.join("logs"))
    }

    fn wait(&mut self) -> Result<()> {
        wait_for_port(
            format!("127.0.0.1:{}", self.port).parse()?,
            Duration::from_secs(10),
        )
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    pub fn restart(&mut self) -> Result<()> {
        self.process.kill();
        self.process = Mosquitto::spawn(self.dir.path(), self.port)?;
        self.wait()
    }
}

/// A private PostgreSQL cluster (initdb + pg_ctl as the `postgres` user) on a free port.
pub struct PgCluster {
    pub port: u16,
    pub dir: PathBuf,
    pg_bin: PathBuf,
}

impl PgCluster {
    pub fn start() -> Result<PgCluster> {
        let pg_bin = pg_bin_dir()?;
        let dir =
            std::env::temp_dir().join(format!("kozomol-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        run_as_postgres(&format!("chown postgres {}", dir.display()), true)?;
        let cluster = PgCluster {
            port: free_port(),
            dir,
            pg_bin,
        };
        run_as_postgres(
            &format!(
                "{}/initdb -D {}/data -A trust -U postgres --no-sync >/dev/null",
                cluster.pg_bin.display(),
                cluster.dir.display()
            ),
            false,
        )?;
        cluster.pg_start()?;
        Ok(cluster)
    }

    fn pg_start(&self) -> Result<()> {
        run_as_postgres(
            &format!(
                "{}/pg_ctl -D {dir}/data -l {dir}/log -w -o '-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=on' start >/dev/null",
                self.pg_bin.display(),
                dir = self.dir.display(),
                port = self.port
            ),
            false,
        )
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kills the postmaster with SIGKILL (no shutdown checkpoint).
    pub fn kill(&self) -> Result<()> {
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid"))?;
        let pid = pid
            .lines()
            .next()
            .context("postmaster.pid has a pid")?
            .trim()
            .to_owned();
        Command::new("kill").args(["-9", &pid]).status()?;
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    }

    pub fn restart(&self) -> Result<()> {
        let _ = std::fs::remove_file(self.dir.join("data/postmaster.pid"));
        self.pg_start()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = run_as_postgres(
            &format!(
                "{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
                self.pg_bin.display(),
                self.dir.display()
            ),
            false,
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_bin_dir() -> Result<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().context("no PostgreSQL initdb found")
}

fn run_as_postgres(script: &str, as_root: bool) -> Result<()> {
    let status = if as_root {
        Command::new("sh").arg("-c").arg(script).status()?
    } else {
        Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", script])
            .status()?
    };
    if !status.success() {
        bail!("`{script}` failed: {status}");
    }
    Ok(())
}

/// SHA-256 in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A fresh database on the machine's PostgreSQL (for tests that do not kill it),
/// dropped at the end.
pub struct ScratchDatabase {
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub fn create() -> Result<ScratchDatabase> {
        let base = std::env::var("KOZOMOL_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("kozomol_e2e_{}", uuid::Uuid::now_v7().simple());
        psql(&base, &format!("CREATE DATABASE {name}"))?;
        let (prefix, _) = base
            .rsplit_once('/')
            .context("postgres url names a database")?;
        Ok(ScratchDatabase {
            url: format!("{prefix}/{name}"),
            name,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let base = std::env::var("KOZOMOL_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let _ = psql(
            &base,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// One value a query answers (`psql -At`), as text.
pub fn psql_value(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()?;
    if !out.status.success() {
        bail!("psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()?;
    if !out.status.success() {
        bail!("psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
