//! Allocation-free parsing of `/proc` text: lines and whitespace-separated fields as byte
//! slices, unsigned and decimal numbers, mount-point unescaping and label conversion.
//!
//! Everything here works on borrowed bytes; only [`unescape_octal`] and [`label_from_bytes`]
//! allocate, and they run when a mount or device is discovered, not on every tick.

use std::fmt::Write as _;

/// The lines of `text`, without their `\n`.
pub(super) fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// The fields of `line` separated by runs of ASCII whitespace.
pub(super) fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty())
}

/// Parses an unsigned decimal integer; `None` on anything else (empty, sign, overflow).
pub(super) fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parses a signed decimal integer (`-1` appears in `/proc/net/snmp`).
pub(super) fn parse_i64(field: &[u8]) -> Option<i64> {
    match field.split_first() {
        Some((b'-', rest)) => parse_u64(rest).and_then(|n| i64::try_from(n).ok()).map(|n| -n),
        _ => parse_u64(field).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Parses a decimal number such as `0.52`.
pub(super) fn parse_f64(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// Undoes the octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash) the
/// kernel writes in mount points; a backslash not followed by three octal digits stays as is.
pub(super) fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() && is_octal_escape(&field[i + 1..i + 4]) {
            let d = &field[i + 1..i + 4];
            let value =
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            // Three octal digits can exceed a byte (\777); keep such text literally.
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

fn is_octal_escape(digits: &[u8]) -> bool {
    digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d))
}

/// A label value for a name the kernel gave as bytes: valid UTF-8 is kept as is, any other
/// byte is written `\xNN` so two different names never share a label.
pub(super) fn label_from_bytes(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_any_whitespace_run() {
        let f: Vec<&[u8]> = fields(b"  cpu0 1\t2   3 \n").collect();
        assert_eq!(f, [&b"cpu0"[..], b"1", b"2", b"3"]);
        assert_eq!(lines(b"a\n\nb\n").count(), 2);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"42"), Some(42));
        assert_eq!(parse_f64(b"0.52"), Some(0.52));
        assert_eq!(parse_f64(b"x"), None);
    }

    #[test]
    fn octal_escapes_in_mount_points() {
        assert_eq!(unescape_octal(br"/mnt/a\040b"), b"/mnt/a b");
        assert_eq!(unescape_octal(br"/x\011y\012z\134w"), b"/x\ty\nz\\w");
        assert_eq!(unescape_octal(br"/odd\04"), br"/odd\04");
        assert_eq!(unescape_octal(br"/big\777"), br"/big\777");
        assert_eq!(unescape_octal(br"/end\"), br"/end\");
        assert_eq!(unescape_octal(br"/utf\303\251"), "/utfé".as_bytes());
    }

    #[test]
    fn labels_keep_invalid_bytes_distinct() {
        assert_eq!(label_from_bytes(b"eth0"), "eth0");
        assert_eq!(label_from_bytes(b"we\xffrd"), "we\\xffrd");
        assert_eq!(label_from_bytes("é{x}=".as_bytes()), "é{x}=");
    }
}
