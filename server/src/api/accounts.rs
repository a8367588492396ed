//! Logging in for a token, the admin's account list, and the officers' register: the
//! full name and badge number a resolution names a confirming officer by.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use kozomol_core::Role;
use kozomol_store::{
    Account, AccountChange, AccountChanged, AccountId, CheckedAccount, NewAccount, OfficerIdentity,
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::access::{AccountReaders, Admins, AnyStaff, Authorized};
use super::{json_body, ApiError, ApiState, FieldProblem};
use crate::auth::{
    decoy_password_hash, hash_password_in_pool, issue_token, valid_login, verify_password_in_pool,
    AuthError, LOGIN_ALLOWANCE,
};

#[derive(Deserialize)]
pub(crate) struct LoginRequest {
    login: String,
    password: String,
}

#[derive(Serialize)]
pub struct LoginAnswer {
    token: String,
    role: Role,
}

/// `POST /api/v1/auth/token`: a fresh bearer token for a login and password.
pub async fn login(
    State(state): State<ApiState>,
    parts: Parts,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginAnswer>, ApiError> {
    let account = check_credentials(&state, &parts, json_body(body)?).await?;
    let checked = CheckedAccount {
        id: account.id,
        password_hash: &account.password_hash,
    };
    let token = match issue_token(state.app.store.as_ref(), checked, "login").await {
        Err(AuthError::AccountChanged) => return Err(ApiError::InvalidCredentials),
        issued => issued?,
    };
    info!(login = %account.login, role = %account.role, "token issued");
    Ok(Json(LoginAnswer {
        token,
        role: account.role,
    }))
}

/// The account a login and password open, within the limit on failed attempts.
pub(crate) async fn check_credentials(
    state: &ApiState,
    parts: &Parts,
    LoginRequest { login, password }: LoginRequest,
) -> Result<Account, ApiError> {
    // A name no account can have is no login: refused before any database or hashing
    // work (and before its text reaches the log).
    if !valid_login(&login) {
        return Err(ApiError::InvalidCredentials);
    }
    let client = super::portal::client_address(parts, &state.app.trusted_proxies);
    if let Err(wait) = state.password_checks.try_acquire(&client) {
        warn!(client = %client, "login refused: too many password checks from this address");
        return Err(ApiError::TooManyAttempts {
            retry_after_s: wait.as_secs().max(1),
        });
    }
    // Counted before the password is checked, in the database every replica shares,
    // so attempts sent at once (or to several replicas) cannot all pass before the
    // first failure counts; a success gives the budget back.
    let budget = format!("login:{login}");
    if let Err(wait) = state
        .app
        .store
        .take_allowance(&budget, LOGIN_ALLOWANCE)
        .await?
    {
        warn!(login = %login, "login refused: too many failed attempts");
        return Err(ApiError::TooManyAttempts {
            retry_after_s: wait.as_secs().max(1),
        });
    }
    let account = state.app.store.account_by_login(&login).await?;
    // An unknown login is checked against a decoy hash so both failures take as long.
    let phc = match &account {
        Some(account) => account.password_hash.clone(),
        // The decoy is made by hashing once, on first use: off the executor too.
        None => tokio::task::spawn_blocking(|| decoy_password_hash().to_owned()).await?,
    };
    // The hash takes tens of milliseconds: an admin may set a new password or disable
    // the account meanwhile (ending its sessions). A token or session is stored only
    // while the account has the password checked here (`CheckedAccount`).
    let matches = verify_password_in_pool(password, phc).await?;
    match account {
        // A disabled account fails as a wrong password does: the caller learns nothing.
        Some(account) if matches && !account.disabled => {
            state.app.store.reset_allowance(&budget).await?;
            Ok(account)
        }
        _ => {
            info!(login = %login, "login failed");
            Err(ApiError::InvalidCredentials)
        }
    }
}

#[derive(Serialize)]
pub struct AccountView {
    id: AccountId,
    login: String,
    role: Role,
    /// The officers' register entry; `null` for an account without one.
    officer: Option<OfficerIdentity>,
    /// Disabled by an admin: it cannot log in, and has no tokens or sessions.
    disabled: bool,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            login: a.login,
            role: a.role,
            officer: a.officer,
            disabled: a.disabled,
        }
    }
}

#[derive(Serialize)]
pub struct AccountList {
    items: Vec<AccountView>,
}

/// `GET /api/v1/accounts`.
pub async fn list(
    _caller: Authorized<AccountReaders>,
    State(state): State<ApiState>,
) -> Result<Json<AccountList>, ApiError> {
    let accounts = state.app.store.accounts().await?;
    Ok(Json(AccountList {
        items: accounts.into_iter().map(AccountView::from).collect(),
    }))
}

#[derive(Deserialize)]
pub struct NewAccountRequest {
    login: Option<String>,
    role: Option<String>,
    password: Option<String>,
    full_name: Option<String>,
    badge: Option<String>,
}

#[derive(Deserialize)]
pub struct OfficerRequest {
    full_name: Option<String>,
    badge: Option<String>,
}

pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 256;

/// `POST /api/v1/accounts`: a new account; 409 when the login is taken.
pub async fn create(
    caller: Authorized<Admins>,
    State(state): State<ApiState>,
    body: Result<Json<NewAccountRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let login = request.login.unwrap_or_default();
    if !valid_login(&login) {
        problems.push(FieldProblem::new(
            "login",
            "must be 1-64 characters from a-z 0-9 . _ - @",
        ));
    }
    let role = role_field(request.role.as_deref().unwrap_or_default(), &mut problems);
    let password = request.password.unwrap_or_default();
    password_field("password", &password, &mut problems);
    // A reviewer or supervisor confirms violations, and resolutions name him: both
    // fields are required (and reported missing) for those roles.
    let officer = match (request.full_name, request.badge) {
        (None, None) if !role.is_some_and(Role::confirms_violations) => None,
        (full_name, badge) => officer_identity(full_name, badge, &mut problems),
    };
    let Some(role) = role.filter(|_| problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let password_hash = hash_password_in_pool(password).await?;
    let id = state
        .app
        .store
        .create_account(&NewAccount {
            login: login.clone(),
            role,
            password_hash,
            officer: officer.clone(),
            created_by: caller.account.login.clone(),
        })
        .await?;
    info!(login = %login, role = %role, by = %caller.account.login, "account created");
    Ok((
        StatusCode::CREATED,
        Json(AccountView {
            id,
            login,
            role,
            officer,
            disabled: false,
        }),
    ))
}

/// `PUT /api/v1/accounts/{login}/officer`: sets the account's entry in the officers'
/// register (an account made before the register, a name changed); 409 when the badge
/// is another officer's.
pub async fn register_officer(
    caller: Authorized<Admins>,
    State(state): State<ApiState>,
    Path(login): Path<String>,
    body: Result<Json<OfficerRequest>, JsonRejection>,
) -> Result<Json<AccountView>, ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let officer = officer_identity(request.full_name, request.badge, &mut problems);
    let Some(officer) = officer.filter(|_| problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let account = state
        .app
        .store
        .register_officer(&login, &officer, &caller.account.login)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("account `{login}`")))?;
    info!(login = %login, badge = %officer.badge, by = %caller.account.login, "officer registered");
    Ok(Json(AccountView::from(account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountChangeRequest {
    role: Option<String>,
    password: Option<String>,
    disabled: Option<bool>,
}

/// `PATCH /api/v1/accounts/{login}`: an admin changes an account's role, sets a new
/// password (one forgotten, or one that got out) or disables or enables it; a new
/// password or disabling ends the account's tokens and sessions. 409 where no admin in
/// use would be left.
pub async fn change(
    caller: Authorized<Admins>,
    State(state): State<ApiState>,
    Path(login): Path<String>,
    body: Result<Json<AccountChangeRequest>, JsonRejection>,
) -> Result<Json<AccountView>, ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let role = request
        .role
        .as_deref()
        .and_then(|role| role_field(role, &mut problems));
    if let Some(password) = &request.password {
        password_field("password", password, &mut problems);
    }
    if request.role.is_none() && request.password.is_none() && request.disabled.is_none() {
        problems.push(FieldProblem::new(
            "body",
            "name at least one of role, password, disabled",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    // A reviewer or supervisor confirms violations, and resolutions name him from the
    // officers' register: the entry comes first.
    if let Some(role) = role.filter(|r| r.confirms_violations()) {
        let account = state
            .app
            .store
            .account_by_login(&login)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("account `{login}`")))?;
        if account.officer.is_none() {
            return Err(ApiError::Validation(vec![FieldProblem::new(
                "role",
                format!(
                    "a {role} needs an entry in the officers' register: set its full name \
                     and badge first (PUT /api/v1/accounts/{login}/officer)"
                ),
            )]));
        }
    }
    let password_hash = match request.password {
        Some(password) => Some(hash_password_in_pool(password).await?),
        None => None,
    };
    let change = AccountChange {
        role,
        password_hash,
        disabled: request.disabled,
        // An admin's word stands whatever the password was.
        password_was: None,
    };
    let account = changed(&state, &login, &change, &caller.account.login).await?;
    info!(login = %login, by = %caller.account.login, "account changed");
    Ok(Json(AccountView::from(account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// `PUT /api/v1/auth/password`: the caller's own new password, given the current one
/// (counted as a login's attempts are); every token and session of the account ends
/// with it, this one too.
pub async fn change_password(
    caller: Authorized<AnyStaff>,
    State(state): State<ApiState>,
    parts: Parts,
    body: Result<Json<PasswordChangeRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let request = json_body(body)?;
    let mut problems = Vec::new();
    let new_password = request.new_password.unwrap_or_default();
    password_field("new_password", &new_password, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let login = caller.account.login.clone();
    let checked = check_credentials(
        &state,
        &parts,
        LoginRequest {
            login: login.clone(),
            password: request.current_password.unwrap_or_default(),
        },
    )
    .await?;
    // Set only over the password just checked: an admin's reset meanwhile (of one
    // that got out) is not undone by whoever still held the old one.
    let change = AccountChange {
        password_hash: Some(hash_password_in_pool(new_password).await?),
        password_was: Some(checked.password_hash),
        ..AccountChange::default()
    };
    changed(&state, &login, &change, &login).await?;
    info!(login = %login, "password changed by its holder");
    Ok(StatusCode::NO_CONTENT)
}

async fn changed(
    state: &ApiState,
    login: &str,
    change: &AccountChange,
    by: &str,
) -> Result<Account, ApiError> {
    match state.app.store.change_account(login, change, by).await? {
        AccountChanged::Changed(account) => Ok(account),
        AccountChanged::NoAccount => Err(ApiError::NotFound(format!("account `{login}`"))),
        AccountChanged::PasswordChangedMeanwhile => Err(ApiError::InvalidCredentials),
        AccountChanged::LastAdmin => Err(ApiError::Conflict(format!(
            "`{login}` is the last admin in use: make or enable another first"
        ))),
    }
}

fn role_field(raw: &str, problems: &mut Vec<FieldProblem>) -> Option<Role> {
    match raw.parse::<Role>() {
        Ok(role) => Some(role),
        Err(_) => {
            problems.push(FieldProblem::new(
                "role",
                "must be one of reviewer, supervisor, finance, admin, auditor",
            ));
            None
        }
    }
}

fn password_field(field: &str, password: &str, problems: &mut Vec<FieldProblem>) {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        problems.push(FieldProblem::new(
            field,
            format!("must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters"),
        ));
    }
}

const MAX_NAME_CHARS: usize = 120;
const MAX_BADGE_CHARS: usize = 32;

/// A register entry from its two fields, both required, with a problem for each that is
/// missing or malformed. Names are kept as written, trimmed; a badge is upper-cased.
fn officer_identity(
    full_name: Option<String>,
    badge: Option<String>,
    problems: &mut Vec<FieldProblem>,
) -> Option<OfficerIdentity> {
    let full_name = full_name.unwrap_or_default().trim().to_owned();
    let name_chars = full_name.chars().count();
    let name_ok = (2..=MAX_NAME_CHARS).contains(&name_chars)
        && full_name
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '.' | '\''));
    if !name_ok {
        problems.push(FieldProblem::new(
            "full_name",
            format!("must be 2-{MAX_NAME_CHARS} letters, spaces, hyphens, dots or apostrophes"),
        ));
    }
    let badge = badge.unwrap_or_default().trim().to_uppercase();
    let badge_ok = (1..=MAX_BADGE_CHARS).contains(&badge.len())
        && badge
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'-' | b'/'));
    if !badge_ok {
        problems.push(FieldProblem::new(
            "badge",
            format!("must be 1-{MAX_BADGE_CHARS} characters from A-Z 0-9 - /"),
        ));
    }
    (name_ok && badge_ok).then_some(OfficerIdentity { full_name, badge })
}
