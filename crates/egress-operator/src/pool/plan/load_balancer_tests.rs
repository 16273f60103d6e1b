//! Unit tests of the load-balancer plan, from inline JSON as ARM returns it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::json;

const LB: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/kubeegressgateway-ilb";
const SUBNET: &str =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/sn";

fn ids() -> (ResourceId, ResourceId) {
    (
        ResourceId::parse(LB).unwrap(),
        ResourceId::parse(SUBNET).unwrap(),
    )
}

fn want(n: &str) -> RuleWant {
    RuleWant {
        lb_uid: format!("lb-{n}"),
        sgc_uid: format!("sgc-{n}"),
    }
}

fn input<'a>(
    lb: &'a ResourceId,
    subnet: &'a ResourceId,
    want: &'a [RuleWant],
    remove: &'a [String],
) -> LbInput<'a> {
    LbInput {
        lb_id: lb,
        pool_name: "pool-uid",
        subnet_id: subnet,
        location: "eastus",
        probe_port: 8082,
        want,
        remove,
    }
}

/// A load balancer with the pool's frontend/backend and rules at the given ports, named
/// `lb-<port>`, plus a foreign rule on another frontend.
fn existing(ports: &[u16]) -> LoadBalancer {
    let fe = format!("{LB}/frontendIPConfigurations/pool-uid");
    let be = format!("{LB}/backendAddressPools/pool-uid");
    let mut rules: Vec<serde_json::Value> = ports
        .iter()
        .map(|p| {
            json!({"name": format!("lb-{p}"), "properties": {"protocol": "Udp",
                "frontendPort": p, "backendPort": p, "enableFloatingIP": true,
                "frontendIPConfiguration": {"id": fe}, "backendAddressPool": {"id": be},
                "probe": {"id": format!("{LB}/probes/lb-{p}")}, "idleTimeoutInMinutes": 4}})
        })
        .collect();
    rules.push(json!({"name": "foreign", "properties": {"protocol": "Tcp", "frontendPort": 6000,
        "backendPort": 80, "frontendIPConfiguration": {"id": format!("{LB}/frontendIPConfigurations/other")}}}));
    let probes: Vec<serde_json::Value> = ports
        .iter()
        .map(|p| {
            json!({"name": format!("lb-{p}"), "properties": {"protocol": "Http", "port": 8082,
            "requestPath": format!("/gw/sgc-{p}"), "intervalInSeconds": 5, "probeThreshold": 1}})
        })
        .collect();
    serde_json::from_value(json!({
        "name": "kubeegressgateway-ilb", "location": "eastus", "etag": "W/\"1\"",
        "sku": {"name": "Standard"},
        "properties": {
            "frontendIPConfigurations": [
                {"name": "pool-uid", "properties": {"privateIPAddress": "10.0.0.9", "subnet": {"id": SUBNET}}},
                {"name": "other", "properties": {"privateIPAddress": "10.0.0.10"}}],
            "backendAddressPools": [{"name": "pool-uid"}, {"name": "other"}],
            "loadBalancingRules": rules, "probes": probes,
            "inboundNatRules": [{"name": "keep-me"}]
        }
    }))
    .unwrap()
}

#[test]
fn a_new_load_balancer_gets_frontend_backend_and_one_rule_and_probe_per_gateway() {
    let (lb, sn) = ids();
    let w = [want("a"), want("b")];
    let p = plan(None, &input(&lb, &sn, &w, &[]));
    assert!(p.changed && p.new_frontend);
    assert_eq!(p.ports["lb-a"], 6000);
    assert_eq!(p.ports["lb-b"], 6001);
    let v = serde_json::to_value(&p.lb).unwrap();
    assert_eq!(v["sku"]["name"], "Standard");
    assert_eq!(v["location"], "eastus");
    let fe = &v["properties"]["frontendIPConfigurations"][0];
    assert_eq!(fe["name"], "pool-uid");
    assert_eq!(fe["properties"]["privateIPAllocationMethod"], "Dynamic");
    assert_eq!(fe["properties"]["subnet"]["id"], SUBNET);
    let rule = &v["properties"]["loadBalancingRules"][1];
    assert_eq!(rule["name"], "lb-b");
    assert_eq!(rule["properties"]["protocol"], "Udp");
    assert_eq!(rule["properties"]["backendPort"], 6001);
    assert_eq!(rule["properties"]["enableFloatingIP"], true);
    assert_eq!(
        rule["properties"]["probe"]["id"],
        format!("{LB}/probes/lb-b")
    );
    let probe = &v["properties"]["probes"][1];
    assert_eq!(probe["properties"]["requestPath"], "/gw/sgc-b");
    assert_eq!(probe["properties"]["port"], 8082);
}

#[test]
fn existing_rules_keep_their_ports_and_new_ones_take_the_lowest_free_port() {
    let (lb, sn) = ids();
    // 6000 and 6002 are used by this pool; the foreign rule's 6000 is on another frontend.
    let cur = existing(&[6000, 6002]);
    let w = [want("6002"), want("new"), want("6000"), want("new2")];
    let p = plan(Some(&cur), &input(&lb, &sn, &w, &[]));
    assert_eq!(p.ports["lb-6002"], 6002);
    assert_eq!(p.ports["lb-6000"], 6000);
    assert_eq!(p.ports["lb-new"], 6001);
    assert_eq!(p.ports["lb-new2"], 6003);
    assert!(p.changed && !p.new_frontend);
}

#[test]
fn an_unchanged_pool_needs_no_write_and_unknown_fields_survive() {
    let (lb, sn) = ids();
    let cur = existing(&[6000]);
    let w = [RuleWant {
        lb_uid: "lb-6000".into(),
        sgc_uid: "sgc-6000".into(),
    }];
    let p = plan(Some(&cur), &input(&lb, &sn, &w, &[]));
    assert!(!p.changed, "{:#?}", p.lb);
    let v = serde_json::to_value(&p.lb).unwrap();
    assert_eq!(v["properties"]["inboundNatRules"][0]["name"], "keep-me");
    assert_eq!(
        v["properties"]["loadBalancingRules"][0]["properties"]["idleTimeoutInMinutes"],
        4
    );
}

#[test]
fn drift_is_repaired_in_place_without_changing_the_port() {
    let (lb, sn) = ids();
    let mut cur = existing(&[6005]);
    {
        let r = &mut cur.properties.load_balancing_rules[0].properties;
        r.backend_port = Some(7777);
        r.enable_floating_ip = Some(false);
        r.protocol = Some("Tcp".into());
        cur.properties.probes[0].properties.request_path = Some("/wrong".into());
    }
    let w = [RuleWant {
        lb_uid: "lb-6005".into(),
        sgc_uid: "sgc-6005".into(),
    }];
    let p = plan(Some(&cur), &input(&lb, &sn, &w, &[]));
    assert!(p.changed);
    assert_eq!(p.ports["lb-6005"], 6005);
    let r = p.lb.rule("lb-6005").unwrap();
    assert_eq!(r.properties.backend_port, Some(6005));
    assert_eq!(r.properties.enable_floating_ip, Some(true));
    assert_eq!(r.properties.protocol.as_deref(), Some("Udp"));
    assert_eq!(
        p.lb.properties.probes[0].properties.request_path.as_deref(),
        Some("/gw/sgc-6005")
    );
    assert_eq!(p.lb.properties.load_balancing_rules.len(), 2);
}

#[test]
fn port_exhaustion_is_reported_per_gateway() {
    let (lb, sn) = ids();
    let all: Vec<u16> = (6000..7000).collect();
    let cur = existing(&all);
    let w = [want("late")];
    let p = plan(Some(&cur), &input(&lb, &sn, &w, &[]));
    assert_eq!(p.exhausted, vec!["lb-late".to_string()]);
    assert!(p.ports.is_empty());
    assert!(!p.changed);
}

#[test]
fn removal_drops_only_the_named_rule_and_probe_and_shrink_waits_for_the_last_one() {
    let (lb, sn) = ids();
    let cur = existing(&[6000, 6001]);
    let p = plan(Some(&cur), &input(&lb, &sn, &[], &["lb-6000".to_string()]));
    assert!(p.changed);
    assert!(p.lb.rule("lb-6000").is_none());
    assert!(p.lb.rule("lb-6001").is_some());
    assert!(p.lb.rule("foreign").is_some());
    assert_eq!(p.lb.properties.probes.len(), 1);
    assert_eq!(plan_shrink(&p.lb, &lb, "pool-uid"), Shrink::Keep);

    let p = plan(Some(&p.lb), &input(&lb, &sn, &[], &["lb-6001".to_string()]));
    match plan_shrink(&p.lb, &lb, "pool-uid") {
        Shrink::Put(out) => {
            assert!(out.frontend("pool-uid").is_none());
            assert!(out.frontend("other").is_some());
            assert_eq!(out.properties.backend_address_pools.len(), 1);
            assert!(out.rule("foreign").is_some());
        }
        other => panic!("expected a put, got {other:?}"),
    }
}

#[test]
fn the_last_frontend_going_deletes_the_load_balancer() {
    let (lb, sn) = ids();
    let w = [want("a")];
    let created = plan(None, &input(&lb, &sn, &w, &[])).lb;
    let emptied = plan(Some(&created), &input(&lb, &sn, &[], &["lb-a".to_string()])).lb;
    assert_eq!(plan_shrink(&emptied, &lb, "pool-uid"), Shrink::Delete);
    assert_eq!(
        frontend_ip(&existing(&[]), "pool-uid").as_deref(),
        Some("10.0.0.9")
    );
}
