//! The namespaces of one run and their wiring: a VNet router joining every node over a veth
//! (node `eth0` = its NIC's primary IP, default route via the router), an "internet" namespace
//! behind the VNet edge, per-backend policy routes for the load balancer, and routes for pod
//! CIDRs and secondary IPs. Nothing is connected to the host's own interfaces.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::netns::{self, NetnsError};
use crate::seed::{self, NodeSpec, Role};

/// A node's network identity in the simulation.
#[derive(Debug, Clone)]
pub struct NodeNet {
    /// The node.
    pub spec: NodeSpec,
    /// Its namespace (plays the VM's host namespace).
    pub ns: String,
    /// Primary IP (from the emulator's NIC).
    pub primary_ip: Ipv4Addr,
    /// Router-side interface.
    pub router_if: String,
    /// Packet mark / routing table that sends load-balanced traffic to this node.
    pub mark: u32,
}

/// Names of one run's namespaces.
#[derive(Debug, Clone)]
pub struct Topology {
    /// VNet router.
    pub vnet: String,
    /// Internet.
    pub inet: String,
    /// Nodes.
    pub nodes: Vec<NodeNet>,
    /// Whether the subnet, nodes, pods and internet also have IPv6.
    pub dual_stack: bool,
}

/// Router-side name of the edge link.
pub const EDGE_IF: &str = "edge";

impl Topology {
    /// Names for a run's namespaces (nothing is created).
    pub fn plan(run_id: &str, nodes: &[NodeSpec], primary_ips: &[Ipv4Addr]) -> Self {
        let nodes = nodes
            .iter()
            .zip(primary_ips)
            .enumerate()
            .map(|(i, (spec, ip))| NodeNet {
                spec: spec.clone(),
                ns: format!("{run_id}-{}", spec.name),
                primary_ip: *ip,
                router_if: format!("n{i}"),
                mark: crate::fabric::BACKEND_MARK_BASE + i as u32,
            })
            .collect();
        Self {
            vnet: format!("{run_id}-vnet"),
            inet: format!("{run_id}-inet"),
            nodes,
            dual_stack: false,
        }
    }

    /// The same names for a dual-stack cluster (or not).
    pub fn with_dual_stack(mut self, dual_stack: bool) -> Self {
        self.dual_stack = dual_stack;
        self
    }

    /// A node's IPv6 address in a dual-stack cluster.
    pub fn node_ipv6(&self, node: &NodeNet) -> Option<Ipv6Addr> {
        self.dual_stack.then(|| seed::node_ipv6(node.primary_ip))
    }

    /// Every namespace name, router first.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.vnet.clone(), self.inet.clone()];
        v.extend(self.nodes.iter().map(|n| n.ns.clone()));
        v
    }

    /// The node with this primary IP.
    pub fn node_by_ip(&self, ip: Ipv4Addr) -> Option<&NodeNet> {
        self.nodes.iter().find(|n| n.primary_ip == ip)
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&NodeNet> {
        self.nodes.iter().find(|n| n.spec.name == name)
    }

    /// Creates the router and internet namespaces and the edge link. `record` is called with
    /// each namespace name before it is created.
    pub fn build_core(&self, record: &mut dyn FnMut(&str)) -> Result<(), NetnsError> {
        record(&self.vnet);
        netns::create(&self.vnet, true)?;
        record(&self.inet);
        netns::create(&self.inet, false)?;
        let edge = format!("{}/{}", seed::EDGE_IP, seed::EDGE_PREFIX_LEN);
        let inet_addr = format!("{}/{}", seed::INTERNET_SERVER_IP, seed::EDGE_PREFIX_LEN);
        netns::batch(
            None,
            &[format!(
                "link add {EDGE_IF} netns {} type veth peer name eth0 netns {}",
                self.vnet, self.inet
            )],
        )?;
        netns::batch(
            Some(&self.vnet),
            &[
                format!("addr add {edge} dev {EDGE_IF}"),
                format!("link set {EDGE_IF} up"),
                format!("addr add {}/32 dev lo", seed::PROBE_SOURCE_IP),
                format!("addr add {}/32 dev lo", seed::PEERED_SERVER_IP),
                // Every host unreachable (a killed node) is reported, not one a second, so
                // the workers learn of a dead node as the router's own ILB prober does (it
                // gets the error locally), as far as their sockets surface the error.
                format!(
                    "netns exec {} sysctl -qw net.ipv4.icmp_ratelimit=0",
                    self.vnet
                ),
            ],
        )?;
        netns::batch(
            Some(&self.inet),
            &[
                format!("addr add {inet_addr} dev eth0"),
                "link set eth0 up".into(),
                format!("route add default via {}", seed::EDGE_IP),
            ],
        )?;
        if self.dual_stack {
            self.build_core_ipv6()?;
        }
        Ok(())
    }

    /// IPv6 of the router and the internet: the edge link, both echo addresses and the
    /// internet's default route back to the edge (every public IPv6 lives behind it).
    /// Addresses skip duplicate address detection: nothing else can hold them.
    fn build_core_ipv6(&self) -> Result<(), NetnsError> {
        let len = seed::EDGE6_PREFIX_LEN;
        netns::batch(
            Some(&self.vnet),
            &[
                format!("addr add {}/{len} dev {EDGE_IF} nodad", seed::EDGE_IP6),
                // The second echo address's /64 lies behind the internet namespace.
                format!(
                    "route add {} via {} dev {EDGE_IF}",
                    ipnet::Ipv6Net::new(seed::INTERNET_SERVER2_IP6, 64)
                        .map(|n| n.trunc())
                        .unwrap_or_default(),
                    seed::INTERNET_SERVER_IP6
                ),
                format!(
                    "netns exec {} sysctl -qw net.ipv6.conf.all.forwarding=1",
                    self.vnet
                ),
            ],
        )?;
        netns::batch(
            Some(&self.inet),
            &[
                format!(
                    "addr add {}/{len} dev eth0 nodad",
                    seed::INTERNET_SERVER_IP6
                ),
                format!("addr add {}/128 dev lo", seed::INTERNET_SERVER2_IP6),
                format!("route add ::/0 via {} dev eth0", seed::EDGE_IP6),
            ],
        )
    }

    /// Creates a node namespace and joins it to the router.
    pub fn build_node(&self, node: &NodeNet) -> Result<(), NetnsError> {
        netns::create(&node.ns, true)?;
        netns::batch(
            None,
            &[format!(
                "link add eth0 netns {} type veth peer name {} netns {}",
                node.ns, node.router_if, self.vnet
            )],
        )?;
        let mask = seed::SUBNET_CIDR.prefix_len();
        netns::batch(
            Some(&node.ns),
            &[
                format!("addr add {}/{mask} dev eth0 noprefixroute", node.primary_ip),
                "link set eth0 up".into(),
                format!("route add default via {} dev eth0 onlink", seed::ROUTER_IP),
                format!("addr add {}/32 dev lo", seed::IMDS_IP),
            ],
        )?;
        let mut lines = vec![
            format!("addr add {}/32 dev {}", seed::ROUTER_IP, node.router_if),
            format!("link set {} up", node.router_if),
            format!("route add {}/32 dev {}", node.primary_ip, node.router_if),
        ];
        if let Some(cidr) = node.spec.pod_cidr {
            lines.push(format!(
                "route add {cidr} via {} dev {}",
                node.primary_ip, node.router_if
            ));
        }
        if let Some(v6) = self.node_ipv6(node) {
            netns::batch(
                Some(&node.ns),
                &[
                    format!("addr add {v6}/128 dev eth0 nodad"),
                    format!(
                        "route add {} dev eth0",
                        ipnet::Ipv6Net::from(seed::ROUTER_IP6)
                    ),
                    format!("route add ::/0 via {} dev eth0", seed::ROUTER_IP6),
                    format!(
                        "netns exec {} sysctl -qw net.ipv6.conf.all.forwarding=1",
                        node.ns
                    ),
                ],
            )?;
            lines.push(format!(
                "addr add {}/128 dev {} nodad",
                seed::ROUTER_IP6,
                node.router_if
            ));
            lines.push(format!("route add {v6}/128 dev {}", node.router_if));
            if let Some(cidr) = node.spec.pod6_cidr {
                lines.push(format!("route add {cidr} via {v6} dev {}", node.router_if));
            }
        }
        if node.spec.role == Role::Gateway {
            let table = node.mark;
            lines.push(format!(
                "route add default via {} dev {} onlink table {table}",
                node.primary_ip, node.router_if
            ));
            lines.push(format!(
                "rule add fwmark {:#x} lookup {table} pref 100",
                node.mark
            ));
        }
        netns::batch(Some(&self.vnet), &lines)
    }

    /// Routes each secondary (non-primary) NIC address to its node; returns the set now routed.
    /// `wanted` is (node name, address); `routed` is what an earlier call returned.
    pub fn route_secondaries(
        &self,
        wanted: &BTreeSet<(String, IpAddr)>,
        routed: &BTreeSet<(String, IpAddr)>,
    ) -> Result<BTreeSet<(String, IpAddr)>, NetnsError> {
        let mut lines = Vec::new();
        for (node, ip) in routed.difference(wanted) {
            if self.node(node).is_some() {
                lines.push(format!("route del {}", IpNet::from(*ip)));
            }
        }
        let mut now = BTreeSet::new();
        for (name, ip) in wanted {
            let Some(node) = self.node(name) else {
                continue;
            };
            let via = match ip {
                IpAddr::V4(v4) if *v4 == node.primary_ip => continue,
                IpAddr::V4(_) => IpAddr::V4(node.primary_ip),
                // An IPv6 address of a node that has none is not routable here.
                IpAddr::V6(_) => match self.node_ipv6(node) {
                    Some(v6) => IpAddr::V6(v6),
                    None => continue,
                },
            };
            if !routed.contains(&(name.clone(), *ip)) {
                lines.push(format!(
                    "route replace {} via {via} dev {}",
                    IpNet::from(*ip),
                    node.router_if
                ));
            }
            now.insert((name.clone(), *ip));
        }
        if !lines.is_empty() {
            netns::batch(Some(&self.vnet), &lines)?;
        }
        Ok(now)
    }

    /// CIDRs whose traffic is SNATed to the outbound IP at the edge.
    pub fn inside_cidrs() -> Vec<Ipv4Net> {
        vec![seed::VNET_CIDR, seed::POD_SUPERNET]
    }

    /// IPv6 CIDRs whose traffic is SNATed to the outbound IPv6 at the edge (dual-stack).
    pub fn inside6_cidrs() -> Vec<ipnet::Ipv6Net> {
        vec![seed::VNET6_CIDR, seed::POD6_SUPERNET]
    }
}
