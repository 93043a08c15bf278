use super::*;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const NOW: i64 = 1_800_000_000;
const LOCK: LockPolicy = LockPolicy {
    max_failures: 3,
    lockout: 900,
};

/// The throwaway PostgreSQL cluster the tests share, one per test
/// process (`tests/it/harness/postgres.rs`).
#[path = "../../tests/it/harness/postgres.rs"]
#[allow(dead_code)]
mod cluster;

/// Which engine a test's store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
    /// PostgreSQL through a store socket answered by `pool::answer`, as
    /// `git2fa serve` answers it.
    Proxy,
}

/// What keeps a test's store alive: its directory, or its database.
struct Fresh {
    _dir: Option<tempfile::TempDir>,
    location: Location,
}

fn shared_cluster() -> &'static cluster::Cluster {
    static CLUSTER: std::sync::OnceLock<cluster::Cluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(cluster::Cluster::start)
}

/// A new, empty store on `engine`: a file in a new directory, or a new
/// database of the shared cluster.
fn new_store_on(engine: Engine) -> (Fresh, Store) {
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("git2fa.db");
            let store = Store::create(&path).unwrap();
            let fresh = Fresh {
                _dir: Some(dir),
                location: Location::Sqlite(path),
            };
            (fresh, store)
        }
        Engine::Postgres | Engine::Proxy => {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let cluster = shared_cluster();
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let url = cluster.database(&format!("unit_{n}"));
            let password_file = Some(cluster.password_file.clone());
            let (dir, socket) = match engine {
                Engine::Proxy => {
                    let dir = tempfile::tempdir().unwrap();
                    let socket = dir.path().join(wire::SOCKET);
                    let pool = Arc::new(Pool::new(&url, password_file.as_deref(), 4));
                    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
                    std::thread::spawn(move || {
                        for stream in listener.incoming().flatten() {
                            let pool = Arc::clone(&pool);
                            std::thread::spawn(move || answer(stream, pool));
                        }
                    });
                    (Some(dir), Some(socket))
                }
                _ => (None, None),
            };
            let location = Location::Postgres {
                url,
                password_file,
                socket,
            };
            let store = Store::connect_and_migrate(&location).unwrap();
            assert_eq!(
                matches!(store.conn, Conn::Remote(_)),
                engine == Engine::Proxy,
                "the store socket is used when, and only when, it answers"
            );
            let fresh = Fresh {
                _dir: dir,
                location,
            };
            (fresh, store)
        }
    }
}

fn new_store() -> (Fresh, Store) {
    new_store_on(Engine::Sqlite)
}

/// Each test named here runs three times, as `sqlite::NAME`,
/// `postgres::NAME` and `proxy::NAME`, with a store of that engine.
/// Without PostgreSQL the last two skip, unless GIT2FA_REQUIRE_E2E is set.
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Engine::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $name() {
                if crate::store::tests::cluster::available() {
                    super::$name(super::Engine::Postgres)
                }
            })*
        }
        mod proxy {
            $(#[test] fn $name() {
                if crate::store::tests::cluster::available() {
                    super::$name(super::Engine::Proxy)
                }
            })*
        }
    };
}
#[allow(unused_imports)]
use on_every_engine;

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
    let (fresh, store) = new_store();
    let Location::Sqlite(path) = fresh.location.clone() else {
        unreachable!()
    };
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mode: String = store
        .conn
        .one("PRAGMA journal_mode", &[])
        .and_then(|r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .one("PRAGMA synchronous", &[])
        .and_then(|r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(store.schema_version().unwrap(), store.latest());
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

fn an_old_schema_is_refused_on_the_hot_path(engine: Engine) {
    let (fresh, store) = new_store_on(engine);
    match engine {
        Engine::Sqlite => store.conn.batch("PRAGMA user_version = 0").unwrap(),
        Engine::Postgres | Engine::Proxy => store
            .conn
            .batch("UPDATE git2fa_schema SET version = 0")
            .unwrap(),
    }
    drop(store);
    assert!(matches!(
        Store::connect(&fresh.location),
        Err(StoreError::Schema { found: 0, .. })
    ));
}

fn a_newer_schema_is_refused_even_by_migrate(engine: Engine) {
    let (fresh, store) = new_store_on(engine);
    let newer = store.latest() + 1;
    match engine {
        Engine::Sqlite => store
            .conn
            .batch(&format!("PRAGMA user_version = {newer}"))
            .unwrap(),
        _ => store
            .conn
            .batch(&format!("UPDATE git2fa_schema SET version = {newer}"))
            .unwrap(),
    }
    drop(store);
    for opened in [
        Store::connect(&fresh.location),
        Store::connect_and_migrate(&fresh.location),
    ] {
        assert!(
            matches!(opened, Err(StoreError::Schema { found, .. }) if found == newer),
            "{:?}",
            opened.err()
        );
    }
}

fn the_key_fingerprint_is_recorded_once(engine: Engine) {
    let (_fresh, store) = new_store_on(engine);
    assert_eq!(store.key_fingerprint().unwrap(), None);
    assert_eq!(
        store.record_key_fingerprint("SHA256:aa").unwrap(),
        "SHA256:aa"
    );
    // A second host with another key does not replace it: it is told.
    assert_eq!(
        store.record_key_fingerprint("SHA256:bb").unwrap(),
        "SHA256:aa"
    );
    assert_eq!(
        store.key_fingerprint().unwrap().as_deref(),
        Some("SHA256:aa")
    );
}

fn users_are_unique(engine: Engine) {
    let (_dir, mut store) = new_store_on(engine);
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

on_every_engine!(
    an_old_schema_is_refused_on_the_hot_path,
    a_newer_schema_is_refused_even_by_migrate,
    the_key_fingerprint_is_recorded_once,
    users_are_unique,
);

#[test]
fn postgres_refuses_a_url_it_cannot_read_and_a_missing_password_file() {
    let bad = Location::Postgres {
        url: "postgres://git2fa@127.0.0.1:1/x?sslmode=bogus".into(),
        password_file: None,
        socket: None,
    };
    assert!(matches!(Store::connect(&bad), Err(StoreError::Config(_))));
    let missing = Location::Postgres {
        url: "postgres://git2fa@127.0.0.1:1/x".into(),
        password_file: Some("/nonexistent/git2fa-password".into()),
        socket: Some("/nonexistent/store.sock".into()),
    };
    assert!(matches!(Store::connect(&missing), Err(StoreError::Io(..))));
}

mod audit;
mod codes;
mod hardware;
mod oauth;
mod rows;
mod security_keys;

// Attack (or a stopped process): a client of the store socket begins a
// write transaction, which takes the write lock of every host sharing the
// store, and then says nothing more. Every other writer would wait on it
// for ever. Other writers must be refused after the lock timeout (the
// operation fails closed), and the silent client's transaction must end
// after `wire::IDLE`, freeing the lock.
#[test]
fn a_client_that_takes_the_write_lock_and_goes_silent_loses_it() {
    use std::io::{Read, Write};
    if !cluster::available() {
        return;
    }
    let (fresh, mut store) = new_store_on(Engine::Proxy);
    let id = store.add_user("alice", None, NOW).unwrap();
    let Location::Postgres {
        socket: Some(socket),
        ..
    } = &fresh.location
    else {
        unreachable!()
    };
    let mut silent = std::os::unix::net::UnixStream::connect(socket).unwrap();
    silent.write_all(&[0, 0, 0, 1, b'T']).unwrap();
    let mut answer = [0u8; 5];
    silent.read_exact(&mut answer).unwrap();
    assert_eq!(answer, [0, 0, 0, 1, b'K'], "the transaction began");
    let started = std::time::Instant::now();
    let waited = store.unlock(id);
    assert!(waited.is_err(), "a writer got past a held write lock");
    assert!(
        started.elapsed() < wire::IDLE,
        "refused only after {:?}",
        started.elapsed()
    );
    std::thread::sleep(wire::IDLE + Duration::from_secs(1));
    // A client outside a transaction may stay silent that long.
    assert!(store.unlock(id).unwrap(), "the silent client kept the lock");
    drop(silent);
}

// Attack (or a client stuck in a loop): a client of the store socket
// begins a write transaction, which holds the write lock of every host
// sharing the store, and then keeps sending statements, one a second, so
// that it is never silent for `wire::IDLE`. Every other writer on every
// host was refused for as long as it went on. A transaction now lives at
// most `pool::MAX_TRANSACTION`, busy or not: the client is told, rolled
// back and hung up on, and the lock is free again.
#[test]
fn a_client_that_keeps_a_write_transaction_busy_loses_it() {
    use std::io::{Read, Write};
    if !cluster::available() {
        return;
    }
    let (fresh, mut store) = new_store_on(Engine::Proxy);
    let id = store.add_user("alice", None, NOW).unwrap();
    let Location::Postgres {
        socket: Some(socket),
        ..
    } = &fresh.location
    else {
        unreachable!()
    };
    let mut busy = std::os::unix::net::UnixStream::connect(socket).unwrap();
    busy.write_all(&[0, 0, 0, 1, b'T']).unwrap();
    let mut answer = [0u8; 5];
    busy.read_exact(&mut answer).unwrap();
    assert_eq!(answer, [0, 0, 0, 1, b'K'], "the transaction began");
    let began = std::time::Instant::now();
    // `SELECT 1` as a rows request: op, the SQL, no values.
    let sql = b"SELECT 1";
    let mut body = vec![b'R'];
    body.extend_from_slice(&(sql.len() as u32).to_be_bytes());
    body.extend_from_slice(sql);
    body.extend_from_slice(&0u32.to_be_bytes());
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let keeper = std::thread::spawn(move || {
        // Until the server stops answering rows: how long that took, and
        // what its last answer began with.
        loop {
            std::thread::sleep(Duration::from_secs(1));
            // The server may have answered and hung up already: what it
            // said is still there to read.
            let _ = busy.write_all(&frame);
            let mut len = [0u8; 4];
            if busy.read_exact(&mut len).is_err() {
                return (began.elapsed(), None);
            }
            let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
            if busy.read_exact(&mut reply).is_err() {
                return (began.elapsed(), None);
            }
            if reply.first() != Some(&b'W') {
                return (began.elapsed(), reply.first().copied());
            }
            if began.elapsed() > pool::MAX_TRANSACTION * 3 {
                return (began.elapsed(), Some(b'W'));
            }
        }
    });
    assert!(
        store.unlock(id).is_err(),
        "a writer got past a held write lock"
    );
    let (cut_after, last) = keeper.join().unwrap();
    assert_eq!(
        last,
        Some(b'F'),
        "the busy client was told its transaction ended"
    );
    assert!(
        cut_after < pool::MAX_TRANSACTION + Duration::from_secs(3),
        "the busy client kept its transaction for {cut_after:?}"
    );
    assert!(store.unlock(id).unwrap(), "the lock is free again");
}

// Per-user locks on PostgreSQL: one user's code attempts, held up, do not
// hold up another user's (one host-wide lock once serialised every code
// attempt, enrolment and reset of every host); a host-wide write still
// excludes them all. The race guarantees within one user are the tests
// above, on every engine.
fn a_user_s_lock_holds_up_that_user_alone(engine: Engine) {
    let (fresh, mut store) = new_store_on(engine);
    let alice = enrolled(&mut store, "alice");
    let bob = enrolled(&mut store, "bob");
    let Location::Postgres { url, .. } = &fresh.location else {
        unreachable!()
    };
    let database = url.rsplit('/').next().unwrap().to_string();
    let mut holder = shared_cluster().superuser(&database);
    let attempt = |store: &mut Store, user: i64| {
        let started = std::time::Instant::now();
        let outcome = store.record_attempt(user, totp(1), NOW, LOCK, None);
        (outcome, started.elapsed())
    };
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}, {})",
            db::USER_LOCKS,
            db::user_lock_key(alice)
        ))
        .unwrap();
    let (outcome, took) = attempt(&mut store, bob);
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(
        took < Duration::from_secs(2),
        "bob waited {took:?} for alice's lock"
    );
    let (outcome, took) = attempt(&mut store, alice);
    assert!(
        outcome.is_err(),
        "alice got past her own held lock: {outcome:?}"
    );
    assert!(took >= Duration::from_secs(4), "refused after {took:?}");
    holder.batch_execute("ROLLBACK").unwrap();
    // The host-wide lock, as `Immediate` takes it, holds up every user.
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({})",
            0x6769_7432_6661_i64
        ))
        .unwrap();
    let (outcome, _) = attempt(&mut store, bob);
    assert!(
        outcome.is_err(),
        "bob got past the host-wide lock: {outcome:?}"
    );
    holder.batch_execute("ROLLBACK").unwrap();
    let (outcome, _) = attempt(&mut store, alice);
    assert!(outcome.is_ok(), "{outcome:?}");
}

#[test]
fn a_user_s_lock_holds_up_that_user_alone_on_postgres() {
    if cluster::available() {
        a_user_s_lock_holds_up_that_user_alone(Engine::Postgres);
    }
}

#[test]
fn a_user_s_lock_holds_up_that_user_alone_through_serve() {
    if cluster::available() {
        a_user_s_lock_holds_up_that_user_alone(Engine::Proxy);
    }
}

// serve's writes on SQLite (`group`): many requests appending audit rows at
// once, each with its own connection, all get their row committed (none
// refused as busy), and rows written in one transaction together.
#[test]
fn many_requests_appending_at_once_all_commit_their_rows() {
    let (fresh, store) = new_store();
    drop(store);
    group::enable(&fresh.location);
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let location = fresh.location.clone();
            std::thread::spawn(move || {
                let mut store = Store::connect(&location).unwrap();
                for i in 0..20 {
                    let record = AuditRecord {
                        at: NOW,
                        user: Some(format!("u{t}")),
                        transport: "ssh".into(),
                        action: "read".into(),
                        outcome: "allow".into(),
                        reason: format!("row {i}"),
                        ..Default::default()
                    };
                    store.append_audit(&record).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = Store::connect(&fresh.location).unwrap();
    let rows = store
        .audit(&AuditFilter {
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 640);
}
