//! A real Alertmanager (Debian's `prometheus-alertmanager`, clustering off) on a free
//! loopback port with tests/support/alertmanager_test.yml, killed when dropped.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `prometheus-alertmanager` installs the server.
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A running Alertmanager; killed when dropped.
pub struct Alertmanager {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Alertmanager {
    /// Starts one on a free loopback port and waits (bounded) until `/-/ready` answers.
    pub fn start(test: &str) -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} is missing: these tests need a real Alertmanager \
             (apt-get install -y prometheus-alertmanager)"
        );
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/alertmanager_test.yml");
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let dir = super::tempdir(&format!("am-{test}-{attempt}"));
            std::fs::copy(config, dir.join("am.yml")).expect("copy the Alertmanager config");
            let port = super::receiver::free_port();
            let log = std::fs::File::create(dir.join("alertmanager.log")).expect("log file");
            let child = Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", dir.join("am.yml").display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start prometheus-alertmanager");
            let mut am = Alertmanager { child, port, dir };
            if am.wait_ready() {
                return am;
            }
            failures
                .push(std::fs::read_to_string(am.dir.join("alertmanager.log")).unwrap_or_default());
        }
        panic!("Alertmanager did not become ready; its logs:\n{}", failures.join("\n---\n"));
    }

    /// True once `/-/ready` answers 200; false if the process exits or 30 s pass.
    fn wait_ready(&mut self) -> bool {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            let ready = super::http("GET", &format!("{}/-/ready", self.base()), "");
            if ready.is_ok_and(|(status, _)| status == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /api/v2/alerts?filter=alertname="NAME"`: the alerts Alertmanager lists.
    pub fn alerts(&self, alertname: &str) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts?filter=alertname%3D%22{alertname}%22", self.base());
        let (status, body) = super::http("GET", &url, "").expect("GET /api/v2/alerts");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("alerts JSON")
    }

    /// Polls (bounded) until `check` accepts the alerts listed for `alertname`.
    pub fn wait_until(
        &self,
        alertname: &str,
        what: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let alerts = self.alerts(alertname);
            if check(&alerts) {
                return alerts;
            }
            assert!(Instant::now() < end, "Alertmanager never showed {what}: {alerts:#?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
