//! The admin's side: the `git2fa` command line (`cli` parses, `args` is its
//! grammar, one module per group of commands does the work, `support` is
//! what they share), `git2fa check` (is this host set up right?) and
//! `git2fa demo` (a whole host on loopback).

pub mod check;
pub mod cli;
pub mod demo;

mod args;
mod init;
mod inspect;
mod keys;
mod migrate;
mod repos;
mod retention;
mod sessions;
mod support;
mod tokens;
mod users;
