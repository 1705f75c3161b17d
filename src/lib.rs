//! indikator: harvests open statistics on children's and young people's living conditions,
//! validates them, harmonises them to one indicator model and publishes a Parquet warehouse.
//!
//! The data flow (DESIGN §1): [`sources`] → raw bytes → [`formats`] → SourceTable →
//! [`validate`] → [`harmonise`] → observations ([`model`]) → [`warehouse`], with every run in
//! the [`ledger`]. [`pipeline`] runs that flow for one pipeline; `main.rs` only parses the
//! command line.

pub mod admin;
pub mod alerts;
pub mod blocking;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod failpoint;
#[cfg(test)]
mod fixtures;
pub mod formats;
pub mod harmonise;
pub mod inspect;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod numbers;
pub mod pipeline;
pub mod problem;
pub mod rejects;
pub mod replay;
pub mod retention;
pub mod schedule;
pub mod schemas;
pub mod serve;
pub mod service;
pub mod sources;
pub mod testkit;
pub mod validate;
pub mod warehouse;
