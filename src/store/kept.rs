//! SQLite connections kept open between the decisions `git2fa serve` makes
//! for the host's shims (`keeping`, around the work of its decide socket):
//! a few, handed back when a `Store` is dropped with no transaction open,
//! and taken again by the next `Store::connect` for the same file, on
//! whichever thread. Past `MAX_KEPT` a connection is closed as before.
//!
//! Only the decide socket keeps them: long-lived connections among the
//! short ones of the web page's requests kept serve's heap from shrinking
//! after a burst (the soak's resident memory after its bursts of log-ins:
//! 105 MiB without, 131 to 135 MiB with two or eight connections kept for
//! every request).
//!
//! Opening a connection costs more than a decision: SQLite opens the file
//! and its WAL index, then parses the schema on the first query. Measured
//! on serve's decide socket, a round trip took 1.2 ms with a new connection
//! each time and 0.7 ms with a kept one (its statements parsed once,
//! `db::Conn` prepares them cached).

use std::cell::Cell;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

/// Set by `keep_connections`.
static KEEP: AtomicBool = AtomicBool::new(false);

/// Connections kept at most: more than serve's cores, so that requests
/// side by side each find one.
const MAX_KEPT: usize = 4;

/// The page cache of a connection of serve's, in KiB: a decision reads a
/// few indexed pages.
const KEPT_CACHE_KIB: i64 = 512;

struct Kept {
    path: PathBuf,
    /// The file's device and inode when the connection opened it: a store
    /// replaced since (restored, moved) is opened anew.
    file: (u64, u64),
    conn: Connection,
}

static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread does the work of `keeping`.
    static HERE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` with kept connections (when `keep_connections` was called).
pub fn keeping_for<T>(work: impl FnOnce() -> T) -> T {
    /// Unsets the flag however `work` ends.
    struct Here;
    impl Drop for Here {
        fn drop(&mut self) {
            HERE.with(|here| here.set(false));
        }
    }
    HERE.with(|here| here.set(true));
    let _here = Here;
    work()
}

/// Makes this process keep a connection per thread. Once; for serve.
pub fn keep_connections() {
    KEEP.store(true, Ordering::Relaxed);
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// A kept connection to the file at `path` (whose metadata is `meta`), if
/// there is one.
pub(super) fn take(path: &Path, meta: &std::fs::Metadata) -> Option<Connection> {
    if !keeping() {
        return None;
    }
    let mut kept = KEPT.lock().ok()?;
    let file = identity(meta);
    let at = kept.iter().position(|k| k.path == path && k.file == file)?;
    let found = kept.swap_remove(at);
    found.conn.is_autocommit().then_some(found.conn)
}

/// Keeps `conn` for a later `take`, when keeping is on, no transaction is
/// open on it and fewer than `MAX_KEPT` are kept; else it is closed.
pub(super) fn give_back(path: &Path, conn: Connection) {
    if !keeping() || !conn.is_autocommit() {
        return;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let Ok(mut kept) = KEPT.lock() else {
        return;
    };
    if kept.len() < MAX_KEPT {
        kept.push(Kept {
            path: path.to_path_buf(),
            file: identity(&meta),
            conn,
        });
    }
}

/// Whether this thread keeps connections (the caller then gives its
/// connection back when done).
pub(super) fn keeping() -> bool {
    KEEP.load(Ordering::Relaxed) && HERE.with(Cell::get)
}

/// What a new connection that may be kept is set up with.
pub(super) fn setup() -> Option<String> {
    keeping().then(|| format!("PRAGMA cache_size=-{KEPT_CACHE_KIB};"))
}
