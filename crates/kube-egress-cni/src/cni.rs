//! The CNI operations. ADD: pass-through for pods without a gateway; for pods with one
//! (annotated, or selected by a `podSelector`, which the manager resolves) register a fresh key
//! with the manager, build the tunnel, and succeed only after the first WireGuard handshake. DEL: remove the tunnel and the PodEndpoint, always succeeding. CHECK:
//! compare the pod namespace with the record ADD wrote.

use std::path::Path;
use std::time::{Duration, Instant};

use egress_pod_tunnel::handshake::wait_handshake;
use egress_pod_tunnel::sandbox::{SandboxLock, SandboxRecord};

use rscni_plugin::cni::Cni;
use rscni_plugin::error::Error as CniError;
use rscni_plugin::types::{Args, CNIResult, Interface};

use egress_cni_proto::{AddPhase, AddRequest, Client, DelRequest, PodRef, SelectorNamespaces};

use crate::config::{self, PluginConfig};
use crate::errors::PluginError;
use crate::prev_result;
use crate::report::AddReport;
use crate::tunnel::{POD_TUNNEL_IFNAME, PodTunnel, TunnelError, TunnelSpec};

/// Longest wait of DEL for a missing or busy manager: DEL must succeed, and the PodEndpoint it
/// would remove is garbage-collected with its pod (or replaced by the next ADD) anyway.
const DEL_MANAGER_WAIT: Duration = Duration::from_secs(2);

/// The plugin, over a data-plane implementation.
#[derive(Debug)]
pub struct EgressCni<T> {
    tunnel: T,
}

impl<T: PodTunnel> EgressCni<T> {
    /// A plugin using `tunnel`.
    pub fn new(tunnel: T) -> Self {
        Self { tunnel }
    }

    /// The data plane (for tests that inspect what was asked of it).
    pub fn tunnel(&self) -> &T {
        &self.tunnel
    }
}

struct Invocation {
    config: PluginConfig,
    pod: Option<PodRef>,
    /// `Some(None)`: runtime says no annotation; `None`: unknown, ask the manager.
    gateway_hint: Option<Option<String>>,
}

fn invocation(args: &Args) -> Result<Invocation, PluginError> {
    Ok(Invocation {
        config: PluginConfig::from_netconf(args.config())?,
        pod: config::pod_from_cni_args(args.args())?,
        gateway_hint: config::gateway_from_runtime_config(args.config()),
    })
}

/// The manager as ADD and CHECK ask it: a manager that is restarting (socket missing or
/// refusing) or busy is waited for up to `managerTimeoutSeconds`, then the call fails (11).
fn client(config: &PluginConfig) -> Client {
    Client::new(&config.socket_path, config.manager_timeout)
}

/// The manager as DEL asks it: briefly (see [`DEL_MANAGER_WAIT`]).
fn del_client(config: &PluginConfig) -> Client {
    Client::new(
        &config.socket_path,
        config.manager_timeout.min(DEL_MANAGER_WAIT),
    )
}

impl<T: PodTunnel> EgressCni<T> {
    /// The gateway of `pod`. The runtime's annotations decide for an annotated pod; a pod
    /// without the annotation may still be selected by a `podSelector` of its namespace, which
    /// only the manager knows, but the manager publishes which namespaces have selectors: a
    /// plain pod of any other namespace starts without asking it (as before selectors).
    fn gateway_of(&self, inv: &Invocation, pod: &PodRef) -> Result<Option<String>, PluginError> {
        match &inv.gateway_hint {
            Some(Some(named)) => return Ok(Some(named.clone())),
            Some(None) => {
                let file = egress_cni_proto::selectors::path(&inv.config.socket_path);
                if SelectorNamespaces::load(&file).is_some_and(|s| !s.may_select(&pod.namespace)) {
                    return Ok(None);
                }
            }
            None => {}
        }
        Ok(client(&inv.config).pod_gateway(pod.clone())?.gateway)
    }

    /// The sandbox of this ADD (fails when the runtime left out what a tunnel needs).
    fn sandbox(
        args: &Args,
        inv: &Invocation,
        pod: &PodRef,
        prev: &CNIResult,
    ) -> Result<SandboxRecord, PluginError> {
        let eth = args
            .ifname()
            .map(|i| i.to_string())
            .ok_or(PluginError::MissingEnv("CNI_IFNAME", "ADD"))?;
        let netns = args
            .netns()
            .cloned()
            .ok_or(PluginError::MissingEnv("CNI_NETNS", "ADD"))?;
        let container_id = args
            .container_id()
            .map(|c| c.to_string())
            .ok_or(PluginError::MissingEnv("CNI_CONTAINERID", "ADD"))?;
        let address = prev_result::pod_address(Some(prev), &eth)?;
        Ok(SandboxRecord {
            container_id,
            netns,
            eth,
            pod_ip: address.ip,
            eth_gateway: address.gateway,
            pod_ipv6: address.ipv6.map(|v6| v6.ip),
            eth_ipv6_gateway: address.ipv6.and_then(|v6| v6.gateway),
            mtu: inv.config.mtu,
            backend: inv.config.backend,
            node_excluded_cidrs: inv.config.excluded_cidrs.clone(),
            state_dir: inv.config.state_dir.clone(),
            pod_namespace: pod.namespace.clone(),
            pod_name: pod.name.clone(),
            pod_uid: pod.uid.clone().filter(|u| !u.is_empty()),
        })
    }

    /// A pod without a gateway: its sandbox is recorded (so the manager can attach it if it
    /// is annotated later) but nothing here may fail its ADD, which stays a pass-through.
    fn record_plain(args: &Args, inv: &Invocation, pod: &PodRef, prev: &CNIResult) {
        let recorded = Self::sandbox(args, inv, pod, prev)
            .map_err(|e| e.to_string())
            .and_then(|sandbox| {
                let _lock = SandboxLock::acquire(&sandbox.state_dir, &sandbox.container_id)
                    .map_err(|e| format!("failed to lock the sandbox: {e}"))?;
                sandbox
                    .save()
                    .map_err(|e| format!("failed to write the sandbox record: {e}"))
            });
        if let Err(e) = recorded {
            tracing::warn!(
                pod = %pod,
                error = %e,
                "sandbox not recorded: annotating this pod later will not attach it until it restarts"
            );
        }
    }

    fn add_inner(&self, args: &Args) -> Result<CNIResult, PluginError> {
        let inv = invocation(args)?;
        let prev = args
            .config()
            .prev_result
            .clone()
            .ok_or(prev_result::PrevResultError::Missing)?;
        let Some(pod) = inv.pod.clone() else {
            return Ok(prev);
        };
        if self.gateway_of(&inv, &pod)?.is_none() {
            Self::record_plain(args, &inv, &pod, &prev);
            return Ok(prev);
        }
        let sandbox = Self::sandbox(args, &inv, &pod, &prev)?;
        let container_id = sandbox.container_id.clone();
        let netns = sandbox.netns.clone();
        // Held for the whole ADD: the manager attaching running pods takes it too.
        let _lock = SandboxLock::acquire(&inv.config.state_dir, &container_id).map_err(|e| {
            PluginError::Tunnel(TunnelError(format!(
                "failed to lock sandbox {container_id} in {}: {e}",
                inv.config.state_dir.display()
            )))
        })?;

        // The manager is asked before the namespace is touched, so every refusal leaves the
        // pod exactly as the main plugin made it.
        let started = Instant::now();
        let (key, public_key) = self.tunnel.generate_key()?;
        let reply = client(&inv.config).add(AddRequest {
            pod: pod.clone(),
            container_id: container_id.clone(),
            pod_ip: sandbox.pod_ip.into(),
            public_key: public_key.clone(),
            pod_ipv6: sandbox.pod_ipv6,
        })?;
        let spec = sandbox.tunnel_spec(&reply, public_key);
        // Each step cleans up after itself; what it leaves is undone here. The pod's routes
        // change only after the handshake, so a timeout leaves them as the main plugin made
        // them.
        let manager = del_client(&inv.config);
        let undo = |tunnel_left: bool| {
            self.undo(&spec, &netns, &manager, &pod, tunnel_left);
        };
        let registered = started.elapsed();
        let mut report = AddReport::new(&inv.config.socket_path, &pod, &container_id, started);
        report.mark(AddPhase::Register);
        if let Err(e) = self.tunnel.setup(&spec, &key) {
            undo(false);
            report.failed(AddPhase::Tunnel);
            return Err(e.into());
        }
        let built = started.elapsed();
        report.mark(AddPhase::Tunnel);
        match wait_handshake(&self.tunnel, &spec, inv.config.handshake_timeout) {
            Ok(took) => {
                tracing::info!(elapsed_ms = took.as_millis() as u64, "handshake completed")
            }
            Err(e) => {
                undo(true);
                report.failed(AddPhase::Handshake);
                return Err(e.into());
            }
        }
        let handshake = started.elapsed();
        report.mark(AddPhase::Handshake);
        if let Err(e) = self.tunnel.route(&spec, &key) {
            undo(false);
            report.failed(AddPhase::Routes);
            return Err(e.into());
        }
        report.mark(AddPhase::Routes);
        tracing::info!(
            register_ms = registered.as_millis() as u64,
            tunnel_ms = (built - registered).as_millis() as u64,
            handshake_ms = (handshake - built).as_millis() as u64,
            route_ms = (started.elapsed() - handshake).as_millis() as u64,
            "egress tunnel ready"
        );
        if let Err(e) = spec
            .save(&inv.config.state_dir)
            .and_then(|()| sandbox.save())
        {
            undo(true);
            return Err(PluginError::Tunnel(TunnelError(format!(
                "failed to write state record in {}: {e}",
                inv.config.state_dir.display()
            ))));
        }
        report.succeeded(&spec);
        let mut result = prev;
        result.interfaces.push(Interface {
            name: POD_TUNNEL_IFNAME.to_string(),
            mac: String::new(),
            mtu: Some(spec.sandbox.mtu),
            sandbox: Some(netns.display().to_string()),
            socket_path: None,
            pci_id: None,
        });
        Ok(result)
    }

    fn undo(
        &self,
        spec: &TunnelSpec,
        netns: &Path,
        manager: &Client,
        pod: &PodRef,
        tunnel_left: bool,
    ) {
        if tunnel_left
            && let Err(e) = self.tunnel.teardown(
                Some(spec),
                netns,
                &spec.sandbox.container_id,
                &spec.sandbox.state_dir,
            )
        {
            tracing::error!(error = %e, "failed to remove the partial tunnel");
        }
        let _ = TunnelSpec::forget(&spec.sandbox.state_dir, &spec.sandbox.container_id);
        let _ = SandboxRecord::forget(&spec.sandbox.state_dir, &spec.sandbox.container_id);
        if let Err(e) = manager.del(DelRequest {
            pod: pod.clone(),
            container_id: spec.sandbox.container_id.clone(),
        }) {
            tracing::error!(error = %e, "failed to remove the PodEndpoint after a failed ADD");
        }
    }

    fn del_inner(&self, args: &Args) -> Result<(), PluginError> {
        let inv = invocation(args)?;
        let Some(container_id) = args.container_id().map(|c| c.to_string()) else {
            return Ok(());
        };
        // Held until the sandbox's records are gone: an attach by the manager either finished
        // before (and its tunnel is removed here) or finds no sandbox after.
        let lock = SandboxLock::acquire(&inv.config.state_dir, &container_id)
            .map_err(|e| tracing::warn!(error = %e, "failed to lock the sandbox; removing anyway"))
            .ok();
        let record = TunnelSpec::load(&inv.config.state_dir, &container_id).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable state record; removing by name");
            None
        });
        let known_plain = matches!(inv.gateway_hint, Some(None));
        // The spec allows DEL without CNI_NETNS (namespace already gone): the record still
        // names it, and the node-side leftovers are found from the container ID alone.
        let netns = args
            .netns()
            .cloned()
            .or_else(|| record.as_ref().map(|r| r.sandbox.netns.clone()))
            .unwrap_or_default();
        if (record.is_some() || !known_plain)
            && let Err(e) = self.tunnel.teardown(
                record.as_ref(),
                &netns,
                &container_id,
                &inv.config.state_dir,
            )
        {
            tracing::warn!(error = %e, "failed to remove tunnel at DEL");
        }
        let _ = TunnelSpec::forget(&inv.config.state_dir, &container_id);
        let _ = SandboxRecord::forget(&inv.config.state_dir, &container_id);
        if let Some(pod) = inv.pod
            && (record.is_some() || !known_plain)
            && let Err(e) = del_client(&inv.config).del(DelRequest { pod, container_id })
        {
            // DEL must succeed so the runtime can release the sandbox; the PodEndpoint is
            // owned by the pod and garbage-collected with it.
            tracing::warn!(error = %e, "failed to remove PodEndpoint at DEL");
        }
        if let Some(lock) = lock {
            lock.remove();
        }
        Ok(())
    }

    fn check_inner(&self, args: &Args) -> Result<(), PluginError> {
        let inv = invocation(args)?;
        if args.config().prev_result.is_none() {
            return Err(prev_result::PrevResultError::Missing.into());
        }
        let container_id = args
            .container_id()
            .map(|c| c.to_string())
            .ok_or(PluginError::MissingEnv("CNI_CONTAINERID", "CHECK"))?;
        let record = TunnelSpec::load(&inv.config.state_dir, &container_id).map_err(|e| {
            PluginError::Tunnel(TunnelError(format!("failed to read state record: {e}")))
        })?;
        let Some(spec) = record else {
            // No record: either not annotated (nothing to check) or ADD never completed.
            let Some(pod) = inv.pod.as_ref() else {
                return Ok(());
            };
            return match self.gateway_of(&inv, pod)? {
                None => Ok(()),
                Some(g) => Err(PluginError::Drift(vec![format!(
                    "pod uses gateway {g} but no tunnel was recorded for container {container_id}"
                )])),
            };
        };
        let drift = self.tunnel.drift(&spec)?;
        if drift.is_empty() {
            Ok(())
        } else {
            Err(PluginError::Drift(drift))
        }
    }
}

impl<T: PodTunnel> Cni for EgressCni<T> {
    fn add(&self, args: Args) -> Result<CNIResult, CniError> {
        self.add_inner(&args).map_err(Into::into)
    }

    fn del(&self, args: Args) -> Result<(), CniError> {
        self.del_inner(&args).map_err(Into::into)
    }

    fn check(&self, args: Args) -> Result<(), CniError> {
        self.check_inner(&args).map_err(Into::into)
    }

    fn status(&self, args: Args) -> Result<(), CniError> {
        // Ready when the manager answers; annotated pods cannot be served without it.
        let config = PluginConfig::from_netconf(args.config()).map_err(PluginError::from)?;
        if config.socket_path.exists() {
            Ok(())
        } else {
            Err(CniError::PluginNotAvailableLimitedConnectivity(format!(
                "egress-cni-manager socket {} does not exist: pods using a StaticGatewayConfiguration cannot start",
                config.socket_path.display()
            )))
        }
    }

    fn gc(&self, _args: Args) -> Result<(), CniError> {
        // Tunnels live and die with their pod namespaces; PodEndpoints are owned by pods.
        Ok(())
    }
}
