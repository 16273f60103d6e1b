//! The chart's RBAC grants every request our binaries make, derived from the API server's
//! request log rather than by hand: the operator (with leader election), the gateway daemon
//! (data plane fake) and the CNI manager run in-process against one egress-apiserver (and the
//! Azure emulator), each with its own user agent, through a lifecycle: SGC created -> Ready ->
//! gateway programmed -> a pod's endpoint added and programmed -> removed -> SGC deleted. Every
//! logged (verb, resource, namespace) of each component must be allowed by the rendered Roles
//! and ClusterRoles bound to that component's ServiceAccount, and every granted permission the
//! run never used must be one of the few listed (with the reason) below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/policies.rs"]
mod policies;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use egress_api::{GatewayStatus, GatewayVMConfiguration, StaticGatewayConfiguration};
use egress_apiserver::{ApiServer, RunningApiServer, ServerConfig, UserInfo};
use egress_azure::{ArmClient, ArmMetrics, LroPolicy, ResourceGroupId, RetryPolicy};
use egress_azure_emulator::{Emulator, EmulatorConfig};
use egress_cni_proto::{AddRequest, DelRequest, PodRef, WireKey};
use egress_dataplane::fake::FakeNode;
use egress_dataplane::{AddressSpec, NetnsRef, PrivateKey};
use egress_gateway_daemon::{Daemon, DaemonConfig, HostConfig, Listeners, NodeIdentity};
use egress_install_tests::rbac::{Access, denied, grants_for, unused};
use egress_install_tests::{helm, workspace_root};
use egress_operator::{AzureSettings, Backoff, Context, LeaderElection, Metrics, OperatorConfig};
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = helm::NAMESPACE;
const APP_NS: &str = "default";
const SUB: &str = "00000000-0000-0000-0000-000000000000";
const WORKER: &str = "node-a";
const WAIT: Duration = Duration::from_secs(30);

const OPERATOR: &str = "egress-operator";
const DAEMON: &str = "egress-gateway-daemon";
const CNI: &str = "egress-cni-manager";

/// Granted but not seen in the run, each with why it stays.
const EXPECTED_UNUSED: &[(&str, &str, &str)] = &[
    (
        OPERATOR,
        "update egressgateway.kubernetes.azure.com/staticgatewayconfigurations/finalizers (cluster)",
        "checked by OwnerReferencesPermissionEnforcement for blockOwnerDeletion, never a request",
    ),
    (
        OPERATOR,
        "update egressgateway.kubernetes.azure.com/gatewaylbconfigurations/finalizers (cluster)",
        "checked by OwnerReferencesPermissionEnforcement for blockOwnerDeletion, never a request",
    ),
    (
        CNI,
        "update core/pods/finalizers (cluster)",
        "checked by OwnerReferencesPermissionEnforcement for blockOwnerDeletion, never a request",
    ),
    (
        OPERATOR,
        "patch core/secrets (namespace kube-egress-gateway-system)",
        "repairs a key Secret that lost its public key or labels",
    ),
    (
        OPERATOR,
        "patch events.k8s.io/events (cluster)",
        "an Event that repeats is patched (series)",
    ),
    (
        DAEMON,
        "create events.k8s.io/events (cluster)",
        "published only for unusable objects and programming failures",
    ),
    (
        DAEMON,
        "patch events.k8s.io/events (cluster)",
        "an Event that repeats is patched (series)",
    ),
    (
        CNI,
        "get core/pods (cluster)",
        "ADD of a pod the watch has not delivered yet",
    ),
    (
        CNI,
        "create events.k8s.io/events (cluster)",
        "published only when a running pod's gateway annotation or gateway changes",
    ),
];

/// A client with this user agent, acting as `user` (the administrator when `None`).
fn client(api: &RunningApiServer, user_agent: &str, user: Option<&UserInfo>) -> kube::Client {
    let mut config = kube::Config::new(api.url().parse().unwrap());
    config.default_namespace = APP_NS.into();
    config
        .headers
        .push((http::header::USER_AGENT, user_agent.parse().unwrap()));
    if let Some(user) = user {
        user.impersonate(&mut config);
    }
    kube::Client::try_from(config).unwrap()
}

/// The ServiceAccount each component runs as in the default render.
fn service_account(agent: &str) -> &'static str {
    match agent {
        OPERATOR => "kube-egress-gateway-operator",
        DAEMON => "kube-egress-gateway-gateway-daemon",
        _ => policies::CNI_SA,
    }
}

fn identity(agent: &str) -> UserInfo {
    if agent == CNI {
        return policies::cni_manager(NS, WORKER);
    }
    UserInfo::named(
        &format!("system:serviceaccount:{NS}:{}", service_account(agent)),
        Vec::new(),
    )
}

async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn arm(url: &str) -> ArmClient {
    ArmClient::builder(url.parse().unwrap())
        .static_token("test-token")
        .retry(RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(2),
            budget: Duration::from_secs(10),
        })
        .lro(LroPolicy {
            max_duration: Duration::from_secs(20),
            default_poll_interval: Duration::from_millis(20),
            max_poll_interval: Duration::from_millis(100),
        })
        .build()
        .unwrap()
}

async fn create<K>(api: &Api<K>, v: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap()
}

/// Runs the lifecycle with the chart's `objs`; the requests of each component by user agent.
async fn lifecycle(objs: &[serde_json::Value]) -> BTreeMap<&'static str, BTreeSet<Access>> {
    let api =
        ApiServer::start(ServerConfig::default().with_crds(workspace_root().join("config/crd")))
            .await
            .unwrap();
    let emu = Emulator::start(EmulatorConfig {
        lro_polls: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let driver = client(&api, "test-driver", None);
    create(
        &Api::<k8s_openapi::api::core::v1::Namespace>::all(driver.clone()),
        json!({"metadata": {"name": NS}}),
    )
    .await;
    assert_eq!(policies::install(&driver, objs).await, 4);
    let nodes: Api<Node> = Api::all(driver.clone());
    create(
        &nodes,
        json!({"metadata": {"name": WORKER}, "spec": {"taints": [
            {"key": egress_api::constants::CNI_NOT_READY_TAINT, "value": "true", "effect": "NoSchedule"}]}}),
    )
    .await;

    // Operator, as the binary starts it (leader election on).
    let rg = ResourceGroupId::new(SUB, "rg-egress");
    let mut config = OperatorConfig::new(
        NS,
        AzureSettings {
            subscription_id: SUB.into(),
            resource_group: "rg-egress".into(),
            location: "eastus".into(),
            load_balancer_id: rg.load_balancer("kubeegressgateway-ilb"),
            subnet_id: rg.subnet("aks-vnet", "aks-subnet"),
            probe_port: 8082,
        },
    );
    config.debounce = Duration::from_millis(200);
    config.chain_wait = Duration::from_secs(5);
    config.backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
        throttled_default: Duration::from_millis(200),
    };
    config.instance = Some("egress-operator-0".into());
    let ctx = Context::new(
        client(&api, OPERATOR, Some(&identity(OPERATOR))),
        Arc::new(arm(&emu.arm_url())),
        Metrics::new(&ArmMetrics::new()),
        config,
    );
    let opts = egress_operator::RunOptions {
        leader_election: Some(LeaderElection {
            namespace: NS.into(),
            lease_name: "0a299682.microsoft.com".into(),
            identity: "egress-operator-0".into(),
            duration_seconds: 15,
            grace_seconds: 5,
        }),
        listeners: Vec::new(),
    };
    let (stop_operator, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(egress_operator::run(ctx, opts, async move {
        let _ = stopped.await;
    }));

    // CNI manager on the worker.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net.d")).unwrap();
    std::fs::write(
        dir.path().join("net.d/10-ptp.conflist"),
        r#"{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[{"type":"ptp","ipam":{"type":"host-local","subnet":"10.244.1.0/24"}}]}"#,
    )
    .unwrap();
    let socket = dir.path().join("run/cni.sock");
    let manager = egress_cni_manager::start(
        egress_cni_manager::ManagerConfig {
            node_name: WORKER.into(),
            socket_path: socket.clone(),
            cni_conf_dir: dir.path().join("net.d"),
            exception_cidrs: vec!["169.254.169.254/32".parse().unwrap()],
            handshake_timeout: Duration::from_secs(10),
            conflist_poll_interval: Duration::from_millis(50),
            http_addr: None,
            uninstall_on_exit: false,
            allowed_uids: vec![std::fs::metadata("/proc/self").unwrap().uid()],
            max_connections: usize::from(egress_cni_manager::DEFAULT_MAX_CONNECTIONS),
            attach_running_pods: true,
        },
        client(&api, CNI, Some(&identity(CNI))),
    )
    .await
    .unwrap();
    assert!(manager.wait_ready(WAIT).await);

    // The SGC becomes Ready.
    let sgcs: Api<StaticGatewayConfiguration> = Api::namespaced(driver.clone(), APP_NS);
    let sgc = create(
        &sgcs,
        json!({"apiVersion": egress_api::constants::API_VERSION, "kind": "StaticGatewayConfiguration",
               "metadata": {"name": "gw"},
               "spec": {"gatewayVmssProfile": {"vmssResourceGroup": "rg-egress", "vmssName": "gw-vmss",
                                               "publicIpPrefixSize": 31}}}),
    )
    .await;
    let uid = sgc.metadata.uid.clone().unwrap();
    until("the SGC to be Ready", || async {
        let s = sgcs.get("gw").await.ok()?;
        s.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
    let vms: Api<GatewayVMConfiguration> = Api::namespaced(driver.clone(), APP_NS);
    let profile = vms
        .get("gw")
        .await
        .unwrap()
        .status
        .unwrap()
        .gateway_vm_profiles
        .unwrap()[0]
        .clone();
    let gateway_node = profile.node_name.clone().unwrap();
    let primary = profile.primary_ip.clone().unwrap();
    create(&nodes, json!({"metadata": {"name": gateway_node}})).await;

    // The gateway daemon on that node programs it (data plane fake).
    let fake = FakeNode::new();
    fake.add_link(
        &NetnsRef::Current,
        &"eth0".parse().unwrap(),
        &[AddressSpec::plain(format!("{primary}/24").parse().unwrap())],
    );
    let daemon = Daemon::start(
        client(&api, DAEMON, Some(&identity(DAEMON))),
        fake.dataplane(),
        DaemonConfig {
            node_name: gateway_node.clone(),
            namespace: NS.into(),
            node: NodeIdentity::computer(&gateway_node),
            host: HostConfig {
                host_netns: NetnsRef::Current,
                host_interface: "eth0".parse().unwrap(),
                gateway_netns: "ns-static-egress-gateway".parse().unwrap(),
                tunnel_mtu: 1420,
                secret_namespace: NS.into(),
                ipv6: true,
            },
            resync_interval: Duration::from_secs(3600),
            drain: Duration::ZERO,
            status_interval: Duration::from_millis(100),
            status_max_peers: 1000,
            metrics_interval: Duration::from_millis(200),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            publish: Default::default(),
        },
        Listeners {
            probe: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            health: vec![tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()],
        },
    );
    let statuses: Api<GatewayStatus> = Api::namespaced(driver.clone(), NS);
    let status = |peers: usize| {
        let statuses = statuses.clone();
        let node = gateway_node.clone();
        async move {
            let st = statuses.get(&node).await.ok()?;
            let gws = st
                .spec
                .ready_gateway_configurations
                .unwrap_or_default()
                .len();
            let n = st.spec.ready_peer_configurations.unwrap_or_default().len();
            (gws == 1 && n == peers).then_some(())
        }
    };
    until("the gateway to be programmed", || status(0)).await;

    // A pod on the worker gets its endpoint through the manager; the daemon adds the peer.
    let pods: Api<Pod> = Api::namespaced(driver.clone(), APP_NS);
    create(
        &pods,
        json!({"metadata": {"name": "web", "annotations": {egress_api::constants::POD_ANNOTATION: "gw"}},
               "spec": {"nodeName": WORKER, "containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    pods.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running", "podIP": "10.244.1.10", "podIPs": [{"ip": "10.244.1.10"}]}})),
    )
    .await
    .unwrap();
    let plugin = egress_cni_proto::Client::new(&socket, Duration::from_secs(5));
    let pod = PodRef {
        namespace: APP_NS.into(),
        name: "web".into(),
        uid: None,
    };
    let key = WireKey::parse(&PrivateKey::generate().public_key().to_base64()).unwrap();
    let (p, request) = (
        plugin.clone(),
        AddRequest {
            pod: pod.clone(),
            container_id: "ctr-1".into(),
            pod_ip: "10.244.1.10".parse().unwrap(),
            public_key: key,
            pod_ipv6: None,
        },
    );
    tokio::task::spawn_blocking(move || p.add(request))
        .await
        .unwrap()
        .unwrap();
    until("the peer to be programmed", || status(1)).await;
    // The plugin's report after ADD: the manager writes the PodEndpoint's status.tunnel; the
    // operator sums up the gateway nodes into the rest of the status.
    let (p, report) = (
        plugin.clone(),
        egress_cni_proto::ReportRequest {
            pod: pod.clone(),
            container_id: "ctr-1".into(),
            failed_phase: None,
            phases: Vec::new(),
            routes: None,
        },
    );
    assert!(
        tokio::task::spawn_blocking(move || p.report(report))
            .await
            .unwrap()
            .unwrap()
            .recorded
    );
    let endpoints: Api<egress_api::PodEndpoint> = Api::namespaced(driver.clone(), APP_NS);
    until(
        "the PodEndpoint status from the manager and the operator",
        || async {
            let st = endpoints.get("web").await.ok()?.status?;
            // One of the pool's two instances runs a daemon here.
            (st.tunnel.is_some() && st.programmed.as_deref() == Some("1/2")).then_some(())
        },
    )
    .await;
    let (p, request) = (
        plugin.clone(),
        DelRequest {
            pod,
            container_id: "ctr-1".into(),
        },
    );
    assert!(
        tokio::task::spawn_blocking(move || p.del(request))
            .await
            .unwrap()
            .unwrap()
            .deleted
    );
    until("the peer to be removed", || status(0)).await;
    pods.delete("web", &DeleteParams::default()).await.unwrap();

    // The SGC goes, with its Azure state and key Secret.
    sgcs.delete("gw", &DeleteParams::default()).await.unwrap();
    until("the SGC to be deleted", || async {
        sgcs.get_opt("gw").await.ok()?.is_none().then_some(())
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(driver.clone(), NS);
    until("the key Secret to be deleted", || async {
        secrets
            .get_opt(&format!("sgw-{uid}"))
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    until("the gateway to be removed from the node", || async {
        let st = statuses.get(&gateway_node).await.ok()?;
        st.spec
            .ready_gateway_configurations
            .unwrap_or_default()
            .is_empty()
            .then_some(())
    })
    .await;

    daemon.terminate();
    tokio::time::timeout(WAIT, daemon.wait()).await.unwrap();
    manager.shutdown().await;
    let _ = stop_operator.send(());
    tokio::time::timeout(WAIT, operator)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let mut by_agent: BTreeMap<&'static str, BTreeSet<Access>> = BTreeMap::new();
    for r in api.request_log().recent() {
        let Some(agent) = [OPERATOR, DAEMON, CNI]
            .into_iter()
            .find(|a| r.user_agent.starts_with(a))
        else {
            continue;
        };
        assert_eq!(
            r.user,
            identity(agent).username,
            "{agent} acts as its ServiceAccount"
        );
        assert_ne!(r.code, 403, "{agent}: refused by admission: {r:?}");
        let access = Access {
            verb: r.verb.clone(),
            group: r.group,
            resource: r.resource,
            namespace: r.namespace,
            name: r.name,
        };
        let set = by_agent.entry(agent).or_default();
        // A patch (server-side apply) or update that creates the object is also authorized as
        // create by the real API server; egress-apiserver answers it with 201.
        if r.code == 201 && (r.verb == "patch" || r.verb == "update") {
            set.insert(Access {
                verb: "create".into(),
                ..access.clone()
            });
        }
        set.insert(access);
    }
    by_agent
}

#[tokio::test]
async fn chart_rbac_grants_exactly_what_the_binaries_use() {
    let objs = helm::template_with_required(&[]).unwrap();
    let used = lifecycle(&objs).await;
    let mut problems = Vec::new();
    let mut report = String::new();
    for agent in [OPERATOR, DAEMON, CNI] {
        let sa = service_account(agent);
        let accesses = used.get(agent).cloned().unwrap_or_default();
        assert!(
            !accesses.is_empty(),
            "{agent} made no requests: is its user agent set?"
        );
        let grants = grants_for(&objs, sa, NS);
        assert!(!grants.is_empty(), "no RBAC rendered for {sa}");
        for a in denied(&grants, &accesses) {
            problems.push(format!("{agent}: the chart does not allow `{a}`"));
        }
        for extra in unused(&grants, &accesses) {
            if let Some((_, _, why)) = EXPECTED_UNUSED
                .iter()
                .find(|(a, e, _)| *a == agent && *e == extra)
            {
                report.push_str(&format!(
                    "  {agent}: granted, unused in the run: {extra}: {why}\n"
                ));
            } else {
                problems.push(format!(
                    "{agent}: granted but never used and not justified: {extra}"
                ));
            }
        }
        let kinds: BTreeSet<String> = accesses.iter().map(|a| a.to_string()).collect();
        report.push_str(&format!(
            "  {agent}: {} distinct requests: {kinds:?}\n",
            accesses.len()
        ));
    }
    eprintln!("RBAC report:\n{report}");
    assert!(
        problems.is_empty(),
        "RBAC mismatches:\n{}",
        problems.join("\n")
    );
}
