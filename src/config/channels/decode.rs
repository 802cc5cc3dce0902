//! Decoding and checks of each channel type's settings.
//!
//! Error messages never repeat a URL, token or password: they may be secrets.

use super::pacing::{self, Pacing};
use super::{
    AlertmanagerConfig, CHANNEL_TYPES, Channel, ChannelKind, DEFAULT_EXEC_TIMEOUT,
    DEFAULT_RESEND_EVERY, EmailConfig, EmailTls, ExecConfig, PluginConfig, SlackConfig,
    SlackTarget, TeamsConfig, TeamsFormat, Template, Templates, WebhookConfig, WebhookFormat,
};
use crate::config::Secret;
use crate::config::decode::{Decoder, Members, get, member, valid_name};
use crate::config::error::{hint, key_path, suggest};
use crate::config::json::{Node, NodeValue};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const SLACK_KEYS: &[&str] =
    &["type", "webhook_url", "token", "channel", "username", "title", "text"];
const TEAMS_KEYS: &[&str] = &["type", "webhook_url", "format", "title", "text"];
const EMAIL_KEYS: &[&str] = &[
    "type",
    "server",
    "tls",
    "username",
    "password",
    "from",
    "to",
    "ca_file",
    "insecure_skip_verify",
    "allow_plaintext_auth",
    "timeout",
    "title",
    "text",
];
const WEBHOOK_KEYS: &[&str] = &["type", "url", "headers", "format", "timeout", "title", "text"];
const ALERTMANAGER_KEYS: &[&str] = &["type", "url", "timeout", "resend_every", "watchdog"];
const EXEC_KEYS: &[&str] = &["type", "command", "timeout", "env", "cwd", "title", "text"];
const PLUGIN_KEYS: &[&str] = &["type", "path", "config"];

/// Decodes the `channels` object. Returns the valid channels and every name written, valid
/// or not, so references to a broken channel are not reported twice.
pub(crate) fn decode_channels(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
) -> (BTreeMap<String, Channel>, Vec<String>) {
    let mut out = BTreeMap::new();
    let example = "{\"ops\": {\"type\": \"slack\", \"webhook_url\": \"${SLACK_WEBHOOK_URL}\"}}";
    let Some(members) = d.map(node, path, example) else { return (out, Vec::new()) };
    let mut names = Vec::new();
    for (key, value) in members {
        let p = key_path(path, &key.name);
        names.push(key.name.clone());
        if !valid_name(&key.name) {
            d.key_error(
                key,
                &p,
                format!(
                    "invalid channel name {:?} (use letters, digits, '_', '.' and '-')",
                    key.name
                ),
            );
            continue;
        }
        let before = d.errors.len();
        let kind = decode_kind(d, value, &p);
        let pacing = match (&kind, &value.value) {
            (Some(kind), NodeValue::Object(members)) => {
                pacing::decode_pacing(d, members, &p, kind.type_name())
            }
            _ => Pacing::default(),
        };
        if let Some(kind) = kind.filter(|_| d.errors.len() == before) {
            out.insert(key.name.clone(), Channel { name: key.name.clone(), kind, pacing });
        }
    }
    (out, names)
}

fn decode_kind(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<ChannelKind> {
    let example = "{\"type\": \"slack\", \"webhook_url\": \"...\"}";
    let members = d.map(node, path, example)?;
    let type_node = d.required(get(members, "type"), node, path, "type")?;
    let type_path = key_path(path, "type");
    let kind = d.string(type_node, &type_path, "\"slack\"")?;
    let (keys, feature) = match kind {
        "slack" => (SLACK_KEYS, cfg!(feature = "slack")),
        "teams" => (TEAMS_KEYS, cfg!(feature = "teams")),
        "email" => (EMAIL_KEYS, cfg!(feature = "email")),
        "webhook" => (WEBHOOK_KEYS, cfg!(feature = "webhook")),
        "alertmanager" => (ALERTMANAGER_KEYS, true),
        "exec" => (EXEC_KEYS, true),
        "plugin" => (PLUGIN_KEYS, cfg!(feature = "plugins")),
        other => {
            let near = match suggest(other, CHANNEL_TYPES.iter().copied()) {
                Some(s) => format!("did you mean {s:?}? "),
                None => String::new(),
            };
            let message = format!(
                "unknown channel type {other:?} ({near}expected one of {})",
                CHANNEL_TYPES.join(", ")
            );
            d.error(type_node, &type_path, message);
            return None;
        }
    };
    let allowed: Vec<&str> = keys.iter().chain(pacing::PACING_KEYS).copied().collect();
    d.object(node, path, &allowed, example);
    if !feature {
        let why = if kind == "plugin" {
            "this hostwatch was built without plugin support (a static build cannot load \
             shared libraries); use an \"exec\" channel instead"
                .to_owned()
        } else {
            format!("this hostwatch was built without {kind} support (cargo feature {kind:?})")
        };
        d.error(type_node, &type_path, why);
        return None;
    }
    let c = Fields { members, path, node };
    Some(match kind {
        "slack" => ChannelKind::Slack(slack(d, &c)?),
        "teams" => ChannelKind::Teams(teams(d, &c)?),
        "email" => ChannelKind::Email(email(d, &c)?),
        "webhook" => ChannelKind::Webhook(webhook(d, &c)?),
        "alertmanager" => ChannelKind::Alertmanager(alertmanager(d, &c)?),
        "exec" => ChannelKind::Exec(exec(d, &c)?),
        _ => ChannelKind::Plugin(plugin(d, &c)?),
    })
}

/// One channel object being decoded.
struct Fields<'n> {
    members: &'n Members,
    path: &'n str,
    node: &'n Node,
}

impl<'n> Fields<'n> {
    fn opt(&self, key: &str) -> Option<(&'n Node, String)> {
        member(self.members, self.path, key)
    }

    fn req(&self, d: &mut Decoder<'_>, key: &str) -> Option<(&'n Node, String)> {
        let found = self.opt(key);
        d.required(found.as_ref().map(|(n, _)| *n), self.node, self.path, key)?;
        found
    }

    fn string(&self, d: &mut Decoder<'_>, key: &str, example: &str) -> Option<String> {
        let (n, p) = self.opt(key)?;
        d.non_empty(n, &p, example)
    }

    fn req_string(&self, d: &mut Decoder<'_>, key: &str, example: &str) -> Option<String> {
        let (n, p) = self.req(d, key)?;
        d.non_empty(n, &p, example)
    }

    fn url(&self, d: &mut Decoder<'_>, key: &str) -> Option<String> {
        let (n, p) = self.req(d, key)?;
        let url = d.string(n, &p, "\"https://example.com/hook\"")?;
        check_url(url).map_err(|m| d.error(n, &p, m)).ok()?;
        Some(url.to_owned())
    }

    /// `title` and `text`: each compiled, an error placed at the field in the string.
    fn templates(&self, d: &mut Decoder<'_>) -> Templates {
        let mut one = |key: &str, example: &str| {
            let (n, p) = self.opt(key)?;
            let text = d.string(n, &p, example)?;
            // Where the string's text is written depends on how (a JSON string: after its
            // quote; a `\` escape before the problem, rare in a template, shifts it).
            Template::parse(text).map_err(|e| d.error_in_string(n, e.offset, &p, e.message)).ok()
        };
        Templates {
            title: one("title", "\"{{severity}} {{rule}} on {{host}}\""),
            text: one("text", "\"{{summary}} (runbook: {{runbook_url|none}})\""),
        }
    }

    fn timeout(&self, d: &mut Decoder<'_>, key: &str) -> Option<Duration> {
        let (n, p) = self.opt(key)?;
        d.duration(n, &p)
    }

    fn choice<T: Copy>(
        &self,
        d: &mut Decoder<'_>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        let Some((n, p)) = self.opt(key) else { return default };
        let Some(s) = d.string(n, &p, &format!("{:?}", options[0].0)) else { return default };
        match options.iter().find(|(name, _)| *name == s) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
                d.error(n, &p, format!("unknown {key} {s:?}{}", hint(s, &names)));
                default
            }
        }
    }
}

/// An `http://` or `https://` URL with a host, as the HTTP client reads it
/// ([`crate::notify::http::Target::parse`]: what passes here is what the client sends to,
/// and the redaction agrees on where the user info ends). The message never repeats any
/// part of the URL: it may hold a secret.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err("expected a URL starting with http:// or https://".to_owned());
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL must not contain spaces or control characters".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("the URL has no host".to_owned());
    }
    crate::notify::http::Target::parse(url).map(|_| ())
}

fn slack(d: &mut Decoder<'_>, c: &Fields<'_>) -> Option<SlackConfig> {
    let username = c.string(d, "username", "\"hostwatch\"");
    let target = match (c.opt("webhook_url"), c.opt("token")) {
        (Some(_), Some((n, p))) => {
            d.error(n, &p, "use either \"webhook_url\" or \"token\" with \"channel\", not both");
            return None;
        }
        (Some(_), None) => {
            if let Some((n, p)) = c.opt("channel") {
                let why = "\"channel\" goes with \"token\"; a webhook posts to the channel it \
                           was created for";
                d.error(n, &p, why);
                return None;
            }
            SlackTarget::Webhook { url: c.url(d, "webhook_url")?.into() }
        }
        (None, Some(_)) => {
            let token = c.string(d, "token", "\"${SLACK_BOT_TOKEN}\"");
            let channel = c.req_string(d, "channel", "\"#ops\" or \"C0123456789\"");
            SlackTarget::Bot { token: token?.into(), channel: channel? }
        }
        (None, None) => {
            d.error(
                c.node,
                c.path,
                "a slack channel needs \"webhook_url\", or \"token\" and \"channel\"",
            );
            return None;
        }
    };
    Some(SlackConfig { target, username, templates: c.templates(d) })
}

fn teams(d: &mut Decoder<'_>, c: &Fields<'_>) -> Option<TeamsConfig> {
    let formats =
        [("workflows", TeamsFormat::Workflows), ("messagecard", TeamsFormat::MessageCard)];
    let format = c.choice(d, "format", &formats, TeamsFormat::Workflows);
    let webhook_url = c.url(d, "webhook_url")?;
    let host =
        webhook_url.split("://").nth(1).and_then(|r| r.split(['/', '?', ':']).next()).unwrap_or("");
    if host == "outlook.office.com" || host.ends_with("webhook.office.com") {
        let (n, p) = c.opt("webhook_url")?;
        d.error(
            n,
            &p,
            "Office 365 connector webhooks were retired by Microsoft; create a Workflows \
             webhook (\"When a Teams webhook request is received\") and use its URL",
        );
        return None;
    }
    Some(TeamsConfig { webhook_url: webhook_url.into(), format, templates: c.templates(d) })
}

fn email(d: &mut Decoder<'_>, c: &Fields<'_>) -> Option<EmailConfig> {
    let server = c.req(d, "server").and_then(|(n, p)| {
        let text = d.string(n, &p, "\"smtp.example.com:587\"")?;
        parse_server(text).map_err(|m| d.error(n, &p, m)).ok()
    });
    let tls_options =
        [("starttls", EmailTls::StartTls), ("tls", EmailTls::Tls), ("none", EmailTls::None)];
    let tls = c.choice(d, "tls", &tls_options, EmailTls::StartTls);
    let username = c.string(d, "username", "\"alerts\"");
    let password = c
        .opt("password")
        .and_then(|(n, p)| d.string(n, &p, "\"${SMTP_PASSWORD}\"").map(Secret::from));
    let allow_plaintext_auth =
        c.opt("allow_plaintext_auth").and_then(|(n, p)| d.boolean(n, &p)).unwrap_or(false);
    match (c.opt("username"), c.opt("password")) {
        (Some(_), None) => d.error(c.node, c.path, "\"username\" needs \"password\""),
        (None, Some((n, p))) => d.error(n, &p, "\"password\" needs \"username\""),
        (Some(_), Some((n, p))) if tls == EmailTls::None && !allow_plaintext_auth => d.error(
            n,
            &p,
            "refusing to send a password without TLS (tls is \"none\"); use \"starttls\" or \
             \"tls\", or set \"allow_plaintext_auth\": true on a trusted network",
        ),
        _ => {}
    }
    let from = c.req(d, "from").and_then(|(n, p)| address(d, n, &p));
    let to = c.req(d, "to").and_then(|(n, p)| {
        let items = d.array(n, &p, "[\"oncall@example.com\"]")?;
        if items.is_empty() {
            d.error(n, &p, "needs at least one address");
            return None;
        }
        let before = d.errors.len();
        let list: Vec<String> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| address(d, item, &format!("{p}[{i}]")))
            .collect();
        (d.errors.len() == before).then_some(list)
    });
    let ca_file = c.string(d, "ca_file", "\"/etc/ssl/certs/internal-ca.pem\"").map(PathBuf::from);
    let insecure_skip_verify =
        c.opt("insecure_skip_verify").and_then(|(n, p)| d.boolean(n, &p)).unwrap_or(false);
    let timeout = c.timeout(d, "timeout");
    let (host, port) = server?;
    Some(EmailConfig {
        host,
        port,
        tls,
        username,
        password,
        from: from?,
        to: to?,
        ca_file,
        insecure_skip_verify,
        allow_plaintext_auth,
        timeout,
        templates: c.templates(d),
    })
}

/// `host:port`, `[v6]:port`.
fn parse_server(text: &str) -> Result<(String, u16), String> {
    let shape = "expected \"host:port\" like \"smtp.example.com:587\"";
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(|| shape.to_owned())?;
        (h, p)
    } else {
        text.rsplit_once(':').ok_or_else(|| format!("missing port ({shape})"))?
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(shape.to_owned());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_owned(), p)),
        _ => Err(format!("invalid port {port:?} ({shape})")),
    }
}

fn address(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<String> {
    let s = d.non_empty(node, path, "\"oncall@example.com\"")?;
    let bare = s.rsplit_once('<').map_or(s.as_str(), |(_, a)| a.trim_end_matches('>'));
    match bare.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !bare.contains(char::is_whitespace) =>
        {
            Some(s)
        }
        _ => {
            let example = "\"oncall@example.com\"";
            d.error(
                node,
                path,
                format!("{s:?} is not an e-mail address (expected something like {example})"),
            );
            None
        }
    }
}

fn webhook(d: &mut Decoder<'_>, c: &Fields<'_>) -> Option<WebhookConfig> {
    let url = c.url(d, "url");
    let formats = [
        ("json", WebhookFormat::Json),
        ("alertmanager-webhook", WebhookFormat::AlertmanagerWebhook),
    ];
    let format = c.choice(d, "format", &formats, WebhookFormat::Json);
    let timeout = c.timeout(d, "timeout");
    let mut headers = Vec::new();
    if let Some((n, p)) = c.opt("headers")
        && let Some(map) = d.string_map(n, &p, "{\"Authorization\": \"Bearer ${HOOK_TOKEN}\"}")
    {
        for (key, value) in map {
            let hp = key_path(&p, &key.name);
            let token = |ch: char| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch);
            if key.name.is_empty() || !key.name.chars().all(token) {
                d.key_error(&key, &hp, format!("invalid header name {:?}", key.name));
            } else if value.contains(['\r', '\n', '\0']) {
                d.key_error(&key, &hp, "a header value must not contain line breaks");
            } else {
                headers.push((key.name, value.into()));
            }
        }
    }
    let templates = c.templates(d);
    Some(WebhookConfig { url: url?.into(), headers, format, timeout, templates })
}

fn alertmanager(d: &mut Decoder<'_>, c: &Fields<'_>) -> Option<AlertmanagerConfig> {
    let url = c.url(d, "url");
    let timeout = c.timeout(d, "timeout");
    let resend_every =
        c.opt("resend_every").map_or(Some(DEFAULT_RESEND_EVERY), |(n, p)| d.duration(n, &p));
    let watchdog = match c.opt("watchdog") {
        Some((n, p)) => d.boolean(n, &p)?,
        None => false,
    };
    Some(AlertmanagerConfig { url: url?.into(), timeout, resend_every: resend_every?, watchdog })
}

fn exec(d: &mut Decoder<'_>, c: &Fields<'_>) -> Option<ExecConfig> {
    let command = c.req(d, "command").and_then(|(n, p)| {
        let example = "[\"/usr/local/bin/page\", \"--team\", \"infra\"]";
        if matches!(&n.value, NodeValue::String(_)) {
            let why = "a program and its arguments; no shell is used";
            d.error(n, &p, format!("expected an array like {example} ({why})"));
            return None;
        }
        if matches!(&n.value, NodeValue::Array(a) if a.is_empty()) {
            let message =
                format!("the command must not be empty (expected something like {example})");
            d.error(n, &p, message);
            return None;
        }
        let args = d.strings(n, &p, example, "\"/usr/local/bin/page\"")?;
        if args.iter().any(|a| a.contains('\0')) {
            d.error(n, &p, "an argument contains a NUL character, which no program can receive");
            return None;
        }
        Some(args)
    });
    let timeout = c.opt("timeout").map_or(Some(DEFAULT_EXEC_TIMEOUT), |(n, p)| d.duration(n, &p));
    let mut env = BTreeMap::new();
    if let Some((n, p)) = c.opt("env")
        && let Some(map) = d.string_map(n, &p, "{\"PAGER_TEAM\": \"infra\"}")
    {
        for (key, value) in map {
            if key.name.is_empty() || key.name.contains(['=', '\0']) {
                d.key_error(
                    &key,
                    &key_path(&p, &key.name),
                    format!("invalid environment variable name {:?}", key.name),
                );
            } else if value.contains('\0') {
                d.key_error(
                    &key,
                    &key_path(&p, &key.name),
                    "the value contains a NUL character, which no program can receive",
                );
            } else {
                env.insert(key.name, value.into());
            }
        }
    }
    let cwd = c.string(d, "cwd", "\"/var/lib/hostwatch\"").map(PathBuf::from);
    let templates = c.templates(d);
    Some(ExecConfig { command: command?, timeout: timeout?, env, cwd, templates })
}

fn plugin(d: &mut Decoder<'_>, c: &Fields<'_>) -> Option<PluginConfig> {
    let path = c.req_string(d, "path", "\"/usr/lib/hostwatch/plugins/libpager.so\"")?;
    let config = c.opt("config").map_or_else(|| serde_json::json!({}), |(n, _)| n.to_value());
    Some(PluginConfig { path: PathBuf::from(path), config })
}
