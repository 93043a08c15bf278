//! Log lines of the hot-path binaries go to syslog (`/dev/log`): their
//! stderr is the git user's screen, and internal causes (paths, SQL) must
//! not reach it. RFC 3164 format, facility `auth` (4).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where this process's lines go: set by `init` (the hot-path binaries)
/// and `configure` (once the config is read, every program).
struct Sink {
    tag: String,
    socket: Option<UnixDatagram>,
    /// The path `socket` was connected to.
    socket_path: Option<PathBuf>,
    /// `GIT2FA_LOG_FILE`, else `[log] file`: lines are appended there too
    /// (hosts without a syslog daemon; tests).
    file: Option<PathBuf>,
    /// `[log] audit = "syslog"`.
    audit: bool,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// `[log] audit = "syslog"`, readable without the sink's lock: every
/// audit row asks, and with it off (the default) nothing else is done.
static AUDIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether audit rows go to syslog too.
pub fn audit_enabled() -> bool {
    AUDIT.load(std::sync::atomic::Ordering::Relaxed)
}

const DEV_LOG: &str = "/dev/log";

fn connect(path: &Path) -> Option<UnixDatagram> {
    UnixDatagram::unbound()
        .ok()
        .filter(|s| s.connect(path).is_ok())
}

fn env_file() -> Option<PathBuf> {
    std::env::var_os("GIT2FA_LOG_FILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
}

/// Runs `f` on this process's sink, made with the program's name as its
/// tag when neither `init` nor `configure` ran yet.
fn with_sink<T>(f: impl FnOnce(&mut Sink) -> T) -> T {
    let mut guard = SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let sink = guard.get_or_insert_with(|| Sink {
        tag: std::env::args_os()
            .next()
            .as_deref()
            .map(Path::new)
            .and_then(Path::file_name)
            .map_or_else(|| "git2fa".into(), |n| n.to_string_lossy().into_owned()),
        socket: connect(Path::new(DEV_LOG)),
        socket_path: Some(PathBuf::from(DEV_LOG)),
        file: env_file(),
        audit: false,
    });
    f(sink)
}

struct Syslog;

impl log::Log for Syslog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        with_sink(|sink| sink.send(severity(record.level()), &record.args().to_string()));
    }

    fn flush(&self) {}
}

impl Sink {
    /// One line to syslog and to the file.
    fn send(&self, severity: u8, message: &str) {
        let message = one_line(message);
        if let Some(socket) = &self.socket {
            let _ = socket.send(format_line(&self.tag, severity, &message).as_bytes());
        }
        if let Some(mut file) = self.file.as_deref().and_then(open_log) {
            use std::io::Write;
            let _ = writeln!(file, "{}", file_line(&self.tag, severity, &message));
        }
    }
}

fn severity(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Control characters (a newline in a path, say) become spaces: one
/// message, one line.
pub fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `<PRI>tag[pid]: message` (RFC 3164 as syslog daemons take it on their
/// socket; they add the time), facility auth (4).
pub fn format_line(tag: &str, severity: u8, message: &str) -> String {
    format!(
        "<{}>{tag}[{}]: {message}",
        4 * 8 + severity,
        std::process::id()
    )
}

/// `TIME tag[pid] LEVEL: message`, the time in UTC (RFC 3339).
pub fn file_line(tag: &str, severity: u8, message: &str) -> String {
    let level = match severity {
        0..=3 => "error",
        4 => "warning",
        5 => "notice",
        6 => "info",
        _ => "debug",
    };
    format!(
        "{} {tag}[{}] {level}: {message}",
        crate::system::time::format_rfc3339(crate::system::time::now()),
        std::process::id()
    )
}

/// Installs the syslog logger for `tag`; the level comes from `GIT2FA_LOG`
/// (error, warn, info, debug), warn by default. Without a syslog socket the
/// lines go to the file alone, if any.
pub fn init(tag: &str) {
    with_sink(|sink| sink.tag = tag.into());
    let level = match std::env::var("GIT2FA_LOG").as_deref() {
        Ok("error") => log::LevelFilter::Error,
        Ok("info") => log::LevelFilter::Info,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Warn,
    };
    if log::set_boxed_logger(Box::new(Syslog)).is_ok() {
        log::set_max_level(level);
    }
}

/// Applies `[log]` once the config is read: the file (unless
/// `GIT2FA_LOG_FILE` names one), the syslog socket, and whether audit
/// rows go to syslog.
pub fn configure(file: Option<&Path>, socket: Option<&Path>, audit: bool) {
    with_sink(|sink| {
        if env_file().is_none() {
            sink.file = file.map(Path::to_path_buf);
        }
        if socket != sink.socket_path.as_deref() {
            sink.socket = socket.and_then(connect);
            sink.socket_path = socket.map(Path::to_path_buf);
        }
        sink.audit = audit;
    });
    AUDIT.store(audit, std::sync::atomic::Ordering::Relaxed);
}

/// A line of a program that logs to its standard error (serve, the CLI),
/// appended to the log file too when one is named (`[log] file`,
/// `GIT2FA_LOG_FILE`); `message` is already one line.
pub fn also_to_file(level: log::Level, message: &str) {
    let sink = SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(Sink {
        tag,
        file: Some(path),
        ..
    }) = sink.as_ref()
    else {
        return;
    };
    use std::io::Write;
    if let Some(mut file) = open_log(path) {
        let _ = writeln!(file, "{}", file_line(tag, severity(level), message));
    }
}

/// The log file, to append to: a regular file, never through a symbolic
/// link (the file's directory may be git's, and root's commands log too)
/// nor a FIFO that would hold the program up.
fn open_log(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(path)
        .ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// One committed audit row (`fields`, already `key=value` text), to syslog
/// and the file when `[log] audit = "syslog"`: refusals and failures as
/// notices, the rest as information.
pub fn audit(refused: bool, fields: &str) {
    with_sink(|sink| {
        if sink.audit {
            sink.send(if refused { 5 } else { 6 }, &format!("audit {fields}"));
        }
    });
}

/// `key=value` for a log line: the value quoted (with `"` and `\`
/// escaped) when it is empty or holds a space, a quote or `=`.
pub fn field(key: &str, value: &str) -> String {
    let value = one_line(value);
    if value.is_empty() || value.contains([' ', '"', '=', '\\']) {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{key}=\"{escaped}\"")
    } else {
        format!("{key}={value}")
    }
}

/// Replaces the panic message (file and line, meant for developers, not
/// for a git user) with `refusal` on stderr, and logs the panic. The
/// process then ends without having started git: release builds abort
/// (`panic = "abort"`), test builds unwind to a non-zero exit.
pub fn refuse_on_panic(refusal: fn()) {
    std::panic::set_hook(Box::new(move |info| {
        log::error!("internal error, operation refused: {info}");
        refusal();
    }));
}

/// Test builds only: panics at `point` when `GIT2FA_TEST_PANIC` names it,
/// so that a test can prove a panic there refuses the operation. Release
/// builds compile it to nothing.
#[cfg(debug_assertions)]
pub fn panic_point(point: &str) {
    if std::env::var("GIT2FA_TEST_PANIC").as_deref() == Ok(point) {
        panic!("panic injected at {point}");
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn panic_point(_point: &str) {}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_have_priority_tag_and_no_newlines() {
        let line = super::format_line("git2fa-shell", 3, &super::one_line("store: locked\nagain"));
        assert!(line.starts_with("<35>git2fa-shell["), "{line}");
        assert!(line.ends_with("]: store: locked again"), "{line}");
    }

    #[test]
    fn file_lines_have_time_tag_and_level() {
        let line = super::file_line("git2fa-http", 4, "store: locked");
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(time.len(), "2026-12-03T21:05:00Z".len(), "{line}");
        assert!(time.ends_with('Z') && time.contains('T'), "{line}");
        assert!(rest.starts_with("git2fa-http["), "{line}");
        assert!(rest.ends_with("] warning: store: locked"), "{line}");
    }

    #[test]
    fn the_log_file_is_never_reached_through_a_link_or_a_fifo() {
        // Attack: the account running git owns the log file's directory
        // and puts a symbolic link there to a file of root's; root's
        // admin commands, which log too, would append lines git chose.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("root-file");
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("git2fa.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(super::open_log(&link).is_none());
        let fifo = dir.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            super::open_log(&fifo).is_none(),
            "a FIFO nobody reads would block"
        );
        assert!(super::open_log(&dir.path().join("new.log")).is_some());
        assert!(super::open_log(&target).is_some());
    }

    #[test]
    fn fields_are_quoted_when_they_must_be() {
        assert_eq!(super::field("user", "alice"), "user=alice");
        assert_eq!(
            super::field("reason", "no session"),
            "reason=\"no session\""
        );
        assert_eq!(super::field("user", ""), "user=\"\"");
        assert_eq!(super::field("x", "a\"b=c\\"), "x=\"a\\\"b=c\\\\\"");
        assert_eq!(super::field("x", "a\nb"), "x=\"a b\"");
    }
}
