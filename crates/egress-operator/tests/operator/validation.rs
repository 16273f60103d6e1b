//! Gateways that cannot be provisioned get a clear `False` condition and a Warning Event,
//! block nothing else, and are not retried in a loop.

use std::time::Duration;

use egress_azure::models::LoadBalancer;
use egress_azure::{LoadBalancers, ResourceGroupId, ScaleSets};
use serde_json::json;

use crate::common::*;

/// Condition `type_` once it is `False` with `reason`.
async fn failed(h: &Harness, name: &str, type_: &str, reason: &str) -> String {
    h.until(&format!("{name} {type_}=False/{reason}"), || async {
        let (s, r, m) = h.condition(name, type_).await?;
        (s == "False" && r == reason).then_some(m)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byo_prefix_of_the_wrong_length_is_reported_and_not_retried_in_a_loop() {
    let h = Harness::start().await;
    let op = h.operator().await;
    let id = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-egress/providers/Microsoft.Network/publicIPPrefixes/byo-prefix"
    );
    let spec = format!(
        "gatewayVmssProfile: {{vmssResourceGroup: rg-egress, vmssName: gw-vmss, publicIpPrefixSize: 30}}, publicIpPrefixId: {id}"
    );
    h.create_sgc("short", &spec).await;
    // A healthy gateway on the same pool is not held back.
    h.create_sgc("fine", PROFILE).await;
    let msg = failed(&h, "short", "PrefixReady", "PrefixLengthMismatch").await;
    assert!(
        msg.contains("has length /31, the gateway pool needs /30"),
        "{msg}"
    );
    failed(&h, "short", "Ready", "PrefixLengthMismatch").await;
    h.ready("fine").await;
    h.until("a Warning event", || async {
        h.events("short")
            .await
            .into_iter()
            .any(|(t, r)| t == "Warning" && r == "PrefixLengthMismatch")
            .then_some(())
    })
    .await;
    // Nothing of "short" reached Azure.
    let lb = h.load_balancer().await.unwrap();
    assert_eq!(lb.properties.load_balancing_rules.len(), 1);
    // No hot loop: without changes, the prefix is not read again and again.
    let reads = h.emu.request_log().count("PublicIPPrefixes.Get");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(h.emu.request_log().count("PublicIPPrefixes.Get") <= reads + 2);
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_exhaustion_is_a_clear_condition() {
    let h = Harness::start().await;
    // Fill 6000-6999 on the pool's frontend with someone else's rules.
    let vmss = h
        .arm
        .get_scale_set(&ResourceGroupId::new(SUB, "rg-egress").scale_set("gw-vmss"))
        .await
        .unwrap();
    let pool = vmss.properties.unique_id.unwrap();
    let lb_id = settings().load_balancer_id;
    let fe = format!("{lb_id}/frontendIPConfigurations/{pool}");
    let rules: Vec<_> = (6000..7000)
        .map(|p| {
            json!({"name": format!("other-{p}"), "properties": {"protocol": "Udp",
            "frontendPort": p, "backendPort": p, "enableFloatingIP": true,
            "frontendIPConfiguration": {"id": fe}}})
        })
        .collect();
    let lb: LoadBalancer = serde_json::from_value(json!({"location": "eastus",
        "sku": {"name": "Standard"}, "properties": {
        "frontendIPConfigurations": [{"name": pool, "properties": {
            "privateIPAllocationMethod": "Dynamic",
            "subnet": {"id": settings().subnet_id.to_string()}}}],
        "loadBalancingRules": rules}}))
    .unwrap();
    h.arm
        .create_or_update_load_balancer(&lb_id, &lb, None)
        .await
        .unwrap();

    let op = h.operator().await;
    h.create_sgc("full", PROFILE).await;
    let msg = failed(&h, "full", "LoadBalancerReady", "PortsExhausted").await;
    assert!(msg.contains("6000-6999"), "{msg}");
    failed(&h, "full", "Ready", "PortsExhausted").await;
    // No ipConfig for a gateway without a port.
    assert!(
        h.model_ipconfigs()
            .await
            .iter()
            .all(|n| !n.starts_with("egressgateway-"))
    );
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_scale_set_waits_for_a_change() {
    let h = Harness::start().await;
    let op = h.operator().await;
    h.create_sgc("nowhere", "gatewayVmssProfile: {vmssResourceGroup: rg-egress, vmssName: no-such-vmss, publicIpPrefixSize: 31}").await;
    let msg = failed(&h, "nowhere", "LoadBalancerReady", "GatewayPoolNotFound").await;
    assert!(msg.contains("no-such-vmss"), "{msg}");
    failed(&h, "nowhere", "Ready", "GatewayPoolNotFound").await;
    h.until("a Warning event", || async {
        h.events("nowhere")
            .await
            .into_iter()
            .any(|(t, r)| t == "Warning" && r == "GatewayPoolNotFound")
            .then_some(())
    })
    .await;
    let gets = h.emu.request_log().count("VirtualMachineScaleSets.Get");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        h.emu.request_log().count("VirtualMachineScaleSets.Get"),
        gets,
        "retried without a change"
    );
    // Deleting it needs no Azure resource.
    h.delete_sgc("nowhere").await;
    h.gone("nowhere").await;
    op.stop().await;
}
