//! Git clients other than git's own command line, against git2fa: JGit
//! (Debian's `jgit-cli` 4.11, with JSch 0.1.55 inside, as Eclipse EGit and
//! Jenkins long bundled it) over the embedded SSH server of `git2fa serve`.
//!
//! JSch 0.1.5x knows no Ed25519: against a server with an Ed25519 host key
//! alone it fails with "Algorithm negotiation fail", before git2fa can say
//! anything. serve also offers an ECDSA P-256 host key for such clients.

use std::path::Path;
use std::process::Command;

use crate::harness::fixture::Fixture;
use crate::harness::web_server::{Server, free_port};
use crate::harness::{Host, Run, code, e2e_available, run, which};

fn jgit_available() -> bool {
    e2e_available(which("jgit").is_some(), "jgit", "jgit-cli")
}

/// Jars Debian's `jgit` launcher leaves off its class path (jgit-cli
/// 4.11.9-2 fails at start with `NoClassDefFoundError:
/// org/eclipse/jgit/lfs/BuiltinLFS`); the launcher adds `JGIT_CLASSPATH`.
const JGIT_CLASSPATH: &str = "/usr/share/java/org.eclipse.jgit.lfs.jar:\
     /usr/share/java/org.eclipse.jgit.http.apache.jar:\
     /usr/share/java/httpclient.jar:/usr/share/java/httpcore.jar";

/// `jgit ARGS` in `cwd`, with `home` as the Java user's home (JSch reads
/// `~/.ssh` from `user.home`, which Java takes from the password file,
/// not from `HOME`).
fn jgit(home: &Path, cwd: &Path, args: &[&str]) -> Run {
    run(
        "jgit",
        args,
        cwd,
        &[
            ("JGIT_CLASSPATH", JGIT_CLASSPATH.to_string()),
            ("HOME", home.display().to_string()),
            (
                "JAVA_TOOL_OPTIONS",
                format!("-Duser.home={}", home.display()),
            ),
        ],
        "",
    )
}

/// alice, enrolled, with an ECDSA key in PEM (JSch 0.1.55 reads no other
/// format, and no Ed25519 key) in `home/.ssh`, and serve's host keys in
/// her `known_hosts`; `team/app` requires 2FA for everything.
fn jsch_host() -> Option<(Fixture, Server, u16, std::path::PathBuf)> {
    if !jgit_available() || !crate::serve::ssh_client_available() {
        return None;
    }
    let (web, ssh) = (free_port(), free_port());
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh}\"\n"),
    );
    let f = host.user("alice").enrolled().repo("team/app");
    f.git2fa(&["repo", "flag", "team/app", "--require", "all"])
        .ok();
    let home = f.dir.path().join("jgit-home");
    let dot_ssh = home.join(".ssh");
    std::fs::create_dir_all(&dot_ssh).unwrap();
    let key = dot_ssh.join("id_ecdsa");
    let made = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "", "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    f.git2fa(&[
        "key",
        "add",
        "alice",
        &key.with_extension("pub").display().to_string(),
    ])
    .ok();
    let server = Server::start_with(&f, web, &[ssh]);
    // What an admin publishes for users: the host's public keys.
    let mut known = String::new();
    for name in ["ssh_host_ed25519_key", "ssh_host_ecdsa_key"] {
        let public = Command::new("ssh-keygen")
            .args(["-y", "-f"])
            .arg(f.data.join(name))
            .output()
            .unwrap();
        assert!(public.status.success(), "{name}: {public:?}");
        known += &format!(
            "[127.0.0.1]:{ssh} {}",
            String::from_utf8(public.stdout).unwrap()
        );
    }
    std::fs::write(dot_ssh.join("known_hosts"), known).unwrap();
    // JGit's JSch tries identity, id_rsa and id_dsa unless told.
    std::fs::write(
        dot_ssh.join("config"),
        "Host 127.0.0.1\n    IdentityFile ~/.ssh/id_ecdsa\n",
    )
    .unwrap();
    Some((f, server, ssh, home))
}

#[test]
fn jgit_with_jsch_reaches_serve_s_ssh_server_and_works_once_verified() {
    let Some((f, _server, ssh, home)) = jsch_host() else {
        return;
    };
    let url = format!("ssh://git@127.0.0.1:{ssh}/team/app.git");
    let work = f.dir.path();

    // Not verified: the connection is made (no "Algorithm negotiation
    // fail"), and git2fa refuses with its own words.
    let refused = jgit(&home, work, &["ls-remote", &url]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        !refused.stderr.contains("Algorithm negotiation fail"),
        "{refused:?}"
    );
    assert!(
        refused
            .stderr
            .contains("git2fa: team/app requires two-factor authentication (2FA) to read"),
        "{refused:?}"
    );

    // Verified (a code from her app, over the CLI): ls-remote and clone.
    f.git2fa(&["verify", "alice", &code(f.secret_of("alice"), 0)])
        .ok();
    let listed = jgit(&home, work, &["ls-remote", &url]);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.contains("refs/heads/main"), "{listed:?}");
    let cloned = jgit(&home, work, &["clone", &url, "jgit-clone"]);
    assert_eq!(cloned.code, 0, "{cloned:?}");
    assert!(work.join("jgit-clone/.git").is_dir(), "{cloned:?}");

    // The audit log has the reads, with the key alice used.
    let audit = f
        .git2fa(&["audit", "--user", "alice", "--limit", "20"])
        .ok()
        .stdout;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("ssh alice read allow") && l.contains("repo=team/app")),
        "{audit}"
    );
}
