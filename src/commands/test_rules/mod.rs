//! `hostwatch test-rules FILE…`: rule unit tests, in the manner of `promtool test rules`.
//!
//! A test file names its rules (a config file, inline `rules`, or the embedded defaults),
//! and each of its tests gives input series and the notifications they must produce at
//! which offsets. Every test runs on a fresh [`Engine`] with no state, the samples at
//! t0 + k × interval on their own times (no clock), exactly as `replay` feeds recorded
//! lines; an expectation is met by a notification of the same rule, event, severity and
//! offset (and series, if it names one), and every notification not expected and every
//! expectation not met fails the test, shown as a diff. Exit 0 when every test passed, 1 when
//! one failed, 2 when a file cannot be read or is invalid (`file:line:column: key: problem`).
//!
//! Not the place for notification delivery, routes, silences or state (none of them run),
//! nor for checking a config (`check` does that and needs no tests).

mod file;
mod values;

use crate::cli::TestRulesArgs;
use crate::collect::Sample;
use crate::config::Config;
use crate::config::units::format_duration;
use crate::engine::Engine;
use crate::event::Notification;
use crate::series::Registry;
use file::{Expected, Input, TestCase};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

/// The time of a `series` test's first sample: 2026-01-01T00:00:00Z.
const T0: f64 = 1_767_225_600.0;

/// Runs the command.
pub fn run(args: &TestRulesArgs, global_config: Option<&Path>) -> ExitCode {
    if args.files.is_empty() {
        return super::usage_error("test-rules: name at least one test file");
    }
    if let Some(path) = global_config {
        log::warn!(config = path.display().to_string().as_str(); "test-rules does not use --config: each test file names its rules (\"config\" or \"rules\"; neither: the embedded default rules)");
    }
    let (mut invalid, mut failed) = (false, false);
    for path in &args.files {
        match run_file(path) {
            Ok(true) => {}
            Ok(false) => failed = true,
            Err(message) => {
                crate::errln!("{message}");
                invalid = true;
            }
        }
    }
    if invalid {
        ExitCode::from(super::EXIT_INVALID)
    } else if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs every test of one file and prints the outcome; `Ok(false)` when a test failed,
/// `Err` (every problem, one a line) when the file is invalid.
fn run_file(path: &Path) -> Result<bool, String> {
    let name = path.display().to_string();
    let tests = file::load(path).map_err(|e| e.to_string())?;
    let mut failures = 0;
    for (i, case) in tests.tests.iter().enumerate() {
        let got = run_case(&tests.config, case)?;
        let tolerance_ms = match case.input {
            Input::Series(_) => 0,
            // Recorded samples are a little late or early; half an interval tells them apart.
            Input::Samples(_) => (tests.config.interval.as_millis() as i64 - 1) / 2,
        };
        let lines = compare(&case.expect, &got, tolerance_ms);
        if lines.iter().any(|l| l.mark != Mark::Same) {
            failures += 1;
            crate::outln!("FAIL {name}: test {:?} (tests[{i}])", case.name);
            for l in &lines {
                crate::outln!("{l}");
            }
        }
    }
    let total = tests.tests.len();
    let tests_word = if total == 1 { "test" } else { "tests" };
    if failures == 0 {
        crate::outln!("{total} {tests_word} passed in {name}");
    } else {
        crate::outln!("{failures} of {total} {tests_word} failed in {name}");
    }
    Ok(failures == 0)
}

/// One notification a test produced, with its offset from t0.
struct Got {
    at_ms: i64,
    n: Notification,
}

/// Feeds a test's samples through a fresh engine; every notification, in order.
fn run_case(config: &Config, case: &TestCase) -> Result<Vec<Got>, String> {
    let mut engine = Engine::new(config, None);
    // Rule tests test rules: a silence is a time-bounded exception, not part of a rule.
    engine.set_silences(Vec::new());
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    let mut out = Vec::new();
    let mut got = Vec::new();
    let mut step = |t0: f64, sample: &Sample, registry: &Registry, out: &mut Vec<Notification>| {
        out.clear();
        engine.tick(registry, sample, out);
        got.extend(out.drain(..).map(|n| Got { at_ms: ((n.ts - t0) * 1000.0).round() as i64, n }));
    };
    match &case.input {
        Input::Series(series) => {
            let ids: Vec<_> =
                series.iter().map(|s| registry.intern(s.metric, s.label.as_deref())).collect();
            let steps = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
            let interval = config.interval.as_secs_f64();
            for k in 0..steps {
                sample.clear();
                sample.unix_ts = T0 + interval * k as f64;
                for (s, id) in series.iter().zip(&ids) {
                    if let Some(Some(v)) = s.values.get(k) {
                        sample.points.push((*id, *v));
                    }
                }
                step(T0, &sample, &registry, &mut out);
            }
        }
        Input::Samples(path) => {
            let name = path.display().to_string();
            let f = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
            let mut t0 = None;
            for (index, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(|e| format!("{name}:{}: {e}", index + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                super::replay::parse_line(&line, &mut registry, &mut sample)
                    .map_err(|e| format!("{name}:{}: {e}", index + 1))?;
                let t0 = *t0.get_or_insert(sample.unix_ts);
                step(t0, &sample, &registry, &mut out);
            }
            if t0.is_none() {
                return Err(format!("{name}: no samples"));
            }
        }
    }
    Ok(got)
}

/// How a line of the diff compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    /// Expected and produced.
    Same,
    /// Expected, not produced.
    Missing,
    /// Produced, not expected.
    Extra,
}

/// One line of a test's diff.
#[derive(Debug)]
struct Line {
    at_ms: i64,
    mark: Mark,
    what: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = offset_text(self.at_ms);
        match self.mark {
            Mark::Same => write!(f, "    at {at}: {}", self.what),
            Mark::Missing => write!(f, "  - expected at {at}: {}", self.what),
            Mark::Extra => write!(f, "  + got at {at}: {}", self.what),
        }
    }
}

/// An offset as the test file writes it: `2m30s`, `0s`, `2m19.978s`, `-5s`.
fn offset_text(ms: i64) -> String {
    let (secs, frac) = (ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
    let mut text = match secs - secs % 60 {
        0 => String::new(),
        whole => format_duration(std::time::Duration::from_secs(whole)),
    };
    match (secs % 60, frac) {
        (s, 0) if s > 0 || text.is_empty() => text.push_str(&format!("{s}s")),
        (_, 0) => {}
        (s, f) => text.push_str(&format!("{s}.{}s", format!("{f:03}").trim_end_matches('0'))),
    }
    if ms < 0 { format!("-{text}") } else { text }
}

/// Matches notifications to expectations and returns every one of both, in time order.
/// Expectations that name a series take their notification first, so one that names none
/// never takes the notification a more specific one needs.
fn compare(expect: &[Expected], got: &[Got], tolerance_ms: i64) -> Vec<Line> {
    let mut taken = vec![false; got.len()];
    let mut met = vec![false; expect.len()];
    let specific_first = (0..expect.len())
        .filter(|&i| expect[i].series.is_some())
        .chain((0..expect.len()).filter(|&i| expect[i].series.is_none()));
    for i in specific_first {
        let e = &expect[i];
        let found = (0..got.len()).find(|&j| !taken[j] && meets(e, &got[j], tolerance_ms));
        if let Some(j) = found {
            taken[j] = true;
            met[i] = true;
        }
    }
    let mut lines: Vec<Line> = got
        .iter()
        .zip(&taken)
        .map(|(g, &taken)| Line {
            at_ms: g.at_ms,
            mark: if taken { Mark::Same } else { Mark::Extra },
            what: got_text(&g.n),
        })
        .collect();
    lines.extend(expect.iter().zip(&met).filter(|(_, met)| !**met).map(|(e, _)| Line {
        at_ms: e.at_ms,
        mark: Mark::Missing,
        what: expected_text(e),
    }));
    lines.sort_by_key(|l| (l.at_ms, l.mark));
    lines
}

fn meets(e: &Expected, g: &Got, tolerance_ms: i64) -> bool {
    (e.at_ms - g.at_ms).abs() <= tolerance_ms
        && *g.n.rule == *e.rule
        && g.n.event == e.event
        && g.n.severity == e.severity
        && e.series.as_deref().is_none_or(|s| *g.n.series == *s)
}

/// `cpu_total firing warning cpu.usage` (the series only when the expectation names one).
fn expected_text(e: &Expected) -> String {
    let series = e.series.as_deref().map(|s| format!(" {s}")).unwrap_or_default();
    format!("{} {} {}{series}", e.rule, e.event.as_str(), e.severity.as_str())
}

/// `cpu_total firing warning cpu.usage (value 96%)`.
fn got_text(n: &Notification) -> String {
    let value = if n.value.is_finite() {
        crate::humanize::value(n.metric.unit(), n.value)
    } else {
        "n/a".to_owned()
    };
    format!("{} {} {} {} (value {value})", n.rule, n.event.as_str(), n.severity.as_str(), n.series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::EventKind;
    use crate::config::Severity;
    use crate::metrics::Metric;

    fn got(at_ms: i64, series: &str, event: EventKind) -> Got {
        let n = Notification {
            ts: T0 + at_ms as f64 / 1000.0,
            host: "h".into(),
            rule: "disk_used".into(),
            series: series.into(),
            metric: Metric::DiskUsedPercent,
            label: None,
            severity: Severity::Warning,
            event,
            value: 91.0,
            threshold: "> 90".into(),
            since: T0,
            seq: 1,
            description: None,
            reason: None,
            last_seen: None,
            firing_s: 0.0,
            peak: f64::NAN,
            escalated_by: None,
            style: Default::default(),
            flap: None,
            rule_context: None,
        };
        Got { at_ms, n }
    }

    fn expected(at_ms: i64, series: Option<&str>, event: EventKind) -> Expected {
        Expected {
            at_ms,
            rule: "disk_used".into(),
            series: series.map(str::to_owned),
            event,
            severity: Severity::Warning,
        }
    }

    fn marks(lines: &[Line]) -> Vec<(i64, Mark)> {
        lines.iter().map(|l| (l.at_ms, l.mark)).collect()
    }

    #[test]
    fn an_expectation_naming_a_series_gets_its_notification_first() {
        let a = "disk.used_percent{mount=/}";
        let b = "disk.used_percent{mount=/data}";
        let got = [got(5_000, a, EventKind::Firing), got(5_000, b, EventKind::Firing)];
        // Written first, the one without a series would take `a` if matched in file order.
        let expect =
            [expected(5_000, None, EventKind::Firing), expected(5_000, Some(a), EventKind::Firing)];
        let lines = compare(&expect, &got, 0);
        assert_eq!(marks(&lines), [(5_000, Mark::Same), (5_000, Mark::Same)]);
    }

    #[test]
    fn every_miss_and_every_surprise_is_a_line_in_time_order() {
        let a = "disk.used_percent{mount=/}";
        let got = [got(5_000, a, EventKind::Firing), got(20_000, a, EventKind::Resolved)];
        let expect = [
            expected(5_000, Some(a), EventKind::Firing),
            expected(15_000, None, EventKind::Resolved),
            expected(30_000, None, EventKind::Firing),
        ];
        let lines = compare(&expect, &got, 0);
        assert_eq!(
            marks(&lines),
            [
                (5_000, Mark::Same),
                (15_000, Mark::Missing),
                (20_000, Mark::Extra),
                (30_000, Mark::Missing)
            ]
        );
        assert_eq!(lines[1].to_string(), "  - expected at 15s: disk_used resolved warning");
        assert_eq!(
            lines[2].to_string(),
            "  + got at 20s: disk_used resolved warning disk.used_percent{mount=/} (value 91.0%)"
        );
        // Within the tolerance of recorded samples the late resolution meets the expectation.
        let lines = compare(&expect[..2], &got, 5_000);
        assert!(lines.iter().all(|l| l.mark == Mark::Same), "{lines:?}");
    }

    #[test]
    fn one_notification_meets_one_expectation_only() {
        let a = "disk.used_percent{mount=/}";
        let got = [got(5_000, a, EventKind::Firing)];
        let expect =
            [expected(5_000, None, EventKind::Firing), expected(5_000, None, EventKind::Firing)];
        assert_eq!(
            marks(&compare(&expect, &got, 0)),
            [(5_000, Mark::Same), (5_000, Mark::Missing)]
        );
    }

    #[test]
    fn offsets_read_like_the_durations_a_test_file_writes() {
        for (ms, text) in [
            (0, "0s"),
            (5_000, "5s"),
            (120_000, "2m"),
            (139_978, "2m19.978s"),
            (3_605_000, "1h5s"),
            (500, "0.5s"),
            (-5_000, "-5s"),
        ] {
            assert_eq!(offset_text(ms), text);
        }
    }
}
