//! The store's write transactions: each commits the audit row of the
//! change under way (`Store::audited`) with the change, then sends it to
//! syslog.

use super::audit::{insert_audit, syslog_row};
use super::db::Tx;
use super::{AuditRecord, Result, Store};

impl Store {
    pub(super) fn immediate(&self) -> Result<StoreTx<'_>> {
        Ok(StoreTx {
            tx: self.conn.immediate()?,
            staged: &self.staged,
        })
    }

    /// A write transaction about `user_id`'s rows alone.
    pub(super) fn immediate_for(&self, user_id: i64) -> Result<StoreTx<'_>> {
        Ok(StoreTx {
            tx: self.conn.immediate_for(user_id)?,
            staged: &self.staged,
        })
    }
}

/// A write transaction of the store, which commits the audit row of the
/// change under way (`Store::audited`) with the change.
pub(super) struct StoreTx<'a> {
    tx: Tx<'a>,
    staged: &'a std::cell::RefCell<Option<AuditRecord>>,
}

impl<'a> std::ops::Deref for StoreTx<'a> {
    type Target = Tx<'a>;
    fn deref(&self) -> &Tx<'a> {
        &self.tx
    }
}

impl StoreTx<'_> {
    /// Names the key or token the change made in the staged row.
    pub(super) fn stage_ids(&self, key_id: Option<i64>, token_id: Option<i64>) {
        if let Some(record) = self.staged.borrow_mut().as_mut() {
            record.key_id = record.key_id.or(key_id);
            record.token_id = record.token_id.or(token_id);
        }
    }

    /// Adds what the change found (counts) to the staged row's detail.
    pub(super) fn stage_detail(&self, extra: &str) {
        if let Some(record) = self.staged.borrow_mut().as_mut() {
            record.detail = Some(match record.detail.take() {
                Some(detail) => format!("{detail}; {extra}"),
                None => extra.to_string(),
            });
        }
    }

    /// Sets the staged row's outcome, reason and detail from what the
    /// change found.
    pub(super) fn stage_result(&self, (outcome, reason, detail): (String, String, Option<String>)) {
        self.stage_edit(|record| {
            record.outcome = outcome;
            record.reason = reason;
            record.detail = detail;
        });
    }

    /// Changes the staged row to say what the change turned out to be.
    pub(super) fn stage_edit(&self, edit: impl FnOnce(&mut AuditRecord)) {
        if let Some(record) = self.staged.borrow_mut().as_mut() {
            edit(record);
        }
    }

    /// Drops the staged row: the change found nothing to change.
    pub(super) fn unstage_unless(&self, changed: bool) {
        if !changed {
            self.staged.borrow_mut().take();
        }
    }

    pub(super) fn commit(self) -> Result<()> {
        let record = self.staged.borrow_mut().take();
        if let Some(record) = &record {
            insert_audit(&self.tx, record)?;
        }
        self.tx.commit()?;
        if let Some(record) = &record {
            syslog_row(record);
        }
        Ok(())
    }
}
