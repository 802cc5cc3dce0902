//! A report as a Microsoft Teams message: an Adaptive Card 1.4 (Workflows) or a legacy
//! MessageCard, with a title, the period, one FactSet (or section) per metric group, the
//! alerts and the delivery failures.
//!
//! Untrusted text goes through [`escape::markdown`] and is cut on a character boundary;
//! lists are shortened until the body fits Teams' size limit.
//!
//! Not for: sending (`notify::teams`).

use super::render::{episode_span, figures, metric_label};
use super::{Report, duration_text};
use crate::notify::escape;
use serde_json::{Value, json};

fn fit(text: &str, limit: usize) -> String {
    escape::fit(text, limit, escape::markdown, escape::chars)
}

/// (section title, facts) of the report, raw text, lists at most `list` long.
fn parts(r: &Report, list: usize) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for g in &r.groups {
        let mut facts = Vec::new();
        for m in &g.metrics {
            facts.push((metric_label(m), figures(&m.figures)));
            for s in m.top.iter().take(list) {
                let label = s.label.clone().unwrap_or_else(|| s.series.clone());
                facts.push((
                    format!("\u{2003}{label}"),
                    format!("max {}  avg {}", s.figures.text.max, s.figures.text.avg),
                ));
            }
        }
        out.push((g.name.clone(), facts));
    }
    let a = &r.alerts;
    let mut facts: Vec<(String, String)> = a
        .time_in_alert
        .iter()
        .take(list)
        .map(|t| {
            (
                t.rule.clone(),
                format!("{} in alert, {} episode(s)", duration_text(t.in_alert_s), t.episodes),
            )
        })
        .collect();
    facts.extend(a.episodes.iter().take(list).map(|e| {
        (
            format!("{} {}", e.severity.to_uppercase(), e.rule),
            format!("{}: {}", e.series, episode_span(e)),
        )
    }));
    out.push((format!("Alerts: {}", r.alerts_line()), facts));
    let facts = if r.delivery_failures.is_empty() {
        vec![("Channels".to_string(), "none".to_string())]
    } else {
        r.delivery_failures
            .iter()
            .map(|f| (f.channel.clone(), format!("{} (last: {})", f.failures, f.last_reason)))
            .collect()
    };
    out.push(("Delivery failures".to_string(), facts));
    out
}

/// The Workflows message (Adaptive Card), within `max_bytes` when it can be.
pub(crate) fn workflows(r: &Report, max_bytes: usize) -> Value {
    shrink(max_bytes, |list, fact| {
        let mut body = vec![
            json!({"type": "TextBlock", "text": fit(&r.title(), 200), "weight": "bolder", "size": "medium", "wrap": true}),
            json!({"type": "TextBlock", "text": fit(&r.period_text(), 200), "isSubtle": true, "wrap": true}),
        ];
        for note in &r.notes {
            body.push(json!({"type": "TextBlock", "text": fit(note, 500), "color": "warning", "wrap": true}));
        }
        for (title, facts) in parts(r, list) {
            body.push(json!({"type": "TextBlock", "text": fit(&title, 200), "weight": "bolder", "wrap": true, "spacing": "medium"}));
            let facts: Vec<Value> = facts
                .iter()
                .map(|(t, v)| json!({"title": fit(t, 100), "value": fit(v, fact)}))
                .collect();
            if !facts.is_empty() {
                body.push(json!({"type": "FactSet", "facts": facts}));
            }
        }
        body.push(json!({"type": "TextBlock", "text": "hostwatch \u{00B7} times in UTC", "isSubtle": true, "size": "small", "wrap": true}));
        crate::notify::teams::adaptive_message(fit(&r.title(), 200), body)
    })
}

/// The legacy MessageCard.
pub(crate) fn message_card(r: &Report, max_bytes: usize) -> Value {
    shrink(max_bytes, |list, fact| {
        let sections: Vec<Value> = parts(r, list)
            .iter()
            .map(|(title, facts)| {
                let facts: Vec<Value> = facts
                    .iter()
                    .map(|(t, v)| json!({"name": fit(t, 100), "value": fit(v, fact)}))
                    .collect();
                json!({"activityTitle": fit(title, 200), "facts": facts, "markdown": true})
            })
            .collect();
        // The notes (`no history file ...`) say why parts are missing: keep them.
        let mut text = fit(&r.period_text(), 200);
        for note in &r.notes {
            text.push_str("\n\n\u{26A0}\u{FE0F} ");
            text.push_str(&fit(note, 500));
        }
        json!({
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": "2E6DA4",
            "summary": fit(&r.title(), 200),
            "title": fit(&r.title(), 200),
            "text": text,
            "sections": sections,
        })
    })
}

/// The first of ever shorter forms whose JSON fits `max_bytes` (the last one regardless).
fn shrink(max_bytes: usize, make: impl Fn(usize, usize) -> Value) -> Value {
    let forms = [(10, 500), (5, 200), (3, 120), (1, 80)];
    let mut v = Value::Null;
    for (list, fact) in forms {
        v = make(list, fact);
        if v.to_string().len() <= max_bytes {
            break;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_carry_the_report_escaped() {
        let r = super::super::render::tests::sample();
        let card = workflows(&r, 24 * 1024);
        let content = &card["attachments"][0]["content"];
        assert_eq!(
            (content["type"].as_str(), content["version"].as_str()),
            (Some("AdaptiveCard"), Some("1.4"))
        );
        let all = card.to_string();
        assert!(
            !all.contains("<script>")
                && all.contains("&lt;script&gt;")
                && all.contains("disk&lt;b&gt;")
        );
        let mc = message_card(&r, 24 * 1024);
        assert_eq!(mc["sections"].as_array().unwrap().len(), 4);
        // The notes, in both forms.
        let mut noted = r.clone();
        noted.notes = vec!["no history file /x/<b>history".into()];
        for card in [workflows(&noted, 24 * 1024), message_card(&noted, 24 * 1024)] {
            assert!(card.to_string().contains("no history file /x/&lt;b&gt;history"), "{card}");
        }
        // A tiny limit takes the shortest form.
        assert!(workflows(&r, 10).to_string().len() < all.len());
    }
}
