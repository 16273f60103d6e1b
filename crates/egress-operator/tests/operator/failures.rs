//! Throttling, server errors, an operator killed mid-reconcile, drift and new nodes: the pool
//! converges with no leaked or duplicated Azure resources.

use std::collections::BTreeSet;
use std::time::Duration;

use egress_azure::{LoadBalancers, ResourceGroupId, ScaleSetVms};
use egress_azure_emulator::{FaultKind, FaultRule};
use egress_operator::Category;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::common::*;

/// Exactly `n` gateways' worth of Azure resources, none twice.
async fn assert_exactly(h: &Harness, n: usize) {
    let lb = h.load_balancer().await.unwrap();
    assert_eq!(lb.properties.load_balancing_rules.len(), n);
    assert_eq!(lb.properties.probes.len(), n);
    assert_eq!(lb.properties.frontend_ip_configurations.len(), 1);
    let prefixes = h
        .resource_ids()
        .into_iter()
        .filter(|id| id.contains("/publicipprefixes/egressgateway-"))
        .count();
    assert_eq!(prefixes, n);
    let mut all = vec![h.model_ipconfigs().await];
    all.extend(h.instance_ipconfigs().await);
    for names in all {
        let ours: Vec<_> = names
            .iter()
            .filter(|x| x.starts_with("egressgateway-"))
            .collect();
        let unique: BTreeSet<_> = ours.iter().collect();
        assert_eq!((ours.len(), unique.len()), (n, n), "{names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_converge_without_leaks() {
    let h = Harness::start().await;
    let before = h.resource_ids();
    let faults = h.emu.faults();
    faults
        .add(
            FaultRule::new(FaultKind::Throttle)
                .operation("LoadBalancers.*")
                .count(4)
                .retry_after(0),
        )
        .unwrap();
    faults
        .add(
            FaultRule::new(FaultKind::ServerError)
                .operation("VirtualMachineScaleSets.*")
                .count(4),
        )
        .unwrap();
    faults
        .add(
            FaultRule::new(FaultKind::ServerError)
                .operation("VirtualMachineScaleSetVMs.Update")
                .count(3),
        )
        .unwrap();
    faults
        .add(
            FaultRule::new(FaultKind::Throttle)
                .operation("PublicIPPrefixes.*")
                .probability(0.3)
                .retry_after(0),
        )
        .unwrap();
    let op = h.operator().await;
    for i in 0..3 {
        h.create_sgc(&format!("f-{i}"), PROFILE).await;
    }
    for i in 0..3 {
        h.ready(&format!("f-{i}")).await;
    }
    assert_exactly(&h, 3).await;
    assert!(op.metrics.errors("gateway-pool", Category::Throttled) >= 1);
    assert!(
        op.metrics
            .encode()
            .unwrap()
            .contains("egress_operator_azure_arm_throttled_total")
    );
    for i in 0..3 {
        h.delete_sgc(&format!("f-{i}")).await;
    }
    for i in 0..3 {
        h.gone(&format!("f-{i}")).await;
    }
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    op.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_mid_reconcile_is_finished_by_its_successor() {
    let h = Harness::start().await;
    let before = h.resource_ids();
    // Instance updates hang long enough to kill the operator inside one.
    h.emu
        .faults()
        .add(
            FaultRule::new(FaultKind::SlowLro)
                .operation("VirtualMachineScaleSetVMs.Update")
                .extra_polls(1000),
        )
        .unwrap();
    let first = h.operator().await;
    for i in 0..3 {
        h.create_sgc(&format!("k-{i}"), if i == 0 { NODEPOOL } else { PROFILE })
            .await;
    }
    h.until("an instance update in flight", || async {
        (h.emu
            .request_log()
            .count("VirtualMachineScaleSetVMs.Update")
            >= 1)
            .then_some(())
    })
    .await;
    first.kill().await;
    h.emu.faults().clear();

    let second = h.operator().await;
    for i in 0..3 {
        h.ready(&format!("k-{i}")).await;
    }
    assert_exactly(&h, 3).await;

    // Killed again in the middle of deleting.
    h.emu
        .faults()
        .add(
            FaultRule::new(FaultKind::SlowLro)
                .operation("VirtualMachineScaleSetVMs.Update")
                .extra_polls(1000),
        )
        .unwrap();
    let updates = h
        .emu
        .request_log()
        .count("VirtualMachineScaleSetVMs.Update");
    for i in 0..3 {
        h.delete_sgc(&format!("k-{i}")).await;
    }
    h.until("an instance update in flight", || async {
        (h.emu
            .request_log()
            .count("VirtualMachineScaleSetVMs.Update")
            > updates)
            .then_some(())
    })
    .await;
    second.kill().await;
    h.emu.faults().clear();
    let third = h.operator().await;
    for i in 0..3 {
        h.gone(&format!("k-{i}")).await;
    }
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired_in_place_keeping_the_port() {
    let h = Harness::start().await;
    let mut config = h.config();
    config.resync_interval = Duration::from_millis(500);
    let op = h.operator_with(config, Default::default()).await;
    h.create_sgc("a", PROFILE).await;
    h.create_sgc("b", PROFILE).await;
    h.ready("a").await;
    let b = h.ready("b").await;
    let port = b
        .status
        .unwrap()
        .gateway_server_profile
        .unwrap()
        .port
        .unwrap();
    let lb_uid = h.lbs().get("b").await.unwrap().metadata.uid.unwrap();

    // Someone edits b's rule and strips the gateway ipConfigs from an instance.
    let id = settings().load_balancer_id;
    let mut lb = h.arm.get_load_balancer(&id).await.unwrap();
    let rule = lb
        .properties
        .load_balancing_rules
        .iter_mut()
        .find(|r| r.name.as_deref() == Some(lb_uid.as_str()))
        .unwrap();
    rule.properties.backend_port = Some(7777);
    rule.properties.enable_floating_ip = Some(false);
    h.arm
        .create_or_update_load_balancer(&id, &lb, None)
        .await
        .unwrap();
    strip_instance(&h, 0).await;

    h.until("the rule and ipConfigs to be repaired", || async {
        let lb = h.load_balancer().await?;
        let r = lb.rule(&lb_uid)?;
        let ok = r.properties.backend_port == Some(u16::try_from(port).ok()?)
            && r.properties.enable_floating_ip == Some(true)
            && r.properties.frontend_port == Some(u16::try_from(port).ok()?);
        let ipc = h.instance_ipconfigs().await;
        (ok && ipc[0].len() == 3).then_some(())
    })
    .await;
    assert_exactly(&h, 2).await;
    op.stop().await;
}

/// Removes every gateway ipConfig from instance `i` (as an out-of-band model rollout would).
async fn strip_instance(h: &Harness, i: usize) {
    let vmss = ResourceGroupId::new(SUB, "rg-egress").scale_set("gw-vmss");
    let vms = h.arm.list_scale_set_vms(&vmss).await.unwrap();
    let vm = &vms[i];
    let mut cfg = vm.properties.network_profile_configuration.clone().unwrap();
    cfg.network_interface_configurations[0]
        .properties
        .ip_configurations
        .retain(|c| !c.name.as_deref().unwrap().starts_with("egressgateway-"));
    let id = egress_azure::ResourceId::parse(vm.id.as_deref().unwrap()).unwrap();
    h.arm
        .update_scale_set_vm_network_profile(&id, "eastus", &cfg, None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_the_pool_gets_the_ipconfigs_without_waiting_for_the_resync() {
    let h = Harness::start().await;
    let op = h.operator().await; // resync 60 s: only the node event can repair in time
    h.create_sgc("n", NODEPOOL).await;
    h.ready("n").await;
    // The emulator cannot add instances; a re-imaged instance (no gateway ipConfig) joining
    // as a new node is the same situation for the operator.
    strip_instance(&h, 1).await;
    assert_eq!(h.instance_ipconfigs().await[1].len(), 1);
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "gw-vmss000001",
        "labels": {"kubernetes.azure.com/mode": "gateway", "kubernetes.azure.com/agentpool": "gwpool"}}}))
    .unwrap();
    Api::<Node>::all(h.client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    h.until("the instance to get the ipConfig back", || async {
        (h.instance_ipconfigs().await[1].len() == 2).then_some(())
    })
    .await;
    op.stop().await;
}
