//! Connecting to PostgreSQL: the url, the password file, the timeouts,
//! and TLS as the url's `sslmode` asks, with rustls.
//!
//! The modes are libpq's (PostgreSQL's documentation, "SSL Support",
//! table "SSL Mode Descriptions"):
//!
//! - `disable`: plain text.
//! - `prefer`: TLS if the server offers it, else plain text; the
//!   certificate is not checked. The default for a url on this machine (a
//!   Unix socket, `localhost`, a loopback address), as in libpq.
//! - the default for a url naming another host is `require`, or
//!   `verify-full` when `sslrootcert` names a CA: unlike libpq's `prefer`,
//!   a machine in the middle that refuses TLS cannot make it plain text
//!   (and read the password exchange and the SQL).
//! - `require`: TLS or no connection; the certificate is not checked,
//!   unless `sslrootcert` names a file, which makes it `verify-ca`, as in
//!   libpq.
//! - `verify-ca`: TLS, and the server's certificate chains to a trusted
//!   root.
//! - `verify-full`: `verify-ca`, and the certificate names the url's host.
//!
//! Trusted roots come from `sslrootcert` (a PEM file), or else from the
//! system's bundle, `/etc/ssl/certs/ca-certificates.crt` (Debian's
//! `ca-certificates`). tokio-postgres itself knows only `disable`,
//! `prefer` and `require`, and no `sslrootcert`: the url's TLS settings are
//! taken out of it here, and the connector does the checking.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::StoreError;
use super::pg::PgClient;
use super::tls::{Connector, Mode, Tls, client_config};

type Result<T> = std::result::Result<T, StoreError>;

/// `[store] timeout` of this process's configuration, in milliseconds:
/// how long any one access to the store may take (`Location::of` sets it
/// from the configuration; 5 s until then).
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(5_000);

/// How long any one access to the store may take: a wait for the write
/// lock, a PostgreSQL exchange (connecting included), a wait for a pooled
/// connection.
pub fn timeout() -> Duration {
    Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

/// Sets `timeout()` for this process.
pub fn set_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// How long connecting to PostgreSQL may take, unless the url sets
/// `connect_timeout`: a git command waits no longer for an unreachable
/// server before it is refused.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long PostgreSQL lets a transaction sit idle before it ends the
/// session (and the write lock with it): longer than the store socket's
/// own limit for its clients (`wire::IDLE`).
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(15);

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` url: the url
/// left for tokio-postgres (with `sslmode=disable`, `prefer` or
/// `require`), and the settings.
pub fn split_url(url: &str) -> Result<(String, Tls)> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = Some(match value {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(StoreError::Config(format!(
                            "url: sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                        )));
                    }
                })
            }
            "sslrootcert" => {
                let path = crate::system::url::percent_decode(value).ok_or_else(|| {
                    StoreError::Config(format!(
                        "url: `{value}` is not a valid percent-encoded value"
                    ))
                })?;
                root_cert = Some(PathBuf::from(path));
            }
            _ => kept.push(pair),
        }
    }
    let mode = match (mode, &root_cert) {
        (Some(Mode::Require), Some(_)) => Mode::VerifyCa,
        (Some(mode), _) => mode,
        (None, _) if !reaches_another_host(url) => Mode::Prefer,
        (None, Some(_)) => Mode::VerifyFull,
        (None, None) => Mode::Require,
    };
    kept.push(match mode {
        Mode::Disable => "sslmode=disable",
        Mode::Prefer => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((
        format!("{base}?{}", kept.join("&")),
        Tls { mode, root_cert },
    ))
}

/// What `git2fa check` says of a url whose TLS would let a server in the
/// middle pose as the database: a host that is not this machine, reached
/// without checking its certificate.
pub fn tls_warning(url: &str) -> Option<String> {
    let (_, tls) = split_url(url).ok()?;
    if matches!(tls.mode, Mode::VerifyCa | Mode::VerifyFull) {
        return None;
    }
    let explicit = url.contains("sslmode=");
    let mode = match tls.mode {
        Mode::Disable => "disable",
        Mode::Prefer => "prefer",
        _ if explicit => "require",
        _ => "require (the default for another host)",
    };
    reaches_another_host(url).then(|| {
        format!(
            "[store] url: sslmode={mode} does not check the database server's certificate; between hosts use sslmode=verify-full"
        )
    })
}

/// Whether the url names a host other than this machine: not a Unix
/// socket, `localhost` or a loopback address.
fn reaches_another_host(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    hosts.split(',').any(|host| {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.split(':').next().unwrap_or(""),
        };
        let local = name.is_empty()
            || name.eq_ignore_ascii_case("localhost")
            || name.starts_with('/')
            || name.to_ascii_uppercase().starts_with("%2F")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        !local
    })
}

/// Connects to PostgreSQL. The url is libpq's (`postgres://user@host:port/db?...`),
/// with TLS as its `sslmode` says; the password, if any, comes from
/// `password_file` (its first line). Every exchange, connecting included,
/// gets `timeout` (`[store] timeout`: `pg`), and every transaction sets its
/// own statement, lock and idle timeouts (unless the url's `options` set
/// them): a git command is refused, not left hanging, and no transaction
/// holds the write lock of every host for long.
///
/// A url naming several hosts (`host1,host2`) with
/// `target_session_attrs=read-write` is tried host by host, and the first
/// one that takes writes is used: decisions are never read from a replica.
pub fn client(url: &str, password_file: Option<&Path>, timeout: Duration) -> Result<PgClient> {
    let (url, settings) = split_url(url)?;
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Config(format!("url: {e}")))?;
    if let Some(file) = password_file {
        let text =
            std::fs::read_to_string(file).map_err(|e| StoreError::Io(file.to_path_buf(), e))?;
        config.password(text.lines().next().unwrap_or(""));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeout.min(CONNECT_TIMEOUT));
    }
    if config.get_application_name().is_none() {
        config.application_name("git2fa");
    }
    // A transaction's timeouts, set with `SET LOCAL` when it begins: not in
    // the startup packet's `options`, which PgBouncer refuses ("unsupported
    // startup parameter: options") or, told to ignore it, drops.
    let given = config.get_options().unwrap_or("").to_string();
    let idle = IDLE_IN_TRANSACTION.max(timeout * 3);
    let mut set = String::new();
    for (name, value) in [
        ("statement_timeout", timeout),
        ("lock_timeout", timeout),
        ("idle_in_transaction_session_timeout", idle),
    ] {
        if !given.contains(name) {
            set.push_str(&format!("SET LOCAL {name} = {}; ", value.as_millis()));
        }
    }
    match settings.mode {
        Mode::Disable => PgClient::connect(&config, tokio_postgres::NoTls, timeout, set),
        _ => PgClient::connect(
            &config,
            Connector::new(client_config(&settings)?),
            timeout,
            set,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Attack: a machine between a front end and its database answers the
    // client's TLS request with "no" (or drops it). With libpq's default,
    // `prefer`, the client then went on in plain text: the password
    // exchange and every statement (sessions, token hashes, audit rows)
    // crossed the network readable and changeable. Without an sslmode, a
    // url naming another host now needs TLS (and checks the certificate
    // when a CA is given); only a url on this machine keeps `prefer`.
    #[test]
    fn without_an_sslmode_another_host_gets_tls_or_no_connection() {
        for (url, mode) in [
            ("postgres://g@db.example.com/x", Mode::Require),
            ("postgres://g@10.0.0.5:5432/x", Mode::Require),
            ("postgres://g@127.0.0.1,db.example.com/x", Mode::Require),
            (
                "postgres://g@db.example.com/x?sslrootcert=/etc/ca.pem",
                Mode::VerifyFull,
            ),
            ("postgres://g@127.0.0.1:5432/x", Mode::Prefer),
            ("postgres://g@[::1]/x", Mode::Prefer),
            ("postgres://g@localhost/x", Mode::Prefer),
            ("postgres://g@%2Frun%2Fpostgresql/x", Mode::Prefer),
            ("postgres:///x?host=/run/postgresql", Mode::Prefer),
            // What the admin wrote stands.
            ("postgres://g@db.example.com/x?sslmode=prefer", Mode::Prefer),
            (
                "postgres://g@db.example.com/x?sslmode=disable",
                Mode::Disable,
            ),
        ] {
            let (rest, tls) = split_url(url).unwrap();
            assert_eq!(tls.mode, mode, "{url}");
            let sent = match mode {
                Mode::Disable => "sslmode=disable",
                Mode::Prefer => "sslmode=prefer",
                _ => "sslmode=require",
            };
            assert!(rest.ends_with(sent), "{url}: {rest}");
        }
    }

    #[test]
    fn check_warns_of_unchecked_tls_to_another_host_only() {
        for url in [
            "postgres://g@db.example.com/x",
            "postgres://g@db.example.com:5432/x?sslmode=require",
            "postgres://g@127.0.0.1,10.0.0.5/x?sslmode=disable",
        ] {
            assert!(tls_warning(url).is_some(), "{url}");
        }
        for url in [
            "postgres://g@db.example.com/x?sslmode=verify-full",
            "postgres://g@db.example.com/x?sslmode=verify-ca&sslrootcert=/ca.pem",
            "postgres://g@127.0.0.1:5432/x",
            "postgres://g@[::1]:5432/x?sslmode=disable",
            "postgres://g@localhost/x",
            "postgres://g@%2Frun%2Fpostgresql/x",
        ] {
            assert_eq!(tls_warning(url), None, "{url}");
        }
    }

    #[test]
    fn the_url_keeps_what_tokio_postgres_reads_and_gives_the_rest() {
        let (url, tls) =
            split_url("postgres://g@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=/etc/ca%20x.pem")
                .unwrap();
        assert_eq!(
            url,
            "postgres://g@db:5432/x?application_name=a&sslmode=require"
        );
        assert_eq!(
            tls,
            Tls {
                mode: Mode::VerifyFull,
                root_cert: Some("/etc/ca x.pem".into())
            }
        );
        let (url, tls) = split_url("postgres://g@localhost/x").unwrap();
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgres://g@localhost/x?sslmode=prefer", Mode::Prefer)
        );
        // libpq: require with a root certificate checks the chain.
        let (_, tls) = split_url("postgres://g@db/x?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(tls.mode, Mode::VerifyCa);
        assert!(matches!(
            split_url("postgres://g@db/x?sslmode=allow-anything"),
            Err(StoreError::Config(_))
        ));
        assert!(matches!(
            split_url("postgres://g@db/x?sslrootcert=%zz"),
            Err(StoreError::Config(_))
        ));
    }
}
