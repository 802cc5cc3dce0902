//! PLACEHOLDER: the teams channel is being written; this file will be replaced.

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::TeamsConfig;
use crate::event::AlertEvent;
use std::time::Duration;

/// PLACEHOLDER sender.
pub struct TeamsSender;

impl TeamsSender {
    /// PLACEHOLDER constructor.
    pub fn new(_name: &str, _config: &TeamsConfig, _timeout: Duration) -> Result<TeamsSender, String> {
        Err("the teams channel is not implemented yet".to_string())
    }
}

impl Sender for TeamsSender {
    fn render(&self, _event: &AlertEvent) -> Rendered {
        Rendered { content_type: String::new(), body: String::new() }
    }

    fn send(&mut self, _event: &AlertEvent) -> Result<Receipt, SendError> {
        Err(SendError::permanent("not implemented"))
    }
}
