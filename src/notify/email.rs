//! PLACEHOLDER: the email channel is being written; this file will be replaced.

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::EmailConfig;
use crate::event::AlertEvent;
use std::time::Duration;

/// PLACEHOLDER sender.
pub struct EmailSender;

impl EmailSender {
    /// PLACEHOLDER constructor.
    pub fn new(_name: &str, _config: &EmailConfig, _timeout: Duration) -> Result<EmailSender, String> {
        Err("the email channel is not implemented yet".to_string())
    }
}

impl Sender for EmailSender {
    fn render(&self, _event: &AlertEvent) -> Rendered {
        Rendered { content_type: String::new(), body: String::new() }
    }

    fn send(&mut self, _event: &AlertEvent) -> Result<Receipt, SendError> {
        Err(SendError::permanent("not implemented"))
    }
}
