//! `hostwatch silence add|list|remove`: manage the silences in `state_dir/silences.json`,
//! which a running daemon picks up at its next tick.

use crate::cli::{SilenceAction, SilenceArgs};
use crate::metrics::LabelKey;
use crate::silence::Silence;
use crate::silence_store;
use crate::timefmt;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command.
pub fn run(args: &SilenceArgs, global_config: Option<&Path>) -> ExitCode {
    let config = match super::load_config(args.config.as_deref(), global_config) {
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
