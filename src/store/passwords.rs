//! The throttling of password checks: failures counted per scope (a user,
//! an address) within a window, and checks refused past the limit.

use super::*;

impl Store {
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
