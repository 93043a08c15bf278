//! A finding of `check`, and what the checks share.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What `check` found.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<(Level, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Note,
    Problem,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Problem => "problem",
        }
    }
}

impl Report {
    pub(super) fn ok(&mut self, text: impl Into<String>) {
        self.lines.push((Level::Ok, text.into()));
    }

    pub(super) fn note(&mut self, text: impl Into<String>) {
        self.lines.push((Level::Note, text.into()));
    }

    pub(super) fn problem(&mut self, text: impl Into<String>) {
        self.lines.push((Level::Problem, text.into()));
    }

    pub fn problems(&self) -> usize {
        self.lines
            .iter()
            .filter(|(level, _)| *level == Level::Problem)
            .count()
    }
}

/// A file's permission bits.
pub(super) fn mode(path: &Path) -> std::io::Result<u32> {
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777)
}
