//! Fault injection (in-process and through the admin endpoint) and the request log.

use std::time::{Duration, Instant};

use egress_apiserver::{FaultAction, FaultRule};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use crate::common::{raw, start};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}),
    )
    .unwrap()
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn injected_errors_are_per_verb_and_resource_and_expire() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    server
        .faults()
        .inject(FaultRule::error("create", "configmaps", 500).times(1));
    assert_eq!(
        code(
            api.create(&PostParams::default(), &cm("a"))
                .await
                .unwrap_err()
        ),
        500
    );
    api.list(&ListParams::default()).await.unwrap();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let throttle = FaultRule {
        action: FaultAction::Error {
            code: 429,
            retry_after_seconds: Some(1),
            message: None,
        },
        ..FaultRule::error("list", "configmaps", 429)
    };
    server.faults().inject(throttle.clone().times(1));
    let (status, headers, body) = raw(
        &server,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "1");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(body["details"]["retryAfterSeconds"], 1);
    // kube's client honours Retry-After and retries 429s: one throttled attempt, then success.
    server.faults().inject(throttle.times(1));
    let before = server.request_log().count("list", "configmaps");
    let t = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "waited for Retry-After"
    );
    assert_eq!(server.request_log().count("list", "configmaps") - before, 2);
}

#[tokio::test]
async fn delays_timeouts_and_pause() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    server.faults().inject(
        FaultRule {
            action: FaultAction::Delay { millis: 300 },
            ..FaultRule::error("get", "configmaps", 0)
        }
        .times(1),
    );
    let t = Instant::now();
    assert_eq!(code(api.get("missing").await.unwrap_err()), 404);
    assert!(t.elapsed() >= Duration::from_millis(300));
    server.faults().inject(
        FaultRule {
            action: FaultAction::Timeout { millis: 50 },
            ..FaultRule::error("get", "configmaps", 0)
        }
        .times(1),
    );
    let (status, _, body) = raw(
        &server,
        "GET",
        "/api/v1/namespaces/default/configmaps/missing",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("\"reason\":\"Timeout\""), "{body}");
    server.faults().pause();
    let pending = tokio::spawn({
        let api = api.clone();
        async move {
            api.list(&ListParams::default())
                .await
                .map(|l| l.items.len())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished(), "requests wait while paused");
    server.faults().resume();
    let listed = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(listed.is_ok());
}

#[tokio::test]
async fn admin_endpoint_controls_faults_and_reports_requests() {
    let server = start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "default");
    let rule = r#"{"verb":"create","resource":"configmaps","action":{"type":"error","code":500}}"#;
    let (status, _, body) = raw(&server, "POST", "/admin/faults", &[], Some(rule)).await;
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        code(
            api.create(&PostParams::default(), &cm("x"))
                .await
                .unwrap_err()
        ),
        500
    );
    let (status, _, _) = raw(&server, "DELETE", &format!("/admin/faults/{id}"), &[], None).await;
    assert_eq!(status, 200);
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let (status, _, _) = raw(&server, "POST", "/admin/faults", &[], Some("{\"verb\": 1}")).await;
    assert_eq!(status, 400);
    let (_, _, body) = raw(&server, "GET", "/admin/requests", &[], None).await;
    let log: Value = serde_json::from_str(&body).unwrap();
    let creates: u64 = log["counters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verb"] == "create" && c["resource"] == "configmaps")
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(creates, 2);
    assert_eq!(server.request_log().count("create", "configmaps"), 2);
    assert!(server.request_log().writes("") >= 2);
    let recent = server.request_log().recent();
    let last_create = recent.iter().rev().find(|r| r.verb == "create").unwrap();
    assert_eq!(
        (last_create.code, last_create.namespace.as_deref()),
        (201, Some("default"))
    );
    let (status, _, _) = raw(&server, "POST", "/admin/pause", &[], None).await;
    assert_eq!(status, 200);
    assert!(server.faults().is_paused());
    raw(&server, "POST", "/admin/resume", &[], None).await;
    assert!(!server.faults().is_paused());
}

#[tokio::test]
async fn request_log_counts_per_user_agent_and_subresource() {
    let server = start().await;
    let mut config = kube::Config::new(server.url().parse().unwrap());
    config.headers.push((
        http::header::USER_AGENT,
        "my-controller/1.0".parse().unwrap(),
    ));
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("ua")).await.unwrap();
    let counters = server.request_log().counters();
    assert!(
        counters
            .iter()
            .any(|c| c.user_agent.starts_with("my-controller") && c.verb == "create"),
        "{counters:?}"
    );
    assert_eq!(server.request_log().writes("my-controller"), 1);
}
