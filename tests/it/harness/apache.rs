//! A real Apache httpd (Debian's `apache2`) on a free loopback port with
//! mod_cgi, configured as git-http-backend(1) says, with `git2fa-http` in
//! place of `git http-backend`. Apache will not run CGI programs as root, so
//! the host's files are handed to `www-data`, the account Debian runs
//! Apache as, once they are set up; from then on the test runs the admin
//! CLI as that account too.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{
    BIN, HTTP_BIN, Host, Process, Run, e2e_available, free_port, unix_user, wait_listening,
};

/// Debian's account for Apache.
pub const WWW_DATA: u32 = 33;

/// Apache in a process group of its own, ended when dropped.
pub struct Apache {
    _process: Process,
    pub port: u16,
}

pub fn available() -> bool {
    e2e_available(
        Path::new("/usr/sbin/apache2").exists(),
        "/usr/sbin/apache2",
        "apache2",
    ) && e2e_available(
        unix_user() == "root",
        "root (to hand the test host to www-data, as Apache runs CGI programs)",
        "(none: run the tests as root)",
    )
}

/// The modules git-http-backend(1) names (mod_cgi, mod_alias, mod_env),
/// and what any Apache needs beside them.
const MODULES: &[&str] = &[
    "mpm_prefork",
    "authz_core",
    "alias",
    "env",
    "setenvif",
    "cgi",
];

/// What the web page's block needs (`a2enmod proxy_http` enables both).
const PROXY_MODULES: &[&str] = &["mpm_prefork", "authz_core", "proxy", "proxy_http"];

impl Apache {
    /// Starts Apache with `site`, an Apache config block written for
    /// `/usr/local/bin/git2fa-http` and `/etc/git2fa/config.toml`, after
    /// handing the host's directory to www-data.
    pub fn start(host: &Host, site: &str) -> Apache {
        let dir = host.dir.path().join("apache");
        std::fs::create_dir_all(&dir).unwrap();
        // A copy of the CGI inside the host's directory: the build
        // directory may be out of www-data's reach.
        let cgi = host.dir.path().join("git2fa-http");
        std::fs::copy(HTTP_BIN, &cgi).unwrap();
        // Beside it, the `git2fa` it hands over to when no serve decides
        // (as the package installs both in /usr/bin).
        std::os::unix::fs::symlink(BIN, host.dir.path().join("git2fa")).unwrap();
        // What Apache's CGI reads and writes becomes www-data's; the rest
        // (a work tree the test runs git in as root) stays as it is.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(host.dir.path(), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let status = Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .args([&host.root, &host.data, &host.config, &dir, &cgi])
            .status()
            .unwrap();
        assert!(status.success());
        let site = site
            .replace("/usr/local/bin/git2fa-http", &cgi.display().to_string())
            .replace(
                "/etc/git2fa/config.toml",
                &host.config.display().to_string(),
            );
        Apache::launch(&dir, MODULES, &site, free_port())
    }

    /// Apache on `port` with `site`, a block that proxies to `git2fa
    /// serve` (mod_proxy_http, as the guide has admins enable it): no CGI,
    /// so the host stays its owner's.
    pub fn start_proxy(host: &Host, site: &str, port: u16) -> Apache {
        let dir = host.dir.path().join("apache");
        std::fs::create_dir_all(&dir).unwrap();
        // Apache's children (www-data) reopen their lock file in `dir`.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(host.dir.path(), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let status = Command::new("chown")
            .args(["www-data:www-data"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        Apache::launch(&dir, PROXY_MODULES, site, port)
    }

    fn launch(dir: &Path, modules: &[&str], site: &str, port: u16) -> Apache {
        let modules: String = modules
            .iter()
            .map(|m| format!("LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"))
            .collect();
        let log = dir.join("error.log");
        let config = dir.join("httpd.conf");
        std::fs::write(
            &config,
            format!(
                "ServerRoot /etc/apache2\nServerName 127.0.0.1\n{modules}\
                 Listen 127.0.0.1:{port}\nPidFile {pid}\nErrorLog {log}\nLogLevel info\n\
                 User www-data\nGroup www-data\nMutex file:{dir}\n\
                 DocumentRoot {dir}\n{site}\n",
                pid = dir.join("httpd.pid").display(),
                log = log.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        let mut process = Process::spawn(
            Command::new("/usr/sbin/apache2")
                .args(["-DFOREGROUND", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("stderr")).unwrap()),
        );
        wait_listening(&mut process, port, "apache2", &log, None);
        Apache {
            _process: process,
            port,
        }
    }
}

/// `git2fa ARGS` as www-data, who owns the store once Apache runs.
pub fn git2fa_as_www_data(host: &Host, args: &[&str]) -> Run {
    Run::from(
        Command::new(BIN)
            .arg("--config")
            .arg(&host.config)
            .args(args)
            .env_remove("GIT2FA_CONFIG")
            .uid(WWW_DATA)
            .gid(WWW_DATA)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}
