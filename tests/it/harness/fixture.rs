//! Hosts set up as most tests need them, in one line:
//! `Host::new().user("alice").key().enrolled().repo("team/app").hooks()`.
//! Each step runs the real `git2fa` (or git) and fails the test if it
//! fails; what a step made (a key, a TOTP secret, a work tree) is kept.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use super::Host;

/// The password every fixture user gets.
pub const PASSWORD: &str = "correct horse battery";

pub struct Fixture {
    pub host: Host,
    /// The user that `key` and `enrolled` apply to: the last one added.
    user: String,
    keys: BTreeMap<String, PathBuf>,
    secrets: BTreeMap<String, Vec<u8>>,
    work: Option<PathBuf>,
}

impl Host {
    /// Adds user `name`, with the password `PASSWORD`: the first step of a
    /// fixture.
    pub fn user(self, name: &str) -> Fixture {
        Fixture {
            host: self,
            user: String::new(),
            keys: BTreeMap::new(),
            secrets: BTreeMap::new(),
            work: None,
        }
        .user(name)
    }
}

impl Fixture {
    /// Adds user `name`, with the password `PASSWORD`.
    pub fn user(mut self, name: &str) -> Fixture {
        self.host.add_user(name);
        self.user = name.to_string();
        self
    }

    /// A new SSH key pair for the last user added, registered.
    pub fn key(mut self) -> Fixture {
        let key = self.host.add_key(&self.user);
        self.keys.insert(self.user.clone(), key);
        self
    }

    /// The last user added sets up TOTP (`git2fa user enroll`).
    pub fn enrolled(mut self) -> Fixture {
        let (secret, _) = self.host.enroll(&self.user);
        self.secrets.insert(self.user.clone(), secret);
        self
    }

    /// A bare repository `name` (`.git` added) with one commit on `main`,
    /// pushed from the fixture's work tree.
    pub fn repo(mut self, name: &str) -> Fixture {
        self.work = Some(self.host.repo_with_a_commit(name));
        self
    }

    /// The git2fa hooks in every repository made so far.
    pub fn hooks(self) -> Fixture {
        self.host.install_hooks();
        self
    }

    /// `user`'s private key.
    #[track_caller]
    pub fn key_of(&self, user: &str) -> &Path {
        self.keys
            .get(user)
            .unwrap_or_else(|| panic!("the fixture made no key for {user}"))
    }

    /// `user`'s TOTP secret.
    #[track_caller]
    pub fn secret_of(&self, user: &str) -> &[u8] {
        self.secrets
            .get(user)
            .unwrap_or_else(|| panic!("the fixture did not enrol {user}"))
    }

    /// The work tree the repositories were pushed from.
    #[track_caller]
    pub fn work(&self) -> &Path {
        self.work
            .as_deref()
            .expect("the fixture made no repository")
    }
}

impl Deref for Fixture {
    type Target = Host;

    fn deref(&self) -> &Host {
        &self.host
    }
}
