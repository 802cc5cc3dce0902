//! `hostwatch check`: validate a config, check that its plugins and exec programs can work
//! (`notify::preflight`), and print it as in effect, secrets redacted, as JSON (the default)
//! or YAML (`--format yaml`).

use crate::cli::CheckArgs;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command: exit 0 and the effective config, or exit 2 and every error.
pub fn run(args: &CheckArgs, global_config: Option<&Path>) -> ExitCode {
    let yaml = match args.format.as_str() {
        "json" => false,
        "yaml" => true,
        other => {
            return super::usage_error(&format!(
                "--format: unknown format \"{other}\" (expected json or yaml)"
            ));
        }
    };
    let loaded = if args.syntax_only {
        super::load_config(args.config.as_deref(), global_config)
    } else {
        super::load_runnable_config(args.config.as_deref(), global_config)
    };
    match loaded {
        Ok(config) => {
            let effective = config.to_effective_json();
            if yaml {
                let text = crate::config::yaml::emit::to_yaml(&effective);
                crate::outln!("{}", text.trim_end_matches('\n'));
            } else {
                let text = serde_json::to_string_pretty(&effective)
                    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
                crate::outln!("{text}");
            }
            // On stderr, so stdout stays the effective config alone.
            crate::errln!(
                "hostwatch: {}: {} rule{} in effect, from {}",
                config.source,
                config.rules.len(),
                if config.rules.len() == 1 { "" } else { "s" },
                config.rule_set.describe(&config.source)
            );
            log::info!(source = config.source.as_str(), rules = config.rules.len(); "config is valid");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
