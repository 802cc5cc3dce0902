//! Config errors with their position (`file:line:col: path: message`), key-path helpers and
//! the did-you-mean suggestion shared by every stage of loading.
//!
//! Not the place for the checks themselves: those live in `json`, `env`, `units` and `decode`.

use std::fmt;

/// One problem in a configuration, located by file, line, column and key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the error is: the config file as given, `<embedded default>`, or
    /// `environment NAME` for an override variable.
    pub file: String,
    /// 1-based line of the offending value or key; 0 when the error has no position.
    pub line: u32,
    /// 1-based column (in characters); 0 when the error has no position.
    pub column: u32,
    /// The key path (`rules[2].warn`); empty for syntax errors and whole-file errors.
    pub path: String,
    /// What is wrong, written for the operator.
    pub message: String,
}

impl ConfigError {
    /// An error at a position of `file`.
    pub fn at(file: &str, line: u32, column: u32, path: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// An error about a whole file or an environment variable: no position, no path.
    pub fn whole(file: &str, message: impl Into<String>) -> Self {
        ConfigError::at(file, 0, 0, "", message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in one configuration, in file order; `Display` writes one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// The path of member `key` of the object at `parent` (`rules[0]` + `warn` → `rules[0].warn`);
/// keys that are not plain words are quoted (`headers["X Key"]`).
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    let plain =
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// The path of element `index` of the array at `parent` (`rules` + 2 → `rules[2]`).
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The candidate closest to `word`: within edit distance 2 (a swap of two neighbours counts
/// as one edit) and fewer edits than the word has characters, or one a prefix of the other;
/// `None` when nothing is close.
pub(crate) fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        let d = distance(word, cand);
        // An edit distance as long as the word itself says nothing ("x" is one edit from "a").
        let near = d <= 2 && d < word.chars().count();
        let prefix = word.len() >= 2 && (cand.starts_with(word) || word.starts_with(cand));
        if near || prefix {
            // Prefix matches rank after real near-misses.
            let score = if near { d } else { 3 };
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, cand));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// Up to `n` candidates closest to `word`, closest first: [`suggest`]'s pick (a near miss or
/// a prefix) leads, the others follow by edit distance (ties in candidate order). For a
/// did-you-mean list where something must be offered even when nothing is near.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str], n: usize) -> Vec<&'a str> {
    let best = suggest(word, candidates.iter().copied());
    let mut ranked: Vec<(usize, &'a str)> = candidates
        .iter()
        .map(|&c| (if Some(c) == best { 0 } else { 1 + distance(word, c) }, c))
        .collect();
    ranked.sort_by_key(|&(d, _)| d);
    ranked.into_iter().take(n).map(|(_, c)| c).collect()
}

/// ` (did you mean "x"?)` or, when nothing is close, ` (expected one of a, b, c)`.
pub(crate) fn hint(word: &str, candidates: &[&str]) -> String {
    match suggest(word, candidates.iter().copied()) {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => format!(" (expected one of {})", candidates.join(", ")),
    }
}

/// Optimal string alignment distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_every_part_it_knows() {
        let e = ConfigError::at("config.json", 14, 17, "rules[2].warn", "unknown unit \"Mbs\"");
        assert_eq!(e.to_string(), "config.json:14:17: rules[2].warn: unknown unit \"Mbs\"");
        let e = ConfigError::at("c.json", 3, 1, "", "trailing comma");
        assert_eq!(e.to_string(), "c.json:3:1: trailing comma");
        let e = ConfigError::whole("environment HOSTWATCH_INTERVAL", "bad");
        assert_eq!(e.to_string(), "environment HOSTWATCH_INTERVAL: bad");
        let all = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(all.to_string().lines().count(), 2);
    }

    #[test]
    fn paths_quote_odd_keys() {
        assert_eq!(key_path("", "rules"), "rules");
        assert_eq!(key_path(&index_path("rules", 2), "warn"), "rules[2].warn");
        assert_eq!(key_path("h", "X Key"), "h[\"X Key\"]");
    }

    #[test]
    fn suggestions_find_near_misses_and_prefixes() {
        let keys = ["threshold", "warn", "crit", "metric"];
        assert_eq!(suggest("thresold", keys), Some("threshold"));
        assert_eq!(suggest("mteric", keys), Some("metric"));
        assert_eq!(suggest("thresh", keys), Some("threshold"));
        assert_eq!(suggest("banana", keys), None);
        assert_eq!(suggest("cpu.usge", ["cpu.iowait", "cpu.usage"]), Some("cpu.usage"));
        assert_eq!(hint("x", &["a", "b"]), " (expected one of a, b)");
        let rules = ["cpu_high", "disk_root", "disk_data", "mem_high"];
        assert_eq!(closest("disk_rot", &rules, 2), ["disk_root", "disk_data"]);
        assert_eq!(closest("mem", &rules, 1), ["mem_high"], "a prefix leads");
        assert_eq!(closest("zzz", &rules, 9).len(), 4, "something is always offered");
    }
}
