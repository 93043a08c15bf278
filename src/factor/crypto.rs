//! Cryptographic building blocks: randomness, the key that encrypts TOTP
//! secrets (`secret.key`, kept apart from the store), and slow hashes for
//! passwords and recovery codes.

use std::fmt;
use std::path::{Path, PathBuf};

use super::slow::{self, Wait};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Debug)]
pub enum CryptoError {
    /// The operating system's random source failed.
    Random,
    /// `secret.key` is missing, unreadable, the wrong size or too open.
    Key { path: PathBuf, problem: String },
    /// A sealed secret did not open: wrong key, or tampered with.
    Sealed,
    /// Password hashing failed (only on absurd input).
    Hash,
    /// Every hashing thread was busy (`slow`): the server is busy.
    Busy,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::Random => write!(f, "the system random source failed"),
            CryptoError::Busy => write!(f, "every password hash is busy; try again in a moment"),
            CryptoError::Key { path, problem } => write!(f, "{}: {problem}", path.display()),
            CryptoError::Sealed => {
                write!(
                    f,
                    "a TOTP secret does not decrypt with secret.key (wrong key, or the store was altered)"
                )
            }
            CryptoError::Hash => write!(f, "password hashing failed"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

/// A uniformly random index below `bound` (at most 256), by rejection.
pub fn random_below(bound: u8) -> Result<u8, CryptoError> {
    let limit = 256 - (256 % u16::from(bound));
    loop {
        let [byte] = random_bytes::<1>()?;
        if u16::from(byte) < limit {
            return Ok(byte % bound);
        }
    }
}

/// Writes a new file (which must not exist, not even as a symlink), mode
/// 0600, synced.
pub fn write_private_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    crate::system::atomic_file::write_new(path, data, 0o600)
}

/// Reads a file of this account's that no one else may read: not through
/// a symlink, and checked on the open file itself.
pub fn read_private_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "mode {:o} lets others read it; run chmod 600",
            meta.mode() & 0o777
        )));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(std::io::Error::other(format!(
            "it belongs to uid {}, not to this account",
            meta.uid()
        )));
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(data)
}

/// The key that seals TOTP secrets. A copy of the store alone reveals none.
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Writes a new random key to `path` (which must not exist), mode 0600.
    pub fn create(path: &Path) -> Result<SecretKey, CryptoError> {
        let key = random_bytes::<KEY_LEN>()?;
        write_private_file(path, &key).map_err(|e| CryptoError::Key {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        Ok(SecretKey(key))
    }

    /// Reads the key; refuses one that others may read.
    pub fn load(path: &Path) -> Result<SecretKey, CryptoError> {
        use std::os::unix::fs::PermissionsExt;
        let problem = |problem: String| CryptoError::Key {
            path: path.to_path_buf(),
            problem,
        };
        let meta =
            std::fs::metadata(path).map_err(|e| problem(crate::system::files::io_reason(&e)))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(problem(format!(
                "mode {:o} lets others read it; run chmod 600",
                meta.permissions().mode() & 0o777
            )));
        }
        let bytes =
            std::fs::read(path).map_err(|e| problem(crate::system::files::io_reason(&e)))?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| problem(format!("must be exactly {KEY_LEN} bytes")))?;
        Ok(SecretKey(key))
    }

    /// Encrypts `plaintext`, bound to `context` (the row it belongs to, so a
    /// sealed secret copied to another user's row does not open).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let cipher = ChaCha20Poly1305::new(&self.0.into());
        let sealed = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Sealed)?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// Names the key without revealing it: `SHA256:` and the hex of a
    /// SHA-256 over a fixed label and the key. The store records it, so
    /// that every host sharing a store can be checked to hold the same key.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::new()
            .chain_update(b"git2fa secret.key fingerprint\0")
            .chain_update(self.0)
            .finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("SHA256:{hex}")
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Sealed);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Sealed)?;
        ChaCha20Poly1305::new(&self.0.into())
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Sealed)
    }
}

/// Argon2id with the library's defaults (19 MiB, 2 passes): for passwords.
fn password_hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Argon2id, lighter (8 MiB, 1 pass): recovery codes carry 60 random bits,
/// so the hash guards a stolen store, not a guessable secret, and up to
/// `recovery_codes` of them are tried per attempt.
fn recovery_hasher() -> Argon2<'static> {
    match Params::new(8 * 1024, 1, 1, None) {
        Ok(params) => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        Err(_) => Argon2::default(),
    }
}

fn hash_with(hasher: &Argon2, secret: &[u8]) -> Result<String, CryptoError> {
    let salt = random_bytes::<16>()?;
    hasher
        .hash_password_with_salt(secret, &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| CryptoError::Hash)
}

/// A PHC string (`$argon2id$v=19$...`) for a password (a new password:
/// it waits for a hashing thread, `slow`).
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let password = password.to_string();
    slow::run(Wait::Bounded, move || {
        hash_with(&password_hasher(), password.as_bytes())
    })
    .map_err(|_| CryptoError::Busy)?
}

/// Whether `password` matches `hash`; a malformed hash matches nothing.
/// A log-in: refused at once (`Busy`) when every hashing thread is busy.
pub fn verify_password(hash: &str, password: &str) -> Result<bool, CryptoError> {
    let (hash, password) = (hash.to_string(), password.to_string());
    slow::run(Wait::No, move || {
        password_hasher()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .map_err(|_| CryptoError::Busy)
}

/// The work of a password check for a user without a password: timing
/// does not tell which names exist. `Busy` as `verify_password`.
pub fn hash_like_a_password_check(password: &str) -> Result<(), CryptoError> {
    let password = password.to_string();
    slow::run(Wait::No, move || {
        let _ = hash_with(&password_hasher(), password.as_bytes());
    })
    .map_err(|_| CryptoError::Busy)
}

pub fn hash_recovery_code(normalised: &str) -> Result<String, CryptoError> {
    let code = normalised.to_string();
    slow::run(Wait::Bounded, move || {
        hash_with(&recovery_hasher(), code.as_bytes())
    })
    .map_err(|_| CryptoError::Busy)?
}

/// Whether `normalised` matches one of `hashes`: its index. One job for
/// them all (they are tried in turn), waiting for a hashing thread.
pub fn find_recovery_code(
    hashes: Vec<String>,
    normalised: &str,
) -> Result<Option<usize>, CryptoError> {
    let code = normalised.to_string();
    slow::run(Wait::Bounded, move || {
        let hasher = recovery_hasher();
        hashes.iter().position(|hash| {
            hasher
                .verify_password(code.as_bytes(), hash.as_str())
                .is_ok()
        })
    })
    .map_err(|_| CryptoError::Busy)
}

/// Whether `normalised` matches `hash` (tests).
pub fn verify_recovery_code(hash: &str, normalised: &str) -> bool {
    recovery_hasher()
        .verify_password(normalised.as_bytes(), hash)
        .is_ok()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::create(&dir.path().join("k")).unwrap();
        let other = SecretKey::create(&dir.path().join("other")).unwrap();
        let sealed = key.seal(b"user 1", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(b"user 1", &sealed).unwrap(), b"secret");
        assert!(key.open(b"user 2", &sealed).is_err());
        assert!(other.open(b"user 1", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(key.open(b"user 1", &tampered).is_err());
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        SecretKey::create(&path).unwrap();
        assert!(SecretKey::load(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretKey::load(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert!(
            SecretKey::load(&path)
                .err()
                .unwrap()
                .to_string()
                .contains("32 bytes")
        );
    }

    #[test]
    fn passwords_and_recovery_codes_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse").unwrap());
        assert!(!verify_password(&hash, "correct horsf").unwrap());
        assert!(!verify_password("not a hash", "x").unwrap());
        let code = hash_recovery_code("ABCD1234EFGH").unwrap();
        assert!(verify_recovery_code(&code, "ABCD1234EFGH"));
        assert!(!verify_recovery_code(&code, "ABCD1234EFGX"));
        // Salted: the same input hashes differently each time.
        assert_ne!(code, hash_recovery_code("ABCD1234EFGH").unwrap());
    }

    #[test]
    fn random_below_stays_below() {
        for _ in 0..1000 {
            assert!(random_below(62).unwrap() < 62);
        }
    }
}
