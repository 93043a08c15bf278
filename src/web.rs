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
mod qr;
mod repos;
mod security_keys;
mod tokens;
mod twofa;

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

/// Routes one request. Every route is listed here, grouped by module.
pub fn handle(config: &Config, request: Request) -> Response {
    let mut cx = match context::Context::open(config, request) {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let path = cx.request.path.clone();
    let method = cx.request.method.clone();
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/style.css") => Response::css(layout::STYLE),
        ("GET", "/webauthn.js") => Response::script(security_keys::SCRIPT),
        ("GET", "/") => Response::redirect("/2fa"),
        ("GET", "/login") => account::login_form(&mut cx, None),
        ("POST", "/login") => account::login(&mut cx),
        ("POST", "/logout") => account::logout(&mut cx),
        ("GET", p) if p.starts_with("/set-password/") => account::set_password_form(&mut cx),
        ("POST", p) if p.starts_with("/set-password/") => account::set_password(&mut cx),
        ("GET", "/2fa/setup") => twofa::setup_intro(&mut cx),
        ("POST", "/2fa/setup/start") => twofa::setup_start(&mut cx),
        ("GET", "/2fa/setup/scan") => twofa::setup_scan(&mut cx),
        ("GET", "/2fa/setup/codes") => twofa::setup_codes(&mut cx),
        ("GET", "/2fa/setup/codes.txt") => twofa::setup_codes_download(&mut cx),
        ("GET", "/2fa/setup/confirm") => twofa::setup_confirm_form(&mut cx, None),
        ("POST", "/2fa/setup/confirm") => twofa::setup_confirm(&mut cx),
        ("GET", "/2fa/verify") => twofa::verify_form(&mut cx, None),
        ("POST", "/2fa/verify") => twofa::verify(&mut cx),
        ("GET", "/2fa") => twofa::manage(&mut cx),
        ("POST", "/2fa/leave") => twofa::leave(&mut cx),
        ("POST", "/2fa/always") => twofa::always(&mut cx),
        ("POST", "/2fa/recovery-codes") => twofa::regenerate(&mut cx),
        ("POST", "/2fa/remove") => twofa::remove(&mut cx),
        ("GET", "/2fa/tokens") => tokens::list(&mut cx, None),
        ("POST", "/2fa/tokens") => tokens::create(&mut cx),
        ("POST", "/2fa/tokens/revoke") => tokens::revoke(&mut cx),
        ("GET", "/2fa/keys") => keys::list(&mut cx, None),
        ("POST", "/2fa/keys") => keys::add(&mut cx),
        ("POST", "/2fa/keys/remove") => keys::remove(&mut cx),
        ("GET", "/2fa/security-keys") => security_keys::list(&mut cx, None),
        ("POST", "/2fa/security-keys") => security_keys::add(&mut cx),
        ("POST", "/2fa/security-keys/remove") => security_keys::remove(&mut cx),
        ("GET", "/2fa/repos") => repos::list(&mut cx, None),
        ("POST", "/2fa/repos") => repos::flag(&mut cx),
        ("GET", "/2fa/admin/users") => admin::users(&mut cx, None),
        ("POST", "/2fa/admin/users") => admin::user_action(&mut cx),
        ("GET", "/2fa/admin/audit") => admin::audit(&mut cx),
        _ => Response::error(404, "There is no such page."),
    };
    cx.finish(response)
}
