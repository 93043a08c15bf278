//! The store: SQLite at `<data_dir>/git2fa.db`. The only module that speaks
//! SQL, so that the store can move to another database behind the same API.
//!
//! WAL, `synchronous=FULL`, a busy timeout, every write transaction
//! `BEGIN IMMEDIATE`. Checks that must be atomic (a TOTP step used once, a
//! recovery code used once, the failure counter and the lock) are single
//! statements or one immediate transaction.
//!
//! This file opens and migrates the store and holds the row types; the
//! queries live by table: `users` (accounts and the second factor),
//! `sessions` (2FA sessions), `tokens` (and password throttling), `web` (the
//! web page's sessions and set-password links), `keys`, and `audit` (the
//! append-only log).

pub mod audit;
mod connect;
mod copy;
mod db;
mod error;
pub mod group;
mod kept;
mod keys;
mod migrations;
mod oauth;
mod passwords;
mod pg;
mod pool;
mod security_keys;
mod sessions;
mod settings;
mod sqlite;
mod tls;
mod tokens;
mod turn;
mod tx;
mod users;
mod value;
mod web;
mod wire;

use std::fmt;
use std::path::{Path, PathBuf};

use db::{Conn, Tx};
use value::{Row, params};

pub use connect::{CONNECT_TIMEOUT, set_timeout, timeout, tls_warning};
pub use error::{Result, StoreError};
pub use kept::{keep_connections, keeping_for};
pub use pool::{Pool, answer, use_in_process};
pub use wire::{SOCKET, Serve};

// The domain's facts, kept and returned by the store.
pub use crate::domain::{
    AuditRecord, Exchanged, Hardware, KeyUse, NewSession, OauthCode, Permission, SecurityKey,
    Session, SessionFacts, SshKey, Token, User, VerifyLink, WebSession,
};

/// Where the store lives: `[store] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `<data_dir>/git2fa.db` (`url` empty).
    Sqlite(PathBuf),
    /// A `postgres://` url, the file holding its password, and the socket
    /// of the local `git2fa serve`, which keeps connections open: used
    /// when a server answers there, else the store connects itself.
    Postgres {
        url: String,
        password_file: Option<PathBuf>,
        socket: Option<PathBuf>,
    },
}

impl Location {
    pub fn of(config: &crate::system::config::Config) -> Location {
        // Every way to the store starts here: the configured deadline
        // holds for this process from now on.
        set_timeout(std::time::Duration::from_secs(
            u64::try_from(config.store.timeout).unwrap_or(5),
        ));
        if config.store.url.is_empty() {
            Location::Sqlite(config.store_path())
        } else {
            Location::Postgres {
                url: config.store.url.clone(),
                password_file: config.store.password_file.clone(),
                socket: Some(config.data_dir.join(wire::SOCKET)),
            }
        }
    }
}

impl fmt::Display for Location {
    /// For messages: the path, or the url without any password in it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres { url, .. } => {
                write!(f, "{}", crate::system::url::without_password(url))
            }
        }
    }
}

pub struct Store {
    conn: Conn,
    /// The SQLite file; `None` for PostgreSQL.
    path: Option<PathBuf>,
    /// The audit row of the change under way (`audited`): the change's
    /// write transaction commits it with the change.
    staged: std::cell::RefCell<Option<AuditRecord>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddedKey {
    Added(i64),
    /// Added as the user's first second factor, with the recovery codes
    /// given replacing any the user had.
    First(i64),
    /// Nothing added: the user has no second factor (any more), and no
    /// recovery codes came with the key. Call again with codes.
    FirstNeedsCodes,
    /// This credential is registered already (to this user or another).
    Duplicate,
    /// The user has the most keys one may have.
    TooMany,
}

/// What a web session kept under an answer's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakenCeremony {
    /// The ceremony, now taken.
    Found(String),
    /// Taken before: the same answer again.
    Used,
    /// None: the page's ceremony went long ago, or never was.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedKey {
    Removed,
    NoSuchKey,
    /// The user's only second factor: removing it is removing 2FA.
    LastFactor,
}

/// What `reset_2fa` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    /// 2FA sessions that were still open.
    pub sessions_ended: usize,
    /// Tokens that were still usable.
    pub tokens_revoked: usize,
}

/// A second-factor attempt, already checked against the secret or hashes.
///
/// A match carries what it was checked against, and is recorded only if
/// that is still what the store holds: a code checked against a secret or a
/// set of recovery codes that was replaced meanwhile counts for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A TOTP code that matched this 30 s step of this sealed secret, or
    /// `None` if none matched.
    Totp(Option<(i64, Vec<u8>)>),
    /// A recovery code that matched this row and hash, or `None`.
    Recovery(Option<(i64, String)>),
    /// A security key's assertion that held, or `None` for one that did
    /// not. It counts only if the key is still registered and its
    /// signature counter still behind the new one.
    Key(Option<KeyUse>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Accepted {
        session_id: Option<i64>,
    },
    /// The code matched but was used before (TOTP step or recovery code).
    Replayed {
        failures: i64,
        locked_until: Option<i64>,
    },
    Wrong {
        failures: i64,
        locked_until: Option<i64>,
    },
    /// Locked before this attempt; the code was not even counted.
    Locked {
        until: i64,
    },
}

/// What `record_attempt`'s audit row says of an outcome: its outcome,
/// reason and detail.
pub type Describe<'a> = dyn Fn(&AttemptOutcome) -> (String, String, Option<String>) + 'a;

/// The lock policy for `record_attempt`.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    pub max_failures: u32,
    pub lockout: i64,
}

/// What `prune_expired` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub sessions: u64,
    pub web_sessions: u64,
    pub password_links: u64,
    pub verify_links: u64,
    pub password_failures: u64,
    pub oauth_codes: u64,
}

/// Ended or expired 2FA sessions stay this long (`session list` and the
/// audit log refer to them), then go.
pub const KEEP_ENDED_SESSIONS: i64 = 30 * 86_400;

/// Refusals made before a decision (a malformed request or token, a bad
/// path, a command that is not git's) write at most this many rows per
/// client address within `REFUSAL_WINDOW` seconds, and then one row saying
/// that the rest go unrecorded: a flood cannot fill the disk. Counted in
/// `password_failures`, under the scope `refused:ADDRESS`.
pub const MAX_REFUSALS_PER_ADDRESS: i64 = 100;
pub const REFUSAL_WINDOW: i64 = 600;

/// What `prune_audit` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPruned {
    /// Rows removed.
    pub removed: u64,
    /// Rows older than the date kept: the export does not hold them (or
    /// an older one it does not hold comes first).
    pub kept: u64,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user: Option<String>,
    pub repo: Option<String>,
    pub limit: u32,
    /// Only rows after this id, oldest first (an export's next part).
    pub after_id: Option<i64>,
    /// Only rows at or after this moment (Unix seconds), oldest first.
    pub since: Option<i64>,
}

impl Store {
    /// Opens an existing SQLite store and applies any pending migrations.
    pub fn open_and_migrate(path: &Path) -> Result<Store> {
        Store::connect_and_migrate(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens the store whose schema is current (the hot path: no
    /// migration, no creation).
    pub fn connect(location: &Location) -> Result<Store> {
        let store = Store::open_existing(location)?;
        let found = store.schema_version()?;
        let expected = store.latest();
        if found != expected {
            return Err(StoreError::Schema { found, expected });
        }
        Ok(store)
    }

    /// Opens the store and applies any pending migrations: an SQLite file
    /// must exist; an empty PostgreSQL database receives the whole schema.
    pub fn connect_and_migrate(location: &Location) -> Result<Store> {
        let store = Store::open_existing(location)?;
        store.migrate()?;
        Ok(store)
    }

    fn open_existing(location: &Location) -> Result<Store> {
        match location {
            Location::Sqlite(path) => Store::open_sqlite(path),
            Location::Postgres {
                url,
                password_file,
                socket,
            } => {
                // In `git2fa serve`: its own pool. Elsewhere: the pool of
                // this host's serve, over its socket. Without it: a
                // connection of our own.
                let conn = if let Some(session) = pool::in_process(url) {
                    Conn::remote(session)
                } else if let Some(client) = socket
                    .as_deref()
                    .map(|socket| wire::Client::connect(socket, url))
                    .transpose()?
                    .flatten()
                {
                    Conn::remote(client)
                } else {
                    Conn::postgres(connect::client(url, password_file.as_deref(), timeout())?)
                };
                Ok(Store {
                    conn,
                    path: None,
                    staged: Default::default(),
                })
            }
        }
    }

    /// Which engine holds the store: "SQLite" or "PostgreSQL".
    pub fn engine(&self) -> &'static str {
        if self.conn.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    /// The migrations of this store's engine.
    fn migrations(&self) -> &'static [&'static str] {
        if self.conn.is_postgres() {
            migrations::POSTGRES
        } else {
            migrations::SQLITE
        }
    }

    /// The schema version this binary needs on this store's engine.
    pub fn latest(&self) -> i64 {
        self.migrations().len() as i64
    }

    pub fn schema_version(&self) -> Result<i64> {
        match &self.conn {
            Conn::Sqlite(conn) => conn
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .map_err(|e| match &self.path {
                    Some(path) => classify(path, e),
                    None => StoreError::from(e),
                }),
            _ => match self.conn.row("SELECT version FROM git2fa_schema", &[]) {
                Ok(row) => row.map_or(Ok(0), |row| row.get(0)),
                // An empty database: no schema yet.
                Err(StoreError::Postgres(e))
                    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
                {
                    Ok(0)
                }
                Err(StoreError::Remote { code, .. }) if code == wire::UNDEFINED_TABLE => Ok(0),
                Err(e) => Err(e),
            },
        }
    }

    /// Applies the pending migrations in one write transaction (on
    /// PostgreSQL its lock keeps two hosts from migrating at once).
    fn migrate(&self) -> Result<()> {
        let tx = self.conn.immediate()?;
        if tx.is_postgres() {
            tx.batch("CREATE TABLE IF NOT EXISTS git2fa_schema (version BIGINT NOT NULL)")?;
        }
        let found = self.schema_version()?;
        let expected = self.latest();
        if found > expected {
            return Err(StoreError::Schema { found, expected });
        }
        for sql in self.migrations().iter().skip(found as usize) {
            tx.batch(sql)?;
        }
        if found < expected {
            if tx.is_postgres() {
                tx.execute("DELETE FROM git2fa_schema", &[])?;
                tx.execute(
                    "INSERT INTO git2fa_schema (version) VALUES (?1)",
                    &params![expected],
                )?;
            } else {
                // PRAGMA takes no parameters; `expected` is a number.
                tx.batch(&format!("PRAGMA user_version = {expected}"))?;
            }
        }
        tx.commit()
    }

    /// SQLite's `PRAGMA integrity_check`: `None` when the store is sound.
    /// PostgreSQL checks its pages itself.
    pub fn integrity_problem(&self) -> Result<Option<String>> {
        if self.conn.is_postgres() {
            return Ok(None);
        }
        let result: String = self.conn.one("PRAGMA integrity_check", &[])?.get(0)?;
        Ok((result != "ok").then_some(result))
    }

    /// One statement, on its own. SQLite runs it in a `BEGIN IMMEDIATE`
    /// transaction, which waits for the write lock with the busy handler;
    /// PostgreSQL runs it as it comes (a single statement is atomic, and
    /// needs no exclusive lock).
    fn write(&self, sql: &str, params: &[value::Value]) -> Result<usize> {
        if self.conn.is_postgres() && self.staged.borrow().is_none() {
            return self.conn.execute(sql, params);
        }
        let tx = self.immediate()?;
        let changed = tx.execute(sql, params)?;
        tx.unstage_unless(changed > 0);
        tx.commit()?;
        Ok(changed)
    }

    /// Whether this store goes through `git2fa serve` (its socket, or its
    /// own pool).
    pub fn is_remote(&self) -> bool {
        matches!(self.conn, Conn::Remote(_))
    }

    /// Whether a `git2fa serve` answers on this host's store socket, and
    /// whether it uses the database `location` names.
    pub fn serve_at(location: &Location) -> Result<Serve> {
        match location {
            Location::Postgres {
                url,
                socket: Some(socket),
                ..
            } => wire::Client::serve_at(socket, url),
            _ => Ok(Serve::Absent),
        }
    }

    /// Makes `change` and its audit row one: the first write transaction
    /// `change` commits holds `record` too, so both are committed or
    /// neither is. A change that found nothing to change commits no row
    /// (it rolls back, or drops the row with `Tx::unstage_unless`).
    pub fn audited<T>(
        &mut self,
        record: AuditRecord,
        change: impl FnOnce(&mut Store) -> Result<T>,
    ) -> Result<T> {
        // Not nested: an inner call would take the outer change's row.
        debug_assert!(
            self.staged.borrow().is_none(),
            "Store::audited inside another"
        );
        *self.staged.borrow_mut() = Some(record);
        let result = change(self);
        self.staged.borrow_mut().take();
        result
    }
}

fn replace_recovery_codes(tx: &Conn, user_id: i64, hashes: &[String]) -> Result<()> {
    tx.execute(
        "DELETE FROM recovery_codes WHERE user_id = ?1",
        &params![user_id],
    )?;
    for hash in hashes {
        tx.execute(
            "INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)",
            &params![user_id, hash],
        )?;
    }
    Ok(())
}

fn insert_session(tx: &Conn, user_id: i64, s: &NewSession, now: i64) -> Result<i64> {
    tx.one(
        "INSERT INTO sessions (user_id, created_at, expires_at, key_id, remote_addr, opened_via)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        &params![
            user_id,
            now,
            now + s.ttl,
            s.key_id,
            s.remote_addr,
            s.opened_via
        ],
    )?
    .get(0)
}

const USER_COLUMNS: &str =
    "SELECT id, name, password_hash, enabled, is_admin, always_2fa, totp_secret,
    totp_enrolled_at, failures, locked_until, created_at,
    (SELECT count(*) FROM security_keys k WHERE k.user_id = users.id) FROM users";

fn user_from_row(row: &Row) -> Result<User> {
    Ok(User {
        id: row.get(0)?,
        name: row.get(1)?,
        password_hash: row.get(2)?,
        enabled: row.get(3)?,
        is_admin: row.get(4)?,
        always_2fa: row.get(5)?,
        totp_secret: row.get(6)?,
        enrolled_at: row.get(7)?,
        failures: row.get(8)?,
        locked_until: row.get(9)?,
        created_at: row.get(10)?,
        security_keys: row.get(11)?,
    })
}

const TOKEN_COLUMNS: &str =
    "SELECT t.id, t.user_id, u.name, t.name, t.repos, t.permission, t.created_at,
    t.expires_at, t.revoked_at, t.last_used_at, t.without_2fa, t.oauth_client, t.session_id,
    (SELECT CASE WHEN s.ended_at IS NOT NULL AND s.ended_at < s.expires_at THEN s.ended_at
                 ELSE s.expires_at END
     FROM sessions s WHERE s.id = t.session_id AND s.user_id = t.user_id)
    FROM tokens t JOIN users u ON u.id = t.user_id";

fn token_from_row(row: &Row) -> Result<Token> {
    let repos: String = row.get(4)?;
    let permission: String = row.get(5)?;
    Ok(Token {
        id: row.get(0)?,
        user_id: row.get(1)?,
        user: row.get(2)?,
        name: row.get(3)?,
        repos: repos.lines().map(str::to_string).collect(),
        // The CHECK constraint admits only these two; anything else reads as
        // the lesser permission.
        permission: Permission::parse(&permission).unwrap_or(Permission::Read),
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
        revoked_at: row.get(8)?,
        last_used_at: row.get(9)?,
        without_2fa: row.get(10)?,
        oauth_client: row.get(11)?,
        session_id: row.get(12)?,
        session_until: row.get(13)?,
    })
}

const KEY_COLUMNS: &str =
    "SELECT k.id, k.user_id, u.name, k.algorithm, k.blob, k.fingerprint, k.comment,
    k.created_at, k.last_used_at, k.hardware FROM ssh_keys k JOIN users u ON u.id = k.user_id";

fn key_from_row(row: &Row) -> Result<SshKey> {
    Ok(SshKey {
        id: row.get(0)?,
        user_id: row.get(1)?,
        user: row.get(2)?,
        algorithm: row.get(3)?,
        blob: row.get(4)?,
        fingerprint: row.get(5)?,
        comment: row.get(6)?,
        created_at: row.get(7)?,
        last_used_at: row.get(8)?,
        hardware: row
            .get::<Option<String>>(9)?
            .map(|word| {
                Hardware::parse(&word)
                    .ok_or(StoreError::Value(format!("ssh_keys.hardware is {word:?}")))
            })
            .transpose()?,
    })
}

/// Each row mapped, or the first error.
fn all<T>(rows: Vec<Row>, map: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(map).collect()
}

/// The row mapped, if there is one.
fn first<T>(row: Option<Row>, map: impl Fn(&Row) -> Result<T>) -> Result<Option<T>> {
    row.as_ref().map(map).transpose()
}

/// Maps an error met while opening to what an admin needs to know.
fn classify(path: &Path, error: rusqlite::Error) -> StoreError {
    match StoreError::from(error) {
        StoreError::NotADatabase(_) => StoreError::NotADatabase(path.to_path_buf()),
        StoreError::Sqlite(e)
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) && !path.exists() =>
        {
            StoreError::Missing(path.to_path_buf())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
