//! Scale sets and their instances as the operator drives them: list by tag, model update,
//! instance update with a secondary ipConfiguration and a prefix public IP, instance NIC reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, COMPUTE, NET, VMSS_NET};
use egress_azure_emulator::{FaultKind, FaultRule};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The operator's NIC configuration: primary ipconfig plus `egressgateway-<uid>` with a prefix IP.
fn nic_config(arm: &Arm, prefix: Option<&str>) -> Value {
    let mut ipcs = vec![
        json!({"name": "ipconfig1", "properties": {"primary": true, "privateIPAddressVersion": "IPv4", "subnet": {"id": arm.subnet_id()}}}),
    ];
    if let Some(p) = prefix {
        ipcs.push(json!({"name": "egressgateway-uid", "properties": {
            "primary": false, "privateIPAddressVersion": "IPv4", "subnet": {"id": arm.subnet_id()},
            "publicIPAddressConfiguration": {"name": "egressgateway-uid", "properties": {"publicIPPrefix": {"id": p}}}
        }}));
    }
    json!([{"name": "gw-vmss", "properties": {"primary": true, "enableIPForwarding": true, "ipConfigurations": ipcs}}])
}

async fn update_instance(arm: &Arm, i: u32, cfg: &Value) {
    let path = arm.compute(&format!(
        "virtualMachineScaleSets/gw-vmss/virtualMachines/{i}"
    ));
    let a = arm
        .put(&path, COMPUTE, &json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": cfg}}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["properties"]["provisioningState"], "Updating");
    let (status, _) = arm.wait_async(&a).await;
    assert_eq!(status["status"], "Succeeded");
    let fin = arm.get(&path, COMPUTE).await;
    assert_eq!(fin.body["properties"]["provisioningState"], "Succeeded");
}

#[tokio::test]
async fn operator_flow_gives_each_instance_a_secondary_ip_and_a_prefix_ip() {
    let arm = Arm::start().await;
    let before = arm.resource_ids();
    let list = arm
        .get(&arm.compute("virtualMachineScaleSets"), COMPUTE)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let vmss = list.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["tags"]["aks-managed-poolName"] == "gwpool")
        .unwrap()
        .clone();
    assert_eq!(vmss["tags"]["aks-managed-gatewayIPPrefixSize"], "31");
    assert!(vmss["properties"]["uniqueId"].as_str().is_some());

    // Managed prefix, then the model update with the minimal body the original sends.
    let prefix_path = arm.net("publicIPPrefixes", "egressgateway-uid");
    let prefix = arm
        .put_done(&prefix_path, NET, &json!({"location": "eastus", "sku": {"name": "Standard", "tier": "Regional"}, "properties": {"prefixLength": 31, "publicIPAddressVersion": "IPv4"}}))
        .await;
    let prefix_id = prefix["id"].as_str().unwrap().to_owned();
    let vmss_path = arm.compute("virtualMachineScaleSets/gw-vmss");
    let cfg = nic_config(&arm, Some(&prefix_id));
    let a = arm
        .send(Method::PUT, &vmss_path, COMPUTE, Some(&json!({"location": "eastus", "properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": cfg}}}})), &[])
        .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "a VMSS PUT answers 200 with the body (the spec has no 202)"
    );
    assert_eq!(a.body["properties"]["provisioningState"], "Updating");
    assert!(
        a.header("location").is_none(),
        "default form: Azure-AsyncOperation"
    );
    let (fin, polls) = arm.wait_async(&a).await;
    assert_eq!((fin["status"].as_str(), polls), (Some("Succeeded"), 2));
    let model = arm.get(&vmss_path, COMPUTE).await.body;
    assert_eq!(model["etag"], "\"2\"");
    assert_eq!(
        model["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"], "gw-vmss",
        "merged, not replaced"
    );

    // The model change alone does not touch instances.
    let insts = arm
        .get(
            &arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines"),
            COMPUTE,
        )
        .await
        .body;
    assert_eq!(insts["value"].as_array().unwrap().len(), 2);
    for inst in insts["value"].as_array().unwrap() {
        assert_eq!(inst["properties"]["latestModelApplied"], false);
    }
    let nic_path =
        arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/0/networkInterfaces/gw-vmss");
    let nic = arm.get(&nic_path, "2018-10-01").await;
    assert_eq!(nic.status, StatusCode::OK, "{:?}", nic.body);
    assert_eq!(
        nic.body["properties"]["ipConfigurations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for i in 0..2 {
        update_instance(&arm, i, &cfg).await;
    }
    let inst0 = arm
        .get(
            &arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/0"),
            COMPUTE,
        )
        .await
        .body;
    assert_eq!(inst0["properties"]["latestModelApplied"], true);
    let nic = arm.get(&nic_path, VMSS_NET).await.body;
    let ipcs = nic["properties"]["ipConfigurations"].as_array().unwrap();
    assert_eq!(
        ipcs[0]["properties"]["privateIPAddress"], "10.0.0.4",
        "primary IP kept"
    );
    assert_eq!(ipcs[1]["properties"]["privateIPAddress"], "10.0.0.6");
    let pip_id = ipcs[1]["properties"]["publicIPAddress"]["id"]
        .as_str()
        .unwrap();
    assert!(
        pip_id.ends_with("/ipConfigurations/egressgateway-uid/publicIPAddresses/egressgateway-uid")
    );

    let mut map = arm.emu.ip_map();
    map.sort_by(|a, b| a.private_ip.cmp(&b.private_ip));
    let pairs: Vec<(String, String, Option<String>)> = map
        .iter()
        .map(|m| {
            (
                m.private_ip.clone(),
                m.public_ip.clone(),
                m.computer_name.clone(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            (
                "10.0.0.6".into(),
                "203.0.113.0".into(),
                Some("gw-vmss000000".into())
            ),
            (
                "10.0.0.7".into(),
                "203.0.113.1".into(),
                Some("gw-vmss000001".into())
            ),
        ]
    );
    let prefix = arm.get(&prefix_path, NET).await.body;
    assert_eq!(
        prefix["properties"]["publicIPAddresses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let del = arm.delete(&prefix_path, NET).await;
    assert_eq!(del.status, StatusCode::BAD_REQUEST);
    assert_eq!(del.code(), "InUsePublicIpPrefixCannotBeDeleted");

    // Removal: model and instances back to the primary only; the prefix can go; nothing leaks.
    let plain = nic_config(&arm, None);
    let a = arm
        .put(&vmss_path, COMPUTE, &json!({"properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": plain}}}}))
        .await;
    arm.finish(&a).await;
    for i in 0..2 {
        update_instance(&arm, i, &plain).await;
    }
    arm.delete_done(&prefix_path, NET).await;
    assert!(arm.emu.ip_map().is_empty());
    assert_eq!(arm.resource_ids(), before);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn manual_upgrade_applies_the_model_and_keeps_private_ips() {
    let arm = Arm::start().await;
    let vmss_path = arm.compute("virtualMachineScaleSets/gw-vmss");
    let cfg = nic_config(&arm, None);
    let mut with_second = cfg.clone();
    with_second[0]["properties"]["ipConfigurations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "extra", "properties": {"primary": false, "subnet": {"id": arm.subnet_id()}}}));
    let a = arm
        .put(&vmss_path, COMPUTE, &json!({"properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": with_second}}}}))
        .await;
    arm.finish(&a).await;
    let a = arm
        .send(
            Method::POST,
            &format!("{vmss_path}/manualupgrade"),
            COMPUTE,
            Some(&json!({"instanceIds": ["1"]})),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    arm.finish(&a).await;
    let i1 = arm
        .get(&format!("{vmss_path}/virtualMachines/1"), COMPUTE)
        .await
        .body;
    let i0 = arm
        .get(&format!("{vmss_path}/virtualMachines/0"), COMPUTE)
        .await
        .body;
    assert_eq!(i1["properties"]["latestModelApplied"], true);
    assert_eq!(i0["properties"]["latestModelApplied"], false);
    let nic = arm
        .get(
            &format!("{vmss_path}/virtualMachines/1/networkInterfaces/gw-vmss"),
            VMSS_NET,
        )
        .await
        .body;
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.0.5"
    );
    assert_eq!(
        nic["properties"]["ipConfigurations"][1]["properties"]["privateIPAddress"],
        "10.0.0.6"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn instance_update_validates_references_and_etags() {
    let arm = Arm::start().await;
    let path = arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/0");
    let missing_prefix = format!("{}x", arm.net("publicIPPrefixes", "nope"));
    let bad = nic_config(&arm, Some(&missing_prefix));
    let a = arm
        .put(&path, COMPUTE, &json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": bad}}}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "InvalidResourceReference");

    let mut two_primaries = nic_config(&arm, None);
    two_primaries[0]["properties"]["ipConfigurations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "b", "properties": {"primary": true, "subnet": {"id": arm.subnet_id()}}}));
    let a = arm
        .put(&path, COMPUTE, &json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": two_primaries}}}))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "InvalidParameter")
    );

    let a = arm
        .send(
            Method::PUT,
            &path,
            COMPUTE,
            Some(&json!({"properties": {}})),
            &[("If-Match", "\"41\"")],
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::PRECONDITION_FAILED, "PreconditionFailed")
    );
    let nope = arm
        .get(
            &arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/9"),
            COMPUTE,
        )
        .await;
    assert_eq!(nope.status, StatusCode::NOT_FOUND);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn failed_instance_update_leaves_provisioning_state_failed() {
    let arm = Arm::start().await;
    arm.emu
        .faults()
        .add(
            FaultRule::new(FaultKind::FailLro)
                .operation("VirtualMachineScaleSetVMs.Update")
                .count(1),
        )
        .unwrap();
    let path = arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/1");
    let a = arm
        .put(&path, COMPUTE, &json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": nic_config(&arm, None)}}}))
        .await;
    let (fin, _) = arm.wait_async(&a).await;
    assert_eq!(fin["status"], "Failed");
    assert_eq!(fin["error"]["code"], "InternalOperationError");
    let inst = arm.get(&path, COMPUTE).await.body;
    assert_eq!(inst["properties"]["provisioningState"], "Failed");
    // The next update (the operator's forceUpdate) succeeds.
    update_instance(&arm, 1, &nic_config(&arm, None)).await;
    arm.emu.shutdown().await;
}
