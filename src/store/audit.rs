//! The audit log: appended to, read, never changed.

use super::*;

impl Store {
    /// Appends `record`, committed when this returns `Ok`; then, when
    /// `[log] audit = "syslog"`, sends it to syslog too.
    pub fn append_audit(&mut self, record: &AuditRecord) -> Result<()> {
        self.commit_audit(record)?;
        syslog_row(record);
        Ok(())
    }

    fn commit_audit(&mut self, record: &AuditRecord) -> Result<()> {
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

/// A committed row as one syslog line of `key=value` fields (none of them
/// `detail`, the internal cause, which goes to the log on its own).
fn syslog_row(r: &AuditRecord) {
    use crate::system::syslog::field;
    let mut fields = vec![
        field("at", &crate::system::time::format_rfc3339(r.at)),
        field("transport", &r.transport),
    ];
    if let Some(user) = &r.user {
        fields.push(field("user", user));
    }
    fields.extend([
        field("action", &r.action),
        field("outcome", &r.outcome),
        field("reason", &r.reason),
    ]);
    let optional = [
        ("repo", r.repo.clone()),
        ("refs", r.refs.clone()),
        ("credential", r.credential.clone()),
        ("key", r.key_id.map(|id| id.to_string())),
        ("token", r.token_id.map(|id| id.to_string())),
        ("addr", r.remote_addr.clone()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            fields.push(field(key, &value));
        }
    }
    let refused = matches!(r.outcome.as_str(), "refuse" | "fail");
    crate::system::syslog::audit(refused, &fields.join(" "));
}
