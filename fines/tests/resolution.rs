//! The resolution PDF as a reader and a court see it: a valid file (`qpdf --check`),
//! its Russian text extractable (`pdftotext`), the camera's JPEG bytes inside
//! unchanged, the same bytes for the same resolution, and a detached signature that
//! catches a one-byte change and an untrusted key.
//!
//! Needs `qpdf` and `pdftotext`/`pdfimages` on PATH: `apt-get install qpdf poppler-utils`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageBuffer, Rgb};
use kozomol_core::ViolationKind;
use kozomol_core::{CalibrationCertificate, Currency, Jurisdiction, MeasuringDevice, Money};
use kozomol_fines::resolution::{
    issue, render_pdf, verify, Article, Detection, Discount, Ed25519Signer, Liability, Officer,
    Owner, Photos, Place, Resolution, ResolutionError, ResolutionNumber, Signer, SignerIdentity,
    Term, Vehicle, Verdict, VerifyingKeys,
};

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("test instant")
}

/// A small JPEG as a camera would send it (baseline, YCbCr).
fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            seed.wrapping_add(((x / 8 + y / 8) % 2) as u8 * 90),
        ])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("encodes a test jpeg");
    out
}

fn sample() -> Resolution {
    Resolution {
        number: ResolutionNumber::parse("KG-BSK-2026-0000123").expect("valid number"),
        jurisdiction: Jurisdiction::Kg,
        authority: "Управление патрульной милиции ГУВД г. Бишкек".into(),
        issued_at: t("2026-03-02T04:15:00Z"),
        offence_at: t("2026-03-01T08:32:05Z"),
        place: Place {
            address: "г. Бишкек, пр. Чуй — ул. Советская, направление на восток, полоса 2".into(),
            lat_e6: Some(42_874_620),
            lon_e6: Some(74_612_345),
        },
        plate: "01KG123ABC".into(),
        vehicle: Vehicle {
            make: Some("Toyota".into()),
            model: Some("Camry".into()),
        },
        owner: Owner {
            name: "Асанов Бакыт Жумабекович".into(),
            address: "г. Бишкек, ул. Токтогула, д. 125, кв. 14".into(),
            liable_as: Liability::Owner,
        },
        article: Article {
            number: "155.1".into(),
            title: "Превышение установленной скорости движения транспортного средства \
                    на величину свыше 20 км/ч"
                .into(),
        },
        violation: ViolationKind::Speeding,
        measurement: "96 км/ч при разрешенной скорости 60 км/ч (превышение на 36 км/ч)".into(),
        detection: Detection::AutomaticCamera,
        device: Some(MeasuringDevice {
            serial: "KZM-0042".into(),
            certificate: CalibrationCertificate {
                number: "KG-2026-0001".into(),
                valid_from: d("2026-01-10"),
                valid_until: d("2027-01-09"),
            },
        }),
        officer: Officer {
            name: "Иманалиев Н. К.".into(),
            badge: "0457".into(),
        },
        amount: Money::major(7_500, Currency::KGS),
        discount: Some(Discount {
            percent: 50,
            amount: Money::major(3_750, Currency::KGS),
            until: Term::Until(d("2026-03-17")),
        }),
        due: Term::Until(d("2026-05-01")),
        appeal_until: Term::Until(d("2026-03-12")),
        appeal_rights: "Постановление может быть обжаловано собственником (владельцем) \
                        транспортного средства в вышестоящий орган или в суд в течение \
                        10 дней со дня вручения или получения его копии. Жалоба подается \
                        через портал государственных услуг, по почте или лично.\n\
                        Уплата штрафа не лишает права на обжалование."
            .into(),
        payment_code: "41700012345678".into(),
        payment_qr:
            "00020101021232490012kg.kozomol0114417000123456785204739953034175405750005802KG6304ABCD"
                .into(),
        verification_url: "https://kozomol.example.kg/v/KG-BSK-2026-0000123".into(),
        photos: Photos {
            overview: jpeg(640, 360, 10),
            plate: jpeg(200, 48, 200),
        },
    }
}

fn officer_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(
        &[42u8; 32],
        SignerIdentity::Officer {
            badge: "0457".into(),
        },
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs `tool args… -` style commands with the PDF on a temp file; panics with an
/// install hint when the tool is missing.
fn run_tool(tool: &str, args: &[&str], pdf: &[u8]) -> (bool, String) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kozomol-resolution-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("resolution.pdf");
    std::fs::write(&path, pdf).expect("writes the pdf");
    let mut cmd = Command::new(tool);
    cmd.args(args).arg(&path);
    if tool == "pdftotext" {
        cmd.arg("-");
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("`{tool}` could not run ({e}): apt-get install qpdf poppler-utils")
    });
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn pdf_is_valid_for_qpdf() {
    let pdf = render_pdf(&sample()).expect("renders");
    assert!(pdf.starts_with(b"%PDF-"), "starts with the PDF header");
    let (ok, report) = run_tool("qpdf", &["--check"], &pdf);
    assert!(ok, "qpdf --check failed:\n{report}");
    assert!(
        report.contains("No syntax or stream encoding errors"),
        "{report}"
    );
}

#[test]
fn text_extracts_in_russian() {
    let pdf = render_pdf(&sample()).expect("renders");
    let (ok, text) = run_tool("pdftotext", &["-layout", "-enc", "UTF-8"], &pdf);
    assert!(ok, "pdftotext failed: {text}");
    let text = text.replace('\u{a0}', " ");
    for want in [
        "ПОСТАНОВЛЕНИЕ № KG-BSK-2026-0000123",
        "КЫРГЫЗСКАЯ РЕСПУБЛИКА",
        "Государственный регистрационный знак",
        "01KG123ABC",
        "Toyota Camry",
        "Асанов Бакыт Жумабекович",
        "01.03.2026 14:32:05",
        "Превышение установленной скорости движения",
        "96 км/ч",
        "KZM-0042",
        "Сумма штрафа",
        "7 500,00 сом",
        "Оплатить со скидкой 50 %",
        "3 750,00 сом",
        "Код платежа",
        "41700012345678",
        "Обжаловать",
        "до 12.03.2026 включительно",
        "Оплатить",
        "Проверить подлинность",
        "https://kozomol.example.kg/v/KG-BSK-2026-0000123",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
}

#[test]
fn a_named_driver_is_addressed_as_the_driver() {
    let mut r = sample();
    r.owner.liable_as = Liability::NamedDriver;
    let pdf = render_pdf(&r).expect("renders");
    let (ok, text) = run_tool("pdftotext", &["-enc", "UTF-8"], &pdf);
    assert!(ok, "pdftotext failed: {text}");
    assert!(text.contains("Водитель (указан собственником)"), "{text}");
    assert!(!text.contains("Собственник (владелец)"), "{text}");
}

#[test]
fn names_outside_the_prepared_repertoire_still_print() {
    // Greek is not in the faces prepared once per process: the page is laid out again
    // in the full faces, subset for this document.
    let mut r = sample();
    r.owner.name = "Παπαδόπουλος Γιώργος".to_owned();
    let pdf = render_pdf(&r).expect("renders");
    let (ok, text) = run_tool("pdftotext", &["-layout", "-enc", "UTF-8"], &pdf);
    assert!(ok, "pdftotext failed: {text}");
    assert!(text.contains("Παπαδόπουλος Γιώργος"), "{text}");
    assert!(
        text.contains("ПОСТАНОВЛЕНИЕ № KG-BSK-2026-0000123"),
        "{text}"
    );
    let (ok, report) = run_tool("qpdf", &["--check"], &pdf);
    assert!(ok, "{report}");
    let usual = render_pdf(&sample()).expect("renders");
    assert!(pdf.len() < usual.len(), "a per-document subset is smaller");
}

#[test]
fn camera_jpegs_are_embedded_unchanged() {
    let r = sample();
    let pdf = render_pdf(&r).expect("renders");
    assert!(contains(&pdf, &r.photos.overview), "overview bytes inside");
    assert!(contains(&pdf, &r.photos.plate), "plate bytes inside");
    // poppler sees two JPEG (DCT) images at their original pixel size.
    let (ok, list) = run_tool("pdfimages", &["-list"], &pdf);
    assert!(ok, "pdfimages failed: {list}");
    let images: Vec<&str> = list.lines().skip(2).collect();
    assert_eq!(images.len(), 2, "{list}");
    for (line, (w, h)) in images.iter().zip([(640, 360), (200, 48)]) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[3], w.to_string(), "{line}");
        assert_eq!(cols[4], h.to_string(), "{line}");
        assert_eq!(cols[8], "jpeg", "{line}");
    }
}

#[test]
fn fonts_are_subset() {
    let r = sample();
    let pdf = render_pdf(&r).expect("renders");
    let photos = r.photos.overview.len() + r.photos.plate.len();
    // Two full DejaVu faces would add ≈ 700 KB compressed; the prepared subsets ≈ 82 KB.
    let rest = pdf.len() - photos;
    assert!(rest < 120_000, "{rest} bytes besides the photos");
    assert!(
        contains(&pdf, b"/DJVREG+"),
        "regular face carries a subset tag"
    );
    assert!(
        contains(&pdf, b"/DJVBLD+"),
        "bold face carries a subset tag"
    );
}

#[test]
fn rendering_is_deterministic() {
    let r = sample();
    let first = render_pdf(&r).expect("renders");
    // Render something else in between: printpdf's id counter moves on.
    let mut other = sample();
    other.plate = "02KG777AAA".into();
    let other_pdf = render_pdf(&other).expect("renders");
    let second = render_pdf(&r).expect("renders again");
    assert!(first == second, "same resolution, same bytes");
    assert!(first != other_pdf, "another plate, another document");
    // Creation date is the issue time, not the wall clock.
    assert!(
        contains(&first, b"D:20260302041500"),
        "creation date from issued_at"
    );
}

#[test]
fn signature_verifies_and_catches_changes() {
    let signer = officer_signer();
    let keys: VerifyingKeys = [signer.verifying_key()].into_iter().collect();
    let issued = issue(&sample(), &signer).expect("issues");
    assert_eq!(
        verify(&issued.pdf, &issued.signature, &keys),
        Verdict::Valid
    );

    for at in [0, issued.pdf.len() / 2, issued.pdf.len() - 1] {
        let mut changed = issued.pdf.clone();
        changed[at] ^= 0x01;
        assert_eq!(
            verify(&changed, &issued.signature, &keys),
            Verdict::HashMismatch,
            "byte {at} flipped"
        );
    }

    let stranger = Ed25519Signer::from_seed(&[43u8; 32], signer.identity().clone());
    let strangers: VerifyingKeys = [stranger.verifying_key()].into_iter().collect();
    assert_eq!(
        verify(&issued.pdf, &issued.signature, &strangers),
        Verdict::UnknownKey
    );

    // The signer's claim is covered by the signature.
    let mut relabelled = issued.signature.clone();
    relabelled.signer = SignerIdentity::Issuer {
        name: "ГУВД".into(),
    };
    assert_eq!(
        verify(&issued.pdf, &relabelled, &keys),
        Verdict::BadSignature
    );
    // Signing the same bytes again gives the same signature (Ed25519 is deterministic).
    assert_eq!(signer.sign(&issued.pdf).expect("signs"), issued.signature);
}

#[test]
fn before_delivery_the_terms_are_periods() {
    let mut r = sample();
    r.discount = Some(Discount {
        percent: 50,
        amount: Money::major(3_750, Currency::KGS),
        until: Term::FromDelivery {
            days: 7,
            working_days: true,
        },
    });
    r.appeal_until = Term::FromDelivery {
        days: 10,
        working_days: false,
    };
    r.due = Term::FromEffect { days: 30 };
    let pdf = render_pdf(&r).expect("renders");
    let (ok, text) = run_tool("pdftotext", &["-layout", "-enc", "UTF-8"], &pdf);
    assert!(ok, "{text}");
    let text = text.replace('\u{a0}', " ");
    for want in ["рабочих дней", "10 дней", "30 дней", "вручения", "силу"]
    {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
    assert!(!text.contains("12.03.2026"), "no date before delivery");
}

#[test]
fn kazakhstan_renders_in_its_currency_and_zone() {
    let mut r = sample();
    r.number = ResolutionNumber::parse("KZ-ALA-2026-0000007").expect("valid");
    r.jurisdiction = Jurisdiction::Kz;
    r.amount = Money::major(86_500, Currency::KZT);
    r.discount = Some(Discount {
        percent: 50,
        amount: Money::major(43_250, Currency::KZT),
        until: Term::Until(d("2026-03-09")),
    });
    r.vehicle = Vehicle::default();
    let pdf = render_pdf(&r).expect("renders");
    let (ok, text) = run_tool("pdftotext", &["-layout", "-enc", "UTF-8"], &pdf);
    assert!(ok, "{text}");
    let text = text.replace('\u{a0}', " ");
    for want in [
        "РЕСПУБЛИКА КАЗАХСТАН",
        "86 500,00 тенге",
        "01.03.2026 13:32:05",
        "UTC+5",
        "не установлены",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let mut r = sample();
    r.photos.plate = b"\x89PNG\r\n\x1a\nnot a jpeg".to_vec();
    assert!(matches!(
        render_pdf(&r),
        Err(ResolutionError::NotJpeg { photo: "plate", .. })
    ));

    let mut r = sample();
    r.jurisdiction = Jurisdiction::Kz;
    assert!(matches!(
        render_pdf(&r),
        Err(ResolutionError::JurisdictionMismatch { .. })
    ));

    let mut r = sample();
    r.amount = Money::major(7_500, Currency::KZT);
    assert!(matches!(
        render_pdf(&r),
        Err(ResolutionError::CurrencyMismatch {
            field: "amount",
            ..
        })
    ));

    let mut r = sample();
    r.payment_code = "4170-0012".into();
    assert_eq!(render_pdf(&r), Err(ResolutionError::InvalidPaymentCode));

    let mut r = sample();
    r.owner.name = "  ".into();
    assert_eq!(
        render_pdf(&r),
        Err(ResolutionError::EmptyField {
            field: "owner.name"
        })
    );

    let mut r = sample();
    r.appeal_rights = "Очень длинный текст о порядке обжалования. ".repeat(200);
    let err = render_pdf(&r).expect_err("does not fit");
    assert!(matches!(err, ResolutionError::PageOverflow { .. }), "{err}");
    assert!(err.to_string().contains("does not fit on one page"));

    let mut r = sample();
    r.payment_qr = "9".repeat(8_000);
    assert!(matches!(
        render_pdf(&r),
        Err(ResolutionError::Qr {
            what: "payment payload",
            ..
        })
    ));
}

/// `cargo test -p kozomol-fines --release --test resolution -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release mode"]
fn render_and_sign_timing() {
    let mut r = sample();
    // A 1080p-sized camera frame (the encoder here makes ~100-300 KB).
    r.photos.overview = jpeg(1920, 1080, 30);
    let signer = officer_signer();
    let _ = issue(&r, &signer).expect("warm-up (font parsing)");
    let n = 50;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes = issue(&r, &signer).expect("issues").pdf.len();
    }
    let per = start.elapsed() / n;
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "render + sign: {per:?} per resolution ({bytes} bytes, overview {} bytes)",
        r.photos.overview.len()
    );
}

#[test]
fn long_texts_shrink_the_photo_before_failing() {
    let mut r = sample();
    r.appeal_rights = format!("{}\n{}", r.appeal_rights, r.appeal_rights);
    r.place.address = format!("{}; {}", r.place.address, r.place.address);
    let pdf = render_pdf(&r).expect("still fits on one page");
    let (ok, text) = run_tool("pdftotext", &["-enc", "UTF-8"], &pdf);
    assert!(ok, "{text}");
    assert_eq!(text.matches("Уплата штрафа не лишает права").count(), 2);
    assert!(
        contains(&pdf, &r.photos.overview),
        "the photo is still the same bytes"
    );
}
