//! Property-based fuzzing (proptest) of what reads local files: the state loader (random
//! bytes, and mutations of a valid state.json: truncation, flipped bytes, hostile numbers,
//! huge arrays) followed by everything a loaded state feeds (alerts, rings, counters), the
//! events log's tail repair and reader, and the silences file reader. `PROPTEST_CASES` sets
//! the cases per target (2,000 by default).

use super::tests::{tempdir, valid_state_json};
use super::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000)
}

/// Loads `bytes` as a state file in a fresh directory, then restores it the way
/// `once` does; must never panic.
fn load_bytes(dir: &Path, bytes: &[u8]) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    fs::write(state_path(dir), bytes).unwrap();
    let loaded = load_report(dir);
    exercise(loaded.state);
    let _ = serde_json::from_slice::<State>(bytes);
}

/// What a state feeds: the engine's alerts and rings, the collector's counters.
fn exercise(state: State) {
    let config = crate::config::load_str(
        r#"{"state_dir": "/tmp/unused", "escalation": {"remind_every": "1s", "critical_after": "2s"},
            "rules": [{"name": "cpu_high", "metric": "cpu.usage", "warn": "> 90", "crit": "> 99", "for": "1m"}]}"#,
        "t.json",
        &|_| None,
    )
    .unwrap();
    let mut engine = crate::engine::Engine::new(&config, Some(600.0));
    engine.restore_alerts(state.alerts);
    let mut reg = crate::series::Registry::new();
    let cpu = reg.intern(crate::metrics::Metric::CpuUsage, None);
    if let Some(once) = &state.once {
        engine.warm_rings(&reg, &once.rings);
        let mut backend = crate::collect::backend(&config.collect);
        let _ = backend.restore_counters(&once.counters);
    }
    let mut sample = crate::collect::Sample { unix_ts: 1_800_000_100.0, ..Default::default() };
    sample.points.push((cpu, 95.0));
    let mut out = Vec::new();
    engine.tick(&reg, &sample, &mut out);
    engine.drop_unbound_restored(sample.unix_ts, &mut out);
    // Later samples: reminders, escalation, then a resolution.
    for (dt, v) in [(5.0, 95.0), (10.0, 100.0), (15.0, 1.0)] {
        sample.unix_ts = 1_800_000_100.0 + dt;
        sample.points[0].1 = v;
        engine.tick(&reg, &sample, &mut out);
    }
    let _ = engine.saved_alerts(&reg);
    // The outbox is adopted (journal replay, crash guard, id renumbering), fed and saved.
    let dir =
        crate::testutil::tempdir("fuzz-outbox", &format!("{:?}", std::thread::current().id()));
    let delivery_config = crate::config::Config { state_dir: dir.clone(), ..config.clone() };
    let mut dispatcher =
        crate::notify::delivery::Dispatcher::start(&delivery_config, state.delivery);
    for n in &out {
        dispatcher.enqueue(n.to_event());
    }
    dispatcher.commit(&mut State::default());
    let _ = std::fs::remove_dir_all(&dir);
    for n in &out {
        let _ = n.to_json();
    }
}

/// Mutations of a valid state.json.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let base = valid_state_json().to_string().into_bytes();
    let len = base.len();
    let numbers = prop_oneof![
        Just("-1e300"),
        Just("1e300"),
        Just("-1"),
        Just("0"),
        Just("1e308"),
        Just("\"NaN\""),
        Just("\"inf\""),
        Just("null"),
        Just("18446744073709551615"),
        Just("-9223372036854775808"),
        Just("4294967295"),
        Just("[]"),
        Just("{}"),
        Just("1.5"),
    ];
    prop_oneof![
        (0..len).prop_map({
            let b = base.clone();
            move |n| b[..n].to_vec()
        }),
        (0..len, any::<u8>()).prop_map({
            let b = base.clone();
            move |(i, x)| {
                let mut b = b.clone();
                b[i] ^= x.max(1);
                b
            }
        }),
        (any::<prop::sample::Index>(), numbers).prop_map({
            let b = base.clone();
            move |(i, n)| {
                // Replace the i-th number of the file.
                let text = String::from_utf8(b.clone()).unwrap();
                let spans: Vec<(usize, usize)> = number_spans(&text);
                let (s, e) = spans[i.index(spans.len())];
                format!("{}{n}{}", &text[..s], &text[e..]).into_bytes()
            }
        }),
        (1usize..20_000).prop_map(|n| {
            // A huge ring and a huge outbox of junk.
            let mut v = valid_state_json();
            v["once"]["rings"][0]["entries"] =
                serde_json::Value::from(vec![
                    serde_json::json!([1_800_000_000.0, 1.0]);
                    n.min(5_000)
                ]);
            v["delivery"]["outbox"] =
                serde_json::Value::from(vec![serde_json::json!({"id": 1}); n % 500]);
            v.to_string().into_bytes()
        }),
    ]
}

fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        match b[i] {
            b'"' => in_str = !in_str,
            b'-' | b'0'..=b'9' if !in_str => {
                let s = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                spans.push((s, i));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    spans
}

#[test]
fn fuzz_state_loader_with_random_bytes() {
    let dir = tempdir("fuzz-bytes");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases()));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
            load_bytes(&dir, &bytes);
            Ok(())
        })
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn fuzz_state_loader_with_mutated_state_files() {
    let dir = tempdir("fuzz-mut");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases()));
    runner
        .run(&mutated(), |bytes| {
            load_bytes(&dir, &bytes);
            Ok(())
        })
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn fuzz_events_log_reader_and_tail_repair() {
    let dir = tempdir("fuzz-events");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases()));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..256), |bytes| {
            let path = dir.join("events.jsonl");
            fs::write(&path, &bytes).unwrap();
            let before = crate::eventlog::parse_records(&bytes).len();
            let mut log = crate::eventlog::EventLog::new(&dir);
            log.append(&serde_json::json!({"type": "probe"}));
            let after = crate::eventlog::read_records(&path).unwrap();
            // The probe is never glued onto a torn tail and never lost.
            prop_assert_eq!(
                after.last().map(|r| r["type"].clone()),
                Some(serde_json::json!("probe"))
            );
            prop_assert!(after.len() <= before + 1);
            let text = fs::read(&path).unwrap();
            let probe: &[u8] = b"{\"type\":\"probe\"}\n";
            prop_assert!(text.ends_with(probe), "tail {:?}", String::from_utf8_lossy(&text));
            Ok(())
        })
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn fuzz_silences_file_reader() {
    let dir = tempdir("fuzz-silences");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases()));
    let valid = r#"{"silences": [{"id": "s1", "rule": "cpu_high", "matchers": {"mount": "/"}, "until": 1800000000.0, "comment": "x"}]}"#;
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..valid.len(), any::<u8>()).prop_map(move |(i, x)| {
            let mut b = valid.as_bytes().to_vec();
            b[i] ^= x.max(1);
            b
        }),
        (0..valid.len()).prop_map(move |n| valid.as_bytes()[..n].to_vec()),
    ];
    runner
        .run(&strategy, |bytes| {
            fs::write(crate::silence_store::path(&dir), &bytes).unwrap();
            if let Ok(f) = crate::silence_store::read(&dir) {
                let mut reg = crate::series::Registry::new();
                let id = reg.intern(crate::metrics::Metric::DiskUsedPercent, Some("/"));
                let _ = crate::silence::any_covers(&f.silences, "cpu_high", reg.info(id), 1.0);
            }
            Ok(())
        })
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
}
