//! Every typed operation against a scripted ARM server: path, api-version, method, headers,
//! body shape, decoding, and the error kinds reconcilers act on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use egress_azure::models::{
    LoadBalancer, PublicIpAddress, PublicIpPrefix, Sku, SubResource, VmssNetworkProfile,
    VmssVmNetworkProfileConfiguration,
};
use egress_azure::{
    ErrorCategory, LoadBalancers, NetworkInterfaces, PublicIpAddresses, PublicIpPrefixes,
    ResourceId, ScaleSetVms, ScaleSets, Subnets, VirtualMachines, api_versions,
};
use serde_json::json;
use support::{Reply, ScriptedArm, rg};

const LB_PATH: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb";
const VMSS_PATH: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/gw";

#[tokio::test]
async fn load_balancer_get_sends_token_and_api_version_and_keeps_unknown_fields() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        LB_PATH,
        vec![Reply::json(
            200,
            json!({"name": "lb", "etag": "W/\"7\"", "properties": {"frontendIPConfigurations": [],
                   "outboundRules": [{"name": "keep-me"}]}}),
        )],
    );
    let client = arm.client();
    let lb = client
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap();
    assert_eq!(lb.etag.as_deref(), Some("W/\"7\""));
    let seen = &arm.log()[0];
    assert_eq!(seen.query, format!("api-version={}", api_versions::NETWORK));
    assert_eq!(seen.headers["authorization"], "Bearer test-token");

    // Read-modify-write: the unknown outboundRules go back unchanged.
    arm.on(
        "PUT",
        LB_PATH,
        vec![Reply::json(
            200,
            json!({"name": "lb", "properties": {"provisioningState": "Succeeded"}}),
        )],
    );
    client
        .create_or_update_load_balancer(&rg().load_balancer("lb"), &lb, lb.etag.as_deref())
        .await
        .unwrap();
    let put = arm.log().into_iter().find(|s| s.method == "PUT").unwrap();
    assert_eq!(put.headers["if-match"], "W/\"7\"");
    assert_eq!(
        put.body.unwrap()["properties"]["outboundRules"],
        json!([{"name": "keep-me"}])
    );
}

#[tokio::test]
async fn load_balancer_put_with_stale_etag_is_conflict_without_retry() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "PUT",
        LB_PATH,
        vec![Reply::error(412, "PreconditionFailed", "etag mismatch")],
    );
    let err = arm
        .client()
        .create_or_update_load_balancer(
            &rg().load_balancer("lb"),
            &LoadBalancer::default(),
            Some("old"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Conflict);
    assert_eq!(err.code(), "PreconditionFailed");
    assert_eq!(arm.count("PUT", LB_PATH), 1);
}

#[tokio::test]
async fn load_balancer_delete_polls_location_and_treats_absent_as_done() {
    let arm = ScriptedArm::start().await;
    let op = "/ops/lb-delete";
    arm.on(
        "DELETE",
        LB_PATH,
        vec![
            Reply::empty(202)
                .header("location", arm.url(op))
                .header("retry-after", "0"),
        ],
    );
    arm.on(
        "GET",
        op,
        vec![Reply::empty(202), Reply::empty(202), Reply::empty(204)],
    );
    let client = arm.client();
    client
        .delete_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap();
    assert_eq!(arm.count("GET", op), 3);
    assert_eq!(
        client
            .metrics()
            .lro_count("load_balancers.delete", "succeeded"),
        1
    );

    let gone = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/gone";
    arm.on(
        "DELETE",
        gone,
        vec![Reply::error(404, "ResourceNotFound", "no")],
    );
    client
        .delete_load_balancer(&rg().load_balancer("gone"))
        .await
        .unwrap();
}

#[tokio::test]
async fn get_of_missing_resource_is_not_found_with_code() {
    let arm = ScriptedArm::start().await;
    let err = arm
        .client()
        .get_load_balancer(&rg().load_balancer("nope"))
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.code(), "NoRoute");
}

#[tokio::test]
async fn scale_sets_get_list_pages_and_patch_network_profile() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        VMSS_PATH,
        vec![Reply::json(
            200,
            json!({"name": "gw", "properties": {"uniqueId": "u1"}}),
        )],
    );
    let list = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets";
    arm.on(
        "GET",
        list,
        vec![Reply::json(
            200,
            json!({"value": [{"name": "a"}], "nextLink": arm.url("/page2")}),
        )],
    );
    arm.on(
        "GET",
        "/page2",
        vec![Reply::json(200, json!({"value": [{"name": "b"}]}))],
    );
    let client = arm.client();
    let vmss = client.get_scale_set(&rg().scale_set("gw")).await.unwrap();
    assert_eq!(vmss.properties.unique_id.as_deref(), Some("u1"));
    assert_eq!(
        arm.log()[0].query,
        format!("api-version={}", api_versions::COMPUTE)
    );
    let all = client.list_scale_sets(&rg()).await.unwrap();
    let names: Vec<_> = all.iter().map(|v| v.name.clone().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);

    // PATCH answered 200 + Updating without headers: poll the resource until Succeeded.
    arm.on(
        "PATCH",
        VMSS_PATH,
        vec![Reply::json(
            200,
            json!({"name": "gw", "properties": {"provisioningState": "Updating"}}),
        )],
    );
    arm.on(
        "GET",
        VMSS_PATH,
        vec![
            Reply::json(200, json!({"name": "gw", "properties": {"provisioningState": "Updating"}})),
            Reply::json(200, json!({"name": "gw", "properties": {"provisioningState": "Succeeded", "uniqueId": "u1"}})),
        ],
    );
    let profile: VmssNetworkProfile = serde_json::from_value(json!({
        "networkInterfaceConfigurations": [{"name": "nic", "properties": {"ipConfigurations": []}}]
    }))
    .unwrap();
    let out = client
        .update_scale_set_network_profile(&rg().scale_set("gw"), &profile, Some("e1"))
        .await
        .unwrap();
    assert_eq!(
        out.properties.provisioning_state.as_deref(),
        Some("Succeeded")
    );
    let patch = arm.log().into_iter().find(|s| s.method == "PATCH").unwrap();
    assert_eq!(
        patch.body.unwrap(),
        json!({"properties": {"virtualMachineProfile": {"networkProfile": {
            "networkInterfaceConfigurations": [{"name": "nic", "properties": {"ipConfigurations": []}}]}}}})
    );
    assert_eq!(patch.headers["if-match"], "e1");
}

#[tokio::test]
async fn scale_set_vms_list_update_and_instance_nic() {
    let arm = ScriptedArm::start().await;
    let vms = format!("{VMSS_PATH}/virtualMachines");
    let nic_id = format!("{VMSS_PATH}/virtualMachines/0/networkInterfaces/nic");
    arm.on(
        "GET",
        &vms,
        vec![Reply::json(200, json!({"value": [{"instanceId": "0", "properties": {
            "osProfile": {"computerName": "gw000000"},
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": true}}]}}}]}))],
    );
    let client = arm.client();
    let list = client
        .list_scale_set_vms(&rg().scale_set("gw"))
        .await
        .unwrap();
    assert_eq!(list[0].computer_name(), Some("gw000000"));

    let inst = format!("{VMSS_PATH}/virtualMachines/0");
    let op = "/ops/vm0";
    arm.on(
        "PUT",
        &inst,
        vec![Reply::empty(202).header("azure-asyncoperation", arm.url(op))],
    );
    arm.on(
        "GET",
        op,
        vec![
            Reply::json(200, json!({"status": "InProgress"})),
            Reply::json(200, json!({"status": "Succeeded"})),
        ],
    );
    arm.on(
        "GET",
        &inst,
        vec![Reply::json(
            200,
            json!({"instanceId": "0", "properties": {"provisioningState": "Succeeded"}}),
        )],
    );
    let instance_id = ResourceId::parse(&inst).unwrap();
    let cfg = VmssVmNetworkProfileConfiguration::default();
    let out = client
        .update_scale_set_vm_network_profile(&instance_id, "eastus", &cfg, None)
        .await
        .unwrap();
    assert_eq!(out.instance_id.as_deref(), Some("0"));
    let put = arm.log().into_iter().find(|s| s.method == "PUT").unwrap();
    assert_eq!(
        put.body.unwrap(),
        json!({"location": "eastus", "properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": []}}})
    );
    assert_eq!(arm.count("GET", op), 2);

    arm.on(
        "GET",
        &nic_id,
        vec![Reply::json(200, json!({"name": "nic", "properties": {"ipConfigurations": [
            {"name": "ipconfig1", "properties": {"primary": true, "privateIPAddress": "10.0.0.4"}}]}}))],
    );
    let nic = client
        .get_scale_set_vm_network_interface(
            &ResourceId::parse(list[0].primary_nic_id().unwrap()).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        nic.primary_ip_configuration()
            .unwrap()
            .properties
            .private_ip_address
            .as_deref(),
        Some("10.0.0.4")
    );
    let get = arm
        .log()
        .into_iter()
        .rev()
        .find(|s| s.path == nic_id)
        .unwrap();
    assert_eq!(
        get.query,
        format!("api-version={}", api_versions::VMSS_NETWORK_INTERFACE)
    );
}

#[tokio::test]
async fn network_interfaces_list_get_and_put() {
    let arm = ScriptedArm::start().await;
    let list = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces";
    let one = format!("{list}/nic1");
    arm.on(
        "GET",
        list,
        vec![Reply::json(
            200,
            json!({"value": [{"name": "nic1", "tags": {"aks-managed-poolName": "gw"}}]}),
        )],
    );
    arm.on(
        "GET",
        &one,
        vec![Reply::json(200, json!({"name": "nic1", "etag": "e"}))],
    );
    arm.on(
        "PUT",
        &one,
        vec![Reply::json(
            200,
            json!({"name": "nic1", "properties": {"provisioningState": "Succeeded"}}),
        )],
    );
    let client = arm.client();
    let nics = client.list_network_interfaces(&rg()).await.unwrap();
    assert_eq!(nics[0].tags.as_ref().unwrap()["aks-managed-poolName"], "gw");
    let nic = client
        .get_network_interface(&rg().network_interface("nic1"))
        .await
        .unwrap();
    let out = client
        .create_or_update_network_interface(
            &rg().network_interface("nic1"),
            &nic,
            nic.etag.as_deref(),
        )
        .await
        .unwrap();
    assert_eq!(
        out.properties.provisioning_state.as_deref(),
        Some("Succeeded")
    );
    // A final 200 Succeeded body needs no extra GET.
    assert_eq!(arm.count("GET", &one), 1);
}

#[tokio::test]
async fn public_ip_prefix_create_polls_async_operation_and_delete_in_use_is_permanent() {
    let arm = ScriptedArm::start().await;
    let path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p";
    let op = "/ops/p";
    arm.on(
        "PUT",
        path,
        vec![
            Reply::json(
                201,
                json!({"name": "p", "properties": {"provisioningState": "Updating"}}),
            )
            .header("azure-asyncoperation", arm.url(op))
            .header("retry-after", "0"),
        ],
    );
    arm.on(
        "GET",
        op,
        vec![Reply::json(200, json!({"status": "Succeeded"}))],
    );
    arm.on(
        "GET",
        path,
        vec![Reply::json(
            200,
            json!({"name": "p", "properties": {"prefixLength": 31, "ipPrefix": "20.0.0.0/31"}}),
        )],
    );
    let client = arm.client();
    let want = PublicIpPrefix {
        location: Some("eastus".into()),
        sku: Some(Sku::standard_regional()),
        ..Default::default()
    };
    let got = client
        .create_public_ip_prefix(&rg().public_ip_prefix("p"), &want)
        .await
        .unwrap();
    assert_eq!(got.properties.ip_prefix.as_deref(), Some("20.0.0.0/31"));
    assert_eq!(
        client
            .get_public_ip_prefix(&rg().public_ip_prefix("p"))
            .await
            .unwrap()
            .properties
            .prefix_length,
        Some(31)
    );

    arm.on(
        "DELETE",
        path,
        vec![Reply::error(
            400,
            "InUsePublicIpPrefixCannotBeDeleted",
            "in use",
        )],
    );
    let err = client
        .delete_public_ip_prefix(&rg().public_ip_prefix("p"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Permanent);
    assert_eq!(err.code(), "InUsePublicIpPrefixCannotBeDeleted");
    assert_eq!(arm.count("DELETE", path), 1, "4xx is not retried");
}

#[tokio::test]
async fn public_ip_address_put_and_delete() {
    let arm = ScriptedArm::start().await;
    let path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/ip";
    let op = "/ops/ip-del";
    arm.on("PUT", path, vec![Reply::json(200, json!({"name": "ip", "properties": {"ipAddress": "20.0.0.1", "provisioningState": "Succeeded"}}))]);
    arm.on(
        "DELETE",
        path,
        vec![Reply::empty(202).header("azure-asyncoperation", arm.url(op))],
    );
    arm.on(
        "GET",
        op,
        vec![Reply::json(200, json!({"status": "Succeeded"}))],
    );
    let client = arm.client();
    let ip = PublicIpAddress {
        location: Some("eastus".into()),
        properties: egress_azure::models::PublicIpAddressProperties {
            public_ip_prefix: Some(SubResource::new(rg().public_ip_prefix("p"))),
            public_ip_allocation_method: Some("Static".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let got = client
        .create_or_update_public_ip_address(&rg().public_ip_address("ip"), &ip)
        .await
        .unwrap();
    assert_eq!(got.properties.ip_address.as_deref(), Some("20.0.0.1"));
    client
        .delete_public_ip_address(&rg().public_ip_address("ip"))
        .await
        .unwrap();
    assert_eq!(arm.count("GET", op), 1);
}

#[tokio::test]
async fn subnet_get_and_vm_list() {
    let arm = ScriptedArm::start().await;
    let subnet = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s";
    arm.on(
        "GET",
        subnet,
        vec![Reply::json(
            200,
            json!({"name": "s", "properties": {"addressPrefix": "10.0.0.0/24"}}),
        )],
    );
    let vms = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines";
    arm.on(
        "GET",
        vms,
        vec![Reply::json(
            200,
            json!({"value": [{"name": "vm1", "tags": {"aks-managed-poolName": "gw"}}]}),
        )],
    );
    let client = arm.client();
    let s = client.get_subnet(&rg().subnet("v", "s")).await.unwrap();
    assert_eq!(s.properties.address_prefix.as_deref(), Some("10.0.0.0/24"));
    assert_eq!(
        client.list_virtual_machines(&rg()).await.unwrap()[0]
            .name
            .as_deref(),
        Some("vm1")
    );
}

#[tokio::test]
async fn wrong_resource_type_is_rejected_before_sending() {
    let arm = ScriptedArm::start().await;
    let err = arm
        .client()
        .get_load_balancer(&rg().public_ip_prefix("p"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Permanent);
    assert_eq!(err.code(), "InvalidResourceId");
    assert!(arm.log().is_empty());
}

#[tokio::test]
async fn undecodable_body_is_permanent() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        LB_PATH,
        vec![Reply::json(
            200,
            json!({"properties": {"probes": "not-a-list"}}),
        )],
    );
    let err = arm
        .client()
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Permanent);
    assert_eq!(err.code(), "InvalidResponse");
}

#[tokio::test]
async fn client_from_a_cloud_config_pointing_at_a_local_endpoint() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        LB_PATH,
        vec![Reply::json(200, json!({"name": "lb"}))],
    );
    let text = format!(
        "cloud: AzurePublicCloud\ntenantId: t\nsubscriptionId: {}\nresourceGroup: rg\n\
         location: eastus\nvnetName: v\nsubnetName: s\nloadBalancerName: lb\n\
         useManagedIdentityExtension: true\nresourceManagerEndpoint: {}\nuserAgent: egress-test\n",
        support::SUB,
        arm.base
    );
    let config = egress_azure::CloudConfig::from_text(&text, &|_| None).unwrap();
    let client = egress_azure::ArmClient::builder_from_config(&config)
        .static_token("sim")
        .build()
        .unwrap();
    client
        .get_load_balancer(&config.load_balancer_id())
        .await
        .unwrap();
    let seen = &arm.log()[0];
    assert_eq!(seen.headers["authorization"], "Bearer sim");
    assert!(
        seen.headers["user-agent"]
            .to_str()
            .unwrap()
            .contains("egress-test")
    );
}
