//! A real OpenSSH sshd on a free loopback port, authenticating keys through
//! `git2fa authorized-keys` and forcing `git2fa-shell`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{
    BIN, HOOK_BIN, Host, Process, Run, SHELL_BIN, e2e_available, free_port, run, unix_user,
    wait_listening,
};

pub struct Sshd {
    _process: Process,
    pub port: u16,
    /// Root-owned copies of the binaries: sshd runs an
    /// AuthorizedKeysCommand only from a path no other user can write.
    pub bin_dir: PathBuf,
    pub login: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.bin_dir);
    }
}

/// Whether this machine can run the SSH end-to-end tests.
pub fn available() -> bool {
    let sshd = e2e_available(
        Path::new("/usr/sbin/sshd").exists(),
        "/usr/sbin/sshd",
        "openssh-server",
    );
    let ssh = e2e_available(
        crate::harness::which("ssh").is_some(),
        "ssh",
        "openssh-client",
    );
    let root = e2e_available(
        nix_is_root(),
        "root (sshd runs AuthorizedKeysCommand only as root from a root-owned path)",
        "(none: run the tests as root)",
    );
    sshd && ssh && root
}

fn nix_is_root() -> bool {
    unix_user() == "root"
}

impl Sshd {
    pub fn start(host: &Host) -> Sshd {
        let dir = host.dir.path().join("sshd");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        // Not named /run/git2fa*: `tests/host-state` lists those, and a
        // test checking the host (host_untouched) runs beside this one.
        let bin_dir = PathBuf::from(format!(
            "/run/e2e-sshd-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&bin_dir).unwrap();
        for bin in [BIN, SHELL_BIN, HOOK_BIN] {
            let to = bin_dir.join(Path::new(bin).file_name().unwrap());
            std::fs::copy(bin, &to).unwrap();
        }
        let host_key = dir.join("host_ed25519");
        keygen(&host_key);
        // Also ECDSA, as Debian's sshd has: JGit's JSch knows no Ed25519.
        let ecdsa_key = dir.join("host_ecdsa");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f"])
            .arg(&ecdsa_key)
            .output()
            .expect("ssh-keygen (Debian package openssh-client)");
        assert!(made.status.success(), "{made:?}");
        let port = free_port();
        let log = dir.join("sshd.log");
        let config = dir.join("sshd_config");
        // The snippet admins install, with this host's paths and account.
        let snippet = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("install/sshd_config.conf"),
        )
        .unwrap()
        .replace("Match User git", &format!("Match User {}", unix_user()))
        .replace("/usr/local/bin/", &format!("{}/", bin_dir.display()))
        .replace(
            "/etc/git2fa/config.toml",
            &host.config.display().to_string(),
        )
        .replace(
            "AuthorizedKeysCommandUser git",
            "AuthorizedKeysCommandUser root",
        );
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nHostKey {ecdsa_key}\nPidFile {pid}\n\
                 PubkeyAuthentication yes\nPermitRootLogin forced-commands-only\nUsePAM no\n\
                 StrictModes no\nLogLevel VERBOSE\n{snippet}",
                host_key = host_key.display(),
                ecdsa_key = ecdsa_key.display(),
                pid = dir.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let mut process = Process::spawn(
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        );
        wait_listening(
            &mut process,
            port,
            "sshd",
            &log,
            Some(&format!("Server listening on 127.0.0.1 port {port}")),
        );
        Sshd {
            _process: process,
            port,
            bin_dir,
            login: unix_user(),
        }
    }

    /// The client side: this port, this login.
    pub fn client(&self) -> SshClient {
        SshClient {
            port: self.port,
            login: self.login.clone(),
        }
    }

    pub fn ssh_command(&self, key: &Path) -> String {
        self.client().ssh_command(key)
    }

    pub fn url(&self, repo: &str) -> String {
        self.client().url(repo)
    }

    pub fn ssh(&self, key: &Path, command: &str, stdin: &str) -> Run {
        self.client().ssh(key, command, stdin)
    }

    pub fn git(&self, key: &Path, cwd: &Path, args: &[&str]) -> Run {
        self.client().git(key, cwd, args)
    }
}

/// The real OpenSSH client and git, against an SSH server on loopback.
pub struct SshClient {
    pub port: u16,
    pub login: String,
}

impl SshClient {
    /// The `ssh` command line git and tests use, with this key.
    pub fn ssh_command(&self, key: &Path) -> String {
        format!(
            "ssh -i {} -p {} -o IdentitiesOnly=yes -o IdentityAgent=none -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            key.display(),
            self.port
        )
    }

    pub fn url(&self, repo: &str) -> String {
        format!("ssh://{}@127.0.0.1:{}/{repo}", self.login, self.port)
    }

    /// The words of `ssh [OPTIONS] LOGIN@127.0.0.1 [COMMAND]`.
    fn words(&self, key: &Path, options: &[&str], command: &str) -> Vec<String> {
        let mut words: Vec<String> = self
            .ssh_command(key)
            .split(' ')
            .map(str::to_string)
            .collect();
        words.extend(options.iter().map(|o| o.to_string()));
        words.push(format!("{}@127.0.0.1", self.login));
        if !command.is_empty() {
            words.push(command.to_string());
        }
        words
    }

    /// `ssh git@host COMMAND`, with `stdin`; `options` go before the host.
    pub fn ssh_with(&self, key: &Path, options: &[&str], command: &str, stdin: &str) -> Run {
        let words = self.words(key, options, command);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        run("ssh", &args, Path::new("/"), &[], stdin)
    }

    /// `ssh git@host COMMAND` started with piped standard streams, for a
    /// test that talks to it while it runs.
    pub fn spawn(&self, key: &Path, command: &str) -> Child {
        let words = self.words(key, &[], command);
        Command::new(&words[0])
            .args(&words[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn ssh(&self, key: &Path, command: &str, stdin: &str) -> Run {
        self.ssh_with(key, &[], command, stdin)
    }

    /// Runs git with this key, in `cwd`.
    pub fn git(&self, key: &Path, cwd: &Path, args: &[&str]) -> Run {
        let home = cwd.parent().unwrap_or(cwd).display().to_string();
        run(
            "git",
            args,
            cwd,
            &[("GIT_SSH_COMMAND", self.ssh_command(key)), ("HOME", home)],
            "",
        )
    }
}

/// A new ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (Debian package openssh-client)");
    assert!(out.status.success(), "{out:?}");
}

/// An OpenSSH control master, and the sessions started through it.
pub struct Multiplexed {
    master: Child,
    socket: PathBuf,
    pub sessions: Vec<Child>,
}

impl Drop for Multiplexed {
    fn drop(&mut self) {
        for child in self.sessions.iter_mut().chain([&mut self.master]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Multiplexed {
    /// Logs in with `key` and holds the connection at control socket
    /// `socket` (`ssh -M -S`).
    pub fn open(client: &SshClient, key: &Path, socket: PathBuf) -> Multiplexed {
        let master = Command::new("ssh")
            .args(client.ssh_command(key).split(' ').skip(1))
            .args(["-M", "-S"])
            .arg(&socket)
            .args(["-N", &format!("{}@127.0.0.1", client.login)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            super::poll(Duration::from_secs(20), || socket.exists()),
            "the control master did not start"
        );
        Multiplexed {
            master,
            socket,
            sessions: Vec::new(),
        }
    }

    /// Starts `command` on the held connection, with piped streams; its
    /// input stays open.
    pub fn spawn(&mut self, client: &SshClient, command: &str) -> &mut Child {
        let child = Command::new("ssh")
            .args(["-S", &self.socket.display().to_string()])
            .args(["-o", "ControlMaster=no", "-o", "BatchMode=yes"])
            .arg(format!("{}@127.0.0.1", client.login))
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.sessions.push(child);
        self.sessions.last_mut().unwrap()
    }

    /// Runs `command` on the held connection (no new authentication).
    pub fn run(&self, client: &SshClient, command: &str) -> Run {
        run(
            "ssh",
            &[
                "-S",
                &self.socket.display().to_string(),
                "-o",
                "ControlMaster=no",
                "-o",
                "BatchMode=yes",
                &format!("{}@127.0.0.1", client.login),
                command,
            ],
            Path::new("/"),
            &[],
            "",
        )
    }
}
