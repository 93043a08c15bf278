//! The contract table's host: a config, a store and bare repositories in
//! a temporary directory, with the users, keys and tokens the cases use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::authz::decision::Permission;
use crate::factor::{sshkey, token};
use crate::store::{Attempt, AuditFilter, AuditRecord, LockPolicy, NewSession, Store};
use crate::system::config::Config;
use crate::system::time::now;

pub(super) const PASSWORD: &str = "correct horse battery staple";
pub(super) const CLIENT: &str = "192.0.2.7";

/// A host of the table's: a config, a store and bare repositories in a
/// temporary directory, and the credentials the cases use.
pub(super) struct Host {
    _dir: tempfile::TempDir,
    pub(super) config: Arc<Config>,
    pub(super) keys:
        std::collections::HashMap<&'static str, (i64, String, russh::keys::PrivateKey)>,
    pub(super) tokens: std::collections::HashMap<&'static str, String>,
}

/// The repositories: name → `git2fa.toml` (none: no file).
const REPOS: &[(&str, Option<&str>)] = &[
    ("open", None),
    ("flagged", Some("require = \"push\"\n")),
    ("everything", Some("require = \"all\"\n")),
    (
        "protected",
        Some("require = \"push\"\nprotected_refs = [\"refs/heads/main\"]\n"),
    ),
    (
        "private",
        Some("readers = [\"bob\"]\nwriters = [\"bob\"]\n"),
    ),
];

fn git() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("git"))
                .find(|p| p.is_file())
        })
        .expect("git is installed (Debian package git)")
}

fn ssh_key(seed: u8) -> (russh::keys::PrivateKey, String, String) {
    let key = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]),
    );
    let line = key.public_key().to_openssh().unwrap();
    let mut parts = line.split(' ');
    let (algorithm, blob) = (parts.next().unwrap(), parts.next().unwrap());
    let fingerprint = sshkey::PublicKey::from_parts(algorithm, blob)
        .unwrap()
        .fingerprint();
    (key, blob.to_string(), fingerprint)
}

impl Host {
    pub(super) fn new() -> Host {
        Host::with("")
    }

    /// A host with `extra` at the end of its config.
    pub(super) fn with(extra: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        let config_path = dir.path().join("config.toml");
        let text = format!(
            "repos_root = {root:?}\ndata_dir = {data:?}\npublic_url = \"https://git.example.com\"\n\
             git_bin = {git:?}\n[policy]\nmax_failures = 3\n[ssh]\nlisten = \"\"\n\
             public_address = \"git@git.example.com\"\n{extra}",
            git = git()
        );
        std::fs::write(&config_path, &text).unwrap();
        let config = Config::parse(&config_path, &text).unwrap();
        for (name, policy) in REPOS {
            // An empty bare repository, as `git init --bare` leaves it
            // (only `transport::exec` starts processes).
            let repo = root.join(format!("{name}.git"));
            for dir in [
                "objects/info",
                "objects/pack",
                "refs/heads",
                "refs/tags",
                "hooks",
            ] {
                std::fs::create_dir_all(repo.join(dir)).unwrap();
            }
            std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n").unwrap();
            std::fs::write(
                repo.join("config"),
                "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
            )
            .unwrap();
            if let Some(policy) = policy {
                std::fs::write(repo.join("git2fa.toml"), policy).unwrap();
            }
        }
        // The hooks are in place, as `install-hooks` leaves them: the
        // front transports leave protected refs to them.
        crate::repo::hooks::install(&root, Path::new("/usr/bin/git2fa-hook"), &config_path)
            .unwrap();
        let mut store = Store::create(&data.join("git2fa.db")).unwrap();
        let t = now();
        let hash = crate::factor::crypto::hash_password(PASSWORD).unwrap();
        let mut keys = std::collections::HashMap::new();
        let mut tokens = std::collections::HashMap::new();
        for (seed, user) in ["alice", "bob", "carol", "dave", "erin"]
            .into_iter()
            .enumerate()
        {
            let id = store.add_user(user, Some(&hash), t).unwrap();
            if user != "bob" {
                store.enroll(id, b"sealed", &[], t).unwrap();
            }
            let (private, blob, fingerprint) = ssh_key(seed as u8 + 1);
            let key_id = store
                .add_key(id, "ssh-ed25519", &blob, &fingerprint, "", None, t)
                .unwrap();
            keys.insert(user, (key_id, fingerprint, private));
        }
        let id = |store: &Store, name: &str| store.user(name).unwrap().unwrap().id;
        // erin chose "always use 2FA for my account".
        let erin = id(&store, "erin");
        store.set_always_2fa(erin, true).unwrap();
        let carol = id(&store, "carol");
        store.set_enabled(carol, false, t).unwrap();
        let dave = id(&store, "dave");
        for _ in 0..3 {
            let lock = LockPolicy {
                max_failures: 3,
                lockout: 900,
            };
            store
                .record_attempt(dave, Attempt::Totp(None), t, lock, None)
                .unwrap();
        }
        // A key that was alice's, removed since.
        let (_, blob, fingerprint) = ssh_key(9);
        let alice = id(&store, "alice");
        let removed = store
            .add_key(alice, "ssh-ed25519", &blob, &fingerprint, "", None, t)
            .unwrap();
        store.remove_key(removed, t).unwrap();
        keys.insert("removed", (removed, fingerprint, ssh_key(9).0));
        // alice's tokens.
        let mut add = |name: &'static str, repos: &[&str], perm, expires: Option<i64>| {
            let secret = token::generate().unwrap();
            let repos: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
            let token_id = store
                .add_token(
                    alice,
                    name,
                    &token::hash(&secret),
                    &repos,
                    perm,
                    expires,
                    false,
                    t,
                )
                .unwrap();
            tokens.insert(name, secret);
            token_id
        };
        add("write", &["*"], Permission::Write, None);
        add("read", &["*"], Permission::Read, None);
        add("open-only", &["open"], Permission::Write, None);
        add("expired", &["*"], Permission::Write, Some(t - 60));
        let revoked = add("revoked", &["*"], Permission::Write, None);
        store.revoke_token(revoked, t).unwrap();
        tokens.insert("malformed", "g2fa_this-is-not-a-token".to_string());
        Host {
            _dir: dir,
            config: Arc::new(config),
            keys,
            tokens,
        }
    }

    pub(super) fn store(&self) -> Store {
        Store::connect(&crate::store::Location::of(&self.config)).unwrap()
    }

    /// Opens alice's 2FA session (good for any key and address), or ends
    /// every session of hers.
    pub(super) fn session(&self, open: bool) {
        let mut store = self.store();
        let alice = store.user("alice").unwrap().unwrap().id;
        let t = now();
        store.end_sessions_of(alice, t).unwrap();
        if open {
            let session = NewSession {
                ttl: 3600,
                key_id: None,
                remote_addr: Some(CLIENT.into()),
                opened_via: "web".into(),
            };
            store.open_session(alice, &session, t).unwrap();
        }
    }

    /// The newest audit row; its id is 0 when there is none.
    pub(super) fn newest_audit(&self) -> (i64, AuditRecord) {
        let filter = AuditFilter {
            limit: 1,
            ..Default::default()
        };
        let mut rows = self.store().audit(&filter).unwrap();
        if rows.is_empty() {
            return (0, AuditRecord::default());
        }
        rows.remove(0)
    }

    /// Breaks the store: its file is no SQLite database any more.
    pub(super) fn break_store(&self) {
        let db = self.config.data_dir.join("git2fa.db");
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        std::fs::write(db, b"this is not a store").unwrap();
    }
}
