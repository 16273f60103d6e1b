//! A TCP echo server run inside a namespace that greets each connection with the source
//! address it saw (so a test can check SNAT), and the client that reads that greeting.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use egress_dataplane::NetnsRef;
use egress_dataplane::netns::run_in_netns;

/// Answers each connection with `client=<source address>` and then echoes lines; stops on
/// drop. The listener is polled without blocking, so stopping never needs to reach its
/// namespace (which a test may already have deleted).
#[derive(Debug)]
pub struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Binds `addr` inside `ns` (the socket stays there) and starts serving.
    pub fn start(ns: &NetnsRef, addr: SocketAddr) -> Self {
        let listener = run_in_netns(ns, move || TcpListener::bind(addr))
            .unwrap()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        std::thread::spawn(move || serve(conn, peer));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(mut conn: TcpStream, peer: SocketAddr) {
    if conn.set_nonblocking(false).is_err() || writeln!(conn, "client={}", peer.ip()).is_err() {
        return;
    }
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if conn.write_all(line.as_bytes()).is_err() {
            break;
        }
        line.clear();
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client connection made from inside a namespace.
#[derive(Debug)]
pub struct Client {
    /// The connection, for tuning timeouts.
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The source address the server saw.
    pub seen_as: String,
}

impl Client {
    /// Connects from `ns` and reads the greeting.
    pub fn connect(ns: &NetnsRef, addr: SocketAddr, timeout: Duration) -> std::io::Result<Client> {
        let stream = run_in_netns(ns, move || TcpStream::connect_timeout(&addr, timeout))
            .map_err(std::io::Error::other)??;
        stream.set_read_timeout(Some(timeout))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut greeting = String::new();
        reader.read_line(&mut greeting)?;
        let seen_as = greeting
            .trim()
            .strip_prefix("client=")
            .ok_or_else(|| std::io::Error::other(format!("bad greeting {greeting:?}")))?
            .to_owned();
        Ok(Client {
            stream,
            reader,
            seen_as,
        })
    }

    /// Sends one line and waits for its echo.
    pub fn echo(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.stream, "{text}")?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if line.trim() == text {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("echo mismatch: {line:?}")))
        }
    }
}

/// Retries `connect` until it succeeds or `within` passes (a tunnel needs a handshake, and
/// wireguard-go notices a moved interface going up within about a second).
pub fn connect_within(ns: &NetnsRef, addr: SocketAddr, within: Duration) -> Client {
    let deadline = Instant::now() + within;
    loop {
        match Client::connect(ns, addr, Duration::from_millis(500)) {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => {
                panic!("no connection from {ns} to {addr} within {within:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
