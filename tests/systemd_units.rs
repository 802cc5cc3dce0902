//! The shipped systemd units (packaging/systemd) are clean for `systemd-analyze verify`
//! (run on copies whose `/usr/bin/hostwatch` is the binary under test, since verify wants an
//! existing executable), the services' `systemd-analyze security --offline=yes` exposure is
//! at most 2.0 (printed), and the sandbox keeps what hostwatch needs: no setting that would
//! hide /proc, the network or the real owners of plugin files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 3] = ["hostwatch.service", "hostwatch-once.service", "hostwatch-once.timer"];
const MAX_EXPOSURE: f64 = 2.0;

fn unit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd")
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(unit_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze").args(args).output().unwrap_or_else(|e| {
        panic!(
            "systemd-analyze is needed to check the units ({e}): apt-get install systemd \
             (scripts/test.sh installs it)"
        )
    })
}

/// The settings of `[Service]` (and the other sections), `Key=value` lines without comments.
fn settings(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect()
}

fn value<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    settings(text).into_iter().filter(|(k, _)| *k == key).map(|(_, v)| v).collect()
}

#[test]
fn systemd_analyze_verify_is_clean_on_every_unit() {
    let dir = common::tempdir("systemd-verify");
    let mut files = Vec::new();
    for name in UNITS {
        let text = unit(name).replace("/usr/bin/hostwatch", common::bin());
        files.push(common::write(&dir, name, &text).to_str().unwrap().to_string());
    }
    let mut args = vec!["verify", "--man=no"];
    args.extend(files.iter().map(String::as_str));
    let out = analyze(&args);
    let err = common::stderr(&out);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify:\n{err}");
}

#[test]
fn the_services_exposure_is_at_most_two() {
    for name in ["hostwatch.service", "hostwatch-once.service"] {
        let path = unit_dir().join(name);
        let out = analyze(&["security", "--offline=yes", path.to_str().unwrap()]);
        let text = common::stdout(&out);
        let line =
            text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| {
                panic!("no exposure figure for {name}:\n{text}{}", common::stderr(&out))
            });
        println!(
            "systemd-analyze security --offline=yes packaging/systemd/{name}: {}",
            line.trim()
        );
        let figure: f64 = line
            .split(':')
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable figure: {line}"));
        assert!(figure <= MAX_EXPOSURE, "{name}: exposure {figure} > {MAX_EXPOSURE}\n{text}");
    }
}

#[test]
fn the_service_is_a_notify_service_with_a_watchdog_checked_before_start() {
    let text = unit("hostwatch.service");
    for (key, want) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("StateDirectory", "hostwatch"),
        ("User", "hostwatch"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("ExecStart", "/usr/bin/hostwatch run"),
        ("ExecStartPre", "/usr/bin/hostwatch check"),
        ("CapabilityBoundingSet", ""),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ] {
        assert_eq!(value(&text, key), [want], "hostwatch.service {key}=");
    }
    assert!(value(&text, "SystemCallFilter").contains(&"@system-service"));
    // Six default intervals (5 s) fit in it: a slow tick is not a restart.
    let watchdog = value(&text, "WatchdogSec");
    assert_eq!(watchdog, ["30s"], "WatchdogSec");

    let once = unit("hostwatch-once.service");
    assert_eq!(value(&once, "Type"), ["oneshot"]);
    assert_eq!(value(&once, "SuccessExitStatus"), ["1 2"], "WARNING and CRITICAL are findings");
    let timer = unit("hostwatch-once.timer");
    assert_eq!(value(&timer, "OnCalendar"), ["minutely"]);
}

#[test]
fn the_units_do_not_pin_a_config_file() {
    // Without `--config` hostwatch reads /etc/hostwatch/config.json, else config.yaml: a host
    // with only a YAML config must start too.
    for name in ["hostwatch.service", "hostwatch-once.service"] {
        let text = unit(name);
        let lines: Vec<&str> =
            ["ExecStartPre", "ExecStart"].iter().flat_map(|key| value(&text, key)).collect();
        assert!(!lines.is_empty(), "{name} runs hostwatch");
        for line in lines {
            assert!(line.starts_with("/usr/bin/hostwatch "), "{name}: {line}");
            assert!(!line.contains("--config") && !line.contains("config."), "{name}: {line}");
        }
    }
    assert_eq!(
        value(&unit("hostwatch-once.service"), "ExecStart"),
        ["/usr/bin/hostwatch once --format nagios"]
    );
}

#[test]
fn the_sandbox_keeps_what_hostwatch_reads() {
    // Each of these would lower the exposure figure and break a documented feature.
    let breaks = [
        ("ProtectProc", "process checks read other users' /proc/PID"),
        ("ProcSubset", "/proc/stat, /proc/meminfo, /proc/net are the metrics"),
        ("PrivateNetwork", "every channel and the API use the network"),
        ("PrivateUsers", "plugin files must show their real owner (root) to pass the trust check"),
        ("MemoryDenyWriteExecute", "exec hooks inherit it: a hook in a JIT language would crash"),
        ("IPAddressDeny", "receivers may be anywhere"),
    ];
    for name in ["hostwatch.service", "hostwatch-once.service"] {
        let text = unit(name);
        for (key, why) in breaks {
            assert!(value(&text, key).is_empty(), "{name}: no {key}= ({why})");
        }
        // /home stays mounted (read-only) so statvfs of a /home mount reports the real disk.
        assert_eq!(value(&text, "ProtectHome"), ["read-only"], "{name}");
    }
}
