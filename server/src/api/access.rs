//! Who may call what: the bearer-token extractor and the role policies each handler
//! names in its signature. The matrix is written out in docs/api.md.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use kozomol_core::Role;
use kozomol_store::Account;

use super::{ApiError, ApiState};
use crate::auth::account_for_token;

/// A set of roles allowed on a route.
pub trait Policy {
    const ROLES: &'static [Role];
}

/// Every staff role.
pub struct AnyStaff;
impl Policy for AnyStaff {
    const ROLES: &'static [Role] = &Role::ALL;
}

/// Cases, their evidence and audit trail.
pub struct CaseReaders;
impl Policy for CaseReaders {
    const ROLES: &'static [Role] = &[Role::Reviewer, Role::Supervisor, Role::Admin, Role::Auditor];
}

/// Review decisions: reviewers decide first, supervisors settle.
pub struct Reviewers;
impl Policy for Reviewers {
    const ROLES: &'static [Role] = &[Role::Reviewer, Role::Supervisor];
}

/// Officers at a desk: taking in an appeal for a citizen, a contact they leave, a
/// proof of delivery that comes back on paper.
pub struct DeskOfficers;
impl Policy for DeskOfficers {
    const ROLES: &'static [Role] = &[Role::Reviewer, Role::Supervisor, Role::Admin];
}

/// Deciding appeals: the resolution stands or is annulled.
pub struct Supervisors;
impl Policy for Supervisors {
    const ROLES: &'static [Role] = &[Role::Supervisor];
}

/// Voiding every case of a device over a time range.
pub struct Voiders;
impl Policy for Voiders {
    const ROLES: &'static [Role] = &[Role::Supervisor, Role::Admin];
}

/// Keeping the checks' lists: exemptions and the hot list.
pub struct ListKeepers;
impl Policy for ListKeepers {
    const ROLES: &'static [Role] = &[Role::Supervisor, Role::Admin];
}

/// Money taken in: bank statements imported, queued credits resolved.
pub struct Finance;
impl Policy for Finance {
    const ROLES: &'static [Role] = &[Role::Finance];
}

/// Money owed back and money taken in: refund requests, callbacks, statements, totals.
pub struct FinanceReaders;
impl Policy for FinanceReaders {
    const ROLES: &'static [Role] = &[Role::Finance, Role::Admin, Role::Auditor];
}

/// Refused camera messages and their raw bytes.
pub struct DeadLetterReaders;
impl Policy for DeadLetterReaders {
    const ROLES: &'static [Role] = &[Role::Supervisor, Role::Admin, Role::Auditor];
}

/// The list of accounts.
pub struct AccountReaders;
impl Policy for AccountReaders {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Auditor];
}

/// Changes to accounts, the device register and camera config.
pub struct Admins;
impl Policy for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// The caller, authenticated by bearer token and holding a role `P` allows.
pub struct Authorized<P> {
    pub account: Account,
    policy: PhantomData<P>,
}

impl<P: Policy + Send + Sync> FromRequestParts<ApiState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthenticated)?;
        let account = account_for_token(state.app.store.as_ref(), token)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if !P::ROLES.contains(&account.role) {
            return Err(ApiError::Forbidden { role: account.role });
        }
        Ok(Authorized {
            account,
            policy: PhantomData,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme without case).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
