//! Integration tests: the real `indikator` executable in a fresh temporary project.
//! One test binary (one link step on CI's two cores), one module per topic.

mod bad_input;
mod cli;
mod crash;
mod daemon;
mod deploy;
mod kolada;
mod messages;
mod network_pipelines;
mod payloads;
mod prune;
mod px;
mod pxweb;
mod pxweb_bed;
mod pxweb_tools;
mod readers;
mod replay;
mod service;
mod skips;
mod url;
mod util;
mod xlsx;
