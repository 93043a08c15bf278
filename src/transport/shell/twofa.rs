//! The `2fa` commands of the SSH shell: `2fa` (status), `2fa logout` and
//! `2fa verify`, which reads a code and opens a 2FA session.

use super::{Action, Connection, PendingVerify, Step, Streams};
use crate::authz::decision::{self, Transport};
use crate::authz::messages;
use crate::authz::twofactor::{self, Origin, Verified};
use crate::factor::crypto::SecretKey;
use crate::store::{AuditRecord, Location, SshKey, Store};
use crate::system::time::{format_duration, format_utc, now};

impl Connection<'_> {
    pub(super) fn status_line(&self, store: &Store, key: &SshKey) -> String {
        let t = now();
        let user = match store.user(&key.user) {
            Ok(Some(user)) => user,
            _ => return "git2fa: 2FA status unavailable".into(),
        };
        if !user.is_enrolled() {
            return format!(
                "{}: 2FA is not set up; set it up at {}",
                user.name,
                self.config.setup_url()
            );
        }
        let sessions = store.open_sessions(user.id, t).unwrap_or_default();
        let usable = sessions.iter().find(|s| {
            decision::session_matches(
                self.config.policy.bind_session,
                s,
                Some(key.id),
                self.remote_addr.as_deref(),
                t,
            )
        });
        match usable {
            Some(s) => format!(
                "{}: 2FA session #{} open until {}",
                user.name,
                s.id,
                format_utc(s.expires_at)
            ),
            None => format!(
                "{}: no open 2FA session; verify at {} or with: {}",
                user.name,
                self.config.verify_url(None),
                self.config.ssh_hint("2fa verify")
            ),
        }
    }

    pub(super) fn logout(&self, store: &mut Store, key: &SshKey, io: &mut Streams) -> Action {
        let t = now();
        let ended = store
            .user(&key.user)
            .and_then(|user| match user {
                Some(user) => store.end_sessions_of(user.id, t),
                None => Ok(0),
            })
            .and_then(|ended| {
                store
                    .append_audit(&AuditRecord {
                        at: t,
                        user: Some(key.user.clone()),
                        transport: Transport::Ssh.as_str().into(),
                        action: "logout".into(),
                        outcome: "ok".into(),
                        reason: format!("{ended} sessions"),
                        key_id: Some(key.id),
                        remote_addr: self.remote_addr.clone(),
                        ..AuditRecord::default()
                    })
                    .map(|()| ended)
            });
        match ended {
            Ok(n) => {
                let _ = writeln!(
                    io.stdout,
                    "git2fa: ended {n} 2FA session{} of {}",
                    if n == 1 { "" } else { "s" },
                    key.user
                );
                Action::Exit(0)
            }
            Err(e) => {
                log::error!("2fa logout: {e}");
                let _ = writeln!(io.stderr, "git2fa: {}", messages::UNAVAILABLE);
                Action::Exit(1)
            }
        }
    }

    /// Checks that the user may verify, then prompts for a code.
    pub(super) fn verify_prompt(&self, store: &mut Store, key: SshKey, io: &mut Streams) -> Step {
        if let Err(action) = self.verifiable_user(store, &key, io) {
            return action.into();
        }
        let _ = write!(
            io.stderr,
            "Code from your authenticator app (or a recovery code): "
        );
        let _ = io.stderr.flush();
        Step::AwaitCode(PendingVerify { key })
    }

    /// The user of `key`, if enabled and enrolled; else the refusal.
    pub(super) fn verifiable_user(
        &self,
        store: &Store,
        key: &SshKey,
        io: &mut Streams,
    ) -> Result<crate::store::User, Action> {
        let user = match store.user(&key.user) {
            Ok(Some(user)) if user.enabled => user,
            Ok(_) => {
                return Err(verify_failed(
                    io,
                    &format!("the account {} is disabled", key.user),
                ));
            }
            Err(e) => {
                log::error!("2fa verify: {e}");
                return Err(verify_failed(io, messages::UNAVAILABLE));
            }
        };
        if !user.is_enrolled() {
            return Err(verify_failed(
                io,
                &format!(
                    "{} has not set up 2FA yet; set it up at {}",
                    user.name,
                    self.config.setup_url()
                ),
            ));
        }
        Ok(user)
    }

    /// Checks the code typed at a `2fa verify` prompt (`None`: reading it
    /// failed or timed out). The store and the user are read afresh: either
    /// may have changed while the prompt waited.
    pub fn finish_verify(
        &self,
        pending: PendingVerify,
        line: Option<&str>,
        io: &mut Streams,
    ) -> Action {
        let key = pending.key;
        let code = match line.map(str::trim) {
            Some(code) if !code.is_empty() => code,
            _ => {
                let _ = writeln!(io.stderr);
                return verify_failed(io, "no code given");
            }
        };
        let mut store = match Store::connect(&Location::of(self.config)) {
            Ok(store) => store,
            Err(e) => {
                log::error!("2fa verify: {e}");
                return verify_failed(io, messages::UNAVAILABLE);
            }
        };
        let user = match self.verifiable_user(&store, &key, io) {
            Ok(user) => user,
            Err(action) => return action,
        };
        let secret_key = match SecretKey::load(&self.config.secret_key_path()) {
            Ok(k) => k,
            Err(e) => {
                log::error!("2fa verify: {e}");
                return verify_failed(io, messages::UNAVAILABLE);
            }
        };
        let origin = Origin {
            transport: Transport::Ssh,
            key_id: Some(key.id),
            remote_addr: self.remote_addr.clone(),
        };
        let result = twofactor::verify(
            &mut store,
            &secret_key,
            self.config,
            &user,
            code,
            &origin,
            now(),
        );
        let fail = verify_failed;
        match result {
            Ok(Verified::Opened { expires_at, .. }) => {
                let scope = match self.config.policy.bind_session {
                    crate::system::config::BindSession::User => String::new(),
                    crate::system::config::BindSession::Key => format!(" with key #{}", key.id),
                    crate::system::config::BindSession::Ip => " from this address".into(),
                };
                let _ = writeln!(
                    io.stdout,
                    "git2fa: 2FA session open until {} ({}). Git operations{scope} now work.",
                    format_utc(expires_at),
                    format_duration(self.config.policy.session_ttl)
                );
                Action::Exit(0)
            }
            Ok(Verified::Wrong { left }) => fail(
                io,
                &format!("wrong code; {left} more wrong codes lock the account"),
            ),
            Ok(Verified::Replayed { left }) => fail(
                io,
                &format!(
                    "that code was already used; wait for the next one ({left} more wrong codes lock the account)"
                ),
            ),
            Ok(Verified::Locked { until }) => fail(
                io,
                &format!(
                    "too many wrong codes: the account is locked until {}",
                    format_utc(until)
                ),
            ),
            Err(e) => {
                log::error!("2fa verify: {e}");
                fail(io, messages::UNAVAILABLE)
            }
        }
    }
}

fn verify_failed(io: &mut Streams, message: &str) -> Action {
    let _ = writeln!(io.stderr, "git2fa: {message}");
    Action::Exit(1)
}
