//! Inodes per mount: `disk.inodes_used_percent` and `disk.inodes_free` agree with an
//! independent reader of statvfs (Python's `os.statvfs`; psutil has no inode call), from both
//! backends (`/proc` and sysinfo), and a
//! tmpfs with 64 inodes filled with empty files fires the embedded default `disk_inodes`
//! rule while its space is nearly all free. Needs root for `mount -t tmpfs`.

mod common;

use common::tmpfs::Tmpfs;
use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::process::Command;

fn sample() -> Value {
    sample_with("auto")
}

fn sample_with(backend: &str) -> Value {
    let o = run(&["sample", "--format", "json", "--over", "200ms", "--backend", backend]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("one JSON document")
}

/// (percent used, available) of `path`'s inodes as df -i computes them, read by Python.
fn python_inodes(path: &str) -> (f64, f64) {
    let script = "import os,sys; s=os.statvfs(sys.argv[1]); u=s.f_files-s.f_ffree; \
                  print(100.0*u/(u+s.f_favail), s.f_favail)";
    let o = Command::new("python3").args(["-c", script, path]).output().expect("python3");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().expect("a number"));
    (it.next().expect("percent"), it.next().expect("available"))
}

#[test]
fn inode_figures_match_statvfs_read_independently() {
    check_inodes(sample());
}

#[test]
fn the_sysinfo_backend_reports_the_same_inodes() {
    check_inodes(sample_with("sysinfo"));
}

fn check_inodes(doc: Value) {
    let m = &doc["metrics"];
    let percent = m["disk.inodes_used_percent{mount=/}"].as_f64();
    let free = m["disk.inodes_free{mount=/}"].as_f64();
    let (Some(percent), Some(free)) = (percent, free) else {
        // A root file system that reports no inodes (btrfs) must not show 0.
        let (_, py_free) = python_inodes("/");
        assert_eq!(py_free, 0.0, "hostwatch reports no inodes for / but statvfs has some: {doc}");
        return;
    };
    let (py_percent, py_free) = python_inodes("/");
    assert!((percent - py_percent).abs() < 0.5, "inodes used {percent} vs {py_percent}");
    // Files come and go between the two reads: within 1 % of the free count (or 1,000).
    assert!(
        (free - py_free).abs() <= (py_free * 0.01).max(1000.0),
        "inodes free {free} vs {py_free}"
    );
}

#[test]
fn a_file_system_out_of_inodes_fires_the_default_inode_rule() {
    let fs = Tmpfs::mount_with(
        &std::env::temp_dir().join(format!("hostwatch-inodes-{}", std::process::id())),
        "size=4m,nr_inodes=64",
    );
    if !fs.mounted {
        eprintln!("!!!!! SKIPPED inodes: mount -t tmpfs failed (not root?)");
        return;
    }
    let mut made = 0;
    while std::fs::write(fs.path.join(format!("f{made}")), b"").is_ok() {
        made += 1;
        assert!(made < 1000, "nr_inodes=64 did not limit the inodes");
    }
    let mount = fs.path.display().to_string();
    let dir = tempdir("inodes-once");
    // No `rules` key: the embedded default rules watch every mount.
    let cfg = json!({"host": "inode-host", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "collect": {"include": {"mount": [mount]}}});
    let path = write(&dir, "config.json", &cfg.to_string());
    let o = run(&[
        "once",
        "--config",
        path.to_str().unwrap(),
        "--format",
        "json",
        "--first-interval",
        "200ms",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(o.status.code(), Some(2), "{doc}");
    let fired: Vec<&Value> = doc["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["rule"] == "disk_inodes" && n["event"] == "firing")
        .collect();
    assert_eq!(fired.len(), 1, "{doc}");
    assert_eq!(fired[0]["series"], format!("disk.inodes_used_percent{{mount={mount}}}"));
    assert_eq!(fired[0]["severity"], "critical");
    assert_eq!(fired[0]["value"], 100.0, "{made} files made: {doc}");
    // Its space is nearly all free: the space rule does not fire.
    assert!(
        doc["notifications"].as_array().unwrap().iter().all(|n| n["rule"] != "disk_used"),
        "{doc}"
    );
}
