//! Browser sign-in for git credential helpers (OAuth 2.0): the one-time
//! codes of the authorization step, and the tokens they are exchanged for.

use super::*;

/// Codes a user may have waiting for their exchange at once (sign-ins in
/// several terminals); past it, the oldest go.
const MAX_WAITING_CODES: i64 = 10;

impl Store {
    /// Stores a code the user consented to (its SHA-256 only).
    /// A user's codes waiting for their exchange are at most
    /// `MAX_WAITING_CODES`: the oldest go.
    pub fn add_oauth_code(&mut self, hash: &[u8; 32], code: &OauthCode, now: i64) -> Result<()> {
        let tx = self.immediate()?;
        tx.execute(
            "DELETE FROM oauth_codes WHERE user_id = ?1 AND used_at IS NULL AND hash NOT IN
                (SELECT hash FROM oauth_codes WHERE user_id = ?1 AND used_at IS NULL
                 ORDER BY created_at DESC LIMIT ?2)",
            &params![code.user_id, MAX_WAITING_CODES - 1],
        )?;
        tx.execute(
            "INSERT INTO oauth_codes (hash, user_id, client_id, redirect_uri, challenge, session_id,
                                      remote_addr, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &params![
                &hash[..],
                code.user_id,
                code.client_id,
                code.redirect_uri,
                code.challenge,
                code.session_id,
                code.remote_addr,
                now,
                code.expires_at
            ],
        )?;
        tx.commit()
    }

    /// The user a code was given to, if it exists (no write lock: anyone
    /// may post a code).
    pub fn oauth_code_user(&self, hash: &[u8; 32]) -> Result<Option<i64>> {
        first(
            self.conn.row(
                "SELECT user_id FROM oauth_codes WHERE hash = ?1",
                &params![&hash[..]],
            )?,
            |row| row.get(0),
        )
    }

    /// Exchanges a code for a token, once, in one transaction: the code is
    /// used up before anything else is looked at (a wrong verifier burns
    /// it); `check` says whether the request matches it (client, redirect
    /// URI, verifier) and names the token; the user must be enabled and
    /// the 2FA session open. A code used before revokes the token it was
    /// exchanged for (RFC 6749, section 4.1.2: it may have been stolen).
    /// The minted token is good for every repository the user may use, for
    /// pushes too, until that session ends.
    pub fn exchange_oauth_code(
        &mut self,
        hash: &[u8; 32],
        token_hash: &[u8; 32],
        now: i64,
        check: &dyn Fn(&OauthCode) -> std::result::Result<String, &'static str>,
    ) -> Result<Exchanged> {
        let tx = self.immediate()?;
        let Some(row) = tx.row(
            "SELECT user_id, client_id, redirect_uri, challenge, session_id, remote_addr,
                    expires_at, used_at, token_id
             FROM oauth_codes WHERE hash = ?1",
            &params![&hash[..]],
        )?
        else {
            tx.unstage_unless(false);
            tx.commit()?;
            return Ok(Exchanged::Unknown);
        };
        let user_id: i64 = row.get(0)?;
        let refused = |tx: tx::StoreTx, reason| -> Result<Exchanged> {
            tx.unstage_unless(false);
            tx.commit()?;
            Ok(Exchanged::Refused { user_id, reason })
        };
        let used_at: Option<i64> = row.get(7)?;
        if used_at.is_some() {
            let token_id: Option<i64> = row.get(8)?;
            let mut revoked = false;
            if let Some(token_id) = token_id {
                revoked = tx.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    &params![token_id, now],
                )? == 1;
            }
            // The staged row becomes the revocation's, in its transaction.
            tx.stage_edit(|record| {
                record.action = "token-revoke".into();
                record.reason = "oauth code used twice".into();
                record.token_id = token_id;
                record.detail = None;
            });
            tx.unstage_unless(revoked);
            tx.commit()?;
            return Ok(Exchanged::Used { user_id, token_id });
        }
        tx.execute(
            "UPDATE oauth_codes SET used_at = ?2 WHERE hash = ?1",
            &params![&hash[..], now],
        )?;
        let code = OauthCode {
            user_id,
            client_id: row.get(1)?,
            redirect_uri: row.get(2)?,
            challenge: row.get(3)?,
            session_id: row.get(4)?,
            remote_addr: row.get(5)?,
            expires_at: row.get(6)?,
        };
        if code.expires_at <= now {
            return refused(tx, "expired-code");
        }
        let name = match check(&code) {
            Ok(name) => name,
            Err(reason) => return refused(tx, reason),
        };
        let enabled = tx
            .row("SELECT enabled FROM users WHERE id = ?1", &params![user_id])?
            .map(|r| r.get::<bool>(0))
            .transpose()?;
        if enabled != Some(true) {
            return refused(tx, "user-disabled");
        }
        let until: Option<i64> = tx
            .row(
                "SELECT expires_at FROM sessions
                 WHERE id = ?1 AND user_id = ?2 AND ended_at IS NULL AND expires_at > ?3",
                &params![code.session_id, user_id, now],
            )?
            .map(|r| r.get(0))
            .transpose()?;
        let Some(until) = until else {
            return refused(tx, "session-ended");
        };
        let id: i64 = tx
            .one(
                "INSERT INTO tokens (user_id, name, hash, repos, permission, created_at, expires_at,
                                     without_2fa, session_id, oauth_client)
                 VALUES (?1, ?2, ?3, '**', 'write', ?4, ?5, 0, ?6, ?7) RETURNING id",
                &params![
                    user_id,
                    name,
                    &token_hash[..],
                    now,
                    until,
                    code.session_id,
                    code.client_id
                ],
            )?
            .get(0)?;
        tx.execute(
            "UPDATE oauth_codes SET token_id = ?2 WHERE hash = ?1",
            &params![&hash[..], id],
        )?;
        tx.stage_ids(None, Some(id));
        tx.commit()?;
        Ok(Exchanged::Token { id, until })
    }
}
