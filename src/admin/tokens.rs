//! `git2fa token`: personal access tokens.

use super::args::*;
use super::support::*;
use crate::authz::decision::Permission;
use crate::factor::token;
use crate::system::config::Config;
use crate::system::names::check_label;
use crate::system::time::{format_rfc3339, now};

pub(super) fn token_command(config: &Config, command: TokenCommand) -> CliResult {
    let mut store = open_store(config)?;
    match command {
        TokenCommand::Create {
            user,
            repos,
            perm,
            expires_days,
            name,
            without_2fa,
        } => {
            let owner = find_user(&store, &user)?;

            check_label(&name).map_err(Failure::usage)?;
            let repos = repos
                .iter()
                .map(|p| token::normalise_pattern(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Failure::usage)?;
            let permission = match perm {
                PermArg::Read => Permission::Read,
                PermArg::Write => Permission::Write,
            };
            let max = config.tokens.max_expiry_days;
            let days = expires_days.unwrap_or(config.tokens.default_expiry_days);
            if days == 0 && max != 0 {
                return Err(Failure::usage(format!(
                    "tokens must expire here: --expires-days 1 to {max}"
                )));
            }
            if max != 0 && days > max {
                return Err(Failure::usage(format!(
                    "--expires-days {days} is more than max_expiry_days ({max})"
                )));
            }
            // Rule 4: a token opens repositories that require 2FA, so it
            // is minted only for a user who has the second factor, unless
            // the admin says, by name, that this one has none.
            if !owner.is_enrolled() && !without_2fa {
                return Err(Failure::refused(format!(
                    "{user} has not set up 2FA, so a token would carry no second factor; \
                     enrol them first (git2fa user enroll {user}), or pass --without-2fa for a service account"
                )));
            }
            let t = now();
            let expires_at = (days > 0).then(|| t + i64::from(days) * 86_400);
            let secret = token::generate()?;
            let marked = if without_2fa { " without-2fa" } else { "" };
            let record = admin_record(
                Some(&user),
                None,
                "token-create",
                &format!("{name}{marked}"),
            );
            let id = admin_change(&mut store, record, |store| {
                store.add_token(
                    owner.id,
                    &name,
                    &token::hash(&secret),
                    &repos,
                    permission,
                    expires_at,
                    without_2fa,
                    t,
                )
            })?;
            say!("{secret}");
            eprintln!(
                "token #{id} for {user}{}: {} on {}, {} (shown once; store it now)",
                if without_2fa {
                    ", minted without 2FA"
                } else {
                    ""
                },
                permission.as_str(),
                repos.join(", "),
                expires_at.map_or("never expires".into(), |at| format!(
                    "expires {}",
                    format_rfc3339(at)
                ))
            );
        }
        TokenCommand::List { user } => {
            if let Some(name) = &user {
                find_user(&store, name)?;
            }
            let t = now();
            let tokens = store.tokens(user.as_deref())?;
            if tokens.is_empty() {
                nothing_to_list(&of_whom("no tokens", user.as_deref()));
            }
            for token in tokens {
                say!("{}", token_line(&token, t));
            }
        }
        TokenCommand::Revoke { id } => {
            let found = store
                .token(id)?
                .ok_or_else(|| Failure::refused(format!("no token #{id}")))?;
            if found.revoked_at.is_some() {
                return Err(Failure::refused(format!("token #{id} was already revoked")));
            }
            let mut record = admin_record(
                Some(&found.user),
                None,
                "token-revoke",
                &format!("token #{id}"),
            );
            record.token_id = Some(id);
            if !admin_change(&mut store, record, |store| store.revoke_token(id, now()))? {
                return Err(Failure::refused(format!("token #{id} was already revoked")));
            }
            say!("revoked token #{id} of {}", found.user);
        }
    }
    Ok(())
}
