//! The egress topology the data-plane and gateway-daemon tests share, built in a [`Lab`]:
//!
//! ```text
//!  pod<i> eth0 10.244.<i+1>.10 ── vpod<i> podnode eth0 192.0.2.2 ── pn0 192.0.2.1  inet  gw0 198.51.100.1 ── eth0 198.51.100.4 gwnode
//!                                                                     lo 203.0.113.1
//! ```
//! `inet` forwards and delivers each secondary IP to the gateway node's primary one (as the
//! VNet does); `gwnode` masquerades everything leaving eth0, as a Kubernetes node does. The
//! gateway namespace is only named, for the code under test to create.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};

use egress_dataplane::control::LinkControl;
use egress_dataplane::state::{IngressReturnPath, PodRouting, PodTunnelState};
use egress_dataplane::{
    AddressSpec, FwMark, NetnsName, NetnsRef, PrivateKey, PublicKey, RouteSpec,
};

use crate::lab::{Lab, name};

/// The gateway node's primary IP in [`EgressWorld`].
pub const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 4);

/// The "internet" address on `inet`'s loopback in [`EgressWorld`].
pub const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// The namespaces of the egress topology.
#[derive(Debug)]
pub struct EgressWorld {
    /// The router between the nodes, holding [`INTERNET`].
    pub inet: NetnsRef,
    /// The gateway node's host namespace.
    pub gwnode: NetnsRef,
    /// The pod node's host namespace.
    pub podnode: NetnsRef,
    /// One namespace per pod, each wired to `podnode`.
    pub pods: Vec<NetnsRef>,
    /// The gateway namespace's name; not created.
    pub gateway_netns: NetnsName,
}

impl EgressWorld {
    /// The tunnel of pod `i` as the CNI plugin would program it: `wg0` with its socket in
    /// `podnode`, a fresh key, all traffic to the gateway `gateway` at `endpoint`, ingress
    /// return path on mark and table 8738, loose reverse-path filter.
    pub fn pod_tunnel(&self, i: usize, gateway: PublicKey, endpoint: SocketAddr) -> PodTunnelState {
        PodTunnelState {
            netns: self.pods[i].clone(),
            socket_netns: self.podnode.clone(),
            interface: name("wg0"),
            eth: name("eth0"),
            eth_gateway: Ipv4Addr::new(10, 244, u8::try_from(i).unwrap() + 1, 1),
            private_key: PrivateKey::generate(),
            addresses: BTreeSet::new(),
            mtu: 1420,
            gateway_peer: PodTunnelState::gateway_peer(gateway, endpoint),
            routing: PodRouting::StaticEgressGateway {
                exclude: BTreeSet::new(),
            },
            ipv6: None,
            ingress: Some(IngressReturnPath {
                mark: FwMark::new(8738).unwrap(),
                table: 8738,
                rule_priority: 32765,
            }),
            loose_rp_filter: true,
        }
    }
}

impl Lab {
    /// Builds the egress topology with `pods` pods, routing each of `secondaries` from `inet`
    /// to the gateway node.
    pub async fn egress_world(&mut self, pods: u8, secondaries: &[Ipv4Addr]) -> EgressWorld {
        let inet = self.netns("inet").await;
        let gwnode = self.netns("gwnode").await;
        let podnode = self.netns("podnode").await;
        self.wire(
            (&gwnode, "eth0", "198.51.100.4/24"),
            (&inet, "gw0", "198.51.100.1/24"),
        )
        .await;
        self.wire(
            (&podnode, "eth0", "192.0.2.2/24"),
            (&inet, "pn0", "192.0.2.1/24"),
        )
        .await;
        self.links
            .add_address(
                &inet,
                &name("lo"),
                &AddressSpec::plain(format!("{INTERNET}/32").parse().unwrap()),
            )
            .await
            .unwrap();
        self.forwarding(&inet).await;
        self.forwarding(&podnode).await;
        let default = |via: &str| {
            RouteSpec::via(
                "0.0.0.0/0".parse().unwrap(),
                via.parse().unwrap(),
                name("eth0"),
            )
        };
        self.route(&gwnode, default("198.51.100.1")).await;
        self.route(&podnode, default("192.0.2.1")).await;
        // The "VNet" delivers a node's secondary IPs to that node.
        for ip in secondaries {
            self.route(
                &inet,
                RouteSpec::via(
                    format!("{ip}/32").parse().unwrap(),
                    PRIMARY.into(),
                    name("gw0"),
                ),
            )
            .await;
        }
        // Like a Kubernetes node: everything leaving eth0 is masqueraded to the primary IP.
        self.nft(
            &gwnode,
            "table ip test_node_masq {\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"eth0\" masquerade\n }\n}\n",
        );
        let mut pod_namespaces = Vec::new();
        for i in 0..pods {
            let pod = self.netns(&format!("pod{i}")).await;
            let subnet = i + 1;
            self.wire(
                (&pod, "eth0", &format!("10.244.{subnet}.10/24")),
                (
                    &podnode,
                    &format!("vpod{i}"),
                    &format!("10.244.{subnet}.1/24"),
                ),
            )
            .await;
            self.route(&pod, default(&format!("10.244.{subnet}.1")))
                .await;
            pod_namespaces.push(pod);
        }
        let gateway_netns = self.netns_name("gw");
        EgressWorld {
            inet,
            gwnode,
            podnode,
            pods: pod_namespaces,
            gateway_netns,
        }
    }
}
