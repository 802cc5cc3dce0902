//! The subcommands' bodies and what they share (config loading, exit codes, version text).

pub mod check;
pub mod completions;
pub mod history;
pub mod once;
pub mod replay;
pub mod report;
pub mod run;
pub mod sample;
pub mod silence;
pub mod status;
pub mod test_notify;
pub mod test_rules;

use crate::config::{self, Config};
use std::path::Path;
use std::process::ExitCode;

/// Exit code for an invalid config or invalid arguments.
pub const EXIT_INVALID: u8 = 2;

/// `hostwatch 0.1.0 (rev …, target, linkage)` and the enabled features.
pub fn version_text() -> String {
    let features = env!("HOSTWATCH_FEATURES");
    format!(
        "hostwatch {} (rev {}, {}, {} build)\nfeatures: {}",
        env!("CARGO_PKG_VERSION"),
        env!("HOSTWATCH_GIT_REVISION"),
        env!("HOSTWATCH_TARGET"),
        env!("HOSTWATCH_LINKAGE"),
        if features.is_empty() { "none" } else { features }
    )
}

/// Prints a usage error and returns the invalid-input exit code.
pub fn usage_error(message: &str) -> ExitCode {
    crate::errln!("hostwatch: {message}");
    ExitCode::from(EXIT_INVALID)
}

/// Prints a runtime failure (I/O, state directory) and returns exit code 1.
pub fn runtime_error(message: &str) -> ExitCode {
    crate::errln!("hostwatch: {message}");
    ExitCode::FAILURE
}

/// Loads the config named by the subcommand's `--config`, else the global one, else the
/// default; prints every error on failure. Sets the display zone of times shown to people.
pub fn load_config(local: Option<&Path>, global: Option<&Path>) -> Result<Config, ExitCode> {
    let config = config::load(local.or(global)).map_err(|errors| {
        crate::errln!("{errors}");
        ExitCode::from(EXIT_INVALID)
    })?;
    crate::timefmt::set_display_zone(config.display.zone.clone());
    Ok(config)
}

/// [`load_config`] for the commands that only manage `state_dir` (`silence`): reads the
/// state directory, rule names and config silences ([`config::load_state`]) and resolves no
/// channel secret, so it works where the variables holding them are unset. Never for a
/// command that delivers or checks delivery: `check`, `run` and `once` keep refusing a
/// missing secret.
pub fn load_state_config(
    local: Option<&Path>,
    global: Option<&Path>,
) -> Result<config::StateConfig, ExitCode> {
    let config = config::load_state(local.or(global)).map_err(|errors| {
        crate::errln!("{errors}");
        ExitCode::from(EXIT_INVALID)
    })?;
    crate::timefmt::set_display_zone(config.display.zone.clone());
    Ok(config)
}

/// [`load_config`], then the start-up checks of what can never work
/// ([`crate::notify::preflight`]: plugin files, exec programs); prints every failure, one
/// sentence a line, and returns the invalid-config exit code. For `check`, `run` and `once`.
pub fn load_runnable_config(
    local: Option<&Path>,
    global: Option<&Path>,
) -> Result<Config, ExitCode> {
    let config = load_config(local, global)?;
    if config.rules.is_empty() {
        let empty = config::format::Format::of(&config.source).empty_rules();
        log::warn!(source = config.source.as_str(); "no rules: nothing on this host is monitored (remove {empty} to use the embedded default rules)");
    }
    match crate::notify::preflight::check(&config) {
        Ok(()) => Ok(config),
        Err(errors) => {
            for e in &errors {
                crate::errln!("hostwatch: {e}");
            }
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// Parses a duration flag with the config's grammar (`5s`, `2m`, `1h30m`).
pub fn parse_duration_flag(flag: &str, text: &str) -> Result<std::time::Duration, ExitCode> {
    config::units::parse_duration(text).map_err(|e| usage_error(&format!("{flag}: {e}")))
}
