//! The Azure network fabric as data: what the emulator says exists (load-balancer rules with
//! backends and probes, private → public IP mappings, every NIC address) and the nftables
//! rulesets of the VNet router that implement it (1:1 NAT and outbound SNAT at the edge, the
//! internal load balancer as a 5-tuple hash over healthy backends). Pure: rendering is tested
//! without a kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

/// One load-balancing rule with its backends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LbRule {
    /// Rule name.
    pub name: String,
    /// Frontend private IP.
    pub frontend_ip: Ipv4Addr,
    /// `udp`, `tcp` or `all`.
    pub protocol: String,
    /// Frontend port.
    pub frontend_port: u16,
    /// Floating IP (destination unchanged).
    pub floating_ip: bool,
    /// Probe: port and request path (`None` = TCP probe / no probe: always healthy).
    pub probe: Option<Probe>,
    /// Backend primary IPs.
    pub backends: Vec<Ipv4Addr>,
}

/// An HTTP health probe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Probe {
    /// Port.
    pub port: u16,
    /// Request path.
    pub path: String,
}

/// A private IP that Azure maps 1:1 to a public one (IPv4, or `A` = `Ipv6Addr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IpMapping<A = Ipv4Addr> {
    /// Private (ipConfiguration) address.
    pub private_ip: A,
    /// Public address.
    pub public_ip: A,
}

/// An IPv6 private address that Azure maps 1:1 to a public one.
pub type IpMapping6 = IpMapping<Ipv6Addr>;

/// Parses `GET /admin/lbmap`.
pub fn parse_lbmap(v: &Value) -> Vec<LbRule> {
    let mut out = Vec::new();
    for lb in v["loadBalancers"].as_array().into_iter().flatten() {
        for r in lb["rules"].as_array().into_iter().flatten() {
            let Some(frontend_ip) = r["frontendIp"].as_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let probe = r["probe"].as_object().and_then(|p| {
                let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("Tcp");
                let port = p.get("port").and_then(Value::as_u64)?;
                let path = p.get("requestPath").and_then(Value::as_str).unwrap_or("/");
                protocol.eq_ignore_ascii_case("http").then(|| Probe {
                    port: u16::try_from(port).unwrap_or(0),
                    path: path.to_string(),
                })
            });
            out.push(LbRule {
                name: r["name"].as_str().unwrap_or_default().to_string(),
                frontend_ip,
                protocol: r["protocol"].as_str().unwrap_or("Udp").to_ascii_lowercase(),
                frontend_port: u16::try_from(r["frontendPort"].as_u64().unwrap_or(0)).unwrap_or(0),
                floating_ip: r["enableFloatingIP"].as_bool().unwrap_or(false),
                probe,
                backends: r["backends"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b["privateIp"].as_str()?.parse().ok())
                    .collect(),
            });
        }
    }
    out.sort();
    out
}

/// The pairs of `GET /admin/ipmap` whose two addresses parse as `A` (one family): IPv4
/// with `A` = `Ipv4Addr`, IPv6 with `Ipv6Addr`.
pub fn parse_ipmap<A: std::str::FromStr + Ord>(v: &Value) -> Vec<IpMapping<A>> {
    let mut out: Vec<IpMapping<A>> = v["mappings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some(IpMapping {
                private_ip: m["privateIp"].as_str()?.parse().ok()?,
                public_ip: m["publicIp"].as_str()?.parse().ok()?,
            })
        })
        .collect();
    out.sort();
    out
}

/// Every NIC private address of a scale-set instance, from `GET /admin/inventory`:
/// (scale-set name lower-cased, instance ID, address).
pub fn parse_instance_ips(v: &Value) -> Vec<(String, u32, IpAddr)> {
    let mut out = Vec::new();
    for r in v["resources"].as_array().into_iter().flatten() {
        let id = r["id"].as_str().unwrap_or_default().to_ascii_lowercase();
        let parts: Vec<&str> = id.split('/').collect();
        // .../virtualMachineScaleSets/{vmss}/virtualMachines/{i}/networkInterfaces/{nic}
        let Some(pos) = parts.iter().position(|p| *p == "virtualmachinescalesets") else {
            continue;
        };
        if parts.len() != pos + 6
            || parts[pos + 2] != "virtualmachines"
            || parts[pos + 4] != "networkinterfaces"
        {
            continue;
        }
        let Ok(instance) = parts[pos + 3].parse::<u32>() else {
            continue;
        };
        for ipc in r["properties"]["ipConfigurations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(ip) = ipc["properties"]["privateIPAddress"]
                .as_str()
                .and_then(|s| s.parse().ok())
            {
                out.push((parts[pos + 1].to_string(), instance, ip));
            }
        }
    }
    out
}

/// Name of the edge NAT table in the VNet router.
pub const EDGE_TABLE: &str = "sim_edge";
/// Name of the IPv6 edge NAT table in the VNet router (dual-stack clusters).
pub const EDGE6_TABLE: &str = "sim_edge6";
/// Name of the load-balancer table in the VNet router.
pub const ILB_TABLE: &str = "sim_ilb";
/// Base of the packet marks that select a backend (`mark = base + node index`).
pub const BACKEND_MARK_BASE: u32 = 0x5100;

fn replace_table(name: &str, body: &str) -> String {
    replace_family_table("ip", name, body)
}

fn replace_family_table(family: &str, name: &str, body: &str) -> String {
    format!(
        "table {family} {name} {{}}\ndelete table {family} {name}\ntable {family} {name} {{\n{body}}}\n"
    )
}

/// The edge ruleset: 1:1 DNAT/SNAT of mapped private IPs, SNAT of every other VNet or pod
/// source to the outbound IP. IPv4 in table `ip sim_edge`; IPv6 (dual-stack clusters) in
/// `ip6 sim_edge6`.
pub fn edge_ruleset<A: std::fmt::Display, N: ToString>(
    edge_if: &str,
    mappings: &[IpMapping<A>],
    inside: &[N],
    outbound: A,
) -> String {
    let pairs: Vec<(String, String)> = mappings
        .iter()
        .map(|m| (m.private_ip.to_string(), m.public_ip.to_string()))
        .collect();
    let v6 = outbound.to_string().contains(':');
    let (family, table) = if v6 {
        ("ip6", EDGE6_TABLE)
    } else {
        ("ip", EDGE_TABLE)
    };
    let body = edge_body(
        family,
        edge_if,
        &pairs,
        &strings(inside),
        &outbound.to_string(),
    );
    replace_family_table(family, table, &body)
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// The chains of an edge table of `family` (`ip` or `ip6`, also the address keyword):
/// `pairs` are (private, public).
fn edge_body(
    family: &str,
    edge_if: &str,
    pairs: &[(String, String)],
    inside: &[String],
    outbound: &str,
) -> String {
    let list = |f: &dyn Fn(&(String, String)) -> String| {
        pairs.iter().map(f).collect::<Vec<_>>().join(", ")
    };
    let mut body = String::from(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n",
    );
    if !pairs.is_empty() {
        let _ = writeln!(
            body,
            "    iifname \"{edge_if}\" {family} daddr {{ {} }} dnat to {family} daddr map {{ {} }}",
            list(&|(_, public)| public.clone()),
            list(&|(private, public)| format!("{public} : {private}"))
        );
    }
    body.push_str("  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
    if !pairs.is_empty() {
        let _ = writeln!(
            body,
            "    oifname \"{edge_if}\" {family} saddr {{ {} }} snat to {family} saddr map {{ {} }}",
            list(&|(private, _)| private.clone()),
            list(&|(private, public)| format!("{private} : {public}"))
        );
    }
    if !inside.is_empty() {
        let _ = writeln!(
            body,
            "    oifname \"{edge_if}\" {family} saddr {{ {} }} snat to {outbound}",
            inside.join(", ")
        );
    }
    body.push_str("  }\n");
    body
}

/// The load-balancer ruleset: for each rule, packets to frontend IP:port get the mark of a
/// healthy backend chosen by a hash of the 5-tuple (policy routing then sends them to that
/// backend with the destination unchanged); with no healthy backend they are dropped, as Azure
/// does. `mark_of` maps a backend IP to its mark.
pub fn ilb_ruleset(
    rules: &[LbRule],
    healthy: &BTreeMap<(String, Ipv4Addr), bool>,
    mark_of: &dyn Fn(Ipv4Addr) -> Option<u32>,
) -> String {
    let mut body = String::from(
        "  chain prerouting {\n    type filter hook prerouting priority mangle; policy accept;\n",
    );
    let mut seen = BTreeSet::new();
    for r in rules.iter().filter(|r| r.floating_ip) {
        if !seen.insert((r.frontend_ip, r.protocol.clone(), r.frontend_port)) {
            continue;
        }
        let backends: Vec<(u32, bool)> = r
            .backends
            .iter()
            .filter_map(|b| Some((mark_of(*b)?, is_healthy(r, *b, healthy))))
            .collect();
        let marks = slot_owners(&backends);
        let protos: &[&str] = match r.protocol.as_str() {
            "tcp" => &["tcp"],
            "udp" => &["udp"],
            _ => &["tcp", "udp"],
        };
        for proto in protos {
            let matcher = format!(
                "ip daddr {} meta l4proto {proto} th dport {}",
                r.frontend_ip, r.frontend_port
            );
            if marks.is_empty() {
                let _ = writeln!(body, "    {matcher} drop");
            } else {
                let map: Vec<String> = marks
                    .iter()
                    .enumerate()
                    .map(|(i, m)| format!("{i} : {m:#x}"))
                    .collect();
                let _ = writeln!(
                    body,
                    "    {matcher} meta mark set jhash ip saddr . th sport . ip daddr . th dport mod {} seed 0x5eed map {{ {} }}",
                    marks.len(),
                    map.join(", ")
                );
            }
        }
    }
    body.push_str("  }\n");
    replace_table(ILB_TABLE, &body)
}

/// Hash slots of a rule: the 5-tuple hash picks a slot, the slot a backend. 60 divides evenly
/// among 1-6, 10 or 12 backends.
pub const ILB_SLOTS: usize = 60;

/// The backend (mark) of each hash slot, from the rule's backends in order with their health:
/// a slot belongs to backend `slot mod n` while that one is healthy, else to a healthy one
/// (`slot mod h`). So a backend's loss or return moves only the flows of its own slots, and
/// a flow on a healthy backend stays there, as Azure's load balancer keeps the packets of a
/// UDP session on one healthy instance. Empty when no backend is healthy.
pub fn slot_owners(backends: &[(u32, bool)]) -> Vec<u32> {
    let up: Vec<u32> = backends
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(m, _)| *m)
        .collect();
    if up.is_empty() {
        return Vec::new();
    }
    (0..ILB_SLOTS)
        .map(|slot| match backends[slot % backends.len()] {
            (mark, true) => mark,
            _ => up[slot % up.len()],
        })
        .collect()
}

/// Whether a backend of a rule may receive traffic (rules without an HTTP probe: always).
pub fn is_healthy(
    rule: &LbRule,
    backend: Ipv4Addr,
    healthy: &BTreeMap<(String, Ipv4Addr), bool>,
) -> bool {
    match &rule.probe {
        None => true,
        Some(p) => healthy
            .get(&(probe_key(p), backend))
            .copied()
            .unwrap_or(false),
    }
}

/// Key of a probe target in the health map.
pub fn probe_key(p: &Probe) -> String {
    format!("{}{}", p.port, p.path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn lbmap() -> Value {
        json!({"loadBalancers": [{"id": "x", "name": "kubeegressgateway-ilb", "rules": [
            {"name": "r1", "frontendIp": "10.224.0.9", "protocol": "Udp", "frontendPort": 6000,
             "backendPort": 6000, "enableFloatingIP": true,
             "probe": {"protocol": "Http", "port": 8082, "requestPath": "/gw/u1"},
             "backends": [{"privateIp": "10.224.0.6"}, {"privateIp": "10.224.0.7"}]}
        ]}]})
    }

    #[test]
    fn lbmap_and_ipmap_parse() {
        let rules = parse_lbmap(&lbmap());
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].probe,
            Some(Probe {
                port: 8082,
                path: "/gw/u1".into()
            })
        );
        assert_eq!(rules[0].backends, vec![ip("10.224.0.6"), ip("10.224.0.7")]);
        let m = parse_ipmap(
            &json!({"mappings": [{"privateIp": "10.224.0.10", "publicIp": "203.0.113.0"}]}),
        );
        assert_eq!(
            m,
            vec![IpMapping {
                private_ip: ip("10.224.0.10"),
                public_ip: ip("203.0.113.0")
            }]
        );
    }

    #[test]
    fn ilb_hashes_over_healthy_backends_only() {
        let rules = parse_lbmap(&lbmap());
        let key = probe_key(rules[0].probe.as_ref().unwrap());
        let mark = |b: Ipv4Addr| Some(BACKEND_MARK_BASE + u32::from(b.octets()[3]));
        let mut health = BTreeMap::new();
        let none = ilb_ruleset(&rules, &health, &mark);
        assert!(
            none.contains("ip daddr 10.224.0.9 meta l4proto udp th dport 6000 drop"),
            "{none}"
        );
        health.insert((key.clone(), ip("10.224.0.7")), true);
        health.insert((key.clone(), ip("10.224.0.6")), false);
        let one = ilb_ruleset(&rules, &health, &mark);
        assert!(
            one.contains("mod 60 seed 0x5eed map { 0 : 0x5107, 1 : 0x5107,"),
            "{one}"
        );
        assert!(!one.contains("0x5106"), "{one}");
        health.insert((key, ip("10.224.0.6")), true);
        let two = ilb_ruleset(&rules, &health, &mark);
        assert!(
            two.contains("mod 60 seed 0x5eed map { 0 : 0x5106, 1 : 0x5107, 2 : 0x5106,"),
            "{two}"
        );
        assert!(two.starts_with("table ip sim_ilb {}\ndelete table ip sim_ilb\n"));
    }

    #[test]
    fn a_lost_backend_moves_only_its_own_slots() {
        let all = [(1, true), (2, true), (3, true)];
        let before = slot_owners(&all);
        assert_eq!(before.len(), ILB_SLOTS);
        for m in [1, 2, 3] {
            assert_eq!(before.iter().filter(|o| **o == m).count(), ILB_SLOTS / 3);
        }
        let after = slot_owners(&[(1, true), (2, false), (3, true)]);
        for (b, a) in before.iter().zip(&after) {
            if *b == 2 {
                assert_ne!(*a, 2);
            } else {
                assert_eq!(a, b, "a flow on a healthy backend stays");
            }
        }
        // The lost backend's slots spread over both survivors.
        assert!(after.contains(&1) && after.contains(&3));
        assert_eq!(
            slot_owners(&all),
            before,
            "its return takes back only its own slots"
        );
        assert!(slot_owners(&[(1, false)]).is_empty());
    }

    #[test]
    fn edge_maps_one_to_one_and_snats_the_rest() {
        let m = [IpMapping {
            private_ip: ip("10.224.0.10"),
            public_ip: ip("203.0.113.0"),
        }];
        let inside: [ipnet::Ipv4Net; 2] = [
            "10.224.0.0/16".parse().unwrap(),
            "10.244.0.0/16".parse().unwrap(),
        ];
        let r = edge_ruleset("edge", &m, &inside, ip("198.51.100.200"));
        assert!(r.contains("iifname \"edge\" ip daddr { 203.0.113.0 } dnat to ip daddr map { 203.0.113.0 : 10.224.0.10 }"), "{r}");
        assert!(r.contains("oifname \"edge\" ip saddr { 10.224.0.10 } snat to ip saddr map { 10.224.0.10 : 203.0.113.0 }"), "{r}");
        assert!(
            r.contains("ip saddr { 10.224.0.0/16, 10.244.0.0/16 } snat to 198.51.100.200"),
            "{r}"
        );
        let empty = edge_ruleset("edge", &[], &inside, ip("198.51.100.200"));
        assert!(!empty.contains("map"), "{empty}");
    }

    #[test]
    fn ipv6_pairs_are_parsed_apart_and_mapped_one_to_one_at_the_ipv6_edge() {
        let v = json!({"mappings": [
            {"privateIp": "10.224.0.10", "publicIp": "203.0.113.0"},
            {"privateIp": "fd00:10:224::5", "publicIp": "2001:db8:ff00::"}]});
        assert_eq!(parse_ipmap::<Ipv4Addr>(&v).len(), 1);
        let m6: Vec<IpMapping6> = parse_ipmap(&v);
        assert_eq!(
            m6,
            vec![IpMapping6 {
                private_ip: "fd00:10:224::5".parse().unwrap(),
                public_ip: "2001:db8:ff00::".parse().unwrap(),
            }]
        );
        let inside: [ipnet::Ipv6Net; 1] = ["fd00:10:224::/48".parse().unwrap()];
        let r = edge_ruleset(
            "edge",
            &m6,
            &inside,
            "2001:db8:4::200".parse::<Ipv6Addr>().unwrap(),
        );
        assert!(
            r.starts_with("table ip6 sim_edge6 {}\ndelete table ip6 sim_edge6\n"),
            "{r}"
        );
        assert!(r.contains("iifname \"edge\" ip6 daddr { 2001:db8:ff00:: } dnat to ip6 daddr map { 2001:db8:ff00:: : fd00:10:224::5 }"), "{r}");
        assert!(r.contains("oifname \"edge\" ip6 saddr { fd00:10:224::5 } snat to ip6 saddr map { fd00:10:224::5 : 2001:db8:ff00:: }"), "{r}");
        assert!(
            r.contains("ip6 saddr { fd00:10:224::/48 } snat to 2001:db8:4::200"),
            "{r}"
        );
    }

    #[test]
    fn instance_ips_come_from_scale_set_nics() {
        let inv = json!({"resources": [
            {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/gw-vmss/virtualMachines/1/networkInterfaces/gw-vmss",
             "properties": {"ipConfigurations": [
                {"properties": {"privateIPAddress": "10.224.0.7"}},
                {"properties": {"privateIPAddress": "10.224.0.12"}}]}},
            {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/gw-vmss/virtualMachines/1",
             "properties": {}}
        ]});
        let got = parse_instance_ips(&inv);
        assert_eq!(
            got,
            vec![
                ("gw-vmss".into(), 1, IpAddr::V4(ip("10.224.0.7"))),
                ("gw-vmss".into(), 1, IpAddr::V4(ip("10.224.0.12")))
            ]
        );
    }
}
