//! One writer for `git2fa serve` on SQLite: its requests' writes take
//! turns in the process instead of racing each other for SQLite's lock,
//! and their audit rows are committed together (group commit).
//!
//! Each request of serve opens its own connection. Every request writes
//! (an audit row, a token's last use), and SQLite lets one connection
//! write at a time: under a soak of a few hundred clients, writers waiting
//! in SQLite's busy handler missed their turns past the busy timeout, and
//! 0.6 % of honest operations were refused as "2FA check unavailable".
//! Now a write transaction of serve first takes this process's turn
//! (`turn`, waiting at most `[store] timeout`), so SQLite's lock is
//! only ever contended by other processes (hooks, the admin CLI). Audit
//! rows go further: whoever appends one while no batch is being written
//! writes every row queued so far in one transaction, with one fsync, and
//! each caller returns only once its row is committed, so a row is durable
//! before the operation it records is allowed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::{AuditRecord, Location, Result, Store, StoreError, connect};

/// This process's turn to write, and its batch of audit rows; set by
/// `enable` (serve, SQLite).
static WRITER: OnceLock<Writer> = OnceLock::new();

struct Writer {
    path: PathBuf,
    batch: Mutex<Batch>,
    written: Condvar,
    /// The connection batches are written on, kept open.
    store: Mutex<Option<Store>>,
}

#[derive(Default)]
struct Batch {
    queued: Vec<(u64, AuditRecord)>,
    next: u64,
    writing: bool,
    results: HashMap<u64, std::result::Result<(), String>>,
}

fn poisoned() -> StoreError {
    StoreError::Value("the writer's lock is poisoned".into())
}

/// Makes this process's SQLite store (`location`) take turns and group
/// its audit rows. Once; for `git2fa serve`.
pub fn enable(location: &Location) {
    if let Location::Sqlite(path) = location {
        super::turn::enable();
        let _ = WRITER.get_or_init(|| Writer {
            path: path.clone(),
            batch: Mutex::new(Batch::default()),
            written: Condvar::new(),
            store: Mutex::new(None),
        });
    }
}

/// Appends `record` with the rows queued beside it, when `enable` was
/// called for this store: `None` otherwise (the caller writes it itself).
pub(super) fn append(path: Option<&std::path::Path>, record: &AuditRecord) -> Option<Result<()>> {
    let writer = WRITER.get()?;
    if path != Some(writer.path.as_path()) {
        return None;
    }
    Some(writer.append(record))
}

impl Writer {
    fn append(&self, record: &AuditRecord) -> Result<()> {
        let deadline = Instant::now() + connect::timeout() * 2;
        let mut batch = self.batch.lock().map_err(|_| poisoned())?;
        let id = batch.next;
        batch.next += 1;
        batch.queued.push((id, record.clone()));
        loop {
            if let Some(result) = batch.results.remove(&id) {
                return result.map_err(StoreError::Value);
            }
            if !batch.writing {
                // This caller writes what is queued, its own row with it.
                batch.writing = true;
                let rows = std::mem::take(&mut batch.queued);
                drop(batch);
                let written = self.write(&rows);
                batch = self.batch.lock().map_err(|_| poisoned())?;
                batch.writing = false;
                for (row, _) in &rows {
                    batch.results.insert(
                        *row,
                        written.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                    );
                }
                self.written.notify_all();
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            batch = self
                .written
                .wait_timeout(batch, left)
                .map_err(|_| poisoned())?
                .0;
        }
    }

    /// Writes `rows` in one transaction: all or none.
    fn write(&self, rows: &[(u64, AuditRecord)]) -> Result<()> {
        let mut store = self.store.lock().map_err(|_| poisoned())?;
        if store.is_none() {
            *store = Some(Store::connect(&Location::Sqlite(self.path.clone()))?);
        }
        let Some(open) = store.as_mut() else {
            return Err(poisoned());
        };
        let written = open.append_audit_rows(rows.iter().map(|(_, r)| r));
        if written.is_err() {
            // Its state is unknown: the next batch opens a new one.
            *store = None;
        }
        written
    }
}
