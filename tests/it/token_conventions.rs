//! Tokens where people put them, by the habits of other forges, through
//! git's own credential helper (`git credential-store`): the token as the
//! user name with an empty password (GitHub's `https://TOKEN@host/…`), the
//! token pasted twice, and a fixed user name with the token as password
//! (`x-access-token`, `oauth2`, `x-token-auth`, `git`), besides the user's
//! own name. Each clones and pushes through serve's `/git/` and through
//! nginx + `git2fa-http`, the helper keeps the credential, and a token
//! never comes back: not in what git prints, not in the audit log, not in
//! a log line.

use std::path::Path;

use crate::harness::nginx::{self, Nginx};
use crate::harness::web_server::{self, Server};
use crate::harness::{Run, free_port, run};

/// (user name, password) as a user types them, for `token`.
fn conventions(token: &str) -> Vec<(String, String)> {
    let mut all = vec![
        (token.to_string(), String::new()),
        (token.to_string(), token.to_string()),
        ("alice".to_string(), token.to_string()),
    ];
    for name in ["x-access-token", "oauth2", "x-token-auth", "git"] {
        all.push((name.to_string(), token.to_string()));
    }
    all
}

/// git with `credential.helper = store --file FILE` and no other
/// configuration, in `cwd`.
fn git(home: &Path, cwd: &Path, store: &Path, args: &[&str]) -> Run {
    let helper = format!("store --file={}", store.display());
    let mut all = vec!["-c", "credential.helper=", "-c"];
    let setting = format!("credential.helper={helper}");
    all.push(&setting);
    all.extend_from_slice(args);
    run(
        "git",
        &all,
        cwd,
        &[("HOME", home.display().to_string())],
        "",
    )
}

#[test]
fn every_token_convention_works_through_a_credential_helper_and_no_token_is_shown_or_kept() {
    if !nginx::available() {
        return;
    }
    let port = free_port();
    let f = web_server::host(port, "")
        .user("alice")
        .enrolled()
        .repo("team/app")
        .hooks();
    f.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let server = Server::start(&f, port);
    let nginx = Nginx::start(&f);
    let token = f
        .git2fa(&[
            "token", "create", "alice", "--repo", "team/*", "--perm", "write",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    // Well formed, checksum and all, but never issued.
    let unknown = git2fa::factor::token::generate().unwrap();
    let home = f.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut printed = String::new();
    let front_ends = [
        ("serve's /git/", server.port),
        ("nginx with git2fa-http", nginx.port),
    ];
    for (n, (user, password)) in conventions(&token).into_iter().enumerate() {
        for (front, port) in front_ends {
            let what = format!("{front}, user {:.12}…, password {:.12}…", user, password);
            let origin = format!("http://127.0.0.1:{port}");
            let url = format!("{origin}/git/team/app.git");
            let store = f.dir.path().join(format!("credentials-{n}-{port}"));
            let credential = format!(
                "http://{}:{}@",
                git2fa::system::url::url_component(&user),
                git2fa::system::url::url_component(&password)
            );
            std::fs::write(&store, format!("{credential}127.0.0.1:{port}\n")).unwrap();
            let dest = format!("clone-{n}-{port}");
            let clone = git(
                &home,
                f.dir.path(),
                &store,
                &["clone", "--quiet", &url, &dest],
            );
            printed += &format!("{}{}", clone.stdout, clone.stderr);
            assert_eq!(clone.code, 0, "{what}: {clone:?}");
            let work = f.dir.path().join(&dest);
            std::fs::write(work.join(format!("file-{n}-{port}")), "x\n").unwrap();
            run("git", &["add", "."], &work, &[], "").ok();
            run("git", &["commit", "--quiet", "-m", &what], &work, &[], "").ok();
            let push = git(
                &home,
                &work,
                &store,
                &["push", "--quiet", "origin", "HEAD:main"],
            );
            printed += &format!("{}{}", push.stdout, push.stderr);
            assert_eq!(push.code, 0, "{what}: {push:?}");
            // The helper was told the credential worked (it writes it
            // back), not to erase it.
            let kept = std::fs::read_to_string(&store).unwrap();
            assert!(
                kept.lines().count() == 1 && kept.starts_with(&credential),
                "{what}: {kept}"
            );
        }
    }

    // An unknown token in each place is refused; the helper erases it, as
    // it should a credential that does not work, and nothing prints it.
    for (n, (user, password)) in conventions(&unknown).into_iter().enumerate() {
        for (front, port) in front_ends {
            let what = format!("{front}, unknown token, user {:.12}…", user);
            let store = f.dir.path().join(format!("unknown-{n}-{port}"));
            std::fs::write(
                &store,
                format!(
                    "http://{}:{}@127.0.0.1:{port}\n",
                    git2fa::system::url::url_component(&user),
                    git2fa::system::url::url_component(&password)
                ),
            )
            .unwrap();
            let url = format!("http://127.0.0.1:{port}/git/team/app.git");
            let refused = git(&home, f.dir.path(), &store, &["ls-remote", &url]);
            printed += &format!("{}{}", refused.stdout, refused.stderr);
            assert_eq!(refused.code, 128, "{what}: {refused:?}");
            assert!(
                refused.stderr.contains("Authentication failed"),
                "{what}: {refused:?}"
            );
            assert_eq!(std::fs::read_to_string(&store).unwrap(), "", "{what}");
        }
    }

    // The audit log names alice for every operation with the real token,
    // and never a token.
    let audit = f
        .git2fa(&["audit", "--limit", "1000", "--json"])
        .ok()
        .stdout;
    let http_rows: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\"transport\":\"http\""))
        .collect();
    assert!(http_rows.len() >= 4 * 7, "{audit}");
    let unknown_rows = audit
        .lines()
        .filter(|l| l.contains("not known") || l.contains("token-unknown"))
        .count();
    assert!(unknown_rows >= 7, "{audit}");
    drop(server);
    drop(nginx);
    let logs = format!(
        "{}\n{}",
        std::fs::read_to_string(f.dir.path().join("serve.log")).unwrap(),
        nginx::logs(&f)
    );
    for secret in [&token, &unknown] {
        // Any 12 characters of a token's random part are as good as all of it
        // to whoever looks for it.
        let body = &secret[git2fa::factor::token::PREFIX.len()..][..12];
        for (place, text) in [
            ("git's output", &printed),
            ("the audit log", &audit),
            ("the logs", &logs),
        ] {
            assert!(!text.contains(body), "{place} holds a token:\n{text}");
        }
    }
}
