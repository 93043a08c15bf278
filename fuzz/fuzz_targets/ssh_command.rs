//! SSH_ORIGINAL_COMMAND: no panic; an accepted git command names a plain path.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        if let Ok(git2fa::ssh_command::SshCommand::Git { repo, .. }) = git2fa::ssh_command::parse(line) {
            assert!(repo.chars().all(|c| c.is_ascii_alphanumeric() || "._-+@/~".contains(c)));
            assert!(!repo.starts_with('-'));
        }
    }
});
