//! A real `redis-server` (Debian `redis-server`) started per test on a free loopback port,
//! with nothing saved to disk (`--save ''`), stopped with SIGKILL when dropped; and
//! `redis-cli` to look inside it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `redis-server` installs the server.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A running server; killed when dropped.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its working directory.
    dir: PathBuf,
    /// `requirepass`, if any.
    password: Option<String>,
}

impl Redis {
    /// Starts a server on a free port in `dir` and waits (bounded) until it answers PING.
    pub fn start(dir: &Path) -> Redis {
        Redis::start_with(dir, None)
    }

    /// [`Redis::start`] with `requirepass PASSWORD`.
    pub fn start_with(dir: &Path, password: Option<&str>) -> Redis {
        assert!(
            Path::new(REDIS_SERVER).exists(),
            "{REDIS_SERVER} is missing: the Redis tests need a real one (apt-get install -y redis-server)"
        );
        let dir = dir.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redis {
            child: None,
            port: super::receiver::free_port(),
            dir,
            password: password.map(str::to_owned),
        };
        r.restart();
        r
    }

    /// Kills the server (SIGKILL): what it held is gone, as in a crash without persistence.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections open, commands time out.
    #[allow(dead_code)]
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT), with what it held.
    #[allow(dead_code)]
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Starts the server again on the same port (empty: nothing was saved).
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new(REDIS_SERVER);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir", self.dir.to_str().unwrap()])
            .args(["--logfile", "redis.log"]);
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        self.child = Some(cmd.stdout(Stdio::null()).spawn().expect("start redis-server"));
        let end = Instant::now() + Duration::from_secs(20);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < end, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis://127.0.0.1:PORT/0` (with the password, if any).
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Runs `redis-cli --raw` with `args`; its standard output ("" when it fails).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"]);
        if let Some(p) = &self.password {
            cmd.env("REDISCLI_AUTH", p);
        }
        match cmd.args(args).stderr(Stdio::null()).output() {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            _ => String::new(),
        }
    }

    /// `GET key` parsed as JSON, `None` when missing.
    pub fn get_json(&self, key: &str) -> Option<serde_json::Value> {
        let text = self.cli(&["GET", key]);
        serde_json::from_str(text.trim_end_matches('\n')).ok()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
