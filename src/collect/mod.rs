//! The collector: reads every metric of the catalogue into a reused [`Sample`].
//!
//! One common API over two backends: `linux` reads `/proc` and `statvfs` directly into reused
//! buffers (one read per file per tick); `portable` uses the sysinfo crate and reports what it
//! cannot provide as unsupported. Rates are per second over the monotonic time between two
//! reads; a counter that went backwards yields no value for that tick. Not the place for
//! rules or windows.
//!
//! `collect.root` (Linux) reads the host's file system where a container mounted it: mounts
//! under the root are reported by the names the host gives them, pidfiles are read under it;
//! `/proc` stays `/proc` (the host's with `--pid=host`).

mod filter;
#[cfg(target_os = "linux")]
mod linux;
mod portable;

pub use filter::LabelFilter;

use crate::config::{CollectBackend, CollectConfig};
use crate::metrics::Metric;
use crate::series::{Registry, SeriesId};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The values read at one moment.
#[derive(Debug, Default, Clone)]
pub struct Sample {
    /// Wall-clock time of the read, Unix seconds.
    pub unix_ts: f64,
    /// Monotonic time of the read.
    pub at: Option<Instant>,
    /// One value per live series (rates are absent on the first read and after a counter reset).
    pub points: Vec<(SeriesId, f64)>,
    /// Metrics this platform or backend cannot provide.
    pub unsupported: Vec<Metric>,
}

impl Sample {
    /// Empties the sample, keeping its allocations.
    pub fn clear(&mut self) {
        self.unix_ts = 0.0;
        self.at = None;
        self.points.clear();
        self.unsupported.clear();
    }

    /// Stamps the sample with the current wall-clock and monotonic time.
    pub fn stamp_now(&mut self) {
        self.at = Some(Instant::now());
        self.unix_ts =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    }
}

/// A source of samples for one backend.
pub trait Backend {
    /// Reads every metric now into `out` (cleared first), interning new series in `registry`
    /// and retiring the ones that went away.
    fn collect(&mut self, registry: &mut Registry, out: &mut Sample);

    /// The backend's name, for logs and `--version`.
    fn name(&self) -> &'static str;

    /// The raw counters of the last read, so `once` can compute rates since the previous run.
    fn save_counters(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Adopts counters saved by an earlier process; the next read computes rates against them.
    /// Returns false when they cannot be used (another backend, another layout).
    fn restore_counters(&mut self, _saved: &serde_json::Value) -> bool {
        false
    }
}

/// The series id of an unlabelled metric, interned the first time a backend needs it and
/// cached in `globals` (a handful of entries: a linear scan beats hashing).
pub(crate) fn global(
    globals: &mut Vec<(Metric, SeriesId)>,
    registry: &mut Registry,
    metric: Metric,
) -> SeriesId {
    if let Some((_, id)) = globals.iter().find(|(m, _)| *m == metric) {
        return *id;
    }
    let id = registry.intern(metric, None);
    globals.push((metric, id));
    id
}

/// Builds the backend the config asks for.
pub fn backend(config: &CollectConfig) -> Box<dyn Backend> {
    let filter = LabelFilter::new(config);
    match config.backend {
        #[cfg(target_os = "linux")]
        CollectBackend::Auto | CollectBackend::Proc => match &config.root {
            Some(root) => Box::new(linux::ProcBackend::rooted(filter, &config.processes, root)),
            None => Box::new(linux::ProcBackend::new(filter, &config.processes)),
        },
        #[cfg(not(target_os = "linux"))]
        CollectBackend::Auto | CollectBackend::Proc => {
            Box::new(portable::SysinfoBackend::new(filter, !config.processes.is_empty()))
        }
        CollectBackend::Sysinfo => {
            Box::new(portable::SysinfoBackend::new(filter, !config.processes.is_empty()))
        }
    }
}
