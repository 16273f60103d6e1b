//! Shared pieces of the privileged end-to-end tests: running a CNI plugin binary inside the
//! "node" namespace, network configs, and the in-memory API server with a real
//! egress-cni-manager for one node. Throwaway namespaces and their snapshots come from
//! egress-testkit. Only documentation and private addresses are used; the host's own
//! namespace is never touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod gateway;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use egress_apiserver::{ApiServer, ServerConfig};
use egress_testkit::Netns;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub const PTP: &str = "/usr/lib/cni/ptp";
pub const NODE: &str = "node-e2e";

/// True when the test may run (root, ptp, nft, and wireguard-go for the userspace backend);
/// says why not otherwise, and fails instead when `CI=true` (CI must never pass a privileged
/// test it did not run).
pub fn privileged() -> bool {
    let mut tools = vec![PTP, "/usr/sbin/nft"];
    if egress_testkit::backend() == egress_testkit::Backend::Userspace {
        tools.push("/usr/bin/wireguard-go");
    }
    if !egress_testkit::is_root() || tools.iter().any(|t| !Path::new(t).exists()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "privileged test cannot run: needs root and {tools:?}"
        );
        egress_testkit::skip(&format!(
            "needs root and {tools:?} (apt-get install -y --no-install-recommends containernetworking-plugins wireguard-go nftables)"
        ));
        return false;
    }
    true
}

/// Runs a CNI plugin inside the node namespace; returns (exit success, stdout, duration).
pub fn cni(
    node: &Netns,
    plugin: &str,
    cmd: &str,
    container_id: &str,
    pod: &Netns,
    k8s: &str,
    stdin: &str,
) -> (bool, String, Duration) {
    cni_bytes(
        node,
        plugin,
        cmd,
        container_id,
        &pod.path(),
        k8s,
        stdin.as_bytes(),
    )
}

/// As [`cni`], with any `CNI_NETNS` and raw stdin bytes.
pub fn cni_bytes(
    node: &Netns,
    plugin: &str,
    cmd: &str,
    container_id: &str,
    netns: &str,
    k8s: &str,
    stdin: &[u8],
) -> (bool, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &node.0, plugin])
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .env("CNI_ARGS", k8s)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    if !out.stderr.is_empty() {
        eprintln!(
            "{plugin} {cmd} stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        took,
    )
}

/// `CNI_ARGS` naming a pod of namespace `ns1`.
pub fn k8s_args(pod: &str) -> String {
    format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME={pod}")
}

/// A ptp network config with host-local IPAM in `subnet`, state under `dir`.
pub fn ptp_conf(subnet: &str, dir: &Path) -> String {
    json!({"cniVersion": "1.0.0", "name": "kectest", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": subnet, "dataDir": dir.join("ipam"),
                 "routes": [{"dst": "0.0.0.0/0"}]}})
    .to_string()
}

/// Our plugin entry chained after `prev`, with `extra` fields merged in.
pub fn our_conf(socket: &Path, state: &Path, prev: &Value, extra: Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "kectest", "type": "kube-egress-cni",
        "socketPath": socket, "stateDir": state, "handshakeTimeoutSeconds": 2,
        "wireguardBackend": egress_testkit::backend().as_str(), "prevResult": prev});
    if let Value::Object(e) = extra {
        c.as_object_mut().unwrap().extend(e);
    }
    c.to_string()
}

/// The in-memory API server with namespace `ns1`, and a manager for [`NODE`].
pub struct Control {
    pub api: egress_apiserver::RunningApiServer,
    pub client: kube::Client,
    pub manager: Option<egress_cni_manager::RunningManager>,
    pub socket: PathBuf,
}

impl Control {
    pub async fn start(dir: &Path) -> Self {
        let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/crd");
        let api = ApiServer::start(ServerConfig::default().with_crds(crds))
            .await
            .unwrap();
        let client = api.client().unwrap();
        let ns: Api<Namespace> = Api::all(client.clone());
        ns.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "ns1"}})).unwrap(),
        )
        .await
        .unwrap();
        let socket = dir.join("run/cni.sock");
        let conf_dir = dir.join("net.d");
        std::fs::create_dir_all(&conf_dir).unwrap();
        let manager = egress_cni_manager::start(
            egress_cni_manager::ManagerConfig {
                node_name: NODE.into(),
                socket_path: socket.clone(),
                cni_conf_dir: conf_dir,
                exception_cidrs: vec![],
                handshake_timeout: Duration::from_secs(2),
                conflist_poll_interval: Duration::from_secs(1),
                http_addr: None,
                uninstall_on_exit: false,
                allowed_uids: vec![0],
                max_connections: usize::from(egress_cni_manager::DEFAULT_MAX_CONNECTIONS),
                attach_running_pods: true,
            },
            client.clone(),
        )
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !manager.state.pods_synced() {
            assert!(Instant::now() < deadline, "pod cache never synced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            api,
            client,
            manager: Some(manager),
            socket,
        }
    }

    /// A pod on this node, annotated with `sgc` if given.
    pub async fn pod(&self, name: &str, sgc: Option<&str>) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "ns1");
        let ann = sgc
            .map(|s| json!({"kubernetes.azure.com/static-gateway-configuration": s}))
            .unwrap_or(json!({}));
        let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns1", "annotations": ann},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]}});
        pods.create(&PostParams::default(), &serde_json::from_value(p).unwrap())
            .await
            .unwrap();
    }

    /// An SGC; with `gateway` = (ILB ip, port, public key) its status is provisioned.
    pub async fn sgc(
        &self,
        name: &str,
        default_route: &str,
        exclude: &[&str],
        gateway: Option<(&str, u16, &str)>,
    ) {
        let api: Api<egress_api::StaticGatewayConfiguration> =
            Api::namespaced(self.client.clone(), "ns1");
        api.create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1", "kind": "StaticGatewayConfiguration",
            "metadata": {"name": name, "namespace": "ns1"},
            "spec": {"gatewayNodepoolName": "gw", "provisionPublicIps": true,
                     "defaultRoute": default_route, "excludeCidrs": exclude}})).unwrap())
            .await
            .unwrap();
        if let Some((ip, port, key)) = gateway {
            let status = json!({"egressIpPrefix": "198.51.100.10/32", "gatewayServerProfile": {
                "ip": ip, "port": port, "publicKey": key,
                "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": format!("sgw-{name}"),
                                        "namespace": "kube-egress-gateway-system"}}});
            api.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .unwrap();
        }
    }

    /// Makes SGC `name` dual-stack (`ipFamilies: [IPv4, IPv6]`) with its IPv6 prefix
    /// provisioned, as the operator would.
    pub async fn dual_stack(&self, name: &str, ipv6_prefix: &str) {
        let api: Api<egress_api::StaticGatewayConfiguration> =
            Api::namespaced(self.client.clone(), "ns1");
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ipFamilies": ["IPv4", "IPv6"]}})),
        )
        .await
        .unwrap();
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"egressIpv6Prefix": ipv6_prefix}})),
        )
        .await
        .unwrap();
    }

    pub async fn shutdown(&mut self) {
        if let Some(m) = self.manager.take() {
            m.shutdown().await;
        }
    }
}
