//! The hooks through local pushes: refusals as `remote:` lines, a hook that
//! was there before kept and still counted, install and uninstall.

use std::path::Path;

use crate::harness::{Host, code, run, unix_user, work_tree};

fn push(work: &Path, repo: &Path, refspec: &str) -> crate::harness::Run {
    run(
        "git",
        &["push", &repo.display().to_string(), refspec],
        work,
        &[],
        "",
    )
}

#[test]
fn a_local_push_is_checked_and_an_old_hook_still_counts() {
    let host = Host::new();
    let me = unix_user();
    host.add_user(&me);
    let (secret, _) = host.enroll(&me);
    let repo = host.bare_repo("app.git");
    let work = work_tree(host.dir.path(), "work");
    // A hook the repository had before: it records that it ran, and fails
    // when told to.
    let marker = host.dir.path().join("old-hook-ran");
    let old_hook = format!(
        "#!/bin/sh\ncat >> {marker}\n[ -e {stop} ] && {{ echo 'old hook says no'; exit 3; }}\nexit 0\n",
        marker = marker.display(),
        stop = host.dir.path().join("stop").display()
    );
    std::fs::write(repo.join("hooks/pre-receive"), &old_hook).unwrap();
    set_executable(&repo.join("hooks/pre-receive"));

    let check = host.git2fa(&["check"]).fails(1);
    assert!(check.stdout.contains("lacks the git2fa hooks"), "{check:?}");
    let installed = host
        .git2fa(&["install-hooks", &host.root.display().to_string()])
        .ok();
    assert!(
        installed
            .stdout
            .contains("(kept and chained the existing pre-receive)"),
        "{installed:?}"
    );
    // Idempotent: a second run changes nothing and keeps the old hook.
    let again = host
        .git2fa(&["install-hooks", &host.root.display().to_string()])
        .ok();
    assert!(!again.stdout.contains("kept"), "{again:?}");
    assert_eq!(
        std::fs::read_to_string(repo.join("hooks/pre-receive.git2fa-chained")).unwrap(),
        old_hook
    );
    host.git2fa(&["check"]).ok();

    host.git2fa(&["repo", "flag", "app"]).ok();
    let refused = push(&work, &repo, "main").fails(1);
    assert!(
        refused
            .stderr
            .contains("remote: git2fa: app requires two-factor authentication (2FA) to push."),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains(&format!("remote: {me} has no open 2FA session.")),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("remote: Verify at https://git.example.com/2fa/verify?repo=app"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains(" ! [remote rejected] main -> main (pre-receive hook declined)"),
        "{}",
        refused.stderr
    );
    assert!(!marker.exists(), "the old hook ran although git2fa refused");

    host.git2fa(&["verify", &me, &code(&secret, 0)]).ok();
    push(&work, &repo, "main").ok();
    let fed = std::fs::read_to_string(&marker).unwrap();
    assert!(
        fed.ends_with(" refs/heads/main\n"),
        "the old hook got the pushed refs: {fed:?}"
    );

    // The old hook's refusal still counts.
    std::fs::write(host.dir.path().join("stop"), "").unwrap();
    std::fs::write(work.join("README"), "changed").unwrap();
    run(
        "git",
        &["commit", "--quiet", "-am", "change"],
        &work,
        &[],
        "",
    )
    .ok();
    let vetoed = push(&work, &repo, "main").fails(1);
    assert!(
        vetoed.stderr.contains("remote: old hook says no"),
        "{}",
        vetoed.stderr
    );

    let audit = host.git2fa(&["audit", "--repo", "app"]).ok();
    assert!(
        audit
            .stdout
            .contains(&format!(" local {me} write refuse no-session repo=app")),
        "{}",
        audit.stdout
    );
    assert!(
        audit
            .stdout
            .contains(&format!(" local {me} write allow session repo=app")),
        "{}",
        audit.stdout
    );

    // Uninstall puts the old hook back, and only it.
    host.git2fa(&[
        "install-hooks",
        "--uninstall",
        &host.root.display().to_string(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(repo.join("hooks/pre-receive")).unwrap(),
        old_hook
    );
    assert!(!repo.join("hooks/update").exists());
    assert!(!repo.join("hooks/pre-receive.git2fa-chained").exists());
}

#[test]
fn an_unregistered_unix_account_is_refused() {
    let host = Host::new();
    let repo = host.bare_repo("app.git");
    let work = work_tree(host.dir.path(), "work");
    host.install_hooks();
    let refused = push(&work, &repo, "main").fails(1);
    assert!(
        refused.stderr.contains(&format!(
            "remote: git2fa: app: {} is not a registered git2fa user.",
            unix_user()
        )),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_broken_repo_file_refuses_the_push() {
    let host = Host::new();
    host.add_user(&unix_user());
    let repo = host.bare_repo("app.git");
    let work = work_tree(host.dir.path(), "work");
    host.install_hooks();
    std::fs::write(
        repo.join("git2fa.toml"),
        "require = \"push\"\nwriters = 'everyone'\n",
    )
    .unwrap();
    let refused = push(&work, &repo, "main").fails(1);
    assert!(
        refused
            .stderr
            .contains("remote: git2fa: app: 2FA check unavailable, so the operation was refused."),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("remote: The error is in the git2fa.toml of app, line 2."),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("everyone"),
        "the file's text reaches no git user: {}",
        refused.stderr
    );
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn identity_variables_from_another_account_are_ignored() {
    // Attack: a local user pushes with GIT2FA_USER=alice and
    // GIT2FA_TRANSPORT=http GIT2FA_TOKEN_ID=1 in the environment, claiming to
    // be alice with a token that carries the second factor. Only the shims,
    // running as the account that owns the store, may hand over an
    // identity; anyone else is the Unix account they are.
    let host = Host::new();
    host.add_user("alice");
    host.token("alice", "app", "write", &["--without-2fa"]);
    let repo = host.bare_repo("app.git");
    let work = work_tree(host.dir.path(), "work");
    host.install_hooks();
    host.git2fa(&["repo", "flag", "app"]).ok();
    let claim = [
        ("GIT2FA_USER", "alice".to_string()),
        ("GIT2FA_TRANSPORT", "http".to_string()),
        ("GIT2FA_TOKEN_ID", "1".to_string()),
    ];
    let push = |work: &Path| {
        run(
            "git",
            &["push", &repo.display().to_string(), "main"],
            work,
            &claim,
            "",
        )
    };
    // As the store's owner the hand-over is taken (the shims run so)...
    push(&work).ok();
    // ...but once the data directory (and so the store) belongs to another
    // account, the pusher is who the kernel says, and that account is not
    // registered.
    std::os::unix::fs::chown(&host.data, Some(65534), None).unwrap();
    std::fs::write(work.join("README"), "again").unwrap();
    run(
        "git",
        &["commit", "--quiet", "-am", "again"],
        &work,
        &[],
        "",
    )
    .ok();
    let refused = push(&work).fails(1);
    assert!(
        refused.stderr.contains(&format!(
            "remote: git2fa: app: {} is not a registered git2fa user.",
            unix_user()
        )),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_key_of_another_user_is_no_key() {
    // Attack: GIT2FA_KEY_ID names a key, but of another user than
    // GIT2FA_USER: the hook must not take it as that user's key.
    let host = Host::new();
    host.add_user("alice");
    host.add_user("bob");
    let key = &format!("{} bob\n", crate::harness::ED25519_PUBLIC);
    host.git2fa_with_stdin(&["key", "add", "bob", "-"], key)
        .ok();
    let repo = host.bare_repo("app.git");
    let work = work_tree(host.dir.path(), "work");
    host.install_hooks();
    let claim = [
        ("GIT2FA_USER", "alice".to_string()),
        ("GIT2FA_TRANSPORT", "ssh".to_string()),
        ("GIT2FA_KEY_ID", "1".to_string()),
    ];
    let refused = run(
        "git",
        &["push", &repo.display().to_string(), "main"],
        &work,
        &claim,
        "",
    )
    .fails(1);
    assert!(
        refused
            .stderr
            .contains("remote: git2fa: this SSH key is not registered with git2fa."),
        "{}",
        refused.stderr
    );
}

#[test]
fn oversized_or_malformed_pre_receive_input_is_refused() {
    let host = Host::new();
    host.add_user(&unix_user());
    let repo = host.bare_repo("app.git");
    let hook = |input: &[u8]| {
        use std::io::Write;
        let mut child = std::process::Command::new(crate::harness::HOOK_BIN)
            .args([
                "--config",
                &host.config.display().to_string(),
                "pre-receive",
            ])
            .current_dir(&repo)
            .env("GIT_DIR", ".")
            .env_remove("GIT2FA_USER")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(input);
        child.wait_with_output().unwrap()
    };
    let zero = "0".repeat(40);
    let good = format!("{zero} {} refs/heads/main\n", "1".repeat(40));
    assert!(hook(good.as_bytes()).status.success());
    let malformed = hook(b"garbage\n");
    assert_eq!(malformed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("2FA check unavailable"));
    // Refused before its decision, and recorded: what the hook was given.
    let rows = host
        .git2fa(&["audit", "--json", "--limit", "5"])
        .ok()
        .stdout;
    let row: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    assert_eq!(
        (&row["action"], &row["outcome"], &row["reason"]),
        (
            &serde_json::json!("write"),
            &serde_json::json!("refuse"),
            &serde_json::json!("hook-input")
        ),
        "{rows}"
    );
    assert!(
        row["detail"].as_str().unwrap_or("").contains("pre-receive"),
        "{rows}"
    );
    let huge = good.repeat((4 << 20) / good.len() + 1);
    assert_eq!(
        hook(huge.as_bytes()).status.code(),
        Some(1),
        "more than 4 MiB of refs is refused whole"
    );
}

#[test]
fn pre_receive_refuses_the_whole_push_and_update_decides_each_ref() {
    let host = Host::new();
    let me = unix_user();
    host.add_user(&me);
    let repo = host.bare_repo("app.git");
    let work = work_tree(host.dir.path(), "work");
    host.install_hooks();
    host.git2fa(&["repo", "flag", "app"]).ok();
    // Both hooks: pre-receive refuses the whole push, once.
    let refused = push(&work, &repo, "main").fails(1);
    assert!(
        refused.stderr.contains("(pre-receive hook declined)"),
        "{}",
        refused.stderr
    );
    let audit = host.git2fa(&["audit", "--repo", "app"]).ok().stdout;
    assert_eq!(
        audit.lines().filter(|l| l.contains(" write ")).count(),
        1,
        "{audit}"
    );
    // Without our pre-receive, update decides each ref itself.
    std::fs::remove_file(repo.join("hooks/pre-receive")).unwrap();
    let refused = push(&work, &repo, "main").fails(1);
    assert!(
        refused
            .stderr
            .contains("remote: git2fa: refused refs/heads/main:"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("(hook declined)"),
        "{}",
        refused.stderr
    );
}
