//! The raw counters of the last collect as JSON, so a later process (`hostwatch once` from
//! cron) can compute CPU percentages and rates over the whole time since the previous run.
//!
//! Saved form: `{"version": 1, "ts": <unix time of the read>, "btime": <boot time>, "cpu":
//! {"all": [8 times], "cores": {"0": [...]}}, "swap": [pswpin, pswpout], "disk": {"vda":
//! [reads, sectors read, writes, sectors written]}, "net": {"eth0": [rx bytes, tx bytes, rx
//! packets, tx packets, rx errors, tx errors]}}`; a file that was not read at the last collect
//! is left out. Counters saved before a reboot are never restored.

use super::ProcBackend;
use super::parse::{fields, lines, parse_u64};
use super::track::counters;
use serde_json::{Map, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VERSION: u64 = 1;

/// The boot time (`btime` of `/proc/stat`), Unix seconds.
fn boot_time() -> Option<u64> {
    let text = std::fs::read("/proc/stat").ok()?;
    parse_btime(&text)
}

fn parse_btime(text: &[u8]) -> Option<u64> {
    lines(text).find_map(|line| {
        let mut it = fields(line);
        (it.next() == Some(b"btime")).then(|| it.next().and_then(parse_u64)).flatten()
    })
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Restores younger than this would give no CPU percentage (less than a jiffy may pass).
const MIN_AGE_SECS: f64 = 0.5;

/// Counters older than this (a year) give no rate worth having; any state file's `ts`, however
/// hostile (`-1e300`), is refused rather than turned into a `Duration` that cannot exist.
const MAX_AGE_SECS: f64 = 366.0 * 86_400.0;

impl ProcBackend {
    /// The raw counters of the last collect and the Unix time they were read (`Null` before
    /// the first collect); [`Backend::save_counters`](crate::collect::Backend::save_counters).
    pub(super) fn save(&self) -> Value {
        let Some((ts, [stat, vmstat, diskstats, net_dev])) = self.last else { return Value::Null };
        let mut v = Map::new();
        v.insert("version".into(), VERSION.into());
        v.insert("ts".into(), ts.into());
        if let Some(btime) = boot_time() {
            v.insert("btime".into(), btime.into());
        }
        if stat {
            v.insert("cpu".into(), self.cpu.save());
        }
        if let (true, Some((swap, _))) = (vmstat, &self.swap) {
            v.insert("swap".into(), Value::from(swap.to_vec()));
        }
        if diskstats {
            v.insert("disk".into(), self.disks.save());
        }
        if net_dev {
            v.insert("net".into(), self.ifaces.save());
        }
        Value::Object(v)
    }

    /// Seeds the counters from [`save`](Self::save)'s form, read at Unix time `saved_at` (the
    /// form's own `ts` when `saved_at` is not a positive number), so the first collect gives
    /// rates and CPU percentages over the whole time since then. Call it before the first
    /// collect. Returns false, changing nothing, for a form of another version or boot, from
    /// the future, younger than half a second, or without CPU times: the caller should then
    /// take two reads.
    pub fn restore_counters_at(&mut self, v: &Value, saved_at: f64) -> bool {
        if v.get("version").and_then(Value::as_u64) != Some(VERSION) {
            log::debug!("saved counters absent or of another version; rates start afresh");
            return false;
        }
        let saved_at = if saved_at.is_finite() && saved_at > 0.0 {
            saved_at
        } else {
            v.get("ts").and_then(Value::as_f64).unwrap_or(f64::NAN)
        };
        let elapsed = unix_now() - saved_at;
        if !elapsed.is_finite() || elapsed < 0.0 {
            log::warn!("saved counters are dated in the future ({saved_at}); rates start afresh");
            return false;
        }
        if elapsed < MIN_AGE_SECS {
            log::debug!("saved counters are {elapsed:.3} s old; rates start afresh");
            return false;
        }
        if let (Some(saved), Some(now)) = (v.get("btime").and_then(Value::as_u64), boot_time()) {
            // btime is derived from the clock minus the uptime and may move by a second.
            if saved.abs_diff(now) > 2 {
                log::info!("the host rebooted since the counters were saved; rates start afresh");
                return false;
            }
        }
        if elapsed > MAX_AGE_SECS {
            log::warn!("saved counters are too old ({saved_at}); rates start afresh");
            return false;
        }
        let at =
            Duration::try_from_secs_f64(elapsed).ok().and_then(|d| Instant::now().checked_sub(d));
        let Some(at) = at else {
            log::warn!("saved counters are too old ({elapsed:.0} s); rates start afresh");
            return false;
        };
        let Some(cpu) = v.get("cpu") else { return false };
        self.cpu.restore(cpu);
        if let Some(swap) = v.get("swap").and_then(counters::<2>) {
            self.swap = Some((swap, at));
        }
        if let Some(disk) = v.get("disk") {
            self.disks.restore(disk, at);
        }
        if let Some(net) = v.get("net") {
            self.ifaces.restore(net, at);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{Backend, LabelFilter, Sample};
    use crate::config::CollectConfig;
    use crate::metrics::Metric;
    use crate::series::Registry;

    fn backend() -> ProcBackend {
        ProcBackend::new(LabelFilter::new(&CollectConfig::default()), &[])
    }

    #[test]
    fn btime() {
        assert_eq!(
            parse_btime(b"cpu 1 2\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1700000000)
        );
        assert_eq!(parse_btime(b"cpu 1 2\n"), None);
    }

    #[test]
    fn round_trip_gives_rates_on_the_first_collect_of_a_new_process() {
        let mut first = backend();
        assert_eq!(first.save_counters(), Value::Null, "nothing read yet");
        assert!(!first.restore_counters(&Value::Null));
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        first.collect(&mut reg, &mut out);
        let saved = first.save_counters();
        assert_eq!(saved["version"], 1);
        assert!(saved["cpu"]["all"].as_array().is_some_and(|a| a.len() == 8));
        assert!(saved["net"].get("lo").is_some(), "{saved}");
        let ts = saved["ts"].as_f64().expect("ts");

        // The state file goes through text.
        let reloaded: Value = serde_json::from_str(&saved.to_string()).expect("valid JSON");
        let mut second = backend();
        assert!(second.restore_counters_at(&reloaded, ts - 60.0));
        let (mut reg2, mut out2) = (Registry::new(), Sample::default());
        // Let some jiffies pass: CPU percentages need the counters to move.
        std::thread::sleep(Duration::from_millis(150));
        second.collect(&mut reg2, &mut out2);
        let has = |m: Metric, label: Option<&str>| {
            let id = reg2.find(m, label).expect("interned");
            out2.points.iter().any(|(i, _)| *i == id)
        };
        assert!(has(Metric::NetRxRate, Some("lo")), "rate on the first collect after restore");
        assert!(has(Metric::CpuUsage, None));

        // A second restored run does not emit before reading if the form is from another boot.
        let mut other_boot = reloaded.clone();
        other_boot["btime"] = Value::from(12u64);
        let mut third = backend();
        assert!(!third.restore_counters_at(&other_boot, ts - 60.0));
        let (mut reg3, mut out3) = (Registry::new(), Sample::default());
        third.collect(&mut reg3, &mut out3);
        let lo = reg3.find(Metric::NetRxRate, Some("lo")).expect("interned");
        assert!(!out3.points.iter().any(|(i, _)| *i == lo), "no rate from another boot's counters");
    }

    #[test]
    fn future_or_foreign_forms_are_ignored() {
        let mut b = backend();
        let form = |ts: f64| serde_json::json!({"version": 1, "ts": ts, "cpu": {}, "swap": [1, 2]});
        assert!(!b.restore_counters(&serde_json::json!({"version": 2, "swap": [1, 2]})));
        assert!(!b.restore_counters(&form(unix_now() + 3600.0)), "from the future");
        assert!(!b.restore_counters(&form(unix_now())), "too recent to give a CPU percentage");
        assert!(
            !b.restore_counters(&serde_json::json!({"version": 1, "ts": unix_now() - 5.0})),
            "no CPU"
        );
        assert!(!b.restore_counters(&form(-1e300)), "hostile ts: refused, no panic");
        assert!(!b.restore_counters(&form(1e300)), "far future");
        assert!(
            !b.restore_counters_at(&form(unix_now() - 5.0), 1e-300),
            "saved_at near 0: too old"
        );
        assert!(b.swap.is_none());
        assert!(b.restore_counters(&form(unix_now() - 5.0)), "the trait method uses the saved ts");
        assert!(b.swap.is_some());
    }
}
