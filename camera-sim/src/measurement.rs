//! Plausible measurements for each violation kind, and a plausible mix of kinds.

use kozomol_core::{Measurement, ViolationKind};
use rand::Rng;

/// Speed limits posted in Bishkek: 40 near schools and in the centre, 60 in town,
/// 80 on the ring roads.
const LIMITS_KMH: [u16; 3] = [40, 60, 80];

/// A measurement the kind needs (see `Measurement::check`): speeding 10-70 km/h over a
/// 40/60/80 limit, red light 0.2-4 s after the signal turned red, nothing otherwise.
pub fn random_measurement<R: Rng + ?Sized>(kind: ViolationKind, rng: &mut R) -> Measurement {
    match kind {
        ViolationKind::Speeding => {
            let limit = LIMITS_KMH[rng.gen_range(0..LIMITS_KMH.len())];
            Measurement {
                speed_kmh: Some(limit + rng.gen_range(10..=70)),
                limit_kmh: Some(limit),
                red_elapsed_ms: None,
            }
        }
        ViolationKind::RedLight => Measurement {
            red_elapsed_ms: Some(rng.gen_range(200..=4000)),
            ..Measurement::default()
        },
        _ => Measurement::default(),
    }
}

/// A kind drawn with the weights of a city's camera output: mostly speeding, then
/// red lights, then lane and stop-line offences.
pub fn random_kind<R: Rng + ?Sized>(rng: &mut R) -> ViolationKind {
    match rng.gen_range(0..100) {
        0..=54 => ViolationKind::Speeding,
        55..=74 => ViolationKind::RedLight,
        75..=81 => ViolationKind::StopLine,
        82..=86 => ViolationKind::WrongLane,
        87..=90 => ViolationKind::BusLane,
        91..=93 => ViolationKind::OncomingLane,
        94..=97 => ViolationKind::SeatBelt,
        _ => ViolationKind::Phone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn measurements_pass_the_envelope_check() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..2000 {
            let kind = random_kind(&mut rng);
            let m = random_measurement(kind, &mut rng);
            m.check(kind).expect("simulated measurement is valid");
            if let (Some(speed), Some(limit)) = (m.speed_kmh, m.limit_kmh) {
                assert!(LIMITS_KMH.contains(&limit));
                assert!((limit + 10..=limit + 70).contains(&speed));
            }
            if let Some(ms) = m.red_elapsed_ms {
                assert!((200..=4000).contains(&ms));
            }
            if !matches!(kind, ViolationKind::Speeding | ViolationKind::RedLight) {
                assert_eq!(m, Measurement::default());
            }
        }
    }
}
