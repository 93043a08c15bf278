//! `git2fa store migrate --to URL`: this host's SQLite store copied into an
//! empty PostgreSQL database, for several front-end hosts.

use super::args::StoreCommand;
use super::support::*;
use crate::factor::crypto::SecretKey;
use crate::store::{Location, Store};
use crate::system::config::Config;
use crate::system::url::without_password;

pub(super) fn store(config: &Config, command: StoreCommand) -> CliResult {
    match command {
        StoreCommand::Migrate { to, password_file } => migrate(config, &to, password_file),
        StoreCommand::Prune => super::retention::prune(config),
        StoreCommand::PruneAudit { before, exported } => {
            super::retention::prune_audit(config, &before, &exported)
        }
    }
}

/// Exit 1 for every refusal: the target is not empty, not reachable, or
/// not PostgreSQL; the source is not this host's SQLite store.
fn migrate(config: &Config, to: &str, password_file: Option<std::path::PathBuf>) -> CliResult {
    let refused = |e: &dyn std::fmt::Display| Failure::refused(e.to_string());
    let source_location = Location::of(config);
    let Location::Sqlite(source_path) = &source_location else {
        return Err(Failure::refused(
            "[store] url already names PostgreSQL: `store migrate` copies this host's SQLite store",
        ));
    };
    if !to.starts_with("postgres://") && !to.starts_with("postgresql://") {
        return Err(Failure::refused(format!(
            "--to {}: not a postgres:// url",
            without_password(to)
        )));
    }
    if crate::system::url::has_password(to) {
        // It would be in the shell's history and in `ps`, and then in the
        // config, which every local account may read.
        return Err(Failure::refused(format!(
            "--to {}: has a password in it; give it with --password-file (mode 0600) instead",
            without_password(to)
        )));
    }
    let target_location = Location::Postgres {
        url: to.to_string(),
        password_file: password_file.or_else(|| config.store.password_file.clone()),
        // A database no server of this host uses yet.
        socket: None,
    };
    let mut source = Store::open(source_path).map_err(|e| refused(&e))?;
    let target = Store::connect_and_migrate(&target_location)
        .map_err(|e| refused(&format!("{target_location}: {e}")))?;
    if !target.is_empty().map_err(|e| refused(&e))? {
        return Err(Failure::refused(format!(
            "{target_location} is not empty: `store migrate` copies into a new, empty database only"
        )));
    }
    let copied = source.copy_into(&target).map_err(|e| refused(&e))?;
    // A store from before fingerprints were recorded: this host's key is
    // the one its secrets are sealed with.
    if target.key_fingerprint().map_err(|e| refused(&e))?.is_none()
        && let Ok(key) = SecretKey::load(&config.secret_key_path())
    {
        target
            .record_key_fingerprint(&key.fingerprint())
            .map_err(|e| refused(&e))?;
    }
    // The new store's log starts with where it came from.
    let mut target = target;
    admin_audit(
        &mut target,
        None,
        None,
        "store-migrate",
        &format!("copied from {}", source_path.display()),
    )
    .map_err(|e| Failure::refused(e.message))?;
    // And the old one's marks where the copy was taken.
    admin_audit(
        &mut source,
        None,
        None,
        "store-migrate",
        &format!("copied to {target_location}"),
    )
    .map_err(|e| Failure::refused(e.message))?;
    for (table, count) in copied {
        say!("copied {count} rows of {table}");
    }
    say!(
        "{} now holds a copy of {}; this host still uses the SQLite store.",
        target_location,
        source_path.display()
    );
    say!(
        "To switch, set in {} on every host (with the same secret.key):",
        config.path.display()
    );
    say!("  [store]\n  url = \"{}\"", without_password(to));
    if let Location::Postgres {
        password_file: Some(file),
        ..
    } = &target_location
    {
        say!("  password_file = \"{}\"", file.display());
    }
    say!(
        "Changes made to the SQLite store after this copy (a token revoked, a user disabled, a 2FA reset, a code used) stay there and are not in the copy: switch now, or stop git traffic until you have, and make such changes again after switching."
    );
    Ok(())
}
