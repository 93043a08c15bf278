//! What the servers of `git2fa serve` count: git operations under way (so
//! that a stop waits for them), and slots per key (so that one address,
//! user or account cannot take them all).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

use crate::system::config::Config;

/// How long a stopping server waits for clients to hang up after their
/// last request or command ended.
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// What every HTTP request handler shares.
#[derive(Clone)]
pub struct ServerState {
    pub config: Arc<Config>,
    pub operations: Operations,
}

/// Git operations under way (SSH commands, HTTP requests to git, hook
/// questions), so that shutdown can wait for them.
#[derive(Clone, Default)]
pub struct Operations(Arc<(AtomicUsize, Notify)>);

/// One operation under way; dropping it ends it.
pub struct Underway(Operations);

impl Operations {
    pub fn start(&self) -> Underway {
        self.0.0.fetch_add(1, Ordering::SeqCst);
        Underway(self.clone())
    }

    pub fn running(&self) -> usize {
        self.0.0.load(Ordering::SeqCst)
    }

    /// Waits until no operation is under way, at most `grace`: whether
    /// they all ended (a stopping serve goes on either way).
    pub async fn idle_within(&self, grace: std::time::Duration) -> bool {
        tokio::time::timeout(grace, self.idle()).await.is_ok()
    }

    /// Returns once no operation is under way.
    pub async fn idle(&self) {
        loop {
            let ended = self.0.1.notified();
            if self.running() == 0 {
                return;
            }
            ended.await;
        }
    }
}

impl Drop for Underway {
    fn drop(&mut self) {
        if self.0.0.0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.0.1.notify_waiters();
        }
    }
}

/// Counts per key (a client address, a user), so that one key cannot take
/// every slot.
pub struct Slots<K>(Arc<std::sync::Mutex<std::collections::HashMap<K, usize>>>);

impl<K> Clone for Slots<K> {
    fn clone(&self) -> Self {
        Slots(self.0.clone())
    }
}

impl<K> Default for Slots<K> {
    fn default() -> Self {
        Slots(Arc::default())
    }
}

/// One slot of a [`Slots`]; dropping it frees it.
pub struct Slot<K: std::hash::Hash + Eq> {
    slots: Slots<K>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> Slots<K> {
    /// Takes a slot for `key` unless it holds `max` already.
    pub fn take(&self, key: K, max: usize) -> Option<Slot<K>> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl<K: std::hash::Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.slots.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Client addresses as one key: an IPv4 client seen through an IPv6
/// socket is the same client.
pub fn client_key(peer: SocketAddr) -> std::net::IpAddr {
    peer.ip().to_canonical()
}

/// Returns once the server is told to stop.
pub async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Writes the audit row of a refusal for a limit (`record` without its
/// time, action, outcome and reason), off the runtime's threads and
/// without holding up the refusal.
pub fn audit_busy(
    config: &Arc<Config>,
    mut record: crate::store::AuditRecord,
    what: crate::authz::messages::Busy,
) {
    record.at = crate::system::time::now();
    if record.action.is_empty() {
        record.action = "operation".into();
    }
    record.outcome = "refuse".into();
    record.reason = what.reason().into();
    audit_refusal(config, record);
}

/// Writes the audit row of a refusal made before anyone is known, within
/// the bound per address (`Store::append_refusal`: a flood of them cannot
/// fill the disk), off the runtime's threads and without holding up the
/// refusal.
pub fn audit_refusal(config: &Arc<Config>, record: crate::store::AuditRecord) {
    // A flood is turned away here, before the store's write lock: past
    // the store's bound for its source, and past a few writes at once.
    if !REFUSALS.take(&record) {
        Limit::RefusalRows.reached();
        return;
    }
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let written = crate::store::Store::connect(&crate::store::Location::of(&config))
            .and_then(|mut store| store.append_refusal(&record));
        REFUSALS.writing.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = written {
            log::warn!("cannot write the audit row of a refusal: {e}");
        }
    });
}

/// serve's own count of the refusal rows it writes, in memory: per source
/// as the store counts them (`Store::append_refusal`), and at once.
struct Refusals {
    writing: AtomicUsize,
    /// Source: (window start, rows sent in it).
    seen: std::sync::Mutex<std::collections::HashMap<String, (i64, i64)>>,
}

static REFUSALS: std::sync::LazyLock<Refusals> = std::sync::LazyLock::new(|| Refusals {
    writing: AtomicUsize::new(0),
    seen: Default::default(),
});

impl Refusals {
    /// Refusal rows being written at once, at most.
    const MAX_WRITING: usize = 8;
    /// Sources remembered at most (then forgotten, all at once).
    const MAX_SOURCES: usize = 4096;

    /// Whether `record` goes to the store; if so, a write is counted
    /// under way until `writing` is given back.
    fn take(&self, record: &crate::store::AuditRecord) -> bool {
        use crate::store::{MAX_REFUSALS_PER_ADDRESS, REFUSAL_WINDOW};
        let source =
            crate::store::audit::refusal_source(record.remote_addr.as_deref().unwrap_or("unknown"));
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= Self::MAX_SOURCES && !seen.contains_key(&source) {
                seen.clear();
            }
            let (start, sent) = seen.entry(source).or_insert((record.at, 0));
            if *start <= record.at - REFUSAL_WINDOW {
                (*start, *sent) = (record.at, 0);
            }
            // The store's bound, and its one row saying the rest is not
            // recorded.
            if *sent > MAX_REFUSALS_PER_ADDRESS {
                return false;
            }
            *sent += 1;
        }
        if self.writing.fetch_add(1, Ordering::Relaxed) >= Self::MAX_WRITING {
            self.writing.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// serve's own limits that turn a connection or request away before
/// anyone is known, so that no audit row records them (a flood would
/// fill the disk): counted here, for `git2fa_limits_reached_total`.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// `MAX_SSH_CONNECTIONS` open to the SSH server.
    SshConnections,
    /// Connections from one address still logging in.
    SshLoginsPerAddress,
    /// Page requests under way at once.
    WebPages,
    /// Web connections from one address.
    WebConnectionsPerAddress,
    /// Hook questions under way, in all or from one account.
    HookQuestions,
    /// Clients of the store socket.
    StoreSocketClients,
    /// Requests on the decide socket (the shim then decides itself).
    DecideSocketClients,
    /// Refusal rows serve did not write: past the bound per address, or
    /// too many being written at once.
    RefusalRows,
}

impl Limit {
    pub const ALL: [Limit; 8] = [
        Limit::SshConnections,
        Limit::SshLoginsPerAddress,
        Limit::WebPages,
        Limit::WebConnectionsPerAddress,
        Limit::HookQuestions,
        Limit::StoreSocketClients,
        Limit::DecideSocketClients,
        Limit::RefusalRows,
    ];

    /// (transport, reason) labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Limit::SshConnections => ("ssh", "busy-ssh-server"),
            Limit::SshLoginsPerAddress => ("ssh", "busy-ssh-logins-per-address"),
            Limit::WebPages => ("web", "busy-web-pages"),
            Limit::WebConnectionsPerAddress => ("web", "busy-web-connections-per-address"),
            Limit::HookQuestions => ("hook", "busy-hook-questions"),
            Limit::StoreSocketClients => ("store-socket", "busy-store-socket"),
            Limit::DecideSocketClients => ("decide-socket", "busy-decide-socket"),
            Limit::RefusalRows => ("serve", "refusal-rows-unwritten"),
        }
    }

    /// Counts one refusal at this limit and writes its audit row (action
    /// `connection` or `request`, within the bound per source, off the
    /// runtime's threads); `from`: the client's address, when there is one.
    pub fn refused(self, from: Option<std::net::IpAddr>) {
        self.reached();
        let Some(config) = LIMIT_ROWS.get() else {
            return;
        };
        let (transport, reason) = self.labels();
        let action = match self {
            Limit::SshConnections
            | Limit::SshLoginsPerAddress
            | Limit::WebConnectionsPerAddress => "connection",
            _ => "request",
        };
        audit_refusal(
            config,
            crate::store::AuditRecord {
                at: crate::system::time::now(),
                transport: transport.into(),
                action: action.into(),
                outcome: "refuse".into(),
                reason: reason.into(),
                remote_addr: from.map(|ip| ip.to_canonical().to_string()),
                ..Default::default()
            },
        );
    }

    /// Counts one refusal at this limit.
    pub fn reached(self) {
        LIMITS[self as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals at this limit since serve started.
    pub fn count(self) -> u64 {
        LIMITS[self as usize].load(Ordering::Relaxed)
    }
}

/// serve's config, for the audit rows of `Limit::refused` (set at start).
static LIMIT_ROWS: std::sync::OnceLock<Arc<Config>> = std::sync::OnceLock::new();

/// Has `Limit::refused` write its rows to `config`'s store.
pub fn audit_limits_with(config: &Arc<Config>) {
    let _ = LIMIT_ROWS.set(config.clone());
}

static LIMITS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_waits_for_operations_only_so_long() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let operations = Operations::default();
        let held = operations.start();
        let grace = std::time::Duration::from_millis(50);
        let started = std::time::Instant::now();
        assert!(!runtime.block_on(operations.idle_within(grace)));
        assert!(started.elapsed() >= grace);
        assert_eq!(operations.running(), 1);
        drop(held);
        assert!(runtime.block_on(operations.idle_within(grace)));
    }
}
