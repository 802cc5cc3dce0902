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
    // Held until the command returns: a concurrent add or remove waits for this one.
    let _lock = match &args.action {
        SilenceAction::List(_) => None,
        _ => match silence_store::lock(dir) {
            Ok(l) => Some(l),
            Err(e) => return super::runtime_error(&e),
        },
    };
    let mut file = match silence_store::read(dir) {
        Ok(f) => f,
        Err(e) => return super::runtime_error(&e),
    };
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
            file.silences.retain(|s| s.until > now);
            // Unique among the kept silences even when several are added in one millisecond.
            let mut n = (now * 1000.0) as u64;
            while file.silences.iter().any(|s| s.id == format!("s{n:x}")) {
                n += 1;
            }
            let id = format!("s{n:x}");
            let silence = Silence {
                id: id.clone(),
                rule: add.rule.clone(),
                matchers,
                until: now + duration.as_secs_f64(),
                comment: add.comment.clone(),
            };
            file.silences.push(silence);
            if let Err(e) = silence_store::write(dir, &file) {
                return super::runtime_error(&e);
            }
            crate::outln!("{id}");
        }
        SilenceAction::List(list) => {
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
                        timefmt::rfc3339(s.until),
                        s.comment.escape_debug()
                    );
                }
            }
        }
        SilenceAction::Remove(remove) => {
            let before = file.silences.len();
            file.silences.retain(|s| s.id != remove.id);
            if file.silences.len() == before {
                return super::usage_error(&format!("no silence with id \"{}\"", remove.id));
            }
            if let Err(e) = silence_store::write(dir, &file) {
                return super::runtime_error(&e);
            }
            crate::outln!("removed {}", remove.id);
        }
    }
    ExitCode::SUCCESS
}
