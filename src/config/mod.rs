//! Configuration: the typed, validated shape of `config.json` (or `config.yaml`) and how it
//! is loaded.
//!
//! Loading goes text → spanned tree (`json`, or `yaml` for a `.yaml`/`.yml` file: `format`)
//! → `${VAR}` substitution (`env`) →
//! typed decoding with units and validation (`decode`, `units`); every error carries the file,
//! line, column and key path. `effective` renders the result back, secrets redacted, for
//! `hostwatch check`. The file is read only when it is a regular file of at most 4 MiB.
//! Not the place for defaults of behaviour that belongs to other modules.

use crate::metrics::{LabelKey, Metric};
use crate::silence::Silence;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A fully validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the config came from: a file path or `<embedded default>`.
    pub source: String,
    /// The host name put in every notification (default: the system host name).
    pub host: String,
    /// Time between samples.
    pub interval: Duration,
    /// Where state (alerts, silences, outbox) and history live.
    pub state_dir: PathBuf,
    /// A Redis server the state and the outbox are mirrored to, and shared silences read
    /// from (`state.store`); `None`: the local files only.
    pub store: Option<StoreConfig>,
    /// What the collector reads and leaves out.
    pub collect: CollectConfig,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// Where the rules came from.
    pub rule_set: RuleSet,
    /// Reminders and escalation for firing alerts.
    pub escalation: Escalation,
    /// An open alert without data for this long resolves (unless its rule says otherwise).
    pub nodata_resolve_after: Duration,
    /// Flap detection (`flap` key) for rules that set none; `None`: off (`"flap": false`).
    pub flap: Option<FlapLimits>,
    /// Notification channels by name.
    pub channels: BTreeMap<String, Channel>,
    /// Which channels receive which notifications.
    pub routes: Vec<Route>,
    /// Retries, timeouts and limits of notification delivery.
    pub delivery: Delivery,
    /// Silences kept in the config (planned maintenance), merged with `hostwatch silence`'s.
    pub silences: Vec<Silence>,
    /// The HTTP API (`api` key); `None`: no server.
    pub api: Option<ApiConfig>,
    /// The dead-man's switch (`heartbeat` key); `None`: none.
    pub heartbeat: Option<HeartbeatConfig>,
    /// Short history (`history` key): the built-in file, SQLite, InfluxDB.
    pub history: HistoryConfig,
    /// Periodic reports (`reports` key), in file order.
    pub reports: Vec<ReportConfig>,
    /// How times are shown to people (`display` key).
    pub display: DisplayConfig,
}

/// `display`: how times are shown to people (machine formats stay RFC 3339 UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayConfig {
    /// `display.timezone` as written: `UTC` (the default), `local` or an IANA name.
    pub timezone: String,
    /// That zone, read when the config was loaded.
    pub zone: std::sync::Arc<crate::zone::Zone>,
}

impl Default for DisplayConfig {
    fn default() -> DisplayConfig {
        DisplayConfig {
            timezone: "UTC".into(),
            zone: std::sync::Arc::new(crate::zone::Zone::utc()),
        }
    }
}

/// Where a config's rules came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSet {
    /// The config has no `rules` key: the embedded default rules apply.
    Embedded,
    /// The config's own `rules`.
    File,
    /// `"rules": []`: nothing is monitored.
    None,
}

impl RuleSet {
    /// For people: `embedded default rules`, `the config's rules`, `no rules (rules: [])`,
    /// the empty list written as the file named `source` writes it.
    pub fn describe(self, source: &str) -> String {
        match self {
            RuleSet::Embedded => "the embedded default rules".to_owned(),
            RuleSet::File => "the config's rules".to_owned(),
            RuleSet::None => format!("no rules ({})", format::Format::of(source).empty_rules()),
        }
    }
}

/// One periodic report (`reports[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportConfig {
    /// Unique among reports (`daily`; default from `every`: hourly, daily, weekly).
    pub name: String,
    /// The period's length.
    pub every: Duration,
    /// Seconds past midnight UTC periods are aligned to (`at`); `None`: midnight.
    pub at: Option<u32>,
    /// The channels it goes to (not through `routes`).
    pub channels: Vec<String>,
}

/// Where history goes (`history` key). The default: the built-in file only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// The round-robin file in `state_dir`; `None`: off (`"file": false`).
    pub file: Option<HistoryFileConfig>,
    /// The SQLite database of per-slot aggregates and alert events.
    pub sqlite: Option<SqliteConfig>,
    /// InfluxDB (or VictoriaMetrics) line-protocol push.
    pub influxdb: Option<InfluxConfig>,
}

impl Default for HistoryConfig {
    fn default() -> HistoryConfig {
        HistoryConfig { file: Some(HistoryFileConfig::default()), sqlite: None, influxdb: None }
    }
}

impl HistoryConfig {
    /// No history at all (`"history": false`).
    pub fn off() -> HistoryConfig {
        HistoryConfig { file: None, sqlite: None, influxdb: None }
    }

    /// True when anything records history.
    pub fn any(&self) -> bool {
        self.file.is_some() || self.sqlite.is_some() || self.influxdb.is_some()
    }

    /// The slot length aggregates are made over (the file's, else one minute).
    pub fn resolution(&self) -> Duration {
        self.file.as_ref().map_or(HistoryFileConfig::default().resolution, |f| f.resolution)
    }
}

/// The built-in history file's geometry; fixed when the file is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryFileConfig {
    /// How far back slots reach (`24h`).
    pub retention: Duration,
    /// The length of one slot (`1m`): min/avg/max/last per series each.
    pub resolution: Duration,
    /// How far back raw samples reach (`1h`); zero: none.
    pub raw: Duration,
    /// Series the file has room for.
    pub max_series: u32,
}

impl Default for HistoryFileConfig {
    fn default() -> HistoryFileConfig {
        HistoryFileConfig {
            retention: Duration::from_secs(24 * 3600),
            resolution: Duration::from_secs(60),
            raw: Duration::from_secs(3600),
            max_series: 256,
        }
    }
}

impl HistoryFileConfig {
    /// Slots in the file (retention / resolution, rounded up).
    pub fn slots(&self) -> u64 {
        let res = self.resolution.as_secs().max(1);
        self.retention.as_secs().div_ceil(res).max(1)
    }

    /// Raw rows for samples taken every `interval` (raw / interval, rounded up).
    pub fn raw_rows(&self, interval: Duration) -> u64 {
        let i = interval.as_secs_f64().max(0.001);
        (self.raw.as_secs_f64() / i).ceil() as u64
    }

    /// The file's size in bytes for samples taken every `interval`.
    pub fn file_bytes(&self, interval: Duration) -> u64 {
        crate::history::format::Geometry::new(self, interval).file_len()
    }
}

/// `history.sqlite`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    /// The database file.
    pub path: PathBuf,
    /// Rows older than this are pruned.
    pub retention: Duration,
}

impl SqliteConfig {
    /// Pruning age when the config does not say: 30 days.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
}

/// `history.influxdb`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfluxConfig {
    /// The server's base URL (`http://127.0.0.1:8086`; secret: it may carry user info).
    pub url: Secret,
    /// 1.x database or 2.x org and bucket.
    pub target: InfluxTarget,
    /// Points kept while the server cannot be reached; older ones are dropped and counted.
    pub buffer: usize,
    /// Time limit of one write; `None`: the delivery timeout.
    pub timeout: Option<Duration>,
}

impl InfluxConfig {
    /// Points kept while the database is down, when the config does not say.
    pub const DEFAULT_BUFFER: usize = 100_000;
}

/// Which InfluxDB write API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfluxTarget {
    /// 1.x `/write?db=…` (VictoriaMetrics accepts it too), optional basic credentials.
    V1 {
        /// The database.
        database: String,
        /// User name (`u=`), if the server needs one.
        username: Option<String>,
        /// Password (`p=`).
        password: Option<Secret>,
    },
    /// 2.x `/api/v2/write?org=…&bucket=…` with `Authorization: Token …`.
    V2 {
        /// The organization.
        org: String,
        /// The bucket.
        bucket: String,
        /// The API token.
        token: Secret,
    },
}

/// The HTTP API's settings (`api` key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Where the server listens (`127.0.0.1:9184`).
    pub listen: std::net::SocketAddr,
    /// The bearer token mutations need; `None`: every mutation is refused (403).
    pub token: Option<Secret>,
}

/// How a heartbeat is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatMethod {
    /// `GET url` (healthchecks.io, Uptime Kuma push monitors).
    Get,
    /// `POST url` with a small JSON body.
    Post,
}

/// The dead-man's switch (`heartbeat` key): a request after healthy ticks, at most once per
/// `every`, so a checker off the host notices when the agent dies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// The push URL (secret: such URLs are their own credential).
    pub url: Secret,
    /// At most one heartbeat this often.
    pub every: Duration,
    /// GET or POST.
    pub method: HeartbeatMethod,
    /// Time limit of one request; `None`: the delivery timeout.
    pub timeout: Option<Duration>,
}

/// Collector settings (`collect` key).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CollectConfig {
    /// Which collector implementation to use.
    pub backend: CollectBackend,
    /// Per label key: only values matching one of these globs are collected (replaces the
    /// default exclusions for that key).
    pub include: BTreeMap<LabelKey, Vec<String>>,
    /// Per label key: values matching one of these globs are never collected.
    pub exclude: BTreeMap<LabelKey, Vec<String>>,
    /// Process groups to watch (`collect.processes`), in file order; empty: `/proc/[pid]` is
    /// never scanned.
    pub processes: Vec<ProcessGroup>,
    /// Where the host's file system is seen (`collect.root`, for a container with the host's
    /// `/` mounted at `/host`): absolute, no trailing `/`; `None`: `/`, this process's own.
    pub root: Option<PathBuf>,
}

/// One watched process group (`collect.processes[]`): its series are `proc.*{name=…}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessGroup {
    /// The label of its series (`[A-Za-z0-9_.-]+`, unique among groups).
    pub name: String,
    /// Which processes belong to it.
    pub matcher: ProcessMatcher,
}

/// How a process group finds its processes; exactly one per group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessMatcher {
    /// The kernel's process name (`/proc/[pid]/comm`), compared exactly; at most 15 bytes.
    Comm(String),
    /// A glob over the arguments (`/proc/[pid]/cmdline`) joined by single spaces.
    Cmdline(String),
    /// The process whose pid a file holds (as daemons write it).
    Pidfile(PathBuf),
}

/// Which collector implementation reads the system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CollectBackend {
    /// `/proc` on Linux, sysinfo elsewhere.
    #[default]
    Auto,
    /// Linux `/proc` and `statvfs` readers.
    Proc,
    /// The portable sysinfo crate (no iowait, swap rates, disk ops or TCP count).
    Sysinfo,
}

/// A comparison operator of a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// A threshold such as `> 85` or `< 500MB`, value in the metric's base unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// The comparison.
    pub op: Op,
    /// The value in the metric's base unit (percent, bytes, bytes/s, /s, load, count).
    pub value: f64,
    /// The threshold as the operator wrote it (`> 800Mbps`), for messages.
    pub text: String,
}

/// How a rule looks at a series over time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    /// The latest sample alone.
    Latest,
    /// Every sample in the duration meets the threshold.
    For(Duration),
    /// The mean over the duration meets it.
    Avg(Duration),
    /// The maximum over the duration meets it.
    Max(Duration),
    /// The minimum over the duration meets it.
    Min(Duration),
    /// At least `n` of the last `m` samples meet it.
    Occurrences {
        /// How many must meet it.
        n: u32,
        /// Out of how many latest samples.
        m: u32,
    },
}

/// Alert severity.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The `warn` threshold holds.
    Warning,
    /// The `crit` threshold holds (or a warning escalated).
    Critical,
}

impl Severity {
    /// `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// The metric watched.
    pub metric: Metric,
    /// Label matchers (exact or glob); empty means every series of the metric.
    pub matchers: Vec<(LabelKey, String)>,
    /// Warning threshold.
    pub warn: Option<Threshold>,
    /// Critical threshold.
    pub crit: Option<Threshold>,
    /// Recovery threshold (hysteresis); `None` means the firing threshold no longer holds.
    pub clear: Option<Threshold>,
    /// The window form.
    pub window: Window,
    /// Channels this rule notifies in addition to the routes.
    pub channels: Option<Vec<String>>,
    /// Free text for operators, shown in notifications.
    pub description: Option<String>,
    /// Short text for people, shown in every message (plain text, not a template).
    pub summary: Option<String>,
    /// An http(s) URL of the runbook, linked from every message.
    pub runbook_url: Option<String>,
    /// Static labels (`team`, `service`) routes match and every channel shows.
    pub labels: BTreeMap<String, String>,
    /// Alert when no series matches the rule for this long.
    pub absent: Option<Duration>,
    /// This rule's `nodata_resolve_after` (the global one when `None`).
    pub nodata_resolve_after: Option<Duration>,
    /// This rule's flap detection.
    pub flap: RuleFlap,
}

/// Flap detection's thresholds, in percent of weighted state changes over the last 21
/// evaluations (`0 < low < high <= 100`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlapLimits {
    /// Flapping starts above this.
    pub high: f64,
    /// And ends below this.
    pub low: f64,
}

/// A rule's `flap`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum RuleFlap {
    /// Not set (or `true`): the global `flap` applies.
    #[default]
    Inherit,
    /// `false`: no flap detection for this rule.
    Off,
    /// Its own thresholds.
    Limits(FlapLimits),
}

impl RuleFlap {
    /// The thresholds that apply, given the global setting.
    pub fn resolve(self, global: Option<FlapLimits>) -> Option<FlapLimits> {
        match self {
            RuleFlap::Inherit => global,
            RuleFlap::Off => None,
            RuleFlap::Limits(l) => Some(l),
        }
    }
}

/// Reminder and escalation timing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Escalation {
    /// Re-notify a still-firing alert this often.
    pub remind_every: Option<Duration>,
    /// Escalate a warning that keeps firing this long to critical.
    pub critical_after: Option<Duration>,
}

/// Delivery settings (`delivery` key).
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Timeout of one attempt for channels whose config sets none.
    pub timeout: Duration,
    /// First retry delay; doubles with each failure (with jitter).
    pub retry_base: Duration,
    /// Longest delay between two attempts.
    pub retry_max: Duration,
    /// A notification still undelivered after this long is dropped with an error.
    pub give_up_after: Duration,
    /// Capacity of each channel's queue between the loop and its worker.
    pub queue: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            queue: 1024,
        }
    }
}

/// One route: notifications matching every given matcher go to `channels`.
#[derive(Clone, Debug)]
pub struct Route {
    /// Only this severity (any when `None`).
    pub severity: Option<Severity>,
    /// Only rules whose name matches this glob.
    pub rule: Option<String>,
    /// Label matchers (globs) by label name: a series label (`mount`) or a rule's static
    /// label (`team`).
    pub matchers: Vec<(String, String)>,
    /// Channel names.
    pub channels: Vec<String>,
}

pub mod channels;
mod decode;
mod display;
mod effective;
pub mod env;
mod error;
mod flap;
pub(crate) mod format;
mod history;
pub mod json;
mod processes;
pub(crate) use processes::MAX_GROUPS as MAX_PROCESS_GROUPS;
mod reports;
mod rules;
mod secret;
mod silences;
mod store;
pub mod units;
pub mod yaml;

pub use channels::{Channel, ChannelKind};
pub use decode::{
    DEFAULT_INTERVAL, DEFAULT_STATE_DIR, default_state_dir, parse_listen, system_host_name,
};
pub(crate) use decode::{Decoder, get, member, valid_label_name};
pub use effective::{REDACTED, redact_url, redact_url_secrets};
pub use error::{ConfigError, ConfigErrors};
pub(crate) use error::{closest, suggest};
pub(crate) use error::{hint, index_path, key_path};
pub use secret::Secret;
pub use silences::parse_rfc3339;
pub use store::{DEFAULT_KEY_PREFIX, NO_REDIS_SUPPORT, StoreConfig};

use std::path::Path;

/// Where `load(None)` looks first.
pub const DEFAULT_PATH: &str = "/etc/hostwatch/config.json";

/// Where `load(None)` looks when [`DEFAULT_PATH`] does not exist.
pub const DEFAULT_YAML_PATH: &str = "/etc/hostwatch/config.yaml";

/// The `source` of the embedded default config.
pub const EMBEDDED_SOURCE: &str = "<embedded default>";

/// The embedded default config: the seed thresholds, no channels, no routes.
pub const DEFAULT_JSON: &str = include_str!("default.json");

/// Loads the config from `path`; with `None`, from [`DEFAULT_PATH`] or else
/// [`DEFAULT_YAML_PATH`] if one exists, else the embedded default. The process environment supplies `${NAME}` values and the
/// `HOSTWATCH_*` overrides.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    let (text, source) = read_text(path)?;
    load_str(&text, &source, &env)
}

/// What `hostwatch silence` needs of a config: where state lives, the rules' names (to check
/// a `--rule` glob against) and the config's own silences. Nothing else is decoded.
#[derive(Clone, Debug)]
pub struct StateConfig {
    /// Where the config came from: a file path or `<embedded default>`.
    pub source: String,
    /// Where state (alerts, silences, outbox) lives.
    pub state_dir: PathBuf,
    /// This agent's host name (a silence added without `--host` covers it alone).
    pub host: String,
    /// The Redis store shared silences live in (`state.store`).
    pub store: Option<StoreConfig>,
    /// The rules' names, in file order (the embedded default rules' without a `rules` key).
    pub rule_names: Vec<String>,
    /// Where the rules came from.
    pub rule_set: RuleSet,
    /// Silences kept in the config.
    pub silences: Vec<Silence>,
    /// How times are shown to people (`silence list`).
    pub display: DisplayConfig,
}

/// Top-level keys [`load_state`] reads; every other section (channels, `api`, `heartbeat`,
/// `history`: where secrets live) is dropped before `${NAME}` substitution, except for the
/// channels' names, which rules refer to.
const STATE_KEYS: &[&str] =
    &["host", "state_dir", "state", "interval", "rules", "silences", "channels", "display"];

/// Like [`load`], but reads only what [`StateConfig`] holds: no channel, API, heartbeat or
/// history setting is decoded and no `${NAME}` outside `state_dir`, `interval`, `rules` and
/// `silences` is resolved, so a variable holding a secret may be unset. For the commands that
/// only manage `state_dir` (`hostwatch silence`); `check`, `run` and `once` use [`load`].
pub fn load_state(path: Option<&Path>) -> Result<StateConfig, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    let (text, source) = read_text(path)?;
    load_state_str(&text, &source, &env)
}

/// [`load_state`] from text (see [`load_str`]).
pub fn load_state_str(
    text: &str,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StateConfig, ConfigErrors> {
    let mut root = format::parse(text, source)?;
    if let json::NodeValue::Object(members) = &mut root.value {
        members.retain(|(key, _)| STATE_KEYS.contains(&key.name.as_str()));
        for (key, node) in members.iter_mut() {
            if let ("channels", json::NodeValue::Object(channels)) =
                (key.name.as_str(), &mut node.value)
            {
                for (_, channel) in channels.iter_mut() {
                    channel.value = json::NodeValue::Null;
                }
            }
        }
    }
    let env_errors = env::substitute(&mut root, source, env);
    let overrides = env::Overrides::from_env(env);
    merge_errors(env_errors, decode::decode_state(&root, source, &overrides))
}

/// The first of `candidates` that exists, and the later ones that exist too (which it
/// shadows).
fn first_existing<'p>(candidates: &[&'p Path]) -> Option<(&'p Path, Vec<&'p Path>)> {
    let mut found = candidates.iter().copied().filter(|p| p.exists());
    let first = found.next()?;
    Some((first, found.collect()))
}

/// The config file's text and its name in errors; without `path`, [`DEFAULT_PATH`], else
/// [`DEFAULT_YAML_PATH`] (a warning says when both exist: the JSON file is read), else the
/// embedded default.
fn read_text(path: Option<&Path>) -> Result<(String, String), ConfigErrors> {
    let path = match path {
        Some(p) => p,
        None => match first_existing(&[Path::new(DEFAULT_PATH), Path::new(DEFAULT_YAML_PATH)]) {
            Some((first, shadowed)) => {
                for other in shadowed {
                    log::warn!(
                        read = first.display().to_string().as_str(),
                        ignored = other.display().to_string().as_str();
                        "both {} and {} exist: reading {} only (remove one, or name it with --config)",
                        first.display(), other.display(), first.display()
                    );
                }
                first
            }
            None => return Ok((DEFAULT_JSON.to_owned(), EMBEDDED_SOURCE.to_owned())),
        },
    };
    let source = path.display().to_string();
    let text = crate::localfile::read_regular_string(path, crate::localfile::CONFIG_MAX_BYTES)
        .map_err(|e| {
            // The error names the path; the message already starts with it (`file: problem`).
            let message = e.to_string();
            let cause = match message.strip_prefix(source.as_str()) {
                Some(rest) if rest.starts_with(": ") => rest[2..].to_string(),
                Some(rest) => format!("it{rest}"),
                None => message,
            };
            ConfigError::whole(&source, format!("cannot read the config file: {cause}"))
        })?;
    Ok((text, source))
}

/// Loads a config from text; `source` names it in errors and chooses its syntax (YAML for a
/// `.yaml` or `.yml` name, else JSON: `format::Format::of`), `env` looks up environment
/// variables (for `${NAME}` and the `HOSTWATCH_*` overrides).
pub fn load_str(
    text: &str,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let root = format::parse(text, source)?;
    load_tree(root, source, env)
}

/// Loads a config from an already parsed tree (as [`load_str`] after parsing): `${NAME}`
/// substitution, the `HOSTWATCH_*` overrides `env` gives, decoding. For a caller that builds
/// the tree itself (`test-rules` puts a test file's rules into the embedded default).
pub fn load_tree(
    mut root: json::Node,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let env_errors = env::substitute(&mut root, source, env);
    let overrides = env::Overrides::from_env(env);
    merge_errors(env_errors, decode::decode(&root, source, &overrides))
}

/// Substitution errors with what decoding said, in file order.
fn merge_errors<T>(
    env_errors: Vec<ConfigError>,
    result: Result<T, Vec<ConfigError>>,
) -> Result<T, ConfigErrors> {
    if env_errors.is_empty() {
        return result.map_err(ConfigErrors);
    }
    // A string whose variable is missing still holds `${NAME}`: drop what decoding said
    // about it, the missing variable is the error.
    let failed: Vec<(u32, u32)> = env_errors.iter().map(|e| (e.line, e.column)).collect();
    let mut errors = env_errors;
    if let Err(decode_errors) = result {
        errors.extend(decode_errors.into_iter().filter(|e| !failed.contains(&(e.line, e.column))));
    }
    errors.sort_by_key(|e| (e.line, e.column));
    Err(ConfigErrors(errors))
}

#[cfg(test)]
mod tests;
