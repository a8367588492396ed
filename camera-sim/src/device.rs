//! Measuring devices with calibration certificates (поверка) valid on a given day.

use chrono::{Days, NaiveDate};
use kozomol_core::{CalibrationCertificate, MeasuringDevice};
use rand::Rng;

/// Speed and red-light measuring complexes type-approved in the region.
pub const DEVICE_MODELS: [&str; 3] = ["KORDON-M2", "KRIS-P", "STRELKA-ST"];

/// A device whose serial ends in `tag`, with a one-year certificate issued 1-300
/// days before `today`, so it covers `today` and the weeks after.
pub fn simulated_device<R: Rng + ?Sized>(
    tag: &str,
    today: NaiveDate,
    rng: &mut R,
) -> MeasuringDevice {
    let model = DEVICE_MODELS[rng.gen_range(0..DEVICE_MODELS.len())];
    let valid_from = today - Days::new(rng.gen_range(1..=300));
    let valid_until = valid_from + Days::new(365);
    MeasuringDevice {
        serial: format!("{model}-{tag}"),
        certificate: CalibrationCertificate {
            number: format!(
                "KG-CSM-{}-{:05}",
                valid_from.format("%Y"),
                rng.gen_range(1..100_000)
            ),
            valid_from,
            valid_until,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn certificates_cover_today_and_the_next_two_months() {
        let mut rng = StdRng::seed_from_u64(5);
        let today: NaiveDate = "2026-03-01".parse().expect("date");
        for i in 0..500 {
            let device = simulated_device(&format!("run-{i:02}"), today, &mut rng);
            assert!(device.certificate.covers(today), "{device:?}");
            assert!(
                device.certificate.covers(today + Days::new(60)),
                "{device:?}"
            );
            assert!(device.serial.ends_with(&format!("run-{i:02}")));
        }
    }
}
