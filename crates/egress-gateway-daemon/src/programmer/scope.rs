//! Which gateway an operation of the node plan belongs to. Used to hold back only the
//! gateway whose operation failed (the others go on), and to tell, from a plan against the
//! kernel's current state, which gateways are fully programmed (nothing left to do but peers).

use std::collections::BTreeSet;

use egress_dataplane::{GatewayNodeState, InterfaceName, Op};
use ipnet::IpNet;

/// What an operation concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole node (namespace, sysctls, veth, ILB addresses, nftables, default routes).
    Node,
    /// One gateway, by listen port.
    Gateway(u16),
    /// A pod peer or its route.
    Peer,
    /// Removal of something no gateway wants.
    Cleanup,
}

fn gateway_by_link(state: &GatewayNodeState, link: &InterfaceName) -> Option<u16> {
    state
        .gateways()
        .values()
        .find(|g| g.interface == *link)
        .map(|g| g.listen_port)
}

fn gateway_by_secondary(state: &GatewayNodeState, addr: &IpNet) -> Option<u16> {
    state
        .gateways()
        .values()
        .find(|g| match addr {
            IpNet::V4(v4) => v4.prefix_len() == 32 && g.secondary_ip == v4.addr(),
            IpNet::V6(v6) => v6.prefix_len() == 128 && g.secondary_ipv6() == Some(v6.addr()),
        })
        .map(|g| g.listen_port)
}

fn is_tunnel(link: &InterfaceName) -> bool {
    link.as_str().starts_with("wg-")
}

/// The scope of `op` within the plan for `state`.
pub fn scope(op: &Op, state: &GatewayNodeState) -> Scope {
    match op {
        Op::AddPeer { .. } | Op::RemovePeer { .. } => Scope::Peer,
        Op::CreateWireGuard { device, .. } | Op::ConfigureWireGuard { device, .. } => {
            gateway_by_link(state, &device.name).map_or(Scope::Node, Scope::Gateway)
        }
        Op::DeleteWireGuard { device } => {
            gateway_by_link(state, &device.name).map_or(Scope::Cleanup, Scope::Gateway)
        }
        Op::SetMtu { link, .. } | Op::SetLinkUp { link, .. } => {
            gateway_by_link(state, link).map_or(Scope::Node, Scope::Gateway)
        }
        Op::AddAddress { link, address, .. } => gateway_by_link(state, link)
            .or_else(|| {
                (*link == state.veth.gateway)
                    .then(|| gateway_by_secondary(state, &address.addr))
                    .flatten()
            })
            .map_or(Scope::Node, Scope::Gateway),
        Op::DelAddress { link, address, .. } => {
            // A secondary IP the OS put on the host interface breaks that gateway's return path.
            if *link == state.host_interface
                && let Some(port) = gateway_by_secondary(state, &address.addr)
            {
                return Scope::Gateway(port);
            }
            Scope::Cleanup
        }
        Op::AddRoute { route, .. } => {
            if is_tunnel(&route.device) {
                return Scope::Peer;
            }
            if route.device == state.veth.host
                && let Some(port) = gateway_by_secondary(state, &route.destination)
            {
                return Scope::Gateway(port);
            }
            Scope::Node
        }
        Op::DelRoute { route, .. } if is_tunnel(&route.device) => Scope::Peer,
        Op::DelRoute { .. } | Op::DeleteLink { .. } | Op::DeleteNftTable { .. } => Scope::Cleanup,
        Op::CreateNetns { .. }
        | Op::SetSysctl { .. }
        | Op::CreateVeth { .. }
        | Op::MoveLink { .. }
        | Op::AddRule { .. }
        | Op::DelRule { .. }
        | Op::ReplaceNftTable { .. } => Scope::Node,
    }
}

/// The gateways of `state` that `ops` (a plan against the current kernel state) leaves
/// incomplete. `None` means every gateway (a node-level step is missing).
pub fn incomplete(ops: &[Op], state: &GatewayNodeState) -> Option<BTreeSet<u16>> {
    let mut ports = BTreeSet::new();
    for op in ops {
        match scope(op, state) {
            Scope::Node => return None,
            Scope::Gateway(port) => {
                ports.insert(port);
            }
            Scope::Peer | Scope::Cleanup => {}
        }
    }
    Some(ports)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use egress_dataplane::state::GatewayTunnel;
    use egress_dataplane::{AddressSpec, NetnsRef, PrivateKey, RouteSpec};

    #[test]
    fn a_secondary_ip_of_either_family_belongs_to_its_gateway() {
        let mut state = GatewayNodeState::new(
            NetnsRef::Current,
            "eth0".parse().unwrap(),
            "10.0.0.4".parse().unwrap(),
        )
        .unwrap();
        let gw = GatewayTunnel::new(6000, PrivateKey::generate(), "10.0.0.10".parse().unwrap())
            .unwrap()
            .with_secondary_ipv6("fd00::10".parse().unwrap())
            .unwrap();
        state.add_gateway(gw).unwrap();
        let host0 = state.veth.gateway.clone();
        let add = |addr: &str| Op::AddAddress {
            netns: state.gateway_netns_ref(),
            link: host0.clone(),
            address: AddressSpec::plain(addr.parse().unwrap()),
        };
        assert_eq!(scope(&add("10.0.0.10/32"), &state), Scope::Gateway(6000));
        assert_eq!(scope(&add("fd00::10/128"), &state), Scope::Gateway(6000));
        assert_eq!(scope(&add("fd00::11/128"), &state), Scope::Node);
        let route = Op::AddRoute {
            netns: NetnsRef::Current,
            route: RouteSpec::on_link("fd00::10/128".parse().unwrap(), state.veth.host.clone()),
        };
        assert_eq!(scope(&route, &state), Scope::Gateway(6000));
        let os_added = Op::DelAddress {
            netns: NetnsRef::Current,
            link: state.host_interface.clone(),
            address: AddressSpec::plain("fd00::10/64".parse().unwrap()),
        };
        assert_eq!(scope(&os_added, &state), Scope::Cleanup, "not a /128");
    }
}
