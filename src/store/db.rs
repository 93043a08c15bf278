//! The store's two engines behind one small interface, so that each query
//! is written once.
//!
//! - SQL uses SQLite's numbered placeholders (`?1`); PostgreSQL receives
//!   them as `$1`. Nothing else in the SQL differs: both engines take
//!   `RETURNING`, `ON CONFLICT`, and `"user"` quoted.
//! - A value is an integer, text, bytes, or a NULL of one of those kinds.
//!   Each parameter's type is therefore known before the query is sent, and
//!   PostgreSQL runs a query in one round trip (`query_typed`), without a
//!   prepare.
//! - Integers are 64-bit on both engines (`BIGINT` in PostgreSQL), and
//!   flags are integers 0 and 1, as SQLite stores them.
//! - A write transaction is exclusive on both engines. SQLite takes its
//!   write lock (`BEGIN IMMEDIATE`). PostgreSQL takes transaction-level
//!   advisory locks that every host takes for the same writes: one
//!   host-wide lock, exclusive, or, for a transaction about one user's rows
//!   (a code attempt, an enrolment, a reset), that lock shared and the
//!   user's own exclusive. So a read-then-write inside a transaction (the
//!   lock check before a code attempt, say) sees no other writer of the
//!   same rows, on one host or on several, and different users' code
//!   attempts do not wait for each other.

use std::cell::RefCell;

use tokio_postgres::types::{ToSql, Type};

use super::error::{Result, StoreError};
use super::pg::PgClient;
use super::value::{Kind, Row, Value};
use super::wire;
pub use super::wire::Begin;

/// The PostgreSQL advisory lock that a write transaction holds: the bytes
/// of "git2fa" as a number, so that it does not collide by chance with
/// another application's locks in the same database.
const WRITE_LOCK: i64 = 0x6769_7432_6661;

/// The first key of a user's advisory lock (the two-key form, whose keys
/// never meet the one-key `WRITE_LOCK`'s): "g2fa" as a number.
pub const USER_LOCKS: i32 = 0x6732_6661;

/// The second key of user `id`'s lock: ids past 2^31 share a key with a
/// lower one, which only makes them wait for each other.
pub fn user_lock_key(id: i64) -> i32 {
    (id & 0x7fff_ffff) as i32
}

/// A connection to either engine.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    /// The client needs `&mut` for every exchange; a store's reads take
    /// `&self`, and a store is used by one thread at a time.
    Postgres(Box<RefCell<PgClient>>),
    /// PostgreSQL through `git2fa serve`'s pool: over its socket, or in
    /// its own process.
    Remote(Box<RefCell<dyn wire::Remote>>),
}

impl Conn {
    pub fn postgres(client: PgClient) -> Conn {
        Conn::Postgres(Box::new(RefCell::new(client)))
    }

    pub fn remote(remote: impl wire::Remote + 'static) -> Conn {
        Conn::Remote(Box::new(RefCell::new(remote)))
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<usize> {
        match self {
            Conn::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params))?),
            Conn::Postgres(client) => {
                let typed = typed(params);
                let changed = client
                    .borrow_mut()
                    .execute_typed(&dollar_placeholders(sql), &typed)?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
            Conn::Remote(client) => client.borrow_mut().execute(sql, params),
        }
    }

    /// Every row a query returns.
    pub fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match self {
            Conn::Sqlite(conn) => {
                // Parsed once per connection: a connection `git2fa serve`
                // keeps (`kept`) runs the same few statements again and
                // again.
                let mut statement = conn.prepare_cached(sql)?;
                let columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let values = (0..columns)
                        .map(|i| sqlite_value(row.get_ref(i)?))
                        .collect::<Result<Vec<_>>>()?;
                    out.push(Row::from_values(values));
                }
                Ok(out)
            }
            Conn::Postgres(client) => {
                let typed = typed(params);
                let rows = client
                    .borrow_mut()
                    .query_typed(&dollar_placeholders(sql), &typed)?;
                rows.iter().map(postgres_row).collect()
            }
            Conn::Remote(client) => client.borrow_mut().rows(sql, params),
        }
    }

    /// The first row a query returns, if any.
    pub fn row(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// The first row a query returns, which must be there.
    pub fn one(&self, sql: &str, params: &[Value]) -> Result<Row> {
        self.row(sql, params)?
            .ok_or_else(|| StoreError::Value("the query returned no row".to_string()))
    }

    /// Statements without parameters, separated by `;`.
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Conn::Postgres(client) => Ok(client.borrow_mut().batch_execute(sql)?),
            Conn::Remote(client) => client.borrow_mut().batch(sql),
        }
    }

    /// Starts a transaction of this kind (see the module's comment); the
    /// caller ends it with `end`. `immediate` and `snapshot` do both.
    pub fn begin(&self, begin: Begin) -> Result<()> {
        // SQLite in serve: its requests take turns to write (`group`).
        let sqlite_write = matches!(
            (self, begin),
            (Conn::Sqlite(_), Begin::Immediate | Begin::ImmediateFor(_))
        );
        if sqlite_write {
            super::turn::take_turn()?;
        }
        let begun = self.begin_statements(begin);
        if sqlite_write && begun.is_err() {
            super::turn::give_turn();
        }
        // A lock not had in time leaves PostgreSQL's transaction open and
        // failed: end it, so that the connection is usable again.
        if begun.is_err() && matches!(self, Conn::Postgres(_)) {
            let _ = self.batch("ROLLBACK");
        }
        begun
    }

    fn begin_statements(&self, begin: Begin) -> Result<()> {
        match (self, begin) {
            (Conn::Remote(client), _) => client.borrow_mut().begin(begin),
            (Conn::Sqlite(_), Begin::Immediate | Begin::ImmediateFor(_)) => {
                self.batch("BEGIN IMMEDIATE")
            }
            (Conn::Postgres(client), Begin::Immediate) => {
                let settings = client.borrow().transaction_settings().to_string();
                self.batch(&format!(
                    "BEGIN; {settings}SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                ))
            }
            // The host-wide lock shared (any number of users at once, none
            // beside an `Immediate`), and the user's own exclusive.
            (Conn::Postgres(client), Begin::ImmediateFor(user)) => {
                let settings = client.borrow().transaction_settings().to_string();
                self.batch(&format!(
                    "BEGIN; {settings}SELECT pg_advisory_xact_lock_shared({WRITE_LOCK}), \
                     pg_advisory_xact_lock({USER_LOCKS}, {})",
                    user_lock_key(user)
                ))
            }
            // SQLite's snapshot starts at the first read.
            (Conn::Sqlite(_), Begin::Snapshot) => {
                self.batch("BEGIN DEFERRED; SELECT 1 FROM sqlite_master LIMIT 1")
            }
            (Conn::Postgres(client), Begin::Snapshot) => {
                let settings = client.borrow().transaction_settings().to_string();
                self.batch(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {settings}"
                ))
            }
        }
    }

    /// Commits, or rolls back, the transaction `begin` started.
    pub fn end(&self, commit: bool) -> Result<()> {
        match self {
            Conn::Remote(client) => client.borrow_mut().end(commit),
            Conn::Sqlite(_) => {
                let ended = self.batch(if commit { "COMMIT" } else { "ROLLBACK" });
                // A snapshot holds no turn; giving back none is a no-op.
                super::turn::give_turn();
                ended
            }
            _ => self.batch(if commit { "COMMIT" } else { "ROLLBACK" }),
        }
    }

    /// Starts an exclusive write transaction.
    pub fn immediate(&self) -> Result<Tx<'_>> {
        self.begin(Begin::Immediate)?;
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    /// Starts a write transaction about `user`'s rows alone: exclusive for
    /// that user (see `Begin::ImmediateFor`).
    pub fn immediate_for(&self, user: i64) -> Result<Tx<'_>> {
        self.begin(Begin::ImmediateFor(user))?;
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    /// Starts a read transaction: every read until it is dropped sees the
    /// same snapshot, and writers elsewhere go on.
    pub fn snapshot(&self) -> Result<Tx<'_>> {
        self.begin(Begin::Snapshot)?;
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    /// PostgreSQL, directly or through `git2fa serve`: its SQL dialect
    /// where the engines differ.
    pub fn is_postgres(&self) -> bool {
        !matches!(self, Conn::Sqlite(_))
    }

    /// Whether the connection is known to be gone (a pool drops it).
    pub fn is_closed(&self) -> bool {
        match self {
            Conn::Postgres(client) => client.borrow().is_closed(),
            _ => false,
        }
    }

    /// Whether the connection answers within `limit` (one round trip, for
    /// a pooled connection that was idle).
    pub fn is_usable_within(&self, limit: std::time::Duration) -> bool {
        match self {
            Conn::Postgres(client) => client.borrow_mut().is_valid_within(limit),
            _ => true,
        }
    }
}

/// A transaction: committed by `commit`, rolled back when dropped without
/// it (an error on the way, or a decision not to write).
pub struct Tx<'a> {
    conn: &'a Conn,
    open: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.conn.end(true)?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A failed rollback leaves nothing committed: the engine rolls
            // back a transaction whose connection closes.
            let _ = self.conn.end(false);
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Null(_) => ValueRef::Null,
        }))
    }
}

fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Result<Value> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Integer(i) => Ok(Value::Int(i)),
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map(Value::Text)
            .map_err(|_| StoreError::Value("text that is not UTF-8".to_string())),
        ValueRef::Blob(b) => Ok(Value::Blob(b.to_vec())),
        // SQLite reports no kind for a NULL; a NULL reads as None whatever
        // the Rust type.
        ValueRef::Null => Ok(Value::Null(Kind::Int)),
        ValueRef::Real(_) => Err(StoreError::Value("a floating-point column".to_string())),
    }
}

static NULL_INT: Option<i64> = None;
static NULL_TEXT: Option<String> = None;
static NULL_BLOB: Option<Vec<u8>> = None;

/// Each parameter with its PostgreSQL type.
fn typed(params: &[Value]) -> Vec<(&(dyn ToSql + Sync), Type)> {
    params
        .iter()
        .map(|value| -> (&(dyn ToSql + Sync), Type) {
            match value {
                Value::Int(i) => (i, Type::INT8),
                Value::Text(s) => (s, Type::TEXT),
                Value::Blob(b) => (b, Type::BYTEA),
                Value::Null(Kind::Int) => (&NULL_INT, Type::INT8),
                Value::Null(Kind::Text) => (&NULL_TEXT, Type::TEXT),
                Value::Null(Kind::Blob) => (&NULL_BLOB, Type::BYTEA),
            }
        })
        .collect()
}

fn postgres_row(row: &tokio_postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?
                .map_or(Value::Null(Kind::Int), Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map_or(Value::Null(Kind::Int), |v| Value::Int(v.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map_or(Value::Null(Kind::Int), |v| Value::Int(v.into()))
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
            row.try_get::<_, Option<String>>(i)?
                .map_or(Value::Null(Kind::Text), Value::Text)
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?
                .map_or(Value::Null(Kind::Blob), Value::Blob)
        } else {
            return Err(StoreError::Value(format!(
                "column {} has the unexpected type {ty}",
                column.name()
            )));
        };
        values.push(value);
    }
    Ok(Row::from_values(values))
}

/// `?1` → `$1`. The store's SQL has no `?` in its literals.
pub fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_dollars() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?1 AND (?2 IS NULL OR c = ?12)"),
            "SELECT a FROM t WHERE b = $1 AND ($2 IS NULL OR c = $12)"
        );
        assert_eq!(dollar_placeholders("SELECT '?' || x"), "SELECT '?' || x");
    }
}
