//! The decision, rule by rule: an explicit table of cases, then a sweep over
//! every combination checking the promises that must hold in all of them.

use std::path::Path;

use super::*;
use crate::authz::messages::MessageContext;
use crate::repo::policy::{Members, Require};

const NOW: i64 = 1_800_000_000;

fn config(git: &str, bind: &str, password_for_git: bool, users_may_always: bool) -> Config {
    let text = format!(
        "repos_root = '/srv/git'\ndata_dir = '/var/lib/git2fa'\npublic_url = 'https://git.example.com'\n\
         [policy]\ngit = '{git}'\nbind_session = '{bind}'\nusers_may_always_enforce = {users_may_always}\n\
         [tokens]\npassword_for_git = {password_for_git}\n"
    );
    Config::parse(Path::new("test.toml"), &text).unwrap()
}

fn repo(require: Require, protected: &[&str]) -> RepoPolicy {
    RepoPolicy {
        require,
        protected_refs: protected.iter().map(|s| s.to_string()).collect(),
        from_file: true,
        ..RepoPolicy::default()
    }
}

fn user(enrolled: bool) -> UserFacts {
    UserFacts {
        name: "alice".into(),
        enabled: true,
        enrolled,
        always_2fa: false,
        locked_until: None,
    }
}

fn token(permission: Permission, repos: &[&str]) -> Credential {
    Credential::Token(TokenFacts {
        id: 7,
        permission,
        repos: repos.iter().map(|s| s.to_string()).collect(),
        expires_at: Some(NOW + 86_400),
        revoked: false,
        without_2fa: false,
        oauth: false,
        ends_with_session: None,
    })
}

fn session(key_id: Option<i64>, addr: Option<&str>, expires_at: i64) -> SessionFacts {
    SessionFacts {
        id: 3,
        expires_at,
        key_id,
        remote_addr: addr.map(str::to_string),
    }
}

fn push(refs: &[&str]) -> Operation {
    Operation::Write(PushedRefs::Known(
        refs.iter().map(|s| s.to_string()).collect(),
    ))
}

/// One case with everything defaulted to "alice, enrolled, SSH key 1 from
/// 10.0.0.1, no session, flagged repo requiring push, host git = flagged".
struct Case {
    config: Config,
    repo: RepoPolicy,
    operation: Operation,
    credential: Credential,
    user: Option<UserFacts>,
    sessions: Vec<SessionFacts>,
    key_id: Option<i64>,
    addr: Option<&'static str>,
}

impl Case {
    fn new() -> Case {
        Case {
            config: config("flagged", "user", false, true),
            repo: repo(Require::Push, &[]),
            operation: push(&["refs/heads/main"]),
            credential: Credential::SshKey {
                key_id: 1,
                hardware: None,
            },
            user: Some(user(true)),
            sessions: vec![],
            key_id: Some(1),
            addr: Some("10.0.0.1"),
        }
    }

    fn decide(&self) -> Decision {
        decide(&self.facts())
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            config: &self.config,
            now: NOW,
            repo: "team/app",
            repo_policy: &self.repo,
            operation: &self.operation,
            credential: &self.credential,
            user: self.user.as_ref(),
            sessions: &self.sessions,
            key_id: self.key_id,
            remote_addr: self.addr,
        }
    }
}

fn open() -> Vec<SessionFacts> {
    vec![session(Some(1), Some("10.0.0.1"), NOW + 600)]
}

fn code(decision: &Decision) -> (&'static str, u8) {
    (decision.code(), decision.rule())
}

#[test]
fn the_rules_case_by_case() {
    let cases: Vec<(&str, Tweak, (&str, u8))> = vec![
        // Rule 0: the credential.
        (
            "no credential",
            |c| c.credential = Credential::Missing,
            ("no-credential", 0),
        ),
        (
            "unknown key",
            |c| c.credential = Credential::UnknownKey,
            ("unknown-key", 0),
        ),
        (
            "wrong password",
            |c| c.credential = Credential::Password { valid: false },
            ("wrong-password", 0),
        ),
        (
            "malformed token",
            |c| c.credential = Credential::MalformedToken,
            ("token-malformed", 0),
        ),
        (
            "unknown token",
            |c| c.credential = Credential::UnknownToken,
            ("token-unknown", 0),
        ),
        (
            "revoked token",
            |c| {
                let Credential::Token(mut t) = token(Permission::Write, &["team/*"]) else {
                    unreachable!()
                };
                t.revoked = true;
                c.credential = Credential::Token(t);
            },
            ("token-revoked", 0),
        ),
        (
            "an OAuth token whose 2FA session is open",
            |c| {
                let Credential::Token(mut t) = token(Permission::Write, &["**"]) else {
                    unreachable!()
                };
                t.oauth = true;
                t.ends_with_session = Some(NOW + 60);
                c.credential = Credential::Token(t);
            },
            ("token", 4),
        ),
        (
            "an OAuth token whose 2FA session ended",
            |c| {
                let Credential::Token(mut t) = token(Permission::Write, &["**"]) else {
                    unreachable!()
                };
                t.oauth = true;
                t.ends_with_session = Some(NOW);
                c.credential = Credential::Token(t);
                c.sessions = open();
            },
            ("token-session-ended", 0),
        ),
        (
            "an OAuth token whose 2FA session the store no longer holds",
            |c| {
                let Credential::Token(mut t) = token(Permission::Write, &["**"]) else {
                    unreachable!()
                };
                t.oauth = true;
                t.ends_with_session = Some(0);
                c.credential = Credential::Token(t);
            },
            ("token-session-ended", 0),
        ),
        (
            "expired token",
            |c| {
                let Credential::Token(mut t) = token(Permission::Write, &["team/*"]) else {
                    unreachable!()
                };
                t.expires_at = Some(NOW);
                c.credential = Credential::Token(t);
            },
            ("token-expired", 0),
        ),
        (
            "token for another repo",
            |c| c.credential = token(Permission::Write, &["other/*"]),
            ("token-out-of-scope", 0),
        ),
        (
            "read token pushing",
            |c| c.credential = token(Permission::Read, &["team/app"]),
            ("token-read-only", 0),
        ),
        (
            "wrong password even on an open repo",
            |c| {
                c.repo = repo(Require::Off, &[]);
                c.credential = Credential::Password { valid: false };
            },
            ("wrong-password", 0),
        ),
        (
            "throttled password",
            |c| c.credential = Credential::ThrottledPassword { until: NOW + 60 },
            ("password-throttled", 0),
        ),
        // Rule 1: the user and the right.
        ("unknown user", |c| c.user = None, ("unknown-user", 1)),
        (
            "disabled user",
            |c| c.user.as_mut().unwrap().enabled = false,
            ("user-disabled", 1),
        ),
        (
            "reader pushing",
            |c| {
                c.repo.writers = Members::Only(vec!["bob".into()]);
            },
            ("no-access", 1),
        ),
        (
            "not a reader",
            |c| {
                c.operation = Operation::Read;
                c.repo.writers = Members::Only(vec![]);
                c.repo.readers = Members::Only(vec!["bob".into()]);
            },
            ("no-access", 1),
        ),
        (
            "an owner may push whatever writers says",
            |c| {
                c.repo.writers = Members::Only(vec![]);
                c.repo.owners = vec!["alice".into()];
                c.repo.require = Require::Off;
            },
            ("not-required", 3),
        ),
        (
            "disabled user with a valid session",
            |c| {
                c.user.as_mut().unwrap().enabled = false;
                c.sessions = open();
            },
            ("user-disabled", 1),
        ),
        // Rules 2 and 3: is 2FA required?
        (
            "host off, repo flagged",
            |c| c.config = config("off", "user", false, true),
            ("not-required", 3),
        ),
        (
            "repo off",
            |c| c.repo = repo(Require::Off, &[]),
            ("not-required", 3),
        ),
        (
            "repo push, read",
            |c| c.operation = Operation::Read,
            ("not-required", 3),
        ),
        (
            "repo all, read",
            |c| {
                c.repo = repo(Require::All, &[]);
                c.operation = Operation::Read;
            },
            ("no-session", 7),
        ),
        (
            "host all overrides repo off",
            |c| {
                c.config = config("all", "user", false, true);
                c.repo = repo(Require::Off, &[]);
                c.operation = Operation::Read;
            },
            ("no-session", 7),
        ),
        (
            "protected main, push to main",
            |c| c.repo = repo(Require::Push, &["refs/heads/main"]),
            ("no-session", 7),
        ),
        (
            "protected main, push to topic",
            |c| {
                c.repo = repo(Require::Push, &["refs/heads/main"]);
                c.operation = push(&["refs/heads/topic"]);
            },
            ("not-required", 3),
        ),
        (
            "protected tags, push of a tag among branches",
            |c| {
                c.repo = repo(Require::Push, &["refs/tags/v*"]);
                c.operation = push(&["refs/heads/topic", "refs/tags/v1.2"]);
            },
            ("no-session", 7),
        ),
        (
            "protected main, refs not known yet",
            |c| {
                c.repo = repo(Require::Push, &["refs/heads/main"]);
                c.operation = Operation::Write(PushedRefs::Unknown);
            },
            ("no-session", 7),
        ),
        (
            "user always 2FA on an open repo",
            |c| {
                c.repo = repo(Require::Off, &[]);
                c.user.as_mut().unwrap().always_2fa = true;
            },
            ("no-session", 7),
        ),
        (
            "user always 2FA when the host forbids it",
            |c| {
                c.config = config("flagged", "user", false, false);
                c.repo = repo(Require::Off, &[]);
                c.user.as_mut().unwrap().always_2fa = true;
            },
            ("not-required", 3),
        ),
        (
            "user always 2FA with host git off",
            |c| {
                c.config = config("off", "user", false, true);
                c.user.as_mut().unwrap().always_2fa = true;
            },
            ("no-session", 7),
        ),
        // Rule 4: tokens.
        (
            "write token",
            |c| c.credential = token(Permission::Write, &["team/*"]),
            ("token", 4),
        ),
        (
            "read token reading",
            |c| {
                c.credential = token(Permission::Read, &["team/app"]);
                c.operation = Operation::Read;
                c.repo = repo(Require::All, &[]);
            },
            ("token", 4),
        ),
        (
            "token of a user not enrolled",
            |c| {
                c.credential = token(Permission::Write, &["**"]);
                c.user = Some(user(false));
            },
            ("token", 4),
        ),
        // Rule 5: passwords.
        (
            "password where 2FA applies",
            |c| c.credential = Credential::Password { valid: true },
            ("password-not-accepted", 5),
        ),
        (
            "password with a session but password_for_git off",
            |c| {
                c.credential = Credential::Password { valid: true };
                c.sessions = open();
            },
            ("password-not-accepted", 5),
        ),
        (
            "password with a session and password_for_git",
            |c| {
                c.config = config("flagged", "user", true, true);
                c.credential = Credential::Password { valid: true };
                c.sessions = open();
            },
            ("password-with-session", 5),
        ),
        (
            "password_for_git but no session",
            |c| {
                c.config = config("flagged", "user", true, true);
                c.credential = Credential::Password { valid: true };
            },
            ("password-not-accepted", 5),
        ),
        (
            "password where 2FA does not apply",
            |c| {
                c.credential = Credential::Password { valid: true };
                c.operation = Operation::Read;
            },
            ("not-required", 3),
        ),
        // Rule 6: not enrolled.
        (
            "not enrolled",
            |c| c.user = Some(user(false)),
            ("not-enrolled", 6),
        ),
        // Rule 7: sessions and their binding.
        ("open session", |c| c.sessions = open(), ("session", 7)),
        (
            "expired session",
            |c| c.sessions = vec![session(Some(1), None, NOW)],
            ("no-session", 7),
        ),
        (
            "key-bound, same key",
            |c| {
                c.config = config("flagged", "key", false, true);
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "key-bound, other key",
            |c| {
                c.config = config("flagged", "key", false, true);
                c.sessions = open();
                c.key_id = Some(2);
                c.credential = Credential::SshKey {
                    key_id: 2,
                    hardware: None,
                };
            },
            ("no-session", 7),
        ),
        (
            "key-bound, session without a key",
            |c| {
                c.config = config("flagged", "key", false, true);
                c.sessions = vec![session(None, Some("10.0.0.1"), NOW + 600)];
            },
            ("no-session", 7),
        ),
        (
            "ip-bound, same address",
            |c| {
                c.config = config("flagged", "ip", false, true);
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "ip-bound, other address",
            |c| {
                c.config = config("flagged", "ip", false, true);
                c.sessions = open();
                c.addr = Some("10.0.0.2");
            },
            ("no-session", 7),
        ),
        (
            "ip-bound, no address known",
            |c| {
                c.config = config("flagged", "ip", false, true);
                c.sessions = open();
                c.addr = None;
            },
            ("no-session", 7),
        ),
        (
            "locked, no session",
            |c| c.user.as_mut().unwrap().locked_until = Some(NOW + 60),
            ("account-locked", 7),
        ),
        (
            "lock expired",
            |c| c.user.as_mut().unwrap().locked_until = Some(NOW),
            ("no-session", 7),
        ),
        (
            "locked but a session is open",
            |c| {
                c.user.as_mut().unwrap().locked_until = Some(NOW + 60);
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "unix account with a session",
            |c| {
                c.credential = Credential::UnixUser;
                c.key_id = None;
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "trusted REMOTE_USER without a session",
            |c| c.credential = Credential::TrustedRemoteUser,
            ("no-session", 7),
        ),
    ];
    check_cases(cases);
}

/// A change to the default case.
type Tweak = fn(&mut Case);

/// Decides each case (the default, changed as it says) and fails with
/// every one that did not decide as expected.
fn check_cases(cases: Vec<(&str, Tweak, (&str, u8))>) {
    let mut failures = Vec::new();
    for (name, tweak, expected) in cases {
        let mut case = Case::new();
        tweak(&mut case);
        let got = code(&case.decide());
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every combination of host mode × repo requirement × operation ×
/// credential × enrolment × session × "always use 2FA", checked against the
/// promises stated independently of the rule order.
mod promises;

/// Hardware-backed SSH keys: rule 9 (`require_hardware_key`) and rule 7's
/// marked key under `hardware_keys = "counts-as-2fa"` (docs/decisions.md,
/// "Hardware-backed SSH keys", has this table).
mod hardware;
