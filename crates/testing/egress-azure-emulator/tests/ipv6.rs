//! IPv6: prefixes of both versions, public IPs in them, IPv6 ipConfigurations on standalone
//! NICs and scale-set instances, seeded dual-stack nodes, and each refusal ARM makes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, COMPUTE, NET};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SEED: &str = r#"
resourceGroups: [{name: rg-egress}]
virtualNetworks:
  - name: aks-vnet
    resourceGroup: rg-egress
    addressSpace: [10.0.0.0/16, "fd00:10::/48"]
    subnets:
      - {name: aks-subnet, addressPrefix: 10.0.0.0/24, ipv6AddressPrefix: "fd00:10::/64"}
      - {name: v4-only, addressPrefix: 10.0.1.0/24}
scaleSets:
  - {name: gw-vmss, resourceGroup: rg-egress, instances: 2, subnet: aks-subnet, dualStack: true,
     tags: {aks-managed-poolName: gwpool}}
networkInterfaces:
  - {name: vm0-nic, resourceGroup: rg-egress, subnet: aks-subnet}
"#;

async fn start() -> Arm {
    Arm::start_seed(SEED).await
}

fn prefix_body(version: &str, len: u64) -> Value {
    json!({"location": "eastus", "sku": {"name": "Standard"},
        "properties": {"publicIPAddressVersion": version, "prefixLength": len}})
}

fn pip_body(version: &str, prefix: Option<&str>) -> Value {
    let mut b = json!({"location": "eastus", "sku": {"name": "Standard"},
        "properties": {"publicIPAddressVersion": version, "publicIPAllocationMethod": "Static"}});
    if let Some(p) = prefix {
        b["properties"]["publicIPPrefix"] = json!({ "id": p });
    }
    b
}

async fn refused(arm: &Arm, path: &str, api: &str, body: &Value, code: &str) {
    let a = arm.put(path, api, body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {:?}", a.body);
    assert_eq!(a.code(), code, "{path}: {:?}", a.body);
}

#[tokio::test]
async fn ipv6_prefix_lengths_are_124_to_127_and_versions_do_not_mix() {
    let arm = start().await;
    let p6 = arm.net("publicIPPrefixes", "p6");
    let p4 = arm.net("publicIPPrefixes", "p4");
    let pip = arm.net("publicIPAddresses", "pip6");
    const LEN: &str = "SpecifiedPrefixLengthNotSupported";
    const MIX: &str = "PublicIPAddressVersionDoesNotMatchPublicIPPrefix";
    let before_create = [
        (&p6, prefix_body("IPv6", 123), LEN),
        (&p6, prefix_body("IPv6", 128), LEN),
        (&p6, prefix_body("IPv6", 31), LEN),
        (&p6, prefix_body("IPv4", 124), LEN),
        (&p6, prefix_body("IPv7", 126), "InvalidRequestFormat"),
    ];
    for (path, body, code) in &before_create {
        refused(&arm, path, NET, body, code).await;
    }
    let got = arm.put_done(&p6, NET, &prefix_body("IPv6", 126)).await;
    assert_eq!(got["properties"]["ipPrefix"], "2001:db8:fffe::/126");
    assert_eq!(got["properties"]["publicIPAddressVersion"], "IPv6");
    let got4 = arm.put_done(&p4, NET, &prefix_body("IPv4", 31)).await;
    assert_eq!(got4["properties"]["ipPrefix"], "203.0.113.0/31");
    // Public IPs take their prefix's version; a mismatch is refused either way.
    let after_create = [
        (&p6, prefix_body("IPv4", 126), LEN),
        (&pip, pip_body("IPv4", Some(&p6)), MIX),
        (&pip, pip_body("IPv6", Some(&p4)), MIX),
    ];
    for (path, body, code) in &after_create {
        refused(&arm, path, NET, body, code).await;
    }
    let got = arm.put_done(&pip, NET, &pip_body("IPv6", Some(&p6))).await;
    assert_eq!(got["properties"]["ipAddress"], "2001:db8:fffe::");
    refused(
        &arm,
        &pip,
        NET,
        &pip_body("IPv4", Some(&p6)),
        "PublicIPAddressVersionCannotBeChanged",
    )
    .await;
    // Load balancer frontends stay IPv4 (the gateway tunnel is IPv4).
    let lb = json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {
        "frontendIPConfigurations": [{"name": "fe", "properties": {
            "privateIPAddressVersion": "IPv6", "subnet": {"id": arm.subnet_id()}}}]}});
    refused(
        &arm,
        &arm.net("loadBalancers", "lb6"),
        NET,
        &lb,
        "InvalidRequestFormat",
    )
    .await;
    let standalone = arm
        .put_done(
            &arm.net("publicIPAddresses", "lone6"),
            NET,
            &pip_body("IPv6", None),
        )
        .await;
    assert_eq!(standalone["properties"]["ipAddress"], "2001:db8:ffff::");
    arm.emu.shutdown().await;
}

fn ipc(name: &str, version: &str, primary: bool, subnet: &str) -> Value {
    json!({"name": name, "properties": {"primary": primary, "privateIPAddressVersion": version,
        "subnet": {"id": subnet}}})
}

#[tokio::test]
async fn standalone_nics_take_ipv6_secondaries_with_ipv6_public_ips_only() {
    let arm = start().await;
    let before = arm.resource_ids();
    let nic_path = arm.net("networkInterfaces", "vm0-nic");
    let subnet = arm.subnet_id();
    let v4_only = format!("{}/subnets/v4-only", arm.net("virtualNetworks", "aks-vnet"));
    let nic =
        |ipcs: Vec<Value>| json!({"location": "eastus", "properties": {"ipConfigurations": ipcs}});
    let primary = ipc("ipconfig1", "IPv4", true, &subnet);

    refused(
        &arm,
        &nic_path,
        NET,
        &nic(vec![ipc("v6", "IPv6", true, &subnet)]),
        "IPv6IpConfigurationCannotBePrimary",
    )
    .await;
    refused(
        &arm,
        &nic_path,
        NET,
        &nic(vec![primary.clone(), ipc("v6", "IPv6", false, &v4_only)]),
        "SubnetDoesNotHaveIPv6AddressPrefix",
    )
    .await;

    let p6 = arm.net("publicIPPrefixes", "p6");
    arm.put_done(&p6, NET, &prefix_body("IPv6", 127)).await;
    let pip6 = arm.net("publicIPAddresses", "pip6");
    let pip6_id = arm.put_done(&pip6, NET, &pip_body("IPv6", Some(&p6))).await["id"].clone();
    let pip4 = arm.net("publicIPAddresses", "pip4");
    let pip4_id = arm.put_done(&pip4, NET, &pip_body("IPv4", None)).await["id"].clone();

    // An ipConfiguration and its public IP have one version.
    for (version, pip) in [("IPv6", &pip4_id), ("IPv4", &pip6_id)] {
        let mut wrong = ipc("second", version, false, &subnet);
        wrong["properties"]["publicIPAddress"] = json!({ "id": pip });
        refused(
            &arm,
            &nic_path,
            NET,
            &nic(vec![primary.clone(), wrong]),
            "IPVersionForPublicIpAndNicIpConfigurationMustMatch",
        )
        .await;
    }

    let mut good = ipc("v6", "IPv6", false, &subnet);
    good["properties"]["publicIPAddress"] = json!({ "id": pip6_id });
    let got = arm
        .put_done(&nic_path, NET, &nic(vec![primary.clone(), good.clone()]))
        .await;
    let ipcs = &got["properties"]["ipConfigurations"];
    assert_eq!(ipcs[0]["properties"]["privateIPAddress"], "10.0.0.6");
    assert_eq!(ipcs[1]["properties"]["privateIPAddress"], "fd00:10::6");
    assert_eq!(ipcs[1]["properties"]["privateIPAddressVersion"], "IPv6");
    // The same write keeps the address (it keeps name, subnet and version).
    let again = arm
        .put_done(&nic_path, NET, &nic(vec![primary.clone(), good]))
        .await;
    assert_eq!(
        again["properties"]["ipConfigurations"][1]["properties"]["privateIPAddress"],
        "fd00:10::6"
    );

    let map = arm.emu.ip_map();
    let m = map.iter().find(|m| m.private_ip == "fd00:10::6").unwrap();
    assert_eq!(m.public_ip, "2001:db8:fffe::");
    assert!(!m.primary);
    let inv = arm.emu.inventory().to_string();
    assert!(
        inv.contains("fd00:10::6"),
        "inventory shows the NIC's IPv6 address"
    );

    // Static IPv6 addresses are checked against the subnet's IPv6 range.
    let mut st = ipc("v6", "IPv6", false, &subnet);
    st["properties"]["privateIPAllocationMethod"] = json!("Static");
    st["properties"]["privateIPAddress"] = json!("fd00:11::9");
    refused(
        &arm,
        &nic_path,
        NET,
        &nic(vec![primary.clone(), st.clone()]),
        "PrivateIPAddressNotInSubnet",
    )
    .await;
    st["properties"]["privateIPAddress"] = json!("10.0.0.9");
    refused(
        &arm,
        &nic_path,
        NET,
        &nic(vec![primary.clone(), st]),
        "InvalidPrivateIPAddressFormat",
    )
    .await;

    arm.put_done(&nic_path, NET, &nic(vec![primary])).await;
    for p in [&pip6, &pip4, &p6] {
        arm.delete_done(p, NET).await;
    }
    assert_eq!(arm.resource_ids(), before);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn dual_stack_scale_set_instances_get_ipv6_and_an_ipv6_prefix_public_ip() {
    let arm = start().await;
    let vmss = "virtualMachineScaleSets/gw-vmss";
    let nic_of = |i: u32| {
        arm.compute(&format!(
            "{vmss}/virtualMachines/{i}/networkInterfaces/gw-vmss"
        ))
    };
    let seeded = arm.get(&nic_of(1), common::VMSS_NET).await.body;
    let ipcs = &seeded["properties"]["ipConfigurations"];
    assert_eq!(ipcs[1]["name"], "ipconfigv6");
    assert_eq!(ipcs[1]["properties"]["privateIPAddress"], "fd00:10::5");
    assert_eq!(ipcs[1]["properties"]["primary"], false);

    let p6 = arm.net("publicIPPrefixes", "p6");
    let p6_id = arm.put_done(&p6, NET, &prefix_body("IPv6", 127)).await["id"].clone();
    let p4 = arm.net("publicIPPrefixes", "p4");
    let p4_id = arm.put_done(&p4, NET, &prefix_body("IPv4", 31)).await["id"].clone();
    let subnet = arm.subnet_id();
    let cfg = |pip_version: Option<&str>, prefix: &Value| {
        let mut egress = ipc("egressgateway-v6", "IPv6", false, &subnet);
        let mut pcfg =
            json!({"name": "egressgateway-v6", "properties": {"publicIPPrefix": {"id": prefix}}});
        if let Some(v) = pip_version {
            pcfg["properties"]["publicIPAddressVersion"] = json!(v);
        }
        egress["properties"]["publicIPAddressConfiguration"] = pcfg;
        json!([{"name": "gw-vmss", "properties": {"primary": true, "ipConfigurations": [
            ipc("ipconfig1", "IPv4", true, &subnet), ipc("ipconfigv6", "IPv6", false, &subnet), egress]}}])
    };
    let inst = arm.compute(&format!("{vmss}/virtualMachines/0"));
    let body = |c: Value| json!({"properties": {"networkProfileConfiguration": {"networkInterfaceConfigurations": c}}});
    // Without a version the public IP configuration is IPv4 (the schema's default).
    refused(
        &arm,
        &inst,
        COMPUTE,
        &body(cfg(None, &p6_id)),
        "IPVersionForPublicIpAndNicIpConfigurationMustMatch",
    )
    .await;
    refused(
        &arm,
        &inst,
        COMPUTE,
        &body(cfg(Some("IPv6"), &p4_id)),
        "PublicIPAddressVersionDoesNotMatchPublicIPPrefix",
    )
    .await;
    let a = arm
        .put(&inst, COMPUTE, &body(cfg(Some("IPv6"), &p6_id)))
        .await;
    assert!(a.status.is_success(), "{:?}", a.body);
    arm.finish(&a).await;
    let nic = arm.get(&nic_of(0), common::VMSS_NET).await.body;
    let egress = &nic["properties"]["ipConfigurations"][2];
    assert_eq!(egress["properties"]["privateIPAddress"], "fd00:10::6");
    let map = arm.emu.ip_map();
    let m = map.iter().find(|m| m.private_ip == "fd00:10::6").unwrap();
    assert_eq!(m.public_ip, "2001:db8:fffe::");
    assert_eq!(m.computer_name.as_deref(), Some("gw-vmss000000"));
    // IMDS lists IPv6 addresses under `ipv6`.
    let imds = arm
        .send(
            reqwest::Method::GET,
            "/imds/gw-vmss000000/metadata/instance?api-version=2021-02-01",
            "",
            None,
            &[("Metadata", "true")],
        )
        .await;
    let doc = imds.body;
    let nic = &doc["network"]["interface"][0];
    let v6: Vec<&str> = nic["ipv6"]["ipAddress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["privateIpAddress"].as_str().unwrap())
        .collect();
    assert_eq!(v6, ["fd00:10::4", "fd00:10::6"]);
    assert_eq!(nic["ipv4"]["ipAddress"].as_array().unwrap().len(), 1);
    arm.emu.shutdown().await;
}
