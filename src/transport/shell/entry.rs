//! `git2fa-shell` as a program: its arguments, `SSH_ORIGINAL_COMMAND`,
//! and the git it starts once a `Connection` has decided.

use super::*;

/// What a shim prints when it panics: an `ERR` line for git, and words for
/// the user (the cause goes to the log).
pub fn refuse_after_panic() {
    let mut out = std::io::stdout();
    let _ = out.write_all(&err_pkt_line(
        "git2fa: internal error, so the operation was refused. Tell an admin of this host.",
    ));
    let _ = out.flush();
    eprintln!(
        "git2fa: internal error, so the operation was refused.\nTell an admin of this host; the cause is in their log."
    );
}

/// `SSH_ORIGINAL_COMMAND`: none is the greeting; one that is not UTF-8 is
/// refused.
pub fn original_command() -> String {
    match std::env::var_os("SSH_ORIGINAL_COMMAND").map(|c| c.into_string()) {
        None => String::new(),
        Some(Ok(command)) => command,
        Some(Err(_)) => "\u{fffd} (not UTF-8)".to_string(),
    }
}

/// Writes `lines` (a refusal) for the reader of `command_line`, on this
/// process's streams.
pub fn refuse_with(lines: &[String], command_line: &str) -> ExitCode {
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let mut io = Streams {
        stdin: &mut std::io::empty(),
        stdout: &mut stdout.lock(),
        stderr: &mut stderr.lock(),
    };
    write_refusal(&mut io, lines, Reader::of(command_line));
    ExitCode::from(1)
}

/// `git2fa-shell --key-id N --fingerprint SHA256:… [--config PATH]`, as
/// `authorized-keys` writes it, deciding here (`transport::shim` is the
/// small program that asks `git2fa serve` first).
pub fn main() -> ExitCode {
    crate::system::syslog::init("git2fa-shell");
    crate::system::syslog::refuse_on_panic(refuse_after_panic);
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdin = std::io::stdin();
    let (mut out, mut err, mut input) = (stdout.lock(), stderr.lock(), stdin.lock());
    let mut io = Streams {
        stdin: &mut input,
        stdout: &mut out,
        stderr: &mut err,
    };
    let command = original_command();
    let reader = Reader::of(&command);
    let refuse_unavailable = |io: &mut Streams, cause: String| {
        let lines = messages::check_unavailable(None, &cause);
        write_refusal(io, &lines, reader);
        ExitCode::from(1)
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(why) => return refuse_unavailable(&mut io, format!("git2fa-shell: {why}")),
    };
    let config = match Config::load(&Config::locate(
        args.config.as_deref().map(std::path::Path::new),
    )) {
        Ok(config) => config,
        Err(e) => return refuse_unavailable(&mut io, e.to_string()),
    };
    let connection = Connection {
        config: &config,
        key_id: args.key_id,
        fingerprint: args.fingerprint,
        hardware: args.hardware,
        remote_addr: identity::ssh_client_addr(std::env::var("SSH_CONNECTION").ok().as_deref()),
        git_protocol: std::env::var("GIT_PROTOCOL").ok(),
        // sshd does not say which client connected (its version string
        // stays in sshd): waits are for every client here.
        shows_stderr: true,
    };
    match connection.handle(&command, &mut io) {
        Action::Exit(code) => ExitCode::from(code),
        Action::Git(invocation) => {
            drop((out, err, input));
            let max = Duration::from_secs(config.policy.max_git_duration.max(1) as u64);
            run_git(&invocation, max, &command)
        }
    }
}

/// Runs git for an SSH command, stopping it after `max`.
///
/// Not exec: this process stays to stop git once the connection has run
/// for `max_git_duration`, so that a connection held open cannot outlive a
/// disable or a key's removal for long.
pub fn run_git(invocation: &GitInvocation, max: Duration, command_line: &str) -> ExitCode {
    crate::system::syslog::panic_point("shell-before-exec");
    let _ = std::io::stdout().flush();
    let on_timeout = move || {
        let message = format!(
            "\ngit2fa: this git connection ran for {}, the longest allowed here; it was closed. Run the command again.\n",
            format_duration(max.as_secs() as i64)
        );
        log::warn!(
            "stopped a git operation after {}",
            format_duration(max.as_secs() as i64)
        );
        // Not through a locked `stderr`: this runs on another thread.
        let _ = nix::unistd::write(std::io::stderr(), message.as_bytes());
    };
    match invocation.run_for_at_most(max, on_timeout) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let cause = format!("cannot start {}: {error}", invocation.git_bin.display());
            refuse_with(&messages::check_unavailable(None, &cause), command_line)
        }
    }
}

/// What `authorized-keys` wrote into the forced command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellArgs {
    pub config: Option<String>,
    pub key_id: i64,
    pub fingerprint: String,
    /// `--hardware verified|present`: what sshd was told to hold the
    /// key's signature to (`verify-required`; a touch, sshd's default).
    pub hardware: Option<Hardware>,
}

/// `--config PATH`, `--key-id N`, `--fingerprint SHA256:…`,
/// `--hardware verified|present`.
pub fn parse_args(args: &[String]) -> Result<ShellArgs, String> {
    let mut config = None;
    let mut key_id = None;
    let mut fingerprint = None;
    let mut hardware = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--config" => config = rest.next().cloned(),
            "--key-id" => key_id = rest.next().and_then(|v| v.parse().ok()),
            "--fingerprint" => {
                fingerprint = rest.next().filter(|v| v.starts_with("SHA256:")).cloned()
            }
            "--hardware" => {
                let word = rest.next().map(String::as_str).unwrap_or("");
                hardware = Some(
                    Hardware::parse(word)
                        .ok_or_else(|| format!("--hardware {word:?}: not verified or present"))?,
                );
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let key_id = key_id.ok_or("--key-id N is required")?;
    // A forced command written before fingerprints were bound: refused,
    // since the id alone may name another key by now.
    let fingerprint = fingerprint.ok_or(
        "--fingerprint SHA256:… is required (sshd's AuthorizedKeysCommand must run git2fa authorized-keys)",
    )?;
    Ok(ShellArgs {
        config,
        key_id,
        fingerprint,
        hardware,
    })
}
