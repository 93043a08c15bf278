//! Links git2fa prints and redirects to.

/// Percent-encodes everything but unreserved characters and `/`.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A url for messages and logs: a password in its user part becomes `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn a_password_in_a_url_is_not_shown() {
        assert_eq!(
            without_password("postgres://git2fa:s3cret@db.example:5432/git2fa?sslmode=require"),
            "postgres://git2fa:***@db.example:5432/git2fa?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://git2fa@db.example/git2fa"),
            "postgres://git2fa@db.example/git2fa"
        );
        assert_eq!(without_password("not a url"), "not a url");
    }
}
