//! Shell-style glob matching (`*` any run of characters, `?` one character) for label matchers.

/// True when `text` matches `pattern` as a whole; `*` also matches `/`. Allocates nothing.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            ti += utf8_len(t[ti]);
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            let next = st + utf8_len(t[st]);
            pi = sp + 1;
            ti = next;
            star = Some((sp, next));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 sequence that starts with `first` (1 for stray continuation bytes).
fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
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
}
