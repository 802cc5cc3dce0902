//! Rate limits per channel (`max_per_hour`, `rate_limit: {max, per}`): which notifications
//! a channel takes in its current period, and the one summary of what it held back.
//!
//! A period starts with the first notification a limited channel gets while none is open
//! and lasts `per`. In it the first `max` notifications pass; later ones are held back: kept
//! out of the outbox, recorded one by one in the events log (`rate_limited`) and counted
//! (`/status`, `/metrics`). When the period ends with something held, one `held_back`
//! notification (`hostwatch.rate_limit`, outside the limit) tells the channel how many, of
//! which rules and events. A resolution of an alert the channel was told about always passes
//! (and counts); a resolution of one it was never told about because its firing was held
//! stays quiet too (recorded, not counted in a summary), even once the limit is gone. Periods are on the wall clock and persisted with the outbox, so a restart does not
//! reset the budget; a clock stepped back restarts the open period at the new time.
//!
//! Not for: grouping (the worker) or routing (the router decides the channels first).

use crate::config::Severity;
use crate::config::channels::RateLimit;
use crate::event::AlertEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The rule name of the summary of what a rate limit held back.
pub const RATE_LIMIT_RULE: &str = "hostwatch.rate_limit";

/// A limited channel's open period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RatePeriod {
    /// When it started (Unix seconds).
    pub start: f64,
    /// Notifications that passed in it.
    pub sent: u32,
    /// Notifications held back in it.
    #[serde(default)]
    pub held: u32,
    /// Held back per rule.
    #[serde(default)]
    pub held_rules: BTreeMap<String, u32>,
    /// Held back per event (`firing`, `resolved`, …).
    #[serde(default)]
    pub held_events: BTreeMap<String, u32>,
    /// The worst severity held back.
    #[serde(default)]
    pub worst: Option<Severity>,
}

/// What the limit says of one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It goes to the outbox.
    Pass,
    /// It is held back (recorded and counted).
    Hold,
}

/// Decides for one notification to a limited channel at `now`. `announced`: the channel was
/// told about this episode. (A resolution of an episode whose firing was held back never
/// gets here: the dispatcher keeps it quiet, limit or not, without counting it.)
pub(crate) fn admit(
    periods: &mut BTreeMap<String, RatePeriod>,
    channel: &str,
    limit: &RateLimit,
    now: f64,
    event: &AlertEvent,
    announced: bool,
) -> Verdict {
    let period = periods
        .entry(channel.to_string())
        .or_insert_with(|| RatePeriod { start: now, ..RatePeriod::default() });
    if now < period.start {
        // The clock stepped back: the period restarts now, keeping what it counted.
        period.start = now;
    }
    // A `flap_end` that says ok ends its episode as a resolution does.
    let resolution = event.ends_episode();
    if resolution && announced {
        period.sent = period.sent.saturating_add(1);
        return Verdict::Pass;
    }
    if period.sent < limit.max {
        period.sent += 1;
        return Verdict::Pass;
    }
    period.held = period.held.saturating_add(1);
    *period.held_rules.entry(event.rule.clone()).or_default() += 1;
    *period.held_events.entry(event.event.as_str().to_string()).or_default() += 1;
    period.worst = period.worst.max(Some(event.severity));
    Verdict::Hold
}

/// Removes the periods that ended by `now` (or whose channel is no longer limited), and
/// returns those that held something back, for their summaries. A period that starts after
/// `now` (the clock stepped back) restarts at `now`.
pub(crate) fn close_ended(
    periods: &mut BTreeMap<String, RatePeriod>,
    limits: &BTreeMap<String, RateLimit>,
    now: f64,
) -> Vec<(String, RatePeriod, Option<RateLimit>)> {
    for p in periods.values_mut() {
        if now < p.start {
            p.start = now;
        }
    }
    let ended: Vec<String> = periods
        .iter()
        .filter(|(channel, p)| match limits.get(*channel) {
            Some(limit) => now >= p.start + limit.per.as_secs_f64(),
            None => true,
        })
        .map(|(channel, _)| channel.clone())
        .collect();
    let mut out = Vec::new();
    for channel in ended {
        if let Some(p) = periods.remove(&channel)
            && p.held > 0
        {
            let limit = limits.get(&channel).cloned();
            out.push((channel, p, limit));
        }
    }
    out
}

/// The summary's description: `7 more notifications to channel ops were held back between
/// 07:00 and 08:00 (limit 3 per 1h): 5 firing, 2 resolved; rules: disk_root (4), cpu (3).`
pub(crate) fn summary_text(
    channel: &str,
    period: &RatePeriod,
    limit: Option<&RateLimit>,
    end: f64,
) -> String {
    let mut rules: Vec<(&String, &u32)> = period.held_rules.iter().collect();
    rules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = rules.iter().take(10).map(|(r, n)| format!("{r} ({n})")).collect();
    let more = if rules.len() > 10 {
        format!(", and {} more rules", rules.len() - 10)
    } else {
        String::new()
    };
    let events: Vec<String> = period.held_events.iter().map(|(e, n)| format!("{n} {e}")).collect();
    let limit = match limit {
        Some(l) => {
            format!(" (limit {} per {})", l.max, crate::config::units::format_duration(l.per))
        }
        None => " (the limit was removed)".to_string(),
    };
    format!(
        "{} more notifications to channel {channel} were held back between {} and {}{limit}: \
         {}; rules: {}{more}. Each is in the events log (type rate_limited).",
        period.held,
        crate::timefmt::human(period.start),
        crate::timefmt::human(end),
        events.join(", "),
        shown.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::EventKind;
    use std::time::Duration;

    fn event(rule: &str, kind: EventKind, severity: Severity) -> AlertEvent {
        let mut e = AlertEvent::test_event("h", severity, 0.0);
        e.test = false;
        e.rule = rule.into();
        e.event = kind;
        e
    }

    fn limit() -> RateLimit {
        RateLimit { max: 3, per: Duration::from_secs(3600) }
    }

    #[test]
    fn the_first_max_pass_the_rest_are_counted_and_summarised_once_at_the_period_end() {
        let mut periods = BTreeMap::new();
        let l = limit();
        let verdicts: Vec<Verdict> = (0..10)
            .map(|i| {
                let rule = if i % 2 == 0 { "disk" } else { "cpu" };
                let e = event(rule, EventKind::Firing, Severity::Warning);
                admit(&mut periods, "ops", &l, 100.0, &e, false)
            })
            .collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Pass).count(), 3);
        assert_eq!(verdicts[3..], [Verdict::Hold; 7]);
        let limits = BTreeMap::from([("ops".to_string(), l.clone())]);
        assert!(close_ended(&mut periods, &limits, 3699.0).is_empty(), "still open");
        let closed = close_ended(&mut periods, &limits, 3700.0);
        assert_eq!(closed.len(), 1);
        let (channel, p, _) = &closed[0];
        assert_eq!((channel.as_str(), p.held, p.sent), ("ops", 7, 3));
        let text = summary_text(channel, p, Some(&l), 3700.0);
        assert!(text.starts_with("7 more notifications to channel ops"), "{text}");
        assert!(text.contains("(limit 3 per 1h): 7 firing; rules: cpu (4), disk (3)"), "{text}");
        assert!(periods.is_empty());
        // The next notification opens a new period with a full budget.
        let e = event("disk", EventKind::Firing, Severity::Warning);
        assert_eq!(admit(&mut periods, "ops", &l, 3800.0, &e, false), Verdict::Pass);
    }

    #[test]
    fn announced_resolutions_always_pass_and_count() {
        let mut periods = BTreeMap::new();
        let l = RateLimit { max: 1, per: Duration::from_secs(60) };
        let fire = event("a", EventKind::Firing, Severity::Critical);
        assert_eq!(admit(&mut periods, "c", &l, 0.0, &fire, false), Verdict::Pass);
        assert_eq!(admit(&mut periods, "c", &l, 1.0, &fire, false), Verdict::Hold);
        let resolved = event("a", EventKind::Resolved, Severity::Critical);
        assert_eq!(admit(&mut periods, "c", &l, 2.0, &resolved, true), Verdict::Pass);
        assert_eq!(periods["c"].sent, 2);
        let limits = BTreeMap::from([("c".to_string(), l.clone())]);
        let closed = close_ended(&mut periods, &limits, 61.0);
        assert_eq!(closed[0].1.worst, Some(Severity::Critical));
    }

    #[test]
    fn a_clock_stepped_back_restarts_the_period_and_an_unlimited_channel_closes_it() {
        let mut periods = BTreeMap::new();
        let l = limit();
        let e = event("a", EventKind::Firing, Severity::Warning);
        for _ in 0..4 {
            admit(&mut periods, "c", &l, 10_000.0, &e, false);
        }
        admit(&mut periods, "c", &l, 5_000.0, &e, false);
        assert_eq!(periods["c"].start, 5_000.0);
        assert_eq!(periods["c"].held, 2);
        let closed = close_ended(&mut periods, &BTreeMap::new(), 5_001.0);
        assert_eq!(closed.len(), 1);
        assert!(summary_text("c", &closed[0].1, None, 5_001.0).contains("limit was removed"));
    }
}
