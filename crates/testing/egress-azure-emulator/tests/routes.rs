//! Routes the SDK flows need besides the operator's: HEAD on a resource group, subscription
//! and resource-group lists with `nextLink` paging, instance views and `$expand=instanceView`,
//! scale-set NIC / ipConfiguration / public IP reads; and ARM's errors for unknown routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, COMPUTE, NET, VMSS_NET};
use egress_azure_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Follows `nextLink` to the end; returns the items and the number of pages.
async fn all_pages(arm: &Arm, path: &str, api: &str) -> (Vec<Value>, usize) {
    let mut page = arm.get(path, api).await;
    let mut items = Vec::new();
    let mut pages = 1;
    loop {
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        items.extend(page.body["value"].as_array().unwrap().iter().cloned());
        match page.body["nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&arm.base) && next.contains("api-version="),
                    "{next}"
                );
                page = arm.fetch(next).await;
                pages += 1;
            }
            None => return (items, pages),
        }
    }
}

#[tokio::test]
async fn resource_group_head_and_lists_page_with_next_link() {
    let arm = Arm::start_with(EmulatorConfig {
        page_size: 2,
        ..Default::default()
    })
    .await;
    let rg = format!("/subscriptions/{}/resourcegroups/rg-egress", arm.sub);
    let head = arm.send(Method::HEAD, &rg, "2025-04-01", None, &[]).await;
    assert_eq!(head.status, StatusCode::NO_CONTENT);
    let head = arm
        .send(Method::HEAD, &format!("{rg}x"), "2025-04-01", None, &[])
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    for i in 0..5 {
        arm.put_done(
            &arm.net("publicIPAddresses", &format!("ip{i}")),
            NET,
            &json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {}}),
        )
        .await;
    }
    let (items, pages) = all_pages(
        &arm,
        arm.net("publicIPAddresses", "").trim_end_matches('/'),
        NET,
    )
    .await;
    assert_eq!((items.len(), pages), (5, 3));
    let all = format!(
        "/subscriptions/{}/providers/Microsoft.Network/publicIPAddresses",
        arm.sub
    );
    let (items, _) = all_pages(&arm, &all, "2026-03-01").await;
    assert_eq!(items.len(), 5, "ListAll sees the group's addresses");
    let vmss_all = format!(
        "/subscriptions/{}/providers/Microsoft.Compute/virtualMachineScaleSets",
        arm.sub
    );
    let (items, _) = all_pages(&arm, &vmss_all, "2026-04-01").await;
    assert_eq!(items[0]["name"], "gw-vmss");
    let (vms, pages) = all_pages(
        &arm,
        &arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines"),
        COMPUTE,
    )
    .await;
    assert_eq!((vms.len(), pages), (2, 1));
    let bad = arm.get(&all, "2026-03-01").await;
    let next = bad.body["nextLink"]
        .as_str()
        .unwrap()
        .replace("skiptoken=2", "skiptoken=99");
    assert_eq!(arm.fetch(&next).await.code(), "InvalidSkipToken");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn instance_views_and_scale_set_network_reads() {
    let arm = Arm::start().await;
    let vm = arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/1");
    let view = arm.get(&format!("{vm}/instanceView"), COMPUTE).await;
    assert_eq!(view.status, StatusCode::OK);
    assert_eq!(view.body["computerName"], "gw-vmss000001");
    assert_eq!(view.body["statuses"][1]["code"], "PowerState/running");
    let expanded = arm
        .get(&format!("{vm}?$expand=instanceView"), COMPUTE)
        .await;
    assert_eq!(
        expanded.body["properties"]["instanceView"]["computerName"],
        "gw-vmss000001"
    );
    assert_eq!(
        arm.get(&vm, COMPUTE).await.body["properties"]["instanceView"],
        Value::Null
    );
    let list = arm
        .get(
            &arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines?$expand=instanceView"),
            COMPUTE,
        )
        .await;
    assert!(list.body["value"][0]["properties"]["instanceView"]["statuses"].is_array());

    let nics = arm.get(&format!("{vm}/networkInterfaces"), VMSS_NET).await;
    assert_eq!(
        nics.body["value"].as_array().unwrap().len(),
        1,
        "{:?}",
        nics.body
    );
    let all = arm
        .get(
            &arm.compute("virtualMachineScaleSets/gw-vmss/networkInterfaces"),
            VMSS_NET,
        )
        .await;
    assert_eq!(all.body["value"].as_array().unwrap().len(), 2);
    let nic = format!("{vm}/networkInterfaces/gw-vmss");
    let ipcs = arm.get(&format!("{nic}/ipConfigurations"), VMSS_NET).await;
    assert_eq!(ipcs.body["value"][0]["name"], "ipconfig1");
    let ipc = arm
        .get(&format!("{nic}/ipConfigurations/ipconfig1"), VMSS_NET)
        .await;
    assert_eq!(ipc.body["properties"]["privateIPAddress"], "10.0.0.5");
    let pips = arm
        .get(
            &format!("{nic}/ipConfigurations/ipconfig1/publicIPAddresses"),
            VMSS_NET,
        )
        .await;
    assert_eq!(pips.body["value"], json!([]));
    let missing = arm
        .get(
            &format!("{nic}/ipConfigurations/ipconfig1/publicIPAddresses/x"),
            VMSS_NET,
        )
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );
    let wrong = arm.get(&nic, NET).await;
    assert_eq!(
        wrong.code(),
        "NoRegisteredProviderFound",
        "scale-set NICs are pinned to 2018-10-01"
    );
    let standalone = arm
        .get(arm.net("networkInterfaces", "").trim_end_matches('/'), NET)
        .await;
    assert_eq!(
        standalone.body["value"],
        json!([]),
        "instance NICs are not top-level NICs"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_answer_arm_errors_not_api_version_errors() {
    let arm = Arm::start().await;
    let rg = format!(
        "/subscriptions/{}/resourceGroups/rg-egress/providers",
        arm.sub
    );
    let t = arm
        .get(
            &format!("{rg}/Microsoft.Network/natGateways/g"),
            "2099-01-01",
        )
        .await;
    assert_eq!(
        (t.status, t.code()),
        (StatusCode::BAD_REQUEST, "InvalidResourceType")
    );
    assert!(
        t.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'natGateways'")
    );
    let n = arm
        .get(&format!("{rg}/Microsoft.Storage/storageAccounts/a"), NET)
        .await;
    assert_eq!(
        (n.status, n.code()),
        (StatusCode::BAD_REQUEST, "InvalidResourceNamespace")
    );
    let p = arm.get("/nothing/here", "").await;
    assert_eq!((p.status, p.code()), (StatusCode::NOT_FOUND, "NotFound"));
    let m = arm
        .send(
            Method::PATCH,
            &arm.compute("virtualMachineScaleSets/gw-vmss/virtualMachines/0"),
            COMPUTE,
            Some(&json!({})),
            &[],
        )
        .await;
    assert_eq!(
        m.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "instances have no PATCH in the spec"
    );
    let d = arm
        .delete(&arm.compute("virtualMachineScaleSets/gw-vmss"), COMPUTE)
        .await;
    assert_eq!(d.status, StatusCode::METHOD_NOT_ALLOWED);
    arm.emu.shutdown().await;
}
