//! Hostile or broken clients at the HTTP level, against the real server process: a client
//! that sends its headers a byte a second, hundreds of idle sockets, a body that trickles
//! in, more requests or connections than the server takes. Each is let go within its
//! bound, and `/healthz` (and a tablet's sync) keeps being answered meanwhile.
//!
//! Loopback only; every loop is bounded and every test ends by itself in seconds.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use repere_tests::{Device, TestServer, raw_request, status_of};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Asks `/healthz` on a new connection; asserts it answers 200 within a second and
/// returns how long it took.
fn healthz_within_a_second(port: u16) -> Duration {
    let started = Instant::now();
    let answer = raw_request(port, HEALTHZ).expect("connects");
    let took = started.elapsed();
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    took
}

/// The `503`s counted for one serving limit in `/metrics` (loopback: no token needed).
fn overload_refusals(port: u16, limit: &str) -> u64 {
    let answer = raw_request(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("connects");
    assert_eq!(status_of(&answer), 200, "{answer}");
    let series = format!("repere_overload_refusals_total{{limit=\"{limit}\"}} ");
    answer
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in {answer}"))
        .trim()
        .parse()
        .expect("a count")
}

/// Whether the server has closed `s` (or reset it), looking for at most `wait`. Whatever
/// the server sent before closing is read and dropped.
fn closed_by_server(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Whether the server has closed (or reset) the non-blocking `s`, without waiting.
fn closed_now(mut s: &TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Whether `out` holds a whole answer (head and `content-length` bytes of body).
fn complete(out: &[u8]) -> bool {
    let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|n| out.len() >= end + 4 + n)
}

/// Reads an HTTP answer until it is whole, the server closes the connection or `wait`
/// has passed.
fn read_answer(s: &mut TcpStream, wait: Duration) -> String {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if complete(&out) {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_slowloris_is_dropped_within_the_header_timeout_while_healthz_answers() {
    let server = TestServer::start_with(&["--header-read-timeout-secs", "2"]);
    let port = server.port;
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let attackers = std::thread::spawn(move || {
        let conns: Vec<TcpStream> = (0..10).map(|_| connect(port)).collect();
        for c in &conns {
            c.set_nonblocking(true).expect("non-blocking");
        }
        let started = Instant::now();
        let mut closed_at = vec![None; conns.len()];
        let mut sent = 0;
        // One byte a second on each connection, looking every 50 ms for closed ones, for
        // at most 10 s.
        while started.elapsed() < Duration::from_secs(10) {
            if started.elapsed() >= Duration::from_secs(sent as u64) {
                for (mut c, closed) in conns.iter().zip(&closed_at) {
                    if closed.is_none() {
                        let _ = c.write_all(&head[sent..=sent]);
                    }
                }
                sent += 1;
            }
            for (c, closed) in conns.iter().zip(closed_at.iter_mut()) {
                if closed.is_none() && closed_now(c) {
                    *closed = Some(started.elapsed());
                }
            }
            if closed_at.iter().all(Option::is_some) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        closed_at
    });
    let mut answered = 0;
    while !attackers.is_finished() {
        healthz_within_a_second(port);
        answered += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let closed_at = attackers.join().expect("attackers");
    for at in closed_at {
        let at = at.expect("every slow connection is closed");
        assert!(
            at >= Duration::from_millis(1500) && at < Duration::from_millis(4000),
            "closed after {at:?}, the header timeout is 2 s"
        );
    }
    assert!(
        answered >= 5,
        "healthz asked {answered} times during the attack"
    );
}

#[test]
fn many_idle_connections_do_not_stop_healthz_nor_a_tablets_sync() {
    // A header timeout long enough for the checks below on a loaded 2-core machine.
    // Every connection comes from this machine: the per-address limit is lifted here
    // (it has its own test below).
    let server = TestServer::start_with(&[
        "--header-read-timeout-secs",
        "8",
        "--max-connections-per-address",
        "512",
    ]);
    let team = server.setup(1)[0];
    let mut tablet = Device::enrolled(&server, team, 1);
    let started = Instant::now();
    let mut idle: Vec<TcpStream> = (0..300).map(|_| connect(server.port)).collect();
    // Some of them start a request and stop.
    for s in idle.iter_mut().take(100) {
        s.write_all(b"POST /v1/sync HTTP/1.1\r\nHost: x\r\n")
            .expect("partial head");
    }
    for _ in 0..5 {
        healthz_within_a_second(server.port);
    }
    let youth = tablet.demo.youth();
    tablet.store.create(&youth).expect("create");
    let report = tablet.sync(&server).expect("a tablet syncs meanwhile");
    assert_eq!(report.acknowledged, 1);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "all of this happened while the idle connections were open"
    );
    // Each idle connection is closed by the server once its head is late.
    let deadline = started + Duration::from_secs(13);
    for s in &mut idle {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_by_server(s, left.max(Duration::from_millis(10))),
            "an idle connection is still open {:?} after it was made",
            started.elapsed()
        );
    }
    healthz_within_a_second(server.port);
}

#[test]
fn a_kept_alive_connection_is_reused_then_closed_when_idle() {
    // The idle timeout (2 s) is shorter than the header timeout (6 s): what closes the
    // connection is the idle time, not a late head.
    let server = TestServer::start_with(&[
        "--idle-timeout-secs",
        "2",
        "--header-read-timeout-secs",
        "6",
    ]);
    let mut s = connect(server.port);
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for _ in 0..2 {
        s.write_all(request).expect("request");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).expect("an answer on the same connection");
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        std::thread::sleep(Duration::from_millis(1000));
    }
    let idle_since = Instant::now();
    assert!(
        closed_by_server(&mut s, Duration::from_secs(5)),
        "an idle kept-alive connection is closed"
    );
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(500) && idle < Duration::from_millis(3500),
        "closed after {idle:?} idle (1 s already idle before; the idle timeout is 2 s)"
    );
}

#[test]
fn a_body_sent_too_slowly_is_cut() {
    let server = TestServer::start_with(&["--body-read-timeout-secs", "2"]);
    let team = server.setup(1)[0];
    let mut tablet = Device::enrolled(&server, team, 1);
    let token = tablet.token();
    let heads = [
        "POST /v1/enrol HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n".to_string(),
        format!(
            "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 100000\r\n\r\n"
        ),
    ];
    for head in heads {
        let mut s = connect(server.port);
        s.write_all(head.as_bytes()).expect("head");
        let started = Instant::now();
        let mut answer = String::new();
        // A byte every 200 ms, for at most 10 s.
        for _ in 0..50 {
            if s.write_all(b"R").is_err() {
                break;
            }
            answer = read_answer(&mut s, Duration::from_millis(200));
            if !answer.is_empty() {
                break;
            }
        }
        let cut_after = started.elapsed();
        assert_eq!(status_of(&answer), 408, "{answer}");
        assert!(
            answer.contains("\"error\":\"malformed_request\""),
            "{answer}"
        );
        assert!(
            cut_after >= Duration::from_millis(1500) && cut_after < Duration::from_millis(4000),
            "cut after {cut_after:?}, the body timeout is 2 s"
        );
        assert!(
            closed_by_server(&mut s, Duration::from_secs(2)),
            "the connection is closed after the cut"
        );
        healthz_within_a_second(server.port);
    }
    // The tablet itself syncs as usual.
    tablet.sync(&server).expect("sync");
}

#[test]
fn requests_past_the_limit_wait_their_turn_then_get_503() {
    let server = TestServer::start_with(&[
        "--max-requests",
        "2",
        "--queue-timeout-secs",
        "1",
        "--body-read-timeout-secs",
        "4",
    ]);
    // Two requests whose bodies never come hold both turns.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(server.port);
            s.write_all(b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
                .expect("head");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut third = connect(server.port);
    third
        .write_all(b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nRP\x02\x00")
        .expect("request");
    // /healthz is not queued behind them.
    healthz_within_a_second(server.port);
    let answer = read_answer(&mut third, Duration::from_secs(4));
    let waited = started.elapsed();
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 5"));
    assert!(answer.contains("\"error\":\"rate_limited\""), "{answer}");
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(3),
        "refused after {waited:?} in the queue (queue timeout 1 s)"
    );
    // The held requests end at their body timeout, and the turns are free again.
    for s in &mut held {
        let answer = read_answer(s, Duration::from_secs(6));
        assert_eq!(status_of(&answer), 408, "{answer}");
    }
    let answer = raw_request(
        server.port,
        b"POST /v1/enrol HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nRP\x02\x00",
    )
    .expect("answer");
    assert_eq!(status_of(&answer), 400, "served again: {answer}");
    assert_eq!(overload_refusals(server.port, "request_queue"), 1);
    assert_eq!(overload_refusals(server.port, "connections"), 0);
}

#[test]
fn connections_past_the_limit_get_503_at_once() {
    let server =
        TestServer::start_with(&["--max-connections", "20", "--header-read-timeout-secs", "2"]);
    let started = Instant::now();
    let mut open: Vec<TcpStream> = (0..20).map(|_| connect(server.port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused_at = Instant::now();
    let answer = raw_request(server.port, HEALTHZ).expect("connects");
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.contains("\"error\":\"rate_limited\""), "{answer}");
    assert!(
        refused_at.elapsed() < Duration::from_secs(1),
        "refused at once"
    );
    // The idle ones are let go at the header timeout; then the server takes connections
    // again.
    for s in &mut open {
        let left = (started + Duration::from_secs(6)).saturating_duration_since(Instant::now());
        assert!(closed_by_server(s, left.max(Duration::from_millis(10))));
    }
    healthz_within_a_second(server.port);
    // Counted in /metrics under its limit only.
    assert_eq!(overload_refusals(server.port, "connections"), 1);
    assert_eq!(overload_refusals(server.port, "connections_per_address"), 0);
    assert_eq!(overload_refusals(server.port, "request_queue"), 0);
}

#[test]
fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let server = TestServer::start_with(&[
        "--max-connections-per-address",
        "5",
        "--header-read-timeout-secs",
        "3",
    ]);
    let mut open: Vec<TcpStream> = (0..5).map(|_| connect(server.port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let answer = raw_request(server.port, HEALTHZ).expect("connects");
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.contains("from your address"), "{answer}");
    // A slot is given back when its connection ends.
    drop(open.pop());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        status_of(&raw_request(server.port, HEALTHZ).expect("connects")),
        200
    );
    drop(open);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(overload_refusals(server.port, "connections_per_address"), 1);
    assert_eq!(overload_refusals(server.port, "connections"), 0);

    // Behind a reverse proxy every client comes from the proxy: only the overall limit
    // applies to it.
    let proxied = TestServer::start_with(&[
        "--max-connections-per-address",
        "5",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let _open: Vec<TcpStream> = (0..8).map(|_| connect(proxied.port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let answer = raw_request(proxied.port, HEALTHZ).expect("connects");
    assert_eq!(status_of(&answer), 200, "{answer}");
}

#[test]
fn an_oversized_request_head_is_refused_and_the_server_keeps_serving() {
    let server = TestServer::start();
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..40 {
        head.extend(format!("X-Filler-{i}: {}\r\n", "a".repeat(4000)).bytes());
    }
    head.extend(b"Connection: close\r\n\r\n");
    let answer = raw_request(server.port, &head).expect("connects");
    assert_eq!(status_of(&answer), 431, "{answer}");
    healthz_within_a_second(server.port);
}
