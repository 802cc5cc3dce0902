//! `--dry-run`: what each routed channel would receive, printed as one JSON line per
//! notification. Nothing is sent, no plugin is loaded or called, nothing is written.
//!
//! Not for: delivery (see the dispatcher); it shares only the router and the renderers.

use crate::config::{ChannelKind, Config};
use crate::event::AlertEvent;
use crate::notify::route::Router;
use crate::notify::{Sender, build_sender};
use std::collections::BTreeMap;

/// `--dry-run`: what each routed channel would receive, printed as one JSON line per
/// notification; nothing is sent and no plugin is loaded or called.
pub struct DryRunRenderer {
    router: Router,
    senders: BTreeMap<String, Option<Box<dyn Sender>>>,
    kinds: BTreeMap<String, ChannelKind>,
}

impl DryRunRenderer {
    /// Prepares renderers for every channel of `config`.
    pub fn new(config: &Config) -> DryRunRenderer {
        let mut senders = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        for (name, channel) in &config.channels {
            let sender = match channel.kind {
                ChannelKind::Plugin(_) => None,
                _ => build_sender(channel, config.delivery.timeout)
                    .map_err(|e| log::error!(channel = name.as_str(); "channel unavailable: {e}"))
                    .ok(),
            };
            senders.insert(name.clone(), sender);
            kinds.insert(name.clone(), channel.kind.clone());
        }
        DryRunRenderer { router: Router::new(config), senders, kinds }
    }

    /// The deliveries one event would make: channel, type and payload.
    pub fn render(&self, event: &AlertEvent) -> Vec<serde_json::Value> {
        self.router
            .channels_for(event)
            .into_iter()
            .map(|name| {
                let kind = self.kinds.get(&name);
                let payload = match (self.senders.get(&name), kind) {
                    (_, Some(ChannelKind::Plugin(p))) => serde_json::json!({
                        "plugin": p.path.display().to_string(), "receives": event,
                    }),
                    (Some(Some(sender)), _) => {
                        let r = sender.render(event);
                        let body = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body));
                        serde_json::json!({"content_type": r.content_type, "body": body})
                    }
                    _ => serde_json::Value::Null,
                };
                serde_json::json!({"channel": name, "type": kind.map(ChannelKind::type_name), "payload": payload})
            })
            .collect()
    }
}

impl crate::notify::Notify for DryRunRenderer {
    fn notify(&mut self, n: &crate::event::Notification) {
        use std::io::Write;
        let event = n.to_event();
        let line = serde_json::json!({
            "dry_run": true, "summary": n.summary(), "event": &event, "deliveries": self.render(&event),
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
