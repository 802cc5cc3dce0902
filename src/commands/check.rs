//! `hostwatch check`: validate a config, check that its plugins and exec programs can work
//! (`notify::preflight`), and print it as in effect, secrets redacted.

use crate::cli::CheckArgs;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command: exit 0 and the effective config, or exit 2 and every error.
pub fn run(args: &CheckArgs, global_config: Option<&Path>) -> ExitCode {
    let loaded = if args.syntax_only {
        super::load_config(args.config.as_deref(), global_config)
    } else {
        super::load_runnable_config(args.config.as_deref(), global_config)
    };
    match loaded {
        Ok(config) => {
            let text = serde_json::to_string_pretty(&config.to_effective_json())
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            crate::outln!("{text}");
            // On stderr, so stdout stays the effective config as JSON.
            crate::errln!(
                "hostwatch: {}: {} rule{} in effect, from {}",
                config.source,
                config.rules.len(),
                if config.rules.len() == 1 { "" } else { "s" },
                config.rule_set.describe()
            );
            log::info!(source = config.source.as_str(), rules = config.rules.len(); "config is valid");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
