use super::*;

fn parse(text: &str) -> Result<Config, FileError> {
    Config::parse(Path::new("/etc/git2fa/config.toml"), text)
}

const MINIMAL: &str = "repos_root = '/srv/git'\ndata_dir = '/var/lib/git2fa'\n";

#[test]
fn defaults_are_the_documented_ones() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.repos_root, Path::new("/srv/git"));
    assert_eq!(config.public_url, "http://127.0.0.1:8080");
    assert_eq!(config.policy.git, GitMode::Flagged);
    assert!(config.policy.repo_owners_may_flag);
    assert_eq!(config.policy.session_ttl, 3600);
    assert_eq!(config.policy.bind_session, BindSession::User);
    assert_eq!(config.policy.wait_for_verify, 0);
    assert!(config.policy.users_may_always_enforce);
    assert_eq!(config.policy.recovery_codes, 10);
    assert_eq!(config.policy.max_failures, 10);
    assert_eq!(config.policy.lockout, 900);
    assert_eq!(config.policy.max_git_duration, 3600);
    assert_eq!(config.tokens.default_expiry_days, 30);
    assert_eq!(config.tokens.max_expiry_days, 365);
    assert!(!config.tokens.password_for_git);
    assert_eq!(config.totp.issuer, "Git");
    assert_eq!(config.totp.skew, 1);
    assert_eq!(
        config.log,
        Log {
            file: None,
            audit: AuditLog::Off,
            syslog_socket: Some(PathBuf::from("/dev/log")),
        }
    );
    assert_eq!(config.web.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.ssh.listen.unwrap().to_string(), "127.0.0.1:2222");
    // The hint names the embedded server's port.
    assert_eq!(
        config.ssh_hint("2fa verify"),
        "ssh -p 2222 git@127.0.0.1 2fa verify"
    );
}

#[test]
fn the_template_parses_to_the_defaults() {
    let text = render_template(
        Path::new("/srv/git"),
        Path::new("/var/lib/git2fa"),
        "https://git.example.com/",
    );
    let config = parse(&text).unwrap();
    let defaults = parse(MINIMAL).unwrap();
    assert_eq!(config.public_url, "https://git.example.com");
    assert_eq!(config.policy.session_ttl, defaults.policy.session_ttl);
    assert_eq!(config.policy.git, defaults.policy.git);
    assert_eq!(
        config.tokens.max_expiry_days,
        defaults.tokens.max_expiry_days
    );
    assert_eq!(config.ssh.listen, defaults.ssh.listen);
}

#[test]
fn every_key_can_be_set() {
    let config = parse(&format!(
        "{MINIMAL}public_url = 'https://git.example.com:8443'\n\
         [policy]\ngit = 'all'\nrepo_owners_may_flag = false\nsession_ttl = '2h'\nbind_session = 'key'\n\
         wait_for_verify = '90s'\nusers_may_always_enforce = false\nrecovery_codes = 0\nmax_failures = 3\nlockout = '1m'\n\
         max_git_duration = '6h'\n\
         [tokens]\ndefault_expiry_days = 7\nmax_expiry_days = 0\npassword_for_git = true\n\
         [totp]\nissuer = 'Example Git'\nskew = 2\n[web]\nlisten = '0.0.0.0:80'\n[ssh]\nlisten = ''\npublic_address = 'git@ssh.example.com:2200'\n"
    ))
    .unwrap();
    assert_eq!(config.policy.git, GitMode::All);
    assert_eq!(config.policy.session_ttl, 7200);
    assert_eq!(config.policy.bind_session, BindSession::Key);
    assert_eq!(config.policy.wait_for_verify, 90);
    assert_eq!(config.policy.recovery_codes, 0);
    assert_eq!(config.tokens.max_expiry_days, 0);
    assert_eq!(config.totp.issuer, "Example Git");
    assert_eq!(config.ssh.listen, None);
    assert_eq!(config.policy.max_git_duration, 6 * 3600);
    assert_eq!(
        config.ssh_hint("2fa verify"),
        "ssh -p 2200 git@ssh.example.com 2fa verify"
    );
    assert_eq!(config.public_host(), "git.example.com");
    assert_eq!(
        crate::system::pages::verify_url(&config.public_url, Some("team/my app")),
        "https://git.example.com:8443/2fa/verify?repo=team/my%20app"
    );
}

#[test]
fn bad_values_name_the_line_and_the_key() {
    let cases = [
        (
            "[policy]\ncolour = 'red'\n",
            4,
            "[policy] colour",
            "unknown field",
        ),
        (
            "[policy]\ngit = 'sometimes'\n",
            4,
            "[policy] git",
            "sometimes",
        ),
        (
            "[policy]\nsession_ttl = '-5m'\n",
            4,
            "[policy] session_ttl",
            "-5m",
        ),
        (
            "[policy]\nsession_ttl = '30s'\n",
            4,
            "[policy] session_ttl",
            "out of range",
        ),
        (
            "[policy]\nsession_ttl = '8d'\n",
            4,
            "[policy] session_ttl",
            "out of range",
        ),
        (
            "[policy]\nlockout = '15'\n",
            4,
            "[policy] lockout",
            "no unit",
        ),
        (
            "[policy]\nmax_failures = 0\n",
            4,
            "[policy] max_failures",
            "out of range",
        ),
        (
            "[policy]\nrecovery_codes = -1\n",
            4,
            "[policy] recovery_codes",
            "out of range",
        ),
        (
            "[policy]\nrepo_owners_may_flag = 'yes'\n",
            4,
            "[policy] repo_owners_may_flag",
            "boolean",
        ),
        (
            "[tokens]\ndefault_expiry_days = 400\n",
            4,
            "tokens.default_expiry_days",
            "max_expiry_days",
        ),
        ("[totp]\nskew = 11\n", 4, "[totp] skew", "out of range"),
        ("[totp]\nissuer = 'a:b'\n", 4, "[totp] issuer", "`:`"),
        ("[web]\nlisten = 'localhost'\n", 4, "[web] listen", ""),
        (
            "[ssh]\nlisten = 'nowhere'\n",
            4,
            "[ssh] listen",
            "not an address",
        ),
        ("public_url = 'ftp://x'\n", 3, "public_url", "http"),
        (
            "public_url = 'https://user:pw@x'\n",
            3,
            "public_url",
            "credentials",
        ),
        (
            "[store]\nurl = 'mysql://db/x'\n",
            4,
            "[store] url",
            "not a postgres:// url",
        ),
        (
            "[store]\nurl = 'postgres://git2fa:s3cret@db/x'\n",
            4,
            "[store] url",
            "password_file",
        ),
        (
            "[store]\nurl = 'postgres://git2fa@db/x?password=s3cret'\n",
            4,
            "[store] url",
            "password_file",
        ),
        ("[weird]\n", 3, "[weird]", "unknown field"),
        ("repos_root = 'x'\n", 3, "repos_root", "duplicate"),
    ];
    for (extra, line, key, words) in cases {
        let err = parse(&format!("{MINIMAL}{extra}")).expect_err(extra);
        // A password is never repeated in the message.
        assert!(!err.message.contains("s3cret"), "{err}");
        assert_eq!(err.line, Some(line), "{extra}: {err}");
        assert!(
            err.message.starts_with(&format!("{key}:")),
            "{extra}: {err}"
        );
        assert!(err.message.contains(words), "{extra}: {err}");
        assert!(
            err.to_string().starts_with("/etc/git2fa/config.toml:"),
            "{err}"
        );
    }
}

#[test]
fn required_keys_and_syntax() {
    let err = parse("data_dir = '/d'\n").unwrap_err();
    assert!(err.message.contains("repos_root"), "{err}");
    let err = parse("repos_root = \n").unwrap_err();
    assert_eq!(err.line, Some(1), "{err}");
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let config = Config::parse(
        Path::new("/etc/git2fa/config.toml"),
        "repos_root = 'repos'\ndata_dir = 'data'\n",
    )
    .unwrap();
    assert_eq!(config.repos_root, Path::new("/etc/git2fa/repos"));
    assert_eq!(config.store_path(), Path::new("/etc/git2fa/data/git2fa.db"));
}

#[test]
fn the_example_config_in_fixtures_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.public_url, "https://git.example.com");
    assert_eq!(config.policy.git, GitMode::Flagged);
}

#[test]
fn ssh_public_address() {
    use crate::system::config::SshAddress;
    assert_eq!(
        SshAddress::parse("git@git.example.com:2222"),
        Ok(SshAddress {
            user: "git".into(),
            host: "git.example.com".into(),
            port: Some(2222)
        })
    );
    // Port 22 is what ssh assumes: no -p.
    assert_eq!(SshAddress::parse("git@h:22").unwrap().port, None);
    assert_eq!(SshAddress::parse("me@[::1]:2").unwrap().host, "[::1]");
    for bad in [
        "git.example.com",
        "@h",
        "git@",
        "git@h:0",
        "git@h:x",
        "g it@h",
        "git@h;rm",
    ] {
        assert!(SshAddress::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn log_keys_take_absolute_paths_and_known_destinations() {
    let config = parse(&format!(
        "{MINIMAL}[log]\nfile = '/var/log/git2fa.log'\naudit = 'syslog'\nsyslog_socket = ''\n"
    ))
    .unwrap();
    assert_eq!(config.log.file, Some(PathBuf::from("/var/log/git2fa.log")));
    assert_eq!(config.log.audit, AuditLog::Syslog);
    assert_eq!(config.log.syslog_socket, None);
    for bad in [
        "file = 'git2fa.log'",
        "audit = 'journal'",
        "syslog_socket = 'log'",
    ] {
        let error = parse(&format!("{MINIMAL}[log]\n{bad}\n")).unwrap_err();
        assert!(error.to_string().contains("[log] "), "{bad}: {error}");
    }
}
