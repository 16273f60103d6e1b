//! Traffic from inside a pod's namespace for tests and measurements: a numbered line stream
//! to the internet server's line echo (every number must come back, in order; the longest
//! stall is recorded), and polling new connections until egress works again.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::netns::{self, NetnsError};
use crate::services;

/// What a numbered stream saw.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    /// Numbers sent.
    pub sent: u64,
    /// Numbers echoed back.
    pub echoed: u64,
    /// Whether every echoed number was the next expected one.
    pub in_order: bool,
    /// Longest time without an echo while numbers were outstanding.
    pub max_stall: Duration,
    /// Why the stream ended early (connect, reset, write error).
    pub error: Option<String>,
}

/// A running numbered stream.
#[derive(Debug)]
pub struct NumberedStream {
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    handle: JoinHandle<StreamStats>,
}

impl NumberedStream {
    /// Connects from namespace `ns` to `server:port` and sends `<n>\n` every `interval`.
    pub fn start(
        ns: &str,
        server: Ipv4Addr,
        port: u16,
        interval: Duration,
    ) -> Result<Self, NetnsError> {
        let file = std::fs::File::open(netns::path(ns)).map_err(|e| NetnsError::Enter {
            name: ns.to_string(),
            reason: e.to_string(),
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let (s, e) = (stop.clone(), echoed.clone());
        let handle = std::thread::spawn(move || {
            if let Err(err) = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET) {
                return failed(format!("failed to enter the pod namespace: {err}"));
            }
            stream_loop(SocketAddr::from((server, port)), interval, &s, &e)
        });
        Ok(Self {
            stop,
            echoed,
            handle,
        })
    }

    /// Numbers echoed so far.
    pub fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Stops sending, waits up to `drain` for the outstanding echoes and returns the result.
    pub fn finish(self, drain: Duration) -> StreamStats {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + drain + Duration::from_secs(2);
        while !self.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.handle
            .join()
            .unwrap_or_else(|_| failed("stream thread panicked".into()))
    }
}

fn failed(error: String) -> StreamStats {
    StreamStats {
        sent: 0,
        echoed: 0,
        in_order: false,
        max_stall: Duration::ZERO,
        error: Some(error),
    }
}

fn stream_loop(
    addr: SocketAddr,
    interval: Duration,
    stop: &AtomicBool,
    echoed: &AtomicU64,
) -> StreamStats {
    let mut conn = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(c) => c,
        Err(e) => return failed(format!("connect to {addr}: {e}")),
    };
    let _ = conn.set_nodelay(true);
    if let Err(e) = conn.set_read_timeout(Some(interval.max(Duration::from_millis(5)))) {
        return failed(e.to_string());
    }
    let Ok(reader) = conn.try_clone() else {
        return failed("failed to clone the socket".into());
    };
    let mut reader = BufReader::new(reader);
    let mut stats = StreamStats {
        sent: 0,
        echoed: 0,
        in_order: true,
        max_stall: Duration::ZERO,
        error: None,
    };
    let mut last_echo = Instant::now();
    let mut next_send = Instant::now();
    let mut drain_until: Option<Instant> = None;
    let mut line = String::new();
    loop {
        let now = Instant::now();
        if drain_until.is_none() && stop.load(Ordering::Relaxed) {
            drain_until = Some(now + Duration::from_secs(10));
        }
        if drain_until.is_none() && now >= next_send {
            if let Err(e) = conn.write_all(format!("{}\n", stats.sent).as_bytes()) {
                stats.error = Some(format!("write: {e}"));
                break;
            }
            stats.sent += 1;
            next_send += interval;
        }
        if stats.echoed == stats.sent {
            last_echo = now;
            if drain_until.is_some() {
                break;
            }
        }
        if drain_until.is_some_and(|d| now > d) {
            break;
        }
        match reader.read_line(&mut line) {
            Ok(0) => {
                stats.error = Some("connection closed by the server".into());
                break;
            }
            Ok(_) if line.ends_with('\n') => {
                let now = Instant::now();
                stats.max_stall = stats.max_stall.max(now - last_echo);
                last_echo = now;
                if line.trim().parse::<u64>().ok() != Some(stats.echoed) {
                    stats.in_order = false;
                }
                stats.echoed += 1;
                echoed.store(stats.echoed, Ordering::Relaxed);
                line.clear();
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                stats.error = Some(format!("read: {e}"));
                break;
            }
        }
    }
    if stats.echoed < stats.sent {
        stats.max_stall = stats.max_stall.max(last_echo.elapsed());
    }
    stats
}

/// Opens a new connection from `ns` to the raw echo at `server` every 100 ms (each with a
/// 500 ms timeout) until the address the server saw satisfies `accept`; returns how long that
/// took and the address.
pub fn wait_for_egress(
    ns: &str,
    server: Ipv4Addr,
    accept: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Result<(Duration, String), String> {
    let start = Instant::now();
    let mut last = String::from("no attempt");
    while start.elapsed() < timeout {
        match services::observed_source(
            ns,
            server,
            services::RAW_ECHO_PORT,
            Duration::from_millis(500),
        ) {
            Ok(seen) => {
                let ip = seen.rsplit_once(':').map_or(seen.as_str(), |(ip, _)| ip);
                if accept(ip) {
                    return Ok((start.elapsed(), ip.to_string()));
                }
                last = format!("left as {ip}");
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("egress did not resume within {timeout:?}: {last}"))
}
