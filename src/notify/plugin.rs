//! PLACEHOLDER: the plugin channel is being written; this file will be replaced.

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::PluginConfig;
use crate::event::AlertEvent;

/// PLACEHOLDER sender.
pub struct PluginSender;

impl PluginSender {
    /// PLACEHOLDER constructor.
    pub fn new(_name: &str, _config: &PluginConfig) -> Result<PluginSender, String> {
        Err("the plugin channel is not implemented yet".to_string())
    }
}

impl Sender for PluginSender {
    fn render(&self, _event: &AlertEvent) -> Rendered {
        Rendered { content_type: String::new(), body: String::new() }
    }

    fn send(&mut self, _event: &AlertEvent) -> Result<Receipt, SendError> {
        Err(SendError::permanent("not implemented"))
    }
}
