//! Create / update / delete of SGCs in each mode, and what ends up in Kubernetes and Azure.

use base64::Engine;
use egress_api::constants::{OWNING_SGC_NAME_LABEL, key_secret_name};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vmss_profile_gateway_is_provisioned_switched_to_private_and_removed_without_leftovers() {
    let h = Harness::start().await;
    let before = h.resource_ids();
    let op = h.operator().await;
    let created = h.create_sgc("gw", PROFILE).await;
    let uid = created.metadata.uid.clone().unwrap();
    let sgc = h.ready("gw").await;
    let st = sgc.status.clone().unwrap();
    let prefix = st.egress_ip_prefix.clone().unwrap();
    assert!(
        prefix.starts_with("203.0.113.") && prefix.ends_with("/31"),
        "{prefix}"
    );
    let profile = st.gateway_server_profile.clone().unwrap();
    assert_eq!(profile.port, Some(6000));
    assert!(profile.ip.as_deref().unwrap().starts_with("10.0.0."));
    let secret_ref = profile.private_key_secret_ref.clone().unwrap();
    assert_eq!(
        secret_ref.name.as_deref(),
        Some(key_secret_name(&uid).as_str())
    );
    assert_eq!(secret_ref.namespace.as_deref(), Some(SECRET_NS));
    for t in [
        "KeyReady",
        "LoadBalancerReady",
        "PrefixReady",
        "GatewayVMsReady",
    ] {
        assert_eq!(h.condition("gw", t).await.unwrap().0, "True", "{t}");
    }

    // The key lives only in the Secret, and the published public key matches it.
    let secret = Api::<Secret>::namespaced(h.client.clone(), SECRET_NS)
        .get(&key_secret_name(&uid))
        .await
        .unwrap();
    let data = secret.data.clone().unwrap();
    assert_eq!(
        String::from_utf8(data["PublicKey"].0.clone()).unwrap(),
        profile.public_key.clone().unwrap()
    );
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&data["PrivateKey"].0)
            .unwrap()
            .len(),
        32
    );
    assert_eq!(secret.metadata.labels.unwrap()[OWNING_SGC_NAME_LABEL], "gw");

    // Internal objects carry the original's status and chain.
    let lbc = h.lbs().get("gw").await.unwrap();
    let lb_uid = lbc.metadata.uid.clone().unwrap();
    assert_eq!(lbc.status.clone().unwrap().server_port, Some(6000));
    let vmc = h.vms().get("gw").await.unwrap();
    let vm_uid = vmc.metadata.uid.clone().unwrap();
    let profiles = vmc.status.clone().unwrap().gateway_vm_profiles.unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0].node_name.as_deref(), Some("gw-vmss000000"));

    // Azure: one rule + probe named by the LB config, ipConfigs on model and instances.
    let lb = h.load_balancer().await.unwrap();
    let rule = lb.rule(&lb_uid).unwrap();
    assert_eq!(rule.properties.frontend_port, Some(6000));
    assert_eq!(rule.properties.enable_floating_ip, Some(true));
    let probe = &lb.properties.probes[0];
    assert_eq!(
        probe.properties.request_path.as_deref(),
        Some(format!("/gw/{uid}").as_str())
    );
    let ipc = format!("egressgateway-{vm_uid}");
    assert!(h.model_ipconfigs().await.contains(&ipc));
    for names in h.instance_ipconfigs().await {
        assert!(names.contains(&ipc), "{names:?}");
    }
    assert!(
        h.resource(&format!("publicIPPrefixes/egressgateway-{vm_uid}"))
            .is_some()
    );

    // Switch to private mode: egress from the secondary IPs, managed prefix deleted, port kept.
    h.patch_spec(
        "gw",
        json!({"provisionPublicIps": false, "gatewayVmssProfile": {"publicIpPrefixSize": 31}}),
    )
    .await;
    let sgc = h
        .until("private-mode status", || async {
            let s = h.ready("gw").await;
            let p = s.status.clone()?.egress_ip_prefix?;
            (!p.contains('/')).then_some(s)
        })
        .await;
    let st = sgc.status.unwrap();
    let ips: Vec<&str> = st.egress_ip_prefix.as_deref().unwrap().split(',').collect();
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with("10.0.0.")));
    assert_eq!(st.gateway_server_profile.unwrap().port, Some(6000));
    h.until("the managed prefix to be deleted", || async {
        h.resource(&format!("publicIPPrefixes/egressgateway-{vm_uid}"))
            .is_none()
            .then_some(())
    })
    .await;

    // Delete: everything it created is gone, nothing else.
    h.delete_sgc("gw").await;
    h.gone("gw").await;
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    assert!(
        Api::<Secret>::namespaced(h.client.clone(), SECRET_NS)
            .get_opt(&key_secret_name(&uid))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.model_ipconfigs()
            .await
            .iter()
            .all(|n| !n.starts_with("egressgateway-"))
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodepool_gateway_takes_the_prefix_size_from_the_pool_tag() {
    let h = Harness::start().await;
    let op = h.operator().await;
    h.create_sgc("pool", NODEPOOL).await;
    let sgc = h.ready("pool").await;
    assert!(
        sgc.status
            .unwrap()
            .egress_ip_prefix
            .unwrap()
            .ends_with("/31")
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byo_prefix_is_used_and_survives_deletion() {
    let h = Harness::start().await;
    let before = h.resource_ids();
    let op = h.operator().await;
    let id = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-egress/providers/Microsoft.Network/publicIPPrefixes/byo-prefix"
    );
    h.create_sgc("byo", &format!("{PROFILE}, publicIpPrefixId: {id}"))
        .await;
    let sgc = h.ready("byo").await;
    assert_eq!(
        sgc.status.unwrap().egress_ip_prefix.as_deref(),
        Some("192.0.2.0/31")
    );
    let prefix = h.resource("publicIPPrefixes/byo-prefix").unwrap();
    assert_eq!(
        prefix["properties"]["publicIPAddresses"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    h.delete_sgc("byo").await;
    h.gone("byo").await;
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    assert!(h.resource("publicIPPrefixes/byo-prefix").is_some());
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_gateway_egresses_from_secondary_ips() {
    let h = Harness::start().await;
    let op = h.operator().await;
    h.create_sgc("priv", &format!("{NODEPOOL}, provisionPublicIps: false"))
        .await;
    let sgc = h.ready("priv").await;
    let prefix = sgc.status.unwrap().egress_ip_prefix.unwrap();
    assert_eq!(prefix.split(',').count(), 2, "{prefix}");
    assert!(
        h.emu.inventory()["counts"]
            .get("Microsoft.Network/publicIPPrefixes")
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
            <= 1
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_pool_share_frontend_and_backend_with_distinct_ports() {
    let h = Harness::start().await;
    let op = h.operator().await;
    h.create_sgc("one", PROFILE).await;
    let one = h
        .ready("one")
        .await
        .status
        .unwrap()
        .gateway_server_profile
        .unwrap();
    // The second names the same scale set by node pool: still one pool.
    h.create_sgc("two", NODEPOOL).await;
    let two = h
        .ready("two")
        .await
        .status
        .unwrap()
        .gateway_server_profile
        .unwrap();
    assert_eq!(one.ip, two.ip);
    assert_eq!((one.port, two.port), (Some(6000), Some(6001)));
    let lb = h.load_balancer().await.unwrap();
    assert_eq!(lb.properties.frontend_ip_configurations.len(), 1);
    assert_eq!(lb.properties.backend_address_pools.len(), 1);
    assert_eq!(lb.properties.load_balancing_rules.len(), 2);

    h.delete_sgc("one").await;
    h.gone("one").await;
    let lb = h.load_balancer().await.unwrap();
    assert_eq!(lb.properties.frontend_ip_configurations.len(), 1);
    assert_eq!(lb.properties.load_balancing_rules.len(), 1);
    assert_eq!(
        lb.properties.load_balancing_rules[0]
            .properties
            .frontend_port,
        Some(6001)
    );
    let two_again = h
        .ready("two")
        .await
        .status
        .unwrap()
        .gateway_server_profile
        .unwrap();
    assert_eq!(two_again.port, Some(6001));
    // A third gateway takes the freed lowest port.
    h.create_sgc("three", PROFILE).await;
    let three = h
        .ready("three")
        .await
        .status
        .unwrap()
        .gateway_server_profile
        .unwrap();
    assert_eq!(three.port, Some(6000));
    op.stop().await;
}
