//! SSH keys.

use super::*;

impl Store {
    // SSH keys.

    #[allow(clippy::too_many_arguments)]
    pub fn add_key(
        &mut self,
        user_id: i64,
        algorithm: &str,
        blob: &str,
        fingerprint: &str,
        comment: &str,
        hardware: Option<Hardware>,
        now: i64,
    ) -> Result<i64> {
        if hardware.is_some() && !algorithm.starts_with("sk-") {
            return Err(StoreError::Value(format!(
                "a {algorithm} key cannot be marked as a hardware key"
            )));
        }
        let tx = self.immediate()?;
        let id = tx
            .one(
                "INSERT INTO ssh_keys (user_id, algorithm, blob, fingerprint, comment, created_at, hardware)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                &params![
                    user_id,
                    algorithm,
                    blob,
                    fingerprint,
                    comment,
                    now,
                    hardware.map(Hardware::as_str)
                ],
            )?
            .get(0)?;
        tx.stage_ids(Some(id), None);
        tx.commit()?;
        Ok(id)
    }

    pub fn key(&self, id: i64) -> Result<Option<SshKey>> {
        first(
            self.conn
                .row(&format!("{KEY_COLUMNS} WHERE k.id = ?1"), &params![id])?,
            key_from_row,
        )
    }

    pub fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Option<SshKey>> {
        first(
            self.conn.row(
                &format!("{KEY_COLUMNS} WHERE k.fingerprint = ?1"),
                &params![fingerprint],
            )?,
            key_from_row,
        )
    }

    pub fn keys(&self, user: Option<&str>) -> Result<Vec<SshKey>> {
        all(
            self.conn.rows(
                &format!("{KEY_COLUMNS} WHERE (?1 IS NULL OR u.name = ?1) ORDER BY k.id"),
                &params![user],
            )?,
            key_from_row,
        )
    }

    /// Marks a security key as proving presence or verification, or
    /// unmarks it (`None`). The caller checked that it is an `sk-` key.
    /// Lowering or removing the mark takes effect at the key's next use;
    /// the 2FA sessions it opened are not its to end (a hardware key opens
    /// none).
    pub fn set_key_hardware(&mut self, id: i64, hardware: Option<Hardware>) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE ssh_keys SET hardware = ?2 WHERE id = ?1 AND algorithm LIKE 'sk-%'",
            &params![id, hardware.map(Hardware::as_str)],
        )?;
        tx.unstage_unless(changed == 1);
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Removes a key, and ends the 2FA sessions opened with it (with
    /// `bind_session = "key"` they were good for that key alone).
    pub fn remove_key(&mut self, id: i64, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute("DELETE FROM ssh_keys WHERE id = ?1", &params![id])?;
        tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE key_id = ?2 AND ended_at IS NULL",
            &params![now, id],
        )?;
        // A `2fa verify` link the key asked for, still waiting, ends too.
        tx.execute(
            "UPDATE verify_links SET expires_at = ?1
             WHERE key_id = ?2 AND used_at IS NULL AND expires_at > ?1",
            &params![now, id],
        )?;
        tx.unstage_unless(changed == 1);
        tx.commit()?;
        Ok(changed == 1)
    }
}
