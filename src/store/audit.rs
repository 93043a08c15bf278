//! The audit log: appended to, read, never changed.

use super::*;

impl Store {
    pub fn append_audit(&mut self, record: &AuditRecord) -> Result<()> {
        // One insert: SQLite takes its write lock for it; PostgreSQL needs
        // none, so that decisions on several hosts do not queue on it.
        if self.conn.is_postgres() {
            return insert_audit(&self.conn, record);
        }
        // In serve: with the rows of other requests, one commit for all.
        if let Some(written) = group::append(self.path.as_deref(), record) {
            return written;
        }
        let tx = self.immediate()?;
        insert_audit(&tx, record)?;
        tx.commit()
    }

    /// Appends `records` in one write transaction: all or none.
    pub(super) fn append_audit_rows<'a>(
        &mut self,
        records: impl Iterator<Item = &'a AuditRecord>,
    ) -> Result<()> {
        let tx = self.immediate()?;
        for record in records {
            insert_audit(&tx, record)?;
        }
        tx.commit()
    }

    /// Audit rows, newest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<(i64, AuditRecord)>> {
        let rows = self.conn.rows(
            "SELECT id, at, \"user\", transport, repo, action, refs, outcome, reason, credential,
                    key_id, token_id, remote_addr, detail
             FROM audit WHERE (?1 IS NULL OR \"user\" = ?1) AND (?2 IS NULL OR repo = ?2)
             ORDER BY id DESC LIMIT ?3",
            &params![filter.user, filter.repo, filter.limit],
        )?;
        all(rows, |row| {
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
        })
    }
}
