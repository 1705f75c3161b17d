//! A run's raw archive read back: the index every run writes beside its archived payloads
//! (`raw/<pipeline>/<run>/payloads.json`), and an earlier run's [`Fetched`] rebuilt from it for
//! `indikator replay`, without asking the source again.
//!
//! Owns: the index's shape (payloads in fetch order with name, origin, size and blake3; the
//! records likewise), writing it, and reading an archive back, bounded and checked.
//! Must not: compress payloads or know the archive's layout (the warehouse does), or decide
//! what a replay writes (the run does, as for any fetch).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Fetched, Payload};
use crate::warehouse::{Warehouse, WarehouseError};

/// The index's file name. Archived payloads end in `.zst`, so it never names one.
pub const INDEX_NAME: &str = "payloads.json";
/// The index's shape; a reader refuses another.
pub const INDEX_VERSION: u32 = 1;
/// The largest payload a replay decompresses: the HTTP layer's default `max_body_bytes` (a
/// network payload was at most that) times four, room for the biggest file exports we know.
/// A damaged or forged index cannot make a replay allocate more.
pub const MAX_REPLAY_PAYLOAD_BYTES: u64 = 1 << 30;

/// Which archived files of a run were payloads (decoded, in this order) and which records
/// (kept for audit: metadata, the manifest, pieces of an abandoned harvest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveIndex {
    pub version: u32,
    pub payloads: Vec<Entry>,
    pub records: Vec<Entry>,
}

/// One archived file: `<name>.zst` under the run's raw directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// Where it came from (a path or URL): messages about it name this.
    pub origin: String,
    /// Its size before compression.
    pub bytes: u64,
    /// blake3 of its bytes before compression.
    pub blake3: String,
}

impl Entry {
    fn of(payload: &Payload) -> Self {
        Self {
            name: payload.name.clone(),
            origin: payload.origin.clone(),
            bytes: payload.bytes.len() as u64,
            blake3: blake3::hash(&payload.bytes).to_hex().to_string(),
        }
    }
}

impl ArchiveIndex {
    /// The index of what `fetched` holds.
    pub fn of(fetched: &Fetched) -> Self {
        Self {
            version: INDEX_VERSION,
            payloads: fetched.payloads.iter().map(Entry::of).collect(),
            records: fetched.records.iter().map(Entry::of).collect(),
        }
    }

    /// Writes the index of `fetched` into run `run_id`'s archive. Call after every payload
    /// and record is archived: an index present means the archive is complete.
    pub fn write(
        fetched: &Fetched,
        warehouse: &Warehouse,
        pipeline: &str,
        run_id: &str,
    ) -> Result<PathBuf, WarehouseError> {
        let bytes = serde_json::to_vec_pretty(&Self::of(fetched)).expect("an index is plain JSON");
        warehouse.archive_plain(pipeline, run_id, INDEX_NAME, &bytes)
    }
}

/// Errors of reading a run's archive back; each names the run or the file, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "run `{run_id}` has no raw archive ({} is not there: retention pruned it, it was \
         removed, or the run fetched nothing); it cannot be replayed. Run the pipeline again \
         (`indikator run`)",
        .dir.display()
    )]
    Pruned { run_id: String, dir: PathBuf },
    #[error(
        "run `{run_id}` predates replay (or failed while archiving): its archive {} has no \
         {INDEX_NAME} saying which files were payloads. Run the pipeline again with --force; \
         that run can be replayed",
        .dir.display()
    )]
    NoIndex { run_id: String, dir: PathBuf },
    #[error(
        "{} is not an index this indikator reads (version {INDEX_VERSION} expected); run the \
         pipeline again with --force, or replay with the indikator that wrote it",
        .path.display()
    )]
    Index {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{}: the index says {bytes} bytes, more than a replay reads ({MAX_REPLAY_PAYLOAD_BYTES}); \
         the index is damaged, or the payload is too big to replay: run the pipeline again",
        .path.display()
    )]
    TooBig { path: PathBuf, bytes: u64 },
    #[error(
        "{} does not hold what was archived ({what}); the archive is damaged: run the pipeline \
         again (`indikator run --force`)",
        .path.display()
    )]
    Damaged { path: PathBuf, what: String },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An earlier run's archive with its index read: what a replay fetches from.
#[derive(Debug, Clone, PartialEq)]
pub struct Archived {
    pub run_id: String,
    dir: PathBuf,
    index: ArchiveIndex,
}

impl Archived {
    /// Opens the archive of run `run_id` of `pipeline` in `warehouse` and reads its index.
    /// `Err(Pruned)` when the run's directory is gone, `Err(NoIndex)` when the run archived
    /// before runs wrote an index.
    pub fn open(warehouse: &Warehouse, pipeline: &str, run_id: &str) -> Result<Self, ArchiveError> {
        let dir = warehouse.raw_dir(pipeline, run_id);
        if !dir.is_dir() {
            return Err(ArchiveError::Pruned {
                run_id: run_id.into(),
                dir,
            });
        }
        let path = dir.join(INDEX_NAME);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArchiveError::NoIndex {
                    run_id: run_id.into(),
                    dir,
                });
            }
            Err(source) => return Err(ArchiveError::Read { path, source }),
        };
        let index: ArchiveIndex =
            serde_json::from_slice(&text).map_err(|source| ArchiveError::Index {
                path: path.clone(),
                source,
            })?;
        if index.version != INDEX_VERSION {
            return Err(ArchiveError::Index {
                path,
                source: serde::de::Error::custom(format!("version {}", index.version)),
            });
        }
        Ok(Self {
            run_id: run_id.into(),
            dir,
            index,
        })
    }

    /// The payloads and records as the run fetched them, each decompressed within the size
    /// the index gives (and [`MAX_REPLAY_PAYLOAD_BYTES`]) and checked against its blake3. No
    /// validators, notices or table description: those described the past fetch.
    pub fn read(&self) -> Result<Fetched, ArchiveError> {
        let read_all = |entries: &[Entry]| -> Result<Vec<Payload>, ArchiveError> {
            entries
                .iter()
                .map(|entry| {
                    let path = self.dir.join(format!("{}.zst", entry.name));
                    Ok(Payload {
                        name: entry.name.clone(),
                        origin: entry.origin.clone(),
                        bytes: decompress(&path, entry)?,
                    })
                })
                .collect()
        };
        let payloads = read_all(&self.index.payloads)?;
        let records = read_all(&self.index.records)?;
        // The names were made distinct when archived: these keep them.
        Ok(Fetched::new(payloads, Vec::new()).with_records(records))
    }
}

/// `path` decompressed, refused unless it is exactly the `entry` archived.
fn decompress(path: &Path, entry: &Entry) -> Result<Vec<u8>, ArchiveError> {
    if entry.bytes > MAX_REPLAY_PAYLOAD_BYTES {
        return Err(ArchiveError::TooBig {
            path: path.into(),
            bytes: entry.bytes,
        });
    }
    let read = |source| ArchiveError::Read {
        path: path.into(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let decoder = zstd::stream::Decoder::new(file).map_err(read)?;
    let mut bytes = Vec::with_capacity(entry.bytes as usize);
    // One byte more than archived is enough to know it is longer: a damaged or swapped file
    // cannot make us inflate it whole.
    decoder
        .take(entry.bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    let damaged = |what: String| ArchiveError::Damaged {
        path: path.into(),
        what,
    };
    if bytes.len() as u64 != entry.bytes {
        return Err(damaged(format!(
            "{} bytes were archived, it decompresses to {}",
            entry.bytes,
            if bytes.len() as u64 > entry.bytes {
                "more".to_string()
            } else {
                bytes.len().to_string()
            }
        )));
    }
    if blake3::hash(&bytes).to_hex().as_str() != entry.blake3 {
        return Err(damaged("its blake3 is not the archived one".into()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched() -> Fetched {
        Fetched::new(
            vec![
                Payload::new(
                    "piece-0001.json",
                    "https://host/t#piece-0001",
                    b"{\"a\":1}".to_vec(),
                ),
                Payload::new(
                    "piece-0002.json",
                    "https://host/t#piece-0002",
                    b"{\"b\":2}".to_vec(),
                ),
            ],
            Vec::new(),
        )
        .with_records(vec![Payload::new(
            "manifest.json",
            "https://host/t",
            b"{}".to_vec(),
        )])
    }

    fn archive(warehouse: &Warehouse, fetched: &Fetched) {
        for payload in fetched.payloads.iter().chain(&fetched.records) {
            warehouse
                .archive_raw("p", "r1", &payload.name, &payload.bytes)
                .unwrap();
        }
        ArchiveIndex::write(fetched, warehouse, "p", "r1").unwrap();
    }

    #[test]
    fn an_archive_reads_back_as_the_payloads_and_records_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        let original = fetched();
        archive(&warehouse, &original);
        let read = Archived::open(&warehouse, "p", "r1")
            .unwrap()
            .read()
            .unwrap();
        let shape = |f: &Fetched| -> Vec<(String, String, Vec<u8>)> {
            (f.payloads.iter().chain(&f.records))
                .map(|p| (p.name.clone(), p.origin.clone(), p.bytes.clone()))
                .collect()
        };
        assert_eq!(read.payloads.len(), 2);
        assert_eq!(shape(&read), shape(&original));
        assert!(read.validators.is_empty() && read.about.is_none() && !read.unchanged);
    }

    #[test]
    fn a_run_without_an_index_or_an_archive_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        let err = Archived::open(&warehouse, "p", "r1").unwrap_err();
        assert!(matches!(err, ArchiveError::Pruned { .. }), "{err}");
        warehouse
            .archive_raw("p", "r1", "data.csv", b"a\n")
            .unwrap();
        let err = Archived::open(&warehouse, "p", "r1")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("run `r1` predates replay"), "{err}");
        assert!(err.contains("--force"), "{err}");
    }

    #[test]
    fn a_payload_that_is_not_the_archived_one_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        let original = fetched();
        archive(&warehouse, &original);
        // Longer than archived: refused after one byte more, not inflated whole.
        warehouse
            .archive_raw("p", "r1", "piece-0002.json", &[b'x'; 4096])
            .unwrap();
        let err = Archived::open(&warehouse, "p", "r1")
            .unwrap()
            .read()
            .unwrap_err()
            .to_string();
        assert!(err.contains("piece-0002.json.zst does not hold what was archived (7 bytes were archived, it decompresses to more)"), "{err}");
        // As long, other bytes.
        warehouse
            .archive_raw("p", "r1", "piece-0002.json", b"{\"b\":3}")
            .unwrap();
        let err = Archived::open(&warehouse, "p", "r1")
            .unwrap()
            .read()
            .unwrap_err()
            .to_string();
        assert!(err.contains("its blake3 is not the archived one"), "{err}");
    }
}
