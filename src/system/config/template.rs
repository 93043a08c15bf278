//! The configuration `git2fa init` writes: every key, commented.

use std::path::Path;

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
# A security-key SSH key (ssh-keygen -t ed25519-sk) marked by its owner or
# an admin is the second factor when used through OpenSSH: "off" or
# "counts-as-2fa".
hardware_keys = "off"
# Refs whose pushes need a marked security key with its PIN on that very
# connection, whatever 2FA sessions are open: ["refs/tags/v*"].
require_hardware_key = []
# Users may mark their own security keys in the web page (git2fa cannot
# tell a device from software that claims to be one); false: only admins
# mark keys, with git2fa key add --hardware and git2fa key mark.
users_may_mark_keys = true

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

[log]
# Every log line of git2fa-shell, git2fa-http, the hooks and
# authorized-keys (which have no terminal of their own to write to) is also
# appended to this file, with its time and level ("" for none; a file the
# account running git may append to). GIT2FA_LOG_FILE overrides it.
file = ""
# "syslog": every audit row, once committed, also goes to syslog (facility
# auth) as one line of key=value fields. "off": the store alone.
audit = "off"
# Where syslog listens ("" for nowhere).
syslog_socket = "/dev/log"

[metrics]
# Where `git2fa serve` serves Prometheus metrics at /metrics ("" for off),
# e.g. "127.0.0.1:9464".
listen = ""
# A file (mode 0600) holding a token scrapers must send as
# "Authorization: Bearer TOKEN" ("" for none).
bearer_token_file = ""

[oauth]
# Git credential helpers that may sign in through the browser (OAuth 2.0
# with PKCE, redirects to this computer only): their client ids. What they
# get works for git over HTTPS until the 2FA session it came from ends.
# Add "git-credential-manager" for Git Credential Manager; [] turns it off.
clients = ["git-credential-oauth"]

# [store]
# Where the store lives. Unset: SQLite at data_dir/git2fa.db. Several
# front-end hosts share one store in PostgreSQL (admin guide, "Several
# front-end hosts"): its url here, its password in password_file (mode
# 0600), and the same secret.key on every host.
# url = "postgres://git2fa@db.example.com:5432/git2fa?sslmode=verify-full"
# password_file = "/etc/git2fa/db-password"
"#;

/// Renders `TEMPLATE` with the given values, quoted as TOML strings.
pub fn render_template(repos_root: &Path, data_dir: &Path, public_url: &str) -> String {
    let quote = |s: &str| toml_edit::Value::from(s).to_string().trim().to_string();
    TEMPLATE
        .replace("{repos_root}", &quote(&repos_root.to_string_lossy()))
        .replace("{data_dir}", &quote(&data_dir.to_string_lossy()))
        .replace("{public_url}", &quote(public_url))
}
