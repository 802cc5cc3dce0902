//! `GET /`: the status page, one self-contained HTML document rendered from the view.
//!
//! Not for: anything but rendering.

use super::view::View;

/// Renders the page.
pub(crate) fn render(view: &View) -> String {
    format!("<!doctype html><title>hostwatch</title><p>{} alerts</p>", view.alerts.len())
}

/// The page's Content-Security-Policy: nothing from elsewhere, inline style and script only.
pub(crate) const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
