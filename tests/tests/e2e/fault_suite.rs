//! The fault suite on the production split (every part its own process, PostgreSQL,
//! a Mosquitto that wants logins, the stand-in Tunduk): while simulated cameras
//! stream, a process of each kind is killed, the database and the broker restart, the
//! bus answers slowly and with errors, the evidence disk fills up. Afterwards every
//! event is one case with its frames, every case has left the automatic stages, and
//! no case went through a stage twice.
//!
//! `KOZOMOL_FAULT_EVENTS` sets the stream's length: CI runs a short one, the full suite
//! (`scripts/fault-suite.sh`, docs/performance.md) 10,000 events.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kozomol_tests::split::{BusFaults, Split, SplitOptions};
use kozomol_tests::{psql_value, sha256_hex, simulation_report, Process, Simulation};

use kozomol_tests::metric_value;

use crate::production::settled_cases;

/// Events per stream: `KOZOMOL_FAULT_EVENTS`, else a CI-sized 60 (every case is
/// recognised, at about a second each on 2 cores).
fn events() -> u64 {
    std::env::var("KOZOMOL_FAULT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

/// Events per second: the stream lasts about 10 s in CI and 100 s in the full suite.
fn rate(events: u64) -> f64 {
    (events as f64 / 10.0).clamp(10.0, 100.0)
}

/// A split with every part running.
fn running_split(options: SplitOptions) -> Split {
    Split::start(options).expect("the split starts")
}

fn stream(split: &Split, events: u64) -> Process {
    stream_seeded(split, events, "20261205")
}

fn stream_seeded(split: &Split, events: u64, seed: &str) -> Process {
    split
        .spawn_simulate(
            Simulation {
                cameras: 10,
                events,
                rate: rate(events),
            },
            &["--small-frames", "--seed", seed],
        )
        .expect("simulate")
}

/// Waits until the database holds at least `n` cases.
fn wait_for_cases(split: &Split, n: u64) {
    wait_for_count(split, "SELECT count(*) FROM cases", n);
}

/// Waits until `count_sql` counts at least `n`.
fn wait_for_count(split: &Split, count_sql: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let url = split.db.url();
    loop {
        let count: u64 = psql_value(&url, count_sql)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{count_sql}`: {count} of {n}\n{}",
            split.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Nothing lost, nothing done twice: the stream `sim` of `events` events, after
/// `earlier` cases from streams before it.
fn assert_every_event_once(split: &mut Split, sim: Process, events: u64, earlier: u64) {
    let started = Instant::now();
    let report = simulation_report(sim).expect("the simulation ends");
    assert_eq!(report["submitted"], events, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");

    // The recognizer reads a small-frame case in about a third of a second on 2 cores.
    let timeout = Duration::from_secs(120 + events / 2);
    let total = earlier + events;
    let cases = settled_cases(split, total as usize, timeout);
    // The figures docs/performance.md quotes for the suite.
    let recognizer = split.metrics("recognizer").unwrap_or_default();
    let read = |series: &str| metric_value(&recognizer, series);
    eprintln!(
        "fault suite: {events} events settled {:.0} s after the stream ended; the recognizer \
         process read {} cases at {:.0} ms each",
        started.elapsed().as_secs_f64(),
        read("kozomol_stage_items_total{stage=\"recognition\"}"),
        1000.0 * read("kozomol_stage_pass_seconds_sum{stage=\"recognition\"}")
            / read("kozomol_stage_pass_seconds_count{stage=\"recognition\"}").max(1.0)
    );
    assert_eq!(cases.len() as u64, total, "one case per event");
    let unique: HashSet<(String, String)> = cases
        .iter()
        .map(|c| (c["camera_id"].to_string(), c["event_id"].to_string()))
        .collect();
    assert_eq!(unique.len() as u64, total, "no event stored twice");

    let url = split.db.url();
    let twice = psql_value(
        &url,
        "SELECT count(*) FROM (SELECT case_id, to_state FROM audit_log \
         WHERE to_state IN ('recognized', 'needs_review', 'approved', 'owner_found', 'issued') \
         GROUP BY case_id, to_state HAVING count(*) > 1) AS repeated",
    )
    .expect("audit query");
    assert_eq!(twice, "0", "cases that entered a stage twice");
    let read_twice = psql_value(
        &url,
        "SELECT count(*) FROM (SELECT case_id FROM audit_log \
         WHERE action = 'case.recognition_completed' GROUP BY case_id HAVING count(*) > 1) AS r",
    )
    .expect("audit query");
    assert_eq!(read_twice, "0", "cases recognised twice");
    let unissued = psql_value(
        &url,
        "SELECT count(*) FROM cases c WHERE c.state = 'issued' \
         AND NOT EXISTS (SELECT 1 FROM resolutions r WHERE r.case_id = c.id)",
    )
    .expect("resolution query");
    assert_eq!(unissued, "0", "issued cases without their resolution");
    let issued: u64 = psql_value(&url, "SELECT count(*) FROM resolutions")
        .expect("resolutions")
        .parse()
        .expect("count");
    assert!(issued > 0, "no resolution issued\n{}", split.logs());

    // Every frame is stored and serves the bytes its event signed.
    for case in &cases {
        let id = case["id"].as_i64().expect("id");
        let detail = split
            .get_json(&format!("/api/v1/cases/{id}"))
            .expect("case detail");
        let listed = detail["event"]["frames"].as_array().expect("event frames");
        let stored = detail["frames"].as_array().expect("stored frames");
        assert_eq!(listed.len(), stored.len(), "case {id} frames");
        for (n, (l, s)) in listed.iter().zip(stored).enumerate() {
            assert_eq!(l["sha256"], s["sha256"], "case {id} frame {n}");
            let bytes = split
                .get_bytes(&format!("/api/v1/cases/{id}/frames/{n}"))
                .expect("frame bytes");
            assert_eq!(Some(sha256_hex(&bytes).as_str()), s["sha256"].as_str());
        }
    }
}

#[test]
fn a_process_of_each_kind_killed_mid_stream() {
    let mut split = running_split(SplitOptions::default());
    let events = events();
    let sim = stream(&split, events);
    let read = "SELECT count(*) FROM cases WHERE state <> 'received'";
    // Each part is killed while it has work in hand, and brought back a second later:
    // the ingest processes while the stream comes in, the recognizer and the API while
    // cases are being read, the fines worker once it has issued.
    let kills: [(&str, &str, u64); 5] = [
        ("ingest-a", "SELECT count(*) FROM cases", events / 6),
        ("ingest-b", "SELECT count(*) FROM cases", events / 2),
        ("recognizer", read, events / 5),
        ("fines", "SELECT count(*) FROM resolutions", 1),
        ("api", read, events * 2 / 5),
    ];
    for (name, progress, at) in kills {
        wait_for_count(&split, progress, at);
        split.kill(name).expect("kill");
        std::thread::sleep(Duration::from_secs(1));
        split.restart(name).expect("restart");
    }
    assert_every_event_once(&mut split, sim, events, 0);
}

#[test]
fn postgresql_restarted_mid_stream() {
    let mut split = running_split(SplitOptions {
        private_postgres: true,
        ..SplitOptions::default()
    });
    let events = events();
    let sim = stream(&split, events);
    wait_for_cases(&split, events / 3);
    let cluster = split.db.cluster().expect("private cluster");
    cluster.kill().expect("kill postgres");
    std::thread::sleep(Duration::from_secs(2));
    cluster.restart().expect("postgres restarts");
    assert_every_event_once(&mut split, sim, events, 0);
}

#[test]
fn broker_restarted_mid_stream() {
    let mut split = running_split(SplitOptions::default());
    let events = events();
    let sim = stream(&split, events);
    wait_for_cases(&split, events / 3);
    split.mosquitto.kill();
    // The ingest processes say they lost the broker (not ready, gauge 0), and say
    // when they have it back.
    for name in ["ingest-a", "ingest-b"] {
        wait_for_readiness(&mut split, name, false);
    }
    split.mosquitto.restart().expect("mosquitto restarts");
    for name in ["ingest-a", "ingest-b"] {
        wait_for_readiness(&mut split, name, true);
        let metrics = split.metrics(name).expect("metrics");
        assert_eq!(
            metric_value(&metrics, "kozomol_ingest_broker_connected"),
            1.0
        );
    }
    assert_every_event_once(&mut split, sim, events, 0);
}

#[test]
fn the_bus_answers_slowly_and_with_errors() {
    let mut split = running_split(SplitOptions {
        bus: BusFaults {
            delay_ms: 200,
            fail_every: 3,
        },
        ..SplitOptions::default()
    });
    let events = events().min(60);
    let sim = stream(&split, events);
    assert_every_event_once(&mut split, sim, events, 0);
    // The lookups waited on the slow bus (plates met before come from the cache).
    let fines = split.metrics("fines").expect("metrics");
    let seconds = metric_value(
        &fines,
        "kozomol_stage_pass_seconds_sum{stage=\"owner_lookup\"}",
    );
    assert!(seconds >= 0.2, "{seconds} s of owner lookups\n{fines}");
}

/// A small file system of the test's own (tmpfs), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount a tmpfs (the fault suite runs as root)"
        );
        SmallDisk { dir }
    }

    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn the_evidence_disk_fills_up() {
    // Half a megabyte: full after a few dozen events' frames and plate crops.
    let disk = SmallDisk::mount("512k");
    let mut split = running_split(SplitOptions {
        evidence_dir: Some(disk.dir.path().join("evidence")),
        ..SplitOptions::default()
    });
    let events = events();
    let sim = stream(&split, events);
    // Ingest says why it cannot commit, and keeps the messages unacknowledged.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !["ingest-a", "ingest-b"].iter().any(|name| {
        split
            .part(name)
            .map(|p| p.process.log_text().contains("No space left on device"))
            .unwrap_or(false)
    }) {
        assert!(
            Instant::now() < deadline,
            "no disk-full error\n{}",
            split.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // No case was committed without its frames: each one listed serves them.
    let partial = psql_value(
        &split.db.url(),
        "SELECT count(*) FROM cases c WHERE NOT EXISTS \
         (SELECT 1 FROM case_frames f WHERE f.case_id = c.id)",
    )
    .expect("query");
    assert_eq!(partial, "0", "cases without frames");
    std::thread::sleep(Duration::from_secs(2));
    // Room for the whole stream: about 60 KB of frames and crops an event, twice over.
    disk.grow(&format!("{}m", (events * 128 / 1024).max(256)));
    assert_every_event_once(&mut split, sim, events, 0);
}

/// Backup and restore as docs/operations.md says: a dump of the database, then a copy
/// of the evidence folder; both lost; both restored. Every case comes back with its
/// evidence and an unbroken audit chain, and the parts go on with new events.
#[test]
fn a_backup_restored_after_losing_database_and_evidence() {
    let mut split = running_split(SplitOptions::default());
    let events = events();
    let sim = stream(&split, events);
    assert_every_event_once(&mut split, sim, events, 0);
    let before = split.all_cases().expect("cases");

    let backup = tempfile::tempdir().expect("backup folder");
    let url = split.db.url();
    let evidence = split.dir.path().join("data/evidence");
    run_ok(
        std::process::Command::new("pg_dump")
            .args(["-Fc", "-f"])
            .arg(backup.path().join("kozomol.dump"))
            .arg(&url),
    );
    copy_folder(&evidence, &backup.path().join("evidence"));

    // Both lost, with every part stopped.
    let names: Vec<String> = split.parts.iter().map(|p| p.name.clone()).collect();
    for name in &names {
        split.kill(name).expect("kill");
    }
    psql_value(&url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public").expect("drop");
    std::fs::remove_dir_all(&evidence).expect("evidence removed");

    run_ok(
        std::process::Command::new("pg_restore")
            .args(["--no-owner", "--exit-on-error", "-d"])
            .arg(&url)
            .arg(backup.path().join("kozomol.dump")),
    );
    copy_folder(&backup.path().join("evidence"), &evidence);
    for name in &names {
        split.restart(name).expect("restart");
    }

    // Every case as it was, its frames served from the restored evidence (checked by
    // the stream below), the audit chain unbroken.
    let after = split.all_cases().expect("cases");
    let key = |cases: &[serde_json::Value]| -> Vec<(String, String)> {
        cases
            .iter()
            .map(|c| (c["id"].to_string(), c["state"].to_string()))
            .collect()
    };
    assert_eq!(
        key(&after),
        key(&before),
        "the cases as they were backed up"
    );
    let verify = std::process::Command::new(kozomol_tests::bin("kozomol"))
        .args(["audit", "verify", "--database-url", &url])
        .output()
        .expect("audit verify");
    assert!(
        verify.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // And work goes on: a new stream is taken, read and issued next to the old cases.
    let sim = stream_seeded(&split, events, "20261206");
    assert_every_event_once(&mut split, sim, events, events);
}

/// Waits until the part's `/readyz` answers 200 (`ready`) or 503 (not).
fn wait_for_readiness(split: &mut Split, name: &str, ready: bool) {
    let http = split.part(name).expect("part").http;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = reqwest::blocking::get(format!("http://{http}/readyz"))
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if (status == 200) == ready && status != 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: /readyz {status}, waiting for ready = {ready}\n{}",
            split.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_ok(command: &mut std::process::Command) {
    let out = command.output().expect("command runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_folder(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}
