//! git2fa: a second factor in front of Git on hosts of bare repositories.
//!
//! The binaries in `src/bin/` are thin; everything lives here, in layers.
//! A git operation flows from the top to the bottom of this list and its
//! answer back up; a module uses only modules listed below its own layer
//! (`tests/it/layers.rs` checks it). `docs/architecture.md` draws the flow.
//!
//! - [`admin`]: the `git2fa` command line, `check` and `demo`.
//! - [`serve`]: `git2fa serve`, one process holding the router (web page and
//!   smart HTTP), the embedded SSH server and the hook socket.
//! - [`web`]: the web page: log in, set up and verify 2FA, tokens, keys.
//! - [`transport`]: where git operations come in: the SSH forced command
//!   (`git2fa-shell`), the CGI (`git2fa-http`), the hook (`git2fa-hook`);
//!   each turns its request into an operation and asks `authz`. Only
//!   `transport::exec` starts git.
//! - [`authz`]: the request's vocabulary, the pure decision, its messages,
//!   the gate that gathers facts and audits, and verifying a second factor.
//! - [`repo`]: repositories on disk: paths, `git2fa.toml`, hook stubs.
//! - [`store`]: users, sessions, tokens, keys, audit. Only `store` speaks SQL.
//! - [`domain`]: the facts decided and recorded about: users, keys,
//!   tokens, sessions, the audit row (plain data).
//! - [`factor`]: TOTP, tokens, SSH keys and the crypto under them.
//! - [`system`]: configuration, files, time, names, syslog.

pub mod admin;
pub mod serve;
pub mod web;

pub mod transport;

pub mod authz;

pub mod repo;
pub mod store;

pub mod domain;
pub mod factor;

pub mod system;
