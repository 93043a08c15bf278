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
    let AddedKey::First(first) = store
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
    let AddedKey::First(id) = store
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
    assert_eq!(
        store.take_web_ceremony(&web.id, "aa").unwrap(),
        TakenCeremony::Unknown
    );
    // Two tabs: each page's ceremony is kept under its challenge, and
    // the older page's answer finds its own.
    store.add_web_ceremony(&web.id, "aa", "tab A").unwrap();
    store.add_web_ceremony(&web.id, "bb", "tab B").unwrap();
    assert_eq!(
        store.take_web_ceremony(&web.id, "aa").unwrap(),
        TakenCeremony::Found("tab A".into())
    );
    assert_eq!(
        store.take_web_ceremony(&web.id, "aa").unwrap(),
        TakenCeremony::Used,
        "taken once: the same answer again is a replay"
    );
    assert_eq!(
        store.take_web_ceremony(&web.id, "bb").unwrap(),
        TakenCeremony::Found("tab B".into())
    );
    // The oldest go past MAX_CEREMONIES.
    for i in 0..super::super::security_keys::MAX_CEREMONIES {
        store
            .add_web_ceremony(&web.id, &format!("c{i}"), "later")
            .unwrap();
    }
    assert_eq!(
        store.take_web_ceremony(&web.id, "bb").unwrap(),
        TakenCeremony::Unknown
    );
    assert_eq!(
        store.take_web_ceremony(&web.id, "c0").unwrap(),
        TakenCeremony::Found("later".into())
    );

    let ssh_key = store
        .add_key(alice, "ssh-ed25519", "AAAA", "SHA256:link", "", None, NOW)
        .unwrap();
    let link = VerifyLink {
        user_id: alice,
        key_id: Some(ssh_key),
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

// Attack (a race an honest user can lose, and an attacker with the
// password can provoke): "is this the user's first second factor?" was
// answered when the request began, outside the write transaction. Two
// first keys registered at the same moment from two sessions both
// replaced the recovery codes, and both pages showed theirs: one list
// was dead. An app set-up confirmed as a first key was added did the
// same. A user who saved the dead list is locked out once the key or
// phone is lost. The store now decides in the transaction that adds the
// factor: the second key is not first, and an app set-up that a key
// overtook is refused.
fn only_one_first_factor_sets_the_recovery_codes(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let shown_by_a = vec!["a1".to_string(), "a2".to_string()];
    let shown_by_b = vec!["b1".to_string(), "b2".to_string()];
    // Both pages read "not enrolled" and made codes; A commits first.
    assert!(matches!(
        store
            .add_security_key(&key(alice, b"tab-a"), Some(&shown_by_a), 20)
            .unwrap(),
        AddedKey::First(_)
    ));
    assert!(matches!(
        store
            .add_security_key(&key(alice, b"tab-b"), Some(&shown_by_b), 20)
            .unwrap(),
        AddedKey::Added(_)
    ));
    let kept: Vec<String> = store
        .recovery_codes(alice)
        .unwrap()
        .into_iter()
        .map(|(_, hash)| hash)
        .collect();
    assert_eq!(
        kept, shown_by_a,
        "the first page's codes are the ones that work"
    );
    // A page that read "enrolled" but finds no factor (reset meanwhile)
    // is asked for codes, and nothing changes.
    let bob = store.add_user("bob", None, NOW).unwrap();
    assert_eq!(
        store
            .add_security_key(&key(bob, b"bob-1"), None, 20)
            .unwrap(),
        AddedKey::FirstNeedsCodes
    );
    assert!(store.security_keys(bob).unwrap().is_empty());

    // An app set up in carol's web session while a first key is added
    // from another: the key drops the set-up, so the app is not enrolled
    // and its codes (shown on its page) are not stored.
    let carol = store.add_user("carol", None, NOW).unwrap();
    let web = WebSession {
        id: [9; 32],
        user_id: Some(carol),
        csrf: "c".into(),
        created_at: NOW,
        expires_at: NOW + 3600,
        code_at: None,
        pending_secret: Some(b"pending".to_vec()),
        pending_codes: Some(b"codes".to_vec()),
        remote_addr: None,
        ceremony: None,
    };
    store.add_web_session(&web).unwrap();
    store
        .set_web_pending(&web.id, Some(b"pending"), Some(b"codes"))
        .unwrap();
    assert!(matches!(
        store
            .add_security_key(&key(carol, b"carol-1"), Some(&shown_by_b), 20)
            .unwrap(),
        AddedKey::First(_)
    ));
    assert!(
        !store
            .enroll_from_setup(carol, b"sealed", &shown_by_a, NOW, (&web.id, b"pending"))
            .unwrap(),
        "the overtaken set-up was enrolled"
    );
    let carol_row = store.user_by_id(carol).unwrap().unwrap();
    assert!(!carol_row.has_totp());
    assert_eq!(store.recovery_codes(carol).unwrap().len(), 2);
    assert!(
        store
            .recovery_codes(carol)
            .unwrap()
            .iter()
            .all(|(_, hash)| hash.starts_with('b'))
    );
    // Not overtaken, the set-up enrols once, taking itself.
    let dave = store.add_user("dave", None, NOW).unwrap();
    let web = WebSession {
        id: [10; 32],
        user_id: Some(dave),
        ..web
    };
    store.add_web_session(&web).unwrap();
    store
        .set_web_pending(&web.id, Some(b"pending"), Some(b"codes"))
        .unwrap();
    assert!(
        store
            .enroll_from_setup(dave, b"sealed", &shown_by_a, NOW, (&web.id, b"pending"))
            .unwrap()
    );
    assert!(
        !store
            .enroll_from_setup(dave, b"sealed", &shown_by_a, NOW, (&web.id, b"pending"))
            .unwrap()
    );
    assert!(store.user_by_id(dave).unwrap().unwrap().has_totp());
}

// Attack: `ssh git@host 2fa verify` from a key that is then removed (a
// stolen laptop's key, removed by its owner) printed a one-time link; the
// link still worked after the removal, through serve and OpenSSH alike:
// touching a security key on the link's page opened a 2FA session bound
// to the removed key and told the waiting command it was verified. A link
// now holds only while the key that asked for it is its user's, and
// removing the key ends its links.
fn a_link_ends_with_the_ssh_key_that_asked_for_it(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let ssh_key = store
        .add_key(alice, "ssh-ed25519", "AAAA", "SHA256:laptop", "", None, NOW)
        .unwrap();
    let link = VerifyLink {
        user_id: alice,
        key_id: Some(ssh_key),
        remote_addr: Some("10.0.0.9".into()),
        expires_at: NOW + 300,
    };
    assert!(store.add_verify_link(&[5; 32], &link, 4, NOW).unwrap());
    assert!(store.add_verify_link(&[6; 32], &link, 4, NOW).unwrap());
    assert!(store.verify_link(&[5; 32], NOW).unwrap().is_some());
    // Used before the removal: the session it opened ends with the key,
    // and the waiting command is not told it is verified.
    let bound = NewSession {
        key_id: Some(ssh_key),
        ..session()
    };
    let session_id = store.open_session(alice, &bound, NOW).unwrap();
    assert!(store.use_verify_link(&[6; 32], session_id, NOW).unwrap());
    assert!(store.verify_link_session(&[6; 32]).unwrap().is_some());
    assert!(store.remove_key(ssh_key, NOW + 1).unwrap());
    assert_eq!(store.verify_link_session(&[6; 32]).unwrap(), None);
    assert_eq!(store.verify_link(&[5; 32], NOW + 1).unwrap(), None);
    let later = store.open_session(alice, &session(), NOW + 1).unwrap();
    assert!(
        !store.use_verify_link(&[5; 32], later, NOW + 2).unwrap(),
        "a removed key's link opened a session"
    );
    // A link whose key went by another way (the row gone) holds no more.
    let other = store
        .add_key(alice, "ssh-ed25519", "AAAB", "SHA256:desk", "", None, NOW)
        .unwrap();
    let link = VerifyLink {
        key_id: Some(other),
        ..link
    };
    assert!(store.add_verify_link(&[7; 32], &link, 4, NOW + 2).unwrap());
    store
        .conn
        .execute("DELETE FROM ssh_keys WHERE id = ?1", &params![other])
        .unwrap();
    assert_eq!(store.verify_link(&[7; 32], NOW + 2).unwrap(), None);
}

on_every_engine!(
    only_one_first_factor_sets_the_recovery_codes,
    a_link_ends_with_the_ssh_key_that_asked_for_it,
    a_first_key_enrols_and_a_credential_is_registered_once,
    a_key_use_counts_once_and_its_counter_only_moves_forward,
    a_ceremony_is_taken_once_and_links_work_once,
);
