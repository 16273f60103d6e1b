//! Load balancer lifecycle, frontend IP allocation and rule validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, NET};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn lb_body(arm: &Arm, rules: Value, probes: Value) -> Value {
    json!({
        "location": "eastus",
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "frontendIPConfigurations": [{"name": "pool-uid", "properties": {
                "privateIPAddressVersion": "IPv4", "privateIPAllocationMethod": "Dynamic",
                "subnet": {"id": arm.subnet_id()}}}],
            "backendAddressPools": [{"name": "pool-uid"}],
            "probes": probes,
            "loadBalancingRules": rules,
            "someFutureProperty": {"kept": true}
        }
    })
}

fn rule(arm: &Arm, name: &str, port: u16, probe: &str) -> Value {
    let lb = arm.net("loadBalancers", "kubeegressgateway-ilb");
    json!({"name": name, "properties": {
        "protocol": "Udp", "enableFloatingIP": true, "frontendPort": port, "backendPort": port,
        "frontendIPConfiguration": {"id": format!("{lb}/frontendIPConfigurations/pool-uid")},
        "backendAddressPool": {"id": format!("{lb}/backendAddressPools/pool-uid")},
        "probe": {"id": format!("{lb}/probes/{probe}")}
    }})
}

fn probe(name: &str) -> Value {
    json!({"name": name, "properties": {"protocol": "Http", "port": 8082, "requestPath": "/gw/uid", "intervalInSeconds": 5, "probeThreshold": 1}})
}

#[tokio::test]
async fn lb_lifecycle_allocates_frontend_ip_and_cleans_up() {
    let arm = Arm::start().await;
    let before = arm.resource_ids();
    let path = arm.net("loadBalancers", "kubeegressgateway-ilb");
    let missing = arm.get(&path, NET).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "ResourceNotFound");

    let body = lb_body(
        &arm,
        json!([rule(&arm, "r1", 6000, "p1")]),
        json!([probe("p1")]),
    );
    let created = arm.put(&path, NET, &body).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["properties"]["provisioningState"], "Updating");
    let etag = created.header("etag").unwrap();
    assert_eq!(created.body["etag"], etag.as_str());
    let (status, polls) = arm.wait_async(&created).await;
    assert_eq!(status["status"], "Succeeded");
    assert_eq!(polls, 2, "default lro_polls is 2");

    let lb = arm.get(&path, NET).await.body;
    assert_eq!(lb["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        lb["properties"]["someFutureProperty"],
        serde_json::Value::Null,
        "unknown properties are dropped, as resource providers do"
    );
    let fe = &lb["properties"]["frontendIPConfigurations"][0];
    assert_eq!(
        fe["id"],
        format!("{path}/frontendIPConfigurations/pool-uid")
    );
    assert_eq!(
        fe["properties"]["privateIPAddress"], "10.0.0.6",
        "after the two VMSS instances"
    );
    assert_eq!(
        lb["properties"]["loadBalancingRules"][0]["properties"]["idleTimeoutInMinutes"],
        4
    );

    // Update keeps the dynamic frontend IP.
    let mut again = lb.clone();
    again["properties"]["loadBalancingRules"] = json!([rule(&arm, "r1", 6001, "p1")]);
    let updated = arm.put_done(&path, NET, &again).await;
    assert_eq!(
        updated["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.0.6"
    );
    assert_ne!(updated["etag"], lb["etag"]);

    // Delete via Location polling, then nothing is left.
    let del = arm.delete(&path, NET).await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let (fin, polls) = arm.wait_location(&del).await;
    assert_eq!(fin.status, StatusCode::NO_CONTENT);
    assert_eq!(polls, 2);
    assert_eq!(arm.get(&path, NET).await.status, StatusCode::NOT_FOUND);
    assert_eq!(arm.delete(&path, NET).await.status, StatusCode::NO_CONTENT);
    assert_eq!(arm.resource_ids(), before);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn rules_must_reference_existing_children() {
    let arm = Arm::start().await;
    let path = arm.net("loadBalancers", "kubeegressgateway-ilb");
    let bad = lb_body(
        &arm,
        json!([rule(&arm, "r1", 6000, "missing-probe")]),
        json!([probe("p1")]),
    );
    let a = arm.put(&path, NET, &bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "InvalidResourceReference");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("probes/missing-probe")
    );
    assert_eq!(
        arm.get(&path, NET).await.status,
        StatusCode::NOT_FOUND,
        "nothing stored"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn duplicate_frontend_port_is_rejected() {
    let arm = Arm::start().await;
    let path = arm.net("loadBalancers", "kubeegressgateway-ilb");
    let rules = json!([rule(&arm, "r1", 6000, "p1"), rule(&arm, "r2", 6000, "p1")]);
    let a = arm
        .put(&path, NET, &lb_body(&arm, rules, json!([probe("p1")])))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.code(),
        "LoadBalancingRulesUseSameFrontendIpConfigurationProtocolAndPort"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn pool_members_and_lb_map_follow_nic_ip_configurations() {
    let arm = Arm::start().await;
    let path = arm.net("loadBalancers", "kubeegressgateway-ilb");
    arm.put_done(
        &path,
        NET,
        &lb_body(
            &arm,
            json!([rule(&arm, "r1", 6000, "p1")]),
            json!([probe("p1")]),
        ),
    )
    .await;
    // Put instance 0's primary ipconfig in the pool, as the operator does on the VMSS instance.
    let inst = arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/0");
    let got = arm.get(&inst, common::COMPUTE).await.body;
    let mut cfg = got["properties"]["networkProfileConfiguration"].clone();
    cfg["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"] =
        json!([{"id": format!("{path}/backendAddressPools/pool-uid")}]);
    let a = arm
        .put(
            &inst,
            common::COMPUTE,
            &json!({"properties": {"networkProfileConfiguration": cfg}}),
        )
        .await;
    arm.finish(&a).await;

    let lb = arm.get(&path, NET).await.body;
    let members =
        &lb["properties"]["backendAddressPools"][0]["properties"]["backendIPConfigurations"];
    assert_eq!(members.as_array().unwrap().len(), 1, "{lb:#}");
    assert!(
        members[0]["id"]
            .as_str()
            .unwrap()
            .contains("/virtualMachines/0/networkInterfaces/gw-vmss/ipConfigurations/ipconfig1")
    );
    assert_eq!(
        lb["properties"]["probes"][0]["properties"]["loadBalancingRules"][0]["id"],
        format!("{path}/loadBalancingRules/r1")
    );
    let map = arm.emu.lb_map();
    let r = &map["loadBalancers"][0]["rules"][0];
    assert_eq!(r["frontendIp"], "10.0.0.6");
    assert_eq!(r["frontendPort"], 6000);
    assert_eq!(r["probe"]["requestPath"], "/gw/uid");
    assert_eq!(r["backends"][0]["privateIp"], "10.0.0.4");
    assert_eq!(r["backends"][0]["computerName"], "gw-vmss000000");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn static_frontend_in_use_is_rejected_and_dynamic_ips_are_not_reused() {
    let arm = Arm::start().await;
    let mut body = lb_body(&arm, json!([]), json!([]));
    body["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAllocationMethod"] =
        json!("Static");
    body["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAddress"] =
        json!("10.0.0.4");
    let a = arm.put(&arm.net("loadBalancers", "lb-a"), NET, &body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.code(),
        "PrivateIPAddressInUse",
        "10.0.0.4 belongs to instance 0"
    );

    let mut seen = Vec::new();
    for i in 0..3 {
        let path = arm.net("loadBalancers", &format!("lb-{i}"));
        let lb = arm
            .put_done(&path, NET, &lb_body(&arm, json!([]), json!([])))
            .await;
        seen.push(
            lb["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAddress"]
                .clone(),
        );
        arm.delete_done(&path, NET).await;
    }
    assert_eq!(
        seen,
        vec![json!("10.0.0.6"), json!("10.0.0.7"), json!("10.0.0.8")],
        "freed addresses are not handed out again at once"
    );
    arm.emu.shutdown().await;
}
