//! The one error of configuration files: reading, syntax ([`super::parser`]) and values.

use std::io;
use std::path::{Path, PathBuf};

/// A configuration-file error, naming the file and (except when the file cannot be read) the
/// line: `file: problem` or `file:line: problem`.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file cannot be read.
    #[error("{}: cannot read the file: {source}", .file.display())]
    Read {
        /// The file (as given, or resolved against the including file).
        file: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: io::Error,
    },
    /// A syntax error, or a value of the wrong type or out of range.
    #[error("{}:{line}: {message}", .file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An `include` whose file cannot be read or has an error.
    #[error("{}:{line}: in included file: {}", .file.display(), .source.located())]
    Include {
        /// The including file.
        file: PathBuf,
        /// Line of the `include`.
        line: usize,
        /// The error in the included file.
        #[source]
        source: Box<ConfError>,
    },
}

impl ConfError {
    /// An error at `line` of `file`.
    pub(crate) fn at(file: &Path, line: usize, message: impl Into<String>) -> ConfError {
        ConfError::Invalid {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ConfError::Read { file, .. }
            | ConfError::Invalid { file, .. }
            | ConfError::Include { file, .. } => file,
        }
    }

    /// 1-based line number; 0 when the error concerns the whole file.
    pub fn line(&self) -> usize {
        match self {
            ConfError::Read { .. } => 0,
            ConfError::Invalid { line, .. } | ConfError::Include { line, .. } => *line,
        }
    }

    /// The problem of an [`ConfError::Invalid`] error, without file and line (tests).
    #[cfg(test)]
    pub(crate) fn problem(&self) -> &str {
        match self {
            ConfError::Invalid { message, .. } => message,
            other => panic!("not an error at a line: {other}"),
        }
    }

    /// The message as quoted inside an including file's error: always `file:line: problem`
    /// (line 0 for an unreadable file).
    fn located(&self) -> String {
        match self {
            ConfError::Read { file, source } => {
                format!("{}:0: cannot read the file: {source}", file.display())
            }
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_line() {
        let read = || ConfError::Read {
            file: "inc.conf".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(read().to_string(), "inc.conf: cannot read the file: gone");
        assert_eq!(read().line(), 0);
        let invalid = ConfError::at(Path::new("a.conf"), 3, "bad");
        assert_eq!(invalid.to_string(), "a.conf:3: bad");
        let include = ConfError::Include {
            file: "main.conf".into(),
            line: 2,
            source: Box::new(read()),
        };
        assert_eq!(
            include.to_string(),
            "main.conf:2: in included file: inc.conf:0: cannot read the file: gone"
        );
        assert_eq!(
            (include.file(), include.line()),
            (Path::new("main.conf"), 2)
        );
        assert!(std::error::Error::source(&include).is_some());
    }
}
