//! Rows: sessions, tokens, keys, ids, resets, what expires.

use super::*;

fn sessions_open_end_and_expire(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
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

fn tokens_by_hash_revoke_and_touch(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
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

fn keys_by_fingerprint(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let id = store.add_user("alice", None, NOW).unwrap();
    let kid = store
        .add_key(id, "ssh-ed25519", "AAAA", "SHA256:abc", "laptop", None, NOW)
        .unwrap();
    assert_eq!(
        store.key_by_fingerprint("SHA256:abc").unwrap().unwrap().id,
        kid
    );
    assert!(matches!(
        store.add_key(id, "ssh-ed25519", "AAAA", "SHA256:abc", "", None, NOW),
        Err(StoreError::Exists)
    ));
    assert_eq!(store.keys(Some("alice")).unwrap().len(), 1);
    assert!(store.remove_key(kid, NOW).unwrap());
    assert!(store.key(kid).unwrap().is_none());
}

fn disabling_ends_sessions_for_good(engine: Engine) {
    // Attack: sessions of a user disabled for a compromise come back to
    // life when the user is enabled again.
    let (_fresh, mut store) = new_store_on(engine);
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
fn ids_are_never_reused(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let mallory = store.add_user("mallory", None, NOW).unwrap();
    let dora = store.add_user("dora", None, NOW).unwrap();
    let first = store
        .add_key(mallory, "ssh-ed25519", "AAAA1", "SHA256:one", "", None, NOW)
        .unwrap();
    assert!(store.remove_key(first, NOW).unwrap());
    let second = store
        .add_key(dora, "ssh-ed25519", "AAAA2", "SHA256:two", "", None, NOW)
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
        .batch("DELETE FROM sessions; DELETE FROM tokens;")
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
fn a_reset_revokes_tokens_and_ends_sessions_unless_tokens_are_kept(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
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
        for (version, sql) in migrations::SQLITE.iter().enumerate().take(3) {
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
        .add_key(user, "ssh-ed25519", "AAAA", "SHA256:dora", "", None, NOW)
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

fn expired_rows_go_and_rows_in_use_stay(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let id = enrolled(&mut store, "alice");
    let ended = store.open_session(id, &session(), NOW).unwrap();
    store.end_session(ended, NOW + 10).unwrap();
    let open = store
        .open_session(id, &session(), NOW + KEEP_ENDED_SESSIONS)
        .unwrap();
    let later = NOW + KEEP_ENDED_SESSIONS + 20;
    let expired = store.prune_expired(later, later - 900).unwrap();
    assert_eq!(expired.sessions, 1, "{expired:?}");
    assert_eq!(
        store
            .open_sessions(id, later)
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        vec![open]
    );
    let again = store.prune_expired(later, later - 900).unwrap();
    assert_eq!(again, Expired::default());

    // Each kind of row, one past its time and one not yet: only the first
    // goes.
    let (t, alice) = (later, id);
    for (n, expires_at) in [(1u8, t - 1), (2, t + 600)] {
        store
            .add_web_session(&WebSession {
                id: [n; 32],
                user_id: Some(alice),
                csrf: "c".into(),
                created_at: t - 1000,
                expires_at,
                code_at: None,
                pending_secret: None,
                pending_codes: None,
                remote_addr: None,
                ceremony: Some("a ceremony under way".into()),
            })
            .unwrap();
        store
            .add_password_link(&[n; 32], alice, expires_at)
            .unwrap();
        let link = VerifyLink {
            user_id: alice,
            key_id: None,
            remote_addr: None,
            expires_at,
        };
        // (Made before `t`, as a link is; expired ones go as new ones come.)
        assert!(store.add_verify_link(&[n; 32], &link, 5, t - 1000).unwrap());
        let code = OauthCode {
            user_id: alice,
            client_id: "git-credential-oauth".into(),
            redirect_uri: "http://127.0.0.1:1/".into(),
            challenge: "x".into(),
            session_id: open,
            remote_addr: None,
            expires_at: expires_at - 3600,
        };
        store.add_oauth_code(&[n; 32], &code, t - 4000).unwrap();
    }
    // Wrong-password counts: one whose window began before the lockout,
    // one still in its window.
    store
        .take_password_check(&[("user:old", 10)], 900, t - 2000)
        .unwrap();
    store
        .take_password_check(&[("user:new", 10)], 900, t - 10)
        .unwrap();
    let expired = store.prune_expired(t, t - 900).unwrap();
    assert_eq!(
        expired,
        Expired {
            sessions: 0,
            web_sessions: 1,
            password_links: 1,
            verify_links: 1,
            password_failures: 1,
            oauth_codes: 1,
        }
    );
    assert!(store.web_session(&[1; 32], t - 2000).unwrap().is_none());
    assert!(store.web_session(&[2; 32], t - 2000).unwrap().is_some());
    assert_eq!(store.prune_expired(t, t - 900).unwrap(), Expired::default());
}

on_every_engine!(
    expired_rows_go_and_rows_in_use_stay,
    sessions_open_end_and_expire,
    tokens_by_hash_revoke_and_touch,
    keys_by_fingerprint,
    disabling_ends_sessions_for_good,
    ids_are_never_reused,
    a_reset_revokes_tokens_and_ends_sessions_unless_tokens_are_kept,
);
