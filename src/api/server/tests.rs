//! The server over real loopback sockets: answers, HEAD, each limit (431, 413 unread, 411,
//! 400, 408 against a trickling client), eviction and refusal when full, a handler panic,
//! stop with connections open; and the head parser and `encode` as functions.

use super::http::{self, Reject};
use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

/// Bounded waits in these tests (never a timing assertion).
const PATIENCE: Duration = Duration::from_secs(10);

/// What the test handler saw.
#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    big: AtomicUsize,
}

fn handler(seen: Arc<Seen>) -> Handler {
    Box::new(move |req: &Request| {
        seen.calls.fetch_add(1, Ordering::SeqCst);
        match req.path.as_str() {
            "/panic" => panic!("test handler panic"),
            "/echo" => {
                let mut r = Response::new(200, "application/octet-stream", req.body.clone());
                r.headers.push(("X-Query", req.query.clone()));
                r
            }
            "/big" => {
                seen.big.fetch_add(1, Ordering::SeqCst);
                Response::new(200, "text/plain", vec![b'x'; 32 << 20])
            }
            // Like the routes: HEAD stripped by the handler, its length in X-Head-Length.
            "/routes-head" if req.method == "HEAD" => {
                let mut r = Response::new(200, "text/plain", Vec::new());
                r.headers.push(("X-Head-Length", "12".to_owned()));
                r
            }
            _ => Response::new(200, "text/plain", b"hello world\n".to_vec()),
        }
    })
}

fn start(limits: Limits) -> (ServerHandle, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let seen = Arc::new(Seen::default());
    (spawn(listener, limits, handler(Arc::clone(&seen))).unwrap(), seen)
}

fn connect(server: &ServerHandle) -> TcpStream {
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Everything the server sends until it closes (a reset ends it too).
fn read_all(s: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// Whether the server closed `s` with nothing (more) to say: end of stream or a reset, not
/// the read timeout that an open, silent connection gives (`read_all` cannot tell them apart).
fn closed_silently(s: &mut TcpStream) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("sent {:?}", String::from_utf8_lossy(&chunk[..n]))),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("still open after {PATIENCE:?}: {e}")),
    }
}

fn exchange(server: &ServerHandle, request: &[u8]) -> String {
    let mut s = connect(server);
    s.write_all(request).unwrap();
    read_all(&mut s)
}

fn status(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// Waits (bounded) until `cond` holds.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < end, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn get_is_answered_with_its_length_and_connection_close() {
    let (server, seen) = start(Limits::default());
    let a = exchange(&server, b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status(&a), 200, "{a}");
    assert_eq!(header(&a, "content-length"), Some("12"));
    assert_eq!(header(&a, "connection"), Some("close"));
    assert_eq!(body(&a), "hello world\n");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    wait_until("served counted", || Stats::get(&server.stats().served) == 1);
    server.stop();
}

#[test]
fn post_body_arriving_in_pieces_reaches_the_handler_whole() {
    let (server, _) = start(Limits::default());
    let payload: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let mut s = connect(&server);
    write!(s, "POST /echo?q=a%20b HTTP/1.1\r\nContent-Length: {}\r\n\r\n", payload.len()).unwrap();
    for piece in payload.chunks(7_000) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(header(&head, "x-query"), Some("q=a%20b"), "the query as sent");
    assert_eq!(&raw[end..], &payload[..]);
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let (server, _) = start(Limits::default());
    let mut s = connect(&server);
    s.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 25];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").unwrap();
    let a = read_all(&mut s);
    assert_eq!(status(&a), 200, "{a}");
    assert_eq!(body(&a), "hello");
}

#[test]
fn an_http_1_0_expect_continue_gets_no_interim_answer() {
    let (server, _) = start(Limits::default());
    let mut s = connect(&server);
    s.write_all(b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhe")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"llo").unwrap();
    let a = read_all(&mut s);
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "the final answer first: {a:?}");
    assert_eq!(body(&a), "hello");
}

#[test]
fn head_announces_the_get_length_and_sends_no_body() {
    let (server, _) = start(Limits::default());
    // The routes' way: the handler strips the body and says its length.
    let a = exchange(&server, b"HEAD /routes-head HTTP/1.1\r\n\r\n");
    assert_eq!(status(&a), 200, "{a}");
    assert_eq!(header(&a, "content-length"), Some("12"), "{a}");
    assert_eq!(header(&a, "x-head-length"), None, "an internal header stays off the wire");
    assert_eq!(body(&a), "");
    // A handler that leaves the body: the server drops it, the length stays.
    let a = exchange(&server, b"HEAD /hello HTTP/1.1\r\n\r\n");
    assert_eq!(header(&a, "content-length"), Some("12"), "{a}");
    assert_eq!(body(&a), "");
}

#[test]
fn a_head_larger_than_the_limit_is_431() {
    let (server, seen) = start(Limits::default());
    let mut req = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 9_000));
    req.extend_from_slice(b"\r\n\r\n");
    let a = exchange(&server, &req);
    assert_eq!(status(&a), 431, "{a}");
    assert!(body(&a).contains("\"error\""), "{a}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(Stats::get(&server.stats().headers_too_large), 1);
}

#[test]
fn a_10_mb_content_length_is_413_before_any_body_is_sent() {
    let (server, seen) = start(Limits::default());
    // Only the headers: the answer must come without the server waiting for the body.
    let a = exchange(&server, b"POST /echo HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n");
    assert_eq!(status(&a), 413, "{a}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    // Absurd lengths too.
    let a = exchange(
        &server,
        b"POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    );
    assert_eq!(status(&a), 413, "{a}");
    assert_eq!(Stats::get(&server.stats().bodies_too_large), 2);
}

#[test]
fn chunked_bodies_are_refused_with_411() {
    let (server, seen) = start(Limits::default());
    let a = exchange(
        &server,
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(status(&a), 411, "{a}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn malformed_requests_are_400() {
    let (server, seen) = start(Limits::default());
    for req in [
        &b"HELLO\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // a TLS hello
        b"GET http://example.com/ HTTP/1.1\r\n\r\n",
        b"GET * HTTP/1.1\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: 5x\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: \x1b[31m\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n",
    ] {
        let a = exchange(&server, req);
        assert_eq!(status(&a), 400, "{:?} -> {a}", String::from_utf8_lossy(req));
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    // And the server still serves.
    assert_eq!(status(&exchange(&server, b"GET / HTTP/1.1\r\n\r\n")), 200);
}

#[test]
fn what_cannot_be_http_is_400_at_once_not_408_at_the_deadline() {
    // A deadline far beyond the clients' patience: only an early answer passes.
    let limits = Limits { read_timeout: Duration::from_secs(60), ..Limits::default() };
    let (server, seen) = start(limits);
    for req in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..], // a TLS hello, no CRLF anywhere
        b"GET / HTTP/1.0\n\n",
        b"GET / HTTP/1.1\r\nHost: x\n",
        b"\n",
        b"AVERYLONGMETHODNAME / HTTP/1.1",
    ] {
        let mut s = connect(&server);
        s.write_all(req).unwrap();
        let mut chunk = [0u8; 1024];
        let n = s.read(&mut chunk).unwrap_or(0);
        let a = String::from_utf8_lossy(&chunk[..n]);
        assert_eq!(status(&a), 400, "{:?} -> {a:?}", String::from_utf8_lossy(req));
    }
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    // A head arriving in pieces is not cut short.
    let mut s = connect(&server);
    for piece in [&b"GE"[..], b"T /hello HTTP/1.1\r", b"\nHost: t\r", b"\n\r", b"\n"] {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status(&read_all(&mut s)), 200);
}

#[test]
fn a_trickling_client_gets_408_at_the_read_deadline() {
    let limits = Limits { read_timeout: Duration::from_millis(300), ..Limits::default() };
    let (server, seen) = start(limits);
    let mut s = connect(&server);
    let started = Instant::now();
    s.set_nonblocking(true).unwrap();
    // One byte every 20 ms of a header value that never ends: the deadline does not move.
    s.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").unwrap();
    let mut answer = Vec::new();
    let mut sent = 0usize;
    let mut closed = false;
    while !closed {
        assert!(started.elapsed() < PATIENCE, "no 408 came");
        if s.write(b"a").is_ok() {
            sent += 1;
        }
        let mut chunk = [0u8; 1024];
        match s.read(&mut chunk) {
            Ok(0) => closed = true,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => closed = true,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let a = String::from_utf8_lossy(&answer);
    assert_eq!(status(&a), 408, "{a}");
    println!("408 after {:?} and {sent} trickled bytes (deadline 300 ms)", started.elapsed());
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
    assert_eq!(Stats::get(&server.stats().read_timeouts), 1);
}

#[test]
fn when_full_the_oldest_unfinished_request_is_evicted_for_a_new_one() {
    let limits = Limits { max_connections: 4, ..Limits::default() };
    let (server, _) = start(limits);
    let mut slow: Vec<TcpStream> = Vec::new();
    for i in 0..4 {
        let mut s = connect(&server);
        s.write_all(b"GET /hello HTTP/1.1\r\n").unwrap();
        slow.push(s);
        wait_until("accepted", || Stats::get(&server.stats().accepted) == i + 1);
    }
    let a = exchange(&server, b"GET /hello HTTP/1.1\r\n\r\n");
    assert_eq!(status(&a), 200, "a quick client is served when full: {a}");
    assert_eq!(Stats::get(&server.stats().evicted), 1);
    // The oldest was closed without an answer...
    closed_silently(&mut slow[0]).expect("the evicted connection is closed without an answer");
    // ...and the next oldest is still there: finishing its request gets it served.
    slow[1].write_all(b"\r\n").unwrap();
    let a = read_all(&mut slow[1]);
    assert_eq!(status(&a), 200, "{a}");
}

#[test]
fn when_every_slot_is_writing_a_new_connection_is_refused() {
    let limits = Limits { max_connections: 2, ..Limits::default() };
    let (server, seen) = start(limits);
    // Two clients ask for 32 MiB each and never read: both stay in their answers.
    let mut hogs = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&server);
        s.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();
        hogs.push(s);
    }
    wait_until("both answering", || seen.big.load(Ordering::SeqCst) == 2);
    let a = exchange(&server, b"GET /hello HTTP/1.1\r\n\r\n");
    assert_eq!(status(&a), 503, "{a}");
    assert_eq!(Stats::get(&server.stats().refused), 1);
    drop(hogs);
    // Once they are gone, the server serves again.
    let end = Instant::now() + PATIENCE;
    loop {
        let a = exchange(&server, b"GET /hello HTTP/1.1\r\n\r\n");
        if status(&a) == 200 {
            break;
        }
        assert!(Instant::now() < end, "never served again: {a}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_handler_panic_is_500_and_the_server_goes_on() {
    let (server, _) = start(Limits::default());
    let a = exchange(&server, b"GET /panic HTTP/1.1\r\n\r\n");
    assert_eq!(status(&a), 500, "{a}");
    assert_eq!(body(&a).trim(), r#"{"error":"internal error"}"#);
    assert_eq!(Stats::get(&server.stats().panics), 1);
    assert_eq!(status(&exchange(&server, b"GET /hello HTTP/1.1\r\n\r\n")), 200);
}

#[test]
fn stop_returns_with_connections_open_and_closes_them() {
    let (server, _) = start(Limits::default());
    let mut idle: Vec<TcpStream> = (0..10).map(|_| connect(&server)).collect();
    wait_until("accepted", || Stats::get(&server.stats().accepted) == 10);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.stop();
        let _ = tx.send(());
    });
    assert!(rx.recv_timeout(PATIENCE).is_ok(), "stop() did not return");
    for (i, s) in idle.iter_mut().enumerate() {
        closed_silently(s).unwrap_or_else(|e| panic!("connection {i} not closed by the stop: {e}"));
    }
}

#[test]
fn the_head_parser_keeps_the_target_as_sent() {
    let h = http::parse(b"GET /a%2Fb/../c?x=%41 HTTP/1.0\r\nX-A:  v \r\n\r\n", 10).unwrap();
    assert_eq!(
        (h.method.as_str(), h.path.as_str(), h.query.as_str()),
        ("GET", "/a%2Fb/../c", "x=%41")
    );
    assert_eq!(h.headers, vec![("x-a".to_owned(), "v".to_owned())]);
    assert_eq!(h.content_length, 0);
    let too_big = http::parse(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10);
    assert_eq!(too_big.unwrap_err(), Reject { status: 413, message: too_big_message() });
    assert_eq!(http::head_end(b"GET / HTTP/1.1\r\n\r\nbody", 10), Some(18));
    assert_eq!(http::head_end(b"GET / HTTP/1.1\r\n\r", 0), None);
}

#[test]
fn at_most_max_headers_header_lines_are_parsed() {
    let head = |n: usize| {
        let mut h = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..n {
            h.extend_from_slice(b"a:\r\n");
        }
        h.extend_from_slice(b"\r\n");
        h
    };
    let ok = http::parse(&head(http::MAX_HEADERS), 10).unwrap();
    assert_eq!(ok.headers.len(), http::MAX_HEADERS);
    // 8 KiB of one-letter headers would otherwise be ~2,000 strings held per connection.
    assert_eq!(http::parse(&head(http::MAX_HEADERS + 1), 10).unwrap_err().status, 431);
    assert_eq!(http::parse(&head(2_000), 10).unwrap_err().status, 431);
    // A tab is the one control a value may hold.
    assert_eq!(http::parse(b"GET / HTTP/1.1\r\nA: x\ty\r\n\r\n", 10).unwrap().headers.len(), 1);
}

#[test]
fn only_running_out_of_resources_pauses_accepting() {
    let os = std::io::Error::from_raw_os_error;
    for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
        assert!(super::event_loop::exhausted(&os(code)), "{}", os(code));
    }
    for code in [libc::ECONNABORTED, libc::EPROTO, libc::ENETUNREACH] {
        assert!(!super::event_loop::exhausted(&os(code)), "{}", os(code));
    }
}

fn too_big_message() -> &'static str {
    "the body is larger than the server accepts"
}

#[test]
fn encode_frames_each_kind_of_answer() {
    let mut r = Response::new(204, "application/json", Vec::new());
    r.headers.push(("X-Evil", "a\r\nSet-Cookie: x".to_owned()));
    let text = String::from_utf8(encode(&r)).unwrap();
    assert_eq!(text, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    // A body a handler left on a 204 stays off the wire too (unframed, it would read as junk).
    let text = String::from_utf8(encode(&Response::new(204, "text/plain", b"x".to_vec()))).unwrap();
    assert_eq!(text, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    let r = Response::new(200, "text/plain", b"abc".to_vec());
    let text = String::from_utf8(encode(&r)).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nabc"), "{text}");
    assert!(text.contains("Content-Length: 3\r\n"), "{text}");
}

#[test]
fn a_body_that_stops_short_and_an_idle_connection_get_408() {
    let limits = Limits { read_timeout: Duration::from_millis(200), ..Limits::default() };
    let (server, seen) = start(limits);
    let mut short = connect(&server);
    short.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part").unwrap();
    let mut idle = connect(&server);
    assert_eq!(status(&read_all(&mut short)), 408);
    assert_eq!(status(&read_all(&mut idle)), 408);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_request_sent_byte_by_byte_is_read_across_every_boundary() {
    let (server, _) = start(Limits::default());
    let mut s = connect(&server);
    s.set_nodelay(true).unwrap();
    for b in b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let a = read_all(&mut s);
    assert_eq!(status(&a), 200, "{a}");
    assert_eq!(body(&a), "hello world\n");
}
