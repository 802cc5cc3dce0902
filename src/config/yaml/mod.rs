//! The YAML front-end: one YAML 1.2 document (saphyr's event parser) built into the same
//! spanned [`Node`] tree as `json`, so substitution, decoding and every error after parsing
//! are shared.
//!
//! Scalars follow the core schema (`scalar`); positions are 1-based lines and columns in
//! characters, as `json` counts them (the parser's columns are 0-based); a string node says
//! where its characters are (`TextAt`: plain, quoted, literal block, else only the node), so an
//! error inside a template points at the field. Anchors and aliases
//! are expanded, and what they copy is weighed before it is copied: its nodes and its bytes
//! (key and string lengths plus [`NODE_BYTES`] a node). Past [`MAX_COPIED_NODES`] or
//! [`MAX_COPIED_BYTES`] the file is refused at the alias (or anchor) that crosses the limit (a
//! "billion laughs" file, or one long string aliased many times, stops there, long before
//! memory runs out). An alias's own node takes the alias's position; what it copies keeps the
//! positions where its text is written. Refused: a second document, a `%YAML` directive for
//! another version than 1.2, keys that are not scalars (or are aliases, or empty or null
//! plain scalars), YAML 1.1 merge keys (a plain `<<`), duplicate keys (compared as text, as
//! written: `1` and `01` are two keys), tags other than the core ones (`!!int`, or verbatim
//! `!<tag:yaml.org,2002:int>`; the non-specific `!` makes a string), nesting deeper than `json`
//! allows (an alias counts with the depth of what it copies). A syntax error with a `${`
//! before it on its line says to quote the value. `emit` writes YAML back.
//! Not the place for any meaning of the keys: that is `decode`.

pub(crate) mod emit;
mod scalar;

use super::json::{Key, MAX_DEPTH, Node, NodeValue, SyntaxError, TextAt};
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use std::collections::HashMap;

/// How many nodes anchors and aliases may copy in one file, all together. A config that
/// reuses a few channel or match blocks copies hundreds.
pub const MAX_COPIED_NODES: usize = 100_000;

/// How many bytes anchors and aliases may copy in one file, all together: four times the
/// largest config file read.
pub const MAX_COPIED_BYTES: usize = 4 * crate::localfile::CONFIG_MAX_BYTES as usize;

/// What a node weighs besides its key and string text, in [`MAX_COPIED_BYTES`].
pub const NODE_BYTES: usize = 16;

/// What a finished subtree would cost to copy: its nodes, its bytes, and its nesting (the
/// collections on its deepest path; a scalar has none).
#[derive(Clone, Copy, Default)]
struct Weight {
    nodes: usize,
    bytes: usize,
    depth: usize,
}

impl Weight {
    /// One scalar node holding `text` bytes.
    fn scalar(text: usize) -> Weight {
        Weight { nodes: 1, bytes: NODE_BYTES.saturating_add(text), depth: 0 }
    }

    /// An empty collection.
    fn collection() -> Weight {
        Weight { nodes: 1, bytes: NODE_BYTES, depth: 1 }
    }

    /// Adds a member (`key` bytes for a mapping's key) to a collection.
    fn add(&mut self, child: Weight, key: usize) {
        self.nodes = self.nodes.saturating_add(child.nodes);
        self.bytes = self.bytes.saturating_add(child.bytes).saturating_add(key);
        self.depth = self.depth.max(child.depth.saturating_add(1));
    }
}

/// Parses one YAML document into a tree (a leading byte-order mark is skipped).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut b = Builder {
        text,
        parser: Parser::new_from_str(text),
        stack: Vec::new(),
        anchors: HashMap::new(),
        copied: 0,
        copied_bytes: 0,
        root: None,
    };
    b.run()
}

/// A collection being built.
enum Frame {
    Seq {
        at: (u32, u32),
        anchor: usize,
        items: Vec<Node>,
        weight: Weight,
    },
    Map {
        at: (u32, u32),
        anchor: usize,
        members: Vec<(Key, Node)>,
        key: Option<Key>,
        weight: Weight,
    },
}

struct Builder<'a> {
    /// The document's text, for hints in syntax errors.
    text: &'a str,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    stack: Vec<Frame>,
    /// Finished anchored nodes by anchor id, with their weights.
    anchors: HashMap<usize, (Node, Weight)>,
    /// Nodes copied for anchors and aliases so far.
    copied: usize,
    /// Bytes copied for anchors and aliases so far (as [`Weight`] counts them).
    copied_bytes: usize,
    /// The document's node once complete.
    root: Option<Node>,
}

type Result<T, E = SyntaxError> = std::result::Result<T, E>;

/// A parser position (1-based line, 0-based column in characters) as `json` counts: both
/// 1-based.
fn one_based(m: &saphyr_parser::Marker) -> (u32, u32) {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (clamp(m.line()).max(1), clamp(m.col()).saturating_add(1))
}

fn pos(span: &Span) -> (u32, u32) {
    one_based(&span.start)
}

/// Where the characters of a scalar written in `style` over `span` are: the parser puts a
/// quoted scalar at its opening quote, a plain one at its first character, a literal block
/// at its text's first character (the line after `|`).
fn text_at(style: ScalarStyle, span: &Span, text: &str) -> TextAt {
    let one_line = span.start.line() == span.end.line();
    match style {
        ScalarStyle::Plain if one_line => TextAt::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted if one_line => TextAt::AfterQuote,
        // Leading empty lines would put the text's start elsewhere.
        ScalarStyle::Literal if !text.starts_with('\n') => TextAt::Literal,
        _ => TextAt::Node,
    }
}

/// Refuses a `%YAML` directive for another version than 1.2 (the parser reads the directive
/// but does not tell which version it names).
fn version(text: &str) -> Result<()> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with('%') {
            break;
        }
        let mut words = line.split_whitespace();
        if words.next() == Some("%YAML")
            && let Some(v) = words.next()
            && v != "1.2"
        {
            let at = (u32::try_from(i + 1).unwrap_or(u32::MAX), 1);
            return Err(error(
                at,
                format!(
                    "%YAML {v}: only YAML 1.2 is read (1.1 reads yes, no, 012 and dates \
                     otherwise); write %YAML 1.2 or leave the directive out"
                ),
            ));
        }
    }
    Ok(())
}

fn error((line, col): (u32, u32), message: impl Into<String>) -> SyntaxError {
    SyntaxError { line, col, message: message.into() }
}

fn scan_error(e: &ScanError, text: &str) -> SyntaxError {
    let mut message = e.info().to_owned();
    if message.starts_with("while scanning a block scalar") {
        // `warn: > 85` starts a folded block scalar.
        message.push_str(" (a value starting with > or | must be quoted, like warn: \"> 85\")");
    } else {
        // `iface: [${IF}]`: the `{` of `${` opens a flow mapping inside the sequence.
        let m = e.marker();
        let line = text.lines().nth(m.line().saturating_sub(1)).unwrap_or("");
        let before: String = line.chars().take(m.col().saturating_add(1)).collect();
        if before.contains("${") {
            message.push_str(" (quote a value holding ${…} inside [ ] or { }, like [\"${IF}\"])");
        }
    }
    error(one_based(e.marker()), message)
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span)> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => Err(scan_error(&e, self.text)),
            None => Err(error((1, 1), "unexpected end of the YAML stream")),
        }
    }

    fn run(&mut self) -> Result<Node> {
        version(self.text)?;
        let mut documents = 0;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::Nothing => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(error(
                            pos(&span),
                            "a second YAML document starts here (a config is one document)",
                        ));
                    }
                }
                Event::DocumentEnd => {}
                Event::Alias(id) => self.alias(id, &span)?,
                Event::Scalar(text, style, anchor, tag) => {
                    self.scalar(&text, style, anchor, tag.as_deref(), &span)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    self.open(&span, tag.as_deref(), "seq", "a sequence")?;
                    let at = pos(&span);
                    let weight = Weight::collection();
                    self.stack.push(Frame::Seq { at, anchor, items: Vec::new(), weight });
                }
                Event::MappingStart(anchor, tag) => {
                    self.open(&span, tag.as_deref(), "map", "a mapping")?;
                    let at = pos(&span);
                    let members = Vec::new();
                    let weight = Weight::collection();
                    self.stack.push(Frame::Map { at, anchor, members, key: None, weight });
                }
                Event::SequenceEnd | Event::MappingEnd => self.close()?,
            }
        }
        match self.root.take() {
            Some(root) => Ok(root),
            None => Err(error(
                (1, 1),
                "the file is empty (expected a YAML mapping; comments alone are no config)",
            )),
        }
    }

    /// Checks a collection's start: not a key, a core tag, within the depth limit.
    fn open(&self, span: &Span, tag: Option<&Tag>, core: &str, what: &str) -> Result<()> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(error(pos(span), format!("a key must be a scalar, not {what}")));
        }
        if let Some(tag) = tag
            && scalar::core_suffix(tag) != Some(core)
            && !scalar::non_specific(tag)
        {
            return Err(error(
                pos(span),
                format!(
                    "{what} cannot carry the tag {} (the core tags are {})",
                    scalar::tag_text(tag),
                    scalar::CORE_TAGS
                ),
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(pos(span), format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: &Span,
    ) -> Result<()> {
        let (line, col) = pos(span);
        if let Some(Frame::Map { members, key: key @ None, .. }) = self.stack.last_mut() {
            if let Some(tag) =
                tag.filter(|t| scalar::core_suffix(t) != Some("str") && !scalar::non_specific(t))
            {
                return Err(error(
                    (line, col),
                    format!("a key must be a string, and its tag is {}", scalar::tag_text(tag)),
                ));
            }
            if text.is_empty() && style == ScalarStyle::Plain && tag.is_none() {
                return Err(error((line, col), "a key must not be empty (it would be null)"));
            }
            if style == ScalarStyle::Plain && tag.is_none() {
                if scalar::plain(text) == Ok(NodeValue::Null) {
                    return Err(error(
                        (line, col),
                        format!("a key must not be null ({text}; quote it to mean the text)"),
                    ));
                }
                if text == "<<" {
                    return Err(error(
                        (line, col),
                        "YAML merge keys (<<) are not supported; write the keys out",
                    ));
                }
            }
            if let Some((first, _)) = members.iter().find(|(k, _)| k.name == text) {
                return Err(error(
                    (line, col),
                    format!(
                        "duplicate key {:?} (first at line {}:{})",
                        text, first.line, first.col
                    ),
                ));
            }
            *key = Some(Key { name: text.to_owned(), line, col });
            if anchor != 0 {
                let node = Node {
                    value: NodeValue::String(text.to_owned()),
                    line,
                    col,
                    text: text_at(style, span, text),
                };
                let weight = Weight::scalar(text.len());
                self.copy(weight, (line, col))?;
                self.anchors.insert(anchor, (node, weight));
            }
            return Ok(());
        }
        let value = scalar::resolve(text, style, tag).map_err(|m| error((line, col), m))?;
        let weight = Weight::scalar(match &value {
            NodeValue::String(s) => s.len(),
            _ => 0,
        });
        let text = text_at(style, span, text);
        self.finish(Node { value, line, col, text }, anchor, weight)
    }

    fn alias(&mut self, id: usize, span: &Span) -> Result<()> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(error(pos(span), "a key cannot be an alias (write the key out)"));
        }
        let Some(&(_, weight)) = self.anchors.get(&id) else {
            // The parser knows the anchor, but its node is still open: the alias is inside it.
            return Err(error(pos(span), "an alias inside its own anchor (it would never end)"));
        };
        let (line, col) = pos(span);
        // Every open collection is a level above the copy.
        if self.stack.len().saturating_add(weight.depth) > MAX_DEPTH {
            return Err(error(
                (line, col),
                format!(
                    "nesting deeper than {MAX_DEPTH} levels (this alias copies {} levels, \
                     nested {} deep)",
                    weight.depth,
                    self.stack.len()
                ),
            ));
        }
        self.copy(weight, (line, col))?;
        // The copy is not written here: an error inside its text points at the alias.
        let node = Node { line, col, text: TextAt::Node, ..self.anchors[&id].0.clone() };
        self.finish(node, 0, weight)
    }

    /// Counts what a copy of `weight` costs against [`MAX_COPIED_NODES`] and
    /// [`MAX_COPIED_BYTES`], before it is made.
    fn copy(&mut self, weight: Weight, at: (u32, u32)) -> Result<()> {
        self.copied = self.copied.saturating_add(weight.nodes);
        self.copied_bytes = self.copied_bytes.saturating_add(weight.bytes);
        if self.copied > MAX_COPIED_NODES {
            return Err(error(
                at,
                format!(
                    "anchors and aliases copy more than {MAX_COPIED_NODES} nodes here (a \
                     \"billion laughs\" file?); write the repeated parts out or reuse fewer"
                ),
            ));
        }
        if self.copied_bytes > MAX_COPIED_BYTES {
            return Err(error(
                at,
                format!(
                    "anchors and aliases copy more than {} MiB here (a \"billion laughs\" \
                     file?); write the repeated parts out or reuse fewer",
                    MAX_COPIED_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let (node, anchor, weight) = match self.stack.pop() {
            Some(Frame::Seq { at: (line, col), anchor, items, weight }) => (
                Node { value: NodeValue::Array(items), line, col, text: TextAt::Node },
                anchor,
                weight,
            ),
            Some(Frame::Map { at: (line, col), anchor, members, weight, .. }) => (
                Node { value: NodeValue::Object(members), line, col, text: TextAt::Node },
                anchor,
                weight,
            ),
            None => return Err(error((1, 1), "a collection ends that never started")),
        };
        self.finish(node, anchor, weight)
    }

    /// A complete value of `weight`: kept for its anchor, put into its parent.
    fn finish(&mut self, node: Node, anchor: usize, weight: Weight) -> Result<()> {
        if anchor != 0 {
            self.copy(weight, (node.line, node.col))?;
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        match self.stack.last_mut() {
            Some(Frame::Seq { items, weight: w, .. }) => {
                items.push(node);
                w.add(weight, 0);
            }
            Some(Frame::Map { members, key, weight: w, .. }) => {
                let key = key.take().expect("a value follows its key");
                w.add(weight, key.name.len());
                members.push((key, node));
            }
            None => self.root = Some(node),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
