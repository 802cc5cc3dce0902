//! Message templates of a channel's `title` and `text`: a small logic-less syntax compiled
//! once at config load and rendered against an [`AlertEvent`].
//!
//! `{{field}}` inserts a field, `{{labels.KEY}}` a series or rule label, `{{field|text}}`
//! the field or, when it is missing or empty, `text`. Everything outside `{{ }}` is the
//! operator's literal text, kept as written: it may carry the channel's markup. Field values
//! are untrusted (label values come from the host) and go through the channel's escape
//! function as they are rendered, so hostile text never reaches the wire as markup; the
//! literal text and the defaults never do.
//!
//! Not the place for choosing where a rendered template goes in a message (each channel
//! does) nor for escaping itself ([`super::escape`]).

use crate::event::AlertEvent;
use std::borrow::Cow;

/// The fields a template may name (besides `labels.KEY`), for errors and the README.
pub const FIELDS: &[&str] = &[
    "rule",
    "host",
    "series",
    "metric",
    "severity",
    "event",
    "value",
    "threshold",
    "since",
    "summary",
    "description",
    "runbook_url",
];

/// A compiled template; `Display` writes its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Literal text, as the operator wrote it.
    Text(String),
    /// A field, and what stands in for it when it is missing.
    Field { field: Field, default: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    Rule,
    Host,
    Series,
    Metric,
    Severity,
    Event,
    Value,
    Threshold,
    Since,
    Summary,
    Description,
    RunbookUrl,
    Label(String),
}

/// Why a template does not compile, and where (a character offset into its text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// 0-based offset in characters of the problem in the template's text.
    pub offset: usize,
    /// What is wrong, for the operator.
    pub message: String,
}

impl Template {
    /// Compiles `source`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = source;
        let mut offset = 0; // characters consumed before `rest`
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let open_at = offset + rest[..open].chars().count();
            let inner_start = open + 2;
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(TemplateError {
                    offset: open_at,
                    message: "unterminated \"{{\" (a field is written {{name}})".to_string(),
                });
            };
            let inner = &rest[inner_start..inner_start + close];
            segments.push(field_segment(inner, open_at + 2)?);
            let consumed = inner_start + close + 2;
            offset += rest[..consumed].chars().count();
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Template { source: source.to_string(), segments })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders against `event`: literal text and defaults as written, field values through
    /// `escape`.
    pub fn render(&self, event: &AlertEvent, escape: fn(&str) -> String) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field { field, default } => match (value(field, event), default) {
                    (Some(v), _) => out.push_str(&escape(&v)),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => {}
                },
            }
        }
        out
    }

    /// [`Template::render`] cut to at most `limit` units as `len` counts them, with an
    /// ellipsis marking the cut: on a character boundary, never inside an escaped character
    /// (values are escaped one character at a time when cutting).
    pub fn render_fit(
        &self,
        event: &AlertEvent,
        escape: fn(&str) -> String,
        limit: usize,
        len: fn(&str) -> usize,
    ) -> String {
        let full = self.render(event, escape);
        if len(&full) <= limit {
            return full;
        }
        let budget = limit.saturating_sub(1);
        let mut out = String::new();
        let mut used = 0;
        let mut buf = [0u8; 4];
        let mut push = |piece: &str, out: &mut String| {
            let n = len(piece);
            if used + n > budget {
                return false;
            }
            out.push_str(piece);
            used += n;
            true
        };
        'segments: for segment in &self.segments {
            let (text, escaped): (Cow<'_, str>, bool) = match segment {
                Segment::Text(t) => (Cow::Borrowed(t.as_str()), false),
                Segment::Field { field, default } => match (value(field, event), default) {
                    (Some(v), _) => (v, true),
                    (None, Some(d)) => (Cow::Borrowed(d.as_str()), false),
                    (None, None) => continue,
                },
            };
            for c in text.chars() {
                let raw = c.encode_utf8(&mut buf);
                let piece = if escaped { escape(raw) } else { raw.to_string() };
                if !push(&piece, &mut out) {
                    break 'segments;
                }
            }
        }
        out.push('\u{2026}');
        out
    }
}

impl crate::config::channels::Templates {
    /// `title` and `text` rendered without escaping, for structured formats (JSON, the
    /// environment) where no value can become markup.
    pub fn plain(&self, event: &AlertEvent) -> [(&'static str, Option<String>); 2] {
        let render = |t: &Option<Template>| t.as_ref().map(|t| t.render(event, str::to_string));
        [("title", render(&self.title)), ("text", render(&self.text))]
    }

    /// The event's JSON (the webhook body, an exec hook's stdin) with `title` and `text`
    /// added when the channel has those templates.
    pub fn event_json(&self, event: &AlertEvent) -> serde_json::Value {
        let mut v = serde_json::to_value(event).unwrap_or_default();
        if let serde_json::Value::Object(m) = &mut v {
            for (key, text) in self.plain(event) {
                if let Some(text) = text {
                    m.insert(key.to_string(), text.into());
                }
            }
        }
        v
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// The segment of `{{inner}}`, whose text starts at character `at`.
fn field_segment(inner: &str, at: usize) -> Result<Segment, TemplateError> {
    let (name, default) = match inner.split_once('|') {
        Some((name, default)) => (name, Some(default.trim().to_string())),
        None => (inner, None),
    };
    let lead = name.chars().take_while(|c| c.is_whitespace()).count();
    let name = name.trim();
    let at = at + lead;
    let err = |message: String| Err(TemplateError { offset: at, message });
    if name.is_empty() {
        return err("empty field (write {{rule}}, {{labels.mount}}, ...)".to_string());
    }
    let field = match name {
        "rule" => Field::Rule,
        "host" => Field::Host,
        "series" => Field::Series,
        "metric" => Field::Metric,
        "severity" => Field::Severity,
        "event" => Field::Event,
        "value" => Field::Value,
        "threshold" => Field::Threshold,
        "since" => Field::Since,
        "summary" => Field::Summary,
        "description" => Field::Description,
        "runbook_url" => Field::RunbookUrl,
        _ => match name.strip_prefix("labels.") {
            Some(key) if crate::config::valid_label_name(key) => Field::Label(key.to_string()),
            Some(key) => {
                return err(format!(
                    "invalid label name {key:?} in {{{{{name}}}}} (a label name is letters, \
                     digits and '_', not starting with a digit)"
                ));
            }
            None => {
                let mut known: Vec<&str> = FIELDS.to_vec();
                known.push("labels.KEY");
                let near = crate::config::suggest(name, known.iter().copied());
                let message = match near {
                    Some(s) => format!("unknown field {name:?} (did you mean {s:?}?)"),
                    None => {
                        format!("unknown field {name:?} (expected one of {})", known.join(", "))
                    }
                };
                return err(message);
            }
        },
    };
    Ok(Segment::Field { field, default })
}

/// The raw (unescaped) value of `field`; `None` when the event has none (or it is empty).
fn value<'a>(field: &Field, event: &'a AlertEvent) -> Option<Cow<'a, str>> {
    let text: Cow<'a, str> = match field {
        Field::Rule => Cow::Borrowed(&event.rule),
        Field::Host => Cow::Borrowed(&event.host),
        Field::Series => Cow::Borrowed(&event.series),
        Field::Metric => Cow::Borrowed(&event.metric),
        Field::Severity => Cow::Borrowed(event.severity.as_str()),
        Field::Event => Cow::Borrowed(event.event.as_str()),
        Field::Value => {
            event.value?;
            Cow::Borrowed(&event.value_text)
        }
        Field::Threshold => Cow::Borrowed(&event.threshold),
        Field::Since => Cow::Owned(crate::timefmt::human(event.since)),
        Field::Summary => Cow::Borrowed(event.context.summary.as_deref()?),
        Field::Description => Cow::Borrowed(event.description.as_deref()?),
        Field::RunbookUrl => Cow::Borrowed(event.context.runbook_url.as_deref()?),
        Field::Label(key) => Cow::Borrowed(event.label(key)?),
    };
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn event() -> AlertEvent {
        let mut e = AlertEvent::test_event("web-01", Severity::Critical, 1_700_000_000.0);
        e.rule = "disk_root".into();
        e.labels.insert("mount".into(), "/data".into());
        e.context.rule_labels.insert("team".into(), "db".into());
        e.context.summary = Some("Disk almost full".into());
        e
    }

    fn upper(s: &str) -> String {
        s.to_uppercase()
    }

    fn same(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn fields_labels_and_defaults_render() {
        let t = Template::parse(
            "[{{severity}}] {{rule}} on {{ host }}: {{labels.mount}} {{value}} ({{threshold}}) \
             team {{labels.team}} {{runbook_url|no runbook}} {{labels.nope|-}}{{description}}",
        )
        .unwrap();
        let mut e = event();
        e.description = None;
        assert_eq!(
            t.render(&e, same),
            "[critical] disk_root on web-01: /data 99.9% (> 95) team db no runbook -"
        );
        e.context.runbook_url = Some("https://wiki/x".into());
        assert!(t.render(&e, same).contains(" https://wiki/x -"));
        e.value = None;
        let v = Template::parse("{{value|n/a}}|{{value}}|{{summary}}").unwrap();
        assert_eq!(v.render(&e, same), "n/a||Disk almost full");
        assert_eq!(Template::parse("{{since}}").unwrap().render(&e, same), "2023-11-14T22:13:20Z");
        assert_eq!(t.source(), t.to_string());
    }

    #[test]
    fn only_values_are_escaped() {
        let t = Template::parse("*{{rule}}* {{labels.x|<b>}} </{{host}}>").unwrap();
        assert_eq!(t.render(&event(), upper), "*DISK_ROOT* <b> </WEB-01>");
    }

    #[test]
    fn plain_text_without_fields_is_kept() {
        for text in ["", "no fields", "one { brace } and }} alone"] {
            assert_eq!(Template::parse(text).unwrap().render(&event(), upper), text);
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = Template::parse("ab {{rul}}").unwrap_err();
        assert_eq!(e.offset, 5);
        assert_eq!(e.message, "unknown field \"rul\" (did you mean \"rule\"?)");
        let e = Template::parse("é {{ runbook }}").unwrap_err();
        assert_eq!((e.offset, e.message.contains("\"runbook_url\"")), (5, true));
        let e = Template::parse("x {{rule}} {{host").unwrap_err();
        assert_eq!(e.offset, 11);
        assert!(e.message.starts_with("unterminated \"{{\""), "{}", e.message);
        let e = Template::parse("{{labels.1x}}").unwrap_err();
        assert!(e.message.starts_with("invalid label name \"1x\""), "{}", e.message);
        let e = Template::parse("{{}}").unwrap_err();
        assert!(e.message.starts_with("empty field"), "{}", e.message);
        let e = Template::parse("{{zzzzzz}}").unwrap_err();
        assert!(e.message.contains("expected one of rule, host"), "{}", e.message);
    }

    #[test]
    fn a_cut_never_splits_an_escaped_character() {
        fn amp(s: &str) -> String {
            s.replace('&', "&amp;")
        }
        let mut e = event();
        e.rule = "&&&&&".into();
        let t = Template::parse("ab{{rule}}").unwrap();
        assert_eq!(t.render_fit(&e, amp, 100, str::len), "ab&amp;&amp;&amp;&amp;&amp;");
        assert_eq!(t.render_fit(&e, amp, 10, str::len), "ab&amp;\u{2026}");
        assert_eq!(t.render_fit(&e, amp, 7, str::len), "ab\u{2026}");
    }
}
