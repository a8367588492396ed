//! Accounts and access: argon2id passwords, bearer tokens and browser sessions (both
//! stored only as SHA-256) with their anti-forgery tokens, the limits on failed logins
//! and on portal requests,
//! and the demo accounts `kozomol serve --demo` creates.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kozomol_core::Role;
use kozomol_store::{
    Account, CheckedAccount, CredentialStored, NewAccount, OfficerIdentity, Store, StoreError,
};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("no system randomness: {0}")]
    Random(String),
    #[error("demo credentials file {path}: {source}")]
    CredentialsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("demo credentials file {path} is not valid: {source}")]
    CredentialsFormat {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "account `{login}` exists but its password is not in {path}; remove the account or \
         restore the file"
    )]
    DemoAccountUnknownPassword { login: String, path: PathBuf },
    #[error(
        "demo account `{login}` is disabled: enable it in the console, or remove the demo data"
    )]
    DemoAccountDisabled { login: String },
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("login `{0}` is not 1-64 characters from a-z 0-9 . _ - @")]
    InvalidLogin(String),
    /// Its password changed, or it was disabled, between the check and the write.
    #[error("the account changed since its password was checked: nothing was stored")]
    AccountChanged,
}

/// Whether `login` can name an account: 1-64 of `a-z 0-9 . _ - @`.
pub fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 64
        && login.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
        })
}

/// Hashes a password with argon2id (the crate's defaults) into a PHC string.
/// CPU-heavy by design: call it off the async executor.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string; a malformed hash never matches.
/// CPU-heavy by design: call it off the async executor.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Argon2 takes ~19 MiB and tens of milliseconds per call: at most one call per core
/// runs at a time, so a burst of logins queues instead of exhausting memory and the
/// blocking thread pool.
fn hashing_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// [`hash_password`] on the blocking pool, bounded by the hashing permits.
pub async fn hash_password_in_pool(password: String) -> Result<String, AuthError> {
    let permit = hashing_permits()
        .acquire()
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    // The permit goes with the hashing: a request dropped meanwhile (its client gone)
    // does not free it while the hash still runs.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        hash_password(&password)
    })
    .await?
}

/// [`verify_password`] on the blocking pool, bounded by the hashing permits.
pub async fn verify_password_in_pool(password: String, phc: String) -> Result<bool, AuthError> {
    let permit = hashing_permits()
        .acquire()
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        verify_password(&password, &phc)
    })
    .await?)
}

/// A hash nobody's password matches, verified against when a login is unknown so that
/// a wrong login takes as long as a wrong password.
pub fn decoy_password_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"kozomol decoy password", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// An API bearer token: 32 random bytes, shown once as `kzm_` and unpadded base64url.
/// The prefix keeps a token from starting with `-` (read as an option by command
/// lines such as `kozomol simulate --token T`) and lets secret scanners spot one.
pub struct ApiToken([u8; 32]);

const TOKEN_PREFIX: &str = "kzm_";

impl ApiToken {
    pub fn generate() -> Result<Self, AuthError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
        Ok(ApiToken(bytes))
    }

    /// Parses the text form; `None` for anything that is not 32 bytes of base64url.
    /// Tokens shown before the prefix existed are still accepted without it.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text.strip_prefix(TOKEN_PREFIX).unwrap_or(text))
            .ok()?;
        bytes.try_into().ok().map(ApiToken)
    }

    /// The text the holder sends as `Authorization: Bearer <text>`.
    pub fn reveal(&self) -> String {
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }

    /// What the store keeps.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }
}

/// Makes a new token for `account` (as its caller checked it), stores its hash and
/// returns its text; `AccountChanged` where the account changed meanwhile.
pub async fn issue_token(
    store: &dyn Store,
    account: CheckedAccount<'_>,
    label: &str,
) -> Result<String, AuthError> {
    let token = ApiToken::generate()?;
    match store.store_token(account, &token.sha256(), label).await? {
        CredentialStored::Stored => Ok(token.reveal()),
        CredentialStored::AccountChanged => Err(AuthError::AccountChanged),
    }
}

/// The account a bearer token belongs to, if any.
pub async fn account_for_token(
    store: &dyn Store,
    text: &str,
) -> Result<Option<Account>, AuthError> {
    match ApiToken::parse(text) {
        Some(token) => Ok(store.account_by_token(&token.sha256()).await?),
        None => Ok(None),
    }
}

/// The cookie a browser session's id travels in.
pub const SESSION_COOKIE: &str = "kozomol_session";

/// How long a console login lasts: a shift and some.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The anti-forgery token of a browser session: derived from its secret id, so it
/// needs no storage, and readable by the page (the id's cookie is not) — a request
/// another site makes the browser send carries the cookie but cannot know this.
pub fn csrf_token(session: &ApiToken) -> String {
    let mut digest = Sha256::new();
    digest.update(b"kozomol csrf v1\0");
    digest.update(session.0);
    hex::encode(digest.finalize())
}

/// A random password of 24 letters and digits (~142 bits).
pub fn random_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// Counts attempts per key (an address's portal requests) in a sliding window and
/// refuses more than `max_attempts` within it. In memory: each API process limits on
/// its own, which is right for a flood guard on the hot path; budgets that guard a
/// secret (failed logins per login, lookups per plate) are the database's
/// (`kozomol_store::Allowance`), shared by every replica.
pub struct AttemptLimiter {
    max_attempts: usize,
    window: Duration,
    attempts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Above this many tracked keys, stale entries are swept on the next attempt.
const LIMITER_SWEEP_ABOVE: usize = 10_000;

impl AttemptLimiter {
    pub fn new(max_attempts: usize, window: Duration) -> Self {
        AttemptLimiter {
            max_attempts,
            window,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one of `key`'s attempts if any is left in the window, else `Err(wait)`
    /// (a limit of 0 refuses nothing): the check and the count under one lock, so
    /// requests arriving together cannot all pass on the last attempt left.
    pub fn try_acquire(&self, key: &str) -> Result<(), Duration> {
        if self.max_attempts == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut attempts = self.lock();
        if let Some(times) = attempts.get_mut(key) {
            self.left(times, now)?;
        }
        self.push(&mut attempts, key, now);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` when `times` (dropping those out of the window) fill it.
    fn left(&self, times: &mut VecDeque<Instant>, now: Instant) -> Result<(), Duration> {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() < self.max_attempts {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err(self.window.saturating_sub(now.duration_since(oldest)))
    }

    fn push(&self, attempts: &mut HashMap<String, VecDeque<Instant>>, key: &str, now: Instant) {
        if attempts.len() > LIMITER_SWEEP_ABOVE {
            let window = self.window;
            attempts.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let times = attempts.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.max_attempts {
            times.pop_front();
        }
    }
}

/// Password checks a minute from one address (per process): each costs an Argon2 hash,
/// and logins under ever new names would each meet a fresh per-login budget. An office
/// behind one address logging in at a shift's start stays well below it.
pub const ADDRESS_PASSWORD_CHECKS: usize = 60;
pub const ADDRESS_PASSWORD_WINDOW: Duration = Duration::from_secs(60);

/// Five failed logins a minute per login name, shared by every API process.
pub const LOGIN_ALLOWANCE: kozomol_store::Allowance = kozomol_store::Allowance {
    max: 5,
    window: Duration::from_secs(60),
};

/// One demo account's credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoAccount {
    pub login: String,
    pub password: String,
    pub token: String,
}

/// The content of `DATA_DIR/demo-credentials.json`: one account per role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub reviewer: DemoAccount,
    pub supervisor: DemoAccount,
    pub finance: DemoAccount,
    pub admin: DemoAccount,
    pub auditor: DemoAccount,
}

impl DemoCredentials {
    pub const FILE_NAME: &'static str = "demo-credentials.json";

    pub fn for_role(&self, role: Role) -> &DemoAccount {
        match role {
            Role::Reviewer => &self.reviewer,
            Role::Supervisor => &self.supervisor,
            Role::Finance => &self.finance,
            Role::Admin => &self.admin,
            Role::Auditor => &self.auditor,
        }
    }

    fn for_role_mut(&mut self, role: Role) -> &mut DemoAccount {
        match role {
            Role::Reviewer => &mut self.reviewer,
            Role::Supervisor => &mut self.supervisor,
            Role::Finance => &mut self.finance,
            Role::Admin => &mut self.admin,
            Role::Auditor => &mut self.auditor,
        }
    }
}

const DEMO_TOKEN_LABEL: &str = "demo";
/// The audit's actor for what the demo set-up writes.
const DEMO_ACTOR: &str = "demo";

/// The demo's officers, as its resolutions name them.
fn demo_officer(role: Role) -> Option<OfficerIdentity> {
    let (full_name, badge) = match role {
        Role::Reviewer => ("Демо Рецензент", "DEMO-0001"),
        Role::Supervisor => ("Демо Супервайзер", "DEMO-0002"),
        _ => return None,
    };
    Some(OfficerIdentity {
        full_name: full_name.to_owned(),
        badge: badge.to_owned(),
    })
}

/// Makes one account per role (login = role name, random password) with a token
/// each, and writes them to `DATA_DIR/demo-credentials.json` (mode 0600).
///
/// Idempotent: accounts and tokens named in an existing file are reused; missing ones
/// are created (with the file's password when it has one). An existing account whose
/// password the file does not hold is an error, since it cannot be shown.
pub async fn create_demo_accounts(
    store: &dyn Store,
    data_dir: &Path,
) -> Result<DemoCredentials, AuthError> {
    let path = data_dir.join(DemoCredentials::FILE_NAME);
    let previous = read_credentials(&path).await?;
    let mut changed = previous.is_none();
    let mut credentials = previous.clone().unwrap_or_else(|| {
        let blank = DemoAccount {
            login: String::new(),
            password: String::new(),
            token: String::new(),
        };
        DemoCredentials {
            reviewer: blank.clone(),
            supervisor: blank.clone(),
            finance: blank.clone(),
            admin: blank.clone(),
            auditor: blank,
        }
    });

    for role in Role::ALL {
        let known = previous.as_ref().map(|p| p.for_role(role).clone());
        let login = role.as_str().to_owned();
        let entry = ensure_demo_account(store, role, &login, known, &path).await?;
        if previous.as_ref().map(|p| p.for_role(role)) != Some(&entry) {
            changed = true;
        }
        *credentials.for_role_mut(role) = entry;
    }

    if changed {
        write_credentials(&path, &credentials).await?;
        info!(path = %path.display(), "demo credentials written");
    } else {
        info!(path = %path.display(), "demo credentials reused");
    }
    Ok(credentials)
}

async fn ensure_demo_account(
    store: &dyn Store,
    role: Role,
    login: &str,
    known: Option<DemoAccount>,
    path: &Path,
) -> Result<DemoAccount, AuthError> {
    let known = known.filter(|k| k.login == login && !k.password.is_empty());
    let account = match store.account_by_login(login).await? {
        Some(account) => {
            let Some(known) = known.as_ref() else {
                return Err(AuthError::DemoAccountUnknownPassword {
                    login: login.to_owned(),
                    path: path.to_owned(),
                });
            };
            let matches =
                verify_password_in_pool(known.password.clone(), account.password_hash.clone())
                    .await?;
            if !matches || account.role != role {
                return Err(AuthError::DemoAccountUnknownPassword {
                    login: login.to_owned(),
                    path: path.to_owned(),
                });
            }
            account
        }
        None => {
            let password = known
                .as_ref()
                .map(|k| k.password.clone())
                .unwrap_or_else(random_password);
            let password_hash = hash_password_in_pool(password.clone()).await?;
            let id = store
                .create_account(&NewAccount {
                    login: login.to_owned(),
                    role,
                    password_hash: password_hash.clone(),
                    officer: demo_officer(role),
                    created_by: DEMO_ACTOR.to_owned(),
                })
                .await?;
            info!(login, role = %role, "demo account created");
            let checked = CheckedAccount {
                id,
                password_hash: &password_hash,
            };
            let token = issue_token(store, checked, DEMO_TOKEN_LABEL).await?;
            return Ok(DemoAccount {
                login: login.to_owned(),
                password,
                token,
            });
        }
    };

    // A demo data folder from before the officers' register gets its entries.
    if let (None, Some(officer)) = (&account.officer, demo_officer(role)) {
        store.register_officer(login, &officer, DEMO_ACTOR).await?;
    }
    let known = known.expect("an existing account was only accepted with known credentials");
    if account.disabled {
        return Err(AuthError::DemoAccountDisabled {
            login: login.to_owned(),
        });
    }
    let token_works = match account_for_token(store, &known.token).await? {
        Some(holder) => holder.id == account.id,
        None => false,
    };
    let token = if token_works {
        known.token
    } else {
        let checked = CheckedAccount {
            id: account.id,
            password_hash: &account.password_hash,
        };
        issue_token(store, checked, DEMO_TOKEN_LABEL).await?
    };
    Ok(DemoAccount {
        login: login.to_owned(),
        password: known.password,
        token,
    })
}

/// Makes an administrator's account with a random password and an API token, for the
/// first administrator of a new installation (`kozomol admin create`); the admin makes
/// everyone else in the console. `Conflict` when the login is taken.
pub async fn create_admin_account(
    store: &dyn Store,
    login: &str,
    created_by: &str,
) -> Result<DemoAccount, AuthError> {
    // The logins the login routes take, or it could never log in.
    if !valid_login(login) {
        return Err(AuthError::InvalidLogin(login.to_owned()));
    }
    let password = random_password();
    let password_hash = hash_password_in_pool(password.clone()).await?;
    let id = store
        .create_account(&NewAccount {
            login: login.to_owned(),
            role: Role::Admin,
            password_hash: password_hash.clone(),
            officer: None,
            created_by: created_by.to_owned(),
        })
        .await?;
    let checked = CheckedAccount {
        id,
        password_hash: &password_hash,
    };
    let token = issue_token(store, checked, "created with the account").await?;
    info!(login, "administrator account created");
    Ok(DemoAccount {
        login: login.to_owned(),
        password,
        token,
    })
}

async fn read_credentials(path: &Path) -> Result<Option<DemoCredentials>, AuthError> {
    let owned = path.to_owned();
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(&owned)).await?;
    match bytes {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
            AuthError::CredentialsFormat {
                path: path.to_owned(),
                source,
            }
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuthError::CredentialsFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes the file through a temporary sibling and a rename, readable by the owner only.
async fn write_credentials(path: &Path, credentials: &DemoCredentials) -> Result<(), AuthError> {
    let mut bytes =
        serde_json::to_vec_pretty(credentials).map_err(|source| AuthError::CredentialsFormat {
            path: path.to_owned(),
            source,
        })?;
    bytes.push(b'\n');
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || write_private(&owned, &bytes))
        .await?
        .map_err(|source| AuthError::CredentialsFile {
            path: path.to_owned(),
            source,
        })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;

    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_what_accounts_can_have() {
        for (login, valid) in [
            ("admin", true),
            ("aigul.officer@bishkek.kg", true),
            ("officer-7_b", true),
            ("Admin", false),
            ("", false),
            ("with space", false),
            ("auth0|123", false),
        ] {
            assert_eq!(valid_login(login), valid, "{login:?}");
        }
        assert!(valid_login(&"a".repeat(64)));
        assert!(!valid_login(&"a".repeat(65)));
    }

    #[tokio::test]
    async fn an_admin_made_on_the_command_line_has_a_login_that_logs_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = kozomol_store::connect(&url).await.expect("store");
        assert!(matches!(
            create_admin_account(store.as_ref(), "Admin", "cli").await,
            Err(AuthError::InvalidLogin(_))
        ));
        assert_eq!(store.account_by_login("Admin").await.expect("read"), None);
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = ApiToken::generate().expect("token");
        let text = token.reveal();
        assert_eq!(text.len(), 47);
        assert!(text.starts_with("kzm_"), "{text}");
        let parsed = ApiToken::parse(&text).expect("parses");
        assert_eq!(parsed.sha256(), token.sha256());
        // a token shown without the prefix (as before it existed) still works
        let bare = ApiToken::parse(&text[4..]).expect("parses without the prefix");
        assert_eq!(bare.sha256(), token.sha256());
        assert!(ApiToken::parse("short").is_none());
        assert!(ApiToken::parse(&format!("{text}AA")).is_none());
    }

    #[test]
    fn csrf_tokens_are_per_session_and_not_the_session() {
        let one = ApiToken::generate().expect("token");
        let two = ApiToken::generate().expect("token");
        assert_eq!(csrf_token(&one), csrf_token(&one));
        assert_ne!(csrf_token(&one), csrf_token(&two));
        assert_eq!(csrf_token(&one).len(), 64);
        assert!(!csrf_token(&one).contains(&one.reveal()[4..]));
    }

    #[test]
    fn limiter_refuses_after_five_attempts_per_address() {
        let limiter = AttemptLimiter::new(5, Duration::from_secs(60));
        for _ in 0..5 {
            assert!(limiter.try_acquire("198.51.100.7").is_ok());
        }
        let wait = limiter
            .try_acquire("198.51.100.7")
            .expect_err("sixth attempt refused");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(
            limiter.try_acquire("198.51.100.8").is_ok(),
            "other addresses unaffected"
        );
    }

    #[test]
    fn a_limit_of_zero_refuses_nothing() {
        let limiter = AttemptLimiter::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            assert!(limiter.try_acquire("load generator").is_ok());
        }
    }

    #[test]
    fn attempts_taken_at_once_never_pass_the_limit() {
        let limiter = std::sync::Arc::new(AttemptLimiter::new(30, Duration::from_secs(600)));
        let passed: usize = (0..8)
            .map(|_| {
                let limiter = std::sync::Arc::clone(&limiter);
                std::thread::spawn(move || {
                    (0..20)
                        .filter(|_| limiter.try_acquire("198.51.100.1").is_ok())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .sum();
        assert_eq!(passed, 30);
        assert!(limiter.try_acquire("198.51.100.1").is_err());
        assert!(
            limiter.try_acquire("198.51.100.2").is_ok(),
            "other addresses unaffected"
        );
    }

    #[test]
    fn limiter_forgets_old_attempts() {
        let limiter = AttemptLimiter::new(2, Duration::from_millis(30));
        assert!(limiter.try_acquire("carol").is_ok());
        assert!(limiter.try_acquire("carol").is_ok());
        assert!(limiter.try_acquire("carol").is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.try_acquire("carol").is_ok());
    }
}
