//! Reading the small text files git2fa is configured by (the config,
//! `git2fa.toml`), and saying where in them a problem is.

use std::fmt;
use std::path::{Path, PathBuf};

/// Config and repository files larger than this are refused unread.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A configuration or repository file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for FileError {}

impl FileError {
    pub fn new(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        FileError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// Reads a text file of at most `MAX_FILE_BYTES`.
pub fn read_small_file(path: &Path) -> Result<String, FileError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| FileError::new(path, None, format!("cannot read: {}", io_reason(&e))))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| FileError::new(path, None, format!("cannot read: {}", io_reason(&e))))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::new(path, None, "file is larger than 1 MiB"));
    }
    Ok(text)
}

/// The reason of an I/O error without the "(os error N)" noise.
pub fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not valid UTF-8".into(),
        _ => error.to_string(),
    }
}

/// Turns a TOML error into "line N: [table] key: message".
pub(crate) fn toml_error(path: &Path, text: &str, error: &toml_edit::de::Error) -> FileError {
    let message = error.message().trim().to_string();
    match error.span() {
        Some(span) => {
            let (line, key) = locate(text, span.start);
            let message = match key {
                Some(key) => format!("{key}: {message}"),
                None => message,
            };
            FileError::new(path, Some(line), message)
        }
        None => FileError::new(path, None, message),
    }
}

/// The 1-based line of byte `offset`, and the `[table] key` written there.
fn locate(text: &str, offset: usize) -> (usize, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let table = before[..line_start].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']')).then(|| l.to_string())
    });
    let key = if line_text.trim_start().starts_with('[') {
        Some(line_text.trim().to_string())
    } else {
        match (table, key) {
            (Some(table), Some(key)) => Some(format!("{table} {key}")),
            (_, key) => key,
        }
    };
    (line, key)
}

/// The line where `keys` (a table path) is written, if it is.
pub(crate) fn line_of_key(text: &str, keys: &[&str]) -> Option<usize> {
    let doc: toml_edit::Document<&str> = toml_edit::Document::parse(text).ok()?;
    let mut item = doc.as_item();
    for key in keys {
        item = item.get(key)?;
    }
    let span = item.span()?;
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}
