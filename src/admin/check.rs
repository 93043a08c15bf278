//! `git2fa check`: what breaks a host, or opens it. Each finding is `ok`,
//! a `problem` (the host refuses what it should allow, or allows what it
//! should refuse) or a `note` (worth knowing, nothing wrong). Reads only.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::factor::crypto::SecretKey;
use crate::repo;
use crate::repo::policy::RepoPolicy;
use crate::store::{Location, Store};
use crate::system::config::Config;

mod exposure;
mod report;
mod sshd;
mod web_servers;

use report::mode;
pub use report::{Level, Report};

/// What `check` looks at besides the config.
#[derive(Debug, Default)]
pub struct Options {
    /// The sshd configuration to read (`sshd -T -f`); `None`: sshd's own.
    pub sshd_config: Option<PathBuf>,
    /// nginx's main configuration file (`nginx -T -c`); `None`: nginx's own.
    pub nginx_config: Option<PathBuf>,
    /// Apache's main configuration file (`apache2 -f`); `None`: apache2ctl's.
    pub apache_config: Option<PathBuf>,
}

/// Runs every check.
pub fn run(config: &Config, options: &Options) -> Report {
    let mut report = Report::default();
    report.ok(format!("config {} is valid", config.path.display()));
    as_owner(config, || data_dir_and_store(config, &mut report));
    let account = git_account(config, &mut report);
    exposure::config_file(config, account.as_ref(), &mut report);
    exposure::trusted_remote_user(config, &mut report);
    git_bin(config, &mut report);
    let repos = repositories(config, &mut report);
    if let Some(account) = &account {
        exposure::repository_owners(&repos, account, &mut report);
        sshd::login_shell(account, &mut report);
        sshd::authorized_keys_files(account, &mut report);
        if let Some(command) =
            sshd::sshd(config, options.sshd_config.as_deref(), account, &mut report)
        {
            sshd::binaries_safe_for_sshd(&command, &mut report);
        }
    }
    daemon(config, &mut report);
    web_servers::nginx(config, options.nginx_config.as_deref(), &mut report);
    web_servers::apache(config, options.apache_config.as_deref(), &mut report);
    report
}

/// Runs `f` as `data_dir`'s owner when `check` runs as root: the files
/// SQLite makes beside the store (`-wal`, `-shm`) must be the owner's, or
/// the shims, running as the owner, could not write them afterwards.
fn as_owner<T>(config: &Config, f: impl FnOnce() -> T) -> T {
    use nix::unistd::{Gid, Uid, getegid, geteuid, setegid, seteuid};
    let owner = std::fs::metadata(&config.data_dir).ok();
    let (uid, gid) = match owner {
        Some(meta) if geteuid().is_root() && meta.uid() != 0 => (meta.uid(), meta.gid()),
        _ => return f(),
    };
    let (root_uid, root_gid) = (geteuid(), getegid());
    if setegid(Gid::from_raw(gid)).is_err() || seteuid(Uid::from_raw(uid)).is_err() {
        let _ = setegid(root_gid);
        return f();
    }
    let result = f();
    let _ = seteuid(root_uid);
    let _ = setegid(root_gid);
    result
}

fn data_dir_and_store(config: &Config, report: &mut Report) {
    match mode(&config.data_dir) {
        Ok(m) if m & 0o077 != 0 => report.problem(format!(
            "data_dir {} has mode {m:o}; run chmod 700",
            config.data_dir.display()
        )),
        Ok(_) => report.ok(format!("data_dir {} is private", config.data_dir.display())),
        Err(e) => report.problem(format!(
            "data_dir {}: {}",
            config.data_dir.display(),
            crate::system::files::io_reason(&e)
        )),
    }
    let location = Location::of(config);
    // The database `[store] url` names, reached by check itself: a running
    // serve may still use another (its url from before an edit).
    let store = match Store::connect_direct(&location) {
        Ok(store) => store,
        Err(e) => return report.problem(format!("store {location}: {e}")),
    };
    if let Location::Postgres { .. } = &location {
        check_postgres(report, config, &location, &store);
    }
    match store.integrity_problem() {
        Ok(None) if store.engine() == "SQLite" => {
            report.ok(format!("store {location} passes the integrity check"))
        }
        Ok(None) => report.ok(format!(
            "store {location} answers ({}, schema {})",
            store.engine(),
            store.latest()
        )),
        Ok(Some(problem)) => report.problem(format!("store integrity: {problem}")),
        Err(e) => report.problem(e.to_string()),
    }
    if let Location::Sqlite(store_path) = &location
        && mode(store_path).is_ok_and(|m| m & 0o077 != 0)
    {
        report.problem(format!(
            "store {} is readable by others; run chmod 600",
            store_path.display()
        ));
    }
    if let Location::Postgres { url, .. } = &location
        && let Some(warning) = crate::store::tls_warning(url)
    {
        report.problem(warning);
    }
    if let Location::Postgres {
        password_file: Some(file),
        ..
    } = &location
        && mode(file).is_ok_and(|m| m & 0o077 != 0)
    {
        report.problem(format!(
            "[store] password_file {} is readable by others; run chmod 600",
            file.display()
        ));
    }
    let key_path = config.secret_key_path();
    let key = match SecretKey::load(&key_path) {
        Ok(key) => key,
        Err(e) => return report.problem(e.to_string()),
    };
    match store.key_fingerprint() {
        Ok(Some(recorded)) if recorded == key.fingerprint() => report.ok(format!(
            "secret.key is the key the store records ({recorded})"
        )),
        Ok(Some(recorded)) => report.problem(super::init::key_mismatch(&key_path, &key, &recorded)),
        Ok(None) => report.ok(format!(
            "the store records no secret.key fingerprint yet (`git2fa init` records {})",
            key.fingerprint()
        )),
        Err(e) => report.problem(e.to_string()),
    }
    let users = match store.users() {
        Ok(users) => users,
        Err(e) => return report.problem(e.to_string()),
    };
    let broken: Vec<_> = users
        .iter()
        .filter(|u| u.has_totp() && crate::authz::twofactor::open_secret(&key, u).is_err())
        .map(|u| u.name.clone())
        .collect();
    if broken.is_empty() {
        report.ok("secret.key opens every enrolled user's secret");
    } else {
        report.problem(format!(
            "secret.key does not open the TOTP secret of {}",
            broken.join(", ")
        ));
    }
    // Keys are bound to public_url's host: with one that cannot be a
    // relying party, users who have keys verify with a code only.
    let with_keys: Vec<_> = users
        .iter()
        .filter(|u| u.security_keys > 0)
        .map(|u| u.name.clone())
        .collect();
    match crate::factor::webauthn::unavailable_reason(&config.public_url) {
        Some(why) if !with_keys.is_empty() => report.problem(format!(
            "{} registered security keys, which do not work here: {why}",
            with_keys.join(", ")
        )),
        _ => {}
    }
}

/// The account the shims and hooks must run as: the owner of `data_dir`.
/// The store, `secret.key` and the repositories must be its too, or the
/// shims (which run as that account) cannot read or write them, whoever
/// runs `check`.
fn git_account(config: &Config, report: &mut Report) -> Option<nix::unistd::User> {
    let owner = std::fs::metadata(&config.data_dir).ok()?.uid();
    // A root-owned data_dir beside a store or repositories of another
    // account: the admin made data_dir as root. The fix is to give it to
    // that account, not to give everything to root.
    if owner == 0
        && let Some(meant) = [config.store_path(), config.repos_root.clone()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.uid())
            .find(|&uid| uid != 0)
            .and_then(|uid| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
            })
    {
        report.problem(format!(
            "data_dir {} belongs to root, the store or repositories to {m}; git2fa runs as the account that owns data_dir; run chown -R {m}:{m} {} {}",
            config.data_dir.display(),
            config.data_dir.display(),
            config.repos_root.display(),
            m = meant.name
        ));
        return None;
    }
    let account = match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner)) {
        Ok(Some(account)) => account,
        _ => {
            report.problem(format!(
                "data_dir {} belongs to uid {owner}, which has no account",
                config.data_dir.display()
            ));
            return None;
        }
    };
    let mut wrong = Vec::new();
    for path in [
        config.store_path(),
        config.secret_key_path(),
        config.repos_root.clone(),
    ] {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.uid() != owner => {
                let other = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
                    .ok()
                    .flatten()
                    .map_or(format!("uid {}", meta.uid()), |u| u.name);
                wrong.push(format!("{} belongs to {other}", path.display()));
            }
            _ => {}
        }
    }
    if wrong.is_empty() {
        report.ok(format!(
            "data_dir, the store, secret.key and repos_root belong to {}, the account git2fa runs as",
            account.name
        ));
    } else {
        report.problem(format!(
            "{}, not to {} (the owner of data_dir, as whom the shims run); run chown -R {} on them",
            wrong.join("; "),
            account.name,
            account.name
        ));
    }
    Some(account)
}

fn git_bin(config: &Config, report: &mut Report) {
    use nix::unistd::{AccessFlags, access};
    let bin = &config.git_bin;
    if bin.is_file() && access(bin, AccessFlags::X_OK).is_ok() {
        report.ok(format!("git_bin {} can be run", bin.display()));
    } else {
        report.problem(format!(
            "git_bin {} is not an executable file: every git operation fails (Debian package: git)",
            bin.display()
        ));
    }
}

/// The repositories under `repos_root`, after checking their policies
/// and hooks.
fn repositories(config: &Config, report: &mut Report) -> Vec<PathBuf> {
    let repos = match repo::path::find_all(&config.repos_root) {
        Ok(repos) => repos,
        Err(e) => {
            report.problem(format!(
                "repos_root {}: {}",
                config.repos_root.display(),
                crate::system::files::io_reason(&e)
            ));
            return Vec::new();
        }
    };
    let mut bad = 0;
    for dir in &repos {
        if let Err(e) = RepoPolicy::load(dir) {
            report.problem(e.to_string());
            bad += 1;
        }
    }
    report.ok(format!(
        "{} of {} repositories under {} have a valid policy",
        repos.len() - bad,
        repos.len(),
        config.repos_root.display()
    ));
    let mut missing = 0;
    for repo in &repos {
        if !crate::repo::hooks::hooks_installed(repo) {
            missing += 1;
            report.problem(format!(
                "{} lacks the git2fa hooks (run: git2fa install-hooks {})",
                repo.display(),
                config.repos_root.display()
            ));
            continue;
        }
        // One line a repository: its stubs are written together.
        let broken: Vec<String> = crate::repo::hooks::HOOKS
            .iter()
            .filter_map(|(name, _)| {
                broken_stub(&repo.join("hooks").join(name)).map(|why| format!("{name} {why}"))
            })
            .collect();
        if !broken.is_empty() {
            missing += 1;
            report.problem(format!(
                "the git2fa hooks of {}: {}; every push fails (run: git2fa install-hooks {})",
                repo.display(),
                broken.join(", "),
                config.repos_root.display()
            ));
        }
    }
    if missing == 0 {
        report.ok("every repository has the git2fa hooks, and they can run");
    }
    repos
}

/// Why our stub at `path` cannot work: the binary or config it names is
/// gone. `None` when both are there.
fn broken_stub(path: &Path) -> Option<String> {
    use nix::unistd::{AccessFlags, access};
    let text = std::fs::read_to_string(path).ok()?;
    let exec = text.lines().find(|l| l.starts_with("exec '"))?;
    let quoted: Vec<String> = single_quoted(exec);
    let (bin, config) = (quoted.first()?, quoted.get(1)?);
    let bin = Path::new(bin);
    if !(bin.is_file() && access(bin, AccessFlags::X_OK).is_ok()) {
        return Some(format!("runs {}, which is not there", bin.display()));
    }
    if !Path::new(config).is_file() {
        return Some(format!("names the config {config}, which is not there"));
    }
    None
}

/// The words of a `sh` line written in single quotes (`'\''` inside).
fn single_quoted(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (&mut current, c) {
            (None, '\'') => current = Some(String::new()),
            (Some(word), '\'') => {
                // `'\''` continues the word with a quote.
                if chars.peek() == Some(&'\\') {
                    chars.next();
                    chars.next();
                    chars.next();
                    word.push('\'');
                } else {
                    words.extend(current.take());
                }
            }
            (Some(word), c) => word.push(c),
            (None, _) => {}
        }
    }
    words
}

/// The hook socket of Unix-account hosts: it must answer, and the mode
/// stops mistakes, not a user set on bypassing the hooks.
fn daemon(config: &Config, report: &mut Report) {
    let Some(socket) = &config.daemon.socket else {
        return;
    };
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => report.ok(format!("git2fa serve answers hooks on {}", socket.display())),
        Err(e) => report.problem(format!(
            "nothing answers on [daemon] socket {} ({e}): every push by a Unix account is refused; start git2fa serve",
            socket.display()
        )),
    }
    report.note(
        "[daemon] socket is set: pushes by Unix accounts are checked by hooks, which a user who can write a repository can skip; this mode stops mistakes, not a user set on bypassing it (docs/security.md)",
    );
}

/// PostgreSQL: the timeouts are in force in a transaction (through a
/// pooler too), and a serve answering on this host's store socket uses the
/// database `[store] url` names.
fn check_postgres(report: &mut Report, config: &Config, location: &Location, direct: &Store) {
    use crate::store::Serve;
    // As PostgreSQL shows a duration: "5s", "1min".
    let seconds = config.store.timeout;
    let want = if seconds % 60 == 0 {
        format!("{}min", seconds / 60)
    } else {
        format!("{seconds}s")
    };
    match direct.transaction_timeouts() {
        Ok(Some((statement, lock))) if statement == want && lock == want => report.ok(format!(
            "PostgreSQL keeps git2fa's timeouts in a transaction (statement_timeout and lock_timeout {want})"
        )),
        Ok(Some((statement, lock))) => report.problem(format!(
            "PostgreSQL's timeouts in a transaction are statement_timeout {statement} and lock_timeout {lock}, not [store] timeout ({want}): the url's `options` set others, or something between changes them"
        )),
        Ok(None) => {}
        Err(e) => report.problem(format!("PostgreSQL's timeouts cannot be read: {e}")),
    }
    match Store::serve_at(location) {
        Ok(Serve::Same) => {
            report.ok("git2fa serve on this host uses the database [store] url names")
        }
        Ok(Serve::Other) => report.problem(
            "git2fa serve on this host uses another database than [store] url names (its url is from before the config changed): restart it (systemctl restart git2fa); until then this host's shims connect to the new one themselves"
                .to_string(),
        ),
        Ok(Serve::Absent) => {}
        Err(e) => report.problem(format!("git2fa serve's store socket: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_quoted_words() {
        assert_eq!(
            single_quoted(
                r#"exec '/usr/bin/git2fa-hook' --config '/etc/it'\''s.toml' update "$@""#
            ),
            vec!["/usr/bin/git2fa-hook", "/etc/it's.toml"]
        );
    }
}
