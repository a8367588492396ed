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

/// One trace a violation across the processes — the simulated camera's capture, then
/// ingest, recognition, approval, the owner lookup with its exchange over the bus, and
/// issuing, each a child of the span before it — and an API request joins its caller's.
fn follow_the_traces(split: &Split, cases: &[Value]) {
    let collector = split.trace_collector.as_ref().expect("a collector");
    let issued: Vec<&Value> = cases.iter().filter(|c| c["state"] == "issued").collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = collector.spans();
        // Each process sends its spans on its own clock: wait for every one needed.
        let traced = |case: &&Value| {
            let id = case["id"].to_string();
            let event_id = case["event_id"].as_str().unwrap_or_default().to_owned();
            let has = |name: &str, key: &str, value: &String| {
                spans
                    .iter()
                    .find(|s| s.name == name && s.attributes.get(key) == Some(value))
            };
            let recognize = has("recognize", "case_id", &id);
            ["approve", "owner_lookup", "issue"]
                .iter()
                .all(|name| has(name, "case_id", &id).is_some())
                && has("capture", "event_id", &event_id).is_some()
                && recognize.is_some_and(|r| spans.iter().any(|s| s.span_id == r.parent_span_id))
        };
        if issued.iter().all(traced) {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "the spans of {:?} did not all arrive: {:?}\n{}",
            issued.iter().map(|c| &c["id"]).collect::<Vec<_>>(),
            spans
                .iter()
                .map(|s| (&s.service, &s.name, &s.attributes))
                .collect::<Vec<_>>(),
            split.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut exchanges = 0;
    for case in issued {
        let id = case["id"].to_string();
        let event_id = case["event_id"].as_str().expect("event id");
        let find = |name: &str, key: &str, value: &str| {
            spans
                .iter()
                .find(|s| {
                    s.name == name && s.attributes.get(key).map(String::as_str) == Some(value)
                })
                .unwrap_or_else(|| panic!("no {name} span for {key} {value}"))
        };
        let capture = find("capture", "event_id", event_id);
        let recognize = find("recognize", "case_id", &id);
        // A resent event is ingested again as a duplicate, in a span of its own.
        let ingest = spans
            .iter()
            .find(|s| s.span_id == recognize.parent_span_id)
            .unwrap_or_else(|| panic!("case {id}: recognition follows no ingest span"));
        assert_eq!(ingest.name, "ingest");
        assert_eq!(
            ingest.attributes.get("event_id").map(String::as_str),
            Some(event_id)
        );
        assert_eq!(
            ingest.attributes.get("outcome").map(String::as_str),
            Some("created")
        );
        let approve = find("approve", "case_id", &id);
        let lookup = find("owner_lookup", "case_id", &id);
        let issue = find("issue", "case_id", &id);
        // A plate asked about recently is answered from the cache, without the bus.
        let exchange = spans
            .iter()
            .find(|s| s.name == "tunduk" && s.parent_span_id == lookup.span_id);
        exchanges += usize::from(exchange.is_some());
        assert_eq!(ingest.attributes.get("case_id"), Some(&id));
        let mut family = vec![
            (ingest, "kozomol-ingest", capture),
            (recognize, "kozomol-recognizer", ingest),
            (approve, "kozomol-fines", ingest),
            (lookup, "kozomol-fines", ingest),
            (issue, "kozomol-fines", ingest),
        ];
        family.extend(exchange.map(|exchange| (exchange, "kozomol-fines", lookup)));
        for (span, service, parent) in family {
            assert_eq!(
                span.trace_id, capture.trace_id,
                "case {id}: {} in another trace",
                span.name
            );
            assert_eq!(
                span.parent_span_id, parent.span_id,
                "case {id}: {}'s parent",
                span.name
            );
            assert_eq!(span.service, service, "case {id}: {}", span.name);
        }
        assert_eq!(capture.service, "kozomol-cli");
        assert_eq!(capture.trace_id.len(), 32, "{capture:?}");
    }
    // Spans only: log lines, which may name a plate or a login, stay in the logs.
    let plates: Vec<&str> = cases.iter().filter_map(|c| c["plate"].as_str()).collect();
    assert!(!plates.is_empty());
    for span in &spans {
        assert_eq!(span.events, 0, "{span:?}");
        for value in span.attributes.values() {
            assert!(!plates.iter().any(|p| value.contains(p)), "{span:?}");
        }
    }
    assert!(exchanges > 0, "no owner lookup went over the bus");

    let (trace, caller) = ("5e1ec7ed0000000000000000c0ffee01", "00000000000c0de1");
    let id = cases[0]["id"].as_i64().expect("case id");
    let answer = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/cases/{id}", split.api().expect("api")))
        .bearer_auth(&split.admin_token)
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .send()
        .expect("GET");
    assert_eq!(answer.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans = collector.spans();
        if let Some(request) = spans.iter().find(|s| s.trace_id == trace) {
            assert_eq!(request.parent_span_id, caller);
            assert_eq!(request.name, "GET /api/v1/cases/{id}");
            assert_eq!(request.service, "kozomol-api");
            assert_eq!(
                request
                    .attributes
                    .get("http.response.status_code")
                    .map(String::as_str),
                Some("200")
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the request's span did not arrive"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

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
        trace_collector: true,
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

    follow_the_traces(&split, &cases);

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
