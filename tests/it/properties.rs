//! Property tests for every parser of untrusted input: whatever comes in,
//! no panic; and whatever is accepted is well-formed (a repository inside
//! the root, a token with a valid checksum, …).

use std::path::Path;

use git2fa::authz::twofactor::normalise_recovery_code;
use git2fa::factor::token;
use git2fa::factor::totp;
use git2fa::repo;
use git2fa::repo::policy::RepoPolicy;
use git2fa::system::config::Config;
use git2fa::transport::http_request::{self, Authorization};
use git2fa::transport::ssh_command::{self, SshCommand};
use proptest::prelude::*;

/// Text made of the pieces that matter to path and command parsers.
fn tricky() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("'".to_string()),
        Just("-".to_string()),
        Just("~".to_string()),
        Just(" ".to_string()),
        Just(";".to_string()),
        Just("$(id)".to_string()),
        Just("\n".to_string()),
        Just("\0".to_string()),
        Just("%2e".to_string()),
        Just(".git".to_string()),
        Just("team".to_string()),
        Just("app".to_string()),
        Just("git-upload-pack ".to_string()),
        Just("git-receive-pack ".to_string()),
        Just("git ".to_string()),
        Just("2fa ".to_string()),
        "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

fn safe_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-+@/~".contains(c)
}

/// The obvious backtracking matcher, exponential but plainly right, for
/// small inputs: `glob::matches` must agree with it.
fn reference_glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| reference_glob(rest, &text[i..])),
        [b'*', rest @ ..] => {
            let segment = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=segment).any(|i| reference_glob(rest, &text[i..]))
        }
        [first, rest @ ..] => text.first() == Some(first) && reference_glob(rest, &text[1..]),
    }
}

proptest! {
    #[test]
    fn glob_agrees_with_the_reference_matcher(
        pattern in "[ab/*]{0,8}",
        text in "[ab/]{0,8}",
    ) {
        prop_assert_eq!(
            git2fa::repo::glob::matches(&pattern, &text),
            reference_glob(pattern.as_bytes(), text.as_bytes()),
            "{} against {}", pattern, text
        );
    }

    #[test]
    fn ssh_commands_never_panic_and_accept_only_plain_paths(line in tricky()) {
        if let Ok(SshCommand::Git { repo, .. }) = ssh_command::parse(&line) {
            prop_assert!(repo.chars().all(safe_path_char), "{repo:?}");
            prop_assert!(!repo.starts_with('-'));
            prop_assert!(!line.contains('\n') && !line.contains('\0'));
        }
    }

    #[test]
    fn well_formed_git_commands_are_accepted(
        verb in prop_oneof![Just("git-upload-pack"), Just("git-receive-pack"), Just("git upload-pack")],
        segments in prop::collection::vec("[a-z0-9][a-z0-9_-]{0,8}", 1..4),
    ) {
        let path = segments.join("/");
        let parsed = ssh_command::parse(&format!("{verb} '{path}.git'"));
        prop_assert!(matches!(parsed, Ok(SshCommand::Git { ref repo, .. }) if *repo == format!("{path}.git")), "{parsed:?}");
    }

    #[test]
    fn http_requests_never_panic_and_accept_only_plain_paths(
        method in prop_oneof![Just("GET".to_string()), Just("POST".to_string()), "[A-Z]{1,6}"],
        path in tricky(),
        query in prop_oneof![Just("service=git-upload-pack".to_string()), Just("service=git-receive-pack".to_string()), tricky()],
    ) {
        if let Ok(request) = http_request::parse(&method, &path, &query) {
            prop_assert!(repo::path::parse(&request.repo).is_ok());
            prop_assert!(!request.repo.contains(".."));
        }
    }

    #[test]
    fn authorization_headers_never_panic(header in "\\PC{0,200}", user in "[a-z]{1,10}", password in "\\PC{0,30}") {
        let _ = http_request::parse_authorization(Some(&header));
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let parsed = http_request::parse_authorization(Some(&format!("Basic {encoded}")));
        if password.is_empty() {
            // No password yet is no credential: the challenge.
            prop_assert_eq!(parsed, Ok(Authorization::None));
        } else if !password.chars().any(char::is_control) {
            prop_assert_eq!(parsed, Ok(Authorization::Basic { user, password }));
        }
    }

    #[test]
    fn tokens_are_checked_without_panic(text in "\\PC{0,60}", position in 5usize..43, replacement in "[0-9A-Za-z]") {
        let _ = token::is_well_formed(&text);
        let valid = token::generate().unwrap();
        prop_assert!(token::is_well_formed(&valid));
        let mut changed = valid.clone();
        changed.replace_range(position..position + 1, &replacement);
        prop_assert_eq!(token::is_well_formed(&changed), changed == valid);
    }

    #[test]
    fn codes_are_checked_without_panic(code in "\\PC{0,20}", now in 0i64..4_000_000_000, skew in 0u32..10) {
        let secret = [7u8; 20];
        if let Some(step) = totp::matching_step(&secret, now, skew, &code) {
            prop_assert!(totp::looks_like_code(&code));
            prop_assert!((step - totp::step_of(now)).abs() <= i64::from(skew));
        }
        if let Some(normal) = normalise_recovery_code(&code) {
            prop_assert_eq!(normal.len(), 12);
            prop_assert!(normal.bytes().all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)));
        }
    }

    #[test]
    fn config_and_repo_files_never_panic(
        lines in prop::collection::vec(prop_oneof![
            Just("repos_root = '/srv/git'".to_string()),
            Just("data_dir = '/var/lib/git2fa'".to_string()),
            Just("[policy]".to_string()),
            Just("[tokens]".to_string()),
            Just("require = 'push'".to_string()),
            "[a-z_]{1,12} = ('[a-z0-9 ]{0,8}'|[0-9-]{1,4}|true|\\[\\])",
            "\\PC{0,30}",
        ], 0..8)
    ) {
        let text = lines.join("\n");
        // A refusal names the file, and a line that is in it.
        if let Err(e) = Config::parse(Path::new("c.toml"), &text) {
            prop_assert_eq!(e.file.as_path(), Path::new("c.toml"));
            prop_assert!(!e.message.is_empty());
            if let Some(line) = e.line {
                prop_assert!((1..=text.split('\n').count()).contains(&line), "line {} of {:?}", line, text);
            }
        }
        if let Ok(policy) = RepoPolicy::parse(Path::new("git2fa.toml"), &text) {
            prop_assert!(policy.protected_refs.iter().all(|r| r.starts_with("refs/")));
        }
    }
}

/// Resolution against a real tree: whatever is accepted is a bare
/// repository strictly inside the root.
#[test]
fn accepted_paths_are_inside_the_root() {
    let top = tempfile::Builder::new().prefix("g2fa").tempdir().unwrap();
    let root = top.path().join("repos");
    for repo in [
        "app.git",
        "team/app.git",
        "../repos-evil/x.git",
        "../outside.git",
    ] {
        let path = root.join(repo);
        std::fs::create_dir_all(path.join("objects")).unwrap();
        std::fs::create_dir_all(path.join("refs")).unwrap();
        std::fs::write(path.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    }
    std::os::unix::fs::symlink(top.path().join("outside.git"), root.join("out.git")).unwrap();
    let canonical = root.canonicalize().unwrap();
    proptest!(|(typed in tricky())| {
        if let Ok(found) = repo::path::resolve(&root, &typed) {
            prop_assert!(found.dir.starts_with(&canonical) && found.dir != canonical, "{typed:?} → {found:?}");
            prop_assert!(repo::path::is_bare_repository(&found.dir));
            prop_assert!(!found.name.split('/').any(|s| s == ".." || s.is_empty()));
        }
    });
}
