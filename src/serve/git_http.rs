//! Smart HTTP under `/git/` in `git2fa serve`: the request becomes the CGI
//! request `git2fa-http` would get, goes through the same [`http::handle`],
//! and an allowed request runs `git http-backend` with both bodies streamed
//! (a push is not held in memory, nor is a clone).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::operations::{ServerState, Underway};

/// How much of git's output a response reads at once, at most.
const CHUNK: usize = 32 * 1024;
use crate::authz::messages;
use crate::transport::cgi::{self, CgiRequest};

/// Where smart HTTP lives on the server.
pub const PREFIX: &str = "/git";

/// The CGI header block of `git http-backend` is read up to this size.
const MAX_HEADER: usize = 64 * 1024;

pub async fn handle(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let cgi = match cgi_request(&state, peer, &method, &uri, &headers) {
        Ok(cgi) => cgi,
        Err(message) => {
            // As git2fa-http's: a request git2fa cannot read, recorded.
            let client =
                crate::web::client_addr(peer.ip(), &headers, &state.config.web.trusted_proxies);
            let path = crate::domain::clipped(uri.path());
            super::operations::audit_refusal(
                &state.config,
                crate::store::AuditRecord {
                    at: crate::system::time::now(),
                    transport: "http".into(),
                    action: "http-request".into(),
                    outcome: "refuse".into(),
                    reason: "bad-request".into(),
                    remote_addr: Some(client.to_string()),
                    detail: Some(format!("{message}: {method} {path}")),
                    ..Default::default()
                },
            );
            return text(StatusCode::BAD_REQUEST, &[message.into()], false);
        }
    };
    // One limit for the whole server: past it, refused at once.
    let running = state.operations.running();
    if running >= state.config.limits.git_operations() {
        let what = messages::Busy::GitOperations(running);
        log::warn!("/git/: {running} git operations under way; refused one");
        super::operations::audit_busy(
            &state.config,
            crate::store::AuditRecord {
                transport: "http".into(),
                remote_addr: cgi.remote_addr.clone(),
                detail: Some(format!("{} {}", cgi.method, cgi.path_info)),
                ..Default::default()
            },
            what,
        );
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            &messages::busy(&state.config, what),
            false,
        );
    }
    let config = state.config.clone();
    let decided = tokio::task::spawn_blocking(move || {
        let response = cgi::handle(&config, &cgi);
        (response, cgi)
    })
    .await;
    let (response, cgi) = match decided {
        Ok(decided) => decided,
        Err(e) => return refuse_unavailable(&e),
    };
    match response {
        cgi::Response::Text {
            status,
            lines,
            challenge,
        } => text(
            StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
            &lines,
            challenge,
        ),
        cgi::Response::Lfs => {
            let mut response = (StatusCode::NOT_IMPLEMENTED, cgi::lfs_body()).into_response();
            let headers = response.headers_mut();
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/vnd.git-lfs+json"),
            );
            headers.insert("cache-control", HeaderValue::from_static("no-store"));
            response
        }
        cgi::Response::Advertised { service, lines } => {
            let mut response =
                (StatusCode::OK, cgi::advertised_body(service, &lines)).into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&format!(
                "application/x-git-{}-advertisement",
                service.subcommand()
            )) {
                headers.insert("content-type", value);
            }
            headers.insert("cache-control", HeaderValue::from_static("no-store"));
            response
        }
        cgi::Response::Git(invocation) => {
            let operation = state.operations.start();
            let max = Duration::from_secs(state.config.policy.max_git_duration.max(1) as u64);
            match backend(invocation, body, (operation, max), cgi.method == "POST").await {
                Ok(response) => response,
                Err(e) => refuse_unavailable(&format!("git http-backend: {e}")),
            }
        }
    }
}

/// The CGI variables `git2fa-http` reads, from the request.
fn cgi_request(
    state: &ServerState,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<CgiRequest, &'static str> {
    let header = |name: &str| -> Result<Option<String>, &'static str> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|v| Some(v.to_string()))
                .map_err(|_| "git2fa: a request header is not UTF-8"),
        }
    };
    let path = uri.path();
    let path_info = path.strip_prefix(PREFIX).unwrap_or(path);
    let client = crate::web::client_addr(peer.ip(), headers, &state.config.web.trusted_proxies);
    // The path arrives percent-encoded; CGI's PATH_INFO is decoded.
    let path_info = crate::system::url::percent_decode(path_info)
        .ok_or("git2fa: the path is not valid UTF-8")?;
    Ok(CgiRequest {
        method: method.as_str().to_string(),
        path_info,
        query: uri.query().unwrap_or("").to_string(),
        authorization: header("authorization")?,
        remote_addr: Some(client.to_string()),
        content_type: header("content-type")?,
        content_length: header("content-length")?,
        content_encoding: header("content-encoding")?,
        git_protocol: header("git-protocol")?,
        user_agent: header("user-agent")?,
    })
}

fn text(status: StatusCode, lines: &[String], challenge: bool) -> Response {
    let mut body = String::new();
    for line in lines {
        body.push_str(line);
        body.push('\n');
    }
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    if challenge {
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"git2fa\", charset=\"UTF-8\""),
        );
    }
    response
}

/// The check failed: 403 with the words every transport uses.
fn refuse_unavailable(cause: &dyn std::fmt::Display) -> Response {
    let lines = messages::check_unavailable(None, cause);
    text(StatusCode::FORBIDDEN, &lines, false)
}

/// Runs `git http-backend`: the request body streams to its input, its
/// CGI headers become the response's, and the rest streams back.
///
/// Like every git operation here, it runs at most `max_git_duration`: then
/// git is killed and the response cut off.
async fn backend(
    invocation: crate::transport::exec::GitInvocation,
    body: Body,
    (operation, max): (Underway, Duration),
    has_body: bool,
) -> std::io::Result<Response> {
    let deadline = tokio::time::Instant::now() + max;
    let mut command = tokio::process::Command::from(invocation.command());
    command
        .stdin(if has_body {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    if let Some(mut input) = child.stdin.take() {
        tokio::spawn(async move {
            let mut chunks = body.into_data_stream();
            while let Some(chunk) = chunks.next().await {
                let Ok(chunk) = chunk else { break };
                if input.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            // Dropping the pipe is git's end of input.
        });
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no pipe from git"))?;
    let mut reader = BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut headers = Vec::new();
    let mut seen = 0usize;
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout_at(
            deadline,
            (&mut reader)
                .take((MAX_HEADER - seen) as u64)
                .read_line(&mut line),
        )
        .await
        .map_err(|_| std::io::Error::other("git http-backend ran past max_git_duration"))??;
        seen += n;
        if n == 0 || seen >= MAX_HEADER {
            return Err(std::io::Error::other(
                "git http-backend ended before its headers did",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| std::io::Error::other(format!("bad CGI header {line:?}")))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| std::io::Error::other(format!("bad CGI status {value:?}")))?;
        } else if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.push((name, value));
        }
    }
    // The body: what git writes next, until it closes its output. The
    // operation counts as under way until then, and git is waited for.
    let stream = futures_util::stream::unfold(
        (reader, child, Some(operation), BytesMut::new()),
        move |(mut reader, mut child, operation, mut buffer)| async move {
            operation.as_ref()?;
            // One allocation serves many chunks: each is split off the
            // buffer's front, and the buffer grows again once used up.
            if buffer.capacity() - buffer.len() < CHUNK / 4 {
                buffer.reserve(CHUNK);
            }
            match tokio::time::timeout_at(deadline, reader.read_buf(&mut buffer)).await {
                Ok(Ok(0)) => {
                    let _ = child.wait().await;
                    None
                }
                Ok(Ok(_)) => {
                    let chunk: Bytes = buffer.split().freeze();
                    Some((Ok(chunk), (reader, child, operation, buffer)))
                }
                Ok(Err(e)) => Some((Err(e), (reader, child, None, buffer))),
                Err(_) => {
                    log::warn!("stopped a git operation over HTTP at max_git_duration");
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    let cut = std::io::Error::other("max_git_duration");
                    Some((Err(cut), (reader, child, None, buffer)))
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    for (name, value) in headers {
        response.headers_mut().append(name, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use crate::system::url::percent_decode;

    #[test]
    fn paths_decode_once_and_bad_escapes_are_refused() {
        assert_eq!(
            percent_decode("/team%2Fapp.git/info/refs").as_deref(),
            Some("/team/app.git/info/refs")
        );
        // Decoded once: an encoded `%` stays a `%` for the path check.
        assert_eq!(percent_decode("/a%252e%252e").as_deref(), Some("/a%2e%2e"));
        for bad in ["/a%", "/a%4", "/a%+A", "/a%zz", "/a%ff"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }
}
