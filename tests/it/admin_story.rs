//! A full admin story through the real `git2fa` binary.

use crate::harness::{Host, code, file_mode};

#[test]
fn init_creates_a_private_store_and_key() {
    let host = Host::new();
    assert_eq!(file_mode(&host.data), 0o700);
    assert_eq!(file_mode(&host.store_path()), 0o600);
    assert_eq!(file_mode(&host.data.join("secret.key")), 0o600);
    assert_eq!(
        std::fs::metadata(host.data.join("secret.key"))
            .unwrap()
            .len(),
        32
    );
    // Running it again changes nothing and says so.
    let key = std::fs::read(host.data.join("secret.key")).unwrap();
    let run = host.git2fa(&["init"]).ok();
    assert!(run.stdout.contains("is ready"), "{run:?}");
    assert_eq!(std::fs::read(host.data.join("secret.key")).unwrap(), key);
    host.git2fa(&["check"]).ok();
}

#[test]
fn init_writes_a_commented_config_when_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("etc/config.toml");
    let out = std::process::Command::new(crate::harness::BIN)
        .arg("--config")
        .arg(&config)
        .args(["init", "--repos-root"])
        .arg(dir.path().join("repos"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("# How long a verified 2FA session lasts"),
        "{text}"
    );
    assert!(text.contains("session_ttl = \"1h\""));
    assert!(dir.path().join("data/git2fa.db").exists());
}

#[test]
fn the_whole_story() {
    let host = Host::with_policy("max_failures = 3\nlockout = \"15m\"", "");
    host.bare_repo("team/app.git");

    // Users.
    host.add_user("alice");
    let again = host
        .git2fa_with_stdin(
            &["user", "add", "alice", "--password-stdin"],
            "another password\n",
        )
        .fails(1);
    assert_eq!(again.stderr, "git2fa: user alice already exists\n");
    let list = host.git2fa(&["user", "list"]).ok();
    assert_eq!(list.stdout, "alice enabled not-enrolled\n");

    // A flagged repository refuses a user who has not enrolled.
    let flag = host.git2fa(&["repo", "flag", "team/app"]).ok();
    assert_eq!(flag.stdout, "team/app: 2FA required for every push\n");
    let explain = host
        .git2fa(&["explain", "alice", "team/app", "write"])
        .fails(1);
    assert!(
        explain
            .stdout
            .starts_with("refused by rule 6 (not-enrolled)"),
        "{explain:?}"
    );
    assert!(
        explain
            .stdout
            .contains("Set it up at https://git.example.com/2fa/setup"),
        "{explain:?}"
    );

    // Enrol: the codes come from the printed otpauth:// URI.
    let (secret, recovery) = host.enroll("alice");
    assert_eq!(recovery.len(), 10);
    assert!(
        recovery
            .iter()
            .all(|c| c.len() == 14 && c.matches('-').count() == 2),
        "{recovery:?}"
    );
    host.git2fa(&["user", "enroll", "alice"]).fails(1);

    let explain = host
        .git2fa(&["explain", "alice", "team/app", "write"])
        .fails(1);
    assert!(
        explain.stdout.starts_with("refused by rule 7 (no-session)"),
        "{explain:?}"
    );
    assert!(
        explain
            .stdout
            .contains("2FA required: yes, the repository's git2fa.toml requires 2FA"),
        "{explain:?}"
    );
    assert!(
        explain
            .stdout
            .contains("Verify at https://git.example.com/2fa/verify?repo=team/app"),
        "{explain:?}"
    );
    let read = host.git2fa(&["explain", "alice", "team/app", "read"]).ok();
    assert_eq!(
        read.stdout,
        "allowed by rule 3 (not-required): 2FA is not required for this operation\n2FA required: no\n"
    );

    // Verify, then the same code again.
    let now_code = code(&secret, 0);
    let verified = host.git2fa(&["verify", "alice", &now_code]).ok();
    assert!(
        verified
            .stdout
            .starts_with("verified alice with a TOTP code: 2FA session #"),
        "{verified:?}"
    );
    let replay = host.git2fa(&["verify", "alice", &now_code]).fails(1);
    assert!(replay.stderr.contains("already used"), "{replay:?}");
    let explain = host.git2fa(&["explain", "alice", "team/app", "write"]).ok();
    assert!(
        explain
            .stdout
            .starts_with("allowed by rule 7 (session): an open 2FA session"),
        "{explain:?}"
    );
    let sessions = host.git2fa(&["session", "list", "alice"]).ok();
    assert_eq!(sessions.stdout.lines().count(), 1, "{sessions:?}");
    assert!(sessions.stdout.contains(" via cli until "), "{sessions:?}");
    host.git2fa(&["session", "end", "--user", "alice"]).ok();
    host.git2fa(&["explain", "alice", "team/app", "write"])
        .fails(1);

    // Lock the account with wrong codes; even a right code is refused then.
    let wrong = if now_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let first = host.git2fa(&["verify", "alice", wrong]).fails(1);
    // The replay above was not counted: it proves nothing.
    assert!(
        first
            .stderr
            .contains("wrong code for alice; 2 more wrong codes lock the account"),
        "{first:?}"
    );
    host.git2fa(&["verify", "alice", wrong]).fails(1);
    let locked = host.git2fa(&["verify", "alice", wrong]).fails(1);
    assert!(
        locked
            .stderr
            .contains("alice is locked after too many wrong codes until"),
        "{locked:?}"
    );
    let still = host
        .git2fa(&["verify", "alice", &code(&secret, 1)])
        .fails(1);
    assert!(still.stderr.contains("locked"), "{still:?}");
    let explain = host
        .git2fa(&["explain", "alice", "team/app", "write"])
        .fails(1);
    assert!(
        explain
            .stdout
            .starts_with("refused by rule 7 (account-locked)"),
        "{explain:?}"
    );
    assert!(
        host.git2fa(&["user", "show", "alice"])
            .ok()
            .stdout
            .contains("locked-until=")
    );
    host.git2fa(&["user", "unlock", "alice"]).ok();

    // A recovery code works once.
    host.git2fa(&["verify", "alice", &recovery[0].to_lowercase()])
        .ok();
    let reused = host.git2fa(&["verify", "alice", &recovery[0]]).fails(1);
    assert!(reused.stderr.contains("already used"), "{reused:?}");
    host.git2fa(&["session", "end", "--user", "alice"]).ok();

    // Tokens: create, list, use in explain, revoke.
    let created = host
        .git2fa(&[
            "token", "create", "alice", "--repo", "team/app", "--perm", "read", "--name", "laptop",
        ])
        .ok();
    let token = created.stdout.trim().to_string();
    assert!(
        token.starts_with("g2fa_") && token.len() == 43,
        "{created:?}"
    );
    assert!(
        created
            .stderr
            .starts_with("token #1 for alice: read on team/app, expires "),
        "{created:?}"
    );
    let list = host.git2fa(&["token", "list", "alice"]).ok();
    assert!(
        list.stdout
            .starts_with("token #1 alice \"laptop\" read team/app active expires="),
        "{list:?}"
    );
    assert!(!list.stdout.contains(&token), "a token is shown once");
    let push = host
        .git2fa(&["explain", "alice", "team/app", "write", "--token", "1"])
        .fails(1);
    assert!(
        push.stdout
            .starts_with("refused by rule 0 (token-read-only)"),
        "{push:?}"
    );
    host.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let read = host
        .git2fa(&["explain", "alice", "team/app", "read", "--token", "1"])
        .ok();
    assert!(
        read.stdout.starts_with("allowed by rule 4 (token)"),
        "{read:?}"
    );
    host.git2fa(&["token", "revoke", "1"]).ok();
    host.git2fa(&["token", "revoke", "1"]).fails(1);
    let revoked = host
        .git2fa(&["explain", "alice", "team/app", "read", "--token", "1"])
        .fails(1);
    assert!(
        revoked
            .stdout
            .starts_with("refused by rule 0 (token-revoked)"),
        "{revoked:?}"
    );
    assert!(
        host.git2fa(&["token", "list"])
            .ok()
            .stdout
            .contains(" revoked ")
    );

    // Protected refs: only pushes to main need 2FA.
    host.git2fa(&["repo", "flag", "team/app", "--ref", "refs/heads/main"])
        .ok();
    let topic = host
        .git2fa(&[
            "explain",
            "alice",
            "team/app",
            "write",
            "--ref",
            "refs/heads/topic",
        ])
        .ok();
    assert!(topic.stdout.starts_with("allowed by rule 3"), "{topic:?}");
    let main = host
        .git2fa(&[
            "explain",
            "alice",
            "team/app",
            "write",
            "--ref",
            "refs/heads/main",
        ])
        .fails(1);
    assert!(
        main.stdout
            .contains("2FA required: yes, the repository's git2fa.toml protects refs/heads/main"),
        "{main:?}"
    );
    let show = host.git2fa(&["repo", "show", "team/app.git"]).ok();
    assert!(
        show.stdout
            .contains("require: push\nprotected_refs: refs/heads/main\n"),
        "{show:?}"
    );
    host.git2fa(&["repo", "unflag", "team/app"]).ok();
    host.git2fa(&["explain", "alice", "team/app", "write"]).ok();

    // "Always use 2FA" and a disabled user.
    host.git2fa(&["user", "disable", "alice"]).ok();
    let disabled = host
        .git2fa(&["explain", "alice", "team/app", "read"])
        .fails(1);
    assert!(
        disabled
            .stdout
            .starts_with("refused by rule 1 (user-disabled)"),
        "{disabled:?}"
    );
    host.git2fa(&["user", "enable", "alice"]).ok();
    let unknown = host
        .git2fa(&["explain", "mallory", "team/app", "read"])
        .fails(1);
    assert!(
        unknown
            .stdout
            .starts_with("refused by rule 1 (unknown-user)"),
        "{unknown:?}"
    );

    // Reset 2FA: the user is back to not enrolled.
    host.git2fa(&["repo", "flag", "team/app"]).ok();
    host.git2fa(&["user", "reset-2fa", "alice"]).ok();
    let reset = host
        .git2fa(&["explain", "alice", "team/app", "write"])
        .fails(1);
    assert!(
        reset.stdout.starts_with("refused by rule 6 (not-enrolled)"),
        "{reset:?}"
    );

    // The audit log holds every verification and every admin change,
    // newest first.
    let audit = host
        .git2fa(&["audit", "--user", "alice", "--limit", "100"])
        .ok();
    let rows: Vec<&str> = audit.stdout.lines().collect();
    // Times are one RFC 3339 word (they once read `…T11:12:10TUTC`).
    for row in &rows {
        let at = row.split(' ').nth(1).unwrap();
        assert!(
            at.len() == 20 && at.as_bytes()[10] == b'T' && at.ends_with('Z'),
            "{row}"
        );
    }
    let verify_rows: Vec<&&str> = rows.iter().filter(|r| r.contains(" verify ")).collect();
    assert_eq!(verify_rows.len(), 8, "{}", audit.stdout);
    let outcomes: Vec<&str> = verify_rows
        .iter()
        .rev()
        .map(|r| r.split(' ').nth(5).unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "fail", "fail", "fail", "fail", "fail", "ok", "fail"],
        "{}",
        audit.stdout
    );
    let reasons: Vec<&str> = verify_rows
        .iter()
        .rev()
        .map(|r| r.split(' ').nth(6).unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "totp",
            "replayed-totp",
            "wrong-totp",
            "wrong-totp",
            "wrong-totp",
            "locked",
            "recovery-code",
            "replayed-recovery-code"
        ]
    );
    for action in [
        "user-add",
        "enroll",
        "session-end",
        "user-unlock",
        "token-create",
        "token-revoke",
        "user-disable",
        "user-enable",
        "reset-2fa",
    ] {
        assert!(
            rows.iter().any(|r| r.contains(&format!(" {action} "))),
            "no {action} row:\n{}",
            audit.stdout
        );
    }
    assert!(
        rows[0].contains(" reset-2fa "),
        "newest first:\n{}",
        audit.stdout
    );
    let repo_rows = host.git2fa(&["audit", "--repo", "team/app"]).ok();
    assert_eq!(
        repo_rows
            .stdout
            .lines()
            .filter(|r| r.contains(" repo-flag "))
            .count(),
        4,
        "{repo_rows:?}"
    );
}

#[test]
fn ssh_keys_are_registered_once() {
    let host = Host::new();
    host.add_user("alice");
    host.add_user("bob");
    let key = format!("{} alice@laptop\n", crate::harness::ED25519_PUBLIC);
    let added = host
        .git2fa_with_stdin(&["key", "add", "alice", "-"], &key)
        .ok();
    assert!(
        added.stdout.starts_with("added key #1 SHA256:"),
        "{added:?}"
    );
    let twice = host
        .git2fa_with_stdin(&["key", "add", "bob", "-"], &key)
        .fails(1);
    assert!(
        twice.stderr.contains("already registered to alice"),
        "{twice:?}"
    );
    let bad = host
        .git2fa_with_stdin(&["key", "add", "bob", "-"], "ssh-ed25519 AAAAnotakey\n")
        .fails(1);
    assert!(bad.stderr.contains("key"), "{bad:?}");
    let list = host.git2fa(&["key", "list"]).ok();
    assert!(
        list.stdout.starts_with("#1 alice ssh-ed25519 SHA256:")
            && list.stdout.ends_with(" alice@laptop\n"),
        "{list:?}"
    );
    host.git2fa(&["key", "remove", "1"]).ok();
    host.git2fa(&["key", "remove", "1"]).fails(1);
}

/// `git2fa … | head -1`: every command that prints a listing or a report
/// ends quietly when its reader goes (the status a shell shows for SIGPIPE,
/// no panic, no message), and an empty listing says so on stderr.
#[test]
fn listings_end_quietly_when_the_reader_goes_and_say_when_empty() {
    let host = Host::new();
    host.bare_repo("team/app.git");
    host.bare_repo("team/web.git");

    // Empty: nothing on stdout (for scripts), a line on stderr (for people).
    for (args, said) in [
        (
            &["user", "list"][..],
            "git2fa: no users (add one with `git2fa user add NAME`)\n",
        ),
        (&["key", "list"], "git2fa: no SSH keys\n"),
        (&["token", "list"], "git2fa: no tokens\n"),
        (&["session", "list"], "git2fa: no open 2FA sessions\n"),
    ] {
        let run = host.git2fa(args).ok();
        assert_eq!(
            (run.stdout.as_str(), run.stderr.as_str()),
            ("", said),
            "{args:?}"
        );
    }

    host.add_user("alice");
    host.add_user("bob");
    let (secret, _) = host.enroll("alice");
    host.git2fa(&["verify", "alice", &code(&secret, 0)]).ok();
    host.git2fa(&["repo", "flag", "team/app"]).ok();
    let key = format!("{} alice@laptop\n", crate::harness::ED25519_PUBLIC);
    host.git2fa_with_stdin(&["key", "add", "alice", "-"], &key)
        .ok();
    host.git2fa(&[
        "token", "create", "alice", "--repo", "team/*", "--perm", "read",
    ])
    .ok();
    let empty = host.git2fa(&["token", "list", "bob"]).ok();
    assert_eq!(empty.stderr, "git2fa: no tokens of bob\n");

    let repos = host.git2fa(&["repo", "list"]).ok();
    assert_eq!(
        repos.stdout,
        "team/app require=push hooks=missing\nteam/web require=off hooks=missing\n",
    );

    for args in [
        &["user", "list"][..],
        &["user", "show", "alice"],
        &["key", "list"],
        &["token", "list"],
        &["session", "list"],
        &["repo", "list"],
        &["repo", "show", "team/app"],
        &["explain", "alice", "team/app", "write"],
        &["check"],
        &["audit"],
        &["audit", "--json"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(crate::harness::BIN)
            .arg("--config")
            .arg(&host.config)
            .args(args)
            .env_remove("GIT2FA_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            (out.status.code(), stderr.as_ref()),
            (Some(141), ""),
            "git2fa {args:?} into a closed pipe"
        );
    }
}
