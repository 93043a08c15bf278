//! Asking the resident `git2fa serve` for a decision: the shims' and the
//! hook's side of `<data_dir>/decide.sock`, and the wire format both sides
//! use (`serve::decide_socket` answers).
//!
//! `git2fa-shell`, `git2fa-hook` and `git2fa-http` are small programs: they
//! read the config, send one request, and start git (or print the refusal)
//! as serve answers. serve keeps the store open, decides with the same gate
//! and commits the audit row before it answers. When no serve answers (not
//! running, another config, a broken answer, no answer within the store's
//! deadline) nothing was allowed, and the shim hands the whole operation
//! to `git2fa` beside it, started under the shim's own name, which decides
//! directly (`exec::hand_over`).
//!
//! A message is one item per line, `NAME VALUE`, the value percent-encoded
//! where it holds `%` or a control character. A request starts with
//! `git2fa-ask 1` and ends with the end of the client's input. An answer is
//! `stdout`/`stderr` items, which the client writes out as they come, then
//! one final item: `run` (after `bin`, `arg`, `dir`, `env` and `max`: start
//! git), `exit N`, `wait SECONDS` (poll with `open?` requests, then ask
//! again without waiting), `open yes|no`, or `other` (decide directly).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::system::config::Config;
use crate::transport::exec::{self, GitInvocation};

/// The socket's name in `data_dir`.
pub const SOCKET: &str = "decide.sock";
/// A request's first line.
pub const VERSION_LINE: &str = "git2fa-ask 1";
/// The longest request or answer (pre-receive sends up to 4 MiB of refs).
pub const MAX_MESSAGE: u64 = 6 << 20;
/// How long a shim waits for an answer beyond `[store] timeout`, serve's
/// own deadline on the store.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

const ESCAPED: &AsciiSet = &CONTROLS.add(b'%');

/// Items, in order; a name may repeat (`arg`, `ref`, `env`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    items: Vec<(String, String)>,
}

impl Message {
    /// A request of `kind` from a shim that read `config`.
    pub fn request(kind: &str, config: &Config) -> Message {
        Message::default()
            .with("kind", kind)
            .with("config", hex(&config.digest))
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Message {
        self.push(name, value);
        self
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.items.push((name.to_string(), value.into()));
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.items
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn encode(&self) -> String {
        self.items.iter().map(|(n, v)| item(n, v)).collect()
    }

    /// A request's text: the version line, then the items.
    pub fn encode_request(&self) -> String {
        format!("{VERSION_LINE}\n{}", self.encode())
    }

    pub fn decode_request(text: &str) -> Result<Message, String> {
        let Some(rest) = text
            .strip_prefix(VERSION_LINE)
            .and_then(|r| r.strip_prefix('\n'))
        else {
            return Err(format!("the request does not start with {VERSION_LINE:?}"));
        };
        let mut message = Message::default();
        for line in rest.lines() {
            let (name, value) = decode_item(line)?;
            message.items.push((name, value));
        }
        Ok(message)
    }

    /// Whether the shim read the configuration `config` holds.
    pub fn same_config(&self, config: &Config) -> bool {
        self.get("config") == Some(hex(&config.digest).as_str())
    }
}

/// One item's line.
pub fn item(name: &str, value: &str) -> String {
    format!("{name} {}\n", utf8_percent_encode(value, ESCAPED))
}

fn decode_item(line: &str) -> Result<(String, String), String> {
    let (name, value) = line.split_once(' ').unwrap_or((line, ""));
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(format!(
            "not an item: {:?}",
            line.chars().take(60).collect::<String>()
        ));
    }
    let value = percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| format!("the value of {name} is not UTF-8"))?;
    Ok((name.to_string(), value.into_owned()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The items that tell a shim to start `invocation`, stopped after `max`.
pub fn run_items(invocation: &GitInvocation, max: i64) -> Result<String, String> {
    let text = |what: &str, s: &std::ffi::OsStr| {
        s.to_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the {what} of git's command is not UTF-8"))
    };
    let mut out = item("bin", &text("program", invocation.git_bin.as_os_str())?);
    for arg in &invocation.args {
        out.push_str(&item("arg", &text("argument", arg)?));
    }
    out.push_str(&item(
        "dir",
        &text("directory", invocation.dir.as_os_str())?,
    ));
    for (name, value) in &invocation.env {
        out.push_str(&item("env", &format!("{name}={value}")));
    }
    out.push_str(&item("max", &max.to_string()));
    out.push_str(&item("run", ""));
    Ok(out)
}

/// serve's final word.
#[derive(Debug)]
pub enum Answer {
    /// Start git; stop it after `max`.
    Run {
        invocation: GitInvocation,
        max: Duration,
    },
    Exit(u8),
    /// Refused for now, and the user told where to verify: poll, then ask
    /// again without waiting.
    Wait(Duration),
    Open(bool),
}

/// Why no answer came: the shim then decides directly.
#[derive(Debug)]
pub enum Unanswered {
    /// No serve listens there (no socket, or a stale one).
    Absent,
    /// serve answers for another configuration, or is too busy.
    Declined(String),
    /// The exchange broke, or timed out, before a final answer.
    Broken(String),
}

/// Sends `request` to the serve on `config`'s socket and reads its answer;
/// `stdout` and `stderr` items go to `out` as they come.
pub fn ask(
    config: &Config,
    request: &Message,
    out: &mut dyn FnMut(&str, &str),
) -> Result<Answer, Unanswered> {
    let socket = config.data_dir.join(SOCKET);
    let mut stream = match UnixStream::connect(&socket) {
        Ok(stream) => stream,
        Err(_) => return Err(Unanswered::Absent),
    };
    let broken = |e: std::io::Error| Unanswered::Broken(format!("{}: {e}", socket.display()));
    let timeout =
        Duration::from_secs(u64::try_from(config.store.timeout).unwrap_or(5)) + ANSWER_MARGIN;
    let deadline = Instant::now() + timeout;
    stream.set_write_timeout(Some(timeout)).map_err(broken)?;
    stream
        .write_all(request.encode_request().as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .map_err(broken)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(broken)?.take(MAX_MESSAGE));
    let mut git = GitInvocation {
        git_bin: Default::default(),
        args: Vec::new(),
        dir: Default::default(),
        env: Vec::new(),
    };
    let mut max = None;
    let mut line = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Unanswered::Broken(format!(
                "{}: no answer within {} s",
                socket.display(),
                timeout.as_secs()
            )));
        }
        stream.set_read_timeout(Some(left)).map_err(broken)?;
        line.clear();
        if reader.read_line(&mut line).map_err(broken)? == 0 {
            return Err(Unanswered::Broken(format!(
                "{}: the answer ended without a final word",
                socket.display()
            )));
        }
        let (name, value) = decode_item(line.trim_end_matches('\n')).map_err(Unanswered::Broken)?;
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| Unanswered::Broken(format!("{name} {value:?} is not a number")))
        };
        match name.as_str() {
            "stdout" | "stderr" => out(&name, &value),
            "bin" => git.git_bin = value.into(),
            "arg" => git.args.push(value.into()),
            "dir" => git.dir = value.into(),
            "env" => match value.split_once('=') {
                Some((k, v)) => git.env.push((k.to_string(), v.to_string())),
                None => return Err(Unanswered::Broken(format!("env {value:?} has no ="))),
            },
            "max" => max = Some(Duration::from_secs(number(&value)?)),
            "run" => {
                let max = max.ok_or_else(|| Unanswered::Broken("run without max".into()))?;
                // The hooks read the config this shim was given, as when it
                // decides itself (serve may name the same file otherwise).
                for (name, value) in &mut git.env {
                    if name == "GIT2FA_CONFIG" {
                        *value = config.path.to_string_lossy().into_owned();
                    }
                }
                if git.git_bin.as_os_str().is_empty() || git.dir.as_os_str().is_empty() {
                    return Err(Unanswered::Broken("run without bin or dir".into()));
                }
                return Ok(Answer::Run {
                    invocation: git,
                    max,
                });
            }
            "exit" => return Ok(Answer::Exit(number(&value)?.min(255) as u8)),
            "wait" => return Ok(Answer::Wait(Duration::from_secs(number(&value)?))),
            "open" => return Ok(Answer::Open(value == "yes")),
            "other" => return Err(Unanswered::Declined(value)),
            _ => return Err(Unanswered::Broken(format!("unexpected item {name}"))),
        }
    }
}

/// Asks, and when serve says to wait, polls with `poll` (the same request
/// as kind `<kind>-poll`) every `WAIT_POLL` until a session opens or the
/// wait is over, then asks once more without waiting. Output goes to this
/// process's stdout and stderr.
pub fn ask_waiting(config: &Config, request: Message) -> Result<Answer, Unanswered> {
    let mut write = |name: &str, value: &str| {
        let _ = match name {
            "stdout" => {
                let mut out = std::io::stdout().lock();
                out.write_all(value.as_bytes()).and_then(|()| out.flush())
            }
            _ => {
                let mut err = std::io::stderr().lock();
                err.write_all(value.as_bytes()).and_then(|()| err.flush())
            }
        };
    };
    let kind = request.get("kind").unwrap_or_default().to_string();
    let wait = match ask(config, &request.clone().with("wait", "yes"), &mut write)? {
        Answer::Wait(wait) => wait,
        answer => return Ok(answer),
    };
    let deadline = Instant::now() + wait;
    let mut poll = request.clone();
    poll.items[0].1 = format!("{kind}-poll");
    while Instant::now() < deadline {
        std::thread::sleep(crate::authz::gate::WAIT_POLL);
        if let Answer::Open(true) = ask(config, &poll, &mut write)? {
            break;
        }
    }
    ask(config, &request.with("wait", "no"), &mut write)
}

/// Logs why serve did not answer, when that is news to an admin (serve
/// not running is not).
pub fn log_unanswered(why: &Unanswered) {
    match why {
        Unanswered::Absent => {}
        Unanswered::Declined(why) => log::info!("git2fa serve declined to decide: {why}"),
        Unanswered::Broken(why) => log::warn!("git2fa serve did not answer: {why}; deciding here"),
    }
}

/// Hands the operation to `git2fa` beside this program, started as
/// `name` with `args` (and `input` on its standard input, which this
/// process read already). `Err`: it could not start, and why, for the
/// caller to refuse in its framing.
pub fn hand_over(
    name: &str,
    args: &[std::ffi::OsString],
    input: Option<&[u8]>,
) -> Result<ExitCode, String> {
    exec::hand_over(name, args, input).map_err(|e| format!("cannot start git2fa as {name}: {e}"))
}

/// The repository git runs the hook in, absolute (serve's working directory
/// is not the hook's).
pub fn absolute(dir: &Path) -> std::path::PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| dir.to_path_buf(), |cwd| cwd.join(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_whatever_their_values_hold() {
        let request = Message::default()
            .with("kind", "ssh")
            .with("command", "git-upload-pack 'a b%20c'\nrm -rf /\r\0")
            .with("ref", "refs/heads/ünï")
            .with("ref", "");
        let text = request.encode_request();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert_eq!(Message::decode_request(&text).unwrap(), request);
        assert_eq!(
            request.all("ref").collect::<Vec<_>>(),
            ["refs/heads/ünï", ""]
        );
        for bad in [
            String::new(),
            "git2fa-ask 2\nkind ssh\n".to_string(),
            format!("{VERSION_LINE}\nKIND ssh\n"),
            format!("{VERSION_LINE}\nkind %ff\n"),
            format!("{VERSION_LINE}\n kind\n"),
        ] {
            assert!(Message::decode_request(&bad).is_err(), "{bad:?}");
        }
    }
}
