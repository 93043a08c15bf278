//! `git2fa serve` under load: git operations held open by the hundred do
//! not starve its other work, and past its limit it refuses at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::postgres::{self, Cluster};
use crate::harness::web_server::{Server, free_port};
use crate::harness::{Host, http};

/// Accepts the test server's host key.
struct Trusting;

impl russh::client::Handler for Trusting {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A logged-in SSH connection to serve with `key`.
async fn login(port: u16, key: &Path) -> russh::client::Handle<Trusting> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut session =
        russh::client::connect_stream(Arc::new(russh::client::Config::default()), stream, Trusting)
            .await
            .unwrap();
    let private = russh::keys::load_secret_key(key, None).unwrap();
    let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new(private), None);
    let auth = session.authenticate_publickey("git", key).await.unwrap();
    assert!(auth.success(), "the key was refused");
    session
}

/// Starts `command` on a new channel and waits for its first output:
/// what came (stdout, stderr), and the channel, held open.
async fn start(
    session: &russh::client::Handle<Trusting>,
    command: &str,
) -> (Vec<u8>, Vec<u8>, russh::Channel<russh::client::Msg>) {
    let mut channel = session.channel_open_session().await.unwrap();
    channel.exec(true, command).await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.is_empty() && err.is_empty() {
        match tokio::time::timeout_at(deadline, channel.wait()).await {
            Ok(Some(russh::ChannelMsg::Data { data })) => out.extend_from_slice(&data),
            Ok(Some(russh::ChannelMsg::ExtendedData { data, .. })) => err.extend_from_slice(&data),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => panic!("{command}: no output within 60 s"),
        }
    }
    (out, err, channel)
}

// Attack (or a busy day): git operations held open on the embedded SSH
// server (a slow network, a client that stops reading, someone holding
// connections on purpose) each held a thread of the blocking pool for
// their whole life, and that pool served everything else: with 512 held,
// the web page gave no answer in 15 s and new SSH log-ins timed out. Git
// now runs without a thread of the pool; past `[limits] git_operations`
// an operation is refused at once with a message; the web page, log-ins,
// the hook socket and the store socket go on.
#[test]
fn held_git_operations_starve_nothing_and_one_more_is_refused_as_busy() {
    if !postgres::available() || !crate::serve::ssh_client_available() {
        return;
    }
    let cluster = Cluster::start();
    let url = cluster.database("load");
    let (web, ssh) = (free_port(), free_port());
    let host = Host::build(
        &format!("http://127.0.0.1:{web}"),
        "",
        &format!(
            "[web]\nlisten = \"127.0.0.1:{web}\"\n[ssh]\nlisten = \"127.0.0.1:{ssh}\"\n\
             [daemon]\nsocket = {socket:?}\n[limits]\ngit_operations = 512\n{store}",
            socket = "/git2fa-placeholder/hook.sock",
            store = Host::postgres_store(&cluster, &url),
        ),
    );
    let hook_socket = host.dir.path().join("hook.sock");
    let text = std::fs::read_to_string(&host.config).unwrap();
    std::fs::write(
        &host.config,
        text.replace(
            "\"/git2fa-placeholder/hook.sock\"",
            &format!("{hook_socket:?}"),
        ),
    )
    .unwrap();
    host.bare_repo("team/app.git");
    let users = ["u1", "u2", "u3", "u4", "u5"];
    let keys: Vec<PathBuf> = users
        .iter()
        .map(|user| {
            host.add_user(user);
            host.add_key(user)
        })
        .collect();
    let _server = Server::start_with(&host, web, &[ssh]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let command = "git-upload-pack 'team/app.git'";
    // 4 accounts × 32 connections × 4 channels: each upload-pack has sent
    // its advertisement and waits for the client, which sends nothing.
    let held = runtime.block_on(async {
        let mut held = Vec::new();
        for key in &keys[..4] {
            for _ in 0..32 {
                let session = login(ssh, key).await;
                let mut channels = Vec::new();
                for _ in 0..4 {
                    let (out, err, channel) = start(&session, command).await;
                    assert!(
                        out.windows(12).any(|w| w == b"# service=gi") || out.len() > 4,
                        "no advertisement: {:?} {:?}",
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&err)
                    );
                    channels.push(channel);
                }
                held.push((session, channels));
            }
        }
        held
    });
    assert_eq!(held.iter().map(|(_, c)| c.len()).sum::<usize>(), 512);

    // The web page answers.
    let started = Instant::now();
    let page = http::get(web, "/login");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the page took {:?}",
        started.elapsed()
    );
    // A fifth account logs in; its operation, past the limit, is refused
    // at once, saying why.
    let (out, err, busy) = runtime.block_on(async {
        let started = Instant::now();
        let session = login(ssh, &keys[4]).await;
        let (mut out, mut err, mut channel) = start(&session, command).await;
        // All it says, to the channel's end.
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(10), channel.wait()).await
        {
            match message {
                russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
                russh::ChannelMsg::ExtendedData { data, .. } => err.extend_from_slice(&data),
                _ => {}
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the log-in and refusal took {:?}",
            started.elapsed()
        );
        drop(channel);
        (out, err, session)
    });
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("git2fa: the server is busy: 512 git operations are under way"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out).contains("ERR git2fa: the server is busy"),
        "{out:?}"
    );
    drop(busy);
    // A hook question is answered (root is nobody git2fa knows: refused).
    let question = git2fa::transport::hook_question::Question {
        kind: git2fa::transport::hook_question::HookKind::PreReceive,
        repo_dir: host.root.join("team/app.git"),
        refs: vec!["refs/heads/main".into()],
        args: vec![],
    };
    let started = Instant::now();
    let mut said = Vec::new();
    let answered = git2fa::transport::hook_question::ask(&hook_socket, &question, &mut |line| {
        said.push(line.to_string())
    });
    assert!(matches!(answered, Ok(false)), "{answered:?} {said:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // And the store socket answers an admin command.
    let started = Instant::now();
    let listed = host.git2fa(&["user", "list"]).ok();
    assert!(listed.stdout.contains("u5"), "{listed:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The refusal was audited.
    let audit = host.git2fa(&["audit", "--user", "u5"]).ok().stdout;
    assert!(audit.contains("busy"), "{audit}");
    drop(held);
}
