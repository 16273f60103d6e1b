//! Our nftables tables as values: the gateway SNAT table, the host no-masquerade table and the
//! pod ingress-mark table. Builds the one atomic batch that replaces a table and recognises a
//! table read back from `nft -j`. Running `nft` is the executor's job, not this module's.
//!
//! Every table keys its behaviour by a map or set, so the rule count is constant: adding a
//! gateway or a pod changes elements, never rules.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

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

/// Identity of a table: all our tables are in the `ip` family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NftTableId {
    /// Table name.
    pub name: String,
}

impl NftTableId {
    /// The table with this name in family `ip`.
    pub fn ip(name: &str) -> Self {
        Self { name: name.into() }
    }
}

impl fmt::Display for NftTableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table ip {}", self.name)
    }
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
    /// Host namespace: traffic from these sources is not masqueraded again.
    HostNoMasquerade {
        /// The secondary IPs of the gateways.
        sources: BTreeSet<Ipv4Addr>,
    },
    /// Pod namespace: connections arriving on `eth` are marked, and replies carry the mark so
    /// a rule can route them back out of `eth`.
    PodIngressMark {
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
            NftTable::HostNoMasquerade { .. } => NftTableId::ip(HOST_TABLE),
            NftTable::PodIngressMark { .. } => NftTableId::ip(POD_TABLE),
            NftTable::Unrecognised(id) => id.clone(),
        }
    }

    /// The objects making up the table (table, maps/sets, chains, rules), without handles.
    pub fn objects(&self) -> Vec<NfListObject<'static>> {
        let name = self.id().name;
        let mut objs = vec![NfListObject::Table(table(&name))];
        match self {
            NftTable::GatewayNat { egress, rules } => {
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
                objs.push(map(
                    &name,
                    TUNNEL_MARKS,
                    SetType::Ifname,
                    SetType::Mark,
                    marks,
                ));
                objs.push(map(
                    &name,
                    SNAT_SOURCES,
                    SetType::Mark,
                    SetType::Ipv4Addr,
                    sources,
                ));
                objs.push(chain(
                    &name,
                    "prerouting",
                    NfChainType::NAT,
                    NfHook::Prerouting,
                    PRIO_DSTNAT,
                ));
                objs.push(chain(
                    &name,
                    "postrouting",
                    NfChainType::NAT,
                    NfHook::Postrouting,
                    PRIO_SRCNAT,
                ));
                // ct mark set iifname map @tunnel_marks
                objs.push(rule(
                    &name,
                    "prerouting",
                    vec![Statement::Mangle(Mangle {
                        key: ct_mark(),
                        value: map_lookup(meta(MetaKey::Iifname), TUNNEL_MARKS),
                    })],
                ));
                // oifname <egress> snat ip to ct mark map @snat_sources
                objs.push(rule(
                    &name,
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
            NftTable::HostNoMasquerade { sources } => {
                let elems = sources
                    .iter()
                    .map(|ip| Expression::String(ip.to_string().into()))
                    .collect::<Vec<_>>();
                objs.push(NfListObject::Set(Box::new(schema::Set {
                    family: NfFamily::IP,
                    table: name.clone().into(),
                    name: NO_MASQUERADE.into(),
                    handle: None,
                    set_type: SetTypeValue::Single(SetType::Ipv4Addr),
                    policy: None,
                    flags: None,
                    elem: (!elems.is_empty()).then(|| elems.into()),
                    timeout: None,
                    gc_interval: None,
                    size: None,
                    comment: None,
                })));
                objs.push(chain(
                    &name,
                    "postrouting",
                    NfChainType::NAT,
                    NfHook::Postrouting,
                    PRIO_BEFORE_MASQUERADE,
                ));
                // ip saddr @no_masquerade snat ip to ip saddr
                objs.push(rule(
                    &name,
                    "postrouting",
                    vec![
                        eq(
                            ip_saddr(),
                            Expression::String(format!("@{NO_MASQUERADE}").into()),
                        ),
                        Statement::SNAT(Some(NAT {
                            addr: Some(ip_saddr()),
                            family: None,
                            port: None,
                            flags: None,
                        })),
                    ],
                ));
            }
            NftTable::PodIngressMark { eth, mark } => {
                objs.push(chain(
                    &name,
                    "prerouting",
                    NfChainType::Filter,
                    NfHook::Prerouting,
                    PRIO_MANGLE,
                ));
                // A route-type chain: changing the mark of a local packet re-routes it.
                objs.push(chain(
                    &name,
                    "output",
                    NfChainType::Route,
                    NfHook::Output,
                    PRIO_MANGLE,
                ));
                // iifname <eth> ct mark set <mark>
                objs.push(rule(
                    &name,
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
                    &name,
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
            NftTable::Unrecognised(_) => {}
        }
        objs
    }

    /// One `nft -j -f -` document that replaces the table atomically: add (so the delete
    /// cannot fail), delete, then create it afresh, all in one transaction.
    pub fn replace_batch(&self) -> Nftables<'static> {
        let mut batch = Batch::new();
        let name = self.id().name;
        batch.add(NfListObject::Table(table(&name)));
        batch.delete(NfListObject::Table(table(&name)));
        for obj in self.objects() {
            batch.add(obj);
        }
        batch.to_nftables()
    }

    /// One document deleting the table (add first so a missing table is not an error).
    pub fn delete_batch(id: &NftTableId) -> Nftables<'static> {
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(table(&id.name)));
        batch.delete(NfListObject::Table(table(&id.name)));
        batch.to_nftables()
    }

    /// Recognises a table read back with `nft -j list table ip <name>`. Returns the model if
    /// the content is exactly what [`NftTable::objects`] would produce for it, otherwise
    /// [`NftTable::Unrecognised`].
    pub fn from_listing(id: &NftTableId, listing: &Value) -> NftTable {
        let observed = normalise_listing(listing);
        let candidate = match id.name.as_str() {
            GATEWAY_TABLE => recognise_gateway(&observed),
            HOST_TABLE => recognise_host(&observed),
            POD_TABLE => recognise_pod(&observed),
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
            NftTable::HostNoMasquerade { sources } => {
                f.write_str("{ no masquerade for ")?;
                write_list(f, sources.iter())?;
                f.write_str(" }")
            }
            NftTable::PodIngressMark { eth, mark } => {
                write!(f, "{{ mark connections from {eth} with {mark} }}")
            }
            NftTable::Unrecognised(_) => f.write_str("{ unrecognised content }"),
        }
    }
}

fn table(name: &str) -> schema::Table<'static> {
    schema::Table {
        family: NfFamily::IP,
        name: name.to_owned().into(),
        handle: None,
    }
}

fn chain(
    table: &str,
    name: &str,
    kind: NfChainType,
    hook: NfHook,
    prio: i32,
) -> NfListObject<'static> {
    NfListObject::Chain(schema::Chain {
        family: NfFamily::IP,
        table: table.to_owned().into(),
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

fn rule(table: &str, chain: &str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(schema::Rule {
        family: NfFamily::IP,
        table: table.to_owned().into(),
        chain: chain.to_owned().into(),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: None,
    })
}

fn map(
    table: &str,
    name: &str,
    key: SetType,
    value: SetType,
    elems: Vec<Expression<'static>>,
) -> NfListObject<'static> {
    NfListObject::Map(Box::new(schema::Map {
        family: NfFamily::IP,
        table: table.to_owned().into(),
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

fn ip_saddr() -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: "ip".into(),
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

fn recognise_gateway(observed: &Normalised) -> Option<NftTable> {
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
        let to: Ipv4Addr = e.get(1)?.as_str()?.parse().ok()?;
        let tunnel = marks.get(&mark)?.clone();
        rules.insert(SnatRule { tunnel, mark, to });
    }
    Some(NftTable::GatewayNat { egress, rules })
}

fn recognise_host(observed: &Normalised) -> Option<NftTable> {
    let sources = elements(observed, "set", NO_MASQUERADE)?
        .iter()
        .map(|e| e.as_str()?.parse().ok())
        .collect::<Option<BTreeSet<Ipv4Addr>>>()?;
    Some(NftTable::HostNoMasquerade { sources })
}

fn recognise_pod(observed: &Normalised) -> Option<NftTable> {
    let eth = match_right(observed, "prerouting")?
        .as_str()?
        .parse()
        .ok()?;
    let mark = FwMark::new(u32::try_from(match_right(observed, "output")?.as_u64()?).ok()?)?;
    Some(NftTable::PodIngressMark { eth, mark })
}

#[cfg(test)]
#[path = "nft_tests.rs"]
mod tests;
