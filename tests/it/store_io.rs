//! What a decision costs the store on disk, as strace sees it. The WAL
//! stays between processes: a decision is one fsync, its commit's, and
//! deletes nothing. A WAL made anew has its directory entry synced before
//! anything relies on it.

use std::path::Path;
use std::process::Command;

use crate::harness::fixture::Fixture;
use crate::harness::{HTTP_BIN, Host, e2e_available, which};

/// The fsyncs and unlinks of one `git2fa-http` decision (a token clone's
/// first request), git http-backend's included: (fsynced, unlinked), each
/// the path strace printed.
fn traced(host: &Fixture, token: &str) -> (Vec<String>, Vec<String>) {
    use base64::Engine;
    let log = host.dir.path().join("strace.log");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    let out = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-e",
            "trace=fsync,fdatasync,unlink,unlinkat,rename,renameat",
        ])
        .arg("-o")
        .arg(&log)
        .arg(HTTP_BIN)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("GIT2FA_CONFIG", &host.config)
        .env("REQUEST_METHOD", "GET")
        .env("HTTP_USER_AGENT", "git/2.47.3")
        .env("PATH_INFO", "/app.git/info/refs")
        .env("QUERY_STRING", "service=git-upload-pack")
        .env("HTTP_AUTHORIZATION", format!("Basic {auth}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("# service=git-upload-pack"),
        "not served: {stdout}"
    );
    let trace = std::fs::read_to_string(&log).unwrap();
    let path_of = |line: &str| -> Option<String> {
        let start = line.find('<')? + 1;
        let end = line[start..].find('>')? + start;
        Some(line[start..end].to_string())
    };
    let fsynced = trace
        .lines()
        .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
        .filter_map(path_of)
        .collect();
    let data = host.data.display().to_string();
    let unlinked = trace
        .lines()
        .filter(|l| l.contains("unlink") || l.contains("rename"))
        .filter(|l| l.contains(&data))
        .map(str::to_string)
        .collect();
    (fsynced, unlinked)
}

#[test]
fn a_decision_costs_one_fsync_and_deletes_nothing() {
    if !e2e_available(which("strace").is_some(), "strace", "strace") {
        return;
    }
    let host = Host::new().user("alice");
    host.bare_repo("app.git");
    let token = host.token("alice", "app", "read", &["--without-2fa"]);
    // The first request also records the token's first use.
    traced(&host, &token);
    let wal = host
        .store_path()
        .with_extension("db-wal")
        .canonicalize()
        .unwrap();
    for _ in 0..3 {
        let (fsynced, unlinked) = traced(&host, &token);
        assert_eq!(fsynced, [wal.display().to_string()], "one fsync, the WAL's");
        assert_eq!(unlinked, Vec::<String>::new(), "nothing deleted");
    }
    let audit = host.git2fa(&["audit", "--user", "alice"]).ok().stdout;
    assert_eq!(
        audit.lines().filter(|l| l.contains(" allow ")).count(),
        4,
        "every decision has its audit row:\n{audit}"
    );

    // Many decisions later the WAL is still short: a close past 256 KiB
    // empties it, so that no process rebuilds the index of a long WAL.
    for _ in 0..40 {
        traced(&host, &token);
    }
    let wal_len = std::fs::metadata(&wal).unwrap().len();
    assert!(wal_len <= 512 * 1024, "the WAL grew to {wal_len} bytes");

    // An emptied WAL, removed while nothing runs: the next decision makes
    // a new one and syncs the directory that now names it.
    git2fa::store::Store::open(&host.store_path())
        .unwrap()
        .checkpoint()
        .unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "checkpointed");
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(host.store_path().with_extension("db-shm"));
    let (fsynced, _) = traced(&host, &token);
    let dir = host.data.canonicalize().unwrap().display().to_string();
    assert_eq!(
        fsynced.first(),
        Some(&dir),
        "the directory first: {fsynced:?}"
    );
    assert!(
        fsynced[1..].iter().all(|f| *f == wal.display().to_string()) && fsynced.len() > 1,
        "then the WAL (its new header, the commit): {fsynced:?}"
    );
    assert!(Path::new(&wal).exists());
    let audit = host
        .git2fa(&["audit", "--user", "alice", "--limit", "1000"])
        .ok()
        .stdout;
    assert_eq!(audit.lines().filter(|l| l.contains(" allow ")).count(), 45);
}

/// With `git2fa serve` running, a forced command opens no store file and
/// asks serve once; serve's decision is one fsync, and the row is there.
#[test]
fn with_serve_running_the_shim_opens_no_store_file_and_asks_once() {
    use crate::harness::SHELL_BIN;
    use crate::harness::web_server::{self, Server, free_port};
    if !e2e_available(which("strace").is_some(), "strace", "strace") {
        return;
    }
    let port = free_port();
    let (host, _) = web_server::verified_host(port, "all");
    let _server = Server::start(&host, port);
    let log = host.dir.path().join("strace.log");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=%file,%network,%process"])
        .arg("-o")
        .arg(&log)
        .arg(SHELL_BIN)
        .args(host.shell_args(1))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SSH_ORIGINAL_COMMAND", "git-upload-pack 'team.git'")
        .env("SSH_CONNECTION", "10.9.9.9 50000 127.0.0.1 22")
        .stdin(std::fs::File::open("/dev/null").unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refs/heads/main"), "not served: {out:?}");
    let trace = std::fs::read_to_string(&log).unwrap();
    let data = host.data.display().to_string();
    let store_opens: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("open") && l.contains(&data))
        .collect();
    assert!(store_opens.is_empty(), "the shim opened: {store_opens:#?}");
    let connects: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("connect(") && !l.contains("/dev/log"))
        .collect();
    assert_eq!(connects.len(), 1, "one round trip: {connects:#?}");
    assert!(connects[0].contains("decide.sock"), "{connects:#?}");
    let programs: Vec<&str> = trace.lines().filter(|l| l.contains("execve(")).collect();
    assert_eq!(programs.len(), 2, "the shim, then git: {programs:#?}");
    assert!(programs[1].contains("upload-pack"), "{programs:#?}");
    let audit = host.git2fa(&["audit", "--json"]).ok().stdout;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"10.9.9.9\"") && l.contains("\"allow\"")),
        "{audit}"
    );
}
