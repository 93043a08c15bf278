//! Bad input gets exit 2 and a one-line error naming what is wrong, and
//! changes nothing in the store.

use crate::harness::{Host, Run};

/// Runs a command that must fail with `code`, print one line naming
/// `words`, and leave the store as it was.
#[track_caller]
fn refused_unchanged(host: &Host, args: &[&str], code: i32, words: &[&str]) -> Run {
    let before = host.store_snapshot();
    let run = host.git2fa(args).fails(code);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
    for word in words {
        assert!(run.stderr.contains(word), "{word:?} missing: {run:?}");
    }
    assert_eq!(host.store_snapshot(), before, "the store changed: {args:?}");
    run
}

fn write_config(host: &Host, body: &str) {
    std::fs::write(
        &host.config,
        format!(
            "repos_root = {:?}\ndata_dir = {:?}\n{body}",
            host.root, host.data
        ),
    )
    .unwrap();
}

#[test]
fn a_broken_config_is_exit_2_with_file_line_and_key() {
    let host = Host::new();
    host.add_user("alice");
    let config = host.config.display().to_string();
    for (body, words) in [
        (
            "[policy]\ngit = 'sometimes'\n",
            vec![":4: [policy] git: unknown variant `sometimes`"],
        ),
        (
            "[policy]\nsession_tll = '1h'\n",
            vec![":4: [policy] session_tll: unknown field"],
        ),
        (
            "[policy]\nlockout = '-15m'\n",
            vec![":4: [policy] lockout: `-15m`"],
        ),
        ("[policy\n", vec![":3:"]),
        (
            "[tokens]\nmax_expiry_days = 10\ndefault_expiry_days = 30\n",
            vec![":5: tokens.default_expiry_days"],
        ),
    ] {
        write_config(&host, body);
        for args in [
            &["user", "list"][..],
            &["user", "disable", "alice"],
            &["check"],
        ] {
            let mut words = words.clone();
            words.push(&config);
            refused_unchanged(&host, args, 2, &words);
        }
    }
}

#[test]
fn a_missing_config_or_store_is_exit_2() {
    let host = Host::new();
    std::fs::rename(host.store_path(), host.data.join("moved.db")).unwrap();
    let run = host.git2fa(&["user", "list"]).fails(2);
    assert_eq!(
        run.stderr,
        format!(
            "git2fa: no store at {} (run `git2fa init`)\n",
            host.store_path().display()
        )
    );
    assert!(
        !host.store_path().exists(),
        "a command must not create a store"
    );
    std::fs::remove_file(&host.config).unwrap();
    let run = host.git2fa(&["user", "list"]).fails(2);
    assert_eq!(
        run.stderr,
        format!(
            "git2fa: {}: cannot read: no such file\n",
            host.config.display()
        )
    );
}

#[test]
fn a_store_that_is_not_sqlite_is_exit_2_and_untouched() {
    let host = Host::new();
    std::fs::remove_file(host.store_path()).unwrap();
    let _ = std::fs::remove_file(host.data.join("git2fa.db-wal"));
    let _ = std::fs::remove_file(host.data.join("git2fa.db-shm"));
    std::fs::write(
        host.store_path(),
        "definitely not a database, just some text that is long enough\n".repeat(20),
    )
    .unwrap();
    for args in [
        &["user", "list"][..],
        &["verify", "alice", "123456"],
        &["init"],
        &["audit"],
    ] {
        refused_unchanged(&host, args, 2, &["is not a git2fa store"]);
    }
}

#[test]
fn a_broken_repo_file_refuses_and_names_file_and_line() {
    let host = Host::new();
    host.add_user("alice");
    let repo = host.bare_repo("app.git");
    std::fs::write(
        repo.join("git2fa.toml"),
        "owners = ['alice']\nrequire = 'pushes'\n",
    )
    .unwrap();
    let show = refused_unchanged(
        &host,
        &["repo", "show", "app"],
        2,
        &["git2fa.toml:2: require: unknown variant `pushes`"],
    );
    assert!(show.stdout.is_empty());
    // The decision refuses, saying where the error is but not its text.
    let explain = host.git2fa(&["explain", "alice", "app", "read"]).fails(1);
    assert!(
        explain
            .stdout
            .starts_with("refused by rule 8 (check-unavailable)"),
        "{explain:?}"
    );
    assert!(
        explain
            .stdout
            .contains("  The error is in the git2fa.toml of app, line 2."),
        "{explain:?}"
    );
    let flag = refused_unchanged(
        &host,
        &["repo", "flag", "app"],
        2,
        &["git2fa.toml:2: require"],
    );
    assert!(flag.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(repo.join("git2fa.toml")).unwrap(),
        "owners = ['alice']\nrequire = 'pushes'\n"
    );
}

#[test]
fn bad_arguments_change_nothing() {
    let host = Host::with_policy("", "[tokens]\nmax_expiry_days = 30\n");
    host.add_user("alice");
    host.bare_repo("app.git");
    refused_unchanged(
        &host,
        &["user", "add", "--password-stdin", "--", "-rf"],
        2,
        &["not a valid user name"],
    );
    refused_unchanged(
        &host,
        &["user", "add", "bad name", "--password-stdin"],
        2,
        &["not a valid user name"],
    );
    refused_unchanged(
        &host,
        &[
            "token",
            "create",
            "alice",
            "--repo",
            "app",
            "--perm",
            "read",
            "--expires-days",
            "31",
        ],
        2,
        &["more than max_expiry_days (30)"],
    );
    refused_unchanged(
        &host,
        &[
            "token",
            "create",
            "alice",
            "--repo",
            "app",
            "--perm",
            "read",
            "--expires-days",
            "0",
        ],
        2,
        &["must expire"],
    );
    refused_unchanged(
        &host,
        &[
            "token", "create", "alice", "--repo", "../x", "--perm", "read",
        ],
        2,
        &["not a repository pattern"],
    );
    refused_unchanged(
        &host,
        &[
            "token", "create", "nobody", "--repo", "app", "--perm", "read",
        ],
        1,
        &["no user named nobody"],
    );
    refused_unchanged(
        &host,
        &["explain", "alice", "../etc", "read"],
        2,
        &["invalid repository path"],
    );
    refused_unchanged(
        &host,
        &["explain", "alice", "missing", "read"],
        1,
        &["no bare repository missing"],
    );
    refused_unchanged(
        &host,
        &[
            "repo",
            "flag",
            "app",
            "--require",
            "all",
            "--ref",
            "refs/heads/main",
        ],
        2,
        &["--ref goes with --require push"],
    );
    refused_unchanged(
        &host,
        &["repo", "flag", "app", "--ref", "main"],
        2,
        &["not a ref pattern"],
    );
    refused_unchanged(
        &host,
        &["verify", "alice", "123456"],
        1,
        &["has not enrolled"],
    );
    let short = host
        .git2fa_with_stdin(&["user", "add", "bob", "--password-stdin"], "short\n")
        .fails(2);
    assert!(short.stderr.contains("at least 8 characters"), "{short:?}");
    // clap's own usage errors are exit 2 as well.
    host.git2fa(&["token", "create", "alice", "--perm", "read"])
        .fails(2);
    host.git2fa(&["explain", "alice", "app", "delete"]).fails(2);
}
