//! Unix-account hosts: a hook run by another account than the store's
//! asks `git2fa serve` on `[daemon] socket`, and the daemon takes the
//! account from the kernel, whatever the hook's environment or the
//! question claims.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::web_server::{Server, free_port};
use crate::harness::{HOOK_BIN, Host, Run, code, e2e_available, run_with_stdin, unix_user};

const NOBODY: u32 = 65534;
const ZERO: &str = "0000000000000000000000000000000000000000";
const ONE: &str = "1111111111111111111111111111111111111111";

struct Setup {
    host: Host,
    server: Option<Server>,
    socket: PathBuf,
    repo: PathBuf,
    hook_bin: PathBuf,
}

fn setup() -> Option<Setup> {
    if !e2e_available(
        unix_user() == "root",
        "root (to run a hook as the account nobody)",
        "(none: run the tests as root)",
    ) {
        return None;
    }
    let web = free_port();
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"\"\n"),
    );
    let socket = host.dir.path().join("hook.sock");
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&host.config)
        .unwrap();
    writeln!(config, "[daemon]\nsocket = {socket:?}").unwrap();
    // nobody may read the config and the repositories, not the store.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(host.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hook_bin = host.dir.path().join("git2fa-hook");
    std::fs::copy(HOOK_BIN, &hook_bin).unwrap();
    host.add_user("alice");
    host.add_user("nobody");
    let repo = host.bare_repo("team/app.git");
    host.install_hooks();
    host.git2fa(&["repo", "flag", "team/app"]).ok();
    // alice could push right now: a hook that passed for alice would be
    // allowed.
    let (alice_secret, _) = host.enroll("alice");
    host.git2fa(&["verify", "alice", &code(&alice_secret, 0)])
        .ok();
    let server = Server::start(&host, web);
    Some(Setup {
        host,
        server: Some(server),
        socket,
        repo,
        hook_bin,
    })
}

impl Setup {
    /// `update refs/heads/main` as the account nobody, with an environment
    /// that claims to be alice's push through the SSH shim.
    fn hook_as_nobody(&self) -> Run {
        self.hook_as_nobody_with(&["update", "refs/heads/main", ZERO, ONE], "")
    }

    fn hook_as_nobody_with(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = Command::new(&self.hook_bin);
        command
            .args(["--config", &self.host.config.display().to_string()])
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("GIT_DIR", &self.repo)
            .env("GIT2FA_USER", "alice")
            .env("GIT2FA_TRANSPORT", "ssh")
            .env("GIT2FA_KEY_ID", "1")
            .env("REMOTE_USER", "alice")
            .current_dir(&self.repo)
            .uid(NOBODY)
            .gid(NOBODY);
        run_with_stdin(&mut command, stdin)
    }

    fn audit(&self, user: &str) -> String {
        self.host.git2fa(&["audit", "--user", user]).ok().stdout
    }
}

fn ask_raw(socket: &Path, question: &str) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(question.as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_hook_run_as_nobody_is_decided_for_nobody_whatever_it_claims() {
    let Some(mut s) = setup() else { return };
    // The store is out of nobody's reach: only the daemon can answer.
    let refused = s.hook_as_nobody().fails(1);
    for line in [
        "git2fa: refused refs/heads/main:",
        "git2fa: team/app requires two-factor authentication (2FA) to push.",
        "nobody has not set up 2FA yet.",
    ] {
        assert!(refused.stderr.contains(line), "{line:?}:\n{refused:?}");
    }
    let audit = s.audit("nobody");
    assert!(
        audit.contains(" local nobody write refuse ") && audit.contains("credential=unix"),
        "{audit}"
    );
    assert!(
        !s.audit("alice").contains(" write "),
        "alice pushed nothing"
    );
    // A push of thousands of refs: a question far larger than a socket
    // buffer is read whole (the daemon once read it without blocking, and
    // refused such pushes as "unavailable").
    let refs: String = (0..5000)
        .map(|i| format!("{ZERO} {ONE} refs/heads/topic/a-rather-long-branch-name-{i:05}\n"))
        .collect();
    let many = s.hook_as_nobody_with(&["pre-receive"], &refs).fails(1);
    assert!(
        many.stderr.contains("nobody has not set up 2FA yet."),
        "{many:?}"
    );

    // Once nobody has a 2FA session of its own, its push goes through.
    let (secret, _) = s.host.enroll("nobody");
    s.host.git2fa(&["verify", "nobody", &code(&secret, 0)]).ok();
    s.hook_as_nobody().ok();
    assert!(
        s.audit("nobody").contains(" local nobody write allow "),
        "{}",
        s.audit("nobody")
    );

    // A question that names a user is not a question the daemon answers.
    let answer = ask_raw(
        &s.socket,
        &format!(
            "git2fa-hook 1\nkind update\ndir {}\nuser alice\nref refs/heads/main\n",
            s.repo.display()
        ),
    );
    assert!(answer.ends_with("\nrefuse\n"), "{answer}");
    assert!(
        answer.contains("say git2fa: 2FA check unavailable"),
        "{answer}"
    );

    // With the daemon stopped, the push is refused and says why.
    drop(s.server.take());
    assert!(!s.socket.exists(), "the daemon removes its socket");
    let down = s.hook_as_nobody().fails(1);
    assert!(
        down.stderr.contains(&format!(
            "git2fa: the git2fa daemon does not answer at {}, so the push was refused.",
            s.socket.display()
        )),
        "{down:?}"
    );
}

/// Attack: on a Unix-account host, the `update` stub is executable for the
/// daemon's account but not for the pusher's (mode 0744), so git, running
/// as the pusher, skips `update`. A daemon that let pre-receive leave
/// protected refs to `update` (as the shims' hooks do) would let a push to
/// `main` through without 2FA. The daemon decides every ref in pre-receive.
#[test]
fn the_daemon_does_not_leave_protected_refs_to_an_update_hook_the_pusher_cannot_run() {
    let Some(s) = setup() else { return };
    std::fs::write(
        s.repo.join("git2fa.toml"),
        "require = \"push\"\nprotected_refs = [\"refs/heads/main\"]\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            s.repo.join("hooks/update"),
            std::fs::Permissions::from_mode(0o744),
        )
        .unwrap();
    }
    let main = s
        .hook_as_nobody_with(&["pre-receive"], &format!("{ZERO} {ONE} refs/heads/main\n"))
        .fails(1);
    assert!(
        main.stderr.contains("nobody has not set up 2FA yet."),
        "{main:?}"
    );
    // A ref that is not protected still goes through.
    s.hook_as_nobody_with(
        &["pre-receive"],
        &format!("{ZERO} {ONE} refs/heads/topic\n"),
    )
    .ok();
}

// Attack: a local user keeps every one of the daemon's 64 question slots
// with connections that each send one byte every few seconds. The
// 10-second limit held per read, not per question, so the slots were never
// freed and every push on the host was refused as "busy". A question must
// now arrive whole within 10 seconds, and one account holds at most 8
// slots, so another account's push is answered meanwhile.
#[test]
fn slow_questions_lose_their_slot_after_ten_seconds() {
    let Some(s) = setup() else { return };
    let started = std::time::Instant::now();
    let drips: Vec<_> = (0..64)
        .map(|_| {
            let mut stream = UnixStream::connect(&s.socket).unwrap();
            std::thread::spawn(move || {
                // Bounded: at most 25 s of dripping.
                for _ in 0..10 {
                    if stream.write_all(b"g").is_err() {
                        return true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2500));
                }
                false
            })
        })
        .collect();
    // While they drip, nobody's push is decided, not refused as busy.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let answered = s.hook_as_nobody().fails(1);
    assert!(
        answered.stderr.contains("nobody has not set up 2FA yet."),
        "{answered:?}"
    );
    // Past the question's deadline the daemon has dropped them all.
    std::thread::sleep(std::time::Duration::from_secs(12).saturating_sub(started.elapsed()));
    let cut = drips
        .into_iter()
        .map(|d| d.join().unwrap())
        .filter(|&cut| cut)
        .count();
    assert_eq!(cut, 64, "every slow question was cut off");
}
