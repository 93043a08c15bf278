//! One request of the web page: what came in, who sent it (the web session
//! and its user), and the guards every page uses.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

use crate::authz::decision::Transport;
use crate::factor::crypto::{self, SecretKey};
use crate::store::{AuditRecord, Location, Store, User, WebSession};
use crate::system::config::Config;
use crate::system::time::now;

use super::response::Response;

/// A logged-in web session lasts this long.
const SESSION_TTL: i64 = 12 * 3600;
/// An anonymous one (holding the log-in form's CSRF token) this long.
const ANONYMOUS_TTL: i64 = 3600;
/// Sensitive changes need a code entered this recently.
pub const RECENT_CODE: i64 = 300;

/// What the page needs of an HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
    pub cookies: HashMap<String, String>,
    pub remote_addr: String,
    /// The `Authorization` header (the OAuth token endpoint reads a
    /// client's Basic credentials there).
    pub authorization: Option<String>,
}

impl Request {
    pub fn new(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        peer: SocketAddr,
        trusted_proxies: &[std::net::IpAddr],
    ) -> Request {
        let pairs = |bytes: &[u8]| -> HashMap<String, String> {
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
        let is_form = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let cookies = headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Request {
            method: method.as_str().to_string(),
            path: uri.path().to_string(),
            query: pairs(uri.query().unwrap_or("").as_bytes()),
            form: if is_form { pairs(body) } else { HashMap::new() },
            cookies,
            remote_addr: client_addr(peer.ip(), headers, trusted_proxies).to_string(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }

    pub fn field(&self, name: &str) -> &str {
        self.form.get(name).map_or("", String::as_str)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the right-most address in `X-Forwarded-For` that is not a trusted
/// proxy (the left part of that header is whatever the client wrote).
pub fn client_addr(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().to_string())
        .collect();
    // From the right: trusted proxies are skipped; the first other entry is
    // the client. An entry that is not an address stops the walk (what is
    // left of it the client may have written): the peer's address stands.
    for entry in entries.iter().rev() {
        match entry.parse::<std::net::IpAddr>().map(|a| a.to_canonical()) {
            Ok(addr) if trusted.contains(&addr) => continue,
            Ok(addr) => return addr,
            Err(_) => return peer,
        }
    }
    peer
}

/// The store, the key or the random source failed: the cause goes to the
/// log, the user is told whom to ask.
fn unavailable_page(cause: &dyn std::fmt::Display) -> Response {
    log::error!("web page: 2FA check unavailable: {cause}");
    Response::error(503, crate::authz::messages::UNAVAILABLE)
}

/// A request with its store, web session and user.
pub struct Context<'a> {
    pub config: &'a Config,
    pub store: Store,
    pub request: Request,
    pub now: i64,
    pub session: Option<WebSession>,
    pub user: Option<User>,
    /// A cookie to set with the response (a new session).
    set_cookie: Option<String>,
    /// A held change to make once this request's code is in: its path and
    /// form (`twofa::verify`; `web::handle` routes it).
    pub replay: Option<(String, HashMap<String, String>)>,
}

/// The changes that may be held for a fresh code while the user verifies,
/// and what the verify page calls each. (Adding a security key is not one:
/// its answer belongs to a ceremony of its own page.)
pub const HELD_CHANGES: &[(&str, &str)] = &[
    ("/2fa/recovery-codes", "Making new recovery codes"),
    ("/2fa/always", "Changing \"always use 2FA\""),
    ("/2fa/remove", "Removing 2FA"),
    (
        "/2fa/app/move",
        "Moving your authenticator app to a new phone",
    ),
    ("/2fa/tokens", "Creating an access token"),
    ("/2fa/keys", "Adding an SSH key"),
    ("/2fa/keys/remove", "Removing an SSH key"),
    ("/2fa/keys/hardware", "Marking a security key"),
    ("/2fa/security-keys/remove", "Removing a security key"),
    ("/2fa/repos", "Changing what a repository requires"),
    ("/2fa/admin/users", "Changing a user"),
];

/// A change posted without a code from the last five minutes, held in the
/// verify page's address and forms: the path it was posted to, its form
/// (without the CSRF token) and a seal that binds both to the web session
/// that posted it, so that a link made by someone else cannot smuggle a
/// change into the code a user enters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub then: String,
    pub carry: String,
    pub seal: String,
}

impl Held {
    /// What the verify page says the change is.
    pub fn what(&self) -> &'static str {
        HELD_CHANGES
            .iter()
            .find(|(path, _)| *path == self.then)
            .map_or("This change", |(_, what)| what)
    }

    /// The held form, to post once the code is in.
    pub fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(self.carry.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

fn session_hash(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

fn random_hex<const N: usize>() -> Result<String, Response> {
    let bytes = crypto::random_bytes::<N>()
        .map_err(|_| Response::error(503, "The random source failed."))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl<'a> Context<'a> {
    pub fn open(config: &'a Config, request: Request) -> Result<Context<'a>, Response> {
        let store = Store::connect(&Location::of(config)).map_err(|e| unavailable_page(&e))?;
        let t = now();
        let mut cx = Context {
            config,
            store,
            request,
            now: t,
            session: None,
            user: None,
            set_cookie: None,
            replay: None,
        };
        if let Some(cookie) = cx.request.cookies.get(cx.cookie_name()).cloned() {
            cx.session = cx
                .store
                .web_session(&session_hash(&cookie), t)
                .map_err(|e| cx.unavailable(&e))?;
        }
        if let Some(user_id) = cx.session.as_ref().and_then(|s| s.user_id) {
            cx.user = cx
                .store
                .user_by_id(user_id)
                .map_err(|e| cx.unavailable(&e))?
                .filter(|u| u.enabled);
            if cx.user.is_none() {
                cx.session = None;
            }
        }
        Ok(cx)
    }

    pub fn unavailable(&self, cause: &dyn std::fmt::Display) -> Response {
        unavailable_page(cause)
    }

    /// `__Host-` and `Secure` behind HTTPS; a plain name on plain HTTP,
    /// where browsers would refuse a `Secure` cookie.
    pub fn https(&self) -> bool {
        self.config.public_url.starts_with("https://")
    }

    fn cookie_name(&self) -> &'static str {
        if self.https() {
            "__Host-git2fa"
        } else {
            "git2fa"
        }
    }

    /// Starts a new web session, dropping the current one: a cookie from
    /// before a log-in never carries over. `row` (a log-in's) commits with
    /// the new session.
    pub fn start_session(
        &mut self,
        user_id: Option<i64>,
        row: Option<AuditRecord>,
    ) -> Result<(), Response> {
        if let Some(old) = self.session.take() {
            self.store
                .delete_web_session(&old.id)
                .map_err(|e| self.unavailable(&e))?;
        }
        let cookie = random_hex::<32>()?;
        let ttl = if user_id.is_some() {
            SESSION_TTL
        } else {
            ANONYMOUS_TTL
        };
        let session = WebSession {
            id: session_hash(&cookie),
            user_id,
            csrf: random_hex::<16>()?,
            created_at: self.now,
            expires_at: self.now + ttl,
            code_at: None,
            pending_secret: None,
            pending_codes: None,
            remote_addr: Some(self.request.remote_addr.clone()),
            ceremony: None,
        };
        match row {
            Some(row) => self.store.audited(row, |s| s.add_web_session(&session)),
            None => self.store.add_web_session(&session),
        }
        .map_err(|e| self.unavailable(&e))?;
        let secure = if self.https() { "; Secure" } else { "" };
        self.set_cookie = Some(format!(
            "{}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}",
            self.cookie_name()
        ));
        self.session = Some(session);
        self.user = match user_id {
            Some(id) => self
                .store
                .user_by_id(id)
                .map_err(|e| self.unavailable(&e))?,
            None => None,
        };
        Ok(())
    }

    /// A code was entered: the session steps up, under a new cookie (the
    /// old one stops working), and remembers when.
    pub fn step_up(&mut self) -> Result<(), Response> {
        let user_id = self.session.as_ref().and_then(|s| s.user_id);
        // The new session keeps the old one's ceremonies, as the store
        // has them now, so that a key's answer used in the old one stays
        // used (a replay).
        let kept = match self.session.as_ref().map(|s| s.id) {
            Some(old) => self
                .store
                .web_session(&old, self.now)
                .map_err(|e| self.unavailable(&e))?
                .and_then(|s| s.ceremony),
            None => None,
        };
        self.start_session(user_id, None)?;
        let id = self.session.as_ref().map(|s| s.id).unwrap_or_default();
        self.store
            .carry_web_ceremonies(&id, kept.as_deref())
            .map_err(|e| self.unavailable(&e))?;
        self.store
            .set_web_code_at(&id, self.now)
            .map_err(|e| self.unavailable(&e))?;
        if let Some(session) = self.session.as_mut() {
            session.code_at = Some(self.now);
        }
        Ok(())
    }

    /// Ends the web session (log-out), with `row` in its transaction.
    pub fn end_session(&mut self, row: Option<AuditRecord>) -> Result<(), Response> {
        if let Some(old) = self.session.take() {
            match row {
                Some(row) => self.store.audited(row, |s| s.delete_web_session(&old.id)),
                None => self.store.delete_web_session(&old.id),
            }
            .map_err(|e| self.unavailable(&e))?;
        }
        self.user = None;
        self.set_cookie = Some(format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            self.cookie_name(),
            if self.https() { "; Secure" } else { "" }
        ));
        Ok(())
    }

    /// The session's CSRF token, making an anonymous session if needed
    /// (the log-in form carries one too).
    pub fn csrf(&mut self) -> Result<String, Response> {
        if self.session.is_none() {
            self.start_session(None, None)?;
        }
        Ok(self
            .session
            .as_ref()
            .map(|s| s.csrf.clone())
            .unwrap_or_default())
    }

    /// Every POST carries the session's CSRF token.
    pub fn check_csrf(&self) -> Result<(), Response> {
        let sent = self.request.field("csrf");
        match &self.session {
            Some(session)
                if crypto::constant_time_eq(session.csrf.as_bytes(), sent.as_bytes())
                    && !sent.is_empty() =>
            {
                Ok(())
            }
            _ => Err(Response::error(
                403,
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            )),
        }
    }

    fn to_login(&self) -> Response {
        Response::redirect(&format!(
            "/login?next={}",
            crate::system::url::url_component(&self.next_target())
        ))
    }

    /// Where to come back to after logging in or verifying.
    pub fn next_target(&self) -> String {
        if self.request.path == crate::system::pages::OAUTH_AUTHORIZE {
            // The whole request, each value encoded (slashes too, so that
            // `safe_next` takes it back).
            let mut query = form_urlencoded::Serializer::new(String::new());
            let mut names: Vec<&String> = self.request.query.keys().collect();
            names.sort();
            for name in names {
                query.append_pair(name, &self.request.query[name]);
            }
            return format!("{}?{}", self.request.path, query.finish());
        }
        let mut target = self.request.path.clone();
        let mut separator = '?';
        for name in ["repo", "link"] {
            if let Some(value) = self.request.param(name) {
                target += &format!(
                    "{separator}{name}={}",
                    crate::system::url::url_component(value)
                );
                separator = '&';
            }
        }
        target
    }

    /// A user who logged in with a password (possibly not past 2FA yet).
    pub fn logged_in(&self) -> Result<User, Response> {
        self.user.clone().ok_or_else(|| self.to_login())
    }

    /// A user who is all the way in: enrolled users have entered a code in
    /// this web session (a half-logged-in session can do nothing but
    /// verify), users not enrolled are sent to the set-up wizard.
    pub fn full_user(&self) -> Result<User, Response> {
        let user = self.logged_in()?;
        if !user.is_enrolled() {
            return Err(Response::redirect("/2fa/setup"));
        }
        if self.session.as_ref().and_then(|s| s.code_at).is_none() {
            return Err(Response::redirect(&crate::system::pages::verify_then(
                &self.next_target(),
            )));
        }
        Ok(user)
    }

    /// A code was entered in this web session (a user all the way in).
    pub fn code_entered_here(&self) -> bool {
        self.session.as_ref().and_then(|s| s.code_at).is_some()
    }

    /// Sensitive changes: a code entered in the last five minutes.
    pub fn recent_code(&self) -> bool {
        self.session
            .as_ref()
            .and_then(|s| s.code_at)
            .is_some_and(|at| self.now - at <= RECENT_CODE)
    }

    /// A code was entered in this web session, but longer than five
    /// minutes ago: what sends a user to verify while the padlock is closed.
    pub fn recent_code_expired(&self) -> bool {
        self.session
            .as_ref()
            .and_then(|s| s.code_at)
            .is_some_and(|at| self.now - at > RECENT_CODE)
    }

    /// Sensitive changes: without a code from the last five minutes, the
    /// user is sent to verify and then back to `back_to`; a change posted
    /// is held (`Held`) and made as soon as the code is in.
    pub fn require_recent_code(&self, back_to: &str) -> Result<(), Response> {
        if self.recent_code() {
            return Ok(());
        }
        let component = crate::system::url::url_component;
        let mut target = crate::system::pages::verify_then(back_to);
        if let Some(held) = self.hold() {
            target += &format!(
                "&then={}&carry={}&held={}",
                component(&held.then),
                component(&held.carry),
                held.seal
            );
        }
        Err(Response::redirect(&target))
    }

    /// This request as a held change, when it is a POST of one.
    fn hold(&self) -> Option<Held> {
        if self.request.method != "POST"
            || !HELD_CHANGES
                .iter()
                .any(|(path, _)| *path == self.request.path)
        {
            return None;
        }
        let mut fields: Vec<(&String, &String)> = self
            .request
            .form
            .iter()
            .filter(|(k, _)| k.as_str() != "csrf")
            .collect();
        fields.sort();
        let carry = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let then = self.request.path.clone();
        let seal = self.held_seal(&then, &carry)?;
        Some(Held { then, carry, seal })
    }

    /// The held change this request carries (the verify page's address, or
    /// its forms), when its seal is this web session's.
    pub fn held(&self) -> Option<Held> {
        let get = |name: &str| {
            self.request
                .param(name)
                .unwrap_or(self.request.field(name))
                .to_string()
        };
        let (then, carry, seal) = (get("then"), get("carry"), get("held"));
        if !HELD_CHANGES.iter().any(|(path, _)| *path == then) {
            return None;
        }
        let expected = self.held_seal(&then, &carry)?;
        crypto::constant_time_eq(expected.as_bytes(), seal.as_bytes()).then_some(Held {
            then,
            carry,
            seal,
        })
    }

    /// SHA-256 over the change and, last, the session's CSRF token (a
    /// secret of this browser's session; last, so nothing can be appended).
    fn held_seal(&self, then: &str, carry: &str) -> Option<String> {
        let csrf = &self.session.as_ref()?.csrf;
        if csrf.is_empty() {
            return None;
        }
        let digest = Sha256::new()
            .chain_update(b"git2fa held change\0")
            .chain_update(then.as_bytes())
            .chain_update([0])
            .chain_update(carry.as_bytes())
            .chain_update([0])
            .chain_update(csrf.as_bytes())
            .finalize();
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether the user has an open git 2FA session (the padlock).
    pub fn git_session_until(&self) -> Option<i64> {
        let user = self.user.as_ref()?;
        let sessions = self.store.open_sessions(user.id, self.now).ok()?;
        sessions.iter().map(|s| s.expires_at).max()
    }

    pub fn secret_key(&self) -> Result<SecretKey, Response> {
        SecretKey::load(&self.config.secret_key_path()).map_err(|e| self.unavailable(&e))
    }

    /// The row of a change made in the web page, by the signed-in user,
    /// for `Store::audited`: committed with the change, or not at all.
    pub fn change_record(&self, action: &str, reason: &str, repo: Option<&str>) -> AuditRecord {
        AuditRecord {
            at: self.now,
            user: self.user.as_ref().map(|u| u.name.clone()),
            transport: Transport::Web.as_str().into(),
            repo: repo.map(str::to_string),
            action: action.into(),
            outcome: "ok".into(),
            reason: reason.into(),
            remote_addr: Some(self.request.remote_addr.clone()),
            ..AuditRecord::default()
        }
    }

    /// One audit row for something done in the web page (an event, such
    /// as a log-in; a change writes its row with `change_record`).
    pub fn audit(&mut self, action: &str, outcome: &str, reason: &str, repo: Option<&str>) {
        let user = self.user.as_ref().map(|u| u.name.clone());
        self.audit_for(user.as_deref(), action, outcome, reason, repo);
    }

    /// One audit row naming `user` (a failed log-in names who was tried).
    pub fn audit_for(
        &mut self,
        user: Option<&str>,
        action: &str,
        outcome: &str,
        reason: &str,
        repo: Option<&str>,
    ) {
        let record = AuditRecord {
            at: self.now,
            user: user.map(str::to_string),
            transport: Transport::Web.as_str().into(),
            repo: repo.map(str::to_string),
            action: action.into(),
            outcome: outcome.into(),
            reason: reason.into(),
            remote_addr: Some(self.request.remote_addr.clone()),
            ..AuditRecord::default()
        };
        if let Err(e) = self.store.append_audit(&record) {
            log::error!("web page: cannot write the audit row: {e}");
        }
    }

    /// Adds the session cookie, if a new one was made.
    pub fn finish(self, mut response: Response) -> Response {
        if let Some(cookie) = self.set_cookie {
            response.headers.push(("set-cookie".into(), cookie));
        }
        response
    }
}

/// Unwraps a guard: `guard!(cx.full_user())` returns its response early.
macro_rules! guard {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}
pub(crate) use guard;

#[cfg(test)]
mod tests;
