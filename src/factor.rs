//! The factors and the crypto under them: TOTP codes, security keys
//! (WebAuthn), personal access tokens, SSH public keys, sealing secrets and
//! hashing passwords.

pub mod crypto;
pub mod slow;
pub mod sshkey;
pub mod token;
pub mod totp;
pub mod webauthn;
