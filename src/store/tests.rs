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

#[test]
fn a_totp_step_is_accepted_once() {
    let (_dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    let step = NOW / 30;
    let first = store
        .record_attempt(id, totp(step), NOW, LOCK, Some(&session()))
        .unwrap();
    assert!(matches!(
        first,
        AttemptOutcome::Accepted {
            session_id: Some(_)
        }
    ));
    let again = store
        .record_attempt(id, totp(step), NOW, LOCK, Some(&session()))
        .unwrap();
    // The code just used, typed again (an honest mistake): refused, and
    // not counted towards the lock.
    assert_eq!(
        again,
        AttemptOutcome::Replayed {
            failures: 0,
            locked_until: None
        }
    );
    // An older step after a newer one is a replay too.
    let older = store
        .record_attempt(id, totp(step - 1), NOW, LOCK, None)
        .unwrap();
    assert!(matches!(
        older,
        AttemptOutcome::Replayed { failures: 0, .. }
    ));
    // Many of them lock nothing.
    for _ in 0..LOCK.max_failures + 1 {
        let again = store
            .record_attempt(id, totp(step), NOW, LOCK, None)
            .unwrap();
        assert!(matches!(
            again,
            AttemptOutcome::Replayed {
                locked_until: None,
                ..
            }
        ));
    }
    let next = store
        .record_attempt(id, totp(step + 1), NOW + 30, LOCK, None)
        .unwrap();
    assert_eq!(next, AttemptOutcome::Accepted { session_id: None });
    assert_eq!(
        store.user_by_id(id).unwrap().unwrap().failures,
        0,
        "success resets the counter"
    );
}

#[test]
fn failures_lock_the_account_and_the_lock_ends() {
    let (_dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    for n in 1..3 {
        let outcome = store
            .record_attempt(id, Attempt::Totp(None), NOW, LOCK, None)
            .unwrap();
        assert_eq!(
            outcome,
            AttemptOutcome::Wrong {
                failures: n,
                locked_until: None
            }
        );
    }
    let third = store
        .record_attempt(id, Attempt::Recovery(None), NOW, LOCK, None)
        .unwrap();
    assert_eq!(
        third,
        AttemptOutcome::Wrong {
            failures: 3,
            locked_until: Some(NOW + 900)
        }
    );
    // While locked even a right code is not looked at.
    let locked = store
        .record_attempt(id, totp(NOW / 30), NOW + 10, LOCK, Some(&session()))
        .unwrap();
    assert_eq!(locked, AttemptOutcome::Locked { until: NOW + 900 });
    assert!(store.open_sessions(id, NOW + 10).unwrap().is_empty());
    let after = store
        .record_attempt(id, totp(NOW / 30 + 40), NOW + 1200, LOCK, None)
        .unwrap();
    assert_eq!(after, AttemptOutcome::Accepted { session_id: None });
}

#[test]
fn a_recovery_code_works_once() {
    let (_dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    let codes = store.recovery_codes(id).unwrap();
    assert_eq!(codes.len(), 2);
    let (code_id, _) = codes[0];
    let first = store
        .record_attempt(id, recovery(code_id), NOW, LOCK, Some(&session()))
        .unwrap();
    assert!(matches!(first, AttemptOutcome::Accepted { .. }));
    let again = store
        .record_attempt(id, recovery(code_id), NOW, LOCK, None)
        .unwrap();
    assert!(matches!(again, AttemptOutcome::Replayed { .. }));
    // Attack: a code of the old set, checked while the codes are being
    // regenerated, is recorded after the new set took the old row ids
    // (SQLite reuses them once the table is empty). It must not spend, or
    // count as, a code of the new set.
    store.replace_recovery_codes(id, &["h3".into()]).unwrap();
    let codes = store.recovery_codes(id).unwrap();
    assert_eq!(
        codes.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>(),
        vec!["h3"]
    );
    let old = store
        .record_attempt(
            id,
            Attempt::Recovery(Some((code_id, "h1".to_string()))),
            NOW,
            LOCK,
            None,
        )
        .unwrap();
    assert!(
        matches!(old, AttemptOutcome::Replayed { .. }),
        "a code of the old set is dead"
    );
    let reused_id = store.recovery_codes(id).unwrap()[0].0;
    assert_eq!(
        reused_id, code_id,
        "the row id was reused, as the attack needs"
    );
    let fresh = store
        .record_attempt(
            id,
            Attempt::Recovery(Some((reused_id, "h3".into()))),
            NOW,
            LOCK,
            None,
        )
        .unwrap();
    assert!(
        matches!(fresh, AttemptOutcome::Accepted { .. }),
        "the new code is still good: {fresh:?}"
    );
}

#[test]
fn a_code_of_a_replaced_secret_opens_nothing() {
    // Attack: a TOTP code is checked against the secret, and the admin
    // resets 2FA (or the user re-enrols) before the attempt is recorded.
    // After the reset the step counter is empty, so without a check of the
    // secret the old code would open a session for the new enrolment.
    let (_dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    store.reset_2fa(id, true, NOW).unwrap();
    assert!(store.enroll(id, b"sealed again", &[], NOW).unwrap());
    let stale = store
        .record_attempt(id, totp(NOW / 30), NOW, LOCK, Some(&session()))
        .unwrap();
    assert!(
        matches!(stale, AttemptOutcome::Replayed { .. }),
        "{stale:?}"
    );
    assert!(store.open_sessions(id, NOW).unwrap().is_empty());
}

/// Runs `attempt` from `threads` connections released at the same moment.
fn race(path: &Path, threads: usize, user: i64, attempt: Attempt) -> Vec<AttemptOutcome> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let path = path.to_path_buf();
            let attempt = attempt.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                barrier.wait();
                store
                    .record_attempt(user, attempt.clone(), NOW, LOCK, Some(&session()))
                    .unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn one_code_used_concurrently_succeeds_exactly_once() {
    let (dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    let code_id = store.recovery_codes(id).unwrap()[0].0;
    drop(store);
    let path = dir.path().join("git2fa.db");
    for attempt in [totp(NOW / 30), recovery(code_id)] {
        let outcomes = race(&path, 8, id, attempt.clone());
        let accepted = outcomes
            .iter()
            .filter(|o| matches!(o, AttemptOutcome::Accepted { .. }))
            .count();
        assert_eq!(accepted, 1, "{attempt:?}: {outcomes:?}");
        let store = Store::open(&path).unwrap();
        store
            .conn
            .execute("UPDATE users SET failures = 0, locked_until = NULL", [])
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.open_sessions(id, NOW).unwrap().len(),
        2,
        "one session per accepted code"
    );
}

#[test]
fn concurrent_wrong_codes_lock_at_exactly_max_failures() {
    let (dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    drop(store);
    let outcomes = race(&dir.path().join("git2fa.db"), 10, id, Attempt::Totp(None));
    let counted = outcomes
        .iter()
        .filter(|o| matches!(o, AttemptOutcome::Wrong { .. }))
        .count();
    let refused_locked = outcomes
        .iter()
        .filter(|o| matches!(o, AttemptOutcome::Locked { .. }))
        .count();
    assert_eq!(counted, 3, "{outcomes:?}");
    assert_eq!(refused_locked, 7, "{outcomes:?}");
}

#[test]
fn sessions_open_end_and_expire() {
    let (_dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    let sid = store.open_session(id, &session(), NOW).unwrap();
    let open = store.open_sessions(id, NOW + 10).unwrap();
    assert_eq!(
        open,
        vec![SessionFacts {
            id: sid,
            expires_at: NOW + 3600,
            key_id: Some(1),
            remote_addr: Some("10.0.0.1".into())
        }]
    );
    assert!(
        store.open_sessions(id, NOW + 3600).unwrap().is_empty(),
        "expired at expires_at"
    );
    assert!(store.end_session(sid, NOW + 20).unwrap());
    assert!(!store.end_session(sid, NOW + 20).unwrap());
    assert!(store.open_sessions(id, NOW + 30).unwrap().is_empty());
    store.open_session(id, &session(), NOW).unwrap();
    store.reset_2fa(id, true, NOW + 40).unwrap();
    assert!(
        store.open_sessions(id, NOW + 50).unwrap().is_empty(),
        "reset ends sessions"
    );
    assert!(!store.user_by_id(id).unwrap().unwrap().is_enrolled());
    assert!(store.recovery_codes(id).unwrap().is_empty());
}

#[test]
fn tokens_by_hash_revoke_and_touch() {
    let (_dir, mut store) = new_store();
    let id = store.add_user("alice", None, NOW).unwrap();
    let hash = [9u8; 32];
    let tid = store
        .add_token(
            id,
            "ci",
            &hash,
            &["team/*".into(), "x".into()],
            Permission::Write,
            Some(NOW + 60),
            false,
            NOW,
        )
        .unwrap();
    let found = store.token_by_hash(&hash).unwrap().unwrap();
    assert_eq!(found.id, tid);
    assert_eq!(found.user, "alice");
    assert_eq!(found.repos, vec!["team/*", "x"]);
    assert!(store.token_by_hash(&[8u8; 32]).unwrap().is_none());
    store.touch_token(tid, NOW + 5).unwrap();
    store.touch_token(tid, NOW + 30).unwrap();
    assert_eq!(
        store.token(tid).unwrap().unwrap().last_used_at,
        Some(NOW + 5),
        "at most once a minute"
    );
    store.touch_token(tid, NOW + 65).unwrap();
    assert_eq!(
        store.token(tid).unwrap().unwrap().last_used_at,
        Some(NOW + 65)
    );
    assert!(store.revoke_token(tid, NOW).unwrap());
    assert!(!store.revoke_token(tid, NOW).unwrap());
    assert!(store.token(tid).unwrap().unwrap().revoked_at.is_some());
    assert!(matches!(
        store.add_token(
            id,
            "dup",
            &hash,
            &["x".into()],
            Permission::Read,
            None,
            false,
            NOW
        ),
        Err(StoreError::Exists)
    ));
}

#[test]
fn keys_by_fingerprint() {
    let (_dir, mut store) = new_store();
    let id = store.add_user("alice", None, NOW).unwrap();
    let kid = store
        .add_key(id, "ssh-ed25519", "AAAA", "SHA256:abc", "laptop", NOW)
        .unwrap();
    assert_eq!(
        store.key_by_fingerprint("SHA256:abc").unwrap().unwrap().id,
        kid
    );
    assert!(matches!(
        store.add_key(id, "ssh-ed25519", "AAAA", "SHA256:abc", "", NOW),
        Err(StoreError::Exists)
    ));
    assert_eq!(store.keys(Some("alice")).unwrap().len(), 1);
    assert!(store.remove_key(kid, NOW).unwrap());
    assert!(store.key(kid).unwrap().is_none());
}

#[test]
fn the_audit_log_is_append_only() {
    let (_dir, mut store) = new_store();
    for (user, repo) in [("alice", "a"), ("bob", "a"), ("alice", "b")] {
        store
            .append_audit(&AuditRecord {
                at: NOW,
                user: Some(user.into()),
                transport: "ssh".into(),
                repo: Some(repo.into()),
                action: "read".into(),
                outcome: "allow".into(),
                reason: "not-required".into(),
                ..AuditRecord::default()
            })
            .unwrap();
    }
    let alice = store
        .audit(&AuditFilter {
            user: Some("alice".into()),
            repo: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(
        alice
            .iter()
            .map(|(_, r)| r.repo.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["b", "a"]
    );
    let repo_a = store
        .audit(&AuditFilter {
            user: None,
            repo: Some("a".into()),
            limit: 10,
        })
        .unwrap();
    assert_eq!(repo_a.len(), 2);
    assert!(
        store
            .conn
            .execute("UPDATE audit SET outcome = 'allow'", [])
            .is_err()
    );
    assert!(store.conn.execute("DELETE FROM audit", []).is_err());
    assert_eq!(
        store
            .audit(&AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn disabling_ends_sessions_for_good() {
    // Attack: sessions of a user disabled for a compromise come back to
    // life when the user is enabled again.
    let (_dir, mut store) = new_store();
    let id = enrolled(&mut store, "alice");
    store.open_session(id, &session(), NOW).unwrap();
    store.set_enabled(id, false, NOW + 1).unwrap();
    store.set_enabled(id, true, NOW + 2).unwrap();
    assert!(store.open_sessions(id, NOW + 3).unwrap().is_empty());
}

// Attack (key-id reuse): mallory holds a multiplexed SSH connection bound to
// her key's id, removes the key, and dora's next key got the same id, so the
// held connection became dora. Ids of keys, tokens and sessions must never
// come back, even when the newest row is deleted.
#[test]
fn ids_are_never_reused() {
    let (_dir, mut store) = new_store();
    let mallory = store.add_user("mallory", None, NOW).unwrap();
    let dora = store.add_user("dora", None, NOW).unwrap();
    let first = store
        .add_key(mallory, "ssh-ed25519", "AAAA1", "SHA256:one", "", NOW)
        .unwrap();
    assert!(store.remove_key(first, NOW).unwrap());
    let second = store
        .add_key(dora, "ssh-ed25519", "AAAA2", "SHA256:two", "", NOW)
        .unwrap();
    assert!(second > first, "key id {first} was given again");

    let session = NewSession {
        ttl: 60,
        key_id: None,
        remote_addr: None,
        opened_via: "cli".into(),
    };
    let s1 = store.open_session(mallory, &session, NOW).unwrap();
    let t1 = store
        .add_token(
            mallory,
            "a",
            &[1u8; 32],
            &["*".into()],
            Permission::Read,
            None,
            false,
            NOW,
        )
        .unwrap();
    // Rows deleted behind the store's back (by hand, or by a future purge)
    // must not hand out their ids either.
    store
        .conn
        .execute_batch("DELETE FROM sessions; DELETE FROM tokens;")
        .unwrap();
    assert!(store.open_session(dora, &session, NOW).unwrap() > s1);
    let t2 = store
        .add_token(
            dora,
            "b",
            &[2u8; 32],
            &["*".into()],
            Permission::Read,
            None,
            false,
            NOW,
        )
        .unwrap();
    assert!(t2 > t1);
}

// Attack (tokens outlive 2FA): the admin's lost-phone procedure removed
// alice's 2FA, but the tokens minted with it kept opening repositories
// that require 2FA. A reset revokes them, unless the admin keeps them.
#[test]
fn a_reset_revokes_tokens_and_ends_sessions_unless_tokens_are_kept() {
    let (_dir, mut store) = new_store();
    let id = store.add_user("alice", None, NOW).unwrap();
    store.enroll(id, b"sealed", &[], NOW).unwrap();
    let add = |store: &mut Store, n: u8, expires_at| {
        store
            .add_token(
                id,
                "t",
                &[n; 32],
                &["*".into()],
                Permission::Read,
                expires_at,
                false,
                NOW,
            )
            .unwrap()
    };
    let live = add(&mut store, 1, None);
    let expired = add(&mut store, 2, Some(NOW + 5));
    let revoked = add(&mut store, 3, None);
    store.revoke_token(revoked, NOW).unwrap();
    let session = NewSession {
        ttl: 60,
        key_id: None,
        remote_addr: None,
        opened_via: "cli".into(),
    };
    store.open_session(id, &session, NOW).unwrap();

    let reset = store.reset_2fa(id, true, NOW + 10).unwrap().unwrap();
    assert_eq!(reset.tokens_revoked, 1, "only the live token is counted");
    assert_eq!(reset.sessions_ended, 1);
    assert!(store.token(live).unwrap().unwrap().revoked_at.is_some());
    assert_eq!(store.token(expired).unwrap().unwrap().revoked_at, None);
    assert!(store.open_sessions(id, NOW + 11).unwrap().is_empty());

    store.enroll(id, b"sealed", &[], NOW + 20).unwrap();
    let kept = add(&mut store, 4, None);
    let reset = store.reset_2fa(id, false, NOW + 30).unwrap().unwrap();
    assert_eq!(reset.tokens_revoked, 0);
    assert_eq!(store.token(kept).unwrap().unwrap().revoked_at, None);
    assert_eq!(store.reset_2fa(9999, true, NOW).unwrap(), None);
}

// Attack: the newest key was removed before the store moved to
// AUTOINCREMENT; its id, still named by sessions and audit rows, went to
// the next key added. Migration 5 starts the count past every id named.
#[test]
fn ids_named_by_old_rows_are_not_given_again_after_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("git2fa.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL;").unwrap();
        for (version, sql) in migrations::MIGRATIONS.iter().enumerate().take(3) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", version as i64 + 1)
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO users (id, name, created_at) VALUES (1, 'mallory', 0);
             INSERT INTO sessions (user_id, created_at, expires_at, key_id, opened_via)
                 VALUES (1, 0, 10, 7, 'ssh');
             INSERT INTO audit (at, transport, action, outcome, reason, key_id, token_id)
                 VALUES (0, 'ssh', 'read', 'allow', 'session', 9, 4);",
        )
        .unwrap();
    }
    let mut store = Store::open_and_migrate(&path).unwrap();
    let user = store.add_user("dora", None, NOW).unwrap();
    let key = store
        .add_key(user, "ssh-ed25519", "AAAA", "SHA256:dora", "", NOW)
        .unwrap();
    assert!(key > 9, "key #{key} was named before");
    let token = store
        .add_token(
            user,
            "t",
            &[1u8; 32],
            &["*".into()],
            Permission::Read,
            None,
            false,
            NOW,
        )
        .unwrap();
    assert!(token > 4, "token #{token} was named before");
}
