//! The web page's addresses that more than the page itself names: where
//! git's refusals, the shell, the hooks and the CLI send users, and the
//! page's own routes and redirects. One place, so that a page that moves
//! moves everywhere.

use super::url::url_component;

/// Manage 2FA: the page's start.
pub const MANAGE: &str = "/2fa";
/// Verify: open a 2FA session.
pub const VERIFY: &str = "/2fa/verify";
/// Set up 2FA.
pub const SETUP: &str = "/2fa/setup";
/// Personal access tokens.
pub const TOKENS: &str = "/2fa/tokens";
/// SSH keys.
pub const KEYS: &str = "/2fa/keys";
/// OAuth (browser sign-in for git credential helpers): where the browser
/// goes, where the helper exchanges its code, and the metadata (RFC 8414).
pub const OAUTH_AUTHORIZE: &str = "/2fa/oauth/authorize";
pub const OAUTH_TOKEN: &str = "/2fa/oauth/token";
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";

/// Where a user verifies, for `repo` when given: what git's refusals say.
pub fn verify_url(public_url: &str, repo: Option<&str>) -> String {
    match repo {
        Some(repo) => format!("{public_url}{VERIFY}?repo={}", url_component(repo)),
        None => format!("{public_url}{VERIFY}"),
    }
}

/// Where a user sets up 2FA.
pub fn setup_url(public_url: &str) -> String {
    format!("{public_url}{SETUP}")
}

/// Where a user adds and marks SSH keys.
pub fn keys_url(public_url: &str) -> String {
    format!("{public_url}{KEYS}")
}

/// Where a user manages personal access tokens.
pub fn tokens_url(public_url: &str) -> String {
    format!("{public_url}{TOKENS}")
}

/// The verify page, sending the user on to `next` (a path of the page)
/// once the code is in.
pub fn verify_then(next: &str) -> String {
    format!("{VERIFY}?next={}", url_component(next))
}
