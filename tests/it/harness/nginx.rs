//! A real nginx with fcgiwrap on a free loopback port, serving
//! `install/nginx-git2fa.conf` with this host's paths: git over HTTP goes
//! through `git2fa-http` as admins will run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{
    HTTP_BIN, Host, Process, e2e_available, free_port, unix_user, wait_listening, wait_until,
};

/// nginx and its fcgiwrap, each in a process group of its own: dropped,
/// the groups end, nginx's workers and fcgiwrap's children with them.
pub struct Nginx {
    _nginx: Process,
    _fcgiwrap: Process,
    pub port: u16,
}

pub fn available() -> bool {
    let nginx = e2e_available(
        Path::new("/usr/sbin/nginx").exists(),
        "/usr/sbin/nginx",
        "nginx",
    );
    let fcgiwrap = e2e_available(
        Path::new("/usr/sbin/fcgiwrap").exists(),
        "/usr/sbin/fcgiwrap",
        "fcgiwrap",
    );
    nginx && fcgiwrap
}

/// `install/nginx-git2fa.conf`, the location block admins install.
pub fn our_location() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("install/nginx-git2fa.conf"))
        .unwrap()
}

impl Nginx {
    pub fn start(host: &Host) -> Nginx {
        Nginx::start_with(host, &our_location())
    }

    /// nginx serving `location`, an nginx config block written for
    /// `/usr/local/bin/git2fa-http`, `/etc/git2fa/config.toml` and
    /// fcgiwrap on `unix:/run/git2fa-fcgiwrap.sock` (ours) or
    /// `unix:/run/fcgiwrap.socket` (Debian's), as admins write it.
    pub fn start_with(host: &Host, location: &str) -> Nginx {
        Nginx::start_on(host, location, free_port())
    }

    /// The same, on `port` (chosen before the host's `public_url`).
    pub fn start_on(host: &Host, location: &str, port: u16) -> Nginx {
        let dir = host.dir.path().join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("fcgiwrap.sock");
        let fcgi_log = dir.join("fcgiwrap.log");
        let fcgiwrap = Process::spawn(
            Command::new("/usr/sbin/fcgiwrap")
                .args(["-c", "4", "-s"])
                .arg(format!("unix:{}", socket.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&fcgi_log).unwrap()),
        );
        wait_until("fcgiwrap", Duration::from_secs(10), &fcgi_log, || {
            socket.exists()
        });
        let location = location
            .replace("/usr/local/bin/git2fa-http", HTTP_BIN)
            .replace(
                "/etc/git2fa/config.toml",
                &host.config.display().to_string(),
            )
            .replace(
                "unix:/run/git2fa-fcgiwrap.sock",
                &format!("unix:{}", socket.display()),
            )
            .replace(
                "unix:/run/fcgiwrap.socket",
                &format!("unix:{}", socket.display()),
            )
            .replace(
                "include fastcgi_params;",
                "include /etc/nginx/fastcgi_params;",
            );
        let error_log = dir.join("error.log");
        let user = if unix_user() == "root" {
            "user root;"
        } else {
            ""
        };
        let temp = |name: &str| dir.join(name).display().to_string();
        let config = dir.join("nginx.conf");
        std::fs::write(
            &config,
            format!(
                "{user}\ndaemon off;\nworker_processes 1;\npid {pid};\nerror_log {error_log} info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n access_log {access};\n client_body_temp_path {body};\n fastcgi_temp_path {fastcgi};\n\
                 proxy_temp_path {proxy};\n uwsgi_temp_path {uwsgi};\n scgi_temp_path {scgi};\n\
                 server {{\n  listen 127.0.0.1:{port};\n{location}\n }}\n}}\n",
                pid = temp("nginx.pid"),
                error_log = error_log.display(),
                access = temp("access.log"),
                body = temp("body"),
                fastcgi = temp("fastcgi"),
                proxy = temp("proxy"),
                uwsgi = temp("uwsgi"),
                scgi = temp("scgi"),
            ),
        )
        .unwrap();
        let mut nginx = Process::spawn(
            Command::new("/usr/sbin/nginx")
                .args(["-e", &error_log.display().to_string(), "-c"])
                .arg(&config)
                .args(["-p", &dir.display().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("nginx.stderr")).unwrap()),
        );
        wait_listening(&mut nginx, port, "nginx", &dir.join("nginx.stderr"), None);
        Nginx {
            _nginx: nginx,
            _fcgiwrap: fcgiwrap,
            port,
        }
    }

    pub fn url(&self, user: &str, secret: &str, repo: &str) -> String {
        let secret = git2fa::system::url::url_component(secret).replace('/', "%2F");
        format!("http://{user}:{secret}@127.0.0.1:{}/git/{repo}", self.port)
    }

    /// One request (`METHOD PATH`) with `headers`; the status and body.
    pub fn raw(&self, request: &str, headers: &[&str]) -> (u16, String) {
        let (method, path) = request.split_once(' ').unwrap();
        let path = path
            .trim_end_matches(" HTTP/1.0")
            .trim_end_matches(" HTTP/1.1");
        let reply = super::http::send(self.port, method, path, headers, b"");
        (reply.status, reply.body)
    }
}

/// The git2fa-http log line for failures, for a panic message.
pub fn logs(host: &Host) -> String {
    let dir: PathBuf = host.dir.path().join("nginx");
    ["error.log", "fcgiwrap.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}
