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
    server: std::net::Ipv4Addr,
    port: u16,
) -> String {
    let ns = pod(cluster, name).netns.expect("pod has a sandbox");
    seen_from_netns(ns, server, port).await
}

/// The address `server`'s raw echo saw on a new connection from network namespace `ns`.
pub async fn seen_from_netns(ns: String, server: std::net::Ipv4Addr, port: u16) -> String {
    let seen = tokio::task::spawn_blocking({
        let ns = ns.clone();
        move || egress_sim::services::observed_source(&ns, server, port, Duration::from_secs(5))
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("netns {ns} cannot reach {server}:{port}: {e}"));
    seen.rsplit_once(':').unwrap().0.to_string()
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
