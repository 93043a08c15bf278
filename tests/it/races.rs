//! Many processes at once, killed writers, and panics: the promises that
//! must hold under concurrency and faults.

use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::harness::{BIN, HOOK_BIN, HTTP_BIN, Host, SHELL_BIN, code};
use crate::hostile_shell::recording_host;

/// Runs `git2fa verify NAME CODE` from `n` processes started together.
fn verify_race(host: &Host, name: &str, code: &str, n: usize) -> Vec<(i32, String)> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let config = host.config.clone();
            let (name, code) = (name.to_string(), code.to_string());
            std::thread::spawn(move || {
                barrier.wait();
                let out = Command::new(BIN)
                    .arg("--config")
                    .arg(&config)
                    .args(["verify", &name, &code])
                    .output()
                    .unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                (out.status.code().unwrap_or(-1), text)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn one_code_in_many_processes_succeeds_once() {
    let host = Host::with_policy("max_failures = 50", "");
    host.add_user("alice");
    let (secret, recovery) = host.enroll("alice");
    for code in [code(&secret, 0), recovery[0].clone()] {
        let results = verify_race(&host, "alice", &code, 8);
        let won = results.iter().filter(|(status, _)| *status == 0).count();
        assert_eq!(won, 1, "{code}: {results:?}");
        assert!(
            results
                .iter()
                .filter(|(s, _)| *s != 0)
                .all(|(_, t)| t.contains("already used")),
            "{results:?}"
        );
    }
    assert_eq!(
        host.git2fa(&["session", "list", "alice"])
            .ok()
            .stdout
            .lines()
            .count(),
        2
    );
}

#[test]
fn concurrent_wrong_codes_lock_at_exactly_max_failures() {
    let host = Host::with_policy("max_failures = 4", "")
        .user("alice")
        .enrolled();
    let secret = host.secret_of("alice");
    let wrong = if code(secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let results = verify_race(&host, "alice", wrong, 12);
    assert!(results.iter().all(|(status, _)| *status == 1));
    let audit = host
        .git2fa(&["audit", "--user", "alice", "--limit", "100"])
        .ok()
        .stdout;
    let counted = audit
        .lines()
        .filter(|l| l.contains(" verify fail wrong-totp"))
        .count();
    let refused_locked = audit
        .lines()
        .filter(|l| l.contains(" verify fail locked"))
        .count();
    assert_eq!((counted, refused_locked), (4, 8), "{audit}");
}

#[test]
fn a_token_revoked_while_in_use_is_refused_from_the_next_request_on() {
    let (host, marker) = recording_host();
    let token = host.token("alice", "team/*", "read", &["--without-2fa"]);
    let request = || {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
        let _ = std::fs::remove_file(&marker);
        let out = Command::new(HTTP_BIN)
            .env_clear()
            .env("GIT2FA_CONFIG", &host.config)
            .env("REQUEST_METHOD", "GET")
            .env("HTTP_USER_AGENT", "git/2.47.3")
            .env("PATH_INFO", "/team/app.git/info/refs")
            .env("QUERY_STRING", "service=git-upload-pack")
            .env("HTTP_AUTHORIZATION", format!("Basic {basic}"))
            .output()
            .unwrap();
        (
            marker.exists(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(request().0, "in use");
    host.git2fa(&["token", "revoke", "1"]).ok();
    let (started, answer) = request();
    assert!(!started && answer.starts_with("Status: 403"), "{answer}");
}

#[test]
fn a_session_ended_while_a_push_waits_is_not_honoured() {
    let (host, _marker) = recording_host();
    let text = std::fs::read_to_string(&host.config)
        .unwrap()
        .replace("[policy]\n", "[policy]\nwait_for_verify = \"3s\"\n");
    std::fs::write(&host.config, text).unwrap();
    let (secret, _) = host.enroll("alice");
    host.git2fa(&["repo", "flag", "team/app"]).ok();
    let repo = host.root.join("team/app.git");
    let push = || {
        let config = host.config.clone();
        let repo = repo.clone();
        std::thread::spawn(move || {
            let mut child = Command::new(HOOK_BIN)
                .args([
                    "--config",
                    &config.display().to_string(),
                    "update",
                    "refs/heads/main",
                    &"0".repeat(40),
                    &"1".repeat(40),
                ])
                .current_dir(&repo)
                .env("GIT_DIR", ".")
                .env("GIT2FA_USER", "alice")
                .env("GIT2FA_TRANSPORT", "ssh")
                .env("GIT2FA_KEY_ID", "1")
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let started = Instant::now();
            let status = child.wait().unwrap();
            (status.success(), started.elapsed())
        })
    };
    // A session that is opened and ended while the push waits: it never
    // counts, however the polls fall (opened and ended in one commit here,
    // so that no poll can see it open).
    let waiting = push();
    std::thread::sleep(Duration::from_millis(800));
    let conn = rusqlite::Connection::open(host.store_path()).unwrap();
    let now = git2fa::system::time::now();
    conn.execute(
        "INSERT INTO sessions (user_id, created_at, expires_at, ended_at, opened_via) VALUES (1, ?1, ?2, ?1, 'web')",
        [now, now + 3600],
    )
    .unwrap();
    let (allowed, waited) = waiting.join().unwrap();
    assert!(!allowed, "an ended session let the push through");
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    // The control: a session opened during the wait lets it continue.
    let waiting = push();
    std::thread::sleep(Duration::from_millis(800));
    host.git2fa(&["verify", "alice", &code(&secret, 0)]).ok();
    let (allowed, waited) = waiting.join().unwrap();
    assert!(allowed && waited < Duration::from_secs(3), "{waited:?}");
}

#[test]
fn writers_killed_mid_transaction_leave_a_sound_store_that_lost_nothing_committed() {
    let host = Host::new();
    host.add_user("alice");
    let mut committed = Vec::new();
    for round in 0..40u64 {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&host.config)
            .args([
                "token",
                "create",
                "alice",
                "--repo",
                "app",
                "--perm",
                "read",
                "--without-2fa",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a different moment each round, often inside the write.
        std::thread::sleep(Duration::from_micros(round * 150));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        // A token is printed only after its transaction committed.
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if printed.starts_with("g2fa_") {
            committed.push(printed);
        }
    }
    let store = git2fa::store::Store::open(&host.store_path()).unwrap();
    assert_eq!(
        store.integrity_problem().unwrap(),
        None,
        "PRAGMA integrity_check"
    );
    for token in &committed {
        assert!(
            store
                .token_by_hash(&git2fa::factor::token::hash(token))
                .unwrap()
                .is_some(),
            "a committed token was lost"
        );
    }
    eprintln!(
        "{} of 40 writers committed before being killed",
        committed.len()
    );

    // Sessions and used recovery codes: a verification that reported
    // success keeps its session and its spent code, whenever it was killed.
    let (_, codes) = host.enroll("alice");
    let mut reported = Vec::new();
    for (round, code) in codes.iter().enumerate() {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&host.config)
            .args(["verify", "alice", code])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(round as u64 * 15));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(rest) = printed.split("2FA session #").nth(1) {
            reported.push((code.clone(), rest.split(' ').next().unwrap().to_string()));
        }
    }
    let store = git2fa::store::Store::open(&host.store_path()).unwrap();
    assert_eq!(store.integrity_problem().unwrap(), None);
    drop(store);
    let sessions = host.git2fa(&["session", "list", "alice"]).ok().stdout;
    for (code, id) in &reported {
        assert!(
            sessions.contains(&format!("session #{id} alice")),
            "session #{id} was lost:\n{sessions}"
        );
        let again = host.git2fa(&["verify", "alice", code]).fails(1);
        assert!(
            again.stderr.contains("already used"),
            "a spent code came back: {again:?}"
        );
    }
    eprintln!(
        "{} of 10 verifications committed before being killed",
        reported.len()
    );
}

#[test]
fn a_panic_in_a_shim_or_hook_refuses_the_operation() {
    let (host, marker) = recording_host();
    let config = host.config.display().to_string();
    let repo = host.root.join("team/app.git");
    // The shim: a request it allows, and a panic just before git starts.
    let shell = |panic: Option<&str>| {
        let mut command = Command::new(SHELL_BIN);
        command
            .args(host.shell_args(1))
            .env_clear()
            .env("SSH_ORIGINAL_COMMAND", "git-upload-pack 'team/app'");
        if let Some(point) = panic {
            command.env("GIT2FA_TEST_PANIC", point);
        }
        command.output().unwrap()
    };
    assert!(
        shell(None).status.success() && marker.exists(),
        "the control: allowed without the panic"
    );
    std::fs::remove_file(&marker).unwrap();
    let out = shell(Some("shell-before-exec"));
    assert!(!out.status.success() && !marker.exists(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("git2fa: internal error, so the operation was refused."),
        "{stderr}"
    );
    assert!(
        !stderr.contains(".rs:"),
        "no source locations for git users: {stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ERR git2fa: internal error"));
    // The hook.
    let hook = |panic: Option<&str>| {
        let mut command = Command::new(HOOK_BIN);
        command
            .args([
                "--config",
                &config,
                "update",
                "refs/heads/main",
                &"0".repeat(40),
                &"1".repeat(40),
            ])
            .current_dir(&repo)
            .env_clear()
            .env("GIT_DIR", ".")
            .env("GIT2FA_USER", "alice")
            .env("GIT2FA_TRANSPORT", "ssh")
            .env("GIT2FA_KEY_ID", "1");
        if let Some(point) = panic {
            command.env("GIT2FA_TEST_PANIC", point);
        }
        command.output().unwrap()
    };
    assert!(hook(None).status.success(), "the control");
    let out = hook(Some("hook-after-allow"));
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("git2fa: internal error, so the push was refused.")
    );
    // The HTTP shim.
    let token = host.token("alice", "team/*", "read", &["--without-2fa"]);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    let _ = std::fs::remove_file(&marker);
    let out = Command::new(HTTP_BIN)
        .env_clear()
        .env("GIT2FA_CONFIG", &host.config)
        .env("REQUEST_METHOD", "GET")
        .env("HTTP_USER_AGENT", "git/2.47.3")
        .env("PATH_INFO", "/team/app.git/info/refs")
        .env("QUERY_STRING", "service=git-upload-pack")
        .env("HTTP_AUTHORIZATION", format!("Basic {basic}"))
        .env("GIT2FA_TEST_PANIC", "http-before-exec")
        .output()
        .unwrap();
    assert!(!marker.exists());
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Status: 403"),
        "{out:?}"
    );
}

// Attack: password guesses sent side by side. Each check read the failure
// count, spent the slow hash, and only then counted its failure, so every
// guess in flight (on one host, or on each host sharing a store) passed
// the throttle together: twelve guesses against a limit of three. A check
// now takes its count before the hash.
#[test]
fn password_guesses_side_by_side_are_held_to_max_failures() {
    use base64::Engine;
    let host = Host::with_policy("max_failures = 3", "[tokens]\npassword_for_git = true\n")
        .user("alice")
        .repo("team/app");
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:not the password");
    let barrier = Arc::new(Barrier::new(12));
    let answers: Vec<String> = (0..12)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let config = host.config.clone();
            let basic = basic.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let out = Command::new(HTTP_BIN)
                    .env_clear()
                    .env("GIT2FA_CONFIG", &config)
                    .env("REQUEST_METHOD", "GET")
                    .env("HTTP_USER_AGENT", "git/2.47.3")
                    .env("PATH_INFO", "/team/app.git/info/refs")
                    .env("QUERY_STRING", "service=git-upload-pack")
                    .env("REMOTE_ADDR", "192.0.2.7")
                    .env("HTTP_AUTHORIZATION", format!("Basic {basic}"))
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let checked = answers
        .iter()
        .filter(|a| a.starts_with("Status: 401"))
        .count();
    let throttled = answers
        .iter()
        .filter(|a| a.contains("too many wrong passwords"))
        .count();
    assert_eq!((checked, throttled), (3, 9), "{answers:#?}");
}
