//! `hostwatch silence add|list|remove`: manage the silences in `state_dir/silences.json`,
//! which a running daemon picks up at its next tick.
//!
//! The config is read with [`super::load_state_config`]: the state directory, the rules'
//! names and the config's silences, no channel secret, so these commands work where the
//! variables holding Slack or SMTP secrets are not set. `add --rule GLOB` is refused when the
//! glob matches no configured rule (a typo would silence nothing), naming the closest rules,
//! unless `--force`.

use crate::cli::{SilenceAction, SilenceArgs};
use crate::glob::glob_match;
use crate::metrics::LabelKey;
use crate::silence::Silence;
use crate::silence_store;
use crate::timefmt;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command.
pub fn run(args: &SilenceArgs, global_config: Option<&Path>) -> ExitCode {
    let config = match super::load_state_config(args.config.as_deref(), global_config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let dir = &config.state_dir;
    let now = timefmt::now_unix();
    match &args.action {
        SilenceAction::Add(add) => {
            let duration = match super::parse_duration_flag("--for", &add.duration) {
                Ok(d) => d,
                Err(code) => return code,
            };
            if let Some(glob) = &add.rule
                && let Err(e) = check_rule_glob(glob, &config.rule_names)
            {
                if !add.force {
                    return super::usage_error(&format!("{e}; give --force to add it anyway"));
                }
                crate::errln!("hostwatch: warning: {e}; added anyway (--force)");
            }
            let mut matchers = std::collections::BTreeMap::new();
            for m in &add.matchers {
                let Some((k, v)) = m.split_once('=') else {
                    return super::usage_error(&format!("--match: expected KEY=GLOB, got \"{m}\""));
                };
                if LabelKey::parse(k).is_none() {
                    return super::usage_error(&format!(
                        "--match: unknown label \"{k}\" (expected core, mount, device or iface)"
                    ));
                }
                matchers.insert(k.to_string(), v.to_string());
            }
            let silence = Silence {
                id: String::new(),
                rule: add.rule.clone(),
                matchers,
                until: now + duration.as_secs_f64(),
                comment: add.comment.clone(),
            };
            match silence_store::add(dir, silence, now) {
                Ok(id) => {
                    crate::outln!("{id}");
                }
                Err(e) => return super::runtime_error(&e),
            }
        }
        SilenceAction::List(list) => {
            let file = match silence_store::read(dir) {
                Ok(f) => f,
                Err(e) => return super::runtime_error(&e),
            };
            let active: Vec<&Silence> = config
                .silences
                .iter()
                .chain(file.silences.iter())
                .filter(|s| s.until > now)
                .collect();
            if list.json {
                crate::outln!("{}", serde_json::to_string_pretty(&active).unwrap_or_default());
            } else {
                crate::outln!(
                    "{:<16} {:<20} {:<30} {:<24} COMMENT",
                    "ID",
                    "RULE",
                    "MATCH",
                    "UNTIL"
                );
                for s in active {
                    let m: Vec<String> =
                        s.matchers.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    crate::outln!(
                        "{:<16} {:<20} {:<30} {:<24} {}",
                        if s.id.is_empty() { "(config)" } else { &s.id },
                        s.rule.as_deref().unwrap_or("*"),
                        m.join(","),
                        timefmt::human(s.until),
                        s.comment.escape_debug()
                    );
                }
            }
        }
        SilenceAction::Remove(remove) => match silence_store::remove(dir, &remove.id) {
            Ok(true) => {
                crate::outln!("removed {}", remove.id);
            }
            Ok(false) => {
                return super::usage_error(&format!("no silence with id \"{}\"", remove.id));
            }
            Err(e) => return super::runtime_error(&e),
        },
    }
    ExitCode::SUCCESS
}

/// How many rule names a refused `--rule` offers.
const SUGGESTIONS: usize = 3;

/// `Err` with a sentence naming the closest rules when `glob` matches none of `rules`.
fn check_rule_glob(glob: &str, rules: &[String]) -> Result<(), String> {
    if rules.iter().any(|r| glob_match(glob, r)) {
        return Ok(());
    }
    if rules.is_empty() {
        return Err(format!("--rule \"{glob}\" matches no rule (the config has no rules)"));
    }
    // Compared without its wildcards: `disk_rot*` is close to `disk_root`.
    let word: String = glob.chars().filter(|c| !matches!(c, '*' | '?')).collect();
    let names: Vec<&str> = rules.iter().map(String::as_str).collect();
    let near: Vec<String> = crate::config::closest(&word, &names, SUGGESTIONS)
        .iter()
        .map(|n| format!("{n:?}"))
        .collect();
    Err(format!("--rule \"{glob}\" matches no configured rule (did you mean {}?)", near.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_glob_that_matches_nothing_names_the_closest_rules() {
        let rules: Vec<String> =
            ["cpu_high", "disk_root", "disk_data", "mem_high"].map(String::from).into();
        assert_eq!(check_rule_glob("disk_*", &rules), Ok(()));
        assert_eq!(check_rule_glob("*", &rules), Ok(()));
        assert_eq!(check_rule_glob("mem_high", &rules), Ok(()));
        let e = check_rule_glob("disk_rot", &rules).unwrap_err();
        assert!(
            e.starts_with(
                "--rule \"disk_rot\" matches no configured rule (did you mean \"disk_root\", "
            ),
            "{e}"
        );
        let e = check_rule_glob("nope_*", &rules).unwrap_err();
        assert_eq!(e.matches('"').count(), 2 + 2 * SUGGESTIONS, "{e}");
        let e = check_rule_glob("x", &[]).unwrap_err();
        assert!(e.contains("the config has no rules"), "{e}");
    }
}
