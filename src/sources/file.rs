//! `kind = "file"`: one local file, read whole.
//!
//! Owns: reading the file a pipeline names.
//! Must not: decode it or archive it (the pipeline archives every payload it fetches).

use std::path::PathBuf;

use super::{Fetched, Payload, Source, SourceError};

/// A checked file source: the path is resolved against the pipeline file's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSource {
    pub path: PathBuf,
}

impl Source for FileSource {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let bytes = tokio::fs::read(&self.path)
            .await
            .map_err(|source| SourceError::Read {
                path: self.path.clone(),
                source,
            })?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "payload".into());
        Ok(Fetched {
            payloads: vec![Payload {
                name,
                origin: self.path.display().to_string(),
                bytes,
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_file_names_the_path_and_the_key() {
        let source = FileSource {
            path: PathBuf::from("/nowhere/x.csv"),
        };
        let err = source.fetch().await.unwrap_err();
        insta::assert_snapshot!(err, @"cannot read /nowhere/x.csv; check `path` in [source] (it is relative to the pipeline file)");
    }

    #[tokio::test]
    async fn a_file_is_fetched_whole_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.csv");
        std::fs::write(&path, "a;b\n").unwrap();
        let fetched = FileSource { path }.fetch().await.unwrap();
        assert_eq!(fetched.payloads[0].name, "data.csv");
        assert_eq!(fetched.total_bytes(), 4);
    }
}
