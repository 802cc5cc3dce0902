//! The man page `hostwatch(1)` in roff (`man` macros), rendered from the command table: NAME,
//! SYNOPSIS, OPTIONS, COMMANDS and EXIT STATUS come from the text `--help` prints; only what
//! `--help` has no place for (a longer DESCRIPTION, FILES, ENVIRONMENT, SEE ALSO) is written
//! here. The committed `packaging/man/hostwatch.1` is this output (`tests/manpage.rs` fails
//! when they differ). Not for the completion scripts, and no per-command text.

use super::{Command, Flag};
use std::fmt::Write;

/// What the page says beyond `--help`, after the top-level description.
const DESCRIPTION: &str = "\
One synchronous thread samples the host every interval (default 5 s), feeds each series \
through the rules (thresholds with for, avg, max, min or N-of-M windows, hysteresis, \
escalation, flap detection) and keeps alert state across restarts; one worker thread per \
channel delivers notifications (Slack, Teams, e-mail, webhooks, Alertmanager, exec hooks, \
plugins) from an outbox kept in the state directory, so a crash or an outage loses nothing. \
It runs as a daemon (run, as the hostwatch.service unit does), as a cron or timer check with \
Nagios exit codes (once), or offline over recorded samples (replay, test-rules).
.PP
Without --config, hostwatch reads /etc/hostwatch/config.json, else \
/etc/hostwatch/config.yaml, else its embedded default rules. The config is strict JSON (or \
YAML, by the file's extension); hostwatch check validates it and prints it as in effect, \
secrets redacted. The README (/usr/share/doc/hostwatch/README.md) documents every key.";

/// (path, what it is) for FILES.
const FILES: &[(&str, &str)] = &[
    (
        "/etc/hostwatch/config.json",
        "The config read when --config is not given (if it is missing: /etc/hostwatch/config.yaml).",
    ),
    (
        "/var/lib/hostwatch/",
        "The state directory: state_dir in the installed config, and the default as root \
         (otherwise $XDG_STATE_HOME/hostwatch or ~/.local/state/hostwatch). One agent per \
         directory (a lock on it).",
    ),
    (
        "/var/lib/hostwatch/state.json",
        "Alert states and the outbox of notifications not yet delivered (for once: windows and \
         counters too), written atomically.",
    ),
    (
        "/var/lib/hostwatch/outbox.journal",
        "Delivery attempts and acknowledgements since the last save.",
    ),
    (
        "/var/lib/hostwatch/events.jsonl",
        "The events log: notifications, delivery failures, silenced and rate-limited ones.",
    ),
    ("/var/lib/hostwatch/silences.json", "Silences added by hostwatch silence or through the API."),
    (
        "/var/lib/hostwatch/history.hwh",
        "The short history (fixed size), read by hostwatch history and report.",
    ),
    ("/var/lib/hostwatch/reports.json", "When each configured report was last sent."),
    (
        "/usr/lib/systemd/system/hostwatch.service",
        "The daemon's unit; hostwatch-once.service and hostwatch-once.timer run once instead.",
    ),
];

/// (variable, what it does) for ENVIRONMENT.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "HOSTWATCH_HOST, HOSTWATCH_INTERVAL, HOSTWATCH_STATE_DIR",
        "Override the config's host, interval and state_dir (an empty variable is ignored).",
    ),
    (
        "NAME in ${NAME}",
        "Any ${NAME} in a config string is replaced by the variable's value; an unset one is an error naming it (${NAME:-default} gives a default).",
    ),
    ("XDG_STATE_HOME, HOME", "Where the default state directory is when not run as root."),
    ("SSL_CERT_FILE", "A CA bundle to trust instead of the system's roots, for HTTPS and SMTP."),
    (
        "TZ, TZDIR",
        "The local time zone and the zone database's directory (default /usr/share/zoneinfo).",
    ),
    (
        "NOTIFY_SOCKET, WATCHDOG_USEC",
        "Set by systemd for a Type=notify service: run reports readiness, reloads, stopping and \
         a status line there, and pings the watchdog after each tick.",
    ),
];

const SEE_ALSO: &str = "systemctl(1), systemd.service(5), systemd.timer(5), crontab(5)";

/// The whole page.
pub fn page(table: &Command) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        ".\\\" Generated from hostwatch's command table (src/cli.rs, the text of --help) by src/manual/roff.rs.\n\
         .\\\" Do not edit: regenerate with HOSTWATCH_BLESS=1 cargo test --test manpage\n\
         .TH HOSTWATCH 1 \"\" \"hostwatch {}\" \"User Commands\"\n\
         .\\\" No hyphenation: flags, paths and values stay whole, as typed.\n\
         .nh\n\
         .ad l",
        env!("CARGO_PKG_VERSION")
    );
    let summary = table.description.trim_end_matches('.');
    let summary = summary.strip_prefix("hostwatch ").unwrap_or(summary);
    let _ = writeln!(s, ".SH NAME\nhostwatch \\- {}", escape(summary));

    s.push_str(".SH SYNOPSIS\n");
    for (i, c) in
        table.walk().into_iter().filter(|c| c.commands.is_empty() || c.path.is_empty()).enumerate()
    {
        if i > 0 {
            s.push_str(".br\n");
        }
        let _ = writeln!(s, "\\fB{}\\fR {}", escape(&c.full_name()), escape(&c.usage()));
    }

    let _ = writeln!(s, ".SH DESCRIPTION\n{}\n.PP", escape(table.description));
    for line in DESCRIPTION.lines() {
        if line.starts_with('.') {
            let _ = writeln!(s, "{line}");
        } else {
            let _ = writeln!(s, "{}", escape(line));
        }
    }

    s.push_str(".SH OPTIONS\nThese come before the command; every command also takes \\fB\\-\\-help\\fR.\n");
    flags(&mut s, &table.flags);

    s.push_str(".SH COMMANDS\n");
    for c in table.walk().into_iter().skip(1) {
        let _ = writeln!(s, ".SS \"{}\"", escape(&c.full_name()));
        let _ = writeln!(s, "\\fB{}\\fR {}\n.PP", escape(&c.full_name()), escape(&c.usage()));
        let _ = writeln!(s, "{}", escape(c.description));
        for p in &c.positionals {
            let _ = writeln!(s, ".TP\n\\fI{}\\fR\n{}", escape(p.name), escape(p.description));
        }
        let own: Vec<&Flag> = c.flags.iter().filter(|f| f.long != "--help").collect();
        flags(&mut s, own);
        if !c.commands.is_empty() {
            let names: Vec<String> = c
                .commands
                .iter()
                .map(|sub| format!("\\fB{}\\fR", escape(sub.path.last().unwrap())))
                .collect();
            let _ = writeln!(s, ".PP\nCommands: {}.", names.join(", "));
        }
    }

    s.push_str(
        ".SH \"EXIT STATUS\"\n\
         0 on success; 1 on a failure at run time, or a command line that cannot be parsed; 2 \
         for an invalid config or argument value. These commands say more:\n",
    );
    for c in table.walk().into_iter().filter(|c| !c.exit_codes.is_empty()) {
        let _ = writeln!(s, ".PP\n\\fB{}\\fR", escape(&c.full_name()));
        for (code, what) in &c.exit_codes {
            let _ = writeln!(s, ".TP\n.B {code}\n{}", escape(what));
        }
    }

    s.push_str(".SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        let _ = writeln!(s, ".TP\n.B {}\n{}", escape(name), escape(what));
    }
    s.push_str(".SH FILES\n");
    for (path, what) in FILES {
        let _ = writeln!(s, ".TP\n.I {}\n{}", escape(path), escape(what));
    }
    let _ = writeln!(s, ".SH \"SEE ALSO\"\n{}", escape(SEE_ALSO));
    s
}

fn flags<'a>(s: &mut String, flags: impl IntoIterator<Item = &'a Flag>) {
    for f in flags {
        let mut head = String::new();
        if let Some(x) = f.short {
            let _ = write!(head, "\\fB\\-{x}\\fR, ");
        }
        let _ = write!(head, "\\fB{}\\fR", escape(f.long));
        if let Some(v) = f.value {
            let _ = write!(head, " \\fI{}\\fR", escape(v));
        }
        let _ = writeln!(s, ".TP\n{head}\n{}", escape(f.description));
    }
}

/// Text as roff reads it literally: backslashes and hyphens escaped, no control character at
/// a line's start, anything beyond ASCII as a named glyph.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    if text.starts_with(['.', '\'']) {
        out.push_str("\\&");
    }
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            c if c.is_ascii() => out.push(c),
            c => {
                let _ = write!(out, "\\[u{:04X}]", c as u32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_keeps_text_literal() {
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("a\\b --x"), "a\\eb \\-\\-x");
        assert_eq!(escape("…"), "\\[u2026]");
    }
}
