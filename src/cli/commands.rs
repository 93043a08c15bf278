//! What each admin command does.

use std::io::{BufRead, IsTerminal, Read, Write};

use sha2::Digest;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::{self, Config};
use crate::crypto::{self, SecretKey};
use crate::decision::{Credential, Decision, Operation, Permission, Transport};
use crate::gate::{self, Request};
use crate::names::{check_label, check_user_name};
use crate::repo_path::{self, RepoPath, RepoPathError};
use crate::repo_policy::{self, PushedRefs, RepoPolicy, Require};
use crate::sshkey::PublicKey;
use crate::store::{AuditFilter, AuditRecord, Store, StoreError, User};
use crate::time::{format_duration, format_rfc3339, format_utc, now};
use crate::token;
use crate::twofactor::{self, Origin, Verified};

type Outcome = Result<(), Failure>;

pub fn run(cli: Cli) -> Outcome {
    let config_path = Config::locate(cli.config.as_deref());
    if let Command::Init(args) = &cli.command {
        return init(&config_path, args);
    }
    if let Command::Demo { dir, web, ssh } = cli.command {
        // The demo writes a config of its own; one given would be ignored.
        if cli.config.is_some() {
            return Err(Failure::usage(
                "demo makes its own configuration (in --dir, or a throwaway directory); leave out --config",
            ));
        }
        return crate::demo::run(crate::demo::Options { dir, web, ssh }).map_err(Failure::usage);
    }
    if let Command::AuthorizedKeys {
        user,
        keytype,
        key,
        shell,
    } = &cli.command
    {
        authorized_keys(&config_path, user, keytype, key, shell.as_deref());
        return Ok(());
    }
    let config = Config::load(&config_path)?;
    match cli.command {
        Command::Init(_) => unreachable_init(),
        Command::User(command) => user(&config, command),
        Command::Key(command) => key(&config, command),
        Command::Token(command) => token_command(&config, command),
        Command::Repo(command) => repo(&config, command),
        Command::Session(command) => session(&config, command),
        Command::Verify { user, code } => verify(&config, &user, &code),
        Command::Explain(args) => explain(&config, &args),
        Command::Audit { user, repo, limit } => audit(&config, user, repo, limit),
        Command::Check { sshd_config } => check(&config, sshd_config),
        Command::Serve => crate::serve::Listeners::bind(&config)
            .and_then(|listeners| crate::serve::run(config, listeners))
            .map_err(Failure::usage),
        Command::AuthorizedKeys { .. } | Command::Demo { .. } => Ok(()),
        Command::InstallHooks {
            root,
            uninstall,
            hook_bin,
        } => install_hooks(&config, &root, uninstall, hook_bin),
    }
}

fn unreachable_init() -> Outcome {
    Err(Failure::usage("init was handled above"))
}

fn open_store(config: &Config) -> Result<Store, Failure> {
    Ok(Store::open_and_migrate(&config.store_path())?)
}

fn find_user(store: &Store, name: &str) -> Result<User, Failure> {
    check_user_name(name).map_err(Failure::usage)?;
    store
        .user(name)?
        .ok_or_else(|| Failure::refused(format!("no user named {name}")))
}

fn cli_origin() -> Origin {
    Origin {
        transport: Transport::Cli,
        key_id: None,
        remote_addr: None,
    }
}

/// Who ran the command, for the audit row.
fn operator() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => format!("by {} (uid {uid})", user.name),
        _ => format!("by uid {uid}"),
    }
}

fn admin_audit(
    store: &mut Store,
    user: Option<&str>,
    repo: Option<&str>,
    action: &str,
    reason: &str,
) -> Outcome {
    store.append_audit(&AuditRecord {
        at: now(),
        user: user.map(str::to_string),
        transport: Transport::Cli.as_str().into(),
        repo: repo.map(str::to_string),
        action: action.into(),
        outcome: "ok".into(),
        reason: reason.into(),
        detail: Some(operator()),
        ..AuditRecord::default()
    })?;
    Ok(())
}

// init

fn init(config_path: &Path, args: &InitArgs) -> Outcome {
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

fn io_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::usage(format!("{}: {}", path.display(), config::io_reason(e)))
}

// Passwords: never from argv.

fn read_password(from_stdin: bool, required: bool) -> Result<Option<String>, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::usage(format!("stdin: {e}")))?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    } else if std::io::stdin().is_terminal() {
        let first = prompt_hidden("Password: ")?;
        let second = prompt_hidden("Again: ")?;
        if first != second {
            return Err(Failure::usage("the passwords differ"));
        }
        Some(first)
    } else if required {
        return Err(Failure::usage(
            "give the password on a terminal, or with --password-stdin",
        ));
    } else {
        None
    };
    match password {
        Some(p) if p.chars().count() < 8 => {
            Err(Failure::usage("a password needs at least 8 characters"))
        }
        Some(p) if p.len() > 1024 => Err(Failure::usage("a password may have at most 1024 bytes")),
        other => Ok(other),
    }
}

fn prompt_hidden(prompt: &str) -> Result<String, Failure> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let fail = |e: nix::Error| Failure::usage(format!("cannot read from the terminal: {e}"));
    let saved = tcgetattr(&stdin).map_err(fail)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    eprint!("{prompt}");
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(fail)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    tcsetattr(&stdin, SetArg::TCSANOW, &saved).map_err(fail)?;
    eprintln!();
    read.map_err(|e| Failure::usage(format!("cannot read from the terminal: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

// user

fn user(config: &Config, command: UserCommand) -> Outcome {
    let mut store = open_store(config)?;
    match command {
        UserCommand::Add {
            name,
            password_stdin,
            admin,
        } => {
            check_user_name(&name).map_err(Failure::usage)?;
            if store.user(&name)?.is_some() {
                return Err(Failure::refused(format!("user {name} already exists")));
            }
            let password = read_password(password_stdin, false)?;
            let hash = password.as_deref().map(crypto::hash_password).transpose()?;
            let id = match store.add_user(&name, hash.as_deref(), now()) {
                Err(StoreError::Exists) => {
                    return Err(Failure::refused(format!("user {name} already exists")));
                }
                other => other?,
            };
            if admin {
                store.set_admin(id, true)?;
            }
            admin_audit(
                &mut store,
                Some(&name),
                None,
                "user-add",
                if admin { "admin" } else { "user" },
            )?;
            match hash {
                Some(_) => println!("added {name}"),
                None => {
                    let user = find_user(&store, &name)?;
                    println!("added {name}; they set a password at (once, within 24 hours):");
                    println!("{}", password_link(config, &mut store, &user)?);
                }
            }
        }
        UserCommand::List => {
            let t = now();
            for user in store.users()? {
                println!("{}", user_line(&user, t));
            }
        }
        UserCommand::Show { name } => {
            let user = find_user(&store, &name)?;
            let t = now();
            println!("{}", user_line(&user, t));
            if let Some(at) = user.enrolled_at {
                println!("enrolled: {}", format_utc(at));
            }
            println!("failures: {}", user.failures);
            for key in store.keys(Some(&name))? {
                println!(
                    "key #{} {} {} {}",
                    key.id, key.algorithm, key.fingerprint, key.comment
                );
            }
            for token in store.tokens(Some(&name))? {
                println!("{}", token_line(&token, t));
            }
            for session in store.sessions(Some(&name), t)? {
                println!(
                    "session #{} until {} via {}",
                    session.id,
                    format_utc(session.expires_at),
                    session.opened_via
                );
            }
        }
        UserCommand::Disable { name } => {
            let user = find_user(&store, &name)?;
            store.set_enabled(user.id, false, now())?;
            admin_audit(&mut store, Some(&name), None, "user-disable", "admin")?;
            println!("disabled {name}");
        }
        UserCommand::Enable { name } => {
            let user = find_user(&store, &name)?;
            store.set_enabled(user.id, true, now())?;
            admin_audit(&mut store, Some(&name), None, "user-enable", "admin")?;
            println!("enabled {name}");
        }
        UserCommand::Unlock { name } => {
            let user = find_user(&store, &name)?;
            store.unlock(user.id)?;
            admin_audit(&mut store, Some(&name), None, "user-unlock", "admin")?;
            println!("unlocked {name}");
        }
        UserCommand::Reset2fa { name, keep_tokens } => {
            let user = find_user(&store, &name)?;
            let reset = store
                .reset_2fa(user.id, !keep_tokens, now())?
                .ok_or_else(|| Failure::refused(format!("no user {name}")))?;
            let tokens = if keep_tokens {
                "tokens kept".to_string()
            } else {
                plural(reset.tokens_revoked, "token") + " revoked"
            };
            let sessions = plural(reset.sessions_ended, "2FA session") + " ended";
            store.append_audit(&AuditRecord {
                at: now(),
                user: Some(name.clone()),
                transport: Transport::Cli.as_str().into(),
                action: "reset-2fa".into(),
                outcome: "ok".into(),
                reason: "admin".into(),
                detail: Some(format!("{}; {sessions}, {tokens}", operator())),
                ..AuditRecord::default()
            })?;
            println!(
                "removed 2FA from {name}: secret and recovery codes are gone; {sessions}; {tokens}"
            );
        }
        UserCommand::SetPassword {
            name, link: true, ..
        } => {
            let user = find_user(&store, &name)?;
            println!("{}", password_link(config, &mut store, &user)?);
            admin_audit(&mut store, Some(&name), None, "set-password", "link")?;
        }
        UserCommand::SetPassword {
            name,
            password_stdin,
            ..
        } => {
            let user = find_user(&store, &name)?;
            let password = read_password(password_stdin, true)?.unwrap_or_default();
            store.set_password_hash(user.id, &crypto::hash_password(&password)?)?;
            admin_audit(&mut store, Some(&name), None, "set-password", "admin")?;
            println!("set the password of {name}");
        }
        UserCommand::Enroll { name } => {
            let user = find_user(&store, &name)?;
            let key = SecretKey::load(&config.secret_key_path())?;
            let enrollment =
                twofactor::enroll(&mut store, &key, config, &user, &cli_origin(), now())?;
            println!("enrolled {name}; add this to an authenticator app:");
            println!("{}", enrollment.uri);
            println!("key: {}", crate::totp::encode_secret(&enrollment.secret));
            if !enrollment.recovery_codes.is_empty() {
                println!("recovery codes (each works once; keep them safe):");
                for code in &enrollment.recovery_codes {
                    println!("  {code}");
                }
            }
        }
    }
    Ok(())
}

fn user_line(user: &User, now: i64) -> String {
    let mut flags = vec![
        if user.enabled { "enabled" } else { "disabled" },
        if user.is_enrolled() {
            "enrolled"
        } else {
            "not-enrolled"
        },
    ];
    if user.is_admin {
        flags.push("admin");
    }
    if user.always_2fa {
        flags.push("always-2fa");
    }
    if user.password_hash.is_none() {
        flags.push("no-password");
    }
    let mut line = format!("{} {}", user.name, flags.join(" "));
    if let Some(until) = user.locked_until.filter(|&u| u > now) {
        line += &format!(" locked-until={}", format_rfc3339(until));
    }
    line
}

// key

fn key(config: &Config, command: KeyCommand) -> Outcome {
    let mut store = open_store(config)?;
    match command {
        KeyCommand::Add { user, file } => {
            let owner = find_user(&store, &user)?;
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .take(64 * 1024)
                    .read_to_string(&mut text)
                    .map_err(|e| Failure::usage(format!("stdin: {e}")))?;
                text
            } else {
                config::read_small_file(&file)?
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
            let fingerprint = key.fingerprint();
            if let Some(existing) = store.key_by_fingerprint(&fingerprint)? {
                return Err(Failure::refused(format!(
                    "key {fingerprint} is already registered to {}",
                    existing.user
                )));
            }
            let id = store.add_key(
                owner.id,
                &key.algorithm,
                &key.blob_base64(),
                &fingerprint,
                &key.comment,
                now(),
            )?;
            admin_audit(&mut store, Some(&user), None, "key-add", &fingerprint)?;
            println!("added key #{id} {fingerprint} for {user}");
        }
        KeyCommand::List { user } => {
            if let Some(name) = &user {
                find_user(&store, name)?;
            }
            for key in store.keys(user.as_deref())? {
                println!(
                    "#{} {} {} {} {}",
                    key.id, key.user, key.algorithm, key.fingerprint, key.comment
                );
            }
        }
        KeyCommand::Remove { id } => {
            let key = store
                .key(id)?
                .ok_or_else(|| Failure::refused(format!("no key #{id}")))?;
            store.remove_key(id, now())?;
            admin_audit(
                &mut store,
                Some(&key.user),
                None,
                "key-remove",
                &key.fingerprint,
            )?;
            println!("removed key #{id} {} of {}", key.fingerprint, key.user);
        }
    }
    Ok(())
}

// token

fn token_command(config: &Config, command: TokenCommand) -> Outcome {
    let mut store = open_store(config)?;
    match command {
        TokenCommand::Create {
            user,
            repos,
            perm,
            expires_days,
            name,
            without_2fa,
        } => {
            let owner = find_user(&store, &user)?;

            check_label(&name).map_err(Failure::usage)?;
            let repos = repos
                .iter()
                .map(|p| token::normalise_pattern(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Failure::usage)?;
            let permission = match perm {
                PermArg::Read => Permission::Read,
                PermArg::Write => Permission::Write,
            };
            let max = config.tokens.max_expiry_days;
            let days = expires_days.unwrap_or(config.tokens.default_expiry_days);
            if days == 0 && max != 0 {
                return Err(Failure::usage(format!(
                    "tokens must expire here: --expires-days 1 to {max}"
                )));
            }
            if max != 0 && days > max {
                return Err(Failure::usage(format!(
                    "--expires-days {days} is more than max_expiry_days ({max})"
                )));
            }
            // Rule 4: a token opens repositories that require 2FA, so it
            // is minted only for a user who has the second factor, unless
            // the admin says, by name, that this one has none.
            if !owner.is_enrolled() && !without_2fa {
                return Err(Failure::refused(format!(
                    "{user} has not set up 2FA, so a token would carry no second factor; \
                     enrol them first (git2fa user enroll {user}), or pass --without-2fa for a service account"
                )));
            }
            let t = now();
            let expires_at = (days > 0).then(|| t + i64::from(days) * 86_400);
            let secret = token::generate()?;
            let id = store.add_token(
                owner.id,
                &name,
                &token::hash(&secret),
                &repos,
                permission,
                expires_at,
                without_2fa,
                t,
            )?;
            let marked = if without_2fa { " without-2fa" } else { "" };
            admin_audit(
                &mut store,
                Some(&user),
                None,
                "token-create",
                &format!("token #{id}{marked}"),
            )?;
            println!("{secret}");
            eprintln!(
                "token #{id} for {user}{}: {} on {}, {} (shown once; store it now)",
                if without_2fa {
                    ", minted without 2FA"
                } else {
                    ""
                },
                permission.as_str(),
                repos.join(", "),
                expires_at.map_or("never expires".into(), |at| format!(
                    "expires {}",
                    format_utc(at)
                ))
            );
        }
        TokenCommand::List { user } => {
            if let Some(name) = &user {
                find_user(&store, name)?;
            }
            let t = now();
            for token in store.tokens(user.as_deref())? {
                println!("{}", token_line(&token, t));
            }
        }
        TokenCommand::Revoke { id } => {
            let found = store
                .token(id)?
                .ok_or_else(|| Failure::refused(format!("no token #{id}")))?;
            if !store.revoke_token(id, now())? {
                return Err(Failure::refused(format!("token #{id} was already revoked")));
            }
            admin_audit(
                &mut store,
                Some(&found.user),
                None,
                "token-revoke",
                &format!("token #{id}"),
            )?;
            println!("revoked token #{id} of {}", found.user);
        }
    }
    Ok(())
}

fn token_line(token: &crate::store::Token, now: i64) -> String {
    let state = if token.revoked_at.is_some() {
        "revoked".to_string()
    } else if token.expires_at.is_some_and(|at| at <= now) {
        "expired".to_string()
    } else {
        "active".to_string()
    };
    format!(
        "token #{} {} \"{}\" {} {} {}{} expires={} last-used={}",
        token.id,
        token.user,
        token.name,
        token.permission.as_str(),
        token.repos.join(","),
        state,
        if token.without_2fa {
            " without-2fa"
        } else {
            ""
        },
        token.expires_at.map_or("never".into(), format_rfc3339),
        token.last_used_at.map_or("never".into(), format_rfc3339),
    )
}

// repo

fn resolve_repo(config: &Config, typed: &str) -> Result<RepoPath, Failure> {
    repo_path::resolve(&config.repos_root, typed).map_err(|e| match e {
        RepoPathError::NotFound => Failure::refused(format!(
            "no bare repository {typed} under {}",
            config.repos_root.display()
        )),
        malformed => Failure::usage(malformed.to_string()),
    })
}

fn repo(config: &Config, command: RepoCommand) -> Outcome {
    match command {
        RepoCommand::Show { repo } => {
            let path = resolve_repo(config, &repo)?;
            let policy = RepoPolicy::load(&path.dir)?;
            println!("{} ({})", path.name, path.dir.display());
            print!("{}", policy.describe());
        }
        RepoCommand::Flag {
            repo,
            require,
            refs,
        } => {
            let path = resolve_repo(config, &repo)?;
            let require = match require {
                RequireArg::Push => Require::Push,
                RequireArg::All => Require::All,
            };
            if require == Require::All && !refs.is_empty() {
                return Err(Failure::usage("--ref goes with --require push"));
            }
            let policy = repo_policy::set_requirement(&path.dir, require, Some(&refs))?;
            let mut store = open_store(config)?;
            admin_audit(
                &mut store,
                None,
                Some(&path.name),
                "repo-flag",
                require.as_str(),
            )?;
            println!(
                "{}: 2FA required for {}",
                path.name,
                match require {
                    Require::All => "every operation".to_string(),
                    _ if policy.protected_refs.is_empty() => "every push".to_string(),
                    _ => format!("pushes to {}", policy.protected_refs.join(", ")),
                }
            );
        }
        RepoCommand::Unflag { repo } => {
            let path = resolve_repo(config, &repo)?;
            repo_policy::set_requirement(&path.dir, Require::Off, None)?;
            let mut store = open_store(config)?;
            admin_audit(&mut store, None, Some(&path.name), "repo-unflag", "off")?;
            println!("{}: 2FA no longer required by the repository", path.name);
        }
    }
    Ok(())
}

// session

fn session(config: &Config, command: SessionCommand) -> Outcome {
    let mut store = open_store(config)?;
    match command {
        SessionCommand::List { user } => {
            if let Some(name) = &user {
                find_user(&store, name)?;
            }
            for s in store.sessions(user.as_deref(), now())? {
                let mut line = format!(
                    "session #{} {} opened {} via {} until {}",
                    s.id,
                    s.user,
                    format_rfc3339(s.created_at),
                    s.opened_via,
                    format_rfc3339(s.expires_at)
                );
                if let Some(key) = s.key_id {
                    line += &format!(" key=#{key}");
                }
                if let Some(addr) = &s.remote_addr {
                    line += &format!(" addr={addr}");
                }
                println!("{line}");
            }
        }
        SessionCommand::End { id: Some(id), .. } => {
            if !store.end_session(id, now())? {
                return Err(Failure::refused(format!("no open session #{id}")));
            }
            admin_audit(
                &mut store,
                None,
                None,
                "session-end",
                &format!("session #{id}"),
            )?;
            println!("ended session #{id}");
        }
        SessionCommand::End { id: None, user } => {
            let name = user.unwrap_or_default();
            let found = find_user(&store, &name)?;
            let count = store.end_sessions_of(found.id, now())?;
            admin_audit(
                &mut store,
                Some(&name),
                None,
                "session-end",
                &format!("{count} sessions"),
            )?;
            println!("ended {count} sessions of {name}");
        }
    }
    Ok(())
}

// verify

fn verify(config: &Config, name: &str, code: &str) -> Outcome {
    let mut store = open_store(config)?;
    let user = find_user(&store, name)?;
    let key = SecretKey::load(&config.secret_key_path())?;
    let t = now();
    match twofactor::verify(&mut store, &key, config, &user, code, &cli_origin(), t)? {
        Verified::Opened {
            session_id,
            expires_at,
            method,
        } => {
            println!(
                "verified {name} with a {}: 2FA session #{session_id} open until {} ({})",
                match method {
                    twofactor::Method::Totp => "TOTP code",
                    twofactor::Method::RecoveryCode => "recovery code",
                },
                format_utc(expires_at),
                format_duration(config.policy.session_ttl)
            );
            Ok(())
        }
        Verified::Wrong { left } => Err(Failure::refused(format!(
            "wrong code for {name}; {left} more wrong codes lock the account"
        ))),
        Verified::Replayed { left } => Err(Failure::refused(format!(
            "that code was already used; wait for the next one ({left} more wrong codes lock the account)"
        ))),
        Verified::Locked { until } => Err(Failure::refused(format!(
            "{name} is locked after too many wrong codes until {} (git2fa user unlock {name})",
            format_utc(until)
        ))),
    }
}

// explain

fn explain(config: &Config, args: &ExplainArgs) -> Outcome {
    let store = open_store(config)?;
    check_user_name(&args.user).map_err(Failure::usage)?;
    let repo = resolve_repo(config, &args.repo)?;
    if args.op == OpArg::Read && !args.refs.is_empty() {
        return Err(Failure::usage("--ref goes with write"));
    }
    let operation = match args.op {
        OpArg::Read => Operation::Read,
        OpArg::Write if args.refs.is_empty() => Operation::Write(PushedRefs::Unknown),
        OpArg::Write => Operation::Write(PushedRefs::Known(args.refs.clone())),
    };
    let credential = match args.token {
        Some(id) => {
            let found = store
                .token(id)?
                .ok_or_else(|| Failure::refused(format!("no token #{id}")))?;
            if found.user != args.user {
                return Err(Failure::usage(format!(
                    "token #{id} belongs to {}",
                    found.user
                )));
            }
            Credential::Token(found.facts())
        }
        None => match args.key_id {
            Some(key_id) => Credential::SshKey { key_id },
            None => Credential::UnixUser,
        },
    };
    let request = Request {
        user: Some(&args.user),
        credential,
        repo: crate::gate::Target::Found(&repo),
        operation,
        transport: Transport::Cli,
        key_id: args.key_id,
        remote_addr: args.ip.as_deref(),
    };
    let outcome = gate::evaluate(config, &store, &request, now());
    let verdict = if outcome.decision.is_allowed() {
        "allowed"
    } else {
        "refused"
    };
    println!(
        "{verdict} by rule {} ({}): {}",
        outcome.decision.rule(),
        outcome.decision.code(),
        rule_text(&outcome.decision)
    );
    match &outcome.required_by {
        Some(why) => println!("2FA required: yes, {}", why.describe()),
        None if outcome.decision.rule() >= 2 => println!("2FA required: no"),
        None => {}
    }
    if let Some(detail) = &outcome.detail {
        println!("cause: {detail}");
    }
    match &outcome.decision {
        Decision::Allow(_) => Ok(()),
        Decision::Refuse(refusal) => {
            let cx = crate::decision::MessageContext {
                config,
                repo: &repo.name,
                user: Some(&args.user),
                operation: &request.operation,
                transport: Transport::Ssh,
            };
            println!("a git user would read:");
            for line in refusal.lines(&cx) {
                println!("  {line}");
            }
            Err(Failure {
                code: 1,
                message: format!(
                    "{} may not {} {}",
                    args.user,
                    request.operation.as_str(),
                    repo.name
                ),
            })
        }
    }
}

fn rule_text(decision: &Decision) -> &'static str {
    match decision.rule() {
        0 => "the credential does not hold",
        1 => "not a registered, enabled user with the right on this repository",
        3 => "2FA is not required for this operation",
        4 => "a personal access token carries the second factor",
        5 if decision.is_allowed() => "a password with an open 2FA session (password_for_git)",
        5 => "a password is not accepted where 2FA is required; use a personal access token",
        6 => "2FA is required and the user has not enrolled",
        7 if decision.is_allowed() => "an open 2FA session",
        7 => "2FA is required and no open 2FA session matches",
        _ => "the check could not be completed",
    }
}

// audit

fn audit(config: &Config, user: Option<String>, repo: Option<String>, limit: u32) -> Outcome {
    let store = open_store(config)?;
    let rows = store.audit(&AuditFilter { user, repo, limit })?;
    let mut out = std::io::stdout().lock();
    for (id, r) in rows {
        let mut line = format!(
            "#{id} {} {} {} {} {} {}",
            format_rfc3339(r.at),
            r.transport,
            r.user.as_deref().unwrap_or("-"),
            r.action,
            r.outcome,
            r.reason
        );
        for (label, value) in [
            ("repo", r.repo),
            ("refs", r.refs),
            ("credential", r.credential),
            ("key", r.key_id.map(|k| format!("#{k}"))),
            ("token", r.token_id.map(|t| format!("#{t}"))),
            ("addr", r.remote_addr),
            ("detail", r.detail),
        ] {
            if let Some(value) = value {
                line += &format!(" {label}={value}");
            }
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}

// check

fn check(config: &Config, sshd_config: Option<PathBuf>) -> Outcome {
    let report = crate::check::run(config, &crate::check::Options { sshd_config });
    for (level, line) in &report.lines {
        println!("{}: {line}", level.word());
    }
    match report.problems() {
        0 => Ok(()),
        n => Err(Failure::refused(format!("{} found", plural(n, "problem")))),
    }
}

// authorized-keys

/// A binary installed beside this one.
fn sibling(name: &str) -> Result<PathBuf, Failure> {
    let me =
        std::env::current_exe().map_err(|e| Failure::usage(format!("cannot find myself: {e}")))?;
    let dir = me
        .parent()
        .ok_or_else(|| Failure::usage("cannot find my directory"))?;
    Ok(dir.join(name))
}

/// sshd expects exit 0 and nothing printed for a key it should refuse, so
/// every failure is a line on stderr (sshd's log) and no output.
fn authorized_keys(
    config_path: &Path,
    _account: &str,
    keytype: &str,
    key: &str,
    shell: Option<&Path>,
) {
    let line = (|| -> Result<Option<String>, Failure> {
        let config = Config::load(config_path)?;
        let key = PublicKey::from_parts(keytype, key).map_err(Failure::refused)?;
        let store = Store::open(&config.store_path())?;
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
        let command = format!(
            "{} --config {} --key-id {} --fingerprint {}",
            option_quote(&shell.to_string_lossy()),
            option_quote(&config_abs.to_string_lossy()),
            found.id,
            option_quote(&found.fingerprint)
        );
        Ok(Some(format!(
            "command=\"{}\",restrict {} {}",
            command.replace('\\', "\\\\").replace('"', "\\\""),
            key.algorithm,
            key.blob_base64()
        )))
    })();
    match line {
        Ok(Some(line)) => println!("{line}"),
        Ok(None) => {}
        Err(failure) => eprintln!("git2fa authorized-keys: {}", failure.message),
    }
}

/// Quotes a word for the shell sshd runs the forced command with.
fn option_quote(word: &str) -> String {
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

// install-hooks

fn install_hooks(
    config: &Config,
    root: &Path,
    uninstall: bool,
    hook_bin: Option<PathBuf>,
) -> Outcome {
    let root = root.canonicalize().map_err(|e| io_failure(root, &e))?;
    if uninstall {
        let changes =
            crate::install::uninstall(&root).map_err(|e| Failure::usage(e.to_string()))?;
        for change in &changes {
            let restored = if change.kept.is_empty() {
                String::new()
            } else {
                format!(" (restored {})", change.kept.join(", "))
            };
            println!(
                "removed git2fa hooks from {}{restored}",
                change.repo.display()
            );
        }
        return Ok(());
    }
    let hook_bin = match hook_bin {
        Some(path) => path,
        None => sibling("git2fa-hook")?,
    };
    let hook_bin = hook_bin
        .canonicalize()
        .map_err(|e| io_failure(&hook_bin, &e))?;
    let config_path = config
        .path
        .canonicalize()
        .map_err(|e| io_failure(&config.path, &e))?;
    let changes = crate::install::install(&root, &hook_bin, &config_path)
        .map_err(|e| Failure::usage(e.to_string()))?;
    for change in &changes {
        let kept = if change.kept.is_empty() {
            String::new()
        } else {
            format!(
                " (kept and chained the existing {})",
                change.kept.join(", ")
            )
        };
        println!("installed git2fa hooks in {}{kept}", change.repo.display());
    }
    if changes.is_empty() {
        println!("no bare repositories under {}", root.display());
    }
    Ok(())
}

/// A one-time link where the user sets a password, valid 24 hours.
fn password_link(config: &Config, store: &mut Store, user: &User) -> Result<String, Failure> {
    let secret: String = crypto::random_bytes::<24>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hash: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
    store.add_password_link(&hash, user.id, now() + 86_400)?;
    Ok(format!("{}/set-password/{secret}", config.public_url))
}

/// "1 token", "2 tokens".
fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
