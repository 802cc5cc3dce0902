//! `/metrics` end to end: the real binary (`hostwatch run` with `api.listen`, a firing and a
//! pending rule, a webhook channel delivering to a recording receiver) serves an exposition
//! that `promtool check metrics` (Debian `prometheus`) finds clean, and a real Prometheus
//! scrapes it (`up == 1`, the alert, a CPU series and the delivery counters queried back
//! through its HTTP API, the agent's `host` label kept beside Prometheus' `instance`). As root,
//! a tmpfs mounted at a path with a double quote, a backslash, a newline and `<x>` in it
//! comes out escaped, passes promtool and is read back unchanged from Prometheus.
#![cfg(all(feature = "api", feature = "webhook"))]

mod common;

use common::daemon::Daemon;
use common::receiver::{Receiver, free_port};
use common::tmpfs::Tmpfs;
use common::{http, tempdir, write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon, a scrape or a Prometheus start may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Fails loudly when a peer the test needs is not installed.
fn need(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is needed by this test and was not found: apt-get install prometheus \
         (scripts/test.sh installs it in CI)"
    );
}

/// Polls `f` every 200 ms until it gives a value or `limit` passes.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The body of a 200 answer to `GET url`.
fn get(url: &str) -> Option<String> {
    match http("GET", url, "") {
        Ok((200, body)) => Some(body),
        _ => None,
    }
}

/// One sample's value from exposition text: the line starting with `prefix` (name and
/// labels up to where the test cares), its value.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

/// Runs `promtool check metrics` on `text`; fails on a non-zero exit or any output (lint
/// problems are printed, one a line).
fn promtool_check(dir: &Path, text: &str) {
    let file = write(dir, "metrics.txt", text);
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("run promtool");
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics ({}) on {}:\n{said}\n--- exposition ---\n{text}",
        out.status,
        file.display()
    );
}

/// A running Prometheus scraping one target every second; killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target_port: u16) -> Prometheus {
        need("prometheus");
        let port = free_port();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: hostwatch\n    static_configs:\n      \
             - targets: ['127.0.0.1:{target_port}']\n"
        );
        let config = write(dir, "prometheus.yml", &config);
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port, log }
    }

    /// The result vector of an instant query (None while Prometheus does not answer).
    fn query(&self, q: &str) -> Option<Vec<Value>> {
        let url = format!("http://127.0.0.1:{}/api/v1/query?query={}", self.port, encode(q));
        let body: Value = serde_json::from_str(&get(&url)?).ok()?;
        Some(body["data"]["result"].as_array()?.clone())
    }

    /// Waits (bounded) until `q` returns at least one series; returns them.
    fn wait_query(&self, q: &str) -> Vec<Value> {
        wait_for(PATIENCE, || self.query(q).filter(|r| !r.is_empty())).unwrap_or_else(|| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(20).collect();
            panic!(
                "Prometheus never answered {q:?} with a series; targets: {:?}\nlog (last lines, \
                 newest first):\n{}",
                get(&format!("http://127.0.0.1:{}/api/v1/targets", self.port)),
                tail.join("\n")
            )
        })
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A config with `api.listen` on `port`, a firing rule on `load.1`, a pending one on
/// `mem.used_percent` (its window is an hour) and a webhook channel to `url`.
fn config(dir: &Path, port: u16, url: &str, extra: Value) -> PathBuf {
    let mut cfg = json!({
        "host": "prom-test", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "api": {"listen": format!("127.0.0.1:{port}")},
        "rules": [
            {"name": "load_any", "metric": "load.1", "warn": ">= 0"},
            {"name": "mem_held", "metric": "mem.used_percent", "warn": ">= 0", "for": "1h"}
        ],
        "channels": {"hook": {"type": "webhook", "url": url, "timeout": "2s"}},
        "routes": [{"channels": ["hook"]}]
    });
    if let (Some(cfg), Some(extra)) = (cfg.as_object_mut(), extra.as_object()) {
        cfg.extend(extra.clone());
    }
    write(dir, "config.json", &cfg.to_string())
}

/// Waits (bounded) until `/metrics` satisfies `ready`; returns it.
fn wait_metrics(daemon: &mut Daemon, url: &str, ready: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    let got = wait_for(PATIENCE, || {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            let said: Vec<String> = daemon.stderr.try_iter().collect();
            panic!(
                "hostwatch run exited ({status}) before /metrics was ready:\n{}",
                said.join("\n")
            );
        }
        last = get(url)?;
        ready(&last).then(|| last.clone())
    });
    got.unwrap_or_else(|| panic!("/metrics never got ready; last answer:\n{last}"))
}

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_them() {
    need("promtool");
    need("prometheus");
    let dir = tempdir("api-metrics");
    let receiver = Receiver::start();
    let port = free_port();
    let cfg = config(&dir, port, &receiver.url("/hook"), json!({}));
    let mut daemon = Daemon::start(&cfg, false);
    let url = format!("http://127.0.0.1:{port}/metrics");

    let delivered =
        "hostwatch_deliveries_total{host=\"prom-test\",channel=\"hook\",result=\"delivered\"}";
    let text = wait_metrics(&mut daemon, &url, |t| {
        sample(t, delivered).is_some_and(|n| n >= 1.0)
            && sample(t, "hostwatch_ticks_total{").is_some_and(|n| n >= 3.0)
            && t.contains("hostwatch_cpu_usage_percent{")
    });
    println!(
        "/metrics after {} ticks: {} lines, {} bytes",
        sample(&text, "hostwatch_ticks_total{").unwrap(),
        text.lines().count(),
        text.len()
    );
    assert!(
        text.contains(
            "hostwatch_alert{host=\"prom-test\",rule=\"load_any\",severity=\"warning\",state=\"firing\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "hostwatch_alert{host=\"prom-test\",rule=\"mem_held\",severity=\"warning\",state=\"pending\"} 1\n"
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE hostwatch_deliveries_total counter\n"), "{text}");
    assert!(text.contains("hostwatch_build_info{host=\"prom-test\",version=\""), "{text}");
    assert!(sample(&text, "hostwatch_load_1{host=\"prom-test\"}").is_some(), "{text}");
    assert!(sample(&text, "hostwatch_tick_duration_seconds{").is_some_and(|s| s >= 0.0));
    assert!(!text.contains("NaN"), "{text}");
    promtool_check(&dir, &text);

    let prom = Prometheus::start(&dir, port);
    let up = prom.wait_query("up{job=\"hostwatch\"} == 1");
    assert_eq!(up[0]["metric"]["instance"], format!("127.0.0.1:{port}"), "{up:?}");
    let alert = prom.wait_query("hostwatch_alert{rule=\"load_any\",state=\"firing\"}");
    assert_eq!(alert.len(), 1, "{alert:?}");
    let labels = &alert[0]["metric"];
    assert_eq!(labels["host"], "prom-test", "the agent's host label is kept: {labels}");
    assert!(labels.get("exported_host").is_none(), "{labels}");
    assert_eq!(alert[0]["value"][1], "1", "{alert:?}");
    let cpu = prom.wait_query("hostwatch_cpu_usage_percent{host=\"prom-test\"}");
    let cpu: f64 = cpu[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
    let delivered =
        prom.wait_query("hostwatch_deliveries_total{channel=\"hook\",result=\"delivered\"} >= 1");
    println!(
        "Prometheus: up == 1, alert and cpu ({cpu:.1} %) queried back, delivered {}",
        delivered[0]["value"][1]
    );
    // The scrape itself was clean: Prometheus saw no sample it had to drop.
    let health = get(&format!("http://127.0.0.1:{}/api/v1/targets", prom.port)).unwrap();
    let health: Value = serde_json::from_str(&health).unwrap();
    let target = &health["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["lastError"], "", "{target}");
}

#[test]
fn a_hostile_mount_name_passes_promtool_and_prometheus_reads_it_back() {
    need("promtool");
    need("prometheus");
    let dir = tempdir("api-metrics-hostile");
    let name = format!("hw-prom-{}-a\"b\\c\nd<x>", std::process::id());
    let fs = Tmpfs::mount(&std::env::temp_dir().join(&name), "1m");
    if !fs.mounted {
        println!(
            "!!!!! SKIPPED the hostile mount part of api_metrics: mount -t tmpfs failed (not \
             root?); CI runs as root !!!!!"
        );
        return;
    }
    let mount = fs.path.to_str().unwrap().to_string();
    let receiver = Receiver::start();
    let port = free_port();
    let extra = json!({
        "collect": {"include": {"mount": [mount]}},
        "rules": [{"name": "disk_any", "metric": "disk.used_percent", "match": {"mount": mount}, "warn": ">= 0"}]
    });
    let cfg = config(&dir, port, &receiver.url("/hook"), extra);
    let mut daemon = Daemon::start(&cfg, false);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let escaped = mount.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let want = format!("hostwatch_disk_used_percent{{host=\"prom-test\",mount=\"{escaped}\"}} ");
    let want_alert = format!(
        "hostwatch_alert{{host=\"prom-test\",rule=\"disk_any\",severity=\"warning\",\
         state=\"firing\",mount=\"{escaped}\"}} 1\n"
    );
    let text = wait_metrics(&mut daemon, &url, |t| t.contains(&want) && t.contains(&want_alert));
    promtool_check(&dir, &text);

    let prom = Prometheus::start(&dir, port);
    prom.wait_query("up{job=\"hostwatch\"} == 1");
    // `(?s)`: the mount holds a newline, which `.` does not match in Prometheus' RE2.
    let disk = prom.wait_query("hostwatch_disk_used_percent{mount=~\"(?s).*hw-prom-.*\"}");
    assert_eq!(disk.len(), 1, "{disk:?}");
    assert_eq!(disk[0]["metric"]["mount"].as_str(), Some(mount.as_str()), "{disk:?}");
    let alert = prom.wait_query("hostwatch_alert{mount=~\"(?s).*a\\\"b.*\"}");
    assert_eq!(alert[0]["metric"]["mount"].as_str(), Some(mount.as_str()), "{alert:?}");
    assert_eq!(alert[0]["metric"]["rule"], "disk_any", "{alert:?}");
    println!("hostile mount {mount:?} escaped, promtool clean, read back from Prometheus");
}
