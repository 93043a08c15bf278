//! `git2fa store migrate`: a whole store copied into another, empty one
//! (an SQLite store into PostgreSQL), ids and all.

use super::value::{Kind, Value};
use super::*;

/// Every table, its columns and their kinds, parents before children (the
/// foreign keys hold at every insert). The first column of a table with an
/// id sequence is `id`.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "users",
        &[
            ("id", Kind::Int),
            ("name", Kind::Text),
            ("password_hash", Kind::Text),
            ("enabled", Kind::Int),
            ("is_admin", Kind::Int),
            ("always_2fa", Kind::Int),
            ("totp_secret", Kind::Blob),
            ("totp_enrolled_at", Kind::Int),
            ("totp_last_step", Kind::Int),
            ("failures", Kind::Int),
            ("locked_until", Kind::Int),
            ("created_at", Kind::Int),
        ],
    ),
    (
        "ssh_keys",
        &[
            ("id", Kind::Int),
            ("user_id", Kind::Int),
            ("algorithm", Kind::Text),
            ("blob", Kind::Text),
            ("fingerprint", Kind::Text),
            ("comment", Kind::Text),
            ("created_at", Kind::Int),
            ("last_used_at", Kind::Int),
            ("hardware", Kind::Text),
        ],
    ),
    (
        "recovery_codes",
        &[
            ("id", Kind::Int),
            ("user_id", Kind::Int),
            ("hash", Kind::Text),
            ("used_at", Kind::Int),
        ],
    ),
    (
        "sessions",
        &[
            ("id", Kind::Int),
            ("user_id", Kind::Int),
            ("created_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("ended_at", Kind::Int),
            ("key_id", Kind::Int),
            ("remote_addr", Kind::Text),
            ("opened_via", Kind::Text),
        ],
    ),
    (
        "tokens",
        &[
            ("id", Kind::Int),
            ("user_id", Kind::Int),
            ("name", Kind::Text),
            ("hash", Kind::Blob),
            ("repos", Kind::Text),
            ("permission", Kind::Text),
            ("created_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("revoked_at", Kind::Int),
            ("last_used_at", Kind::Int),
            ("without_2fa", Kind::Int),
            ("session_id", Kind::Int),
            ("oauth_client", Kind::Text),
        ],
    ),
    (
        "audit",
        &[
            ("id", Kind::Int),
            ("at", Kind::Int),
            ("\"user\"", Kind::Text),
            ("transport", Kind::Text),
            ("repo", Kind::Text),
            ("action", Kind::Text),
            ("refs", Kind::Text),
            ("outcome", Kind::Text),
            ("reason", Kind::Text),
            ("credential", Kind::Text),
            ("key_id", Kind::Int),
            ("token_id", Kind::Int),
            ("remote_addr", Kind::Text),
            ("detail", Kind::Text),
            ("factor", Kind::Text),
        ],
    ),
    (
        "password_failures",
        &[
            ("scope", Kind::Text),
            ("count", Kind::Int),
            ("window_start", Kind::Int),
        ],
    ),
    (
        "web_sessions",
        &[
            ("id", Kind::Blob),
            ("user_id", Kind::Int),
            ("csrf", Kind::Text),
            ("created_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("code_at", Kind::Int),
            ("pending_secret", Kind::Blob),
            ("pending_codes", Kind::Blob),
            ("remote_addr", Kind::Text),
            ("ceremony", Kind::Text),
        ],
    ),
    (
        "password_links",
        &[
            ("hash", Kind::Blob),
            ("user_id", Kind::Int),
            ("expires_at", Kind::Int),
            ("used_at", Kind::Int),
        ],
    ),
    ("settings", &[("name", Kind::Text), ("value", Kind::Text)]),
    (
        "security_keys",
        &[
            ("id", Kind::Int),
            ("user_id", Kind::Int),
            ("name", Kind::Text),
            ("credential_id", Kind::Blob),
            ("credential", Kind::Text),
            ("sign_count", Kind::Int),
            ("created_at", Kind::Int),
            ("last_used_at", Kind::Int),
        ],
    ),
    (
        "verify_links",
        &[
            ("hash", Kind::Blob),
            ("user_id", Kind::Int),
            ("key_id", Kind::Int),
            ("remote_addr", Kind::Text),
            ("created_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("used_at", Kind::Int),
            ("session_id", Kind::Int),
        ],
    ),
    (
        "oauth_codes",
        &[
            ("hash", Kind::Blob),
            ("user_id", Kind::Int),
            ("client_id", Kind::Text),
            ("redirect_uri", Kind::Text),
            ("challenge", Kind::Text),
            ("session_id", Kind::Int),
            ("remote_addr", Kind::Text),
            ("created_at", Kind::Int),
            ("expires_at", Kind::Int),
            ("used_at", Kind::Int),
            ("token_id", Kind::Int),
        ],
    ),
];

/// Rows read and written at a time: a store of millions of audit rows is
/// never all in memory, and each insert carries many rows.
const BATCH: usize = 500;

impl Store {
    /// Whether the store holds no row at all (its schema may exist).
    pub fn is_empty(&self) -> Result<bool> {
        for (table, _) in TABLES {
            if self
                .conn
                .row(&format!("SELECT 1 FROM {table} LIMIT 1"), &[])?
                .is_some()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Copies every row of this store into `target` (how many rows of each
    /// table), which must be empty
    /// and current, in one transaction of the target: a failure leaves it
    /// empty. This store is read in one read transaction, a consistent
    /// snapshot that does not stop it from working meanwhile. Each id
    /// sequence of the target then starts past every id this store ever
    /// gave (SQLite's `sqlite_sequence` too), so no id comes back.
    pub fn copy_into(&self, target: &Store) -> Result<Vec<(&'static str, usize)>> {
        if !target.is_empty()? {
            return Err(StoreError::Config(
                "the target store is not empty: it must be a new, empty database".into(),
            ));
        }
        let _snapshot = self.conn.snapshot()?;
        let tx = target.immediate()?;
        let mut copied = Vec::new();
        for (table, columns) in TABLES {
            let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
            let select = format!("SELECT {} FROM {table}", names.join(", "));
            let by_id = names[0] == "id" && columns[0].1 == Kind::Int;
            let mut count = 0;
            if by_id {
                let mut after = i64::MIN;
                loop {
                    let rows = self.conn.rows(
                        &format!("{select} WHERE id > ?1 ORDER BY id LIMIT {BATCH}"),
                        &params![after],
                    )?;
                    let Some(last) = rows.last() else { break };
                    after = last.get(0)?;
                    count += rows.len();
                    insert_rows(&tx, table, columns, rows)?;
                }
            } else {
                let rows = self.conn.rows(&select, &[])?;
                count = rows.len();
                for chunk in rows.chunks(BATCH) {
                    insert_rows(&tx, table, columns, chunk.to_vec())?;
                }
            }
            if by_id && tx.is_postgres() {
                let highest = self.highest_id(table)?;
                tx.execute(
                    &format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), ?1, ?2 <> 0)"),
                    &params![highest.max(1), highest > 0],
                )?;
            }
            copied.push((*table, count));
        }
        tx.commit()?;
        Ok(copied)
    }

    /// The highest id a table ever held: its largest row's, or SQLite's
    /// record of ids given (rows deleted since), whichever is higher.
    fn highest_id(&self, table: &str) -> Result<i64> {
        let largest: Option<i64> = self
            .conn
            .one(&format!("SELECT max(id) FROM {table}"), &[])?
            .get(0)?;
        let mut highest = largest.unwrap_or(0);
        if !self.conn.is_postgres() {
            let given: Option<i64> = first(
                self.conn.row(
                    "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                    &params![table],
                )?,
                |row| row.get(0),
            )?;
            highest = highest.max(given.unwrap_or(0));
        }
        Ok(highest)
    }
}

/// One multi-row insert; a NULL takes its column's kind, which SQLite
/// does not report.
fn insert_rows(tx: &Conn, table: &str, columns: &[(&str, Kind)], rows: Vec<Row>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = columns.len();
    let mut values = Vec::with_capacity(rows.len() * width);
    let mut tuples = Vec::with_capacity(rows.len());
    for (r, row) in rows.into_iter().enumerate() {
        let placeholders: Vec<String> =
            (1..=width).map(|c| format!("?{}", r * width + c)).collect();
        tuples.push(format!("({})", placeholders.join(", ")));
        for (value, (_, kind)) in row.into_values().into_iter().zip(columns) {
            values.push(match value {
                Value::Null(_) => Value::Null(*kind),
                other => other,
            });
        }
    }
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    tx.execute(
        &format!(
            "INSERT INTO {table} ({}) VALUES {}",
            names.join(", "),
            tuples.join(", ")
        ),
        &values,
    )?;
    Ok(())
}
