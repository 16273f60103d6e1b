//! What makes `kubectl` work against a run as against a real cluster, beyond the API server:
//! the kubelet API (logs, exec) on a root-only unix socket the API server forwards to (it
//! lets only this process's user — root — use those subresources, since the commands run as
//! root), and the components' pods in `kube-egress-gateway-system`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use kube::Client;
use tokio::task::JoinSet;

use crate::kubelet::Kubelet;
use crate::kubelet_api::{self, Locator};
use crate::seed::Role;
use crate::state::StateFile;
use crate::system_pods::{Component, SystemPods};
use crate::topology::Topology;

/// The API server's flags for the kubelet API on `socket`: exec and logs only for this
/// process's user (root), whose commands the kubelet runs.
pub fn apiserver_args(socket: &Path) -> Vec<String> {
    vec![
        "--kubelet-url".into(),
        format!("unix:{}", socket.display()),
        "--kubelet-allowed-uid".into(),
        nix::unistd::geteuid().as_raw().to_string(),
    ]
}

/// The components' pods: the operator shown on the first worker, a gateway daemon per
/// gateway node, a cni-manager per worker (when their processes were started).
pub fn components(topo: &Topology, daemons: bool) -> Vec<Component> {
    let mut out = Vec::new();
    for n in &topo.nodes {
        let (role, process) = match n.spec.role {
            Role::Gateway if daemons => (
                "gateway-daemon",
                format!("egress-gateway-daemon-{}", n.spec.name),
            ),
            Role::Gateway => continue,
            Role::Worker => ("cni-manager", format!("egress-cni-manager-{}", n.spec.name)),
        };
        if out.is_empty() && n.spec.role == Role::Worker {
            out.push(Component {
                process: "egress-operator".into(),
                role: "operator",
                node: n.spec.name.clone(),
                host_ip: n.primary_ip.to_string(),
                netns: None,
            });
        }
        out.push(Component {
            process,
            role,
            node: n.spec.name.clone(),
            host_ip: n.primary_ip.to_string(),
            netns: Some(n.ns.clone()),
        });
    }
    out
}

/// Creates the component pods and serves the kubelet API for them and the kubelet's pods.
pub async fn start(
    tasks: &mut JoinSet<()>,
    client: &Client,
    socket: &Path,
    kubelet: &Kubelet,
    components: &[Component],
    run_dir: &Path,
    state: Arc<Mutex<StateFile>>,
) -> Result<()> {
    let system = SystemPods::create(client, components, &run_dir.join("logs"))
        .await
        .context("failed to create the components' pods")?;
    let (apps, sys) = (kubelet.locator(), system.locator());
    let locator: Locator =
        Arc::new(move |ns: &str, name: &str| apps(ns, name).or_else(|| sys(ns, name)));
    kubelet_api::start(tasks, socket, locator)
        .with_context(|| format!("failed to serve the kubelet API on {}", socket.display()))?;
    tasks.spawn(system.refresh(client.clone(), state));
    Ok(())
}
