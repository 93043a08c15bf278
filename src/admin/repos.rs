//! `git2fa repo` (a repository's requirement) and `git2fa install-hooks`.

use std::path::{Path, PathBuf};

use super::args::*;
use super::support::*;
use crate::repo;
use crate::repo::policy::{RepoPolicy, Require};
use crate::system::config::Config;

pub(super) fn repo(config: &Config, command: RepoCommand) -> CliResult {
    match command {
        RepoCommand::List => {
            let root = &config.repos_root;
            let found = repo::path::find_all(root).map_err(|e| io_failure(root, &e))?;
            for dir in &found {
                let below = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
                let name = below.strip_suffix(".git").unwrap_or(&below);
                let policy = RepoPolicy::load(dir)?;
                let refs = if policy.protected_refs.is_empty() {
                    String::new()
                } else {
                    format!(" refs={}", policy.protected_refs.join(","))
                };
                let hooks = if repo::hooks::hooks_installed(dir) {
                    "installed"
                } else {
                    "missing"
                };
                say!(
                    "{name} require={}{refs} hooks={hooks}",
                    policy.require.as_str()
                );
            }
            if found.is_empty() {
                nothing_to_list(&format!("no bare repositories under {}", root.display()));
            }
        }
        RepoCommand::Show { repo } => {
            let path = resolve_repo(config, &repo)?;
            let policy = RepoPolicy::load(&path.dir)?;
            say!("{} ({})", path.name, path.dir.display());
            say_part!("{}", policy.describe());
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
            let policy = repo::policy::set_requirement(&path.dir, require, Some(&refs))?;
            let mut store = open_store(config)?;
            admin_audit(
                &mut store,
                None,
                Some(&path.name),
                "repo-flag",
                require.as_str(),
            )?;
            say!(
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
            repo::policy::set_requirement(&path.dir, Require::Off, None)?;
            let mut store = open_store(config)?;
            admin_audit(&mut store, None, Some(&path.name), "repo-unflag", "off")?;
            say!("{}: 2FA no longer required by the repository", path.name);
        }
    }
    Ok(())
}

pub(super) fn install_hooks(
    config: &Config,
    root: &Path,
    uninstall: bool,
    hook_bin: Option<PathBuf>,
) -> CliResult {
    let root = root.canonicalize().map_err(|e| io_failure(root, &e))?;
    if uninstall {
        let changes =
            crate::repo::hooks::uninstall(&root).map_err(|e| Failure::usage(e.to_string()))?;
        for change in &changes {
            let restored = if change.kept.is_empty() {
                String::new()
            } else {
                format!(" (restored {})", change.kept.join(", "))
            };
            say!(
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
    let changes = crate::repo::hooks::install(&root, &hook_bin, &config_path)
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
        say!("installed git2fa hooks in {}{kept}", change.repo.display());
    }
    if changes.is_empty() {
        say!("no bare repositories under {}", root.display());
    }
    Ok(())
}
