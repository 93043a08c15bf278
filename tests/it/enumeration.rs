//! A repository that does not exist and one the caller may not read get
//! the same answer on every transport, whatever the credential, so that
//! nobody learns which private repositories exist.

use crate::harness::fixture::Fixture;
use crate::harness::nginx::{self, Nginx};
use crate::harness::sshd::{Sshd, keygen};
use crate::harness::{Host, Run, run, work_tree};

/// `private` (only dora may read it) and no `ghost`; alice with a key and
/// a token for every repository.
fn setup() -> Option<(Fixture, String)> {
    if !nginx::available() || !crate::harness::sshd::available() {
        return None;
    }
    let host = Host::new().user("alice").enrolled().user("dora");
    let private = host.bare_repo("private.git");
    std::fs::write(
        private.join("git2fa.toml"),
        "require = \"off\"\nreaders = [\"dora\"]\nwriters = [\"dora\"]\n",
    )
    .unwrap();
    let token = host.token("alice", "**", "write", &[]);
    Some((host, token))
}

/// git in a work tree with one commit (made on first use).
fn git(host: &Host, args: &[&str], env: &[(&str, String)]) -> Run {
    let work = host.dir.path().join("work");
    if !work.exists() {
        work_tree(host.dir.path(), "work");
    }
    let mut env = env.to_vec();
    env.push(("HOME", host.dir.path().display().to_string()));
    run("git", args, &work, &env, "")
}

/// What the user sees, with the repository's name taken out. Sorted by
/// line: over SSH, the server's standard error and git's own lines reach
/// the terminal in either order.
fn seen(run: &Run, name: &str) -> (i32, Vec<String>) {
    let mut lines: Vec<String> = run
        .stderr
        .replace(name, "REPO")
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    (run.code, lines)
}

#[track_caller]
fn same_answer(private: &Run, ghost: &Run) {
    assert_eq!(
        seen(private, "private"),
        seen(ghost, "ghost"),
        "\nprivate: {private:?}\nghost: {ghost:?}"
    );
}

// Attack: with any user name and a made-up token of the right format and
// checksum, an existing private repository answered 401 and a missing one
// 404, unthrottled: anyone could list the private repositories. Over SSH,
// any registered key could tell "may not read" from "not found".
#[test]
fn a_missing_repository_answers_as_a_private_one_over_http() {
    let Some((host, token)) = setup() else { return };
    let nginx = Nginx::start(&host);
    let made_up = git2fa::factor::token::generate().unwrap();
    for (user, secret) in [
        ("mallory", made_up.as_str()),
        ("alice", made_up.as_str()),
        ("alice", "a wrong password"),
        ("alice", token.as_str()),
    ] {
        let ls = |repo: &str| git(&host, &["ls-remote", &nginx.url(user, secret, repo)], &[]);
        let (private, ghost) = (ls("private.git"), ls("ghost.git"));
        assert_eq!(private.code, 128, "{private:?}");
        same_answer(&private, &ghost);
        let (private, ghost) = (
            git(
                &host,
                &["push", &nginx.url(user, secret, "private.git"), "HEAD"],
                &[],
            ),
            git(
                &host,
                &["push", &nginx.url(user, secret, "ghost.git"), "HEAD"],
                &[],
            ),
        );
        same_answer(&private, &ghost);
    }
    // With alice's own token, both say the same thing, and what it says.
    let url = |repo: &str| nginx.url("alice", &token, repo);
    let ghost = git(&host, &["ls-remote", &url("ghost.git")], &[]);
    assert!(
        ghost
            .stderr
            .contains("remote: git2fa: ghost: no such repository, or alice may not read it."),
        "{ghost:?}"
    );
    assert!(ghost.stderr.contains("403"), "{ghost:?}");
    // Raw requests: the same status and body.
    let auth = format!(
        "Authorization: Basic {}",
        crate::http::base64_encode(&format!("mallory:{made_up}"))
    );
    let private = nginx.raw(
        "GET /git/private.git/info/refs?service=git-upload-pack HTTP/1.0",
        &[&auth],
    );
    let ghost = nginx.raw(
        "GET /git/ghost.git/info/refs?service=git-upload-pack HTTP/1.0",
        &[&auth],
    );
    assert_eq!(private.0, 401);
    assert_eq!(
        (private.0, private.1.replace("private", "REPO")),
        (ghost.0, ghost.1.replace("ghost", "REPO"))
    );
    // The admin's audit log tells them apart.
    let audit = host.git2fa(&["audit", "--repo", "ghost"]).ok().stdout;
    assert!(audit.contains("detail=no such repository"), "{audit}");
}

#[test]
fn a_missing_repository_answers_as_a_private_one_over_ssh() {
    let Some((host, _)) = setup() else { return };
    let key = host.dir.path().join("alice_key");
    keygen(&key);
    host.git2fa(&["key", "add", "alice", &format!("{}.pub", key.display())])
        .ok();
    let sshd = Sshd::start(&host);
    let ssh = [("GIT_SSH_COMMAND", sshd.ssh_command(&key))];
    for verb in ["ls-remote", "push"] {
        let args = |repo: &str| -> Vec<String> {
            let mut args = vec![verb.to_string(), sshd.url(repo)];
            if verb == "push" {
                args.push("HEAD".into());
            }
            args
        };
        let go = |repo: &str| {
            let args = args(repo);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            git(&host, &args, &ssh)
        };
        let (private, ghost) = (go("private.git"), go("ghost.git"));
        assert_ne!(private.code, 0, "{private:?}");
        same_answer(&private, &ghost);
        assert!(
            ghost
                .stderr
                .contains("git2fa: ghost: no such repository, or alice may not read it."),
            "{ghost:?}"
        );
    }
}
