//! Public IP prefixes and addresses: allocation, validation, in-use rules, cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, NET};
use reqwest::StatusCode;
use serde_json::json;

fn prefix_body(len: u64) -> serde_json::Value {
    json!({"location": "eastus", "sku": {"name": "Standard", "tier": "Regional"}, "properties": {"prefixLength": len, "publicIPAddressVersion": "IPv4"}})
}

#[tokio::test]
async fn prefix_length_must_be_28_to_31() {
    let arm = Arm::start().await;
    for len in [27, 32] {
        let a = arm
            .put(&arm.net("publicIPPrefixes", "p"), NET, &prefix_body(len))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.code(), "SpecifiedPrefixLengthNotSupported");
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("PrefixLength {len}"))
        );
    }
    let p = arm
        .put_done(&arm.net("publicIPPrefixes", "p"), NET, &prefix_body(28))
        .await;
    assert_eq!(p["properties"]["ipPrefix"], "203.0.113.0/28");
    let a = arm
        .put(&arm.net("publicIPPrefixes", "p"), NET, &prefix_body(29))
        .await;
    assert_eq!(a.code(), "PublicIpPrefixLengthCannotBeChanged");
    let q = arm
        .put_done(&arm.net("publicIPPrefixes", "q"), NET, &prefix_body(31))
        .await;
    assert_eq!(
        q["properties"]["ipPrefix"], "203.0.113.16/31",
        "aligned, after p"
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn public_ips_fill_a_prefix_and_block_its_deletion() {
    let arm = Arm::start().await;
    let before = arm.resource_ids();
    let prefix = arm
        .put_done(&arm.net("publicIPPrefixes", "p"), NET, &prefix_body(31))
        .await;
    let pid = prefix["id"].as_str().unwrap();
    let pip = |name: &str| arm.net("publicIPAddresses", name);
    let body = json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static", "publicIPPrefix": {"id": pid}}});
    let a = arm.put_done(&pip("a"), NET, &body).await;
    let b = arm.put_done(&pip("b"), NET, &body).await;
    assert_eq!(a["properties"]["ipAddress"], "203.0.113.0");
    assert_eq!(b["properties"]["ipAddress"], "203.0.113.1");
    let full = arm.put(&pip("c"), NET, &body).await;
    assert_eq!(
        (full.status, full.code()),
        (
            StatusCode::BAD_REQUEST,
            "PublicIpPrefixOutOfIpAddressesForPublicIp"
        )
    );
    // Re-PUT keeps the address.
    let again = arm.put_done(&pip("a"), NET, &body).await;
    assert_eq!(again["properties"]["ipAddress"], "203.0.113.0");

    let del = arm.delete(&arm.net("publicIPPrefixes", "p"), NET).await;
    assert_eq!(
        (del.status, del.code()),
        (
            StatusCode::BAD_REQUEST,
            "InUsePublicIpPrefixCannotBeDeleted"
        )
    );
    let listed = arm.get(&arm.net("publicIPPrefixes", "p"), NET).await.body;
    assert_eq!(
        listed["properties"]["publicIPAddresses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    arm.delete_done(&pip("a"), NET).await;
    arm.delete_done(&pip("b"), NET).await;
    arm.delete_done(&arm.net("publicIPPrefixes", "p"), NET)
        .await;
    assert_eq!(arm.resource_ids(), before);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn standalone_public_ips_come_from_their_own_pool_and_unknown_prefixes_are_rejected() {
    let arm = Arm::start().await;
    let s = arm
        .put_done(
            &arm.net("publicIPAddresses", "s"),
            NET,
            &json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {}}),
        )
        .await;
    assert!(
        s["properties"]["ipAddress"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100.")
    );
    assert_eq!(s["properties"]["publicIPAllocationMethod"], "Static");
    let bad = arm
        .put(&arm.net("publicIPAddresses", "t"), NET, &json!({"location": "eastus", "sku": {"name": "Standard"}, "properties": {"publicIPPrefix": {"id": arm.net("publicIPPrefixes", "missing")}}}))
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "InvalidResourceReference")
    );
    let no_loc = arm
        .put(
            &arm.net("publicIPAddresses", "u"),
            NET,
            &json!({"properties": {}}),
        )
        .await;
    assert_eq!(no_loc.code(), "LocationRequired");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn byo_prefix_from_the_seed_is_served() {
    let arm = Arm::start().await;
    let p = arm
        .get(&arm.net("publicIPPrefixes", "byo-prefix"), NET)
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.body["properties"]["ipPrefix"], "192.0.2.0/31");
    assert_eq!(p.body["properties"]["prefixLength"], 31);
    arm.emu.shutdown().await;
}
