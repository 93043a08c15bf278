//! Git over SSH through a real sshd: refused with git's own "remote error",
//! verified with `ssh … 2fa verify`, then allowed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::fixture::Fixture;
use crate::harness::sshd::{self, Sshd, keygen};
use crate::harness::{Host, code, run};

pub(crate) struct Setup {
    pub host: Fixture,
    pub sshd: Sshd,
    pub key: PathBuf,
    pub secret: Vec<u8>,
    pub work: PathBuf,
}

/// alice with a key and 2FA enrolled; `team/app` seeded with one commit and
/// with the git2fa hooks; sshd running. `None` when the machine lacks sshd
/// and GIT2FA_REQUIRE_E2E is unset.
pub(crate) fn setup(policy: &str) -> Option<Setup> {
    if !sshd::available() {
        return None;
    }
    let host = Host::with_policy(policy, "")
        .user("alice")
        .key()
        .enrolled()
        .repo("team/app");
    let (key, secret) = (host.key_of("alice").into(), host.secret_of("alice").into());
    let work = host.work().to_path_buf();
    let repo = host.root.join("team/app.git");
    // A hook the repository had before git2fa: it records what it is fed.
    let old_hook = repo.join("hooks/pre-receive");
    let marker = host.dir.path().join("old-hook-ran");
    std::fs::write(
        &old_hook,
        format!("#!/bin/sh\ncat >> {}\n", marker.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&old_hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    host.install_hooks();
    let sshd = Sshd::start(&host);
    Some(Setup {
        host,
        sshd,
        key,
        secret,
        work,
    })
}

impl Setup {
    fn git(&self, cwd: &Path, args: &[&str]) -> crate::harness::Run {
        self.sshd.git(&self.key, cwd, args)
    }

    fn verify(&self, code: &str) -> crate::harness::Run {
        self.sshd.ssh(&self.key, "2fa verify", &format!("{code}\n"))
    }

    fn commit(&self, message: &str) {
        crate::harness::commit_readme(&self.work, message);
    }
}

#[test]
fn a_flagged_repo_refuses_until_verified_and_again_after_logout() {
    let Some(s) = setup("") else { return };
    s.host
        .git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let url = s.sshd.url("team/app.git");
    let top = s.host.dir.path();

    let clone = s.git(top, &["clone", "--quiet", &url, "clone1"]).fails(128);
    for line in [
        "git2fa: team/app requires two-factor authentication (2FA) to read (clone, fetch).\n",
        "alice has no open 2FA session.\n",
        "Verify at https://git.example.com/2fa/verify?repo=team/app\n",
        "or run: ssh -p 2222 git@git.example.com 2fa verify\n",
        "then run the same git command again.\n",
        "fatal: remote error: git2fa: team/app requires two-factor authentication (2FA) to read (clone, fetch). \
         alice has no open 2FA session. Verify at https://git.example.com/2fa/verify?repo=team/app \
         or run: ssh -p 2222 git@git.example.com 2fa verify then run the same git command again.\n",
    ] {
        assert!(
            clone.stderr.contains(line),
            "{line:?} missing:\n{}",
            clone.stderr
        );
    }
    assert!(!top.join("clone1").exists());
    let push = s.git(&s.work, &["push", &url, "main"]).fails(128);
    assert!(push.stderr.contains("fatal: remote error: git2fa: team/app requires two-factor authentication (2FA) to push."), "{}", push.stderr);

    let now_code = code(&s.secret, 0);
    let verified = s.verify(&now_code).ok();
    assert!(
        verified
            .stdout
            .starts_with("git2fa: 2FA session open until "),
        "{verified:?}"
    );
    assert!(
        verified
            .stdout
            .ends_with("(1h). Git operations now work.\n"),
        "{verified:?}"
    );

    s.git(top, &["clone", "--quiet", &url, "clone2"]).ok();
    assert_eq!(
        std::fs::read_to_string(top.join("clone2/README")).unwrap(),
        "hello\n"
    );
    s.git(&top.join("clone2"), &["fetch", "--quiet"]).ok();
    s.commit("second");
    s.git(&s.work, &["push", "--quiet", &url, "main"]).ok();

    let replay = s.verify(&now_code).fails(1);
    assert!(
        replay
            .stderr
            .contains("git2fa: that code was already used; wait for the next one"),
        "{replay:?}"
    );
    let status = s.sshd.ssh(&s.key, "2fa status", "").ok();
    assert!(
        status.stdout.starts_with("alice: 2FA session #"),
        "{status:?}"
    );

    let logout = s.sshd.ssh(&s.key, "2fa logout", "").ok();
    assert_eq!(logout.stdout, "git2fa: ended 1 2FA session of alice\n");
    let fetch = s.git(&top.join("clone2"), &["fetch"]).fails(128);
    assert!(
        fetch.stderr.contains("alice has no open 2FA session."),
        "{}",
        fetch.stderr
    );

    // Every decision is in the audit log, with the key and the address.
    let audit = s.host.git2fa(&["audit", "--repo", "team/app"]).ok();
    assert!(
        audit.stdout.contains(
            " ssh alice read refuse no-session repo=team/app credential=key key=#1 addr=127.0.0.1"
        ),
        "{}",
        audit.stdout
    );
    assert!(
        audit
            .stdout
            .contains(" ssh alice read allow session repo=team/app"),
        "{}",
        audit.stdout
    );
    assert!(
        audit
            .stdout
            .contains(" ssh alice write allow session repo=team/app"),
        "{}",
        audit.stdout
    );
}

#[test]
fn an_unflagged_repo_needs_no_2fa() {
    let Some(s) = setup("") else { return };
    let url = s.sshd.url("team/app");
    s.git(s.host.dir.path(), &["clone", "--quiet", &url, "c"])
        .ok();
    s.commit("unflagged");
    let pushed = s.git(&s.work, &["push", &url, "main"]).ok();
    assert!(pushed.stderr.contains("main -> main"), "{pushed:?}");
    // The hook that was there before still ran, through SSH.
    let fed = std::fs::read_to_string(s.host.dir.path().join("old-hook-ran")).unwrap_or_else(|e| {
        let hooks = s.host.root.join("team/app.git/hooks");
        let listing: Vec<_> = std::fs::read_dir(&hooks)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        panic!(
            "the old hook did not run ({e}): {pushed:?}\n{listing:?}\n{}\n{}",
            std::fs::read_to_string(hooks.join("pre-receive")).unwrap_or_default(),
            std::fs::read_to_string(hooks.join("pre-receive.git2fa-chained")).unwrap_or_default()
        )
    });
    assert!(fed.ends_with(" refs/heads/main\n"), "{fed:?}");
}

#[test]
fn protected_refs_refuse_main_but_not_a_topic_branch() {
    let Some(s) = setup("") else { return };
    s.host
        .git2fa(&["repo", "flag", "team/app", "--ref", "refs/heads/main"])
        .ok();
    let url = s.sshd.url("team/app.git");
    s.commit("topic work");
    s.git(&s.work, &["push", "--quiet", &url, "main:refs/heads/topic"])
        .ok();
    let main = s.git(&s.work, &["push", &url, "main"]).fails(1);
    assert!(
        main.stderr
            .contains("remote: git2fa: refused refs/heads/main:"),
        "{}",
        main.stderr
    );
    assert!(
        main.stderr
            .contains("remote: alice has no open 2FA session."),
        "{}",
        main.stderr
    );
    assert!(
        main.stderr
            .contains(" ! [remote rejected] main -> main (hook declined)"),
        "{}",
        main.stderr
    );
    // Both at once: the topic branch goes through, main does not.
    s.commit("more");
    let both = s
        .git(&s.work, &["push", &url, "main", "main:refs/heads/topic"])
        .fails(1);
    assert!(both.stderr.contains("  main -> topic\n"), "{}", both.stderr);
    assert!(
        !both.stderr.contains("rejected] main -> topic"),
        "{}",
        both.stderr
    );
    assert!(
        both.stderr
            .contains(" ! [remote rejected] main -> main (hook declined)"),
        "{}",
        both.stderr
    );
    s.verify(&code(&s.secret, 0)).ok();
    s.git(&s.work, &["push", "--quiet", &url, "main"]).ok();
    // The hook knew who pushed, over which key and from where.
    let audit = s.host.git2fa(&["audit", "--repo", "team/app"]).ok();
    let refused = " ssh alice write refuse no-session repo=team/app refs=refs/heads/main credential=key key=#1 addr=127.0.0.1";
    assert!(audit.stdout.contains(refused), "{}", audit.stdout);
    assert!(
        audit
            .stdout
            .contains(" ssh alice write allow not-required repo=team/app refs=refs/heads/topic"),
        "{}",
        audit.stdout
    );
}

#[test]
fn a_waiting_push_continues_once_verified_elsewhere() {
    let Some(s) = setup("wait_for_verify = \"30s\"") else {
        return;
    };
    s.host.git2fa(&["repo", "flag", "team/app"]).ok();
    s.commit("waited for");
    let url = s.sshd.url("team/app.git");
    let started = Instant::now();
    let push = {
        let ssh = s.sshd.ssh_command(&s.key);
        let work = s.work.clone();
        let home = s.host.dir.path().display().to_string();
        std::thread::spawn(move || {
            run(
                "git",
                &["push", &url, "main"],
                &work,
                &[("GIT_SSH_COMMAND", ssh), ("HOME", home)],
                "",
            )
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    assert!(!push.is_finished(), "the push did not wait");
    s.host
        .git2fa(&["verify", "alice", &code(&s.secret, 0)])
        .ok();
    let push = push.join().unwrap().ok();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "it waited for the whole timeout"
    );
    assert!(push.stderr.contains("git2fa: waiting up to 30s for you to verify at https://git.example.com/2fa/verify?repo=team/app"), "{}", push.stderr);
    assert!(push.stderr.contains("main -> main"), "{}", push.stderr);
}

#[test]
fn a_wait_that_times_out_refuses() {
    let Some(s) = setup("wait_for_verify = \"2s\"") else {
        return;
    };
    s.host.git2fa(&["repo", "flag", "team/app"]).ok();
    let push = s
        .git(&s.work, &["push", &s.sshd.url("team/app"), "main"])
        .fails(128);
    assert!(push.stderr.contains("waiting up to 2s"), "{}", push.stderr);
    assert!(push.stderr.contains("fatal: remote error: git2fa: team/app requires two-factor authentication (2FA) to push."), "{}", push.stderr);
}

#[test]
fn the_greeting_help_and_no_shell() {
    let Some(s) = setup("") else { return };
    let hello = s.sshd.ssh(&s.key, "", "").ok();
    assert!(hello.stdout.starts_with("Hi alice! You are authenticated to git2fa with key #1, but there is no shell access here.\n"), "{hello:?}");
    assert!(
        hello
            .stdout
            .contains("alice: no open 2FA session; verify at https://git.example.com/2fa/verify"),
        "{hello:?}"
    );
    let help = s.sshd.ssh(&s.key, "help", "").ok();
    assert!(help.stdout.contains("2fa verify"), "{help:?}");
    let shell = s.sshd.ssh(&s.key, "sh -c id", "").fails(1);
    assert_eq!(
        shell.stderr,
        "git2fa: disallowed command: unknown command (try: ssh -p 2222 git@git.example.com help)\n"
    );
    // A person reads this, not git: no pkt-line framing, the message once.
    assert_eq!(shell.stdout, "");
    for typed in ["2fa", "2fa help"] {
        let run = s.sshd.ssh(&s.key, typed, "").fails(1);
        assert_eq!(run.stdout, "", "{typed}: {run:?}");
        assert_eq!(
            run.stderr.matches("disallowed command").count(),
            1,
            "{run:?}"
        );
    }
    // A key nobody registered gets no session at all.
    let stranger = s.host.dir.path().join("stranger");
    keygen(&stranger);
    let refused = s.sshd.ssh(&stranger, "", "");
    assert_eq!(refused.code, 255, "{refused:?}");
    assert!(
        refused.stderr.contains("Permission denied (publickey)"),
        "{refused:?}"
    );
}

#[test]
fn authorized_keys_prints_a_forced_command_for_known_enabled_keys_only() {
    let Some(s) = setup("") else { return };
    let public = std::fs::read_to_string(format!("{}.pub", s.key.display())).unwrap();
    let mut words = public.split_whitespace();
    let (keytype, blob) = (words.next().unwrap(), words.next().unwrap());
    let line = s
        .host
        .git2fa(&["authorized-keys", "git", keytype, blob])
        .ok();
    let config = s.host.config.canonicalize().unwrap();
    let shell = Path::new(crate::harness::BIN).with_file_name("git2fa-shell");
    let fingerprint = s.host.shell_args(1).pop().unwrap();
    let expected = format!(
        "command=\"{} --config {} --key-id 1 --fingerprint {fingerprint}\",restrict ssh-ed25519 ",
        shell.display(),
        config.display()
    );
    assert!(
        line.stdout.starts_with(&expected),
        "{line:?}\nexpected: {expected}"
    );
    assert!(line.stdout.trim_end().ends_with(blob), "{line:?}");
    let other = s.host.dir.path().join("other");
    keygen(&other);
    let other_public = std::fs::read_to_string(format!("{}.pub", other.display())).unwrap();
    let unknown = s
        .host
        .git2fa(&[
            "authorized-keys",
            "git",
            keytype,
            other_public.split_whitespace().nth(1).unwrap(),
        ])
        .ok();
    assert_eq!(unknown.stdout, "");
    let garbage = s
        .host
        .git2fa(&["authorized-keys", "git", keytype, "AAAA"])
        .ok();
    assert_eq!(garbage.stdout, "");
    s.host.git2fa(&["user", "disable", "alice"]).ok();
    let disabled = s
        .host
        .git2fa(&["authorized-keys", "git", keytype, blob])
        .ok();
    assert_eq!(disabled.stdout, "", "a disabled user's key is not offered");
}

#[test]
fn a_key_bound_session_is_good_only_for_its_key() {
    let Some(s) = setup("bind_session = \"key\"") else {
        return;
    };
    s.host
        .git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let second = s.host.dir.path().join("alice_second_key");
    keygen(&second);
    s.host
        .git2fa(&["key", "add", "alice", &format!("{}.pub", second.display())])
        .ok();
    let url = s.sshd.url("team/app");
    let top = s.host.dir.path();
    let verified = s.verify(&code(&s.secret, 0)).ok();
    assert!(
        verified
            .stdout
            .contains("Git operations with key #1 now work."),
        "{verified:?}"
    );
    s.git(top, &["clone", "--quiet", &url, "with-first"]).ok();
    let other = s
        .sshd
        .git(&second, top, &["clone", "--quiet", &url, "with-second"])
        .fails(128);
    assert!(
        other.stderr.contains("alice has no open 2FA session."),
        "{}",
        other.stderr
    );
    // A session opened without a key (by an admin) is good for no key.
    s.host
        .git2fa(&["verify", "alice", &code(&s.secret, 1)])
        .ok();
    let still = s
        .sshd
        .git(&second, top, &["clone", "--quiet", &url, "with-second"])
        .fails(128);
    assert!(
        still.stderr.contains("alice has no open 2FA session."),
        "{}",
        still.stderr
    );
}

#[test]
fn a_hooks_path_elsewhere_does_not_skip_the_git2fa_hooks() {
    // Attack: the shim lets a push to a repository with protected refs
    // start because the git2fa hooks will refuse the protected ones. A
    // `core.hooksPath` in the repository's config (or /etc/gitconfig) points
    // git at a directory without them, so no hook would ever run.
    let Some(s) = setup("") else { return };
    s.host
        .git2fa(&["repo", "flag", "team/app", "--ref", "refs/heads/main"])
        .ok();
    let repo = s.host.root.join("team/app.git");
    let empty = s.host.dir.path().join("no-hooks");
    std::fs::create_dir(&empty).unwrap();
    run(
        "git",
        &[
            "config",
            "--file",
            &repo.join("config").display().to_string(),
            "core.hooksPath",
            &empty.display().to_string(),
        ],
        &s.work,
        &[],
        "",
    )
    .ok();
    s.commit("sneaky");
    let url = s.sshd.url("team/app.git");
    let refused = s.git(&s.work, &["push", &url, "main"]).fails(1);
    assert!(
        refused
            .stderr
            .contains(" ! [remote rejected] main -> main (hook declined)"),
        "{}",
        refused.stderr
    );
    // An update stub that is not executable is skipped by git: then the
    // shim does not count on the hooks, and every push needs 2FA.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        repo.join("hooks/update"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let topic = s
        .git(&s.work, &["push", &url, "main:refs/heads/topic"])
        .fails(128);
    assert!(topic.stderr.contains("fatal: remote error: git2fa: team/app requires two-factor authentication (2FA) to push."), "{}", topic.stderr);
}

/// Security keys (`ssh-keygen -t ed25519-sk`, `-t ecdsa-sk`) register like
/// any key, and sshd is told to force git2fa-shell for them too.
#[test]
fn security_keys_register_and_get_the_forced_command() {
    let host = Host::new();
    host.add_user("alice");
    for line in [
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIPcT+/nqe4c8DBB8ld4K6C2UHRA1bJqbBGI2sSWmqd6BAAAABHNzaDo= alice@yubikey",
        "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBN8RF/cLWLMbOV0V+PmfxbTRDj5gDsIGUEWJCsUuSbTjPc8VCcOyjlugoE9C/t1UsNk75zPkflrlYpwkLN2XV0UAAAAEc3NoOg== alice@token",
    ] {
        let added = host
            .git2fa_with_stdin(&["key", "add", "alice", "-"], &format!("{line}\n"))
            .ok();
        assert!(added.stdout.starts_with("added key #"), "{added:?}");
        let mut words = line.split(' ');
        let (keytype, blob) = (words.next().unwrap(), words.next().unwrap());
        let forced = host.git2fa(&["authorized-keys", "git", keytype, blob]).ok();
        assert!(
            forced.stdout.starts_with("command=\"")
                && forced.stdout.contains("git2fa-shell")
                && forced
                    .stdout
                    .contains(&format!(",restrict {keytype} {blob}")),
            "{forced:?}"
        );
    }
    let list = host.git2fa(&["key", "list", "alice"]).ok().stdout;
    assert_eq!(list.lines().count(), 2, "{list}");
}

// The store down on the OpenSSH path: sshd asks `git2fa authorized-keys`
// for the key, which cannot look it up. The user sees sshd's "Permission
// denied (publickey)"; the cause went to authorized-keys' stderr, which
// sshd drops at its default log level, so it was logged nowhere. It now
// goes to syslog (and to GIT2FA_LOG_FILE), and no key is offered.
#[test]
fn with_the_store_down_authorized_keys_offers_no_key_and_logs_why() {
    let Some(s) = setup("") else { return };
    let public = std::fs::read_to_string(format!("{}.pub", s.key.display())).unwrap();
    let mut words = public.split_whitespace();
    let (keytype, blob) = (words.next().unwrap(), words.next().unwrap());
    let db = s.host.store_path();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, b"not a store").unwrap();
    let log = s.host.dir.path().join("authorized-keys.log");
    let out = std::process::Command::new(crate::harness::BIN)
        .arg("--config")
        .arg(&s.host.config)
        .args(["authorized-keys", "git", keytype, blob])
        .env("GIT2FA_LOG_FILE", &log)
        .env_remove("GIT2FA_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "a key was offered: {out:?}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("git2fa-authorized-keys[")
            && logged.contains("2FA check unavailable")
            && logged.contains("not a git2fa store"),
        "{logged}"
    );
    // And the user, through sshd: refused, in sshd's words.
    let refused = s.sshd.ssh(&s.key, "git-upload-pack 'team/app.git'", "");
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("Permission denied (publickey)"),
        "{refused:?}"
    );
}
