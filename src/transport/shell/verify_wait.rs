//! The wait of a `2fa verify` that printed a one-time link: for a code
//! line or the link's use, whichever comes first, without its I/O. The shim
//! drives it with poll(2) on its standard input (`twofa.rs`), serve's SSH
//! server with its channel (`serve::ssh`); the rules are these, once:
//!
//! - the link is looked at every `LINK_POLL`;
//! - a code line ends the wait, the link looked at once more first (it may
//!   have been used while the line was typed);
//! - empty lines are skipped (Enter pressed after touching the key), and a
//!   line is at most `MAX_CODE_LINE` bytes;
//! - once the input has ended (`ssh … 2fa verify < /dev/null`) only the
//!   link is waited for;
//! - the wait ends when the link does (`webauthn::LINK_TTL`).

use std::time::{Duration, Instant};

use super::{LINK_POLL, MAX_CODE_LINE};

/// Why a wait ended without a code or the link.
pub const TOO_LATE: &str = "no code was typed and the link was not used in time";

/// How long the wait lasts: as long as the link works.
pub const WAIT: Duration = Duration::from_secs(crate::factor::webauthn::LINK_TTL.unsigned_abs());

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Look whether the link was used (`Connection::watch_link`).
    LookAtLink,
    /// A code line came: look at the link once more, then check the line.
    Line(String),
    /// Neither a code nor the link in time.
    TooLate,
    /// Wait at most this long for input (while it is open) or for the
    /// client to leave, then ask again.
    Wait(Duration),
}

/// The wait's state: what came in, when the link was looked at, when the
/// wait ends.
#[derive(Debug)]
pub struct VerifyWait {
    deadline: Instant,
    looked: Instant,
    buffer: Vec<u8>,
    input_open: bool,
}

impl VerifyWait {
    pub fn new(now: Instant) -> VerifyWait {
        VerifyWait {
            deadline: now + WAIT,
            looked: now,
            buffer: Vec::new(),
            input_open: true,
        }
    }

    /// Whether the input may still bring a line.
    pub fn input_open(&self) -> bool {
        self.input_open
    }

    /// Bytes the client sent.
    pub fn input(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The input ended (or failed): what is left of it is a last line.
    pub fn input_ended(&mut self) {
        self.input_open = false;
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Instant) -> Next {
        if now.saturating_duration_since(self.looked) >= LINK_POLL {
            self.looked = now;
            return Next::LookAtLink;
        }
        if now >= self.deadline {
            return Next::TooLate;
        }
        while let Some(line) = self.take_line() {
            if !line.is_empty() {
                return Next::Line(line);
            }
        }
        let until_look = LINK_POLL.saturating_sub(now.saturating_duration_since(self.looked));
        Next::Wait(until_look.min(self.deadline.saturating_duration_since(now)))
    }

    /// The next whole line, trimmed (or, once the input has ended or a
    /// line is too long, what is there).
    fn take_line(&mut self) -> Option<String> {
        if self.buffer.is_empty() {
            return None;
        }
        let end = match self.buffer.iter().position(|&b| b == b'\n') {
            Some(at) => at + 1,
            None if !self.input_open || self.buffer.len() >= MAX_CODE_LINE => self.buffer.len(),
            None => return None,
        };
        let end = end.min(MAX_CODE_LINE);
        let line: Vec<u8> = self.buffer.drain(..end).collect();
        Some(String::from_utf8_lossy(&line).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_looked_at_every_poll_and_a_line_ends_the_wait() {
        let start = Instant::now();
        let mut wait = VerifyWait::new(start);
        assert_eq!(wait.next(start), Next::Wait(LINK_POLL));
        // Half a line: nothing yet; Enter after a key's touch: skipped.
        wait.input(b"\n  \n1234");
        assert_eq!(wait.next(start), Next::Wait(LINK_POLL));
        let later = start + LINK_POLL;
        assert_eq!(wait.next(later), Next::LookAtLink);
        assert_eq!(wait.next(later), Next::Wait(LINK_POLL));
        wait.input(b"56\n");
        assert_eq!(wait.next(later), Next::Line("123456".into()));
    }

    #[test]
    fn after_the_input_ends_its_rest_is_a_line_and_then_only_the_link_counts() {
        let start = Instant::now();
        let mut wait = VerifyWait::new(start);
        wait.input(b"654321");
        wait.input_ended();
        assert!(!wait.input_open());
        assert_eq!(wait.next(start), Next::Line("654321".into()));
        assert_eq!(wait.next(start), Next::Wait(LINK_POLL));
        // At the link's end, one last look, then too late.
        let end = start + WAIT;
        assert_eq!(wait.next(end), Next::LookAtLink);
        assert_eq!(wait.next(end), Next::TooLate);
    }

    #[test]
    fn a_line_is_at_most_max_code_line_bytes() {
        let start = Instant::now();
        let mut wait = VerifyWait::new(start);
        wait.input(&[b'7'; MAX_CODE_LINE + 10]);
        assert_eq!(wait.next(start), Next::Line("7".repeat(MAX_CODE_LINE)));
    }
}
