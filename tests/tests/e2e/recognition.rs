//! Simulated cameras → ingest → recognizer, through the real `kozomol` binary: the
//! rendered plates come back read, and the camera's read agrees.

use std::time::{Duration, Instant};

use kozomol_tests::{onnxruntime, Kozomol};

#[test]
fn simulated_plates_are_read_and_agree_with_the_camera() {
    let ort = onnxruntime();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = Kozomol::start_with_env(
        &tmp.path().join("data"),
        None,
        None,
        &[
            ("KOZOMOL_RECOGNIZER_ENABLED", "true"),
            ("ORT_DYLIB_PATH", &ort),
        ],
    )
    .expect("kozomol starts with the recognizer");
    let events = 12;
    // The same plates every run, so a misread seen in CI is seen again at home:
    // `kozomol simulate --seed 20261203` replays them.
    let report = server
        .simulate(3, events, 6.0, &["--seed", "20261203"])
        .expect("simulate");
    assert_eq!(report["accepted"], events, "{report}");

    // Every case leaves `received`.
    let deadline = Instant::now() + Duration::from_secs(300);
    let cases = loop {
        let cases = server.all_cases().expect("cases");
        if cases.iter().all(|c| c["state"] != "received") {
            break cases;
        }
        assert!(
            Instant::now() < deadline,
            "cases still waiting for the recognizer: {:?}",
            cases.iter().filter(|c| c["state"] == "received").count()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(cases.len() as u64, events);

    let mut exact = 0;
    let mut misreads = Vec::new();
    for case in &cases {
        let id = case["id"].as_i64().expect("id");
        let detail = server
            .get_json(&format!("/api/v1/cases/{id}"), "reviewer")
            .expect("case detail");
        let recognition = &detail["recognition"];
        let camera = detail["event"]["plate_read"]["text"]
            .as_str()
            .expect("camera read");
        let ours = recognition["plate"]["text"].as_str().unwrap_or_default();
        if ours == camera {
            exact += 1;
            assert_eq!(recognition["agreement"], true, "case {id}: {recognition}");
            assert_eq!(recognition["camera_read"]["text"], camera);
        } else {
            misreads.push(format!(
                "{camera} read as {ours:?} ({})",
                recognition["candidates"]
            ));
            assert_eq!(recognition["agreement"], false, "case {id}: {recognition}");
            assert_eq!(
                detail["state"], "needs_review",
                "a disagreement goes to a person"
            );
        }
        if detail["state"] == "recognized" {
            assert_eq!(ours, camera, "case {id} recognized without agreeing");
        }
        // The crop is evidence, served only while it matches its hash.
        let crop = server
            .get_bytes(&format!("/api/v1/cases/{id}/plate-crop"), "reviewer")
            .expect("plate crop");
        assert_eq!(&crop[..2], &[0xff, 0xd8], "a JPEG");
        assert_eq!(
            kozomol_tests::sha256_hex(&crop),
            recognition["crop"]["sha256"].as_str().expect("crop hash")
        );
        let audit = detail["audit"].as_array().expect("audit");
        assert!(
            audit
                .iter()
                .any(|a| a["action"] == "case.recognition_completed"),
            "case {id}: {audit:?}"
        );
    }
    // Rendered plates are clean: every one should be read exactly.
    assert_eq!(
        exact,
        cases.len(),
        "plates read exactly; misreads: {misreads:#?}"
    );
}
