//! A throwaway root for the tests that change the host: install or purge
//! the package, add or remove accounts, write `/etc`, `/srv` or `/var/lib`.
//!
//! Such a test calls [`enter`] first. Outside a throwaway root, `enter`
//! runs the same test again in a new mount, PID and network namespace
//! (`unshare`, Debian's util-linux) whose `/` is an overlay over the
//! host's `/` with its upper layer on a tmpfs, and whose network is a
//! loopback of its own; it checks that run and returns false, so the
//! calling test returns. Inside, `enter` returns true and the test goes
//! on: what it writes lands in the tmpfs, and is gone with the namespace,
//! together with every process the test started.
//!
//! `tests/run` checks that the host's accounts, `/srv`, `/etc/git2fa`,
//! `/var/lib/git2fa` and package database are the same after the run as
//! before (`host_untouched.rs` checks the mechanism itself).

use std::path::Path;
use std::process::Command;

use super::{Run, e2e_available, unix_user, which};

/// Set in the re-run test: it is inside a throwaway root.
const INSIDE: &str = "GIT2FA_THROWAWAY_ROOT";

/// What the namespace's first process does: the overlay, `/proc` of the
/// new PID namespace, the host's `/dev` and `/sys`, the loopback up, then
/// the test, in the new root.
const ENTER: &str = r#"
set -eu
scratch=$1; cwd=$2; shift 2
mount -t tmpfs -o mode=0700 git2fa-throwaway "$scratch"
mkdir "$scratch/upper" "$scratch/work" "$scratch/root"
mount -t overlay git2fa-throwaway \
    -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" "$scratch/root"
mount -t proc proc "$scratch/root/proc"
mount --rbind /dev "$scratch/root/dev"
mount --rbind /sys "$scratch/root/sys"
ip link set lo up
exec chroot "$scratch/root" /bin/sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"
"#;

/// Whether this process runs inside a throwaway root: the variable is set
/// and `/` is an overlay (so that the variable alone, set by mistake on a
/// real host, never lets a test change it).
pub fn inside() -> bool {
    if std::env::var_os(INSIDE).is_none() {
        return false;
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let root_is_overlay = mounts.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.get(1) == Some(&"/") && fields.get(2) == Some(&"overlay")
    });
    assert!(
        root_is_overlay,
        "{INSIDE} is set but / is not an overlay: this test would change the host"
    );
    true
}

/// Whether a throwaway root can be made here: root, `unshare` and `ip`.
pub fn available() -> bool {
    e2e_available(
        unix_user() == "root",
        "root (a throwaway root needs namespaces and mounts)",
        "(none: run the tests as root)",
    ) && e2e_available(which("unshare").is_some(), "unshare", "util-linux")
        && e2e_available(
            which("ip").is_some() || Path::new("/usr/sbin/ip").exists(),
            "ip",
            "iproute2",
        )
}

/// Runs the calling test again in a throwaway root; true when this is
/// that run and the test should go on. Outside, it waits for the run,
/// fails if the test failed there, and returns false. The test is named by
/// its thread, which the test runner names after it
/// (`check::a_sound_host_passes`).
#[track_caller]
pub fn enter() -> bool {
    if inside() {
        return true;
    }
    if !available() {
        return false;
    }
    let thread = std::thread::current();
    let name = thread
        .name()
        .filter(|n| *n != "main")
        .expect("a test thread named after its test");
    let run = run_inside(name, &[]);
    print!("{}", run.stdout);
    eprint!("{}", run.stderr);
    // A skip in there is a skip here (the line names the test already).
    for line in run.stdout.lines() {
        if let Some(skip) = line.strip_prefix(super::SKIP_LINE) {
            let why = skip.split_once(": ").map_or(skip, |(_, why)| why);
            super::record_skip(why);
        }
    }
    assert!(
        run.code == 0 && run.stdout.contains("test result: ok. 1 passed"),
        "{name} failed in its throwaway root (exit {}):\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    false
}

/// Runs this test binary in a new throwaway root with `args`, and with
/// `name` as the exact test to run unless it is empty; what it did. `env`
/// is added to the run's environment (`INSIDE` is set).
pub fn run_inside(name: &str, env: &[(&str, &str)]) -> Run {
    let exe = std::env::current_exe().expect("the test binary's path");
    let scratch = tempfile::Builder::new()
        .prefix("git2fa-throwaway")
        .tempdir()
        .expect("a scratch directory");
    let cwd = std::env::current_dir().expect("the working directory");
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--pid",
            "--net",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            ENTER,
            "git2fa-throwaway",
        ])
        .arg(scratch.path())
        .arg(&cwd)
        .arg("/usr/bin/env")
        .arg(format!("{INSIDE}=1"))
        .args(env.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(&exe);
    // The environment `cargo test` gives a test binary is not a shell's:
    // a `cargo build` run inside (the README's, `install/build-deb`) saw
    // `CARGO_MANIFEST_DIR` and the rest, took build scripts that watch
    // them for changed, and built every release crate again, minutes per
    // test.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        // What `cargo test` sets for a test binary (the Cargo book,
        // "Environment variables Cargo sets for crates"), not the
        // caller's own settings (`CARGO_HOME`, `CARGO_TARGET_DIR`, …).
        let from_cargo_test = ["CARGO_PKG_", "CARGO_BIN_EXE_"]
            .iter()
            .any(|prefix| key_text.starts_with(prefix))
            || [
                "CARGO",
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "LD_LIBRARY_PATH",
                "RUST_RECURSION_COUNT",
                "LIBSQLITE3_FLAGS",
            ]
            .contains(&key_text.as_ref());
        if from_cargo_test {
            command.env_remove(&key);
        }
    }
    if !name.is_empty() {
        command.args([name, "--exact"]);
    }
    command.args(["--nocapture", "--test-threads", "1"]);
    Run::from(
        command
            .output()
            .expect("unshare (Debian package util-linux)"),
    )
}
