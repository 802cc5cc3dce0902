//! Escaping of untrusted text (mount points, interface names, host and rule names) for each
//! wire format, so it can never mention, link, format or inject.

#[cfg(feature = "slack")]
/// Slack mrkdwn: `&`, `<`, `>` become entities, which stops `<!channel>`, `<@U123>` and
/// `<https://x|forged link>` from taking effect.
pub fn slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(feature = "teams")]
/// Markdown (Adaptive Card TextBlock, MessageCard): formatting and link characters are
/// backslash-escaped, `<`/`>` become entities, line breaks become spaces.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '`' | '#' | '~' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// HTML text and attribute values (e-mail, and `hostwatch report --format html`).
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(any(feature = "slack", feature = "teams"))]
/// `escape(text)` cut to at most `limit` units as `len` counts them: cut on a character
/// boundary and never inside an escape sequence (each character is escaped on its own), with
/// an ellipsis marking the cut.
pub fn fit(text: &str, limit: usize, escape: fn(&str) -> String, len: fn(&str) -> usize) -> String {
    let full = escape(text);
    if len(&full) <= limit {
        return full;
    }
    let budget = limit.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut buf));
        let n = len(&piece);
        if used + n > budget {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    out.push('\u{2026}');
    out
}

#[cfg(feature = "teams")]
/// Length in characters (Unicode scalar values).
pub fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Standard base64 with padding (HTTP basic auth, and scrubbing SMTP AUTH tokens from
/// messages).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One line of plain text (e-mail subjects, log lines, reports): control characters become
/// spaces.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(all(test, feature = "slack", feature = "teams", feature = "email"))]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_inert() {
        assert_eq!(
            slack("<!channel> & <https://evil|click>"),
            "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
        );
        assert_eq!(
            markdown("[click](https://evil) *b*\nx"),
            "\\[click\\]\\(https://evil\\) \\*b\\* x"
        );
        assert_eq!(html("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(one_line("a\r\nBcc: x"), "a  Bcc: x");
    }
}
