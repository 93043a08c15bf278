//! The web page in real headless Chromium, the way a user goes through it:
//! log in, the set-up wizard (the QR code decoded and checked against the
//! key shown as text), verify with a code and with a recovery code, a token
//! used for a real clone over HTTP and then revoked, an SSH key, a
//! repository flag, an admin resetting a user. Screenshots of each page go
//! to the screenshots directory (harness::webdriver, `GIT2FA_SCREENSHOTS`) for the user guide.

use crate::harness::fixture::PASSWORD;
use crate::harness::nginx::{self, Nginx};
use crate::harness::web_server::{self, Server};
use crate::harness::webdriver::{self, Browser};
use crate::harness::{Host, code, run};

/// Decodes the QR code drawn as SVG modules (`M{x},{y}h1v1h-1z`).
fn decode_qr(view_box: &str, path: &str) -> String {
    let size: usize = view_box
        .split(' ')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("a viewBox");
    let mut dark = vec![false; size * size];
    for module in path.split('M').filter(|m| !m.is_empty()) {
        let (x, rest) = module.split_once(',').unwrap();
        let y = rest.split('h').next().unwrap();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        dark[y * size + x] = true;
    }
    let scale = 4;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(size * scale, size * scale, |x, y| {
            if dark[(y / scale) * size + x / scale] {
                0
            } else {
                255
            }
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("a readable QR code").1
}

fn log_in(browser: &Browser, server: &Server, user: &str, password: &str) {
    browser.goto(&server.url("/login"));
    browser.fill("#user", user);
    browser.fill("#password", password);
    browser.click("button[type=submit]");
}

#[test]
fn a_user_goes_through_the_whole_web_page() {
    if !webdriver::available() || !nginx::available() {
        return;
    }
    let port = web_server::free_port();
    let host: Host = web_server::host(port, "max_failures = 5");
    host.add_user("alice");
    host.repo_with_a_commit("team/app");
    let repo = host.root.join("team/app.git");
    std::fs::write(
        repo.join("git2fa.toml"),
        "# team/app: the main product\nowners = [\"alice\"]\n",
    )
    .unwrap();
    // bob has no password yet: he gets a one-time link.
    let added = host.git2fa(&["user", "add", "bob"]).ok();
    let link = added
        .stdout
        .lines()
        .find(|l| l.contains("/set-password/"))
        .unwrap()
        .to_string();
    let server = Server::start(&host, port);
    let nginx = Nginx::start(&host);
    let browser = Browser::start();

    // bob sets his password from the link; the link works once.
    browser.goto(&link);
    browser.screenshot("set-password");
    browser.fill("#password", "bobs long password");
    browser.fill("#again", "bobs long password");
    browser.click("button[type=submit]");
    browser.wait_for("Your password is set.");
    browser.goto(&link);
    browser.wait_for("This link is used or expired.");

    // alice logs in and, not enrolled yet, lands in the wizard.
    log_in(&browser, &server, "alice", PASSWORD);
    browser.screenshot("login");
    browser.wait_for_url("/2fa/setup");
    browser.wait_for("Google Authenticator");
    browser.screenshot("setup-1-app");
    browser.click("button[type=submit]");
    browser.wait_for_url("/2fa/setup/scan");
    browser.screenshot("setup-2-scan");
    let uri = decode_qr(
        &browser.attribute("#qr svg", "viewBox"),
        &browser.attribute("#qr path", "d"),
    );
    assert_eq!(
        browser.attribute("#qr", "href"),
        uri,
        "the QR code is a link to what it shows"
    );
    let key: String = browser.text("#key").split_whitespace().collect();
    let secret = git2fa::factor::totp::secret_from_uri(&uri).unwrap();
    assert_eq!(
        git2fa::factor::totp::encode_secret(&secret),
        key,
        "the QR code carries the key shown as text"
    );
    assert!(uri.starts_with("otpauth://totp/Git:alice?secret="), "{uri}");
    browser.click("a[href=\"/2fa/setup/codes\"]");
    browser.screenshot("setup-3-recovery-codes");
    let codes: Vec<String> = browser
        .text("#recovery-codes")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(codes.len(), 10);
    // Nothing is enrolled before the code is confirmed.
    assert!(
        host.git2fa(&["user", "show", "alice"])
            .ok()
            .stdout
            .contains("not-enrolled")
    );
    browser.click("a[href=\"/2fa/setup/confirm\"]");
    browser.fill("#code", "000000");
    browser.click("button[type=submit]");
    browser.wait_for("That code is not the one the app shows now.");
    browser.fill("#code", &code(&secret, 0));
    browser.screenshot("setup-4-confirm");
    browser.click("button[type=submit]");
    browser.wait_for("Two-factor authentication is on.");
    browser.screenshot("setup-done");
    browser.wait_for("padlock closed");

    // Leave the 2FA session: still logged in, padlock open.
    browser.goto(&server.url("/2fa"));
    browser.screenshot("manage");
    browser.click("form[action=\"/2fa/leave\"] button");
    browser.wait_for("You left the 2FA session; you are still logged in.");
    browser.wait_for("padlock open");
    browser.screenshot("padlock-open");

    // Verify with a code from the app (the next step: this one was spent).
    browser.goto(&server.url("/2fa/verify?repo=team/app"));
    browser.wait_for("Git needs a 2FA session for <strong>team/app</strong>.");
    browser.fill("#code", &code(&secret, 1));
    browser.screenshot("verify");
    browser.click("button[type=submit]");
    browser.wait_for("Git operations on team/app work now");
    browser.screenshot("verified");
    browser.wait_for("padlock closed");

    // Verify with a recovery code; the same one fails the second time.
    browser.click(".padlock.closed");
    browser.wait_for("Leave the 2FA session");
    browser.click("form[action=\"/2fa/leave\"] button");
    browser.wait_for("You left the 2FA session");
    browser.goto(&server.url("/2fa/verify"));
    browser.fill("#code", &codes[0]);
    browser.click("button[type=submit]");
    browser.wait_for("You used a recovery code; it will not work again.");
    browser.goto(&server.url("/2fa"));
    browser.click("form[action=\"/2fa/leave\"] button");
    browser.wait_for("You left the 2FA session");
    browser.goto(&server.url("/2fa/verify"));
    browser.fill("#code", &codes[0]);
    browser.click("button[type=submit]");
    browser.wait_for("That code was already used.");
    browser.fill("#code", &codes[1]);
    browser.click("button[type=submit]");
    browser.wait_for("You used a recovery code");
    browser.wait_for("padlock closed");

    // A token, used for a real clone over HTTP, then revoked.
    browser.goto(&server.url("/2fa/tokens"));
    browser.fill("#name", "laptop");
    browser.fill("#repos", "team/app");
    browser.select("#permission", "read");
    browser.fill("#days", "30");
    browser.click("form[action=\"/2fa/tokens\"] button");
    let token = browser.text("#token");
    assert!(token.starts_with("g2fa_"), "{token}");
    browser.screenshot("token-created");
    let home = host.dir.path().display().to_string();
    let clone = |into: &str| {
        run(
            "git",
            &[
                "clone",
                "--quiet",
                &nginx.url("alice", &token, "team/app.git"),
                into,
            ],
            host.dir.path(),
            &[("HOME", home.clone())],
            "",
        )
    };
    clone("via-token").ok();
    browser.goto(&server.url("/2fa/tokens"));
    browser.screenshot("tokens");
    assert!(
        browser.text("#tokens").contains("laptop"),
        "the list shows the token"
    );
    browser.click("form[action=\"/2fa/tokens/revoke\"] button");
    browser.wait_for("Token #1 is revoked.");
    let refused = clone("after-revoke").fails(128);
    assert!(
        refused
            .stderr
            .contains("remote: git2fa: team/app: access token #1 was revoked."),
        "{}",
        refused.stderr
    );

    // An SSH key.
    browser.goto(&server.url("/2fa/keys"));
    browser.fill(
        "#key",
        &format!("{} alice@laptop", crate::harness::ED25519_PUBLIC),
    );
    browser.click("form[action=\"/2fa/keys\"] button");
    browser.wait_for("Key #1 added: SHA256:");
    assert!(browser.text("#keys").contains("alice@laptop"));
    browser.screenshot("ssh-keys");
    assert!(
        host.git2fa(&["key", "list", "alice"])
            .ok()
            .stdout
            .contains("alice@laptop")
    );

    // A repository flag, written to the file with its comment kept.
    browser.goto(&server.url("/2fa/repos"));
    browser.select("#repos select", "push");
    browser.click("#repos button");
    browser.wait_for("team/app: 2FA is now required to push.");
    browser.screenshot("repositories");
    let file = std::fs::read_to_string(repo.join("git2fa.toml")).unwrap();
    assert!(
        file.starts_with("# team/app: the main product\n") && file.contains("require = \"push\""),
        "{file}"
    );

    // An admin resets bob's 2FA.
    host.git2fa(&["user", "enroll", "bob"]).ok();
    let mut store = git2fa::store::Store::open(&host.store_path()).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    store.set_admin(alice.id, true).unwrap();
    drop(store);
    browser.goto(&server.url("/2fa/admin/users"));
    browser.screenshot("admin-users");
    browser.click("button[aria-label=\"Reset 2FA bob\"]");
    browser.wait_for("bob: 2FA reset, 0 2FA sessions ended, 0 tokens revoked.");
    assert!(
        host.git2fa(&["user", "show", "bob"])
            .ok()
            .stdout
            .contains("not-enrolled")
    );
    browser.goto(&server.url("/2fa/admin/audit?user=alice"));
    assert!(browser.text("#audit").contains("token-create"));
    browser.screenshot("admin-audit");
    browser.goto(&server.url("/2fa"));
    assert!(browser.text("#activity").contains("verify"));
    browser.screenshot("manage-activity");
    // On a phone the menu wraps and nothing needs sideways scrolling.
    browser.resize(390, 844);
    browser.goto(&server.url("/2fa/verify"));
    browser.screenshot("phone-verify");
}
