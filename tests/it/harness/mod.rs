//! A temporary git2fa host: a config, a store, bare repositories, and the
//! real `git2fa` binary to run against them.

pub mod apache;
pub mod client;
pub mod fixture;
pub mod http;
pub mod nginx;
pub mod postgres;
pub mod sk;
pub mod sshd;
pub mod throwaway;
pub mod web_server;
pub mod webdriver;

/// Kept in postgres.rs, which the store's unit tests include too.
pub use postgres::free_port;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_git2fa");
pub const SHELL_BIN: &str = env!("CARGO_BIN_EXE_git2fa-shell");
pub const HOOK_BIN: &str = env!("CARGO_BIN_EXE_git2fa-hook");
pub const HTTP_BIN: &str = env!("CARGO_BIN_EXE_git2fa-http");

/// A well-formed ed25519 public key, without comment, for tests that only
/// register keys (no private half exists).
pub const ED25519_PUBLIC: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdpdDJmYSB0ZXN0IGtleSwgbm90IGEgcmVhbCBvbmUh";

/// The absolute path of the `git` on PATH.
pub fn git_path() -> PathBuf {
    which("git").unwrap_or_else(|| panic!("git is not installed (Debian package: git)"))
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether an end-to-end test can run: it needs `what`, from the Debian
/// package `package`. Missing, it fails when GIT2FA_REQUIRE_E2E is set and
/// not empty (the README's test command and CI set it), and otherwise
/// skips: the skip is recorded (`record_skip`), so that the test command's
/// closing line counts and names it instead of counting a pass.
/// A file of `install/` as the package ships it (a web-server block,
/// say).
pub fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("install")
            .join(name),
    )
    .unwrap()
}

pub fn e2e_available(found: bool, what: &str, package: &str) -> bool {
    if found {
        return true;
    }
    let message = format!("{what} is missing: install the Debian package {package}");
    if std::env::var_os("GIT2FA_REQUIRE_E2E").is_some_and(|v| !v.is_empty()) {
        panic!("{message}");
    }
    record_skip(&message);
    false
}

/// The prefix of the line by which a test run in a throwaway root tells
/// the test that started it of a skip.
pub const SKIP_LINE: &str = "git2fa-test-skipped: ";

/// Records that the running test skipped, and why: a line in the file
/// `$GIT2FA_SKIPS` names (the test command reads it), or, in a throwaway
/// root, on stdout for the test outside to record.
pub fn record_skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let line = format!("{test}: {why}");
    eprintln!("skipping {line}");
    if throwaway::inside() {
        println!("{SKIP_LINE}{line}");
        return;
    }
    if let Some(path) = std::env::var_os("GIT2FA_SKIPS") {
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(e) = appended {
            eprintln!("cannot record the skip: {e}");
        }
    }
}

pub struct Host {
    pub dir: TempDir,
    pub config: PathBuf,
    pub root: PathBuf,
    pub data: PathBuf,
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success:\n{self:?}");
        self
    }

    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}:\n{self:?}");
        self
    }
}

impl Host {
    /// A host initialised by `git2fa init`, with `policy` as the body of its
    /// `[policy]` table and `extra` appended after it.
    pub fn with_policy(policy: &str, extra: &str) -> Host {
        Host::build("https://git.example.com", policy, extra)
    }

    /// A host with this `public_url`.
    pub fn build(public_url: &str, policy: &str, extra: &str) -> Host {
        Host::build_with_key(public_url, policy, extra, None)
    }

    /// A host whose `secret.key` is a copy of `key` when given, put in
    /// place before `git2fa init`: another front end of a shared store.
    pub fn build_with_key(public_url: &str, policy: &str, extra: &str, key: Option<&Path>) -> Host {
        let dir = tempfile::Builder::new()
            .prefix("git2fa-test")
            .tempdir()
            .unwrap();
        let root = dir.path().join("repos");
        let data = dir.path().join("data");
        std::fs::create_dir(&root).unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "repos_root = {root:?}\ndata_dir = {data:?}\npublic_url = {public_url:?}\n\
                 git_bin = {git:?}\n[policy]\n{policy}\n{extra}\n",
                git = git_path()
            ),
        )
        .unwrap();
        if let Some(key) = key {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&data)
                .unwrap();
            std::fs::copy(key, data.join("secret.key")).unwrap();
        }
        let host = Host {
            dir,
            config,
            root,
            data,
        };
        host.git2fa(&["init"]).ok();
        host
    }

    /// `[store]` naming a database of `cluster`, for `extra`.
    pub fn postgres_store(cluster: &postgres::Cluster, url: &str) -> String {
        format!(
            "[store]\nurl = {url:?}\npassword_file = {:?}\n",
            cluster.password_file
        )
    }

    pub fn new() -> Host {
        Host::with_policy("", "")
    }

    /// Runs `git2fa --config <config> ARGS`.
    pub fn git2fa(&self, args: &[&str]) -> Run {
        self.git2fa_with_stdin(args, "")
    }

    pub fn git2fa_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("GIT2FA_CONFIG");
        run_with_stdin(&mut command, stdin)
    }

    /// Creates a bare repository `name` below the root with the real git.
    pub fn bare_repo(&self, name: &str) -> PathBuf {
        let path = self.root.join(name);
        let status = Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&path)
            .status()
            .expect("git must be installed (Debian package: git)");
        assert!(status.success());
        path
    }

    pub fn add_user(&self, name: &str) {
        self.git2fa_with_stdin(
            &["user", "add", name, "--password-stdin"],
            &format!("{}\n", fixture::PASSWORD),
        )
        .ok();
    }

    /// Enrols `name` and returns (TOTP secret, recovery codes), read from
    /// what `git2fa user enroll` printed.
    pub fn enroll(&self, name: &str) -> (Vec<u8>, Vec<String>) {
        let run = self.git2fa(&["user", "enroll", name]).ok();
        let uri = run
            .stdout
            .lines()
            .find(|l| l.starts_with("otpauth://"))
            .expect("an otpauth URI");
        let secret = git2fa::factor::totp::secret_from_uri(uri).expect("a secret in the URI");
        let codes = run
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with("recovery codes"))
            .skip(1)
            .map(|l| l.trim().to_string())
            .collect();
        (secret, codes)
    }

    /// The arguments `git2fa authorized-keys` gives `git2fa-shell` for key
    /// `#id`: the config, the id, and the key's fingerprint.
    pub fn shell_args(&self, id: i64) -> Vec<String> {
        let list = self.git2fa(&["key", "list"]).ok().stdout;
        let fingerprint = list
            .lines()
            .find(|l| l.starts_with(&format!("#{id} ")))
            .and_then(|l| l.split(' ').nth(3))
            .unwrap_or_else(|| panic!("no key #{id} in:\n{list}"))
            .to_string();
        vec![
            "--config".into(),
            self.config.display().to_string(),
            "--key-id".into(),
            id.to_string(),
            "--fingerprint".into(),
            fingerprint,
        ]
    }

    /// A new SSH key pair for `user`, registered; the private key's path.
    pub fn add_key(&self, user: &str) -> PathBuf {
        let key = self.dir.path().join(format!("{user}_key"));
        crate::harness::sshd::keygen(&key);
        self.git2fa(&["key", "add", user, &format!("{}.pub", key.display())])
            .ok();
        key
    }

    /// A bare repository `name` (below the root, `.git` added) with one
    /// commit on `main`, pushed from the work tree `work` (made if need
    /// be); the work tree's path.
    pub fn repo_with_a_commit(&self, name: &str) -> PathBuf {
        let repo = self.bare_repo(&format!("{name}.git"));
        let work = self.dir.path().join("work");
        if !work.exists() {
            work_tree(self.dir.path(), "work");
        }
        run(
            "git",
            &["push", "--quiet", &repo.display().to_string(), "main"],
            &work,
            &[],
            "",
        )
        .ok();
        work
    }

    /// A new personal access token of `user` for `repos` with `perm`
    /// (`read` or `write`), `extra` arguments added; the token, as printed.
    pub fn token(&self, user: &str, repos: &str, perm: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", user, "--repo", repos, "--perm", perm];
        args.extend_from_slice(extra);
        self.git2fa(&args).ok().stdout.trim().to_string()
    }

    /// The git2fa hooks in every repository below the root.
    pub fn install_hooks(&self) {
        self.git2fa(&["install-hooks", &self.root.display().to_string()])
            .ok();
    }

    pub fn store_path(&self) -> PathBuf {
        self.data.join("git2fa.db")
    }

    /// The bytes of the store and its WAL: equal snapshots mean nothing
    /// was written.
    pub fn store_snapshot(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.store_path()).unwrap_or_default();
        bytes.extend(std::fs::read(self.data.join("git2fa.db-wal")).unwrap_or_default());
        bytes
    }
}

/// The TOTP code `offset` steps from now.
pub fn code(secret: &[u8], offset: i64) -> String {
    let at = git2fa::system::time::now() + offset * 30;
    git2fa::factor::totp::code_at(secret, at as u64)
}

pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The name of the Unix account running the tests.
pub fn unix_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a command with a clean git environment; `home` keeps the user's own
/// git config out of it.
pub fn run(program: &str, args: &[&str], cwd: &Path, env: &[(&str, String)], stdin: &str) -> Run {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("GIT_DIR")
        .env_remove("REMOTE_USER")
        .env_remove("GIT2FA_USER")
        .env_remove("GIT2FA_TRANSPORT")
        .env_remove("GIT2FA_KEY_ID")
        .env_remove("GIT2FA_TOKEN_ID")
        .env_remove("GIT2FA_REMOTE_ADDR")
        .env_remove("GIT2FA_CONFIG")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Tess Ter")
        .env("GIT_AUTHOR_EMAIL", "tess@example.com")
        .env("GIT_COMMITTER_NAME", "Tess Ter")
        .env("GIT_COMMITTER_EMAIL", "tess@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .envs(env.iter().map(|(k, v)| (k, v)));
    run_with_stdin(&mut command, stdin)
}

/// Runs `command` to its end with `stdin` as its input; what it did.
#[track_caller]
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{:?}: {e}", command.get_program()));
    // A command may refuse and exit before reading its input.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run::from(out)
}

/// Writes `message` to README in the work tree `work` and commits it.
pub fn commit_readme(work: &Path, message: &str) {
    std::fs::write(work.join("README"), message).unwrap();
    run("git", &["commit", "--quiet", "-am", message], work, &[], "").ok();
}

/// A work tree with one commit on `main`, for pushing.
pub fn work_tree(parent: &Path, name: &str) -> PathBuf {
    let path = parent.join(name);
    std::fs::create_dir_all(&path).unwrap();
    let git = |args: &[&str]| {
        run(
            "git",
            args,
            &path,
            &[("HOME", parent.display().to_string())],
            "",
        )
        .ok()
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(path.join("README"), "hello\n").unwrap();
    git(&["add", "README"]);
    git(&["commit", "--quiet", "-m", "first"]);
    path
}

/// Waits up to `limit` for `ready`; fails naming `what`, with the text of
/// `log` (what the thing waited for said about itself).
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, log: &Path, ready: impl FnMut() -> bool) {
    assert!(
        poll(limit, ready),
        "{what} did not start within {limit:?}; its log ({}):\n{}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Asks `ready` every 50 ms for up to `limit`; whether it came true.
pub fn poll(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to 15 seconds for a server on loopback `port`.
#[track_caller]
pub fn wait_port(port: u16, what: &str, log: &Path) {
    wait_until(
        &format!("{what} (listening on 127.0.0.1:{port})"),
        Duration::from_secs(15),
        log,
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
}

/// Waits up to 15 seconds for `process` to listen on loopback `port`: the
/// port answers, the process is still running, and its log shows `proof`
/// (the server's own line saying it listens there) when one is given.
/// The port alone proves nothing: it came from `free_port`, and between
/// that and the server's bind another test may have taken it; then the
/// server exits, and a test that trusted the port would go on against a
/// server half started (once: a hook socket bound but not yet listening,
/// "Connection refused").
#[track_caller]
pub fn wait_listening(
    process: &mut Process,
    port: u16,
    what: &str,
    log: &Path,
    proof: Option<&str>,
) {
    let what = format!("{what} (listening on 127.0.0.1:{port})");
    let ready = poll(Duration::from_secs(15), || {
        if process.wait_for_exit(Duration::ZERO).is_some() {
            return true;
        }
        let shown = proof
            .is_none_or(|line| std::fs::read_to_string(log).is_ok_and(|text| text.contains(line)));
        shown && TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(code) = process.exited() {
        panic!(
            "{what} exited ({code:?}) instead; its log ({}):\n{text}",
            log.display()
        );
    }
    assert!(
        ready,
        "{what} did not start within 15 s; its log ({}):\n{text}",
        log.display()
    );
}

/// A process the test started, in a process group of its own: dropping it
/// ends the group (SIGTERM), so that children (nginx's workers, fcgiwrap's
/// CGIs) go too, and waits for it.
///
/// Once the process has been waited for, its id is free: this machine
/// gives ids again within a full run (`pid_max` is 32768 here), and a
/// signal to a reaped id lands on whatever process got it since (another
/// test's chromedriver or `git2fa serve`, which then dies mid-test). So
/// nothing is signalled after the wait, and every wait goes through here.
pub struct Process {
    child: Child,
    exited: Option<Option<i32>>,
}

impl Process {
    pub fn spawn(command: &mut Command) -> Process {
        Process {
            child: command
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{command:?}: {e}")),
            exited: None,
        }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Sends `signal` to the whole group, unless the process has been
    /// waited for (its id may be another's now).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if self.exited.is_none() {
            let _ = nix::sys::signal::killpg(self.pid(), signal);
        }
    }

    /// Sends `signal` to the process alone, unless it has been waited for.
    pub fn signal_process(&self, signal: nix::sys::signal::Signal) {
        if self.exited.is_none() {
            let _ = nix::sys::signal::kill(self.pid(), signal);
        }
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        if let Some(code) = self.exited {
            return code;
        }
        let code = self.child.wait().ok().and_then(|s| s.code());
        self.exited = Some(code);
        code
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(code) = self.exited {
                return code;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status.code());
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process was seen to exit, and its code.
    pub fn exited(&self) -> Option<Option<i32>> {
        self.exited
    }

    /// The process's standard streams, as `Child` has them.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait();
    }
}
