//! Replacing a file in a directory that another account may write (a
//! repository's `git2fa.toml`, its hooks; `data_dir`): the new content goes
//! to a temporary file with a random name, created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` and its mode set on the open file, then
//! renamed over the old one. So a planted symlink (at the temporary name or
//! at the file itself) is never written through: `rename(2)` replaces a
//! link, it does not follow it.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` with `mode`, atomically: readers see the old
/// file or the new one, and a crash leaves at most a stray temporary file.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let temp = temporary_name(path)?;
    let written = write_new(&temp, bytes, mode).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        // Only a file this call created has this random name.
        let _ = std::fs::remove_file(&temp);
    }
    written?;
    // The rename itself is durable once the directory is synced.
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `path`, which must not exist (not even as a dangling symlink),
/// with `mode` whatever the umask, and writes `bytes`, synced.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .mode(mode)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `.NAME.git2fa-RANDOM` beside `path`.
fn temporary_name(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: not a file name", path.display())))?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(path.with_file_name(format!(".{}.git2fa-{suffix}", name.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn replaces_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("file");
        symlink(&victim, &path).unwrap();
        replace(&path, b"new", 0o640).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn write_new_refuses_an_existing_name_or_a_dangling_link() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(write_new(&link, b"x", 0o600).is_err());
        assert!(!dir.path().join("nowhere").exists());
    }
}
