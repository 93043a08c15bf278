//! docs/admin-guide.md, followed as written: its ```sh blocks in order, as
//! root, against the package `install/build-deb` makes. A block with a
//! `<!-- test: … -->` comment above it needs what a test machine lacks
//! (systemd, DNS names, port 22); the test does what the comment says
//! instead, with the files the guide installed. The git user's blocks run
//! on "her machine" (a work directory, her key), with git.example.com
//! being the loopback address and port of the server the block talks to.
//! The guide's promises are checked as a user would: git is refused with
//! the guide's lines, then works over SSH and HTTPS, and purge leaves the
//! repositories.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{
    Process, Run, e2e_available, free_port, http, throwaway, unix_user, wait_port, wait_until,
    which,
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A step of the guide: its commands, and the test's comment if any.
#[derive(Debug)]
struct Step {
    lines: Vec<String>,
    instead: Option<String>,
}

fn steps() -> Vec<Step> {
    let guide = std::fs::read_to_string(Path::new(ROOT).join("docs/admin-guide.md")).unwrap();
    let mut steps = Vec::new();
    let mut instead = None;
    let mut block: Option<Vec<String>> = None;
    for line in guide.lines() {
        match (&mut block, line) {
            (None, l) if l.starts_with("<!-- test: ") => {
                instead = Some(
                    l.trim_start_matches("<!-- test: ")
                        .trim_end_matches(" -->")
                        .to_string(),
                );
            }
            (None, "```sh") => block = Some(Vec::new()),
            (Some(_), "```") => steps.push(Step {
                lines: block.take().unwrap(),
                instead: instead.take(),
            }),
            (Some(lines), l) => lines.push(l.to_string()),
            (None, l) if !l.trim().is_empty() && !l.starts_with("```") => {}
            _ => {}
        }
    }
    steps
}

/// The lines of the guide's first plain (not `sh`) fenced block that
/// contains `text`: what an admin pastes into a web server's
/// configuration.
pub(crate) fn pasted_block(text: &str) -> Vec<String> {
    let guide = std::fs::read_to_string(Path::new(ROOT).join("docs/admin-guide.md")).unwrap();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut open: Option<Vec<String>> = None;
    // Each fence opens a block (```, ```sh) or closes the open one (```).
    let mut plain = false;
    for line in guide.lines() {
        match (&mut open, line.trim_end()) {
            (None, fence) if fence.starts_with("```") => {
                plain = fence == "```";
                open = Some(Vec::new());
            }
            (Some(_), "```") => {
                let block = open.take().unwrap();
                if plain {
                    blocks.push(block);
                }
            }
            (Some(block), line) => block.push(line.to_string()),
            (None, _) => {}
        }
    }
    blocks
        .into_iter()
        .find(|block| block.iter().any(|line| line.contains(text)))
        .unwrap_or_else(|| panic!("the guide has no block with {text:?}"))
}

/// The guide's `server { }` block for nginx, as a site of Debian's nginx
/// (its certificate made here), and the guide's Apache line in a virtual
/// host; both servers' own syntax checks must pass, whether the package
/// is installed, removed or purged.
fn web_servers_accept_the_guide_s_blocks(when: &str) {
    let site = pasted_block("server {").join("\n");
    std::fs::write("/etc/nginx/sites-enabled/git", &site).unwrap();
    let made = bash(
        "[ -e /etc/ssl/private/git.example.com.key ] || openssl req -x509 -newkey rsa:2048 -nodes -days 1 \
         -subj /CN=git.example.com -keyout /etc/ssl/private/git.example.com.key \
         -out /etc/ssl/certs/git.example.com.pem 2>/dev/null",
        Path::new("/"),
        &[],
    );
    assert_eq!(made.code, 0, "{made:?}");
    let nginx = bash("nginx -t", Path::new("/"), &[]);
    assert_eq!(
        nginx.code, 0,
        "{when}: nginx -t with the guide's site: {nginx:?}"
    );
    let include = pasted_block("IncludeOptional").join("\n");
    std::fs::write(
        "/etc/apache2/sites-enabled/git.conf",
        format!("<VirtualHost 127.0.0.1:8443>\n{include}\n</VirtualHost>\n"),
    )
    .unwrap();
    let apache = bash("apache2ctl -t", Path::new("/"), &[]);
    assert_eq!(
        apache.code, 0,
        "{when}: apache2ctl -t with the guide's line: {apache:?}"
    );
}

/// The paths of serve's web page, read from its routes (`src/web.rs`):
/// `("GET", "/login")` and `p.starts_with("/set-password/")`.
fn page_paths() -> Vec<String> {
    let routes = std::fs::read_to_string(Path::new(ROOT).join("src/web.rs")).unwrap();
    let mut paths = Vec::new();
    for pattern in ["(\"GET\", \"", "(\"POST\", \"", "starts_with(\""] {
        for (at, _) in routes.match_indices(pattern) {
            let rest = &routes[at + pattern.len()..];
            let path = &rest[..rest.find('"').unwrap()];
            let path = if path.len() > 1 && path.ends_with('/') {
                format!("{path}x")
            } else {
                path.to_string()
            };
            if path.starts_with('/') && !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    assert!(paths.len() > 20, "{paths:?}");
    paths
}

/// Children the test started (sshd, fcgiwrap, nginx, serve), ended at
/// the end whatever happens.
#[derive(Default)]
struct Started(Vec<Process>);

fn bash(script: &str, cwd: &Path, env: &[(&str, String)]) -> Run {
    Run::from(
        Command::new("bash")
            .args(["-c", script])
            .current_dir(cwd)
            .env_remove("GIT2FA_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

fn spawn_logged(command: &mut Command, log: &Path) -> Process {
    Process::spawn(
        command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
            .stderr(std::fs::File::create(log).unwrap()),
    )
}

fn purge() {
    let _ = Command::new("dpkg").args(["--purge", "git2fa"]).output();
}

/// What the test keeps while it follows the guide.
struct Follow {
    dir: tempfile::TempDir,
    started: Started,
    aliases: String,
    secret: Option<Vec<u8>>,
    ssh_port: u16,
    http_port: u16,
    alice_key: PathBuf,
    alice_home: PathBuf,
    /// Where her shell is: a `cd` carries over, block to block.
    alice_cwd: PathBuf,
    saw_refusal: bool,
    pushed: bool,
    cloned_over_https: bool,
    served_the_page: bool,
}

impl Follow {
    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// A block of the admin's, line by line (aliases carried along).
    fn as_admin(&mut self, lines: &[String]) {
        let mut script = String::new();
        // The word that ends the here-document under way (`<<'EOF'`).
        let mut here: Option<String> = None;
        for line in lines {
            script.push_str(line);
            // A here-document is part of its command.
            match &here {
                Some(end) if line != end => {
                    script.push('\n');
                    continue;
                }
                Some(_) => here = None,
                None => {
                    if let Some((_, rest)) = line.split_once("<<'") {
                        here = rest.split_once('\'').map(|(word, _)| word.to_string());
                        script.push('\n');
                        continue;
                    }
                }
            }
            // A line continued with `\` is one command.
            if line.ends_with('\\') {
                script.push('\n');
                continue;
            }
            let command = std::mem::take(&mut script);
            if command.trim_start().starts_with("alias ") {
                self.aliases.push_str(&command);
                self.aliases.push('\n');
                continue;
            }
            let run = bash(
                &format!("shopt -s expand_aliases\n{}{command}", self.aliases),
                Path::new(ROOT),
                &[],
            );
            assert_eq!(run.code, 0, "the guide's `{command}`: {run:?}");
            if command.contains(" user enroll ") {
                let uri = run
                    .stdout
                    .lines()
                    .find(|l| l.starts_with("otpauth://"))
                    .expect("user enroll prints the otpauth:// URI");
                self.secret = git2fa::factor::totp::secret_from_uri(uri);
            }
            if command.contains(" check") {
                assert!(!run.stdout.contains("problem:"), "{run:?}");
            }
        }
    }

    /// A block of alice's, on her machine.
    fn as_alice(&mut self, lines: &[String]) -> Vec<Run> {
        let ssh = format!(
            "ssh -i {} -p {} -o IdentitiesOnly=yes -o IdentityAgent=none -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            self.alice_key.display(),
            self.ssh_port
        );
        let code = self
            .secret
            .as_ref()
            .map(|s| crate::harness::code(s, 0))
            .unwrap_or_default();
        let env = [
            ("HOME", self.alice_home.display().to_string()),
            ("GIT_SSH_COMMAND", ssh.clone()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("GIT_TERMINAL_PROMPT", "0".into()),
            ("GIT_AUTHOR_NAME", "alice".into()),
            ("GIT_AUTHOR_EMAIL", "alice@example.com".into()),
            ("GIT_COMMITTER_NAME", "alice".into()),
            ("GIT_COMMITTER_EMAIL", "alice@example.com".into()),
        ];
        let mut runs = Vec::new();
        let mut cwd = self.alice_cwd.clone();
        for line in lines {
            let line = line
                .replace(
                    "git@git.example.com:",
                    &format!("ssh://git@127.0.0.1:{}/", self.ssh_port),
                )
                .replace("ssh git@git.example.com", &format!("{ssh} git@127.0.0.1"))
                .replace("https://alice:", "http://alice:")
                .replace(
                    "@git.example.com/",
                    &format!("@127.0.0.1:{}/", self.http_port),
                )
                .replace("123456", &code);
            // `cd` carries over to the next line, as in her shell.
            let script = format!("{line}\nstatus=$?\npwd >&3\nexit $status");
            let out = Command::new("bash")
                .args([
                    "-c",
                    &format!("exec 3>{}; {script}", self.dir.path().join("pwd").display()),
                ])
                .current_dir(&cwd)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if let Ok(now) = std::fs::read_to_string(self.dir.path().join("pwd"))
                && !now.trim().is_empty()
            {
                cwd = PathBuf::from(now.trim());
            }
            self.alice_cwd = cwd.clone();
            runs.push(Run::from(out));
        }
        runs
    }

    fn start_sshd(&mut self) {
        std::fs::create_dir_all("/run/sshd").unwrap();
        self.ssh_port = free_port();
        let log = self.log("sshd");
        let child = spawn_logged(
            Command::new("/usr/sbin/sshd").args([
                "-D",
                "-e",
                "-f",
                "/etc/ssh/sshd_config",
                "-p",
                &self.ssh_port.to_string(),
                "-o",
                "ListenAddress=127.0.0.1",
                "-o",
                &format!("PidFile={}", self.dir.path().join("sshd.pid").display()),
            ]),
            &log,
        );
        self.started.0.push(child);
        wait_port(self.ssh_port, "sshd", &log);
    }

    /// What systemd does with the two units: binds the socket unit's
    /// `ListenStream` (with its `SocketUser`, `SocketGroup`, `SocketMode`)
    /// and starts the service's `ExecStart` as its `User`, handing the
    /// socket over as fd 3 (`LISTEN_FDS`, socket activation). python3
    /// stands in for systemd.
    fn start_fcgiwrap(&mut self) {
        let unit = std::fs::read_to_string("/lib/systemd/system/git2fa-fcgiwrap.service")
            .expect("the package installed the service unit");
        let socket_unit = std::fs::read_to_string("/lib/systemd/system/git2fa-fcgiwrap.socket")
            .expect("the package installed the socket unit");
        let value = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("no {key}= in the unit"))
                .to_string()
        };
        let socket = value(&socket_unit, "ListenStream");
        let _ = std::fs::remove_file(&socket);
        const SYSTEMD: &str = r#"
import os, pwd, grp, socket, sys
path, socket_user, socket_group, mode, user = sys.argv[1:6]
command = sys.argv[6:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chown(path, pwd.getpwnam(socket_user).pw_uid, grp.getgrnam(socket_group).gr_gid)
os.chmod(path, int(mode, 8))
s.listen(64)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
account = pwd.getpwnam(user)
os.setgroups([])
os.setgid(account.pw_gid)
os.setuid(account.pw_uid)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(command[0], command)
"#;
        let log = self.log("fcgiwrap");
        let child = spawn_logged(
            Command::new("python3")
                .args(["-c", SYSTEMD, &socket])
                .arg(value(&socket_unit, "SocketUser"))
                .arg(value(&socket_unit, "SocketGroup"))
                .arg(value(&socket_unit, "SocketMode"))
                .arg(value(&unit, "User"))
                .args(value(&unit, "ExecStart").split_whitespace()),
            &log,
        );
        self.started.0.push(child);
        wait_until("fcgiwrap", Duration::from_secs(10), &log, || {
            Path::new(&socket).exists()
        });
    }

    /// nginx with the package's example blocks in a plain-HTTP server on a
    /// loopback port.
    fn start_nginx(&mut self) {
        self.http_port = free_port();
        let dir = self.dir.path().join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        // The guide's `include` lines, on a loopback port; the blocks'
        // own `include fastcgi_params` finds it beside this config.
        let blocks: String = pasted_block("server {")
            .into_iter()
            .filter(|line| line.trim_start().starts_with("include "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(blocks.contains("/etc/git2fa/"), "{blocks}");
        std::fs::copy("/etc/nginx/fastcgi_params", dir.join("fastcgi_params")).unwrap();
        let temp = |name: &str| dir.join(name).display().to_string();
        let config = dir.join("nginx.conf");
        std::fs::write(
            &config,
            format!(
                "user root;\ndaemon off;\nworker_processes 1;\npid {pid};\nerror_log {error} info;\n\
                 events {{ worker_connections 64; }}\nhttp {{\n access_log {access};\n\
                 client_body_temp_path {body};\n fastcgi_temp_path {fastcgi};\n proxy_temp_path {proxy};\n\
                 uwsgi_temp_path {uwsgi};\n scgi_temp_path {scgi};\n\
                 server {{\n  listen 127.0.0.1:{port};\n{blocks}\n }}\n}}\n",
                pid = temp("nginx.pid"),
                error = temp("error.log"),
                access = temp("access.log"),
                body = temp("body"),
                fastcgi = temp("fastcgi"),
                proxy = temp("proxy"),
                uwsgi = temp("uwsgi"),
                scgi = temp("scgi"),
                port = self.http_port,
            ),
        )
        .unwrap();
        let log = self.log("nginx");
        let child = spawn_logged(
            Command::new("/usr/sbin/nginx")
                .arg("-c")
                .arg(&config)
                .arg("-p")
                .arg(&dir),
            &log,
        );
        self.started.0.push(child);
        wait_port(self.http_port, "nginx", &log);
    }

    /// The unit's `git2fa serve`, as its User.
    fn start_serve(&mut self) {
        let unit = std::fs::read_to_string("/lib/systemd/system/git2fa.service").unwrap();
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap()
            .to_string();
        let user = unit
            .lines()
            .find_map(|l| l.strip_prefix("User="))
            .unwrap()
            .to_string();
        let log = self.log("serve");
        let mut words = exec.split_whitespace();
        let program = words.next().unwrap().to_string();
        let child = spawn_logged(
            Command::new("runuser")
                .args(["-u", &user, "--", &program])
                .args(words),
            &log,
        );
        self.started.0.push(child);
        wait_port(8080, "git2fa serve", &log);
    }

    /// The status line, headers and body of `GET path`, as the site's
    /// name asks for it.
    fn get(&self, path: &str) -> String {
        let reply = http::send(self.http_port, "GET", path, &["Host: git.example.com"], b"");
        format!("{}\r\n\r\n{}", reply.head, reply.body)
    }
}

#[test]
fn the_admin_guide_works_as_written() {
    // It installs and purges the package, makes and deletes the git
    // account and /srv/git: in a throwaway root, never on the host.
    if !throwaway::enter() {
        return;
    }
    let found = |path: &str| Path::new(path).exists();
    if !e2e_available(
        unix_user() == "root",
        "root (the guide installs a package)",
        "(none: run the tests as root)",
    ) || !e2e_available(found("/usr/bin/dpkg"), "dpkg", "dpkg")
        || !e2e_available(found("/usr/sbin/sshd"), "/usr/sbin/sshd", "openssh-server")
        || !e2e_available(found("/usr/sbin/nginx"), "/usr/sbin/nginx", "nginx")
        || !e2e_available(
            found("/usr/sbin/fcgiwrap"),
            "/usr/sbin/fcgiwrap",
            "fcgiwrap",
        )
        || !e2e_available(which("ssh").is_some(), "ssh", "openssh-client")
        || !e2e_available(found("/usr/sbin/apache2"), "/usr/sbin/apache2", "apache2")
        || !e2e_available(which("sqlite3").is_some(), "sqlite3", "sqlite3")
        || !e2e_available(which("openssl").is_some(), "openssl", "openssl")
    {
        return;
    }
    purge();
    let dir = tempfile::tempdir().unwrap();
    let alice_home = dir.path().join("alice");
    std::fs::create_dir_all(&alice_home).unwrap();
    let alice_key = dir.path().join("alice_key");
    crate::harness::sshd::keygen(&alice_key);
    // What alice gave the admin, where the guide takes it from.
    std::fs::copy(alice_key.with_extension("pub"), "/tmp/alice.pub").unwrap();
    let mut follow = Follow {
        dir,
        started: Started::default(),
        aliases: String::new(),
        secret: None,
        ssh_port: 0,
        http_port: 0,
        alice_key,
        alice_cwd: alice_home.clone(),
        alice_home,
        saw_refusal: false,
        pushed: false,
        cloned_over_https: false,
        served_the_page: false,
    };
    let steps = steps();
    assert!(steps.len() >= 10, "{steps:?}");
    for step in &steps {
        let text = step.lines.join("\n");
        let Some(instead) = &step.instead else {
            follow.as_admin(&step.lines);
            continue;
        };
        if instead.starts_with("starts its own sshd") {
            assert!(text.contains("systemctl reload ssh"), "{text}");
            let check = bash("sshd -t", Path::new("/"), &[]);
            assert_eq!(check.code, 0, "sshd -t: {check:?}");
            follow.start_sshd();
        } else if instead.starts_with("as alice, with her key") {
            let runs = follow.as_alice(&step.lines);
            assert_eq!(runs[0].code, 0, "her clone: {:?}", runs[0]);
            let push = &runs[1];
            assert_ne!(push.code, 0, "the push before verifying: {push:?}");
            for line in [
                "git2fa: team/app requires two-factor authentication (2FA) to push.",
                "alice has no open 2FA session.",
                "Verify at https://git.example.com/2fa/verify?repo=team/app",
                "or run: ssh git@git.example.com 2fa verify",
                "then run the same git command again.",
                "fatal: remote error: git2fa: team/app requires two-factor authentication (2FA) to push.",
            ] {
                assert!(push.stderr.contains(line), "{line:?}: {push:?}");
            }
            follow.saw_refusal = true;
        } else if instead.starts_with("as alice, her code") {
            let runs = follow.as_alice(&step.lines);
            assert_eq!(runs[0].code, 0, "2fa verify: {:?}", runs[0]);
            assert!(
                runs[0]
                    .stdout
                    .starts_with("git2fa: 2FA session open until "),
                "{:?}",
                runs[0]
            );
            assert_eq!(runs[1].code, 0, "the push after verifying: {:?}", runs[1]);
            follow.pushed = true;
        } else if instead.starts_with("does what systemd does with the two units") {
            let admin: Vec<String> = step
                .lines
                .iter()
                .filter(|l| !l.starts_with("systemctl"))
                .cloned()
                .collect();
            follow.as_admin(&admin);
            follow.start_fcgiwrap();
        } else if instead.starts_with("serves the example block") {
            assert!(text.contains("reload nginx"), "{text}");
            follow.start_nginx();
        } else if instead.starts_with("as alice, with git.example.com being nginx") {
            let runs = follow.as_alice(&step.lines);
            assert_eq!(runs[0].code, 0, "the clone over HTTPS: {:?}", runs[0]);
            follow.cloned_over_https = true;
        } else if instead.starts_with("runs git2fa serve") {
            follow.start_serve();
            // Through nginx, with the guide's proxy block.
            assert!(
                follow.get("/login").starts_with("HTTP/1.1 200"),
                "{}",
                follow.get("/login")
            );
            assert!(follow.get("/style.css").starts_with("HTTP/1.1 200"));
            let verify = follow.get("/2fa/verify?repo=team/app");
            assert!(verify.starts_with("HTTP/1.1 303"), "{verify}");
            // Every path of the page reaches serve (nginx's own 404 page
            // names nginx; serve's pages do not).
            for path in page_paths() {
                let reply = follow.get(&path);
                assert!(
                    !reply.contains("<center>nginx") && !reply.starts_with("HTTP/1.1 50"),
                    "{path} did not reach serve through the guide's block:\n{reply}"
                );
            }
            assert!(follow.get("/webauthn.js").starts_with("HTTP/1.1 200"));
            follow.served_the_page = true;
        } else if instead.starts_with("checks the backup") {
            follow.as_admin(&step.lines);
            let copy = Path::new("/var/backups/git2fa.db");
            assert_eq!(
                crate::harness::file_mode(copy),
                0o600,
                "the backup is private"
            );
            let tables = bash(
                "sqlite3 /var/backups/git2fa.db .tables",
                Path::new("/"),
                &[],
            );
            assert!(tables.stdout.contains("users"), "{tables:?}");
        } else if instead.starts_with("runs this last") {
            let repos_before = std::fs::read_dir("/srv/git/team").unwrap().count();
            follow.started = Started::default();
            web_servers_accept_the_guide_s_blocks("installed");
            // The hooks first, as the guide says; then remove, which
            // keeps the blocks; then purge, which takes them.
            let (purge_lines, first): (Vec<String>, Vec<String>) = step
                .lines
                .iter()
                .cloned()
                .partition(|l| l.contains("purge"));
            // With the hooks still in, removing warns and says how to take
            // them out (the package's prerm, run alone: it removes nothing).
            let warned = bash(
                "/var/lib/dpkg/info/git2fa.prerm remove",
                Path::new("/"),
                &[],
            );
            assert_eq!(warned.code, 0, "{warned:?}");
            assert!(
                warned.stderr.contains(
                    "git2fa: warning: repositories under /srv/git still have git2fa's hooks, which refuse every push once git2fa is gone"
                ) && warned
                    .stderr
                    .contains("runuser -u git -- git2fa install-hooks --uninstall /srv/git"),
                "{warned:?}"
            );
            follow.as_admin(&first);
            let hooks = bash(
                "grep -rl git2fa-hook /srv/git/team/app.git/hooks || true",
                Path::new("/"),
                &[],
            );
            assert_eq!(hooks.stdout, "", "the guide's uninstall left hooks");
            let removed = bash("apt-get remove -y git2fa", Path::new("/"), &[]);
            assert_eq!(removed.code, 0, "{removed:?}");
            assert!(
                !removed.stderr.contains("still have git2fa's hooks"),
                "{removed:?}"
            );
            web_servers_accept_the_guide_s_blocks("removed");
            follow.as_admin(&purge_lines);
            web_servers_accept_the_guide_s_blocks("purged");
            assert!(!Path::new("/etc/git2fa").exists());
            assert!(!Path::new("/var/lib/git2fa").exists());
            assert!(!Path::new("/usr/bin/git2fa").exists());
            assert_eq!(
                std::fs::read_dir("/srv/git/team").unwrap().count(),
                repos_before,
                "repositories stay"
            );
        } else {
            panic!("the guide has a step the test does not know: {instead:?}\n{text}");
        }
    }
    assert!(
        follow.saw_refusal && follow.pushed && follow.cloned_over_https && follow.served_the_page,
        "the guide lost a step"
    );
    // What purge left behind (the repositories, and their account) goes.
    let _ = std::fs::remove_dir_all("/srv/git");
    let _ = Command::new("deluser").args(["--system", "git"]).output();

    // Other distributions: install/install.sh, twice. The second run keeps
    // what the admin set (it once put back 0750/0640 and broke a host).
    let install = || {
        bash(
            "install/install.sh --repos-root /srv/git",
            Path::new(ROOT),
            &[],
        )
    };
    let first = install();
    assert_eq!(first.code, 0, "{first:?}");
    std::fs::set_permissions(
        "/etc/git2fa",
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    std::fs::write(
        "/etc/git2fa/config.toml",
        std::fs::read_to_string("/etc/git2fa/config.toml").unwrap() + "# the admin's line\n",
    )
    .unwrap();
    let again = install();
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(crate::harness::file_mode(Path::new("/etc/git2fa")), 0o711);
    assert_eq!(
        crate::harness::file_mode(Path::new("/etc/git2fa/config.toml")),
        0o644
    );
    assert_eq!(
        crate::harness::file_mode(Path::new("/var/lib/git2fa")),
        0o700
    );
    assert!(
        std::fs::read_to_string("/etc/git2fa/config.toml")
            .unwrap()
            .ends_with("# the admin's line\n")
    );
    let check = bash(
        "runuser -u git -- /usr/local/bin/git2fa --config /etc/git2fa/config.toml check",
        Path::new("/"),
        &[],
    );
    assert_eq!(check.code, 0, "{check:?}");
    // What it left behind goes with the throwaway root.
}
