//! `git2fa serve` on a free loopback port, for the web page's tests.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, Host};

pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        let _ = kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// A free loopback port to configure before starting.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A host whose public URL and `[web] listen` are this port.
pub fn host(port: u16, policy: &str) -> Host {
    Host::build(
        &format!("http://127.0.0.1:{port}"),
        policy,
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n"),
    )
}

impl Server {
    pub fn start(host: &Host, port: u16) -> Server {
        Server::start_with(host, port, &[])
    }

    /// Starts `git2fa serve` and waits for the web port and `also` (the
    /// SSH port, say) to answer.
    pub fn start_with(host: &Host, port: u16, also: &[u16]) -> Server {
        let log = host.dir.path().join("serve.log");
        let child = Command::new(BIN)
            .args(["--config", &host.config.display().to_string(), "serve"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::iter::once(&port)
            .chain(also)
            .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "git2fa serve did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for the server to exit by itself; its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
