//! `kozomol quote` as a user runs it: one line of JSON, exit 2 where no fine applies,
//! exit 1 with the reason where the catalogue cannot price the offence.

use std::process::Command;

fn quote(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kozomol"))
        .arg("quote")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("kozomol runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .last()
        .map(|line| serde_json::from_str(line).expect("the last line is JSON"))
        .unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn prices_dates_and_refuses() {
    let (code, json, _) = quote(&[
        "--jurisdiction",
        "kz",
        "--kind",
        "speeding",
        "--measured",
        "125",
        "--limit",
        "60",
        "--date",
        "2026-03-10",
        "--delivered",
        "2026-03-12",
        "--repeat",
    ]);
    assert_eq!(code, 0);
    assert_eq!(json["article"], "592.5");
    assert_eq!(json["units"], 60);
    assert_eq!(
        json["amount"],
        serde_json::json!({"minor": 25_950_000, "currency": "KZT"})
    );
    assert_eq!(json["discount_until"], "2026-03-26");

    let (code, json, _) = quote(&[
        "--jurisdiction",
        "kz",
        "--kind",
        "speeding",
        "--measured",
        "69",
        "--limit",
        "60",
        "--date",
        "2026-03-10",
    ]);
    assert_eq!(code, 2, "below the lowest band");
    assert!(json["reason"].as_str().is_some_and(|r| r.contains("below")));
    let (code, _, _) = quote(&[
        "--jurisdiction",
        "kz",
        "--kind",
        "oncoming_lane",
        "--date",
        "2026-03-10",
    ]);
    assert_eq!(code, 2, "a licence suspension is not a fine");

    let table: &[(&[&str], &str)] = &[
        (
            &[
                "--jurisdiction",
                "kg",
                "--kind",
                "phone",
                "--date",
                "2026-03-10",
            ],
            "no amount",
        ),
        (
            &[
                "--jurisdiction",
                "kz",
                "--kind",
                "speeding",
                "--date",
                "2026-03-10",
            ],
            "measured speed",
        ),
        (
            &[
                "--jurisdiction",
                "kz",
                "--kind",
                "red_light",
                "--date",
                "2023-06-01",
            ],
            "unit value",
        ),
        (
            &[
                "--jurisdiction",
                "ru",
                "--kind",
                "red_light",
                "--date",
                "2026-03-10",
            ],
            "unknown jurisdiction",
        ),
        (
            &[
                "--jurisdiction",
                "kz",
                "--kind",
                "jaywalking",
                "--date",
                "2026-03-10",
            ],
            "unknown violation kind",
        ),
        (
            &[
                "--jurisdiction",
                "kz",
                "--kind",
                "red_light",
                "--date",
                "10.03.2026",
            ],
            "--date",
        ),
    ];
    for (args, message) in table {
        let (code, _, stderr) = quote(args);
        assert_ne!(code, 0, "{args:?}");
        assert_ne!(code, 2, "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
