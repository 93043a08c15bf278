//! Security keys and passkeys, in real headless Chromium with the WebDriver
//! virtual authenticator (CTAP2, resident keys, user verification on):
//! register a key, verify with it, and then use git over SSH and HTTP; the
//! one-time link of `ssh … 2fa verify`; 2FA with a key alone; and the
//! answers that must not verify: another user's key, a removed key, a
//! replayed answer, another origin, a cloned key.
//!
//! `public_url` is `http://localhost:PORT`: an IP address cannot be a
//! relying party, and browsers treat http://localhost as secure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;
use sha2::Digest;

use crate::harness::client::Client;
use crate::harness::fixture::{Fixture, PASSWORD};
use crate::harness::sshd::{self, SshClient, Sshd};
use crate::harness::web_server::{self, Server, free_port};
use crate::harness::webdriver::{self, Browser};
use crate::harness::{Host, Run, code, run};

struct KeyHost {
    f: Fixture,
    web: u16,
    ssh: SshClient,
    _server: Server,
    browser: Browser,
    authenticator: String,
}

impl KeyHost {
    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.web)
    }

    fn log_in(&self, user: &str) {
        self.browser.goto(&self.url("/login"));
        self.browser.fill("#user", user);
        self.browser.fill("#password", PASSWORD);
        self.browser.click("button[type=submit]");
    }

    fn log_out(&self) {
        self.browser.click("form[action=\"/logout\"] button");
        self.browser.wait_for("You are logged out.");
    }

    /// Adds a key named `name` on the security keys page.
    fn add_key(&self, name: &str) {
        self.browser.goto(&self.url("/2fa/security-keys"));
        self.browser.fill("#key-name", name);
        self.browser.click("button[name=add-security-key]");
    }

    fn clone_ssh(&self, dest: &str) -> Run {
        let top = self.f.dir.path();
        self.ssh.git(
            self.f.key_of("alice"),
            top,
            &["clone", "--quiet", &self.ssh.url("team/app.git"), dest],
        )
    }

    fn clone_http(&self, dest: &str) -> Run {
        let top = self.f.dir.path();
        let url = format!(
            "http://alice:{}@127.0.0.1:{}/git/team/app.git",
            PASSWORD.replace(' ', "%20"),
            self.web
        );
        run(
            "git",
            &["clone", "--quiet", &url, dest],
            top,
            &[("HOME", top.display().to_string())],
            "",
        )
    }

    fn audit(&self) -> String {
        self.f
            .git2fa(&["audit", "--user", "alice", "--limit", "100"])
            .ok()
            .stdout
    }

    fn show(&self, user: &str) -> String {
        self.f.git2fa(&["user", "show", user]).ok().stdout
    }
}

/// alice (password, SSH key, no second factor yet) and `team/app`, which
/// needs 2FA for everything; `git2fa serve` with its web page, git over
/// HTTP and SSH; Chromium with a virtual authenticator.
fn key_host(policy: &str) -> Option<KeyHost> {
    if !webdriver::available() || !crate::serve::ssh_client_available() {
        return None;
    }
    let (web, ssh) = (free_port(), free_port());
    let host = Host::build(
        &format!("http://localhost:{web}"),
        policy,
        &format!(
            "[tokens]\npassword_for_git = true\n[web]\nlisten = \"127.0.0.1:{web}\"\n\
             [ssh]\nlisten = \"127.0.0.1:{ssh}\"\n"
        ),
    );
    let f = host.user("alice").key().repo("team/app");
    f.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let server = Server::start_with(&f, web, &[ssh]);
    let browser = Browser::start();
    let authenticator = browser.add_virtual_authenticator();
    Some(KeyHost {
        f,
        web,
        ssh: SshClient {
            port: ssh,
            login: "git".into(),
        },
        _server: server,
        browser,
        authenticator,
    })
}

#[track_caller]
fn says(run: &Run, text: &str) {
    assert!(
        run.stderr.contains(text) || run.stdout.contains(text),
        "{text:?} missing:\n{run:?}"
    );
}

#[test]
fn a_key_alone_sets_up_2fa_and_verifies_for_git_over_ssh_and_http() {
    let Some(h) = key_host("") else { return };
    let b = &h.browser;

    // Not enrolled: the wizard offers an app or a key; alice takes a key.
    h.log_in("alice");
    b.wait_for_url("/2fa/setup");
    b.wait_for("Or a security key or passkey");
    b.click("#use-key");
    b.wait_for_url("/2fa/security-keys");
    b.wait_for("Set up 2FA with a security key");
    b.screenshot("security-key-setup");
    b.fill("#key-name", "Virtual key");
    b.click("button[name=add-security-key]");
    b.wait_for("Two-factor authentication is on.");
    b.screenshot("security-key-added");
    let codes: Vec<String> = b
        .text("#recovery-codes")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(codes.len(), 10, "recovery codes are shown once");
    // And can be saved as a file, as in the app's set-up.
    assert_eq!(
        b.attribute("#codes-download", "download"),
        "git2fa-recovery-codes.txt"
    );
    let file = b.attribute("#codes-download", "href");
    let text = file
        .strip_prefix("data:text/plain;charset=utf-8,")
        .map(|t| {
            form_urlencoded::parse(format!("t={}", t.replace('+', "%2B")).as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned()
        })
        .unwrap_or_default();
    assert!(
        text.starts_with("git2fa recovery codes for alice at http://localhost:")
            && codes.iter().all(|c| text.contains(c.as_str())),
        "{file}"
    );
    assert_eq!(
        b.credentials(&h.authenticator).len(),
        1,
        "the browser made one credential"
    );
    let shown = h.show("alice");
    assert!(shown.contains("enrolled"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("security-key #") && l.contains("\"Virtual key\"")),
        "{shown}"
    );
    let audit = h.audit();
    assert!(
        audit.contains("enroll") && audit.contains("webauthn"),
        "{audit}"
    );

    // Adding the key opened a 2FA session: git works at once.
    h.clone_ssh("s1").ok();
    h.clone_http("h1").ok();

    // Leaving the session: git is refused again.
    b.goto(&h.url("/2fa"));
    b.click("form[action=\"/2fa/leave\"] button");
    b.wait_for("You left the 2FA session");
    let refused = h.clone_ssh("s2").fails(128);
    says(&refused, "alice has no open 2FA session.");
    let verify_link = format!("{}/2fa/verify?repo=team/app", h.url(""));
    says(&refused, &verify_link);

    // The link git printed: one touch verifies.
    b.goto(&verify_link);
    b.wait_for("Use security key");
    b.screenshot("verify-security-key");
    b.click("button[name=use-security-key]");
    b.wait_for("Your 2FA session is open until");
    h.clone_ssh("s3").ok();
    h.clone_http("h3").ok();
    let audit = h.audit();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("verify") && l.contains("ok") && l.contains("webauthn")),
        "{audit}"
    );
    let shown = h.show("alice");
    assert!(
        !shown.contains("last-used never"),
        "the use is recorded: {shown}"
    );

    // Log out, log in again: verify with the key, then git works.
    h.log_out();
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    h.log_in("alice");
    b.wait_for("Use security key");
    b.click("button[name=use-security-key]");
    b.wait_for("Your 2FA session is open until");
    h.clone_http("h4").ok();

    // A recovery code still works, and the key list shows the key.
    b.goto(&h.url("/2fa/security-keys"));
    b.wait_for("Virtual key");
    b.screenshot("security-keys");
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    b.goto(&h.url("/2fa/verify"));
    b.fill("#code", &codes[0]);
    b.click("#code-form button[type=submit]");
    b.wait_for("You used a recovery code");

    // An admin's reset removes the key: alice is not enrolled any more.
    let reset = h.f.git2fa(&["user", "reset-2fa", "alice"]).ok();
    assert!(reset.stdout.contains("1 security key removed"), "{reset:?}");
    let shown = h.show("alice");
    assert!(shown.contains("not-enrolled"), "{shown}");
    assert!(!shown.contains("security-key #"), "{shown}");
}

/// Reads `child`'s standard error until a line holds a verify link.
pub(crate) fn read_link(child: &mut Child) -> (String, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut lines = BufReader::new(stderr);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(at) = line.find("http://") {
                let _ = tx.send(line[at..].trim().to_string());
            }
            all += &line;
            line.clear();
        }
        all
    });
    let link = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("2fa verify printed a link");
    (link, reader)
}

/// Waits for `child` to exit by itself; its status and standard output.
pub(crate) fn finished(mut child: Child) -> (Option<i32>, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status.code(), out);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("2fa verify did not finish after the link was used");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ssh … 2fa verify` prints a one-time link; opening it (logging in if
/// needed) and touching the key completes the waiting command, whose input
/// stays open (someone at the prompt) or ended (`< /dev/null`).
fn verify_through_the_link(h: &KeyHost, ssh: &SshClient, log_in_first: bool, input_open: bool) {
    let b = &h.browser;
    let mut child = ssh.spawn(h.f.key_of("alice"), "2fa verify");
    let (link, stderr) = read_link(&mut child);
    if !input_open {
        drop(child.stdin.take());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "with its input ended, the command still waits for the link"
        );
    }
    assert!(
        link.starts_with(&h.url("/2fa/verify?link=")),
        "the link is on public_url: {link}"
    );
    b.goto(&link);
    if log_in_first {
        assert!(
            crate::harness::poll(Duration::from_secs(10), || b.url().contains("/login?next=")),
            "not sent to log in: {}",
            b.url()
        );
        b.fill("#user", "alice");
        b.fill("#password", PASSWORD);
        b.click("button[type=submit]");
    }
    b.wait_for("waiting in your terminal");
    // Who asked for the link: this connection's address and SSH key.
    b.wait_for("If that was not you, do not touch your key");
    assert!(
        b.text("#link-origin")
            .contains("from 127.0.0.1, with SSH key #1"),
        "{}",
        b.text("#link-origin")
    );
    b.screenshot("verify-link");
    // A prompt cancelled first (the browser's answer is an error): nothing
    // is tried, and the page keeps the link for the next touch.
    // The browser's own words are put as a user can act on them.
    post_answer(
        b,
        "error:NotAllowedError: The operation either timed out or was not allowed. See: https://www.w3.org/TR/webauthn-2/#sctn-privacy-considerations-client.",
    );
    b.wait_for("Not verified: the key did not answer: the browser's window was closed, or it timed out. Try again, and touch the key when it blinks.");
    assert!(!b.source().contains("w3.org"));
    // Opened at 127.0.0.1 (what a listen address gives), the browser
    // refuses keys: the page names the address where they work.
    post_answer(b, "error:SecurityError: This is an invalid domain.");
    b.wait_for(&format!(
        "not at an IP address such as 127.0.0.1, and only over HTTPS (or at localhost): open {}.",
        h.url("/2fa")
    ));
    b.wait_for("waiting in your terminal");
    b.click("button[name=use-security-key]");
    b.wait_for("goes on now");
    let (status, out) = finished(child);
    let err = stderr.join().unwrap();
    assert_eq!(status, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("git2fa: 2FA session open until"), "{out}");
    // The link works once.
    b.goto(&link);
    b.wait_for("This verify link is used or expired.");
}

#[test]
fn the_link_of_ssh_2fa_verify_completes_the_waiting_command() {
    let Some(h) = key_host("") else { return };
    let b = &h.browser;
    h.log_in("alice");
    b.click("#use-key");
    h.add_key("Virtual key");
    b.wait_for("Two-factor authentication is on.");
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    h.clone_ssh("s0").fails(128);

    // Through `git2fa serve`'s SSH server, the browser logged in.
    verify_through_the_link(&h, &h.ssh, false, true);
    h.clone_ssh("s1").ok();
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    verify_through_the_link(&h, &h.ssh, false, false);

    // Through OpenSSH and git2fa-shell, the browser logged out first.
    if !sshd::available() {
        return;
    }
    let sshd = Sshd::start(&h.f);
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    h.log_out();
    verify_through_the_link(&h, &sshd.client(), true, true);
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    verify_through_the_link(&h, &sshd.client(), false, false);
    h.clone_ssh("s2").ok();
    let audit = h.audit();
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("verify") && l.contains("webauthn") && l.contains("ok"))
            .count(),
        4,
        "{audit}"
    );

    // A command whose client left (Ctrl-C) ends its link at once, through
    // both servers.
    let serve = SshClient {
        port: h.ssh.port,
        login: "git".into(),
    };
    for client in [serve, sshd.client()] {
        let mut child = client.spawn(h.f.key_of("alice"), "2fa verify");
        let (link, _stderr) = read_link(&mut child);
        let token = link.rsplit('=').next().unwrap().to_string();
        let hash = git2fa::factor::webauthn::link_hash(&token);
        let open = |now| {
            git2fa::store::Store::open(&h.f.store_path())
                .unwrap()
                .verify_link(&hash, now)
                .unwrap()
                .is_some()
        };
        assert!(open(git2fa::system::time::now()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            crate::harness::poll(Duration::from_secs(10), || !open(
                git2fa::system::time::now()
            )),
            "the link of a command whose client left still works"
        );
    }

    // "Remove 2FA" with the key used a moment ago (no app, so no code):
    // the key goes too, and git is refused until 2FA is set up again.
    b.goto(&h.url("/2fa"));
    b.wait_for("Removes your security keys too.");
    b.click("form[action=\"/2fa/remove\"] button");
    b.wait_for("2FA is removed from your account");
    b.click("main a[href=\"/2fa\"]");
    b.wait_for_url("/login?next=/2fa");
    let shown = h.show("alice");
    assert!(shown.contains("not-enrolled"), "{shown}");
    assert!(!shown.contains("security-key #"), "{shown}");
    let refused = h.clone_ssh("s3").fails(128);
    says(&refused, "alice has not set up 2FA");
}

/// The credential id (base64url) of the newest credential in the
/// authenticator.
fn newest_credential(h: &KeyHost, before: &[Value]) -> Value {
    h.browser
        .credentials(&h.authenticator)
        .into_iter()
        .find(|c| {
            !before.contains(c)
                && !before
                    .iter()
                    .any(|b| b["credentialId"] == c["credentialId"])
        })
        .expect("a new credential")
}

/// Runs the verify page's ceremony in the browser, the key answering
/// being `credential` (base64url id), whatever the page allows; the answer
/// as the page's script would send it.
const ASSERT: &str = r#"
const [options, credential, done] = arguments;
const bytes = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((t.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
const text = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const o = JSON.parse(options).publicKey;
o.challenge = bytes(o.challenge);
o.allowCredentials = [{ type: "public-key", id: bytes(credential) }];
navigator.credentials.get({ publicKey: o }).then((c) => done(JSON.stringify({
  id: c.id, rawId: text(c.rawId), type: c.type, extensions: {},
  response: {
    clientDataJSON: text(c.response.clientDataJSON),
    authenticatorData: text(c.response.authenticatorData),
    signature: text(c.response.signature),
    userHandle: c.response.userHandle ? text(c.response.userHandle) : null,
  },
})), (e) => done("error:" + e.name + ": " + e.message));
"#;

/// On the verify page: the options of its ceremony.
fn options(b: &Browser) -> String {
    b.attribute("#security-key", "data-webauthn")
}

/// Posts `answer` as the key's answer of the verify page now shown.
fn post_answer(b: &Browser, answer: &str) {
    let answer = serde_json::to_string(answer).unwrap();
    b.eval(&format!(
        "const form = document.querySelector('#security-key');\
         form.querySelector('input[name=credential]').value = {answer};\
         HTMLFormElement.prototype.submit.call(form);"
    ));
}

fn answer_with(b: &Browser, options: &str, credential: &Value) -> String {
    let answer = b.eval_async(
        ASSERT,
        serde_json::json!([options, credential["credentialId"]]),
    );
    let answer = answer.as_str().unwrap().to_string();
    assert!(!answer.starts_with("error:"), "{answer}");
    answer
}

#[track_caller]
fn refused(h: &KeyHost, reason: &str) {
    h.browser.wait_for("answer was not accepted");
    let audit = h.audit();
    let last = audit.lines().next().unwrap_or_default();
    assert!(
        last.contains("verify") && last.contains("fail") && last.contains(reason),
        "newest audit row: {last}\n{audit}"
    );
    let sessions = h.f.git2fa(&["session", "list", "alice"]).ok();
    assert!(
        !sessions.stdout.contains("session #"),
        "no session opened: {sessions:?}"
    );
}

/// A page on another origin (another port of localhost), as a phishing
/// page would be.
fn other_origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = "<!doctype html><title>Verify</title><p>Sign in to git</p>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn answers_that_must_not_verify_are_refused_and_counted() {
    let Some(h) = key_host("max_failures = 10") else {
        return;
    };
    let b = &h.browser;
    // alice: an app and two keys; bob: one key, in the same authenticator.
    let secret = {
        let (secret, _) = h.f.enroll("alice");
        secret
    };
    h.f.add_user("bob");
    h.log_in("bob");
    b.click("#use-key");
    h.add_key("Bob's key");
    b.wait_for("Two-factor authentication is on.");
    let bobs = newest_credential(&h, &[]);
    h.log_out();
    h.log_in("alice");
    b.fill("#code", &code(&secret, 0));
    b.click("#code-form button[type=submit]");
    b.wait_for("Your 2FA session is open until");
    let before = b.credentials(&h.authenticator);
    h.add_key("Old key");
    b.wait_for("Security key \"Old key\" added.");
    let old = newest_credential(&h, &before);
    // A second key for alice in the same authenticator: the old one is
    // taken out while it is made (the page excludes keys alice has), then
    // put back.
    h.browser
        .remove_credential(&h.authenticator, old["credentialId"].as_str().unwrap());
    let before = b.credentials(&h.authenticator);
    h.add_key("New key");
    b.wait_for("Security key \"New key\" added.");
    let new = newest_credential(&h, &before);
    b.add_credential(&h.authenticator, &old);
    // alice removes the old key.
    b.goto(&h.url("/2fa/security-keys"));
    b.click("button[aria-label=\"Remove Old key\"]");
    b.wait_for("Security key \"Old key\" removed");
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();

    // Attack on the user's own lock (an honest user, or anyone who makes
    // her open a second page): she opens /2fa/verify in tab A, then in
    // tab B, and touches her key on tab A. The second page replaced the
    // first one's challenge, so A's answer was checked against B's and
    // counted as a wrong answer: enough tabs lock an account. Each page's
    // ceremony is now kept under its own challenge: A's answer verifies,
    // and nothing is counted.
    let wrong_before = h.audit().matches("wrong-webauthn").count();
    b.goto(&h.url("/2fa/verify"));
    let tab_a = options(b);
    let first_tab = b.new_tab();
    b.goto(&h.url("/2fa/verify"));
    let tab_b = options(b);
    assert_ne!(tab_a, tab_b, "each page has its own challenge");
    let second_tab = b.current_tab();
    // The virtual authenticator belongs to the first tab: answers are
    // made there, and each is posted by its own page.
    // (In the order they are posted: the key's counter moves with each.)
    b.switch_to(&first_tab);
    let answer = answer_with(b, &tab_a, &new);
    post_answer(b, &answer);
    b.wait_for("Your 2FA session is open until");
    assert_eq!(h.audit().matches("wrong-webauthn").count(), wrong_before);
    assert!(h.show("alice").contains("failures: 0"));
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    // Tab B's page, the other way round: posted before A's, it verifies
    // too (checked on a fresh pair of pages).
    b.goto(&h.url("/2fa/verify"));
    let tab_a = options(b);
    b.switch_to(&second_tab);
    b.goto(&h.url("/2fa/verify"));
    let tab_b = options(b);
    b.switch_to(&first_tab);
    let answer_b = answer_with(b, &tab_b, &new);
    b.switch_to(&second_tab);
    post_answer(b, &answer_b);
    b.wait_for("Your 2FA session is open until");
    assert_eq!(h.audit().matches("wrong-webauthn").count(), wrong_before);
    drop(tab_a);
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    b.switch_to(&first_tab);

    // Attack: bob's key answering alice's challenge (someone holding
    // bob's key and alice's password).
    b.goto(&h.url("/2fa/verify"));
    let answer = answer_with(b, &options(b), &bobs);
    post_answer(b, &answer);
    refused(&h, "wrong-webauthn");

    // Attack: the key alice removed (a lost key, found).
    b.goto(&h.url("/2fa/verify"));
    let answer = answer_with(b, &options(b), &old);
    post_answer(b, &answer);
    refused(&h, "wrong-webauthn");

    // Attack: an answer seen once (logged by a proxy, say), sent again.
    b.goto(&h.url("/2fa/verify"));
    let seen = answer_with(b, &options(b), &new);
    post_answer(b, &seen);
    b.wait_for("Your 2FA session is open until");
    h.f.git2fa(&["session", "end", "--user", "alice"]).ok();
    b.goto(&h.url("/2fa/verify"));
    post_answer(b, &seen);
    refused(&h, "wrong-webauthn");

    // Attack: a phishing page on another origin relays alice's challenge
    // and gets her key's answer for it.
    b.goto(&h.url("/2fa/verify"));
    let relayed = options(b);
    let key = b
        .credentials(&h.authenticator)
        .into_iter()
        .find(|c| c["credentialId"] == new["credentialId"])
        .unwrap();
    let own_tab = b.new_tab();
    b.goto(&format!("http://localhost:{}/", other_origin()));
    b.wait_for("Sign in to git");
    // Chromium's virtual authenticators belong to a tab: this tab's
    // holds alice's key too.
    let here = b.add_virtual_authenticator();
    b.add_credential(&here, &key);
    let answer = answer_with(b, &relayed, &new);
    b.switch_to(&own_tab);
    post_answer(b, &answer);
    refused(&h, "wrong-webauthn");
    let audit = h.audit();
    assert!(
        audit.to_lowercase().contains("origin"),
        "the audit row says why: {audit}"
    );

    // Attack: a copy of alice's key, its counter behind the original's.
    let mut copy = b
        .credentials(&h.authenticator)
        .into_iter()
        .find(|c| c["credentialId"] == new["credentialId"])
        .unwrap();
    assert!(copy["signCount"].as_u64().unwrap() > 0, "{copy}");
    copy["signCount"] = Value::from(0);
    b.remove_credential(&h.authenticator, new["credentialId"].as_str().unwrap());
    b.add_credential(&h.authenticator, &copy);
    b.goto(&h.url("/2fa/verify"));
    let answer = answer_with(b, &options(b), &new);
    post_answer(b, &answer);
    refused(&h, "cloned-webauthn");

    // Every failed answer since the last success counted towards the
    // lock: the replayed, relayed and cloned ones.
    let shown = h.show("alice");
    assert!(shown.contains("failures: 3"), "{shown}");

    // Not an attack either: a verify page left open while many others
    // were opened (its ceremony pushed out by newer ones). Nothing is
    // checked and nothing counted; the page asks to try again.
    b.goto(&h.url("/2fa/verify"));
    let opts = options(b);
    let verify_tab = b.new_tab();
    for _ in 0..8 {
        b.goto(&h.url("/2fa/security-keys"));
        b.wait_for("Add security key");
    }
    b.switch_to(&verify_tab);
    let answer = answer_with(b, &opts, &new);
    post_answer(b, &answer);
    b.wait_for("that page had expired, or a newer page replaced it");
    let audit = h.audit();
    assert!(
        audit
            .lines()
            .next()
            .unwrap_or_default()
            .contains("stale-webauthn"),
        "{audit}"
    );
    assert!(h.show("alice").contains("failures: 3"));
}

#[test]
fn without_a_host_name_or_javascript_keys_are_explained_and_nothing_changes() {
    // public_url with an IP address: the page says why keys are
    // unavailable, and offers no key.
    let port = web_server::free_port();
    let host = web_server::host(port, "");
    let f = host.user("alice").enrolled();
    let server = Server::start(&f, port);
    let mut web = Client::new(&server);
    web.logs_in("alice", PASSWORD);
    web.verifies(&code(f.secret_of("alice"), 0));
    let page = web.get("/2fa/security-keys");
    assert!(page.body.contains("is an IP address"), "{}", page.body);
    assert!(!page.body.contains("add-security-key"), "{}", page.body);
    drop(server);

    // On localhost, a browser without JavaScript posts the form with no
    // answer: nothing is added, and the page says a key needs JavaScript.
    let port = web_server::free_port();
    let host = Host::build(
        &format!("http://localhost:{port}"),
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n"),
    );
    let f = host.user("alice").enrolled();
    let server = Server::start(&f, port);
    let mut web = Client::new(&server);
    web.logs_in("alice", PASSWORD);
    web.verifies(&code(f.secret_of("alice"), 0));
    // Adding a key needs a code from the last five minutes, like other
    // sensitive changes: without one the page offers no key and a post is
    // sent to verify.
    crate::web::age_code(&f, &web, 360);
    let stale = web.get("/2fa/security-keys");
    assert!(stale.body.contains("Verify again"), "{}", stale.body);
    assert!(!stale.body.contains("add-security-key"), "{}", stale.body);
    let answer = web.submit(
        "/2fa/security-keys",
        "/2fa/security-keys",
        &[("name", "My key"), ("credential", "")],
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(answer.location().starts_with("/2fa/verify?next="));
    crate::web::age_code(&f, &web, 10);
    let page = web.get("/2fa/security-keys");
    assert!(page.body.contains("<noscript>"), "{}", page.body);
    assert!(page.body.contains("needs JavaScript"), "{}", page.body);
    let answer = web.submit(
        "/2fa/security-keys",
        "/2fa/security-keys",
        &[("name", "My key"), ("credential", "")],
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("needs JavaScript"), "{}", answer.body);
    let shown = f.git2fa(&["user", "show", "alice"]).ok().stdout;
    assert!(!shown.contains("security-key #"), "{shown}");
    // The script is a file of the host's own, and the policy allows no
    // other: no inline script on any page.
    let script = web.get("/webauthn.js");
    assert_eq!(script.status, 200);
    assert!(script.body.contains("navigator.credentials"));
    assert!(
        page.head
            .contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{}",
        page.head
    );
    assert!(!page.body.contains("<script>"), "{}", page.body);
}

/// Attack: someone with alice's password alone starts setting up an
/// authenticator app of their own while alice has no 2FA. Alice then sets
/// up 2FA with a security key. Finishing the app's set-up now would add
/// the attacker's app to her account (and open them a 2FA session): it is
/// refused, and the half-made set-up is gone.
#[test]
fn an_app_set_up_half_way_with_the_password_cannot_be_finished_after_a_key() {
    let port = web_server::free_port();
    let host = Host::build(
        &format!("http://localhost:{port}"),
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n"),
    );
    let f = host.user("alice");
    let server = Server::start(&f, port);
    let mut attacker = Client::new(&server);
    attacker.logs_in("alice", PASSWORD);
    let started = attacker.submit("/2fa/setup", "/2fa/setup/start", &[]);
    assert_eq!(started.status, 303, "{}", started.body);
    let scan = attacker.get("/2fa/setup/scan");
    let at = scan.body.find("otpauth://").expect("the scan page");
    let uri = scan.body[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let secret = git2fa::factor::totp::secret_from_uri(&uri).unwrap();

    // alice sets up 2FA with a key (what her browser's ceremony stores).
    let mut store = git2fa::store::Store::open(&f.store_path()).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    let key = git2fa::store::SecurityKey {
        id: 0,
        user_id: alice.id,
        name: "alice's key".into(),
        credential_id: b"credential".to_vec(),
        credential: "{}".into(),
        sign_count: 0,
        created_at: git2fa::system::time::now(),
        last_used_at: None,
    };
    store.add_security_key(&key, Some(&[]), 20).unwrap();
    drop(store);
    // The half-made set-up is gone from the attacker's web session.
    let cookie = attacker.cookie.clone().unwrap();
    let id: [u8; 32] = sha2::Sha256::digest(cookie.split_once('=').unwrap().1.as_bytes()).into();
    let session = git2fa::store::Store::open(&f.store_path())
        .unwrap()
        .web_session(&id, git2fa::system::time::now())
        .unwrap()
        .expect("the attacker's web session");
    assert_eq!(session.pending_secret, None);

    for page in ["/2fa/setup/scan", "/2fa/setup/codes", "/2fa/setup/confirm"] {
        let answer = attacker.get(page);
        assert_eq!(answer.status, 303, "{page}: {}", answer.body);
        assert!(
            answer.location().starts_with("/2fa/verify"),
            "{page}: {}",
            answer.location()
        );
    }
    let csrf = attacker.get("/2fa/verify").csrf();
    let confirm = attacker.send(
        "POST",
        "/2fa/setup/confirm",
        &[("csrf", &csrf), ("code", &code(&secret, 0))],
    );
    assert_eq!(confirm.status, 303, "{}", confirm.body);
    let store = git2fa::store::Store::open(&f.store_path()).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    assert!(!alice.has_totp(), "no app was added");
    assert!(
        store
            .open_sessions(alice.id, git2fa::system::time::now())
            .unwrap()
            .is_empty()
    );
}
