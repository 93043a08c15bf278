use super::*;

fn hardware_config(git: &str, hardware_keys: &str, require: &[&str]) -> Config {
    let patterns: Vec<String> = require.iter().map(|p| format!("'{p}'")).collect();
    let text = format!(
        "repos_root = '/srv/git'\ndata_dir = '/var/lib/git2fa'\npublic_url = 'https://git.example.com'\n\
         [policy]\ngit = '{git}'\nhardware_keys = '{hardware_keys}'\nrequire_hardware_key = [{}]\n",
        patterns.join(", ")
    );
    Config::parse(Path::new("test.toml"), &text).unwrap()
}

fn key(hardware: Option<Hardware>) -> Credential {
    Credential::SshKey {
        key_id: 1,
        hardware,
    }
}

const VERIFIED: Option<Hardware> = Some(Hardware::Verified);
const PRESENT: Option<Hardware> = Some(Hardware::Present);

#[test]
fn hardware_keys_case_by_case() {
    let cases: Vec<(&str, Tweak, (&str, u8))> = vec![
        // hardware_keys = "off" (the default): a marked key is a key.
        (
            "off: a verified key without a session",
            |c| c.credential = key(VERIFIED),
            ("no-session", 7),
        ),
        (
            "off: a verified key with a session",
            |c| {
                c.credential = key(VERIFIED);
                c.sessions = open();
            },
            ("session", 7),
        ),
        // counts-as-2fa: a marked key, used as marked, is the second factor.
        (
            "counts: a verified key without a session",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &[]);
                c.credential = key(VERIFIED);
            },
            ("hardware-key", 7),
        ),
        (
            "counts: a key proving a touch without a session",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &[]);
                c.credential = key(PRESENT);
            },
            ("hardware-key", 7),
        ),
        (
            "counts: an unmarked key without a session",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &[]);
            },
            ("no-session", 7),
        ),
        (
            "counts: a verified key of a user with no other factor",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &[]);
                c.credential = key(VERIFIED);
                c.user = Some(user(false));
            },
            ("hardware-key", 7),
        ),
        (
            "counts: not required, the key changes nothing",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &[]);
                c.credential = key(VERIFIED);
                c.repo = repo(Require::Off, &[]);
            },
            ("not-required", 3),
        ),
        (
            "counts: the key does not open what the user may not push",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &[]);
                c.credential = key(VERIFIED);
                c.repo.writers = Members::Only(vec![]);
            },
            ("no-access", 1),
        ),
        // The repository's own word.
        (
            "repo counts where the host is off",
            |c| {
                c.credential = key(VERIFIED);
                c.repo.hardware_keys = Some(HardwareKeys::CountsAs2fa);
            },
            ("hardware-key", 7),
        ),
        (
            "repo counts, but the host requires 2FA everywhere",
            |c| {
                c.config = hardware_config("all", "off", &[]);
                c.credential = key(VERIFIED);
                c.repo.hardware_keys = Some(HardwareKeys::CountsAs2fa);
            },
            ("no-session", 7),
        ),
        (
            "repo off where the host counts",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &[]);
                c.credential = key(VERIFIED);
                c.repo.hardware_keys = Some(HardwareKeys::Off);
            },
            ("no-session", 7),
        ),
        // Rule 9: require_hardware_key, whatever sessions are open.
        (
            "release tag with an ordinary key and a session",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.sessions = open();
            },
            ("hardware-key-required", 9),
        ),
        (
            "release tag with a key proving only a touch, and a session",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.credential = key(PRESENT);
                c.sessions = open();
            },
            ("hardware-key-required", 9),
        ),
        (
            "release tag with a verified key, hardware keys off, a session",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.credential = key(VERIFIED);
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "release tag with a verified key, hardware keys off, no session",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.credential = key(VERIFIED);
            },
            ("no-session", 7),
        ),
        (
            "release tag with a verified key that counts",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.credential = key(VERIFIED);
            },
            ("hardware-key", 7),
        ),
        (
            "release tag in a repository that requires nothing else",
            |c| {
                c.config = hardware_config("off", "off", &["refs/tags/v*"]);
                c.repo = repo(Require::Off, &[]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.sessions = open();
            },
            ("hardware-key-required", 9),
        ),
        (
            "another ref is not held to the rule",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = push(&["refs/heads/main"]);
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "refs not known yet, no hook to look",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = Operation::Write(PushedRefs::Unknown);
                c.sessions = open();
            },
            ("hardware-key-required", 9),
        ),
        (
            "refs left to the hooks",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = Operation::Write(PushedRefs::CheckedByHook);
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "a read is not a push",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = Operation::Read;
                c.repo = repo(Require::All, &[]);
                c.sessions = open();
            },
            ("session", 7),
        ),
        (
            "the repository's own pattern",
            |c| {
                c.repo.require_hardware_key = vec!["refs/heads/release/*".into()];
                c.operation = push(&["refs/heads/main", "refs/heads/release/2"]);
                c.sessions = open();
            },
            ("hardware-key-required", 9),
        ),
        (
            "a token never pushes a release tag",
            |c| {
                c.config = hardware_config("flagged", "counts-as-2fa", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.credential = token(Permission::Write, &["team/*"]);
            },
            ("hardware-key-required", 9),
        ),
        (
            "a password never pushes a release tag",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.credential = Credential::Password { valid: true };
                c.sessions = open();
            },
            ("hardware-key-required", 9),
        ),
        (
            "the credential is checked first",
            |c| {
                c.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
                c.operation = push(&["refs/tags/v1.0"]);
                c.credential = Credential::UnknownKey;
            },
            ("unknown-key", 0),
        ),
    ];
    check_cases(cases);
}

#[test]
fn the_refusal_names_the_refs_and_how_to_add_a_key() {
    let mut case = Case::new();
    case.config = hardware_config("flagged", "off", &["refs/tags/v*"]);
    case.operation = push(&["refs/heads/main", "refs/tags/v1.0"]);
    case.sessions = open();
    let Decision::Refuse(refusal) = case.decide() else {
        panic!("allowed")
    };
    let cx = MessageContext {
        config: &case.config,
        repo: "team/app",
        user: Some("alice"),
        operation: &case.operation,
        transport: Transport::Ssh,
    };
    let text = refusal.lines(&cx).join("\n");
    assert!(
        text.contains("a push to refs/tags/v1.0 needs a hardware security key with its PIN"),
        "{text}"
    );
    assert!(!text.contains("refs/heads/main"), "{text}");
    assert!(
        text.contains("ssh-keygen -t ed25519-sk -O verify-required"),
        "{text}"
    );
    assert!(text.contains("https://git.example.com/2fa/keys"), "{text}");
    assert!(text.contains("--hardware verified"), "{text}");
}

#[test]
fn refs_past_the_matching_budget_need_the_key_unchecked() {
    let policy = RepoPolicy::default();
    let host = vec!["refs/tags/v*".to_string(); 100];
    let many: Vec<String> = (0..100_000)
        .map(|i| format!("refs/heads/b{i:06}"))
        .collect();
    assert_eq!(
        policy.hardware_refs(&host, &PushedRefs::Known(many)),
        Some(Vec::new())
    );
    assert_eq!(
        policy.hardware_refs(&host, &PushedRefs::Known(vec!["refs/heads/main".into()])),
        None
    );
    assert_eq!(policy.hardware_refs(&[], &PushedRefs::Unknown), None);
}

/// Every combination of host mode × `hardware_keys` (host and repository)
/// × `require_hardware_key` × operation × credential × session ×
/// enrolment, against promises stated apart from the rule order.
#[test]
fn every_combination_keeps_the_hardware_promises() {
    let operations = [
        Operation::Read,
        push(&["refs/heads/main"]),
        push(&["refs/heads/main", "refs/tags/v1.0"]),
        Operation::Write(PushedRefs::Unknown),
        Operation::Write(PushedRefs::CheckedByHook),
    ];
    let credentials = [
        key(None),
        key(PRESENT),
        key(VERIFIED),
        token(Permission::Write, &["team/*"]),
        Credential::Password { valid: true },
        Credential::UnixUser,
    ];
    let mut checked = 0;
    for git in ["off", "flagged", "all"] {
        for host_keys in ["off", "counts-as-2fa"] {
            for repo_keys in [
                None,
                Some(HardwareKeys::Off),
                Some(HardwareKeys::CountsAs2fa),
            ] {
                for require in [&[][..], &["refs/tags/v*"][..]] {
                    for operation in &operations {
                        for credential in &credentials {
                            for sessions in [vec![], open()] {
                                for enrolled in [false, true] {
                                    let mut case = Case::new();
                                    case.config = hardware_config(git, host_keys, require);
                                    case.repo.hardware_keys = repo_keys;
                                    case.operation = operation.clone();
                                    case.credential = credential.clone();
                                    case.sessions = sessions.clone();
                                    case.user = Some(user(enrolled));
                                    let what = format!(
                                        "git={git} host={host_keys} repo={repo_keys:?} require={require:?} {operation:?} {credential:?} sessions={} enrolled={enrolled}",
                                        case.sessions.len()
                                    );
                                    keeps_the_promises(&case, &what);
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 2 * 3 * 2 * 5 * 6 * 2 * 2);
}

fn keeps_the_promises(case: &Case, what: &str) {
    let decision = case.decide();
    let verified = matches!(
        case.credential,
        Credential::SshKey {
            hardware: Some(Hardware::Verified),
            ..
        }
    );
    // A push that may touch a ref needing the key goes only with the key
    // used with its PIN (refs left to the hooks are decided there).
    let may_touch_tag = !case.config.policy.require_hardware_key.is_empty()
        && match &case.operation {
            Operation::Write(PushedRefs::Unknown) => true,
            Operation::Write(PushedRefs::Known(refs)) => {
                refs.iter().any(|r| r.starts_with("refs/tags/v"))
            }
            _ => false,
        };
    if may_touch_tag && !verified {
        assert_eq!(
            decision.code(),
            "hardware-key-required",
            "{what}: {decision:?}"
        );
    }
    // A marked key allows by itself only where it counts, and only if it
    // is marked.
    if let Decision::Allow(Allowed::HardwareKey { factor }) = &decision {
        assert!(hardware_counts(&case.facts()), "{what}");
        assert!(
            matches!(case.credential, Credential::SshKey { hardware: Some(h), .. } if h == *factor),
            "{what}"
        );
    }
    // Where nothing asks for hardware keys, a mark changes nothing.
    let counts = hardware_counts(&case.facts());
    if !counts
        && case.config.policy.require_hardware_key.is_empty()
        && let Credential::SshKey { key_id, .. } = case.credential
    {
        let mut plain = Case::new();
        plain.config = case.config.clone();
        plain.repo = case.repo.clone();
        plain.operation = case.operation.clone();
        plain.credential = Credential::SshKey {
            key_id,
            hardware: None,
        };
        plain.sessions = case.sessions.clone();
        plain.user = case.user.clone();
        assert_eq!(plain.decide(), decision, "{what}");
    }
    // The host's `git = "all"` is never lowered by a repository's word.
    if case.config.policy.git == GitMode::All
        && case.config.policy.hardware_keys == HardwareKeys::Off
    {
        assert!(
            !matches!(decision, Decision::Allow(Allowed::HardwareKey { .. })),
            "{what}"
        );
    }
}
