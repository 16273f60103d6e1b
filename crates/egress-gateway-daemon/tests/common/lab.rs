//! Test lab for the privileged tests (after egress-dataplane's): throwaway network namespaces
//! with unique names, veth wiring between them, TCP and UDP echo servers and clients run
//! inside namespaces, and a guard that stops every wireguard-go it or a daemon under test
//! started and deletes every namespace on drop (also when a test panics).
//!
//! Traffic only flows between namespaces the lab created, with documentation addresses
//! (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and private ranges inside them. The host's
//! own interfaces, routes and root namespace are never touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use egress_dataplane::control::LinkControl;
use egress_dataplane::exec::NetlinkLinks;
use egress_dataplane::netns::{self, run_in_netns};
use egress_dataplane::spec::SysctlKey;
use egress_dataplane::wireguard::{UserspaceConfig, UserspaceWireGuard};
use egress_dataplane::{AddressSpec, Dataplane, InterfaceName, NetnsName, NetnsRef, RouteSpec};

/// True when the test may run; prints why not otherwise. Missing tools fail loudly: CI
/// installs them, and a silent skip would hide a broken setup.
pub fn privileged() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: privileged data-plane test needs root (CI runs it as root)");
        return false;
    }
    for tool in ["wireguard-go", "nft"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is missing: apt-get install -y --no-install-recommends wireguard-go nftables"
        );
    }
    true
}

pub fn name(s: &str) -> InterfaceName {
    s.parse().unwrap()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Owns the namespaces and daemons of one test.
pub struct Lab {
    prefix: String,
    log_dir: std::path::PathBuf,
    namespaces: Vec<NetnsName>,
    pub links: Arc<NetlinkLinks>,
    pub wireguard: Arc<UserspaceWireGuard>,
    pub dataplane: Dataplane,
    servers: Vec<EchoServer>,
    udp_servers: Vec<UdpEcho>,
    daemons: Vec<Arc<UserspaceWireGuard>>,
}

impl Lab {
    pub fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("gwd{}-{n}", std::process::id());
        let log_dir = std::env::temp_dir().join(format!("egress-gateway-daemon-{prefix}"));
        let links = Arc::new(NetlinkLinks::new());
        let wireguard = Arc::new(UserspaceWireGuard::new(
            links.clone(),
            UserspaceConfig {
                log_dir: log_dir.clone(),
                ..UserspaceConfig::default()
            },
        ));
        let dataplane = Dataplane::system(links.clone(), wireguard.clone());
        Self {
            prefix,
            log_dir,
            namespaces: Vec::new(),
            links,
            wireguard,
            dataplane,
            servers: Vec::new(),
            udp_servers: Vec::new(),
            daemons: Vec::new(),
        }
    }

    /// Fresh executors for a daemon under test (as its process would build them); the lab
    /// stops the wireguard-go processes they start.
    pub fn daemon_dataplane(&mut self) -> Dataplane {
        let links = Arc::new(NetlinkLinks::new());
        let wireguard = Arc::new(UserspaceWireGuard::new(
            links.clone(),
            UserspaceConfig {
                log_dir: self.log_dir.clone(),
                ..UserspaceConfig::default()
            },
        ));
        self.daemons.push(wireguard.clone());
        Dataplane::system(links, wireguard)
    }

    /// Starts a UDP echo server in `ns`; it stops when the lab drops.
    pub fn udp_echo_server(&mut self, ns: &NetnsRef, addr: SocketAddr) {
        self.udp_servers.push(UdpEcho::start(ns, addr));
    }

    /// A fresh executor set, as a restarted daemon would build (daemons are not its own).
    pub fn restarted_dataplane(&self) -> (Dataplane, Arc<UserspaceWireGuard>) {
        let links = Arc::new(NetlinkLinks::new());
        let wireguard = Arc::new(UserspaceWireGuard::new(
            links.clone(),
            UserspaceConfig::default(),
        ));
        (Dataplane::system(links, wireguard.clone()), wireguard)
    }

    /// A unique namespace name for `role`, not created yet (the library may create it).
    pub fn netns_name(&mut self, role: &str) -> NetnsName {
        let name: NetnsName = format!("{}-{role}", self.prefix).parse().unwrap();
        self.namespaces.push(name.clone());
        name
    }

    /// Creates a namespace with `lo` up.
    pub async fn netns(&mut self, role: &str) -> NetnsRef {
        let name = self.netns_name(role);
        netns::create_netns(&name).unwrap();
        let ns = NetnsRef::Named(name);
        self.links.set_up(&ns, &name_of("lo")).await.unwrap();
        ns
    }

    /// A veth pair between two namespaces with one address on each end, both up.
    pub async fn wire(&self, a: (&NetnsRef, &str, &str), b: (&NetnsRef, &str, &str)) {
        let (a_ns, a_if, a_addr) = a;
        let (b_ns, b_if, b_addr) = b;
        self.links
            .create_veth(a_ns, &name(a_if), b_ns, &name(b_if))
            .await
            .unwrap();
        for (ns, ifname, addr) in [(a_ns, a_if, a_addr), (b_ns, b_if, b_addr)] {
            self.links
                .add_address(
                    ns,
                    &name(ifname),
                    &AddressSpec::plain(addr.parse().unwrap()),
                )
                .await
                .unwrap();
            self.links.set_up(ns, &name(ifname)).await.unwrap();
        }
    }

    pub async fn route(&self, ns: &NetnsRef, route: RouteSpec) {
        self.links.add_route(ns, &route).await.unwrap();
    }

    pub async fn forwarding(&self, ns: &NetnsRef) {
        use egress_dataplane::control::SysctlControl;
        egress_dataplane::exec::ProcSysctl
            .write(ns, &SysctlKey::ipv4_forwarding(), "1")
            .await
            .unwrap();
    }

    /// Loads an nftables ruleset into a namespace (test scaffolding only).
    pub fn nft(&self, ns: &NetnsRef, ruleset: &str) {
        let text = ruleset.to_owned();
        let status = run_in_netns(ns, move || {
            let mut child = std::process::Command::new("nft")
                .args(["-f", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            child.wait().unwrap()
        })
        .unwrap();
        assert!(status.success());
    }

    /// Starts a TCP echo server in `ns`; it stops when the lab drops.
    pub fn echo_server(&mut self, ns: &NetnsRef, addr: SocketAddr) {
        self.servers.push(EchoServer::start(ns, addr));
    }
}

fn name_of(s: &str) -> InterfaceName {
    name(s)
}

impl Drop for Lab {
    fn drop(&mut self) {
        for server in &mut self.servers {
            server.stop();
        }
        for server in &mut self.udp_servers {
            server.stop();
        }
        for wg in &self.daemons {
            wg.stop_all_started();
        }
        self.wireguard.stop_all_started();
        for ns in self.namespaces.iter().rev() {
            self.links.forget(&NetnsRef::Named(ns.clone()));
            let _ = netns::delete_netns(ns);
        }
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }
}

/// Answers each connection with `client=<source address>` and then echoes lines.
pub struct EchoServer {
    addr: SocketAddr,
    ns: NetnsRef,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start(ns: &NetnsRef, addr: SocketAddr) -> Self {
        // The listening socket is created inside `ns` and stays there.
        let listener = run_in_netns(ns, move || TcpListener::bind(addr))
            .unwrap()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                std::thread::spawn(move || {
                    let peer = conn.peer_addr().unwrap();
                    if writeln!(conn, "client={}", peer.ip()).is_err() {
                        return;
                    }
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        if conn.write_all(line.as_bytes()).is_err() {
                            break;
                        }
                        line.clear();
                    }
                });
            }
        });
        Self {
            addr,
            ns: ns.clone(),
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let addr = self.addr;
        let _ = run_in_netns(&self.ns, move || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        });
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client connection made from inside a namespace.
pub struct Client {
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

/// Retries `connect` until it succeeds or `within` passes (the tunnel needs a handshake, and
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

/// Echoes every datagram back to its sender.
pub struct UdpEcho {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    fn start(ns: &NetnsRef, addr: SocketAddr) -> Self {
        let socket = run_in_netns(ns, move || std::net::UdpSocket::bind(addr))
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

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends numbered datagrams from `ns` to `addr` every `every` until stopped; counts echoes.
pub struct UdpStream {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    received: Arc<std::sync::Mutex<std::collections::BTreeSet<usize>>>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpStream {
    pub fn start(ns: &NetnsRef, addr: SocketAddr, every: Duration) -> Self {
        let socket = run_in_netns(ns, move || {
            let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
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
        let received = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
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
