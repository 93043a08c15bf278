//! Hosts where users push over SSH as their own Unix accounts: the hook
//! runs as the pusher, who must not read the store. It asks `git2fa serve`
//! on `[daemon] socket` instead. The daemon takes the pusher's account from
//! the kernel (`SO_PEERCRED`), never from the question, and decides as the
//! hook would, with the credential "Unix account".
//!
//! The question, one item per line, then end of input:
//!
//! ```text
//! git2fa-hook 1
//! kind pre-receive|update
//! dir /srv/git/project.git
//! ref refs/heads/main          (each pushed ref)
//! arg ...                      (update's arguments)
//! ```
//!
//! The answer: `say TEXT` lines for the user, then `allow` or `refuse`.
//! Anything else, or no answer, refuses the push.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::decision::{Credential, Transport};
use crate::hook::{self, HookKind};
use crate::repo_policy::PushedRefs;
use crate::serve::Operations;
use crate::store::Store;

const VERSION_LINE: &str = "git2fa-hook 1";
/// A question longer than this is refused (pre-receive reads 4 MiB at most).
const MAX_QUESTION: u64 = 5 << 20;
/// Questions answered at once, at most (the socket is open to every local
/// account).
const MAX_QUESTIONS: usize = 64;
/// How long the daemon waits for a whole question.
const QUESTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Questions of one Unix account under way at once, at most.
const MAX_QUESTIONS_PER_ACCOUNT: usize = 8;

/// What a hook asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub kind: HookKind,
    pub repo_dir: PathBuf,
    pub refs: Vec<String>,
    pub args: Vec<String>,
}

impl Question {
    pub fn encode(&self) -> Result<String, String> {
        let mut text = format!("{VERSION_LINE}\nkind {}\n", self.kind.name());
        let dir = self
            .repo_dir
            .to_str()
            .ok_or("the repository path is not UTF-8")?;
        for (key, value) in std::iter::once(("dir", dir))
            .chain(self.refs.iter().map(|r| ("ref", r.as_str())))
            .chain(self.args.iter().map(|a| ("arg", a.as_str())))
        {
            if value.contains('\n') {
                return Err(format!("a {key} holds a line break"));
            }
            text.push_str(&format!("{key} {value}\n"));
        }
        Ok(text)
    }

    pub fn decode(text: &str) -> Result<Question, String> {
        let mut lines = text.lines();
        if lines.next() != Some(VERSION_LINE) {
            return Err(format!("the question does not start with {VERSION_LINE:?}"));
        }
        let (mut kind, mut dir) = (None, None);
        let (mut refs, mut args) = (Vec::new(), Vec::new());
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "kind" if kind.is_none() => {
                    kind = Some(HookKind::from_name(value).ok_or("unknown hook kind")?)
                }
                "dir" if dir.is_none() => dir = Some(PathBuf::from(value)),
                "ref" => refs.push(value.to_string()),
                "arg" => args.push(value.to_string()),
                _ => return Err(format!("unexpected line {:?}", truncate(line))),
            }
        }
        Ok(Question {
            kind: kind.ok_or("no kind")?,
            repo_dir: dir.ok_or("no dir")?,
            refs,
            args,
        })
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Asks the daemon; the lines it has for the user go to `say` as they
/// come. `Ok(true)` only for an explicit `allow`.
pub fn ask(socket: &Path, question: &Question, say: &mut dyn FnMut(&str)) -> Result<bool, String> {
    let refuse = |say: &mut dyn FnMut(&str), cause: String| {
        log::error!("2FA daemon at {}: {cause}", socket.display());
        say(&format!(
            "git2fa: the git2fa daemon does not answer at {}, so the push was refused.",
            socket.display()
        ));
        say("Tell an admin of this host (is `git2fa serve` running?).");
        Ok(false)
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) => return refuse(say, e.to_string()),
    };
    let text = question.encode()?;
    if let Err(e) = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
    {
        return refuse(say, e.to_string());
    }
    let mut verdict = None;
    for line in BufReader::new(stream.take(MAX_QUESTION)).lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) => return refuse(say, e.to_string()),
        };
        match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("say", text) if verdict.is_none() => say(text),
            ("allow", "") if verdict.is_none() => verdict = Some(true),
            ("refuse", "") if verdict.is_none() => verdict = Some(false),
            _ => return refuse(say, format!("unexpected answer {:?}", truncate(&line))),
        }
    }
    match verdict {
        Some(allowed) => Ok(allowed),
        None => refuse(say, "the answer ended without a verdict".into()),
    }
}

/// Binds the socket, mode 0666: any local account may ask, since the
/// kernel names it. A stale socket from a stopped daemon is replaced; any
/// other file there, or a daemon that answers, is an error.
pub fn bind(path: &Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::FileTypeExt;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "{}: another git2fa daemon answers there",
                    path.display()
                ));
            }
            std::fs::remove_file(path).map_err(fail)?;
        }
        Ok(_) => {
            return Err(format!(
                "{}: exists and is not a socket; not touching it",
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    // The mode comes from the umask at bind time: a chmod by path
    // afterwards could be sent along a symlink put there meanwhile. Bound
    // before the runtime starts, so no other thread creates files now.
    use nix::sys::stat::{Mode, umask};
    let before = umask(Mode::from_bits_truncate(0o111));
    let bound = UnixListener::bind(path);
    umask(before);
    let listener = bound.map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    Ok(listener)
}

/// Answers hooks until the server stops; then removes the socket file.
pub async fn serve(
    listener: tokio::net::UnixListener,
    config: Arc<Config>,
    operations: Operations,
    stopped: watch::Receiver<bool>,
) -> Result<(), String> {
    let path = config.daemon.socket.clone();
    let questions = Operations::default();
    let per_uid = crate::serve::Slots::default();
    if let Some(path) = &path {
        log::info!("answering hooks on {}", path.display());
    }
    loop {
        tokio::select! {
            _ = crate::serve::wait_for_stop(stopped.clone()) => break,
            accepted = listener.accept() => {
                // Answered on the blocking pool: a blocking socket, so
                // that the read timeout holds.
                let stream = match accepted
                    .and_then(|(s, _)| s.into_std())
                    .and_then(|s| s.set_nonblocking(false).map(|()| s))
                {
                    Ok(stream) => stream,
                    Err(e) => {
                        log::warn!("hook socket accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // One account may hold a few slots, not all of them.
                use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
                let uid = getsockopt(&stream, PeerCredentials).map(|c| c.uid()).ok();
                let slot = uid.and_then(|uid| per_uid.take(uid, MAX_QUESTIONS_PER_ACCOUNT));
                if questions.running() >= MAX_QUESTIONS || slot.is_none() {
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
            log::error!("2FA check unavailable (hook socket): {cause}");
            reply.push_str("say git2fa: 2FA check unavailable, so the push was refused.\n");
            reply.push_str("say Tell an admin of this host; the cause is in their log.\n");
            false
        }
    };
    reply.push_str(if allowed { "allow\n" } else { "refuse\n" });
    let _ = stream.write_all(reply.as_bytes());
}

fn decide(config: &Config, stream: &UnixStream) -> Result<bool, String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    // Who asks: the kernel's word, taken when the hook connected.
    let uid = getsockopt(stream, PeerCredentials)
        .map_err(|e| format!("SO_PEERCRED: {e}"))?
        .uid();
    let account = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .map_err(|e| format!("cannot look up uid {uid}: {e}"))?
        .ok_or_else(|| format!("uid {uid} has no account name"))?;
    let text = read_question(stream, std::time::Instant::now() + QUESTION_TIMEOUT)
        .map_err(|e| format!("reading the question of uid {uid}: {e}"))?;
    let question =
        Question::decode(&text).map_err(|e| format!("bad question from uid {uid}: {e}"))?;
    let repo = hook::repo_for(config, &question.repo_dir)?;
    // Every ref is decided here, pre-receive's too: whether git will run
    // the `update` hook depends on what the pusher's account may run,
    // which this account cannot tell.
    let refs = PushedRefs::Known(question.refs);
    let mut store = Store::open(&config.store_path()).map_err(|e| e.to_string())?;
    let who = (
        account.name,
        Transport::Local,
        Credential::UnixUser,
        None,
        None,
    );
    let mut stream_say = |line: &str| {
        // Lines before a wait go out at once, so the user sees them.
        let line = format!("say {}\n", line.replace('\n', " "));
        let _ = (&mut &*stream).write_all(line.as_bytes());
    };
    hook::decide(
        config,
        &mut store,
        question.kind,
        &repo,
        refs,
        who,
        &question.args,
        &mut stream_say,
    )
}

/// Reads one whole question by `deadline`: the time limit holds for the
/// question, not for each read, so a client sending a byte now and then
/// cannot hold a slot for longer.
fn read_question(stream: &UnixStream, deadline: std::time::Instant) -> Result<String, String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("not sent within {} s", QUESTION_TIMEOUT.as_secs()));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = match (&mut &*stream).read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() as u64 > MAX_QUESTION {
            return Err("the question is too long".into());
        }
    }
    String::from_utf8(bytes).map_err(|_| "the question is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_round_trip_and_reject_what_is_not_one() {
        let question = Question {
            kind: HookKind::Update,
            repo_dir: PathBuf::from("/srv/git/a.git"),
            refs: vec!["refs/heads/main".into()],
            args: vec!["refs/heads/main".into(), "0".repeat(40), "1".repeat(40)],
        };
        let text = question.encode().unwrap();
        assert_eq!(Question::decode(&text).unwrap(), question);
        for bad in [
            String::new(),
            "git2fa-hook 2\nkind update\ndir /x\n".to_string(),
            format!("{text}user alice\n"),
            format!("{text}kind pre-receive\n"),
            "git2fa-hook 1\ndir /x\n".to_string(),
        ] {
            assert!(Question::decode(&bad).is_err(), "{bad:?}");
        }
        let mut broken = question;
        broken.refs.push("refs/heads/a\nuser root".into());
        assert!(broken.encode().is_err());
    }
}
