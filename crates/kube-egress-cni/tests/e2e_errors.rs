//! Privileged end-to-end test (root, throwaway namespaces, 10.99.0.0/16 only): the real `ptp`
//! reference plugin sets the pod up inside a throwaway "node" namespace, then the real
//! `kube-egress-cni` binary runs against a real egress-cni-manager and the in-memory API
//! server. Pods without the annotation pass through; malformed stdin, an unknown SGC, an
//! unready SGC and a dead manager each fail with a specific CNI error and leave the pod
//! namespace exactly as ptp made it (manager refusals are driven through the plugin's ADD path
//! in-process, because this build links no data plane and fails annotated pods closed). Skipped (with a message) when not root or ptp is absent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use egress_apiserver::{ApiServer, ServerConfig};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

const PTP: &str = "/usr/lib/cni/ptp";
const NODE: &str = "node-e2e";

struct Netns(String);
impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("kec-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        Self(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
    /// Links (name, kind, MTU), IPv4 addresses, IPv4 routes of all tables and IPv4 rules:
    /// what "clean" compares (carrier state and IPv6 link-local addresses settle on their own).
    fn snapshot(&self) -> String {
        let o = Command::new("ip")
            .args(["-n", &self.0, "-j", "-d", "link", "show"])
            .output()
            .unwrap();
        let links: Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut out: String = links
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{} {} {}\n",
                    l["ifname"], l["linkinfo"]["info_kind"], l["mtu"]
                )
            })
            .collect();
        let o = Command::new("ip")
            .args(["-n", &self.0, "-j", "addr", "show"])
            .output()
            .unwrap();
        let addrs: Value = serde_json::from_slice(&o.stdout).unwrap();
        for l in addrs.as_array().unwrap() {
            for a in l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["family"] == "inet")
            {
                out.push_str(&format!(
                    "{} {}/{}\n",
                    l["ifname"], a["local"], a["prefixlen"]
                ));
            }
        }
        for args in [
            &["-4", "route", "show", "table", "all"][..],
            &["-4", "rule"],
        ] {
            let o = Command::new("ip")
                .args(["-n", &self.0])
                .args(args)
                .output()
                .unwrap();
            out.push_str(&String::from_utf8_lossy(&o.stdout));
        }
        out
    }
}
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs a CNI plugin inside the node namespace; returns (exit success, stdout JSON or text).
fn cni(
    node: &Netns,
    plugin: &str,
    cmd: &str,
    pod: &Netns,
    k8s: &str,
    stdin: &str,
) -> (bool, String) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &node.0, plugin])
        .env("CNI_COMMAND", cmd)
        .env("CNI_CONTAINERID", format!("ctr{}", std::process::id()))
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .env("CNI_ARGS", k8s)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn privileged() -> bool {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !root || !Path::new(PTP).exists() {
        eprintln!(
            "skipping: needs root and {PTP} (apt-get install -y --no-install-recommends containernetworking-plugins)"
        );
        return false;
    }
    true
}

/// A data plane that only makes (fixed, test-only) keys; any namespace work is a test failure.
struct KeysOnly;
impl kube_egress_cni::tunnel::PodTunnel for KeysOnly {
    type Key = ();
    fn generate_key(
        &self,
    ) -> Result<((), egress_cni_proto::WireKey), kube_egress_cni::tunnel::TunnelError> {
        Ok((
            (),
            egress_cni_proto::WireKey::parse("YIcWu/Y0dLUPnF9kH9xIHJjpL3bL+SIqf1mMq3XpVlI=")
                .unwrap(),
        ))
    }
    fn setup(
        &self,
        _: &kube_egress_cni::tunnel::TunnelSpec,
        _: &(),
    ) -> Result<(), kube_egress_cni::tunnel::TunnelError> {
        panic!("setup must not run after a refusal")
    }
    fn latest_handshake(
        &self,
        _: &kube_egress_cni::tunnel::TunnelSpec,
    ) -> Result<Option<std::time::SystemTime>, kube_egress_cni::tunnel::TunnelError> {
        panic!("no tunnel")
    }
    fn retry_handshake(
        &self,
        _: &kube_egress_cni::tunnel::TunnelSpec,
    ) -> Result<(), kube_egress_cni::tunnel::TunnelError> {
        panic!("no tunnel")
    }
    fn teardown(
        &self,
        _: Option<&kube_egress_cni::tunnel::TunnelSpec>,
        _: &Path,
        _: &str,
    ) -> Result<(), kube_egress_cni::tunnel::TunnelError> {
        panic!("nothing to tear down")
    }
    fn drift(
        &self,
        _: &kube_egress_cni::tunnel::TunnelSpec,
    ) -> Result<Vec<String>, kube_egress_cni::tunnel::TunnelError> {
        panic!("no tunnel")
    }
}

async fn pod(client: &kube::Client, name: &str, sgc: Option<&str>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns1");
    let ann = sgc
        .map(|s| json!({"kubernetes.azure.com/static-gateway-configuration": s}))
        .unwrap_or(json!({}));
    let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns1", "annotations": ann},
        "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(p).unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_the_pod_namespace_as_the_main_plugin_made_it() {
    if !privileged() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kube-egress-cni");
    let tmp = tempfile::tempdir().unwrap();
    let node = Netns::new("node");
    let podns = Netns::new("pod");
    let ipam_dir = tmp.path().join("ipam");
    let ptp_conf = json!({"cniVersion": "1.0.0", "name": "kectest", "type": "ptp",
        "ipam": {"type": "host-local", "subnet": "10.99.7.0/24", "dataDir": ipam_dir}})
    .to_string();

    // API server + manager for this node.
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
    pod(&client, "plain", None).await;
    pod(&client, "lost", Some("missing-sgc")).await;
    pod(&client, "early", Some("sgc-unready")).await;
    let sgcs: Api<egress_api::StaticGatewayConfiguration> = Api::namespaced(client.clone(), "ns1");
    sgcs.create(&PostParams::default(), &serde_json::from_value(json!({
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1", "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "sgc-unready", "namespace": "ns1"},
        "spec": {"gatewayNodepoolName": "gw", "provisionPublicIps": true}})).unwrap()).await.unwrap();
    let socket = tmp.path().join("run/cni.sock");
    let conf_dir = tmp.path().join("net.d");
    std::fs::create_dir(&conf_dir).unwrap();
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
        },
        client.clone(),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !manager.state.pods_synced() {
        assert!(
            std::time::Instant::now() < deadline,
            "pod cache never synced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let bin = bin.to_string();
    let sock = socket.display().to_string();
    let state = tmp.path().join("state").display().to_string();
    let (node, podns, ptp_conf) = tokio::task::spawn_blocking(move || {
        let (ok, prev) = cni(&node, PTP, "ADD", &podns, "", &ptp_conf);
        assert!(ok, "ptp ADD failed: {prev}");
        let prev: Value = serde_json::from_str(&prev).unwrap();
        let clean = podns.snapshot();
        let ours = |sock: &str, extra: Value| {
            let mut c = json!({"cniVersion": "1.0.0", "name": "kectest", "type": "kube-egress-cni",
                "socketPath": sock, "stateDir": state, "handshakeTimeoutSeconds": 2, "prevResult": prev});
            if let Value::Object(e) = extra { c.as_object_mut().unwrap().extend(e); }
            c.to_string()
        };
        let args = |pod: &str| format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME={pod}");

        // Pass-through: the result is ptp's, and nothing changed.
        let started = std::time::Instant::now();
        let (ok, out) = cni(&node, &bin, "ADD", &podns, &args("plain"), &ours(&sock, json!({})));
        let passthrough = started.elapsed();
        assert!(ok, "{out}");
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["ips"], prev["ips"]);
        assert_eq!(got["interfaces"], prev["interfaces"]);
        assert_eq!(podns.snapshot(), clean);
        eprintln!("pass-through ADD (binary start + one manager query): {passthrough:?}");

        let expect_err = |pod: &str, conf: String, code: u64, needle: &str| {
            let (ok, out) = cni(&node, &bin, "ADD", &podns, &args(pod), &conf);
            assert!(!ok, "{pod}: expected failure, got {out}");
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("error result is not JSON: {out}"));
            assert_eq!(v["code"], code, "{pod}: {out}");
            let text = format!("{} {}", v["msg"], v["details"]);
            assert!(text.contains(needle), "{pod}: {needle:?} not in {text}");
            assert_eq!(podns.snapshot(), clean, "{pod}: pod namespace changed");
        };
        // This build links no data plane: an annotated pod fails closed, before anything is
        // registered or touched.
        expect_err("lost", ours(&sock, json!({})), 104, "not linked");

        // The manager's refusals through the plugin's own ADD path (in-process, with a data
        // plane that can only make keys: the refusal must come before any namespace work).
        let in_process = |pod: &str, sock: &str| -> rscni_plugin::error::Error {
            let a = rscni_plugin::test_util::ArgsBuilder::default()
                .container_id(&format!("ctr{}", std::process::id())).unwrap()
                .netns(&podns.path())
                .ifname("eth0").unwrap()
                .args(&args(pod))
                .path("/usr/lib/cni")
                .config(&ours(sock, json!({}))).unwrap()
                .build().unwrap();
            let cni = kube_egress_cni::cni::EgressCni::new(KeysOnly);
            let err = rscni_plugin::cni::Cni::add(&cni, a).unwrap_err();
            assert_eq!(podns.snapshot(), clean, "{pod}: pod namespace changed");
            err
        };
        let e = in_process("lost", &sock);
        assert_eq!(u32::from(&e), 101, "{e}");
        assert!(e.to_string().contains("StaticGatewayConfiguration ns1/missing-sgc named by the kubernetes.azure.com/static-gateway-configuration annotation of pod ns1/lost does not exist"), "{e}");
        let e = in_process("early", &sock);
        assert_eq!(u32::from(&e), 11, "{e}");
        assert!(e.to_string().contains("ns1/sgc-unready is not ready: status.egressIpPrefix"), "{e}");
        let e = in_process("early", "/nonexistent/cni.sock");
        assert_eq!(u32::from(&e), 11, "{e}");
        assert!(e.to_string().contains("failed to connect to egress-cni-manager at /nonexistent/cni.sock"), "{e}");
        expect_err("plain", "{not json".into(), 6, "");
        expect_err("plain", ours(&sock, json!({"excludedCIDRs": ["bogus"]})), 7, "excludedCIDRs[0] \\\"bogus\\\" is not a CIDR");
        let mut no_prev: Value = serde_json::from_str(&ours(&sock, json!({}))).unwrap();
        no_prev.as_object_mut().unwrap().remove("prevResult");
        expect_err("plain", no_prev.to_string(), 7, "prevResult is missing");

        // DEL with a dead manager still succeeds.
        let (ok, out) = cni(&node, &bin, "DEL", &podns, &args("early"), &ours("/nonexistent/cni.sock", json!({})));
        assert!(ok, "{out}");
        let (ok, out) = cni(&node, PTP, "DEL", &podns, "", &ptp_conf);
        assert!(ok, "ptp DEL: {out}");
        (node, podns, ptp_conf)
    })
    .await
    .unwrap();
    drop((node, podns, ptp_conf));
    manager.shutdown().await;
}
