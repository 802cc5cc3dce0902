//! Example hostwatch notifier plugin in Rust, built with the SDK: sends each alert to the
//! local syslog daemon or systemd-journald over their Unix datagram socket (`/dev/log`), so
//! alerts land wherever the host's logs already go (files, a central log server, journalctl).
//!
//! Copy this crate to start your own plugin: the SDK handles the C ABI and panics; this file
//! is only config parsing and the delivery itself.
//!
//! Config (the channel's `config` object; unknown keys are refused):
//! - `socket`: the datagram socket, default `/dev/log`;
//! - `tag`: the syslog tag (program name), default `hostwatch`;
//! - `facility`: `daemon` (default), `user`, `local0` … `local7`, …;
//! - `format`: `text` (default: the one-line summary and the key) or `json` (the event);
//! - `panic_on_notify`: a testing aid: `true` makes every delivery panic, to see the SDK's
//!   panic guard at work (hostwatch reports "plugin panicked" and keeps running).
//!
//! Severity: `critical` is sent as `crit`, `warning` as `warning`, a resolution as `notice`.
//! A socket error (daemon restarting, queue full, socket missing) asks hostwatch to retry.

use hostwatch_plugin_sdk::{Error, Event, Notifier, export_notifier};
use serde_json::{Map, Value};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// The longest datagram sent; a bigger message is a permanent failure, not a retry.
const MAX_MESSAGE: usize = 16 * 1024;
/// How long a send may block on a full socket queue before it is retried later.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// `text` or `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// The notifier: the parsed config and an unbound socket reused for every send.
struct Syslog {
    socket_path: PathBuf,
    tag: String,
    facility: u8,
    format: Format,
    panic_on_notify: bool,
    socket: UnixDatagram,
}

impl Notifier for Syslog {
    const NAME: &'static str = "syslog";

    fn init(config_json: &str) -> Result<Self, Error> {
        let config: Value = serde_json::from_str(config_json)
            .map_err(|e| Error::permanent(format!("config is not JSON: {e}")))?;
        let Value::Object(config) = config else {
            return Err(Error::permanent("config must be an object"));
        };
        for key in config.keys() {
            if !["socket", "tag", "facility", "format", "panic_on_notify"].contains(&key.as_str()) {
                return Err(Error::permanent(format!(
                    "config: unknown key {key:?} (expected socket, tag, facility, format, \
                     panic_on_notify)"
                )));
            }
        }
        let socket_path = PathBuf::from(string(&config, "socket", "/dev/log")?);
        let tag = string(&config, "tag", "hostwatch")?;
        if tag.is_empty()
            || tag.len() > 32
            || !tag.chars().all(|c| c.is_ascii_graphic() && !"[]:".contains(c))
        {
            return Err(Error::permanent(format!(
                "config: tag {tag:?} must be 1 to 32 printable ASCII characters without \
                 spaces, brackets or colons"
            )));
        }
        let facility_name = string(&config, "facility", "daemon")?;
        let facility = facility_code(&facility_name).ok_or_else(|| {
            Error::permanent(format!("config: unknown facility {facility_name:?}"))
        })?;
        let format = match string(&config, "format", "text")?.as_str() {
            "text" => Format::Text,
            "json" => Format::Json,
            other => {
                return Err(Error::permanent(format!(
                    "config: format {other:?} must be \"text\" or \"json\""
                )));
            }
        };
        let panic_on_notify = match config.get("panic_on_notify") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Error::permanent("config: panic_on_notify must be a boolean")),
        };
        let socket = UnixDatagram::unbound()
            .map_err(|e| Error::retry(format!("cannot create a socket: {e}")))?;
        socket
            .set_write_timeout(Some(SEND_TIMEOUT))
            .map_err(|e| Error::retry(format!("cannot set the send timeout: {e}")))?;
        Ok(Syslog { socket_path, tag, facility, format, panic_on_notify, socket })
    }

    fn notify(&mut self, event: &Event<'_>) -> Result<String, Error> {
        if self.panic_on_notify {
            panic!("panic_on_notify is set in this channel's config");
        }
        let message = self.message(event);
        if message.len() > MAX_MESSAGE {
            return Err(Error::permanent(format!(
                "message of {} bytes exceeds the {MAX_MESSAGE}-byte limit",
                message.len()
            )));
        }
        let socket = self.socket_path.display();
        match self.socket.send_to(message.as_bytes(), &self.socket_path) {
            Ok(_) => Ok(format!("sent to {socket} as {}", self.tag)),
            Err(e) => Err(Error::retry(format!("cannot send to {socket}: {e}"))),
        }
    }
}

impl Syslog {
    /// `<PRI>TAG[PID]: BODY`, the form `/dev/log` readers (rsyslog, syslog-ng, journald)
    /// accept; control characters in the body become spaces so one alert stays one line.
    fn message(&self, event: &Event<'_>) -> String {
        let severity: u8 = match (event.event, event.severity) {
            ("resolved" | "flap_end", _) => 5, // notice
            (_, "critical") => 2,              // crit
            _ => 4,                            // warning
        };
        let pri = u16::from(self.facility) * 8 + u16::from(severity);
        let body = match self.format {
            Format::Text => format!("{} key={}", event.summary, event.key),
            Format::Json => event.json.to_string(),
        };
        let body: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("<{pri}>{}[{}]: {body}", self.tag, std::process::id())
    }
}

/// A string setting with a default.
fn string(config: &Map<String, Value>, key: &str, default: &str) -> Result<String, Error> {
    match config.get(key) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Error::permanent(format!("config: {key} must be a string"))),
    }
}

/// RFC 5424 facility codes by name.
fn facility_code(name: &str) -> Option<u8> {
    const NAMES: [&str; 12] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp",
    ];
    if let Some(i) = NAMES.iter().position(|n| *n == name) {
        return u8::try_from(i).ok();
    }
    let n: u8 = name.strip_prefix("local")?.parse().ok()?;
    (n <= 7).then_some(16 + n)
}

export_notifier!(Syslog);

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(summary: &'a str, severity: &'a str, kind: &'a str) -> Event<'a> {
        Event {
            json: "{\"rule\":\"r\"}",
            summary,
            host: "h",
            rule: "r",
            series: "s",
            severity,
            event: kind,
            key: "k",
        }
    }

    #[test]
    fn config_is_checked() {
        assert!(Syslog::init("{}").is_ok());
        let e = Syslog::init(r#"{"sokcet": "/dev/log"}"#).err().unwrap();
        assert!(e.message().contains("unknown key \"sokcet\""), "{e}");
        let e = Syslog::init(r#"{"facility": "local9"}"#).err().unwrap();
        assert!(e.message().contains("unknown facility"), "{e}");
        let e = Syslog::init(r#"{"tag": "two words"}"#).err().unwrap();
        assert!(e.message().contains("tag"), "{e}");
    }

    #[test]
    fn messages_carry_priority_tag_and_one_line() {
        let s = Syslog::init(r#"{"facility": "local3", "tag": "hw"}"#).ok().unwrap();
        let pid = std::process::id();
        let m = s.message(&event("CRITICAL firing\nx", "critical", "firing"));
        assert_eq!(m, format!("<154>hw[{pid}]: CRITICAL firing x key=k"));
        let m = s.message(&event("resolved", "critical", "resolved"));
        assert!(m.starts_with("<157>"), "{m}");
        let s = Syslog::init(r#"{"format": "json"}"#).ok().unwrap();
        let m = s.message(&event("x", "warning", "firing"));
        assert_eq!(m, format!("<28>hostwatch[{pid}]: {{\"rule\":\"r\"}}"));
    }
}
