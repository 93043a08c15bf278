//! Security keys and passkeys: the WebAuthn ceremonies, done by webauthn-rs
//! (attestation not required, user verification preferred). This module
//! turns them into JSON for the page's script and the store, and back.
//!
//! The relying party is `public_url`'s host, and the one origin accepted
//! is `public_url`'s scheme, host and port. A ceremony is kept server-side
//! in the web session that started it, taken once, and expires.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    CredentialID, PublicKeyCredential, RegisterPublicKeyCredential, SecurityKeyAuthentication,
    SecurityKeyRegistration, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// How long the browser has to answer a ceremony.
pub const CEREMONY_TTL: i64 = 300;

/// The longest answer a browser sends that is read (an attestation with a
/// certificate chain is a few KiB).
pub const MAX_ANSWER: usize = 64 * 1024;

/// How long a one-time verify link (`ssh HOST 2fa verify`) works: as long
/// as the command waits for it.
pub const LINK_TTL: i64 = 300;

/// A new one-time verify link's token: 32 random bytes, hex.
pub fn new_link_token() -> Result<String, crate::factor::crypto::CryptoError> {
    let bytes = crate::factor::crypto::random_bytes::<32>()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The hash a verify link's token is stored under.
pub fn link_hash(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("git2fa verify link {token}").as_bytes()).into()
}

/// This host's relying party.
pub struct RelyingParty {
    webauthn: Webauthn,
}

/// Why a ceremony's answer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No ceremony of this kind is under way in this web session: it
    /// expired, was used already, or another page started a newer one.
    NoCeremony,
    /// The browser sent no answer (no JavaScript) or reported an error.
    NoAnswer(String),
    /// The answer does not hold: another origin, another user's key, a bad
    /// signature, another challenge. `detail` is webauthn-rs's word.
    Invalid { detail: String },
    /// The key's signature counter went backwards: a cloned key.
    Cloned { detail: String },
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    Register,
    Verify,
}

/// A ceremony under way, as the web session keeps it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ceremony {
    pub purpose: Purpose,
    pub user_id: i64,
    pub expires_at: i64,
    /// For a verify through a one-time link: the link's hash, hex.
    pub link: Option<String>,
    /// The challenge the browser was given, as `challenge_key` spells it:
    /// the web session keeps the ceremony under it.
    #[serde(default)]
    pub challenge: String,
    state: serde_json::Value,
}

impl Ceremony {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The ceremony a web session kept, if it is of this purpose and user
    /// and has not expired.
    pub fn parse(
        text: &str,
        purpose: Purpose,
        user_id: i64,
        now: i64,
    ) -> Result<Ceremony, Refused> {
        let ceremony: Ceremony = serde_json::from_str(text).map_err(|_| Refused::NoCeremony)?;
        if ceremony.purpose != purpose || ceremony.user_id != user_id || ceremony.expires_at <= now
        {
            return Err(Refused::NoCeremony);
        }
        Ok(ceremony)
    }
}

/// A registered key, as the store keeps it.
#[derive(Debug, Clone, Copy)]
pub struct StoredKey<'a> {
    pub id: i64,
    pub name: &'a str,
    pub credential_id: &'a [u8],
    /// What `NewKey::credential` was, updated at each use.
    pub credential: &'a str,
    pub sign_count: i64,
}

/// The user a key is registered to.
#[derive(Debug, Clone, Copy)]
pub struct KeyUser<'a> {
    pub id: i64,
    pub name: &'a str,
    pub created_at: i64,
}

/// A key's answer that held: what its stored row becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub key_id: i64,
    /// The authenticator's signature counter (0: it keeps none).
    pub sign_count: i64,
    pub credential: String,
}

/// A key that was just registered.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub credential_id: Vec<u8>,
    pub credential: String,
    pub sign_count: i64,
}

/// Why `public_url` cannot be a relying party, in words for the page.
pub fn unavailable_reason(public_url: &str) -> Option<String> {
    RelyingParty::new(public_url).err()
}

impl RelyingParty {
    /// The relying party of `public_url`, or why there can be none.
    pub fn new(public_url: &str) -> Result<RelyingParty, String> {
        let url = Url::parse(public_url).map_err(|e| format!("public_url is not a URL ({e})"))?;
        let host = url.host_str().unwrap_or_default().to_string();
        if url.domain().is_none() {
            return Err(format!(
                "this host's address ({host}) is an IP address, and a security key works \
                 only with a host name: the admin sets public_url to one (localhost on this machine)"
            ));
        }
        let local = host == "localhost" || host.ends_with(".localhost");
        if url.scheme() != "https" && !(url.scheme() == "http" && local) {
            return Err(
                "browsers offer security keys only to https pages (or http://localhost), \
                 and this host's public_url is plain http"
                    .into(),
            );
        }
        let mut origin = url.clone();
        origin.set_path("/");
        origin.set_query(None);
        origin.set_fragment(None);
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name("git2fa").build())
            .map_err(|e| format!("public_url cannot be a relying party ({e})"))?;
        Ok(RelyingParty { webauthn })
    }

    /// Starts registering a key for `user`; the options for the browser
    /// (JSON) and the ceremony to keep.
    pub fn start_registration(
        &self,
        user: KeyUser,
        existing: &[StoredKey],
        now: i64,
    ) -> Result<(String, Ceremony), String> {
        let exclude: Vec<CredentialID> = existing
            .iter()
            .map(|k| CredentialID::from(k.credential_id.to_vec()))
            .collect();
        let (mut options, state) = self
            .webauthn
            .start_securitykey_registration(
                user_handle(user),
                user.name,
                user.name,
                Some(exclude),
                None,
                None,
            )
            .map_err(|e| e.to_string())?;
        // A security key or a passkey, whichever the user has: no hint.
        // And no credential protection that demands user verification on
        // every use: verification is preferred, not required, so a key
        // without a PIN must keep working.
        options.public_key.hints = None;
        if let Some(extensions) = options.public_key.extensions.as_mut() {
            extensions.cred_protect = None;
        }
        let ceremony = Ceremony {
            purpose: Purpose::Register,
            user_id: user.id,
            expires_at: now + CEREMONY_TTL,
            link: None,
            challenge: bytes_key(options.public_key.challenge.as_ref()),
            state: serde_json::to_value(&state).map_err(|e| e.to_string())?,
        };
        let options = serde_json::to_string(&options).map_err(|e| e.to_string())?;
        Ok((options, ceremony))
    }

    /// Checks the browser's answer to a registration.
    pub fn finish_registration(
        &self,
        ceremony: &Ceremony,
        answer: &str,
    ) -> Result<NewKey, Refused> {
        let state: SecurityKeyRegistration =
            serde_json::from_value(ceremony.state.clone()).map_err(|_| Refused::NoCeremony)?;
        let answer: RegisterPublicKeyCredential = parse_answer(answer)?;
        let key = self
            .webauthn
            .finish_securitykey_registration(&answer, &state)
            .map_err(|e| Refused::Invalid {
                detail: e.to_string(),
            })?;
        let credential = serde_json::to_string(&key).map_err(|e| Refused::Invalid {
            detail: e.to_string(),
        })?;
        Ok(NewKey {
            credential_id: key.cred_id().to_vec(),
            credential,
            sign_count: 0,
        })
    }

    /// Starts a verify with any of `keys`; the options for the browser
    /// (JSON) and the ceremony to keep.
    pub fn start_authentication(
        &self,
        user: KeyUser,
        keys: &[StoredKey],
        link: Option<String>,
        now: i64,
    ) -> Result<(String, Ceremony), String> {
        let credentials = keys
            .iter()
            .filter_map(|k| serde_json::from_str(k.credential).ok())
            .collect::<Vec<webauthn_rs::prelude::SecurityKey>>();
        let (mut options, state) = self
            .webauthn
            .start_securitykey_authentication(&credentials)
            .map_err(|e| e.to_string())?;
        options.public_key.hints = None;
        let ceremony = Ceremony {
            purpose: Purpose::Verify,
            user_id: user.id,
            expires_at: now + CEREMONY_TTL,
            link,
            challenge: bytes_key(options.public_key.challenge.as_ref()),
            state: serde_json::to_value(&state).map_err(|e| e.to_string())?,
        };
        let options = serde_json::to_string(&options).map_err(|e| e.to_string())?;
        Ok((options, ceremony))
    }

    /// Checks the browser's answer to a verify against the user's keys as
    /// stored now (a key removed since the ceremony began counts for
    /// nothing): the use to record.
    pub fn finish_authentication(
        &self,
        ceremony: &Ceremony,
        answer: &str,
        keys: &[StoredKey],
    ) -> Result<Used, Refused> {
        let state: SecurityKeyAuthentication =
            serde_json::from_value(ceremony.state.clone()).map_err(|_| Refused::NoCeremony)?;
        let answer: PublicKeyCredential = parse_answer(answer)?;
        let Some(stored) = keys
            .iter()
            .find(|k| k.credential_id == answer.raw_id.as_slice())
        else {
            return Err(Refused::Invalid {
                detail: "the answer names a key this user does not have".into(),
            });
        };
        let result = self
            .webauthn
            .finish_securitykey_authentication(&answer, &state)
            .map_err(|e| match e {
                WebauthnError::CredentialPossibleCompromise => Refused::Cloned {
                    detail: format!(
                        "key #{} ({}): its signature counter did not move past {}",
                        stored.id, stored.name, stored.sign_count
                    ),
                },
                e => Refused::Invalid {
                    detail: e.to_string(),
                },
            })?;
        let mut credential: webauthn_rs::prelude::SecurityKey =
            serde_json::from_str(stored.credential).map_err(|e| Refused::Invalid {
                detail: format!("key #{}: {e}", stored.id),
            })?;
        credential.update_credential(&result);
        let counter = i64::from(result.counter());
        // The counter the ceremony's state was made with may be older than
        // the stored one (another use meanwhile): compare with the store.
        if counter <= stored.sign_count && !(counter == 0 && stored.sign_count == 0) {
            return Err(Refused::Cloned {
                detail: format!(
                    "key #{} ({}): signature counter {counter}, stored {}",
                    stored.id, stored.name, stored.sign_count
                ),
            });
        }
        Ok(Used {
            key_id: stored.id,
            sign_count: counter,
            credential: serde_json::to_string(&credential).map_err(|e| Refused::Invalid {
                detail: e.to_string(),
            })?,
        })
    }
}

/// The user handle a key is registered under: derived from the user's row,
/// naming no one.
fn user_handle(user: KeyUser) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest =
        Sha256::digest(format!("git2fa webauthn user {} {}", user.id, user.created_at).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// A challenge's bytes as the web session keys its ceremony: hex.
fn bytes_key(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The challenge the browser's answer (registration or verify) was made
/// for, read from its client data, as `Ceremony::challenge` spells it; or
/// why no answer can be checked (none came, or it is malformed). The
/// signature covers the client data, so a changed challenge fails the
/// check in any case: reading it first only finds the ceremony.
pub fn answer_challenge(answer: &str) -> Result<String, Refused> {
    use base64::Engine;
    let answer: serde_json::Value = parse_answer(answer)?;
    let malformed = || Refused::Invalid {
        detail: "the answer carries no client data with a challenge".into(),
    };
    let data = answer["response"]["clientDataJSON"]
        .as_str()
        .ok_or_else(malformed)?;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let data = engine
        .decode(data.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let data: serde_json::Value = serde_json::from_slice(&data).map_err(|_| malformed())?;
    let challenge = data["challenge"].as_str().ok_or_else(malformed)?;
    let challenge = engine
        .decode(challenge.trim_end_matches('='))
        .map_err(|_| malformed())?;
    Ok(bytes_key(&challenge))
}

/// Why a browser refuses to use a key at the address the page was opened
/// at (its SecurityError): the page names the address that works.
pub const WRONG_ADDRESS: &str = "the browser allows security keys only at the host's own name, \
     not at an IP address such as 127.0.0.1, and only over HTTPS (or at localhost)";

/// What the browser's error (`NAME: message`, a DOMException) means to the
/// user, for the names the WebAuthn API gives
/// (https://www.w3.org/TR/webauthn-2/#sctn-createCredential, #sctn-getAssertion).
fn browser_error(error: &str) -> String {
    let name = error.split(':').next().unwrap_or("").trim();
    match name {
        "NotAllowedError" => "the key did not answer: the browser's window was closed, \
             or it timed out. Try again, and touch the key when it blinks"
            .into(),
        "InvalidStateError" => "this key is registered to your account already".into(),
        "SecurityError" => WRONG_ADDRESS.into(),
        "NotSupportedError" => {
            "this key cannot make a credential of a kind the host accepts".into()
        }
        "AbortError" => "the request was cancelled".into(),
        _ => format!(
            "the browser reported: {}",
            error.chars().take(200).collect::<String>()
        ),
    }
}

fn parse_answer<T: serde::de::DeserializeOwned>(answer: &str) -> Result<T, Refused> {
    let answer = answer.trim();
    if answer.is_empty() {
        return Err(Refused::NoAnswer(
            "the browser sent no answer from a key (using a key needs JavaScript)".into(),
        ));
    }
    if answer.len() > MAX_ANSWER {
        return Err(Refused::Invalid {
            detail: "the answer is too long".into(),
        });
    }
    if let Some(error) = answer.strip_prefix("error:") {
        return Err(Refused::NoAnswer(browser_error(error)));
    }
    serde_json::from_str(answer).map_err(|e| Refused::Invalid {
        detail: format!("the answer is not a WebAuthn credential ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_host_name_on_https_or_localhost_is_a_relying_party() {
        for good in [
            "https://git.example.com",
            "https://git.example.com:8443/prefix",
            "http://localhost:8080",
            "http://git.localhost",
        ] {
            assert!(RelyingParty::new(good).is_ok(), "{good}");
        }
        let ip = RelyingParty::new("http://127.0.0.1:8080").err().unwrap();
        assert!(ip.contains("is an IP address"), "{ip}");
        let ip6 = RelyingParty::new("https://[::1]:8443").err().unwrap();
        assert!(ip6.contains("is an IP address"), "{ip6}");
        let plain = RelyingParty::new("http://git.example.com").err().unwrap();
        assert!(plain.contains("only to https pages"), "{plain}");
        assert!(unavailable_reason("not a url").is_some());
    }

    #[test]
    fn a_ceremony_is_good_for_its_purpose_user_and_time_only() {
        let rp = RelyingParty::new("http://localhost:8080").unwrap();
        let user = KeyUser {
            id: 7,
            name: "alice",
            created_at: 1,
        };
        let (options, ceremony) = rp.start_registration(user, &[], 1000).unwrap();
        let options: serde_json::Value = serde_json::from_str(&options).unwrap();
        let public_key = &options["publicKey"];
        assert_eq!(public_key["rp"]["id"], "localhost");
        assert_eq!(public_key["attestation"], "none");
        assert_eq!(
            public_key["authenticatorSelection"]["userVerification"],
            "preferred"
        );
        assert!(public_key.get("hints").is_none(), "{public_key}");
        let text = ceremony.to_json();
        assert!(Ceremony::parse(&text, Purpose::Register, 7, 1000).is_ok());
        for (purpose, user, now) in [
            (Purpose::Verify, 7, 1000),
            (Purpose::Register, 8, 1000),
            (Purpose::Register, 7, 1000 + CEREMONY_TTL),
        ] {
            assert_eq!(
                Ceremony::parse(&text, purpose, user, now).err(),
                Some(Refused::NoCeremony),
                "{purpose:?} {user} {now}"
            );
        }
        assert_eq!(
            Ceremony::parse("garbage", Purpose::Register, 7, 1000).err(),
            Some(Refused::NoCeremony)
        );
    }

    #[test]
    fn an_answer_names_the_ceremony_it_was_made_for() {
        use base64::Engine;
        let rp = RelyingParty::new("http://localhost:8080").unwrap();
        let user = KeyUser {
            id: 7,
            name: "alice",
            created_at: 1,
        };
        let (options, ceremony) = rp.start_authentication(user, &[], None, 1000).unwrap();
        let options: serde_json::Value = serde_json::from_str(&options).unwrap();
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        // What a browser sends: the challenge, base64url, in the client
        // data, itself base64url.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let answer = |challenge: &str| {
            let data = format!(
                r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"http://localhost:8080"}}"#
            );
            format!(
                r#"{{"id":"x","rawId":"x","type":"public-key","response":{{"clientDataJSON":"{}"}}}}"#,
                b64.encode(data)
            )
        };
        assert_eq!(
            answer_challenge(&answer(challenge)),
            Ok(ceremony.challenge.clone())
        );
        assert_ne!(
            answer_challenge(&answer(&b64.encode(b"another challenge"))),
            Ok(ceremony.challenge)
        );
        assert!(matches!(answer_challenge(""), Err(Refused::NoAnswer(_))));
        assert!(matches!(
            answer_challenge("error:NotAllowedError: cancelled"),
            Err(Refused::NoAnswer(_))
        ));
        for malformed in [
            "{}",
            r#"{"response":{"clientDataJSON":"!!"}}"#,
            r#"{"response":{"clientDataJSON":"e30"}}"#,
        ] {
            assert!(
                matches!(answer_challenge(malformed), Err(Refused::Invalid { .. })),
                "{malformed}"
            );
        }
    }

    #[test]
    fn answers_that_are_not_credentials_are_refused_with_a_reason() {
        let rp = RelyingParty::new("http://localhost:8080").unwrap();
        let user = KeyUser {
            id: 7,
            name: "alice",
            created_at: 1,
        };
        let (_, ceremony) = rp.start_registration(user, &[], 1000).unwrap();
        assert!(matches!(
            rp.finish_registration(&ceremony, ""),
            Err(Refused::NoAnswer(why)) if why.contains("needs JavaScript")
        ));
        assert!(matches!(
            rp.finish_registration(&ceremony, "error:NotAllowedError: cancelled"),
            Err(Refused::NoAnswer(why)) if why.starts_with("the key did not answer")
        ));
        assert!(matches!(
            rp.finish_registration(&ceremony, "error:InvalidStateError: known"),
            Err(Refused::NoAnswer(why)) if why == "this key is registered to your account already"
        ));
        assert!(matches!(
            rp.finish_registration(&ceremony, "error:OddError: something"),
            Err(Refused::NoAnswer(why)) if why == "the browser reported: OddError: something"
        ));
        assert!(matches!(
            rp.finish_registration(&ceremony, "{\"id\": 1}"),
            Err(Refused::Invalid { .. })
        ));
        let long = "x".repeat(MAX_ANSWER + 1);
        assert!(matches!(
            rp.finish_registration(&ceremony, &long),
            Err(Refused::Invalid { .. })
        ));
    }
}
