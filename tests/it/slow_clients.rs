//! Clients that connect and then dawdle cannot take `git2fa serve` away
//! from everyone else: SSH logins are timed from the accept and capped per
//! address, `2fa verify` prompts hold no thread and are capped per user,
//! and the web page times out half-sent requests and caps connections per
//! address.

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};

use std::process::Child;
use std::time::{Duration, Instant};

use crate::harness::sshd::Multiplexed;
use crate::serve::setup;

/// A TCP connection to 127.0.0.1:`port` from the address `from` (any of
/// 127.0.0.0/8 is this machine).
pub(crate) fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddrV4::new(from.into(), 0).into())?;
            socket
                .connect(SocketAddrV4::new([127, 0, 0, 1].into(), port).into())
                .await
        })
        .unwrap()
        .into_std()
        .unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Whether the server has closed this connection (what it sent before,
/// such as its banner, is read and dropped).
pub(crate) fn closed_by_server(mut stream: &TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buffer = [0u8; 512];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

// Attack: 257 TCP connections to the embedded SSH server that send nothing
// at all. The 30-second login limit started only once russh had the
// client's banner, which it waited for up to the 600-second inactivity
// timeout, so every slot stayed taken and alice could not log in. Now the
// limit runs from the accept, and one address may hold only 16 logins.
#[test]
fn silent_ssh_connections_lock_nobody_out() {
    let Some(s) = setup("") else { return };
    let port = s.ssh.port;
    let started = Instant::now();
    let silent: Vec<TcpStream> = (0..300)
        .map(|_| connect_from([127, 0, 0, 2], port))
        .collect();

    // alice, from her own address, gets in at once.
    let status = s.ssh.ssh(&s.key, "2fa status", "");
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.starts_with("alice: "), "{status:?}");

    // The server kept at most 16 of the silent ones.
    std::thread::sleep(Duration::from_millis(300));
    let held = silent.iter().filter(|c| !closed_by_server(c)).count();
    assert!(held <= 16, "{held} silent connections are held");
    assert!(held > 0, "the cap is per address, not a refusal of all");

    // And none of them past the login limit, counted from the accept.
    std::thread::sleep(Duration::from_secs(33).saturating_sub(started.elapsed()));
    let held = silent.iter().filter(|c| !closed_by_server(c)).count();
    assert_eq!(held, 0, "silent connections outlived the 30 s login limit");
}

/// GET `path` from the web port; the status code.
fn get(port: u16, path: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

// Attack: `git2fa serve` set no time limit on a request's headers, so
// connections that send half a request stay open for ever; 1,100 of them,
// past the default 1,024 descriptors, left /login and /git/ unanswered for
// everyone. Now one address may hold 64 connections, and headers not sent
// within 20 seconds close the connection.
#[test]
fn half_sent_requests_take_neither_the_page_nor_git_down() {
    let Some(s) = setup("") else { return };
    let started = Instant::now();
    let slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut c = connect_from([127, 0, 0, 2], s.web);
            std::io::Write::write_all(&mut c, b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let held = slow.iter().filter(|c| !closed_by_server(c)).count();
    assert!(held <= 64, "{held} half-sent requests are held");
    assert!(held > 0, "the cap is per address, not a refusal of all");
    assert_eq!(get(s.web, "/login"), 200);
    assert_eq!(
        get(s.web, "/git/team/app.git/info/refs?service=git-upload-pack"),
        401,
        "/git/ answers (with its challenge)"
    );

    std::thread::sleep(Duration::from_secs(23).saturating_sub(started.elapsed()));
    let held = slow.iter().filter(|c| !closed_by_server(c)).count();
    assert_eq!(held, 0, "half-sent requests outlived the 20 s header limit");
}

/// The number of threads of process `pid`.
fn threads(pid: nix::unistd::Pid) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Reads `child`'s standard error until it holds `text`; all of it.
fn stderr_until(child: &mut Child, text: &str) -> String {
    let stderr = child.stderr.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains(text) {
        match stderr.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

// Attack: a user with a key opened 130 multiplexed connections with four
// `2fa verify` prompts each. Every prompt waiting for its code held one of
// the runtime's 512 blocking threads for up to 5 minutes, so the web page
// stopped answering and other users' SSH logins stalled. Now a waiting
// prompt holds no thread, and each user may have 4 at once.
#[test]
fn waiting_verify_prompts_hold_no_thread() {
    // No recovery codes and no passwords: fifty users' slow hashes would
    // load the machine for every other test running beside this one.
    let Some(s) = setup("recovery_codes = 0") else {
        return;
    };
    const USERS: usize = 50;
    let client = &s.ssh;
    let mut held = Vec::new();
    let mut secrets = Vec::new();
    for n in 0..USERS {
        let user = format!("user{n}");
        s.host.git2fa(&["user", "add", &user]).ok();
        secrets.push(s.host.enroll(&user).0);
        let key = s.host.add_key(&user);
        let mut connection =
            Multiplexed::open(client, &key, s.host.dir.path().join(format!("{user}.ctl")));
        for _ in 0..4 {
            let prompt = connection.spawn(client, "2fa verify");
            let seen = stderr_until(prompt, "Code from your authenticator app");
            assert!(seen.contains("(or a recovery code): "), "{user}: {seen}");
        }
        held.push((key, connection));
    }
    // 200 prompts wait. A fifth of user0's, on a connection of its own, is
    // refused at once.
    let mut extra = Multiplexed::open(client, &held[0].0, s.host.dir.path().join("extra.ctl"));
    let fifth = extra.spawn(client, "2fa verify");
    let seen = stderr_until(fifth, "first");
    assert!(
        seen.contains(
            "git2fa: 4 `2fa verify` prompts of user0 are waiting for a code already; \
             answer one of them, or close it, first"
        ),
        "{seen}"
    );
    assert_eq!(fifth.wait().unwrap().code(), Some(1));

    // The blocking pool's idle threads end after 10 s; none is held.
    std::thread::sleep(Duration::from_secs(11));
    let count = threads(s.server.pid());
    assert!(
        count < 40,
        "{count} threads for {} waiting prompts",
        USERS * 4
    );
    assert_eq!(get(s.web, "/login"), 200);
    let status = s.ssh.ssh(&s.key, "2fa status", "");
    assert_eq!(status.code, 0, "{status:?}");

    // A waiting prompt still takes its code.
    let prompt = &mut held[7].1.sessions[2];
    let code = crate::harness::code(&secrets[7], 0);
    prompt
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{code}\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    prompt
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.starts_with("git2fa: 2FA session open until "), "{out}");
    assert_eq!(prompt.wait().unwrap().code(), Some(0));
}

// Overload: with `[policy] wait_for_verify` set, a git command refused
// for want of a 2FA session waits for the user to verify. On serve's
// embedded SSH server each waiting command slept on one of the runtime's
// blocking threads for the whole wait, so that a user (or anyone holding
// a key) could take the threads the web page, log-ins and decisions need
// with commands that merely wait. Now a waiting command holds no thread:
// it looks at the store every half second, on the pool, and goes on once
// the session opens.
#[test]
fn git_commands_waiting_for_a_session_hold_no_thread() {
    let Some(s) = setup("wait_for_verify = \"2m\"") else {
        return;
    };
    let client = &s.ssh;
    let mut connections = Vec::new();
    for n in 0..12 {
        let mut connection =
            Multiplexed::open(client, &s.key, s.host.dir.path().join(format!("c{n}.ctl")));
        for _ in 0..4 {
            let waiting = connection.spawn(client, "git-upload-pack 'team/app.git'");
            let seen = stderr_until(waiting, "...");
            assert!(
                seen.contains("git2fa: waiting up to 2m for you to verify at "),
                "{seen}"
            );
        }
        connections.push(connection);
    }
    // 48 commands wait; the blocking pool's idle threads end after 10 s.
    std::thread::sleep(Duration::from_secs(11));
    let count = threads(s.server.pid());
    assert!(count < 40, "{count} threads for 48 waiting git commands");
    assert_eq!(get(s.web, "/login"), 200);

    // Verified: the waiting commands go on, as git.
    s.host
        .git2fa(&["verify", "alice", &crate::harness::code(&s.secret, 0)])
        .ok();
    for waiting in connections[3].sessions.iter_mut() {
        // The refs, then git's end of the conversation (a flush-pkt).
        let mut advertised = [0u8; 4];
        waiting
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut advertised)
            .unwrap();
        assert!(
            advertised.iter().all(u8::is_ascii_hexdigit),
            "not a pkt-line: {advertised:?}"
        );
        let mut stdin = waiting.stdin.take().unwrap();
        stdin.write_all(b"0000").unwrap();
        drop(stdin);
        assert_eq!(waiting.wait().unwrap().code(), Some(0));
    }
}

// Attack: a user with a key opens connections to the embedded SSH server
// and holds them, to take the server's 256 for herself. serve lets one user
// hold 32; the 33rd is refused at log-in, and the refusal is an audit row
// (a limit reached, for the metrics and the admin), not only a log line.
#[test]
fn a_user_s_connections_past_the_cap_are_refused_and_audited() {
    let Some(s) = setup("recovery_codes = 0") else {
        return;
    };
    let held: Vec<Multiplexed> = (0..32)
        .map(|n| {
            Multiplexed::open(
                &s.ssh,
                &s.key,
                s.host.dir.path().join(format!("held{n}.ctl")),
            )
        })
        .collect();
    let refused = s.ssh.ssh(&s.key, "2fa status", "");
    assert_eq!(refused.code, 255, "{refused:?}");
    assert!(
        refused.stderr.contains("Permission denied (publickey)"),
        "{refused:?}"
    );
    let rows = s
        .host
        .git2fa(&["audit", "--json", "--limit", "50"])
        .ok()
        .stdout;
    let busy: Vec<&str> = rows
        .lines()
        .filter(|l| l.contains("\"reason\":\"busy-ssh-connections\""))
        .collect();
    assert_eq!(busy.len(), 1, "{rows}");
    for field in [
        "\"user\":\"alice\"",
        "\"transport\":\"ssh\"",
        "\"action\":\"ssh-login\"",
        "\"outcome\":\"refuse\"",
        "\"addr\":\"127.0.0.1\"",
    ] {
        assert!(busy[0].contains(field), "{field} missing: {}", busy[0]);
    }
    drop(held);
    let status = s.ssh.ssh(&s.key, "2fa status", "");
    assert_eq!(status.code, 0, "{status:?}");
}
