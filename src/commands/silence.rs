//! `hostwatch silence add|list|remove`: manage the silences in `state_dir/silences.json`,
//! or with `state.store` the shared ones in Redis, which running daemons pick up at their
//! next tick. `add --host GLOB` names the agents a silence applies to (with a store, a
//! silence without it covers this host alone); `list` says where each silence lives
//! (`config`, `file`, `redis`); `remove` finds the id in the file, then in Redis.
//!
//! The config is read with [`super::load_state_config`]: the state directory, the rules'
//! names and the config's silences, no channel secret, so these commands work where the
//! variables holding Slack or SMTP secrets are not set. `add --rule GLOB` is refused when the
//! glob matches no configured rule (a typo would silence nothing), naming the closest rules,
//! unless `--force`. `add --every "mon-fri 22:00-06:00" [--tz ZONE]` adds a recurring
//! window (zone default: `display.timezone`, written into the file), with `--for` as how long
//! it recurs; `list` shows each schedule's current or next window in its zone and in UTC.

use crate::cli::{SilenceAction, SilenceArgs};
use crate::glob::glob_match;
use crate::metrics::LabelKey;
use crate::silence::{Schedule, Silence};
use crate::silence_store;
use crate::timefmt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

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
            let schedule = match (&add.every, &add.tz) {
                (Some(every), tz) => {
                    let (tz, zone) = match tz {
                        Some(name) => {
                            (name.clone(), crate::zone::Zone::by_name(name).map(Arc::new))
                        }
                        None => (config.display.timezone.clone(), Ok(config.display.zone.clone())),
                    };
                    if let Err(e) = &zone {
                        return super::usage_error(&format!("--tz: {e}"));
                    }
                    match Schedule::parse_every(every, Some(tz), zone) {
                        Ok(s) => Some(s),
                        Err(e) => return super::usage_error(&format!("--every: {e}")),
                    }
                }
                (None, Some(_)) => return super::usage_error("--tz needs --every"),
                (None, None) => None,
            };
            let until = match (&add.duration, &schedule) {
                (Some(text), _) => match super::parse_duration_flag("--for", text) {
                    Ok(d) => now + d.as_secs_f64(),
                    Err(code) => return code,
                },
                (None, Some(_)) => f64::INFINITY,
                (None, None) => {
                    return super::usage_error(
                        "give --for (like 2h) or --every (like \"sun 02:00-04:00\")",
                    );
                }
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
            if add.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
                return super::usage_error("--host: empty glob (use '*' for every host)");
            }
            // A shared silence names its hosts; one without --host covers this host alone,
            // as a local silence does.
            let host = match (&config.store, &add.host) {
                (_, Some(glob)) => Some(glob.clone()),
                (Some(_), None) => Some(config.host.clone()),
                (None, None) => None,
            };
            let silence = Silence {
                host,
                id: String::new(),
                rule: add.rule.clone(),
                matchers,
                until,
                schedule,
                comment: add.comment.clone(),
            };
            if config.store.is_some()
                && let Some(e) = silence.shared_error(now)
            {
                return super::usage_error(&format!("the shared silence would be skipped: {e}"));
            }
            let added = match &config.store {
                Some(store) => crate::store::add_silence(store, silence, now),
                None => silence_store::add(dir, silence, now),
            };
            match added {
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
            let shared = match &config.store {
                Some(store) => match crate::store::read_silences(store) {
                    Ok(s) => s,
                    Err(e) => return super::runtime_error(&e),
                },
                None => Vec::new(),
            };
            let active: Vec<(&str, &Silence)> = config
                .silences
                .iter()
                .map(|s| ("config", s))
                .chain(file.silences.iter().map(|s| ("file", s)))
                .chain(shared.iter().map(|s| ("redis", s)))
                .filter(|(_, s)| s.in_force(now))
                .collect();
            if list.json {
                let items: Vec<serde_json::Value> =
                    active.iter().map(|(from, s)| list_json(s, from, now)).collect();
                crate::outln!("{}", serde_json::to_string_pretty(&items).unwrap_or_default());
            } else {
                crate::outln!(
                    "{:<16} {:<7} {:<12} {:<20} {:<30} {:<24} COMMENT",
                    "ID",
                    "WHERE",
                    "HOST",
                    "RULE",
                    "MATCH",
                    "UNTIL"
                );
                for (from, s) in active {
                    let m: Vec<String> =
                        s.matchers.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    crate::outln!(
                        "{:<16} {:<7} {:<12} {:<20} {:<30} {:<24} {}",
                        if s.id.is_empty() { "(config)" } else { &s.id },
                        from,
                        s.host.as_deref().unwrap_or("*"),
                        s.rule.as_deref().unwrap_or("*"),
                        m.join(","),
                        if s.until.is_finite() { timefmt::human(s.until) } else { "no end".into() },
                        s.comment.escape_debug()
                    );
                    if let Some(line) = schedule_line(s, now) {
                        crate::outln!("{:<16} {line}", "");
                    }
                }
            }
        }
        SilenceAction::Remove(remove) => match remove_anywhere(&config, &remove.id) {
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

/// Removes the silence `id` from the local file, else from Redis (`state.store`).
fn remove_anywhere(config: &crate::config::StateConfig, id: &str) -> Result<bool, String> {
    if silence_store::remove(&config.state_dir, id)? {
        return Ok(true);
    }
    match &config.store {
        Some(store) => crate::store::remove_silence(store, id),
        None => Ok(false),
    }
}

/// A silence for `list --json`: as stored, with where it lives (`config`, `file`, `redis`)
/// and the schedule's next window.
fn list_json(s: &Silence, from: &str, now: f64) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["where"] = from.into();
    if let Some(schedule) = s.schedule_json(now) {
        v["schedule"] = schedule;
    }
    v
}

/// The second line of a scheduled silence: `every sun 02:00-04:00 Europe/Lisbon, next
/// 2026-12-06 02:00:00 WET to 04:00:00 WET (2026-12-06T02:00:00Z to 2026-12-06T04:00:00Z)`,
/// or `now` instead of `next` inside a window.
fn schedule_line(s: &Silence, now: f64) -> Option<String> {
    let schedule = s.schedule.as_ref()?;
    let Some(zone) = schedule.zone() else {
        return Some(format!(
            "every {schedule}: never active, {}",
            schedule.zone_error().unwrap_or_default()
        ));
    };
    Some(match s.next_window(now) {
        Some((start, end)) => format!(
            "every {schedule}, {} {} to {} ({} to {})",
            if start <= now { "now" } else { "next" },
            timefmt::human_in(zone, start),
            timefmt::human_in(zone, end),
            timefmt::rfc3339(start),
            timefmt::rfc3339(end),
        ),
        None => format!("every {schedule}, no window before it ends"),
    })
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
