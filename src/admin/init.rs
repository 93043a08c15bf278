//! `git2fa init`: the config, the store and `secret.key`.

use std::path::{Path, PathBuf};

use super::args::*;
use super::support::*;
use crate::factor::crypto::SecretKey;
use crate::store::Store;
use crate::system::config::{self, Config};

pub(super) fn init(config_path: &Path, args: &InitArgs) -> Outcome {
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
        std::fs::write(config_path, text).map_err(|e| io_failure(config_path, &e))?;
        println!("wrote {}", config_path.display());
    } else if args.repos_root.is_some() || args.data_dir.is_some() || args.public_url.is_some() {
        return Err(Failure::usage(format!(
            "{} exists; edit it instead of passing --repos-root, --data-dir or --public-url",
            config_path.display()
        )));
    }
    let config = Config::load(config_path)?;
    if !config.data_dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|e| io_failure(&config.data_dir, &e))?;
        println!("created {}", config.data_dir.display());
    }
    let store_path = config.store_path();
    let store = if store_path.exists() {
        let store = Store::open_and_migrate(&store_path)?;
        println!(
            "store {} is ready (schema {})",
            store_path.display(),
            store.schema_version()?
        );
        store
    } else {
        let store = Store::create(&store_path)?;
        println!("created {}", store_path.display());
        store
    };
    let key_path = config.secret_key_path();
    if key_path.exists() {
        SecretKey::load(&key_path)?;
        println!("secret key {} is ready", key_path.display());
    } else {
        let enrolled = store.users()?.iter().filter(|u| u.is_enrolled()).count();
        if enrolled > 0 {
            return Err(Failure::usage(format!(
                "{} is missing but {enrolled} users have TOTP secrets sealed with it: restore it from a backup (a new key would lock them out)",
                key_path.display()
            )));
        }
        SecretKey::create(&key_path)?;
        println!("created {}", key_path.display());
    }
    if !config.repos_root.is_dir() {
        println!(
            "note: repos_root {} does not exist yet",
            config.repos_root.display()
        );
    }
    Ok(())
}
