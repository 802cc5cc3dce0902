//! A fleet on existing engines, end to end: three `hostwatch run` agents (hosts web-1, web-2,
//! web-3, each with its own API port, state_dir and tmpfs) scraped by one real Prometheus
//! (Debian `prometheus`) and sending alerts to one real Alertmanager (Debian
//! `prometheus-alertmanager`). Prometheus reports `up == 1` for each agent; a disk rule made to
//! fire on every agent (a file fills its tmpfs past the threshold) shows in Alertmanager as
//! one group for the rule with one alert per host; deleting the files clears the condition
//! (the metric really drops under the threshold) and the alerts resolve in Alertmanager. Through
//! Prometheus, `hostwatch_alert{rule="fleet_test"}` is 1 for each host while the rule fires
//! and absent once it cleared. The times measured are printed (`--nocapture`). Also: the example configs under
//! `examples/fleet/` pass `promtool check config` and `amtool check-config`.
//!
//! Mounting a tmpfs needs root; without it the rule is `load.1 >= 0` and the clear is a
//! SIGHUP reload of a config whose threshold cannot be reached (said loudly in the output).

mod common;

use common::daemon::Daemon;
use common::receiver::free_port;
use common::tmpfs::Tmpfs;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `prometheus` installs the server (and `promtool` beside it).
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Where Debian's `prometheus-alertmanager` installs the server (and `amtool` beside it).
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
/// The rule every agent fires and clears.
const RULE: &str = "fleet_test";
const HOSTS: [&str; 3] = ["web-1", "web-2", "web-3"];
/// Bound on each wait for something to happen (a loaded 2-core machine is slow to start Go
/// servers, never this slow).
const WAIT: Duration = Duration::from_secs(40);

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the fleet test needs a real one (apt-get install -y {package})"
    );
}

/// A server process (Prometheus or Alertmanager) logging to a file; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts `program` with `args` plus the listen flag on a free loopback port and waits
    /// (bounded) until `/-/ready` answers 200; a few attempts in case the port was taken.
    fn start(program: &str, dir: &Path, args: &[String]) -> Server {
        let mut logs = Vec::new();
        for attempt in 0..3 {
            let port = free_port();
            let log = dir.join(format!("{}-{attempt}.log", name_of(program)));
            let file = std::fs::File::create(&log).expect("create a log file");
            let child = Command::new(program)
                .args(args)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("start {program}: {e}"));
            let mut server = Server { child, port, log };
            if server.wait_ready() {
                return server;
            }
            logs.push(std::fs::read_to_string(&server.log).unwrap_or_default());
        }
        panic!("{program} did not become ready; its logs:\n{}", logs.join("\n---\n"));
    }

    fn wait_ready(&mut self) -> bool {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            let ready = common::http("GET", &self.url("/-/ready"), "");
            if ready.is_ok_and(|(status, _)| status == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET path` answered 200 with JSON.
    fn get_json(&self, path: &str) -> Value {
        let (status, body) =
            common::http("GET", &self.url(path), "").unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn name_of(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// One `hostwatch run` of the fleet.
struct Agent {
    host: &'static str,
    port: u16,
    config: PathBuf,
    /// `None`: no tmpfs (not root); the rule is on `load.1` and cleared by a reload.
    fs: Option<Tmpfs>,
    daemon: Option<Daemon>,
}

impl Agent {
    fn config_text(&self, dir: &Path, am: &str, clear: bool) -> String {
        let rule = match &self.fs {
            Some(fs) => {
                let mount = fs.path.display().to_string();
                json!({"name": RULE, "metric": "disk.used_percent", "match": {"mount": mount},
                       "warn": "> 50"})
            }
            None => {
                let warn = if clear { ">= 1000000" } else { ">= 0" };
                json!({"name": RULE, "metric": "load.1", "warn": warn})
            }
        };
        let collect = match &self.fs {
            Some(fs) => json!({"include": {"mount": [fs.path.display().to_string()]}}),
            None => json!({}),
        };
        json!({
            "host": self.host,
            "interval": "1s",
            "state_dir": dir.join(format!("state-{}", self.host)).display().to_string(),
            "api": {"listen": format!("127.0.0.1:{}", self.port)},
            "collect": collect,
            "rules": [rule],
            "channels": {"am": {"type": "alertmanager", "url": am, "resend_every": "1m"}},
            "routes": [{"channels": ["am"]}]
        })
        .to_string()
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// True once the agent's `/health` answers 200 (it ticked).
    fn healthy(&self) -> bool {
        let url = format!("http://{}/health", self.target());
        common::http("GET", &url, "").is_ok_and(|(status, _)| status == 200)
    }

    /// Panics with the agent's log if it exited (its port was taken since `free_port`, a bad
    /// config), rather than waiting out the bound on a process that is gone.
    fn assert_running(&mut self) {
        let daemon = self.daemon.as_mut().expect("started");
        if let Ok(Some(status)) = daemon.child.try_wait() {
            std::thread::sleep(Duration::from_millis(200)); // the reader threads catch up
            let log: Vec<String> = daemon.stderr.try_iter().collect();
            panic!(
                "{} exited ({status}) on port {}; its stderr:\n{}",
                self.host,
                self.port,
                log.join("\n")
            );
        }
    }

    /// Makes the rule's condition true (tmpfs: a 3 MiB file on 4 MiB, 75 % > 50 %).
    fn make_fire(&self) {
        if let Some(fs) = &self.fs {
            std::fs::write(fs.path.join("filler"), vec![0x5a; 3 << 20]).expect("fill the tmpfs");
        }
        // Without a tmpfs the rule holds from the first tick.
    }

    /// Makes the rule's condition false again (tmpfs: delete the file; else reload a config
    /// whose threshold load.1 never reaches).
    fn clear(&self, dir: &Path, am: &str) {
        match &self.fs {
            Some(fs) => std::fs::remove_file(fs.path.join("filler")).expect("empty the tmpfs"),
            None => {
                std::fs::write(&self.config, self.config_text(dir, am, true)).expect("config");
                self.daemon.as_ref().expect("running").signal("-HUP");
            }
        }
    }
}

/// Alertmanager's active alerts of [`RULE`]: host → the alert.
fn active_alerts(am: &Server) -> Vec<Value> {
    let alerts =
        am.get_json(&format!("/api/v2/alerts?active=true&filter=alertname%3D%22{RULE}%22"));
    alerts.as_array().expect("an array").to_vec()
}

fn host_of(alert: &Value) -> &str {
    alert["labels"]["host"].as_str().unwrap_or("")
}

/// Polls (bounded) until `done` holds for the latest value of `probe`, calling `seen` on each
/// value first (to note when each host got there). Returns the final value.
fn wait_for<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
    mut seen: impl FnMut(&T),
    done: impl Fn(&T) -> bool,
) -> T {
    let end = Instant::now() + WAIT;
    loop {
        let v = probe();
        seen(&v);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < end, "never saw {what} within {WAIT:?}; last: {v:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Per host, the first time since `start` a condition was seen; printed as "web-1 1.23 s".
fn note(first: &mut [Option<Duration>; 3], start: Instant, hosts: impl Fn(&str) -> bool) {
    for (i, host) in HOSTS.iter().enumerate() {
        if first[i].is_none() && hosts(host) {
            first[i] = Some(start.elapsed());
        }
    }
}

fn show(first: &[Option<Duration>; 3]) -> String {
    let parts: Vec<String> = HOSTS
        .iter()
        .zip(first)
        .map(|(h, t)| format!("{h} {:.2} s", t.unwrap_or_default().as_secs_f64()))
        .collect();
    parts.join(", ")
}

#[test]
fn three_agents_on_one_prometheus_and_one_alertmanager() {
    require(PROMETHEUS, "prometheus");
    require(ALERTMANAGER, "prometheus-alertmanager");
    let dir = common::tempdir("fleet");
    let test_start = Instant::now();

    // Alertmanager: clustering off, everything grouped by rule name, a receiver that only
    // stores (nothing is notified anywhere).
    let am_yml = "route:\n  receiver: store\n  group_by: ['alertname']\n  group_wait: 1s\n  \
                  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: store\n";
    let am_config = common::write(&dir, "alertmanager.yml", am_yml);
    let am = Server::start(
        ALERTMANAGER,
        &dir,
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.join("am-data").display()),
            "--cluster.listen-address=".to_string(),
        ],
    );
    let am_url = am.url("");
    let am_ready = test_start.elapsed();

    let mut agents: Vec<Agent> = HOSTS
        .iter()
        .map(|host| Agent {
            host,
            port: free_port(),
            config: dir.join(format!("{host}.json")),
            fs: Some(Tmpfs::mount_temp(&format!("fleet-{host}"), "4m")).filter(|f| f.mounted),
            daemon: None,
        })
        .collect();
    let tmpfs = agents.iter().all(|a| a.fs.is_some());
    if !tmpfs {
        println!(
            "!!!!! WARNING: mount -t tmpfs failed (not root?): the rule is load.1 >= 0 and the \
             clear is a SIGHUP reload with an unreachable threshold, not a metric dropping !!!!!"
        );
        agents.iter_mut().for_each(|a| a.fs = None);
    }

    // The agents bind their ports a moment after they were chosen (only the mounts came in
    // between; Prometheus starts after them), so little else can take one meanwhile; an agent
    // that could not bind says so at once (`assert_running`).

    for agent in &mut agents {
        std::fs::write(&agent.config, agent.config_text(&dir, &am_url, false)).expect("config");
        agent.daemon = Some(Daemon::start(&agent.config, false));
    }
    let agents_start = Instant::now();
    wait_for(
        "every agent's /health 200",
        || {
            agents.iter_mut().for_each(Agent::assert_running);
            agents.iter().all(Agent::healthy)
        },
        |_| {},
        |ok| *ok,
    );
    let healthy = agents_start.elapsed();

    // Prometheus scrapes the three agents every second. honor_labels stays false: Prometheus
    // owns `job` and `instance` (the address it scraped), hostwatch's `host` label passes
    // through untouched because no target label collides with it.
    let targets: Vec<String> = agents.iter().map(|a| format!("'{}'", a.target())).collect();
    let prom_yml = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: hostwatch\n    honor_labels: false\n    \
         static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let prom_config = common::write(&dir, "prometheus.yml", &prom_yml);
    let prom_start = Instant::now();
    let prom = Server::start(
        PROMETHEUS,
        &dir,
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            "--storage.tsdb.retention.time=1h".to_string(),
        ],
    );

    // up == 1 for each of the three, through Prometheus's HTTP API.
    let mut up_first = [None; 3];
    let up = wait_for(
        "up == 1 for the three agents in Prometheus",
        || prom.get_json("/api/v1/query?query=up")["data"]["result"].clone(),
        |result| {
            note(&mut up_first, prom_start, |host| {
                let agent = agents.iter().find(|a| a.host == host).unwrap();
                instance_value(result, &agent.target()) == Some("1")
            })
        },
        |result| agents.iter().all(|a| instance_value(result, &a.target()) == Some("1")),
    );
    for agent in &agents {
        let series =
            up.as_array().unwrap().iter().find(|s| s["metric"]["instance"] == *agent.target());
        let series = series.expect("a series per target");
        assert_eq!(series["metric"]["job"], "hostwatch", "{series}");
    }
    // What the agents expose reaches Prometheus, one series per instance.
    let build_info = prom.get_json("/api/v1/query?query=hostwatch_build_info");
    let build_info = build_info["data"]["result"].as_array().expect("a result").clone();
    for agent in &agents {
        let series = build_info.iter().find(|s| s["metric"]["instance"] == *agent.target());
        let series = series.unwrap_or_else(|| {
            panic!("no hostwatch_build_info from {}: {build_info:#?}", agent.host)
        });
        // With honor_labels false the agent's own `host` label (on every sample of the full
        // exposition) is kept beside `instance`, never renamed `exported_host`.
        assert!(series["metric"].get("exported_host").is_none(), "{series}");
        if let Some(host) = series["metric"].get("host") {
            assert_eq!(host, agent.host, "{series}");
        }
    }

    // Nothing fires yet (tmpfs: empty).
    if tmpfs {
        assert!(active_alerts(&am).is_empty(), "{:#?}", active_alerts(&am));
    }

    // Fire on every agent; Alertmanager lists one alert per host, in one group for the rule.
    let fire_start = Instant::now();
    agents.iter().for_each(Agent::make_fire);
    let mut fired_first = [None; 3];
    let alerts = wait_for(
        "an active alert per host in Alertmanager",
        || active_alerts(&am),
        |alerts| note(&mut fired_first, fire_start, |h| alerts.iter().any(|a| host_of(a) == h)),
        |alerts| HOSTS.iter().all(|h| alerts.iter().any(|a| host_of(a) == *h)),
    );
    let all_fired = fire_start.elapsed();
    assert_eq!(alerts.len(), 3, "one alert per host: {alerts:#?}");
    for alert in &alerts {
        assert_eq!(alert["labels"]["alertname"], RULE, "{alert}");
        assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
        if let Some(agent) = agents.iter().find(|a| a.host == host_of(alert))
            && let Some(fs) = &agent.fs
        {
            assert_eq!(alert["labels"]["mount"], *fs.path.display().to_string(), "{alert}");
        }
    }
    let groups = wait_for(
        "one group for the rule with the three alerts",
        || rule_groups(&am),
        |_| {},
        |groups| groups.len() == 1 && groups[0]["alerts"].as_array().is_some_and(|a| a.len() == 3),
    );
    let group = &groups[0];
    assert_eq!(group["labels"], json!({"alertname": RULE}), "grouped by rule only: {group:#}");
    let mut hosts: Vec<&str> = group["alerts"].as_array().unwrap().iter().map(host_of).collect();
    hosts.sort_unstable();
    assert_eq!(hosts, HOSTS, "one alert per host in the group");
    assert_eq!(group["receiver"]["name"], "store");

    // The same alerts through Prometheus: hostwatch_alert{rule="fleet_test"} is 1 for each
    // host while the rule fires.
    let mut scraped_first = [None; 3];
    let firing = wait_for(
        "hostwatch_alert{rule=\"fleet_test\"} == 1 for the three hosts in Prometheus",
        || alert_series(&prom),
        |result| note(&mut scraped_first, fire_start, |h| alert_value(result, h) == Some("1")),
        |result| HOSTS.iter().all(|h| alert_value(result, h) == Some("1")),
    );
    assert_eq!(firing.len(), 3, "one hostwatch_alert per host: {firing:#?}");
    for series in &firing {
        let labels = &series["metric"];
        assert_eq!(labels["state"], "firing", "{series}");
        assert_eq!(labels["severity"], "warning", "{series}");
        let agent = agents.iter().find(|a| labels["host"] == a.host);
        let agent = agent.unwrap_or_else(|| panic!("a series of no agent: {series}"));
        assert_eq!(labels["instance"], *agent.target(), "{series}");
    }

    // Clear on every agent; the alerts resolve in Alertmanager. A firing alert was posted with
    // endsAt 4 × resend_every (4 min) ahead and Alertmanager lists no alert whose end has
    // passed, so leaving the list within the wait means an agent posted its resolution.
    let clear_start = Instant::now();
    agents.iter().for_each(|a| a.clear(&dir, &am_url));
    let mut resolved_first = [None; 3];
    wait_for(
        "the three alerts resolved in Alertmanager",
        || active_alerts(&am),
        |alerts| note(&mut resolved_first, clear_start, |h| alerts.iter().all(|a| host_of(a) != h)),
        |alerts| alerts.is_empty(),
    );
    let all_resolved = clear_start.elapsed();
    // Gone from Prometheus too: the agents stopped exposing it, so the next scrape marks each
    // series stale and an instant query finds none.
    let mut unscraped_first = [None; 3];
    wait_for(
        "no hostwatch_alert{rule=\"fleet_test\"} left in Prometheus",
        || alert_series(&prom),
        |result| note(&mut unscraped_first, clear_start, |h| alert_value(result, h).is_none()),
        |result| result.is_empty(),
    );
    wait_for(
        "no active group for the rule",
        || rule_groups(&am),
        |_| {},
        |groups| groups.iter().all(|g| g["alerts"].as_array().is_none_or(|a| a.is_empty())),
    );
    // The agents are still running: the clear came from the metric (or config), not an exit.
    for agent in &mut agents {
        let daemon = agent.daemon.as_mut().unwrap();
        assert!(matches!(daemon.child.try_wait(), Ok(None)), "{} exited", agent.host);
        assert!(agent.healthy(), "{} unhealthy", agent.host);
    }

    println!(
        "fleet ({}): Alertmanager ready in {:.2} s; agents healthy in {:.2} s",
        if tmpfs { "tmpfs fill/delete" } else { "load.1 + SIGHUP reload" },
        am_ready.as_secs_f64(),
        healthy.as_secs_f64()
    );
    println!("  up == 1 in Prometheus after it was started: {}", show(&up_first));
    println!(
        "  condition set -> alert active in Alertmanager: {} (all {:.2} s)",
        show(&fired_first),
        all_fired.as_secs_f64()
    );
    println!(
        "  condition cleared -> alert resolved in Alertmanager: {} (all {:.2} s)",
        show(&resolved_first),
        all_resolved.as_secs_f64()
    );
    println!(
        "  hostwatch_alert == 1 in Prometheus after the condition was set: {}",
        show(&scraped_first)
    );
    println!(
        "  hostwatch_alert absent from Prometheus after the condition cleared: {}",
        show(&unscraped_first)
    );
    println!("  whole test {:.2} s", test_start.elapsed().as_secs_f64());

    drop(agents);
    drop(prom);
    drop(am);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The value of the `up`-style query result's series for `instance`, as text.
fn instance_value<'a>(result: &'a Value, instance: &str) -> Option<&'a str> {
    let series = result.as_array()?.iter().find(|s| s["metric"]["instance"] == *instance)?;
    series["value"][1].as_str()
}

/// Prometheus's current `hostwatch_alert{rule="fleet_test"}` series (an instant query).
fn alert_series(prom: &Server) -> Vec<Value> {
    let query = format!("/api/v1/query?query=hostwatch_alert%7Brule%3D%22{RULE}%22%7D");
    let answer = prom.get_json(&query);
    assert_eq!(answer["status"], "success", "{answer}");
    answer["data"]["result"].as_array().expect("a result").clone()
}

/// The value of the series of `host` (hostwatch's own label) in `result`, as text.
fn alert_value<'a>(result: &'a [Value], host: &str) -> Option<&'a str> {
    let series = result.iter().find(|s| s["metric"]["host"] == *host)?;
    series["value"][1].as_str()
}

/// Alertmanager's alert groups whose labels name [`RULE`] (active alerts only).
fn rule_groups(am: &Server) -> Vec<Value> {
    let groups = am.get_json("/api/v2/alerts/groups?active=true&silenced=false&inhibited=false");
    let groups = groups.as_array().expect("an array");
    groups.iter().filter(|g| g["labels"]["alertname"] == RULE).cloned().collect()
}

#[test]
fn example_fleet_configs_are_valid() {
    let promtool = "/usr/bin/promtool";
    let amtool = "/usr/bin/amtool";
    require(promtool, "prometheus");
    require(amtool, "prometheus-alertmanager");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
    for (tool, sub, file) in
        [(promtool, "config", "prometheus.yml"), (amtool, "check-config", "alertmanager.yml")]
    {
        let path = examples.join(file);
        assert!(path.is_file(), "{} is missing", path.display());
        let mut cmd = Command::new(tool);
        if tool == promtool {
            cmd.args(["check", sub]);
        } else {
            cmd.arg(sub);
        }
        let out = cmd.arg(&path).output().unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} refuses {}:\n{}{}",
            path.display(),
            common::stdout(&out),
            common::stderr(&out)
        );
    }
}
