//! Shared helpers: the root check, one-at-a-time lock, a per-test state directory whose runs
//! are torn down on drop (also when the test panics), and waiting on conditions.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Everything a test needs; tears its runs down on drop.
pub struct Lab {
    pub root: PathBuf,
    _tmp: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // EGRESS_E2E_LOGS=DIR keeps the component logs of runs that are still up (a failed
        // test's) before they are torn down.
        if let Some(dir) = std::env::var_os("EGRESS_E2E_LOGS") {
            let _ = std::process::Command::new("cp")
                .arg("-r")
                .arg(&self.root)
                .arg(dir)
                .status();
        }
        let _ = egress_sim::cli::down(&self.root);
    }
}

/// `None` (after printing SKIPPED) when not root.
pub fn lab(test: &str) -> Option<Lab> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: needs root (network namespaces)");
        return None;
    }
    let lock = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    Some(Lab {
        root: tmp.path().join("state"),
        _tmp: tmp,
        _lock: lock,
    })
}

/// Path of a scenario file shipped with the crate.
pub fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// Writes a scenario into the lab and returns its path.
pub fn write_scenario(lab: &Lab, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(&lab.root).unwrap();
    let p = lab.root.parent().unwrap().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Waits until `f` holds, failing with `what` after `timeout`.
pub async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Namespaces under /run/netns whose name starts with `prefix`.
pub fn namespaces_with(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// A benchmark's size setting: the environment variable `name`, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map_or(default, |v| v.parse().unwrap())
}

/// Path of a scenario file of the e2e suite.
pub fn e2e_scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/e2e/scenarios")
        .join(name)
}

/// The kubelet's record of a pod in namespace `e2e`.
pub fn pod(cluster: &egress_sim::cluster::Cluster, name: &str) -> egress_sim::kubelet::PodRecord {
    cluster
        .pods()
        .get(&("e2e".to_string(), name.to_string()))
        .cloned()
        .unwrap_or_else(|| panic!("no pod e2e/{name}"))
}

/// The address `server`'s raw echo saw on a new connection from pod `name` (ip only).
pub async fn seen_from(
    cluster: &egress_sim::cluster::Cluster,
    name: &str,
    server: impl Into<std::net::IpAddr>,
    port: u16,
) -> String {
    let ns = pod(cluster, name).netns.expect("pod has a sandbox");
    seen_from_netns(ns, server, port).await
}

/// What `server`'s raw echo saw (`ip:port`) on a new connection from namespace `ns`, or why
/// the connection failed within `timeout`.
pub async fn observed_from_netns(
    ns: String,
    server: impl Into<std::net::IpAddr>,
    port: u16,
    timeout: Duration,
) -> Result<String, String> {
    let server = server.into();
    tokio::task::spawn_blocking(move || {
        egress_sim::services::observed_source(&ns, server, port, timeout)
    })
    .await
    .unwrap()
}

/// The address `server`'s raw echo saw on a new connection from network namespace `ns`.
pub async fn seen_from_netns(ns: String, server: impl Into<std::net::IpAddr>, port: u16) -> String {
    let server = server.into();
    let seen = observed_from_netns(ns.clone(), server, port, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("netns {ns} cannot reach {server}:{port}: {e}"));
    egress_sim::report::echoed_ip(&seen)
}

/// An SGC of namespace `e2e` as stored (`None` once deleted).
pub async fn sgc(
    cluster: &egress_sim::cluster::Cluster,
    name: &str,
) -> Option<kube::api::DynamicObject> {
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        cluster.client.clone(),
        "e2e",
        &egress_sim::report::sgc_resource(),
    );
    api.get_opt(name).await.unwrap()
}

/// An SGC of namespace `e2e` by name (for `egress_sim::k8s::delete`; add a `spec` to apply).
pub fn sgc_doc(name: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration", "metadata": {"name": name, "namespace": "e2e"}})
}

/// A pod of namespace `e2e` annotated with `sgc`.
pub fn pod_doc(name: &str, sgc: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "e2e",
            "annotations": {"kubernetes.azure.com/static-gateway-configuration": sgc}},
        "spec": {"containers": [{"name": "c", "image": "agnhost"}]}})
}

/// The emulator's admin views (inventory, LB rules, IP mappings) naming one of `uids`.
pub async fn azure_mentions(
    cluster: &egress_sim::cluster::Cluster,
    uids: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for view in ["/admin/inventory", "/admin/lbmap", "/admin/ipmap"] {
        let v = cluster.emulator_get(view).await.unwrap().to_string();
        out.extend(
            uids.iter()
                .filter(|u| v.contains(u.as_str()))
                .map(|u| format!("{view} names {u}")),
        );
    }
    out
}

/// Waits (async) until `f` resolves true.
pub async fn eventually_async<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// UIDs of an SGC of namespace `e2e` and of its GatewayLBConfiguration and
/// GatewayVMConfiguration (Azure resources are named after the latter two).
pub async fn sgc_uids(cluster: &egress_sim::cluster::Cluster, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, plural) in [
        ("StaticGatewayConfiguration", "staticgatewayconfigurations"),
        ("GatewayLBConfiguration", "gatewaylbconfigurations"),
        ("GatewayVMConfiguration", "gatewayvmconfigurations"),
    ] {
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(
                "egressgateway.kubernetes.azure.com",
                "v1alpha1",
                kind,
            ),
            plural,
        );
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(cluster.client.clone(), "e2e", &ar);
        let obj = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
        out.push(obj.metadata.uid.unwrap());
    }
    out
}

/// The gateway node pod `name`'s tunnel goes through now, and its egress address.
pub async fn carrying_gateway(
    cluster: &egress_sim::cluster::Cluster,
    name: &str,
) -> (String, String) {
    let ip = seen_from(
        cluster,
        name,
        egress_sim::seed::INTERNET_SERVER_IP,
        egress_sim::services::RAW_ECHO_PORT,
    )
    .await;
    let node = cluster.node_of_ip(&ip).await.unwrap().unwrap();
    (node, ip)
}

/// The simulated ILB's nftables table (its rules hash over `mod N` healthy backends).
pub fn ilb_table(cluster: &egress_sim::cluster::Cluster) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &cluster.topo.vnet])
        .args(["nft", "list", "table", "ip", "sim_ilb"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// How many backends (distinct marks) the ILB's hash slots name in `table` (`nft list`
/// output): the healthy ones.
pub fn ilb_backends_in(table: &str) -> usize {
    table
        .split(" : ")
        .skip(1)
        .filter_map(|rest| rest.split([',', ' ', '}']).next())
        .filter(|m| m.starts_with("0x"))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Whether the ILB hashes over `n` healthy backends.
pub fn ilb_has_backends(cluster: &egress_sim::cluster::Cluster, n: usize) -> bool {
    ilb_backends_in(&ilb_table(cluster)) == n
}

/// Polls the ILB (every 20 ms) until it no longer has 2 healthy backends; the time since
/// `since`, or `None` after `timeout`.
pub async fn ilb_drop_time(
    cluster: &egress_sim::cluster::Cluster,
    since: Instant,
    timeout: Duration,
) -> Option<Duration> {
    let vnet = cluster.topo.vnet.clone();
    tokio::task::spawn_blocking(move || {
        while since.elapsed() < timeout {
            let out = std::process::Command::new("ip")
                .args([
                    "netns", "exec", &vnet, "nft", "list", "table", "ip", "sim_ilb",
                ])
                .output()
                .ok()?;
            if ilb_backends_in(&String::from_utf8_lossy(&out.stdout)) != 2 {
                return Some(since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    })
    .await
    .unwrap()
}

/// Cordons (or uncordons) a node as `kubectl cordon` does.
pub async fn set_cordon(cluster: &egress_sim::cluster::Cluster, node: &str, on: bool) {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(cluster.client.clone());
    nodes
        .patch(
            node,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"unschedulable": on}})),
        )
        .await
        .unwrap();
}

/// The resilience scenario up, ready, both gateway nodes healthy behind the ILB; returns the
/// cluster and the SGC's egress prefix.
pub async fn two_gateways_up(lab: &Lab) -> (egress_sim::cluster::Cluster, String) {
    two_gateways_up_from(lab, &e2e_scenario("resilience.yaml")).await
}

/// [`two_gateways_up`] with the scenario at `path` (two gateway nodes, one SGC).
pub async fn two_gateways_up_from(
    lab: &Lab,
    path: &Path,
) -> (egress_sim::cluster::Cluster, String) {
    let scenario = egress_sim::scenario::Scenario::load(path).unwrap();
    let cluster = egress_sim::cluster::Cluster::up_in(scenario, path, &lab.root)
        .await
        .unwrap();
    let ready = Duration::from_secs(u64::from(cluster.scenario.ready_timeout_seconds.max(60)));
    egress_sim::cli::wait_ready(&cluster, ready).await.unwrap();
    eventually(
        "both gateway nodes healthy behind the ILB",
        Duration::from_secs(30),
        || ilb_has_backends(&cluster, 2),
    )
    .await;
    let prefix = egress_sim::report::sgcs(&cluster.client).await.unwrap()[0]
        .egress_ip_prefix
        .clone()
        .unwrap();
    (cluster, prefix)
}

/// Asserts that a pod that left from `old_ip` moved to another address of `prefix`, its
/// first packet and its first new connection from there both within `detected` + 1 s of
/// the failure; returns the new address.
pub fn assert_moved_in_time(
    p: &egress_sim::egress_watch::PodEgress,
    old_ip: &str,
    prefix: &str,
    detected: Duration,
) -> String {
    assert!(
        p.failed_over,
        "the pod left through the failed gateway: {p:?}"
    );
    let new_ip = p.after.clone().unwrap_or_default();
    assert!(
        egress_sim::report::in_prefix(&new_ip, prefix) && new_ip != old_ip,
        "{p:?}"
    );
    let bound = detected + Duration::from_secs(1);
    for (what, took) in [
        ("first packet from the other gateway", p.first_packet_new_ms),
        ("first new connection", p.first_connection_new_ms),
    ] {
        let took = Duration::from_millis(took.unwrap_or(u64::MAX));
        assert!(
            took <= bound,
            "{what} after {took:?}: more than detection ({detected:?}) + 1 s"
        );
    }
    new_ip
}

/// Watches pod namespace `pod_ns` (leaving from `egress_ip`) through `fail`: datagrams
/// flow for a moment first, the failure is marked just before `fail` runs, then the ILB's
/// detection time (since the mark) and what the pod saw are returned.
pub async fn watch_one_pod_through(
    cluster: &mut egress_sim::cluster::Cluster,
    pod_ns: &str,
    egress_ip: &str,
    fail: impl AsyncFnOnce(&mut egress_sim::cluster::Cluster),
) -> (Duration, egress_sim::egress_watch::PodEgress) {
    use egress_sim::egress_watch::{EgressWatch, WatchSettings};
    let watch = EgressWatch::start(
        &[("e2e/p".to_owned(), pod_ns.to_owned())],
        egress_sim::seed::INTERNET_SERVER_IP,
        WatchSettings::for_pods(1),
    )
    .unwrap();
    // A few answers first, so the watch knows the address the pod leaves from.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    watch.mark(egress_ip);
    fail(cluster).await;
    let detected = ilb_drop_time(cluster, t, Duration::from_secs(30))
        .await
        .expect("the ILB drops the failed backend");
    let mut got = tokio::task::spawn_blocking(move || watch.finish(Duration::from_secs(60)))
        .await
        .unwrap();
    (detected, got.remove(0))
}

/// Starts the cluster of e2e scenario `file` in `lab` and waits until it is ready.
pub async fn up_ready(lab: &Lab, file: &str) -> egress_sim::cluster::Cluster {
    let path = e2e_scenario(file);
    let scenario = egress_sim::scenario::Scenario::load(&path).unwrap();
    let cluster = egress_sim::cluster::Cluster::up_in(scenario, &path, &lab.root)
        .await
        .unwrap();
    egress_sim::cli::wait_ready(&cluster, Duration::from_secs(90))
        .await
        .unwrap();
    cluster
}

/// The PodEndpoints of namespace `e2e`.
pub fn podendpoints(cluster: &egress_sim::cluster::Cluster) -> kube::Api<kube::api::DynamicObject> {
    podendpoints_in(cluster, "e2e")
}

/// The PodEndpoints of namespace `ns`.
pub fn podendpoints_in(
    cluster: &egress_sim::cluster::Cluster,
    ns: &str,
) -> kube::Api<kube::api::DynamicObject> {
    kube::Api::namespaced_with(
        cluster.client.clone(),
        ns,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(
                "egressgateway.kubernetes.azure.com",
                "v1alpha1",
                "PodEndpoint",
            ),
            "podendpoints",
        ),
    )
}

/// What an SGC of namespace `e2e` holds in Azure and on the gateway nodes, to check that its
/// deletion removes all of it.
pub struct SgcFootprint {
    /// Name of the SGC.
    pub name: String,
    /// UIDs of the SGC and its internal LB/VM configurations (Azure names hold them).
    pub uids: Vec<String>,
    /// Its WireGuard port (`wg-<port>` on the gateway nodes).
    pub port: u64,
    /// Its secondary private IPs, both families, as the emulator maps them.
    pub secondaries: Vec<String>,
    /// The gateway nodes.
    pub gateways: Vec<String>,
}

/// The footprint of a provisioned SGC of namespace `e2e`.
pub async fn sgc_footprint(cluster: &egress_sim::cluster::Cluster, name: &str) -> SgcFootprint {
    let obj = sgc(cluster, name).await.unwrap();
    let uids = sgc_uids(cluster, name).await;
    let port = obj.data["status"]["gatewayServerProfile"]["port"]
        .as_u64()
        .unwrap();
    let ipmap = cluster.emulator_get("/admin/ipmap").await.unwrap();
    let secondaries = ipmap["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            let id = m["ipConfigurationId"].as_str().unwrap_or_default();
            uids.iter().any(|u| id.contains(u.as_str()))
        })
        .map(|m| m["privateIp"].as_str().unwrap().to_string())
        .collect();
    let gateways = cluster
        .topo
        .nodes
        .iter()
        .filter(|n| n.spec.role == egress_sim::seed::Role::Gateway)
        .map(|n| n.spec.name.clone())
        .collect();
    SgcFootprint {
        name: name.to_string(),
        uids,
        port,
        secondaries,
        gateways,
    }
}

/// Deletes pod `pod` and the SGC, then waits until neither Azure nor any gateway node holds
/// anything of the SGC (its `wg-<port>`, its secondary addresses, routes or nft entries).
pub async fn delete_and_expect_clean(
    cluster: &egress_sim::cluster::Cluster,
    pod: &str,
    f: &SgcFootprint,
) {
    egress_sim::k8s::delete(&cluster.client, &pod_doc(pod, &f.name))
        .await
        .unwrap();
    egress_sim::k8s::delete(&cluster.client, &sgc_doc(&f.name))
        .await
        .unwrap();
    eventually_async(
        &format!("SGC {} to be gone", f.name),
        Duration::from_secs(60),
        || async { sgc(cluster, &f.name).await.is_none() },
    )
    .await;
    eventually_async(
        &format!("no Azure resource of {}", f.name),
        Duration::from_secs(30),
        || async { azure_mentions(cluster, &f.uids).await.is_empty() },
    )
    .await;
    eventually(
        &format!(
            "no wg-<port>, address or nft entry of {} on gateway nodes",
            f.name
        ),
        Duration::from_secs(30),
        || {
            f.gateways.iter().all(|g| {
                let s = cluster.node_state(g).unwrap();
                !s.contains(&format!("wg-{}", f.port))
                    && f.secondaries.iter().all(|ip| !s.contains(ip.as_str()))
            })
        },
    )
    .await;
}
