//! Unit tests of the pass plan, from inline YAML chains and ARM JSON prefixes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use egress_azure::ResourceGroupId;

use super::*;
use crate::pool::plan::fixtures::{SUB, chain, members, prefix, scale_set_pool, settings, vm_pool};

const DELETING: &str = "deletionTimestamp: '2024-01-01T00:00:00Z', finalizers: [x],";

fn byo(name: &str) -> String {
    ResourceGroupId::new(SUB, "rg")
        .public_ip_prefix(name)
        .to_string()
}

fn observed(
    pool: GatewayPool,
    members: Vec<Member>,
    found: &[(&str, Option<PublicIpPrefix>)],
) -> Observed {
    Observed {
        pool,
        members,
        prefixes: found
            .iter()
            .map(|(uid, p)| (uid.to_string(), p.clone()))
            .collect(),
        prefixes6: BTreeMap::new(),
        node_count: None,
        subnet_without_ipv6: None,
    }
}

fn rule(name: &str) -> RuleWant {
    RuleWant {
        lb_uid: format!("l-{name}"),
        sgc_uid: format!("s-{name}"),
    }
}

fn ip_config(name: &str) -> IpConfigStep {
    IpConfigStep {
        lb_uid: format!("l-{name}"),
        name: format!("egressgateway-v-{name}"),
        family: Family::V4,
    }
}

/// Gateways of the scale set `gwpool` (prefix size tag /31): managed, BYO, private, a BYO
/// prefix that does not exist, one of the wrong length, an invalid spec.
fn six_gateways() -> Vec<Member> {
    members(&[
        chain("a-managed", "{gatewayNodepoolName: gwpool}"),
        chain(
            "b-byo",
            format!(
                "{{gatewayNodepoolName: gwpool, publicIpPrefixId: {}}}",
                byo("byo")
            ),
        ),
        chain(
            "c-private",
            "{gatewayNodepoolName: gwpool, provisionPublicIps: false}",
        ),
        chain(
            "d-missing",
            format!(
                "{{gatewayNodepoolName: gwpool, publicIpPrefixId: {}}}",
                byo("gone")
            ),
        ),
        chain(
            "e-short",
            format!(
                "{{gatewayNodepoolName: gwpool, publicIpPrefixId: {}}}",
                byo("short")
            ),
        ),
        chain(
            "f-invalid",
            "{gatewayNodepoolName: gwpool, provisionPublicIps: false, publicIpPrefixId: /x}",
        ),
    ])
}

#[test]
fn the_pass_reads_the_prefix_of_each_public_gateway() {
    let to_read: Vec<String> =
        prefixes_to_read(&settings(), &scale_set_pool(Some("31")), &six_gateways())
            .into_iter()
            .map(|(uid, id)| format!("{uid} {}", id.name()))
            .collect();
    assert_eq!(
        to_read,
        [
            "l-a-managed egressgateway-v-a-managed",
            "l-b-byo byo",
            "l-d-missing gone",
            "l-e-short short"
        ]
    );
}

#[test]
fn each_gateway_gets_its_egress_or_is_blocked_on_its_own() {
    let (s, pool, m) = (settings(), scale_set_pool(Some("31")), six_gateways());
    let o = observed(
        pool,
        m,
        &[
            ("l-a-managed", None),
            ("l-b-byo", Some(prefix("byo", 31, "203.0.113.0/31"))),
            ("l-d-missing", None),
            ("l-e-short", Some(prefix("short", 30, "203.0.113.4/30"))),
        ],
    );
    let p = plan(&s, &o).unwrap();

    let managed = managed_prefix_target("v-a-managed", 31);
    assert_eq!(p.egress["l-a-managed"], EgressStep::Create(managed));
    let EgressStep::Ready(info) = &p.egress["l-b-byo"] else {
        panic!("{:?}", p.egress);
    };
    assert_eq!(
        (info.id.as_str(), info.cidr.as_str()),
        (byo("byo").as_str(), "203.0.113.0/31")
    );
    assert_eq!(p.egress["l-c-private"], EgressStep::Private);
    assert_eq!(p.egress.len(), 3);
    let reasons: Vec<(&str, &str)> = p
        .blocked
        .iter()
        .map(|(k, e)| (k.as_str(), e.reason()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("l-d-missing", "PrefixNotFound"),
            ("l-e-short", "PrefixLengthMismatch"),
            ("l-f-invalid", "InvalidPrefixId")
        ]
    );
    assert_eq!(
        p.rules,
        [rule("a-managed"), rule("b-byo"), rule("c-private")]
    );
    assert_eq!(
        p.ip_configs,
        [
            ip_config("a-managed"),
            ip_config("b-byo"),
            ip_config("c-private")
        ]
    );
    assert!(p.remove_rules.is_empty());
    // Only the IPv6 ipConfigs of gateways without IPv6 (absent, so no write follows).
    assert!(
        p.remove_ip_configs.iter().all(|n| n.ends_with("-ipv6")),
        "{:?}",
        p.remove_ip_configs
    );
    // Gateways in BYO or private mode give up the managed prefix they may have had; blocked
    // ones keep it (their new egress is not in place).
    let unused: Vec<(&str, &str, bool)> = p
        .unused_prefixes
        .iter()
        .map(|u| (u.gateway.as_str(), u.vm_uid.as_str(), u.unless_blocked))
        .collect();
    assert_eq!(
        unused,
        [
            ("ns/b-byo", "v-b-byo", true),
            ("ns/c-private", "v-c-private", true)
        ]
    );
}

fn managed_prefix_target(vm_uid: &str, length: u8) -> PrefixTarget {
    PrefixTarget {
        id: ResourceGroupId::new(SUB, "rg").public_ip_prefix(&format!("egressgateway-{vm_uid}")),
        managed: true,
        length: Some(length),
        family: Family::V4,
    }
}

#[test]
fn a_vm_pool_gives_a_byo_prefix_to_its_oldest_gateway_only() {
    let spec = format!(
        "{{gatewayNodepoolName: vmpool, publicIpPrefixId: {}}}",
        byo("byo")
    );
    let m = members(&[chain("a", spec.clone()), chain("b", spec)]);
    let found = Some(prefix("byo", 30, "203.0.113.0/30"));
    let o = observed(vm_pool("30"), m, &[("l-a", found.clone()), ("l-b", found)]);
    let p = plan(&settings(), &o).unwrap();
    assert!(matches!(p.egress["l-a"], EgressStep::Ready(_)));
    assert_eq!(
        p.blocked["l-b"].to_string(),
        format!(
            "public IP prefix {} is already used by gateway ns/a on VM node pool vmpool; each gateway of a VM node pool needs its own prefix",
            byo("byo")
        )
    );
    assert_eq!(p.rules, [rule("a")]);
    // A scale set names its public IPs per instance: sharing is fine there.
    let m = members(&[
        chain(
            "a",
            format!(
                "{{gatewayNodepoolName: gwpool, publicIpPrefixId: {}}}",
                byo("byo")
            ),
        ),
        chain(
            "b",
            format!(
                "{{gatewayNodepoolName: gwpool, publicIpPrefixId: {}}}",
                byo("byo")
            ),
        ),
    ]);
    let found = Some(prefix("byo", 31, "203.0.113.0/31"));
    let o = observed(
        scale_set_pool(Some("31")),
        m,
        &[("l-a", found.clone()), ("l-b", found)],
    );
    assert!(plan(&settings(), &o).unwrap().blocked.is_empty());
}

#[test]
fn a_pool_without_a_size_tag_blocks_public_gateways_but_not_private_ones() {
    let m = members(&[
        chain("a", "{gatewayNodepoolName: gwpool}"),
        chain(
            "b",
            "{gatewayNodepoolName: gwpool, provisionPublicIps: false}",
        ),
    ]);
    let s = settings();
    let pool = scale_set_pool(None);
    assert!(prefixes_to_read(&s, &pool, &m).is_empty());
    let p = plan(&s, &observed(pool, m, &[])).unwrap();
    assert_eq!(p.blocked["l-a"].reason(), "PrefixSizeUnknown");
    assert_eq!(p.egress["l-b"], EgressStep::Private);
    assert_eq!(p.rules, [rule("b")]);
}

#[test]
fn removed_gateways_lose_rules_ipconfigs_and_prefixes() {
    let byo_spec = format!(
        "{{gatewayNodepoolName: vmpool, publicIpPrefixId: {}}}",
        byo("byo")
    );
    let mut gone = chain("a-gone", byo_spec);
    gone.lb_extra = DELETING;
    let mut vm_gone = chain("b-vm-gone", "{gatewayNodepoolName: vmpool}");
    vm_gone.vm_extra = DELETING;
    let m = members(&[
        gone,
        vm_gone,
        chain("c-kept", "{gatewayNodepoolName: vmpool}"),
    ]);
    let s = settings();
    let pool = vm_pool("31");
    assert_eq!(prefixes_to_read(&s, &pool, &m).len(), 1);
    let o = observed(
        pool,
        m,
        &[(
            "l-c-kept",
            Some(prefix("egressgateway-v-c-kept", 31, "203.0.113.0/31")),
        )],
    );
    let p = plan(&s, &o).unwrap();
    assert_eq!(p.remove_rules, ["l-a-gone"]);
    assert_eq!(
        p.remove_ip_configs,
        [
            "egressgateway-v-a-gone",
            "egressgateway-v-b-vm-gone",
            "egressgateway-v-a-gone-ipv6",
            "egressgateway-v-b-vm-gone-ipv6",
            "egressgateway-v-c-kept-ipv6"
        ]
    );
    // The LB configuration still exists while only the VM side goes: its rule stays.
    assert_eq!(p.rules, [rule("b-vm-gone"), rule("c-kept")]);
    assert_eq!(p.ip_configs, [ip_config("c-kept")]);
    assert_eq!(
        p.removed_byo_prefixes,
        [ResourceId::parse(&byo("byo")).unwrap()]
    );
    let unused: Vec<(&str, bool)> = p
        .unused_prefixes
        .iter()
        .map(|u| (u.vm_uid.as_str(), u.unless_blocked))
        .collect();
    assert_eq!(unused, [("v-a-gone", false), ("v-b-vm-gone", false)]);
    assert!(p.blocked.is_empty());
}

#[test]
fn a_prefix_without_its_range_yet_stops_the_pass() {
    let m = members(&[chain("a", "{gatewayNodepoolName: gwpool}")]);
    let o = observed(
        scale_set_pool(Some("31")),
        m,
        &[("l-a", Some(prefix("egressgateway-v-a", 31, "")))],
    );
    let e = plan(&settings(), &o).unwrap_err();
    assert!(matches!(e, PoolError::MissingIp { .. }), "{e}");
}

#[test]
fn what_apply_blocks_is_left_out_of_later_steps() {
    let m = members(&[
        chain("a", "{gatewayNodepoolName: gwpool}"),
        chain(
            "b",
            "{gatewayNodepoolName: gwpool, provisionPublicIps: false}",
        ),
    ]);
    let o = observed(scale_set_pool(Some("31")), m, &[("l-a", None)]);
    let p = plan(&settings(), &o).unwrap();
    let rejected = BTreeMap::from([(
        "l-a".to_string(),
        MemberError::PrefixRejected {
            id: "p".into(),
            message: "quota".into(),
        },
    )]);
    assert_eq!(p.rules_to_have(&rejected), [rule("b")]);
    let egress = BTreeMap::from([("l-b".to_string(), None)]);
    assert_eq!(
        p.ip_configs_to_have(&egress, &BTreeMap::new(), &rejected, &BTreeMap::new()),
        [GatewayIpConfig {
            name: "egressgateway-v-b".into(),
            prefix: None,
            family: Family::V4,
        }]
    );
    assert_eq!(p.rules_to_have(&BTreeMap::new()).len(), 2);
}

#[test]
fn a_pool_larger_than_the_prefix_blocks_its_public_gateways_with_the_numbers() {
    let (s, pool) = (settings(), scale_set_pool(Some("31")));
    let m = members(&[
        chain("a-managed", "{gatewayNodepoolName: gwpool}"),
        chain(
            "c-private",
            "{gatewayNodepoolName: gwpool, provisionPublicIps: false}",
        ),
    ]);
    let mut o = observed(pool, m, &[("l-a-managed", None)]);
    o.node_count = Some(3);
    let p = plan(&s, &o).unwrap();
    let e = &p.blocked["l-a-managed"];
    assert_eq!(e.reason(), "PrefixTooSmall");
    assert!(
        e.to_string()
            .contains("(/31) holds 2 addresses, but scale set gw-vmss has 3 instances: each needs one; use a prefix of /30 or shorter, or scale the pool to 2"),
        "{e}"
    );
    // Private mode needs no prefix address per node.
    assert_eq!(p.egress["l-c-private"], EgressStep::Private);
    o.node_count = Some(2);
    assert!(plan(&s, &o).unwrap().blocked.is_empty());
}
