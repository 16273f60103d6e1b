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

/// One cni-manager inside a worker's namespace (hostNetwork), talking to the API server
/// through the forwarder on the node's loopback.
pub fn cni_manager(
    bins: &Binaries,
    node: &NodeNet,
    kubeconfig: &Path,
    paths: &WorkerPaths,
) -> Launch {
    Launch {
        name: format!("egress-cni-manager-{}", node.spec.name),
        netns: Some(node.ns.clone()),
        program: bins.cni_manager.clone(),
        args: vec![
            "--node-name".into(),
            node.spec.name.clone(),
            "--socket-path".into(),
            s(&paths.socket),
            "--cni-conf-dir".into(),
            s(&paths.conf_dir),
            "--conflist-poll-ms".into(),
            "500".into(),
            "--http-addr".into(),
            "127.0.0.1:8080".into(),
            "--uninstall-on-exit".into(),
            // wireguard-go unless the run is inside UML (`run --kernel-wireguard`).
            "--wireguard-backend".into(),
            crate::backend::wireguard_backend().into(),
        ],
        env: vec![("KUBECONFIG".into(), s(kubeconfig))],
    }
}

/// Name of a gateway node's gateway namespace: unique per node, because every simulated node
/// shares the host's `/run/netns` (on a real VM it is `ns-static-egress-gateway`).
pub fn gateway_netns(node: &NodeNet) -> String {
    format!("{}-gw", node.ns)
}

/// One gateway daemon inside a gateway node's namespace (hostNetwork). IMDS is answered at
/// 169.254.169.254 inside the namespace, the API server through the loopback forwarder. The
/// probe drain after SIGTERM is `drain_seconds` (twice the probe interval, as the original's
/// 10 s are for Azure's 5 s), so the load balancer sees it before the daemon stops.
pub fn gateway_daemon(
    program: &Path,
    node: &NodeNet,
    kubeconfig: &Path,
    log_dir: &Path,
    drain_seconds: u64,
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
            "--kubeconfig".into(),
            s(kubeconfig),
        ],
        env: vec![
            ("KUBECONFIG".into(), s(kubeconfig)),
            ("MY_NODE_NAME".into(), node.spec.name.clone()),
        ],
    }
}
