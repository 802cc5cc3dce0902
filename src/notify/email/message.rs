//! The e-mail itself: an RFC 5322 message with `Date`, `Message-ID`, `From`, `To`, `Subject`
//! and `MIME-Version` headers and a `multipart/alternative` body (`text/plain`, then
//! `text/html`), built with `mail-builder`.
//!
//! Every piece of untrusted text (host, rule, series, labels, threshold, description) reaches
//! the subject only through [`escape::one_line`], so no line break (and so no extra header)
//! can be injected, and the HTML part only through [`escape::html`]. The channel's `title`
//! template is the subject (made one line as a whole); its `text` template replaces the
//! description: in the HTML part its literal text is the operator's HTML and its values are
//! escaped. The rule's summary, static labels and runbook (a link in HTML) are fact rows. The message depends only
//! on the event and the addresses: the `Date` is the event's time, the `Message-ID` and the
//! MIME boundary are derived from the notification key, so a retry sends the same bytes.

use crate::alerts::EventKind;
use crate::config::Severity;
use crate::config::channels::Templates;
use crate::event::{AlertEvent, fnv1a64};
use crate::notify::escape;
use mail_send::mail_builder::MessageBuilder;
use mail_send::mail_builder::headers::address::Address;
use mail_send::mail_builder::headers::content_type::ContentType;
use mail_send::mail_builder::headers::message_id::MessageId;
use mail_send::mail_builder::headers::raw::Raw;
use mail_send::mail_builder::mime::MimePart;
use std::fmt::Write as _;

/// The longest subject kept, in characters (the rest is cut with `…`).
const SUBJECT_LIMIT: usize = 200;

/// An address with an optional display name (`Hostwatch <hw@example.com>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// Display name, if any.
    pub name: Option<String>,
    /// The bare address (`hw@example.com`), as used in the SMTP envelope.
    pub addr: String,
}

impl Mailbox {
    /// Parses `addr@host` or `Name <addr@host>`; refuses anything that could break an SMTP
    /// command or a header (spaces, control characters, `<`, `>`, `,` in the address).
    pub fn parse(text: &str) -> Result<Mailbox, String> {
        let text = text.trim();
        let (name, addr) = match text.rsplit_once('<') {
            Some((name, rest)) => {
                let addr = rest
                    .strip_suffix('>')
                    .ok_or_else(|| format!("{text:?}: expected \"Name <addr@host>\""))?;
                let name = escape::one_line(name.trim().trim_matches('"').trim());
                (if name.is_empty() { None } else { Some(name) }, addr.trim())
            }
            None => (None, text),
        };
        let bad = |c: char| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c);
        match addr.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !addr.contains(bad) =>
            {
                Ok(Mailbox { name, addr: addr.to_string() })
            }
            _ => Err(format!("{text:?} is not an e-mail address")),
        }
    }

    fn header(&self) -> Address<'static> {
        Address::new_address(self.name.clone(), self.addr.clone())
    }
}

/// The subject: `[CRITICAL] disk_root firing on web-01: / 96.1% > 95`, on one line.
#[cfg(test)]
pub fn subject(event: &AlertEvent) -> String {
    subject_with(event, &Templates::default())
}

/// The subject, the `title` template's when there is one (the whole rendered text made one
/// line: no line break, so no header, can be injected; `mail-builder` encodes non-ASCII).
pub fn subject_with(event: &AlertEvent, templates: &Templates) -> String {
    let what =
        if event.labels.is_empty() { event.metric.clone() } else { label_values(event, ",") };
    let mut text = match (&event.report, &templates.title) {
        (Some(r), _) => format!("[report] {}: {}", r.title(), r.period_text()),
        (None, Some(t)) => t.render(event, str::to_string),
        (None, None) => format!(
            "[{}] {} {} on {}: {} {} {}",
            event.severity.as_str().to_uppercase(),
            event.rule,
            event.event.as_str(),
            event.host,
            what,
            event.value_text,
            event.threshold
        ),
    };
    // A template says what it wants; hostwatch's own subject adds what its fields do not.
    let own = templates.title.is_none();
    if own && event.by_policy() {
        text.push_str(" (critical by policy)");
    } else if own && event.event == EventKind::Nodata {
        text.push_str(" (no data)");
    } else if own && event.event == EventKind::Flapping {
        text.push_str(" (notifications paused)");
    } else if own && event.event == EventKind::FlapEnd {
        text.push_str(if event.ends_episode() { " (ok)" } else { " (still firing)" });
    }
    if event.test {
        text.push_str(" (test)");
    }
    one_line_subject(&text)
}

/// The Message-ID (without angle brackets) of the notification whose key is `key`: the same
/// key always gives the same ID, and the ID is a valid `dot-atom@domain` whatever the rule or
/// host name contains.
pub fn message_id(key: &str, host: &str) -> String {
    let rule = key.split(':').next().unwrap_or("");
    let reversed: Vec<u8> = key.bytes().rev().collect();
    format!(
        "hostwatch.{}.{:016x}{:016x}@{}",
        atom(rule, "alert", 40),
        fnv1a64(key.as_bytes()),
        fnv1a64(&reversed),
        atom(host, "hostwatch.invalid", 200)
    )
}

/// Letters, digits, `-` and single inner dots; anything else becomes `-`.
fn atom(text: &str, fallback: &str, limit: usize) -> String {
    let mut out = String::new();
    for c in text.chars().take(limit) {
        let keep = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else if c == '.' && !out.is_empty() && !out.ends_with('.') {
            '.'
        } else {
            '-'
        };
        out.push(keep);
    }
    let out = out.trim_end_matches('.');
    if out.is_empty() { fallback.to_string() } else { out.to_string() }
}

/// The whole message as sent (CRLF line ends), without templates.
#[cfg(test)]
pub fn build(event: &AlertEvent, from: &Mailbox, to: &[Mailbox]) -> String {
    build_with(event, from, to, &Templates::default())
}

/// The whole message as sent (CRLF line ends), with the channel's templates.
pub fn build_with(
    event: &AlertEvent,
    from: &Mailbox,
    to: &[Mailbox],
    templates: &Templates,
) -> String {
    let (text, html) = match &event.report {
        Some(r) => (crate::report::render::text(r, "\r\n"), crate::report::render::html(r, "\r\n")),
        None => (text_body(event, templates), html_body(event, templates)),
    };
    // Thread reminders, escalations and the resolution under the episode's first mail.
    let thread =
        (event.seq > 1).then(|| message_id(&format!("{}:1", event.episode_key), &event.host));
    let head = Head {
        key: &event.key,
        host: &event.host,
        ts: event.ts,
        subject: subject_with(event, templates),
    };
    assemble(&head, thread, from, to, text, html)
}

/// What the headers of one message are made of.
struct Head<'a> {
    /// Seeds the Message-ID and the MIME boundary.
    key: &'a str,
    host: &'a str,
    /// The `Date`.
    ts: f64,
    subject: String,
}

/// The message: headers, then a `multipart/alternative` of `text` and `html`, with a boundary
/// derived from the key that occurs in neither; `thread`: the Message-ID it replies to.
fn assemble(
    head: &Head<'_>,
    thread: Option<String>,
    from: &Mailbox,
    to: &[Mailbox],
    text: String,
    html: String,
) -> String {
    let mut salt = 0u64;
    let boundary = loop {
        let seed = format!("{}\n{salt}\n{text}\n{html}", head.key);
        let b = format!("=_hostwatch_{:016x}", fnv1a64(seed.as_bytes()));
        if !text.contains(&b) && !html.contains(&b) {
            break b;
        }
        salt += 1;
    };
    let body = MimePart::new(
        ContentType::new("multipart/alternative").attribute("boundary", boundary),
        vec![MimePart::new("text/plain", text), MimePart::new("text/html", html)],
    );
    let mut builder = MessageBuilder::new()
        .header("Date", Raw::new(crate::timefmt::rfc2822_display(head.ts)))
        .message_id(message_id(head.key, head.host))
        .from(from.header())
        .to(Address::new_list(to.iter().map(Mailbox::header).collect()))
        .subject(head.subject.clone())
        .header("MIME-Version", Raw::new("1.0"))
        .header("Auto-Submitted", Raw::new("auto-generated"));
    if let Some(first) = thread {
        builder = builder.in_reply_to(MessageId::new(first.clone())).references(first);
    }
    let mut out = Vec::new();
    builder.body(body).serialize(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` on one line, cut to [`SUBJECT_LIMIT`] characters with `…`.
fn one_line_subject(text: &str) -> String {
    let text = escape::one_line(text);
    match text.char_indices().nth(SUBJECT_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The subject of a grouped message: `[CRITICAL] 10 notifications on web-01: 7 firing, 3
/// resolved` (`[RESOLVED]` when every one is a resolution), on one line.
pub fn group_subject(events: &[AlertEvent]) -> String {
    let tag = match crate::notify::group::worst_open(events) {
        Some(s) => s.as_str().to_uppercase(),
        None => "RESOLVED".to_string(),
    };
    one_line_subject(&format!("[{tag}] {}", crate::notify::group::headline(events)))
}

/// One message for several notifications (`group_wait`): a line each in the text part, a
/// table row each in the HTML part. Its Message-ID comes from every key it carries, so a
/// retry of the same group sends the same bytes.
pub fn build_group(events: &[AlertEvent], from: &Mailbox, to: &[Mailbox]) -> String {
    let Some(first) = events.first() else { return String::new() };
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let group_key = format!("group:{}", keys.join(","));
    let headline = crate::notify::group::headline(events);
    let mut text = escape::one_line(&headline);
    text.push_str("\r\n\r\n");
    for e in events {
        let _ = write!(
            text,
            "- {}\r\n  since {}, key {}\r\n",
            escape::one_line(&crate::notify::group::line(e)),
            crate::timefmt::human(e.since),
            escape::one_line(&e.key)
        );
        if let Some(d) = e.description.as_deref().filter(|d| !d.trim().is_empty()) {
            let _ = write!(text, "  {}\r\n", escape::one_line(d));
        }
    }
    text.push_str("\r\n-- \r\nhostwatch\r\n");
    let mut html = String::from("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\">");
    let _ = write!(html, "<title>{}</title></head>\r\n", escape::html(&group_subject(events)));
    html.push_str("<body style=\"font-family:sans-serif\">\r\n");
    let _ = write!(
        html,
        "<h2>{}</h2>\r\n<table cellpadding=\"4\" border=\"1\" style=\"border-collapse:collapse\">\r\n",
        escape::html(&headline)
    );
    html.push_str("<tr><th>Event</th><th>Rule</th><th>Series</th><th>Value</th><th>Threshold</th><th>Since</th><th>Details</th><th>Key</th></tr>\r\n");
    for e in events {
        let what = match e.event {
            EventKind::Resolved => "RESOLVED".to_string(),
            EventKind::FlapEnd if e.ends_episode() => "FLAPPING OVER, OK".to_string(),
            kind => format!("{} {}", e.severity.as_str().to_uppercase(), kind.as_str()),
        };
        let cells = [
            what,
            e.rule.clone(),
            e.series.clone(),
            e.value_text.clone(),
            e.threshold.clone(),
            crate::timefmt::human(e.since),
            e.description.clone().unwrap_or_default(),
            e.key.clone(),
        ];
        let _ = write!(html, "<tr style=\"color:{}\">", colour(e));
        for cell in cells {
            let _ = write!(html, "<td>{}</td>", escape::html(&escape::one_line(&cell)));
        }
        html.push_str("</tr>\r\n");
    }
    html.push_str(
        "</table>\r\n<p style=\"color:#777;font-size:small\">hostwatch</p>\r\n</body></html>\r\n",
    );
    let ts = events.iter().map(|e| e.ts).fold(first.ts, f64::max);
    let head = Head { key: &group_key, host: &first.host, ts, subject: group_subject(events) };
    assemble(&head, None, from, to, text, html)
}

fn label_values(event: &AlertEvent, sep: &str) -> String {
    event.labels.values().map(String::as_str).collect::<Vec<_>>().join(sep)
}

/// The series' labels, then the rule's static ones: `mount=/, team=db`.
fn labels(event: &AlertEvent) -> String {
    let all = event.labels.iter().chain(&event.context.rule_labels);
    all.map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn headline(event: &AlertEvent) -> String {
    format!(
        "{} {}: {} on {}",
        event.severity.as_str().to_uppercase(),
        event.event.as_str(),
        event.rule,
        event.host
    )
}

/// (label, value) rows shared by both parts; values are raw (untrusted) text.
fn facts(event: &AlertEvent) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    if let Some(summary) = &event.context.summary {
        rows.push(("Summary", summary.clone()));
    }
    rows.extend([
        ("Host", event.host.clone()),
        ("Rule", event.rule.clone()),
        ("Series", event.series.clone()),
        ("Value", event.value_text.clone()),
        (event.threshold_label(), event.threshold.clone()),
    ]);
    if !event.labels.is_empty() || !event.context.rule_labels.is_empty() {
        rows.push(("Labels", labels(event)));
    }
    rows.push(("Since", crate::timefmt::human(event.since)));
    rows.push(("At", crate::timefmt::human(event.ts)));
    if let Some(reason) = &event.context.reason {
        rows.push(("Reason", reason.clone()));
    }
    if let Some(episode) = event.episode_text() {
        rows.push(("Episode", episode));
    }
    if let Some(seen) = event.context.last_seen {
        rows.push(("Last seen", crate::timefmt::human(seen)));
    }
    if let Some(url) = &event.context.runbook_url {
        rows.push((RUNBOOK, url.clone()));
    }
    rows.push(("Notification", format!("{} #{}", event.event.as_str(), event.seq)));
    rows.push(("Key", event.key.clone()));
    rows
}

/// The fact row whose value is a link in the HTML part.
const RUNBOOK: &str = "Runbook";

fn text_body(event: &AlertEvent, templates: &Templates) -> String {
    let mut out = escape::one_line(&headline(event));
    out.push_str("\r\n\r\n");
    for (label, value) in facts(event) {
        let _ = write!(out, "{:<19}{}\r\n", format!("{label}:"), escape::one_line(&value));
    }
    match &templates.text {
        // Plain text: the template's lines as written, values on one line each.
        Some(t) => {
            out.push_str("\r\n");
            for line in t.render(event, escape::one_line).lines() {
                let _ = write!(out, "{}\r\n", escape::one_line(line).trim_end());
            }
        }
        None => {
            if let Some(d) = &event.description {
                let _ = write!(out, "\r\n{}\r\n", escape::one_line(d));
            }
        }
    }
    out.push_str("\r\n-- \r\nhostwatch\r\n");
    out
}

/// A value in the HTML part: escaped, on one line.
fn html_line(text: &str) -> String {
    escape::html(&escape::one_line(text))
}

fn colour(event: &AlertEvent) -> &'static str {
    match (event.event, event.severity) {
        _ if event.ends_episode() => "#2e7d32",
        (_, Severity::Critical) => "#d00000",
        (_, Severity::Warning) => "#b26a00",
    }
}

fn html_body(event: &AlertEvent, templates: &Templates) -> String {
    let mut out = String::from("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\">");
    let _ =
        write!(out, "<title>{}</title></head>\r\n", escape::html(&subject_with(event, templates)));
    out.push_str("<body style=\"font-family:sans-serif\">\r\n");
    let _ = write!(
        out,
        "<h2 style=\"color:{}\">{}</h2>\r\n<table cellpadding=\"4\">\r\n",
        colour(event),
        escape::html(&headline(event))
    );
    for (label, value) in facts(event) {
        let value = escape::html(&escape::one_line(&value));
        let value = if label == RUNBOOK {
            // `check` allows only an http(s) URL without quotes or angle brackets.
            format!("<a href=\"{value}\">{value}</a>")
        } else {
            value
        };
        let _ = write!(out, "<tr><th align=\"left\">{label}</th><td>{value}</td></tr>\r\n");
    }
    out.push_str("</table>\r\n");
    match &templates.text {
        // The template's literal text is HTML as the operator wrote it; values are escaped.
        Some(t) => {
            let html = t.render(event, html_line).replace("\r\n", "\n").replace('\n', "\r\n");
            let _ = write!(out, "<div>{html}</div>\r\n");
        }
        None => {
            if let Some(d) = &event.description {
                let _ = write!(out, "<p>{}</p>\r\n", escape::html(&escape::one_line(d)));
            }
        }
    }
    out.push_str("<p style=\"color:#777;font-size:small\">hostwatch</p>\r\n</body></html>\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn event() -> AlertEvent {
        AlertEvent {
            ts: 1_796_083_200.0,
            host: "web-01".into(),
            rule: "disk_root".into(),
            series: "disk.used_percent{mount=/}".into(),
            metric: "disk.used_percent".into(),
            labels: BTreeMap::from([("mount".to_string(), "/".to_string())]),
            severity: Severity::Critical,
            event: EventKind::Firing,
            value: Some(96.1),
            value_text: "96.1%".into(),
            threshold: "> 95".into(),
            since: 1_796_083_100.0,
            seq: 1,
            key: "disk_root:00000000000000aa:1796083100000:1".into(),
            episode_key: "disk_root:00000000000000aa:1796083100000".into(),
            description: Some("Root file system nearly full".into()),
            test: false,
            report: None,
            context: Default::default(),
        }
    }

    fn mailboxes() -> (Mailbox, Vec<Mailbox>) {
        let from = Mailbox::parse("Hostwatch <hw@example.com>").unwrap();
        let to = vec![
            Mailbox::parse("oncall@example.com").unwrap(),
            Mailbox::parse("ops@example.com").unwrap(),
        ];
        (from, to)
    }

    /// Splits a message into its header block (unfolded lines) and the rest.
    fn headers(message: &str) -> (Vec<String>, String) {
        let (head, body) = message.split_once("\r\n\r\n").expect("blank line after headers");
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                lines.last_mut().expect("continuation").push_str(line);
            } else {
                lines.push(line.to_string());
            }
        }
        (lines, body.to_string())
    }

    /// Decodes quoted-printable (`=XX`, soft line breaks; with `q`, `_` is a space).
    fn unqp(text: &str, q: bool) -> String {
        let (b, mut out, mut i) = (text.as_bytes(), Vec::new(), 0);
        while i < b.len() {
            if b[i] == b'=' && b[i..].starts_with(b"=\r\n") {
                i += 3;
            } else if b[i] == b'=' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(if q && b[i] == b'_' { b' ' } else { b[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// The MIME parts of a multipart body: (content type, decoded content), in order.
    fn parts(message: &str) -> Vec<(String, String)> {
        let marker = "boundary=\"";
        let start = message.find(marker).unwrap() + marker.len();
        let boundary = &message[start..start + message[start..].find('"').unwrap()];
        let delimiter = format!("\r\n--{boundary}");
        let mut out = Vec::new();
        for chunk in message.split(&delimiter).skip(1) {
            let Some((head, content)) = chunk.split_once("\r\n\r\n") else { continue };
            let ct = head.lines().find_map(|l| l.strip_prefix("Content-Type: ")).unwrap();
            let qp = head.contains("quoted-printable");
            out.push((ct.to_string(), if qp { unqp(content, false) } else { content.into() }));
        }
        out
    }

    /// The subject of a message, with RFC 2047 Q-encoded words decoded.
    fn decoded_subject(lines: &[String]) -> String {
        let raw = lines.iter().find(|l| l.starts_with("Subject: ")).unwrap();
        let raw = &raw["Subject: ".len()..];
        if !raw.starts_with("=?") {
            return raw.to_string();
        }
        raw.split_whitespace()
            .map(|w| {
                let inner = w.strip_prefix("=?").unwrap().strip_suffix("?=").unwrap();
                let (_, text) = inner.split_once("?Q?").expect("Q encoding");
                unqp(text, true)
            })
            .collect()
    }

    #[test]
    fn a_report_is_a_text_and_html_message_with_a_report_subject() {
        let mut r = crate::report::render::tests::sample();
        r.host = "x".repeat(300);
        let e = crate::report::to_event(r);
        assert!(subject(&e).starts_with("[report] hostwatch report daily for xxx"));
        assert!(subject(&e).chars().count() <= SUBJECT_LIMIT + 1, "cut like any subject");
        let (from, to) = mailboxes();
        let m = build(&e, &from, &to);
        assert!(m.contains("Content-Type: text/plain") && m.contains("Content-Type: text/html"));
        assert!(m.contains("/&lt;script&gt;"), "the HTML part escapes labels");
        assert!(!m.replace("\r\n", "").contains('\n'), "CRLF line ends only");
    }

    #[test]
    fn subject_is_one_line_with_severity_event_and_host() {
        assert_eq!(subject(&event()), "[CRITICAL] disk_root firing on web-01: / 96.1% > 95");
        let mut e = event();
        e.labels.clear();
        e.test = true;
        assert_eq!(
            subject(&e),
            "[CRITICAL] disk_root firing on web-01: disk.used_percent 96.1% > 95 (test)"
        );
        e.rule = "x".repeat(500);
        assert_eq!(subject(&e).chars().count(), SUBJECT_LIMIT + 1);
    }

    #[test]
    fn message_has_the_expected_headers_and_parts_in_order() {
        let (from, to) = mailboxes();
        let m = build(&event(), &from, &to);
        let (lines, body) = headers(&m);
        let names: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
        for h in ["Date", "Message-ID", "From", "To", "Subject", "MIME-Version", "Content-Type"] {
            assert_eq!(names.iter().filter(|n| **n == h).count(), 1, "{h} once in {m}");
        }
        assert!(lines.contains(&"Date: Tue, 01 Dec 2026 00:00:00 +0000".to_string()), "{m}");
        assert!(lines.contains(&"MIME-Version: 1.0".to_string()));
        assert!(lines.iter().any(|l| l.starts_with("From: ") && l.contains("<hw@example.com>")));
        let to_line = lines.iter().find(|l| l.starts_with("To: ")).unwrap();
        assert!(to_line.contains("oncall@example.com") && to_line.contains("ops@example.com"));
        let ct = lines.iter().find(|l| l.starts_with("Content-Type: ")).unwrap();
        assert!(ct.contains("multipart/alternative"), "{ct}");
        assert_eq!(decoded_subject(&lines), "[CRITICAL] disk_root firing on web-01: / 96.1% > 95");
        let parts = parts(&m);
        assert_eq!(parts.len(), 2, "{body}");
        assert!(parts[0].0.starts_with("text/plain"), "text/plain comes first");
        assert!(parts[1].0.starts_with("text/html"));
        assert!(
            parts[0].1.contains("Series:            disk.used_percent{mount=/}"),
            "{}",
            parts[0].1
        );
        assert!(parts[1].1.contains("<td>96.1%</td>"), "{}", parts[1].1);
    }

    #[test]
    fn the_message_is_stable_per_key_and_unique_across_keys() {
        let (from, to) = mailboxes();
        let a = build(&event(), &from, &to);
        assert_eq!(a, build(&event(), &from, &to), "retries send the same bytes");
        let mut next = event();
        next.seq = 2;
        next.event = EventKind::Reminder;
        next.key = format!("{}:2", next.episode_key);
        let b = build(&next, &from, &to);
        let id =
            |m: &str| headers(m).0.into_iter().find(|l| l.starts_with("Message-ID: ")).unwrap();
        assert_ne!(id(&a), id(&b));
        assert!(id(&a).starts_with("Message-ID: <hostwatch.disk_root."), "{}", id(&a));
        assert!(id(&a).ends_with("@web-01>"));
        let first = id(&a).trim_start_matches("Message-ID: ").to_string();
        assert!(headers(&b).0.contains(&format!("In-Reply-To: {first}")), "{b}");
        assert!(!a.contains("In-Reply-To"));
    }

    #[test]
    fn templates_set_the_subject_and_text_with_values_escaped_per_part() {
        use crate::notify::template::Template;
        let templates = Templates {
            title: Some(Template::parse("{{rule}} on {{labels.mount}}").unwrap()),
            text: Some(
                Template::parse(
                    "<b>Team</b> {{labels.team}}\n<a href=\"{{runbook_url}}\">runbook</a>",
                )
                .unwrap(),
            ),
        };
        let mut e = event();
        e.labels.insert("mount".into(), "/x\r\nBcc: evil@example.com".into());
        e.context.rule_labels.insert("team".into(), "</td><script>x</script>".into());
        e.context.runbook_url = Some("https://wiki/a?b=1&c=2".into());
        e.context.summary = Some("Nearly full".into());
        assert_eq!(subject_with(&e, &templates), "disk_root on /x  Bcc: evil@example.com");
        let (from, to) = mailboxes();
        let m = build_with(&e, &from, &to, &templates);
        let (lines, _) = headers(&m);
        assert!(!lines.iter().any(|l| l.starts_with("Bcc")), "{lines:?}");
        let parts = parts(&m);
        let (text, html) = (&parts[0].1, &parts[1].1);
        assert!(text.contains("\r\n<b>Team</b> </td><script>x</script>\r\n<a href=\"https://wiki/a?b=1&c=2\">runbook</a>\r\n"), "{text}");
        assert!(text.contains("Summary:           Nearly full\r\n"), "{text}");
        assert!(
            text.contains("Labels:            mount=/x  Bcc: evil@example.com, team=</td>"),
            "{text}"
        );
        assert!(html.contains("<div><b>Team</b> &lt;/td&gt;&lt;script&gt;x&lt;/script&gt;\r\n<a href=\"https://wiki/a?b=1&amp;c=2\">runbook</a></div>"), "{html}");
        assert!(
            html.contains(
                "<td><a href=\"https://wiki/a?b=1&amp;c=2\">https://wiki/a?b=1&amp;c=2</a></td>"
            ),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn hostile_labels_cannot_inject_headers_or_markup() {
        let mut e = event();
        e.host = "web-01\r\nBcc: evil@x".into();
        e.rule = "disk<script>alert(1)</script>\nBcc: evil@x".into();
        e.labels = BTreeMap::from([(
            "mount".to_string(),
            "/\r\nBcc: evil@x\r\n\r\n<script>alert('x')</script>".to_string(),
        )]);
        e.series = "disk.used_percent{mount=<img src=x onerror=alert(1)>}".into();
        e.description = Some("line1\nTo: evil@x <b>bold</b>".into());
        e.key = format!("{}:00000000000000aa:1:1", e.rule);
        let (from, to) = mailboxes();
        let m = build(&e, &from, &to);
        let (lines, body) = headers(&m);
        assert!(!lines.iter().any(|l| l.to_ascii_lowercase().starts_with("bcc")), "{m}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("To: ")).count(), 1);
        // Exactly the headers hostwatch writes, then the body.
        let names: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
        let expected = ["Date", "Message-ID", "From", "To", "Subject", "MIME-Version"];
        assert_eq!(names[..6], expected, "{m}");
        assert_eq!(names[6..], ["Auto-Submitted", "Content-Type"], "{m}");
        assert!(body.starts_with("--=_hostwatch_"), "{m}");
        let subject = decoded_subject(&lines);
        assert!(!subject.contains(['\r', '\n']), "{subject:?}");
        assert!(subject.contains("Bcc: evil@x"), "kept as text inside the subject: {subject}");
        let id = lines.iter().find(|l| l.starts_with("Message-ID: ")).unwrap();
        let inner =
            id["Message-ID: ".len()..].strip_prefix('<').unwrap().strip_suffix('>').unwrap();
        let ok = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
        assert!(inner.chars().all(ok) && inner.matches('@').count() == 1, "{id}");
        let parts = parts(&m);
        let (plain, html) = (&parts[0].1, &parts[1].1);
        assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
        assert!(!plain.contains("\r\nBcc:") && !plain.contains("\nTo: evil"), "{plain}");
    }

    #[test]
    fn mailboxes_parse_and_refuse_what_could_break_smtp() {
        let m = Mailbox::parse("\"Host Watch\" <hw@example.com>").unwrap();
        assert_eq!(m, Mailbox { name: Some("Host Watch".into()), addr: "hw@example.com".into() });
        assert_eq!(Mailbox::parse("a@b").unwrap().name, None);
        for bad in ["a b@c", "a@b>\r\nRCPT TO:<x@y", "<a@b", "nobody", "@b", "a@", "x <a@b"] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn atoms_keep_ids_well_formed() {
        assert_eq!(atom("web-01.example.com", "f", 99), "web-01.example.com");
        assert_eq!(atom("..a b..c.", "f", 99), "-.a-b.-c");
        assert_eq!(atom("", "fallback", 99), "fallback");
        assert_eq!(message_id("k:1", "h"), message_id("k:1", "h"));
        assert_ne!(message_id("k:1", "h"), message_id("k:2", "h"));
    }

    #[test]
    fn an_escalation_by_time_says_so_and_shows_the_warning_threshold_that_held() {
        let (from, to) = mailboxes();
        let mut e = event();
        e.event = EventKind::Escalated;
        e.value_text = "59.4%".into();
        e.threshold = "> 50".into();
        e.context.escalated_by = Some(crate::alerts::EscalatedBy::Time);
        e.context.reason = Some("warning for 2m, escalated to critical by policy".into());
        assert!(subject(&e).ends_with("/ 59.4% > 50 (critical by policy)"), "{}", subject(&e));
        let m = build(&e, &from, &to);
        let text = text_body(&e, &Templates::default());
        assert!(text.contains("Warning threshold: > 50"), "{text}");
        assert!(
            text.contains("Reason:            warning for 2m, escalated to critical by policy"),
            "{text}"
        );
        assert!(m.contains("Warning threshold"), "{m}");
        // A resolution: the clear condition, the episode's duration and peak.
        let mut r = event();
        r.event = EventKind::Resolved;
        r.threshold = "<= 80".into();
        r.context.episode_duration_s = Some(725.0);
        r.context.peak_text = Some("96.1%".into());
        let text = text_body(&r, &Templates::default());
        assert!(text.contains("Clear condition:   <= 80"), "{text}");
        assert!(text.contains("Episode:           lasted 12m5s, peak 96.1%"), "{text}");
    }

    #[test]
    fn flapping_and_flap_end_say_so_in_subject_and_bodies() {
        let (from, to) = mailboxes();
        let [flapping, ok, firing] = crate::testutil::flap_events(event());
        let m = build(&flapping, &from, &to);
        assert!(m.contains("CRITICAL flapping: disk_root on web-01"), "{m}");
        assert_eq!(
            subject(&flapping),
            "[CRITICAL] disk_root flapping on web-01: / 96.1% > 95 (notifications paused)"
        );
        let text = text_body(&flapping, &Templates::default());
        assert!(
            text.contains("Reason:            flapping: 62.5% of the last 21 evaluations"),
            "{text}"
        );
        let m = build(&ok, &from, &to);
        assert_eq!(subject(&ok), "[CRITICAL] disk_root flap_end on web-01: / 96.1% > 95 (ok)");
        assert!(m.contains("#2e7d32"), "green, as a resolution: {m}");
        let m = build(&firing, &from, &to);
        assert!(subject(&firing).ends_with("flap_end on web-01: / 96.1% > 95 (still firing)"));
        let text = text_body(&firing, &Templates::default());
        assert!(text.contains("changed state); still firing\r\n"), "{text}");
        assert!(m.contains("#d00000"), "{m}");
    }
}
