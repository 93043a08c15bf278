//! The server's side of the store socket (`wire`): the connections
//! `git2fa serve` keeps to PostgreSQL, and the answers to one client.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::connect::{self, BUSY_TIMEOUT};
use super::db::{Begin, Conn};
use super::error::{Result, StoreError};
use super::value::Row;
use super::wire::{
    Answer, IDLE, UNIQUE_VIOLATION, decode_statement, encode_answer, read_frame, write_frame,
};

/// The connections `git2fa serve` keeps to PostgreSQL, at most `size`.
pub struct Pool {
    url: String,
    password_file: Option<PathBuf>,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

/// A connection idle longer than this is checked before it is used: a
/// server restarted meanwhile leaves connections that fail at their next
/// statement, and the sync client notices only when it uses one.
const CHECK_AFTER: Duration = Duration::from_secs(1);

struct PoolState {
    /// Each with the moment it was given back.
    idle: Vec<(Conn, Instant)>,
    /// Connections idle or in use.
    open: usize,
}

impl Pool {
    pub fn new(url: &str, password_file: Option<&Path>, size: usize) -> Pool {
        Pool {
            url: url.to_string(),
            password_file: password_file.map(Path::to_path_buf),
            size,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// An idle connection, or a new one while fewer than `size` are open;
    /// else waits up to `BUSY_TIMEOUT` for one.
    fn take(&self) -> Result<Conn> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        loop {
            if let Some((conn, since)) = state.idle.pop() {
                if since.elapsed() < CHECK_AFTER {
                    return Ok(conn);
                }
                drop(state);
                if conn.is_usable() {
                    return Ok(conn);
                }
                drop(conn);
                self.forget();
                state = self.state.lock().map_err(|_| poisoned())?;
                continue;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                let opened = connect::client(&self.url, self.password_file.as_deref());
                return match opened {
                    Ok(client) => Ok(Conn::postgres(client)),
                    Err(e) => {
                        self.forget();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .map_err(|_| poisoned())?
                .0;
        }
    }

    /// Gives a connection back; a closed one is dropped.
    fn give(&self, conn: Conn) {
        if conn.is_closed() {
            self.forget();
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.idle.push((conn, Instant::now()));
        }
        self.freed.notify_one();
    }

    /// A connection that is gone (closed, or dropped after a failure).
    fn forget(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.open = state.open.saturating_sub(1);
        }
        self.freed.notify_one();
    }
}

fn poisoned() -> StoreError {
    StoreError::Value("the connection pool's lock is poisoned".into())
}

/// Answers one client until it hangs up, then rolls back a transaction
/// it left open.
pub fn answer(mut stream: UnixStream, pool: &Pool) {
    if stream.set_read_timeout(Some(IDLE)).is_err() {
        return;
    }
    let mut held: Option<Conn> = None;
    while let Ok(Some(body)) = read_frame(&mut stream) {
        let reply = match handle(&body, pool, &mut held) {
            Ok(answer) => answer,
            Err(e) => {
                let code = match &e {
                    StoreError::Exists => UNIQUE_VIOLATION.to_string(),
                    StoreError::Postgres(pg) => pg.code().map_or("", |c| c.code()).to_string(),
                    StoreError::Remote { code, .. } => code.clone(),
                    _ => String::new(),
                };
                Answer::Failed {
                    code,
                    message: e.to_string(),
                }
            }
        };
        if write_frame(&mut stream, &encode_answer(&reply)).is_err() {
            break;
        }
    }
    if let Some(conn) = held.take() {
        // Dropped by `release` if the rollback fails.
        let _ = release(pool, conn, false);
    }
}

/// Ends a held transaction and gives its connection back (dropped if
/// ending it failed: its state is unknown).
fn release(pool: &Pool, conn: Conn, commit: bool) -> Result<()> {
    match conn.end(commit) {
        Ok(()) => {
            pool.give(conn);
            Ok(())
        }
        Err(e) => {
            drop(conn);
            pool.forget();
            Err(e)
        }
    }
}

fn handle(body: &[u8], pool: &Pool, held: &mut Option<Conn>) -> Result<Answer> {
    let malformed = || StoreError::Value("a malformed request".into());
    let (&op, rest) = body.split_first().ok_or_else(malformed)?;
    match op {
        b'T' | b'S' => {
            if held.is_some() {
                return Err(StoreError::Value("a transaction is open already".into()));
            }
            let conn = pool.take()?;
            let begin = if op == b'T' {
                Begin::Immediate
            } else {
                Begin::Snapshot
            };
            match conn.begin(begin) {
                Ok(()) => {
                    *held = Some(conn);
                    Ok(Answer::Done)
                }
                Err(e) => {
                    // Whatever state it is in, it goes back clean or not at all.
                    let _ = release(pool, conn, false);
                    Err(e)
                }
            }
        }
        b'C' | b'X' => {
            let conn = held
                .take()
                .ok_or_else(|| StoreError::Value("no transaction is open".into()))?;
            release(pool, conn, op == b'C').map(|()| Answer::Done)
        }
        b'E' | b'R' | b'B' => {
            let (sql, params) = decode_statement(rest).ok_or_else(malformed)?;
            let run = |conn: &Conn| -> Result<Answer> {
                match op {
                    b'E' => conn
                        .execute(&sql, &params)
                        .map(|n| Answer::Changed(n as u64)),
                    b'R' => conn
                        .rows(&sql, &params)
                        .map(|rows| Answer::Rows(rows.into_iter().map(Row::into_values).collect())),
                    _ => conn.batch(&sql).map(|()| Answer::Done),
                }
            };
            match held {
                Some(conn) => run(conn),
                None => {
                    let conn = pool.take()?;
                    let answer = run(&conn);
                    pool.give(conn);
                    answer
                }
            }
        }
        _ => Err(malformed()),
    }
}
