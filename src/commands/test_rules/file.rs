//! Reading a rule test file: its rules (a config file, inline `rules`, or the embedded
//! defaults), its tests' input series and their expected notifications, every problem
//! reported as `file:line:column: key.path: message` like a config error, all at once.
//!
//! Not the place for running the tests (`test_rules`) nor for the compact value notation
//! (`values`). The `HOSTWATCH_*` overrides do not apply: a rule test means the same on every
//! machine (`${NAME}` substitution in a config still does).

use super::values;
use crate::alerts::EventKind;
use crate::config::env::{HOST_VAR, INTERVAL_VAR, STATE_DIR_VAR};
use crate::config::json::{self, Key, Node, NodeValue};
use crate::config::units::{format_duration, parse_duration, parse_value};
use crate::config::{
    self, Config, ConfigError, ConfigErrors, Decoder, Severity, get, hint, index_path, key_path,
    member,
};
use crate::metrics::{Metric, Unit};
use crate::series::parse_series_key;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILE_KEYS: &[&str] = &["config", "rules", "interval", "tests"];
const TEST_KEYS: &[&str] = &["name", "series", "samples", "expect"];
const EXPECT_KEYS: &[&str] = &["at", "rule", "series", "event", "severity"];
const FILE_EXAMPLE: &str = "{\"config\": \"config.json\", \"tests\": [...]}";
const TEST_EXAMPLE: &str =
    "{\"name\": \"busy\", \"series\": {\"cpu.usage\": \"10 95x30\"}, \"expect\": [...]}";
const EXPECT_EXAMPLE: &str = "{\"at\": \"2m30s\", \"rule\": \"cpu_total\", \"event\": \"firing\", \"severity\": \"warning\"}";

/// A test file, decoded and checked.
#[derive(Debug)]
pub(crate) struct TestFile {
    /// The config the tests run against (its rules, interval and escalation).
    pub config: Config,
    /// The tests, in file order.
    pub tests: Vec<TestCase>,
}

/// One test: input samples and the notifications they must give, no more, no fewer.
#[derive(Debug)]
pub(crate) struct TestCase {
    /// The test's `name`, else `tests[i]`.
    pub name: String,
    /// Where the samples come from.
    pub input: Input,
    /// The expected notifications, in file order.
    pub expect: Vec<Expected>,
}

/// A test's samples.
#[derive(Debug)]
pub(crate) enum Input {
    /// `series`: one value (or none) per series and interval from t0.
    Series(Vec<InputSeries>),
    /// `samples`: a `sample --format jsonl` file, each line on its own time.
    Samples(PathBuf),
}

/// One series of `series`.
#[derive(Debug)]
pub(crate) struct InputSeries {
    /// The metric.
    pub metric: Metric,
    /// The label value, if the metric has a label.
    pub label: Option<String>,
    /// One entry per step; `None`: no sample then.
    pub values: Vec<Option<f64>>,
}

/// One expected notification.
#[derive(Debug)]
pub(crate) struct Expected {
    /// Milliseconds after t0.
    pub at_ms: i64,
    /// The rule's name.
    pub rule: String,
    /// The series key; `None`: any series of the rule.
    pub series: Option<String>,
    /// The event.
    pub event: EventKind,
    /// The severity.
    pub severity: Severity,
}

/// Reads and checks the test file at `path`.
pub(crate) fn load(path: &Path) -> Result<TestFile, ConfigErrors> {
    let source = path.display().to_string();
    let text = read(path, &source)
        .map_err(|why| ConfigError::whole(&source, format!("cannot read the test file: {why}")))?;
    let root =
        json::parse(&text).map_err(|e| ConfigError::at(&source, e.line, e.col, "", e.message))?;
    let mut d = Decoder::new(&source);
    let Some(top) = d.object(&root, "", FILE_KEYS, FILE_EXAMPLE) else {
        return Err(ConfigErrors(d.errors));
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let interval = get(top, "interval").map(|n| (d.duration(n, "interval"), n));
    if let Some((None, _)) = interval {
        // The rules are not decoded against an interval that is wrong.
        return Err(ConfigErrors(d.errors));
    }
    let interval = interval.and_then(|(i, n)| Some((i?, n)));
    let (config, mut errors) = match load_config(&mut d, top, &source, dir, interval) {
        Ok(c) => (Some(c), Vec::new()),
        Err(e) => (None, e.0),
    };
    let tests = match d.required(get(top, "tests"), &root, "", "tests") {
        Some(n) => decode_tests(&mut d, n, dir, config.as_ref()),
        None => Vec::new(),
    };
    // The test file's own problems (inline rules' among them) in file order, then the
    // config file's, as its loading ordered them.
    errors.extend(d.errors);
    errors.sort_by_key(|e| {
        (e.file != source, if e.file == source { (e.line, e.column) } else { (0, 0) })
    });
    match config {
        Some(config) if errors.is_empty() => Ok(TestFile { config, tests }),
        _ => Err(ConfigErrors(errors)),
    }
}

/// The file at `path` (displayed as `source`) as text, a regular file within the config
/// size cap; the error is why not, without the path.
fn read(path: &Path, source: &str) -> Result<String, String> {
    crate::localfile::read_regular_string(path, crate::localfile::CONFIG_MAX_BYTES).map_err(|e| {
        let message = e.to_string();
        match message.strip_prefix(source).and_then(|m| m.strip_prefix(": ")) {
            Some(cause) => cause.to_owned(),
            None => message,
        }
    })
}

/// The config the tests run against: the file `config` names (relative to the test file),
/// the embedded default with `rules` replaced by the test file's, or the embedded default;
/// `interval` (when given) replaces the config's.
fn load_config(
    d: &mut Decoder<'_>,
    top: &[(Key, Node)],
    source: &str,
    dir: &Path,
    interval: Option<(Duration, &Node)>,
) -> Result<Config, ConfigErrors> {
    let env = |name: &str| {
        if [HOST_VAR, INTERVAL_VAR, STATE_DIR_VAR].contains(&name) {
            None
        } else {
            std::env::var(name).ok()
        }
    };
    let embedded = || json::parse(config::DEFAULT_JSON).expect("the embedded default parses");
    let (mut tree, config_source) = match (member(top, "", "config"), get(top, "rules")) {
        (Some(_), Some(_)) => {
            let key = &top.iter().find(|(k, _)| k.name == "rules").expect("present").0;
            d.key_error(key, "rules", "a test file takes \"config\" or \"rules\", not both");
            return Err(ConfigErrors(Vec::new()));
        }
        (Some((n, p)), None) => {
            let Some(name) = d.non_empty(n, &p, "\"../config.json\"") else {
                return Err(ConfigErrors(Vec::new()));
            };
            let path = dir.join(name);
            let config_source = path.display().to_string();
            let text = read(&path, &config_source).map_err(|why| {
                ConfigError::at(
                    source,
                    n.line,
                    n.col,
                    &p,
                    format!("cannot read the config file {config_source}: {why}"),
                )
            })?;
            let tree = config::format::parse(&text, &config_source)?;
            (tree, config_source)
        }
        // Inline rules: the errors in them are the test file's, at their place in it.
        (None, Some(rules)) => {
            let mut tree = embedded();
            set_member(&mut tree, "rules", rules.clone());
            (tree, source.to_owned())
        }
        (None, None) => (embedded(), config::EMBEDDED_SOURCE.to_owned()),
    };
    if let Some((interval, node)) = interval {
        let value = NodeValue::String(format_duration(interval));
        set_member(
            &mut tree,
            "interval",
            Node { value, line: node.line, col: node.col, text: node.text },
        );
    }
    drop_delivery(&mut tree);
    config::load_tree(tree, &config_source, &env)
}

/// Takes out of a config what rule tests never use and where secrets live (channels,
/// routes, API, heartbeat, history, reports, and each rule's `channels`), so a production
/// config tests where the variables holding its secrets are unset.
fn drop_delivery(tree: &mut Node) {
    const DELIVERY: [&str; 6] = ["channels", "routes", "api", "heartbeat", "history", "reports"];
    let NodeValue::Object(members) = &mut tree.value else { return };
    members.retain(|(k, _)| !DELIVERY.contains(&k.name.as_str()));
    for (key, node) in members.iter_mut() {
        if key.name != "rules" {
            continue;
        }
        let NodeValue::Array(rules) = &mut node.value else { continue };
        for rule in rules {
            if let NodeValue::Object(fields) = &mut rule.value {
                fields.retain(|(k, _)| k.name != "channels");
            }
        }
    }
}

/// Sets member `name` of the object `tree` (replacing it, or appending it).
fn set_member(tree: &mut Node, name: &str, value: Node) {
    let NodeValue::Object(members) = &mut tree.value else { return };
    match members.iter_mut().find(|(k, _)| k.name == name) {
        Some((_, v)) => *v = value,
        None => {
            let key = Key { name: name.to_owned(), line: value.line, col: value.col };
            members.push((key, value));
        }
    }
}

fn decode_tests(
    d: &mut Decoder<'_>,
    node: &Node,
    dir: &Path,
    config: Option<&Config>,
) -> Vec<TestCase> {
    let Some(items) = d.array(node, "tests", &format!("[{TEST_EXAMPLE}]")) else {
        return Vec::new();
    };
    if items.is_empty() {
        d.error(node, "tests", format!("no tests (expected something like [{TEST_EXAMPLE}])"));
    }
    let mut tests = Vec::new();
    // Values of every test's series so far: the file's memory stays bounded.
    let mut total = 0usize;
    for (i, item) in items.iter().enumerate() {
        let path = index_path("tests", i);
        if let Some(t) = decode_test(d, item, &path, dir, config, &mut total) {
            tests.push(t);
        }
    }
    tests
}

fn decode_test(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    dir: &Path,
    config: Option<&Config>,
    total: &mut usize,
) -> Option<TestCase> {
    let members = d.object(node, path, TEST_KEYS, TEST_EXAMPLE)?;
    let name = member(members, path, "name")
        .and_then(|(n, p)| d.non_empty(n, &p, "\"cpu busy for 2m\""))
        .unwrap_or_else(|| path.to_owned());
    let input = match (member(members, path, "series"), member(members, path, "samples")) {
        (Some(_), Some((n, p))) => {
            d.error(n, &p, "a test takes \"series\" or \"samples\", not both");
            None
        }
        (Some((n, p)), None) => decode_series(d, n, &p, total).map(Input::Series),
        (None, Some((n, p))) => {
            d.non_empty(n, &p, "\"busy.jsonl\"").map(|f| Input::Samples(dir.join(f)))
        }
        (None, None) => {
            d.error(node, path, "missing \"series\" (or \"samples\"): the test has no input");
            None
        }
    };
    let interval_ms = config.map(|c| c.interval.as_millis() as i64);
    let expect = d.required(get(members, "expect"), node, path, "expect").and_then(|n| {
        let p = key_path(path, "expect");
        let items = d.array(n, &p, &format!("[{EXPECT_EXAMPLE}]"))?;
        let before = d.errors.len();
        let inputs = match &input {
            Some(Input::Series(s)) => Some(s.as_slice()),
            _ => None,
        };
        let out: Vec<Expected> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let p = index_path(&p, i);
                decode_expected(d, item, &p, config, inputs, interval_ms)
            })
            .collect();
        (d.errors.len() == before).then_some(out)
    });
    Some(TestCase { name, input: input?, expect: expect? })
}

/// `series`: series key → compact values.
fn decode_series(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    total: &mut usize,
) -> Option<Vec<InputSeries>> {
    let members = d.map(node, path, "{\"cpu.usage\": \"10 10 95x12 10\"}")?;
    if members.is_empty() {
        d.error(node, path, "no series (expected something like {\"cpu.usage\": \"10 95x30\"})");
        return None;
    }
    let before = d.errors.len();
    let mut out = Vec::new();
    for (key, value) in members {
        let p = key_path(path, &key.name);
        let Some((metric, label)) = series_key(&key.name).map_err(|e| d.key_error(key, &p, e)).ok()
        else {
            continue;
        };
        let Some(text) = d.string(value, &p, "\"10 10 95x12 10\"") else { continue };
        match values::expand(text, &|t| number(t, metric.unit())) {
            // All the series of a file together stay within a bound too (each value is 16
            // bytes): a small file cannot ask for gigabytes.
            Ok(values) if *total + values.len() > values::MAX_STEPS * 4 => d.error(
                value,
                &p,
                format!(
                    "the series of one file may have at most {} values together",
                    values::MAX_STEPS * 4
                ),
            ),
            Ok(values) => {
                *total += values.len();
                out.push(InputSeries { metric, label, values });
            }
            Err(e) => d.error(value, &p, e),
        }
    }
    (d.errors.len() == before).then_some(out)
}

/// A plain number (in the metric's base unit), else a value in the metric's unit (`500MB`).
fn number(text: &str, unit: Unit) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => parse_value(text, unit),
    }
}

/// Parses a series key; an unknown metric gets a did-you-mean.
fn series_key(key: &str) -> Result<(Metric, Option<String>), String> {
    let name = key.split('{').next().unwrap_or(key);
    if Metric::parse(name).is_none() {
        let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        return Err(format!("unknown metric {name:?}{}", hint(name, &known)));
    }
    let (metric, label) = parse_series_key(key).map_err(|e| e.to_string())?;
    Ok((metric, label.map(str::to_owned)))
}

fn decode_expected(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    config: Option<&Config>,
    inputs: Option<&[InputSeries]>,
    interval_ms: Option<i64>,
) -> Option<Expected> {
    let members = d.object(node, path, EXPECT_KEYS, EXPECT_EXAMPLE)?;
    let field = |d: &mut Decoder<'_>, key: &str| {
        d.required(get(members, key), node, path, key).map(|n| (n, key_path(path, key)))
    };
    let at_ms = field(d, "at").and_then(|(n, p)| {
        let text = d.string(n, &p, "\"2m30s\"")?;
        let ms = offset(text).map_err(|e| d.error(n, &p, e)).ok()?;
        if let (Some(_), Some(step)) = (inputs, interval_ms)
            && step > 0
            && ms % step != 0
        {
            let step = format_duration(Duration::from_millis(step as u64));
            d.error(
                n,
                &p,
                format!(
                    "{text:?} is not a multiple of the interval {step} (samples are 0s, {step}, …)"
                ),
            );
            return None;
        }
        Some(ms)
    });
    let rule = field(d, "rule").and_then(|(n, p)| {
        let name = d.non_empty(n, &p, "\"cpu_total\"")?;
        let config = config?;
        if !config.rules.iter().any(|r| r.name == name) {
            let known: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
            d.error(n, &p, format!("no rule named {name:?}{}", hint(&name, &known)));
            return None;
        }
        Some(name)
    });
    let series = member(members, path, "series").and_then(|(n, p)| {
        let key = d.non_empty(n, &p, "\"cpu.usage\"")?;
        let (metric, label) = series_key(&key).map_err(|e| d.error(n, &p, e)).ok()?;
        let rule =
            config.zip(rule.as_ref()).and_then(|(c, r)| c.rules.iter().find(|x| x.name == *r));
        if let Some(rule) = rule.filter(|r| r.metric != metric) {
            d.error(n, &p, format!("rule {:?} watches {}, not {metric}", rule.name, rule.metric));
            return None;
        }
        if let Some(inputs) = inputs
            && !inputs.iter().any(|s| s.metric == metric && s.label == label)
        {
            d.error(n, &p, format!("{key:?} is not one of this test's series"));
            return None;
        }
        Some(crate::series::series_key(metric, label.as_deref()))
    });
    let event = field(d, "event").and_then(|(n, p)| variant::<EventKind>(d, n, &p, "event"));
    let severity =
        field(d, "severity").and_then(|(n, p)| variant::<Severity>(d, n, &p, "severity"));
    if member(members, path, "series").is_some() && series.is_none() {
        return None;
    }
    Some(Expected { at_ms: at_ms?, rule: rule?, series, event: event?, severity: severity? })
}

/// An offset after t0: `0s` (or `0`), else a duration (`2m30s`), in milliseconds.
fn offset(text: &str) -> Result<i64, String> {
    if matches!(text.trim(), "0" | "0s" | "0ms" | "0m") {
        return Ok(0);
    }
    parse_duration(text).map(|d| d.as_millis() as i64)
}

/// A name of one of `T`'s serde variants (`firing`, `warning`): the list of names comes from
/// the type itself, so a new event kind is accepted without a change here.
fn variant<T: serde::de::DeserializeOwned>(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    what: &str,
) -> Option<T> {
    let text = d.string(node, path, "\"firing\"")?;
    match serde_json::from_value::<T>(serde_json::Value::String(text.to_owned())) {
        Ok(v) => Some(v),
        Err(e) => {
            // "unknown variant `x`, expected one of `a`, `b`": the names between backticks.
            let message = e.to_string();
            let names: Vec<&str> = message.split('`').skip(1).step_by(2).skip(1).collect();
            let why = if names.is_empty() { format!(" ({message})") } else { hint(text, &names) };
            d.error(node, path, format!("unknown {what} {text:?}{why}"));
            None
        }
    }
}
