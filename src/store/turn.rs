//! This process's turn to write to SQLite, for `git2fa serve` (`group`
//! enables it): one write transaction at a time in the process, waiters
//! woken as the turn is given back, so that SQLite's own lock is only
//! contended by other processes (hooks, the admin CLI).

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::connect;
use super::error::{Result, StoreError};

/// Set by `enable`.
static TURN: OnceLock<Turn> = OnceLock::new();

/// The right to write: one holder at a time; waiters are woken as it
/// is given back (no polling, unlike SQLite's busy handler).
#[derive(Default)]
struct Turn {
    taken: Mutex<bool>,
    freed: Condvar,
}

impl Turn {
    /// Waits for the turn, at most `[store] timeout`.
    fn take(&self) -> Result<()> {
        let deadline = Instant::now() + connect::timeout();
        let mut taken = self.taken.lock().map_err(|_| poisoned())?;
        while *taken {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            taken = self
                .freed
                .wait_timeout(taken, left)
                .map_err(|_| poisoned())?
                .0;
        }
        *taken = true;
        Ok(())
    }

    fn give(&self) {
        if let Ok(mut taken) = self.taken.lock() {
            *taken = false;
        }
        self.freed.notify_one();
    }
}

fn poisoned() -> StoreError {
    StoreError::Value("the writer's lock is poisoned".into())
}

/// Makes this process's write transactions on SQLite take turns. Once.
pub(super) fn enable() {
    let _ = TURN.get_or_init(Turn::default);
}

thread_local! {
    /// Whether this thread holds the process's turn (a write transaction
    /// under way).
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Before a write transaction on SQLite: waits for the process's turn,
/// when `enable` was called (serve, SQLite).
pub(super) fn take_turn() -> Result<()> {
    let Some(turn) = TURN.get() else {
        return Ok(());
    };
    if HOLDING.with(|h| h.get()) {
        return Ok(());
    }
    turn.take()?;
    HOLDING.with(|h| h.set(true));
    Ok(())
}

/// After a write transaction ended (committed or not).
pub(super) fn give_turn() {
    if let Some(turn) = TURN.get()
        && HOLDING.with(|h| h.replace(false))
    {
        turn.give();
    }
}
