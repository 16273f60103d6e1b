//! Command lines of the real binaries the simulation runs: the API server, the Azure emulator,
//! the operator (cloud config pointing at the emulator), one cni-manager per worker and one
//! gateway daemon per gateway node, each in the namespace it belongs to. This is the seam
//! where a component's flags are adapted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::prereq::Binaries;
use crate::procs::Launch;
use crate::topology::NodeNet;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `egress-apiserver --port 0 --kubeconfig FILE --crds DIR` on the host loopback.
pub fn apiserver(bins: &Binaries, kubeconfig: &Path) -> Launch {
    Launch {
        name: "egress-apiserver".into(),
        netns: None,
        program: bins.apiserver.clone(),
        args: vec![
            "--port".into(),
            "0".into(),
            "--kubeconfig".into(),
            s(kubeconfig),
            "--crds".into(),
            s(&bins.crds),
        ],
        env: vec![],
        combined_output: false,
    }
}

/// `egress-azure-emulator --seed FILE --port 0 --lro-polls 1` on the host loopback.
pub fn emulator(bins: &Binaries, seed: &Path) -> Launch {
    Launch {
        name: "egress-azure-emulator".into(),
        netns: None,
        program: bins.emulator.clone(),
        args: vec![
            "--seed".into(),
            s(seed),
            "--port".into(),
            "0".into(),
            "--lro-polls".into(),
            "1".into(),
        ],
        env: vec![],
        combined_output: false,
    }
}

/// The operator against the API server and the emulator (static token: loopback emulator).
pub fn operator(
    bins: &Binaries,
    kubeconfig: &Path,
    cloud_config: &Path,
    metrics: SocketAddr,
    health: SocketAddr,
) -> Launch {
    Launch {
        name: "egress-operator".into(),
        netns: None,
        program: bins.operator.clone(),
        args: vec![
            "--cloud-config".into(),
            s(cloud_config),
            "--namespace".into(),
            crate::k8s::SYSTEM_NAMESPACE.into(),
            "--kubeconfig".into(),
            s(kubeconfig),
            "--metrics-addr".into(),
            metrics.to_string(),
            "--health-addr".into(),
            health.to_string(),
            "--arm-static-token".into(),
            "emulator".into(),
            "--debounce-ms".into(),
            "200".into(),
        ],
        env: vec![("MY_POD_NAME".into(), "egress-operator-sim".into())],
        combined_output: true,
    }
}

/// Per-worker paths of the cni-manager.
#[derive(Debug, Clone)]
pub struct WorkerPaths {
    /// CNI config directory.
    pub conf_dir: PathBuf,
    /// Manager socket.
    pub socket: PathBuf,
}

/// The chart's defaults the cni-manager is started with (`charts/kube-egress-gateway/values.yaml`,
/// `cniManager.*`; a test keeps them equal).
pub mod chart_defaults {
    /// `cniManager.exceptionCidrs`.
    pub const EXCEPTION_CIDRS: &str = "169.254.169.254/32,169.254.10.11/32";
    /// `cniManager.handshakeTimeoutSeconds`.
    pub const HANDSHAKE_TIMEOUT_SECONDS: u64 = 10;
    /// `cniManager.conflistPollMs`.
    pub const CONFLIST_POLL_MS: u64 = 2000;
    /// `cniManager.httpPort`.
    pub const HTTP_PORT: u16 = 8083;
    /// `cniManager.logLevel`.
    pub const LOG_LEVEL: &str = "info";
    /// `cniManager.failover`.
    pub const FAILOVER: bool = true;
    /// `gatewayLbProbePort`.
    pub const GATEWAY_PROBE_PORT: u16 = 8082;
    /// `cniManager.gatewayProbeIntervalMs`.
    pub const GATEWAY_PROBE_INTERVAL_MS: u64 = 500;
    /// `cniManager.gatewayProbeTimeoutMs`.
    pub const GATEWAY_PROBE_TIMEOUT_MS: u64 = 500;
    /// `cniManager.gatewayLbGraceMs`.
    pub const GATEWAY_LB_GRACE_MS: u64 = 150;
    /// `gatewayDaemon.healthPort` (the daemons' sessions query).
    pub const GATEWAY_SESSIONS_PORT: u16 = 8081;
    /// `cniManager.failoverSettleSeconds`.
    pub const FAILOVER_SETTLE_SECONDS: u64 = 15;
}

/// One cni-manager inside a worker's namespace (hostNetwork), started exactly as the chart's
/// DaemonSet starts it: the same flags with the chart's default values (paths are the run's,
/// `--wireguard-backend userspace` because this kernel has no WireGuard module, `kernel`
/// inside UML), the node name
/// from `MY_NODE_NAME` and `UNINSTALL_ON_EXIT=false` (only the chart's uninstall hook sets it),
/// so a stopped or crashed manager leaves its conflist in place, as on a real node. The API
/// server is reached through the forwarder on the node's loopback (`KUBECONFIG`, where the
/// chart has the in-cluster config).
pub fn cni_manager(
    bins: &Binaries,
    node: &NodeNet,
    kubeconfig: &Path,
    paths: &WorkerPaths,
) -> Launch {
    use chart_defaults as d;
    Launch {
        name: format!("egress-cni-manager-{}", node.spec.name),
        netns: Some(node.ns.clone()),
        program: bins.cni_manager.clone(),
        args: vec![
            format!("--socket-path={}", s(&paths.socket)),
            format!("--cni-conf-dir={}", s(&paths.conf_dir)),
            format!("--exception-cidrs={}", d::EXCEPTION_CIDRS),
            format!(
                "--handshake-timeout-seconds={}",
                d::HANDSHAKE_TIMEOUT_SECONDS
            ),
            format!("--conflist-poll-ms={}", d::CONFLIST_POLL_MS),
            // wireguard-go unless the run is inside UML (`run --kernel-wireguard`).
            format!(
                "--wireguard-backend={}",
                crate::backend::wireguard_backend()
            ),
            format!("--http-addr=0.0.0.0:{}", d::HTTP_PORT),
            format!("--failover={}", d::FAILOVER),
            format!("--gateway-probe-port={}", d::GATEWAY_PROBE_PORT),
            format!(
                "--gateway-probe-interval-ms={}",
                d::GATEWAY_PROBE_INTERVAL_MS
            ),
            format!("--gateway-probe-timeout-ms={}", d::GATEWAY_PROBE_TIMEOUT_MS),
            format!("--gateway-lb-grace-ms={}", d::GATEWAY_LB_GRACE_MS),
            format!("--gateway-sessions-port={}", d::GATEWAY_SESSIONS_PORT),
            format!("--failover-settle-seconds={}", d::FAILOVER_SETTLE_SECONDS),
            // On, unlike the chart's default: the chart keeps it off only until the manager's
            // image carries nft; the simulator runs the host's binaries, which have it.
            "--attach-running-pods=true".into(),
        ],
        env: vec![
            (
                "MY_POD_NAMESPACE".into(),
                crate::k8s::SYSTEM_NAMESPACE.into(),
            ),
            (
                "MY_POD_NAME".into(),
                format!("egress-cni-manager-{}", node.spec.name),
            ),
            ("MY_NODE_NAME".into(), node.spec.name.clone()),
            ("UNINSTALL_ON_EXIT".into(), "false".into()),
            // EGRESS_SIM_CNI_MANAGER_LOG: a `RUST_LOG` filter for the managers (e.g. each
            // failover action: `info,egress_cni_manager::failover=debug`).
            (
                "RUST_LOG".into(),
                std::env::var("EGRESS_SIM_CNI_MANAGER_LOG").unwrap_or_else(|_| d::LOG_LEVEL.into()),
            ),
            ("KUBECONFIG".into(), s(kubeconfig)),
        ],
        combined_output: true,
    }
}

/// Name of a gateway node's gateway namespace: unique per node, because every simulated node
/// shares the host's `/run/netns` (on a real VM it is `ns-static-egress-gateway`).
pub fn gateway_netns(node: &NodeNet) -> String {
    format!("{}-gw", node.ns)
}

/// Where a gateway node's daemon keeps its probe state for the `lb-probe` keeper (the chart's
/// host path `/run/egress-gateway-daemon/lb-probe.json`).
pub fn probe_state_file(run_dir: &Path, node: &NodeNet) -> PathBuf {
    run_dir
        .join("nodes")
        .join(&node.spec.name)
        .join("gateway")
        .join("lb-probe.json")
}

/// One gateway daemon inside a gateway node's namespace (hostNetwork). IMDS is answered at
/// 169.254.169.254 inside the namespace, the API server through the loopback forwarder. The
/// probe drain after a SIGTERM on a node taken out of service is `drain_seconds` (twice the
/// probe interval, as the original's 10 s are for Azure's 5 s), so the load balancer sees it
/// before the daemon stops. As in the chart, the daemon does not answer the load balancer
/// itself: it keeps `state_file`, which the node's [`gateway_lb_probe`] keeper answers from.
pub fn gateway_daemon(
    program: &Path,
    node: &NodeNet,
    kubeconfig: &Path,
    log_dir: &Path,
    drain_seconds: u64,
    state_file: &Path,
) -> Launch {
    Launch {
        name: format!("egress-gateway-daemon-{}", node.spec.name),
        netns: Some(node.ns.clone()),
        program: program.to_path_buf(),
        args: vec![
            "--node-name".into(),
            node.spec.name.clone(),
            "--namespace".into(),
            crate::k8s::SYSTEM_NAMESPACE.into(),
            "--gateway-netns".into(),
            gateway_netns(node),
            "--wireguard-backend".into(),
            crate::backend::wireguard_backend().into(),
            "--wireguard-log-dir".into(),
            s(log_dir),
            "--lb-probe-drain-delay-seconds".into(),
            drain_seconds.to_string(),
            "--gateway-lb-probe-port".into(),
            "0".into(),
            "--lb-probe-state-file".into(),
            s(state_file),
            "--kubeconfig".into(),
            s(kubeconfig),
        ],
        env: vec![
            ("KUBECONFIG".into(), s(kubeconfig)),
            ("MY_NODE_NAME".into(), node.spec.name.clone()),
        ],
        combined_output: true,
    }
}

/// The load balancer's health probe of a gateway node (port 8082), answered by
/// `egress-gateway-daemon lb-probe` from the daemon's `state_file`: its own process, as it is
/// its own container in the chart, so a daemon restart or crash leaves it answering.
pub fn gateway_lb_probe(program: &Path, node: &NodeNet, state_file: &Path) -> Launch {
    Launch {
        name: format!("egress-gateway-lb-probe-{}", node.spec.name),
        netns: Some(node.ns.clone()),
        program: program.to_path_buf(),
        args: vec![
            "lb-probe".into(),
            "--port".into(),
            chart_defaults::GATEWAY_PROBE_PORT.to_string(),
            "--state-file".into(),
            s(state_file),
            // The simulated load balancer probes from Azure's address, the chart's default.
            format!("--lb-prober-ips={}", crate::seed::PROBE_SOURCE_IP),
        ],
        env: vec![],
        combined_output: true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::BTreeSet;

    use super::*;

    fn chart_file(rel: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../charts/kube-egress-gateway")
            .join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The manager container's flags and environment names in the chart's template.
    fn chart_manager() -> (BTreeSet<String>, BTreeSet<String>) {
        let t = chart_file("templates/cni-manager.yaml");
        let start = t.find("- name: manager").unwrap() + "- name: manager".len();
        let manager = &t[start..];
        let manager = &manager[..manager.find("ports:").unwrap()];
        let flags = manager
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- --"))
            .map(|f| format!("--{}", f.split('=').next().unwrap()))
            .collect();
        let mut env: BTreeSet<String> = manager
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- name: "))
            .map(str::to_owned)
            .collect();
        // keg.podEnv
        env.extend(["MY_POD_NAMESPACE", "MY_POD_NAME", "MY_NODE_NAME"].map(String::from));
        (flags, env)
    }

    fn launch() -> Launch {
        let bins = Binaries {
            apiserver: "/b/a".into(),
            emulator: "/b/e".into(),
            operator: "/b/o".into(),
            gateway_daemon: None,
            cni_manager: "/b/m".into(),
            cni_plugin: "/b/p".into(),
            crds: "/c".into(),
        };
        let topo = crate::topology::Topology::plan(
            "r1",
            &crate::seed::nodes(
                &crate::scenario::Scenario::parse("workers: 1\ngatewayPools: []\n", "test")
                    .unwrap(),
            ),
            &["10.224.0.4".parse().unwrap()],
        );
        let paths = WorkerPaths {
            conf_dir: "/run/n/net.d".into(),
            socket: "/run/n/sock/cni.sock".into(),
        };
        cni_manager(&bins, &topo.nodes[0], Path::new("/k"), &paths)
    }

    #[test]
    fn the_cni_manager_starts_with_the_charts_flags_and_defaults() {
        let l = launch();
        let (flags, env) = chart_manager();
        let ours: BTreeSet<String> = l
            .args
            .iter()
            .map(|a| a.split('=').next().unwrap().to_owned())
            .collect();
        assert_eq!(ours, flags, "flags differ from the chart's DaemonSet");
        let mut ours_env: BTreeSet<String> = l.env.iter().map(|(k, _)| k.clone()).collect();
        ours_env.remove("KUBECONFIG");
        assert_eq!(
            ours_env, env,
            "environment differs from the chart's DaemonSet"
        );
        assert!(
            l.env
                .contains(&("UNINSTALL_ON_EXIT".into(), "false".into())),
            "only the uninstall hook removes the conflist"
        );
        let values: serde_json::Value = serde_saphyr::from_str(&chart_file("values.yaml")).unwrap();
        let c = &values["cniManager"];
        let cidrs: Vec<&str> = c["exceptionCidrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        use chart_defaults as d;
        assert_eq!(cidrs.join(","), d::EXCEPTION_CIDRS);
        assert_eq!(c["handshakeTimeoutSeconds"], d::HANDSHAKE_TIMEOUT_SECONDS);
        assert_eq!(c["conflistPollMs"], d::CONFLIST_POLL_MS);
        assert_eq!(c["httpPort"], d::HTTP_PORT);
        assert_eq!(c["logLevel"], d::LOG_LEVEL);
        assert_eq!(c["failover"], d::FAILOVER);
        assert_eq!(values["gatewayLbProbePort"], d::GATEWAY_PROBE_PORT);
        assert_eq!(c["gatewayProbeIntervalMs"], d::GATEWAY_PROBE_INTERVAL_MS);
        assert_eq!(c["gatewayProbeTimeoutMs"], d::GATEWAY_PROBE_TIMEOUT_MS);
        assert_eq!(c["gatewayLbGraceMs"], d::GATEWAY_LB_GRACE_MS);
        assert_eq!(c["failoverSettleSeconds"], d::FAILOVER_SETTLE_SECONDS);
        assert_eq!(
            values["gatewayDaemon"]["healthPort"],
            d::GATEWAY_SESSIONS_PORT
        );
        assert!(
            c.get("uninstallOnExit").is_none(),
            "no value may make every manager stop remove the conflist"
        );
    }
}
