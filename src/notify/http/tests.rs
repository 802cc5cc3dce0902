//! Tests of the HTTP client: framing, deadlines, URL parsing, scrubbing, status classification.
use super::*;

fn resp(status: i32, body: &str) -> HttpResponse {
    HttpResponse { status, body: body.into(), retry_after: None }
}

fn answer(raw: &str) -> Result<HttpResponse, String> {
    let mut stream = io::Cursor::new(raw.as_bytes().to_vec());
    let mut r = Reader { stream: &mut stream, buf: Vec::new(), pos: 0, eof: false };
    read_response(&mut r, BODY_LIMIT).map_err(|e| match e {
        Failure::Protocol(m) => m,
        Failure::Io(_, e) => e.to_string(),
        Failure::Tls(e) => e.to_string(),
    })
}

#[test]
fn answers_are_read_in_every_framing() {
    let r = answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = answer(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nRetry-After: 3\r\n\
         Transfer-Encoding: chunked\r\n\r\n3;x=1\r\nslo\r\n4\r\nw do\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!((r.status, r.body.as_str()), (429, "slow do"));
    assert_eq!(r.retry_after, Some(Duration::from_secs(3)));
    let r = answer("HTTP/1.0 503 Busy\r\n\r\nuntil close").unwrap();
    assert_eq!((r.status, r.body.as_str()), (503, "until close"));
    let big = format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(BODY_LIMIT + 10));
    assert_eq!(answer(&big).unwrap().body.len(), BODY_LIMIT);
    let r = answer("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok").unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = answer("HTTP/1.1 502 Bad\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").unwrap();
    assert_eq!((r.status, r.body.as_str()), (502, "ab"));
    assert!(answer("").unwrap_err().contains("without an answer"));
    assert!(answer("SSH-2.0-x\r\n").unwrap_err().contains("not an HTTP/1.x answer"));
}

#[test]
fn urls_become_targets() {
    let t = Target::parse("https://hooks.example.com/services/T/B/x?a=1#frag").unwrap();
    assert!(t.tls && t.port == 443 && t.host == "hooks.example.com");
    assert_eq!(t.path, "/services/T/B/x?a=1");
    let t = Target::parse("http://u:p%40ss@[::1]:9093").unwrap();
    assert!(!t.tls && t.port == 9093 && t.host == "::1" && t.authority == "[::1]:9093");
    assert_eq!(t.path, "/");
    let req = String::from_utf8(encode("POST", &t, &[], b"{}").unwrap()).unwrap();
    assert!(req.starts_with("POST / HTTP/1.1\r\nHost: [::1]:9093\r\n"), "{req}");
    assert!(req.contains(&format!(
        "Authorization: Basic {}\r\n",
        crate::notify::escape::base64(b"u:p@ss")
    )));
    assert!(req.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n{}"), "{req}");
    assert!(Target::parse("ftp://x/").is_err());
    assert!(Target::parse("http://:80/").is_err());
    let bad = [("X-A".to_string(), "1\r\nX-Injected: 2".to_string())];
    assert!(encode("POST", &t, &bad, b"").is_err());
    let get = String::from_utf8(encode("GET", &t, &[], b"").unwrap()).unwrap();
    assert!(get.starts_with("GET / HTTP/1.1\r\n"), "{get}");
    assert!(!get.contains("Content-Length") && get.ends_with("Connection: close\r\n\r\n"));
}

/// A loopback server answering one connection with `reply` after reading the request
/// head; it keeps the socket open for `hold` before closing.
fn serve(reply: &'static str, hold: Duration) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(reply.as_bytes());
        std::thread::sleep(hold);
    });
    port
}

#[test]
fn a_200_whose_body_times_out_keeps_its_status() {
    let port =
        serve("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\naccepted", Duration::from_secs(2));
    let url = format!("http://127.0.0.1:{port}/hook");
    let r = post(&url, &[], b"x", Duration::from_millis(300)).unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "accepted"));
    assert!(classify("w", &r).is_ok());
}

#[test]
fn a_200_whose_body_is_cut_short_keeps_its_status() {
    let port = serve("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", Duration::ZERO);
    let url = format!("http://127.0.0.1:{port}/hook");
    let r = post(&url, &[], b"x", Duration::from_secs(5)).unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert!(classify("w", &r).is_ok());
}

#[test]
fn echoed_credentials_are_scrubbed_from_answers() {
    let port = serve(
        "HTTP/1.1 401 No\r\nConnection: close\r\n\r\ndenied: Authorization: Bearer \
         tok-s3cret, X-Key: key-s3cret, basic dTpwQHNzLXMzY3JldA==, pw p@ss-s3cret",
        Duration::ZERO,
    );
    let url = format!("http://u:p%40ss-s3cret@127.0.0.1:{port}/hook");
    let headers = [
        ("Authorization".to_string(), "Bearer tok-s3cret".to_string()),
        ("X-Key".to_string(), "key-s3cret".to_string()),
    ];
    let r = post(&url, &headers, b"x", Duration::from_secs(5)).unwrap();
    let text = classify("webhook channel w", &r).unwrap_err().to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!text.contains("dTpwQHNzLXMzY3JldA"), "{text}");
    assert!(text.contains("HTTP 401: denied: Authorization: <redacted>"), "{text}");
}

#[test]
fn a_receiver_echoing_the_url_path_or_query_has_its_secrets_scrubbed() {
    // Express and many proxies answer an unknown route with `Cannot POST <path>`: the path of
    // a Slack or Teams webhook is its secret, and the reason lands in `/status`.
    let port = serve(
        "HTTP/1.1 404 No\r\nConnection: close\r\n\r\nCannot POST /services/T0/B0/XXsecretXXsecretXX          (token tok%2Fsecret9 / tok/secret9)",
        Duration::ZERO,
    );
    let url =
        format!("http://127.0.0.1:{port}/services/T0/B0/XXsecretXXsecretXX?token=tok%2Fsecret9");
    let r = post(&url, &[], b"x", Duration::from_secs(5)).unwrap();
    let text = classify("slack channel s", &r).unwrap_err().to_string();
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("Cannot POST /services/T0/B0/<redacted>"), "{text}");
}

#[test]
fn url_parse_errors_never_quote_the_url() {
    for url in [
        "https://alice:hunter2/x@127.0.0.1:1/p",
        "https://alice:hunter2?x@127.0.0.1/p",
        "https://alice:hunter2@127.0.0.1:p0rt/p",
        "https://alice:hunter2@127.0.0.1:99999/p",
        "https://alice:hunter2@127.0.0.1:0/p",
        "https://alice:hunter2@127.0.0.1:-1/p",
        "ftp://alice:hunter2@h/",
        "https://alice:hunter2@[::1/",
    ] {
        let e = Target::parse(url).unwrap_err();
        assert!(!e.contains("hunter2") && !e.contains("alice"), "{url}: {e}");
        let e = post(url, &[], b"", Duration::from_millis(100)).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{url}: {e}");
    }
    assert!(Target::parse("https://a:b/c@h/").unwrap_err().contains("%2F"));
    assert!(Target::parse("https://h:99999/").unwrap_err().contains("out of range"));
    // Redaction reads `am:9093/a` as user info here: refused, not guessed.
    assert!(Target::parse("http://am:9093/a@b").unwrap_err().contains("%40"));
    assert_eq!(Target::parse("http://am/a@b").unwrap().path, "/a@b");
    assert_eq!(Target::parse("http://h/x?mail=a:b@c").unwrap().host, "h");
}

#[test]
fn percent_decoding_is_byte_exact_hex() {
    assert_eq!(percent_decode("p%40ss%2f%FF"), b"p@ss/\xff");
    assert_eq!(percent_decode("%+1%-1%2%zz%"), b"%+1%-1%2%zz%");
    assert_eq!(percent_decode("%e2%82%ac"), "\u{20ac}".as_bytes());
}

#[test]
fn a_silent_server_times_out_within_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for scheme in ["http", "https"] {
        let e = post(
            &format!("{scheme}://127.0.0.1:{port}/secret"),
            &[],
            b"x",
            Duration::from_millis(200),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, SendError::Transient { .. }), "{text}");
        assert!(text.contains("timed out after 200ms") && !text.contains("secret"), "{text}");
    }
    drop(listener);
}

#[test]
fn statuses_are_classified() {
    assert_eq!(classify("x", &resp(200, "ok")).unwrap().answer, "HTTP 200: ok");
    assert!(matches!(classify("x", &resp(429, "")), Err(SendError::Transient { .. })));
    assert!(matches!(classify("x", &resp(503, "")), Err(SendError::Transient { .. })));
    assert!(matches!(classify("x", &resp(408, "")), Err(SendError::Transient { .. })));
    assert!(matches!(classify("x", &resp(404, "no_service")), Err(SendError::Permanent { .. })));
    assert!(matches!(
        classify("x", &resp(400, "invalid_payload")),
        Err(SendError::Permanent { .. })
    ));
    assert!(matches!(classify("x", &resp(307, "")), Err(SendError::Permanent { .. })));
}

#[test]
fn retry_after_in_both_forms() {
    assert_eq!(parse_retry_after("7", 0.0), Some(Duration::from_secs(7)));
    let now = crate::config::parse_rfc3339("2015-10-21T07:27:50Z").unwrap();
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
        Some(Duration::from_secs(10))
    );
    assert_eq!(parse_retry_after("soon", 0.0), None);
}
