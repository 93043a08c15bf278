//! The global configuration (`/etc/git2fa/config.toml` or `--config`).
//!
//! Every key is optional except `repos_root` and `data_dir`; unknown keys and
//! out-of-range values are errors that name the file, the line and the key.
//! `docs/config.md` documents each key; `TEMPLATE` is what `git2fa init`
//! writes.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::system::time::parse_duration;

/// Where the configuration is read from when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/git2fa/config.toml";
/// The environment variable that names the configuration file.
pub const ENV_VAR: &str = "GIT2FA_CONFIG";
/// Config and repository files larger than this are refused unread.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The validated global configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
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
}

/// How 2FA applies to git across the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GitMode {
    /// No repository requires 2FA (a user's "always use 2FA" still applies).
    Off,
    /// Repositories require 2FA as their `git2fa.toml` says.
    Flagged,
    /// Every operation on every repository requires 2FA.
    All,
}

/// What a verified 2FA session is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindSession {
    /// Any credential of the user who verified.
    User,
    /// Only the SSH key the session was opened with.
    Key,
    /// Only connections from the address the session was opened from.
    Ip,
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

/// `user@host[:port]`, as `[ssh] public_address` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAddress {
    pub user: String,
    pub host: String,
    pub port: Option<u16>,
}

impl SshAddress {
    /// Parses `user@host[:port]` (a bracketed IPv6 address as host).
    pub fn parse(text: &str) -> Result<SshAddress, String> {
        let bad = || {
            format!(
                "`{}` is not user@host[:port] like git@git.example.com:22",
                text.escape_default()
            )
        };
        let (user, rest) = text.split_once('@').ok_or_else(bad)?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port: u16 = port.parse().map_err(|_| bad())?;
                if port == 0 {
                    return Err(bad());
                }
                (host, Some(port))
            }
            _ => (rest, None),
        };
        let user_ok = !user.is_empty()
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !user_ok || !host_ok {
            return Err(bad());
        }
        Ok(SshAddress {
            user: user.to_string(),
            host: host.to_string(),
            port: port.filter(|&p| p != 22),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Daemon {
    /// The Unix socket `git2fa serve` answers hooks on, for hosts where
    /// users push as their own Unix accounts; `None` when off.
    pub socket: Option<PathBuf>,
}

/// A configuration or repository file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for FileError {}

impl FileError {
    pub fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        FileError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
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
    pub fn load(path: &Path) -> Result<Config, FileError> {
        let text = read_small_file(path)?;
        Config::parse(path, &text)
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
        })
    }

    /// The SQLite store.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("git2fa.db")
    }

    /// The key that encrypts TOTP secrets, kept apart from the store.
    pub fn secret_key_path(&self) -> PathBuf {
        self.data_dir.join("secret.key")
    }

    /// Where a git user verifies; names the repository when one is given.
    pub fn verify_url(&self, repo: Option<&str>) -> String {
        match repo {
            Some(repo) => format!(
                "{}/2fa/verify?repo={}",
                self.public_url,
                url_component(repo)
            ),
            None => format!("{}/2fa/verify", self.public_url),
        }
    }

    /// Where a user enrols an authenticator app.
    pub fn setup_url(&self) -> String {
        format!("{}/2fa/setup", self.public_url)
    }

    /// Where a user manages personal access tokens.
    pub fn tokens_url(&self) -> String {
        format!("{}/2fa/tokens", self.public_url)
    }

    /// The host name in `public_url`, for `ssh git@HOST 2fa verify`.
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

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reads a text file of at most `MAX_FILE_BYTES`.
pub fn read_small_file(path: &Path) -> Result<String, FileError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| FileError::new(path, None, format!("cannot read: {}", io_reason(&e))))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| FileError::new(path, None, format!("cannot read: {}", io_reason(&e))))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::new(path, None, "file is larger than 1 MiB"));
    }
    Ok(text)
}

/// The reason of an I/O error without the "(os error N)" noise.
pub fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not valid UTF-8".into(),
        _ => error.to_string(),
    }
}

/// Turns a TOML error into "line N: [table] key: message".
pub(crate) fn toml_error(path: &Path, text: &str, error: &toml_edit::de::Error) -> FileError {
    let message = error.message().trim().to_string();
    match error.span() {
        Some(span) => {
            let (line, key) = locate(text, span.start);
            let message = match key {
                Some(key) => format!("{key}: {message}"),
                None => message,
            };
            FileError::new(path, Some(line), message)
        }
        None => FileError::new(path, None, message),
    }
}

/// The 1-based line of byte `offset`, and the `[table] key` written there.
fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let table = before[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']')).then(|| l.to_string())
    });
    let key = if line_text.trim_start().starts_with('[') {
        Some(line_text.trim().to_string())
    } else {
        match (table, key) {
            (Some(table), Some(key)) => Some(format!("{table} {key}")),
            (_, key) => key,
        }
    };
    (line, key)
}

/// The line where `keys` (a table path) is written, if it is.
pub(crate) fn line_of_key(text: &str, keys: &[&str]) -> Option<usize> {
    let doc: toml_edit::Document<&str> = toml_edit::Document::parse(text).ok()?;
    let mut item = doc.as_item();
    for key in keys {
        item = item.get(key)?;
    }
    let span = item.span()?;
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

// The on-disk shape. Defaults here are the documented defaults.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    repos_root: PathBuf,
    data_dir: PathBuf,
    #[serde(default, deserialize_with = "public_url")]
    public_url: Option<String>,
    #[serde(default)]
    git_bin: GitBin,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    totp: RawTotp,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    ssh: RawSsh,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    daemon: RawDaemon,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawDaemon {
    socket: SocketPath,
}

/// An absolute path; `""` means none.
#[derive(Default)]
struct SocketPath(Option<PathBuf>);

impl<'de> Deserialize<'de> for SocketPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(SocketPath(None));
        }
        let path = PathBuf::from(text);
        if !path.is_absolute() {
            return Err(serde::de::Error::custom(format!(
                "`{}` is not an absolute path",
                path.display()
            )));
        }
        Ok(SocketPath(Some(path)))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    trust_remote_user: bool,
}

/// An absolute path to git.
struct GitBin(PathBuf);

impl Default for GitBin {
    fn default() -> Self {
        GitBin(PathBuf::from("/usr/bin/git"))
    }
}

impl<'de> Deserialize<'de> for GitBin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = PathBuf::from(String::deserialize(d)?);
        if !path.is_absolute() {
            return Err(serde::de::Error::custom(format!(
                "`{}` is not an absolute path",
                path.display()
            )));
        }
        Ok(GitBin(path))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPolicy {
    git: GitMode,
    repo_owners_may_flag: bool,
    session_ttl: SessionTtl,
    bind_session: BindSession,
    wait_for_verify: WaitForVerify,
    users_may_always_enforce: bool,
    #[serde(deserialize_with = "recovery_codes")]
    recovery_codes: u32,
    #[serde(deserialize_with = "max_failures")]
    max_failures: u32,
    lockout: Lockout,
    max_git_duration: MaxGitDuration,
}

impl Default for RawPolicy {
    fn default() -> Self {
        RawPolicy {
            git: GitMode::Flagged,
            repo_owners_may_flag: true,
            session_ttl: SessionTtl(3600),
            bind_session: BindSession::User,
            wait_for_verify: WaitForVerify(0),
            users_may_always_enforce: true,
            recovery_codes: 10,
            max_failures: 10,
            lockout: Lockout(900),
            max_git_duration: MaxGitDuration(3600),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTokens {
    #[serde(deserialize_with = "expiry_days")]
    default_expiry_days: u32,
    #[serde(deserialize_with = "max_expiry_days")]
    max_expiry_days: u32,
    password_for_git: bool,
}

impl Default for RawTokens {
    fn default() -> Self {
        RawTokens {
            default_expiry_days: 30,
            max_expiry_days: 365,
            password_for_git: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTotp {
    #[serde(deserialize_with = "issuer")]
    issuer: String,
    #[serde(deserialize_with = "skew")]
    skew: u32,
}

impl Default for RawTotp {
    fn default() -> Self {
        RawTotp {
            issuer: "Git".into(),
            skew: 1,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWeb {
    listen: SocketAddr,
    authenticator_apps: Vec<String>,
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            authenticator_apps: [
                "Google Authenticator (Android, iOS)",
                "Microsoft Authenticator (Android, iOS)",
                "FreeOTP or Aegis (Android)",
                "Raivo or 2FAS (iOS)",
                "1Password, Bitwarden or KeePassXC",
            ]
            .map(String::from)
            .to_vec(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSsh {
    listen: OptionalListen,
    public_address: Option<PublicSshAddress>,
}

impl Default for RawSsh {
    fn default() -> Self {
        RawSsh {
            listen: OptionalListen(Some(SocketAddr::from(([127, 0, 0, 1], 2222)))),
            public_address: None,
        }
    }
}

struct PublicSshAddress(SshAddress);

impl<'de> Deserialize<'de> for PublicSshAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SshAddress::parse(&text)
            .map(PublicSshAddress)
            .map_err(serde::de::Error::custom)
    }
}

struct OptionalListen(Option<SocketAddr>);

impl<'de> Deserialize<'de> for OptionalListen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(OptionalListen(None));
        }
        text.parse().map(|a| OptionalListen(Some(a))).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an address:port like 127.0.0.1:2222 (\"\" turns the server off)"
            ))
        })
    }
}

/// A duration key with its allowed range, in seconds.
macro_rules! bounded_duration {
    ($name:ident, $min:expr, $max:expr, $range:literal) => {
        struct $name(i64);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let seconds = parse_duration(&text).map_err(serde::de::Error::custom)?;
                if !($min..=$max).contains(&seconds) {
                    return Err(serde::de::Error::custom(format!(
                        "`{text}` is out of range ({})",
                        $range
                    )));
                }
                Ok($name(seconds))
            }
        }
    };
}

bounded_duration!(SessionTtl, 60, 7 * 86_400, "1m .. 7d");
bounded_duration!(WaitForVerify, 0, 600, "0s .. 10m");
bounded_duration!(Lockout, 1, 7 * 86_400, "1s .. 7d");
bounded_duration!(MaxGitDuration, 1, 7 * 86_400, "1s .. 7d");

fn bounded_u32<'de, D: serde::Deserializer<'de>>(
    d: D,
    min: u32,
    max: u32,
) -> Result<u32, D::Error> {
    let value = i64::deserialize(d)?;
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            serde::de::Error::custom(format!("{value} is out of range ({min} .. {max})"))
        })
}

fn recovery_codes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 0, 50)
}
fn max_failures<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 1, 1000)
}
fn expiry_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 1, 36_500)
}
fn max_expiry_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 0, 36_500)
}
fn skew<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 0, 10)
}

fn issuer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty()
        || text.len() > 64
        || text.contains(':')
        || text.chars().any(char::is_control)
    {
        return Err(serde::de::Error::custom(
            "must be 1 to 64 characters, without `:` or control characters",
        ));
    }
    Ok(text)
}

fn public_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && !host.contains(|c: char| {
                    c.is_whitespace() || c.is_control() || "?#@".contains(c)
                }) =>
        {
            Ok(Some(trimmed.to_string()))
        }
        _ => Err(serde::de::Error::custom(format!(
            "`{text}` is not an http:// or https:// URL without query or credentials"
        ))),
    }
}

/// The commented file `git2fa init` writes. `{repos_root}`, `{data_dir}`
/// and `{public_url}` are filled in.
pub const TEMPLATE: &str = r#"# git2fa configuration. Every key is documented in docs/config.md.
# Unknown keys are errors. Durations are written like 90s, 15m, 1h, 7d.

# Bare repositories live below this directory; nothing outside it is served.
repos_root = {repos_root}
# The store (git2fa.db) and the key that encrypts TOTP secrets (secret.key).
data_dir = {data_dir}
# Refusal messages point git users to <public_url>/2fa/verify.
public_url = {public_url}
# The git that git2fa-shell and git2fa-http start, by absolute path.
git_bin = "/usr/bin/git"

[policy]
# off: no repository requires 2FA; flagged: as each repository's git2fa.toml
# says; all: every operation on every repository (repo files cannot lower it).
git = "flagged"
# Repository owners may change their repository's git2fa.toml in the web page.
repo_owners_may_flag = true
# How long a verified 2FA session lasts (1m .. 7d).
session_ttl = "1h"
# What a 2FA session is good for: user (any of the user's keys and
# addresses), key (only the SSH key it was opened with), ip (only the
# address it was opened from).
bind_session = "user"
# When above 0s, a refused SSH operation or push waits this long for the
# user to verify, then continues (0s .. 10m).
wait_for_verify = "0s"
# Users may choose "always use 2FA for my account".
users_may_always_enforce = true
# Recovery codes per user (0 disables them).
recovery_codes = 10
# Wrong codes (TOTP and recovery together) before the account locks.
max_failures = 10
# How long a locked account stays locked (1s .. 7d).
lockout = "15m"
# The longest one git operation over SSH may run; then it is stopped
# (1s .. 7d). A connection opened before a user was disabled, a key removed
# or a 2FA session ended works at most this long.
max_git_duration = "1h"

[tokens]
# Personal access tokens expire after this many days unless the user says.
default_expiry_days = 30
# The longest expiry a user may choose; 0 allows tokens that never expire.
max_expiry_days = 365
# true: an enrolled user's password still works over HTTP while a 2FA
# session is open. false: over HTTP, 2FA-protected repositories need a token.
password_for_git = false

[totp]
# The name authenticator apps show for this host.
issuer = "Git"
# 30-second steps accepted either side of now (clock drift allowance).
skew = 1

[web]
# Where `git2fa serve` serves the web page and smart HTTP.
listen = "127.0.0.1:8080"
# The authenticator apps the set-up wizard suggests.
authenticator_apps = [
    "Google Authenticator (Android, iOS)",
    "Microsoft Authenticator (Android, iOS)",
    "FreeOTP or Aegis (Android)",
    "Raivo or 2FAS (iOS)",
    "1Password, Bitwarden or KeePassXC",
]
# Reverse proxies in front of `git2fa serve` whose X-Forwarded-For header
# names the client (for throttling, the audit log, bind_session = "ip").
trusted_proxies = []

[ssh]
# The embedded SSH server of `git2fa serve`; "" turns it off.
listen = "127.0.0.1:2222"
# What messages tell users to ssh to, user@host[:port]. Default: git@ the
# host of public_url, with the port of listen above when it is not 22. Set
# it when users reach SSH elsewhere (OpenSSH on port 22, a load balancer).
# public_address = "git@git.example.com:22"

[http]
# Let the hook take the user from REMOTE_USER when a web server authenticated
# git over HTTP by itself (without git2fa-http). Only for such setups.
trust_remote_user = false

[daemon]
# Hosts where users push over SSH as their own Unix accounts: `git2fa serve`
# answers the hooks on this Unix socket and learns each caller's account from
# the kernel. Hooks run by any account but data_dir's owner ask it. Unset:
# no socket, and such hooks refuse (they cannot read the store).
# socket = "/run/git2fa/hook.sock"
"#;

/// Renders `TEMPLATE` with the given values, quoted as TOML strings.
pub fn render_template(repos_root: &Path, data_dir: &Path, public_url: &str) -> String {
    let quote = |s: &str| toml_edit::Value::from(s).to_string().trim().to_string();
    TEMPLATE
        .replace("{repos_root}", &quote(&repos_root.to_string_lossy()))
        .replace("{data_dir}", &quote(&data_dir.to_string_lossy()))
        .replace("{public_url}", &quote(public_url))
}

#[cfg(test)]
mod tests;
