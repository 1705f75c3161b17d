//! `kind = "pxweb"` (PxWeb API v1) and `kind = "pxweb2"` (PxWebApi 2.0): a table fetched
//! completely, in as few requests as the server's limits allow, and not at all when its
//! `updated` has not moved.
//!
//! Owns: the PxWeb protocols (URLs, query bodies, the meaning of their error answers), reading
//! their metadata (`meta.rs`), expanding a pipeline's `select` against it (`select.rs`) and
//! splitting the expanded query into requests (`plan.rs`).
//! Must not: send requests but through `sources::http`, or decode the json-stat2 answers
//! (`formats::jsonstat` does, piece by piece, and `formats::merge` joins the pieces).

pub mod meta;
pub mod plan;
