//! Bare repositories on disk: resolving a name to a directory (`path`),
//! the repository's `git2fa.toml` (`policy`, with ref patterns in `glob`),
//! and git2fa's hook stubs (`hooks`).

pub mod glob;
pub mod hooks;
pub mod path;
pub mod policy;
