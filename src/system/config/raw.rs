//! The configuration file's shape, as serde reads it: every key, its
//! default (the documented one) and its allowed range. `Config::load`
//! turns it into `Config`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::fields;
use crate::system::time::parse_duration;

// Kinds of values, here and in `Config`.

/// `[log] audit`: where audit rows go besides the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditLog {
    #[default]
    Off,
    Syslog,
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

/// Whether a use of a marked hardware-backed SSH key counts as the second
/// factor (`[policy] hardware_keys`, and a repository's `git2fa.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HardwareKeys {
    #[serde(rename = "off")]
    Off,
    #[serde(rename = "counts-as-2fa")]
    CountsAs2fa,
}

impl HardwareKeys {
    pub fn as_str(self) -> &'static str {
        match self {
            HardwareKeys::Off => "off",
            HardwareKeys::CountsAs2fa => "counts-as-2fa",
        }
    }
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

// The on-disk shape. Defaults here are the documented defaults.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) repos_root: PathBuf,
    pub(super) data_dir: PathBuf,
    #[serde(default, deserialize_with = "fields::public_url")]
    pub(super) public_url: Option<String>,
    #[serde(default)]
    pub(super) git_bin: GitBin,
    #[serde(default)]
    pub(super) policy: RawPolicy,
    #[serde(default)]
    pub(super) tokens: RawTokens,
    #[serde(default)]
    pub(super) totp: RawTotp,
    #[serde(default)]
    pub(super) web: RawWeb,
    #[serde(default)]
    pub(super) ssh: RawSsh,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) daemon: RawDaemon,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    #[serde(default)]
    pub(super) oauth: RawOauth,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawOauth {
    pub(super) clients: Vec<String>,
}

impl Default for RawOauth {
    fn default() -> Self {
        RawOauth {
            clients: vec!["git-credential-oauth".into()],
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMetrics {
    pub(super) listen: OptionalListen,
    pub(super) bearer_token_file: OptionalPath,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    pub(super) file: OptionalPath,
    pub(super) audit: AuditLog,
    pub(super) syslog_socket: OptionalPath,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            file: OptionalPath(None),
            audit: AuditLog::Off,
            syslog_socket: OptionalPath(Some(PathBuf::from("/dev/log"))),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLimits {
    pub(super) git_operations: LimitCount,
    pub(super) password_hashes: LimitCount,
}

/// A count for `[limits]`: 0 (sized for the host) to 100000.
#[derive(Default)]
pub(super) struct LimitCount(pub(super) usize);

impl<'de> Deserialize<'de> for LimitCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        if n > 100_000 {
            return Err(serde::de::Error::custom(format!(
                "{n} is out of range (0 .. 100000; 0 sizes it for this host)"
            )));
        }
        Ok(LimitCount(n as usize))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStore {
    #[serde(deserialize_with = "fields::store_url")]
    pub(super) url: String,
    pub(super) password_file: Option<PathBuf>,
    pub(super) timeout: StoreTimeout,
}

impl Default for StoreTimeout {
    fn default() -> StoreTimeout {
        StoreTimeout(5)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDaemon {
    pub(super) socket: OptionalPath,
}

/// An absolute path; `""` means none.
#[derive(Default)]
pub(super) struct OptionalPath(pub(super) Option<PathBuf>);

impl<'de> Deserialize<'de> for OptionalPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(OptionalPath(None));
        }
        let path = PathBuf::from(text);
        if !path.is_absolute() {
            return Err(serde::de::Error::custom(format!(
                "`{}` is not an absolute path",
                path.display()
            )));
        }
        Ok(OptionalPath(Some(path)))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHttp {
    pub(super) trust_remote_user: bool,
}

/// An absolute path to git.
pub(super) struct GitBin(pub(super) PathBuf);

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
pub(super) struct RawPolicy {
    pub(super) git: GitMode,
    pub(super) repo_owners_may_flag: bool,
    pub(super) session_ttl: SessionTtl,
    pub(super) bind_session: BindSession,
    pub(super) wait_for_verify: WaitForVerify,
    pub(super) users_may_always_enforce: bool,
    #[serde(deserialize_with = "fields::recovery_codes")]
    pub(super) recovery_codes: u32,
    #[serde(deserialize_with = "fields::max_failures")]
    pub(super) max_failures: u32,
    pub(super) lockout: Lockout,
    pub(super) max_git_duration: MaxGitDuration,
    pub(super) hardware_keys: HardwareKeys,
    pub(super) require_hardware_key: Vec<String>,
    pub(super) users_may_mark_keys: bool,
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
            hardware_keys: HardwareKeys::Off,
            require_hardware_key: Vec::new(),
            users_may_mark_keys: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTokens {
    #[serde(deserialize_with = "fields::expiry_days")]
    pub(super) default_expiry_days: u32,
    #[serde(deserialize_with = "fields::max_expiry_days")]
    pub(super) max_expiry_days: u32,
    pub(super) password_for_git: bool,
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
pub(super) struct RawTotp {
    #[serde(deserialize_with = "fields::issuer")]
    pub(super) issuer: String,
    #[serde(deserialize_with = "fields::skew")]
    pub(super) skew: u32,
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
pub(super) struct RawWeb {
    pub(super) listen: SocketAddr,
    pub(super) authenticator_apps: Vec<String>,
    pub(super) trusted_proxies: Vec<std::net::IpAddr>,
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
pub(super) struct RawSsh {
    pub(super) listen: OptionalListen,
    pub(super) public_address: Option<PublicSshAddress>,
}

impl Default for RawSsh {
    fn default() -> Self {
        RawSsh {
            listen: OptionalListen(Some(SocketAddr::from(([127, 0, 0, 1], 2222)))),
            public_address: None,
        }
    }
}

pub(super) struct PublicSshAddress(pub(super) SshAddress);

impl<'de> Deserialize<'de> for PublicSshAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SshAddress::parse(&text)
            .map(PublicSshAddress)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Default)]
pub(super) struct OptionalListen(pub(super) Option<SocketAddr>);

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
        pub(super) struct $name(pub(super) i64);
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
bounded_duration!(StoreTimeout, 1, 60, "1s .. 60s");
