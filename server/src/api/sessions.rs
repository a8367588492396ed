//! Console logins: a browser session in an HttpOnly cookie (its id's hash kept in the
//! store), the anti-forgery token the page sends back with each change, logging out.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kozomol_core::Role;
use kozomol_store::Account;
use serde::Serialize;
use tracing::info;

use super::access::{caller, session_cookie};
use super::accounts::{check_credentials, LoginRequest};
use super::{json_body, ApiError, ApiState};
use crate::auth::{csrf_token, ApiToken, SESSION_COOKIE, SESSION_LIFETIME};

/// What the console's pages know of their session.
#[derive(Serialize)]
pub struct SessionView {
    login: String,
    role: Role,
    /// Sent back as `X-CSRF-Token` with every change made in this session.
    csrf_token: String,
}

impl SessionView {
    fn new(account: &Account, session: &ApiToken) -> Self {
        SessionView {
            login: account.login.clone(),
            role: account.role,
            csrf_token: csrf_token(session),
        }
    }
}

/// `POST /api/v1/auth/session`: logs in and sets the session cookie. JSON only, so a
/// form on another site cannot log a browser in under someone else's account.
pub async fn open(
    State(state): State<ApiState>,
    parts: Parts,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let account = check_credentials(&state, &parts, json_body(body)?).await?;
    let (view, cookie) = begin_session(&state, &account).await?;
    let mut response = Json(view).into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// A new console session for `account` (whose login was proven by password or by the
/// identity provider): what its pages know of it and its `Set-Cookie`.
pub(crate) async fn begin_session(
    state: &ApiState,
    account: &Account,
) -> Result<(SessionView, HeaderValue), ApiError> {
    let session = ApiToken::generate().map_err(|e| ApiError::Internal(e.to_string()))?;
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(SESSION_LIFETIME)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let checked = kozomol_store::CheckedAccount {
        id: account.id,
        password_hash: &account.password_hash,
    };
    // Its password changed or it was disabled since it was checked: no session.
    if let kozomol_store::CredentialStored::AccountChanged = state
        .app
        .store
        .open_web_session(checked, &session.sha256(), expires)
        .await?
    {
        return Err(ApiError::InvalidCredentials);
    }
    info!(login = %account.login, role = %account.role, "console session opened");
    let cookie = session_cookie_header(state, &session.reveal(), SESSION_LIFETIME.as_secs())?;
    Ok((SessionView::new(account, &session), cookie))
}

/// `GET /api/v1/auth/session`: who is logged in, with the anti-forgery token.
pub async fn show(
    State(state): State<ApiState>,
    parts: Parts,
) -> Result<Json<SessionView>, ApiError> {
    let session = session_cookie(&parts.headers).ok_or(ApiError::Unauthenticated)?;
    let account = caller(&parts, &state)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Json(SessionView::new(&account, &session)))
}

/// `DELETE /api/v1/auth/session`: logs out (the anti-forgery token is required of a
/// live session, so another site cannot log an officer out mid-review) and clears the
/// cookie; a session already expired or ended elsewhere (a password changed) has its
/// cookie cleared all the same.
pub async fn close(State(state): State<ApiState>, parts: Parts) -> Result<Response, ApiError> {
    let session = session_cookie(&parts.headers).ok_or(ApiError::Unauthenticated)?;
    match caller(&parts, &state).await? {
        Some(account) => {
            state.app.store.close_web_session(&session.sha256()).await?;
            info!(login = %account.login, "console session closed");
        }
        None => info!("an ended console session's cookie cleared"),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie_header(&state, "", 0)?);
    Ok(response)
}

/// `Set-Cookie` for the session: SameSite=Strict, so no other site's request carries it.
fn session_cookie_header(
    state: &ApiState,
    value: &str,
    max_age_s: u64,
) -> Result<HeaderValue, ApiError> {
    cookie_header(state, (SESSION_COOKIE, value), "/", max_age_s, "Strict")
}

/// `Set-Cookie` for one of kozomol's own cookies: HttpOnly (no script reads it), and
/// Secure wherever kozomol is served over HTTPS.
pub(crate) fn cookie_header(
    state: &ApiState,
    (name, value): (&str, &str),
    path: &str,
    max_age_s: u64,
    same_site: &str,
) -> Result<HeaderValue, ApiError> {
    let secure = if state.app.public_base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))
}
