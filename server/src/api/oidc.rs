//! Console logins through the city's identity provider, for cities that run one
//! (`[oidc]`): OpenID Connect's authorization code flow with PKCE. The provider proves
//! who the officer is; kozomol's own account of the same login says what they may do,
//! so roles stay where admins manage them and an account disabled here cannot log in.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::access::constant_time_eq;
use super::sessions::{begin_session, cookie_header};
use super::{ApiError, ApiState};
use crate::settings::OidcSettings;

/// Holds the flow's state, nonce and PKCE verifier between leaving for the provider
/// and coming back; SameSite=Lax, since the way back is a navigation from its site.
const FLOW_COOKIE: &str = "kozomol_oidc";
const FLOW_LIFETIME_S: u64 = 600;
/// Where the provider sends the officer back (registered with it as the redirect URI).
pub const CALLBACK_PATH: &str = "/console/oidc/callback";

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider at {url}: {detail}")]
    Provider { url: String, detail: String },
    #[error("the provider's ID token: {0}")]
    IdToken(String),
    #[error("the login came back without its flow (state) or with another one")]
    Flow,
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("no kozomol account has the login `{0}`")]
    NoAccount(String),
}

/// The provider's endpoints, from its discovery document.
#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// kozomol as the provider's client (relying party).
pub struct OidcClient {
    settings: OidcSettings,
    http: reqwest::Client,
    discovery: tokio::sync::OnceCell<Discovery>,
}

impl OidcClient {
    pub fn new(settings: OidcSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        OidcClient {
            settings,
            http,
            discovery: tokio::sync::OnceCell::new(),
        }
    }

    /// The name the login page offers the provider under.
    pub fn display_name(&self) -> &str {
        &self.settings.display_name
    }

    async fn discovery(&self) -> Result<&Discovery, OidcError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let found: Discovery = self.fetch_json(&url).await?;
                // The document must speak for the issuer configured (OpenID Connect
                // Discovery 4.3): another one's tokens would not be ours to trust.
                if found.issuer != self.settings.issuer {
                    return Err(OidcError::Provider {
                        url,
                        detail: format!("names the issuer `{}`", found.issuer),
                    });
                }
                Ok(found)
            })
            .await
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let provider = |detail: String| OidcError::Provider {
            url: url.to_owned(),
            detail,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| provider(e.to_string()))?;
        if !response.status().is_success() {
            return Err(provider(format!("HTTP {}", response.status())));
        }
        response.json().await.map_err(|e| provider(e.to_string()))
    }

    /// The login that `code` proves, checked end to end: the token endpoint's answer,
    /// the ID token's signature (a key from the provider's JWKS, never a shared secret),
    /// issuer, audience, expiry and the flow's nonce.
    async fn login_of(
        &self,
        code: &str,
        flow: &Flow,
        redirect_uri: &str,
    ) -> Result<String, OidcError> {
        let discovery = self.discovery().await?;
        let token_url = &discovery.token_endpoint;
        let provider = |detail: String| OidcError::Provider {
            url: token_url.clone(),
            detail,
        };
        let response = self
            .http
            .post(token_url)
            .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", &flow.verifier),
            ])
            .send()
            .await
            .map_err(|e| provider(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(provider(format!("HTTP {status}: {}", truncate(&body))));
        }
        let tokens: TokenAnswer = response.json().await.map_err(|e| provider(e.to_string()))?;
        let header = jsonwebtoken::decode_header(&tokens.id_token)
            .map_err(|e| OidcError::IdToken(e.to_string()))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(OidcError::IdToken(format!(
                "signed with {:?}; only the provider's published keys are trusted",
                header.alg
            )));
        }
        let keys: JwkSet = self.fetch_json(&discovery.jwks_uri).await?;
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        }
        .ok_or_else(|| {
            OidcError::IdToken("signed with a key the provider does not publish".into())
        })?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| OidcError::IdToken(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&discovery.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            &tokens.id_token,
            &key,
            &validation,
        )
        .map_err(|e| OidcError::IdToken(e.to_string()))?
        .claims;
        let nonce = claims
            .get("nonce")
            .and_then(|v| v.as_str())
            .ok_or_else(|| OidcError::IdToken("no nonce".into()))?;
        if !constant_time_eq(nonce.as_bytes(), flow.nonce.as_bytes()) {
            return Err(OidcError::IdToken("its nonce is not this login's".into()));
        }
        // A token for several audiences must name kozomol as the party it was issued to
        // (OpenID Connect Core 3.1.3.7).
        if claims
            .get("aud")
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.len() > 1)
            && claims.get("azp").and_then(|v| v.as_str()) != Some(self.settings.client_id.as_str())
        {
            return Err(OidcError::IdToken("issued to another party (azp)".into()));
        }
        login_in(&claims, &self.settings.login_claim)
    }
}

/// The kozomol login `claims` name in `claim`. An e-mail address counts only once the
/// provider has verified it: anyone may type one in.
fn login_in(
    claims: &serde_json::Map<String, serde_json::Value>,
    claim: &str,
) -> Result<String, OidcError> {
    if claim == "email" && claims.get("email_verified").and_then(|v| v.as_bool()) != Some(true) {
        return Err(OidcError::IdToken(
            "its e-mail address is not verified".into(),
        ));
    }
    claims
        .get(claim)
        .and_then(|v| v.as_str())
        .filter(|login| !login.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| OidcError::IdToken(format!("no `{claim}` claim")))
}

/// Signature algorithms an ID token may use: the provider's private key, our copy of
/// its public half.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}

/// One login's secrets, kept in the flow cookie: `state.nonce.verifier`.
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
}

impl Flow {
    fn new() -> Result<Self, ApiError> {
        let random = || {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes)
                .map(|()| URL_SAFE_NO_PAD.encode(bytes))
                .map_err(|e| ApiError::Internal(e.to_string()))
        };
        Ok(Flow {
            state: random()?,
            nonce: random()?,
            verifier: random()?,
        })
    }

    fn cookie_value(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    /// The flow in the request's cookie: three parts of 32 random bytes each, nothing
    /// shorter (an empty state or nonce would match an empty answer).
    fn from_cookies(headers: &HeaderMap) -> Option<Self> {
        let value = super::access::cookie(headers, FLOW_COOKIE)?;
        let parts: Vec<&str> = value.split('.').collect();
        let well_formed = |part: &&str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .is_ok_and(|bytes| bytes.len() == 32)
        };
        match parts.as_slice() {
            [state, nonce, verifier] if parts.iter().all(well_formed) => Some(Flow {
                state: (*state).to_owned(),
                nonce: (*nonce).to_owned(),
                verifier: (*verifier).to_owned(),
            }),
            _ => None,
        }
    }

    /// PKCE's S256 challenge.
    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

fn flow_cookie(state: &ApiState, value: &str, max_age_s: u64) -> Result<HeaderValue, ApiError> {
    cookie_header(
        state,
        (FLOW_COOKIE, value),
        "/console/oidc",
        max_age_s,
        "Lax",
    )
}

fn client(state: &ApiState) -> Result<&OidcClient, ApiError> {
    state
        .app
        .oidc
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("an identity provider (none is configured)".into()))
}

/// `GET /console/oidc/login`: off to the identity provider.
pub async fn start(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let oidc = client(&state)?;
    let discovery = match oidc.discovery().await {
        Ok(discovery) => discovery,
        Err(e) => return failed(&state, &e.to_string()),
    };
    let flow = Flow::new()?;
    let redirect_uri = state.app.link(CALLBACK_PATH);
    let target = reqwest::Url::parse_with_params(
        &discovery.authorization_endpoint,
        [
            ("response_type", "code"),
            ("client_id", oidc.settings.client_id.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "openid profile"),
            ("state", flow.state.as_str()),
            ("nonce", flow.nonce.as_str()),
            ("code_challenge", flow.challenge().as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .map_err(|e| ApiError::Internal(format!("authorization endpoint: {e}")))?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(target.as_str()).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    headers.insert(
        SET_COOKIE,
        flow_cookie(&state, &flow.cookie_value(), FLOW_LIFETIME_S)?,
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /console/oidc/callback`: back from the provider. A login that fails for any
/// reason lands on the login page with a message; why is in the log.
pub async fn callback(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let oidc = client(&state)?;
    let flow = Flow::from_cookies(&headers);
    let outcome = finish(&state, oidc, flow.as_ref(), &query).await;
    let login = match outcome {
        Ok(login) => login,
        Err(e) => return failed(&state, &e.to_string()),
    };
    let account = match state.app.store.account_by_login(&login).await {
        Ok(Some(account)) if !account.disabled => account,
        // A disabled account is no account to log in to.
        Ok(_) => return failed(&state, &OidcError::NoAccount(login).to_string()),
        Err(e) => return failed(&state, &e.to_string()),
    };
    let cookie = match begin_session(&state, &account).await {
        Ok((_, cookie)) => cookie,
        Err(e) => return failed(&state, &e.to_string()),
    };
    info!(login = %account.login, "console login proven by the identity provider");
    // A page, not a redirect: the session cookie is SameSite=Strict, and a redirect
    // chain begun on the provider's site would not carry it.
    let mut response = super::pages::moving_on("/console/dashboard");
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, cookie);
    headers.append(SET_COOKIE, flow_cookie(&state, "", 0)?);
    Ok(response)
}

async fn finish(
    state: &ApiState,
    oidc: &OidcClient,
    flow: Option<&Flow>,
    query: &CallbackQuery,
) -> Result<String, OidcError> {
    if let Some(error) = &query.error {
        return Err(OidcError::Refused(format!(
            "{error}: {}",
            query.error_description.as_deref().unwrap_or("")
        )));
    }
    let (Some(flow), Some(returned), Some(code)) = (flow, &query.state, &query.code) else {
        return Err(OidcError::Flow);
    };
    if !constant_time_eq(flow.state.as_bytes(), returned.as_bytes()) {
        return Err(OidcError::Flow);
    }
    oidc.login_of(code, flow, &state.app.link(CALLBACK_PATH))
        .await
}

fn failed(state: &ApiState, why: &str) -> Result<Response, ApiError> {
    warn!(error = %why, "console login through the identity provider failed");
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        LOCATION,
        HeaderValue::from_static("/console/login?failed=oidc"),
    );
    headers.append(SET_COOKIE, flow_cookie(state, "", 0)?);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::COOKIE;
    use serde_json::json;

    #[test]
    fn logins_come_from_the_claim_named_and_e_mail_only_when_verified() {
        let claims = |value: serde_json::Value| value.as_object().cloned().expect("object");
        for (claim, token, login) in [
            ("sub", json!({"sub": "officer-1"}), Some("officer-1")),
            ("sub", json!({"sub": ""}), None),
            ("sub", json!({"preferred_username": "admin"}), None),
            (
                "preferred_username",
                json!({"preferred_username": "admin"}),
                Some("admin"),
            ),
            (
                "email",
                json!({"email": "a@example.kg", "email_verified": true}),
                Some("a@example.kg"),
            ),
            (
                "email",
                json!({"email": "a@example.kg", "email_verified": false}),
                None,
            ),
            ("email", json!({"email": "a@example.kg"}), None),
        ] {
            let found = login_in(&claims(token.clone()), claim).ok();
            assert_eq!(found.as_deref(), login, "{claim} in {token}");
        }
    }

    #[test]
    fn the_flow_cookie_holds_three_random_parts_or_nothing() {
        let part = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let short = URL_SAFE_NO_PAD.encode([7u8; 8]);
        for (value, found) in [
            (format!("{part}.{part}.{part}"), true),
            ("..".to_owned(), false),
            (format!("{part}.{part}"), false),
            (format!("{part}.{part}.{part}.{part}"), false),
            (format!("{part}.{short}.{part}"), false),
            (format!("{part}.{part}.!!"), false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                COOKIE,
                format!("{FLOW_COOKIE}={value}").parse().expect("header"),
            );
            assert_eq!(Flow::from_cookies(&headers).is_some(), found, "{value}");
        }
    }
}
