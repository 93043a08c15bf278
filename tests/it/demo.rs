//! `git2fa demo`, followed as a newcomer would: run the printed commands,
//! set up 2FA in the web page (codes computed from the key the page shows),
//! and clone.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::client::Client;
use crate::harness::{BIN, Process, Run, e2e_available, run, which};

/// The value after `label` on a line of the instructions.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        .trim()
}

fn sh(command: &str, cwd: &Path, env: &[(&str, String)], stdin: &str) -> Run {
    run("sh", &["-c", command], cwd, env, stdin)
}

fn totp_now(key: &[u8]) -> String {
    git2fa::factor::totp::code_at(key, git2fa::system::time::now() as u64)
}

#[test]
fn following_the_demo_s_instructions_ends_with_a_clone() {
    if !e2e_available(which("ssh").is_some(), "ssh", "openssh-client") {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("demo-host");
    let mut demo = Process::spawn(
        Command::new(BIN)
            .args(["demo", "--dir", &dir.display().to_string()])
            .args(["--web", "127.0.0.1:0", "--ssh", "127.0.0.1:0"])
            .env_remove("GIT2FA_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let stdout = demo.child().stdout.take().unwrap();
    let mut text = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    let web = field(&text, "web page").trim_end_matches('/').to_string();
    let port: u16 = web.rsplit(':').next().unwrap().parse().unwrap();
    let user = field(&text, "user");
    let password = field(&text, "password");
    let commands: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  $ "))
        .collect();
    assert_eq!(commands.len(), 4, "{text}");
    let work = top.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let home = [("HOME", top.path().display().to_string())];

    // 1. The clone is refused, and says where to go.
    let refused = sh(commands[0], &work, &home, "").fails(128);
    for line in [
        "fatal: remote error: git2fa: hello requires two-factor authentication (2FA) to read (clone, fetch).",
        "alice has not set up 2FA yet.",
        &format!("Set it up at {web}/2fa/setup"),
    ] {
        assert!(refused.stderr.contains(line), "{line:?}:\n{refused:?}");
    }

    // 2. Log in, set up 2FA with the key the page shows, keep a recovery
    // code, confirm with a code.
    let mut browser = Client::on_port(port);
    browser.log_in(user, password);
    browser.submit("/2fa/setup", "/2fa/setup/start", &[]);
    let scan = browser.get("/2fa/setup/scan");
    let at = scan.body.find("id=\"key\">").expect("the key as text") + 9;
    let grouped = &scan.body[at..at + scan.body[at..].find('<').unwrap()];
    let key_text: String = grouped.split_whitespace().collect();
    let key = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &key_text)
        .expect("a base32 key");
    let codes = browser.get("/2fa/setup/codes");
    let at = codes.body.find("<li>").expect("recovery codes") + 4;
    let recovery = codes.body[at..at + codes.body[at..].find('<').unwrap()].to_string();
    let confirmed = browser.submit(
        "/2fa/setup/confirm",
        "/2fa/setup/confirm",
        &[("code", &totp_now(&key))],
    );
    assert!(
        confirmed.body.contains("A 2FA session is open until"),
        "{}",
        confirmed.body
    );

    // 3. The same clone works; so does the one over HTTP, with the
    // password given where git asks for it.
    sh(commands[1], &work, &home, "").ok();
    assert!(
        std::fs::read_to_string(work.join("hello/README.md"))
            .unwrap()
            .starts_with("# hello")
    );
    let log = run("git", &["log", "--oneline"], &work.join("hello"), &home, "").ok();
    assert_eq!(log.stdout.lines().count(), 3, "{log:?}");
    let askpass = top.path().join("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{password}'\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let env = [
        home[0].clone(),
        ("GIT_ASKPASS", askpass.display().to_string()),
    ];
    sh(commands[2], &work, &env, "").ok();
    assert!(work.join("hello-http/README.md").exists());
    // A push goes through the demo's hooks too.
    let clone = work.join("hello");
    std::fs::write(clone.join("NOTES.md"), "pushed through the demo\n").unwrap();
    let identity = [
        home[0].clone(),
        ("GIT_AUTHOR_NAME", "alice".to_string()),
        ("GIT_AUTHOR_EMAIL", "alice@example.com".to_string()),
        ("GIT_COMMITTER_NAME", "alice".to_string()),
        ("GIT_COMMITTER_EMAIL", "alice@example.com".to_string()),
    ];
    run(
        "git",
        &["commit", "--quiet", "-am", "notes"],
        &clone,
        &identity,
        "",
    )
    .ok();
    let ssh_command = commands[1]
        .strip_prefix("GIT_SSH_COMMAND=\"")
        .and_then(|c| c.split('"').next())
        .unwrap()
        .to_string();
    run(
        "git",
        &["push", "--quiet", "origin", "main"],
        &clone,
        &[home[0].clone(), ("GIT_SSH_COMMAND", ssh_command)],
        "",
    )
    .ok();
    // The demo's host is a sound host: `git2fa check` finds nothing wrong.
    let check = run(
        BIN,
        &[
            "--config",
            &dir.join("config.toml").display().to_string(),
            "check",
        ],
        top.path(),
        &[],
        "",
    );
    assert_eq!(check.code, 0, "{check:?}");

    // 4. A session opened from the terminal (with the recovery code, as
    // the code of this 30-second step is spent).
    let verified = sh(commands[3], &work, &home, &format!("{recovery}\n")).ok();
    assert!(
        verified
            .stdout
            .starts_with("git2fa: 2FA session open until "),
        "{verified:?}"
    );
    drop(demo);
    assert!(dir.join("config.toml").exists(), "--dir is kept");
}
