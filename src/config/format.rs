//! Which front-end reads a config file: YAML for a name ending in `.yaml` or `.yml` (any
//! case), JSON for every other name (the embedded default included). Both give the same
//! spanned tree, so what follows parsing never knows which it was.
//!
//! Not the place for reading files or choosing the default path: that is `config`.

use super::error::ConfigError;
use super::json::{self, Node};
use super::yaml;

/// A config file's syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Strict JSON (`json`).
    Json,
    /// One YAML 1.2 document, core schema (`yaml`).
    Yaml,
}

impl Format {
    /// An empty rules list as this format writes it (`"rules": []`, `rules: []`).
    pub fn empty_rules(self) -> &'static str {
        match self {
            Format::Json => "\"rules\": []",
            Format::Yaml => "rules: []",
        }
    }

    /// The format of the file named `source`, by its extension.
    pub fn of(source: &str) -> Format {
        let ext = std::path::Path::new(source).extension().and_then(|e| e.to_str());
        match ext.map(str::to_ascii_lowercase).as_deref() {
            Some("yaml" | "yml") => Format::Yaml,
            _ => Format::Json,
        }
    }
}

/// Parses `text`, the content of the file named `source`, in that file's format; a syntax
/// error names the file, line and column.
pub fn parse(text: &str, source: &str) -> Result<Node, ConfigError> {
    let parsed = match Format::of(source) {
        Format::Json => json::parse(text),
        Format::Yaml => yaml::parse(text),
    };
    parsed.map_err(|e| ConfigError::at(source, e.line, e.col, "", e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_chooses_the_format() {
        for (name, format) in [
            ("/etc/hostwatch/config.yaml", Format::Yaml),
            ("x.yml", Format::Yaml),
            ("X.YAML", Format::Yaml),
            ("config.json", Format::Json),
            ("config", Format::Json),
            ("config.conf", Format::Json),
            ("yaml", Format::Json),
            ("<embedded default>", Format::Json),
        ] {
            assert_eq!(Format::of(name), format, "{name}");
        }
        assert_eq!(
            parse("a: 1", "c.json").unwrap_err().to_string(),
            "c.json:1:1: unexpected word \"a\" (strings need double quotes; the bare words are true, false and null)"
        );
        assert!(parse("a: 1", "c.yml").is_ok());
        assert_eq!(Format::of("c.yml").empty_rules(), "rules: []");
        assert_eq!(Format::of("c.json").empty_rules(), "\"rules\": []");
        let none = super::super::RuleSet::None;
        assert_eq!(none.describe("/etc/hostwatch/config.yaml"), "no rules (rules: [])");
        assert_eq!(none.describe("config.json"), "no rules (\"rules\": [])");
    }
}
