//! `/metrics`: the published view in the Prometheus text exposition format (0.0.4).
//!
//! Not for: anything but rendering.

use super::view::View;

/// Renders `view` into `out`.
pub(crate) fn render(view: &View, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(out, "# TYPE hostwatch_build_info gauge");
    let _ = writeln!(out, "hostwatch_build_info{{version=\"{}\"}} 1", view.version);
}
