//! What the admin commands share: their failure type and exit codes, the
//! store, the audit row, passwords read without echo.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::authz::decision::Transport;
use crate::authz::twofactor::Origin;
use crate::factor::crypto::{self};
use crate::repo;
use crate::repo::path::{RepoPath, RepoPathError};
use crate::store::{AuditRecord, Location, Store, User};
use crate::system::config::Config;
use crate::system::names::check_user_name;
use crate::system::time::{format_rfc3339, now};

/// Writes one piece of a command's output to stdout. A closed pipe
/// (`git2fa user list | head -1`) ends the command at once and quietly,
/// with the status a shell shows for a process SIGPIPE ended (128 + 13), as
/// `ls` or `git log` end; any other write error is said on stderr.
pub fn write_out(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        output_closed(&e);
    }
}

/// Ends the command after its output failed: see [`write_out`].
pub fn output_closed(e: &std::io::Error) -> ! {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("git2fa: cannot write the output: {e}");
    }
    std::process::exit(CLOSED_PIPE);
}

/// Says on stderr that a listing is empty, so that an empty stdout is not
/// taken for a command that failed silently; stdout stays empty for scripts.
pub fn nothing_to_list(what: &str) {
    eprintln!("git2fa: {what}");
}

/// "no tokens" or "no tokens of alice".
pub fn of_whom(nothing: &str, user: Option<&str>) -> String {
    match user {
        Some(name) => format!("{nothing} of {name}"),
        None => nothing.to_string(),
    }
}

/// The exit status of a command whose output was closed.
pub const CLOSED_PIPE: i32 = 141;

/// `println!` for command output: see [`write_out`].
macro_rules! say {
    () => { $crate::admin::support::write_out(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::admin::support::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for command output: see [`write_out`].
macro_rules! say_part {
    ($($arg:tt)*) => { $crate::admin::support::write_out(format_args!($($arg)*)) };
}

pub(crate) use {say, say_part};

/// What a command returns.
pub type CliResult = Result<(), Failure>;

/// A command that did not do what was asked, with the exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1: refused, or the thing named does not exist.
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit 2: bad input, configuration or store.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

macro_rules! exit_2_on {
    ($($error:ty),*) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Failure {
                Failure::usage(e.to_string())
            }
        }
    )*};
}

exit_2_on!(
    crate::system::files::FileError,
    crate::store::StoreError,
    crate::factor::crypto::CryptoError,
    crate::repo::path::RepoPathError,
    crate::serve::error::ServeError
);

impl From<crate::authz::twofactor::TwoFactorError> for Failure {
    fn from(e: crate::authz::twofactor::TwoFactorError) -> Failure {
        use crate::authz::twofactor::TwoFactorError;
        match e {
            TwoFactorError::AlreadyEnrolled | TwoFactorError::NotEnrolled => {
                Failure::refused(e.to_string())
            }
            other => Failure::usage(other.to_string()),
        }
    }
}

pub(super) fn open_store(config: &Config) -> Result<Store, Failure> {
    Ok(Store::connect_and_migrate(&Location::of(config))?)
}

pub(super) fn find_user(store: &Store, name: &str) -> Result<User, Failure> {
    check_user_name(name).map_err(Failure::usage)?;
    store
        .user(name)?
        .ok_or_else(|| Failure::refused(format!("no user named {name}")))
}

pub(super) fn cli_origin() -> Origin {
    Origin {
        transport: Transport::Cli,
        key_id: None,
        remote_addr: None,
    }
}

/// Who ran the command, for the audit row.
pub(super) fn operator() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => format!("by {} (uid {uid})", user.name),
        _ => format!("by uid {uid}"),
    }
}

/// The row of an admin's change: who ran the command is its detail.
pub(super) fn admin_record(
    user: Option<&str>,
    repo: Option<&str>,
    action: &str,
    reason: &str,
) -> AuditRecord {
    AuditRecord {
        at: now(),
        user: user.map(str::to_string),
        transport: Transport::Cli.as_str().into(),
        repo: repo.map(str::to_string),
        action: action.into(),
        outcome: "ok".into(),
        reason: reason.into(),
        detail: Some(operator()),
        ..AuditRecord::default()
    }
}

/// An admin's row for what is not a change of the store (a repository's
/// file, a store copied elsewhere), written after it.
pub(super) fn admin_audit(
    store: &mut Store,
    user: Option<&str>,
    repo: Option<&str>,
    action: &str,
    reason: &str,
) -> CliResult {
    store.append_audit(&admin_record(user, repo, action, reason))?;
    Ok(())
}

/// `change` to the store, committed with its audit row, or neither.
pub(super) fn admin_change<T>(
    store: &mut Store,
    record: AuditRecord,
    change: impl FnOnce(&mut Store) -> crate::store::Result<T>,
) -> Result<T, Failure> {
    Ok(store.audited(record, change)?)
}

pub(super) fn read_password(from_stdin: bool, required: bool) -> Result<Option<String>, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::usage(format!("stdin: {e}")))?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    } else if std::io::stdin().is_terminal() {
        let first = prompt_hidden("Password: ")?;
        let second = prompt_hidden("Again: ")?;
        if first != second {
            return Err(Failure::usage("the passwords differ"));
        }
        Some(first)
    } else if required {
        return Err(Failure::usage(
            "give the password on a terminal, or with --password-stdin",
        ));
    } else {
        None
    };
    match password {
        Some(p) if p.chars().count() < 8 => {
            Err(Failure::usage("a password needs at least 8 characters"))
        }
        Some(p) if p.len() > 1024 => Err(Failure::usage("a password may have at most 1024 bytes")),
        other => Ok(other),
    }
}

pub(super) fn prompt_hidden(prompt: &str) -> Result<String, Failure> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let fail = |e: nix::Error| Failure::usage(format!("cannot read from the terminal: {e}"));
    let saved = tcgetattr(&stdin).map_err(fail)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    eprint!("{prompt}");
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(fail)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    tcsetattr(&stdin, SetArg::TCSANOW, &saved).map_err(fail)?;
    eprintln!();
    read.map_err(|e| Failure::usage(format!("cannot read from the terminal: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// A one-time link where the user sets a password, valid 24 hours.
/// How long a link to set a password works.
pub(super) const PASSWORD_LINK_TTL: i64 = 86_400;

/// A new link to set a password: its address, and the hash the store
/// keeps (`Store::add_password_link`, `add_user_with`).
pub(super) fn new_password_link(config: &Config) -> Result<(String, [u8; 32]), Failure> {
    let secret: String = crypto::random_bytes::<24>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hash: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
    Ok((format!("{}/set-password/{secret}", config.public_url), hash))
}

/// "1 token", "2 tokens".
pub(super) fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

pub(super) fn io_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::usage(format!(
        "{}: {}",
        path.display(),
        crate::system::files::io_reason(e)
    ))
}

/// A binary installed beside this one.
pub(super) fn sibling(name: &str) -> Result<PathBuf, Failure> {
    let me =
        std::env::current_exe().map_err(|e| Failure::usage(format!("cannot find myself: {e}")))?;
    let dir = me
        .parent()
        .ok_or_else(|| Failure::usage("cannot find my directory"))?;
    Ok(dir.join(name))
}

pub(super) fn resolve_repo(config: &Config, typed: &str) -> Result<RepoPath, Failure> {
    repo::path::resolve(&config.repos_root, typed).map_err(|e| match e {
        RepoPathError::NotFound => Failure::refused(format!(
            "no bare repository {typed} under {}",
            config.repos_root.display()
        )),
        malformed => Failure::usage(malformed.to_string()),
    })
}

pub(super) fn token_line(token: &crate::store::Token, now: i64) -> String {
    let state = if token.revoked_at.is_some() {
        "revoked".to_string()
    } else if token.session_id.is_some() && token.session_until.is_none_or(|at| at <= now) {
        "ended-with-its-2fa-session".to_string()
    } else if token.expires_at.is_some_and(|at| at <= now) {
        "expired".to_string()
    } else {
        "active".to_string()
    };
    format!(
        "token #{} {} \"{}\" {} {} {}{}{} expires={} last-used={}",
        token.id,
        token.user,
        token.name,
        token.permission.as_str(),
        token.repos.join(","),
        state,
        if token.without_2fa {
            " without-2fa"
        } else {
            ""
        },
        if token.oauth_client.is_some() {
            " oauth"
        } else {
            ""
        },
        token.expires_at.map_or("never".into(), format_rfc3339),
        token.last_used_at.map_or("never".into(), format_rfc3339),
    )
}
