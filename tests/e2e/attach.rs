//! Running pods attached together (issue 17 item 5; docs/benchmarks.md, "Running pods
//! attached together"): N plain pods of Deployments run on a ready cluster; then every one of
//! them is annotated at once (one merge patch per pod, as `kubectl annotate pods -l ...`
//! does), or with `EGRESS_ATTACH_BY=label` labelled for the SGC's `podSelector`. Each node's CNI manager attaches its pods without a restart. Per pod: the time from
//! the first patch to its `EgressGatewayAttached` Event (the manager writes it once the
//! tunnel's handshake completed and the routes switched); then every pod's new connection
//! must leave from the SGC's prefix. The API server's request counters give the writes each
//! component made for the attachment, per pod.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::egress_watch::percentile;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common;
use crate::startup::{PER_DEPLOYMENT, deployment, scenario};

const ANNOTATION: &str = "kubernetes.azure.com/static-gateway-configuration";
/// Patches in flight at once (kubectl sends one after the other; the point is the managers'
/// load, not the client's).
const PATCHING: usize = 16;

/// The API server's write counters, `(user agent, verb, resource)` → count.
async fn writes(cluster: &Cluster) -> BTreeMap<(String, String, String), u64> {
    let req = http::Request::get("/admin/requests")
        .body(Vec::new())
        .unwrap();
    let text = cluster.client.request_text(req).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    for c in v["counters"].as_array().unwrap() {
        let verb = c["verb"].as_str().unwrap_or_default();
        if !matches!(
            verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) {
            continue;
        }
        // "egress-cni-manager/0.1.0 (...)" → "egress-cni-manager".
        let agent = c["userAgent"]
            .as_str()
            .unwrap_or_default()
            .split(['/', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        let key = (
            agent,
            verb.to_string(),
            c["resource"].as_str().unwrap_or_default().to_string(),
        );
        *out.entry(key).or_default() += c["count"].as_u64().unwrap_or_default();
    }
    out
}

fn pct(v: &[u64]) -> String {
    let p = |q| percentile(v, q).unwrap_or_default();
    format!("p50 {} / p95 {} / max {} ms", p(50.0), p(95.0), p(100.0))
}

/// `EgressGatewayAttached` / `EgressGatewayFailed` Events of namespace `e2e`: pod → event
/// times (the earliest of each reason).
async fn attach_events(cluster: &Cluster) -> (BTreeMap<String, i64>, Vec<String>, Vec<u64>) {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), "e2e");
    let mut attached = BTreeMap::new();
    let mut failed = Vec::new();
    let mut handshakes = Vec::new();
    for e in api.list(&Default::default()).await.unwrap().items {
        let Some(pod) = e.regarding.as_ref().and_then(|r| r.name.clone()) else {
            continue;
        };
        match e.reason.as_deref() {
            Some("EgressGatewayAttached") => {
                // "... (first handshake after N ms) ..."
                let ms = e
                    .note
                    .as_deref()
                    .and_then(|n| n.split_once("first handshake after "))
                    .and_then(|(_, rest)| rest.split_once(" ms"))
                    .and_then(|(n, _)| n.parse::<u64>().ok());
                handshakes.extend(ms);
                if let Some(t) = e.event_time.as_ref() {
                    let t = epoch_ms(&t.0);
                    attached
                        .entry(pod)
                        .and_modify(|old: &mut i64| *old = (*old).min(t))
                        .or_insert(t);
                }
            }
            Some("EgressGatewayFailed") => {
                failed.push(format!("{pod}: {}", e.note.unwrap_or_default()));
            }
            _ => {}
        }
    }
    (attached, failed, handshakes)
}

/// An Event time as milliseconds since the Unix epoch (the simulator's components and this
/// test share the machine's clock).
fn epoch_ms(t: &k8s_openapi::jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

/// Benchmark, run by name (ignored in `make test`): `EGRESS_ATTACH_PODS` (default 20) plain
/// pods on `EGRESS_ATTACH_WORKERS` (default 4) workers, then all annotated at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: many pods; run by name"]
async fn running_pods_attach_together() {
    let Some(lab) = common::lab("running pods attached together") else {
        return;
    };
    let env = common::env_usize;
    let (workers, pods) = (
        env("EGRESS_ATTACH_WORKERS", 4),
        env("EGRESS_ATTACH_PODS", 20),
    );
    let path = common::write_scenario(&lab, "attach.yaml", &scenario(workers));
    let (cluster, prefix) = common::two_gateways_up_from(&lab, &path).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "e2e");
    for i in 0..pods.div_ceil(PER_DEPLOYMENT) {
        let replicas = (pods - i * PER_DEPLOYMENT).min(PER_DEPLOYMENT);
        deployments
            .create(
                &PostParams::default(),
                &deployment(&format!("plain{i}"), replicas, false),
            )
            .await
            .unwrap();
    }
    let mine = |c: &Cluster| {
        c.pods()
            .into_iter()
            .filter(|((ns, name), r)| ns == "e2e" && name.starts_with("plain") && r.ip.is_some())
            .map(|((_, name), r)| (name, r))
            .collect::<BTreeMap<_, _>>()
    };
    common::eventually(
        &format!("{pods} plain pods ready"),
        Duration::from_secs(600),
        || mine(&cluster).len() == pods,
    )
    .await;
    let running = mine(&cluster);
    eprintln!("[e2e] ATTACH: {pods} plain pods running; annotating them all");
    // EGRESS_ATTACH_BY=label: the SGC selects `egress-bench=on` and the pods get that label.
    let by_label = std::env::var("EGRESS_ATTACH_BY").as_deref() == Ok("label");
    let change = if by_label {
        let sgcs: Api<kube::api::DynamicObject> = Api::namespaced_with(
            cluster.client.clone(),
            "e2e",
            &egress_sim::report::sgc_resource(),
        );
        sgcs.patch(
            "gw",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"podSelector": {"matchLabels": {"egress-bench": "on"}}}}),
            ),
        )
        .await
        .unwrap();
        json!({"metadata": {"labels": {"egress-bench": "on"}}})
    } else {
        json!({"metadata": {"annotations": {ANNOTATION: "gw"}}})
    };
    let before = writes(&cluster).await;
    let t0 = epoch_ms(&k8s_openapi::jiff::Timestamp::now());
    let started = Instant::now();
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), "e2e");
    let patches = futures::stream::iter(running.keys().cloned())
        .map(|name| {
            let (api, change) = (api.clone(), change.clone());
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(change))
                    .await
                    .unwrap();
                (name, epoch_ms(&k8s_openapi::jiff::Timestamp::now()))
            }
        })
        .buffer_unordered(PATCHING)
        .collect::<Vec<_>>();
    let patched: BTreeMap<String, i64> = patches.await.into_iter().collect();
    let patched_ms = started.elapsed().as_millis();
    // Every pod attached (or a failure reported, which fails the run below).
    let mut last = 0;
    let (attached, failed, handshakes) = loop {
        let (attached, failed, handshakes) = attach_events(&cluster).await;
        if attached.len() == pods || started.elapsed() > Duration::from_secs(600) {
            break (attached, failed, handshakes);
        }
        if attached.len() / 20 != last / 20 {
            eprintln!(
                "[e2e] ATTACH: {}/{pods} attached after {:.1}s",
                attached.len(),
                started.elapsed().as_secs_f64()
            );
        }
        last = attached.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_ms = started.elapsed().as_millis();
    let after = writes(&cluster).await;
    let times: Vec<u64> = attached
        .values()
        .map(|t| u64::try_from(t - t0).unwrap_or(0))
        .collect();
    // From the pod's own patch (the API server takes a while to take 200 patches).
    let per_pod: Vec<u64> = attached
        .iter()
        .map(|(pod, t)| u64::try_from(t - patched[pod]).unwrap_or(0))
        .collect();
    // Each pod's new connection leaves from the prefix.
    let mut outside = Vec::new();
    for (name, r) in &running {
        let seen = common::observed_from_netns(
            r.netns.clone().unwrap(),
            egress_sim::seed::INTERNET_SERVER_IP,
            egress_sim::services::RAW_ECHO_PORT,
            Duration::from_secs(5),
        )
        .await;
        let ip = seen
            .as_deref()
            .map(|a| a.rsplit_once(':').map_or(a, |(ip, _)| ip).to_string());
        if !ip
            .as_ref()
            .is_ok_and(|ip| egress_sim::report::in_prefix(ip, &prefix))
        {
            outside.push(format!("{name}: {seen:?}"));
        }
    }
    let mut delta: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for (k, n) in &after {
        let d = n - before.get(k).copied().unwrap_or(0);
        if d > 0 {
            delta.insert(k.clone(), d);
        }
    }
    // The components send no User-Agent of their own here, so this test's own writes (one
    // pod patch each) are taken out by what they are.
    let own = (String::new(), "patch".to_string(), "pods".to_string());
    let mine_written = delta.remove(&own).unwrap_or_default();
    let total: u64 = delta.values().sum();
    eprintln!(
        "[e2e] ATTACH x{pods} ({workers} workers, by {}): patches sent in {patched_ms} ms; all attached after {all_ms} ms; per pod, first patch → EgressGatewayAttached {}, its own patch → EgressGatewayAttached {} (of which the first handshake {}); failures reported {}; outside the prefix {}",
        if by_label { "label" } else { "annotation" },
        pct(&times),
        pct(&per_pod),
        pct(&handshakes),
        failed.len(),
        outside.len()
    );
    eprintln!(
        "[e2e] ATTACH x{pods}: API writes by the system {total} ({:.2} per pod), besides this test's {mine_written} pod patches:",
        total as f64 / pods as f64
    );
    for ((agent, verb, resource), n) in &delta {
        eprintln!("[e2e]   {agent} {verb} {resource}: {n}");
    }
    assert_eq!(mine_written, pods as u64, "one patch per pod: {delta:?}");
    assert_eq!(attached.len(), pods, "failures: {failed:#?}");
    assert!(
        outside.is_empty(),
        "left from outside {prefix}: {outside:#?}"
    );
    // EGRESS_ATTACH_LOGS=DIR: the components' logs are copied there before teardown.
    if let Some(dir) = std::env::var_os("EGRESS_ATTACH_LOGS") {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(cluster.run_dir())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "cp {status}");
    }
    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
}
