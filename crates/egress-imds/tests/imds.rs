//! The IMDS client against a scripted server (retries on 429 with Retry-After, the Metadata
//! header, api-versions, final errors, a time-out) and against the Azure emulator's IMDS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use egress_imds::{ImdsClient, ImdsError, ImdsRetry};
use http_body_util::Full;
use hyper::{Request, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer: status, Retry-After, body.
type Scripted = (u16, Option<&'static str>, Value);

/// Replies per path (the last one sticks) and a log of (path?query, Metadata header).
#[derive(Default)]
struct Script {
    replies: HashMap<String, VecDeque<Scripted>>,
    seen: Vec<(String, Option<String>)>,
    delay: Duration,
}

async fn serve(script: Arc<Mutex<Script>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let script = script.clone();
                    async move {
                        let (reply, delay) = {
                            let mut s = script.lock().unwrap();
                            let path = req.uri().path().to_string();
                            let meta = req
                                .headers()
                                .get("metadata")
                                .map(|v| v.to_str().unwrap().to_string());
                            s.seen.push((
                                format!("{path}?{}", req.uri().query().unwrap_or("")),
                                meta,
                            ));
                            let q = s.replies.get_mut(&path).unwrap();
                            let r = if q.len() > 1 {
                                q.pop_front().unwrap()
                            } else {
                                q[0].clone()
                            };
                            (r, s.delay)
                        };
                        tokio::time::sleep(delay).await;
                        let mut resp = Response::builder().status(reply.0);
                        if let Some(ra) = reply.1 {
                            resp = resp.header("retry-after", ra);
                        }
                        Ok::<_, hyper::Error>(
                            resp.body(Full::new(Bytes::from(reply.2.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    base
}

fn fast() -> ImdsRetry {
    ImdsRetry {
        max_retries: 3,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        total_delay: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn instance_and_load_balancer_metadata_with_retries() {
    let script = Arc::new(Mutex::new(Script::default()));
    script.lock().unwrap().replies.insert(
        "/metadata/instance".into(),
        VecDeque::from([
            (429, Some("0"), json!({"error": "busy"})),
            (410, None, json!({"error": "booting"})),
            (200, None, json!({"compute": {
                "name": "gw_0", "vmScaleSetName": "gw", "resourceGroupName": "rg",
                "subscriptionId": "s", "location": "eastus", "osProfile": {"computerName": "gw000000"},
                "tags": "ignored:because-list-wins",
                "tagsList": [{"name": "aks-managed-poolName", "value": "gwpool"}, {"name": "k", "value": "a;b:c"}]
            }})),
        ]),
    );
    script.lock().unwrap().replies.insert(
        "/metadata/loadbalancer".into(),
        VecDeque::from([(200, None, json!({"loadbalancer": {"publicIpAddresses": [
            {"frontendIpAddress": "20.0.0.1", "privateIpAddress": "10.0.0.4"}], "inboundRules": [], "outboundRules": []}}))]),
    );
    let base = serve(script.clone()).await;
    let imds = ImdsClient::new(&base).unwrap().with_retry(fast());
    let md = imds.instance().await.unwrap();
    assert_eq!(md.vm_scale_set_name, "gw");
    assert_eq!(md.computer_name, "gw000000");
    assert_eq!(md.tags["aks-managed-poolName"], "gwpool");
    assert_eq!(md.tags["k"], "a;b:c");
    assert!(!md.tags.contains_key("ignored"));
    let lb = imds.load_balancer().await.unwrap();
    assert_eq!(lb.public_ip_addresses[0].frontend_ip_address, "20.0.0.1");
    let seen = script.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.iter().all(|(_, m)| m.as_deref() == Some("true")));
    assert!(seen[0].0.contains("api-version=2021-02-01"), "{seen:?}");
    assert!(seen[3].0.contains("api-version=2020-10-01"), "{seen:?}");
}

#[tokio::test]
async fn final_errors_long_retry_after_and_timeouts_are_not_retried_forever() {
    let script = Arc::new(Mutex::new(Script::default()));
    script.lock().unwrap().replies.insert(
        "/metadata/instance".into(),
        VecDeque::from([(
            400,
            None,
            json!({"error": "Bad request. Required metadata header not specified"}),
        )]),
    );
    let base = serve(script.clone()).await;
    let imds = ImdsClient::new(&base).unwrap().with_retry(fast());
    let err = imds.instance().await.unwrap_err();
    assert!(
        matches!(err, ImdsError::Status { status: 400, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    assert_eq!(script.lock().unwrap().seen.len(), 1, "400 is final");

    // A Retry-After beyond the cap ends the read at once.
    script.lock().unwrap().replies.insert(
        "/metadata/instance".into(),
        VecDeque::from([(429, Some("60"), json!({"error": "busy"}))]),
    );
    let started = Instant::now();
    let err = imds.instance().await.unwrap_err();
    assert!(
        matches!(err, ImdsError::Status { status: 429, .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // Persistent 503: exactly 1 + max_retries attempts.
    script.lock().unwrap().seen.clear();
    script.lock().unwrap().replies.insert(
        "/metadata/instance".into(),
        VecDeque::from([(503, None, json!({"error": "down"}))]),
    );
    imds.instance().await.unwrap_err();
    assert_eq!(script.lock().unwrap().seen.len(), 4);

    // A server that never answers in time.
    script.lock().unwrap().delay = Duration::from_millis(500);
    let err = imds
        .clone()
        .with_retry(ImdsRetry::none())
        .with_timeout(Duration::from_millis(50))
        .instance()
        .await
        .unwrap_err();
    assert!(matches!(err, ImdsError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn metadata_of_an_emulated_scale_set_instance() {
    let emu = egress_azure_emulator::Emulator::start(Default::default())
        .await
        .unwrap();
    let imds = ImdsClient::new(&emu.imds_url("gw-vmss000001")).unwrap();
    let md = imds.instance().await.unwrap();
    assert_eq!(md.computer_name, "gw-vmss000001");
    assert_eq!(md.name, "gw-vmss_1");
    assert_eq!(md.vm_scale_set_name, "gw-vmss");
    assert_eq!(md.resource_group_name, "rg-egress");
    assert_eq!(md.subscription_id, emu.subscription_id());
    assert_eq!(
        md.tags.get("aks-managed-poolName").map(String::as_str),
        Some("gwpool")
    );
    imds.load_balancer().await.unwrap();
    let err = ImdsClient::new(&emu.imds_url("no-such-vm"))
        .unwrap()
        .with_retry(ImdsRetry::none())
        .instance()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImdsError::Status { status: 404, .. }),
        "{err}"
    );
    emu.shutdown().await;
}
