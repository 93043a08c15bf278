//! What can go wrong in the store, on either engine.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum StoreError {
    /// No store at this path (`git2fa init` creates it).
    Missing(PathBuf),
    /// The file is not an SQLite database, or is damaged.
    NotADatabase(PathBuf),
    /// The schema is older or newer than this binary's.
    Schema {
        found: i64,
        expected: i64,
    },
    /// Another process held the lock past the busy timeout.
    Busy,
    /// A name that must be unique is taken.
    Exists,
    /// Anything else SQLite reported.
    Sqlite(rusqlite::Error),
    /// Anything PostgreSQL, or the way to it, reported: down, unreachable,
    /// the password refused, a statement that failed.
    Postgres(tokio_postgres::Error),
    /// PostgreSQL gave no answer in time (`[store] timeout`): a hung or
    /// stopped server, a listener that never answers.
    Unreachable(String),
    /// PostgreSQL's failure as `git2fa serve` met it for this process
    /// (`wire`): its SQLSTATE, if any, and the server's words.
    Remote {
        code: String,
        message: String,
    },
    /// `[store]` names a database that cannot be used as written.
    Config(String),
    /// A column held what the store never writes there.
    Value(String),
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Missing(path) => {
                write!(f, "no store at {} (run `git2fa init`)", path.display())
            }
            StoreError::NotADatabase(path) => {
                write!(
                    f,
                    "{} is not a git2fa store (not an SQLite database, or damaged)",
                    path.display()
                )
            }
            StoreError::Schema { found, expected } if found < expected => write!(
                f,
                "the store has schema version {found}, this git2fa needs {expected} (run `git2fa init` to migrate)"
            ),
            StoreError::Schema { found, expected } => write!(
                f,
                "the store has schema version {found}, newer than this git2fa ({expected}): upgrade git2fa"
            ),
            StoreError::Busy => write!(
                f,
                "the store stayed locked by another process past the busy timeout"
            ),
            StoreError::Exists => write!(f, "already exists"),
            StoreError::Sqlite(e) => write!(f, "store error: {e}"),
            StoreError::Postgres(e) => match e.as_db_error() {
                // The server's own words: "password authentication failed
                // for user ...", "the database system is shutting down".
                Some(db) => write!(f, "PostgreSQL: {} ({})", db.message(), db.code().code()),
                None => match std::error::Error::source(e) {
                    Some(cause) => write!(f, "PostgreSQL: {e}: {cause}"),
                    None => write!(f, "PostgreSQL: {e}"),
                },
            },
            StoreError::Unreachable(e) => write!(f, "{e}"),
            StoreError::Remote { message, .. } => write!(f, "{message} (through git2fa serve)"),
            StoreError::Config(e) => write!(f, "[store]: {e}"),
            StoreError::Value(e) => write!(f, "store error: {e}"),
            StoreError::Io(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Sqlite(e) => Some(e),
            StoreError::Postgres(e) => Some(e),
            StoreError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::NotADatabase(PathBuf::new())
            }
            // Only a taken unique name or key: a foreign key, a CHECK or
            // the audit log's append-only trigger (`RAISE(ABORT)`) is an
            // error of its own, with SQLite's words.
            Some(ErrorCode::ConstraintViolation) if is_unique(&e) => StoreError::Exists,
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Whether a constraint SQLite reported is a UNIQUE or PRIMARY KEY one
/// (its extended result code).
fn is_unique(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    matches!(
        e,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Exists,
            _ => StoreError::Postgres(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_taken_unique_value_is_already_exists() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
             CREATE TABLE keys (user_id INTEGER NOT NULL REFERENCES users(id));
             CREATE TABLE audit (at INTEGER);
             CREATE TRIGGER audit_append_only BEFORE DELETE ON audit
                 BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
             INSERT INTO users (id, name) VALUES (1, 'alice');
             INSERT INTO audit VALUES (1);",
        )
        .unwrap();
        let error = |sql: &str| StoreError::from(conn.execute(sql, []).unwrap_err());
        assert!(matches!(
            error("INSERT INTO users (name) VALUES ('alice')"),
            StoreError::Exists
        ));
        assert!(matches!(
            error("INSERT INTO users (id, name) VALUES (1, 'bob')"),
            StoreError::Exists
        ));
        let foreign = error("INSERT INTO keys VALUES (7)");
        assert!(foreign.to_string().contains("FOREIGN KEY"), "{foreign}");
        let trigger = error("DELETE FROM audit");
        assert!(
            trigger.to_string().contains("audit rows are append-only"),
            "{trigger}"
        );
        assert!(std::error::Error::source(&trigger).is_some());
    }
}
