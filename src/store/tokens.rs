//! Personal access tokens, and the throttling of password checks.

use super::*;

impl Store {
    // Personal access tokens.

    #[allow(clippy::too_many_arguments)]
    pub fn add_token(
        &mut self,
        user_id: i64,
        name: &str,
        hash: &[u8; 32],
        repos: &[String],
        permission: Permission,
        expires_at: Option<i64>,
        without_2fa: bool,
        now: i64,
    ) -> Result<i64> {
        let tx = self.immediate()?;
        let row = tx.one(
            "INSERT INTO tokens (user_id, name, hash, repos, permission, created_at, expires_at, without_2fa)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            &params![
                user_id,
                name,
                &hash[..],
                repos.join("\n"),
                permission.as_str(),
                now,
                expires_at,
                without_2fa
            ],
        )?;
        let id = row.get(0)?;
        tx.stage_ids(None, Some(id));
        tx.commit()?;
        Ok(id)
    }

    /// One indexed lookup by the token's SHA-256.
    pub fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<Token>> {
        first(
            self.conn.row(
                &format!("{TOKEN_COLUMNS} WHERE t.hash = ?1"),
                &params![&hash[..]],
            )?,
            token_from_row,
        )
    }

    pub fn token(&self, id: i64) -> Result<Option<Token>> {
        first(
            self.conn
                .row(&format!("{TOKEN_COLUMNS} WHERE t.id = ?1"), &params![id])?,
            token_from_row,
        )
    }

    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<Token>> {
        all(
            self.conn.rows(
                &format!("{TOKEN_COLUMNS} WHERE (?1 IS NULL OR u.name = ?1) ORDER BY t.id"),
                &params![user],
            )?,
            token_from_row,
        )
    }

    /// Revokes a token; false when there is no unrevoked token of that id.
    pub fn revoke_token(&mut self, id: i64, now: i64) -> Result<bool> {
        let tx = self.immediate()?;
        let changed = tx.execute(
            "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            &params![now, id],
        )?;
        tx.unstage_unless(changed == 1);
        tx.commit()?;
        Ok(changed == 1)
    }

    /// Records a use, at most once a minute per token (a write per git
    /// request would cost more than the rest of the check).
    pub fn touch_token(&mut self, id: i64, now: i64) -> Result<()> {
        self.write(
            "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?1 - 60)",
            &params![now, id],
        )?;
        Ok(())
    }

    // Password throttling.

    /// Until when password checks for any of `scopes` are refused, if they
    /// are: `limit` failures within `window` seconds of the first.
    fn password_throttled(
        &self,
        scopes: &[(&str, u32)],
        window: i64,
        now: i64,
    ) -> Result<Option<i64>> {
        let mut until = None;
        for (scope, limit) in scopes {
            let found: Option<(i64, i64)> = first(
                self.conn.row(
                    "SELECT count, window_start FROM password_failures WHERE scope = ?1",
                    &params![scope],
                )?,
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            if let Some((count, start)) = found
                && count >= i64::from(*limit)
                && start + window > now
            {
                until = until.max(Some(start + window));
            }
        }
        Ok(until)
    }

    /// Takes one password check for each of `scopes`, in one write
    /// transaction: refused (`Some(until)`, nothing counted) while any
    /// scope is throttled; otherwise the check counts as a failure until
    /// `password_was_right` says otherwise. Counting before the slow hash,
    /// not after, is what keeps checks run side by side (on one host or
    /// several) to `limit` in all.
    pub fn take_password_check(
        &mut self,
        scopes: &[(&str, u32)],
        window: i64,
        now: i64,
    ) -> Result<Option<i64>> {
        let tx = self.immediate()?;
        let names: Vec<&str> = scopes.iter().map(|(scope, _)| *scope).collect();
        if let Some(until) = self.password_throttled(scopes, window, now)? {
            return Ok(Some(until));
        }
        count_failures(&tx, &names, window, now)?;
        tx.commit()?;
        Ok(None)
    }

    /// A check taken with `take_password_check` was not made (the server
    /// was too busy to hash): each scope gives back the one it took, and
    /// nothing else changes.
    pub fn password_not_checked(&mut self, scopes: &[&str]) -> Result<()> {
        let tx = self.immediate()?;
        for scope in scopes {
            tx.execute(
                "UPDATE password_failures SET count = count - 1 WHERE scope = ?1 AND count > 0",
                &params![scope],
            )?;
        }
        tx.commit()
    }

    /// A check taken with `take_password_check` found the right password:
    /// the user's failures are forgotten, and the address's count gives
    /// back the one it took.
    pub fn password_was_right(&mut self, user_scope: &str, addr_scope: &str) -> Result<()> {
        let tx = self.immediate()?;
        tx.execute(
            "DELETE FROM password_failures WHERE scope = ?1",
            &params![user_scope],
        )?;
        tx.execute(
            "UPDATE password_failures SET count = count - 1 WHERE scope = ?1 AND count > 0",
            &params![addr_scope],
        )?;
        tx.commit()
    }
}

fn count_failures(tx: &Conn, scopes: &[&str], window: i64, now: i64) -> Result<()> {
    for scope in scopes {
        tx.execute(
            "INSERT INTO password_failures (scope, count, window_start) VALUES (?1, 1, ?2)
             ON CONFLICT (scope) DO UPDATE SET
                 count = CASE WHEN password_failures.window_start + ?3 > ?2
                              THEN password_failures.count + 1 ELSE 1 END,
                 window_start = CASE WHEN password_failures.window_start + ?3 > ?2
                                     THEN password_failures.window_start ELSE ?2 END",
            &params![scope, now, window],
        )?;
    }
    Ok(())
}
