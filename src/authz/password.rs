//! Checking a password (git over HTTP with `password_for_git`, and the web
//! page's log-in): throttled per user and per address, with the same slow
//! work whether or not the user exists, so that timing tells no names.

use crate::factor::crypto;
use crate::store::{Store, StoreError, User};
use crate::system::config::Policy;
use crate::system::names::check_user_name;

/// How many wrong passwords from one address, in `[policy] lockout`,
/// stop password checks from it, as a multiple of `max_failures`.
const ADDRESS_FACTOR: u32 = 5;

/// What a password check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Too many wrong passwords lately, for this user or from this address:
    /// not checked, until then.
    Throttled { until: i64 },
    /// No such user, no password set, a user `counts` refused, or the wrong
    /// password. Counted against the user and the address.
    Wrong,
    /// The right password; the user's failures are forgotten.
    Right(User),
    /// Not checked: every password hash of this server is under way
    /// (`[limits] password_hashes`). Nothing counted.
    Busy,
}

/// Checks `password` for the user named `name`, asking from `remote_addr`.
/// A user that `counts` refuses is checked as if unknown (the same work,
/// the same answer).
pub fn check(
    store: &mut Store,
    policy: &Policy,
    (name, password): (&str, &str),
    remote_addr: &str,
    now: i64,
    counts: impl Fn(&User) -> bool,
) -> Result<PasswordCheck, StoreError> {
    let user_scope = format!("user:{}", crate::system::names::shown_user(name));
    let addr_scope = format!("addr:{remote_addr}");
    let scopes = [
        (user_scope.as_str(), policy.max_failures),
        (
            addr_scope.as_str(),
            policy.max_failures.saturating_mul(ADDRESS_FACTOR),
        ),
    ];
    // Counted before the slow hash: checks side by side cannot pass the
    // limit together.
    if let Some(until) = store.take_password_check(&scopes, policy.lockout, now)? {
        return Ok(PasswordCheck::Throttled { until });
    }
    let user = match check_user_name(name) {
        Ok(()) => store.user(name)?.filter(|u| counts(u)),
        Err(_) => None,
    };
    let checked = match user.as_ref().and_then(|u| u.password_hash.as_deref()) {
        Some(hash) => crypto::verify_password(hash, password),
        // The same work as a real check: timing does not tell which user
        // names exist.
        None => crypto::hash_like_a_password_check(password).map(|()| false),
    };
    let valid = match checked {
        Ok(valid) => valid,
        // Every hashing thread busy: not checked, and not counted (the
        // check taken before is given back, nothing more: a busy answer
        // never wipes the count of earlier wrong passwords).
        Err(crypto::CryptoError::Busy) => {
            store.password_not_checked(&[&user_scope, &addr_scope])?;
            return Ok(PasswordCheck::Busy);
        }
        Err(_) => false,
    };
    match user.filter(|_| valid) {
        Some(user) => {
            store.password_was_right(&user_scope, &addr_scope)?;
            Ok(PasswordCheck::Right(user))
        }
        // Counted already.
        None => Ok(PasswordCheck::Wrong),
    }
}
