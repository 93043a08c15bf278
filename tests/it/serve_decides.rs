//! `git2fa serve` decides for the host's shims and hooks over
//! `<data_dir>/decide.sock`; without serve the same programs decide
//! themselves, with the same answers and the same audit rows.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::web_server::{self, Server, free_port};
use crate::harness::{HOOK_BIN, HTTP_BIN, Host, Run, SHELL_BIN, code, poll};

/// One operation as git (through sshd, a web server, or receive-pack)
/// would start a shim.
struct Case {
    name: &'static str,
    /// `git2fa-shell`, `git2fa-hook` or `git2fa-http`.
    program: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    cwd: PathBuf,
    stdin: String,
}

struct Table {
    host: Host,
    cases: Vec<Case>,
}

fn basic(user: &str, token: &str) -> String {
    use base64::Engine;
    let pair = format!("{user}:{token}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// alice verified, carol enrolled but not verified, bob without 2FA; `open`
/// needs no 2FA, `team` is flagged; both have a commit and our hooks.
fn table(port: u16) -> Table {
    let host = web_server::host(port, "");
    for user in ["alice", "bob", "carol"] {
        host.add_user(user);
        host.add_key(user);
    }
    let (secret, _) = host.enroll("alice");
    host.enroll("carol");
    host.git2fa(&["verify", "alice", &code(&secret, 0)]).ok();
    host.repo_with_a_commit("open");
    host.repo_with_a_commit("team");
    host.install_hooks();
    host.git2fa(&["repo", "flag", "team"]).ok();
    let token = host.token("alice", "team", "read", &[]);
    let main = host
        .root
        .join("open.git/refs/heads/main")
        .canonicalize()
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let line = format!("{} {} refs/heads/main\n", main.trim(), "1".repeat(40));
    // Key #9 is no key: key #1's fingerprint under another id.
    let args = |id: i64| match id {
        9 => {
            let mut args = host.shell_args(1);
            args[3] = "9".into();
            args
        }
        id => host.shell_args(id),
    };
    let ssh = |name, id: i64, command: &str| Case {
        name,
        program: "git2fa-shell",
        args: args(id),
        env: vec![
            ("SSH_ORIGINAL_COMMAND", command.to_string()),
            ("SSH_CONNECTION", "10.1.2.3 50000 127.0.0.1 22".to_string()),
        ],
        cwd: host.dir.path().to_path_buf(),
        // A client that wants nothing: a flush packet.
        stdin: "0000".to_string(),
    };
    let http = |name, auth: Option<String>, path: &str| Case {
        name,
        program: "git2fa-http",
        args: Vec::new(),
        env: [
            ("GIT2FA_CONFIG", host.config.display().to_string()),
            ("REQUEST_METHOD", "GET".to_string()),
            ("PATH_INFO", path.to_string()),
            ("QUERY_STRING", "service=git-upload-pack".to_string()),
            ("REMOTE_ADDR", "10.4.5.6".to_string()),
            ("HTTP_USER_AGENT", "git/2.47.3".to_string()),
        ]
        .into_iter()
        .chain(auth.map(|a| ("HTTP_AUTHORIZATION", a)))
        .collect(),
        cwd: host.dir.path().to_path_buf(),
        stdin: String::new(),
    };
    let hook = |name, user: &str, key: i64, args: &[&str], stdin: &str| Case {
        name,
        program: "git2fa-hook",
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![
            ("GIT_DIR", ".".to_string()),
            ("GIT2FA_CONFIG", host.config.display().to_string()),
            ("GIT2FA_USER", user.to_string()),
            ("GIT2FA_TRANSPORT", "ssh".to_string()),
            ("GIT2FA_KEY_ID", key.to_string()),
            ("GIT2FA_REMOTE_ADDR", "10.7.8.9".to_string()),
        ],
        cwd: host.root.join("team.git"),
        stdin: stdin.to_string(),
    };
    let update = [
        "update",
        "refs/heads/main",
        &"0".repeat(40),
        &"1".repeat(40),
    ];
    let cases = vec![
        ssh(
            "ssh: a read of an open repository",
            1,
            "git-upload-pack 'open.git'",
        ),
        ssh(
            "ssh: a verified user pushes to a flagged one",
            1,
            "git-receive-pack 'team.git'",
        ),
        ssh("ssh: no session", 3, "git-receive-pack 'team.git'"),
        ssh("ssh: no 2FA set up", 2, "git-receive-pack 'team.git'"),
        ssh("ssh: no such repository", 1, "git-upload-pack 'ghost.git'"),
        ssh(
            "ssh: a path out of the root",
            1,
            "git-upload-pack '../x.git'",
        ),
        ssh("ssh: an unknown key", 9, "git-upload-pack 'open.git'"),
        http(
            "http: a token",
            Some(basic("alice", &token)),
            "/team.git/info/refs",
        ),
        http("http: no credential", None, "/open.git/info/refs"),
        http(
            "http: a wrong token",
            Some(basic("alice", "g2fa_nonsense")),
            "/open.git/info/refs",
        ),
        http(
            "http: a password where 2FA applies",
            Some(basic("alice", crate::harness::fixture::PASSWORD)),
            "/team.git/info/refs",
        ),
        hook(
            "hook: pre-receive, verified",
            "alice",
            1,
            &["pre-receive"],
            &line,
        ),
        hook(
            "hook: pre-receive, no session",
            "carol",
            3,
            &["pre-receive"],
            &line,
        ),
        hook("hook: update, no session", "carol", 3, &update, ""),
        hook("hook: update, no 2FA set up", "bob", 2, &update, ""),
        hook(
            "hook: pre-receive, input that is not git's",
            "alice",
            1,
            &["pre-receive"],
            "junk\n",
        ),
    ];
    Table { host, cases }
}

/// Runs `case` with the program in `bin_dir`.
fn run_case(case: &Case, bin_dir: &Path) -> Run {
    let mut command = Command::new(bin_dir.join(case.program));
    command
        .args(&case.args)
        .current_dir(&case.cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(case.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(case.stdin.as_bytes());
    }
    child.wait_with_output().unwrap().into()
}

/// The audit rows after row `after`, without their ids and times.
fn rows_after(host: &Host, after: usize) -> (Vec<serde_json::Value>, usize) {
    let out = host
        .git2fa(&["audit", "--json", "--since", "2000-01-01"])
        .ok()
        .stdout;
    let mut rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = rows.len();
    rows.drain(..after.min(total));
    for row in &mut rows {
        let object = row.as_object_mut().unwrap();
        object.remove("id");
        object.remove("at");
    }
    (rows, total)
}

/// Each case's answer and rows, run one after the other.
fn run_table(table: &Table, bin_dir: &Path) -> Vec<(Run, Vec<serde_json::Value>)> {
    let (_, mut seen) = rows_after(&table.host, usize::MAX);
    table
        .cases
        .iter()
        .map(|case| {
            let run = run_case(case, bin_dir);
            let (rows, total) = rows_after(&table.host, seen);
            seen = total;
            (run, rows)
        })
        .collect()
}

/// The three shims alone in a directory: without `git2fa` beside them,
/// they cannot hand over, so every answer they give came from serve.
fn lone_shims(dir: &Path) -> PathBuf {
    let bin = dir.join("lone-shims");
    std::fs::create_dir(&bin).unwrap();
    for (name, path) in [
        ("git2fa-shell", SHELL_BIN),
        ("git2fa-hook", HOOK_BIN),
        ("git2fa-http", HTTP_BIN),
    ] {
        std::fs::copy(path, bin.join(name)).unwrap();
    }
    bin
}

#[test]
fn serve_and_the_shims_alone_give_the_same_answers_and_audit_rows() {
    let port = free_port();
    let table = table(port);
    let own_dir = PathBuf::from(SHELL_BIN).parent().unwrap().to_path_buf();
    let alone = run_table(&table, &own_dir);
    let server = Server::start(&table.host, port);
    assert!(table.host.data.join("decide.sock").exists());
    let lone = lone_shims(table.host.dir.path());
    let through_serve = run_table(&table, &lone);
    for ((case, (direct, direct_rows)), (served, served_rows)) in
        table.cases.iter().zip(&alone).zip(&through_serve)
    {
        let name = case.name;
        assert_eq!(
            (direct.code, &direct.stdout, &direct.stderr),
            (served.code, &served.stdout, &served.stderr),
            "{name}: the shim alone, then through serve"
        );
        assert_eq!(direct_rows, served_rows, "{name}: audit rows");
    }
    // The table means something: what a user sees in each case.
    let by_name = |name: &str| {
        let at = table.cases.iter().position(|c| c.name == name).unwrap();
        (&through_serve[at].0, &through_serve[at].1)
    };
    let (read, _) = by_name("ssh: a read of an open repository");
    assert_eq!(read.code, 0, "{read:?}");
    assert!(read.stdout.contains("refs/heads/main"), "{read:?}");
    let (pushed, rows) = by_name("ssh: a verified user pushes to a flagged one");
    assert_eq!(pushed.code, 0, "{pushed:?}");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["outcome"], "allow");
    let (refused, rows) = by_name("ssh: no session");
    assert_eq!(refused.code, 1);
    assert!(refused.stdout.contains("ERR "), "{refused:?}");
    assert!(refused.stderr.contains("/2fa/verify"), "{refused:?}");
    assert_eq!(rows[0]["outcome"], "refuse");
    let (cloned, _) = by_name("http: a token");
    assert!(
        cloned.stdout.contains("# service=git-upload-pack"),
        "{cloned:?}"
    );
    let (anonymous, _) = by_name("http: no credential");
    assert!(anonymous.stdout.starts_with("Status: 401"), "{anonymous:?}");
    let (pushed, rows) = by_name("hook: pre-receive, verified");
    assert_eq!(pushed.code, 0, "{pushed:?}");
    assert_eq!(rows.len(), 1, "one row for the push: {rows:?}");
    assert_eq!(rows[0]["refs"], "refs/heads/main");
    let (held, _) = by_name("hook: update, no session");
    assert!(
        held.stderr.contains("git2fa: refused refs/heads/main:"),
        "{held:?}"
    );
    // With serve gone, the lone shims cannot decide: they refuse, never
    // allow.
    server.terminate();
    drop(server);
    assert!(poll(Duration::from_secs(10), || !table
        .host
        .data
        .join("decide.sock")
        .exists()));
    let refused = run_case(&table.cases[0], &lone);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("2FA check unavailable"),
        "{refused:?}"
    );
}

#[test]
fn a_push_is_decided_once_and_its_update_hooks_only_when_the_policy_changed() {
    let port = free_port();
    let (host, work) = web_server::verified_host(port, "push");
    host.install_hooks();
    let _server = Server::start(&host, port);
    let repo = host.root.join("team.git");
    // Ten branches in one push, through git's receive-pack with the hooks
    // (pre-receive once, update ten times), as the SSH shim starts it.
    let push = |prefix: &str| -> Run {
        let refspecs: Vec<String> = (0..10)
            .map(|i| format!("main:refs/heads/{prefix}{i}"))
            .collect();
        Command::new("git")
            .current_dir(&work)
            .args(["push", "--quiet"])
            .arg(format!("--receive-pack={}", receive_pack(&host)))
            .arg(&repo)
            .args(&refspecs)
            .output()
            .unwrap()
            .into()
    };
    let writes = || -> Vec<String> {
        let audit = host
            .git2fa(&["audit", "--json", "--repo", "team"])
            .ok()
            .stdout;
        audit
            .lines()
            .filter(|l| l.contains("\"write\""))
            .map(str::to_string)
            .collect()
    };
    let run = push("b");
    assert_eq!(run.code, 0, "{run:?}");
    let rows = writes();
    assert_eq!(rows.len(), 1, "one row for the push: {rows:#?}");
    for i in 0..10 {
        assert!(rows[0].contains(&format!("refs/heads/b{i}")), "{}", rows[0]);
    }
    // A policy file changed after pre-receive decided (here by the
    // repository's own pre-receive hook, which runs after ours): each
    // update hook decides its ref again.
    let chained = repo.join("hooks/pre-receive.git2fa-chained");
    std::fs::write(
        &chained,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho '# changed' >> {:?}\n",
            repo.join("git2fa.toml")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&chained, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = push("c");
    assert_eq!(run.code, 0, "{run:?}");
    let rows = writes();
    assert_eq!(
        rows.len(),
        1 + 1 + 10,
        "pre-receive's row, then one per update: {rows:#?}"
    );
}

/// A `--receive-pack` program that runs git's receive-pack with the
/// identity a shim hands over (alice, key #1), as `git2fa-shell` starts it.
fn receive_pack(host: &Host) -> String {
    let script = host.dir.path().join("receive-pack.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nexport GIT2FA_USER=alice GIT2FA_TRANSPORT=ssh GIT2FA_KEY_ID=1 GIT2FA_REMOTE_ADDR=10.0.0.1\nexec git receive-pack \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[test]
fn serve_killed_mid_operation_allows_nothing_without_its_row_and_the_shims_carry_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    let port = free_port();
    // Every read needs 2FA here, and each decision writes its row.
    let (host, _) = web_server::verified_host(port, "all");
    let args = host.shell_args(1);
    let mut server = Server::start(&host, port);
    let stop = Arc::new(AtomicBool::new(false));
    // (address, started, the shim's run): each operation from an address
    // of its own, which names its audit row.
    let runs = Arc::new(Mutex::new(Vec::<(String, Instant, Run)>::new()));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (stop, runs, args) = (stop.clone(), runs.clone(), args.clone());
            let cwd = host.dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let addr = format!("10.{worker}.{}.{}", n / 250, n % 250 + 1);
                    let case = Case {
                        name: "read",
                        program: "git2fa-shell",
                        args: args.clone(),
                        env: vec![
                            ("SSH_ORIGINAL_COMMAND", "git-upload-pack 'team.git'".into()),
                            ("SSH_CONNECTION", format!("{addr} 50000 127.0.0.1 22")),
                        ],
                        cwd: cwd.clone(),
                        stdin: "0000".into(),
                    };
                    let started = Instant::now();
                    let own_dir = PathBuf::from(SHELL_BIN).parent().unwrap().to_path_buf();
                    let run = run_case(&case, &own_dir);
                    runs.lock().unwrap().push((addr, started, run));
                }
            })
        })
        .collect();
    // Killed mid-operation (SIGKILL, no goodbye) twice and started again;
    // then gone for good.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(600));
        server.kill();
        std::thread::sleep(Duration::from_millis(400));
        server = Server::start(&host, port);
    }
    std::thread::sleep(Duration::from_millis(600));
    server.kill();
    let gone = Instant::now();
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let out = host
        .git2fa(&["audit", "--json", "--since", "2000-01-01"])
        .ok()
        .stdout;
    let allowed: std::collections::HashSet<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|row| row["outcome"] == "allow" && row["action"] == "read")
        .filter_map(|row| row["addr"].as_str().map(str::to_string))
        .collect();
    let runs = runs.lock().unwrap();
    assert!(runs.len() > 40, "only {} operations", runs.len());
    let mut after_gone = 0;
    for (addr, started, run) in runs.iter() {
        match run.code {
            0 => {
                assert!(run.stdout.contains("refs/heads/main"), "{addr}: {run:?}");
                assert!(
                    allowed.contains(addr),
                    "{addr} was allowed without its row: {run:?}\n{}",
                    out.lines()
                        .filter(|l| l.contains(&format!("\"{addr}\"")))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                if *started > gone {
                    after_gone += 1;
                }
            }
            _ => {
                assert_eq!(run.code, 1, "{addr}: {run:?}");
                assert!(
                    run.stderr.contains("git2fa: "),
                    "{addr}: refused without words: {run:?}"
                );
            }
        }
    }
    assert!(
        after_gone > 0,
        "with serve gone, the shims decide themselves"
    );
}

// Attack: a local user whose account is not the store's owner talks to
// serve's decide socket directly (an admin loosened the modes of data_dir),
// claiming to be a shim with alice's key or her hook identity, to get
// `allow` answers or git commands to run. serve takes the caller's uid from
// the kernel and hangs up on every account but the store's owner, root
// and its own.
#[test]
fn another_account_gets_no_answer_from_the_decide_socket() {
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    let port = free_port();
    let host = web_server::host(port, "");
    host.add_user("alice");
    host.add_key("alice");
    host.repo_with_a_commit("open");
    let args = host.shell_args(1);
    let _server = Server::start(&host, port);
    let socket = host.data.join("decide.sock");
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [
        (host.dir.path(), 0o755),
        (&host.data, 0o755),
        (&socket, 0o666),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let digest = {
        use sha2::Digest;
        let text = std::fs::read(&host.config).unwrap();
        sha2::Sha256::digest(&text)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let request = format!(
        "git2fa-ask 1\nkind ssh\nconfig {digest}\nkey-id 1\nfingerprint {}\ncommand git-upload-pack 'open.git'\nwait no\n",
        args[5]
    );
    let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(sys.argv[2].encode())\ns.shutdown(socket.SHUT_WR)\nd=b''\nwhile True:\n    c=s.recv(65536)\n    if not c: break\n    d+=c\nsys.stdout.write(d.decode())\n";
    let ask = |uid: Option<u32>| -> Run {
        let mut command = Command::new("python3");
        command.args(["-c", script]).arg(&socket).arg(&request);
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        command.output().unwrap().into()
    };
    // The store's owner is answered: the control.
    let owner = ask(None);
    assert!(
        owner.stdout.contains("\nrun \n") || owner.stdout.ends_with("run \n"),
        "{owner:?}"
    );
    let stranger = ask(Some(NOBODY));
    assert_eq!(stranger.stdout, "", "{stranger:?}");
}

// Attack: an `update` hook answered from the decision of another push. A
// process of the git account that runs hooks itself (as the test does here)
// first runs pre-receive as alice, who may push, then `update` as carol for
// the same change: were serve to answer update hooks by repository and
// parent process alone, carol's push would pass unchecked. The answer from
// memory needs the same pusher and the same change; carol is decided.
#[test]
fn an_update_hook_is_not_answered_from_another_pushers_decision() {
    let port = free_port();
    let table = table(port);
    let _server = Server::start(&table.host, port);
    let lone = lone_shims(table.host.dir.path());
    let case = |name: &str| table.cases.iter().find(|c| c.name == name).unwrap();
    let alice = run_case(case("hook: pre-receive, verified"), &lone);
    assert_eq!(alice.code, 0, "{alice:?}");
    let carol = run_case(case("hook: update, no session"), &lone);
    assert_eq!(carol.code, 1, "{carol:?}");
    assert!(
        carol.stderr.contains("git2fa: refused refs/heads/main:"),
        "{carol:?}"
    );
    // alice's own update for another change is decided too.
    let update = case("hook: update, no session");
    let other = Case {
        name: "alice, another change",
        program: update.program,
        args: vec![
            "update".into(),
            "refs/heads/main".into(),
            "2".repeat(40),
            "3".repeat(40),
        ],
        env: case("hook: pre-receive, verified").env.clone(),
        cwd: update.cwd.clone(),
        stdin: String::new(),
    };
    let rows = || {
        let out = table
            .host
            .git2fa(&["audit", "--json", "--since", "2000-01-01"]);
        out.ok().stdout.lines().count()
    };
    let before = rows();
    let decided = run_case(&other, &lone);
    assert_eq!(decided.code, 0, "{decided:?}");
    assert_eq!(rows(), before + 1, "decided, with its row");
}

// Attack: an admin tightens the policy in config.toml while serve runs
// (here `git = "all"`), and serve, which read the file when it started,
// would go on allowing what the new file refuses. A shim sends the SHA-256
// of the config it read; serve declines a request made under another text,
// and the shim decides by the file as it is now.
#[test]
fn a_config_changed_since_serve_started_is_the_one_that_decides() {
    let port = free_port();
    let table = table(port);
    let _server = Server::start(&table.host, port);
    let read = |table: &Table| {
        let case = table
            .cases
            .iter()
            .find(|c| c.name == "ssh: a read of an open repository")
            .unwrap();
        let carol = Case {
            name: "carol reads an open repository",
            program: case.program,
            args: table.host.shell_args(3),
            env: case.env.clone(),
            cwd: case.cwd.clone(),
            stdin: case.stdin.clone(),
        };
        run_case(&carol, PathBuf::from(SHELL_BIN).parent().unwrap())
    };
    assert_eq!(read(&table).code, 0);
    let text = std::fs::read_to_string(&table.host.config)
        .unwrap()
        .replace("[policy]\n", "[policy]\ngit = \"all\"\n");
    std::fs::write(&table.host.config, text).unwrap();
    let refused = read(&table);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("no open 2FA session"),
        "{refused:?}"
    );
}

/// Under `[policy] wait_for_verify`, a command that serve refused for now
/// waits in the shim (serve answers `wait` and holds nothing), and goes on
/// as soon as the user verifies; a push hook waits the same way.
#[test]
fn through_serve_a_waiting_command_and_push_go_on_once_verified() {
    let port = free_port();
    let host = web_server::host(port, "wait_for_verify = \"6s\"");
    host.add_user("carol");
    host.add_key("carol");
    let (secret, _) = host.enroll("carol");
    host.repo_with_a_commit("team");
    host.git2fa(&["repo", "flag", "team"]).ok();
    let _server = Server::start(&host, port);
    let lone = lone_shims(host.dir.path());
    let ssh = Case {
        name: "carol pushes, then verifies",
        program: "git2fa-shell",
        args: host.shell_args(1),
        env: vec![
            ("SSH_ORIGINAL_COMMAND", "git-receive-pack 'team.git'".into()),
            ("SSH_CONNECTION", "10.1.2.3 50000 127.0.0.1 22".into()),
        ],
        cwd: host.dir.path().to_path_buf(),
        stdin: "0000".into(),
    };
    let hook = Case {
        name: "carol's pre-receive, then she verifies",
        program: "git2fa-hook",
        args: vec!["pre-receive".into()],
        env: vec![
            ("GIT_DIR", ".".into()),
            ("GIT2FA_CONFIG", host.config.display().to_string()),
            ("GIT2FA_USER", "carol".into()),
            ("GIT2FA_TRANSPORT", "ssh".into()),
            ("GIT2FA_KEY_ID", "1".into()),
        ],
        cwd: host.root.join("team.git"),
        stdin: format!("{} {} refs/heads/main\n", "0".repeat(40), "1".repeat(40)),
    };
    let (ssh, hook) = std::thread::scope(|scope| {
        let started = std::time::Instant::now();
        let ssh = scope.spawn(|| run_case(&ssh, &lone));
        let hook = scope.spawn(|| run_case(&hook, &lone));
        std::thread::sleep(Duration::from_millis(1500));
        host.git2fa(&["verify", "carol", &code(&secret, 0)]).ok();
        let done = (ssh.join().unwrap(), hook.join().unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        done
    });
    for run in [&ssh, &hook] {
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stderr.contains("git2fa: waiting up to 6s"), "{run:?}");
    }
    assert!(ssh.stdout.contains("report-status"), "git ran: {ssh:?}");
}
