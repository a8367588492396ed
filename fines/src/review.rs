//! Where a review decision sends a case. A first-tier approval stands only when the
//! reviewer and the machine agree on the plate and the machine's read was strong;
//! otherwise a supervisor decides. A supervisor's decision is final. Auto-approval
//! needs the dual read to agree, the confidence to reach the threshold, and the
//! measuring device to have been calibrated at capture.

use kozomol_core::{CaseState, RejectReason, ReviewDecision, ReviewTier};

/// What the machine read, as the recognizer stored it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineRead {
    pub plate: Option<String>,
    pub confidence_milli: Option<u16>,
    /// Whether the camera's own read agreed (None: the camera sent none).
    pub camera_agrees: Option<bool>,
}

impl MachineRead {
    /// What the recognizer stored for a case; all empty when it read nothing.
    pub fn of(recognition: Option<&kozomol_store::RecognitionRecord>) -> Self {
        let read = recognition.and_then(|r| r.plate.as_ref());
        MachineRead {
            plate: read.map(|p| p.text.clone()),
            confidence_milli: read.map(|p| p.confidence_milli),
            camera_agrees: recognition.and_then(|r| r.agreement),
        }
    }
}

/// A reviewer's decision as submitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub tier: ReviewTier,
    pub decision: ReviewDecision,
    /// The plate typed (correct_plate) — upper case, no spaces.
    pub plate: Option<String>,
    pub reason: Option<RejectReason>,
}

/// Where the case goes and the plate the fine will name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    pub to: CaseState,
    /// The plate decided on approval, or the one a supervisor must confirm.
    pub plate: Option<String>,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    #[error("a case in state `{state}` is not open to {tier} review")]
    NotReviewable { state: CaseState, tier: ReviewTier },
    #[error("a rejection needs a reason code")]
    ReasonMissing,
    #[error("only a rejection takes a reason code")]
    ReasonNotExpected,
    #[error("correct_plate needs the plate, 2 to 12 letters and digits")]
    PlateMissing,
    #[error("there is no plate to approve: correct it instead")]
    NothingToApprove,
    #[error("auto-approval is the machine's tier, not a reviewer's")]
    AutoByHand,
    #[error(
        "the case is not enforceable (its evidence cannot carry a fine): it can only be rejected"
    )]
    NotEnforceable,
}

/// The states each tier may decide.
pub fn reviewable(tier: ReviewTier, state: CaseState) -> bool {
    match tier {
        ReviewTier::Auto => state == CaseState::Recognized,
        ReviewTier::First => matches!(state, CaseState::Recognized | CaseState::NeedsReview),
        // A case whose owner the registry did not give (no vehicle under the plate,
        // several owners, a plate not Kyrgyz) is a supervisor's: a misread plate is
        // corrected, one the registry has mended since is asked about again, one that
        // cannot be fined is rejected with its reason.
        ReviewTier::Supervisor => matches!(
            state,
            CaseState::Recognized
                | CaseState::NeedsReview
                | CaseState::SupervisorReview
                | CaseState::OwnerUnknown
        ),
    }
}

/// A plate as typed, upper case, without spaces and hyphens, its Cyrillic look-alike
/// letters in Latin (as the recognizer and the registry write them), so a plate typed
/// on either keyboard is one plate.
pub(crate) fn plate_chars(raw: &str) -> impl Iterator<Item = char> + '_ {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .map(kozomol_core::latin_lookalike)
}

/// A typed plate normalised ([`plate_chars`]), whatever it holds.
pub fn plate_as_typed(raw: &str) -> String {
    plate_chars(raw).collect()
}

/// Normalises a typed plate: upper case, letters and digits only.
pub fn normalise_plate(raw: &str) -> Option<String> {
    let plate = plate_as_typed(raw);
    let ok = (2..=12).contains(&plate.chars().count()) && plate.chars().all(char::is_alphanumeric);
    ok.then_some(plate)
}

/// Where `submitted` sends a case in `state`. `proposed` is the plate an earlier
/// reviewer typed (for a supervisor looking at a disagreement); `weak_below_milli` is
/// the confidence under which the machine's read is weak. A case ingest found not
/// enforceable (a calibration not covering the capture day, a clock running ahead)
/// can only be rejected: no one's approval makes its evidence carry a fine.
pub fn route(
    state: CaseState,
    enforceable: bool,
    machine: &MachineRead,
    proposed: Option<&str>,
    submitted: &Submitted,
    weak_below_milli: u16,
) -> Result<Routed, ReviewError> {
    if submitted.tier == ReviewTier::Auto {
        return Err(ReviewError::AutoByHand);
    }
    if !reviewable(submitted.tier, state) {
        return Err(ReviewError::NotReviewable {
            state,
            tier: submitted.tier,
        });
    }
    match (submitted.decision, submitted.reason) {
        (ReviewDecision::Reject, None) => return Err(ReviewError::ReasonMissing),
        (ReviewDecision::Reject, Some(_)) => {
            return Ok(Routed {
                to: CaseState::Rejected,
                plate: None,
            })
        }
        (_, Some(_)) => return Err(ReviewError::ReasonNotExpected),
        _ if !enforceable => return Err(ReviewError::NotEnforceable),
        _ => {}
    }
    let plate = match submitted.decision {
        ReviewDecision::CorrectPlate => submitted
            .plate
            .as_deref()
            .and_then(normalise_plate)
            .ok_or(ReviewError::PlateMissing)?,
        _ => proposed
            .map(str::to_owned)
            .or_else(|| machine.plate.clone())
            .ok_or(ReviewError::NothingToApprove)?,
    };
    let final_say = submitted.tier == ReviewTier::Supervisor;
    // One plate however spelled: a reviewer types `01KG123ABC`, the recognizer reads
    // `01123ABC`.
    let machine_agrees = machine
        .plate
        .as_deref()
        .is_some_and(|read| kozomol_tunduk::same_plate(read, &plate));
    let strong = machine
        .confidence_milli
        .is_some_and(|c| c >= weak_below_milli);
    let to = if final_say || (machine_agrees && strong) {
        CaseState::Approved
    } else {
        CaseState::SupervisorReview
    };
    Ok(Routed {
        to,
        plate: Some(plate),
    })
}

/// Whether the machine may approve a `recognized` case by itself.
pub fn auto_approves(machine: &MachineRead, threshold_milli: u16, calibrated: bool) -> bool {
    calibrated
        && machine.plate.is_some()
        && machine.camera_agrees == Some(true)
        && machine
            .confidence_milli
            .is_some_and(|c| c >= threshold_milli)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseState::*;
    use ReviewDecision::*;

    #[test]
    fn typed_plates_are_one_spelling() {
        for (raw, want) in [
            ("01 kg 123-abc", Some("01KG123ABC")),
            // A Cyrillic keyboard's look-alikes (К, А, В, С) are the Latin letters.
            ("01 КG 123 АВС", Some("01KG123ABC")),
            ("в 1234 ав", Some("B1234AB")),
            // Other Cyrillic letters stay: they are no Latin letter's twins.
            ("01KG123ЖЖЖ", Some("01KG123ЖЖЖ")),
            ("A", None),
            ("01/KG", None),
        ] {
            assert_eq!(normalise_plate(raw).as_deref(), want, "{raw}");
        }
    }
    use ReviewTier::*;

    fn machine(plate: &str, confidence: u16) -> MachineRead {
        MachineRead {
            plate: Some(plate.into()),
            confidence_milli: Some(confidence),
            camera_agrees: Some(true),
        }
    }

    fn submit(tier: ReviewTier, decision: ReviewDecision, plate: Option<&str>) -> Submitted {
        Submitted {
            tier,
            decision,
            plate: plate.map(str::to_owned),
            reason: None,
        }
    }

    #[test]
    fn decisions_route_by_tier_agreement_and_strength() {
        let strong = machine("01KG123ABC", 950);
        let weak = machine("01KG123ABC", 600);
        let recognizer_spelling = machine("01123ABC", 950);
        let none = MachineRead::default();
        // (state, machine, proposed, tier, decision, typed plate, expected state, plate)
        type Row<'a> = (
            CaseState,
            &'a MachineRead,
            Option<&'a str>,
            ReviewTier,
            ReviewDecision,
            Option<&'a str>,
            CaseState,
            &'a str,
        );
        let table: Vec<Row> = vec![
            (
                NeedsReview,
                &strong,
                None,
                First,
                Approve,
                None,
                Approved,
                "01KG123ABC",
            ),
            (
                Recognized,
                &strong,
                None,
                First,
                Approve,
                None,
                Approved,
                "01KG123ABC",
            ),
            (
                NeedsReview,
                &weak,
                None,
                First,
                Approve,
                None,
                SupervisorReview,
                "01KG123ABC",
            ),
            // Typing the machine's own plate is agreement; typing another is not.
            (
                NeedsReview,
                &strong,
                None,
                First,
                CorrectPlate,
                Some("01 kg 123-abc"),
                Approved,
                "01KG123ABC",
            ),
            (
                NeedsReview,
                &strong,
                None,
                First,
                CorrectPlate,
                Some("01KG128ABC"),
                SupervisorReview,
                "01KG128ABC",
            ),
            // The machine's plate written with the KG it leaves out is the same plate.
            (
                NeedsReview,
                &recognizer_spelling,
                None,
                First,
                CorrectPlate,
                Some("01KG123ABC"),
                Approved,
                "01KG123ABC",
            ),
            (
                NeedsReview,
                &none,
                None,
                First,
                CorrectPlate,
                Some("01KG128ABC"),
                SupervisorReview,
                "01KG128ABC",
            ),
            // A supervisor's word is final, and approving takes the proposed plate.
            (
                SupervisorReview,
                &strong,
                Some("01KG128ABC"),
                Supervisor,
                Approve,
                None,
                Approved,
                "01KG128ABC",
            ),
            (
                SupervisorReview,
                &weak,
                None,
                Supervisor,
                Approve,
                None,
                Approved,
                "01KG123ABC",
            ),
            (
                SupervisorReview,
                &strong,
                Some("01KG128ABC"),
                Supervisor,
                CorrectPlate,
                Some("01KG129ABC"),
                Approved,
                "01KG129ABC",
            ),
            (
                NeedsReview,
                &none,
                None,
                Supervisor,
                CorrectPlate,
                Some("B1234AB"),
                Approved,
                "B1234AB",
            ),
            // A plate the registry knew no vehicle under: corrected, or asked again.
            (
                OwnerUnknown,
                &strong,
                Some("01KG123ABC"),
                Supervisor,
                CorrectPlate,
                Some("01KG128ABC"),
                Approved,
                "01KG128ABC",
            ),
            (
                OwnerUnknown,
                &weak,
                Some("01KG128ABC"),
                Supervisor,
                Approve,
                None,
                Approved,
                "01KG128ABC",
            ),
        ];
        for (state, m, proposed, tier, decision, typed, to, plate) in table {
            let routed = route(
                state,
                true,
                m,
                proposed,
                &submit(tier, decision, typed),
                900,
            );
            assert_eq!(
                routed,
                Ok(Routed {
                    to,
                    plate: Some(plate.into())
                }),
                "{state} {tier} {decision} {typed:?}"
            );
        }
    }

    #[test]
    fn refusals() {
        let strong = machine("01KG123ABC", 950);
        let reject = |reason| Submitted {
            reason,
            ..submit(First, Reject, None)
        };
        let table: Vec<(CaseState, MachineRead, Submitted, ReviewError)> = vec![
            (
                SupervisorReview,
                strong.clone(),
                submit(First, Approve, None),
                ReviewError::NotReviewable {
                    state: SupervisorReview,
                    tier: First,
                },
            ),
            (
                Approved,
                strong.clone(),
                submit(Supervisor, Approve, None),
                ReviewError::NotReviewable {
                    state: Approved,
                    tier: Supervisor,
                },
            ),
            (
                Received,
                strong.clone(),
                submit(First, Approve, None),
                ReviewError::NotReviewable {
                    state: Received,
                    tier: First,
                },
            ),
            (
                OwnerUnknown,
                strong.clone(),
                submit(First, CorrectPlate, Some("01KG128ABC")),
                ReviewError::NotReviewable {
                    state: OwnerUnknown,
                    tier: First,
                },
            ),
            (
                NeedsReview,
                strong.clone(),
                reject(None),
                ReviewError::ReasonMissing,
            ),
            (
                NeedsReview,
                strong.clone(),
                Submitted {
                    reason: Some(RejectReason::Other),
                    ..submit(First, Approve, None)
                },
                ReviewError::ReasonNotExpected,
            ),
            (
                NeedsReview,
                strong.clone(),
                submit(First, CorrectPlate, None),
                ReviewError::PlateMissing,
            ),
            (
                NeedsReview,
                strong.clone(),
                submit(First, CorrectPlate, Some("0")),
                ReviewError::PlateMissing,
            ),
            (
                NeedsReview,
                strong.clone(),
                submit(First, CorrectPlate, Some("01KG/123")),
                ReviewError::PlateMissing,
            ),
            (
                NeedsReview,
                MachineRead::default(),
                submit(First, Approve, None),
                ReviewError::NothingToApprove,
            ),
            (
                Recognized,
                strong.clone(),
                submit(Auto, Approve, None),
                ReviewError::AutoByHand,
            ),
        ];
        for (state, m, submitted, error) in table {
            assert_eq!(
                route(state, true, &m, None, &submitted, 900),
                Err(error.clone()),
                "{error}"
            );
        }
        for enforceable in [true, false] {
            let rejected = route(
                NeedsReview,
                enforceable,
                &strong,
                None,
                &reject(Some(RejectReason::NoViolation)),
                900,
            );
            assert_eq!(
                rejected,
                Ok(Routed {
                    to: Rejected,
                    plate: None
                })
            );
        }
        // Not enforceable: no tier approves it, nor corrects its plate.
        for submitted in [
            submit(First, Approve, None),
            submit(Supervisor, Approve, None),
            submit(Supervisor, CorrectPlate, Some("01KG123ABC")),
        ] {
            assert_eq!(
                route(NeedsReview, false, &strong, None, &submitted, 900),
                Err(ReviewError::NotEnforceable),
                "{submitted:?}"
            );
        }
    }

    #[test]
    fn auto_approval_needs_agreement_strength_and_calibration() {
        let disagrees = MachineRead {
            camera_agrees: Some(false),
            ..machine("01KG123ABC", 990)
        };
        let silent_camera = MachineRead {
            camera_agrees: None,
            ..machine("01KG123ABC", 990)
        };
        let table = [
            (machine("01KG123ABC", 950), true, true),
            (machine("01KG123ABC", 900), true, true),
            (machine("01KG123ABC", 899), true, false),
            (machine("01KG123ABC", 950), false, false),
            (disagrees, true, false),
            (silent_camera, true, false),
            (MachineRead::default(), true, false),
        ];
        for (m, calibrated, approves) in table {
            assert_eq!(
                auto_approves(&m, 900, calibrated),
                approves,
                "{m:?} {calibrated}"
            );
        }
    }
}
