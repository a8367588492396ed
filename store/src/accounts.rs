//! Accounts and the officers' register, shared by both backends: the columns an account
//! is read from, the register entry's decoding and the audit rows of both changes.
//! Who may hold which role, and what makes a login or a name valid, is the API's.

use crate::{NewAccount, OfficerIdentity, StoreError};

/// Action of the audit row written when an account is made (no case).
pub const ACCOUNT_CREATED: &str = "account.created";
/// Action of the audit row written when an account's register entry is set (no case).
pub const OFFICER_REGISTERED: &str = "account.officer_registered";

/// The columns `account_from_row` reads, in both backends. A macro because `query()`
/// takes only `&'static str`.
macro_rules! account_columns {
    () => {
        "id, login, role, password_hash, full_name, badge"
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
