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

/// `script` under bash with its input closed and a time limit: a package
/// script that stops at a question fails instead of waiting.
fn bash_closed(script: &str) -> crate::harness::Run {
    crate::harness::Run::from(
        Command::new("timeout")
            .args(["300", "bash", "-euo", "pipefail", "-c", script])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

/// The package `install/build-deb` makes, unpacked, with `version` and
/// `# CHANGE` appended to each file of `changed` (paths in the package),
/// packed again into `out`: the next release, as dpkg sees one.
fn next_release(deb: &str, version: &str, changed: &[&str], out: &Path) -> String {
    let tree = out.join(version);
    let deb_out = out.join(format!("git2fa_{version}.deb"));
    let mut script = format!(
        "dpkg-deb -R {deb} {tree}\nsed -i 's/^Version: .*/Version: {version}/' {tree}/DEBIAN/control\n",
        tree = tree.display()
    );
    for path in changed {
        script += &format!(
            "echo '# changed in {version}' >> {}/{path}\n",
            tree.display()
        );
    }
    script += &format!(
        "dpkg-deb --root-owner-group --build {} {} >/dev/null\n",
        tree.display(),
        deb_out.display()
    );
    let built = bash_closed(&script);
    assert_eq!(built.code, 0, "{built:?}");
    deb_out.display().to_string()
}

// An upgrade must never stop at dpkg's question about a changed conffile:
// `apt-get install -y` (unattended-upgrades, Ansible, a CI job) then fails
// half-way, with serve stopped by prerm. The guide once had admins edit
// the sshd snippet, a conffile: the next package that changed it stopped
// there. Admins' sshd lines now go in /etc/git2fa/sshd-local.conf, which
// the snippet includes and the package does not own; a web block an admin
// changed is kept by the upgrade the guide gives for that case.
#[test]
fn upgrades_across_changed_conffiles_ask_nothing_and_keep_the_admin_s_changes() {
    if !throwaway::enter() {
        return;
    }
    if !crate::harness::e2e_available(
        Path::new("/usr/sbin/sshd").exists(),
        "/usr/sbin/sshd",
        "openssh-server",
    ) {
        return;
    }
    let _ = Command::new("dpkg").args(["--purge", "git2fa"]).output();
    let built = bash_closed(&format!("{ROOT}/install/build-deb"));
    assert_eq!(built.code, 0, "{built:?}");
    let deb = built.stdout.trim().to_string();
    let version = bash_closed(&format!("dpkg-deb -f {deb} Version"))
        .stdout
        .trim()
        .to_string();
    let work = tempfile::tempdir().unwrap();
    let snippet = "etc/ssh/sshd_config.d/git2fa.conf";
    let next = next_release(
        &deb,
        &format!("{version}+1"),
        &[
            snippet,
            "etc/git2fa/nginx/web.conf",
            "etc/git2fa/apache/web.conf",
        ],
        work.path(),
    );
    let after = next_release(
        &deb,
        &format!("{version}+2"),
        &[snippet, "etc/git2fa/nginx/web.conf"],
        work.path(),
    );

    let installed = bash_closed(&format!("apt-get install -y -q {deb}"));
    assert_eq!(installed.code, 0, "{installed:?}");
    // The admin's changes, the guide's way.
    let local = "SetEnv GIT2FA_LOG_FILE=/var/log/git2fa.log\n";
    std::fs::write("/etc/git2fa/sshd-local.conf", local).unwrap();
    let config = Path::new("/etc/git2fa/config.toml");
    let mut text = std::fs::read_to_string(config).unwrap();
    text = text.replace("session_ttl = \"1h\"", "session_ttl = \"2h\"");
    std::fs::write(config, &text).unwrap();
    assert!(text.contains("session_ttl = \"2h\""), "{text}");

    // The next release changed the snippet and both web blocks.
    let upgraded = bash_closed(&format!("apt-get install -y -q {next}"));
    assert_eq!(upgraded.code, 0, "the upgrade stopped: {upgraded:?}");
    let shown = bash_closed("dpkg-query -W -f '${Version} ${Status}' git2fa");
    assert_eq!(
        shown.stdout,
        format!("{version}+1 install ok installed"),
        "{shown:?}"
    );
    for path in [
        snippet,
        "etc/git2fa/nginx/web.conf",
        "etc/git2fa/apache/web.conf",
    ] {
        let now = std::fs::read_to_string(Path::new("/").join(path)).unwrap();
        assert!(
            now.ends_with(&format!("# changed in {version}+1\n")),
            "/{path} is not the new release's:\n{now}"
        );
    }
    assert_eq!(
        std::fs::read_to_string("/etc/git2fa/sshd-local.conf").unwrap(),
        local
    );
    assert_eq!(std::fs::read_to_string(config).unwrap(), text);
    // sshd takes the new snippet with the admin's line in the git block.
    let sshd =
        bash_closed("/usr/sbin/sshd -t && /usr/sbin/sshd -T -C user=git,host=h,addr=127.0.0.1");
    assert_eq!(sshd.code, 0, "{sshd:?}");
    assert!(
        sshd.stdout
            .lines()
            .any(|l| l == "setenv GIT2FA_LOG_FILE=/var/log/git2fa.log"),
        "{sshd:?}"
    );
    let store =
        bash_closed("runuser -u git -- /usr/bin/git2fa --config /etc/git2fa/config.toml user list");
    assert_eq!(store.code, 0, "{store:?}");

    // A web block the admin changed, which the next release changes too:
    // the guide's unattended upgrade keeps the admin's and puts the
    // package's beside it.
    let block = Path::new("/etc/git2fa/nginx/web.conf");
    let mine = std::fs::read_to_string(block)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:8081");
    std::fs::write(block, &mine).unwrap();
    let upgraded = bash_closed(&format!(
        "apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {after}"
    ));
    assert_eq!(upgraded.code, 0, "the upgrade stopped: {upgraded:?}");
    assert_eq!(std::fs::read_to_string(block).unwrap(), mine);
    let theirs = std::fs::read_to_string("/etc/git2fa/nginx/web.conf.dpkg-dist").unwrap();
    assert!(
        theirs.ends_with(&format!("# changed in {version}+2\n")),
        "{theirs}"
    );
    let snippet_now = std::fs::read_to_string(Path::new("/").join(snippet)).unwrap();
    assert!(
        snippet_now.ends_with(&format!("# changed in {version}+2\n")),
        "{snippet_now}"
    );
    let _ = Command::new("dpkg").args(["--purge", "git2fa"]).output();
}

/// systemctl for a throwaway root, where systemd is not running: enough of
/// it for the maintainer scripts, with git2fa.service started as the unit
/// says (as git, `serve`). Each call is logged in /run/stub-systemd/calls.
/// A stopped serve may stay a zombie (nothing reaps in the throwaway PID
/// namespace), so a zombie counts as stopped.
const STUB_SYSTEMCTL: &str = r#"#!/bin/sh
state=/run/stub-systemd
mkdir -p "$state"
echo "$*" >> "$state/calls"
[ "$1" = is-active ] && [ "$2" = --quiet ] && { shift; set -- is-active "$2"; }
alive() {
    pid=$(cat "$state/$1.pid" 2>/dev/null) || return 1
    [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cut -d' ' -f3 "/proc/$pid/stat")" != Z ]
}
case "$1" in
is-active) alive "$2" ;;
start)
    [ "$2" = git2fa.service ] || exit 0
    alive "$2" && exit 0
    install -d -o git -g git -m 0755 /run/git2fa
    setsid setpriv --reuid=git --regid=git --init-groups \
        /usr/bin/git2fa --config /etc/git2fa/config.toml serve \
        </dev/null >>"$state/serve.log" 2>&1 &
    echo $! > "$state/$2.pid"
    ;;
stop)
    alive "$2" || exit 0
    kill "$(cat "$state/$2.pid")"
    for _ in $(seq 100); do alive "$2" || exit 0; sleep 0.1; done
    exit 1
    ;;
*) exit 0 ;;
esac
"#;

/// The pid of the serve the stub started, once it answers on its web
/// port, or None when it does not within ten seconds.
fn serve_answering() -> Option<String> {
    let run = bash_closed(
        "for _ in $(seq 100); do
             if systemctl is-active --quiet git2fa.service &&
                [ \"$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/login)\" = 200 ]; then
                 cat /run/stub-systemd/git2fa.service.pid; exit 0
             fi
             sleep 0.1
         done
         exit 1",
    );
    (run.code == 0).then(|| run.stdout.trim().to_string())
}

// An upgrade stops serve (prerm) before it replaces the binary; whatever
// way the upgrade ends, serve must run again, or the host refuses every
// git operation and the web page is gone until an admin notices. With a
// systemctl that does what the unit says: a plain upgrade, a reinstall of
// the same version, and an upgrade whose new package fails before it is
// configured (the old postinst's abort-upgrade) each leave a new serve
// answering, run from the installed binary; a serve the admin stopped
// stays stopped.
#[test]
fn serve_runs_again_after_every_upgrade_path() {
    if !throwaway::enter() {
        return;
    }
    if !crate::harness::e2e_available(crate::harness::which("curl").is_some(), "curl", "curl") {
        return;
    }
    let _ = Command::new("dpkg").args(["--purge", "git2fa"]).output();
    std::fs::create_dir_all("/run/systemd/system").unwrap();
    let _ = std::fs::remove_file("/usr/bin/systemctl");
    std::fs::write("/usr/bin/systemctl", STUB_SYSTEMCTL).unwrap();
    std::fs::set_permissions(
        "/usr/bin/systemctl",
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let built = bash_closed(&format!("{ROOT}/install/build-deb"));
    assert_eq!(built.code, 0, "{built:?}");
    let deb = built.stdout.trim().to_string();
    let version = bash_closed(&format!("dpkg-deb -f {deb} Version"))
        .stdout
        .trim()
        .to_string();
    let work = tempfile::tempdir().unwrap();
    let next = next_release(&deb, &format!("{version}+1"), &[], work.path());
    let later = next_release(&deb, &format!("{version}+3"), &[], work.path());
    // A release whose preinst fails: dpkg then runs the installed
    // version's postinst with abort-upgrade.
    let broken = work.path().join(format!("git2fa_{version}+2.deb"));
    let tree = work.path().join("broken");
    let made = bash_closed(&format!(
        "dpkg-deb -R {deb} {tree}
         sed -i 's/^Version: .*/Version: {version}+2/' {tree}/DEBIAN/control
         printf '#!/bin/sh\\necho this release cannot be installed >&2\\nexit 1\\n' > {tree}/DEBIAN/preinst
         chmod 0755 {tree}/DEBIAN/preinst
         dpkg-deb --root-owner-group --build {tree} {broken} >/dev/null",
        tree = tree.display(),
        broken = broken.display()
    ));
    assert_eq!(made.code, 0, "{made:?}");

    let installed = bash_closed(&format!("apt-get install -y -q {deb}"));
    assert_eq!(installed.code, 0, "{installed:?}");
    assert_eq!(serve_answering(), None, "a first install starts nothing");
    let started = bash_closed("systemctl start git2fa.service");
    assert_eq!(started.code, 0, "{started:?}");
    let mut before = serve_answering().expect("serve did not start");

    let installed_version = || {
        bash_closed("dpkg-query -W -f '${Version} ${Status}' git2fa")
            .stdout
            .trim()
            .to_string()
    };
    let runs_the_installed_binary = |pid: &str| {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(
            exe,
            Path::new("/usr/bin/git2fa"),
            "serve {pid} runs {exe:?}"
        );
    };
    for (what, command, ok, now) in [
        (
            "an upgrade",
            format!("apt-get install -y -q {next}"),
            true,
            format!("{version}+1"),
        ),
        (
            "a reinstall",
            format!("dpkg -i {next}"),
            true,
            format!("{version}+1"),
        ),
        (
            "a failed upgrade",
            format!("apt-get install -y -q {}", broken.display()),
            false,
            format!("{version}+1"),
        ),
    ] {
        let run = bash_closed(&command);
        assert_eq!(run.code == 0, ok, "{what}: {run:?}");
        assert_eq!(
            installed_version(),
            format!("{now} install ok installed"),
            "{what}"
        );
        let after = serve_answering().unwrap_or_else(|| {
            panic!(
                "serve is not running after {what}: {run:?}\n{}",
                std::fs::read_to_string("/run/stub-systemd/calls").unwrap_or_default()
            )
        });
        assert_ne!(after, before, "{what} did not restart serve");
        runs_the_installed_binary(&after);
        before = after;
    }
    let leftover: Vec<_> = std::fs::read_dir("/run")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("git2fa-restart-")
        })
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");

    // Stopped by the admin, serve stays stopped across an upgrade.
    let stopped = bash_closed("systemctl stop git2fa.service");
    assert_eq!(stopped.code, 0, "{stopped:?}");
    let run = bash_closed(&format!("apt-get install -y -q {later}"));
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        installed_version(),
        format!("{version}+3 install ok installed")
    );
    assert_eq!(
        serve_answering(),
        None,
        "the upgrade started a serve the admin had stopped"
    );
    let _ = Command::new("dpkg").args(["--purge", "git2fa"]).output();
}
