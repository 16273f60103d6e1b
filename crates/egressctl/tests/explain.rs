//! `egressctl explain pod` and `egressctl status` against the in-memory API server, through
//! the real binary and a kubeconfig (what a user runs): with the objects the operator, the
//! gateway daemons and the CNI manager publish for a healthy pod, it names the gateway node
//! that carries the tunnel and its public egress IP (exit 0); it pinpoints the broken hop
//! (exit 1) when that node's daemon stopped (stale heartbeat), when its peer was removed from
//! the WireGuard device by hand (the daemon's sample flags it missing; once its resync put it
//! back, the drift record names what happened: a warning for 10 minutes, a failure if the
//! repair failed), and tells when a destination is excluded from the tunnel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use egress_api::{GatewayStatus, GatewayVMConfiguration, PodEndpoint, StaticGatewayConfiguration};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const NS: &str = "demo";
const SYS: &str = "kube-egress-gateway-system";
const KEY: &str = "cG9kLWtleS1vZi13ZWItMDAwMDAwMDAwMDAwMDAwMDA=";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Cluster {
    _server: RunningApiServer,
    client: Client,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn cluster() -> Cluster {
    let server =
        ApiServer::start(ServerConfig::default().with_crds(workspace().join("config/crd")))
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    Cluster {
        _server: server,
        client: Client::try_from(config).unwrap(),
        _dir: dir,
        kubeconfig,
    }
}

async fn create<K>(api: &Api<K>, obj: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let status = obj.get("status").cloned();
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let o: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &o).await.unwrap();
    if let Some(status) = status {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap();
    }
    api.get(&name).await.unwrap()
}

fn rfc3339(ago_seconds: i64) -> String {
    let t = k8s_openapi::jiff::Timestamp::now()
        - k8s_openapi::jiff::SignedDuration::from_secs(ago_seconds);
    t.to_string()
}

fn now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// The GatewayStatus gateway daemon `node` writes: gateway `demo/gw` ready on `wg-6000`, the
/// pod's peer with a handshake `handshake_ago` seconds ago (none: `None`), its secondary IP
/// mapped to a public IP, heartbeat `heartbeat_ago` seconds ago.
fn gateway_status(
    node: &str,
    private_ip: &str,
    public_ip: &str,
    handshake_ago: Option<i64>,
    heartbeat_ago: i64,
    missing: bool,
) -> Value {
    let mut peer = json!({"name": "web", "key": &KEY[..8]});
    if let Some(a) = handshake_ago {
        peer["handshake"] = json!(now() - a);
    }
    if missing {
        peer["missing"] = json!(true);
    }
    json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "GatewayStatus",
        "metadata": {"name": node, "namespace": SYS},
        "spec": {
            "readyGatewayConfigurations": [{"staticGatewayConfiguration": "demo/gw", "interfaceName": "wg-6000"}],
            "readyPeerConfigurations": [{"podEndpoint": "demo/web", "interfaceName": "wg-6000", "publicKey": KEY}],
            "heartbeatTime": rfc3339(heartbeat_ago),
            "heartbeatSeconds": 60,
            "gateways": [{"staticGatewayConfiguration": "demo/gw", "interfaceName": "wg-6000", "peersTotal": 1, "peers": [peer]}],
            "egressIPs": [{"privateIP": private_ip, "publicIP": public_ip}],
        }
    })
}

/// A healthy gateway `demo/gw` with two gateway nodes, and pod `demo/web` using it; gw-0
/// carries its tunnel (handshake 10 s ago), gw-1 is standby.
async fn healthy(c: &Cluster) {
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    for ns in [NS, SYS] {
        create(
            &namespaces,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await;
    }
    let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(c.client.clone(), NS);
    create(&sgcs, json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "gw", "namespace": NS},
        "spec": {"gatewayNodepoolName": "gwpool", "publicIpPrefixSize": 31, "excludeCidrs": ["198.51.100.0/24"]},
        "status": {
            "egressIpPrefix": "203.0.113.10/31",
            "gatewayServerProfile": {"ip": "10.0.0.100", "port": 6000},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "gateway provisioned", "lastTransitionTime": rfc3339(100)}],
        }
    })).await;
    let vms: Api<GatewayVMConfiguration> = Api::namespaced(c.client.clone(), NS);
    create(
        &vms,
        json!({
            "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
            "kind": "GatewayVMConfiguration",
            "metadata": {"name": "gw", "namespace": NS},
            "spec": {"gatewayNodepoolName": "gwpool", "publicIpPrefixSize": 31},
            "status": {
                "egressIpPrefix": "203.0.113.10/31",
                "gatewayVMProfiles": [
                    {"nodeName": "gw-0", "primaryIP": "10.0.1.4", "secondaryIP": "10.0.1.5"},
                    {"nodeName": "gw-1", "primaryIP": "10.0.1.6", "secondaryIP": "10.0.1.7"},
                ],
            }
        }),
    )
    .await;
    let statuses: Api<GatewayStatus> = Api::namespaced(c.client.clone(), SYS);
    create(
        &statuses,
        gateway_status("gw-0", "10.0.1.5", "203.0.113.10", Some(10), 5, false),
    )
    .await;
    create(
        &statuses,
        gateway_status("gw-1", "10.0.1.7", "203.0.113.11", None, 5, false),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    create(&pods, json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": NS, "annotations": {"kubernetes.azure.com/static-gateway-configuration": "gw"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox"}]},
        "status": {"podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}], "phase": "Running"},
    })).await;
    let pes: Api<PodEndpoint> = Api::namespaced(c.client.clone(), NS);
    create(&pes, json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "PodEndpoint",
        "metadata": {"name": "web", "namespace": NS, "labels": {"egressgateway.kubernetes.azure.com/node": "node-a"}},
        "spec": {"staticGatewayConfiguration": "gw", "podIpAddress": "10.244.1.7/32", "podPublicKey": KEY},
        "status": {"phase": "Programmed", "programmed": "2/2", "gateways": [{"node": "gw-0", "state": "Programmed"}, {"node": "gw-1", "state": "Programmed"}]},
    })).await;
}

/// Runs the binary; (exit code, parsed JSON output).
/// Runs the binary as a user would, the kubeconfig given by `KUBECONFIG` (on a blocking
/// thread: the API server runs on this test's runtime); (exit code, stdout).
async fn run(c: &Cluster, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_egressctl"));
    cmd.args(args)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("EGRESS_SYSTEM_NAMESPACE", SYS);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !stdout.is_empty(),
        "{args:?}: no output; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), stdout)
}

/// [`run`] with `-o json`, parsed.
async fn egressctl(c: &Cluster, args: &[&str]) -> (i32, Value) {
    let all: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
    let (code, stdout) = run(c, &all).await;
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{stdout}"));
    (code, v)
}

fn hop<'a>(e: &'a Value, name: &str) -> &'a Value {
    e["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no hop {name}: {e:#}"))
}

async fn set_gw0(c: &Cluster, status: Value) {
    let statuses: Api<GatewayStatus> = Api::namespaced(c.client.clone(), SYS);
    statuses
        .patch(
            "gw-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": status["spec"]})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn healthy_pod_names_its_gateway_node_and_egress_ip() {
    let c = cluster().await;
    healthy(&c).await;
    let (code, e) = egressctl(
        &c,
        &["explain", "pod", "web", "-n", NS, "--to", "203.0.113.99"],
    )
    .await;
    assert_eq!(code, 0, "{e:#}");
    assert_eq!(e["gateway"]["name"], "demo/gw");
    assert_eq!(e["gateway"]["reason"], "annotation");
    assert_eq!(e["carriedBy"], "gw-0", "{e:#}");
    assert_eq!(e["egressIps"], json!(["203.0.113.10"]));
    assert_eq!(e["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(e["destination"]["tunnelled"], true);
    assert_eq!(hop(&e, "gateway node gw-0")["state"], "ok");

    // The table a user reads names the same.
    let (code, table) = run(&c, &["explain", "pod", "web", "-n", NS]).await;
    assert_eq!(code, 0, "{table}");
    for want in ["demo/gw", "gw-0", "203.0.113.10", "annotation"] {
        assert!(table.contains(want), "{want} missing:\n{table}");
    }
    let (code, s) = egressctl(&c, &["status", "-n", NS]).await;
    assert_eq!(code, 0, "{s:#}");
    let g = &s["gateways"][0];
    assert_eq!(g["ready"], true, "{s:#}");
    assert_eq!(
        g["pods"],
        json!([{"name": "web", "phase": "Programmed", "programmed": "2/2"}])
    );
    let nodes: Vec<(&str, &str, &str, u64)> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap(),
                n["privateIp"].as_str().unwrap(),
                n["publicIp"].as_str().unwrap(),
                n["recentHandshakes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("gw-0", "10.0.1.5", "203.0.113.10", 1),
            ("gw-1", "10.0.1.7", "203.0.113.11", 0)
        ]
    );
}

/// The healthy cluster with gw-0's GatewayStatus rewritten as given; `explain pod web` must
/// exit 1 naming gw-0 as the failed hop with `detail`. Returns the explanation and the cluster.
async fn broken_gw0(
    handshake_ago: i64,
    heartbeat_ago: i64,
    missing: bool,
    detail: &str,
) -> (Value, Cluster) {
    let c = cluster().await;
    healthy(&c).await;
    let status = gateway_status(
        "gw-0",
        "10.0.1.5",
        "203.0.113.10",
        Some(handshake_ago),
        heartbeat_ago,
        missing,
    );
    set_gw0(&c, status).await;
    let (code, e) = egressctl(&c, &["explain", "pod", "web", "-n", NS]).await;
    assert_eq!(code, 1, "{e:#}");
    let h = hop(&e, "gateway node gw-0");
    assert_eq!(h["state"], "fail", "{h:#}");
    assert!(h["detail"].as_str().unwrap().contains(detail), "{h:#}");
    (e, c)
}

#[tokio::test]
async fn a_stopped_gateway_daemon_is_the_broken_hop() {
    // The daemon on gw-0 stopped 10 minutes ago: its last write says it had a handshake then.
    let (e, c) = broken_gw0(600, 600, false, "gateway daemon not running").await;
    assert_ne!(e["carriedBy"], "gw-0", "{e:#}");
    assert_eq!(hop(&e, "gateway node gw-1")["state"], "ok");
    // What is left to carry the pod is gw-1, with its own public IP.
    assert_eq!(e["egressIps"], json!(["203.0.113.11"]), "{e:#}");
    let (code, _) = egressctl(&c, &["status", "-n", NS]).await;
    assert_eq!(code, 1);
}

#[tokio::test]
async fn a_peer_removed_by_hand_is_the_broken_hop() {
    let (e, _c) = broken_gw0(10, 5, true, "peer missing from wg-6000").await;
    assert_eq!(e["nodes"][0]["peer"], "missing", "{e:#}");
}

#[tokio::test]
async fn an_excluded_destination_is_named_with_the_cidr_that_excludes_it() {
    let c = cluster().await;
    healthy(&c).await;
    let (code, e) = egressctl(
        &c,
        &["explain", "pod", "web", "-n", NS, "--to", "198.51.100.7"],
    )
    .await;
    assert_eq!(code, 1, "{e:#}");
    assert_eq!(e["destination"]["tunnelled"], false, "{e:#}");
    assert_eq!(e["destination"]["matched"], "198.51.100.0/24", "{e:#}");
    assert_eq!(hop(&e, "destination 198.51.100.7")["state"], "warn");
    // A node exception (IMDS) is excluded too.
    let (_, e) = egressctl(
        &c,
        &["explain", "pod", "web", "-n", NS, "--to", "169.254.169.254"],
    )
    .await;
    assert_eq!(e["destination"]["tunnelled"], false, "{e:#}");
}

/// Merge-patches `name`'s spec (or, with `status`, its status).
async fn merge<K>(api: &Api<K>, name: &str, status: bool, patch: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::default();
    let patch = Patch::Merge(patch);
    if status {
        api.patch_status(name, &params, &patch).await.unwrap();
    } else {
        api.patch(name, &params, &patch).await.unwrap();
    }
}

/// [`healthy`] made dual-stack: IPv6 in the gateway's `ipFamilies` with an IPv6 exclusion
/// and prefix, and an IPv6 address on the pod.
async fn dual_stack(c: &Cluster) {
    let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(c.client.clone(), NS);
    merge(
        &sgcs,
        "gw",
        false,
        json!({"spec": {"ipFamilies": ["IPv4", "IPv6"],
            "excludeCidrs": ["198.51.100.0/24", "2001:db8:e::/48"]}}),
    )
    .await;
    merge(
        &sgcs,
        "gw",
        true,
        json!({"status": {"egressIpv6Prefix": "2001:db8:f::/127"}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    let ips = json!([{"ip": "10.244.1.7"}, {"ip": "fd00:10:244:1::7"}]);
    merge(&pods, "web", true, json!({"status": {"podIPs": ips}})).await;
}

async fn set_pod_ipv6_address(c: &Cluster, address: &str) {
    let pes: Api<PodEndpoint> = Api::namespaced(c.client.clone(), NS);
    merge(
        &pes,
        "web",
        false,
        json!({"spec": {"podIpv6Address": address}}),
    )
    .await;
}

/// `explain pod demo/web --to <to> -o json`.
async fn explain_to(c: &Cluster, to: &str) -> (i32, Value) {
    egressctl(c, &["explain", "pod", "web", "-n", NS, "--to", to]).await
}

#[tokio::test]
async fn a_dual_stack_pod_shows_its_ipv6_routing() {
    let c = cluster().await;
    healthy(&c).await;
    // IPv4-only gateway: no IPv6 hop; IPv6 destinations are not tunnelled, and say why.
    let (_, e) = explain_to(&c, "2001:db8:9::1").await;
    assert!(
        e["hops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["name"] != "IPv6"),
        "{e:#}"
    );
    assert!(
        e["destination"]["why"]
            .as_str()
            .unwrap()
            .contains("IPv4 only"),
        "{e:#}"
    );

    dual_stack(&c).await;
    // The pod's sandbox registered no IPv6 (it started before): a warning that says so.
    let (_, e) = egressctl(&c, &["explain", "pod", "web", "-n", NS]).await;
    let h = hop(&e, "IPv6");
    assert_eq!(h["state"], "warn", "{h:#}");
    assert!(
        h["detail"].as_str().unwrap().contains("registered no IPv6"),
        "{h:#}"
    );
    assert_eq!(e["podIpv6"], "fd00:10:244:1::7");

    set_pod_ipv6_address(&c, "fd00:10:244:1::7/128").await;
    let (code, e) = explain_to(&c, "2001:db8:9::1").await;
    assert_eq!(code, 0, "{e:#}");
    let h = hop(&e, "IPv6");
    assert_eq!(h["state"], "ok", "{h:#}");
    assert_eq!(
        h["detail"],
        "IPv6 through the gateway from 2001:db8:f::/127: ::/0 via wg0, except 2001:db8:e::/48 via eth0"
    );
    assert_eq!(e["destination"]["tunnelled"], true, "{e:#}");
    assert_eq!(e["routing"]["ipv6"], true);
    let (_, e) = explain_to(&c, "2001:db8:e::1").await;
    assert_eq!(e["destination"]["tunnelled"], false, "{e:#}");
    assert_eq!(e["destination"]["matched"], "2001:db8:e::/48");
    let (_, table) = run(&c, &["explain", "pod", "web", "-n", NS]).await;
    assert!(
        table.contains(
            "IPv6         fd00:10:244:1::7 -> ::/0 via wg0, except 2001:db8:e::/48 via eth0"
        ),
        "{table}"
    );

    // An IPv6 on the PodEndpoint that is not the pod's is the broken hop.
    set_pod_ipv6_address(&c, "fd00:10:244:1::8/128").await;
    let (code, e) = egressctl(&c, &["explain", "pod", "web", "-n", NS]).await;
    assert_eq!(code, 1, "{e:#}");
    let h = hop(&e, "PodEndpoint demo/web");
    assert_eq!(h["state"], "fail", "{h:#}");
    assert!(
        h["detail"]
            .as_str()
            .unwrap()
            .contains("is not the pod's IPv6 fd00:10:244:1::7"),
        "{h:#}"
    );
}

#[tokio::test]
async fn a_missing_pod_and_a_usage_error_have_their_exit_codes() {
    let c = cluster().await;
    healthy(&c).await;
    let (code, e) = egressctl(&c, &["explain", "pod", "nope", "-n", NS]).await;
    assert_eq!(code, 1, "{e:#}");
    assert_eq!(hop(&e, "pod")["state"], "fail");
    let out = Command::new(env!("CARGO_BIN_EXE_egressctl"))
        .args(["explain", "pod", "web", "--to", "not-an-ip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_egressctl"))
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("egressctl"));
}

/// gw-0's GatewayStatus, healthy again, with the drift record its daemon wrote when its
/// resync put the pod's peer back `ago` seconds ago (`repaired`, or failed).
async fn drift_on_gw0(c: &Cluster, ago: i64, repaired: bool) -> (i32, Value) {
    let mut status = gateway_status("gw-0", "10.0.1.5", "203.0.113.10", Some(5), 5, false);
    let mut record = json!({
        "kind": "peer", "change": "missing", "podEndpoint": "demo/web", "interfaceName": "wg-6000",
        "repair": format!("wireguard wg-6000 in ns-static-egress-gateway: set peer {KEY} allowed-ips 10.244.1.7/32"),
        "detectedTime": rfc3339(ago), "repaired": repaired,
    });
    if !repaired {
        record["error"] = json!("failed to update the peers of wg-6000: device busy");
    }
    // Another pod's drift on the same node is not on this pod's path.
    let other = json!({
        "kind": "peer", "change": "missing", "podEndpoint": "demo/other", "interfaceName": "wg-6000",
        "repair": "x", "detectedTime": rfc3339(1), "repaired": false,
    });
    status["spec"]["drift"] = json!([record, other]);
    status["spec"]["driftTotal"] = json!(2);
    set_gw0(c, status).await;
    egressctl(c, &["explain", "pod", "web", "-n", NS]).await
}

#[tokio::test]
async fn a_peer_removed_by_hand_and_put_back_is_named_on_its_node() {
    let c = cluster().await;
    healthy(&c).await;
    // Repaired 30 s ago: the tunnel works again, but nobody is left wondering (exit 1).
    let (code, e) = drift_on_gw0(&c, 30, true).await;
    assert_eq!(code, 1, "{e:#}");
    let h = hop(&e, "gateway node gw-0");
    assert_eq!(h["state"], "warn", "{h:#}");
    let detail = h["detail"].as_str().unwrap();
    for want in [
        "peer on wg-6000",
        "the pod's peer was removed from wg-6000 outside the daemon",
        "put it back",
    ] {
        assert!(detail.contains(want), "{want:?} not in {detail}");
    }
    assert_eq!(e["nodes"][0]["drift"]["podEndpoint"], "demo/web", "{e:#}");
    assert_eq!(e["carriedBy"], "gw-0", "{e:#}");
    assert_eq!(hop(&e, "gateway node gw-1")["state"], "ok");
    // `status` counts the node's recent drift on this gateway (this pod's and another's).
    let (code, st) = egressctl(&c, &["status", "-n", NS]).await;
    assert_eq!(code, 1, "{st:#}");
    let g = &st["gateways"][0];
    assert_eq!(g["nodes"][0]["recentDrift"], 2, "{st:#}");
    assert_eq!(g["nodes"][1]["recentDrift"], 0, "{st:#}");
    let problems = g["problems"].to_string();
    assert!(
        problems.contains("gateway node gw-0: 2 change(s) made outside the daemon in the last 10 minutes, latest: peer missing of demo/other on wg-6000"),
        "{problems}"
    );

    // Twenty minutes later it is history: information, exit 0.
    let (code, e) = drift_on_gw0(&c, 1200, true).await;
    assert_eq!(code, 0, "{e:#}");
    assert_eq!(hop(&e, "gateway node gw-0")["state"], "info", "{e:#}");

    // A repair that failed is the broken hop, with the daemon's reason.
    let (code, e) = drift_on_gw0(&c, 30, false).await;
    assert_eq!(code, 1, "{e:#}");
    let h = hop(&e, "gateway node gw-0");
    assert_eq!(h["state"], "fail", "{h:#}");
    assert!(
        h["detail"]
            .as_str()
            .unwrap()
            .contains("could not repair it (failed to update the peers of wg-6000: device busy)"),
        "{h:#}"
    );
}
