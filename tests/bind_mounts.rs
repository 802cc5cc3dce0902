//! The bind mounts systemd's sandbox adds inside a service (a directory bound onto itself, as
//! `StateDirectory=` makes) are the same disk again: `hostwatch sample` leaves them out by
//! default when the file system they come from is collected whole, `collect.include` brings
//! one back, and a bind of a directory to another path is reported. The test builds its own
//! layout in a private mount namespace (`unshare -m`, root), so it does not depend on where the
//! checkout lives and the host never sees it: a tmpfs for scratch, an ext4 image on it mounted
//! whole through a loop device (a real file system: a tmpfs is left out as pseudo anyway), a
//! subdirectory of it bound onto itself and another bound elsewhere.

mod common;

use std::path::Path;
use std::process::Command;

/// The `disk.used_percent` mount labels of one `sample --format json` output file.
fn mounts_in(file: &Path) -> Vec<String> {
    let text = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let v: serde_json::Value = serde_json::from_slice(&text).expect("sample's JSON");
    let metrics = v["metrics"].as_object().expect("metrics");
    metrics
        .keys()
        .filter_map(|k| k.strip_prefix("disk.used_percent{mount=")?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

/// True when running as root.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn have_loop_and_mkfs() -> bool {
    Path::new("/dev/loop-control").exists()
        && Command::new("mkfs.ext4").arg("-V").output().is_ok_and(|o| o.status.success())
}

#[test]
fn a_directory_bound_onto_itself_is_left_out_unless_included_and_other_binds_are_reported() {
    if !running_as_root() {
        eprintln!("bind_mounts: skipped: needs root (unshare -m, mount)");
        return;
    }
    if !have_loop_and_mkfs() {
        eprintln!("bind_mounts: skipped: needs a loop device (/dev/loop-control) and mkfs.ext4");
        return;
    }
    let base = common::tempdir("bind-mounts");
    let ns = base.join("ns");
    std::fs::create_dir_all(&ns).unwrap();
    let ns_s = ns.to_str().expect("UTF-8 temp dir").to_string();
    let (whole, self_bind, elsewhere) =
        (format!("{ns_s}/fs"), format!("{ns_s}/fs/self"), format!("{ns_s}/elsewhere"));
    let config = |name: &str, collect: serde_json::Value| {
        common::write(
            &base,
            name,
            &serde_json::json!({"rules": [], "state_dir": base.join("state"), "collect": collect})
                .to_string(),
        )
    };
    let runs = [
        ("default", config("default.json", serde_json::json!({}))),
        (
            "include",
            config(
                "include.json",
                serde_json::json!({"include": {"mount": [&whole, &self_bind, &elsewhere]}}),
            ),
        ),
        ("exclude", config("exclude.json", serde_json::json!({"exclude": {"mount": [&whole]}}))),
    ];
    let mut script = format!(
        "set -e
mount -t tmpfs -o size=32m tmpfs '{ns_s}'
truncate -s 16M '{ns_s}/img'
mkfs.ext4 -q -F '{ns_s}/img'
mkdir '{whole}'
mount -o loop '{ns_s}/img' '{whole}'
mkdir '{self_bind}' '{whole}/other' '{elsewhere}'
mount --bind '{self_bind}' '{self_bind}'
mount --bind '{whole}/other' '{elsewhere}'
"
    );
    for (name, config) in &runs {
        script.push_str(&format!(
            "'{}' sample --format json --over 100ms --config '{}' > '{}/{name}.out'\n",
            common::bin(),
            config.display(),
            base.display()
        ));
    }
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    assert!(
        out.status.success(),
        "root could not build the layout in a private mount namespace: {}",
        common::stderr(&out)
    );
    let [default, included, excluded] =
        runs.map(|(name, _)| mounts_in(&base.join(name).with_extension("out")));
    let _ = std::fs::remove_dir_all(&base);

    assert!(default.contains(&whole), "the ext4 mounted whole: {default:?}");
    assert!(!default.contains(&self_bind), "bound onto itself, the same disk again: {default:?}");
    assert!(default.contains(&elsewhere), "a bind to another path is reported: {default:?}");
    assert!(!default.contains(&ns_s), "the scratch tmpfs is pseudo: {default:?}");
    let mut included = included;
    included.sort();
    assert_eq!(included, [elsewhere.clone(), whole.clone(), self_bind.clone()], "include");
    assert!(!excluded.contains(&whole), "{excluded:?}");
    assert!(
        excluded.contains(&self_bind),
        "with its file system excluded, the bind onto itself is that disk's only figure: {excluded:?}"
    );
}
