//! Checks of single config values, as serde reads them: each refuses a
//! value out of its documented range with a message naming the range.

use serde::Deserialize;

fn bounded_u32<'de, D: serde::Deserializer<'de>>(
    d: D,
    min: u32,
    max: u32,
) -> Result<u32, D::Error> {
    let value = i64::deserialize(d)?;
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            serde::de::Error::custom(format!("{value} is out of range ({min} .. {max})"))
        })
}

pub(super) fn recovery_codes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 0, 50)
}
pub(super) fn max_failures<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 1, 1000)
}
pub(super) fn expiry_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 1, 36_500)
}
pub(super) fn max_expiry_days<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 0, 36_500)
}
pub(super) fn skew<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded_u32(d, 0, 10)
}

pub(super) fn issuer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty()
        || text.len() > 64
        || text.contains(':')
        || text.chars().any(char::is_control)
    {
        return Err(serde::de::Error::custom(
            "must be 1 to 64 characters, without `:` or control characters",
        ));
    }
    Ok(text)
}

pub(super) fn public_url<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    let trimmed = text.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && !host.contains(|c: char| {
                    c.is_whitespace() || c.is_control() || "?#@".contains(c)
                }) =>
        {
            Ok(Some(trimmed.to_string()))
        }
        _ => Err(serde::de::Error::custom(format!(
            "`{text}` is not an http:// or https:// URL without query or credentials"
        ))),
    }
}

/// `[store] url`: empty, or a `postgres://` (`postgresql://`) url. The rest
/// of it is PostgreSQL's to judge when git2fa connects (`git2fa check`).
pub(super) fn store_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    let rest = text
        .strip_prefix("postgres://")
        .or_else(|| text.strip_prefix("postgresql://"));
    let shown = crate::system::url::without_password(&text);
    match rest {
        _ if text.is_empty() => Ok(text),
        // The config is readable by every local account (it holds no
        // secret): a password here would let any of them into the store.
        Some(_) if crate::system::url::has_password(&text) => {
            Err(serde::de::Error::custom(format!(
                "`{shown}` has a password in it: put the password in [store] password_file (mode 0600), not in the url"
            )))
        }
        Some(rest) if !rest.contains(|c: char| c.is_whitespace() || c.is_control()) => Ok(text),
        _ => Err(serde::de::Error::custom(format!(
            "`{shown}` is not a postgres:// url (leave it empty for SQLite in data_dir)"
        ))),
    }
}
