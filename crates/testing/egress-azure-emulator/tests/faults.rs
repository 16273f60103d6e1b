//! Fault injection: 429 with Retry-After, 500, dropped connections, slow and failed LROs, by
//! operation, path, count and probability, in-process and through `/admin/faults`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{Arm, NET};
use egress_azure_emulator::{EmulatorConfig, FaultKind, FaultRule, rule_from_flags};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn throttling_and_server_errors_by_operation_and_path() {
    let arm = Arm::start().await;
    let path = arm.net("loadBalancers", "lb");
    arm.emu
        .faults()
        .add(
            FaultRule::new(FaultKind::Throttle)
                .operation("LoadBalancers.Get")
                .count(2)
                .retry_after(7),
        )
        .unwrap();
    arm.emu
        .faults()
        .add(
            FaultRule::new(FaultKind::ServerError)
                .path("*/publicIPPrefixes/*")
                .method("GET")
                .count(1),
        )
        .unwrap();
    for _ in 0..2 {
        let a = arm.get(&path, NET).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests")
        );
        assert_eq!(a.header("retry-after").as_deref(), Some("7"));
    }
    assert_eq!(
        arm.get(&path, NET).await.status,
        StatusCode::NOT_FOUND,
        "count exhausted"
    );
    let p = arm.net("publicIPPrefixes", "byo-prefix");
    let a = arm.get(&p, NET).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError")
    );
    assert_eq!(arm.get(&p, NET).await.status, StatusCode::OK);
    let log = arm.emu.request_log();
    assert_eq!(log.count("LoadBalancers.Get"), 3);
    assert_eq!(log.count_status("LoadBalancers.Get", 429), 2);
    assert_eq!(arm.emu.faults().injected(), 3);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_gives_the_client_a_transport_error() {
    let arm = Arm::start().await;
    arm.emu
        .faults()
        .add(FaultRule::new(FaultKind::DropConnection).count(1))
        .unwrap();
    let url = format!(
        "{}{}?api-version={NET}",
        arm.base,
        arm.net("publicIPPrefixes", "byo-prefix")
    );
    let err = arm.http.get(&url).send().await.unwrap_err();
    assert!(!err.is_status(), "{err:?}");
    assert_eq!(
        arm.http.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        arm.emu
            .request_log()
            .count_status("PublicIPPrefixes.Get", 0),
        1
    );
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn slow_and_failed_lros() {
    let arm = Arm::start().await;
    let faults = arm.emu.faults();
    faults
        .add(
            FaultRule::new(FaultKind::SlowLro)
                .operation("PublicIPPrefixes.CreateOrUpdate")
                .count(1)
                .extra_polls(3),
        )
        .unwrap();
    let body = json!({"location": "eastus", "properties": {"prefixLength": 31}});
    let a = arm
        .put(&arm.net("publicIPPrefixes", "slow"), NET, &body)
        .await;
    let (s, polls) = arm.wait_async(&a).await;
    assert_eq!((s["status"].as_str(), polls), (Some("Succeeded"), 5));

    faults
        .add(
            FaultRule::new(FaultKind::FailLro)
                .operation("PublicIPPrefixes.*")
                .count(2),
        )
        .unwrap();
    let a = arm
        .put(&arm.net("publicIPPrefixes", "bad"), NET, &body)
        .await;
    let (s, _) = arm.wait_async(&a).await;
    assert_eq!(s["status"], "Failed");
    assert_eq!(s["error"]["code"], "InternalOperationError");
    let got = arm.get(&arm.net("publicIPPrefixes", "bad"), NET).await.body;
    assert_eq!(got["properties"]["provisioningState"], "Failed");

    // A failed delete keeps the resource.
    let d = arm.delete(&arm.net("publicIPPrefixes", "slow"), NET).await;
    let (fin, _) = arm.wait_location(&d).await;
    assert_eq!(fin.status, StatusCode::BAD_REQUEST);
    let kept = arm.get(&arm.net("publicIPPrefixes", "slow"), NET).await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.body["properties"]["provisioningState"], "Failed");
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn admin_endpoint_installs_lists_and_clears_rules() {
    let arm = Arm::start().await;
    let admin = format!("{}/admin/faults", arm.base);
    let r = arm
        .http
        .post(&admin)
        .json(&json!({"kinds": ["429"], "operation": "PublicIPPrefixes.Get", "count": 1, "retryAfter": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let listed: serde_json::Value = arm
        .http
        .get(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["rules"][0]["rule"]["count"], 1);
    let p = arm.net("publicIPPrefixes", "byo-prefix");
    assert_eq!(arm.get(&p, NET).await.status, StatusCode::TOO_MANY_REQUESTS);
    let bad = arm
        .http
        .post(&admin)
        .json(&json!({"kinds": ["teapot"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = arm
        .http
        .post(&admin)
        .json(&json!({"kinds": ["500"], "probability": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    arm.http
        .post(&admin)
        .json(&json!({"kinds": ["500"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        arm.get(&p, NET).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        arm.http.delete(&admin).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(arm.get(&p, NET).await.status, StatusCode::OK);
    arm.emu.shutdown().await;
}

#[tokio::test]
async fn fault_rate_hits_about_that_share_of_requests() {
    let rule = rule_from_flags(0.3, "429,500", Some("PublicIPPrefixes.Get")).unwrap();
    let arm = Arm::start_with(EmulatorConfig {
        faults: vec![rule],
        ..Default::default()
    })
    .await;
    let p = arm.net("publicIPPrefixes", "byo-prefix");
    let (mut throttled, mut errors) = (0, 0);
    for _ in 0..200 {
        match arm.get(&p, NET).await.status {
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            StatusCode::INTERNAL_SERVER_ERROR => errors += 1,
            StatusCode::OK => {}
            other => panic!("unexpected {other}"),
        }
    }
    // 60 expected; the bounds are more than six standard deviations wide.
    assert!(
        (20..=110).contains(&(throttled + errors)),
        "{throttled} + {errors}"
    );
    assert!(throttled > 0 && errors > 0);
    assert_eq!(
        arm.get(&arm.net("loadBalancers", "x"), NET).await.status,
        StatusCode::NOT_FOUND,
        "other operations untouched"
    );
    arm.emu.shutdown().await;
}
