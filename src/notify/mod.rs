//! Notification: the seam the poll loop hands notifications to, and the channels behind it.
//!
//! The loop calls a [`Notify`]; in `run` and `once` that is the [`delivery`] dispatcher, which
//! routes each notification to channels, keeps it in the persisted outbox until a receiver
//! accepted it, and sends from one worker thread per channel with retries. A channel is a
//! [`Sender`]: it renders an [`AlertEvent`] into its wire format and sends it, saying whether
//! a failure is worth retrying.

pub mod alertmanager;
pub(crate) mod delivery;
#[cfg(feature = "email")]
pub(crate) mod email;
pub(crate) mod escape;
pub mod exec;
pub(crate) mod group;
pub(crate) mod heartbeat;
pub(crate) mod http;
#[cfg(feature = "plugins")]
pub(crate) mod plugin;
pub(crate) mod preflight;
pub(crate) mod route;
#[cfg(feature = "slack")]
pub(crate) mod slack;
#[cfg(feature = "teams")]
pub(crate) mod teams;
pub mod template;
pub(crate) mod tls;
#[cfg(feature = "webhook")]
pub(crate) mod webhook;

use crate::config::{Channel, ChannelKind};
use crate::event::{AlertEvent, Notification};
use std::time::Duration;

/// Receives notifications from the evaluation loop; must not block on the network.
pub trait Notify {
    /// Takes one notification.
    fn notify(&mut self, notification: &Notification);

    /// Called when the process is about to stop: flush what can be flushed.
    fn shutdown(&mut self) {}
}

/// What a channel would put on the wire, for `--dry-run` and `test-notify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// A MIME type (`application/json`, `message/rfc822`, `text/plain`).
    pub content_type: String,
    /// The payload.
    pub body: String,
}

/// A receiver's acceptance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// What the receiver answered (`HTTP 200: ok`, `250 2.0.0 queued`), for logs and
    /// `test-notify`.
    pub answer: String,
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying later (network down, timeout, HTTP 408/429/5xx, SMTP 4xx, exit 75).
    Transient {
        /// What happened.
        reason: String,
        /// The receiver asked to wait this long (HTTP `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Retrying the same message cannot help (HTTP 4xx, SMTP 5xx, Slack `ok: false`).
    Permanent {
        /// What happened.
        reason: String,
    },
}

impl SendError {
    /// A transient failure without a receiver-given delay.
    pub fn transient(reason: impl Into<String>) -> SendError {
        SendError::Transient { reason: reason.into(), retry_after: None }
    }

    /// A permanent failure.
    pub fn permanent(reason: impl Into<String>) -> SendError {
        SendError::Permanent { reason: reason.into() }
    }

    /// The failure's description.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient { reason, .. } | SendError::Permanent { reason } => reason,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Transient { reason, retry_after: Some(d) } => {
                write!(f, "{reason} (temporary; receiver asks to retry after {}s)", d.as_secs())
            }
            SendError::Transient { reason, retry_after: None } => write!(f, "{reason} (temporary)"),
            SendError::Permanent { reason } => write!(f, "{reason} (permanent)"),
        }
    }
}

/// One notification channel's sending half; lives on its worker thread.
pub trait Sender: Send {
    /// What `send` would put on the wire for `event` (no I/O).
    fn render(&self, event: &AlertEvent) -> Rendered;

    /// Sends one event, blocking, with the channel's timeouts.
    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError>;

    /// How many events one grouped message may carry (1: this channel sends one event per
    /// message). Only a channel configured for grouping says more.
    fn group_capacity(&self) -> usize {
        1
    }

    /// Sends several events as one message (only called with 2 to [`Sender::group_capacity`]
    /// events).
    fn send_group(&mut self, events: &[AlertEvent]) -> Result<Receipt, SendError> {
        match events {
            [one] => self.send(one),
            _ => Err(SendError::permanent("this channel cannot send a grouped message")),
        }
    }

    /// What [`Sender::send_group`] would put on the wire (no I/O).
    fn render_group(&self, events: &[AlertEvent]) -> Rendered {
        match events.first() {
            Some(first) => self.render(first),
            None => Rendered { content_type: "text/plain".into(), body: String::new() },
        }
    }

    /// How often [`Sender::refresh`] wants to run (Alertmanager re-sends firing alerts).
    fn refresh_every(&self) -> Option<Duration> {
        None
    }

    /// Periodic work between sends; errors are logged by the worker.
    fn refresh(&mut self) -> Result<(), SendError> {
        Ok(())
    }

    /// Learns, at start-up, of an alert that is still firing and was announced before the
    /// restart, without notifying (Alertmanager keeps re-sending it).
    fn remember(&mut self, _event: &AlertEvent) {}
}

/// Builds the sender of a configured channel. `timeout` is the delivery default for channels
/// whose config does not set one.
pub fn build_sender(channel: &Channel, timeout: Duration) -> Result<Box<dyn Sender>, String> {
    let name = channel.name.as_str();
    match &channel.kind {
        #[cfg(feature = "slack")]
        ChannelKind::Slack(c) => Ok(Box::new(slack::SlackSender::new(name, c, timeout)?)),
        #[cfg(feature = "teams")]
        ChannelKind::Teams(c) => Ok(Box::new(teams::TeamsSender::new(name, c, timeout)?)),
        #[cfg(feature = "email")]
        ChannelKind::Email(c) => Ok(Box::new(email::EmailSender::new(name, c, timeout)?)),
        #[cfg(feature = "webhook")]
        ChannelKind::Webhook(c) => Ok(Box::new(webhook::WebhookSender::new(name, c, timeout)?)),
        ChannelKind::Alertmanager(c) => {
            Ok(Box::new(alertmanager::AlertmanagerSender::new(name, c, timeout)?))
        }
        ChannelKind::Exec(c) => Ok(Box::new(exec::ExecSender::new(name, c)?)),
        #[cfg(feature = "plugins")]
        ChannelKind::Plugin(c) => Ok(Box::new(plugin::PluginSender::new(name, c)?)),
        #[allow(unreachable_patterns)]
        other => Err(format!(
            "channel {name}: type \"{}\" is not compiled into this build",
            other.type_name()
        )),
    }
}

/// Logs each notification (warning level for problems, info for resolutions).
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notify for LogNotifier {
    fn notify(&mut self, n: &Notification) {
        let key = n.key();
        let level = match n.event {
            crate::alerts::EventKind::Resolved | crate::alerts::EventKind::FlapEnd => {
                log::Level::Info
            }
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
