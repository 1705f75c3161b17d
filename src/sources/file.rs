//! `kind = "file"`: local files, each read whole; several files are the pieces of one table.
//!
//! Owns: reading the files a pipeline names.
//! Must not: decode it or archive it (the pipeline archives every payload it fetches).

use std::path::PathBuf;

use super::{FetchContext, Fetched, Payload, Source, SourceError};

/// A checked file source: paths are resolved against the pipeline file's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSource {
    /// One payload each, in this order.
    pub paths: Vec<PathBuf>,
}

impl Source for FileSource {
    async fn fetch(&self, _cx: &FetchContext) -> Result<Fetched, SourceError> {
        let mut payloads = Vec::with_capacity(self.paths.len());
        for path in &self.paths {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|source| SourceError::Read {
                    path: path.clone(),
                    source,
                })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            payloads.push(Payload::new(&name, path.display().to_string(), bytes));
        }
        Ok(Fetched::new(payloads, Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_file_names_the_path_and_the_key() {
        let source = FileSource {
            paths: vec![PathBuf::from("/nowhere/x.csv")],
        };
        let err = source.fetch(&FetchContext::default()).await.unwrap_err();
        insta::assert_snapshot!(err, @"cannot read /nowhere/x.csv; check `path` in [source] (it is relative to the pipeline file)");
    }

    #[tokio::test]
    async fn a_file_is_fetched_whole_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.csv");
        std::fs::write(&path, "a;b\n").unwrap();
        let fetched = FileSource { paths: vec![path] }
            .fetch(&FetchContext::default())
            .await
            .unwrap();
        assert_eq!(fetched.payloads[0].name, "data.csv");
        assert_eq!(fetched.total_bytes(), 4);
    }
}
