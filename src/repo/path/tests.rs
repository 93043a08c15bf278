use super::*;
use std::fs;

fn bare(path: &Path) {
    fs::create_dir_all(path.join("objects")).unwrap();
    fs::create_dir_all(path.join("refs")).unwrap();
    fs::write(path.join("HEAD"), "ref: refs/heads/main\n").unwrap();
}

#[test]
fn accepts_what_users_type() {
    let top = tempfile::Builder::new().prefix("g2fa").tempdir().unwrap();
    let root = top.path().join("git");
    bare(&root.join("team/app.git"));
    bare(&root.join("plain"));
    for typed in [
        "team/app.git",
        "team/app",
        "/team/app.git",
        "~/team/app",
        "team/app.git/",
    ] {
        let found = resolve(&root, typed).unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert_eq!(found.name, "team/app", "{typed}");
        assert_eq!(found.dir, root.join("team/app.git").canonicalize().unwrap());
    }
    assert_eq!(resolve(&root, "plain").unwrap().name, "plain");
    // An absolute path below the root, as `git@host:/srv/git/team/app.git`
    // sends it.
    let absolute = root.join("team/app.git").display().to_string();
    assert_eq!(resolve(&root, &absolute).unwrap().name, "team/app");
    // An absolute path below the root, as `git@host:/srv/git/team/app.git`
    // sends it.
    let absolute = root.join("team/app.git").display().to_string();
    assert_eq!(resolve(&root, &absolute).unwrap().name, "team/app");
}

#[test]
fn refuses_paths_out_of_the_root() {
    // Attack: paths that climb out of repos_root, or name a sibling whose
    // name starts with the root's (soft-serve's string-prefix bug), or go
    // through a symlink that leads out.
    let top = tempfile::Builder::new().prefix("g2fa").tempdir().unwrap();
    let root = top.path().join("git");
    bare(&root.join("team/app.git"));
    bare(&top.path().join("git-evil/x.git"));
    bare(&top.path().join("outside.git"));
    std::os::unix::fs::symlink(top.path().join("outside.git"), root.join("link.git")).unwrap();
    std::os::unix::fs::symlink(top.path().join("git-evil"), root.join("evil")).unwrap();
    fs::create_dir_all(root.join("team/notbare")).unwrap();
    let evil = top.path().join("git-evil/x.git");
    let cases: Vec<(String, RepoPathError)> = vec![
        (
            "../outside.git".into(),
            RepoPathError::Malformed("contains '..'"),
        ),
        (
            "team/../../outside".into(),
            RepoPathError::Malformed("contains '..'"),
        ),
        (
            "../git-evil/x".into(),
            RepoPathError::Malformed("contains '..'"),
        ),
        (evil.to_string_lossy().into_owned(), RepoPathError::NotFound),
        (
            "team/a..b".into(),
            RepoPathError::Malformed("contains '..'"),
        ),
        (
            "team/./app".into(),
            RepoPathError::Malformed("contains '.' or '..'"),
        ),
        ("link.git".into(), RepoPathError::NotFound),
        ("evil/x.git".into(), RepoPathError::NotFound),
        ("team/notbare".into(), RepoPathError::NotFound),
        ("team".into(), RepoPathError::NotFound),
        ("/".into(), RepoPathError::Malformed("empty")),
        ("".into(), RepoPathError::Malformed("empty")),
        (
            "-oProxyCommand=x".into(),
            RepoPathError::Malformed("starts with '-'"),
        ),
        (
            "team//app".into(),
            RepoPathError::Malformed("contains '//'"),
        ),
        (
            "team/.hidden".into(),
            RepoPathError::Malformed("a path segment starts with '.'"),
        ),
        (
            "team/app\0.git".into(),
            RepoPathError::Malformed("contains a control character or a backslash"),
        ),
        (
            "team/app\n".into(),
            RepoPathError::Malformed("contains a control character or a backslash"),
        ),
        (
            "x".repeat(2000),
            RepoPathError::Malformed("longer than 1024 bytes"),
        ),
    ];
    for (typed, expected) in cases {
        assert_eq!(resolve(&root, &typed), Err(expected), "{typed:?}");
    }
}

#[test]
fn finds_every_bare_repository() {
    let top = tempfile::Builder::new().prefix("g2fa").tempdir().unwrap();
    bare(&top.path().join("a.git"));
    bare(&top.path().join("team/b.git"));
    fs::create_dir_all(top.path().join("team/empty")).unwrap();
    let found = find_all(top.path()).unwrap();
    assert_eq!(
        found,
        vec![top.path().join("a.git"), top.path().join("team/b.git")]
    );
}
