//! Repository paths as git users type them (untrusted input), resolved to a
//! bare repository strictly inside `repos_root`.
//!
//! The check is by path component after canonicalising, never by string
//! prefix: `/srv/git-evil` is not inside `/srv/git`, and a symlink that
//! leads out of the root is caught because its target is what is compared.

use std::fmt;
use std::path::{Path, PathBuf};

/// Typed paths longer than this are refused unread.
pub const MAX_LEN: usize = 1024;

/// A bare repository inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPath {
    /// The canonical directory.
    pub dir: PathBuf,
    /// The path below the root without a trailing `.git`, e.g. `team/app`:
    /// what token scopes match, what messages and the audit log show.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoPathError {
    /// The text is not a repository path we accept; says why.
    Malformed(&'static str),
    /// Well-formed, but no bare repository of that name inside the root.
    NotFound,
}

impl fmt::Display for RepoPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoPathError::Malformed(why) => write!(f, "invalid repository path: {why}"),
            RepoPathError::NotFound => write!(f, "repository not found"),
        }
    }
}

impl std::error::Error for RepoPathError {}

/// Checks the shape of a typed path and returns its segments below the root.
///
/// Accepts `team/app`, `team/app.git`, `/team/app.git` and `~/team/app.git`.
pub fn parse(typed: &str) -> Result<Vec<&str>, RepoPathError> {
    use RepoPathError::Malformed;
    if typed.len() > MAX_LEN {
        return Err(Malformed("longer than 1024 bytes"));
    }
    if typed.starts_with('-') {
        return Err(Malformed("starts with '-'"));
    }
    if typed.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Malformed("contains a control character or a backslash"));
    }
    if typed.contains("..") {
        return Err(Malformed("contains '..'"));
    }
    let relative = typed
        .strip_prefix("~/")
        .or_else(|| typed.strip_prefix('/'))
        .unwrap_or(typed);
    let relative = relative.strip_suffix('/').unwrap_or(relative);
    if relative.is_empty() {
        return Err(Malformed("empty"));
    }
    let segments: Vec<&str> = relative.split('/').collect();
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-+@".contains(c);
    for segment in &segments {
        if !segment.chars().all(safe) {
            return Err(Malformed("may hold only A-Z a-z 0-9 . _ - + @ and /"));
        }
        if segment.is_empty() {
            return Err(Malformed("contains '//'"));
        }
        if *segment == ".." || *segment == "." {
            return Err(Malformed("contains '.' or '..'"));
        }
        if segment.starts_with('.') {
            return Err(Malformed("a path segment starts with '.'"));
        }
    }
    Ok(segments)
}

/// Resolves a typed path to a bare repository inside `root`.
///
/// An absolute path is taken as it is when it lies below `root` (compared
/// by component: `/srv/git-evil/x` is not below `/srv/git`), and as
/// relative to `root` otherwise (`ssh://host/team/app.git` sends
/// `/team/app.git`). Tries the path as typed, then with `.git` appended.
pub fn resolve(root: &Path, typed: &str) -> Result<RepoPath, RepoPathError> {
    let typed = match Path::new(typed).strip_prefix(root) {
        Ok(below) if typed.starts_with('/') => below.to_str().ok_or(RepoPathError::NotFound)?,
        _ => typed,
    };
    let segments = parse(typed)?;
    let root = root.canonicalize().map_err(|_| RepoPathError::NotFound)?;
    let mut relative: PathBuf = segments.iter().collect();
    let mut candidates = vec![root.join(&relative)];
    if !typed.ends_with(".git") && !typed.ends_with(".git/") {
        relative.set_extension(match relative.extension() {
            Some(ext) => format!("{}.git", ext.to_string_lossy()),
            None => "git".into(),
        });
        candidates.push(root.join(&relative));
    }
    for candidate in candidates {
        let Ok(dir) = candidate.canonicalize() else {
            continue;
        };
        // Component-wise: /srv/git-evil does not start with /srv/git.
        if dir == root || !dir.starts_with(&root) || !is_bare_repository(&dir) {
            continue;
        }
        let Some(below) = dir.strip_prefix(&root).ok().and_then(Path::to_str) else {
            continue;
        };
        let name = below.strip_suffix(".git").unwrap_or(below).to_string();
        if name.is_empty() {
            continue;
        }
        return Ok(RepoPath { dir, name });
    }
    Err(RepoPathError::NotFound)
}

/// The name `resolve` would give `typed` if it named a repository: its
/// segments below the root, without a trailing `.git`. What a missing
/// repository is shown and audited as.
pub fn name_of(root: &Path, typed: &str) -> Result<String, RepoPathError> {
    let typed = match Path::new(typed).strip_prefix(root) {
        Ok(below) if typed.starts_with('/') => below.to_str().ok_or(RepoPathError::NotFound)?,
        _ => typed,
    };
    let joined = parse(typed)?.join("/");
    Ok(joined
        .strip_suffix(".git")
        .filter(|n| !n.is_empty())
        .unwrap_or(&joined)
        .to_string())
}

/// A bare repository has `HEAD`, `objects/` and `refs/` at its top.
pub fn is_bare_repository(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

/// Every bare repository below `root` (not descending into repositories).
pub fn find_all(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if is_bare_repository(&dir) {
            found.push(dir);
            continue;
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            // Links are not followed: a link could lead out of the root or
            // into a loop.
            if entry.file_type()?.is_dir() && !entry.file_name().to_string_lossy().starts_with('.')
            {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests;
