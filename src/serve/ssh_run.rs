//! One command on one channel of serve's SSH server: its steps run through
//! `shell::Connection` on the blocking pool; waiting (for a 2FA session,
//! for a `2fa verify` code or its link) holds no thread; git runs with the
//! channel as its streams.

use std::sync::Arc;
use std::time::Duration;

use russh::ChannelId;
use russh::server::Handle;

use super::operations::Slots;
use super::ssh_channel::{ChannelInput, ChannelOutput, git_on_channel};
use crate::authz::{gate, messages};
use crate::system::config::Config;
use crate::transport::exec::GitInvocation;
use crate::transport::shell::verify_wait::{self, Next, VerifyWait};
use crate::transport::shell::{
    Action, Connection, MAX_CODE_LINE, PendingGit, PendingVerify, Step, Streams, err_pkt_line,
};

/// How long `2fa verify` waits for its code.
const INPUT_TIMEOUT: Duration = Duration::from_secs(300);
/// `2fa verify` prompts waiting for a code, per user, at most.
const MAX_PROMPTS_PER_USER: usize = 4;

/// One command on one channel.
pub(super) struct Run {
    pub(super) config: Arc<Config>,
    pub(super) key_id: i64,
    pub(super) fingerprint: String,
    pub(super) remote_addr: Option<String>,
    pub(super) git_protocol: Option<String>,
    pub(super) shows_stderr: bool,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) handle: Handle,
    pub(super) channel: ChannelId,
}

impl Run {
    /// The command's steps that touch the store or git run on the blocking
    /// pool; waiting for a `2fa verify` code holds no thread.
    pub(super) async fn run(
        self,
        command: String,
        mut input: ChannelInput,
        prompts: Slots<String>,
    ) {
        let run = Arc::new(self);
        let begun = {
            let run = run.clone();
            tokio::task::spawn_blocking(move || {
                run.with_streams(&mut std::io::empty(), |connection, io| {
                    connection.begin(&command, io)
                })
            })
            .await
        };
        let action = match begun {
            Err(e) => {
                log::error!("SSH command: {e}");
                Action::Exit(1)
            }
            Ok(Step::Done(action)) => action,
            Ok(Step::AwaitSession(pending)) => run.clone().await_session(pending, &mut input).await,
            Ok(Step::AwaitCode(pending)) => {
                // A few prompts per user: more would only be someone
                // holding the server's memory.
                let line = match prompts.take(pending.user().to_string(), MAX_PROMPTS_PER_USER) {
                    Some(_prompt) if pending.has_link() => {
                        let mut gone = input.gone.take();
                        match run
                            .clone()
                            .await_line_or_link(&mut input, &mut gone, &pending)
                            .await
                        {
                            Ok(action) => Err(action),
                            Err(line) => Ok(line),
                        }
                    }
                    Some(_prompt) => Ok(input.read_line(MAX_CODE_LINE, INPUT_TIMEOUT).await),
                    None => Ok(Err(format!(
                        "{MAX_PROMPTS_PER_USER} `2fa verify` prompts of {} are waiting for a code already; \
                         answer one of them, or close it, first",
                        pending.user()
                    ))),
                };
                let run = run.clone();
                tokio::task::spawn_blocking(move || {
                    run.with_streams(&mut std::io::empty(), |connection, io| {
                        let action = match line {
                            // The link was used, or looking for it failed.
                            Err(action) => action,
                            Ok(Ok(line)) => {
                                connection.finish_verify(pending.clone(), line.as_deref(), io)
                            }
                            Ok(Err(why)) => {
                                let _ = writeln!(io.stderr, "\ngit2fa: {why}");
                                Action::Exit(1)
                            }
                        };
                        // Whatever ended the wait, the link completes
                        // nothing from now on.
                        connection.end_link(&pending);
                        action
                    })
                })
                .await
                .unwrap_or(Action::Exit(1))
            }
        };
        run.finish(action, input).await;
    }

    /// Runs what the command came to, and closes the channel with its
    /// exit status.
    async fn finish(self: Arc<Self>, action: Action, input: ChannelInput) {
        let code = match action {
            Action::Exit(code) => u32::from(code),
            Action::Git(invocation) => self.git(&invocation, input).await,
        };
        let _ = self.handle.exit_status_request(self.channel, code).await;
        let _ = self.handle.eof(self.channel).await;
        let _ = self.handle.close(self.channel).await;
    }

    /// `[policy] wait_for_verify` on the embedded server: the git command
    /// waits for its user's session holding no thread (a look at the
    /// store on the blocking pool every `WAIT_POLL`), until the session
    /// opens, the wait ends or the client leaves; then it is decided once
    /// more.
    async fn await_session(
        self: Arc<Self>,
        pending: PendingGit,
        input: &mut ChannelInput,
    ) -> Action {
        let deadline = tokio::time::Instant::now() + pending.wait;
        loop {
            let gone = &mut input.gone;
            tokio::select! {
                () = tokio::time::sleep(gate::WAIT_POLL) => {}
                // The client left: no decision, no git.
                _ = async { if let Some(gone) = gone.as_mut() { let _ = gone.await; } }, if gone.is_some() => {
                    return Action::Exit(1);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            let run = self.clone();
            let pending = pending.clone();
            let opened = tokio::task::spawn_blocking(move || {
                run.with_streams(&mut std::io::empty(), |connection, _| {
                    connection.session_opened(&pending)
                })
            })
            .await
            .unwrap_or(false);
            if opened {
                break;
            }
        }
        tokio::task::spawn_blocking(move || {
            self.with_streams(&mut std::io::empty(), |connection, io| {
                connection.git_after_wait(pending, io)
            })
        })
        .await
        .unwrap_or(Action::Exit(1))
    }

    /// Waits for a code line, or for the one-time link printed with the
    /// prompt to be used, by the rules of `VerifyWait`: `Ok` when the link
    /// completed the command (or looking for it failed), `Err(line)` when a
    /// line came (or the input ended or timed out).
    async fn await_line_or_link(
        self: Arc<Self>,
        input: &mut ChannelInput,
        gone: &mut Option<tokio::sync::oneshot::Receiver<()>>,
        pending: &PendingVerify,
    ) -> Result<Action, Result<Option<String>, String>> {
        let mut wait = VerifyWait::new(std::time::Instant::now());
        let mut failures = 0;
        loop {
            match wait.next(std::time::Instant::now()) {
                Next::LookAtLink => {
                    let (used, now_failures) = self.clone().watch_link(pending, failures).await;
                    failures = now_failures;
                    if let Some(action) = used {
                        return Ok(action);
                    }
                }
                Next::TooLate => return Err(Err(verify_wait::TOO_LATE.into())),
                Next::Line(line) => {
                    let (used, _) = self.clone().watch_link(pending, failures).await;
                    return match used {
                        Some(action) => Ok(action),
                        None => Err(Ok(Some(line))),
                    };
                }
                Next::Wait(time) => {
                    let open = wait.input_open();
                    tokio::select! {
                        chunk = input.read_chunk(), if open => match chunk {
                            Some(bytes) => wait.input(&bytes),
                            None => wait.input_ended(),
                        },
                        // The client left (Ctrl-C): stop waiting, so that
                        // the link is ended at once.
                        _ = async { if let Some(gone) = gone.as_mut() { let _ = gone.await; } }, if gone.is_some() => {
                            *gone = None;
                            return Err(Err("the client left".into()));
                        }
                        () = tokio::time::sleep(time) => {}
                    }
                }
            }
        }
    }

    /// One look at the store for the link's use, on the blocking pool.
    async fn watch_link(
        self: Arc<Self>,
        pending: &PendingVerify,
        failures: u32,
    ) -> (Option<Action>, u32) {
        let pending = pending.clone();
        tokio::task::spawn_blocking(move || {
            let mut failures = failures;
            let used = self.with_streams(&mut std::io::empty(), |connection, io| {
                connection.watch_link(&pending, &mut failures, io)
            });
            (used, failures)
        })
        .await
        .unwrap_or((Some(Action::Exit(1)), failures))
    }

    /// Calls `f` with the shell's connection and the channel's streams.
    fn with_streams<T>(
        &self,
        stdin: &mut dyn std::io::BufRead,
        f: impl FnOnce(&Connection, &mut Streams) -> T,
    ) -> T {
        let mut stdout = self.output(None);
        let mut stderr = self.output(Some(1));
        let connection = Connection {
            config: &self.config,
            key_id: self.key_id,
            fingerprint: self.fingerprint.clone(),
            remote_addr: self.remote_addr.clone(),
            git_protocol: self.git_protocol.clone(),
            shows_stderr: self.shows_stderr,
            // This server takes no security keys (`serve::ssh`).
            hardware: None,
        };
        let mut io = Streams {
            stdin,
            stdout: &mut stdout,
            stderr: &mut stderr,
        };
        f(&connection, &mut io)
    }

    /// Runs git on the channel, holding no thread; its exit code.
    async fn git(&self, invocation: &GitInvocation, input: ChannelInput) -> u32 {
        let max = self.config.policy.max_git_duration;
        match git_on_channel(invocation, input, (self.handle.clone(), self.channel), max).await {
            Ok(code) => code,
            Err(e) => {
                let cause = format!("cannot start {}: {e}", invocation.git_bin.display());
                let lines = messages::check_unavailable(None, &cause);
                let _ = self
                    .handle
                    .data(self.channel, err_pkt_line(&messages::one_line(&lines)))
                    .await;
                1
            }
        }
    }

    fn output(&self, ext: Option<u32>) -> ChannelOutput {
        ChannelOutput {
            runtime: self.runtime.clone(),
            handle: self.handle.clone(),
            channel: self.channel,
            ext,
        }
    }
}
