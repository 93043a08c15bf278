//! TOTP (RFC 6238): 30-second steps, 6 digits, HMAC-SHA1, as authenticator
//! apps expect. Codes come from totp-rs; which step a code belongs to, and
//! that each step is accepted once, is ours (see `store::record_attempt`).

use totp_rs::{Algorithm, Builder};

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u8 = 6;
/// 160 bits, the HMAC-SHA1 block-friendly size RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// The code for `unix` seconds with any algorithm and length (RFC 6238
/// Appendix B uses 8 digits and three hashes).
pub fn code_with(algorithm: Algorithm, digits: u8, secret: &[u8], unix: u64) -> Option<String> {
    let totp = Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(STEP_SECONDS)
        .with_skew(0)
        .with_secret(secret.to_vec())
        .build_noncompliant();
    Some(totp.generate(unix).to_string())
}

/// The 6-digit SHA-1 code for `unix` seconds.
pub fn code_at(secret: &[u8], unix: u64) -> String {
    code_with(Algorithm::SHA1, DIGITS, secret, unix).unwrap_or_default()
}

/// The step a time falls in.
pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECONDS as i64)
}

/// Whether `text` has the shape of a TOTP code (six digits, spaces allowed
/// as apps show them: `123 456`).
pub fn looks_like_code(text: &str) -> bool {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == usize::from(DIGITS) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The newest step within `skew` steps of `now` whose code is `code`, if
/// any. Comparison is in constant time per step.
pub fn matching_step(secret: &[u8], now: i64, skew: u32, code: &str) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if !looks_like_code(&code) {
        return None;
    }
    let current = step_of(now);
    let skew = i64::from(skew);
    (current - skew..=current + skew).rev().find(|&step| {
        let at = u64::try_from(step).unwrap_or(0) * STEP_SECONDS;
        crate::factor::crypto::constant_time_eq(code_at(secret, at).as_bytes(), code.as_bytes())
    })
}

/// A new random secret.
pub fn generate_secret() -> Result<[u8; SECRET_LEN], crate::factor::crypto::CryptoError> {
    crate::factor::crypto::random_bytes()
}

/// The secret as authenticator apps take it: RFC 4648 base32, no padding.
pub fn encode_secret(secret: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, secret)
}

pub fn decode_secret(text: &str) -> Option<Vec<u8>> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &clean)
}

/// The `otpauth://` URI (Google Authenticator's Key Uri Format) that QR
/// codes carry.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    use crate::system::url::url_component;
    let issuer_enc = url_component(issuer).replace('/', "%2F");
    format!(
        "otpauth://totp/{issuer_enc}:{}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        url_component(account).replace('/', "%2F"),
        encode_secret(secret),
    )
}

/// The secret carried by an `otpauth://` URI (what a test or an app reads).
pub fn secret_from_uri(uri: &str) -> Option<Vec<u8>> {
    let query = uri.strip_prefix("otpauth://totp/")?.split_once('?')?.1;
    let secret = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))?;
    decode_secret(secret)
}

#[cfg(test)]
mod tests;
