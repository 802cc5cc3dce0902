//! A channel's pacing settings, common to every channel type: grouping (`group_wait`,
//! `group_interval`, `group_bypass`, `group`) and rate limits (`max_per_hour`, or
//! `rate_limit: {max, per}`), their decoding and their checks.
//!
//! What they mean at run time is `notify::delivery`'s business (the worker groups, the
//! dispatcher limits); this module only reads them and refuses what can never work.

use crate::config::decode::{Decoder, Members, member};
use crate::config::json::{Node, NodeValue};
use crate::config::units::format_duration;
use serde_json::{Value, json};
use std::time::Duration;

/// The pacing keys every channel type accepts.
pub(crate) const PACING_KEYS: &[&str] =
    &["group_wait", "group_interval", "group_bypass", "group", "max_per_hour", "rate_limit"];

/// How a channel's notifications are paced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pacing {
    /// Notifications within a window leave as one message; `None`: one message each.
    pub group: Option<Grouping>,
    /// At most this many notifications per period; `None`: no limit.
    pub rate: Option<RateLimit>,
}

/// Grouping: what waits, and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Grouping {
    /// How long the first notification of a group waits for others.
    pub wait: Duration,
    /// The least time between two grouped messages of the channel.
    pub interval: Duration,
    /// A critical firing (or escalation) leaves at once, with what waits beside it.
    pub bypass_critical: bool,
}

/// A rate limit: at most `max` notifications per `per`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// Notifications per period.
    pub max: u32,
    /// The period (one hour for `max_per_hour`).
    pub per: Duration,
}

/// Decodes the pacing keys of the channel object `members` at `path`, of type `kind`.
pub(crate) fn decode_pacing(
    d: &mut Decoder<'_>,
    members: &Members,
    path: &str,
    kind: &str,
) -> Pacing {
    Pacing {
        group: decode_group(d, members, path, kind),
        rate: decode_rate(d, members, path, kind),
    }
}

fn decode_group(
    d: &mut Decoder<'_>,
    members: &Members,
    path: &str,
    kind: &str,
) -> Option<Grouping> {
    let wait = member(members, path, "group_wait");
    let interval = member(members, path, "group_interval");
    let bypass = member(members, path, "group_bypass");
    let flag = member(members, path, "group");
    let group_flag = flag.as_ref().and_then(|(n, p)| d.boolean(n, p));
    let one_event_each = matches!(kind, "webhook" | "exec" | "plugin");
    if kind == "alertmanager" {
        for (n, p) in [&wait, &interval, &bypass, &flag].into_iter().flatten() {
            d.error(
                n,
                p,
                "an alertmanager channel is not grouped here: Alertmanager groups alerts \
                 itself (its route's group_wait and group_interval)",
            );
        }
        return None;
    }
    if let (Some((n, p)), false) = (&flag, one_event_each) {
        d.error(
            n,
            p,
            format!(
                "\"group\" applies to webhook, exec and plugin channels (one event each unless \
                 \"group\": true); a {kind} channel groups whenever \"group_wait\" is set"
            ),
        );
    }
    let wait_value = wait.as_ref().and_then(|(n, p)| d.duration(n, p));
    let interval_value = interval.as_ref().and_then(|(n, p)| d.duration(n, p));
    let bypass_critical = match &bypass {
        Some((n, p)) => match d.string(n, p, "\"critical\"") {
            Some("critical") => true,
            Some("none") => false,
            Some(other) => {
                d.error(
                    n,
                    p,
                    format!("unknown group_bypass {other:?} (expected \"critical\" or \"none\")"),
                );
                false
            }
            None => false,
        },
        None => false,
    };
    let Some((wait_node, wait_path)) = &wait else {
        for (n, p) in [&interval, &bypass].into_iter().flatten() {
            d.error(
                n,
                p,
                "needs \"group_wait\" (how long the first notification waits for others)",
            );
        }
        if group_flag == Some(true)
            && let Some((n, p)) = &flag
        {
            d.error(n, p, "\"group\": true needs \"group_wait\"");
        }
        return None;
    };
    if one_event_each && group_flag != Some(true) {
        d.error(
            wait_node,
            wait_path,
            format!(
                "a {kind} channel sends one event per notification; add \"group\": true to \
                 send a grouped message (its format is in the README) or remove group_wait"
            ),
        );
        return None;
    }
    let wait = wait_value?;
    if wait.is_zero() || wait > Duration::from_secs(3600) {
        d.error(wait_node, wait_path, "group_wait must be from 1s to 1h");
        return None;
    }
    let interval = match (interval_value, &interval) {
        (Some(i), Some((n, p))) if i < wait || i > Duration::from_secs(24 * 3600) => {
            d.error(n, p, "group_interval must be at least group_wait and at most 24h");
            return None;
        }
        (Some(i), _) => i,
        (None, Some(_)) => return None,
        (None, None) => wait,
    };
    Some(Grouping { wait, interval, bypass_critical })
}

fn decode_rate(
    d: &mut Decoder<'_>,
    members: &Members,
    path: &str,
    kind: &str,
) -> Option<RateLimit> {
    let per_hour = member(members, path, "max_per_hour");
    let general = member(members, path, "rate_limit");
    if kind == "alertmanager" {
        for (n, p) in [&per_hour, &general].into_iter().flatten() {
            d.error(
                n,
                p,
                "an alertmanager channel mirrors alert state and is not rate limited here \
                 (Alertmanager's repeat_interval and inhibition do that)",
            );
        }
        return None;
    }
    match (per_hour, general) {
        (Some((n, p)), Some(_)) => {
            d.error(n, &p, "set either max_per_hour or rate_limit, not both");
            None
        }
        (Some((n, p)), None) => {
            let max = count(d, n, &p)?;
            Some(RateLimit { max, per: Duration::from_secs(3600) })
        }
        (None, Some((n, p))) => {
            let example = "{\"max\": 10, \"per\": \"1h\"}";
            let members = d.object(n, &p, &["max", "per"], example)?;
            let max = match member(members, &p, "max") {
                Some((mn, mp)) => count(d, mn, &mp),
                None => {
                    d.error(n, &p, "missing required key \"max\"");
                    None
                }
            };
            let per = match member(members, &p, "per") {
                Some((pn, pp)) => d.duration(pn, &pp).and_then(|per| {
                    if per < Duration::from_secs(1) || per > Duration::from_secs(7 * 24 * 3600) {
                        d.error(pn, &pp, "per must be from 1s to 7d");
                        None
                    } else {
                        Some(per)
                    }
                }),
                None => Some(Duration::from_secs(3600)),
            };
            Some(RateLimit { max: max?, per: per? })
        }
        (None, None) => None,
    }
}

/// A whole number of notifications, 1 to 100000.
fn count(d: &mut Decoder<'_>, node: &Node, path: &str) -> Option<u32> {
    match node.value {
        NodeValue::Number(x) if (1.0..=100_000.0).contains(&x) && x.fract() == 0.0 => {
            Some(x as u32)
        }
        _ => {
            d.error(node, path, "expected a whole number of notifications from 1 to 100000");
            None
        }
    }
}

/// Refuses a group window that `delivery.give_up_after` would cut short: a notification
/// waiting for its group must never be given up before its first attempt.
pub(crate) fn check_pacing(
    d: &mut Decoder<'_>,
    channels_node: &Node,
    channels: &std::collections::BTreeMap<String, super::Channel>,
    give_up_after: Duration,
) {
    let NodeValue::Object(members) = &channels_node.value else { return };
    for (name, channel) in channels {
        let Some(g) = &channel.pacing.group else { continue };
        if g.interval.saturating_mul(2) <= give_up_after {
            continue;
        }
        let Some((node, path)) = member(members, "channels", name) else { continue };
        let NodeValue::Object(keys) = &node.value else { continue };
        let at =
            member(keys, &path, "group_interval").or_else(|| member(keys, &path, "group_wait"));
        if let Some((n, p)) = at {
            d.error(
                n,
                &p,
                format!(
                    "the group window ({}) must be at most half of delivery.give_up_after ({}): \
                     a notification waiting for its group would be given up unsent",
                    format_duration(g.interval),
                    format_duration(give_up_after)
                ),
            );
        }
    }
}

impl Pacing {
    /// The keys as `check` prints them (nothing when the channel is not paced).
    pub(crate) fn to_json(&self, kind: &str) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if let Some(g) = &self.group {
            out.push(("group_wait", json!(format_duration(g.wait))));
            out.push(("group_interval", json!(format_duration(g.interval))));
            out.push(("group_bypass", json!(if g.bypass_critical { "critical" } else { "none" })));
            if matches!(kind, "webhook" | "exec" | "plugin") {
                out.push(("group", json!(true)));
            }
        }
        if let Some(r) = &self.rate {
            out.push(("rate_limit", json!({"max": r.max, "per": format_duration(r.per)})));
        }
        out
    }
}
