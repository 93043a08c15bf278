//! `<data_dir>/decide.sock`: serve decides for the shims and hooks of this
//! host (`transport::ask` is their side and the wire format). It keeps the
//! store open, decides with the same code the shims run when they decide
//! themselves, and writes the audit row through its one writer before it
//! answers: a row is durable before an answer says allow.
//!
//! The socket is the store owner's: mode 0600 in `data_dir`, and a peer
//! whose uid (`SO_PEERCRED`, the kernel's word) is not the server's, the
//! owner of `data_dir`, or root is hung up on. Such a peer could open the
//! store itself, so nothing it claims here widens what it may do. A hook
//! whose account is not the store owner's never gets here: it asks the
//! daemon on `[daemon] socket`.
//!
//! A waiting operation (`[policy] wait_for_verify`) holds no thread here:
//! serve answers `wait`, and the shim polls.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::ServeError;
use super::hook_socket::{bind_unix, blocking};
use super::operations::{Operations, wait_for_stop};
use crate::authz::messages;
use crate::repo::policy::{PushedRefs, RepoPolicy};
use crate::store::{Location, Store};
use crate::system::config::Config;
use crate::transport::ask::{self, Message, item};
use crate::transport::cgi::{self, Response};
use crate::transport::hook::{self, HookError, HookKind, Push};
use crate::transport::shell::{Action, Connection, Step, Streams};

/// Requests answered at once, at most; beyond, serve declines and the
/// shim decides itself.
const MAX_CLIENTS: usize = 256;
/// How long serve waits for a whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pushes whose pre-receive decision serve remembers for their `update`
/// hooks, at most, and their changes (`OLD NEW REF` lines) in all: a push
/// past them is not remembered, and its `update` hooks decide.
const MAX_PUSHES: usize = 4096;
const MAX_CHANGES: usize = 100_000;
/// How long serve waits for a shim to take its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the socket, mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    bind_unix(path, 0o177)
}

/// The socket's path for `config`.
pub fn path(config: &Config) -> PathBuf {
    config.data_dir.join(ask::SOCKET)
}

/// Answers the shims and hooks until the server stops; then removes the
/// socket file, so that they decide themselves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    config: Arc<Config>,
    stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let path = path(&config);
    let clients = Operations::default();
    let pushes = Arc::new(Pushes::default());
    let own = nix::unistd::geteuid().as_raw();
    let owner = std::fs::metadata(&config.data_dir)
        .map_or(own, |meta| std::os::unix::fs::MetadataExt::uid(&meta));
    log::info!(
        "deciding for this host's shims and hooks on {}",
        path.display()
    );
    loop {
        tokio::select! {
            _ = wait_for_stop(stopped.clone()) => break,
            accepted = listener.accept() => {
                let Some((mut stream, uid)) = blocking(accepted, "decide socket").await else {
                    continue;
                };
                if uid.is_none_or(|uid| uid != own && uid != owner && uid != 0) {
                    log::warn!("decide socket: uid {uid:?} is not the store's owner; hung up");
                    continue;
                }
                if clients.running() >= MAX_CLIENTS {
                    super::operations::Limit::DecideSocketClients.refused(None);
                    log::warn!("decide socket: {MAX_CLIENTS} requests at once; the shim decides itself");
                    let _ = stream.write_all(item("other", "busy").as_bytes());
                    continue;
                }
                let (config, pushes, client) = (config.clone(), pushes.clone(), clients.start());
                tokio::task::spawn_blocking(move || {
                    let _client = client;
                    answer(&config, stream, owner, &pushes);
                });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Answers one request. A request serve cannot take is declined (`other`),
/// and the shim decides itself; a failure while deciding refuses.
fn answer(config: &Config, mut stream: UnixStream, owner: u32, pushes: &Pushes) {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let reply = match (
        getsockopt(&stream, PeerCredentials),
        read_request(&stream, Instant::now() + REQUEST_TIMEOUT),
    ) {
        (Ok(peer), Ok(request)) if request.same_config(config) => {
            let peer = Peer {
                uid: peer.uid(),
                pid: peer.pid(),
                owner,
            };
            crate::store::keeping_for(|| decide(config, &request, &peer, pushes))
        }
        (Ok(_), Ok(_)) => item("other", "git2fa serve reads another configuration"),
        (Err(e), _) => {
            log::warn!("decide socket: SO_PEERCRED: {e}");
            item("other", "no peer credentials")
        }
        (_, Err(why)) => {
            log::warn!("decide socket: {why}");
            item("other", "bad request")
        }
    };
    let _ = stream.set_write_timeout(Some(ANSWER_TIMEOUT));
    let _ = stream.write_all(reply.as_bytes());
}

/// Who asks, from the kernel.
struct Peer {
    uid: u32,
    pid: i32,
    /// The owner of `data_dir`.
    owner: u32,
}

fn decide(config: &Config, request: &Message, peer: &Peer, pushes: &Pushes) -> String {
    let kind = request.get("kind").unwrap_or_default();
    match kind {
        "ssh" | "ssh-poll" => ssh(config, request, kind == "ssh-poll"),
        "hook" | "hook-poll" => match hook(config, request, peer, pushes, kind == "hook-poll") {
            Ok(reply) => reply,
            Err(cause) => {
                let mut reply = say(&messages::check_unavailable(None, &cause.to_string()));
                reply.push_str(&item("exit", "1"));
                reply
            }
        },
        "http" => http(config, request),
        _ => item("other", "unknown kind of request"),
    }
}

/// `stderr` items for `lines`.
fn say(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| item("stderr", &format!("{l}\n")))
        .collect()
}

/// A git command over SSH, as `git2fa-shell` decides it.
fn ssh(config: &Config, request: &Message, poll: bool) -> String {
    let (Some(key_id), Some(fingerprint), Some(command)) = (
        request.get("key-id").and_then(|k| k.parse().ok()),
        request.get("fingerprint"),
        request.get("command"),
    ) else {
        return item(
            "other",
            "an ssh request needs key-id, fingerprint and command",
        );
    };
    // What sshd enforced, as the shim's forced command says; a word the
    // shim never sends is no request at all.
    let hardware = match request.get("hardware") {
        None => None,
        Some(word) => match crate::domain::Hardware::parse(word) {
            Some(hardware) => Some(hardware),
            None => return item("other", "hardware must be verified or present"),
        },
    };
    let connection = Connection {
        config,
        key_id,
        fingerprint: fingerprint.to_string(),
        hardware,
        remote_addr: request.get("addr").map(str::to_string),
        git_protocol: request.get("protocol").map(str::to_string),
        // May it wait for a verify: the shim then polls.
        shows_stderr: request.get("wait") == Some("yes"),
    };
    if poll {
        let open = connection.session_opened_for(command);
        return item("open", if open { "yes" } else { "no" });
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let step = connection.begin(
        command,
        &mut Streams {
            stdin: &mut std::io::empty(),
            stdout: &mut out,
            stderr: &mut err,
        },
    );
    let mut reply = String::new();
    for (name, bytes) in [("stderr", &err), ("stdout", &out)] {
        if !bytes.is_empty() {
            reply.push_str(&item(name, &String::from_utf8_lossy(bytes)));
        }
    }
    let last = match step {
        Step::Done(Action::Exit(code)) => item("exit", &code.to_string()),
        Step::Done(Action::Git(invocation)) => {
            match ask::run_items(&invocation, config.policy.max_git_duration.max(1)) {
                Ok(items) => items,
                Err(why) => item("other", &why),
            }
        }
        Step::AwaitSession(pending) => item("wait", &pending.wait.as_secs().to_string()),
        // Only git commands come here; `2fa verify` is the shim's.
        Step::AwaitCode(_) => item("other", "not a git command"),
    };
    reply.push_str(&last);
    reply
}

/// A pre-receive or update hook of the store's owner, as `git2fa-hook`
/// decides it; pre-receive's decision of a whole push is remembered, so
/// that its `update` hooks need not decide again while the repository's
/// policy file stays as it was.
fn hook(
    config: &Config,
    request: &Message,
    peer: &Peer,
    pushes: &Pushes,
    poll: bool,
) -> Result<String, HookError> {
    let bad = |what: &str| HookError::Malformed(format!("decide socket: {what}"));
    let kind = request
        .get("hook")
        .and_then(HookKind::from_name)
        .ok_or_else(|| bad("no hook kind"))?;
    let dir = request.get("dir").ok_or_else(|| bad("no dir"))?;
    let repo = hook::repo_for(config, Path::new(dir))?;
    let refs: Vec<String> = request.all("ref").map(str::to_string).collect();
    let args: Vec<String> = request.all("arg").map(str::to_string).collect();
    let env: HashMap<&str, &str> = request
        .all("env")
        .filter_map(|e| e.split_once('='))
        .collect();
    // The push this hook belongs to, and who pushes: an update hook is
    // answered from its pre-receive's decision only for the same push,
    // the same pusher and a change that decision covered.
    let mut identity: Vec<&str> = request.all("env").collect();
    identity.sort_unstable();
    let push_id = PushId::of(peer.pid, &repo.dir, identity.join("\n"));
    let changes: HashSet<String> = request.all("change").map(str::to_string).collect();
    // Taken before deciding: a file changed meanwhile then differs.
    let policy = policy_digest(&repo.dir);
    if kind == HookKind::Update
        && !poll
        && let (Some(id), Some(policy), [change]) = (
            &push_id,
            &policy,
            changes.iter().collect::<Vec<_>>().as_slice(),
        )
        && pushes.decided(id, change, policy)
    {
        return Ok(item("exit", "0"));
    }
    let mut store = Store::connect(&Location::of(config))?;
    let pusher = hook::identify_as(
        config,
        &store,
        &|name| env.get(name).map(|v| v.to_string()),
        peer.uid == peer.owner,
        nix::unistd::Uid::from_raw(peer.uid),
    )?;
    let push = Push {
        kind,
        repo: &repo,
        refs: PushedRefs::Known(refs.clone()),
        pusher,
        args: &args,
        update_follows: true,
    };
    if poll {
        let open = hook::allowed_now(config, &mut store, &push);
        return Ok(item("open", if open { "yes" } else { "no" }));
    }
    let mut reply = String::new();
    let may_wait = request.get("wait") == Some("yes");
    let step = hook::decide_step(config, &mut store, push, may_wait, &mut |line| {
        reply.push_str(&item("stderr", &format!("{line}\n")));
    });
    reply.push_str(&match step {
        hook::Step::Allowed { whole } => {
            // Remembered only if the file is as it was before deciding
            // (the decision read it in between).
            if whole
                && kind == HookKind::PreReceive
                && let (Some(id), Some(policy)) = (push_id, policy)
                && policy_digest(&repo.dir) == Some(policy)
            {
                pushes.remember(id, changes, policy, config.policy.max_git_duration);
            }
            item("exit", "0")
        }
        hook::Step::Refused => item("exit", "1"),
        hook::Step::Wait(wait) => item("wait", &wait.as_secs().to_string()),
    });
    Ok(reply)
}

/// A CGI request, as `git2fa-http` decides it.
fn http(config: &Config, request: &Message) -> String {
    let cgi = crate::transport::shim::cgi_request(request);
    match cgi::handle(config, &cgi) {
        Response::Git(invocation) => {
            ask::run_items(&invocation, config.policy.max_git_duration.max(1))
                .unwrap_or_else(|why| item("other", &why))
        }
        response => {
            let mut out = Vec::new();
            let _ = response.write_to(&mut out);
            let mut reply = item("stdout", &String::from_utf8_lossy(&out));
            reply.push_str(&item("exit", "0"));
            reply
        }
    }
}

/// Reads one whole request by `deadline`.
fn read_request(stream: &UnixStream, deadline: Instant) -> Result<Message, String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("a request was not sent in time".into());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match (&mut &*stream).read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading a request: {e}")),
        }
        if bytes.len() as u64 > ask::MAX_MESSAGE {
            return Err("a request is too long".into());
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| "a request is not UTF-8".to_string())?;
    Message::decode_request(&text)
}

/// The SHA-256 of a repository's `git2fa.toml` (or of its absence); `None`
/// when it cannot be read.
fn policy_digest(repo_dir: &Path) -> Option<[u8; 32]> {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    match std::fs::read(RepoPolicy::path(repo_dir)) {
        Ok(text) => {
            hash.update(b"file\0");
            hash.update(&text);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => hash.update(b"none\0"),
        Err(_) => return None,
    }
    Some(hash.finalize().into())
}

/// One push: the `git receive-pack` process whose hooks ask (their parent),
/// named by its pid and start time so that a later process with the same
/// pid is another push; the repository; and the identity the shim handed
/// to git (`GIT2FA_*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PushId {
    pid: i32,
    started: u64,
    repo: PathBuf,
    pusher: String,
}

impl PushId {
    /// The push the hook with process id `hook_pid` belongs to.
    fn of(hook_pid: i32, repo: &Path, pusher: String) -> Option<PushId> {
        let (parent, _) = proc_stat(hook_pid)?;
        let (_, started) = proc_stat(parent)?;
        Some(PushId {
            pid: parent,
            started,
            repo: repo.to_path_buf(),
            pusher,
        })
    }
}

/// A process's parent and start time, from `/proc/PID/stat` (proc(5):
/// fields 4 and 22, counted after the command name in parentheses).
fn proc_stat(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Pushes whose pre-receive allowed every ref, for their `update` hooks.
#[derive(Default)]
struct Pushes {
    decided: Mutex<HashMap<PushId, Decided>>,
}

struct Decided {
    /// The changes decided, `OLD NEW REF`.
    changes: HashSet<String>,
    policy: [u8; 32],
    until: Instant,
}

impl Pushes {
    fn remember(
        &self,
        id: PushId,
        changes: HashSet<String>,
        policy: [u8; 32],
        max_git_duration: i64,
    ) {
        let Ok(mut decided) = self.decided.lock() else {
            return;
        };
        let now = Instant::now();
        decided.retain(|_, d| d.until > now);
        let held: usize = decided.values().map(|d| d.changes.len()).sum();
        if decided.len() >= MAX_PUSHES || held + changes.len() > MAX_CHANGES {
            return;
        }
        let lasts = Duration::from_secs(max_git_duration.max(1) as u64);
        decided.insert(
            id,
            Decided {
                changes,
                policy,
                until: now + lasts,
            },
        );
    }

    /// Whether `change` of push `id` was allowed by its pre-receive, under
    /// the policy file as it is now.
    fn decided(&self, id: &PushId, change: &str, policy: &[u8; 32]) -> bool {
        let Ok(decided) = self.decided.lock() else {
            return false;
        };
        decided.get(id).is_some_and(|d| {
            d.until > Instant::now() && d.policy == *policy && d.changes.contains(change)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_is_remembered_for_its_refs_and_its_policy_only() {
        let pushes = Pushes::default();
        let id = PushId {
            pid: 10,
            started: 99,
            repo: "/srv/git/a.git".into(),
            pusher: "GIT2FA_USER=alice".into(),
        };
        let main = format!("{} {} refs/heads/main", "0".repeat(40), "1".repeat(40));
        pushes.remember(id.clone(), [main.clone()].into(), [1; 32], 60);
        assert!(pushes.decided(&id, &main, &[1; 32]));
        let other = main.replace("main", "other");
        assert!(!pushes.decided(&id, &other, &[1; 32]), "another ref");
        let moved = main.replace("1111", "2222");
        assert!(!pushes.decided(&id, &moved, &[1; 32]), "another commit");
        assert!(!pushes.decided(&id, &main, &[2; 32]), "policy changed");
        let later = PushId {
            started: 100,
            ..id.clone()
        };
        assert!(!pushes.decided(&later, &main, &[1; 32]), "another process");
        let mallory = PushId {
            pusher: "GIT2FA_USER=mallory".into(),
            ..id.clone()
        };
        assert!(!pushes.decided(&mallory, &main, &[1; 32]), "another pusher");
        // A push past the bound is not remembered: its updates decide.
        let many: HashSet<String> = (0..MAX_CHANGES).map(|i| format!("{i}")).collect();
        let big = PushId {
            pid: 11,
            ..id.clone()
        };
        pushes.remember(big.clone(), many, [1; 32], 60);
        assert!(!pushes.decided(&big, "0", &[1; 32]));
    }

    #[test]
    fn this_process_has_a_parent_and_a_start_time() {
        let (parent, started) = proc_stat(std::process::id() as i32).unwrap();
        assert_eq!(parent as u32, std::os::unix::process::parent_id());
        assert!(started > 0);
    }
}
