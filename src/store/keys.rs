//! SSH keys, and the append-only audit log.

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
        now: i64,
    ) -> Result<i64> {
        let tx = self.immediate()?;
        tx.execute(
            "INSERT INTO ssh_keys (user_id, algorithm, blob, fingerprint, comment, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user_id, algorithm, blob, fingerprint, comment, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    pub fn key(&self, id: i64) -> Result<Option<SshKey>> {
        Ok(self
            .conn
            .query_row(
                &format!("{KEY_COLUMNS} WHERE k.id = ?1"),
                [id],
                key_from_row,
            )
            .optional()?)
    }

    pub fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Option<SshKey>> {
        Ok(self
            .conn
            .query_row(
                &format!("{KEY_COLUMNS} WHERE k.fingerprint = ?1"),
                [fingerprint],
                key_from_row,
            )
            .optional()?)
    }

    pub fn keys(&self, user: Option<&str>) -> Result<Vec<SshKey>> {
        let mut statement = self.conn.prepare(&format!(
            "{KEY_COLUMNS} WHERE (?1 IS NULL OR u.name = ?1) ORDER BY k.id"
        ))?;
        let rows = statement.query_map([user], key_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes a key, and ends the 2FA sessions opened with it (with
    /// `bind_session = "key"` they were good for that key alone).
    pub fn remove_key(&mut self, id: i64, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute("DELETE FROM ssh_keys WHERE id = ?1", [id])?;
        tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE key_id = ?2 AND ended_at IS NULL",
            params![now, id],
        )?;
        tx.commit()?;
        Ok(changed == 1)
    }

    // The audit log.

    pub fn append_audit(&mut self, record: &AuditRecord) -> Result<()> {
        let tx = self.immediate()?;
        insert_audit(&tx, record)?;
        tx.commit()?;
        Ok(())
    }

    /// Audit rows, newest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<(i64, AuditRecord)>> {
        let mut statement = self.conn.prepare(
            "SELECT id, at, user, transport, repo, action, refs, outcome, reason, credential,
                    key_id, token_id, remote_addr, detail
             FROM audit WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR repo = ?2)
             ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = statement.query_map(params![filter.user, filter.repo, filter.limit], |row| {
            Ok((
                row.get(0)?,
                AuditRecord {
                    at: row.get(1)?,
                    user: row.get(2)?,
                    transport: row.get(3)?,
                    repo: row.get(4)?,
                    action: row.get(5)?,
                    refs: row.get(6)?,
                    outcome: row.get(7)?,
                    reason: row.get(8)?,
                    credential: row.get(9)?,
                    key_id: row.get(10)?,
                    token_id: row.get(11)?,
                    remote_addr: row.get(12)?,
                    detail: row.get(13)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
