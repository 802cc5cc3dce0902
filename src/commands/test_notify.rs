//! `hostwatch test-notify CHANNEL`: send one test notification through a real channel and
//! print what the receiver answered (exit 0 accepted, 1 refused or unreachable).

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
    if let (true, ChannelKind::Plugin(p)) = (args.dry_run, &channel.kind) {
        // A dry run neither loads nor calls a plugin: show what it would receive.
        let shown = serde_json::json!({"plugin": p.path.display().to_string(), "receives": &event});
        crate::outln!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let mut sender = match notify::build_sender(channel, config.delivery.timeout) {
        Ok(s) => s,
        Err(e) => return super::runtime_error(&e),
    };
    if args.dry_run {
        let rendered = sender.render(&event);
        crate::outln!("{}", rendered.body);
        return ExitCode::SUCCESS;
    }
    match sender.send(&event) {
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
