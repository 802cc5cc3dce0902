//! hostwatch as a library: every module of the agent, so the binary, the integration tests
//! and the benchmarks share one code path. `main.rs` only parses arguments and dispatches.

pub mod alerts;
#[cfg(feature = "api")]
pub(crate) mod api;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub(crate) mod daemon;
pub mod engine;
pub mod event;
pub(crate) mod eventlog;
pub(crate) mod glob;
pub(crate) mod history;
pub(crate) mod humanize;
pub(crate) mod localfile;
pub mod logging;
#[cfg(feature = "completions")]
pub mod manual;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod report;
pub(crate) mod ring;
pub(crate) mod rules;
pub(crate) mod sdnotify;
pub mod series;
pub(crate) mod signals;
pub(crate) mod silence;
pub(crate) mod silence_store;
pub(crate) mod state;
pub(crate) mod store;
#[cfg(test)]
mod testutil;
pub mod timefmt;
pub mod zone;
