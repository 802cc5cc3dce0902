//! `collect.root`: the host's `/` seen at another path, as in a container with the host's `/`
//! mounted at `/host`. A real tmpfs mounted below a root directory is reported by its path
//! below the root, with the figures of that tmpfs, and nothing outside the root is; `check`
//! and `sample` refuse a root that cannot work. Needs root for `mount -t tmpfs`.

mod common;

use common::tmpfs::Tmpfs;
use common::{run, stderr, stdout, tempdir, write};
use serde_json::Value;
use std::collections::BTreeMap;

/// `disk.free` per mount label from `sample --format json`.
fn free_by_mount(config: &str) -> BTreeMap<String, f64> {
    let o = run(&["--config", config, "sample", "--format", "json", "--over", "100ms"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("sample JSON");
    let metrics = doc["metrics"].as_object().expect("metrics");
    assert!(metrics.contains_key("cpu.usage"), "the rest of the sample is there");
    metrics
        .iter()
        .filter_map(|(k, v)| {
            let mount = k.strip_prefix("disk.free{mount=")?.strip_suffix('}')?;
            Some((mount.to_owned(), v.as_f64()?))
        })
        .collect()
}

#[test]
fn mounts_below_the_root_are_named_as_seen_from_it() {
    let dir = tempdir("collect-root");
    let root = dir.join("host");
    let fs = Tmpfs::mount(&root.join("srv/data"), "4m");
    if !fs.mounted {
        eprintln!("!!!!! SKIPPED collect_root: mount -t tmpfs failed (not root?)");
        return;
    }
    let root_s = root.to_str().expect("UTF-8 temp dir");
    // tmpfs is left out by default: include every mount.
    let rooted = write(
        &dir,
        "rooted.json",
        &format!(
            "{{\"state_dir\": \"{0}/state\", \"collect\": {{\"root\": \"{root_s}/\", \"include\": {{\"mount\": [\"*\"]}}}}}}",
            dir.display()
        ),
    );
    let got = free_by_mount(rooted.to_str().unwrap());
    // Nothing but the one mount below the root; the root itself is no mount point here.
    assert_eq!(got.keys().collect::<Vec<_>>(), ["/srv/data"], "{got:?}");
    assert_eq!(got["/srv/data"], 4.0 * 1024.0 * 1024.0, "the empty 4 MiB tmpfs's free space");

    let plain = write(
        &dir,
        "plain.json",
        &format!(
            "{{\"state_dir\": \"{0}/state\", \"collect\": {{\"include\": {{\"mount\": [\"*\"]}}}}}}",
            dir.display()
        ),
    );
    let got = free_by_mount(plain.to_str().unwrap());
    assert!(got.contains_key(&format!("{root_s}/srv/data")), "without a root: {got:?}");
    assert!(got.contains_key("/"), "{got:?}");
}

#[test]
fn a_root_that_cannot_work_is_refused() {
    let dir = tempdir("collect-root-bad");
    let file = write(&dir, "not-a-dir", "");
    let config =
        write(&dir, "c.json", &format!("{{\"collect\": {{\"root\": \"{}\"}}}}", file.display()));
    let o = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("collect.root: {} is not a directory", file.display())),
        "{}",
        stderr(&o)
    );

    let config =
        write(&dir, "d.json", &format!("{{\"collect\": {{\"root\": \"{}\"}}}}", dir.display()));
    let o = run(&["--config", config.to_str().unwrap(), "sample", "--backend", "sysinfo"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "--backend sysinfo: collect.root {} needs the proc backend",
            dir.display()
        )),
        "{}",
        stderr(&o)
    );
}
