//! PLACEHOLDER: the slack channel is being written; this file will be replaced.

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::SlackConfig;
use crate::event::AlertEvent;
use std::time::Duration;

/// PLACEHOLDER sender.
pub struct SlackSender;

impl SlackSender {
    /// PLACEHOLDER constructor.
    pub fn new(_name: &str, _config: &SlackConfig, _timeout: Duration) -> Result<SlackSender, String> {
        Err("the slack channel is not implemented yet".to_string())
    }
}

impl Sender for SlackSender {
    fn render(&self, _event: &AlertEvent) -> Rendered {
        Rendered { content_type: String::new(), body: String::new() }
    }

    fn send(&mut self, _event: &AlertEvent) -> Result<Receipt, SendError> {
        Err(SendError::permanent("not implemented"))
    }
}
