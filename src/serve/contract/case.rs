//! The contract table's vocabulary: a case, what it comes to, and what
//! sets it apart.

/// What a case comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Allow,
    /// Refused: words of the explanation (which starts `git2fa: `), and
    /// the HTTP status.
    Refuse(&'static str, u16),
}

/// Who asks: over SSH with a key, or over HTTP with a credential.
#[derive(Debug, Clone, Copy)]
pub(super) enum Credential {
    /// The key of this entry of `Host::keys`.
    Key(&'static str),
    /// This token of alice's (`Host::tokens`), as the password.
    Token(&'static str),
    Password(&'static str, &'static str),
    Nothing,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Read,
    /// A push to this ref: the front transports decide with the refs not
    /// known (the hooks are in place), the `update` hook with this one.
    Push(&'static str),
}

/// What sets a case apart from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flag {
    /// The store is broken (its file no SQLite database).
    BrokenStore,
    /// serve's SSH server turns the key down at log-in, before any
    /// command (a removed key, a disabled account): its client sees ssh's
    /// own "Permission denied".
    RefusedAtSshLogin,
    /// The front writes no audit row: git's anonymous first request over
    /// HTTP, which every clone starts with (the protocol, not a refusal;
    /// docs/decisions.md).
    NotAudited,
    /// The host has `[tokens] password_for_git = true`.
    PasswordForGit,
}

#[derive(Clone, Copy)]
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) credential: Credential,
    pub(super) repo: &'static str,
    pub(super) op: Op,
    /// alice's 2FA session is open.
    pub(super) session: bool,
    /// At the front (SSH command, HTTP request).
    pub(super) front: Expect,
    /// In the `update` hook, for pushes the front allowed.
    pub(super) hook: Expect,
    pub(super) flags: &'static [Flag],
}

impl Case {
    pub(super) fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }
}

pub(super) const NO_SESSION: &str = "requires two-factor authentication (2FA) to";
pub(super) const NO_SESSION_PASSWORD: &str = "a password works for git here only during one.";
