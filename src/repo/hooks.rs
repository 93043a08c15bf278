//! `git2fa install-hooks`: puts the stubs from `hooks/` into every bare
//! repository under a root, keeping any hook already there (chained), and
//! takes them out again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::repo;

/// The line that marks a hook as ours.
pub const MARKER: &str = "git2fa-hook-stub";
/// The hooks git2fa installs, with their templates.
pub const HOOKS: [(&str, &str); 2] = [
    ("pre-receive", include_str!("../../hooks/pre-receive")),
    ("update", include_str!("../../hooks/update")),
];
/// A hook that was there before ours is kept under this suffix.
pub const CHAINED_SUFFIX: &str = ".git2fa-chained";

/// What happened in one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub repo: PathBuf,
    pub kept: Vec<String>,
}

/// Whether a hook file is one of our stubs: a regular file (not a link,
/// which could lead anywhere, `/dev/zero` included), small, with our marker.
pub fn is_ours(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() <= 64 * 1024)
        && fs::read_to_string(path).is_ok_and(|text| text.contains(MARKER))
}

/// A repository's `hooks` directory, made if missing. A symlink there is
/// refused: this may run as root, and a repository owner could point it
/// at any directory (`/etc/sudoers.d`) for the stubs to land in.
fn hooks_dir(repo: &Path) -> io::Result<PathBuf> {
    let hooks = repo.join("hooks");
    match fs::symlink_metadata(&hooks) {
        Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
            Err(io::Error::other(format!(
                "{} is not a directory of its own (a link?); not writing there: resolve by hand",
                hooks.display()
            )))
        }
        Ok(_) => Ok(hooks),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(&hooks)?;
            Ok(hooks)
        }
        Err(e) => Err(e),
    }
}

/// Whether our stub `name` is in place in the repository as a file git
/// will run. Executable as the kernel says (git skips a hook it cannot run,
/// e.g. on a `noexec` mount), and exactly our stub for that hook: the
/// template's lines and one `exec` of git2fa-hook for `name`, so neither an
/// edited stub nor another hook's stub counts.
pub fn hook_active(repo_dir: &Path, name: &str) -> bool {
    use nix::unistd::{AccessFlags, access};
    let path = repo_dir.join("hooks").join(name);
    let runnable =
        fs::metadata(&path).is_ok_and(|m| m.is_file()) && access(&path, AccessFlags::X_OK).is_ok();
    runnable && fs::read_to_string(&path).is_ok_and(|text| is_stub_for(&text, name))
}

/// Whether `text` is the stub `install` writes for hook `name`.
fn is_stub_for(text: &str, name: &str) -> bool {
    let Some((_, template)) = HOOKS.iter().find(|(hook, _)| *hook == name) else {
        return false;
    };
    let Some(exec_at) = template.find("exec @HOOK_BIN@") else {
        return false;
    };
    let Some(exec_line) = text.strip_prefix(&template[..exec_at]) else {
        return false;
    };
    let Some(exec_line) = exec_line.strip_suffix('\n') else {
        return false;
    };
    !exec_line.contains('\n')
        && exec_line.starts_with("exec '")
        && exec_line.ends_with(&format!("' {name} \"$@\""))
        && exec_line.contains("' --config '")
}

/// Whether both git2fa hooks are in place in the repository.
pub fn hooks_installed(repo_dir: &Path) -> bool {
    HOOKS.iter().all(|(name, _)| hook_active(repo_dir, name))
}

/// Quotes a path for `sh`: inside single quotes, with `'` written `'\''`.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// Installs the hooks into every bare repository under `root`. Idempotent:
/// our stubs are rewritten, a chained hook is left where it is.
pub fn install(root: &Path, hook_bin: &Path, config: &Path) -> io::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for repo in repo::path::find_all(root)? {
        let hooks = hooks_dir(&repo)?;
        let mut kept = Vec::new();
        for (name, template) in HOOKS {
            let path = hooks.join(name);
            let chained = hooks.join(format!("{name}{CHAINED_SUFFIX}"));
            let existing = fs::symlink_metadata(&path).is_ok();
            if existing && !is_ours(&path) {
                if fs::symlink_metadata(&chained).is_ok() {
                    return Err(io::Error::other(format!(
                        "{} and {} both exist: resolve by hand",
                        path.display(),
                        chained.display()
                    )));
                }
                fs::rename(&path, &chained)?;
                kept.push(name.to_string());
            }
            let stub = template
                .replace("@HOOK_BIN@", &shell_quote(hook_bin))
                .replace("@CONFIG@", &shell_quote(config));
            write_executable(&path, &stub)?;
        }
        changes.push(Change { repo, kept });
    }
    Ok(changes)
}

/// Removes our stubs and puts back the hooks that were there before.
pub fn uninstall(root: &Path) -> io::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for repo in repo::path::find_all(root)? {
        let hooks = hooks_dir(&repo)?;
        let mut kept = Vec::new();
        for (name, _) in HOOKS {
            let path = hooks.join(name);
            if !is_ours(&path) {
                continue;
            }
            fs::remove_file(&path)?;
            let chained = hooks.join(format!("{name}{CHAINED_SUFFIX}"));
            if fs::symlink_metadata(&chained).is_ok() {
                fs::rename(&chained, &path)?;
                kept.push(name.to_string());
            }
        }
        changes.push(Change { repo, kept });
    }
    Ok(changes)
}

/// Hooks directories belong to whoever owns the repository, and this runs
/// as root: nothing planted there may redirect the write (`atomic_file`).
fn write_executable(path: &Path, text: &str) -> io::Result<()> {
    crate::system::atomic_file::replace(path, text.as_bytes(), 0o755)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_stub_counts() {
        let stub = |name: &str| {
            let template = HOOKS.iter().find(|(h, _)| *h == name).unwrap().1;
            template
                .replace("@HOOK_BIN@", "'/usr/local/bin/git2fa-hook'")
                .replace("@CONFIG@", "'/etc/git2fa/config.toml'")
        };
        assert!(is_stub_for(&stub("pre-receive"), "pre-receive"));
        assert!(is_stub_for(&stub("update"), "update"));
        // Another hook's stub, an edited one, or a bare marker do not.
        assert!(!is_stub_for(&stub("update"), "pre-receive"));
        assert!(!is_stub_for(
            &stub("pre-receive").replace("exec ", "exit 0\nexec "),
            "pre-receive"
        ));
        assert!(!is_stub_for(
            &format!("{}exit 0\n", stub("pre-receive")),
            "pre-receive"
        ));
        assert!(!is_stub_for(
            "#!/bin/sh\n# git2fa-hook-stub\nexit 0\n",
            "pre-receive"
        ));
    }
}
