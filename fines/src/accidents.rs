//! The investigation of a road accident: `registered → under_investigation → closed`,
//! and how it may end. Serious or fatal harm is a matter for a court (a criminal or
//! court case), never closed with administrative fines alone; `violations_filed`
//! needs the violations to be filed first, `no_violation` none to be.

use kozomol_store::{AccidentOutcome, AccidentRecord, AccidentState, Injury};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccidentMoveRefused {
    #[error("an accident moves from `{from}` only to {allowed}")]
    NotNext {
        from: AccidentState,
        allowed: &'static str,
    },
    #[error("closing an accident names its outcome")]
    OutcomeMissing,
    #[error("only closing an accident names an outcome")]
    OutcomeTooEarly,
    #[error("serious or fatal injuries go to court: the outcome is `referred_to_court`")]
    CourtRequired,
    #[error("no violation is filed under this accident yet")]
    NoViolationsFiled,
    #[error("{0} violations are filed under this accident")]
    ViolationsExist(usize),
}

/// Checks the move of `accident` to `to`, closing with `outcome`.
pub fn check_move(
    accident: &AccidentRecord,
    to: AccidentState,
    outcome: Option<AccidentOutcome>,
) -> Result<(), AccidentMoveRefused> {
    let from = accident.state;
    match (from, to) {
        (AccidentState::Registered, AccidentState::UnderInvestigation) => {
            if outcome.is_some() {
                return Err(AccidentMoveRefused::OutcomeTooEarly);
            }
            Ok(())
        }
        (AccidentState::UnderInvestigation, AccidentState::Closed) => {
            let outcome = outcome.ok_or(AccidentMoveRefused::OutcomeMissing)?;
            let filed = accident.cases.len();
            match outcome {
                _ if accident.worst_injury() >= Injury::Serious
                    && outcome != AccidentOutcome::ReferredToCourt =>
                {
                    Err(AccidentMoveRefused::CourtRequired)
                }
                AccidentOutcome::ViolationsFiled if filed == 0 => {
                    Err(AccidentMoveRefused::NoViolationsFiled)
                }
                AccidentOutcome::NoViolation if filed > 0 => {
                    Err(AccidentMoveRefused::ViolationsExist(filed))
                }
                _ => Ok(()),
            }
        }
        (AccidentState::Registered, _) => Err(AccidentMoveRefused::NotNext {
            from,
            allowed: "`under_investigation`",
        }),
        (AccidentState::UnderInvestigation, _) => Err(AccidentMoveRefused::NotNext {
            from,
            allowed: "`closed`",
        }),
        (AccidentState::Closed, _) => Err(AccidentMoveRefused::NotNext {
            from,
            allowed: "nothing: it is closed",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kozomol_core::{CaseId, ReportedPlace};
    use kozomol_store::{AccidentParticipant, ParticipantRole};

    fn accident(state: AccidentState, worst: Injury, cases: usize) -> AccidentRecord {
        AccidentRecord {
            id: 1,
            report_id: uuid::Uuid::nil(),
            occurred_at: chrono::DateTime::UNIX_EPOCH,
            place: ReportedPlace {
                address: "Бишкек, пр. Чуй 100".into(),
                lat_e6: None,
                lon_e6: None,
            },
            description: "столкновение".into(),
            state,
            outcome: None,
            registered_by: "officer".into(),
            registered_at: chrono::DateTime::UNIX_EPOCH,
            vehicles: Vec::new(),
            participants: vec![AccidentParticipant {
                name: "А. Б.".into(),
                role: ParticipantRole::Driver,
                vehicle: None,
                pin: None,
                injury: worst,
            }],
            files: Vec::new(),
            cases: (0..cases as i64).map(CaseId).collect(),
            moves: Vec::new(),
            evidence_destroyed_at: None,
        }
    }

    #[test]
    fn moves_follow_the_flow() {
        use AccidentOutcome::*;
        use AccidentState::*;
        type Want = Result<(), AccidentMoveRefused>;
        let refused_next = |from, allowed| Err(AccidentMoveRefused::NotNext { from, allowed });
        let table: Vec<(
            AccidentState,
            Injury,
            usize,
            AccidentState,
            Option<AccidentOutcome>,
            Want,
        )> = vec![
            (
                Registered,
                Injury::None,
                0,
                UnderInvestigation,
                None,
                Ok(()),
            ),
            (
                Registered,
                Injury::None,
                0,
                UnderInvestigation,
                Some(NoViolation),
                Err(AccidentMoveRefused::OutcomeTooEarly),
            ),
            (
                Registered,
                Injury::None,
                0,
                Closed,
                Some(NoViolation),
                refused_next(Registered, "`under_investigation`"),
            ),
            (
                UnderInvestigation,
                Injury::None,
                0,
                Closed,
                None,
                Err(AccidentMoveRefused::OutcomeMissing),
            ),
            (
                UnderInvestigation,
                Injury::None,
                0,
                Closed,
                Some(NoViolation),
                Ok(()),
            ),
            (
                UnderInvestigation,
                Injury::Light,
                2,
                Closed,
                Some(ViolationsFiled),
                Ok(()),
            ),
            (
                UnderInvestigation,
                Injury::None,
                0,
                Closed,
                Some(ViolationsFiled),
                Err(AccidentMoveRefused::NoViolationsFiled),
            ),
            (
                UnderInvestigation,
                Injury::None,
                1,
                Closed,
                Some(NoViolation),
                Err(AccidentMoveRefused::ViolationsExist(1)),
            ),
            (
                UnderInvestigation,
                Injury::Serious,
                1,
                Closed,
                Some(ViolationsFiled),
                Err(AccidentMoveRefused::CourtRequired),
            ),
            (
                UnderInvestigation,
                Injury::Fatal,
                0,
                Closed,
                Some(ReferredToCourt),
                Ok(()),
            ),
            (
                UnderInvestigation,
                Injury::Light,
                0,
                Closed,
                Some(ReferredToCourt),
                Ok(()),
            ),
            (
                UnderInvestigation,
                Injury::None,
                0,
                Registered,
                None,
                refused_next(UnderInvestigation, "`closed`"),
            ),
            (
                Closed,
                Injury::None,
                0,
                UnderInvestigation,
                None,
                refused_next(Closed, "nothing: it is closed"),
            ),
        ];
        for (from, worst, cases, to, outcome, want) in table {
            let got = check_move(&accident(from, worst, cases), to, outcome);
            assert_eq!(
                got, want,
                "{from} → {to} {outcome:?} ({worst}, {cases} cases)"
            );
        }
    }
}
