//! [`LinkControl`] over rtnetlink: one netlink socket per namespace, opened from a thread
//! that entered it (a netlink socket stays bound to the namespace it was created in) and
//! then driven from the async runtime. "Exists" and "not found" answers count as success.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{
    AddressMessageBuilder, Handle, IpVersion, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::control::LinkControl;
use crate::error::NetlinkError;
use crate::names::{InterfaceName, NetnsRef};
use crate::netns::{open_netns, run_in_netns_async};
use crate::observed::{ObservedLink, ObservedNetns};
use crate::spec::{AddressSpec, FwMark, NextHop, RouteSpec, RuleSpec};

const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;
const EAFNOSUPPORT: i32 = 97;
const LOCAL_TABLE: u32 = 255;

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(-msg.raw_code()),
        _ => None,
    }
}

/// Links, addresses, routes and rules through rtnetlink.
#[derive(Debug, Default)]
pub struct NetlinkLinks {
    /// Sockets by namespace identity (device and inode of the nsfs file), so a namespace
    /// deleted and recreated under the same name gets a fresh socket.
    handles: Mutex<HashMap<(u64, u64), Handle>>,
}

fn ns_identity(netns: &NetnsRef) -> Result<(u64, u64), NetlinkError> {
    let file = open_netns(netns)?;
    let meta = file.metadata().map_err(|e| NetlinkError::Connect {
        netns: netns.clone(),
        source: Box::new(e),
    })?;
    Ok((meta.dev(), meta.ino()))
}

impl NetlinkLinks {
    /// A fresh executor with no open sockets.
    pub fn new() -> Self {
        Self::default()
    }

    /// The netlink handle of `netns`, opening the socket on first use.
    pub async fn handle(&self, netns: &NetnsRef) -> Result<Handle, NetlinkError> {
        let key = ns_identity(netns)?;
        if let Some(h) = self.lock().get(&key) {
            return Ok(h.clone());
        }
        let runtime = tokio::runtime::Handle::current();
        let opened = run_in_netns_async(netns, move || {
            // The socket registers with the caller's runtime but is created in this thread's
            // namespace.
            let _guard = runtime.enter();
            rtnetlink::new_connection().map(|(conn, handle, _)| (conn, handle))
        })
        .await?;
        let (conn, handle) = opened.map_err(|e| NetlinkError::Connect {
            netns: netns.clone(),
            source: Box::new(e),
        })?;
        tokio::spawn(conn);
        self.lock().insert(key, handle.clone());
        Ok(handle)
    }

    /// Drops the socket of a namespace (so it does not keep a deleted namespace alive).
    pub fn forget(&self, netns: &NetnsRef) {
        if let Ok(key) = ns_identity(netns) {
            self.lock().remove(&key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u64), Handle>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index of a link by name.
    pub async fn index(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
    ) -> Result<Option<u32>, NetlinkError> {
        let h = self.handle(netns).await?;
        let mut stream = h
            .link()
            .get()
            .match_name(link.as_str().to_owned())
            .execute();
        match stream.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(e) if matches!(errno(&e), Some(ENODEV)) => Ok(None),
            Err(source) => Err(request(netns, format!("look up link {link}"), source)),
        }
    }

    async fn require_index(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
    ) -> Result<u32, NetlinkError> {
        self.index(netns, link)
            .await?
            .ok_or_else(|| NetlinkError::LinkNotFound {
                netns: netns.clone(),
                link: link.clone(),
            })
    }
}

fn request(netns: &NetnsRef, action: String, source: rtnetlink::Error) -> NetlinkError {
    NetlinkError::Request {
        action,
        netns: netns.clone(),
        source: Box::new(source),
    }
}

/// Maps "already exists" / "not found" answers to success.
fn tolerate(
    result: Result<(), rtnetlink::Error>,
    ok: &[i32],
    netns: &NetnsRef,
    action: impl FnOnce() -> String,
) -> Result<(), NetlinkError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if errno(&e).is_some_and(|code| ok.contains(&code)) => Ok(()),
        Err(e) => Err(request(netns, action(), e)),
    }
}

fn link_from(msg: &LinkMessage) -> Option<(InterfaceName, ObservedLink)> {
    let mut name = None;
    let mut mtu = None;
    let mut kind = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = n.parse().ok(),
            LinkAttribute::Mtu(m) => mtu = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Some((
        name?,
        ObservedLink {
            index: msg.header.index,
            kind,
            up: msg.header.flags.contains(LinkFlags::Up),
            mtu,
            addresses: Default::default(),
        },
    ))
}

fn address_from(msg: &AddressMessage, ifname: &str) -> Option<AddressSpec> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(l) if l != ifname => label = Some(l.clone()),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    let addr = IpNet::new(ip, msg.header.prefix_len).ok()?;
    Some(AddressSpec { addr, label })
}

fn route_from(msg: &RouteMessage, names: &BTreeMap<u32, InterfaceName>) -> Option<RouteSpec> {
    if msg.header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(msg.header.table);
    let mut dst = match msg.header.address_family {
        AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut oif = None;
    let mut next_hop = NextHop::OnLink;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = IpAddr::V4(*a),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = IpAddr::V6(*a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet(gw)) => {
                next_hop = NextHop::Gateway(IpAddr::V4(*gw))
            }
            RouteAttribute::Gateway(RouteAddress::Inet6(gw)) => {
                next_hop = NextHop::Gateway(IpAddr::V6(*gw))
            }
            RouteAttribute::Via(RouteVia::Inet6(gw)) => next_hop = NextHop::ViaInet6(*gw),
            // Next hops we do not model (an IPv6 route via an IPv4 next hop, multipath):
            // such routes are not ours.
            RouteAttribute::Via(_) | RouteAttribute::MultiPath(_) => return None,
            _ => {}
        }
    }
    if table == LOCAL_TABLE || kernel_managed(dst) {
        return None;
    }
    // Each family's next hop must be one the executor can program back.
    match (dst, next_hop) {
        (IpAddr::V4(_), NextHop::Gateway(IpAddr::V6(_)))
        | (IpAddr::V6(_), NextHop::Gateway(IpAddr::V4(_)) | NextHop::ViaInet6(_)) => return None,
        _ => {}
    }
    let destination = IpNet::new(dst, msg.header.destination_prefix_length).ok()?;
    Some(RouteSpec {
        table,
        destination,
        device: names.get(&oif?)?.clone(),
        next_hop,
    })
}

/// IPv6 destinations the kernel routes by itself on every link: link-local (`fe80::/10`,
/// from each link's own address) and multicast.
fn kernel_managed(dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.is_unicast_link_local() || v6.is_multicast(),
    }
}

fn rule_from(msg: &RuleMessage) -> Option<RuleSpec> {
    if msg.header.action != RuleAction::ToTable {
        return None;
    }
    let mut table = u32::from(msg.header.table);
    let mut priority = 0;
    let mut fwmark = None;
    let mut source = None;
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::FwMark(m) => fwmark = FwMark::new(*m),
            RuleAttribute::Source(ip) => source = IpNet::new(*ip, msg.header.src_len).ok(),
            // Selectors we do not model: such rules are not ours.
            RuleAttribute::Destination(_)
            | RuleAttribute::Iifname(_)
            | RuleAttribute::Oifname(_) => return None,
            _ => {}
        }
    }
    Some(RuleSpec {
        ipv6: msg.header.family == AddressFamily::Inet6,
        priority,
        fwmark,
        source,
        table,
    })
}

fn route_message(route: &RouteSpec, index: u32) -> Option<RouteMessage> {
    match route.destination {
        IpNet::V4(dst) => {
            let b = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(dst.network(), dst.prefix_len())
                .output_interface(index)
                .table_id(route.table);
            Some(
                match route.next_hop {
                    NextHop::OnLink => b.scope(RouteScope::Link),
                    NextHop::Gateway(IpAddr::V4(gw)) => b.gateway(gw),
                    NextHop::Gateway(IpAddr::V6(_)) => return None,
                    NextHop::ViaInet6(gw) => b.via(gw),
                }
                .build(),
            )
        }
        IpNet::V6(dst) => {
            // IPv6 has no route scopes: an on-link route is one without a gateway.
            let b = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(dst.network(), dst.prefix_len())
                .output_interface(index)
                .table_id(route.table);
            Some(
                match route.next_hop {
                    NextHop::OnLink => b,
                    NextHop::Gateway(IpAddr::V6(gw)) => b.gateway(gw),
                    NextHop::Gateway(IpAddr::V4(_)) | NextHop::ViaInet6(_) => return None,
                }
                .build(),
            )
        }
    }
}

fn rule_message(rule: &RuleSpec) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = if rule.ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    msg.header.action = RuleAction::ToTable;
    if rule.table > 255 {
        msg.attributes.push(RuleAttribute::Table(rule.table));
    } else {
        msg.header.table = u8::try_from(rule.table).unwrap_or(0);
    }
    msg.attributes.push(RuleAttribute::Priority(rule.priority));
    if let Some(mark) = rule.fwmark {
        msg.attributes.push(RuleAttribute::FwMark(mark.value()));
    }
    if let Some(src) = rule.source {
        msg.header.src_len = src.prefix_len();
        msg.attributes.push(RuleAttribute::Source(src.addr()));
    }
    msg
}

fn address_message(index: u32, address: &AddressSpec) -> AddressMessage {
    let mut msg = match address.addr {
        IpNet::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(v4.addr(), v4.prefix_len())
            .build(),
        IpNet::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(v6.addr(), v6.prefix_len())
            .build(),
    };
    if let (Some(label), IpNet::V4(_)) = (&address.label, address.addr) {
        msg.attributes.push(AddressAttribute::Label(label.clone()));
    }
    msg
}

/// What an address add carries beyond the address: an IPv4 label, or for IPv6 "no
/// duplicate address detection". Our IPv6 addresses are assigned, not guessed (the tunnels'
/// link-local, the node's secondary IPv6 from Azure); DAD would only hold them tentative,
/// unusable as a source and unanswered to neighbour solicitations, for a second or more.
fn address_add_attribute(address: &AddressSpec) -> Option<AddressAttribute> {
    match (&address.label, address.addr) {
        (Some(label), IpNet::V4(_)) => Some(AddressAttribute::Label(label.clone())),
        (None, IpNet::V4(_)) => None,
        (_, IpNet::V6(_)) => Some(AddressAttribute::Flags(AddressFlags::Nodad)),
    }
}

fn unsupported_route(netns: &NetnsRef, route: &RouteSpec) -> NetlinkError {
    request(
        netns,
        format!("program route {route}"),
        rtnetlink::Error::InvalidNla(
            "supported: IPv4 routes on-link, via an IPv4 gateway or via inet6; IPv6 routes on-link or via an IPv6 gateway".into(),
        ),
    )
}

#[async_trait]
impl LinkControl for NetlinkLinks {
    async fn observe(&self, netns: &NetnsRef) -> Result<ObservedNetns, NetlinkError> {
        let h = self.handle(netns).await?;
        let mut ns = ObservedNetns::default();
        let mut names = BTreeMap::new();
        let links: Vec<LinkMessage> = h
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| request(netns, "list links".into(), e))?;
        for msg in &links {
            if let Some((name, link)) = link_from(msg) {
                names.insert(link.index, name.clone());
                ns.links.insert(name, link);
            }
        }
        let addrs: Vec<AddressMessage> = h
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| request(netns, "list addresses".into(), e))?;
        for msg in &addrs {
            let Some(name) = names.get(&msg.header.index) else {
                continue;
            };
            if let (Some(spec), Some(link)) =
                (address_from(msg, name.as_str()), ns.links.get_mut(name))
            {
                link.addresses.insert(spec);
            }
        }
        let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
        for (query, what) in [(v4, "list IPv4 routes"), (v6, "list IPv6 routes")] {
            let routes: Vec<RouteMessage> = match h.route().get(query).execute().try_collect().await
            {
                Ok(routes) => routes,
                // A kernel without IPv6 has no IPv6 routes.
                Err(e) if errno(&e) == Some(EAFNOSUPPORT) => Vec::new(),
                Err(e) => return Err(request(netns, what.into(), e)),
            };
            // Sorted by the family of each route, not of the query: a kernel without IPv6
            // answers an IPv6 dump with every family.
            for spec in routes.iter().filter_map(|m| route_from(m, &names)) {
                ns.routes_of_mut(&spec.destination).insert(spec);
            }
        }
        for (version, what) in [
            (IpVersion::V4, "list IPv4 rules"),
            (IpVersion::V6, "list IPv6 rules"),
        ] {
            let rules: Vec<RuleMessage> = match h.rule().get(version).execute().try_collect().await
            {
                Ok(rules) => rules,
                // A kernel without IPv6 has no IPv6 rules.
                Err(e) if errno(&e) == Some(EAFNOSUPPORT) => Vec::new(),
                Err(e) => return Err(request(netns, what.into(), e)),
            };
            ns.rules.extend(rules.iter().filter_map(rule_from));
        }
        Ok(ns)
    }

    async fn create_veth(
        &self,
        netns: &NetnsRef,
        name: &InterfaceName,
        peer_netns: &NetnsRef,
        peer: &InterfaceName,
    ) -> Result<(), NetlinkError> {
        let h = self.handle(netns).await?;
        let peer_file: Option<File> = if peer_netns == netns {
            None
        } else {
            Some(open_netns(peer_netns)?)
        };
        let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new().name(peer.as_str().to_owned());
        if let Some(file) = &peer_file {
            peer_msg = peer_msg.setns_by_fd(file.as_raw_fd());
        }
        let msg = LinkVeth::new(name.as_str(), peer.as_str())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
            .build();
        let result = h.link().add(msg).execute().await;
        drop(peer_file);
        tolerate(result, &[EEXIST], netns, || {
            format!("create veth {name} peer {peer} in {peer_netns}")
        })
    }

    async fn delete_link(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
    ) -> Result<(), NetlinkError> {
        let Some(index) = self.index(netns, link).await? else {
            return Ok(());
        };
        let h = self.handle(netns).await?;
        tolerate(
            h.link().del(index).execute().await,
            &[ENODEV],
            netns,
            || format!("delete link {link}"),
        )
    }

    async fn move_link(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        to: &NetnsRef,
        new_name: Option<&InterfaceName>,
    ) -> Result<(), NetlinkError> {
        let index = self.require_index(netns, link).await?;
        let h = self.handle(netns).await?;
        let target = open_netns(to)?;
        let mut msg = LinkUnspec::new_with_index(index).setns_by_fd(target.as_raw_fd());
        if let Some(name) = new_name {
            // Moved and renamed in one request: the link never appears in the target under
            // its old name.
            msg = msg.name(name.as_str().to_owned());
        }
        let result = h.link().set(msg.build()).execute().await;
        drop(target);
        result.map_err(|e| request(netns, format!("move link {link} to {to}"), e))
    }

    async fn set_up(&self, netns: &NetnsRef, link: &InterfaceName) -> Result<(), NetlinkError> {
        let index = self.require_index(netns, link).await?;
        let h = self.handle(netns).await?;
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| request(netns, format!("set {link} up"), e))
    }

    async fn set_mtu(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        mtu: u32,
    ) -> Result<(), NetlinkError> {
        let index = self.require_index(netns, link).await?;
        let h = self.handle(netns).await?;
        h.link()
            .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
            .execute()
            .await
            .map_err(|e| request(netns, format!("set {link} mtu {mtu}"), e))
    }

    async fn add_address(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        address: &AddressSpec,
    ) -> Result<(), NetlinkError> {
        let index = self.require_index(netns, link).await?;
        let h = self.handle(netns).await?;
        let mut req = h
            .address()
            .add(index, address.addr.addr(), address.addr.prefix_len());
        if let Some(extra) = address_add_attribute(address) {
            req.message_mut().attributes.push(extra);
        }
        tolerate(req.execute().await, &[EEXIST], netns, || {
            format!("add address {address} dev {link}")
        })
    }

    async fn del_address(
        &self,
        netns: &NetnsRef,
        link: &InterfaceName,
        address: &AddressSpec,
    ) -> Result<(), NetlinkError> {
        let Some(index) = self.index(netns, link).await? else {
            return Ok(());
        };
        let h = self.handle(netns).await?;
        let result = h
            .address()
            .del(address_message(index, address))
            .execute()
            .await;
        tolerate(result, &[EADDRNOTAVAIL, ENODEV, ENOENT], netns, || {
            format!("delete address {address} dev {link}")
        })
    }

    async fn add_route(&self, netns: &NetnsRef, route: &RouteSpec) -> Result<(), NetlinkError> {
        let index = self.require_index(netns, &route.device).await?;
        let msg = route_message(route, index).ok_or_else(|| unsupported_route(netns, route))?;
        let h = self.handle(netns).await?;
        h.route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| request(netns, format!("replace route {route}"), e))
    }

    async fn del_route(&self, netns: &NetnsRef, route: &RouteSpec) -> Result<(), NetlinkError> {
        let Some(index) = self.index(netns, &route.device).await? else {
            return Ok(());
        };
        let mut msg = route_message(route, index).ok_or_else(|| unsupported_route(netns, route))?;
        // Match whoever added it (the kernel's connected routes are proto kernel) and any
        // scope, as `ip route del` does.
        msg.header.protocol = RouteProtocol::Unspec;
        msg.header.scope = RouteScope::NoWhere;
        let h = self.handle(netns).await?;
        tolerate(
            h.route().del(msg).execute().await,
            &[ESRCH, ENOENT],
            netns,
            || format!("delete route {route}"),
        )
    }

    async fn add_rule(&self, netns: &NetnsRef, rule: &RuleSpec) -> Result<(), NetlinkError> {
        let h = self.handle(netns).await?;
        // Always ToTable: a rule without an action is "lookup N none", which drops traffic.
        let mut req = h
            .rule()
            .add()
            .priority(rule.priority)
            .table_id(rule.table)
            .action(RuleAction::ToTable);
        if let Some(mark) = rule.fwmark {
            req = req.fw_mark(mark.value());
        }
        // The family is the rule's; a source of the other family cannot be expressed.
        let result = match (rule.ipv6, rule.source) {
            (false, Some(IpNet::V4(src))) => {
                req.v4()
                    .source_prefix(src.addr(), src.prefix_len())
                    .execute()
                    .await
            }
            (true, Some(IpNet::V6(src))) => {
                req.v6()
                    .source_prefix(src.addr(), src.prefix_len())
                    .execute()
                    .await
            }
            (_, Some(_)) => {
                return Err(request(
                    netns,
                    format!("add rule {rule}"),
                    rtnetlink::Error::InvalidNla(
                        "a rule's source must be of the rule's family".into(),
                    ),
                ));
            }
            (false, None) => req.v4().execute().await,
            (true, None) => req.v6().execute().await,
        };
        tolerate(result, &[EEXIST], netns, || format!("add rule {rule}"))
    }

    async fn del_rule(&self, netns: &NetnsRef, rule: &RuleSpec) -> Result<(), NetlinkError> {
        let h = self.handle(netns).await?;
        tolerate(
            h.rule().del(rule_message(rule)).execute().await,
            &[ENOENT],
            netns,
            || format!("delete rule {rule}"),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::spec::MAIN_TABLE;

    fn names() -> BTreeMap<u32, InterfaceName> {
        [
            (2, "eth0".parse().unwrap()),
            (3, "wg-6000".parse().unwrap()),
        ]
        .into()
    }

    fn spec(destination: &str, device: &str, next_hop: NextHop, table: u32) -> RouteSpec {
        RouteSpec {
            table,
            destination: destination.parse().unwrap(),
            device: device.parse().unwrap(),
            next_hop,
        }
    }

    fn gw(ip: &str) -> NextHop {
        NextHop::Gateway(ip.parse().unwrap())
    }

    /// A route as the kernel reports it: the message we would send, with `proto kernel`
    /// or `boot` and the table in both header and attribute as a dump has them.
    fn dumped(route: &RouteSpec, index: u32) -> RouteMessage {
        let mut msg = route_message(route, index).unwrap();
        msg.header.protocol = RouteProtocol::Kernel;
        msg.attributes.push(RouteAttribute::Table(route.table));
        msg
    }

    #[test]
    fn routes_of_both_families_round_trip_through_messages() {
        for route in [
            spec("0.0.0.0/0", "eth0", gw("10.0.0.1"), MAIN_TABLE),
            spec("10.244.1.5/32", "wg-6000", NextHop::OnLink, MAIN_TABLE),
            spec(
                "0.0.0.0/0",
                "wg-6000",
                NextHop::ViaInet6("fe80::1".parse().unwrap()),
                MAIN_TABLE,
            ),
            spec("::/0", "wg-6000", gw("fe80::1"), MAIN_TABLE),
            spec("::/0", "eth0", gw("fd00::1"), 8738),
            spec("fd00:10:244::5/128", "wg-6000", NextHop::OnLink, MAIN_TABLE),
            spec("2001:db8::/32", "eth0", NextHop::OnLink, 100),
        ] {
            let index = if route.device.as_str() == "eth0" {
                2
            } else {
                3
            };
            assert_eq!(
                route_from(&dumped(&route, index), &names()),
                Some(route.clone()),
                "{route}"
            );
        }
    }

    #[test]
    fn ipv6_routes_are_programmed_without_scope_and_with_an_ipv6_gateway() {
        let on_link = route_message(
            &spec("fd00::10/128", "eth0", NextHop::OnLink, MAIN_TABLE),
            2,
        )
        .unwrap();
        assert_eq!(on_link.header.address_family, AddressFamily::Inet6);
        assert_eq!(on_link.header.scope, RouteScope::Universe);
        assert_eq!(on_link.header.destination_prefix_length, 128);
        let via = route_message(&spec("::/0", "eth0", gw("fd00::1"), MAIN_TABLE), 2).unwrap();
        assert!(
            via.attributes
                .contains(&RouteAttribute::Gateway(RouteAddress::Inet6(
                    "fd00::1".parse().unwrap()
                )))
        );
        // A family mismatch cannot be programmed: refused, not guessed.
        assert!(route_message(&spec("::/0", "eth0", gw("10.0.0.1"), MAIN_TABLE), 2).is_none());
        assert!(
            route_message(
                &spec(
                    "::/0",
                    "eth0",
                    NextHop::ViaInet6("fe80::1".parse().unwrap()),
                    MAIN_TABLE
                ),
                2
            )
            .is_none()
        );
        assert!(route_message(&spec("0.0.0.0/0", "eth0", gw("fd00::1"), MAIN_TABLE), 2).is_none());
    }

    #[test]
    fn kernel_managed_and_unmodelled_ipv6_routes_are_not_observed() {
        // fe80::/64 proto kernel on every link with IPv6, and multicast.
        let link_local = spec("fe80::/64", "wg-6000", NextHop::OnLink, MAIN_TABLE);
        assert_eq!(route_from(&dumped(&link_local, 3), &names()), None);
        let mut multicast = dumped(&spec("fd00::/8", "eth0", NextHop::OnLink, MAIN_TABLE), 2);
        multicast
            .attributes
            .retain(|a| !matches!(a, RouteAttribute::Destination(_)));
        multicast
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(
                "ff00::".parse().unwrap(),
            )));
        assert_eq!(route_from(&multicast, &names()), None);
        // The local table holds the node's own addresses.
        let local = spec("fd00::10/128", "eth0", NextHop::OnLink, LOCAL_TABLE);
        assert_eq!(route_from(&dumped(&local, 2), &names()), None);
        // An IPv6 route via an IPv4 next hop (RTA_VIA inet) is not one we could program back.
        let mut via4 = dumped(
            &spec("2001:db8::/32", "eth0", NextHop::OnLink, MAIN_TABLE),
            2,
        );
        via4.attributes.push(RouteAttribute::Via(RouteVia::Inet(
            "10.0.0.1".parse().unwrap(),
        )));
        assert_eq!(route_from(&via4, &names()), None);
        // Neither is a route on a link we did not see.
        let unknown = spec("2001:db8::/32", "eth0", NextHop::OnLink, MAIN_TABLE);
        assert_eq!(route_from(&dumped(&unknown, 9), &names()), None);
        // A link-local next hop is fine: only the destination decides.
        let default = spec("::/0", "wg-6000", gw("fe80::1"), MAIN_TABLE);
        assert_eq!(route_from(&dumped(&default, 3), &names()), Some(default));
    }

    #[test]
    fn ipv6_addresses_skip_dad_and_only_ipv4_ones_take_labels() {
        let v6 = AddressSpec {
            addr: "fd00::10/128".parse().unwrap(),
            label: Some("eth0:egress".into()),
        };
        assert_eq!(
            address_add_attribute(&v6),
            Some(AddressAttribute::Flags(AddressFlags::Nodad))
        );
        let v4 = AddressSpec {
            addr: "10.0.0.10/32".parse().unwrap(),
            label: Some("eth0:egress".into()),
        };
        assert_eq!(
            address_add_attribute(&v4),
            Some(AddressAttribute::Label("eth0:egress".into()))
        );
        assert_eq!(
            address_add_attribute(&AddressSpec::plain("10.0.0.10/32".parse().unwrap())),
            None
        );
        // Observed IPv6 addresses come back from IFA_ADDRESS alone.
        let msg = address_message(4, &v6);
        assert_eq!(
            address_from(&msg, "host0"),
            Some(AddressSpec::plain(v6.addr))
        );
    }
}
