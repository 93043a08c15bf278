//! The second factor's flows: enrol, verify (TOTP, recovery code or
//! security key, opening a 2FA session), regenerate recovery codes. Shared by the admin CLI, the
//! SSH `2fa verify` command and the web page, so each audits the same way.

use std::fmt;

use crate::authz::decision::Transport;
use crate::factor::crypto::{self, CryptoError, SecretKey};
use crate::factor::totp;
use crate::store::{
    Attempt, AttemptOutcome, AuditRecord, LockPolicy, NewSession, Store, StoreError, User,
};
use crate::system::config::Config;

/// Crockford's base32: no I, L, O or U, so codes read aloud unambiguously.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 12 characters of base32: 60 bits each.
const RECOVERY_LEN: usize = 12;

#[derive(Debug)]
pub enum TwoFactorError {
    Store(StoreError),
    Crypto(CryptoError),
    AlreadyEnrolled,
    NotEnrolled,
    /// The app moved to its new secret, but no 2FA session opened (the
    /// account locked, or the step used, meanwhile).
    MovedWithoutSession,
}

impl fmt::Display for TwoFactorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TwoFactorError::Store(e) => e.fmt(f),
            TwoFactorError::Crypto(e) => e.fmt(f),
            TwoFactorError::AlreadyEnrolled => write!(f, "already enrolled (reset 2FA first)"),
            TwoFactorError::NotEnrolled => write!(f, "has not enrolled in 2FA"),
            TwoFactorError::MovedWithoutSession => {
                write!(f, "the app moved, but no 2FA session opened")
            }
        }
    }
}

impl std::error::Error for TwoFactorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TwoFactorError::Store(e) => Some(e),
            TwoFactorError::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for TwoFactorError {
    fn from(e: StoreError) -> Self {
        TwoFactorError::Store(e)
    }
}

impl From<CryptoError> for TwoFactorError {
    fn from(e: CryptoError) -> Self {
        TwoFactorError::Crypto(e)
    }
}

/// What a new enrolment hands the user, once.
pub struct Enrollment {
    pub secret: [u8; totp::SECRET_LEN],
    pub uri: String,
    pub recovery_codes: Vec<String>,
}

/// Where a verification comes from; a session opened by it is bound here.
#[derive(Debug, Clone)]
pub struct Origin {
    pub transport: Transport,
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
    SecurityKey,
}

impl Method {
    /// The name the audit log gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::RecoveryCode => "recovery-code",
            Method::SecurityKey => "webauthn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// A 2FA session is open until `expires_at`.
    Opened {
        session_id: i64,
        expires_at: i64,
        method: Method,
    },
    /// The code is wrong; `left` more wrong codes lock the account.
    Wrong { left: u32 },
    /// The code was right once but has been used already.
    Replayed { left: u32 },
    /// Too many wrong codes: locked until then (this one was not checked).
    Locked { until: i64 },
}

/// The context a TOTP secret is sealed under: the user's row.
fn secret_context(user_id: i64) -> Vec<u8> {
    format!("git2fa totp secret v1 user {user_id}").into_bytes()
}

/// Decrypts a user's TOTP secret.
pub fn open_secret(key: &SecretKey, user: &User) -> Result<Vec<u8>, TwoFactorError> {
    let sealed = user
        .totp_secret
        .as_deref()
        .ok_or(TwoFactorError::NotEnrolled)?;
    Ok(key.open(&secret_context(user.id), sealed)?)
}

/// A new set of recovery codes: what to show (`XXXX-XXXX-XXXX`) and what to
/// store (salted slow hashes).
pub fn new_recovery_codes(count: u32) -> Result<(Vec<String>, Vec<String>), CryptoError> {
    let mut shown = Vec::new();
    let mut hashes = Vec::new();
    for _ in 0..count {
        let mut raw = String::with_capacity(RECOVERY_LEN);
        for _ in 0..RECOVERY_LEN {
            raw.push(char::from(
                RECOVERY_ALPHABET[usize::from(crypto::random_below(32)?)],
            ));
        }
        hashes.push(crypto::hash_recovery_code(&raw)?);
        shown.push(format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..]));
    }
    Ok((shown, hashes))
}

/// A typed recovery code in canonical form: case, dashes and spaces
/// ignored, and the letters people confuse with digits read as digits.
pub fn normalise_recovery_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(RECOVERY_LEN);
    for c in typed.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !RECOVERY_ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        out.push(c);
    }
    (out.len() == RECOVERY_LEN).then_some(out)
}

/// Enrols `user` at once: a new secret, sealed, and new recovery codes.
pub fn enroll(
    store: &mut Store,
    key: &SecretKey,
    config: &Config,
    user: &User,
    origin: &Origin,
    now: i64,
) -> Result<Enrollment, TwoFactorError> {
    if user.has_totp() {
        return Err(TwoFactorError::AlreadyEnrolled);
    }
    let secret = totp::generate_secret()?;
    let sealed = key.seal(&secret_context(user.id), &secret)?;
    let (recovery_codes, hashes) = new_recovery_codes(config.policy.recovery_codes)?;
    let row = row_of(user, origin, ("enroll", "ok", "enrolled"), None, now);
    if !store.audited(row, |store| store.enroll(user.id, &sealed, &hashes, now))? {
        return Err(TwoFactorError::AlreadyEnrolled);
    }
    Ok(Enrollment {
        secret,
        uri: totp::otpauth_uri(&config.totp.issuer, &user.name, &secret),
        recovery_codes,
    })
}

/// The set-up under way in a web session: its id, the pending secret as
/// the session keeps it (sealed), the secret, the recovery code hashes,
/// and the TOTP step of the code that confirmed it.
pub struct Setup<'a> {
    pub web_session: &'a [u8; 32],
    pub pending_sealed: &'a [u8],
    pub secret: &'a [u8],
    pub recovery_hashes: &'a [String],
    pub step: i64,
}

/// Enrols `user` with a secret they have just proved with a code for
/// `setup.step` (the web page's wizard): stores it sealed with the recovery code
/// hashes, spends that step, and opens a 2FA session bound to `origin`.
/// `AlreadyEnrolled` when the set-up ended meanwhile (a security key was
/// added, in another tab).
pub fn enroll_confirmed(
    store: &mut Store,
    key: &SecretKey,
    config: &Config,
    user: &User,
    setup: &Setup,
    origin: &Origin,
    now: i64,
) -> Result<i64, TwoFactorError> {
    let sealed = key.seal(&secret_context(user.id), setup.secret)?;
    let row = row_of(user, origin, ("enroll", "ok", "enrolled"), None, now);
    if !store.audited(row, |store| {
        store.enroll_from_setup(
            user.id,
            &sealed,
            setup.recovery_hashes,
            now,
            (setup.web_session, setup.pending_sealed),
        )
    })? {
        return Err(TwoFactorError::AlreadyEnrolled);
    }
    open_with_setup_step(store, config, user, (setup.step, sealed), origin, now)
}

/// Moves `user`'s authenticator app to the secret of `setup`, which they
/// have just proved with a code for `setup.step` (a new phone): spends that
/// step and opens a 2FA session bound to `origin`. `AlreadyEnrolled` when
/// the app changed meanwhile (2FA removed, or moved in another tab).
pub fn move_app_confirmed(
    store: &mut Store,
    key: &SecretKey,
    config: &Config,
    user: &User,
    setup: &Setup,
    origin: &Origin,
    now: i64,
) -> Result<i64, TwoFactorError> {
    let Some(old) = &user.totp_secret else {
        return Err(TwoFactorError::NotEnrolled);
    };
    let sealed = key.seal(&secret_context(user.id), setup.secret)?;
    let row = row_of(user, origin, ("app-move", "ok", "new secret"), None, now);
    if !store.audited(row, |store| {
        store.move_totp_from_setup(
            user.id,
            (old, &sealed),
            (setup.web_session, setup.pending_sealed),
        )
    })? {
        return Err(TwoFactorError::AlreadyEnrolled);
    }
    // The move stands; only the session failed to open.
    open_with_setup_step(store, config, user, (setup.step, sealed), origin, now).map_err(
        |e| match e {
            TwoFactorError::AlreadyEnrolled => TwoFactorError::MovedWithoutSession,
            other => other,
        },
    )
}

/// Spends the step a set-up's code was for and opens a 2FA session bound
/// to `origin`: the code that confirmed a new secret verifies too. An
/// error if the step was used meanwhile or the account locked (wrong codes
/// in another window): the new secret stands, the session does not open.
fn open_with_setup_step(
    store: &mut Store,
    config: &Config,
    user: &User,
    (step, sealed): (i64, Vec<u8>),
    origin: &Origin,
    now: i64,
) -> Result<i64, TwoFactorError> {
    let session = new_session(config, origin);
    // The session opens with its row, as a verified code's does.
    let describe = |outcome: &AttemptOutcome| match outcome {
        AttemptOutcome::Accepted { .. } => (
            "ok".to_string(),
            Method::Totp.as_str().to_string(),
            Some("the set-up's code".to_string()),
        ),
        _ => (
            "fail".to_string(),
            format!("replayed-{}", Method::Totp.as_str()),
            Some("the set-up's code: used meanwhile, or the account locked".to_string()),
        ),
    };
    let row = row_of(user, origin, ("verify", "fail", "unrecorded"), None, now);
    match store.audited(row, |store| {
        store.record_attempt_described(
            user.id,
            Attempt::Totp(Some((step, sealed))),
            now,
            lock_policy(config),
            Some(&session),
            Some(&describe),
        )
    })? {
        AttemptOutcome::Accepted {
            session_id: Some(id),
        } => Ok(id),
        _ => Err(TwoFactorError::AlreadyEnrolled),
    }
}

/// Replaces the user's recovery codes; the old ones stop working.
pub fn regenerate_recovery_codes(
    store: &mut Store,
    config: &Config,
    user: &User,
    origin: &Origin,
    now: i64,
) -> Result<Vec<String>, TwoFactorError> {
    if !user.is_enrolled() {
        return Err(TwoFactorError::NotEnrolled);
    }
    let (shown, hashes) = new_recovery_codes(config.policy.recovery_codes)?;
    let row = row_of(
        user,
        origin,
        ("recovery-codes", "ok", "regenerated"),
        None,
        now,
    );
    store.audited(row, |store| store.replace_recovery_codes(user.id, &hashes))?;
    Ok(shown)
}

/// Checks a TOTP or recovery code and, when it holds, opens a 2FA session
/// bound to `origin`. Every attempt is audited.
pub fn verify(
    store: &mut Store,
    key: &SecretKey,
    config: &Config,
    user: &User,
    code: &str,
    origin: &Origin,
    now: i64,
) -> Result<Verified, TwoFactorError> {
    if !user.is_enrolled() {
        return Err(TwoFactorError::NotEnrolled);
    }
    let (attempt, method) = if totp::looks_like_code(code) {
        // A user with keys alone has no app: any six digits are wrong.
        let step = match &user.totp_secret {
            Some(sealed) => {
                let secret = open_secret(key, user)?;
                totp::matching_step(&secret, now, config.totp.skew, code)
                    .map(|step| (step, sealed.clone()))
            }
            None => None,
        };
        (Attempt::Totp(step), Method::Totp)
    } else {
        let matched = match normalise_recovery_code(code) {
            Some(code) if config.policy.recovery_codes > 0 => {
                let codes = store.recovery_codes(user.id)?;
                let hashes = codes.iter().map(|(_, hash)| hash.clone()).collect();
                crypto::find_recovery_code(hashes, &code)?.map(|i| codes[i].clone())
            }
            _ => None,
        };
        (Attempt::Recovery(matched), Method::RecoveryCode)
    };
    record(store, config, user, attempt, method, None, origin, now)
}

/// Records an attempt, opening a session bound to `origin` when it holds,
/// and audits it (`detail`: why a key's answer was refused).
#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    store: &mut Store,
    config: &Config,
    user: &User,
    attempt: Attempt,
    method: Method,
    failure: Option<(&str, &str)>,
    origin: &Origin,
    now: i64,
) -> Result<Verified, TwoFactorError> {
    let lock = lock_policy(config);
    let session = new_session(config, origin);
    let method_name = method.as_str();
    // The row is written in the attempt's own transaction: the session it
    // opens, the code it spends and the failure it counts are committed
    // with their row, or nothing is.
    let describe = |outcome: &AttemptOutcome| {
        let failed = |reason: String, locked_now: bool| {
            // What a key's answer came to may quote what the browser sent:
            // it never begins as the lock's own words do.
            let detail = failure.map(|(_, d)| match d.starts_with(LOCKED_NOW) {
                true => format!("({d})"),
                false => d.to_string(),
            });
            let detail = match locked_now {
                // The attempt that locks the account (a lockout, counted
                // by serve's metrics from these words at the start).
                true => Some(format!(
                    "{LOCKED_NOW} {} s{}",
                    lock.lockout,
                    detail.map_or(String::new(), |d| format!("; {d}"))
                )),
                false => detail,
            };
            ("fail".to_string(), reason, detail)
        };
        match outcome {
            AttemptOutcome::Accepted { .. } => ("ok".to_string(), method_name.to_string(), None),
            AttemptOutcome::Wrong { locked_until, .. } => failed(
                failure.map_or_else(|| format!("wrong-{method_name}"), |(r, _)| r.to_string()),
                locked_until.is_some(),
            ),
            AttemptOutcome::Replayed { .. } => failed(format!("replayed-{method_name}"), false),
            AttemptOutcome::Locked { .. } => failed("locked".to_string(), false),
        }
    };
    let row = row_of(user, origin, ("verify", "fail", "unrecorded"), None, now);
    let outcome = store.audited(row, |store| {
        store.record_attempt_described(user.id, attempt, now, lock, Some(&session), Some(&describe))
    })?;
    let left = |failures: i64, locked: Option<i64>| {
        if locked.is_some() {
            0
        } else {
            config.policy.max_failures.saturating_sub(failures as u32)
        }
    };
    Ok(match outcome {
        AttemptOutcome::Accepted { session_id } => Verified::Opened {
            session_id: session_id.unwrap_or_default(),
            expires_at: now + config.policy.session_ttl,
            method,
        },
        AttemptOutcome::Wrong {
            failures,
            locked_until,
        } => match locked_until {
            Some(until) => Verified::Locked { until },
            None => Verified::Wrong {
                left: left(failures, locked_until),
            },
        },
        AttemptOutcome::Replayed {
            failures,
            locked_until,
        } => match locked_until {
            Some(until) => Verified::Locked { until },
            None => Verified::Replayed {
                left: left(failures, locked_until),
            },
        },
        AttemptOutcome::Locked { until } => Verified::Locked { until },
    })
}

/// How the row of the attempt that locks an account begins its detail.
pub const LOCKED_NOW: &str = "locked the account for";

pub(super) fn lock_policy(config: &Config) -> LockPolicy {
    LockPolicy {
        max_failures: config.policy.max_failures,
        lockout: config.policy.lockout,
    }
}

pub(super) fn new_session(config: &Config, origin: &Origin) -> NewSession {
    NewSession {
        ttl: config.policy.session_ttl,
        key_id: origin.key_id,
        remote_addr: origin.remote_addr.clone(),
        opened_via: origin.transport.as_str().to_string(),
    }
}

/// A row about `user`, done from `origin`.
pub(super) fn row_of(
    user: &User,
    origin: &Origin,
    (action, outcome, reason): (&str, &str, &str),
    detail: Option<String>,
    now: i64,
) -> AuditRecord {
    AuditRecord {
        at: now,
        user: Some(user.name.clone()),
        transport: origin.transport.as_str().into(),
        action: action.into(),
        outcome: outcome.into(),
        reason: reason.into(),
        key_id: origin.key_id,
        remote_addr: origin.remote_addr.clone(),
        detail,
        ..AuditRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_have_60_bits_and_normalise() {
        let (shown, hashes) = new_recovery_codes(3).unwrap();
        assert_eq!(shown.len(), 3);
        assert_eq!(hashes.len(), 3);
        for code in &shown {
            assert_eq!(code.len(), 14);
            let normal = normalise_recovery_code(code).unwrap();
            assert!(crypto::verify_recovery_code(
                &hashes[shown.iter().position(|c| c == code).unwrap()],
                &normal
            ));
            assert_eq!(
                normalise_recovery_code(&code.to_lowercase()),
                Some(normal.clone())
            );
        }
        assert_eq!(
            normalise_recovery_code("abcd-efgh-jkoi"),
            Some("ABCDEFGHJK01".into())
        );
        assert_eq!(normalise_recovery_code("ABCD-EFGH-JKU1"), None);
        assert_eq!(normalise_recovery_code("ABCD-EFGH"), None);
        assert_eq!(normalise_recovery_code("ÄBCD-EFGH-JKMN"), None);
    }
}
