//! The transports whose issues have not landed yet refuse everything, with
//! a message that says so. They never allow.

use std::io::Write;
use std::process::ExitCode;

/// Refuses as `binary` would, in the form its caller shows to the user.
pub fn refuse(binary: &str) -> ExitCode {
    let message =
        format!("{binary} is not available in this version of git2fa; the operation is refused");
    match binary {
        "git2fa-shell" => {
            // A pkt-line: 4 hex digits of length (including themselves),
            // then "ERR ", so git prints "fatal: remote error: ...".
            let line = format!("ERR {message}\n");
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{:04x}{line}", line.len() + 4);
            let _ = out.flush();
        }
        "git2fa-http" => {
            println!(
                "Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n{message}"
            );
        }
        _ => {}
    }
    eprintln!("{message}");
    ExitCode::from(1)
}
