//! The web page: log in, enrol, verify, recovery codes, tokens, SSH keys,
//! repository flags, admin pages. Server-rendered HTML, no JavaScript, one
//! stylesheet. Each request runs its store work on tokio's blocking pool, on
//! a store opened for it.

mod account;
mod admin;
mod html;
mod keys;
mod page;
mod qr;
mod repos;
mod tokens;
mod twofa;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;

use crate::config::Config;

pub use page::{Request, Response};

/// The largest form body accepted.
const MAX_BODY: usize = 64 * 1024;

/// The axum router serving the web page.
pub fn router(config: Arc<Config>) -> axum::Router {
    axum::Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(config)
}

async fn dispatch(
    State(config): State<Arc<Config>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let request = Request::new(
        &method,
        &uri,
        &headers,
        &body,
        peer,
        &config.web.trusted_proxies,
    );
    let handled = tokio::task::spawn_blocking(move || handle(&config, request)).await;
    match handled {
        Ok(response) => response.into_response(),
        Err(_) => {
            Response::error(500, "Something went wrong; nothing was changed.").into_response()
        }
    }
}

/// Routes one request. Every route is listed here, grouped by module.
pub fn handle(config: &Config, request: Request) -> Response {
    let mut cx = match page::Context::open(config, request) {
        Ok(cx) => cx,
        Err(response) => return response,
    };
    let path = cx.request.path.clone();
    let method = cx.request.method.clone();
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/style.css") => Response::css(html::STYLE),
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
        ("GET", "/2fa/repos") => repos::list(&mut cx, None),
        ("POST", "/2fa/repos") => repos::flag(&mut cx),
        ("GET", "/2fa/admin/users") => admin::users(&mut cx, None),
        ("POST", "/2fa/admin/users") => admin::user_action(&mut cx),
        ("GET", "/2fa/admin/audit") => admin::audit(&mut cx),
        _ => Response::error(404, "There is no such page."),
    };
    cx.finish(response)
}

/// Serves the web page on `[web] listen` until SIGTERM or SIGINT.
pub fn serve(config: Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let listen = config.web.listen;
    let config = Arc::new(config);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        log::info!("web page on http://{listen}");
        eprintln!("git2fa: serving the web page on http://{listen}");
        let app = router(config).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("the web server stopped: {e}"))
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server runs until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
