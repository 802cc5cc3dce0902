//! What a YAML scalar means: the YAML 1.2 core schema's resolution of plain scalars (null,
//! booleans, integers in decimal, `0o` octal and `0x` hex, floats) and the core tags
//! (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, also written verbatim as
//! `!<tag:yaml.org,2002:int>`) that force a kind; the non-specific tag `!` makes a string.
//!
//! Quoted and block scalars are strings unless a tag says otherwise; YAML 1.1's `yes`, `no`,
//! `on`, `off` and leading-zero octals are strings and decimals as 1.2 says. Infinite and
//! not-a-number floats are refused: JSON has neither, and no config value can use one. Not
//! the place for keys, collections or positions: that is `yaml`.

use super::super::json::NodeValue;
use saphyr_parser::{ScalarStyle, Tag};

/// The tags a config may carry (on scalars; `!!map` and `!!seq` on collections).
pub(super) const CORE_TAGS: &str = "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq";

/// A tag as the operator wrote it (`!!int`, `!local`, `!<tag:example.com:x>`).
pub(super) fn tag_text(tag: &Tag) -> String {
    if non_specific(tag) {
        "!".to_owned()
    } else if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("!<{}{}>", tag.handle, tag.suffix)
    }
}

/// The core tag's name (`int` for `!!int` and for the verbatim `!<tag:yaml.org,2002:int>`),
/// `None` for any other tag. The non-specific tag `!` is `None` too: see [`non_specific`].
pub(super) fn core_suffix(tag: &Tag) -> Option<&str> {
    if tag.is_yaml_core_schema() {
        Some(tag.suffix.as_str())
    } else if tag.handle.is_empty() {
        tag.suffix.strip_prefix("tag:yaml.org,2002:")
    } else {
        None
    }
}

/// True for the non-specific tag `!`: a scalar carrying it is a string, a collection what it
/// is.
pub(super) fn non_specific(tag: &Tag) -> bool {
    tag.handle.is_empty() && tag.suffix == "!"
}

/// The value of a scalar written as `text` in `style` with `tag`; the error says why the
/// scalar cannot be a config value.
pub(super) fn resolve(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
) -> Result<NodeValue, String> {
    let Some(tag) = tag.filter(|t| !non_specific(t)) else {
        if tag.is_some() {
            return Ok(NodeValue::String(text.to_owned()));
        }
        return match style {
            ScalarStyle::Plain => plain(text),
            _ => Ok(NodeValue::String(text.to_owned())),
        };
    };
    let wrong = |kind: &str| format!("{text:?} is not {kind}, as its tag {} says", tag_text(tag));
    match core_suffix(tag) {
        Some("str") => Ok(NodeValue::String(text.to_owned())),
        Some("null") => null(text).ok_or_else(|| wrong("null")),
        Some("bool") => boolean(text).ok_or_else(|| wrong("a boolean")),
        Some("int") => integer(text).ok_or_else(|| wrong("an integer"))?.map(NodeValue::Number),
        Some("float") => match integer(text).or_else(|| float(text)) {
            Some(n) => n.map(NodeValue::Number),
            None => Err(wrong("a float")),
        },
        Some(kind @ ("map" | "seq")) => {
            Err(format!("a scalar cannot carry the tag !!{kind} (it is for a collection)"))
        }
        _ => Err(format!(
            "the tag {} is not accepted (the core tags are {CORE_TAGS})",
            tag_text(tag)
        )),
    }
}

/// A plain scalar by the core schema's rules: null, boolean, integer, float, else a string.
pub(super) fn plain(text: &str) -> Result<NodeValue, String> {
    if let Some(v) = null(text).or_else(|| boolean(text)) {
        return Ok(v);
    }
    match integer(text).or_else(|| float(text)) {
        Some(n) => n.map(NodeValue::Number),
        None => Ok(NodeValue::String(text.to_owned())),
    }
}

fn null(text: &str) -> Option<NodeValue> {
    matches!(text, "" | "~" | "null" | "Null" | "NULL").then_some(NodeValue::Null)
}

fn boolean(text: &str) -> Option<NodeValue> {
    match text {
        "true" | "True" | "TRUE" => Some(NodeValue::Bool(true)),
        "false" | "False" | "FALSE" => Some(NodeValue::Bool(false)),
        _ => None,
    }
}

/// `Some` when `text` is a core-schema integer (`[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`);
/// its value, or the error when it does not fit a double.
fn integer(text: &str) -> Option<Result<f64, String>> {
    let (radix, digits) = if let Some(d) = text.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = text.strip_prefix("0x") {
        (16, d)
    } else {
        let d = text.strip_prefix(['-', '+']).unwrap_or(text);
        if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some(finite(text.parse::<f64>().ok()));
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let value = digits.chars().fold(0.0f64, |v, c| {
        v * f64::from(radix) + f64::from(c.to_digit(radix).expect("checked digit"))
    });
    Some(finite(Some(value)))
}

/// `Some` when `text` is a core-schema float; its value, or why it cannot be one in a config.
fn float(text: &str) -> Option<Result<f64, String>> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(Err(format!(
            "{text} is not a number a config can hold (JSON has no infinity or NaN; quote it \
             to mean the text)"
        )));
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match fraction {
        // `.5`, `1.`, `1.5`
        Some(f) => all_digits(whole) && all_digits(f) && !(whole.is_empty() && f.is_empty()),
        None => !whole.is_empty() && all_digits(whole),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    Some(finite(text.parse::<f64>().ok()))
}

fn finite(value: Option<f64>) -> Result<f64, String> {
    match value {
        Some(v) if v.is_finite() => Ok(v),
        // As `json` says it.
        _ => Err("number out of range".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> NodeValue {
        plain(text).unwrap()
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        for s in ["no", "yes", "on", "off", "y", "n", "Yes", "NO", "5s", "> 85", "0b101", "1_000"] {
            assert_eq!(num(s), NodeValue::String(s.into()), "{s}");
        }
        for s in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(num(s), NodeValue::Null, "{s:?}");
        }
        for (s, b) in [("true", true), ("True", true), ("TRUE", true), ("false", false)] {
            assert_eq!(num(s), NodeValue::Bool(b));
        }
        assert_eq!(num("nULL"), NodeValue::String("nULL".into()));
        assert_eq!(num("tRUE"), NodeValue::String("tRUE".into()));
        for (s, n) in [
            ("012", 12.0),
            ("-7", -7.0),
            ("+3", 3.0),
            ("0o12", 10.0),
            ("0x1F", 31.0),
            ("1.5", 1.5),
            (".5", 0.5),
            ("2.", 2.0),
            ("-1e3", -1000.0),
            ("1E-2", 0.01),
        ] {
            assert_eq!(num(s), NodeValue::Number(n), "{s}");
        }
        for s in ["0o8", "0x", "0xG", "1e", ".", "-", "1.2.3", "e5", "0o-1", "-0x1"] {
            assert_eq!(num(s), NodeValue::String(s.into()), "{s}");
        }
    }

    #[test]
    fn infinity_nan_and_overflow_are_refused() {
        for s in [".inf", "-.Inf", "+.INF", ".nan", ".NaN"] {
            assert!(plain(s).unwrap_err().contains("no infinity or NaN"), "{s}");
        }
        assert_eq!(plain("1e999").unwrap_err(), "number out of range");
        assert!(plain(&"9".repeat(400)).unwrap_err().starts_with("number out of range"));
        // `-.nan` is not a core float: a string.
        assert_eq!(num("-.nan"), NodeValue::String("-.nan".into()));
    }

    #[test]
    fn quoted_scalars_are_strings_and_tags_force_a_kind() {
        let core = |s: &str| Tag { handle: "tag:yaml.org,2002:".into(), suffix: s.into() };
        let dq = ScalarStyle::DoubleQuoted;
        assert_eq!(resolve("12", dq, None), Ok(NodeValue::String("12".into())));
        assert_eq!(
            resolve("true", ScalarStyle::Literal, None),
            Ok(NodeValue::String("true".into()))
        );
        assert_eq!(
            resolve("012", ScalarStyle::Plain, Some(&core("str"))),
            Ok(NodeValue::String("012".into()))
        );
        assert_eq!(resolve("12", dq, Some(&core("int"))), Ok(NodeValue::Number(12.0)));
        assert_eq!(
            resolve("1", ScalarStyle::Plain, Some(&core("float"))),
            Ok(NodeValue::Number(1.0))
        );
        assert_eq!(resolve("~", ScalarStyle::Plain, Some(&core("null"))), Ok(NodeValue::Null));
        assert_eq!(
            resolve("yes", ScalarStyle::Plain, Some(&core("bool"))),
            Err("\"yes\" is not a boolean, as its tag !!bool says".into())
        );
        assert_eq!(
            resolve("aGk=", ScalarStyle::Plain, Some(&core("binary"))),
            Err(format!("the tag !!binary is not accepted (the core tags are {CORE_TAGS})"))
        );
        let verbatim =
            |s: &str| Tag { handle: String::new(), suffix: format!("tag:yaml.org,2002:{s}") };
        assert_eq!(resolve("12", dq, Some(&verbatim("int"))), Ok(NodeValue::Number(12.0)));
        assert_eq!(
            resolve("12", ScalarStyle::Plain, Some(&verbatim("str"))),
            Ok(NodeValue::String("12".into()))
        );
        let bang = Tag { handle: String::new(), suffix: "!".into() };
        assert_eq!(
            resolve("true", ScalarStyle::Plain, Some(&bang)),
            Ok(NodeValue::String("true".into()))
        );
        let local = Tag { handle: "!".into(), suffix: "env".into() };
        assert!(resolve("X", ScalarStyle::Plain, Some(&local)).unwrap_err().contains("tag !env"));
        assert!(
            resolve("x", ScalarStyle::Plain, Some(&core("map"))).unwrap_err().contains("!!map")
        );
    }
}
