//! The apply side of attaching running pods (`running::apply::TunnelAttacher`) over a fake
//! data plane and the in-memory API server: an attach registers through the same handler as
//! ADD and builds, waits for the handshake, routes and records; a detach undoes it; a missing
//! handshake undoes everything; the manager's own checks refuse a pod ADD would refuse; and a
//! DEL holding the sandbox's lock wins over an attach waiting for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use egress_api::constants::POD_ANNOTATION;
use egress_api::{PodEndpoint, StaticGatewayConfiguration};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig};
use egress_cni_manager::gateways::GatewayCache;
use egress_cni_manager::handler::{CONTAINER_ID_ANNOTATION, RequestHandler};
use egress_cni_manager::metrics::Metrics;
use egress_cni_manager::running::apply::{
    AttachError, Attached, Attacher, Detached, TunnelAttacher,
};
use egress_cni_manager::state::PodCache;
use egress_cni_proto::{Backend, WireKey};
use egress_pod_tunnel::sandbox::{SandboxLock, SandboxRecord};
use egress_pod_tunnel::tunnel::{PodTunnel, TunnelError, TunnelSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const NODE: &str = "node-a";
const KEY: &str = "YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3XpVlI=";
const GW_KEY: &str = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gISE=";

/// Records what it was asked; the handshake happens at once unless `no_handshake`.
#[derive(Debug, Clone, Default)]
struct FakeTunnel {
    log: Arc<Mutex<Vec<String>>>,
    no_handshake: bool,
}

impl FakeTunnel {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn push(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

impl PodTunnel for FakeTunnel {
    type Key = String;
    fn generate_key(&self) -> Result<(String, WireKey), TunnelError> {
        Ok(("private".into(), WireKey::parse(KEY).unwrap()))
    }
    fn setup(&self, spec: &TunnelSpec, _: &String) -> Result<(), TunnelError> {
        self.push(format!(
            "setup {} {}",
            spec.gateway,
            spec.sandbox.netns.display()
        ));
        Ok(())
    }
    fn latest_handshake(&self, _: &TunnelSpec) -> Result<Option<SystemTime>, TunnelError> {
        Ok((!self.no_handshake).then(SystemTime::now))
    }
    fn retry_handshake(&self, _: &TunnelSpec) -> Result<(), TunnelError> {
        Ok(())
    }
    fn route(&self, spec: &TunnelSpec, _: &String) -> Result<(), TunnelError> {
        self.push(format!("route {}", spec.gateway));
        Ok(())
    }
    fn teardown(
        &self,
        _: Option<&TunnelSpec>,
        _: &std::path::Path,
        id: &str,
        _: &std::path::Path,
    ) -> Result<(), TunnelError> {
        self.push(format!("teardown {id}"));
        Ok(())
    }
    fn detach(&self, spec: &TunnelSpec) -> Result<(), TunnelError> {
        self.push(format!("detach {}", spec.gateway));
        Ok(())
    }
    fn drift(&self, _: &TunnelSpec) -> Result<Vec<String>, TunnelError> {
        Ok(vec![])
    }
}

struct Env {
    _api: RunningApiServer,
    client: kube::Client,
    handler: RequestHandler,
    state: tempfile::TempDir,
}

/// `v` as a typed object (the test's own literals).
fn obj<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).unwrap()
}

/// A running pod of NODE with IP `ip`; its UID.
async fn running_pod(client: &kube::Client, name: &str, sgc: Option<&str>, ip: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns1");
    let annotations = sgc.map_or(json!({}), |s| json!({ POD_ANNOTATION: s }));
    let spec = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns1", "annotations": annotations},
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]}});
    let pod = pods
        .create(&PostParams::default(), &obj(spec))
        .await
        .unwrap();
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}})),
    )
    .await
    .unwrap();
    pod.uid().unwrap()
}

async fn setup() -> Env {
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/crd");
    let api = ApiServer::start(ServerConfig::default().with_crds(crds))
        .await
        .unwrap();
    let client = api.client().unwrap();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}});
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &obj(ns))
        .await
        .unwrap();
    let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(client.clone(), "ns1");
    let gw = json!({"apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration", "metadata": {"name": "gw", "namespace": "ns1"},
        "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": true}});
    sgcs.create(&PostParams::default(), &obj(gw)).await.unwrap();
    sgcs.patch_status(
        "gw",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"egressIpPrefix": "203.0.113.100/31",
            "gatewayServerProfile": {"ip": "10.0.0.5", "port": 6000, "publicKey": GW_KEY,
            "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": "s",
                "namespace": "kube-egress-gateway-system"}}}})),
    )
    .await
    .unwrap();
    let handler = RequestHandler::new(
        client.clone(),
        NODE.into(),
        PodCache::default(),
        GatewayCache::unwatched(),
        Metrics::default(),
    );
    Env {
        _api: api,
        client,
        handler,
        state: tempfile::tempdir().unwrap(),
    }
}

fn sandbox(env: &Env, id: &str, pod: &str, uid: &str, ip: &str) -> SandboxRecord {
    let record = SandboxRecord {
        container_id: id.into(),
        netns: format!("/run/netns/{id}").into(),
        eth: "eth0".into(),
        pod_ip: ip.parse().unwrap(),
        eth_gateway: "10.244.1.1".parse().unwrap(),
        pod_ipv6: None,
        eth_ipv6_gateway: None,
        mtu: 1420,
        backend: Backend::Kernel,
        node_excluded_cidrs: vec![],
        state_dir: env.state.path().to_path_buf(),
        pod_namespace: "ns1".into(),
        pod_name: pod.into(),
        pod_uid: Some(uid.into()),
    };
    record.save().unwrap();
    record
}

fn attacher(env: &Env, tunnel: &FakeTunnel, timeout: Duration) -> TunnelAttacher<FakeTunnel> {
    TunnelAttacher::new(tunnel.clone(), env.handler.clone(), timeout)
}

#[tokio::test]
async fn attach_registers_builds_and_records_and_detach_undoes_it() {
    let env = setup().await;
    let uid = running_pod(&env.client, "web", Some("gw"), "10.244.1.10").await;
    let s = sandbox(&env, "c1", "web", &uid, "10.244.1.10");
    let tunnel = FakeTunnel::default();
    let a = attacher(&env, &tunnel, Duration::from_secs(2));

    let got = a.attach(&s).await.unwrap();
    assert!(
        matches!(&got, Attached::Attached { gateway, .. } if gateway == "gw"),
        "{got:?}"
    );
    assert_eq!(tunnel.log(), ["setup gw /run/netns/c1", "route gw"]);
    let spec = TunnelSpec::load(env.state.path(), "c1").unwrap().unwrap();
    assert_eq!(
        (spec.gateway.as_str(), spec.pod_public_key.as_str()),
        ("gw", KEY)
    );
    let endpoints: Api<PodEndpoint> = Api::namespaced(env.client.clone(), "ns1");
    let ep = endpoints.get("web").await.unwrap();
    assert_eq!(ep.spec.static_gateway_configuration.as_deref(), Some("gw"));
    assert_eq!(
        ep.annotations()
            .get(CONTAINER_ID_ANNOTATION)
            .map(String::as_str),
        Some("c1")
    );

    assert_eq!(
        a.detach(&s).await.unwrap(),
        Detached::Detached { from: "gw".into() }
    );
    assert_eq!(tunnel.log().last().map(String::as_str), Some("detach gw"));
    assert!(TunnelSpec::load(env.state.path(), "c1").unwrap().is_none());
    assert!(endpoints.get_opt("web").await.unwrap().is_none());
    assert_eq!(a.detach(&s).await.unwrap(), Detached::Nothing, "idempotent");
}

#[tokio::test]
async fn no_handshake_undoes_the_tunnel_and_the_registration() {
    let env = setup().await;
    let uid = running_pod(&env.client, "web", Some("gw"), "10.244.1.10").await;
    let s = sandbox(&env, "c1", "web", &uid, "10.244.1.10");
    let tunnel = FakeTunnel {
        no_handshake: true,
        ..FakeTunnel::default()
    };
    let err = attacher(&env, &tunnel, Duration::from_millis(300))
        .attach(&s)
        .await
        .unwrap_err();
    assert!(matches!(err, AttachError::Handshake(_)), "{err}");
    assert!(
        err.to_string()
            .contains("no WireGuard handshake with gateway gw"),
        "{err}"
    );
    assert_eq!(tunnel.log(), ["setup gw /run/netns/c1", "detach gw"]);
    assert!(TunnelSpec::load(env.state.path(), "c1").unwrap().is_none());
    let endpoints: Api<PodEndpoint> = Api::namespaced(env.client.clone(), "ns1");
    assert!(endpoints.get_opt("web").await.unwrap().is_none());
}

#[tokio::test]
async fn the_handlers_checks_refuse_what_add_would_refuse() {
    let env = setup().await;
    let plain = running_pod(&env.client, "plain", None, "10.244.1.11").await;
    let other = running_pod(&env.client, "other", Some("gw"), "10.244.1.12").await;
    let tunnel = FakeTunnel::default();
    let a = attacher(&env, &tunnel, Duration::from_secs(2));
    let cases = [
        (
            sandbox(&env, "c2", "plain", &plain, "10.244.1.11"),
            "has no kubernetes.azure.com/static-gateway-configuration annotation",
        ),
        (
            sandbox(&env, "c3", "other", &other, "10.244.1.99"),
            "not 10.244.1.99",
        ),
        (
            sandbox(&env, "c4", "other", "not-the-uid", "10.244.1.12"),
            "the pod was re-created",
        ),
    ];
    for (s, want) in cases {
        let err = a.attach(&s).await.unwrap_err();
        assert!(
            matches!(err, AttachError::Refused(_)) && err.to_string().contains(want),
            "{err}"
        );
    }
    assert_eq!(tunnel.log(), Vec::<String>::new(), "nothing built");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_del_holding_the_lock_wins_over_a_waiting_attach() {
    let env = setup().await;
    let uid = running_pod(&env.client, "web", Some("gw"), "10.244.1.10").await;
    let s = sandbox(&env, "c1", "web", &uid, "10.244.1.10");
    let tunnel = FakeTunnel::default();
    let a = attacher(&env, &tunnel, Duration::from_secs(2));
    // The plugin's DEL of the same sandbox, in progress.
    let del = SandboxLock::acquire(env.state.path(), "c1").unwrap();
    let attach = tokio::spawn({
        let s = s.clone();
        async move { a.attach(&s).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!attach.is_finished(), "the attach waits for the lock");
    SandboxRecord::forget(env.state.path(), "c1").unwrap();
    del.remove();
    assert_eq!(attach.await.unwrap().unwrap(), Attached::SandboxGone);
    assert_eq!(tunnel.log(), Vec::<String>::new());
}
