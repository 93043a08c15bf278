//! The store: SQLite at `<data_dir>/git2fa.db`. The only module that speaks
//! SQL, so that the store can move to another database behind the same API.
//!
//! WAL, `synchronous=FULL`, a busy timeout, every write transaction
//! `BEGIN IMMEDIATE`. Checks that must be atomic (a TOTP step used once, a
//! recovery code used once, the failure counter and the lock) are single
//! statements or one immediate transaction.

mod migrations;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::decision::{Permission, SessionFacts, TokenFacts};

/// How long a statement waits for another process's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
            StoreError::Io(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::NotADatabase(PathBuf::new())
            }
            Some(ErrorCode::ConstraintViolation) => StoreError::Exists,
            _ => StoreError::Sqlite(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password_hash: Option<String>,
    pub enabled: bool,
    pub is_admin: bool,
    pub always_2fa: bool,
    pub totp_secret: Option<Vec<u8>>,
    pub enrolled_at: Option<i64>,
    pub failures: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

impl User {
    pub fn is_enrolled(&self) -> bool {
        self.totp_secret.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    pub id: i64,
    pub user_id: i64,
    pub user: String,
    pub algorithm: String,
    pub blob: String,
    pub fingerprint: String,
    pub comment: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: i64,
    pub user_id: i64,
    pub user: String,
    pub name: String,
    pub repos: Vec<String>,
    pub permission: Permission,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// Minted by an admin for a user without 2FA (`--without-2fa`, a
    /// service account): it carries no second factor.
    pub without_2fa: bool,
}

impl Token {
    pub fn facts(&self) -> TokenFacts {
        TokenFacts {
            id: self.id,
            permission: self.permission,
            repos: self.repos.clone(),
            expires_at: self.expires_at,
            revoked: self.revoked_at.is_some(),
            without_2fa: self.without_2fa,
        }
    }
}

/// What `reset_2fa` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reset {
    /// 2FA sessions that were still open.
    pub sessions_ended: usize,
    /// Tokens that were still usable.
    pub tokens_revoked: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub user: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
    pub opened_via: String,
}

/// Where a new 2FA session is opened from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub ttl: i64,
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
    pub opened_via: String,
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

/// The lock policy for `record_attempt`.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    pub max_failures: u32,
    pub lockout: i64,
}

/// A session of the web page. Its id is the SHA-256 of the cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id: [u8; 32],
    pub user_id: Option<i64>,
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub code_at: Option<i64>,
    pub pending_secret: Option<Vec<u8>>,
    pub pending_codes: Option<Vec<u8>>,
    pub remote_addr: Option<String>,
}

/// One row of the append-only audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    pub user: Option<String>,
    pub transport: String,
    pub repo: Option<String>,
    /// read, write, verify, enrol, token-create, ...
    pub action: String,
    pub refs: Option<String>,
    /// allow / refuse for git decisions; ok / fail for everything else.
    pub outcome: String,
    pub reason: String,
    pub credential: Option<String>,
    pub key_id: Option<i64>,
    pub token_id: Option<i64>,
    pub remote_addr: Option<String>,
    /// The internal cause of an error; never shown to git users.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user: Option<String>,
    pub repo: Option<String>,
    pub limit: u32,
}

impl Store {
    /// Creates a new store (the file must not exist), mode 0600, WAL.
    pub fn create(path: &Path) -> Result<Store> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Io(path.to_path_buf(), e))?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .map_err(|e| classify(path, e))?;
        let mut store = Store::configure(conn, path)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store whose schema is current (the hot path: no
    /// migration, no creation).
    pub fn open(path: &Path) -> Result<Store> {
        let store = Store::open_existing(path)?;
        let found = store.schema_version()?;
        if found != migrations::latest() {
            return Err(StoreError::Schema {
                found,
                expected: migrations::latest(),
            });
        }
        Ok(store)
    }

    /// Opens an existing store and applies any pending migrations.
    pub fn open_and_migrate(path: &Path) -> Result<Store> {
        let mut store = Store::open_existing(path)?;
        store.migrate()?;
        Ok(store)
    }

    fn open_existing(path: &Path) -> Result<Store> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing(path.to_path_buf()));
            }
            Err(e) => return Err(StoreError::Io(path.to_path_buf(), e)),
            Ok(meta) if !meta.is_file() => {
                return Err(StoreError::NotADatabase(path.to_path_buf()));
            }
            Ok(_) => {}
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        Store::configure(conn, path)
    }

    fn configure(mut conn: Connection, path: &Path) -> Result<Store> {
        conn.busy_handler(Some(wait_for_lock))
            .map_err(|e| classify(path, e))?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(|e| classify(path, e))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| classify(&self.path, e))
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| classify(&path, e))?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| classify(&path, e))?;
        let expected = migrations::latest();
        if found > expected {
            return Err(StoreError::Schema { found, expected });
        }
        for (index, sql) in migrations::MIGRATIONS
            .iter()
            .enumerate()
            .skip(found as usize)
        {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: `None` when the store is sound.
    pub fn integrity_problem(&self) -> Result<Option<String>> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        Ok((result != "ok").then_some(result))
    }

    /// One statement in its own `BEGIN IMMEDIATE` transaction.
    fn write(&mut self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        let tx = self.immediate()?;
        let changed = tx.execute(sql, params)?;
        tx.commit()?;
        Ok(changed)
    }

    fn immediate(&mut self) -> Result<rusqlite::Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    // Users.

    pub fn add_user(&mut self, name: &str, password_hash: Option<&str>, now: i64) -> Result<i64> {
        let tx = self.immediate()?;
        tx.execute(
            "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3)",
            params![name, password_hash, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    pub fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(self
            .conn
            .query_row(
                &format!("{USER_COLUMNS} WHERE name = ?1"),
                [name],
                user_from_row,
            )
            .optional()?)
    }

    pub fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        Ok(self
            .conn
            .query_row(
                &format!("{USER_COLUMNS} WHERE id = ?1"),
                [id],
                user_from_row,
            )
            .optional()?)
    }

    pub fn users(&self) -> Result<Vec<User>> {
        let mut statement = self
            .conn
            .prepare(&format!("{USER_COLUMNS} ORDER BY name"))?;
        let rows = statement.query_map([], user_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn update_user(&mut self, sql: &str, id: i64, value: &dyn rusqlite::ToSql) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(sql, params![value, id])?;
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Disabling also ends the user's web sessions, at once: a stolen cookie
    /// must not outlive the admin's response (nor come back on re-enabling).
    pub fn set_enabled(&mut self, id: i64, enabled: bool, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE users SET enabled = ?1 WHERE id = ?2",
            params![enabled, id],
        )?;
        if !enabled {
            // Its 2FA sessions too, in the same commit: none of them may
            // work again if the user is enabled later.
            tx.execute(
                "UPDATE sessions SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL",
                params![now, id],
            )?;
            tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(changed == 1)
    }

    pub fn set_admin(&mut self, id: i64, admin: bool) -> Result<bool> {
        self.update_user("UPDATE users SET is_admin = ?1 WHERE id = ?2", id, &admin)
    }

    pub fn set_always_2fa(&mut self, id: i64, always: bool) -> Result<bool> {
        self.update_user(
            "UPDATE users SET always_2fa = ?1 WHERE id = ?2",
            id,
            &always,
        )
    }

    /// A new password ends every web session of the user.
    pub fn set_password_hash(&mut self, id: i64, hash: &str) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![hash, id],
        )?;
        tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", [id])?;
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Clears the failure counter and any lock.
    pub fn unlock(&mut self, id: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE users SET failures = 0, locked_until = NULL WHERE id = ?1",
            [id],
        )?;
        tx.commit()?;
        Ok(changed == 1)
    }

    // Second factor.

    /// Stores the encrypted TOTP secret and the recovery code hashes, if the
    /// user is not enrolled yet. Returns false when already enrolled.
    pub fn enroll(
        &mut self,
        user_id: i64,
        sealed_secret: &[u8],
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE users SET totp_secret = ?1, totp_enrolled_at = ?2, totp_last_step = NULL,
                 failures = 0, locked_until = NULL
             WHERE id = ?3 AND totp_secret IS NULL",
            params![sealed_secret, now, user_id],
        )?;
        if changed != 1 {
            return Ok(false);
        }
        replace_recovery_codes(&tx, user_id, recovery_hashes)?;
        tx.commit()?;
        Ok(true)
    }

    /// Replaces the user's recovery codes with a new set.
    pub fn replace_recovery_codes(&mut self, user_id: i64, hashes: &[String]) -> Result<()> {
        let tx = self.immediate()?;
        replace_recovery_codes(&tx, user_id, hashes)?;
        tx.commit()?;
        Ok(())
    }

    /// The recovery codes of a user: (row id, hash), used or not.
    /// Used ones too: a reused code is then told apart from a wrong one.
    pub fn recovery_codes(&self, user_id: i64) -> Result<Vec<(i64, String)>> {
        let mut statement = self
            .conn
            .prepare("SELECT id, hash FROM recovery_codes WHERE user_id = ?1 ORDER BY id")?;
        let rows = statement.query_map([user_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many of the user's recovery codes are not used yet.
    pub fn recovery_codes_left(&self, user_id: i64) -> Result<usize> {
        let left: i64 = self.conn.query_row(
            "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
            [user_id],
            |row| row.get(0),
        )?;
        Ok(usize::try_from(left).unwrap_or(0))
    }

    /// Removes 2FA from a user: secret, recovery codes, counters, and ends
    /// every open session; with `revoke_tokens`, revokes every token still
    /// usable too (`user reset-2fa`: a token carries the second factor it
    /// was minted with). `None` when there is no such user.
    pub fn reset_2fa(
        &mut self,
        user_id: i64,
        revoke_tokens: bool,
        now: i64,
    ) -> Result<Option<Reset>> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE users SET totp_secret = NULL, totp_enrolled_at = NULL, totp_last_step = NULL,
                 failures = 0, locked_until = NULL WHERE id = ?1",
            [user_id],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
        let sessions_ended = tx.execute(
            "UPDATE sessions SET ended_at = ?1
             WHERE user_id = ?2 AND ended_at IS NULL AND expires_at > ?1",
            params![now, user_id],
        )?;
        let tokens_revoked = if revoke_tokens {
            tx.execute(
                "UPDATE tokens SET revoked_at = ?1
                 WHERE user_id = ?2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)",
                params![now, user_id],
            )?
        } else {
            0
        };
        // Web sessions too: whoever holds one must not enrol an app of
        // their own in the gap.
        tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user_id])?;
        tx.commit()?;
        Ok(Some(Reset {
            sessions_ended,
            tokens_revoked,
        }))
    }

    /// Records a second-factor attempt in one immediate transaction: refuses
    /// while locked; marks the TOTP step or recovery code used (at most
    /// once, ever); counts failures and locks at `max_failures`; on success
    /// resets the counter and opens `session` if given.
    pub fn record_attempt(
        &mut self,
        user_id: i64,
        attempt: Attempt,
        now: i64,
        lock: LockPolicy,
        session: Option<&NewSession>,
    ) -> Result<AttemptOutcome> {
        let tx = self.immediate()?;
        let locked_until: Option<i64> = tx.query_row(
            "SELECT locked_until FROM users WHERE id = ?1",
            [user_id],
            |row| row.get(0),
        )?;
        if let Some(until) = locked_until.filter(|&until| until > now) {
            return Ok(AttemptOutcome::Locked { until });
        }
        let (matched, used_now) = match attempt {
            Attempt::Totp(None) | Attempt::Recovery(None) => (false, false),
            Attempt::Totp(Some((step, sealed))) => (
                true,
                tx.execute(
                    "UPDATE users SET totp_last_step = ?1
                     WHERE id = ?2 AND totp_secret = ?3
                       AND (totp_last_step IS NULL OR totp_last_step < ?1)",
                    params![step, user_id, sealed],
                )? == 1,
            ),
            Attempt::Recovery(Some((code_id, hash))) => (
                true,
                tx.execute(
                    "UPDATE recovery_codes SET used_at = ?1
                     WHERE id = ?2 AND user_id = ?3 AND hash = ?4 AND used_at IS NULL",
                    params![now, code_id, user_id, hash],
                )? == 1,
            ),
        };
        if used_now {
            tx.execute(
                "UPDATE users SET failures = 0, locked_until = NULL WHERE id = ?1",
                [user_id],
            )?;
            let session_id = match session {
                Some(s) => Some(insert_session(&tx, user_id, s, now)?),
                None => None,
            };
            tx.commit()?;
            return Ok(AttemptOutcome::Accepted { session_id });
        }
        if matched {
            // A right code of a step or a recovery code already used: an
            // honest user typing the code they just used, or someone who
            // saw it. It proves nothing either way, so it is refused
            // without counting towards the lock.
            let failures: i64 = tx.query_row(
                "SELECT failures FROM users WHERE id = ?1",
                [user_id],
                |row| row.get(0),
            )?;
            tx.commit()?;
            return Ok(AttemptOutcome::Replayed {
                failures,
                locked_until: None,
            });
        }
        let (failures, locked_until): (i64, Option<i64>) = tx.query_row(
            "UPDATE users SET failures = failures + 1,
                 locked_until = CASE WHEN failures + 1 >= ?1 THEN ?2 ELSE NULL END
             WHERE id = ?3 RETURNING failures, locked_until",
            params![lock.max_failures, now + lock.lockout, user_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        // A lock ends the count: the next lock needs max_failures new ones.
        if locked_until.is_some() {
            tx.execute("UPDATE users SET failures = 0 WHERE id = ?1", [user_id])?;
        }
        tx.commit()?;
        Ok(AttemptOutcome::Wrong {
            failures,
            locked_until,
        })
    }

    // 2FA sessions.

    /// Opens a 2FA session without a code (an admin's decision).
    pub fn open_session(&mut self, user_id: i64, session: &NewSession, now: i64) -> Result<i64> {
        let tx = self.immediate()?;
        let id = insert_session(&tx, user_id, session, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// The user's sessions that are neither ended nor expired.
    pub fn open_sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionFacts>> {
        let mut statement = self.conn.prepare(
            "SELECT id, expires_at, key_id, remote_addr FROM sessions
             WHERE user_id = ?1 AND ended_at IS NULL AND expires_at > ?2 ORDER BY id",
        )?;
        let rows = statement.query_map(params![user_id, now], |row| {
            Ok(SessionFacts {
                id: row.get(0)?,
                expires_at: row.get(1)?,
                key_id: row.get(2)?,
                remote_addr: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Open sessions (of one user, or all), newest first.
    pub fn sessions(&self, user: Option<&str>, now: i64) -> Result<Vec<Session>> {
        let mut statement = self.conn.prepare(
            "SELECT s.id, u.name, s.created_at, s.expires_at, s.ended_at, s.key_id, s.remote_addr, s.opened_via
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.ended_at IS NULL AND s.expires_at > ?1 AND (?2 IS NULL OR u.name = ?2)
             ORDER BY s.id DESC",
        )?;
        let rows = statement.query_map(params![now, user], |row| {
            Ok(Session {
                id: row.get(0)?,
                user: row.get(1)?,
                created_at: row.get(2)?,
                expires_at: row.get(3)?,
                ended_at: row.get(4)?,
                key_id: row.get(5)?,
                remote_addr: row.get(6)?,
                opened_via: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Ends one session; false when there was no open session of that id.
    pub fn end_session(&mut self, id: i64, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE id = ?2 AND ended_at IS NULL",
            params![now, id],
        )?;
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Ends every open session of a user; returns how many.
    pub fn end_sessions_of(&mut self, user_id: i64, now: i64) -> Result<usize> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL AND expires_at > ?1",
            params![now, user_id],
        )?;
        tx.commit()?;
        Ok(changed)
    }

    // Personal access tokens.

    #[allow(clippy::too_many_arguments)]
    pub fn add_token(
        &mut self,
        user_id: i64,
        name: &str,
        hash: &[u8; 32],
        repos: &[String],
        permission: Permission,
        expires_at: Option<i64>,
        without_2fa: bool,
        now: i64,
    ) -> Result<i64> {
        let tx = self.immediate()?;
        tx.execute(
            "INSERT INTO tokens (user_id, name, hash, repos, permission, created_at, expires_at, without_2fa)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                user_id,
                name,
                &hash[..],
                repos.join("\n"),
                permission.as_str(),
                now,
                expires_at,
                without_2fa
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// One indexed lookup by the token's SHA-256.
    pub fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Token>> {
        Ok(self
            .conn
            .query_row(
                &format!("{TOKEN_COLUMNS} WHERE t.hash = ?1"),
                [&hash[..]],
                token_from_row,
            )
            .optional()?)
    }

    pub fn token(&self, id: i64) -> Result<Option<Token>> {
        Ok(self
            .conn
            .query_row(
                &format!("{TOKEN_COLUMNS} WHERE t.id = ?1"),
                [id],
                token_from_row,
            )
            .optional()?)
    }

    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<Token>> {
        let mut statement = self.conn.prepare(&format!(
            "{TOKEN_COLUMNS} WHERE (?1 IS NULL OR u.name = ?1) ORDER BY t.id"
        ))?;
        let rows = statement.query_map([user], token_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes a token; false when there is no unrevoked token of that id.
    pub fn revoke_token(&mut self, id: i64, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![now, id],
        )?;
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Records a use, at most once a minute per token (a write per git
    /// request would cost more than the rest of the check).
    pub fn touch_token(&mut self, id: i64, now: i64) -> Result<()> {
        self.write(
            "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?1 - 60)",
            params![now, id],
        )?;
        Ok(())
    }

    // Password throttling.

    /// Until when password checks for any of `scopes` are refused, if they
    /// are: `limit` failures within `window` seconds of the first.
    pub fn password_throttled(
        &self,
        scopes: &[(&str, u32)],
        window: i64,
        now: i64,
    ) -> Result<Option<i64>> {
        let mut until = None;
        for (scope, limit) in scopes {
            let found: Option<(i64, i64)> = self
                .conn
                .query_row(
                    "SELECT count, window_start FROM password_failures WHERE scope = ?1",
                    [scope],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            if let Some((count, start)) = found
                && count >= i64::from(*limit)
                && start + window > now
            {
                until = until.max(Some(start + window));
            }
        }
        Ok(until)
    }

    /// Counts a failed password check against each scope; a window that
    /// has passed starts again.
    pub fn record_password_failure(
        &mut self,
        scopes: &[&str],
        window: i64,
        now: i64,
    ) -> Result<()> {
        let tx = self.immediate()?;
        for scope in scopes {
            tx.execute(
                "INSERT INTO password_failures (scope, count, window_start) VALUES (?1, 1, ?2)
                 ON CONFLICT (scope) DO UPDATE SET
                     count = CASE WHEN window_start + ?3 > ?2 THEN count + 1 ELSE 1 END,
                     window_start = CASE WHEN window_start + ?3 > ?2 THEN window_start ELSE ?2 END",
                params![scope, now, window],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets the failures of a scope (after a right password).
    pub fn clear_password_failures(&mut self, scope: &str) -> Result<()> {
        self.write("DELETE FROM password_failures WHERE scope = ?1", [scope])?;
        Ok(())
    }

    // The web page's sessions.

    /// Stores a new web session (anonymous when `user_id` is `None`).
    pub fn add_web_session(&mut self, session: &WebSession) -> Result<()> {
        let tx = self.immediate()?;
        // Expired sessions go as new ones come, so the table stays small.
        tx.execute(
            "DELETE FROM web_sessions WHERE expires_at <= ?1",
            [session.created_at],
        )?;
        tx.execute(
            "INSERT INTO web_sessions (id, user_id, csrf, created_at, expires_at, code_at, remote_addr)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                &session.id[..],
                session.user_id,
                session.csrf,
                session.created_at,
                session.expires_at,
                session.code_at,
                session.remote_addr
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The web session with this id, if it has not expired.
    pub fn web_session(&self, id: &[u8; 32], now: i64) -> Result<Option<WebSession>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, user_id, csrf, created_at, expires_at, code_at, pending_secret, pending_codes, remote_addr
                 FROM web_sessions WHERE id = ?1 AND expires_at > ?2",
                params![&id[..], now],
                |row| {
                    let id: Vec<u8> = row.get(0)?;
                    Ok(WebSession {
                        id: id.try_into().unwrap_or([0; 32]),
                        user_id: row.get(1)?,
                        csrf: row.get(2)?,
                        created_at: row.get(3)?,
                        expires_at: row.get(4)?,
                        code_at: row.get(5)?,
                        pending_secret: row.get(6)?,
                        pending_codes: row.get(7)?,
                        remote_addr: row.get(8)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records that a code was entered in this web session.
    pub fn set_web_code_at(&mut self, id: &[u8; 32], at: i64) -> Result<()> {
        self.write(
            "UPDATE web_sessions SET code_at = ?1 WHERE id = ?2",
            params![at, &id[..]],
        )?;
        Ok(())
    }

    /// Keeps (or, with `None`, drops) an enrolment in progress.
    pub fn set_web_pending(
        &mut self,
        id: &[u8; 32],
        secret: Option<&[u8]>,
        codes: Option<&[u8]>,
    ) -> Result<()> {
        self.write(
            "UPDATE web_sessions SET pending_secret = ?1, pending_codes = ?2 WHERE id = ?3",
            params![secret, codes, &id[..]],
        )?;
        Ok(())
    }

    pub fn delete_web_session(&mut self, id: &[u8; 32]) -> Result<()> {
        self.conn
            .execute("DELETE FROM web_sessions WHERE id = ?1", [&id[..]])?;
        Ok(())
    }

    /// Ends every web session of a user (password set, 2FA reset, disabled).
    pub fn delete_web_sessions_of(&mut self, user_id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM web_sessions WHERE user_id = ?1", [user_id])?;
        Ok(())
    }

    // One-time set-password links.

    pub fn add_password_link(
        &mut self,
        hash: &[u8; 32],
        user_id: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.write(
            "INSERT INTO password_links (hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            params![&hash[..], user_id, expires_at],
        )?;
        Ok(())
    }

    /// The user a link is for, if it is unused and not expired.
    pub fn password_link_user(&self, hash: &[u8; 32], now: i64) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT user_id FROM password_links WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![&hash[..], now],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Uses a link once and sets the password, atomically: false when the
    /// link was used or expired meanwhile.
    pub fn use_password_link(
        &mut self,
        hash: &[u8; 32],
        password_hash: &str,
        now: i64,
    ) -> Result<bool> {
        let tx = self.immediate()?;
        let user_id: Option<i64> = tx
            .query_row(
                "UPDATE password_links SET used_at = ?1 WHERE hash = ?2 AND used_at IS NULL AND expires_at > ?1
                 RETURNING user_id",
                params![now, &hash[..]],
                |row| row.get(0),
            )
            .optional()?;
        let Some(user_id) = user_id else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![password_hash, user_id],
        )?;
        tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", [user_id])?;
        tx.commit()?;
        Ok(true)
    }

    // SSH keys.

    #[allow(clippy::too_many_arguments)]
    pub fn add_key(
        &mut self,
        user_id: i64,
        algorithm: &str,
        blob: &str,
        fingerprint: &str,
        comment: &str,
        now: i64,
    ) -> Result<i64> {
        let tx = self.immediate()?;
        tx.execute(
            "INSERT INTO ssh_keys (user_id, algorithm, blob, fingerprint, comment, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user_id, algorithm, blob, fingerprint, comment, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    pub fn key(&self, id: i64) -> Result<Option<SshKey>> {
        Ok(self
            .conn
            .query_row(
                &format!("{KEY_COLUMNS} WHERE k.id = ?1"),
                [id],
                key_from_row,
            )
            .optional()?)
    }

    pub fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Option<SshKey>> {
        Ok(self
            .conn
            .query_row(
                &format!("{KEY_COLUMNS} WHERE k.fingerprint = ?1"),
                [fingerprint],
                key_from_row,
            )
            .optional()?)
    }

    pub fn keys(&self, user: Option<&str>) -> Result<Vec<SshKey>> {
        let mut statement = self.conn.prepare(&format!(
            "{KEY_COLUMNS} WHERE (?1 IS NULL OR u.name = ?1) ORDER BY k.id"
        ))?;
        let rows = statement.query_map([user], key_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes a key, and ends the 2FA sessions opened with it (with
    /// `bind_session = "key"` they were good for that key alone).
    pub fn remove_key(&mut self, id: i64, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute("DELETE FROM ssh_keys WHERE id = ?1", [id])?;
        tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE key_id = ?2 AND ended_at IS NULL",
            params![now, id],
        )?;
        tx.commit()?;
        Ok(changed == 1)
    }

    // The audit log.

    pub fn append_audit(&mut self, record: &AuditRecord) -> Result<()> {
        let tx = self.immediate()?;
        insert_audit(&tx, record)?;
        tx.commit()?;
        Ok(())
    }

    /// Audit rows, newest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<(i64, AuditRecord)>> {
        let mut statement = self.conn.prepare(
            "SELECT id, at, user, transport, repo, action, refs, outcome, reason, credential,
                    key_id, token_id, remote_addr, detail
             FROM audit WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR repo = ?2)
             ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = statement.query_map(params![filter.user, filter.repo, filter.limit], |row| {
            Ok((
                row.get(0)?,
                AuditRecord {
                    at: row.get(1)?,
                    user: row.get(2)?,
                    transport: row.get(3)?,
                    repo: row.get(4)?,
                    action: row.get(5)?,
                    refs: row.get(6)?,
                    outcome: row.get(7)?,
                    reason: row.get(8)?,
                    credential: row.get(9)?,
                    key_id: row.get(10)?,
                    token_id: row.get(11)?,
                    remote_addr: row.get(12)?,
                    detail: row.get(13)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// How often a connection waiting for the write lock looks again.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// The busy handler: wait `BUSY_POLL` and try again, for `BUSY_TIMEOUT` in
/// all. SQLite's own handler backs off to 100 ms sleeps, so under many
/// concurrent decisions (each appends an audit row) a waiter could miss
/// every moment the lock was free and starve past the timeout; short polls
/// share the lock in something close to arrival order.
fn wait_for_lock(attempt: i32) -> bool {
    thread_local! {
        static WAITING_SINCE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let since = WAITING_SINCE.with(|since| {
        // SQLite counts attempts from 0 for each wait.
        if attempt == 0 || since.get().is_none() {
            since.set(Some(now));
        }
        since.get().unwrap_or(now)
    });
    if now.duration_since(since) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
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

fn replace_recovery_codes(
    tx: &rusqlite::Transaction,
    user_id: i64,
    hashes: &[String],
) -> Result<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    for hash in hashes {
        tx.execute(
            "INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)",
            params![user_id, hash],
        )?;
    }
    Ok(())
}

fn insert_session(
    tx: &rusqlite::Transaction,
    user_id: i64,
    s: &NewSession,
    now: i64,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO sessions (user_id, created_at, expires_at, key_id, remote_addr, opened_via)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user_id,
            now,
            now + s.ttl,
            s.key_id,
            s.remote_addr,
            s.opened_via
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn insert_audit(tx: &rusqlite::Transaction, r: &AuditRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO audit (at, user, transport, repo, action, refs, outcome, reason, credential,
                            key_id, token_id, remote_addr, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            r.at,
            r.user,
            r.transport,
            r.repo,
            r.action,
            r.refs,
            r.outcome,
            r.reason,
            r.credential,
            r.key_id,
            r.token_id,
            r.remote_addr,
            r.detail
        ],
    )?;
    Ok(())
}

const USER_COLUMNS: &str =
    "SELECT id, name, password_hash, enabled, is_admin, always_2fa, totp_secret,
    totp_enrolled_at, failures, locked_until, created_at FROM users";

fn user_from_row(row: &rusqlite::Row) -> rusqlite::Result<User> {
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
    })
}

const TOKEN_COLUMNS: &str =
    "SELECT t.id, t.user_id, u.name, t.name, t.repos, t.permission, t.created_at,
    t.expires_at, t.revoked_at, t.last_used_at, t.without_2fa FROM tokens t JOIN users u ON u.id = t.user_id";

fn token_from_row(row: &rusqlite::Row) -> rusqlite::Result<Token> {
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
    })
}

const KEY_COLUMNS: &str =
    "SELECT k.id, k.user_id, u.name, k.algorithm, k.blob, k.fingerprint, k.comment,
    k.created_at, k.last_used_at FROM ssh_keys k JOIN users u ON u.id = k.user_id";

fn key_from_row(row: &rusqlite::Row) -> rusqlite::Result<SshKey> {
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
    })
}

#[cfg(test)]
mod tests;
