//! Start-up refuses what can never work (`notify::preflight`), through the real binary:
//! `check`, `run` and `once` with a missing plugin file, a library without the entry symbol,
//! a library of another ABI version, a missing exec program and a file that is not
//! executable exit with the message naming the channel, the path and the cause; a good
//! plugin and a good exec program pass. Test libraries come from `tests/support/plugin_*.c`.

mod common;

use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A test library from `tests/support/<source>`, compiled into `dir` (0644, as installed).
#[cfg(feature = "plugins")]
fn library(dir: &Path, source: &str, name: &str) -> PathBuf {
    const ROOT: &str = env!("CARGO_MANIFEST_DIR");
    let lib = dir.join(name);
    let out = std::process::Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"])
        .arg(format!("-I{ROOT}/plugins/include"))
        .arg("-o")
        .arg(&lib)
        .arg(format!("{ROOT}/tests/support/{source}"))
        .output()
        .expect("cc is needed to build the test plugins");
    assert!(out.status.success(), "cc {source}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).unwrap();
    lib
}

/// A private directory (0755) for one test, so the trust checks pass.
fn private_dir(test: &str) -> PathBuf {
    let dir = tempdir(&format!("preflight-{test}"));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A config with one channel `name` and `state_dir` inside `dir`.
fn config(dir: &Path, name: &str, channel: Value) -> PathBuf {
    let config = json!({
        "host": "preflight-test",
        "interval": "1s",
        "state_dir": dir.join("state"),
        "channels": {name: channel},
        "routes": [{"channels": [name]}],
    });
    write(dir, "config.json", &config.to_string())
}

fn hostwatch(command: &str, config: &Path) -> Output {
    let config = config.to_str().unwrap();
    match command {
        "once" => run(&["once", "--config", config, "--first-interval", "100ms"]),
        _ => run(&[command, "--config", config]),
    }
}

/// `check` and `run` exit 2 with `message` on stderr; `once` keeps its Nagios convention
/// for an invalid config (UNKNOWN, exit 3) and prints the same message.
fn assert_refused(config: &Path, message: &str) {
    for command in ["check", "run", "once"] {
        let out = hostwatch(command, config);
        let expected = if command == "once" { 3 } else { 2 };
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{command}: stdout {}\nstderr {}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(message),
            "{command}: expected {message:?} in:\n{}",
            stderr(&out)
        );
        if command == "once" {
            assert!(
                stdout(&out).contains("HOSTWATCH UNKNOWN - invalid config"),
                "{}",
                stdout(&out)
            );
        }
    }
}

#[test]
fn a_missing_exec_program_is_refused() {
    let dir = private_dir("exec-missing");
    let c =
        config(&dir, "pager", json!({"type": "exec", "command": ["/nonexistent/bin/page", "-x"]}));
    assert_refused(&c, "hostwatch: channel pager: /nonexistent/bin/page: no such file");
    let c = config(
        &dir,
        "pager",
        json!({"type": "exec", "command": ["no-such-page"], "env": {"PATH": "/nonexistent"}}),
    );
    assert_refused(&c, "channel pager: no-such-page: not found in the hook's PATH");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_non_executable_exec_file_is_refused() {
    let dir = private_dir("exec-noexec");
    let hook = write(&dir, "hook.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = config(&dir, "pager", json!({"type": "exec", "command": [hook]}));
    assert_refused(
        &c,
        &format!("channel pager: {}: not executable by us (chmod +x)", hook.display()),
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_good_exec_program_passes_check() {
    let dir = private_dir("exec-good");
    let hook = write(&dir, "hook.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = config(&dir, "pager", json!({"type": "exec", "command": [hook]}));
    let out = hostwatch("check", &c);
    assert_eq!(out.status.code(), Some(0), "stderr {}", stderr(&out));
    let c = config(&dir, "pager", json!({"type": "exec", "command": ["sh", "-c", "true"]}));
    let out = hostwatch("check", &c);
    assert_eq!(out.status.code(), Some(0), "stderr {}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "plugins")]
#[test]
fn a_missing_plugin_file_is_refused() {
    let dir = private_dir("plugin-missing");
    let lib = dir.join("libnothing.so");
    let c = config(&dir, "jsonl", json!({"type": "plugin", "path": lib}));
    assert_refused(&c, &format!("hostwatch: channel jsonl: {}: no such file", lib.display()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "plugins")]
#[test]
fn a_library_without_the_entry_symbol_is_refused() {
    let dir = private_dir("plugin-no-entry");
    let lib = library(&dir, "plugin_no_entry.c", "libnoentry.so");
    let c = config(&dir, "jsonl", json!({"type": "plugin", "path": lib}));
    assert_refused(
        &c,
        &format!(
            "channel jsonl: {}: missing symbol hostwatch_plugin_v1: not a hostwatch notifier plugin",
            lib.display()
        ),
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "plugins")]
#[test]
fn a_library_of_another_abi_version_is_refused_without_calling_init() {
    let dir = private_dir("plugin-wrong-abi");
    let lib = library(&dir, "plugin_wrong_abi.c", "libwrongabi.so");
    let c = config(&dir, "jsonl", json!({"type": "plugin", "path": lib}));
    assert_refused(
        &c,
        &format!(
            "channel jsonl: {}: plugin ABI version mismatch: the library's table says version 2, \
             this hostwatch speaks version 1",
            lib.display()
        ),
    );
    let out = hostwatch("check", &c);
    assert!(!stderr(&out).contains("init must not be called"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "plugins")]
#[test]
fn a_good_plugin_passes_check_without_init() {
    let dir = private_dir("plugin-good");
    let lib = library(&dir, "../../plugins/examples/c-jsonl/jsonl.c", "libjsonl.so");
    // The example's init opens its file: a path that cannot be opened would fail init, which
    // check never calls.
    let c = config(
        &dir,
        "jsonl",
        json!({"type": "plugin", "path": lib, "config": {"path": "/nonexistent/dir/alerts.jsonl"}}),
    );
    let out = hostwatch("check", &c);
    assert_eq!(out.status.code(), Some(0), "stderr {}", stderr(&out));
    assert!(!dir.join("alerts.jsonl").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(not(feature = "plugins"))]
#[test]
fn a_build_without_plugins_refuses_a_plugin_channel() {
    let dir = private_dir("plugin-static");
    let c = config(&dir, "jsonl", json!({"type": "plugin", "path": dir.join("libx.so")}));
    let out = hostwatch("check", &c);
    assert_eq!(out.status.code(), Some(2), "stderr {}", stderr(&out));
    assert!(stderr(&out).contains("built without plugin support"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}
