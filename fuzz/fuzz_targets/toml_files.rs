//! The global config and a repository's git2fa.toml: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = git2fa::config::Config::parse(std::path::Path::new("config.toml"), text);
        let _ = git2fa::repo_policy::RepoPolicy::parse(std::path::Path::new("git2fa.toml"), text);
    }
});
