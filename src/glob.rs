//! Shell-style glob matching (`*` any run of characters, `?` one character) for label matchers.

/// True when `text` matches `pattern` as a whole; `*` also matches `/`. Allocates nothing.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    glob_match_bytes(pattern.as_bytes(), text.as_bytes())
}

/// [`glob_match`] over bytes (a process's arguments need not be UTF-8): `?` takes one UTF-8
/// sequence, or one stray byte. Allocates nothing.
pub fn glob_match_bytes(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            ti += char_len(t, ti);
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            let next = st + char_len(t, st);
            pi = sp + 1;
            ti = next;
            star = Some((sp, next));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 sequence at `t[i]`: 1 for ASCII and for a byte that starts no
/// complete sequence (a stray or truncated one, possible in bytes that are not UTF-8).
fn char_len(t: &[u8], i: usize) -> usize {
    let want = match t[i] {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => return 1,
    };
    let complete = t.get(i + 1..i + want).is_some_and(|c| c.iter().all(|&b| b & 0xC0 == 0x80));
    if complete { want } else { 1 }
}

/// True when the pattern has no wildcard, so it only matches itself.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn matches_like_a_shell() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "/var/lib"));
        assert!(glob_match("eth*", "eth0"));
        assert!(!glob_match("eth*", "veth0"));
        assert!(glob_match("/mnt/*", "/mnt/a/b"));
        assert!(glob_match("sd?", "sda"));
        assert!(!glob_match("sd?", "sda1"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b", "xxaxxbxxc"));
        assert!(glob_match("/", "/"));
        assert!(!glob_match("/", "/boot"));
        assert!(glob_match("caf?", "café"));
        assert!(glob_match("*é", "café"));
        assert!(!glob_match("caf?", "cafée"));
    }

    #[test]
    fn bytes_that_are_not_utf8_match_one_byte_per_question_mark() {
        use super::glob_match_bytes;
        assert!(glob_match_bytes(b"?b", b"\xF0b"));
        assert!(glob_match_bytes(b"a*z", b"a\xff\xfe z"));
        assert!(glob_match_bytes(
            b"*gunicorn*app:api*",
            b"/usr/bin/python3 /venv/bin/gunicorn -w 4 app:api"
        ));
        assert!(!glob_match_bytes(b"*gunicorn*app:api*", b"/venv/bin/gunicorn app:web"));
    }
}
