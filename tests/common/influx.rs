//! Real time-series servers on loopback for the InfluxDB sink's tests: InfluxDB 1.x (Debian
//! `influxd`) and VictoriaMetrics (Debian `victoria-metrics`), each on free ports with a data
//! directory of its own, killed when dropped.
//!
//! Self-contained (std and serde_json only): the crate's own tests include this very file
//! (`src/history/influx/tests.rs`) as well as the integration tests.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INFLUXD: &str = "/usr/bin/influxd";
const VICTORIA: &str = "/usr/bin/victoria-metrics";

/// A running `influxd` (1.x) on a free loopback port; killed when dropped.
pub struct Influxd {
    child: Option<Child>,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    /// Its data directory (kept across [`Influxd::restart`]).
    pub dir: PathBuf,
    config: PathBuf,
}

impl Influxd {
    /// Starts one with the default settings.
    pub fn start(test: &str) -> Influxd {
        Influxd::start_with(test, "")
    }

    /// Starts one with `http_extra` added to its `[http]` section (`max-body-size = 2000`),
    /// waiting (bounded) until `/ping` answers 204.
    pub fn start_with(test: &str, http_extra: &str) -> Influxd {
        assert!(
            Path::new(INFLUXD).exists(),
            "{INFLUXD} is missing: these tests need a real InfluxDB 1.x (apt-get install -y influxdb)"
        );
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let dir = tempdir(&format!("influxd-{test}-{attempt}"));
            let (port, rpc) = (free_port(), free_port());
            let config = dir.join("influxd.conf");
            let d = dir.display();
            // Debian's build names the usage report switch `reporting-enabled` (upstream:
            // `reporting-disabled`); the RPC address is on loopback too.
            let text = format!(
                "reporting-enabled = false\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n  logging-enabled = false\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n\
                 [subscriber]\n  enabled = false\n\
                 [continuous_queries]\n  enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n{http_extra}\n"
            );
            std::fs::write(&config, text).expect("write the influxd config");
            let mut server = Influxd { child: None, port, dir, config };
            if server.spawn() {
                return server;
            }
            failures.push(server.log());
        }
        panic!("influxd did not become ready; its logs:\n{}", failures.join("\n---\n"));
    }

    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("influxd.log"))
            .expect("influxd log file");
        let child = Command::new(INFLUXD)
            .arg("-config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start influxd");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Some(c) = &mut self.child
                && matches!(c.try_wait(), Ok(Some(_)))
            {
                return false;
            }
            if http("GET", &format!("{}/ping", self.base()), "").is_ok_and(|(s, _)| s == 204) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("influxd.log")).unwrap_or_default()
    }

    /// Kills the server (SIGKILL: an outage, not a clean stop).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "influxd did not come back; its log:\n{}", self.log());
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `CREATE DATABASE name`.
    pub fn create_database(&self, name: &str) {
        let url =
            format!("{}/query?q={}", self.base(), encode(&format!("CREATE DATABASE \"{name}\"")));
        let (status, body) = http("POST", &url, "").expect("POST /query");
        assert_eq!(status, 200, "CREATE DATABASE: {body}");
    }

    /// Writes raw line protocol (seconds), for tests that need a point of their own.
    pub fn write(&self, db: &str, lines: &str) -> (u16, String) {
        let url = format!("{}/write?db={}&precision=s", self.base(), encode(db));
        http("POST", &url, lines).expect("POST /write")
    }

    /// Runs `q` against `db` (`epoch=s`): every row of every series, as column → value
    /// objects with the series name under `"name"`.
    pub fn select(&self, db: &str, q: &str) -> Vec<Value> {
        let url = format!("{}/query?db={}&epoch=s&q={}", self.base(), encode(db), encode(q));
        let (status, body) = http("GET", &url, "").expect("GET /query");
        assert_eq!(status, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).expect("query JSON");
        let mut rows = Vec::new();
        for result in v["results"].as_array().into_iter().flatten() {
            assert!(result.get("error").is_none(), "{q}: {result}");
            for series in result["series"].as_array().into_iter().flatten() {
                let columns = series["columns"].as_array().expect("columns");
                for values in series["values"].as_array().into_iter().flatten() {
                    let mut row = serde_json::Map::new();
                    row.insert("name".into(), series["name"].clone());
                    for (c, v) in columns.iter().zip(values.as_array().expect("row")) {
                        row.insert(c.as_str().expect("column").to_string(), v.clone());
                    }
                    rows.push(Value::Object(row));
                }
            }
        }
        rows
    }

    /// Polls (bounded, 30 s) until `select` returns `n` rows or more.
    pub fn wait_rows(&self, db: &str, q: &str, n: usize) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.select(db, q);
            if rows.len() >= n || Instant::now() > end {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running VictoriaMetrics single-node server on a free loopback port; killed when dropped.
pub struct Victoria {
    child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Victoria {
    /// Starts one (fresh data directory, no search latency offset) and waits (bounded) until
    /// `/health` answers.
    pub fn start(test: &str) -> Victoria {
        assert!(
            Path::new(VICTORIA).exists(),
            "{VICTORIA} is missing: these tests need a real VictoriaMetrics \
             (apt-get install -y victoria-metrics)"
        );
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let dir = tempdir(&format!("victoria-{test}-{attempt}"));
            let port = free_port();
            let log = std::fs::File::create(dir.join("victoria.log")).expect("log file");
            let child = Command::new(VICTORIA)
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!("-storageDataPath={}", dir.join("data").display()))
                .arg("-search.latencyOffset=0s")
                .arg("-search.disableCache")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start victoria-metrics");
            let mut vm = Victoria { child, port, dir };
            let end = Instant::now() + Duration::from_secs(30);
            while Instant::now() < end {
                if matches!(vm.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                if http("GET", &format!("{}/health", vm.base()), "").is_ok_and(|(s, _)| s == 200) {
                    return vm;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            failures.push(std::fs::read_to_string(vm.dir.join("victoria.log")).unwrap_or_default());
        }
        panic!("victoria-metrics did not become ready; its logs:\n{}", failures.join("\n---\n"));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `/api/v1/export` of the series matching `selector`, after making what was written
    /// searchable (`/internal/force_flush`): one JSON object per series (`metric`, `values`,
    /// `timestamps` in ms).
    pub fn export(&self, selector: &str) -> Vec<Value> {
        let _ = http("GET", &format!("{}/internal/force_flush", self.base()), "");
        let url = format!("{}/api/v1/export?match[]={}", self.base(), encode(selector));
        let (status, body) = http("GET", &url, "").expect("GET /api/v1/export");
        assert_eq!(status, 200, "{selector}: {body}");
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("export JSON line"))
            .collect()
    }

    /// Polls (bounded, 30 s) until `export` returns `n` series or more.
    pub fn wait_series(&self, selector: &str, n: usize) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let series = self.export(selector);
            if series.len() >= n || Instant::now() > end {
                return series;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("victoria.log")).unwrap_or_default()
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One plain HTTP/1.0 request to a loopback server: the status and the body.
pub fn http(method: &str, url: &str, body: &str) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut tcp = std::net::TcpStream::connect(authority)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(20)))?;
    write!(
        tcp,
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad answer {head:?}"))
    })?;
    Ok((status, body.to_string()))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A fresh directory under the system temp dir, unique to this process and call.
fn tempdir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hostwatch-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
