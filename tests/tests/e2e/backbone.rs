//! Simulated cameras → MQTT → ingest → case store, through the real `kozomol` binary.

use std::collections::HashSet;

use kozomol_tests::{sha256_hex, Kozomol};

/// Every case listed has exactly the frames its signed event lists, and the API
/// serves bytes that hash to them.
pub fn assert_cases_with_frames(server: &Kozomol, expected: usize) {
    let cases = server.all_cases().expect("list cases");
    assert_eq!(cases.len(), expected, "case count");
    let events: HashSet<(String, String)> = cases
        .iter()
        .map(|c| {
            (
                c["camera_id"].as_str().unwrap_or_default().to_owned(),
                c["event_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(events.len(), expected, "no event stored twice");
    let mut checked_frames = HashSet::new();
    for case in &cases {
        let id = case["id"].as_i64().expect("numeric case id");
        let detail = server
            .get_json(&format!("/api/v1/cases/{id}"), "reviewer")
            .expect("case detail");
        let listed = detail["event"]["frames"]
            .as_array()
            .expect("event frames")
            .clone();
        let stored = detail["frames"].as_array().expect("stored frames").clone();
        assert_eq!(listed.len(), stored.len(), "case {id} frame count");
        for (n, (l, s)) in listed.iter().zip(&stored).enumerate() {
            assert_eq!(l["sha256"], s["sha256"], "case {id} frame {n} hash");
            let sha = s["sha256"].as_str().expect("hex hash").to_owned();
            // Frames are content-addressed; fetch each distinct one once, plus the first
            // case's frames in full.
            if checked_frames.insert(sha.clone()) || id == cases[0]["id"].as_i64().unwrap_or(0) {
                let bytes = server
                    .get_bytes(&format!("/api/v1/cases/{id}/frames/{n}"), "reviewer")
                    .expect("frame bytes");
                assert_eq!(sha256_hex(&bytes), sha, "case {id} frame {n} bytes");
                assert_eq!(&bytes[..2], &[0xff, 0xd8], "a JPEG");
            }
        }
    }
}

#[test]
fn thousand_events_from_ten_cameras_become_exactly_thousand_cases() {
    let server = Kozomol::start().expect("kozomol starts");
    let report = server.simulate(10, 1000, 400.0, &[]).expect("simulate");
    assert_eq!(report["submitted"], 1000, "{report}");
    assert_eq!(report["accepted"], 1000, "{report}");
    assert_cases_with_frames(&server, 1000);
    let cameras = server
        .get_json("/api/v1/cameras", "auditor")
        .expect("cameras");
    let cameras = cameras
        .as_array()
        .cloned()
        .or_else(|| cameras["items"].as_array().cloned())
        .expect("camera list");
    assert_eq!(cameras.len(), 10);
    assert!(
        cameras.iter().all(|c| !c["last_seen"].is_null()),
        "every camera seen"
    );
}
