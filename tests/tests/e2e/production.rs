//! The production split: API, two ingest processes, a recognizer and a fines worker,
//! each its own `kozomol run PART` process, on PostgreSQL and a Mosquitto that refuses
//! anonymous clients, with the stand-in Tunduk as a process of its own. Simulated
//! cameras' violations become issued resolutions; each part answers its probes and
//! counts its own work on `/metrics`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kozomol_tests::split::{Split, SplitOptions};
use kozomol_tests::{metric_value, Simulation};
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
    let mut split = Split::start(SplitOptions::default()).expect("the split starts");

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
