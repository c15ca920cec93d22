//! A loopback TCP proxy that cuts a connection after a number of bytes in one direction:
//! a connection lost mid-request or mid-response, at any byte. It also counts the bytes
//! and TCP connections it carries, for the benchmarks.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Device → server (the request).
    Up,
    /// Server → device (the response).
    Down,
}

#[derive(Debug, Clone, Copy)]
pub struct Cut {
    pub direction: Direction,
    pub after_bytes: usize,
    /// How many connections to cut before letting the rest through.
    pub times: usize,
}

pub struct CutProxy {
    pub port: u16,
    cut: Arc<Mutex<Option<Cut>>>,
    stop: Arc<AtomicBool>,
    /// Bytes seen on the wire (HTTP headers included), up and down.
    counts: Arc<[AtomicUsize; 2]>,
    /// TCP connections accepted and passed on to the server.
    connections: Arc<AtomicUsize>,
}

impl CutProxy {
    pub fn start(upstream_port: u16) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut: Arc<Mutex<Option<Cut>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let connections = Arc::new(AtomicUsize::new(0));
        let (c, s, n, k) = (
            cut.clone(),
            stop.clone(),
            counts.clone(),
            connections.clone(),
        );
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                k.fetch_add(1, Ordering::SeqCst);
                // Each connection takes one cut, if any is armed.
                let this_cut = {
                    let mut guard = c.lock().unwrap_or_else(|p| p.into_inner());
                    match guard.as_mut() {
                        Some(cut) if cut.times > 0 => {
                            cut.times -= 1;
                            Some(*cut)
                        }
                        _ => None,
                    }
                };
                pump_pair(client, server, this_cut, n.clone());
            }
        });
        CutProxy {
            port,
            cut,
            stop,
            counts,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Wire bytes (up, down) since the last call.
    pub fn take_counts(&self) -> (usize, usize) {
        (
            self.counts[0].swap(0, Ordering::SeqCst),
            self.counts[1].swap(0, Ordering::SeqCst),
        )
    }

    /// Wire bytes (up, down) since the start or the last [`Self::take_counts`], without
    /// resetting them.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.counts[0].load(Ordering::SeqCst),
            self.counts[1].load(Ordering::SeqCst),
        )
    }

    /// TCP connections carried since the start.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn arm(&self, cut: Option<Cut>) {
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = cut;
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pump_pair(
    client: TcpStream,
    server: TcpStream,
    cut: Option<Cut>,
    counts: Arc<[AtomicUsize; 2]>,
) {
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up_limit = cut
        .filter(|c| c.direction == Direction::Up)
        .map(|c| c.after_bytes);
    let down_limit = cut
        .filter(|c| c.direction == Direction::Down)
        .map(|c| c.after_bytes);
    let (cc, sc) = (client.try_clone().ok(), server.try_clone().ok());
    let up = counts.clone();
    thread::spawn(move || pump(client, server, up_limit, cc.zip(sc), &up[0]));
    let (cc, sc) = (c2.try_clone().ok(), s2.try_clone().ok());
    thread::spawn(move || pump(s2, c2, down_limit, cc.zip(sc), &counts[1]));
}

/// Copies `from` → `to`; past `limit` bytes, closes both directions of both sockets.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<usize>,
    both: Option<(TcpStream, TcpStream)>,
    count: &AtomicUsize,
) {
    let mut sent = 0usize;
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let allowed = limit.map_or(n, |l| n.min(l.saturating_sub(sent)));
        if to.write_all(&buf[..allowed]).is_err() {
            break;
        }
        sent += allowed;
        count.fetch_add(allowed, Ordering::SeqCst);
        if limit.is_some_and(|l| sent >= l) {
            if let Some((a, b)) = &both {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            }
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
