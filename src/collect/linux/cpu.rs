//! `/proc/stat`: `cpu.usage` and `cpu.iowait` from the `cpu` line, `cpu.core.usage` from each
//! `cpuN` line, as shares of the jiffies that passed between two reads.
//!
//! Busy time is user + nice + system + irq + softirq + steal (guest time is already inside
//! user and nice); the total adds idle and iowait. Not the place for load or memory.

use super::parse::{fields, lines, parse_u64};
use super::track::{Status, counters, retire_all};
use crate::collect::{LabelFilter, Sample};
use crate::metrics::{LabelKey, Metric};
use crate::series::{Registry, SeriesId};
use serde_json::{Map, Value};

/// The first eight fields of a `cpu` line: user nice system idle iowait irq softirq steal.
pub(super) type CpuTimes = [u64; 8];

const IDLE: usize = 3;
const IOWAIT: usize = 4;

fn busy(t: &CpuTimes) -> u64 {
    [0, 1, 2, 5, 6, 7].iter().fold(0u64, |acc, &i| acc.saturating_add(t[i]))
}

fn total(t: &CpuTimes) -> u64 {
    busy(t).saturating_add(t[IDLE]).saturating_add(t[IOWAIT])
}

/// What two reads of one CPU line give.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// No time passed (reads closer than a jiffy): keep the old baseline.
    Keep,
    /// Busy or total time went backwards: no value, the new read becomes the baseline.
    Rebase,
    /// Busy percent, and iowait percent unless iowait went backwards (the kernel allows it).
    Value(f64, Option<f64>),
}

/// Compares two reads of one CPU line.
pub(super) fn step(prev: &CpuTimes, now: &CpuTimes) -> Step {
    if total(now) < total(prev) || busy(now) < busy(prev) {
        return Step::Rebase;
    }
    let dtotal = total(now) - total(prev);
    if dtotal == 0 {
        return Step::Keep;
    }
    let pct = |d: u64| (100.0 * d as f64 / dtotal as f64).clamp(0.0, 100.0);
    let iowait = now[IOWAIT].checked_sub(prev[IOWAIT]).map(pct);
    Step::Value(pct(busy(now) - busy(prev)), iowait)
}

/// Which CPU a `/proc/stat` line describes.
#[derive(Debug, PartialEq)]
pub(super) enum Line {
    /// The `cpu` line (all CPUs).
    All(CpuTimes),
    /// A `cpuN` line.
    Core(u32, CpuTimes),
}

/// Calls `f` for every `cpu` line of `/proc/stat`, in order; stops at the first other line.
pub(super) fn parse_stat(text: &[u8], mut f: impl FnMut(Line)) {
    for line in lines(text) {
        let mut it = fields(line);
        let Some(name) = it.next() else { continue };
        let Some(suffix) = name.strip_prefix(b"cpu") else { break };
        let mut times: CpuTimes = [0; 8];
        for slot in times.iter_mut() {
            match it.next().and_then(parse_u64) {
                Some(v) => *slot = v,
                None => break,
            }
        }
        if suffix.is_empty() {
            f(Line::All(times));
        } else if let Some(n) = parse_u64(suffix).and_then(|n| u32::try_from(n).ok()) {
            f(Line::Core(n, times));
        }
    }
}

#[derive(Debug)]
struct Core {
    num: u32,
    status: Status<1>,
    prev: Option<CpuTimes>,
    seen: bool,
}

/// CPU state kept across reads.
#[derive(Debug, Default)]
pub(super) struct Cpu {
    usage: Option<SeriesId>,
    iowait: Option<SeriesId>,
    prev: Option<CpuTimes>,
    cores: Vec<Core>,
}

impl Cpu {
    /// Parses one read of `/proc/stat`, pushing the percentages into `out`.
    pub(super) fn update(
        &mut self,
        text: &[u8],
        registry: &mut Registry,
        filter: &LabelFilter,
        out: &mut Sample,
    ) {
        for c in &mut self.cores {
            c.seen = false;
        }
        parse_stat(text, |line| match line {
            Line::All(now) => {
                let usage =
                    *self.usage.get_or_insert_with(|| registry.intern(Metric::CpuUsage, None));
                let iowait =
                    *self.iowait.get_or_insert_with(|| registry.intern(Metric::CpuIowait, None));
                match self.prev.as_ref().map(|p| step(p, &now)) {
                    Some(Step::Keep) => {}
                    Some(Step::Value(u, w)) => {
                        out.points.push((usage, u));
                        if let Some(w) = w {
                            out.points.push((iowait, w));
                        }
                        self.prev = Some(now);
                    }
                    Some(Step::Rebase) | None => self.prev = Some(now),
                }
            }
            Line::Core(num, now) => self.update_core(num, now, registry, filter, out),
        });
        self.cores.retain(|c| {
            if !c.seen {
                retire_all(registry, &c.status);
            }
            c.seen
        });
    }

    fn update_core(
        &mut self,
        num: u32,
        now: CpuTimes,
        registry: &mut Registry,
        filter: &LabelFilter,
        out: &mut Sample,
    ) {
        let index = match self.cores.iter().position(|c| c.num == num) {
            Some(i) => i,
            None => {
                self.cores.push(Core { num, status: Status::Pending, prev: None, seen: false });
                self.cores.len() - 1
            }
        };
        let core = &mut self.cores[index];
        core.seen = true;
        if core.status == Status::Pending {
            let label = num.to_string();
            core.status = if filter.allows(LabelKey::Core, &label, false) {
                Status::Live([registry.intern(Metric::CpuCoreUsage, Some(&label))])
            } else {
                Status::Excluded
            };
        }
        let Status::Live([id]) = core.status else { return };
        match core.prev.as_ref().map(|p| step(p, &now)) {
            Some(Step::Keep) => {}
            Some(Step::Value(u, _)) => {
                out.points.push((id, u));
                core.prev = Some(now);
            }
            Some(Step::Rebase) | None => core.prev = Some(now),
        }
    }

    /// The raw times of the last read: `{"all": [...], "cores": {"0": [...], ...}}`.
    pub(super) fn save(&self) -> Value {
        let mut cores = Map::new();
        for c in &self.cores {
            if let (Status::Live(_), Some(p)) = (&c.status, &c.prev) {
                cores.insert(c.num.to_string(), Value::from(p.to_vec()));
            }
        }
        let mut v = Map::new();
        if let Some(p) = &self.prev {
            v.insert("all".into(), Value::from(p.to_vec()));
        }
        v.insert("cores".into(), Value::Object(cores));
        Value::Object(v)
    }

    /// Seeds the baselines from [`save`](Self::save)'s form.
    pub(super) fn restore(&mut self, saved: &Value) {
        if let Some(all) = saved.get("all").and_then(counters::<8>) {
            self.prev = Some(all);
        }
        let Some(cores) = saved.get("cores").and_then(Value::as_object) else { return };
        for (num, times) in cores {
            let (Ok(num), Some(times)) = (num.parse::<u32>(), counters::<8>(times)) else {
                continue;
            };
            if !self.cores.iter().any(|c| c.num == num) {
                self.cores.push(Core {
                    num,
                    status: Status::Pending,
                    prev: Some(times),
                    seen: false,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectConfig;

    const STAT_1: &[u8] = b"cpu  1446 0 1439 57317 449 0 20 16 0 0
cpu0 374 0 548 29393 22 0 5 5 0 0
cpu1 1072 0 891 27923 427 0 14 11 0 0
intr 100768 0 0 0
ctxt 217610
btime 1700000000
";
    // 200 jiffies later: cpu0 busy 50 (25 %), cpu1 busy 100 of which... see asserts.
    const STAT_2: &[u8] = b"cpu  1546 0 1489 57417 499 0 20 16 0 0
cpu0 404 0 568 29443 22 0 5 5 0 0
cpu1 1142 0 921 27973 477 0 14 11 0 0
intr 100768 0 0 0
";

    fn find(reg: &Registry, out: &Sample, key: &str) -> Option<f64> {
        out.points.iter().find(|(id, _)| &*reg.info(*id).key == key).map(|p| p.1)
    }

    #[test]
    fn parses_cpu_lines_only() {
        let mut seen = Vec::new();
        parse_stat(STAT_1, |l| seen.push(l));
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], Line::All([1446, 0, 1439, 57317, 449, 0, 20, 16]));
        assert_eq!(seen[2], Line::Core(1, [1072, 0, 891, 27923, 427, 0, 14, 11]));
        // An old kernel with four fields: the rest count as zero.
        let mut old = Vec::new();
        parse_stat(b"cpu 1 2 3 4\n", |l| old.push(l));
        assert_eq!(old, [Line::All([1, 2, 3, 4, 0, 0, 0, 0])]);
    }

    #[test]
    fn percentages_over_two_reads() {
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        let filter = LabelFilter::new(&CollectConfig::default());
        let mut cpu = Cpu::default();
        cpu.update(STAT_1, &mut reg, &filter, &mut out);
        assert!(out.points.is_empty(), "first read gives no percent");
        cpu.update(STAT_2, &mut reg, &filter, &mut out);
        // all: busy +150 (user 100, system 50), idle +100, iowait +50 => total 300.
        assert_eq!(find(&reg, &out, "cpu.usage"), Some(50.0));
        assert_eq!(find(&reg, &out, "cpu.iowait"), Some(100.0 * 50.0 / 300.0));
        // cpu0: busy +50, idle +50 => 50 %; cpu1: busy +100, idle +50, iowait +50 => 50 %.
        assert_eq!(find(&reg, &out, "cpu.core.usage{core=0}"), Some(50.0));
        assert_eq!(find(&reg, &out, "cpu.core.usage{core=1}"), Some(50.0));
    }

    #[test]
    fn steps() {
        let a: CpuTimes = [100, 0, 0, 100, 10, 0, 0, 0];
        assert_eq!(step(&a, &a), Step::Keep);
        let back: CpuTimes = [50, 0, 0, 100, 10, 0, 0, 0];
        assert_eq!(step(&a, &back), Step::Rebase, "busy went backwards");
        let iowait_back: CpuTimes = [150, 0, 0, 155, 5, 0, 0, 0];
        assert_eq!(step(&a, &iowait_back), Step::Value(50.0, None));
    }

    #[test]
    fn offline_core_is_retired_and_save_restore_round_trips() {
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        let filter = LabelFilter::new(&CollectConfig::default());
        let mut cpu = Cpu::default();
        cpu.update(STAT_1, &mut reg, &filter, &mut out);
        let saved = cpu.save();
        cpu.update(
            b"cpu  1546 0 1489 57417 499 0 20 16 0 0\ncpu0 404 0 568 29443 22 0 5 5 0 0\n",
            &mut reg,
            &filter,
            &mut out,
        );
        let core1 = reg.find(Metric::CpuCoreUsage, Some("1")).expect("interned");
        assert!(!reg.info(core1).live);

        let mut restored = Cpu::default();
        restored.restore(&saved);
        out.points.clear();
        restored.update(STAT_2, &mut reg, &filter, &mut out);
        assert_eq!(find(&reg, &out, "cpu.usage"), Some(50.0));
        assert_eq!(find(&reg, &out, "cpu.core.usage{core=1}"), Some(50.0));
        assert!(reg.info(core1).live, "revived");
    }
}
