//! SNAT and conntrack use per gateway and egress IP, so users see port exhaustion coming: every
//! `--metrics-interval-seconds` the conntrack table of the gateway namespace (where the SNAT
//! happens) is dumped over netlink (ctnetlink, `netlink-packet-netfilter` of the rust-netlink
//! project rtnetlink comes from) on a thread inside that namespace. A connection SNATed by a
//! gateway has its original source (the pod) differ from its reply destination (the egress
//! IP); its conntrack mark is the gateway's port (`wg-<port>`), which names the gateway.
//!
//! Per egress IP: the number of entries, and the share of the SNAT source-port range
//! (1024-65535, the range Linux NAT takes for sources at or above 1024) in use toward the
//! busiest destination (address, port, protocol): each connection to one destination needs
//! its own source port, so at 1.0 new connections to it fail.
//!
//! Why netlink and not `/proc/net/nf_conntrack`: the proc file needs
//! `CONFIG_NF_CONNTRACK_PROCFS`, which is deprecated and off in several distribution kernels,
//! and its text format is not a stable interface; ctnetlink is what `conntrack -L` uses and
//! exists wherever NAT does. Reading needs no capability beyond the daemon's `NET_ADMIN`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use egress_dataplane::NetnsRef;
use egress_dataplane::netns::run_in_netns_async;
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::metrics::{Metrics, SnatLabels};
use crate::status::StatusBook;

/// Source ports Linux NAT picks from for sources at or above 1024.
pub const SNAT_PORTS: u32 = 65535 - 1024 + 1;

/// One conntrack entry, as far as SNAT accounting needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Connection mark (the gateway's port for tunnelled connections).
    pub mark: u32,
    /// IP protocol number.
    pub protocol: u8,
    /// Original direction source address (the pod).
    pub orig_src: IpAddr,
    /// Reply direction source: the destination the pod talks to.
    pub reply_src: IpAddr,
    /// Its port.
    pub reply_src_port: u16,
    /// Reply direction destination: the address the connection was SNATed to.
    pub reply_dst: IpAddr,
    /// The SNAT source port.
    pub reply_dst_port: u16,
}

/// Per egress IP (with the gateway its mark names): entries and the busiest destination's
/// share of the port range. Connections that were not SNATed are left out.
pub fn summarize(
    flows: &[Flow],
    gateway_of_mark: &BTreeMap<u32, String>,
) -> BTreeMap<SnatLabels, (u64, f64)> {
    type Dest = (IpAddr, u16, u8);
    let mut per_ip: BTreeMap<SnatLabels, (u64, BTreeMap<Dest, BTreeSet<u16>>)> = BTreeMap::new();
    for f in flows.iter().filter(|f| f.orig_src != f.reply_dst) {
        let labels = SnatLabels {
            gateway: gateway_of_mark.get(&f.mark).cloned().unwrap_or_default(),
            egress_ip: f.reply_dst.to_string(),
        };
        let e = per_ip.entry(labels).or_default();
        e.0 += 1;
        e.1.entry((f.reply_src, f.reply_src_port, f.protocol))
            .or_default()
            .insert(f.reply_dst_port);
    }
    per_ip
        .into_iter()
        .map(|(labels, (entries, dests))| {
            let busiest = dests.values().map(BTreeSet::len).max().unwrap_or(0);
            let share =
                f64::from(u32::try_from(busiest).unwrap_or(u32::MAX)) / f64::from(SNAT_PORTS);
            (labels, (entries, share.min(1.0)))
        })
        .collect()
}

fn protocol_number(p: Protocol) -> u8 {
    u8::from(p)
}

fn tuple_fields(tuples: &[Tuple]) -> (Option<IpAddr>, Option<IpAddr>, u16, u16, u8) {
    let (mut src, mut dst, mut sport, mut dport, mut proto) = (None, None, 0, 0, 0);
    for t in tuples {
        match t {
            Tuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        _ => {}
                    }
                }
            }
            Tuple::Proto(ps) => {
                for p in ps {
                    match p {
                        ProtoTuple::Protocol(x) => proto = protocol_number(*x),
                        ProtoTuple::SourcePort(x) => sport = *x,
                        ProtoTuple::DestinationPort(x) => dport = *x,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (src, dst, sport, dport, proto)
}

/// A conntrack entry's attributes as a [`Flow`] (`None` when a tuple is incomplete).
pub fn flow_of(attrs: &[ConntrackAttribute]) -> Option<Flow> {
    let (mut orig, mut reply, mut mark) = (None, None, 0);
    for a in attrs {
        match a {
            ConntrackAttribute::CtaTupleOrig(t) => orig = Some(tuple_fields(t)),
            ConntrackAttribute::CtaTupleReply(t) => reply = Some(tuple_fields(t)),
            ConntrackAttribute::CtaMark(m) => mark = *m,
            _ => {}
        }
    }
    let (orig_src, _, _, _, _) = orig?;
    let (reply_src, reply_dst, reply_src_port, reply_dst_port, protocol) = reply?;
    Some(Flow {
        mark,
        protocol,
        orig_src: orig_src?,
        reply_src: reply_src?,
        reply_src_port,
        reply_dst: reply_dst?,
        reply_dst_port,
    })
}

/// Dumps the IPv4 and the IPv6 conntrack tables of the calling thread's network namespace
/// (a dual-stack gateway SNATs both; an IPv4-only one has no IPv6 entries).
pub fn dump() -> std::io::Result<Vec<Flow>> {
    let mut flows = dump_family(NetfilterProtoFamily::IPv4)?;
    flows.extend(dump_family(NetfilterProtoFamily::IPv6)?);
    Ok(flows)
}

fn dump_family(family: NetfilterProtoFamily) -> std::io::Result<Vec<Flow>> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(family, 0, 0),
            ConntrackMessage::Get(Vec::new()),
        )),
    );
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let invalid = |e: netlink_packet_core::DecodeError| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
    };
    let mut flows = Vec::new();
    let mut rx = vec![0u8; 1 << 16];
    loop {
        let n = socket.recv(&mut &mut rx[..], 0)?;
        let mut offset = 0;
        while offset < n {
            let msg =
                NetlinkMessage::<NetfilterMessage>::deserialize(&rx[offset..n]).map_err(invalid)?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(flows),
                NetlinkPayload::Error(e) => {
                    return Err(e.to_io());
                }
                NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner:
                        NetfilterMessageInner::Conntrack(
                            ConntrackMessage::New(attrs) | ConntrackMessage::Get(attrs),
                        ),
                    ..
                }) => flows.extend(flow_of(&attrs)),
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

/// Which gateway each connection mark names: `wg-<port>` carries mark `<port>`.
fn gateways_by_mark(book: &StatusBook) -> BTreeMap<u32, String> {
    book.gateways()
        .into_iter()
        .filter_map(|(sgc, iface)| {
            let port = iface.strip_prefix("wg-")?.parse().ok()?;
            Some((port, sgc.to_string()))
        })
        .collect()
}

/// Why one sample failed.
#[derive(Debug, thiserror::Error)]
pub enum SnatError {
    /// The sampling thread could not enter the gateway namespace.
    #[error("failed to enter the gateway namespace: {0}")]
    Netns(#[from] egress_dataplane::netns::NetnsError),
    /// The conntrack dump failed.
    #[error("failed to read the conntrack table: {0}")]
    Conntrack(#[from] std::io::Error),
}

/// One sample, as the loop takes it: dumps the gateway namespace's conntrack table, names each
/// mark's gateway from `book`, sets the SNAT series of `metrics` and returns what it set.
pub async fn sample_once(
    gateway_netns: &NetnsRef,
    book: &StatusBook,
    metrics: &Metrics,
) -> Result<BTreeMap<SnatLabels, (u64, f64)>, SnatError> {
    let flows = run_in_netns_async(gateway_netns, dump).await??;
    let total = u64::try_from(flows.len()).unwrap_or(u64::MAX);
    let summary = summarize(&flows, &gateways_by_mark(book));
    metrics.set_snat(&summary, total);
    Ok(summary)
}

/// One turn of the loop. Without gateways the namespace may not exist yet, so nothing is
/// sampled; the per-egress-IP series are dropped instead, or the last gateway's would stay at
/// their last values (and keep a port-exhaustion alert firing) after it left the node.
async fn tick(gateway_netns: &NetnsRef, book: &StatusBook, metrics: &Metrics) {
    if book.gateways().is_empty() {
        metrics.clear_snat();
    } else if let Err(e) = sample_once(gateway_netns, book, metrics).await {
        metrics.error("conntrack");
        tracing::debug!(error = %e, "SNAT sample failed");
    }
}

/// Samples every `interval` until dropped.
pub async fn sample_snat(
    gateway_netns: NetnsRef,
    book: StatusBook,
    metrics: Metrics,
    interval: Duration,
) {
    loop {
        tick(&gateway_netns, &book, &metrics).await;
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn flow(pod: &str, dst: &str, dport: u16, egress: &str, sport: u16) -> Flow {
        Flow {
            mark: 6000,
            protocol: 6,
            orig_src: pod.parse().unwrap(),
            reply_src: dst.parse().unwrap(),
            reply_src_port: dport,
            reply_dst: egress.parse().unwrap(),
            reply_dst_port: sport,
        }
    }

    #[test]
    fn entries_per_egress_ip_and_the_busiest_destinations_port_share() {
        let mut flows: Vec<Flow> = (0..6452)
            .map(|i| flow("10.244.1.5", "198.51.100.7", 443, "10.0.1.5", 1024 + i))
            .collect();
        flows.push(flow("10.244.1.6", "198.51.100.8", 80, "10.0.1.5", 2000));
        flows.push(flow("10.244.1.7", "198.51.100.8", 80, "10.0.1.6", 2000));
        // Not SNATed (reply comes back to the pod itself): left out.
        flows.push(flow("10.244.1.8", "198.51.100.8", 80, "10.244.1.8", 5555));
        let marks = [(6000, "ns/gw".to_string())].into();
        let s = summarize(&flows, &marks);
        let l = |ip: &str| SnatLabels {
            gateway: "ns/gw".into(),
            egress_ip: ip.into(),
        };
        assert_eq!(s.len(), 2);
        let (entries, share) = s[&l("10.0.1.5")];
        assert_eq!(entries, 6453);
        assert!((share - 0.1).abs() < 0.001, "{share}");
        assert_eq!(s[&l("10.0.1.6")].0, 1);
    }

    #[tokio::test]
    async fn without_gateways_the_last_samples_series_are_dropped_and_nothing_is_read() {
        let metrics = Metrics::new();
        let labels = SnatLabels {
            gateway: "ns/gw".into(),
            egress_ip: "10.0.1.5".into(),
        };
        metrics.set_snat(&[(labels, (3, 0.9))].into(), 3);
        // A namespace that does not exist: reading it would count a `conntrack` error.
        let netns = NetnsRef::Named("no-such-gateway-netns".parse().unwrap());
        tick(&netns, &StatusBook::default(), &metrics).await;
        let text = metrics.encode().unwrap();
        assert!(!text.contains("egress_gateway_snat_"), "{text}");
        assert_eq!(metrics.errors("conntrack"), 0);
    }

    #[test]
    fn the_mark_names_the_gateway_and_an_unknown_mark_stays_empty() {
        let mut f = flow("10.244.1.5", "198.51.100.7", 443, "10.0.1.5", 3000);
        f.mark = 7;
        let s = summarize(&[f], &BTreeMap::new());
        assert_eq!(s.keys().next().unwrap().gateway, "");
    }
}
