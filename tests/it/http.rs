//! Git over HTTP through a real nginx + fcgiwrap + git2fa-http: tokens
//! replace passwords once 2FA applies, and every refusal says why.

use std::path::PathBuf;

use git2fa::authz::decision::Permission;
use git2fa::store::Store;

use crate::harness::fixture::{Fixture, PASSWORD};
use crate::harness::nginx::{self, Nginx};
use crate::harness::{Host, Run, run};

struct Setup {
    host: Fixture,
    nginx: Nginx,
    work: PathBuf,
}

/// alice (enrolled, password set), `team/app` (one commit, hooks), and
/// `other`; nginx running.
fn setup(policy: &str) -> Option<Setup> {
    if !nginx::available() {
        return None;
    }
    let host = Host::with_policy(policy, "")
        .user("alice")
        .enrolled()
        .repo("team/app");
    host.bare_repo("other.git");
    let host = host.hooks();
    let work = host.work().to_path_buf();
    let nginx = Nginx::start(&host);
    Some(Setup { host, nginx, work })
}

impl Setup {
    fn token(&self, perm: &str, repo: &str) -> String {
        let run = self
            .host
            .git2fa(&["token", "create", "alice", "--repo", repo, "--perm", perm])
            .ok();
        run.stdout.trim().to_string()
    }

    fn git(&self, args: &[&str]) -> Run {
        let home = self.host.dir.path().display().to_string();
        run("git", args, &self.work, &[("HOME", home)], "")
    }

    fn clone(&self, secret: &str, repo: &str, into: &str) -> Run {
        self.git(&[
            "clone",
            "--quiet",
            &self.nginx.url("alice", secret, repo),
            &format!("../{into}"),
        ])
    }

    fn push(&self, secret: &str, repo: &str) -> Run {
        self.git(&["push", &self.nginx.url("alice", secret, repo), "main"])
    }

    fn commit(&self, message: &str) {
        std::fs::write(self.work.join("README"), message).unwrap();
        self.git(&["commit", "--quiet", "-am", message]).ok();
    }
}

#[track_caller]
fn shows(run: &Run, lines: &[&str]) {
    for line in lines {
        assert!(
            run.stderr.contains(line),
            "{line:?} missing:\n{}",
            run.stderr
        );
    }
}

#[test]
fn tokens_read_and_write_as_scoped() {
    let Some(s) = setup("") else { return };
    s.host
        .git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let read = s.token("read", "team/app");
    s.clone(&read, "team/app.git", "c1").ok();
    assert_eq!(
        std::fs::read_to_string(s.host.dir.path().join("c1/README")).unwrap(),
        "hello\n"
    );

    s.commit("with a read token");
    let refused = s.push(&read, "team/app.git").fails(128);
    shows(
        &refused,
        &[
            "remote: git2fa: team/app: access token #1 is read-only and cannot push.",
            "remote: Create a token with write permission at https://git.example.com/2fa/tokens",
            "The requested URL returned error: 403",
        ],
    );

    let write = s.token("write", "team/*");
    let pushed = s.push(&write, "team/app.git").ok();
    assert!(pushed.stderr.contains("main -> main"), "{}", pushed.stderr);
    // The hook saw who pushed, and with which token.
    let audit = s.host.git2fa(&["audit", "--repo", "team/app"]).ok();
    assert!(audit.stdout.contains(" http alice write allow token repo=team/app refs=refs/heads/main credential=token token=#2 addr=127.0.0.1"), "{}", audit.stdout);
    let listed = s.host.git2fa(&["token", "list", "alice"]).ok();
    assert!(
        !listed
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .contains("last-used=never"),
        "{}",
        listed.stdout
    );

    let elsewhere = s.clone(&read, "other.git", "c2").fails(128);
    shows(
        &elsewhere,
        &["remote: git2fa: other: access token #1 is not valid for this repository."],
    );
}

#[test]
fn expired_and_revoked_tokens_are_refused_with_403() {
    let Some(s) = setup("") else { return };
    let revoked = s.token("read", "team/app");
    s.host.git2fa(&["token", "revoke", "1"]).ok();
    let run = s.clone(&revoked, "team/app", "c1").fails(128);
    shows(
        &run,
        &[
            "remote: git2fa: team/app: access token #1 was revoked.",
            "error: 403",
        ],
    );

    // An expired token, put in the store directly: no clock to wind here.
    let expired = git2fa::factor::token::generate().unwrap();
    let mut store = Store::open(&s.host.store_path()).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    let now = git2fa::system::time::now();
    let id = store
        .add_token(
            alice.id,
            "old",
            &git2fa::factor::token::hash(&expired),
            &["team/app".into()],
            Permission::Read,
            Some(now - 60),
            false,
            now - 86_400,
        )
        .unwrap();
    drop(store);
    let run = s.clone(&expired, "team/app", "c2").fails(128);
    shows(
        &run,
        &[
            &format!("remote: git2fa: team/app: access token #{id} expired on "),
            "error: 403",
        ],
    );
}

#[test]
fn passwords_stop_where_2fa_applies() {
    let Some(s) = setup("") else { return };
    // Not flagged: the password works, as the rules say.
    s.clone(PASSWORD, "team/app", "c1").ok();
    s.host.git2fa(&["repo", "flag", "team/app"]).ok();
    s.clone(PASSWORD, "team/app", "c2").ok();
    s.commit("pushed with a password");
    let refused = s.push(PASSWORD, "team/app").fails(128);
    shows(
        &refused,
        &[
            "remote: git2fa: team/app requires two-factor authentication (2FA): a password is not accepted for git here.",
            "remote: Use a personal access token instead of your password: create one at https://git.example.com/2fa/tokens",
            "error: 403",
        ],
    );
    assert!(
        !refused.stderr.contains("ssh git@"),
        "no SSH advice over HTTP: {}",
        refused.stderr
    );
    let wrong = s.clone("not the password", "team/app", "c3").fails(128);
    shows(&wrong, &["Authentication failed"]);
}

#[test]
fn password_for_git_lets_a_password_through_with_an_open_session() {
    let Some(s) = setup("") else { return };
    let text =
        std::fs::read_to_string(&s.host.config).unwrap() + "[tokens]\npassword_for_git = true\n";
    std::fs::write(&s.host.config, text).unwrap();
    s.host.git2fa(&["repo", "flag", "team/app"]).ok();
    s.commit("password and session");
    s.push(PASSWORD, "team/app").fails(128);
    // An admin opens a session (as if alice verified in the web page).
    let mut store = Store::open(&s.host.store_path()).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    let session = git2fa::store::NewSession {
        ttl: 600,
        key_id: None,
        remote_addr: None,
        opened_via: "web".into(),
    };
    store
        .open_session(alice.id, &session, git2fa::system::time::now())
        .unwrap();
    drop(store);
    s.push(PASSWORD, "team/app").ok();
}

#[test]
fn wrong_passwords_are_throttled() {
    let Some(s) = setup("max_failures = 3") else {
        return;
    };
    for _ in 0..3 {
        s.clone("wrong password", "team/app", "c").fails(128);
    }
    // Now even the right password is not checked for a while.
    let throttled = s.clone(PASSWORD, "team/app", "c").fails(128);
    shows(
        &throttled,
        &[
            "remote: git2fa: team/app: too many wrong passwords for alice; passwords are not checked until",
            "error: 403",
        ],
    );
    // A token still works.
    let token = s.token("read", "team/app");
    s.clone(&token, "team/app", "c").ok();
}

#[test]
fn hostile_requests_through_nginx_start_nothing() {
    let Some(s) = setup("") else { return };
    let auth = format!(
        "Authorization: Basic {}",
        base64_encode(&format!("alice:{PASSWORD}"))
    );
    // nginx answers some of these itself (it normalises `..` away from the
    // /git/ location); either way it is a 400 or a 404, or the 403 of a
    // repository alice may not read, and no git runs.
    for (line, expected) in [
        (
            "GET /git/team/app.git/info/refs?service=git-upload-pack HTTP/1.0",
            &[200][..],
        ),
        (
            "GET /git/../etc/info/refs?service=git-upload-pack HTTP/1.0",
            &[400, 404],
        ),
        (
            "GET /git/team/%2e%2e/%2e%2e/etc/info/refs?service=git-upload-pack HTTP/1.0",
            &[400, 404],
        ),
        (
            "GET /git/%2e%2e%2f%2e%2e%2fetc/info/refs?service=git-upload-pack HTTP/1.0",
            &[400, 404],
        ),
        (
            "GET /git//etc/info/refs?service=git-upload-pack HTTP/1.0",
            &[400, 403, 404],
        ),
        (
            "GET /git/team/app.git%00/info/refs?service=git-upload-pack HTTP/1.0",
            &[400, 404],
        ),
        ("GET /git/team/app.git/HEAD HTTP/1.0", &[404]),
        (
            "GET /git/nope.git/info/refs?service=git-upload-pack HTTP/1.0",
            &[403],
        ),
    ] {
        let (status, body) = s.nginx.raw(line, &[&auth, "User-Agent: git/2.47.3"]);
        assert!(
            expected.contains(&status),
            "{line}: {status} {body}\n{}",
            nginx::logs(&s.host)
        );
    }
    let audit = s.host.git2fa(&["audit"]).ok();
    assert_eq!(
        audit
            .stdout
            .lines()
            .filter(|l| l.contains(" allow "))
            .count(),
        1,
        "only the first request was allowed:\n{}",
        audit.stdout
    );
    let huge = format!("Authorization: Basic {}", "QUFB".repeat(3000));
    let (status, _) = s.nginx.raw(
        "GET /git/team/app.git/info/refs?service=git-upload-pack HTTP/1.0",
        &[&huge],
    );
    assert_eq!(status, 400);
    let (status, body) = s.nginx.raw(
        "GET /git/team/app.git/info/refs?service=git-upload-pack HTTP/1.0",
        &[],
    );
    assert_eq!(status, 401, "{body}");
}

pub(crate) fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn a_push_with_a_token_about_to_expire_says_so() {
    let Some(s) = setup("") else { return };
    let run = s
        .host
        .git2fa(&[
            "token",
            "create",
            "alice",
            "--repo",
            "team/*",
            "--perm",
            "write",
            "--expires-days",
            "3",
        ])
        .ok();
    let soon = run.stdout.trim().to_string();
    s.commit("soon");
    let pushed = s.push(&soon, "team/app").ok();
    shows(
        &pushed,
        &[
            "remote: git2fa: note: access token #1 expires on ",
            "; create a new one at https://git.example.com/2fa/tokens",
        ],
    );
    let later = s.token("write", "team/*");
    s.commit("later");
    let pushed = s.push(&later, "team/app").ok();
    assert!(!pushed.stderr.contains("expires on"), "{}", pushed.stderr);
}

// Attack (tokens outlive 2FA): `git2fa token create` minted a token for a
// user who had never enrolled, and rule 4 let it open a repository that
// requires 2FA for everything. Now it takes `--without-2fa`, and such a
// token is marked in listings and audit rows.
#[test]
fn a_token_for_a_user_without_2fa_needs_the_service_account_flag() {
    let Some(s) = setup("git = \"all\"") else {
        return;
    };
    s.host.add_user("ci");
    let before = s.host.store_snapshot();
    let refused = s
        .host
        .git2fa(&[
            "token", "create", "ci", "--repo", "team/app", "--perm", "read",
        ])
        .fails(1);
    assert!(
        refused.stderr.contains(
            "ci has not set up 2FA, so a token would carry no second factor; \
             enrol them first (git2fa user enroll ci), or pass --without-2fa for a service account"
        ),
        "{refused:?}"
    );
    assert!(refused.stdout.is_empty());
    assert_eq!(s.host.store_snapshot(), before, "nothing was written");

    let minted = s
        .host
        .git2fa(&[
            "token",
            "create",
            "ci",
            "--repo",
            "team/app",
            "--perm",
            "read",
            "--without-2fa",
        ])
        .ok();
    assert!(minted.stderr.contains("minted without 2FA"), "{minted:?}");
    let secret = minted.stdout.trim();
    let list = s.host.git2fa(&["token", "list", "ci"]).ok().stdout;
    assert!(list.contains(" active without-2fa "), "{list}");
    let url = s.nginx.url("ci", secret, "team/app");
    s.git(&["clone", "--quiet", &url, "../ci-clone"]).ok();
    let audit = s.host.git2fa(&["audit", "--user", "ci"]).ok().stdout;
    assert!(audit.contains("credential=token-without-2fa"), "{audit}");
    assert!(
        audit.contains("token-create ok") && audit.contains("without-2fa"),
        "{audit}"
    );
}

// Attack (tokens outlive 2FA): alice lost her phone; the admin ran the
// guide's `git2fa user reset-2fa`, but her tokens, minted with the lost
// second factor, kept opening repositories that require 2FA. A reset
// revokes them and says how many; `--keep-tokens` keeps them.
#[test]
fn reset_2fa_revokes_tokens_unless_told_to_keep_them() {
    let Some(s) = setup("git = \"all\"") else {
        return;
    };
    let token = s.token("read", "team/app");
    s.clone(&token, "team/app", "c1").ok();
    let reset = s.host.git2fa(&["user", "reset-2fa", "alice"]).ok();
    assert_eq!(
        reset.stdout.trim(),
        "removed 2FA from alice: secret and recovery codes are gone; 0 2FA sessions ended; 1 token revoked",
        "{reset:?}"
    );
    let run = s.clone(&token, "team/app", "c2").fails(128);
    shows(
        &run,
        &["remote: git2fa: team/app: access token #1 was revoked."],
    );

    s.host.enroll("alice");
    let kept = s.token("read", "team/app");
    let reset = s
        .host
        .git2fa(&["user", "reset-2fa", "alice", "--keep-tokens"])
        .ok();
    assert!(reset.stdout.ends_with("tokens kept\n"), "{reset:?}");
    s.clone(&kept, "team/app", "c3").ok();
}
