//! Which request gets which answer: `/health`, `/status`, `/metrics`, `/`, and the silences
//! API with its bearer-token check (compared in constant time). Every error is
//! `{"error": "..."}` with a 4xx or 5xx status.
//!
//! Not for: reading sockets (`server`) or rendering documents (`status`, `prometheus`,
//! `page`).

use super::server::{Request, Response};
use super::view::Board;
use crate::config::Secret;
use crate::metrics::LabelKey;
use crate::silence::{Schedule, Silence};
use crate::silence_store;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::silence::MAX_SILENCE_S;

const JSON: &str = "application/json";
/// The Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
/// How long a mutation waits for the silences lock (`hostwatch silence` holds it for a
/// moment; anyone holding it longer must not hang the one server thread).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the routes read: the board, the token and the silences store.
pub(crate) struct Routes {
    board: Arc<Board>,
    token: Mutex<Option<Secret>>,
    state_dir: PathBuf,
    /// The status page's 24-hour charts (the history file, read by this thread only).
    pub(crate) daily: super::daily::Cache,
    /// The server's own counters, for `/metrics` (set once the server runs).
    server_stats: std::sync::OnceLock<Arc<super::server::Stats>>,
    /// A `run --dry-run`: every change is refused (the silences store is the real one).
    pub(crate) dry_run: bool,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("state_dir", &self.state_dir).finish_non_exhaustive()
    }
}

/// A JSON answer.
fn json_response(status: u16, body: &Value) -> Response {
    let mut bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    bytes.push(b'\n');
    Response::new(status, JSON, bytes)
}

/// `{"error": message}` with `status`.
pub(crate) fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

/// True when `a` and `b` are equal, in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

impl Routes {
    /// Routes answering from `board`, with mutations allowed for `token`.
    pub(crate) fn new(board: Arc<Board>, token: Option<Secret>, state_dir: &Path) -> Routes {
        Routes {
            board,
            token: Mutex::new(token),
            state_dir: state_dir.to_path_buf(),
            daily: super::daily::Cache::new(None),
            server_stats: std::sync::OnceLock::new(),
            dry_run: false,
        }
    }

    /// Gives `/metrics` the server's counters.
    pub(crate) fn set_server_stats(&self, stats: Arc<super::server::Stats>) {
        let _ = self.server_stats.set(stats);
    }

    /// Replaces the token (a reload).
    pub(crate) fn set_token(&self, token: Option<Secret>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = token;
    }

    /// Answers one request.
    pub(crate) fn handle(&self, req: &Request) -> Response {
        let head = req.method == "HEAD";
        let method = if head { "GET" } else { req.method.as_str() };
        let mut resp = match (method, req.path.as_str()) {
            ("GET", "/health" | "/healthz") => self.health(),
            ("GET", "/status") => {
                json_response(200, &super::status::render(&self.board.current(), Instant::now()))
            }
            ("GET", "/metrics") => {
                // One view for the whole scrape: a publication between two reads would mix
                // two ticks (and, across a reload, two `host` labels) in one exposition.
                let view = self.board.current();
                let mut text = String::with_capacity(16 * 1024);
                super::prometheus::render(&view, &mut text);
                if let Some(stats) = self.server_stats.get() {
                    super::prometheus::render_server(&view, stats, &mut text);
                }
                Response::new(200, PROMETHEUS_TEXT, text.into_bytes())
            }
            ("GET", "/") => {
                let view = self.board.current();
                let (now, now_unix) = (Instant::now(), crate::timefmt::now_unix());
                let charts = self.daily.charts(&view, now, now_unix);
                let page = super::page::render_with(&view, Some(&charts), now, now_unix);
                let mut r = Response::new(200, HTML, page.into_bytes());
                r.headers.push(("Content-Security-Policy", super::page::CSP.to_owned()));
                r
            }
            ("GET", "/silences") => self.list_silences(),
            ("POST", "/silences") => self.authorized(req).unwrap_or_else(|| self.add_silence(req)),
            ("DELETE", p) if p.starts_with("/silences/") => {
                let id = &p["/silences/".len()..];
                self.authorized(req).unwrap_or_else(|| self.remove_silence(id))
            }
            (_, "/health" | "/healthz" | "/status" | "/metrics" | "/") => {
                let mut r = error(405, "method not allowed");
                r.headers.push(("Allow", "GET, HEAD".to_owned()));
                r
            }
            (_, "/silences") => {
                let mut r = error(405, "method not allowed");
                r.headers.push(("Allow", "GET, HEAD, POST".to_owned()));
                r
            }
            (_, p) if p.starts_with("/silences/") => {
                let mut r = error(405, "method not allowed");
                r.headers.push(("Allow", "DELETE".to_owned()));
                r
            }
            _ => error(404, "not found"),
        };
        resp.headers.push(("Cache-Control", "no-store".to_owned()));
        resp.headers.push(("X-Content-Type-Options", "nosniff".to_owned()));
        if head {
            resp.headers.push(("X-Head-Length", resp.body.len().to_string()));
            resp.body.clear();
        }
        resp
    }

    fn health(&self) -> Response {
        let view = self.board.current();
        let now = Instant::now();
        let age = view.last_tick_age(now).as_secs_f64();
        if view.healthy(now) {
            json_response(
                200,
                &json!({"status": "ok", "last_tick_age_s": age, "ticks": view.ticks}),
            )
        } else {
            json_response(
                503,
                &json!({
                    "status": "stalled",
                    "error": format!(
                        "the loop has not ticked for {age:.1} s (interval {} s)",
                        view.interval.as_secs_f64()
                    ),
                    "last_tick_age_s": age,
                    "ticks": view.ticks,
                }),
            )
        }
    }

    /// `None` when the request carries the configured token, else the refusal.
    fn authorized(&self, req: &Request) -> Option<Response> {
        if self.dry_run {
            return Some(error(
                403,
                "a dry run changes nothing: its silences are the running daemon's (use its API \
                 or hostwatch silence)",
            ));
        }
        let guard = self.token.lock().unwrap_or_else(|p| p.into_inner());
        let Some(token) = guard.as_ref() else {
            return Some(error(403, "changes through the API are disabled: set api.token"));
        };
        let given = req.header("authorization").and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
        match given {
            None => {
                let mut r = error(401, "this needs an Authorization: Bearer token");
                r.headers.push(("WWW-Authenticate", "Bearer realm=\"hostwatch\"".to_owned()));
                Some(r)
            }
            Some(t) if constant_time_eq(t.as_bytes(), token.expose().as_bytes()) => None,
            Some(_) => Some(error(403, "wrong token")),
        }
    }

    /// The silences in force: the config's (from the view) and the store's (read now, so a
    /// silence just added shows before the next tick).
    fn list_silences(&self) -> Response {
        let now = crate::timefmt::now_unix();
        let view = self.board.current();
        let config = &view.silences[..view.config_silences.min(view.silences.len())];
        let mut all: Vec<Value> =
            config.iter().map(|s| super::status::silence_json(s, true, now)).collect();
        match silence_store::read(&self.state_dir) {
            Ok(f) => all.extend(
                f.silences
                    .iter()
                    .filter(|s| s.in_force(now))
                    .map(|s| super::status::silence_json(s, false, now)),
            ),
            Err(e) => return error(500, &format!("cannot read the silences: {e}")),
        }
        json_response(200, &json!({ "silences": all }))
    }

    fn add_silence(&self, req: &Request) -> Response {
        let now = crate::timefmt::now_unix();
        let silence = match parse_silence(&req.body, now) {
            Ok(s) => s,
            Err(m) => return error(400, &m),
        };
        match silence_store::add_within(&self.state_dir, silence, now, LOCK_WAIT) {
            Ok(id) => {
                log::info!(id = id.as_str(); "silence added through the api");
                json_response(201, &json!({ "id": id }))
            }
            Err(e) => error(500, &format!("cannot save the silence: {e}")),
        }
    }

    fn remove_silence(&self, id: &str) -> Response {
        let id_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        if id.is_empty() || id.len() > 64 || !id.bytes().all(id_byte) {
            return error(404, "no such silence");
        }
        let view = self.board.current();
        if view.silences[..view.config_silences.min(view.silences.len())].iter().any(|s| s.id == id)
        {
            return error(409, "this silence comes from the config file: remove it there");
        }
        match silence_store::remove_within(&self.state_dir, id, LOCK_WAIT) {
            Ok(true) => {
                log::info!(id = id; "silence removed through the api");
                Response::new(204, JSON, Vec::new())
            }
            Ok(false) => {
                error(404, "no such silence (silences of the config file are removed there)")
            }
            Err(e) => error(500, &format!("cannot save the silences: {e}")),
        }
    }
}

/// Decodes `{"rule": glob, "match": {label: glob}, "for": "2h" | "until": RFC 3339,
/// "schedule": {"days": [...], "from": "HH:MM", "to": "HH:MM", "tz": zone}, "comment": "..."}`
/// (with a schedule, `for`/`until` end the recurrence and may be left out; its zone defaults
/// to the display zone, written into the file).
fn parse_silence(body: &[u8], now: f64) -> Result<Silence, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(o) = v else {
        return Err("expected an object like {\"rule\": \"disk_*\", \"for\": \"2h\"}".to_owned());
    };
    for k in o.keys() {
        if !["rule", "match", "for", "until", "schedule", "comment"].contains(&k.as_str()) {
            return Err(format!(
                "unknown key {k:?} (expected rule, match, for, until, schedule, comment)"
            ));
        }
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().any(char::is_control) => {
                Err(format!("{key}: must not contain control characters"))
            }
            Some(Value::String(s)) if s.len() > 1024 => {
                Err(format!("{key}: longer than 1024 bytes"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key}: expected a string")),
        }
    };
    let rule = text("rule")?;
    let comment = text("comment")?.unwrap_or_default();
    let mut matchers = BTreeMap::new();
    match o.get("match") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if LabelKey::parse(k).is_none() {
                    return Err(format!(
                        "match: unknown label {k:?} (expected core, mount, device or iface)"
                    ));
                }
                match v {
                    Value::String(g) if g.len() <= 1024 && !g.chars().any(char::is_control) => {
                        matchers.insert(k.clone(), g.clone());
                    }
                    _ => return Err(format!("match.{k}: expected a glob string")),
                }
            }
        }
        Some(_) => return Err("match: expected an object like {\"mount\": \"/data*\"}".to_owned()),
    }
    let schedule = match o.get("schedule") {
        None | Some(Value::Null) => None,
        Some(v) => {
            if let Some(k) = v.as_object().and_then(|o| {
                o.keys().find(|k| !["days", "from", "to", "tz"].contains(&k.as_str()))
            }) {
                return Err(format!("schedule: unknown key {k:?} (expected days, from, to, tz)"));
            }
            let s: Schedule = serde_json::from_value(v.clone()).map_err(|e| {
                format!("schedule: {e} (expected an object like {{\"days\": [\"sun\"], \"from\": \"02:00\", \"to\": \"04:00\", \"tz\": \"Europe/Lisbon\"}})")
            })?;
            if let Some(e) = s.zone_error() {
                return Err(format!("schedule.tz: {e}"));
            }
            Some(s.pinned())
        }
    };
    let until = match (text("for")?, text("until")?) {
        (Some(_), Some(_)) => return Err("give either \"for\" or \"until\", not both".to_owned()),
        (None, None) if schedule.is_some() => f64::INFINITY,
        (None, None) => {
            return Err(
                "give \"for\" (like \"2h\"), \"until\" (RFC 3339) or a \"schedule\"".to_owned()
            );
        }
        (Some(d), None) => {
            now + crate::config::units::parse_duration(&d)
                .map_err(|e| format!("for: {e}"))?
                .as_secs_f64()
        }
        (None, Some(t)) => crate::config::parse_rfc3339(&t).map_err(|e| format!("until: {e}"))?,
    };
    if until <= now {
        return Err("the silence would already be over".to_owned());
    }
    if until.is_finite() && until - now > MAX_SILENCE_S {
        return Err("a silence may last at most 366 days".to_owned());
    }
    Ok(Silence { host: None, id: String::new(), rule, matchers, until, schedule, comment })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmno"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn silence_bodies_are_checked() {
        let now = 1_000_000.0;
        let s = parse_silence(
            br#"{"rule": "disk_*", "match": {"mount": "/data*"}, "for": "2h", "comment": "swap"}"#,
            now,
        )
        .unwrap();
        assert_eq!(s.rule.as_deref(), Some("disk_*"));
        assert_eq!(s.until, now + 7200.0);
        assert_eq!(s.matchers.get("mount").map(String::as_str), Some("/data*"));
        let s = parse_silence(
            br#"{"schedule": {"days": ["sat-sun"], "from": "22:00", "to": "06:00", "tz": "Europe/Lisbon"}}"#,
            now,
        )
        .unwrap();
        assert!(s.until.is_infinite());
        assert_eq!(s.schedule.unwrap().to_string(), "sat,sun 22:00-06:00 Europe/Lisbon");
        // No zone: the display zone's name is written, so the file means the same later.
        let s =
            parse_silence(br#"{"schedule": {"from": "22:00", "to": "06:00"}, "for": "30d"}"#, now)
                .unwrap();
        let written = serde_json::to_value(&s).unwrap()["schedule"]["tz"].clone();
        assert_eq!(written, crate::timefmt::display_zone().name());
        assert_eq!(s.until, now + 30.0 * 86_400.0);
        for bad in [
            &br#"{"rule": "x"}"#[..],
            br#"{"rule": "x", "for": "2h", "until": "2030-01-01T00:00:00Z"}"#,
            br#"{"for": "2h", "match": {"colour": "red"}}"#,
            br#"{"for": "2h", "extra": 1}"#,
            br#"{"for": "-1h"}"#,
            br#"{"until": "1970-01-02T00:00:00Z"}"#,
            br#"{"for": "400d"}"#,
            br#"{"for": "2h", "comment": "a\nb"}"#,
            br#"{"schedule": {"from": "02:00", "to": "04:00", "tzz": "UTC"}}"#,
            br#"{"schedule": {"from": "02:00", "to": "04:00", "tz": "Nowhere/Land"}}"#,
            br#"{"schedule": {"from": "02:00", "to": "02:00"}}"#,
            br#"{"schedule": {"from": "02:00"}}"#,
            br#"{"schedule": "sun 02:00-04:00"}"#,
            br#"[1]"#,
            br#"not json"#,
        ] {
            assert!(parse_silence(bad, now).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
