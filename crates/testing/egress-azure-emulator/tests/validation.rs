//! Where Azure refuses, the emulator refuses too: Basic SKU prefixes and public IPs, idle
//! timeouts out of range, probes and rules Azure rejects, a load balancer (or backend pool) a
//! scale set still uses, capacity changes (which really add and remove instances), and
//! unknown or read-only properties (dropped, never stored or echoed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, COMPUTE, NET, VMSS_NET};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn std_pip(props: Value) -> Value {
    json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": props})
}

#[tokio::test]
async fn basic_skus_and_idle_timeouts_are_refused() {
    let arm = Arm::start().await;
    let prefix = arm.net("publicIPPrefixes", "p");
    let a = arm
        .put(&prefix, NET, &json!({"location": "eastus", "sku": {"name": "Basic"}, "properties": {"prefixLength": 31}}))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "InvalidRequestFormat")
    );
    assert_eq!(a.body["error"]["details"][0]["code"], "InvalidJson");
    let p = arm
        .put_done(
            &prefix,
            NET,
            &json!({"location": "eastus", "properties": {"prefixLength": 31}}),
        )
        .await;
    assert_eq!(
        p["sku"]["name"], "Standard",
        "Standard is the prefix default"
    );

    let pip = arm.net("publicIPAddresses", "ip");
    for (body, code) in [
        (
            json!({"location": "eastus", "properties": {}}),
            "IPv4BasicSkuPublicIpCountLimitReached",
        ),
        (
            json!({"location": "eastus", "sku": {"name": "Basic"}, "properties": {}}),
            "IPv4BasicSkuPublicIpCountLimitReached",
        ),
        (
            std_pip(json!({"publicIPAllocationMethod": "Dynamic"})),
            "StandardSkuPublicIPAddressesMustBeStatic",
        ),
        (
            std_pip(json!({"idleTimeoutInMinutes": 3})),
            "PublicIPAddressInvalidIdleTimeout",
        ),
        (
            std_pip(json!({"idleTimeoutInMinutes": 31})),
            "PublicIPAddressInvalidIdleTimeout",
        ),
    ] {
        let a = arm.put(&pip, NET, &body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    assert_eq!(
        arm.get(&pip, NET).await.status,
        StatusCode::NOT_FOUND,
        "nothing stored"
    );
    let ok = arm
        .put_done(&pip, NET, &std_pip(json!({"idleTimeoutInMinutes": 30})))
        .await;
    assert_eq!(ok["properties"]["publicIPAllocationMethod"], "Static");

    // The same rules hold for the public IPs of scale-set NIC configurations.
    let inst = arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/0");
    for (pcfg, code) in [
        (
            json!({"name": "x", "sku": {"name": "Basic"}, "properties": {}}),
            "IPv4BasicSkuPublicIpCountLimitReached",
        ),
        (
            json!({"name": "x", "properties": {"idleTimeoutInMinutes": 45}}),
            "PublicIPAddressInvalidIdleTimeout",
        ),
    ] {
        let cfg = json!([{"name": "gw-vmss", "properties": {"primary": true, "ipConfigurations": [
            {"name": "ipconfig1", "properties": {"primary": true, "subnet": {"id": arm.subnet_id()}, "publicIPAddressConfiguration": pcfg}}]}}]);
        let a = arm
            .put(&inst, COMPUTE, &json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": cfg}}}))
            .await;
        assert_eq!((a.status, a.code()), (StatusCode::BAD_REQUEST, code));
    }
    arm.emu.shutdown().await;
}

fn lb(arm: &Arm, probe: Value, rule: Value) -> Value {
    let lb = arm.net("loadBalancers", "lb");
    json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {
        "frontendIPConfigurations": [{"name": "fe", "properties": {"subnet": {"id": arm.subnet_id()}}}],
        "backendAddressPools": [{"name": "pool"}],
        "probes": [{"name": "pr", "properties": probe}],
        "loadBalancingRules": [{"name": "r", "properties": {
            "frontendIPConfiguration": {"id": format!("{lb}/frontendIPConfigurations/fe")},
            "backendAddressPool": {"id": format!("{lb}/backendAddressPools/pool")},
            "probe": {"id": format!("{lb}/probes/pr")},
            "protocol": rule["protocol"], "frontendPort": rule["port"], "backendPort": rule["port"],
            "idleTimeoutInMinutes": rule["idle"],
        }}],
    }})
}

#[tokio::test]
async fn probes_and_rules_azure_rejects_are_rejected() {
    let arm = Arm::start().await;
    let path = arm.net("loadBalancers", "lb");
    let http = json!({"protocol": "Http", "port": 8082, "requestPath": "/healthz"});
    let udp = json!({"protocol": "Udp", "port": 6000, "idle": 4});
    for (probe, rule, code) in [
        (
            json!({"protocol": "Http", "port": 8082}),
            udp.clone(),
            "LoadBalancerProbeRequestPathRequired",
        ),
        (
            json!({"protocol": "Tcp", "port": 22, "requestPath": "/"}),
            udp.clone(),
            "LoadBalancerProbeRequestPathNotAllowedForTcp",
        ),
        (
            http.clone(),
            json!({"protocol": "Udp", "port": 0, "idle": 4}),
            "LoadBalancingRuleHaPortsRequireProtocolAll",
        ),
        (
            http.clone(),
            json!({"protocol": "All", "port": 80, "idle": 4}),
            "LoadBalancingRuleHaPortsRequireProtocolAll",
        ),
        (
            http.clone(),
            json!({"protocol": "Udp", "port": 6000, "idle": 3}),
            "LoadBalancingRuleIdleTimeoutOutOfRange",
        ),
        (
            http.clone(),
            json!({"protocol": "Udp", "port": 6000, "idle": 101}),
            "LoadBalancingRuleIdleTimeoutOutOfRange",
        ),
    ] {
        let a = arm
            .put(&path, NET, &lb(&arm, probe.clone(), rule.clone()))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, code),
            "{probe} {rule}"
        );
    }
    let ha = arm
        .put_done(
            &path,
            NET,
            &lb(
                &arm,
                http.clone(),
                json!({"protocol": "All", "port": 0, "idle": 100}),
            ),
        )
        .await;
    assert_eq!(
        ha["properties"]["loadBalancingRules"][0]["properties"]["protocol"],
        "All"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn a_load_balancer_a_scale_set_uses_cannot_be_deleted_or_lose_its_pool() {
    let arm = Arm::start().await;
    let path = arm.net("loadBalancers", "lb");
    let body = lb(
        &arm,
        json!({"protocol": "Tcp", "port": 22}),
        json!({"protocol": "Udp", "port": 6000, "idle": 4}),
    );
    arm.put_done(&path, NET, &body).await;
    let pool = format!("{path}/backendAddressPools/pool");
    let vmss = arm.compute("virtualMachineScaleSets/gw-vmss");
    let cfg = |pools: Value| {
        json!([{"name": "gw-vmss", "properties": {"primary": true, "ipConfigurations": [
        {"name": "ipconfig1", "properties": {"primary": true, "subnet": {"id": arm.subnet_id()}, "loadBalancerBackendAddressPools": pools}}]}}])
    };
    let model = |pools| json!({"properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": cfg(pools)}}}});
    let a = arm
        .send(
            Method::PATCH,
            &vmss,
            COMPUTE,
            Some(&model(json!([{"id": pool}]))),
            &[],
        )
        .await;
    arm.finish(&a).await;

    let del = arm.delete(&path, NET).await;
    assert_eq!(
        (del.status, del.code()),
        (
            StatusCode::BAD_REQUEST,
            "LoadBalancerInUseByVirtualMachineScaleSet"
        )
    );
    assert!(
        del.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gw-vmss")
    );
    let mut no_pool = body.clone();
    no_pool["properties"]["backendAddressPools"] = json!([]);
    no_pool["properties"]["loadBalancingRules"] = json!([]);
    let a = arm.put(&path, NET, &no_pool).await;
    assert_eq!(
        a.code(),
        "CannotRemoveBackendAddressPoolInUseByVirtualMachineScaleSet"
    );

    // An instance that took the model also counts, until it is updated back.
    let inst = format!("{vmss}/virtualMachines/0");
    let a = arm
        .put(&inst, COMPUTE, &json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": cfg(json!([{"id": pool}]))}}}))
        .await;
    arm.finish(&a).await;
    let a = arm
        .send(Method::PATCH, &vmss, COMPUTE, Some(&model(json!([]))), &[])
        .await;
    arm.finish(&a).await;
    assert_eq!(
        arm.delete(&path, NET).await.code(),
        "LoadBalancerInUseByVirtualMachineScaleSet"
    );
    let a = arm
        .put(&inst, COMPUTE, &json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": cfg(json!([]))}}}))
        .await;
    arm.finish(&a).await;
    arm.delete_done(&path, NET).await;
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn capacity_changes_add_and_remove_instances() {
    let arm = Arm::start().await;
    let vmss = arm.compute("virtualMachineScaleSets/gw-vmss");
    let before = arm.resource_ids();
    let a = arm
        .send(
            Method::PATCH,
            &vmss,
            COMPUTE,
            Some(&json!({"sku": {"capacity": 3}})),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    arm.finish(&a).await;
    let vms = arm
        .get(&format!("{vmss}/virtualMachines"), COMPUTE)
        .await
        .body;
    let names: Vec<&str> = vms["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["properties"]["osProfile"]["computerName"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(names, ["gw-vmss000000", "gw-vmss000001", "gw-vmss000002"]);
    let nic = arm
        .get(
            &format!("{vmss}/virtualMachines/2/networkInterfaces/gw-vmss"),
            VMSS_NET,
        )
        .await;
    assert_eq!(
        nic.body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.0.6"
    );
    assert_eq!(
        arm.get(&vmss, COMPUTE).await.body["properties"]["provisioningState"],
        "Succeeded"
    );

    let a = arm
        .send(
            Method::PATCH,
            &vmss,
            COMPUTE,
            Some(&json!({"sku": {"capacity": 2}})),
            &[],
        )
        .await;
    arm.finish(&a).await;
    assert_eq!(
        arm.resource_ids(),
        before,
        "scale-in removed instance 2 with its NIC"
    );
    for bad in [json!(-1), json!("three"), json!(1001)] {
        let a = arm
            .send(
                Method::PATCH,
                &vmss,
                COMPUTE,
                Some(&json!({"sku": {"capacity": bad}})),
                &[],
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
            "{bad}"
        );
        assert_eq!(a.body["error"]["target"], "sku.capacity");
    }
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn unknown_and_read_only_properties_are_neither_stored_nor_echoed() {
    let arm = Arm::start().await;
    let nic = arm.net("networkInterfaces", "n");
    let a = arm
        .put(&nic, NET, &json!({"location": "eastus", "inventedTopLevel": 1, "properties": {
            "provisioningState": "Succeeded", "madeUp": {"x": 1},
            "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": arm.subnet_id()}, "alsoMadeUp": true}}]}}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.body["properties"]["provisioningState"], "Updating",
        "read-only input ignored"
    );
    for v in [&a.body, &arm.get(&nic, NET).await.body] {
        assert_eq!(v["inventedTopLevel"], Value::Null);
        assert_eq!(v["properties"]["madeUp"], Value::Null);
        assert_eq!(
            v["properties"]["ipConfigurations"][0]["properties"]["alsoMadeUp"],
            Value::Null
        );
    }
    let vmss = arm.compute("virtualMachineScaleSets/gw-vmss");
    let a = arm
        .send(Method::PATCH, &vmss, COMPUTE, Some(&json!({"properties": {"madeUpFlag": true, "upgradePolicy": {"mode": "Manual", "bogus": 1}}})), &[])
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["properties"]["madeUpFlag"], Value::Null);
    assert_eq!(
        a.body["properties"]["upgradePolicy"],
        json!({"mode": "Manual"})
    );
    arm.emu.shutdown().await;
}
