//! `git2fa explain`, `git2fa audit` and `git2fa check`: looking, not changing.

use std::io::Write;

use super::args::*;
use super::support::*;
use crate::authz::decision::{Credential, Decision, Operation, Transport};
use crate::authz::gate::{self, Request};
use crate::repo::policy::PushedRefs;
use crate::store::audit::AuditCursor;
use crate::store::{AuditFilter, AuditRecord};
use crate::system::config::Config;
use crate::system::names::check_user_name;
use crate::system::time::{format_rfc3339, now, parse_rfc3339};

pub(super) fn explain(config: &Config, args: &ExplainArgs) -> CliResult {
    let store = open_store(config)?;
    check_user_name(&args.user).map_err(Failure::usage)?;
    let repo = resolve_repo(config, &args.repo)?;
    if args.op == OpArg::Read && !args.refs.is_empty() {
        return Err(Failure::usage("--ref goes with write"));
    }
    let operation = match args.op {
        OpArg::Read => Operation::Read,
        OpArg::Write if args.refs.is_empty() => Operation::Write(PushedRefs::Unknown),
        OpArg::Write => Operation::Write(PushedRefs::Known(args.refs.clone())),
    };
    let credential = match args.token {
        Some(id) => {
            let found = store
                .token(id)?
                .ok_or_else(|| Failure::refused(format!("no token #{id}")))?;
            if found.user != args.user {
                return Err(Failure::usage(format!(
                    "token #{id} belongs to {}",
                    found.user
                )));
            }
            Credential::Token(crate::authz::decision::TokenFacts::of(&found))
        }
        None => match args.key_id {
            Some(key_id) => {
                // Only the user's own key can be marked for them.
                let hardware = store
                    .key(key_id)?
                    .filter(|key| key.user == args.user)
                    .and_then(|key| key.hardware);
                if let Some(hardware) = hardware {
                    say!(
                        "key #{key_id} is a security key marked {}: taken as used through OpenSSH, which holds its signature to that",
                        hardware.as_str()
                    );
                }
                Credential::SshKey { key_id, hardware }
            }
            None => Credential::UnixUser,
        },
    };
    let request = Request {
        user: Some(&args.user),
        credential,
        repo: crate::authz::gate::Target::Found(&repo),
        operation,
        transport: Transport::Cli,
        key_id: args.key_id,
        remote_addr: args.ip.as_deref(),
    };
    let outcome = gate::evaluate(config, &store, &request, now());
    let verdict = if outcome.decision.is_allowed() {
        "allowed"
    } else {
        "refused"
    };
    say!(
        "{verdict} by rule {} ({}): {}",
        outcome.decision.rule(),
        outcome.decision.code(),
        rule_text(&outcome.decision)
    );
    match &outcome.required_by {
        Some(why) => say!("2FA required: yes, {}", why.describe()),
        None if outcome.decision.rule() >= 2 => say!("2FA required: no"),
        None => {}
    }
    if let Some(detail) = &outcome.detail {
        say!("cause: {detail}");
    }
    match &outcome.decision {
        Decision::Allow(_) => Ok(()),
        Decision::Refuse(refusal) => {
            let cx = crate::authz::messages::MessageContext {
                config,
                repo: &repo.name,
                user: Some(&args.user),
                operation: &request.operation,
                transport: Transport::Ssh,
            };
            say!("a git user would read:");
            for line in refusal.lines(&cx) {
                say!("  {line}");
            }
            Err(Failure {
                code: 1,
                message: format!(
                    "{} may not {} {}",
                    args.user,
                    request.operation.as_str(),
                    repo.name
                ),
            })
        }
    }
}

pub(super) fn rule_text(decision: &Decision) -> &'static str {
    match decision.rule() {
        0 => "the credential does not hold",
        1 => "not a registered, enabled user with the right on this repository",
        3 => "2FA is not required for this operation",
        4 => "a personal access token carries the second factor",
        5 if decision.is_allowed() => "a password with an open 2FA session (password_for_git)",
        5 => "a password is not accepted where 2FA is required; use a personal access token",
        6 => "2FA is required and the user has not enrolled",
        7 if decision.code() == "hardware-key" => {
            "a marked hardware key used on this connection counts as the second factor (hardware_keys = \"counts-as-2fa\")"
        }
        7 if decision.is_allowed() => "an open 2FA session",
        7 => "2FA is required and no open 2FA session matches",
        9 => {
            "a pushed ref is in require_hardware_key: it needs a marked hardware key with user verification on the connection"
        }
        _ => "the check could not be completed",
    }
}

/// How often `--follow` looks for new rows.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) fn audit(config: &Config, args: &AuditArgs) -> CliResult {
    let mut filter = AuditFilter {
        user: args.user.clone(),
        repo: args.repo.clone(),
        limit: args.limit.unwrap_or(50),
        ..AuditFilter::default()
    };
    match args.since.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            filter.after_id = Some(
                id.parse()
                    .map_err(|_| Failure::usage(format!("--since {id}: not a row id")))?,
            );
            filter.limit = args.limit.unwrap_or(u32::MAX);
        }
        Some(time) => {
            filter.since =
                Some(parse_rfc3339(time).map_err(|e| Failure::usage(format!("--since: {e}")))?);
            filter.limit = args.limit.unwrap_or(u32::MAX);
        }
        None => {}
    }
    let store = open_store(config)?;
    let mut rows = store.audit(&filter)?;
    if filter.after_id.is_none() && filter.since.is_none() && args.follow {
        // The newest rows, then what follows them, oldest first.
        rows.reverse();
    }
    let mut out = std::io::stdout().lock();
    let mut last = filter.after_id.unwrap_or(0);
    // A closed pipe (`| head`) ends the listing, as it ends `tail -f`.
    let newest = print_rows(rows, args.json, &mut out).unwrap_or_else(|e| output_closed(&e));
    if !args.follow {
        return Ok(());
    }
    last = last.max(newest);
    // Every row once, also one committed after a newer one (PostgreSQL).
    let mut cursor = AuditCursor::after(last);
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let rows = cursor
            .next(&store, 1000, now())?
            .into_iter()
            .filter(|(_, r)| {
                filter
                    .user
                    .as_ref()
                    .is_none_or(|u| r.user.as_ref() == Some(u))
                    && filter
                        .repo
                        .as_ref()
                        .is_none_or(|p| r.repo.as_ref() == Some(p))
            })
            .collect();
        print_rows(rows, args.json, &mut out).unwrap_or_else(|e| output_closed(&e));
    }
}

/// Prints `rows`; the newest id printed (0 for none), or `Err` once the
/// output is closed.
fn print_rows(
    rows: Vec<(i64, AuditRecord)>,
    json: bool,
    out: &mut std::io::StdoutLock,
) -> Result<i64, std::io::Error> {
    let mut newest = 0;
    for (id, r) in rows {
        newest = newest.max(id);
        let line = if json {
            audit_json(id, &r).to_string()
        } else {
            audit_line(id, r)
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(newest)
}

/// One row as the listing prints it.
fn audit_line(id: i64, r: AuditRecord) -> String {
    let mut line = format!(
        "#{id} {} {} {} {} {} {}",
        format_rfc3339(r.at),
        r.transport,
        r.user.as_deref().unwrap_or("-"),
        r.action,
        r.outcome,
        r.reason
    );
    for (label, value) in [
        ("repo", r.repo),
        ("refs", r.refs),
        ("credential", r.credential),
        ("factor", r.factor),
        ("key", r.key_id.map(|k| format!("#{k}"))),
        ("token", r.token_id.map(|t| format!("#{t}"))),
        ("addr", r.remote_addr),
        ("detail", r.detail),
    ] {
        if let Some(value) = value {
            line += &format!(" {label}={value}");
        }
    }
    line
}

/// One row in the export's schema (docs/admin-guide.md, "Audit export and
/// retention"): every field, `null` when unset.
pub(super) fn audit_json(id: i64, r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "at": format_rfc3339(r.at),
        "transport": r.transport,
        "user": r.user,
        "action": r.action,
        "outcome": r.outcome,
        "reason": r.reason,
        "repo": r.repo,
        "refs": r.refs,
        "credential": r.credential,
        "factor": r.factor,
        "key_id": r.key_id,
        "token_id": r.token_id,
        "addr": r.remote_addr,
        "detail": r.detail,
    })
}

pub(super) fn check(config: &Config, options: crate::admin::check::Options) -> CliResult {
    let report = crate::admin::check::run(config, &options);
    for (level, line) in &report.lines {
        say!("{}: {line}", level.word());
    }
    match report.problems() {
        0 => Ok(()),
        n => Err(Failure::refused(format!("{} found", plural(n, "problem")))),
    }
}
