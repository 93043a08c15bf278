//! Tokens, TOTP codes and recovery codes as typed: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = git2fa::token::is_well_formed(text);
        let _ = git2fa::totp::matching_step(&[1u8; 20], 1_800_000_000, 1, text);
        if let Some(code) = git2fa::twofactor::normalise_recovery_code(text) {
            assert_eq!(code.len(), 12);
        }
    }
});
