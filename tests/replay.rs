//! `hostwatch replay` scenarios: every window form, hysteresis, N/M, reminders, escalation,
//! resolution, silences, per-series independence, gaps and a restart mid-episode. Samples are
//! written by the test with their own timestamps; the binary evaluates them without a clock.

mod common;

use common::{json_lines, run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::path::Path;

/// One sample line: `ts` and (series key, value) pairs.
fn line(ts: f64, points: &[(&str, f64)]) -> String {
    let metrics: serde_json::Map<String, Value> =
        points.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"ts": ts, "host": "test", "metrics": metrics}).to_string()
}

/// Samples of one series every `step` seconds from t=1000.
fn series(key: &str, step: f64, values: &[f64]) -> String {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| line(1000.0 + step * i as f64, &[(key, *v)]) + "\n")
        .collect()
}

/// Runs replay with a config body (rules etc.) and returns the notifications.
fn replay_in(dir: &Path, config: Value, samples: &str, extra: &[&str]) -> Vec<Value> {
    let mut config = config;
    config["state_dir"] = json!(dir.join("state").display().to_string());
    config["host"] = json!("test");
    if config.get("interval").is_none() {
        config["interval"] = json!("5s");
    }
    let cfg = write(dir, "config.json", &config.to_string());
    let data = write(dir, "samples.jsonl", samples);
    let mut args = vec!["replay", data.to_str().unwrap(), "--config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    json_lines(&stdout(&out))
}

fn replay(name: &str, config: Value, samples: &str) -> Vec<Value> {
    replay_in(&tempdir(name), config, samples, &[])
}

/// (ts offset from 1000, event, severity) of each notification.
fn events(ns: &[Value]) -> Vec<(f64, String, String)> {
    ns.iter()
        .map(|n| {
            (
                n["ts"].as_f64().unwrap() - 1000.0,
                n["event"].as_str().unwrap().to_string(),
                n["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ev(t: f64, e: &str, s: &str) -> (f64, String, String) {
    (t, e.to_string(), s.to_string())
}

#[test]
fn latest_sample_fires_and_resolves_with_documented_fields() {
    let cfg = json!({"rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80"}]});
    let ns = replay("latest", cfg, &series("cpu.usage", 5.0, &[50.0, 90.0, 91.0, 50.0]));
    assert_eq!(events(&ns), vec![ev(5.0, "firing", "warning"), ev(15.0, "resolved", "warning")]);
    let n = &ns[0];
    assert_eq!(n["rule"], "cpu_hi");
    assert_eq!(n["series"], "cpu.usage");
    assert_eq!(n["labels"], json!({}));
    assert_eq!(n["value"], 90.0);
    assert_eq!(n["threshold"], "> 80");
    assert!(n["key"].as_str().unwrap().starts_with("cpu_hi:"));
    assert_ne!(ns[0]["key"], ns[1]["key"], "each notification has its own key");
}

#[test]
fn for_window_needs_the_condition_to_hold_for_the_whole_duration() {
    let cfg =
        json!({"rules": [{"name": "hot", "metric": "cpu.usage", "warn": "> 80", "for": "30s"}]});
    // High from t=0 but a dip at t=20 restarts the clock: fires 30 s after t=25, at t=55.
    let values = [90.0, 90.0, 90.0, 90.0, 10.0, 90.0, 90.0, 90.0, 90.0, 90.0, 90.0, 90.0, 90.0];
    let ns = replay("for", cfg, &series("cpu.usage", 5.0, &values));
    assert_eq!(events(&ns), vec![ev(55.0, "firing", "warning")]);
}

#[test]
fn avg_window_fires_on_the_mean_once_the_window_is_covered() {
    let cfg =
        json!({"rules": [{"name": "iow", "metric": "cpu.iowait", "warn": "> 20", "avg": "1m"}]});
    // Alternating 10/40: every sample alone crosses or not, the mean (25) crosses once a
    // minute of samples is there.
    let values: Vec<f64> = (0..16).map(|i| if i % 2 == 0 { 10.0 } else { 40.0 }).collect();
    let ns = replay("avg", cfg, &series("cpu.iowait", 5.0, &values));
    assert_eq!(events(&ns), vec![ev(55.0, "firing", "warning")]);
    assert!((ns[0]["value"].as_f64().unwrap() - 25.0).abs() < 1e-6, "{}", ns[0]);
}

#[test]
fn max_and_min_windows() {
    let cfg = json!({"rules": [
        {"name": "mx", "metric": "load.1", "warn": "< 2", "max": "20s"},
        {"name": "mn", "metric": "load.5", "warn": "> 1", "min": "20s"}
    ]});
    let mut data = String::new();
    let l1 = [1.0, 1.5, 1.0, 1.2, 1.1, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    let l5 = [2.0, 2.0, 0.5, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
    for i in 0..l1.len() {
        data += &(line(1000.0 + 5.0 * i as f64, &[("load.1", l1[i]), ("load.5", l5[i])]) + "\n");
    }
    let ns = replay("maxmin", cfg, &data);
    let got: Vec<(String, f64, String)> = ns
        .iter()
        .map(|n| {
            (
                n["rule"].as_str().unwrap().into(),
                n["ts"].as_f64().unwrap() - 1000.0,
                n["event"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            // max of load.1 over 20 s stays below 2 from t=15 (covered), until 3.0 at t=25.
            ("mx".into(), 15.0, "firing".into()),
            ("mx".into(), 25.0, "resolved".into()),
            // min of load.5 over 20 s: the 0.5 at t=10 holds it down until it leaves at t=30.
            ("mn".into(), 30.0, "firing".into()),
            // 3.0 leaves the max window at t=45 (window is (t-20, t]).
            ("mx".into(), 45.0, "firing".into()),
        ]
    );
}

#[test]
fn occurrences_n_of_m() {
    let cfg = json!({"rules": [{"name": "tcp", "metric": "tcp.established", "warn": "> 5000", "occurrences": "3/5"}]});
    let hi = 6000.0;
    let lo = 100.0;
    // Two of five never fires; the third within five fires (t=40); it resolves as soon as
    // fewer than three of the last five are high (t=45).
    let values = [hi, lo, lo, lo, hi, lo, hi, lo, hi, lo, lo, lo, lo, lo];
    let ns = replay("occ", cfg, &series("tcp.established", 5.0, &values));
    assert_eq!(events(&ns), vec![ev(40.0, "firing", "warning"), ev(45.0, "resolved", "warning")]);
}

#[test]
fn hysteresis_does_not_flap_at_the_boundary() {
    let values = [91.0, 89.0, 91.0, 89.5, 90.5, 88.0, 86.0, 84.0, 89.0, 91.0];
    let with_clear = json!({"rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 90", "clear": "< 85"}]});
    let ns = replay("hyst", with_clear, &series("disk.used_percent{mount=/}", 5.0, &values));
    assert_eq!(
        events(&ns),
        vec![
            ev(0.0, "firing", "warning"),
            ev(35.0, "resolved", "warning"),
            ev(45.0, "firing", "warning")
        ]
    );
    assert_eq!(ns[0]["labels"], json!({"mount": "/"}));
    assert_eq!(ns[1]["threshold"], "< 85", "a resolution names the clear condition");
    // Without `clear` the threshold itself is the boundary, and the same data flaps.
    let no_clear =
        json!({"rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 90"}]});
    let flappy = replay("hyst2", no_clear, &series("disk.used_percent{mount=/}", 5.0, &values));
    assert!(flappy.len() > 4, "{flappy:?}");
}

#[test]
fn reminders_and_escalation_by_time() {
    let cfg = json!({
        "rules": [{"name": "mem", "metric": "mem.used_percent", "warn": "> 80"}],
        "escalation": {"remind_every": "30s", "critical_after": "1m"}
    });
    let values = vec![85.0; 20];
    let ns = replay("remind", cfg, &series("mem.used_percent", 5.0, &values));
    assert_eq!(
        events(&ns),
        vec![
            ev(0.0, "firing", "warning"),
            ev(30.0, "reminder", "warning"),
            ev(60.0, "escalated", "critical"),
            ev(90.0, "reminder", "critical"),
        ]
    );
    let seqs: Vec<u64> = ns.iter().map(|n| n["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(ns.iter().all(|n| n["since"] == ns[0]["since"]), "one episode");
}

#[test]
fn crit_threshold_escalates_at_once_and_resolution_ends_the_episode() {
    let cfg =
        json!({"rules": [{"name": "cpu", "metric": "cpu.usage", "warn": "> 80", "crit": "> 95"}]});
    let ns = replay("crit", cfg, &series("cpu.usage", 5.0, &[85.0, 85.0, 97.0, 90.0, 50.0, 97.0]));
    assert_eq!(
        events(&ns),
        vec![
            ev(0.0, "firing", "warning"),
            ev(10.0, "escalated", "critical"),
            ev(20.0, "resolved", "critical"),
            ev(25.0, "firing", "critical"),
        ]
    );
    assert_eq!(ns[1]["threshold"], "> 95");
    assert_ne!(ns[3]["since"], ns[0]["since"], "a new episode");
}

#[test]
fn silences_suppress_notifications_until_they_expire() {
    let cfg = json!({
        "rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80"},
                  {"name": "mem_hi", "metric": "mem.used_percent", "warn": "> 80"}],
        "silences": [{"rule": "cpu_*", "until": "1970-01-01T00:17:00Z", "comment": "maintenance"}]
    });
    let mut data = String::new();
    for i in 0..8 {
        let t = 1000.0 + 5.0 * i as f64;
        data += &(line(t, &[("cpu.usage", 90.0), ("mem.used_percent", 90.0)]) + "\n");
    }
    let ns = replay("silence", cfg, &data);
    let got: Vec<(String, f64, String)> = ns
        .iter()
        .map(|n| {
            (
                n["rule"].as_str().unwrap().into(),
                n["ts"].as_f64().unwrap() - 1000.0,
                n["event"].as_str().unwrap().into(),
            )
        })
        .collect();
    // mem_hi is not silenced; cpu_hi is announced when the silence ends at t=20.
    assert_eq!(
        got,
        vec![("mem_hi".into(), 0.0, "firing".into()), ("cpu_hi".into(), 20.0, "firing".into())]
    );
}

#[test]
fn each_series_alerts_on_its_own() {
    let cfg = json!({"rules": [{"name": "core", "metric": "cpu.core.usage", "warn": "> 95"}]});
    let mut data = String::new();
    for i in 0..4 {
        let t = 1000.0 + 5.0 * i as f64;
        let hot = if i >= 1 { 99.0 } else { 10.0 };
        data += &(line(
            t,
            &[
                ("cpu.core.usage{core=0}", 10.0),
                ("cpu.core.usage{core=1}", 20.0),
                ("cpu.core.usage{core=2}", 30.0),
                ("cpu.core.usage{core=3}", hot),
            ],
        ) + "\n");
    }
    let ns = replay("perseries", cfg, &data);
    assert_eq!(ns.len(), 1, "{ns:?}");
    assert_eq!(ns[0]["series"], "cpu.core.usage{core=3}");
    assert_eq!(ns[0]["labels"], json!({"core": "3"}));
}

#[test]
fn a_gap_in_samples_does_not_count_as_held() {
    let cfg =
        json!({"rules": [{"name": "hot", "metric": "cpu.usage", "warn": "> 80", "for": "30s"}]});
    let mut data = String::new();
    // High from t=0 to t=20, the agent stops, and comes back at t=100 with high values again.
    for t in [0.0, 5.0, 10.0, 15.0, 20.0, 100.0, 105.0, 110.0, 115.0, 120.0, 125.0, 130.0, 135.0] {
        data += &(line(1000.0 + t, &[("cpu.usage", 90.0)]) + "\n");
    }
    let ns = replay("gap", cfg, &data);
    // Without the gap rule it would fire at t=100 (held "since" t=0); it fires 30 s after t=100.
    assert_eq!(events(&ns), vec![ev(130.0, "firing", "warning")]);
}

#[test]
fn restart_mid_episode_neither_repeats_nor_loses_notifications() {
    let dir = tempdir("restart");
    let cfg = json!({"rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80"}],
                     "escalation": {"remind_every": "1h"}});
    let state = dir.join("state");
    let state_arg = state.to_str().unwrap().to_string();
    let first = replay_in(
        &dir,
        cfg.clone(),
        &series("cpu.usage", 5.0, &[90.0, 90.0, 90.0]),
        &["--state-dir", &state_arg],
    );
    assert_eq!(events(&first), vec![ev(0.0, "firing", "warning")]);
    assert!(state.join("state.json").exists());
    // The second process sees the alert still firing: no second "firing"; then it clears.
    let mut later = String::new();
    for (i, v) in [90.0, 90.0, 50.0].iter().enumerate() {
        later += &(line(1100.0 + 5.0 * i as f64, &[("cpu.usage", *v)]) + "\n");
    }
    let second = replay_in(&dir, cfg, &later, &["--state-dir", &state_arg]);
    assert_eq!(events(&second), vec![ev(110.0, "resolved", "warning")]);
    assert_eq!(second[0]["since"], first[0]["since"], "the same episode");
}

#[test]
fn recorded_sample_lines_replay() {
    let dir = tempdir("recorded");
    let out = run(&["sample", "--format", "jsonl", "--every", "300ms", "--count", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let recorded = stdout(&out);
    assert_eq!(recorded.lines().count(), 3);
    let cfg = json!({"interval": "1s", "rules": [
        {"name": "always", "metric": "mem.used_percent", "crit": ">= 0"},
        {"name": "never", "metric": "mem.used_percent", "warn": "> 100"}
    ]});
    let ns = replay_in(&dir, cfg, &recorded, &[]);
    assert_eq!(ns.len(), 1, "{ns:?}");
    assert_eq!(ns[0]["rule"], "always");
    assert_eq!(ns[0]["severity"], "critical");
}

#[test]
fn malformed_lines_are_reported_with_their_line_number() {
    let dir = tempdir("malformed");
    let cfg = json!({"rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80"}], "state_dir": "/tmp"});
    let cfg = write(&dir, "c.json", &cfg.to_string());
    let data = write(
        &dir,
        "s.jsonl",
        &(line(1000.0, &[("cpu.usage", 1.0)]) + "\n{\"ts\": 1, \"metrics\": {\"cpu.usge\": 1}}\n"),
    );
    let out = run(&["replay", data.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("s.jsonl:2: metrics: unknown metric \"cpu.usge\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_restart_or_gap_does_not_resolve_a_window_alert_on_one_sample() {
    let dir = tempdir("restart-window");
    let cfg = json!({"rules": [
        {"name": "tcp", "metric": "tcp.established", "warn": "> 5000", "occurrences": "3/5"},
        {"name": "iow", "metric": "cpu.iowait", "warn": "> 50", "avg": "1m"}
    ], "escalation": {"remind_every": "1h"}});
    let state = dir.join("state");
    let state_arg = state.to_str().unwrap().to_string();
    let mut first = String::new();
    for i in 0..14 {
        first +=
            &(line(1000.0 + 5.0 * i as f64, &[("tcp.established", 6000.0), ("cpu.iowait", 90.0)])
                + "\n");
    }
    let a = replay_in(&dir, cfg.clone(), &first, &["--state-dir", &state_arg]);
    assert_eq!(a.iter().filter(|n| n["event"] == "firing").count(), 2, "{a:?}");
    // A new process (empty windows) sees one calm-ish sample among hot ones: a 70 dip keeps
    // the real minute average near 88, and one calm TCP sample is 1 of 5.
    let mut second = String::new();
    for i in 0..6 {
        let (tcp, iow) = if i == 0 { (100.0, 70.0) } else { (6000.0, 90.0) };
        second +=
            &(line(1070.0 + 5.0 * i as f64, &[("tcp.established", tcp), ("cpu.iowait", iow)])
                + "\n");
    }
    let b = replay_in(&dir, cfg, &second, &["--state-dir", &state_arg]);
    assert!(b.is_empty(), "a partial window resolved (and refired) an alert: {b:?}");
}

#[test]
fn a_clock_that_steps_back_restarts_windows_instead_of_freezing_them() {
    let cfg = json!({"rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80"}]});
    let mut data = String::new();
    for (t, v) in [(1000.0, 90.0), (1005.0, 90.0), (900.0, 10.0), (905.0, 10.0)] {
        data += &(line(t, &[("cpu.usage", v)]) + "\n");
    }
    let ns = replay("clock-back", cfg, &data);
    let got: Vec<String> = ns.iter().map(|n| n["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, vec!["firing", "resolved"], "{ns:?}");
}

/// A square wave on cpu.usage (90 at odd k, 50 at even k, for 12 samples, then 50) every 5 s
/// from t=1000, samples `from..to`.
fn square_wave(from: usize, to: usize) -> String {
    (from..to)
        .map(|k| {
            let v = if k < 12 && k % 2 == 1 { 90.0 } else { 50.0 };
            line(1000.0 + 5.0 * k as f64, &[("cpu.usage", v)]) + "\n"
        })
        .collect()
}

#[test]
fn a_square_wave_flaps_and_its_flap_end_closes_the_episode_across_a_restart() {
    let cfg = json!({"rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80"}]});
    let whole = replay("flap-whole", cfg.clone(), &square_wave(0, 40));
    // Firing at odd k, resolved at even k, until the ninth change (k = 9: 50.2 % of weighted
    // state changes) is a `flapping` instead; then nothing until the share falls under 25 %
    // at k = 27 (21.1 %), 15 evaluations after the wave settled (k = 12).
    let mut expected = Vec::new();
    for k in 1..9 {
        let e = if k % 2 == 1 { "firing" } else { "resolved" };
        expected.push(ev(5.0 * k as f64, e, "warning"));
    }
    expected.push(ev(45.0, "flapping", "warning"));
    expected.push(ev(135.0, "flap_end", "warning"));
    assert_eq!(events(&whole), expected);
    let (flapping, end) = (&whole[8], &whole[9]);
    // One episode: the one the flapping opened at k = 9; the flap_end is its second and last
    // notification (no resolved follows), with the current state.
    assert_eq!(flapping["since"], 1045.0);
    assert_eq!(flapping["seq"], 1);
    assert_eq!(flapping["flap_percent"], 50.2);
    assert!(flapping.get("state").is_none(), "{flapping}");
    assert_eq!(
        flapping["reason"],
        "flapping: 50.2% of the last 21 evaluations changed state; no firing or resolved until it settles"
    );
    assert_eq!(end["episode_key"], flapping["episode_key"]);
    assert_eq!(end["key"], format!("{}:2", flapping["episode_key"].as_str().unwrap()));
    assert_eq!(
        (&end["seq"], &end["state"], &end["flap_percent"]),
        (&json!(2), &json!("ok"), &json!(21.1))
    );
    assert_eq!(end["threshold"], "<= 80", "an ok flap_end shows the clear condition");
    let keys: std::collections::BTreeSet<&str> =
        whole.iter().map(|n| n["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), whole.len(), "every key is unique");

    // The same samples in two processes, stopped while it flaps (k = 12): the state file
    // carries the flap history and period, so the second tells exactly the same flap_end.
    let dir = tempdir("flap-restart");
    let state_arg = dir.join("state").to_str().unwrap().to_string();
    let first = replay_in(&dir, cfg.clone(), &square_wave(0, 12), &["--state-dir", &state_arg]);
    let second = replay_in(&dir, cfg, &square_wave(12, 40), &["--state-dir", &state_arg]);
    let saved = std::fs::read_to_string(dir.join("state/state.json")).unwrap();
    assert!(!saved.contains("\"flapping\""), "the flap is over: {saved}");
    let mut both = first.clone();
    both.extend(second.iter().cloned());
    // Only the duration differs: a new process counts no elapsed time before its first
    // sample (as for every episode across restarts), so 85 s of flapping instead of 90 s.
    assert_eq!(whole[9]["episode_duration_s"], 90.0);
    assert_eq!(both[9]["episode_duration_s"], 85.0);
    both[9]["episode_duration_s"] = json!(90.0);
    assert_eq!(both, whole);
}

#[test]
fn flap_false_keeps_every_firing_and_resolved_of_a_square_wave() {
    let cfg = json!({"rules": [
        {"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80", "flap": false}
    ]});
    let ns = replay("flap-off", cfg, &square_wave(0, 40));
    let expected: Vec<_> = (1..=12)
        .map(|k| ev(5.0 * k as f64, if k % 2 == 1 { "firing" } else { "resolved" }, "warning"))
        .collect();
    assert_eq!(events(&ns), expected);
}
