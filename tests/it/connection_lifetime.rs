//! One git connection runs at most `[policy] max_git_duration`, on both
//! SSH paths: what bounds how long a connection opened before a disable,
//! a key removal or the end of a 2FA session keeps working.

use std::io::Read;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::harness::sshd::SshClient;
use crate::harness::{Host, code};

/// Reads `child`'s output until it ends; at most 30 s (then it is killed).
/// The watchdog kills only a child not yet waited for: a reaped process's
/// id is given again, to another test's processes (it once killed one).
fn until_closed(child: Child) -> (Duration, String, String) {
    use std::sync::{Arc, Mutex};
    let started = Instant::now();
    let child = Arc::new(Mutex::new(Some(child)));
    let (stdout, stderr) = {
        let mut held = child.lock().unwrap();
        let c = held.as_mut().unwrap();
        (c.stdout.take().unwrap(), c.stderr.take().unwrap())
    };
    let watched = Arc::clone(&child);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if stopped.recv_timeout(Duration::from_secs(30)).is_err()
            && let Some(c) = watched.lock().unwrap().as_mut()
        {
            let _ = c.kill();
        }
    });
    let mut out = Vec::new();
    let _ = { stdout }.read_to_end(&mut out);
    let elapsed = started.elapsed();
    let mut err = String::new();
    let _ = { stderr }.read_to_string(&mut err);
    let _ = stop.send(());
    watchdog.join().unwrap();
    if let Some(mut c) = child.lock().unwrap().take() {
        let _ = c.wait();
    }
    (elapsed, String::from_utf8_lossy(&out).into_owned(), err)
}

/// The attack, on either server: alice opens `git-upload-pack` and keeps
/// the connection; the admin disables her; reads had no time limit, so
/// she could go on fetching (by object id, even what was pushed after the
/// disable) for as long as she kept it open.
fn replay(host: &Host, client: &SshClient, key: &Path) {
    let mut child = client.spawn(key, "git-upload-pack 'team/app.git'");
    let mut advertisement = [0u8; 4096];
    let n = child
        .stdout
        .as_mut()
        .unwrap()
        .read(&mut advertisement)
        .unwrap();
    assert!(
        String::from_utf8_lossy(&advertisement[..n]).contains("refs/heads/main"),
        "{:?}",
        String::from_utf8_lossy(&advertisement[..n])
    );
    let opened = Instant::now();
    host.git2fa(&["user", "disable", "alice"]).ok();
    // The connection is held, sending nothing; the server closes it.
    let (_, _, stderr) = until_closed(child);
    let lived = opened.elapsed();
    assert!(
        lived < Duration::from_secs(15),
        "the connection lived {lived:?}: {stderr}"
    );
    assert!(
        stderr.contains(
            "git2fa: this git connection ran for 3s, the longest allowed here; it was closed. Run the command again."
        ),
        "{stderr}"
    );
    // A new connection is refused at once: alice is disabled (sshd does
    // not even accept her key any more).
    let again = client.ssh(key, "git-upload-pack 'team/app.git'", "");
    assert_ne!(again.code, 0, "{again:?}");
    assert!(!again.stdout.contains("refs/heads/main"), "{again:?}");
}

#[test]
fn a_held_read_through_sshd_ends_at_max_git_duration() {
    let Some(s) = crate::ssh::setup("max_git_duration = \"3s\"") else {
        return;
    };
    replay(&s.host, &s.sshd.client(), &s.key);
}

#[test]
fn a_held_read_on_the_embedded_server_ends_at_max_git_duration() {
    let Some(s) = crate::serve::setup("max_git_duration = \"3s\"") else {
        return;
    };
    // team/app requires 2FA for everything here: alice verifies first.
    s.ssh
        .ssh(&s.key, "2fa verify", &format!("{}\n", code(&s.secret, 0)))
        .ok();
    replay(&s.host, &s.ssh, &s.key);
}
