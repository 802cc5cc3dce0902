//! Build script: records the git revision and the enabled cargo features for `--version`.

use std::process::Command;

fn main() {
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let revision = if dirty { format!("{revision}-dirty") } else { revision };

    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| {
            k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase().replace('_', "-"))
        })
        .filter(|f| f != "default")
        .collect();
    features.sort();
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .map(|f| f.split(',').any(|x| x == "crt-static"))
        .unwrap_or(false);

    println!("cargo:rustc-env=HOSTWATCH_GIT_REVISION={revision}");
    println!("cargo:rustc-env=HOSTWATCH_FEATURES={}", features.join(","));
    println!("cargo:rustc-env=HOSTWATCH_LINKAGE={}", if static_crt { "static" } else { "dynamic" });
    println!("cargo:rustc-env=HOSTWATCH_TARGET={}", std::env::var("TARGET").unwrap_or_default());
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-env-changed=CARGO_CFG_TARGET_FEATURE");
}
