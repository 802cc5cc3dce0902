//! The effective configuration as JSON, for `hostwatch check`: environment substituted,
//! defaults filled in, durations and thresholds written the way configs spell them, and every
//! secret replaced by `"<redacted>"`.
//!
//! The output uses the config's own keys, so it reads like a config file. Not the place for
//! checks: a `Config` is valid by construction.

use super::channels::{ChannelKind, EmailTls, SlackTarget, TeamsFormat, WebhookFormat};
use super::units::format_duration;
use super::{Channel, CollectBackend, Config, LabelKey, Route, Rule, Window};
use crate::silence::Silence;
use crate::timefmt::rfc3339;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// Key fragments that mark a plugin setting as secret.
const SECRET_WORDS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "auth",
    "bearer",
    "dsn",
    "webhook",
    "cookie",
    "private",
];

impl Config {
    /// The effective configuration, secrets redacted.
    pub fn to_effective_json(&self) -> Value {
        let collect = json!({
            "backend": match self.collect.backend {
                CollectBackend::Auto => "auto",
                CollectBackend::Proc => "proc",
                CollectBackend::Sysinfo => "sysinfo",
            },
            "include": label_globs(&self.collect.include),
            "exclude": label_globs(&self.collect.exclude),
            "processes": self.collect.processes.iter().map(process_json).collect::<Vec<_>>(),
            "root": self.collect.root.as_deref().map_or("/".into(), |r| r.display().to_string()),
        });
        let mut escalation = Map::new();
        if let Some(d) = self.escalation.remind_every {
            escalation.insert("remind_every".into(), format_duration(d).into());
        }
        if let Some(d) = self.escalation.critical_after {
            escalation.insert("critical_after".into(), format_duration(d).into());
        }
        let channels: Map<String, Value> =
            self.channels.iter().map(|(name, ch)| (name.clone(), channel_json(ch))).collect();
        let api = self.api.as_ref().map(|a| {
            json!({"listen": a.listen.to_string(), "token": a.token.as_ref().map(|_| REDACTED)})
        });
        let heartbeat = self.heartbeat.as_ref().map(|h| {
            json!({
                "url": redact_url(h.url.expose()),
                "every": format_duration(h.every),
                "method": match h.method {
                    super::HeartbeatMethod::Get => "get",
                    super::HeartbeatMethod::Post => "post",
                },
                "timeout": h.timeout.map(format_duration),
            })
        });
        let history = history_json(&self.history, self.interval);
        json!({
            "host": self.host,
            "interval": format_duration(self.interval),
            "state_dir": self.state_dir.display().to_string(),
            "collect": collect,
            "rules": self.rules.iter().map(rule_json).collect::<Vec<_>>(),
            "escalation": escalation,
            "flap": flap_json(self.flap),
            "delivery": {
                "timeout": format_duration(self.delivery.timeout),
                "retry_base": format_duration(self.delivery.retry_base),
                "retry_max": format_duration(self.delivery.retry_max),
                "give_up_after": format_duration(self.delivery.give_up_after),
                "queue": self.delivery.queue,
            },
            "channels": channels,
            "routes": self.routes.iter().map(route_json).collect::<Vec<_>>(),
            "silences": self.silences.iter().map(silence_json).collect::<Vec<_>>(),
            "api": api,
            "heartbeat": heartbeat,
            "history": history,
            "reports": self.reports.iter().map(|r| json!({
                "name": r.name,
                "every": format_duration(r.every),
                "at": r.at.map(|s| format!("{:02}:{:02}", s / 3600, s / 60 % 60)),
                "channels": r.channels,
            })).collect::<Vec<_>>(),
            "display": {"timezone": self.display.timezone},
        })
    }
}

/// The `history` section, secrets redacted; the file's size is shown, since it is
/// allocated whole.
fn history_json(h: &super::HistoryConfig, interval: std::time::Duration) -> Value {
    if !h.any() {
        return Value::Bool(false);
    }
    let mut out = Map::new();
    match &h.file {
        Some(f) => {
            out.insert("file".into(), true.into());
            out.insert("retention".into(), format_duration(f.retention).into());
            out.insert("resolution".into(), format_duration(f.resolution).into());
            out.insert("raw".into(), format_duration(f.raw).into());
            out.insert("max_series".into(), f.max_series.into());
            out.insert("file_bytes".into(), f.file_bytes(interval).into());
        }
        None => {
            out.insert("file".into(), false.into());
        }
    }
    if let Some(s) = &h.sqlite {
        out.insert(
            "sqlite".into(),
            json!({"path": s.path.display().to_string(), "retention": format_duration(s.retention)}),
        );
    }
    if let Some(i) = &h.influxdb {
        let mut m = Map::new();
        m.insert("url".into(), redact_url(i.url.expose()).into());
        match &i.target {
            super::InfluxTarget::V1 { database, username, password } => {
                m.insert("database".into(), database.clone().into());
                if let Some(u) = username {
                    m.insert("username".into(), u.clone().into());
                }
                if password.is_some() {
                    m.insert("password".into(), REDACTED.into());
                }
            }
            super::InfluxTarget::V2 { org, bucket, .. } => {
                m.insert("org".into(), org.clone().into());
                m.insert("bucket".into(), bucket.clone().into());
                m.insert("token".into(), REDACTED.into());
            }
        }
        m.insert("buffer".into(), i.buffer.into());
        m.insert("timeout".into(), i.timeout.map(format_duration).into());
        out.insert("influxdb".into(), m.into());
    }
    out.into()
}

fn process_json(group: &super::ProcessGroup) -> Value {
    use super::ProcessMatcher;
    match &group.matcher {
        ProcessMatcher::Comm(c) => json!({"name": group.name, "comm": c}),
        ProcessMatcher::Cmdline(g) => json!({"name": group.name, "cmdline": g}),
        ProcessMatcher::Pidfile(p) => {
            json!({"name": group.name, "pidfile": p.display().to_string()})
        }
    }
}

fn label_globs(map: &BTreeMap<LabelKey, Vec<String>>) -> Value {
    map.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect::<Map<_, _>>().into()
}

fn matchers_json(matchers: &[(LabelKey, String)]) -> Value {
    matchers.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect::<Map<_, _>>().into()
}

fn rule_json(rule: &Rule) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), rule.name.clone().into());
    m.insert("metric".into(), rule.metric.name().into());
    if !rule.matchers.is_empty() {
        m.insert("match".into(), matchers_json(&rule.matchers));
    }
    for (key, t) in [("warn", &rule.warn), ("crit", &rule.crit), ("clear", &rule.clear)] {
        if let Some(t) = t {
            m.insert(key.into(), t.text.clone().into());
        }
    }
    let window = match rule.window {
        Window::Latest => None,
        Window::For(d) => Some(("for", format_duration(d))),
        Window::Avg(d) => Some(("avg", format_duration(d))),
        Window::Max(d) => Some(("max", format_duration(d))),
        Window::Min(d) => Some(("min", format_duration(d))),
        Window::Occurrences { n, m } => Some(("occurrences", format!("{n}/{m}"))),
    };
    if let Some((key, text)) = window {
        m.insert(key.into(), text.into());
    }
    if let Some(channels) = &rule.channels {
        m.insert("channels".into(), json!(channels));
    }
    if let Some(description) = &rule.description {
        m.insert("description".into(), description.clone().into());
    }
    match rule.flap {
        super::RuleFlap::Inherit => {}
        super::RuleFlap::Off => {
            m.insert("flap".into(), false.into());
        }
        super::RuleFlap::Limits(l) => {
            m.insert("flap".into(), flap_json(Some(l)));
        }
    }
    if let Some(summary) = &rule.summary {
        m.insert("summary".into(), summary.clone().into());
    }
    if let Some(url) = &rule.runbook_url {
        m.insert("runbook_url".into(), url.clone().into());
    }
    if !rule.labels.is_empty() {
        m.insert("labels".into(), json!(rule.labels));
    }
    m.into()
}

/// `{"high": 50, "low": 25}`, or `false` when off.
fn flap_json(flap: Option<super::FlapLimits>) -> Value {
    flap.map_or(Value::Bool(false), |l| json!({"high": l.high, "low": l.low}))
}

fn route_json(route: &Route) -> Value {
    let mut m = Map::new();
    if let Some(s) = route.severity {
        m.insert("severity".into(), s.as_str().into());
    }
    if let Some(r) = &route.rule {
        m.insert("rule".into(), r.clone().into());
    }
    if !route.matchers.is_empty() {
        let matchers = route.matchers.iter().map(|(k, v)| (k.clone(), json!(v)));
        m.insert("match".into(), matchers.collect::<Map<_, _>>().into());
    }
    m.insert("channels".into(), json!(route.channels));
    m.into()
}

fn silence_json(silence: &Silence) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), silence.id.clone().into());
    if let Some(r) = &silence.rule {
        m.insert("rule".into(), r.clone().into());
    }
    if !silence.matchers.is_empty() {
        m.insert("match".into(), json!(silence.matchers));
    }
    if silence.until.is_finite() {
        m.insert("until".into(), rfc3339(silence.until).into());
    }
    if let Some(s) = &silence.schedule {
        m.insert("schedule".into(), serde_json::to_value(s).unwrap_or_default());
    }
    if !silence.comment.is_empty() {
        m.insert("comment".into(), silence.comment.clone().into());
    }
    m.into()
}

fn channel_json(channel: &Channel) -> Value {
    let opt_duration = |d: Option<std::time::Duration>| d.map(format_duration);
    let mut v = match &channel.kind {
        ChannelKind::Slack(s) => {
            let mut v = match &s.target {
                SlackTarget::Webhook { url } => json!({"webhook_url": redact_url(url.expose())}),
                SlackTarget::Bot { channel, .. } => json!({"token": REDACTED, "channel": channel}),
            };
            if let Some(u) = &s.username {
                v["username"] = u.clone().into();
            }
            v
        }
        ChannelKind::Teams(t) => {
            let format = match t.format {
                TeamsFormat::Workflows => "workflows",
                TeamsFormat::MessageCard => "messagecard",
            };
            json!({"webhook_url": redact_url(t.webhook_url.expose()), "format": format})
        }
        ChannelKind::Email(e) => json!({
            "server": e.server(),
            "tls": match e.tls {
                EmailTls::StartTls => "starttls",
                EmailTls::Tls => "tls",
                EmailTls::None => "none",
            },
            "username": e.username,
            "password": e.password.as_ref().map(|_| REDACTED),
            "from": e.from,
            "to": e.to,
            "ca_file": e.ca_file.as_ref().map(|p| p.display().to_string()),
            "insecure_skip_verify": e.insecure_skip_verify,
            "allow_plaintext_auth": e.allow_plaintext_auth,
            "timeout": opt_duration(e.timeout),
        }),
        ChannelKind::Webhook(w) => {
            let headers: Map<_, _> =
                w.headers.iter().map(|(k, _)| (k.clone(), json!(REDACTED))).collect();
            let format = match w.format {
                WebhookFormat::Json => "json",
                WebhookFormat::AlertmanagerWebhook => "alertmanager-webhook",
            };
            json!({
                // A generic webhook's path is often its secret (Discord, many SaaS hooks).
                "url": redact_url(w.url.expose()),
                "headers": headers,
                "format": format,
                "timeout": opt_duration(w.timeout),
            })
        }
        ChannelKind::Alertmanager(a) => json!({
            "url": redact_url_secrets(a.url.expose()),
            "timeout": opt_duration(a.timeout),
            "resend_every": format_duration(a.resend_every),
            "watchdog": a.watchdog,
        }),
        ChannelKind::Exec(x) => json!({
            "command": x.command,
            "timeout": format_duration(x.timeout),
            "env": x.env.keys().map(|k| (k.clone(), json!(REDACTED))).collect::<Map<_, _>>(),
            "cwd": x.cwd.as_ref().map(|p| p.display().to_string()),
        }),
        ChannelKind::Plugin(p) => json!({
            "path": p.path.display().to_string(),
            "config": redact_secret_keys(&p.config),
        }),
    };
    let templates = match &channel.kind {
        ChannelKind::Slack(c) => Some(&c.templates),
        ChannelKind::Teams(c) => Some(&c.templates),
        ChannelKind::Email(c) => Some(&c.templates),
        ChannelKind::Webhook(c) => Some(&c.templates),
        ChannelKind::Exec(c) => Some(&c.templates),
        ChannelKind::Alertmanager(_) | ChannelKind::Plugin(_) => None,
    };
    if let Value::Object(m) = &mut v {
        m.retain(|_, value| !value.is_null());
        m.insert("type".into(), channel.kind.type_name().into());
        for (key, value) in channel.pacing.to_json(channel.kind.type_name()) {
            m.insert(key.into(), value);
        }
        if let Some(t) = templates {
            for (key, template) in [("title", &t.title), ("text", &t.text)] {
                if let Some(template) = template {
                    m.insert(key.into(), template.source().into());
                }
            }
        }
    }
    v
}

/// Splits `scheme://authority rest` into its three parts. User info ends at the last `@`
/// when what comes before it looks like `user:password` (a password may hold `/`, `?` or
/// `#` unescaped), so no part of a password is ever taken for the host or the path.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let userinfo_end = rest.rfind('@').filter(|&at| {
        let candidate = &rest[..at];
        match (candidate.find(':'), candidate.find(['/', '?', '#'])) {
            (_, None) => true,
            (Some(colon), Some(delimiter)) => colon < delimiter,
            (None, Some(_)) => false,
        }
    });
    let host_start = userinfo_end.map_or(0, |at| at + 1);
    let end = rest[host_start..].find(['/', '?', '#']).map_or(rest.len(), |i| host_start + i);
    Some((scheme, &rest[..end], &rest[end..]))
}

/// A URL whose path and query are the secret (Slack and Teams webhooks): keeps
/// `scheme://host[:port]` and redacts the rest (`https://hooks.slack.com/<redacted>`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, authority, rest)) = split_url(url) else { return REDACTED.to_owned() };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if rest.is_empty() || rest == "/" {
        format!("{scheme}://{host}{rest}")
    } else {
        format!("{scheme}://{host}/{REDACTED}")
    }
}

/// A URL that may carry credentials: redacts the user info, the query and the fragment and
/// keeps the rest (`https://<redacted>@am.example.com/path?<redacted>`).
pub fn redact_url_secrets(url: &str) -> String {
    let Some((scheme, authority, rest)) = split_url(url) else { return REDACTED.to_owned() };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_owned(),
    };
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (path, tail) = rest.split_at(path_end);
    let tail = match tail.chars().next() {
        Some(c) => format!("{c}{REDACTED}"),
        None => String::new(),
    };
    format!("{scheme}://{authority}{path}{tail}")
}

/// Plugin settings with the values of secret-looking keys (password, token, key, …)
/// redacted, at any depth.
pub(crate) fn redact_secret_keys(value: &Value) -> Value {
    match value {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
                    (k.clone(), json!(REDACTED))
                } else {
                    (k.clone(), redact_secret_keys(v))
                }
            })
            .collect::<Map<_, _>>()
            .into(),
        Value::Array(items) => items.iter().map(redact_secret_keys).collect::<Vec<_>>().into(),
        // Values that carry credentials whatever their key is called.
        Value::String(s) if s.contains("://") => json!(redact_url_secrets(s)),
        Value::String(s) if s.starts_with("Bearer ") || s.starts_with("Basic ") => json!(REDACTED),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_keep_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/XX"),
            "https://hooks.slack.com/<redacted>"
        );
        assert_eq!(
            redact_url("https://u:p@x.example:8443/a?b=c"),
            "https://x.example:8443/<redacted>"
        );
        assert_eq!(redact_url("http://127.0.0.1:9000/"), "http://127.0.0.1:9000/");
        assert_eq!(redact_url("not a url"), "<redacted>");
        // Passwords holding URL delimiters never leak a part of themselves.
        for url in [
            "https://admin:pa#ss@am.example/x",
            "https://bob:s3cr?et@am.example",
            "https://u:p/w@hooks.example/s",
        ] {
            let shown = redact_url(url);
            assert!(
                !shown.contains("pa#") && !shown.contains("s3cr") && !shown.contains("u:p"),
                "{shown}"
            );
            let shown = redact_url_secrets(url);
            assert!(
                !shown.contains("admin") && !shown.contains("bob") && !shown.contains("u:p"),
                "{shown}"
            );
        }
        assert_eq!(
            redact_url("https://h.example/p?mail=a@b.example"),
            "https://h.example/<redacted>"
        );
    }

    #[test]
    fn other_urls_lose_user_info_and_query() {
        assert_eq!(redact_url_secrets("http://am:9093"), "http://am:9093");
        assert_eq!(
            redact_url_secrets("https://u:p@h/x/y?token=1#f"),
            "https://<redacted>@h/x/y?<redacted>"
        );
        assert_eq!(redact_url_secrets("https://h/x#frag"), "https://h/x#<redacted>");
    }

    #[test]
    fn plugin_settings_hide_secret_keys_at_any_depth() {
        let v =
            json!({"routing_key": "abc", "nested": [{"Password": "x", "team": "infra"}], "n": 1});
        let more = json!({"passwd": "p", "dsn": "postgres://u:pw@db/x", "endpoint": "https://u:pw@h/x?t=1",
                          "headers": [{"name": "Authorization", "value": "Bearer abc"}]});
        let shown = redact_secret_keys(&more).to_string();
        for secret in ["\"p\"", "u:pw", "t=1", "Bearer abc"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(
            redact_secret_keys(&v),
            json!({"routing_key": REDACTED, "nested": [{"Password": REDACTED, "team": "infra"}],
                   "n": 1})
        );
    }
}
