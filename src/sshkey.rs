//! OpenSSH public keys as users paste them (`ssh-ed25519 AAAA… comment`):
//! parsed, checked against their own wire encoding, fingerprinted the way
//! `ssh-keygen -l` prints (`SHA256:` + unpadded base64 of SHA-256).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// Key types git2fa accepts (DSA is gone from OpenSSH).
pub const ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

const MAX_BLOB: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: String,
    pub blob: Vec<u8>,
    pub comment: String,
}

impl PublicKey {
    /// Parses one `authorized_keys`-style line without options.
    pub fn parse(line: &str) -> Result<PublicKey, String> {
        let line = line.trim();
        let mut fields = line.splitn(3, char::is_whitespace);
        let algorithm = fields.next().unwrap_or("");
        if !ALGORITHMS.contains(&algorithm) {
            return Err(format!(
                "`{}` is not a supported key type (use ssh-ed25519, ecdsa-sha2-* or ssh-rsa; options are not allowed)",
                algorithm
                    .chars()
                    .take(40)
                    .collect::<String>()
                    .escape_default()
            ));
        }
        let encoded = fields.next().unwrap_or("").trim();
        if encoded.len() > MAX_BLOB * 4 / 3 + 4 {
            return Err("the key is too long".into());
        }
        let blob = STANDARD
            .decode(encoded)
            .map_err(|_| "the key is not valid base64".to_string())?;
        PublicKey::from_blob(algorithm, &blob, fields.next().unwrap_or("").trim())
    }

    /// Builds a key from `KEYTYPE` and the base64 blob, as sshd hands them to
    /// `AuthorizedKeysCommand` (%t %k).
    pub fn from_parts(algorithm: &str, encoded: &str) -> Result<PublicKey, String> {
        PublicKey::parse(&format!("{algorithm} {encoded}"))
    }

    fn from_blob(algorithm: &str, blob: &[u8], comment: &str) -> Result<PublicKey, String> {
        // The wire form begins with the key type as an SSH string (RFC 4253
        // section 6.6): a 4-byte big-endian length, then the name.
        let inner = read_string(blob).ok_or("the key data is truncated")?;
        if inner != algorithm.as_bytes() {
            return Err("the key data does not match its key type".into());
        }
        let rest = &blob[4 + inner.len()..];
        if algorithm == "ssh-ed25519" {
            // RFC 8709 section 4: one string holding the 32-byte key.
            if read_string(rest).map(<[u8]>::len) != Some(32) || rest.len() != 36 {
                return Err("the ed25519 key data is malformed".into());
            }
        } else if rest.is_empty() {
            return Err("the key data is truncated".into());
        }
        if comment.chars().any(char::is_control) || comment.len() > 200 {
            return Err("the key comment must be printable and at most 200 bytes".into());
        }
        Ok(PublicKey {
            algorithm: algorithm.to_string(),
            blob: blob.to_vec(),
            comment: comment.to_string(),
        })
    }

    /// `SHA256:…`, as `ssh-keygen -l` and sshd's logs print it.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }

    /// The key's base64 blob.
    pub fn blob_base64(&self) -> String {
        STANDARD.encode(&self.blob)
    }
}

fn read_string(data: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    data.get(4..4usize.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed25519_line(comment: &str) -> String {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[7u8; 32]);
        format!("ssh-ed25519 {} {comment}", STANDARD.encode(&blob))
    }

    #[test]
    fn parses_and_fingerprints() {
        let key = PublicKey::parse(&ed25519_line("alice@laptop")).unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "alice@laptop");
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert_eq!(key.fingerprint().len(), 7 + 43);
        let again = PublicKey::from_parts("ssh-ed25519", &key.blob_base64()).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        let good = ed25519_line("");
        let encoded = good.split(' ').nth(1).unwrap();
        for bad in [
            String::new(),
            "ssh-dss AAAA".into(),
            format!("command=\"sh\" {good}"),
            "ssh-ed25519 !!!notbase64".into(),
            format!("ssh-rsa {encoded}"),
            format!("ssh-ed25519 {}", &encoded[..20]),
            format!("ssh-ed25519 {encoded} bad\u{7}comment"),
        ] {
            assert!(PublicKey::parse(&bad).is_err(), "{bad}");
        }
    }
}
