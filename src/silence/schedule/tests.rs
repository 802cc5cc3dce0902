//! Window arithmetic around both daylight-saving switches in Lisbon, New York and Sydney, by
//! hand-worked instants and against a brute-force oracle (every minute's wall time); parsing
//! and the written form.

use super::*;
use crate::config::parse_rfc3339;

fn zone(name: &str) -> Arc<Zone> {
    Arc::new(Zone::by_name(name).unwrap_or_else(|e| panic!("{e} (is tzdata installed?)")))
}

fn every(text: &str, tz: &str) -> Schedule {
    Schedule::parse_every(text, Some(tz.into()), Ok(zone(tz))).unwrap()
}

fn t(rfc3339: &str) -> i64 {
    parse_rfc3339(rfc3339).unwrap() as i64
}

/// The window holding `at` (RFC 3339), as RFC 3339 UTC times.
fn window(s: &Schedule, at: &str) -> Option<(String, String)> {
    let (a, b) = s.window_at(t(at) as f64)?;
    Some((crate::timefmt::rfc3339(a as f64), crate::timefmt::rfc3339(b as f64)))
}

fn w(a: &str, b: &str) -> Option<(String, String)> {
    Some((a.to_owned(), b.to_owned()))
}

#[test]
fn lisbon_spring_forward_2027() {
    // 2027-03-28: 01:00 WET becomes 02:00 WEST at 01:00 UTC; 01:00-02:00 never shows.
    let s = every("sun 02:00-04:00", "Europe/Lisbon");
    // 02:00 WEST is the switch itself; 04:00 WEST is 03:00 UTC: two hours.
    assert_eq!(
        window(&s, "2027-03-28T01:00:00Z"),
        w("2027-03-28T01:00:00Z", "2027-03-28T03:00:00Z")
    );
    assert_eq!(window(&s, "2027-03-28T00:59:59Z"), None);
    assert_eq!(window(&s, "2027-03-28T03:00:00Z"), None);
    // The Sunday before: WET all day, 02:00-04:00 UTC.
    assert_eq!(
        window(&s, "2027-03-21T03:59:59Z"),
        w("2027-03-21T02:00:00Z", "2027-03-21T04:00:00Z")
    );
    // A start in the gap begins at the first instant after it.
    let s = every("sun 01:30-03:00", "Europe/Lisbon");
    assert_eq!(
        window(&s, "2027-03-28T01:00:00Z"),
        w("2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z")
    );
    assert_eq!(window(&s, "2027-03-28T00:59:59Z"), None);
    // An end in the gap ends there.
    let s = every("sun 00:30-01:30", "Europe/Lisbon");
    assert_eq!(
        window(&s, "2027-03-28T00:59:59Z"),
        w("2027-03-28T00:30:00Z", "2027-03-28T01:00:00Z")
    );
    assert_eq!(window(&s, "2027-03-28T01:00:00Z"), None);
    // A window wholly in the gap does not happen that day, and does the next week.
    let s = every("sun 01:15-01:45", "Europe/Lisbon");
    assert_eq!(
        s.next_window(t("2027-03-28T00:00:00Z") as f64).map(|w| w.0),
        Some(t("2027-04-04T00:15:00Z"))
    );
}

#[test]
fn lisbon_fall_back_2027() {
    // 2027-10-31: 02:00 WEST becomes 01:00 WET at 01:00 UTC; 01:00-02:00 shows twice.
    let s = every("sun 02:00-04:00", "Europe/Lisbon");
    assert_eq!(
        window(&s, "2027-10-31T02:00:00Z"),
        w("2027-10-31T02:00:00Z", "2027-10-31T04:00:00Z")
    );
    assert_eq!(window(&s, "2027-10-31T01:59:59Z"), None);
    // An end in the repeated hour is its second occurrence: no hole in the window, even
    // at 00:45 UTC (01:45 WEST, after the first 01:30).
    let s = every("sun 00:30-01:30", "Europe/Lisbon");
    for at in ["2027-10-30T23:30:00Z", "2027-10-31T00:45:00Z", "2027-10-31T01:29:59Z"] {
        assert_eq!(window(&s, at), w("2027-10-30T23:30:00Z", "2027-10-31T01:30:00Z"), "{at}");
    }
    assert_eq!(window(&s, "2027-10-31T01:30:00Z"), None);
    assert_eq!(window(&s, "2027-10-30T23:29:59Z"), None);
    // A start in the repeated hour is its first occurrence.
    let s = every("sun 01:30-03:00", "Europe/Lisbon");
    assert_eq!(
        window(&s, "2027-10-31T00:30:00Z"),
        w("2027-10-31T00:30:00Z", "2027-10-31T03:00:00Z")
    );
    assert_eq!(window(&s, "2027-10-31T00:29:59Z"), None);
}

#[test]
fn new_york_both_switches_and_midnight_windows() {
    // 2027-03-14: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
    let s = every("sat-sun 22:00-02:30", "America/New_York");
    // Saturday's window crosses midnight and its end falls in the gap.
    assert_eq!(
        window(&s, "2027-03-14T06:59:59Z"),
        w("2027-03-14T03:00:00Z", "2027-03-14T07:00:00Z")
    );
    assert_eq!(window(&s, "2027-03-14T07:00:00Z"), None);
    // Sunday's, in EDT.
    assert_eq!(
        window(&s, "2027-03-15T02:00:00Z"),
        w("2027-03-15T02:00:00Z", "2027-03-15T06:30:00Z")
    );
    // Monday 01:00 belongs to Sunday's window; Tuesday 01:00 to Monday's, not listed.
    assert!(window(&s, "2027-03-15T05:00:00Z").is_some());
    assert_eq!(window(&s, "2027-03-16T05:00:00Z"), None);
    // 2027-11-07: 02:00 EDT becomes 01:00 EST at 06:00 UTC.
    let s = every("sun 01:30-02:30", "America/New_York");
    assert_eq!(
        window(&s, "2027-11-07T05:30:00Z"),
        w("2027-11-07T05:30:00Z", "2027-11-07T07:30:00Z")
    );
    assert_eq!(window(&s, "2027-11-07T05:29:59Z"), None);
    let s = every("mon-fri 22:00-06:00", "America/New_York");
    // Friday night into Saturday is Friday's window; Sunday night into Monday is nobody's.
    assert!(window(&s, "2027-11-06T09:00:00Z").is_some(), "Saturday 05:00 EDT");
    assert_eq!(window(&s, "2027-11-08T10:00:00Z"), None, "Monday 05:00 EST");
    assert!(window(&s, "2027-11-09T10:00:00Z").is_some(), "Tuesday 05:00 EST");
}

#[test]
fn sydney_in_the_southern_hemisphere() {
    // 2027-04-04: 03:00 AEDT becomes 02:00 AEST at 16:00 UTC on the 3rd.
    let s = every("sun 02:00-04:00", "Australia/Sydney");
    assert_eq!(
        window(&s, "2027-04-03T15:00:00Z"),
        w("2027-04-03T15:00:00Z", "2027-04-03T18:00:00Z")
    );
    // 2027-10-03: 02:00 AEST becomes 03:00 AEDT at 16:00 UTC on the 2nd.
    assert_eq!(
        window(&s, "2027-10-02T16:00:00Z"),
        w("2027-10-02T16:00:00Z", "2027-10-02T17:00:00Z")
    );
    assert_eq!(window(&s, "2027-10-02T15:59:59Z"), None);
    // An end the clock is set back to exactly (02:00) is its first occurrence: the hour
    // after reads 02:00-02:59, outside the window.
    let s = every("sat 03:00-02:00", "Australia/Sydney");
    assert_eq!(
        window(&s, "2027-04-03T14:59:59Z"),
        w("2027-04-02T16:00:00Z", "2027-04-03T15:00:00Z")
    );
    assert_eq!(window(&s, "2027-04-03T15:00:00Z"), None);
}

/// Minute by minute: a window is the span from the first instant whose wall time is inside it
/// to the last, for every schedule and zone here, across both switches of 2027.
#[test]
fn windows_match_a_brute_force_oracle_around_each_switch() {
    let cases = [
        ("Europe/Lisbon", ["2027-03-26T00:00:00Z", "2027-10-29T00:00:00Z"]),
        ("America/New_York", ["2027-03-12T00:00:00Z", "2027-11-05T00:00:00Z"]),
        ("Australia/Sydney", ["2027-04-01T00:00:00Z", "2027-09-30T00:00:00Z"]),
        ("Europe/Berlin", ["2027-03-26T00:00:00Z", "2027-10-29T00:00:00Z"]),
    ];
    let specs = [
        "01:30-03:00",
        "02:00-04:00",
        "00:30-01:30",
        "02:15-02:45",
        "22:00-02:30",
        "sun 23:00-01:30",
        "sat,sun 03:00-02:00",
    ];
    for (name, starts) in cases {
        let z = zone(name);
        for spec in specs {
            let s = every(spec, name);
            for start in starts {
                let begin = t(start);
                let minutes = 5 * 24 * 60;
                // Oracle: per window start day, the minutes whose wall time is inside.
                let mut spans: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
                for k in 0..minutes + 2 * 24 * 60 {
                    let at = begin - 24 * 3600 + k * 60;
                    let wall = at + i64::from(z.at(at).offset);
                    let (day, m) = (wall.div_euclid(86_400), wall.rem_euclid(86_400) / 60);
                    let (from, to) = (i64::from(s.from), i64::from(s.to));
                    let start_day = if to > from {
                        (from <= m && m < to).then_some(day)
                    } else if m >= from {
                        Some(day)
                    } else {
                        (m < to).then_some(day - 1)
                    };
                    if let Some(d) =
                        start_day.filter(|d| s.days & (1 << (d + 3).rem_euclid(7)) != 0)
                    {
                        let e = spans.entry(d).or_insert((at, at));
                        e.0 = e.0.min(at);
                        e.1 = e.1.max(at + 60);
                    }
                }
                for k in 0..minutes {
                    let at = begin + k * 60;
                    let expected = spans.values().copied().find(|&(a, b)| a <= at && at < b);
                    assert_eq!(s.window_at(at as f64), expected, "{name} {spec} at {at}");
                }
            }
        }
    }
}

#[test]
fn no_time_overflows_the_arithmetic() {
    let s = every("sun 02:00-04:00", "Europe/Lisbon");
    for t in [f64::NAN, f64::INFINITY, -f64::INFINITY, 1e300, -1e300, 9.9e12, -9.9e12, 0.0] {
        let _ = (s.window_at(t), s.next_window(t));
    }
    assert_eq!(s.window_at(f64::NAN), None);
    assert!(s.next_window(9.9e12).is_some(), "far future: the footer's rule still applies");
}

#[test]
fn days_and_times_parse_and_print() {
    let s = every("Mon-FRI 22:00-06:00", "UTC");
    assert_eq!(s.to_string(), "mon-fri 22:00-06:00 UTC");
    assert_eq!(every("fri-mon 1:05-02:00", "UTC").days_text(), "mon,fri-sun");
    assert_eq!(every("sat,sunday 00:00-08:00", "UTC").days_text(), "sat,sun");
    assert_eq!(every("mon,wed,fri 00:00-08:00", "UTC").days_text(), "mon,wed,fri");
    assert_eq!(every("03:00-04:00", "UTC").days_text(), "every day");
    assert_eq!(every("mon-sun 03:00-04:00", "UTC").days_text(), "every day");
    for (bad, why) in [
        ("sun 02:00-02:00", "from and to are both 02:00"),
        ("sun 02:00", "is not HH:MM-HH:MM"),
        ("sun 24:00-01:00", "invalid time \"24:00\""),
        ("sun 02:60-03:00", "invalid time \"02:60\""),
        ("mnd 02:00-03:00", "unknown day \"mnd\""),
        ("sun mon 02:00-03:00", "is not DAYS HH:MM-HH:MM"),
        ("", "is not DAYS HH:MM-HH:MM"),
        ("sun 2-3", "invalid time \"2\""),
    ] {
        let e = Schedule::parse_every(bad, None, Ok(Arc::new(Zone::utc()))).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        if !why.starts_with("from and to") {
            assert!(e.contains("expected \"sun 02:00-04:00\""), "{bad}: {e}");
        }
    }
}

#[test]
fn the_written_form_round_trips_and_an_unknown_zone_is_kept_inactive() {
    let s = every("sat,sun 22:00-06:00", "Europe/Lisbon");
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"days": ["sat", "sun"], "from": "22:00", "to": "06:00", "tz": "Europe/Lisbon"})
    );
    let back: Schedule = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
    let bad: Schedule = serde_json::from_value(
        serde_json::json!({"from": "02:00", "to": "03:00", "tz": "Mars/Olympus"}),
    )
    .unwrap();
    assert!(bad.zone_error().unwrap().contains("unknown time zone \"Mars/Olympus\""));
    assert_eq!(bad.window_at(0.0), None);
    assert_eq!(bad.next_window(0.0), None);
    for wrong in [
        serde_json::json!({"from": "02:00", "to": "02:00"}),
        serde_json::json!({"from": "02:00", "to": "03:00", "days": []}),
        serde_json::json!({"from": "02:00", "to": "03:00", "days": ["someday"]}),
        serde_json::json!({"from": "2am", "to": "03:00"}),
    ] {
        assert!(serde_json::from_value::<Schedule>(wrong.clone()).is_err(), "{wrong}");
    }
}

#[test]
fn the_next_window_is_the_current_one_or_the_next() {
    let s = every("sun 02:00-04:00", "Europe/Lisbon");
    let (a, b) = s.next_window(t("2027-03-24T12:00:00Z") as f64).unwrap();
    assert_eq!((a, b), (t("2027-03-28T01:00:00Z"), t("2027-03-28T03:00:00Z")));
    assert_eq!(s.next_window(t("2027-03-28T02:00:00Z") as f64), Some((a, b)));
    assert_eq!(
        s.next_window(t("2027-03-28T03:00:00Z") as f64).unwrap().0,
        t("2027-04-04T01:00:00Z")
    );
}
