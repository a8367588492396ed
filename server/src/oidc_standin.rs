//! A stand-in for a city's identity provider, for the tests and the demo only (the
//! city's own cannot run here). It speaks OpenID Connect as a provider does: a
//! discovery document, the authorization endpoint with its login form, the token
//! endpoint (client_secret_basic, authorization codes used once, PKCE S256 checked)
//! and ID tokens signed with Ed25519 (`EdDSA`) under a key its JWKS publishes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::escape_html;

/// The id its one signing key is published under.
const KEY_ID: &str = "standin-1";
/// How long an authorization code may wait to be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Its one client (kozomol) and the people who may log in.
#[derive(Clone, Debug)]
pub struct IdentityProviderConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The only address it sends people back to.
    pub redirect_uri: String,
    /// (login, password).
    pub users: Vec<(String, String)>,
}

/// A running stand-in; it stops when dropped.
pub struct IdentityProvider {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A code handed out and not yet exchanged.
struct Grant {
    login: String,
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    issued: Instant,
}

#[derive(Clone)]
struct Provider {
    config: Arc<IdentityProviderConfig>,
    issuer: String,
    key: Arc<SigningKey>,
    codes: Arc<Mutex<HashMap<String, Grant>>>,
}

impl IdentityProvider {
    /// Starts on a free port of 127.0.0.1 with a fresh signing key.
    pub async fn start(config: IdentityProviderConfig) -> std::io::Result<IdentityProvider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(std::io::Error::other)?;
        let provider = Provider {
            config: Arc::new(config),
            issuer: format!("http://{addr}"),
            key: Arc::new(SigningKey::from_bytes(&seed)),
            codes: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(login_form).post(log_in))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(provider);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(IdentityProvider { addr, task })
    }

    /// The issuer kozomol's `[oidc] issuer` names.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn discovery(State(p): State<Provider>) -> Json<serde_json::Value> {
    Json(json!({
        "issuer": p.issuer,
        "authorization_endpoint": format!("{}/authorize", p.issuer),
        "token_endpoint": format!("{}/token", p.issuer),
        "jwks_uri": format!("{}/jwks", p.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(p): State<Provider>) -> Json<serde_json::Value> {
    Json(json!({ "keys": [{
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
        "kid": KEY_ID,
        "x": URL_SAFE_NO_PAD.encode(p.key.verifying_key().as_bytes()),
    }] }))
}

/// The authorization request's parameters, carried through the login form.
#[derive(Clone, Deserialize)]
struct AuthorizationRequest {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl AuthorizationRequest {
    /// Why the request cannot be served; an unknown client or redirect is answered
    /// here, never by sending the browser to an address nobody registered.
    fn problem(&self, config: &IdentityProviderConfig) -> Option<&'static str> {
        if self.client_id.as_deref() != Some(config.client_id.as_str()) {
            return Some("unknown client_id");
        }
        if self.redirect_uri.as_deref() != Some(config.redirect_uri.as_str()) {
            return Some("redirect_uri is not the one registered");
        }
        if self.response_type.as_deref() != Some("code") {
            return Some("response_type must be code");
        }
        if !self
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .any(|s| s == "openid")
        {
            return Some("scope must include openid");
        }
        if self.code_challenge_method.as_deref() != Some("S256")
            || self.code_challenge.as_deref().unwrap_or("").is_empty()
        {
            return Some("PKCE with S256 is required");
        }
        None
    }

    fn hidden_fields(&self) -> String {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ]
        .iter()
        .filter_map(|(name, value)| {
            value.as_ref().map(|v| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    escape_html(v)
                )
            })
        })
        .collect()
    }
}

fn form_page(request: &AuthorizationRequest, problem: Option<&str>) -> Response {
    let problem = problem
        .map(|p| {
            format!(
                "<p role=\"alert\" id=\"idp-problem\">{}</p>",
                escape_html(p)
            )
        })
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>City ID (stand-in)</title>\
         <h1>City ID — stand-in identity provider</h1>{problem}\
         <form method=\"post\" action=\"/authorize\" id=\"idp-login\">{}\
         <label for=\"idp-username\">Login</label><input id=\"idp-username\" name=\"username\" autocomplete=\"username\">\
         <label for=\"idp-password\">Password</label><input id=\"idp-password\" name=\"password\" type=\"password\">\
         <button type=\"submit\">Log in</button></form></html>",
        request.hidden_fields()
    ))
    .into_response()
}

/// `GET /authorize`: the login form.
async fn login_form(
    State(p): State<Provider>,
    Query(request): Query<AuthorizationRequest>,
) -> Response {
    match request.problem(&p.config) {
        Some(problem) => (StatusCode::BAD_REQUEST, problem).into_response(),
        None => form_page(&request, None),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(flatten)]
    request: AuthorizationRequest,
}

/// `POST /authorize`: the person logs in; back to the client with a code.
async fn log_in(State(p): State<Provider>, Form(form): Form<LoginForm>) -> Response {
    if let Some(problem) = form.request.problem(&p.config) {
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    let known = p
        .config
        .users
        .iter()
        .any(|(login, password)| *login == form.username && *password == form.password);
    if !known {
        return form_page(&form.request, Some("Wrong login or password."));
    }
    let mut bytes = [0u8; 32];
    if getrandom::getrandom(&mut bytes).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let code = URL_SAFE_NO_PAD.encode(bytes);
    let redirect_uri = p.config.redirect_uri.clone();
    if let Ok(mut codes) = p.codes.lock() {
        codes.insert(
            code.clone(),
            Grant {
                login: form.username,
                nonce: form.request.nonce.clone(),
                challenge: form.request.code_challenge.clone().unwrap_or_default(),
                redirect_uri: redirect_uri.clone(),
                issued: Instant::now(),
            },
        );
    }
    let mut params = vec![("code", code)];
    if let Some(state) = form.request.state {
        params.push(("state", state));
    }
    match reqwest::Url::parse_with_params(&redirect_uri, &params) {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// Whether the request authenticates as the client (`client_secret_basic`).
fn client_authenticated(headers: &HeaderMap, config: &IdentityProviderConfig) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Some(decoded) = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return false;
    };
    decoded.split_once(':') == Some((config.client_id.as_str(), config.client_secret.as_str()))
}

/// `POST /token`: a code, once, for an ID token.
async fn token(
    State(p): State<Provider>,
    headers: HeaderMap,
    Form(request): Form<TokenRequest>,
) -> Response {
    if !client_authenticated(&headers, &p.config) {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    if request.grant_type != "authorization_code" {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "authorization_code only",
        );
    }
    let grant = p
        .codes
        .lock()
        .ok()
        .and_then(|mut c| c.remove(&request.code));
    let Some(grant) = grant.filter(|g| g.issued.elapsed() < CODE_LIFETIME) else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown, used or expired code",
        );
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(request.code_verifier.as_bytes()));
    if grant.redirect_uri != request.redirect_uri || challenge != grant.challenge {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri or code_verifier does not match",
        );
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": p.issuer,
        "sub": grant.login,
        "aud": p.config.client_id,
        "iat": now,
        "exp": now + 300,
        "preferred_username": grant.login,
    });
    if let Some(nonce) = grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": KEY_ID });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = p.key.sign(signed.as_bytes());
    let id_token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Json(json!({
        "access_token": URL_SAFE_NO_PAD.encode(Sha256::digest(id_token.as_bytes())),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}
