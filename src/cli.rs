//! Command-line grammar (argh): the global flags and one struct per subcommand. The doc
//! comments here are the one source of every command's text: argh prints them for `--help`,
//! and `manual` turns the same table (`ArgsInfo`, derived with the `completions` feature) into
//! the man page and the shell completions. Not for what a command does (`commands/*`).

#[cfg(feature = "completions")]
use argh::ArgsInfo;
use argh::FromArgs;
use std::path::PathBuf;

/// hostwatch watches CPU, memory, disk and network, evaluates rules and notifies.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
pub struct Cli {
    /// config file, JSON or (.yaml, .yml) YAML (default: /etc/hostwatch/config.json, else
    /// /etc/hostwatch/config.yaml, else the embedded default)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,

    /// log level: off, error, warn, info, debug or trace (default: info)
    #[argh(option, default = "String::from(\"info\")")]
    pub log_level: String,

    /// log format: text or json (default: text)
    #[argh(option, default = "String::from(\"text\")")]
    pub log_format: String,

    /// print the version, git revision, linkage and enabled features, then exit
    #[argh(switch, short = 'V')]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand)]
pub enum Command {
    /// `hostwatch sample`
    Sample(SampleArgs),
    /// `hostwatch check`
    Check(CheckArgs),
    /// `hostwatch run`
    Run(RunArgs),
    /// `hostwatch once`
    Once(OnceArgs),
    /// `hostwatch replay`
    Replay(ReplayArgs),
    /// `hostwatch silence`
    Silence(SilenceArgs),
    /// `hostwatch test-notify`
    TestNotify(TestNotifyArgs),
    /// `hostwatch test-rules`
    TestRules(TestRulesArgs),
    /// `hostwatch status`
    Status(StatusArgs),
    /// `hostwatch history`
    History(HistoryArgs),
    /// `hostwatch report`
    Report(ReportArgs),
    /// `hostwatch completions`
    Completions(CompletionsArgs),
}

/// Print a completion script for a shell (as the packages install it: bash in
/// /usr/share/bash-completion/completions/hostwatch, zsh as _hostwatch in a $fpath
/// directory, fish in vendor_completions.d/hostwatch.fish).
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "completions")]
pub struct CompletionsArgs {
    /// the shell: bash, zsh or fish
    #[argh(positional)]
    pub shell: String,
}

/// Print the report of a period (metrics from the history file, alerts and delivery failures
/// from the events log; times in UTC).
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "report")]
pub struct ReportArgs {
    /// the period's start: a duration before --until (default: 24h), an RFC 3339 time or Unix
    /// seconds
    #[argh(option, default = "String::from(\"24h\")")]
    pub since: String,

    /// the period's end: an RFC 3339 time, Unix seconds, or a duration before now (default: now)
    #[argh(option)]
    pub until: Option<String>,

    /// output format: text, json or html (default: text)
    #[argh(option, default = "String::from(\"text\")")]
    pub format: String,

    /// the state directory to read (default: the config's state_dir)
    #[argh(option)]
    pub state_dir: Option<std::path::PathBuf>,

    /// config file (overrides the global --config; gives the host and the state_dir)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
}

/// Print the recorded history (state_dir/history.hwh): per series min/avg/max/last and a
/// sparkline, or every slot as JSON or CSV. Reads while the daemon writes; needs no lock.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "history")]
pub struct HistoryArgs {
    /// series keys, metric names or globs (`cpu.*`, `disk.used_percent{mount=/}`); default: all
    #[argh(positional)]
    pub series: Vec<String>,

    /// from how long ago (`6h`) or from when (RFC 3339); default: 6h
    #[argh(option, default = "String::from(\"6h\")")]
    pub since: String,

    /// until how long ago (`1h`) or when (RFC 3339); default: now
    #[argh(option)]
    pub until: Option<String>,

    /// output format: table, json or csv (default: table)
    #[argh(option, default = "String::from(\"table\")")]
    pub format: String,

    /// the raw samples instead of slots (json and csv; as far back as `history.raw`)
    #[argh(switch)]
    pub raw: bool,

    /// a history file to read instead of the config's state_dir/history.hwh
    #[argh(option)]
    pub file: Option<PathBuf>,

    /// config file (overrides the global --config; gives the state_dir)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
}

/// What is wrong now: from the daemon's API, else from the state file; exit codes as `once`.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(
    subcommand,
    name = "status",
    error_code(0, "OK: nothing firing"),
    error_code(1, "WARNING: a warning is firing"),
    error_code(2, "CRITICAL: a critical alert is firing"),
    error_code(3, "UNKNOWN: a stalled loop, or a state file that cannot be read or is broken")
)]
pub struct StatusArgs {
    /// output format: text or json (default: text)
    #[argh(option, default = "String::from(\"text\")")]
    pub format: String,

    /// config file (overrides the global --config; gives api.listen and the state_dir)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,

    /// the daemon's API, such as http://127.0.0.1:9184 (default: from api.listen)
    #[argh(option)]
    pub url: Option<String>,
}

/// Send a test notification through one channel and print the receiver's answer.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "test-notify")]
pub struct TestNotifyArgs {
    /// the channel's name in the config
    #[argh(positional)]
    pub channel: String,

    /// severity of the test notification: warning or critical (default: warning)
    #[argh(option, default = "String::from(\"warning\")")]
    pub severity: String,

    /// print the payload that would be sent instead of sending it
    #[argh(switch)]
    pub dry_run: bool,

    /// send N test notifications as one grouped message, as the channel's group_wait would
    /// (2 to the channel's limit per message)
    #[argh(option)]
    pub group: Option<usize>,

    /// config file (overrides the global --config)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
}

/// Run rule unit tests: feed each test's input series through the rules and compare the
/// notifications with the expected ones.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(
    subcommand,
    name = "test-rules",
    error_code(0, "every test passed"),
    error_code(1, "a test failed"),
    error_code(2, "a file or the command line is invalid")
)]
pub struct TestRulesArgs {
    /// test files (JSON; each names its rules: a config file, inline rules or the defaults)
    #[argh(positional)]
    pub files: Vec<PathBuf>,
}

/// Run the monitor: sample every interval, evaluate rules, notify (SIGHUP reloads the config).
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "run")]
pub struct RunArgs {
    /// print each notification as it would be sent and send nothing (the state file is read,
    /// never written)
    #[argh(switch)]
    pub dry_run: bool,

    /// config file (overrides the global --config)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,

    /// serve the HTTP API on ADDR (such as 127.0.0.1:9184), overriding the config's api.listen
    #[argh(option)]
    pub listen: Option<String>,
}

/// One evaluation for cron, with Nagios exit codes; windows, counters and alert states persist
/// in the state file between runs.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(
    subcommand,
    name = "once",
    error_code(0, "OK: nothing firing"),
    error_code(1, "WARNING: the worst firing alert is a warning"),
    error_code(2, "CRITICAL: a critical alert is firing"),
    error_code(3, "UNKNOWN: the config, the command line or the sample failed")
)]
pub struct OnceArgs {
    /// output format: text, json or nagios (default: text)
    #[argh(option, default = "String::from(\"text\")")]
    pub format: String,

    /// print notifications instead of sending them; the state file is not written
    #[argh(switch)]
    pub dry_run: bool,

    /// samples further apart than this break windows (default: 15m, for cron periods up to ~7m)
    #[argh(option, default = "String::from(\"15m\")")]
    pub max_gap: String,

    /// on the first run (no saved counters), the time between the two reads (default: 1s)
    #[argh(option, default = "String::from(\"1s\")")]
    pub first_interval: String,

    /// config file (overrides the global --config)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
}

/// Feed recorded samples (sample --format jsonl) through the rules; print notifications.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "replay")]
pub struct ReplayArgs {
    /// the jsonl file (/dev/stdin, or `-- -`, for standard input)
    #[argh(positional)]
    pub file: PathBuf,

    /// config file (overrides the global --config)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,

    /// load alert states from DIR/state.json first and save them there at the end
    #[argh(option)]
    pub state_dir: Option<PathBuf>,
}

/// Add, list or remove silences (kept in state_dir/silences.json).
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "silence")]
pub struct SilenceArgs {
    /// config file (overrides the global --config; gives the state_dir)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,

    #[argh(subcommand)]
    pub action: SilenceAction,
}

/// What to do with silences.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand)]
pub enum SilenceAction {
    /// `silence add`
    Add(SilenceAdd),
    /// `silence list`
    List(SilenceList),
    /// `silence remove`
    Remove(SilenceRemove),
}

/// Silence notifications of matching alerts until an expiry, or in a recurring window.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "add")]
pub struct SilenceAdd {
    /// rule name glob (default: every rule)
    #[argh(option)]
    pub rule: Option<String>,

    /// label matcher KEY=GLOB (repeatable), e.g. mount=/data*
    #[argh(option, long = "match")]
    pub matchers: Vec<String>,

    /// how long, e.g. 2h (with --every: how long it recurs; default: no end)
    #[argh(option, long = "for")]
    pub duration: Option<String>,

    /// a recurring window: [DAYS ]HH:MM-HH:MM, e.g. "sun 02:00-04:00", "mon-fri 22:00-06:00"
    #[argh(option)]
    pub every: Option<String>,

    /// the time zone of --every (default: display.timezone), e.g. Europe/Lisbon
    #[argh(option)]
    pub tz: Option<String>,

    /// why, and who
    #[argh(option, default = "String::new()")]
    pub comment: String,

    /// host name glob of the agents it applies to, e.g. 'web-*' (with state.store: shared
    /// in Redis, default this host; without: kept locally, applied when this host matches)
    #[argh(option)]
    pub host: Option<String>,

    /// add it even when --rule matches no configured rule (with a warning)
    #[argh(switch)]
    pub force: bool,
}

/// List the silences in force.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "list")]
pub struct SilenceList {
    /// print JSON instead of a table
    #[argh(switch)]
    pub json: bool,
}

/// Remove a silence by id.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "remove")]
pub struct SilenceRemove {
    /// the silence's id
    #[argh(positional)]
    pub id: String,
}

/// Print every series now (or every interval, to record).
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(subcommand, name = "sample")]
pub struct SampleArgs {
    /// output format: table, json or jsonl (default: table)
    #[argh(option, default = "String::from(\"table\")")]
    pub format: String,

    /// print a sample every DURATION (e.g. 5s) instead of once
    #[argh(option)]
    pub every: Option<String>,

    /// stop after N samples (default: 1 without --every, unbounded with it)
    #[argh(option)]
    pub count: Option<u64>,

    /// time between the two reads that rates and CPU% need for a single sample (default: 1s)
    #[argh(option, default = "String::from(\"1s\")")]
    pub over: String,

    /// collector backend: auto, proc or sysinfo (default: from the config)
    #[argh(option)]
    pub backend: Option<String>,

    /// config file (overrides the global --config)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
}

/// Validate a config and print it as in effect, secrets redacted.
#[derive(FromArgs, Debug)]
#[cfg_attr(feature = "completions", derive(ArgsInfo))]
#[argh(
    subcommand,
    name = "check",
    error_code(0, "the config is valid"),
    error_code(2, "the config is invalid, or a plugin or exec program can never work")
)]
pub struct CheckArgs {
    /// config file (overrides the global --config)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
    /// check the file only, not its plugin files and exec programs (for a config written
    /// for another host)
    #[argh(switch)]
    pub syntax_only: bool,
    /// how the effective config is printed: json or yaml (default: json)
    #[argh(option, default = "String::from(\"json\")")]
    pub format: String,
}
