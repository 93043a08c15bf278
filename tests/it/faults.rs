//! Faults on the way to a decision: the store missing, unreadable, not
//! SQLite, truncated, locked past the busy timeout, on a full file system;
//! secret.key missing or wrong; the config or a repository file malformed.
//! Every transport refuses ("2FA check unavailable"), exits non-zero or
//! answers 403/503, logs the cause, and starts no git.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::postgres::Cluster;
use crate::harness::{HOOK_BIN, HTTP_BIN, Host, SHELL_BIN};

struct Target {
    host: Host,
    marker: PathBuf,
    repo: PathBuf,
    token: String,
    /// git2fa-shell's arguments for alice's key, read while the store works.
    shell_args: Vec<String>,
    log: PathBuf,
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Shell,
    Hook,
    Http,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wrap {
    Plain,
    /// As uid/gid 65534, which may not read the store.
    Nobody,
    /// With files limited to 4 KiB: the store cannot grow.
    FullDisk,
}

#[derive(Debug)]
struct Attempt {
    refused: bool,
    text: String,
    git_started: bool,
}

/// alice with a key and a read token; `team/app` (no 2FA required, so a
/// healthy host allows every attempt below).
fn target() -> Target {
    target_with("")
}

/// `target` with `extra` in the host's config.
fn target_with(extra: &str) -> Target {
    let (host, marker) = crate::hostile_shell::recording_host_with(extra);
    let repo = host.root.join("team/app.git").canonicalize().unwrap();
    let token = host.token("alice", "team/*", "write", &["--without-2fa"]);
    let log = host.dir.path().join("git2fa.log");
    let shell_args = host.shell_args(1);
    Target {
        host,
        marker,
        repo,
        token,
        shell_args,
        log,
    }
}

fn attempt(t: &Target, transport: Transport, wrap: Wrap) -> Attempt {
    let _ = std::fs::remove_file(&t.marker);
    let config = t.host.config.display().to_string();
    let (bin, args): (&str, Vec<String>) = match transport {
        Transport::Shell => (SHELL_BIN, t.shell_args.clone()),
        Transport::Hook => (
            HOOK_BIN,
            vec!["--config".into(), config, "pre-receive".into()],
        ),
        Transport::Http => (HTTP_BIN, vec![]),
    };
    let mut command = match wrap {
        Wrap::FullDisk => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
                .arg(bin)
                .args(&args);
            sh
        }
        _ => {
            let mut direct = Command::new(bin);
            direct.args(&args);
            direct
        }
    };
    if wrap == Wrap::Nobody {
        command.uid(65534).gid(65534);
    }
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("GIT2FA_LOG_FILE", &t.log)
        .current_dir(&t.repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let zero = "0".repeat(40);
    let stdin = match transport {
        Transport::Shell => {
            command.env("SSH_ORIGINAL_COMMAND", "git-receive-pack 'team/app.git'");
            command.env("SSH_CONNECTION", "127.0.0.1 40000 127.0.0.1 22");
            String::new()
        }
        Transport::Hook => {
            command.env("GIT_DIR", ".");
            for (k, v) in [
                ("GIT2FA_USER", "alice"),
                ("GIT2FA_TRANSPORT", "ssh"),
                ("GIT2FA_KEY_ID", "1"),
            ] {
                command.env(k, v);
            }
            format!("{zero} {} refs/heads/main\n", "1".repeat(40))
        }
        Transport::Http => {
            use base64::Engine;
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", t.token));
            command
                .env("GIT2FA_CONFIG", &t.host.config)
                .env("REQUEST_METHOD", "GET")
                .env("HTTP_USER_AGENT", "git/2.47.3")
                .env("PATH_INFO", "/team/app.git/info/refs")
                .env("QUERY_STRING", "service=git-receive-pack")
                .env("REMOTE_ADDR", "127.0.0.1")
                .env("HTTP_AUTHORIZATION", format!("Basic {basic}"));
            String::new()
        }
    };
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let git_started = t.marker.exists();
    let refused = match transport {
        // A CGI program exits 0 after answering; the answer says it.
        Transport::Http => !text.starts_with("Status: ") || !git_started && text.contains("403"),
        _ => !out.status.success(),
    };
    Attempt {
        refused: refused && !git_started,
        text,
        git_started,
    }
}

/// Applies nothing, then checks every transport allows: the control that
/// makes each fault's refusal mean something.
fn assert_all_allowed(t: &Target) {
    for transport in [Transport::Shell, Transport::Hook, Transport::Http] {
        let a = attempt(t, transport, Wrap::Plain);
        assert!(!a.refused, "{transport:?} refused a healthy request: {a:?}");
    }
}

fn assert_all_refused(t: &Target, wrap: Wrap, fault: &str, logged: &str) {
    let transports = [Transport::Shell, Transport::Hook, Transport::Http];
    let attempts: Vec<(Transport, Attempt)> = std::thread::scope(|scope| {
        let handles: Vec<_> = transports
            .iter()
            .map(|&tr| scope.spawn(move || (tr, attempt(t, tr, wrap))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (transport, a) in attempts {
        assert!(
            a.refused && !a.git_started,
            "{fault}: {transport:?} let it through: {a:?}"
        );
        assert!(
            a.text.contains("2FA check unavailable"),
            "{fault}: {transport:?} said: {}",
            a.text
        );
    }
    // The cause is in the log of whoever decided: the shims', or serve's
    // when it decides for them.
    let log = std::fs::read_to_string(&t.log).unwrap_or_default()
        + &std::fs::read_to_string(t.host.dir.path().join("serve.log")).unwrap_or_default();
    assert!(
        log.contains("2FA check unavailable") && log.contains(logged),
        "{fault}: the log lacks {logged:?}:\n{log}"
    );
    let _ = std::fs::remove_file(&t.log);
}

fn remove_store(host: &Host) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", host.store_path().display()));
    }
}

#[test]
fn a_missing_store_refuses_everywhere() {
    let t = target();
    assert_all_allowed(&t);
    remove_store(&t.host);
    assert_all_refused(&t, Wrap::Plain, "missing", "no store at");
    assert!(
        !t.host.store_path().exists(),
        "no transport creates a store"
    );
}

#[test]
fn a_store_that_is_not_sqlite_or_truncated_refuses_everywhere() {
    let t = target();
    assert_all_allowed(&t);
    // Truncated: the pages the header promises are gone.
    let conn = rusqlite::Connection::open(t.host.store_path()).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(t.host.store_path())
        .unwrap();
    file.set_len(4096).unwrap();
    drop(file);
    assert_all_refused(&t, Wrap::Plain, "truncated", "");
    remove_store(&t.host);
    std::fs::write(
        t.host.store_path(),
        "This is a shopping list, not a database.\n".repeat(100),
    )
    .unwrap();
    assert_all_refused(&t, Wrap::Plain, "not SQLite", "not a git2fa store");
}

#[test]
fn an_unreadable_store_refuses_everywhere() {
    use std::os::unix::fs::PermissionsExt;
    let t = target();
    if crate::harness::unix_user() != "root" {
        // Without root the test cannot run a transport as another account.
        crate::harness::e2e_available(false, "root", "(none: run the tests as root)");
        return;
    }
    // Everything but the data directory is readable by the other account.
    for dir in [t.host.dir.path(), &t.host.root, t.marker.parent().unwrap()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&t.host.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(
        t.log.parent().unwrap(),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    assert_all_refused(&t, Wrap::Nobody, "unreadable", "ermission denied");
}

#[test]
fn a_store_locked_past_the_busy_timeout_refuses_everywhere() {
    let t = target();
    assert_all_allowed(&t);
    let conn = rusqlite::Connection::open(t.host.store_path()).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    assert_all_refused(&t, Wrap::Plain, "locked", "locked by another process");
    conn.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_full_file_system_refuses_everywhere() {
    let t = target();
    assert_all_allowed(&t);
    assert_all_refused(&t, Wrap::FullDisk, "full", "");
}

#[test]
fn a_malformed_config_or_repo_file_refuses_everywhere() {
    let t = target();
    assert_all_allowed(&t);
    std::fs::write(
        t.repo.join("git2fa.toml"),
        "require = \"push\"\nwriters = \"everyone\"\n",
    )
    .unwrap();
    assert_all_refused(&t, Wrap::Plain, "repo file", "git2fa.toml:2: writers");
    let shell = attempt(&t, Transport::Shell, Wrap::Plain);
    assert!(
        shell
            .text
            .contains("The error is in the git2fa.toml of team/app, line 2."),
        "{}",
        shell.text
    );
    std::fs::remove_file(t.repo.join("git2fa.toml")).unwrap();
    let good = std::fs::read_to_string(&t.host.config).unwrap();
    std::fs::write(
        &t.host.config,
        format!("{good}\n[policy]\nsession_ttl = \"forever\"\n"),
    )
    .unwrap();
    assert_all_refused(&t, Wrap::Plain, "config", "config.toml");
}

#[test]
fn verifying_without_the_right_secret_key_opens_nothing() {
    let (host, _marker) = crate::hostile_shell::recording_host();
    let (secret, _) = host.enroll("alice");
    let verify = |code: &str| {
        let out = Command::new(SHELL_BIN)
            .args(host.shell_args(1))
            .env_clear()
            .env("SSH_ORIGINAL_COMMAND", "2fa verify")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                let _ = child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{code}\n").as_bytes());
                child.wait_with_output()
            })
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let key = host.data.join("secret.key");
    let original = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let (code, text) = verify(&crate::harness::code(&secret, 0));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("2FA check unavailable"), "{text}");
    // Another key of the right size: the sealed secret does not open.
    std::fs::write(&key, [9u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (code, text) = verify(&crate::harness::code(&secret, 0));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("2FA check unavailable"), "{text}");
    assert!(
        host.git2fa(&["session", "list"]).ok().stdout.is_empty(),
        "no session was opened"
    );
    std::fs::write(&key, original).unwrap();
    let (code, text) = verify(&crate::harness::code(&secret, 0));
    assert_eq!(
        code,
        Some(0),
        "the control: with its key the code opens a session: {text}"
    );
    let _ = Path::new("");
}

#[test]
fn the_web_page_refuses_when_the_store_or_config_is_broken() {
    let port = crate::harness::web_server::free_port();
    let host = crate::harness::web_server::host(port, "");
    let server = crate::harness::web_server::Server::start(&host, port);
    let get = |path: &str| {
        let reply = crate::harness::http::get(server.port, path);
        format!("{}\r\n\r\n{}", reply.head, reply.body)
    };
    assert!(get("/login").starts_with("HTTP/1.1 200"));
    remove_store(&host);
    std::fs::write(host.store_path(), "not a database, just words\n".repeat(50)).unwrap();
    let broken = get("/login");
    assert!(
        broken.starts_with("HTTP/1.1 503") && broken.contains("2FA check unavailable"),
        "{broken}"
    );
    drop(server);
    std::fs::write(&host.config, "repos_root = \n").unwrap();
    let out = Command::new(crate::harness::BIN)
        .args(["--config", &host.config.display().to_string(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("config.toml:1:"),
        "{out:?}"
    );
}

/// A target whose store is a new database of `cluster`.
fn postgres_target(cluster: &Cluster) -> Target {
    let url = cluster.database("faults");
    target_with(&Host::postgres_store(cluster, &url))
}

#[test]
fn postgres_stopped_in_the_middle_of_a_run_refuses_everywhere_then_recovers() {
    if !crate::harness::postgres::available() {
        return;
    }
    let mut cluster = Cluster::start();
    let t = postgres_target(&cluster);
    assert_all_allowed(&t);
    cluster.stop();
    assert_all_refused(&t, Wrap::Plain, "PostgreSQL stopped", "PostgreSQL: ");
    // Nothing to repair: the next operation after the server is back works.
    cluster.start_server();
    assert_all_allowed(&t);
}

#[test]
fn postgres_refusing_the_password_or_unreachable_refuses_everywhere() {
    if !crate::harness::postgres::available() {
        return;
    }
    let cluster = Cluster::start();
    let t = postgres_target(&cluster);
    assert_all_allowed(&t);
    std::fs::write(&cluster.password_file, "not the password\n").unwrap();
    assert_all_refused(
        &t,
        Wrap::Plain,
        "a wrong password",
        "password authentication failed",
    );
    std::fs::write(
        &cluster.password_file,
        format!("{}\n", crate::harness::postgres::PASSWORD),
    )
    .unwrap();
    assert_all_allowed(&t);
    // Nothing listens on the port of a server that is gone.
    let text = std::fs::read_to_string(&t.host.config).unwrap();
    let closed = crate::harness::free_port();
    std::fs::write(
        &t.host.config,
        text.replace(&format!(":{}/", cluster.port), &format!(":{closed}/")),
    )
    .unwrap();
    assert_all_refused(&t, Wrap::Plain, "an unreachable server", "PostgreSQL: ");
}

#[test]
fn the_web_page_and_serve_refuse_while_postgres_is_down() {
    if !crate::harness::postgres::available() {
        return;
    }
    let mut cluster = Cluster::start();
    let url = cluster.database("web");
    let port = crate::harness::web_server::free_port();
    let host = Host::build(
        &format!("http://127.0.0.1:{port}"),
        "",
        &format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n{}",
            Host::postgres_store(&cluster, &url)
        ),
    );
    host.add_user("alice");
    host.bare_repo("team/app.git");
    let token = host.token("alice", "team/*", "read", &["--without-2fa"]);
    let server = crate::harness::web_server::Server::start(&host, port);
    let get = |path: &str, auth: Option<&str>| {
        let reply = match auth {
            Some(token) => {
                use base64::Engine;
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
                let header = format!("Authorization: Basic {basic}");
                crate::harness::http::send(server.port, "GET", path, &[&header], b"")
            }
            None => crate::harness::http::get(server.port, path),
        };
        format!("{}\r\n\r\n{}", reply.head, reply.body)
    };
    let refs = "/git/team/app.git/info/refs?service=git-upload-pack";
    assert!(get("/login", None).starts_with("HTTP/1.1 200"));
    assert!(get(refs, Some(&token)).starts_with("HTTP/1.1 200"));
    cluster.stop();
    let page = get("/login", None);
    assert!(
        page.starts_with("HTTP/1.1 503") && page.contains("2FA check unavailable"),
        "{page}"
    );
    // Git over HTTP is refused as the CGI refuses it.
    let git = get(refs, Some(&token));
    assert!(
        git.starts_with("HTTP/1.1 403") && git.contains("2FA check unavailable"),
        "{git}"
    );
    let log = std::fs::read_to_string(host.dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("PostgreSQL: "),
        "the cause is not logged:\n{log}"
    );
    cluster.start_server();
    assert!(get(refs, Some(&token)).starts_with("HTTP/1.1 200"));
}

// With `git2fa serve` running, the shims ask it for their decisions (and
// the admin CLI sends its statements to its store socket), and it runs
// them on the connections it keeps. PostgreSQL
// going away mid-run must still refuse everything; the cause, with the
// server's words, goes to the log; nothing needs repairing afterwards.
#[test]
fn through_serve_s_store_socket_the_shims_refuse_while_postgres_is_down() {
    if !crate::harness::postgres::available() {
        return;
    }
    let mut cluster = Cluster::start();
    let url = cluster.database("pooled");
    let port = crate::harness::web_server::free_port();
    let t = target_with(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n{}",
        Host::postgres_store(&cluster, &url)
    ));
    let server = crate::harness::web_server::Server::start(&t.host, port);
    let socket = t.host.data.join("store.sock");
    assert!(
        crate::harness::poll(std::time::Duration::from_secs(10), || socket.exists()),
        "no store socket"
    );
    // The store owner's alone.
    assert_eq!(crate::harness::file_mode(&socket) & 0o777, 0o600);
    assert_all_allowed(&t);
    // A password that no longer works: the shims do not connect themselves,
    // so they go on through the connections serve holds.
    std::fs::write(&cluster.password_file, "not the password\n").unwrap();
    assert_all_allowed(&t);

    cluster.stop();
    // serve decides for the shims; it logs the cause.
    assert_all_refused(&t, Wrap::Plain, "PostgreSQL stopped", "PostgreSQL");
    std::fs::write(
        &cluster.password_file,
        format!("{}\n", crate::harness::postgres::PASSWORD),
    )
    .unwrap();
    cluster.start_server();
    assert_all_allowed(&t);

    // Without serve, each shim connects itself, with the password file.
    let mut server = server;
    server.terminate();
    assert_eq!(server.wait(), Some(0), "serve did not stop cleanly");
    assert!(!socket.exists(), "serve left its socket behind");
    std::fs::write(&cluster.password_file, "not the password\n").unwrap();
    assert_all_refused(
        &t,
        Wrap::Plain,
        "a wrong password, without serve",
        "password authentication failed",
    );
}

/// How long a refusal may take past `[store] timeout` (2 s in these
/// tests): starting the process, the TLS-less handshake, the answer's way
/// back through serve.
const MARGIN: std::time::Duration = std::time::Duration::from_secs(3);
const HUNG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Times `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let started = std::time::Instant::now();
    let value = f();
    (value, started.elapsed())
}

/// Each shim, one after the other: refused as unavailable, in time.
fn assert_shims_refused_in_time(t: &Target, fault: &str) {
    for transport in [Transport::Shell, Transport::Hook, Transport::Http] {
        let (a, took) = timed(|| attempt(t, transport, Wrap::Plain));
        assert!(
            a.refused && !a.git_started && a.text.contains("2FA check unavailable"),
            "{fault}: {transport:?}: {a:?}"
        );
        assert!(
            took <= HUNG_TIMEOUT + MARGIN,
            "{fault}: {transport:?} took {took:?} to refuse"
        );
    }
    // The cause is in the log of whoever decided: the shims', or serve's
    // when it decides for them.
    let log = std::fs::read_to_string(&t.log).unwrap_or_default();
    let serve = std::fs::read_to_string(t.host.dir.path().join("serve.log")).unwrap_or_default();
    assert!(
        log.contains("did not answer")
            || serve.contains("2FA check unavailable: PostgreSQL did not answer"),
        "{fault}: the cause is not logged:\n{log}\nserve's log:\n{serve}"
    );
    let _ = std::fs::remove_file(&t.log);
}

/// serve's own paths while the database hangs: the web page, git over
/// HTTP and SSH, the admin CLI through serve's store socket; each refused
/// as unavailable within the timeout plus the margin.
fn assert_serve_refuses_in_time(
    t: &Target,
    web: u16,
    ssh: &crate::harness::sshd::SshClient,
    key: &Path,
    fault: &str,
) {
    let (page, took) = timed(|| crate::harness::http::get(web, "/login"));
    assert!(
        page.status == 503 && page.body.contains("2FA check unavailable"),
        "{fault}: the web page: {} {}",
        page.status,
        page.body
    );
    assert!(
        took <= HUNG_TIMEOUT + MARGIN,
        "{fault}: the web page took {took:?}"
    );
    let header = {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", t.token));
        format!("Authorization: Basic {basic}")
    };
    let (git, took) = timed(|| {
        crate::harness::http::send(
            web,
            "GET",
            "/git/team/app.git/info/refs?service=git-upload-pack",
            &[&header],
            b"",
        )
    });
    assert!(
        git.status == 403 && git.body.contains("2FA check unavailable"),
        "{fault}: /git/: {} {}",
        git.status,
        git.body
    );
    assert!(
        took <= HUNG_TIMEOUT + MARGIN,
        "{fault}: /git/ took {took:?}"
    );
    let (run, took) = timed(|| ssh.ssh_with(key, &[], "git-upload-pack 'team/app.git'", ""));
    assert!(
        run.code != 0 && run.stderr.contains("2FA check unavailable"),
        "{fault}: serve's SSH: {run:?}"
    );
    assert!(
        took <= HUNG_TIMEOUT + MARGIN,
        "{fault}: serve's SSH took {took:?}"
    );
    let (run, took) = timed(|| t.host.git2fa(&["user", "list"]));
    assert!(run.code != 0, "{fault}: the CLI: {run:?}");
    assert!(
        took <= HUNG_TIMEOUT + MARGIN,
        "{fault}: the CLI took {took:?}"
    );
    let log = std::fs::read_to_string(t.host.dir.path().join("serve.log")).unwrap_or_default();
    assert!(
        log.contains("did not answer"),
        "{fault}: serve does not log the cause:\n{log}"
    );
}

/// A host on PostgreSQL (`url`), `[store] timeout = "2s"`, serve's web
/// page and SSH on ports of their own; alice has a real key for serve's
/// SSH.
fn hung_target(cluster: &Cluster, url: &str) -> (Target, u16, u16, PathBuf) {
    let web = crate::harness::free_port();
    let ssh = crate::harness::free_port();
    let t = target_with(&format!(
        "[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh}\"\n{}timeout = \"2s\"\n",
        Host::postgres_store(cluster, url)
    ));
    let key = t.host.add_key("alice");
    (t, web, ssh, key)
}

// A PostgreSQL stopped with SIGSTOP (a hung machine, a stuck disk): its
// kernel still completes TCP's handshake and acknowledges what is sent, so
// no connect timeout or TCP timeout fires. Users waited 30 s (the shims
// through serve's socket), 60 s (the web page behind nginx), over 90 s (a
// shim on its own) and over 240 s (serve's SSH and /git/) to be refused,
// and held their slots meanwhile. Every path now refuses within
// `[store] timeout` plus a small margin, logs the cause, and works again
// once the database goes on.
#[test]
fn a_stopped_postgres_is_refused_in_time_everywhere_then_works_again() {
    if !crate::harness::postgres::available() || !crate::harness::sshd::available() {
        return;
    }
    let cluster = Cluster::start();
    let url = cluster.database("hung");
    let (t, web, ssh_port, key) = hung_target(&cluster, &url);
    assert_all_allowed(&t);
    // Without serve: each shim connects itself.
    cluster.freeze(true);
    assert_shims_refused_in_time(&t, "stopped, shims on their own");
    cluster.freeze(false);
    assert_all_allowed(&t);
    // With serve: the shims through its socket, and serve's own paths.
    let server = crate::harness::web_server::Server::start_with(&t.host, web, &[ssh_port]);
    let ssh = crate::harness::sshd::SshClient {
        port: ssh_port,
        login: "git".into(),
    };
    assert_all_allowed(&t);
    cluster.freeze(true);
    assert_shims_refused_in_time(&t, "stopped, shims through serve");
    assert_serve_refuses_in_time(&t, web, &ssh, &key, "stopped");
    cluster.freeze(false);
    assert_all_allowed(&t);
    let page = crate::harness::http::get(web, "/login");
    assert_eq!(page.status, 200, "{}", page.body);
    drop(server);
}

// The same with a listener that accepts connections and never says a
// word (a wrong port, a half-dead proxy): nothing ever answers.
#[test]
fn a_database_that_never_answers_is_refused_in_time_everywhere() {
    if !crate::harness::postgres::available() || !crate::harness::sshd::available() {
        return;
    }
    let cluster = Cluster::start();
    let url = cluster.database("silent");
    let (t, web, ssh_port, key) = hung_target(&cluster, &url);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let text = std::fs::read_to_string(&t.host.config).unwrap();
    std::fs::write(
        &t.host.config,
        text.replace(&format!(":{}/", cluster.port), &format!(":{silent_port}/")),
    )
    .unwrap();
    assert_shims_refused_in_time(&t, "silent, shims on their own");
    let server = crate::harness::web_server::Server::start_with(&t.host, web, &[ssh_port]);
    let ssh = crate::harness::sshd::SshClient {
        port: ssh_port,
        login: "git".into(),
    };
    assert_shims_refused_in_time(&t, "silent, shims through serve");
    assert_serve_refuses_in_time(&t, web, &ssh, &key, "silent");
    drop(server);
}

// Failover: a url naming several hosts with `target_session_attrs =
// read-write` is tried host by host, and decisions are made on the first
// one that takes writes. Here the first is down (nothing listens), the
// second answers but is read-only (as a replica, or an old primary after a
// failover, is), the third is the primary: git works, and every row lands
// in the third.
#[test]
fn a_url_of_several_hosts_decides_on_the_first_that_takes_writes() {
    if !crate::harness::postgres::available() {
        return;
    }
    let replica = Cluster::start();
    replica.database("faults");
    let mut superuser = replica.superuser("postgres");
    superuser
        .batch_execute("ALTER SYSTEM SET default_transaction_read_only = on")
        .unwrap();
    superuser.batch_execute("SELECT pg_reload_conf()").unwrap();
    let primary = Cluster::start();
    let url = primary.database("faults");
    let closed = crate::harness::free_port();
    let url = url.replace(
        &format!("127.0.0.1:{}", primary.port),
        &format!(
            "127.0.0.1:{closed},127.0.0.1:{},127.0.0.1:{}",
            replica.port, primary.port
        ),
    ) + "?target_session_attrs=read-write";
    let t = target_with(&Host::postgres_store(&primary, &url));
    assert_all_allowed(&t);
    let rows = |cluster: &Cluster| -> i64 {
        cluster
            .superuser("faults")
            .query_one("SELECT count(*) FROM audit", &[])
            .map(|row| row.get(0))
            .unwrap_or(0)
    };
    assert!(
        rows(&primary) >= 3,
        "the decisions' rows are on the primary"
    );
    assert_eq!(
        rows(&replica),
        0,
        "nothing was written to the read-only host"
    );
}
