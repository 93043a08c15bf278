//! `git2fa user`: add, show, list, disable, enable, reset 2FA, unlock, passwords.

use super::args::*;
use super::support::*;
use crate::authz::twofactor::{self};
use crate::factor::crypto::{self, SecretKey};
use crate::store::{StoreError, User};
use crate::system::config::Config;
use crate::system::names::check_user_name;
use crate::system::time::{format_rfc3339, now};

pub(super) fn user(config: &Config, command: UserCommand) -> CliResult {
    let mut store = open_store(config)?;
    match command {
        UserCommand::Add {
            name,
            password_stdin,
            admin,
        } => {
            check_user_name(&name).map_err(Failure::usage)?;
            if store.user(&name)?.is_some() {
                return Err(Failure::refused(format!("user {name} already exists")));
            }
            let password = read_password(password_stdin, false)?;
            let hash = password.as_deref().map(crypto::hash_password).transpose()?;
            let record = admin_record(
                Some(&name),
                None,
                "user-add",
                if admin { "admin" } else { "user" },
            );
            // Without a password, a link to set one, made with the user.
            let link = match hash {
                Some(_) => None,
                None => Some(new_password_link(config)?),
            };
            let t = now();
            let added = store.audited(record, |store| {
                let link = link.as_ref().map(|(_, hash)| (hash, t + PASSWORD_LINK_TTL));
                store.add_user_with(&name, hash.as_deref(), admin, link, t)
            });
            if let Err(StoreError::Exists) = added {
                return Err(Failure::refused(format!("user {name} already exists")));
            }
            added?;
            match link {
                None => say!("added {name}"),
                Some((url, _)) => {
                    say!("added {name}; they set a password at (once, within 24 hours):");
                    say!("{url}");
                }
            }
        }
        UserCommand::List => {
            let t = now();
            let users = store.users()?;
            for user in &users {
                say!("{}", user_line(user, t));
            }
            if users.is_empty() {
                nothing_to_list("no users (add one with `git2fa user add NAME`)");
            }
        }
        UserCommand::Show { name } => {
            let user = find_user(&store, &name)?;
            let t = now();
            say!("{}", user_line(&user, t));
            if let Some(at) = user.enrolled_at {
                say!("enrolled: {}", format_rfc3339(at));
            }
            say!("failures: {}", user.failures);
            for key in store.security_keys(user.id)? {
                say!(
                    "security-key #{} {:?} added {} last-used {}",
                    key.id,
                    key.name,
                    format_rfc3339(key.created_at),
                    key.last_used_at.map_or("never".to_string(), format_rfc3339)
                );
            }
            for key in store.keys(Some(&name))? {
                say!(
                    "key #{} {} {} {}",
                    key.id,
                    key.algorithm,
                    key.fingerprint,
                    key.comment
                );
            }
            for token in store.tokens(Some(&name))? {
                say!("{}", token_line(&token, t));
            }
            for session in store.sessions(Some(&name), t)? {
                say!(
                    "session #{} until {} via {}",
                    session.id,
                    format_rfc3339(session.expires_at),
                    session.opened_via
                );
            }
        }
        UserCommand::Disable { name } => {
            let user = find_user(&store, &name)?;
            let record = admin_record(Some(&name), None, "user-disable", "admin");
            admin_change(&mut store, record, |store| {
                store.set_enabled(user.id, false, now())
            })?;
            say!("disabled {name}");
        }
        UserCommand::Enable { name } => {
            let user = find_user(&store, &name)?;
            let record = admin_record(Some(&name), None, "user-enable", "admin");
            admin_change(&mut store, record, |store| {
                store.set_enabled(user.id, true, now())
            })?;
            say!("enabled {name}");
        }
        UserCommand::Unlock { name } => {
            let user = find_user(&store, &name)?;
            let record = admin_record(Some(&name), None, "user-unlock", "admin");
            admin_change(&mut store, record, |store| store.unlock(user.id))?;
            say!("unlocked {name}");
        }
        UserCommand::Reset2fa { name, keep_tokens } => {
            let user = find_user(&store, &name)?;
            let mut record = admin_record(Some(&name), None, "reset-2fa", "admin");
            record.detail = Some(format!(
                "{}; {} security keys removed",
                operator(),
                user.security_keys
            ));
            let reset = admin_change(&mut store, record, |store| {
                store.reset_2fa(user.id, !keep_tokens, now())
            })?
            .ok_or_else(|| Failure::refused(format!("no user {name}")))?;
            let tokens = if keep_tokens {
                "tokens kept".to_string()
            } else {
                plural(reset.tokens_revoked, "token") + " revoked"
            };
            let sessions = plural(reset.sessions_ended, "2FA session") + " ended";
            // Security keys are named only when there were some: the
            // line stays as scripts know it for users with an app alone.
            let keys = match user.security_keys {
                0 => String::new(),
                n => plural(usize::try_from(n).unwrap_or(0), "security key") + " removed; ",
            };
            say!(
                "removed 2FA from {name}: secret and recovery codes are gone; {keys}{sessions}; {tokens}"
            );
        }
        UserCommand::SetPassword {
            name, link: true, ..
        } => {
            let user = find_user(&store, &name)?;
            let record = admin_record(Some(&name), None, "set-password", "link");
            let (url, hash) = new_password_link(config)?;
            store.audited(record, |store| {
                store.add_password_link(&hash, user.id, now() + PASSWORD_LINK_TTL)
            })?;
            say!("{url}");
        }
        UserCommand::SetPassword {
            name,
            password_stdin,
            ..
        } => {
            let user = find_user(&store, &name)?;
            let password = read_password(password_stdin, true)?.unwrap_or_default();
            let hash = crypto::hash_password(&password)?;
            let record = admin_record(Some(&name), None, "set-password", "admin");
            admin_change(&mut store, record, |store| {
                store.set_password_hash(user.id, &hash)
            })?;
            say!("set the password of {name}");
        }
        UserCommand::Enroll { name } => {
            let user = find_user(&store, &name)?;
            let key = SecretKey::load(&config.secret_key_path())?;
            let enrollment =
                twofactor::enroll(&mut store, &key, config, &user, &cli_origin(), now())?;
            say!("enrolled {name}; add this to an authenticator app:");
            say!("{}", enrollment.uri);
            say!(
                "key: {}",
                crate::factor::totp::encode_secret(&enrollment.secret)
            );
            if !enrollment.recovery_codes.is_empty() {
                say!("recovery codes (each works once; keep them safe):");
                for code in &enrollment.recovery_codes {
                    say!("  {code}");
                }
            }
        }
    }
    Ok(())
}

pub(super) fn user_line(user: &User, now: i64) -> String {
    let mut flags = vec![
        if user.enabled { "enabled" } else { "disabled" },
        if user.is_enrolled() {
            "enrolled"
        } else {
            "not-enrolled"
        },
    ];
    if user.is_admin {
        flags.push("admin");
    }
    if user.always_2fa {
        flags.push("always-2fa");
    }
    if user.password_hash.is_none() {
        flags.push("no-password");
    }
    let mut line = format!("{} {}", user.name, flags.join(" "));
    if let Some(until) = user.locked_until.filter(|&u| u > now) {
        line += &format!(" locked-until={}", format_rfc3339(until));
    }
    line
}
