//! `git2fa key` and `git2fa authorized-keys` (OpenSSH's `AuthorizedKeysCommand`).

use std::io::Read;
use std::path::Path;

use super::args::*;
use super::support::*;
use crate::factor::sshkey::PublicKey;
use crate::store::{Location, Store};
use crate::system::config::Config;
use crate::system::time::now;

pub(super) fn key(config: &Config, command: KeyCommand) -> CliResult {
    let mut store = open_store(config)?;
    match command {
        KeyCommand::Add {
            user,
            file,
            hardware,
        } => {
            let owner = find_user(&store, &user)?;
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .take(64 * 1024)
                    .read_to_string(&mut text)
                    .map_err(|e| Failure::usage(format!("stdin: {e}")))?;
                text
            } else {
                crate::system::files::read_small_file(&file)?
            };
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            let [line] = lines.as_slice() else {
                return Err(Failure::refused(format!(
                    "expected one public key, found {}",
                    lines.len()
                )));
            };
            let key = PublicKey::parse(line).map_err(Failure::refused)?;
            let hardware = hardware.map(|h| h.hardware());
            if hardware.is_some() && !key.is_security_key() {
                return Err(Failure::refused(format!(
                    "--hardware marks security keys only (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com); this is a {} key",
                    key.algorithm
                )));
            }
            let fingerprint = key.fingerprint();
            if let Some(existing) = store.key_by_fingerprint(&fingerprint)? {
                return Err(Failure::refused(format!(
                    "key {fingerprint} is already registered to {}",
                    existing.user
                )));
            }
            let mut record = admin_record(Some(&user), None, "key-add", &fingerprint);
            if let Some(hardware) = hardware {
                record.factor = Some(hardware.factor().into());
            }
            let id = admin_change(&mut store, record, |store| {
                store.add_key(
                    owner.id,
                    &key.algorithm,
                    &key.blob_base64(),
                    &fingerprint,
                    &key.comment,
                    hardware,
                    now(),
                )
            })?;
            match hardware {
                Some(h) => say!(
                    "added key #{id} {fingerprint} for {user}, marked {}",
                    h.as_str()
                ),
                None => say!("added key #{id} {fingerprint} for {user}"),
            }
        }
        KeyCommand::Mark { id, hardware } => {
            let key = store
                .key(id)?
                .ok_or_else(|| Failure::refused(format!("no key #{id}")))?;
            if !crate::factor::sshkey::is_security_key_type(&key.algorithm) {
                return Err(Failure::refused(format!(
                    "key #{id} is a {} key; only security keys (sk-…) can be marked",
                    key.algorithm
                )));
            }
            let hardware = hardware.hardware();
            let word = hardware.map_or("none", |h| h.as_str());
            let mut record = admin_record(Some(&key.user), None, "key-mark", word);
            record.key_id = Some(id);
            record.factor = hardware.map(|h| h.factor().into());
            let changed = admin_change(&mut store, record, |store| {
                store.set_key_hardware(id, hardware)
            })?;
            if !changed {
                return Err(Failure::refused(format!("no key #{id}")));
            }
            say!(
                "key #{id} {} of {} is marked {word}",
                key.fingerprint,
                key.user
            );
        }
        KeyCommand::List { user } => {
            if let Some(name) = &user {
                find_user(&store, name)?;
            }
            let keys = store.keys(user.as_deref())?;
            if keys.is_empty() {
                nothing_to_list(&of_whom("no SSH keys", user.as_deref()));
            }
            for key in keys {
                let mark = match key.hardware {
                    Some(h) => format!(" hardware={}", h.as_str()),
                    None => String::new(),
                };
                say!(
                    "#{} {} {} {} {}{mark}",
                    key.id,
                    key.user,
                    key.algorithm,
                    key.fingerprint,
                    key.comment
                );
            }
        }
        KeyCommand::Remove { id } => {
            let key = store
                .key(id)?
                .ok_or_else(|| Failure::refused(format!("no key #{id}")))?;
            let mut record = admin_record(Some(&key.user), None, "key-remove", &key.fingerprint);
            record.key_id = Some(id);
            admin_change(&mut store, record, |store| store.remove_key(id, now()))?;
            say!("removed key #{id} {} of {}", key.fingerprint, key.user);
        }
    }
    Ok(())
}

/// sshd expects exit 0 and nothing printed for a key it should refuse, so
/// every failure is a line on stderr (sshd's log) and no output.
pub(super) fn authorized_keys(
    config_path: &Path,
    _account: &str,
    keytype: &str,
    key: &str,
    shell: Option<&Path>,
) {
    let line = (|| -> Result<Option<String>, Failure> {
        let config = Config::load(config_path)?;
        let key = PublicKey::from_parts(keytype, key).map_err(Failure::refused)?;
        let store = Store::connect(&Location::of(&config))?;
        let Some(found) = store.key_by_fingerprint(&key.fingerprint())? else {
            return Ok(None);
        };
        match store.user(&found.user)? {
            Some(owner) if owner.enabled => {}
            _ => return Ok(None),
        }
        let shell = match shell {
            Some(path) => path.to_path_buf(),
            None => sibling("git2fa-shell")?,
        };
        let config_abs = config.path.canonicalize().unwrap_or(config.path.clone());
        // The fingerprint binds the forced command to this very key: the
        // shell refuses if key `found.id` is another key by then.
        let mut command = format!(
            "{} --config {} --key-id {} --fingerprint {}",
            option_quote(&shell.to_string_lossy()),
            option_quote(&config_abs.to_string_lossy()),
            found.id,
            option_quote(&found.fingerprint)
        );
        // A marked security key: sshd holds each signature to the mark
        // (sshd(8), AUTHORIZED_KEYS FILE FORMAT: `verify-required` needs
        // the PIN or biometric flag; a touch is required unless
        // `no-touch-required`, which is never written), and the command
        // says what it enforced. Only that makes the use count.
        let hardware = found.hardware.filter(|_| key.is_security_key());
        let mut options = String::from("restrict");
        if let Some(hardware) = hardware {
            command += &format!(" --hardware {}", hardware.as_str());
            if hardware == crate::domain::Hardware::Verified {
                options += ",verify-required";
            }
        }
        Ok(Some(format!(
            "command=\"{}\",{options} {} {}",
            command.replace('\\', "\\\\").replace('"', "\\\""),
            key.algorithm,
            key.blob_base64()
        )))
    })();
    match line {
        Ok(Some(line)) => say!("{line}"),
        Ok(None) => {}
        Err(failure) => {
            // The key is refused (no line); the user sees "Permission
            // denied (publickey)", the admin finds why here.
            log::error!(
                "2FA check unavailable, so the key {keytype} was refused: {}",
                failure.message
            );
            eprintln!("git2fa authorized-keys: {}", failure.message);
        }
    }
}

/// Quotes a word for the shell sshd runs the forced command with.
pub(super) fn option_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
