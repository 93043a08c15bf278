//! The web page's sessions and one-time set-password links.

use super::*;

impl Store {
    /// Removes what no decision reads any more, in one transaction: 2FA
    /// sessions ended or expired more than `KEEP_ENDED_SESSIONS` ago, web
    /// sessions (with their ceremonies under way) and one-time links past
    /// their expiry, and counts of wrong passwords whose window began
    /// before `failures_before`. `git2fa serve` runs it every hour;
    /// `git2fa store prune` on demand.
    pub fn prune_expired(&self, now: i64, failures_before: i64) -> Result<Expired> {
        let tx = self.immediate()?;
        let gone =
            |sql: &str, params: &[super::value::Value]| tx.execute(sql, params).map(|n| n as u64);
        let old = now - KEEP_ENDED_SESSIONS;
        let expired = Expired {
            sessions: gone(
                "DELETE FROM sessions WHERE expires_at <= ?1 OR ended_at <= ?1",
                &params![old],
            )?,
            web_sessions: gone(
                "DELETE FROM web_sessions WHERE expires_at <= ?1",
                &params![now],
            )?,
            password_links: gone(
                "DELETE FROM password_links WHERE expires_at <= ?1",
                &params![now],
            )?,
            verify_links: gone(
                "DELETE FROM verify_links WHERE expires_at <= ?1",
                &params![now],
            )?,
            password_failures: gone(
                "DELETE FROM password_failures WHERE window_start < ?1",
                &params![failures_before],
            )?,
            // OAuth codes live a minute; kept an hour past it, so that a
            // code used twice still revokes what it was exchanged for.
            oauth_codes: gone(
                "DELETE FROM oauth_codes WHERE expires_at <= ?1",
                &params![now - 3600],
            )?,
        };
        tx.commit()?;
        Ok(expired)
    }

    // The web page's sessions.

    /// Stores a new web session (anonymous when `user_id` is `None`).
    pub fn add_web_session(&mut self, session: &WebSession) -> Result<()> {
        let tx = self.immediate()?;
        // Expired sessions go as new ones come, so the table stays small.
        tx.execute(
            "DELETE FROM web_sessions WHERE expires_at <= ?1",
            &params![session.created_at],
        )?;
        tx.execute(
            "INSERT INTO web_sessions (id, user_id, csrf, created_at, expires_at, code_at, remote_addr)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &params![
                &session.id[..],
                session.user_id,
                session.csrf,
                session.created_at,
                session.expires_at,
                session.code_at,
                session.remote_addr
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The web session with this id, if it has not expired.
    pub fn web_session(&self, id: &[u8; 32], now: i64) -> Result<Option<WebSession>> {
        first(
            self.conn.row(
                "SELECT id, user_id, csrf, created_at, expires_at, code_at, pending_secret, pending_codes, remote_addr,
                     ceremony
                 FROM web_sessions WHERE id = ?1 AND expires_at > ?2",
                &params![&id[..], now],
            )?,
                |row| {
                    let id: Vec<u8> = row.get(0)?;
                    Ok(WebSession {
                        id: id.try_into().unwrap_or([0; 32]),
                        user_id: row.get(1)?,
                        csrf: row.get(2)?,
                        created_at: row.get(3)?,
                        expires_at: row.get(4)?,
                        code_at: row.get(5)?,
                        pending_secret: row.get(6)?,
                        pending_codes: row.get(7)?,
                        remote_addr: row.get(8)?,
                        ceremony: row.get(9)?,
                    })
                },
        )
    }

    /// Records that a code was entered in this web session.
    pub fn set_web_code_at(&mut self, id: &[u8; 32], at: i64) -> Result<()> {
        self.write(
            "UPDATE web_sessions SET code_at = ?1 WHERE id = ?2",
            &params![at, &id[..]],
        )?;
        Ok(())
    }

    /// Keeps (or, with `None`, drops) an enrolment in progress.
    pub fn set_web_pending(
        &mut self,
        id: &[u8; 32],
        secret: Option<&[u8]>,
        codes: Option<&[u8]>,
    ) -> Result<()> {
        self.write(
            "UPDATE web_sessions SET pending_secret = ?1, pending_codes = ?2 WHERE id = ?3",
            &params![secret, codes, &id[..]],
        )?;
        Ok(())
    }

    pub fn delete_web_session(&mut self, id: &[u8; 32]) -> Result<()> {
        self.write("DELETE FROM web_sessions WHERE id = ?1", &params![&id[..]])?;
        Ok(())
    }

    /// Ends every web session of a user (password set, 2FA reset, disabled).
    pub fn delete_web_sessions_of(&mut self, user_id: i64) -> Result<()> {
        self.write(
            "DELETE FROM web_sessions WHERE user_id = ?1",
            &params![user_id],
        )?;
        Ok(())
    }

    // One-time set-password links.

    pub fn add_password_link(
        &mut self,
        hash: &[u8; 32],
        user_id: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.write(
            "INSERT INTO password_links (hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            &params![&hash[..], user_id, expires_at],
        )?;
        Ok(())
    }

    /// The user a link is for, if it is unused and not expired.
    pub fn password_link_user(&self, hash: &[u8; 32], now: i64) -> Result<Option<i64>> {
        first(
            self.conn.row(
                "SELECT user_id FROM password_links WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                &params![&hash[..], now],
            )?,
            |row| row.get(0),
        )
    }

    /// Uses a link once and sets the password, atomically: false when the
    /// link was used or expired meanwhile.
    pub fn use_password_link(
        &mut self,
        hash: &[u8; 32],
        password_hash: &str,
        now: i64,
    ) -> Result<bool> {
        let tx = self.immediate()?;
        let user_id: Option<i64> = first(
            tx.row(
                "UPDATE password_links SET used_at = ?1 WHERE hash = ?2 AND used_at IS NULL AND expires_at > ?1
                 RETURNING user_id",
                &params![now, &hash[..]],
            )?,
            |row| row.get(0),
        )?;
        let Some(user_id) = user_id else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            &params![password_hash, user_id],
        )?;
        tx.execute(
            "DELETE FROM web_sessions WHERE user_id = ?1",
            &params![user_id],
        )?;
        tx.commit()?;
        Ok(true)
    }
}
