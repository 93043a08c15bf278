//! Git clients other than git's own command line, against git2fa: JGit
//! (Debian's `jgit-cli` 4.11, with JSch 0.1.55 inside, as Eclipse EGit and
//! Jenkins long bundled it), libgit2 1.5 (through `python3-pygit2`, as
//! GitKraken and many IDEs use it) and dulwich 0.21 (`python3-dulwich`),
//! through every front end: serve's SSH server and its `/git/`, sshd with
//! `git2fa-shell`, nginx with `git2fa-http`. These clients print only git's
//! `ERR` line of a refusal (nothing of what the server writes on standard
//! error, nothing of a 403's text): that line must say where to verify.
//!
//! JSch 0.1.5x knows no Ed25519: against a server with an Ed25519 host key
//! alone it fails with "Algorithm negotiation fail", before git2fa can say
//! anything. serve also offers an ECDSA P-256 host key for such clients.

use std::path::Path;
use std::process::Command;

use crate::harness::fixture::Fixture;
use crate::harness::web_server::{Server, free_port};
use crate::harness::{Host, Run, code, e2e_available, run, which};

fn jgit_available() -> bool {
    e2e_available(which("jgit").is_some(), "jgit", "jgit-cli")
}

/// Jars Debian's `jgit` launcher leaves off its class path (jgit-cli
/// 4.11.9-2 fails at start with `NoClassDefFoundError:
/// org/eclipse/jgit/lfs/BuiltinLFS`); the launcher adds `JGIT_CLASSPATH`.
const JGIT_CLASSPATH: &str = "/usr/share/java/org.eclipse.jgit.lfs.jar:\
     /usr/share/java/org.eclipse.jgit.http.apache.jar:\
     /usr/share/java/httpclient.jar:/usr/share/java/httpcore.jar";

/// `jgit ARGS` in `cwd`, with `home` as the Java user's home (JSch reads
/// `~/.ssh` from `user.home`, which Java takes from the password file,
/// not from `HOME`).
fn jgit(home: &Path, cwd: &Path, args: &[&str]) -> Run {
    run(
        "jgit",
        args,
        cwd,
        &[
            ("JGIT_CLASSPATH", JGIT_CLASSPATH.to_string()),
            ("HOME", home.display().to_string()),
            (
                "JAVA_TOOL_OPTIONS",
                format!("-Duser.home={}", home.display()),
            ),
        ],
        "",
    )
}

/// The driver of pygit2 and dulwich (`other_clients_py.py`).
const PY_DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/other_clients_py.py");

fn python_libraries_available() -> bool {
    let has = |module: &str| {
        Command::new("/usr/bin/python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    e2e_available(
        has("pygit2"),
        "pygit2 for /usr/bin/python3",
        "python3-pygit2",
    ) && e2e_available(
        has("dulwich"),
        "dulwich for /usr/bin/python3",
        "python3-dulwich",
    )
}

/// One of the three clients.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    Pygit2,
    Dulwich,
    Jgit,
}

/// Where a client connects, and how it proves who it is.
struct FrontEnd {
    name: &'static str,
    ssh: bool,
    /// The URL, without credentials.
    url: String,
    /// `ssh ...` for dulwich (OpenSSH with this port and key).
    ssh_command: String,
}

/// Everything set up: alice with her password, her app and an ECDSA key in
/// PEM (which all three clients read); `team/app` requiring 2FA for
/// everything, with the hooks; serve, sshd and nginx on loopback.
struct Clients {
    f: Fixture,
    _server: Server,
    _sshd: crate::harness::sshd::Sshd,
    _nginx: crate::harness::nginx::Nginx,
    web: u16,
    home: std::path::PathBuf,
    key: std::path::PathBuf,
    front_ends: Vec<FrontEnd>,
}

fn clients(policy: &str) -> Option<Clients> {
    if !jgit_available()
        || !python_libraries_available()
        || !crate::harness::sshd::available()
        || !crate::harness::nginx::available()
    {
        return None;
    }
    let (web, ssh) = (free_port(), free_port());
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        policy,
        &format!(
            "[tokens]\npassword_for_git = true\n\
             [web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh}\"\n"
        ),
    );
    let f = host.user("alice").enrolled().repo("team/app").hooks();
    f.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let home = f.dir.path().join("client-home");
    let dot_ssh = home.join(".ssh");
    std::fs::create_dir_all(&dot_ssh).unwrap();
    let key = dot_ssh.join("id_ecdsa");
    let made = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "", "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    f.git2fa(&[
        "key",
        "add",
        "alice",
        &key.with_extension("pub").display().to_string(),
    ])
    .ok();
    let server = Server::start_with(&f, web, &[ssh]);
    let sshd = crate::harness::sshd::Sshd::start(&f);
    let nginx = crate::harness::nginx::Nginx::start(&f);
    // The hosts' public keys, as an admin publishes them.
    let public = |path: &Path| -> String {
        let out = Command::new("ssh-keygen")
            .args(["-y", "-f"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{path:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let mut known = String::new();
    for name in ["ssh_host_ed25519_key", "ssh_host_ecdsa_key"] {
        known += &format!("[127.0.0.1]:{ssh} {}", public(&f.data.join(name)));
    }
    known += &format!(
        "[127.0.0.1]:{} {}",
        sshd.port,
        public(&f.dir.path().join("sshd/host_ecdsa"))
    );
    std::fs::write(dot_ssh.join("known_hosts"), known).unwrap();
    std::fs::write(
        dot_ssh.join("config"),
        "Host 127.0.0.1\n    IdentityFile ~/.ssh/id_ecdsa\n",
    )
    .unwrap();
    let openssh = |port: u16| {
        format!(
            "ssh -i {} -p {port} -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o UserKnownHostsFile={} -o BatchMode=yes -o LogLevel=ERROR",
            key.display(),
            dot_ssh.join("known_hosts").display()
        )
    };
    let front_ends = vec![
        FrontEnd {
            name: "serve's SSH server",
            ssh: true,
            url: format!("ssh://git@127.0.0.1:{ssh}/team/app.git"),
            ssh_command: openssh(ssh),
        },
        FrontEnd {
            name: "sshd with git2fa-shell",
            ssh: true,
            url: sshd.url("team/app.git"),
            ssh_command: openssh(sshd.port),
        },
        FrontEnd {
            name: "serve's /git/",
            ssh: false,
            url: format!("http://127.0.0.1:{web}/git/team/app.git"),
            ssh_command: String::new(),
        },
        FrontEnd {
            name: "nginx with git2fa-http",
            ssh: false,
            url: format!("http://127.0.0.1:{}/git/team/app.git", nginx.port),
            ssh_command: String::new(),
        },
    ];
    Some(Clients {
        f,
        _server: server,
        _sshd: sshd,
        _nginx: nginx,
        web,
        home,
        key,
        front_ends,
    })
}

/// A URL with `user` and `secret` in it.
fn with_credentials(url: &str, user: &str, secret: &str) -> String {
    let secret = git2fa::system::url::url_component(secret);
    match secret.is_empty() {
        true => url.replacen("http://", &format!("http://{user}@"), 1),
        false => url.replacen("http://", &format!("http://{user}:{secret}@"), 1),
    }
}

impl Clients {
    /// `client` doing `action` (ls URL, clone URL DEST, fetch DEST, push
    /// DEST) with an HTTP credential of `user` and `secret`.
    fn run(
        &self,
        client: Client,
        front: &FrontEnd,
        (user, secret): (&str, &str),
        action: &[&str],
    ) -> Run {
        let cwd = self.f.dir.path();
        if client == Client::Jgit {
            let mut args: Vec<String> = action.iter().map(|a| a.to_string()).collect();
            let dir = match action[0] {
                "ls" => {
                    args = vec!["ls-remote".into(), action[1].into()];
                    cwd.to_path_buf()
                }
                "clone" => cwd.to_path_buf(),
                _ => {
                    args = vec![action[0].into(), "origin".into()];
                    if action[0] == "push" {
                        args.push("refs/heads/main".into());
                    }
                    Path::new(action[1]).to_path_buf()
                }
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            return jgit(&self.home, &dir, &args);
        }
        let lib = match client {
            Client::Pygit2 => "pygit2",
            _ => "dulwich",
        };
        let mut args = vec![PY_DRIVER, lib];
        args.extend_from_slice(action);
        run(
            "/usr/bin/python3",
            &args,
            cwd,
            &[
                ("HOME", self.home.display().to_string()),
                ("CLIENT_KEY", self.key.display().to_string()),
                ("CLIENT_USER", user.to_string()),
                ("CLIENT_PASS", secret.to_string()),
                ("GIT_SSH_COMMAND", front.ssh_command.clone()),
            ],
            "",
        )
    }

    /// The URL `client` is given: over HTTP, dulwich and JGit take the
    /// credential from the URL (JGit sends `user:null` for a password
    /// there, so it can only use a token as the user name), pygit2 from
    /// its callback.
    fn url(&self, client: Client, front: &FrontEnd, (user, secret): (&str, &str)) -> String {
        match (front.ssh, client) {
            (true, _) | (false, Client::Pygit2) => front.url.clone(),
            (false, Client::Dulwich) => with_credentials(&front.url, user, secret),
            (false, Client::Jgit) => with_credentials(&front.url, secret, ""),
        }
    }

    fn token(&self, repo: &str, perm: &str) -> String {
        self.f
            .git2fa(&["token", "create", "alice", "--repo", repo, "--perm", perm])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    fn head(&self) -> String {
        run(
            "git",
            &["--git-dir", "repos/team/app.git", "rev-parse", "main"],
            self.f.dir.path(),
            &[],
            "",
        )
        .ok()
        .stdout
        .trim()
        .to_string()
    }
}

#[test]
fn pygit2_dulwich_and_jgit_show_where_to_verify_and_work_once_verified() {
    let Some(c) = clients("") else {
        return;
    };
    let verify_at = format!("Verify at http://127.0.0.1:{}/2fa/verify?repo=team", c.web);
    let tokens_at = format!("http://127.0.0.1:{}/2fa/tokens", c.web);
    let other_repo_token = c.token("other/*", "read");
    let scratch = c.f.dir.path().join("scratch");
    let mut n = 0;

    // Not verified: every client, through every front end, is refused and
    // shows the address that fixes it.
    for client in [Client::Pygit2, Client::Dulwich, Client::Jgit] {
        for front in &c.front_ends {
            let credential = match (front.ssh, client) {
                // A token for other repositories: JGit cannot send a
                // password.
                (false, Client::Jgit) => ("alice", other_repo_token.as_str()),
                _ => ("alice", crate::harness::fixture::PASSWORD),
            };
            n += 1;
            let url = c.url(client, front, credential);
            let scratch = scratch.join(n.to_string());
            let refused = c.run(
                client,
                front,
                credential,
                &["ls", &url, &scratch.display().to_string()],
            );
            let wanted = match (front.ssh, client) {
                (false, Client::Jgit) => &tokens_at,
                _ => &verify_at,
            };
            assert_ne!(
                refused.code, 0,
                "{client:?} via {}: {refused:?}",
                front.name
            );
            // (So JGit's JSch reached git2fa: no "Algorithm negotiation
            // fail" against serve's host keys.)
            assert!(
                refused.stderr.contains(wanted.as_str()),
                "{client:?} via {} does not show {wanted}: {refused:?}",
                front.name
            );
            // And never a token, but in the URL the user gave (which JGit
            // prints back).
            let said = refused.stderr.replace(&url, "URL") + &refused.stdout;
            assert!(!said.contains(&other_repo_token), "{refused:?}");
        }
    }

    // Verified (a code from her app): clone, push and fetch, with a token
    // over HTTP (as the password of x-access-token for dulwich, in the
    // user-name field for JGit).
    c.f.git2fa(&["verify", "alice", &code(c.f.secret_of("alice"), 0)])
        .ok();
    let token = c.token("team/app", "write");
    for client in [Client::Pygit2, Client::Dulwich, Client::Jgit] {
        for front in &c.front_ends {
            let credential = match client {
                Client::Dulwich => ("x-access-token", token.as_str()),
                _ => ("alice", token.as_str()),
            };
            n += 1;
            let dest = c.f.dir.path().join(format!("clone{n}"));
            let dest_s = dest.display().to_string();
            let url = c.url(client, front, credential);
            let what = format!("{client:?} via {}", front.name);
            let cloned = c.run(client, front, credential, &["clone", &url, &dest_s]);
            assert_eq!(cloned.code, 0, "{what}: {cloned:?}");
            assert!(
                dest.join("README").exists() || dest.join(".git").is_dir(),
                "{what}"
            );
            std::fs::write(dest.join(format!("from-{n}")), &what).unwrap();
            let env = [("HOME", c.home.display().to_string())];
            // dulwich keeps the remote's URL without its password.
            if client == Client::Dulwich && !front.ssh {
                run(
                    "git",
                    &["remote", "set-url", "origin", &url],
                    &dest,
                    &env,
                    "",
                )
                .ok();
            }
            run("git", &["add", "."], &dest, &env, "").ok();
            run("git", &["commit", "-qm", &what], &dest, &env, "").ok();
            let mine = run("git", &["rev-parse", "HEAD"], &dest, &env, "")
                .ok()
                .stdout
                .trim()
                .to_string();
            let pushed = c.run(client, front, credential, &["push", &dest_s]);
            assert_eq!(pushed.code, 0, "{what}: {pushed:?}");
            assert_eq!(c.head(), mine, "{what}: the push did not land");
            let fetched = c.run(client, front, credential, &["fetch", &dest_s]);
            assert_eq!(fetched.code, 0, "{what}: {fetched:?}");
            for output in [&cloned, &pushed, &fetched] {
                let said = output.stderr.replace(&url, "URL");
                assert!(!said.contains(&token), "{what}: {output:?}");
            }
        }
    }
    // The audit log has the pushes, by alice, with no token in it.
    let audit =
        c.f.git2fa(&["audit", "--json", "--limit", "500"])
            .ok()
            .stdout;
    assert!(
        !audit.contains(&token) && !audit.contains(&other_repo_token),
        "{audit}"
    );
    assert!(
        audit.lines().any(|l| l.contains("\"transport\":\"http\"")
            && l.contains("\"user\":\"alice\"")
            && l.contains("\"action\":\"write\"")
            && l.contains("\"outcome\":\"allow\"")),
        "{audit}"
    );
}

// With `wait_for_verify`, git's command line is told where to verify and
// waits; libgit2 (and JGit) show nothing the server writes while it waits,
// so serve's SSH server, which knows the client by its version string,
// refuses them at once with the address in the ERR line instead of holding
// them silent.
#[test]
fn a_client_that_shows_no_stderr_is_not_held_silent_by_a_wait() {
    let Some(c) = clients("wait_for_verify = \"60s\"") else {
        return;
    };
    let front = &c.front_ends[0];
    let started = std::time::Instant::now();
    let scratch = c.f.dir.path().join("scratch-wait");
    let refused = c.run(
        Client::Pygit2,
        front,
        ("alice", ""),
        &["ls", &front.url, &scratch.display().to_string()],
    );
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "libgit2 was held for the wait"
    );
    assert!(
        refused.stderr.contains(&format!(
            "Verify at http://127.0.0.1:{}/2fa/verify?repo=team",
            c.web
        )),
        "{refused:?}"
    );
}

// git2fa serves git, not Git LFS. git-lfs asked serve's /git/ or
// git2fa-http and printed "Repository or object not found" with the
// remote's URL (and a token in it); over SSH, "disallowed command". Now
// it prints why, over both.
#[test]
fn git_lfs_is_told_that_lfs_is_not_served() {
    if !e2e_available(which("git-lfs").is_some(), "git-lfs", "git-lfs") {
        return;
    }
    let Some(c) = clients("") else {
        return;
    };
    c.f.git2fa(&["verify", "alice", &code(c.f.secret_of("alice"), 0)])
        .ok();
    let token = c.token("team/app", "write");
    let work = c.f.work().to_path_buf();
    let env = |front: &FrontEnd| {
        vec![
            ("HOME", c.home.display().to_string()),
            ("GIT_SSH_COMMAND", front.ssh_command.clone()),
        ]
    };
    let first = &c.front_ends[0];
    run(
        "git",
        &["lfs", "install", "--local"],
        &work,
        &env(first),
        "",
    )
    .ok();
    run("git", &["lfs", "track", "*.bin"], &work, &env(first), "").ok();
    std::fs::write(work.join("big.bin"), [7u8; 4096]).unwrap();
    run("git", &["add", "."], &work, &env(first), "").ok();
    run(
        "git",
        &["commit", "-qm", "a large file"],
        &work,
        &env(first),
        "",
    )
    .ok();
    for front in &c.front_ends {
        let url = match front.ssh {
            true => front.url.clone(),
            false => with_credentials(&front.url, "alice", &token),
        };
        let mut pushed = run("git", &["push", &url, "main"], &work, &env(front), "");
        // Seen once, in the whole suite, without the line (its output was
        // not kept): a second push shows what it was, and must hold it.
        if !pushed.stderr.contains("does not serve Git LFS") {
            eprintln!("{}: first push: {pushed:?}", front.name);
            pushed = run("git", &["push", &url, "main"], &work, &env(front), "");
        }
        assert_ne!(pushed.code, 0, "{}: {pushed:?}", front.name);
        assert!(
            pushed
                .stderr
                .contains("git2fa: this host does not serve Git LFS (large files)"),
            "{}: {pushed:?}",
            front.name
        );
        assert!(
            !pushed.stderr.contains(&token),
            "{}: {pushed:?}",
            front.name
        );
    }
}
