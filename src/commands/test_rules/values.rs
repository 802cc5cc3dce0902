//! The compact notation of a rule test's input series, promtool's expanding notation:
//! `"10 10 95x12 _ 10+5x3"` becomes one value (or a missing sample) per interval.
//!
//! | token | becomes |
//! |---|---|
//! | `a` | `a` |
//! | `a+bxn` | `a a+b a+2b … a+nb` (n + 1 values) |
//! | `a-bxn` | `a a-b a-2b … a-nb` (n + 1 values) |
//! | `axn` | `a` n + 1 times (`a+0xn`) |
//! | `_` | no sample at that step |
//! | `_xn` | n steps without a sample (a missing sample cannot increment) |
//!
//! Numbers are plain (`-2`, `1.5`, `1e9`, in the metric's base unit) or carry the metric's
//! unit (`500MB`, `85%`); the caller's parser decides. Not the place for where the values go
//! (the command puts step k at t0 + k × interval) nor for promtool's `stale` marker, which
//! hostwatch has no equivalent of.

/// The most steps one series may expand to (a day of 5 s samples is 17 280).
pub(crate) const MAX_STEPS: usize = 1_000_000;

/// Expands `text` into one entry per step: `Some(value)`, or `None` where the series has no
/// sample. `number` parses one number (with or without a unit). The error names the token.
pub(crate) fn expand(
    text: &str,
    number: &dyn Fn(&str) -> Result<f64, String>,
) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        expand_token(token, number, &mut out).map_err(|why| format!("{token:?}: {why}"))?;
    }
    if out.is_empty() {
        return Err("no values (expected something like \"10 10 95x12 10\")".to_owned());
    }
    Ok(out)
}

fn expand_token(
    token: &str,
    number: &dyn Fn(&str) -> Result<f64, String>,
    out: &mut Vec<Option<f64>>,
) -> Result<(), String> {
    if token == "stale" {
        return Err("hostwatch has no stale markers (use \"_\" for a missing sample)".to_owned());
    }
    let (head, count) = split_count(token)?;
    if head == "_" {
        // promtool: `_x3` is three missing samples, not four.
        return push(out, count.unwrap_or(1), || None);
    }
    let Some(n) = count else {
        let v = number(head)?;
        return push(out, 1, || Some(v));
    };
    let (start, step) = match split_step(head) {
        Some((a, sign, b)) => (number(a)?, sign * number(b)?),
        None => (number(head)?, 0.0),
    };
    let steps = n.checked_add(1).ok_or_else(|| format!("x{n}: too many values"))?;
    let mut k = 0u64;
    push(out, steps, || {
        // Multiplying, not adding up, so the last value is exact where a + n·b is.
        let v = start + step * k as f64;
        k += 1;
        Some(v)
    })?;
    // A line from a finite start stays finite when its end does.
    if out.last().is_some_and(|v| v.is_some_and(|v| !v.is_finite())) {
        return Err("the values overflow".to_owned());
    }
    Ok(())
}

/// Appends `n` entries made by `make`, within [`MAX_STEPS`].
fn push(
    out: &mut Vec<Option<f64>>,
    n: u64,
    mut make: impl FnMut() -> Option<f64>,
) -> Result<(), String> {
    let room = (MAX_STEPS - out.len()) as u64;
    if n > room {
        return Err(format!("a series may have at most {MAX_STEPS} values"));
    }
    for _ in 0..n {
        out.push(make());
    }
    Ok(())
}

/// Splits `head x n` at the last `x` followed by digits only; `None` count without one.
fn split_count(token: &str) -> Result<(&str, Option<u64>), String> {
    let Some(i) = token.rfind('x') else { return Ok((token, None)) };
    let (head, digits) = (&token[..i], &token[i + 1..]);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "expected a whole number after 'x' (like \"95x12\": 95, then 12 more times)".to_owned()
        );
    }
    if head.is_empty() {
        return Err("expected a value before 'x' (like \"95x12\")".to_owned());
    }
    let n = digits.parse::<u64>().map_err(|_| format!("x{digits}: too many values"))?;
    Ok((head, Some(n)))
}

/// Splits `a+b` or `a-b` at the operator that is neither a leading sign nor an exponent's
/// sign (`-2+4`, `1e-3-1e-4`, `1GiB+100MiB`): `(a, ±1, b)`.
fn split_step(head: &str) -> Option<(&str, f64, &str)> {
    let bytes = head.as_bytes();
    (1..bytes.len()).find_map(|i| {
        let sign = match bytes[i] {
            b'+' => 1.0,
            b'-' => -1.0,
            _ => return None,
        };
        // An exponent's sign follows an `e` that follows a digit or a dot (`1e-3`, `2.e+1`).
        let exponent = i >= 2
            && matches!(bytes[i - 1], b'e' | b'E')
            && (bytes[i - 2].is_ascii_digit() || bytes[i - 2] == b'.');
        (!exponent).then(|| (&head[..i], sign, &head[i + 1..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plain(text: &str) -> Result<f64, String> {
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("expected a number, found {text:?}"))
    }

    fn ex(text: &str) -> Vec<Option<f64>> {
        expand(text, &plain).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
    }

    #[test]
    fn promtool_examples_expand_as_promtool_documents() {
        assert_eq!(ex("-2+4x3"), some(&[-2.0, 2.0, 6.0, 10.0]));
        assert_eq!(ex(" 1-2x4"), some(&[1.0, -1.0, -3.0, -5.0, -7.0]));
        assert_eq!(ex(" 1x4"), some(&[1.0; 5]));
        assert_eq!(ex("1+1x3"), some(&[1.0, 2.0, 3.0, 4.0]));
        assert_eq!(ex("5x3"), some(&[5.0; 4]));
        assert_eq!(ex("1 _x3 2"), vec![Some(1.0), None, None, None, Some(2.0)]);
        assert_eq!(ex("_ 1 _"), vec![None, Some(1.0), None]);
        assert_eq!(ex("7x0"), some(&[7.0]));
    }

    #[test]
    fn numbers_may_be_signed_fractional_or_exponents() {
        assert_eq!(ex("1e3+1e2x2"), some(&[1000.0, 1100.0, 1200.0]));
        assert_eq!(ex("1e-3"), some(&[0.001]));
        assert_eq!(ex("2.5-0.5x1"), some(&[2.5, 2.0]));
        assert_eq!(ex("+3 -3"), some(&[3.0, -3.0]));
    }

    #[test]
    fn the_unit_parser_sees_each_number_alone() {
        let units = |t: &str| match t.strip_suffix("MB") {
            Some(n) => plain(n).map(|v| v * 1e6),
            None => plain(t),
        };
        let got = expand("400MB+100MBx2", &units).unwrap();
        assert_eq!(got, some(&[400e6, 500e6, 600e6]));
    }

    #[test]
    fn mistakes_name_the_token() {
        for (text, needle) in [
            ("10 95x", "\"95x\": expected a whole number after 'x'"),
            ("x3", "\"x3\": expected a value before 'x'"),
            ("1+x3", "\"1+x3\": expected a number, found \"\""),
            ("ten", "\"ten\": expected a number"),
            ("1 stale", "\"stale\": hostwatch has no stale markers"),
            ("5x-1", "\"5x-1\": expected a whole number"),
            ("", "no values"),
            ("1x99999999999999999999", "too many values"),
            ("1x2000000", "at most 1000000 values"),
            ("1e308+1e308x3", "overflow"),
            ("inf", "expected a number"),
        ] {
            let e = expand(text, &plain).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    proptest! {
        #[test]
        fn an_expansion_has_n_plus_one_values_on_a_line(
            a in -1000i32..1000, b in -100i32..100, n in 0u32..200,
        ) {
            let text = if b < 0 { format!("{a}{b}x{n}") } else { format!("{a}+{b}x{n}") };
            let got = expand(&text, &plain).unwrap();
            prop_assert_eq!(got.len(), n as usize + 1);
            for (k, v) in got.iter().enumerate() {
                prop_assert_eq!(*v, Some(f64::from(a) + f64::from(b) * k as f64));
            }
        }

        #[test]
        fn tokens_concatenate(parts in proptest::collection::vec((0u8..3, 0u32..20, 0u32..5), 1..8)) {
            let mut text = Vec::new();
            let mut want = Vec::new();
            for (kind, v, n) in parts {
                match kind {
                    0 => { text.push(v.to_string()); want.push(Some(f64::from(v))); }
                    1 => {
                        text.push(format!("{v}x{n}"));
                        want.extend(std::iter::repeat_n(Some(f64::from(v)), n as usize + 1));
                    }
                    _ if n == 0 => { text.push("_".into()); want.push(None); }
                    _ => {
                        text.push(format!("_x{n}"));
                        want.extend(std::iter::repeat_n(None, n as usize));
                    }
                }
            }
            prop_assert_eq!(expand(&text.join(" "), &plain).unwrap(), want);
        }

        #[test]
        fn any_text_gives_values_or_an_error_never_a_panic(text in "[-+0-9x_e. ]{0,24}") {
            let _ = expand(&text, &plain);
        }
    }
}
