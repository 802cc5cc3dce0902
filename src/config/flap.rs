//! The `flap` setting, global and per rule: flap detection's thresholds (percent of weighted
//! state changes over the last 21 evaluations) or `false` to turn it off. A rule's `flap`
//! object stands on its own: a key it leaves out takes the built-in default (50, 25), not the
//! global one, so each object is checked where it is written. Not the place for the
//! detection itself (`alerts::flap`).

use super::decode::{Decoder, member};
use super::json::{Node, NodeValue};
use super::{FlapLimits, RuleFlap};

const FLAP_KEYS: &[&str] = &["high", "low"];
const EXAMPLE: &str = "{\"high\": 50, \"low\": 25} or false";

/// hostwatch's defaults: flapping above 50 %, over below 25 % (Nagios ships 20/5 for services,
/// Icinga 2 30/25; a host monitor's evaluations are more frequent than their checks).
pub const DEFAULT_FLAP: FlapLimits = FlapLimits { high: 50.0, low: 25.0 };

/// Decodes the top-level `flap`: `None` when it is `false`.
pub(crate) fn decode_global_flap(d: &mut Decoder<'_>, node: &Node) -> Option<FlapLimits> {
    match decode_flap(d, node, "flap") {
        RuleFlap::Off => None,
        RuleFlap::Inherit => Some(DEFAULT_FLAP),
        RuleFlap::Limits(l) => Some(l),
    }
}

/// Decodes a `flap` value at `path`: `false` (off), `true` (the global setting), or an
/// object; on an error, the error is recorded and the global setting applies.
pub(crate) fn decode_flap(d: &mut Decoder<'_>, node: &Node, path: &str) -> RuleFlap {
    match node.value {
        NodeValue::Bool(false) => return RuleFlap::Off,
        NodeValue::Bool(true) => return RuleFlap::Inherit,
        _ => {}
    }
    let Some(members) = d.object(node, path, FLAP_KEYS, EXAMPLE) else { return RuleFlap::Inherit };
    let percent = |d: &mut Decoder<'_>, key: &str, default: f64| {
        let Some((n, p)) = member(members, path, key) else { return Some((default, None)) };
        match n.value {
            NodeValue::Number(v) if v > 0.0 && v <= 100.0 => Some((v, Some((n, p)))),
            NodeValue::Number(v) => {
                d.error(n, &p, format!("{v} is not a percentage above 0 and at most 100"));
                None
            }
            _ => {
                d.wrong_type(n, &p, "a percentage like 50");
                None
            }
        }
    };
    let high = percent(d, "high", DEFAULT_FLAP.high);
    let low = percent(d, "low", DEFAULT_FLAP.low);
    let (Some((high, high_at)), Some((low, low_at))) = (high, low) else {
        return RuleFlap::Inherit;
    };
    if low >= high {
        // Point at the key written (the low one when both are).
        let (n, p) = match (low_at, high_at) {
            (Some(at), _) | (None, Some(at)) => at,
            (None, None) => unreachable!("the defaults are ordered"),
        };
        d.error(
            n,
            &p,
            format!(
                "low ({low}) must be below high ({high}): flapping starts above high and ends \
                 below low"
            ),
        );
        return RuleFlap::Inherit;
    }
    RuleFlap::Limits(FlapLimits { high, low })
}

#[cfg(test)]
mod tests {
    use crate::config::{FlapLimits, RuleFlap};

    fn load(text: &str) -> Result<crate::config::Config, String> {
        crate::config::load_str(text, "t.json", &|_| None).map_err(|e| e.to_string())
    }

    const RULE: &str = r#"{"name": "cpu", "metric": "cpu.usage", "warn": "> 90""#;
    const RULE_B: &str = r#"{"name": "b", "metric": "cpu.usage", "warn": "> 90""#;

    #[test]
    fn on_by_default_with_50_and_25_global_and_per_rule_settings_and_false() {
        let c = load(&format!(r#"{{"rules": [{RULE}}}]}}"#)).unwrap();
        assert_eq!(c.flap, Some(FlapLimits { high: 50.0, low: 25.0 }));
        assert_eq!(c.rules[0].flap, RuleFlap::Inherit);
        let c = load(&format!(
            r#"{{"flap": {{"high": 70}}, "rules": [{RULE}, "flap": false}},
                {RULE_B}, "flap": {{"low": 10, "high": 40}}}}]}}"#
        ))
        .unwrap();
        assert_eq!(c.flap, Some(FlapLimits { high: 70.0, low: 25.0 }));
        assert_eq!(c.rules[0].flap, RuleFlap::Off);
        assert_eq!(c.rules[1].flap, RuleFlap::Limits(FlapLimits { high: 40.0, low: 10.0 }));
        let c = load(&format!(r#"{{"flap": false, "rules": [{RULE}, "flap": true}}]}}"#)).unwrap();
        assert_eq!((c.flap, &c.rules[0].flap), (None, &RuleFlap::Inherit));
    }

    #[test]
    fn bad_values_name_file_line_column_and_key_path() {
        let e = load("{\"flap\": {\"high\": 20},\n \"rules\": []}").unwrap_err();
        assert_eq!(
            e,
            "t.json:1:19: flap.high: low (25) must be below high (20): flapping starts above \
             high and ends below low"
        );
        let e =
            load(&format!("{{\"rules\": [{RULE},\n \"flap\": {{\"hihg\": 60, \"low\": 0}}}}]}}"))
                .unwrap_err();
        assert!(
            e.contains("t.json:2:11: rules[0].flap.hihg: unknown key (did you mean \"high\"?)"),
            "{e}"
        );
        assert!(
            e.contains(
                "t.json:2:30: rules[0].flap.low: 0 is not a percentage above 0 and at most 100"
            ),
            "{e}"
        );
        let e =
            load(&format!(r#"{{"rules": [{RULE}, "flap": {{"high": "50%"}}}}]}}"#)).unwrap_err();
        assert!(e.contains("rules[0].flap.high: expected a percentage like 50, found"), "{e}");
        let e = load(r#"{"flap": 50, "rules": []}"#).unwrap_err();
        assert!(e.contains("1:10: flap: expected an object like {\"high\": 50"), "{e}");
        let e = load(r#"{"flap": {"high": 101}, "rules": []}"#).unwrap_err();
        assert!(e.contains("flap.high: 101 is not a percentage"), "{e}");
    }
}
