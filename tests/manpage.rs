//! The man page: the committed `packaging/man/hostwatch.1` is what the command table renders
//! (regenerate with `HOSTWATCH_BLESS=1 cargo test --test manpage`), says what the binary's
//! `--help` says for every command, and renders in groff and man without a warning.
#![cfg(feature = "completions")]

use std::path::PathBuf;
use std::process::Command;

fn page_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging/man/hostwatch.1")
}

fn rendered() -> String {
    hostwatch::manual::roff::page(&hostwatch::manual::table())
}

#[test]
fn the_committed_page_is_the_rendered_one() {
    let fresh = rendered();
    if std::env::var_os("HOSTWATCH_BLESS").is_some() {
        std::fs::write(page_path(), &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(page_path()).unwrap_or_default();
    if committed != fresh {
        let line = committed.lines().zip(fresh.lines()).position(|(a, b)| a != b);
        panic!(
            "packaging/man/hostwatch.1 differs from the help text (first at line {}); regenerate \
             with: HOSTWATCH_BLESS=1 cargo test --test manpage",
            line.map_or("end".to_owned(), |l| (l + 1).to_string())
        );
    }
}

/// `man` output with roff's line breaks and hyphenation undone, so a sentence of `--help`
/// can be looked for in it.
fn man_text() -> String {
    let out = Command::new("man")
        .args(["-l", "-P", "cat", "--"])
        .arg(page_path())
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man (man-db) runs");
    assert!(out.status.success(), "man -l failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "man -l warned: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn words(text: &str) -> String {
    text.replace("\u{2010}", "-")
        .replace("\u{2212}", "-")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_command_says_in_the_page_what_its_help_says() {
    let page = words(&man_text());
    let table = hostwatch::manual::table();
    let mut checked = 0;
    for c in table.walk() {
        let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
            .args(&c.path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{} --help failed", c.full_name());
        let help = words(&String::from_utf8(out.stdout).unwrap());
        assert!(
            help.contains(&words(c.description)),
            "{}: --help lacks {:?}",
            c.full_name(),
            c.description
        );
        assert!(
            page.contains(&words(c.description)),
            "{}: the page lacks {:?}",
            c.full_name(),
            c.description
        );
        for f in &c.flags {
            assert!(help.contains(f.long), "{}: --help lacks {}", c.full_name(), f.long);
            if f.long == "--help" && !c.path.is_empty() {
                continue; // once, under OPTIONS
            }
            assert!(
                page.contains(&words(f.description)),
                "{} {}: the page lacks {:?}",
                c.full_name(),
                f.long,
                f.description
            );
            checked += 1;
        }
        for (code, what) in &c.exit_codes {
            assert!(
                help.contains(&format!("{code} {what}")),
                "{}: --help lacks exit code {code}",
                c.full_name()
            );
            assert!(
                page.contains(&words(what)),
                "{}: the page lacks exit code {code}",
                c.full_name()
            );
        }
    }
    assert!(checked > 40, "only {checked} flags checked");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
    ] {
        assert!(page.contains(section), "the page has no {section} section");
    }
    assert!(
        page.contains("/etc/hostwatch/config.json")
            && page.contains("/var/lib/hostwatch/state.json")
    );
}

#[test]
fn groff_renders_the_page_without_a_warning() {
    let out = Command::new("groff")
        .args(["-man", "-ww", "-z", "-K", "utf8"])
        .arg(page_path())
        .output()
        .expect("groff (groff-base) runs");
    assert!(out.status.success(), "groff failed");
    assert!(out.stderr.is_empty(), "groff warned: {}", String::from_utf8_lossy(&out.stderr));
}
