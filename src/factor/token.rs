//! Personal access tokens: `g2fa_`, then 32 base62 characters (190 random
//! bits), then a 6-character checksum, so a mistyped or truncated token is
//! rejected before the store is touched. The store keeps only the SHA-256 of the
//! whole token: one indexed lookup, no slow hash (the token is random, not a
//! guessable password).

use sha2::{Digest, Sha256};

use crate::factor::crypto::{CryptoError, random_below};

pub const PREFIX: &str = "g2fa_";
const BODY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// The length of every token.
pub const LEN: usize = PREFIX.len() + BODY_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random token, checksum included.
pub fn generate() -> Result<String, CryptoError> {
    let mut body = String::with_capacity(BODY_LEN);
    for _ in 0..BODY_LEN {
        body.push(char::from(BASE62[usize::from(random_below(62)?)]));
    }
    let checksum = checksum(&body);
    Ok(format!("{PREFIX}{body}{checksum}"))
}

/// Whether a password field holds something meant as a token (so that it
/// is checked as one, and never against the password hash).
pub fn looks_like_token(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// Checks prefix, length, alphabet and checksum.
pub fn is_well_formed(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    crate::factor::crypto::constant_time_eq(checksum(body).as_bytes(), sum.as_bytes())
}

/// What the store keeps.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The first 32 bits of SHA-256 over the body, in 6 base62 digits.
fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let mut value = u64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A repository pattern as stored: no trailing `.git` (names never carry
/// it), no leading `/`.
pub fn normalise_pattern(pattern: &str) -> Result<String, String> {
    let trimmed = pattern.trim().trim_start_matches('/');
    let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
    if trimmed.is_empty()
        || trimmed.len() > 256
        || trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || trimmed
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(format!(
            "`{}` is not a repository pattern like team/app or team/*",
            pattern.escape_default()
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), LEN);
        assert!(a.starts_with("g2fa_"));
        assert!(is_well_formed(&a) && is_well_formed(&b));
    }

    #[test]
    fn a_mistyped_or_truncated_token_fails_its_checksum() {
        let token = generate().unwrap();
        let mut chars: Vec<char> = token.chars().collect();
        for i in PREFIX.len()..LEN {
            let original = chars[i];
            chars[i] = if original == 'a' { 'b' } else { 'a' };
            let typo: String = chars.iter().collect();
            assert!(!is_well_formed(&typo), "typo at {i} accepted");
            chars[i] = original;
        }
        assert!(!is_well_formed(&token[..LEN - 1]));
        assert!(!is_well_formed(&format!("{token}x")));
        assert!(!is_well_formed(&token.replacen("g2fa_", "g2fb_", 1)));
        assert!(!is_well_formed(&token.replace(&token[6..7], "-")));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn the_hash_is_sha256_of_the_whole_token() {
        // FIPS 180-2 example: SHA-256("abc").
        assert_eq!(
            hash("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn patterns_are_normalised() {
        assert_eq!(normalise_pattern("team/app.git").unwrap(), "team/app");
        assert_eq!(normalise_pattern("/team/*").unwrap(), "team/*");
        for bad in ["", "..", "team/../x", "a b", "team//x"] {
            assert!(normalise_pattern(bad).is_err(), "{bad}");
        }
    }
}
