//! The `reports` section: periodic reports, each with a period (`every`, at least 1m), an
//! optional alignment (`at`, HH:MM UTC) and the channels it goes to.
//!
//! `every` is at least one minute: a report summarises history slots (1 minute by default),
//! and a shorter period would report on partial slots; one minute also lets a test see a
//! report arrive. Alertmanager channels (and webhooks in Alertmanager's format) are refused:
//! Alertmanager takes alerts, not reports.
//!
//! Not the place for scheduling (`report::schedule`) or building reports (`report`).

use super::channels::WebhookFormat;
use super::decode::{Decoder, member, valid_name};
use super::error::index_path;
use super::json::Node;
use super::{Channel, ChannelKind, ReportConfig};
use std::collections::BTreeMap;
use std::time::Duration;

const REPORT_KEYS: &[&str] = &["name", "every", "at", "channels"];
/// The shortest period.
const MIN_EVERY: Duration = Duration::from_secs(60);
/// The longest period (a year and a day).
const MAX_EVERY: Duration = Duration::from_secs(366 * 86_400);

impl ReportConfig {
    /// `(every, offset)` in seconds: periods end at `offset + k·every` past the epoch.
    pub(crate) fn alignment(&self) -> (u64, u64) {
        let every = self.every.as_secs().max(1);
        (every, u64::from(self.at.unwrap_or(0)) % every)
    }
}

/// The default name of a report of period `every`.
fn default_name(every: Duration) -> String {
    match every.as_secs() {
        3600 => "hourly".to_string(),
        86_400 => "daily".to_string(),
        604_800 => "weekly".to_string(),
        s => format!("every-{}", crate::report::duration_text(s as f64).replace(' ', "")),
    }
}

/// Decodes `reports`.
pub(crate) fn decode_reports(
    d: &mut Decoder<'_>,
    node: &Node,
    channels: &BTreeMap<String, Channel>,
) -> Vec<ReportConfig> {
    let example = "[{\"every\": \"24h\", \"at\": \"08:00\", \"channels\": [\"ops\"]}]";
    let Some(items) = d.array(node, "reports", example) else { return Vec::new() };
    let known: Vec<String> = channels.keys().cloned().collect();
    let mut out: Vec<ReportConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path("reports", i);
        let Some(members) = d.object(item, &path, REPORT_KEYS, example) else { continue };
        let every = d.required(member(members, &path, "every").map(|m| m.0), item, &path, "every");
        let every = every.and_then(|n| {
            let p = format!("{path}.every");
            let v = d.duration(n, &p)?;
            if v < MIN_EVERY || v > MAX_EVERY || v.subsec_nanos() != 0 {
                d.error(n, &p, "a report period must be whole seconds from 1m to 366d");
                return None;
            }
            Some(v)
        });
        let at = match member(members, &path, "at") {
            Some((n, p)) => match d.string(n, &p, "\"08:00\"").map(parse_at) {
                Some(Ok(v)) => Some(Some(v)),
                Some(Err(m)) => {
                    d.error(n, &p, m);
                    None
                }
                None => None,
            },
            None => Some(None),
        };
        let channels_node =
            d.required(member(members, &path, "channels").map(|m| m.0), item, &path, "channels");
        let names = channels_node.and_then(|n| {
            let p = format!("{path}.channels");
            let names = d.channel_refs(n, &p, &known)?;
            if names.is_empty() {
                d.error(n, &p, "a report needs at least one channel");
                return None;
            }
            let before = d.errors.len();
            for name in &names {
                let refused = match channels.get(name).map(|c| &c.kind) {
                    Some(ChannelKind::Alertmanager(_)) => Some("an Alertmanager channel"),
                    Some(ChannelKind::Webhook(w))
                        if w.format == WebhookFormat::AlertmanagerWebhook =>
                    {
                        Some("a webhook in Alertmanager's format")
                    }
                    _ => None,
                };
                if let Some(what) = refused {
                    d.error(
                        n,
                        &p,
                        format!(
                            "channel {name:?} is {what}: Alertmanager takes alerts, not reports"
                        ),
                    );
                }
            }
            (d.errors.len() == before).then_some(names)
        });
        let name = match member(members, &path, "name") {
            Some((n, p)) => d.non_empty(n, &p, "\"daily\"").and_then(|s| {
                if valid_name(&s) {
                    Some(s)
                } else {
                    d.error(n, &p, "a report name may hold letters, digits, '_', '.' and '-' only");
                    None
                }
            }),
            None => every.map(default_name),
        };
        let (Some(every), Some(at), Some(channels), Some(name)) = (every, at, names, name) else {
            continue;
        };
        if out.iter().any(|r| r.name == name) {
            d.error(
                item,
                &path,
                format!("two reports are named {name:?}; give each its own \"name\""),
            );
            continue;
        }
        out.push(ReportConfig { name, every, at, channels });
    }
    out
}

/// `HH:MM` (UTC) as seconds past midnight.
fn parse_at(text: &str) -> Result<u32, String> {
    let bad = || format!("expected a time of day HH:MM (UTC) like \"08:00\", found {text:?}");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<crate::config::Config, String> {
        crate::config::load_str(json, "test.json", &|_: &str| None).map_err(|e| e.to_string())
    }

    const CHANNELS: &str = r#""channels": {
        "ops": {"type": "webhook", "url": "http://127.0.0.1:9/x"},
        "am": {"type": "alertmanager", "url": "http://127.0.0.1:9093"}}"#;

    #[test]
    fn reports_decode_with_defaults() {
        let c = load(&format!(
            r#"{{{CHANNELS}, "reports": [{{"every": "24h", "at": "08:00", "channels": ["ops"]}},
               {{"name": "quick", "every": "1m", "channels": ["ops"]}}]}}"#
        ))
        .unwrap();
        assert_eq!(c.reports.len(), 2);
        assert_eq!(
            c.reports[0],
            ReportConfig {
                name: "daily".into(),
                every: Duration::from_secs(86_400),
                at: Some(8 * 3600),
                channels: vec!["ops".into()],
            }
        );
        assert_eq!(c.reports[0].alignment(), (86_400, 28_800));
        assert_eq!((c.reports[1].name.as_str(), c.reports[1].at), ("quick", None));
        let shown = c.to_effective_json();
        assert_eq!(shown["reports"][0]["at"], "08:00");
        assert_eq!(shown["reports"][1]["every"], "1m");
        assert!(load(&format!("{{{CHANNELS}}}")).unwrap().reports.is_empty());
    }

    #[test]
    fn wrong_reports_are_explained() {
        let cases = [
            (r#"{"every": "30s", "channels": ["ops"]}"#, "from 1m to 366d"),
            (r#"{"every": "1h", "at": "8:00", "channels": ["ops"]}"#, "HH:MM"),
            (r#"{"every": "1h", "at": "24:00", "channels": ["ops"]}"#, "HH:MM"),
            (r#"{"every": "1h", "channels": ["opz"]}"#, "unknown channel \"opz\""),
            (r#"{"every": "1h", "channels": ["am"]}"#, "Alertmanager takes alerts, not reports"),
            (r#"{"every": "1h", "channels": []}"#, "at least one channel"),
            (r#"{"channels": ["ops"]}"#, "missing required key \"every\""),
            (r#"{"every": "1h", "channels": ["ops"], "zone": "CET"}"#, "unknown key"),
        ];
        for (report, want) in cases {
            let e = load(&format!(r#"{{{CHANNELS}, "reports": [{report}]}}"#)).unwrap_err();
            assert!(e.contains(want) && e.contains("reports[0]"), "{report}: {e}");
        }
        let twice = r#"{"every": "1h", "channels": ["ops"]}"#;
        let e = load(&format!(r#"{{{CHANNELS}, "reports": [{twice}, {twice}]}}"#)).unwrap_err();
        assert!(e.contains("two reports are named \"hourly\""), "{e}");
    }
}
