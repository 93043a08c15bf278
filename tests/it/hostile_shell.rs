//! `git2fa-shell` fed hostile commands: each is refused before any process
//! starts. The config's `git_bin` is a script that records being run, so a
//! started process cannot go unnoticed.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{Host, Run, SHELL_BIN};

/// A host whose `git_bin` only records its arguments in the returned file.
pub fn recording_host() -> (Host, std::path::PathBuf) {
    recording_host_with("")
}

/// `recording_host` with `extra` in its config (a `[store]`, say).
pub fn recording_host_with(extra: &str) -> (Host, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("git2fa-rec")
        .tempdir()
        .unwrap()
        .keep();
    let marker = dir.join("git-ran");
    let fake_git = dir.join("fake-git");
    std::fs::write(
        &fake_git,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", marker.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_git, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let host = Host::with_policy("", extra);
    let text = std::fs::read_to_string(&host.config).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("git_bin") {
                format!("git_bin = {:?}", fake_git)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&host.config, text).unwrap();
    host.add_user("alice");
    let key = &format!("{} alice\n", crate::harness::ED25519_PUBLIC);
    host.git2fa_with_stdin(&["key", "add", "alice", "-"], key)
        .ok();
    host.bare_repo("team/app.git");
    (host, marker)
}

fn shell(host: &Host, command: &str) -> Run {
    Run::from(
        Command::new(SHELL_BIN)
            .args(host.shell_args(1))
            .env_clear()
            .env("SSH_ORIGINAL_COMMAND", command)
            .env("SSH_CONNECTION", "127.0.0.1 40000 127.0.0.1 22")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

#[test]
fn hostile_commands_start_nothing() {
    let (host, marker) = recording_host();
    let top = host.dir.path();
    // Outside the root, and a sibling whose name extends the root's.
    host.bare_repo("../repos-evil/x.git");
    host.bare_repo("../outside.git");
    std::os::unix::fs::symlink(top.join("outside.git"), host.root.join("link.git")).unwrap();
    std::os::unix::fs::symlink(top.join("repos-evil"), host.root.join("evil")).unwrap();
    let evil = top.join("repos-evil/x.git").display().to_string();
    let outside = top.join("outside.git").display().to_string();
    let long = format!("git-upload-pack '{}'", "a/".repeat(60_000));
    let cases: Vec<(String, &str)> = vec![
        (
            "git-upload-pack 'team/app.git'; id".into(),
            "disallowed command",
        ),
        (
            "git-upload-pack 'team/app.git' && id".into(),
            "disallowed command",
        ),
        ("git-upload-pack '$(id)'".into(), "disallowed command"),
        ("git-upload-pack '`id`'".into(), "disallowed command"),
        (
            "git-upload-pack 'team/app.git' | id".into(),
            "disallowed command",
        ),
        (
            "git-upload-pack 'team/app.git'\nid".into(),
            "disallowed command",
        ),
        (
            "git-upload-pack 'team/app.git'\rid".into(),
            "disallowed command",
        ),
        (
            "git-upload-pack 'team/app.git' 'other.git'".into(),
            "disallowed command",
        ),
        (
            "git-upload-pack --upload-pack=touch /tmp/x 'team/app.git'".into(),
            "disallowed command",
        ),
        (
            "git-upload-pack '--upload-pack=id'".into(),
            "disallowed command",
        ),
        ("git-upload-pack '-x'".into(), "disallowed command"),
        (
            "git-upload-pack '../outside.git'".into(),
            "invalid repository path",
        ),
        (
            "git-upload-pack 'evil/x.git'".into(),
            "no such repository, or alice may not read it.",
        ),
        (
            "git-upload-pack 'team/../../outside.git'".into(),
            "invalid repository path",
        ),
        (
            format!("git-upload-pack '{outside}'"),
            "no such repository, or alice may not read it.",
        ),
        (
            format!("git-upload-pack '{evil}'"),
            "no such repository, or alice may not read it.",
        ),
        (
            "git-upload-pack '../repos-evil/x.git'".into(),
            "invalid repository path",
        ),
        (
            "git-upload-pack 'link.git'".into(),
            "no such repository, or alice may not read it.",
        ),
        (
            "git-upload-pack 'team'".into(),
            "no such repository, or alice may not read it.",
        ),
        (
            "git-receive-pack '/etc'".into(),
            "no such repository, or alice may not read it.",
        ),
        (long, "disallowed command: the command is longer than 4 KiB"),
        ("scp -t /tmp".into(), "disallowed command"),
        ("bash".into(), "disallowed command"),
        ("git-shell -c id".into(), "disallowed command"),
        ("rsync --server . /".into(), "disallowed command"),
        ("2fa enroll".into(), "disallowed command"),
    ];
    let cases_count = cases.len();
    for (command, words) in cases {
        let run = shell(&host, &command);
        let shown: String = command.chars().take(80).collect();
        assert_eq!(run.code, 1, "{shown:?}: {run:?}");
        // One clear line; a repository that cannot be read says what to
        // check on a second.
        assert!(
            (1..=2).contains(&run.stderr.lines().count()),
            "{shown:?}: one clear line: {run:?}"
        );
        assert!(
            run.stderr.starts_with("git2fa: ") && run.stderr.contains(words),
            "{shown:?}: {run:?}"
        );
        // git reads an ERR pkt-line; a person typing another command
        // reads plain text.
        let expected = if ["git-upload-pack ", "git-receive-pack "]
            .iter()
            .any(|verb| command.starts_with(verb))
        {
            let said: Vec<String> = run.stderr.lines().map(str::to_string).collect();
            let pkt = format!("ERR {}\n", said.join(" "));
            format!("{:04x}{pkt}", pkt.len() + 4)
        } else {
            String::new()
        };
        assert_eq!(run.stdout, expected, "{shown:?}: stdout");
        assert!(!marker.exists(), "{shown:?} started a process");
    }
    // Every refusal is in the audit log, with the command.
    let audit = host.git2fa(&["audit", "--limit", "100"]).ok();
    assert_eq!(
        audit
            .stdout
            .lines()
            .filter(|l| {
                l.contains(" ssh alice ssh-command refuse ")
                    || l.contains(" ssh alice read refuse no-access ")
                    || l.contains(" ssh alice write refuse no-access ")
            })
            .count(),
        cases_count,
        "{}",
        audit.stdout
    );
    assert!(audit.stdout.contains(" ssh alice ssh-command refuse disallowed-command credential=key key=#1 addr=127.0.0.1 detail=bash"), "{}", audit.stdout);
    // A command that is not UTF-8 is refused, not taken for no command.
    let out = Command::new(SHELL_BIN)
        .args(host.shell_args(1))
        .env_clear()
        .env(
            "SSH_ORIGINAL_COMMAND",
            std::ffi::OsStr::from_bytes(b"git-upload-pack '\xff'"),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("git2fa: disallowed command"),
        "{out:?}"
    );
    assert!(!marker.exists());
    // The control: a good command does start git (the fake one), with the
    // repository by absolute path and nothing the client chose.
    let good = shell(&host, "git-upload-pack '/team/app.git'");
    assert_eq!(good.code, 0, "{good:?}");
    let ran = std::fs::read_to_string(&marker).unwrap();
    let dir = host.root.join("team/app.git").canonicalize().unwrap();
    assert_eq!(
        ran,
        format!(
            "-c core.hooksPath={}/hooks upload-pack {}\n",
            dir.display(),
            dir.display()
        )
    );
    let _ = std::fs::remove_dir_all(marker.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn git_gets_a_cleared_environment() {
    let (host, marker) = recording_host();
    let env_dump = marker.with_file_name("env");
    let fake = marker.with_file_name("fake-git");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\nenv | sort > {}\n", env_dump.display()),
    )
    .unwrap();
    let out = Command::new(SHELL_BIN)
        .args(host.shell_args(1))
        .env("SSH_ORIGINAL_COMMAND", "git-upload-pack 'team/app'")
        .env("SSH_CONNECTION", "10.1.2.3 40000 127.0.0.1 22")
        .env("GIT_PROTOCOL", "version=2")
        .env("LD_PRELOAD", "/tmp/evil.so")
        .env("GIT_EXEC_PATH", "/tmp/evil")
        .env("GIT_CONFIG_PARAMETERS", "'core.sshCommand=id'")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let env = std::fs::read_to_string(&env_dump).unwrap();
    let names: Vec<&str> = env
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .filter(|n| *n != "PWD" && *n != "SHLVL" && *n != "_")
        .collect();
    assert_eq!(
        names,
        [
            "GIT2FA_CONFIG",
            "GIT2FA_KEY_ID",
            "GIT2FA_REMOTE_ADDR",
            "GIT2FA_TRANSPORT",
            "GIT2FA_USER",
            "GIT_PROTOCOL",
            "PATH"
        ],
        "{env}"
    );
    assert!(
        env.contains("GIT2FA_USER=alice\n") && env.contains("GIT2FA_REMOTE_ADDR=10.1.2.3\n"),
        "{env}"
    );
    assert!(env.contains("GIT_PROTOCOL=version=2\n"), "{env}");
}
