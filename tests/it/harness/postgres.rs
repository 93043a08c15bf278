//! A throwaway PostgreSQL cluster from Debian's `postgresql` package:
//! `initdb` in a temporary directory, the server on a free loopback port
//! and a Unix socket in that directory, password (SCRAM) authentication
//! over TCP for the role git2fa uses, and a database per test.
//!
//! The server runs under a small `sh` that stops it as soon as its stdin
//! closes: when the cluster is dropped, and also when the test process
//! ends without dropping it (a static cluster, a panic, a kill), so that no
//! server outlives its tests.
//!
//! This file uses only std, `nix`, `tempfile` and `postgres`: the store's
//! unit tests include it as well (`src/store/tests.rs`).

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role git2fa connects as, and its password.
pub const ROLE: &str = "git2fa";
pub const PASSWORD: &str = "git2fa-test-password";

/// Where Debian's package puts the server programs (not on PATH):
/// `/usr/lib/postgresql/<version>/bin`, the newest version; else the
/// directory of an `initdb` on PATH.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

/// Whether PostgreSQL can run here. Missing, a test fails when
/// GIT2FA_REQUIRE_E2E is set and not empty (the README's test command and
/// CI set it) and skips otherwise, recording the skip in the file
/// `$GIT2FA_SKIPS` names, for the test command's closing line. (This file
/// serves the library's unit tests too, so it records skips itself.)
pub fn available() -> bool {
    if bin_dir().is_some() {
        return true;
    }
    let message =
        "PostgreSQL's initdb and postgres are missing: install the Debian package postgresql";
    if std::env::var_os("GIT2FA_REQUIRE_E2E").is_some_and(|v| !v.is_empty()) {
        panic!("{message}");
    }
    let thread = std::thread::current();
    let line = format!("{}: {message}", thread.name().unwrap_or("a test"));
    eprintln!("skipping {line}");
    if let Some(path) = std::env::var_os("GIT2FA_SKIPS") {
        use std::io::Write;
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut file| writeln!(file, "{line}"));
    }
    false
}

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The account the server runs as: root may not run it.
    account: Option<(u32, u32)>,
    pub port: u16,
    /// The password of `ROLE`, in a file of its own (mode 0600).
    pub password_file: PathBuf,
    server: Option<Child>,
}

impl Cluster {
    /// A new cluster, running, with the role `ROLE`. `fsync` is off: the
    /// tests need no durability across a power cut, and it makes each
    /// commit cheap.
    pub fn start() -> Cluster {
        Cluster::start_with(&["-c", "fsync=off", "-c", "synchronous_commit=off"])
    }

    /// A cluster with these server settings (`-c name=value` pairs).
    pub fn start_with(settings: &[&str]) -> Cluster {
        let mut cluster = Cluster::init(settings);
        cluster.start_server();
        cluster.create_role();
        cluster
    }

    /// A cluster that offers TLS (and plain connections too), with a
    /// certificate for the name `localhost` only, signed by a CA of its
    /// own: `ca_file()`. `fsync` off, as `start`.
    pub fn start_tls() -> Cluster {
        let mut cluster = Cluster::init(&["-c", "fsync=off", "-c", "synchronous_commit=off"]);
        let dir = cluster.dir.path().to_path_buf();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl runs (Debian package openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
                &["-subj", "/CN=git2fa test CA"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write server.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        // The server reads its key only if the key is its own, mode 0600.
        if let Some((uid, gid)) = cluster.account {
            for file in ["server.key", "server.pem"] {
                std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid)).expect("chown");
            }
        }
        let mut settings = std::fs::read_to_string(dir.join("settings")).unwrap_or_default();
        for line in [
            "-c".to_string(),
            "ssl=on".to_string(),
            "-c".to_string(),
            format!("ssl_cert_file={}", dir.join("server.pem").display()),
            "-c".to_string(),
            format!("ssl_key_file={}", dir.join("server.key").display()),
        ] {
            settings.push('\n');
            settings.push_str(&line);
        }
        std::fs::write(dir.join("settings"), settings).expect("write settings");
        cluster.start_server();
        cluster.create_role();
        cluster
    }

    /// The CA that signed a `start_tls` cluster's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A new cluster, initialised, not running.
    fn init(settings: &[&str]) -> Cluster {
        let bin = bin_dir().expect("PostgreSQL is missing: install the Debian package postgresql");
        let dir = tempfile::Builder::new()
            .prefix("git2fa-pg")
            .tempdir()
            .expect("a temporary directory");
        let account = server_account();
        if let Some((uid, gid)) = account {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let password_file = dir.path().join("password");
        write_private(&password_file, &format!("{PASSWORD}\n"));
        let cluster = Cluster {
            bin,
            account,
            port: free_port(),
            password_file,
            server: None,
            dir,
        };
        let out = cluster
            .command("initdb")
            .args(["-D"])
            .arg(cluster.data())
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(cluster.dir.path().join("settings"), settings.join("\n"))
            .expect("write settings");
        cluster
    }

    fn create_role(&self) {
        self.superuser("postgres")
            .batch_execute(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"))
            .expect("create the role");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(self.dir.path()).env_remove("PGDATA");
        if let Some((uid, gid)) = self.account {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Starts the server (again, after `stop`), and waits until it answers.
    pub fn start_server(&mut self) {
        assert!(self.server.is_none(), "the server is running");
        let settings =
            std::fs::read_to_string(self.dir.path().join("settings")).unwrap_or_default();
        // `sh` starts the server and waits for a line on its stdin. Then it
        // stops the server (fast shutdown) and waits for it; unless the line
        // was "stop" (`stop`, to start again), it also removes the cluster:
        // stdin closes when the cluster is dropped or the test process ends.
        let mut child = Command::new("sh");
        child
            .arg("-c")
            .arg(concat!(
                r#"dir=$1; shift; "$@" & pid=$!; read line; kill -INT "$pid"; wait "$pid"; "#,
                r#"[ "$line" = stop ] || rm -rf "$dir""#
            ))
            .arg("sh")
            .arg(self.dir.path())
            .arg(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.socket_dir())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ])
            .args(settings.lines().filter(|l| !l.is_empty()))
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("server.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        if let Some((uid, gid)) = self.account {
            child.uid(uid).gid(gid);
        }
        self.server = Some(child.spawn().expect("start postgres"));
        let started = Instant::now();
        loop {
            if self.try_superuser("postgres").is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: open connections are ended) and
    /// waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            if let Some(mut stdin) = server.stdin.take() {
                let _ = stdin.write_all(b"stop\n");
            }
            let _ = server.wait();
        }
    }

    /// Stops every process of the running server with SIGSTOP (`true`),
    /// or lets them go on with SIGCONT: a hung server, whose kernel still
    /// accepts connections and acknowledges what is sent.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_string))
            .expect("the server's postmaster.pid");
        // The postmaster first when stopping (no new backends), last when
        // going on.
        let children = || {
            let _ = std::process::Command::new("pkill")
                .args([signal, "-P", &pid])
                .status();
        };
        let main = || {
            let _ = std::process::Command::new("kill")
                .args([signal, &pid])
                .status();
        };
        if frozen {
            main();
            children();
        } else {
            children();
            main();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn try_superuser(&self, database: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(self.socket_dir())
            .port(self.port)
            .user("postgres")
            .dbname(database)
            .connect_timeout(Duration::from_secs(2))
            .connect(postgres::NoTls)
    }

    /// The superuser, over the Unix socket (trusted).
    pub fn superuser(&self, database: &str) -> postgres::Client {
        self.try_superuser(database)
            .unwrap_or_else(|e| panic!("connect as postgres: {e}\n{}", self.log()))
    }

    /// A new empty database owned by `ROLE`; its url (TCP, password auth).
    pub fn database(&self, name: &str) -> String {
        self.superuser("postgres")
            .batch_execute(&format!("CREATE DATABASE \"{name}\" OWNER {ROLE}"))
            .expect("create a database");
        self.url(name)
    }

    /// The url of a database, as `[store] url` takes it.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    /// Stops the server; its `sh` removes the cluster.
    fn drop(&mut self) {
        // A server left stopped (SIGSTOP) by a test that failed meanwhile
        // goes on first: a stopped server never ends, nor does its `sh`.
        if let Some(pid) = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_string))
        {
            let _ = std::process::Command::new("pkill")
                .args(["-CONT", "-P", &pid])
                .status();
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid])
                .status();
        }
        if let Some(mut server) = self.server.take() {
            drop(server.stdin.take());
            let _ = server.wait();
        }
    }
}

/// Root may not run PostgreSQL: as root, the server runs as the account
/// Debian's package made (`postgres`), or `nobody`.
fn server_account() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    ["postgres", "nobody"].iter().find_map(|name| {
        let user = nix::unistd::User::from_name(name).ok()??;
        Some((user.uid.as_raw(), user.gid.as_raw()))
    })
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write the password file");
}

/// Debian's PgBouncer in front of a cluster, in transaction mode, with its
/// defaults otherwise (`ignore_startup_parameters` unset): what most
/// PostgreSQL shops put between their applications and the database.
pub struct Bouncer {
    pub port: u16,
    process: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// Whether PgBouncer is here; missing, the test fails under
/// GIT2FA_REQUIRE_E2E and skips otherwise.
pub fn bouncer_available() -> bool {
    if std::path::Path::new("/usr/sbin/pgbouncer").exists() {
        return true;
    }
    let message = "/usr/sbin/pgbouncer is missing: install the Debian package pgbouncer";
    if std::env::var_os("GIT2FA_REQUIRE_E2E").is_some_and(|v| !v.is_empty()) {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    false
}

impl Cluster {
    /// A PgBouncer in transaction mode in front of this cluster: `ROLE`
    /// logs in to it with `PASSWORD` (SCRAM), and it to the cluster.
    pub fn bouncer(&self) -> Bouncer {
        let dir = tempfile::Builder::new()
            .prefix("git2fa-bouncer")
            .tempdir()
            .expect("a temporary directory");
        if let Some((uid, gid)) = self.account {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let port = free_port();
        let users = dir.path().join("userlist.txt");
        std::fs::write(&users, format!("\"{ROLE}\" \"{PASSWORD}\"\n")).unwrap();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={pg}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\n\
                 auth_file = {users}\npool_mode = transaction\nmax_client_conn = 400\n\
                 default_pool_size = 20\nlogfile = {log}\npidfile = {pid}\n",
                pg = self.port,
                users = users.display(),
                log = dir.path().join("pgbouncer.log").display(),
                pid = dir.path().join("pgbouncer.pid").display(),
            ),
        )
        .unwrap();
        for file in [&users, &ini] {
            if let Some((uid, gid)) = self.account {
                std::os::unix::fs::chown(file, Some(uid), Some(gid)).expect("chown");
            }
        }
        let mut command = Command::new("/usr/sbin/pgbouncer");
        command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.account {
            command.uid(uid).gid(gid);
        }
        let process = command.spawn().expect("start pgbouncer");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "pgbouncer did not start on port {port}; its log:\n{}",
                std::fs::read_to_string(dir.path().join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Bouncer {
            port,
            process: Some(process),
            _dir: dir,
        }
    }
}

/// A free loopback port to configure before starting a server on it.
///
/// Taken below Linux's ephemeral range (`ip_local_port_range`, 32768–60999
/// by default), from a counter shared by all tests of this process: a port
/// the kernel hands out (`bind(0)`) is also what the next outgoing
/// connection of any test may take between here and the server's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 100) * 100;
    for _ in 0..SPAN {
        let port = (FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SPAN);
}
