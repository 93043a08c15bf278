//! Names people type: user names, token names.

/// A user name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or
/// `-` (so it can never be read as an option or a hidden file), and not `*`,
/// which means "everyone" in repository files.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        // The prefix of access tokens: a name never reads as one.
        && !name.starts_with("g2fa_")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid user name (1-64 of A-Z a-z 0-9 . _ -, not starting with . or - or g2fa_)",
            crate::system::names::shown_user(name).escape_default()
        ))
    }
}

/// A user name as messages, logs and audit rows show it: a string shaped
/// like an access token (`g2fa_…`, typed into the user-name field) is cut
/// to that public prefix, so that no token is ever echoed or stored as a
/// name.
pub fn shown_user(name: &str) -> std::borrow::Cow<'_, str> {
    if name.starts_with("g2fa_") {
        std::borrow::Cow::Borrowed("g2fa_…")
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// A token or key label: 1 to 100 printable characters.
pub fn check_label(label: &str) -> Result<(), String> {
    if label.trim().is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control)
    {
        Err("a name must be 1 to 100 printable characters".into())
    } else {
        Ok(())
    }
}

/// Ref patterns in one list (`protected_refs`, `require_hardware_key`), at
/// most: each push decision matches every pushed ref against each.
pub const MAX_REF_PATTERNS: usize = 100;

/// A ref pattern: starts with `refs/`, printable, no spaces, at most 256
/// bytes (`repo::glob` matches it).
pub fn check_ref_pattern(pattern: &str) -> Result<(), String> {
    if pattern.starts_with("refs/")
        && pattern.len() <= 256
        && !pattern.contains("..")
        && !pattern.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a ref pattern like refs/heads/main or refs/tags/v*",
            pattern.escape_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for good in ["alice", "bob.smith", "c_3-po", "A"] {
            assert!(check_user_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-rf",
            ".hidden",
            "a b",
            "*",
            "ali/ce",
            "é",
            &"x".repeat(65),
        ] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
    }
}
