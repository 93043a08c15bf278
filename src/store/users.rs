//! Users and their second factor: accounts, passwords, enrolment, recovery codes, and each code attempt.

use super::*;

impl Store {
    // Users.

    pub fn add_user(&mut self, name: &str, password_hash: Option<&str>, now: i64) -> Result<i64> {
        self.add_user_with(name, password_hash, false, None, now)
    }

    /// Adds a user, an admin of the web page if `admin`, with a link to
    /// set a password (`(hash, expires_at)`) if one is given: one
    /// transaction, with the audit row of `Store::audited`.
    pub fn add_user_with(
        &mut self,
        name: &str,
        password_hash: Option<&str>,
        admin: bool,
        link: Option<(&[u8; 32], i64)>,
        now: i64,
    ) -> Result<i64> {
        let tx = self.immediate()?;
        let id = tx
            .one(
                "INSERT INTO users (name, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
                &params![name, password_hash, admin, now],
            )?
            .get(0)?;
        if let Some((hash, expires_at)) = link {
            tx.execute(
                "INSERT INTO password_links (hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                &params![&hash[..], id, expires_at],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    pub fn user(&self, name: &str) -> Result<Option<User>> {
        first(
            self.conn
                .row(&format!("{USER_COLUMNS} WHERE name = ?1"), &params![name])?,
            user_from_row,
        )
    }

    pub fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        first(
            self.conn
                .row(&format!("{USER_COLUMNS} WHERE id = ?1"), &params![id])?,
            user_from_row,
        )
    }

    pub fn users(&self) -> Result<Vec<User>> {
        all(
            self.conn
                .rows(&format!("{USER_COLUMNS} ORDER BY name"), &[])?,
            user_from_row,
        )
    }

    fn update_user(&mut self, sql: &str, id: i64, value: bool) -> Result<bool> {
        Ok(self.write(sql, &params![value, id])? == 1)
    }

    /// Disabling also ends the user's web sessions, at once: a stolen cookie
    /// must not outlive the admin's response (nor come back on re-enabling).
    pub fn set_enabled(&mut self, id: i64, enabled: bool, now: i64) -> Result<bool> {
        let tx = self.immediate_for(id)?;
        let changed = tx.execute(
            "UPDATE users SET enabled = ?1 WHERE id = ?2",
            &params![enabled, id],
        )?;
        if !enabled {
            // Its 2FA sessions too, in the same commit: none of them may
            // work again if the user is enabled later.
            tx.execute(
                "UPDATE sessions SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL",
                &params![now, id],
            )?;
            tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", &params![id])?;
        }
        tx.unstage_unless(changed == 1);
        tx.commit()?;
        Ok(changed == 1)
    }

    pub fn set_admin(&mut self, id: i64, admin: bool) -> Result<bool> {
        self.update_user("UPDATE users SET is_admin = ?1 WHERE id = ?2", id, admin)
    }

    pub fn set_always_2fa(&mut self, id: i64, always: bool) -> Result<bool> {
        self.update_user("UPDATE users SET always_2fa = ?1 WHERE id = ?2", id, always)
    }

    /// A new password ends every web session of the user.
    pub fn set_password_hash(&mut self, id: i64, hash: &str) -> Result<bool> {
        let tx = self.immediate_for(id)?;
        let changed = tx.execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            &params![hash, id],
        )?;
        tx.execute("DELETE FROM web_sessions WHERE user_id = ?1", &params![id])?;
        tx.unstage_unless(changed == 1);
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Clears the failure counter and any lock.
    pub fn unlock(&mut self, id: i64) -> Result<bool> {
        let tx = self.immediate_for(id)?;
        let changed = tx.execute(
            "UPDATE users SET failures = 0, locked_until = NULL WHERE id = ?1",
            &params![id],
        )?;
        tx.unstage_unless(changed == 1);
        tx.commit()?;
        Ok(changed == 1)
    }

    // Second factor.

    /// Stores the encrypted TOTP secret and the recovery code hashes, if the
    /// user is not enrolled yet. Returns false when already enrolled.
    pub fn enroll(
        &mut self,
        user_id: i64,
        sealed_secret: &[u8],
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<bool> {
        self.enroll_if(user_id, sealed_secret, recovery_hashes, now, None)
    }

    /// `enroll`, from the web page's set-up: only while web session
    /// `session_id` still holds the set-up begun with `pending_secret`,
    /// which it takes in the same transaction. A security key added in the
    /// meantime drops every set-up under way (`add_security_key`), so the
    /// recovery codes that key's page showed are not replaced by the ones
    /// this set-up showed: false then, and nothing changes.
    pub fn enroll_from_setup(
        &mut self,
        user_id: i64,
        sealed_secret: &[u8],
        recovery_hashes: &[String],
        now: i64,
        (session_id, pending_secret): (&[u8; 32], &[u8]),
    ) -> Result<bool> {
        self.enroll_if(
            user_id,
            sealed_secret,
            recovery_hashes,
            now,
            Some((session_id, pending_secret)),
        )
    }

    fn enroll_if(
        &mut self,
        user_id: i64,
        sealed_secret: &[u8],
        recovery_hashes: &[String],
        now: i64,
        setup: Option<(&[u8; 32], &[u8])>,
    ) -> Result<bool> {
        let tx = self.immediate_for(user_id)?;
        if let Some(setup) = setup
            && !take_setup(&tx, user_id, setup)?
        {
            return Ok(false);
        }
        let changed = tx.execute(
            "UPDATE users SET totp_secret = ?1, totp_enrolled_at = ?2, totp_last_step = NULL,
                 failures = 0, locked_until = NULL
             WHERE id = ?3 AND totp_secret IS NULL",
            &params![sealed_secret, now, user_id],
        )?;
        if changed != 1 {
            return Ok(false);
        }
        replace_recovery_codes(&tx, user_id, recovery_hashes)?;
        tx.commit()?;
        Ok(true)
    }

    /// Moves a user's authenticator app to a new secret proved in the web
    /// page's set-up (a new phone): only while this web session still holds
    /// that set-up and the user still has the secret `old_sealed` (nothing
    /// reset or moved it meanwhile). Recovery codes and keys stay; the old
    /// secret's codes stop working. False when either changed.
    pub fn move_totp_from_setup(
        &mut self,
        user_id: i64,
        (old_sealed, new_sealed): (&[u8], &[u8]),
        (session_id, pending_secret): (&[u8; 32], &[u8]),
    ) -> Result<bool> {
        let tx = self.immediate_for(user_id)?;
        if !take_setup(&tx, user_id, (session_id, pending_secret))? {
            return Ok(false);
        }
        let changed = tx.execute(
            "UPDATE users SET totp_secret = ?1, totp_last_step = NULL
             WHERE id = ?2 AND totp_secret = ?3",
            &params![new_sealed, user_id, old_sealed],
        )?;
        if changed != 1 {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Replaces the user's recovery codes with a new set.
    pub fn replace_recovery_codes(&mut self, user_id: i64, hashes: &[String]) -> Result<()> {
        let tx = self.immediate_for(user_id)?;
        replace_recovery_codes(&tx, user_id, hashes)?;
        tx.commit()?;
        Ok(())
    }

    /// The recovery codes of a user: (row id, hash), used or not.
    /// Used ones too: a reused code is then told apart from a wrong one.
    pub fn recovery_codes(&self, user_id: i64) -> Result<Vec<(i64, String)>> {
        all(
            self.conn.rows(
                "SELECT id, hash FROM recovery_codes WHERE user_id = ?1 ORDER BY id",
                &params![user_id],
            )?,
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
    }

    /// How many of the user's recovery codes are not used yet.
    pub fn recovery_codes_left(&self, user_id: i64) -> Result<usize> {
        let left: i64 = self
            .conn
            .one(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                &params![user_id],
            )?
            .get(0)?;
        Ok(usize::try_from(left).unwrap_or(0))
    }

    /// Removes 2FA from a user: secret, security keys, recovery codes, counters, and ends
    /// every open session; with `revoke_tokens`, revokes every token still
    /// usable too (`user reset-2fa`: a token carries the second factor it
    /// was minted with). `None` when there is no such user.
    pub fn reset_2fa(
        &mut self,
        user_id: i64,
        revoke_tokens: bool,
        now: i64,
    ) -> Result<Option<Reset>> {
        let tx = self.immediate_for(user_id)?;
        let changed = tx.execute(
            "UPDATE users SET totp_secret = NULL, totp_enrolled_at = NULL, totp_last_step = NULL,
                 failures = 0, locked_until = NULL WHERE id = ?1",
            &params![user_id],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        tx.execute(
            "DELETE FROM recovery_codes WHERE user_id = ?1",
            &params![user_id],
        )?;
        tx.execute(
            "DELETE FROM security_keys WHERE user_id = ?1",
            &params![user_id],
        )?;
        tx.execute(
            "DELETE FROM verify_links WHERE user_id = ?1",
            &params![user_id],
        )?;
        let sessions_ended = tx.execute(
            "UPDATE sessions SET ended_at = ?1
             WHERE user_id = ?2 AND ended_at IS NULL AND expires_at > ?1",
            &params![now, user_id],
        )?;
        let tokens_revoked = if revoke_tokens {
            tx.execute(
                "UPDATE tokens SET revoked_at = ?1
                 WHERE user_id = ?2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)",
                &params![now, user_id],
            )?
        } else {
            0
        };
        // Web sessions too: whoever holds one must not enrol an app of
        // their own in the gap.
        tx.execute(
            "DELETE FROM web_sessions WHERE user_id = ?1",
            &params![user_id],
        )?;
        tx.stage_detail(&format!(
            "{sessions_ended} 2FA sessions ended, {tokens_revoked} tokens revoked"
        ));
        tx.commit()?;
        Ok(Some(Reset {
            sessions_ended,
            tokens_revoked,
        }))
    }

    /// `record_attempt_described` with no row of its own.
    pub fn record_attempt(
        &mut self,
        user_id: i64,
        attempt: Attempt,
        now: i64,
        lock: LockPolicy,
        session: Option<&NewSession>,
    ) -> Result<AttemptOutcome> {
        self.record_attempt_described(user_id, attempt, now, lock, session, None)
    }

    /// Records a second-factor attempt in one immediate transaction: refuses
    /// while locked; marks the TOTP step or recovery code used (at most
    /// once, ever); counts failures and locks at `max_failures`; on success
    /// resets the counter and opens `session` if given.
    pub fn record_attempt_described(
        &mut self,
        user_id: i64,
        attempt: Attempt,
        now: i64,
        lock: LockPolicy,
        session: Option<&NewSession>,
        describe: Option<&Describe<'_>>,
    ) -> Result<AttemptOutcome> {
        let tx = self.immediate_for(user_id)?;
        // The outcome, its audit row (`Store::audited`) and the change in
        // one commit.
        let done = |tx: tx::StoreTx<'_>, outcome: AttemptOutcome| {
            if let Some(describe) = describe {
                tx.stage_result(describe(&outcome));
            }
            tx.commit().map(|()| outcome)
        };
        let locked_until: Option<i64> = tx
            .one(
                "SELECT locked_until FROM users WHERE id = ?1",
                &params![user_id],
            )?
            .get(0)?;
        if let Some(until) = locked_until.filter(|&until| until > now) {
            return done(tx, AttemptOutcome::Locked { until });
        }
        let (matched, used_now) = match attempt {
            Attempt::Totp(None) | Attempt::Recovery(None) | Attempt::Key(None) => (false, false),
            // A counter that did not move past the stored one (another use
            // of the key got in first, or a copy of it) is no match.
            Attempt::Key(Some(used)) => {
                let updated = tx.execute(
                    "UPDATE security_keys SET sign_count = ?1, credential = ?2, last_used_at = ?3
                     WHERE id = ?4 AND user_id = ?5
                       AND (sign_count < ?1 OR (sign_count = 0 AND ?1 = 0))",
                    &params![used.sign_count, used.credential, now, used.key_id, user_id],
                )? == 1;
                (updated, updated)
            }
            Attempt::Totp(Some((step, sealed))) => (
                true,
                tx.execute(
                    "UPDATE users SET totp_last_step = ?1
                     WHERE id = ?2 AND totp_secret = ?3
                       AND (totp_last_step IS NULL OR totp_last_step < ?1)",
                    &params![step, user_id, sealed],
                )? == 1,
            ),
            Attempt::Recovery(Some((code_id, hash))) => (
                true,
                tx.execute(
                    "UPDATE recovery_codes SET used_at = ?1
                     WHERE id = ?2 AND user_id = ?3 AND hash = ?4 AND used_at IS NULL",
                    &params![now, code_id, user_id, hash],
                )? == 1,
            ),
        };
        if used_now {
            tx.execute(
                "UPDATE users SET failures = 0, locked_until = NULL WHERE id = ?1",
                &params![user_id],
            )?;
            let session_id = match session {
                Some(s) => Some(insert_session(&tx, user_id, s, now)?),
                None => None,
            };
            return done(tx, AttemptOutcome::Accepted { session_id });
        }
        if matched {
            // A right code of a step or a recovery code already used: an
            // honest user typing the code they just used, or someone who
            // saw it. It proves nothing either way, so it is refused
            // without counting towards the lock.
            let failures: i64 = tx
                .one(
                    "SELECT failures FROM users WHERE id = ?1",
                    &params![user_id],
                )?
                .get(0)?;
            return done(
                tx,
                AttemptOutcome::Replayed {
                    failures,
                    locked_until: None,
                },
            );
        }
        let row = tx.one(
            "UPDATE users SET failures = failures + 1,
                 locked_until = CASE WHEN failures + 1 >= ?1 THEN ?2 ELSE NULL END
             WHERE id = ?3 RETURNING failures, locked_until",
            &params![lock.max_failures, now + lock.lockout, user_id],
        )?;
        let (failures, locked_until): (i64, Option<i64>) = (row.get(0)?, row.get(1)?);
        // A lock ends the count: the next lock needs max_failures new ones.
        if locked_until.is_some() {
            tx.execute(
                "UPDATE users SET failures = 0 WHERE id = ?1",
                &params![user_id],
            )?;
        }
        done(
            tx,
            AttemptOutcome::Wrong {
                failures,
                locked_until,
            },
        )
    }
}

/// Takes the web page's set-up of `user_id` from web session `session_id`
/// in `tx`, if that session still holds `pending_secret`: the set-up is
/// confirmed once. False when it holds another or none.
fn take_setup(
    tx: &Conn,
    user_id: i64,
    (session_id, pending_secret): (&[u8; 32], &[u8]),
) -> Result<bool> {
    let taken = tx.execute(
        "UPDATE web_sessions SET pending_secret = NULL, pending_codes = NULL
         WHERE id = ?1 AND user_id = ?2 AND pending_secret = ?3",
        &params![&session_id[..], user_id, pending_secret],
    )?;
    Ok(taken == 1)
}
