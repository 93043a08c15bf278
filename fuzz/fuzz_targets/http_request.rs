//! CGI PATH_INFO, QUERY_STRING and the Authorization header: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut parts = text.splitn(3, '\n');
        let (path, query, auth) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
        for method in ["GET", "POST"] {
            if let Ok(request) = git2fa::http_request::parse(method, path, query) {
                assert!(git2fa::repo_path::parse(&request.repo).is_ok());
            }
        }
        let _ = git2fa::http_request::parse_authorization(auth);
    }
});
