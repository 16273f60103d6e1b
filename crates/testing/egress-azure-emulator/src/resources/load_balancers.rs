//! Load balancers: GET/PUT/DELETE with frontendIPConfigurations (dynamic private IPs from the
//! subnet), backendAddressPools, probes and loadBalancingRules, validated as the Network
//! provider does for the calls kube-egress-gateway makes.

use super::common::{
    check_preconditions, envelope, exists, invalid_reference, location_for, normalise_children,
    ref_at, subnet_net,
};
use super::{delete_stored, get_stored, method_not_allowed, put_reply};
use crate::error::ArmError;
use crate::http::{Reply, Req};
use crate::ids::{NETWORK, key, resource_id};
use crate::ipam::Ipam;
use crate::lro;
use crate::state::State;
use crate::store::new_etag;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// ARM type of load balancers.
pub(crate) const LB_TYPE: &str = "Microsoft.Network/loadBalancers";

const CHILDREN: &[(&str, &str)] = &[
    (
        "frontendIPConfigurations",
        "Microsoft.Network/loadBalancers/frontendIPConfigurations",
    ),
    (
        "backendAddressPools",
        "Microsoft.Network/loadBalancers/backendAddressPools",
    ),
    (
        "loadBalancingRules",
        "Microsoft.Network/loadBalancers/loadBalancingRules",
    ),
    ("probes", "Microsoft.Network/loadBalancers/probes"),
    (
        "inboundNatRules",
        "Microsoft.Network/loadBalancers/inboundNatRules",
    ),
    (
        "inboundNatPools",
        "Microsoft.Network/loadBalancers/inboundNatPools",
    ),
    (
        "outboundRules",
        "Microsoft.Network/loadBalancers/outboundRules",
    ),
];

pub(crate) fn handle(
    state: &mut State,
    req: &Req,
    rg: &str,
    name: &str,
    op: &str,
) -> Result<Reply, ArmError> {
    let url_id = resource_id(
        &state.settings.subscription,
        rg,
        NETWORK,
        "loadBalancers",
        name,
    );
    let (id, name) = match state.store.get(&url_id) {
        Some(v) => (
            crate::store::id_of(v).to_owned(),
            v["name"].as_str().unwrap_or(name).to_owned(),
        ),
        None => (url_id, name.to_owned()),
    };
    match req.method.as_str() {
        "GET" => get_stored(state, &id, LB_TYPE, &name, rg),
        "PUT" => put(state, req, &id, &name, op),
        "DELETE" => delete_stored(state, req, &id, op, NETWORK, |_| Ok(())),
        _ => Err(method_not_allowed(req)),
    }
}

fn put(state: &mut State, req: &Req, id: &str, name: &str, op: &str) -> Result<Reply, ArmError> {
    let existing = state.store.get(id).cloned();
    check_preconditions(req, existing.as_ref())?;
    let body = req.json_object()?;
    let location = location_for(&body, existing.as_ref(), id)?;
    let etag = new_etag();
    let mut v = envelope(&body, id, name, LB_TYPE, &location, &etag);
    if !v.get("sku").is_some_and(Value::is_object) {
        v["sku"] = json!({"name": "Standard", "tier": "Regional"});
    }
    let props = &mut v["properties"];
    for (field, child_type) in CHILDREN {
        normalise_children(props, field, id, child_type, &etag, "Updating")?;
    }
    strip_read_only(props);
    assign_frontend_ips(state, props, existing.as_ref(), id)?;
    validate_probes(props)?;
    validate_rules(props)?;
    props["provisioningState"] = json!("Updating");
    let guid = existing
        .as_ref()
        .and_then(|e| e.pointer("/properties/resourceGuid"))
        .cloned()
        .unwrap_or_else(|| json!(uuid::Uuid::new_v4().to_string()));
    props["resourceGuid"] = guid;
    let plan = lro::plan(state, req, op);
    state.store.put(v);
    Ok(put_reply(state, req, id, existing.is_none(), plan))
}

/// Back-references are computed on read; a read-modify-write must not store stale copies.
fn strip_read_only(props: &mut Value) {
    for field in ["frontendIPConfigurations", "backendAddressPools", "probes"] {
        if let Some(items) = props.get_mut(field).and_then(Value::as_array_mut) {
            for item in items {
                if let Some(p) = item.get_mut("properties").and_then(Value::as_object_mut) {
                    for ro in [
                        "loadBalancingRules",
                        "backendIPConfigurations",
                        "inboundNatRules",
                        "outboundRules",
                        "inboundNatPools",
                    ] {
                        p.remove(ro);
                    }
                }
            }
        }
    }
}

fn items<'a>(props: &'a Value, field: &str) -> &'a [Value] {
    props
        .get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn ids_of(props: &Value, field: &str) -> BTreeSet<String> {
    items(props, field)
        .iter()
        .filter_map(|i| i.get("id").and_then(Value::as_str))
        .map(key)
        .collect()
}

/// Keeps the dynamic IP of an unchanged frontend, takes static IPs as given, allocates the rest.
fn assign_frontend_ips(
    state: &mut State,
    props: &mut Value,
    existing: Option<&Value>,
    lb_id: &str,
) -> Result<(), ArmError> {
    let old: BTreeMap<String, (String, String)> = existing
        .map(|e| items(&e["properties"], "frontendIPConfigurations"))
        .unwrap_or_default()
        .iter()
        .filter_map(|fe| {
            Some((
                fe.get("name")?.as_str()?.to_ascii_lowercase(),
                (
                    key(&ref_at(fe, "/properties/subnet/id")?),
                    ref_at(fe, "/properties/privateIPAddress")?,
                ),
            ))
        })
        .collect();
    let Some(fes) = props
        .get_mut("frontendIPConfigurations")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let mut pending: BTreeSet<Ipv4Addr> = BTreeSet::new();
    let mut to_allocate = Vec::new();
    for (idx, fe) in fes.iter_mut().enumerate() {
        let fe_id = ref_at(fe, "/id").unwrap_or_default();
        let fe_name = fe["name"].as_str().unwrap_or_default().to_ascii_lowercase();
        let p = &mut fe["properties"];
        if let Some(subnet_ref) = ref_at(p, "/subnet/id") {
            let (subnet_id, net) = subnet_net(&state.store, &subnet_ref, &fe_id)?;
            let method = p
                .get("privateIPAllocationMethod")
                .and_then(Value::as_str)
                .unwrap_or("Dynamic")
                .to_owned();
            if p.get("privateIPAddressVersion").is_none() {
                p["privateIPAddressVersion"] = json!("IPv4");
            }
            if method.eq_ignore_ascii_case("Static") {
                p["privateIPAllocationMethod"] = json!("Static");
                let addr = static_address(p, &fe_id)?;
                Ipam::check_static_private(&state.store, &subnet_id, net, addr, lb_id, &pending)?;
                pending.insert(addr);
            } else {
                p["privateIPAllocationMethod"] = json!("Dynamic");
                match old.get(&fe_name) {
                    Some((old_subnet, ip)) if *old_subnet == key(&subnet_id) => {
                        let addr: Ipv4Addr = ip.parse().map_err(|_| {
                            ArmError::new(500, "InternalServerError", "stored IP is corrupt")
                        })?;
                        p["privateIPAddress"] = json!(ip);
                        pending.insert(addr);
                    }
                    _ => to_allocate.push((idx, subnet_id, net)),
                }
            }
        } else if let Some(pip) = ref_at(p, "/publicIPAddress/id") {
            if !exists(&state.store, &pip) {
                return Err(invalid_reference(&pip, &fe_id));
            }
        } else {
            return Err(ArmError::bad_request(
                "InvalidRequestFormat",
                format!(
                    "Cannot parse the request: frontend IP configuration {fe_id} must reference a subnet or a public IP address."
                ),
            ));
        }
    }
    for (idx, subnet_id, net) in to_allocate {
        let addr = state
            .ipam
            .allocate_private(&state.store, &subnet_id, net, lb_id, &pending)?;
        pending.insert(addr);
        fes[idx]["properties"]["privateIPAddress"] = json!(addr.to_string());
    }
    Ok(())
}

/// The `privateIPAddress` of a Static ipConfiguration/frontend.
pub(crate) fn static_address(p: &Value, owner: &str) -> Result<Ipv4Addr, ArmError> {
    let s = p
        .get("privateIPAddress")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ArmError::bad_request(
                "PrivateIPAddressIsRequired",
                format!("{owner} uses Static allocation but has no privateIPAddress."),
            )
        })?;
    s.parse().map_err(|_| {
        ArmError::bad_request(
            "InvalidPrivateIPAddressFormat",
            format!("Private IP address '{s}' of {owner} is not a valid IPv4 address."),
        )
    })
}

fn port(p: &Value, field: &str, max: u64, owner: &str) -> Result<u64, ArmError> {
    match p.get(field).and_then(Value::as_u64) {
        Some(n) if n <= max => Ok(n),
        Some(n) => Err(ArmError::bad_request(
            "InvalidRequestFormat",
            format!("Cannot parse the request: {field} {n} of {owner} is out of range 0-{max}."),
        )),
        None => Err(ArmError::bad_request(
            "InvalidRequestFormat",
            format!("Cannot parse the request: {owner} has no {field}."),
        )),
    }
}

fn validate_probes(props: &mut Value) -> Result<(), ArmError> {
    let Some(probes) = props.get_mut("probes").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for probe in probes {
        let pid = ref_at(probe, "/id").unwrap_or_default();
        let p = &mut probe["properties"];
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
        if !["Http", "Https", "Tcp"]
            .iter()
            .any(|x| x.eq_ignore_ascii_case(proto))
        {
            return Err(ArmError::bad_request(
                "InvalidRequestFormat",
                format!(
                    "Cannot parse the request: probe {pid} has protocol '{proto}' (expected Http, Https or Tcp)."
                ),
            ));
        }
        let n = port(p, "port", 65535, &pid)?;
        if n == 0 {
            return Err(ArmError::bad_request(
                "InvalidRequestFormat",
                format!("Cannot parse the request: probe {pid} has port 0."),
            ));
        }
        for (f, d) in [
            ("intervalInSeconds", 15),
            ("numberOfProbes", 2),
            ("probeThreshold", 1),
        ] {
            if p.get(f).is_none() {
                p[f] = json!(d);
            }
        }
    }
    Ok(())
}

fn validate_rules(props: &mut Value) -> Result<(), ArmError> {
    let fes = ids_of(props, "frontendIPConfigurations");
    let pools = ids_of(props, "backendAddressPools");
    let probes = ids_of(props, "probes");
    let Some(rules) = props
        .get_mut("loadBalancingRules")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    // (frontend, protocol, port, rule id) seen so far.
    let mut frontends: Vec<(String, String, u64, String)> = Vec::new();
    // (pool, protocol, backend port, rule id) of rules without floating IP.
    let mut backends: Vec<(String, String, u64, String)> = Vec::new();
    for rule in rules {
        let rid = ref_at(rule, "/id").unwrap_or_default();
        let p = &mut rule["properties"];
        let fe = ref_at(p, "/frontendIPConfiguration/id").ok_or_else(|| {
            ArmError::bad_request(
                "InvalidRequestFormat",
                format!("Cannot parse the request: load balancing rule {rid} has no frontendIPConfiguration."),
            )
        })?;
        if !fes.contains(&key(&fe)) {
            return Err(invalid_reference(&fe, &rid));
        }
        let mut rule_pools: Vec<String> = ref_at(p, "/backendAddressPool/id").into_iter().collect();
        if let Some(list) = p.get("backendAddressPools").and_then(Value::as_array) {
            rule_pools.extend(list.iter().filter_map(|x| ref_at(x, "/id")));
        }
        for pool in &rule_pools {
            if !pools.contains(&key(pool)) {
                return Err(invalid_reference(pool, &rid));
            }
        }
        if let Some(probe) = ref_at(p, "/probe/id")
            && !probes.contains(&key(&probe))
        {
            return Err(invalid_reference(&probe, &rid));
        }
        let proto = p
            .get("protocol")
            .and_then(Value::as_str)
            .and_then(|s| {
                ["Tcp", "Udp", "All"]
                    .into_iter()
                    .find(|x| x.eq_ignore_ascii_case(s))
            })
            .ok_or_else(|| {
                ArmError::bad_request(
                    "InvalidRequestFormat",
                    format!("Cannot parse the request: load balancing rule {rid} needs protocol Tcp, Udp or All."),
                )
            })?;
        p["protocol"] = json!(proto);
        let fport = port(p, "frontendPort", 65534, &rid)?;
        let bport = port(p, "backendPort", 65535, &rid)?;
        for (f, d) in [
            ("enableFloatingIP", json!(false)),
            ("idleTimeoutInMinutes", json!(4)),
            ("loadDistribution", json!("Default")),
            ("disableOutboundSnat", json!(false)),
            ("enableTcpReset", json!(false)),
        ] {
            if p.get(f).is_none() {
                p[f] = d;
            }
        }
        let fe_key = key(&fe);
        if let Some((_, _, _, other)) = frontends.iter().find(|(f, pr, pt, _)| {
            *f == fe_key && *pt == fport && (pr == proto || pr == "All" || proto == "All")
        }) {
            return Err(ArmError::bad_request(
                "LoadBalancingRulesUseSameFrontendIpConfigurationProtocolAndPort",
                format!(
                    "Load balancing rules {other} and {rid} use the same frontend IP configuration {fe}, protocol {proto} and frontend port {fport}."
                ),
            ));
        }
        frontends.push((fe_key, proto.to_owned(), fport, rid.clone()));
        if !p["enableFloatingIP"].as_bool().unwrap_or(false) {
            for pool in rule_pools {
                let pk = key(&pool);
                if let Some((_, _, _, other)) = backends
                    .iter()
                    .find(|(b, pr, pt, _)| *b == pk && pr == proto && *pt == bport)
                {
                    return Err(ArmError::bad_request(
                        "RulesUseSameBackendPortProtocolAndPool",
                        format!(
                            "Load balancing rules {other} and {rid} with floating IP disabled use the same protocol {proto} and backend port {bport}, and must not be used with the same backend address pool {pool}."
                        ),
                    ));
                }
                backends.push((pk, proto.to_owned(), bport, rid.clone()));
            }
        }
    }
    Ok(())
}
