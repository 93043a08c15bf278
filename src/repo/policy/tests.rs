use super::*;

fn parse(text: &str) -> Result<RepoPolicy, FileError> {
    RepoPolicy::parse(Path::new("team/app.git/git2fa.toml"), text)
}

#[test]
fn the_documented_file() {
    let policy = parse(
        "require = \"push\"\nprotected_refs = [\"refs/heads/main\", \"refs/tags/v*\"]\n\
         owners = [\"alice\"]\nwriters = [\"*\"]\nreaders = [\"*\"]\n",
    )
    .unwrap();
    assert_eq!(policy.require, Require::Push);
    assert!(policy.is_owner("alice"));
    assert!(policy.can_write("bob"));
    assert!(policy.requires_for_push(&PushedRefs::Known(vec!["refs/tags/v2".into()])));
    assert!(!policy.requires_for_push(&PushedRefs::Known(vec!["refs/heads/topic".into()])));
    assert!(policy.requires_for_push(&PushedRefs::Unknown));
    // The hooks will check each ref: protected refs are theirs to refuse.
    assert!(!policy.requires_for_push(&PushedRefs::CheckedByHook));
    assert!(!policy.requires_for_read());
}

#[test]
fn lists_and_defaults() {
    let policy = parse("writers = ['bob']\nreaders = ['carol']\nowners = ['alice']\n").unwrap();
    assert_eq!(policy.require, Require::Off);
    assert!(policy.can_write("alice") && policy.can_read("alice"));
    assert!(policy.can_write("bob") && policy.can_read("bob"));
    assert!(!policy.can_write("carol") && policy.can_read("carol"));
    assert!(!policy.can_read("dave"));
    let open = parse("require = 'all'\n").unwrap();
    assert!(open.can_write("anyone") && open.requires_for_read());
    // Without protected refs, or with "all", the hooks change nothing.
    assert!(open.requires_for_push(&PushedRefs::CheckedByHook));
    assert!(
        parse("require = 'push'\n")
            .unwrap()
            .requires_for_push(&PushedRefs::CheckedByHook)
    );
    assert!(
        !parse("require = 'off'\n")
            .unwrap()
            .requires_for_push(&PushedRefs::CheckedByHook)
    );
    assert!(!RepoPolicy::default().from_file);
}

#[test]
fn bad_files_name_line_and_key() {
    for (text, line, words) in [
        ("require = 'always'\n", 1, "require: unknown variant"),
        (
            "require = 'push'\nprotect = []\n",
            2,
            "protect: unknown field",
        ),
        (
            "require = 'push'\nprotected_refs = ['main']\n",
            2,
            "protected_refs: `main`",
        ),
        (
            "owners = ['*']\n",
            1,
            "owners: `*` is not a valid user name",
        ),
        ("writers = ['-rf']\n", 1, "writers: `-rf`"),
        ("require = push\n", 1, ""),
    ] {
        let err = parse(text).expect_err(text);
        assert_eq!(err.line, Some(line), "{text}: {err}");
        assert!(err.message.contains(words), "{text}: {err}");
    }
}

// Attack: a repository owner's file with thousands of star-heavy
// protected_refs made every push decision take seconds. Past the cap the
// file is refused, naming the key and the line, like any bad file.
#[test]
fn too_many_protected_refs_are_refused() {
    let list = |n: usize| {
        let refs: Vec<String> = (0..n).map(|i| format!("'refs/heads/r{i}-*'")).collect();
        format!("require = 'push'\nprotected_refs = [{}]\n", refs.join(", "))
    };
    assert!(parse(&list(MAX_PROTECTED_REFS)).is_ok());
    let err = parse(&list(MAX_PROTECTED_REFS + 1)).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(
        err.message
            .contains("protected_refs: 101 patterns; at most 100 are allowed"),
        "{err}"
    );
}

#[test]
fn flagging_keeps_comments_and_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = RepoPolicy::path(dir.path());
    std::fs::write(
        &path,
        "# who may change this: alice\nowners = [\"alice\"] # the lead\nrequire = \"off\"\n",
    )
    .unwrap();
    let policy = set_requirement(
        dir.path(),
        Require::Push,
        Some(&["refs/heads/main".to_string()]),
    )
    .unwrap();
    assert_eq!(policy.require, Require::Push);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# who may change this: alice\nowners = [\"alice\"] # the lead\n"),
        "{text}"
    );
    assert!(text.contains("require = \"push\""), "{text}");
    assert!(
        text.contains("protected_refs = [\"refs/heads/main\"]"),
        "{text}"
    );
    set_requirement(dir.path(), Require::Off, None).unwrap();
    let policy = RepoPolicy::load(dir.path()).unwrap();
    assert_eq!(policy.require, Require::Off);
    assert_eq!(policy.owners, vec!["alice"]);
}

#[test]
fn a_broken_file_is_not_edited() {
    let dir = tempfile::tempdir().unwrap();
    let path = RepoPolicy::path(dir.path());
    std::fs::write(&path, "require = 'sometimes'\n").unwrap();
    assert!(set_requirement(dir.path(), Require::Push, None).is_err());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "require = 'sometimes'\n"
    );
}

#[test]
fn a_policy_file_that_is_a_link_is_refused() {
    // Attack: a repository owner with a shell on the host links git2fa.toml
    // to a file only the service can read, hoping parse errors shown to git
    // users quote its contents. A link is refused unread.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "password = 'hunter2'\n").unwrap();
    std::os::unix::fs::symlink(&secret, RepoPolicy::path(dir.path())).unwrap();
    let err = RepoPolicy::load(dir.path()).unwrap_err();
    assert!(err.message.contains("not a link"), "{err}");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn the_example_repo_file_in_fixtures_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let text = std::fs::read_to_string(dir.join(FILE_NAME)).unwrap();
    let policy = RepoPolicy::parse(&dir.join(FILE_NAME), &text).unwrap();
    assert_eq!(
        policy.protected_refs,
        vec!["refs/heads/main", "refs/tags/v*"]
    );
    assert!(policy.is_owner("alice"));
}

// Attack: a local owner pairs 100 long star-heavy patterns with a push of
// thousands of long refs; each match is cheap, the product is not. Past
// the budget the push simply needs 2FA, unmatched.
#[test]
fn a_push_too_costly_to_match_needs_2fa() {
    let refs: Vec<String> = (0..100).map(|i| format!("refs/heads/x{i}")).collect();
    let list: Vec<String> = refs.iter().map(|r| format!("'{r}'")).collect();
    let policy = parse(&format!(
        "require = 'push'\nprotected_refs = [{}]\n",
        list.join(", ")
    ))
    .unwrap();
    let topic = PushedRefs::Known(vec!["refs/heads/topic".into()]);
    assert!(!policy.requires_for_push(&topic));
    let many = PushedRefs::Known(
        (0..200_000)
            .map(|i| format!("refs/heads/topic-{i:06}"))
            .collect(),
    );
    assert!(policy.requires_for_push(&many));
}
