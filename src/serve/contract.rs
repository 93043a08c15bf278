//! The contract every transport keeps, as one table run in-process: each
//! case (who, with which credential, on which repository and policy, doing
//! what, with or without a 2FA session, with the store sound or broken)
//! goes through the SSH shim (`transport::shell`), serve's SSH server
//! (russh over an in-memory stream), the CGI (`transport::cgi`), serve's
//! `/git/` (the router, in memory) and the hooks (`transport::hook`), with
//! a temporary store and no root. Each must reach the case's decision, say
//! the same refusal in its own framing (an `ERR` pkt-line and the lines
//! on stderr; an HTTP status and the lines as the body; `remote:` lines),
//! and write the same audit row. The end-to-end tests keep what only real
//! servers show.
mod case;
mod host;
mod through;

use case::*;

use crate::authz::decision::Transport;
use crate::store::AuditRecord;
use host::{Host, PASSWORD};
use through::*;

/// The table, a case a line: name, credential, repository, operation,
/// session open? => at the front, in the hook; then what sets it apart.
macro_rules! table {
    ($($name:literal: $credential:expr, $repo:literal, $op:expr, $session:literal => $front:expr, $hook:expr $(, [$($flag:ident),*])?;)*) => {
        vec![$(Case {
            name: $name,
            credential: $credential,
            repo: $repo,
            op: $op,
            session: $session,
            front: $front,
            hook: $hook,
            flags: &[$($(Flag::$flag),*)?],
        }),*]
    };
}

fn cases() -> Vec<Case> {
    use Credential::*;
    use Expect::*;
    use Op::*;
    const MAIN: Op = Push("refs/heads/main");
    const TOPIC: Op = Push("refs/heads/topic");
    table! {
        // Rule 3: no 2FA where the repository asks for none.
        "key, open repo, read": Key("alice"), "open", Read, false => Allow, Allow;
        "key, open repo, push": Key("alice"), "open", MAIN, false => Allow, Allow;
        "key, push-flagged repo, read": Key("alice"), "flagged", Read, false => Allow, Allow;
        // Rule 7: a session opens what 2FA guards; without one, refused.
        "key, push-flagged, push, no session": Key("alice"), "flagged", MAIN, false => Refuse(NO_SESSION, 403), Allow;
        "key, push-flagged, push, session": Key("alice"), "flagged", MAIN, true => Allow, Allow;
        "key, all-flagged, read, no session": Key("alice"), "everything", Read, false => Refuse(NO_SESSION, 403), Allow;
        "key, all-flagged, read, session": Key("alice"), "everything", Read, true => Allow, Allow;
        // Rule 2: the user's own choice, on a repository that asks for none.
        "key, always-2FA user, open repo, no session": Key("erin"), "open", Read, false => Refuse(NO_SESSION, 403), Allow;
        // Protected refs: the front leaves them to the hooks.
        "key, protected main, no session": Key("alice"), "protected", MAIN, false => Allow, Refuse(NO_SESSION, 403);
        "key, protected repo, a topic branch": Key("alice"), "protected", TOPIC, false => Allow, Allow;
        "key, protected main, session": Key("alice"), "protected", MAIN, true => Allow, Allow;
        // Rule 6: not enrolled.
        "key, not enrolled": Key("bob"), "everything", Read, false => Refuse("has not set up 2FA yet.", 403), Allow;
        // Rule 1: disabled; no right on the repository; no repository.
        "key, disabled user": Key("carol"), "open", Read, false => Refuse("the account carol is disabled.", 403), Allow, [RefusedAtSshLogin];
        "key, private repo": Key("alice"), "private", Read, false => Refuse("no such repository, or alice may not read it.", 403), Allow;
        "key, no such repo": Key("alice"), "nothere", Read, false => Refuse("no such repository, or alice may not read it.", 403), Allow;
        "key, locked account": Key("dave"), "everything", Read, false => Refuse("requires two-factor authentication (2FA) to read", 403), Allow;
        // Rule 0: a key that is no more.
        "removed key": Key("removed"), "open", Read, false => Refuse("this SSH key is not registered with git2fa.", 401), Allow, [RefusedAtSshLogin];
        // Rule 4: a token carries the second factor.
        "token, push-flagged, push, no session": Token("write"), "flagged", MAIN, false => Allow, Allow;
        "token, all-flagged, read, no session": Token("write"), "everything", Read, false => Allow, Allow;
        "token, protected main, no session": Token("write"), "protected", MAIN, false => Allow, Allow;
        // Rule 0: a token that falls short.
        "read-only token, push": Token("read"), "flagged", MAIN, false => Refuse("is read-only and cannot push.", 403), Allow;
        "token out of scope": Token("open-only"), "flagged", Read, false => Refuse("is not valid for this repository.", 403), Allow;
        "expired token": Token("expired"), "open", Read, false => Refuse("expired on", 403), Allow;
        "revoked token": Token("revoked"), "open", Read, false => Refuse("was revoked.", 403), Allow;
        "malformed token": Token("malformed"), "open", Read, false => Refuse("the access token is not a valid git2fa token", 401), Allow;
        "token, private repo": Token("write"), "private", Read, false => Refuse("no such repository, or alice may not read it.", 403), Allow;
        // Rule 5: a password where 2FA applies...
        "password, open repo": Password("alice", PASSWORD), "open", Read, false => Allow, Allow;
        "password, push-flagged, push": Password("alice", PASSWORD), "flagged", MAIN, true => Refuse("a password is not accepted for git here.", 403), Allow;
        // ... unless the admin lets it through during a session.
        "password_for_git, push, no session": Password("alice", PASSWORD), "flagged", MAIN, false => Refuse(NO_SESSION_PASSWORD, 403), Allow, [PasswordForGit];
        "password_for_git, push, session": Password("alice", PASSWORD), "flagged", MAIN, true => Allow, Allow, [PasswordForGit];
        "wrong password": Password("alice", "guess"), "open", Read, false => Refuse("wrong user name, password or token.", 401), Allow;
        "no credential": Nothing, "open", Read, false => Refuse("authentication required.", 401), Allow, [NotAudited];
        // Rule 8: the store broken.
        "key, broken store": Key("alice"), "open", Read, false => Refuse("2FA check unavailable", 403), Allow, [BrokenStore];
        "token, broken store": Token("write"), "open", Read, false => Refuse("2FA check unavailable", 403), Allow, [BrokenStore];
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Shell,
    ServeSsh,
    Cgi,
    ServeHttp,
}

fn transports(case: &Case) -> &'static [Via] {
    match case.credential {
        Credential::Key(_) => &[Via::Shell, Via::ServeSsh],
        _ => &[Via::Cgi, Via::ServeHttp],
    }
}

fn check(case: &Case, seen: &Seen, expect: Expect, via: &str) {
    let at = format!("{} through {via}", case.name);
    if seen.login_refused {
        assert!(
            case.has(Flag::RefusedAtSshLogin),
            "{at}: the key was refused at log-in"
        );
        return;
    }
    match expect {
        Expect::Allow => assert!(seen.allowed, "{at}: refused, {seen:?}"),
        Expect::Refuse(text, status) => {
            assert!(!seen.allowed, "{at}: allowed");
            let first = seen.lines.first().map(String::as_str).unwrap_or("");
            assert!(first.starts_with("git2fa: "), "{at}: {:?}", seen.lines);
            assert!(
                seen.lines.iter().any(|l| l.contains(text)),
                "{at}: {text:?} not in {:?}",
                seen.lines
            );
            if let Some(seen_status) = seen.status {
                assert_eq!(seen_status, status, "{at}: HTTP status, {:?}", seen.lines);
            }
            // A refusal for want of a session ends with where to verify:
            // the page, over SSH also the command, as users type them.
            if text == NO_SESSION_PASSWORD {
                let verify = format!(
                    "Verify at https://git.example.com/2fa/verify?repo={}",
                    case.repo
                );
                assert!(seen.lines.contains(&verify), "{at}: {:?}", seen.lines);
                assert!(
                    seen.lines
                        .last()
                        .is_some_and(|l| l.starts_with("then run the same git command again")),
                    "{at}: {:?}",
                    seen.lines
                );
            }
            if text == NO_SESSION {
                let repo = case.repo;
                let mut tail = vec![format!(
                    "Verify at https://git.example.com/2fa/verify?repo={repo}"
                )];
                if matches!(case.credential, Credential::Key(_)) {
                    tail.push("or run: ssh git@git.example.com 2fa verify".into());
                }
                tail.push("then run the same git command again.".into());
                assert!(
                    seen.lines.ends_with(&tail),
                    "{at}: {:?} does not end with {tail:?}",
                    seen.lines
                );
                assert!(
                    first.starts_with(&format!("git2fa: {repo} requires two-factor")),
                    "{at}: {first}"
                );
            }
            // Every refusal tells the user what to do next: a page, a
            // command, or whom to ask.
            let all = seen.lines.join("\n");
            assert!(
                all.contains("https://git.example.com/")
                    || all.contains("admin")
                    || all.contains("owner"),
                "{at}: nothing to act on in {:?}",
                seen.lines
            );
        }
    }
}

/// The audit row a decision wrote, without what differs by transport or
/// time.
fn audit_key(row: &AuditRecord) -> (Option<String>, Option<String>, String, String, String) {
    (
        row.user.clone(),
        row.repo.clone(),
        row.action.clone(),
        row.outcome.clone(),
        row.reason.clone(),
    )
}

/// What a transport did with a case, and the audit row it wrote.
type Through = (Via, Seen, Option<(i64, AuditRecord)>);

#[test]
fn every_transport_keeps_the_same_contract() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sound = Host::new();
    let broken = Host::new();
    broken.break_store();
    let passwords = Host::with("[tokens]\npassword_for_git = true\n");
    for case in cases() {
        let host = match (case.has(Flag::BrokenStore), case.has(Flag::PasswordForGit)) {
            (true, _) => &broken,
            (false, true) => &passwords,
            (false, false) => &sound,
        };
        if !case.has(Flag::BrokenStore) {
            host.session(case.session);
        }
        let mut seen_front: Vec<Through> = Vec::new();
        for &via in transports(&case) {
            let before = (!case.has(Flag::NotAudited) && !case.has(Flag::BrokenStore))
                .then(|| host.newest_audit().0);
            let seen = match via {
                Via::Shell => through_shell(host, &case),
                Via::ServeSsh => through_serve_ssh(host, &case, &runtime),
                Via::Cgi => through_cgi(host, &case),
                Via::ServeHttp => through_serve_http(host, &case, &runtime),
            };
            check(&case, &seen, case.front, &format!("{via:?}"));
            if seen.login_refused {
                continue;
            }
            let row = before.map(|before| {
                let row = host.newest_audit();
                assert!(
                    row.0 > before,
                    "{} through {via:?}: no audit row",
                    case.name
                );
                row
            });
            seen_front.push((via, seen, row));
        }
        // The same refusal, word for word, and the same audit row, by
        // every transport of the case.
        let (first_via, first, first_row) = &seen_front[0];
        for (via, seen, row) in &seen_front[1..] {
            assert_eq!(
                seen.lines, first.lines,
                "{}: {via:?} and {first_via:?} say it differently",
                case.name
            );
            if let (Some(row), Some(first_row)) = (row, first_row) {
                assert_eq!(
                    audit_key(&row.1),
                    audit_key(&first_row.1),
                    "{}: {via:?} and {first_via:?} audit it differently",
                    case.name
                );
            }
        }
        // A push the front allowed reaches the hooks.
        if let (Op::Push(_), Expect::Allow, false) =
            (case.op, case.front, case.has(Flag::BrokenStore))
        {
            let before = host.newest_audit().0;
            let seen = through_hook(host, &case);
            check(&case, &seen, case.hook, "the update hook");
            let row = host.newest_audit();
            assert!(
                row.0 > before,
                "{} through the hook: no audit row",
                case.name
            );
            let transport = match case.credential {
                Credential::Key(_) => Transport::Ssh,
                _ => Transport::Http,
            };
            assert_eq!(row.1.transport, transport.as_str(), "{}", case.name);
            // Refused by the hook, it reads as the front's refusals read.
            if let Expect::Refuse(..) = case.hook {
                let front = match case.credential {
                    Credential::Key(_) => through_shell_as_if_refused(host, &case),
                    _ => None,
                };
                if let Some(front) = front {
                    assert_eq!(
                        seen.lines, front,
                        "{}: the hook says it differently",
                        case.name
                    );
                }
            }
        }
    }
}

/// The lines the SSH shim gives for the same refusal, when the push is
/// refused at the front (the policy without its protected refs): what the
/// hook's must match.
fn through_shell_as_if_refused(host: &Host, case: &Case) -> Option<Vec<String>> {
    let flagged = Case {
        repo: "flagged",
        ..*case
    };
    let seen = through_shell(host, &flagged);
    (!seen.allowed).then(|| {
        seen.lines
            .into_iter()
            .map(|l| l.replace("flagged", case.repo))
            .collect()
    })
}
