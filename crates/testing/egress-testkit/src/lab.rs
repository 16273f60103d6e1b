//! The lab of one privileged test: throwaway network namespaces with unique names, veth
//! wiring between them through the data plane's own executors (WireGuard of the backend
//! [`crate::backend()`] selects), echo servers inside them, and a guard that on drop (also
//! when the test panics) stops every server and every wireguard-go it or a daemon under test
//! started, then deletes every namespace (kernel WireGuard links go with them).
//!
//! Traffic only flows between namespaces the lab created; the host's own interfaces, routes
//! and root namespace are never touched.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use egress_dataplane::control::{LinkControl, SysctlControl};
use egress_dataplane::exec::{NetlinkLinks, ProcSysctl};
use egress_dataplane::netns::{self, run_in_netns};
use egress_dataplane::spec::SysctlKey;
use egress_dataplane::{
    AddressSpec, Dataplane, InterfaceName, NetnsName, NetnsRef, RouteSpec, WgDeviceId,
};

use crate::backend::{WgInstance, WireGuardExecutor, backend};

use crate::tcp_echo::EchoServer;
use crate::udp_echo::UdpEcho;

/// An interface name from a literal.
pub fn name(s: &str) -> InterfaceName {
    s.parse().unwrap()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Owns the namespaces, servers and daemons of one test.
pub struct Lab {
    prefix: String,
    log_dir: PathBuf,
    namespaces: Vec<NetnsName>,
    /// The lab's link executor (also usable for observing).
    pub links: Arc<NetlinkLinks>,
    /// The lab's WireGuard executor; its wireguard-go daemons stop when the lab drops.
    pub wireguard: WireGuardExecutor,
    /// The lab's executor set.
    pub dataplane: Dataplane,
    servers: Vec<EchoServer>,
    udp_servers: Vec<UdpEcho>,
    daemons: Vec<WireGuardExecutor>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("prefix", &self.prefix)
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

impl Lab {
    /// A lab whose namespaces are named `<tag><pid>-<n>-<role>` (unique per process and lab).
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{tag}{}-{n}", std::process::id());
        let log_dir = std::env::temp_dir().join(format!("egress-testkit-{prefix}"));
        let links = Arc::new(NetlinkLinks::new());
        let wireguard = WireGuardExecutor::new(backend(), links.clone(), Some(log_dir.clone()));
        let dataplane = wireguard.dataplane(links.clone());
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
        let wireguard =
            WireGuardExecutor::new(backend(), links.clone(), Some(self.log_dir.clone()));
        self.daemons.push(wireguard.clone());
        wireguard.dataplane(links)
    }

    /// A fresh executor set, as a restarted daemon would build (daemons are not its own).
    pub fn restarted_dataplane(&self) -> (Dataplane, WireGuardExecutor) {
        let links = Arc::new(NetlinkLinks::new());
        let wireguard = WireGuardExecutor::new(backend(), links.clone(), None);
        (wireguard.dataplane(links), wireguard)
    }

    /// What serves `device` as seen by the lab's executor: the wireguard-go daemon it started
    /// or adopted, or the kernel link; `None` when nothing does.
    pub async fn wireguard_instance(&self, device: &WgDeviceId) -> Option<WgInstance> {
        self.wireguard.instance(&self.links, device).await
    }

    /// A unique namespace name for `role`, not created yet (the library may create it); the
    /// lab deletes it on drop.
    pub fn netns_name(&mut self, role: &str) -> NetnsName {
        let name: NetnsName = format!("{}-{role}", self.prefix).parse().unwrap();
        self.namespaces.push(name.clone());
        name
    }

    /// Creates a namespace with `lo` up.
    pub async fn netns(&mut self, role: &str) -> NetnsRef {
        let netns_name = self.netns_name(role);
        netns::create_netns(&netns_name).unwrap();
        let ns = NetnsRef::Named(netns_name);
        self.links.set_up(&ns, &name("lo")).await.unwrap();
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

    /// Adds a route in `ns`.
    pub async fn route(&self, ns: &NetnsRef, route: RouteSpec) {
        self.links.add_route(ns, &route).await.unwrap();
    }

    /// Turns IPv4 forwarding on in `ns`.
    pub async fn forwarding(&self, ns: &NetnsRef) {
        ProcSysctl
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

    /// Starts a UDP echo server in `ns`; it stops when the lab drops.
    pub fn udp_echo_server(&mut self, ns: &NetnsRef, addr: SocketAddr) {
        self.udp_servers.push(UdpEcho::start(ns, addr));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.servers.clear();
        self.udp_servers.clear();
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
