//! The HTTP side of `git2fa serve`: the router (smart HTTP under `/git/`,
//! the web page elsewhere) and the connections it serves, with a header
//! timeout and a cap per client address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use tokio::sync::watch;

use super::error::ServeError;
use super::git_http;
use super::operations::{CLOSE_GRACE, Operations, ServerState, Slots, client_key, wait_for_stop};
use crate::system::config::Config;

/// The largest form body accepted.
const MAX_BODY: usize = 64 * 1024;

/// The axum router: smart HTTP under `/git/`, the web page elsewhere.
pub fn router(config: Arc<Config>, operations: Operations) -> axum::Router {
    let git = format!("{}/{{*path}}", git_http::PREFIX);
    axum::Router::new()
        .route(&git, axum::routing::any(git_http::handle))
        .fallback(page)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(ServerState { config, operations })
}

/// Web page requests answered at once, at most: each takes a thread of the
/// blocking pool while it reads and writes the store. Past it, 503: the
/// pool's other users (SSH log-ins, the hook and store sockets, git's
/// decisions) keep their share.
const MAX_PAGES: usize = 256;

async fn page(
    State(ServerState { config, .. }): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    static PAGES: std::sync::OnceLock<Operations> = std::sync::OnceLock::new();
    let pages = PAGES.get_or_init(Operations::default);
    if pages.running() >= MAX_PAGES {
        super::operations::Limit::WebPages.refused(Some(peer.ip()));
        log::warn!("web: {MAX_PAGES} page requests under way; refused one");
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy. Try again in a moment.\n",
        )
            .into_response();
    }
    let _page = pages.start();
    crate::web::dispatch(config, peer, method, uri, headers, body)
        .await
        .into_response()
}

/// Web connections from one address at most (a browser opens about six;
/// `[web] trusted_proxies` are not counted: they carry everyone).
const MAX_WEB_CONNECTIONS_PER_ADDRESS: usize = 64;
/// How long a web client has to send a request's headers, from the first
/// byte (hyper's `header_read_timeout`), and an idle kept-alive
/// connection has before its next request.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves the web page and `/git/` over HTTP/1.1 until the server stops.
/// Not `axum::serve`: it sets no header timeout, so half-sent requests
/// stayed open for ever and used up the process's descriptors.
pub async fn serve_web(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    trusted_proxies: Vec<std::net::IpAddr>,
    stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let per_address = Slots::default();
    let open = Operations::default();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = wait_for_stop(stopped.clone()) => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: pause, go on.
                    log::warn!("web accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let proxy = trusted_proxies.contains(&peer.ip().to_canonical());
        let slot = match proxy {
            true => None,
            false => match per_address.take(client_key(peer), MAX_WEB_CONNECTIONS_PER_ADDRESS) {
                Some(slot) => Some(slot),
                None => {
                    super::operations::Limit::WebConnectionsPerAddress.refused(Some(peer.ip()));
                    log::warn!(
                        "web: {MAX_WEB_CONNECTIONS_PER_ADDRESS} connections open from {}; refusing one",
                        peer.ip()
                    );
                    continue;
                }
            },
        };
        // Small answers (a refusal, ref advertisements) go out at once,
        // not after a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let connection = open.start();
        let app = app.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _connection = connection;
            serve_web_connection(tcp, peer, app, stopped).await;
        });
    }
    // Requests under way finish; idle connections close at once.
    let _ = tokio::time::timeout(CLOSE_GRACE, open.idle()).await;
    Ok(())
}

async fn serve_web_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    stopped: watch::Receiver<bool>,
) {
    use tower_service::Service;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        // What the handlers' `ConnectInfo` extractor reads.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let mut app = app.clone();
        async move { app.call(request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                log::debug!("web connection from {peer}: {e}");
            }
        }
        _ = wait_for_stop(stopped) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
