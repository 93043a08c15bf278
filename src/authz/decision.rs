//! The decision: may this identity do this operation on this repository now?
//!
//! One pure function, no I/O: every transport gathers `Facts` (see `gate`)
//! and calls `decide`. The rules are docs/design.md's, in order:
//!
//! 0. the credential itself must hold;
//! 1. a registered, enabled user with the right on the repository;
//! 2. is 2FA required (global `all`, the repository's flag, the user's own
//!    "always use 2FA")?  3. not required: allow;
//! 4. a valid personal access token: allow (it was minted under 2FA);
//! 5. a password: refuse, unless `password_for_git` and a session is open;
//! 6. not enrolled: refuse;  7. an open, matching 2FA session, or (with
//!    `hardware_keys = "counts-as-2fa"`, checked before rule 6) a marked
//!    hardware key used on this connection: allow;
//! 8. any error on the way is a refusal (`Refusal::CheckUnavailable`), made
//!    by the caller that met the error;
//! 9. (checked right after rule 1) a push to a ref in `require_hardware_key`
//!    needs a marked hardware key with user verification on this very
//!    connection, whatever sessions are open.

use crate::repo::glob;
use crate::repo::policy::{PushedRefs, RepoPolicy};
use crate::system::config::{BindSession, Config, GitMode, HardwareKeys};

pub use crate::domain::{Hardware, Permission, SessionFacts, Token};

/// How the request reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ssh,
    Http,
    Local,
    Cli,
    Web,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ssh => "ssh",
            Transport::Http => "http",
            Transport::Local => "local",
            Transport::Cli => "cli",
            Transport::Web => "web",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Clone, fetch, ls-remote, archive.
    Read,
    /// Push.
    Write(PushedRefs),
}

impl Operation {
    pub fn is_write(&self) -> bool {
        matches!(self, Operation::Write(_))
    }

    /// The word the audit log and messages use.
    pub fn as_str(&self) -> &'static str {
        if self.is_write() { "write" } else { "read" }
    }

    pub fn noun(&self) -> &'static str {
        if self.is_write() {
            "push"
        } else {
            "read (clone, fetch)"
        }
    }
}

/// What is known of a personal access token found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    pub id: i64,
    pub permission: Permission,
    /// Repository patterns (see `glob`), matched against repository names.
    pub repos: Vec<String>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
    /// Minted for a user without 2FA (a service account): the audit row
    /// says so.
    pub without_2fa: bool,
    /// Issued to a credential helper that signed in through the browser.
    pub oauth: bool,
    /// For a token that ends with its 2FA session (an OAuth token): when
    /// that session ends or ended (0 when the store no longer holds it).
    pub ends_with_session: Option<i64>,
}

impl TokenFacts {
    /// What the decision needs of a token row.
    pub fn of(token: &Token) -> TokenFacts {
        TokenFacts {
            id: token.id,
            permission: token.permission,
            repos: token.repos.clone(),
            expires_at: token.expires_at,
            revoked: token.revoked_at.is_some(),
            without_2fa: token.without_2fa,
            oauth: token.oauth_client.is_some(),
            ends_with_session: token.session_id.map(|_| token.session_until.unwrap_or(0)),
        }
    }

    pub fn covers(&self, repo: &str) -> bool {
        self.repos
            .iter()
            .any(|pattern| glob::matches(pattern, repo))
    }
}

/// The credential presented, as far as the caller could establish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A registered SSH key whose signature was verified. `hardware`: what
    /// this connection's signature was held to, for a marked security key
    /// whose flags OpenSSH checked (`authorized-keys` wrote the option
    /// and told `git2fa-shell`), no more than the key's mark says now;
    /// `None` otherwise.
    SshKey {
        key_id: i64,
        hardware: Option<Hardware>,
    },
    /// A well-formed token found in the store, owned by the user.
    Token(TokenFacts),
    /// A password, checked against the user's hash.
    Password { valid: bool },
    /// A password not checked: too many wrong ones lately, until then.
    ThrottledPassword { until: i64 },
    /// The Unix account running the hook, from the kernel.
    UnixUser,
    /// A user name the web server authenticated (`REMOTE_USER`).
    TrustedRemoteUser,
    /// No credential at all.
    Missing,
    /// An SSH key that no user has registered.
    UnknownKey,
    /// A string that is not a git2fa token (bad prefix, length or checksum).
    MalformedToken,
    /// A well-formed token that is not in the store (or not this user's).
    UnknownToken,
}

impl Credential {
    /// The word the audit log uses.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::SshKey { .. } | Credential::UnknownKey => "key",
            Credential::Token(token) if token.without_2fa => "token-without-2fa",
            Credential::Token(token) if token.oauth => "oauth-token",
            Credential::Token(_) | Credential::MalformedToken | Credential::UnknownToken => "token",
            Credential::Password { .. } | Credential::ThrottledPassword { .. } => "password",
            Credential::UnixUser => "unix",
            Credential::TrustedRemoteUser => "remote-user",
            Credential::Missing => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    pub name: String,
    pub enabled: bool,
    pub enrolled: bool,
    pub always_2fa: bool,
    pub locked_until: Option<i64>,
}

/// Everything the decision looks at.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub config: &'a Config,
    pub now: i64,
    /// The repository's name (`team/app`).
    pub repo: &'a str,
    pub repo_policy: &'a RepoPolicy,
    pub operation: &'a Operation,
    pub credential: &'a Credential,
    /// `None`: no registered user by that name.
    pub user: Option<&'a UserFacts>,
    pub sessions: &'a [SessionFacts],
    /// The SSH key the connection authenticated with, if any.
    pub key_id: Option<i64>,
    pub remote_addr: Option<&'a str>,
}

#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Allowed),
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Rule 3.
    NotRequired,
    /// Rule 4.
    Token,
    /// Rule 5, with `password_for_git`.
    PasswordWithSession { session_id: i64 },
    /// Rule 7.
    Session { session_id: i64 },
    /// Rule 7: a marked hardware key, under `hardware_keys = "counts-as-2fa"`.
    HardwareKey { factor: Hardware },
}

/// Why an operation was refused: a closed set, each with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    MissingCredential,
    UnknownKey,
    WrongPassword,
    PasswordThrottled {
        until: i64,
    },
    TokenMalformed,
    TokenUnknown,
    TokenRevoked {
        token_id: i64,
    },
    TokenExpired {
        token_id: i64,
        expired_at: i64,
    },
    TokenOutOfScope {
        token_id: i64,
    },
    /// An OAuth token whose 2FA session ended (left, logged out, reset,
    /// expired): a 401, so that the credential helper forgets it and signs
    /// in again.
    TokenSessionEnded {
        token_id: i64,
    },
    /// An OAuth token revoked (in the web page, by `reset-2fa`, by its
    /// code used twice): a 401 too, for the same reason.
    OauthTokenRevoked {
        token_id: i64,
    },
    TokenReadOnly {
        token_id: i64,
    },
    UnknownUser,
    UserDisabled,
    /// No right for the operation. `may_read` is false when the user may
    /// not even read the repository, or it does not exist: the answer is
    /// then the same either way, so that nobody learns which private
    /// repositories exist.
    NoAccess {
        may_read: bool,
    },
    /// A password where 2FA is required (rule 5). `enrolled`: whether the
    /// user has set up 2FA, which decides what the message tells them.
    PasswordNotAccepted {
        enrolled: bool,
    },
    NotEnrolled,
    AccountLocked {
        until: i64,
    },
    NoSession,
    /// Rule 9: these pushed refs need a marked hardware key with user
    /// verification on this connection. Empty: the refs are not known,
    /// and any of them may need it.
    HardwareKeyRequired {
        refs: Vec<String>,
        /// Every pattern that applies here (the host's, then the
        /// repository's), for the message.
        patterns: Vec<String>,
    },
    /// Rule 8. `location` is safe to show a git user ("git2fa.toml of
    /// team/app, line 3"); the cause goes to the log and the audit row.
    CheckUnavailable {
        location: Option<String>,
    },
}

/// Why 2FA applies (rule 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequiredBy {
    /// `[policy] git = "all"`.
    Host,
    /// The repository's `require`, and the protected ref that matched.
    Repository { protected_ref: Option<String> },
    /// The user chose "always use 2FA".
    User,
}

/// Decides. Pure: the same facts give the same decision.
pub fn decide(f: &Facts) -> Decision {
    match decide_inner(f) {
        Ok(allowed) => Decision::Allow(allowed),
        Err(refusal) => Decision::Refuse(refusal),
    }
}

fn decide_inner(f: &Facts) -> Result<Allowed, Refusal> {
    // Rule 0: the credential itself.
    match f.credential {
        Credential::Missing => return Err(Refusal::MissingCredential),
        Credential::UnknownKey => return Err(Refusal::UnknownKey),
        Credential::Password { valid: false } => return Err(Refusal::WrongPassword),
        Credential::ThrottledPassword { until } => {
            return Err(Refusal::PasswordThrottled { until: *until });
        }
        Credential::MalformedToken => return Err(Refusal::TokenMalformed),
        Credential::UnknownToken => return Err(Refusal::TokenUnknown),
        Credential::Token(token) => {
            let token_id = token.id;
            if token.revoked && token.oauth {
                return Err(Refusal::OauthTokenRevoked { token_id });
            }
            if token.revoked {
                return Err(Refusal::TokenRevoked { token_id });
            }
            // An OAuth token works exactly as long as its 2FA session.
            if token.ends_with_session.is_some_and(|until| until <= f.now) {
                return Err(Refusal::TokenSessionEnded { token_id });
            }
            if let Some(expired_at) = token.expires_at.filter(|&at| at <= f.now) {
                return Err(Refusal::TokenExpired {
                    token_id,
                    expired_at,
                });
            }
            if !token.covers(f.repo) {
                return Err(Refusal::TokenOutOfScope { token_id });
            }
            if f.operation.is_write() && token.permission == Permission::Read {
                return Err(Refusal::TokenReadOnly { token_id });
            }
        }
        Credential::SshKey { .. }
        | Credential::Password { valid: true }
        | Credential::UnixUser
        | Credential::TrustedRemoteUser => {}
    }

    // Rule 1: a registered, enabled user with the right.
    let user = f.user.ok_or(Refusal::UnknownUser)?;
    if !user.enabled {
        return Err(Refusal::UserDisabled);
    }
    let has_right = match f.operation {
        Operation::Read => f.repo_policy.can_read(&user.name),
        Operation::Write(_) => f.repo_policy.can_write(&user.name),
    };
    if !has_right {
        return Err(Refusal::NoAccess {
            may_read: f.repo_policy.can_read(&user.name),
        });
    }

    // Rule 9: refs that need a hardware key with user verification.
    if let Operation::Write(refs) = f.operation
        && let Some(refs) = f
            .repo_policy
            .hardware_refs(&f.config.policy.require_hardware_key, refs)
        && !matches!(
            f.credential,
            Credential::SshKey {
                hardware: Some(Hardware::Verified),
                ..
            }
        )
    {
        let patterns = f
            .config
            .policy
            .require_hardware_key
            .iter()
            .chain(&f.repo_policy.require_hardware_key)
            .cloned()
            .collect();
        return Err(Refusal::HardwareKeyRequired { refs, patterns });
    }

    // Rules 2 and 3.
    if required_by(f).is_none() {
        return Ok(Allowed::NotRequired);
    }

    // Rule 4.
    if let Credential::Token(_) = f.credential {
        return Ok(Allowed::Token);
    }

    // Rule 5.
    if let Credential::Password { .. } = f.credential {
        return match matching_session(f) {
            Some(session) if f.config.tokens.password_for_git => Ok(Allowed::PasswordWithSession {
                session_id: session.id,
            }),
            _ => Err(Refusal::PasswordNotAccepted {
                enrolled: user.enrolled,
            }),
        };
    }

    // Rule 7, for a marked hardware key: the key is a second factor of its
    // own, so it needs no other one set up (rule 6).
    if let Credential::SshKey {
        hardware: Some(factor),
        ..
    } = f.credential
        && hardware_counts(f)
    {
        return Ok(Allowed::HardwareKey { factor: *factor });
    }

    // Rule 6.
    if !user.enrolled {
        return Err(Refusal::NotEnrolled);
    }

    // Rule 7.
    if let Some(session) = matching_session(f) {
        return Ok(Allowed::Session {
            session_id: session.id,
        });
    }
    match user.locked_until {
        Some(until) if until > f.now => Err(Refusal::AccountLocked { until }),
        _ => Err(Refusal::NoSession),
    }
}

/// Rule 2: why 2FA applies to this operation, or `None` when it does not.
pub fn required_by(f: &Facts) -> Option<RequiredBy> {
    let policy = &f.config.policy;
    if policy.git == GitMode::All {
        return Some(RequiredBy::Host);
    }
    if policy.git == GitMode::Flagged {
        let repo = f.repo_policy;
        let flagged = match f.operation {
            Operation::Read => repo.requires_for_read(),
            Operation::Write(refs) => repo.requires_for_push(refs),
        };
        if flagged {
            let protected_ref = match f.operation {
                Operation::Write(PushedRefs::Known(refs)) if !repo.protected_refs.is_empty() => {
                    refs.iter().find(|r| repo.is_protected(r)).cloned()
                }
                _ => None,
            };
            return Some(RequiredBy::Repository { protected_ref });
        }
    }
    let user_always = f.user.is_some_and(|u| u.always_2fa);
    if user_always && policy.users_may_always_enforce {
        return Some(RequiredBy::User);
    }
    None
}

/// Whether a use of a marked hardware key counts as 2FA for this
/// repository: `[policy] hardware_keys`, unless the repository's
/// `git2fa.toml` says otherwise. A repository may turn it off; it may turn
/// it on only where the host does not require 2FA everywhere (`git =
/// "all"`, which repository files cannot lower).
pub fn hardware_counts(f: &Facts) -> bool {
    let policy = &f.config.policy;
    match (policy.hardware_keys, f.repo_policy.hardware_keys) {
        (_, Some(HardwareKeys::Off)) => false,
        (HardwareKeys::CountsAs2fa, _) => true,
        (HardwareKeys::Off, Some(HardwareKeys::CountsAs2fa)) => policy.git != GitMode::All,
        (HardwareKeys::Off, None) => false,
    }
}

/// The first open session that the binding policy lets this request use.
fn matching_session<'a>(f: &Facts<'a>) -> Option<&'a SessionFacts> {
    let bind = f.config.policy.bind_session;
    f.sessions
        .iter()
        .find(|s| session_matches(bind, s, f.key_id, f.remote_addr, f.now))
}

/// Whether `session` is open at `now` and good for a request from this key
/// and address under the binding policy.
pub fn session_matches(
    bind: BindSession,
    session: &SessionFacts,
    key_id: Option<i64>,
    remote_addr: Option<&str>,
    now: i64,
) -> bool {
    session.expires_at > now
        && match bind {
            BindSession::User => true,
            BindSession::Key => session.key_id.is_some() && session.key_id == key_id,
            BindSession::Ip => {
                session.remote_addr.is_some() && session.remote_addr.as_deref() == remote_addr
            }
        }
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The docs/design.md rule that made this decision.
    pub fn rule(&self) -> u8 {
        match self {
            Decision::Allow(Allowed::NotRequired) => 3,
            Decision::Allow(Allowed::Token) => 4,
            Decision::Allow(Allowed::PasswordWithSession { .. }) => 5,
            Decision::Allow(Allowed::Session { .. } | Allowed::HardwareKey { .. }) => 7,
            Decision::Refuse(refusal) => refusal.rule(),
        }
    }

    /// A short stable code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Decision::Allow(Allowed::NotRequired) => "not-required",
            Decision::Allow(Allowed::Token) => "token",
            Decision::Allow(Allowed::PasswordWithSession { .. }) => "password-with-session",
            Decision::Allow(Allowed::Session { .. }) => "session",
            Decision::Allow(Allowed::HardwareKey { .. }) => "hardware-key",
            Decision::Refuse(refusal) => refusal.code(),
        }
    }
}

impl Refusal {
    pub fn rule(&self) -> u8 {
        use Refusal::*;
        match self {
            MissingCredential
            | UnknownKey
            | WrongPassword
            | PasswordThrottled { .. }
            | TokenMalformed
            | TokenUnknown
            | TokenRevoked { .. }
            | TokenExpired { .. }
            | TokenOutOfScope { .. }
            | TokenSessionEnded { .. }
            | OauthTokenRevoked { .. }
            | TokenReadOnly { .. } => 0,
            UnknownUser | UserDisabled | NoAccess { .. } => 1,
            PasswordNotAccepted { .. } => 5,
            NotEnrolled => 6,
            AccountLocked { .. } | NoSession => 7,
            CheckUnavailable { .. } => 8,
            HardwareKeyRequired { .. } => 9,
        }
    }

    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            MissingCredential => "no-credential",
            UnknownKey => "unknown-key",
            WrongPassword => "wrong-password",
            PasswordThrottled { .. } => "password-throttled",
            TokenMalformed => "token-malformed",
            TokenUnknown => "token-unknown",
            TokenRevoked { .. } => "token-revoked",
            TokenExpired { .. } => "token-expired",
            TokenOutOfScope { .. } => "token-out-of-scope",
            TokenSessionEnded { .. } => "token-session-ended",
            OauthTokenRevoked { .. } => "token-revoked",
            TokenReadOnly { .. } => "token-read-only",
            UnknownUser => "unknown-user",
            UserDisabled => "user-disabled",
            NoAccess { .. } => "no-access",
            PasswordNotAccepted { .. } => "password-not-accepted",
            NotEnrolled => "not-enrolled",
            AccountLocked { .. } => "account-locked",
            NoSession => "no-session",
            CheckUnavailable { .. } => "check-unavailable",
            HardwareKeyRequired { .. } => "hardware-key-required",
        }
    }

    /// The HTTP status: 401 only when the credential is missing or wrong,
    /// so that a credential helper never erases a valid token; 403 for
    /// every other refusal.
    pub fn http_status(&self) -> u16 {
        use Refusal::*;
        match self {
            MissingCredential
            | UnknownKey
            | WrongPassword
            | TokenMalformed
            | TokenUnknown
            | TokenSessionEnded { .. }
            | OauthTokenRevoked { .. } => 401,
            _ => 403,
        }
    }

    /// Whether verifying (opening a 2FA session) would let the operation
    /// through; `wait_for_verify` waits only for these.
    pub fn fixed_by_verifying(&self) -> bool {
        matches!(self, Refusal::NoSession)
    }
}

#[cfg(test)]
mod tests;
