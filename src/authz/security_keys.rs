//! Security keys and passkeys as a second factor: registering one (the
//! first makes the user enrolled, with recovery codes), and recording a
//! key's answer like a code: single use, counted towards the lock, audited.
//! The ceremonies themselves are `factor::webauthn`'s.

use crate::factor::webauthn::{self, Refused};
use crate::store::{AddedKey, Attempt, KeyUse, SecurityKey, Store, User};
use crate::system::config::Config;

use super::twofactor::{
    Method, Origin, TwoFactorError, Verified, new_recovery_codes, new_session, record, row_of,
};

/// Records a security key's answer: `Ok` holds, opening a 2FA session
/// bound to `origin`; `Err` is a failed assertion, which counts towards
/// the lock like a wrong code. Every answer is audited (`webauthn`).
pub fn verify_key(
    store: &mut Store,
    config: &Config,
    user: &User,
    answer: Result<webauthn::Used, Refused>,
    origin: &Origin,
    now: i64,
) -> Result<Verified, TwoFactorError> {
    match answer {
        Ok(used) => record(
            store,
            config,
            user,
            Attempt::Key(Some(KeyUse {
                key_id: used.key_id,
                sign_count: used.sign_count,
                credential: used.credential,
            })),
            Method::SecurityKey,
            // Only if the store's counter moved past this one meanwhile:
            // another use of the same key won the race, or a copy did.
            Some((
                "cloned-webauthn",
                "the key's signature counter did not move past the stored one",
            )),
            origin,
            now,
        ),
        Err(refused) => {
            let (reason, detail) = match &refused {
                Refused::Cloned { detail } => {
                    log::warn!(
                        "security key of {}: signature counter went backwards, a cloned key? {detail}",
                        user.name
                    );
                    ("cloned-webauthn", detail.clone())
                }
                Refused::Invalid { detail } => ("wrong-webauthn", detail.clone()),
                Refused::NoCeremony => (
                    "replayed-webauthn",
                    "no ceremony under way: expired, used already, or replaced".to_string(),
                ),
                Refused::NoAnswer(why) => ("no-webauthn", why.clone()),
            };
            record(
                store,
                config,
                user,
                Attempt::Key(None),
                Method::SecurityKey,
                Some((reason, &detail)),
                origin,
                now,
            )
        }
    }
}

/// What registering a key did.
pub struct KeyRegistered {
    pub key_id: i64,
    /// The user's first second factor: new recovery codes to show, and a
    /// 2FA session opened (as a first code opens one).
    pub first: Option<(Vec<String>, i64)>,
}

/// What the ceremonies need of a user and their keys.
pub fn key_user(user: &User) -> webauthn::KeyUser<'_> {
    webauthn::KeyUser {
        id: user.id,
        name: &user.name,
        created_at: user.created_at,
    }
}

pub fn stored_keys(keys: &[SecurityKey]) -> Vec<webauthn::StoredKey<'_>> {
    keys.iter()
        .map(|k| webauthn::StoredKey {
            id: k.id,
            name: &k.name,
            credential_id: &k.credential_id,
            credential: &k.credential,
            sign_count: k.sign_count,
        })
        .collect()
}

/// The most keys one user may register: every verify lists them all to
/// the browser, and every one is a way in.
pub const MAX_KEYS: i64 = 20;

/// Registers a key the browser just made for `user`, named `name`.
/// `Err(added)` when it was not: registered already, or one too many.
pub fn register_key(
    store: &mut Store,
    config: &Config,
    user: &User,
    name: &str,
    key: webauthn::NewKey,
    origin: &Origin,
    now: i64,
) -> Result<Result<KeyRegistered, AddedKey>, TwoFactorError> {
    // Made ahead when the user looks new; whether the key is the first
    // factor is decided by the store, in the transaction that adds it.
    let mut codes = if user.is_enrolled() {
        None
    } else {
        Some(new_recovery_codes(config.policy.recovery_codes)?)
    };
    let row = SecurityKey {
        id: 0,
        user_id: user.id,
        name: name.to_string(),
        credential_id: key.credential_id,
        credential: key.credential,
        sign_count: key.sign_count,
        created_at: now,
        last_used_at: None,
    };
    let (key_id, first) = loop {
        let audit_row = row_of(
            user,
            origin,
            ("security-key-add", "ok", "webauthn key"),
            Some(name.to_string()),
            now,
        );
        let added = store.audited(audit_row, |store| {
            store.add_security_key(&row, codes.as_ref().map(|(_, h)| h.as_slice()), MAX_KEYS)
        })?;
        match added {
            AddedKey::Added(id) => break (id, false),
            AddedKey::First(id) => break (id, true),
            // The user's factors were removed since the page was read.
            AddedKey::FirstNeedsCodes if codes.is_none() => {
                codes = Some(new_recovery_codes(config.policy.recovery_codes)?);
            }
            refused => return Ok(Err(refused)),
        }
    };
    let first = match codes.filter(|_| first) {
        Some((shown, _)) => {
            let row = row_of(user, origin, ("enroll", "ok", "webauthn"), None, now);
            let session_id = store.audited(row, |store| {
                store.open_session(user.id, &new_session(config, origin), now)
            })?;
            Some((shown, session_id))
        }
        None => None,
    };
    Ok(Ok(KeyRegistered { key_id, first }))
}
