//! `git2fa-shell`, the SSH forced command: parse the command, decide, and
//! either hand back a git invocation to start or refuse. The streams are
//! parameters so that the embedded SSH server runs the same code on a
//! channel.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::authz::decision::{Credential, Hardware, Operation, Refusal, Transport};
use crate::authz::gate::{self, Named, Next, Request};
use crate::authz::messages::{self, MessageContext};
use crate::store::{AuditRecord, Location, SshKey, Store};
use crate::system::config::Config;
use crate::system::time::{format_duration, now};
use crate::transport::exec::GitInvocation;
use crate::transport::identity::{self, Identity};
use crate::transport::ssh_command::{self, GitService, SshCommand};

pub mod entry;
mod twofa;
pub mod verify_wait;

/// The streams of one SSH session.
pub struct Streams<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// What to do after a command was handled.
#[must_use]
#[derive(Debug)]
pub enum Action {
    Exit(u8),
    Git(GitInvocation),
}

/// One authenticated SSH connection.
pub struct Connection<'a> {
    pub config: &'a Config,
    pub key_id: i64,
    /// The fingerprint of the key that authenticated (`SHA256:…`). Every
    /// command checks that key `key_id` still has it: a connection held
    /// open outlives the key it logged in with, and must never turn into
    /// whoever owns that id later.
    pub fingerprint: String,
    pub remote_addr: Option<String>,
    /// The client's `GIT_PROTOCOL`, the one variable taken from it.
    pub git_protocol: Option<String>,
    /// Whether the client shows the user what the server writes on
    /// standard error while git waits. git's command line does (it runs
    /// OpenSSH or PuTTY); libgit2 and JGit show only the `ERR` line, so a
    /// command of theirs is refused at once, with the address to verify
    /// at, rather than held silent under `[policy] wait_for_verify`.
    pub shows_stderr: bool,
    /// What OpenSSH held this connection's security-key signature to, as
    /// the forced command says (`authorized-keys` wrote the matching
    /// `verify-required` option): never more than the key's mark when the
    /// command runs. `None` on the embedded server, which takes no
    /// security keys.
    pub hardware: Option<Hardware>,
}

/// Who reads a refusal: a git client (an `ERR` pkt-line on standard
/// output, which git prints as `fatal: remote error: …`, and the
/// explanation on standard error) or a person at a terminal (plain text on
/// standard error only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Git,
    Person,
}

impl Reader {
    fn of(command_line: &str) -> Reader {
        if ssh_command::is_git_command(command_line) {
            Reader::Git
        } else {
            Reader::Person
        }
    }
}

/// Writes a refusal for its reader. The explanation goes first, in one
/// write, so that its lines reach the terminal whole before git prints its
/// `fatal:` line.
fn write_refusal(io: &mut Streams, lines: &[String], reader: Reader) {
    let mut text = lines.join("\n");
    text.push('\n');
    let _ = io.stderr.write_all(text.as_bytes());
    let _ = io.stderr.flush();
    if reader == Reader::Git {
        let _ = io
            .stdout
            .write_all(&err_pkt_line(&messages::one_line(lines)));
        let _ = io.stdout.flush();
    }
}

/// A pkt-line carrying `ERR <message>` (gitprotocol-pack(5)): git prints it as
/// `fatal: remote error: <message>`.
pub fn err_pkt_line(message: &str) -> Vec<u8> {
    let message: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(1000)
        .collect();
    let body = format!("ERR {message}\n");
    format!("{:04x}{body}", body.len() + 4).into_bytes()
}

/// How far `Connection::begin` took a command.
#[must_use]
#[derive(Debug)]
pub enum Step {
    Done(Action),
    /// `2fa verify` has written its prompt and waits for a code: the
    /// caller reads a line (the embedded server without holding a thread)
    /// and hands it to `Connection::finish_verify`.
    AwaitCode(PendingVerify),
    /// A git command refused for now with `[policy] wait_for_verify` set:
    /// the user was told to verify. The caller waits (a server without
    /// holding a thread), asking `Connection::session_opened`, then calls
    /// `Connection::git_after_wait`.
    AwaitSession(PendingGit),
}

/// A git command waiting for its user's 2FA session.
#[derive(Debug, Clone)]
pub struct PendingGit {
    key: SshKey,
    service: GitService,
    typed: String,
    /// How long it may wait, from when it was refused.
    pub wait: Duration,
}

/// A `2fa verify` waiting for its code.
#[derive(Debug, Clone)]
pub struct PendingVerify {
    key: SshKey,
    /// For a user with security keys: the hash of the one-time link
    /// printed with the prompt. Opening it and touching a key completes
    /// the command as a code would.
    link: Option<[u8; 32]>,
}

impl PendingVerify {
    /// The user the prompt is for.
    pub fn user(&self) -> &str {
        &self.key.user
    }

    /// Whether a link was printed: then the caller also watches for it
    /// (`Connection::watch_link`) while it waits for a line, and ends it
    /// (`Connection::end_link`) when it stops waiting.
    pub fn has_link(&self) -> bool {
        self.link.is_some()
    }
}

/// How often a waiting `2fa verify` looks whether its link was used.
pub const LINK_POLL: Duration = Duration::from_secs(2);

impl From<Action> for Step {
    fn from(action: Action) -> Step {
        Step::Done(action)
    }
}

/// The longest line `2fa verify` reads as a code.
pub const MAX_CODE_LINE: usize = 256;

impl Connection<'_> {
    /// Handles `command_line` (`SSH_ORIGINAL_COMMAND`), reading a code
    /// from `io.stdin` when it is `2fa verify`.
    pub fn handle(&self, command_line: &str, io: &mut Streams) -> Action {
        match self.begin(command_line, io) {
            Step::Done(action) => action,
            Step::AwaitCode(pending) if pending.has_link() => self.await_code_or_link(pending, io),
            Step::AwaitCode(pending) => {
                let mut line = String::new();
                let read = io
                    .stdin
                    .take(MAX_CODE_LINE as u64)
                    .read_line(&mut line)
                    .is_ok();
                self.finish_verify(pending, read.then_some(line.as_str()), io)
            }
            Step::AwaitSession(pending) => {
                let deadline = std::time::Instant::now() + pending.wait;
                while std::time::Instant::now() < deadline {
                    std::thread::sleep(gate::WAIT_POLL);
                    if self.session_opened(&pending) {
                        break;
                    }
                }
                self.git_after_wait(pending, io)
            }
        }
    }

    /// Handles `command_line` up to the point where it would wait for
    /// input: everything but `2fa verify` is done here.
    pub fn begin(&self, command_line: &str, io: &mut Streams) -> Step {
        let reader = Reader::of(command_line);
        let mut store = match Store::connect(&Location::of(self.config)) {
            Ok(store) => store,
            Err(e) => return self.refuse_unavailable(io, &e.to_string(), reader).into(),
        };
        let key = match store.key(self.key_id) {
            Ok(Some(key)) if key.fingerprint == self.fingerprint => key,
            Ok(found) => {
                let why = match found {
                    Some(_) => {
                        "the key of this id is not the key this connection authenticated with"
                    }
                    None => "the key this connection authenticated with was removed",
                };
                log::warn!("SSH key #{}: {why}", self.key_id);
                let detail = format!(
                    "{why}: {}",
                    command_line.chars().take(150).collect::<String>()
                );
                self.audit_refusal(&mut store, None, None, "unknown-key", &detail);
                let refusal = Refusal::UnknownKey;
                return self
                    .refuse(io, &refusal, ("", None, &Operation::Read), reader)
                    .into();
            }
            Err(e) => return self.refuse_unavailable(io, &e.to_string(), reader).into(),
        };
        let command = match ssh_command::parse(command_line) {
            Ok(command) => command,
            Err(why) => {
                self.audit_refusal(
                    &mut store,
                    Some(&key),
                    None,
                    "disallowed-command",
                    command_line,
                );
                let try_help = match why {
                    ssh_command::Disallowed::UNKNOWN => {
                        format!(" (try: {})", self.config.ssh_hint("help"))
                    }
                    _ => String::new(),
                };
                let message = if why == ssh_command::Disallowed::LFS {
                    why.0.to_string()
                } else {
                    format!("git2fa: disallowed command: {}{try_help}", why.0)
                };
                return self.plain_refusal(io, &message, reader).into();
            }
        };
        // A disabled account's connection answers nothing more. (Git
        // commands learn it from the decision, with its own message.)
        if !matches!(command, SshCommand::Git { .. }) {
            match store.user(&key.user) {
                Ok(Some(user)) if user.enabled => {}
                Ok(_) => {
                    self.audit_refusal(&mut store, Some(&key), None, "user-disabled", command_line);
                    let message = format!("git2fa: the account {} is disabled", key.user);
                    return self.plain_refusal(io, &message, reader).into();
                }
                Err(e) => return self.refuse_unavailable(io, &e.to_string(), reader).into(),
            }
        }
        let action = match command {
            SshCommand::Greeting => {
                let _ = writeln!(
                    io.stdout,
                    "Hi {}! You are authenticated to git2fa with key #{}, but there is no shell access here.\n{}",
                    key.user,
                    key.id,
                    self.status_line(&store, &key)
                );
                Action::Exit(0)
            }
            SshCommand::Help => {
                let hint = |args: &str| self.config.ssh_hint(args);
                let _ = write!(
                    io.stdout,
                    "git2fa over SSH. Commands:\n  \
                     git clone/fetch/push   as usual\n  \
                     {}   open a 2FA session with a code (or: echo CODE | {})\n  \
                     {}   show your 2FA session\n  \
                     {}   end your 2FA sessions\n\
                     The web page: {}\n",
                    hint("2fa verify"),
                    hint("2fa verify"),
                    hint("2fa status"),
                    hint("2fa logout"),
                    crate::system::pages::verify_url(&self.config.public_url, None)
                );
                Action::Exit(0)
            }
            SshCommand::Status => {
                let _ = writeln!(io.stdout, "{}", self.status_line(&store, &key));
                Action::Exit(0)
            }
            SshCommand::Logout => self.logout(&mut store, &key, io),
            SshCommand::Verify => return self.verify_prompt(&mut store, key, io),
            SshCommand::Git { service, repo } => {
                return self.git(&mut store, &key, service, &repo, io, self.shows_stderr);
            }
        };
        Step::Done(action)
    }

    /// A git command: decided, audited, and refused or handed to git.
    /// With `may_wait`, a refusal that a verify fixes under `[policy]
    /// wait_for_verify` becomes `Step::AwaitSession`.
    fn git(
        &self,
        store: &mut Store,
        key: &SshKey,
        service: GitService,
        typed: &str,
        io: &mut Streams,
        may_wait: bool,
    ) -> Step {
        let named = match Named::resolve(&self.config.repos_root, typed) {
            Ok(named) => named,
            Err(why) => {
                self.audit_refusal(store, Some(key), Some(typed), "invalid-path", why);
                return self
                    .plain_refusal(
                        io,
                        &format!("git2fa: invalid repository path '{typed}': {why}"),
                        Reader::Git,
                    )
                    .into();
            }
        };
        let request = self.git_request(key, &named, service);
        let outcome = if may_wait {
            let authorized = gate::authorize_or_wait(self.config, store, &request, &mut |lines| {
                for line in lines {
                    let _ = writeln!(io.stderr, "{line}");
                }
                let _ = io.stderr.flush();
            });
            match authorized {
                gate::Authorized::Decided(outcome) => outcome,
                gate::Authorized::Wait(wait) => {
                    return Step::AwaitSession(PendingGit {
                        key: key.clone(),
                        service,
                        typed: typed.to_string(),
                        wait,
                    });
                }
            }
        } else {
            gate::authorize(self.config, store, &request, now())
        };
        let action = match named.next(&outcome.decision) {
            Next::Git(repo) => Action::Git(GitInvocation::ssh(
                self.config,
                service,
                &repo.dir,
                &Identity {
                    user: key.user.clone(),
                    transport: Transport::Ssh,
                    key_id: Some(key.id),
                    token_id: None,
                    remote_addr: self.remote_addr.clone(),
                    hardware: self.hardware_of(key),
                },
                self.git_protocol.as_deref(),
            )),
            Next::Refuse(refusal) => self.refuse(
                io,
                refusal,
                (named.target().name(), Some(&key.user), &request.operation),
                Reader::Git,
            ),
        };
        Step::Done(action)
    }

    fn git_request<'a>(
        &'a self,
        key: &'a SshKey,
        named: &'a Named,
        service: GitService,
    ) -> Request<'a> {
        Request {
            user: Some(&key.user),
            credential: Credential::SshKey {
                key_id: key.id,
                hardware: self.hardware_of(key),
            },
            repo: named.target(),
            operation: named.operation(service.is_write()),
            transport: Transport::Ssh,
            key_id: Some(key.id),
            remote_addr: self.remote_addr.as_deref(),
        }
    }

    /// What this connection's use of `key` proves: what OpenSSH enforced,
    /// no more than the key is marked now (a mark lowered or removed since
    /// `authorized-keys` wrote the line counts at once).
    pub fn hardware_of(&self, key: &SshKey) -> Option<Hardware> {
        self.hardware.min(key.hardware)
    }

    /// Whether the 2FA session a waiting git command needs is open now
    /// (reads only). Any failure says no: the wait goes on, and the
    /// decision after it refuses with the cause.
    pub fn session_opened(&self, pending: &PendingGit) -> bool {
        let Ok(store) = Store::connect(&Location::of(self.config)) else {
            return false;
        };
        let Ok(named) = Named::resolve(&self.config.repos_root, &pending.typed) else {
            return false;
        };
        let request = self.git_request(&pending.key, &named, pending.service);
        gate::allowed_now(self.config, &store, &request)
    }

    /// Whether the 2FA session that `command_line`, a git command, waits
    /// for is open now (serve's answer to a waiting shim's look).
    pub fn session_opened_for(&self, command_line: &str) -> bool {
        let Ok(store) = Store::connect(&Location::of(self.config)) else {
            return false;
        };
        let Ok(Some(key)) = store.key(self.key_id) else {
            return false;
        };
        let Ok(SshCommand::Git { service, repo }) = ssh_command::parse(command_line) else {
            return false;
        };
        key.fingerprint == self.fingerprint
            && self.session_opened(&PendingGit {
                key,
                service,
                typed: repo,
                wait: Duration::ZERO,
            })
    }

    /// The decision once a git command's wait ended (a session opened, or
    /// the time ran out): decided and audited again, without waiting.
    pub fn git_after_wait(&self, pending: PendingGit, io: &mut Streams) -> Action {
        let mut store = match Store::connect(&Location::of(self.config)) {
            Ok(store) => store,
            Err(e) => return self.refuse_unavailable(io, &e.to_string(), Reader::Git),
        };
        match self.git(
            &mut store,
            &pending.key,
            pending.service,
            &pending.typed,
            io,
            false,
        ) {
            Step::Done(action) => action,
            // Not asked to wait, it does not.
            Step::AwaitCode(_) | Step::AwaitSession(_) => Action::Exit(1),
        }
    }

    fn refuse(
        &self,
        io: &mut Streams,
        refusal: &Refusal,
        (repo, user, operation): (&str, Option<&str>, &Operation),
        reader: Reader,
    ) -> Action {
        let cx = message_context(self.config, repo, user, operation);
        write_refusal(io, &refusal.lines(&cx), reader);
        Action::Exit(1)
    }

    /// Audits a refusal made before the decision (a command or path that is
    /// not acceptable, an unknown key), within the bound per address
    /// (`Store::append_refusal`). Best effort: the refusal stands whether
    /// or not the row is written.
    fn audit_refusal(
        &self,
        store: &mut Store,
        key: Option<&SshKey>,
        repo: Option<&str>,
        reason: &str,
        detail: &str,
    ) {
        let detail = crate::domain::clipped(detail);
        let record = AuditRecord {
            at: now(),
            user: key.map(|k| k.user.clone()),
            transport: Transport::Ssh.as_str().into(),
            repo: repo.map(|r| r.chars().take(200).collect()),
            action: "ssh-command".into(),
            outcome: "refuse".into(),
            reason: reason.into(),
            credential: Some("key".into()),
            key_id: Some(self.key_id),
            remote_addr: self.remote_addr.clone(),
            detail: Some(detail),
            ..AuditRecord::default()
        };
        if let Err(e) = store.append_refusal(&record) {
            log::error!("cannot write the audit row of a refused command: {e}");
        }
    }

    fn plain_refusal(&self, io: &mut Streams, message: &str, reader: Reader) -> Action {
        write_refusal(io, &[message.to_string()], reader);
        Action::Exit(1)
    }

    fn refuse_unavailable(&self, io: &mut Streams, cause: &str, reader: Reader) -> Action {
        let lines = messages::check_unavailable(None, &cause);
        write_refusal(io, &lines, reader);
        Action::Exit(1)
    }
}

fn message_context<'a>(
    config: &'a Config,
    repo: &'a str,
    user: Option<&'a str>,
    operation: &'a Operation,
) -> MessageContext<'a> {
    MessageContext {
        config,
        repo,
        user,
        operation,
        transport: Transport::Ssh,
    }
}
