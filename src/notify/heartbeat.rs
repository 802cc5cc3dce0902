//! The dead-man's switch: after healthy ticks, a request to an off-host checker (the
//! `heartbeat` key) and, for every Alertmanager channel with `watchdog: true`, an
//! always-firing `HostwatchWatchdog` alert, so something off the host notices a dead or stuck
//! agent by what stops arriving.
//!
//! One thread of its own, fed by a bounded channel (capacity 1): the loop calls
//! [`Heartbeat::beat`] after each tick that ran to its end, and `try_send` never blocks it
//! (a beat that finds the slot full, because a request is in flight, is dropped: the next
//! one carries the news). The thread sends at most one request per target per period (less
//! a tenth, at most 1 s, so a tick a few milliseconds early never skips a period): the
//! heartbeat's `every`, the watchdog's `resend_every`. A first request goes out after the
//! first healthy tick. Every request goes through the project's HTTP client (one deadline
//! for the whole exchange, TLS through rustls) with the target's timeout (the heartbeat's
//! `timeout`, the channel's `timeout`, else `delivery.timeout`); a failure is logged at most
//! once a minute per target and never retried in a burst (the next attempt waits a period).
//! A stuck loop sends no beats, so the checker sees the agent die when its loop does; a
//! tick whose state could not be saved still beats (the agent still watches and notifies:
//! `persist_failing` in `/status` tells that story). A dry run (`run --dry-run`) sends none.
//! A reload swaps the thread's settings and never waits on it (a config without targets
//! leaves it idle: at most one heartbeat thread, however many reloads); a stop waits at most
//! 1 s for a request in flight. A thread found gone (a panic) is logged once, since the
//! checker off the host will take the silence for a dead agent.
//!
//! Checkers this works with: healthchecks.io (`https://hc-ping.com/<uuid>`, GET or POST; a
//! POST body is logged by it) and Uptime Kuma push monitors
//! (`https://kuma.example/api/push/<token>?status=up&msg=OK&ping=`, GET). A POST carries
//! `{"host", "version", "ticks" (the loop's, since start), "firing"}` as JSON. The watchdog
//! alert ends four periods after each post (a period: the longer of `resend_every` and the
//! tick interval, as one goes out per tick at most, plus every target's timeout, as requests
//! go one at a time), so Alertmanager resolves it by itself when hostwatch stops or its loop
//! stalls, and never between two healthy ticks (route it to a dead-man's-switch receiver
//! that pages when it stops firing).
//!
//! Heartbeat URLs are credentials: they are [`Secret`]s, and every message names them
//! redacted. Not for: alert notifications (`delivery`), retries or an outbox.

use super::{SendError, alertmanager, http};
use crate::config::{ChannelKind, Config, HeartbeatMethod, Secret};
use crate::logging::Throttle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the loop tells the thread after a healthy tick.
#[derive(Clone, Copy, Debug)]
struct Beat {
    /// Ticks the loop ran since start.
    ticks: u64,
    firing: usize,
}

/// What one target sends.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// The `heartbeat` URL, with its method.
    Ping(HeartbeatMethod),
    /// An Alertmanager channel's watchdog alert, re-sent at most `period` apart: the longer of
    /// `resend_every` and the tick interval (beats come once a tick), plus the timeouts of
    /// every target (requests go one at a time), so its `endsAt`, four periods ahead, is
    /// never reached while healthy ticks go on, even behind a hung heartbeat URL.
    Watchdog { channel: String, period: Duration },
}

/// One place beats go to, as configured.
#[derive(Clone, PartialEq, Eq)]
struct Target {
    kind: Kind,
    url: Secret,
    /// May hold `Authorization` (user info of an Alertmanager URL): never in `Debug`.
    headers: Vec<(String, String)>,
    every: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("every", &self.every)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What the thread reads before each beat; swapped by [`Heartbeat::reload`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    host: String,
    targets: Vec<Target>,
}

impl Settings {
    fn of(config: &Config) -> Settings {
        let user_agent = ("User-Agent".to_string(), alertmanager::user_agent());
        let mut targets = Vec::new();
        if let Some(h) = &config.heartbeat {
            let mut headers = vec![user_agent];
            if h.method == HeartbeatMethod::Post {
                headers.push(("Content-Type".to_string(), "application/json".to_string()));
            }
            targets.push(Target {
                kind: Kind::Ping(h.method),
                url: h.url.clone(),
                headers,
                every: h.every,
                timeout: h.timeout.unwrap_or(config.delivery.timeout),
            });
        }
        for channel in config.channels.values() {
            if let ChannelKind::Alertmanager(a) = &channel.kind
                && a.watchdog
                && !a.resend_every.is_zero()
            {
                let (endpoint, headers) = alertmanager::endpoint_and_headers(a);
                targets.push(Target {
                    kind: Kind::Watchdog {
                        channel: channel.name.clone(),
                        period: a.resend_every.max(config.interval),
                    },
                    url: Secret::new(endpoint),
                    headers,
                    every: a.resend_every,
                    timeout: a.timeout.unwrap_or(config.delivery.timeout),
                });
            }
        }
        // Requests go one at a time: a post may wait for every other target's request (each
        // within its timeout) after its period.
        let queued: Duration = targets.iter().map(|t| t.timeout).sum();
        for t in &mut targets {
            if let Kind::Watchdog { period, .. } = &mut t.kind {
                *period += queued;
            }
        }
        Settings { host: config.host.clone(), targets }
    }
}

/// What the loop and the thread share.
#[derive(Debug)]
struct Shared {
    settings: Mutex<Settings>,
    stop: AtomicBool,
}

/// The running dead-man's switch; see the module documentation.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    tx: Option<SyncSender<Beat>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The thread was found gone (it panicked) and that was logged.
    gone: AtomicBool,
}

impl Heartbeat {
    /// Starts the thread when `config` has a `heartbeat` or a watchdog channel; `None`
    /// otherwise (or, logged, when no thread can be started).
    pub(crate) fn start(config: &Config) -> Option<Heartbeat> {
        let settings = Settings::of(config);
        if settings.targets.is_empty() {
            return None;
        }
        let shared =
            Arc::new(Shared { settings: Mutex::new(settings), stop: AtomicBool::new(false) });
        let (tx, rx) = sync_channel(1);
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || run(&worker, &rx))
            .map_err(|e| log::error!("cannot start the heartbeat thread: {e}"))
            .ok()?;
        Some(Heartbeat { tx: Some(tx), shared, thread: Some(thread), gone: AtomicBool::new(false) })
    }

    /// After a healthy tick: never blocks (a beat that finds the slot full is dropped).
    pub(crate) fn beat(&self, ticks: u64, firing: usize) {
        if let Some(tx) = &self.tx {
            // Full: a request is in flight and a beat already waits; the next one will do.
            if let Err(TrySendError::Disconnected(_)) = tx.try_send(Beat { ticks, firing })
                && !self.gone.swap(true, Ordering::Relaxed)
            {
                // Off the host this reads as a dead agent: say why here, once.
                log::error!("the heartbeat thread has ended; no heartbeat until a restart");
            }
        }
    }

    /// Applies a reloaded config: starts the heartbeat in `slot`, or swaps its settings (a
    /// target whose settings did not change keeps its schedule). Never waits on the thread,
    /// which may be in a request: a config without targets leaves it idle (it sends nothing)
    /// rather than stopping it, so no reload joins it and reloads never pile up threads.
    pub(crate) fn reconcile(slot: &mut Option<Heartbeat>, config: &Config) {
        match slot {
            Some(h) => {
                *h.shared.settings.lock().unwrap_or_else(|p| p.into_inner()) = Settings::of(config);
            }
            None => *slot = Heartbeat::start(config),
        }
    }

    /// Ends the thread, waiting at most [`STOP_WAIT`] for a request in flight: a beat is
    /// worth nothing once the agent stops, and the channels' shutdown (which has its own
    /// grace) comes after this; a request hung beyond it ends with the process.
    pub(crate) fn stop(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.tx = None;
        let Some(thread) = self.thread.take() else { return };
        let end = Instant::now() + STOP_WAIT;
        while !thread.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            log::debug!("heartbeat request still in flight at stop; not waiting for it");
        }
    }
}

/// The longest [`Heartbeat::stop`] waits for a request in flight.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// A target's schedule and log throttle.
#[derive(Debug)]
struct Schedule {
    target: Target,
    /// When its last request started.
    last: Option<Instant>,
    /// When its first request started (Unix seconds): the watchdog alert's `startsAt`.
    started: f64,
    throttle: Throttle,
}

/// True when a request to a target last sent at `last` with period `every` is due at `now`.
fn due(last: Option<Instant>, every: Duration, now: Instant) -> bool {
    let slack = (every / 10).min(Duration::from_secs(1));
    last.is_none_or(|t| now + slack >= t + every)
}

/// The thread: one beat at a time, until the loop hangs up or asks it to stop.
fn run(shared: &Shared, rx: &Receiver<Beat>) {
    let mut schedules: Vec<Schedule> = Vec::new();
    while let Ok(beat) = rx.recv() {
        let settings = shared.settings.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // Keep the schedule of every target that did not change.
        let mut old = std::mem::take(&mut schedules);
        for target in settings.targets {
            schedules.push(match old.iter().position(|s| s.target == target) {
                Some(i) => old.swap_remove(i),
                None => {
                    Schedule { target, last: None, started: 0.0, throttle: Throttle::default() }
                }
            });
        }
        for s in &mut schedules {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            if !due(s.last, s.target.every, now) {
                continue;
            }
            s.last = Some(now);
            if s.started == 0.0 {
                s.started = crate::timefmt::now_unix();
            }
            let result = send(s, &settings.host, beat);
            log_result(s, &result);
        }
    }
}

/// One request of a target.
fn send(s: &Schedule, host: &str, beat: Beat) -> Result<i32, SendError> {
    let t = &s.target;
    let (method, body) = match &t.kind {
        Kind::Ping(HeartbeatMethod::Get) => ("GET", Vec::new()),
        Kind::Ping(HeartbeatMethod::Post) => {
            let body = serde_json::json!({
                "host": host,
                "version": env!("CARGO_PKG_VERSION"),
                "ticks": beat.ticks,
                "firing": beat.firing,
            });
            ("POST", body.to_string().into_bytes())
        }
        Kind::Watchdog { period, .. } => {
            let now = crate::timefmt::now_unix();
            let alerts = alertmanager::watchdog_alerts(host, s.started, now, *period);
            ("POST", alerts.to_string().into_bytes())
        }
    };
    let url = t.url.expose();
    let response = http::request(method, url, &t.headers, &body, t.timeout)?;
    let what = format!("{method} {}", crate::config::redact_url(url));
    http::classify(&what, &response).map(|_| response.status)
}

/// Logs a failure at most once a minute per target (the reason scrubbed of the URL).
fn log_result(s: &mut Schedule, result: &Result<i32, SendError>) {
    let url = s.target.url.expose();
    let which = match &s.target.kind {
        Kind::Ping(_) => "heartbeat".to_string(),
        Kind::Watchdog { channel, .. } => format!("watchdog of alertmanager channel {channel}"),
    };
    match result {
        Ok(status) => log::debug!(status = *status; "{which} sent"),
        Err(e) if s.throttle.ready() => {
            let reason = alertmanager::scrub_url(&e.to_string(), url);
            log::warn!("{which} failed (next attempt in {:?}): {reason}", s.target.every);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_per_period_with_a_little_slack() {
        let t0 = Instant::now();
        let every = Duration::from_secs(1);
        assert!(due(None, every, t0));
        assert!(!due(Some(t0), every, t0 + Duration::from_millis(500)));
        assert!(due(Some(t0), every, t0 + Duration::from_millis(950)));
        assert!(due(Some(t0), every, t0 + Duration::from_secs(3)));
        let minute = Duration::from_secs(60);
        assert!(!due(Some(t0), minute, t0 + Duration::from_secs(58)));
        assert!(due(Some(t0), minute, t0 + Duration::from_secs(59)));
    }

    #[test]
    fn settings_name_the_heartbeat_and_each_watchdog_channel() {
        let text = r#"{"host": "h1", "rules": [], "interval": "1s",
            "heartbeat": {"url": "https://hc-ping.com/abc", "every": "30s", "method": "post"},
            "channels": {"am": {"type": "alertmanager", "url": "http://u:pw-secret@127.0.0.1:9093",
                                "resend_every": "5s", "watchdog": true},
                         "quiet": {"type": "alertmanager", "url": "http://127.0.0.1:9094"}}}"#;
        let config = crate::config::load_str(text, "test", &|_| None).expect("config");
        let s = Settings::of(&config);
        assert_eq!(s.targets.len(), 2, "{s:?}");
        assert_eq!(s.targets[0].kind, Kind::Ping(HeartbeatMethod::Post));
        assert_eq!(s.targets[0].every, Duration::from_secs(30));
        assert_eq!(s.targets[0].timeout, config.delivery.timeout);
        // resend_every, then the heartbeat's and its own timeout (both delivery.timeout).
        let period = Duration::from_secs(5) + 2 * config.delivery.timeout;
        assert_eq!(s.targets[1].kind, Kind::Watchdog { channel: "am".into(), period });
        assert_eq!(s.targets[1].url.expose(), "http://127.0.0.1:9093/api/v2/alerts");
        assert!(s.targets[1].headers.iter().any(|(k, _)| k == "Authorization"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hc-ping.com/abc") && !shown.contains("Basic "), "{shown}");
    }

    #[test]
    fn a_watchdog_outlives_the_gap_between_two_ticks_longer_than_resend_every() {
        // Ticks every 5 minutes, resend_every 1 minute: one post per tick at most, so an end
        // four resend periods ahead would be reached between two healthy ticks and
        // Alertmanager would resolve (and page) while hostwatch is fine.
        let text = r#"{"host": "h1", "rules": [], "interval": "5m",
            "channels": {"am": {"type": "alertmanager", "url": "http://127.0.0.1:9093",
                                "resend_every": "1m", "watchdog": true}}}"#;
        let config = crate::config::load_str(text, "test", &|_| None).expect("config");
        let s = Settings::of(&config);
        let Kind::Watchdog { period, .. } = &s.targets[0].kind else { panic!("{s:?}") };
        assert_eq!(*period, Duration::from_secs(300) + config.delivery.timeout);
        let now = 10_000.0;
        let alerts = alertmanager::watchdog_alerts("h1", now, now, *period);
        let ends = crate::config::parse_rfc3339(alerts[0]["endsAt"].as_str().unwrap()).unwrap();
        assert!(ends - now > 2.0 * 300.0, "ends {}s after the post", ends - now);
    }

    /// A checker that accepts and never answers (each accept is told on the receiver), and
    /// a config whose heartbeat goes there with a 60 s timeout.
    fn hung_checker() -> (Config, std::sync::mpsc::Receiver<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, accepted) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().flatten() {
                held.push(s);
                let _ = tx.send(());
            }
        });
        let text = format!(
            r#"{{"host": "h1", "rules": [], "heartbeat": {{"url": "http://127.0.0.1:{port}/p",
                "every": "1s", "timeout": "60s"}}}}"#
        );
        (crate::config::load_str(&text, "test", &|_| None).expect("config"), accepted)
    }

    #[test]
    fn a_reload_that_removes_the_heartbeat_never_waits_on_a_request_in_flight() {
        let (config, accepted) = hung_checker();
        let mut slot = Heartbeat::start(&config);
        slot.as_ref().expect("started").beat(1, 0);
        accepted.recv_timeout(Duration::from_secs(30)).expect("the request went out");
        let without = crate::config::load_str(r#"{"host": "h1", "rules": []}"#, "test", &|_| None)
            .expect("config");
        let started = Instant::now();
        Heartbeat::reconcile(&mut slot, &without);
        let took = started.elapsed();
        // Bounded far below the 60 s the hung request may last: the loop did not wait on it.
        assert!(took < Duration::from_secs(20), "the reload waited {took:?}");
        // The same thread, idle: adding the heartbeat back starts no second one.
        let h = slot.as_ref().expect("kept");
        assert!(h.shared.settings.lock().unwrap().targets.is_empty());
        let thread = h.thread.as_ref().map(|t| t.thread().id());
        Heartbeat::reconcile(&mut slot, &config);
        assert_eq!(slot.as_ref().and_then(|h| h.thread.as_ref()).map(|t| t.thread().id()), thread);
    }

    #[test]
    fn a_stop_does_not_wait_out_a_hung_request() {
        let (config, accepted) = hung_checker();
        let h = Heartbeat::start(&config).expect("started");
        h.beat(1, 0);
        accepted.recv_timeout(Duration::from_secs(30)).expect("the request went out");
        let started = Instant::now();
        h.stop();
        let took = started.elapsed();
        // Far below the request's 60 s: the shutdown did not wait it out.
        assert!(took < Duration::from_secs(20), "the stop waited {took:?}");
    }

    #[test]
    fn a_watchdog_outlives_a_hung_heartbeat_request_before_it() {
        // The heartbeat URL hangs for its whole 30 s timeout before each watchdog post.
        let text = r#"{"host": "h1", "rules": [], "interval": "1s",
            "heartbeat": {"url": "https://hc-ping.com/abc", "every": "1s", "timeout": "30s"},
            "channels": {"am": {"type": "alertmanager", "url": "http://127.0.0.1:9093",
                                "resend_every": "5s", "watchdog": true, "timeout": "2s"}}}"#;
        let config = crate::config::load_str(text, "test", &|_| None).expect("config");
        let s = Settings::of(&config);
        let Kind::Watchdog { period, .. } = &s.targets[1].kind else { panic!("{s:?}") };
        // Posts may come 5 s + 30 s + 2 s apart: the end must lie beyond that.
        assert!(period.saturating_mul(4) > Duration::from_secs(37), "{period:?}");
        assert_eq!(*period, Duration::from_secs(37));
    }

    #[test]
    fn a_thread_found_gone_is_said_once() {
        let text = r#"{"host": "h1", "rules": [],
            "heartbeat": {"url": "http://127.0.0.1:9/p", "every": "1s"}}"#;
        let config = crate::config::load_str(text, "test", &|_| None).expect("config");
        let h = Heartbeat::start(&config).expect("started");
        // The thread ends at its next beat (as a panicking one would be gone).
        h.shared.stop.store(true, Ordering::SeqCst);
        h.beat(1, 0);
        let end = Instant::now() + Duration::from_secs(30);
        while !h.thread.as_ref().unwrap().is_finished() {
            assert!(Instant::now() < end, "the thread did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!h.gone.load(Ordering::Relaxed));
        h.beat(1, 0);
        assert!(h.gone.load(Ordering::Relaxed), "the gone thread was not noticed");
    }
}
