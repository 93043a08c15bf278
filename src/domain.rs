//! The facts git2fa decides and records about: users, their keys, tokens
//! and sessions, and the audit row. Plain data, below both the decision
//! (`authz`) and the persistence (`store`): the rules depend on no storage
//! code, and `store` keeps and returns these types (`tests/it/layers.rs`
//! checks that the decision uses nothing of `store`).

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password_hash: Option<String>,
    pub enabled: bool,
    pub is_admin: bool,
    pub always_2fa: bool,
    pub totp_secret: Option<Vec<u8>>,
    pub enrolled_at: Option<i64>,
    pub failures: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    /// How many security keys and passkeys the user has registered.
    pub security_keys: i64,
}

impl User {
    /// Has a second factor: an authenticator app, a security key, or both.
    pub fn is_enrolled(&self) -> bool {
        self.has_totp() || self.security_keys > 0
    }

    pub fn has_totp(&self) -> bool {
        self.totp_secret.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    pub id: i64,
    pub user_id: i64,
    pub user: String,
    pub algorithm: String,
    pub blob: String,
    pub fingerprint: String,
    pub comment: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// For a security key (`sk-` type): what its use proves, as its owner
    /// or an admin marked it; `None` for an ordinary key.
    pub hardware: Option<Hardware>,
}

/// What a use of a hardware-backed SSH key proves beyond the key itself:
/// that a person touched it (`Present`), or also that they gave its PIN or
/// a biometric (`Verified`). Ordered: `Verified` proves more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hardware {
    Present,
    Verified,
}

impl Hardware {
    /// The word of `key add --hardware`, the store and the forced command.
    pub fn as_str(self) -> &'static str {
        match self {
            Hardware::Present => "present",
            Hardware::Verified => "verified",
        }
    }

    pub fn parse(word: &str) -> Option<Hardware> {
        match word {
            "present" => Some(Hardware::Present),
            "verified" => Some(Hardware::Verified),
            _ => None,
        }
    }

    /// The audit row's `factor`.
    pub fn factor(self) -> &'static str {
        match self {
            Hardware::Present => "hardware-present",
            Hardware::Verified => "hardware-verified",
        }
    }
}

/// A registered security key or passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityKey {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub credential_id: Vec<u8>,
    /// The public key, its flags and counter, as `factor::webauthn` wrote it.
    pub credential: String,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A key's assertion that held: what the key's row becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub key_id: i64,
    /// The authenticator's signature counter (0: it keeps none).
    pub sign_count: i64,
    pub credential: String,
}

/// A one-time verify link, while it is unused and not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyLink {
    pub user_id: i64,
    /// The SSH key and address of the command waiting for it: the session
    /// it opens is bound to them.
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
    pub expires_at: i64,
}

/// What a personal access token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
        }
    }

    pub fn parse(text: &str) -> Option<Permission> {
        match text {
            "read" => Some(Permission::Read),
            "write" => Some(Permission::Write),
            _ => None,
        }
    }
}

/// A 2FA session that has not been ended (it may have expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub id: i64,
    pub expires_at: i64,
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: i64,
    pub user_id: i64,
    pub user: String,
    pub name: String,
    pub repos: Vec<String>,
    pub permission: Permission,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// Minted by an admin for a user without 2FA (`--without-2fa`, a
    /// service account): it carries no second factor.
    pub without_2fa: bool,
    /// Issued to a git credential helper that signed in through the
    /// browser (OAuth): the client's id.
    pub oauth_client: Option<String>,
    /// The 2FA session the token ends with (an OAuth token's).
    pub session_id: Option<i64>,
    /// When that session ends or ended: its expiry, or when it was ended
    /// earlier; `None` when the store no longer holds it (ended long ago).
    pub session_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub user: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
    pub opened_via: String,
}

/// Where a new 2FA session is opened from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub ttl: i64,
    pub key_id: Option<i64>,
    pub remote_addr: Option<String>,
    pub opened_via: String,
}

/// A session of the web page. Its id is the SHA-256 of the cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id: [u8; 32],
    pub user_id: Option<i64>,
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub code_at: Option<i64>,
    pub pending_secret: Option<Vec<u8>>,
    pub pending_codes: Option<Vec<u8>>,
    pub remote_addr: Option<String>,
    /// The WebAuthn ceremony under way (`factor::webauthn` reads it).
    pub ceremony: Option<String>,
}

/// What a client sent, as an audit row keeps it: at most 200 characters,
/// control characters as `?`.
pub fn clipped(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One row of the append-only audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    pub user: Option<String>,
    pub transport: String,
    pub repo: Option<String>,
    /// read, write, verify, enrol, token-create, ...
    pub action: String,
    pub refs: Option<String>,
    /// allow / refuse for git decisions; ok / fail for everything else.
    pub outcome: String,
    pub reason: String,
    pub credential: Option<String>,
    pub key_id: Option<i64>,
    pub token_id: Option<i64>,
    pub remote_addr: Option<String>,
    /// The internal cause of an error; never shown to git users.
    pub detail: Option<String>,
    /// What the credential proved beyond itself, when it was a marked
    /// hardware key (`hardware-verified`, `hardware-present`).
    pub factor: Option<String>,
}

/// A one-time code of the OAuth authorization step: what the user
/// consented to, to be exchanged once for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthCode {
    pub user_id: i64,
    pub client_id: String,
    pub redirect_uri: String,
    /// PKCE (RFC 7636, S256): BASE64URL(SHA-256(verifier)).
    pub challenge: String,
    /// The 2FA session the token will end with.
    pub session_id: i64,
    /// The browser's address when the user consented.
    pub remote_addr: Option<String>,
    pub expires_at: i64,
}

/// What exchanging an OAuth code came to, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchanged {
    /// The token was minted: its id, and when its 2FA session ends.
    Token {
        id: i64,
        until: i64,
    },
    Unknown,
    /// Refused for `reason` (expired, another client's, a wrong verifier,
    /// the session ended…); the code is used up either way.
    Refused {
        user_id: i64,
        reason: &'static str,
    },
    /// Used before: whatever it was exchanged for (`token_id`) is revoked
    /// now.
    Used {
        user_id: i64,
        token_id: Option<i64>,
    },
}
