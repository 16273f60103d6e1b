//! Dual-stack gateways (`ipFamilies: [IPv4, IPv6]`) on a dual-stack subnet: the managed IPv6
//! prefix, IPv6 ipConfigs and status; IPv6 removed again; a BYO IPv6 prefix kept on delete; a
//! bad one blocking IPv6 only; and an SGC without `ipFamilies` costing no IPv6 request.

use egress_azure_emulator::Seed;
use serde_json::json;

use crate::common::*;

/// `seed` with its subnet dual-stack (fd00:10::/64).
fn with_ipv6_subnet(mut seed: Seed) -> Seed {
    let vnet = &mut seed.virtual_networks[0];
    vnet.address_space.push("fd00:10::/48".parse().unwrap());
    vnet.subnets[0].ipv6_address_prefix = Some("fd00:10::/64".parse().unwrap());
    seed
}

/// The default inventory with a dual-stack subnet and a BYO IPv6 prefix `byo6`
/// (2001:db8:ffe0::/126).
fn dual_stack_seed() -> Seed {
    let mut seed = with_ipv6_subnet(Seed::default());
    let mut byo6 = seed.public_ip_prefixes[0].clone();
    byo6.name = "byo6".into();
    byo6.ip_prefix = "2001:db8:ffe0::/126".parse().unwrap();
    seed.public_ip_prefixes.push(byo6);
    seed
}

const DUAL: &str = "ipFamilies: [IPv4, IPv6]";

fn byo_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-egress/providers/Microsoft.Network/publicIPPrefixes/{name}"
    )
}

/// Whether the IPv6 `addr` is inside `cidr`.
fn in_prefix(addr: &str, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap();
    let shift = 128 - len.parse::<u32>().unwrap();
    let bits = |a: &str| u128::from(a.parse::<std::net::Ipv6Addr>().unwrap()) >> shift;
    bits(addr) == bits(net)
}

/// Waits for `name` to be Ready with an `IPv6Ready` condition and returns it.
async fn ipv6_ready(h: &Harness, name: &str) -> (String, String, String) {
    h.until(&format!("IPv6Ready on {name}"), || async {
        h.ready(name).await;
        h.condition(name, "IPv6Ready").await
    })
    .await
}

/// Deletes the SGCs `names` and waits until Azure has exactly the resources `before`.
async fn delete_all(h: &Harness, names: &[&str], before: &[String]) {
    for name in names {
        h.delete_sgc(name).await;
        h.gone(name).await;
    }
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
}

/// The IPv6 private → public pairs Azure maps (the simulator's IPv6 SNAT table).
fn ipv6_pairs(h: &Harness) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = h
        .emu
        .ip_map()
        .into_iter()
        .filter(|m| m.private_ip.contains(':'))
        .map(|m| (m.private_ip, m.public_ip))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_gateway_gets_an_ipv6_prefix_and_ipconfigs_and_loses_them_with_ipv6() {
    let h = Harness::with_seed(dual_stack_seed()).await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc("gw", &format!("{PROFILE}, {DUAL}")).await;
    let sgc = h
        .until("IPv6 egress", || async {
            let s = h.ready("gw").await;
            s.status.as_ref()?.egress_ipv6_prefix.as_ref()?;
            Some(s)
        })
        .await;
    let st = sgc.status.unwrap();
    let v6 = st.egress_ipv6_prefix.clone().unwrap();
    assert!(
        v6.starts_with("2001:db8:fffe:") && v6.ends_with("/127"),
        "{v6}"
    );
    assert!(st.egress_ip_prefix.unwrap().ends_with("/31"));
    let (status, reason, message) = h.condition("gw", "IPv6Ready").await.unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "IPv6Provisioned")
    );
    assert!(
        message.contains(&v6) && message.contains("2 of 2 instances"),
        "{message}"
    );

    let vmc = h.vms().get("gw").await.unwrap();
    let vm_uid = vmc.metadata.uid.clone().unwrap();
    let vst = vmc.status.unwrap();
    assert_eq!(vst.egress_ipv6_prefix.as_deref(), Some(v6.as_str()));
    let secondary6: Vec<String> = vst
        .gateway_vm_profiles
        .unwrap()
        .into_iter()
        .map(|p| p.secondary_ipv6.unwrap())
        .collect();
    assert_eq!(secondary6.len(), 2);
    assert!(
        secondary6.iter().all(|a| a.starts_with("fd00:10::")),
        "{secondary6:?}"
    );

    // Azure: the managed IPv6 prefix of the matching length, an IPv6 ipConfig beside the IPv4
    // one on the model and every instance, each private IPv6 mapped to a public one.
    let prefix6 = h
        .resource(&format!("publicIPPrefixes/egressgateway-{vm_uid}-ipv6"))
        .unwrap();
    assert_eq!(prefix6["properties"]["prefixLength"], 127);
    assert_eq!(prefix6["properties"]["publicIPAddressVersion"], "IPv6");
    let (v4name, v6name) = (
        format!("egressgateway-{vm_uid}"),
        format!("egressgateway-{vm_uid}-ipv6"),
    );
    assert!(h.model_ipconfigs().await.contains(&v6name));
    for names in h.instance_ipconfigs().await {
        assert!(
            names.contains(&v4name) && names.contains(&v6name),
            "{names:?}"
        );
    }
    let pairs = ipv6_pairs(&h);
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    let mut want: Vec<String> = secondary6.clone();
    want.sort();
    assert_eq!(pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), want);
    assert!(
        pairs.iter().all(|(_, public)| in_prefix(public, &v6)),
        "{pairs:?} {v6}"
    );

    // IPv6 removed: its ipConfigs, prefix, status and condition go; IPv4 stays.
    h.patch_spec("gw", json!({"ipFamilies": ["IPv4"]})).await;
    h.until("the IPv6 egress to be removed", || async {
        let s = h.sgcs().get("gw").await.ok()?;
        let st = s.status?;
        let cleaned = st.egress_ipv6_prefix.is_none()
            && !st.conditions.iter().any(|c| c.type_ == "IPv6Ready")
            && h.resource(&format!("publicIPPrefixes/egressgateway-{vm_uid}-ipv6"))
                .is_none();
        cleaned.then_some(())
    })
    .await;
    for names in h.instance_ipconfigs().await {
        assert!(
            names.contains(&v4name) && !names.contains(&v6name),
            "{names:?}"
        );
    }
    assert!(!h.model_ipconfigs().await.contains(&v6name));
    assert!(ipv6_pairs(&h).is_empty());
    let vst = h.vms().get("gw").await.unwrap().status.unwrap();
    assert!(vst.egress_ipv6_prefix.is_none());
    assert!(
        vst.gateway_vm_profiles
            .unwrap()
            .iter()
            .all(|p| p.secondary_ipv6.is_none())
    );
    h.ready("gw").await;

    // Back to dual-stack, then delete: nothing of either family is left.
    h.patch_spec("gw", json!({"ipFamilies": ["IPv4", "IPv6"]}))
        .await;
    h.until("IPv6 egress again", || async {
        h.resource(&format!("publicIPPrefixes/egressgateway-{vm_uid}-ipv6"))
            .map(|_| ())
    })
    .await;
    delete_all(&h, &["gw"], &before).await;
    assert!(h.emu.ip_map().is_empty());
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byo_ipv6_prefix_is_used_and_kept_and_a_bad_one_blocks_only_ipv6() {
    let h = Harness::with_seed(dual_stack_seed()).await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc(
        "byo",
        &format!("{PROFILE}, {DUAL}, publicIpv6PrefixId: {}", byo_id("byo6")),
    )
    .await;
    // The IPv4 BYO prefix named as the IPv6 one: IPv4 is provisioned, IPv6 is not.
    h.create_sgc(
        "wrong",
        &format!(
            "{PROFILE}, {DUAL}, publicIpv6PrefixId: {}",
            byo_id("byo-prefix")
        ),
    )
    .await;
    let sgc = h
        .until("BYO IPv6 egress", || async {
            let s = h.ready("byo").await;
            s.status.as_ref()?.egress_ipv6_prefix.as_ref()?;
            Some(s)
        })
        .await;
    assert_eq!(
        sgc.status.unwrap().egress_ipv6_prefix.as_deref(),
        Some("2001:db8:ffe0::/126")
    );
    let pairs = ipv6_pairs(&h);
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    assert!(
        pairs.iter().all(|(_, p)| p.starts_with("2001:db8:ffe0::")),
        "{pairs:?}"
    );
    let wrong = ipv6_ready(&h, "wrong").await;
    assert_eq!(
        (wrong.0.as_str(), wrong.1.as_str()),
        ("False", "InvalidPrefixId")
    );
    assert!(wrong.2.contains("is an IPv4 prefix"), "{}", wrong.2);
    let wrong_vm = h.vms().get("wrong").await.unwrap().metadata.uid.unwrap();
    assert!(
        h.resource(&format!("publicIPPrefixes/egressgateway-{wrong_vm}-ipv6"))
            .is_none()
    );

    // The BYO prefixes stay (they are part of the seed); everything the operator made is gone.
    delete_all(&h, &["byo", "wrong"], &before).await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sgc_without_ip_families_makes_no_ipv6_request() {
    let h = Harness::with_seed(dual_stack_seed()).await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc("v4", PROFILE).await;
    let sgc = h.ready("v4").await;
    assert!(sgc.status.as_ref().unwrap().egress_ipv6_prefix.is_none());
    assert!(h.condition("v4", "IPv6Ready").await.is_none());
    h.patch_spec(
        "v4",
        json!({"provisionPublicIps": false, "gatewayVmssProfile": {"publicIpPrefixSize": 31}}),
    )
    .await;
    h.until("private mode", || async {
        let p = h.ready("v4").await.status?.egress_ip_prefix?;
        (!p.contains('/')).then_some(())
    })
    .await;
    delete_all(&h, &["v4"], &before).await;
    op.stop().await;
    // Every IPv6 resource of the operator is named `...-ipv6`: none was read or written, and
    // no ipConfig of either family ever got an IPv6 address.
    let log = h.emu.request_log();
    let ipv6: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.path.to_ascii_lowercase().contains("ipv6"))
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert!(ipv6.is_empty(), "{ipv6:?}");
    assert!(ipv6_pairs(&h).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_vm_pool_gives_each_nic_an_ipv6_public_ip_and_removes_it() {
    use egress_azure::{NetworkInterfaces, ResourceGroupId};
    let h = Harness::with_seed(with_ipv6_subnet(crate::vm_pool::vmpool_seed())).await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc("vm6", &format!("gatewayNodepoolName: vmpool, {DUAL}"))
        .await;
    let v6 = h
        .until("IPv6 egress", || async {
            h.ready("vm6").await.status?.egress_ipv6_prefix
        })
        .await;
    // The pool's /30 gives a /126: four addresses for three NICs.
    assert!(v6.ends_with("/126"), "{v6}");
    let vm_uid = h.vms().get("vm6").await.unwrap().metadata.uid.unwrap();
    let v6name = format!("egressgateway-{vm_uid}-ipv6");
    for nic in crate::vm_pool::NICS {
        let id = ResourceGroupId::new(SUB, "rg-egress").network_interface(nic);
        let n = h.arm.get_network_interface(&id).await.unwrap();
        let c = n.ip_configuration(&v6name).unwrap();
        assert_eq!(
            c.properties.private_ip_address_version.as_deref(),
            Some("IPv6")
        );
        let pip = c.properties.public_ip_address.as_ref().unwrap().id.clone();
        let name = pip.rsplit('/').next().unwrap().to_string();
        let res = h.resource(&format!("publicIPAddresses/{name}")).unwrap();
        assert_eq!(res["properties"]["publicIPAddressVersion"], "IPv6");
        let addr = res["properties"]["ipAddress"].as_str().unwrap();
        assert!(in_prefix(addr, &v6), "{addr} {v6}");
    }
    assert_eq!(ipv6_pairs(&h).len(), 3);

    delete_all(&h, &["vm6"], &before).await;
    assert!(ipv6_pairs(&h).is_empty());
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_on_an_ipv4_only_subnet_is_refused_without_harming_ipv4() {
    let h = Harness::start().await;
    let before = h.resource_ids();
    let op = h.operator().await;
    h.create_sgc("dual", &format!("{PROFILE}, {DUAL}")).await;
    h.create_sgc("plain", NODEPOOL).await;
    let c = ipv6_ready(&h, "dual").await;
    assert_eq!(
        (c.0.as_str(), c.1.as_str()),
        ("False", "SubnetNotDualStack")
    );
    assert!(c.2.contains("aks-subnet"), "{}", c.2);
    h.ready("plain").await;
    assert!(
        h.model_ipconfigs()
            .await
            .iter()
            .all(|n| !n.ends_with("-ipv6"))
    );
    delete_all(&h, &["dual", "plain"], &before).await;
    op.stop().await;
}
