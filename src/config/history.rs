//! The `history` section: the built-in round-robin file, the SQLite sink and the InfluxDB
//! push. `"history": false` turns all of it off; an absent section keeps the built-in file
//! with its defaults (24 h of 1-minute slots, the last hour raw).
//!
//! Not the place for the file format (`history::format`) or for writing (`history::*`).

use super::decode::{Decoder, Members, get, member};
use super::json::{Node, NodeValue};
use super::{HistoryConfig, HistoryFileConfig, InfluxConfig, InfluxTarget, Secret, SqliteConfig};
use std::path::PathBuf;
use std::time::Duration;

const HISTORY_KEYS: &[&str] =
    &["file", "retention", "resolution", "raw", "max_series", "sqlite", "influxdb"];
const SQLITE_KEYS: &[&str] = &["path", "retention"];
const INFLUX_KEYS: &[&str] =
    &["url", "database", "username", "password", "org", "bucket", "token", "buffer", "timeout"];

/// The most slots (retention / resolution) and raw rows a history file may hold.
const MAX_ROWS: u64 = 200_000;
/// The largest series table a history file may have.
const MAX_SERIES: u64 = 8192;
/// The largest history file `check` accepts (the file is allocated whole when created).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Decodes `history`.
pub(crate) fn decode_history(
    d: &mut Decoder<'_>,
    node: &Node,
    interval: Option<Duration>,
) -> HistoryConfig {
    match node.value {
        NodeValue::Bool(false) => return HistoryConfig::off(),
        NodeValue::Bool(true) => return HistoryConfig::default(),
        _ => {}
    }
    let example = "{\"retention\": \"24h\", \"resolution\": \"1m\", \"raw\": \"1h\"}";
    let Some(members) = d.object(node, "history", HISTORY_KEYS, example) else {
        return HistoryConfig::default();
    };
    let file_on = match member(members, "history", "file") {
        Some((n, path)) => d.boolean(n, &path).unwrap_or(true),
        None => true,
    };
    let mut file = HistoryFileConfig::default();
    for (key, slot) in [
        ("retention", &mut file.retention),
        ("resolution", &mut file.resolution),
        ("raw", &mut file.raw),
    ] {
        if let Some((n, path)) = member(members, "history", key)
            && let Some(v) = d.duration(n, &path)
        {
            *slot = v;
        }
    }
    if let Some((n, path)) = member(members, "history", "max_series") {
        match whole(n, 1, MAX_SERIES) {
            Some(v) => file.max_series = v as u32,
            None => d.error(n, &path, format!("expected a whole number from 1 to {MAX_SERIES}")),
        }
    }
    check_geometry(d, members, &file, interval);
    let sqlite = get(members, "sqlite").and_then(|n| decode_sqlite(d, n));
    let influxdb = get(members, "influxdb").and_then(|n| decode_influx(d, n));
    HistoryConfig { file: file_on.then_some(file), sqlite, influxdb }
}

/// Resolution, retention and raw span must make a file that can be allocated.
fn check_geometry(
    d: &mut Decoder<'_>,
    members: &Members,
    file: &HistoryFileConfig,
    interval: Option<Duration>,
) {
    let at = |d: &mut Decoder<'_>, key: &str, m: String| {
        if let Some((n, path)) = member(members, "history", key) {
            d.error(n, &path, m);
        }
    };
    if file.resolution < Duration::from_secs(1) || file.resolution.subsec_nanos() != 0 {
        at(d, "resolution", "a resolution must be a whole number of seconds, at least 1s".into());
        return;
    }
    if file.retention < file.resolution {
        at(d, "retention", "the retention must not be shorter than the resolution".into());
        return;
    }
    let slots = file.slots();
    if slots > MAX_ROWS {
        at(d, "retention", format!("{slots} slots is more than {MAX_ROWS}; raise the resolution"));
        return;
    }
    if let Some(i) = interval
        && file.raw_rows(i) > MAX_ROWS
    {
        at(d, "raw", format!("more than {MAX_ROWS} raw samples per series; shorten \"raw\""));
        return;
    }
    if let Some(i) = interval {
        let bytes = file.file_bytes(i);
        if bytes > MAX_FILE_BYTES {
            at(
                d,
                "max_series",
                format!("the history file would be {} MiB (at most 1024)", bytes >> 20),
            );
        }
    }
}

fn whole(n: &Node, min: u64, max: u64) -> Option<u64> {
    match n.value {
        NodeValue::Number(v) if v.fract() == 0.0 && v >= min as f64 && v <= max as f64 => {
            Some(v as u64)
        }
        _ => None,
    }
}

fn decode_sqlite(d: &mut Decoder<'_>, node: &Node) -> Option<SqliteConfig> {
    if let NodeValue::String(_) = node.value {
        let path = d.non_empty(node, "history.sqlite", "\"/var/lib/hostwatch/history.db\"")?;
        return Some(SqliteConfig {
            path: PathBuf::from(path),
            retention: SqliteConfig::DEFAULT_RETENTION,
        });
    }
    let example = "{\"path\": \"/var/lib/hostwatch/history.db\", \"retention\": \"30d\"}";
    let members = d.object(node, "history.sqlite", SQLITE_KEYS, example)?;
    let path = d
        .required(get(members, "path"), node, "history.sqlite", "path")
        .and_then(|n| d.non_empty(n, "history.sqlite.path", "\"/var/lib/hostwatch/history.db\""));
    let retention = match member(members, "history.sqlite", "retention") {
        Some((n, p)) => d.duration(n, &p),
        None => Some(SqliteConfig::DEFAULT_RETENTION),
    };
    Some(SqliteConfig { path: PathBuf::from(path?), retention: retention? })
}

fn decode_influx(d: &mut Decoder<'_>, node: &Node) -> Option<InfluxConfig> {
    let example = "{\"url\": \"http://127.0.0.1:8086\", \"database\": \"hostwatch\"}";
    let members = d.object(node, "history.influxdb", INFLUX_KEYS, example)?;
    let p = "history.influxdb";
    let url = d.required(get(members, "url"), node, p, "url").and_then(|n| {
        let url = d.string(n, "history.influxdb.url", "\"http://127.0.0.1:8086\"")?;
        super::channels::check_url(url).map_err(|m| d.error(n, "history.influxdb.url", m)).ok()?;
        Some(url.trim_end_matches('/').to_owned())
    });
    let text = |d: &mut Decoder<'_>, key: &str| -> Option<Option<String>> {
        match member(members, p, key) {
            Some((n, path)) => d.non_empty(n, &path, "\"hostwatch\"").map(Some),
            None => Some(None),
        }
    };
    let database = text(d, "database")?;
    let username = text(d, "username")?;
    let password = text(d, "password")?;
    let org = text(d, "org")?;
    let bucket = text(d, "bucket")?;
    let token = text(d, "token")?;
    let target = match (database, org, bucket, token) {
        (Some(database), None, None, None) => {
            InfluxTarget::V1 { database, username, password: password.map(Secret::new) }
        }
        (None, Some(org), Some(bucket), Some(token)) => {
            if username.is_some() || password.is_some() {
                d.error(
                    node,
                    p,
                    "username and password are for InfluxDB 1.x (\"database\"); 2.x takes a token",
                );
                return None;
            }
            InfluxTarget::V2 { org, bucket, token: Secret::new(token) }
        }
        (Some(_), _, _, _) => {
            d.error(node, p, "give either \"database\" (InfluxDB 1.x /write) or \"org\", \"bucket\" and \"token\" (2.x /api/v2/write), not both");
            return None;
        }
        (None, _, _, _) => {
            d.error(
                node,
                p,
                "missing \"database\" (InfluxDB 1.x) or \"org\", \"bucket\" and \"token\" (2.x)",
            );
            return None;
        }
    };
    let buffer = match member(members, p, "buffer") {
        Some((n, path)) => match whole(n, 1, 10_000_000) {
            Some(v) => Some(v as usize),
            None => {
                d.error(n, &path, "expected a whole number of points from 1 to 10000000");
                None
            }
        },
        None => Some(InfluxConfig::DEFAULT_BUFFER),
    };
    let timeout = match member(members, p, "timeout") {
        Some((n, path)) => d.duration(n, &path).map(Some),
        None => Some(None),
    };
    Some(InfluxConfig { url: Secret::new(url?), target, buffer: buffer?, timeout: timeout? })
}
