//! `git2fa init`: the config, the store and `secret.key`.

use std::path::{Path, PathBuf};

use super::args::*;
use super::support::*;
use crate::factor::crypto::SecretKey;
use crate::store::{Location, Store};
use crate::system::config::{self, Config};

pub(super) fn init(config_path: &Path, args: &InitArgs) -> CliResult {
    if !config_path.exists() {
        let repos_root = args
            .repos_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/srv/git"));
        let data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/git2fa"));
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let text = config::render_template(&repos_root, &data_dir, &public_url);
        // Validate before writing, so a bad --public-url leaves nothing behind.
        Config::parse(config_path, &text)?;
        if let Some(parent) = config_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io_failure(parent, &e))?;
        }
        write_new_config(config_path, &text)?;
        say!("wrote {}", config_path.display());
    } else if args.config_only {
        return Err(Failure::usage(format!(
            "{} exists; --config-only writes a new config only",
            config_path.display()
        )));
    } else if args.repos_root.is_some() || args.data_dir.is_some() || args.public_url.is_some() {
        return Err(Failure::usage(format!(
            "{} exists; edit it instead of passing --repos-root, --data-dir or --public-url",
            config_path.display()
        )));
    }
    if args.config_only {
        return Ok(());
    }
    let config = Config::load(config_path)?;
    if !config.data_dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|e| io_failure(&config.data_dir, &e))?;
        say!("created {}", config.data_dir.display());
    }
    let location = Location::of(&config);
    let store = match &location {
        Location::Sqlite(store_path) if !store_path.exists() => {
            let store = Store::create(store_path)?;
            say!("created {}", store_path.display());
            store
        }
        _ => {
            // An existing SQLite store, or PostgreSQL: an empty database
            // receives the schema, another host's is migrated or left as it
            // is.
            let store = Store::connect_and_migrate(&location)?;
            say!(
                "store {location} is ready ({}, schema {})",
                store.engine(),
                store.schema_version()?
            );
            store
        }
    };
    let key_path = config.secret_key_path();
    let key = if key_path.exists() {
        let key = SecretKey::load(&key_path)?;
        say!("secret key {} is ready", key_path.display());
        key
    } else {
        if let Some(recorded) = store.key_fingerprint()? {
            return Err(Failure::usage(format!(
                "{} is missing, but the store's secrets are sealed with the key {recorded}: copy secret.key from a host that uses this store (a new key would lock every user out)",
                key_path.display()
            )));
        }
        let enrolled = store.users()?.iter().filter(|u| u.is_enrolled()).count();
        if enrolled > 0 {
            return Err(Failure::usage(format!(
                "{} is missing but {enrolled} users have TOTP secrets sealed with it: restore it from a backup (a new key would lock them out)",
                key_path.display()
            )));
        }
        let key = SecretKey::create(&key_path)?;
        say!("created {}", key_path.display());
        key
    };
    let recorded = store.record_key_fingerprint(&key.fingerprint())?;
    if recorded != key.fingerprint() {
        return Err(Failure::usage(key_mismatch(&key_path, &key, &recorded)));
    }
    if !config.repos_root.is_dir() {
        say!(
            "note: repos_root {} does not exist yet",
            config.repos_root.display()
        );
    }
    Ok(())
}

/// Writes a new config, mode 0644 whatever the umask (it holds no secret,
/// and every account that runs a shim reads it). The file must not exist:
/// `create_new` neither follows a link planted at the path nor writes
/// through one, so a package script run as root cannot be led to write
/// elsewhere.
fn write_new_config(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| io_failure(path, &e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| io_failure(path, &e))
}

/// `secret.key` is not the key the store records: another host's store, or
/// a key replaced by mistake.
pub(super) fn key_mismatch(key_path: &Path, key: &SecretKey, recorded: &str) -> String {
    format!(
        "{} ({}) is not the key the store's secrets are sealed with ({recorded}): every host that shares a store needs the same secret.key; copy it from the first host",
        key_path.display(),
        key.fingerprint()
    )
}
