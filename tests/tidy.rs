//! Tidy checks that keep the repository honest: every module opens with a doc comment, no
//! stub macro or placeholder ships, every config key (and rule test file key) is documented in
//! the README, and every metric of the catalogue appears in the README's metrics table.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() && name != "target" {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("plugins"), &mut files);
    assert!(files.len() > 30, "found only {} source files", files.len());
    files
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let missing: Vec<_> = sources()
        .into_iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().trim_start().starts_with("//!"))
        .collect();
    assert!(missing.is_empty(), "modules without a //! doc comment: {missing:?}");
}

#[test]
fn no_stubs_or_placeholders_ship() {
    let banned = ["todo!(", "unimplemented!(", "dbg!(", "PLACEHOLDER"];
    let mut found = Vec::new();
    for f in sources() {
        let text = std::fs::read_to_string(&f).unwrap();
        for b in banned {
            if text.contains(b) {
                found.push(format!("{}: {b}", f.display()));
            }
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

/// The string literals of every `const *_KEYS: &[&str] = &[...]` list in the config decoder
/// and the rule test file decoder (`test-rules`).
fn config_keys() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join("src/config"), &mut files);
    rust_files(&root().join("src/commands/test_rules"), &mut files);
    let mut keys = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("_KEYS: &[&str] = &[") {
            let after = &rest[i..];
            let end = after.find("];").unwrap();
            for part in after[..end].split('"').skip(1).step_by(2) {
                keys.push(part.to_string());
            }
            rest = &after[end..];
        }
    }
    keys.sort();
    keys.dedup();
    assert!(keys.len() > 40, "found only {} config keys", keys.len());
    keys
}

#[test]
fn every_config_key_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let missing: Vec<_> =
        config_keys().into_iter().filter(|k| !readme.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "config keys the README does not mention: {missing:?}");
}

#[test]
fn every_metric_is_in_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let missing: Vec<_> = hostwatch::metrics::Metric::ALL
        .iter()
        .map(|m| m.name())
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "metrics the README does not mention: {missing:?}");
}
