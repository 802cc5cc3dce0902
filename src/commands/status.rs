//! `hostwatch status`: what is wrong now, for people and scripts.
//!
//! From the running daemon's API when there is one (`--url`, else the config's `api.listen`;
//! a `0.0.0.0` or `::` listen address is asked on loopback): `GET /status`, plain HTTP, 3 s
//! for the whole exchange, at most 16 MiB of answer read. When the API does not answer (no
//! daemon, or a build without the `api` feature), or the config has none, the state file is
//! read without taking the lock (`state::peek_exact`, which never writes), and the output
//! says so and that its data is as of
//! the file's modification time (the daemon saves it when an alert changes and at stop).
//!
//! Exit codes as `once` (Nagios): 0 nothing firing, 1 a warning firing, 2 a critical firing,
//! 3 unknown (no API and no readable state file — one that cannot be read, is not a regular
//! file or is broken is unknown too, never "nothing firing" — or the API says the loop is
//! stalled).
//! Pending alerts do not count. Silenced alerts count, as in `once` (a silence holds back
//! notifications, not state: the problem is still there), and each is marked with the
//! silence holding it (`[silenced by ID]`).
//!
//! The text form shows control characters escaped (a mount or interface name, a rule, a
//! receiver's error message is outside text: printed raw it could carry terminal escape
//! sequences or forge report lines). `--format json` prints the `/status` document (`api::status`) with `"source": "api"` and
//! `"exit_code"`; from the state file, a document of the same shape with what is known (the
//! daemon's own fields are `null`) and `"source": "state_file"`.
//!
//! Not for: changing anything (silences are `hostwatch silence`).

use crate::cli::StatusArgs;
use crate::config::{Config, Severity};
use crate::metrics::Metric;
use crate::notify::SendError;
use crate::series::Registry;
use crate::state;
use crate::timefmt::{now_unix, rfc3339};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The time limit of the whole request to the API.
const API_TIMEOUT: Duration = Duration::from_secs(3);

/// The most of a `/status` document read: a host with thousands of series (cores, mounts,
/// container interfaces) answers well beyond the channels' 64 KiB; a server on the port that
/// is not hostwatch is still read within a bound.
const DOCUMENT_LIMIT: usize = 16 << 20;

use super::once::{CRITICAL, OK, UNKNOWN, WARNING, status_word};

/// Shows what is wrong now and exits with the worst state.
pub fn run(args: &StatusArgs, global_config: Option<&Path>) -> ExitCode {
    let json_format = match args.format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            return unknown(&format!(
                "--format: unknown format \"{other}\" (expected text or json)"
            ));
        }
    };
    // A config is needed for the state file and the API address; with --url the API alone
    // can answer.
    let config = match crate::config::load(args.config.as_deref().or(global_config)) {
        Ok(c) => {
            crate::timefmt::set_display_zone(c.display.zone.clone());
            Some(c)
        }
        Err(errors) if args.url.is_some() => {
            crate::errln!("{errors}");
            None
        }
        Err(errors) => {
            crate::errln!("{errors}");
            return unknown("invalid config");
        }
    };
    let base = args
        .url
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.api.as_ref()).map(|a| loopback_base(a.listen)));
    let api_error = match &base {
        // `--url` may carry user info (a proxy's basic authentication): never shown.
        Some(base) => match fetch(base) {
            Ok(mut doc) => {
                doc.insert("source".into(), json!("api"));
                doc.insert("api".into(), json!(crate::config::redact_url_secrets(base)));
                return show(doc, json_format);
            }
            Err(e) => format!(
                "the daemon's API at {} did not answer ({e})",
                crate::config::redact_url_secrets(base)
            ),
        },
        None => "the config has no \"api\"".to_string(),
    };
    let Some(config) = config else {
        return unknown(&format!("{api_error}, and without a valid config there is no state file"));
    };
    match from_state_file(&config, &api_error) {
        Ok(doc) => show(doc, json_format),
        Err(e) => unknown(&format!("{api_error}, and {e}")),
    }
}

/// Prints why nothing can be told, Nagios style, and exits 3.
fn unknown(message: &str) -> ExitCode {
    crate::outln!("HOSTWATCH UNKNOWN - {}", printable(message));
    ExitCode::from(UNKNOWN)
}

/// `text` safe for a terminal: control characters (escape sequences, line breaks, C1) and
/// bidirectional overrides are shown escaped (`\u{1b}`), so a label, a rule or a receiver's
/// error message can neither move the cursor nor forge a line of the report.
pub(super) fn printable(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(hidden) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `http://ADDR` for a listen address, an unspecified one (`0.0.0.0`, `::`) on loopback.
fn loopback_base(listen: std::net::SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// `GET <base>/status` (or `base` itself when it already ends in `/status`).
fn fetch(base: &str) -> Result<Map<String, Value>, String> {
    let base = base.trim_end_matches('/');
    let url = if base.ends_with("/status") { base.to_string() } else { format!("{base}/status") };
    let headers = [
        ("User-Agent".to_string(), crate::notify::alertmanager::user_agent()),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    // The reason without the `GET <url>: ` the client puts in front (the message names the
    // API already) and without the retry advice meant for channels.
    let response =
        crate::notify::http::request_up_to("GET", &url, &headers, b"", API_TIMEOUT, DOCUMENT_LIMIT)
            .map_err(|e| {
                let (SendError::Transient { reason, .. } | SendError::Permanent { reason }) = e;
                reason.split_once(": ").map_or(reason.clone(), |(_, r)| r.to_string())
            })?;
    if response.status != 200 {
        return Err(format!("HTTP {}", response.status));
    }
    match serde_json::from_str::<Value>(&response.body) {
        Ok(Value::Object(doc)) if doc.get("alerts").is_some_and(Value::is_array) => Ok(doc),
        _ if response.body.len() >= DOCUMENT_LIMIT => {
            Err(format!("the answer is larger than {} MiB", DOCUMENT_LIMIT >> 20))
        }
        _ => Err("the answer is not a /status document".into()),
    }
}

/// A `/status`-shaped document from the state file, read without the lock.
fn from_state_file(config: &Config, api_error: &str) -> Result<Map<String, Value>, String> {
    let path = state::state_path(&config.state_dir);
    // Unreadable, not a regular file, or broken is unknown, never "nothing firing".
    let saved = state::peek_exact(&config.state_dir)?
        .ok_or_else(|| format!("there is no state file {}", path.display()))?;
    let mtime = std::fs::metadata(&path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let silences = crate::silence_store::Watcher::new(&config.state_dir).merged(config, false);
    let now = now_unix();
    let mut registry = Registry::new();
    let mut alerts = Vec::new();
    for a in &saved.alerts {
        let inner = crate::series::absent_inner(&a.series);
        let Ok((metric, label)) = crate::series::parse_series_key(inner.unwrap_or(&a.series))
        else {
            continue;
        };
        let rule = config.rules.iter().find(|r| r.name == a.rule);
        let flap = a.state.flap.flapping;
        let (state, severity) = match a.state.phase {
            crate::alerts::Phase::Ok => match flap {
                Some(f) => ("ok", f.severity),
                None => continue,
            },
            crate::alerts::Phase::Firing { severity, .. } => ("firing", severity),
            crate::alerts::Phase::Pending { .. } => {
                let crit_only = rule.is_some_and(|r| r.crit.is_some() && r.warn.is_none());
                ("pending", if crit_only { Severity::Critical } else { Severity::Warning })
            }
        };
        let threshold = rule.map_or("", |r| {
            let t = match severity {
                Severity::Critical => r.crit.as_ref().or(r.warn.as_ref()),
                _ => r.warn.as_ref().or(r.crit.as_ref()),
            };
            t.map_or("", |t| t.text.as_str())
        });
        let id = registry.intern(metric, label);
        let info = registry.info(id);
        let silenced_by = silences
            .iter()
            .find(|s| s.covers(&a.rule, info, now))
            .map(|s| if s.id.is_empty() { format!("config: {}", s.comment) } else { s.id.clone() });
        let (since, last_notified) = match a.state.phase {
            crate::alerts::Phase::Firing { since, last_notified, .. } => {
                (since, Some(last_notified))
            }
            crate::alerts::Phase::Pending { since } => (since, None),
            crate::alerts::Phase::Ok => (flap.map_or(f64::NAN, |f| f.since), None),
        };
        alerts.push(json!({
            "rule": a.rule,
            "series": a.series,
            "metric": metric.name(),
            "labels": info.label_pair().map_or(json!({}), |(k, v)| json!({k.as_str(): v})),
            "state": state,
            "flapping": flap.is_some(),
            "severity": severity.as_str(),
            "since": time(since),
            "last_notified": last_notified.map_or(Value::Null, time),
            "value": if a.state.value.is_finite() { json!(a.state.value) } else { Value::Null },
            "unit": metric.unit().as_str(),
            "threshold": threshold,
            "silenced_by": silenced_by,
            "nodata": a.state.nodata().map_or(Value::Null, |n| json!({
                "since": time(n.last_seen),
                "reason": n.reason.text(metric),
            })),
        }));
    }
    let mut channels = Map::new();
    for name in config.channels.keys() {
        let outbox = saved.delivery.outbox.iter().filter(|i| &i.channel == name).count();
        channels.insert(name.clone(), json!({"outbox": outbox}));
    }
    // `merged` puts the config file's silences first, then the store's.
    let silences: Vec<Value> = silences
        .iter()
        .enumerate()
        .filter(|(_, s)| s.in_force(now))
        .map(|(i, s)| {
            json!({
                "id": s.id,
                "rule": s.rule, "match": s.matchers, "until": time(s.until),
                "schedule": s.schedule_json(now),
                "comment": s.comment,
                "source": if i < config.silences.len() { "config" } else { "store" },
            })
        })
        .collect();
    let doc = json!({
        "source": "state_file",
        "state_file": path.display().to_string(),
        "state_file_mtime": time(mtime),
        "saved_at": time(saved.saved_at),
        "api_error": api_error,
        "host": config.host,
        "version": Value::Null,
        "config": config.source,
        "healthy": Value::Null,
        "ticks": Value::Null,
        "last_tick": Value::Null,
        "interval_s": config.interval.as_secs_f64(),
        "alerts": alerts,
        "series": [],
        "silences": silences,
        "channels": channels,
        "persist_failing": Value::Null,
        "write_failures": Value::Null,
    });
    serde_json::from_value(doc).map_err(|e| format!("cannot build the document: {e}"))
}

/// An RFC 3339 time, `null` for 0 or a non-finite value.
fn time(unix: f64) -> Value {
    if unix.is_finite() && unix > 0.0 { json!(rfc3339(unix)) } else { Value::Null }
}

/// A document's RFC 3339 time in the display zone (as it came when it does not parse).
fn shown_time(v: &Value) -> String {
    match v.as_str() {
        Some(text) => crate::config::parse_rfc3339(text)
            .map_or_else(|_| text.to_owned(), crate::timefmt::human),
        None => "?".to_owned(),
    }
}

/// The exit code a document stands for.
fn exit_code(doc: &Map<String, Value>) -> u8 {
    if doc.get("healthy") == Some(&Value::Bool(false)) {
        return UNKNOWN;
    }
    alerts(doc)
        .filter(|a| a["state"] == "firing")
        .map(|a| if a["severity"] == "critical" { CRITICAL } else { WARNING })
        .max()
        .unwrap_or(OK)
}

fn alerts(doc: &Map<String, Value>) -> impl Iterator<Item = &Value> {
    doc.get("alerts").and_then(Value::as_array).into_iter().flatten()
}

/// Prints the document (text or JSON) and exits with its code.
fn show(mut doc: Map<String, Value>, json_format: bool) -> ExitCode {
    let code = exit_code(&doc);
    if json_format {
        doc.insert("exit_code".into(), json!(code));
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        crate::outln!("{}", text(&doc, code));
    }
    ExitCode::from(code)
}

/// One alert: `CRITICAL disk_root mount=/ 97.1% (> 95) since 2026-12-02T01:00:00Z`.
fn alert_line(a: &Value) -> String {
    let word = if a["state"] == "firing" {
        a["severity"].as_str().unwrap_or("warning").to_uppercase()
    } else {
        "PENDING".to_string()
    };
    let labels: String = a["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!(" {k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    let value = match (a["value"].as_f64(), a["metric"].as_str().and_then(Metric::parse)) {
        (Some(v), Some(m)) => crate::humanize::value(m.unit(), v),
        (Some(v), None) => format!("{v}"),
        (None, _) => "no value".to_string(),
    };
    let mut line = format!(
        "{word:<8} {}{labels} {value} ({}) since {}",
        a["rule"].as_str().unwrap_or("?"),
        a["threshold"].as_str().unwrap_or(""),
        shown_time(&a["since"])
    );
    if let Some(n) = a["nodata"].as_object() {
        line.push_str(&format!(
            " [no data since {}: {}]",
            n.get("since").map_or_else(|| "?".to_string(), shown_time),
            n.get("reason").and_then(Value::as_str).unwrap_or("?")
        ));
    }
    if let Some(s) = a["silenced_by"].as_str() {
        line.push_str(&format!(" [silenced by {s}]"));
    }
    line
}

/// The text report: alerts (firing first, critical first), a summary, channel problems and
/// a stalled-loop warning.
fn text(doc: &Map<String, Value>, code: u8) -> String {
    let rank = |a: &&Value| (a["state"] != "firing", a["severity"] != "critical");
    let mut sorted: Vec<&Value> = alerts(doc).collect();
    sorted.sort_by_key(rank);
    let mut lines: Vec<String> = sorted.iter().map(|a| alert_line(a)).collect();
    let count = |f: &dyn Fn(&Value) -> bool| sorted.iter().filter(|a| f(a)).count();
    let critical = count(&|a| a["state"] == "firing" && a["severity"] == "critical");
    let warning = count(&|a| a["state"] == "firing" && a["severity"] != "critical");
    let pending = count(&|a| a["state"] == "pending");
    let silenced = count(&|a| a["state"] == "firing" && !a["silenced_by"].is_null());
    let host = doc.get("host").and_then(Value::as_str).unwrap_or("?");
    let mut summary = format!(
        "{} on {host}: {critical} critical and {warning} warning firing, {pending} pending",
        status_word(code)
    );
    if silenced > 0 {
        summary.push_str(&format!(" ({silenced} firing silenced, counted all the same)"));
    }
    if doc.get("source") == Some(&json!("state_file")) {
        summary.push_str(&format!(
            "; {}: data from the state file {} as of its modification time {}",
            doc.get("api_error").and_then(Value::as_str).unwrap_or("no API"),
            doc.get("state_file").and_then(Value::as_str).unwrap_or("?"),
            doc.get("state_file_mtime").map_or_else(|| "?".to_string(), shown_time),
        ));
    } else {
        let age = doc.get("last_tick_age_s").and_then(Value::as_f64).unwrap_or(f64::NAN);
        summary.push_str(&format!(
            "; from the daemon's API at {} (last tick {age:.1}s ago)",
            doc.get("api").and_then(Value::as_str).unwrap_or("?")
        ));
    }
    lines.push(summary);
    for (name, c) in doc.get("channels").and_then(Value::as_object).into_iter().flatten() {
        let outbox = c["outbox"].as_u64().unwrap_or(0);
        let failures = c["consecutive_failures"].as_u64().unwrap_or(0);
        if outbox == 0 && failures == 0 {
            continue;
        }
        let mut line = format!("channel {name}: {outbox} in the outbox");
        if failures > 0 {
            line.push_str(&format!(", {failures} consecutive failures"));
        }
        if let Some(e) = c["last_error"].as_str() {
            line.push_str(&format!(", last error: {e}"));
        }
        lines.push(line);
    }
    if doc.get("persist_failing") == Some(&Value::Bool(true)) {
        lines.push("the daemon cannot save its state file (see its log)".to_string());
    }
    if doc.get("healthy") == Some(&Value::Bool(false)) {
        let age = doc.get("last_tick_age_s").and_then(Value::as_f64).unwrap_or(f64::NAN);
        let interval = doc.get("interval_s").and_then(Value::as_f64).unwrap_or(f64::NAN);
        lines.push(format!(
            "STALLED: the daemon's loop has not ticked for {age:.0}s (interval {interval}s); \
             the alert states above may be stale"
        ));
    }
    // Every piece of a line may come from outside (labels, receivers' answers, the state
    // file): each line is made printable whole.
    lines.iter().map(|l| printable(l)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_asked_on_loopback() {
        assert_eq!(loopback_base("0.0.0.0:9184".parse().unwrap()), "http://127.0.0.1:9184");
        assert_eq!(loopback_base("[::]:9184".parse().unwrap()), "http://[::1]:9184");
        assert_eq!(loopback_base("10.0.0.5:80".parse().unwrap()), "http://10.0.0.5:80");
    }

    #[test]
    fn exit_codes_count_silenced_firing_alerts_and_not_pending_ones() {
        let doc = |alerts: Value, healthy: Value| {
            let mut m = Map::new();
            m.insert("alerts".into(), alerts);
            m.insert("healthy".into(), healthy);
            m
        };
        let warn = json!({"state": "firing", "severity": "warning", "silenced_by": "s1"});
        let crit = json!({"state": "firing", "severity": "critical"});
        let pend = json!({"state": "pending", "severity": "critical"});
        assert_eq!(exit_code(&doc(json!([]), json!(true))), OK);
        assert_eq!(exit_code(&doc(json!([pend]), json!(true))), OK);
        assert_eq!(exit_code(&doc(json!([warn, pend]), Value::Null)), WARNING);
        assert_eq!(exit_code(&doc(json!([warn, crit]), json!(true))), CRITICAL);
        assert_eq!(exit_code(&doc(json!([crit]), json!(false))), UNKNOWN);
        let line = alert_line(&json!({"state": "firing", "severity": "critical",
            "rule": "disk_root", "labels": {"mount": "/"}, "metric": "disk.used_percent",
            "value": 97.14, "threshold": "> 95", "since": "2026-12-02T01:00:00Z",
            "silenced_by": "s123"}));
        assert_eq!(
            line,
            "CRITICAL disk_root mount=/ 97.1% (> 95) since 2026-12-02T01:00:00Z [silenced by s123]"
        );
    }

    #[test]
    fn text_output_shows_control_characters_escaped() {
        // A mount named with an escape sequence and a forged line; a receiver's error with a
        // cursor movement.
        let evil = "/mnt/\u{1b}[2J\u{1b}[1;1HOK\nOK on h: 0 critical";
        let mut doc = Map::new();
        doc.insert("host".into(), json!("h\u{1b}]0;title\u{7}"));
        doc.insert("source".into(), json!("api"));
        doc.insert("api".into(), json!("http://127.0.0.1:1"));
        doc.insert(
            "alerts".into(),
            json!([{"state": "firing", "severity": "critical", "rule": "r\r",
                    "labels": {"mount": evil}, "metric": "disk.used_percent", "value": 1.0,
                    "threshold": "> 0\u{202e}", "since": "x", "silenced_by": null}]),
        );
        doc.insert(
            "channels".into(),
            json!({"c": {"outbox": 1, "consecutive_failures": 1,
                         "last_error": "HTTP 500: \u{1b}[31mboom\u{9b}2J"}}),
        );
        let out = text(&doc, CRITICAL);
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(!out.contains('\u{202e}'), "{out:?}");
        assert!(out.contains("mount=/mnt/\\u{1b}[2J"), "{out}");
        assert_eq!(printable("disk / 97%"), "disk / 97%");
    }

    #[test]
    fn a_state_file_that_cannot_be_read_or_is_broken_is_unknown_never_ok() {
        let dir = std::env::temp_dir().join(format!("hw-status-broken-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            r#"{{"host": "h1", "rules": [], "state_dir": {:?}}}"#,
            dir.display().to_string()
        );
        let config = crate::config::load_str(&text, "test", &|_| None).expect("config");
        let path = state::state_path(&dir);
        let missing = from_state_file(&config, "no API").unwrap_err();
        assert!(missing.contains("no state file"), "{missing}");
        std::fs::write(&path, "{\"version\": 1, \"alerts\": [tor").unwrap();
        let broken = from_state_file(&config, "no API").unwrap_err();
        assert!(broken.contains("not valid"), "{broken}");
        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success());
        // A FIFO with no writer: read without blocking, and refused.
        let fifo = from_state_file(&config, "no API").unwrap_err();
        assert!(fifo.contains("not a regular file"), "{fifo}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
