//! Model round trips: unknown fields at every level survive deserialize → modify → serialize.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use serde_json::json;

#[test]
fn load_balancer_keeps_unknown_fields_through_modify() {
    let original = json!({
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb",
        "name": "lb", "location": "eastus", "etag": "W/\"1\"",
        "sku": {"name": "Standard", "tier": "Regional", "future": 1},
        "zones": ["1"],
        "properties": {
            "frontendIPConfigurations": [{"name": "fe", "properties": {
                "privateIPAddress": "10.0.0.4", "privateIPAllocationMethod": "Dynamic",
                "subnet": {"id": "/sub"}, "zones": ["1","2"]}}],
            "backendAddressPools": [{"name": "be", "properties": {"loadBalancerBackendAddresses": []}}],
            "loadBalancingRules": [],
            "probes": null,
            "inboundNatRules": [{"name": "nat"}],
            "outboundRules": []
        }
    });
    let mut lb: LoadBalancer = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(
        lb.frontend("FE")
            .unwrap()
            .properties
            .private_ip_address
            .as_deref(),
        Some("10.0.0.4")
    );
    lb.properties.probes.push(Probe {
        name: Some("p".into()),
        properties: ProbeProperties {
            protocol: Some("Http".into()),
            port: Some(8082),
            request_path: Some("/gw/x".into()),
            interval_in_seconds: Some(5),
            probe_threshold: Some(1),
            ..Default::default()
        },
        ..Default::default()
    });
    let out = serde_json::to_value(&lb).unwrap();
    assert_eq!(out["zones"], json!(["1"]));
    assert_eq!(out["sku"]["future"], json!(1));
    assert_eq!(
        out["properties"]["inboundNatRules"],
        original["properties"]["inboundNatRules"]
    );
    assert_eq!(out["properties"]["outboundRules"], json!([]));
    assert_eq!(
        out["properties"]["frontendIPConfigurations"][0]["properties"]["zones"],
        json!(["1", "2"])
    );
    assert_eq!(
        out["properties"]["backendAddressPools"][0]["properties"]["loadBalancerBackendAddresses"],
        json!([])
    );
    assert_eq!(
        out["properties"]["probes"][0]["properties"]["requestPath"],
        json!("/gw/x")
    );
    assert!(
        out["properties"]["probes"][0].get("id").is_none(),
        "None must be omitted, not null"
    );
}

#[test]
fn scale_set_and_instance_keep_unknown_fields() {
    let vmss = json!({
        "name": "gw", "location": "eastus", "tags": {"aks-managed-poolName": "gwpool"},
        "identity": {"type": "UserAssigned"},
        "properties": {"uniqueId": "u-1", "upgradePolicy": {"mode": "Manual"},
          "virtualMachineProfile": {"osProfile": {"computerNamePrefix": "gw"},
            "networkProfile": {"networkApiVersion": "2020-11-01", "networkInterfaceConfigurations": [
              {"name": "nic", "properties": {"primary": true, "enableAcceleratedNetworking": true,
                "ipConfigurations": [{"name": "ipconfig1", "properties": {"primary": true,
                  "subnet": {"id": "/subnet"}, "applicationSecurityGroups": []}}]}}]}}}
    });
    let mut v: VirtualMachineScaleSet = serde_json::from_value(vmss.clone()).unwrap();
    assert_eq!(v.tag("aks-managed-poolName"), Some("gwpool"));
    let nic = &mut v
        .properties
        .virtual_machine_profile
        .as_mut()
        .unwrap()
        .network_profile
        .as_mut()
        .unwrap()
        .network_interface_configurations[0];
    nic.properties.ip_configurations.push(VmssIpConfiguration {
        name: Some("egressgateway-x".into()),
        properties: VmssIpConfigurationProperties {
            primary: Some(false),
            private_ip_address_version: Some("IPv4".into()),
            subnet: Some(SubResource::new("/subnet")),
            public_ip_address_configuration: Some(VmssPublicIpAddressConfiguration {
                name: Some("egressgateway-x".into()),
                properties: VmssPublicIpAddressConfigurationProperties {
                    public_ip_prefix: Some(SubResource::new("/prefix")),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    });
    let out = serde_json::to_value(&v).unwrap();
    assert_eq!(out["identity"], vmss["identity"]);
    assert_eq!(
        out["properties"]["upgradePolicy"],
        vmss["properties"]["upgradePolicy"]
    );
    let np = &out["properties"]["virtualMachineProfile"]["networkProfile"];
    assert_eq!(np["networkApiVersion"], json!("2020-11-01"));
    assert_eq!(
        np["networkInterfaceConfigurations"][0]["properties"]["enableAcceleratedNetworking"],
        json!(true)
    );
    assert_eq!(
        np["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]["properties"]
            ["applicationSecurityGroups"],
        json!([])
    );
    assert_eq!(
        np["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][1]["properties"]
            ["publicIPAddressConfiguration"]["properties"]["publicIPPrefix"]["id"],
        json!("/prefix")
    );
    // An IPv4 public IP configuration says no version (ARM's default), as before.
    assert!(
        np["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][1]["properties"]
            ["publicIPAddressConfiguration"]["properties"]
            .get("publicIPAddressVersion")
            .is_none()
    );
    let v6: VmssPublicIpAddressConfigurationProperties = serde_json::from_value(
        json!({"publicIPPrefix": {"id": "/p6"}, "publicIPAddressVersion": "IPv6", "ipTags": []}),
    )
    .unwrap();
    assert_eq!(v6.public_ip_address_version.as_deref(), Some("IPv6"));
    assert_eq!(
        serde_json::to_value(&v6).unwrap(),
        json!({"publicIPPrefix": {"id": "/p6"}, "publicIPAddressVersion": "IPv6", "ipTags": []})
    );

    let vm: VmssVm = serde_json::from_value(json!({
        "instanceId": "3", "properties": {"osProfile": {"computerName": "gw000003"},
        "networkProfile": {"networkInterfaces": [
            {"id": "/nic-a", "properties": {"primary": false}},
            {"id": "/nic-b", "properties": {"primary": true}}]}}
    }))
    .unwrap();
    assert_eq!(vm.primary_nic_id(), Some("/nic-b"));
    assert_eq!(vm.computer_name(), Some("gw000003"));
}

#[test]
fn nic_prefix_and_public_ip_round_trip() {
    let nic = json!({"name": "n", "tags": {"aks-managed-static-gateway-nic": "true"},
        "properties": {"enableIPForwarding": true, "ipConfigurations": [
            {"name": "a", "properties": {"privateIPAddress": "10.0.0.5", "subnet": {"id": "/s"}, "loadBalancerBackendAddressPools": []}},
            {"name": "b", "properties": {"primary": true, "privateIPAddress": "10.0.0.4",
              "publicIPAddress": {"id": "/pip", "properties": {"ipAddress": "1.2.3.4"}}}}]}});
    let n: NetworkInterface = serde_json::from_value(nic.clone()).unwrap();
    assert_eq!(
        n.primary_ip_configuration().unwrap().name.as_deref(),
        Some("b")
    );
    assert_eq!(
        n.ip_configuration("A")
            .unwrap()
            .properties
            .private_ip_address
            .as_deref(),
        Some("10.0.0.5")
    );
    let out = serde_json::to_value(&n).unwrap();
    assert_eq!(out["properties"]["enableIPForwarding"], json!(true));
    assert_eq!(
        out["properties"]["ipConfigurations"][1]["properties"]["publicIPAddress"],
        nic["properties"]["ipConfigurations"][1]["properties"]["publicIPAddress"]
    );

    let p: PublicIpPrefix = serde_json::from_value(json!({"name": "p", "properties": {
        "prefixLength": 30, "ipPrefix": "20.0.0.0/30", "publicIPAddresses": [{"id": "/pip1"}],
        "ipTags": [{"ipTagType": "FirstPartyUsage", "tag": "/x"}]}}))
    .unwrap();
    assert_eq!(p.properties.public_ip_addresses[0].id, "/pip1");
    let out = serde_json::to_value(&p).unwrap();
    assert_eq!(out["properties"]["ipTags"][0]["tag"], json!("/x"));

    let ip: PublicIpAddress = serde_json::from_value(json!({"name": "ip", "properties": {
        "publicIPPrefix": {"id": "/p"}, "ipAddress": "20.0.0.1", "dnsSettings": {"domainNameLabel": "x"}}})).unwrap();
    assert!(
        ip.properties
            .public_ip_prefix
            .as_ref()
            .unwrap()
            .refers_to("/P")
    );
    assert_eq!(
        serde_json::to_value(&ip).unwrap()["properties"]["dnsSettings"]["domainNameLabel"],
        json!("x")
    );
}
