//! `hostwatch test-notify CHANNEL`: send one test notification through a real channel and
//! print what the receiver answered (exit 0 accepted, 1 refused or unreachable); `--group N`
//! sends N as one grouped message, the way `group_wait` would.

use crate::cli::TestNotifyArgs;
use crate::config::{ChannelKind, Severity};
use crate::event::AlertEvent;
use crate::notify;
use std::path::Path;
use std::process::ExitCode;

/// Runs the command.
pub fn run(args: &TestNotifyArgs, global_config: Option<&Path>) -> ExitCode {
    let severity = match args.severity.as_str() {
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        other => {
            return super::usage_error(&format!(
                "--severity: unknown severity \"{other}\" (expected warning or critical)"
            ));
        }
    };
    let config = match super::load_config(args.config.as_deref(), global_config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(channel) = config.channels.get(&args.channel) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        return super::usage_error(&format!(
            "no channel named \"{}\" in {} (channels: {})",
            args.channel,
            config.source,
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ));
    };
    let event = AlertEvent::test_event(&config.host, severity, crate::timefmt::now_unix());
    let group = match args.group {
        None => None,
        Some(n) if n < 2 => return super::usage_error("--group: at least 2 notifications"),
        Some(n) => Some(group_of(&event, n)),
    };
    if let (true, ChannelKind::Plugin(p)) = (args.dry_run, &channel.kind) {
        // A dry run neither loads nor calls a plugin: show what it would receive.
        let receives = match &group {
            Some(events) => notify::group::group_json(events),
            None => serde_json::to_value(&event).unwrap_or_default(),
        };
        let shown =
            serde_json::json!({"plugin": p.path.display().to_string(), "receives": receives});
        crate::outln!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut sender = match notify::build_sender(channel, config.delivery.timeout) {
        Ok(s) => s,
        Err(e) => return super::runtime_error(&e),
    };
    if let Some(events) = &group {
        let capacity = sender.group_capacity();
        if capacity < 2 {
            return super::usage_error(&format!(
                "--group: channel {} sends one notification per message",
                channel.name
            ));
        }
        if events.len() > capacity {
            return super::usage_error(&format!(
                "--group: channel {} puts at most {capacity} notifications in one message",
                channel.name
            ));
        }
    }
    if args.dry_run {
        let rendered = match &group {
            Some(events) => sender.render_group(events),
            None => sender.render(&event),
        };
        crate::outln!("{}", rendered.body);
        return ExitCode::SUCCESS;
    }
    let sent = match &group {
        Some(events) => sender.send_group(events),
        None => sender.send(&event),
    };
    match sent {
        Ok(receipt) => {
            crate::outln!("{}: accepted: {}", channel.name, receipt.answer);
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::errln!("{}: {e}", channel.name);
            ExitCode::FAILURE
        }
    }
}

/// `n` test notifications, each with its own key.
fn group_of(event: &AlertEvent, n: usize) -> Vec<AlertEvent> {
    (1..=n)
        .map(|i| {
            let mut e = event.clone();
            e.series = format!("{}{{test={i}}}", e.metric);
            e.labels.insert("test".into(), i.to_string());
            e.episode_key = format!("{}-{i}", e.episode_key);
            e.key = format!("{}:{}", e.episode_key, e.seq);
            e
        })
        .collect()
}
