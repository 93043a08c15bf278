use super::*;
use std::sync::{Arc, Barrier};

const NOW: i64 = 1_800_000_000;
const LOCK: LockPolicy = LockPolicy {
    max_failures: 3,
    lockout: 900,
};

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("git2fa.db")).unwrap();
    (dir, store)
}

fn totp(step: i64) -> Attempt {
    Attempt::Totp(Some((step, b"sealed".to_vec())))
}

/// The first recovery code of `enrolled`, whose hash is "h1".
fn recovery(code_id: i64) -> Attempt {
    Attempt::Recovery(Some((code_id, "h1".to_string())))
}

fn session() -> NewSession {
    NewSession {
        ttl: 3600,
        key_id: Some(1),
        remote_addr: Some("10.0.0.1".into()),
        opened_via: "ssh".into(),
    }
}

fn enrolled(store: &mut Store, name: &str) -> i64 {
    let id = store.add_user(name, None, NOW).unwrap();
    assert!(
        store
            .enroll(id, b"sealed", &["h1".into(), "h2".into()], NOW)
            .unwrap()
    );
    id
}

#[test]
fn a_new_store_is_private_wal_and_current() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = new_store();
    let path = dir.path().join("git2fa.db");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(store.schema_version().unwrap(), migrations::latest());
    drop(store);
    Store::open(&path).unwrap();
}

#[test]
fn opening_what_is_not_a_store_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    assert!(matches!(Store::open(&missing), Err(StoreError::Missing(_))));
    assert!(!missing.exists(), "open must not create a store");
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        b"this is not an SQLite database, not even close; it is text",
    )
    .unwrap();
    let before = std::fs::read(&junk).unwrap();
    let err = Store::open(&junk).err().unwrap();
    assert!(matches!(err, StoreError::NotADatabase(_)), "{err:?}");
    assert!(Store::open_and_migrate(&junk).is_err());
    assert_eq!(std::fs::read(&junk).unwrap(), before);
}

#[test]
fn an_old_schema_is_refused_on_the_hot_path() {
    let (dir, store) = new_store();
    store.conn.pragma_update(None, "user_version", 0).unwrap();
    drop(store);
    let path = dir.path().join("git2fa.db");
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Schema { found: 0, .. })
    ));
}

#[test]
fn users_are_unique() {
    let (_dir, mut store) = new_store();
    store.add_user("alice", Some("hash"), NOW).unwrap();
    assert!(matches!(
        store.add_user("alice", None, NOW),
        Err(StoreError::Exists)
    ));
    let alice = store.user("alice").unwrap().unwrap();
    assert_eq!(alice.password_hash.as_deref(), Some("hash"));
    assert!(alice.enabled && !alice.is_enrolled());
    assert!(store.user("bob").unwrap().is_none());
}

mod codes;
mod rows;
