//! The exec hook channel (`type: "exec"`): runs a program for each notification.
//!
//! The contract a hook relies on (documented in `plugins/README.md`):
//! - `command` is an argv array run directly, never through a shell; nothing from the alert
//!   ever becomes the program or an argument.
//! - The alert arrives as `HOSTWATCH_*` environment variables ([`alert_env`]) and as the
//!   event's JSON (the webhook body) on stdin, followed by a newline. Alert text reaches the
//!   hook only as these bytes, so hostile label values (`$(touch /tmp/x)`, `; rm -rf /`) stay
//!   inert data.
//! - The hook inherits hostwatch's environment minus any `HOSTWATCH_*` variables, then gets
//!   the channel's `env`, then the alert variables (which win). It runs in `cwd` if set.
//! - Exit 0 means delivered, 75 (`EX_TEMPFAIL`) means retry later, anything else is a
//!   failure reported with the first lines of stderr. At `timeout` the hook's whole process
//!   group is killed (SIGKILL) and the delivery is retried later.
//!
//! Spawning and the deadline are in [`run`]; this module builds the command and reads the
//! outcome.

pub mod run;

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::ExecConfig;
use crate::config::units::format_duration;
use crate::config::{REDACTED, Secret};
use crate::event::AlertEvent;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The exit code that asks for a retry (`EX_TEMPFAIL` from `sysexits.h`).
pub const EXIT_RETRY: i32 = 75;
/// How many lines of stderr a failure report carries.
const STDERR_LINES: usize = 5;
/// How many characters of one stderr line a failure report keeps.
const LINE_CHARS: usize = 200;

/// An exec hook.
#[derive(Debug)]
pub struct ExecSender {
    channel: String,
    /// The program, resolved to a path at start-up.
    program: PathBuf,
    /// The arguments after the program, as configured.
    args: Vec<String>,
    timeout: Duration,
    env: BTreeMap<String, Secret>,
    cwd: Option<PathBuf>,
    templates: crate::config::channels::Templates,
}

impl ExecSender {
    /// Checks the hook's working directory and finds its program (a path, relative to `cwd`
    /// or else to hostwatch's working directory, or a bare name looked up in `PATH`), so that
    /// a typo is an error at start-up rather than at the first alert.
    pub fn new(name: &str, config: &ExecConfig) -> Result<ExecSender, String> {
        let (program, cwd) =
            locate(config).map_err(|e| format!("channel {name}: exec hook: {}", e.legacy()))?;
        Ok(ExecSender {
            channel: name.to_string(),
            program,
            args: config.command.get(1..).unwrap_or_default().to_vec(),
            timeout: config.timeout,
            env: config.env.clone(),
            cwd,
            templates: config.templates.clone(),
        })
    }

    /// The program that runs (resolved at start-up).
    pub fn program(&self) -> &Path {
        &self.program
    }

    fn command(&self, event: &AlertEvent) -> Command {
        self.command_with(self.alert_env(event))
    }

    /// The hook's command with these alert variables.
    fn command_with(&self, vars: Vec<(String, String)>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        // A hook gets a clean environment: hostwatch's own may hold secrets the config pulled
        // in with `${VAR}` (SMTP passwords, webhook URLs). What a hook needs beyond the basics
        // is given to it explicitly through the channel's `env`.
        cmd.env_clear();
        for (key, value) in std::env::vars_os() {
            if inherited(&key.to_string_lossy()) {
                cmd.env(key, value);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v.expose())));
        cmd.envs(vars);
        cmd
    }

    /// [`alert_env`] with `HOSTWATCH_TITLE` and `HOSTWATCH_TEXT`: the channel's templates
    /// rendered (empty without one).
    fn alert_env(&self, event: &AlertEvent) -> Vec<(String, String)> {
        let mut vars = alert_env(&self.channel, event);
        for (key, text) in self.templates.plain(event) {
            let value = text.unwrap_or_default().replace('\0', "");
            vars.push((format!("HOSTWATCH_{}", key.to_ascii_uppercase()), value));
        }
        vars
    }

    /// The failure's reason, with the hook's stderr scrubbed of the channel's `env` values
    /// (a hook tracing its commands, or curl naming a URL, repeats them; the reason reaches
    /// logs, the events log and `GET /status`).
    fn describe_failure(&self, what: String, stderr: &[u8]) -> String {
        let program = self.program.display();
        // Scrubbed before the excerpt cuts long lines, so no secret is left half shown.
        let mut text = String::from_utf8_lossy(stderr).into_owned();
        let mut secrets: Vec<&str> =
            self.env.values().map(|v| v.expose()).filter(|v| v.len() >= 4).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in secrets {
            if text.contains(secret) {
                text = text.replace(secret, crate::config::REDACTED);
            }
        }
        match stderr_excerpt(text.as_bytes()) {
            Some(lines) => {
                format!("hook {program} {what}; stderr: {lines}")
            }
            None => format!("hook {program} {what} (no stderr)"),
        }
    }
}

/// The variables a hook inherits from hostwatch's environment: locale, time zone, search path
/// and who it runs as; nothing that could carry a secret.
fn inherited(name: &str) -> bool {
    matches!(name, "PATH" | "HOME" | "USER" | "LOGNAME" | "LANG" | "LANGUAGE" | "TZ" | "TMPDIR")
        || name.starts_with("LC_")
}

/// Why a hook's program or working directory can never work: the path concerned (as
/// resolved, or the bare name that was not found) and the cause, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProgramError {
    /// The file or directory (or the bare name looked up in `PATH`).
    pub(crate) path: String,
    /// What is wrong with it (`no such file`, `not executable by us (chmod +x)`).
    pub(crate) cause: String,
    /// Whether `path` is the working directory rather than the program.
    is_cwd: bool,
}

impl ProgramError {
    fn program(path: impl Into<String>, cause: impl Into<String>) -> ProgramError {
        ProgramError { path: path.into(), cause: cause.into(), is_cwd: false }
    }

    fn cwd(path: &Path, cause: impl Into<String>) -> ProgramError {
        ProgramError { path: path.display().to_string(), cause: cause.into(), is_cwd: true }
    }

    /// `program /x/page: no such file`, `cwd /d: not a directory`.
    fn legacy(&self) -> String {
        let what = if self.is_cwd { "cwd" } else { "program" };
        format!("{what} {}: {}", self.path, self.cause)
    }
}

/// Checks the hook's working directory and finds its program the way [`ExecSender::new`]
/// does (a path, relative to `cwd` or else to hostwatch's working directory, or a bare name
/// looked up in the `PATH` the hook gets: the channel's `env` `PATH`, else hostwatch's own).
/// Returns the program and the working directory, both absolute. Used by start-up checks.
pub(crate) fn locate(config: &ExecConfig) -> Result<(PathBuf, Option<PathBuf>), ProgramError> {
    let Some(program) = config.command.first() else {
        return Err(ProgramError::program("(none)", "the command is empty"));
    };
    if let Some(dir) = &config.cwd
        && !dir.is_dir()
    {
        return Err(ProgramError::cwd(dir, "not a directory"));
    }
    // Absolute from here on: the hook runs inside `cwd`, so a relative program path must
    // not be resolved twice.
    let cwd = match &config.cwd {
        Some(d) if d.is_relative() => Some(
            std::env::current_dir()
                .map_err(|e| ProgramError::cwd(d, format!("cannot resolve: {e}")))?
                .join(d),
        ),
        other => other.clone(),
    };
    // The hook's environment keeps hostwatch's PATH unless the channel's `env` sets one.
    let path_var = config
        .env
        .get("PATH")
        .map(|v| v.expose().to_string())
        .or_else(|| std::env::var("PATH").ok());
    let program = resolve_program(program, cwd.as_deref(), path_var.as_deref())?;
    Ok((program, cwd))
}

/// Resolves the configured program to a path that exists and is executable.
fn resolve_program(
    program: &str,
    cwd: Option<&Path>,
    path_var: Option<&str>,
) -> Result<PathBuf, ProgramError> {
    if program.is_empty() {
        return Err(ProgramError::program("(none)", "the program (command[0]) is empty"));
    }
    let candidate = if program.contains('/') {
        let p = Path::new(program);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            let base = match cwd {
                Some(d) => d.to_path_buf(),
                None => std::env::current_dir().map_err(|e| {
                    ProgramError::program(program, format!("current directory: {e}"))
                })?,
            };
            base.join(p)
        }
    } else {
        let dirs = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
        let found = std::env::split_paths(dirs)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join(program))
            .find(|p| is_executable(p));
        match found {
            Some(p) => p,
            None => {
                return Err(ProgramError::program(program, "not found in the hook's PATH"));
            }
        }
    };
    let shown = candidate.display().to_string();
    match std::fs::metadata(&candidate) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ProgramError::program(shown, "no such file"))
        }
        Err(e) => Err(ProgramError::program(shown, e.to_string())),
        Ok(m) if !m.is_file() => Err(ProgramError::program(shown, "not a regular file")),
        Ok(_) if !is_executable(&candidate) => {
            Err(ProgramError::program(shown, "not executable by us (chmod +x)"))
        }
        Ok(_) => Ok(candidate),
    }
}

/// A regular file this process may execute (`faccessat` with the effective ids, so root
/// needs an execute bit too, as `execve` does).
fn is_executable(p: &Path) -> bool {
    if !std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call; no memory is shared.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) == 0 }
}

/// The `HOSTWATCH_*` variables a hook gets for `event` on `channel`, in a fixed order.
///
/// `HOSTWATCH_CHANNEL, HOST, RULE, SERIES, METRIC, SEVERITY, EVENT, VALUE` (empty when there
/// is none), `VALUE_TEXT, THRESHOLD, SINCE, TS` (Unix seconds), `SEQ, KEY, EPISODE_KEY,
/// SUMMARY, DESCRIPTION` (empty when none), `REASON` (why, when more than the threshold
/// explains it: `mount disappeared`, `data is back`; else empty), `LAST_SEEN` (Unix seconds
/// of the series' last value for `nodata`, else empty), `ESCALATED_BY` (`threshold`, `time`
/// or empty), `EPISODE_DURATION_S`, `PEAK`, `PEAK_TEXT` (empty when not known),
/// `FLAP_PERCENT` (`flapping`, `flap_end`: the share of state changes, else empty), `STATE`
/// (`flap_end`: `ok` or `firing`, else empty), `TEST` (`1` for `test-notify`, else `0`),
/// `RULE_SUMMARY` and `RUNBOOK_URL` (the rule's, empty when none), and
/// `HOSTWATCH_LABEL_<NAME>` per label (the series', then the rule's static ones), the name
/// upper-cased with every character other than
/// `A-Z0-9` turned into `_` (`mount` → `HOSTWATCH_LABEL_MOUNT`). Values are passed verbatim,
/// except NUL bytes, which an environment cannot carry and which are dropped (the JSON on
/// stdin has them).
pub fn alert_env(channel: &str, event: &AlertEvent) -> Vec<(String, String)> {
    let mut vars = vec![
        ("CHANNEL".to_string(), channel.to_string()),
        ("HOST".into(), event.host.clone()),
        ("RULE".into(), event.rule.clone()),
        ("SERIES".into(), event.series.clone()),
        ("METRIC".into(), event.metric.clone()),
        ("SEVERITY".into(), event.severity.as_str().to_string()),
        ("EVENT".into(), event.event.as_str().to_string()),
        ("VALUE".into(), event.value.map(|v| v.to_string()).unwrap_or_default()),
        ("VALUE_TEXT".into(), event.value_text.clone()),
        ("THRESHOLD".into(), event.threshold.clone()),
        ("SINCE".into(), event.since.to_string()),
        ("TS".into(), event.ts.to_string()),
        ("SEQ".into(), event.seq.to_string()),
        ("KEY".into(), event.key.clone()),
        ("EPISODE_KEY".into(), event.episode_key.clone()),
        ("SUMMARY".into(), event.summary()),
        ("DESCRIPTION".into(), event.description.clone().unwrap_or_default()),
        ("REASON".into(), event.context.reason.clone().unwrap_or_default()),
        ("LAST_SEEN".into(), event.context.last_seen.map(|t| t.to_string()).unwrap_or_default()),
        (
            "ESCALATED_BY".into(),
            event.context.escalated_by.map(|e| e.as_str().to_string()).unwrap_or_default(),
        ),
        (
            "EPISODE_DURATION_S".into(),
            event.context.episode_duration_s.map(|d| d.to_string()).unwrap_or_default(),
        ),
        ("PEAK".into(), event.context.peak.map(|p| p.to_string()).unwrap_or_default()),
        ("PEAK_TEXT".into(), event.context.peak_text.clone().unwrap_or_default()),
        (
            "FLAP_PERCENT".into(),
            event.context.flap_percent.map(|p| p.to_string()).unwrap_or_default(),
        ),
        (
            "STATE".into(),
            match event.context.state {
                Some(crate::event::CurrentState::Ok) => "ok",
                Some(crate::event::CurrentState::Firing) => "firing",
                None => "",
            }
            .to_string(),
        ),
        ("TEST".into(), if event.test { "1" } else { "0" }.to_string()),
        ("RULE_SUMMARY".into(), event.context.summary.clone().unwrap_or_default()),
        ("RUNBOOK_URL".into(), event.context.runbook_url.clone().unwrap_or_default()),
    ];
    // The series' labels, then the rule's static ones (whose names never repeat a series
    // label's; one that only differs in case keeps the series label's variable).
    for (name, value) in event.labels.iter().chain(&event.context.rule_labels) {
        let var = format!("LABEL_{}", env_name(name));
        if !vars.iter().any(|(k, _)| *k == var) {
            vars.push((var, value.clone()));
        }
    }
    vars.into_iter().map(|(k, v)| (format!("HOSTWATCH_{k}"), v.replace('\0', ""))).collect()
}

/// The variables of a grouped call (`"group": true`): `HOSTWATCH_CHANNEL`, `HOST`, `EVENT`
/// (`group`), `GROUP_SIZE`, `KEY` (the group's key), `SUMMARY` (the group's headline),
/// `SEVERITY` (the worst of what is not resolved; empty when everything is). Each
/// notification is in the JSON on stdin.
pub fn group_env(channel: &str, events: &[AlertEvent]) -> Vec<(String, String)> {
    let group = super::group::group_json(events);
    let text = |key: &str| group[key].as_str().unwrap_or("").to_string();
    let vars = [
        ("CHANNEL", channel.to_string()),
        ("HOST", text("host")),
        ("EVENT", "group".to_string()),
        ("GROUP_SIZE", events.len().to_string()),
        ("KEY", text("key")),
        ("SUMMARY", text("summary")),
        (
            "SEVERITY",
            super::group::worst_open(events).map(|s| s.as_str().to_string()).unwrap_or_default(),
        ),
    ];
    vars.into_iter().map(|(k, v)| (format!("HOSTWATCH_{k}"), v.replace('\0', ""))).collect()
}

/// `mount` → `MOUNT`; anything but ASCII letters and digits becomes `_`.
fn env_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect()
}

/// The event as the hook reads it on stdin: its JSON (with the channel's rendered `title`
/// and `text`) and a newline.
fn stdin_payload(event: &AlertEvent, templates: &crate::config::channels::Templates) -> String {
    let mut s = templates.event_json(event).to_string();
    s.push('\n');
    s
}

/// The first lines of stderr, trimmed and joined with ` | `, with a count of the rest.
fn stderr_excerpt(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    let mut shown: Vec<String> = lines
        .iter()
        .take(STDERR_LINES)
        .map(|l| {
            if l.chars().count() > LINE_CHARS {
                format!("{}…", l.chars().take(LINE_CHARS).collect::<String>())
            } else {
                (*l).to_string()
            }
        })
        .collect();
    if lines.len() > STDERR_LINES {
        shown.push(format!("({} more lines)", lines.len() - STDERR_LINES));
    }
    Some(shown.join(" | "))
}

impl Sender for ExecSender {
    /// What the hook would get: argv, working directory, environment (the channel's own
    /// `env` values redacted, as they may be secrets) and stdin.
    fn render(&self, event: &AlertEvent) -> Rendered {
        let mut argv = vec![self.program.display().to_string()];
        argv.extend(self.args.iter().cloned());
        let mut env = serde_json::Map::new();
        for key in self.env.keys() {
            env.insert(key.clone(), REDACTED.into());
        }
        for (key, value) in self.alert_env(event) {
            env.insert(key, value.into());
        }
        let body = serde_json::json!({
            "command": argv,
            "cwd": self.cwd.as_ref().map(|d| d.display().to_string()),
            "timeout": format_duration(self.timeout),
            "env": env,
            "stdin": self.templates.event_json(event),
        });
        Rendered {
            content_type: "application/json".to_string(),
            body: serde_json::to_string_pretty(&body).unwrap_or_default(),
        }
    }

    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
        self.execute(self.command(event), stdin_payload(event, &self.templates).into_bytes())
    }

    fn group_capacity(&self) -> usize {
        GROUP_CAPACITY
    }

    fn send_group(&mut self, events: &[AlertEvent]) -> Result<Receipt, SendError> {
        let mut stdin = super::group::group_json(events).to_string();
        stdin.push('\n');
        self.execute(self.command_with(group_env(&self.channel, events)), stdin.into_bytes())
    }
}

/// Notifications in one grouped call (`"group": true`).
const GROUP_CAPACITY: usize = 100;

impl ExecSender {
    /// Runs the hook once and reads its outcome.
    fn execute(&self, command: Command, stdin: Vec<u8>) -> Result<Receipt, SendError> {
        let program = self.program.display().to_string();
        let out = match run::run(command, stdin, self.timeout) {
            Ok(out) => out,
            Err(e) => {
                let reason = format!("cannot run hook {program}: {e}");
                return Err(match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                        SendError::permanent(reason)
                    }
                    _ => SendError::transient(reason),
                });
            }
        };
        if !out.stderr.is_empty() {
            log::debug!(
                "channel {}: hook {program} stderr: {}",
                self.channel,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        if out.timed_out {
            let what = format!(
                "timed out after {}; its process group was killed",
                format_duration(self.timeout)
            );
            return Err(SendError::transient(self.describe_failure(what, &out.stderr)));
        }
        if out.killed_leftovers {
            log::warn!(
                "channel {}: hook {program} exited but left processes holding its output until \
                 the {} timeout; they were killed (redirect a background job's output)",
                self.channel,
                format_duration(self.timeout)
            );
        }
        let Some(status) = out.status else {
            return Err(SendError::transient(format!("hook {program}: lost track of its exit")));
        };
        match (status.code(), status.signal()) {
            (Some(0), _) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let first = stdout.lines().map(str::trim).find(|l| !l.is_empty());
                let answer = match first {
                    Some(line) => format!("hook exited 0: {line}"),
                    None => "hook exited 0".to_string(),
                };
                Ok(Receipt { answer })
            }
            (Some(EXIT_RETRY), _) => Err(SendError::transient(self.describe_failure(
                format!("exited with {EXIT_RETRY} (EX_TEMPFAIL: retry later)"),
                &out.stderr,
            ))),
            (Some(code), _) => Err(SendError::permanent(
                self.describe_failure(format!("exited with {code}"), &out.stderr),
            )),
            (None, Some(sig)) => Err(SendError::permanent(
                self.describe_failure(format!("was killed by signal {sig}"), &out.stderr),
            )),
            (None, None) => Err(SendError::permanent(format!("hook {program} ended: {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AlertEvent {
        let mut e = AlertEvent::test_event("web-01", crate::config::Severity::Critical, 1.7e9);
        e.labels.insert("mount".into(), "$(touch /tmp/x); rm -rf / `id`\n\"'".into());
        e.labels.insert("weird key!".into(), "a\0b".into());
        e
    }

    #[test]
    fn the_rules_context_and_the_rendered_templates_reach_the_hook() {
        let mut e = event();
        e.context.summary = Some("Disk $(full)".into());
        e.context.runbook_url = Some("https://wiki/disk".into());
        e.context.rule_labels.insert("team".into(), "db; rm -rf /".into());
        e.context.rule_labels.insert("Mount".into(), "shadowed".into());
        let env: BTreeMap<String, String> = alert_env("pager", &e).into_iter().collect();
        assert_eq!(env["HOSTWATCH_RULE_SUMMARY"], "Disk $(full)");
        assert_eq!(env["HOSTWATCH_RUNBOOK_URL"], "https://wiki/disk");
        assert_eq!(env["HOSTWATCH_LABEL_TEAM"], "db; rm -rf /");
        // A static label whose variable a series label already has leaves it alone.
        assert_eq!(env["HOSTWATCH_LABEL_MOUNT"], "$(touch /tmp/x); rm -rf / `id`\n\"'");
        let config = ExecConfig {
            command: vec!["/bin/true".into()],
            timeout: Duration::from_secs(1),
            env: BTreeMap::new(),
            cwd: None,
            templates: crate::config::channels::Templates {
                title: Some(
                    crate::notify::template::Template::parse("{{rule}}: {{summary}}").unwrap(),
                ),
                text: None,
            },
        };
        let s = ExecSender::new("pager", &config).unwrap();
        let shown: serde_json::Value = serde_json::from_str(&s.render(&e).body).unwrap();
        assert_eq!(shown["env"]["HOSTWATCH_TITLE"], "hostwatch_test: Disk $(full)");
        assert_eq!(shown["env"]["HOSTWATCH_TEXT"], "");
        assert_eq!(shown["stdin"]["title"], "hostwatch_test: Disk $(full)");
        assert!(shown["stdin"].get("text").is_none());
        assert_eq!(shown["stdin"]["rule_labels"]["team"], "db; rm -rf /");
    }

    #[test]
    fn an_escalation_by_time_and_no_data_reach_the_hook_s_environment() {
        let mut e = event();
        e.event = crate::alerts::EventKind::Escalated;
        e.threshold = "> 50".into();
        e.context.escalated_by = Some(crate::alerts::EscalatedBy::Time);
        e.context.reason = Some("warning for 15m, escalated to critical by policy".into());
        e.context.episode_duration_s = Some(900.0);
        e.context.peak = Some(61.5);
        e.context.peak_text = Some("61.5%".into());
        let env: BTreeMap<String, String> = alert_env("pager", &e).into_iter().collect();
        assert_eq!(env["HOSTWATCH_ESCALATED_BY"], "time");
        assert_eq!(env["HOSTWATCH_THRESHOLD"], "> 50");
        assert_eq!(env["HOSTWATCH_REASON"], "warning for 15m, escalated to critical by policy");
        assert_eq!(env["HOSTWATCH_EPISODE_DURATION_S"], "900");
        assert_eq!(
            (env["HOSTWATCH_PEAK"].as_str(), env["HOSTWATCH_PEAK_TEXT"].as_str()),
            ("61.5", "61.5%")
        );
        assert!(
            env["HOSTWATCH_SUMMARY"].contains("(warning threshold > 50); warning for 15m"),
            "{}",
            env["HOSTWATCH_SUMMARY"]
        );
        e.event = crate::alerts::EventKind::FlapEnd;
        e.context = Default::default();
        e.context.flap_percent = Some(21.1);
        e.context.state = Some(crate::event::CurrentState::Ok);
        let env: BTreeMap<String, String> = alert_env("pager", &e).into_iter().collect();
        assert_eq!(
            (env["HOSTWATCH_EVENT"].as_str(), env["HOSTWATCH_STATE"].as_str()),
            ("flap_end", "ok")
        );
        assert_eq!(env["HOSTWATCH_FLAP_PERCENT"], "21.1");
        e.event = crate::alerts::EventKind::Nodata;
        e.context = Default::default();
        e.context.reason = Some("mount disappeared".into());
        e.context.last_seen = Some(1_700_000_000.0);
        let env: BTreeMap<String, String> = alert_env("pager", &e).into_iter().collect();
        assert_eq!(env["HOSTWATCH_EVENT"], "nodata");
        assert_eq!(env["HOSTWATCH_LAST_SEEN"], "1700000000");
        assert_eq!(env["HOSTWATCH_ESCALATED_BY"], "");
        assert!(
            env["HOSTWATCH_SUMMARY"].contains("since 2023-11-14T22:13:20Z: mount disappeared"),
            "{}",
            env["HOSTWATCH_SUMMARY"]
        );
    }

    #[test]
    fn alert_variables_carry_values_verbatim() {
        let env: BTreeMap<String, String> = alert_env("pager", &event()).into_iter().collect();
        assert_eq!(env["HOSTWATCH_CHANNEL"], "pager");
        assert_eq!(env["HOSTWATCH_HOST"], "web-01");
        assert_eq!(env["HOSTWATCH_RULE"], "hostwatch_test");
        assert_eq!(env["HOSTWATCH_SEVERITY"], "critical");
        assert_eq!(env["HOSTWATCH_EVENT"], "firing");
        assert_eq!(env["HOSTWATCH_VALUE"], "99.9");
        assert_eq!(env["HOSTWATCH_SINCE"], "1700000000");
        assert_eq!(env["HOSTWATCH_TEST"], "1");
        assert_eq!(env["HOSTWATCH_LABEL_MOUNT"], "$(touch /tmp/x); rm -rf / `id`\n\"'");
        assert_eq!(env["HOSTWATCH_LABEL_WEIRD_KEY_"], "ab");
    }

    #[test]
    fn stderr_excerpts_keep_the_first_lines() {
        let text = b"one\n\n two \nthree\nfour\nfive\nsix\nseven\n";
        assert_eq!(
            stderr_excerpt(text).unwrap(),
            "one | two | three | four | five | (2 more lines)"
        );
        assert_eq!(stderr_excerpt(b"\n \n"), None);
    }

    #[test]
    fn programs_are_resolved_at_start_up() {
        assert_eq!(
            resolve_program("sh", None, Some("/nonexistent:/bin")).unwrap(),
            Path::new("/bin/sh")
        );
        let e = resolve_program("no-such-hook", None, Some("/bin")).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.cause.as_str()),
            ("no-such-hook", "not found in the hook's PATH")
        );
        let e = resolve_program("/nonexistent/hook", None, None).unwrap_err();
        assert_eq!((e.path.as_str(), e.cause.as_str()), ("/nonexistent/hook", "no such file"));
        let e = resolve_program("./passwd", Some(Path::new("/etc")), None).unwrap_err();
        assert!(e.cause.contains("not executable"), "{e:?}");
    }
}
