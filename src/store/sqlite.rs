//! The SQLite store's file: creating and opening it (mode 0600, WAL, the
//! busy handler), syncing a new WAL and the directory, and emptying a long
//! WAL when the store is closed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, FileControl, OpenFlags};

use super::db::Conn;
use super::{Location, Result, Store, StoreError, classify, timeout};

impl Store {
    /// Creates a new SQLite store (the file must not exist), mode 0600, WAL.
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
        let store = Store::configure(conn, path)?;
        store.migrate()?;
        // A new store and its WAL: their directory entries are made durable.
        store.sync_dir()?;
        Ok(store)
    }

    /// Opens an existing SQLite store whose schema is current.
    pub fn open(path: &Path) -> Result<Store> {
        Store::connect(&Location::Sqlite(path.to_path_buf()))
    }

    pub(super) fn open_sqlite(path: &Path) -> Result<Store> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing(path.to_path_buf()));
            }
            Err(e) => return Err(StoreError::Io(path.to_path_buf(), e)),
            Ok(meta) if !meta.is_file() => {
                return Err(StoreError::NotADatabase(path.to_path_buf()));
            }
            Ok(meta) => {
                if let Some(conn) = super::kept::take(path, &meta) {
                    return Ok(Store {
                        conn: Conn::Sqlite(conn),
                        path: Some(path.to_path_buf()),
                        staged: Default::default(),
                    });
                }
            }
        }
        // Before SQLite opens (and may create) it.
        let had_wal = wal_path(path).exists();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        let store = Store::configure(conn, path)?;
        store.sync_new_wal(path, had_wal)?;
        Ok(store)
    }

    /// Makes a WAL that this process created durable: SQLite is built
    /// without its own directory sync (`.cargo/config.toml`), since it
    /// would pay for it in every process. A read opens the WAL, creating
    /// it if it is missing; then the directory entry is synced, before any
    /// commit could rely on it.
    pub(super) fn sync_new_wal(&self, path: &Path, had_wal: bool) -> Result<()> {
        if let Conn::Sqlite(conn) = &self.conn {
            conn.query_row("PRAGMA schema_version", [], |_| Ok(()))
                .map_err(|e| classify(path, e))?;
        }
        if had_wal || !wal_path(path).exists() {
            return Ok(());
        }
        self.sync_dir()
    }

    /// Copies the WAL's transactions into the store file and empties the
    /// WAL (SQLite's `wal_checkpoint(TRUNCATE)`): for `git2fa serve` now and
    /// then, and before the store's files are copied. Busy readers or
    /// writers make it do less, never harm. PostgreSQL checkpoints itself.
    pub fn checkpoint(&self) -> Result<()> {
        match (&self.conn, &self.path) {
            (Conn::Sqlite(conn), Some(path)) => conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(|e| classify(path, e)),
            _ => Ok(()),
        }
    }

    /// Syncs the store's directory: its entries (the store, its WAL) last.
    pub(super) fn sync_dir(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Io(dir.to_path_buf(), e))
    }

    fn configure(mut conn: Connection, path: &Path) -> Result<Store> {
        conn.busy_handler(Some(wait_for_lock))
            .map_err(|e| classify(path, e))?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(|e| classify(path, e))?;
        if let Some(setup) = super::kept::setup() {
            conn.execute_batch(&setup).map_err(|e| classify(path, e))?;
        }
        // The WAL and its index stay between processes: a shim or hook that
        // closes the store neither checkpoints (which syncs the database
        // file) nor deletes them, so a decision costs one fsync, its
        // commit's, with the same durability. A store closed with a WAL
        // past `WAL_TRUNCATE_BYTES` empties it (`Drop`), and `git2fa serve`
        // does every minute.
        conn.file_control(Some("main"), FileControl::PersistWal(&mut 1))
            .map_err(|e| classify(path, e))?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| classify(path, e))?;
        Ok(Store {
            conn: Conn::Sqlite(conn),
            path: Some(path.to_path_buf()),
            staged: Default::default(),
        })
    }
}

/// How often a connection waiting for the write lock looks again.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// The busy handler: wait `BUSY_POLL` and try again, for `timeout()` in
/// all. SQLite's own handler backs off to 100 ms sleeps, so under many
/// concurrent decisions (each appends an audit row) a waiter could miss
/// every moment the lock was free and starve past the timeout; short polls
/// share the lock in something close to arrival order.
pub(super) fn wait_for_lock(attempt: i32) -> bool {
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
    if now.duration_since(since) >= timeout() {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

impl Drop for Store {
    /// Empties a long WAL into the store file, if no other process is in
    /// the way at this moment (no waiting: a later close will do it).
    fn drop(&mut self) {
        let (Conn::Sqlite(conn), Some(path)) = (&self.conn, &self.path) else {
            return;
        };
        let long = std::fs::metadata(wal_path(path)).is_ok_and(|m| m.len() > WAL_TRUNCATE_BYTES);
        if long && conn.busy_timeout(std::time::Duration::ZERO).is_ok() {
            let _ = self.checkpoint();
        }
        // A connection whose busy handler was replaced just now is closed.
        if !long
            && super::kept::keeping()
            && let Conn::Sqlite(conn) = &mut self.conn
            && let Ok(placeholder) = Connection::open_in_memory()
        {
            let conn = std::mem::replace(conn, placeholder);
            super::kept::give_back(path, conn);
        }
    }
}

/// The store's write-ahead log: `<store>-wal`.
pub(super) fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// A WAL longer than this is emptied into the store file when a store is
/// closed. Every process rebuilds the WAL's index from the WAL when it
/// opens the store (SQLite resets the index of a WAL that no process has
/// open), so the cost of a decision grows with the WAL: measured on a
/// `git2fa-http` decision, 3.7 ms with a short WAL and 5.3 ms at 4 MiB.
/// Nor can SQLite's own checkpoint restart a WAL whose index was rebuilt:
/// it would copy the whole WAL again at every commit. At 256 KiB (about
/// twenty decisions) the checkpoint's syncs fall to one decision in twenty.
const WAL_TRUNCATE_BYTES: u64 = 256 * 1024;
