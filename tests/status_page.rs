//! The status page in a real browser: `hostwatch run` serves `GET /` while a tmpfs mounted
//! at a hostile path (`…/<script>x</script>`) fires a rule; headless Chromium (Debian
//! `chromium`) loads the page, its DOM after load must show the mount as text and hold no
//! script element, the browser must report no CSP violation, and a phone-sized screenshot is
//! taken (its path is printed; a copy goes to `target/status-page.png`).
//!
//! Needs root for `mount -t tmpfs`; without it the hostile mount is skipped (said loudly) and
//! the page is still loaded and photographed.
//!
//! The 24-hour charts: a day of `cpu.usage` samples (20 % the first half, 80 % the second)
//! replayed into a state directory beforehand, then `hostwatch run` on it serves a page whose
//! DOM in Chromium holds the day's chart with one point per 15 minutes at those heights
//! (screenshot in `target/status-page-24h.png`); with `"history": false` the page says there
//! are no 24-hour charts.

mod common;

use common::daemon::Daemon;
use common::receiver::{Receiver, free_port};
use common::tmpfs::Tmpfs;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs Chromium headless with `args` and a fresh profile, killed if it takes over 90 s.
fn chromium(dir: &Path, args: &[&str]) -> Output {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test needs Debian's Chromium (apt-get install chromium)"
    );
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = dir.join(format!("chromium-profile-{n}"));
    std::fs::create_dir_all(&profile).unwrap();
    let out_path = dir.join(format!("chromium-{n}.out"));
    let err_path = dir.join(format!("chromium-{n}.err"));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start chromium");
    let end = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    assert!(
        output.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&profile);
    output
}

/// Polls `/status` (bounded) until `pred` holds, returning the document.
fn wait_status(base: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Ok((200, body)) = common::http("GET", &format!("{base}/status"), "") {
            let v: Value = serde_json::from_str(&body).expect("/status is JSON");
            if pred(&v) {
                return Some(v);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// The head of the answer to `GET /`, lowercased.
fn response_head(port: u16) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// Chromium's complaints about the Content-Security-Policy, from its log.
fn csp_violations(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains("Content Security Policy") || l.contains("Refused to"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_status_page_shows_a_hostile_mount_as_text_in_chromium() {
    let dir = common::tempdir("status_page");
    let hostile = dir.join("<script>x</script>");
    let fs = Tmpfs::mount(&hostile, "4m");
    let mount = hostile.display().to_string();
    if !fs.mounted {
        println!(
            "!!!!! NOTE: mount -t tmpfs failed (not root?): no hostile mount, the page is loaded \
             and photographed without it !!!!!"
        );
    }
    // Some data on it so its chart is not at zero.
    if fs.mounted {
        std::fs::write(hostile.join("fill"), vec![7u8; 1_300_000]).unwrap();
    }

    let receiver = Receiver::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = json!({
        "host": "web-01",
        "interval": "1s",
        "state_dir": dir.join("state"),
        "api": {"listen": format!("127.0.0.1:{port}")},
        "collect": {"include": {"mount": [mount, "/"]}},
        "rules": [
            {"name": "disk_hostile", "metric": "disk.used_percent", "match": {"mount": "*script*"},
             "warn": ">= 0"},
            {"name": "cpu_busy", "metric": "cpu.usage", "warn": ">= 0", "for": "1h"},
        ],
        "channels": {
            "ops": {"type": "webhook", "url": receiver.url("/hook"), "timeout": "2s"},
            "pager": {"type": "webhook", "url": format!("http://127.0.0.1:{}/x", free_port()),
                      "timeout": "2s"},
        },
        "routes": [{"channels": ["ops", "pager"]}],
        "silences": [{"rule": "cpu_*", "until": "2286-11-20T17:46:39Z",
                      "comment": "load test <b>\"window\"</b> & 'friends'"}],
    });
    let config =
        common::write(&dir, "config.json", &serde_json::to_string_pretty(&config).unwrap());
    let daemon = Daemon::start(&config, false);

    // The hostile mount fires (or, without it, the pending CPU alert shows) and a few ticks
    // have filled the charts.
    let want_firing = fs.mounted;
    let status = wait_status(&base, Duration::from_secs(60), |v| {
        let alerts = v["alerts"].as_array().map(Vec::as_slice).unwrap_or_default();
        let firing = alerts.iter().any(|a| a["rule"] == "disk_hostile" && a["state"] == "firing");
        let pending = alerts.iter().any(|a| a["rule"] == "cpu_busy");
        (firing || !want_firing) && pending && v["ticks"].as_u64().unwrap_or(0) >= 8
    });
    let status = status.unwrap_or_else(|| {
        let last = common::http("GET", &format!("{base}/status"), "");
        panic!("the alerts never showed in /status: {last:?}")
    });
    if want_firing {
        let label = status["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["rule"] == "disk_hostile")
            .map(|a| a["labels"]["mount"].clone());
        assert_eq!(label, Some(json!(mount)), "the alert is on the hostile mount");
    }

    // The page as served: escaped, no script, the strict CSP.
    let (code, page) = common::http("GET", &format!("{base}/"), "").unwrap();
    assert_eq!(code, 200);
    assert!(!page.to_ascii_lowercase().contains("<script"), "a script tag in the page");

    let head = response_head(port);
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; style-src 'sha256-"),
        "{head}"
    );

    // The DOM after Chromium parsed the page.
    let dom = chromium(&dir, &["--dump-dom", &format!("{base}/")]);
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(text.contains("<h1>web-01</h1>"), "the page did not load: {text}");
    assert!(!text.to_ascii_lowercase().contains("<script"), "a script element in the DOM:\n{text}");
    assert!(!text.contains("<script>x</script>"));
    if want_firing {
        let escaped = "&lt;script&gt;x&lt;/script&gt;";
        assert!(text.contains("<b>disk_hostile</b>"));
        assert!(
            text.contains(&format!("<span class=\"lbl\">{}/{escaped}</span>", dir.display())),
            "the hostile mount's row, as text:\n{text}"
        );
        assert!(text.contains(&format!("mount={}/{escaped}}}", dir.display())), "{text}");
    }
    assert!(text.contains("load test &lt;b&gt;\"window\"&lt;/b&gt; &amp; 'friends'"), "{text}");
    assert!(!text.contains("<b>\"window\"</b>"));
    let violations = csp_violations(&dom.stderr);
    assert!(violations.is_empty(), "CSP violations: {violations:#?}");

    // A phone-sized screenshot.
    let png = dir.join("status-page.png");
    let shot = chromium(
        &dir,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=412,1600",
            &format!("{base}/"),
        ],
    );
    let violations = csp_violations(&shot.stderr);
    assert!(violations.is_empty(), "CSP violations: {violations:#?}");
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 10 * 1024, "a suspiciously small screenshot: {} bytes", bytes.len());
    println!("status page screenshot: {} ({} bytes)", png.display(), bytes.len());
    // A copy where CI collects artifacts (target/ is the build's; a read-only one is said).
    if let Some(target) = Path::new(common::bin()).parent().and_then(Path::parent) {
        let copy = target.join("status-page.png");
        match std::fs::copy(&png, &copy) {
            Ok(_) => println!("status page screenshot copied to {}", copy.display()),
            Err(e) => println!("!!!!! NOTE: cannot copy the screenshot to {}: {e}", copy.display()),
        }
    }

    daemon.signal("-TERM");
    drop(daemon);
    drop(fs);
}

/// The `d` of the path in the chart titled `title` in `dom`.
fn chart_path<'a>(dom: &'a str, title: &str) -> Option<&'a str> {
    let at = dom.find(&format!("<title>{title}</title>"))?;
    let rest = &dom[at..];
    let rest = &rest[..rest.find("</svg>")?];
    let d = &rest[rest.find("class=\"line\" d=\"")? + "class=\"line\" d=\"".len()..];
    Some(&d[..d.find('"')?])
}

/// The (x, y) points of an SVG path of `M`/`L` commands.
fn points(d: &str) -> Vec<(f64, f64)> {
    d.split(['M', 'L'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = p.trim_end_matches("h0");
            let (x, y) = p.split_once(' ').unwrap_or_else(|| panic!("a point: {p:?} in {d}"));
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_replayed_day_shows_as_the_24_hour_chart_in_chromium() {
    let dir = common::tempdir("status_page_24h");
    let state = dir.join("state");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = |history: Value| {
        json!({
            "host": "day-01",
            "interval": "1s",
            "state_dir": state,
            "api": {"listen": format!("127.0.0.1:{port}")},
            "history": history,
            "rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 99", "for": "1h"}],
        })
    };
    let cfg = common::write(&dir, "config.json", &config(json!({})).to_string());

    // A day of minutes up to a minute ago: 20 % for 12 hours, then 80 %.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor();
    let samples = dir.join("day.jsonl");
    let mut text = String::new();
    for i in 0..1440 {
        let ts = now - 86_400.0 + 60.0 * i as f64;
        let cpu = if i < 720 { 20.0 } else { 80.0 };
        text.push_str(&json!({"ts": ts, "metrics": {"cpu.usage": cpu}}).to_string());
        text.push('\n');
    }
    std::fs::write(&samples, text).unwrap();
    let o = common::run(&[
        "replay",
        samples.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "replay failed: {}", common::stderr(&o));
    let size =
        std::fs::metadata(state.join("history.hwh")).expect("the replay wrote history").len();

    let daemon = Daemon::start(&cfg, false);
    wait_status(&base, Duration::from_secs(60), |v| v["ticks"].as_u64().unwrap_or(0) >= 2)
        .expect("the daemon never ticked twice");
    let (code, page) = common::http("GET", &format!("{base}/"), "").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("<th>last 24 h</th>"), "no 24-hour column:\n{page}");
    assert_eq!(
        std::fs::metadata(state.join("history.hwh")).unwrap().len(),
        size,
        "the daemon kept the replayed file (same geometry)"
    );

    let dom = chromium(&dir, &["--dump-dom", &format!("{base}/")]);
    let text = String::from_utf8_lossy(&dom.stdout);
    assert!(text.contains("<h1>day-01</h1>"), "the page did not load: {text}");
    assert!(!text.to_ascii_lowercase().contains("<script"), "a script element in the DOM");
    let violations = csp_violations(&dom.stderr);
    assert!(violations.is_empty(), "CSP violations: {violations:#?}");
    let d = chart_path(&text, "cpu.usage · last 24 h")
        .unwrap_or_else(|| panic!("no 24-hour chart of cpu.usage in the DOM:\n{text}"));
    assert_eq!(d.matches('M').count(), 1, "one unbroken line: {d}");
    let pts = points(d);
    // 96 buckets of 15 minutes; the newest may still be empty if the page came in its first
    // minute (the live ticks fill it).
    assert!((95..=96).contains(&pts.len()), "{} points: {d}", pts.len());
    assert_eq!(pts[0].0, 0.0, "the oldest bucket at the left: {d}");
    // 0..100 %: 20 % is y 5 + 0.8·30 = 29, 80 % is y 11. The switch is near bucket 48.
    for (i, &(x, y)) in pts.iter().enumerate() {
        let want_x = (i as f64 * 140.0 / 95.0 * 10.0).round() / 10.0;
        assert!((x - want_x).abs() < 0.051, "bucket {i} at x {x}, not {want_x}: {d}");
        if i < 44 {
            assert_eq!(y, 29.0, "bucket {i} (20 %): {d}");
        } else if (52..90).contains(&i) {
            assert_eq!(y, 11.0, "bucket {i} (80 %): {d}");
        }
    }

    let png = dir.join("status-page-24h.png");
    let shot = chromium(
        &dir,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1000,1400",
            &format!("{base}/"),
        ],
    );
    assert!(csp_violations(&shot.stderr).is_empty());
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    println!("24-hour chart screenshot: {} ({} bytes)", png.display(), bytes.len());
    if let Some(target) = Path::new(common::bin()).parent().and_then(Path::parent) {
        let copy = target.join("status-page-24h.png");
        match std::fs::copy(&png, &copy) {
            Ok(_) => println!("copied to {}", copy.display()),
            Err(e) => println!("!!!!! NOTE: cannot copy the screenshot to {}: {e}", copy.display()),
        }
    }
    daemon.signal("-TERM");
    drop(daemon);

    // `"history": false`: the file stays where it is, but the page neither reads nor charts it.
    std::fs::write(&cfg, config(json!(false)).to_string()).unwrap();
    let daemon = Daemon::start(&cfg, false);
    wait_status(&base, Duration::from_secs(60), |v| v["ticks"].as_u64().unwrap_or(0) >= 1)
        .expect("the daemon never ticked");
    let (code, page) = common::http("GET", &format!("{base}/"), "").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("No 24-hour charts: the history file is off in the config."), "{page}");
    assert!(!page.contains("last 24 h"));
    daemon.signal("-TERM");
    drop(daemon);
}
