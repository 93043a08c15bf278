//! What lets someone around git2fa: a config others may write, a web
//! server trusted to name the pusher, repositories git will not serve as
//! the git account, and password logins to that account.

use std::os::unix::fs::MetadataExt;

use super::report::{Report, mode};
use crate::system::config::Config;

/// `config.toml` names `git_bin`, which runs as the git account for every
/// operation: whoever may write it runs code as that account.
pub(super) fn config_file(
    config: &Config,
    account: Option<&nix::unistd::User>,
    report: &mut Report,
) {
    let path = &config.path;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let m = mode(path).unwrap_or(0);
    let owner_ok = meta.uid() == 0 || account.is_some_and(|a| a.uid.as_raw() == meta.uid());
    if m & 0o022 != 0 {
        report.problem(format!(
            "config {} has mode {m:o}: any local account may change it, and git_bin runs as git for every operation; run chmod 644 {} and chown root:root {}",
            path.display(),
            path.display(),
            path.display()
        ));
    } else if !owner_ok {
        let owner = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
            .ok()
            .flatten()
            .map_or(format!("uid {}", meta.uid()), |u| u.name);
        report.problem(format!(
            "config {} belongs to {owner}, who may then change git_bin, which runs as git; run chown root:root {}",
            path.display(),
            path.display()
        ));
    } else {
        report.ok(format!(
            "config {} can be changed by root{} alone",
            path.display(),
            account.map_or(String::new(), |a| format!(" and {}", a.name))
        ));
    }
}

/// `[http] trust_remote_user = true` makes the hooks take the pusher from
/// `REMOTE_USER`: right only behind a web server that authenticates every
/// request to git itself.
pub(super) fn trusted_remote_user(config: &Config, report: &mut Report) {
    if config.http.trust_remote_user {
        report.note(
            "[http] trust_remote_user = true: the hooks take the pusher from REMOTE_USER, so a web server path to git http-backend without its own authentication pushes as anyone; keep it only if your web server authenticates every request under /git/, else set it to false and use git2fa-http",
        );
    }
}

/// git refuses a repository another account owns ("detected dubious
/// ownership"), and the shims run git as the git account.
pub(super) fn repository_owners(
    repos: &[std::path::PathBuf],
    account: &nix::unistd::User,
    report: &mut Report,
) {
    let foreign: Vec<String> = repos
        .iter()
        .filter(|repo| std::fs::metadata(repo).is_ok_and(|m| m.uid() != account.uid.as_raw()))
        .map(|repo| repo.display().to_string())
        .collect();
    if foreign.is_empty() {
        return;
    }
    report.problem(format!(
        "{} {} not {}'s: git refuses such a repository (\"detected dubious ownership\") when git2fa runs it as {}; run chown -R {}: {}",
        foreign.join(", "),
        if foreign.len() == 1 { "is" } else { "are" },
        account.name,
        account.name,
        account.name,
        foreign.join(" ")
    ));
}

/// sshd letting the git account in with a password, and the account having
/// one: such a log-in runs the account's login shell, not git2fa-shell.
pub(super) fn password_logins(sshd: &str, account: &nix::unistd::User, report: &mut Report) {
    let value = |key: &str| {
        sshd.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or("")
            .to_string()
    };
    let by_password =
        value("passwordauthentication") == "yes" || value("kbdinteractiveauthentication") == "yes";
    if !by_password {
        return;
    }
    let shadow = match std::fs::read_to_string("/etc/shadow") {
        Ok(shadow) => shadow,
        Err(_) => {
            return report.note(format!(
                "sshd accepts passwords for {}; cannot read /etc/shadow to see whether it has one (run check as root)",
                account.name
            ));
        }
    };
    let hash = shadow
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}:", account.name)))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or("");
    let usable = !hash.is_empty() && !hash.starts_with('!') && !hash.starts_with('*');
    if usable {
        report.problem(format!(
            "sshd accepts passwords for {} and the account has one: a password log-in gets a shell as {}, past git2fa; run passwd -l {} and set PasswordAuthentication no and KbdInteractiveAuthentication no in its Match block",
            account.name, account.name, account.name
        ));
    }
}
