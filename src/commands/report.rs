//! `hostwatch report [--since 24h] [--until T] [--format text|json|html] [--state-dir DIR]`:
//! prints the report of a period, built from the state directory's history file and events
//! log exactly as a configured report is (times in the display zone, `display.timezone`).
//!
//! `--until` is an RFC 3339 time, Unix seconds, or a duration before now (default: now);
//! `--since` is a duration before `--until` (default 24h), or an absolute time likewise.

use crate::cli::ReportArgs;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command.
pub fn run(args: &ReportArgs, global_config: Option<&Path>) -> ExitCode {
    let config = match super::load_config(args.config.as_deref(), global_config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let now = crate::timefmt::now_unix();
    let until = match args.until.as_deref().map(|t| time(t, now)) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return super::usage_error(&format!("--until: {e}")),
        None => now,
    };
    let since = match time(&args.since, until) {
        Ok(t) => t,
        Err(e) => return super::usage_error(&format!("--since: {e}")),
    };
    if since >= until {
        return super::usage_error("--since must be before --until");
    }
    if !matches!(args.format.as_str(), "text" | "json" | "html") {
        return super::usage_error(&format!(
            "--format: expected text, json or html, found {:?}",
            args.format
        ));
    }
    let dir = args.state_dir.as_deref().unwrap_or(&config.state_dir);
    let report = match crate::report::build(dir, "adhoc", since, until, &config.host) {
        Ok(r) => r,
        Err(e) => return super::runtime_error(&e),
    };
    let out = match args.format.as_str() {
        "json" => crate::report::render::json(&report),
        "html" => crate::report::render::html(&report, "\n"),
        _ => crate::report::render::text(&report, "\n"),
    };
    crate::outln!("{}", out.trim_end());
    ExitCode::SUCCESS
}

/// A time: RFC 3339, Unix seconds, or a duration before `base`.
fn time(text: &str, base: f64) -> Result<f64, String> {
    if let Ok(t) = text.parse::<f64>()
        && t.is_finite()
        && t >= 0.0
    {
        return Ok(t);
    }
    if text.contains('T') || text.contains('-') {
        return crate::config::parse_rfc3339(text);
    }
    crate::config::units::parse_duration(text)
        .map(|d| base - d.as_secs_f64())
        .map_err(|e| format!("{e} (or an RFC 3339 time, or Unix seconds)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_absolute_or_before_the_base() {
        assert_eq!(time("1700000000", 5.0), Ok(1_700_000_000.0));
        assert_eq!(time("2h", 10_000.0), Ok(2800.0));
        assert_eq!(time("2023-11-14T22:13:20Z", 0.0), Ok(1_700_000_000.0));
        assert!(time("yesterday", 0.0).is_err());
    }
}
