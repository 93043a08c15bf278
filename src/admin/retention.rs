//! What the store keeps, and for how long: `git2fa store prune` (expired
//! rows, which `git2fa serve` also removes every hour) and `git2fa store
//! prune-audit` (audit rows older than a time, once exported).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

use super::inspect::audit_json;
use super::support::*;
use crate::authz::decision::Transport;
use crate::store::{AuditPruned, AuditRecord};
use crate::system::config::Config;
use crate::system::time::{format_rfc3339, now, parse_rfc3339};

pub(super) fn prune(config: &Config) -> CliResult {
    let store = open_store(config)?;
    let now = now();
    let expired = store.prune_expired(now, now - config.policy.lockout)?;
    say!(
        "removed {} 2FA sessions, {} web sessions, {} set-password links, {} verify links, {} wrong-password counts, {} OAuth codes",
        expired.sessions,
        expired.web_sessions,
        expired.password_links,
        expired.verify_links,
        expired.password_failures,
        expired.oauth_codes
    );
    Ok(())
}

/// Exit 1 when rows older than `before` had to be kept (the export does
/// not hold them): a cron job then says so.
pub(super) fn prune_audit(config: &Config, before: &str, exported: &[PathBuf]) -> CliResult {
    let before_at = parse_rfc3339(before).map_err(|e| Failure::usage(format!("--before: {e}")))?;
    if before_at > now() {
        return Err(Failure::usage(format!(
            "--before {before} is in the future: rows not written yet cannot have been exported"
        )));
    }
    let export = read_export(exported)?;
    let mut store = open_store(config)?;
    let pruned = store.prune_audit(
        before_at,
        &|id, record| export.get(&id) == Some(&audit_json(id, record)),
        |pruned: &AuditPruned| AuditRecord {
            at: now(),
            transport: Transport::Cli.as_str().into(),
            action: "audit-prune".into(),
            outcome: "ok".into(),
            reason: format!(
                "{} rows before {} removed, {} kept",
                pruned.removed,
                format_rfc3339(before_at),
                pruned.kept
            ),
            detail: Some(operator()),
            ..AuditRecord::default()
        },
    )?;
    say!(
        "removed {} audit rows before {}",
        pruned.removed,
        format_rfc3339(before_at)
    );
    if pruned.kept > 0 {
        return Err(Failure::refused(format!(
            "kept {} audit rows before {} that the export does not hold as the store does: export them (git2fa audit --json --since ID) and run this again",
            pruned.kept,
            format_rfc3339(before_at)
        )));
    }
    Ok(())
}

/// Every row of the export files, by id. A line that is not a row of
/// `git2fa audit --json` is an error: the file is not an export.
fn read_export(files: &[PathBuf]) -> Result<HashMap<i64, serde_json::Value>, Failure> {
    let mut rows = HashMap::new();
    for path in files {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let not_a_row = || {
                Failure::usage(format!(
                    "{}:{}: not a line of `git2fa audit --json`",
                    path.display(),
                    n + 1
                ))
            };
            let line = line.map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut value: serde_json::Value =
                serde_json::from_str(&line).map_err(|_| not_a_row())?;
            // Exports made before `factor` was in the schema hold the same
            // rows: their rows had none.
            if let Some(object) = value.as_object_mut() {
                object.entry("factor").or_insert(serde_json::Value::Null);
            }
            let id = value
                .get("id")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(not_a_row)?;
            rows.insert(id, value);
        }
    }
    Ok(rows)
}
