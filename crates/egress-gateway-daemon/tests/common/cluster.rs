//! An in-memory API server with the CRDs, objects as the operator and the CNI manager write
//! them, a daemon started against it, and small HTTP/wait helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use egress_api::{GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig};
use egress_dataplane::{Dataplane, PrivateKey};
use egress_gateway_daemon::{Daemon, DaemonConfig, HostConfig, Listeners, NodeIdentity};
use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const NS: &str = "default";
pub const KEY_NS: &str = "kube-egress-gateway-system";
pub const NODE: &str = "gw-vmss000000";

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

    pub async fn pod_endpoint(&self, name: &str, sgc: &str, ip: &str, key: &str) {
        let api: Api<PodEndpoint> = Api::namespaced(self.client.clone(), NS);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": egress_api::constants::API_VERSION,
                "kind": "PodEndpoint",
                "metadata": {"name": name},
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
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (p, h) = (probe.local_addr().unwrap(), health.local_addr().unwrap());
    let daemon = Daemon::start(
        cluster.client.clone(),
        dataplane,
        config,
        Listeners {
            probe,
            health: vec![health],
        },
    );
    Running {
        daemon,
        probe: p,
        health: h,
    }
}
