//! ARM protocol behaviour: api-version checks, ETags, error bodies, case-insensitive paths,
//! resource groups, subnets, unknown types, LRO polling counts, request log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, NET};
use egress_azure_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn api_version_is_required_and_checked_per_resource_type() {
    let arm = Arm::start().await;
    let path = arm.net("publicIPPrefixes", "byo-prefix");
    let a = arm.get(&path, "").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "MissingApiVersionParameter")
    );
    let a = arm.get(&path, "v1").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "InvalidApiVersionParameter")
    );
    // Unknown for the type: what ARM's front door answers, naming the supported versions.
    for v in ["2019-01-01", "2017-03-01"] {
        let a = arm.get(&path, v).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "NoRegisteredProviderFound"),
            "{v}"
        );
        let msg = a.body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("for type 'publicIPPrefixes'") && msg.contains("2024-05-01"),
            "{msg}"
        );
    }
    // Every stable version of the spec works, old and the current SDK defaults.
    for v in ["2018-07-01", "2023-09-01", "2026-03-01"] {
        assert_eq!(arm.get(&path, v).await.status, StatusCode::OK, "{v}");
    }
    for v in ["2015-06-15", "2024-07-01", "2026-04-01"] {
        assert_eq!(
            arm.get(&arm.compute("virtualMachineScaleSets"), v)
                .await
                .status,
            StatusCode::OK,
            "{v}"
        );
    }
    let compute = arm
        .get(&arm.compute("virtualMachineScaleSets"), "2024-05-01")
        .await;
    assert_eq!(
        compute.code(),
        "NoRegisteredProviderFound",
        "Network versions are not Compute versions"
    );
    let rg = format!("/subscriptions/{}/resourcegroups/rg-egress", arm.sub);
    assert_eq!(arm.get(&rg, "2025-04-01").await.status, StatusCode::OK);
    assert_eq!(
        arm.get(&rg, "2099-01-01").await.code(),
        "InvalidApiVersionParameter"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn if_match_mismatch_is_412_and_match_succeeds() {
    let arm = Arm::start().await;
    let path = arm.net("publicIPPrefixes", "p");
    let body = json!({"location": "eastus", "properties": {"prefixLength": 31}});
    let created = arm.put_done(&path, NET, &body).await;
    let etag = created["etag"].as_str().unwrap().to_owned();
    let stale = arm
        .send(
            Method::PUT,
            &path,
            NET,
            Some(&body),
            &[("If-Match", "W/\"stale\"")],
        )
        .await;
    assert_eq!(
        (stale.status, stale.code()),
        (StatusCode::PRECONDITION_FAILED, "PreconditionFailed")
    );
    let ok = arm
        .send(Method::PUT, &path, NET, Some(&body), &[("If-Match", &etag)])
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let new_etag = ok.header("etag").unwrap();
    assert_ne!(new_etag, etag);
    let del = arm
        .send(Method::DELETE, &path, NET, None, &[("If-Match", &etag)])
        .await;
    assert_eq!(
        del.status,
        StatusCode::PRECONDITION_FAILED,
        "old etag no longer matches"
    );
    let none = arm
        .send(
            Method::PUT,
            &path,
            NET,
            Some(&body),
            &[("If-None-Match", "*")],
        )
        .await;
    assert_eq!(none.status, StatusCode::PRECONDITION_FAILED);
    let missing = arm
        .send(
            Method::PUT,
            &arm.net("publicIPPrefixes", "q"),
            NET,
            Some(&body),
            &[("If-Match", "*")],
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::PRECONDITION_FAILED,
        "If-Match on a missing resource"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn paths_and_ids_are_case_insensitive() {
    let arm = Arm::start().await;
    let upper = format!(
        "/SUBSCRIPTIONS/{}/RESOURCEGROUPS/RG-EGRESS/PROVIDERS/microsoft.network/PUBLICIPPREFIXES/BYO-PREFIX",
        arm.sub
    );
    let a = arm.get(&upper, NET).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["name"], "byo-prefix", "canonical casing kept");
    let subnet = arm.get(&arm.subnet_id().to_uppercase(), NET).await;
    assert_eq!(subnet.status, StatusCode::OK);
    assert_eq!(subnet.body["properties"]["addressPrefix"], "10.0.0.0/24");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn resource_groups_are_created_with_put_and_checked() {
    let arm = Arm::start().await;
    let rg = format!("/subscriptions/{}/resourcegroups/rg-new", arm.sub);
    let a = arm.get(&rg, "2021-04-01").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, "ResourceGroupNotFound")
    );
    let in_missing = arm
        .get(
            &format!("{rg}/providers/Microsoft.Network/loadBalancers/x"),
            NET,
        )
        .await;
    assert_eq!(in_missing.code(), "ResourceGroupNotFound");
    let c = arm
        .put(
            &rg,
            "2021-04-01",
            &json!({"location": "eastus", "tags": {"a": "b"}}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED);
    assert_eq!(
        c.body["id"],
        format!("/subscriptions/{}/resourceGroups/rg-new", arm.sub)
    );
    assert_eq!(
        arm.put(&rg, "2021-04-01", &json!({"location": "eastus"}))
            .await
            .status,
        StatusCode::OK
    );
    let p = arm
        .put_done(
            &format!("{rg}/providers/Microsoft.Network/publicIPPrefixes/p"),
            NET,
            &json!({"location": "eastus", "properties": {"prefixLength": 30}}),
        )
        .await;
    assert!(
        p["id"]
            .as_str()
            .unwrap()
            .contains("/resourceGroups/rg-new/")
    );
    let wrong_sub = arm
        .get(
            "/subscriptions/11111111-0000-0000-0000-000000000000/resourcegroups/rg-egress",
            "2021-04-01",
        )
        .await;
    assert_eq!(wrong_sub.code(), "SubscriptionNotFound");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_and_unknown_types_get_arm_errors() {
    let arm = Arm::start().await;
    let url = format!(
        "{}{}?api-version={NET}",
        arm.base,
        arm.net("loadBalancers", "x")
    );
    let a = arm.http.put(&url).body("{not json").send().await.unwrap();
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = a.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");
    let t = arm.get(&arm.net("natGateways", "x"), NET).await;
    assert_eq!(t.code(), "InvalidResourceType");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn lro_polls_setting_and_request_log_counts() {
    let arm = Arm::start_with(EmulatorConfig {
        lro_polls: 4,
        retry_after: 1,
        ..Default::default()
    })
    .await;
    let path = arm.net("publicIPPrefixes", "p");
    let a = arm
        .put(
            &path,
            NET,
            &json!({"location": "eastus", "properties": {"prefixLength": 31}}),
        )
        .await;
    assert_eq!(a.header("retry-after").as_deref(), Some("1"));
    let (s, polls) = arm.wait_async(&a).await;
    assert_eq!((s["status"].as_str(), polls), (Some("Succeeded"), 4));
    let zero = Arm::start_with(EmulatorConfig {
        lro_polls: 0,
        ..Default::default()
    })
    .await;
    let z = zero
        .put(
            &zero.net("publicIPPrefixes", "p"),
            NET,
            &json!({"location": "eastus", "properties": {"prefixLength": 31}}),
        )
        .await;
    assert_eq!(z.body["properties"]["provisioningState"], "Succeeded");
    zero.emu.shutdown().await;

    let log = arm.emu.request_log();
    assert_eq!(log.count("PublicIPPrefixes.CreateOrUpdate"), 1);
    assert_eq!(log.count("Operations.GetStatus"), 4);
    assert_eq!(log.count_status("PublicIPPrefixes.CreateOrUpdate", 201), 1);
    let over_http: serde_json::Value = arm
        .http
        .get(format!("{}/admin/requests", arm.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http["counts"]["Operations.GetStatus"], 4);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn auth_can_be_required() {
    let arm = Arm::start_with(EmulatorConfig {
        require_auth: true,
        ..Default::default()
    })
    .await;
    let path = arm.net("publicIPPrefixes", "byo-prefix");
    let a = arm.get(&path, NET).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNAUTHORIZED, "AuthenticationFailed")
    );
    let tok: serde_json::Value = arm
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            arm.emu.authority_url(),
            egress_azure_emulator::DEFAULT_TENANT
        ))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", tok["access_token"].as_str().unwrap());
    let ok = arm
        .send(Method::GET, &path, NET, None, &[("Authorization", &bearer)])
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    arm.emu.shutdown().await;
}
