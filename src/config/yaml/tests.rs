//! Tests of the YAML front-end: trees and positions, what is refused, and properties.

use super::*;

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn obj(n: &Node) -> &[(Key, Node)] {
    match &n.value {
        NodeValue::Object(m) => m,
        other => panic!("not a mapping: {other:?}"),
    }
}

#[test]
fn builds_the_json_tree_with_one_based_character_positions() {
    let text = "# hostwatch\nhost: web-01\n\"é€\": [1, \"ü\", x]\nrules:\n  - name: a\n    warn: \"> 85\"\nempty:\n";
    let n = parse(text).unwrap();
    let m = obj(&n);
    assert_eq!((m[0].0.name.as_str(), m[0].0.line, m[0].0.col), ("host", 2, 1));
    assert_eq!((m[0].1.as_str(), m[0].1.line, m[0].1.col), (Some("web-01"), 2, 7));
    // A quoted key is at its opening quote, as in JSON; columns count characters.
    assert_eq!((m[1].0.line, m[1].0.col), (3, 1));
    let NodeValue::Array(items) = &m[1].1.value else { panic!("not a sequence") };
    assert_eq!((items[1].line, items[1].col), (3, 11));
    assert_eq!((items[2].as_str(), items[2].col), (Some("x"), 16));
    // A block sequence starts at its first `-`, a block mapping at its first key.
    assert_eq!((m[2].1.line, m[2].1.col), (5, 3));
    let NodeValue::Array(rules) = &m[2].1.value else { panic!("not a sequence") };
    assert_eq!((rules[0].line, rules[0].col), (5, 5));
    assert_eq!((obj(&rules[0])[1].1.line, obj(&rules[0])[1].1.col), (6, 11));
    assert_eq!(m[3].1.value, NodeValue::Null);
    let json = crate::config::json::parse(
        r#"{"host": "web-01", "é€": [1, "ü", "x"], "rules": [{"name": "a", "warn": "> 85"}], "empty": null}"#,
    )
    .unwrap();
    assert_eq!(n.to_value(), json.to_value());
}

#[test]
fn refuses_what_a_config_cannot_mean() {
    assert_eq!(err("a: 1\nb: 2\na: 3\n"), "3:1: duplicate key \"a\" (first at line 1:1)");
    assert_eq!(err("x: {a: 1, \"a\": 2}"), "1:11: duplicate key \"a\" (first at line 1:5)");
    assert_eq!(
        err("a: 1\n---\nb: 2\n"),
        "2:1: a second YAML document starts here (a config is one document)"
    );
    assert_eq!(err("[a, b]: 1\n"), "1:1: a key must be a scalar, not a sequence");
    assert_eq!(err("? {a: 1}\n: 1\n"), "1:3: a key must be a scalar, not a mapping");
    assert_eq!(err("a: &k x\n*k : 1\n"), "2:1: a key cannot be an alias (write the key out)");
    assert_eq!(err(": 1\n"), "1:1: a key must not be empty (it would be null)");
    assert_eq!(err("!!int 1: x\n"), "1:1: a key must be a string, and its tag is !!int");
    assert_eq!(err("a: &x [1, *x]\n"), "1:11: an alias inside its own anchor (it would never end)");
    assert_eq!(
        err("a: !!binary aGk=\n"),
        "1:4: the tag !!binary is not accepted (the core tags are !!str, !!int, !!float, !!bool, !!null, !!map and !!seq)"
    );
    assert_eq!(
        err("a: !!set {x: null}\n"),
        "1:4: a mapping cannot carry the tag !!set (the core tags are !!str, !!int, !!float, !!bool, !!null, !!map and !!seq)"
    );
    assert_eq!(
        err("a: !!map [1]\n").split(" (").next(),
        Some("1:4: a sequence cannot carry the tag !!map")
    );
    assert_eq!(err("a: !!int 0x1G\n"), "1:4: \"0x1G\" is not an integer, as its tag !!int says");
    assert!(err("a: .inf\n").starts_with("1:4: .inf is not a number a config can hold"));
    assert_eq!(err("a: 1e400\n"), "1:4: number out of range");
    assert_eq!(
        err(""),
        "1:1: the file is empty (expected a YAML mapping; comments alone are no config)"
    );
    assert!(err("# nothing\n").contains("the file is empty"));
    let deep = format!("a: {}", "[".repeat(MAX_DEPTH + 1));
    assert!(err(&deep).ends_with("nesting deeper than 64 levels"), "{}", err(&deep));
    assert!(
        parse(&format!("a: {}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1))).is_ok()
    );
}

#[test]
fn syntax_errors_carry_the_parsers_message_at_one_based_positions() {
    assert_eq!(err("a: 1\n b: 2\n"), "2:3: mapping values are not allowed in this context");
    assert_eq!(err("a: [1, 2\n"), "2:1: while parsing a flow sequence, expected ',' or ']'");
    assert_eq!(err("a: *nope\n"), "1:4: while parsing node, found unknown anchor");
    for text in ["iface: [${IF}]\n", "x: 1\niface: [a, ${IF}, b]\n", "m: {a: ${X}}\n"] {
        assert!(
            err(text)
                .ends_with(" (quote a value holding ${…} inside [ ] or { }, like [\"${IF}\"])"),
            "{text}: {}",
            err(text)
        );
    }
    assert!(parse("iface: [\"${IF}\"]\nx: ${Y}\n").is_ok());
    assert!(!err("a: [1, 2\n").contains("${"));
    assert_eq!(
        err("warn: > 85\n"),
        "1:7: while scanning a block scalar, did not find expected comment or line break (a value starting with > or | must be quoted, like warn: \"> 85\")"
    );
}

#[test]
fn merge_keys_and_null_keys_are_refused() {
    assert_eq!(
        err("base: &b {x: 1}\nother:\n  <<: *b\n"),
        "3:3: YAML merge keys (<<) are not supported; write the keys out"
    );
    assert_eq!(
        err("channels:\n  c:\n    <<: {type: slack}\n"),
        "3:5: YAML merge keys (<<) are not supported; write the keys out"
    );
    assert_eq!(err("~: 1\n"), "1:1: a key must not be null (~; quote it to mean the text)");
    assert_eq!(
        err("a: 1\nnull: 1\n"),
        "2:1: a key must not be null (null; quote it to mean the text)"
    );
    // Quoted, or tagged as text, they are keys like any other; keys are compared as written.
    let n = parse("\"<<\": 1\n\"~\": 2\n!!str null: 3\n1: a\n01: b\ntrue: c\n").unwrap();
    let names: Vec<&str> = obj(&n).iter().map(|(k, _)| k.name.as_str()).collect();
    assert_eq!(names, ["<<", "~", "null", "1", "01", "true"]);
}

#[test]
fn verbatim_and_non_specific_tags_and_the_version_directive() {
    let n = parse("a: !<tag:yaml.org,2002:str> 12\nb: ! true\nc: !<tag:yaml.org,2002:int> \"7\"\nd: !<tag:yaml.org,2002:map> {x: ! [1]}\n! e: 1\n").unwrap();
    assert_eq!(
        n.to_value(),
        serde_json::json!({"a": "12", "b": "true", "c": 7, "d": {"x": [1]}, "e": 1})
    );
    assert!(
        err("a: !<tag:example.com,2026:x> 1\n")
            .contains("the tag !<tag:example.com,2026:x> is not accepted")
    );
    assert!(parse("%YAML 1.2\n---\na: 1\n").is_ok());
    assert_eq!(
        err("# c\n%YAML 1.1\n---\na: yes\n"),
        "2:1: %YAML 1.1: only YAML 1.2 is read (1.1 reads yes, no, 012 and dates otherwise); write %YAML 1.2 or leave the directive out"
    );
    // Only a directive at the start counts.
    assert!(parse("a: |\n  %YAML 1.1\n").is_ok());
}

#[test]
fn aliases_copy_their_anchor_at_the_alias() {
    let n = parse("all: &all [ops, mail]\nroutes:\n  - channels: *all\n").unwrap();
    let routes = &obj(&n)[1].1;
    let NodeValue::Array(r) = &routes.value else { panic!() };
    let channels = &obj(&r[0])[0].1;
    assert_eq!((channels.line, channels.col), (3, 15));
    let NodeValue::Array(c) = &channels.value else { panic!() };
    // What the alias copies keeps where its text is written.
    assert_eq!((c[1].as_str(), c[1].line, c[1].col), (Some("mail"), 1, 17));
    assert_eq!(obj(&n)[0].1.to_value(), channels.to_value());
}

#[test]
fn a_billion_laughs_is_refused_at_the_alias_that_crosses_the_limit() {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(", ");
        text.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
    }
    // 10^10 strings if expanded: refused on line 5, when `e` (66,430 nodes) would be kept for
    // its anchor, having copied fewer than MAX_COPIED_NODES nodes.
    let e = parse(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "5:4: anchors and aliases copy more than 100000 nodes here (a \"billion laughs\" file?); write the repeated parts out or reuse fewer"
    );
    // One level less is well within the limit.
    let small: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    let n = parse(&small).unwrap();
    assert_eq!(obj(&n)[3].1.to_value().to_string().matches("lol").count(), 9 * 9 * 9 * 9);
}

#[test]
fn a_long_string_aliased_many_times_is_refused_by_its_bytes() {
    // 120 KB of text that would expand to 500 MB: refused at the alias that crosses
    // MAX_COPIED_BYTES, before it is copied.
    let text =
        format!("host: &a \"{}\"\nx: [{}]\n", "x".repeat(100_000), vec!["*a"; 5_000].join(", "));
    let per = 100_000 + NODE_BYTES;
    // The anchor is charged once, then each alias: the k-th alias crosses when (k + 1) × per does.
    let k = MAX_COPIED_BYTES / per;
    let col = 5 + 4 * (k - 1);
    assert_eq!(
        err(&text),
        format!(
            "2:{col}: anchors and aliases copy more than 16 MiB here (a \"billion laughs\" file?); write the repeated parts out or reuse fewer"
        )
    );
    // A few copies are fine.
    let few =
        format!("host: &a \"{}\"\nx: [{}]\n", "x".repeat(100_000), vec!["*a"; 100].join(", "));
    assert!(parse(&few).is_ok());
    // Keys weigh too: a mapping of long keys, aliased.
    let keys: Vec<String> = (0..100).map(|i| format!("{i}{}: 1", "k".repeat(10_000))).collect();
    let text = format!("a: &a {{{}}}\nb: [{}]\n", keys.join(", "), vec!["*a"; 100].join(", "));
    assert!(err(&text).contains("copy more than 16 MiB"), "{}", err(&text));
}

#[test]
fn an_alias_cannot_nest_deeper_than_the_limit() {
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    // 60 levels anchored, pasted 10 levels down: 70 > 64.
    let text = format!("a: &a {}\nb: [[[[[[[[[*a]]]]]]]]]\n", deep(60));
    assert_eq!(
        err(&text),
        "2:13: nesting deeper than 64 levels (this alias copies 60 levels, nested 10 deep)"
    );
    // Pasted where it fits (root mapping + 3 + 60 = 64 levels).
    let text = format!("a: &a {}\nb: [[[*a]]]\n", deep(60));
    assert!(parse(&text).is_ok(), "{}", err(&text));
    let text = format!("a: &a {}\nb: [[[[*a]]]]\n", deep(60));
    assert!(err(&text).starts_with("2:8: nesting deeper than 64 levels"), "{}", err(&text));
}

mod properties {
    use super::super::emit::to_yaml;
    use super::parse;
    use proptest::prelude::*;
    use serde_json::Value;

    /// Pieces of YAML syntax, so generated text reaches past the first token.
    const PIECES: &[&str] = &[
        "a",
        "key",
        ":",
        ": ",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\t",
        "-",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&x ",
        "*x",
        "!!str ",
        "!!int ",
        "!x ",
        "\"",
        "'",
        "#",
        "|",
        ">",
        "---\n",
        "...\n",
        "?",
        "1",
        "0x1F",
        "~",
        ".inf",
        "é",
        "\\",
        "%YAML 1.2\n",
        "<<: ",
        "${V}",
    ];

    /// Where an error may point: a line of the text (or the one after its end), column ≥ 1.
    fn plausible(text: &str, e: &crate::config::json::SyntaxError) -> bool {
        let breaks = text.matches('\n').count() + text.matches('\r').count();
        e.line >= 1 && e.col >= 1 && (e.line as usize) <= breaks + 2
    }

    /// Keys, some past YAML's 1024-character limit for `key: value` (as written: an escape
    /// takes more than one character).
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => any::<String>(),
            1 => ("[a-z\"\n]{0,4}", 1000usize..1100).prop_map(|(s, n)| s.repeat(n / s.len().max(1))),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-1_000_000i64..1_000_000).prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[a-z0-9 :#>&*!-]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic_and_errors_have_a_position(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let text = String::from_utf8_lossy(&bytes);
            if let Err(e) = parse(&text) {
                prop_assert!(plausible(&text, &e), "{e} for {text:?}");
            }
        }

        #[test]
        fn yaml_shaped_text_never_panics_and_errors_have_a_position(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
        ) {
            let text = pieces.concat();
            if let Err(e) = parse(&text) {
                prop_assert!(plausible(&text, &e), "{e} for {text:?}");
            }
        }

        #[test]
        fn json_values_written_as_yaml_read_back_the_same(v in json_value()) {
            let yaml = to_yaml(&v);
            let back = parse(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
            // Through the JSON front-end too: both trees hold the same values.
            let json = crate::config::json::parse(&v.to_string()).expect("serde_json writes JSON");
            prop_assert_eq!(back.to_value(), json.to_value(), "{}", yaml);
        }
    }
}
