//! What `check` reads of OpenSSH: the git account's login shell and
//! authorized_keys files, and sshd's effective configuration for it
//! (`sshd -T`), whose `AuthorizedKeysCommand` must be git2fa's.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::exposure;
use super::report::Report;
use crate::system::config::Config;

/// sshd runs a forced command with the account's login shell (`SHELL -c
/// COMMAND`): `nologin`, `false` or `git-shell` cannot run `git2fa-shell`,
/// and git then says "protocol error".
pub(super) fn login_shell(account: &nix::unistd::User, report: &mut Report) {
    if account.uid.is_root() {
        return;
    }
    let shell = account.shell.to_string_lossy().into_owned();
    let name = shell.rsplit('/').next().unwrap_or("");
    if ["nologin", "false", "git-shell"].contains(&name) || shell.is_empty() {
        report.problem(format!(
            "the login shell of {} is {shell}: sshd runs the forced command git2fa-shell through it, which {shell} cannot; run: usermod -s /bin/sh {}",
            account.name, account.name
        ));
    } else {
        report.ok(format!("{} logs in with {shell}", account.name));
    }
}

/// A key in the git account's own `authorized_keys` without the
/// `git2fa-shell` forced command gets a shell as that account, which reads
/// the store and `secret.key`. Keys belong in `git2fa key add`.
pub(super) fn authorized_keys_files(account: &nix::unistd::User, report: &mut Report) {
    if account.uid.is_root() {
        report.note(
            "git2fa runs as root here; on a real host it runs as its own account (git), never root",
        );
        return;
    }
    let mut open = Vec::new();
    let mut claims = Vec::new();
    for name in ["authorized_keys", "authorized_keys2"] {
        let path = account.dir.join(".ssh").join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !forced_through_git2fa_shell(line) {
                open.push(format!("{}:{}", path.display(), number + 1));
            } else if line.contains("--hardware") || line.contains("no-touch-required") {
                claims.push(format!("{}:{}", path.display(), number + 1));
            }
        }
    }
    if !claims.is_empty() {
        report.problem(format!(
            "{} written by hand, claims a security key's touch or PIN (--hardware, no-touch-required) that sshd may not check: delete the line; git2fa authorized-keys writes what sshd must enforce",
            claims.join(", ")
        ));
    }
    if open.is_empty() {
        report.ok(format!(
            "no key in {}'s own authorized_keys escapes git2fa-shell",
            account.name
        ));
    } else {
        report.problem(format!(
            "{} gives a shell as {} to whoever holds that key (no git2fa-shell forced command): it can read secret.key; delete the line, and register keys with git2fa key add",
            open.join(", "),
            account.name
        ));
    }
}

/// Whether an `authorized_keys` line's options (what comes before the key
/// type, outside quotes) force a command that is `git2fa-shell`. A
/// "git2fa-shell" in the key's comment does not count.
fn forced_through_git2fa_shell(line: &str) -> bool {
    let mut in_quotes = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ' ' | '\t' if !in_quotes => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let options = &line[..end];
    if options.starts_with("ssh-") || options.starts_with("ecdsa-") || options.starts_with("sk-") {
        return false;
    }
    options
        .split(',')
        .filter_map(|o| o.strip_prefix("command=\""))
        .any(|command| {
            command
                .split('"')
                .next()
                .is_some_and(|c| c.contains("git2fa-shell"))
        })
}

/// sshd's effective configuration for the git account (`sshd -T`): its
/// `AuthorizedKeysCommand` must be `git2fa authorized-keys`, or no key
/// registered in git2fa gets in through OpenSSH.
/// Returns the command when it is git2fa's.
pub(super) fn sshd(
    config: &Config,
    sshd_config: Option<&Path>,
    account: &nix::unistd::User,
    report: &mut Report,
) -> Option<String> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        report.note("no OpenSSH server here (/usr/sbin/sshd)");
        return None;
    }
    // As for a log-in from this host and from anywhere else: a `Match
    // Address` block may treat them differently.
    let effective = |addr: &str, host: &str| {
        let mut command = std::process::Command::new(sshd);
        if let Some(file) = sshd_config {
            command.arg("-f").arg(file);
        }
        command
            .args([
                "-T",
                "-C",
                &format!("user={},host={host},addr={addr}", account.name),
            ])
            .stdin(std::process::Stdio::null())
            .output()
    };
    let text = match effective("127.0.0.1", "localhost") {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            report.note(format!(
                "cannot read sshd's configuration (run check as root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        Err(e) => {
            report.note(format!("cannot run sshd -T: {e}"));
            return None;
        }
    };
    // A public address, and one of each private range (`Match Address`
    // blocks name these most).
    let remote: Vec<String> = ["203.0.113.7", "10.0.0.7", "172.16.0.7", "192.168.0.7"]
        .into_iter()
        .filter_map(|addr| effective(addr, "remote.example").ok())
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .collect();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or("")
            .to_string()
    };
    // Passwords taken from somewhere are passwords taken.
    let takes_passwords = |t: &str| {
        t.lines()
            .any(|l| l == "passwordauthentication yes" || l == "kbdinteractiveauthentication yes")
    };
    let judged = match remote.iter().find(|r| takes_passwords(r)) {
        Some(remote) if !takes_passwords(&text) => remote,
        _ => &text,
    };
    exposure::password_logins(judged, account, report);
    let command = value("authorizedkeyscommand");
    if command.contains("git2fa") && command.contains("authorized-keys") {
        report.ok(format!(
            "sshd asks git2fa for {}'s keys ({command})",
            account.name
        ));
        return Some(command);
    }
    if config.ssh.listen.is_some() {
        report.note(format!(
            "sshd does not ask git2fa for {}'s keys; git over SSH goes through git2fa serve's own server",
            account.name
        ));
    } else {
        report.problem(format!(
            "sshd does not ask git2fa for {}'s keys (AuthorizedKeysCommand is {:?}) and the embedded SSH server is off: no key registered in git2fa gets in; install install/sshd_config.conf",
            account.name,
            if command.is_empty() { "none" } else { &command }
        ));
    }
    None
}

/// sshd runs an `AuthorizedKeysCommand` only from a root-owned path that no
/// one else can write, every directory up to `/` included; a binary others
/// can write is also a binary others can replace.
pub(super) fn binaries_safe_for_sshd(command: &str, report: &mut Report) {
    let Some(git2fa) = command.split_whitespace().next().map(PathBuf::from) else {
        return;
    };
    let mut unsafe_paths = Vec::new();
    // The command, and the shell it hands out, beside it.
    for path in [git2fa.clone(), git2fa.with_file_name("git2fa-shell")] {
        if !path.exists() {
            unsafe_paths.push(format!("{} is not there", path.display()));
            continue;
        }
        let mut at = Some(path.as_path());
        while let Some(p) = at {
            if let Ok(meta) = std::fs::metadata(p)
                && (meta.mode() & 0o022 != 0 || meta.uid() != 0)
            {
                let why = if meta.uid() != 0 {
                    "is not owned by root"
                } else {
                    "can be written by others than root"
                };
                let line = format!("{} {why}", p.display());
                if !unsafe_paths.contains(&line) {
                    unsafe_paths.push(line);
                }
            }
            at = p.parent();
        }
    }
    if unsafe_paths.is_empty() {
        report.ok("the git2fa binaries and their directories are root's alone");
    } else {
        report.problem(format!(
            "{}: sshd refuses such an AuthorizedKeysCommand, and whoever can write there can replace git2fa",
            unsafe_paths.join("; ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_forced_git2fa_shell_counts() {
        assert!(forced_through_git2fa_shell(
            r#"command="/usr/bin/git2fa-shell --key-id 1",restrict ssh-ed25519 AAAA"#
        ));
        assert!(forced_through_git2fa_shell(
            r#"restrict,command="/usr/bin/git2fa-shell --key-id 1" ssh-ed25519 AAAA x"#
        ));
        assert!(!forced_through_git2fa_shell(
            "ssh-ed25519 AAAA git2fa-shell"
        ));
        assert!(!forced_through_git2fa_shell(
            r#"command="/bin/sh" ssh-ed25519 AAAA git2fa-shell"#
        ));
        assert!(!forced_through_git2fa_shell(
            r#"restrict ssh-ed25519 AAAA command="git2fa-shell""#
        ));
    }
}
