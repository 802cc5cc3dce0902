//! A report as a Slack Block Kit message: a `header`, the period as `context`, one `section`
//! per metric group, one for alerts and one for delivery failures, and a closing `context`.
//!
//! Every piece of untrusted text (host, series keys, rule and channel names, reasons) goes
//! through [`escape::slack`], made one line; each text is cut to the Block Kit limits on a
//! character boundary, never inside an entity. The message stays far below Slack's 50 blocks.
//!
//! Not for: sending (`notify::slack` sends whatever it is given).

use super::render::{episode_span, figures, metric_label};
use super::{Report, duration_text};
use crate::notify::escape;
use serde_json::{Value, json};

const HEADER_LIMIT: usize = 150;
const SECTION_LIMIT: usize = 3000;
/// Episodes and rules listed in chat (the counts cover all).
pub(crate) const CHAT_LIST: usize = 10;

fn text_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn line(text: &str) -> String {
    escape::slack(&escape::one_line(text))
}

fn fit(text: &str, limit: usize) -> String {
    escape::fit(text, limit, line, text_len)
}

/// Joins already-escaped lines, cut at a line end to `limit`.
fn lines(rows: &[String], limit: usize) -> String {
    let mut out = String::new();
    for r in rows {
        if text_len(&out) + text_len(r) + 2 > limit {
            out.push('\u{2026}');
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(r);
    }
    out
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "verbatim": true, "text": text}})
}

/// The notification fallback text.
pub(crate) fn text(r: &Report) -> String {
    fit(
        &format!("\u{1F4CA} {}: {} ({})", r.title(), r.alerts_line(), r.period_text()),
        SECTION_LIMIT,
    )
}

/// The Block Kit blocks.
pub(crate) fn blocks(r: &Report) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "emoji": true,
            "text": fit(&format!("\u{1F4CA} {}", r.title()), HEADER_LIMIT)}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": true,
            "text": fit(&r.period_text(), SECTION_LIMIT)}]}),
    ];
    for note in &r.notes {
        blocks.push(section(fit(&format!("\u{26A0}\u{FE0F} {note}"), SECTION_LIMIT)));
    }
    for g in &r.groups {
        let mut rows = vec![format!("*{}*", line(&g.name))];
        for m in &g.metrics {
            rows.push(format!("*{}*  {}", line(&metric_label(m)), line(&figures(&m.figures))));
            for s in &m.top {
                let label = s.label.as_deref().unwrap_or(&s.series);
                rows.push(format!(
                    "\u{2003}\u{2022} {}  max {}  avg {}",
                    line(label),
                    line(&s.figures.text.max),
                    line(&s.figures.text.avg)
                ));
            }
        }
        blocks.push(section(lines(&rows, SECTION_LIMIT)));
    }
    let a = &r.alerts;
    let mut rows = vec![format!("*Alerts*: {}", line(&r.alerts_line()))];
    for t in a.time_in_alert.iter().take(CHAT_LIST) {
        rows.push(format!(
            "\u{2022} {}: {} in alert, {} episode{}",
            line(&t.rule),
            duration_text(t.in_alert_s),
            t.episodes,
            if t.episodes == 1 { "" } else { "s" }
        ));
    }
    for e in a.episodes.iter().take(CHAT_LIST) {
        rows.push(format!(
            "\u{2022} {} {} {}: {}",
            e.severity.to_uppercase(),
            line(&e.rule),
            line(&e.series),
            line(&episode_span(e))
        ));
    }
    if a.episodes_total as usize > CHAT_LIST.min(a.episodes.len()) {
        rows.push(format!("\u{2026} {} episodes in all", a.episodes_total));
    }
    blocks.push(section(lines(&rows, SECTION_LIMIT)));
    let mut rows = vec!["*Delivery failures*".to_string()];
    if r.delivery_failures.is_empty() {
        rows.push("none".to_string());
    }
    for f in &r.delivery_failures {
        rows.push(format!(
            "\u{2022} {}: {} (last: {})",
            line(&f.channel),
            f.failures,
            fit(&f.last_reason, 300)
        ));
    }
    blocks.push(section(lines(&rows, SECTION_LIMIT)));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": true,
        "text": "hostwatch \u{00B7} times in UTC \u{00B7} p95 over the history slots' averages"}]}));
    Value::Array(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_block_kit_and_inert() {
        let r = super::super::render::tests::sample();
        let b = blocks(&r);
        let b = b.as_array().unwrap();
        let types: Vec<&str> = b.iter().map(|x| x["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["header", "context", "section", "section", "section", "section", "section", "context"]
        );
        let all = serde_json::to_string(&b).unwrap();
        assert!(!all.contains("<@U1>") && !all.contains("<script>") && all.contains("&lt;@U1&gt;"));
        assert!(all.contains("2 alerts fired, 1 resolved, 1 still firing"));
        assert!(text(&r).contains("&lt;@U1&gt;"));
    }
}
