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
