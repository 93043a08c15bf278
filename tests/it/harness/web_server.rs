//! `git2fa serve` on a free loopback port, for the web page's tests.

use std::process::{Command, Stdio};

use crate::harness::{BIN, Host, Process, wait_listening};

pub use crate::harness::free_port;

/// `git2fa serve`, stopped with SIGTERM when dropped.
pub struct Server {
    process: Process,
    pub port: u16,
}

/// A host whose public URL and `[web] listen` are this port.
pub fn host(port: u16, policy: &str) -> Host {
    Host::build(
        &format!("http://127.0.0.1:{port}"),
        policy,
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n"),
    )
}

/// `host(port, "")` where alice has a key (#1), has enrolled and is
/// verified, and `team` has a commit and is flagged, requiring 2FA for
/// `require` (push or all); the work tree's path.
pub fn verified_host(port: u16, require: &str) -> (Host, std::path::PathBuf) {
    let host = host(port, "");
    host.add_user("alice");
    host.add_key("alice");
    let (secret, _) = host.enroll("alice");
    host.git2fa(&["verify", "alice", &crate::harness::code(&secret, 0)])
        .ok();
    let work = host.repo_with_a_commit("team");
    host.git2fa(&["repo", "flag", "team", "--require", require])
        .ok();
    (host, work)
}

impl Server {
    pub fn start(host: &Host, port: u16) -> Server {
        Server::start_with(host, port, &[])
    }

    /// Starts `git2fa serve` and waits for the web port and `also` (the
    /// SSH port, say) to answer.
    pub fn start_with(host: &Host, port: u16, also: &[u16]) -> Server {
        let log = host.dir.path().join("serve.log");
        let process = Process::spawn(
            Command::new(BIN)
                .args(["--config", &host.config.display().to_string(), "serve"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        );
        let mut process = process;
        // serve's own lines name the ports it bound (after every socket,
        // the hook socket included, is bound and listening).
        wait_listening(
            &mut process,
            port,
            "git2fa serve",
            &log,
            Some(&format!("web page on http://127.0.0.1:{port}")),
        );
        for p in also {
            wait_listening(
                &mut process,
                *p,
                "git2fa serve",
                &log,
                Some(&format!("SSH on 127.0.0.1:{p}")),
            );
        }
        Server { process, port }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        self.process.pid()
    }

    /// Asks the server to stop (SIGTERM), as systemd does.
    pub fn terminate(&self) {
        self.process
            .signal_process(nix::sys::signal::Signal::SIGTERM);
    }

    /// Kills the server at once (SIGKILL, as a crash or the OOM killer
    /// would), and waits for it.
    pub fn kill(&mut self) {
        self.process
            .signal_process(nix::sys::signal::Signal::SIGKILL);
        self.process.wait();
    }

    /// Waits for the server to exit by itself; its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.process.wait()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
