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
    type Tweak = fn(&mut Case);
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
    let mut failures = Vec::new();
    for (name, tweak, expected) in cases {
        let mut case = Case::new();
        tweak(&mut case);
        let got = code(&case.decide());
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
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
