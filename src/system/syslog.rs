//! Log lines of the hot-path binaries go to syslog (`/dev/log`): their
//! stderr is the git user's screen, and internal causes (paths, SQL) must
//! not reach it. RFC 3164 format, facility `auth` (4).

use std::os::unix::net::UnixDatagram;

struct Syslog {
    socket: Option<UnixDatagram>,
    tag: String,
    /// `GIT2FA_LOG_FILE`: lines are appended there too (hosts without a
    /// syslog daemon; tests).
    file: Option<std::path::PathBuf>,
}

impl log::Log for Syslog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(&self.tag, record.level(), &record.args().to_string());
        if let Some(socket) = &self.socket {
            let _ = socket.send(line.as_bytes());
        }
        if let Some(path) = &self.file {
            use std::io::Write;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{line}");
            }
        }
    }

    fn flush(&self) {}
}

/// `<PRI>tag[pid]: message`, with the priority for facility auth.
pub fn format_line(tag: &str, level: log::Level, message: &str) -> String {
    let severity = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    let message: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "<{}>{tag}[{}]: {message}",
        4 * 8 + severity,
        std::process::id()
    )
}

/// Installs the syslog logger for `tag`; the level comes from `GIT2FA_LOG`
/// (error, warn, info, debug), warn by default. Without a syslog socket the
/// lines are dropped.
pub fn init(tag: &str) {
    let socket = UnixDatagram::unbound()
        .ok()
        .filter(|s| s.connect("/dev/log").is_ok());
    let level = match std::env::var("GIT2FA_LOG").as_deref() {
        Ok("error") => log::LevelFilter::Error,
        Ok("info") => log::LevelFilter::Info,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Warn,
    };
    let file = std::env::var_os("GIT2FA_LOG_FILE").map(std::path::PathBuf::from);
    if log::set_boxed_logger(Box::new(Syslog {
        socket,
        tag: tag.into(),
        file,
    }))
    .is_ok()
    {
        log::set_max_level(level);
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
        let line = super::format_line("git2fa-shell", log::Level::Error, "store: locked\nagain");
        assert!(line.starts_with("<35>git2fa-shell["), "{line}");
        assert!(line.ends_with("]: store: locked again"), "{line}");
    }
}
