//! Specs the original's CRD accepts but the operator cannot (fully) satisfy are reported as a
//! condition with the reason, never as "waiting": the issue's private-mode manifest with
//! `publicIpPrefixSize: 0` is provisioned, a pool with more instances than its prefix holds
//! names the numbers, a changed pool keeps the gateway where it was provisioned, invalid
//! `excludeCidrs` are reported while the gateway is still provisioned. Also the PodEndpoint
//! status the operator sums up from the gateway nodes' GatewayStatuses.

use egress_api::{GatewayStatus, PodEndpoint};
use egress_azure_emulator::Seed;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::*;

async fn condition_is(h: &Harness, name: &str, type_: &str, status: &str, reason: &str) -> String {
    h.until(&format!("{name} {type_}={status}/{reason}"), || async {
        let (s, r, m) = h.condition(name, type_).await?;
        (s == status && r == reason).then_some(m)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issues_private_manifest_with_prefix_size_0_is_provisioned() {
    let h = Harness::start().await;
    let op = h.operator().await;
    h.create_sgc(
        "private",
        "gatewayVmssProfile: {vmssResourceGroup: rg-egress, vmssName: gw-vmss, publicIpPrefixSize: 0}, provisionPublicIps: false",
    )
    .await;
    let sgc = h.ready("private").await;
    let prefix = sgc.status.unwrap().egress_ip_prefix.unwrap();
    assert_eq!(
        prefix.split(',').count(),
        2,
        "the two instances' private IPs: {prefix}"
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_more_instances_than_the_prefix_holds_names_the_numbers() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testing/egress-azure-emulator/seeds/default.yaml"
    ))
    .unwrap()
    .replace("instances: 2", "instances: 3");
    let seed: Seed = serde_saphyr::from_str(&text).unwrap();
    let h = Harness::with_seed(seed).await;
    let op = h.operator().await;
    h.create_sgc("big", PROFILE).await;
    let msg = condition_is(&h, "big", "Ready", "False", "PrefixTooSmall").await;
    assert!(
        msg.contains("(/31) holds 2 addresses, but scale set gw-vmss has 3 instances: each needs one; use a prefix of /30 or shorter, or scale the pool to 2"),
        "{msg}"
    );
    let configs = h.instance_ipconfigs().await;
    assert!(
        configs
            .iter()
            .flatten()
            .all(|c| !c.starts_with("egressgateway-")),
        "nothing half-provisioned: {configs:?}"
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_pool_keeps_the_gateway_and_bad_exclude_cidrs_are_reported() {
    let h = Harness::start().await;
    let op = h.operator().await;
    h.create_sgc("gw", PROFILE).await;
    let before = h.ready("gw").await.status.unwrap();
    h.patch_spec(
        "gw",
        json!({"gatewayVmssProfile": {"vmssName": "other-vmss"}, "gatewayNodepoolName": null}),
    )
    .await;
    let msg = condition_is(&h, "gw", "Ready", "False", "ImmutableFieldChanged").await;
    assert!(
        msg.starts_with("spec.gatewayVmssProfile.vmssName changed from \"gw-vmss\" to \"other-vmss\" after the gateway was provisioned"),
        "{msg}"
    );
    // The gateway keeps working where it was: same endpoint and prefix, nothing moved.
    let after = h.sgcs().get("gw").await.unwrap().status.unwrap();
    assert_eq!(after.egress_ip_prefix, before.egress_ip_prefix);
    assert_eq!(after.gateway_server_profile, before.gateway_server_profile);
    let lb = h.lbs().get("gw").await.unwrap();
    assert_eq!(
        lb.spec.target.vmss_profile().unwrap().vmss_name.as_deref(),
        Some("gw-vmss")
    );
    // Reverting satisfies the spec again; a bad excludeCidrs entry is then the reason.
    h.patch_spec("gw", json!({"gatewayVmssProfile": {"vmssName": "gw-vmss"}, "excludeCidrs": ["10.0.0.0/8", "bogus"]}))
        .await;
    let msg = condition_is(&h, "gw", "Ready", "False", "InvalidExcludeCidrs").await;
    assert!(
        msg.contains("\"bogus\" is not an IPv4 or IPv6 CIDR"),
        "{msg}"
    );
    let still = h.sgcs().get("gw").await.unwrap().status.unwrap();
    assert!(
        still.is_provisioned(),
        "the gateway stays provisioned: {still:?}"
    );
    h.patch_spec("gw", json!({"excludeCidrs": ["10.0.0.0/8"]}))
        .await;
    h.ready("gw").await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_endpoint_status_sums_up_the_gateway_nodes() {
    let h = Harness::start().await;
    let op = h.operator().await;
    h.create_sgc("gw", PROFILE).await;
    h.ready("gw").await;
    let profiles = h
        .vms()
        .get("gw")
        .await
        .unwrap()
        .status
        .unwrap()
        .gateway_vm_profiles
        .unwrap();
    let key = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcdE=";
    let pes: Api<PodEndpoint> = Api::namespaced(h.client.clone(), NS);
    let pe: PodEndpoint = serde_json::from_value(json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1", "kind": "PodEndpoint",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"staticGatewayConfiguration": "gw", "podIpAddress": "10.244.1.5/32", "podPublicKey": key}}))
    .unwrap();
    pes.create(&PostParams::default(), &pe).await.unwrap();
    let statuses: Api<GatewayStatus> = Api::namespaced(h.client.clone(), SECRET_NS);
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    // One node programmed the peer, the other refused it.
    for (i, p) in profiles.iter().enumerate() {
        let node = p.node_name.clone().unwrap();
        let (peers, refused) = if i == 0 {
            (json!([{"name": "web", "key": &key[..8]}]), json!([]))
        } else {
            (
                json!([]),
                json!([{"podEndpoint": "default/web", "reason": "ip_taken", "message": "held by another"}]),
            )
        };
        let body = json!({"apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1", "kind": "GatewayStatus",
            "metadata": {"name": node, "namespace": SECRET_NS},
            "spec": {"heartbeatTime": now, "heartbeatSeconds": 60,
                "readyGatewayConfigurations": [{"staticGatewayConfiguration": "default/gw", "interfaceName": "wg-6000"}],
                "gateways": [{"staticGatewayConfiguration": "default/gw", "interfaceName": "wg-6000", "peersTotal": peers.as_array().unwrap().len(), "peers": peers}],
                "refused": refused}});
        statuses
            .patch(
                &node,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap();
    }
    let st = h
        .until("the PodEndpoint status", || async {
            let st = pes.get("web").await.ok()?.status?;
            (st.phase.as_deref() == Some("Refused")).then_some(st)
        })
        .await;
    assert_eq!(st.programmed.as_deref(), Some("1/2"));
    assert_eq!(st.reason.as_deref(), Some("ip_taken"));
    assert_eq!(st.message.as_deref(), Some("held by another"));
    h.until("the gateway health gauge", || async {
        let text = op.metrics.encode().ok()?;
        text.contains("egress_operator_gateway_healthy_nodes{gateway=\"default/gw\"} 2")
            .then_some(())
    })
    .await;
    op.stop().await;
}
