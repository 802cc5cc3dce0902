//! The status page's 24-hour charts: each live series' slot averages from the history file
//! (`state_dir/history.hwh`), bucketed to at most [`BUCKETS`] points (15-minute buckets of
//! the default 1-minute slots), cached in the API thread.
//!
//! Contract: only the API thread reads the file, only when the page is asked for, and at
//! most once per slot resolution of the file (a failed read is retried after
//! [`RETRY`]); the loop and the engine are never touched. The file is read without a lock
//! (`history::read` skips torn rows). A missing, unreadable or corrupt file, or
//! `"history": false`, is a [`Charts::Unavailable`] with a short reason for the page, never
//! an error. Memory is bounded: a file over [`MAX_FILE`] is not read; at most [`MAX_SERIES`]
//! series of at most [`BUCKETS`] `f32`s are kept, and only series the view shows live.
//!
//! Not for: rendering (`page::groups` draws the buckets with `page::svg`), writing history.

use super::view::View;
use crate::history::read::HistoryData;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most points of one 24-hour chart.
pub(crate) const BUCKETS: usize = 96;
/// The span of the charts.
pub(crate) const SPAN_S: f64 = 86_400.0;
/// The most series kept (beyond it, series get no 24-hour chart).
pub(crate) const MAX_SERIES: usize = 4096;
/// The largest history file the page reads (it is read whole, once a minute at most; the
/// default file is 8 MB). A larger one gets a note instead of charts.
pub(crate) const MAX_FILE: u64 = 64 << 20;
/// How long a failed read is kept before the file is tried again.
pub(crate) const RETRY: Duration = Duration::from_secs(60);

/// One series' 24 hours: the count-weighted mean of the slot averages in each bucket (NaN:
/// no slot), oldest first.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    /// Bucket averages, oldest first; the last one ends at [`Day::end`].
    pub avg: Box<[f32]>,
}

/// The buckets of every series read.
#[derive(Debug, PartialEq)]
pub(crate) struct Day {
    /// Seconds per bucket.
    pub width: f64,
    /// Buckets per chart.
    pub buckets: usize,
    /// End of the last bucket (Unix seconds, a multiple of `width`).
    pub end: f64,
    /// Series key → its buckets.
    pub series: HashMap<Arc<str>, Series>,
}

/// What the page can show of the last 24 hours.
#[derive(Debug, PartialEq)]
pub(crate) enum Charts {
    /// The buckets, read from the file.
    Ready(Day),
    /// No charts, and why (operator-readable; escaped by the page).
    Unavailable(String),
}

/// Bucket width and count for slots of `resolution` seconds: 15 minutes (or one slot, if
/// coarser, rounded up to whole slots) and as many as cover 24 hours, [`BUCKETS`] at most.
pub(crate) fn shape(resolution: u32) -> (f64, usize) {
    let res = f64::from(resolution.max(1));
    let width = ((SPAN_S / BUCKETS as f64).max(res) / res).ceil() * res;
    let buckets = ((SPAN_S / width).ceil() as usize).clamp(1, BUCKETS);
    (width, buckets)
}

/// Reads `data`'s last 24 hours before `now_unix` for the series `wanted` keeps.
pub(crate) fn bucket(data: &HistoryData, now_unix: f64, wanted: impl Fn(&str) -> bool) -> Day {
    let (width, buckets) = shape(data.resolution());
    let end = (now_unix / width).ceil() * width;
    let since = end - width * buckets as f64;
    // Columns by series key (a key can own two columns over time: both fill one chart).
    let mut keys: Vec<Arc<str>> = Vec::new();
    let mut index: HashMap<Arc<str>, usize> = HashMap::new();
    let mut columns = Vec::new();
    let mut of_column = Vec::new();
    for col in data.series() {
        if !wanted(&col.key) {
            continue;
        }
        let k = match index.get(col.key.as_str()) {
            Some(&k) => k,
            None if keys.len() < MAX_SERIES => {
                let key: Arc<str> = Arc::from(col.key.as_str());
                index.insert(Arc::clone(&key), keys.len());
                keys.push(key);
                keys.len() - 1
            }
            None => continue,
        };
        columns.push(col.column);
        of_column.push(k);
    }
    // Per series and bucket: Σ avg·count and Σ count.
    let mut sums = vec![(0.0f64, 0u64); keys.len() * buckets];
    data.visit_slots(&columns, since, end, f64::from, |i, p| {
        let b = ((p.start - since) / width).floor();
        if b < 0.0 || b >= buckets as f64 || !p.avg.is_finite() {
            return;
        }
        let cell = &mut sums[of_column[i] * buckets + b as usize];
        cell.0 += p.avg * f64::from(p.count);
        cell.1 += u64::from(p.count);
    });
    let series = keys
        .into_iter()
        .enumerate()
        .map(|(k, key)| {
            let avg = sums[k * buckets..(k + 1) * buckets]
                .iter()
                .map(|&(s, n)| if n == 0 { f32::NAN } else { (s / n as f64) as f32 })
                .collect();
            (key, Series { avg })
        })
        .collect();
    Day { width, buckets, end, series }
}

/// The API thread's cache of [`Charts`], refreshed when a page is asked for and the last
/// read is older than the file's resolution.
#[derive(Debug)]
pub(crate) struct Cache {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The history file; `None` while the config turns the file off.
    path: Option<PathBuf>,
    /// When the charts were read, and how long they stay fresh.
    read: Option<(Instant, Duration)>,
    charts: Arc<Charts>,
    /// Reads of the file so far (for tests and the curious).
    reads: u64,
}

impl Cache {
    /// A cache over the history file at `path` (`None`: the config has no history file).
    pub(crate) fn new(path: Option<PathBuf>) -> Cache {
        Cache {
            inner: Mutex::new(Inner {
                path,
                read: None,
                charts: Arc::new(Charts::Unavailable(String::new())),
                reads: 0,
            }),
        }
    }

    /// Points the cache at another file (or none), as a reload says; read at the next page.
    pub(crate) fn set_path(&self, path: Option<PathBuf>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.path != path {
            inner.path = path;
            inner.read = None;
        }
    }

    /// The charts for a page of `view` at `now` (monotonic) and `now_unix`, read again if
    /// stale.
    pub(crate) fn charts(&self, view: &View, now: Instant, now_unix: f64) -> Arc<Charts> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, fresh)) = inner.read
            && now.saturating_duration_since(at) < fresh
        {
            return Arc::clone(&inner.charts);
        }
        let (charts, fresh) = match inner.path.clone() {
            None => (Charts::Unavailable("the history file is off in the config".into()), RETRY),
            Some(path) => {
                inner.reads += 1;
                match open(&path) {
                    Ok(data) => {
                        let live: HashSet<&str> =
                            view.series.iter().filter(|s| s.live).map(|s| &*s.key).collect();
                        let live = |key: &str| live.contains(key);
                        let fresh = Duration::from_secs(u64::from(data.resolution().max(1)));
                        (Charts::Ready(bucket(&data, now_unix, live)), fresh)
                    }
                    Err(e) => (Charts::Unavailable(unavailable(&path, &e)), RETRY),
                }
            }
        };
        inner.charts = Arc::new(charts);
        inner.read = Some((now, fresh));
        Arc::clone(&inner.charts)
    }

    /// Reads of the file so far.
    #[cfg(test)]
    pub(crate) fn reads(&self) -> u64 {
        self.inner.lock().unwrap().reads
    }
}

/// The history file the page reads for `config`: `None` when the config turns it off.
pub(crate) fn history_file(config: &crate::config::Config) -> Option<PathBuf> {
    config.history.file.as_ref().map(|_| crate::history::read::path(&config.state_dir))
}

/// Reads the history file at `path`, unless it is over [`MAX_FILE`].
fn open(path: &std::path::Path) -> Result<HistoryData, String> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() > MAX_FILE
    {
        return Err(format!(
            "{} is {} bytes, more than the {} MiB the page reads",
            path.display(),
            meta.len(),
            MAX_FILE >> 20
        ));
    }
    HistoryData::open(path)
}

/// The page's reason for a file it cannot read.
fn unavailable(path: &std::path::Path, error: &str) -> String {
    if !path.exists() {
        return format!("no history file yet ({})", path.display());
    }
    format!("the history file cannot be read: {error}")
}

#[cfg(test)]
#[path = "daily_tests.rs"]
mod tests;
