//! Load balancer validation as the Network provider does it for what kube-egress-gateway (and
//! the conformance suite) send: the SKU, probes (protocol, port, `requestPath` exactly for
//! Http/Https), rules (references, protocol, ports, HA ports only with `All`, idle timeout,
//! the frontend and backend port conflicts) and their defaults. Codes marked "chosen" in
//! docs/azure-emulator.md are named after Azure's documented rule where no real code was found.

use super::common::{invalid_reference, ref_at, standard_sku};
use crate::error::ArmError;
use crate::ids::key;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Idle timeout of load-balancing rules: 4–100 minutes (Azure raised the limit from 30).
pub(crate) const RULE_IDLE_TIMEOUT: std::ops::RangeInclusive<u64> = 4..=100;

fn bad(code: &str, message: String) -> ArmError {
    ArmError::bad_request(code, message)
}

/// Standard is the default SKU; Basic load balancers were retired on 30 September 2025.
pub(crate) fn sku(v: &mut Value, id: &str) -> Result<(), ArmError> {
    if standard_sku(v).eq_ignore_ascii_case("Basic") {
        return Err(bad(
            "BasicSkuLoadBalancerCreationNotAllowed",
            format!(
                "Load balancer {id} cannot use the Basic SKU: Basic load balancers were retired on 30 September 2025. Use the Standard SKU."
            ),
        ));
    }
    Ok(())
}

fn port(
    p: &Value,
    field: &str,
    range: std::ops::RangeInclusive<u64>,
    owner: &str,
) -> Result<u64, ArmError> {
    match p.get(field).and_then(Value::as_u64) {
        Some(n) if range.contains(&n) => Ok(n),
        Some(n) => Err(bad(
            "InvalidRequestFormat",
            format!(
                "Cannot parse the request: {field} {n} of {owner} is out of range {}-{}.",
                range.start(),
                range.end()
            ),
        )),
        None => Err(bad(
            "InvalidRequestFormat",
            format!("Cannot parse the request: {owner} has no {field}."),
        )),
    }
}

fn one_of(
    p: &Value,
    field: &str,
    allowed: &[&'static str],
    owner: &str,
) -> Result<&'static str, ArmError> {
    let given = p.get(field).and_then(Value::as_str).unwrap_or("");
    allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(given))
        .ok_or_else(|| {
            bad(
                "InvalidRequestFormat",
                format!(
                    "Cannot parse the request: {field} '{given}' of {owner} is not one of {}.",
                    allowed.join(", ")
                ),
            )
        })
}

/// Probes: Http/Https need a `requestPath`, Tcp must not have one.
pub(crate) fn probes(props: &mut Value) -> Result<(), ArmError> {
    let Some(probes) = props.get_mut("probes").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for probe in probes {
        let pid = ref_at(probe, "/id").unwrap_or_default();
        let p = &mut probe["properties"];
        let proto = one_of(p, "protocol", &["Http", "Https", "Tcp"], &pid)?;
        p["protocol"] = json!(proto);
        port(p, "port", 1..=65535, &pid)?;
        let path = p
            .get("requestPath")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match (proto, path) {
            ("Tcp", Some(path)) => {
                return Err(bad(
                    "LoadBalancerProbeRequestPathNotAllowedForTcp",
                    format!(
                        "Probe {pid} uses protocol Tcp and cannot have a requestPath ('{path}'); requestPath is allowed only for Http and Https probes."
                    ),
                ));
            }
            ("Http" | "Https", None) => {
                return Err(bad(
                    "LoadBalancerProbeRequestPathRequired",
                    format!(
                        "Probe {pid} uses protocol {proto} and must have a requestPath (the path the health probe requests, e.g. '/')."
                    ),
                ));
            }
            _ => {}
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

fn ids_of(props: &Value, field: &str) -> BTreeSet<String> {
    props
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("id").and_then(Value::as_str))
        .map(key)
        .collect()
}

/// One validated rule: (frontend key, protocol, frontend port, backend port, pools, floating).
struct Rule {
    id: String,
    frontend: String,
    protocol: &'static str,
    frontend_port: u64,
    backend_port: u64,
    pools: Vec<String>,
    floating: bool,
}

/// Load-balancing rules: references, protocol, ports (0 = HA ports, only with `All`), idle
/// timeout, defaults; then conflicts between rules.
pub(crate) fn rules(props: &mut Value) -> Result<(), ArmError> {
    let fes = ids_of(props, "frontendIPConfigurations");
    let pools = ids_of(props, "backendAddressPools");
    let probes = ids_of(props, "probes");
    let Some(list) = props
        .get_mut("loadBalancingRules")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let mut seen = Vec::new();
    for rule in list {
        let r = rule_of(rule, &fes, &pools, &probes)?;
        conflicts(&seen, &r)?;
        seen.push(r);
    }
    Ok(())
}

fn rule_of(
    rule: &mut Value,
    fes: &BTreeSet<String>,
    pools: &BTreeSet<String>,
    probes: &BTreeSet<String>,
) -> Result<Rule, ArmError> {
    let rid = ref_at(rule, "/id").unwrap_or_default();
    let p = &mut rule["properties"];
    let fe = ref_at(p, "/frontendIPConfiguration/id").ok_or_else(|| {
        bad(
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
    if let Some(pool) = rule_pools.iter().find(|pool| !pools.contains(&key(pool))) {
        return Err(invalid_reference(pool, &rid));
    }
    if let Some(probe) = ref_at(p, "/probe/id")
        && !probes.contains(&key(&probe))
    {
        return Err(invalid_reference(&probe, &rid));
    }
    let protocol = one_of(p, "protocol", &["Tcp", "Udp", "All"], &rid)?;
    p["protocol"] = json!(protocol);
    let frontend_port = port(p, "frontendPort", 0..=65534, &rid)?;
    let backend_port = port(p, "backendPort", 0..=65535, &rid)?;
    let ha_ports = frontend_port == 0 && backend_port == 0;
    if ha_ports != (protocol == "All") {
        return Err(bad(
            "LoadBalancingRuleHaPortsRequireProtocolAll",
            format!(
                "Load balancing rule {rid} uses protocol {protocol} with frontend port {frontend_port} and backend port {backend_port}: port 0 (HA ports) requires protocol All and both ports 0, and protocol All is only allowed with HA ports."
            ),
        ));
    }
    let idle = p
        .get("idleTimeoutInMinutes")
        .and_then(Value::as_u64)
        .unwrap_or(4);
    if !RULE_IDLE_TIMEOUT.contains(&idle) {
        return Err(bad(
            "LoadBalancingRuleIdleTimeoutOutOfRange",
            format!(
                "Load balancing rule {rid} has idleTimeoutInMinutes {idle}; the value must be between {} and {} minutes.",
                RULE_IDLE_TIMEOUT.start(),
                RULE_IDLE_TIMEOUT.end()
            ),
        ));
    }
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
    Ok(Rule {
        id: rid,
        frontend: key(&fe),
        protocol,
        frontend_port,
        backend_port,
        pools: rule_pools.iter().map(|p| key(p)).collect(),
        floating: p["enableFloatingIP"].as_bool().unwrap_or(false),
    })
}

fn conflicts(seen: &[Rule], r: &Rule) -> Result<(), ArmError> {
    let overlap = |a: &str, b: &str| a == b || a == "All" || b == "All";
    if let Some(o) = seen.iter().find(|o| {
        o.frontend == r.frontend
            && o.frontend_port == r.frontend_port
            && overlap(o.protocol, r.protocol)
    }) {
        return Err(bad(
            "LoadBalancingRulesUseSameFrontendIpConfigurationProtocolAndPort",
            format!(
                "Load balancing rules {} and {} use the same frontend IP configuration {}, protocol {} and frontend port {}.",
                o.id, r.id, r.frontend, r.protocol, r.frontend_port
            ),
        ));
    }
    if r.floating {
        return Ok(());
    }
    for pool in &r.pools {
        if let Some(o) = seen.iter().find(|o| {
            !o.floating
                && o.protocol == r.protocol
                && o.backend_port == r.backend_port
                && o.pools.contains(pool)
        }) {
            return Err(bad(
                "RulesUseSameBackendPortProtocolAndPool",
                format!(
                    "Load balancing rules {} and {} with floating IP disabled use the same protocol {} and backend port {}, and must not be used with the same backend address pool {pool}.",
                    o.id, r.id, r.protocol, r.backend_port
                ),
            ));
        }
    }
    Ok(())
}
