//! The production split: API, two ingest processes, a recognizer and a fines worker,
//! each its own `kozomol run PART` process, on PostgreSQL and a Mosquitto that refuses
//! anonymous clients, with the stand-in Tunduk as a process of its own. Simulated
//! cameras' violations become issued resolutions; each part answers its probes and
//! counts its own work on `/metrics`. Evidence lies in an S3-compatible bucket (the
//! stand-in), which every part writes to or reads from.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kozomol_tests::split::{Split, SplitOptions};
use kozomol_tests::{metric_value, sha256_hex, Simulation};
use rumqttc::{ConnectReturnCode, Event, MqttOptions, Packet};
use serde_json::Value;

/// Waits until no case is in a stage the machine works alone.
pub fn settled_cases(split: &Split, expected: usize, timeout: Duration) -> Vec<Value> {
    let automatic = ["received", "recognized", "approved", "owner_found"];
    let deadline = Instant::now() + timeout;
    loop {
        let cases = split.all_cases().expect("cases");
        if cases.len() >= expected
            && cases
                .iter()
                .all(|c| !automatic.contains(&c["state"].as_str().unwrap_or("")))
        {
            return cases;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected} cases, states {:?}\n{}",
            cases.len(),
            cases.iter().map(|c| &c["state"]).collect::<Vec<_>>(),
            split.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn parts_in_separate_processes_turn_violations_into_resolutions() {
    let mut split = Split::start(SplitOptions {
        evidence_bucket: true,
        ..SplitOptions::default()
    })
    .expect("the split starts");

    // The broker refuses a client without a login.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let port = split.mosquitto.port;
    let refused = rt.block_on(async move {
        let options = MqttOptions::new("anonymous-probe", "127.0.0.1", port);
        let (_client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => ack.code,
            Ok(Err(rumqttc::ConnectionError::ConnectionRefused(code))) => code,
            other => panic!("no answer to an anonymous connect: {other:?}"),
        }
    });
    assert_ne!(refused, ConnectReturnCode::Success);

    let events = 6;
    let report = split
        .simulate(
            Simulation {
                cameras: 2,
                events,
                rate: 6.0,
            },
            &["--seed", "20261203"],
        )
        .expect("simulate");
    assert_eq!(report["accepted"], events, "{report}");

    let cases = settled_cases(&split, events as usize, Duration::from_secs(300));
    assert_eq!(cases.len() as u64, events, "one case per event");
    let unique: HashSet<String> = cases.iter().map(|c| c["event_id"].to_string()).collect();
    assert_eq!(unique.len() as u64, events, "no event stored twice");
    let issued = cases.iter().filter(|c| c["state"] == "issued").count();
    assert!(
        issued > 0,
        "no case was issued: {:?}\n{}",
        cases.iter().map(|c| &c["state"]).collect::<Vec<_>>(),
        split.logs()
    );

    // The frames ingest stored, and the plate crops the recognizer cut, come back
    // from the bucket through the API as they were signed; nothing went to a folder.
    for case in &cases {
        let id = case["id"].as_i64().expect("numeric case id");
        let detail = split
            .get_json(&format!("/api/v1/cases/{id}"))
            .expect("case detail");
        let frames = detail["frames"].as_array().expect("stored frames");
        assert!(!frames.is_empty(), "case {id} has frames");
        for (n, frame) in frames.iter().enumerate() {
            let bytes = split
                .get_bytes(&format!("/api/v1/cases/{id}/frames/{n}"))
                .expect("frame bytes");
            assert_eq!(
                Some(sha256_hex(&bytes).as_str()),
                frame["sha256"].as_str(),
                "case {id} frame {n}"
            );
        }
        if case["state"] == "issued" {
            let crop = split
                .get_bytes(&format!("/api/v1/cases/{id}/plate-crop"))
                .expect("plate crop");
            assert_eq!(&crop[..2], &[0xff, 0xd8], "case {id}: the crop is a JPEG");
        }
    }
    let folder = split.dir.path().join("data/evidence");
    let files = std::fs::read_dir(&folder).map_or(0, |entries| entries.count());
    assert_eq!(files, 0, "evidence written to {}", folder.display());

    // Every part logs JSON lines, and each case's recognition and resolution name it.
    let mut named = HashSet::new();
    for part in &split.parts {
        for line in part
            .process
            .log_text()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{}: a log line that is not JSON ({e}): {line}", part.name)
            });
            assert!(
                value["timestamp"].is_string() && value["level"].is_string(),
                "{line}"
            );
            let message = value["message"].as_str().unwrap_or_default();
            if ["recognition job done", "resolution issued"].contains(&message) {
                let case_id = value["case_id"].as_str().expect("case_id").to_owned();
                named.insert((message.to_owned(), case_id));
            }
        }
    }
    for case in &cases {
        let id = case["id"].to_string();
        assert!(
            named.contains(&("recognition job done".to_owned(), id.clone())),
            "no recognition line names case {id}"
        );
        if case["state"] == "issued" {
            assert!(
                named.contains(&("resolution issued".to_owned(), id.clone())),
                "no issuing line names case {id}"
            );
        }
    }

    // Each process counts its own share, and they add up.
    let ingested: f64 = ["ingest-a", "ingest-b"]
        .iter()
        .map(|name| {
            metric_value(
                &split.metrics(name).expect("ingest metrics"),
                "kozomol_ingest_accepted_total",
            )
        })
        .sum();
    assert_eq!(ingested, events as f64, "the two ingest processes took all");
    let recognizer = split.metrics("recognizer").expect("recognizer metrics");
    assert_eq!(
        metric_value(
            &recognizer,
            "kozomol_stage_items_total{stage=\"recognition\"}"
        ),
        events as f64,
        "{recognizer}"
    );
    assert_eq!(
        metric_value(
            &recognizer,
            "kozomol_stage_pass_seconds_count{stage=\"recognition\"}"
        ),
        events as f64
    );
    let fines = split.metrics("fines").expect("fines metrics");
    // Issuing counts the cases it handled: those it issued and those it set aside.
    let handled = metric_value(&fines, "kozomol_stage_items_total{stage=\"issuing\"}");
    assert!(
        handled >= issued as f64 && handled <= events as f64,
        "{handled} handled, {issued} issued\n{fines}"
    );
    assert!(
        metric_value(&fines, "kozomol_stage_items_total{stage=\"owner_lookup\"}") >= issued as f64
    );
    // The queues, read from the shared database by any part.
    assert_eq!(
        metric_value(&fines, "kozomol_cases_waiting{state=\"received\"}"),
        0.0
    );
    assert!(
        !fines.contains("kozomol_http_responses_total"),
        "a worker serves no API"
    );
    // A worker's listener serves its probes and nothing else.
    let http = split.part("fines").expect("fines").http;
    let cases_there = reqwest::blocking::get(format!("http://{http}/api/v1/cases")).expect("get");
    assert_eq!(cases_there.status(), 404);
}
