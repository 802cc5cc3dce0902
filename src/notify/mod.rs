//! The notification seam: the poll loop hands every notification to a [`Notify`]; what
//! happens next (log it, print it for `--dry-run`, deliver it) is the implementation's job.

use crate::event::Notification;
use std::io::Write;

/// Receives notifications from the evaluation loop; must not block on the network.
pub trait Notify {
    /// Takes one notification.
    fn notify(&mut self, notification: &Notification);

    /// Called when the process is about to stop: flush what can be flushed.
    fn shutdown(&mut self) {}
}

/// Logs each notification (warning level for problems, info for resolutions).
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notify for LogNotifier {
    fn notify(&mut self, n: &Notification) {
        let key = n.key();
        let level = match n.event {
            crate::alerts::EventKind::Resolved => log::Level::Info,
            _ => log::Level::Warn,
        };
        log::log!(
            level,
            rule = &*n.rule, series = &*n.series, severity = n.severity.as_str(),
            event = n.event.as_str(), value = n.value, threshold = &*n.threshold, key = key.as_str();
            "{}", n.summary()
        );
    }
}

/// `--dry-run`: prints each notification as it would be sent, one JSON object per line on
/// standard output, and sends nothing.
#[derive(Debug, Default)]
pub struct DryRun;

impl Notify for DryRun {
    fn notify(&mut self, n: &Notification) {
        let line =
            serde_json::json!({"dry_run": true, "summary": n.summary(), "event": n.to_json()});
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Hands each notification to several notifiers in turn.
pub struct Fanout(pub Vec<Box<dyn Notify>>);

impl Notify for Fanout {
    fn notify(&mut self, n: &Notification) {
        for sink in &mut self.0 {
            sink.notify(n);
        }
    }

    fn shutdown(&mut self) {
        for sink in &mut self.0 {
            sink.shutdown();
        }
    }
}
