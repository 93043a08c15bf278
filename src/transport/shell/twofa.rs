//! The `2fa` commands of the SSH shell: `2fa` (status), `2fa logout` and
//! `2fa verify`, which reads a code and opens a 2FA session.

use super::verify_wait::{self, Next, VerifyWait};
use super::{Action, Connection, PendingVerify, Step, Streams};
use crate::authz::decision::{self, Transport};
use crate::authz::messages;
use crate::authz::twofactor::{self, Origin, Verified};
use crate::factor::crypto::SecretKey;
use crate::factor::webauthn;
use crate::store::{AuditRecord, Location, SshKey, Store, VerifyLink};
use crate::system::time::{format_duration, format_utc, now};

impl Connection<'_> {
    pub(super) fn status_line(&self, store: &Store, key: &SshKey) -> String {
        let t = now();
        let user = match store.user(&key.user) {
            Ok(Some(user)) => user,
            _ => return "git2fa: 2FA status unavailable".into(),
        };
        if !user.is_enrolled() {
            return format!(
                "{}: 2FA is not set up; set it up at {}",
                user.name,
                crate::system::pages::setup_url(&self.config.public_url)
            );
        }
        let sessions = store.open_sessions(user.id, t).unwrap_or_default();
        let usable = sessions.iter().find(|s| {
            decision::session_matches(
                self.config.policy.bind_session,
                s,
                Some(key.id),
                self.remote_addr.as_deref(),
                t,
            )
        });
        match usable {
            Some(s) => format!(
                "{}: 2FA session #{} open until {}",
                user.name,
                s.id,
                format_utc(s.expires_at)
            ),
            None => format!(
                "{}: no open 2FA session; verify at {} or with: {}",
                user.name,
                crate::system::pages::verify_url(&self.config.public_url, None),
                self.config.ssh_hint("2fa verify")
            ),
        }
    }

    pub(super) fn logout(&self, store: &mut Store, key: &SshKey, io: &mut Streams) -> Action {
        let t = now();
        let record = AuditRecord {
            at: t,
            user: Some(key.user.clone()),
            transport: Transport::Ssh.as_str().into(),
            action: "logout".into(),
            outcome: "ok".into(),
            reason: "2fa logout".into(),
            key_id: Some(key.id),
            remote_addr: self.remote_addr.clone(),
            ..AuditRecord::default()
        };
        // The sessions end with their row ("N ended"), or neither happens.
        let ended = store.user(&key.user).and_then(|user| match user {
            Some(user) => store.audited(record, |store| store.end_sessions_of(user.id, t)),
            None => Ok(0),
        });
        match ended {
            Ok(n) => {
                let _ = writeln!(
                    io.stdout,
                    "git2fa: ended {n} 2FA session{} of {}",
                    if n == 1 { "" } else { "s" },
                    key.user
                );
                Action::Exit(0)
            }
            Err(e) => {
                log::error!("2fa logout: {e}");
                let _ = writeln!(io.stderr, "git2fa: {}", messages::UNAVAILABLE);
                Action::Exit(1)
            }
        }
    }

    /// Checks that the user may verify, then prompts for a code. A user
    /// with security keys also gets a one-time link: opening it and
    /// touching a key completes this command as a code would.
    pub(super) fn verify_prompt(&self, store: &mut Store, key: SshKey, io: &mut Streams) -> Step {
        let user = match self.verifiable_user(store, &key, io) {
            Ok(user) => user,
            Err(action) => return action.into(),
        };
        let mut link = None;
        if user.security_keys > 0 {
            match webauthn::unavailable_reason(&self.config.public_url) {
                Some(why) => {
                    let _ = writeln!(
                        io.stderr,
                        "git2fa: your security keys cannot be used on this host: {why}."
                    );
                }
                None => match self.new_link(store, &user, &key, io) {
                    Ok(made) => link = made,
                    Err(action) => return action.into(),
                },
            }
        }
        if let Some((_, url)) = &link {
            let _ = writeln!(
                io.stderr,
                "git2fa: to verify with your security key, open this link, log in, and touch the key \
                 (the link works once, for {}):\n  {url}",
                format_duration(webauthn::LINK_TTL)
            );
        }
        let codes = self.config.policy.recovery_codes > 0;
        let prompt = match (user.has_totp(), link.is_some(), codes) {
            (true, false, _) => "Code from your authenticator app (or a recovery code): ",
            (true, true, _) => "Or type a code from your authenticator app (or a recovery code): ",
            (false, true, true) => "Or type a recovery code: ",
            (false, true, false) => "Waiting for the link to be used (Ctrl-C to stop)... ",
            (false, false, true) => "Recovery code: ",
            (false, false, false) => {
                return verify_failed(
                    io,
                    &format!(
                        "{} has security keys alone, and they cannot be used here; ask an admin",
                        user.name
                    ),
                )
                .into();
            }
        };
        let _ = write!(io.stderr, "{prompt}");
        let _ = io.stderr.flush();
        Step::AwaitCode(PendingVerify {
            key,
            link: link.map(|(hash, _)| hash),
        })
    }

    /// A new one-time verify link for `user`, bound to this connection's
    /// key and address: its hash and its URL; `None` (and a line saying
    /// so) when the user has too many waiting.
    fn new_link(
        &self,
        store: &mut Store,
        user: &crate::store::User,
        key: &SshKey,
        io: &mut Streams,
    ) -> Result<Option<([u8; 32], String)>, Action> {
        let t = now();
        let made = webauthn::new_link_token()
            .map_err(|e| e.to_string())
            .and_then(|token| {
                let hash = webauthn::link_hash(&token);
                let link = VerifyLink {
                    user_id: user.id,
                    key_id: Some(key.id),
                    remote_addr: self.remote_addr.clone(),
                    expires_at: t + webauthn::LINK_TTL,
                };
                let added = store
                    .add_verify_link(&hash, &link, MAX_LINKS_PER_USER, t)
                    .map_err(|e| e.to_string())?;
                let url = format!("{}/2fa/verify?link={token}", self.config.public_url);
                Ok(added.then_some((hash, url)))
            });
        match made {
            Ok(Some(made)) => Ok(Some(made)),
            // Too many waiting (commands a terminal's hang-up killed before
            // they could end theirs, say): a code still works.
            Ok(None) => {
                let _ = writeln!(
                    io.stderr,
                    "git2fa: {MAX_LINKS_PER_USER} verify links of {} are waiting already, so none is printed; \
                     use one of them, or wait a few minutes.",
                    user.name
                );
                Ok(None)
            }
            Err(e) => {
                log::error!("2fa verify: {e}");
                Err(verify_failed(io, messages::UNAVAILABLE))
            }
        }
    }

    /// Looks, on a store opened afresh, whether the link of a waiting
    /// `2fa verify` was used: then the command is done, and says so. After
    /// a few failed looks in a row the store counts as unavailable, and
    /// the command ends with that.
    pub fn watch_link(
        &self,
        pending: &PendingVerify,
        failures: &mut u32,
        io: &mut Streams,
    ) -> Option<Action> {
        let hash = pending.link?;
        let looked = Store::connect(&Location::of(self.config))
            .and_then(|store| store.verify_link_session(&hash));
        match looked {
            Ok(Some(expires_at)) => {
                let _ = writeln!(io.stderr);
                let _ = writeln!(
                    io.stdout,
                    "git2fa: 2FA session open until {} ({}), verified with your security key. Git operations{} now work.",
                    format_utc(expires_at),
                    format_duration(self.config.policy.session_ttl),
                    self.scope(&pending.key)
                );
                Some(Action::Exit(0))
            }
            Ok(None) => {
                *failures = 0;
                None
            }
            Err(e) => {
                log::warn!("2fa verify: looking for the link's use: {e}");
                *failures += 1;
                (*failures >= LINK_LOOKS_BEFORE_UNAVAILABLE).then(|| {
                    let _ = writeln!(io.stderr);
                    verify_failed(io, messages::UNAVAILABLE)
                })
            }
        }
    }

    /// Ends the link of a `2fa verify` that is no longer waiting (a code
    /// was typed, the wait ran out, the client left): nothing may complete
    /// it afterwards. A used link stays as it is.
    pub fn end_link(&self, pending: &PendingVerify) {
        let Some(hash) = pending.link else { return };
        let ended = Store::connect(&Location::of(self.config))
            .and_then(|mut store| store.end_verify_link(&hash, now()));
        if let Err(e) = ended {
            log::warn!("2fa verify: ending the link: {e}");
        }
    }

    /// What a session opened from this connection is good for.
    fn scope(&self, key: &SshKey) -> String {
        match self.config.policy.bind_session {
            crate::system::config::BindSession::User => String::new(),
            crate::system::config::BindSession::Key => format!(" with key #{}", key.id),
            crate::system::config::BindSession::Ip => " from this address".into(),
        }
    }

    /// Waits for a code line on standard input (fd 0, read here without
    /// blocking, so that the link is looked at on time) or for the link's
    /// use, by the rules of `VerifyWait`.
    pub(super) fn await_code_or_link(&self, pending: PendingVerify, io: &mut Streams) -> Action {
        let action = self.await_code_or_link_inner(&pending, io);
        self.end_link(&pending);
        action
    }

    fn await_code_or_link_inner(&self, pending: &PendingVerify, io: &mut Streams) -> Action {
        use std::os::fd::AsFd;
        use std::time::Instant;
        let stdin = std::io::stdin();
        let mut wait = VerifyWait::new(Instant::now());
        let mut failures = 0;
        loop {
            match wait.next(Instant::now()) {
                Next::LookAtLink => {
                    if let Some(action) = self.watch_link(pending, &mut failures, io) {
                        return action;
                    }
                }
                Next::TooLate => {
                    let _ = writeln!(io.stderr);
                    return verify_failed(io, verify_wait::TOO_LATE);
                }
                Next::Line(line) => {
                    if let Some(action) = self.watch_link(pending, &mut failures, io) {
                        return action;
                    }
                    return self.finish_verify(pending.clone(), Some(&line), io);
                }
                Next::Wait(time) if !wait.input_open() => {
                    if client_gone() {
                        return Action::Exit(1);
                    }
                    std::thread::sleep(time);
                }
                Next::Wait(time) => {
                    let mut fds = [nix::poll::PollFd::new(
                        stdin.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    let timeout = nix::poll::PollTimeout::try_from(time)
                        .unwrap_or(nix::poll::PollTimeout::NONE);
                    match nix::poll::poll(&mut fds, timeout) {
                        Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                        Ok(_) => {}
                        Err(e) => {
                            log::error!("2fa verify: waiting for input: {e}");
                            wait.input_ended();
                            continue;
                        }
                    }
                    let mut chunk = [0u8; 256];
                    match nix::unistd::read(stdin.as_fd(), &mut chunk) {
                        Ok(0) => wait.input_ended(),
                        Ok(n) => wait.input(&chunk[..n]),
                        Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                        Err(_) => wait.input_ended(),
                    }
                }
            }
        }
    }

    /// The user of `key`, if enabled and enrolled; else the refusal.
    pub(super) fn verifiable_user(
        &self,
        store: &Store,
        key: &SshKey,
        io: &mut Streams,
    ) -> Result<crate::store::User, Action> {
        let user = match store.user(&key.user) {
            Ok(Some(user)) if user.enabled => user,
            Ok(_) => {
                return Err(verify_failed(
                    io,
                    &format!("the account {} is disabled", key.user),
                ));
            }
            Err(e) => {
                log::error!("2fa verify: {e}");
                return Err(verify_failed(io, messages::UNAVAILABLE));
            }
        };
        if !user.is_enrolled() {
            return Err(verify_failed(
                io,
                &format!(
                    "{} has not set up 2FA yet; set it up at {}",
                    user.name,
                    crate::system::pages::setup_url(&self.config.public_url)
                ),
            ));
        }
        Ok(user)
    }

    /// Checks the code typed at a `2fa verify` prompt (`None`: reading it
    /// failed or timed out). The store and the user are read afresh: either
    /// may have changed while the prompt waited.
    pub fn finish_verify(
        &self,
        pending: PendingVerify,
        line: Option<&str>,
        io: &mut Streams,
    ) -> Action {
        let key = pending.key;
        let code = match line.map(str::trim) {
            Some(code) if !code.is_empty() => code,
            _ => {
                let _ = writeln!(io.stderr);
                return verify_failed(io, "no code given");
            }
        };
        let mut store = match Store::connect(&Location::of(self.config)) {
            Ok(store) => store,
            Err(e) => {
                log::error!("2fa verify: {e}");
                return verify_failed(io, messages::UNAVAILABLE);
            }
        };
        let user = match self.verifiable_user(&store, &key, io) {
            Ok(user) => user,
            Err(action) => return action,
        };
        let secret_key = match SecretKey::load(&self.config.secret_key_path()) {
            Ok(k) => k,
            Err(e) => {
                log::error!("2fa verify: {e}");
                return verify_failed(io, messages::UNAVAILABLE);
            }
        };
        let origin = Origin {
            transport: Transport::Ssh,
            key_id: Some(key.id),
            remote_addr: self.remote_addr.clone(),
        };
        let result = twofactor::verify(
            &mut store,
            &secret_key,
            self.config,
            &user,
            code,
            &origin,
            now(),
        );
        let fail = verify_failed;
        match result {
            Ok(Verified::Opened { expires_at, .. }) => {
                let scope = self.scope(&key);
                let _ = writeln!(
                    io.stdout,
                    "git2fa: 2FA session open until {} ({}). Git operations{scope} now work.",
                    format_utc(expires_at),
                    format_duration(self.config.policy.session_ttl)
                );
                Action::Exit(0)
            }
            Ok(Verified::Wrong { left }) => fail(
                io,
                &format!(
                    "wrong code; {} the account",
                    messages::more_lock(left, "wrong code")
                ),
            ),
            Ok(Verified::Replayed { left }) => fail(
                io,
                &format!(
                    "that code was already used; wait for the next one ({} the account)",
                    messages::more_lock(left, "wrong code")
                ),
            ),
            Ok(Verified::Locked { until }) => fail(
                io,
                &format!(
                    "too many wrong codes: the account is locked until {}",
                    format_utc(until)
                ),
            ),
            Err(e) => {
                log::error!("2fa verify: {e}");
                fail(io, messages::UNAVAILABLE)
            }
        }
    }
}

/// Whether the SSH client is gone: sshd closes the other ends of the
/// command's standard output and error when its client leaves (without a
/// terminal, the command gets no signal), which `poll` reports as an error
/// or hang-up on them.
fn client_gone() -> bool {
    use std::os::fd::AsFd;
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let mut fds = [
        nix::poll::PollFd::new(stdout.as_fd(), nix::poll::PollFlags::POLLOUT),
        nix::poll::PollFd::new(stderr.as_fd(), nix::poll::PollFlags::POLLOUT),
    ];
    if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_err() {
        return false;
    }
    let broken = nix::poll::PollFlags::POLLERR | nix::poll::PollFlags::POLLHUP;
    fds.iter()
        .any(|fd| fd.revents().is_some_and(|r| r.intersects(broken)))
}

/// Verify links of one user waiting at once, at most (as many as `git2fa
/// serve` lets a user's `2fa verify` prompts wait).
const MAX_LINKS_PER_USER: i64 = 4;

/// Failed looks at the store in a row after which a waiting `2fa verify`
/// ends with "2FA check unavailable".
const LINK_LOOKS_BEFORE_UNAVAILABLE: u32 = 3;

fn verify_failed(io: &mut Streams, message: &str) -> Action {
    let _ = writeln!(io.stderr, "git2fa: {message}");
    Action::Exit(1)
}
