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

    /// Takes a code, once: it is used from here on, whatever the exchange
    /// finds next (a wrong verifier burns it). A code used before revokes
    /// the token it was exchanged for (RFC 6749, section 4.1.2: it may
    /// have been stolen).
    pub fn redeem_oauth_code(&mut self, hash: &[u8; 32], now: i64) -> Result<Redeemed> {
        // A code nobody was given costs no write lock (anyone may post one).
        if self
            .conn
            .row(
                "SELECT 1 FROM oauth_codes WHERE hash = ?1",
                &params![&hash[..]],
            )?
            .is_none()
        {
            return Ok(Redeemed::Unknown);
        }
        let tx = self.immediate()?;
        let Some(row) = tx.row(
            "SELECT user_id, client_id, redirect_uri, challenge, session_id, remote_addr,
                    expires_at, used_at, token_id
             FROM oauth_codes WHERE hash = ?1",
            &params![&hash[..]],
        )?
        else {
            return Ok(Redeemed::Unknown);
        };
        let used_at: Option<i64> = row.get(7)?;
        if used_at.is_some() {
            let token_id: Option<i64> = row.get(8)?;
            if let Some(token_id) = token_id {
                tx.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    &params![token_id, now],
                )?;
            }
            tx.commit()?;
            return Ok(Redeemed::Used {
                user_id: row.get(0)?,
                token_id,
            });
        }
        tx.execute(
            "UPDATE oauth_codes SET used_at = ?2 WHERE hash = ?1",
            &params![&hash[..], now],
        )?;
        let expires_at: i64 = row.get(6)?;
        let code = OauthCode {
            user_id: row.get(0)?,
            client_id: row.get(1)?,
            redirect_uri: row.get(2)?,
            challenge: row.get(3)?,
            session_id: row.get(4)?,
            remote_addr: row.get(5)?,
            expires_at,
        };
        tx.commit()?;
        Ok(if expires_at <= now {
            Redeemed::Expired
        } else {
            Redeemed::Code(code)
        })
    }

    /// Mints the token a code was exchanged for: good for every
    /// repository the user may use, for pushes too, until the 2FA session
    /// `code.session_id` ends (and no later than `expires_at`).
    #[allow(clippy::too_many_arguments)]
    pub fn add_oauth_token(
        &mut self,
        code_hash: &[u8; 32],
        code: &OauthCode,
        name: &str,
        token_hash: &[u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<i64> {
        let tx = self.immediate()?;
        let id: i64 = tx
            .one(
                "INSERT INTO tokens (user_id, name, hash, repos, permission, created_at, expires_at,
                                     without_2fa, session_id, oauth_client)
                 VALUES (?1, ?2, ?3, '**', 'write', ?4, ?5, 0, ?6, ?7) RETURNING id",
                &params![
                    code.user_id,
                    name,
                    &token_hash[..],
                    now,
                    expires_at,
                    code.session_id,
                    code.client_id
                ],
            )?
            .get(0)?;
        tx.execute(
            "UPDATE oauth_codes SET token_id = ?2 WHERE hash = ?1",
            &params![&code_hash[..], id],
        )?;
        tx.stage_ids(None, Some(id));
        tx.commit()?;
        Ok(id)
    }
}
