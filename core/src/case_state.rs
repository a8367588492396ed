//! The states a case moves through; one column in the store, and the names the API's
//! `state` filter takes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Received,
    Recognized,
    NeedsReview,
    SupervisorReview,
    Approved,
    Rejected,
    Duplicate,
    Exempt,
    OwnerFound,
    OwnerUnknown,
    Issued,
    Delivered,
    Paid,
    PaidDiscounted,
    PartiallyPaid,
    Overdue,
    Enforcement,
    Lapsed,
    Appealed,
    AppealRejected,
    Annulled,
    Refunded,
    Voided,
}

impl CaseState {
    pub const ALL: [CaseState; 23] = [
        CaseState::Received,
        CaseState::Recognized,
        CaseState::NeedsReview,
        CaseState::SupervisorReview,
        CaseState::Approved,
        CaseState::Rejected,
        CaseState::Duplicate,
        CaseState::Exempt,
        CaseState::OwnerFound,
        CaseState::OwnerUnknown,
        CaseState::Issued,
        CaseState::Delivered,
        CaseState::Paid,
        CaseState::PaidDiscounted,
        CaseState::PartiallyPaid,
        CaseState::Overdue,
        CaseState::Enforcement,
        CaseState::Lapsed,
        CaseState::Appealed,
        CaseState::AppealRejected,
        CaseState::Annulled,
        CaseState::Refunded,
        CaseState::Voided,
    ];

    /// States in which a case waits for the pipeline or an officer to move it on:
    /// the queues whose depth and age operators watch.
    pub const WAITING: [CaseState; 7] = [
        CaseState::Received,
        CaseState::Recognized,
        CaseState::NeedsReview,
        CaseState::SupervisorReview,
        CaseState::Approved,
        CaseState::OwnerFound,
        CaseState::Issued,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Received => "received",
            CaseState::Recognized => "recognized",
            CaseState::NeedsReview => "needs_review",
            CaseState::SupervisorReview => "supervisor_review",
            CaseState::Approved => "approved",
            CaseState::Rejected => "rejected",
            CaseState::Duplicate => "duplicate",
            CaseState::Exempt => "exempt",
            CaseState::OwnerFound => "owner_found",
            CaseState::OwnerUnknown => "owner_unknown",
            CaseState::Issued => "issued",
            CaseState::Delivered => "delivered",
            CaseState::Paid => "paid",
            CaseState::PaidDiscounted => "paid_discounted",
            CaseState::PartiallyPaid => "partially_paid",
            CaseState::Overdue => "overdue",
            CaseState::Enforcement => "enforcement",
            CaseState::Lapsed => "lapsed",
            CaseState::Appealed => "appealed",
            CaseState::AppealRejected => "appeal_rejected",
            CaseState::Annulled => "annulled",
            CaseState::Refunded => "refunded",
            CaseState::Voided => "voided",
        }
    }
}

impl FromStr for CaseState {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| CoreError::UnknownCaseState(s.chars().take(40).collect()))
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in CaseState::ALL {
            assert_eq!(state.as_str().parse::<CaseState>(), Ok(state));
            let json = serde_json_like(state);
            assert_eq!(json, state.as_str());
        }
        assert!("nonsense".parse::<CaseState>().is_err());
    }

    fn serde_json_like(state: CaseState) -> String {
        // ciborium is our only serializer in core; a text value round-trips the name.
        let mut out = Vec::new();
        ciborium::into_writer(&state, &mut out).expect("state serializes");
        let value: ciborium::Value = ciborium::from_reader(&out[..]).expect("state decodes");
        value.as_text().expect("state is text").to_owned()
    }
}
