//! Notifier plugins through the real binary (`hostwatch test-notify`): both example plugins
//! built from `plugins/examples` (C with make, Rust with cargo and the SDK) deliver for real;
//! a library of another ABI version, one without the entry symbol, and a file or directory
//! writable by others are refused with their reasons; a panicking Rust plugin is reported, not
//! a crash. Test libraries come from `tests/support/plugin_*.c`.
#![cfg(feature = "plugins")]

mod common;

use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Where the test builds its plugins (outside the main target dir's lock).
fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-tests")
}

fn check(what: &str, out: std::io::Result<Output>) {
    let out = out.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The C example, built with its Makefile.
fn c_example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = build_dir().join("c-jsonl");
        let make = Command::new("make")
            .arg("-C")
            .arg(format!("{ROOT}/plugins/examples/c-jsonl"))
            .arg(format!("OUT={}", out.display()))
            .output();
        check("make -C plugins/examples/c-jsonl", make);
        out.join("libhostwatch_jsonl.so")
    })
}

/// The Rust example, built with cargo into its own target dir.
fn rust_example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = build_dir().join("cargo");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let build = Command::new(cargo)
            .current_dir(ROOT)
            .args(["build", "-p", "hostwatch-plugin-syslog", "--target-dir"])
            .arg(&target)
            .output();
        check("cargo build -p hostwatch-plugin-syslog", build);
        target.join("debug/libhostwatch_plugin_syslog.so")
    })
}

/// A test library from `tests/support/<source>` compiled with `defines`.
fn test_library(source: &str, defines: &[&str], name: &str) -> PathBuf {
    let out = build_dir().join("test-libs");
    std::fs::create_dir_all(&out).unwrap();
    let lib = out.join(name);
    let cc = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"])
        .arg(format!("-I{ROOT}/plugins/include"))
        .args(defines)
        .arg("-o")
        .arg(&lib)
        .arg(format!("{ROOT}/tests/support/{source}"))
        .output();
    check(&format!("cc {source}"), cc);
    lib
}

/// A private directory (0755) under /tmp (sticky, root's) holding a copy of `lib` (0644):
/// what an operator installs.
fn install(test: &str, lib: &Path) -> (PathBuf, PathBuf) {
    let dir = tempdir(test);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let installed = dir.join(lib.file_name().unwrap());
    std::fs::copy(lib, &installed).unwrap();
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, installed)
}

/// Runs `hostwatch test-notify CHANNEL` with a config holding one plugin channel.
fn test_notify(dir: &Path, lib: &Path, plugin_config: Value, extra: &[&str]) -> Output {
    let config = json!({
        "host": "plugin-test",
        "channels": {"team": {"type": "plugin", "path": lib, "config": plugin_config}},
    });
    let config = write(dir, "config.json", &config.to_string());
    let mut args = vec!["test-notify", "team", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

fn assert_fails_with(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "stdout {}\nstderr {}", stdout(out), stderr(out));
    assert!(stderr(out).contains(needle), "expected {needle:?} in:\n{}", stderr(out));
}

#[test]
fn the_c_example_appends_the_event_as_a_json_line() {
    let (dir, lib) = install("plugin-c", c_example());
    let file = dir.join("alerts.jsonl");
    let out = test_notify(&dir, &lib, json!({"path": file}), &["--severity", "critical"]);
    assert!(out.status.success(), "stdout {}\nstderr {}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("team: accepted: plugin jsonl: appended"), "{}", stdout(&out));
    let lines = common::json_lines(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["host"], "plugin-test");
    assert_eq!(lines[0]["rule"], "hostwatch_test");
    assert_eq!(lines[0]["severity"], "critical");
    assert_eq!(lines[0]["test"], true);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dry_run_shows_the_event_and_does_not_deliver() {
    let (dir, lib) = install("plugin-dry-run", c_example());
    let file = dir.join("alerts.jsonl");
    let out = test_notify(&dir, &lib, json!({"path": file}), &["--dry-run"]);
    assert!(out.status.success(), "stderr {}", stderr(&out));
    let shown: Value = serde_json::from_str(&stdout(&out)).expect("the event JSON");
    assert_eq!(shown["plugin"], lib.display().to_string());
    assert_eq!(shown["receives"]["rule"], "hostwatch_test");
    assert_eq!(shown["receives"]["host"], "plugin-test");
    // A dry run neither loads the plugin (its init would create the file) nor calls it.
    assert!(!file.exists(), "the plugin was loaded during a dry run");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plugin_init_errors_carry_the_plugins_message() {
    let (dir, lib) = install("plugin-init", c_example());
    let out = test_notify(&dir, &lib, json!({"file": "/tmp/x"}), &[]);
    assert_fails_with(&out, "plugin jsonl (");
    assert_fails_with(&out, "init failed: config: unknown key \"file\" (expected \"path\")");
    let out = test_notify(&dir, &lib, json!({}), &[]);
    assert_fails_with(
        &out,
        "init failed: config: \"path\" (the file to append JSON lines to) is required",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_rust_example_sends_the_alert_to_a_syslog_socket() {
    let (dir, lib) = install("plugin-rust", rust_example());
    let socket_path = dir.join("log.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let config = json!({"socket": socket_path, "tag": "hw-test", "facility": "local0"});
    let out = test_notify(&dir, &lib, config, &["--severity", "critical"]);
    assert!(out.status.success(), "stdout {}\nstderr {}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("team: accepted: plugin syslog: sent to"), "{}", stdout(&out));
    let mut buf = vec![0u8; 65536];
    let n = socket.recv(&mut buf).expect("a datagram from the plugin");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    // local0 (16) * 8 + crit (2) = 130
    assert!(message.starts_with("<130>hw-test["), "{message}");
    assert!(message.contains("]: CRITICAL firing hostwatch_test on plugin-test"), "{message}");
    assert!(message.contains(" key=hostwatch_test:"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_retry_status_is_a_temporary_failure() {
    let (dir, lib) = install("plugin-retry", rust_example());
    let config = json!({"socket": dir.join("nobody-listens.sock")});
    let out = test_notify(&dir, &lib, config, &[]);
    assert_fails_with(&out, "team: plugin syslog asks to retry later: cannot send to");
    assert!(stderr(&out).trim_end().ends_with("(temporary)"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_panicking_rust_plugin_does_not_crash_hostwatch() {
    let (dir, lib) = install("plugin-panic", rust_example());
    let out = test_notify(&dir, &lib, json!({"panic_on_notify": true}), &[]);
    assert_fails_with(
        &out,
        "team: plugin syslog failed: plugin panicked in notify: panic_on_notify is set in this \
         channel's config (permanent)",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_library_of_another_abi_version_is_refused() {
    let lib = test_library("plugin_wrong_abi.c", &[], "libwrong_abi.so");
    let (dir, lib) = install("plugin-abi", &lib);
    let out = test_notify(&dir, &lib, json!({}), &[]);
    assert_fails_with(
        &out,
        "plugin ABI version mismatch: the library's table says version 2, this hostwatch speaks \
         version 1",
    );
    assert!(!stderr(&out).contains("init must not be called"));

    let lib = test_library("plugin_wrong_abi.c", &["-DENTRY=hostwatch_plugin_v2"], "libv2.so");
    let (dir2, lib) = install("plugin-abi-v2", &lib);
    let out = test_notify(&dir2, &lib, json!({}), &[]);
    assert_fails_with(
        &out,
        "missing symbol hostwatch_plugin_v1: the library exports hostwatch_plugin_v2, so it was \
         built for plugin ABI version 2",
    );
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
}

#[test]
fn a_library_without_the_entry_symbol_is_refused() {
    let lib = test_library("plugin_no_entry.c", &[], "libno_entry.so");
    let (dir, lib) = install("plugin-no-entry", &lib);
    let out = test_notify(&dir, &lib, json!({}), &[]);
    assert_fails_with(&out, &format!("channel team: plugin {}: ", lib.display()));
    assert_fails_with(&out, "missing symbol hostwatch_plugin_v1: not a hostwatch notifier plugin");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_plugin_others_could_change_is_refused() {
    let (dir, lib) = install("plugin-perms", c_example());
    let file = dir.join("alerts.jsonl");
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));

    mode(&lib, 0o666).unwrap();
    let out = test_notify(&dir, &lib, json!({"path": file}), &[]);
    assert_fails_with(
        &out,
        &format!(
            "refusing to load: plugin file {} is writable by group or others (mode 0666)",
            lib.display()
        ),
    );
    mode(&lib, 0o664).unwrap();
    assert_fails_with(&test_notify(&dir, &lib, json!({"path": file}), &[]), "(mode 0664)");

    mode(&lib, 0o644).unwrap();
    mode(&dir, 0o777).unwrap();
    let out = test_notify(&dir, &lib, json!({"path": file}), &[]);
    assert_fails_with(
        &out,
        &format!(
            "refusing to load: directory {} is writable by group or others (mode 0777) without \
             the sticky bit",
            dir.display()
        ),
    );
    // A sticky directory (like /tmp itself) is accepted: only an entry's owner can replace it.
    mode(&dir, 0o1777).unwrap();
    let out = test_notify(&dir, &lib, json!({"path": file}), &[]);
    assert!(out.status.success(), "stderr {}", stderr(&out));
    assert_eq!(common::json_lines(&std::fs::read_to_string(&file).unwrap()).len(), 1);
    mode(&dir, 0o755).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_plugin_file_is_named() {
    let dir = tempdir("plugin-missing");
    let lib = dir.join("libnothing.so");
    let out = test_notify(&dir, &lib, json!({}), &[]);
    assert_fails_with(&out, &format!("channel team: plugin {}: no such file", lib.display()));
    std::fs::remove_dir_all(dir).unwrap();
}
