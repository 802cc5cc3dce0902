//! The environment's part in a config: `${NAME}` substitution in string values and the
//! `HOSTWATCH_HOST`, `HOSTWATCH_INTERVAL` and `HOSTWATCH_STATE_DIR` overrides.
//!
//! The environment is always taken through a lookup function so tests can inject one.
//! Substitution runs on the parsed tree before decoding, so a substituted value is validated
//! like a written one. Not the place for what the overridden keys mean: that is `decode`.

use super::error::{ConfigError, index_path, key_path};
use super::json::{Node, NodeValue};

/// An environment lookup: the value of a variable, `None` when unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The environment variable that overrides the top-level `host`.
pub const HOST_VAR: &str = "HOSTWATCH_HOST";
/// The environment variable that overrides the top-level `interval`.
pub const INTERVAL_VAR: &str = "HOSTWATCH_INTERVAL";
/// The environment variable that overrides the top-level `state_dir`.
pub const STATE_DIR_VAR: &str = "HOSTWATCH_STATE_DIR";

/// Top-level values taken from `HOSTWATCH_*` variables; an empty variable counts as unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `HOSTWATCH_HOST`.
    pub host: Option<String>,
    /// `HOSTWATCH_INTERVAL`, still to be parsed as a duration.
    pub interval: Option<String>,
    /// `HOSTWATCH_STATE_DIR`.
    pub state_dir: Option<String>,
}

impl Overrides {
    /// Reads the override variables through `env`.
    pub fn from_env(env: Lookup<'_>) -> Overrides {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        Overrides {
            host: get(HOST_VAR),
            interval: get(INTERVAL_VAR),
            state_dir: get(STATE_DIR_VAR),
        }
    }
}

/// Replaces `${NAME}`, `${NAME:-default}` and `$$` in every string value of the tree (keys
/// are left alone). Returns one error per problem, at the string's position; a string with an
/// error keeps its text unchanged.
pub fn substitute(root: &mut Node, file: &str, env: Lookup<'_>) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    walk(root, "", file, env, &mut errors);
    errors
}

fn walk(node: &mut Node, path: &str, file: &str, env: Lookup<'_>, errors: &mut Vec<ConfigError>) {
    match &mut node.value {
        NodeValue::String(s) => {
            if s.contains('$') {
                match expand(s, env) {
                    Ok(v) => *s = v,
                    Err(messages) => errors.extend(
                        messages
                            .into_iter()
                            .map(|m| ConfigError::at(file, node.line, node.col, path, m)),
                    ),
                }
            }
        }
        NodeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &index_path(path, i), file, env, errors);
            }
        }
        NodeValue::Object(members) => {
            for (key, value) in members.iter_mut() {
                walk(value, &key_path(path, &key.name), file, env, errors);
            }
        }
        NodeValue::Null | NodeValue::Bool(_) | NodeValue::Number(_) => {}
    }
}

/// Expands one string. `${NAME}` must be set and non-empty; `${NAME:-default}` falls back to
/// `default` when NAME is unset or empty; `$$` is a literal `$`; any other `$` is kept as is.
/// The substituted text is not scanned again.
pub fn expand(text: &str, env: Lookup<'_>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let Some(end) = body_start.find('}') else {
                errors
                    .push("unterminated \"${\" (missing '}'; write $$ for a literal $)".to_owned());
                return Err(errors);
            };
            let body = &body_start[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if !valid_name(name) {
                // The default may be a secret: the message quotes the name only.
                errors.push(format!(
                    "invalid environment variable name {name:?} in \"${{{name}...}}\" \
                     (letters, digits and _, not starting with a digit)"
                ));
            } else {
                match (env(name), default) {
                    (Some(v), _) if !v.is_empty() => out.push_str(&v),
                    (_, Some(d)) => out.push_str(d),
                    (Some(_), None) => errors.push(format!(
                        "environment variable {name} is empty (write ${{{name}:-}} to allow an \
                         empty value)"
                    )),
                    (None, None) => errors.push(format!("environment variable {name} is not set")),
                }
            }
            rest = &body_start[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::json::parse;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_dollars() {
        assert_eq!(expand("a${TOKEN}b", &env).unwrap(), "as3cretb");
        assert_eq!(expand("${MISSING:-https://x/y}", &env).unwrap(), "https://x/y");
        assert_eq!(expand("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(expand("${EMPTY:-}", &env).unwrap(), "");
        assert_eq!(expand("${TOKEN:-d}", &env).unwrap(), "s3cret");
        assert_eq!(expand("pa$$word $5 $HOME", &env).unwrap(), "pa$word $5 $HOME");
        assert_eq!(expand("$${TOKEN}", &env).unwrap(), "${TOKEN}");
    }

    #[test]
    fn reports_missing_empty_and_malformed_references() {
        assert_eq!(expand("${NOPE}", &env).unwrap_err(), ["environment variable NOPE is not set"]);
        assert_eq!(
            expand("${EMPTY}", &env).unwrap_err(),
            ["environment variable EMPTY is empty (write ${EMPTY:-} to allow an empty value)"]
        );
        assert_eq!(expand("${A}${B}", &env).unwrap_err().len(), 2);
        assert!(expand("${TOKEN", &env).unwrap_err()[0].starts_with("unterminated"));
        assert!(
            expand("${1X}", &env).unwrap_err()[0]
                .starts_with("invalid environment variable name \"1X\"")
        );
    }

    #[test]
    fn substitutes_in_values_only_and_names_the_path() {
        let text = r#"{
  "channels": {"ops": {"${TOKEN}": "${TOKEN}",
   "webhook_url": "${SLACK_WEBHOOK_URL}"}},
  "to": ["${TOKEN}"]
}"#;
        let mut root = parse(text).unwrap();
        let errors = substitute(&mut root, "config.json", &env);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "config.json:3:19: channels.ops.webhook_url: environment variable SLACK_WEBHOOK_URL is not set"
        );
        let v = root.to_value();
        assert_eq!(v["channels"]["ops"]["${TOKEN}"], "s3cret");
        assert_eq!(v["channels"]["ops"]["webhook_url"], "${SLACK_WEBHOOK_URL}");
        assert_eq!(v["to"][0], "s3cret");
    }

    #[test]
    fn overrides_ignore_empty_variables() {
        let env = |name: &str| match name {
            "HOSTWATCH_HOST" => Some("db-1".to_owned()),
            "HOSTWATCH_INTERVAL" => Some(String::new()),
            _ => None,
        };
        let o = Overrides::from_env(&env);
        assert_eq!(o, Overrides { host: Some("db-1".to_owned()), interval: None, state_dir: None });
    }
}
