//! Retry and long-running-operation behaviour against a scripted ARM server: 429/500 with
//! Retry-After, budget exhaustion, long Retry-After surfaced as Throttled, dropped connections,
//! LRO failure/cancel/time-out and plain-http refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use egress_azure::models::LoadBalancer;
use egress_azure::{
    ArmClient, ErrorCategory, LoadBalancers, LroPolicy, PublicIpPrefixes, RetryPolicy,
};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{Reply, ScriptedArm, fast_lro, fast_retry, rg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LB_PATH: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb";

#[tokio::test]
async fn throttling_and_server_errors_are_retried_honouring_retry_after() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        LB_PATH,
        vec![
            Reply::error(429, "TooManyRequests", "slow down").header("retry-after", "0"),
            Reply::error(500, "InternalServerError", "oops"),
            Reply::error(429, "TooManyRequests", "slow down").header("retry-after-ms", "30"),
            Reply::json(200, json!({"name": "lb"})),
        ],
    );
    let client = arm.client();
    let started = Instant::now();
    let lb = client
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap();
    assert_eq!(lb.name.as_deref(), Some("lb"));
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "retry-after-ms must be waited"
    );
    let m = client.metrics();
    assert_eq!(m.throttled("load_balancers.get"), 2);
    assert_eq!(m.retries("load_balancers.get"), 3);
    assert_eq!(m.requests("load_balancers.get", "GET", "500"), 1);
    assert_eq!(m.requests("load_balancers.get", "GET", "200"), 1);
}

#[tokio::test]
async fn persistent_5xx_exhausts_the_budget_as_transient() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        LB_PATH,
        vec![Reply::error(503, "ServiceUnavailable", "down")],
    );
    let err = arm
        .client()
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Transient);
    assert_eq!(err.code(), "ServiceUnavailable");
    assert_eq!(
        arm.count("GET", LB_PATH),
        1 + fast_retry().max_retries as usize
    );

    // Time budget: each wait is 200 ms, budget 300 ms => exactly one retry.
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        LB_PATH,
        vec![Reply::error(500, "InternalServerError", "x").header("retry-after-ms", "200")],
    );
    let retry = RetryPolicy {
        max_retries: 100,
        budget: Duration::from_millis(300),
        ..fast_retry()
    };
    let err = arm
        .client_with(retry, fast_lro())
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Transient);
    assert_eq!(arm.count("GET", LB_PATH), 2);
}

#[tokio::test]
async fn long_retry_after_is_surfaced_as_throttled_for_the_reconciler() {
    let arm = ScriptedArm::start().await;
    arm.on(
        "GET",
        LB_PATH,
        vec![Reply::error(429, "TooManyRequests", "later").header("retry-after", "90")],
    );
    let err = arm
        .client()
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(90)));
    assert_eq!(arm.count("GET", LB_PATH), 1);
}

#[tokio::test]
async fn async_operation_failure_keeps_arm_code_and_cancel_is_conflict() {
    let arm = ScriptedArm::start().await;
    let op = "/ops/1";
    arm.on(
        "PUT",
        LB_PATH,
        vec![Reply::json(201, json!({})).header("azure-asyncoperation", arm.url(op))],
    );
    arm.on(
        "GET",
        op,
        vec![
            Reply::json(200, json!({"status": "InProgress"})),
            Reply::json(200, json!({"status": "Failed", "error": {"code": "RulesUseSameBackendPortProtocolAndPool", "message": "dup"}})),
        ],
    );
    let client = arm.client();
    let err = client
        .create_or_update_load_balancer(&rg().load_balancer("lb"), &LoadBalancer::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Permanent);
    assert_eq!(err.code(), "RulesUseSameBackendPortProtocolAndPool");
    assert_eq!(
        client
            .metrics()
            .lro_count("load_balancers.create_or_update", "failed"),
        1
    );

    arm.on(
        "GET",
        op,
        vec![Reply::json(200, json!({"status": "Canceled"}))],
    );
    let err = client
        .create_or_update_load_balancer(&rg().load_balancer("lb"), &LoadBalancer::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Conflict);
}

#[tokio::test]
async fn lro_that_never_finishes_times_out_within_its_bound() {
    let arm = ScriptedArm::start().await;
    let path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/publicIPPrefixes/p";
    let op = "/ops/slow";
    arm.on(
        "DELETE",
        path,
        vec![Reply::empty(202).header("azure-asyncoperation", arm.url(op))],
    );
    arm.on(
        "GET",
        op,
        vec![Reply::json(200, json!({"status": "InProgress"})).header("retry-after", "0")],
    );
    let lro = LroPolicy {
        max_duration: Duration::from_millis(200),
        ..fast_lro()
    };
    let client = arm.client_with(fast_retry(), lro);
    let started = Instant::now();
    let err = client
        .delete_public_ip_prefix(&rg().public_ip_prefix("p"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.category(), ErrorCategory::Transient);
    assert_eq!(err.code(), "LroTimeout");
    assert_eq!(
        client
            .metrics()
            .lro_count("public_ip_prefixes.delete", "timeout"),
        1
    );
}

#[tokio::test]
async fn location_poll_error_status_fails_the_operation() {
    let arm = ScriptedArm::start().await;
    let op = "/ops/loc";
    arm.on(
        "PUT",
        LB_PATH,
        vec![Reply::empty(202).header("location", arm.url(op))],
    );
    arm.on(
        "GET",
        op,
        vec![
            Reply::empty(202),
            Reply::error(400, "InvalidFrontend", "bad"),
        ],
    );
    let err = arm
        .client()
        .create_or_update_load_balancer(&rg().load_balancer("lb"), &LoadBalancer::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Permanent);
    assert_eq!(err.code(), "InvalidFrontend");
}

/// A server that drops the first connection mid-request, then answers.
async fn flaky_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        for i in 0.. {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let _ = sock.read(&mut buf).await;
            if i == 0 {
                drop(sock);
                continue;
            }
            let body = r#"{"name":"lb"}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        }
    });
    (base, task)
}

#[tokio::test]
async fn dropped_connection_is_retried_for_idempotent_requests() {
    let (base, task) = flaky_server().await;
    let client = ArmClient::builder(base.parse().unwrap())
        .static_token("t")
        .retry(fast_retry())
        .build()
        .unwrap();
    let lb = client
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap();
    assert_eq!(lb.name.as_deref(), Some("lb"));
    assert_eq!(
        client
            .metrics()
            .requests("load_balancers.get", "GET", "error"),
        1
    );
    task.abort();
}

#[tokio::test]
async fn bearer_token_over_plain_http_is_refused_unless_allowed() {
    let arm = ScriptedArm::start().await;
    let client = ArmClient::builder(arm.base.parse().unwrap())
        .static_token("secret")
        .allow_insecure_http(false)
        .retry(fast_retry())
        .build()
        .unwrap();
    let err = client
        .get_load_balancer(&rg().load_balancer("lb"))
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Permanent);
    assert!(err.to_string().contains("plain http"), "{err}");
    assert!(arm.log().is_empty(), "no request may leave with the token");
}
