//! Standalone NICs and VMs of an AKS VirtualMachines pool, driven as the operator does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, COMPUTE, NET};
use egress_azure_emulator::{EmulatorConfig, Seed};
use reqwest::StatusCode;
use serde_json::json;

const SEED: &str = r#"
resourceGroups: [{name: rg-egress}]
virtualNetworks:
  - {name: aks-vnet, resourceGroup: rg-egress, subnets: [{name: aks-subnet, addressPrefix: 10.0.0.0/24}]}
networkInterfaces:
  - {name: vm0-nic, resourceGroup: rg-egress, tags: {aks-managed-static-gateway-nic: "true", aks-managed-poolName: vmpool}}
  - {name: spare-nic, resourceGroup: rg-egress, privateIp: 10.0.0.100, tags: {aks-managed-static-gateway-nic: "true", aks-managed-poolName: vmpool}}
virtualMachines:
  - {name: vm0, resourceGroup: rg-egress, computerName: gw-vm-0, networkInterfaces: [vm0-nic], tags: {aks-managed-poolName: vmpool, aks-managed-nic-name: vm0-nic}}
publicIpPrefixes:
  - {name: byo, resourceGroup: rg-egress, ipPrefix: 192.0.2.0/30}
"#;

async fn start() -> Arm {
    Arm::start_seed(SEED).await
}

#[tokio::test]
async fn vm_pool_nics_get_secondary_ips_and_public_ips() {
    let arm = start().await;
    let before = arm.resource_ids();
    let vms = arm.get(&arm.compute("virtualMachines"), COMPUTE).await.body;
    assert_eq!(vms["value"][0]["tags"]["aks-managed-poolName"], "vmpool");
    let nics = arm
        .get(&format!("/subscriptions/{}/resourceGroups/rg-egress/providers/Microsoft.Network/networkInterfaces", arm.sub), NET)
        .await
        .body;
    let nics = nics["value"].as_array().unwrap();
    assert_eq!(nics.len(), 2);
    let nic = nics
        .iter()
        .find(|n| n["name"] == "vm0-nic")
        .unwrap()
        .clone();
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.0.4"
    );
    assert!(
        nic["properties"]["virtualMachine"]["id"]
            .as_str()
            .unwrap()
            .ends_with("/virtualMachines/vm0")
    );

    // Public IP named after the prefix, then attached to a new secondary ipconfig.
    let prefix_id = arm.net("publicIPPrefixes", "byo");
    let pip_path = arm.net("publicIPAddresses", "byo-1234abcd");
    let pip = arm
        .put_done(&pip_path, NET, &json!({"location": "eastus", "sku": {"name": "Standard", "tier": "Regional"}, "properties": {"publicIPAddressVersion": "IPv4", "publicIPAllocationMethod": "Static", "publicIPPrefix": {"id": prefix_id}}}))
        .await;
    assert_eq!(pip["properties"]["ipAddress"], "192.0.2.0");
    let mut updated = nic.clone();
    updated["properties"]["ipConfigurations"].as_array_mut().unwrap().push(json!({
        "name": "egressgateway-uid",
        "properties": {"primary": false, "privateIPAddressVersion": "IPv4", "subnet": {"id": arm.subnet_id()}, "publicIPAddress": {"id": pip["id"]}}
    }));
    let nic_path = arm.net("networkInterfaces", "vm0-nic");
    let got = arm.put_done(&nic_path, NET, &updated).await;
    assert_eq!(
        got["properties"]["ipConfigurations"][1]["properties"]["privateIPAddress"],
        "10.0.0.5"
    );
    assert_eq!(
        got["properties"]["macAddress"],
        nic["properties"]["macAddress"]
    );
    let map = arm.emu.ip_map();
    assert_eq!(map.len(), 1);
    assert_eq!(
        (map[0].private_ip.as_str(), map[0].public_ip.as_str()),
        ("10.0.0.5", "192.0.2.0")
    );
    assert_eq!(map[0].computer_name.as_deref(), Some("gw-vm-0"));
    let pip = arm.get(&pip_path, NET).await.body;
    assert!(
        pip["properties"]["ipConfiguration"]["id"]
            .as_str()
            .unwrap()
            .ends_with("/ipConfigurations/egressgateway-uid")
    );

    // The same public IP on the spare NIC is refused; an attached public IP cannot be deleted.
    let spare_path = arm.net("networkInterfaces", "spare-nic");
    let mut spare = arm.get(&spare_path, NET).await.body;
    spare["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] =
        json!({"id": pip["id"]});
    let a = arm.put(&spare_path, NET, &spare).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "PublicIPAddressInUse")
    );
    let d = arm.delete(&pip_path, NET).await;
    assert_eq!(
        (d.status, d.code()),
        (StatusCode::BAD_REQUEST, "PublicIPAddressCannotBeDeleted")
    );
    let d = arm.delete(&nic_path, NET).await;
    assert_eq!(d.code(), "NicInUse");

    // Detach and delete: back to the seed.
    arm.put_done(&nic_path, NET, &nic).await;
    arm.delete_done(&pip_path, NET).await;
    assert_eq!(arm.resource_ids(), before);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn seed_errors_name_the_problem() {
    let bad = SEED.replace("networkInterfaces: [vm0-nic]", "networkInterfaces: [nope]");
    let seed = Seed::from_yaml(&bad, std::path::Path::new("inline")).unwrap();
    let err = egress_azure_emulator::Emulator::start(EmulatorConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("network interface nope is not defined"),
        "{err}"
    );
    let overlap = SEED.replace(
        "192.0.2.0/30",
        "192.0.2.0/30}\n  - {name: b2, resourceGroup: rg-egress, ipPrefix: 192.0.2.2/31",
    );
    let seed = Seed::from_yaml(&overlap, std::path::Path::new("inline")).unwrap();
    let err = egress_azure_emulator::Emulator::start(EmulatorConfig {
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("overlaps"), "{err}");
}
