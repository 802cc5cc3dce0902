//! JSON values written as block-style YAML, for `hostwatch check --format yaml`.
//!
//! The output reads back (through `yaml::parse`) to the same tree: a string is written plain
//! only when the core schema reads it back as that string and YAML 1.1 readers (PyYAML) would
//! too (so `y`, `yes`, `on`, `off`, and anything starting with a digit, `+`, `-` then a digit
//! or `.`, or `.` then a digit, such as `1_000`, `0b101` or `2026-12-01`, are quoted),
//! otherwise double-quoted with escapes for every character YAML does not print. A key longer
//! than YAML's 1024-character limit for implicit keys is written explicitly (`? "key"`, then
//! `: value`). Not a general YAML writer: no anchors, tags or comments.

use serde_json::Value;
use std::fmt::Write;

/// The longest key YAML lets a `key: value` line hold, in characters (quotes included).
const MAX_IMPLICIT_KEY: usize = 1024;

/// `value` as a YAML document (block style, two-space indent), ending in a newline.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => block(&mut out, value, 0, false),
        Value::Array(a) if !a.is_empty() => block(&mut out, value, 0, false),
        other => {
            scalar(&mut out, other);
            out.push('\n');
        }
    }
    out
}

/// A non-empty mapping or sequence at `indent`; `inline` when its first line's indent is
/// already written (after `- `).
fn block(out: &mut String, value: &Value, indent: usize, inline: bool) {
    let pad = |out: &mut String, first: bool| {
        if !(first && inline) {
            out.push_str(&" ".repeat(indent));
        }
    };
    match value {
        Value::Object(m) => {
            for (i, (k, v)) in m.iter().enumerate() {
                pad(out, i == 0);
                let mut key = String::new();
                string(&mut key, k);
                if key.chars().count() > MAX_IMPLICIT_KEY {
                    out.push_str("? ");
                    out.push_str(&key);
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                } else {
                    out.push_str(&key);
                }
                out.push(':');
                child(out, v, indent);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pad(out, i == 0);
                out.push('-');
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push(' ');
                        block(out, v, indent + 2, true);
                    }
                    _ => child(out, v, indent),
                }
            }
        }
        _ => unreachable!("block() is called on collections only"),
    }
}

/// What follows `key:` or `-`: a nested block on the next lines, or ` scalar`.
fn child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block(out, v, indent + 2, false);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block(out, v, indent + 2, false);
        }
        _ => {
            out.push(' ');
            scalar(out, v);
            out.push('\n');
        }
    }
}

fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => string(out, s),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Characters a plain scalar may hold here (no indicator, comment or flow character).
fn plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-./@+=()%$ ".contains(c)
}

/// True when `s` may be written without quotes and reads back as the same string, in YAML
/// 1.2 and in YAML 1.1.
fn plain_ok(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    let second = chars.next();
    // YAML 1.1 numbers and timestamps (`1_000`, `0b101`, `2026-12-01`, `+1`, `-.5`, `.5`)
    // all start so.
    let number_like = first.is_ascii_digit()
        || first == '+'
        || (first == '-' && second.is_some_and(|c| c.is_ascii_digit() || c == '.'))
        || (first == '.' && second.is_some_and(|c| c.is_ascii_digit()));
    (first.is_ascii_alphabetic() || "/._(".contains(first))
        && !number_like
        && !s.ends_with(' ')
        && s.chars().all(plain_char)
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false"
        )
        && super::scalar::plain(s).is_ok_and(|v| v == super::NodeValue::String(s.to_owned()))
}

fn string(out: &mut String, s: &str) {
    if plain_ok(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // YAML's printable set: no C0/C1 controls, DEL, BOM or non-characters raw.
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}') =>
            {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn back(text: &str) -> Value {
        super::super::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}")).to_value()
    }

    #[test]
    fn writes_block_yaml_that_reads_back() {
        let v = json!({
            "host": "web-01",
            "rules": [{"name": "cpu", "warn": "> 85", "for": "2m"}, {"name": "x", "match": {}}],
            "nested": [[1, 2], [], {}],
            "flags": [true, false, null, 0.5, -3],
            "words": ["yes", "no", "on", "Off", "012", "0x1F", "true", "null", "~", "", " a", "a "],
            "odd": ["a: b", "a #b", "-x", "- x", "*x", "&x", "!x", "%x", "@x", "[x]", "{x}",
                     "x,y", "'q'", "\"q\"", "multi\nline", "tab\there", "é", "\u{7f}\u{85}\u{2028}\u{feff}"],
            "url": "https://hooks.slack.com/<redacted>",
            "empty": {}, "none": [],
        });
        let text = to_yaml(&v);
        assert!(text.starts_with("empty: {}\nflags:\n  - true\n"), "{text}");
        assert!(text.contains("host: web-01\n"), "{text}");
        assert!(text.contains("  - for: \"2m\"\n    name: cpu\n    warn: \"> 85\"\n"), "{text}");
        assert_eq!(back(&text), v);
    }

    #[test]
    fn strings_yaml_1_1_reads_as_numbers_dates_or_booleans_are_quoted() {
        for s in [
            "1_000",
            "0b101",
            "2026-12-01",
            "1_000.5",
            "012",
            "1:20",
            "+1",
            "-1",
            "-.5",
            ".5",
            "1.5e3",
            "0x_1",
            "2026-12-01T10:00:00Z",
            "y",
            "Y",
            "n",
            "N",
            "yes",
            "No",
            "ON",
            "off",
            "True",
            "FALSE",
            "~",
            "null",
            "",
            "5s",
            "10MB",
        ] {
            let text = to_yaml(&json!({ "k": s }));
            assert!(text.starts_with("k: \""), "{s}: {text}");
            assert_eq!(back(&text), json!({ "k": s }));
        }
        for s in ["web-01", "a1", ".x", "_1", "/var/lib/hostwatch", "yesterday", "none", "v1.2"] {
            assert_eq!(to_yaml(&json!({ "k": s })), format!("k: {s}\n"), "{s}");
        }
    }

    #[test]
    fn keys_past_1024_characters_are_written_explicitly() {
        let long = "k".repeat(1100);
        let v =
            json!({ "a": [{ long.clone(): 1, "b": { long.clone(): [1] } }], long.clone(): "x" });
        let text = to_yaml(&v);
        assert!(text.contains(&format!("\n? {long}\n: x\n")), "{text}");
        assert!(text.contains(&format!("\n    ? {long}\n    : 1\n")), "{text}");
        assert_eq!(to_yaml(&json!([{ long.clone(): 1 }])), format!("- ? {long}\n  : 1\n"));
        assert_eq!(back(&text), v);
        // 1022 characters and two quotes fit.
        let fits = " ".repeat(1022);
        assert!(to_yaml(&json!({ fits.clone(): 1 })).starts_with('"'));
        assert_eq!(back(&to_yaml(&json!({ fits: 1 }))).as_object().unwrap().len(), 1);
    }

    #[test]
    fn scalars_alone_are_documents_too() {
        for v in [json!("x"), json!(1), json!(null), json!({}), json!([])] {
            assert_eq!(back(&to_yaml(&v)), v);
        }
    }
}
