//! 2FA sessions: opened by a verified code, ended by the user, an admin or a reset.

use super::*;

impl Store {
    // 2FA sessions.

    /// Opens a 2FA session without a code (an admin's decision).
    pub fn open_session(&mut self, user_id: i64, session: &NewSession, now: i64) -> Result<i64> {
        let tx = self.immediate_for(user_id)?;
        let id = insert_session(&tx, user_id, session, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// The user's sessions that are neither ended nor expired.
    pub fn open_sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionFacts>> {
        let rows = self.conn.rows(
            "SELECT id, expires_at, key_id, remote_addr FROM sessions
             WHERE user_id = ?1 AND ended_at IS NULL AND expires_at > ?2 ORDER BY id",
            &params![user_id, now],
        )?;
        all(rows, |row| {
            Ok(SessionFacts {
                id: row.get(0)?,
                expires_at: row.get(1)?,
                key_id: row.get(2)?,
                remote_addr: row.get(3)?,
            })
        })
    }

    /// Open sessions (of one user, or all), newest first.
    pub fn sessions(&self, user: Option<&str>, now: i64) -> Result<Vec<Session>> {
        let rows = self.conn.rows(
            "SELECT s.id, u.name, s.created_at, s.expires_at, s.ended_at, s.key_id, s.remote_addr, s.opened_via
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.ended_at IS NULL AND s.expires_at > ?1 AND (?2 IS NULL OR u.name = ?2)
             ORDER BY s.id DESC",
            &params![now, user],
        )?;
        all(rows, |row| {
            Ok(Session {
                id: row.get(0)?,
                user: row.get(1)?,
                created_at: row.get(2)?,
                expires_at: row.get(3)?,
                ended_at: row.get(4)?,
                key_id: row.get(5)?,
                remote_addr: row.get(6)?,
                opened_via: row.get(7)?,
            })
        })
    }

    /// Ends one session; false when there was no open session of that id.
    pub fn end_session(&mut self, id: i64, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE id = ?2 AND ended_at IS NULL",
            &params![now, id],
        )?;
        tx.unstage_unless(changed == 1);
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Ends every open session of a user; returns how many.
    pub fn end_sessions_of(&mut self, user_id: i64, now: i64) -> Result<usize> {
        let tx = self.immediate_for(user_id)?;
        let changed = tx.execute(
            "UPDATE sessions SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL AND expires_at > ?1",
            &params![now, user_id],
        )?;
        tx.stage_detail(&format!("{changed} ended"));
        tx.commit()?;
        Ok(changed)
    }
}
