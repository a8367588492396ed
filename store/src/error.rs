#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("{what} does not exist")]
    NotFound { what: String },
    #[error("camera `{0}` is not registered")]
    UnknownCamera(String),
    #[error("not stored: {0}")]
    Invalid(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("evidence {sha256} does not match its hash")]
    EvidenceCorrupt { sha256: String },
    #[error("evidence {sha256} was destroyed at the end of its case file's archive period")]
    EvidenceErased { sha256: String },
    #[error("evidence i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The one place where database errors become domain errors: a unique violation
/// means `what` already exists; everything else stays a database error.
pub(crate) fn db_error(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => StoreError::Database(err),
    }
}

/// A stored value that does not parse: the database holds something this code never wrote.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
