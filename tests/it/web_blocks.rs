//! The web page behind the blocks the package installs, used as a user
//! uses it: nginx with `/etc/git2fa/nginx/web.conf` and Apache with
//! `/etc/git2fa/apache/web.conf` (here their sources, `install/`), each in
//! front of `git2fa serve`, and real Chromium with a virtual authenticator.
//! Through each: `/` leads to the log-in, a user sets up an app, adds a
//! security key (which needs `/webauthn.js`), verifies with it through the
//! link `ssh … 2fa verify` prints, and git works. A block that misses a
//! path of the page fails here (the nginx block once did not pass
//! `/webauthn.js`: adding a key did nothing).

use std::time::Duration;

use crate::harness::apache::{self, Apache};
use crate::harness::fixture::{Fixture, PASSWORD};
use crate::harness::nginx::{self, Nginx};
use crate::harness::sshd::SshClient;
use crate::harness::web_server::{Server, free_port};
use crate::harness::webdriver::{self, Browser};
use crate::harness::{Host, code};
use crate::security_keys::{finished, read_link};

/// The front end (nginx or Apache), running while held.
type Front = Box<dyn std::any::Any>;

/// alice (password, SSH key, nothing set up) and `team/app`, which needs
/// 2FA for everything; `public_url` is the front end's address (WebAuthn
/// binds keys to it); serve behind it trusts it as a proxy.
fn through(front: &str) -> Option<(Fixture, u16, SshClient, Server, Front)> {
    let available = match front {
        "nginx" => nginx::available(),
        _ => apache::available(),
    };
    if !available || !webdriver::available() || !crate::serve::ssh_client_available() {
        return None;
    }
    let (port, web, ssh) = (free_port(), free_port(), free_port());
    let host = Host::build(
        &format!("http://localhost:{port}"),
        "",
        &format!(
            "[web]\nlisten = \"127.0.0.1:{web}\"\ntrusted_proxies = [\"127.0.0.1\"]\n\
             [ssh]\nlisten = \"127.0.0.1:{ssh}\"\n"
        ),
    );
    let f = host.user("alice").key().repo("team/app");
    f.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let server = Server::start_with(&f, web, &[ssh]);
    let upstream = |block: String| block.replace("127.0.0.1:8080", &format!("127.0.0.1:{web}"));
    let front: Front = match front {
        "nginx" => Box::new(Nginx::start_on(
            &f,
            &upstream(crate::harness::shipped("nginx-git2fa-web.conf")),
            port,
        )),
        _ => Box::new(Apache::start_proxy(
            &f,
            &upstream(crate::harness::shipped("apache-git2fa-web.conf")),
            port,
        )),
    };
    let client = SshClient {
        port: ssh,
        login: "git".into(),
    };
    Some((f, port, client, server, front))
}

fn a_user_s_way_through(front: &str) {
    let Some((f, port, ssh, _server, _front)) = through(front) else {
        return;
    };
    let url = |path: &str| format!("http://localhost:{port}{path}");
    let b = Browser::start();
    let authenticator = b.add_virtual_authenticator();
    let clone = |dest: &str| {
        ssh.git(
            f.key_of("alice"),
            f.dir.path(),
            &["clone", "--quiet", &ssh.url("team/app.git"), dest],
        )
    };

    // `/` leads to the log-in; the wizard follows it.
    b.goto(&url("/"));
    b.wait_for_url("/login?next=/2fa");
    b.fill("#user", "alice");
    b.fill("#password", PASSWORD);
    b.click("button[type=submit]");
    b.wait_for_url("/2fa/setup");

    // An app, the style sheet in force.
    b.click("button[type=submit]");
    b.wait_for_url("/2fa/setup/scan");
    let key: String = b.text("#key").split_whitespace().collect();
    let secret = git2fa::factor::totp::decode_secret(&key).unwrap();
    b.click("a[href=\"/2fa/setup/codes\"]");
    b.click("a[href=\"/2fa/setup/confirm\"]");
    b.fill("#code", &code(&secret, 0));
    b.click("button[type=submit]");
    b.wait_for("Two-factor authentication is on.");
    let styled = b.eval("return getComputedStyle(document.body).fontFamily");
    assert_ne!(
        styled.as_str(),
        Some("\"Times New Roman\""),
        "the style sheet did not load through {front}"
    );

    // A security key: the page's script talks to the authenticator.
    b.goto(&url("/2fa/security-keys"));
    b.fill("#key-name", "Virtual key");
    b.click("button[name=add-security-key]");
    b.wait_for("Security key \"Virtual key\" added.");
    assert_eq!(b.credentials(&authenticator).len(), 1);

    // No session: git is refused with the front end's address.
    f.git2fa(&["session", "end", "--user", "alice"]).ok();
    let refused = clone("refused").fails(128);
    assert!(
        refused.stderr.contains(&url("/2fa/verify?repo=team/app")),
        "{refused:?}"
    );

    // The link of `2fa verify`, through the front end, one touch.
    let mut child = ssh.spawn(f.key_of("alice"), "2fa verify");
    let (link, stderr) = read_link(&mut child);
    assert!(link.starts_with(&url("/2fa/verify?link=")), "{link}");
    b.goto(&link);
    b.wait_for("waiting in your terminal");
    b.click("button[name=use-security-key]");
    b.wait_for("goes on now");
    let (status, out) = finished(child);
    let err = stderr.join().unwrap();
    assert_eq!(status, Some(0), "stdout: {out}\nstderr: {err}");
    clone("after").ok();

    // The audit log has the verification.
    let audit = f
        .git2fa(&["audit", "--user", "alice", "--limit", "50"])
        .ok()
        .stdout;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("verify") && l.contains("webauthn") && l.contains("ok")),
        "{audit}"
    );

    // Log out and in again: the key verifies at the log-in.
    b.goto(&url("/2fa"));
    b.click("form[action=\"/logout\"] button");
    b.wait_for("You are logged out.");
    f.git2fa(&["session", "end", "--user", "alice"]).ok();
    b.fill("#user", "alice");
    b.fill("#password", PASSWORD);
    b.click("button[type=submit]");
    b.wait_for("Use security key");
    b.click("button[name=use-security-key]");
    b.wait_for("Your 2FA session is open until");
    assert!(
        crate::harness::poll(Duration::from_secs(5), || clone("again").code == 0),
        "git after verifying with the key at log-in"
    );
}

#[test]
fn the_nginx_block_serves_the_whole_page_to_a_browser() {
    a_user_s_way_through("nginx");
}

#[test]
fn the_apache_block_serves_the_whole_page_to_a_browser() {
    a_user_s_way_through("apache");
}
