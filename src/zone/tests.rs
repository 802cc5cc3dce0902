//! Zones against glibc's `date` as the oracle, the DST switches of fixed zones, POSIX rules,
//! `local`, errors, and fuzzing of the TZif and POSIX TZ parsers (no input panics).

use super::posix::{Rule, days_from_civil, parse_rule};
use super::*;
use crate::timefmt::{human_in, rfc2822_in};
use proptest::prelude::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn zone(name: &str) -> Zone {
    Zone::named_in(Path::new(ZONEINFO), name)
        .unwrap_or_else(|e| panic!("{e} (is tzdata installed?)"))
}

fn tzif(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(ZONEINFO).join(name)).expect("tzdata is installed")
}

#[test]
fn berlin_across_both_dst_changes() {
    let z = zone("Europe/Berlin");
    // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    assert_eq!(human_in(&z, 1_774_745_999.0), "2026-03-29 01:59:59 CET");
    assert_eq!(human_in(&z, 1_774_746_000.0), "2026-03-29 03:00:00 CEST");
    // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
    assert_eq!(human_in(&z, 1_792_889_999.0), "2026-10-25 02:59:59 CEST");
    assert_eq!(human_in(&z, 1_792_890_000.0), "2026-10-25 02:00:00 CET");
    assert_eq!(human_in(&z, 1_796_103_000.0), "2026-12-01 06:30:00 CET");
    // After the file's last transition: the footer's rule.
    assert_eq!(human_in(&z, 4_118_126_400.0), "2100-07-01 14:00:00 CEST");
    assert_eq!(rfc2822_in(&z, 1_796_103_000.0), "Tue, 01 Dec 2026 06:30:00 +0100");
    assert_eq!(rfc2822_in(&z, 1_783_944_000.0), "Mon, 13 Jul 2026 14:00:00 +0200");
}

#[test]
fn new_york_kolkata_numeric_abbreviations_and_utc() {
    let ny = zone("America/New_York");
    assert_eq!(human_in(&ny, 1_796_103_000.0), "2026-12-01 00:30:00 EST");
    assert_eq!(human_in(&ny, 1_783_944_000.0), "2026-07-13 08:00:00 EDT");
    assert_eq!(rfc2822_in(&ny, 1_796_103_000.0), "Tue, 01 Dec 2026 00:30:00 -0500");
    let kolkata = zone("Asia/Kolkata");
    assert_eq!(human_in(&kolkata, 1_796_103_000.0), "2026-12-01 11:00:00 IST");
    assert_eq!(rfc2822_in(&kolkata, 1_796_103_000.0), "Tue, 01 Dec 2026 11:00:00 +0530");
    // tzdata writes "-03" for São Paulo: shown as the offset.
    let sp = zone("America/Sao_Paulo");
    assert_eq!(human_in(&sp, 1_796_103_000.0), "2026-12-01 02:30:00 -03:00");
    // UTC stays RFC 3339, as before the zone was configurable.
    assert_eq!(human_in(&Zone::utc(), 1_796_103_000.0), "2026-12-01T05:30:00Z");
    assert_eq!(rfc2822_in(&Zone::utc(), 1_796_103_000.0), "Tue, 01 Dec 2026 05:30:00 +0000");
    assert!(Zone::by_name("UTC").unwrap().is_utc());
    // The file Etc/UTC is a zone of its own, named as written.
    assert_eq!(human_in(&zone("Etc/UTC"), 0.0), "1970-01-01 00:00:00 UTC");
}

/// glibc's `date`, in `zone`, for each instant: `(offset seconds, abbreviation)`.
fn glibc(zone: &str, instants: &[i64]) -> Vec<(i32, String)> {
    let mut child = Command::new("date")
        .args(["-f", "-", "+%z %Z"])
        .env("TZ", zone)
        .env("TZDIR", ZONEINFO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("GNU date is needed as the oracle");
    let mut input = String::new();
    for t in instants {
        input.push_str(&format!("@{t}\n"));
    }
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "date failed for {zone}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (z, abbr) = l.split_once(' ').unwrap();
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let h: i32 = z[1..3].parse().unwrap();
            let m: i32 = z[3..5].parse().unwrap();
            (sign * (h * 3600 + m * 60), abbr.to_owned())
        })
        .collect()
}

#[test]
fn agrees_with_glibc_from_1900_to_2200() {
    // A fixed pseudo-random spread (an LCG), plus the instants around every switch of 2030
    // and 2150, which only the footer rules decide.
    let mut instants = Vec::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..400 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        instants.push(-2_208_988_800 + (x >> 11) as i64 % 9_467_280_000);
    }
    for zone_name in [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Sydney",
        "America/Sao_Paulo",
        "Africa/Casablanca",
        "Pacific/Chatham",
        "America/St_Johns",
        "Europe/Dublin",
        "Asia/Tehran",
        "America/Godthab",
    ] {
        let z = zone(zone_name);
        let mut all = instants.clone();
        for year_start in [1_893_456_000i64, 5_680_281_600] {
            let mut t = year_start;
            while t < year_start + 366 * 86_400 {
                let before = z.at(t).offset;
                if z.at(t + 3600).offset != before {
                    all.extend([t + 3599, t + 3600]);
                }
                t += 3600;
            }
        }
        let want = glibc(zone_name, &all);
        for (t, (offset, abbr)) in all.iter().zip(want) {
            let got = z.at(*t);
            // glibc's `%z` has no seconds: compare at minutes (LMT offsets have seconds).
            assert_eq!(
                (got.offset / 60 * 60, got.abbr.as_str()),
                (offset, abbr.as_str()),
                "{zone_name} at {t}"
            );
        }
    }
}

#[test]
fn posix_rules() {
    let fixed = parse_rule(b"<+0530>-5:30").unwrap();
    assert_eq!(fixed.at(0), &LocalType { offset: 19_800, dst: false, abbr: "+0530".into() });
    let us = parse_rule(b"EST5EDT,M3.2.0,M11.1.0").unwrap();
    assert_eq!(us.at(1_783_944_000).abbr, "EDT");
    assert_eq!(us.at(1_796_103_000).abbr, "EST");
    // The default rule, the US one, when a DST name has no rule.
    assert_eq!(parse_rule(b"EST5EDT").unwrap(), us);
    // Southern hemisphere: DST spans the new year.
    let sydney = parse_rule(b"AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
    assert_eq!(sydney.at(1_796_103_000).abbr, "AEDT");
    assert_eq!(sydney.at(1_783_944_000).abbr, "AEST");
    // Julian days, with and without February 29, and times past 24 h or negative.
    let j = parse_rule(b"XST3XDT,J60/25,300/-1").unwrap();
    let Rule::Dst { start, end, .. } = &j else { panic!("{j:?}") };
    // 2024 is a leap year: J60 is March 1, day 300 (from 0) is October 27.
    assert_eq!(start.utc(2024, -10_800), days_from_civil(2024, 3, 1) * 86_400 + 25 * 3600 + 10_800);
    assert_eq!(end.utc(2024, -7200), days_from_civil(2024, 10, 27) * 86_400 - 3600 + 7200);
    for bad in [
        "",
        "C",
        "CET",
        "CET-",
        "CET-1CEST,",
        "CET-1CEST,M13.1.0,M1.1.0",
        "CET-1CEST,M3.0.0,M10.5.0",
        "CET-1CEST,J0,J365",
        "CET-1CEST,M3.5.0,M10.5.0/168",
        "<AB>1",
        "CET-25",
    ] {
        assert_eq!(parse_rule(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn unknown_names_are_refused_with_a_suggestion() {
    let dir = Path::new(ZONEINFO);
    let e = Zone::named_in(dir, "Europe/Berln").unwrap_err();
    assert_eq!(e, "unknown time zone \"Europe/Berln\" (did you mean \"Europe/Berlin\"?)");
    let e = Zone::named_in(dir, "europe/berlin").unwrap_err();
    assert_eq!(e, "unknown time zone \"europe/berlin\" (did you mean \"Europe/Berlin\"?)");
    let e = Zone::named_in(dir, "Mars/Olympus_Mons").unwrap_err();
    assert!(e.starts_with("unknown time zone \"Mars/Olympus_Mons\" (expected \"UTC\""), "{e}");
    for bad in [
        "../../etc/passwd",
        "/etc/localtime",
        "Europe//Berlin",
        "Europe/.Berlin",
        "CET ",
        "zone1970.tab",
    ] {
        let e = Zone::named_in(dir, bad).unwrap_err();
        assert!(e.contains("is not a time zone name"), "{bad}: {e}");
    }
    // A file that is not TZif (tzdata ships tables beside the zones).
    let e = Zone::named_in(dir, "leapseconds").unwrap_err();
    assert!(e.ends_with("/leapseconds: not a TZif file"), "{e}");
    let e = Zone::named_in(Path::new("/nonexistent/zoneinfo"), "Europe/Berlin").unwrap_err();
    assert!(e.contains("no time zone database at /nonexistent/zoneinfo (install tzdata)"), "{e}");
}

#[test]
fn local_follows_tz_then_etc_localtime() {
    let dir = Path::new(ZONEINFO);
    let berlin_file = dir.join("Europe/Berlin");
    let at = |z: Zone| human_in(&z, 1_796_103_000.0);
    assert_eq!(
        at(Zone::local_from(Some("Asia/Kolkata"), dir, &berlin_file).unwrap()),
        "2026-12-01 11:00:00 IST"
    );
    assert_eq!(
        at(Zone::local_from(Some(":Asia/Kolkata"), dir, &berlin_file).unwrap()),
        "2026-12-01 11:00:00 IST"
    );
    let by_path = format!("{}/America/New_York", ZONEINFO);
    assert_eq!(
        at(Zone::local_from(Some(&by_path), dir, &berlin_file).unwrap()),
        "2026-12-01 00:30:00 EST"
    );
    assert_eq!(
        at(Zone::local_from(Some("<+03>-3"), dir, &berlin_file).unwrap()),
        "2026-12-01 08:30:00 +03:00"
    );
    assert_eq!(at(Zone::local_from(None, dir, &berlin_file).unwrap()), "2026-12-01 06:30:00 CET");
    // Empty TZ, and no /etc/localtime: UTC, but named `local` and so written with its name.
    let nowhere = Path::new("/nonexistent/localtime");
    assert_eq!(
        at(Zone::local_from(Some(""), dir, &berlin_file).unwrap()),
        "2026-12-01 05:30:00 UTC"
    );
    assert_eq!(at(Zone::local_from(None, dir, nowhere).unwrap()), "2026-12-01 05:30:00 UTC");
    let e = Zone::local_from(Some("Nowhere/Land"), dir, nowhere).unwrap_err();
    assert!(e.starts_with("TZ=\"Nowhere/Land\": unknown time zone"), "{e}");
}

#[test]
fn version_1_files_and_cut_files() {
    // The version 1 part of a real file alone: 32-bit times, no footer.
    let bytes = tzif("Europe/Berlin");
    let mut v1 = bytes.clone();
    v1[4] = 0;
    let z = Zone::from_tzif("v1", &v1).unwrap();
    assert_eq!(human_in(&z, 1_796_103_000.0), "2026-12-01 06:30:00 CET");
    for cut in [0, 10, 44, 100, bytes.len() - 1] {
        assert!(Zone::from_tzif("cut", &bytes[..cut]).is_err(), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn no_bytes_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), t in any::<i64>()) {
        let mut framed = b"TZif2".to_vec();
        framed.extend(&[0u8; 15]);
        framed.extend(&bytes);
        for b in [&bytes, &framed] {
            if let Ok(z) = Zone::from_tzif("fuzz", b) {
                let _ = z.at(t);
                let _ = human_in(&z, t as f64);
            }
        }
    }

    #[test]
    fn no_damaged_real_file_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        t in any::<i64>(),
    ) {
        let mut bytes = tzif("America/New_York");
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(z) = Zone::from_tzif("fuzz", &bytes) {
            let _ = z.at(t);
            let _ = human_in(&z, t as f64);
            let _ = rfc2822_in(&z, t as f64);
        }
    }

    #[test]
    fn no_posix_string_panics(s in "[A-Z<>+0-9:,./JM-]{0,40}", t in any::<i64>()) {
        if let Some(rule) = parse_rule(s.as_bytes()) {
            let _ = rule.at(t);
        }
    }
}

/// A v1 header: magic, version, 15 reserved bytes, then the six counts.
fn header(version: u8, counts: [u32; 6]) -> Vec<u8> {
    let mut b = b"TZif".to_vec();
    b.push(version);
    b.extend_from_slice(&[0; 15]);
    for c in counts {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b
}

#[test]
fn a_header_asking_for_more_than_the_file_holds_is_refused_before_anything_is_allocated() {
    // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt.
    for counts in [[0, 0, 0, 0, u32::MAX, 1], [0, 0, 0, u32::MAX, 1, 1], [0, 0, 0, 0, 1, u32::MAX]]
    {
        let mut bytes = header(0, counts);
        bytes.extend_from_slice(&[0; 64]);
        let err = Zone::from_tzif("Bad/Huge", &bytes).expect_err("refused");
        assert!(err.contains("larger than the file") || err.contains("256"), "{err}");
    }
    let mut v2 = header(b'2', [0, 0, 0, 0, 1, 1]);
    v2.extend_from_slice(&[0, 0, 0, 0, 0, 0, b'U', 0]);
    v2.extend_from_slice(&header(b'2', [0, 0, 0, 0, 300, 1])[..44]);
    assert!(Zone::from_tzif("Bad/V2", &v2).is_err());
}
