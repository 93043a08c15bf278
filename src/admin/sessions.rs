//! `git2fa session` and `git2fa verify`: 2FA sessions.

use super::args::*;
use super::support::*;
use crate::authz::twofactor::{self, Verified};
use crate::factor::crypto::SecretKey;
use crate::system::config::Config;
use crate::system::time::{format_duration, format_rfc3339, now};

pub(super) fn session(config: &Config, command: SessionCommand) -> CliResult {
    let mut store = open_store(config)?;
    match command {
        SessionCommand::List { user } => {
            if let Some(name) = &user {
                find_user(&store, name)?;
            }
            let sessions = store.sessions(user.as_deref(), now())?;
            if sessions.is_empty() {
                nothing_to_list(&of_whom("no open 2FA sessions", user.as_deref()));
            }
            for s in sessions {
                let mut line = format!(
                    "session #{} {} opened {} via {} until {}",
                    s.id,
                    s.user,
                    format_rfc3339(s.created_at),
                    s.opened_via,
                    format_rfc3339(s.expires_at)
                );
                if let Some(key) = s.key_id {
                    line += &format!(" key=#{key}");
                }
                if let Some(addr) = &s.remote_addr {
                    line += &format!(" addr={addr}");
                }
                say!("{line}");
            }
        }
        SessionCommand::End { id: Some(id), .. } => {
            let record = admin_record(None, None, "session-end", &format!("session #{id}"));
            if !admin_change(&mut store, record, |store| store.end_session(id, now()))? {
                return Err(Failure::refused(format!("no open session #{id}")));
            }
            say!("ended session #{id}");
        }
        SessionCommand::End { id: None, user } => {
            let name = user.unwrap_or_default();
            let found = find_user(&store, &name)?;
            let record = admin_record(Some(&name), None, "session-end", "every open session");
            let count = admin_change(&mut store, record, |store| {
                store.end_sessions_of(found.id, now())
            })?;
            say!(
                "ended {count} session{} of {name}",
                if count == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}

pub(super) fn verify(config: &Config, name: &str, code: &str) -> CliResult {
    let mut store = open_store(config)?;
    let user = find_user(&store, name)?;
    let key = SecretKey::load(&config.secret_key_path())?;
    let t = now();
    match twofactor::verify(&mut store, &key, config, &user, code, &cli_origin(), t)? {
        Verified::Opened {
            session_id,
            expires_at,
            method,
        } => {
            say!(
                "verified {name} with a {}: 2FA session #{session_id} open until {} ({})",
                match method {
                    twofactor::Method::Totp => "TOTP code",
                    twofactor::Method::RecoveryCode => "recovery code",
                    twofactor::Method::SecurityKey => "security key",
                },
                format_rfc3339(expires_at),
                format_duration(config.policy.session_ttl)
            );
            Ok(())
        }
        Verified::Wrong { left } => Err(Failure::refused(format!(
            "wrong code for {name}; {} the account",
            crate::authz::messages::more_lock(left, "wrong code")
        ))),
        Verified::Replayed { left } => Err(Failure::refused(format!(
            "that code was already used; wait for the next one ({} the account)",
            crate::authz::messages::more_lock(left, "wrong code")
        ))),
        Verified::Locked { until } => Err(Failure::refused(format!(
            "{name} is locked after too many wrong codes until {} (git2fa user unlock {name})",
            format_rfc3339(until)
        ))),
    }
}
