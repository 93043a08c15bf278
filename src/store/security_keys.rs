//! Security keys and passkeys (WebAuthn credentials), and the one-time
//! links `ssh HOST 2fa verify` prints for a user with keys.

use super::*;

/// A verify link holds only while the SSH key that asked for it is still
/// its user's (`Store::remove_key` also ends the key's links).
const LINK_KEY_HOLDS: &str = "(verify_links.key_id IS NULL OR EXISTS (SELECT 1 FROM ssh_keys k
     WHERE k.id = verify_links.key_id AND k.user_id = verify_links.user_id))";

const KEY_COLUMNS: &str =
    "SELECT id, user_id, name, credential_id, credential, sign_count, created_at, last_used_at
     FROM security_keys";

fn key_from_row(row: &Row) -> Result<SecurityKey> {
    Ok(SecurityKey {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        credential_id: row.get(3)?,
        credential: row.get(4)?,
        sign_count: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
    })
}

/// How many ceremonies (used marks included) a web session keeps.
pub const MAX_CEREMONIES: usize = 8;

/// A web session's ceremonies: (challenge, the ceremony or `None` once
/// taken). Anything else in the column (an older release's single
/// ceremony) counts as none.
type Ceremonies = Vec<(String, Option<String>)>;

fn ceremonies(tx: &Tx, id: &[u8; 32]) -> Result<Ceremonies> {
    let text: Option<String> = first(
        tx.row(
            "SELECT ceremony FROM web_sessions WHERE id = ?1",
            &params![&id[..]],
        )?,
        |row| row.get(0),
    )?
    .flatten();
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

fn set_ceremonies(tx: &Tx, id: &[u8; 32], kept: &Ceremonies) -> Result<()> {
    let text = serde_json::to_string(kept).map_err(|e| StoreError::Value(e.to_string()))?;
    tx.execute(
        "UPDATE web_sessions SET ceremony = ?1 WHERE id = ?2",
        &params![text, &id[..]],
    )?;
    Ok(())
}

impl Store {
    /// The user's keys, oldest first.
    pub fn security_keys(&self, user_id: i64) -> Result<Vec<SecurityKey>> {
        all(
            self.conn.rows(
                &format!("{KEY_COLUMNS} WHERE user_id = ?1 ORDER BY id"),
                &params![user_id],
            )?,
            key_from_row,
        )
    }

    /// Registers a key, unless the user has `max` keys already. Whether
    /// it is the user's first second factor is read in the same
    /// transaction: the first one replaces the user's recovery codes with
    /// `recovery_hashes` (`FirstNeedsCodes`, changing nothing, when none
    /// came), a later one leaves them. So two first factors set up at the
    /// same moment cannot both show codes, and only one set stays.
    pub fn add_security_key(
        &mut self,
        key: &SecurityKey,
        recovery_hashes: Option<&[String]>,
        max: i64,
    ) -> Result<AddedKey> {
        let tx = self.immediate_for(key.user_id)?;
        let row = tx.one(
            "SELECT (SELECT count(*) FROM security_keys WHERE user_id = ?1),
                    (SELECT count(*) FROM users WHERE id = ?1 AND totp_secret IS NOT NULL)",
            &params![key.user_id],
        )?;
        let (has, totp): (i64, i64) = (row.get(0)?, row.get(1)?);
        if has >= max {
            return Ok(AddedKey::TooMany);
        }
        let first = has == 0 && totp == 0;
        let taken: i64 = tx
            .one(
                "SELECT count(*) FROM security_keys WHERE credential_id = ?1",
                &params![key.credential_id],
            )?
            .get(0)?;
        if taken > 0 {
            return Ok(AddedKey::Duplicate);
        }
        if first && recovery_hashes.is_none() {
            return Ok(AddedKey::FirstNeedsCodes);
        }
        let id = tx
            .one(
                "INSERT INTO security_keys (user_id, name, credential_id, credential, sign_count, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                &params![
                    key.user_id,
                    key.name,
                    key.credential_id,
                    key.credential,
                    key.sign_count,
                    key.created_at
                ],
            )?
            .get(0)?;
        // An app's set-up left half-way in any web session of the user
        // (one the password alone opened, say) cannot be finished now
        // without the recent code a sensitive change needs: drop it.
        tx.execute(
            "UPDATE web_sessions SET pending_secret = NULL, pending_codes = NULL WHERE user_id = ?1",
            &params![key.user_id],
        )?;
        tx.stage_detail(&format!("security key #{id}"));
        if let (true, Some(hashes)) = (first, recovery_hashes) {
            replace_recovery_codes(&tx, key.user_id, hashes)?;
            tx.execute(
                "UPDATE users SET failures = 0, locked_until = NULL WHERE id = ?1",
                &params![key.user_id],
            )?;
        }
        tx.commit()?;
        Ok(if first {
            AddedKey::First(id)
        } else {
            AddedKey::Added(id)
        })
    }

    /// Removes one of the user's keys, unless it is their only second
    /// factor.
    pub fn remove_security_key(&mut self, user_id: i64, key_id: i64) -> Result<RemovedKey> {
        let tx = self.immediate_for(user_id)?;
        let row = tx.one(
            "SELECT (SELECT count(*) FROM security_keys WHERE id = ?1 AND user_id = ?2),
                    (SELECT count(*) FROM security_keys WHERE user_id = ?2),
                    (SELECT count(*) FROM users WHERE id = ?2 AND totp_secret IS NOT NULL)",
            &params![key_id, user_id],
        )?;
        let (this, keys, totp): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if this == 0 {
            return Ok(RemovedKey::NoSuchKey);
        }
        if keys == 1 && totp == 0 {
            return Ok(RemovedKey::LastFactor);
        }
        tx.execute(
            "DELETE FROM security_keys WHERE id = ?1 AND user_id = ?2",
            &params![key_id, user_id],
        )?;
        tx.commit()?;
        Ok(RemovedKey::Removed)
    }

    // The WebAuthn ceremonies of a web session.
    //
    // A session keeps its last `MAX_CEREMONIES` ceremonies, each under its
    // challenge (a JSON list in `web_sessions.ceremony`): two tabs of one
    // session each have their own, and an answer finds the one it was
    // made for. A taken ceremony stays as a used mark, so a second answer
    // to the same challenge (a replay) is told apart from an answer to a
    // ceremony long gone (a page left open).

    /// Keeps a ceremony just started under `challenge`, beside the
    /// session's others (the oldest go past `MAX_CEREMONIES`).
    pub fn add_web_ceremony(
        &mut self,
        id: &[u8; 32],
        challenge: &str,
        ceremony: &str,
    ) -> Result<()> {
        let tx = self.immediate()?;
        let mut kept = ceremonies(&tx, id)?;
        kept.retain(|(c, _)| c != challenge);
        kept.push((challenge.to_string(), Some(ceremony.to_string())));
        let excess = kept.len().saturating_sub(MAX_CEREMONIES);
        kept.drain(..excess);
        set_ceremonies(&tx, id, &kept)?;
        tx.commit()?;
        Ok(())
    }

    /// Gives web session `id` the ceremonies (and used marks) another
    /// session kept, as `WebSession::ceremony` read them: a session that
    /// steps up is replaced by a new one, and an answer used in the old
    /// one stays used.
    pub fn carry_web_ceremonies(&mut self, id: &[u8; 32], kept: Option<&str>) -> Result<()> {
        self.write(
            "UPDATE web_sessions SET ceremony = ?1 WHERE id = ?2",
            &params![kept, &id[..]],
        )?;
        Ok(())
    }

    /// Takes the ceremony kept under `challenge`, once.
    pub fn take_web_ceremony(&mut self, id: &[u8; 32], challenge: &str) -> Result<TakenCeremony> {
        let tx = self.immediate()?;
        let mut kept = ceremonies(&tx, id)?;
        let Some(entry) = kept.iter_mut().find(|(c, _)| c == challenge) else {
            return Ok(TakenCeremony::Unknown);
        };
        let Some(ceremony) = entry.1.take() else {
            return Ok(TakenCeremony::Used);
        };
        set_ceremonies(&tx, id, &kept)?;
        tx.commit()?;
        Ok(TakenCeremony::Found(ceremony))
    }

    // One-time verify links.

    /// Adds a link, unless `user_id` has `max` links waiting already:
    /// false then.
    pub fn add_verify_link(
        &mut self,
        hash: &[u8; 32],
        link: &VerifyLink,
        max: i64,
        now: i64,
    ) -> Result<bool> {
        let tx = self.immediate_for(link.user_id)?;
        // Expired links go as new ones come, so the table stays small (a
        // used one is of no more use either once it has expired: its
        // command stopped waiting then).
        tx.execute(
            "DELETE FROM verify_links WHERE expires_at <= ?1",
            &params![now],
        )?;
        let waiting: i64 = tx
            .one(
                "SELECT count(*) FROM verify_links WHERE user_id = ?1 AND used_at IS NULL",
                &params![link.user_id],
            )?
            .get(0)?;
        if waiting >= max {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO verify_links (hash, user_id, key_id, remote_addr, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &params![
                &hash[..],
                link.user_id,
                link.key_id,
                link.remote_addr,
                now,
                link.expires_at
            ],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Ends an unused link now (its command stopped waiting).
    pub fn end_verify_link(&mut self, hash: &[u8; 32], now: i64) -> Result<()> {
        self.write(
            "UPDATE verify_links SET expires_at = ?1
             WHERE hash = ?2 AND used_at IS NULL AND expires_at > ?1",
            &params![now, &hash[..]],
        )?;
        Ok(())
    }

    /// The link, if it is unused, not expired, and the SSH key that asked
    /// for it is still its user's.
    pub fn verify_link(&self, hash: &[u8; 32], now: i64) -> Result<Option<VerifyLink>> {
        first(
            self.conn.row(
                &format!(
                    "SELECT user_id, key_id, remote_addr, expires_at FROM verify_links
                     WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2 AND {LINK_KEY_HOLDS}"
                ),
                &params![&hash[..], now],
            )?,
            |row| {
                Ok(VerifyLink {
                    user_id: row.get(0)?,
                    key_id: row.get(1)?,
                    remote_addr: row.get(2)?,
                    expires_at: row.get(3)?,
                })
            },
        )
    }

    /// Marks the link used by the 2FA session it opened; false if it was
    /// used or expired meanwhile.
    pub fn use_verify_link(&mut self, hash: &[u8; 32], session_id: i64, now: i64) -> Result<bool> {
        Ok(self.write(
            &format!(
                "UPDATE verify_links SET used_at = ?1, session_id = ?2
                 WHERE hash = ?3 AND used_at IS NULL AND expires_at > ?1 AND {LINK_KEY_HOLDS}"
            ),
            &params![now, session_id, &hash[..]],
        )? == 1)
    }

    /// When the 2FA session a used link opened ends, if the link was used
    /// and the session has not been ended (its key removed, say).
    pub fn verify_link_session(&self, hash: &[u8; 32]) -> Result<Option<i64>> {
        first(
            self.conn.row(
                "SELECT s.expires_at FROM verify_links l JOIN sessions s ON s.id = l.session_id
                 WHERE l.hash = ?1 AND l.used_at IS NOT NULL AND s.ended_at IS NULL",
                &params![&hash[..]],
            )?,
            |row| row.get(0),
        )
    }
}
