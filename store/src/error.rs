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
                _ => database_code(err)
                    .is_some_and(|code| code.either(transient_sqlstate, transient_sqlite_code)),
            },
            _ => false,
        }
    }

    /// Whether the database refused the rows for what they hold (a constraint, a value
    /// out of its range, too long or not representable, a row over a limit): the same
    /// rows fail for ever, while other rows of the same kind may be stored. Not a fault
    /// of the database itself (a missing table, a refused permission), which fails every
    /// row alike.
    pub fn is_refusal_of_content(&self) -> bool {
        match self {
            StoreError::Invalid(_) => true,
            StoreError::Database(err) => database_code(err)
                .is_some_and(|code| code.either(content_sqlstate, content_sqlite_code)),
            _ => false,
        }
    }
}

/// A database's own error code: PostgreSQL's SQLSTATE or SQLite's result code.
enum DatabaseCode {
    Postgres(String),
    Sqlite(i32),
}

impl DatabaseCode {
    fn either(&self, postgres: fn(&str) -> bool, sqlite: fn(i32) -> bool) -> bool {
        match self {
            DatabaseCode::Postgres(code) => postgres(code),
            DatabaseCode::Sqlite(code) => sqlite(*code),
        }
    }
}

fn database_code(err: &sqlx::Error) -> Option<DatabaseCode> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let code = db.code()?;
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        Some(DatabaseCode::Postgres(code.into_owned()))
    } else {
        code.parse().ok().map(DatabaseCode::Sqlite)
    }
}

/// PostgreSQL's SQLSTATEs of rows refused for their content: data exceptions (22: a
/// value too long, out of range, a NUL in text), integrity constraints (23) and program
/// limits (54: an index row too large).
fn content_sqlstate(code: &str) -> bool {
    ["22", "23", "54"]
        .iter()
        .any(|class| code.starts_with(class))
}

/// SQLite's result codes of rows refused for their content: too big (18), a constraint
/// (19, a trigger's RAISE among them). Not a datatype mismatch (20) or a parameter out
/// of range (25): the statement's fault, whatever the row.
fn content_sqlite_code(code: i32) -> bool {
    matches!(code & 0xff, 18 | 19)
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
    use super::{
        content_sqlite_code, content_sqlstate, transient_sqlite_code, transient_sqlstate,
        StoreError,
    };

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

    #[test]
    fn rows_refused_for_their_content_are_told_from_a_failing_database() {
        for (code, content) in [
            ("23505", true),  // unique violation
            ("23514", true),  // check violation
            ("22001", true),  // string data right truncation
            ("22021", true),  // character not in repertoire (a NUL)
            ("22003", true),  // numeric value out of range
            ("54000", true),  // program limit exceeded (index row size)
            ("42P01", false), // undefined table
            ("42501", false), // insufficient privilege
            ("53100", false), // disk full
            ("08006", false), // connection failure
        ] {
            assert_eq!(content_sqlstate(code), content, "{code}");
        }
        for (code, content) in [
            (18, true),   // SQLITE_TOOBIG
            (19, true),   // SQLITE_CONSTRAINT
            (1811, true), // SQLITE_CONSTRAINT_TRIGGER
            (20, false),  // SQLITE_MISMATCH
            (25, false),  // SQLITE_RANGE
            (1, false),   // SQLITE_ERROR (no such table)
            (13, false),  // SQLITE_FULL
            (5, false),   // SQLITE_BUSY
            (8, false),   // SQLITE_READONLY
        ] {
            assert_eq!(content_sqlite_code(code), content, "{code}");
        }
        assert!(StoreError::Invalid("a plate of 40 characters".into()).is_refusal_of_content());
        assert!(!StoreError::Corrupt("a row this code never wrote".into()).is_refusal_of_content());
        assert!(!StoreError::Database(sqlx::Error::PoolTimedOut).is_refusal_of_content());
    }
}
