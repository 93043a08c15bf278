//! Integration tests: the real binaries on a temporary host.

// Tests fail loudly on purpose: an unwrap here is an assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_guide;
mod admin_story;
mod bad_input;
mod browser;
mod check;
mod connection_lifetime;
mod daemon;
mod demo;
mod enumeration;
mod faults;
mod hardware_keys;
mod harness;
mod hooks;
mod host_untouched;
mod hostile_http;
mod hostile_shell;
mod http;
mod key_reuse;
mod layers;
mod layout;
mod licences;
mod logs;
mod metrics;
mod other_clients;
mod package_scripts;
mod planted_links;
mod postgres_tls;
mod properties;
mod races;
mod readme;
mod retention;
mod security_keys;
mod serve;
mod serve_decides;
mod serve_load;
mod several_hosts;
mod slow_clients;
mod ssh;
mod store_io;
mod token_conventions;
mod web;
mod web_blocks;
mod web_configs;
