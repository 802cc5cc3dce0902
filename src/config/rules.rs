//! Decoding and checking of `rules`: names, metrics, label matchers, thresholds with their
//! units, hysteresis (`clear`) and the window form.
//!
//! Checks here need only the config itself; binding rules to live series is the rules
//! engine's job, not this module's.

use super::Op;
use super::decode::{Decoder, get, matcher_glob, member, valid_label_name, valid_name};
use super::error::{hint, index_path, key_path};
use super::json::{Key, Node};
use super::units::{format_duration, parse_occurrences, parse_threshold};
use super::{Rule, Threshold, Window};
use crate::metrics::{LabelKey, Metric};
use std::collections::BTreeMap;
use std::time::Duration;

const RULE_KEYS: &[&str] = &[
    "name",
    "metric",
    "match",
    "warn",
    "crit",
    "clear",
    "for",
    "avg",
    "max",
    "min",
    "occurrences",
    "channels",
    "description",
    "summary",
    "runbook_url",
    "labels",
    "absent",
    "nodata_resolve_after",
    "flap",
];
/// Label names hostwatch gives every alert (Alertmanager's labels): no static label takes them.
const RESERVED_LABELS: &[&str] = &["alertname", "host", "severity"];
/// The most samples one window may span (a ring of that many `(f64, f64)` is 1.6 MB).
pub const MAX_WINDOW_SAMPLES: u64 = 100_000;
const WINDOW_KEYS: &[&str] = &["for", "avg", "max", "min", "occurrences"];
const RULE_EXAMPLE: &str =
    "{\"name\": \"cpu_total\", \"metric\": \"cpu.usage\", \"warn\": \"> 85\"}";

impl Op {
    /// True for `>` and `>=` (the threshold fires on high values).
    pub fn is_rising(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

/// Decodes the `rules` array. Returns the valid rules and the names of every rule written
/// (valid or not), so later references are not reported twice.
pub(crate) fn decode_rules(
    d: &mut Decoder<'_>,
    node: &Node,
    interval: Option<Duration>,
    channels: &[String],
) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let Some(items) = d.array(node, "rules", &format!("[{RULE_EXAMPLE}]")) else {
        return (rules, Vec::new());
    };
    for (i, item) in items.iter().enumerate() {
        let path = index_path("rules", i);
        let before = d.errors.len();
        let rule = decode_rule(d, item, &path, interval, channels, &mut names);
        if let Some(rule) = rule.filter(|_| d.errors.len() == before) {
            rules.push(rule);
        }
    }
    (rules, names.into_iter().map(|(name, _)| name).collect())
}

fn decode_rule(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    interval: Option<Duration>,
    channels: &[String],
    names: &mut Vec<(String, String)>,
) -> Option<Rule> {
    let members = d.object(node, path, RULE_KEYS, RULE_EXAMPLE)?;

    let name = d.required(get(members, "name"), node, path, "name").and_then(|n| {
        let p = key_path(path, "name");
        let name = d.non_empty(n, &p, "\"cpu_total\"")?;
        if !valid_name(&name) {
            d.error(
                n,
                &p,
                format!("invalid rule name {name:?} (use letters, digits, '_', '.' and '-')"),
            );
        } else if name.starts_with("hostwatch.") {
            d.error(
                n,
                &p,
                format!(
                    "invalid rule name {name:?}: names starting with \"hostwatch.\" are \
                     hostwatch's own notifications (hostwatch.persist, hostwatch.rate_limit, …)"
                ),
            );
        } else if let Some((_, first)) = names.iter().find(|(other, _)| *other == name) {
            d.error(n, &p, format!("duplicate rule name {name:?} (first used by {first})"));
            return None;
        }
        names.push((name.clone(), path.to_owned()));
        Some(name)
    });

    let metric = d.required(get(members, "metric"), node, path, "metric").and_then(|n| {
        let p = key_path(path, "metric");
        let text = d.string(n, &p, "\"cpu.usage\"")?;
        let metric = Metric::parse(text);
        if metric.is_none() {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            d.error(n, &p, format!("unknown metric {text:?}{}", hint(text, &known)));
        }
        metric
    });

    let matchers = match (member(members, path, "match"), metric) {
        (Some((n, p)), Some(metric)) => rule_matchers(d, n, &p, metric),
        _ => Vec::new(),
    };

    // Thresholds need the metric's unit; with an unknown metric they are not checked.
    let threshold = |d: &mut Decoder<'_>, key: &str| -> Option<(Threshold, &Node)> {
        let (n, p) = member(members, path, key)?;
        let text = d.string(n, &p, "\"> 85\"")?;
        let metric = metric?;
        parse_threshold(text, metric.unit()).map_err(|e| d.error(n, &p, e)).ok().map(|t| (t, n))
    };
    let warn = threshold(d, "warn");
    let crit = threshold(d, "crit");
    let clear = threshold(d, "clear");
    let absent = member(members, path, "absent").and_then(|(n, p)| {
        let absent = d.duration(n, &p)?;
        match interval {
            Some(i) if absent < i => {
                d.error(
                    n,
                    &p,
                    format!(
                        "absent {} is shorter than the interval {} (a series is only missed \
                         at a sample)",
                        format_duration(absent),
                        format_duration(i)
                    ),
                );
                None
            }
            _ => Some(absent),
        }
    });
    let nodata_resolve_after =
        member(members, path, "nodata_resolve_after").and_then(|(n, p)| d.duration(n, &p));
    let thresholds = get(members, "warn").is_some() || get(members, "crit").is_some();
    if !thresholds && get(members, "absent").is_none() {
        d.error(node, path, "a rule needs \"warn\", \"crit\" or both (or \"absent\")");
    } else if !thresholds && let Some((n, p)) = member(members, path, "clear") {
        d.error(n, &p, "\"clear\" needs \"warn\" or \"crit\" to clear");
    }
    check_thresholds(d, path, warn.as_ref(), crit.as_ref(), clear.as_ref());

    let window = decode_window(d, members, path, interval);

    let rule_channels =
        member(members, path, "channels").and_then(|(n, p)| d.channel_refs(n, &p, channels));
    let flap = member(members, path, "flap")
        .map(|(n, p)| super::flap::decode_flap(d, n, &p))
        .unwrap_or_default();
    let description = member(members, path, "description")
        .and_then(|(n, p)| d.string(n, &p, "\"CPU busy for 2 minutes\"").map(str::to_owned));
    let summary = member(members, path, "summary").and_then(|(n, p)| {
        let text = d.non_empty(n, &p, "\"Root file system almost full\"")?;
        if text.chars().any(char::is_control) {
            d.error(n, &p, "a summary is one line of text (no line breaks or control characters)");
            return None;
        }
        Some(text)
    });
    let runbook_url = member(members, path, "runbook_url").and_then(|(n, p)| runbook_url(d, n, &p));
    let labels = match member(members, path, "labels") {
        Some((n, p)) => static_labels(d, n, &p, metric),
        None => BTreeMap::new(),
    };

    Some(Rule {
        name: name?,
        metric: metric?,
        matchers,
        warn: warn.map(|(t, _)| t),
        crit: crit.map(|(t, _)| t),
        clear: clear.map(|(t, _)| t),
        window: window?,
        channels: rule_channels,
        description,
        summary,
        runbook_url,
        labels,
        absent,
        nodata_resolve_after,
        flap,
    })
}

/// `runbook_url`: an http(s) URL without characters that would need escaping inside a chat
/// link or an HTML attribute (those are written percent-encoded).
fn runbook_url(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<String> {
    let url = d.string(node, path, "\"https://wiki.example.com/runbooks/disk\"")?;
    if let Err(m) = super::channels::check_url(url) {
        d.error(node, path, m);
        return None;
    }
    if let Some(c) = url.chars().find(|c| "<>\"'|\\`{}^".contains(*c)) {
        d.error(node, path, format!("write {c:?} percent-encoded in a URL"));
        return None;
    }
    Some(url.to_owned())
}

/// A rule's static `labels`: names like Prometheus label names, never the series' own label
/// key, values non-empty one-line strings.
fn static_labels(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    metric: Option<Metric>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(members) = d.map(node, path, "{\"team\": \"db\"}") else { return out };
    for (key, value) in members {
        let p = key_path(path, &key.name);
        if !valid_label_name(&key.name) {
            d.key_error(
                key,
                &p,
                format!(
                    "invalid label name {:?} (letters, digits and '_', not starting with a digit)",
                    key.name
                ),
            );
            continue;
        }
        if let Some(own) = metric.and_then(Metric::label_key).filter(|k| k.as_str() == key.name) {
            d.key_error(
                key,
                &p,
                format!(
                    "{:?} is the series' own label of {}; a static label needs another name",
                    own.as_str(),
                    metric.map_or("", Metric::name)
                ),
            );
            continue;
        }
        if RESERVED_LABELS.contains(&key.name.as_str()) {
            d.key_error(
                key,
                &p,
                format!("{:?} is set by hostwatch on every alert; choose another name", key.name),
            );
            continue;
        }
        let Some(text) = d.non_empty(value, &p, "\"db\"") else { continue };
        if text.chars().any(char::is_control) {
            d.error(value, &p, "a label value is one line of text (no control characters)");
            continue;
        }
        out.insert(key.name.clone(), text);
    }
    out
}

/// `match` of a rule: only the metric's own label key is allowed.
fn rule_matchers(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    metric: Metric,
) -> Vec<(LabelKey, String)> {
    let Some(members) = d.map(node, path, "{\"mount\": \"/\"}") else { return Vec::new() };
    let Some(label) = metric.label_key() else {
        if !members.is_empty() {
            d.error(node, path, format!("metric {metric} has no labels"));
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in members {
        let p = key_path(path, &key.name);
        if key.name != label.as_str() {
            d.key_error(
                key,
                &p,
                format!("metric {metric} is labelled by {:?}, not {:?}", label.as_str(), key.name),
            );
        } else if let Some(glob) = matcher_glob(d, value, &p) {
            out.push((label, glob));
        }
    }
    out
}

/// Warn and crit point the same way with crit at least as severe; clear points the other way
/// on the recovery side of warn (or of crit without warn).
fn check_thresholds(
    d: &mut Decoder<'_>,
    path: &str,
    warn: Option<&(Threshold, &Node)>,
    crit: Option<&(Threshold, &Node)>,
    clear: Option<&(Threshold, &Node)>,
) {
    if let (Some((w, _)), Some((c, cn))) = (warn, crit) {
        let p = key_path(path, "crit");
        if w.op.is_rising() != c.op.is_rising() {
            d.error(
                cn,
                &p,
                format!(
                    "crit {:?} and warn {:?} point in opposite directions (use > or >= in both, \
                     or < or <= in both)",
                    c.text, w.text
                ),
            );
        } else if !within(c, w) {
            let side = if w.op.is_rising() { "at or above" } else { "at or below" };
            d.error(
                cn,
                &p,
                format!(
                    "crit {:?} is less severe than warn {:?} (crit must be {side} warn)",
                    c.text, w.text
                ),
            );
        }
    }
    let Some((cl, cln)) = clear else { return };
    let (firing, which) = match (warn, crit) {
        (Some((w, _)), _) => (w, "warn"),
        (None, Some((c, _))) => (c, "crit"),
        (None, None) => return,
    };
    let p = key_path(path, "clear");
    if cl.op.is_rising() == firing.op.is_rising() {
        let ops = if firing.op.is_rising() { "< or <=" } else { "> or >=" };
        d.error(
            cln,
            &p,
            format!(
                "clear {:?} must point the other way from {which} {:?} (use {ops})",
                cl.text, firing.text
            ),
        );
    } else if overlaps(cl, firing) {
        let side = if firing.op.is_rising() { "below" } else { "above" };
        d.error(
            cln,
            &p,
            format!(
                "clear {:?} overlaps {which} {:?}: a value could fire and clear at once (clear \
                 must be {side} {which})",
                cl.text, firing.text
            ),
        );
    }
}

/// True when every value meeting `inner` also meets `outer` (same direction).
fn within(inner: &Threshold, outer: &Threshold) -> bool {
    let strict_enough =
        inner.op == Op::Gt || inner.op == Op::Lt || outer.op == Op::Ge || outer.op == Op::Le;
    if inner.op.is_rising() {
        inner.value > outer.value || (inner.value == outer.value && strict_enough)
    } else {
        inner.value < outer.value || (inner.value == outer.value && strict_enough)
    }
}

/// True when some value meets both thresholds (opposite directions).
fn overlaps(a: &Threshold, b: &Threshold) -> bool {
    let (rising, falling) = if a.op.is_rising() { (a, b) } else { (b, a) };
    if rising.value != falling.value {
        return rising.value < falling.value;
    }
    rising.op == Op::Ge && falling.op == Op::Le
}

fn decode_window(
    d: &mut Decoder<'_>,
    members: &[(Key, Node)],
    path: &str,
    interval: Option<Duration>,
) -> Option<Window> {
    let present: Vec<&(Key, Node)> =
        members.iter().filter(|(k, _)| WINDOW_KEYS.contains(&k.name.as_str())).collect();
    let Some((key, node)) = present.first().copied() else { return Some(Window::Latest) };
    for (other, _) in &present[1..] {
        d.key_error(
            other,
            &key_path(path, &other.name),
            format!("a rule takes one window form, and {:?} is already set", key.name),
        );
    }
    let p = key_path(path, &key.name);
    if key.name == "occurrences" {
        let text = d.string(node, &p, "\"3/5\"")?;
        let (n, m) = parse_occurrences(text).map_err(|e| d.error(node, &p, e)).ok()?;
        return Some(Window::Occurrences { n, m });
    }
    let duration = d.duration(node, &p)?;
    if let Some(interval) = interval
        && duration < interval
    {
        d.error(
            node,
            &p,
            format!(
                "window {} is shorter than the interval {} (a window must span at least one \
                 interval)",
                format_duration(duration),
                format_duration(interval)
            ),
        );
        return None;
    }
    // Each window's ring holds duration / interval samples; keep that within reason.
    let samples =
        duration.as_secs_f64() / interval.unwrap_or(super::DEFAULT_INTERVAL).as_secs_f64();
    if samples > MAX_WINDOW_SAMPLES as f64 {
        d.error(
            node,
            &p,
            format!(
                "window {} spans {samples:.0} samples at this interval (at most {MAX_WINDOW_SAMPLES}); \
                 use a longer interval or a shorter window",
                format_duration(duration)
            ),
        );
        return None;
    }
    Some(match key.name.as_str() {
        "for" => Window::For(duration),
        "avg" => Window::Avg(duration),
        "max" => Window::Max(duration),
        _ => Window::Min(duration),
    })
}
