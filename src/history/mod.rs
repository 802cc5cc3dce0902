//! Short history: what the host did before an alert. The loop hands each sample to a
//! [`Recorder`], which keeps per-series aggregates of the current slot, writes the built-in
//! round-robin file in `state_dir` (`format`, `writer`; read by `read`), and at each slot's
//! end hands the slot's aggregates and the alert events to the sinks (`sink`: SQLite,
//! InfluxDB), each on a thread of its own.
//!
//! Not for: rendering history (`commands::history`, reports) or deciding alerts.

mod acc;
pub(crate) mod format;
pub(crate) mod influx;
pub(crate) mod read;
mod recorder;
#[allow(dead_code)] // until the sinks land
pub(crate) mod sink;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
mod writer;

pub(crate) use acc::Acc;
#[cfg(feature = "api")]
pub(crate) use recorder::Health;
pub(crate) use recorder::Recorder;
#[cfg(all(test, feature = "api"))]
pub(crate) use recorder::SinkCounters;

use crate::config::Config;
use sink::SinkThread;

/// Starts a thread per configured sink.
#[allow(clippy::vec_init_then_push, unused_mut, dead_code)]
pub(crate) fn start_sinks(config: &Config) -> Vec<SinkThread> {
    let mut sinks = Vec::new();
    let _ = config;
    #[cfg(feature = "sqlite")]
    if let Some(c) = &config.history.sqlite {
        let cfg = c.clone();
        let stats = std::sync::Arc::new(sink::SinkStats::default());
        let for_sink = std::sync::Arc::clone(&stats);
        let make = Box::new(move || {
            Box::new(sqlite::SqliteSink::new(cfg, for_sink)) as Box<dyn sink::Sink>
        });
        sinks.extend(SinkThread::start("sqlite", stats, make));
    }
    if let Some(c) = &config.history.influxdb {
        let (c, timeout) = (c.clone(), c.timeout.unwrap_or(config.delivery.timeout));
        let stats = std::sync::Arc::new(sink::SinkStats::default());
        let for_sink = std::sync::Arc::clone(&stats);
        let make = Box::new(move || {
            Box::new(influx::InfluxSink::new(c, timeout, for_sink)) as Box<dyn sink::Sink>
        });
        sinks.extend(SinkThread::start("influxdb", stats, make));
    }
    sinks
}

#[cfg(test)]
mod tests;
