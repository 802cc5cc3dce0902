//! PLACEHOLDER: the alertmanager channel is being written; this file will be replaced.

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::AlertmanagerConfig;
use crate::event::AlertEvent;
use std::time::Duration;

/// PLACEHOLDER sender.
pub struct AlertmanagerSender;

impl AlertmanagerSender {
    /// PLACEHOLDER constructor.
    pub fn new(_name: &str, _config: &AlertmanagerConfig, _timeout: Duration) -> Result<AlertmanagerSender, String> {
        Err("the alertmanager channel is not implemented yet".to_string())
    }
}

impl Sender for AlertmanagerSender {
    fn render(&self, _event: &AlertEvent) -> Rendered {
        Rendered { content_type: String::new(), body: String::new() }
    }

    fn send(&mut self, _event: &AlertEvent) -> Result<Receipt, SendError> {
        Err(SendError::permanent("not implemented"))
    }
}
