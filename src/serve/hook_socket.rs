//! Hosts where users push over SSH as their own Unix accounts: the hook
//! runs as the pusher, who must not read the store. It asks `git2fa serve`
//! on `[daemon] socket` instead (`transport::hook_question` holds the
//! question and the hook's side). The daemon takes the pusher's account
//! from the kernel (`SO_PEERCRED`), never from the question, and decides as
//! the hook would, with the credential "Unix account". Anything but an
//! explicit allow refuses the push.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::error::ServeError;
use super::operations::{Operations, Slots, wait_for_stop};
use crate::authz::messages;
use crate::repo::policy::PushedRefs;
use crate::store::{Location, Store};
use crate::system::config::Config;
use crate::transport::hook;
use crate::transport::hook::{Push, Pusher};
use crate::transport::hook_question::{HookError, MAX_QUESTION, Question};

/// Questions answered at once, at most (the socket is open to every local
/// account).
const MAX_QUESTIONS: usize = 64;
/// How long the daemon waits for a whole question.
const QUESTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Questions of one Unix account under way at once, at most.
const MAX_QUESTIONS_PER_ACCOUNT: usize = 8;
/// Binds the socket, mode 0666: any local account may ask, since the
/// kernel names it.
pub fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    bind_unix(path, 0o111)
}

/// Binds a Unix socket whose mode `umask` makes. A stale socket from a
/// stopped server is replaced; any other file there, or a server that
/// answers, is an error.
pub fn bind_unix(path: &Path, mask: u16) -> Result<UnixListener, ServeError> {
    use std::os::unix::fs::FileTypeExt;
    let fail = |e| ServeError::io(path.display())(e);
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ServeError::InTheWay(format!(
                    "{}: another git2fa server answers there",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(fail)?;
        }
        Ok(_) => {
            return Err(ServeError::InTheWay(format!(
                "{}: exists and is not a socket; not touching it",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    // The mode comes from the umask at bind time: a chmod by path
    // afterwards could be sent along a symlink put there meanwhile. Bound
    // before the runtime starts, so no other thread creates files now.
    use nix::sys::stat::{Mode, umask};
    let before = umask(Mode::from_bits_truncate(mask.into()));
    let bound = UnixListener::bind(path);
    umask(before);
    let listener = bound.map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    Ok(listener)
}

/// An accepted connection made blocking (it is answered on the blocking
/// pool, where its read timeout holds), with its peer's uid from the
/// kernel (`SO_PEERCRED`). `None`, after a pause, when accepting failed.
pub async fn blocking(
    accepted: std::io::Result<(tokio::net::UnixStream, tokio::net::unix::SocketAddr)>,
    what: &str,
) -> Option<(UnixStream, Option<u32>)> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    match accepted
        .and_then(|(s, _)| s.into_std())
        .and_then(|s| s.set_nonblocking(false).map(|()| s))
    {
        Ok(stream) => {
            let uid = getsockopt(&stream, PeerCredentials).map(|c| c.uid()).ok();
            Some((stream, uid))
        }
        Err(e) => {
            log::warn!("{what} accept: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Answers hooks until the server stops; then removes the socket file.
pub async fn serve(
    listener: tokio::net::UnixListener,
    config: Arc<Config>,
    operations: Operations,
    stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let path = config.daemon.socket.clone();
    let questions = Operations::default();
    let per_uid = Slots::default();
    if let Some(path) = &path {
        log::info!("answering hooks on {}", path.display());
    }
    loop {
        tokio::select! {
            _ = wait_for_stop(stopped.clone()) => break,
            accepted = listener.accept() => {
                let Some((stream, uid)) = blocking(accepted, "hook socket").await else {
                    continue;
                };
                // One account may hold a few slots, not all of them.
                let slot = uid.and_then(|uid| per_uid.take(uid, MAX_QUESTIONS_PER_ACCOUNT));
                if questions.running() >= MAX_QUESTIONS || slot.is_none() {
                    super::operations::Limit::HookQuestions.refused(None);
                    log::warn!("hook socket: {MAX_QUESTIONS} questions under way; refusing one");
                    let mut stream = stream;
                    let _ = stream.write_all(
                        b"say git2fa: the 2FA check is busy, so the push was refused; try again.\nrefuse\n",
                    );
                    continue;
                }
                let config = config.clone();
                let operation = (operations.start(), questions.start(), slot);
                tokio::task::spawn_blocking(move || {
                    let _operation = operation;
                    answer(&config, stream);
                });
            }
        }
    }
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Answers one question; every failure on the way refuses.
fn answer(config: &Config, mut stream: UnixStream) {
    let mut reply = String::new();
    let allowed = match decide(config, &stream) {
        Ok(allowed) => allowed,
        Err(cause) => {
            for line in messages::check_unavailable(None, &format!("hook socket: {cause}")) {
                reply.push_str(&format!("say {line}\n"));
            }
            false
        }
    };
    reply.push_str(if allowed { "allow\n" } else { "refuse\n" });
    let _ = stream.write_all(reply.as_bytes());
}

fn decide(config: &Config, stream: &UnixStream) -> Result<bool, HookError> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    // Who asks: the kernel's word, taken when the hook connected.
    let uid = getsockopt(stream, PeerCredentials)
        .map_err(HookError::errno("SO_PEERCRED"))?
        .uid();
    let pusher = Pusher::unix_account(nix::unistd::Uid::from_raw(uid))?;
    let text = read_question(stream, std::time::Instant::now() + QUESTION_TIMEOUT, uid)?;
    let question = Question::decode(&text)?;
    let repo = hook::repo_for(config, &question.repo_dir)?;
    let mut store = Store::connect(&Location::of(config))?;
    let mut stream_say = |line: &str| {
        // Lines before a wait go out at once, so the user sees them.
        let line = format!("say {}\n", line.replace('\n', " "));
        let _ = (&mut &*stream).write_all(line.as_bytes());
    };
    let push = Push {
        kind: question.kind,
        repo: &repo,
        // Every ref is decided here, pre-receive's too: whether git will
        // run the `update` hook depends on what the pusher's account may
        // run, which this account cannot tell.
        refs: PushedRefs::Known(question.refs),
        pusher,
        args: &question.args,
        update_follows: false,
    };
    Ok(hook::decide(config, &mut store, push, &mut stream_say))
}

/// Reads one whole question by `deadline`: the time limit holds for the
/// question, not for each read, so a client sending a byte now and then
/// cannot hold a slot for longer.
fn read_question(
    stream: &UnixStream,
    deadline: std::time::Instant,
    uid: u32,
) -> Result<String, HookError> {
    let doing = || format!("reading the question of uid {uid}");
    let bad = |what: &str| HookError::Malformed(format!("the question of uid {uid} {what}"));
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            let within = format!("was not sent within {} s", QUESTION_TIMEOUT.as_secs());
            return Err(bad(&within));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(HookError::io(doing()))?;
        let n = match (&mut &*stream).read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HookError::io(doing())(e)),
        };
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() as u64 > MAX_QUESTION {
            return Err(bad("is too long"));
        }
    }
    String::from_utf8(bytes).map_err(|_| bad("is not UTF-8"))
}
