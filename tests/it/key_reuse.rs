//! A held SSH connection never becomes another user: key ids are never
//! given again, and every command checks that the key the connection
//! authenticated with is still the key of that id. Through sshd +
//! `git2fa-shell` and through `git2fa serve`'s embedded server.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::sshd::{Multiplexed, SshClient, Sshd, keygen};
use crate::harness::web_server::{Server, free_port};
use crate::harness::{Host, which};

/// mallory and dora, each with a repository only they may read.
fn people(host: &Host) -> (PathBuf, PathBuf) {
    host.add_user("mallory");
    host.add_user("dora");
    for (owner, repo) in [("mallory", "m/tools"), ("dora", "d/secret")] {
        host.bare_repo(&format!("{repo}.git"));
        std::fs::write(
            host.root.join(format!("{repo}.git/git2fa.toml")),
            format!(
                "require = \"off\"\nowners = [\"{owner}\"]\nreaders = [\"{owner}\"]\nwriters = [\"{owner}\"]\n"
            ),
        )
        .unwrap();
    }
    let mallory = host.dir.path().join("mallory_key");
    let dora = host.dir.path().join("dora_key");
    keygen(&mallory);
    keygen(&dora);
    host.git2fa(&[
        "key",
        "add",
        "mallory",
        &format!("{}.pub", mallory.display()),
    ])
    .ok();
    (mallory, dora)
}

/// The attack, on either server: mallory logs in and holds the connection,
/// removes her key (as on `/2fa/keys`), dora registers a key (which took
/// mallory's freed id, since SQLite reused the newest id), and mallory's
/// held connection greeted "Hi dora" and read dora's repository.
fn replay(host: &Host, client: &SshClient, mallory: &Path, dora: &Path) {
    let master = Multiplexed::open(client, mallory, host.dir.path().join("mallory.ctl"));
    let hello = master.run(client, "");
    assert!(hello.stdout.contains("Hi mallory!"), "{hello:?}");

    host.git2fa(&["key", "remove", "1"]).ok();
    let added = host
        .git2fa(&["key", "add", "dora", &format!("{}.pub", dora.display())])
        .ok();
    assert!(
        !added.stdout.contains("key #1 "),
        "dora's key got mallory's old id: {added:?}"
    );

    let hello = master.run(client, "");
    assert!(!hello.stdout.contains("Hi dora"), "{hello:?}");
    assert_ne!(hello.code, 0, "{hello:?}");
    let read = master.run(client, "git-upload-pack 'd/secret.git'");
    assert_eq!(read.code, 1, "{read:?}");
    assert!(!read.stdout.contains("refs/"), "{read:?}");

    // dora herself gets in with her key.
    let hers = client.ssh(dora, "", "");
    assert!(hers.stdout.contains("Hi dora!"), "{hers:?}");

    let audit = host.git2fa(&["audit", "--limit", "50"]).ok().stdout;
    assert!(
        audit.contains("refuse unknown-key") && audit.contains("was removed"),
        "{audit}"
    );
}

#[test]
fn a_held_sshd_connection_does_not_become_the_next_keys_owner() {
    if !crate::harness::sshd::available() {
        return;
    }
    let host = Host::new();
    let (mallory, dora) = people(&host);
    let sshd = Sshd::start(&host);
    replay(&host, &sshd.client(), &mallory, &dora);
}

#[test]
fn a_held_embedded_ssh_connection_does_not_become_the_next_keys_owner() {
    if !crate::harness::e2e_available(which("ssh").is_some(), "ssh", "openssh-client") {
        return;
    }
    let (web, ssh) = (free_port(), free_port());
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        "",
        &format!("[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh}\"\n"),
    );
    let (mallory, dora) = people(&host);
    let _server = Server::start_with(&host, web, &[ssh]);
    let client = SshClient {
        port: ssh,
        login: "git".into(),
    };
    replay(&host, &client, &mallory, &dora);
}

// Attack: a forced command written for key #1 (by an older git2fa, or by
// hand) names the key by id alone; once that id belongs to another key, it
// would run as that key's owner. The shell refuses without the fingerprint,
// and with one that is not key #1's.
#[test]
fn the_shell_refuses_a_key_id_without_its_fingerprint() {
    let host = Host::new();
    let (_mallory, _dora) = people(&host);
    let shell = |args: &[String]| {
        let out = Command::new(crate::harness::SHELL_BIN)
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let mut args = host.shell_args(1);
    let (code, out) = shell(&args);
    assert_eq!(code, Some(0));
    assert!(out.contains("Hi mallory!"), "{out}");
    let (code, out) = shell(&args[..4]);
    assert_eq!(code, Some(1));
    assert!(!out.contains("Hi "), "{out}");
    // Once the account is disabled, its key answers nothing more, not
    // even the greeting.
    host.git2fa(&["user", "disable", "mallory"]).ok();
    let (code, out) = shell(&args);
    assert_eq!(code, Some(1));
    assert!(!out.contains("Hi "), "{out}");
    args[5] = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    host.git2fa(&["user", "enable", "mallory"]).ok();
    let (code, out) = shell(&args);
    assert_eq!(code, Some(1));
    assert!(!out.contains("Hi "), "{out}");
}
