//! Who may call what: the caller's extractor (bearer token or console session with its
//! anti-forgery token) and the role policies each handler names in its signature. The matrix is written out in docs/api.md.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use kozomol_core::Role;
use kozomol_store::Account;

use super::{ApiError, ApiState};
use crate::auth::{account_for_token, csrf_token, ApiToken, SESSION_COOKIE};

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

/// The caller, authenticated by bearer token or by a console session, and holding a
/// role `P` allows. A session's requests that change anything (every method but GET,
/// HEAD and OPTIONS) must also carry its anti-forgery token in `X-CSRF-Token`.
pub struct Authorized<P> {
    pub account: Account,
    policy: PhantomData<P>,
}

/// The header a console page sends its session's anti-forgery token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

impl<P: Policy + Send + Sync> FromRequestParts<ApiState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let account = caller(parts, state)
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

/// The account behind a request: a bearer token wins over a session cookie; `None`
/// when neither is present or valid.
pub(crate) async fn caller(parts: &Parts, state: &ApiState) -> Result<Option<Account>, ApiError> {
    if let Some(header) = parts.headers.get(AUTHORIZATION) {
        let token = header
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthenticated)?;
        return Ok(account_for_token(state.app.store.as_ref(), token).await?);
    }
    let Some(session) = session_cookie(&parts.headers) else {
        return Ok(None);
    };
    let Some(account) = state
        .app
        .store
        .account_by_web_session(&session.sha256(), chrono::Utc::now())
        .await?
    else {
        return Ok(None);
    };
    if !parts.method.is_safe() {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), csrf_token(&session).as_bytes()) {
            return Err(ApiError::CsrfRejected);
        }
    }
    Ok(Some(account))
}

/// The session id in the request's cookies, if one is well-formed.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<ApiToken> {
    cookie(headers, SESSION_COOKIE).and_then(ApiToken::parse)
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
}

/// Whether two secrets are equal, in time that does not tell how much of them matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    #[test]
    fn session_cookies() {
        let token = ApiToken::generate().expect("token");
        let text = token.reveal();
        for (header, found) in [
            (format!("kozomol_session={text}"), true),
            (format!("lang=ky; kozomol_session={text}; x=1"), true),
            (format!("other_session={text}"), false),
            ("kozomol_session=garbage".to_owned(), false),
            ("kozomol_session".to_owned(), false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, header.parse().expect("header"));
            let got = session_cookie(&headers).map(|t| t.sha256());
            assert_eq!(got, found.then(|| token.sha256()), "{header}");
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
