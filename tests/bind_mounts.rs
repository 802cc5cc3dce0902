//! A bind mount of a subtree of a file system that is also mounted whole (what systemd's
//! `StateDirectory=` and `PrivateTmp=` add inside a sandboxed service) is the same disk again:
//! `hostwatch sample` leaves it out by default and `collect.include` brings it back. The bind
//! is made in a private mount namespace (`unshare -m`, root), so the host never sees it.

mod common;

use std::path::Path;
use std::process::Command;

/// The `disk.used_percent` mount labels `hostwatch sample` prints inside a mount namespace
/// where `source` is bound onto `target`; `None` when the namespace cannot be made (not root).
fn mounts_with_bind(source: &Path, target: &Path, config: &Path) -> Option<Vec<String>> {
    let script = format!(
        "mount --bind '{}' '{}' && exec '{}' sample --format json --over 100ms --config '{}'",
        source.display(),
        target.display(),
        common::bin(),
        config.display()
    );
    let out = Command::new("unshare").args(["-m", "sh", "-c", &script]).output().ok()?;
    if !out.status.success() {
        eprintln!("unshare -m with a bind mount failed (root is needed): {}", common::stderr(&out));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sample's JSON");
    let metrics = v["metrics"].as_object().expect("metrics");
    Some(
        metrics
            .keys()
            .filter_map(|k| k.strip_prefix("disk.used_percent{mount=")?.strip_suffix('}'))
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn a_bind_of_a_subtree_is_left_out_unless_included() {
    // Under target/: on the project's disk, not a tmpfs (left out anyway, as pseudo).
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("bind-mounts-test-{}", std::process::id()));
    let (source, target) = (base.join("source"), base.join("target"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    let plain = common::write(&base, "plain.json", r#"{"rules": []}"#);
    let label = target.to_str().unwrap().to_string();
    let included = common::write(
        &base,
        "include.json",
        &serde_json::json!({"rules": [], "collect": {"include": {"mount": ["/", label]}}})
            .to_string(),
    );
    let Some(default) = mounts_with_bind(&source, &target, &plain) else {
        let _ = std::fs::remove_dir_all(&base);
        if running_as_root() {
            panic!("root could not make a mount namespace with a bind mount");
        }
        return; // not root: told on stderr
    };
    let with_include = mounts_with_bind(&source, &target, &included).expect("the same as root");
    let _ = std::fs::remove_dir_all(&base);
    assert!(!default.contains(&label), "the bind is the same disk again: {default:?}");
    assert!(default.iter().any(|m| m == "/"), "{default:?}");
    assert!(with_include.contains(&label), "include brings it back: {with_include:?}");
}

/// True when running as root (then the test must not skip).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}
