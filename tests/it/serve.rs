//! `git2fa serve` as one process: the real OpenSSH client and git against
//! its embedded SSH server and its smart HTTP under `/git/`, with the same
//! messages as the shims; the offered-key attack; no shell, PTY or client
//! environment; a clean stop that lets an operation under way finish.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::client::Client;
use crate::harness::fixture::{Fixture, PASSWORD};
use crate::harness::sshd::{SshClient, keygen};
use crate::harness::web_server::{Server, free_port};
use crate::harness::{Host, Run, code, e2e_available, poll, run, which};

pub struct Served {
    pub host: Fixture,
    pub server: Server,
    pub web: u16,
    pub ssh: SshClient,
    pub key: PathBuf,
    pub secret: Vec<u8>,
    pub work: PathBuf,
}

/// Whether the OpenSSH client is here (it fails or skips as the other
/// end-to-end tests do).
pub(crate) fn ssh_client_available() -> bool {
    e2e_available(which("ssh").is_some(), "ssh", "openssh-client")
        && e2e_available(
            which("ssh-keygen").is_some(),
            "ssh-keygen",
            "openssh-client",
        )
}

/// alice with a key and 2FA enrolled; `team/app` with one commit and the
/// git2fa hooks, requiring 2FA for everything; `git2fa serve` with web and
/// SSH on free loopback ports.
pub(crate) fn setup(extra: &str) -> Option<Served> {
    if !ssh_client_available() {
        return None;
    }
    let web = free_port();
    let ssh_port = free_port();
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        "",
        &format!(
            "{extra}\n[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh_port}\"\n"
        ),
    );
    let host = host.user("alice").key().enrolled().repo("team/app").hooks();
    host.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let (key, secret) = (host.key_of("alice").into(), host.secret_of("alice").into());
    let work = host.work().to_path_buf();
    let server = Server::start_with(&host, web, &[ssh_port]);
    Some(Served {
        host,
        server,
        web,
        ssh: SshClient {
            port: ssh_port,
            login: "git".into(),
        },
        key,
        secret,
        work,
    })
}

impl Served {
    fn git_ssh(&self, cwd: &Path, args: &[&str]) -> Run {
        self.ssh.git(&self.key, cwd, args)
    }

    fn http_url(&self, secret: &str, repo: &str) -> String {
        // byte_serialize writes a space as `+`, which a URL's user part
        // takes literally; a literal `+` it writes as `%2B`.
        let secret: String = form_urlencoded::byte_serialize(secret.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        format!("http://alice:{secret}@127.0.0.1:{}/git/{repo}", self.web)
    }

    fn git_http(&self, cwd: &Path, args: &[&str]) -> Run {
        run(
            "git",
            args,
            cwd,
            &[("HOME", self.host.dir.path().display().to_string())],
            "",
        )
    }

    fn commit(&self, message: &str) {
        crate::harness::commit_readme(&self.work, message);
    }

    fn audit(&self) -> String {
        self.host.git2fa(&["audit", "--limit", "200"]).ok().stdout
    }
}

#[track_caller]
fn shows(run: &Run, lines: &[&str]) {
    for line in lines {
        assert!(run.stderr.contains(line), "{line:?} missing:\n{run:?}");
    }
}

#[test]
fn ssh_to_serve_is_refused_until_verified_with_ssh_then_clones_and_pushes() {
    let Some(s) = setup("") else { return };
    let url = format!("ssh://git@127.0.0.1:{}/team/app.git", s.ssh.port);
    let top = s.host.dir.path();
    let refused = s.git_ssh(top, &["clone", "--quiet", &url, "c1"]).fails(128);
    // The lines git2fa-shell behind OpenSSH prints, word for word.
    shows(
        &refused,
        &[
            "git2fa: team/app requires two-factor authentication (2FA) to read (clone, fetch).\n",
            "alice has no open 2FA session.\n",
            &format!(
                "Verify at http://127.0.0.1:{}/2fa/verify?repo=team/app\n",
                s.web
            ),
            &format!("or run: ssh -p {} git@127.0.0.1 2fa verify\n", s.ssh.port),
            "then run the same git command again.\n",
            &format!(
                "fatal: remote error: git2fa: team/app requires two-factor authentication (2FA) to read (clone, fetch). \
                 alice has no open 2FA session. Verify at http://127.0.0.1:{}/2fa/verify?repo=team/app \
                 or run: ssh -p {} git@127.0.0.1 2fa verify then run the same git command again.\n",
                s.web, s.ssh.port
            ),
        ],
    );
    assert!(!top.join("c1").exists());
    // The hint works typed as printed (with this test's key and host-key
    // options after `ssh`).
    let hint = refused
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("or run: "))
        .unwrap();
    let mut words: Vec<String> = hint.split(' ').map(str::to_string).collect();
    let options: Vec<String> = s
        .ssh
        .ssh_command(&s.key)
        .split(' ')
        .skip(1)
        .filter(|w| !w.starts_with("-p") && *w != s.ssh.port.to_string())
        .map(str::to_string)
        .collect();
    words.splice(1..1, options);
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    // (The code of the previous step: the current one is used below.)
    let typed = run(
        "ssh",
        &args,
        top,
        &[],
        &format!("{}\n", code(&s.secret, -1)),
    );
    assert!(
        typed.stdout.starts_with("git2fa: 2FA session open until "),
        "{typed:?}"
    );
    s.host.git2fa(&["session", "end", "--user", "alice"]).ok();
    let push = s.git_ssh(&s.work, &["push", &url, "main"]).fails(128);
    shows(
        &push,
        &[
            "fatal: remote error: git2fa: team/app requires two-factor authentication (2FA) to push.",
        ],
    );

    let verified = s
        .ssh
        .ssh(&s.key, "2fa verify", &format!("{}\n", code(&s.secret, 0)))
        .ok();
    assert!(
        verified
            .stdout
            .starts_with("git2fa: 2FA session open until ")
            && verified
                .stdout
                .ends_with("(1h). Git operations now work.\n"),
        "{verified:?}"
    );
    assert!(
        verified
            .stderr
            .contains("Code from your authenticator app (or a recovery code): "),
        "{verified:?}"
    );

    s.git_ssh(top, &["clone", "--quiet", &url, "c2"]).ok();
    assert_eq!(
        std::fs::read_to_string(top.join("c2/README")).unwrap(),
        "hello\n"
    );
    s.commit("second over ssh");
    s.git_ssh(&s.work, &["push", "--quiet", &url, "main"]).ok();
    s.git_ssh(&top.join("c2"), &["pull", "--quiet", "origin", "main"])
        .ok();
    assert_eq!(
        std::fs::read_to_string(top.join("c2/README")).unwrap(),
        "second over ssh"
    );
    // Each decision has its audit row, as through the shim and the hooks.
    let audit = s.audit();
    for wanted in [
        " ssh alice read refuse ",
        " ssh alice write refuse ",
        " ssh alice read allow ",
        " ssh alice write allow ",
    ] {
        assert!(audit.contains(wanted), "{wanted:?} missing:\n{audit}");
    }
}

#[test]
fn http_to_serve_is_refused_until_verified_in_the_web_page() {
    let Some(s) = setup("[tokens]\npassword_for_git = true") else {
        return;
    };
    let top = s.host.dir.path();
    let url = s.http_url(PASSWORD, "team/app.git");
    let refused = s
        .git_http(top, &["clone", "--quiet", &url, "c1"])
        .fails(128);
    // The lines git2fa-http behind nginx gives, word for word.
    shows(
        &refused,
        &[
            "remote: git2fa: team/app requires two-factor authentication (2FA): alice has no open 2FA session, and a password works for git here only during one.\n",
            &format!(
                "remote: Verify at http://127.0.0.1:{}/2fa/verify?repo=team/app\n",
                s.web
            ),
            "error: 403",
        ],
    );
    let wrong = s
        .git_http(
            top,
            &[
                "clone",
                "--quiet",
                &s.http_url("not it", "team/app.git"),
                "c1",
            ],
        )
        .fails(128);
    shows(&wrong, &["Authentication failed"]);

    // Verify in the web page, as the message says.
    let mut browser = Client::on_port(s.web);
    browser.log_in("alice", PASSWORD);
    let verified = browser.submit(
        "/2fa/verify",
        "/2fa/verify",
        &[("code", &code(&s.secret, 0))],
    );
    assert!(
        verified.body.contains("<h1>Verified</h1>"),
        "{}",
        verified.body
    );

    s.git_http(top, &["clone", "--quiet", &url, "c2"]).ok();
    assert_eq!(
        std::fs::read_to_string(top.join("c2/README")).unwrap(),
        "hello\n"
    );
    // A push large enough to stream: 8 MiB that do not compress.
    let mut noise = vec![0u8; 8 << 20];
    getrandom::fill(&mut noise).unwrap();
    std::fs::write(s.work.join("noise.bin"), &noise).unwrap();
    run("git", &["add", "noise.bin"], &s.work, &[], "").ok();
    s.commit("second over http");
    s.git_http(&s.work, &["push", "--quiet", &url, "main"]).ok();
    s.git_http(&top.join("c2"), &["pull", "--quiet", &url, "main"])
        .ok();
    assert_eq!(std::fs::read(top.join("c2/noise.bin")).unwrap(), noise);
    let audit = s.audit();
    for wanted in [
        " http alice read refuse ",
        " http alice read allow ",
        " http alice write allow ",
    ] {
        assert!(audit.contains(wanted), "{wanted:?} missing:\n{audit}");
    }
}

/// The offered-key attack: a client offers the victim's public key (which
/// anyone may know) without a signature, the server says it would accept
/// it, and the client then signs with its own key. A server that bound the
/// identity at the offer would now take the attacker for the victim.
#[test]
fn a_client_offering_the_victims_key_then_signing_with_its_own_is_itself() {
    let Some(s) = setup("") else { return };
    s.host.add_user("mallory");
    let mallory_key = s.host.dir.path().join("mallory_key");
    keygen(&mallory_key);
    s.host
        .git2fa(&[
            "key",
            "add",
            "mallory",
            &format!("{}.pub", mallory_key.display()),
        ])
        .ok();
    // Only alice's public key: ssh offers it, and cannot sign with it.
    let stolen = s.host.dir.path().join("stolen");
    std::fs::create_dir(&stolen).unwrap();
    std::fs::copy(
        format!("{}.pub", s.key.display()),
        stolen.join("alice_key.pub"),
    )
    .unwrap();
    // alice has an open session: the attacker would inherit it.
    s.ssh
        .ssh(&s.key, "2fa verify", &format!("{}\n", code(&s.secret, 0)))
        .ok();
    let stolen_key = stolen.join("alice_key.pub");
    // `ssh` offering these identities, in this order, with its debug log.
    let ssh_offering = |identities: &[&Path]| {
        let mut line = String::from("ssh -v");
        for identity in identities {
            line += &format!(" -i {}", identity.display());
        }
        line + &format!(
            " -p {} -o IdentitiesOnly=yes -o IdentityAgent=none -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o BatchMode=yes",
            s.ssh.port
        )
    };
    let attack = |identities: &[&Path], command: &str| {
        let line = ssh_offering(identities);
        let mut words: Vec<&str> = line.split(' ').skip(1).collect();
        words.extend(["git@127.0.0.1", command]);
        run("ssh", &words, Path::new("/"), &[], "")
    };
    let greeting = attack(&[&stolen_key, &mallory_key], "").ok();
    // The offer of alice's key was accepted, so the attack really ran...
    let offered = format!("Server accepts key: {}", stolen_key.display());
    assert!(greeting.stderr.contains(&offered), "{greeting:?}");
    // ...and what authenticated is mallory's key, as mallory.
    assert!(greeting.stdout.starts_with("Hi mallory! "), "{greeting:?}");
    let url = format!("ssh://git@127.0.0.1:{}/team/app.git", s.ssh.port);
    let clone = run(
        "git",
        &["clone", "--quiet", &url, "stolen-clone"],
        s.host.dir.path(),
        &[(
            "GIT_SSH_COMMAND",
            ssh_offering(&[&stolen_key, &mallory_key]),
        )],
        "",
    )
    .fails(128);
    shows(&clone, &["mallory has not set up 2FA yet."]);
    assert!(!clone.stderr.contains("alice has"), "{clone:?}");
    // Without a key of its own, the attacker gets nobody at all: the offer
    // is accepted, and nothing it can sign follows.
    let alone = attack(&[&stolen_key], "2fa status").fails(255);
    assert!(alone.stderr.contains(&offered), "{alone:?}");
    assert!(alone.stderr.contains("Permission denied"), "{alone:?}");
}

#[test]
fn no_shell_no_pty_and_no_client_environment_but_git_protocol() {
    let Some(s) = setup("") else { return };
    // A shell request (no command) gets the greeting, not a shell.
    let shell = s.ssh.ssh(&s.key, "", "echo pwned; exit\n");
    assert_eq!(shell.code, 0, "{shell:?}");
    assert!(
        shell.stdout.contains("Hi alice! You are authenticated to git2fa with key #1, but there is no shell access here."),
        "{shell:?}"
    );
    assert!(!shell.stdout.contains("pwned"), "{shell:?}");
    // A PTY is refused; ssh, told to insist on one (-tt), gives up.
    let with_pty = s.ssh.ssh_with(
        &s.key,
        &["-tt", "-o", "LogLevel=INFO"],
        "",
        "echo pwned; exit\n",
    );
    assert!(
        with_pty.stderr.contains("PTY allocation request failed"),
        "{with_pty:?}"
    );
    assert!(!with_pty.stdout.contains("pwned"), "{with_pty:?}");
    // Not a shell: commands are git2fa's own or git's.
    let sh = s.ssh.ssh(&s.key, "sh -c id", "").fails(1);
    assert!(sh.stderr.contains("git2fa: disallowed command"), "{sh:?}");

    // The hook records the environment git gives it; the client sends
    // variables meant to change who it is or what runs.
    s.ssh
        .ssh(&s.key, "2fa verify", &format!("{}\n", code(&s.secret, 0)))
        .ok();
    let dump = s.host.dir.path().join("hook-env");
    let chained = s
        .host
        .root
        .join("team/app.git/hooks/pre-receive.git2fa-chained");
    std::fs::write(&chained, format!("#!/bin/sh\nenv > {}\n", dump.display())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&chained, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    s.commit("with a hostile environment");
    let url = format!("ssh://git@127.0.0.1:{}/team/app.git", s.ssh.port);
    let ssh_command = format!(
        "{} -o SetEnv=GIT2FA_USER=mallory -o SetEnv=LD_PRELOAD=/tmp/evil.so -o SetEnv=PATH=/tmp/evil",
        s.ssh.ssh_command(&s.key)
    );
    run(
        "git",
        &["push", "--quiet", &url, "main"],
        &s.work,
        &[("GIT_SSH_COMMAND", ssh_command.clone())],
        "",
    )
    .ok();
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(env.contains("GIT2FA_USER=alice\n"), "{env}");
    assert!(!env.contains("LD_PRELOAD"), "{env}");
    assert!(!env.contains("/tmp/evil"), "{env}");
    // GIT_PROTOCOL is the one variable that passes: git speaks version 2.
    let traced = run(
        "git",
        &["ls-remote", &url],
        &s.work,
        &[
            ("GIT_SSH_COMMAND", ssh_command),
            ("GIT_TRACE_PACKET", "1".into()),
        ],
        "",
    )
    .ok();
    assert!(
        traced.stderr.contains("ls-remote< version 2"),
        "{}",
        traced.stderr
    );
}

/// SIGTERM stops new connections but lets what runs finish: an `ssh … 2fa
/// verify` waiting for its code still opens the session, then the server
/// exits 0.
#[test]
fn sigterm_lets_an_operation_under_way_finish() {
    let Some(mut s) = setup("") else { return };
    let mut child = s.ssh.spawn(&s.key, "2fa verify");
    // Wait for the prompt: the command is under way in the server.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut prompt = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&prompt).contains("Code from your authenticator app") {
        assert!(Instant::now() < deadline, "no prompt");
        let mut byte = [0u8; 1];
        if std::io::Read::read(&mut stderr, &mut byte).unwrap() == 0 {
            panic!("ssh ended: {}", String::from_utf8_lossy(&prompt));
        }
        prompt.push(byte[0]);
    }
    s.server.terminate();
    // New connections are refused once the listeners close.
    let closed = || std::net::TcpStream::connect(("127.0.0.1", s.ssh.port)).is_err();
    assert!(
        poll(Duration::from_secs(10), closed),
        "still accepting after SIGTERM"
    );
    let mut input = child.stdin.take().unwrap();
    writeln!(input, "{}", code(&s.secret, 0)).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("git2fa: 2FA session open until "),
        "{stdout}"
    );
    assert_eq!(s.server.wait(), Some(0));
    let mut rest = String::new();
    let _ = stderr.read_line(&mut rest);
    // The session is in the store: the audit shows the verify.
    assert!(s.audit().contains(" verify "), "{}", s.audit());
}

/// A client that goes away in the middle of a clone: git, blocked on a
/// pipe nobody reads any more, is stopped, and nothing is left running
/// (the server once kept that git, its threads and a pending operation
/// until it was killed).
#[test]
fn a_client_gone_mid_clone_leaves_nothing_running() {
    let Some(mut s) = setup("") else { return };
    s.ssh
        .ssh(&s.key, "2fa verify", &format!("{}\n", code(&s.secret, 0)))
        .ok();
    // 8 MiB that do not compress: more than the SSH window and the pipes.
    let mut noise = vec![0u8; 8 << 20];
    getrandom::fill(&mut noise).unwrap();
    std::fs::write(s.work.join("noise.bin"), &noise).unwrap();
    run("git", &["add", "noise.bin"], &s.work, &[], "").ok();
    s.commit("noise");
    let url = format!("ssh://git@127.0.0.1:{}/team/app.git", s.ssh.port);
    s.git_ssh(&s.work, &["push", "--quiet", &url, "main"]).ok();
    let head = run("git", &["rev-parse", "HEAD"], &s.work, &[], "").ok();
    let repo_dir = s.host.root.join("team/app.git").canonicalize().unwrap();

    // upload-pack's request, sent at once; the answer is never read.
    let mut client = s.ssh.spawn(&s.key, "git-upload-pack 'team/app.git'");
    let mut input = client.stdin.take().unwrap();
    write!(input, "0032want {}\n00000009done\n", head.stdout.trim()).unwrap();
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .any(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("upload-pack") && c.contains(&*repo_dir.to_string_lossy())
            })
    };
    assert!(
        poll(Duration::from_secs(10), &running),
        "upload-pack never started"
    );
    std::thread::sleep(Duration::from_millis(500));
    client.kill().unwrap();
    let _ = client.wait();
    drop(input);
    assert!(
        poll(Duration::from_secs(10), || !running()),
        "git upload-pack still runs after its client went away"
    );
    // And nothing holds the server up when it stops.
    s.server.terminate();
    assert_eq!(s.server.wait(), Some(0));
}
