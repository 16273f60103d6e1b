//! The gateway side of the privileged end-to-end tests: a "node", an "internet" and a gateway
//! node wired together, and the gateway daemon's job reduced to a loop that turns every
//! PodEndpoint into a peer of one egress-dataplane `GatewayTunnel`.
//!
//! ```text
//!  node eth0 192.0.2.2 ── pn0 192.0.2.1  inet  gw0 198.51.100.1 ── eth0 198.51.100.4  gwnode
//!                                       lo 203.0.113.1                ILB 198.51.100.100
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use egress_api::PodEndpoint;
use egress_dataplane::exec::NetlinkLinks;
use egress_dataplane::state::GatewayTunnel;
use egress_dataplane::{
    Dataplane, GatewayNodeState, NetnsRef, Peer, PublicKey, observe_request_for_gateway_node,
    plan_gateway_node,
};
use egress_testkit::{Client, ExecutorGuard, Netns, WireGuardExecutor, backend, ip};
use futures::StreamExt;
use kube::Api;

pub const PORT: u16 = 6000;
pub const ILB: &str = "198.51.100.100";
pub const EGRESS_IP: &str = "198.51.100.10";
pub const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 4);
pub const INTERNET: &str = "203.0.113.1:8080";

/// One connection from `ns`: the source address the server saw.
pub fn seen_from(ns: &NetnsRef, addr: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().unwrap();
    Client::connect(ns, addr, Duration::from_secs(3))
        .map(|c| c.seen_as)
        .map_err(|e| format!("connect to {addr}: {e}"))
}

pub async fn converge(dp: &Dataplane, node: &GatewayNodeState) {
    let observed = dp
        .observe(&observe_request_for_gateway_node(node))
        .await
        .unwrap();
    dp.apply(&plan_gateway_node(node, &observed)).await.unwrap();
}

/// The gateway daemon's job, reduced: every PodEndpoint of `sgcs` becomes a peer of a fresh
/// `tunnel()`, with its IPv4 and (when the endpoint has one) its IPv6 `/128` as allowed IPs.
pub async fn serve_gateway(
    client: kube::Client,
    dp: Dataplane,
    mut node: GatewayNodeState,
    tunnel: impl Fn() -> GatewayTunnel,
    sgcs: &'static [&'static str],
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let api: Api<PodEndpoint> = Api::all(client);
    let mut events = kube::runtime::watcher(api.clone(), Default::default()).boxed();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            event = events.next() => if event.is_none() { return },
        }
        let Ok(list) = api.list(&Default::default()).await else {
            continue;
        };
        let mut gw = tunnel();
        for pe in list {
            let spec = pe.spec;
            if !sgcs.contains(&spec.static_gateway_configuration.as_deref().unwrap_or("")) {
                continue;
            }
            let (Some(k), Some(ip)) = (spec.pod_public_key, spec.pod_ip_address) else {
                continue;
            };
            let mut allowed_ips = vec![ip.parse::<ipnet::IpNet>().unwrap()];
            allowed_ips.extend(
                spec.pod_ipv6_address
                    .map(|v6| v6.parse::<ipnet::IpNet>().unwrap()),
            );
            let _ = gw.upsert_peer(Peer {
                public_key: PublicKey::from_base64(&k).unwrap(),
                allowed_ips: allowed_ips.into_iter().collect(),
                endpoint: None,
            });
        }
        node.remove_gateway(gw.listen_port);
        node.add_gateway(gw).unwrap();
        converge(&dp, &node).await;
    }
}

pub struct World {
    pub node: Netns,
    pub inet: Netns,
    pub gwnode: Netns,
    pub gwns: Netns,
}

/// The IPv4 topology above, namespaces named `<tag>-node` etc.
pub fn world(tag: &str) -> World {
    let w = World {
        node: Netns::new(&format!("{tag}node")),
        inet: Netns::new(&format!("{tag}inet")),
        gwnode: Netns::new(&format!("{tag}gwnode")),
        gwns: Netns::new(&format!("{tag}gw")),
    };
    let (n, i, g) = (&w.node.0, &w.inet.0, &w.gwnode.0);
    ip(&[
        "link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", "pn0", "netns", i,
    ]);
    ip(&[
        "link", "add", "eth0", "netns", g, "type", "veth", "peer", "name", "gw0", "netns", i,
    ]);
    for (ns, dev, addr) in [
        (n, "eth0", "192.0.2.2/24"),
        (i, "pn0", "192.0.2.1/24"),
        (g, "eth0", "198.51.100.4/24"),
        (i, "gw0", "198.51.100.1/24"),
    ] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    ip(&["-n", i, "addr", "add", "203.0.113.1/32", "dev", "lo"]);
    ip(&["-n", n, "route", "add", "default", "via", "192.0.2.1"]);
    ip(&["-n", g, "route", "add", "default", "via", "198.51.100.1"]);
    // The "VNet" delivers the gateway node's secondary IP to it.
    ip(&[
        "-n",
        i,
        "route",
        "add",
        &format!("{EGRESS_IP}/32"),
        "via",
        "198.51.100.4",
    ]);
    sysctl(&[n, i], "net.ipv4.ip_forward=1");
    w
}

/// Sets `key=value` in each of `namespaces`.
pub fn sysctl(namespaces: &[&String], setting: &str) {
    for ns in namespaces {
        ip(&["netns", "exec", ns, "sysctl", "-qw", setting]);
    }
}

/// The gateway node of `w` running `tunnel`, programmed once: its data plane, the guard that
/// stops the WireGuard daemons it started, and its desired state (for [`serve_gateway`]).
pub async fn gateway_node(
    w: &World,
    logs: &Path,
    tunnel: GatewayTunnel,
) -> (Dataplane, ExecutorGuard, GatewayNodeState) {
    let links = Arc::new(NetlinkLinks::new());
    let wg = WireGuardExecutor::new(backend(), links.clone(), Some(logs.to_path_buf()));
    let dp = wg.dataplane(links);
    let mut node =
        GatewayNodeState::new(w.gwnode.netns_ref(), "eth0".parse().unwrap(), PRIMARY).unwrap();
    node.gateway_netns = w.gwns.0.parse().unwrap();
    node.ilb_addresses.insert(ILB.parse().unwrap());
    node.add_gateway(tunnel).unwrap();
    converge(&dp, &node).await;
    (dp, ExecutorGuard(wg), node)
}
