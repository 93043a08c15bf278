//! Facts about the store itself.

use super::*;

/// The fingerprint of the `secret.key` that seals the store's secrets.
const KEY_FINGERPRINT: &str = "secret_key_fingerprint";

impl Store {
    /// The fingerprint of the `secret.key` recorded for this store, if any.
    pub fn key_fingerprint(&self) -> Result<Option<String>> {
        first(
            self.conn.row(
                "SELECT value FROM settings WHERE name = ?1",
                &params![KEY_FINGERPRINT],
            )?,
            |row| row.get(0),
        )
    }

    /// Records the fingerprint of the `secret.key` unless one is recorded
    /// already; returns the one the store holds afterwards (which differs
    /// from `fingerprint` when another key came first).
    pub fn record_key_fingerprint(&self, fingerprint: &str) -> Result<String> {
        let tx = self.immediate()?;
        tx.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            &params![KEY_FINGERPRINT, fingerprint],
        )?;
        let recorded = tx
            .one(
                "SELECT value FROM settings WHERE name = ?1",
                &params![KEY_FINGERPRINT],
            )?
            .get(0)?;
        tx.commit()?;
        Ok(recorded)
    }
}

impl Store {
    /// PostgreSQL's timeouts as a transaction of this connection has them
    /// (`statement_timeout`, `lock_timeout`), in PostgreSQL's words:
    /// `git2fa check` shows they are in force, even through a pooler.
    pub fn transaction_timeouts(&self) -> Result<Option<(String, String)>> {
        if !self.conn.is_postgres() {
            return Ok(None);
        }
        let tx = self.conn.snapshot()?;
        let statement: String = tx.one("SHOW statement_timeout", &[])?.get(0)?;
        let lock: String = tx.one("SHOW lock_timeout", &[])?.get(0)?;
        drop(tx);
        Ok(Some((statement, lock)))
    }

    /// The store at `location`, PostgreSQL reached by this process itself,
    /// not through a local serve's socket.
    pub fn connect_direct(location: &Location) -> Result<Store> {
        match location {
            Location::Postgres {
                url, password_file, ..
            } => Store::connect(&Location::Postgres {
                url: url.clone(),
                password_file: password_file.clone(),
                socket: None,
            }),
            sqlite => Store::connect(sqlite),
        }
    }
}
