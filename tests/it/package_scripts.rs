//! The package's maintainer scripts and `install/install.sh`, run as root
//! in a throwaway root against a git account that fights them.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{BIN, Process, throwaway};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The git account's process: whenever a directory of git's below /tmp
/// holds a `config.toml` and the store's key exists (git2fa init has
/// finished), it swaps the file for a link to /etc/shadow, as fast as it
/// can, until it is killed.
const SWAPPER: &str = r#"
import os
while True:
    if not os.path.exists("/var/lib/git2fa/secret.key"):
        continue
    try:
        entries = list(os.scandir("/tmp"))
    except OSError:
        continue
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid():
                target = os.path.join(entry.path, "config.toml")
                if os.path.isfile(target) and not os.path.islink(target):
                    link = os.path.join(entry.path, ".swap")
                    try:
                        os.unlink(link)
                    except OSError:
                        pass
                    os.symlink("/etc/shadow", link)
                    os.rename(link, target)
        except OSError:
            pass
"#;

fn sh(script: &str) -> crate::harness::Run {
    crate::harness::Run::from(
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

// Attack: the package's postinst (and install.sh) once ran `git2fa init`
// as git in a temporary directory git owned, then, as root, copied the
// config.toml found there into /etc/git2fa/config.toml, mode 0644. A
// process of the git account (which exists before the package when a
// purge kept it for /srv/git) swapped that file for a link to
// /etc/shadow between the two steps: root copied the shadow file into a
// file every local account reads, and git could write any config it
// liked. The scripts now have root write the config itself, and git only
// make the store. Twenty installs against the swapper: the config is
// root's, 0644, and the text git2fa writes, every time.
#[test]
fn the_git_account_cannot_choose_what_root_installs_as_the_config() {
    if !throwaway::enter() {
        return;
    }
    // The package's files where postinst expects them.
    std::fs::copy(BIN, "/usr/bin/git2fa").unwrap();
    if Command::new("getent")
        .args(["passwd", "git"])
        .output()
        .unwrap()
        .stdout
        .is_empty()
    {
        sh("adduser --system --group --home /srv/git --shell /bin/sh git >/dev/null").ok();
    }
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    let expected = {
        let reference = Path::new("/root/reference.toml");
        let _ = std::fs::remove_file(reference);
        Command::new(BIN)
            .arg("--config")
            .arg(reference)
            .args(["init", "--config-only", "--repos-root", "/srv/git"])
            .args(["--data-dir", "/var/lib/git2fa"])
            .output()
            .unwrap();
        std::fs::read_to_string(reference).unwrap()
    };
    let _swapper = Process::spawn(
        Command::new("runuser")
            .args(["-u", "git", "--", "python3", "-c", SWAPPER])
            .stdin(Stdio::null()),
    );
    let scripts = [
        format!("sh {ROOT}/install/debian/postinst configure"),
        format!("bash {ROOT}/install/install.sh --repos-root /srv/git >/dev/null"),
    ];
    for round in 0..20 {
        let script = &scripts[round % scripts.len()];
        sh("rm -rf /etc/git2fa /var/lib/git2fa").ok();
        let run = sh(script);
        assert_eq!(run.code, 0, "round {round}, {script}: {run:?}");
        let path = Path::new("/etc/git2fa/config.toml");
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert!(meta.file_type().is_file(), "round {round}: {meta:?}");
        assert_eq!(
            (meta.uid(), meta.mode() & 0o7777),
            (0, 0o644),
            "round {round}"
        );
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains(shadow.lines().next().unwrap()),
            "round {round}, {script}: root installed /etc/shadow as the config"
        );
        assert_eq!(text, expected, "round {round}, {script}");
        // And git's store works with it.
        let check =
            sh("runuser -u git -- /usr/bin/git2fa --config /etc/git2fa/config.toml user list");
        assert_eq!(check.code, 0, "round {round}: {check:?}");
    }
}
