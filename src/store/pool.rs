//! The server's side of the store socket (`wire`): the connections
//! `git2fa serve` keeps to PostgreSQL, and the answers to one client.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::connect::{self, timeout};
use super::db::{Begin, Conn};
use super::error::{Result, StoreError};
use super::value::{Row, Value};
use super::wire::{
    Answer, IDLE, Remote, UNIQUE_VIOLATION, decode_statement, encode_answer, read_frame,
    write_frame,
};

/// The connections `git2fa serve` keeps to PostgreSQL, at most `size`.
pub struct Pool {
    url: String,
    password_file: Option<PathBuf>,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

/// How long a client outside a transaction may stay silent: it holds no
/// connection meanwhile, only its thread.
const IDLE_OUTSIDE: Duration = Duration::from_secs(600);

/// How long a client's transaction may live, however busy the client:
/// a write transaction holds the write lock of every host sharing the
/// store. git2fa's own take milliseconds.
pub const MAX_TRANSACTION: Duration = Duration::from_secs(10);

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
    /// else waits up to `timeout()` for one.
    fn take(&self) -> Result<Conn> {
        // One deadline for the whole wait: a check of an idle connection
        // and a new connection share it, so that a hung server costs a
        // client `timeout()`, not twice that.
        let deadline = Instant::now() + timeout();
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        loop {
            if let Some((conn, since)) = state.idle.pop() {
                if since.elapsed() < CHECK_AFTER {
                    return Ok(conn);
                }
                drop(state);
                if conn.is_usable_within(left()) {
                    return Ok(conn);
                }
                drop(conn);
                self.forget();
                state = self.state.lock().map_err(|_| poisoned())?;
                continue;
            }
            if state.open < self.size {
                if left().is_zero() {
                    return Err(StoreError::Unreachable(format!(
                        "PostgreSQL did not answer within {} s",
                        timeout().as_secs_f64()
                    )));
                }
                state.open += 1;
                drop(state);
                let opened = connect::client(&self.url, self.password_file.as_deref(), left());
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

/// One client's use of the pool: a statement runs on any free
/// connection; a transaction keeps one connection until it ends, and is
/// rolled back if the session ends first. `git2fa serve` uses one per
/// `Store` in its own process, and one per client of the store socket.
pub struct Session {
    pool: Arc<Pool>,
    held: Option<Conn>,
    /// When the held transaction began.
    began: Option<Instant>,
}

impl Session {
    pub fn new(pool: Arc<Pool>) -> Session {
        Session {
            pool,
            held: None,
            began: None,
        }
    }

    /// How much longer the transaction under way may live, if one is.
    fn transaction_left(&self) -> Option<Duration> {
        self.began
            .map(|began| MAX_TRANSACTION.saturating_sub(began.elapsed()))
    }

    /// Runs `run` on the held connection, or on a free one.
    fn on_conn<T>(&mut self, run: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        if let Some(conn) = &self.held {
            return run(conn);
        }
        let conn = self.pool.take()?;
        let result = run(&conn);
        self.pool.give(conn);
        result
    }
}

impl Remote for Session {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        self.on_conn(|conn| conn.execute(sql, params))
    }

    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.on_conn(|conn| conn.rows(sql, params))
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        if self.held.is_some() {
            return self.on_conn(|conn| conn.batch(sql));
        }
        // A batch outside a transaction may open one (`BEGIN` without its
        // end): the connection goes back to the pool only after a rollback,
        // which is a no-op otherwise.
        let conn = self.pool.take()?;
        let result = conn.batch(sql);
        release(&self.pool, conn, false).and(result)
    }

    fn begin(&mut self, begin: Begin) -> Result<()> {
        if self.held.is_some() {
            return Err(StoreError::Value("a transaction is open already".into()));
        }
        let conn = self.pool.take()?;
        match conn.begin(begin) {
            Ok(()) => {
                self.held = Some(conn);
                self.began = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                // Whatever state it is in, it goes back clean or not at all.
                let _ = release(&self.pool, conn, false);
                Err(e)
            }
        }
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        self.began = None;
        let conn = self
            .held
            .take()
            .ok_or_else(|| StoreError::Value("no transaction is open".into()))?;
        release(&self.pool, conn, commit)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(conn) = self.held.take() {
            // Dropped by `release` if the rollback fails.
            let _ = release(&self.pool, conn, false);
        }
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

/// The pool of this process's `git2fa serve`, which its own requests use
/// directly (`use_in_process`).
static IN_PROCESS: OnceLock<Arc<Pool>> = OnceLock::new();

/// Makes every store of this process with `url` use `pool`, rather than
/// a socket or a connection of its own.
pub fn use_in_process(pool: Arc<Pool>) {
    let _ = IN_PROCESS.set(pool);
}

/// A session of this process's pool, if it has one for `url`.
pub fn in_process(url: &str) -> Option<Session> {
    let pool = IN_PROCESS.get()?;
    (pool.url == url).then(|| Session::new(Arc::clone(pool)))
}

/// Answers one client of the store socket until it hangs up, stays
/// silent for `IDLE` in a transaction (`IDLE_OUTSIDE` otherwise: an admin
/// command may wait for a typed password), or keeps a transaction past
/// `MAX_TRANSACTION` (silent or not); then rolls back a transaction it
/// left open.
pub fn answer(mut stream: UnixStream, pool: Arc<Pool>) {
    if stream.set_write_timeout(Some(IDLE)).is_err() {
        return;
    }
    let mut session = Session::new(pool);
    let expired = |session: &Session| session.transaction_left().is_some_and(|l| l.is_zero());
    loop {
        if expired(&session) {
            too_long(&mut stream);
            break;
        }
        // In a transaction, the wait for the next request ends at the
        // transaction's own limit when that comes before `IDLE`.
        let (limit, at_the_limit) = match session.transaction_left() {
            Some(left) if left < IDLE => (left, true),
            Some(_) => (IDLE, false),
            None => (IDLE_OUTSIDE, false),
        };
        if stream.set_read_timeout(Some(limit)).is_err() {
            break;
        }
        let body = match read_frame(&mut stream) {
            Ok(Some(body)) if !expired(&session) => body,
            // The limit ran out while it waited for the client, or before
            // its request came: the answer to that request says so.
            Ok(Some(_)) => {
                too_long(&mut stream);
                break;
            }
            Err(_) if at_the_limit => {
                too_long(&mut stream);
                break;
            }
            _ => break,
        };
        let reply = match handle(&body, &mut session) {
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
}

/// Tells a client whose transaction ran past `MAX_TRANSACTION` that it
/// was rolled back (the answer to its next request, or to the one it
/// sent), before hanging up on it.
fn too_long(stream: &mut UnixStream) {
    log::warn!(
        "store socket: a client kept a transaction past {} s; rolled back and hung up",
        MAX_TRANSACTION.as_secs()
    );
    let _ = write_frame(
        stream,
        &encode_answer(&Answer::Failed {
            code: String::new(),
            message: format!(
                "the transaction ran past {} s and was rolled back",
                MAX_TRANSACTION.as_secs()
            ),
        }),
    );
}

fn handle(body: &[u8], session: &mut Session) -> Result<Answer> {
    let malformed = || StoreError::Value("a malformed request".into());
    let (&op, rest) = body.split_first().ok_or_else(malformed)?;
    match op {
        b'H' => Ok(if rest == session.pool.url.as_bytes() {
            Answer::Done
        } else {
            super::wire::other_database()
        }),
        b'T' => session.begin(Begin::Immediate).map(|()| Answer::Done),
        b'U' => {
            let id: [u8; 8] = rest.try_into().map_err(|_| malformed())?;
            session
                .begin(Begin::ImmediateFor(i64::from_be_bytes(id)))
                .map(|()| Answer::Done)
        }
        b'S' => session.begin(Begin::Snapshot).map(|()| Answer::Done),
        b'C' | b'X' => session.end(op == b'C').map(|()| Answer::Done),
        b'E' | b'R' | b'B' => {
            let (sql, params) = decode_statement(rest).ok_or_else(malformed)?;
            match op {
                b'E' => session
                    .execute(&sql, &params)
                    .map(|n| Answer::Changed(n as u64)),
                b'R' => session
                    .rows(&sql, &params)
                    .map(|rows| Answer::Rows(rows.into_iter().map(Row::into_values).collect())),
                _ => session.batch(&sql).map(|()| Answer::Done),
            }
        }
        _ => Err(malformed()),
    }
}
