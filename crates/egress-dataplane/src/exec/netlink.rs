//! [`LinkControl`] over rtnetlink: one netlink socket per namespace, opened from a thread
//! that entered it (a netlink socket stays bound to the namespace it was created in) and
//! then driven from the async runtime. "Exists" and "not found" answers count as success.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
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
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut oif = None;
    let mut next_hop = NextHop::OnLink;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet(gw)) => {
                next_hop = NextHop::Gateway(IpAddr::V4(*gw))
            }
            RouteAttribute::Via(RouteVia::Inet6(gw)) => next_hop = NextHop::ViaInet6(*gw),
            RouteAttribute::MultiPath(_) => return None,
            _ => {}
        }
    }
    if table == LOCAL_TABLE {
        return None;
    }
    let destination = IpNet::new(IpAddr::V4(dst), msg.header.destination_prefix_length).ok()?;
    Some(RouteSpec {
        table,
        destination,
        device: names.get(&oif?)?.clone(),
        next_hop,
    })
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
        priority,
        fwmark,
        source,
        table,
    })
}

fn route_message(route: &RouteSpec, index: u32) -> Option<RouteMessage> {
    let IpNet::V4(dst) = route.destination else {
        return None;
    };
    let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst.network(), dst.prefix_len())
        .output_interface(index)
        .table_id(route.table);
    b = match route.next_hop {
        NextHop::OnLink => b.scope(RouteScope::Link),
        NextHop::Gateway(IpAddr::V4(gw)) => b.gateway(gw),
        NextHop::Gateway(IpAddr::V6(_)) => return None,
        NextHop::ViaInet6(gw) => b.via(gw),
    };
    Some(b.build())
}

fn rule_message(rule: &RuleSpec) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = AddressFamily::Inet;
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
        IpNet::V6(v6) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(index)
            .address(v6.addr(), v6.prefix_len())
            .build(),
    };
    if let (Some(label), IpNet::V4(_)) = (&address.label, address.addr) {
        msg.attributes.push(AddressAttribute::Label(label.clone()));
    }
    msg
}

fn unsupported_route(netns: &NetnsRef, route: &RouteSpec) -> NetlinkError {
    request(
        netns,
        format!("program route {route}"),
        rtnetlink::Error::InvalidNla(
            "only IPv4 routes with an IPv4 gateway or an IPv6 via are supported".into(),
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
        let routes: Vec<RouteMessage> = h
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|e| request(netns, "list routes".into(), e))?;
        ns.routes = routes
            .iter()
            .filter_map(|m| route_from(m, &names))
            .collect();
        let rules: Vec<RuleMessage> = h
            .rule()
            .get(IpVersion::V4)
            .execute()
            .try_collect()
            .await
            .map_err(|e| request(netns, "list rules".into(), e))?;
        ns.rules = rules.iter().filter_map(rule_from).collect();
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
        if let (Some(label), IpNet::V4(_)) = (&address.label, address.addr) {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Label(label.clone()));
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
            .v4()
            .priority(rule.priority)
            .table_id(rule.table)
            .action(RuleAction::ToTable);
        if let Some(mark) = rule.fwmark {
            req = req.fw_mark(mark.value());
        }
        if let Some(IpNet::V4(src)) = rule.source {
            req = req.source_prefix(src.addr(), src.prefix_len());
        }
        tolerate(req.execute().await, &[EEXIST], netns, || {
            format!("add rule {rule}")
        })
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
