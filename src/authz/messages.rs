//! What a refusal says: the lines a git user reads, naming the repository,
//! the user and the page that fixes it (`docs/decisions.md`, "What the git
//! user sees"), and the one wording of "2FA check unavailable".

use crate::authz::decision::{Operation, Refusal, RequiredBy, Transport};
use crate::system::config::Config;
use crate::system::time::{format_duration, format_utc};

/// What a message needs to name: the repository, the user, where to go.
#[derive(Debug, Clone)]
pub struct MessageContext<'a> {
    pub config: &'a Config,
    pub repo: &'a str,
    pub user: Option<&'a str>,
    pub operation: &'a Operation,
    pub transport: Transport,
}

/// "1 more wrong code locks" or "3 more wrong codes lock": how many more
/// `what`s (code, failed attempt) lock the account.
pub fn more_lock(left: u32, what: &str) -> String {
    if left == 1 {
        format!("1 more {what} locks")
    } else {
        format!("{left} more {what}s lock")
    }
}

/// An explanation in one line, for what shows a single line of it: git's
/// `ERR` pkt-line (`fatal: remote error: …`), which is all that libgit2,
/// JGit and dulwich print of a refusal, so it carries the address that
/// fixes it too.
pub fn one_line(lines: &[String]) -> String {
    lines.join(" ")
}

/// Up to five ref names, then how many more.
fn list_refs(refs: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = refs
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if refs.len() > SHOWN {
        text += &format!(" and {} more", refs.len() - SHOWN);
    }
    text
}

impl Refusal {
    /// One line: what `fatal: remote error:` shows.
    pub fn summary(&self, cx: &MessageContext) -> String {
        one_line(&self.lines(cx))
    }

    /// The full explanation a git user reads: what is refused, what is
    /// missing, and the URL that fixes it.
    pub fn lines(&self, cx: &MessageContext) -> Vec<String> {
        use Refusal::*;
        let config = cx.config;
        let repo = cx.repo;
        let shown = cx.user.map(crate::system::names::shown_user);
        let who = shown.as_deref().unwrap_or("you");
        let required = format!(
            "git2fa: {repo} requires two-factor authentication (2FA) to {}.",
            cx.operation.noun()
        );
        let tokens_url = crate::system::pages::tokens_url(&config.public_url);
        let verify_url = crate::system::pages::verify_url(&config.public_url, Some(repo));
        let verify_lines = || {
            let mut lines = vec![format!("Verify at {verify_url}")];
            if cx.transport != Transport::Http {
                lines.push(format!("or run: {}", config.ssh_hint("2fa verify")));
            }
            lines.push("then run the same git command again.".into());
            lines
        };
        let mut lines = match self {
            MissingCredential => vec![
                format!("git2fa: {repo}: authentication required."),
                format!("Use your user name and a personal access token from {tokens_url}"),
            ],
            UnknownKey => vec![
                "git2fa: this SSH key is not registered with git2fa.".into(),
                format!(
                    "Add your public key at {}/2fa/keys or ask an admin of this host.",
                    config.public_url
                ),
            ],
            WrongPassword => vec![
                format!("git2fa: {repo}: wrong user name, password or token."),
                format!("Personal access tokens are at {tokens_url}"),
            ],
            PasswordThrottled { until } => vec![
                format!(
                    "git2fa: {repo}: too many wrong passwords for {who}; passwords are not checked until {}.",
                    format_utc(*until)
                ),
                format!("Use a personal access token instead: create one at {tokens_url}"),
            ],
            TokenMalformed => vec![
                format!(
                    "git2fa: {repo}: the access token is not a valid git2fa token (it may be mistyped or cut short)."
                ),
                format!("Copy it again, or create a new one at {tokens_url}"),
            ],
            TokenUnknown if cx.user.is_none() => vec![
                format!("git2fa: {repo}: the access token is not known (deleted, or mistyped)."),
                format!("Create a new one at {tokens_url}"),
            ],
            TokenUnknown => vec![
                format!(
                    "git2fa: {repo}: the access token is not known for {who} (deleted, or another user's)."
                ),
                format!("Create a new one at {tokens_url}"),
            ],
            TokenRevoked { token_id } => vec![
                format!("git2fa: {repo}: access token #{token_id} was revoked."),
                format!("Create a new one at {tokens_url}"),
            ],
            TokenExpired {
                token_id,
                expired_at,
            } => vec![
                format!(
                    "git2fa: {repo}: access token #{token_id} expired on {}.",
                    format_utc(*expired_at)
                ),
                format!("Create a new one at {tokens_url}"),
            ],
            TokenOutOfScope { token_id } => vec![
                format!(
                    "git2fa: {repo}: access token #{token_id} is not valid for this repository."
                ),
                format!("Create a token that covers {repo} at {tokens_url}"),
            ],
            TokenSessionEnded { token_id } => vec![
                format!(
                    "git2fa: {repo}: access token #{token_id}, from signing in through the browser, ended with the 2FA session it came from."
                ),
                format!(
                    "Run the git command again: your credential helper opens the browser to sign in (or use a personal access token from {tokens_url})."
                ),
            ],
            OauthTokenRevoked { token_id } => vec![
                format!(
                    "git2fa: {repo}: access token #{token_id}, from signing in through the browser, was revoked."
                ),
                "Run the git command again: your credential helper opens the browser to sign in."
                    .into(),
            ],
            TokenReadOnly { token_id } => vec![
                format!("git2fa: {repo}: access token #{token_id} is read-only and cannot push."),
                format!("Create a token with write permission at {tokens_url}"),
            ],
            UnknownUser => vec![
                format!("git2fa: {repo}: {who} is not a registered git2fa user."),
                "Ask an admin of this host to add you.".into(),
            ],
            UserDisabled => vec![
                format!("git2fa: {repo}: the account {who} is disabled."),
                "Ask an admin of this host.".into(),
            ],
            NoAccess { may_read: true } => vec![
                format!("git2fa: {repo}: {who} may not push to this repository."),
                "Ask an owner of the repository, or an admin of this host, for access.".into(),
            ],
            NoAccess { may_read: false } => vec![
                format!("git2fa: {repo}: no such repository, or {who} may not read it."),
                "Check the address, or ask an admin of this host for access.".into(),
            ],
            // With `password_for_git`, the password works once a session is
            // open: the message says how to open one.
            // Not set up: neither a session nor a token is to be had yet.
            PasswordNotAccepted { enrolled: false } => vec![
                format!(
                    "git2fa: {repo} requires two-factor authentication (2FA), and {who} has not set up 2FA yet."
                ),
                format!(
                    "Set it up at {}",
                    crate::system::pages::setup_url(&config.public_url)
                ),
                if config.tokens.password_for_git {
                    "then run the same git command again (a password works for git here during a 2FA session).".into()
                } else {
                    format!(
                        "then use a personal access token from {tokens_url} instead of your password."
                    )
                },
            ],
            PasswordNotAccepted { .. } if config.tokens.password_for_git => vec![
                format!(
                    "git2fa: {repo} requires two-factor authentication (2FA): {who} has no open 2FA session, and a password works for git here only during one."
                ),
                format!("Verify at {verify_url}"),
                format!(
                    "then run the same git command again (or use a personal access token from {tokens_url})."
                ),
            ],
            PasswordNotAccepted { .. } => vec![
                format!(
                    "git2fa: {repo} requires two-factor authentication (2FA): a password is not accepted for git here."
                ),
                format!(
                    "Use a personal access token instead of your password: create one at {tokens_url}"
                ),
            ],
            HardwareKeyRequired { refs, patterns } => {
                let what = if refs.is_empty() {
                    format!("a push to refs matching {}", patterns.join(", "))
                } else {
                    format!("a push to {}", list_refs(refs))
                };
                vec![
                    format!(
                        "git2fa: {repo}: {what} needs a hardware security key with its PIN (user verification), used on this very connection; a 2FA session or a token is not enough."
                    ),
                    "Make one with: ssh-keygen -t ed25519-sk -O verify-required".into(),
                    format!(
                        "add its .pub at {} marked \"PIN every time\" (or ask an admin: git2fa key add {who} FILE --hardware verified), then push with it over the host's OpenSSH{}.",
                        crate::system::pages::keys_url(&config.public_url),
                        if config.ssh.listen.is_some() {
                            " (git2fa serve's own SSH server takes no security keys)"
                        } else {
                            ""
                        }
                    ),
                ]
            }
            NotEnrolled => vec![
                required,
                format!("{who} has not set up 2FA yet."),
                format!(
                    "Set it up at {}",
                    crate::system::pages::setup_url(&config.public_url)
                ),
                "then run the same git command again.".into(),
            ],
            AccountLocked { until } => vec![
                required,
                format!(
                    "The account {who} is locked after too many wrong codes until {}.",
                    format_utc(*until)
                ),
                format!(
                    "Try again after that at {verify_url}, or ask an admin of this host to unlock it."
                ),
            ],
            NoSession => {
                let mut lines = vec![required, format!("{who} has no open 2FA session.")];
                lines.extend(verify_lines());
                lines
            }
            CheckUnavailable { location } => unavailable_lines(Some(repo), location.as_deref()),
        };
        lines.retain(|l| !l.is_empty());
        lines
    }
}

/// What a person is told when the check itself failed (the store, the
/// key, a broken file): never an allow, and never the cause, which goes to
/// the admin's log. The web page's words; git users read the same
/// (`unavailable_lines`).
pub const UNAVAILABLE: &str = "2FA check unavailable, so the operation was refused. Tell an admin of this host; the cause is in their log.";

/// What a user reads while git waits for them to verify: why (the first
/// two lines of the refusal), and where to verify.
pub fn waiting(refusal: &Refusal, cx: &MessageContext) -> Vec<String> {
    let mut lines: Vec<String> = refusal.lines(cx).into_iter().take(2).collect();
    lines.push(format!(
        "git2fa: waiting up to {} for you to verify at {} (or: {}) ...",
        format_duration(cx.config.policy.wait_for_verify),
        crate::system::pages::verify_url(&cx.config.public_url, Some(cx.repo)),
        cx.config.ssh_hint("2fa verify")
    ));
    lines
}

/// The second line of every "check unavailable" message.
const TELL_AN_ADMIN: &str = "Tell an admin of this host; the cause is in their log.";

/// "2FA check unavailable", in the one wording every transport uses: the
/// repository when it is known, the file that holds the error when the
/// admin's fix is there, and whom to tell.
fn unavailable_lines(repo: Option<&str>, location: Option<&str>) -> Vec<String> {
    let mut lines = vec![match repo {
        Some(repo) => {
            format!("git2fa: {repo}: 2FA check unavailable, so the operation was refused.")
        }
        None => "git2fa: 2FA check unavailable, so the operation was refused.".to_string(),
    }];
    if let Some(location) = location {
        lines.push(format!("The error is in {location}."));
    }
    lines.push(TELL_AN_ADMIN.into());
    lines
}

/// The check failed before a decision: `cause` goes to the log, the git
/// user reads these lines (naming `repo` when it is known). Every transport
/// says it in these words.
pub fn check_unavailable(repo: Option<&str>, cause: &dyn std::fmt::Display) -> Vec<String> {
    log::error!("2FA check unavailable: {cause}");
    unavailable_lines(repo, None)
}

/// What the server is too busy for: past a `[limits]` bound it refuses at
/// once rather than queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// `[limits] git_operations` git operations are under way.
    GitOperations(usize),
    /// Every password hash (`[limits] password_hashes`) is under way.
    PasswordHashes,
    /// The user has as many SSH connections open to serve's embedded
    /// server as it allows one user (32).
    SshConnections(usize),
}

impl Busy {
    /// The audit row's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Busy::GitOperations(_) => "busy",
            Busy::PasswordHashes => "busy-password-hashes",
            Busy::SshConnections(_) => "busy-ssh-connections",
        }
    }
}

/// The refusal's lines for a server at one of its limits: what is busy,
/// and what the user can do.
pub fn busy(config: &Config, what: Busy) -> Vec<String> {
    match what {
        Busy::GitOperations(n) => vec![
            format!(
                "git2fa: the server is busy: {n} git operations are under way, the most it runs at once; try again in a moment."
            ),
            "If it stays busy, tell an admin of this host ([limits] git_operations).".into(),
        ],
        Busy::PasswordHashes => vec![
            "git2fa: the server is busy checking passwords; try again in a moment.".into(),
            format!(
                "A personal access token needs no password check: create one at {}",
                crate::system::pages::tokens_url(&config.public_url)
            ),
        ],
        Busy::SshConnections(n) => vec![format!(
            "git2fa: you have {n} SSH connections open to this server, the most it allows one user; close one and try again."
        )],
    }
}

impl RequiredBy {
    /// Why 2FA applies, for `git2fa explain`.
    pub fn describe(&self) -> String {
        match self {
            RequiredBy::Host => {
                "the host requires 2FA for every operation ([policy] git = \"all\")".into()
            }
            RequiredBy::Repository {
                protected_ref: Some(r),
            } => {
                format!("the repository's git2fa.toml protects {r}")
            }
            RequiredBy::Repository {
                protected_ref: None,
            } => "the repository's git2fa.toml requires 2FA for this operation".into(),
            RequiredBy::User => "the user chose \"always use 2FA\"".into(),
        }
    }
}
