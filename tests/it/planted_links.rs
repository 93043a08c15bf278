//! Files git2fa writes in directories other accounts can write (a
//! repository's `git2fa.toml` and hooks) are never written through a
//! symlink planted there: the write goes to a fresh file with a random
//! name, which is then renamed.

use std::os::unix::fs::symlink;
use std::path::Path;

use crate::harness::{Host, file_mode};

fn fingerprint(path: &Path) -> (Vec<u8>, u32) {
    (std::fs::read(path).unwrap(), file_mode(path))
}

// Attack: the owner of evil.git, who can write their repository's
// directory, plants `evil.git/git2fa.toml.tmp` as a symlink to
// `../victim.git/git2fa.toml` (or to `data_dir/secret.key`), then flips
// their own repository's flag. The write of the temporary file followed
// the link: the victim's file held the attacker's policy (or the secret
// key was truncated and left mode 0666).
#[test]
fn flagging_a_repository_never_writes_through_a_planted_link() {
    let host = Host::new();
    host.bare_repo("evil.git");
    let victim = host.bare_repo("victim.git");
    let victim_file = victim.join("git2fa.toml");
    std::fs::write(
        &victim_file,
        "require = \"all\"\nreaders = [\"dora\"]\nwriters = [\"dora\"]\n",
    )
    .unwrap();
    let secret_key = host.data.join("secret.key");
    let before = (fingerprint(&victim_file), fingerprint(&secret_key));

    for target in [&victim_file, &secret_key] {
        let planted = host.root.join("evil.git/git2fa.toml.tmp");
        let _ = std::fs::remove_file(&planted);
        symlink(target, &planted).unwrap();
        host.git2fa(&["repo", "flag", "evil", "--require", "push"])
            .ok();
        host.git2fa(&["repo", "unflag", "evil"]).ok();
    }
    let own = host.root.join("evil.git/git2fa.toml");
    assert!(
        std::fs::read_to_string(&own)
            .unwrap()
            .contains("require = \"off\"")
    );
    // The file itself as a link is refused, and nothing is written.
    std::fs::remove_file(&own).unwrap();
    symlink(&victim_file, &own).unwrap();
    let refused = host
        .git2fa(&["repo", "flag", "evil", "--require", "push"])
        .fails(2);
    assert!(
        refused
            .stderr
            .contains("must be a regular file, not a link"),
        "{refused:?}"
    );

    assert_eq!(
        (fingerprint(&victim_file), fingerprint(&secret_key)),
        before,
        "a file outside evil.git changed"
    );
    // TOTP still works: the secret key is intact.
    host.add_user("alice");
    let (secret, _) = host.enroll("alice");
    host.git2fa(&["verify", "alice", &crate::harness::code(&secret, 0)])
        .ok();
}

// Attack: a repository owner plants `hooks/pre-receive.git2fa-new` (the
// fixed temporary name) as a symlink to the store; the admin's
// `git2fa install-hooks`, run as root, overwrote the store with a shell
// stub and made it mode 0755. A link planted at the hook's own name must
// not be written through either.
#[test]
fn install_hooks_never_writes_through_a_planted_link() {
    let host = Host::new();
    let repo = host.bare_repo("evil.git");
    let store = host.store_path();
    let secret_key = host.data.join("secret.key");
    host.add_user("alice");
    let before = (fingerprint(&store), fingerprint(&secret_key));
    let hooks = repo.join("hooks");
    symlink(&store, hooks.join("pre-receive.git2fa-new")).unwrap();
    symlink(&store, hooks.join("update.git2fa-new")).unwrap();
    symlink(&secret_key, hooks.join("update")).unwrap();

    host.git2fa(&["install-hooks", &host.root.display().to_string()])
        .ok();
    // And once more, now that our stubs are there.
    host.git2fa(&["install-hooks", &host.root.display().to_string()])
        .ok();
    host.git2fa(&[
        "install-hooks",
        "--uninstall",
        &host.root.display().to_string(),
    ])
    .ok();
    host.git2fa(&["install-hooks", &host.root.display().to_string()])
        .ok();

    assert_eq!(
        (fingerprint(&store), fingerprint(&secret_key)),
        before,
        "the store or the secret key changed"
    );
    for name in ["pre-receive", "update"] {
        let meta = std::fs::symlink_metadata(hooks.join(name)).unwrap();
        assert!(meta.is_file(), "{name} is a stub of its own");
        assert_eq!(file_mode(&hooks.join(name)), 0o755);
    }
    // The planted update link was kept aside as the chained hook, still a
    // link, and the store still opens.
    assert!(
        std::fs::symlink_metadata(hooks.join("update.git2fa-chained"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    host.git2fa(&["user", "list"]).ok();
}

// Attack: a repository owner makes `evil.git/hooks` itself a symlink to a
// directory of root's (here a stand-in for /etc/sudoers.d); root's
// `install-hooks` then created its 0755 stubs there, and renamed what it
// found there to *.git2fa-chained. A linked hooks directory is refused.
#[test]
fn install_hooks_refuses_a_linked_hooks_directory() {
    let host = Host::new();
    let repo = host.bare_repo("evil.git");
    let target = host.dir.path().join("root-only");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("update"), "precious\n").unwrap();
    std::fs::remove_dir_all(repo.join("hooks")).unwrap();
    symlink(&target, repo.join("hooks")).unwrap();
    let refused = host
        .git2fa(&["install-hooks", &host.root.display().to_string()])
        .fails(2);
    assert!(
        refused.stderr.contains("not a directory of its own"),
        "{refused:?}"
    );
    let names: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["update"]);
    assert_eq!(
        std::fs::read_to_string(target.join("update")).unwrap(),
        "precious\n"
    );
}
