//! A recording HTTP receiver (tests/support/http_receiver.py) started per test on loopback.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running receiver; killed when dropped.
pub struct Receiver {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Receiver {
    /// Starts a receiver on a free port and waits (bounded) until it listens.
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// Starts a receiver on `port` (0: any free port) and waits (bounded) until it listens.
    pub fn start_on(port: u16) -> Receiver {
        Receiver::launch(port, None)
    }

    /// Starts an HTTPS receiver on a free port with a certificate and key (PEM files).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Receiver {
        Receiver::launch(0, Some((cert, key)))
    }

    fn launch(port: u16, tls: Option<(&std::path::Path, &std::path::Path)>) -> Receiver {
        let dir = super::tempdir(&format!("receiver-{}", unique()));
        let port_file = dir.join("port");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/http_receiver.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&port_file)
            .arg(port.to_string())
            .args(tls.map(|(c, k)| [c.as_os_str(), k.as_os_str()]).into_iter().flatten())
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 is needed to run the test HTTP receiver");
        // Owned from here on, so the process is reaped whatever happens below.
        let mut receiver = Receiver { child, port: 0 };
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                receiver.port = port;
                return receiver;
            }
            assert!(Instant::now() < end, "the test HTTP receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn control(&self, path: &str, body: &Value) -> String {
        super::http("POST", &self.url(path), &body.to_string()).expect("receiver control").1
    }

    /// Queues answers (`{"status", "body", "headers", "delay"}`) for requests to `path`
    /// (`"*"`: any path), used in order before the default answer.
    pub fn script(&self, path: &str, responses: Value) {
        self.control("/__script", &json!({"path": path, "responses": responses}));
    }

    /// Sets the answer used when no script is queued.
    pub fn set_default(&self, response: Value) {
        self.control("/__default", &response);
    }

    /// Every request received so far (method, path, query, headers, body, json, answered).
    pub fn requests(&self) -> Vec<Value> {
        let (_, body) =
            super::http("GET", &self.url("/__requests"), "").expect("receiver requests");
        serde_json::from_str(&body).expect("requests JSON")
    }

    /// Waits (bounded) until at least `n` requests arrived; returns them.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Value> {
        let end = Instant::now() + limit;
        loop {
            let got = self.requests();
            if got.len() >= n || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago (for a receiver started later).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
