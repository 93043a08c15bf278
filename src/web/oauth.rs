//! Browser sign-in for git credential helpers: an OAuth 2.0 authorization
//! server for public clients (RFC 6749), authorization code with PKCE S256
//! only (RFC 7636), redirects only to the loopback interface (RFC 8252,
//! section 7.3), metadata at `/.well-known/oauth-authorization-server`
//! (RFC 8414). What the helper gets is a git2fa token marked `oauth` that
//! ends with the 2FA session the user consented from.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use sha2::{Digest, Sha256};

use super::context::{Context, guard};
use super::layout::{csrf_field, page};
use super::response::Response;
use crate::domain::{AuditRecord, Exchanged, OauthCode};
use crate::factor::{crypto, token};
use crate::system::pages;
use crate::system::time::format_utc;

/// How long a code may wait for its exchange.
const CODE_TTL: i64 = 60;

/// The longest redirect URI and `state` taken.
const MAX_URI: usize = 2000;

/// `/.well-known/oauth-authorization-server` (RFC 8414): where the
/// endpoints are and what they take.
pub fn metadata(cx: &mut Context) -> Response {
    if cx.config.oauth.clients.is_empty() {
        return Response::error(404, "There is no such page.");
    }
    let base = cx.config.public_url.trim_end_matches('/');
    Response::json(
        200,
        &serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}{}", pages::OAUTH_AUTHORIZE),
            "token_endpoint": format!("{base}{}", pages::OAUTH_TOKEN),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["git"],
        }),
    )
}

/// An authorization request that passed every check.
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
}

/// Why an authorization request is refused.
enum Problem {
    /// Before the redirect URI is known good: said on the page, never
    /// sent anywhere (RFC 6749, section 4.1.2.1).
    Here(String),
    /// Sent back to the client at its redirect URI.
    Back {
        redirect_uri: String,
        error: &'static str,
        description: &'static str,
        state: Option<String>,
    },
}

impl Problem {
    fn response(self) -> Response {
        match self {
            Problem::Here(message) => Response::error(400, &message),
            Problem::Back {
                redirect_uri,
                error,
                description,
                state,
            } => {
                let mut pairs = vec![("error", error), ("error_description", description)];
                if let Some(state) = state.as_deref() {
                    pairs.push(("state", state));
                }
                to_helper(&with_query(&redirect_uri, &pairs))
            }
        }
    }
}

/// `uri` with `pairs` added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", query.finish())
}

/// Whether `uri` is a redirect to this computer, as RFC 8252 (section 7.3)
/// has native apps listen: `http://127.0.0.1`, `http://[::1]` or
/// `http://localhost`, any port, any path; no user name, no fragment,
/// nothing but visible ASCII.
pub fn loopback_redirect(uri: &str) -> bool {
    if uri.len() > MAX_URI || !uri.bytes().all(|b| b.is_ascii_graphic()) || uri.contains('#') {
        return false;
    }
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => match authority.split_once(':') {
            Some((host, port)) => (host, &authority[host.len()..][..port.len() + 1]),
            None => (authority, ""),
        },
    };
    let port_ok = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => {
            !digits.is_empty()
                && digits.len() <= 5
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok_and(|p| p != 0)
        }
    };
    matches!(host, "127.0.0.1" | "[::1]" | "localhost") && port_ok
}

/// Checks an authorization request's parameters (from the query, or the
/// consent form), in the order RFC 6749 asks: the client and its redirect
/// URI first (errors shown here), the rest sent back to the client.
fn check_request(
    cx: &Context,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<AuthRequest, Problem> {
    let client_id = get("client_id").unwrap_or_default();
    if !cx.config.oauth.clients.contains(&client_id) {
        return Err(Problem::Here(format!(
            "The program that sent you here ({}) is not one this host lets sign in. Nothing was changed.",
            if client_id.is_empty() {
                "no client_id".to_string()
            } else {
                client_id.chars().take(100).collect::<String>()
            }
        )));
    }
    let redirect_uri = get("redirect_uri").unwrap_or_default();
    if !loopback_redirect(&redirect_uri) {
        return Err(Problem::Here(
            "The program that sent you here wants the answer sent to another computer, which this host never does (only to http://127.0.0.1, http://[::1] or http://localhost). Nothing was changed.".into(),
        ));
    }
    let state = get("state").filter(|s| !s.is_empty());
    let back = |error, description| Problem::Back {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: state.clone(),
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_URI) {
        return Err(Problem::Back {
            redirect_uri,
            error: "invalid_request",
            description: "state is too long",
            state: None,
        });
    }
    if get("response_type").as_deref() != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let challenge = get("code_challenge").unwrap_or_default();
    if challenge.is_empty() {
        return Err(back(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ));
    }
    // Without a method the challenge would be `plain` (RFC 7636, 4.3).
    if get("code_challenge_method").as_deref() != Some("S256") {
        return Err(back(
            "invalid_request",
            "only code_challenge_method=S256 is supported",
        ));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(back(
            "invalid_request",
            "code_challenge is not BASE64URL(SHA-256(verifier))",
        ));
    }
    Ok(AuthRequest {
        client_id,
        redirect_uri,
        state,
        challenge,
    })
}

/// The 2FA session the token would end with: one this browser opened (a
/// code or a key entered in the web page from this address), the newest.
/// A session opened elsewhere (over SSH from another computer, by an
/// admin) is not lent to a helper here: the user verifies in this browser.
fn open_session(cx: &Context, user_id: i64) -> Result<Option<(i64, i64)>, Response> {
    let sessions = cx
        .store
        .open_sessions(user_id, cx.now)
        .map_err(|e| cx.unavailable(&e))?;
    let here = cx.request.remote_addr.as_str();
    Ok(sessions
        .iter()
        .filter(|s| s.key_id.is_none() && s.remote_addr.as_deref() == Some(here))
        .max_by_key(|s| s.id)
        .map(|s| (s.id, s.expires_at)))
}

/// The authorization request as a GET of the page, to come back to after
/// logging in or verifying.
fn request_target(request: &AuthRequest) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &request.client_id)
        .append_pair("code_challenge", &request.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("redirect_uri", &request.redirect_uri)
        .append_pair("response_type", "code");
    if let Some(state) = &request.state {
        query.append_pair("state", state);
    }
    format!("{}?{}", pages::OAUTH_AUTHORIZE, query.finish())
}

/// Sends the browser on to the helper: a redirect; for `[::1]`, which a
/// Content-Security-Policy cannot name (its sources have no IPv6
/// literals), a page that moves on by itself, since `form-action` would
/// hold the redirect.
fn to_helper(uri: &str) -> Response {
    if !uri.starts_with("http://[::1]") {
        return Response::redirect(uri);
    }
    let page = html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={ "0;url=" (uri) };
                title { "git2fa" }
            }
            body { p { a href=(uri) { "Back to git" } } }
        }
    };
    Response::html(page)
}

/// The page between the helper and the token: log in if need be, verify
/// if no 2FA session is open, then consent.
pub fn authorize_form(cx: &mut Context) -> Response {
    let query = cx.request.query.clone();
    let request = match check_request(cx, &|name| query.get(name).cloned()) {
        Ok(request) => request,
        Err(problem) => return problem.response(),
    };
    let user = guard!(cx.full_user());
    let Some((_, until)) = guard!(open_session(cx, user.id)) else {
        return Response::redirect(&pages::verify_then(&cx.next_target()));
    };
    let csrf = csrf_field(&guard!(cx.csrf()));
    let addr = cx.request.remote_addr.clone();
    let body = html! {
        p {
            strong { (request.client_id) } " on the computer at " strong { (addr) }
            " asks to use git as " strong { (user.name) } "."
        }
        ul {
            li { "It gets: git over HTTPS as " (user.name) ", clone and push, on the repositories " (user.name) " may use." }
            li { "Until your 2FA session ends at " strong id="until" { (format_utc(until)) } "; then it stops working, and the next git command brings you here again." }
            li { "It is handed to " code { (request.redirect_uri) } " on that computer." }
        }
        p.hint {
            "Allow only if you have just run git on that computer. If you did not, deny: "
            "someone may be trying to get your access."
        }
        form.card method="post" action=(pages::OAUTH_AUTHORIZE) {
            (csrf)
            input type="hidden" name="response_type" value="code";
            input type="hidden" name="client_id" value=(request.client_id);
            input type="hidden" name="redirect_uri" value=(request.redirect_uri);
            @if let Some(state) = &request.state {
                input type="hidden" name="state" value=(state);
            }
            input type="hidden" name="code_challenge" value=(request.challenge);
            input type="hidden" name="code_challenge_method" value="S256";
            button type="submit" name="approve" value="yes" { "Allow" }
            " "
            button.secondary type="submit" name="approve" value="no" { "Deny" }
        }
    };
    // The consent's answer is a redirect to the helper: the page's form
    // may end there (`loopback_redirect` checked the origin).
    page(cx, "Sign in git", body).with_form_action(&origin_of(&request.redirect_uri))
}

/// `http://127.0.0.1:PORT` of a redirect URI `loopback_redirect` took.
fn origin_of(uri: &str) -> String {
    let rest = uri.trim_start_matches("http://");
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    format!("http://{authority}")
}

/// The consent: a code for the helper, sent to its loopback redirect.
pub fn authorize(cx: &mut Context) -> Response {
    guard!(cx.check_csrf());
    let form = cx.request.form.clone();
    let request = match check_request(cx, &|name| form.get(name).cloned()) {
        Ok(request) => request,
        Err(problem) => return problem.response(),
    };
    // Logged out or not verified since the page was shown: back to the
    // same request once that is done.
    let target = request_target(&request);
    let Some(user) = cx.user.clone() else {
        return Response::redirect(&format!(
            "/login?next={}",
            crate::system::url::url_component(&target)
        ));
    };
    if !user.is_enrolled() || !cx.code_entered_here() {
        return Response::redirect(&pages::verify_then(&target));
    }
    let back = |error: &'static str, description: &'static str| Problem::Back {
        redirect_uri: request.redirect_uri.clone(),
        error,
        description,
        state: request.state.clone(),
    };
    if cx.request.field("approve") != "yes" {
        cx.audit("oauth-authorize", "fail", "denied", None);
        return back("access_denied", "the user denied the request").response();
    }
    let Some((session_id, _)) = guard!(open_session(cx, user.id)) else {
        return Response::redirect(&pages::verify_then(&target));
    };
    let Ok(secret) = crypto::random_bytes::<32>() else {
        return cx.unavailable(&"no random bytes");
    };
    let code = URL_SAFE_NO_PAD.encode(secret);
    let stored = OauthCode {
        user_id: user.id,
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        challenge: request.challenge.clone(),
        session_id,
        remote_addr: Some(cx.request.remote_addr.clone()),
        expires_at: cx.now + CODE_TTL,
    };
    let now = cx.now;
    let record = cx.change_record("oauth-authorize", &request.client_id, None);
    if let Err(e) = cx.store.audited(record, |store| {
        store.add_oauth_code(&Sha256::digest(code.as_bytes()).into(), &stored, now)
    }) {
        return cx.unavailable(&e);
    }
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = request.state.as_deref() {
        pairs.push(("state", state));
    }
    to_helper(&with_query(&request.redirect_uri, &pairs))
}

/// An error of the token endpoint (RFC 6749, section 5.2).
fn token_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}

/// The client's id: HTTP Basic with an empty secret (what
/// golang.org/x/oauth2, and so git-credential-oauth, sends first), or
/// `client_id` in the form; both must agree. A public client has no
/// secret: one given is refused.
fn client_of(cx: &Context) -> Result<String, Response> {
    // RFC 6749, section 5.2: a 401 names the scheme the client may use.
    let invalid = |description| {
        Err(token_error(401, "invalid_client", description)
            .with_header("www-authenticate", "Basic realm=\"git2fa\""))
    };
    let from_form = cx.request.form.get("client_id").cloned();
    let from_header = match cx.request.authorization.as_deref() {
        None => None,
        Some(value) => {
            let Some(encoded) = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .map(|(_, encoded)| encoded)
            else {
                return invalid("only HTTP Basic client authentication is taken");
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return invalid("the Basic credentials are not id:secret");
            };
            // RFC 6749, section 2.3.1: form-encoded before base64.
            let unescape = |text: &str| -> String {
                form_urlencoded::parse(format!("x={text}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            if !secret.is_empty() {
                return invalid("a public client has no secret");
            }
            Some(unescape(id))
        }
    };
    let id = match (from_form, from_header) {
        (Some(a), Some(b)) if a != b => {
            return Err(token_error(
                400,
                "invalid_request",
                "client_id differs from the Basic credentials",
            ));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return invalid("client_id is missing"),
    };
    if !cx.config.oauth.clients.contains(&id) {
        return invalid("unknown client");
    }
    Ok(id)
}

/// Whether `verifier` answers `challenge` (RFC 7636, section 4.6). The
/// verifier should be 43 to 128 unreserved characters; any visible ASCII
/// is taken, since git-credential-oauth before 0.5 sends standard base64
/// (`+`, `/`, `=`), and what counts is the hash.
fn pkce_holds(verifier: &str, challenge: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_graphic())
        && crypto::constant_time_eq(
            URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
                .as_bytes(),
            challenge.as_bytes(),
        )
}

/// Audits a refusal of the token endpoint, naming the user whose code it
/// was when that is known, within the bound per address (anyone may post
/// there: `Store::append_refusal`).
fn audit_refusal(cx: &mut Context, reason: &str, user_id: Option<i64>) {
    let user = user_id
        .and_then(|id| cx.store.user_by_id(id).ok().flatten())
        .map(|u| u.name);
    let record = AuditRecord {
        at: cx.now,
        user,
        transport: "web".into(),
        action: "oauth-token".into(),
        outcome: "fail".into(),
        reason: reason.into(),
        remote_addr: Some(cx.request.remote_addr.clone()),
        ..AuditRecord::default()
    };
    if let Err(e) = cx.store.append_refusal(&record) {
        log::error!("web page: cannot write the audit row: {e}");
    }
}

/// `POST /2fa/oauth/token`: a code, its verifier and redirect URI for a
/// token. No cookie and no CSRF token: the helper calls it, and the code
/// with its verifier is the proof.
pub fn token(cx: &mut Context) -> Response {
    if cx.config.oauth.clients.is_empty() {
        return token_error(404, "invalid_request", "OAuth is off on this host");
    }
    let client = match client_of(cx) {
        Ok(client) => client,
        Err(response) => {
            audit_refusal(cx, "invalid-client", None);
            return response;
        }
    };
    if cx.request.field("grant_type") != "authorization_code" {
        audit_refusal(cx, "unsupported-grant-type", None);
        return token_error(
            400,
            "unsupported_grant_type",
            "only grant_type=authorization_code is supported (no refresh tokens: sign in again)",
        );
    }
    let code = cx.request.field("code").to_string();
    let code_hash: [u8; 32] = Sha256::digest(code.as_bytes()).into();
    let now = cx.now;
    let refused = token_error(
        400,
        "invalid_grant",
        "the code is unknown, used, expired or not this client's, or its verifier or redirect_uri is wrong",
    );
    // A code nobody was given costs no write lock.
    let owner = match cx.store.oauth_code_user(&code_hash) {
        Ok(Some(owner)) => owner,
        Ok(None) => {
            audit_refusal(cx, "unknown-code", None);
            return refused;
        }
        Err(e) => return cx.unavailable(&e),
    };
    let Ok(secret) = token::generate() else {
        return cx.unavailable(&"no random bytes");
    };
    let redirect_uri = cx.request.field("redirect_uri").to_string();
    let verifier = cx.request.field("code_verifier").to_string();
    let check = |stored: &OauthCode| -> Result<String, &'static str> {
        if stored.client_id != client {
            return Err("another-client");
        }
        if redirect_uri != stored.redirect_uri {
            return Err("redirect-uri");
        }
        if !pkce_holds(&verifier, &stored.challenge) {
            return Err("pkce");
        }
        let addr = stored.remote_addr.as_deref().unwrap_or("?");
        Ok(format!("oauth: {client} at {addr}"))
    };
    let name = cx.store.user_by_id(owner).ok().flatten().map(|u| u.name);
    let record = AuditRecord {
        at: now,
        user: name.clone(),
        transport: "web".into(),
        action: "token-create".into(),
        outcome: "ok".into(),
        reason: "oauth".into(),
        credential: Some("oauth-token".into()),
        remote_addr: Some(cx.request.remote_addr.clone()),
        detail: Some(format!("{client}; ends with its 2FA session")),
        ..AuditRecord::default()
    };
    let token_hash = token::hash(&secret);
    let exchanged = cx.store.audited(record, |store| {
        store.exchange_oauth_code(&code_hash, &token_hash, now, &check)
    });
    let until = match exchanged {
        Ok(Exchanged::Token { until, .. }) => until,
        Ok(Exchanged::Unknown) => {
            audit_refusal(cx, "unknown-code", None);
            return refused;
        }
        Ok(Exchanged::Refused { user_id, reason }) => {
            audit_refusal(cx, reason, Some(user_id));
            return refused;
        }
        Ok(Exchanged::Used { user_id, .. }) => {
            // The token it gave was revoked with its row (the store's).
            audit_refusal(cx, "used-code", Some(user_id));
            return refused;
        }
        Err(e) => return cx.unavailable(&e),
    };
    Response::json(
        200,
        &serde_json::json!({
            "access_token": secret,
            "token_type": "Bearer",
            "expires_in": until - now,
            "scope": "git",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_redirects() {
        for good in [
            "http://127.0.0.1:8765/",
            "http://127.0.0.1:8765",
            "http://127.0.0.1/callback?x=1",
            "http://[::1]:1/",
            "http://localhost:65535/cb",
        ] {
            assert!(loopback_redirect(good), "{good}");
        }
        for bad in [
            "https://127.0.0.1:8765/",
            "http://127.0.0.2:8765/",
            "http://127.0.0.1.evil.example/",
            "http://evil.example/?127.0.0.1",
            "http://user@127.0.0.1:80/",
            "http://127.0.0.1@evil.example/",
            "http://localhost.evil.example:80/",
            "http://[::1]evil/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:65536/",
            "http://127.0.0.1:80:80/",
            "http://127.0.0.1:/",
            "http://127.0.0.1:8765/#frag",
            "http://127.0.0.1:8765/a b",
            "//127.0.0.1/",
            "",
        ] {
            assert!(!loopback_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn pkce_s256_as_rfc_7636_appendix_b() {
        // The example of RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_holds(verifier, challenge));
        assert!(!pkce_holds(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(!pkce_holds(challenge, challenge), "plain is not S256");
        assert!(!pkce_holds("short", challenge));
    }
}
