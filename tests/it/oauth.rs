//! Browser sign-in for git credential helpers: serve's OAuth 2.0
//! authorization server (code with PKCE S256, loopback redirects), the
//! token it hands out, and what it refuses, over plain HTTP as a helper
//! and a browser send it; then the real git with Debian's
//! git-credential-oauth and headless Chromium.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::Digest;

use crate::harness::client::Client;
use crate::harness::fixture::{Fixture, PASSWORD};
use crate::harness::web_server::{self, Server};
use crate::harness::{Run, code, http, run};

const HELPER: &str = "git-credential-oauth";
const REDIRECT: &str = "http://127.0.0.1:38111/";

/// alice, enrolled and with a commit in `team/app`, which requires 2FA for
/// everything; serve on a free port with `[oauth]` as `oauth` says.
fn start(oauth: &str) -> (Fixture, Server, Vec<u8>) {
    let port = web_server::free_port();
    let host = crate::harness::Host::build(
        &format!("http://127.0.0.1:{port}"),
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n{oauth}\n"),
    )
    .user("alice")
    .enrolled()
    .repo("team/app");
    host.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let secret = host.secret_of("alice").to_vec();
    let server = Server::start(&host, port);
    (host, server, secret)
}

/// A PKCE pair (RFC 7636): a verifier and BASE64URL(SHA-256(verifier)).
fn pkce(seed: u8) -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode([seed; 32]);
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_path(pairs: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("/2fa/oauth/authorize?{query}")
}

/// The usual request of `client` with `challenge` and state `xyz`.
fn request(client: &str, challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client.into()),
        ("redirect_uri", REDIRECT.into()),
        ("state", "xyz".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn pairs<'a>(request: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    request.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The consent page for `request`, then Allow: the code from the redirect.
fn consent(browser: &mut Client, request: &[(&'static str, String)]) -> String {
    let page = browser.get(&authorize_path(&pairs(request)));
    assert_eq!(page.status, 200, "{}", page.body);
    let mut fields = pairs(request);
    let csrf = page.csrf();
    fields.push(("csrf", &csrf));
    fields.push(("approve", "yes"));
    let allowed = browser.send("POST", "/2fa/oauth/authorize", &fields);
    assert_eq!(allowed.status, 303, "{}", allowed.body);
    let location = allowed.location().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    let query: Vec<(String, String)> =
        form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert!(
        query.contains(&("state".into(), "xyz".into())),
        "{location}"
    );
    query
        .into_iter()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v)
        .unwrap()
}

/// `POST /2fa/oauth/token` as golang.org/x/oauth2 sends it: the client in
/// HTTP Basic with an empty secret.
fn exchange(port: u16, client: &str, fields: &[(&str, &str)]) -> http::Reply {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let basic = format!(
        "Authorization: Basic {}",
        STANDARD.encode(format!("{client}:"))
    );
    http::send(
        port,
        "POST",
        "/2fa/oauth/token",
        &[
            "Content-Type: application/x-www-form-urlencoded",
            basic.as_str(),
        ],
        body.as_bytes(),
    )
}

fn token_fields<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

fn json(reply: &http::Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {}", reply.body))
}

/// `git ls-remote` of team/app over HTTP with `user` and `token`.
fn ls_remote(host: &Fixture, server: &Server, user: &str, token: &str) -> Run {
    run(
        "git",
        &[
            "ls-remote",
            &format!(
                "http://{user}:{token}@127.0.0.1:{}/git/team/app",
                server.port
            ),
        ],
        host.dir.path(),
        &[("GIT_TERMINAL_PROMPT", "0".into())],
        "",
    )
}

#[test]
fn the_metadata_names_the_endpoints_and_s256_only() {
    let (_host, server, _) = start("");
    let reply = http::send(
        server.port,
        "GET",
        "/.well-known/oauth-authorization-server",
        &[],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let meta = json(&reply);
    let base = format!("http://127.0.0.1:{}", server.port);
    assert_eq!(meta["issuer"], base);
    assert_eq!(
        meta["authorization_endpoint"],
        format!("{base}/2fa/oauth/authorize")
    );
    assert_eq!(meta["token_endpoint"], format!("{base}/2fa/oauth/token"));
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        meta["grant_types_supported"],
        serde_json::json!(["authorization_code"])
    );
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none"])
    );
    // Turned off: nothing there.
    let (_host, off, _) = start("[oauth]\nclients = []");
    let reply = http::send(
        off.port,
        "GET",
        "/.well-known/oauth-authorization-server",
        &[],
        b"",
    );
    assert_eq!(reply.status, 404);
}

#[test]
fn a_code_becomes_a_token_that_works_for_git_until_its_session_ends() {
    let (host, server, secret) = start("");
    let mut browser = Client::new(&server);
    // Not logged in: the log-in page, which comes back here after.
    let (verifier, challenge) = pkce(1);
    let asked = browser.get(&authorize_path(&pairs(&request(HELPER, &challenge))));
    assert_eq!(asked.status, 303);
    assert!(
        asked
            .location()
            .starts_with("/login?next=%2F2fa%2Foauth%2Fauthorize")
            || asked
                .location()
                .starts_with("/login?next=/2fa/oauth/authorize"),
        "{}",
        asked.location()
    );
    browser.logs_in("alice", PASSWORD);
    browser.verifies(&code(&secret, 0));
    let page = browser.get(&authorize_path(&pairs(&request(HELPER, &challenge))));
    for text in [
        "<strong>git-credential-oauth</strong> on the computer at <strong>127.0.0.1</strong> asks to use git as <strong>alice</strong>.",
        "on the repositories alice may use",
        "Until your 2FA session ends at",
        REDIRECT,
    ] {
        assert!(page.body.contains(text), "{text}\n{}", page.body);
    }
    // Its form may end at the helper on this computer, and nowhere else.
    assert!(
        page.head
            .contains("form-action 'self' http://127.0.0.1:38111;"),
        "{}",
        page.head
    );
    let code = consent(&mut browser, &request(HELPER, &challenge));
    let reply = exchange(server.port, HELPER, &token_fields(&code, &verifier));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .head
            .to_ascii_lowercase()
            .contains("cache-control: no-store")
    );
    let answer = json(&reply);
    assert_eq!(answer["token_type"], "Bearer");
    let expires_in = answer["expires_in"].as_i64().unwrap();
    assert!((3500..=3600).contains(&expires_in), "{answer}");
    let token = answer["access_token"].as_str().unwrap().to_string();
    // Whatever user name the helper sends: git-credential-oauth's
    // `oauth2`, the user's own, Git Credential Manager's `OAUTH-USER`.
    for user in ["oauth2", "alice", "OAUTH-USER"] {
        let listed = ls_remote(&host, &server, user, &token);
        assert_eq!(listed.code, 0, "{user}: {listed:?}");
        assert!(listed.stdout.contains("refs/heads/main"), "{listed:?}");
    }
    let tokens = host.git2fa(&["token", "list", "alice"]).ok().stdout;
    assert!(
        tokens.contains("\"oauth: git-credential-oauth at 127.0.0.1\" write ** active oauth"),
        "{tokens}"
    );
    let rows = host.git2fa(&["audit", "--repo", "team/app"]).ok().stdout;
    assert!(
        rows.lines().next().unwrap().contains("allow token")
            && rows.contains("credential=oauth-token"),
        "{rows}"
    );
    // The user leaves the 2FA session in the web page: the token is dead,
    // with a 401 so that the helper forgets it and signs in again.
    let left = browser.submit("/2fa", "/2fa/leave", &[]);
    assert!(left.status == 303 || left.status == 200, "{}", left.body);
    let refused = ls_remote(&host, &server, "oauth2", &token);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("ended with the 2FA session it came from")
            || refused.stderr.contains("Authentication failed"),
        "{refused:?}"
    );
    let head = http::send(
        server.port,
        "GET",
        "/git/team/app/info/refs?service=git-upload-pack",
        &[&format!(
            "Authorization: Basic {}",
            STANDARD.encode(format!("oauth2:{token}"))
        )],
        b"",
    );
    assert_eq!(head.status, 401, "{}", head.body);
    let tokens = host.git2fa(&["token", "list", "alice"]).ok().stdout;
    assert!(
        tokens.contains("ended-with-its-2fa-session oauth"),
        "{tokens}"
    );
}

#[test]
fn what_the_authorization_server_refuses() {
    let (host, server, secret) =
        start("[oauth]\nclients = [\"git-credential-oauth\", \"git-credential-manager\"]");
    let mut browser = Client::new(&server);
    browser.logs_in("alice", PASSWORD);
    browser.verifies(&code(&secret, 0));
    let (verifier, challenge) = pkce(2);

    // `[::1]`: a page that moves on by itself (a CSP cannot name it).
    let mut v6 = request(HELPER, &challenge);
    v6[2].1 = "http://[::1]:38111/".into();
    let page = browser.get(&authorize_path(&pairs(&v6)));
    assert_eq!(page.status, 200, "{}", page.body);
    let mut fields = pairs(&v6);
    let csrf = page.csrf();
    fields.push(("csrf", &csrf));
    fields.push(("approve", "yes"));
    let moved = browser.send("POST", "/2fa/oauth/authorize", &fields);
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(
        moved
            .body
            .contains("http-equiv=\"refresh\" content=\"0;url=http://[::1]:38111/?code="),
        "{}",
        moved.body
    );

    // A redirect off this computer: said on the page, sent nowhere.
    for bad in [
        "http://evil.example/cb",
        "https://127.0.0.1:38111/",
        "http://127.0.0.1.evil.example/",
        "http://alice@evil.example/",
    ] {
        let mut req = request(HELPER, &challenge);
        req[2].1 = bad.into();
        let answer = browser.get(&authorize_path(&pairs(&req)));
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
        assert_eq!(answer.location(), "", "{bad}");
        assert!(answer.body.contains("another computer"), "{}", answer.body);
    }
    // An unknown client: the same.
    let answer = browser.get(&authorize_path(&pairs(&request(
        "someone-else",
        &challenge,
    ))));
    assert_eq!(answer.status, 400);
    assert_eq!(answer.location(), "");

    // No PKCE, or `plain`: back to the client with the error and state.
    let mut no_pkce = request(HELPER, &challenge);
    no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
    let mut plain = request(HELPER, &challenge);
    plain[5].1 = "plain".into();
    for req in [no_pkce, plain] {
        let answer = browser.get(&authorize_path(&pairs(&req)));
        assert_eq!(answer.status, 303, "{}", answer.body);
        assert!(
            answer
                .location()
                .starts_with(&format!("{REDIRECT}?error=invalid_request&"))
                && answer.location().ends_with("&state=xyz"),
            "{}",
            answer.location()
        );
    }

    // A consent posted without its CSRF token (another site's form): no
    // code, nothing stored.
    let usual = request(HELPER, &challenge);
    let mut fields = pairs(&usual);
    fields.push(("approve", "yes"));
    let forged = browser.send("POST", "/2fa/oauth/authorize", &fields);
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.location(), "");

    // Deny: back to the client with access_denied.
    let page = browser.get(&authorize_path(&pairs(&usual)));
    let mut fields = pairs(&usual);
    let csrf = page.csrf();
    fields.push(("csrf", &csrf));
    fields.push(("approve", "no"));
    let denied = browser.send("POST", "/2fa/oauth/authorize", &fields);
    assert!(
        denied.location().contains("error=access_denied"),
        "{}",
        denied.location()
    );

    // A wrong verifier, then no verifier: refused, and the code is burnt.
    let code_a = consent(&mut browser, &request(HELPER, &challenge));
    let (other_verifier, _) = pkce(3);
    let wrong = exchange(server.port, HELPER, &token_fields(&code_a, &other_verifier));
    assert_eq!(
        (wrong.status, json(&wrong)["error"].clone()),
        (400, "invalid_grant".into())
    );
    let burnt = exchange(server.port, HELPER, &token_fields(&code_a, &verifier));
    assert_eq!(burnt.status, 400, "{}", burnt.body);
    let code_b = consent(&mut browser, &request(HELPER, &challenge));
    let missing = exchange(
        server.port,
        HELPER,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code_b),
            ("redirect_uri", REDIRECT),
        ],
    );
    assert_eq!(missing.status, 400, "{}", missing.body);

    // Another client's code: refused.
    let code_c = consent(&mut browser, &request(HELPER, &challenge));
    let stolen = exchange(
        server.port,
        "git-credential-manager",
        &token_fields(&code_c, &verifier),
    );
    assert_eq!(
        (stolen.status, json(&stolen)["error"].clone()),
        (400, "invalid_grant".into())
    );

    // A redirect URI other than the one consented to: refused.
    let code_d = consent(&mut browser, &request(HELPER, &challenge));
    let mut fields = token_fields(&code_d, &verifier);
    fields[2].1 = "http://127.0.0.1:38112/";
    let moved = exchange(server.port, HELPER, &fields);
    assert_eq!(moved.status, 400, "{}", moved.body);

    // Used twice: refused, and the token of the first use is revoked (the
    // code may have been stolen).
    let code_e = consent(&mut browser, &request(HELPER, &challenge));
    let first = exchange(server.port, HELPER, &token_fields(&code_e, &verifier));
    assert_eq!(first.status, 200, "{}", first.body);
    let token = json(&first)["access_token"].as_str().unwrap().to_string();
    assert_eq!(ls_remote(&host, &server, "oauth2", &token).code, 0);
    let again = exchange(server.port, HELPER, &token_fields(&code_e, &verifier));
    assert_eq!(
        (again.status, json(&again)["error"].clone()),
        (400, "invalid_grant".into())
    );
    let revoked = ls_remote(&host, &server, "oauth2", &token);
    assert_ne!(revoked.code, 0, "{revoked:?}");
    // A 401, so that git and the helper forget it.
    assert!(
        revoked.stderr.contains("was revoked.") && revoked.stderr.contains("Authentication failed"),
        "{revoked:?}"
    );
    let rows = host.git2fa(&["audit", "--user", "alice"]).ok().stdout;
    assert!(
        rows.lines()
            .any(|r| r.contains("token-revoke ok oauth code used twice") && r.contains("token=#")),
        "{rows}"
    );

    // Expired: a code a minute old is refused (aged here in the store).
    let code_f = consent(&mut browser, &request(HELPER, &challenge));
    let aged = run(
        "sqlite3",
        &[
            &host.store_path().display().to_string(),
            "UPDATE oauth_codes SET expires_at = expires_at - 120 WHERE used_at IS NULL",
        ],
        host.dir.path(),
        &[],
        "",
    );
    assert_eq!(aged.code, 0, "{aged:?}");
    let expired = exchange(server.port, HELPER, &token_fields(&code_f, &verifier));
    assert_eq!(
        (expired.status, json(&expired)["error"].clone()),
        (400, "invalid_grant".into())
    );

    // A client that is not configured, or a secret: invalid_client.
    let unknown = exchange(server.port, "someone-else", &token_fields("x", &verifier));
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    assert_eq!(json(&unknown)["error"], "invalid_client");

    // An admin ends the user's 2FA sessions (as `ssh … 2fa logout` does):
    // a token from one of them ends too. Then reset-2fa.
    for (end, args) in [
        ("session end", &["session", "end", "--user", "alice"][..]),
        ("reset-2fa", &["user", "reset-2fa", "alice"][..]),
    ] {
        let given = consent(&mut browser, &request(HELPER, &challenge));
        let issued = exchange(server.port, HELPER, &token_fields(&given, &verifier));
        let token = json(&issued)["access_token"].as_str().unwrap().to_string();
        assert_eq!(ls_remote(&host, &server, "oauth2", &token).code, 0, "{end}");
        host.git2fa(args).ok();
        let ended = ls_remote(&host, &server, "oauth2", &token);
        assert_ne!(ended.code, 0, "{end}: {ended:?}");
        // A 401 either way: ended with the session, or revoked with it.
        assert!(
            ended.stderr.contains("Authentication failed")
                && (ended
                    .stderr
                    .contains("ended with the 2FA session it came from")
                    || ended.stderr.contains("was revoked.")),
            "{end}: {ended:?}"
        );
        if end == "reset-2fa" {
            break;
        }
        // A new 2FA session for the next round.
        browser.verifies(&code(&secret, 1));
    }
    // reset-2fa ended the web session too: in again, with a new app.
    let (secret, recovery) = host.enroll("alice");
    browser.logs_in("alice", PASSWORD);
    browser.verifies(&code(&secret, 0));

    // A 2FA session opened elsewhere (here by an admin's `git2fa verify`,
    // as over SSH from another computer) is not lent to a helper: the
    // browser verifies first.
    browser.submit("/2fa", "/2fa/leave", &[]);
    host.git2fa(&["verify", "alice", &recovery[0]]).ok();
    let elsewhere = browser.get(&authorize_path(&pairs(&request(HELPER, &challenge))));
    assert_eq!(elsewhere.status, 303, "{}", elsewhere.body);
    assert!(
        elsewhere.location().starts_with("/2fa/verify?next="),
        "{}",
        elsewhere.location()
    );
    browser.verifies(&code(&secret, 1));

    // A token of a user disabled since: refused.
    let code_g = consent(&mut browser, &request(HELPER, &challenge));
    let issued = exchange(server.port, HELPER, &token_fields(&code_g, &verifier));
    let token = json(&issued)["access_token"].as_str().unwrap().to_string();
    host.git2fa(&["user", "disable", "alice"]).ok();
    let disabled = ls_remote(&host, &server, "oauth2", &token);
    assert_ne!(disabled.code, 0, "{disabled:?}");
    // Disabling ends the user's 2FA sessions, and the token with them.
    assert!(
        disabled
            .stderr
            .contains("ended with the 2FA session it came from"),
        "{disabled:?}"
    );
    let rows = host.git2fa(&["audit", "--limit", "200"]).ok().stdout;
    assert!(rows.contains("oauth-token fail expired-code"), "{rows}");
    for reason in [
        "pkce",
        "another-client",
        "used-code",
        "expired-code",
        "redirect-uri",
    ] {
        assert!(
            rows.lines()
                .any(|r| r.contains("oauth-token fail") && r.contains(reason)),
            "{reason}\n{rows}"
        );
    }
}

/// The real git with Debian's git-credential-oauth, as a user sets them
/// up (the user guide's lines), in a home of its own. The helper opens
/// the browser with `open URL`; here `open` writes the URL to a file, and
/// the test hands it to headless Chromium.
struct Desk {
    home: std::path::PathBuf,
    bin: std::path::PathBuf,
}

impl Desk {
    fn new(host: &Fixture, port: u16) -> Desk {
        let home = host.dir.path().join("desk");
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let open = bin.join("open");
        std::fs::write(
            &open,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\n",
                home.join("opened").display()
            ),
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let url = format!("http://127.0.0.1:{port}");
        let guide = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/user-guide.md"),
        )
        .unwrap();
        let section = guide
            .split("### git-credential-oauth")
            .nth(1)
            .expect("the user guide's git-credential-oauth section");
        let block = section
            .split("```sh\n")
            .nth(1)
            .and_then(|b| b.split("\n```").next())
            .expect("a ```sh block");
        // The guide's lines, for this host; credentials kept in a file of
        // this home instead of the guide's cache daemon.
        let script = block.replace("https://git.example.com", &url).replace(
            "cache --timeout 21600",
            &format!("store --file={}/credentials", home.display()),
        );
        let desk = Desk { home, bin };
        let made = desk.run(&["-c", &script], "bash", &desk.home.clone());
        assert_eq!(made.code, 0, "the guide's lines: {made:?}");
        desk
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", self.home.display().to_string()),
            (
                "PATH",
                format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap()),
            ),
            ("GIT_TERMINAL_PROMPT", "0".into()),
            ("GIT_AUTHOR_NAME", "alice".into()),
            ("GIT_AUTHOR_EMAIL", "alice@example.com".into()),
            ("GIT_COMMITTER_NAME", "alice".into()),
            ("GIT_COMMITTER_EMAIL", "alice@example.com".into()),
        ]
    }

    fn run(&self, args: &[&str], program: &str, cwd: &std::path::Path) -> Run {
        run(program, args, cwd, &self.env(), "")
    }

    /// git started in `cwd`, left running while the browser signs in.
    fn spawn_git(&self, args: &[&str], cwd: &std::path::Path) -> std::process::Child {
        let mut command = std::process::Command::new("git");
        command
            .args(args)
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (name, value) in self.env() {
            command.env(name, value);
        }
        command.spawn().unwrap()
    }

    /// The URLs the helper opened so far.
    fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.home.join("opened"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits for the helper to open URL number `n` (1-based).
    fn wait_opened(&self, n: usize, git: &mut std::process::Child) -> String {
        let found = crate::harness::poll(std::time::Duration::from_secs(30), || {
            self.opened().len() >= n || git.try_wait().ok().flatten().is_some()
        });
        let opened = self.opened();
        assert!(
            found && opened.len() >= n,
            "the helper opened no browser: {opened:?}"
        );
        opened[n - 1].clone()
    }
}

/// Waits for `child` (at most two minutes) and takes what it printed.
fn finish(mut child: std::process::Child) -> Run {
    let done = crate::harness::poll(std::time::Duration::from_secs(120), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !done {
        let _ = child.kill();
    }
    Run::from(child.wait_with_output().unwrap())
}

/// In the browser: whatever the page asks on the way (log in, a code),
/// then Allow on the consent page; the helper's page says it is done.
fn sign_in(browser: &crate::harness::webdriver::Browser, url: &str, code: &str, log_in: bool) {
    browser.goto(url);
    if log_in {
        browser.wait_for("id=\"password\"");
        browser.fill("#user", "alice");
        browser.fill("#password", PASSWORD);
        browser.click("button[type=submit]");
    }
    browser.wait_for("id=\"code\"");
    browser.fill("#code", code);
    browser.click("button[type=submit]");
    browser.wait_for("Your 2FA session is open until");
    browser.click("a.button");
    browser.wait_for("asks to use git as <strong>alice</strong>");
    browser.click("button[value=yes]");
    browser.wait_for("Success. You may close this page");
}

#[test]
fn git_signs_in_through_the_browser_with_git_credential_oauth() {
    if !crate::harness::webdriver::available()
        || !crate::harness::e2e_available(
            crate::harness::which("git-credential-oauth").is_some(),
            "git-credential-oauth",
            "git-credential-oauth",
        )
    {
        return;
    }
    let (host, server, secret) = start("");
    let desk = Desk::new(&host, server.port);
    let browser = crate::harness::webdriver::Browser::start();
    let repo_url = format!("http://127.0.0.1:{}/git/team/app", server.port);

    // The first clone opens the browser: log in, a code, consent.
    let mut clone = desk.spawn_git(&["clone", &repo_url, "app"], &desk.home);
    let url = desk.wait_opened(1, &mut clone);
    assert!(
        url.starts_with(&format!(
            "http://127.0.0.1:{}/2fa/oauth/authorize?",
            server.port
        )) && url.contains("code_challenge_method=S256"),
        "{url}"
    );
    sign_in(&browser, &url, &code(&secret, 0), true);
    browser.screenshot("oauth-signed-in");
    let cloned = finish(clone);
    assert_eq!(cloned.code, 0, "{cloned:?}");
    let work = desk.home.join("app");
    assert!(work.join("README").exists() || work.join(".git").exists());

    // A push: the stored credential, no browser.
    std::fs::write(work.join("NOTES"), "signed in through the browser\n").unwrap();
    desk.run(&["add", "NOTES"], "git", &work).ok();
    desk.run(&["commit", "-q", "-m", "notes"], "git", &work)
        .ok();
    let pushed = desk.run(&["push", "origin", "HEAD"], "git", &work);
    assert_eq!(pushed.code, 0, "{pushed:?}");
    assert_eq!(desk.opened().len(), 1, "no browser for the push");

    // Leave the 2FA session: the next fetch is refused (and git forgets
    // the credential), without a browser.
    browser.goto(&server.url("/2fa"));
    browser.click("form[action=\"/2fa/leave\"] button");
    browser.wait_for("You left the 2FA session");
    let refused = desk.run(&["fetch", "origin"], "git", &work);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("ended with the 2FA session it came from"),
        "{refused:?}"
    );
    assert_eq!(desk.opened().len(), 1);

    // The next one signs in again: still logged in, a code and Allow.
    let mut fetch = desk.spawn_git(&["fetch", "origin"], &work);
    let url = desk.wait_opened(2, &mut fetch);
    sign_in(&browser, &url, &code(&secret, 1), false);
    let fetched = finish(fetch);
    assert_eq!(fetched.code, 0, "{fetched:?}");
    let tokens = host.git2fa(&["token", "list", "alice"]).ok().stdout;
    assert_eq!(tokens.matches(" oauth ").count(), 2, "{tokens}");
    assert!(
        tokens.contains("ended-with-its-2fa-session oauth"),
        "{tokens}"
    );
}
