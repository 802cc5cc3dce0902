//! Tests of the published view: buffers reused when no request holds them, a view being read
//! never changes, rings keep the latest values, alerts come firing first, and a steady-state
//! publication allocates nothing (silences, silenced alerts and channels included).

use super::*;
use crate::collect::Sample;
use crate::config::Config;

fn config() -> Config {
    let text = r#"{"state_dir": "/tmp/hostwatch-view-unit", "interval": "1s",
        "rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 90", "crit": "> 95"},
                  {"name": "load", "metric": "load.1", "warn": "> 1", "for": "1h"}]}"#;
    crate::config::load_str(text, "t.json", &|_| None).unwrap()
}

struct World {
    engine: Engine,
    registry: Registry,
    sample: Sample,
}

impl World {
    fn new() -> World {
        World {
            engine: Engine::new(&config(), None),
            registry: Registry::new(),
            sample: Sample::default(),
        }
    }

    fn tick(&mut self, ts: f64, points: &[(Metric, Option<&str>, f64)]) {
        self.sample.clear();
        self.sample.unix_ts = ts;
        for &(m, label, v) in points {
            let id = self.registry.intern(m, label);
            self.sample.points.push((id, v));
        }
        let mut out = Vec::new();
        self.engine.tick(&self.registry, &self.sample, &mut out);
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            engine: &self.engine,
            registry: &self.registry,
            sample: &self.sample,
            channels: None,
            persist_failing: false,
            write_failures: 0,
            tick_duration: Duration::from_micros(300),
            config_silences: 0,
            history: None,
        }
    }
}

#[test]
fn a_view_nobody_reads_is_reused_and_one_being_read_never_changes() {
    let mut w = World::new();
    let mut p = Publisher::new(View::new("h", "t.json", Duration::from_secs(1)));
    let board = p.board();
    w.tick(100.0, &[(Metric::DiskUsedPercent, Some("/"), 50.0)]);
    p.publish(&w.inputs());
    let first = Arc::as_ptr(&board.current());
    w.tick(101.0, &[(Metric::DiskUsedPercent, Some("/"), 51.0)]);
    p.publish(&w.inputs());
    w.tick(102.0, &[(Metric::DiskUsedPercent, Some("/"), 52.0)]);
    p.publish(&w.inputs());
    // Nobody held the first published view: its buffers carry the third.
    assert_eq!(Arc::as_ptr(&board.current()), first);

    let held = board.current();
    for ts in 103..110 {
        w.tick(ts as f64, &[(Metric::DiskUsedPercent, Some("/"), ts as f64 - 50.0)]);
        p.publish(&w.inputs());
    }
    assert_eq!(held.series[0].value, 52.0, "a view being read changed under its reader");
    assert_eq!(held.ticks, 3);
    let now = board.current();
    assert_eq!(now.ticks, 10);
    assert_eq!(now.series[0].value, 59.0);
    let recent: Vec<f32> = now.series[0].recent.iter().collect();
    assert_eq!(recent, (50..60).map(|v| v as f32).collect::<Vec<_>>());
    assert_eq!(now.recent_ts.len(), 10);
}

#[test]
fn rows_follow_the_registry_and_gaps_are_nan() {
    let mut w = World::new();
    let mut p = Publisher::new(View::new("h", "t.json", Duration::from_secs(1)));
    w.tick(100.0, &[(Metric::DiskUsedPercent, Some("/"), 10.0)]);
    p.publish(&w.inputs());
    w.tick(101.0, &[(Metric::DiskUsedPercent, Some("/data"), 20.0)]);
    p.publish(&w.inputs());
    let v = p.board().current();
    assert_eq!(v.series.len(), 2);
    assert!(v.series[0].value.is_nan(), "no value this tick");
    let root: Vec<f32> = v.series[0].recent.iter().collect();
    assert_eq!(root[0], 10.0);
    assert!(root[1].is_nan());
    let data: Vec<f32> = v.series[1].recent.iter().collect();
    assert_eq!(data.len(), 1, "a new series starts its ring when it appears");
    assert_eq!(&*v.series[1].key, "disk.used_percent{mount=/data}");
}

#[test]
fn the_ring_keeps_the_latest_values_in_order() {
    let mut r = Recent::new();
    for i in 0..(RECENT + 5) {
        r.push(i as f64);
    }
    let got: Vec<f32> = r.iter().collect();
    assert_eq!(got.len(), RECENT);
    assert_eq!(got[0], 5.0);
    assert_eq!(*got.last().unwrap(), (RECENT + 4) as f32);
}

/// Rule, series, firing, severity, threshold, silenced by.
type Row<'a> = (&'a str, &'a str, bool, Severity, &'a str, Option<&'a str>);

#[test]
fn alerts_list_firing_first_with_their_threshold_and_silence() {
    let mut w = World::new();
    w.engine.set_silences(vec![crate::silence::Silence {
        host: None,
        id: "s1".into(),
        rule: Some("disk".into()),
        matchers: [("mount".to_string(), "/data".to_string())].into(),
        until: 1e12,
        schedule: None,
        comment: String::new(),
    }]);
    let pts = [
        (Metric::DiskUsedPercent, Some("/"), 97.0),
        (Metric::DiskUsedPercent, Some("/data"), 92.0),
        (Metric::Load1, None, 5.0),
    ];
    w.tick(100.0, &pts);
    w.tick(101.0, &pts);
    let mut p = Publisher::new(View::new("h", "t.json", Duration::from_secs(1)));
    p.publish(&w.inputs());
    let v = p.board().current();
    let got: Vec<Row<'_>> = v
        .alerts
        .iter()
        .map(|a| {
            (&*a.rule, &*a.series, a.firing(), a.severity, &*a.threshold, a.silenced_by.as_deref())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("disk", "disk.used_percent{mount=/}", true, Severity::Critical, "> 95", None),
            ("disk", "disk.used_percent{mount=/data}", true, Severity::Warning, "> 90", Some("s1")),
            ("load", "load.1", false, Severity::Warning, "> 1", None),
        ]
    );
    assert_eq!(v.alerts[2].since(), 100.0);
}

#[test]
fn health_is_three_intervals() {
    let v = View::new("h", "t", Duration::from_secs(2));
    assert!(v.healthy(v.published + Duration::from_secs(6)));
    assert!(!v.healthy(v.published + Duration::from_millis(6001)));
}

#[test]
fn a_reload_that_changes_the_interval_is_published_at_once_and_health_follows_it() {
    // Longer: the next tick comes one new interval after the reload, which is more than
    // three old intervals after the last tick; /health must not say 503 meanwhile.
    let mut p = Publisher::new(View::new("h", "t.json", Duration::from_secs(1)));
    let board = p.board();
    p.reconfigure("h2", "t2.json", Duration::from_secs(60));
    let v = board.current();
    assert_eq!((&*v.host, v.interval), ("h2", Duration::from_secs(60)));
    assert!(v.healthy(Instant::now() + Duration::from_secs(10)));
    // Shorter: the deadline the old interval gave is kept, not cut to three new intervals.
    let mut p = Publisher::new(View::new("h", "t.json", Duration::from_secs(60)));
    let board = p.board();
    p.reconfigure("h", "t.json", Duration::from_secs(1));
    assert!(board.current().healthy(Instant::now() + Duration::from_secs(10)));
    // Unchanged: a reload is no tick, the deadline stays.
    let mut p = Publisher::new(View::new("h", "t.json", Duration::from_secs(1)));
    let board = p.board();
    let until = board.current().healthy_until;
    p.reconfigure("h", "t.json", Duration::from_secs(1));
    assert_eq!(board.current().healthy_until, until);
}

#[test]
fn a_steady_state_publication_allocates_nothing() {
    let mut w = World::new();
    let silences: Vec<Silence> = (0..3)
        .map(|i| Silence {
            host: None,
            id: format!("s{i}"),
            rule: Some("disk".into()),
            matchers: [("mount".to_string(), "/data*".to_string())].into(),
            until: 1e10,
            schedule: None,
            comment: "maintenance".into(),
        })
        .collect();
    w.engine.set_silences(silences);
    let mounts: Vec<String> = (0..40).map(|i| format!("/data{i}")).collect();
    let mut points: Vec<(Metric, Option<&str>, f64)> =
        mounts.iter().map(|m| (Metric::DiskUsedPercent, Some(m.as_str()), 96.0)).collect();
    points.push((Metric::Load1, None, 5.0));
    let channels: BTreeMap<String, ChannelHealth> = (0..2)
        .map(|i| {
            let h = ChannelHealth { last_error: Some("HTTP 500".into()), ..Default::default() };
            (format!("chan{i}"), h)
        })
        .collect();
    let mut p = Publisher::new(View::new("h", "t.json", Duration::from_secs(1)));
    let board = p.board();
    let mut counts = Vec::new();
    for t in 0..8 {
        w.tick(100.0 + f64::from(t), &points);
        let mut inputs = w.inputs();
        inputs.channels = Some(channels.clone());
        let n = crate::testutil::allocations(|| p.publish(&inputs));
        if t >= 4 {
            counts.push(n);
        }
    }
    let v = board.current();
    assert_eq!(v.alerts.iter().filter(|a| a.silenced_by.as_deref() == Some("s0")).count(), 40);
    assert_eq!((v.silences.len(), v.channels.len()), (3, 2));
    assert_eq!(counts, [0; 4], "allocations per publication in a steady state");
}
