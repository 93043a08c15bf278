//! Several front-end hosts sharing one PostgreSQL store: two `git2fa serve`
//! nodes, each with its own config and data directory, one database and
//! one `secret.key`, on one machine, driven with the real git, OpenSSH
//! client and web page. And `git2fa store migrate`, the way from one host.

use std::path::{Path, PathBuf};

use crate::harness::client::Client;
use crate::harness::fixture::{Fixture, PASSWORD};
use crate::harness::postgres::{self, Cluster};
use crate::harness::sshd::SshClient;
use crate::harness::web_server::{Server, free_port};
use crate::harness::{Host, Run, code, run};

/// One front end: its config and data, and its `git2fa serve`.
struct Node {
    host: Host,
    _server: Server,
    web: u16,
    ssh: SshClient,
}

struct TwoNodes {
    a: Fixture,
    _a_server: Server,
    a_web: u16,
    a_ssh: SshClient,
    b: Node,
    key: PathBuf,
    secret: Vec<u8>,
    _bouncer: Option<postgres::Bouncer>,
    cluster: Cluster,
}

fn ports_config(web: u16, ssh: u16) -> String {
    format!("[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh}\"\n")
}

/// Node A: alice with a key and 2FA, `team/app` requiring 2FA for
/// everything. Node B: a second config and data dir with A's
/// `secret.key`, the same database, and A's repositories (storage both
/// hosts see).
fn two_nodes(policy: &str) -> Option<TwoNodes> {
    two_nodes_named(policy, "127.0.0.1")
}

/// `two_nodes`, with `public_url`s on `host` (`localhost`, for security
/// keys).
fn two_nodes_named(policy: &str, host: &str) -> Option<TwoNodes> {
    two_nodes_through(policy, host, false)
}

/// `two_nodes_named`, the nodes reaching the database through PgBouncer
/// in transaction mode when `bounced`.
fn two_nodes_through(policy: &str, host: &str, bounced: bool) -> Option<TwoNodes> {
    if !postgres::available() || !crate::serve::ssh_client_available() {
        return None;
    }
    if bounced && !postgres::bouncer_available() {
        return None;
    }
    let cluster = Cluster::start();
    let url = cluster.database("shared");
    let bouncer = bounced.then(|| cluster.bouncer());
    let url = match &bouncer {
        Some(b) => url.replace(&format!(":{}/", cluster.port), &format!(":{}/", b.port)),
        None => url,
    };
    let store = Host::postgres_store(&cluster, &url);
    let (a_web, a_ssh) = (free_port(), free_port());
    let a = Host::build(
        &format!("http://{host}:{a_web}"),
        policy,
        &format!(
            "[tokens]\npassword_for_git = true\n{store}{}",
            ports_config(a_web, a_ssh)
        ),
    );
    let a = a.user("alice").key().enrolled().repo("team/app").hooks();
    a.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let (b_web, b_ssh) = (free_port(), free_port());
    let b = Host::build_with_key(
        &format!("http://{host}:{b_web}"),
        policy,
        &format!(
            "[tokens]\npassword_for_git = true\n{store}{}",
            ports_config(b_web, b_ssh)
        ),
        Some(&a.data.join("secret.key")),
    );
    // B serves A's repositories.
    let text = std::fs::read_to_string(&b.config).unwrap();
    let text = text.replace(
        &format!("repos_root = {:?}", b.root),
        &format!("repos_root = {:?}", a.root),
    );
    assert!(text.contains(&format!("{:?}", a.root)), "{text}");
    std::fs::write(&b.config, text).unwrap();
    let a_server = Server::start_with(&a, a_web, &[a_ssh]);
    let b_server = Server::start_with(&b, b_web, &[b_ssh]);
    let login = |port| SshClient {
        port,
        login: "git".into(),
    };
    Some(TwoNodes {
        key: a.key_of("alice").to_path_buf(),
        secret: a.secret_of("alice").to_vec(),
        a_ssh: login(a_ssh),
        a_web,
        _a_server: a_server,
        b: Node {
            host: b,
            _server: b_server,
            web: b_web,
            ssh: login(b_ssh),
        },
        a,
        _bouncer: bouncer,
        cluster,
    })
}

fn http_url(web: u16, secret: &str) -> String {
    // byte_serialize writes a space as `+`, which a URL's user part takes
    // literally.
    let secret = form_urlencoded::byte_serialize(secret.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("http://alice:{secret}@127.0.0.1:{web}/git/team/app.git")
}

fn git_http(cwd: &Path, args: &[&str]) -> Run {
    run("git", args, cwd, &[("HOME", cwd.display().to_string())], "")
}

#[track_caller]
fn says(run: &Run, text: &str) {
    assert!(run.stderr.contains(text), "{text:?} missing:\n{run:?}");
}

#[test]
fn a_session_verified_on_one_node_is_good_on_the_other_and_ends_everywhere() {
    let Some(n) = two_nodes("") else { return };
    let top = n.a.dir.path();
    let ssh_b = format!("ssh://git@127.0.0.1:{}/team/app.git", n.b.ssh.port);
    let ssh_a = format!("ssh://git@127.0.0.1:{}/team/app.git", n.a_ssh.port);
    // Not verified: node B refuses, and says where to verify (on B).
    let refused =
        n.b.ssh
            .git(&n.key, top, &["clone", "--quiet", &ssh_b, "c0"])
            .fails(128);
    says(&refused, "alice has no open 2FA session.");
    says(
        &refused,
        &format!(
            "Verify at http://127.0.0.1:{}/2fa/verify?repo=team/app",
            n.b.web
        ),
    );

    // Verify on node A's web page, then use git through node B.
    let mut web_a = Client::on_port(n.a_web);
    web_a.logs_in("alice", PASSWORD);
    web_a.verifies(&code(&n.secret, 0));
    n.b.ssh
        .git(&n.key, top, &["clone", "--quiet", &ssh_b, "c1"])
        .ok();
    assert!(top.join("c1/README").exists() || top.join("c1/.git").exists());
    git_http(
        top,
        &["clone", "--quiet", &http_url(n.b.web, PASSWORD), "c2"],
    )
    .ok();

    // A session ended on node B is refused on node A at the next request.
    let ended = n.b.host.git2fa(&["session", "end", "--user", "alice"]).ok();
    assert!(ended.stdout.contains("ended 1"), "{ended:?}");
    let after = n
        .a_ssh
        .git(&n.key, top, &["clone", "--quiet", &ssh_a, "c3"])
        .fails(128);
    says(&after, "alice has no open 2FA session.");
    // Both nodes wrote to the one audit log.
    let audit =
        n.a.git2fa(&["audit", "--user", "alice", "--limit", "50"])
            .ok()
            .stdout;
    assert!(audit.lines().any(|l| l.contains("allow")), "{audit}");
    assert!(audit.lines().any(|l| l.contains("refuse")), "{audit}");
}

#[test]
fn a_token_revoked_on_one_node_is_refused_on_the_other() {
    let Some(n) = two_nodes("") else { return };
    let top = n.a.dir.path();
    let token = n.a.token("alice", "team/*", "read", &[]);
    let id = n.a.git2fa(&["token", "list", "alice"]).ok().stdout;
    let id = id
        .split_whitespace()
        .find_map(|w| w.strip_prefix('#'))
        .expect("a token id")
        .to_string();
    // A token carries the second factor it was minted with: it clones
    // through node B without a session.
    git_http(top, &["clone", "--quiet", &http_url(n.b.web, &token), "t1"]).ok();
    n.a.git2fa(&["token", "revoke", &id]).ok();
    let refused = git_http(top, &["clone", "--quiet", &http_url(n.b.web, &token), "t2"]).fails(128);
    assert!(
        refused.stderr.contains("Authentication failed") || refused.stderr.contains("403"),
        "{refused:?}"
    );
    assert!(!top.join("t2").exists());
}

#[test]
fn one_code_sent_to_both_nodes_at_once_opens_one_session() {
    let Some(n) = two_nodes("") else { return };
    let mut web_a = Client::on_port(n.a_web);
    let mut web_b = Client::on_port(n.b.web);
    web_a.logs_in("alice", PASSWORD);
    web_b.logs_in("alice", PASSWORD);
    let code = code(&n.secret, 0);
    let barrier = std::sync::Barrier::new(2);
    let answers: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&mut web_a, &mut web_b]
            .into_iter()
            .map(|client| {
                let (barrier, code) = (&barrier, &code);
                scope.spawn(move || {
                    // Each page first, so both posts leave together.
                    let page = client.get("/2fa/verify");
                    assert_eq!(page.status, 200, "{}", page.body);
                    barrier.wait();
                    client
                        .submit("/2fa/verify", "/2fa/verify", &[("code", code)])
                        .body
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let verified = answers
        .iter()
        .filter(|body| body.contains("<h1>Verified</h1>"))
        .count();
    assert_eq!(verified, 1, "{answers:#?}");
    let sessions = n.b.host.git2fa(&["session", "list", "alice"]).ok().stdout;
    assert_eq!(
        sessions
            .lines()
            .filter(|l| l.starts_with("session #"))
            .count(),
        1,
        "{sessions}"
    );
}

#[test]
fn wrong_codes_on_both_nodes_together_lock_at_max_failures() {
    let Some(n) = two_nodes("max_failures = 4") else {
        return;
    };
    let hosts = [&*n.a, &n.b.host];
    let outcomes: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let host = hosts[i % 2];
                scope.spawn(move || host.git2fa(&["verify", "alice", "000000"]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Each wrong code counted once, across both nodes: the counts left
    // are 3, 2, 1, each said once; the fourth locks (its answer is the
    // lock), and the rest meet the lock.
    let mut left: Vec<&str> = outcomes
        .iter()
        .filter_map(|r| r.stderr.strip_prefix("git2fa: wrong code for alice; "))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "1 more wrong code locks the account\n",
            "2 more wrong codes lock the account\n",
            "3 more wrong codes lock the account\n"
        ],
        "{outcomes:#?}"
    );
    let locked = outcomes
        .iter()
        .filter(|r| r.code == 1 && r.stderr.contains("alice is locked"))
        .count();
    assert_eq!(locked, 5, "{outcomes:#?}");
    // Locked on both: a right code is refused on either node.
    for host in hosts {
        let run = host
            .git2fa(&["verify", "alice", &code(&n.secret, 0)])
            .fails(1);
        says(&run, "is locked");
    }
}

#[test]
fn store_migrate_copies_a_store_and_the_old_one_works_until_switched() {
    if !postgres::available() {
        return;
    }
    let cluster = Cluster::start();
    let host = Host::new().user("alice").key().enrolled().repo("team/app");
    let secret = host.secret_of("alice").to_vec();
    let pw = cluster.password_file.display().to_string();
    // Rows of every kind: a session, a token, a removed key (whose id must
    // not come back), audit rows.
    host.git2fa(&["verify", "alice", &code(&secret, 0)]).ok();
    host.token("alice", "team/*", "read", &[]);
    let key = host.dir.path().join("extra.pub");
    std::fs::write(&key, format!("{} extra\n", crate::harness::ED25519_PUBLIC)).unwrap();
    let added = host
        .git2fa(&["key", "add", "alice", &key.display().to_string()])
        .ok();
    let removed_id = added
        .stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix('#'))
        .and_then(|id| {
            id.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse::<i64>()
                .ok()
        })
        .expect("the new key's id");
    host.git2fa(&["key", "remove", &removed_id.to_string()])
        .ok();
    let listings = |host: &Host| -> Vec<String> {
        [
            &["user", "list"][..],
            &["user", "show", "alice"],
            &["key", "list"],
            &["token", "list"],
            &["session", "list"],
            &["audit", "--limit", "1000"],
        ]
        .iter()
        .map(|args| host.git2fa(args).ok().stdout)
        .collect()
    };
    let before = listings(&host);

    let url = cluster.database("moved");
    let moved = host
        .git2fa(&["store", "migrate", "--to", &url, "--password-file", &pw])
        .ok();
    assert!(moved.stdout.contains("copied 1 rows of users"), "{moved:?}");
    assert!(
        moved.stdout.contains(&format!("url = \"{url}\"")),
        "{moved:?}"
    );
    // A second copy into the same database is refused, and changes nothing.
    let again = host
        .git2fa(&["store", "migrate", "--to", &url, "--password-file", &pw])
        .fails(1);
    says(&again, "not empty");
    // Bad input: not a postgres url.
    host.git2fa(&["store", "migrate", "--to", "mysql://x/y"])
        .fails(1);

    // Until the admin switches, the host goes on with SQLite, whose audit
    // log marks where the copy was taken.
    let mut still = listings(&host);
    let audit = still.pop().unwrap();
    let (newest, older) = audit.split_once('\n').unwrap();
    assert!(newest.contains("store-migrate"), "{newest}");
    assert_eq!(older, before[5]);
    assert_eq!(still, before[..5]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&host.config)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, Host::postgres_store(&cluster, &url).as_bytes())
        })
        .unwrap();
    let mut after = listings(&host);
    // The new store's audit log starts with its own migration.
    let audit = after.pop().unwrap();
    let (newest, older) = audit.split_once('\n').unwrap();
    assert!(newest.contains("store-migrate"), "{newest}");
    assert_eq!(older, before[5], "the audit log differs");
    assert_eq!(after, before[..5], "the copy differs from the store");
    // The secret still opens (same secret.key): a code of the next step
    // verifies against PostgreSQL; the store's key fingerprint came along.
    host.git2fa(&["verify", "alice", &code(&secret, 1)]).ok();
    let check = host.git2fa(&["check"]);
    assert!(
        check
            .stdout
            .contains("secret.key is the key the store records"),
        "{check:?}"
    );
    // No id comes back: the next key's id is past the removed one.
    let next = host
        .git2fa(&["key", "add", "alice", &key.display().to_string()])
        .ok();
    let next_id: i64 = next
        .stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix('#'))
        .and_then(|id| {
            id.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .expect("the new key's id");
    assert!(
        next_id > removed_id,
        "key #{removed_id} was given again as #{next_id}"
    );
}

#[test]
fn check_on_a_front_end_of_a_shared_store_finds_nothing_wrong() {
    let Some(n) = two_nodes("") else { return };
    for host in [&*n.a, &n.b.host] {
        let run = host.git2fa(&["check"]);
        assert!(!run.stdout.contains("problem:"), "{run:?}");
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout
                .contains("secret.key is the key the store records"),
            "{run:?}"
        );
        for said in [
            "PostgreSQL keeps git2fa's timeouts in a transaction",
            "git2fa serve on this host uses the database [store] url names",
        ] {
            assert!(run.stdout.contains(said), "{said:?}: {run:?}");
        }
    }
    // The url moved to another database while serve runs: check looks at
    // the new one itself, and says serve still uses the old one.
    // (Attack on the admin's trust: check once answered through serve's
    // socket, and said all was well for a database it never contacted.)
    let moved = n.cluster.database("moved");
    let text = std::fs::read_to_string(&n.b.host.config).unwrap();
    let old_url = text
        .lines()
        .find_map(|l| l.strip_prefix("url = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    std::fs::write(&n.b.host.config, text.replace(&old_url, &moved)).unwrap();
    n.b.host.git2fa(&["init"]).ok();
    let run = n.b.host.git2fa(&["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("git2fa serve on this host uses another database than [store] url names"),
        "{run:?}"
    );
    std::fs::write(&n.b.host.config, text).unwrap();
    // A host with another secret.key is found out.
    std::fs::write(n.b.host.data.join("secret.key"), [7u8; 32]).unwrap();
    let run = n.b.host.git2fa(&["check"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("is not the key the store's secrets are sealed with"),
        "{run:?}"
    );
}

#[test]
fn a_security_key_registered_through_one_node_verifies_on_the_other() {
    if !crate::harness::webdriver::available() {
        return;
    }
    let Some(n) = two_nodes_named("", "localhost") else {
        return;
    };
    let b = crate::harness::webdriver::Browser::start();
    b.add_virtual_authenticator();
    let on = |web: u16, path: &str| format!("http://localhost:{web}{path}");
    // alice verifies with her app on node A and adds a key there.
    b.goto(&on(n.a_web, "/login"));
    b.fill("#user", "alice");
    b.fill("#password", PASSWORD);
    b.click("button[type=submit]");
    b.fill("#code", &code(&n.secret, 0));
    b.click("#code-form button[type=submit]");
    b.wait_for("Your 2FA session is open until");
    b.goto(&on(n.a_web, "/2fa/security-keys"));
    b.fill("#key-name", "Keyring");
    b.click("button[name=add-security-key]");
    b.wait_for("Security key \"Keyring\" added.");
    n.a.git2fa(&["session", "end", "--user", "alice"]).ok();

    // On node B, whose web page and store socket are its own, the key
    // (kept in the shared database) verifies; then git works through A.
    let top = n.a.dir.path();
    let ssh_a = format!("ssh://git@127.0.0.1:{}/team/app.git", n.a_ssh.port);
    n.a_ssh
        .git(&n.key, top, &["clone", "--quiet", &ssh_a, "k0"])
        .fails(128);
    b.goto(&on(n.b.web, "/2fa/verify"));
    b.click("button[name=use-security-key]");
    b.wait_for("Your 2FA session is open until");
    n.a_ssh
        .git(&n.key, top, &["clone", "--quiet", &ssh_a, "k1"])
        .ok();
    let shown = n.b.host.git2fa(&["user", "show", "alice"]).ok().stdout;
    assert!(
        shown.contains("security-key #1 \"Keyring\"") && !shown.contains("last-used never"),
        "{shown}"
    );
}

// PgBouncer in transaction mode, as Debian ships it
// (`ignore_startup_parameters` unset), refused every connection of
// git2fa's ("unsupported startup parameter: options"): its timeouts
// travelled in the startup packet. Told to ignore the parameter, PgBouncer
// dropped them, and a decision waited 19.6 s on a held lock instead of
// 5 s. The timeouts are now set in each transaction: two nodes work
// through it, and a held lock is refused at the timeout.
#[test]
fn two_nodes_work_through_pgbouncer_and_a_held_lock_is_refused_in_time() {
    let Some(n) = two_nodes_through("", "127.0.0.1", true) else {
        return;
    };
    let top = n.a.dir.path();
    let ssh_b = format!("ssh://git@127.0.0.1:{}/team/app.git", n.b.ssh.port);
    let refused =
        n.b.ssh
            .git(&n.key, top, &["clone", "--quiet", &ssh_b, "p0"])
            .fails(128);
    says(&refused, "alice has no open 2FA session.");
    // Verify with SSH on node A, then clone and push through node B.
    let verified = n.a_ssh.ssh_with(
        &n.key,
        &[],
        "2fa verify",
        &format!("{}\n", code(&n.secret, 0)),
    );
    assert_eq!(verified.code, 0, "{verified:?}");
    n.b.ssh
        .git(&n.key, top, &["clone", "--quiet", &ssh_b, "p1"])
        .ok();
    let work = top.join("p1");
    std::fs::write(work.join("NEW"), "through pgbouncer\n").unwrap();
    run("git", &["add", "NEW"], &work, &[], "").ok();
    run(
        "git",
        &["commit", "--quiet", "-m", "pushed"],
        &work,
        &[],
        "",
    )
    .ok();
    n.b.ssh
        .git(&n.key, &work, &["push", "--quiet", "origin", "HEAD:main"])
        .ok();
    // The write lock every host takes, held by another session: a write
    // through PgBouncer gives up at the timeout (5 s), not later.
    let mut holder = n.cluster.superuser("shared");
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({})",
            0x6769_7432_6661_i64
        ))
        .unwrap();
    let started = std::time::Instant::now();
    let blocked = n.b.host.git2fa(&["verify", "alice", &code(&n.secret, 1)]);
    let took = started.elapsed();
    assert_ne!(blocked.code, 0, "{blocked:?}");
    assert!(
        took >= std::time::Duration::from_secs(4) && took < std::time::Duration::from_secs(9),
        "refused after {took:?}: {blocked:?}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let check = n.b.host.git2fa(&["check"]);
    assert!(
        check
            .stdout
            .contains("PostgreSQL keeps git2fa's timeouts in a transaction (statement_timeout and lock_timeout 5s)"),
        "{check:?}"
    );
    let audit =
        n.a.git2fa(&["audit", "--user", "alice", "--limit", "20"])
            .ok()
            .stdout;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("write") && l.contains("allow")),
        "{audit}"
    );
}
