//! Simulated cameras → ingest → recognizer → auto-approval → owner lookup through the
//! stand-in bus → signed resolution → delivered, through the real `kozomol serve
//! --demo`: the PDF is a valid file with its Russian text and plate, its signature
//! verifies through the API, and a one-byte change does not; the letter is printed in a
//! batch, its return receipt recorded, and the case's clocks start.
//!
//! Needs `qpdf` and `pdftotext` on PATH (`scripts/lib.sh` installs them).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kozomol_tests::{onnxruntime, Kozomol};
use serde_json::Value;

/// Runs `tool ARGS... FILE` on the PDF; returns success and what it printed.
fn pdf_tool(tool: &str, args: &[&str], pdf: &[u8], dir: &std::path::Path) -> (bool, String) {
    let path = dir.join("resolution.pdf");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(pdf))
        .expect("write pdf");
    let mut command = Command::new(tool);
    command.args(args).arg(&path);
    if tool == "pdftotext" {
        command.arg("-");
    }
    let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("`{tool}` could not run ({e}): apt-get install qpdf poppler-utils")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn verify(server: &Kozomol, number: &str, bytes: Vec<u8>) -> Value {
    // No token: anyone may check a copy.
    let response = reqwest::blocking::Client::new()
        .post(format!(
            "{}/api/v1/resolutions/{number}/verify",
            server.api()
        ))
        .header("content-type", "application/pdf")
        .body(bytes)
        .send()
        .expect("verify");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().expect("verification JSON")
}

#[test]
fn a_simulated_violation_becomes_a_signed_resolution() {
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
    .expect("kozomol starts with the recognizer and the fines stages");
    let events = 6;
    let report = server
        .simulate(2, events, 6.0, &["--seed", "20261203"])
        .expect("simulate");
    assert_eq!(report["accepted"], events, "{report}");

    // Every case the machine may decide alone leaves the automatic stages: issued, or
    // with a person (review, owner unknown, a supervisor).
    let automatic = ["received", "recognized", "approved", "owner_found"];
    let deadline = Instant::now() + Duration::from_secs(300);
    let cases = loop {
        let cases = server.all_cases().expect("cases");
        if cases
            .iter()
            .all(|c| !automatic.contains(&c["state"].as_str().unwrap_or("")))
        {
            break cases;
        }
        assert!(
            Instant::now() < deadline,
            "cases still in automatic stages: {:?}\nlog:\n{}",
            cases.iter().map(|c| &c["state"]).collect::<Vec<_>>(),
            kozomol_tests::tail(&server.process.log_text(), 3000)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let issued: Vec<&Value> = cases.iter().filter(|c| c["state"] == "issued").collect();
    assert!(
        !issued.is_empty(),
        "no case was issued: {:?}\nlog:\n{}",
        cases.iter().map(|c| &c["state"]).collect::<Vec<_>>(),
        kozomol_tests::tail(&server.process.log_text(), 3000)
    );

    let keys = reqwest::blocking::get(format!("{}/api/v1/resolution-keys", server.api()))
        .expect("keys")
        .json::<Value>()
        .expect("keys JSON");
    let published = keys["keys"].as_array().expect("keys");
    assert_eq!(published.len(), 1, "{keys}");

    for case in &issued {
        let id = case["id"].as_i64().expect("id");
        let detail = server
            .get_json(&format!("/api/v1/cases/{id}"), "reviewer")
            .expect("case detail");
        let number = detail["resolution"].as_str().expect("resolution number");
        let plate = detail["recognition"]["plate"]["text"]
            .as_str()
            .expect("read plate");
        let audit: Vec<&str> = detail["audit"]
            .as_array()
            .expect("audit")
            .iter()
            .filter_map(|a| a["action"].as_str())
            .collect();
        for action in [
            "case.reviewed",
            "case.owner_looked_up",
            "case.resolution_issued",
        ] {
            assert!(audit.contains(&action), "case {id}: {action} in {audit:?}");
        }

        let resolution = server
            .get_json(&format!("/api/v1/resolutions/{number}"), "auditor")
            .expect("resolution");
        assert_eq!(resolution["case_id"], id);
        assert_eq!(resolution["signature_key_id"], published[0]["key_id"]);
        let pdf = server
            .get_bytes(&format!("/api/v1/resolutions/{number}/pdf"), "auditor")
            .expect("pdf");
        assert_eq!(
            kozomol_tests::sha256_hex(&pdf),
            resolution["pdf_sha256"].as_str().expect("hash")
        );

        let (ok, report) = pdf_tool("qpdf", &["--check"], &pdf, tmp.path());
        assert!(ok, "qpdf --check on {number}:\n{report}");
        let (ok, text) = pdf_tool("pdftotext", &["-layout", "-enc", "UTF-8"], &pdf, tmp.path());
        assert!(ok, "pdftotext on {number}: {text}");
        let text = text.replace('\u{a0}', " ");
        for want in [
            &format!("ПОСТАНОВЛЕНИЕ № {number}"),
            "Государственный регистрационный знак",
            plate,
            resolution["payment_code"].as_str().expect("code"),
        ] {
            assert!(text.contains(want), "{number}: `{want}` in:\n{text}");
        }

        let genuine = verify(&server, number, pdf.clone());
        assert_eq!(genuine["valid"], true, "{genuine}");
        assert_eq!(genuine["verdict"], "valid");
        let mut altered = pdf.clone();
        let middle = altered.len() / 2;
        altered[middle] ^= 0x01;
        let forged = verify(&server, number, altered);
        assert_eq!(forged["valid"], false, "{forged}");
        assert_eq!(forged["verdict"], "hash_mismatch");
    }

    // Delivery: the letter to the owner's address goes out in a print batch; its return
    // receipt, recorded at the desk, proves delivery and starts the clocks.
    let first = issued[0]["id"].as_i64().expect("id");
    let number = server
        .get_json(&format!("/api/v1/cases/{first}"), "reviewer")
        .expect("case")["resolution"]
        .as_str()
        .expect("number")
        .to_owned();
    let deliveries = format!("/api/v1/resolutions/{number}/deliveries");
    let deadline = Instant::now() + Duration::from_secs(60);
    let sent_at = loop {
        let rows = server
            .get_json(&deliveries, "reviewer")
            .expect("deliveries");
        let letter = rows
            .as_array()
            .expect("rows")
            .iter()
            .find(|d| d["channel"] == "post")
            .cloned();
        if let Some(letter) = letter.filter(|l| l["state"] == "sent") {
            break letter["sent_at"].as_str().expect("sent_at").to_owned();
        }
        assert!(Instant::now() < deadline, "no letter sent: {rows}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let receipt = reqwest::blocking::Client::new()
        .post(format!("{}{deliveries}", server.api()))
        .bearer_auth(server.token("reviewer").expect("token"))
        .json(&serde_json::json!({
            "kind": "return_receipt",
            // When the letter was posted: after issuing (the pipeline takes well under
            // a second now) and never in the server's future.
            "delivered_at": sent_at,
            "proof": {"receipt": "RR123456789KG"}
        }))
        .send()
        .expect("receipt");
    assert!(receipt.status().is_success(), "{}", receipt.status());
    let receipt: Value = receipt.json().expect("json");
    assert_eq!(receipt["recorded"], "first", "{receipt}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = server
            .get_json(&format!("/api/v1/cases/{first}"), "reviewer")
            .expect("case");
        let audit: Vec<&str> = detail["audit"]
            .as_array()
            .expect("audit")
            .iter()
            .filter_map(|a| a["action"].as_str())
            .collect();
        if detail["state"] == "delivered" && audit.contains(&"case.clocks_dated") {
            assert!(audit.contains(&"case.resolution_delivered"), "{audit:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "case {first} not delivered and dated: {} {audit:?}",
            detail["state"]
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
