//! OpenSSH public keys as users paste them (`ssh-ed25519 AAAA… comment`):
//! parsed and checked by the `ssh-key` crate (the one russh uses), limited
//! to the key types git2fa accepts, fingerprinted the way `ssh-keygen -l`
//! prints (`SHA256:` + unpadded base64 of SHA-256).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use russh::keys::ssh_key::{self, HashAlg};

/// Key types git2fa accepts (DSA is gone from OpenSSH). The `sk-` types
/// are security keys (FIDO): a touch of the key signs each login.
pub const ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Whether `algorithm` is a security key's (FIDO) type: the only keys
/// that can be marked as hardware-backed.
pub fn is_security_key_type(algorithm: &str) -> bool {
    algorithm.starts_with("sk-")
}

/// The longest line taken: an RSA key of 16 kbit is about 2,800 bytes.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: String,
    key: ssh_key::PublicKey,
    pub comment: String,
}

impl PublicKey {
    /// Parses one `authorized_keys`-style line without options.
    pub fn parse(line: &str) -> Result<PublicKey, String> {
        let line = line.trim();
        if line.len() > MAX_LINE {
            return Err("the key is too long".into());
        }
        let algorithm = line.split_whitespace().next().unwrap_or("");
        if !ALGORITHMS.contains(&algorithm) {
            return Err(format!(
                "`{}` is not a supported key type (use ssh-ed25519, ecdsa-sha2-*, ssh-rsa or a security key; options are not allowed)",
                algorithm
                    .chars()
                    .take(40)
                    .collect::<String>()
                    .escape_default()
            ));
        }
        let key = ssh_key::PublicKey::from_openssh(line)
            .map_err(|e| format!("this is not an OpenSSH public key: {e}"))?;
        // The key data names its own type: it must be the one written.
        if key.algorithm().as_str() != algorithm {
            return Err("the key data does not match its key type".into());
        }
        let comment = key.comment().to_string();
        if comment.chars().any(char::is_control) || comment.len() > 200 {
            return Err("the key comment must be printable and at most 200 bytes".into());
        }
        Ok(PublicKey {
            algorithm: algorithm.to_string(),
            key,
            comment,
        })
    }

    /// Builds a key from `KEYTYPE` and the base64 blob, as sshd hands them to
    /// `AuthorizedKeysCommand` (%t %k).
    pub fn from_parts(algorithm: &str, encoded: &str) -> Result<PublicKey, String> {
        PublicKey::parse(&format!("{algorithm} {encoded}"))
    }

    /// A security key (`sk-` type).
    pub fn is_security_key(&self) -> bool {
        is_security_key_type(&self.algorithm)
    }

    /// `SHA256:…`, as `ssh-keygen -l` and sshd's logs print it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The key's base64 blob (its wire encoding).
    pub fn blob_base64(&self) -> String {
        STANDARD.encode(self.key.to_bytes().unwrap_or_default())
    }
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

    /// Security keys, as `ssh-keygen -t ed25519-sk` and `-t ecdsa-sk`
    /// write them (fixed test vectors of the ssh-key crate's format).
    #[test]
    fn security_keys_parse() {
        for (line, algorithm) in [
            (
                "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIPcT+/nqe4c8DBB8ld4K6C2UHRA1bJqbBGI2sSWmqd6BAAAABHNzaDo= user@example.com",
                "sk-ssh-ed25519@openssh.com",
            ),
            (
                "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBN8RF/cLWLMbOV0V+PmfxbTRDj5gDsIGUEWJCsUuSbTjPc8VCcOyjlugoE9C/t1UsNk75zPkflrlYpwkLN2XV0UAAAAEc3NoOg== user@example.com",
                "sk-ecdsa-sha2-nistp256@openssh.com",
            ),
        ] {
            let key = PublicKey::parse(line).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
            assert_eq!(key.algorithm, algorithm);
            assert_eq!(key.comment, "user@example.com");
        }
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        let good = ed25519_line("");
        let encoded = good.split(' ').nth(1).unwrap();
        let mut short = Vec::new();
        short.extend_from_slice(&11u32.to_be_bytes());
        short.extend_from_slice(b"ssh-ed25519");
        short.extend_from_slice(&31u32.to_be_bytes());
        short.extend_from_slice(&[7u8; 31]);
        for bad in [
            String::new(),
            "ssh-dss AAAA".into(),
            format!("command=\"sh\" {good}"),
            "ssh-ed25519 !!!notbase64".into(),
            format!("ssh-rsa {encoded}"),
            format!("ssh-ed25519 {}", &encoded[..20]),
            format!("ssh-ed25519 {}", STANDARD.encode(&short)),
            format!("ssh-ed25519 {encoded} bad\u{7}comment"),
        ] {
            assert!(PublicKey::parse(&bad).is_err(), "{bad}");
        }
    }
}
