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

    /// Audit rows, newest first; oldest first from `after_id` or `since`.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<(i64, AuditRecord)>> {
        let from = filter.after_id.is_some() || filter.since.is_some();
        let sql = format!(
            "SELECT id, at, \"user\", transport, repo, action, refs, outcome, reason, credential,
                    key_id, token_id, remote_addr, detail, factor
             FROM audit WHERE (?1 IS NULL OR \"user\" = ?1) AND (?2 IS NULL OR repo = ?2)
                AND id > ?3 AND at >= ?4
             ORDER BY id {} LIMIT ?5",
            if from { "ASC" } else { "DESC" }
        );
        let rows = self.conn.rows(
            &sql,
            &params![
                filter.user,
                filter.repo,
                filter.after_id.unwrap_or(0),
                filter.since.unwrap_or(i64::MIN),
                i64::from(filter.limit)
            ],
        )?;
        all(rows, audit_row)
    }

    /// The audit rows of `ids` that are there now.
    fn audit_of(&self, ids: &[i64]) -> Result<Vec<(i64, AuditRecord)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let rows = self.conn.rows(
            &format!(
                "SELECT id, at, \"user\", transport, repo, action, refs, outcome, reason, credential,
                        key_id, token_id, remote_addr, detail, factor
                 FROM audit WHERE id IN ({}) ORDER BY id",
                list.join(",")
            ),
            &[],
        )?;
        all(rows, audit_row)
    }
}

/// Reads the audit rows as they are written, each once, for `audit
/// --follow` and serve's metrics. Ids are handed out in order, but on
/// PostgreSQL the transactions holding them may commit out of order: a
/// row with a lower id can appear after a higher one was read. The cursor
/// remembers the ids it skipped over and looks for them again until they
/// are older than any transaction can be (`SETTLE`; a rolled-back row
/// never appears).
pub struct AuditCursor {
    last: i64,
    /// Ids skipped over, with when they were first missed.
    missing: std::collections::BTreeMap<i64, i64>,
}

impl AuditCursor {
    /// Seconds after which a missing id is given up.
    const SETTLE: i64 = 300;
    /// Missing ids remembered at most (a jump of the id sequence, as
    /// PostgreSQL makes after a crash, is not hundreds of rows in flight).
    const MAX_MISSING: usize = 10_000;
    /// Missing ids remembered per gap at most.
    const MAX_PER_GAP: i64 = 256;

    /// A cursor after row `last`.
    pub fn after(last: i64) -> AuditCursor {
        AuditCursor {
            last,
            missing: Default::default(),
        }
    }

    /// The newest id read.
    pub fn last(&self) -> i64 {
        self.last
    }

    /// The rows written since the last call (or `after`'s id) and the
    /// late ones, oldest first by id, at most about `limit`; `now` in Unix
    /// seconds.
    pub fn next(&mut self, store: &Store, limit: u32, now: i64) -> Result<Vec<(i64, AuditRecord)>> {
        // Everything read first: an error changes nothing.
        let mut rows = Vec::new();
        let ids: Vec<i64> = self.missing.keys().copied().collect();
        for chunk in ids.chunks(500) {
            rows.extend(store.audit_of(chunk)?);
        }
        let fresh = store.audit(&AuditFilter {
            after_id: Some(self.last),
            limit,
            ..AuditFilter::default()
        })?;
        for (id, _) in &rows {
            self.missing.remove(id);
        }
        self.missing.retain(|_, seen| now - *seen < Self::SETTLE);
        for (id, row) in fresh {
            let gap = (self.last + 1).max(id - Self::MAX_PER_GAP)..id;
            for skipped in gap {
                if self.missing.len() < Self::MAX_MISSING {
                    self.missing.insert(skipped, now);
                }
            }
            self.last = id;
            rows.push((id, row));
        }
        rows.sort_by_key(|(id, _)| *id);
        Ok(rows)
    }
}

impl Store {
    /// Appends the row of a refusal made before the decision, within the
    /// bound per address; false when the bound left it unrecorded.
    pub fn append_refusal(&mut self, record: &AuditRecord) -> Result<bool> {
        let address = refusal_source(record.remote_addr.as_deref().unwrap_or("unknown"));
        let scope = format!("refused:{address}");
        let tx = self.immediate()?;
        let found = tx.rows(
            "SELECT count, window_start FROM password_failures WHERE scope = ?1",
            &params![scope],
        )?;
        let (count, start) = match found.first() {
            Some(row) => {
                let (count, start): (i64, i64) = (row.get(0)?, row.get(1)?);
                if start > record.at - REFUSAL_WINDOW {
                    (count, start)
                } else {
                    (0, record.at)
                }
            }
            None => (0, record.at),
        };
        if count > MAX_REFUSALS_PER_ADDRESS {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO password_failures (scope, count, window_start) VALUES (?1, ?2, ?3)
             ON CONFLICT (scope) DO UPDATE SET count = excluded.count,
                                               window_start = excluded.window_start",
            &params![scope, count + 1, start],
        )?;
        let row = if count < MAX_REFUSALS_PER_ADDRESS {
            record.clone()
        } else {
            AuditRecord {
                reason: "refusals-unrecorded".into(),
                detail: Some(format!(
                    "{MAX_REFUSALS_PER_ADDRESS} refusals from {address} within {} minutes; more until {} are not recorded",
                    REFUSAL_WINDOW / 60,
                    crate::system::time::format_rfc3339(start + REFUSAL_WINDOW)
                )),
                ..record.clone()
            }
        };
        insert_audit(&tx, &row)?;
        tx.commit()?;
        syslog_row(&row);
        Ok(true)
    }
}

impl Store {
    /// Removes the audit rows older than `before` (Unix seconds) that
    /// `exported` says an export holds exactly as the store does, oldest
    /// first, stopping at the first that it does not: the rows removed are
    /// always every row up to some id. The store records that id
    /// (`audit_exported_through`); its triggers refuse to delete any row
    /// past it, so nothing else can remove a row not exported. `record`
    /// (the prune's own audit row) commits in the same transaction.
    pub fn prune_audit(
        &mut self,
        before: i64,
        exported: &dyn Fn(i64, &AuditRecord) -> bool,
        record: impl Fn(&AuditPruned) -> AuditRecord,
    ) -> Result<AuditPruned> {
        let tx = self.immediate()?;
        let older: i64 = tx
            .one("SELECT count(*) FROM audit WHERE at < ?1", &params![before])?
            .get(0)?;
        // From the oldest row still here (not from the last prune's end:
        // a row below it may have committed since, on PostgreSQL, or been
        // newer than that prune's time), oldest first by id, until a row
        // is too new or not in the export, so that every row removed was
        // checked and the rows removed are every row up to one id.
        let mut through: Option<i64> = None;
        let mut checked = 0u64;
        let mut after = 0i64;
        'pages: loop {
            let page = tx.rows(
                "SELECT id, at, \"user\", transport, repo, action, refs, outcome, reason,
                        credential, key_id, token_id, remote_addr, detail, factor
                 FROM audit WHERE id > ?1 ORDER BY id ASC LIMIT 1000",
                &params![after],
            )?;
            if page.is_empty() {
                break;
            }
            for row in page {
                let (id, r) = audit_row(&row)?;
                if r.at >= before || !exported(id, &r) {
                    break 'pages;
                }
                through = Some(id);
                checked += 1;
                after = id;
            }
        }
        let pruned = AuditPruned {
            removed: checked,
            kept: (older as u64).saturating_sub(checked),
        };
        // The prune's row first: the table is never left empty, so SQLite
        // (whose ids are the highest plus one) never hands out an id again.
        let row = record(&pruned);
        insert_audit(&tx, &row)?;
        if let Some(id) = through {
            let recorded: i64 = tx
                .one(
                    "SELECT COALESCE(MAX(CAST(value AS BIGINT)), 0) FROM settings
                         WHERE name = ?1",
                    &params![EXPORTED_THROUGH],
                )?
                .get(0)?;
            if id > recorded {
                tx.execute(
                    "INSERT INTO settings (name, value) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    &params![EXPORTED_THROUGH, id.to_string()],
                )?;
            }
            // Exactly the rows checked, or nothing: on PostgreSQL a row with
            // a lower id may have committed since they were read.
            let removed = tx.execute("DELETE FROM audit WHERE id <= ?1", &params![id])? as u64;
            if removed != checked {
                return Err(StoreError::Value(format!(
                    "{removed} audit rows up to #{id} where {checked} were checked against the export (a row committed meanwhile); nothing was removed: run it again"
                )));
            }
        }
        tx.commit()?;
        syslog_row(&row);
        Ok(pruned)
    }
}

/// Who a refusal is counted against: the address, or for IPv6 its /64
/// (one host's share; an attacker holds the whole /64, not one address).
pub fn refusal_source(address: &str) -> String {
    match address
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical())
    {
        Ok(std::net::IpAddr::V6(ip)) => {
            let s = ip.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_string(),
    }
}

/// The setting that names the newest audit row an export was proven to
/// hold; the audit table's triggers let rows up to it be deleted, no other.
const EXPORTED_THROUGH: &str = "audit_exported_through";

fn audit_row(row: &Row) -> Result<(i64, AuditRecord)> {
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
            factor: row.get(14)?,
        },
    ))
}

/// A committed row as one syslog line of `key=value` fields (none of them
/// `detail`, the internal cause, which goes to the log on its own).
pub(super) fn syslog_row(r: &AuditRecord) {
    use crate::system::syslog::field;
    if !crate::system::syslog::audit_enabled() {
        return;
    }
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
        ("factor", r.factor.clone()),
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

pub(super) fn insert_audit(conn: &Conn, r: &AuditRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO audit (at, \"user\", transport, repo, action, refs, outcome, reason, credential,
                            key_id, token_id, remote_addr, detail, factor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        &params![
            r.at,
            // A token typed as a user name is never stored.
            r.user
                .as_deref()
                .map(|u| no_nul(&crate::system::names::shown_user(u))),
            r.transport,
            r.repo.as_deref().map(no_nul),
            r.action,
            r.refs.as_deref().map(no_nul),
            r.outcome,
            no_nul(&r.reason),
            r.credential,
            r.key_id,
            r.token_id,
            r.remote_addr.as_deref().map(no_nul),
            r.detail.as_deref().map(no_nul),
            r.factor
        ],
    )?;
    Ok(())
}

/// A text without NUL, which PostgreSQL refuses in a text column: a row
/// quoting what a client sent is written whatever it sent (else the
/// insert, and the change or refusal with it, would fail).
fn no_nul(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_from_ipv6_count_per_64() {
        // Attack: one host holds a whole IPv6 /64 and sends each refusal
        // from another address, so that no bound per address is reached.
        assert_eq!(
            super::refusal_source("2001:db8:1:2:aaaa::1"),
            super::refusal_source("2001:db8:1:2:ffff::9")
        );
        assert_eq!(
            super::refusal_source("2001:db8:1:2::1"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            super::refusal_source("2001:db8:1:2::1"),
            super::refusal_source("2001:db8:1:3::1")
        );
        assert_eq!(super::refusal_source("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(super::refusal_source("192.0.2.7"), "192.0.2.7");
        assert_eq!(super::refusal_source("unknown"), "unknown");
    }
}
