//! The test command on a real git host: a host with the package
//! installed, the git account, and a repository in /srv/git with work in
//! it. The tests that change a host (they install and purge the package,
//! delete /srv/git, add and remove accounts) are run on it twice, as
//! `tests/run` runs them; the host is as it was after each run. (It is
//! itself a throwaway root: the tests under check make their own inside.)

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{Run, throwaway};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The tests that change the host they run on.
const HOST_CHANGING: &[&str] = &["admin_guide::", "check::", "readme::", "package_scripts::"];

fn sh(script: &str) -> Run {
    Run::from(
        Command::new("bash")
            .args(["-c", script])
            .current_dir(ROOT)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

#[test]
fn running_the_tests_twice_leaves_a_real_host_as_it_was() {
    if !throwaway::enter() {
        return;
    }
    // The host: git2fa from its package, a repository with a commit, a
    // user and a flag, as an admin would have them.
    let installed = sh(r#"
        set -e
        apt-get install -y -qq "$(install/build-deb)" >/dev/null
        runuser -u git -- git init -q --bare /srv/git/real.git
        runuser -u git -- git -C /srv/git/real.git symbolic-ref HEAD refs/heads/main
        echo "a long password" | runuser -u git -- git2fa user add alice --password-stdin
        runuser -u git -- git2fa repo flag real
    "#);
    assert_eq!(installed.code, 0, "{installed:?}");
    let state = || sh("tests/host-state").ok().stdout;
    let before = state();
    assert!(before.contains("/srv/git/real.git"), "{before}");
    assert!(before.contains("git2fa "), "the package is installed");
    let exe = std::env::current_exe().unwrap();
    for round in 1..=2 {
        // The tests as `tests/run` runs them: not in this root, each in
        // a throwaway root of its own.
        let run = Run::from(
            Command::new(&exe)
                .args(HOST_CHANGING)
                .args(["--test-threads", "2"])
                .env_remove("GIT2FA_THROWAWAY_ROOT")
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 0, "round {round}: {run:?}");
        assert!(
            !run.stdout.contains(" 0 passed"),
            "round {round} ran no test: {}",
            run.stdout
        );
        let after = state();
        assert_eq!(after, before, "round {round} changed the host");
        assert!(Path::new("/srv/git/real.git/git2fa.toml").exists());
    }
}
