//! Our nftables tables as values: the gateway SNAT table, the host no-masquerade table (each
//! in family `ip`, and for dual-stack gateways a mirror of each in family `ip6`) and the pod
//! ingress-mark table. Builds the one atomic batch that replaces a table and recognises a
//! table read back from `nft -j`. Running `nft` is the executor's job, not this module's.
//!
//! Every table keys its behaviour by a map or set, so the rule count is constant: adding a
//! gateway or a pod changes elements, never rules.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use nftables::batch::Batch;
use nftables::expr::{
    CT, Expression, Map as MapExpr, Meta, MetaKey, NamedExpression, Payload, PayloadField,
};
use nftables::schema::{self, NfListObject, Nftables, SetType, SetTypeValue};
use nftables::stmt::{Mangle, Match, NAT, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde_json::Value;

use crate::names::InterfaceName;
use crate::spec::{FwMark, SnatRule, write_list};

/// Table of the gateway namespace.
pub const GATEWAY_TABLE: &str = "egress_gateway";
/// Table of the host namespace of a gateway node.
pub const HOST_TABLE: &str = "egress_gateway_host";
/// Table of a pod namespace.
pub const POD_TABLE: &str = "egress_pod";

const TUNNEL_MARKS: &str = "tunnel_marks";
const SNAT_SOURCES: &str = "snat_sources";
const NO_MASQUERADE: &str = "no_masquerade";

/// nat prerouting ("dstnat") and postrouting ("srcnat") priorities, and "mangle".
const PRIO_DSTNAT: i32 = -100;
const PRIO_SRCNAT: i32 = 100;
const PRIO_MANGLE: i32 = -150;
/// Before the usual srcnat chains (kube-proxy, iptables-nft MASQUERADE at 100): a NAT binding
/// made here is final, so later masquerade rules are skipped for these sources.
const PRIO_BEFORE_MASQUERADE: i32 = PRIO_SRCNAT - 10;

/// The address family of one of our tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableFamily {
    /// `ip`: IPv4.
    Ip,
    /// `ip6`: IPv6.
    Ip6,
}

impl TableFamily {
    /// The name `nft` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TableFamily::Ip => "ip",
            TableFamily::Ip6 => "ip6",
        }
    }

    fn nf(self) -> NfFamily {
        match self {
            TableFamily::Ip => NfFamily::IP,
            TableFamily::Ip6 => NfFamily::IP6,
        }
    }
}

/// Identity of a table: its family and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NftTableId {
    /// Address family.
    pub family: TableFamily,
    /// Table name.
    pub name: String,
}

impl NftTableId {
    /// The table with this name in family `ip`.
    pub fn ip(name: &str) -> Self {
        Self {
            family: TableFamily::Ip,
            name: name.into(),
        }
    }

    /// The table with this name in family `ip6`.
    pub fn ip6(name: &str) -> Self {
        Self {
            family: TableFamily::Ip6,
            name: name.into(),
        }
    }
}

impl fmt::Display for NftTableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table {} {}", self.family.as_str(), self.name)
    }
}

/// What differs between the `ip` and `ip6` versions of a table's content: the address type
/// (the family itself is in the table's id).
trait NatAddress: Copy + Ord + fmt::Display + FromStr + 'static {
    const SET_TYPE: SetType;
}

impl NatAddress for Ipv4Addr {
    const SET_TYPE: SetType = SetType::Ipv4Addr;
}

impl NatAddress for Ipv6Addr {
    const SET_TYPE: SetType = SetType::Ipv6Addr;
}

/// One of our tables, by meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftTable {
    /// Gateway namespace: connections from each tunnel get the tunnel's mark; marked
    /// connections leaving `egress` are SNATed to the tunnel's secondary IP.
    GatewayNat {
        /// The link towards the host (`host0`).
        egress: InterfaceName,
        /// One entry per gateway.
        rules: BTreeSet<SnatRule>,
    },
    /// [`NftTable::GatewayNat`] for IPv6 (family `ip6`, same names): flows from each
    /// dual-stack tunnel leave as its secondary IPv6.
    GatewayNat6 {
        /// The link towards the host (`host0`).
        egress: InterfaceName,
        /// One entry per dual-stack gateway.
        rules: BTreeSet<SnatRule<Ipv6Addr>>,
    },
    /// Host namespace: traffic from these sources is not masqueraded again.
    HostNoMasquerade {
        /// The secondary IPs of the gateways.
        sources: BTreeSet<Ipv4Addr>,
    },
    /// [`NftTable::HostNoMasquerade`] for IPv6 (family `ip6`, same name).
    HostNoMasquerade6 {
        /// The secondary IPv6 addresses of the dual-stack gateways.
        sources: BTreeSet<Ipv6Addr>,
    },
    /// Pod namespace: connections arriving on `eth` are marked, and replies carry the mark so
    /// a rule can route them back out of `eth`.
    PodIngressMark {
        /// The pod's primary interface.
        eth: InterfaceName,
        /// The connection mark.
        mark: FwMark,
    },
    /// [`NftTable::PodIngressMark`] for IPv6 (family `ip6`, same name): a dual-stack pod's
    /// IPv6 connections arriving on `eth` are marked the same way.
    PodIngressMark6 {
        /// The pod's primary interface.
        eth: InterfaceName,
        /// The connection mark.
        mark: FwMark,
    },
    /// A table with our name whose content we do not recognise (drift); replaced on apply.
    Unrecognised(NftTableId),
}

impl NftTable {
    /// The table's identity.
    pub fn id(&self) -> NftTableId {
        match self {
            NftTable::GatewayNat { .. } => NftTableId::ip(GATEWAY_TABLE),
            NftTable::GatewayNat6 { .. } => NftTableId::ip6(GATEWAY_TABLE),
            NftTable::HostNoMasquerade { .. } => NftTableId::ip(HOST_TABLE),
            NftTable::HostNoMasquerade6 { .. } => NftTableId::ip6(HOST_TABLE),
            NftTable::PodIngressMark { .. } => NftTableId::ip(POD_TABLE),
            NftTable::PodIngressMark6 { .. } => NftTableId::ip6(POD_TABLE),
            NftTable::Unrecognised(id) => id.clone(),
        }
    }

    /// The objects making up the table (table, maps/sets, chains, rules), without handles.
    pub fn objects(&self) -> Vec<NfListObject<'static>> {
        let id = self.id();
        let mut objs = vec![NfListObject::Table(table(&id))];
        match self {
            NftTable::GatewayNat { egress, rules } => {
                gateway_objects(&mut objs, &id, egress, rules)
            }
            NftTable::GatewayNat6 { egress, rules } => {
                gateway_objects(&mut objs, &id, egress, rules)
            }
            NftTable::HostNoMasquerade { sources } => host_objects(&mut objs, &id, sources),
            NftTable::HostNoMasquerade6 { sources } => host_objects(&mut objs, &id, sources),
            NftTable::PodIngressMark { eth, mark } | NftTable::PodIngressMark6 { eth, mark } => {
                pod_objects(&mut objs, &id, eth, *mark)
            }
            NftTable::Unrecognised(_) => {}
        }
        objs
    }

    /// One `nft -j -f -` document that replaces the table atomically: add (so the delete
    /// cannot fail), delete, then create it afresh, all in one transaction.
    pub fn replace_batch(&self) -> Nftables<'static> {
        let mut batch = Batch::new();
        let id = self.id();
        batch.add(NfListObject::Table(table(&id)));
        batch.delete(NfListObject::Table(table(&id)));
        for obj in self.objects() {
            batch.add(obj);
        }
        batch.to_nftables()
    }

    /// One document deleting the table (add first so a missing table is not an error).
    pub fn delete_batch(id: &NftTableId) -> Nftables<'static> {
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(table(id)));
        batch.delete(NfListObject::Table(table(id)));
        batch.to_nftables()
    }

    /// Recognises a table read back with `nft -j list table <family> <name>`. Returns the model if
    /// the content is exactly what [`NftTable::objects`] would produce for it, otherwise
    /// [`NftTable::Unrecognised`].
    pub fn from_listing(id: &NftTableId, listing: &Value) -> NftTable {
        let observed = normalise_listing(listing);
        let candidate =
            match (id.family, id.name.as_str()) {
                (TableFamily::Ip, GATEWAY_TABLE) => recognise_gateway(&observed)
                    .map(|(egress, rules)| NftTable::GatewayNat { egress, rules }),
                (TableFamily::Ip6, GATEWAY_TABLE) => recognise_gateway(&observed)
                    .map(|(egress, rules)| NftTable::GatewayNat6 { egress, rules }),
                (TableFamily::Ip, HOST_TABLE) => {
                    recognise_host(&observed).map(|sources| NftTable::HostNoMasquerade { sources })
                }
                (TableFamily::Ip6, HOST_TABLE) => {
                    recognise_host(&observed).map(|sources| NftTable::HostNoMasquerade6 { sources })
                }
                (TableFamily::Ip, POD_TABLE) => recognise_pod(&observed)
                    .map(|(eth, mark)| NftTable::PodIngressMark { eth, mark }),
                (TableFamily::Ip6, POD_TABLE) => recognise_pod(&observed)
                    .map(|(eth, mark)| NftTable::PodIngressMark6 { eth, mark }),
                _ => None,
            };
        match candidate {
            Some(table) if normalise_objects(&table.objects()) == observed => table,
            _ => NftTable::Unrecognised(id.clone()),
        }
    }
}

impl fmt::Display for NftTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.id())?;
        match self {
            NftTable::GatewayNat { egress, rules } => {
                write!(f, "{{ snat out {egress}: ")?;
                write_list(f, rules.iter())?;
                f.write_str(" }")
            }
            NftTable::GatewayNat6 { egress, rules } => {
                write!(f, "{{ snat out {egress}: ")?;
                write_list(f, rules.iter())?;
                f.write_str(" }")
            }
            NftTable::HostNoMasquerade { sources } => {
                f.write_str("{ no masquerade for ")?;
                write_list(f, sources.iter())?;
                f.write_str(" }")
            }
            NftTable::HostNoMasquerade6 { sources } => {
                f.write_str("{ no masquerade for ")?;
                write_list(f, sources.iter())?;
                f.write_str(" }")
            }
            NftTable::PodIngressMark { eth, mark } | NftTable::PodIngressMark6 { eth, mark } => {
                write!(f, "{{ mark connections from {eth} with {mark} }}")
            }
            NftTable::Unrecognised(_) => f.write_str("{ unrecognised content }"),
        }
    }
}

/// `ct mark set iifname map @tunnel_marks` and `oifname <egress> snat to ct mark map
/// @snat_sources`, with the two maps, in either family.
fn gateway_objects<A: NatAddress>(
    objs: &mut Vec<NfListObject<'static>>,
    id: &NftTableId,
    egress: &InterfaceName,
    rules: &BTreeSet<SnatRule<A>>,
) {
    let marks = rules
        .iter()
        .map(|r| {
            pair(
                Expression::String(r.tunnel.as_str().to_owned().into()),
                Expression::Number(r.mark.value()),
            )
        })
        .collect();
    let sources = rules
        .iter()
        .map(|r| {
            pair(
                Expression::Number(r.mark.value()),
                Expression::String(r.to.to_string().into()),
            )
        })
        .collect();
    objs.push(map(id, TUNNEL_MARKS, SetType::Ifname, SetType::Mark, marks));
    objs.push(map(id, SNAT_SOURCES, SetType::Mark, A::SET_TYPE, sources));
    objs.push(chain(
        id,
        "prerouting",
        NfChainType::NAT,
        NfHook::Prerouting,
        PRIO_DSTNAT,
    ));
    objs.push(chain(
        id,
        "postrouting",
        NfChainType::NAT,
        NfHook::Postrouting,
        PRIO_SRCNAT,
    ));
    // ct mark set iifname map @tunnel_marks
    objs.push(rule(
        id,
        "prerouting",
        vec![Statement::Mangle(Mangle {
            key: ct_mark(),
            value: map_lookup(meta(MetaKey::Iifname), TUNNEL_MARKS),
        })],
    ));
    // oifname <egress> snat [ip|ip6] to ct mark map @snat_sources
    objs.push(rule(
        id,
        "postrouting",
        vec![
            eq(
                meta(MetaKey::Oifname),
                Expression::String(egress.as_str().to_owned().into()),
            ),
            Statement::SNAT(Some(NAT {
                addr: Some(map_lookup(ct_mark(), SNAT_SOURCES)),
                family: None,
                port: None,
                flags: None,
            })),
        ],
    ));
}

/// `<family> saddr @no_masquerade snat to <family> saddr`, with the set, in either family.
fn host_objects<A: NatAddress>(
    objs: &mut Vec<NfListObject<'static>>,
    id: &NftTableId,
    sources: &BTreeSet<A>,
) {
    let elems = sources
        .iter()
        .map(|ip| Expression::String(ip.to_string().into()))
        .collect::<Vec<_>>();
    objs.push(NfListObject::Set(Box::new(schema::Set {
        family: id.family.nf(),
        table: id.name.clone().into(),
        name: NO_MASQUERADE.into(),
        handle: None,
        set_type: SetTypeValue::Single(A::SET_TYPE),
        policy: None,
        flags: None,
        elem: (!elems.is_empty()).then(|| elems.into()),
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    })));
    objs.push(chain(
        id,
        "postrouting",
        NfChainType::NAT,
        NfHook::Postrouting,
        PRIO_BEFORE_MASQUERADE,
    ));
    let saddr = || saddr(id.family);
    objs.push(rule(
        id,
        "postrouting",
        vec![
            eq(
                saddr(),
                Expression::String(format!("@{NO_MASQUERADE}").into()),
            ),
            Statement::SNAT(Some(NAT {
                addr: Some(saddr()),
                family: None,
                port: None,
                flags: None,
            })),
        ],
    ));
}

fn pod_objects(
    objs: &mut Vec<NfListObject<'static>>,
    id: &NftTableId,
    eth: &InterfaceName,
    mark: FwMark,
) {
    objs.push(chain(
        id,
        "prerouting",
        NfChainType::Filter,
        NfHook::Prerouting,
        PRIO_MANGLE,
    ));
    // A route-type chain: changing the mark of a local packet re-routes it.
    objs.push(chain(
        id,
        "output",
        NfChainType::Route,
        NfHook::Output,
        PRIO_MANGLE,
    ));
    // iifname <eth> ct mark set <mark>
    objs.push(rule(
        id,
        "prerouting",
        vec![
            eq(
                meta(MetaKey::Iifname),
                Expression::String(eth.as_str().to_owned().into()),
            ),
            Statement::Mangle(Mangle {
                key: ct_mark(),
                value: Expression::Number(mark.value()),
            }),
        ],
    ));
    // ct mark <mark> meta mark set ct mark
    objs.push(rule(
        id,
        "output",
        vec![
            eq(ct_mark(), Expression::Number(mark.value())),
            Statement::Mangle(Mangle {
                key: meta(MetaKey::Mark),
                value: ct_mark(),
            }),
        ],
    ));
}

fn table(id: &NftTableId) -> schema::Table<'static> {
    schema::Table {
        family: id.family.nf(),
        name: id.name.clone().into(),
        handle: None,
    }
}

fn chain(
    table: &NftTableId,
    name: &str,
    kind: NfChainType,
    hook: NfHook,
    prio: i32,
) -> NfListObject<'static> {
    NfListObject::Chain(schema::Chain {
        family: table.family.nf(),
        table: table.name.clone().into(),
        name: name.to_owned().into(),
        newname: None,
        handle: None,
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        dev: None,
        policy: Some(NfChainPolicy::Accept),
    })
}

fn rule(table: &NftTableId, chain: &str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(schema::Rule {
        family: table.family.nf(),
        table: table.name.clone().into(),
        chain: chain.to_owned().into(),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: None,
    })
}

fn map(
    table: &NftTableId,
    name: &str,
    key: SetType,
    value: SetType,
    elems: Vec<Expression<'static>>,
) -> NfListObject<'static> {
    NfListObject::Map(Box::new(schema::Map {
        family: table.family.nf(),
        table: table.name.clone().into(),
        name: name.to_owned().into(),
        handle: None,
        set_type: SetTypeValue::Single(key),
        map: SetTypeValue::Single(value),
        policy: None,
        flags: None,
        elem: (!elems.is_empty()).then(|| elems.into()),
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    }))
}

/// A map element as `nft -j` prints it: a two-item array.
fn pair(key: Expression<'static>, value: Expression<'static>) -> Expression<'static> {
    Expression::List(vec![key, value])
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct_mark() -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: "mark".into(),
        family: None,
        dir: None,
    }))
}

fn saddr(family: TableFamily) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: family.as_str().into(),
            field: "saddr".into(),
        },
    )))
}

fn map_lookup(key: Expression<'static>, map: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Map(Box::new(MapExpr {
        key,
        data: Expression::String(format!("@{map}").into()),
    })))
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

/// Objects as comparable JSON: handles dropped, element lists sorted, objects sorted.
type Normalised = Vec<Value>;

fn normalise_objects(objs: &[NfListObject<'_>]) -> Normalised {
    let values = objs
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect::<Vec<_>>();
    normalise_values(values)
}

fn normalise_listing(listing: &Value) -> Normalised {
    let values = listing
        .get("nftables")
        .and_then(Value::as_array)
        .map(|objs| {
            objs.iter()
                .filter(|o| o.get("metainfo").is_none())
                .cloned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    normalise_values(values)
}

fn normalise_values(values: Vec<Value>) -> Normalised {
    let mut out: Vec<Value> = values.into_iter().map(strip).collect();
    out.sort_by_key(|v| v.to_string());
    out
}

fn strip(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "handle")
                .map(|(k, v)| {
                    let v = strip(v);
                    if k == "elem"
                        && let Value::Array(mut items) = v
                    {
                        items.sort_by_key(|i| i.to_string());
                        return (k, Value::Array(items));
                    }
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
        other => other,
    }
}

/// Elements of the named map or set in a normalised listing.
fn elements<'a>(observed: &'a Normalised, kind: &str, name: &str) -> Option<&'a [Value]> {
    observed.iter().find_map(|o| {
        let obj = o.get(kind)?;
        (obj.get("name")?.as_str()? == name).then(|| {
            obj.get("elem")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
        })
    })
}

/// The value of `right` in the `match` of the rule in `chain`, if it is a string.
fn match_right<'a>(observed: &'a Normalised, chain: &str) -> Option<&'a Value> {
    observed.iter().find_map(|o| {
        let rule = o.get("rule")?;
        if rule.get("chain")?.as_str()? != chain {
            return None;
        }
        rule.get("expr")?
            .as_array()?
            .iter()
            .find_map(|s| s.get("match")?.get("right"))
    })
}

fn recognise_gateway<A: NatAddress>(
    observed: &Normalised,
) -> Option<(InterfaceName, BTreeSet<SnatRule<A>>)> {
    let egress = match_right(observed, "postrouting")?
        .as_str()?
        .parse()
        .ok()?;
    let mut marks = BTreeMap::new();
    for e in elements(observed, "map", TUNNEL_MARKS)? {
        let tunnel: InterfaceName = e.get(0)?.as_str()?.parse().ok()?;
        let mark = FwMark::new(u32::try_from(e.get(1)?.as_u64()?).ok()?)?;
        marks.insert(mark, tunnel);
    }
    let mut rules = BTreeSet::new();
    for e in elements(observed, "map", SNAT_SOURCES)? {
        let mark = FwMark::new(u32::try_from(e.get(0)?.as_u64()?).ok()?)?;
        let to: A = e.get(1)?.as_str()?.parse().ok()?;
        let tunnel = marks.get(&mark)?.clone();
        rules.insert(SnatRule { tunnel, mark, to });
    }
    Some((egress, rules))
}

fn recognise_host<A: NatAddress>(observed: &Normalised) -> Option<BTreeSet<A>> {
    elements(observed, "set", NO_MASQUERADE)?
        .iter()
        .map(|e| e.as_str()?.parse().ok())
        .collect()
}

fn recognise_pod(observed: &Normalised) -> Option<(InterfaceName, FwMark)> {
    let eth = match_right(observed, "prerouting")?
        .as_str()?
        .parse()
        .ok()?;
    let mark = FwMark::new(u32::try_from(match_right(observed, "output")?.as_u64()?).ok()?)?;
    Some((eth, mark))
}

#[cfg(test)]
#[path = "nft_tests.rs"]
mod tests;
