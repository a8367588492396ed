//! Who may do what: the roles an account holds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Confirms or rejects recognised violations.
    Reviewer,
    /// Decides where reviewers and the machine disagree.
    Supervisor,
    /// Payments, reconciliation, refunds.
    Finance,
    /// Accounts, cameras and the device register.
    Admin,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Reviewer,
        Role::Supervisor,
        Role::Finance,
        Role::Admin,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Supervisor => "supervisor",
            Role::Finance => "finance",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// Whether the role's decisions confirm violations, so that a resolution names its
    /// holder: such an account needs an entry in the officers' register.
    pub fn confirms_violations(self) -> bool {
        matches!(self, Role::Reviewer | Role::Supervisor)
    }
}

impl FromStr for Role {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| CoreError::UnknownRole(s.chars().take(40).collect()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reviewers_and_supervisors_confirm_violations() {
        for (role, confirms) in [
            (Role::Reviewer, true),
            (Role::Supervisor, true),
            (Role::Finance, false),
            (Role::Admin, false),
            (Role::Auditor, false),
        ] {
            assert_eq!(role.confirms_violations(), confirms, "{role:?}");
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
    }
}
