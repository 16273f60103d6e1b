//! An in-memory API server with the CRDs, objects as the operator and the CNI manager write
//! them, a daemon started against it, and small HTTP/wait helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use egress_api::constants::POD_ANNOTATION;
use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig};
use egress_dataplane::{Dataplane, PrivateKey};
use egress_gateway_daemon::{
    Daemon, DaemonConfig, DaemonOptions, HostConfig, Listeners, NodeIdentity,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const NS: &str = "default";
pub const KEY_NS: &str = "kube-egress-gateway-system";
pub const NODE: &str = "gw-vmss000000";
/// The worker node of the pods (their PodEndpoints carry it as the node label).
pub const POD_NODE: &str = "aks-nodepool1-vmss000000";

/// One gateway's objects.
pub struct Gw {
    pub name: String,
    pub port: i32,
    pub key: PrivateKey,
    pub secondary: String,
    pub primary: String,
    pub ilb: String,
    pub uid: String,
}

impl Gw {
    pub fn new(name: &str, port: i32, secondary: &str, primary: &str, ilb: &str) -> Self {
        Self {
            name: name.into(),
            port,
            key: PrivateKey::generate(),
            secondary: secondary.into(),
            primary: primary.into(),
            ilb: ilb.into(),
            uid: String::new(),
        }
    }
}

pub struct Cluster {
    pub server: RunningApiServer,
    pub client: kube::Client,
}

pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` on `addr`; the HTTP status code.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

impl Cluster {
    pub async fn start() -> Self {
        let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/crd");
        let server = ApiServer::start(ServerConfig::default().with_crds(crds))
            .await
            .unwrap();
        let client = server.client().unwrap();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for ns in [KEY_NS] {
            let _ = namespaces
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
                )
                .await;
        }
        let nodes: Api<Node> = Api::all(client.clone());
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": NODE}})).unwrap(),
            )
            .await
            .unwrap();
        Self { server, client }
    }

    /// Creates the SGC (with the status the operator writes), its VM configuration listing
    /// `node`, and the key Secret holding `secret_key` (normally the gateway's own key).
    pub async fn gateway(&self, gw: &mut Gw, node: &str, secret_key: &str) {
        let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(self.client.clone(), NS);
        let created = sgcs
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": egress_api::constants::API_VERSION,
                    "kind": "StaticGatewayConfiguration",
                    "metadata": {"name": gw.name},
                    "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": false},
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        gw.uid = created.metadata.uid.clone().unwrap();
        let secret_name = format!("sgw-{}", gw.uid);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), KEY_NS);
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": secret_name},
                    "stringData": {"PrivateKey": secret_key,
                                   "PublicKey": gw.key.public_key().to_base64()},
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        let vms: Api<GatewayVMConfiguration> = Api::namespaced(self.client.clone(), NS);
        vms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": egress_api::constants::API_VERSION,
                "kind": "GatewayVMConfiguration",
                "metadata": {"name": gw.name},
                "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": false},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
        vms.patch_status(
            &gw.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "egressIpPrefix": gw.secondary,
                "gatewayVMProfiles": [{"nodeName": node, "primaryIP": gw.primary, "secondaryIP": gw.secondary}],
            }})),
        )
        .await
        .unwrap();
        sgcs.patch_status(
            &gw.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "egressIpPrefix": gw.secondary,
                "gatewayServerProfile": {
                    "ip": gw.ilb, "port": gw.port,
                    "publicKey": gw.key.public_key().to_base64(),
                    "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret",
                        "name": secret_name, "namespace": KEY_NS},
                },
            }})),
        )
        .await
        .unwrap();
    }

    /// A running pod on `POD_NODE` annotated with `sgc` and reporting `ip`, and its
    /// PodEndpoint as that node's CNI manager writes it.
    pub async fn pod_endpoint(&self, name: &str, sgc: &str, ip: &str, key: &str) {
        let ip_only = ip.split('/').next().unwrap_or_default();
        let ips: Vec<&str> = ip_only
            .parse::<std::net::IpAddr>()
            .map(|_| ip_only)
            .into_iter()
            .collect();
        let uid = self.pod(name, sgc, &ips).await;
        self.create_pod_endpoint(name, sgc, ip, key, (name, &uid), POD_NODE)
            .await;
    }

    /// Creates a pod on `POD_NODE` annotated with `sgc`; `ips` empty: still in CNI ADD.
    /// Returns its UID.
    pub async fn pod(&self, name: &str, sgc: &str, ips: &[&str]) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        let created = pods
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": {"name": name, "annotations": {POD_ANNOTATION: sgc}},
                    "spec": {"nodeName": POD_NODE, "containers": [{"name": "c", "image": "busybox"}]},
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        if let Some(first) = ips.first() {
            let all: Vec<_> = ips.iter().map(|ip| json!({"ip": ip})).collect();
            pods.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"phase": "Running", "podIP": first, "podIPs": all}}),
                ),
            )
            .await
            .unwrap();
        }
        created.metadata.uid.unwrap()
    }

    /// Forges PodEndpoints against the victim's PodEndpoint, each named to sort before it:
    /// its IP with a fresh key from a pod of the forger still in ADD, its public key on the IP
    /// of the forger's running pod, and its IP owned (by reference) by the victim's own pod.
    /// Returns the Events (object, note) each must cause, sorted.
    pub async fn forge(&self, victim: &str, ip: &str, key: &str) -> Vec<(String, String)> {
        let fresh = PrivateKey::generate().public_key().to_base64();
        let uid = self.pod("aa-forged-ip", "gw-a", &[]).await;
        self.create_pod_endpoint(
            "aa-forged-ip",
            "gw-a",
            ip,
            &fresh,
            ("aa-forged-ip", &uid),
            POD_NODE,
        )
        .await;
        let uid = self.pod("ab-dup-key", "gw-a", &["10.250.0.77"]).await;
        self.create_pod_endpoint(
            "ab-dup-key",
            "gw-a",
            "10.250.0.77/32",
            key,
            ("ab-dup-key", &uid),
            POD_NODE,
        )
        .await;
        let victim_uid = self.pod_uid(victim).await;
        self.create_pod_endpoint(
            "ac-borrowed",
            "gw-a",
            ip,
            &fresh,
            (victim, &victim_uid),
            POD_NODE,
        )
        .await;
        vec![
            (
                "aa-forged-ip".to_owned(),
                format!(
                    "refused PodEndpoint {NS}/aa-forged-ip: spec.podIpAddress {ip} is already held by PodEndpoint {NS}/{victim}"
                ),
            ),
            (
                "ab-dup-key".to_owned(),
                format!(
                    "refused PodEndpoint {NS}/ab-dup-key: its spec.podPublicKey is already held by PodEndpoint {NS}/{victim} on wg-6000"
                ),
            ),
            (
                "ac-borrowed".to_owned(),
                format!(
                    "refused PodEndpoint {NS}/ac-borrowed: its controller owner is pod \"{victim}\", not the pod of the same name (the CNI manager names a PodEndpoint after its pod)"
                ),
            ),
        ]
    }

    /// Waits until the Events with reason `PodEndpointRefused` are exactly `expected`.
    pub async fn refusals(&self, expected: &[(String, String)]) {
        wait_for(
            "the refusals as Events",
            Duration::from_secs(15),
            || async {
                let mut events = self.events("PodEndpointRefused").await;
                events.sort();
                events == expected
            },
        )
        .await;
    }

    /// The UID of pod `name`.
    pub async fn pod_uid(&self, name: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        pods.get(name).await.unwrap().metadata.uid.unwrap()
    }

    /// Creates a PodEndpoint owned by pod `owner` (name, UID) with the node label `node`.
    pub async fn create_pod_endpoint(
        &self,
        name: &str,
        sgc: &str,
        ip: &str,
        key: &str,
        owner: (&str, &str),
        node: &str,
    ) {
        let api: Api<PodEndpoint> = Api::namespaced(self.client.clone(), NS);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": egress_api::constants::API_VERSION,
                "kind": "PodEndpoint",
                "metadata": {"name": name,
                    "labels": {egress_api::constants::POD_ENDPOINT_NODE_LABEL: node},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": owner.0,
                        "uid": owner.1, "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": ip, "podPublicKey": key},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    }

    pub async fn delete_pod_endpoint(&self, name: &str) {
        let api: Api<PodEndpoint> = Api::namespaced(self.client.clone(), NS);
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }

    /// Warning Events with this reason: (object name, note).
    pub async fn events(&self, reason: &str) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::all(self.client.clone());
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| {
                (
                    e.regarding.and_then(|r| r.name).unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// The `egress_gateway_<name>` sample with these labels, from the daemon's metrics text.
pub fn sample(running: &Running, name: &str, labels: &str) -> Option<f64> {
    let text = running.daemon.metrics().encode().unwrap();
    let prefix = format!("egress_gateway_{name}{labels} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until the daemon ran more than `more_than` full cycles.
pub async fn full_cycles(running: &Running, more_than: f64) {
    wait_for("more full cycles", Duration::from_secs(15), || async {
        sample(
            running,
            "programming_duration_seconds_count",
            "{kind=\"full\"}",
        )
        .is_some_and(|n| n > more_than)
    })
    .await;
}

/// Daemon settings for tests: quick status batching, no periodic resync, no drain.
pub fn config(node: NodeIdentity, host: HostConfig) -> DaemonConfig {
    DaemonConfig {
        node_name: NODE.into(),
        namespace: KEY_NS.into(),
        node,
        host,
        resync_interval: Duration::from_secs(3600),
        drain: Duration::ZERO,
        status_interval: Duration::from_millis(300),
        status_max_peers: 1000,
        metrics_interval: Duration::from_millis(200),
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
        publish: Default::default(),
    }
}

pub struct Running {
    pub daemon: Daemon,
    pub probe: SocketAddr,
    pub health: SocketAddr,
}

pub async fn start_daemon(
    cluster: &Cluster,
    dataplane: Dataplane,
    config: DaemonConfig,
) -> Running {
    start_daemon_with(cluster, dataplane, config, DaemonOptions::default()).await
}

pub async fn start_daemon_with(
    cluster: &Cluster,
    dataplane: Dataplane,
    config: DaemonConfig,
    options: DaemonOptions,
) -> Running {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (p, h) = (probe.local_addr().unwrap(), health.local_addr().unwrap());
    let daemon = Daemon::start_with(
        cluster.client.clone(),
        dataplane,
        config,
        Listeners {
            probe,
            health: vec![health],
        },
        options,
    );
    Running {
        daemon,
        probe: p,
        health: h,
    }
}
