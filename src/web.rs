//! The web page: log in, enrol, verify, recovery codes, security keys,
//! tokens, SSH keys, repository flags, admin pages. Server-rendered HTML
//! (maud), one stylesheet, and one small script that only the security
//! key's ceremony needs. Each request runs its store work on tokio's
//! blocking pool, on a store opened for it.
//!
//! `context` is one request with its session and user, `response` what goes
//! back, `layout` the frame every page shares; the other modules are pages.

mod context;
mod layout;
mod response;

mod account;
mod admin;
mod keys;
mod oauth;
mod qr;
mod repos;
mod security_keys;
mod setup;
mod tokens;
mod twofa;

use crate::system::pages;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};

use crate::system::config::Config;

pub use context::{Request, client_addr};
pub use response::Response;

/// Answers one request of the page, given what `serve`'s router took from
/// it. The store work runs on tokio's blocking pool.
pub async fn dispatch(
    config: Arc<Config>,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request::new(
        &method,
        &uri,
        &headers,
        &body,
        peer,
        &config.web.trusted_proxies,
    );
    let handled = tokio::task::spawn_blocking(move || handle(&config, request)).await;
    handled.unwrap_or_else(|_| Response::error(500, "Something went wrong; nothing was changed."))
}

/// Answers one request: routes it, then makes a change that was held for
/// a fresh code when this request brought the code (`context::Held`).
pub fn handle(config: &Config, request: Request) -> Response {
    let mut cx = match context::Context::open(config, request) {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let mut response = route(&mut cx);
    if let Some((path, form)) = cx.replay.take() {
        cx.request.method = "POST".into();
        cx.request.path = path;
        cx.request.query.clear();
        cx.request.form = form;
        response = route(&mut cx);
    }
    cx.finish(response)
}

/// Routes one request. Every route is listed here, grouped by module.
fn route(cx: &mut context::Context) -> Response {
    let path = cx.request.path.clone();
    let method = cx.request.method.clone();
    match (method.as_str(), path.as_str()) {
        ("GET", "/style.css") => Response::css(layout::STYLE),
        ("GET", "/webauthn.js") => Response::script(security_keys::SCRIPT),
        ("GET", "/") => Response::redirect("/2fa"),
        ("GET", "/login") => account::login_form(cx, None),
        ("POST", "/login") => account::login(cx),
        ("POST", "/logout") => account::logout(cx),
        ("GET", p) if p.starts_with("/set-password/") => account::set_password_form(cx),
        ("POST", p) if p.starts_with("/set-password/") => account::set_password(cx),
        ("GET", "/2fa/setup") => setup::setup_intro(cx),
        ("POST", "/2fa/setup/start") => setup::setup_start(cx),
        ("GET", "/2fa/setup/scan") => setup::setup_scan(cx),
        ("GET", "/2fa/setup/codes") => setup::setup_codes(cx),
        ("GET", "/2fa/setup/codes.txt") => setup::setup_codes_download(cx),
        ("GET", "/2fa/setup/confirm") => setup::setup_confirm_form(cx, None),
        ("POST", "/2fa/setup/confirm") => setup::setup_confirm(cx),
        ("GET", pages::VERIFY) => twofa::verify_form(cx, None),
        ("POST", pages::VERIFY) => twofa::verify(cx),
        ("GET", "/2fa") => twofa::manage(cx),
        ("POST", "/2fa/leave") => twofa::leave(cx),
        ("POST", "/2fa/always") => twofa::always(cx),
        ("POST", "/2fa/recovery-codes") => twofa::regenerate(cx),
        ("POST", "/2fa/remove") => twofa::remove(cx),
        ("POST", "/2fa/app/move") => setup::move_start(cx),
        ("GET", "/2fa/tokens") => tokens::list(cx, None),
        ("POST", "/2fa/tokens") => tokens::create(cx),
        ("POST", "/2fa/tokens/revoke") => tokens::revoke(cx),
        ("GET", "/.well-known/oauth-authorization-server") => oauth::metadata(cx),
        ("GET", "/2fa/oauth/authorize") => oauth::authorize_form(cx),
        ("POST", "/2fa/oauth/authorize") => oauth::authorize(cx),
        ("POST", "/2fa/oauth/token") => oauth::token(cx),
        ("GET", "/2fa/keys") => keys::list(cx, None),
        ("POST", "/2fa/keys") => keys::add(cx),
        ("POST", "/2fa/keys/remove") => keys::remove(cx),
        ("POST", "/2fa/keys/hardware") => keys::mark(cx),
        ("GET", "/2fa/security-keys") => security_keys::list(cx, None),
        ("POST", "/2fa/security-keys") => security_keys::add(cx),
        ("POST", "/2fa/security-keys/remove") => security_keys::remove(cx),
        ("GET", "/2fa/repos") => repos::list(cx, None),
        ("POST", "/2fa/repos") => repos::flag(cx),
        ("GET", "/2fa/admin/users") => admin::users(cx, None),
        ("POST", "/2fa/admin/users") => admin::user_action(cx),
        ("GET", "/2fa/admin/audit") => admin::audit(cx),
        _ => Response::error(404, "There is no such page."),
    }
}
