//! `hostwatch completions bash|zsh|fish`: the committed scripts in `packaging/completions/`
//! (the .deb and `scripts/install.sh` ship them) are what the binary prints (regenerate with
//! `HOSTWATCH_BLESS=1 cargo test --test completions`), each parses in its shell, and bash and
//! fish really complete with it (bash: the function called with COMP_WORDS/COMP_CWORD set, its
//! COMPREPLY read; fish: `complete -C`). zsh is checked for syntax only (its completion
//! system needs a terminal).
#![cfg(feature = "completions")]

use std::process::Command;

fn script(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(out.status.success(), "completions {shell}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_committed_scripts_are_what_the_binary_prints() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/completions");
    for (shell, file) in
        [("bash", "hostwatch.bash"), ("zsh", "_hostwatch"), ("fish", "hostwatch.fish")]
    {
        let fresh = script(shell);
        if std::env::var_os("HOSTWATCH_BLESS").is_some() {
            std::fs::write(dir.join(file), &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            committed == fresh,
            "packaging/completions/{file} differs from `hostwatch completions {shell}`; regenerate \
             with: HOSTWATCH_BLESS=1 cargo test --test completions"
        );
    }
}

fn script_file(shell: &str) -> (tempfile_dir::Dir, std::path::PathBuf) {
    let dir = tempfile_dir::Dir::new(shell);
    let path = dir.0.join(format!("hostwatch.{shell}"));
    std::fs::write(&path, script(shell)).unwrap();
    (dir, path)
}

/// A directory removed at the end of the test.
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir()
                .join(format!("hostwatch-completions-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Each line given, the words before the cursor and the word being typed (the last one,
/// perhaps empty), and what must (and must not) be offered.
const CASES: &[(&[&str], &[&str], &[&str])] = &[
    (&[""], &["sample", "once", "silence", "completions", "test-rules"], &["--format", "add"]),
    (&["on"], &["once"], &["sample"]),
    (&["-"], &["--config", "--log-level", "--version", "--help"], &["--format"]),
    (&["--log-level", ""], &["off", "debug", "trace"], &["sample"]),
    (&["--config", "/etc/hw.json", ""], &["sample", "run"], &["off"]),
    (&["-c", "x.json", "once", "--format", ""], &["text", "json", "nagios"], &["table"]),
    (
        &["once", "--"],
        &["--format", "--dry-run", "--max-gap", "--config"],
        &["--every", "--log-level"],
    ),
    (&["sample", "--backend", "p"], &["proc"], &["auto"]),
    (&["silence", ""], &["add", "list", "remove"], &["sample"]),
    (
        &["silence", "--config", "c.json", "add", "--"],
        &["--rule", "--match", "--every", "--tz"],
        &["--json"],
    ),
    (&["silence", "list", "-"], &["--json"], &["--rule"]),
    (&["history", "--format", ""], &["table", "json", "csv"], &["nagios"]),
    (&["completions", ""], &["bash", "zsh", "fish"], &[]),
    (&["test-notify", "--severity", "c"], &["critical"], &["warning"]),
];

fn check(shell: &str, line: &[&str], offered: &[String]) {
    let (_, must, must_not) = CASES.iter().find(|c| c.0 == line).unwrap();
    for m in *must {
        assert!(
            offered.iter().any(|o| o == m),
            "{shell}: `hostwatch {}` offers {offered:?}, not {m}",
            line.join(" ")
        );
    }
    for m in *must_not {
        assert!(
            !offered.iter().any(|o| o == m),
            "{shell}: `hostwatch {}` offers {m} ({offered:?})",
            line.join(" ")
        );
    }
}

#[test]
fn bash_completes_commands_flags_and_values() {
    let (_dir, path) = script_file("bash");
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(syntax.status.success(), "bash -n: {}", String::from_utf8_lossy(&syntax.stderr));
    // One bash for every case: each prints its COMPREPLY between markers.
    let mut program = format!("source '{}'\n", path.display());
    for (line, _, _) in CASES {
        let words: Vec<String> = std::iter::once("hostwatch")
            .chain(line.iter().copied())
            .map(|w| format!("'{w}'"))
            .collect();
        program.push_str(&format!(
            "COMP_WORDS=({}); COMP_CWORD={}; _hostwatch; echo '--case'; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words.join(" "),
            line.len()
        ));
    }
    let out = Command::new("bash").arg("-c").arg(&program).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let replies: Vec<Vec<String>> = text
        .split("--case\n")
        .skip(1)
        .map(|r| r.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
        .collect();
    assert_eq!(replies.len(), CASES.len());
    for ((line, _, _), offered) in CASES.iter().zip(&replies) {
        check("bash", line, offered);
    }
}

#[test]
fn fish_completes_commands_flags_and_values() {
    let (_dir, path) = script_file("fish");
    let syntax = Command::new("fish").arg("-n").arg(&path).output().expect("fish runs");
    assert!(syntax.status.success(), "fish -n: {}", String::from_utf8_lossy(&syntax.stderr));
    let mut program = format!("source '{}'\n", path.display());
    for (line, _, _) in CASES {
        program
            .push_str(&format!("echo -- '--case'; complete -C 'hostwatch {}'\n", line.join(" ")));
    }
    let out = Command::new("fish").arg("--no-config").arg("-c").arg(&program).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "fish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let replies: Vec<Vec<String>> = text
        .split("--case\n")
        .skip(1)
        // fish prints `candidate<TAB>description`; a short flag's line is `-c`.
        .map(|r| r.lines().map(|l| l.split('\t').next().unwrap().to_owned()).collect())
        .collect();
    assert_eq!(replies.len(), CASES.len());
    for ((line, _, _), offered) in CASES.iter().zip(&replies) {
        check("fish", line, offered);
    }
}

#[test]
fn zsh_script_parses_and_defines_every_command() {
    let (_dir, path) = script_file("zsh");
    let syntax = Command::new("zsh").arg("-n").arg(&path).output().expect("zsh runs");
    assert!(syntax.status.success(), "zsh -n: {}", String::from_utf8_lossy(&syntax.stderr));
    // Loading it defines one function per command (the last line calls the entry point,
    // which needs the completion system: cut it off here).
    let text = script("zsh");
    let body = text.trim_end().rsplit_once('\n').unwrap().0;
    let out = Command::new("zsh")
        .arg("-fc")
        .arg(format!("{body}\nprint -l ${{(ok)functions}} | grep '^_hostwatch'"))
        .output()
        .unwrap();
    let defined = String::from_utf8(out.stdout).unwrap();
    for f in [
        "_hostwatch",
        "_hostwatch__once",
        "_hostwatch__silence",
        "_hostwatch__silence__add",
        "_hostwatch__test_rules",
    ] {
        assert!(defined.lines().any(|l| l == f), "zsh: {f} not defined ({defined})");
    }
    assert!(text.starts_with("#compdef hostwatch\n"));
    assert!(text.contains(
        "'--format[output format: text, json or nagios (default: text)]:format:(text json nagios)'"
    ));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unknown shell \"tcsh\" (expected bash, zsh or fish)")
    );
}
