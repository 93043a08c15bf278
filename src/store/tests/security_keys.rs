//! Security keys in the store: registration, removal, each use once and
//! its counter, the web session's ceremony, the one-time verify links.

use super::*;

fn key(user_id: i64, credential_id: &[u8]) -> SecurityKey {
    SecurityKey {
        id: 0,
        user_id,
        name: "Key".into(),
        credential_id: credential_id.to_vec(),
        credential: "{}".into(),
        sign_count: 0,
        created_at: NOW,
        last_used_at: None,
    }
}

fn used(key_id: i64, sign_count: i64) -> Attempt {
    Attempt::Key(Some(KeyUse {
        key_id,
        sign_count,
        credential: format!("{{\"counter\":{sign_count}}}"),
    }))
}

fn a_first_key_enrols_and_a_credential_is_registered_once(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let bob = store.add_user("bob", None, NOW).unwrap();
    assert!(!store.user_by_id(alice).unwrap().unwrap().is_enrolled());
    let hashes = vec!["h1".to_string(), "h2".to_string()];
    let AddedKey::Added(first) = store
        .add_security_key(&key(alice, b"cred-1"), Some(&hashes), 20)
        .unwrap()
    else {
        panic!("not added")
    };
    let user = store.user_by_id(alice).unwrap().unwrap();
    assert!(user.is_enrolled() && !user.has_totp());
    assert_eq!(user.security_keys, 1);
    assert_eq!(store.recovery_codes_left(alice).unwrap(), 2);
    // The same credential again, for alice or for bob: refused, nothing
    // added.
    for owner in [alice, bob] {
        assert_eq!(
            store
                .add_security_key(&key(owner, b"cred-1"), None, 20)
                .unwrap(),
            AddedKey::Duplicate
        );
    }
    assert_eq!(store.security_keys(alice).unwrap().len(), 1);
    assert!(store.security_keys(bob).unwrap().is_empty());
    // At most `max` keys a user.
    assert_eq!(
        store
            .add_security_key(&key(alice, b"cred-x"), None, 1)
            .unwrap(),
        AddedKey::TooMany
    );
    // Her only second factor is not removed key by key; bob cannot remove
    // it at all.
    assert_eq!(
        store.remove_security_key(alice, first).unwrap(),
        RemovedKey::LastFactor
    );
    assert_eq!(
        store.remove_security_key(bob, first).unwrap(),
        RemovedKey::NoSuchKey
    );
    let AddedKey::Added(second) = store
        .add_security_key(&key(alice, b"cred-2"), None, 20)
        .unwrap()
    else {
        panic!("not added")
    };
    assert_eq!(
        store.remove_security_key(alice, first).unwrap(),
        RemovedKey::Removed
    );
    assert_eq!(
        store
            .security_keys(alice)
            .unwrap()
            .iter()
            .map(|k| k.id)
            .collect::<Vec<_>>(),
        vec![second]
    );
    // A reset removes the rest.
    store.reset_2fa(alice, true, NOW).unwrap();
    assert!(store.security_keys(alice).unwrap().is_empty());
    assert!(!store.user_by_id(alice).unwrap().unwrap().is_enrolled());
}

fn a_key_use_counts_once_and_its_counter_only_moves_forward(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let AddedKey::Added(id) = store
        .add_security_key(&key(alice, b"cred"), Some(&[]), 20)
        .unwrap()
    else {
        panic!("not added")
    };
    let accepted = store
        .record_attempt(alice, used(id, 5), NOW, LOCK, Some(&session()))
        .unwrap();
    assert!(matches!(
        accepted,
        AttemptOutcome::Accepted {
            session_id: Some(_)
        }
    ));
    let stored = &store.security_keys(alice).unwrap()[0];
    assert_eq!((stored.sign_count, stored.last_used_at), (5, Some(NOW)));
    assert_eq!(stored.credential, "{\"counter\":5}");
    // The same counter again, or a lower one: a copy of the key. It opens
    // nothing and counts as a failure.
    for count in [5, 3] {
        let outcome = store
            .record_attempt(alice, used(id, count), NOW + 1, LOCK, Some(&session()))
            .unwrap();
        assert!(
            matches!(outcome, AttemptOutcome::Wrong { .. }),
            "{count}: {outcome:?}"
        );
    }
    assert_eq!(store.security_keys(alice).unwrap()[0].sign_count, 5);
    // A failed answer counts, and locks at max_failures like a code.
    let outcome = store
        .record_attempt(alice, Attempt::Key(None), NOW + 2, LOCK, None)
        .unwrap();
    assert!(matches!(
        outcome,
        AttemptOutcome::Wrong {
            locked_until: Some(_),
            ..
        }
    ));
    let outcome = store
        .record_attempt(alice, used(id, 6), NOW + 3, LOCK, Some(&session()))
        .unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::Locked { .. }),
        "{outcome:?}"
    );
    // A key of another user's id never counts for alice.
    let bob = store.add_user("bob", None, NOW).unwrap();
    store.unlock(alice).unwrap();
    let outcome = store
        .record_attempt(bob, used(id, 9), NOW + 4, LOCK, Some(&session()))
        .unwrap();
    assert!(
        matches!(outcome, AttemptOutcome::Wrong { .. }),
        "{outcome:?}"
    );
    // Keys that keep no counter (0) are used again and again.
    let AddedKey::Added(passkey) = store
        .add_security_key(&key(alice, b"passkey"), None, 20)
        .unwrap()
    else {
        panic!("not added")
    };
    for t in 0..2 {
        let outcome = store
            .record_attempt(alice, used(passkey, 0), NOW + 10 + t, LOCK, None)
            .unwrap();
        assert!(
            matches!(outcome, AttemptOutcome::Accepted { .. }),
            "{outcome:?}"
        );
    }
}

fn a_ceremony_is_taken_once_and_links_work_once(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let web = WebSession {
        id: [7; 32],
        user_id: Some(alice),
        csrf: "c".into(),
        created_at: NOW,
        expires_at: NOW + 3600,
        code_at: None,
        pending_secret: None,
        pending_codes: None,
        remote_addr: None,
        ceremony: None,
    };
    store.add_web_session(&web).unwrap();
    assert_eq!(store.take_web_ceremony(&web.id).unwrap(), None);
    store.set_web_ceremony(&web.id, Some("state")).unwrap();
    assert_eq!(
        store
            .web_session(&web.id, NOW)
            .unwrap()
            .unwrap()
            .ceremony
            .as_deref(),
        Some("state")
    );
    assert_eq!(
        store.take_web_ceremony(&web.id).unwrap().as_deref(),
        Some("state")
    );
    assert_eq!(
        store.take_web_ceremony(&web.id).unwrap(),
        None,
        "taken once"
    );

    let link = VerifyLink {
        user_id: alice,
        key_id: Some(4),
        remote_addr: Some("10.0.0.9".into()),
        expires_at: NOW + 300,
    };
    assert!(store.add_verify_link(&[1; 32], &link, 2, NOW).unwrap());
    // At most `max` links of a user wait at once.
    assert!(store.add_verify_link(&[3; 32], &link, 2, NOW).unwrap());
    assert!(!store.add_verify_link(&[4; 32], &link, 2, NOW).unwrap());
    assert_eq!(store.verify_link(&[4; 32], NOW).unwrap(), None);
    // A link whose command stopped waiting is ended, and frees its place.
    store.end_verify_link(&[3; 32], NOW + 1).unwrap();
    assert_eq!(store.verify_link(&[3; 32], NOW + 1).unwrap(), None);
    assert!(store.add_verify_link(&[4; 32], &link, 2, NOW + 1).unwrap());
    store.end_verify_link(&[4; 32], NOW + 1).unwrap();
    assert_eq!(
        store.verify_link(&[1; 32], NOW).unwrap(),
        Some(link.clone())
    );
    assert_eq!(
        store.verify_link(&[1; 32], NOW + 300).unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.verify_link(&[2; 32], NOW).unwrap(), None);
    assert_eq!(store.verify_link_session(&[1; 32]).unwrap(), None);
    let session_id = store.open_session(alice, &session(), NOW).unwrap();
    assert!(
        store
            .use_verify_link(&[1; 32], session_id, NOW + 1)
            .unwrap()
    );
    assert!(
        !store
            .use_verify_link(&[1; 32], session_id, NOW + 2)
            .unwrap(),
        "used once"
    );
    assert_eq!(store.verify_link(&[1; 32], NOW + 2).unwrap(), None);
    assert_eq!(
        store.verify_link_session(&[1; 32]).unwrap(),
        Some(NOW + 3600)
    );
}

on_every_engine!(
    a_first_key_enrols_and_a_credential_is_registered_once,
    a_key_use_counts_once_and_its_counter_only_moves_forward,
    a_ceremony_is_taken_once_and_links_work_once,
);
