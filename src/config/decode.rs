//! Typed decoding of the spanned tree into a [`Config`], with every check that needs no I/O.
//!
//! The [`Decoder`] collects errors instead of stopping at the first, so one `hostwatch check`
//! shows everything wrong. This file holds the shared helpers and the top-level, `collect`,
//! `escalation` and `routes` sections; rules live in `rules`, channels in `channels`.
//! Not the place for parsing text (`json`, `units`) or the environment (`env`).

use super::channels::decode_channels;
use super::env::{HOST_VAR, INTERVAL_VAR, Overrides};
use super::error::{ConfigError, hint, index_path, key_path, suggest};
use super::json::{Key, Node, NodeValue};
use super::rules::decode_rules;
use super::silences::decode_silences;
use super::units::parse_duration;
use super::{
    ApiConfig, CollectBackend, CollectConfig, Config, Delivery, Escalation, HeartbeatConfig,
    HeartbeatMethod, Route, Rule, RuleSet, Secret, Severity, StateConfig,
};
use crate::glob::{glob_match, is_literal};
use crate::metrics::LabelKey;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The default time between samples.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// How long an open alert may go without data before it resolves, unless configured.
pub const DEFAULT_NODATA_RESOLVE_AFTER: Duration = Duration::from_secs(3600);
/// The default state directory when running as root.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/hostwatch";

/// Where state lives when the config does not say: `/var/lib/hostwatch` for root, else
/// `$XDG_STATE_HOME/hostwatch` or `~/.local/state/hostwatch`, so an unprivileged user can run
/// hostwatch without a config file.
pub fn default_state_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from(DEFAULT_STATE_DIR);
    }
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    from_env("XDG_STATE_HOME")
        .or_else(|| from_env("HOME").map(|h| h.join(".local/state")))
        .map(|base| base.join("hostwatch"))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

const TOP_KEYS: &[&str] = &[
    "host",
    "interval",
    "state_dir",
    "state",
    "collect",
    "rules",
    "escalation",
    "nodata_resolve_after",
    "flap",
    "channels",
    "routes",
    "silences",
    "delivery",
    "api",
    "heartbeat",
    "history",
    "reports",
    "display",
];
const API_KEYS: &[&str] = &["listen", "token"];
const HEARTBEAT_KEYS: &[&str] = &["url", "every", "method", "timeout"];
/// The heartbeat's default period.
const DEFAULT_HEARTBEAT_EVERY: Duration = Duration::from_secs(60);
const DELIVERY_KEYS: &[&str] = &["timeout", "retry_base", "retry_max", "give_up_after", "queue"];
const COLLECT_KEYS: &[&str] = &["backend", "include", "exclude", "processes", "root"];
const ESCALATION_KEYS: &[&str] = &["remind_every", "critical_after"];
const ROUTE_KEYS: &[&str] = &["severity", "rule", "match", "channels"];
const LABEL_NAMES: &[&str] = &["core", "mount", "device", "iface", "name"];

/// An object's members.
pub(crate) type Members = [(Key, Node)];

/// Collects errors while decoding; every helper reports a problem and returns `None`.
pub(crate) struct Decoder<'a> {
    file: &'a str,
    /// Errors found so far.
    pub errors: Vec<ConfigError>,
}

impl<'a> Decoder<'a> {
    /// A decoder for a tree read from `file`.
    pub fn new(file: &'a str) -> Self {
        Decoder { file, errors: Vec::new() }
    }

    /// Reports `message` at the position of `node`.
    pub fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::at(self.file, node.line, node.col, path, message));
    }

    /// Reports `message` at the character `offset` of the string `node` holds, where the file
    /// writes it ([`Node::text_position`]: after a JSON string's opening quote, inside a YAML
    /// plain, quoted or literal scalar, else at the node).
    pub fn error_in_string(
        &mut self,
        node: &Node,
        offset: usize,
        path: &str,
        message: impl Into<String>,
    ) {
        let (line, col) = node.text_position(offset);
        self.errors.push(ConfigError::at(self.file, line, col, path, message));
    }

    /// Reports `message` at the position of `key`.
    pub fn key_error(&mut self, key: &Key, path: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::at(self.file, key.line, key.col, path, message));
    }

    /// Reports that `node` is not of the kind `what` describes (`a string like "5s"`).
    pub fn wrong_type(&mut self, node: &Node, path: &str, what: &str) {
        self.error(node, path, format!("expected {what}, found {}", node.kind()));
    }

    /// The members of an object, after reporting every key not in `allowed`.
    pub fn object<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
        example: &str,
    ) -> Option<&'n Members> {
        let NodeValue::Object(members) = &node.value else {
            self.wrong_type(node, path, &format!("an object like {example}"));
            return None;
        };
        for (key, _) in members {
            if !allowed.contains(&key.name.as_str()) {
                let message = match suggest(&key.name, allowed.iter().copied()) {
                    Some(s) => format!("unknown key (did you mean {s:?}?)"),
                    None => format!("unknown key (expected one of {})", allowed.join(", ")),
                };
                self.key_error(key, &key_path(path, &key.name), message);
            }
        }
        Some(members)
    }

    /// The members of an object whose keys are names chosen by the operator.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str, example: &str) -> Option<&'n Members> {
        match &node.value {
            NodeValue::Object(members) => Some(members),
            _ => {
                self.wrong_type(node, path, &format!("an object like {example}"));
                None
            }
        }
    }

    /// A string value.
    pub fn string<'n>(&mut self, node: &'n Node, path: &str, example: &str) -> Option<&'n str> {
        match &node.value {
            NodeValue::String(s) => Some(s),
            _ => {
                self.wrong_type(node, path, &format!("a string like {example}"));
                None
            }
        }
    }

    /// A string value that must not be empty.
    pub fn non_empty(&mut self, node: &Node, path: &str, example: &str) -> Option<String> {
        let s = self.string(node, path, example)?;
        if s.trim().is_empty() {
            self.error(
                node,
                path,
                format!("must not be empty (expected something like {example})"),
            );
            return None;
        }
        Some(s.to_owned())
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            NodeValue::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, path, "true or false");
                None
            }
        }
    }

    /// A duration string such as `"5s"`.
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.string(node, path, "\"5s\"")?;
        parse_duration(text).map_err(|e| self.error(node, path, e)).ok()
    }

    /// The items of an array.
    pub fn array<'n>(&mut self, node: &'n Node, path: &str, example: &str) -> Option<&'n [Node]> {
        match &node.value {
            NodeValue::Array(items) => Some(items),
            _ => {
                self.wrong_type(node, path, &format!("an array like {example}"));
                None
            }
        }
    }

    /// An array of non-empty strings; `None` if any item is wrong.
    pub fn strings(
        &mut self,
        node: &Node,
        path: &str,
        example: &str,
        item_example: &str,
    ) -> Option<Vec<String>> {
        let items = self.array(node, path, example)?;
        let before = self.errors.len();
        let out: Vec<String> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.non_empty(item, &index_path(path, i), item_example))
            .collect();
        (self.errors.len() == before).then_some(out)
    }

    /// An object of string values (`{"X-Team": "infra"}`), members in file order.
    pub fn string_map(
        &mut self,
        node: &Node,
        path: &str,
        example: &str,
    ) -> Option<Vec<(Key, String)>> {
        let members = self.map(node, path, example)?;
        let before = self.errors.len();
        let mut out = Vec::new();
        for (key, value) in members {
            if let Some(s) = self.string(value, &key_path(path, &key.name), "\"value\"") {
                out.push((key.clone(), s.to_owned()));
            }
        }
        (self.errors.len() == before).then_some(out)
    }

    /// Reports `missing required key` at the object when `value` is absent.
    pub fn required<'n>(
        &mut self,
        value: Option<&'n Node>,
        object: &Node,
        path: &str,
        key: &str,
    ) -> Option<&'n Node> {
        if value.is_none() {
            self.error(object, path, format!("missing required key {key:?}"));
        }
        value
    }

    /// Reports every name of `names` not in `known` (channel references).
    pub fn channel_refs(
        &mut self,
        node: &Node,
        path: &str,
        known: &[String],
    ) -> Option<Vec<String>> {
        let names = self.strings(node, path, "[\"ops\"]", "\"ops\"")?;
        let NodeValue::Array(items) = &node.value else { return None };
        let before = self.errors.len();
        for (i, (name, item)) in names.iter().zip(items).enumerate() {
            if !known.iter().any(|k| k == name) {
                let message = if known.is_empty() {
                    format!("unknown channel {name:?} (no channels are defined under \"channels\")")
                } else {
                    let known: Vec<&str> = known.iter().map(String::as_str).collect();
                    format!("unknown channel {name:?}{}", hint(name, &known))
                };
                self.error(item, &index_path(path, i), message);
            }
        }
        (self.errors.len() == before).then_some(names)
    }
}

/// The member `name` of an object, with its path.
pub(crate) fn member<'n>(
    members: &'n Members,
    path: &str,
    name: &str,
) -> Option<(&'n Node, String)> {
    members.iter().find(|(k, _)| k.name == name).map(|(_, v)| (v, key_path(path, name)))
}

/// The member `name` of an object.
pub(crate) fn get<'n>(members: &'n Members, name: &str) -> Option<&'n Node> {
    members.iter().find(|(k, _)| k.name == name).map(|(_, v)| v)
}

/// True when `name` is a valid rule or channel name: `[A-Za-z0-9_.-]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// True when `name` is a valid label name, as Prometheus has it: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Decodes a whole config; `Err` holds every error found, in file order.
pub(crate) fn decode(
    root: &Node,
    file: &str,
    overrides: &Overrides,
) -> Result<Config, Vec<ConfigError>> {
    let mut d = Decoder::new(file);
    let example = "{\"interval\": \"5s\", \"rules\": [...]}";
    let Some(top) = d.object(root, "", TOP_KEYS, example) else {
        return Err(d.errors);
    };

    let TopLevel { host, interval, state_dir, env_errors } = top_level(&mut d, top, overrides);
    let store = get(top, "state").and_then(|n| super::store::decode_state_section(&mut d, n));
    let collect = get(top, "collect").map(|n| decode_collect(&mut d, n)).unwrap_or_default();
    let escalation =
        get(top, "escalation").map(|n| decode_escalation(&mut d, n)).unwrap_or_default();
    let nodata_resolve_after = match get(top, "nodata_resolve_after") {
        Some(n) => d.duration(n, "nodata_resolve_after"),
        None => Some(DEFAULT_NODATA_RESOLVE_AFTER),
    };
    let flap = match get(top, "flap") {
        Some(n) => super::flap::decode_global_flap(&mut d, n),
        None => Some(super::flap::DEFAULT_FLAP),
    };
    let (channels, channel_names) = match get(top, "channels") {
        Some(n) => decode_channels(&mut d, n, "channels"),
        None => (BTreeMap::new(), Vec::new()),
    };
    let (rules, rule_names, rule_set) = match get(top, "rules") {
        Some(n) => {
            let (rules, names) = decode_rules(&mut d, n, interval, &channel_names);
            let set = if rules.is_empty() { RuleSet::None } else { RuleSet::File };
            (rules, names, set)
        }
        // No `rules` key (a config that only adds channels, say): the host is still watched,
        // by the embedded default rules.
        None => {
            let (rules, names) = embedded_default_rules(&mut d, interval, &channel_names);
            (rules, names, RuleSet::Embedded)
        }
    };
    let static_labels: Vec<&str> =
        rules.iter().flat_map(|r| r.labels.keys().map(String::as_str)).collect();
    let routes = get(top, "routes")
        .map(|n| decode_routes(&mut d, n, &rule_names, &static_labels, &channel_names))
        .unwrap_or_default();
    let display =
        get(top, "display").map(|n| super::display::decode_display(&mut d, n)).unwrap_or_default();
    let silences =
        get(top, "silences").map(|n| decode_silences(&mut d, n, &display)).unwrap_or_default();
    let delivery = get(top, "delivery").map(|n| decode_delivery(&mut d, n)).unwrap_or_default();
    if let Some(n) = get(top, "channels") {
        super::channels::check_pacing(&mut d, n, &channels, delivery.give_up_after);
    }
    let api = get(top, "api").and_then(|n| decode_api(&mut d, n));
    let heartbeat = get(top, "heartbeat").and_then(|n| decode_heartbeat(&mut d, n));
    let history = get(top, "history")
        .map(|n| super::history::decode_history(&mut d, n, interval))
        .unwrap_or_default();
    let reports = get(top, "reports")
        .map(|n| super::reports::decode_reports(&mut d, n, &channels))
        .unwrap_or_default();

    check_errors(env_errors, d.errors)?;
    Ok(Config {
        source: file.to_owned(),
        host: host.unwrap_or_else(system_host_name),
        interval: interval.unwrap_or(DEFAULT_INTERVAL),
        state_dir: state_dir.map(PathBuf::from).unwrap_or_else(default_state_dir),
        store,
        collect,
        rules,
        rule_set,
        escalation,
        nodata_resolve_after: nodata_resolve_after.unwrap_or(DEFAULT_NODATA_RESOLVE_AFTER),
        flap,
        channels,
        routes,
        silences,
        delivery,
        api,
        heartbeat,
        history,
        reports,
        display,
    })
}

/// The top-level scalars with their `HOSTWATCH_*` overrides applied.
struct TopLevel {
    /// `None`: not given, or wrong (reported).
    host: Option<String>,
    /// `None` once the interval is known to be wrong, so no window is compared with it.
    interval: Option<Duration>,
    /// `None`: not given, or wrong (reported).
    state_dir: Option<String>,
    /// What is wrong with the override variables.
    env_errors: Vec<ConfigError>,
}

/// The top-level `host`, `interval` and `state_dir` with their `HOSTWATCH_*` overrides.
fn top_level(d: &mut Decoder<'_>, top: &Members, overrides: &Overrides) -> TopLevel {
    let mut host = get(top, "host").and_then(|n| host_name(d, n, "host"));
    // `None` once the interval is known to be wrong, so no window is compared with it.
    let mut interval = match get(top, "interval") {
        Some(n) => d.duration(n, "interval"),
        None => Some(DEFAULT_INTERVAL),
    };
    let mut state_dir =
        get(top, "state_dir").and_then(|n| d.non_empty(n, "state_dir", "\"/var/lib/hostwatch\""));

    let mut env_errors = Vec::new();
    let env_error = |var: &str, m: String| ConfigError::whole(&format!("environment {var}"), m);
    if let Some(v) = &overrides.host {
        match check_host(v) {
            Ok(()) => host = Some(v.clone()),
            Err(m) => env_errors.push(env_error(HOST_VAR, m)),
        }
    }
    if let Some(v) = &overrides.interval {
        match parse_duration(v) {
            Ok(i) => interval = Some(i),
            Err(m) => {
                env_errors.push(env_error(INTERVAL_VAR, m));
                interval = None;
            }
        }
    }
    if let Some(v) = &overrides.state_dir {
        state_dir = Some(v.clone());
    }

    TopLevel { host, interval, state_dir, env_errors }
}

/// The environment's errors, then the file's in file order; `Ok` when there are none.
fn check_errors(
    env_errors: Vec<ConfigError>,
    mut file_errors: Vec<ConfigError>,
) -> Result<(), Vec<ConfigError>> {
    let mut errors = env_errors;
    file_errors.sort_by_key(|e| (e.line, e.column));
    errors.extend(file_errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Decodes what a [`StateConfig`] holds (`state_dir`, `interval`, `rules`, `silences`,
/// `display`) from a
/// tree whose other sections were dropped (see [`super::load_state`]); the channels are
/// known by name only.
pub(crate) fn decode_state(
    root: &Node,
    file: &str,
    overrides: &Overrides,
) -> Result<StateConfig, Vec<ConfigError>> {
    let mut d = Decoder::new(file);
    let example = "{\"interval\": \"5s\", \"rules\": [...]}";
    let Some(top) = d.object(root, "", TOP_KEYS, example) else {
        return Err(d.errors);
    };
    let TopLevel { host, interval, state_dir, env_errors } = top_level(&mut d, top, overrides);
    let store = get(top, "state").and_then(|n| super::store::decode_state_section(&mut d, n));
    let channel_names: Vec<String> = match get(top, "channels").map(|n| &n.value) {
        Some(NodeValue::Object(members)) => members.iter().map(|(k, _)| k.name.clone()).collect(),
        _ => Vec::new(),
    };
    let (rule_names, rule_set) = match get(top, "rules") {
        Some(n) => {
            let (rules, names) = decode_rules(&mut d, n, interval, &channel_names);
            (names, if rules.is_empty() { RuleSet::None } else { RuleSet::File })
        }
        None => (embedded_default_rules(&mut d, interval, &channel_names).1, RuleSet::Embedded),
    };
    let display =
        get(top, "display").map(|n| super::display::decode_display(&mut d, n)).unwrap_or_default();
    let silences =
        get(top, "silences").map(|n| decode_silences(&mut d, n, &display)).unwrap_or_default();
    check_errors(env_errors, d.errors)?;
    Ok(StateConfig {
        display,
        source: file.to_owned(),
        state_dir: state_dir.map(PathBuf::from).unwrap_or_else(default_state_dir),
        host: host.unwrap_or_else(system_host_name),
        store,
        rule_names,
        rule_set,
        silences,
    })
}

/// The rules of the embedded default config, decoded with this config's interval. An error
/// (a default window shorter than a long interval) names the embedded source and says how to
/// replace the defaults.
fn embedded_default_rules(
    d: &mut Decoder<'_>,
    interval: Option<Duration>,
    channel_names: &[String],
) -> (Vec<Rule>, Vec<String>) {
    const SOURCE: &str = "<embedded default rules>";
    let root = super::json::parse(super::DEFAULT_JSON).expect("the embedded default config parses");
    let NodeValue::Object(top) = &root.value else {
        unreachable!("the embedded default config is an object")
    };
    let rules = get(top, "rules").expect("the embedded default config has rules");
    let mut inner = Decoder::new(SOURCE);
    let decoded = decode_rules(&mut inner, rules, interval, channel_names);
    for mut e in inner.errors {
        e.message.push_str(" (the config has no \"rules\" key, so the embedded default rules apply; add \"rules\" to replace them)");
        d.errors.push(e);
    }
    decoded
}

fn decode_api(d: &mut Decoder<'_>, node: &Node) -> Option<ApiConfig> {
    let example = "{\"listen\": \"127.0.0.1:9184\", \"token\": \"${HOSTWATCH_API_TOKEN}\"}";
    let members = d.object(node, "api", API_KEYS, example)?;
    let listen = d.required(get(members, "listen"), node, "api", "listen");
    let listen = listen.and_then(|n| {
        let text = d.string(n, "api.listen", "\"127.0.0.1:9184\"")?;
        parse_listen(text).map_err(|m| d.error(n, "api.listen", m)).ok()
    });
    let token = match member(members, "api", "token") {
        Some((n, path)) => d.string(n, &path, "\"${HOSTWATCH_API_TOKEN}\"").and_then(|t| {
            if t.len() < MIN_TOKEN_LEN {
                d.error(n, &path, format!("a token must be at least {MIN_TOKEN_LEN} characters"));
                return None;
            }
            if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                d.error(n, &path, "a token must not contain spaces or control characters");
                return None;
            }
            Some(Some(Secret::new(t)))
        }),
        None => Some(None),
    };
    Some(ApiConfig { listen: listen?, token: token? })
}

/// The shortest API token accepted (a guessable token is worse than none: it looks safe).
const MIN_TOKEN_LEN: usize = 16;

/// Parses `api.listen` / `run --listen`: `HOST:PORT` with a numeric address (`127.0.0.1:9184`,
/// `[::1]:9184`, `0.0.0.0:9184`), or `localhost:PORT`.
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix("localhost:") {
        let port: u16 =
            port.parse().map_err(|_| format!("invalid port {port:?} (expected 0 to 65535)"))?;
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!("expected an address and port such as \"127.0.0.1:9184\", got {text:?}")
    })
}

fn decode_heartbeat(d: &mut Decoder<'_>, node: &Node) -> Option<HeartbeatConfig> {
    let example = "{\"url\": \"https://hc-ping.com/UUID\", \"every\": \"1m\"}";
    let members = d.object(node, "heartbeat", HEARTBEAT_KEYS, example)?;
    // Every field is checked before any is given up on, so one `check` shows every error.
    let url = d.required(get(members, "url"), node, "heartbeat", "url").and_then(|n| {
        let url = d.string(n, "heartbeat.url", "\"https://hc-ping.com/UUID\"")?;
        super::channels::check_url(url).map_err(|m| d.error(n, "heartbeat.url", m)).ok()?;
        Some(url.to_owned())
    });
    let every = match member(members, "heartbeat", "every") {
        Some((n, path)) => d.duration(n, &path).and_then(|e| {
            if e < Duration::from_secs(1) {
                d.error(n, &path, "a heartbeat period must be at least 1s");
                return None;
            }
            Some(e)
        }),
        None => Some(DEFAULT_HEARTBEAT_EVERY),
    };
    let method = match member(members, "heartbeat", "method") {
        Some((n, path)) => match d.string(n, &path, "\"get\"") {
            Some(m) if m.eq_ignore_ascii_case("get") => Some(HeartbeatMethod::Get),
            Some(m) if m.eq_ignore_ascii_case("post") => Some(HeartbeatMethod::Post),
            Some(other) => {
                d.error(n, &path, format!("unknown method {other:?} (expected get or post)"));
                None
            }
            None => None,
        },
        None => Some(HeartbeatMethod::Get),
    };
    let timeout = match member(members, "heartbeat", "timeout") {
        Some((n, path)) => d.duration(n, &path).map(Some),
        None => Some(None),
    };
    Some(HeartbeatConfig {
        url: Secret::new(url?),
        every: every?,
        method: method?,
        timeout: timeout?,
    })
}

fn check_host(host: &str) -> Result<(), String> {
    if host.trim().is_empty() {
        return Err("the host name must not be empty".to_owned());
    }
    if host.chars().any(char::is_control) {
        return Err("the host name must not contain control characters".to_owned());
    }
    Ok(())
}

fn host_name(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<String> {
    let s = d.string(node, path, "\"web-01\"")?;
    check_host(s).map_err(|m| d.error(node, path, m)).ok()?;
    Some(s.to_owned())
}

/// The system host name, or `localhost` when it cannot be read.
pub fn system_host_name() -> String {
    sysinfo::System::host_name()
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Parses a label key, reporting an unknown one at its key.
fn label_key(d: &mut Decoder<'_>, key: &Key, path: &str) -> Option<LabelKey> {
    let parsed = LabelKey::parse(&key.name);
    if parsed.is_none() {
        d.key_error(
            key,
            path,
            format!("unknown label {:?}{}", key.name, hint(&key.name, LABEL_NAMES)),
        );
    }
    parsed
}

fn decode_collect(d: &mut Decoder<'_>, node: &Node) -> CollectConfig {
    let example = "{\"backend\": \"auto\", \"exclude\": {\"mount\": [\"/snap/*\"]}}";
    let mut out = CollectConfig::default();
    let Some(members) = d.object(node, "collect", COLLECT_KEYS, example) else { return out };
    if let Some((n, path)) = member(members, "collect", "backend")
        && let Some(s) = d.string(n, &path, "\"auto\"")
    {
        match s {
            "auto" => out.backend = CollectBackend::Auto,
            "proc" if cfg!(target_os = "linux") => out.backend = CollectBackend::Proc,
            "proc" => d.error(
                n,
                &path,
                "the proc backend reads Linux /proc; use \"auto\" or \"sysinfo\" here",
            ),
            "sysinfo" => out.backend = CollectBackend::Sysinfo,
            other => d.error(
                n,
                &path,
                format!("unknown backend {other:?}{}", hint(other, &["auto", "proc", "sysinfo"])),
            ),
        }
    }
    for (name, target) in [("include", &mut out.include), ("exclude", &mut out.exclude)] {
        let Some((n, path)) = member(members, "collect", name) else { continue };
        let Some(labels) = d.map(n, &path, "{\"mount\": [\"/snap/*\"]}") else { continue };
        for (key, globs) in labels {
            let label_path = key_path(&path, &key.name);
            let label = label_key(d, key, &label_path);
            if label == Some(LabelKey::Name) {
                d.key_error(
                    key,
                    &label_path,
                    "process groups are chosen by collect.processes, not filtered: remove the \
                     group there instead",
                );
                continue;
            }
            let globs = d.strings(globs, &label_path, "[\"/snap/*\"]", "\"/snap/*\"");
            if let (Some(label), Some(globs)) = (label, globs) {
                target.insert(label, globs);
            }
        }
    }
    if let Some((n, path)) = member(members, "collect", "processes") {
        out.processes = super::processes::decode_processes(d, n, &path, out.backend);
    }
    if let Some((n, path)) = member(members, "collect", "root")
        && let Some(s) = d.string(n, &path, "\"/host\"")
    {
        match collect_root(s, out.backend) {
            Ok(root) => out.root = root,
            Err(m) => d.error(n, &path, m),
        }
    }
    out
}

/// `collect.root`: an absolute path to a directory, kept without trailing `/`; `/` is `None`.
fn collect_root(s: &str, backend: CollectBackend) -> Result<Option<PathBuf>, String> {
    if !s.starts_with('/') {
        return Err(format!(
            "{s:?} is not an absolute path (the host's / as mounted here, like \"/host\")"
        ));
    }
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    if !cfg!(target_os = "linux") || backend == CollectBackend::Sysinfo {
        return Err("a root other than \"/\" needs the proc backend (Linux /proc)".to_owned());
    }
    match std::fs::metadata(trimmed) {
        Ok(m) if m.is_dir() => Ok(Some(PathBuf::from(trimmed))),
        Ok(_) => Err(format!("{s} is not a directory")),
        Err(e) => Err(format!("{s}: {e}")),
    }
}

fn decode_escalation(d: &mut Decoder<'_>, node: &Node) -> Escalation {
    let example = "{\"remind_every\": \"30m\", \"critical_after\": \"15m\"}";
    let mut out = Escalation::default();
    let Some(members) = d.object(node, "escalation", ESCALATION_KEYS, example) else { return out };
    if let Some((n, path)) = member(members, "escalation", "remind_every") {
        out.remind_every = d.duration(n, &path);
    }
    if let Some((n, path)) = member(members, "escalation", "critical_after") {
        out.critical_after = d.duration(n, &path);
    }
    out
}

fn decode_delivery(d: &mut Decoder<'_>, node: &Node) -> Delivery {
    let example = "{\"timeout\": \"10s\", \"retry_base\": \"2s\", \"retry_max\": \"5m\", \"give_up_after\": \"24h\"}";
    let mut out = Delivery::default();
    let Some(members) = d.object(node, "delivery", DELIVERY_KEYS, example) else { return out };
    for (key, slot) in [
        ("timeout", &mut out.timeout),
        ("retry_base", &mut out.retry_base),
        ("retry_max", &mut out.retry_max),
        ("give_up_after", &mut out.give_up_after),
    ] {
        if let Some((n, path)) = member(members, "delivery", key)
            && let Some(v) = d.duration(n, &path)
        {
            *slot = v;
        }
    }
    if let Some((n, path)) = member(members, "delivery", "queue") {
        match &n.value {
            NodeValue::Number(q) if *q >= 1.0 && *q <= 1_000_000.0 && q.fract() == 0.0 => {
                out.queue = *q as usize
            }
            _ => d.error(n, &path, "expected a whole number from 1 to 1000000"),
        }
    }
    if out.retry_max < out.retry_base
        && let Some((n, path)) = member(members, "delivery", "retry_max")
    {
        d.error(n, &path, "retry_max must not be shorter than retry_base");
    }
    out
}

/// Label matchers `{"mount": "/data*"}` over any label key (routes).
pub(crate) fn decode_matchers(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
) -> Vec<(LabelKey, String)> {
    let Some(members) = d.map(node, path, "{\"mount\": \"/\"}") else { return Vec::new() };
    let mut out = Vec::new();
    for (key, value) in members {
        let p = key_path(path, &key.name);
        let label = label_key(d, key, &p);
        let glob = matcher_glob(d, value, &p);
        if let (Some(label), Some(glob)) = (label, glob) {
            out.push((label, glob));
        }
    }
    out
}

/// One matcher value: a non-empty glob string.
pub(crate) fn matcher_glob(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<String> {
    let s = d.string(node, path, "\"/\" or \"eth*\"")?;
    if s.is_empty() {
        d.error(node, path, "empty pattern (use \"*\" to match every value)");
        return None;
    }
    Some(s.to_owned())
}

/// A route's `match`: series label keys and the rules' static label names, globs as values.
fn route_matchers(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    static_labels: &[&str],
) -> Vec<(String, String)> {
    let Some(members) = d.map(node, path, "{\"mount\": \"/\", \"team\": \"db\"}") else {
        return Vec::new();
    };
    let mut own: Vec<&str> =
        static_labels.iter().copied().filter(|l| !LABEL_NAMES.contains(l)).collect();
    own.sort_unstable();
    own.dedup();
    let known: Vec<&str> = LABEL_NAMES.iter().copied().chain(own).collect();
    let mut out = Vec::new();
    for (key, value) in members {
        let p = key_path(path, &key.name);
        let glob = matcher_glob(d, value, &p);
        if !known.contains(&key.name.as_str()) {
            // Known: the series labels and every rule's static labels.
            let message = format!("unknown label {:?}{}", key.name, hint(&key.name, &known));
            d.key_error(key, &p, message);
        } else if let Some(glob) = glob {
            out.push((key.name.clone(), glob));
        }
    }
    out
}

fn decode_routes(
    d: &mut Decoder<'_>,
    node: &Node,
    rule_names: &[String],
    static_labels: &[&str],
    channels: &[String],
) -> Vec<Route> {
    let Some(items) =
        d.array(node, "routes", "[{\"severity\": \"critical\", \"channels\": [\"ops\"]}]")
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path("routes", i);
        let example = "{\"severity\": \"critical\", \"channels\": [\"ops\"]}";
        let Some(members) = d.object(item, &path, ROUTE_KEYS, example) else { continue };
        let before = d.errors.len();
        let mut route =
            Route { severity: None, rule: None, matchers: Vec::new(), channels: Vec::new() };
        if let Some((n, p)) = member(members, &path, "severity")
            && let Some(s) = d.string(n, &p, "\"critical\"")
        {
            route.severity = match s {
                "warning" => Some(Severity::Warning),
                "critical" => Some(Severity::Critical),
                other => {
                    d.error(
                        n,
                        &p,
                        format!(
                            "unknown severity {other:?}{}",
                            hint(other, &["warning", "critical"])
                        ),
                    );
                    None
                }
            };
        }
        if let Some((n, p)) = member(members, &path, "rule")
            && let Some(pattern) = matcher_glob(d, n, &p)
        {
            check_rule_pattern(d, n, &p, &pattern, rule_names);
            route.rule = Some(pattern);
        }
        if let Some((n, p)) = member(members, &path, "match") {
            route.matchers = route_matchers(d, n, &p, static_labels);
        }
        match member(members, &path, "channels") {
            Some((n, p)) => {
                if matches!(&n.value, NodeValue::Array(a) if a.is_empty()) {
                    d.error(n, &p, "a route needs at least one channel");
                }
                route.channels = d.channel_refs(n, &p, channels).unwrap_or_default();
            }
            None => d.error(item, &path, "missing required key \"channels\""),
        }
        if d.errors.len() == before {
            out.push(route);
        }
    }
    out
}

fn check_rule_pattern(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    pattern: &str,
    rule_names: &[String],
) {
    if rule_names.iter().any(|r| glob_match(pattern, r)) {
        return;
    }
    let names: Vec<&str> = rule_names.iter().map(String::as_str).collect();
    if !is_literal(pattern) {
        d.error(node, path, format!("pattern {pattern:?} matches no rule"));
    } else if names.is_empty() {
        d.error(node, path, format!("no rule is named {pattern:?} (no rules are defined)"));
    } else {
        d.error(node, path, format!("no rule is named {pattern:?}{}", hint(pattern, &names)));
    }
}
