//! hostwatch as a library: every module of the agent, so the binary, the integration tests
//! and the benchmarks share one code path. `main.rs` only parses arguments and dispatches.

pub mod alerts;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod event;
pub mod eventlog;
pub mod glob;
pub mod humanize;
pub(crate) mod localfile;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod ring;
pub mod rules;
pub mod series;
pub mod signals;
pub mod silence;
pub mod silence_store;
pub mod state;
pub mod timefmt;
