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

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits,
/// or for bytes that are not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// A url for messages and logs: a password in its user part or in its
/// query (`password=`) becomes `***`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}:***@{host}")
        }
        _ => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_string(),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Whether a url carries a password, in its user part or its query.
pub fn has_password(url: &str) -> bool {
    without_password(url) != url
}

#[cfg(test)]
mod tests {
    use super::{has_password, without_password};

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
        assert_eq!(
            without_password("postgres://g@db/x?sslmode=require&password=s3cret"),
            "postgres://g@db/x?sslmode=require&password=***"
        );
        assert!(has_password("postgres://g:p@db/x"));
        assert!(has_password("postgres://g@db/x?password=p"));
        assert!(!has_password("postgres://g@db/x?sslmode=verify-full"));
    }
}
