//! Repository paths as typed: no panic; accepted segments hold no `..`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(typed) = std::str::from_utf8(data) {
        if let Ok(segments) = git2fa::repo_path::parse(typed) {
            assert!(segments.iter().all(|s| !s.is_empty() && *s != ".." && !s.starts_with('.')));
        }
    }
});
