//! `scripts/install.sh` into a temporary DESTDIR: the documented tree with its modes, the
//! same tree when run twice, an edited config kept on re-install (the new default beside it),
//! `--uninstall` keeping only the config and the state directory, `--purge` leaving nothing,
//! and `--prefix` reaching the units' paths.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct TempRoot(PathBuf);

impl TempRoot {
    fn new(tag: &str) -> TempRoot {
        let p =
            std::env::temp_dir().join(format!("hostwatch-install-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempRoot(p)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn install(destdir: &Path, extra: &[&str]) -> Output {
    let out = Command::new(root().join("scripts/install.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_hostwatch"), "--destdir"])
        .arg(destdir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh {extra:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every path under `dir` (relative) with its mode, and a file's bytes.
fn tree(dir: &Path) -> BTreeMap<String, (u32, Option<Vec<u8>>)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Option<Vec<u8>>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (mode, None));
                walk(base, &path, out);
            } else {
                out.insert(rel, (mode, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn modes(t: &BTreeMap<String, (u32, Option<Vec<u8>>)>) -> Vec<(String, u32)> {
    t.iter().filter(|(p, _)| !p.ends_with('/')).map(|(p, (m, _))| (p.clone(), *m)).collect()
}

/// The files of the README's Install table, with their modes (directories are 0755 but the
/// state directory, 0750).
const FILES: &[(&str, u32)] = &[
    ("etc/hostwatch/config.json", 0o640),
    ("usr/bin/hostwatch", 0o755),
    ("usr/lib/systemd/system/hostwatch-once.service", 0o644),
    ("usr/lib/systemd/system/hostwatch-once.timer", 0o644),
    ("usr/lib/systemd/system/hostwatch.service", 0o644),
    ("usr/share/bash-completion/completions/hostwatch", 0o644),
    ("usr/share/doc/hostwatch/README.md", 0o644),
    ("usr/share/doc/hostwatch/config.example.json", 0o644),
    ("usr/share/doc/hostwatch/config.example.yaml", 0o644),
    ("usr/share/fish/vendor_completions.d/hostwatch.fish", 0o644),
    ("usr/share/man/man1/hostwatch.1", 0o644),
    ("usr/share/zsh/vendor-completions/_hostwatch", 0o644),
];

#[test]
fn installs_the_documented_tree_and_twice_is_the_same() {
    let d = TempRoot::new("tree");
    let out = install(&d.0, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("the user hostwatch is not created"));
    let first = tree(&d.0);
    let expected: Vec<(String, u32)> = FILES.iter().map(|(p, m)| (p.to_string(), *m)).collect();
    assert_eq!(modes(&first), expected);
    for (path, (mode, _)) in first.iter().filter(|(p, _)| p.ends_with('/')) {
        let want = if path == "var/lib/hostwatch/" { 0o750 } else { 0o755 };
        assert_eq!(*mode, want, "{path}");
    }
    assert!(first.contains_key("var/lib/hostwatch/"));
    // The README documents every file where it lands.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for (path, _) in FILES {
        assert!(readme.contains(&format!("`/{path}`")), "README's Install table lacks /{path}");
    }
    // What is installed is what the repository holds and the binary prints.
    let file = |p: &str| first[p].1.clone().unwrap();
    assert_eq!(
        file("etc/hostwatch/config.json"),
        std::fs::read(root().join("packaging/config.json")).unwrap()
    );
    assert_eq!(
        file("usr/share/doc/hostwatch/config.example.json"),
        std::fs::read(root().join("config.json")).unwrap()
    );
    assert_eq!(
        file("usr/share/man/man1/hostwatch.1"),
        std::fs::read(root().join("packaging/man/hostwatch.1")).unwrap()
    );
    assert_eq!(
        file("usr/lib/systemd/system/hostwatch.service"),
        std::fs::read(root().join("packaging/systemd/hostwatch.service")).unwrap()
    );
    assert_eq!(
        file("usr/share/bash-completion/completions/hostwatch"),
        std::fs::read(root().join("packaging/completions/hostwatch.bash")).unwrap()
    );

    install(&d.0, &[]);
    assert!(tree(&d.0) == first, "a second install changed the tree");
}

#[test]
fn an_edited_config_survives_a_reinstall_and_uninstall_keeps_it() {
    let d = TempRoot::new("keep");
    install(&d.0, &[]);
    let config = d.0.join("etc/hostwatch/config.json");
    std::fs::write(&config, "{\"host\": \"edited\"}\n").unwrap();
    std::fs::write(d.0.join("var/lib/hostwatch/state.json"), "{}").unwrap();
    let out = install(&d.0, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(
        "kept your /etc/hostwatch/config.json; the new default is /etc/hostwatch/config.json.new"
    ));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "{\"host\": \"edited\"}\n");
    let new = d.0.join("etc/hostwatch/config.json.new");
    assert_eq!(
        std::fs::read(&new).unwrap(),
        std::fs::read(root().join("packaging/config.json")).unwrap()
    );
    assert_eq!(std::fs::metadata(&new).unwrap().permissions().mode() & 0o777, 0o640);
    let again = tree(&d.0);
    install(&d.0, &[]);
    assert!(tree(&d.0) == again, "a re-install over an edited config changed the tree");

    install(&d.0, &["--uninstall"]);
    let left: Vec<String> = tree(&d.0).into_keys().collect();
    assert_eq!(
        left,
        [
            "etc/",
            "etc/hostwatch/",
            "etc/hostwatch/config.json",
            "var/",
            "var/lib/",
            "var/lib/hostwatch/",
            "var/lib/hostwatch/state.json"
        ]
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "{\"host\": \"edited\"}\n");

    install(&d.0, &["--uninstall", "--purge"]);
    assert!(tree(&d.0).is_empty(), "purge left {:?}", tree(&d.0).keys().collect::<Vec<_>>());
}

#[test]
fn purge_after_an_install_leaves_nothing() {
    let d = TempRoot::new("purge");
    install(&d.0, &[]);
    install(&d.0, &["--uninstall", "--purge"]);
    assert!(tree(&d.0).is_empty(), "purge left {:?}", tree(&d.0).keys().collect::<Vec<_>>());
}

#[test]
fn another_prefix_moves_the_files_and_the_units_paths() {
    let d = TempRoot::new("prefix");
    install(&d.0, &["--prefix", "/usr/local"]);
    assert!(d.0.join("usr/local/bin/hostwatch").is_file());
    assert!(d.0.join("usr/local/share/man/man1/hostwatch.1").is_file());
    assert!(!d.0.join("usr/bin").exists());
    let unit = std::fs::read_to_string(d.0.join("usr/local/lib/systemd/system/hostwatch.service"))
        .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/hostwatch run"), "{unit}");
    assert!(!unit.contains("/usr/bin/hostwatch"));
    // The config and the state stay where the units look for them.
    assert!(
        d.0.join("etc/hostwatch/config.json").is_file() && d.0.join("var/lib/hostwatch").is_dir()
    );
}

#[test]
fn a_wrong_argument_is_refused_with_a_sentence() {
    let out = Command::new(root().join("scripts/install.sh")).args(["--purge"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "install.sh: --purge goes with --uninstall\n");
    let out =
        Command::new(root().join("scripts/install.sh")).args(["--prefix", "usr"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prefix must be an absolute path"));
}
