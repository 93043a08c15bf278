//! Export and retention as an admin runs them from cron: `git2fa audit
//! --json --since`, `--follow`, `git2fa store prune-audit` with the
//! export, and `git2fa store prune`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{BIN, Host, code};

/// alice, enrolled, with a few audit rows (added, enrolled, verified).
fn host() -> crate::harness::fixture::Fixture {
    let f = Host::new().user("alice").enrolled();
    f.git2fa(&["verify", "alice", &code(f.secret_of("alice"), 0)])
        .ok();
    f
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn the_export_is_one_json_object_per_row_in_a_stable_schema() {
    let f = host();
    let all = f.git2fa(&["audit", "--json", "--since", "0"]).ok();
    let rows = json_lines(&all.stdout);
    assert!(rows.len() >= 3, "{all:?}");
    // Oldest first, every key of the schema on every row.
    let keys = [
        "id",
        "at",
        "transport",
        "user",
        "action",
        "outcome",
        "reason",
        "repo",
        "refs",
        "credential",
        "key_id",
        "token_id",
        "addr",
        "detail",
        "factor",
    ];
    for row in &rows {
        let object = row.as_object().unwrap();
        assert_eq!(object.len(), keys.len(), "{row}");
        for key in keys {
            assert!(object.contains_key(key), "{key} missing: {row}");
        }
    }
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let verify = rows.last().unwrap();
    assert_eq!(verify["action"], "verify");
    assert_eq!(verify["user"], "alice");
    assert_eq!(verify["transport"], "cli");
    assert!(verify["repo"].is_null());

    // The next part of an export: after the last id it holds.
    let after = f
        .git2fa(&["audit", "--json", "--since", &ids[0].to_string()])
        .ok();
    assert_eq!(json_lines(&after.stdout), rows[1..]);
    // From a time: the same rows (all made just now).
    let today = &verify["at"].as_str().unwrap()[..10];
    let since_today = f.git2fa(&["audit", "--json", "--since", today]).ok();
    assert_eq!(json_lines(&since_today.stdout), rows);
    // A time that is not one: a clear error, exit 2.
    let bad = f.git2fa(&["audit", "--since", "yesterday"]).fails(2);
    assert!(bad.stderr.contains("2026-12-01T08:00:00Z"), "{bad:?}");
}

#[test]
fn follow_prints_each_row_as_it_is_committed() {
    let f = host();
    let mut follow = Command::new(BIN)
        .arg("--config")
        .arg(&f.config)
        .args(["audit", "--json", "--follow", "--limit", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first: serde_json::Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(first["action"], "verify", "the newest row first");
    f.git2fa(&["session", "end", "--user", "alice"]).ok();
    let next: serde_json::Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(next["action"], "session-end", "{next}");
    assert!(next["id"].as_i64() > first["id"].as_i64());
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn rows_are_removed_only_once_the_export_holds_them() {
    let f = host();
    std::thread::sleep(Duration::from_millis(1100));
    let before = git2fa::system::time::format_rfc3339(git2fa::system::time::now());
    let dir = f.dir.path();
    let export = f.git2fa(&["audit", "--json", "--since", "0"]).ok().stdout;
    let rows = json_lines(&export);

    // An export with one row changed: the rows before it go, the rest
    // stay, and the command says so (exit 1).
    let mut tampered = rows.clone();
    tampered[1]["reason"] = "something else".into();
    let tampered_file = dir.join("tampered.jsonl");
    std::fs::write(
        &tampered_file,
        tampered
            .iter()
            .map(|r| format!("{r}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let partly = f.git2fa(&[
        "store",
        "prune-audit",
        "--before",
        &before,
        "--exported",
        &tampered_file.display().to_string(),
    ]);
    assert_eq!(partly.code, 1, "{partly:?}");
    assert!(partly.stdout.contains("removed 1 audit rows"), "{partly:?}");
    assert!(
        partly
            .stderr
            .contains(&format!("kept {} audit rows", rows.len() - 1)),
        "{partly:?}"
    );

    // Not an export: refused before anything changes.
    let junk = dir.join("junk.jsonl");
    std::fs::write(&junk, "hello\n").unwrap();
    let refused = f.git2fa(&[
        "store",
        "prune-audit",
        "--before",
        &before,
        "--exported",
        &junk.display().to_string(),
    ]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("not a line of `git2fa audit --json`"),
        "{refused:?}"
    );

    // The whole export, as a git2fa before `factor` was in the schema
    // wrote it (no such key): every row before the time goes; the prune
    // rows (made after it) stay, and say what happened.
    let file = dir.join("audit.jsonl");
    let older: String = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            assert!(r.as_object_mut().unwrap().remove("factor").is_some());
            format!("{r}\n")
        })
        .collect();
    std::fs::write(&file, older).unwrap();
    let pruned = f
        .git2fa(&[
            "store",
            "prune-audit",
            "--before",
            &before,
            "--exported",
            &file.display().to_string(),
        ])
        .ok();
    assert!(
        pruned
            .stdout
            .contains(&format!("removed {} audit rows", rows.len() - 1)),
        "{pruned:?}"
    );
    let left = json_lines(&f.git2fa(&["audit", "--json", "--since", "0"]).ok().stdout);
    assert!(
        left.iter().all(|r| r["action"] == "audit-prune"),
        "{left:?}"
    );
    assert_eq!(left.len(), 2);

    // A time in the future: nothing can have been exported.
    f.git2fa(&[
        "store",
        "prune-audit",
        "--before",
        "2999-01-01",
        "--exported",
        &file.display().to_string(),
    ])
    .fails(2);
}

#[test]
fn store_prune_says_what_it_removed() {
    let f = host();
    let out = f.git2fa(&["store", "prune"]).ok();
    assert!(
        out.stdout.starts_with("removed 0 2FA sessions, ")
            && out.stdout.contains(" wrong-password counts"),
        "{out:?}"
    );
}
