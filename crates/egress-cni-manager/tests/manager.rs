//! The manager against the in-memory API server: conflist installation and following,
//! PodEndpoint create/delete for its own node only, refusals with specific errors, cache-only
//! answers for pods without the annotation, taint removal, health endpoints, uninstall.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use egress_api::constants::{CNI_CONFLIST_FILE, CNI_NOT_READY_TAINT, CNI_TYPE, POD_ANNOTATION};
use egress_api::{PodEndpoint, StaticGatewayConfiguration};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig};
use egress_cni_manager::{ManagerConfig, RunningManager};
use egress_cni_proto::{
    AddRequest, Client, ClientError, DefaultRoute, DelRequest, ErrorKind, PodRef, WireKey,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const NODE: &str = "node-a";
const KEY: &str = "YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3XpVlI=";
const GW_KEY: &str = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gISE=";
const MAIN: &str = r#"{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[{"type":"ptp","ipam":{"type":"host-local","subnet":"10.244.1.0/24"}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#;

struct Env {
    api: RunningApiServer,
    client: kube::Client,
    dir: tempfile::TempDir,
    manager: Option<RunningManager>,
}

impl Env {
    fn plugin(&self) -> Client {
        Client::new(self.dir.path().join("run/cni.sock"), Duration::from_secs(5))
    }
    fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("net.d")
    }
}

async fn create<K>(api: &Api<K>, v: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap()
}

async fn pod(client: &kube::Client, name: &str, node: &str, sgc: Option<&str>, ip: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns1");
    let annotations = sgc
        .map(|s| json!({ POD_ANNOTATION: s }))
        .unwrap_or(json!({}));
    create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns1", "annotations": annotations},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
        }),
    )
    .await;
    if let Some(ip) = ip {
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
            })),
        )
        .await
        .unwrap();
    }
}

async fn sgc(client: &kube::Client, name: &str, ready: bool, default_route: &str) {
    selector_sgc(client, name, ready, default_route, None).await;
}

async fn selector_sgc(
    client: &kube::Client,
    name: &str,
    ready: bool,
    default_route: &str,
    selector: Option<serde_json::Value>,
) {
    let api: Api<StaticGatewayConfiguration> = Api::namespaced(client.clone(), "ns1");
    let mut spec = json!({"gatewayNodepoolName": "gwpool", "provisionPublicIps": true,
             "defaultRoute": default_route, "excludeCidrs": ["192.0.2.0/24"]});
    if let Some(s) = selector {
        spec["podSelector"] = s;
    }
    create(
        &api,
        json!({
            "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
            "kind": "StaticGatewayConfiguration",
            "metadata": {"name": name, "namespace": "ns1"},
            "spec": spec,
        }),
    )
    .await;
    let status = if ready {
        json!({"egressIpPrefix": "203.0.113.100/31", "gatewayServerProfile": {
            "ip": "10.0.0.5", "port": 6000, "publicKey": GW_KEY,
            "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": "sgw-1", "namespace": "kube-egress-gateway-system"}}})
    } else {
        json!({"gatewayServerProfile": {"port": 6001}})
    };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

async fn setup(extra_uninstall: bool) -> Env {
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/crd");
    let api = ApiServer::start(ServerConfig::default().with_crds(crds))
        .await
        .unwrap();
    let client = api.client().unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    create(
        &ns,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}}),
    )
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    for n in [NODE, "node-b"] {
        create(
            &nodes,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n},
            "spec": {"taints": [
                {"key": "example.com/keep", "effect": "NoSchedule"},
                {"key": CNI_NOT_READY_TAINT, "value": "true", "effect": "NoSchedule"}]}}),
        )
        .await;
    }
    pod(&client, "web", NODE, Some("sgc1"), None).await;
    pod(&client, "plain", NODE, None, Some("10.244.1.11")).await;
    pod(&client, "moved", NODE, Some("sgc1"), Some("10.244.1.50")).await;
    pod(&client, "lost", NODE, Some("missing-sgc"), None).await;
    pod(&client, "early", NODE, Some("sgc-unready"), None).await;
    pod(&client, "azure", NODE, Some("sgc-azure"), None).await;
    pod(&client, "elsewhere", "node-b", Some("sgc1"), None).await;
    sgc(&client, "sgc1", true, "staticEgressGateway").await;
    sgc(&client, "sgc-unready", false, "staticEgressGateway").await;
    sgc(&client, "sgc-azure", true, "azureNetworking").await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net.d")).unwrap();
    std::fs::write(dir.path().join("net.d/10-ptp.conflist"), MAIN).unwrap();
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let config = ManagerConfig {
        node_name: NODE.into(),
        socket_path: dir.path().join("run/cni.sock"),
        cni_conf_dir: dir.path().join("net.d"),
        exception_cidrs: vec!["169.254.169.254/32".parse().unwrap()],
        handshake_timeout: Duration::from_secs(7),
        conflist_poll_interval: Duration::from_millis(50),
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        uninstall_on_exit: extra_uninstall,
        allowed_uids: vec![uid],
        max_connections: usize::from(egress_cni_manager::DEFAULT_MAX_CONNECTIONS),
        attach_running_pods: true,
    };
    let manager = egress_cni_manager::start(config, client.clone())
        .await
        .unwrap();
    assert!(
        manager.wait_ready(Duration::from_secs(10)).await,
        "{:?}",
        manager.state.not_ready_reasons()
    );
    Env {
        api,
        client,
        dir,
        manager: Some(manager),
    }
}

fn pod_ref(name: &str) -> PodRef {
    PodRef {
        namespace: "ns1".into(),
        name: name.into(),
        uid: None,
    }
}

async fn add(env: &Env, name: &str, ip: &str) -> Result<egress_cni_proto::AddReply, ClientError> {
    add_dual(env, name, ip, None).await
}

async fn add_dual(
    env: &Env,
    name: &str,
    ip: &str,
    ipv6: Option<&str>,
) -> Result<egress_cni_proto::AddReply, ClientError> {
    let c = env.plugin();
    let req = AddRequest {
        pod: pod_ref(name),
        container_id: format!("ctr-{name}"),
        pod_ip: ip.parse().unwrap(),
        public_key: WireKey::parse(KEY).unwrap(),
        pod_ipv6: ipv6.map(|v| v.parse().unwrap()),
    };
    tokio::task::spawn_blocking(move || c.add(req))
        .await
        .unwrap()
}

async fn del(env: &Env, name: &str, container: &str) -> bool {
    let c = env.plugin();
    let req = DelRequest {
        pod: pod_ref(name),
        container_id: container.into(),
    };
    tokio::task::spawn_blocking(move || c.del(req))
        .await
        .unwrap()
        .unwrap()
        .deleted
}

fn refusal(r: Result<egress_cni_proto::AddReply, ClientError>) -> (ErrorKind, String) {
    match r {
        Err(ClientError::Refused(e)) => (e.kind, e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn eventually<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(what: &str, f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A dual-stack SGC: IPv6 in `ipFamilies` and its IPv6 prefix provisioned.
async fn dual_stack_sgc(client: &kube::Client, name: &str) {
    sgc(client, name, true, "staticEgressGateway").await;
    let api: Api<StaticGatewayConfiguration> = Api::namespaced(client.clone(), "ns1");
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ipFamilies": ["IPv4", "IPv6"],
            "excludeCidrs": ["192.0.2.0/24", "2001:db8:e::/48"]}})),
    )
    .await
    .unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"egressIpv6Prefix": "2001:db8:f::/127"}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_dual_stack_pod_of_a_dual_stack_gateway_gets_its_ipv6_on_the_pod_endpoint() {
    let env = setup(false).await;
    dual_stack_sgc(&env.client, "sgc6").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "ns1");
    create(
        &pods,
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "dual", "namespace": "ns1",
                "annotations": {POD_ANNOTATION: "sgc6"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    pods.patch_status(
        "dual",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"phase": "Running", "podIP": "10.244.1.60",
            "podIPs": [{"ip": "10.244.1.60"}, {"ip": "fd00:10:244:1::60"}]}}),
        ),
    )
    .await
    .unwrap();
    let pes: Api<PodEndpoint> = Api::namespaced(env.client.clone(), "ns1");
    let v6_of = || async { pes.get("dual").await.unwrap().spec.pod_ipv6_address };

    // An IPv6 that is not the pod's (once its IPs reach the cache) or a link-local one is
    // refused like a wrong IPv4.
    eventually("the pod's IPs reach the cache", || async {
        add_dual(&env, "dual", "10.244.1.60", Some("fd00:10:244:1::61"))
            .await
            .is_err()
    })
    .await;
    for bad in ["fd00:10:244:1::61", "fe80::60"] {
        let (kind, msg) = refusal(add_dual(&env, "dual", "10.244.1.60", Some(bad)).await);
        assert_eq!(kind, ErrorKind::IpMismatch, "{bad}: {msg}");
        assert!(msg.contains(bad), "{msg}");
    }

    let reply = add_dual(&env, "dual", "10.244.1.60", Some("fd00:10:244:1::60"))
        .await
        .unwrap();
    assert!(reply.ipv6);
    assert_eq!(reply.exclude_cidrs.len(), 2, "{:?}", reply.exclude_cidrs);
    assert_eq!(v6_of().await.as_deref(), Some("fd00:10:244:1::60/128"));

    // A sandbox without IPv6 (or an older plugin) clears it: IPv4 only.
    let reply = add(&env, "dual", "10.244.1.60").await.unwrap();
    assert!(!reply.ipv6);
    assert_eq!(v6_of().await, None);

    // Its IPv6 prefix not provisioned (yet): a pod with IPv6 waits, one without is served.
    let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(env.client.clone(), "ns1");
    sgcs.patch_status(
        "sgc6",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"egressIpv6Prefix": null}})),
    )
    .await
    .unwrap();
    let (kind, msg) =
        refusal(add_dual(&env, "dual", "10.244.1.60", Some("fd00:10:244:1::60")).await);
    assert_eq!(kind, ErrorKind::GatewayNotReady, "{msg}");
    assert!(msg.contains("status.egressIpv6Prefix not set yet"), "{msg}");
    assert!(!add(&env, "dual", "10.244.1.60").await.unwrap().ipv6);

    // An IPv4-only gateway never takes a pod's IPv6.
    pods.patch(
        "dual",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations":
            {POD_ANNOTATION: "sgc1"}}})),
    )
    .await
    .unwrap();
    eventually("the annotation reaches the cache", || async {
        add_dual(&env, "dual", "10.244.1.60", Some("fd00:10:244:1::60"))
            .await
            .is_ok_and(|r| r.gateway == "sgc1")
    })
    .await;
    let reply = add_dual(&env, "dual", "10.244.1.60", Some("fd00:10:244:1::60"))
        .await
        .unwrap();
    assert!(!reply.ipv6);
    assert_eq!(v6_of().await, None);
}

#[tokio::test]
async fn add_and_del_manage_the_pod_endpoint_of_this_node_only() {
    let env = setup(false).await;
    let reply = add(&env, "web", "10.244.1.10").await.unwrap();
    assert_eq!(reply.gateway, "sgc1");
    assert_eq!(reply.endpoint, "10.0.0.5:6000".parse().unwrap());
    assert_eq!(reply.gateway_public_key.as_str(), GW_KEY);
    assert_eq!(reply.default_route, DefaultRoute::StaticEgressGateway);
    assert_eq!(reply.exclude_cidrs, vec!["192.0.2.0/24".parse().unwrap()]);

    let pes: Api<PodEndpoint> = Api::namespaced(env.client.clone(), "ns1");
    let pe = pes.get("web").await.unwrap();
    assert_eq!(pe.spec.pod_ip_address.as_deref(), Some("10.244.1.10/32"));
    assert_eq!(pe.spec.pod_public_key.as_deref(), Some(KEY));
    assert_eq!(
        pe.spec.static_gateway_configuration.as_deref(),
        Some("sgc1")
    );
    let web: Pod = Api::namespaced(env.client.clone(), "ns1")
        .get("web")
        .await
        .unwrap();
    let owner = &pe.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Pod", web.metadata.uid.as_deref().unwrap(), Some(true))
    );

    // ADD again (retry of the same sandbox) is accepted and keeps one endpoint.
    add(&env, "web", "10.244.1.10").await.unwrap();

    // azureNetworking is passed through.
    let az = add(&env, "azure", "10.244.1.12").await.unwrap();
    assert_eq!(az.default_route, DefaultRoute::AzureNetworking);

    // DEL of an older sandbox leaves the endpoint; DEL of the owner removes it; DEL is idempotent.
    assert!(!del(&env, "web", "ctr-older").await);
    assert!(pes.get_opt("web").await.unwrap().is_some());
    assert!(del(&env, "web", "ctr-web").await);
    assert!(pes.get_opt("web").await.unwrap().is_none());
    assert!(!del(&env, "web", "ctr-web").await);
    env.manager.unwrap().shutdown().await;
}

#[tokio::test]
async fn refusals_name_the_pod_the_gateway_and_what_is_missing() {
    let env = setup(false).await;
    let pes: Api<PodEndpoint> = Api::namespaced(env.client.clone(), "ns1");

    let (kind, msg) = refusal(add(&env, "elsewhere", "10.244.2.5").await);
    assert_eq!(kind, ErrorKind::PodNotOnNode);
    assert!(
        msg.contains("ns1/elsewhere") && msg.contains("node-b") && msg.contains(NODE),
        "{msg}"
    );

    let (kind, msg) = refusal(add(&env, "web", "10.244.1.11").await);
    assert_eq!(kind, ErrorKind::IpMismatch);
    assert!(msg.contains("belongs to pod ns1/plain"), "{msg}");

    let (kind, msg) = refusal(add(&env, "moved", "10.244.1.51").await);
    assert_eq!(kind, ErrorKind::IpMismatch);
    assert!(
        msg.contains("10.244.1.50") && msg.contains("not 10.244.1.51"),
        "{msg}"
    );

    let (kind, msg) = refusal(add(&env, "plain", "10.244.1.11").await);
    assert_eq!(kind, ErrorKind::PodNotAnnotated);
    assert!(msg.contains(POD_ANNOTATION), "{msg}");

    let (kind, msg) = refusal(add(&env, "lost", "10.244.1.13").await);
    assert_eq!(kind, ErrorKind::GatewayNotFound);
    assert!(
        msg.contains("StaticGatewayConfiguration ns1/missing-sgc")
            && msg.contains("does not exist"),
        "{msg}"
    );

    let (kind, msg) = refusal(add(&env, "early", "10.244.1.14").await);
    assert_eq!(kind, ErrorKind::GatewayNotReady);
    assert!(kind.is_transient());
    assert!(msg.contains("ns1/sgc-unready is not ready"), "{msg}");
    for field in [
        "status.egressIpPrefix",
        "status.gatewayServerProfile.ip",
        "status.gatewayServerProfile.publicKey",
    ] {
        assert!(msg.contains(field), "{msg}");
    }
    assert!(
        !msg.contains("status.gatewayServerProfile.port"),
        "port is set: {msg}"
    );

    // Once the operator reports why it cannot provision the SGC, the pod is told that reason.
    let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(env.client.clone(), "ns1");
    let failing = json!({"status": {"conditions": [{"type": "LoadBalancerReady",
        "status": "False", "reason": "GatewayPoolNotFound", "observedGeneration": 1,
        "message": "failed to find the gateway pool nodepool/gwpool",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    sgcs.patch_status(
        "sgc-unready",
        &PatchParams::default(),
        &Patch::Merge(failing),
    )
    .await
    .unwrap();
    let (kind, msg) = refusal(add(&env, "early", "10.244.1.14").await);
    assert_eq!(kind, ErrorKind::GatewayFailed);
    assert!(!kind.is_transient());
    assert!(
        msg.contains("ns1/sgc-unready cannot be provisioned: GatewayPoolNotFound: failed to find the gateway pool nodepool/gwpool"),
        "{msg}"
    );

    let (kind, _) = refusal(add(&env, "ghost", "10.244.1.15").await);
    assert_eq!(kind, ErrorKind::PodNotFound);

    // A pod re-created under the same name (other UID) is refused.
    let c = env.plugin();
    let req = AddRequest {
        pod: PodRef {
            uid: Some("not-the-uid".into()),
            ..pod_ref("web")
        },
        container_id: "c".into(),
        pod_ip: "10.244.1.10".parse().unwrap(),
        public_key: WireKey::parse(KEY).unwrap(),
        pod_ipv6: None,
    };
    let (kind, msg) = refusal(
        tokio::task::spawn_blocking(move || c.add(req))
            .await
            .unwrap(),
    );
    assert_eq!(kind, ErrorKind::PodNotFound);
    assert!(msg.contains("re-created"), "{msg}");

    // After the pod's sandbox was torn down, its recorded IP is stale and a new one is accepted.
    del(&env, "moved", "ctr-moved").await;
    add(&env, "moved", "10.244.1.51").await.unwrap();

    assert!(pes.get_opt("elsewhere").await.unwrap().is_none());
    assert!(pes.get_opt("lost").await.unwrap().is_none());
    assert!(pes.get_opt("early").await.unwrap().is_none());

    // An SGC being deleted (held by a finalizer) takes no new pods.
    sgcs.patch(
        "sgc-azure",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    sgcs.delete("sgc-azure", &Default::default()).await.unwrap();
    let (kind, msg) = refusal(add(&env, "azure", "10.244.1.12").await);
    assert_eq!(kind, ErrorKind::GatewayFailed);
    assert!(msg.contains("ns1/sgc-azure is being deleted"), "{msg}");
    env.manager.unwrap().shutdown().await;
}

#[tokio::test]
async fn pods_without_the_annotation_are_answered_from_the_node_cache() {
    let env = setup(false).await;
    let m = env.manager.as_ref().unwrap();
    // Only this node's pods are cached.
    assert_eq!(m.cache.len(), 6);
    assert!(m.cache.get(&("ns1".into(), "elsewhere".into())).is_none());

    let log = env.api.request_log();
    let before = log.recent().len();
    let c = env.plugin();
    let (plain, web, del_plain) = tokio::task::spawn_blocking(move || {
        (
            c.pod_gateway(pod_ref("plain")).unwrap(),
            c.pod_gateway(pod_ref("web")).unwrap(),
            c.del(DelRequest {
                pod: pod_ref("plain"),
                container_id: "x".into(),
            })
            .unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(plain.gateway, None);
    assert_eq!(web.gateway.as_deref(), Some("sgc1"));
    assert!(!del_plain.deleted);
    let api_calls: Vec<_> = log.recent()[before..]
        .iter()
        .filter(|r| {
            ["pods", "podendpoints", "staticgatewayconfigurations"].contains(&r.resource.as_str())
        })
        .cloned()
        .collect();
    assert!(
        api_calls.is_empty(),
        "cache answers must not call the API: {api_calls:?}"
    );

    // Every pod list/watch the manager makes is scoped to its node: pods of node-b created
    // later never reach the cache, pods of this node do.
    pod(&env.client, "late-b", "node-b", None, None).await;
    pod(&env.client, "late-a", NODE, None, None).await;
    eventually("late-a cached", || async {
        m.cache.get(&("ns1".into(), "late-a".into())).is_some()
    })
    .await;
    assert!(m.cache.get(&("ns1".into(), "late-b".into())).is_none());
    assert!(
        log.recent()
            .iter()
            .any(|r| r.resource == "pods" && r.verb == "watch")
    );
    env.manager.unwrap().shutdown().await;
}

#[tokio::test]
async fn conflist_is_installed_followed_and_taint_removed() {
    let mut env = setup(true).await;
    let ours = env.conf().join(CNI_CONFLIST_FILE);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ours).unwrap()).unwrap();
    let types: Vec<_> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["ptp", CNI_TYPE, "portmap"]);
    assert_eq!(v["plugins"][1]["handshakeTimeoutSeconds"], 7);
    assert_eq!(
        v["plugins"][1]["socketPath"],
        env.dir.path().join("run/cni.sock").display().to_string()
    );

    // Socket: 0600 in a 0700 directory.
    let sock = std::fs::metadata(env.dir.path().join("run/cni.sock")).unwrap();
    assert_eq!(sock.mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(env.dir.path().join("run"))
            .unwrap()
            .mode()
            & 0o777,
        0o700
    );

    // Taint removed from this node only, other taints kept.
    let nodes: Api<Node> = Api::all(env.client.clone());
    let taints = |n: Node| {
        n.spec
            .unwrap()
            .taints
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.key)
            .collect::<Vec<_>>()
    };
    eventually("taint removed", || async {
        taints(nodes.get(NODE).await.unwrap()) == ["example.com/keep"]
    })
    .await;
    assert!(taints(nodes.get("node-b").await.unwrap()).contains(&CNI_NOT_READY_TAINT.to_string()));

    // The main config changes: ours follows.
    let changed = MAIN.replace("k8s-pod-network", "renamed-network");
    std::fs::write(env.conf().join("10-ptp.conflist"), changed).unwrap();
    eventually("conflist rewritten", || async {
        std::fs::read_to_string(&ours)
            .unwrap_or_default()
            .contains("renamed-network")
    })
    .await;

    // Health endpoints.
    let m = env.manager.take().unwrap();
    let addr = m.http_addr.unwrap();
    let get = |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
    let metrics = get("/metrics").await;
    assert!(
        metrics.contains("egress_cni_manager_cached_pods"),
        "{metrics}"
    );
    assert!(
        metrics.contains("egress_cni_manager_taint_removals_total 1"),
        "{metrics}"
    );

    // Uninstall: ours removed, the main config untouched, the socket gone.
    m.shutdown().await;
    assert!(!ours.exists());
    assert!(env.conf().join("10-ptp.conflist").exists());
    assert!(!env.dir.path().join("run/cni.sock").exists());
}

#[tokio::test]
async fn a_second_manager_on_the_same_socket_refuses_to_start() {
    let env = setup(false).await;
    let config = ManagerConfig {
        node_name: NODE.into(),
        socket_path: env.dir.path().join("run/cni.sock"),
        cni_conf_dir: env.conf(),
        exception_cidrs: vec![],
        handshake_timeout: Duration::from_secs(1),
        conflist_poll_interval: Duration::from_secs(1),
        http_addr: None,
        uninstall_on_exit: false,
        allowed_uids: vec![0],
        max_connections: usize::from(egress_cni_manager::DEFAULT_MAX_CONNECTIONS),
        attach_running_pods: true,
    };
    let err = egress_cni_manager::start(config, env.client.clone())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("another egress-cni-manager is serving it"),
        "{err}"
    );
    env.manager.unwrap().shutdown().await;
}

#[tokio::test]
async fn selected_pods_are_resolved_from_the_caches_and_conflicts_refused() {
    let env = setup(false).await;
    let file = egress_cni_proto::selectors::path(&env.dir.path().join("run/cni.sock"));
    let published = |ns: &'static str| {
        let file = file.clone();
        move || {
            let file = file.clone();
            async move {
                egress_cni_proto::SelectorNamespaces::load(&file).is_some_and(|s| s.may_select(ns))
            }
        }
    };
    eventually("the (empty) set published", || async {
        egress_cni_proto::SelectorNamespaces::load(&file).is_some()
    })
    .await;
    assert!(!published("ns1")().await);

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "ns1");
    pod(&env.client, "picked", NODE, None, None).await;
    let labels = Patch::Merge(json!({"metadata": {"labels": {"app": "sel"}}}));
    pods.patch("picked", &PatchParams::default(), &labels)
        .await
        .unwrap();
    // "web" is annotated: the annotation wins over a selector matching it too.
    pods.patch("web", &PatchParams::default(), &labels)
        .await
        .unwrap();
    let sel = Some(json!({"matchLabels": {"app": "sel"}}));
    selector_sgc(
        &env.client,
        "sel-a",
        true,
        "staticEgressGateway",
        sel.clone(),
    )
    .await;
    eventually("ns1 published", published("ns1")).await;
    let m = env.manager.as_ref().unwrap();
    eventually("labels cached", || async {
        m.cache
            .get(&("ns1".into(), "picked".into()))
            .is_some_and(|p| !p.labels.is_empty())
    })
    .await;

    let c = env.plugin();
    let got = tokio::task::spawn_blocking(move || c.pod_gateway(pod_ref("picked")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.gateway.as_deref(), Some("sel-a"));
    let reply = add(&env, "picked", "10.244.1.30").await.unwrap();
    assert_eq!(reply.gateway, "sel-a");
    let pes: Api<PodEndpoint> = Api::namespaced(env.client.clone(), "ns1");
    let pe = pes.get("picked").await.unwrap();
    assert_eq!(
        pe.spec.static_gateway_configuration.as_deref(),
        Some("sel-a")
    );
    assert_eq!(
        add(&env, "web", "10.244.1.10").await.unwrap().gateway,
        "sgc1"
    );

    // A second selector matching the same pod: neither, with both names in the refusal.
    selector_sgc(&env.client, "sel-b", true, "staticEgressGateway", sel).await;
    eventually("the conflict seen", || async {
        let c = env.plugin();
        tokio::task::spawn_blocking(move || c.pod_gateway(pod_ref("picked")))
            .await
            .unwrap()
            .is_err()
    })
    .await;
    let (kind, msg) = refusal(add(&env, "picked", "10.244.1.30").await);
    assert_eq!(kind, ErrorKind::GatewayConflict);
    assert!(msg.contains("(sel-a, sel-b)"), "{msg}");
    assert_eq!(
        add(&env, "web", "10.244.1.10").await.unwrap().gateway,
        "sgc1"
    );

    // DEL of a pod without the annotation in a namespace with selectors removes its endpoint.
    assert!(del(&env, "picked", "ctr-picked").await);
    assert!(pes.get_opt("picked").await.unwrap().is_none());
    env.manager.unwrap().shutdown().await;
}
