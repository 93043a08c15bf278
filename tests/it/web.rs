//! The web page's defences, over plain HTTP: CSRF tokens, a new session at
//! log-in, half-logged-in sessions, lock-outs, replayed codes, recent codes
//! for sensitive changes, headers and cookie flags.

use sha2::Digest;

use crate::harness::client::Client;
use crate::harness::fixture::Fixture;
use crate::harness::fixture::PASSWORD;
use crate::harness::web_server::{self, Server};
use crate::harness::{Host, code};

fn start(policy: &str) -> (Fixture, Server, Vec<u8>) {
    let port = web_server::free_port();
    let host = web_server::host(port, policy).user("alice").enrolled();
    let secret = host.secret_of("alice").to_vec();
    let server = Server::start(&host, port);
    (host, server, secret)
}

#[test]
fn every_form_needs_its_csrf_token() {
    let (_host, server, _) = start("");
    let mut client = Client::new(&server);
    let page = client.get("/login");
    // Attack: another site's page posts the log-in (or any) form with the
    // victim's cookie; without the token the post is refused.
    let missing = client.send(
        "POST",
        "/login",
        &[("user", "alice"), ("password", PASSWORD)],
    );
    assert_eq!(missing.status, 403, "{}", missing.body);
    let wrong = client.send(
        "POST",
        "/login",
        &[
            ("csrf", "0123456789abcdef0123456789abcdef"),
            ("user", "alice"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(wrong.status, 403);
    let right = client.send(
        "POST",
        "/login",
        &[
            ("csrf", &page.csrf()),
            ("user", "alice"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(right.status, 303, "{}", right.body);
    let logout = client.send("POST", "/logout", &[]);
    assert_eq!(logout.status, 403, "log-out needs the token too");
}

#[test]
fn a_cookie_from_before_log_in_is_not_accepted_after_it() {
    // Attack (session fixation): the attacker plants a cookie in the
    // victim's browser before they log in, then uses it once they have.
    let (_host, server, _) = start("");
    let mut victim = Client::new(&server);
    assert_eq!(victim.get("/login").status, 200);
    let planted = victim.cookie.clone().unwrap();
    let logged_in = victim.log_in("alice", PASSWORD);
    assert_eq!(logged_in.status, 303);
    assert_ne!(
        victim.cookie.as_deref(),
        Some(planted.as_str()),
        "log-in makes a new session"
    );
    let mut attacker = Client {
        port: server.port,
        cookie: Some(planted),
    };
    let answer = attacker.get("/2fa/verify");
    assert_eq!(
        (answer.status, answer.location()),
        (303, "/login?next=/2fa/verify")
    );
}

#[test]
fn a_half_logged_in_session_can_only_verify() {
    let (_host, server, secret) = start("");
    let mut client = Client::new(&server);
    let logged_in = client.log_in("alice", PASSWORD);
    assert_eq!(logged_in.location(), "/2fa/verify?next=/2fa");
    for page in [
        "/2fa",
        "/2fa/tokens",
        "/2fa/keys",
        "/2fa/repos",
        "/2fa/admin/users",
    ] {
        let answer = client.get(page);
        assert_eq!(answer.status, 303, "{page}");
        assert!(
            answer.location().starts_with("/2fa/verify?next="),
            "{page}: {}",
            answer.location()
        );
    }
    let create = client.send("POST", "/2fa/tokens", &[("name", "x")]);
    assert_eq!(create.status, 403, "no CSRF token for a page it cannot see");
    assert_eq!(client.get("/2fa/verify").status, 200);
    let verified = client.submit("/2fa/verify", "/2fa/verify", &[("code", &code(&secret, 0))]);
    assert!(
        verified.body.contains("<h1>Verified</h1>"),
        "{}",
        verified.body
    );
    assert_eq!(client.get("/2fa/tokens").status, 200);
}

#[test]
fn wrong_passwords_and_codes_lock_out_as_configured() {
    let (host, server, secret) = start("max_failures = 3");
    let mut client = Client::new(&server);
    for _ in 0..3 {
        let wrong = client.log_in("alice", "not the password");
        assert_eq!(wrong.status, 401);
        assert!(wrong.body.contains("Wrong user name or password."));
    }
    let throttled = client.log_in("alice", PASSWORD);
    assert!(
        throttled
            .body
            .contains("Too many wrong passwords. Try again after "),
        "{}",
        throttled.body
    );

    host.add_user("bob");
    let (bob_secret, _) = host.enroll("bob");
    let mut bob = Client::new(&server);
    bob.logs_in("bob", PASSWORD);
    let right = code(&bob_secret, 0);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for left in ["2 more wrong codes lock", "1 more wrong code locks"] {
        let answer = bob.submit("/2fa/verify", "/2fa/verify", &[("code", wrong)]);
        assert!(
            answer
                .body
                .contains(&format!("That code is not right. {left} your account.")),
            "{}",
            answer.body
        );
    }
    let locked = bob.submit("/2fa/verify", "/2fa/verify", &[("code", wrong)]);
    assert!(
        locked
            .body
            .contains("Too many wrong codes: your account is locked until"),
        "{}",
        locked.body
    );
    let still = bob.submit("/2fa/verify", "/2fa/verify", &[("code", &right)]);
    assert!(
        still.body.contains("your account is locked"),
        "{}",
        still.body
    );
    let _ = secret;
}

#[test]
fn a_replayed_code_is_refused() {
    let (_host, server, secret) = start("");
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    let now = code(&secret, 0);
    assert!(
        client
            .submit("/2fa/verify", "/2fa/verify", &[("code", &now)])
            .body
            .contains("<h1>Verified</h1>")
    );
    let left = client.submit("/2fa", "/2fa/leave", &[]);
    assert!(left.body.contains("You left the 2FA session"));
    let again = client.submit("/2fa/verify", "/2fa/verify", &[("code", &now)]);
    assert!(
        again.body.contains("That code was already used."),
        "{}",
        again.body
    );
}

#[test]
fn pages_needing_2fa_send_the_user_to_verify() {
    let (_host, server, secret) = start("");
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    client.verifies(&code(&secret, 0));
    let left = client.submit("/2fa", "/2fa/leave", &[]);
    assert!(
        left.body.contains("You left the 2FA session"),
        "{}",
        left.body
    );
    // Logged in, but no 2FA session: creating a token or adding a key asks
    // for a code first.
    let token = client.submit(
        "/2fa/tokens",
        "/2fa/tokens",
        &[
            ("name", "ci"),
            ("repos", "app"),
            ("permission", "read"),
            ("days", "7"),
        ],
    );
    assert_eq!(
        (token.status, token.location()),
        (303, "/2fa/verify?next=/2fa/tokens")
    );
    let key = client.submit("/2fa/keys", "/2fa/keys", &[("key", "ssh-ed25519 AAAA")]);
    assert_eq!(
        (key.status, key.location()),
        (303, "/2fa/verify?next=/2fa/keys")
    );
}

/// (page with the form, action, fields, what the page says when done)
type SensitiveCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str);

/// Makes the code of the client's web session `age` seconds old.
pub(crate) fn age_code(host: &Host, client: &Client, age: i64) {
    let mut store = git2fa::store::Store::open(&host.store_path()).unwrap();
    let cookie = client.cookie.clone().unwrap();
    let value = cookie.split_once('=').unwrap().1;
    let id: [u8; 32] = sha2::Sha256::digest(value.as_bytes()).into();
    store
        .set_web_code_at(&id, git2fa::system::time::now() - age)
        .unwrap();
}

#[test]
fn sensitive_changes_need_a_code_from_the_last_five_minutes() {
    let (host, server, _) = start("");
    // alice's recovery codes, one for each change below.
    host.git2fa(&["user", "reset-2fa", "alice"]).ok();
    let (secret, codes) = host.enroll("alice");
    host.bare_repo("app.git");
    std::fs::write(
        host.root.join("app.git/git2fa.toml"),
        "owners = ['alice']\n",
    )
    .unwrap();
    let mut store = git2fa::store::Store::open(&host.store_path()).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    store.set_admin(alice.id, true).unwrap();
    drop(store);
    let key = &format!("{} alice", crate::harness::ED25519_PUBLIC);
    let token = [
        ("name", "ci"),
        ("repos", "app"),
        ("permission", "read"),
        ("days", "7"),
    ];
    let cases: Vec<SensitiveCase> = vec![
        (
            "/2fa/tokens",
            "/2fa/tokens",
            token.to_vec(),
            "Token #1 created.",
        ),
        ("/2fa/keys", "/2fa/keys", vec![("key", key)], "Key #1 added"),
        (
            "/2fa/keys",
            "/2fa/keys/remove",
            vec![("id", "1")],
            "Key #1 removed.",
        ),
        (
            "/2fa/repos",
            "/2fa/repos",
            vec![("repo", "app"), ("require", "off")],
            "app: 2FA is no longer required.",
        ),
        (
            "/2fa/admin/users",
            "/2fa/admin/users",
            vec![("user", "alice"), ("action", "unlock")],
            "alice: unlocked.",
        ),
        ("/2fa", "/2fa/recovery-codes", vec![], "New recovery codes"),
    ];
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    client.verifies(&code(&secret, 0));
    for ((page, action, fields, done), recovery) in cases.iter().zip(&codes) {
        // The code was entered six minutes ago: verify first.
        age_code(&host, &client, 360);
        let stale = client.submit(page, action, fields);
        assert_eq!(stale.status, 303, "{action}: {}", stale.body);
        assert!(
            stale.location().starts_with("/2fa/verify?next="),
            "{action}: {}",
            stale.location()
        );
        // The verify page says why, while the padlock is closed, and the
        // change is made as soon as the code is in.
        let verify = client.get(stale.location());
        assert!(
            verify.body.contains(
                "needs a code from the last five minutes (your 2FA session for git stays open until"
            ),
            "{action}: {}",
            verify.body
        );
        assert!(verify.body.contains("padlock closed"), "{action}");
        let mut form = vec![("csrf", verify.csrf()), ("code", recovery.clone())];
        for name in ["next", "then", "carry", "held"] {
            form.push((name, verify.hidden(name)));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let made = client.send("POST", "/2fa/verify", &form);
        assert!(made.body.contains(done), "{action}: {}", made.body);
    }
}

// Attack: a link to the verify page that carries a change (an attacker's
// SSH key to add) made in the attacker's own web session; the victim, who
// came to enter a code, must not add the key with it. The held change is
// sealed with the web session that posted it: another session's seal is
// ignored, and the code only opens a session.
#[test]
fn a_held_change_from_another_session_is_not_made() {
    let (host, server, _) = start("");
    host.git2fa(&["user", "reset-2fa", "alice"]).ok();
    let (secret, codes) = host.enroll("alice");
    host.add_user("mallory");
    let (mallory_secret, _) = host.enroll("mallory");
    let key = format!("{} mallory", crate::harness::ED25519_PUBLIC);
    let mut attacker = Client::new(&server);
    attacker.logs_in("mallory", PASSWORD);
    attacker.verifies(&code(&mallory_secret, 0));
    age_code(&host, &attacker, 360);
    let held = attacker.submit("/2fa/keys", "/2fa/keys", &[("key", key.as_str())]);
    assert_eq!(held.status, 303, "{}", held.body);
    assert!(held.location().contains("&held="), "{}", held.location());

    let mut victim = Client::new(&server);
    victim.logs_in("alice", PASSWORD);
    victim.verifies(&code(&secret, 0));
    age_code(&host, &victim, 360);
    let page = victim.get(held.location());
    assert!(!page.body.contains("Adding an SSH key"), "{}", page.body);
    assert!(!page.body.contains("name=\"held\""), "{}", page.body);
    // Posted by hand with the attacker's fields: only a session opens.
    let fields = |name: &str| -> String {
        let query = held.location().split_once('?').unwrap().1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let csrf = page.csrf();
    let (then, carry, seal) = (fields("then"), fields("carry"), fields("held"));
    let answer = victim.send(
        "POST",
        "/2fa/verify",
        &[
            ("csrf", csrf.as_str()),
            ("code", codes[0].as_str()),
            ("then", then.as_str()),
            ("carry", carry.as_str()),
            ("held", seal.as_str()),
        ],
    );
    assert!(answer.body.contains("<h1>Verified</h1>"), "{}", answer.body);
    let keys = host.git2fa(&["key", "list"]).ok();
    assert_eq!(keys.stdout, "", "{keys:?}");
}

#[test]
fn a_half_logged_in_session_posts_nothing() {
    let (_host, server, _) = start("");
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    // It has a valid CSRF token (the verify form's), and still every form
    // but verify and log-out sends it to verify.
    let csrf = client.get("/2fa/verify").csrf();
    for action in [
        "/2fa/tokens",
        "/2fa/app/move",
        "/2fa/tokens/revoke",
        "/2fa/keys",
        "/2fa/keys/remove",
        "/2fa/security-keys",
        "/2fa/security-keys/remove",
        "/2fa/repos",
        "/2fa/leave",
        "/2fa/always",
        "/2fa/recovery-codes",
        "/2fa/remove",
        "/2fa/admin/users",
    ] {
        let answer = client.send(
            "POST",
            action,
            &[("csrf", &csrf), ("name", "x"), ("code", "123456")],
        );
        assert_eq!(answer.status, 303, "{action}: {}", answer.body);
        assert!(
            answer.location().starts_with("/2fa/verify?next="),
            "{action}: {}",
            answer.location()
        );
    }
}

#[test]
fn nobody_touches_another_users_tokens_keys_or_repositories() {
    let (host, server, secret) = start("");
    host.add_user("bob");
    host.git2fa(&[
        "token",
        "create",
        "bob",
        "--repo",
        "app",
        "--perm",
        "read",
        "--without-2fa",
    ])
    .ok();
    let key = &format!("{} bob\n", crate::harness::ED25519_PUBLIC);
    host.git2fa_with_stdin(&["key", "add", "bob", "-"], key)
        .ok();
    host.bare_repo("bobs.git");
    std::fs::write(
        host.root.join("bobs.git/git2fa.toml"),
        "owners = ['bob']\nrequire = 'push'\n",
    )
    .unwrap();
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    client.verifies(&code(&secret, 0));
    let revoke = client.submit("/2fa/tokens", "/2fa/tokens/revoke", &[("id", "1")]);
    assert!(
        revoke.body.contains("No such token of yours."),
        "{}",
        revoke.body
    );
    let remove = client.submit("/2fa/keys", "/2fa/keys/remove", &[("id", "1")]);
    assert!(
        remove.body.contains("No such key of yours."),
        "{}",
        remove.body
    );
    let flag = client.submit(
        "/2fa/repos",
        "/2fa/repos",
        &[("repo", "bobs"), ("require", "off")],
    );
    assert!(
        flag.body.contains("You do not own that repository."),
        "{}",
        flag.body
    );
    let admin = client.submit(
        "/2fa",
        "/2fa/admin/users",
        &[("user", "bob"), ("action", "disable")],
    );
    assert_eq!(admin.status, 403, "alice is no admin");
    assert!(
        host.git2fa(&["token", "list", "bob"])
            .ok()
            .stdout
            .contains(" active ")
    );
    assert_eq!(
        host.git2fa(&["key", "list", "bob"])
            .ok()
            .stdout
            .lines()
            .count(),
        1
    );
    assert!(
        std::fs::read_to_string(host.root.join("bobs.git/git2fa.toml"))
            .unwrap()
            .contains("require = 'push'")
    );
    assert!(
        host.git2fa(&["user", "show", "bob"])
            .ok()
            .stdout
            .starts_with("bob enabled")
    );
}

#[test]
fn resets_disables_and_new_passwords_end_web_sessions() {
    // Attack: a stolen web cookie outlives the admin's response to the
    // theft (a 2FA reset, a new password, disabling the account), and the
    // thief enrols an authenticator of their own in the gap.
    let (host, server, secret) = start("");
    for (step, command) in [
        (0, vec!["user", "reset-2fa", "alice"]),
        (1, vec!["user", "set-password", "alice", "--password-stdin"]),
        (2, vec!["user", "disable", "alice"]),
    ] {
        if step == 1 {
            host.enroll("alice");
        }
        let mut stolen = Client::new(&server);
        let logged_in = stolen.log_in("alice", PASSWORD);
        assert_eq!(logged_in.status, 303, "step {step}");
        let _ = secret;
        host.git2fa_with_stdin(&command, &format!("{PASSWORD}\n"))
            .ok();
        let after = stolen.get("/2fa/setup");
        assert_eq!(
            after.status, 303,
            "{command:?}: the old cookie still works: {}",
            after.body
        );
        assert!(
            after.location().starts_with("/login"),
            "{command:?}: {}",
            after.location()
        );
    }
}

#[test]
fn headers_and_cookies_are_strict() {
    let (_host, server, _) = start("");
    let mut client = Client::new(&server);
    let page = client.get("/login");
    assert!(
        page.head.contains(
            "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'"
        ),
        "{}",
        page.head
    );
    assert!(page.head.contains("x-frame-options: deny"));
    let cookie = page.set_cookie().unwrap().to_ascii_lowercase();
    assert!(
        cookie.contains("; httponly") && cookie.contains("; samesite=strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("secure"),
        "plain HTTP: no Secure flag browsers would refuse"
    );

    // Behind HTTPS: a __Host- cookie, Secure.
    let port = web_server::free_port();
    let host = Host::build(
        "https://git.example.com",
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let server = Server::start(&host, port);
    let page = Client::new(&server).get("/login");
    let cookie = page.set_cookie().unwrap().to_ascii_lowercase();
    assert!(
        cookie.starts_with("__host-git2fa=") && cookie.contains("; secure"),
        "{cookie}"
    );
}

#[test]
fn each_step_up_gets_a_new_cookie() {
    let (_host, server, secret) = start("");
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    let half = client.cookie.clone().unwrap();
    let verified = client.submit("/2fa/verify", "/2fa/verify", &[("code", &code(&secret, 0))]);
    assert!(verified.body.contains("<h1>Verified</h1>"));
    assert_ne!(
        client.cookie.as_deref(),
        Some(half.as_str()),
        "verifying makes a new session"
    );
    let mut old = Client {
        port: server.port,
        cookie: Some(half),
    };
    assert_eq!(
        old.get("/2fa").location(),
        "/login?next=/2fa",
        "the half-logged-in cookie is dead"
    );
    assert_eq!(client.get("/2fa").status, 200);
}

#[test]
fn the_link_in_git_s_message_leads_to_verify_after_log_in() {
    let (_host, server, _) = start("");
    let mut client = Client::new(&server);
    let first = client.get("/2fa/verify?repo=team/app");
    assert_eq!(
        first.location(),
        "/login?next=/2fa/verify%3Frepo%3Dteam/app"
    );
    let page = client.get("/login?next=/2fa/verify%3Frepo%3Dteam/app");
    let answer = client.send(
        "POST",
        "/login",
        &[
            ("csrf", &page.csrf()),
            ("user", "alice"),
            ("password", PASSWORD),
            ("next", "/2fa/verify?repo=team/app"),
        ],
    );
    assert_eq!(answer.location(), "/2fa/verify?repo=team/app");
    assert!(
        client
            .get(answer.location())
            .body
            .contains("Git needs a 2FA session for <strong>team/app</strong>.")
    );
}

/// What a user tripped over in the field trial: a failed log-in cleared
/// the name, a wrong code dropped which repository needed the session,
/// "Verified" showed twice and the recovery codes left not at all, empty
/// lists said nothing, and one HTTP clone was four lines of activity.
#[test]
fn the_small_things_from_the_field_trial() {
    let (host, server, secret) = start("");
    host.add_user("bob");
    let (_, codes) = host.enroll("bob");
    let mut client = Client::new(&server);
    let failed = client.log_in("alice", "not her password");
    assert_eq!(failed.status, 401);
    assert!(
        failed.body.contains("name=\"user\" value=\"alice\""),
        "{}",
        failed.body
    );
    client.logs_in("alice", PASSWORD);
    let wrong = client.submit(
        "/2fa/verify?repo=team/app",
        "/2fa/verify",
        &[("code", "000000"), ("repo", "team/app")],
    );
    assert!(
        wrong
            .body
            .contains("Git needs a 2FA session for <strong>team/app</strong>."),
        "{}",
        wrong.body
    );
    let verified = client.submit("/2fa/verify", "/2fa/verify", &[("code", &code(&secret, 0))]);
    assert_eq!(
        verified.body.matches("Verified").count(),
        2,
        "the title and the heading"
    );
    for (page, empty) in [
        ("/2fa/tokens", "You have no tokens yet."),
        ("/2fa/keys", "You have no SSH keys yet."),
        ("/2fa/repos", "No repository names you as an owner."),
    ] {
        let answer = client.get(page);
        assert!(answer.body.contains(empty), "{page}: {}", answer.body);
    }
    // Four requests of one clone over HTTP: one line of activity.
    let mut store = git2fa::store::Store::open(&host.store_path()).unwrap();
    for _ in 0..4 {
        store
            .append_audit(&git2fa::store::AuditRecord {
                at: git2fa::system::time::now(),
                user: Some("alice".into()),
                transport: "http".into(),
                repo: Some("team/app".into()),
                action: "read".into(),
                outcome: "allow".into(),
                reason: "token".into(),
                remote_addr: Some("127.0.0.1".into()),
                ..Default::default()
            })
            .unwrap();
    }
    drop(store);
    let manage = client.get("/2fa");
    assert_eq!(
        manage
            .body
            .matches("<td data-label=\"Via\">http</td>")
            .count(),
        1,
        "{}",
        manage.body
    );

    // bob verifies with a recovery code and learns how many are left.
    let mut bob = Client::new(&server);
    bob.logs_in("bob", PASSWORD);
    let used = bob.submit("/2fa/verify", "/2fa/verify", &[("code", &codes[0])]);
    assert!(
        used.body.contains(
            "You used a recovery code; it will not work again. 9 recovery codes are left."
        ),
        "{}",
        used.body
    );
}

#[test]
fn text_from_users_comes_back_escaped() {
    // Attack (cross-site scripting): markup typed where the page shows it
    // again (the user name after a failed log-in, the repository in the
    // verify link git prints, a token's name, a key's comment) would run
    // in the browser of whoever views the page, an admin included.
    let (_host, server, secret) = start("");
    let mut client = Client::new(&server);
    let evil = "\"><script>alert(1)</script>";
    let escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;";

    let failed = client.log_in(evil, "not the password");
    assert_eq!(failed.status, 401);
    assert!(failed.body.contains(escaped), "{}", failed.body);

    client.logs_in("alice", PASSWORD);
    let link = format!(
        "/2fa/verify?repo={}",
        form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
    );
    let verify = client.get(&link);
    assert!(verify.body.contains(escaped), "{}", verify.body);
    let verified = client.submit(&link, "/2fa/verify", &[("code", &code(&secret, 0))]);
    assert!(
        verified.body.contains("<h1>Verified</h1>"),
        "{}",
        verified.body
    );

    let created = client.submit(
        "/2fa/tokens",
        "/2fa/tokens",
        &[
            ("name", evil),
            ("repos", "team/app"),
            ("permission", "read"),
            ("days", "30"),
        ],
    );
    assert!(
        created.body.contains("Token #1 created."),
        "{}",
        created.body
    );
    let key = format!("{} {evil}", crate::harness::ED25519_PUBLIC);
    let added = client.submit("/2fa/keys", "/2fa/keys", &[("key", &key)]);
    assert!(added.body.contains("Key #1 added"), "{}", added.body);

    for page in ["/2fa/tokens", "/2fa/keys", "/2fa/admin/audit"] {
        let shown = client.get(page);
        assert!(!shown.body.contains("<script>"), "{page}: {}", shown.body);
    }
    for page in ["/2fa/tokens", "/2fa/keys"] {
        let shown = client.get(page);
        assert!(shown.body.contains(escaped), "{page}: {}", shown.body);
    }
}

/// What a newcomer met in the web page: each answered where it happens.
#[test]
fn the_rough_edges_a_newcomer_hit() {
    let (host, server, secret) = start("");
    host.bare_repo("team/app.git");

    // The set-up wizard: back to the first step and on again keeps the
    // secret the app scanned.
    host.add_user("carol");
    let mut carol = Client::new(&server);
    carol.logs_in("carol", PASSWORD);
    let started = carol.submit("/2fa/setup", "/2fa/setup/start", &[]);
    assert_eq!(started.location(), "/2fa/setup/scan");
    let first = carol.get("/2fa/setup/scan").body;
    let again = carol.submit("/2fa/setup", "/2fa/setup/start", &[]);
    assert_eq!(again.location(), "/2fa/setup/scan");
    let key = |page: &str| {
        page.split("id=\"key\">")
            .nth(1)
            .map(|k| k[..20].to_string())
    };
    assert!(key(&first).is_some(), "{first}");
    assert_eq!(key(&first), key(&carol.get("/2fa/setup/scan").body));

    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    client.verifies(&code(&secret, 0));

    // A refused token form keeps what was typed; a second live token of
    // one name is refused; a pattern that names no repository is said.
    let token = |client: &mut Client, name: &str, repos: &str| {
        client.submit(
            "/2fa/tokens",
            "/2fa/tokens",
            &[
                ("name", name),
                ("repos", repos),
                ("permission", "write"),
                ("days", "abc"),
            ],
        )
    };
    let bad = token(&mut client, "laptop", "team/app");
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("The expiry must be a number of days."),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains("name=\"name\" placeholder=\"laptop\" value=\"laptop\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"team/app\""), "{}", bad.body);
    assert!(
        bad.body.contains("<option value=\"write\" selected>"),
        "{}",
        bad.body
    );
    let made = client.submit(
        "/2fa/tokens",
        "/2fa/tokens",
        &[
            ("name", "laptop"),
            ("repos", "team/ap team/app"),
            ("permission", "read"),
            ("days", "7"),
        ],
    );
    assert!(made.body.contains("Token #1 created."), "{}", made.body);
    assert!(
        made.body
            .contains("No repository on this host matches team/ap yet"),
        "{}",
        made.body
    );
    let twice = client.submit(
        "/2fa/tokens",
        "/2fa/tokens",
        &[
            ("name", "laptop"),
            ("repos", "team/app"),
            ("permission", "read"),
            ("days", "7"),
        ],
    );
    assert_eq!(twice.status, 400);
    assert!(
        twice
            .body
            .contains("You have a token named &quot;laptop&quot; already"),
        "{}",
        twice.body
    );

    // A refused SSH key stays in the form to be corrected.
    let key_text = format!("{} laptop", &crate::harness::ED25519_PUBLIC[..40]);
    let refused = client.submit("/2fa/keys", "/2fa/keys", &[("key", key_text.as_str())]);
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains(&format!(">{key_text}</textarea>")),
        "{}",
        refused.body
    );

    // Recent activity: older rows are a click away.
    let mut store = git2fa::store::Store::open(&host.store_path()).unwrap();
    for i in 0..30 {
        store
            .append_audit(&git2fa::store::AuditRecord {
                at: git2fa::system::time::now() - 3600 * (i + 1),
                user: Some("alice".into()),
                transport: "ssh".into(),
                repo: Some(format!("team/old-{i}")),
                action: "read".into(),
                outcome: "allow".into(),
                reason: "not-required".into(),
                ..Default::default()
            })
            .unwrap();
    }
    drop(store);
    let manage = client.get("/2fa");
    assert!(
        !manage.body.contains("team/old-0<"),
        "only the newest rows at first: {}",
        manage.body
    );
    assert!(
        manage.body.contains("href=\"/2fa?activity=80#older\""),
        "{}",
        manage.body
    );
    let older = client.get("/2fa?activity=80");
    assert!(older.body.contains("team/old-0<"), "{}", older.body);
    assert!(
        !older.body.contains("Show older activity"),
        "all rows are shown"
    );

    // Logging out says that git's 2FA session stays open.
    assert!(
        manage
            .body
            .contains("logging out of this page does not end it")
    );
    let csrf = manage.csrf();
    let out = client.send("POST", "/logout", &[("csrf", csrf.as_str())]);
    assert!(
        out.location().starts_with("/login?out="),
        "{}",
        out.location()
    );
    let login = client.get(out.location());
    assert!(
        login
            .body
            .contains("You are logged out. Your 2FA session for git stays open until"),
        "{}",
        login.body
    );

    // A page that does not exist has a way back.
    let missing = client.get("/2fa/nothing-here");
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .body
            .contains("<a href=\"/2fa\">Go to the start page</a>"),
        "{}",
        missing.body
    );
}

/// A new phone: the app moves to a new secret, proved with a code from
/// the new phone; until then the old phone's codes work, after it only
/// the new one's. Recovery codes stay.
#[test]
fn the_authenticator_app_moves_to_a_new_phone() {
    let (host, server, old) = start("");
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    client.verifies(&code(&old, 0));
    let manage = client.get("/2fa");
    assert!(
        manage.body.contains("Move to a new phone"),
        "{}",
        manage.body
    );
    let moved = client.submit("/2fa", "/2fa/app/move", &[]);
    assert_eq!(moved.location(), "/2fa/setup/scan", "{}", moved.body);
    let scan = client.get("/2fa/setup/scan");
    assert!(
        scan.body.contains("authenticator app on your new phone"),
        "{}",
        scan.body
    );
    let uri = scan
        .body
        .split("class=\"qr\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let new = git2fa::factor::totp::secret_from_uri(&uri).unwrap();
    assert_ne!(new, old);
    // Attack: a web session left open (its last code an hour old) shows
    // the new secret or confirms it. Each step needs a recent code.
    age_code(&host, &client, 3600);
    let stale = client.get("/2fa/setup/scan");
    assert_eq!(
        stale.location(),
        "/2fa/verify?next=/2fa/setup/scan",
        "{}",
        stale.body
    );
    assert!(!stale.body.contains("otpauth://"));
    age_code(&host, &client, 10);
    // A code from the old phone is not the new one's.
    let wrong = client.submit(
        "/2fa/setup/confirm",
        "/2fa/setup/confirm",
        &[("code", &code(&old, 1))],
    );
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    let confirmed = client.submit(
        "/2fa/setup/confirm",
        "/2fa/setup/confirm",
        &[("code", &code(&new, 0))],
    );
    assert!(
        confirmed
            .body
            .contains("Your authenticator app moved to the new phone"),
        "{}",
        confirmed.body
    );
    // Only the new phone's codes now; the recovery codes are the same ten.
    let refused = host.git2fa(&["verify", "alice", &code(&old, 1)]).fails(1);
    assert!(refused.stderr.contains("wrong code"), "{refused:?}");
    let verified = host.git2fa(&["verify", "alice", &code(&new, 1)]).ok();
    assert!(
        verified.stdout.starts_with("verified alice"),
        "{verified:?}"
    );
    let store = git2fa::store::Store::open(&host.store_path()).unwrap();
    assert_eq!(store.recovery_codes_left(1).unwrap(), 10);
    let audit = host.git2fa(&["audit", "--user", "alice"]).ok().stdout;
    assert!(audit.contains("app-move"), "{audit}");

    // Locked by wrong codes while a second move was under way: the move
    // stands, the page says so and that no session opened.
    let moved = client.submit("/2fa", "/2fa/app/move", &[]);
    assert_eq!(moved.location(), "/2fa/setup/scan", "{}", moved.body);
    let scan = client.get("/2fa/setup/scan");
    let uri = scan
        .body
        .split("class=\"qr\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let third = git2fa::factor::totp::secret_from_uri(&uri).unwrap();
    for _ in 0..20 {
        let wrong = host.git2fa(&["verify", "alice", "000000"]);
        if wrong.stderr.contains("is locked") {
            break;
        }
    }
    let confirmed = client.submit(
        "/2fa/setup/confirm",
        "/2fa/setup/confirm",
        &[("code", &code(&third, 0))],
    );
    assert_eq!(confirmed.status, 409, "{}", confirmed.body);
    assert!(
        confirmed
            .body
            .contains("Your authenticator app moved to the new phone: the old phone&#39;s codes no longer work. No 2FA session was opened")
            || confirmed
                .body
                .contains("Your authenticator app moved to the new phone: the old phone's codes no longer work. No 2FA session was opened"),
        "{}",
        confirmed.body
    );
    host.git2fa(&["user", "unlock", "alice"]).ok();
    host.git2fa(&["verify", "alice", &code(&third, 1)]).ok();
}
