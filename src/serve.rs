//! `git2fa serve`: one process with the web page, smart HTTP under `/git/`,
//! the embedded SSH server, and (when configured) the Unix socket that
//! answers hooks run by other accounts. SIGTERM or SIGINT stops new work;
//! git operations under way finish first.

pub mod decide_socket;
pub mod error;
pub mod git_http;
pub mod hook_socket;
pub mod metrics;
pub mod operations;
pub mod router;
pub mod ssh;
pub mod ssh_channel;
mod ssh_run;
pub mod store_socket;

#[cfg(test)]
mod contract;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use error::ServeError;
use operations::{CLOSE_GRACE, Operations, Slots, client_key, wait_for_stop};

use crate::system::config::Config;

/// SSH connections at most, authenticated or not.
const MAX_SSH_CONNECTIONS: usize = 256;
/// SSH connections still logging in from one address, at most (OpenSSH's
/// `MaxStartups` starts refusing at 10 in all; this is per address, so
/// that one client cannot take every slot).
const MAX_SSH_LOGINS_PER_ADDRESS: usize = 16;
/// SSH connections of one user at most, once authenticated.
const MAX_SSH_CONNECTIONS_PER_USER: usize = 32;
/// How long an SSH client has to authenticate, from the moment its TCP
/// connection is accepted (banner and key exchange included).
const LOGIN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an idle thread of the blocking pool lives. Each keeps the
/// stack its work touched (SQLite's parser and planner take about 280 KiB
/// of it); with tokio's default of 10 s, the 300 threads a soak left
/// behind held 90 MiB after the clients had gone. A new thread costs tens
/// of microseconds; under steady load none is idle this long.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// The sockets, bound before the runtime starts (so that `demo` can bind
/// port 0 and print the ports it got).
pub struct Listeners {
    pub web: std::net::TcpListener,
    pub ssh: Option<std::net::TcpListener>,
    pub hooks: Option<std::os::unix::net::UnixListener>,
    /// `<data_dir>/store.sock`, with a PostgreSQL store.
    pub store: Option<std::os::unix::net::UnixListener>,
    /// `[metrics] listen`, when set.
    pub metrics: Option<std::net::TcpListener>,
    /// `<data_dir>/decide.sock`, where this host's shims and hooks ask.
    pub decide: Option<std::os::unix::net::UnixListener>,
}

impl Listeners {
    /// Binds `[web] listen`, `[ssh] listen`, `[daemon] socket` and, with
    /// a PostgreSQL store, the store socket.
    pub fn bind(config: &Config) -> Result<Listeners, ServeError> {
        let web = bind_tcp(config.web.listen)?;
        let ssh = config.ssh.listen.map(bind_tcp).transpose()?;
        let hooks = config
            .daemon
            .socket
            .as_deref()
            .map(hook_socket::bind)
            .transpose()?;
        let store = match config.store.url.is_empty() {
            true => None,
            false => match store_socket::bind(&store_socket_path(config)) {
                Ok(listener) => Some(listener),
                Err(e) => {
                    if let (Some(path), Some(_)) = (&config.daemon.socket, &hooks) {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(e);
                }
            },
        };
        let metrics = config.metrics.listen.map(bind_tcp).transpose()?;
        // Without it the shims decide themselves: a warning, not a stop.
        let decide = match decide_socket::bind(&decide_socket::path(config)) {
            Ok(listener) => Some(listener),
            Err(e) => {
                log::warn!("{e}; the shims and hooks of this host decide themselves");
                None
            }
        };
        Ok(Listeners {
            web,
            ssh,
            hooks,
            store,
            metrics,
            decide,
        })
    }

    pub fn web_addr(&self) -> Result<SocketAddr, ServeError> {
        self.web
            .local_addr()
            .map_err(ServeError::io("the web listener"))
    }

    pub fn ssh_addr(&self) -> Result<Option<SocketAddr>, ServeError> {
        self.ssh
            .as_ref()
            .map(|l| l.local_addr().map_err(ServeError::io("the SSH listener")))
            .transpose()
    }
}

fn store_socket_path(config: &Config) -> std::path::PathBuf {
    config.data_dir.join(crate::store::SOCKET)
}

pub fn bind_tcp(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(ServeError::io(format!("cannot listen on {addr}")))?;
    listener
        .set_nonblocking(true)
        .map_err(ServeError::io(addr))?;
    Ok(listener)
}

/// How long a stopping serve waits for git operations under way: less
/// than the 120 s systemd gives the unit (`TimeoutStopSec`) before SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(100);

/// Serves until SIGTERM or SIGINT, then waits for operations under way.
pub fn run(config: Config, listeners: Listeners) -> Result<(), ServeError> {
    // Every store access of this process, its pool's included, keeps
    // `[store] timeout`.
    crate::store::set_timeout(std::time::Duration::from_secs(
        u64::try_from(config.store.timeout).unwrap_or(5),
    ));
    // Password hashes on their own few threads, at most that many at once.
    crate::factor::slow::configure(config.limits.password_hashes());
    // SQLite: this process's writes take turns, audit rows commit together.
    crate::store::group::enable(&crate::store::Location::of(&config));
    // SQLite: the decide socket keeps a few connections between requests.
    crate::store::keep_connections();
    let host_keys = match listeners.ssh {
        Some(_) => match ssh::host_keys(&config.data_dir) {
            Ok(key) => Some(key),
            Err(e) => {
                // The sockets were bound already; leave no file behind.
                if let (Some(path), Some(_)) = (&config.daemon.socket, &listeners.hooks) {
                    let _ = std::fs::remove_file(path);
                }
                if listeners.store.is_some() {
                    let _ = std::fs::remove_file(store_socket_path(&config));
                }
                if listeners.decide.is_some() {
                    let _ = std::fs::remove_file(decide_socket::path(&config));
                }
                return Err(e);
            }
        },
        None => None,
    };
    // The blocking pool serves short, bounded work only (git runs as
    // tasks): store-socket clients (256), hook questions (64), web pages
    // (256), SSH key look-ups and git's decisions (`[limits]
    // git_operations`). Sized so that each keeps its share.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(576 + config.limits.git_operations())
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .map_err(ServeError::io("cannot start the runtime"))?;
    // Read once, before serving: a token file that cannot be read stops
    // serve, rather than serving metrics to anyone.
    let metrics_token = match &config.metrics.bearer_token_file {
        Some(path) => Some(
            crate::factor::crypto::read_private_file(path)
                .map(|t| String::from_utf8_lossy(&t).trim().to_string())
                .and_then(|t| match t.is_empty() {
                    // An empty token would let every scraper in.
                    true => Err(std::io::Error::other("it holds no token")),
                    false => Ok(t),
                })
                .map_err(ServeError::io(path.display()))?,
        ),
        None => None,
    };
    let config = Arc::new(config);
    operations::audit_limits_with(&config);
    let operations = Operations::default();
    let connections = Operations::default();
    runtime.block_on(async move {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();

        let web = tokio::net::TcpListener::from_std(listeners.web)
            .map_err(ServeError::io("the web listener"))?;
        let web_addr = web
            .local_addr()
            .map_err(ServeError::io("the web listener"))?;
        // Users open public_url: security keys work only at its name (an IP
        // address cannot be a WebAuthn relying party).
        log::info!(
            "web page on http://{web_addr}, smart HTTP under http://{web_addr}/git/; users open {}",
            config.public_url
        );
        let app = router::router(config.clone(), operations.clone());
        tasks.spawn(router::serve_web(
            web,
            app,
            config.web.trusted_proxies.clone(),
            stopped.clone(),
        ));

        if let (Some(listener), Some(keys)) = (listeners.ssh, host_keys) {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(ServeError::io("the SSH listener"))?;
            let addr = listener
                .local_addr()
                .map_err(ServeError::io("the SSH listener"))?;
            let fingerprints: Vec<String> = keys
                .iter()
                .map(|key| {
                    key.public_key()
                        .fingerprint(russh::keys::ssh_key::HashAlg::Sha256)
                        .to_string()
                })
                .collect();
            log::info!("SSH on {addr}, host keys {}", fingerprints.join(", "));
            let ssh_config = Arc::new(ssh::russh_config(keys));
            tasks.spawn(accept_ssh(
                listener,
                ssh_config,
                config.clone(),
                (operations.clone(), connections.clone()),
                stopped.clone(),
            ));
        }

        if let Some(listener) = listeners.hooks {
            let listener = tokio::net::UnixListener::from_std(listener)
                .map_err(ServeError::io("the hook socket"))?;
            tasks.spawn(hook_socket::serve(
                listener,
                config.clone(),
                operations.clone(),
                stopped.clone(),
            ));
        }

        if let Some(listener) = listeners.store {
            let listener = tokio::net::UnixListener::from_std(listener)
                .map_err(ServeError::io("the store socket"))?;
            let pool = Arc::new(crate::store::Pool::new(
                &config.store.url,
                config.store.password_file.as_deref(),
                store_socket::POOL_SIZE,
            ));
            // This process's own requests (web, SSH, hooks) use it too.
            crate::store::use_in_process(pool.clone());
            tasks.spawn(store_socket::serve(
                listener,
                store_socket_path(&config),
                pool,
                stopped.clone(),
            ));
        }

        if let Some(listener) = listeners.decide {
            let listener = tokio::net::UnixListener::from_std(listener)
                .map_err(ServeError::io("the decide socket"))?;
            tasks.spawn(decide_socket::serve(
                listener,
                config.clone(),
                stopped.clone(),
            ));
        }

        if let Some(listener) = listeners.metrics {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(ServeError::io("the metrics listener"))?;
            let addr = listener
                .local_addr()
                .map_err(ServeError::io("the metrics listener"))?;
            let metrics = metrics::Metrics::new(
                config.clone(),
                operations.clone(),
                connections.clone(),
                metrics_token,
            );
            let first = metrics.clone();
            let _ = tokio::task::spawn_blocking(move || first.start()).await;
            log::info!("metrics on http://{addr}/metrics");
            tasks.spawn(router::serve_web(
                listener,
                metrics::router(metrics),
                Vec::new(),
                stopped.clone(),
            ));
        }

        tasks.spawn(checkpoints(config.clone(), stopped.clone()));
        tasks.spawn(prunes(config.clone(), stopped.clone()));

        tasks.spawn(async move {
            shutdown_signal().await;
            log::info!("stopping: no new connections; operations under way finish");
            let _ = stop.send(true);
            Ok(())
        });

        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            let outcome = done.map_err(|e| ServeError::Task(format!("a server task failed: {e}")));
            if let Err(e) = outcome.and_then(|r| r) {
                log::error!("{e}");
                result = Err(e);
                break;
            }
        }
        if operations.running() > 0 {
            log::info!(
                "waiting for {} git operation(s) to finish",
                operations.running()
            );
        }
        // Not past what the unit gives serve to stop (TimeoutStopSec=120,
        // then SIGKILL): operations still under way then are cut, and said.
        if !operations.idle_within(STOP_GRACE).await {
            log::warn!(
                "stopping with {} git operation(s) still under way after {} s: their clients see the connection end",
                operations.running(),
                STOP_GRACE.as_secs()
            );
        }
        // A finished command's exit status and close are queued on its
        // connection; the client hangs up once it has them.
        let _ = tokio::time::timeout(CLOSE_GRACE, connections.idle()).await;
        log::info!("stopped");
        result
    })
}

async fn accept_ssh(
    listener: tokio::net::TcpListener,
    ssh_config: Arc<russh::server::Config>,
    config: Arc<Config>,
    (operations, connections): (Operations, Operations),
    stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let logins = Slots::default();
    let users = Slots::default();
    let prompts = Slots::default();
    loop {
        tokio::select! {
            _ = wait_for_stop(stopped.clone()) => return Ok(()),
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: pause, go on.
                        log::warn!("SSH accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if connections.running() >= MAX_SSH_CONNECTIONS {
                    operations::Limit::SshConnections.refused(Some(peer.ip()));
                    log::warn!("SSH: {MAX_SSH_CONNECTIONS} connections open; refusing {peer}");
                    continue;
                }
                // The login timer starts now: a client that sends nothing
                // at all is cut off as surely as one that never signs.
                let deadline = tokio::time::Instant::now() + LOGIN_GRACE;
                let Some(login) = logins.take(client_key(peer), MAX_SSH_LOGINS_PER_ADDRESS) else {
                    operations::Limit::SshLoginsPerAddress.refused(Some(peer.ip()));
                    log::warn!(
                        "SSH: {MAX_SSH_LOGINS_PER_ADDRESS} connections from {} are still logging in; refusing one",
                        peer.ip()
                    );
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let authenticated = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let client = ssh::Client::new(
                    config.clone(),
                    Some(peer),
                    operations.clone(),
                    (authenticated.clone(), login),
                    (users.clone(), MAX_SSH_CONNECTIONS_PER_USER),
                    prompts.clone(),
                    stopped.clone(),
                );
                let ssh_config = ssh_config.clone();
                let connection = connections.start();
                tokio::spawn(async move {
                    let _connection = connection;
                    let started = tokio::time::timeout_at(
                        deadline,
                        russh::server::run_stream(ssh_config, stream, client),
                    )
                    .await;
                    let mut session = match started {
                        Ok(Ok(session)) => session,
                        Ok(Err(e)) => return log::debug!("SSH handshake from {peer}: {e}"),
                        Err(_) => {
                            return log::info!("SSH: {peer} did not authenticate in time");
                        }
                    };
                    let ended = tokio::select! {
                        ended = &mut session => ended,
                        _ = tokio::time::sleep_until(deadline) => {
                            if !authenticated.load(Ordering::SeqCst) {
                                // Dropped, not asked to disconnect: russh
                                // defers that message during a key exchange,
                                // which a client can keep going.
                                return log::info!("SSH: {peer} did not authenticate in time");
                            }
                            session.await
                        }
                    };
                    if let Err(e) = ended {
                        log::debug!("SSH session from {peer}: {e}");
                    }
                });
            }
        }
    }
}

/// How often `git2fa serve` empties the store's WAL into the store file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Empties the store's WAL now and then, so that the shims and hooks, which
/// leave the WAL as it is when they close (one fsync per decision), need
/// not: SQLite's own checkpoint, past 1000 pages, then seldom falls to them.
async fn checkpoints(
    config: Arc<Config>,
    stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    loop {
        tokio::select! {
            _ = wait_for_stop(stopped.clone()) => return Ok(()),
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        let config = config.clone();
        if !config.store.url.is_empty() {
            // PostgreSQL checkpoints itself.
            continue;
        }
        let done = tokio::task::spawn_blocking(move || {
            crate::store::Store::connect(&crate::store::Location::of(&config))?.checkpoint()
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("store checkpoint: {e}"),
            Err(e) => log::warn!("store checkpoint: {e}"),
        }
    }
}

/// How often `git2fa serve` removes what has expired (`Store::prune_expired`).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes expired sessions, links and stale wrong-password counts a
/// minute after the start, then every hour, so that the tables stay the
/// size of what is in use. On PostgreSQL every front end does it; the
/// deletes do not conflict.
async fn prunes(config: Arc<Config>, stopped: watch::Receiver<bool>) -> Result<(), ServeError> {
    let mut wait = CHECKPOINT_EVERY;
    loop {
        tokio::select! {
            _ = wait_for_stop(stopped.clone()) => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = PRUNE_EVERY;
        let config = config.clone();
        let done = tokio::task::spawn_blocking(move || {
            let now = crate::system::time::now();
            crate::store::Store::connect(&crate::store::Location::of(&config))?
                .prune_expired(now, now - config.policy.lockout)
        })
        .await;
        match done {
            Ok(Ok(expired)) => log::info!("removed what expired: {expired:?}"),
            Ok(Err(e)) => log::warn!("store prune: {e}"),
            Err(e) => log::warn!("store prune: {e}"),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::warn!("no signal handlers: the server runs until killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
