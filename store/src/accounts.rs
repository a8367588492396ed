//! Accounts and the officers' register, shared by both backends: the columns an account
//! is read from, the register entry's decoding and the audit rows of both changes.
//! Who may hold which role, and what makes a login or a name valid, is the API's.
//! Also the budgets of attempts every process shares ([`Allowance`]: failed logins per
//! login, fine lookups per plate), kept in the database so that replicas behind a load
//! balancer do not each grant the budget again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{Account, NewAccount, OfficerIdentity, StoreError};

/// A budget of attempts: at most `max` within any `window` (a sliding window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub max: u32,
    pub window: Duration,
}

impl Allowance {
    /// Takes one attempt at `now`, given the instants of the attempts taken before
    /// (oldest first): the instants to keep, and `Err(wait)` when `max` of them lie
    /// within the window (nothing is taken then; `wait` is until the oldest leaves it).
    pub(crate) fn take(
        self,
        mut taken: Vec<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (Vec<DateTime<Utc>>, Result<(), Duration>) {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        taken.retain(|at| now.signed_duration_since(*at) < window);
        let max = usize::try_from(self.max).unwrap_or(usize::MAX);
        if taken.len() >= max {
            let oldest = taken.first().copied().unwrap_or(now);
            // An attempt another replica's clock put ahead of ours waits no longer
            // than a window.
            let wait = (oldest + window - now)
                .to_std()
                .unwrap_or_default()
                .min(self.window);
            return (taken, Err(wait));
        }
        taken.push(now);
        (taken, Ok(()))
    }

    /// When a key whose latest attempt was at `latest` has its whole budget again: from
    /// then on its row can go.
    pub(crate) fn full_at(self, latest: DateTime<Utc>) -> DateTime<Utc> {
        latest + chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX)
    }
}

/// The instants of a key's attempts as stored: unix milliseconds, comma-separated.
pub(crate) fn attempts_text(taken: &[DateTime<Utc>]) -> String {
    taken
        .iter()
        .map(|at| at.timestamp_millis().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The instants [`attempts_text`] wrote.
pub(crate) fn attempts_of(text: &str) -> Result<Vec<DateTime<Utc>>, StoreError> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| crate::error::corrupt(format!("allowance attempt `{part}`")))
        })
        .collect()
}

/// The key as stored: hashed, since a key may name a plate or a login.
pub(crate) fn allowance_key(key: &str) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(b"kozomol allowance v1\0");
    digest.update(key.as_bytes());
    digest.finalize().to_vec()
}

/// Budgets full again dropped with each take, at most.
pub(crate) const FULL_BUDGETS_DROPPED: i64 = 100;

/// Action of the audit row written when an account is made (no case).
pub const ACCOUNT_CREATED: &str = "account.created";
/// Action of the audit row written when an account's register entry is set (no case).
pub const OFFICER_REGISTERED: &str = "account.officer_registered";
/// Action of the audit row written when an account's role, password or standing is
/// changed (no case).
pub const ACCOUNT_CHANGED: &str = "account.changed";

/// What changes of an account: by an admin (role, password, disabled), or its own
/// password by its holder. `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub role: Option<kozomol_core::Role>,
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
    /// Only while the account's password is still this hash (its holder changing it,
    /// checked against the current one): an admin's reset meanwhile wins.
    pub password_was: Option<String>,
}

/// The answer to `change_account`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountChanged {
    Changed(Account),
    NoAccount,
    /// Refused: no admin account in use would be left to manage the others.
    LastAdmin,
    /// Refused: the password is no longer the one `password_was` names, or the
    /// account was disabled meanwhile.
    PasswordChangedMeanwhile,
}

/// The account a token or session is for, as its caller checked it: stored only while
/// the account still has this password and is enabled. A password changed or the
/// account disabled between the check and the write (which ends every token and
/// session) must not leave one made on the old password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedAccount<'a> {
    pub id: crate::AccountId,
    pub password_hash: &'a str,
}

/// What storing a token or session did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialStored {
    Stored,
    /// The account's password changed, or it was disabled or removed, since it was
    /// checked: nothing stored.
    AccountChanged,
}

/// What an insert of a checked account's token or session that wrote `rows` did.
pub(crate) fn credential_stored(rows: u64) -> CredentialStored {
    if rows == 0 {
        CredentialStored::AccountChanged
    } else {
        CredentialStored::Stored
    }
}

impl AccountChange {
    /// Whether `account` no longer stands as this change was checked against: another
    /// password, or disabled meanwhile.
    pub(crate) fn stale_for(&self, account: &Account) -> bool {
        self.password_was
            .as_deref()
            .is_some_and(|was| was != account.password_hash || account.disabled)
    }

    /// Whether the account's tokens and sessions end with the change: a new password
    /// (the old one may be known to someone) or the account disabled.
    pub(crate) fn ends_access(&self) -> bool {
        self.password_hash.is_some() || self.disabled == Some(true)
    }

    /// Whether `account`, an admin in use, stops being one.
    pub(crate) fn leaves_admins(&self, account: &Account) -> bool {
        account.role == kozomol_core::Role::Admin
            && !account.disabled
            && (self.role.is_some_and(|r| r != kozomol_core::Role::Admin)
                || self.disabled == Some(true))
    }
}

pub(crate) fn changed_detail(login: &str, change: &AccountChange) -> String {
    serde_json::json!({
        "login": login,
        "role": change.role.map(kozomol_core::Role::as_str),
        "disabled": change.disabled,
        "password_changed": change.password_hash.is_some(),
    })
    .to_string()
}

/// The columns `account_from_row` reads, in both backends. A macro because `query()`
/// takes only `&'static str`.
macro_rules! account_columns {
    () => {
        "id, login, role, password_hash, full_name, badge, disabled_at"
    };
}
pub(crate) use account_columns;

/// An entry needs both parts: a resolution names an officer by both.
pub(crate) fn check_officer(officer: &OfficerIdentity) -> Result<(), StoreError> {
    if officer.full_name.trim().is_empty() || officer.badge.trim().is_empty() {
        return Err(StoreError::Invalid(
            "an officer's register entry needs a full name and a badge number".into(),
        ));
    }
    Ok(())
}

/// The register entry of a stored row; half an entry is not one.
pub(crate) fn officer_of(
    full_name: Option<String>,
    badge: Option<String>,
) -> Result<Option<OfficerIdentity>, StoreError> {
    match (full_name, badge) {
        (Some(full_name), Some(badge)) => Ok(Some(OfficerIdentity { full_name, badge })),
        (None, None) => Ok(None),
        _ => Err(StoreError::Corrupt(
            "an account has half an officer's register entry".into(),
        )),
    }
}

pub(crate) fn created_detail(account: &NewAccount) -> String {
    serde_json::json!({
        "login": account.login,
        "role": account.role.as_str(),
        "officer": account.officer,
    })
    .to_string()
}

pub(crate) fn registered_detail(login: &str, officer: &OfficerIdentity) -> String {
    serde_json::json!({ "login": login, "officer": officer }).to_string()
}

/// Conflict wording for a login or badge already taken (the index does not say which).
pub(crate) fn taken(login: &str, officer: Option<&OfficerIdentity>) -> String {
    match officer {
        Some(o) => format!("account `{login}` or badge `{}`", o.badge),
        None => format!("account `{login}`"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_past_max_within_any_window() {
        let five_a_minute = Allowance {
            max: 5,
            window: Duration::from_secs(60),
        };
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        // (seconds after t0, allowed?, wait in seconds when refused)
        let steps: [(i64, bool, u64); 9] = [
            (0, true, 0),
            (1, true, 0),
            (2, true, 0),
            (3, true, 0),
            (4, true, 0),
            (30, false, 30),
            (59, false, 1),
            (60, true, 0),
            (61, true, 0),
        ];
        let mut taken = Vec::new();
        for (s, allowed, wait) in steps {
            let (kept, verdict) = five_a_minute.take(taken, at(s));
            match verdict {
                Ok(()) => assert!(allowed, "at {s} s: allowed"),
                Err(w) => {
                    assert!(!allowed, "at {s} s: refused");
                    assert_eq!(w.as_secs(), wait, "at {s} s");
                }
            }
            taken = kept;
        }
        // 60 and 61 taken; 2, 3, 4 still within the window at 61.
        assert_eq!(taken.len(), 5);
        let (_, sixth) = five_a_minute.take(taken.clone(), at(61));
        assert_eq!(sixth, Err(Duration::from_secs(1)));
        assert_eq!(attempts_of(&attempts_text(&taken)).unwrap(), taken);
        assert!(attempts_of("").unwrap().is_empty());
        assert!(attempts_of("12,x").is_err());
        assert_eq!(five_a_minute.full_at(at(61)), at(121));
        // Attempts a clock ahead of ours put in the future: refused, a window at most.
        let ahead = vec![at(100); 5];
        assert_eq!(
            five_a_minute.take(ahead, at(50)).1,
            Err(Duration::from_secs(60))
        );
        assert_ne!(
            allowance_key("plate:01KG123ABC"),
            allowance_key("login:01KG123ABC")
        );
    }
}
