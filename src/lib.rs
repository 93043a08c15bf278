//! git2fa: a second factor (TOTP) in front of Git on hosts of bare repositories.
//!
//! The binaries in `src/bin/` are thin; everything lives here, one module per
//! concern. Only `store` speaks SQL; `decision` does no I/O.

pub mod atomic_file;
pub mod check;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod decision;
pub mod demo;
pub mod exec;
pub mod gate;
pub mod glob;
pub mod hook;
pub mod http;
pub mod http_request;
pub mod identity;
pub mod install;
pub mod names;
pub mod repo_path;
pub mod repo_policy;
pub mod serve;
pub mod shell;
pub mod ssh_command;
pub mod sshkey;
pub mod store;
pub mod syslog;
pub mod time;
pub mod token;
pub mod totp;
pub mod twofactor;
pub mod web;
