//! The global configuration (`/etc/git2fa/config.toml` or `--config`).
//!
//! Every key is optional except `repos_root` and `data_dir`; unknown keys and
//! out-of-range values are errors that name the file, the line and the key.
//! `docs/config.md` documents each key; `TEMPLATE` is what `git2fa init`
//! writes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::system::files::{FileError, line_of_key, read_small_file, toml_error};

mod fields;
mod raw;
mod template;

use raw::*;
pub use raw::{AuditLog, BindSession, GitMode, HardwareKeys, SshAddress};
pub use template::{TEMPLATE, render_template};

/// Where the configuration is read from when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/git2fa/config.toml";
/// The environment variable that names the configuration file.
pub const ENV_VAR: &str = "GIT2FA_CONFIG";

/// The validated global configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's text: a shim and `git2fa serve` decide alike
    /// only when they read the same configuration (`transport::ask`).
    pub digest: [u8; 32],
    pub repos_root: PathBuf,
    pub data_dir: PathBuf,
    /// Without a trailing slash, e.g. `https://git.example.com`.
    pub public_url: String,
    /// The git binary the shims start, by absolute path.
    pub git_bin: PathBuf,
    pub policy: Policy,
    pub tokens: Tokens,
    pub totp: Totp,
    pub web: Web,
    pub ssh: Ssh,
    pub http: Http,
    pub daemon: Daemon,
    pub store: StoreConfig,
    pub limits: Limits,
    pub log: Log,
    pub metrics: Metrics,
    pub oauth: Oauth,
}

/// `[oauth]`: git credential helpers that may sign in through the browser.
#[derive(Debug, Clone)]
pub struct Oauth {
    /// The public clients' ids; empty turns the sign-in off.
    pub clients: Vec<String>,
}

/// Prometheus metrics of `git2fa serve` (`[metrics]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Where `/metrics` is served; `None`: off.
    pub listen: Option<SocketAddr>,
    /// A file holding the token scrapers must send (`Authorization:
    /// Bearer …`); `None`: none needed.
    pub bearer_token_file: Option<PathBuf>,
}

/// Where log lines and audit rows go besides the defaults (`[log]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    /// Every log line of the shims, hooks and `authorized-keys` is also
    /// appended here (`GIT2FA_LOG_FILE` overrides it).
    pub file: Option<PathBuf>,
    /// Every audit row, once committed, also goes to syslog.
    pub audit: AuditLog,
    /// The syslog socket; `None`: no syslog.
    pub syslog_socket: Option<PathBuf>,
}

/// What `git2fa serve` does at once, at most (`[limits]`): past a limit it
/// refuses at once, saying the server is busy. 0 is "sized for this host",
/// resolved when asked (the shims, which never ask, do not count cores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    configured_git_operations: usize,
    configured_password_hashes: usize,
}

impl Limits {
    fn resolve(git_operations: usize, password_hashes: usize) -> Limits {
        Limits {
            configured_git_operations: git_operations,
            configured_password_hashes: password_hashes,
        }
    }

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Git operations under way at once (SSH commands and `/git/`
    /// requests): 256 per core unless set.
    pub fn git_operations(&self) -> usize {
        match self.configured_git_operations {
            0 => 256 * Limits::cores(),
            n => n,
        }
    }

    /// Password hashes computed at once (each takes 19 MiB and a core):
    /// one per core unless set.
    pub fn password_hashes(&self) -> usize {
        match self.configured_password_hashes {
            0 => Limits::cores(),
            n => n,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub git: GitMode,
    pub repo_owners_may_flag: bool,
    /// Seconds a 2FA session stays open.
    pub session_ttl: i64,
    pub bind_session: BindSession,
    /// Seconds a refused operation waits for the user to verify; 0 = no wait.
    pub wait_for_verify: i64,
    pub users_may_always_enforce: bool,
    /// How many recovery codes a user gets; 0 disables them.
    pub recovery_codes: u32,
    pub max_failures: u32,
    /// Seconds an account stays locked after `max_failures`.
    pub lockout: i64,
    /// Seconds one git operation over SSH may run before it is stopped:
    /// how long a connection opened before a disable, a key removal or the
    /// end of a session keeps working.
    pub max_git_duration: i64,
    pub hardware_keys: HardwareKeys,
    /// Ref patterns whose pushes need a marked hardware key with user
    /// verification on the very connection.
    pub require_hardware_key: Vec<String>,
    /// Users may mark their own security keys in the web page; `false`:
    /// only admins do (`git2fa key add --hardware`, `key mark`).
    pub users_may_mark_keys: bool,
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub default_expiry_days: u32,
    /// 0 = tokens without expiry are allowed.
    pub max_expiry_days: u32,
    pub password_for_git: bool,
}

#[derive(Debug, Clone)]
pub struct Totp {
    pub issuer: String,
    pub skew: u32,
}

#[derive(Debug, Clone)]
pub struct Web {
    pub listen: SocketAddr,
    /// The authenticator apps the set-up wizard suggests.
    pub authenticator_apps: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone)]
pub struct Http {
    /// The hook may take the user from `REMOTE_USER` (set by a web server
    /// that authenticated the user itself) when no git2fa shim set one.
    pub trust_remote_user: bool,
}

#[derive(Debug, Clone)]
pub struct Ssh {
    /// `None` when `listen = ""` turns the embedded server off.
    pub listen: Option<SocketAddr>,
    /// What messages tell users to ssh to; `None`: the default (see
    /// `Config::ssh_address`).
    pub public_address: Option<SshAddress>,
}

#[derive(Debug, Clone)]
pub struct Daemon {
    /// The Unix socket `git2fa serve` answers hooks on, for hosts where
    /// users push as their own Unix accounts; `None` when off.
    pub socket: Option<PathBuf>,
}

/// Where the store lives (`[store]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `""`: SQLite at `<data_dir>/git2fa.db`; otherwise a `postgres://` url.
    pub url: String,
    /// The file holding the PostgreSQL password.
    pub password_file: Option<PathBuf>,
    /// Seconds any one access to the store may take (a lock waited for, a
    /// PostgreSQL exchange, connecting included) before the operation is
    /// refused as "2FA check unavailable".
    pub timeout: i64,
}

impl Config {
    /// Finds the configuration file: `--config`, then `$GIT2FA_CONFIG`, then
    /// the default path.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(path) = explicit {
            return path.to_path_buf();
        }
        match std::env::var_os(ENV_VAR) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => PathBuf::from(DEFAULT_PATH),
        }
    }

    /// Reads and validates the configuration file at `path`.
    /// Reads the config file, and applies its `[log]` to this process's
    /// log lines (every program reads its config here).
    pub fn load(path: &Path) -> Result<Config, FileError> {
        let text = read_small_file(path)?;
        let config = Config::parse(path, &text)?;
        crate::system::syslog::configure(
            config.log.file.as_deref(),
            config.log.syslog_socket.as_deref(),
            config.log.audit == AuditLog::Syslog,
        );
        Ok(config)
    }

    /// Validates configuration text; `path` is only used in messages and
    /// to resolve relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, FileError> {
        let raw: RawConfig =
            toml_edit::de::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let cross = |keys: &[&str], message: String| {
            FileError::new(
                path,
                line_of_key(text, keys),
                format!("{}: {message}", keys.join(".")),
            )
        };
        if raw.oauth.clients.len() > 20 {
            return Err(cross(
                &["oauth", "clients"],
                format!(
                    "{} clients; at most 20 are allowed",
                    raw.oauth.clients.len()
                ),
            ));
        }
        for client in &raw.oauth.clients {
            if client.is_empty()
                || client.len() > 100
                || !client.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
            {
                return Err(cross(
                    &["oauth", "clients"],
                    format!(
                        "`{}` is not a client id (1 to 100 visible characters, no quotes)",
                        client.escape_default()
                    ),
                ));
            }
        }
        let patterns = &raw.policy.require_hardware_key;
        if patterns.len() > crate::system::names::MAX_REF_PATTERNS {
            return Err(cross(
                &["policy", "require_hardware_key"],
                format!(
                    "{} patterns; at most {} are allowed",
                    patterns.len(),
                    crate::system::names::MAX_REF_PATTERNS
                ),
            ));
        }
        for pattern in patterns {
            crate::system::names::check_ref_pattern(pattern)
                .map_err(|m| cross(&["policy", "require_hardware_key"], m))?;
        }
        if raw.tokens.max_expiry_days != 0
            && raw.tokens.default_expiry_days > raw.tokens.max_expiry_days
        {
            return Err(cross(
                &["tokens", "default_expiry_days"],
                format!(
                    "{} is more than max_expiry_days ({})",
                    raw.tokens.default_expiry_days, raw.tokens.max_expiry_days
                ),
            ));
        }
        let listen = raw.web.listen;
        let public_url = match raw.public_url {
            Some(url) => url,
            None => format!("http://{listen}"),
        };
        Ok(Config {
            path: path.to_path_buf(),
            digest: {
                use sha2::Digest;
                sha2::Sha256::digest(text.as_bytes()).into()
            },
            repos_root: absolute(base, &raw.repos_root),
            data_dir: absolute(base, &raw.data_dir),
            public_url,
            git_bin: raw.git_bin.0,
            policy: Policy {
                git: raw.policy.git,
                repo_owners_may_flag: raw.policy.repo_owners_may_flag,
                session_ttl: raw.policy.session_ttl.0,
                bind_session: raw.policy.bind_session,
                wait_for_verify: raw.policy.wait_for_verify.0,
                users_may_always_enforce: raw.policy.users_may_always_enforce,
                recovery_codes: raw.policy.recovery_codes,
                max_failures: raw.policy.max_failures,
                lockout: raw.policy.lockout.0,
                max_git_duration: raw.policy.max_git_duration.0,
                hardware_keys: raw.policy.hardware_keys,
                require_hardware_key: raw.policy.require_hardware_key,
                users_may_mark_keys: raw.policy.users_may_mark_keys,
            },
            tokens: Tokens {
                default_expiry_days: raw.tokens.default_expiry_days,
                max_expiry_days: raw.tokens.max_expiry_days,
                password_for_git: raw.tokens.password_for_git,
            },
            totp: Totp {
                issuer: raw.totp.issuer,
                skew: raw.totp.skew,
            },
            web: Web {
                listen,
                authenticator_apps: raw.web.authenticator_apps,
                trusted_proxies: raw.web.trusted_proxies,
            },
            ssh: Ssh {
                listen: raw.ssh.listen.0,
                public_address: raw.ssh.public_address.map(|a| a.0),
            },
            http: Http {
                trust_remote_user: raw.http.trust_remote_user,
            },
            daemon: Daemon {
                socket: raw.daemon.socket.0,
            },
            store: StoreConfig {
                url: raw.store.url,
                password_file: raw
                    .store
                    .password_file
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| absolute(base, &p)),
                timeout: raw.store.timeout.0,
            },
            limits: Limits::resolve(raw.limits.git_operations.0, raw.limits.password_hashes.0),
            log: Log {
                file: raw.log.file.0,
                audit: raw.log.audit,
                syslog_socket: raw.log.syslog_socket.0,
            },
            metrics: Metrics {
                listen: raw.metrics.listen.0,
                bearer_token_file: raw.metrics.bearer_token_file.0,
            },
            oauth: Oauth {
                clients: raw.oauth.clients,
            },
        })
    }

    /// The SQLite store (when `[store] url` is empty).
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("git2fa.db")
    }

    /// The key that encrypts TOTP secrets, kept apart from the store.
    pub fn secret_key_path(&self) -> PathBuf {
        self.data_dir.join("secret.key")
    }

    /// Where users ssh to: `[ssh] public_address`, else `git@` the
    /// public URL's host, with the embedded server's port when it listens
    /// on another port than 22.
    pub fn ssh_address(&self) -> SshAddress {
        if let Some(address) = &self.ssh.public_address {
            return address.clone();
        }
        SshAddress {
            user: "git".into(),
            host: self.public_host().to_string(),
            port: self.ssh.listen.map(|l| l.port()).filter(|&p| p != 22),
        }
    }

    /// An ssh command line as a user types it: `ssh [-p PORT] USER@HOST
    /// ARGS`.
    pub fn ssh_hint(&self, args: &str) -> String {
        let address = self.ssh_address();
        let port = address.port.map_or(String::new(), |p| format!("-p {p} "));
        format!("ssh {port}{}@{} {args}", address.user, address.host)
    }

    pub fn public_host(&self) -> &str {
        let rest = self
            .public_url
            .split_once("://")
            .map_or(self.public_url.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        // Drop a port, but keep a bracketed IPv6 address whole.
        match authority.rfind(':') {
            Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
            _ => authority,
        }
    }
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests;
