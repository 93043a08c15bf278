//! The question a hook asks `git2fa serve` over `[daemon] socket`, and the
//! hook's side of it (`ask`). `serve::hook_socket` answers.
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

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// Why a push could not be decided. Each one refuses the push; its text
/// goes to the admin's log, never to the pusher.
#[derive(Debug)]
pub enum HookError {
    /// The store could not be opened, read or written.
    Store(StoreError),
    /// A file, stream, socket or account lookup failed while `doing`.
    Io {
        doing: String,
        error: std::io::Error,
    },
    /// What came in is not what git, a shim or a hook sends.
    Malformed(String),
}

impl HookError {
    /// Wraps an I/O error met while `doing` (`map_err(HookError::io("…"))`).
    pub fn io(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> HookError {
        let doing = doing.into();
        move |error| HookError::Io { doing, error }
    }

    /// The same, for a system call that failed with `errno`.
    pub fn errno(doing: impl Into<String>) -> impl FnOnce(nix::Error) -> HookError {
        let doing = doing.into();
        move |errno| HookError::Io {
            doing,
            error: errno.into(),
        }
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookError::Store(e) => write!(f, "store: {e}"),
            HookError::Io { doing, error } => write!(f, "{doing}: {error}"),
            HookError::Malformed(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HookError::Store(e) => Some(e),
            HookError::Io { error, .. } => Some(error),
            HookError::Malformed(_) => None,
        }
    }
}

impl From<StoreError> for HookError {
    fn from(e: StoreError) -> HookError {
        HookError::Store(e)
    }
}

/// The hook git ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    PreReceive,
    Update,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::PreReceive => "pre-receive",
            HookKind::Update => "update",
        }
    }

    pub fn from_name(name: &str) -> Option<HookKind> {
        match name {
            "pre-receive" => Some(HookKind::PreReceive),
            "update" => Some(HookKind::Update),
            _ => None,
        }
    }
}

pub const VERSION_LINE: &str = "git2fa-hook 1";
/// A question longer than this is refused (pre-receive reads 4 MiB at most).
pub const MAX_QUESTION: u64 = 5 << 20;

/// What a hook asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub kind: HookKind,
    pub repo_dir: PathBuf,
    pub refs: Vec<String>,
    pub args: Vec<String>,
}

impl Question {
    pub fn encode(&self) -> Result<String, HookError> {
        let mut text = format!("{VERSION_LINE}\nkind {}\n", self.kind.name());
        let dir = self
            .repo_dir
            .to_str()
            .ok_or_else(|| HookError::Malformed("the repository path is not UTF-8".into()))?;
        for (key, value) in std::iter::once(("dir", dir))
            .chain(self.refs.iter().map(|r| ("ref", r.as_str())))
            .chain(self.args.iter().map(|a| ("arg", a.as_str())))
        {
            if value.contains('\n') {
                return Err(HookError::Malformed(format!("a {key} holds a line break")));
            }
            text.push_str(&format!("{key} {value}\n"));
        }
        Ok(text)
    }

    pub fn decode(text: &str) -> Result<Question, HookError> {
        let bad = |what: String| HookError::Malformed(format!("bad question: {what}"));
        let mut lines = text.lines();
        if lines.next() != Some(VERSION_LINE) {
            return Err(bad(format!("it does not start with {VERSION_LINE:?}")));
        }
        let (mut kind, mut dir) = (None, None);
        let (mut refs, mut args) = (Vec::new(), Vec::new());
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "kind" if kind.is_none() => {
                    kind = Some(
                        HookKind::from_name(value)
                            .ok_or_else(|| bad("unknown hook kind".into()))?,
                    )
                }
                "dir" if dir.is_none() => dir = Some(PathBuf::from(value)),
                "ref" => refs.push(value.to_string()),
                "arg" => args.push(value.to_string()),
                _ => return Err(bad(format!("unexpected line {:?}", truncate(line)))),
            }
        }
        Ok(Question {
            kind: kind.ok_or_else(|| bad("no kind".into()))?,
            repo_dir: dir.ok_or_else(|| bad("no dir".into()))?,
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
pub fn ask(
    socket: &Path,
    question: &Question,
    say: &mut dyn FnMut(&str),
) -> Result<bool, HookError> {
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
