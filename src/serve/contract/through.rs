//! Each transport, driven in-process with a case of the contract table:
//! what its client would see, framing checked and taken off.

use std::sync::Arc;

use super::case::{Case, Credential, Op};
use super::host::{CLIENT, Host};
use crate::factor::token;
use crate::repo::path::RepoPath;
use crate::repo::policy::PushedRefs;
use crate::transport::cgi::{self, CgiRequest};
use crate::transport::hook::{self, HookKind, Push};
use crate::transport::shell::{Action, Connection, Streams};

/// What one transport did with a case: allowed, or the lines the user
/// read (their framing checked and taken off), and the HTTP status.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Seen {
    pub(super) allowed: bool,
    pub(super) lines: Vec<String>,
    pub(super) status: Option<u16>,
    /// serve's SSH server refused the key before any command.
    pub(super) login_refused: bool,
}

pub(super) fn repo_path(repo: &str) -> String {
    format!("{repo}.git")
}

pub(super) fn ssh_command(case: &Case) -> String {
    let service = match case.op {
        Op::Read => "git-upload-pack",
        Op::Push(_) => "git-receive-pack",
    };
    format!("{service} '{}'", repo_path(case.repo))
}

/// An `ERR` pkt-line's message.
pub(super) fn err_line(stdout: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stdout);
    let len = usize::from_str_radix(text.get(..4)?, 16).ok()?;
    let body = text.get(4..len)?;
    Some(body.strip_prefix("ERR ")?.trim_end().to_string())
}

/// SSH framing: git's `fatal: remote error:` line is the `ERR` pkt-line,
/// all that stderr says in one line (what clients other than git's command
/// line show).
pub(super) fn ssh_seen(allowed: bool, stdout: &[u8], stderr: &[u8]) -> Seen {
    let lines: Vec<String> = String::from_utf8_lossy(stderr)
        .lines()
        .map(str::to_string)
        .collect();
    if !allowed {
        let err = err_line(stdout).expect("a refusal starts with an ERR pkt-line");
        assert_eq!(
            err,
            crate::authz::messages::one_line(&lines),
            "the ERR line is the whole explanation, in one line"
        );
    }
    Seen {
        allowed,
        lines: if allowed { Vec::new() } else { lines },
        status: None,
        login_refused: false,
    }
}

pub(super) fn through_shell(host: &Host, case: &Case) -> Seen {
    let Credential::Key(who) = case.credential else {
        unreachable!()
    };
    let (key_id, fingerprint, _) = &host.keys[who];
    let connection = Connection {
        config: &host.config,
        key_id: *key_id,
        fingerprint: fingerprint.clone(),
        remote_addr: Some(CLIENT.into()),
        git_protocol: None,
        shows_stderr: true,
        hardware: None,
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let action = connection.handle(
        &ssh_command(case),
        &mut Streams {
            stdin: &mut std::io::empty(),
            stdout: &mut stdout,
            stderr: &mut stderr,
        },
    );
    let allowed = match action {
        Action::Git(_) => true,
        Action::Exit(code) => {
            assert_eq!(code, 1, "a refusal exits 1");
            false
        }
    };
    ssh_seen(allowed, &stdout, &stderr)
}

/// Accepts serve's host key: the test's own server.
struct TrustingClient;

impl russh::client::Handler for TrustingClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub(super) fn through_serve_ssh(
    host: &Host,
    case: &Case,
    runtime: &tokio::runtime::Runtime,
) -> Seen {
    let Credential::Key(who) = case.credential else {
        unreachable!()
    };
    let private = host.keys[who].2.clone();
    let command = ssh_command(case);
    let config = host.config.clone();
    runtime.block_on(async move {
        use crate::serve::operations::{Operations, Slots};
        let (server_end, client_end) = tokio::io::duplex(1 << 16);
        let host_key = russh::keys::PrivateKey::from(
            russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[42; 32]),
        );
        let server_config = Arc::new(crate::serve::ssh::russh_config(vec![host_key]));
        let logins: Slots<std::net::IpAddr> = Slots::default();
        let peer: std::net::SocketAddr = format!("{CLIENT}:50000").parse().unwrap();
        let login = logins.take(peer.ip(), 1).unwrap();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let client = crate::serve::ssh::Client::new(
            config,
            Some(peer),
            Operations::default(),
            (Arc::new(std::sync::atomic::AtomicBool::new(false)), login),
            (Slots::default(), 32),
            Slots::default(),
            stopped,
        );
        let server = tokio::spawn(async move {
            if let Ok(session) = russh::server::run_stream(server_config, server_end, client).await
            {
                let _ = session.await;
            }
        });
        let mut session = russh::client::connect_stream(
            Arc::new(russh::client::Config::default()),
            client_end,
            TrustingClient,
        )
        .await
        .unwrap();
        let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new(private), None);
        let auth = session.authenticate_publickey("git", key).await.unwrap();
        if !auth.success() {
            // The server turned the key down at log-in: what a client sees
            // is ssh's own refusal, before any command.
            server.abort();
            return Seen {
                allowed: false,
                lines: Vec::new(),
                status: None,
                login_refused: true,
            };
        }
        let mut channel = session.channel_open_session().await.unwrap();
        channel.exec(true, command).await.unwrap();
        channel.eof().await.unwrap();
        let (mut stdout, mut stderr, mut code) = (Vec::new(), Vec::new(), None);
        while let Some(message) = channel.wait().await {
            match message {
                russh::ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                russh::ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                russh::ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
                _ => {}
            }
        }
        let _ = session
            .disconnect(russh::Disconnect::ByApplication, "", "")
            .await;
        server.abort();
        // An allowed command is git's own: it ran, and was told the client
        // has nothing to send.
        let refused = code == Some(1) && err_line(&stdout).is_some();
        ssh_seen(!refused, &stdout, &stderr)
    })
}

pub(super) fn basic(case: &Case, host: &Host) -> Option<String> {
    use base64::Engine;
    let (user, password) = match case.credential {
        Credential::Token(name) => ("alice".to_string(), host.tokens[name].clone()),
        Credential::Password(user, password) => (user.to_string(), password.to_string()),
        Credential::Nothing => return None,
        Credential::Key(_) => unreachable!(),
    };
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    ))
}

pub(super) fn http_query(case: &Case) -> &'static str {
    match case.op {
        Op::Read => "service=git-upload-pack",
        Op::Push(_) => "service=git-receive-pack",
    }
}

pub(super) fn through_cgi(host: &Host, case: &Case) -> Seen {
    let request = CgiRequest {
        method: "GET".into(),
        path_info: format!("/{}/info/refs", repo_path(case.repo)),
        query: http_query(case).into(),
        authorization: basic(case, host),
        remote_addr: Some(CLIENT.into()),
        user_agent: Some("git/2.47.3".into()),
        ..Default::default()
    };
    match cgi::handle(&host.config, &request) {
        cgi::Response::Git(_) => Seen {
            allowed: true,
            lines: Vec::new(),
            status: None,
            login_refused: false,
        },
        cgi::Response::Advertised { .. } | cgi::Response::Lfs => {
            panic!("git's command line is answered with text, not an ERR advertisement")
        }
        response @ cgi::Response::Text { .. } => {
            // What the web server gets on the CGI's standard output.
            let mut out = Vec::new();
            response.write_to(&mut out).unwrap();
            let out = String::from_utf8(out).unwrap();
            let (head, body) = out.split_once("\r\n\r\n").expect("a CGI header block");
            let status: u16 = head
                .strip_prefix("Status: ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse().ok())
                .expect("a Status line first");
            assert!(head.contains("Content-Type: text/plain"), "{head}");
            assert_eq!(
                head.contains("WWW-Authenticate: Basic"),
                status == 401,
                "{head}"
            );
            Seen {
                allowed: false,
                lines: body.lines().map(str::to_string).collect(),
                status: Some(status),
                login_refused: false,
            }
        }
    }
}

pub(super) fn through_serve_http(
    host: &Host,
    case: &Case,
    runtime: &tokio::runtime::Runtime,
) -> Seen {
    use tower_service::Service;
    let mut router = crate::serve::router::router(
        host.config.clone(),
        crate::serve::operations::Operations::default(),
    );
    let mut request = axum::http::Request::builder()
        .method("GET")
        .uri(format!(
            "/git/{}/info/refs?{}",
            repo_path(case.repo),
            http_query(case)
        ))
        .header("host", "git.example.com")
        .header("user-agent", "git/2.47.3");
    if let Some(auth) = basic(case, host) {
        request = request.header("authorization", auth);
    }
    let mut request = request.body(axum::body::Body::empty()).unwrap();
    let peer: std::net::SocketAddr = format!("{CLIENT}:50000").parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    runtime.block_on(async move {
        let response = router.call(request).await.unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            assert!(header("content-type").starts_with("text/plain"));
            assert_eq!(
                header("www-authenticate").starts_with("Basic"),
                status == 401
            );
        }
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body).into_owned();
        if status == 200 {
            Seen {
                allowed: true,
                lines: Vec::new(),
                status: None,
                login_refused: false,
            }
        } else {
            Seen {
                allowed: false,
                lines: text.lines().map(str::to_string).collect(),
                status: Some(status),
                login_refused: false,
            }
        }
    })
}

/// The `update` hook for the pushed ref, as git runs it after a shim
/// allowed the push: the identity comes from the shim's variables.
pub(super) fn through_hook(host: &Host, case: &Case) -> Seen {
    let Op::Push(refname) = case.op else {
        unreachable!()
    };
    let mut store = host.store();
    let (user, transport, key_id, token_id) = match case.credential {
        Credential::Key(who) => (who, "ssh", Some(host.keys[who].0), None),
        Credential::Token(name) => {
            let id = store
                .token_by_hash(&token::hash(&host.tokens[name]))
                .unwrap()
                .map(|t| t.id);
            ("alice", "http", None, id)
        }
        Credential::Password(user, _) => (user, "http", None, None),
        Credential::Nothing => unreachable!(),
    };
    let vars: std::collections::HashMap<&str, String> = [
        Some(("GIT2FA_USER", user.to_string())),
        Some(("GIT2FA_TRANSPORT", transport.to_string())),
        key_id.map(|id| ("GIT2FA_KEY_ID", id.to_string())),
        token_id.map(|id| ("GIT2FA_TOKEN_ID", id.to_string())),
        Some(("GIT2FA_REMOTE_ADDR", CLIENT.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let pusher = hook::identify(&host.config, &store, &|name| vars.get(name).cloned()).unwrap();
    let repo = RepoPath {
        dir: host.config.repos_root.join(repo_path(case.repo)),
        name: case.repo.to_string(),
    };
    let args = vec![refname.to_string(), "0".repeat(40), "1".repeat(40)];
    let mut lines = Vec::new();
    let allowed = hook::decide(
        &host.config,
        &mut store,
        Push {
            kind: HookKind::Update,
            repo: &repo,
            refs: PushedRefs::Known(vec![refname.to_string()]),
            pusher,
            args: &args,
            update_follows: true,
        },
        &mut |line| lines.push(line.to_string()),
    );
    if !allowed {
        assert_eq!(
            lines.first().map(String::as_str),
            Some(format!("git2fa: refused {refname}:").as_str()),
            "update names the ref it refuses"
        );
        lines.remove(0);
    }
    Seen {
        allowed,
        lines,
        status: None,
        login_refused: false,
    }
}
