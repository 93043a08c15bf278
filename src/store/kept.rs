//! SQLite connections kept open between the requests of a long-lived
//! process (`git2fa serve`, `keep_connections`): one per thread, handed
//! back when a `Store` is dropped with no transaction open, and taken again
//! by the next `Store::connect` on that thread for the same file.
//!
//! Opening a connection costs more than a decision: SQLite opens the file
//! and its WAL index, then parses the schema on the first query. Measured
//! on serve's decide socket, a round trip took 1.2 ms with a new connection
//! each time and 0.7 ms with a kept one (its statements parsed once,
//! `db::Conn` prepares them cached).

use std::cell::RefCell;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

/// Set by `keep_connections`.
static KEEP: AtomicBool = AtomicBool::new(false);

/// The page cache of a kept connection, in KiB: a decision reads a few
/// indexed pages, and a thread of serve's blocking pool keeps one
/// connection for as long as it lives.
const KEPT_CACHE_KIB: i64 = 512;

struct Kept {
    path: PathBuf,
    /// The file's device and inode when the connection opened it: a store
    /// replaced since (restored, moved) is opened anew.
    file: (u64, u64),
    conn: Connection,
}

thread_local! {
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Makes this process keep a connection per thread. Once; for serve.
pub fn keep_connections() {
    KEEP.store(true, Ordering::Relaxed);
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// This thread's kept connection to the file at `path` (whose metadata
/// is `meta`), if there is one.
pub(super) fn take(path: &Path, meta: &std::fs::Metadata) -> Option<Connection> {
    if !KEEP.load(Ordering::Relaxed) {
        return None;
    }
    let kept = KEPT.with(|kept| kept.borrow_mut().take())?;
    (kept.path == path && kept.file == identity(meta) && kept.conn.is_autocommit())
        .then_some(kept.conn)
}

/// Keeps `conn` for this thread's next `take`, when keeping is on and no
/// transaction is open on it; else it is closed.
pub(super) fn give_back(path: &Path, conn: Connection) {
    if !KEEP.load(Ordering::Relaxed) || !conn.is_autocommit() {
        return;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    KEPT.with(|kept| {
        *kept.borrow_mut() = Some(Kept {
            path: path.to_path_buf(),
            file: identity(&meta),
            conn,
        })
    });
}

/// Whether connections are kept (the caller then gives its connection
/// back when done).
pub(super) fn keeping() -> bool {
    KEEP.load(Ordering::Relaxed)
}

/// What a new connection of a process that keeps them is set up with.
pub(super) fn setup() -> Option<String> {
    keeping().then(|| format!("PRAGMA cache_size=-{KEPT_CACHE_KIB};"))
}
