//! OAuth codes and the tokens they become, on every engine: one exchange
//! per code, a second revokes the first's token, the token ends with its
//! 2FA session, a user's waiting codes are bounded.

use super::*;

fn code_for(user_id: i64, session_id: i64) -> OauthCode {
    OauthCode {
        user_id,
        client_id: "git-credential-oauth".into(),
        redirect_uri: "http://127.0.0.1:1/".into(),
        challenge: "c".repeat(43),
        session_id,
        remote_addr: Some("127.0.0.1".into()),
        expires_at: NOW + 60,
    }
}

fn session(store: &mut Store, user_id: i64) -> i64 {
    store
        .open_session(
            user_id,
            &NewSession {
                ttl: 3600,
                key_id: None,
                remote_addr: Some("127.0.0.1".into()),
                opened_via: "web".into(),
            },
            NOW,
        )
        .unwrap()
}

fn a_code_is_exchanged_once_for_a_token_that_ends_with_its_session(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let sid = session(&mut store, alice);
    let name =
        |_: &OauthCode| -> std::result::Result<String, &'static str> { Ok("oauth: t".into()) };
    store
        .add_oauth_code(&[1; 32], &code_for(alice, sid), NOW)
        .unwrap();
    assert_eq!(store.oauth_code_user(&[1; 32]).unwrap(), Some(alice));
    assert_eq!(store.oauth_code_user(&[9; 32]).unwrap(), None);
    let Exchanged::Token { id, until } = store
        .exchange_oauth_code(&[1; 32], &[2; 32], NOW + 1, &name)
        .unwrap()
    else {
        panic!("no token")
    };
    assert_eq!(until, NOW + 3600);
    let token = store.token(id).unwrap().unwrap();
    assert_eq!(token.oauth_client.as_deref(), Some("git-credential-oauth"));
    assert_eq!(token.session_until, Some(NOW + 3600));
    assert_eq!(token.repos, vec!["**".to_string()]);
    // Again: refused, and the token of the first exchange is revoked.
    assert_eq!(
        store
            .exchange_oauth_code(&[1; 32], &[3; 32], NOW + 2, &name)
            .unwrap(),
        Exchanged::Used {
            user_id: alice,
            token_id: Some(id)
        }
    );
    assert!(store.token(id).unwrap().unwrap().revoked_at.is_some());
    // A check that fails burns the code all the same.
    store
        .add_oauth_code(&[4; 32], &code_for(alice, sid), NOW)
        .unwrap();
    let wrong = |_: &OauthCode| -> std::result::Result<String, &'static str> { Err("pkce") };
    assert_eq!(
        store
            .exchange_oauth_code(&[4; 32], &[5; 32], NOW + 1, &wrong)
            .unwrap(),
        Exchanged::Refused {
            user_id: alice,
            reason: "pkce"
        }
    );
    assert!(matches!(
        store
            .exchange_oauth_code(&[4; 32], &[5; 32], NOW + 1, &name)
            .unwrap(),
        Exchanged::Used { token_id: None, .. }
    ));
    // Expired, and a session ended meanwhile: refused.
    store
        .add_oauth_code(&[6; 32], &code_for(alice, sid), NOW)
        .unwrap();
    assert!(matches!(
        store
            .exchange_oauth_code(&[6; 32], &[7; 32], NOW + 60, &name)
            .unwrap(),
        Exchanged::Refused {
            reason: "expired-code",
            ..
        }
    ));
    let Exchanged::Token { id: second, .. } = ({
        store
            .add_oauth_code(&[8; 32], &code_for(alice, sid), NOW)
            .unwrap();
        store
            .exchange_oauth_code(&[8; 32], &[10; 32], NOW + 1, &name)
            .unwrap()
    }) else {
        panic!("no token")
    };
    store.end_sessions_of(alice, NOW + 5).unwrap();
    assert_eq!(
        store.token(second).unwrap().unwrap().session_until,
        Some(NOW + 5),
        "the token ends with its session"
    );
    store
        .add_oauth_code(&[11; 32], &code_for(alice, sid), NOW)
        .unwrap();
    assert!(matches!(
        store
            .exchange_oauth_code(&[11; 32], &[12; 32], NOW + 6, &name)
            .unwrap(),
        Exchanged::Refused {
            reason: "session-ended",
            ..
        }
    ));
    assert_eq!(
        store
            .exchange_oauth_code(&[13; 32], &[14; 32], NOW, &name)
            .unwrap(),
        Exchanged::Unknown
    );
}

fn a_user_has_at_most_ten_codes_waiting(engine: Engine) {
    let (_fresh, mut store) = new_store_on(engine);
    let alice = store.add_user("alice", None, NOW).unwrap();
    let sid = session(&mut store, alice);
    for i in 0..12u8 {
        store
            .add_oauth_code(&[i; 32], &code_for(alice, sid), NOW + i64::from(i))
            .unwrap();
    }
    let waiting = (0..12u8)
        .filter(|i| store.oauth_code_user(&[*i; 32]).unwrap().is_some())
        .count();
    assert_eq!(waiting, 10);
    assert_eq!(
        store.oauth_code_user(&[0; 32]).unwrap(),
        None,
        "the oldest went"
    );
    assert_eq!(store.oauth_code_user(&[11; 32]).unwrap(), Some(alice));
}

on_every_engine!(
    a_code_is_exchanged_once_for_a_token_that_ends_with_its_session,
    a_user_has_at_most_ten_codes_waiting,
);
