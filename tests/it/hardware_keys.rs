//! Hardware-backed SSH keys as the second factor: security keys made by the
//! real `ssh-keygen` through a software provider (`harness::sk`), marked
//! with `git2fa key add --hardware`, used by the real `ssh` and git against
//! Debian's sshd with `git2fa authorized-keys`, and refused by
//! `git2fa serve`'s own SSH server.

use std::path::{Path, PathBuf};

use crate::harness::client::Client;
use crate::harness::fixture::{Fixture, PASSWORD};
use crate::harness::sk::{self, Flags, SoftKeys};
use crate::harness::sshd::{self, SshClient, Sshd};
use crate::harness::web_server::{self, Server};
use crate::harness::{Host, Run, code, run};

/// A host with `policy`, alice with an ordinary key and TOTP, `team/app`
/// with a commit and the git2fa hooks, requiring 2FA to push; sshd; the
/// provider built.
struct Setup {
    host: Fixture,
    sshd: Sshd,
    keys: SoftKeys,
    work: PathBuf,
}

fn setup(policy: &str) -> Option<Setup> {
    setup_with(policy, "")
}

/// `setup`, with `extra` after `[policy]` in config.toml.
fn setup_with(policy: &str, extra: &str) -> Option<Setup> {
    if !sshd::available() || !sk::available() {
        return None;
    }
    let host = Host::with_policy(policy, extra)
        .user("alice")
        .key()
        .enrolled()
        .repo("team/app")
        .hooks();
    host.git2fa(&["repo", "flag", "team/app", "--require", "push"])
        .ok();
    let keys = SoftKeys::build(host.dir.path());
    let work = host.work().to_path_buf();
    let sshd = Sshd::start(&host);
    Some(Setup {
        host,
        sshd,
        keys,
        work,
    })
}

impl Setup {
    /// A security key for alice, made with or without `-O
    /// verify-required`, registered with `extra` (`--hardware …`).
    fn security_key(&self, name: &str, verify_required: bool, extra: &[&str]) -> PathBuf {
        let key = self
            .keys
            .enroll(&self.host.dir.path().join(name), verify_required);
        let public = format!("{}.pub", key.display());
        let mut args = vec!["key", "add", "alice", public.as_str()];
        args.extend(extra);
        self.host.git2fa(&args).ok();
        key
    }

    fn sk_git(&self, key: &Path, flags: Flags, args: &[&str]) -> Run {
        self.keys
            .git(&self.sshd.client(), key, flags, &self.work, args)
    }

    fn plain_git(&self, args: &[&str]) -> Run {
        self.sshd.git(self.host.key_of("alice"), &self.work, args)
    }

    fn commit(&self, message: &str) {
        crate::harness::commit_readme(&self.work, message);
    }

    fn tag(&self, name: &str) {
        run("git", &["tag", name], &self.work, &[], "").ok();
    }

    /// The audit rows of team/app, newest first.
    fn audit(&self) -> Vec<String> {
        self.host
            .git2fa(&["audit", "--repo", "team/app", "--limit", "500"])
            .ok()
            .stdout
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn url(&self) -> String {
        self.sshd.url("team/app")
    }
}

#[test]
fn a_key_marked_verified_is_the_second_factor_through_openssh_and_sshd_wants_its_pin() {
    let Some(s) = setup("hardware_keys = \"counts-as-2fa\"") else {
        return;
    };
    let key = s.security_key("alice_sk", true, &["--hardware", "verified"]);
    let listed = s.host.git2fa(&["key", "list", "alice"]).ok();
    assert!(
        listed.stdout.contains("sk-ssh-ed25519@openssh.com SHA256:")
            && listed.stdout.contains("hardware=verified"),
        "{listed:?}"
    );
    let url = s.url();
    // No 2FA session is open: the ordinary key is refused, as before.
    s.commit("with an ordinary key");
    let plain = s.plain_git(&["push", &url, "main"]);
    assert_ne!(plain.code, 0, "{plain:?}");
    assert!(
        plain.stderr.contains("alice has no open 2FA session."),
        "{plain:?}"
    );
    // The security key, touched and with its PIN, is the second factor.
    let pushed = s.sk_git(&key, Flags::AsMade, &["push", &url, "main"]);
    assert_eq!(pushed.code, 0, "{pushed:?}");
    let rows = s.audit();
    let allowed: Vec<&String> = rows
        .iter()
        .filter(|r| r.contains(" write allow "))
        .collect();
    assert!(!allowed.is_empty(), "{rows:#?}");
    for row in &allowed {
        assert!(
            row.contains("reason=hardware-key") || row.contains(" allow hardware-key "),
            "{row}"
        );
        assert!(
            row.contains("credential=key factor=hardware-verified key=#2"),
            "{row}"
        );
    }
    // The same push signed without the PIN's flag: sshd refuses the
    // signature (`verify-required`), so git2fa never hears of it.
    s.commit("signed with a touch only");
    let before = s.audit().len();
    let touch_only = s.sk_git(&key, Flags::Exactly(0x01), &["push", &url, "main"]);
    assert_ne!(touch_only.code, 0, "{touch_only:?}");
    assert!(
        touch_only.stderr.contains("Permission denied (publickey)"),
        "{touch_only:?}"
    );
    assert_eq!(s.audit().len(), before, "no decision was asked for");
    let log = std::fs::read_to_string(s.host.dir.path().join("sshd/sshd.log")).unwrap();
    assert!(
        log.contains("user verification requirement not met"),
        "{log}"
    );
    // And without a touch at all: refused as well.
    let no_touch = s.sk_git(&key, Flags::Exactly(0x00), &["push", &url, "main"]);
    assert_ne!(no_touch.code, 0, "{no_touch:?}");
    assert!(
        log_after(&s).contains("user presence (authenticator touch) requirement not met"),
        "sshd's log"
    );
}

fn log_after(s: &Setup) -> String {
    std::fs::read_to_string(s.host.dir.path().join("sshd/sshd.log")).unwrap()
}

#[test]
fn unmarked_or_with_hardware_keys_off_a_security_key_is_one_factor() {
    let Some(s) = setup("") else {
        return;
    };
    // hardware_keys is "off" (the default): a marked key is a key.
    let marked = s.security_key("alice_marked", true, &["--hardware", "verified"]);
    let url = s.url();
    s.commit("hardware keys off");
    let refused = s.sk_git(&marked, Flags::AsMade, &["push", &url, "main"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("alice has no open 2FA session."),
        "{refused:?}"
    );
    // The row still says what the connection proved.
    let rows = s.audit();
    assert!(
        rows[0].contains("refuse no-session")
            && rows[0].contains("credential=key factor=hardware-verified"),
        "{rows:#?}"
    );
    // An unmarked security key proves nothing more than a key: its rows
    // have no factor.
    let unmarked = s.security_key("alice_unmarked", false, &[]);
    let refused = s.sk_git(&unmarked, Flags::AsMade, &["push", &url, "main"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    let rows = s.audit();
    assert!(
        rows[0].contains("refuse no-session") && !rows[0].contains("factor="),
        "{rows:#?}"
    );
}

#[test]
fn a_release_tag_needs_the_key_with_its_pin_whatever_sessions_are_open() {
    let Some(s) = setup("require_hardware_key = [\"refs/tags/v*\"]") else {
        return;
    };
    let verified = s.security_key("alice_pin", true, &["--hardware", "verified"]);
    let touch = s.security_key("alice_touch", false, &["--hardware", "present"]);
    let url = s.url();
    // alice verifies: her TOTP session is open.
    s.host
        .git2fa(&["verify", "alice", &code(s.host.secret_of("alice"), 0)])
        .ok();
    // A branch: the session is enough.
    s.commit("a branch push");
    let branch = s.plain_git(&["push", &url, "main"]);
    assert_eq!(branch.code, 0, "{branch:?}");
    // A release tag with the ordinary key and the session: refused, and
    // told which refs and how to add a key.
    s.tag("v1.0");
    let tag = s.plain_git(&["push", &url, "v1.0"]);
    assert_ne!(tag.code, 0, "{tag:?}");
    for line in [
        "git2fa: team/app: a push to refs/tags/v1.0 needs a hardware security key with its PIN (user verification), used on this very connection; a 2FA session or a token is not enough.",
        "Make one with: ssh-keygen -t ed25519-sk -O verify-required",
        "add its .pub at https://git.example.com/2fa/keys marked \"PIN every time\" (or ask an admin: git2fa key add alice FILE --hardware verified), then push with it over the host's OpenSSH (git2fa serve's own SSH server takes no security keys).",
    ] {
        assert!(tag.stderr.contains(line), "{line}\n{tag:?}");
    }
    let rows = s.audit();
    assert!(
        rows[0].contains("refuse hardware-key-required") && rows[0].contains("refs=refs/tags/v1.0"),
        "{rows:#?}"
    );
    // A key that proves only a touch: refused the same way.
    let touched = s.sk_git(&touch, Flags::AsMade, &["push", &url, "v1.0"]);
    assert_ne!(touched.code, 0, "{touched:?}");
    assert!(
        touched
            .stderr
            .contains("needs a hardware security key with its PIN"),
        "{touched:?}"
    );
    // The key marked verified, with its PIN: allowed.
    let pushed = s.sk_git(&verified, Flags::AsMade, &["push", &url, "v1.0"]);
    assert_eq!(pushed.code, 0, "{pushed:?}");
    let tags = run(
        "git",
        &["tag", "--list"],
        &s.host.root.join("team/app.git"),
        &[],
        "",
    )
    .ok();
    assert_eq!(tags.stdout, "v1.0\n");
    let rows = s.audit();
    assert!(
        rows[0].contains("allow session")
            && rows[0].contains("refs=refs/tags/v1.0")
            && rows[0].contains("factor=hardware-verified"),
        "{rows:#?}"
    );
    // The mark lowered by an admin counts at the key's next use, whatever
    // the line sshd was given said.
    let id = key_id(&s.host, "test-sk", 1);
    s.host
        .git2fa(&["key", "mark", &id, "--hardware", "present"])
        .ok();
    s.tag("v1.1");
    let lowered = s.sk_git(&verified, Flags::AsMade, &["push", &url, "v1.1"]);
    assert_ne!(lowered.code, 0, "{lowered:?}");
    assert!(
        lowered
            .stderr
            .contains("a push to refs/tags/v1.1 needs a hardware security key"),
        "{lowered:?}"
    );
}

/// The id (`#N` without `#`) of the `nth` key (1-based) of alice whose
/// comment is `comment`.
fn key_id(host: &Host, comment: &str, nth: usize) -> String {
    let list = host.git2fa(&["key", "list", "alice"]).ok();
    let line = list
        .stdout
        .lines()
        .filter(|l| l.contains(comment))
        .nth(nth - 1)
        .unwrap_or_else(|| panic!("{list:?}"))
        .to_string();
    line.split(' ')
        .next()
        .unwrap()
        .trim_start_matches('#')
        .to_string()
}

#[test]
fn through_serve_the_shims_carry_what_sshd_enforced() {
    // serve decides for the shims (decide.sock); the web port is unused.
    let port = web_server::free_port();
    let Some(s) = setup_with(
        "require_hardware_key = [\"refs/tags/v*\"]",
        &format!("[web]\nlisten = \"127.0.0.1:{port}\"\n[ssh]\nlisten = \"\"\n"),
    ) else {
        return;
    };
    let _server = Server::start(&s.host, port);
    // The repository's hooks run a copy of git2fa-hook with no git2fa
    // beside it: it cannot decide by itself, so what it answers came
    // from serve.
    let lone = s.host.dir.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(crate::harness::HOOK_BIN, lone.join("git2fa-hook")).unwrap();
    for hook in ["pre-receive", "update"] {
        let path = s.host.root.join("team/app.git/hooks").join(hook);
        let stub = std::fs::read_to_string(&path).unwrap();
        assert!(stub.contains(crate::harness::HOOK_BIN), "{stub}");
        let lone_hook = lone.join("git2fa-hook").display().to_string();
        std::fs::write(&path, stub.replace(crate::harness::HOOK_BIN, &lone_hook)).unwrap();
    }
    let verified = s.security_key("alice_pin", true, &["--hardware", "verified"]);
    s.host
        .git2fa(&["verify", "alice", &code(s.host.secret_of("alice"), 0)])
        .ok();
    let url = s.url();
    s.tag("v2.0");
    let plain = s.plain_git(&["push", &url, "v2.0"]);
    assert_ne!(plain.code, 0, "{plain:?}");
    assert!(
        plain
            .stderr
            .contains("a push to refs/tags/v2.0 needs a hardware security key"),
        "{plain:?}"
    );
    let pushed = s.sk_git(&verified, Flags::AsMade, &["push", &url, "v2.0"]);
    assert_eq!(pushed.code, 0, "{pushed:?}");
    let rows = s.audit();
    assert!(
        rows[0].contains("allow session")
            && rows[0].contains("refs=refs/tags/v2.0")
            && rows[0].contains("factor=hardware-verified"),
        "{rows:#?}"
    );
}

#[test]
fn authorized_keys_holds_sshd_to_each_mark_and_never_lifts_the_touch() {
    let Some(s) = setup("") else {
        return;
    };
    let verified = s.security_key("alice_pin", true, &["--hardware", "verified"]);
    let touch = s.security_key("alice_touch", false, &["--hardware", "present"]);
    let plain = s.security_key("alice_plain", false, &[]);
    let line_of = |key: &Path| {
        let public = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
        let mut words = public.split_whitespace();
        let (kind, blob) = (words.next().unwrap(), words.next().unwrap());
        s.host
            .git2fa(&["authorized-keys", "git", kind, blob])
            .ok()
            .stdout
    };
    let line = line_of(&verified);
    assert!(
        line.contains("\",restrict,verify-required sk-ssh-ed25519@openssh.com "),
        "{line}"
    );
    assert!(line.contains(" --hardware verified\""), "{line}");
    let line = line_of(&touch);
    assert!(
        line.contains("\",restrict sk-ssh-ed25519@openssh.com "),
        "{line}"
    );
    assert!(line.contains(" --hardware present\""), "{line}");
    let line = line_of(&plain);
    assert!(
        line.contains("\",restrict sk-ssh-ed25519@openssh.com "),
        "{line}"
    );
    assert!(!line.contains("--hardware"), "{line}");
    for key in [&verified, &touch, &plain] {
        assert!(!line_of(key).contains("no-touch-required"));
    }
    // Unmarked by an admin: the next line drops the option and the word.
    let id = key_id(&s.host, "test-sk", 1);
    let marked = s
        .host
        .git2fa(&["key", "mark", &id, "--hardware", "none"])
        .ok();
    assert!(marked.stdout.contains("is marked none"), "{marked:?}");
    let line = line_of(&verified);
    assert!(
        !line.contains("verify-required") && !line.contains("--hardware"),
        "{line}"
    );
    // Only security keys are marked; a refusal changes nothing.
    let ordinary = format!("{}.pub", s.host.key_of("alice").display());
    let before = s.host.git2fa(&["key", "list"]).ok().stdout;
    let refused = s
        .host
        .git2fa(&["key", "add", "alice", &ordinary, "--hardware", "verified"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("--hardware marks security keys only"),
        "{refused:?}"
    );
    let refused = s
        .host
        .git2fa(&["key", "mark", "1", "--hardware", "present"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("only security keys (sk-…) can be marked"),
        "{refused:?}"
    );
    let bad = s.host.git2fa(&["key", "mark", &id, "--hardware", "always"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert_eq!(s.host.git2fa(&["key", "list"]).ok().stdout, before);
}

#[test]
fn serve_s_own_ssh_server_refuses_security_keys_with_or_without_a_touch() {
    // The attack: a key made with `-O no-touch-required` (or malware using
    // a key left plugged in) signs without anyone touching the device.
    // sshd refuses such a signature unless told otherwise; git2fa serve's
    // SSH server cannot see a signature's flags (its SSH library hands it
    // only the public key), so it must not log such a key in at all.
    if !sk::available() || !crate::serve::ssh_client_available() {
        return;
    }
    let web = web_server::free_port();
    let ssh_port = web_server::free_port();
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        "hardware_keys = \"counts-as-2fa\"\nrequire_hardware_key = [\"refs/tags/v*\"]",
        &format!("[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh_port}\"\n"),
    )
    .user("alice")
    .key()
    .enrolled()
    .repo("team/app")
    .hooks();
    let keys = SoftKeys::build(host.dir.path());
    let key = keys.enroll(&host.dir.path().join("alice_sk"), true);
    host.git2fa(&[
        "key",
        "add",
        "alice",
        &format!("{}.pub", key.display()),
        "--hardware",
        "verified",
    ])
    .ok();
    let _server = Server::start_with(&host, web, &[ssh_port]);
    let client = SshClient {
        port: ssh_port,
        login: "git".into(),
    };
    for flags in [Flags::Exactly(0x00), Flags::Exactly(0x01), Flags::AsMade] {
        let login = keys.ssh(&client, &key, flags, "2fa status");
        assert_ne!(login.code, 0, "{flags:?}: {login:?}");
        assert!(
            login.stderr.contains("Permission denied (publickey)"),
            "{flags:?}: {login:?}"
        );
    }
    let log = std::fs::read_to_string(host.dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("refused the security key SHA256:")
            && log.contains("security keys work through OpenSSH with git2fa authorized-keys"),
        "{log}"
    );
    // An ordinary key logs in; a release tag pushed with it is refused
    // with the way to push it.
    let work = host.work().to_path_buf();
    run("git", &["tag", "v1.0"], &work, &[], "").ok();
    let tag = client.git(
        host.key_of("alice"),
        &work,
        &["push", &client.url("team/app"), "v1.0"],
    );
    assert_ne!(tag.code, 0, "{tag:?}");
    assert!(
        tag.stderr.contains(
            "then push with it over the host's OpenSSH (git2fa serve's own SSH server takes no security keys)."
        ),
        "{tag:?}"
    );
}

#[test]
fn the_web_page_marks_security_keys_only_and_only_the_user_s_own() {
    let port = web_server::free_port();
    let host = web_server::host(port, "").user("alice").enrolled();
    let secret = host.secret_of("alice").to_vec();
    host.add_user("bob");
    let bobs = format!("{} bob\n", crate::harness::ED25519_PUBLIC);
    host.git2fa_with_stdin(&["key", "add", "bob", "-"], &bobs)
        .ok();
    let server = Server::start(&host, port);
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    client.verifies(&code(&secret, 0));
    // `ssh-keygen -t ed25519-sk`'s public line (the ssh-key crate's test
    // vector).
    let sk = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIPcT+/nqe4c8DBB8ld4K6C2UHRA1bJqbBGI2sSWmqd6BAAAABHNzaDo= alice@laptop";
    let added = client.submit(
        "/2fa/keys",
        "/2fa/keys",
        &[("key", sk), ("hardware", "verified")],
    );
    assert!(added.body.contains("Key #2 added"), "{}", added.body);
    let listed = host.git2fa(&["key", "list", "alice"]).ok().stdout;
    assert!(
        listed.contains("#2 alice sk-ssh-ed25519@openssh.com"),
        "{listed}"
    );
    assert!(listed.contains("hardware=verified"), "{listed}");
    let marked = client.submit(
        "/2fa/keys",
        "/2fa/keys/hardware",
        &[("id", "2"), ("hardware", "present")],
    );
    assert!(
        marked.body.contains("Key #2: Touch every time."),
        "{}",
        marked.body
    );
    assert!(
        host.git2fa(&["key", "list", "alice"])
            .ok()
            .stdout
            .contains("hardware=present")
    );
    // An ordinary key cannot be marked, on adding or after.
    let ordinary = format!("{} alice\n", crate::harness::ED25519_PUBLIC);
    let refused = client.submit(
        "/2fa/keys",
        "/2fa/keys",
        &[("key", ordinary.trim()), ("hardware", "present")],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Only a security key (sk-…) can be marked"),
        "{}",
        refused.body
    );
    // Bob's key is not alice's to mark.
    let others = client.submit(
        "/2fa/keys",
        "/2fa/keys/hardware",
        &[("id", "1"), ("hardware", "verified")],
    );
    assert!(
        others.body.contains("No such key of yours."),
        "{}",
        others.body
    );
    let bad = client.submit(
        "/2fa/keys",
        "/2fa/keys/hardware",
        &[("id", "2"), ("hardware", "always")],
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let rows = host.git2fa(&["audit", "--user", "alice"]).ok().stdout;
    assert!(
        rows.lines()
            .any(|r| r.contains("key-mark ok present") && r.contains("key=#2")),
        "{rows}"
    );
    assert!(
        host.git2fa(&["key", "list", "bob"])
            .ok()
            .stdout
            .lines()
            .all(|l| !l.contains("hardware="))
    );
}

/// The user guide's `ssh-keygen` lines, as written, with a user's home:
/// OpenSSH takes the software provider from `SSH_SK_PROVIDER` where a
/// user's takes the device; the key they make is one git2fa marks.
#[test]
fn the_user_guide_s_ssh_keygen_lines_make_a_key_git2fa_marks() {
    if !sk::available() {
        return;
    }
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/user-guide.md"))
            .unwrap();
    let section = guide
        .split("## A security key as your SSH key")
        .nth(1)
        .expect("the user guide's section on security keys");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a ```sh block");
    assert!(
        block.contains("ssh-keygen -t ed25519-sk -O verify-required"),
        "{block}"
    );
    let host = Host::new().user("alice");
    let keys = SoftKeys::build(host.dir.path());
    let home = host.dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let made = run(
        "bash",
        &["-euc", block],
        &home,
        &[
            ("HOME", home.display().to_string()),
            ("SSH_SK_PROVIDER", keys.provider.display().to_string()),
        ],
        "",
    );
    assert_eq!(made.code, 0, "{made:?}");
    let public = home.join(".ssh/id_ed25519_sk.pub");
    let line = std::fs::read_to_string(&public).unwrap();
    assert!(
        line.starts_with("sk-ssh-ed25519@openssh.com ")
            && line.trim_end().ends_with(" alice@laptop"),
        "{line}"
    );
    let added = host
        .git2fa(&[
            "key",
            "add",
            "alice",
            &public.display().to_string(),
            "--hardware",
            "verified",
        ])
        .ok();
    assert!(added.stdout.contains("marked verified"), "{added:?}");
}

#[test]
fn explain_shows_the_hardware_key_rule() {
    let host = Host::with_policy(
        "require_hardware_key = [\"refs/tags/v*\"]\nhardware_keys = \"counts-as-2fa\"",
        "",
    )
    .user("alice")
    .key()
    .enrolled()
    .repo("team/app");
    let sk = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIPcT+/nqe4c8DBB8ld4K6C2UHRA1bJqbBGI2sSWmqd6BAAAABHNzaDo= alice@laptop\n";
    host.git2fa_with_stdin(&["key", "add", "alice", "-", "--hardware", "verified"], sk)
        .ok();
    host.git2fa(&["repo", "flag", "team/app"]).ok();
    let explain = |extra: &[&str]| {
        let mut args = vec![
            "explain",
            "alice",
            "team/app",
            "write",
            "--ref",
            "refs/tags/v1.0",
        ];
        args.extend(extra);
        host.git2fa(&args)
    };
    let plain = explain(&["--key-id", "1"]);
    assert_eq!(plain.code, 1, "{plain:?}");
    assert!(
        plain.stdout.contains(
            "refused by rule 9 (hardware-key-required): a pushed ref is in require_hardware_key"
        ),
        "{plain:?}"
    );
    assert!(
        plain
            .stdout
            .contains("a push to refs/tags/v1.0 needs a hardware security key with its PIN"),
        "{plain:?}"
    );
    let marked = explain(&["--key-id", "2"]);
    assert_eq!(marked.code, 0, "{marked:?}");
    assert!(
        marked
            .stdout
            .contains("key #2 is a security key marked verified")
            && marked.stdout.contains("allowed by rule 7 (hardware-key)"),
        "{marked:?}"
    );
}

#[test]
fn where_users_may_not_mark_keys_only_an_admin_does() {
    let port = web_server::free_port();
    let host = web_server::host(port, "users_may_mark_keys = false")
        .user("alice")
        .enrolled();
    let secret = host.secret_of("alice").to_vec();
    let server = Server::start(&host, port);
    let mut client = Client::new(&server);
    client.logs_in("alice", PASSWORD);
    client.verifies(&code(&secret, 0));
    let sk = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIPcT+/nqe4c8DBB8ld4K6C2UHRA1bJqbBGI2sSWmqd6BAAAABHNzaDo= alice@laptop";
    let page = client.get("/2fa/keys");
    assert!(
        page.body
            .contains("Security keys are marked as such by an admin of this host."),
        "{}",
        page.body
    );
    let refused = client.submit(
        "/2fa/keys",
        "/2fa/keys",
        &[("key", sk), ("hardware", "verified")],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("ask one (git2fa key mark)"),
        "{}",
        refused.body
    );
    assert_eq!(host.git2fa(&["key", "list"]).ok().stdout, "");
    let added = client.submit("/2fa/keys", "/2fa/keys", &[("key", sk)]);
    assert!(added.body.contains("Key #1 added"), "{}", added.body);
    let mark = client.submit(
        "/2fa/keys",
        "/2fa/keys/hardware",
        &[("id", "1"), ("hardware", "verified")],
    );
    assert_eq!(mark.status, 403, "{}", mark.body);
    assert!(
        !host
            .git2fa(&["key", "list"])
            .ok()
            .stdout
            .contains("hardware=")
    );
    host.git2fa(&["key", "mark", "1", "--hardware", "verified"])
        .ok();
    let page = client.get("/2fa/keys");
    assert!(page.body.contains("PIN every time"), "{}", page.body);
    let rows = host.git2fa(&["audit", "--user", "alice"]).ok().stdout;
    assert!(
        rows.lines()
            .any(|r| r.contains("key-mark ok verified") && r.contains("factor=hardware-verified")),
        "{rows}"
    );
}
