//! Test support that integration tests, examples and the bench share (not used by the daemon).
//!
//! Owns: servers that speak real protocols over loopback, with faults on demand.
//! Must not: be reached from the daemon's code paths.

pub mod file_server;
mod http;
pub mod kolada_server;
pub mod pxweb_server;
