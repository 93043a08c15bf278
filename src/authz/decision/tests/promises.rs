//! Promises that hold in every combination of facts, and what every
//! refusal says.

use super::*;

#[test]
fn every_combination_keeps_the_promises() {
    let hosts = ["off", "flagged", "all"];
    let repos: [(Require, &[&str]); 4] = [
        (Require::Off, &[]),
        (Require::Push, &[]),
        (Require::All, &[]),
        (Require::Push, &["refs/heads/main"]),
    ];
    let operations = [
        Operation::Read,
        push(&["refs/heads/main"]),
        push(&["refs/heads/topic"]),
    ];
    let credentials = [
        Credential::SshKey {
            key_id: 1,
            hardware: None,
        },
        token(Permission::Write, &["team/*"]),
        token(Permission::Read, &["team/*"]),
        Credential::Password { valid: true },
    ];
    let sessions = [
        vec![],
        vec![session(Some(1), Some("10.0.0.1"), NOW + 600)],
        vec![session(Some(1), None, NOW - 1)],
    ];
    let mut count = 0;
    for host in hosts {
        for (require, protected) in &repos {
            for operation in &operations {
                for credential in &credentials {
                    for enrolled in [false, true] {
                        for session_set in &sessions {
                            for always in [false, true] {
                                let mut case = Case::new();
                                case.config = config(host, "user", false, true);
                                case.repo = repo(*require, protected);
                                case.operation = operation.clone();
                                case.credential = credential.clone();
                                case.user.as_mut().unwrap().enrolled = enrolled;
                                case.user.as_mut().unwrap().always_2fa = always;
                                case.sessions = session_set.clone();
                                check_promises(&case, host, *require, protected);
                                count += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(count, 3 * 4 * 3 * 4 * 2 * 3 * 2);
}

fn check_promises(case: &Case, host: &str, require: Require, protected: &[&str]) {
    let decision = case.decide();
    let is_write = case.operation.is_write();
    let pushes_main = case.operation == push(&["refs/heads/main"]);
    let repo_asks = match require {
        Require::Off => false,
        Require::All => true,
        Require::Push => is_write && (protected.is_empty() || pushes_main),
    };
    let required =
        host == "all" || (host == "flagged" && repo_asks) || case.user.as_ref().unwrap().always_2fa;
    let session_open = case.sessions.iter().any(|s| s.expires_at > NOW);
    let context = format!(
        "{host} {require:?} {protected:?} {:?} {:?} → {decision:?}",
        case.operation, case.credential
    );

    // A read-only token never pushes, whatever else holds.
    if let Credential::Token(t) = &case.credential {
        if t.permission == Permission::Read && is_write {
            assert_eq!(
                decision,
                Decision::Refuse(Refusal::TokenReadOnly { token_id: 7 }),
                "{context}"
            );
            return;
        }
        // A valid token in scope is always enough.
        assert!(decision.is_allowed(), "{context}");
        return;
    }
    if !required {
        assert_eq!(decision, Decision::Allow(Allowed::NotRequired), "{context}");
        return;
    }
    // Required: a key or password gets through only with an open session,
    // and a password only with password_for_git (off here).
    match &case.credential {
        Credential::Password { .. } => {
            assert_eq!(
                decision,
                Decision::Refuse(Refusal::PasswordNotAccepted {
                    enrolled: case.user.as_ref().unwrap().enrolled
                }),
                "{context}"
            )
        }
        _ if !case.user.as_ref().unwrap().enrolled => {
            assert_eq!(
                decision,
                Decision::Refuse(Refusal::NotEnrolled),
                "{context}"
            )
        }
        _ => assert_eq!(decision.is_allowed(), session_open, "{context}"),
    }
    assert!(required_by(&case.facts()).is_some(), "{context}");
}

#[test]
fn every_refusal_names_the_repo_and_what_fixes_it() {
    let config = config("flagged", "user", false, true);
    let refusals = [
        Refusal::MissingCredential,
        Refusal::UnknownKey,
        Refusal::WrongPassword,
        Refusal::PasswordThrottled { until: NOW + 900 },
        Refusal::TokenMalformed,
        Refusal::TokenUnknown,
        Refusal::TokenRevoked { token_id: 4 },
        Refusal::TokenExpired {
            token_id: 4,
            expired_at: NOW,
        },
        Refusal::TokenOutOfScope { token_id: 4 },
        Refusal::TokenReadOnly { token_id: 4 },
        Refusal::UnknownUser,
        Refusal::UserDisabled,
        Refusal::NoAccess { may_read: false },
        Refusal::NoAccess { may_read: true },
        Refusal::PasswordNotAccepted { enrolled: true },
        Refusal::PasswordNotAccepted { enrolled: false },
        Refusal::NotEnrolled,
        Refusal::AccountLocked { until: NOW + 900 },
        Refusal::NoSession,
        Refusal::CheckUnavailable {
            location: Some("the git2fa.toml of team/app, line 3".into()),
        },
    ];
    let operation = push(&["refs/heads/main"]);
    for refusal in refusals {
        let cx = MessageContext {
            config: &config,
            repo: "team/app",
            user: Some("alice"),
            operation: &operation,
            transport: Transport::Ssh,
        };
        let text = refusal.lines(&cx).join("\n");
        if refusal != Refusal::UnknownKey {
            assert!(
                text.contains("team/app"),
                "{refusal:?} does not name the repo:\n{text}"
            );
        }
        let actionable = text.contains("https://git.example.com/") || text.contains("admin");
        assert!(actionable, "{refusal:?} says nowhere to go:\n{text}");
        assert!(!refusal.summary(&cx).is_empty());
        assert!(
            !text.contains("/srv/git"),
            "{refusal:?} leaks a server path:\n{text}"
        );
    }
    let cx = MessageContext {
        config: &config,
        repo: "team/app",
        user: Some("alice"),
        operation: &operation,
        transport: Transport::Ssh,
    };
    assert_eq!(
        Refusal::NoSession.lines(&cx),
        vec![
            "git2fa: team/app requires two-factor authentication (2FA) to push.",
            "alice has no open 2FA session.",
            "Verify at https://git.example.com/2fa/verify?repo=team/app",
            "or run: ssh -p 2222 git@git.example.com 2fa verify",
            "then run the same git command again.",
        ]
    );
}

#[test]
fn only_wrong_or_missing_credentials_are_401() {
    assert_eq!(Refusal::WrongPassword.http_status(), 401);
    assert_eq!(Refusal::MissingCredential.http_status(), 401);
    assert_eq!(Refusal::TokenMalformed.http_status(), 401);
    assert_eq!(
        Refusal::TokenExpired {
            token_id: 1,
            expired_at: 0
        }
        .http_status(),
        403
    );
    assert_eq!(Refusal::TokenRevoked { token_id: 1 }.http_status(), 403);
    assert_eq!(
        Refusal::PasswordNotAccepted { enrolled: true }.http_status(),
        403
    );
    assert_eq!(Refusal::NoSession.http_status(), 403);
    assert_eq!(
        Refusal::CheckUnavailable { location: None }.http_status(),
        403
    );
}

#[test]
fn a_password_refused_for_want_of_a_session_says_where_to_verify() {
    let operation = Operation::Read;
    let lines = |password_for_git: bool| {
        let config = config("flagged", "user", password_for_git, true);
        let cx = MessageContext {
            config: &config,
            repo: "team/app",
            user: Some("alice"),
            operation: &operation,
            transport: Transport::Http,
        };
        Refusal::PasswordNotAccepted { enrolled: true }.lines(&cx)
    };
    // Off: only a token helps, so the message names the token page alone.
    let off = lines(false);
    assert!(off.iter().all(|l| !l.contains("/2fa/verify")), "{off:?}");
    assert!(
        off[1].contains("https://git.example.com/2fa/tokens"),
        "{off:?}"
    );
    // On: a session makes the password work, so it says where to verify.
    let on = lines(true);
    assert_eq!(
        on,
        [
            "git2fa: team/app requires two-factor authentication (2FA): alice has no open 2FA session, and a password works for git here only during one.",
            "Verify at https://git.example.com/2fa/verify?repo=team/app",
            "then run the same git command again (or use a personal access token from https://git.example.com/2fa/tokens).",
        ]
    );
}

#[test]
fn a_password_of_a_user_without_2fa_is_told_to_set_it_up_as_over_ssh() {
    let operation = Operation::Read;
    for password_for_git in [false, true] {
        let config = config("flagged", "user", password_for_git, true);
        let cx = MessageContext {
            config: &config,
            repo: "team/app",
            user: Some("alice"),
            operation: &operation,
            transport: Transport::Http,
        };
        let lines = Refusal::PasswordNotAccepted { enrolled: false }.lines(&cx);
        let over_ssh = Refusal::NotEnrolled.lines(&MessageContext {
            transport: Transport::Ssh,
            ..cx
        });
        // Both send the user to set up 2FA, never to verify.
        assert_eq!(lines[1], over_ssh[2], "{lines:?}");
        assert!(
            lines.iter().all(|l| !l.contains("/2fa/verify")),
            "{lines:?}"
        );
    }
}
