//! Licences: every crate the binaries are built from has a licence on the
//! allowed list of `install/third-party`, and `docs/third-party.md` is the
//! table Cargo.lock gives. Offline: Cargo.lock and the crates' sources
//! that the build downloaded.

use std::path::Path;
use std::process::Command;

use crate::harness::{Run, e2e_available, which};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn third_party(args: &[&str]) -> Run {
    Run::from(
        Command::new("python3")
            .arg(Path::new(ROOT).join("install/third-party"))
            .args(args)
            .current_dir(ROOT)
            .output()
            .unwrap(),
    )
}

#[test]
fn every_crate_s_licence_is_allowed_and_the_table_is_current() {
    if !e2e_available(which("python3").is_some(), "python3", "python3") {
        return;
    }
    let check = third_party(&["--check"]);
    assert_eq!(check.code, 0, "{check:?}");
    // The list is a real one: the licences a crate could bring in that
    // git2fa cannot ship under are refused.
    let judge = Run::from(
        Command::new("python3")
            .args([
                "-c",
                "import importlib.machinery, sys\n\
                 m = importlib.machinery.SourceFileLoader('t', sys.argv[1]).load_module()\n\
                 for e in sys.argv[2:]: print(e, m.allowed(e))",
            ])
            .arg(Path::new(ROOT).join("install/third-party"))
            .args([
                "MIT OR Apache-2.0",
                "GPL-3.0-only",
                "MIT AND GPL-2.0-only",
                "(MIT OR Apache-2.0) AND Unicode-3.0",
                "AGPL-3.0-only OR MIT",
                "SSPL-1.0",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(
        judge.stdout,
        "MIT OR Apache-2.0 True\nGPL-3.0-only False\nMIT AND GPL-2.0-only False\n\
         (MIT OR Apache-2.0) AND Unicode-3.0 True\nAGPL-3.0-only OR MIT True\nSSPL-1.0 False\n",
        "{judge:?}"
    );
    let table = std::fs::read_to_string(Path::new(ROOT).join("docs/third-party.md")).unwrap();
    for shipped in ["| rusqlite |", "| webauthn-rs |", "| russh |"] {
        assert!(table.contains(shipped), "{shipped} missing from the table");
    }
    for test_only in ["| proptest |", "| tempfile |"] {
        assert!(!table.contains(test_only), "{test_only} is not shipped");
    }
}
