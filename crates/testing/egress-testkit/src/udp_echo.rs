//! A UDP echo server run inside a namespace, and a numbered datagram stream that counts which
//! datagrams came back (to measure loss across a restart).

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use egress_dataplane::NetnsRef;
use egress_dataplane::netns::run_in_netns;

/// Echoes every datagram back to its sender; stops on drop.
#[derive(Debug)]
pub struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    /// Binds `addr` inside `ns` and starts echoing.
    pub fn start(ns: &NetnsRef, addr: SocketAddr) -> Self {
        let socket = run_in_netns(ns, move || UdpSocket::bind(addr))
            .unwrap()
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::SeqCst) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends numbered datagrams from `ns` to `addr` every `every` until stopped; counts echoes.
#[derive(Debug)]
pub struct UdpStream {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    received: Arc<Mutex<BTreeSet<usize>>>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpStream {
    /// Starts sending from a socket created inside `ns`.
    pub fn start(ns: &NetnsRef, addr: SocketAddr, every: Duration) -> Self {
        let socket = run_in_netns(ns, move || {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.connect(addr)?;
            Ok::<_, std::io::Error>(s)
        })
        .unwrap()
        .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let reader = socket.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(BTreeSet::new()));
        let (flag, count) = (stop.clone(), sent.clone());
        let sender = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let n = count.load(Ordering::SeqCst);
                if socket.send(&n.to_be_bytes()).is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(every);
            }
        });
        let (flag, got) = (stop.clone(), received.clone());
        let receiver = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            // Keep reading a little after the sender stops, for echoes in flight.
            let mut quiet_since: Option<Instant> = None;
            loop {
                match reader.recv(&mut buf) {
                    Ok(8) => {
                        let n = usize::from_be_bytes(buf[..8].try_into().unwrap());
                        got.lock().unwrap().insert(n);
                        quiet_since = None;
                    }
                    _ => {
                        if flag.load(Ordering::SeqCst) {
                            let since = *quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_millis(500) {
                                break;
                            }
                        }
                    }
                }
            }
        });
        Self {
            stop,
            sent,
            received,
            threads: vec![sender, receiver],
        }
    }

    /// Datagrams echoed so far.
    pub fn echoed(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Stops; returns (sent, numbers never echoed).
    pub fn finish(mut self) -> (usize, Vec<usize>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let sent = self.sent.load(Ordering::SeqCst);
        let got = self.received.lock().unwrap();
        let lost = (0..sent).filter(|n| !got.contains(n)).collect();
        (sent, lost)
    }
}
