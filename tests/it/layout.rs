//! Every page of the web page fits its window, on a phone (390 px) and on
//! a desktop (1280 px): no page is wider than the viewport, nothing scrolls
//! sideways inside it, and every button, field and link can be seen.
//! Screenshots of each page at phone width go to the screenshots
//! directory (`GIT2FA_SCREENSHOTS`).

use crate::harness::fixture::PASSWORD;
use crate::harness::web_server::{self, Server};
use crate::harness::webdriver::{self, Browser};
use crate::harness::{Host, code, run, work_tree};

/// What overflows the window: a list of `tag#id.class: why` lines.
const OVERFLOW: &str = r#"
const width = document.documentElement.clientWidth;
const found = [];
const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (typeof e.className === 'string' && e.className ? '.' + e.className.split(' ').join('.') : '');
if (document.documentElement.scrollWidth > width) {
    found.push('the page is ' + document.documentElement.scrollWidth + ' px wide in ' + width);
}
for (const e of document.querySelectorAll('body *')) {
    const style = getComputedStyle(e);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    if (e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll', 'hidden'].includes(style.overflowX)) {
        found.push(name(e) + ' scrolls sideways (' + e.scrollWidth + ' in ' + e.clientWidth + ')');
    }
    if (e.matches('a, button, input, select, textarea, label')) {
        const r = e.getBoundingClientRect();
        if (r.width > 0 && (r.left < -1 || r.right > width + 1)) {
            found.push(name(e) + ' reaches ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + width);
        }
    }
}
return found;
"#;

/// Words that a table cell breaks in the middle ("alic/e", "enabl/ed"):
/// a piece of text between the places a line may break (spaces, after a
/// hyphen) whose boxes lie on more than one line.
const SPLIT_WORDS: &str = r#"
const found = [];
for (const cell of document.querySelectorAll('td, th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const piece = /[^\s-]+-?/g;
        let m;
        while ((m = piece.exec(node.data))) {
            const range = document.createRange();
            range.setStart(node, m.index);
            range.setEnd(node, m.index + m[0].length);
            const lines = new Set([...range.getClientRects()]
                .filter(r => r.width > 0)
                .map(r => Math.round(r.top)));
            if (lines.size > 1) {
                found.push('"' + m[0] + '" is broken over ' + lines.size + ' lines in a ' +
                    cell.tagName.toLowerCase() + ' ' + Math.round(cell.getBoundingClientRect().width) + ' px wide');
            }
        }
    }
}
return found;
"#;

fn overflow(browser: &Browser) -> Vec<String> {
    strings(browser, OVERFLOW)
}

fn split_words(browser: &Browser) -> Vec<String> {
    strings(browser, SPLIT_WORDS)
}

fn strings(browser: &Browser, script: &str) -> Vec<String> {
    browser
        .eval(script)
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// alice (an admin, enrolled) with long names everywhere a name can be
/// long: tokens, keys, repositories with protected refs; some activity.
fn busy_host(port: u16) -> (Host, Vec<u8>) {
    let host: Host = web_server::host(port, "");
    host.add_user("alice");
    host.add_user("bob");
    let (secret, _) = host.enroll("alice");
    let mut store = git2fa::store::Store::open(&host.store_path()).unwrap();
    let alice = store.user("alice").unwrap().unwrap();
    store.set_admin(alice.id, true).unwrap();
    drop(store);
    for name in [
        "team/app.git",
        "platform/infrastructure-deployment-scripts.git",
    ] {
        let repo = host.bare_repo(name);
        std::fs::write(
            repo.join("git2fa.toml"),
            "require = \"push\"\nprotected_refs = [\"refs/heads/main\", \"refs/tags/release-*\"]\nowners = [\"alice\"]\n",
        )
        .unwrap();
    }
    let work = work_tree(host.dir.path(), "work");
    run(
        "git",
        &[
            "push",
            "--quiet",
            &host.root.join("team/app.git").display().to_string(),
            "main",
        ],
        &work,
        &[],
        "",
    )
    .ok();
    host.git2fa(&[
        "token",
        "create",
        "alice",
        "--repo",
        "platform/infrastructure-deployment-scripts",
        "--repo",
        "team/*",
        "--perm",
        "write",
        "--name",
        "continuous-integration-runner",
    ])
    .ok();
    let key = &format!(
        "{} alice@a-rather-long-laptop-name.example.com\n",
        crate::harness::ED25519_PUBLIC
    );
    host.git2fa_with_stdin(&["key", "add", "alice", "-"], key)
        .ok();
    host.git2fa(&["verify", "alice", &code(&secret, -1)]).ok();
    host.git2fa(&["explain", "alice", "team/app", "write"]).ok();
    (host, secret)
}

#[test]
fn no_page_is_wider_than_a_phone_or_a_desktop() {
    if !webdriver::available() {
        return;
    }
    let port = web_server::free_port();
    let (host, secret) = busy_host(port);
    let server = Server::start(&host, port);
    let browser = Browser::start();
    browser.goto(&server.url("/login"));
    browser.fill("#user", "alice");
    browser.fill("#password", PASSWORD);
    browser.click("button[type=submit]");
    browser.wait_for_url("/2fa/verify?next=/2fa");
    browser.fill("#code", &code(&secret, 0));
    browser.click("button[type=submit]");
    browser.wait_for("padlock closed");
    // The page a `2fa verify` over SSH links to, for alice's key.
    let link = git2fa::factor::webauthn::new_link_token().unwrap();
    git2fa::store::Store::open(&host.store_path())
        .unwrap()
        .add_verify_link(
            &git2fa::factor::webauthn::link_hash(&link),
            &git2fa::store::VerifyLink {
                user_id: 1,
                key_id: Some(1),
                remote_addr: Some("192.0.2.10".into()),
                expires_at: git2fa::system::time::now() + 300,
            },
            5,
            git2fa::system::time::now(),
        )
        .unwrap();
    let link_page = format!("/2fa/verify?link={link}");
    let pages = [
        ("manage", "/2fa"),
        (
            "verify",
            "/2fa/verify?repo=platform/infrastructure-deployment-scripts",
        ),
        ("tokens", "/2fa/tokens"),
        ("ssh-keys", "/2fa/keys"),
        ("repositories", "/2fa/repos"),
        ("admin-users", "/2fa/admin/users"),
        ("admin-audit", "/2fa/admin/audit"),
        ("verify-link", link_page.as_str()),
    ];
    let mut problems = Vec::new();
    for (width, height) in [(390, 844), (1280, 900)] {
        browser.resize(width, height);
        for (name, path) in pages {
            browser.goto(&server.url(path));
            for problem in overflow(&browser) {
                problems.push(format!("{width} px, {path}: {problem}"));
            }
            if width == 390 {
                browser.screenshot(&format!("phone-{name}"));
            } else {
                browser.screenshot(&format!("desktop-{name}"));
                for problem in split_words(&browser) {
                    problems.push(format!("{width} px, {path}: {problem}"));
                }
            }
        }
    }
    // The pages of someone logged out, and of the set-up wizard.
    browser.click("form[action=\"/logout\"] button");
    browser.wait_for("You are logged out. Your 2FA session for git stays open until");
    for (width, height) in [(390, 844), (1280, 900)] {
        browser.resize(width, height);
        browser.goto(&server.url("/login"));
        for problem in overflow(&browser) {
            problems.push(format!("{width} px, /login: {problem}"));
        }
    }
    browser.goto(&server.url("/login"));
    browser.fill("#user", "bob");
    browser.fill("#password", PASSWORD);
    browser.click("button[type=submit]");
    browser.wait_for_url("/2fa/setup");
    browser.click("button[type=submit]");
    browser.wait_for_url("/2fa/setup/scan");
    for (width, height) in [(390, 844), (1280, 900)] {
        browser.resize(width, height);
        for path in ["/2fa/setup/scan", "/2fa/setup/codes", "/2fa/setup/confirm"] {
            browser.goto(&server.url(path));
            for problem in overflow(&browser) {
                problems.push(format!("{width} px, {path}: {problem}"));
            }
        }
    }
    browser.goto(&server.url("/2fa/setup/scan"));
    browser.screenshot("phone-setup-scan");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
