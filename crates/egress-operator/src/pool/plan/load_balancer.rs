//! Pure plan of the gateway load balancer for one pool: the frontend and backend pool named by
//! the pool's unique ID, and one UDP floating-IP rule plus one HTTP probe per gateway, named by
//! its GatewayLBConfiguration UID. Ports: an existing rule keeps its port (pods are configured
//! with it; drift in other fields is repaired in place); a new rule gets the lowest free port in
//! 6000-6999 among the rules on this pool's frontend or backend. Everything else in the load
//! balancer (other frontends, rules, probes, unknown fields) is left as it was read.

use std::collections::{BTreeMap, BTreeSet};

use egress_api::constants::{GATEWAY_PORT_MAX, GATEWAY_PORT_MIN, health_probe_path};
use egress_azure::ResourceId;
use egress_azure::models::{
    BackendAddressPool, FrontendIpConfiguration, FrontendIpConfigurationProperties, LoadBalancer,
    LoadBalancerProperties, LoadBalancingRule, Probe, Sku, SubResource,
};

/// Probe interval and threshold of the original.
const PROBE_INTERVAL_SECONDS: u32 = 5;
const PROBE_THRESHOLD: u32 = 1;

/// One gateway that should have a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWant {
    /// GatewayLBConfiguration UID: the rule and probe name.
    pub lb_uid: String,
    /// SGC UID: the probe path `/gw/<uid>`.
    pub sgc_uid: String,
}

/// Where the load balancer lives and what it must contain.
#[derive(Debug, Clone)]
pub struct LbInput<'a> {
    /// The load balancer.
    pub lb_id: &'a ResourceId,
    /// Pool unique ID: frontend and backend pool name.
    pub pool_name: &'a str,
    /// Subnet of a new frontend.
    pub subnet_id: &'a ResourceId,
    /// Region of a new load balancer.
    pub location: &'a str,
    /// Health-probe port of the gateway daemon.
    pub probe_port: u16,
    /// Rules to have, in port-allocation order (oldest first).
    pub want: &'a [RuleWant],
    /// Rule/probe names (LB config UIDs) to remove.
    pub remove: &'a [String],
}

/// The planned load balancer.
#[derive(Debug, Clone)]
pub struct LbPlan {
    /// Desired load balancer (the read one plus our changes).
    pub lb: LoadBalancer,
    /// Whether it differs from what was read (a write is needed).
    pub changed: bool,
    /// Port of each wanted rule that got one.
    pub ports: BTreeMap<String, u16>,
    /// Wanted rules that got no port (6000-6999 all used).
    pub exhausted: Vec<String>,
    /// Whether the frontend is new (its subnet should be checked first).
    pub new_frontend: bool,
}

/// What to do with the load balancer once the pool's last rule is gone.
#[derive(Debug, Clone, PartialEq)]
pub enum Shrink {
    /// Something still uses the frontend or backend pool (or they are already gone).
    Keep,
    /// Write the load balancer without the pool's frontend and backend pool.
    Put(Box<LoadBalancer>),
    /// Nothing is left in the load balancer: delete it.
    Delete,
}

fn frontend_id(input: &LbInput<'_>) -> String {
    input
        .lb_id
        .child("frontendIPConfigurations", input.pool_name)
        .to_string()
}

fn backend_id(lb_id: &ResourceId, pool_name: &str) -> String {
    lb_id.child("backendAddressPools", pool_name).to_string()
}

fn probe_id(lb_id: &ResourceId, name: &str) -> String {
    lb_id.child("probes", name).to_string()
}

fn named(name: &Option<String>, want: &str) -> bool {
    name.as_deref()
        .is_some_and(|n| n.eq_ignore_ascii_case(want))
}

fn refers(r: &Option<SubResource>, id: &str) -> bool {
    r.as_ref().is_some_and(|s| s.refers_to(id))
}

fn same_text(a: &Option<String>, b: &str) -> bool {
    a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b))
}

/// Plans the load balancer from what was read (`None`: it does not exist).
pub fn plan(current: Option<&LoadBalancer>, input: &LbInput<'_>) -> LbPlan {
    let mut lb = current.cloned().unwrap_or_else(|| LoadBalancer {
        name: Some(input.lb_id.name().to_string()),
        location: Some(input.location.to_string()),
        sku: Some(Sku::standard_regional()),
        ..Default::default()
    });
    let p = &mut lb.properties;
    p.load_balancing_rules
        .retain(|r| !input.remove.iter().any(|u| named(&r.name, u)));
    p.probes
        .retain(|r| !input.remove.iter().any(|u| named(&r.name, u)));
    let new_frontend = !input.want.is_empty() && add_frontend_and_backend(p, input);
    let (ports, exhausted) = place_rules(p, input);
    let changed = match current {
        Some(c) => !same_json(c, &lb),
        None => !input.want.is_empty(),
    };
    LbPlan {
        lb,
        changed,
        ports,
        exhausted,
        new_frontend,
    }
}

/// Adds the pool's frontend and backend pool where missing; returns whether the frontend is new.
fn add_frontend_and_backend(p: &mut LoadBalancerProperties, input: &LbInput<'_>) -> bool {
    let mut new_frontend = false;
    if !p
        .frontend_ip_configurations
        .iter()
        .any(|f| named(&f.name, input.pool_name))
    {
        new_frontend = true;
        p.frontend_ip_configurations.push(FrontendIpConfiguration {
            name: Some(input.pool_name.to_string()),
            properties: FrontendIpConfigurationProperties {
                private_ip_allocation_method: Some("Dynamic".into()),
                private_ip_address_version: Some("IPv4".into()),
                subnet: Some(SubResource::new(input.subnet_id)),
                ..Default::default()
            },
            ..Default::default()
        });
    }
    if !p
        .backend_address_pools
        .iter()
        .any(|b| named(&b.name, input.pool_name))
    {
        p.backend_address_pools.push(BackendAddressPool {
            name: Some(input.pool_name.to_string()),
            ..Default::default()
        });
    }
    new_frontend
}

/// Gives each wanted gateway its rule and probe: an existing rule keeps its port, a new one
/// takes the lowest free port. Returns the port of each gateway and the gateways left without.
fn place_rules(
    p: &mut LoadBalancerProperties,
    input: &LbInput<'_>,
) -> (BTreeMap<String, u16>, Vec<String>) {
    let fe_id = frontend_id(input);
    let be_id = backend_id(input.lb_id, input.pool_name);
    let in_range = |port: u16| (GATEWAY_PORT_MIN..GATEWAY_PORT_MAX).contains(&i32::from(port));
    let mut used: BTreeSet<u16> = p
        .load_balancing_rules
        .iter()
        .filter(|r| {
            refers(&r.properties.frontend_ip_configuration, &fe_id)
                || refers(&r.properties.backend_address_pool, &be_id)
        })
        .filter_map(|r| r.properties.frontend_port)
        .collect();
    let mut ports = BTreeMap::new();
    let mut exhausted = Vec::new();
    for want in input.want {
        let existing = p
            .load_balancing_rules
            .iter()
            .find(|r| named(&r.name, &want.lb_uid))
            .and_then(|r| r.properties.frontend_port)
            .filter(|port| in_range(*port));
        let port = existing.or_else(|| {
            let free = (GATEWAY_PORT_MIN..GATEWAY_PORT_MAX)
                .filter_map(|x| u16::try_from(x).ok())
                .find(|x| !used.contains(x));
            if let Some(f) = free {
                used.insert(f);
            }
            free
        });
        let Some(port) = port else {
            exhausted.push(want.lb_uid.clone());
            continue;
        };
        ports.insert(want.lb_uid.clone(), port);
        ensure_probe(
            &mut p.probes,
            &want.lb_uid,
            input.probe_port,
            &health_probe_path(&want.sgc_uid),
        );
        let probe = probe_id(input.lb_id, &want.lb_uid);
        ensure_rule(
            &mut p.load_balancing_rules,
            &want.lb_uid,
            port,
            &fe_id,
            &be_id,
            &probe,
        );
    }
    (ports, exhausted)
}

fn same_json<T: serde::Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

fn ensure_probe(probes: &mut Vec<Probe>, name: &str, port: u16, path: &str) {
    let idx = match probes.iter().position(|p| named(&p.name, name)) {
        Some(i) => i,
        None => {
            probes.push(Probe {
                name: Some(name.to_string()),
                ..Default::default()
            });
            probes.len() - 1
        }
    };
    let pp = &mut probes[idx].properties;
    if !same_text(&pp.protocol, "Http") {
        pp.protocol = Some("Http".into());
    }
    pp.port = Some(port);
    pp.request_path = Some(path.to_string());
    pp.interval_in_seconds = Some(PROBE_INTERVAL_SECONDS);
    pp.probe_threshold = Some(PROBE_THRESHOLD);
}

fn ensure_rule(
    rules: &mut Vec<LoadBalancingRule>,
    name: &str,
    port: u16,
    frontend: &str,
    backend: &str,
    probe: &str,
) {
    let idx = match rules.iter().position(|r| named(&r.name, name)) {
        Some(i) => i,
        None => {
            rules.push(LoadBalancingRule {
                name: Some(name.to_string()),
                ..Default::default()
            });
            rules.len() - 1
        }
    };
    let rp = &mut rules[idx].properties;
    if !same_text(&rp.protocol, "Udp") {
        rp.protocol = Some("Udp".into());
    }
    rp.frontend_port = Some(port);
    rp.backend_port = Some(port);
    rp.enable_floating_ip = Some(true);
    if !refers(&rp.frontend_ip_configuration, frontend) {
        rp.frontend_ip_configuration = Some(SubResource::new(frontend));
    }
    if !refers(&rp.backend_address_pool, backend) {
        rp.backend_address_pool = Some(SubResource::new(backend));
    }
    if !refers(&rp.probe, probe) {
        rp.probe = Some(SubResource::new(probe));
    }
}

/// Once no rule uses the pool's frontend or backend pool, remove both; delete the load
/// balancer when no frontend is left at all.
pub fn plan_shrink(lb: &LoadBalancer, lb_id: &ResourceId, pool_name: &str) -> Shrink {
    let fe_id = lb_id
        .child("frontendIPConfigurations", pool_name)
        .to_string();
    let be_id = backend_id(lb_id, pool_name);
    let p = &lb.properties;
    let in_use = p.load_balancing_rules.iter().any(|r| {
        refers(&r.properties.frontend_ip_configuration, &fe_id)
            || refers(&r.properties.backend_address_pool, &be_id)
    });
    let has_ours = p
        .frontend_ip_configurations
        .iter()
        .any(|f| named(&f.name, pool_name))
        || p.backend_address_pools
            .iter()
            .any(|b| named(&b.name, pool_name));
    if in_use || !has_ours {
        return Shrink::Keep;
    }
    let mut out = lb.clone();
    out.properties
        .frontend_ip_configurations
        .retain(|f| !named(&f.name, pool_name));
    out.properties
        .backend_address_pools
        .retain(|b| !named(&b.name, pool_name));
    if out.properties.frontend_ip_configurations.is_empty() {
        Shrink::Delete
    } else {
        Shrink::Put(Box::new(out))
    }
}

/// The private IP of the pool's frontend, once Azure has allocated it.
pub fn frontend_ip(lb: &LoadBalancer, pool_name: &str) -> Option<String> {
    lb.frontend(pool_name)?
        .properties
        .private_ip_address
        .clone()
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
#[path = "load_balancer_tests.rs"]
mod tests;
