//! Personal access tokens.

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
}
