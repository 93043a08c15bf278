//! `<data_dir>/store.sock`: with a PostgreSQL store, the shims, hooks and
//! admin commands of this host send their statements here, and
//! `git2fa serve` runs them on the few connections it keeps open
//! (`store::pool`). The socket is the store owner's: mode 0600 in
//! `data_dir` (mode 0700), and a peer whose uid is not the server's, the
//! owner of `data_dir`, or root is hung up on. (A server run as root makes
//! a socket the owner cannot open; the owner's processes then connect to
//! PostgreSQL themselves.)

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use super::error::ServeError;
use super::hook_socket::{bind_unix, blocking};
use super::operations::{Operations, wait_for_stop};
use crate::store::{self, Pool};

/// PostgreSQL connections the server keeps, at most.
pub const POOL_SIZE: usize = 16;

/// Clients answered at once, at most (each holds a thread while it waits
/// for a connection of the pool).
const MAX_CLIENTS: usize = 256;

/// Binds the socket, mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    bind_unix(path, 0o177)
}

/// Answers the store's clients until the server stops; then removes the
/// socket file, so that a later client connects to PostgreSQL itself.
pub async fn serve(
    listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
    pool: Arc<Pool>,
    stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let clients = Operations::default();
    let own = nix::unistd::geteuid().as_raw();
    // The store's owner: the account owning data_dir, which the shims and
    // hooks run as (the same as the server's, unless it runs as root).
    let owner = path
        .parent()
        .and_then(|dir| std::fs::metadata(dir).ok())
        .map_or(own, |meta| std::os::unix::fs::MetadataExt::uid(&meta));
    log::info!("answering the store's clients on {}", path.display());
    loop {
        tokio::select! {
            _ = wait_for_stop(stopped.clone()) => break,
            accepted = listener.accept() => {
                let Some((stream, uid)) = blocking(accepted, "store socket").await else {
                    continue;
                };
                if uid.is_none_or(|uid| uid != own && uid != owner && uid != 0) {
                    log::warn!("store socket: uid {uid:?} is not the store's owner; hung up");
                    continue;
                }
                if clients.running() >= MAX_CLIENTS {
                    super::operations::Limit::StoreSocketClients.refused(None);
                    log::warn!("store socket: {MAX_CLIENTS} clients at once; hung up on one");
                    continue;
                }
                let (pool, client) = (pool.clone(), clients.start());
                tokio::task::spawn_blocking(move || {
                    let _client = client;
                    store::answer(stream, pool);
                });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    // Each pooled connection carries a runtime of its own, which may not
    // be dropped on this runtime's threads.
    let _ = tokio::task::spawn_blocking(move || drop(pool)).await;
    Ok(())
}
