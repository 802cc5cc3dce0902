//! A small strict JSON parser that keeps the position of every value and key.
//!
//! serde_json forgets where a value came from; config errors must say `line:col`, so the
//! config is parsed here into a [`Node`] tree first. Strict RFC 8259: no comments, no trailing
//! commas, and (stricter than the RFC) no duplicate keys. Not the place for any meaning of
//! the keys: that is `decode`.

use std::fmt;

/// The deepest nesting accepted; a config needs a handful of levels.
pub(crate) const MAX_DEPTH: usize = 64;

const LONE_HIGH_SURROGATE: &str =
    "invalid \\u escape: a high surrogate must be followed by a \\u low surrogate";

/// A JSON value with the position of its first character (1-based line and column, the
/// column counted in characters).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: NodeValue,
    /// Line of the value's first character.
    pub line: u32,
    /// Column of the value's first character.
    pub col: u32,
    /// Where a string's characters are written, for an error inside it.
    pub text: TextAt,
}

/// Where the characters of a string node are written in the file, for an error that points
/// inside the string (a template's unknown field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextAt {
    /// After the node's opening quote on its line: JSON, and YAML's one-line quoted strings
    /// (an escape before the character shifts it, by one column or more).
    #[default]
    AfterQuote,
    /// From the node's first column on its line: a one-line plain YAML scalar.
    Plain,
    /// A YAML literal block (`|`): its text starts at the node, each of its lines indented
    /// to the node's column.
    Literal,
    /// Not known character by character (an alias, a folded block, a string on several
    /// lines): the node's own position.
    Node,
}

/// An object key with its own position (of its opening quote).
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// The key, escapes resolved.
    pub name: String,
    /// Line of the opening quote.
    pub line: u32,
    /// Column of the opening quote.
    pub col: u32,
}

/// The JSON value kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// Any number, as a double.
    Number(f64),
    /// A string, escapes resolved.
    String(String),
    /// An array.
    Array(Vec<Node>),
    /// An object, members in file order (keys are unique).
    Object(Vec<(Key, Node)>),
}

impl Node {
    /// What kind of value this is, for "expected …, found a number" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Array(_) => "an array",
            NodeValue::Object(_) => "an object",
        }
    }

    /// The line and column of the character `offset` (0-based, in characters) of the string
    /// this node holds, as [`TextAt`] knows it.
    pub fn text_position(&self, offset: usize) -> (u32, u32) {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match (self.text, self.as_str()) {
            (TextAt::AfterQuote, _) => (self.line, self.col.saturating_add(clamp(offset) + 1)),
            (TextAt::Plain, _) => (self.line, self.col.saturating_add(clamp(offset))),
            (TextAt::Literal, Some(s)) => {
                let before: String = s.chars().take(offset).collect();
                let newlines = before.matches('\n').count();
                let in_line = before.rsplit('\n').next().unwrap_or("").chars().count();
                (self.line.saturating_add(clamp(newlines)), self.col.saturating_add(clamp(in_line)))
            }
            _ => (self.line, self.col),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The tree as a plain `serde_json::Value` (positions dropped; whole numbers that fit
    /// stay integers).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                    Value::from(*n as i64)
                } else {
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                }
            }
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeValue::Object(members) => {
                Value::Object(members.iter().map(|(k, v)| (k.name.clone(), v.to_value())).collect())
            }
        }
    }
}

/// A syntax error: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Parses one JSON document (a leading byte-order mark is skipped).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser { chars: text.chars().collect(), pos: 0, line: 1, col: 1, depth: 0 };
    p.skip_ws()?;
    if p.peek().is_none() {
        return Err(p.error("the file is empty (expected a JSON object)"));
    }
    let node = p.value()?;
    p.skip_ws()?;
    if p.peek().is_some() {
        return Err(p.error("unexpected text after the end of the JSON document"));
    }
    Ok(node)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    depth: usize,
}

type Result<T, E = SyntaxError> = std::result::Result<T, E>;

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError { line: self.line, col: self.col, message: message.into() }
    }

    fn error_at(&self, (line, col): (u32, u32), message: impl Into<String>) -> SyntaxError {
        SyntaxError { line, col, message: message.into() }
    }

    fn here(&self) -> (u32, u32) {
        (self.line, self.col)
    }

    fn skip_ws(&mut self) -> Result<()> {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' => {
                    self.bump();
                }
                '/' if matches!(self.chars.get(self.pos + 1), Some('/' | '*')) => {
                    return Err(self.error("comments are not allowed in JSON"));
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Node> {
        let (line, col) = self.here();
        let value = match self.peek() {
            None => return Err(self.error("unexpected end of input, expected a value")),
            Some('{') => self.object()?,
            Some('[') => self.array()?,
            Some('"') => NodeValue::String(self.string()?),
            Some(c) if c == '-' || c.is_ascii_digit() => NodeValue::Number(self.number()?),
            Some(c) if c.is_alphabetic() => self.word()?,
            Some('\'') => return Err(self.error("strings must use double quotes (\"), not '")),
            Some(c) => {
                return Err(self.error(format!("unexpected character {c:?}, expected a value")));
            }
        };
        Ok(Node { value, line, col, text: TextAt::AfterQuote })
    }

    fn word(&mut self) -> Result<NodeValue> {
        let start = self.here();
        let mut word = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            word.push(c);
            self.bump();
        }
        match word.as_str() {
            "true" => Ok(NodeValue::Bool(true)),
            "false" => Ok(NodeValue::Bool(false)),
            "null" => Ok(NodeValue::Null),
            _ => Err(self.error_at(
                start,
                format!(
                    "unexpected word {word:?} (strings need double quotes; the bare words are \
                     true, false and null)"
                ),
            )),
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<NodeValue> {
        let open = self.here();
        self.enter()?;
        self.bump();
        let mut members: Vec<(Key, Node)> = Vec::new();
        self.skip_ws()?;
        if self.peek() == Some('}') {
            self.bump();
            self.depth -= 1;
            return Ok(NodeValue::Object(members));
        }
        loop {
            self.skip_ws()?;
            let key = match self.peek() {
                Some('"') => {
                    let (line, col) = self.here();
                    Key { name: self.string()?, line, col }
                }
                None => return Err(self.unclosed("object", open)),
                Some(_) => return Err(self.error("expected a key in double quotes")),
            };
            if let Some((first, _)) = members.iter().find(|(k, _)| k.name == key.name) {
                return Err(self.error_at(
                    (key.line, key.col),
                    format!(
                        "duplicate key {:?} (first at line {}:{})",
                        key.name, first.line, first.col
                    ),
                ));
            }
            self.skip_ws()?;
            match self.peek() {
                Some(':') => {
                    self.bump();
                }
                None => return Err(self.unclosed("object", open)),
                Some(_) => return Err(self.error("expected ':' after object key")),
            }
            self.skip_ws()?;
            let value = self.value()?;
            members.push((key, value));
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    let comma = self.here();
                    self.bump();
                    self.skip_ws()?;
                    if self.peek() == Some('}') {
                        return Err(self.error_at(comma, "trailing comma before '}'"));
                    }
                }
                Some('}') => {
                    self.bump();
                    self.depth -= 1;
                    return Ok(NodeValue::Object(members));
                }
                None => return Err(self.unclosed("object", open)),
                Some(_) => return Err(self.error("expected ',' or '}' after object member")),
            }
        }
    }

    fn array(&mut self) -> Result<NodeValue> {
        let open = self.here();
        self.enter()?;
        self.bump();
        let mut items = Vec::new();
        self.skip_ws()?;
        if self.peek() == Some(']') {
            self.bump();
            self.depth -= 1;
            return Ok(NodeValue::Array(items));
        }
        loop {
            self.skip_ws()?;
            if self.peek().is_none() {
                return Err(self.unclosed("array", open));
            }
            items.push(self.value()?);
            self.skip_ws()?;
            match self.peek() {
                Some(',') => {
                    let comma = self.here();
                    self.bump();
                    self.skip_ws()?;
                    if self.peek() == Some(']') {
                        return Err(self.error_at(comma, "trailing comma before ']'"));
                    }
                }
                Some(']') => {
                    self.bump();
                    self.depth -= 1;
                    return Ok(NodeValue::Array(items));
                }
                None => return Err(self.unclosed("array", open)),
                Some(_) => return Err(self.error("expected ',' or ']' after array element")),
            }
        }
    }

    fn unclosed(&self, what: &str, (line, col): (u32, u32)) -> SyntaxError {
        self.error(format!(
            "unexpected end of input: the {what} opened at {line}:{col} is not closed"
        ))
    }

    fn string(&mut self) -> Result<String> {
        let open = self.here();
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.here();
            match self.bump() {
                None => return Err(self.error_at(open, "unterminated string")),
                Some('"') => return Ok(out),
                Some('\\') => {
                    let c = self.escape(at)?;
                    out.push(c);
                }
                Some('\n') => {
                    return Err(self.error_at(
                        open,
                        "unterminated string (strings cannot span lines; write \\n)",
                    ));
                }
                Some(c) if (c as u32) < 0x20 => {
                    return Err(self.error_at(
                        at,
                        format!(
                            "control character U+{:04X} in string (write it as an escape)",
                            c as u32
                        ),
                    ));
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// After a backslash: one escape, `at` being the backslash.
    fn escape(&mut self, at: (u32, u32)) -> Result<char> {
        Ok(match self.bump() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let hi = self.hex4(at)?;
                if (0xDC00..0xE000).contains(&hi) {
                    return Err(
                        self.error_at(at, "invalid \\u escape: a low surrogate without a high one")
                    );
                }
                if (0xD800..0xDC00).contains(&hi) {
                    let lo_at = self.here();
                    if self.bump() != Some('\\') || self.bump() != Some('u') {
                        return Err(self.error_at(lo_at, LONE_HIGH_SURROGATE));
                    }
                    let lo = self.hex4(lo_at)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.error_at(lo_at, LONE_HIGH_SURROGATE));
                    }
                    let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    char::from_u32(code).expect("a surrogate pair is a valid scalar")
                } else {
                    char::from_u32(hi).expect("a non-surrogate BMP code is a valid scalar")
                }
            }
            Some(c) => return Err(self.error_at(at, format!("invalid escape \"\\{c}\" in string"))),
            None => return Err(self.error_at(at, "unterminated string")),
        })
    }

    fn hex4(&mut self, at: (u32, u32)) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    self.bump();
                }
                None => return Err(self.error_at(at, "invalid \\u escape: expected 4 hex digits")),
            }
        }
        Ok(v)
    }

    fn number(&mut self) -> Result<f64> {
        let start = self.pos;
        let at = self.here();
        if self.peek() == Some('-') {
            self.bump();
        }
        match self.peek() {
            Some('0') => {
                self.bump();
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.error_at(at, "invalid number: leading zeros are not allowed"));
                }
            }
            Some(c) if c.is_ascii_digit() => self.digits(),
            _ => return Err(self.error_at(at, "invalid number: expected a digit after '-'")),
        }
        if self.peek() == Some('.') {
            self.bump();
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error("invalid number: expected a digit after '.'"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error("invalid number: expected a digit in the exponent"));
            }
            self.digits();
        }
        if self.peek().is_some_and(|c| c.is_alphanumeric()) {
            return Err(self.error(
                "invalid number: unexpected letter (values with units are strings, like \"5s\")",
            ));
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => Err(self.error_at(at, "number out of range")),
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_kind_with_positions() {
        let n = parse("{\n  \"a\": [1, -2.5e3, true, false, null],\n  \"b\": \"x\"\n}").unwrap();
        let NodeValue::Object(m) = &n.value else { panic!("not an object") };
        assert_eq!((n.line, n.col), (1, 1));
        assert_eq!((m[0].0.name.as_str(), m[0].0.line, m[0].0.col), ("a", 2, 3));
        assert_eq!((m[0].1.line, m[0].1.col), (2, 8));
        let NodeValue::Array(items) = &m[0].1.value else { panic!("not an array") };
        assert_eq!(items[1].value, NodeValue::Number(-2500.0));
        assert_eq!((items[1].line, items[1].col), (2, 12));
        assert_eq!(items[2].value, NodeValue::Bool(true));
        assert_eq!(items[4].value, NodeValue::Null);
        assert_eq!((m[1].1.as_str(), m[1].1.line, m[1].1.col), (Some("x"), 3, 8));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let n = parse("{\"é€\": \"ü\", \"k\": 1}").unwrap();
        let NodeValue::Object(m) = &n.value else { panic!() };
        assert_eq!(m[1].0.col, 13);
    }

    #[test]
    fn resolves_escapes_and_surrogate_pairs() {
        let n = parse(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(n.as_str(), Some("a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1F600}"));
        assert!(err(r#""\ud83d x""#).contains("high surrogate"));
        assert!(err(r#""\ude00""#).contains("low surrogate"));
        assert!(err(r#""\u12g4""#).contains("4 hex digits"));
        assert_eq!(err(r#"{"a": "\q"}"#), "1:8: invalid escape \"\\q\" in string");
    }

    #[test]
    fn reports_syntax_errors_with_positions() {
        assert_eq!(err("{\"a\": 1 \"b\": 2}"), "1:9: expected ',' or '}' after object member");
        assert_eq!(err("{\"a\": 1,\n}"), "1:8: trailing comma before '}'");
        assert_eq!(err("[1, 2, ]"), "1:6: trailing comma before ']'");
        assert_eq!(err("[1 2]"), "1:4: expected ',' or ']' after array element");
        assert_eq!(err("{\"a\": 1,\n \"a\": 2}"), "2:2: duplicate key \"a\" (first at line 1:2)");
        assert_eq!(err("{a: 1}"), "1:2: expected a key in double quotes");
        assert_eq!(err("{\"a\" 1}"), "1:6: expected ':' after object key");
        assert_eq!(err("{\"a\": 1} x"), "1:10: unexpected text after the end of the JSON document");
        assert_eq!(
            err("{\"a\": [1,\n"),
            "2:1: unexpected end of input: the array opened at 1:7 is not closed"
        );
        assert_eq!(
            err("{\"a\": 1"),
            "1:8: unexpected end of input: the object opened at 1:1 is not closed"
        );
        assert_eq!(err("{\"a\": \"x"), "1:7: unterminated string");
        assert_eq!(
            err("{\"a\": True}"),
            "1:7: unexpected word \"True\" (strings need double quotes; the bare words are true, false and null)"
        );
        assert_eq!(err("  "), "1:3: the file is empty (expected a JSON object)");
        assert_eq!(err("{\n // no\n}"), "2:2: comments are not allowed in JSON");
        assert_eq!(err("{'a': 1}"), "1:2: expected a key in double quotes");
        assert_eq!(err("['a']"), "1:2: strings must use double quotes (\"), not '");
    }

    #[test]
    fn follows_the_number_grammar() {
        assert_eq!(parse("0").unwrap().value, NodeValue::Number(0.0));
        assert_eq!(parse("-0.5E+2").unwrap().value, NodeValue::Number(-50.0));
        assert_eq!(err("01"), "1:1: invalid number: leading zeros are not allowed");
        assert_eq!(err("1."), "1:3: invalid number: expected a digit after '.'");
        assert_eq!(err("1e"), "1:3: invalid number: expected a digit in the exponent");
        assert_eq!(err("-"), "1:1: invalid number: expected a digit after '-'");
        assert_eq!(err("1e999"), "1:1: number out of range");
        assert!(err("5s").contains("values with units are strings"));
    }

    #[test]
    fn rejects_control_characters_and_deep_nesting() {
        assert!(err("\"a\tb\"").contains("control character U+0009"));
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(err(&deep).contains("nesting deeper than 64 levels"));
    }

    #[test]
    fn converts_to_serde_values() {
        let n = parse(r#"{"a": [1, 2.5, "x", null, {"b": true}]}"#).unwrap();
        assert_eq!(n.to_value(), serde_json::json!({"a": [1, 2.5, "x", null, {"b": true}]}));
    }
}
