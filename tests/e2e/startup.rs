//! Pods at once (issue 16 item 4; docs/benchmarks.md, "Pods at once"): N pods of Deployments
//! created together on a ready cluster, first without the annotation, then with it, in one
//! run. Every pod must become ready, and every annotated pod's *first* connection must leave
//! from the SGC's prefix with its first SYN answered (no retransmission: the first-packet
//! guarantee). Prints the kubelet's time to ready (CNI ADD, retries included) per kind, the
//! failed ADDs and the annotated ÷ plain ratio.

use std::time::{Duration, Instant};

use egress_sim::cluster::Cluster;
use egress_sim::egress_watch::percentile;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::common;

/// Replicas per Deployment (the simulator's Deployments are created in slices of this).
pub(crate) const PER_DEPLOYMENT: usize = 50;
/// A first SYN lost would be retransmitted after 1 s: a connect slower than this is a miss.
const FIRST_SYN: Duration = Duration::from_millis(900);

pub(crate) fn scenario(workers: usize) -> String {
    let base = std::fs::read_to_string(common::e2e_scenario("resilience.yaml")).unwrap();
    let (head, _pod) = base
        .split_once("  ---\n  apiVersion: v1\n  kind: Pod\n")
        .unwrap();
    assert!(head.contains("workers: 1\n"));
    head.replace("workers: 1\n", &format!("workers: {workers}\n"))
}

pub(crate) fn deployment(name: &str, replicas: usize, annotated: bool) -> Deployment {
    let annotations = if annotated {
        serde_json::json!({"kubernetes.azure.com/static-gateway-configuration": "gw"})
    } else {
        serde_json::json!({})
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "e2e"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": annotations},
                "spec": {"containers": [{"name": "c", "image": "agnhost"}]}
            }
        }
    }))
    .unwrap()
}

/// What one batch of pods did.
struct Batch {
    ready_ms: Vec<u64>,
    failed_adds: u32,
    errors: Vec<String>,
    /// Each pod's first connection: where, what the server saw, how long it took.
    firsts: Vec<(String, Result<String, String>, Duration)>,
    /// Pod-side wireguard-go daemons running once all were ready, and their RSS in KiB.
    daemons: (usize, u64),
}

impl Batch {
    /// Milliseconds each first connection took.
    fn connect_ms(&self) -> Vec<u64> {
        self.firsts
            .iter()
            .map(|(_, _, took)| took.as_millis() as u64)
            .collect()
    }

    /// First connections that failed, left from outside `prefix` (when given), or needed a
    /// retransmitted SYN.
    fn misses(&self, prefix: Option<&str>) -> Vec<String> {
        self.firsts
            .iter()
            .filter(|(_, seen, took)| {
                let ip = seen
                    .as_deref()
                    .map(|a| a.rsplit_once(':').map_or(a, |(ip, _)| ip));
                let fine = match (&ip, prefix) {
                    (Ok(ip), Some(prefix)) => egress_sim::report::in_prefix(ip, prefix),
                    (Ok(_), None) => true,
                    (Err(_), _) => false,
                };
                !fine || *took > FIRST_SYN
            })
            .map(|(at, seen, took)| format!("{at}: {seen:?} after {took:?}"))
            .collect()
    }
}

/// The wireguard-go daemons of pod tunnels (UAPI names `wgp…`) and their summed RSS (KiB).
fn pod_daemons() -> (usize, u64) {
    let mut found = (0, 0);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let dir = entry.path();
        let Ok(cmd) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if !(cmd.contains("wireguard-go") && cmd.contains("\0wgp")) {
            continue;
        }
        let rss = std::fs::read_to_string(dir.join("status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        found = (found.0 + 1, found.1 + rss);
    }
    found
}

/// One pod's first connection: where, what the internet server saw, how long the connect and
/// answer took.
fn first_connection(netns: String, node: String) -> (String, Result<String, String>, Duration) {
    let t = Instant::now();
    let seen = egress_sim::services::observed_source(
        &netns,
        egress_sim::seed::INTERNET_SERVER_IP,
        egress_sim::services::RAW_ECHO_PORT,
        Duration::from_secs(5),
    );
    (format!("{netns} on {node}"), seen, t.elapsed())
}

fn pct(v: &[u64]) -> String {
    let p = |q| percentile(v, q).unwrap_or_default();
    format!("p50 {} / p95 {} / max {} ms", p(50.0), p(95.0), p(100.0))
}

fn median(v: &[u64]) -> f64 {
    percentile(v, 50.0).unwrap_or_default() as f64
}

/// Creates `pods` pods named `{kind}…` together, opens each one's first connection as soon as
/// it is ready, waits for all; scales them back to 0 afterwards.
async fn batch(cluster: &Cluster, kind: &str, pods: usize, annotated: bool, create: bool) -> Batch {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), "e2e");
    let names: Vec<String> = (0..pods.div_ceil(PER_DEPLOYMENT))
        .map(|i| format!("{kind}{i}"))
        .collect();
    for (i, name) in names.iter().enumerate().filter(|_| create) {
        let replicas = (pods - i * PER_DEPLOYMENT).min(PER_DEPLOYMENT);
        api.create(
            &PostParams::default(),
            &deployment(name, replicas, annotated),
        )
        .await
        .unwrap();
    }
    let mine = |c: &Cluster| {
        c.pods()
            .into_iter()
            .filter(|((ns, name), _)| ns == "e2e" && name.starts_with(kind))
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
    };
    // Each pod's first connection starts the moment the kubelet has it ready, as an
    // application starting in the pod would: the first-packet guarantee is about exactly
    // that moment, when the gateway may still be programming the pods that came with it.
    let started = Instant::now();
    let mut last = 0;
    let mut probing = std::collections::BTreeSet::new();
    let mut firsts = tokio::task::JoinSet::new();
    loop {
        let recs = mine(cluster);
        for r in recs.iter().filter(|r| r.ip.is_some()) {
            let netns = r.netns.clone().unwrap();
            if probing.insert(netns.clone()) {
                let node = r.node.clone();
                firsts.spawn_blocking(move || first_connection(netns, node));
            }
        }
        let ready = probing.len();
        if recs.len() == pods && ready == pods {
            break;
        }
        if ready / 10 != last / 10 {
            eprintln!(
                "[e2e] {kind}: {ready}/{pods} ready after {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        last = ready;
        if started.elapsed() > Duration::from_secs(300) {
            let errors: Vec<_> = recs.iter().filter_map(|r| r.last_error.clone()).collect();
            panic!("{kind}: {ready}/{pods} ready after 300 s; last ADD errors: {errors:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "[e2e] {kind}: all {pods} ready after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let recs = mine(cluster);
    let mut out = Batch {
        ready_ms: recs.iter().filter_map(|r| r.ready_ms).collect(),
        failed_adds: recs.iter().map(|r| r.attempts).sum(),
        errors: recs.iter().filter_map(|r| r.last_error.clone()).collect(),
        firsts: Vec::new(),
        daemons: pod_daemons(),
    };
    while let Some(first) = firsts.join_next().await {
        out.firsts.push(first.unwrap());
    }
    for name in &names {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    }
    common::eventually(
        &format!("the {kind} pods gone"),
        Duration::from_secs(120),
        || mine(cluster).is_empty(),
    )
    .await;
    out
}

/// Benchmark, run by name (ignored in `make test`): `EGRESS_STARTUP_PODS` (default 10) pods
/// on `EGRESS_STARTUP_WORKERS` (default 4) workers, plain then annotated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: many pods; run by name"]
async fn many_pods_start_together() {
    let Some(lab) = common::lab("pods at once") else {
        return;
    };
    let env = common::env_usize;
    let (workers, pods) = (
        env("EGRESS_STARTUP_WORKERS", 4),
        env("EGRESS_STARTUP_PODS", 10),
    );
    // EGRESS_STARTUP_COLD=1: the annotated Deployments come with the cluster (created
    // before the SGC is ready, so every pod's ADD is refused until it is and they all retry
    // together: the burst of a cluster start or an SGC created with its workloads).
    let cold = env("EGRESS_STARTUP_COLD", 0) == 1;
    let text = if cold {
        let deployments: Vec<String> = (0..pods.div_ceil(PER_DEPLOYMENT))
            .map(|i| {
                let replicas = (pods - i * PER_DEPLOYMENT).min(PER_DEPLOYMENT);
                // JSON is YAML: one line, indented into the scenario's manifests.
                let doc = deployment(&format!("annotated{i}"), replicas, true);
                format!("  {}\n", serde_json::to_string(&doc).unwrap())
            })
            .collect();
        format!(
            "{}  ---\n{}",
            scenario(workers),
            deployments.join("  ---\n")
        )
    } else {
        scenario(workers)
    };
    let path = common::write_scenario(&lab, "startup.yaml", &text);
    let (cluster, annotated, plain) = if cold {
        let scenario = egress_sim::scenario::Scenario::load(&path).unwrap();
        let cluster = Cluster::up_in(scenario, &path, &lab.root).await.unwrap();
        let annotated = batch(&cluster, "annotated", pods, true, false).await;
        let plain = batch(&cluster, "plain", pods, false, true).await;
        (cluster, annotated, plain)
    } else {
        let (cluster, _) = common::two_gateways_up_from(&lab, &path).await;
        let plain = batch(&cluster, "plain", pods, false, true).await;
        let annotated = batch(&cluster, "annotated", pods, true, true).await;
        (cluster, annotated, plain)
    };
    let prefix = egress_sim::report::sgcs(&cluster.client).await.unwrap()[0]
        .egress_ip_prefix
        .clone()
        .unwrap();
    let (missed, missed_plain) = (annotated.misses(Some(&prefix)), plain.misses(None));
    for (kind, b, m) in [
        ("plain", &plain, &missed_plain),
        ("annotated", &annotated, &missed),
    ] {
        eprintln!(
            "[e2e] STARTUP x{pods} ({workers} workers{}) {kind}: ready {}; failed ADDs {}; first connection {}; misses {}; pod wireguard-go daemons {} ({} MiB RSS)",
            if cold { ", cold" } else { "" },
            pct(&b.ready_ms),
            b.failed_adds,
            pct(&b.connect_ms()),
            m.len(),
            b.daemons.0,
            b.daemons.1 / 1024
        );
    }
    eprintln!(
        "[e2e] STARTUP x{pods}: annotated / plain ready (medians) = {:.2}",
        median(&annotated.ready_ms) / median(&plain.ready_ms).max(1.0)
    );
    assert!(
        missed.is_empty() && missed_plain.is_empty(),
        "first connections missed: {missed:#?} {missed_plain:#?}"
    );
    // Cold, every ADD before the SGC was ready failed by design (and was retried).
    assert!(
        cold || annotated.errors.is_empty(),
        "failed ADDs (retried): {:#?}",
        annotated.errors
    );
    let down = cluster.down().await;
    assert!(down.problems.is_empty(), "{:?}", down.problems);
}
