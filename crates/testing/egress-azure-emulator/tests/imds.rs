//! IMDS per simulated VM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Arm;
use reqwest::StatusCode;

#[tokio::test]
async fn instance_metadata_for_a_scale_set_instance() {
    let arm = Arm::start().await;
    let base = arm.emu.imds_url("gw-vmss000001");
    let url = format!("{base}/metadata/instance?api-version=2021-10-01&format=json");
    let no_header = arm.http.get(&url).send().await.unwrap();
    assert_eq!(no_header.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = no_header.json().await.unwrap();
    assert_eq!(
        body["error"],
        "Bad request. Required metadata header not specified"
    );

    let r = arm
        .http
        .get(&url)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    let c = &doc["compute"];
    assert_eq!(c["name"], "gw-vmss_1");
    assert_eq!(c["osProfile"]["computerName"], "gw-vmss000001");
    assert_eq!(c["vmScaleSetName"], "gw-vmss");
    assert_eq!(c["resourceGroupName"], "rg-egress");
    assert_eq!(c["subscriptionId"], arm.sub);
    assert_eq!(c["location"], "eastus");
    assert!(
        c["tags"]
            .as_str()
            .unwrap()
            .contains("aks-managed-poolName:gwpool")
    );
    let tags = c["tagsList"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["name"] == "aks-managed-gatewayIPPrefixSize" && t["value"] == "31")
    );
    let ip = &doc["network"]["interface"][0]["ipv4"];
    assert_eq!(ip["ipAddress"][0]["privateIpAddress"], "10.0.0.5");
    assert_eq!(ip["subnet"][0]["prefix"], "24");

    let sub = arm
        .http
        .get(format!(
            "{base}/metadata/instance/compute/vmScaleSetName?api-version=2021-10-01"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(sub.json::<serde_json::Value>().await.unwrap(), "gw-vmss");

    let lb = arm
        .http
        .get(format!(
            "{base}/metadata/loadbalancer?api-version=2020-10-01"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(lb.status(), StatusCode::OK);
    assert!(lb.json::<serde_json::Value>().await.unwrap()["loadbalancer"].is_object());

    let no_version = arm
        .http
        .get(format!("{base}/metadata/instance"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), StatusCode::BAD_REQUEST);
    let unknown = arm
        .http
        .get(format!(
            "{}/metadata/instance?api-version=2021-10-01",
            arm.emu.imds_url("nobody")
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(arm.emu.request_log().count("Imds.Instance"), 5);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn root_metadata_path_finds_the_vm_by_header_and_tokens_are_served() {
    let arm = Arm::start().await;
    let r = arm
        .http
        .get(format!(
            "{}/metadata/instance?api-version=2021-10-01",
            arm.base
        ))
        .header("Metadata", "true")
        .header("x-emulator-vm", "gw-vmss000000")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["compute"]["name"], "gw-vmss_0");
    let t = arm
        .http
        .get(format!("{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/", arm.base))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    let tok: serde_json::Value = t.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["resource"], "https://management.azure.com/");
    let wrong_tenant = arm
        .http
        .post(format!("{}/other-tenant/oauth2/v2.0/token", arm.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_tenant.status(), StatusCode::BAD_REQUEST);
    arm.emu.shutdown().await;
}
