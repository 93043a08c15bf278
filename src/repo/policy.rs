//! A repository's own policy: `git2fa.toml` beside `HEAD` in the bare
//! repository, written by its owner.
//!
//! No file means "everyone may read and write, no 2FA". A file that cannot be
//! read or parsed is an error, which the decision turns into a refusal.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::repo::glob;
use crate::system::config::HardwareKeys;
use crate::system::files::{FileError, io_reason, read_small_file, toml_error};
use crate::system::names::{check_ref_pattern, check_user_name};

pub const FILE_NAME: &str = "git2fa.toml";

/// What the repository requires 2FA for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Require {
    Off,
    Push,
    All,
}

impl Require {
    pub fn as_str(self) -> &'static str {
        match self {
            Require::Off => "off",
            Require::Push => "push",
            Require::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<Require> {
        match text {
            "off" => Some(Require::Off),
            "push" => Some(Require::Push),
            "all" => Some(Require::All),
            _ => None,
        }
    }
}

/// Who is in a list: everyone registered (`"*"`) or the named users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    Everyone,
    Only(Vec<String>),
}

impl Members {
    pub fn contains(&self, user: &str) -> bool {
        match self {
            Members::Everyone => true,
            Members::Only(names) => names.iter().any(|n| n == user),
        }
    }

    fn from_list(list: Vec<String>) -> Members {
        if list.iter().any(|n| n == "*") {
            Members::Everyone
        } else {
            Members::Only(list)
        }
    }

    fn describe(&self) -> String {
        match self {
            Members::Everyone => "everyone".into(),
            Members::Only(names) if names.is_empty() => "nobody".into(),
            Members::Only(names) => names.join(", "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPolicy {
    pub require: Require,
    /// With `require = "push"`: only pushes to these refs need 2FA. Empty =
    /// every push.
    pub protected_refs: Vec<String>,
    pub owners: Vec<String>,
    pub writers: Members,
    pub readers: Members,
    /// Whether a marked hardware key counts as 2FA here; `None`: as the
    /// host says (see `authz::decision::hardware_counts`).
    pub hardware_keys: Option<HardwareKeys>,
    /// Refs whose pushes need a marked hardware key with user
    /// verification, besides the host's `[policy] require_hardware_key`.
    pub require_hardware_key: Vec<String>,
    /// Whether a `git2fa.toml` was there.
    pub from_file: bool,
}

impl RepoPolicy {
    /// The policy of a repository that does not exist: nobody may read or
    /// write it.
    pub fn nobody() -> RepoPolicy {
        RepoPolicy {
            writers: Members::Only(Vec::new()),
            readers: Members::Only(Vec::new()),
            from_file: true,
            ..RepoPolicy::default()
        }
    }
}

impl Default for RepoPolicy {
    fn default() -> Self {
        RepoPolicy {
            require: Require::Off,
            protected_refs: Vec::new(),
            owners: Vec::new(),
            writers: Members::Everyone,
            readers: Members::Everyone,
            hardware_keys: None,
            require_hardware_key: Vec::new(),
            from_file: false,
        }
    }
}

/// Which refs a push touches, as far as the caller knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushedRefs {
    /// Not known yet (the SSH shim starts `git-receive-pack` before the
    /// client names its refs), and no git2fa hook will look at them: any
    /// push may touch a protected ref.
    Unknown,
    /// Not known yet, but the repository's git2fa hooks will decide each ref
    /// when they are known: protected refs are left to them.
    CheckedByHook,
    Known(Vec<String>),
}

impl RepoPolicy {
    /// The policy file of the bare repository at `repo_dir`.
    pub fn path(repo_dir: &Path) -> PathBuf {
        repo_dir.join(FILE_NAME)
    }

    /// Reads the repository's policy; no file is the open default.
    pub fn load(repo_dir: &Path) -> Result<RepoPolicy, FileError> {
        let path = Self::path(repo_dir);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RepoPolicy::default()),
            Err(e) => {
                return Err(FileError::new(
                    &path,
                    None,
                    format!("cannot read: {}", io_reason(&e)),
                ));
            }
            // A link could point the parser, and its error messages, at any
            // file the service can read.
            Ok(meta) if !meta.file_type().is_file() => {
                return Err(FileError::new(
                    &path,
                    None,
                    "must be a regular file, not a link",
                ));
            }
            Ok(_) => {}
        }
        let text = read_small_file(&path)?;
        RepoPolicy::parse(&path, &text)
    }

    /// Validates the text of a `git2fa.toml`; `path` is for messages.
    pub fn parse(path: &Path, text: &str) -> Result<RepoPolicy, FileError> {
        let raw: RawRepoFile =
            toml_edit::de::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let bad = |key: &str, message: String| {
            FileError::new(
                path,
                crate::system::files::line_of_key(text, &[key]),
                format!("{key}: {message}"),
            )
        };
        // Each push decision matches every pushed ref against every
        // pattern: a cap keeps that cost bounded whatever the file says.
        for (key, patterns) in [
            ("protected_refs", &raw.protected_refs),
            ("require_hardware_key", &raw.require_hardware_key),
        ] {
            if let Some(refs) = patterns
                && refs.len() > MAX_PROTECTED_REFS
            {
                return Err(bad(
                    key,
                    format!(
                        "{} patterns; at most {MAX_PROTECTED_REFS} are allowed (use refs/heads/release-* and the like)",
                        refs.len()
                    ),
                ));
            }
            for pattern in patterns.iter().flatten() {
                check_ref_pattern(pattern).map_err(|m| bad(key, m))?;
            }
        }
        for (key, list) in [
            ("owners", &raw.owners),
            ("writers", &raw.writers),
            ("readers", &raw.readers),
        ] {
            for name in list.iter().flatten() {
                if !(name == "*" && key != "owners") {
                    check_user_name(name).map_err(|m| bad(key, m))?;
                }
            }
        }
        Ok(RepoPolicy {
            require: raw.require.unwrap_or(Require::Off),
            protected_refs: raw.protected_refs.unwrap_or_default(),
            owners: raw.owners.unwrap_or_default(),
            writers: raw.writers.map_or(Members::Everyone, Members::from_list),
            readers: raw.readers.map_or(Members::Everyone, Members::from_list),
            hardware_keys: raw.hardware_keys,
            require_hardware_key: raw.require_hardware_key.unwrap_or_default(),
            from_file: true,
        })
    }

    pub fn is_owner(&self, user: &str) -> bool {
        self.owners.iter().any(|o| o == user)
    }

    pub fn can_write(&self, user: &str) -> bool {
        self.is_owner(user) || self.writers.contains(user)
    }

    pub fn can_read(&self, user: &str) -> bool {
        self.can_write(user) || self.readers.contains(user)
    }

    /// Whether this repository asks for 2FA on a read.
    pub fn requires_for_read(&self) -> bool {
        self.require == Require::All
    }

    /// Whether this repository asks for 2FA on a push of `refs`.
    pub fn requires_for_push(&self, refs: &PushedRefs) -> bool {
        match self.require {
            Require::Off => false,
            Require::All => true,
            Require::Push if self.protected_refs.is_empty() => true,
            Require::Push => match refs {
                // Unknown refs might include a protected one.
                PushedRefs::Unknown => true,
                PushedRefs::CheckedByHook => false,
                // Matching costs pattern × ref bytes; a push whose refs
                // would cost more than the budget is taken as touching a
                // protected ref (fail closed: it needs 2FA) unchecked.
                PushedRefs::Known(refs) => {
                    let patterns: usize = self.protected_refs.iter().map(String::len).sum();
                    let names: usize = refs.iter().map(String::len).sum();
                    patterns.saturating_mul(names) > MAX_MATCH_WORK
                        || refs.iter().any(|r| self.is_protected(r))
                }
            },
        }
    }

    /// The pushed refs that need a marked hardware key with user
    /// verification: those matching `host` (`[policy]
    /// require_hardware_key`) or this repository's own patterns. `None`:
    /// none. `Some` of an empty list: the refs are not known (no git2fa
    /// hook will look at them), so any may match; or there are more than
    /// the matching budget allows (fail closed, as `requires_for_push`).
    pub fn hardware_refs(&self, host: &[String], refs: &PushedRefs) -> Option<Vec<String>> {
        let patterns: Vec<&String> = host.iter().chain(&self.require_hardware_key).collect();
        if patterns.is_empty() {
            return None;
        }
        match refs {
            PushedRefs::CheckedByHook => None,
            PushedRefs::Unknown => Some(Vec::new()),
            PushedRefs::Known(refs) => {
                let pattern_bytes: usize = patterns.iter().map(|p| p.len()).sum();
                let names: usize = refs.iter().map(String::len).sum();
                if pattern_bytes.saturating_mul(names) > MAX_MATCH_WORK {
                    return Some(Vec::new());
                }
                let matched: Vec<String> = refs
                    .iter()
                    .filter(|r| patterns.iter().any(|p| glob::matches(p, r)))
                    .cloned()
                    .collect();
                (!matched.is_empty()).then_some(matched)
            }
        }
    }

    /// Whether `refname` is one of the protected refs.
    pub fn is_protected(&self, refname: &str) -> bool {
        self.protected_refs
            .iter()
            .any(|p| glob::matches(p, refname))
    }

    /// One paragraph for `git2fa repo show`.
    pub fn describe(&self) -> String {
        let mut out = format!("require: {}\n", self.require.as_str());
        if !self.protected_refs.is_empty() {
            out += &format!("protected_refs: {}\n", self.protected_refs.join(", "));
        }
        out += &format!(
            "owners: {}\nwriters: {}\nreaders: {}\n",
            if self.owners.is_empty() {
                "none".into()
            } else {
                self.owners.join(", ")
            },
            self.writers.describe(),
            self.readers.describe()
        );
        if let Some(hardware) = self.hardware_keys {
            out += &format!("hardware_keys: {}\n", hardware.as_str());
        }
        if !self.require_hardware_key.is_empty() {
            out += &format!(
                "require_hardware_key: {}\n",
                self.require_hardware_key.join(", ")
            );
        }
        if !self.from_file {
            out += "(no git2fa.toml: the defaults apply)\n";
        }
        out
    }
}

/// Pattern bytes × ref bytes a push decision matches at most (about a
/// tenth of a second); past it, the push needs 2FA without matching.
const MAX_MATCH_WORK: usize = 50_000_000;

/// Patterns in `protected_refs` (and in `require_hardware_key`), at most.
pub const MAX_PROTECTED_REFS: usize = crate::system::names::MAX_REF_PATTERNS;

/// Changes `require` (and, when given, `protected_refs`) in the repository's
/// `git2fa.toml`, keeping every comment and every other key as it was.
/// Creates the file when there is none. The result is validated before it
/// replaces the file, atomically.
pub fn set_requirement(
    repo_dir: &Path,
    require: Require,
    protected_refs: Option<&[String]>,
) -> Result<RepoPolicy, FileError> {
    let path = RepoPolicy::path(repo_dir);
    let text = match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Ok(meta) if meta.file_type().is_file() => read_small_file(&path)?,
        Ok(_) => {
            return Err(FileError::new(
                &path,
                None,
                "must be a regular file, not a link",
            ));
        }
        Err(e) => {
            return Err(FileError::new(
                &path,
                None,
                format!("cannot read: {}", io_reason(&e)),
            ));
        }
    };
    // Refuse to edit a file that is already broken: the owner should see
    // the error, not have it silently kept or dropped.
    RepoPolicy::parse(&path, &text)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FileError::new(&path, None, e.message().to_string()))?;
    doc["require"] = toml_edit::value(require.as_str());
    if let Some(refs) = protected_refs {
        if refs.is_empty() {
            doc.remove("protected_refs");
        } else {
            let array: toml_edit::Array = refs.iter().map(String::as_str).collect();
            doc["protected_refs"] = toml_edit::value(array);
        }
    }
    let new_text = doc.to_string();
    let policy = RepoPolicy::parse(&path, &new_text)?;
    write_atomically(&path, new_text.as_bytes())?;
    Ok(policy)
}

/// The repository's directory may be writable by its owner, who must not be
/// able to aim this write elsewhere: see `atomic_file`. The file keeps its
/// mode; a new one gets 0644 (every account that runs git reads it).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => meta.permissions().mode() & 0o777,
        _ => 0o644,
    };
    crate::system::atomic_file::replace(path, bytes, mode)
        .map_err(|e| FileError::new(path, None, format!("cannot write: {}", io_reason(&e))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepoFile {
    require: Option<Require>,
    protected_refs: Option<Vec<String>>,
    owners: Option<Vec<String>>,
    writers: Option<Vec<String>>,
    readers: Option<Vec<String>>,
    hardware_keys: Option<HardwareKeys>,
    require_hardware_key: Option<Vec<String>>,
}

#[cfg(test)]
mod tests;
