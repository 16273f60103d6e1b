//! Unit tests of the pass status, from inline chains and what apply returned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use super::*;
use crate::pool::apply::load_balancer::LbApplied;
use crate::pool::plan::fixtures::{chain, members, scale_set_pool, vm_pool};

const DELETING: &str = "deletionTimestamp: '2024-01-01T00:00:00Z', finalizers: [x],";

fn node(name: &str, primary: &str, secondary: &[(&str, &str)]) -> InstanceIps {
    InstanceIps {
        node_name: name.into(),
        primary_ip: Some(primary.into()),
        secondary: secondary
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        written: false,
    }
}

fn applied(frontend: Option<&str>, egress: Option<PrefixInfo>, nodes: Vec<InstanceIps>) -> Applied {
    Applied {
        lb: LbApplied {
            frontend_ip: frontend.map(str::to_string),
            ports: BTreeMap::from([("l-a".to_string(), 6000)]),
            ..LbApplied::default()
        },
        egress: BTreeMap::from([("l-a".to_string(), egress)]),
        nodes,
        ..Applied::default()
    }
}

fn summary(s: &MemberStatus) -> Vec<(&str, bool, &str, &str)> {
    s.conditions
        .iter()
        .map(|c| (c.type_, c.ok, c.reason.as_str(), c.message.as_str()))
        .collect()
}

#[test]
fn a_provisioned_public_gateway_reports_endpoint_prefix_and_instances() {
    let m = &members(&[chain("a", "{gatewayNodepoolName: gwpool}")])[0];
    let prefix = PrefixInfo {
        id: "/prefix".into(),
        cidr: "203.0.113.0/31".into(),
        public_ips: vec![],
    };
    let nodes = vec![
        node("gw-0", "10.0.0.4", &[("egressgateway-v-a", "10.0.0.10")]),
        node("gw-1", "10.0.0.5", &[]),
    ];
    let a = applied(Some("10.0.0.6"), Some(prefix), nodes);
    let s = of_member(m, None, None, &a, &scale_set_pool(Some("31"))).unwrap();
    assert_eq!(
        summary(&s),
        [
            (
                LOAD_BALANCER_READY,
                true,
                "LoadBalancerRuleProvisioned",
                "gateway endpoint 10.0.0.6:6000"
            ),
            (
                PREFIX_READY,
                true,
                "PrefixProvisioned",
                "egress from public IP prefix 203.0.113.0/31"
            ),
            (
                GATEWAY_VMS_READY,
                true,
                "IpConfigurationsProvisioned",
                "1 of 2 instances of scale set gw-vmss have ipConfiguration egressgateway-v-a"
            ),
        ]
    );
    let lb = s.lb.unwrap();
    assert_eq!(lb.frontend_ip.as_deref(), Some("10.0.0.6"));
    assert_eq!(lb.server_port, Some(6000));
    assert_eq!(lb.egress_ip_prefix.as_deref(), Some("203.0.113.0/31"));
    let vm = s.vm.unwrap();
    assert_eq!(vm.egress_ip_prefix.as_deref(), Some("203.0.113.0/31"));
    let profiles = vm.gateway_vm_profiles.unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0].node_name.as_deref(), Some("gw-0"));
    assert_eq!(profiles[0].primary_ip.as_deref(), Some("10.0.0.4"));
    assert_eq!(profiles[0].secondary_ip.as_deref(), Some("10.0.0.10"));
    assert_eq!(profiles[1].secondary_ip, None);
}

#[test]
fn a_private_gateway_egresses_from_every_nodes_secondary_ip() {
    let m = &members(&[chain(
        "a",
        "{gatewayNodepoolName: vmpool, provisionPublicIps: false}",
    )])[0];
    let nodes = vec![
        node("nic-0", "10.0.0.4", &[("egressgateway-v-a", "10.0.0.10")]),
        node("nic-1", "10.0.0.5", &[("egressgateway-v-a", "10.0.0.11")]),
    ];
    let s = of_member(
        m,
        None,
        None,
        &applied(Some("10.0.0.6"), None, nodes),
        &vm_pool("31"),
    )
    .unwrap();
    assert_eq!(
        summary(&s)[1..],
        [
            (
                PREFIX_READY,
                true,
                "PrivateIPsProvisioned",
                "egress from private IPs 10.0.0.10,10.0.0.11"
            ),
            (
                GATEWAY_VMS_READY,
                true,
                "IpConfigurationsProvisioned",
                "2 of 2 gateway NICs of VM node pool vmpool have ipConfiguration egressgateway-v-a"
            ),
        ]
    );
    assert_eq!(
        s.lb.unwrap().egress_ip_prefix.as_deref(),
        Some("10.0.0.10,10.0.0.11")
    );
}

#[test]
fn without_nodes_or_frontend_ip_the_gateway_is_not_ready() {
    let m = &members(&[chain(
        "a",
        "{gatewayNodepoolName: gwpool, provisionPublicIps: false}",
    )])[0];
    let s = of_member(
        m,
        None,
        None,
        &applied(None, None, vec![]),
        &scale_set_pool(None),
    )
    .unwrap();
    assert_eq!(
        summary(&s),
        [
            (
                LOAD_BALANCER_READY,
                false,
                "Provisioning",
                "waiting for the load balancer frontend IP"
            ),
            (
                PREFIX_READY,
                false,
                "NoGatewayInstances",
                "scale set gw-vmss has no instances"
            ),
            (
                GATEWAY_VMS_READY,
                false,
                "NoGatewayInstances",
                "scale set gw-vmss has no instances"
            ),
        ]
    );
    let lb = s.lb.unwrap();
    assert_eq!((lb.frontend_ip, lb.egress_ip_prefix), (None, None));
    assert_eq!(s.vm.unwrap().egress_ip_prefix, None);
}

#[test]
fn a_blocked_gateway_shows_only_why() {
    let m = &members(&[chain("a", "{gatewayNodepoolName: gwpool}")])[0];
    let a = applied(Some("10.0.0.6"), None, vec![]);
    let pool = scale_set_pool(None);
    let exhausted = of_member(m, Some(&MemberError::PortsExhausted), None, &a, &pool).unwrap();
    assert_eq!(
        summary(&exhausted),
        [(
            LOAD_BALANCER_READY,
            false,
            "PortsExhausted",
            MemberError::PortsExhausted.to_string().as_str()
        )]
    );
    assert_eq!((exhausted.lb, exhausted.vm), (None, None));
    let missing = MemberError::PrefixNotFound { id: "/p".into() };
    let s = of_member(m, Some(&missing), None, &a, &pool).unwrap();
    assert_eq!(
        summary(&s),
        [(
            PREFIX_READY,
            false,
            "PrefixNotFound",
            "failed to find public IP prefix /p"
        )]
    );
}

#[test]
fn removed_gateways_get_no_status_and_a_removed_vm_side_only_the_load_balancer() {
    let mut gone = chain("a", "{gatewayNodepoolName: gwpool}");
    gone.lb_extra = DELETING;
    let mut vm_gone = chain("a", "{gatewayNodepoolName: gwpool}");
    vm_gone.vm_extra = DELETING;
    let a = applied(Some("10.0.0.6"), None, vec![node("gw-0", "10.0.0.4", &[])]);
    let pool = scale_set_pool(None);
    assert_eq!(of_member(&members(&[gone])[0], None, None, &a, &pool), None);
    let s = of_member(&members(&[vm_gone])[0], None, None, &a, &pool).unwrap();
    assert_eq!(s.vm, None);
    assert_eq!(summary(&s).len(), 1);
    assert_eq!(s.lb.unwrap().server_port, Some(6000));
}

#[test]
fn a_dual_stack_gateway_reports_its_ipv6_egress_or_why_not() {
    let m = &members(&[chain(
        "a",
        "{gatewayNodepoolName: gwpool, ipFamilies: [IPv4, IPv6]}",
    )])[0];
    let prefix = |cidr: &str| PrefixInfo {
        id: "/prefix".into(),
        cidr: cidr.into(),
        public_ips: vec![],
    };
    let nodes = vec![
        node(
            "gw-0",
            "10.0.0.4",
            &[
                ("egressgateway-v-a", "10.0.0.10"),
                ("egressgateway-v-a-ipv6", "fd00::10"),
            ],
        ),
        node("gw-1", "10.0.0.5", &[("egressgateway-v-a", "10.0.0.11")]),
    ];
    let mut a = applied(Some("10.0.0.6"), Some(prefix("203.0.113.0/31")), nodes);
    a.egress6 = BTreeMap::from([("l-a".to_string(), Some(prefix("2001:db8::/127")))]);
    let pool = scale_set_pool(Some("31"));
    let s = of_member(m, None, None, &a, &pool).unwrap();
    let vm = s.vm.clone().unwrap();
    assert_eq!(vm.egress_ipv6_prefix.as_deref(), Some("2001:db8::/127"));
    let v6: Vec<Option<&str>> = vm
        .gateway_vm_profiles
        .iter()
        .flatten()
        .map(|p| p.secondary_ipv6.as_deref())
        .collect();
    assert_eq!(v6, [Some("fd00::10"), None]);
    assert_eq!(s.sgc_ipv6_prefix, Some(Some("2001:db8::/127".into())));
    assert_eq!(
        summary(&s).last().copied(),
        Some((
            IPV6_READY,
            true,
            "IPv6Provisioned",
            "egress IPv6 from public IPv6 prefix 2001:db8::/127 (1 of 2 instances)"
        ))
    );

    // Blocked IPv6: False with the reason; the IPv4 conditions are untouched.
    let missing = MemberError::PrefixNotFound { id: "/v6".into() };
    a.egress6.clear();
    let s = of_member(m, None, Some(&missing), &a, &pool).unwrap();
    let last = summary(&s).last().copied().unwrap();
    assert_eq!(
        (last.0, last.1, last.2),
        (IPV6_READY, false, "PrefixNotFound")
    );
    assert!(summary(&s).iter().filter(|c| !c.1).count() == 1);
    assert_eq!(s.sgc_ipv6_prefix, Some(None), "no status shows IPv6 yet");

    // A gateway without IPv6 has neither the fields nor the condition.
    let plain = &members(&[chain("a", "{gatewayNodepoolName: gwpool}")])[0];
    let s = of_member(plain, None, None, &a, &pool).unwrap();
    assert!(summary(&s).iter().all(|c| c.0 != IPV6_READY));
    assert_eq!(s.sgc_ipv6_prefix, Some(None));
    assert!(s.vm.unwrap().egress_ipv6_prefix.is_none());
}

#[test]
fn a_blocked_dual_stack_gateway_keeps_its_ipv6_condition() {
    let spec = "{gatewayNodepoolName: gwpool, ipFamilies: [IPv4, IPv6]}";
    let mut m = members(&[chain("a", spec)]).remove(0);
    let mut sgc = (**m.sgc.as_ref().unwrap()).clone();
    sgc.status = serde_json::from_value(serde_json::json!({"conditions": [{
        "type": "IPv6Ready", "status": "True", "reason": "IPv6Provisioned", "message": "m",
        "lastTransitionTime": "2024-01-01T00:00:00Z"}]}))
    .unwrap();
    m.sgc = Some(std::sync::Arc::new(sgc));
    let a = applied(None, None, vec![]);
    let s = of_member(
        &m,
        Some(&MemberError::PortsExhausted),
        None,
        &a,
        &scale_set_pool(None),
    )
    .unwrap();
    assert_eq!(
        summary(&s),
        [
            (
                LOAD_BALANCER_READY,
                false,
                "PortsExhausted",
                MemberError::PortsExhausted.to_string().as_str()
            ),
            (IPV6_READY, true, "IPv6Provisioned", "m"),
        ]
    );
    assert_eq!(s.sgc_ipv6_prefix, None, "left as it is");
}
