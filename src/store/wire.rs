//! The store through the local `git2fa serve`, the client's side and the
//! wire format (`pool` is the server's side): a PostgreSQL store's
//! statements sent over a Unix socket (`<data_dir>/store.sock`) to the
//! server, which runs them on a small pool of connections it keeps open.
//!
//! A shim or hook lives for one git operation. Connecting to PostgreSQL
//! itself would cost each operation a TCP connection, a SCRAM exchange
//! (4096 rounds of PBKDF2 on both ends), TLS if asked, and a new server
//! process; and a busy host would open as many connections as it has git
//! operations. Through the socket an operation costs a local connect and
//! one round trip per statement, and PostgreSQL sees a steady few
//! connections per host.
//!
//! The protocol carries what `db::Conn` does: a statement with its values
//! (execute, rows, batch), and the start and end of a transaction, during
//! which the client keeps one pooled connection to itself. A client that
//! goes away, or says nothing for `IDLE`, has its transaction rolled
//! back. The socket is the store owner's alone (mode 0600, in `data_dir`),
//! and the server answers only its owner's uid and root.
//!
//! Frames: a 4-byte big-endian length, then the body. A client's first
//! request is `H` and the url it is configured with: serve answers `K` if
//! it uses that url, else `F` (code `G2URL`), and the client connects to
//! PostgreSQL itself. Requests: `E`
//! execute, `R` rows (each: the SQL, then the values), `B` batch (the
//! SQL), `T` begin a write transaction, `U` begin one about a user (then
//! the user's id, 8 bytes), `S` begin a snapshot, `C` commit,
//! `X` roll back. Answers: `N` rows changed, `W` rows, `K` done, `F`
//! failed (SQLSTATE, then the message). A value is a tag (`i` integer,
//! `t` text, `b` bytes, `I` `T` `B` a NULL of that kind) and its bytes.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{Result, StoreError};
use super::value::{Kind, Row, Value};

/// The socket's name in `data_dir`.
pub const SOCKET: &str = "store.sock";

/// How long the server waits for a client's next request.
pub const IDLE: Duration = Duration::from_secs(10);

/// The largest frame either side accepts.
const MAX_FRAME: usize = 16 << 20;

/// How long a client waits for an answer beyond `[store] timeout`: the
/// server's own deadline on the database comes first, and its answer then
/// needs a moment to arrive.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// The SQLSTATE of a unique violation, which the store reports as
/// `StoreError::Exists`; and of a missing table (a database without the
/// schema).
pub const UNIQUE_VIOLATION: &str = "23505";
pub const UNDEFINED_TABLE: &str = "42P01";

/// What serve answers a hello naming another url (`Client::hello`).
pub fn other_database() -> Answer {
    Answer::Failed {
        code: OTHER_DATABASE.into(),
        message: "git2fa serve uses another database".into(),
    }
}

/// What kind of transaction `begin` starts: an exclusive write
/// transaction, or a read-only snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    Immediate,
    /// A write transaction about one user's rows: on PostgreSQL it
    /// excludes other writes of that user's and every `Immediate` one, and
    /// runs beside other users' (on SQLite it is `Immediate`).
    ImmediateFor(i64),
    Snapshot,
}

/// A store reached through `git2fa serve`'s pool: from another process
/// (`Client`, over the socket), or in serve's own (`pool::Session`).
pub trait Remote: Send {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize>;
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    fn batch(&mut self, sql: &str) -> Result<()>;
    fn begin(&mut self, begin: Begin) -> Result<()>;
    fn end(&mut self, commit: bool) -> Result<()>;
}

// The client side.

/// A connection to the local server's store socket.
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
}

/// What serve answers a client's first frame, `H` and the url the client
/// is configured with: the same url as its own, or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// No server answers there for this account.
    Absent,
    /// It uses the database the client's `[store] url` names.
    Same,
    /// It uses another (its config changed since it started, say).
    Other,
}

/// The SQLSTATE-like code of serve's answer to a url not its own.
const OTHER_DATABASE: &str = "G2URL";

impl Client {
    /// Connects, if serve answers there for this account and uses the
    /// database `url` names; `None` otherwise (no socket, a stale one,
    /// another account's, or a serve on another database, which is
    /// logged): the caller then connects to PostgreSQL itself, so that
    /// every process acts on the database its own config names.
    pub fn connect(path: &Path, url: &str) -> Result<Option<Client>> {
        match Client::hello(path, url)? {
            (Serve::Same, client) => Ok(client),
            (Serve::Other, _) => {
                log::warn!(
                    "git2fa serve on {} uses another database than [store] url names; connecting directly (restart serve to use the new url)",
                    path.display()
                );
                Ok(None)
            }
            (Serve::Absent, _) => Ok(None),
        }
    }

    /// Whether serve answers at `path`, and on which database.
    pub fn serve_at(path: &Path, url: &str) -> Result<Serve> {
        Ok(Client::hello(path, url)?.0)
    }

    fn hello(path: &Path, url: &str) -> Result<(Serve, Option<Client>)> {
        let Some(mut client) = Client::open(path)? else {
            return Ok((Serve::Absent, None));
        };
        let mut frame = vec![b'H'];
        frame.extend_from_slice(url.as_bytes());
        match client.ask(&frame) {
            Ok(_) => Ok((Serve::Same, Some(client))),
            Err(StoreError::Remote { code, .. }) if code == OTHER_DATABASE => {
                Ok((Serve::Other, None))
            }
            // A serve that does not know the question (an older one).
            Err(StoreError::Remote { .. }) => Ok((Serve::Other, None)),
            Err(e) => Err(e),
        }
    }

    fn open(path: &Path) -> Result<Option<Client>> {
        match UnixStream::connect(path) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(super::connect::timeout() + ANSWER_MARGIN))
                    .and_then(|()| {
                        stream.set_write_timeout(Some(super::connect::timeout() + ANSWER_MARGIN))
                    })
                    .map_err(|e| StoreError::Io(path.to_path_buf(), e))?;
                Ok(Some(Client {
                    stream,
                    path: path.to_path_buf(),
                }))
            }
            // No server, a stale socket, or one that is not this account's
            // (a server run by another account): connect directly.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::PermissionDenied
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(StoreError::Io(path.to_path_buf(), e)),
        }
    }

    fn ask(&mut self, request: &[u8]) -> Result<Answer> {
        let io_error = |e| StoreError::Io(self.path.clone(), e);
        write_frame(&mut self.stream, request).map_err(io_error)?;
        let body = read_frame(&mut self.stream)
            .map_err(io_error)?
            .ok_or_else(|| {
                StoreError::Io(
                    self.path.clone(),
                    io::Error::new(io::ErrorKind::UnexpectedEof, "git2fa serve hung up"),
                )
            })?;
        let answer = decode_answer(&body)
            .ok_or_else(|| StoreError::Value("git2fa serve sent a malformed answer".into()))?;
        match answer {
            Answer::Failed { code, message } if code == UNIQUE_VIOLATION => {
                let _ = message;
                Err(StoreError::Exists)
            }
            Answer::Failed { code, message } => Err(StoreError::Remote { code, message }),
            other => Ok(other),
        }
    }

    fn done(&mut self, request: &[u8]) -> Result<()> {
        match self.ask(request)? {
            Answer::Done => Ok(()),
            _ => Err(unexpected()),
        }
    }
}

impl Remote for Client {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        match self.ask(&statement(b'E', sql, params))? {
            Answer::Changed(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => Err(unexpected()),
        }
    }

    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match self.ask(&statement(b'R', sql, params))? {
            Answer::Rows(rows) => Ok(rows.into_iter().map(Row::from_values).collect()),
            _ => Err(unexpected()),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        self.done(&statement(b'B', sql, &[]))
    }

    fn begin(&mut self, begin: Begin) -> Result<()> {
        match begin {
            Begin::Immediate => self.done(b"T"),
            Begin::ImmediateFor(user) => {
                let mut frame = vec![b'U'];
                frame.extend_from_slice(&user.to_be_bytes());
                self.done(&frame)
            }
            Begin::Snapshot => self.done(b"S"),
        }
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        self.done(if commit { b"C" } else { b"X" })
    }
}

fn unexpected() -> StoreError {
    StoreError::Value("git2fa serve answered out of turn".into())
}

// The wire format.

pub enum Answer {
    Changed(u64),
    Rows(Vec<Vec<Value>>),
    Done,
    Failed { code: String, message: String },
}

pub fn write_frame(stream: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}

/// A frame's body; `None` at a clean end of the stream.
pub fn read_frame(stream: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Some(body))
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Text(s) => {
            out.push(b't');
            put_bytes(out, s.as_bytes());
        }
        Value::Blob(b) => {
            out.push(b'b');
            put_bytes(out, b);
        }
        Value::Null(Kind::Int) => out.push(b'I'),
        Value::Null(Kind::Text) => out.push(b'T'),
        Value::Null(Kind::Blob) => out.push(b'B'),
    }
}

fn statement(op: u8, sql: &str, params: &[Value]) -> Vec<u8> {
    let mut out = vec![op];
    put_bytes(&mut out, sql.as_bytes());
    out.extend_from_slice(&(params.len() as u32).to_be_bytes());
    for value in params {
        put_value(&mut out, value);
    }
    out
}

pub fn encode_answer(answer: &Answer) -> Vec<u8> {
    match answer {
        Answer::Changed(n) => {
            let mut out = vec![b'N'];
            out.extend_from_slice(&n.to_be_bytes());
            out
        }
        Answer::Rows(rows) => {
            let mut out = vec![b'W'];
            out.extend_from_slice(&(rows.len() as u32).to_be_bytes());
            for row in rows {
                out.extend_from_slice(&(row.len() as u32).to_be_bytes());
                for value in row {
                    put_value(&mut out, value);
                }
            }
            out
        }
        Answer::Done => vec![b'K'],
        Answer::Failed { code, message } => {
            let mut out = vec![b'F'];
            put_bytes(&mut out, code.as_bytes());
            put_bytes(&mut out, message.as_bytes());
            out
        }
    }
}

/// Reads what `put_*` wrote; `None` for anything malformed.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.byte()? {
            b'i' => Value::Int(i64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            b't' => Value::Text(self.text()?),
            b'b' => Value::Blob(self.bytes()?.to_vec()),
            b'I' => Value::Null(Kind::Int),
            b'T' => Value::Null(Kind::Text),
            b'B' => Value::Null(Kind::Blob),
            _ => return None,
        })
    }

    /// A count of items, each at least one byte: never more than what is left.
    fn count(&mut self) -> Option<usize> {
        let n = self.u32()? as usize;
        (n <= self.0.len()).then_some(n)
    }

    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

pub fn decode_statement(body: &[u8]) -> Option<(String, Vec<Value>)> {
    let mut r = Reader(body);
    let sql = r.text()?;
    let n = r.count()?;
    let params = (0..n).map(|_| r.value()).collect::<Option<Vec<_>>>()?;
    r.end()?;
    Some((sql, params))
}

fn decode_answer(body: &[u8]) -> Option<Answer> {
    let mut r = Reader(body);
    let answer = match r.byte()? {
        b'N' => Answer::Changed(r.u64()?),
        b'W' => {
            let rows = r.count()?;
            let mut out = Vec::with_capacity(rows);
            for _ in 0..rows {
                let columns = r.count()?;
                out.push(
                    (0..columns)
                        .map(|_| r.value())
                        .collect::<Option<Vec<_>>>()?,
                );
            }
            Answer::Rows(out)
        }
        b'K' => Answer::Done,
        b'F' => Answer::Failed {
            code: r.text()?,
            message: r.text()?,
        },
        _ => return None,
    };
    r.end()?;
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_and_answers_come_back_as_they_went() {
        let params = vec![
            Value::Int(-7),
            Value::Text("ü ok".into()),
            Value::Blob(vec![0, 255]),
            Value::Null(Kind::Int),
            Value::Null(Kind::Text),
            Value::Null(Kind::Blob),
        ];
        let body = statement(b'R', "SELECT ?1", &params);
        assert_eq!(body[0], b'R');
        assert_eq!(
            decode_statement(&body[1..]),
            Some(("SELECT ?1".to_string(), params.clone()))
        );
        let rows = Answer::Rows(vec![params.clone(), vec![]]);
        match decode_answer(&encode_answer(&rows)) {
            Some(Answer::Rows(back)) => assert_eq!(back, vec![params, vec![]]),
            _ => panic!("rows did not come back"),
        }
        // Truncated or padded bodies are refused, never half read.
        assert!(decode_statement(&body[1..body.len() - 1]).is_none());
        let mut padded = body[1..].to_vec();
        padded.push(0);
        assert!(decode_statement(&padded).is_none());
        // A count larger than the body is refused before any allocation.
        assert!(decode_answer(&[b'W', 0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
