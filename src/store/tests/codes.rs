//! Codes: each TOTP step and recovery code once, lockouts, races.

use super::*;

fn a_totp_step_is_accepted_once(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
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

fn failures_lock_the_account_and_the_lock_ends(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
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

fn a_recovery_code_works_once(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
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
    // SQLite gives the emptied table's ids again, as the attack needs;
    // PostgreSQL's sequence never does.
    if engine == Engine::Sqlite {
        assert_eq!(
            reused_id, code_id,
            "the row id was reused, as the attack needs"
        );
    } else {
        assert!(reused_id > code_id, "{reused_id} after {code_id}");
    }
    let new = store
        .record_attempt(
            id,
            Attempt::Recovery(Some((reused_id, "h3".into()))),
            NOW,
            LOCK,
            None,
        )
        .unwrap();
    assert!(
        matches!(new, AttemptOutcome::Accepted { .. }),
        "the new code is still good: {new:?}"
    );
}

fn a_code_of_a_replaced_secret_opens_nothing(engine: Engine) {
    // Attack: a TOTP code is checked against the secret, and the admin
    // resets 2FA (or the user re-enrols) before the attempt is recorded.
    // After the reset the step counter is empty, so without a check of the
    // secret the old code would open a session for the new enrolment.
    let (_fresh, mut store) = new_store_on(engine);
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
fn race(location: &Location, threads: usize, user: i64, attempt: Attempt) -> Vec<AttemptOutcome> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let location = location.clone();
            let attempt = attempt.clone();
            std::thread::spawn(move || {
                let mut store = Store::connect(&location).unwrap();
                barrier.wait();
                store
                    .record_attempt(user, attempt.clone(), NOW, LOCK, Some(&session()))
                    .unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn one_code_used_concurrently_succeeds_exactly_once(engine: Engine) {
    let (fresh, mut store) = new_store_on(engine);
    let id = enrolled(&mut store, "alice");
    let code_id = store.recovery_codes(id).unwrap()[0].0;
    drop(store);
    for attempt in [totp(NOW / 30), recovery(code_id)] {
        let outcomes = race(&fresh.location, 8, id, attempt.clone());
        let accepted = outcomes
            .iter()
            .filter(|o| matches!(o, AttemptOutcome::Accepted { .. }))
            .count();
        assert_eq!(accepted, 1, "{attempt:?}: {outcomes:?}");
        let store = Store::connect(&fresh.location).unwrap();
        store
            .conn
            .execute("UPDATE users SET failures = 0, locked_until = NULL", &[])
            .unwrap();
    }
    let store = Store::connect(&fresh.location).unwrap();
    assert_eq!(
        store.open_sessions(id, NOW).unwrap().len(),
        2,
        "one session per accepted code"
    );
}

fn concurrent_wrong_codes_lock_at_exactly_max_failures(engine: Engine) {
    let (fresh, mut store) = new_store_on(engine);
    let id = enrolled(&mut store, "alice");
    drop(store);
    let outcomes = race(&fresh.location, 10, id, Attempt::Totp(None));
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

on_every_engine!(
    a_totp_step_is_accepted_once,
    failures_lock_the_account_and_the_lock_ends,
    a_recovery_code_works_once,
    a_code_of_a_replaced_secret_opens_nothing,
    one_code_used_concurrently_succeeds_exactly_once,
    concurrent_wrong_codes_lock_at_exactly_max_failures,
);
