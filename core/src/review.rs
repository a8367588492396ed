//! The vocabulary of review: who decided (the machine's auto-approval, a first-tier
//! reviewer, a supervisor), what they decided, and the reason codes of a rejection.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $error:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| CoreError::$error(s.chars().take(40).collect()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// Who made a review decision.
    ReviewTier, UnknownReviewTier {
        /// The machine: the dual read agreed, strongly, on a calibrated device.
        Auto => "auto",
        /// A reviewer's first look.
        First => "first",
        /// A supervisor, where the reviewer and the machine disagree or the read is weak.
        Supervisor => "supervisor",
    }
);

named_enum!(
    /// What a reviewer decided.
    ReviewDecision, UnknownReviewDecision {
        /// The violation stands with the plate as read.
        Approve => "approve",
        /// The violation stands with the plate the reviewer typed.
        CorrectPlate => "correct_plate",
        /// No fine: see the reason code.
        Reject => "reject",
    }
);

named_enum!(
    /// Why a violation is rejected; stable codes for statistics and the audit.
    RejectReason, UnknownRejectReason {
        PlateUnreadable => "plate_unreadable",
        NoViolation => "no_violation",
        EmergencyVehicle => "emergency_vehicle",
        WrongVehicle => "wrong_vehicle",
        CameraFault => "camera_fault",
        CalibrationInvalid => "calibration_invalid",
        DuplicateEvent => "duplicate_event",
        Other => "other",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in ReviewTier::ALL {
            assert_eq!(t.as_str().parse::<ReviewTier>(), Ok(*t));
        }
        for d in ReviewDecision::ALL {
            assert_eq!(d.as_str().parse::<ReviewDecision>(), Ok(*d));
        }
        for r in RejectReason::ALL {
            assert_eq!(r.as_str().parse::<RejectReason>(), Ok(*r));
        }
        assert!("maybe".parse::<ReviewDecision>().is_err());
        assert!("because".parse::<RejectReason>().is_err());
    }
}
