//! A problem `indikator check` reports: which file, which key, what is wrong and what to do.
//!
//! Owns: the one type every loader (settings, pipelines, schemas, code lists) returns its
//! findings in, so that `check` can report all of them at once instead of stopping at the first,
//! and the one-line form of an error with its causes.
//! Must not: decide what is a problem; the loaders do.

use std::path::{Path, PathBuf};

/// One finding of a loader.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub file: PathBuf,
    /// Dotted key path inside the file (`map.sex.codes`, `fields[2].constraints.enum`); empty when
    /// the problem is the file as a whole.
    pub key: String,
    pub message: String,
    pub severity: Severity,
}

/// Whether a finding stops `check` (and a run) or is only worth knowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Problem {
    /// An error about `key` in `file`.
    pub fn error(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A warning about `key` in `file`.
    pub fn warning(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, key, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// An error and its causes on one line, as `main.rs` prints them with `{err:#}`: for a
/// problem's message, the ledger's `error` column and log fields.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_names_file_and_key() {
        let p = Problem::error(
            Path::new("pipelines/a.toml"),
            "map.sex",
            "unknown code list `kön`",
        );
        assert_eq!(
            p.to_string(),
            "error: pipelines/a.toml: map.sex: unknown code list `kön`"
        );
    }
}
