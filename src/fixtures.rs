//! Test support: the real public responses and files in `../shared/fixtures/real/`, read in
//! place (never copied into the repository).
//!
//! Owns: where they are and what a test does when they are not there: it skips, saying why,
//! on a developer's machine, and fails when `CI` is set, where a skip would hide that the
//! conformance tests did not run.
//! Must not: be compiled outside tests.

use std::path::{Path, PathBuf};

/// `../shared/fixtures/real`, beside the repository.
pub fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real")
}

/// The bytes of `real/<path>`; `None` (the test skips) when it cannot be read, except on CI.
pub fn real(path: &str) -> Option<Vec<u8>> {
    let full = real_dir().join(path);
    match std::fs::read(&full) {
        Ok(bytes) => Some(bytes),
        Err(err) if std::env::var_os("CI").is_some() => {
            panic!(
                "cannot read fixture {} on CI ({err}); ../shared must be beside the repository",
                full.display()
            )
        }
        Err(err) => {
            eprintln!("skipped: cannot read fixture {} ({err})", full.display());
            None
        }
    }
}
