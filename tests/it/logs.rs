//! Logs as an admin reads them: a real rsyslogd (Debian's `rsyslog`)
//! listening on the socket `[log] syslog_socket` names, git over HTTP
//! through nginx and `git2fa-http`, and the admin CLI. Every committed
//! audit row reaches syslog as one line of `key=value` fields when
//! `[log] audit = "syslog"`; every line in `[log] file` has its time and
//! level. The file is set in `config.toml`, where the CGI reads it
//! whatever nginx passes (a `fastcgi_param` in nginx's `server {}` block
//! is dropped by a `location` that sets its own).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::nginx::{self, Nginx};
use crate::harness::{Host, Process, code, e2e_available, run};

fn rsyslog_available() -> bool {
    e2e_available(
        Path::new("/usr/sbin/rsyslogd").exists(),
        "/usr/sbin/rsyslogd",
        "rsyslog",
    )
}

/// rsyslogd in the foreground, taking lines on `dir/log` and writing
/// them to `dir/messages`.
fn rsyslogd(dir: &Path) -> (Process, PathBuf, PathBuf) {
    let socket = dir.join("log");
    let messages = dir.join("messages");
    let config = dir.join("rsyslog.conf");
    std::fs::write(
        &config,
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{socket}\")\n\
             *.* action(type=\"omfile\" file=\"{messages}\" template=\"RSYSLOG_FileFormat\")\n",
            dir = dir.display(),
            socket = socket.display(),
            messages = messages.display(),
        ),
    )
    .unwrap();
    let process = Process::spawn(
        Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(&config)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslogd.stderr")).unwrap()),
    );
    assert!(
        crate::harness::poll(Duration::from_secs(10), || socket.exists()),
        "rsyslogd made no socket"
    );
    (process, socket, messages)
}

/// Waits until `path` has a line with every one of `parts`; that line.
#[track_caller]
fn line_with(path: &Path, parts: &[&str]) -> String {
    let find = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_string)
    };
    crate::harness::poll(Duration::from_secs(10), || find().is_some());
    find().unwrap_or_else(|| {
        panic!(
            "no line with {parts:?} in {}:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        )
    })
}

#[test]
fn audit_rows_reach_syslog_and_every_file_line_has_its_time_and_level() {
    if !rsyslog_available() || !nginx::available() {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let (_rsyslogd, socket, messages) = rsyslogd(logs.path());
    let file = logs.path().join("git2fa.log");
    let host = Host::build(
        "http://127.0.0.1:8080",
        "",
        &format!(
            "[log]\nfile = \"{}\"\naudit = \"syslog\"\nsyslog_socket = \"{}\"\n",
            file.display(),
            socket.display()
        ),
    );
    let f = host.user("alice").enrolled().repo("team/app");
    f.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let token = f.token("alice", "team/app", "read", &[]);
    let nginx = Nginx::start(&f);
    let home = f.dir.path().display().to_string();
    let git = |url: &str| {
        run(
            "git",
            &["ls-remote", url],
            f.dir.path(),
            &[("HOME", home.clone())],
            "",
        )
    };

    // Allowed, refused (no such repository for the token), and an error
    // on the way to a decision (a broken git2fa.toml).
    git(&nginx.url("alice", &token, "team/app.git")).ok();
    let other = git(&nginx.url("alice", &token, "team/other.git"));
    assert_ne!(other.code, 0, "{other:?}");
    std::fs::write(f.root.join("team/app.git/git2fa.toml"), "require = [\n").unwrap();
    let broken = git(&nginx.url("alice", &token, "team/app.git"));
    assert_ne!(broken.code, 0, "{broken:?}");
    // The admin CLI: a code verified.
    f.git2fa(&["verify", "alice", &code(f.secret_of("alice"), 0)])
        .ok();

    // syslog: one line per row, with its fields.
    let allowed = line_with(
        &messages,
        &[
            "git2fa-http[",
            "audit ",
            "transport=http",
            "user=alice",
            "action=read",
            "outcome=allow",
            "repo=team/app",
            "credential=token",
        ],
    );
    assert!(allowed.contains(" addr=127.0.0.1"), "{allowed}");
    line_with(
        &messages,
        &[
            "git2fa-http[",
            "audit ",
            "user=alice",
            "outcome=refuse",
            "repo=team/other",
        ],
    );
    line_with(
        &messages,
        &[
            "git2fa[",
            "audit ",
            "transport=cli",
            "user=alice",
            "action=verify",
            "outcome=ok",
        ],
    );
    // The token never appears in a log line.
    let all = std::fs::read_to_string(&messages).unwrap();
    assert!(!all.contains(&token), "{all}");

    // The file: the same rows and the cause of the broken file, each line
    // with its time (UTC) and level.
    line_with(&file, &["git2fa-http[", " info: audit ", "outcome=allow"]);
    line_with(
        &file,
        &["git2fa-http[", " notice: audit ", "outcome=refuse"],
    );
    line_with(&file, &["git2fa-http[", "git2fa.toml"]);
    // serve's own lines too (they also go to its standard error).
    let port = crate::harness::web_server::free_port();
    let mut config = std::fs::read_to_string(&f.config).unwrap();
    config.push_str(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n"
    ));
    std::fs::write(&f.config, config).unwrap();
    let serve = crate::harness::web_server::Server::start(&f, port);
    line_with(
        &file,
        &[
            "git2fa[",
            "] info: ",
            &format!("web page on http://127.0.0.1:{port}"),
        ],
    );
    drop(serve);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token), "{text}");
    for line in text.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(
            time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "no time: {line}"
        );
        let level = rest.split_once("] ").map(|(_, r)| r).unwrap_or("");
        assert!(
            ["error:", "warning:", "notice:", "info:", "debug:"]
                .iter()
                .any(|l| level.starts_with(l)),
            "no level: {line}"
        );
    }
}

#[test]
fn without_audit_to_syslog_nothing_but_causes_is_sent() {
    if !rsyslog_available() {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let (_rsyslogd, socket, messages) = rsyslogd(logs.path());
    let host = Host::build(
        "http://127.0.0.1:8080",
        "",
        &format!("[log]\nsyslog_socket = \"{}\"\n", socket.display()),
    );
    let f = host.user("alice").enrolled();
    f.git2fa(&["verify", "alice", &code(f.secret_of("alice"), 0)])
        .ok();
    f.git2fa(&["verify", "alice", "000000"]);
    std::thread::sleep(Duration::from_millis(500));
    let all = std::fs::read_to_string(&messages).unwrap_or_default();
    assert!(!all.contains("audit "), "{all}");
}
