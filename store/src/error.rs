#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("no database at `{0}`: check --config or --database-url")]
    NoDatabase(String),
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

impl StoreError {
    /// Whether the same statement may succeed when tried again: the database, or the
    /// connection to it, was away, busy or short of resources, or the transaction lost
    /// a conflict with another; not a write that its own data makes fail, which would
    /// fail the same way for ever.
    pub fn is_transient(&self) -> bool {
        match self {
            // The evidence store's: a full or failing disk passes; bytes it refuses
            // (a frame over the segment limit) do not.
            StoreError::Io(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            ),
            StoreError::Database(err) => match err {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::BeginFailed => true,
                sqlx::Error::Database(db) => {
                    let Some(code) = db.code() else {
                        return false;
                    };
                    if db
                        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some()
                    {
                        transient_sqlstate(&code)
                    } else {
                        code.parse::<i32>().is_ok_and(transient_sqlite_code)
                    }
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// PostgreSQL's SQLSTATEs of a passing condition: connection exceptions (08),
/// insufficient resources (53: a full disk, too many connections), the server shutting
/// down or restarting (57P01-57P03), a statement cancelled (57014: a timeout), an I/O
/// error (58030), a lock not available (55P03), a serialisation failure, a deadlock,
/// and a read-only transaction (25006: a standby during failover).
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57014" | "58030" | "55P03" | "40001" | "40P01" | "25006"
        )
}

/// SQLite's result codes (extended ones carry the primary in their low byte) of a
/// passing condition: busy, locked, an I/O error, a full disk.
fn transient_sqlite_code(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13)
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

#[cfg(test)]
mod tests {
    use super::{transient_sqlite_code, transient_sqlstate, StoreError};

    #[test]
    fn passing_conditions_are_transient_and_the_datas_own_faults_are_not() {
        for (code, transient) in [
            ("08006", true),  // connection failure
            ("08P01", true),  // protocol violation
            ("53100", true),  // disk full
            ("53300", true),  // too many connections
            ("57P01", true),  // admin shutdown
            ("57P03", true),  // cannot connect now
            ("40001", true),  // serialization failure
            ("40P01", true),  // deadlock detected
            ("57014", true),  // query canceled
            ("58030", true),  // io error
            ("55P03", true),  // lock not available
            ("25006", true),  // read only sql transaction
            ("23505", false), // unique violation
            ("22008", false), // datetime field overflow
            ("22P02", false), // invalid text representation
            ("42P01", false), // undefined table
        ] {
            assert_eq!(transient_sqlstate(code), transient, "{code}");
        }
        for (code, transient) in [
            (5, true),     // SQLITE_BUSY
            (517, true),   // SQLITE_BUSY_SNAPSHOT
            (6, true),     // SQLITE_LOCKED
            (10, true),    // SQLITE_IOERR
            (3850, true),  // SQLITE_IOERR_LOCK
            (13, true),    // SQLITE_FULL
            (19, false),   // SQLITE_CONSTRAINT
            (1811, false), // SQLITE_CONSTRAINT_TRIGGER
            (2067, false), // SQLITE_CONSTRAINT_UNIQUE
            (1, false),    // SQLITE_ERROR
        ] {
            assert_eq!(transient_sqlite_code(code), transient, "{code}");
        }
        let full = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        assert!(StoreError::Io(full).is_transient());
        let too_large = std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large");
        assert!(!StoreError::Io(too_large).is_transient());
        let unavailable = StoreError::Database(sqlx::Error::PoolTimedOut);
        assert!(unavailable.is_transient());
        assert!(!StoreError::Corrupt("a row this code never wrote".into()).is_transient());
        assert!(!StoreError::Conflict {
            what: "case 7".into()
        }
        .is_transient());
    }
}
