//! Who is pushing, handed from a shim (`git2fa-shell`, `git2fa-http`) to the
//! hook through git's environment: `GIT2FA_USER`, `GIT2FA_TRANSPORT`,
//! `GIT2FA_KEY_ID` or `GIT2FA_TOKEN_ID`, `GIT2FA_REMOTE_ADDR`,
//! `GIT2FA_HARDWARE`.

use crate::authz::decision::{Hardware, Transport};

pub const USER: &str = "GIT2FA_USER";
pub const TRANSPORT: &str = "GIT2FA_TRANSPORT";
pub const KEY_ID: &str = "GIT2FA_KEY_ID";
pub const TOKEN_ID: &str = "GIT2FA_TOKEN_ID";
pub const REMOTE_ADDR: &str = "GIT2FA_REMOTE_ADDR";
/// What OpenSSH held a security key's signature to (`verified`,
/// `present`): the hook takes no more than the key's mark says.
pub const HARDWARE: &str = "GIT2FA_HARDWARE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub transport: Transport,
    pub key_id: Option<i64>,
    pub token_id: Option<i64>,
    pub remote_addr: Option<String>,
    pub hardware: Option<Hardware>,
}

impl Identity {
    /// The variables to set for git and its hooks.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (USER, self.user.clone()),
            (TRANSPORT, self.transport.as_str().to_string()),
        ];
        if let Some(key) = self.key_id {
            env.push((KEY_ID, key.to_string()));
        }
        if let Some(token) = self.token_id {
            env.push((TOKEN_ID, token.to_string()));
        }
        if let Some(addr) = &self.remote_addr {
            env.push((REMOTE_ADDR, addr.clone()));
        }
        if let Some(hardware) = self.hardware {
            env.push((HARDWARE, hardware.as_str().to_string()));
        }
        env
    }

    /// Reads the variables back; `None` when no shim set them. Malformed
    /// values are an error (the caller refuses).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Identity>, String> {
        let Some(user) = get(USER) else {
            return Ok(None);
        };
        let transport = match get(TRANSPORT).as_deref() {
            Some("ssh") => Transport::Ssh,
            Some("http") => Transport::Http,
            other => return Err(format!("{TRANSPORT} is {other:?}, not ssh or http")),
        };
        let number = |name: &str| -> Result<Option<i64>, String> {
            get(name)
                .map(|v| v.parse().map_err(|_| format!("{name} is not a number")))
                .transpose()
        };
        Ok(Some(Identity {
            user,
            transport,
            key_id: number(KEY_ID)?,
            token_id: number(TOKEN_ID)?,
            remote_addr: get(REMOTE_ADDR),
            hardware: match get(HARDWARE) {
                None => None,
                Some(word) => {
                    Some(Hardware::parse(&word).ok_or_else(|| {
                        format!("{HARDWARE} is {word:?}, not verified or present")
                    })?)
                }
            },
        }))
    }
}

/// The client address from sshd's `SSH_CONNECTION` ("addr port addr port").
pub fn ssh_client_addr(ssh_connection: Option<&str>) -> Option<String> {
    let addr = ssh_connection?.split(' ').next()?;
    addr.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn round_trips() {
        let identity = Identity {
            user: "alice".into(),
            transport: Transport::Ssh,
            key_id: Some(3),
            token_id: None,
            remote_addr: Some("10.0.0.1".into()),
            hardware: Some(Hardware::Verified),
        };
        let env: HashMap<&str, String> = identity.to_env().into_iter().collect();
        let back = Identity::from_env(|k| env.get(k).cloned()).unwrap();
        assert_eq!(back, Some(identity));
        assert_eq!(Identity::from_env(|_| None).unwrap(), None);
        let bad: HashMap<&str, String> =
            [(USER, "a".to_string()), (TRANSPORT, "local".to_string())].into();
        assert!(Identity::from_env(|k| bad.get(k).cloned()).is_err());
    }

    #[test]
    fn client_address() {
        assert_eq!(
            ssh_client_addr(Some("127.0.0.1 50000 127.0.0.1 22")),
            Some("127.0.0.1".into())
        );
        assert_eq!(
            ssh_client_addr(Some("::1 50000 ::1 22")),
            Some("::1".into())
        );
        assert_eq!(ssh_client_addr(Some("junk")), None);
        assert_eq!(ssh_client_addr(None), None);
    }
}
