//! Rules compiled for evaluation: thresholds as predicates, label matchers, ring needs.
//!
//! A [`CompiledRule`] is the config's rule turned into what a tick needs: no strings are
//! compared while evaluating, only floats. Window aggregation lives in [`window`].

pub mod window;

use crate::config::{Op, Rule, Severity, Threshold, Window};
use crate::glob::glob_match;
use crate::series::SeriesInfo;
use std::sync::Arc;
use std::time::Duration;

/// A threshold as a predicate on a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Predicate {
    /// The comparison.
    pub op: Op,
    /// The value compared against.
    pub value: f64,
    /// When true the predicate is negated (the default clear condition: "no longer above").
    pub negated: bool,
}

impl Predicate {
    /// The predicate of a threshold.
    pub fn of(threshold: &Threshold) -> Predicate {
        Predicate { op: threshold.op, value: threshold.value, negated: false }
    }

    /// The opposite predicate.
    pub fn negate(self) -> Predicate {
        Predicate { negated: !self.negated, ..self }
    }

    /// True when `v` meets the predicate; NaN never does.
    #[inline]
    pub fn holds(&self, v: f64) -> bool {
        if v.is_nan() {
            return false;
        }
        let raw = match self.op {
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
        };
        raw != self.negated
    }
}

/// A rule ready for evaluation.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    /// The rule as configured.
    pub rule: Rule,
    /// Its name, shared with every notification it makes.
    pub name: Arc<str>,
    /// The warning predicate.
    pub warn: Option<Predicate>,
    /// The critical predicate.
    pub crit: Option<Predicate>,
    /// The clear (recovery) predicate: `clear` if given, else "the base threshold no longer
    /// holds" (base = warn, or crit without warn).
    pub clear: Predicate,
    /// Text of the warn threshold, for notifications.
    pub warn_text: Arc<str>,
    /// Text of the crit threshold.
    pub crit_text: Arc<str>,
    /// Text of the clear condition (`clear` as written, else the base threshold).
    pub clear_text: Arc<str>,
    /// The rule's description, shared with its notifications.
    pub description: Option<Arc<str>>,
    /// True when the base threshold fires on high values (`>`, `>=`): the episode's peak is
    /// its highest value, else its lowest.
    pub rising: bool,
    /// How values are written, after the base threshold's unit family.
    pub style: crate::humanize::Style,
    /// The rule's summary, runbook and static labels, shared with its notifications.
    pub context: Option<Arc<crate::event::RuleContext>>,
}

impl CompiledRule {
    /// Compiles one validated rule.
    pub fn new(rule: &Rule) -> CompiledRule {
        let warn = rule.warn.as_ref().map(Predicate::of);
        let crit = rule.crit.as_ref().map(Predicate::of);
        // A rule with only `absent` has no threshold: every value is clear.
        let always = Predicate { op: Op::Ge, value: f64::NEG_INFINITY, negated: false };
        let base = warn.or(crit);
        let clear = rule
            .clear
            .as_ref()
            .map(Predicate::of)
            .unwrap_or_else(|| base.map_or(always, Predicate::negate));
        let text =
            |t: &Option<Threshold>| Arc::<str>::from(t.as_ref().map_or("", |t| t.text.as_str()));
        let base_threshold = rule.warn.as_ref().or(rule.crit.as_ref());
        CompiledRule {
            name: Arc::from(rule.name.as_str()),
            warn,
            crit,
            clear,
            warn_text: text(&rule.warn),
            crit_text: text(&rule.crit),
            clear_text: Arc::from(match (&rule.clear, base_threshold) {
                (Some(t), _) => t.text.clone(),
                (None, Some(base)) => base.negated_text(),
                (None, None) => String::new(),
            }),
            description: rule.description.as_deref().map(Arc::from),
            context: {
                let context = crate::event::RuleContext {
                    summary: rule.summary.clone(),
                    runbook_url: rule.runbook_url.clone(),
                    labels: rule.labels.clone(),
                };
                (!context.is_empty()).then(|| Arc::new(context))
            },
            rising: base.is_none_or(|p| p.op.is_rising()),
            style: base_threshold.map_or(crate::humanize::Style::Binary, |t| {
                crate::humanize::Style::of_threshold(&t.text)
            }),
            rule: rule.clone(),
        }
    }

    /// True when this rule watches `series` (same metric, every matcher matches).
    pub fn applies_to(&self, series: &SeriesInfo) -> bool {
        series.metric == self.rule.metric
            && self.rule.matchers.iter().all(|(key, pattern)| match series.label_pair() {
                Some((k, v)) => k == *key && glob_match(pattern, v),
                None => false,
            })
    }

    /// The threshold text shown for a severity.
    pub fn threshold_text(&self, severity: Severity) -> &Arc<str> {
        match severity {
            Severity::Critical if self.crit.is_some() => &self.crit_text,
            _ if self.warn.is_some() => &self.warn_text,
            _ => &self.crit_text,
        }
    }

    /// How many samples a ring must hold for this rule at the given sampling interval.
    pub fn ring_capacity(&self, interval: Duration) -> usize {
        let per =
            |d: Duration| (d.as_secs_f64() / interval.as_secs_f64().max(1e-3)).ceil() as usize + 2;
        match self.rule.window {
            Window::Latest => 1,
            // `for` needs only the latest sample to evaluate, but `once` rebuilds the window
            // from the saved ring, so the ring spans the duration too.
            Window::For(d) | Window::Avg(d) | Window::Max(d) | Window::Min(d) => per(d),
            Window::Occurrences { m, .. } => m as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_and_negation() {
        let p = Predicate { op: Op::Gt, value: 90.0, negated: false };
        assert!(p.holds(90.5) && !p.holds(90.0) && !p.holds(f64::NAN));
        assert!(p.negate().holds(90.0) && !p.negate().holds(f64::NAN));
        let q = Predicate { op: Op::Le, value: 1.0, negated: false };
        assert!(q.holds(1.0) && !q.holds(1.01));
    }
}
