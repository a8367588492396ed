#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("evidence {sha256} does not match its hash")]
    EvidenceCorrupt { sha256: String },
    #[error("evidence i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}
