//! PLACEHOLDER: the webhook channel is being written; this file will be replaced.

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::WebhookConfig;
use crate::event::AlertEvent;
use std::time::Duration;

/// PLACEHOLDER sender.
pub struct WebhookSender;

impl WebhookSender {
    /// PLACEHOLDER constructor.
    pub fn new(_name: &str, _config: &WebhookConfig, _timeout: Duration) -> Result<WebhookSender, String> {
        Err("the webhook channel is not implemented yet".to_string())
    }
}

impl Sender for WebhookSender {
    fn render(&self, _event: &AlertEvent) -> Rendered {
        Rendered { content_type: String::new(), body: String::new() }
    }

    fn send(&mut self, _event: &AlertEvent) -> Result<Receipt, SendError> {
        Err(SendError::permanent("not implemented"))
    }
}
