//! Why `git2fa serve` could not start, or had to stop.

use std::fmt;

#[derive(Debug)]
pub enum ServeError {
    /// A system call on `what` failed: a listener, the hook socket's file,
    /// the SSH host key's file, the runtime.
    Io { what: String, error: std::io::Error },
    /// Something is in the way: another daemon answers at the hook socket,
    /// a file there is not a socket, the host key does not parse.
    InTheWay(String),
    /// A server task failed.
    Task(String),
}

impl ServeError {
    /// Wraps an I/O error met on `what` (`map_err(ServeError::io(…))`).
    pub fn io(what: impl fmt::Display) -> impl FnOnce(std::io::Error) -> ServeError {
        let what = what.to_string();
        move |error| ServeError::Io { what, error }
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Io { what, error } => write!(f, "{what}: {error}"),
            ServeError::InTheWay(what) | ServeError::Task(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}
