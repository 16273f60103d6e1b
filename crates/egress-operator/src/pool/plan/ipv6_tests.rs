//! Unit tests of the IPv6 plan, from inline YAML chains and ARM JSON prefixes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use egress_api::{GatewayVMConfigurationStatus, GatewayVMProfile};
use egress_azure::ResourceGroupId;
use egress_azure::models::PublicIpPrefix;

use super::*;
use crate::pool::plan::fixtures::{SUB, chain, members, prefix, scale_set_pool, settings};
use crate::pool::plan::pass::{self, IpConfigStep};

const DUAL: &str = "gatewayNodepoolName: gwpool, ipFamilies: [IPv4, IPv6]";
const DELETING: &str = "deletionTimestamp: '2024-01-01T00:00:00Z', finalizers: [x],";

fn id(name: &str) -> String {
    ResourceGroupId::new(SUB, "rg")
        .public_ip_prefix(name)
        .to_string()
}

fn prefix6(name: &str, len: u8, cidr: &str) -> PublicIpPrefix {
    let mut p = prefix(name, len, cidr);
    p.properties.public_ip_address_version = Some("IPv6".into());
    p
}

type Found<'a> = &'a [(&'a str, Option<PublicIpPrefix>)];

/// What a pass observed on the scale set `gwpool` with the prefix size tag /30.
fn observed(members: Vec<Member>, v4: Found<'_>, v6: Found<'_>, nodes: usize) -> Observed {
    let map = |f: Found<'_>| {
        f.iter()
            .map(|(uid, p)| (uid.to_string(), p.clone()))
            .collect()
    };
    Observed {
        pool: scale_set_pool(Some("30")),
        members,
        prefixes: map(v4),
        prefixes6: map(v6),
        node_count: Some(nodes),
        subnet_without_ipv6: None,
    }
}

fn reasons(p: &Ipv6Plan) -> Vec<(&str, &str)> {
    p.blocked
        .iter()
        .map(|(k, e)| (k.as_str(), e.reason()))
        .collect()
}

/// The IPv4 managed prefix (/30) of gateway `name`, as Azure has it.
fn v4(name: &str) -> (String, Option<PublicIpPrefix>) {
    let p = prefix(&format!("egressgateway-v-{name}"), 30, "203.0.113.0/30");
    (format!("l-{name}"), Some(p))
}

#[test]
fn without_ip_families_nothing_of_ipv6_is_read_or_planned() {
    let m = members(&[
        chain("a", "{gatewayNodepoolName: gwpool}"),
        chain(
            "b",
            "{gatewayNodepoolName: gwpool, provisionPublicIps: false}",
        ),
    ]);
    let s = settings();
    assert!(prefixes_to_read(&s, &scale_set_pool(Some("30")), &m).is_empty());
    let (la, pa) = v4("a");
    let p = pass::plan(&s, &observed(m, &[(&la, pa)], &[], 2)).unwrap();
    assert_eq!(p.ipv6.egress, BTreeMap::new());
    assert!(p.ipv6.blocked.is_empty() && p.ipv6.unused_prefixes.is_empty());
    assert!(p.ip_configs.iter().all(|c| c.family == Family::V4));
    assert!(p.unused_prefixes.iter().all(|u| u.family == Family::V4));
}

#[test]
fn a_dual_stack_gateway_gets_a_managed_ipv6_prefix_of_the_matching_length() {
    let m = members(&[chain("a", format!("{{{DUAL}}}"))]);
    let s = settings();
    let to_read: Vec<String> = prefixes_to_read(&s, &scale_set_pool(Some("30")), &m)
        .into_iter()
        .map(|(uid, id)| format!("{uid} {}", id.name()))
        .collect();
    assert_eq!(to_read, ["l-a egressgateway-v-a-ipv6"]);
    let (la, pa) = v4("a");
    let p = pass::plan(&s, &observed(m, &[(&la, pa)], &[("l-a", None)], 2)).unwrap();
    let EgressStep::Create(t) = &p.ipv6.egress["l-a"] else {
        panic!("{:?}", p.ipv6.egress)
    };
    assert_eq!(
        (t.id.to_string(), t.managed, t.length, t.family),
        (id("egressgateway-v-a-ipv6"), true, Some(126), Family::V6)
    );
    let body = prefixes::new_managed_prefix(&s, t);
    assert_eq!(body.properties.prefix_length, Some(126));
    assert_eq!(
        body.properties.public_ip_address_version.as_deref(),
        Some("IPv6")
    );
    assert_eq!(
        p.ip_configs,
        [
            IpConfigStep {
                lb_uid: "l-a".into(),
                name: "egressgateway-v-a".into(),
                family: Family::V4
            },
            IpConfigStep {
                lb_uid: "l-a".into(),
                name: "egressgateway-v-a-ipv6".into(),
                family: Family::V6
            },
        ]
    );
    assert!(p.remove_ip_configs.is_empty());
}

#[test]
fn byo_ipv6_prefixes_must_exist_be_ipv6_and_hold_the_pool() {
    let spec = |name: &str| format!("{{{DUAL}, publicIpv6PrefixId: {}}}", id(name));
    let m = members(&[
        chain("a-fits", spec("fits")),
        chain("b-missing", spec("gone")),
        chain("c-v4", spec("v4")),
        chain("d-small", spec("small")),
    ]);
    let v4s: Vec<(String, Option<PublicIpPrefix>)> =
        ["a-fits", "b-missing", "c-v4", "d-small"].map(v4).to_vec();
    let v4s: Vec<(&str, Option<PublicIpPrefix>)> =
        v4s.iter().map(|(k, p)| (k.as_str(), p.clone())).collect();
    let v6s = [
        ("l-a-fits", Some(prefix6("fits", 126, "2001:db8::/126"))),
        ("l-b-missing", None),
        ("l-c-v4", Some(prefix("v4", 30, "203.0.113.8/30"))),
        ("l-d-small", Some(prefix6("small", 127, "2001:db8::10/127"))),
    ];
    let p = pass::plan(&settings(), &observed(m, &v4s, &v6s, 3)).unwrap();
    let EgressStep::Ready(info) = &p.ipv6.egress["l-a-fits"] else {
        panic!("{:?}", p.ipv6.egress)
    };
    assert_eq!(info.cidr, "2001:db8::/126");
    assert_eq!(
        reasons(&p.ipv6),
        [
            ("l-b-missing", "PrefixNotFound"),
            ("l-c-v4", "InvalidPrefixId"),
            ("l-d-small", "PrefixTooSmall")
        ]
    );
    assert!(
        p.ipv6.blocked["l-d-small"]
            .to_string()
            .contains("holds 2 addresses, but scale set gw-vmss has 3 instances"),
        "{}",
        p.ipv6.blocked["l-d-small"]
    );
    // IPv4 goes on for all four; only the fitting one gets an IPv6 ipConfig.
    assert_eq!(p.egress.len(), 4);
    let v6_configs: Vec<&str> = p
        .ip_configs
        .iter()
        .filter(|c| c.family == Family::V6)
        .map(|c| c.lb_uid.as_str())
        .collect();
    assert_eq!(v6_configs, ["l-a-fits"]);
    // A BYO IPv6 prefix replaces a managed one the gateway may have had.
    let unused: Vec<(&str, Family)> = p
        .unused_prefixes
        .iter()
        .map(|u| (u.vm_uid.as_str(), u.family))
        .collect();
    assert!(unused.contains(&("v-a-fits", Family::V6)), "{unused:?}");
    assert!(!unused.contains(&("v-b-missing", Family::V6)), "{unused:?}");
}

#[test]
fn a_bad_or_unused_ipv6_prefix_id_blocks_only_ipv6() {
    let m = members(&[
        chain("a-bad", format!("{{{DUAL}, publicIpv6PrefixId: /nope}}")),
        chain(
            "b-unused",
            format!(
                "{{gatewayNodepoolName: gwpool, publicIpv6PrefixId: {}}}",
                id("x")
            ),
        ),
        chain(
            "c-private",
            format!("{{{DUAL}, provisionPublicIps: false}}"),
        ),
    ]);
    let v4s = [v4("a-bad"), v4("b-unused")];
    let v4s: Vec<(&str, Option<PublicIpPrefix>)> =
        v4s.iter().map(|(k, p)| (k.as_str(), p.clone())).collect();
    let p = pass::plan(&settings(), &observed(m, &v4s, &[], 2)).unwrap();
    assert_eq!(
        reasons(&p.ipv6),
        [
            ("l-a-bad", "InvalidPrefixId"),
            ("l-b-unused", "InvalidPrefixId")
        ]
    );
    assert!(p.blocked.is_empty(), "IPv4 is not blocked: {:?}", p.blocked);
    assert_eq!(p.ipv6.egress["l-c-private"], EgressStep::Private);
    // Without IPv6 in ipFamilies the IPv6 ipConfig goes; a blocked one stays as it is.
    assert!(
        p.remove_ip_configs
            .contains(&"egressgateway-v-b-unused-ipv6".to_string())
    );
    assert!(
        !p.remove_ip_configs
            .contains(&"egressgateway-v-a-bad-ipv6".to_string())
    );
}

#[test]
fn ipv6_waits_for_ipv4_and_is_removed_with_the_gateway_or_the_family() {
    let mut gone = chain("b-gone", format!("{{{DUAL}}}"));
    gone.vm_extra = DELETING;
    let mut m = members(&[
        chain(
            "a-blocked",
            format!("{{{DUAL}, publicIpPrefixId: {}}}", id("none")),
        ),
        gone,
        chain("c-dropped", "{gatewayNodepoolName: gwpool}"),
        chain("d-never", "{gatewayNodepoolName: gwpool}"),
    ]);
    // c-dropped had IPv6 egress (its status says so); d-never never had.
    let c = &mut m[2];
    let mut vm = (**c.vm.as_ref().unwrap()).clone();
    vm.status = Some(GatewayVMConfigurationStatus {
        egress_ipv6_prefix: Some("2001:db8::/127".into()),
        gateway_vm_profiles: Some(vec![GatewayVMProfile {
            secondary_ipv6: Some("fd00::6".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    c.vm = Some(Arc::new(vm));
    let v4s = [v4("c-dropped"), v4("d-never")];
    let v4s: Vec<(&str, Option<PublicIpPrefix>)> = v4s
        .iter()
        .map(|(k, p)| (k.as_str(), p.clone()))
        .chain([("l-a-blocked", None)])
        .collect();
    let p = pass::plan(&settings(), &observed(m, &v4s, &[], 2)).unwrap();
    assert_eq!(p.blocked["l-a-blocked"].reason(), "PrefixNotFound");
    assert!(p.ipv6.egress.is_empty() && p.ipv6.blocked.is_empty());
    let unused: Vec<(&str, Family, bool)> = p
        .ipv6
        .unused_prefixes
        .iter()
        .map(|u| (u.vm_uid.as_str(), u.family, u.unless_blocked))
        .collect();
    assert_eq!(
        unused,
        [
            ("v-b-gone", Family::V6, false),
            ("v-c-dropped", Family::V6, false)
        ]
    );
    assert_eq!(
        p.ipv6.remove_ip_configs,
        [
            "egressgateway-v-b-gone-ipv6",
            "egressgateway-v-c-dropped-ipv6",
            "egressgateway-v-d-never-ipv6"
        ]
    );
}

#[test]
fn a_vm_pool_gives_a_byo_ipv6_prefix_to_its_oldest_gateway_only() {
    use crate::pool::plan::fixtures::vm_pool;
    let spec = format!(
        "{{gatewayNodepoolName: vmpool, ipFamilies: [IPv4, IPv6], publicIpv6PrefixId: {}}}",
        id("byo6")
    );
    let m = members(&[chain("a", spec.clone()), chain("b", spec)]);
    let v4s = [v4("a"), v4("b")];
    let v4s: Vec<(&str, Option<PublicIpPrefix>)> =
        v4s.iter().map(|(k, p)| (k.as_str(), p.clone())).collect();
    let found = Some(prefix6("byo6", 126, "2001:db8::/126"));
    let mut o = observed(m, &v4s, &[("l-a", found.clone()), ("l-b", found)], 1);
    o.pool = vm_pool("30");
    let p = pass::plan(&settings(), &o).unwrap();
    assert!(matches!(p.ipv6.egress["l-a"], EgressStep::Ready(_)));
    assert_eq!(reasons(&p.ipv6), [("l-b", "PrefixShared")]);
    assert!(p.blocked.is_empty(), "{:?}", p.blocked);
}

#[test]
fn a_subnet_without_an_ipv6_range_blocks_ipv6_only() {
    let m = members(&[
        chain("a", format!("{{{DUAL}}}")),
        chain("b", format!("{{{DUAL}, provisionPublicIps: false}}")),
    ]);
    assert!(wanted(&m));
    let v4s = [v4("a")];
    let v4s: Vec<(&str, Option<PublicIpPrefix>)> =
        v4s.iter().map(|(k, p)| (k.as_str(), p.clone())).collect();
    let mut o = observed(m, &v4s, &[("l-a", None)], 2);
    o.subnet_without_ipv6 = Some("/subnets/v4-only".into());
    let p = pass::plan(&settings(), &o).unwrap();
    assert_eq!(
        reasons(&p.ipv6),
        [("l-a", "SubnetNotDualStack"), ("l-b", "SubnetNotDualStack")]
    );
    assert!(p.ipv6.egress.is_empty() && p.blocked.is_empty());
    assert!(p.ip_configs.iter().all(|c| c.family == Family::V4));
    let plain = members(&[chain("c", "{gatewayNodepoolName: gwpool}")]);
    assert!(!wanted(&plain));
}

#[test]
fn a_removed_vm_pool_gateway_has_its_byo_ipv6_prefix_searched_for_leftovers() {
    use crate::pool::plan::fixtures::vm_pool;
    let spec = format!(
        "{{gatewayNodepoolName: vmpool, ipFamilies: [IPv4, IPv6], publicIpv6PrefixId: {}}}",
        id("byo6")
    );
    let mut gone = chain("a", spec);
    gone.vm_extra = DELETING;
    let mut o = observed(members(&[gone]), &[], &[], 1);
    o.pool = vm_pool("30");
    let p = pass::plan(&settings(), &o).unwrap();
    let ids: Vec<String> = p
        .removed_byo_prefixes
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ids, [id("byo6")]);
    assert_eq!(
        p.remove_ip_configs,
        ["egressgateway-v-a", "egressgateway-v-a-ipv6"]
    );
}
