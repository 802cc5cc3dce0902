//! Logging set-up: human text through simplelog, or one JSON object per line.
//!
//! Structured fields use the `log` crate's key-values (`info!(rule = name; "firing")`): text
//! output appends them as `key=value`, JSON output puts them under `fields`.

use log::kv::{self, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
use simplelog::{ConfigBuilder, WriteLogger};
use std::io::Write;
use std::str::FromStr;

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-12-01T05:30:00Z [INFO] message key=value` lines.
    Text,
    /// One JSON object per line: ts, level, target, message, fields.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format \"{other}\" (expected text or json)")),
        }
    }
}

/// Parses a `--log-level` value.
pub fn parse_level(s: &str) -> Result<LevelFilter, String> {
    LevelFilter::from_str(s).map_err(|_| {
        format!("unknown log level \"{s}\" (expected off, error, warn, info, debug or trace)")
    })
}

/// Installs the global logger; later calls are ignored.
pub fn init(level: LevelFilter, format: LogFormat) {
    let logger: Box<dyn Log> = match format {
        LogFormat::Text => {
            let config = ConfigBuilder::new()
                .set_time_format_rfc3339()
                .set_target_level(LevelFilter::Off)
                .set_thread_level(LevelFilter::Off)
                .build();
            Box::new(TextLogger { inner: WriteLogger::new(level, config, std::io::stderr()) })
        }
        LogFormat::Json => Box::new(JsonLogger { level }),
    };
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Collects key-values, keeping numbers and booleans typed.
#[derive(Default)]
struct Fields(Vec<(String, serde_json::Value)>);

impl<'kvs> VisitSource<'kvs> for Fields {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        use serde_json::Value as J;
        let json = if let Some(b) = value.to_bool() {
            J::Bool(b)
        } else if let Some(i) = value.to_i64() {
            J::from(i)
        } else if let Some(u) = value.to_u64() {
            J::from(u)
        } else if let Some(f) = value.to_f64().filter(|f| f.is_finite()) {
            J::from(f)
        } else {
            J::String(value.to_string())
        };
        self.0.push((key.to_string(), json));
        Ok(())
    }
}

fn fields_of(record: &Record<'_>) -> Fields {
    let mut fields = Fields::default();
    let _ = record.key_values().visit(&mut fields);
    fields
}

/// simplelog with the record's fields appended as `key=value` (values quoted when needed).
struct TextLogger {
    inner: Box<WriteLogger<std::io::Stderr>>,
}

impl Log for TextLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let fields = fields_of(record);
        let message = record.args().to_string();
        let hostile = message.contains(|c: char| c.is_control());
        if fields.0.is_empty() && !hostile {
            self.inner.log(record);
            return;
        }
        // Untrusted text (mount points, hook output) must not start a forged log line or
        // send terminal escapes: control characters are shown escaped.
        let mut line = if hostile { message.escape_debug().to_string() } else { message };
        for (k, v) in &fields.0 {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
                line.push_str(&format!(" {k}={v:?}"));
            } else {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        self.inner.log(
            &Record::builder()
                .metadata(record.metadata().clone())
                .args(format_args!("{line}"))
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// One JSON object per line on standard error.
struct JsonLogger {
    level: LevelFilter,
}

impl Log for JsonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let fields: serde_json::Map<String, serde_json::Value> =
            fields_of(record).0.into_iter().collect();
        let line = serde_json::json!({
            "ts": crate::timefmt::rfc3339_millis(crate::timefmt::now_unix()),
            "level": record.level().as_str(),
            "target": record.target(),
            "message": record.args().to_string(),
            "fields": fields,
        });
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// "At most once a minute" for a repeating problem: a warning worth repeating, never
/// flooding the log. [`Throttle::ready`] is true the first time and then once per period.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Throttle {
    last: Option<std::time::Instant>,
}

impl Throttle {
    /// The period between two messages.
    pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(60);

    /// True (and the period restarts) when a message may go out now.
    pub(crate) fn ready(&mut self) -> bool {
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return false;
        }
        self.last = Some(std::time::Instant::now());
        true
    }
}
