//! PLACEHOLDER: the exec hook channel is being written; this file will be replaced.

use super::{Receipt, Rendered, SendError, Sender};
use crate::config::channels::ExecConfig;
use crate::event::AlertEvent;

/// PLACEHOLDER sender.
pub struct ExecSender;

impl ExecSender {
    /// PLACEHOLDER constructor.
    pub fn new(_name: &str, _config: &ExecConfig) -> Result<ExecSender, String> {
        Err("the exec channel is not implemented yet".to_string())
    }
}

impl Sender for ExecSender {
    fn render(&self, _event: &AlertEvent) -> Rendered {
        Rendered { content_type: String::new(), body: String::new() }
    }

    fn send(&mut self, _event: &AlertEvent) -> Result<Receipt, SendError> {
        Err(SendError::permanent("not implemented"))
    }
}
